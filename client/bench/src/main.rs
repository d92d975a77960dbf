//! `shardcache-bench`: thin wrapper; everything lives in the `shardcache_bench` library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    shardcache_bench::main_with(shardcache_bench::Cli::parse())
}
