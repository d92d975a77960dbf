//! The `shardcache-bench` load generator, as a library so it is testable
//! without a process: [`runner::run`] for one run, [`sweep::sweep`] for the
//! shard-count x connections x workload grid, [`load::load`] to SET N distinct
//! keys once (the memory benchmark), [`output`] for text/JSON/CSV.
//!
//! The binary (`src/bin/shardcache-bench.rs`) only parses arguments and calls
//! [`main_with`].

pub mod load;
pub mod output;
pub mod plot;
pub mod runner;
pub mod stats;
pub mod sweep;
pub mod workload;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

pub use load::LoadConfig;
pub use output::OutputFormat;
pub use runner::{Report, RunConfig};
pub use sweep::SweepConfig;

/// `shardcache-bench`: load generator for shardcache and any RESP server.
#[derive(Debug, Parser)]
#[command(name = "shardcache-bench", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One run against a running server.
    Run {
        /// Workload and target.
        #[command(flatten)]
        config: RunConfig,
        /// Tokio worker threads (default: number of CPUs).
        #[arg(long)]
        threads: Option<usize>,
        /// Result format on stdout.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// SET keys 0..N once each (fixed key and value sizes) over a few pipelined
    /// connections; prints throughput and SET latency percentiles.
    Load {
        /// Keys, sizes and target.
        #[command(flatten)]
        config: LoadConfig,
        /// Tokio worker threads (default: number of CPUs).
        #[arg(long)]
        threads: Option<usize>,
        /// Result format on stdout (text ends with a `load key=value ...` line).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Start the server at each shard count and run a grid of workloads.
    Sweep {
        /// The grid and where to write results.
        #[command(flatten)]
        config: SweepConfig,
        /// Tokio worker threads (default: number of CPUs).
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// Runs the CLI: builds the runtime with the requested worker threads and
/// dispatches.
///
/// # Errors
/// Bad arguments, unreachable servers, unwritable output directory.
pub fn main_with(cli: Cli) -> anyhow::Result<()> {
    let threads = match &cli.command {
        Command::Run { threads, .. }
        | Command::Load { threads, .. }
        | Command::Sweep { threads, .. } => *threads,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(t) = threads {
        builder.worker_threads(t.max(1));
    }
    let rt = builder.build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Run { config, output, .. } => {
                let report = runner::run(&config, std::io::stderr().is_terminal()).await?;
                print!("{}", output::render(&report, output));
                Ok(())
            }
            Command::Load { config, output, .. } => {
                let report = load::load(&config, std::io::stderr().is_terminal()).await?;
                print!("{}", load::render(&report, output));
                match &report.first_error {
                    Some(e) => anyhow::bail!("{} SETs failed, first: {e}", report.errors),
                    None => Ok(()),
                }
            }
            Command::Sweep { config, .. } => sweep::sweep(&config).await,
        }
    })
}
