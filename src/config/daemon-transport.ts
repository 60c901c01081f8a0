import type { LoftConfig } from './types.js';

/**
 * How to reach the nix-daemon, from the config: a socket named there is the only one
 * (never a silent fallback to another store); otherwise the usual search.
 */
export function daemonTransportOf(
  config: Pick<LoftConfig, 'daemonSocket'>,
): { transport: 'auto' } | { transport: 'socket'; socketPath: string } {
  return config.daemonSocket === undefined
    ? { transport: 'auto' }
    : { transport: 'socket', socketPath: config.daemonSocket };
}
