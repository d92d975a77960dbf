#!/usr/bin/env bash
# Wire benchmark: redis-benchmark against redis-server and shardcache on the same machine, in
# the same run. The robust figure on a shared machine is CPU per request, so for every test it
# reports requests per server CPU-second: requests completed ÷ the server's utime+stime over
# the run (/proc/PID/stat fields 14 and 15, all threads, ÷ CLK_TCK). Throughput (requests/s)
# and redis-benchmark's p99 are printed too.
#
# Servers are pinned to CPU 0 and redis-benchmark to CPU 1 (taskset), so the comparison is one
# core of server against one core of load. Rounds alternate the server order (A B, B A, A B…)
# so drift in outside load hits both alike; each figure is the median over the rounds, with
# its min–max range.
#
#   scripts/bench-wire.sh [redis|uring|lock-stats|scaling|floor|all]     (default: all)
#
#   redis       shardcache (1 worker thread) against redis-server 7: SET, GET, -P 1 and -P 16
#   uring       redis-server, shardcache on epoll and shardcache --io-backend io_uring, all
#               pinned to CPU 0, in the same rounds (the order rotates: A B C, B C A, C A B…)
#   lock-stats  shardcache --lock-stats true against --lock-stats false (the cost of lock
#               instrumentation and command timing), both pinned to CPU 0
#   scaling     shardcache --threads 2 with no CPU restriction against --threads 1 pinned to
#               CPU 0; redis-benchmark unpinned with 2 threads; wire throughput
#   floor       redis-server, shardcache on epoll, shardcache on io_uring and the floor server
#               (client/bench/examples/floor_server.rs: Redis's event loop with canned replies,
#               no store and no parsing beyond framing) on epoll and on io_uring (its
#               `--io-uring` loop, waiting in the ring), all pinned to CPU 0, rotating rounds:
#               what a server whose user space does next to nothing gets here (not in `all`)
#
# Environment: ROUNDS (5), N1 (requests per -P 1 test, 500000), N16 (per -P 16 test, 2000000),
# CLIENTS (50), KEYSPACE (100000), SIZE (32), EXTRA_ARGS (extra shardcache options),
# RPORT/SPORT/SPORT2 (ports), RAW (a file to which every measurement line is appended),
# PIPES ("1 16": the pipeline depths) and TESTS ("set get") to run a subset.
# EXTRA_ARGS='--io-backend io_uring' runs the other modes' shardcache servers on io_uring.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
ROUNDS=${ROUNDS:-5}
N1=${N1:-500000}
N16=${N16:-2000000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SIZE=${SIZE:-32}
PIPES=${PIPES:-1 16}
TESTS=${TESTS:-set get}
EXTRA_ARGS=${EXTRA_ARGS:-}
RPORT=${RPORT:-16379}
SPORT=${SPORT:-16380}
SPORT2=${SPORT2:-16381}
case "$WHAT" in redis | uring | lock-stats | scaling | floor | all) ;; *)
  echo "usage: $0 [redis|uring|lock-stats|scaling|floor|all]" >&2
  exit 2
  ;;
esac
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release -q -p shardcache-server
[ "$WHAT" = floor ] && cargo build --release -q -p shardcache-bench --example floor_server
BIN=target/release/shardcache
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
RAW=${RAW:-$WORK/raw}
# This mode's measurements only: each summary compares rounds of the same mode (redis-server
# runs in two modes of `all`, and its rounds of one must not enter the other's medians).
MODE_RAW=$WORK/mode-raw
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME PORT CPUS COMMAND... : starts a server (CPUS "" = no taskset), records its pid.
declare -A PID PORT
start() {
  local name=$1 port=$2 cpus=$3
  shift 3
  if [ -n "$cpus" ]; then
    taskset -c "$cpus" "$@" >"$WORK/$name.log" 2>&1 &
  else
    "$@" >"$WORK/$name.log" 2>&1 &
  fi
  PID[$name]=$!
  PORT[$name]=$port
  PIDS+=("$!")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$name did not start:"
  cat "$WORK/$name.log"
  exit 1
}
start_redis() { start "$1" "$2" "$3" redis-server --port "$2" --save '' --appendonly no --daemonize no; }
start_sc() {
  local name=$1 port=$2 cpus=$3
  shift 3
  # shellcheck disable=SC2086
  start "$name" "$port" "$cpus" "$BIN" --port "$port" --metrics-addr '' --log-level warn "$@" $EXTRA_ARGS
}

# stop NAME...: stops servers and waits until they have exited (the next mode reuses ports:
# a server still answering on its port would pass for the new one, which failed to bind).
stop() {
  local name
  for name in "$@"; do kill "${PID[$name]}" 2>/dev/null || true; done
  for name in "$@"; do wait "${PID[$name]}" 2>/dev/null || true; done
}

ticks() { # utime+stime of a process, all threads
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# measure ROUND NAME TEST PIPELINE BENCH_CPUS [redis-benchmark options]: one line of RAW.
measure() {
  local round=$1 name=$2 test=$3 p=$4 bcpus=$5
  shift 5
  local n=$N1
  [ "$p" -gt 1 ] && n=$N16
  local pid=${PID[$name]} port=${PORT[$name]} t0 t1 csv
  t0=$(ticks "$pid")
  if [ -n "$bcpus" ]; then
    csv=$(taskset -c "$bcpus" redis-benchmark -p "$port" -t "$test" -n "$n" -c "$CLIENTS" -P "$p" \
      -r "$KEYSPACE" -d "$SIZE" --csv "$@" 2>/dev/null)
  else
    csv=$(redis-benchmark -p "$port" -t "$test" -n "$n" -c "$CLIENTS" -P "$p" \
      -r "$KEYSPACE" -d "$SIZE" --csv "$@" 2>/dev/null)
  fi
  t1=$(ticks "$pid")
  echo "$csv" | awk -F'","' -v r="$round" -v name="$name" -v t="${test^^}" -v p="$p" -v n="$n" \
    -v dt=$((t1 - t0)) -v tick="$TICK" '
    $1 ~ t { gsub(/"/, "", $2); gsub(/"/, "", $7)
      cpu = dt / tick
      printf "round=%d server=%s test=%s -P=%d requests=%d rps=%s p99_ms=%s cpu_s=%.2f req_per_cpu_s=%.0f\n",
        r, name, t, p, n, $2, $7, cpu, (cpu > 0 ? n / cpu : 0) }' | tee -a "$RAW" "$MODE_RAW"
}

# rounds BENCH_CPUS A B [redis-benchmark options]: ROUNDS rounds of SET and GET at -P 1 and 16,
# order A B in even rounds and B A in odd ones (A B B A A B…).
rounds() {
  local bcpus=$1 a=$2 b=$3
  shift 3
  for r in $(seq 1 "$ROUNDS"); do
    local order=("$a" "$b")
    [ $((r % 2)) -eq 0 ] && order=("$b" "$a")
    for s in "${order[@]}"; do
      for p in $PIPES; do
        for t in $TESTS; do measure "$r" "$s" "$t" "$p" "$bcpus" "$@"; done
      done
    done
  done
}

# rounds_rotating BENCH_CPUS "A B C…" [redis-benchmark options]: like `rounds` for any number of
# servers; round r starts with the (r-1 mod n)-th server, so each leads equally often.
rounds_rotating() {
  local bcpus=$1
  local servers
  read -r -a servers <<<"$2"
  shift 2
  local n=${#servers[@]}
  for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      local s=${servers[$(((r - 1 + i) % n))]}
      for p in $PIPES; do
        for t in $TESTS; do measure "$r" "$s" "$t" "$p" "$bcpus" "$@"; done
      done
    done
  done
}

# summary A B FIELD LABEL: per test, medians and ranges of FIELD for A and B, B÷A of the
# medians, the geometric mean of the ratios, and both servers' median p99.
summary() {
  local a=$1 b=$2 field=$3 label=$4
  awk -v A="$a" -v B="$b" -v F="$field" -v label="$label" '
    function median(key,   n, i, j, v, tmp) {
      n = cnt[key]; for (i = 1; i <= n; i++) tmp[i] = val[key, i]
      for (i = 2; i <= n; i++) { v = tmp[i]; for (j = i - 1; j >= 1 && tmp[j] > v; j--) tmp[j + 1] = tmp[j]; tmp[j + 1] = v }
      lo[key] = tmp[1]; hi[key] = tmp[n]
      return n % 2 ? tmp[(n + 1) / 2] : (tmp[n / 2] + tmp[n / 2 + 1]) / 2
    }
    {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["server"] != A && f["server"] != B) next
      k = f["test"] " -P " f["-P"]
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      key = f["server"] SUBSEP k
      cnt[key]++; val[key, cnt[key]] = f[F] + 0
      pk = key SUBSEP "p99"; cnt[pk]++; val[pk, cnt[pk]] = f["p99_ms"] + 0
    }
    END {
      printf "%s (median, min-max over %d rounds)\n", label, cnt[A SUBSEP order[1]]
      printf "%-10s %26s %26s %7s %10s %10s\n", "test", A, B, B "/" A, "p99 " A, "p99 " B
      g = 0
      for (i = 1; i <= nk; i++) {
        k = order[i]; ma = median(A SUBSEP k); mb = median(B SUBSEP k)
        pa = median(A SUBSEP k SUBSEP "p99"); pb = median(B SUBSEP k SUBSEP "p99")
        r = ma > 0 ? mb / ma : 0; g += log(r > 0 ? r : 1e-9)
        printf "%-10s %10.0f (%6.0f-%6.0f) %10.0f (%6.0f-%6.0f) %7.3f %8.3fms %8.3fms\n", k,
          ma, lo[A SUBSEP k], hi[A SUBSEP k], mb, lo[B SUBSEP k], hi[B SUBSEP k], r, pa, pb
      }
      printf "%-10s %63s %7.3f\n", "geomean", "", exp(g / nk)
    }' "$MODE_RAW"
}

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server storage protocol config || echo '+dirty')"
echo "$(redis-server --version | cut -d' ' -f1-3); shardcache $($BIN --version | cut -d' ' -f2); EXTRA_ARGS='$EXTRA_ARGS'"
echo "redis-benchmark -c $CLIENTS -r $KEYSPACE -d $SIZE, -n $N1 (-P 1) / $N16 (-P 16); $ROUNDS rounds, order alternating"
echo

if [ "$WHAT" = redis ] || [ "$WHAT" = all ]; then
  : >"$MODE_RAW"
  start_redis redis "$RPORT" 0
  start_sc shardcache "$SPORT" 0
  echo "== redis: servers pinned to CPU 0, redis-benchmark to CPU 1"
  rounds 1 redis shardcache
  echo
  summary redis shardcache req_per_cpu_s "requests per server CPU-second"
  echo
  summary redis shardcache rps "requests per second (wire throughput)"
  echo
  stop redis shardcache
fi

if [ "$WHAT" = uring ] || [ "$WHAT" = all ]; then
  : >"$MODE_RAW"
  start_redis redis "$RPORT" 0
  start_sc epoll "$SPORT" 0 --io-backend epoll
  start_sc io_uring "$SPORT2" 0 --io-backend io_uring
  if grep -q 'falling back' "$WORK/io_uring.log"; then echo "io_uring unavailable:"; cat "$WORK/io_uring.log"; exit 1; fi
  echo "== uring: servers pinned to CPU 0, redis-benchmark to CPU 1; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  rounds_rotating 1 "redis epoll io_uring"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  summary redis epoll req_per_cpu_s "requests per server CPU-second: epoll / redis"
  echo
  summary redis io_uring req_per_cpu_s "requests per server CPU-second: io_uring / redis"
  echo
  summary epoll io_uring req_per_cpu_s "requests per server CPU-second: io_uring / epoll"
  echo
  summary redis io_uring rps "requests per second (wire throughput): io_uring / redis"
  echo
  stop redis epoll io_uring
fi

if [ "$WHAT" = lock-stats ] || [ "$WHAT" = all ]; then
  : >"$MODE_RAW"
  start_sc stats-on "$SPORT" 0 --lock-stats true
  start_sc stats-off "$SPORT2" 0 --lock-stats false
  echo "== lock-stats: both pinned to CPU 0, redis-benchmark to CPU 1"
  rounds 1 stats-on stats-off
  echo
  summary stats-on stats-off req_per_cpu_s "requests per server CPU-second (off/on = what instrumentation costs)"
  echo
  stop stats-on stats-off
fi

if [ "$WHAT" = scaling ] || [ "$WHAT" = all ]; then
  : >"$MODE_RAW"
  start_sc 1-thread "$SPORT" 0 --threads 1
  start_sc 2-threads "$SPORT2" "" --threads 2
  echo "== scaling: --threads 1 pinned to CPU 0 against --threads 2 unrestricted; redis-benchmark unpinned, --threads 2"
  rounds "" 1-thread 2-threads --threads 2
  echo
  summary 1-thread 2-threads rps "requests per second (wire throughput)"
  echo
  summary 1-thread 2-threads req_per_cpu_s "requests per server CPU-second"
fi

if [ "$WHAT" = floor ]; then
  : >"$MODE_RAW"
  start_redis redis "$RPORT" 0
  start_sc epoll "$SPORT" 0 --io-backend epoll
  start_sc io_uring "$SPORT2" 0 --io-backend io_uring
  FPORT=${FPORT:-16382}
  FUPORT=${FUPORT:-16383}
  start floor "$FPORT" 0 target/release/examples/floor_server --port "$FPORT" --value-size "$SIZE"
  start floor_uring "$FUPORT" 0 target/release/examples/floor_server --port "$FUPORT" \
    --value-size "$SIZE" --io-uring
  echo "== floor: servers pinned to CPU 0, redis-benchmark to CPU 1; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  rounds_rotating 1 "redis epoll io_uring floor floor_uring"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  summary redis floor req_per_cpu_s "requests per server CPU-second: floor / redis"
  echo
  summary redis floor_uring req_per_cpu_s "requests per server CPU-second: floor_uring / redis"
  echo
  summary floor_uring io_uring req_per_cpu_s "requests per server CPU-second: io_uring / floor_uring"
  echo
  summary redis epoll req_per_cpu_s "requests per server CPU-second: epoll / redis"
  echo
  summary redis io_uring req_per_cpu_s "requests per server CPU-second: io_uring / redis"
  echo
  summary floor io_uring req_per_cpu_s "requests per server CPU-second: io_uring / floor"
  echo
  stop redis epoll io_uring floor floor_uring
fi
