//! `shardcache-bench`: thin wrapper; everything lives in `shardcache_client::bench`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    shardcache_client::bench::main_with(shardcache_client::bench::Cli::parse())
}
