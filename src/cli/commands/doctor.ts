/**
 * `--doctor`: run the checks (src/doctor) and print one line each; exit 0 only when
 * nothing failed or was skipped (warnings do not fail), 1 otherwise.
 */
import type { Logger } from '../../util/log.js';
import type { LoftConfig } from '../../config/index.js';
import { runDoctorChecks, type CheckResult } from '../../doctor/doctor.js';
import { s3StoreFor } from '../../service/context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';

export interface DoctorIo {
  out: { write(s: string): unknown };
  logger: Logger;
  env: Record<string, string | undefined>;
}

const LABEL: Record<CheckResult['status'], string> = {
  ok: 'OK  ',
  warn: 'WARN',
  fail: 'FAIL',
  skipped: 'SKIP',
};

export async function runDoctor(config: LoftConfig, io: DoctorIo): Promise<ExitCode> {
  const requests: { operation: string; status: string }[] = [];
  const results = await runDoctorChecks({
    requests,
    config,
    logger: io.logger,
    env: io.env,
    // One try: the doctor reports what happens, it does not wait out outages.
    openBlobs: () =>
      s3StoreFor(config, io.logger, (operation, status) => requests.push({ operation, status }), 1),
    serverDate: () => serverDate(config),
  });
  io.out.write(doctorText(results));
  return results.some((r) => r.status === 'fail' || r.status === 'skipped') ? EXIT.failed : EXIT.ok;
}

export function doctorText(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  let text = '';
  for (const r of results) {
    text += `${LABEL[r.status]} ${r.name.padEnd(width)}  ${r.detail}\n`;
    if (r.hint) text += `     ${' '.repeat(width)}  hint: ${r.hint}\n`;
  }
  const failed = results.filter((r) => r.status === 'fail');
  text +=
    failed.length === 0 && !results.some((r) => r.status === 'skipped')
      ? 'everything Loft needs works\n'
      : `${failed.length} check(s) failed: ${failed.map((r) => r.name).join(', ')}\n`;
  return text;
}

/** The Date header of a plain HEAD to the endpoint (any status will do), with the extra headers. */
async function serverDate(config: LoftConfig): Promise<Date | undefined> {
  const url = config.s3.endpoint ?? `https://s3.${config.s3.region}.amazonaws.com/`;
  try {
    const r = await fetch(url, {
      method: 'HEAD',
      headers: config.s3.extraHeaders.toRecord(),
      signal: AbortSignal.timeout(10_000),
    });
    const date = r.headers.get('date');
    return date === null ? undefined : new Date(date);
  } catch {
    return undefined;
  }
}
