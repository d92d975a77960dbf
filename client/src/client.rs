//! [`Client`]: one connection, typed commands, pipelines and a raw fast path.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shardcache_protocol::{write_request, Frame};
use tokio::net::TcpStream;

use crate::connection::Connection;
use crate::error::{Error, Result};

/// How to reach a server and what to do once connected.
///
/// Build one with [`ClientConfig::new`] and adjust the public fields.
///
/// ```no_run
/// # async fn demo() -> shardcache_client::Result<()> {
/// use std::time::Duration;
/// use shardcache_client::{Client, ClientConfig};
/// let mut config = ClientConfig::new("127.0.0.1:6379");
/// config.request_timeout = Some(Duration::from_millis(200));
/// config.resp3 = true;
/// let mut client = Client::connect_with(config).await?;
/// client.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` of the server (anything `TcpStream::connect` accepts).
    pub addr: String,
    /// Upper bound for TCP connect plus the handshake (HELLO/AUTH/SELECT).
    pub connect_timeout: Duration,
    /// Upper bound for one request or pipeline (write plus all replies);
    /// `None` waits forever. A request that times out poisons the connection.
    pub request_timeout: Option<Duration>,
    /// Send `HELLO 3` on connect and speak RESP3 (maps, doubles, pushes...).
    pub resp3: bool,
    /// Password for `AUTH` (user `default`), if the server requires one.
    pub password: Option<String>,
    /// Database to `SELECT` after connecting; 0 sends nothing.
    pub db: usize,
}

impl ClientConfig {
    /// A RESP2 config for `addr` with a 5 s connect timeout and no request timeout.
    pub fn new(addr: impl Into<String>) -> Self {
        ClientConfig {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            resp3: false,
            password: None,
            db: 0,
        }
    }
}

/// Options for [`Client::set_with`]: expiry and NX/XX conditions.
///
/// ```
/// use std::time::Duration;
/// use shardcache_client::SetOptions;
/// let opts = SetOptions::new().expire(Duration::from_secs(60)).nx();
/// assert_eq!(opts.args(), vec![b"PX".to_vec(), b"60000".to_vec(), b"NX".to_vec()]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Expiry, sent as `PX` milliseconds.
    expire: Option<Duration>,
    /// `Some(true)` = NX (only if absent), `Some(false)` = XX (only if present).
    only_if_absent: Option<bool>,
}

impl SetOptions {
    /// No expiry, unconditional.
    pub fn new() -> Self {
        Self::default()
    }
    /// Expire the key after `ttl` (sent as `PX`, millisecond precision).
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.expire = Some(ttl);
        self
    }
    /// Only set when the key does not exist (`NX`); replaces an earlier `xx()`.
    pub fn nx(mut self) -> Self {
        self.only_if_absent = Some(true);
        self
    }
    /// Only set when the key already exists (`XX`); replaces an earlier `nx()`.
    pub fn xx(mut self) -> Self {
        self.only_if_absent = Some(false);
        self
    }
    /// The extra `SET` arguments these options stand for.
    pub fn args(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(ttl) = self.expire {
            out.push(b"PX".to_vec());
            out.push(ttl.as_millis().max(1).to_string().into_bytes());
        }
        match self.only_if_absent {
            Some(true) => out.push(b"NX".to_vec()),
            Some(false) => out.push(b"XX".to_vec()),
            None => {}
        }
        out
    }
}

/// The answer of [`Client::ttl`], decoded from Redis's -2 / -1 / seconds convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (`-2`).
    Missing,
    /// The key exists and has no expiry (`-1`).
    Persistent,
    /// The key expires in this many seconds.
    Expires(Duration),
}

/// An async connection to one RESP server.
///
/// Methods take `&mut self`: one request at a time per connection, which keeps
/// replies trivially in order. For concurrency use several clients or a
/// [`Pool`](crate::Pool); for throughput use [`Client::pipeline`].
///
/// After an I/O, protocol or timeout error the client is *broken*
/// ([`Client::is_broken`]) and every later call returns [`Error::Closed`];
/// call [`Client::reconnect`] or let a [`Pool`](crate::Pool) replace it.
///
/// ```no_run
/// # async fn demo() -> shardcache_client::Result<()> {
/// use shardcache_client::Client;
/// let mut client = Client::connect("127.0.0.1:6379").await?;
/// client.set("greeting", "hello").await?;
/// assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    /// The live connection; `None` once broken.
    conn: Option<Connection>,
    /// Kept for [`Client::reconnect`].
    config: ClientConfig,
    /// Reused encode buffer, so steady-state requests do not allocate for it.
    wbuf: BytesMut,
}

impl Client {
    /// Connects with [`ClientConfig::new`] defaults (RESP2, no auth, db 0).
    ///
    /// # Errors
    /// [`Error::Io`] if the server cannot be reached, [`Error::Timeout`] after 5 s.
    pub async fn connect(addr: impl Into<String>) -> Result<Client> {
        Self::connect_with(ClientConfig::new(addr)).await
    }

    /// Connects and performs the handshake the config asks for:
    /// `HELLO 3 [AUTH default pw]` when `resp3`, else `AUTH pw` when a password
    /// is set, then `SELECT db` when `db != 0`.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Timeout`] when connecting fails,
    /// [`Error::Server`] when the server rejects the handshake (bad password, no
    /// RESP3 support, bad db).
    pub async fn connect_with(config: ClientConfig) -> Result<Client> {
        let conn = tokio::time::timeout(config.connect_timeout, Self::open(&config))
            .await
            .map_err(|_| Error::Timeout)??;
        Ok(Client {
            conn: Some(conn),
            config,
            wbuf: BytesMut::with_capacity(4096),
        })
    }

    /// Opens the socket and runs the handshake.
    async fn open(config: &ClientConfig) -> Result<Connection> {
        let stream = TcpStream::connect(&config.addr).await?;
        let mut conn = Connection::new(stream);
        let mut buf = BytesMut::new();
        let mut expected = 0;
        if config.resp3 {
            match &config.password {
                Some(pw) => {
                    write_request(&mut buf, &["HELLO", "3", "AUTH", "default", pw.as_str()])
                }
                None => write_request(&mut buf, &["HELLO", "3"]),
            }
            expected += 1;
        } else if let Some(pw) = &config.password {
            write_request(&mut buf, &["AUTH", pw.as_str()]);
            expected += 1;
        }
        if config.db != 0 {
            write_request(&mut buf, &["SELECT".to_string(), config.db.to_string()]);
            expected += 1;
        }
        if expected > 0 {
            conn.write_all(&buf).await?;
            for _ in 0..expected {
                if let Frame::Error(e) = conn.read_frame().await? {
                    return Err(Error::Server(String::from_utf8_lossy(&e).into_owned()));
                }
            }
        }
        Ok(conn)
    }

    /// Drops the current connection (if any) and connects again with the same config.
    ///
    /// # Errors
    /// As [`Client::connect_with`].
    pub async fn reconnect(&mut self) -> Result<()> {
        self.conn = None;
        let conn = tokio::time::timeout(self.config.connect_timeout, Self::open(&self.config))
            .await
            .map_err(|_| Error::Timeout)??;
        self.conn = Some(conn);
        Ok(())
    }

    /// True once an I/O, protocol or timeout error has made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.conn.is_none()
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Writes the encoded `wbuf` and reads `n` replies, under the request timeout.
    /// Any connection-level failure breaks the client.
    async fn roundtrip(&mut self, n: usize) -> Result<Vec<Frame>> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Closed);
        };
        let wbuf = &self.wbuf;
        let work = async move {
            conn.write_all(wbuf).await?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(conn.read_frame().await?);
            }
            Ok(out)
        };
        let res = match self.config.request_timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .unwrap_or(Err(Error::Timeout)),
            None => work.await,
        };
        self.wbuf.clear();
        if let Err(e) = &res {
            if e.is_connection_error() {
                self.conn = None;
            }
        }
        res
    }

    /// Sends one command (arguments as binary-safe strings) and returns its reply.
    ///
    /// # Errors
    /// An error reply becomes [`Error::Server`]; connection failures become
    /// [`Error::Io`], [`Error::Protocol`], [`Error::Timeout`] or [`Error::Closed`].
    ///
    /// ```no_run
    /// # async fn demo(client: &mut shardcache_client::Client) -> shardcache_client::Result<()> {
    /// let reply = client.cmd(&["CONFIG", "GET", "maxmemory"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame> {
        self.wbuf.clear();
        write_request(&mut self.wbuf, args);
        let mut frames = self.roundtrip(1).await?;
        match frames.pop() {
            Some(Frame::Error(e)) => Err(Error::Server(String::from_utf8_lossy(&e).into_owned())),
            Some(f) => Ok(f),
            None => Err(Error::Closed),
        }
    }

    /// Starts a pipeline on this connection: queue commands with
    /// [`Pipeline::cmd`], send them all with one write by [`Pipeline::execute`].
    ///
    /// ```no_run
    /// # async fn demo(client: &mut shardcache_client::Client) -> shardcache_client::Result<()> {
    /// let replies = client.pipeline().cmd(&["SET", "a", "1"]).cmd(&["INCR", "a"]).execute().await?;
    /// assert_eq!(replies.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn pipeline(&mut self) -> Pipeline<'_> {
        Pipeline {
            client: self,
            buf: BytesMut::new(),
            count: 0,
        }
    }

    /// Raw fast path: writes already RESP-encoded requests as they are.
    /// Pair with [`Client::read_frames`]. Used by the load generator so that
    /// encoding cost stays out of the measurement.
    ///
    /// Not covered by `request_timeout`.
    ///
    /// # Errors
    /// Connection errors, which break the client.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Closed);
        };
        let res = conn.write_all(bytes).await;
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    /// Raw fast path: reads exactly `n` replies, error replies included as
    /// [`Frame::Error`] (not turned into `Err`).
    ///
    /// # Errors
    /// Connection errors, which break the client.
    pub async fn read_frames(&mut self, n: usize) -> Result<Vec<Frame>> {
        let mut out = Vec::with_capacity(n);
        self.read_frames_with(n, |f| out.push(f)).await?;
        Ok(out)
    }

    /// Raw fast path without allocation: reads `n` replies and hands each to
    /// `on_frame` as soon as it is decoded (so per-reply timestamps are exact).
    ///
    /// # Errors
    /// Connection errors, which break the client.
    pub async fn read_frames_with(
        &mut self,
        n: usize,
        mut on_frame: impl FnMut(Frame),
    ) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Closed);
        };
        for _ in 0..n {
            match conn.read_frame().await {
                Ok(f) => on_frame(f),
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `PING`; succeeds on `PONG`.
    ///
    /// # Errors
    /// Connection errors, or [`Error::UnexpectedReply`] for anything but PONG.
    pub async fn ping(&mut self) -> Result<()> {
        match self.cmd(&["PING"]).await? {
            Frame::Simple(s) | Frame::Bulk(s) if s.eq_ignore_ascii_case(b"PONG") => Ok(()),
            other => Err(unexpected("PONG", &other)),
        }
    }

    /// `GET key`: the value, or `None` when the key does not exist.
    ///
    /// # Errors
    /// [`Error::Server`] (e.g. WRONGTYPE) and connection errors.
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let reply = self.cmd(&[b"GET", key.as_ref()]).await?;
        opt_bulk(reply)
    }

    /// `SET key value` with no options.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_with(key, value, SetOptions::new())
            .await
            .map(|_| ())
    }

    /// `SET key value [PX ms] [NX|XX]`. Returns `false` when an NX/XX condition
    /// kept the value from being set.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn set_with(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: SetOptions,
    ) -> Result<bool> {
        let extra = opts.args();
        let mut args: Vec<&[u8]> = vec![b"SET", key.as_ref(), value.as_ref()];
        args.extend(extra.iter().map(|a| a.as_slice()));
        match self.cmd(&args).await? {
            Frame::Simple(_) => Ok(true),
            Frame::Null => Ok(false),
            other => Err(unexpected("OK or nil", &other)),
        }
    }

    /// `DEL key...`: how many keys were removed.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn del<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<u64> {
        let reply = self.cmd(&with_command(b"DEL", keys)).await?;
        non_negative(reply)
    }

    /// `EXISTS key...`: how many of the keys exist (repeats count repeatedly).
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn exists<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<u64> {
        let reply = self.cmd(&with_command(b"EXISTS", keys)).await?;
        non_negative(reply)
    }

    /// `INCR key`: the new value.
    ///
    /// # Errors
    /// [`Error::Server`] when the value is not an integer, and connection errors.
    pub async fn incr(&mut self, key: impl AsRef<[u8]>) -> Result<i64> {
        integer(self.cmd(&[b"INCR", key.as_ref()]).await?)
    }

    /// `INCRBY key delta`: the new value.
    ///
    /// # Errors
    /// [`Error::Server`] when the value is not an integer or overflows, and
    /// connection errors.
    pub async fn incr_by(&mut self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
        let delta = delta.to_string();
        integer(
            self.cmd(&[b"INCRBY", key.as_ref(), delta.as_bytes()])
                .await?,
        )
    }

    /// `MGET key...`: one entry per key, in order, `None` for missing keys.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn mget<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        match self.cmd(&with_command(b"MGET", keys)).await? {
            Frame::Array(items) => items.into_iter().map(opt_bulk).collect(),
            other => Err(unexpected("array", &other)),
        }
    }

    /// `MSET key value [key value ...]`.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn mset<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, pairs: &[(K, V)]) -> Result<()> {
        let mut args: Vec<&[u8]> = Vec::with_capacity(1 + 2 * pairs.len());
        args.push(b"MSET");
        for (k, v) in pairs {
            args.push(k.as_ref());
            args.push(v.as_ref());
        }
        self.cmd(&args).await.map(|_| ())
    }

    /// `EXPIRE key seconds` (rounded down, at least 1 s): `false` when the key
    /// does not exist.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn expire(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let secs = ttl.as_secs().max(1).to_string();
        Ok(integer(
            self.cmd(&[b"EXPIRE", key.as_ref(), secs.as_bytes()])
                .await?,
        )? == 1)
    }

    /// `TTL key`, decoded into [`Ttl`].
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn ttl(&mut self, key: impl AsRef<[u8]>) -> Result<Ttl> {
        Ok(match integer(self.cmd(&[b"TTL", key.as_ref()]).await?)? {
            -2 => Ttl::Missing,
            n if n < 0 => Ttl::Persistent,
            n => Ttl::Expires(Duration::from_secs(n.unsigned_abs())),
        })
    }

    /// `DBSIZE`: number of keys in the selected database.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn dbsize(&mut self) -> Result<u64> {
        non_negative(self.cmd(&["DBSIZE"]).await?)
    }

    /// `FLUSHDB`: removes every key of the selected database.
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn flushdb(&mut self) -> Result<()> {
        self.cmd(&["FLUSHDB"]).await.map(|_| ())
    }

    /// `INFO [section]`: the raw text (`# Section` headers, `field:value` lines).
    ///
    /// # Errors
    /// [`Error::Server`] and connection errors.
    pub async fn info(&mut self, section: Option<&str>) -> Result<String> {
        let reply = match section {
            Some(s) => self.cmd(&["INFO", s]).await?,
            None => self.cmd(&["INFO"]).await?,
        };
        match reply {
            Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim { text: b, .. } => {
                Ok(String::from_utf8_lossy(&b).into_owned())
            }
            other => Err(unexpected("bulk string", &other)),
        }
    }

    /// `HELLO protover`: switches protocol version and returns the server's
    /// description (a map in RESP3, a flat array in RESP2).
    ///
    /// # Errors
    /// [`Error::Server`] (`-NOPROTO`) when the version is not supported.
    pub async fn hello(&mut self, protover: u8) -> Result<Frame> {
        let v = protover.to_string();
        self.cmd(&["HELLO", v.as_str()]).await
    }
}

/// A batch of commands sent with one write; see [`Client::pipeline`].
#[derive(Debug)]
pub struct Pipeline<'a> {
    /// The connection the batch goes out on.
    client: &'a mut Client,
    /// All queued requests, encoded back to back.
    buf: BytesMut,
    /// How many replies to expect.
    count: usize,
}

impl Pipeline<'_> {
    /// Queues one command.
    pub fn cmd<A: AsRef<[u8]>>(mut self, args: &[A]) -> Self {
        write_request(&mut self.buf, args);
        self.count += 1;
        self
    }

    /// Queues one command through a mutable reference (for loops).
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> &mut Self {
        write_request(&mut self.buf, args);
        self.count += 1;
        self
    }

    /// Number of queued commands.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends every queued command in one write and returns the replies in order.
    /// A command that failed on the server appears as [`Frame::Error`] in its
    /// slot, so one bad command does not hide the others' replies.
    ///
    /// # Errors
    /// Connection errors only (they break the client).
    pub async fn execute(self) -> Result<Vec<Frame>> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let Pipeline { client, buf, count } = self;
        client.wbuf.clear();
        client.wbuf.extend_from_slice(&buf);
        client.roundtrip(count).await
    }
}

/// `[cmd, keys...]` as borrowed slices.
fn with_command<'k, K: AsRef<[u8]>>(cmd: &'static [u8], keys: &'k [K]) -> Vec<&'k [u8]> {
    let mut args: Vec<&[u8]> = Vec::with_capacity(1 + keys.len());
    args.push(cmd);
    args.extend(keys.iter().map(|k| k.as_ref()));
    args
}

/// Describes a reply of the wrong shape.
pub(crate) fn unexpected(wanted: &str, got: &Frame) -> Error {
    let mut s = format!("expected {wanted}, got {got:?}");
    s.truncate(200);
    Error::UnexpectedReply(s)
}

/// Bulk string or nil.
pub(crate) fn opt_bulk(f: Frame) -> Result<Option<Bytes>> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(Some(b)),
        Frame::Null => Ok(None),
        Frame::Error(e) => Err(Error::Server(String::from_utf8_lossy(&e).into_owned())),
        other => Err(unexpected("bulk string or nil", &other)),
    }
}

/// Integer reply.
pub(crate) fn integer(f: Frame) -> Result<i64> {
    match f {
        Frame::Integer(i) => Ok(i),
        other => Err(unexpected("integer", &other)),
    }
}

/// Integer reply that must not be negative.
pub(crate) fn non_negative(f: Frame) -> Result<u64> {
    let i = integer(f)?;
    u64::try_from(i).map_err(|_| Error::UnexpectedReply(format!("negative count {i}")))
}
