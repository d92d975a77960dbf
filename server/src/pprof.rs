//! `/debug/pprof/mutex`: the lock blame as a pprof profile, so `go tool pprof` reads it as
//! it reads a Go service's mutex profile.
//!
//! The format is `perftools.profiles.Profile` (profile.proto), gzipped, with Go's sample
//! types for mutex profiles: `contentions/count` and `delay/nanoseconds`. Each sample is one
//! (holding command, shard, lock mode) with the waits charged to it; its "stack" is three
//! synthetic frames, leaf first as pprof stores them: the holding command, `shard N`, and
//! `read lock` or `write lock`. So `go tool pprof -top` lists the commands that made others
//! wait, `-traces` shows each one's shards and modes, and `-peek 'shard 3'` who held shard 3.
//! The encoder is the handful of protobuf wire-format rules the message needs.

use std::collections::HashMap;
use std::io::Write;

use shardcache_storage::blame::BlameSnapshot;

/// One sample: frames leaf first, then (contentions, delay in nanoseconds).
struct Sample {
    frames: [String; 3],
    contentions: i64,
    delay_ns: i64,
}

/// Builds the gzipped profile of `snap`'s blame; `name` gives a holder tag's command name.
pub fn mutex_profile(
    snap: &BlameSnapshot,
    name: impl Fn(u16) -> &'static str,
    time_nanos: i64,
) -> std::io::Result<Vec<u8>> {
    let mut samples: Vec<Sample> = snap
        .blame
        .iter()
        .filter(|(_, b)| b.waits > 0)
        .map(|(k, b)| Sample {
            frames: [
                name(k.holder).to_string(),
                format!("shard {}", k.lock),
                if k.write { "write lock" } else { "read lock" }.to_string(),
            ],
            contentions: i64::try_from(b.waits).unwrap_or(i64::MAX),
            delay_ns: i64::try_from(b.wait_ns).unwrap_or(i64::MAX),
        })
        .collect();
    samples.sort_by(|a, b| b.delay_ns.cmp(&a.delay_ns).then(a.frames.cmp(&b.frames)));
    let raw = encode(&samples, time_nanos);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw)?;
    gz.finish()
}

/// The string table: index 0 is "", as profile.proto requires.
#[derive(Default)]
struct Strings {
    index: HashMap<String, i64>,
    list: Vec<String>,
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if self.list.is_empty() {
            self.list.push(String::new());
            self.index.insert(String::new(), 0);
        }
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as i64;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

fn encode(samples: &[Sample], time_nanos: i64) -> Vec<u8> {
    let mut strings = Strings::default();
    strings.id("");
    let mut out = Vec::new();
    // sample_type = 1: contentions/count, delay/nanoseconds (as Go's mutex profile).
    for (t, u) in [("contentions", "count"), ("delay", "nanoseconds")] {
        let mut vt = Vec::new();
        int_field(&mut vt, 1, strings.id(t));
        int_field(&mut vt, 2, strings.id(u));
        bytes_field(&mut out, 1, &vt);
    }
    // One function and one location per distinct frame name; ids from 1.
    let mut frame_ids: HashMap<&str, u64> = HashMap::new();
    let mut functions = Vec::new();
    let mut locations = Vec::new();
    for s in samples {
        let mut ids = Vec::with_capacity(3);
        for f in &s.frames {
            let next = frame_ids.len() as u64 + 1;
            let id = *frame_ids.entry(f.as_str()).or_insert_with(|| {
                let mut func = Vec::new();
                int_field(&mut func, 1, next as i64);
                int_field(&mut func, 2, strings.id(f));
                int_field(&mut func, 3, strings.id(f));
                int_field(&mut func, 4, strings.id("shardcache"));
                functions.push(func);
                let mut line = Vec::new();
                int_field(&mut line, 1, next as i64);
                let mut loc = Vec::new();
                int_field(&mut loc, 1, next as i64);
                bytes_field(&mut loc, 4, &line);
                locations.push(loc);
                next
            });
            ids.push(id);
        }
        // sample = 2: packed location_id (1) and value (2).
        let mut sample = Vec::new();
        let mut packed = Vec::new();
        for id in ids {
            varint(&mut packed, id);
        }
        bytes_field(&mut sample, 1, &packed);
        let mut values = Vec::new();
        varint(&mut values, s.contentions as u64);
        varint(&mut values, s.delay_ns as u64);
        bytes_field(&mut sample, 2, &values);
        bytes_field(&mut out, 2, &sample);
    }
    for loc in &locations {
        bytes_field(&mut out, 4, loc);
    }
    for func in &functions {
        bytes_field(&mut out, 5, func);
    }
    let table = std::mem::take(&mut strings.list);
    for s in &table {
        bytes_field(&mut out, 6, s.as_bytes());
    }
    int_field(&mut out, 9, time_nanos);
    // period_type = 11 (contentions/count), period = 12: every wait is recorded.
    let mut pt = Vec::new();
    int_field(
        &mut pt,
        1,
        strings.index.get("contentions").copied().unwrap_or(0),
    );
    int_field(&mut pt, 2, strings.index.get("count").copied().unwrap_or(0));
    bytes_field(&mut out, 11, &pt);
    int_field(&mut out, 12, 1);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (wire type 0); zero values are omitted, as proto3 does.
fn int_field(out: &mut Vec<u8>, field: u32, v: i64) {
    if v != 0 {
        varint(out, u64::from(field) << 3);
        varint(out, v as u64);
    }
}

/// A length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    varint(out, (u64::from(field) << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut f = Vec::new();
        int_field(&mut f, 1, 150);
        assert_eq!(f, [0x08, 0x96, 0x01]);
        let mut b = Vec::new();
        bytes_field(&mut b, 6, b"ab");
        assert_eq!(b, [0x32, 2, b'a', b'b']);
    }

    #[test]
    fn the_string_table_starts_empty() {
        let mut s = Strings::default();
        assert_eq!(s.id("x"), 1);
        assert_eq!(s.id(""), 0);
        assert_eq!(s.id("x"), 1);
    }
}
