#!/usr/bin/env bash
# The README's one-key write storm ("Finding a hot shard" / "Finding a hot key"): the release
# server with 16 shards, 200 other keys written first, then
# `redis-benchmark -n 1000000 -c 16 -P 64 SET hot:key v`; prints redis-benchmark's rate, then
# `INFO contention` and `HOTKEYS COUNT 2` as redis-cli shows them. ROUNDS (default 3) fresh
# servers, so the rate's spread shows.
#
#   scripts/measure-hot-key.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-7413}
out=$(raw_path hot-key)
bin=$(release_bin)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; true' EXIT
{
    raw_header "scripts/measure-hot-key.sh: ${ROUNDS} rounds, release binary, --shards 16, redis-benchmark -n 1000000 -c 16 -P 64 SET hot:key v"
    for r in $(seq 1 "$ROUNDS"); do
        "$bin" --port "$PORT" --metrics-addr "" --shards 16 --log-level warn >/dev/null 2>&1 &
        pid=$!
        wait_ping "$PORT"
        for i in $(seq 0 199); do printf 'SET key:%012d v\n' "$i"; done | redis-cli -p "$PORT" >/dev/null
        echo "## round $r"
        redis-benchmark -p "$PORT" -n 1000000 -c 16 -P 64 -q SET hot:key v | tr '\r' '\n' | grep -v '^$' | tail -1
        if [[ $r == "$ROUNDS" ]]; then
            redis-cli -p "$PORT" INFO contention
            redis-cli -p "$PORT" HOTKEYS COUNT 2
        fi
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    done
} | tee "$out"
echo "raw output: $out" >&2
