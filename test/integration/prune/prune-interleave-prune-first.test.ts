/**
 * The lease protocol under every interleaving of its steps, the prune stopped first (see
 * interleave.ts): the pushed closure stays whole, deep-checked and substituted by real Nix.
 */
import { test } from 'node:test';
import { interleavings } from './interleave.js';

test('a push and a size prune stopped at every pair of protocol steps, prune first: the pushed closure stays whole', async () => {
  await interleavings('prune first');
});
