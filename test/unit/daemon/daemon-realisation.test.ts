/**
 * QueryRealisation (op 43) over scripted daemon bytes: the request, the JSON reply of
 * protocol 1.31 and later (Nix 2.8 speaks 1.34), the bare output path of 1.27 to 1.30, an
 * empty reply, and which versions have the operation at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { queryRealisationOp, supportsRealisations } from '../../../src/daemon/ops.js';
import { protocolVersion } from '../../../src/daemon/constants.js';
import { formatRealisation } from '../../../src/nix/realisation.js';
import { isLoftError } from '../../../src/util/errors.js';
import { REALISATIONS } from '../nix/ca-vectors.js';
import { LAST, openScripted, str, strs, u64 } from './scripted.js';

const ID = 'sha256:767a973c73d88d58dfa76d5b86f2c0d676ad2a7b53a50b46edf84e1d3628dc7d!out';

test('QueryRealisation at 1.34: request bytes, and the JSON realisation as Nix sends it', async () => {
  const { conn, d } = await openScripted(34);
  const p = conn.call(queryRealisationOp(ID));
  await d.expect(Buffer.concat([u64(43), str(ID)]));
  d.send(LAST, strs([REALISATIONS.dep]));
  const r = await p;
  assert.ok(r);
  assert.equal(formatRealisation(r), REALISATIONS.dep);
  const none = conn.call(queryRealisationOp(ID));
  d.send(LAST, u64(0));
  assert.equal(await none, undefined);
  conn.destroy();
});

test('QueryRealisation at 1.27-1.30 gets the output path only: no signatures, no dependencies', async () => {
  const { conn, d } = await openScripted(30);
  const p = conn.call(queryRealisationOp(ID));
  d.send(LAST, strs(['/nix/store/s7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep']));
  assert.deepEqual(await p, {
    id: ID,
    outPath: 's7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep',
    signatures: [],
    dependentRealisations: {},
  });
  conn.destroy();
});

test('QueryRealisation exists from protocol 1.27 (Nix 2.4) on', () => {
  assert.equal(supportsRealisations(protocolVersion(1, 21)), false);
  assert.equal(supportsRealisations(protocolVersion(1, 26)), false);
  assert.equal(supportsRealisations(protocolVersion(1, 27)), true);
  assert.equal(supportsRealisations(protocolVersion(1, 34)), true);
});

test('a malformed id is refused before anything is written', () => {
  assert.throws(
    () => queryRealisationOp('no-bang'),
    (e: unknown) => isLoftError(e),
  );
});
