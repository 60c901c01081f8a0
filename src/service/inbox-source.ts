/**
 * Intake from the post-build hook's inbox: files written by `loft --post-build-hook`, read
 * when the directory changes and every `inboxPollMs` anyway. Reads are serialized (a read
 * asked for while one runs runs once more after it); a file is deleted only after its
 * paths are in the queue.
 */
import { mkdirSync } from 'node:fs';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { parseStorePath } from '../nix/store-path.js';
import { InboxWatcher, readInbox, removeInboxFile } from '../watch/inbox.js';
import { Tasks, Timers, listForLog, type Intake, type IntakeSource } from './intake.js';

export interface InboxSourceDeps {
  intake: Intake;
  dir: string;
  storeDir: string;
  pollMs: number;
  logger: Logger;
}

export class InboxSource implements IntakeSource {
  private watcher: InboxWatcher | undefined;
  private readonly timers = new Timers();
  private readonly tasks: Tasks;
  private stopped = false;
  private busy: Promise<void> | undefined;
  private again = false;

  constructor(private readonly deps: InboxSourceDeps) {
    this.tasks = new Tasks(deps.logger);
  }

  /** Watch the inbox, then read the files left while the service was down. */
  async start(): Promise<void> {
    const { dir, pollMs, logger } = this.deps;
    const polling = `reading it every ${pollMs / 1000} s`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      this.watcher = new InboxWatcher(
        dir,
        () => this.tasks.track(this.read()),
        (e) => logger.warn(`cannot watch ${dir}: ${e.message}; ${polling}`),
      );
      this.watcher.start();
    } catch (e) {
      logger.warn(
        `cannot watch the post-build hook's inbox ${dir}: ${(e as Error).message}; ${polling}`,
      );
    }
    await this.read().catch((e: unknown) => logger.warn(describeError(e)));
    this.timers.every(pollMs, () => this.tasks.track(this.read()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.clear();
    this.watcher?.close();
    await this.tasks.settle();
  }

  /** Read the inbox; serialized, and re-run once if asked while running. */
  private read(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    this.busy = (async () => {
      try {
        do {
          this.again = false;
          await this.readOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.busy = undefined;
      }
    })();
    return this.busy;
  }

  private async readOnce(): Promise<void> {
    const { storeDir, logger, intake } = this.deps;
    for (const f of await readInbox(this.deps.dir)) {
      const ok: string[] = [];
      const bad = [...f.bad];
      for (const p of f.paths) {
        try {
          parseStorePath(p, storeDir);
          ok.push(p);
        } catch {
          bad.push(p);
        }
      }
      if (bad.length > 0) {
        logger.warn(
          `inbox file ${f.file}: ignoring ${bad.length} lines that are not paths of ${storeDir}: ${listForLog(bad, 5)}`,
        );
      }
      // Committed to the queue first; only then is the file deleted.
      intake.enqueue(ok, 'hook');
      await removeInboxFile(f.file);
    }
  }
}
