#!/usr/bin/env bash
# Where the server's CPU goes under redis-benchmark (the README's "Where the CPU goes"):
# redis-server and shardcache (--threads 1), each pinned to CPU 0, redis-benchmark pinned to
# CPU 1 (`-t get -c 50 -r 100000 -d 32`, the keys written first), without pipelining and with
# `-P 16`. For each: `perf record -e cpu-clock` of the server during the GETs, the share of
# samples in the kernel and in the server's own code (`perf report --sort dso`), and, without
# pipelining, the system calls per request (`strace -c -f`, a shorter run: strace slows it).
#
#   scripts/profile-wire.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
N=${N:-300000}
NSTRACE=${NSTRACE:-50000}
PORT=${PORT:-7415}
out=$(raw_path profile-wire)
bin=$(release_bin)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; true' EXIT
start_server() {
    case $1 in
        redis) taskset -c 0 redis-server --port "$PORT" --save '' --appendonly no >/dev/null 2>&1 & ;;
        shardcache) taskset -c 0 "$bin" --port "$PORT" --metrics-addr "" --threads 1 --log-level warn >/dev/null 2>&1 & ;;
    esac
    pid=$!
    wait_ping "$PORT"
    taskset -c 1 redis-benchmark -p "$PORT" -t set -n 100000 -c 50 -r 100000 -d 32 -q >/dev/null
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
{
    raw_header "scripts/profile-wire.sh: perf record -e cpu-clock of each server during redis-benchmark -t get -n $N -c 50 -r 100000 -d 32 [-P 16]; strace -c -f for $NSTRACE GETs; $(redis-server --version | cut -d' ' -f1-3)"
    for server in redis shardcache; do
        for p in 1 16; do
            start_server "$server"
            perf record -q -e cpu-clock -F 999 -o "/tmp/profile-$$.data" -p "$pid" 2>/dev/null &
            perf_pid=$!
            sleep 0.5 # perf attaches
            taskset -c 1 redis-benchmark -p "$PORT" -t get -n "$N" -c 50 -r 100000 -d 32 -P "$p" -q \
                | tr '\r' '\n' | grep -E '^GET: [0-9.]+ requests' | sed "s/^/$server -P $p: /"
            kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
            echo "$server -P $p: CPU samples by binary (perf report --sort dso):"
            perf report -i "/tmp/profile-$$.data" --sort dso --stdio 2>/dev/null \
                | grep -v '^#' | grep -v '^\s*$' | head -5 | sed 's/^/   /'
            if [[ $p == 1 ]]; then
                strace -c -f -o "/tmp/strace-$$.txt" -p "$pid" 2>/dev/null &
                strace_pid=$!
                sleep 0.5
                taskset -c 1 redis-benchmark -p "$PORT" -t get -n "$NSTRACE" -c 50 -r 100000 -d 32 -q >/dev/null
                kill -INT "$strace_pid"; wait "$strace_pid" 2>/dev/null || true
                echo "$server -P 1: system calls per GET (strace -c, $NSTRACE GETs):"
                awk -v n="$NSTRACE" '$NF ~ /^(read|recvfrom|write|sendto|writev|epoll_wait|epoll_pwait|epoll_pwait2|io_uring_enter)$/ {
                    calls = ($4 ~ /^[0-9]+$/) ? $4 : $3; printf "   %-14s %8d calls, %.3f per GET\n", $NF, calls, calls / n }' "/tmp/strace-$$.txt"
            fi
            stop_server
        done
    done
    rm -f "/tmp/profile-$$.data" "/tmp/strace-$$.txt"
} | tee "$out"
echo "raw output: $out" >&2
