#!/usr/bin/env bash
# Memory benchmark (issue 10): RAM per key of shardcache against redis-server, same keys, same run.
#
#   scripts/bench-memory.sh [--save] [--tag TAG] [CASE...]
#
# CASE is any of (default: all four, in this order)
#   small  1,000,000 keys, 16-byte keys, 32-byte values, no TTL       goal RSS ratio <= 0.70
#   ttl    the same keys, each SET with EX 3600                         goal RSS ratio <= 0.80
#   1k     1,000,000 keys, 16-byte keys, 1 KiB values                   goal RSS ratio <= 1.00
#   10m    10,000,000 keys, 16-byte keys, 8-byte values                 goal RSS ratio <= 0.70
#          and shardcache's SET p99.9 during the load <= redis's
#
# Each case starts a fresh redis-server (--save '' --appendonly no) and a fresh shardcache, both
# pinned to CPU 0 (taskset), and loads the same keys into each in turn with
# `shardcache-bench load` pinned to CPU 1 (keys `key:` + 12 zero-padded digits, exactly 16
# bytes, 0..N in order; values exactly the given size). It prints, per server, VmRSS from
# /proc/PID/status before and after the load, the peak (VmHWM), `used_memory` from INFO memory
# and DBSIZE (checked against N); then shardcache RSS / redis RSS against the goal,
# and shardcache's used_memory / RSS growth, which must be within 0.90..1.10 (its memory
# accounting, which maxmemory enforces, has to match what the process really takes). The SET
# latency percentiles are what the loader measured during the load: per SET, from the write of
# its batch (--pipeline SETs per connection in flight) to its reply. The loader is closed-loop,
# so a server stall delays only the CONNECTIONS x PIPELINE SETs in flight: it shows in max, and
# in p99.9 only if stalls add up to 0.1% of the SETs. Memory figures repeat to 0.1 MiB from run
# to run; latency on a shared machine does not (compare several runs).
#
# "After the load" is once RSS has settled: redis's jemalloc hands freed pages (old hash tables,
# buffers) back to the kernel over its 10 s dirty-page decay, which takes redis's RSS for
# `small` from 150 down to 146 MiB. So the script waits SETTLE seconds, then until neither RSS
# changed during the last second (at most 20 s more).
#
# --save       also write everything printed to docs/bench/raw/memory-<date>-<commit>[-TAG].txt
# --tag TAG    suffix for that file name (e.g. before, jemalloc)
#
# Environment:
#   SHARDCACHE_BIN   shardcache binary (default target/release/shardcache, built first)
#   SHARDCACHE_ARGS  extra shardcache options, word-split (e.g. "--shards 64");
#                    --metrics-addr= (off) is added unless they name --metrics-addr
#   REDIS_BIN        redis-server binary (default: redis-server from PATH)
#   REDIS_ARGS       extra redis-server options, word-split
#   BENCH_BIN        the loader (default target/release/shardcache-bench, built first)
#   CONNECTIONS=4 PIPELINE=64   loader connections, SETs per batch per connection
#   SETTLE=10        seconds to wait after a load before watching RSS settle (below 10, redis
#                    may not have returned its freed pages yet: 150 instead of 146 MiB for small)
#   NO_BUILD=1       do not run cargo (use the binaries as they are)
#
# The "result case=..." lines at the end are machine-readable, one per case.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

SAVE=0
TAG=""
CASES=()
while (($#)); do
  case "$1" in
    --save) SAVE=1 ;;
    --tag) TAG=${2:?--tag needs a value}; shift ;;
    -h | --help) usage; exit 0 ;;
    small | ttl | 1k | 10m) CASES+=("$1") ;;
    *) echo "unknown argument: $1 (cases: small ttl 1k 10m)" >&2; exit 2 ;;
  esac
  shift
done
((${#CASES[@]})) || CASES=(small ttl 1k 10m)

REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || true)}
SHARDCACHE_ARGS=${SHARDCACHE_ARGS:-}
REDIS_ARGS=${REDIS_ARGS:-}
CONNECTIONS=${CONNECTIONS:-4}
PIPELINE=${PIPELINE:-64}
SETTLE=${SETTLE:-10}
for tool in redis-cli taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install redis-tools util-linux)" >&2; exit 1; }
done
[[ -x $REDIS_BIN ]] || { echo "needs redis-server (apt-get install redis-server) or REDIS_BIN" >&2; exit 1; }
if [[ ${NO_BUILD:-0} != 1 ]]; then
  [[ -n ${SHARDCACHE_BIN:-} ]] || cargo build --release -q -p shardcache-server
  [[ -n ${BENCH_BIN:-} ]] || cargo build --release -q -p shardcache-bench
fi
SHARDCACHE_BIN=${SHARDCACHE_BIN:-target/release/shardcache}
BENCH_BIN=${BENCH_BIN:-target/release/shardcache-bench}
for b in "$SHARDCACHE_BIN" "$BENCH_BIN"; do
  [[ -x $b ]] || { echo "no executable $b (build it, or set SHARDCACHE_BIN / BENCH_BIN)" >&2; exit 1; }
done
[[ $SHARDCACHE_ARGS == *--metrics-addr* ]] || SHARDCACHE_ARGS="--metrics-addr=${SHARDCACHE_ARGS:+ $SHARDCACHE_ARGS}"

COMMIT=$(git rev-parse --short HEAD)
DATE=$(date -u +%Y-%m-%d)
TMP=$(mktemp -d)
RPID="" SPID="" TEE_PID=""
cleanup() {
  for pid in $RPID $SPID; do kill "$pid" 2>/dev/null || true; done
  for pid in $RPID $SPID; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((SAVE)); then
  mkdir -p docs/bench/raw
  OUT=docs/bench/raw/memory-$DATE-$COMMIT${TAG:+-$TAG}.txt
  exec 3>&1 > >(tee "$OUT" >&3)
  TEE_PID=$!
fi

# A TCP port nothing listens on right now (random in 20000..59999).
free_port() {
  local p
  while :; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    [[ $p != "${RPORT:-}" ]] || continue
    (exec 2>/dev/null; : >"/dev/tcp/127.0.0.1/$p") || { echo "$p"; return; }
  done
}

# wait_ready PORT PID NAME LOG: until PING answers; fails if the process died or 20 s passed.
wait_ready() {
  for _ in $(seq 200); do
    [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$3 did not answer PING on port $1; its log:" >&2
  tail -20 "$4" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Sleeps SETTLE s, then until both servers' RSS held still for 1 s (20 s at most); sets WAITED.
settle() {
  local a b
  sleep "$SETTLE"
  WAITED=$SETTLE
  for _ in $(seq 20); do
    a="$(rss_kib "$RPID") $(rss_kib "$SPID")"
    sleep 1
    WAITED=$((WAITED + 1))
    b="$(rss_kib "$RPID") $(rss_kib "$SPID")"
    [[ $a != "$b" ]] || break
  done
}
info_field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k {print $2}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

start_servers() {
  RPORT=$(free_port)
  # shellcheck disable=SC2086
  taskset -c 0 "$REDIS_BIN" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    $REDIS_ARGS >"$TMP/redis.log" 2>&1 &
  RPID=$!
  SPORT=$(free_port)
  # shellcheck disable=SC2086
  taskset -c 0 "$SHARDCACHE_BIN" --port "$SPORT" $SHARDCACHE_ARGS >"$TMP/shardcache.log" 2>&1 &
  SPID=$!
  wait_ready "$RPORT" "$RPID" redis-server "$TMP/redis.log"
  wait_ready "$SPORT" "$SPID" shardcache "$TMP/shardcache.log"
}

stop_servers() {
  kill "$RPID" "$SPID" 2>/dev/null || true
  wait "$RPID" "$SPID" 2>/dev/null || true
  RPID="" SPID=""
}

# load NAME PORT KEYS VALUE TTL: runs the loader, prints its summary, sets L_<field> from its
# `load k=v ...` line (L_ok=0 when it failed).
load() {
  local name=$1 port=$2 keys=$3 value=$4 ttl=$5 out rc=0
  local args=(load --port "$port" --keys "$keys" --key-size 16 --value-size "$value"
    --connections "$CONNECTIONS" --pipeline "$PIPELINE")
  ((ttl == 0)) || args+=(--ttl "$ttl")
  out=$(taskset -c 1 "$BENCH_BIN" "${args[@]}" 2>"$TMP/load.err") || rc=$?
  L_ok=$((rc == 0))
  L_requests=0 L_errors=0 L_ops_per_sec=0 L_p50_us=0 L_p99_us=0 L_p999_us=0 L_max_us=0
  local kv
  kv=$(grep '^load ' <<<"$out" || true)
  for f in ${kv#load }; do
    case ${f%%=*} in
      requests | errors | ops_per_sec | p50_us | p99_us | p999_us | max_us) printf -v "L_${f%%=*}" %s "${f#*=}" ;;
    esac
  done
  printf '  load %-10s %s SETs, %s errors, %.0f SET/s; SET latency us: p50 %s  p99 %s  p99.9 %s  max %s\n' \
    "$name" "$L_requests" "$L_errors" "$L_ops_per_sec" "$L_p50_us" "$L_p99_us" "$L_p999_us" "$L_max_us"
  if ((!L_ok)); then
    echo "  LOAD FAILED ($name, exit $rc):"
    sed 's/^/    /' "$TMP/load.err"
  fi
}

verdict() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN {print (x >= lo && x <= hi) ? "ok" : "MISS"}'; }

SUMMARY=()
RESULTS=()
run_case() {
  local case=$1 keys value ttl goal desc
  case $case in
    small) keys=1000000 value=32 ttl=0 goal=0.70 ;;
    ttl) keys=1000000 value=32 ttl=3600 goal=0.80 ;;
    1k) keys=1000000 value=1024 ttl=0 goal=1.00 ;;
    10m) keys=10000000 value=8 ttl=0 goal=0.70 ;;
  esac
  desc="$keys keys, key 16 B, value $value B, $( ((ttl)) && echo "SET ... EX $ttl" || echo "no TTL")"
  echo
  echo "== $case: $desc; goal shardcache/redis RSS <= $goal (load avg $(cut -d' ' -f1 /proc/loadavg))"
  start_servers
  sleep 0.5
  local r_before s_before s_used_before
  r_before=$(($(rss_kib "$RPID") * 1024))
  s_before=$(($(rss_kib "$SPID") * 1024))
  s_used_before=$(info_field "$SPORT" memory used_memory)
  local ok=1 r_p999 r_max r_p99 s_p999 s_max s_p99
  load redis "$RPORT" "$keys" "$value" "$ttl"
  ((L_ok)) || ok=0
  r_p99=$L_p99_us r_p999=$L_p999_us r_max=$L_max_us
  load shardcache "$SPORT" "$keys" "$value" "$ttl"
  ((L_ok)) || ok=0
  s_p99=$L_p99_us s_p999=$L_p999_us s_max=$L_max_us
  settle
  local r_after s_after r_used s_used r_db s_db
  r_after=$(($(rss_kib "$RPID") * 1024))
  s_after=$(($(rss_kib "$SPID") * 1024))
  local r_peak s_peak
  r_peak=$(($(hwm_kib "$RPID") * 1024))
  s_peak=$(($(hwm_kib "$SPID") * 1024))
  r_used=$(info_field "$RPORT" memory used_memory)
  s_used=$(info_field "$SPORT" memory used_memory)
  r_db=$(redis-cli -p "$RPORT" dbsize)
  s_db=$(redis-cli -p "$SPORT" dbsize)
  stop_servers
  [[ $r_db == "$keys" && $s_db == "$keys" ]] || ok=0

  echo "  RSS settled ${WAITED} s after the load"
  printf '  %-10s %11s %11s %11s %11s %12s %11s %9s\n' server "rss_before" "rss_after" "rss_growth" "rss_peak" \
    "used_memory" "used/growth" dbsize
  local name before after peak used db
  for name in redis shardcache; do
    if [[ $name == redis ]]; then before=$r_before after=$r_after peak=$r_peak used=$r_used db=$r_db; else
      before=$s_before after=$s_after peak=$s_peak used=$s_used db=$s_db; fi
    printf '  %-10s %7s MiB %7s MiB %7s MiB %7s MiB %8s MiB %11s %9s%s\n' "$name" "$(mib "$before")" "$(mib "$after")" \
      "$(mib $((after - before)))" "$(mib "$peak")" "$(mib "$used")" \
      "$(awk -v u="$used" -v g=$((after - before)) 'BEGIN {if (g > 0) printf "%.2f", u / g; else printf "-"}')" \
      "$db" "$([[ $db == "$keys" ]] || echo "  != $keys")"
  done
  local ratio acct lat_ratio v_ratio v_acct
  ratio=$(awk -v s="$s_after" -v r="$r_after" 'BEGIN {printf "%.2f", s / r}')
  acct=$(awk -v u="$s_used" -v g=$((s_after - s_before)) 'BEGIN {printf "%.2f", (g > 0 ? u / g : 0)}')
  v_ratio=$(verdict "$ratio" 0 "$goal")
  v_acct=$(verdict "$acct" 0.90 1.10)
  ((ok)) || { v_ratio=INVALID v_acct=INVALID; }
  echo "  shardcache RSS / redis RSS after load:     $ratio   goal <= $goal      $v_ratio"
  echo "  shardcache used_memory / RSS growth:        $acct   goal 0.90..1.10   $v_acct" \
    "(used_memory before the load: $s_used_before B)"
  local latency="" v_lat=""
  if [[ $case == 10m ]]; then
    lat_ratio=$(awk -v s="$s_p999" -v r="$r_p999" 'BEGIN {printf "%.2f", (r > 0 ? s / r : 0)}')
    v_lat=$(verdict "$lat_ratio" 0 1.00)
    ((ok)) || v_lat=INVALID
    echo "  shardcache SET p99.9 / redis SET p99.9:    $lat_ratio   goal <= 1.00      $v_lat" \
      "(redis p99 $r_p99 p99.9 $r_p999 max $r_max us; shardcache p99 $s_p99 p99.9 $s_p999 max $s_max us)"
    latency=" p999_redis_us=$r_p999 p999_shardcache_us=$s_p999 max_redis_us=$r_max max_shardcache_us=$s_max p999_ratio=$lat_ratio p999_verdict=$v_lat"
  fi
  ((ok)) || echo "  INVALID: a load failed or DBSIZE != $keys; see above"
  SUMMARY+=("$(printf '%-6s %9s %6s %5s %11s %11s %6s %5s %-7s %12s %-7s %s' "$case" "$keys" "$value" \
    "$( ((ttl)) && echo "$ttl" || echo -)" "$(mib "$r_after")" "$(mib "$s_after")" "$ratio" "$goal" "$v_ratio" \
    "$acct" "$v_acct" "${v_lat:+p99.9 redis $r_p999 us, shardcache $s_p999 us: $v_lat}")")
  RESULTS+=("result case=$case keys=$keys value_size=$value ttl=$ttl valid=$ok redis_rss_before=$r_before redis_rss=$r_after redis_rss_peak=$r_peak redis_used_memory=$r_used shardcache_rss_before=$s_before shardcache_rss=$s_after shardcache_rss_peak=$s_peak shardcache_used_memory=$s_used ratio=$ratio goal=$goal verdict=$v_ratio accounting=$acct accounting_verdict=$v_acct$latency")
}

STARTED=$SECONDS
echo "# shardcache memory benchmark (issue 10): scripts/bench-memory.sh ${CASES[*]}"
echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:     $COMMIT$([[ -z $(git status --porcelain --untracked-files=no) ]] || echo ' (working tree has uncommitted changes)');" \
  "server sources (protocol config storage server) last changed in $(git log -1 --format=%h -- protocol config storage server)"
echo "machine:    $(nproc) CPUs, kernel $(uname -r), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)," \
  "$(awk '/^MemTotal:/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise to latency, not to memory)"
echo "redis:      $("$REDIS_BIN" --version) ($REDIS_BIN --save '' --appendonly no${REDIS_ARGS:+ $REDIS_ARGS})"
echo "shardcache: $("$SHARDCACHE_BIN" --version) ($SHARDCACHE_BIN $SHARDCACHE_ARGS)"
echo "loader:     $BENCH_BIN load --key-size 16 --connections $CONNECTIONS --pipeline $PIPELINE"
echo "pinning:    each server on CPU 0, the loader on CPU 1 (taskset); servers restarted for every case"
echo "RSS:        VmRSS from /proc/PID/status 0.5 s after PING answers, and after the load once settled" \
  "(>= $SETTLE s, then unchanged for 1 s); peak = VmHWM; 1 MiB = 1048576 B"

for c in "${CASES[@]}"; do run_case "$c"; done

echo
echo "== summary (RSS after the load, MiB)"
printf '%-6s %9s %6s %5s %11s %11s %6s %5s %-7s %12s %-7s %s\n' case keys value ttl redis shardcache ratio goal verdict "used/growth" verdict latency
printf '%s\n' "${SUMMARY[@]}"
echo
printf '%s\n' "${RESULTS[@]}"
echo
echo "load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg); runtime $((SECONDS - STARTED)) s"
if ((SAVE)); then
  exec >&3 3>&-
  wait "$TEE_PID" 2>/dev/null || true
  echo "saved to $OUT"
fi
