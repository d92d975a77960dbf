#!/usr/bin/env bash
# User-space instructions per request of the server (valgrind's callgrind, counting only while
# redis-benchmark runs, after a preload that writes every key), with --lock-stats true and
# false: the cost of the lock instrumentation and command timing in a measure this shared VM
# does not blur (the CPU-time comparison of `bench-wire.sh lock-stats` swings by ±10%).
# Instruction counts leave
# out what an instruction costs (cache misses, the time-stamp counter reads), so this is the
# instrumentation's share of the work, not of the time.
#
#   scripts/count-instructions.sh        # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
bin=$(release_bin)
out=$(raw_path instructions)
PORT=${PORT:-17391}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count STATS TEST PIPELINE N: instructions per request.
count() {
    local stats=$1 test=$2 p=$3 n=$4 cg="$work/cg.out" pid
    rm -f "$cg"*
    taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg" \
        "$bin" --port "$PORT" --metrics-addr '' --log-level warn --threads 1 --lock-stats "$stats" \
        >"$work/server.log" 2>&1 &
    pid=$!
    wait_ping "$PORT" || { cat "$work/server.log"; exit 1; }
    # Every key of the range written (2M random SETs over 100k keys leave none out), so every
    # measured GET hits and every SET replaces, whatever keys redis-benchmark draws (it seeds
    # from the clock: with a partial preload the hit ratio, and the work, varied by run).
    taskset -c 1 redis-benchmark -p "$PORT" -t set -n 2000000 -P 64 -r 100000 -d 32 -c 50 -q >/dev/null
    callgrind_control -i on "$pid" >/dev/null
    taskset -c 1 redis-benchmark -p "$PORT" -t "$test" -n "$n" -c 50 -P "$p" -r 100000 -d 32 -q >/dev/null
    callgrind_control -i off "$pid" >/dev/null
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    grep -h '^totals:' "$cg"* | awk -v n="$n" '{ s += $2 } END { printf "%.0f", s / n }'
}

{
    raw_header "scripts/count-instructions.sh: callgrind, one worker, default I/O backend, redis-benchmark -c 50 -r 100000 -d 32"
    printf "%-10s %16s %16s %8s\n" test "lock-stats on" "lock-stats off" "on/off"
    for p in 1 16; do
        n=200000
        [ "$p" -eq 1 ] && n=50000
        for t in set get; do
            on=$(count true "$t" "$p" "$n")
            off=$(count false "$t" "$p" "$n")
            printf "%-10s %16s %16s %8.3f\n" "${t^^} -P $p" "$on" "$off" "$(echo "$on / $off" | bc -l)"
        done
    done
} | tee "$out"
echo "raw output: $out" >&2
