//! Per-worker statistics: what `INFO` (stats, commandstats, latencystats) and `/metrics`
//! report about commands and network traffic.
//!
//! Each worker thread owns one [`WorkerStats`] and is its only writer: a counter update is a
//! relaxed load and store ([`bump`]), never a locked read-modify-write, and no two workers'
//! counters share a cache line. Nothing on the GET/SET path writes a line another thread
//! writes. Readers ([`Stats::totals`]) sum every worker's counters at read time.
//!
//! `CONFIG RESETSTAT` cannot zero counters it does not own, so it records the current sums as
//! a baseline that later reads subtract ([`Stats::reset`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::latency::{bump, LatencyHistogram, Snapshot};
use crate::table::{CommandSpec, COMMANDS};

/// Counters of one command on one worker. Aligned so two commands' (or two workers')
/// counters never share a cache line.
#[repr(align(128))]
#[derive(Default)]
pub struct CommandCounters {
    /// Executions.
    calls: AtomicU64,
    /// Executions that replied with an error.
    failed: AtomicU64,
    /// Calls refused before execution (wrong arity, over maxmemory, no auth), Redis's
    /// `rejected_calls`.
    rejected: AtomicU64,
    /// Execution times (ns): `usec` of `INFO commandstats`, `INFO latencystats`, and the
    /// `shardcache_command_duration_seconds` histogram.
    duration: LatencyHistogram,
}

/// A worker's counters that are not per command.
#[repr(align(128))]
#[derive(Default)]
struct IoCounters {
    /// Requests naming no known command (counted in `total_commands_processed`, as Redis).
    unknown_commands: AtomicU64,
    /// Bytes read from clients.
    net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    net_output_bytes: AtomicU64,
}

/// The statistics one worker thread writes. Only that thread may call the recording methods
/// (see [`bump`]); any thread may read.
pub struct WorkerStats {
    commands: Box<[CommandCounters]>,
    io: Box<IoCounters>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerStats {
    /// Zeroed counters for every command in the table.
    pub fn new() -> WorkerStats {
        WorkerStats {
            commands: COMMANDS
                .iter()
                .map(|_| CommandCounters::default())
                .collect(),
            io: Box::default(),
        }
    }

    /// One execution of the command at `index` in [`COMMANDS`]; `failed` when it replied
    /// with an error.
    #[inline]
    pub fn call(&self, index: usize, failed: bool) {
        if let Some(c) = self.commands.get(index) {
            bump(&c.calls, 1);
            if failed {
                bump(&c.failed, 1);
            }
        }
    }

    /// A call refused before execution.
    #[inline]
    pub fn rejected(&self, index: usize) {
        if let Some(c) = self.commands.get(index) {
            bump(&c.rejected, 1);
        }
    }

    /// A request naming no known command.
    #[inline]
    pub fn unknown_command(&self) {
        bump(&self.io.unknown_commands, 1);
    }

    /// Bytes read from a client.
    #[inline]
    pub fn net_input(&self, n: usize) {
        bump(&self.io.net_input_bytes, n as u64);
    }

    /// Bytes written to a client.
    #[inline]
    pub fn net_output(&self, n: usize) {
        bump(&self.io.net_output_bytes, n as u64);
    }

    /// One command's execution time.
    #[inline]
    pub fn duration(&self, index: usize, ns: u64) {
        if let Some(c) = self.commands.get(index) {
            c.duration.record(ns);
        }
    }

    /// A run of commands that took `ns` together, as (index into [`COMMANDS`], consecutive
    /// executions) pairs: each execution is recorded with an equal share. This is how a batch
    /// is timed with two counter reads instead of two per command.
    pub fn durations(&self, runs: &[(u16, u32)], ns: u64) {
        let n: u64 = runs.iter().map(|&(_, k)| u64::from(k)).sum();
        if n == 0 {
            return;
        }
        let share = ns / n;
        for &(index, k) in runs {
            if let Some(c) = self.commands.get(usize::from(index)) {
                c.duration.record_n(share, u64::from(k));
            }
        }
    }

    /// Adds this worker's counters to `t`.
    fn add_to(&self, t: &mut Totals) {
        for (sum, c) in t.commands.iter_mut().zip(self.commands.iter()) {
            let calls = c.calls.load(Relaxed);
            sum.calls += calls;
            sum.failed += c.failed.load(Relaxed);
            sum.rejected += c.rejected.load(Relaxed);
            if calls > 0 {
                sum.duration.add(&c.duration.snapshot());
            }
        }
        t.unknown_commands += self.io.unknown_commands.load(Relaxed);
        t.net_input_bytes += self.io.net_input_bytes.load(Relaxed);
        t.net_output_bytes += self.io.net_output_bytes.load(Relaxed);
    }
}

/// One command's counters summed over the workers.
#[derive(Clone, Debug, Default)]
pub struct CommandTotals {
    /// Executions.
    pub calls: u64,
    /// Executions that replied with an error.
    pub failed: u64,
    /// Calls refused before execution.
    pub rejected: u64,
    /// Execution times.
    pub duration: Snapshot,
}

impl CommandTotals {
    /// Failed plus rejected calls: the `shardcache_command_errors_total` series.
    pub fn errors(&self) -> u64 {
        self.failed + self.rejected
    }
}

/// Every worker's counters summed (minus the `CONFIG RESETSTAT` baseline).
#[derive(Clone, Debug)]
pub struct Totals {
    /// Per command, indexed like [`COMMANDS`].
    pub commands: Vec<CommandTotals>,
    /// Requests naming no known command.
    pub unknown_commands: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            commands: vec![CommandTotals::default(); COMMANDS.len()],
            unknown_commands: 0,
            net_input_bytes: 0,
            net_output_bytes: 0,
        }
    }
}

impl Totals {
    /// Redis's `total_commands_processed`: every request, including rejected calls and
    /// unknown commands.
    pub fn total_processed(&self) -> u64 {
        self.unknown_commands
            + self
                .commands
                .iter()
                .map(|c| c.calls + c.rejected)
                .sum::<u64>()
    }

    /// The commands called at least once since start (or `CONFIG RESETSTAT`), with their
    /// counters: what `INFO latencystats` and the duration histograms report.
    pub fn called(&self) -> impl Iterator<Item = (&'static CommandSpec, &CommandTotals)> {
        COMMANDS
            .iter()
            .zip(self.commands.iter())
            .filter(|(_, c)| c.calls > 0)
    }

    /// Subtracts a baseline taken earlier, never going below zero.
    fn sub(&mut self, base: &Totals) {
        for (c, b) in self.commands.iter_mut().zip(&base.commands) {
            c.calls = c.calls.saturating_sub(b.calls);
            c.failed = c.failed.saturating_sub(b.failed);
            c.rejected = c.rejected.saturating_sub(b.rejected);
            c.duration.sub(&b.duration);
        }
        self.unknown_commands = self.unknown_commands.saturating_sub(base.unknown_commands);
        self.net_input_bytes = self.net_input_bytes.saturating_sub(base.net_input_bytes);
        self.net_output_bytes = self.net_output_bytes.saturating_sub(base.net_output_bytes);
    }
}

/// Every worker's statistics and the `CONFIG RESETSTAT` baseline.
pub struct Stats {
    workers: Box<[WorkerStats]>,
    base: Mutex<Option<Totals>>,
}

impl Stats {
    /// Statistics for `workers` worker threads (at least one).
    pub fn new(workers: usize) -> Stats {
        Stats {
            workers: (0..workers.max(1)).map(|_| WorkerStats::new()).collect(),
            base: Mutex::new(None),
        }
    }

    /// The counters worker `i` writes.
    pub fn worker(&self, i: usize) -> &WorkerStats {
        &self.workers[i % self.workers.len()]
    }

    fn raw(&self) -> Totals {
        let mut t = Totals::default();
        for w in self.workers.iter() {
            w.add_to(&mut t);
        }
        t
    }

    /// The sums since start or the last [`Stats::reset`].
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        if let Some(base) = &*self.base.lock() {
            t.sub(base);
        }
        t
    }

    /// `CONFIG RESETSTAT`: later reads count from now.
    pub fn reset(&self) {
        let now = self.raw();
        *self.base.lock() = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::lookup;

    #[test]
    fn workers_are_summed_and_reset_is_a_baseline() {
        let stats = Stats::new(2);
        let (get, _) = lookup(b"get").expect("get");
        let (set, _) = lookup(b"set").expect("set");
        stats.worker(0).call(get, false);
        stats.worker(1).call(get, true);
        stats.worker(1).rejected(set);
        stats.worker(0).unknown_command();
        stats.worker(1).net_input(10);
        stats.worker(0).net_output(7);
        let g = get as u16;
        let s = set as u16;
        stats.worker(0).durations(&[(g, 2), (s, 1)], 3000);
        let t = stats.totals();
        assert_eq!(t.commands[get].calls, 2);
        assert_eq!(t.commands[get].failed, 1);
        assert_eq!(t.commands[set].rejected, 1);
        assert_eq!(t.commands[get].errors(), 1);
        assert_eq!(t.total_processed(), 4);
        assert_eq!((t.net_input_bytes, t.net_output_bytes), (10, 7));
        assert_eq!(t.commands[get].duration.count(), 2);
        assert_eq!(t.commands[get].duration.sum_ns, 2000);
        assert_eq!(t.called().count(), 1);
        stats.reset();
        let t = stats.totals();
        assert_eq!(t.total_processed(), 0);
        assert_eq!(t.commands[get].duration.count(), 0);
        stats.worker(1).call(get, false);
        assert_eq!(stats.totals().commands[get].calls, 1);
        assert_eq!(stats.totals().total_processed(), 1);
    }
}
