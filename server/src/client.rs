//! The one record of a client connection: what commands read and change (`SELECT`, `HELLO`,
//! `AUTH`, `CLIENT SETNAME`, `MULTI`, `WATCH`, `MONITOR`), owned by the connection task.
//!
//! It sits below `state` and `command`: it holds the transaction and watch state, whose
//! behaviour (`MULTI`, `EXEC`, `WATCH`) is `command::transaction`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use shardcache_protocol::Version;
use shardcache_storage::{Store, WatchFlag};

use crate::auth::Auth;

/// Per-connection state that commands read and change (`SELECT`, `HELLO`, `CLIENT SETNAME`).
#[derive(Debug)]
pub struct ClientState {
    /// `CLIENT ID`.
    pub id: u64,
    /// Peer address, for `CLIENT LIST` and logs.
    pub peer: SocketAddr,
    /// The selected database.
    pub db: usize,
    /// Reply protocol negotiated with `HELLO`.
    pub version: Version,
    /// `CLIENT SETNAME`.
    pub name: Option<String>,
    /// Passed `AUTH` (or needed none when it connected). Until then only `no_auth` commands
    /// run while a password is set.
    pub authenticated: bool,
    /// The queued transaction, between `MULTI` and `EXEC`/`DISCARD`.
    pub multi: Option<Box<MultiState>>,
    /// Watched keys (`WATCH`), unwatched when this is dropped.
    pub watching: Option<Box<WatchState>>,
    /// `CLIENT NO-TOUCH on`: this client's reads leave keys' LRU/LFU alone.
    pub no_touch: bool,
    /// Set by `MONITOR`: the stream the connection then forwards.
    pub monitor: Option<crate::monitor::MonitorFeed>,
}

impl Clone for ClientState {
    /// A copy to run one command on another thread (see `run_offloaded`): the transaction
    /// and watch state are not copied; they stay with the connection.
    fn clone(&self) -> Self {
        ClientState {
            id: self.id,
            peer: self.peer,
            db: self.db,
            version: self.version,
            name: self.name.clone(),
            authenticated: self.authenticated,
            multi: None,
            watching: None,
            no_touch: self.no_touch,
            monitor: None,
        }
    }
}

impl ClientState {
    /// A fresh connection's state: database 0, RESP2, no name; authenticated when `auth`
    /// requires no password. Also what tests and the `command` fuzz target run commands as.
    pub fn new(id: u64, peer: SocketAddr, auth: &Auth) -> ClientState {
        ClientState {
            id,
            peer,
            db: 0,
            version: Version::Resp2,
            name: None,
            authenticated: !auth.required(),
            multi: None,
            watching: None,
            no_touch: false,
            monitor: None,
        }
    }
}

/// A client's queued transaction.
#[derive(Debug, Default)]
pub struct MultiState {
    /// Command table index and arguments of each queued command.
    pub(crate) queue: Vec<(usize, Vec<Bytes>)>,
    /// Bytes of arguments queued, bounded by `client-query-buffer-limit`.
    pub(crate) bytes: usize,
    /// A command was rejected while queuing: `EXEC` aborts.
    pub(crate) dirty: bool,
}

/// A client's watched keys. Dropping it (also when the connection ends) unwatches them.
pub struct WatchState {
    pub(crate) store: Arc<Store>,
    pub(crate) flag: Arc<WatchFlag>,
    /// (db, key, whether it was already expired when watched).
    pub(crate) keys: Vec<(usize, Bytes, bool)>,
}

impl std::fmt::Debug for WatchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchState")
            .field("keys", &self.keys.len())
            .field("dirty", &self.flag.is_dirty())
            .finish()
    }
}

impl WatchState {
    /// Whether `EXEC` must fail: a watched key was touched, or has expired since it was
    /// watched.
    pub(crate) fn broken(&self) -> bool {
        self.flag.is_dirty()
            || self
                .keys
                .iter()
                .any(|(db, k, was_expired)| !was_expired && self.store.is_expired(*db, k))
    }
}

impl Drop for WatchState {
    fn drop(&mut self) {
        for (db, key, _) in &self.keys {
            self.store.unwatch(*db, key, &self.flag);
        }
    }
}
