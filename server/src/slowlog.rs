//! `SLOWLOG`: the most recent commands that took longer than `slowlog-log-slower-than`
//! microseconds, at most `slowlog-max-len` of them, formatted as Redis formats them.
//!
//! Adding an entry takes a mutex, but only for a command that was slow (by definition rare);
//! the fast path is one comparison of the command's time against an atomic threshold.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shardcache_protocol::reply;

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC`: arguments kept per entry (the last says how many more).
const MAX_ARGC: usize = 32;
/// Redis's `SLOWLOG_ENTRY_MAX_STRING`: bytes kept per argument.
const MAX_STRING: usize = 128;

/// One logged command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Increasing id.
    pub id: u64,
    /// Unix time in seconds when it was logged.
    pub time: u64,
    /// How long it ran, in microseconds.
    pub micros: u64,
    /// Its arguments, truncated as Redis truncates them.
    pub args: Vec<Bytes>,
    /// The client's address.
    pub peer: String,
    /// The client's name (empty if none).
    pub name: String,
}

/// A bounded log of entries, newest first, with a threshold: what SLOWLOG and LOCKLOG
/// share. Adding an entry takes a mutex, only for an entry that passed the threshold.
#[derive(Debug)]
pub struct EntryLog<E> {
    /// Microseconds; negative turns the log off, 0 logs everything.
    slower_than: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<E>>,
}

impl<E: Clone> EntryLog<E> {
    /// An empty log with a threshold (µs) and a length.
    pub fn new(slower_than: i64, max_len: usize) -> Self {
        EntryLog {
            slower_than: AtomicI64::new(slower_than),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// The threshold in microseconds.
    pub fn slower_than(&self) -> i64 {
        self.slower_than.load(Relaxed)
    }

    /// `CONFIG SET …-slower-than`.
    pub fn set_slower_than(&self, v: i64) {
        self.slower_than.store(v, Relaxed);
    }

    /// Whether anything is logged at all (threshold not negative).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.slower_than.load(Relaxed) >= 0
    }

    /// Entries kept.
    pub fn max_len(&self) -> usize {
        self.max_len.load(Relaxed)
    }

    /// `CONFIG SET …-max-len`: also trims the log.
    pub fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Relaxed);
        self.entries.lock().truncate(n);
    }

    /// Adds the entry `make` builds from the next id (nothing when the log keeps none).
    pub fn push(&self, make: impl FnOnce(u64) -> E) {
        let max = self.max_len();
        if max == 0 {
            return;
        }
        let entry = make(self.next_id.fetch_add(1, Relaxed));
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(max);
    }

    /// `… LEN`.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `… RESET`.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The newest `count` entries (all for `None`), newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<E> {
        let e = self.entries.lock();
        e.iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// The entry with the greatest `key`, if any.
    pub fn max_by_key<K: Ord>(&self, key: impl Fn(&E) -> K) -> Option<E> {
        self.entries.lock().iter().max_by_key(|e| key(e)).cloned()
    }
}

/// An entry of an [`EntryLog`] that `… GET` can write.
pub trait LogEntry: Clone {
    /// Writes `entries` as the log's `GET` answers them.
    fn write_all(out: &mut BytesMut, entries: &[Self]);
}

/// What `SLOWLOG`/`LOCKLOG` `GET`, `LEN` and `RESET` need of a log.
pub trait LogCommands {
    /// `GET [count]`: writes the newest `count` entries (all for `None`).
    fn write_newest(&self, out: &mut BytesMut, count: Option<usize>);
    /// `LEN`.
    fn entries(&self) -> usize;
    /// `RESET`.
    fn clear(&self);
}

impl<E: LogEntry> LogCommands for EntryLog<E> {
    fn write_newest(&self, out: &mut BytesMut, count: Option<usize>) {
        E::write_all(out, &self.newest(count));
    }
    fn entries(&self) -> usize {
        self.len()
    }
    fn clear(&self) {
        self.reset();
    }
}

/// The slow log.
#[derive(Debug)]
pub struct SlowLog(EntryLog<Entry>);

impl std::ops::Deref for SlowLog {
    type Target = EntryLog<Entry>;
    fn deref(&self) -> &EntryLog<Entry> {
        &self.0
    }
}

impl LogEntry for Entry {
    /// Writes entries as `SLOWLOG GET` answers them: per entry an array of id, time, duration,
    /// the arguments, the client's address and name.
    fn write_all(out: &mut BytesMut, entries: &[Entry]) {
        reply::array_len(out, entries.len());
        for e in entries {
            reply::array_len(out, 6);
            reply::integer(out, e.id as i64);
            reply::integer(out, e.time as i64);
            reply::integer(out, e.micros as i64);
            reply::array_len(out, e.args.len());
            for a in &e.args {
                reply::bulk(out, a);
            }
            reply::bulk(out, e.peer.as_bytes());
            reply::bulk(out, e.name.as_bytes());
        }
    }
}

impl SlowLog {
    /// A log with Redis's settings `slowlog-log-slower-than` and `slowlog-max-len`.
    pub fn new(slower_than: i64, max_len: usize) -> SlowLog {
        SlowLog(EntryLog::new(slower_than, max_len))
    }

    /// Whether a command that ran `nanos` is to be logged (the fast path: no lock).
    #[inline]
    pub fn is_slow(&self, nanos: u64) -> bool {
        let t = self.slower_than();
        t >= 0 && nanos / 1000 >= t as u64
    }

    /// Logs a command (call when [`SlowLog::is_slow`]).
    pub fn record(&self, nanos: u64, args: &[Bytes], peer: SocketAddr, name: Option<&str>) {
        self.push(|id| Entry {
            id,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            micros: nanos / 1000,
            args: truncate_args(args),
            peer: peer.to_string(),
            name: name.unwrap_or_default().to_string(),
        });
    }

    /// Logs the command if `nanos` reaches the threshold (one comparison otherwise).
    #[inline]
    pub fn note(&self, nanos: u64, args: &[Bytes], peer: SocketAddr, name: Option<&str>) {
        if self.is_slow(nanos) {
            self.record(nanos, args, peer, name);
        }
    }
}

/// Redis's `slowlogCreateEntry` truncation: at most 32 arguments, the 32nd replaced by
/// "... (N more arguments)"; each at most 128 bytes, then "... (N more bytes)".
pub(crate) fn truncate_args(args: &[Bytes]) -> Vec<Bytes> {
    let argc = args.len().min(MAX_ARGC);
    (0..argc)
        .map(|j| {
            if argc != args.len() && j == argc - 1 {
                Bytes::from(format!("... ({} more arguments)", args.len() - argc + 1))
            } else if args[j].len() > MAX_STRING {
                let mut b = BytesMut::from(&args[j][..MAX_STRING]);
                b.extend_from_slice(
                    format!("... ({} more bytes)", args[j].len() - MAX_STRING).as_bytes(),
                );
                b.freeze()
            } else {
                Bytes::copy_from_slice(&args[j])
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_like_redis() {
        let long = Bytes::from(vec![b'x'; 200]);
        let t = truncate_args(&[Bytes::from_static(b"SET"), long]);
        assert_eq!(t[1].len(), 128 + "... (72 more bytes)".len());
        assert!(t[1].ends_with(b"... (72 more bytes)"));
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let t = truncate_args(&many);
        assert_eq!(t.len(), 32);
        assert_eq!(&t[31][..], b"... (9 more arguments)");
    }

    #[test]
    fn keeps_the_newest_up_to_max_len() {
        let log = SlowLog::new(0, 2);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for i in 0..3u64 {
            assert!(log.is_slow(i * 1000));
            log.record(i * 1000, &[Bytes::from(i.to_string())], peer, None);
        }
        let e = log.newest(None);
        assert_eq!((e.len(), e[0].id, e[1].id), (2, 2, 1));
        log.set_slower_than(-1);
        assert!(!log.is_slow(u64::MAX));
        log.set_max_len(1);
        assert_eq!(log.len(), 1);
        log.reset();
        assert!(log.is_empty());
    }
}
