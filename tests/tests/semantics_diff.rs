//! Differential stream test: a seeded, reproducible stream of thousands of commands from the
//! whole supported command list (valid and invalid arguments, wrong arity, overflow, float
//! edge cases, keys with TTLs of seconds) sent to a real `redis-server` and to shardcache,
//! replies compared byte for byte, except:
//! * TTL / PTTL / EXPIRETIME / PEXPIRETIME: non-negative replies within a tolerance;
//! * KEYS / SCAN: compared as sets (elements sorted);
//! * RANDOMKEY: only "nil or not" (the key is random by definition).
//!
//! The seed is printed; rerun one with `SEMANTICS_SEED=<n>`. Every difference is printed, and
//! any difference that is not one of the known ones (see [`known_difference`], and the
//! README's "Differences from Redis") fails the test.

use std::io::Write;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardcache_tests::{read_replies, reply_len, require, resp, RedisServer, Server};

const COMMANDS: usize = 6000;
const DEFAULT_SEED: u64 = 0x5eed_cafe;

/// How a reply is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    Exact,
    /// Integer replies >= 0 within this distance.
    Tolerance(i64),
    /// Array elements as a sorted multiset (KEYS), or SCAN's [cursor, keys].
    Set,
    Scan,
    /// Only whether the reply is nil.
    NilOrNot,
}

struct Gen {
    rng: StdRng,
    now_s: u64,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

impl Gen {
    fn key(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..=5 => format!("k{}", self.rng.random_range(0..6)),
            6..=7 => format!("n{}", self.rng.random_range(0..3)),
            _ => format!("f{}", self.rng.random_range(0..3)),
        }
    }
    fn value(&mut self) -> String {
        let fixed = [
            "v",
            "",
            "hello",
            "0",
            "1",
            "-1",
            "123",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775806",
            "3.14",
            "1e3",
            " 1",
            "abc",
            "10.5",
            "0x10",
            "inf",
            "-inf",
            "nan",
            "1.0e308",
            "007",
            "+1",
            "-0",
            "5.0e3",
            "0.1",
        ];
        if self.rng.random_bool(0.2) {
            let n = self.rng.random_range(0..12);
            (0..n)
                .map(|_| char::from(self.rng.random_range(b'a'..=b'z')))
                .collect()
        } else {
            pick(&mut self.rng, &fixed).to_string()
        }
    }
    fn int(&mut self) -> String {
        let fixed = [
            "0",
            "1",
            "-1",
            "5",
            "100",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "abc",
            "1.5",
            "",
            " 3",
            "+2",
            "007",
            "-0",
        ];
        if self.rng.random_bool(0.5) {
            self.rng.random_range(-20..50).to_string()
        } else {
            pick(&mut self.rng, &fixed).to_string()
        }
    }
    fn float(&mut self) -> String {
        let fixed = [
            "0.1",
            "-0.1",
            "1.5",
            "1e3",
            "2.0e2",
            "inf",
            "-inf",
            "nan",
            "abc",
            "1e308",
            "-1e308",
            "0",
            "-0",
            "5.0e3",
            "3.0e-5",
            "0x1p3",
            "1.7976931348623157e308",
            " 1",
            "1 ",
            "",
            "10.50",
            "-5",
            "1e-20",
            "123456789.123456789",
            "0.3333333333333333",
        ];
        if self.rng.random_bool(0.3) {
            format!(
                "{}.{}",
                self.rng.random_range(-1000..1000),
                self.rng.random_range(0..1000)
            )
        } else {
            pick(&mut self.rng, &fixed).to_string()
        }
    }
    /// A relative TTL in seconds: long enough that both servers agree on it.
    fn secs(&mut self) -> String {
        let fixed = [
            "0",
            "-1",
            "abc",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775",
            "1.5",
            "",
        ];
        if self.rng.random_bool(0.7) {
            self.rng.random_range(10..2000).to_string()
        } else {
            pick(&mut self.rng, &fixed).to_string()
        }
    }
    fn millis(&mut self) -> String {
        let fixed = [
            "0",
            "-5",
            "abc",
            "9223372036854775807",
            "-9223372036854775808",
        ];
        if self.rng.random_bool(0.7) {
            self.rng.random_range(10_000..2_000_000).to_string()
        } else {
            pick(&mut self.rng, &fixed).to_string()
        }
    }
    fn unix_secs(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0 => (self.now_s - 100).to_string(),
            1 => "0".into(),
            2 => "-1".into(),
            3 => "abc".into(),
            _ => (self.now_s + self.rng.random_range(10..5000)).to_string(),
        }
    }
    fn unix_millis(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0 => ((self.now_s - 100) * 1000).to_string(),
            1 => "0".into(),
            2 => "9223372036854775807".into(),
            _ => ((self.now_s + self.rng.random_range(10..5000)) * 1000).to_string(),
        }
    }
    fn ttl_option(&mut self) -> Vec<String> {
        match self.rng.random_range(0..6) {
            0 => vec!["EX".into(), self.secs()],
            1 => vec!["PX".into(), self.millis()],
            2 => vec!["EXAT".into(), self.unix_secs()],
            3 => vec!["PXAT".into(), self.unix_millis()],
            4 => vec!["ex".into()],
            _ => vec!["KEEPTTL".into()],
        }
    }

    /// One command and how to compare its reply.
    fn command(&mut self) -> (Vec<String>, Compare) {
        let s = |x: &str| x.to_string();
        let mut c = Compare::Exact;
        let r = self.rng.random_range(0..100);
        let mut cmd: Vec<String> = match r {
            0..=7 => {
                let mut v = vec![s("SET"), self.key(), self.value()];
                for _ in 0..self.rng.random_range(0..3) {
                    match self.rng.random_range(0..5) {
                        0 => v.push(s(pick(&mut self.rng, &["NX", "XX", "nx"]))),
                        1 => v.push(s("GET")),
                        2 => v.push(s(pick(&mut self.rng, &["FOO", "PERSIST"]))),
                        _ => v.extend(self.ttl_option()),
                    }
                }
                v
            }
            8..=12 => vec![s("GET"), self.key()],
            13 => vec![s("SETNX"), self.key(), self.value()],
            14 => vec![s("SETEX"), self.key(), self.secs(), self.value()],
            15 => vec![s("PSETEX"), self.key(), self.millis(), self.value()],
            16 => vec![s("GETSET"), self.key(), self.value()],
            17 => vec![s("GETDEL"), self.key()],
            18..=19 => {
                let mut v = vec![s("GETEX"), self.key()];
                match self.rng.random_range(0..6) {
                    0 => {}
                    1 => v.push(s("PERSIST")),
                    2 => v.push(s("BAD")),
                    3 => {
                        v.extend(self.ttl_option());
                        v.push(s("PERSIST"))
                    }
                    _ => v.extend(self.ttl_option()),
                }
                v
            }
            20..=22 => {
                let mut v = vec![s("MGET")];
                for _ in 0..self.rng.random_range(1..6) {
                    v.push(self.key());
                }
                v
            }
            23..=25 => {
                let name = if self.rng.random_bool(0.7) {
                    "MSET"
                } else {
                    "MSETNX"
                };
                let mut v = vec![s(name)];
                for _ in 0..self.rng.random_range(1..4) {
                    v.push(self.key());
                    v.push(self.value());
                }
                if self.rng.random_bool(0.1) {
                    v.push(self.key());
                }
                v
            }
            26..=27 => vec![s("APPEND"), self.key(), self.value()],
            28 => vec![s("STRLEN"), self.key()],
            29..=32 => vec![s(pick(&mut self.rng, &["INCR", "DECR"])), self.key()],
            33..=36 => vec![
                s(pick(&mut self.rng, &["INCRBY", "DECRBY"])),
                self.key(),
                self.int(),
            ],
            37..=41 => vec![s("INCRBYFLOAT"), self.key(), self.float()],
            42..=43 => vec![s("GETRANGE"), self.key(), self.int(), self.int()],
            44..=45 => {
                let off = pick(
                    &mut self.rng,
                    &[
                        "0",
                        "1",
                        "3",
                        "10",
                        "-1",
                        "abc",
                        "536870912",
                        "9223372036854775807",
                    ],
                );
                vec![s("SETRANGE"), self.key(), s(off), self.value()]
            }
            46..=47 => {
                let name = pick(&mut self.rng, &["DEL", "UNLINK", "EXISTS", "TOUCH"]);
                let mut v = vec![s(name)];
                for _ in 0..self.rng.random_range(1..4) {
                    v.push(self.key());
                }
                v
            }
            48 => vec![s("TYPE"), self.key()],
            49..=56 => {
                let (name, t) = match self.rng.random_range(0..4) {
                    0 => ("EXPIRE", self.secs()),
                    1 => ("PEXPIRE", self.millis()),
                    2 => ("EXPIREAT", self.unix_secs()),
                    _ => ("PEXPIREAT", self.unix_millis()),
                };
                let mut v = vec![s(name), self.key(), t];
                for _ in 0..self.rng.random_range(0..3) {
                    v.push(s(pick(
                        &mut self.rng,
                        &["NX", "XX", "GT", "LT", "gt", "FOO"],
                    )));
                }
                v
            }
            57..=62 => {
                let (name, tol) = match self.rng.random_range(0..4) {
                    0 => ("TTL", 1),
                    1 => ("PTTL", 1000),
                    2 => ("EXPIRETIME", 1),
                    _ => ("PEXPIRETIME", 1000),
                };
                c = Compare::Tolerance(tol);
                vec![s(name), self.key()]
            }
            63..=64 => vec![s("PERSIST"), self.key()],
            65..=67 => vec![
                s(pick(&mut self.rng, &["RENAME", "RENAMENX"])),
                self.key(),
                self.key(),
            ],
            68..=69 => {
                c = Compare::Set;
                vec![
                    s("KEYS"),
                    s(pick(
                        &mut self.rng,
                        &["*", "k*", "k[0-2]", "?0", "n*", "zz", "*1", "f?"],
                    )),
                ]
            }
            70..=71 => {
                c = Compare::Scan;
                let mut v = vec![
                    s("SCAN"),
                    s(pick(&mut self.rng, &["0", "0", "0", "abc", " 1", "1x"])),
                ];
                match self.rng.random_range(0..6) {
                    0 => {}
                    1 => v.extend([s("MATCH"), s(pick(&mut self.rng, &["k*", "*", "n?", "x"]))]),
                    2 => v.extend([
                        s("COUNT"),
                        s(pick(&mut self.rng, &["1000", "0", "-1", "abc"])),
                    ]),
                    3 => v.extend([
                        s("TYPE"),
                        s(pick(&mut self.rng, &["string", "hash", "STRING"])),
                    ]),
                    4 => v.push(s("MATCH")),
                    _ => v.extend([s("FOO"), s("bar")]),
                }
                if v.len() == 2 || !matches!(v[2].as_str(), "COUNT") {
                    v.extend([s("COUNT"), s("1000")]);
                }
                v
            }
            72 => {
                c = Compare::NilOrNot;
                vec![s("RANDOMKEY")]
            }
            73..=74 => vec![s("DBSIZE")],
            75 => vec![
                s("SELECT"),
                s(pick(&mut self.rng, &["0", "0", "1", "16", "-1", "x"])),
            ],
            76 if self.rng.random_bool(0.2) => {
                vec![s(pick(&mut self.rng, &["FLUSHDB", "FLUSHALL"]))]
            }
            77..=79 => match self.rng.random_range(0..9) {
                0 => vec![
                    s("CONFIG"),
                    s("GET"),
                    s(pick(
                        &mut self.rng,
                        &[
                            "maxmemory",
                            "maxmemory-policy",
                            "maxmemory-samples",
                            "MAXMEMORY",
                            "nosuch",
                        ],
                    )),
                ],
                1 => vec![
                    s("CONFIG"),
                    s("SET"),
                    s("maxmemory"),
                    s(pick(&mut self.rng, &["0", "abc", "1.5mb", "-1"])),
                ],
                2 => vec![
                    s("CONFIG"),
                    s("SET"),
                    s("maxmemory-policy"),
                    s(pick(&mut self.rng, &["noeviction", "foo", "ALLKEYS-LRU"])),
                ],
                3 => vec![
                    s("CONFIG"),
                    s("SET"),
                    s("maxmemory-samples"),
                    s(pick(&mut self.rng, &["5", "0", "abc", "2147483648", "10"])),
                ],
                4 => vec![s("CONFIG"), s("SET"), s("foo"), s("bar")],
                5 => vec![
                    s("CONFIG"),
                    s(pick(&mut self.rng, &["GET", "SET", "foo", "RESETSTAT"])),
                ],
                6 => vec![s("CONFIG"), s("SET"), s("databases"), s("3")],
                7 => vec![
                    s("CONFIG"),
                    s("SET"),
                    s("maxmemory"),
                    s("0"),
                    s("maxmemory"),
                    s("0"),
                ],
                _ => vec![s("CONFIG"), s("SET"), s("maxmemory-policy")],
            },
            80..=81 => match self.rng.random_range(0..6) {
                0 => vec![
                    s("CLIENT"),
                    s("SETNAME"),
                    s(pick(&mut self.rng, &["app", "", "a b", "x\ny"])),
                ],
                1 => vec![s("CLIENT"), s("GETNAME")],
                2 => vec![s("CLIENT"), s("foo")],
                3 => vec![s("CLIENT"), s("SETNAME")],
                4 => vec![s("CLIENT"), s("ID"), s("x")],
                _ => vec![s("CLIENT"), s("LIST"), s("foo")],
            },
            82..=83 => {
                // Arity errors: every command with too few arguments.
                let name = pick(
                    &mut self.rng,
                    &[
                        "SETNX",
                        "SETEX",
                        "PSETEX",
                        "GETSET",
                        "GETDEL",
                        "GETEX",
                        "MGET",
                        "MSET",
                        "MSETNX",
                        "APPEND",
                        "STRLEN",
                        "INCR",
                        "DECR",
                        "INCRBY",
                        "DECRBY",
                        "INCRBYFLOAT",
                        "GETRANGE",
                        "SETRANGE",
                        "UNLINK",
                        "TOUCH",
                        "TYPE",
                        "EXPIRE",
                        "PEXPIRE",
                        "EXPIREAT",
                        "PEXPIREAT",
                        "TTL",
                        "PTTL",
                        "EXPIRETIME",
                        "PEXPIRETIME",
                        "PERSIST",
                        "RENAME",
                        "RENAMENX",
                        "KEYS",
                        "SCAN",
                        "CLIENT",
                        "CONFIG",
                    ],
                );
                vec![s(name)]
            }
            84..=86 => vec![s("SET"), self.key(), self.value(), s("EX"), self.secs()],
            87..=89 => vec![s("SET"), self.key(), self.int()],
            90..=91 => vec![s("SET"), self.key(), self.float()],
            _ => vec![s("GET"), self.key()],
        };
        // Wrong arity for fixed-arity commands: one argument too many.
        if self.rng.random_bool(0.02) && c == Compare::Exact {
            cmd.push(s("extra"));
        }
        (cmd, c)
    }
}

/// The elements of an array reply (raw), or `None` if it is not an array.
fn elements(reply: &[u8]) -> Option<Vec<Vec<u8>>> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let end = reply.windows(2).position(|w| w == b"\r\n")?;
    let n: usize = std::str::from_utf8(&reply[1..end]).ok()?.parse().ok()?;
    let mut pos = end + 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = reply_len(&reply[pos..])?;
        out.push(reply[pos..pos + len].to_vec());
        pos += len;
    }
    Some(out)
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn integer(reply: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(reply).ok()?;
    s.strip_prefix(':')?.trim_end().parse().ok()
}

fn same(c: Compare, ours: &[u8], theirs: &[u8]) -> bool {
    if ours == theirs {
        return true;
    }
    match c {
        Compare::Exact => false,
        Compare::Tolerance(t) => match (integer(ours), integer(theirs)) {
            (Some(a), Some(b)) if a >= 0 && b >= 0 => (a - b).abs() <= t,
            _ => false,
        },
        Compare::Set => match (elements(ours), elements(theirs)) {
            (Some(a), Some(b)) => sorted(a) == sorted(b),
            _ => false,
        },
        Compare::Scan => match (elements(ours), elements(theirs)) {
            (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                a[0] == b[0]
                    && match (elements(&a[1]), elements(&b[1])) {
                        (Some(x), Some(y)) => sorted(x) == sorted(y),
                        _ => false,
                    }
            }
            _ => false,
        },
        Compare::NilOrNot => (ours == b"$-1\r\n") == (theirs == b"$-1\r\n"),
    }
}

#[test]
fn command_stream_matches_redis() {
    require!("redis-server");
    let seed = std::env::var("SEMANTICS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("semantics_diff seed: {seed} (rerun with SEMANTICS_SEED={seed})");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&["--maxmemory", "0"]);
    let mut a = TcpStream::connect(("127.0.0.1", ours.port())).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        now_s,
    };
    let mut diffs = Vec::new();
    let mut explained = Vec::new();
    let mut past_expiry_writes = 0u64;
    for i in 0..COMMANDS {
        let (cmd, compare) = gen.command();
        let args: Vec<&[u8]> = cmd.iter().map(|w| w.as_bytes()).collect();
        let req = resp(&args);
        if std::env::var_os("SEMANTICS_TRACE").is_some() {
            println!("#{i} {}", cmd.join(" "));
        }
        a.write_all(&req).unwrap();
        b.write_all(&req).unwrap();
        let ra = read_replies(&mut a, 1).remove(0);
        let rb = read_replies(&mut b, 1).remove(0);
        if !same(compare, &ra, &rb) {
            let mut d = format!(
                "#{i} {:?}\n   ours:  {:?}\n   redis: {:?}",
                cmd.join(" "),
                String::from_utf8_lossy(&ra),
                String::from_utf8_lossy(&rb)
            );
            let mut known = None;
            if cmd[0] == "DBSIZE" {
                // Show which keys differ.
                let keys = resp(&[b"KEYS", b"*"]);
                a.write_all(&keys).unwrap();
                b.write_all(&keys).unwrap();
                let ka = sorted(elements(&read_replies(&mut a, 1).remove(0)).unwrap_or_default());
                let kb = sorted(elements(&read_replies(&mut b, 1).remove(0)).unwrap_or_default());
                let show = |v: &[Vec<u8>]| -> String {
                    v.iter()
                        .map(|k| String::from_utf8_lossy(k).replace("\r\n", " "))
                        .collect()
                };
                d.push_str(&format!(
                    "\n   keys ours:  {}\n   keys redis: {}",
                    show(&ka),
                    show(&kb)
                ));
                known = known_difference(&ra, &rb, &ka, &kb, past_expiry_writes);
            }
            match known {
                Some(why) => explained.push(format!("{d}\n   known: {why}")),
                None => diffs.push(d),
            }
        }
        if writes_past_expiry(&cmd) {
            past_expiry_writes += 1;
        }
    }
    for d in explained.iter().chain(&diffs) {
        println!("{d}");
    }
    println!(
        "semantics_diff: {} of {COMMANDS} replies match, {} differ as known, {} differ otherwise",
        COMMANDS - diffs.len() - explained.len(),
        explained.len(),
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "{} unexplained differences from Redis (printed above; rerun with SEMANTICS_SEED={seed})",
        diffs.len()
    );
}

/// Whether `cmd` stores a key whose expiry time is already past (`EXAT`/`PXAT` in the past
/// on `SET`, `GETEX`…, or `EXPIREAT`/`PEXPIREAT` with a past time on Redis 7.0, which deletes
/// instead, so it is not counted). Over-approximated: any write with `EXAT`/`PXAT` counts.
fn writes_past_expiry(cmd: &[String]) -> bool {
    matches!(cmd[0].as_str(), "SET" | "GETEX")
        && cmd
            .iter()
            .any(|w| w.eq_ignore_ascii_case("EXAT") || w.eq_ignore_ascii_case("PXAT"))
}

/// The one difference the stream is known to find, with its explanation; `None` for any other.
///
/// `DBSIZE` after a write with an expiry time already past: Redis 7.0 stores `SET k v EXAT
/// <past>` as a key that is already expired and counts it in `DBSIZE` until active expiry
/// removes it, while `KEYS` already omits it; shardcache's `DBSIZE` never counts an expired key.
/// So the key sets (`KEYS *`) must be equal, shardcache's `DBSIZE` must be their size, Redis's
/// larger by at most the writes with `EXAT`/`PXAT` so far.
fn known_difference(
    ours: &[u8],
    theirs: &[u8],
    keys_ours: &[Vec<u8>],
    keys_redis: &[Vec<u8>],
    past_expiry_writes: u64,
) -> Option<&'static str> {
    let (a, b) = (integer(ours)?, integer(theirs)?);
    (keys_ours == keys_redis
        && a == keys_ours.len() as i64
        && b > a
        && (b - a) as u64 <= past_expiry_writes)
        .then_some("Redis's DBSIZE counts a key stored with an expiry time already past")
}
