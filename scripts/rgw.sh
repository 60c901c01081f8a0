#!/usr/bin/env bash
# A real S3 server on loopback for tests, benchmarks and the demo: a single-node Ceph
# cluster (one mon, one OSD, no mgr) with a RADOS Gateway in front.
#
#   scripts/rgw.sh install          apt-get the Ceph packages (needs root)
#   scripts/rgw.sh up DIR           start on free 127.0.0.1 ports, state under DIR;
#                                   writes DIR/env and prints the endpoint
#   scripts/rgw.sh down DIR         stop every daemon by its recorded PID, remove DIR
#   scripts/rgw.sh bucket DIR NAME [public]
#                                   create a bucket; "public" allows anonymous GetObject
#                                   so a Nix client can substitute over plain HTTP
#   scripts/rgw.sh gc DIR           free the space of deleted objects now (benchmarks
#                                   that delete and rewrite large objects in memstore)
#
# Environment: OSD_STORE=memstore (default; data in RAM, capped by MEMSTORE_BYTES) or
# bluestore (a sparse file under DIR, for runs larger than RAM should hold).
# RGW_TCP_NODELAY=1 (default) or 0 (Ceph's own default). With 0 the gateway sends a
# response's headers and body as two small writes under Nagle's algorithm, so every answer
# with a body (GET, LIST) on a reused connection waits for the client's delayed ACK, about
# 40 ms on Linux; a push sends several such requests in a row.
set -euo pipefail

ACCESS_KEY=${RGW_ACCESS_KEY:-LOFTTESTACCESSKEY}
SECRET_KEY=${RGW_SECRET_KEY:-LOFTTESTSECRETKEY0000000000000000000000}
REGION=us-east-1

die() { echo "rgw.sh: $*" >&2; exit 1; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

cmd_install() {
  local pkgs=(radosgw ceph-mon ceph-osd uuid-runtime curl)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; run as root: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sign with curl's SigV4 so RGW checks our credentials like any S3 client's.
s3curl() {
  # curl 7.88 signs no payload hash of its own; RGW insists on one.
  curl -sS --fail-with-body --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

stop_pid() { # name pidfile: TERM, then KILL after 10 s
  local name=$1 file=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "rgw.sh: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

cmd_down() {
  local d=${1:?usage: rgw.sh down DIR}
  [ -d "$d" ] || return 0
  # In order (~2 s each): the gateway hangs on SIGTERM when its OSD is already gone.
  for n in rgw osd mon; do stop_pid "$n" "$d/$n.pid"; done
  rm -rf "$d"
}

cmd_up() {
  local d=${1:?usage: rgw.sh up DIR}
  command -v radosgw >/dev/null || die "radosgw is not installed; run: scripts/rgw.sh install (as root)"
  [ -e "$d" ] && die "$d exists; stop it first with: scripts/rgw.sh down $d"
  local store=${OSD_STORE:-memstore} memstore_bytes=${MEMSTORE_BYTES:-4294967296}
  local nodelay=${RGW_TCP_NODELAY:-1}
  [ "$nodelay" = 0 ] || [ "$nodelay" = 1 ] || die "RGW_TCP_NODELAY must be 0 or 1, not '$nodelay'"
  local rgw_port mon_port fsid conf t0
  t0=$(date +%s%N)
  rgw_port=$(free_port); mon_port=$(free_port)
  while [ "$mon_port" = "$rgw_port" ]; do mon_port=$(free_port); done
  mkdir -p "$d"/{mon/a,osd/0,rgw,run,log}
  # If anything below fails, stop what was started so no daemon outlives the script.
  trap 'rc=$?; [ $rc -ne 0 ] && { echo "rgw.sh: start failed; logs in $d/log" >&2; for n in rgw osd mon; do stop_pid $n "$d/$n.pid"; done; }' EXIT
  fsid=$(uuidgen)
  conf=$d/ceph.conf
  # cephx stays on: with auth none the OSD fails on restart. The paxos intervals take the
  # cold start from ~12 s to ~2 s; pool size 1 makes a single OSD enough.
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $d/keyring
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 1
paxos propose interval = 0.05
paxos min wait = 0.01
[mon]
mon data = $d/mon/\$id
[osd]
osd data = $d/osd/\$id
keyring = $d/osd/\$id/keyring
osd objectstore = $store
memstore device bytes = $memstore_bytes
bluestore block create = true
bluestore block size = 107374182400
bluestore fsck on mkfs = false
bluestore fsck on mount = false
osd memory target = 1073741824
osd op num threads per shard = 1
osd op num shards = 1
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=$nodelay
rgw data = $d/rgw
keyring = $d/rgw/keyring
rgw init timeout = 60
rgw thread pool size = 64
# Deleted objects' data is freed by a garbage collector that waits 2 h by default: in a
# throwaway memstore that fills RAM (and then the OSD, which blocks writes) on any run that
# deletes and rewrites large objects.
rgw gc obj min wait = 2
rgw gc processor period = 5
EOF
  local ceph="ceph -c $conf --connect-timeout 10"
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$d/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring"
  ceph-mon -c "$conf" -i a -f >"$d/log/mon.out" 2>&1 &
  echo $! >"$d/mon.pid"
  for _ in $(seq 1 100); do $ceph mon stat >/dev/null 2>&1 && break; sleep 0.1; done
  local osd_uuid osd_id
  osd_uuid=$(uuidgen)
  osd_id=$($ceph osd new "$osd_uuid")
  $ceph auth get-or-create "osd.$osd_id" mon 'allow profile osd' mgr 'allow profile osd' osd 'allow *' -o "$d/osd/$osd_id/keyring" 2>/dev/null
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$d/log/osd.mkfs.out" 2>&1
  ceph-osd -c "$conf" -i "$osd_id" -f >"$d/log/osd.out" 2>&1 &
  echo $! >"$d/osd.pid"
  for i in $(seq 1 300); do
    $ceph osd stat 2>/dev/null | grep -q '1 up' && break
    kill -0 "$(cat "$d/osd.pid")" 2>/dev/null || { tail -5 "$d/log/osd.out" >&2; die "ceph-osd died"; }
    [ "$i" -eq 300 ] && die "ceph-osd did not come up in 60 s"
    sleep 0.2
  done
  $ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$d/rgw/keyring" 2>/dev/null
  radosgw -c "$conf" -n client.rgw.a -f >"$d/log/rgw.out" 2>&1 &
  echo $! >"$d/rgw.pid"
  for i in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && break
    kill -0 "$(cat "$d/rgw.pid")" 2>/dev/null || { tail -5 "$d/log/rgw.out" >&2; die "radosgw died"; }
    [ "$i" -eq 600 ] && die "radosgw did not answer in 60 s"
    sleep 0.1
  done
  radosgw-admin -c "$conf" -n client.admin user create --uid=loft --display-name=loft \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$d/user.json" 2>"$d/log/user.err"
  cat >"$d/env" <<EOF
LOFT_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
LOFT_TEST_S3_REGION=$REGION
LOFT_TEST_S3_ACCESS_KEY=$ACCESS_KEY
LOFT_TEST_S3_SECRET_KEY=$SECRET_KEY
LOFT_TEST_RGW_DIR=$d
EOF
  trap - EXIT
  echo "rgw up in $(( ($(date +%s%N) - t0) / 1000000 )) ms: endpoint http://127.0.0.1:$rgw_port (pids mon=$(cat "$d/mon.pid") osd=$(cat "$d/osd.pid") rgw=$(cat "$d/rgw.pid"))"
}

cmd_bucket() {
  local d=${1:?usage: rgw.sh bucket DIR NAME [public]} name=${2:?bucket name} public=${3:-}
  # shellcheck disable=SC1091
  . "$d/env"
  s3curl -X PUT "$LOFT_TEST_S3_ENDPOINT/$name" -o /dev/null
  if [ "$public" = public ]; then
    local policy
    policy=$(printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}' "$name")
    # "?policy=" rather than "?policy": curl 7.88 signs the bare form differently from RGW.
    s3curl -X PUT "$LOFT_TEST_S3_ENDPOINT/$name?policy=" -H 'Content-Type: application/json' --data-binary "$policy" -o /dev/null
  fi
}

cmd_gc() {
  local d=${1:?usage: rgw.sh gc DIR}
  radosgw-admin -c "$d/ceph.conf" -n client.admin gc process --include-all >/dev/null 2>>"$d/log/gc.err"
}

case "${1:-}" in
  install) cmd_install ;;
  gc) shift; cmd_gc "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  bucket) shift; cmd_bucket "$@" ;;
  *) echo "usage: scripts/rgw.sh install | up DIR | down DIR | bucket DIR NAME [public] | gc DIR" >&2; exit 2 ;;
esac
