#!/usr/bin/env bash
# Hit ratio under eviction: the same zipf workload against redis-server and shardcache with the
# same maxmemory and allkeys-lru, side by side. The workload (shardcache-bench) mixes GETs and
# SETs over a key space far larger than the limit; after a warm-up both servers' statistics
# are reset (CONFIG RESETSTAT) and keyspace_hits / (hits + misses) is measured.
#
#   scripts/hit-ratio.sh [maxmemory] [keys] [seconds]      (defaults: 64mb 1000000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
MAXMEM=${1:-64mb}
KEYS=${2:-1000000}
SECS=${3:-10}
VALUE=${VALUE:-1000}
THETA=${THETA:-0.99}
READS=${READS:-0.5}
POLICY=${POLICY:-allkeys-lru}
cargo build --release -q -p shardcache-server -p shardcache-bench
BENCH=target/release/shardcache-bench
RPORT=${RPORT:-16381}
SPORT=${SPORT:-16382}
redis-server --port "$RPORT" --save '' --appendonly no --maxmemory "$MAXMEM" \
  --maxmemory-policy "$POLICY" >/dev/null 2>&1 &
RPID=$!
target/release/shardcache --port "$SPORT" --metrics-addr '' --log-level warn \
  --maxmemory "$MAXMEM" --maxmemory-policy "$POLICY" &
SPID=$!
trap 'kill $RPID $SPID 2>/dev/null || true' EXIT
for p in "$RPORT" "$SPORT"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
field() { redis-cli -p "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'; }
echo "zipf theta=$THETA over $KEYS keys, $VALUE-byte values, read ratio $READS, maxmemory $MAXMEM $POLICY"
printf '%-12s %10s %12s %10s\n' server keys hit_ratio evicted
for port in "$RPORT" "$SPORT"; do
  args=(run --port "$port" --connections 16 --read-ratio "$READS" --keys "$KEYS"
        --distribution zipf --zipf-theta "$THETA" --value-size "$VALUE" --seed 7 --output json)
  "$BENCH" "${args[@]}" --duration "$SECS" >/dev/null     # warm-up: fill to the limit
  redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
  "$BENCH" "${args[@]}" --duration "$SECS" >/dev/null
  hits=$(field "$port" stats keyspace_hits)
  misses=$(field "$port" stats keyspace_misses)
  evicted=$(field "$port" stats evicted_keys)
  keys=$(redis-cli -p "$port" DBSIZE)
  name=redis; [ "$port" = "$SPORT" ] && name=shardcache
  awk -v n="$name" -v k="$keys" -v h="$hits" -v m="$misses" -v e="$evicted" \
    'BEGIN { printf "%-12s %10d %12.4f %10d\n", n, k, h / (h + m), e }'
done
