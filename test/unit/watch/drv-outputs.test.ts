import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derivationOutputs } from '../../../src/watch/drv-outputs.js';
import { hookPaths } from '../../../src/cli/commands/hook.js';
import { MemoryLogger } from '../../../src/util/log.js';

// Written by Nix 2.8 (nix-instantiate) for a two-output derivation; escapes in the env part.
const DRV =
  'Derive([("dev","/nix/store/0c8yq2w4b5zvl7p5ib6yy8dzzzl7lp2x-multi-dev","",""),' +
  '("out","/nix/store/9xz4h3l8q6sz7vfx7cm2z4w9r0a8r1yf-multi","","")],[],[],"x86_64-linux",' +
  '"/bin/sh",["-c","mkdir $out $dev; echo \\"q\\" > $out/f"],[("a","line\\nbreak"),("dev",' +
  '"/nix/store/0c8yq2w4b5zvl7p5ib6yy8dzzzl7lp2x-multi-dev")])';
// A content-addressed derivation: no output paths known in advance.
const CA_DRV = 'Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",[],[])';

test('output paths are read from a .drv file', () => {
  assert.deepEqual(derivationOutputs(DRV), [
    { name: 'dev', path: '/nix/store/0c8yq2w4b5zvl7p5ib6yy8dzzzl7lp2x-multi-dev' },
    { name: 'out', path: '/nix/store/9xz4h3l8q6sz7vfx7cm2z4w9r0a8r1yf-multi' },
  ]);
  assert.deepEqual(derivationOutputs(CA_DRV), []);
  assert.throws(() => derivationOutputs('not a drv'));
  assert.throws(() => derivationOutputs('Derive([("out","/nix/store/x'));
});

test('the hook takes $OUT_PATHS, or the outputs of $DRV_PATH when Nix 2.8.0 passes it empty', () => {
  const log = new MemoryLogger();
  const read = (p: string) => {
    assert.equal(p, '/nix/store/abc-multi.drv');
    return DRV;
  };
  assert.deepEqual(hookPaths({ OUT_PATHS: '/nix/store/a-x /nix/store/b-y' }, log, read), [
    '/nix/store/a-x',
    '/nix/store/b-y',
  ]);
  assert.deepEqual(hookPaths({ OUT_PATHS: '', DRV_PATH: '/nix/store/abc-multi.drv' }, log, read), [
    '/nix/store/0c8yq2w4b5zvl7p5ib6yy8dzzzl7lp2x-multi-dev',
    '/nix/store/9xz4h3l8q6sz7vfx7cm2z4w9r0a8r1yf-multi',
  ]);
  // An unreadable derivation is a warning, never a failed build.
  const none = hookPaths({ OUT_PATHS: ' ', DRV_PATH: '/nix/store/gone.drv' }, log, () => {
    throw new Error('ENOENT');
  });
  assert.deepEqual(none, []);
  assert.match(log.text(), /could not be read/);
});
