#!/usr/bin/env bash
# Regenerates every figure the README quotes, each into a raw file under docs/bench/raw/ whose
# name carries the date and the short commit and whose first lines give date, commit and
# machine. Run it on an otherwise idle machine, from a clean checkout of the commit to
# measure; then update the README's figures and links from the new files.
#
#   scripts/reproduce.sh            # everything (the CPU benchmarks take about an hour)
#   scripts/reproduce.sh quick      # only the short measurements (a few minutes)
#
# README section                          script                            raw file
# Performance against Redis, Threads,     scripts/bench-wire.sh all         wire-cpu-DATE-COMMIT.txt
#   Cost of instrumentation
# Performance: the unpipelined floor      scripts/bench-wire.sh floor       wire-floor-DATE-COMMIT.txt
# Instrumentation overhead (in-process)   storage example instrument_overhead  instrument-overhead-DATE-COMMIT.txt
# Threads: the store alone               storage example store_scaling     store-scaling-DATE-COMMIT.txt
# Instrumentation overhead (wire)         docs/bench/wire-onoff.sh          wire-onoff-DATE-COMMIT.txt
# Memory per key                          scripts/bench-memory.sh --save    memory-DATE-COMMIT.txt
# Hit ratio against Redis                 scripts/hit-ratio.sh              hit-ratio-DATE-COMMIT.txt
# Finding a hot shard / hot key           scripts/measure-hot-key.sh        hot-key-DATE-COMMIT.txt
# Cardinality (scrape time)               scripts/measure-scrape.sh         scrape-time-DATE-COMMIT.txt
# Limits: unread replies                  scripts/measure-unread-rss.sh     unread-rss-DATE-COMMIT.txt
# Container: image size, stop time        scripts/measure-container.sh      container-DATE-COMMIT.txt
# twemproxy throughput                    scripts/measure-twemproxy.sh      twemproxy-DATE-COMMIT.txt
# Differences from Redis (stream)         scripts/semantics-seeds.sh        semantics-seeds-DATE-COMMIT.txt
# Where the CPU goes (perf, strace)       scripts/profile-wire.sh           profile-wire-DATE-COMMIT.txt
# Choosing a shard count                  contention_grid, shardcache-bench sweep   docs/bench/grid*/, sweep/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/raw-lib.sh
what=${1:-all}
stamp="$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)"

echo "=== short measurements"
scripts/measure-unread-rss.sh
scripts/measure-scrape.sh
scripts/measure-hot-key.sh
scripts/measure-twemproxy.sh
scripts/semantics-seeds.sh
if command -v podman >/dev/null; then
    scripts/measure-container.sh
else
    echo "podman is not installed: the container figures are not regenerated" >&2
fi
[[ $what == quick ]] && exit 0

echo "=== CPU benchmarks (long; keep the machine otherwise idle)"
scripts/bench-wire.sh all | tee "docs/bench/raw/wire-cpu-$stamp.txt"
scripts/bench-wire.sh floor | tee "docs/bench/raw/wire-floor-$stamp.txt"
docs/bench/wire-onoff.sh 200000 5 | tee "docs/bench/raw/wire-onoff-$stamp.txt"
{
    raw_header "cargo run --release -p shardcache-storage --example instrument_overhead -- 200"
    cargo run --quiet --release -p shardcache-storage --example instrument_overhead -- 200
} | tee "docs/bench/raw/instrument-overhead-$stamp.txt"
{
    raw_header "cargo run --release -p shardcache-storage --example store_scaling"
    cargo run --quiet --release -p shardcache-storage --example store_scaling
} | tee "docs/bench/raw/store-scaling-$stamp.txt"
scripts/bench-memory.sh --save
scripts/hit-ratio.sh | tee "docs/bench/raw/hit-ratio-$stamp.txt"
scripts/profile-wire.sh
# Choosing a shard count: the store alone (grid, grid-focus, grid-focus-2) and the wire sweep,
# the commands docs/bench/README.md gives, into their directories (each has its own results).
cargo build --release --quiet -p shardcache-server -p shardcache-bench
cargo build --release --quiet -p shardcache-storage --example contention_grid
target/release/examples/contention_grid --duration-ms 250 --reps 3 --out docs/bench/grid
for d in grid-focus grid-focus-2; do
    target/release/examples/contention_grid --duration-ms 200 --reps 5 \
        --read-ratios 0.5,0.95 --dists uniform,hotkey --out "docs/bench/$d"
done
target/release/shardcache-bench sweep --server-bin target/release/shardcache \
    --shards 1,4,16,64,256 --connections 1,16,64 --read-ratios 0.5,0.95 \
    --distributions uniform,zipf,hotset --duration 2 --warmup 0.5 --reps 2 \
    --out docs/bench/sweep --compare-redis
echo "raw outputs: docs/bench/raw/*-$stamp.txt, docs/bench/grid*/, docs/bench/sweep/"
