#!/usr/bin/env bash
# Wire benchmark: redis-benchmark against redis-server and shardcache in the same run, on the
# same machine. Each server is pinned to CPU 0 and redis-benchmark to CPU 1 (taskset), so the
# comparison is one core of server against one core of load. Prints requests/s per test and
# the shardcache/redis ratio.
#
#   scripts/bench-wire.sh [requests]          (default 1000000)
#   EXTRA_ARGS="--lock-stats false" scripts/bench-wire.sh   # extra shardcache options
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SIZE=${SIZE:-32}
EXTRA_ARGS=${EXTRA_ARGS:-}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release -q -p shardcache-server
BIN=target/release/shardcache
RPORT=${RPORT:-16379}
SPORT=${SPORT:-16380}

taskset -c 0 redis-server --port "$RPORT" --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
RPID=$!
# shellcheck disable=SC2086
taskset -c 0 "$BIN" --port "$SPORT" --metrics-addr '' --log-level warn $EXTRA_ARGS &
SPID=$!
trap 'kill $RPID $SPID 2>/dev/null || true' EXIT
for p in "$RPORT" "$SPORT"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

run() { # port pipeline -> "set_rps get_rps"
  taskset -c 1 redis-benchmark -p "$1" -t set,get -n "$N" -c "$CLIENTS" -P "$2" -r "$KEYSPACE" -d "$SIZE" --csv 2>/dev/null |
    awk -F'","' '/"SET"/{s=$2} /"GET"/{g=$2} END{gsub(/"/,"",s); gsub(/"/,"",g); print s, g}'
}

echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f3); shardcache $($BIN --version | cut -d' ' -f2)"
echo "redis-benchmark -t set,get -n $N -c $CLIENTS -r $KEYSPACE -d $SIZE; servers on CPU 0, load on CPU 1"
printf '%-14s %14s %14s %8s\n' test redis shardcache ratio
for P in 1 16; do
  read -r rs rg < <(run "$RPORT" "$P")
  read -r ss sg < <(run "$SPORT" "$P")
  awk -v p="$P" -v rs="$rs" -v ss="$ss" -v rg="$rg" -v sg="$sg" 'BEGIN {
    printf "%-14s %14s %14s %8.2f\n", "SET -P " p, rs, ss, ss / rs
    printf "%-14s %14s %14s %8.2f\n", "GET -P " p, rg, sg, sg / rg }'
done
