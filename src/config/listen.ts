/**
 * `metrics_listen`: where the metrics listener binds. Loopback unless an address is
 * written out: "9464" and ":9464" mean 127.0.0.1:9464; "0.0.0.0:9464", "[::]:9464" or a
 * host name bind there, because the user said so.
 */
export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** The address, or a problem text for the config error. */
export function parseListen(text: string): ListenAddress | string {
  const t = text.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:([^:]*)$/.exec(t);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (/^:?[0-9]+$/.test(t)) {
    host = DEFAULT_METRICS_HOST;
    portText = t.replace(/^:/, '');
  } else {
    const colon = t.lastIndexOf(':');
    if (colon <= 0 || t.indexOf(':') !== colon) {
      return 'must be "PORT", "HOST:PORT" or "[IPv6]:PORT" (e.g. "127.0.0.1:9464")';
    }
    host = t.slice(0, colon);
    portText = t.slice(colon + 1);
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return `has an invalid host ${JSON.stringify(host)}`;
  }
  const port = Number(portText);
  if (!/^[0-9]+$/.test(portText) || port > 65535) {
    return `has an invalid port ${JSON.stringify(portText)} (0-65535)`;
  }
  return { host, port };
}
