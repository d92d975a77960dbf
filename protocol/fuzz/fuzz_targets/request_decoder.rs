//! Feeds arbitrary bytes to `RequestDecoder`, whole and split at a fuzzer-chosen point (and one
//! byte at a time). It must never panic, and every way of splitting must produce the same
//! requests and the same final error or leftover.
//!
//! Input layout: byte 0 picks the limits (bit 0: tiny limits to reach the "too big" paths),
//! bytes 1..3 the split point, the rest is the stream.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardcache_protocol::{Limits, RequestDecoder};
use tokio_util::codec::Decoder;

/// Everything observable about a decode: the requests, then the error text or leftover length.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    end: Result<usize, String>,
}

fn decode<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => {
                    assert!(!request.is_empty(), "empty requests are skipped");
                    requests.push(request.args().to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        requests,
                        end: Err(e.redis_message()),
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        end: Ok(buf.len()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (cut, input) = match rest {
        [a, b, input @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), input),
        _ => (0, rest),
    };
    let limits = if mode & 1 == 1 {
        Limits {
            max_bulk_len: 16,
            max_inline_len: 8,
            max_multibulk_len: 4,
        }
    } else {
        Limits::default()
    };
    let cut = cut % (input.len() + 1);
    let whole = decode(limits, [input]);
    let split = decode(limits, [&input[..cut], &input[cut..]]);
    assert_eq!(whole, split, "split at {cut}");
    if input.len() <= 512 {
        assert_eq!(whole, decode(limits, input.chunks(1)), "byte at a time");
    }
});
