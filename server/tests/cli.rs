//! The binary's command line: validation fails fast with one clear line and a non-zero exit.
//! (These tests also make `cargo test --workspace` build the `shardcache` binary that the
//! end-to-end crate in `tests/` drives.)

use std::process::Command;

fn shardcache(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shardcache"))
        .args(args)
        .env_remove("SHARDCACHE_PORT")
        .env_remove("SHARDCACHE_SHARDS")
        .output()
        .expect("run shardcache")
}

#[test]
fn non_power_of_two_shards_is_refused() {
    for bad in ["3", "0", "131072"] {
        let out = shardcache(&["--shards", bad, "--port", "0", "--metrics-addr", ""]);
        assert_eq!(out.status.code(), Some(2), "--shards {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("invalid value for --shards") && err.contains("power of two"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
}

#[test]
fn invalid_addresses_are_refused() {
    let out = shardcache(&["--bind", "not-an-ip", "--metrics-addr", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind"));
}

#[test]
fn help_documents_every_option_with_its_default() {
    let out = shardcache(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--bind",
        "--port",
        "--shards",
        "--maxclients",
        "--proto-max-bulk-len",
        "--shutdown-timeout",
        "--log-level",
        "--log-format",
        "--metrics-addr",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
    assert!(help.contains("SHARDCACHE_PORT"), "env vars documented");
    assert!(help.contains("[default: 6379]"));
}

#[test]
fn health_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = shardcache(&["health", "--port", &port.to_string(), "--timeout-ms", "500"]);
    assert_eq!(out.status.code(), Some(1));
}
