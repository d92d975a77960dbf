//! The sweep's result rows: what `sweep` measures and `plot` draws (both depend on this,
//! neither on the other).

use serde::Serialize;

use super::runner::Report;
use super::workload::Distribution;

/// One row of results.csv.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// `shardcache` or `redis`.
    pub server: String,
    /// Shard count (0 for redis, which has no shards).
    pub shards: usize,
    /// Connections.
    pub connections: usize,
    /// GET fraction.
    pub read_ratio: f64,
    /// Key distribution.
    pub distribution: Distribution,
    /// The run's result.
    pub report: Report,
    /// Redis's ops/s at the same grid point, when compared.
    pub redis_ops_per_sec: Option<f64>,
    /// shardcache's lock contention during the point (warmup included), from `INFO
    /// contention` before and after; `None` for redis or with `--lock-stats false`.
    pub contention: Option<Contention>,
}

/// Lock-contention totals of a server (the `INFO contention` header lines), or the
/// difference of two such snapshots around one grid point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Contention {
    /// Shared-mode acquisitions.
    pub read_acquisitions: u64,
    /// Shared-mode acquisitions that had to wait.
    pub read_contended: u64,
    /// Exclusive-mode acquisitions.
    pub write_acquisitions: u64,
    /// Exclusive-mode acquisitions that had to wait.
    pub write_contended: u64,
}

impl Contention {
    /// Parses the totals out of an `INFO contention` reply; `None` when the section is
    /// missing (redis) or lock stats are off (all acquisitions zero).
    pub fn parse(info: &str) -> Option<Contention> {
        let mut c = Contention::default();
        let mut seen = 0;
        for line in info.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else {
                continue;
            };
            let field = match k {
                "read_acquisitions" => &mut c.read_acquisitions,
                "read_contended" => &mut c.read_contended,
                "write_acquisitions" => &mut c.write_acquisitions,
                "write_contended" => &mut c.write_contended,
                _ => continue,
            };
            *field = v.trim().parse().ok()?;
            seen += 1;
        }
        (seen == 4 && c.read_acquisitions + c.write_acquisitions > 0).then_some(c)
    }

    /// `self - before` (counters only grow while one server runs).
    pub fn since(&self, before: &Contention) -> Contention {
        Contention {
            read_acquisitions: self
                .read_acquisitions
                .saturating_sub(before.read_acquisitions),
            read_contended: self.read_contended.saturating_sub(before.read_contended),
            write_acquisitions: self
                .write_acquisitions
                .saturating_sub(before.write_acquisitions),
            write_contended: self.write_contended.saturating_sub(before.write_contended),
        }
    }

    /// Percent of shared acquisitions that waited.
    pub fn read_contended_pct(&self) -> f64 {
        pct(self.read_contended, self.read_acquisitions)
    }

    /// Percent of exclusive acquisitions that waited.
    pub fn write_contended_pct(&self) -> f64 {
        pct(self.write_contended, self.write_acquisitions)
    }
}

/// `100 * part / whole`, 0 when `whole == 0`.
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl SweepRow {
    /// shardcache ops/s divided by redis ops/s.
    pub fn ratio(&self) -> Option<f64> {
        self.redis_ops_per_sec
            .filter(|r| *r > 0.0)
            .map(|r| self.report.ops_per_sec / r)
    }
}
