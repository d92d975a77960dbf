#!/usr/bin/env bash
# Throughput through twemproxy (the README's "Tested here" figures for nutcracker): runs the
# end-to-end test `tests/tests/twemproxy.rs::three_nodes_behind_nutcracker_share_the_keys`
# (three shardcache nodes, nutcracker, `redis-benchmark -t set,get -n 20000 -r 10000 -c 20`
# through the proxy) ROUNDS times (default 3) with the debug binary the test suite uses and
# once more with the release binary; keeps the rates and the keys per node each run prints.
#
#   scripts/measure-twemproxy.sh            # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
ROUNDS=${ROUNDS:-3}
out=$(raw_path twemproxy)
cargo build --quiet -p shardcache-server --bin shardcache
release=$(release_bin)
run() {
    cargo test --quiet -p shardcache-tests --test twemproxy \
        three_nodes_behind_nutcracker_share_the_keys -- --nocapture 2>&1 \
        | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests|keys per node' || true
}
{
    raw_header "scripts/measure-twemproxy.sh: twemproxy.rs three_nodes_behind_nutcracker_share_the_keys, ${ROUNDS} runs with the debug binary, then 1 with the release binary; $(nutcracker --version 2>&1 | head -1)"
    for r in $(seq 1 "$ROUNDS"); do
        echo "## debug build, run $r"
        SHARDCACHE_BIN="$PWD/target/debug/shardcache" run
    done
    echo "## release build"
    SHARDCACHE_BIN="$release" run
} | tee "$out"
echo "raw output: $out" >&2
