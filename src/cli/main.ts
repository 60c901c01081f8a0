import { parseArgs } from 'node:util';
import { loftVersion } from './version.js';

// Grows with the service-mode issue into the seed's full flag set.
const help = `loft: keep a Nix binary cache in S3-compatible storage

Usage: loft [OPTIONS]

Options:
  -h, --help     Print help
  -V, --version  Print version
`;

function main(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`loft: ${(e as Error).message}\nTry 'loft --help'.\n`);
    return 2;
  }
  if (values.version) {
    process.stdout.write(`loft ${loftVersion()}\n`);
    return 0;
  }
  process.stdout.write(help);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
