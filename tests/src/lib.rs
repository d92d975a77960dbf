//! Harness for the end-to-end tests: start the real `shardcache` binary (and, for differential
//! tests, a real `redis-server`) on ephemeral loopback ports, and talk to them with real clients
//! (`redis-cli`, `nc`) or raw sockets.
//!
//! The binary is found at `$SHARDCACHE_BIN`, else `target/debug/shardcache` of this workspace
//! (`cargo test --workspace` builds it, because `shardcache-server` has integration tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `shardcache` binary under test: `SHARDCACHE_BIN`, else the debug binary of this tree,
/// brought up to date once per test process (`cargo build -p shardcache-server`: a no-op when
/// `cargo test --workspace` has just built it, and what keeps `cargo test -p shardcache-tests`
/// from running a stale binary).
pub fn shardcache_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHARDCACHE_BIN") {
        return PathBuf::from(p);
    }
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "shardcache-server",
                "--bin",
                "shardcache",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "building the shardcache binary failed: {status:?}"
        );
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/shardcache");
    assert!(
        p.exists(),
        "{} not found: run `cargo test --workspace` (or `cargo build -p shardcache-server`), or set SHARDCACHE_BIN",
        p.display()
    );
    p
}

/// Whether an external program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Skips the calling test (returns from it) with a message when `program` is missing, unless
/// `CI` is set, where a missing tool is a failure: `.ci/run` installs everything.
#[macro_export]
macro_rules! require {
    ($program:expr) => {
        if !$crate::have($program) {
            $crate::skip(&format!("{} is not installed", $program));
            return;
        }
    };
}

/// Records that the calling test is about to return without testing what it is for, because
/// something it needs is missing: under `CI` (where `.ci/run` installs everything) that is a
/// failure, so this panics; elsewhere it prints `SKIPPED: <test>: <reason>` and, when
/// `SHARDCACHE_SKIP_LOG` names a file, appends that line to it, which is how `.ci/run` counts
/// skips (libtest only knows passed, failed and ignored, and captures a passing test's output).
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {reason}, which is required in CI (.ci/run installs it)"
    );
    let line = format!("SKIPPED: {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("SHARDCACHE_SKIP_LOG") {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
    }
}

/// Calls `cond` every 10 ms until it is true; panics naming `what` after `timeout`. For tests
/// that wait for the server to reach a state (never for time to pass).
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something at `addr` answers `PING` with a RESP reply (`+PONG`, or an error such as
/// `-NOAUTH` or `-DENIED`: the server is up either way).
pub fn answers_ping(addr: std::net::SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while reply_len(&got).is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    matches!(got[0], b'+' | b'-')
}

/// Whether process `pid` holds the socket listening on TCP `port` (from `/proc/net/tcp{,6}`
/// and the process's file descriptors); `None` where `/proc` cannot tell.
pub fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let want = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, st (0A = LISTEN) field 3, inode field 9.
            if f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    if inodes.is_empty() {
        return None;
    }
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|l| inodes.iter().any(|i| l.to_string_lossy() == *i))
            .unwrap_or(false)
    }))
}

/// Sends one command on `c` and returns its raw reply.
pub fn command(c: &mut TcpStream, words: &[&str]) -> Vec<u8> {
    roundtrip(c, &resp_str(words), 1).remove(0)
}

/// The value of `field` in an `INFO` text (`field:value` lines).
pub fn info_value<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// A numeric field of `INFO section`, read on `c`; `None` when absent or not a number.
pub fn info_field(c: &mut TcpStream, section: &str, field: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(&command(c, &["INFO", section])).into_owned();
    info_value(&text, field).and_then(|v| v.parse().ok())
}

/// A free loopback TCP port (bound then released: good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Worker threads of a test server that does not choose (`--threads`).
pub const DEFAULT_TEST_THREADS: &str = "2";

/// A running `shardcache` process; killed on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    metrics_port: Option<u16>,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Server {
    /// Starts the server on a free port with `extra` options and waits until it answers
    /// `PING`. The metrics endpoint is off unless `extra` sets `--metrics-addr` or `--port`
    /// (a test that chooses the port gets the operator's default, port + 3000); the server
    /// runs [`DEFAULT_TEST_THREADS`] worker threads unless `extra` sets `--threads`.
    pub fn start(extra: &[&str]) -> Server {
        Self::try_start(extra).unwrap_or_else(|e| panic!("shardcache did not start: {e}"))
    }

    /// Like [`Server::start`], with the metrics endpoint on a free port.
    pub fn start_with_metrics(extra: &[&str]) -> Server {
        let mport = free_port();
        let maddr = format!("127.0.0.1:{mport}");
        let mut args = vec!["--metrics-addr", maddr.as_str()];
        args.extend_from_slice(extra);
        let mut s = Self::start(&args);
        s.metrics_port = Some(mport);
        s
    }

    /// Starts the server; `Err` with its output when it exits or does not become ready.
    ///
    /// The harness picks the port (unless `extra` sets `--port`) and the server is ready when
    /// it answers `PING` on it (any RESP reply: `+PONG`, `-NOAUTH`, `-DENIED`), not when a log
    /// line says so. That probe is one connection and one command, which the server counts;
    /// a test that needs exact connection counts waits with [`Server::wait_connected_clients`].
    /// A port another process took between the choice and the bind is chosen again.
    pub fn try_start(extra: &[&str]) -> Result<Server, String> {
        let explicit = extra.contains(&"--port");
        let mut last = String::new();
        for _ in 0..3 {
            let port = if explicit { 0 } else { free_port() };
            match Self::launch(port, extra) {
                Ok(server) => return Ok(server),
                Err(e) if !explicit && e.contains("cannot listen on") && e.contains("in use") => {
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// One attempt of [`Server::try_start`]: `--port port` unless `port` is 0 (then `extra`
    /// has it).
    fn launch(port: u16, extra: &[&str]) -> Result<Server, String> {
        let mut args: Vec<String> = vec!["--log-level".into(), "info".into()];
        if port != 0 {
            args.extend(["--port".into(), port.to_string()]);
        }
        // The metrics endpoint is off unless asked for; a test that chooses the port gets the
        // default an operator gets (port + 3000) unless it chooses that too.
        if port != 0 && !extra.contains(&"--metrics-addr") {
            args.extend(["--metrics-addr".into(), String::new()]);
        }
        // Every test runs the server with several worker threads (connections spread over
        // them), whatever the machine's CPU count, unless it asks for a thread count.
        if !extra.contains(&"--threads") {
            args.extend(["--threads".into(), DEFAULT_TEST_THREADS.into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let value_of = |name: &str| {
            extra
                .iter()
                .position(|a| *a == name)
                .and_then(|i| extra.get(i + 1))
                .copied()
        };
        let port = match value_of("--port") {
            Some(p) => p.parse().map_err(|_| format!("--port {p} is not a port"))?,
            None => port,
        };
        // Where to knock: the bound address, loopback for a wildcard one.
        let ip: std::net::IpAddr = match value_of("--bind").map(str::parse::<std::net::IpAddr>) {
            Some(Ok(ip)) if !ip.is_unspecified() => ip,
            _ => std::net::Ipv4Addr::LOCALHOST.into(),
        };
        let mut child = Command::new(shardcache_bin())
            .args(&args)
            .env_remove("SHARDCACHE_PORT")
            .env_remove("SHARDCACHE_METRICS_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", shardcache_bin().display()))?;
        let (tx, rx) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut server = Server {
            child: Some(child),
            port,
            metrics_port: None,
            log: rx,
            lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                let lines = server.log();
                return Err(format!("exited with {status}: {}", lines.join("\n")));
            }
            // Ours, not another process's that took the port meanwhile: the listening
            // socket is one of the child's (where /proc says so).
            if answers_ping(std::net::SocketAddr::new(ip, port))
                && listens_on(server.pid(), port) != Some(false)
            {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready after 20 s: {}", server.log().join("\n")))
    }

    /// Waits until `INFO clients` read on `c` says `connected_clients:n` (counting `c`): the
    /// connections a test closed (and the harness's readiness probe) are gone from the count.
    pub fn wait_connected_clients(&self, c: &mut TcpStream, n: u64) {
        wait_until(
            &format!("connected_clients:{n}"),
            Duration::from_secs(20),
            || info_field(c, "clients", "connected_clients") == Some(n),
        );
    }

    /// The Redis-protocol port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics port, when started with [`Server::start_with_metrics`].
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port.expect("started without metrics")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// A new raw connection.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to shardcache");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(libc_sigterm());
        self.wait(timeout)
    }

    /// Sends a signal by number.
    pub fn signal(&self, sig: i32) {
        let pid = self.pid();
        let _ = Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status();
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Every log line the server wrote so far. Once the process has exited, waits (briefly)
    /// for the pipes to be read to their end, so the last lines are not missed.
    pub fn log(&mut self) -> Vec<String> {
        let exited = matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))));
        if exited {
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(l) = self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                self.lines.push(l);
            }
        }
        self.drain_log();
        self.lines.clone()
    }

    fn drain_log(&mut self) {
        while let Ok(l) = self.log.try_recv() {
            self.lines.push(l);
        }
    }

    /// Resident set size of the server process, in bytes (from /proc).
    pub fn rss_bytes(&self) -> u64 {
        rss_of(self.pid())
    }
}

/// What the server has read from its clients (`total_net_input_bytes`), to wait until bytes a
/// test wrote have reached it: the condition tests wait on instead of sleeping. The probe's own
/// `INFO` requests are counted too, and subtracted.
pub struct InputMark {
    probe: TcpStream,
    expect: u64,
}

impl InputMark {
    const INFO: &'static [u8] = b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n";

    fn read(&mut self) -> u64 {
        self.expect += Self::INFO.len() as u64;
        let r = roundtrip(&mut self.probe, Self::INFO, 1).remove(0);
        info_value(&String::from_utf8_lossy(&r), "total_net_input_bytes")
            .and_then(|v| v.parse().ok())
            .expect("total_net_input_bytes in INFO stats")
    }

    /// Waits until the server has read `n` more bytes (from any client) since the mark or the
    /// last wait.
    pub fn wait_read(&mut self, n: u64) {
        self.expect += n;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.read();
            if got >= self.expect {
                self.expect = got;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server read {got} of {} bytes",
                self.expect
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Server {
    /// A mark from which [`InputMark::wait_read`] counts.
    pub fn input_mark(&self) -> InputMark {
        let mut m = InputMark {
            probe: self.connect(),
            expect: 0,
        };
        m.expect = m.read();
        m
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// RSS of a process from `/proc/PID/status`, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn libc_sigterm() -> i32 {
    15
}

/// A running `redis-server` (the reference implementation); killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port, no persistence, and waits for PING.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_on(free_port(), extra)
    }

    /// Starts `redis-server` on `port` (e.g. again on the port of one that stopped).
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if answers_ping(([127, 0, 0, 1], port).into()) {
                return RedisServer { child, port };
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on {port}");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `redis-cli -p PORT args...` and returns its stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = redis_cli_output(port, args, None);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `redis-cli -p PORT args...` with optional stdin, returning the whole output.
pub fn redis_cli_output(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("-p").arg(port.to_string()).args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run redis-cli");
    if let (Some(input), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(input).expect("write redis-cli stdin");
    }
    child.wait_with_output().expect("redis-cli output")
}

/// Sends `input` to `nc 127.0.0.1 PORT` (closing its stdin after `linger`) and returns what
/// came back.
pub fn nc(port: u16, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("nc")
        .args(["-q", "1", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nc");
    if let Some(mut si) = child.stdin.take() {
        si.write_all(input).expect("write to nc");
    }
    child.wait_with_output().expect("nc output").stdout
}

/// Writes `input` on a fresh connection, half-closes, and reads until the server closes or
/// `timeout` passes. Returns the bytes and whether the server closed the connection.
pub fn exchange(port: u16, input: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(timeout)).ok();
    s.write_all(input).expect("write");
    half_close(&s);
    read_until_close(&mut s, timeout)
}

/// Like [`exchange`] without the half-close: the server must close by itself.
pub fn exchange_keep_open(port: u16, input: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(input).expect("write");
    read_until_close(&mut s, timeout)
}

fn read_until_close(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// Sends requests on one connection and reads exactly `expect_replies` RESP replies (raw bytes
/// of each). Panics on timeout.
pub fn roundtrip(stream: &mut TcpStream, input: &[u8], expect_replies: usize) -> Vec<Vec<u8>> {
    stream.write_all(input).expect("write");
    read_replies(stream, expect_replies)
}

/// Reads `n` complete RESP replies from `stream`, returning each reply's raw bytes.
pub fn read_replies(stream: &mut TcpStream, n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
    while out.len() < n {
        while out.len() < n {
            match reply_len(&buf) {
                Some(len) => {
                    out.push(buf.drain(..len).collect());
                }
                None => break,
            }
        }
        if out.len() == n {
            break;
        }
        let r = stream.read(&mut chunk).expect("read reply");
        assert!(
            r > 0,
            "connection closed after {} of {n} replies",
            out.len()
        );
        buf.extend_from_slice(&chunk[..r]);
    }
    out
}

/// Length of the first complete RESP2/RESP3 value in `b`, if complete.
pub fn reply_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let head = &b[1..line_end];
    let after = line_end + 2;
    let num = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    match *b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n = num()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num()?;
            if n < 0 {
                return Some(after);
            }
            let items = if matches!(b[0], b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut pos = after;
            for _ in 0..items {
                pos += reply_len(&b[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// Encodes a request as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Encodes a request given as string words.
pub fn resp_str(words: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    resp(&args)
}

/// Closes the write side of a stream.
pub fn half_close(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

// ------------------------------------------------------------- scripted differential tests

/// One step of a script: which connection (0 or 1) sends which command.
type Step<'a> = (usize, &'a str);

/// Runs `steps` against a server (two connections, `HELLO 3` first on both if `resp3`) and
/// returns every reply, raw.
fn play_script(port: u16, resp3: bool, steps: &[Step<'_>]) -> Vec<Vec<u8>> {
    let mut conns: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    if resp3 {
        for c in &mut conns {
            c.write_all(&resp(&[b"HELLO", b"3"])).unwrap();
            read_replies(c, 1);
        }
    }
    let mut out = Vec::new();
    for (who, line) in steps {
        if let Some(ms) = line.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let c = &mut conns[*who];
        c.write_all(&resp(&args)).unwrap();
        out.push(read_replies(c, 1).remove(0));
    }
    out
}

/// The script as lines: `B:` sends on the second connection, `sleep N` waits N ms.
fn script_steps(text: &str) -> Vec<Step<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("B:") {
            Some(rest) => (1, rest.trim()),
            None => (0, l),
        })
        .collect()
}

/// Plays a script against a fresh `redis-server` and a fresh shardcache (16 shards), in
/// RESP2 and then in RESP3 (`HELLO 3`), and panics listing every reply that differs. One
/// command per line; `B:` sends it on a second connection; `sleep N` waits N ms (for
/// expiry).
pub fn compare_script(name: &str, text: &str) {
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&["--shards", "16"]);
    let steps = script_steps(text);
    for resp3 in [false, true] {
        redis_flush(redis.port());
        redis_flush(ours.port());
        let theirs = play_script(redis.port(), resp3, &steps);
        let mine = play_script(ours.port(), resp3, &steps);
        let replies = steps.iter().filter(|(_, l)| !l.starts_with("sleep "));
        let mut diffs = Vec::new();
        for ((step, a), b) in replies.zip(&mine).zip(&theirs) {
            if a != b {
                diffs.push(format!(
                    "{step:?}: shardcache {:?} redis {:?}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                ));
            }
        }
        assert!(
            diffs.is_empty(),
            "{name} (RESP{}): {} differences:\n{}",
            if resp3 { 3 } else { 2 },
            diffs.len(),
            diffs.join("\n")
        );
    }
}

fn redis_flush(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&resp(&[b"FLUSHALL"])).unwrap();
    read_replies(&mut c, 1);
}

/// Plain HTTP GET on loopback; returns (status line, body).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read http");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_on_finds_this_process_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(listens_on(std::process::id(), port), Some(true));
        }
        drop(l);
        assert_ne!(listens_on(std::process::id(), port), Some(true));
    }

    #[test]
    fn reply_len_parses_nested_values() {
        assert_eq!(reply_len(b"+OK\r\n"), Some(5));
        assert_eq!(reply_len(b"$3\r\nabc\r\n+"), Some(9));
        assert_eq!(reply_len(b"$3\r\nab"), None);
        assert_eq!(reply_len(b"*2\r\n:1\r\n$-1\r\n"), Some(13));
        assert_eq!(reply_len(b"%1\r\n+a\r\n:1\r\n"), Some(12));
    }
}
