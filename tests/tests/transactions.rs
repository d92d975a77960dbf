//! Transactions (`MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`): the same sequences sent to a
//! real `redis-server` and to shardcache, replies compared byte for byte in RESP2 and RESP3;
//! watched keys changed by another client, flushed and expired; a concurrency test in which
//! clients move amounts between accounts on different shards while others read every account
//! inside transactions (the total never changes); and redis-py's transactional pipelines and
//! `WATCH` helper.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shardcache_tests::{compare_script as compare, read_replies, require, resp, Server};

#[test]
fn queuing_exec_and_errors_match_redis() {
    require!("redis-server");
    compare(
        "basics",
        "
        MULTI
        SET a 1
        INCR a
        GET a
        MSET x 1 y 2 z 3
        MGET x y z a
        EXPIRE a 100
        TTL a
        EXEC
        MULTI
        EXEC
        MULTI
        SET s abc
        INCR s
        APPEND s def
        GET s
        EXEC
        EXEC
        DISCARD
        MULTI
        MULTI
        WATCH k
        SET q 1
        DISCARD
        GET q
        MULTI
        SET q 1
        NOSUCHCOMMAND arg
        EXEC
        GET q
        MULTI
        SET q
        GET q
        EXEC
        MULTI
        SELECT 1
        SET indb1 v
        SELECT 0
        GET indb1
        EXEC
        SELECT 1
        GET indb1
        SELECT 0
        MULTI
        SET f1 v
        DBSIZE
        FLUSHDB
        DBSIZE
        KEYS *
        EXEC
        MULTI
        PING
        ECHO hi
        EXEC
        UNWATCH
        ",
    );
}

#[test]
fn watch_matches_redis() {
    require!("redis-server");
    compare(
        "watch",
        "
        SET w 1
        WATCH w
        GET w
        MULTI
        INCR w
        EXEC
        WATCH w
        B: SET w 5
        MULTI
        INCR w
        EXEC
        GET w
        WATCH w other
        B: SET unrelated 1
        MULTI
        INCR w
        EXEC
        WATCH missing
        B: SET missing 1
        MULTI
        GET missing
        EXEC
        WATCH w
        B: DEL w
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        B: EXPIRE w 100
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        B: FLUSHDB
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        B: FLUSHALL
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        UNWATCH
        B: SET w 2
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        SET w 2
        MULTI
        GET w
        EXEC
        SET w 1
        WATCH w
        B: SET w 1
        MULTI
        DISCARD
        MULTI
        GET w
        EXEC
        SET t 1 PX 100
        WATCH t
        sleep 250
        MULTI
        GET w
        EXEC
        SET t2 1 PX 50
        sleep 150
        WATCH t2
        MULTI
        GET w
        EXEC
        WATCH nothere
        MULTI
        SET nothere 1
        EXEC
        ",
    );
}

fn cmd(c: &mut TcpStream, args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.write_all(&resp(&a)).unwrap();
    read_replies(c, 1).remove(0)
}

fn int_of(reply: &[u8]) -> i64 {
    // `$n\r\n<digits>\r\n`
    let s = String::from_utf8_lossy(reply);
    s.lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn transfers_between_shards_never_change_the_total() {
    let ours = Server::start(&["--shards", "16", "--threads", "2"]);
    let port = ours.port();
    const ACCOUNTS: usize = 8;
    const START: i64 = 1000;
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("account:{i}")).collect();
    {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for n in &names {
            cmd(&mut c, &["SET", n, &START.to_string()]);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut movers = Vec::new();
    for t in 0..12usize {
        let names = names.clone();
        movers.push(std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut done, mut retried) = (0, 0);
            for i in 0..150usize {
                let from = &names[(t + i) % ACCOUNTS];
                let to = &names[(t + 3 * i + 1) % ACCOUNTS];
                if from == to {
                    continue;
                }
                if t % 2 == 0 {
                    // Plain MULTI/EXEC: DECRBY and INCRBY together.
                    cmd(&mut c, &["MULTI"]);
                    cmd(&mut c, &["DECRBY", from, "7"]);
                    cmd(&mut c, &["INCRBY", to, "7"]);
                    let r = cmd(&mut c, &["EXEC"]);
                    assert!(r.starts_with(b"*2\r\n"), "{}", String::from_utf8_lossy(&r));
                    done += 1;
                } else {
                    // Check-and-set: read both balances, write both, retry if either moved.
                    loop {
                        cmd(&mut c, &["WATCH", from, to]);
                        let a = int_of(&cmd(&mut c, &["GET", from]));
                        let b = int_of(&cmd(&mut c, &["GET", to]));
                        cmd(&mut c, &["MULTI"]);
                        cmd(&mut c, &["SET", from, &(a - 3).to_string()]);
                        cmd(&mut c, &["SET", to, &(b + 3).to_string()]);
                        let r = cmd(&mut c, &["EXEC"]);
                        if r.starts_with(b"*-1") {
                            retried += 1;
                            continue;
                        }
                        assert!(r.starts_with(b"*2\r\n"), "{}", String::from_utf8_lossy(&r));
                        done += 1;
                        break;
                    }
                }
            }
            (done, retried)
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (names, stop) = (names.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut checks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Every account read with its own GET inside one transaction.
                cmd(&mut c, &["MULTI"]);
                for n in &names {
                    cmd(&mut c, &["GET", n]);
                }
                let r = cmd(&mut c, &["EXEC"]);
                let text = String::from_utf8_lossy(&r).into_owned();
                let total: i64 = text
                    .lines()
                    .skip(1)
                    .filter(|l| !l.starts_with('$'))
                    .map(|l| l.trim().parse::<i64>().unwrap())
                    .sum();
                assert_eq!(total, START * ACCOUNTS as i64, "reply {text:?}");
                checks += 1;
            }
            checks
        }));
    }
    let mut moved = 0;
    let mut retries = 0;
    for m in movers {
        let (d, r) = m.join().unwrap();
        moved += d;
        retries += r;
    }
    stop.store(true, Ordering::Relaxed);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let total: i64 = names
        .iter()
        .map(|n| int_of(&cmd(&mut c, &["GET", n])))
        .sum();
    assert_eq!(total, START * ACCOUNTS as i64);
    assert!(moved > 1000 && checks > 0, "moved {moved}, checks {checks}");
    eprintln!("{moved} transfers ({retries} WATCH retries), {checks} consistent reads");
}

/// The first Python that can `import redis`: `python3` on PATH, else Debian's own (where
/// `python3-redis` installs, when PATH's `python3` is another build, e.g. pyenv's).
fn python_with_redis() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import redis"])
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn redis_py_transactions_and_watch() {
    require!("python3");
    let Some(python) = python_with_redis() else {
        shardcache_tests::skip("no python3 can import redis (python3-redis)");
        return;
    };
    let ours = Server::start(&[]);
    let program = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
p = r.pipeline(transaction=True)
p.set("session", "v", ex=60).incr("hits").expire("hits", 60).get("session")
assert p.execute() == [True, 1, True, b"v"], "pipeline"
def bump(pipe):
    n = int(pipe.get("counter") or 0)
    pipe.multi()
    pipe.set("counter", n + 1)
for _ in range(5):
    r.transaction(bump, "counter")
assert r.get("counter") == b"5", r.get("counter")
p = r.pipeline(transaction=True)
p.set("a", "abc").incr("a").set("b", "2")
try:
    p.execute()
    raise SystemExit("expected an error")
except redis.ResponseError:
    pass
# A runtime error inside the transaction: the rest still ran.
assert r.get("a") == b"abc" and r.get("b") == b"2", (r.get("a"), r.get("b"))
with r.pipeline() as pipe:
    pipe.watch("w")
    r.set("w", "changed")
    pipe.multi()
    pipe.set("w", "mine")
    try:
        pipe.execute()
        raise SystemExit("expected WatchError")
    except redis.WatchError:
        pass
assert r.get("w") == b"changed"
print("ok")
"#;
    let out = Command::new(python)
        .args(["-c", program, &ours.port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
