#!/usr/bin/env bash
# Time to render and fetch /metrics (the README's "a scrape renders in milliseconds"): the
# release server with 16 and with 1024 shards, every shard's lock used and the GET/SET
# histograms filled by a short redis-benchmark, then SCRAPES scrapes (default 50) with curl;
# prints the series count, body size and scrape time (median, p90, max).
#
#   scripts/measure-scrape.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
SCRAPES=${SCRAPES:-50}
PORT=${PORT:-7411}
MPORT=${MPORT:-7412}
out=$(raw_path scrape-time)
bin=$(release_bin)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; true' EXIT
{
    raw_header "scripts/measure-scrape.sh: ${SCRAPES} scrapes of /metrics per shard count, release binary"
    printf '%-8s %8s %10s %10s %10s %10s\n' shards series bytes p50_ms p90_ms max_ms
    for shards in 16 1024; do
        "$bin" --port "$PORT" --metrics-addr "127.0.0.1:$MPORT" --shards "$shards" \
            --log-level warn --threads 2 >/dev/null 2>&1 &
        pid=$!
        wait_ping "$PORT"
        redis-benchmark -p "$PORT" -t set,get -n 200000 -r 100000 -c 20 -q >/dev/null
        curl -s "http://127.0.0.1:$MPORT/metrics" >/tmp/scrape-$$.txt
        series=$(grep -vc '^#' /tmp/scrape-$$.txt)
        bytes=$(wc -c </tmp/scrape-$$.txt)
        for _ in $(seq 1 "$SCRAPES"); do
            curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$MPORT/metrics"
        done | sort -n | awk -v s="$shards" -v n="$series" -v b="$bytes" '
            { t[NR] = $1 * 1000 }
            END { printf "%-8s %8d %10d %10.2f %10.2f %10.2f\n", s, n, b, t[int(NR*0.5)+1], t[int(NR*0.9)+1], t[NR] }'
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
        rm -f /tmp/scrape-$$.txt
    done
} | tee "$out"
echo "raw output: $out" >&2
