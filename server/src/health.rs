//! `shardcache health`: the container's HEALTHCHECK, since the image has no shell or redis-cli.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `host:port`, optionally authenticates, sends PING, and succeeds on `+PONG`.
///
/// # Errors
/// A message saying what failed: connect, timeout, or an unexpected reply.
pub async fn check(
    host: &str,
    port: u16,
    password: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let probe = async {
        let mut s = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let mut req = Vec::new();
        if let Some(pw) = password {
            req.extend_from_slice(
                format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len()).as_bytes(),
            );
        }
        req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        s.write_all(&req).await.map_err(|e| e.to_string())?;
        let want: &[u8] = if password.is_some() {
            b"+OK\r\n+PONG\r\n"
        } else {
            b"+PONG\r\n"
        };
        let mut got = Vec::with_capacity(64);
        let mut buf = [0u8; 256];
        while got.len() < want.len() {
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.starts_with(want) {
            Ok(())
        } else {
            Err(format!(
                "unexpected reply: {:?}",
                String::from_utf8_lossy(&got).trim_end()
            ))
        }
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(r) => r,
        Err(_) => Err(format!("no reply from {host}:{port} within {timeout:?}")),
    }
}
