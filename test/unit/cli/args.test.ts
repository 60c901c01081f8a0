import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseCliArgs,
  parsePathList,
  hookPathsFromEnv,
  UsageError,
  type ParsedArgs,
  type RunMode,
} from '../../../src/cli/args.js';
import { FLAGS } from '../../../src/cli/flags.js';
import { isLoftError } from '../../../src/util/errors.js';

function run(argv: string[]): Extract<ParsedArgs, { kind: 'run' }> {
  const r = parseCliArgs(argv);
  assert.equal(r.kind, 'run', JSON.stringify(r));
  return r as Extract<ParsedArgs, { kind: 'run' }>;
}
const mode = (argv: string[]): RunMode => run(argv).mode;

function usage(argv: string[], message: RegExp): void {
  assert.throws(
    () => parseCliArgs(argv),
    (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.kind, 'usage');
      assert.equal(e.code, 'cli.usage');
      assert.match(e.message, message);
      assert.match(e.hint ?? '', /loft --help/);
      return true;
    },
  );
}

test('no flags: service mode with the default config', () => {
  assert.deepEqual(parseCliArgs([]), {
    kind: 'run',
    configPath: 'loft.toml',
    configExplicit: false,
    debug: false,
    logFormat: undefined,
    mode: { kind: 'service', forceScan: false },
  });
});

test('-c/--config in every spelling', () => {
  for (const argv of [
    ['-c', 'x.toml'],
    ['--config', 'x.toml'],
    ['--config=x.toml'],
    ['-cx.toml'],
  ]) {
    const r = run(argv);
    assert.equal(r.configPath, 'x.toml', argv.join(' '));
    assert.equal(r.configExplicit, true);
  }
  usage(['-c'], /--config needs a value <CONFIG>/);
  usage(['--config='], /--config needs a file path/);
  usage(['-c', 'a', '-c', 'b'], /--config was given 2 times/);
});

test('--debug and --log-format', () => {
  assert.equal(run(['--debug']).debug, true);
  assert.equal(run([]).debug, false);
  assert.equal(run(['--log-format', 'json']).logFormat, 'json');
  assert.equal(run(['--log-format=text']).logFormat, 'text');
  usage(['--log-format', 'yaml'], /--log-format must be "text" or "json", got "yaml"/);
  usage(['--log-format'], /--log-format needs a value <FORMAT>/);
  usage(['--debug=yes'], /--debug does not take a value/);
});

test('-h/--help and -V/--version win over other valid flags', () => {
  for (const argv of [['-h'], ['--help'], ['--prune', '--help'], ['-h', '-V']]) {
    assert.deepEqual(parseCliArgs(argv), { kind: 'help' }, argv.join(' '));
  }
  for (const argv of [['-V'], ['--version'], ['--debug', '-V']]) {
    assert.deepEqual(parseCliArgs(argv), { kind: 'version' }, argv.join(' '));
  }
  usage(['--help', '--nope'], /unknown option '--nope'/);
});

test('each maintenance action alone', () => {
  assert.deepEqual(mode(['--clear-cache']), { kind: 'once', actions: [{ kind: 'clear-cache' }] });
  assert.deepEqual(mode(['--reset-initial-scan']), {
    kind: 'once',
    actions: [{ kind: 'reset-initial-scan' }],
  });
  assert.deepEqual(mode(['--populate-cache']), {
    kind: 'once',
    actions: [{ kind: 'populate-cache' }],
  });
  assert.deepEqual(mode(['--prune']), {
    kind: 'once',
    actions: [{ kind: 'prune', dryRun: false }],
  });
});

test('--upload-path: repeatable, order kept, duplicates dropped, "-" reads stdin', () => {
  assert.deepEqual(
    mode([
      '--upload-path',
      '/nix/store/a',
      '--upload-path=./result',
      '--upload-path',
      '/nix/store/a',
    ]),
    {
      kind: 'once',
      actions: [
        {
          kind: 'upload',
          paths: ['/nix/store/a', './result'],
          readStdin: false,
          dryRun: false,
          forceScan: false,
        },
      ],
    },
  );
  assert.deepEqual(mode(['--upload-path', '-']), {
    kind: 'once',
    actions: [{ kind: 'upload', paths: [], readStdin: true, dryRun: false, forceScan: false }],
  });
  usage(['--upload-path', '-', '--upload-path', '-'], /stdin\) was given more than once/);
  usage(['--upload-path', ''], /--upload-path needs a path/);
  usage(['--upload-path'], /--upload-path needs a value <PATH>/);
  usage(
    ['--upload-path', '--prune'],
    /next argument looks like an option; write --upload-path=<PATH>/,
  );
  // A path that really starts with "-" can be given with "=".
  const m = mode(['--upload-path=-weird']);
  assert.ok(m.kind === 'once' && m.actions[0]!.kind === 'upload');
  assert.deepEqual((m.actions[0] as { paths: string[] }).paths, ['-weird']);
});

test('actions run in a fixed order whatever the command-line order', () => {
  const m = mode([
    '--prune',
    '--upload-path',
    'p',
    '--populate-cache',
    '--reset-initial-scan',
    '--clear-cache',
  ]);
  assert.ok(m.kind === 'once');
  assert.deepEqual(
    m.actions.map((a) => a.kind),
    ['clear-cache', 'reset-initial-scan', 'populate-cache', 'upload', 'prune'],
  );
});

test('--force-scan modifies the service or --upload-path only', () => {
  assert.deepEqual(mode(['--force-scan']), { kind: 'service', forceScan: true });
  const m = mode(['--force-scan', '--upload-path', 'p', '--clear-cache']);
  assert.ok(m.kind === 'once');
  assert.deepEqual(m.actions[1], {
    kind: 'upload',
    paths: ['p'],
    readStdin: false,
    dryRun: false,
    forceScan: true,
  });
  usage(
    ['--force-scan', '--prune'],
    /--force-scan applies to service mode and --upload-path, not to --prune/,
  );
  usage(['--force-scan', '--clear-cache'], /not to --clear-cache/);
});

test('--dry-run modifies --upload-path and --prune only', () => {
  const m = mode(['--dry-run', '--upload-path', 'p', '--prune']);
  assert.ok(m.kind === 'once');
  assert.deepEqual(m.actions, [
    { kind: 'upload', paths: ['p'], readStdin: false, dryRun: true, forceScan: false },
    { kind: 'prune', dryRun: true },
  ]);
  usage(['--dry-run'], /--dry-run applies to --upload-path and --prune only/);
  usage(
    ['--dry-run', '--populate-cache'],
    /--dry-run applies to --upload-path and --prune only, not to --populate-cache/,
  );
  usage(
    ['--dry-run', '--prune', '--clear-cache'],
    /--dry-run cannot be combined with --clear-cache/,
  );
  usage(['--dry-run', '--status'], /--dry-run does not apply to --status/);
});

test('--status and --post-build-hook stand alone', () => {
  assert.deepEqual(mode(['--status']), { kind: 'status', format: 'text' });
  assert.deepEqual(mode(['--status', '--log-format', 'json']), { kind: 'status', format: 'json' });
  assert.deepEqual(mode(['--post-build-hook']), { kind: 'post-build-hook' });
  const r = run(['--post-build-hook', '-c', '/etc/loft.toml', '--debug']);
  assert.equal(r.configPath, '/etc/loft.toml');
  assert.equal(r.debug, true);
  usage(['--status', '--post-build-hook'], /cannot be combined/);
  usage(['--status', '--prune'], /--status cannot be combined with --prune/);
  usage(
    ['--post-build-hook', '--upload-path', 'x'],
    /--post-build-hook cannot be combined with --upload-path/,
  );
  usage(['--post-build-hook', '--force-scan'], /--force-scan does not apply to --post-build-hook/);
});

test('--verify runs last, with --deep and --repair; --doctor stands alone', () => {
  assert.deepEqual(mode(['--verify']), {
    kind: 'once',
    actions: [{ kind: 'verify', deep: false, repair: false }],
  });
  assert.deepEqual(mode(['--repair', '--deep', '--verify', '--prune']), {
    kind: 'once',
    actions: [
      { kind: 'prune', dryRun: false },
      { kind: 'verify', deep: true, repair: true },
    ],
  });
  usage(['--deep'], /--deep applies to --verify only/);
  usage(['--repair'], /--repair applies to --verify only/);
  usage(['--verify', '--repair', '--dry-run'], /--dry-run does not apply to --verify --repair/);
  usage(['--verify', '--dry-run'], /--dry-run applies to --upload-path and --prune only/);
  usage(['--status', '--verify'], /--status cannot be combined with --verify/);
  assert.deepEqual(mode(['--doctor']), { kind: 'doctor' });
  usage(['--doctor', '--verify'], /--doctor stands alone/);
  usage(['--doctor', '--status'], /--doctor stands alone/);
});

test('unknown options and stray arguments are usage errors that say what to do', () => {
  usage(['--nope'], /^unknown option '--nope'$/);
  usage(['--uplaod-path', 'x'], /unknown option '--uplaod-path' \(did you mean --upload-path\?\)/);
  usage(['--forcescan'], /did you mean --force-scan\?/);
  // A flag cut short: the one flag it begins is the suggestion.
  usage(['--upload', 'x'], /^unknown option '--upload' \(did you mean --upload-path\?\)$/);
  usage(['-x'], /unknown option '-x'/);
  assert.throws(
    () => parseCliArgs(['./result']),
    (e: unknown) =>
      e instanceof UsageError &&
      /unexpected argument '\.\/result'/.test(e.message) &&
      /--upload-path \.\/result/.test(e.hint ?? ''),
  );
});

test('--watch-exec takes the command after --, with its own flags untouched', () => {
  const r = parseCliArgs([
    '-c',
    'x.toml',
    '--watch-exec',
    '--debug',
    '--',
    'nix',
    'build',
    '-L',
    '--',
    'a',
  ]);
  assert.ok(r.kind === 'run');
  assert.deepEqual(r.mode, { kind: 'watch-exec', command: ['nix', 'build', '-L', '--', 'a'] });
  assert.equal(r.debug, true);
  assert.equal(r.configPath, 'x.toml');
  const fails = (argv: string[], message: RegExp, hint: RegExp) =>
    assert.throws(
      () => parseCliArgs(argv),
      (e: unknown) => e instanceof UsageError && message.test(e.message) && hint.test(e.hint ?? ''),
      argv.join(' '),
    );
  fails(['--watch-exec'], /--watch-exec needs a command after --/, /--watch-exec -- nix build/);
  fails(['--watch-exec', '--'], /needs a command/, /nix build/);
  fails(['--', 'nix', 'build'], /unexpected arguments after --: nix build/, /--watch-exec --/);
  usage(
    ['--watch-exec', '--upload-path', 'x', '--', 'true'],
    /cannot be combined with --upload-path/,
  );
  usage(['--watch-exec', '--dry-run', '--', 'true'], /cannot be combined with --dry-run/);
  usage(['--watch-exec', '--status', '--', 'true'], /cannot be combined with --status/);
});

test('every flag in the table is accepted by the parser', () => {
  for (const f of FLAGS) {
    const argv =
      f.value === undefined
        ? [`--${f.long}`]
        : [`--${f.long}`, f.long === 'log-format' ? 'json' : 'v'];
    // Some flags need a partner to form a valid combination.
    if (f.long === 'dry-run') argv.push('--prune');
    if (f.long === 'watch-exec') argv.push('--', 'true');
    if (f.long === 'deep' || f.long === 'repair') argv.push('--verify');
    if (f.long === 'pin-name') argv.push('--pin', 'p');
    assert.doesNotThrow(() => parseCliArgs(argv), argv.join(' '));
    if (f.short) assert.doesNotThrow(() => parseCliArgs([`-${f.short}`, ...argv.slice(1)]));
  }
  assert.deepEqual(
    FLAGS.filter((f) => f.seed).map((f) => f.long),
    [
      'config',
      'debug',
      'clear-cache',
      'reset-initial-scan',
      'force-scan',
      'populate-cache',
      'upload-path',
      'prune',
      'help',
      'version',
    ],
    "the seed's flags, exactly",
  );
});

test('parsePathList: whitespace-separated, comments and blanks skipped, duplicates dropped', () => {
  assert.deepEqual(
    parsePathList(
      '/nix/store/a\n\n  /nix/store/b /nix/store/c\r\n# comment /nix/store/x\n/nix/store/a\n',
    ),
    ['/nix/store/a', '/nix/store/b', '/nix/store/c'],
  );
  assert.deepEqual(parsePathList(''), []);
});

test('hookPathsFromEnv reads $OUT_PATHS and refuses to run without it', () => {
  assert.deepEqual(hookPathsFromEnv({ OUT_PATHS: '/nix/store/a-out /nix/store/b-dev' }), [
    '/nix/store/a-out',
    '/nix/store/b-dev',
  ]);
  assert.deepEqual(hookPathsFromEnv({ OUT_PATHS: '' }), []);
  assert.throws(
    () => hookPathsFromEnv({}),
    (e: unknown) =>
      e instanceof UsageError && /\$OUT_PATHS/.test(e.message) && /nix\.conf/.test(e.hint ?? ''),
  );
});

test('--pin, --pin-name, --unpin, --pins: actions in their fixed order, names checked', () => {
  assert.deepEqual(mode(['--pins', '--prune', '--unpin', 'old', '--pin', './result']), {
    kind: 'once',
    actions: [
      { kind: 'pin', path: './result', name: undefined },
      { kind: 'unpin', name: 'old' },
      { kind: 'prune', dryRun: false },
      { kind: 'pins' },
    ],
  });
  assert.deepEqual(mode(['--pin', '/nix/store/x', '--pin-name', 'production']), {
    kind: 'once',
    actions: [{ kind: 'pin', path: '/nix/store/x', name: 'production' }],
  });
  usage(['--pin-name', 'production'], /--pin-name applies to --pin only/);
  usage(['--pin', ''], /--pin needs a path/);
  usage(['--pin', 'a', '--pin', 'b'], /--pin was given 2 times/);
  usage(['--pin', 'a', '--dry-run'], /--dry-run applies to --upload-path and --prune only/);
  usage(
    ['--pin', 'a', '--prune', '--dry-run'],
    /--dry-run cannot be combined with --pin, which would change the bucket/,
  );
  for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(101)]) {
    assert.throws(
      () => parseCliArgs(['--unpin', bad]),
      (e: unknown) => isLoftError(e, 'PIN_BAD_NAME') && e.kind === 'usage',
      JSON.stringify(bad),
    );
  }
});
