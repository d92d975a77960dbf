//! Redis's latency monitor (`LATENCY LATEST|HISTORY|RESET`): when a command takes at least
//! `latency-monitor-threshold` milliseconds (0: off), a sample is added to the `command` or
//! `fast-command` event (per `fast` flag, as Redis does); each event keeps its latest 160
//! samples, one per second (the largest of that second), and its all-time maximum.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
const HISTORY_LEN: usize = 160;

/// One event's samples.
#[derive(Debug, Default, Clone)]
pub struct Event {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    /// The largest latency ever seen, in ms.
    pub max: u64,
}

/// The latency monitor.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Event>>,
}

impl LatencyMonitor {
    /// A monitor with `latency-monitor-threshold` = `threshold_ms`.
    pub fn new(threshold_ms: u64) -> LatencyMonitor {
        LatencyMonitor {
            threshold_ms: AtomicU64::new(threshold_ms),
            events: Mutex::default(),
        }
    }

    /// `latency-monitor-threshold` in ms.
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Relaxed)
    }

    /// `CONFIG SET latency-monitor-threshold`.
    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Relaxed);
    }

    /// Adds a sample to the `command` or (if `fast()`) `fast-command` event when `nanos`
    /// reaches the threshold (one load otherwise; `fast` is asked only then).
    #[inline]
    pub fn note(&self, nanos: u64, fast: impl FnOnce() -> bool) {
        let t = self.threshold_ms.load(Relaxed);
        if t == 0 || nanos / 1_000_000 < t {
            return;
        }
        let event = if fast() { "fast-command" } else { "command" };
        self.add(event, nanos / 1_000_000);
    }

    fn add(&self, event: &'static str, ms: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut events = self.events.lock();
        let e = events.entry(event).or_default();
        e.max = e.max.max(ms);
        match e.samples.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => {
                e.samples.push_back((now, ms));
                if e.samples.len() > HISTORY_LEN {
                    e.samples.pop_front();
                }
            }
        }
    }

    /// Every event: name, latest sample, maximum.
    pub fn latest(&self) -> Vec<(&'static str, (u64, u64), u64)> {
        self.events
            .lock()
            .iter()
            .filter_map(|(n, e)| e.samples.back().map(|s| (*n, *s, e.max)))
            .collect()
    }

    /// One event's samples (empty for an unknown event).
    pub fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.events
            .lock()
            .iter()
            .find(|(n, _)| n.as_bytes() == event)
            .map(|(_, e)| e.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// `LATENCY RESET [event ...]`: how many events were reset.
    pub fn reset(&self, events: &[&[u8]]) -> usize {
        let mut all = self.events.lock();
        if events.is_empty() {
            let n = all.len();
            all.clear();
            return n;
        }
        let before = all.len();
        all.retain(|n, _| !events.contains(&n.as_bytes()));
        before - all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_over_the_threshold_only() {
        let m = LatencyMonitor::new(0);
        m.note(50_000_000, || false);
        assert!(m.latest().is_empty(), "off at 0");
        m.set_threshold_ms(10);
        m.note(9_000_000, || false);
        assert!(m.latest().is_empty());
        m.note(12_000_000, || false);
        m.note(30_000_000, || false);
        m.note(11_000_000, || true);
        let latest = m.latest();
        assert_eq!(latest.len(), 2);
        let (name, (_, ms), max) = latest.iter().find(|l| l.0 == "command").copied().unwrap();
        assert_eq!(
            (name, ms, max),
            ("command", 30, 30),
            "one sample per second, the largest"
        );
        assert_eq!(m.history(b"command").len(), 1);
        assert_eq!(m.reset(&[b"command"]), 1);
        assert_eq!(m.reset(&[]), 1);
    }
}
