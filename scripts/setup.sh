#!/usr/bin/env bash
# Everything Loft's tests, benchmarks and demo need on a fresh Debian 12 machine, idempotent:
# Debian packages (real Nix, Ceph RGW, compilers for the two native npm modules), then
# `npm ci` and the TypeScript build. Run as root, or install the listed packages first.
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
  g++ make python3                        # node-gyp builds better-sqlite3 and zstd-napi
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

# npm ci only when the lockfile changed since the last install (it rebuilds native modules).
stamp=node_modules/.loft-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci (compiles better-sqlite3 and zstd-napi; about 90 s on 2 cores)"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
npm run build --silent
echo "setup: done"
