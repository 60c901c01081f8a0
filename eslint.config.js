// Lint: typescript-eslint's recommended rules plus the import layering from
// ../shared/docs/design.md, enforced here so it does not rest on memory.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Each src/ folder may import only the folders listed for it (and itself).
const layers = {
  util: [],
  nix: ['util'],
  daemon: ['util', 'nix'],
  store: ['util', 'nix', 'daemon'],
  compress: ['util', 'nix'],
  storage: ['util', 'nix'],
  index: ['util', 'nix'],
  config: ['util', 'nix'],
  // Worker threads that read NARs from disk and compress them.
  pack: ['util', 'nix', 'store', 'compress'],
  upload: ['util', 'nix', 'store', 'storage', 'index', 'compress', 'pack'],
  watch: ['util', 'nix', 'store', 'index', 'upload'],
  prune: ['util', 'nix', 'storage', 'index'],
  // --verify: a pure audit (findings, audit, repair plan) and its drivers over the bucket
  // and, for --repair, the push pipeline.
  verify: ['util', 'nix', 'storage', 'compress', 'store', 'index', 'upload', 'pack'],
  // Prometheus metrics: a registry (pure) and its HTTP listener.
  metrics: ['util'],
  // --doctor: checks over the config, the daemon and the bucket.
  doctor: ['util', 'nix', 'daemon', 'store', 'storage', 'config'],
  service: [
    'util',
    'nix',
    'store',
    'storage',
    'index',
    'compress',
    'pack',
    'config',
    'upload',
    'watch',
    'prune',
  ],
  // The CLI sits on top and may use everything.
  cli: ['util', 'nix', 'daemon', 'store', 'storage', 'index', 'compress', 'pack', 'config'].concat([
    'upload',
    'watch',
    'prune',
    'service',
    'verify',
    'doctor',
    'metrics',
  ]),
};

// I/O modules that pure layers must never touch, and SDKs owned by one folder each.
const ioModules = [
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'child_process',
  'worker_threads',
  'cluster',
];
const owners = {
  '@aws-sdk/': 'storage',
  '@smithy/': 'storage',
  'better-sqlite3': 'index',
};
const pure = new Set(['util', 'nix']);

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function rulesFor(layer) {
  const allowed = new Set([layer, ...layers[layer]]);
  const forbiddenLayers = Object.keys(layers).filter((l) => !allowed.has(l));
  const patterns = [];
  if (forbiddenLayers.length > 0) {
    patterns.push({
      regex: `^(\\.\\./)+(${forbiddenLayers.join('|')})(/|$)`,
      message: `src/${layer} may import only: ${[...allowed].join(', ')} (layering, see design.md)`,
    });
  }
  for (const [prefix, owner] of Object.entries(owners)) {
    if (owner === layer) continue;
    patterns.push({
      regex: `^${esc(prefix)}`,
      message: `only src/${owner} may import ${prefix}`,
    });
  }
  if (pure.has(layer)) {
    patterns.push({
      regex: `^(node:)?(${ioModules.map(esc).join('|')})$`,
      message: `src/${layer} is pure: no filesystem, network or process I/O (inject it instead)`,
    });
  }
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-console': 'error',
    },
  },
  ...Object.keys(layers).map(rulesFor),
  // Tests, benches, scripts and the CLI's renderer may print.
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**', 'eslint.config.js'],
    rules: { 'no-console': 'off' },
  },
);
