#!/usr/bin/env bash
# RSS growth of the release server while one client pipelines `GET` of a 1 MiB value for 8 s
# and never reads its replies (the README's "unread replies" figure): runs the end-to-end test
# `tests/tests/limits.rs::unread_replies_do_not_grow_memory` against the release binary,
# ROUNDS times (default 3), and keeps the line each run prints.
#
#   scripts/measure-unread-rss.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
ROUNDS=${ROUNDS:-3}
out=$(raw_path unread-rss)
bin=$(release_bin)
{
    raw_header "scripts/measure-unread-rss.sh: ${ROUNDS} runs of limits.rs unread_replies_do_not_grow_memory, release binary"
    for r in $(seq 1 "$ROUNDS"); do
        SHARDCACHE_BIN="$bin" cargo test --quiet -p shardcache-tests --test limits \
            unread_replies_do_not_grow_memory -- --nocapture 2>&1 | grep '^unread' | sed "s/^/run $r: /"
    done
} | tee "$out"
echo "raw output: $out" >&2
