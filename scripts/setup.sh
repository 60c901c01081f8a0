#!/usr/bin/env bash
# Everything Loft's tests, benchmarks and demo need on a fresh Debian 12 machine, idempotent:
# Debian packages (real Nix, Ceph RGW, a compiler for better-sqlite3, the VM-test script
# checkers), the pinned Node.js 24 (scripts/node-fetch.sh; Debian 12's own Node is 20, which
# Loft no longer supports), `npm ci` and the TypeScript build. Run as root, or install the
# listed packages first. Extra Node majors to prepare: LOFT_SETUP_NODES="24 22".
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  nix-bin                                 # real Nix 2.8: nix-daemon, nix-store, nix copy
  nix-setup-systemd                       # Debian's multi-user set-up: nixbld build users,
                                          # the nix-users group owning the daemon socket's
                                          # directory, /etc/nix/nix.conf (works without a
                                          # running systemd: it only creates users and dirs)
  radosgw ceph-mon ceph-osd uuid-runtime  # a real S3 server for tests (scripts/rgw.sh)
  curl xz-utils zstd                      # rgw.sh signs with curl; xz compression runs `xz`;
                                          # tests check zstd output with the zstd CLI
  g++ make python3                        # node-gyp builds better-sqlite3
  python3-pyflakes mypy                   # check the NixOS VM test's script as its driver does
)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run this script as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Any Node with npm starts this (Debian 12's, say): npm fetches the pinned Node and the
# dependencies; everything after runs on the pinned Node.
command -v npm >/dev/null || { echo "setup: npm is missing; install Node.js with npm (e.g. Debian's nodejs and npm)" >&2; exit 1; }
majors=${LOFT_SETUP_NODES:-24}
# shellcheck disable=SC2086
scripts/node-fetch.sh fetch $majors
node24=$(scripts/node-fetch.sh dir 24)

# npm ci only when the lockfile changed since the last install. Install scripts are skipped:
# the only one, better-sqlite3's, would build for whichever Node runs npm; node-fetch.sh
# builds it once per pinned Node instead.
stamp=node_modules/.loft-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  PATH="$node24/bin:$PATH" npm ci --no-audit --no-fund --ignore-scripts
  echo "$want" >"$stamp"
fi
# shellcheck disable=SC2086
scripts/node-fetch.sh install $majors
# npm puts node_modules/.bin first on the PATH of `npm test`, `npm run` and `npx`: this link
# makes their `node` the pinned one (scripts/node), whichever Node runs npm itself.
ln -sfn ../../scripts/node node_modules/.bin/node
npm run build --silent
echo "setup: done (Node $(scripts/node --version) for build, tests, demo and npx loft)"
