#!/usr/bin/env bash
# Who holds the locks: the README's walkthrough, from a real run. A release shardcache with
# 500k keys serves a GET/SET load (redis-benchmark, random keys) while `KEYS *` runs in a loop;
# then LOCKLOG, the blame series of /metrics, INFO contention's verdict and `go tool pprof`
# on /debug/pprof/mutex are printed. Then the same server under a one-key storm (SET and GET
# on one key), after CONFIG RESETSTAT and LOCKLOG RESET.
#
#   scripts/lock-blame-demo.sh [out-file]   (default: docs/bench/raw/lock-blame-DATE-COMMIT.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/raw/lock-blame-$(date -u +%F)-$(git rev-parse --short HEAD).txt}
PORT=${PORT:-16390}
MPORT=$((PORT + 3000))
cargo build --release -q -p shardcache-server
target/release/shardcache --port "$PORT" --log-level warn &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
exec > >(tee "$OUT") 2>&1
echo "# lock-blame walkthrough: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
echo "# machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The key names redis-benchmark -r uses (key:%012d), so the load below rewrites these keys.
seq 0 499999 | awk '{ printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$1\r\nv\r\n", $1 }' |
  redis-cli -p "$PORT" --pipe | tail -1
echo "dbsize: $(redis-cli -p "$PORT" DBSIZE)"

echo
echo "## 1. KEYS * over 500k keys, in a loop, under a GET/SET load (redis-benchmark -c 8 -r 500000)"
redis-benchmark -p "$PORT" -c 8 -n 100000000 -r 500000 -t set,get -q >/dev/null 2>&1 &
BPID=$!
sleep 1
for i in 1 2 3 4 5; do
  start=$(date +%s%N)
  n=$(redis-cli -p "$PORT" KEYS '*' | wc -l)
  echo "KEYS * -> $n keys in $((($(date +%s%N) - start) / 1000000)) ms"
done
kill $BPID 2>/dev/null || true
wait $BPID 2>/dev/null || true
# Once more without the load: the newest LOCKLOG entry is then this KEYS (under load, a SET
# whose thread the OS descheduled while it held a lock for a millisecond may be newer).
redis-cli -p "$PORT" KEYS '*' >/dev/null

echo
echo "\$ redis-cli LOCKLOG GET 2"
redis-cli -p "$PORT" LOCKLOG GET 2
echo
echo "\$ curl -s localhost:$MPORT/metrics | grep -E '^shardcache_lock_wait(s)?_caused'"
curl -s "localhost:$MPORT/metrics" | grep -E '^shardcache_lock_waits?_caused'
echo
echo "\$ redis-cli INFO contention | grep -E '^(contention_|lock_)'"
redis-cli -p "$PORT" INFO contention | tr -d '\r' | grep -E '^(contention_|lock_)'
echo
echo "\$ go tool pprof -top http://localhost:$MPORT/debug/pprof/mutex | head -12"
PPROF_TMPDIR=$(mktemp -d) go tool pprof -top "http://localhost:$MPORT/debug/pprof/mutex" 2>&1 | head -12

echo
echo "## 2. A one-key storm: SET and GET on one key at once (two redis-benchmark -c 25 -r 1)"
redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
redis-cli -p "$PORT" LOCKLOG RESET >/dev/null
pids=()
for t in set get; do
  (redis-benchmark -p "$PORT" -c 25 -n 300000 -r 1 -t "$t" -q 2>&1 | tr '\r' '\n' |
    grep -E 'requests per second' || true) &
  pids+=($!)
done
wait "${pids[@]}"
echo
echo "\$ curl -s localhost:$MPORT/metrics | grep -E '^shardcache_lock_wait(s)?_caused'"
curl -s "localhost:$MPORT/metrics" | grep -E '^shardcache_lock_waits?_caused'
echo
echo "\$ redis-cli INFO contention | grep -E '^(contention_|lock_)'"
redis-cli -p "$PORT" INFO contention | tr -d '\r' | grep -E '^(contention_|lock_)'
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
