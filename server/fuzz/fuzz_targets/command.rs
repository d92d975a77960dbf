//! Command parsing and argument validation: decoded requests run through `command::execute`
//! against an in-memory server state. It must never panic, and every request must produce
//! exactly one complete reply (checked with the protocol crate's `FrameDecoder`).
//!
//! Input layout: byte 0 picks the client (bit 0: a password is set and the client has not
//! authenticated; bit 1: RESP3), the rest is a request stream (RESP or inline).

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shardcache_config::Config;
use shardcache_protocol::{FrameDecoder, Limits, RequestDecoder, Version};
use shardcache_server::command::{self, Flow};
use shardcache_server::client::ClientState;
use shardcache_server::Shared;
use tokio_util::codec::Decoder;

/// One shard and a memory limit: cheap to build per input, and inputs cannot grow it much.
fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        use clap::Parser;
        Config::parse_from([
            "shardcache",
            "--shards",
            "1",
            "--maxmemory",
            "16mb",
            "--log-level",
            "off",
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let Ok(shared) = Shared::new(config().clone(), 0) else {
        return;
    };
    if mode & 1 == 1 {
        shared.auth.set(Some(b"pw"));
    }
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut client = ClientState::new(1, peer, &shared.auth);
    if mode & 2 == 2 {
        client.version = Version::Resp3;
    }
    let limits = Limits {
        max_bulk_len: 1 << 20,
        max_inline_len: 4096,
        max_multibulk_len: 1024,
    };
    let mut decoder = RequestDecoder::new(limits);
    let mut input = BytesMut::from(stream);
    let mut out = BytesMut::new();
    while let Ok(Some(request)) = decoder.decode(&mut input) {
        out.clear();
        let flow = command::execute(
            &shared,
            shared.stats.worker(0),
            &mut client,
            &request,
            &mut out,
        );
        // SHUTDOWN answers nothing: the connection closes, as with Redis.
        if out.is_empty() && flow == Flow::Close {
            break;
        }
        // Exactly one complete reply per request.
        let mut frames = FrameDecoder::new(Limits {
            max_bulk_len: usize::MAX >> 1,
            max_inline_len: usize::MAX >> 1,
            max_multibulk_len: i32::MAX as usize,
        });
        let mut reply = out.clone();
        match frames.decode(&mut reply) {
            Ok(Some(_)) => assert!(
                reply.is_empty(),
                "more than one reply to {:?}: {:?}",
                request.args(),
                String::from_utf8_lossy(&out)
            ),
            other => panic!(
                "no complete reply to {:?}: {other:?} {:?}",
                request.args(),
                String::from_utf8_lossy(&out)
            ),
        }
        if flow == Flow::Close {
            break;
        }
    }
});
