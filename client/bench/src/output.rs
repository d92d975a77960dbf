//! Rendering a [`Report`] as text, JSON or CSV.

use std::fmt::Write;

use super::runner::Report;
use super::stats::LatencySummary;

/// How `run` prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable table.
    Text,
    /// One JSON object (see [`Report`]).
    Json,
    /// A header line and one row.
    Csv,
}

/// The report in the requested format, newline-terminated.
pub fn render(report: &Report, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => text(report),
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(report)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            s.push('\n');
            s
        }
        OutputFormat::Csv => format!("{}\n{}\n", csv_header(), csv_row(report)),
    }
}

/// Text: throughput, then one latency line per op type.
fn text(r: &Report) -> String {
    let c = &r.config;
    let mut s = String::new();
    let mode = match c.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => format!("closed loop, pipeline {}", c.pipeline),
    };
    let _ = writeln!(
        s,
        "target {}  connections {}  {}  read ratio {}  keys {} ({}{})  value {} B",
        c.addr(),
        c.connections,
        mode,
        c.read_ratio,
        c.keys,
        c.distribution,
        match c.distribution {
            super::workload::Distribution::Zipf => format!(" theta {}", c.zipf_theta),
            super::workload::Distribution::Hotset =>
                format!(" {} hot keys get {}", c.hot_keys, c.hot_share),
            super::workload::Distribution::Uniform => String::new(),
        },
        c.value_size
    );
    let _ = writeln!(
        s,
        "{} requests in {:.2} s: {:.0} ops/s, {} errors, GET hits {} misses {}",
        r.requests, r.duration_s, r.ops_per_sec, r.errors, r.get_hits, r.get_misses
    );
    let _ = writeln!(
        s,
        "latency (us)      count      p50      p90      p99    p99.9      max     mean"
    );
    for (name, l) in [("all", &r.latency_us), ("get", &r.get), ("set", &r.set)] {
        let _ = writeln!(
            s,
            "  {:<6} {:>12} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            name, l.count, l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
    }
    s
}

/// Column names for [`csv_row`].
pub fn csv_header() -> String {
    let mut cols = vec![
        "ops_per_sec",
        "requests",
        "errors",
        "duration_s",
        "connections",
        "pipeline",
        "read_ratio",
        "keys",
        "distribution",
        "value_size",
        "rate",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for prefix in ["", "get_", "set_"] {
        for f in ["p50", "p90", "p99", "p999", "max", "mean"] {
            cols.push(format!("{prefix}{f}_us"));
        }
    }
    cols.join(",")
}

/// One CSV row, matching [`csv_header`].
pub fn csv_row(r: &Report) -> String {
    let c = &r.config;
    let mut vals = vec![
        r.ops_per_sec.to_string(),
        r.requests.to_string(),
        r.errors.to_string(),
        r.duration_s.to_string(),
        c.connections.to_string(),
        c.pipeline.to_string(),
        c.read_ratio.to_string(),
        c.keys.to_string(),
        c.distribution.to_string(),
        c.value_size.to_string(),
        c.rate.map(|x| x.to_string()).unwrap_or_default(),
    ];
    for l in [&r.latency_us, &r.get, &r.set] {
        vals.extend(latency_cells(l));
    }
    vals.join(",")
}

/// `p50..mean` as strings.
fn latency_cells(l: &LatencySummary) -> Vec<String> {
    [l.p50, l.p90, l.p99, l.p999, l.max, l.mean]
        .iter()
        .map(|v| v.to_string())
        .collect()
}
