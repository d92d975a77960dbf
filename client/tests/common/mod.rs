//! Shared helpers: find binaries, pick free ports, run real redis-server processes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Full path of `name` in PATH (or /usr/sbin, where Debian puts nutcracker).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Returns the binary, or, when it is missing: under CI (`CI` set) fails the test, since
/// `.ci/run` installs every tool the tests use; elsewhere prints a SKIPPED line (the test
/// then returns early).
pub fn require(name: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: `{name}` is not installed (apt-get install redis-server nutcracker)");
    }
    found
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A redis-server child process, killed on drop.
pub struct Redis {
    /// The process.
    pub child: Child,
    /// Its port.
    pub port: u16,
}

impl Redis {
    /// Starts redis-server on a free port with persistence off.
    pub fn start(bin: &PathBuf) -> Redis {
        Self::start_on(bin, free_port(), &[])
    }

    /// Starts redis-server on `port` with extra arguments.
    pub fn start_on(bin: &PathBuf, port: u16, extra: &[&str]) -> Redis {
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        assert!(
            wait_listening(port, Duration::from_secs(10)),
            "redis-server did not start on {port}"
        );
        Redis { child, port }
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

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
