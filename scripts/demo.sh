#!/usr/bin/env bash
# Loft's main job, end to end, on this machine (Debian 12, as root):
#   set up (apt + npm), start a local S3 server (Ceph RGW on loopback), build a sample
#   closure with Nix, push it with Loft, then have Nix substitute it into an empty store
#   from the bucket over HTTP with signatures required and only our key trusted.
# Everything lives under .loft-demo/ (or $LOFT_DEMO_DIR); the S3 server is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${LOFT_DEMO_DIR:-$repo/.loft-demo}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Setting up (Debian packages, npm ci, build)"
scripts/setup.sh

rm -rf "$work"
mkdir -p "$work"
cleanup() { scripts/rgw.sh down "$work/rgw" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "Starting a local S3 server (Ceph RGW on 127.0.0.1)"
scripts/rgw.sh up "$work/rgw"
# shellcheck disable=SC1091
. "$work/rgw/env"
bucket=loft-demo
# Anonymous reads, so Nix can substitute over plain HTTP (Debian's Nix 2.8 has no s3://).
scripts/rgw.sh bucket "$work/rgw" "$bucket" public
export AWS_ACCESS_KEY_ID=$LOFT_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$LOFT_TEST_S3_SECRET_KEY
echo "bucket $bucket at $LOFT_TEST_S3_ENDPOINT"

step "Making a signing key pair"
nix-store --generate-binary-cache-key loft-demo-1 "$work/secret-key" "$work/public-key"
echo "public key: $(cat "$work/public-key")"

step "Building a sample closure with Nix"
out=$(nix-build scripts/demo/sample.nix --argstr salt "$(date +%s%N)" --no-out-link \
  --option substituters '' 2>/dev/null)
nix-store -qR "$out" | sed 's/^/  /'

cat >"$work/loft.toml" <<TOML
[s3]
bucket = "$bucket"
region = "$LOFT_TEST_S3_REGION"
endpoint = "$LOFT_TEST_S3_ENDPOINT"

[loft]
local_cache_path = "$work/cache.db"
signing_key_path = "$work/secret-key"
compression = "zstd"
TOML
step "Pushing with Loft: npx loft -c $work/loft.toml --upload-path $out"
npx --no-install loft -c "$work/loft.toml" --upload-path "$out"

step "Pushing again: everything is already cached"
npx --no-install loft -c "$work/loft.toml" --upload-path "$out"

step "Substituting into an empty store with require-sigs, trusting only our key"
nix-store --store "$work/fresh-store" --realise "$out" \
  --option substituters "$LOFT_TEST_S3_ENDPOINT/$bucket" \
  --option trusted-public-keys "$(cat "$work/public-key")" \
  --option require-sigs true \
  --option narinfo-cache-negative-ttl 0
for p in $(nix-store -qR "$out"); do
  if ! cmp -s <(nix-store --dump "$p") <(nix-store --store "$work/fresh-store" --dump "$p"); then
    echo "MISMATCH: $p differs after substitution" >&2
    exit 1
  fi
done
echo "all $(nix-store -qR "$out" | wc -l) paths substituted and byte-identical to the originals"

step "Done"
