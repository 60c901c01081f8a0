/**
 * The NixOS module and the flake, as far as a machine without nixpkgs can check them:
 * nix/module.nix evaluated by real Nix with a stand-in for `lib` and `pkgs`
 * (nix/tests/module-stub.nix), its options, types, assertions and systemd unit; the scripts
 * it writes run by bash against stand-in programs (credentials exported from
 * $CREDENTIALS_DIRECTORY and read back by Loft's loader, the post-build hook never failing a
 * build, loft-admin); flake.nix's outputs against a stand-in nixpkgs. The NixOS VM test
 * (nix/tests/vm.nix) needs nixpkgs and does not run here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { fixtures, nixEval, nixEvalError, nixTests, repoRoot } from './nix-eval.js';

const exec = promisify(execFile);

interface Stub {
  options: {
    path: string;
    type: string | null;
    hasDescription: boolean;
    hasDefault: boolean;
    readOnly: boolean;
  }[];
  typeErrors: string[];
  unknownOverrides: string[];
  failedAssertions: string[];
  unit: {
    description: string;
    wantedBy: string[];
    wants: string[];
    after: string[];
    serviceConfig: Record<string, unknown>;
  };
  startScript: string;
  hookScript: string | null;
  adminScript: string;
  configText: string;
  configFile: string;
}

/** Stand-in package directories for the scripts to call. */
interface Tools {
  loft: string;
  coreutils: string;
  systemd: string;
}

async function evalModule(overrides: object, tools?: Tools): Promise<Stub> {
  const stub = await nixEval<Stub>(
    { file: join(nixTests, 'module-stub.nix') },
    { argstr: { overrides: JSON.stringify(overrides), ...(tools ?? {}) } },
  );
  assert.deepEqual(stub.unknownOverrides, [], 'the test sets only options that exist');
  return stub;
}

const base = { s3: { bucket: 'nix-cache' } };
const full = {
  debug: true,
  s3: {
    bucket: 'nix-cache',
    accessKeyFile: '/run/secrets/s3-access-key',
    secretKeyFile: '/run/secrets/s3-secret-key',
    extraHeaders: { 'X-Inline': 'inline-value' },
    extraHeadersFile: { 'CF-Access-Client-Secret': '/run/secrets/cf-access-secret' },
  },
  signingKeyPath: '/run/secrets/nix-signing-key',
  postBuildHook: { enable: true },
};

// ---- options ---------------------------------------------------------------------------------

test('services.loft has exactly the seed options (plus postBuildHook.enable and configFile), each with a type, description and default', async () => {
  const stub = await evalModule(base);
  const paths = stub.options.map((o) => o.path).sort();
  assert.deepEqual(
    paths,
    [
      'compression',
      'configFile',
      'debug',
      'enable',
      'extraConfig',
      'localCachePath',
      'package',
      'populateCacheOnStartup',
      'postBuildHook.enable',
      'pruning.enable',
      'pruning.maxSizeGb',
      'pruning.retentionDays',
      'pruning.schedule',
      'pruning.targetPercentage',
      's3.accessKeyFile',
      's3.bucket',
      's3.endpoint',
      's3.extraHeaders',
      's3.extraHeadersFile',
      's3.region',
      's3.secretKeyFile',
      'scanOnStartup',
      'signingKeyName',
      'signingKeyPath',
      'skipSignedByKeys',
      'uploadThreads',
    ].sort(),
  );
  for (const o of stub.options) {
    assert.ok(o.hasDescription, `${o.path} has a description`);
    assert.ok(o.type, `${o.path} has a type`);
    assert.equal(o.hasDefault, o.path !== 's3.bucket', `${o.path}: only the bucket is required`);
  }
  assert.deepEqual(
    stub.options.filter((o) => o.readOnly).map((o) => o.path),
    ['configFile'],
  );
  assert.deepEqual(stub.typeErrors, [], 'every default satisfies its type');
  assert.deepEqual(stub.failedAssertions, []);
});

test('option types refuse bad values at evaluation time', async () => {
  const bad: [string, object][] = [
    ['compression', { compression: 'lz4' }],
    ['uploadThreads', { uploadThreads: 0 }],
    ['uploadThreads', { uploadThreads: 257 }],
    ['s3.bucket', { s3: { bucket: 'Bad_Bucket' } }],
    // Secret files outside the store only, and as absolute paths.
    [
      's3.accessKeyFile',
      { s3: { accessKeyFile: '/nix/store/00000000000000000000000000000000-key' } },
    ],
    ['s3.secretKeyFile', { s3: { secretKeyFile: 'relative/secret' } }],
    ['signingKeyPath', { signingKeyPath: '/nix/store/00000000000000000000000000000000-sk' }],
    ['s3.extraHeadersFile', { s3: { extraHeadersFile: { 'X-A': 'secret-in-a-relative-file' } } }],
    ['s3.extraHeaders', { s3: { extraHeaders: { 'X-A': 1 } } }],
    ['pruning.maxSizeGb', { pruning: { maxSizeGb: 0 } }],
    ['pruning.retentionDays', { pruning: { retentionDays: 0 } }],
    ['pruning.targetPercentage', { pruning: { targetPercentage: 101 } }],
    ['pruning.targetPercentage', { pruning: { targetPercentage: 0 } }],
    ['skipSignedByKeys', { skipSignedByKeys: 'cache.nixos.org-1' }],
  ];
  for (const [path, settings] of bad) {
    const stub = await evalModule({
      ...base,
      ...settings,
      s3: { ...base.s3, ...(settings as { s3?: object }).s3 },
    });
    assert.deepEqual(stub.typeErrors, [path], JSON.stringify(settings));
  }
});

test('assertions refuse a cache path outside /var/lib/loft, half a key pair and unmappable header files', async () => {
  const failing = async (settings: object) =>
    (
      await evalModule({
        ...base,
        ...settings,
        s3: { ...base.s3, ...(settings as { s3?: object }).s3 },
      })
    ).failedAssertions;
  assert.match(
    (await failing({ localCachePath: '/srv/loft/cache.db' })).join(),
    /must be a file under \/var\/lib\/loft\//,
  );
  assert.match(
    (await failing({ localCachePath: '/var/lib/loft/../x.db' })).join(),
    /under \/var\/lib\/loft\//,
  );
  assert.deepEqual(await failing({ localCachePath: '/var/lib/loft/sub/cache.db' }), []);
  assert.match(
    (await failing({ s3: { secretKeyFile: '/run/secrets/s' } })).join(),
    /accessKeyFile and services\.loft\.s3\.secretKeyFile must be set together/,
  );
  assert.match(
    (await failing({ s3: { extraHeadersFile: { X_Under: '/run/secrets/h' } } })).join(),
    /X_Under: header names given as files must consist of letters, digits and hyphens/,
  );
  assert.match(
    (
      await failing({
        s3: { extraHeaders: { 'X-A': 'v' }, extraHeadersFile: { 'x-a': '/run/secrets/h' } },
      })
    ).join(),
    /header\(s\) x-a are set more than once/,
  );
  // NixOS reads (so type-checks) targetPercentage only with maxSizeGb: the assertion reads it.
  for (const t of [0, 101]) {
    assert.match(
      (await failing({ pruning: { maxSizeGb: null, targetPercentage: t } })).join(),
      new RegExp(`targetPercentage = ${t}: it must be a whole number from 1 to 100`),
    );
  }
  assert.deepEqual(await failing({ pruning: { maxSizeGb: null, targetPercentage: 100 } }), []);
  assert.deepEqual(await failing({ pruning: { maxSizeGb: 10, targetPercentage: 100 } }), []);
});

// ---- the systemd unit --------------------------------------------------------------------------

test('the unit: ordering, restart, credentials, dynamic user, state and the hardening', async () => {
  const stub = await evalModule({ ...full, localCachePath: '/var/lib/loft/index/cache.db' });
  const u = stub.unit;
  assert.deepEqual(u.wantedBy, ['multi-user.target']);
  assert.deepEqual(u.wants, ['network-online.target']);
  assert.deepEqual(u.after, ['network-online.target', 'nix-daemon.socket']);
  const sc = u.serviceConfig;
  // Node's JIT needs writable and executable memory.
  assert.ok(!('MemoryDenyWriteExecute' in sc));
  assert.deepEqual(sc, {
    Type: 'exec',
    ExecStart: sc.ExecStart,
    Restart: 'on-failure',
    RestartSec: '10s',
    RestartPreventExitStatus: [2, 3],
    SuccessExitStatus: [130],
    KillSignal: 'SIGTERM',
    KillMode: 'mixed',
    TimeoutStopSec: '5min',
    LoadCredential: [
      's3-access-key:/run/secrets/s3-access-key',
      's3-secret-key:/run/secrets/s3-secret-key',
      'extra-header-CF-Access-Client-Secret:/run/secrets/cf-access-secret',
      'signing-key:/run/secrets/nix-signing-key',
    ],
    DynamicUser: true,
    StateDirectory: ['loft', 'loft/index', 'loft/index/inbox'],
    StateDirectoryMode: '0700',
    UMask: '0077',
    ProtectSystem: 'strict',
    ProtectHome: true,
    PrivateTmp: true,
    PrivateDevices: true,
    DevicePolicy: 'closed',
    ProtectProc: 'invisible',
    RemoveIPC: true,
    PrivateIPC: true,
    ProtectKernelTunables: true,
    ProtectKernelModules: true,
    ProtectKernelLogs: true,
    ProtectControlGroups: true,
    ProtectClock: true,
    ProtectHostname: true,
    PrivateUsers: true,
    RestrictNamespaces: true,
    RestrictRealtime: true,
    RestrictSUIDSGID: true,
    LockPersonality: true,
    NoNewPrivileges: true,
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
    RestrictAddressFamilies: ['AF_INET', 'AF_INET6', 'AF_UNIX'],
    SystemCallArchitectures: 'native',
    SystemCallFilter: ['@system-service', '~@privileged'],
    SystemCallErrorNumber: 'EPERM',
  });
  assert.match(String(sc.ExecStart), /-loft-start$/);
  // The credentials' originals are named in the unit; no value is.
  assert.doesNotMatch(JSON.stringify(u), /inline-value/);
});

test('without secret files the unit loads no credentials and the start script expects none', async () => {
  const stub = await evalModule(base);
  assert.deepEqual(stub.unit.serviceConfig.LoadCredential, []);
  assert.doesNotMatch(stub.startScript, /CREDENTIALS_DIRECTORY/);
  assert.equal(stub.hookScript, null, 'no post-build hook unless asked for');
  assert.deepEqual(stub.unit.serviceConfig.StateDirectory, ['loft', 'loft/inbox']);
});

// ---- the scripts, run -------------------------------------------------------------------------

interface Sandbox {
  dir: string;
  tools: Tools;
  toml: string;
  creds: string;
  cleanup(): void;
}

/**
 * A stand-in `loft` that reports its arguments and reads the generated loft.toml (written to
 * $LOFT_TEST_TOML, since the real one would be in the Nix store) with Loft's own loader and
 * the environment it was given; `systemd-run` that reports its arguments; real `timeout`.
 */
function sandbox(configText: string, loftExit = 0): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'loft-module-'));
  const tools = {
    loft: join(dir, 'loft'),
    coreutils: join(dir, 'coreutils'),
    systemd: join(dir, 'systemd'),
  };
  for (const t of Object.values(tools)) mkdirSync(join(t, 'bin'), { recursive: true });
  const configModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'config', 'index.js')).href;
  writeFileSync(
    join(tools.loft, 'bin', 'loft'),
    `#!${process.execPath}
const { readFileSync } = require('node:fs');
import(${JSON.stringify(configModule)}).then(({ parseConfig }) => {
  const { config, warnings } = parseConfig(readFileSync(process.env.LOFT_TEST_TOML, 'utf8'), {
    source: process.env.LOFT_TEST_TOML,
    env: process.env,
  });
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^(AWS_|LOFT_EXTRA_HEADER_|OUT_PATHS$)/.test(k)),
  );
  process.stdout.write(JSON.stringify({
    argv: process.argv.slice(2),
    env,
    headers: config.s3.extraHeaders.toRecord(),
    signingKeyPath: config.signingKeyPath,
    warnings: warnings.map((w) => w.path),
  }));
  process.exit(${loftExit});
});
`,
  );
  writeFileSync(
    join(tools.systemd, 'bin', 'systemd-run'),
    `#!${process.execPath}\nprocess.stdout.write(JSON.stringify(process.argv.slice(2)));\n`,
  );
  chmodSync(join(tools.loft, 'bin', 'loft'), 0o755);
  chmodSync(join(tools.systemd, 'bin', 'systemd-run'), 0o755);
  symlinkSync('/usr/bin/timeout', join(tools.coreutils, 'bin', 'timeout'));
  const toml = join(dir, 'loft.toml');
  writeFileSync(toml, configText);
  const creds = join(dir, 'credentials');
  mkdirSync(creds);
  return { dir, tools, toml, creds, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function runScript(
  text: string,
  args: string[],
  env: Record<string, string>,
  user?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'loft-script-'));
  const file = join(dir, 'script');
  writeFileSync(file, `#!/bin/bash\n${text}`);
  chmodSync(dir, 0o755);
  chmodSync(file, 0o755);
  const [cmd, argv] = user
    ? ['/usr/sbin/runuser', ['-u', user, '--', file, ...args]]
    : [file, args];
  try {
    const { stdout, stderr } = await exec(cmd, argv, { env: { PATH: '/usr/bin:/bin', ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('start script: exports each credential (trailing newline dropped) as the variable Loft reads, then runs loft -c <toml> --debug', async () => {
  const first = await evalModule(full);
  const sb = sandbox(first.configText);
  try {
    const stub = await evalModule(full, sb.tools);
    writeFileSync(join(sb.creds, 's3-access-key'), 'AKIDEXAMPLE\n');
    writeFileSync(join(sb.creds, 's3-secret-key'), 'secret/key+value\n\n');
    writeFileSync(join(sb.creds, 'extra-header-CF-Access-Client-Secret'), 'cf-secret-value\n');
    writeFileSync(join(sb.creds, 'signing-key'), 'unused:here');
    const r = await runScript(stub.startScript, ['--status'], {
      CREDENTIALS_DIRECTORY: sb.creds,
      LOFT_TEST_TOML: sb.toml,
    });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      argv: string[];
      env: Record<string, string>;
      headers: Record<string, string>;
      signingKeyPath?: string;
      warnings: string[];
    };
    assert.deepEqual(out.argv, ['-c', stub.configFile, '--debug', '--status']);
    // Loft reads the key from this unit's own credential copy.
    assert.equal(out.signingKeyPath, join(sb.creds, 'signing-key'));
    assert.deepEqual(out.env, {
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret/key+value',
      LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: 'cf-secret-value',
    });
    // Loft merges the file's header (inline, from loft.toml) with the exported one.
    assert.deepEqual(out.headers, {
      'cf-access-client-secret': 'cf-secret-value',
      'x-inline': 'inline-value',
    });
    assert.deepEqual(out.warnings, []);
  } finally {
    sb.cleanup();
  }
});

test('start script: refuses to start without the credentials systemd should have loaded', async () => {
  const first = await evalModule(full);
  const sb = sandbox(first.configText);
  try {
    const stub = await evalModule(full, sb.tools);
    const noDir = await runScript(stub.startScript, [], { LOFT_TEST_TOML: sb.toml });
    assert.notEqual(noDir.code, 0);
    assert.match(noDir.stderr, /systemd did not load the credentials/);
    assert.equal(noDir.stdout, '', 'loft must not run');
    // One credential file missing: the failed read stops the script (set -e).
    writeFileSync(join(sb.creds, 's3-access-key'), 'AKIDEXAMPLE');
    const missing = await runScript(stub.startScript, [], {
      CREDENTIALS_DIRECTORY: sb.creds,
      LOFT_TEST_TOML: sb.toml,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /s3-secret-key: No such file/);
    assert.equal(missing.stdout, '', 'loft must not run');
  } finally {
    sb.cleanup();
  }
});

test('post-build hook: runs loft -c <toml> --post-build-hook with OUT_PATHS, and never fails the build', async () => {
  const first = await evalModule(full);
  for (const loftExit of [0, 1]) {
    const sb = sandbox(first.configText, loftExit);
    try {
      const stub = await evalModule(full, sb.tools);
      assert.ok(stub.hookScript);
      const outPaths =
        '/nix/store/00000000000000000000000000000000-a /nix/store/11111111111111111111111111111111-b';
      const r = await runScript(stub.hookScript, [], {
        OUT_PATHS: outPaths,
        LOFT_TEST_TOML: sb.toml,
      });
      assert.equal(r.code, 0, `hook exit code with loft exiting ${loftExit}`);
      const out = JSON.parse(r.stdout) as { argv: string[]; env: Record<string, string> };
      assert.deepEqual(out.argv, ['-c', stub.configFile, '--post-build-hook']);
      assert.equal(out.env.OUT_PATHS, outPaths);
      if (loftExit === 0) assert.equal(r.stderr, '');
      else
        assert.match(r.stderr, /could not record .*-a .*-b; the loft service will still find them/);
    } finally {
      sb.cleanup();
    }
  }
});

test('loft-admin: a one-off command runs as the service would, through systemd-run, for root only', async () => {
  const first = await evalModule(full);
  const sb = sandbox(first.configText);
  try {
    const stub = await evalModule(full, sb.tools);
    const r = await runScript(stub.adminScript, ['--prune', '--dry-run'], {});
    assert.equal(r.code, 0, r.stderr);
    const argv = JSON.parse(r.stdout) as string[];
    const startScript = String(stub.unit.serviceConfig.ExecStart);
    assert.deepEqual(argv, [
      '--quiet',
      '--wait',
      '--collect',
      '--service-type=exec',
      '--pipe', // not a terminal here
      '--property=DynamicUser=yes',
      '--property=User=loft',
      '--property=UMask=0077',
      '--property=StateDirectory=loft',
      '--property=StateDirectory=loft/inbox',
      '--property=LoadCredential=s3-access-key:/run/secrets/s3-access-key',
      '--property=LoadCredential=s3-secret-key:/run/secrets/s3-secret-key',
      '--property=LoadCredential=extra-header-CF-Access-Client-Secret:/run/secrets/cf-access-secret',
      '--property=LoadCredential=signing-key:/run/secrets/nix-signing-key',
      startScript,
      '--prune',
      '--dry-run',
    ]);
    const notRoot = await runScript(stub.adminScript, ['--status'], {}, 'nobody');
    assert.equal(notRoot.code, 1);
    assert.match(notRoot.stderr, /run it as root/);
    assert.equal(notRoot.stdout, '');
  } finally {
    sb.cleanup();
  }
});

test('loft.toml reaches /etc/loft/loft.toml and is the file the unit and the hook use', async () => {
  const stub = await evalModule(full);
  assert.match(stub.configFile, /-loft\.toml$/);
  assert.ok(stub.startScript.includes(`'-c' '${stub.configFile}'`));
  assert.ok(stub.hookScript?.includes(`-c '${stub.configFile}' --post-build-hook`));
  assert.doesNotMatch(stub.configText, /signing_key_path/);
  assert.ok(
    stub.startScript.includes('export LOFT_SIGNING_KEY_PATH="$CREDENTIALS_DIRECTORY"/signing-key'),
  );
});

// ---- the flake ----------------------------------------------------------------------------------

interface FlakeSummary {
  outputs: string[];
  nixpkgsInput: string;
  packages: Record<string, string[]>;
  defaultIsLoft: boolean;
  overlayProvides: string[];
  nixosModules: string[];
  moduleImports: string[];
  moduleSetsNixpkgs: boolean;
  devShell: string[];
  checks: Record<string, string[]>;
  package: {
    pname: string;
    version: string;
    nodejs: string;
    npmConfigHook: string;
    npmRoot: string;
    src: string;
    srcFiles: string[];
    srcRoot: string;
    npmRebuildFlags: string[];
    makeWrapperArgs: string[];
    doInstallCheck: boolean;
    installCheckPhase: string;
    meta: { mainProgram: string; license: string };
  };
}

test('flake outputs: packages, overlay, modules, devShell and checks, against a stand-in nixpkgs', async () => {
  const f = await nixEval<FlakeSummary>(
    { file: join(fixtures, 'flake-eval.nix') },
    { argstr: { repo: repoRoot } },
  );
  const systems = ['aarch64-linux', 'x86_64-linux'];
  assert.deepEqual(f.outputs, ['checks', 'devShells', 'nixosModules', 'overlays', 'packages']);
  assert.equal(f.nixpkgsInput, 'github:NixOS/nixpkgs/nixos-unstable');
  assert.deepEqual(f.packages, Object.fromEntries(systems.map((s) => [s, ['default', 'loft']])));
  assert.ok(f.defaultIsLoft);
  assert.deepEqual(f.overlayProvides, ['loft']);
  assert.deepEqual(f.nixosModules, ['default', 'loft']);
  assert.deepEqual(f.moduleImports, ['nix/module.nix']);
  // No nixpkgs.overlays: that option must be unique where the package set is read-only.
  assert.equal(f.moduleSetsNixpkgs, false, 'the module sets no nixpkgs.* option');
  assert.deepEqual(
    f.devShell.map((n) => n.replace(/-[0-9.]+$/, '')),
    ['nodejs', 'python3', 'xz', 'nix'],
  );
  assert.deepEqual(
    f.checks,
    Object.fromEntries(systems.map((s) => [s, ['module-eval', 'nix-lib', 'vm']])),
  );
});

test('the package: built from the lockfile with importNpmLock, only the files the build reads, native modules against its Node, xz on PATH', async () => {
  const { package: p } = await nixEval<FlakeSummary>(
    { file: join(fixtures, 'flake-eval.nix') },
    { argstr: { repo: repoRoot } },
  );
  const pkgJson = (await import(pathToFileURL(join(repoRoot, 'package.json')).href, {
    with: { type: 'json' },
  })) as {
    default: { version: string };
  };
  assert.equal(p.pname, 'loft');
  assert.equal(p.version, pkgJson.default.version);
  assert.equal(p.npmConfigHook, 'importNpmLock-npm-config-hook');
  assert.equal(p.npmRoot, p.src);
  assert.equal(p.srcRoot, '.');
  assert.deepEqual(p.srcFiles, [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'bin',
    'src',
    'scripts/bundle.mjs',
  ]);
  assert.deepEqual(p.npmRebuildFlags, [
    `--nodedir=/nix/store/00000000000000000000000000000000-${p.nodejs}-source`,
  ]);
  assert.deepEqual(p.makeWrapperArgs, [
    '--prefix',
    'PATH',
    ':',
    '/nix/store/00000000000000000000000000000000-xz-5.6.3/bin',
  ]);
  assert.ok(p.doInstallCheck);
  for (const needle of [
    `"loft ${pkgJson.default.version} (node 24.11.1)"`,
    'better-sqlite3',
    'zstdCompressSync',
    'xz-5.6.3/bin',
    'dist/bundle/$f',
    '.tsbuildinfo',
  ]) {
    assert.ok(p.installCheckPhase.includes(needle), `install check covers ${needle}`);
  }
  assert.equal(p.meta.mainProgram, 'loft');
  // The Node it is tested with: nixpkgs' nodejs_24, whatever the default nodejs is.
  assert.equal(p.nodejs, 'nodejs-24.11.1');
  const err = await nixEvalError(
    { file: join(fixtures, 'flake-eval.nix') },
    { argstr: { repo: repoRoot, nodeVersion: '22.12.0' } },
  );
  assert.match(err, /Loft needs Node\.js 22\.15 or newer, got 22\.12\.0/);
});

// ---- the VM test (not run here) ----------------------------------------------------------------

test('the VM test script is valid Python that uses only names the NixOS test driver provides', async () => {
  const vm = await nixEval<{ name: string; nodes: string[]; script: string }>({
    file: join(fixtures, 'vm-script.nix'),
  });
  assert.equal(vm.name, 'loft');
  assert.deepEqual(vm.nodes, ['client', 'server']);
  // Names read but never bound in the script must be Python builtins or the driver's globals.
  const check = `
import ast, builtins, sys
tree = ast.parse(open(sys.argv[1]).read())
bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
bound |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
print(" ".join(sorted(used - bound - set(dir(builtins)))))
`;
  const dir = mkdtempSync(join(tmpdir(), 'loft-vmpy-'));
  try {
    const script = join(dir, 'test.py');
    writeFileSync(script, vm.script);
    const { stdout } = await exec('python3', ['-c', check, script]);
    assert.deepEqual(stdout.trim().split(' ').sort(), ['client', 'server', 'start_all', 'subtest']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const step of [
    'garage key import',
    'nix-store -r',
    'trusted-public-keys',
    'loft-admin --version',
  ]) {
    assert.ok(vm.script.includes(step), `the VM test covers ${step}`);
  }
});

// What nixpkgs' test driver (nixos/lib/testing/driver.nix) runs on a testScript before any
// VM starts: pyflakes with the node names and the driver's globals as builtins. The names
// are Driver.test_symbols()'s keys, as its generate-driver-symbols writes them.
const DRIVER_SYMBOLS = [
  'start_all',
  'test_script',
  'machines_qemu',
  'machines_nspawn',
  'vlans',
  'driver',
  'log',
  'os',
  'create_machine',
  'subtest',
  'run_tests',
  'join_all',
  'retry',
  'serial_stdout_off',
  'serial_stdout_on',
  'polling_condition',
  'BaseMachine',
  't',
  'debug',
];

/**
 * Runs `python3 -m <tool>` with Debian's Python (where its packages are, whatever else is
 * first on PATH); fails saying what to install when the tool is missing.
 */
async function pythonTool(tool: string, pkg: string, args: string[], env: object = {}) {
  const python = '/usr/bin/python3';
  const present = await exec(python, ['-c', `import ${tool}`]).then(
    () => true,
    () => false,
  );
  assert.ok(
    present,
    `${python} cannot import ${tool}: install Debian's ${pkg} (scripts/setup.sh does)`,
  );
  return exec(python, ['-m', tool, ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      out: e.stdout + e.stderr,
    }),
  );
}

test('the VM test script passes pyflakes as the NixOS test driver runs it, and mypy with the driver names typed', async () => {
  const vm = await nixEval<{ name: string; nodes: string[]; script: string }>({
    file: join(fixtures, 'vm-script.nix'),
  });
  const dir = mkdtempSync(join(tmpdir(), 'loft-vmlint-'));
  try {
    const script = join(dir, 'test-script');
    writeFileSync(script, vm.script);
    const builtins = [...vm.nodes, ...DRIVER_SYMBOLS].join(',');
    const flakes = await pythonTool('pyflakes', 'python3-pyflakes', [script], {
      PYFLAKES_BUILTINS: builtins,
    });
    assert.equal(flakes.code, 0, `pyflakes:\n${flakes.out}`);
    // The linter does catch what the driver would refuse: a placeholder-less f-string.
    writeFileSync(join(dir, 'bad'), `${vm.script}\nserver.succeed(f"true")\n`);
    const bad = await pythonTool('pyflakes', 'python3-pyflakes', [join(dir, 'bad')], {
      PYFLAKES_BUILTINS: builtins,
    });
    assert.match(bad.out, /f-string is missing placeholders/);
    // mypy as the driver runs it, over a prelude that types the driver's names. The real
    // prelude imports the driver's classes, which are not here: machines are typed Any.
    const prelude = [
      'from typing import Any, Callable, ContextManager',
      'start_all: Callable[[], None]',
      'subtest: Callable[[str], ContextManager[None]]',
      ...DRIVER_SYMBOLS.filter((n) => n !== 'start_all' && n !== 'subtest').map((n) => `${n}: Any`),
      ...vm.nodes.map((n) => `${n}: Any`),
      '',
    ].join('\n');
    const typed = join(dir, 'testScriptWithTypes');
    writeFileSync(typed, prelude + vm.script);
    const mypy = await pythonTool('mypy', 'mypy', [
      '--no-implicit-optional',
      '--pretty',
      '--no-color-output',
      '--cache-dir',
      join(dir, 'mypy-cache'),
      typed,
    ]);
    assert.equal(mypy.code, 0, `mypy:\n${mypy.out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the flake's nix-lib check script: passes against a Loft package tree, fails when a Nix test fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-nixlib-'));
  try {
    // A tree shaped like the package's output: lib/node_modules/loft is Loft, built.
    const out = join(dir, 'loft-out');
    mkdirSync(join(out, 'lib', 'node_modules'), { recursive: true });
    symlinkSync(repoRoot, join(out, 'lib', 'node_modules', 'loft'));
    const { stdout } = await exec(
      'nix-instantiate',
      [
        '--eval',
        '--strict',
        '--json',
        '--readonly-mode',
        join(fixtures, 'flake-eval.nix'),
        '--argstr',
        'repo',
        repoRoot,
      ],
      { env: { ...process.env, LOFT_STUB_PACKAGE_OUT: out }, maxBuffer: 64 << 20 },
    );
    const check = (
      JSON.parse(stdout) as { nixLibCheck: { script: string; env: Record<string, unknown> } }
    ).nixLibCheck;
    // Read-only evaluation does not copy check-toml.mjs into the store; use the original.
    const script = check.script.replace(
      /\/nix\/store\/[a-z0-9]{32}-check-toml\.mjs/,
      join(nixTests, 'check-toml.mjs'),
    );
    assert.notEqual(script, check.script, 'the check runs check-toml.mjs');
    const run = async (pureJson: string) => {
      writeFileSync(join(dir, 'pure.json'), pureJson);
      writeFileSync(join(dir, 'cases.json'), String(check.env.casesJson));
      const env = {
        PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`,
        pureJsonPath: join(dir, 'pure.json'),
        casesJsonPath: join(dir, 'cases.json'),
        out: join(dir, 'result'),
      };
      rmSync(env.out, { force: true });
      return exec('bash', ['-euo', 'pipefail', '-c', script], { env });
    };
    const ok = await run(String(check.env.pureJson));
    assert.match(ok.stdout, /^lib\.nix: \d+ tests passed$/m);
    assert.equal(ok.stdout.match(/^ok /gm)?.length, 6);
    const failing = JSON.stringify({ count: 1, failures: [{ name: 'x', problem: 'broken' }] });
    await assert.rejects(run(failing), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', /"problem": "broken"/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
