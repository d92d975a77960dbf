//! `MONITOR`: every command any client runs, as one status line each, streamed to the
//! monitoring clients.
//!
//! Off the hot path when nobody monitors: a command pays one relaxed load of a counter that
//! only `MONITOR` and a monitor's disconnection write. Each monitor's backlog is bounded by
//! `client-output-buffer-limit`: a monitor that falls further behind is disconnected (as
//! Redis disconnects a client over its output buffer limit) instead of growing the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// The receiving end a monitoring connection reads.
#[derive(Debug)]
pub struct MonitorFeed {
    /// Lines to write.
    pub rx: mpsc::UnboundedReceiver<Bytes>,
    /// Bytes sent but not yet written; the connection subtracts what it writes.
    pub pending: Arc<AtomicUsize>,
}

struct Subscriber {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    pending: Arc<AtomicUsize>,
}

/// The monitoring clients.
#[derive(Default)]
pub struct Monitors {
    active: AtomicUsize,
    subs: Mutex<Vec<Subscriber>>,
}

impl std::fmt::Debug for Monitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitors")
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish()
    }
}

impl Monitors {
    /// Whether anybody monitors (the hot path's only cost).
    #[inline]
    pub fn any(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// Adds client `id` as a monitor.
    pub fn subscribe(&self, id: u64) -> MonitorFeed {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let mut subs = self.subs.lock();
        subs.retain(|s| s.id != id);
        subs.push(Subscriber {
            id,
            tx,
            pending: Arc::clone(&pending),
        });
        self.active.store(subs.len(), Ordering::Relaxed);
        MonitorFeed { rx, pending }
    }

    /// Removes client `id` (its connection closed).
    pub fn unsubscribe(&self, id: u64) {
        let mut subs = self.subs.lock();
        subs.retain(|s| s.id != id);
        self.active.store(subs.len(), Ordering::Relaxed);
    }

    /// Sends one command to every monitor. Monitors whose backlog would pass `limit` bytes
    /// (0: no limit) are dropped, and so are those whose connection has closed.
    pub fn feed(&self, db: usize, peer: SocketAddr, args: &[Bytes], limit: u64) {
        let line = format_line(db, peer, args);
        let mut subs = self.subs.lock();
        subs.retain(|s| {
            let p = s.pending.fetch_add(line.len(), Ordering::Relaxed) + line.len();
            if limit != 0 && p as u64 > limit {
                tracing::warn!(
                    client = s.id,
                    backlog = p,
                    limit,
                    "closing MONITOR client over client-output-buffer-limit"
                );
                return false;
            }
            s.tx.send(line.clone()).is_ok()
        });
        self.active.store(subs.len(), Ordering::Relaxed);
    }
}

/// Redis's `replicationFeedMonitors` line: `+<secs>.<micros> [<db> <ip:port>] "arg" ...`.
fn format_line(db: usize, peer: SocketAddr, args: &[Bytes]) -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut s = format!(
        "+{}.{:06} [{db} {peer}]",
        now.as_secs(),
        now.subsec_micros()
    )
    .into_bytes();
    for a in args {
        s.push(b' ');
        repr(&mut s, a);
    }
    s.extend_from_slice(b"\r\n");
    Bytes::from(s)
}

/// Redis's `sdscatrepr`: quoted, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped and
/// other unprintable bytes as `\xHH`.
fn repr(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    for &c in b {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_formatted_like_redis() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let l = format_line(
            3,
            peer,
            &[
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k\n\"\x01 x"),
            ],
        );
        let s = String::from_utf8(l.to_vec()).unwrap();
        assert!(s.starts_with('+'), "{s}");
        assert!(
            s.ends_with(" [3 127.0.0.1:5000] \"SET\" \"k\\n\\\"\\x01 x\"\r\n"),
            "{s}"
        );
    }

    #[test]
    fn a_monitor_over_its_limit_is_dropped() {
        let m = Monitors::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut feed = m.subscribe(7);
        assert!(m.any());
        m.feed(0, peer, &[Bytes::from_static(b"PING")], 1000);
        assert!(feed.rx.try_recv().is_ok());
        for _ in 0..100 {
            m.feed(0, peer, &[Bytes::from_static(b"PING")], 1000);
        }
        assert!(!m.any(), "dropped past 1000 bytes of backlog");
    }
}
