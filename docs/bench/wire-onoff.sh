#!/usr/bin/env bash
# Instrumentation overhead on the wire, as a paired, interleaved test: redis-server,
# shardcache with --lock-stats true and shardcache with --lock-stats false run at the same
# time, all pinned to CPU 0; redis-benchmark (pinned to CPU 1) hits them in turn, ROUNDS
# rounds (the order rotates each round), so machine noise hits all three alike. Prints every
# run, then the median over rounds of the per-round ratios on/off and on/redis.
#
#   docs/bench/wire-onoff.sh [requests-per-run] [rounds]      (defaults 200000, 5)
#
# scripts/bench-wire.sh is the one-shot version (one server at a time, EXTRA_ARGS for options).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
ROUNDS=${2:-5}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SIZE=${SIZE:-32}
BIN=${BIN:-target/release/shardcache}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
[ -x "$BIN" ] || cargo build --release -q -p shardcache-server
RPORT=${RPORT:-16389} ONPORT=${ONPORT:-16390} OFFPORT=${OFFPORT:-16391}

taskset -c 0 redis-server --port "$RPORT" --save '' --appendonly no >/dev/null 2>&1 &
P1=$!
taskset -c 0 "$BIN" --port "$ONPORT" --metrics-addr '' --log-level warn --lock-stats true &
P2=$!
taskset -c 0 "$BIN" --port "$OFFPORT" --metrics-addr '' --log-level warn --lock-stats false &
P3=$!
trap 'kill $P1 $P2 $P3 2>/dev/null || true' EXIT
for p in "$RPORT" "$ONPORT" "$OFFPORT"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

run() { # port pipeline -> "set_rps get_rps"
  taskset -c 1 redis-benchmark -p "$1" -t set,get -n "$N" -c "$CLIENTS" -P "$2" -r "$KEYSPACE" -d "$SIZE" --csv 2>/dev/null |
    awk -F'","' '/"SET"/{s=$2} /"GET"/{g=$2} END{gsub(/"/,"",s); gsub(/"/,"",g); print s, g}'
}

echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f3); $(date -u)"
echo "redis-benchmark -t set,get -n $N -c $CLIENTS -r $KEYSPACE -d $SIZE; servers on CPU 0, load on CPU 1; $ROUNDS rounds"
OUT=$(mktemp)
names=(redis on off)
ports=("$RPORT" "$ONPORT" "$OFFPORT")
for r in $(seq "$ROUNDS"); do
  for P in 1 16; do
    for k in 0 1 2; do
      i=$(((k + r) % 3))
      read -r s g < <(run "${ports[$i]}" "$P")
      echo "$r $P ${names[$i]} $s $g" | tee -a "$OUT"
    done
  done
done
echo
printf '%-8s %12s %12s %12s %10s %10s\n' test redis on off on/off on/redis
for P in 1 16; do
  for col in 4 5; do
    op=$([ "$col" = 4 ] && echo SET || echo GET)
    awk -v P="$P" -v c="$col" -v op="$op" '
      $2 == P { v[$1, $3] = $c; rounds[$1] = 1 }
      function median(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      END {
        n = 0
        for (r in rounds) { n++; R[n] = v[r, "redis"]; ON[n] = v[r, "on"]; OFF[n] = v[r, "off"];
                            X[n] = v[r, "on"] / v[r, "off"]; Y[n] = v[r, "on"] / v[r, "redis"] }
        printf "%-8s %12.0f %12.0f %12.0f %10.3f %10.3f\n", op " -P " P, median(R, n), median(ON, n), median(OFF, n), median(X, n), median(Y, n)
      }' "$OUT"
  done
done
rm -f "$OUT"
