//! The output formats of every subcommand (below the modules that render them).

/// How `run` prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable table.
    Text,
    /// One JSON object (see `Report`).
    Json,
    /// A header line and one row.
    Csv,
}
