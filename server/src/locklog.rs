//! `LOCKLOG`: a SLOWLOG for shard locks. The most recent commands that held a shard lock for
//! at least `lock-log-slower-than` microseconds, at most `lock-log-max-len` of them, each
//! with the shard(s), the lock mode, and how many acquisitions were waiting for the lock
//! when it was released and for how long in all.
//!
//! The store times the holds and queues the long ones on the thread that made them
//! ([`shardcache_storage::blame`]); after each command the dispatcher collects them
//! ([`LockLog::collect`]) and logs one entry per command, with its arguments (truncated as
//! SLOWLOG truncates them) and client, so keys appear here as in SLOWLOG and never in metric
//! labels. Collecting costs one thread-local read per command when nothing was long.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use shardcache_protocol::reply;
use shardcache_storage::blame::{self, LongHold};

use crate::slowlog::{EntryLog, LogEntry};

/// One logged lock hold (of one command, over one or more shards).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Increasing id.
    pub id: u64,
    /// Unix time in seconds when it was logged.
    pub time: u64,
    /// The longest hold of the command, in microseconds.
    pub hold_micros: u64,
    /// The shards it held that long, ascending.
    pub shards: Vec<u32>,
    /// Whether any of those holds was exclusive.
    pub write: bool,
    /// Acquisitions waiting for those locks when they were released.
    pub waiters: u64,
    /// Their total wait, in microseconds.
    pub waited_micros: u64,
    /// The holding command (lower case), for the verdict.
    pub command: &'static str,
    /// Its arguments, truncated as SLOWLOG truncates them.
    pub args: Vec<Bytes>,
    /// The client's address.
    pub peer: String,
    /// The client's name (empty if none).
    pub name: String,
}

impl Entry {
    /// "read" or "write".
    pub fn mode(&self) -> &'static str {
        if self.write {
            "write"
        } else {
            "read"
        }
    }
}

/// The lock log.
#[derive(Debug)]
pub struct LockLog(EntryLog<Entry>);

impl std::ops::Deref for LockLog {
    type Target = EntryLog<Entry>;
    fn deref(&self) -> &EntryLog<Entry> {
        &self.0
    }
}

impl LogEntry for Entry {
    /// Writes entries as `LOCKLOG GET` answers them: per entry an array of id, unix time, hold
    /// in microseconds, the shards (array of integers), the mode, the acquisitions waiting at
    /// release, their total wait in microseconds, the arguments, the client's address and name.
    fn write_all(out: &mut BytesMut, entries: &[Entry]) {
        reply::array_len(out, entries.len());
        for e in entries {
            reply::array_len(out, 10);
            reply::integer(out, e.id as i64);
            reply::integer(out, e.time as i64);
            reply::integer(out, e.hold_micros as i64);
            reply::array_len(out, e.shards.len());
            for s in &e.shards {
                reply::integer(out, i64::from(*s));
            }
            reply::bulk(out, e.mode().as_bytes());
            reply::integer(out, e.waiters as i64);
            reply::integer(out, e.waited_micros as i64);
            reply::array_len(out, e.args.len());
            for a in &e.args {
                reply::bulk(out, a);
            }
            reply::bulk(out, e.peer.as_bytes());
            reply::bulk(out, e.name.as_bytes());
        }
    }
}

impl LockLog {
    /// A log with the settings `lock-log-slower-than` and `lock-log-max-len`; also tells the
    /// store which holds to queue.
    pub fn new(slower_than: i64, max_len: usize) -> LockLog {
        let log = LockLog(EntryLog::new(slower_than, max_len));
        log.set_slower_than(slower_than);
        log
    }

    /// `CONFIG SET lock-log-slower-than`. The store's long-hold threshold is process-wide:
    /// with several servers in one process (tests), the last one set wins.
    pub fn set_slower_than(&self, micros: i64) {
        self.0.set_slower_than(micros);
        blame::set_long_hold_ns(u64::try_from(micros).ok().map(|m| m.saturating_mul(1000)));
    }

    /// Logs the long holds the command that just ran on this thread made, if any.
    #[inline]
    pub fn collect(
        &self,
        command: &'static str,
        args: &[Bytes],
        peer: SocketAddr,
        name: Option<&str>,
    ) {
        let holds = blame::take_long_holds();
        if !holds.is_empty() {
            self.record(&holds, command, args, peer, name);
        }
    }

    /// Logs one entry for `holds`, made by one command.
    #[cold]
    pub fn record(
        &self,
        holds: &[LongHold],
        command: &'static str,
        args: &[Bytes],
        peer: SocketAddr,
        name: Option<&str>,
    ) {
        if !self.enabled() || holds.is_empty() {
            return;
        }
        let mut shards: Vec<u32> = holds.iter().map(|h| h.lock).collect();
        shards.sort_unstable();
        shards.dedup();
        self.push(|id| Entry {
            id,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            hold_micros: holds.iter().map(|h| h.hold_ns).max().unwrap_or(0) / 1000,
            shards,
            write: holds.iter().any(|h| h.write),
            waiters: holds.iter().map(|h| h.waiters).sum(),
            waited_micros: holds.iter().map(|h| h.waited_ns).sum::<u64>() / 1000,
            command,
            args: crate::slowlog::truncate_args(args),
            peer: peer.to_string(),
            name: name.unwrap_or_default().to_string(),
        });
    }

    /// The logged entry that cost others most: the most total wait behind it, then the
    /// longest hold (a hold nobody waited for, such as a thread descheduled while holding,
    /// is worst only when no hold made anyone wait).
    pub fn worst(&self) -> Option<Entry> {
        self.max_by_key(|e| (e.waited_micros, e.hold_micros, e.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(lock: u32, write: bool, ms: u64, waiters: u64) -> LongHold {
        LongHold {
            lock,
            write,
            hold_ns: ms * 1_000_000,
            waiters,
            waited_ns: waiters * ms * 500_000,
        }
    }

    #[test]
    fn one_entry_per_command_over_its_shards() {
        let log = LockLog::new(1000, 2);
        let peer: SocketAddr = "10.0.0.5:51234".parse().unwrap();
        let args = [Bytes::from_static(b"KEYS"), Bytes::from_static(b"*")];
        log.record(
            &[
                hold(3, false, 41, 312),
                hold(1, false, 2, 0),
                hold(3, false, 1, 0),
            ],
            "keys",
            &args,
            peer,
            Some("app"),
        );
        let e = &log.newest(None)[0];
        assert_eq!(e.shards, vec![1, 3]);
        assert_eq!((e.hold_micros, e.mode(), e.waiters), (41_000, "read", 312));
        assert_eq!(e.peer, "10.0.0.5:51234");
        assert_eq!(e.name, "app");
        for i in 0..3 {
            log.record(&[hold(i, true, 5, 0)], "flushdb", &args[..1], peer, None);
        }
        assert_eq!(log.len(), 2);
        assert_eq!(log.worst().map(|e| e.command), Some("flushdb"));
        log.record(&[hold(2, false, 1, 3)], "keys", &args, peer, None);
        assert_eq!(
            log.worst().map(|e| e.command),
            Some("keys"),
            "waiters first"
        );
        log.set_max_len(0);
        log.record(&[hold(0, true, 5, 0)], "set", &args, peer, None);
        assert!(log.is_empty());
    }
}
