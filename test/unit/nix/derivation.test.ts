/**
 * Derivations, hash modulo and realisations against vectors from real Nix 2.8
 * (ca-vectors.ts): .drv files print back byte for byte, each derivation's hash modulo is
 * the one in the id Nix gave its realisation, and realisations format, fingerprint and
 * sign exactly as Nix did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  floatingOutputs,
  isFixedOutput,
  parseDerivation,
  printDerivation,
} from '../../../src/nix/derivation.js';
import { DerivationHasher } from '../../../src/nix/hash-modulo.js';
import {
  drvOutputId,
  formatRealisation,
  parseRealisation,
  realisationKey,
  signRealisation,
} from '../../../src/nix/realisation.js';
import { parseSecretKey } from '../../../src/nix/signing.js';
import { isLoftError } from '../../../src/util/errors.js';
import { DEMO_SECRET_KEY, DRV_BASENAMES, DRV_TEXTS, REALISATIONS } from './ca-vectors.js';

type Role = keyof typeof DRV_BASENAMES;
const roles = Object.keys(DRV_BASENAMES) as Role[];
const pathOf = (r: Role) => `/nix/store/${DRV_BASENAMES[r]}`;
const byPath = new Map(roles.map((r) => [pathOf(r), DRV_TEXTS[r]]));

test('every .drv Nix wrote parses and prints back byte for byte', () => {
  for (const r of roles) {
    const drv = parseDerivation(DRV_TEXTS[r], r);
    assert.equal(printDerivation(drv), DRV_TEXTS[r], r);
  }
});

test('parsing keeps escapes, inputs and outputs as Nix wrote them', () => {
  const dep = parseDerivation(DRV_TEXTS.dep, 'dep');
  assert.equal(dep.args[1], 'echo "quote\\" tab\t" > $out');
  assert.deepEqual(floatingOutputs(dep), ['out']);
  const top = parseDerivation(DRV_TEXTS.top, 'top');
  assert.deepEqual([...top.outputs.keys()], ['dev', 'out']);
  assert.deepEqual(floatingOutputs(top), ['dev', 'out']);
  assert.deepEqual([...top.inputDrvs.values()], [['out'], ['out']]);
  assert.equal(isFixedOutput(parseDerivation(DRV_TEXTS.fod, 'fod')), true);
  assert.equal(isFixedOutput(top), false);
  assert.deepEqual(floatingOutputs(parseDerivation(DRV_TEXTS.ia, 'ia')), []);
});

test('a malformed derivation is a DERIVATION_INVALID error naming the file and offset', () => {
  for (const bad of ['Derive([', 'Derive([("out","","","")],[],[],"x","y",[],[]) ', 'Derivx']) {
    assert.throws(
      () => parseDerivation(bad, '/nix/store/x.drv'),
      (e: unknown) => isLoftError(e, 'DERIVATION_INVALID') && /x\.drv.*offset/.test(String(e)),
    );
  }
});

test("each derivation's hash modulo is the one in the realisation ids Nix registered", async () => {
  const reads: string[] = [];
  const hasher = new DerivationHasher((p) => {
    reads.push(p);
    return Promise.resolve(parseDerivation(byPath.get(p)!, p));
  });
  const idsOf = async (r: Role) => {
    const hashes = await hasher.outputHashes(parseDerivation(DRV_TEXTS[r], r));
    return [...hashes].map(([name, h]) => drvOutputId(h, name));
  };
  const id = (json: string) => parseRealisation(json).id;
  assert.deepEqual(await idsOf('top'), [
    id(REALISATIONS.top).replace('!out', '!dev'),
    id(REALISATIONS.top),
  ]);
  assert.deepEqual(await idsOf('topResolved'), [
    id(REALISATIONS.topResolvedDev),
    id(REALISATIONS.topResolvedOut),
  ]);
  assert.deepEqual(await idsOf('dep'), [id(REALISATIONS.dep)]);
  assert.deepEqual(await idsOf('ia'), [id(REALISATIONS.ia)]);
  assert.deepEqual(await idsOf('fod'), [id(REALISATIONS.fod)]);
  // Inputs are read once each, however often they are asked about.
  assert.equal(reads.length, new Set(reads).size);
});

test('realisations format as Nix prints them, and our signature equals the one Nix made', () => {
  const key = parseSecretKey(DEMO_SECRET_KEY, 'demo');
  for (const [name, json] of Object.entries(REALISATIONS)) {
    const r = parseRealisation(json);
    assert.equal(formatRealisation(r), json, name);
    const resigned = signRealisation({ ...r, signatures: [] }, key);
    if (r.signatures.length > 0) assert.equal(formatRealisation(resigned), json, name);
  }
  assert.equal(
    realisationKey(parseRealisation(REALISATIONS.dep).id),
    'realisations/sha256:767a973c73d88d58dfa76d5b86f2c0d676ad2a7b53a50b46edf84e1d3628dc7d!out.doi',
  );
});

test('signing replaces an older signature by the same key and keeps the others, sorted', () => {
  const key = parseSecretKey(DEMO_SECRET_KEY, 'demo');
  const r = parseRealisation(REALISATIONS.dep);
  const signed = signRealisation({ ...r, signatures: ['demo-1:old', 'other-1:x', 'a-1:y'] }, key);
  assert.deepEqual(signed.signatures, ['a-1:y', r.signatures[0], 'other-1:x']);
});

test('a realisation without an id or outPath, or not JSON, is REALISATION_INVALID', () => {
  for (const bad of [
    'nope',
    '[]',
    '{"outPath":"x-y"}',
    '{"id":"sha256:00!out"}',
    '{"id":"sha256:767a973c73d88d58dfa76d5b86f2c0d676ad2a7b53a50b46edf84e1d3628dc7d!out","outPath":"/nix/store/x"}',
  ]) {
    assert.throws(
      () => parseRealisation(bad),
      (e: unknown) => isLoftError(e, 'REALISATION_INVALID'),
      bad,
    );
  }
});
