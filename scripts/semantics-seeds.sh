#!/usr/bin/env bash
# The differential stream (tests/tests/semantics_diff.rs) over several seeds (default 1..9):
# each seed's summary line (replies that match, differ as known, differ otherwise) and the
# known differences it found, for the README's "Differences from Redis".
#
#   scripts/semantics-seeds.sh [FIRST LAST]     # prints; raw output to docs/bench/raw/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
first=${1:-1}
last=${2:-9}
out=$(raw_path semantics-seeds)
{
    raw_header "scripts/semantics-seeds.sh: semantics_diff.rs for seeds ${first}..${last}; $(redis-server --version)"
    for seed in $(seq "$first" "$last"); do
        echo "## seed $seed"
        SEMANTICS_SEED=$seed cargo test --quiet -p shardcache-tests --test semantics_diff \
            -- --nocapture 2>&1 | grep -E '^#|^   |^semantics_diff:|panicked' || true
    done
} | tee "$out"
echo "raw output: $out" >&2
