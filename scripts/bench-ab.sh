#!/usr/bin/env bash
# A/B of two shardcache binaries (e.g. two commits): requests per server CPU-second for
# pipelined SET and GET (redis-benchmark -P 16 -c 50 -r 100000 -d 32), the server pinned to CPU 0
# and the load to CPU 1, one worker thread, rounds alternating which binary goes first. Used
# to tell a regression from this machine's noise.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY        (ROUNDS=4, N=2000000, PORT=27501)
set -euo pipefail
OLD=$1
NEW=$2
ROUNDS=${ROUNDS:-4}
N=${N:-2000000}
PORT=${PORT:-27501}
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
one() { # binary test -> requests per server CPU-second
  taskset -c 0 "$1" --port "$PORT" --metrics-addr '' --log-level warn --threads 1 &
  local pid=$!
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local c0 c1
  c0=$(cpu "$pid")
  taskset -c 1 redis-benchmark -p "$PORT" -t "$2" -n "$N" -c 50 -P 16 -r 100000 -d 32 -q >/dev/null 2>&1
  c1=$(cpu "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo $((N * tck / (c1 - c0)))
}
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r)"
echo "date: $(date -u +%FT%TZ); old: $OLD; new: $NEW"
for r in $(seq "$ROUNDS"); do
  for t in set get; do
    if ((r % 2)); then
      a=$(one "$OLD" "$t"); b=$(one "$NEW" "$t")
    else
      b=$(one "$NEW" "$t"); a=$(one "$OLD" "$t")
    fi
    echo "round=$r test=$t old=$a new=$b ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')"
  done
done
