#!/usr/bin/env bash
# The suite's three RSS-bound tests on each socket backend (the README's io_uring memory
# figures): 20,000 pipelined INCRBYFLOAT (bad_input.rs), a client that never reads its 1 MiB
# replies (limits.rs), a write storm under maxmemory 64mb (memory.rs). Runs each ROUNDS times
# (default 2) on epoll, on io_uring, and on io_uring as on kernels without the receive byte
# limit (--io-uring-recv-limit false), and keeps the line each run prints. A test over its
# bound fails; its figure is still kept.
#
#   scripts/measure-uring-rss.sh                  # the release binary of this checkout
#   BIN=/path/to/shardcache scripts/measure-uring-rss.sh   # another build (e.g. an older commit)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
ROUNDS=${ROUNDS:-2}
bin=${BIN:-$(release_bin)}
out=$(raw_path uring-rss)
[[ -n "${BIN:-}" ]] && out=${out%.txt}-bin.txt
{
    raw_header "scripts/measure-uring-rss.sh: ${ROUNDS} runs of the three RSS-bound tests per backend, binary ${bin} ($("$bin" --version))"
    for mode in epoll io_uring io_uring-unlimited; do
        backend=${mode%-unlimited}
        limit=true
        [[ $mode == *-unlimited ]] && limit=false
        for r in $(seq 1 "$ROUNDS"); do
            SHARDCACHE_BIN="$bin" SHARDCACHE_IO_BACKEND="$backend" SHARDCACHE_IO_URING_RECV_LIMIT="$limit" \
                cargo test --quiet --no-fail-fast -p shardcache-tests --test bad_input --test limits --test memory \
                -- --nocapture incrbyfloat_values_are_accounted_memory unread_replies_do_not_grow_memory \
                write_storm_stays_under_the_rss_bound 2>&1 |
                grep -E '^(20,000 INCRBYFLOAT|unread 1 MiB|write storm)' | sed "s/^/$mode run $r: /" || true
        done
    done
} | tee "$out"
echo "raw output: $out" >&2
