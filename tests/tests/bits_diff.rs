//! Differential tests of the bit commands (`SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO`) and `LCS`: the same command sequences to a real `redis-server` and to
//! shardcache, raw replies compared byte for byte, in RESP2 and in RESP3 (`HELLO 3`).
//!
//! Scripts are written one command a line, words separated by single spaces; in a word,
//! `\xNN` is the byte NN, `\s` a space, and the word `<empty>` an empty argument. Nothing here
//! depends on timing: TTLs are observed with `PERSIST` (1 if the key had one), not `TTL`.

use std::io::Write;
use std::net::TcpStream;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardcache_tests::{
    compare_script, read_replies, reply_len, require, resp, RedisServer, Server,
};

/// One word of a script line as bytes (see the module comment).
fn unescape(w: &str) -> Vec<u8> {
    if w == "<empty>" {
        return Vec::new();
    }
    let b = w.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 4;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b's') {
            out.push(b' ');
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn script(lines: &str) -> Vec<Vec<Vec<u8>>> {
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| l.split(' ').map(unescape).collect())
        .collect()
}

fn shown(cmd: &[Vec<u8>]) -> String {
    cmd.iter()
        .map(|w| {
            if w.len() > 40 {
                format!("<{} bytes>", w.len())
            } else {
                String::from_utf8_lossy(w).into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Connections to both servers, in the same protocol.
struct Pair {
    ours: TcpStream,
    theirs: TcpStream,
}

impl Pair {
    fn new(ours: u16, theirs: u16, resp3: bool) -> Pair {
        let mut p = Pair {
            ours: TcpStream::connect(("127.0.0.1", ours)).unwrap(),
            theirs: TcpStream::connect(("127.0.0.1", theirs)).unwrap(),
        };
        // HELLO's reply names the server, so it is read, not compared.
        let hello = if resp3 { "3" } else { "2" };
        p.both(&[b"HELLO".to_vec(), hello.as_bytes().to_vec()]);
        p
    }

    /// Sends one command to both and returns (ours, theirs).
    fn both(&mut self, cmd: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        let req = resp(&args);
        self.ours.write_all(&req).unwrap();
        self.theirs.write_all(&req).unwrap();
        let a = read_replies(&mut self.ours, 1).remove(0);
        let b = read_replies(&mut self.theirs, 1).remove(0);
        (a, b)
    }

    /// Runs every command and returns the lines that differ (command | ours | redis).
    fn run(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<String> {
        let mut diffs = Vec::new();
        for cmd in commands {
            let (a, b) = self.both(cmd);
            if a != b {
                diffs.push(format!(
                    "{} | {:?} | {:?}",
                    shown(cmd),
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                ));
            }
        }
        diffs
    }
}

/// Runs `commands` in RESP2 and then in RESP3 (after a FLUSHALL each) and asserts that every
/// reply is identical.
fn assert_same(ours: u16, theirs: u16, name: &str, commands: &[Vec<Vec<u8>>]) {
    let mut all = Vec::new();
    for resp3 in [false, true] {
        let mut p = Pair::new(ours, theirs, resp3);
        p.both(&[b"FLUSHALL".to_vec()]);
        let d = p.run(commands);
        all.extend(
            d.into_iter()
                .map(|l| format!("[{}] {l}", if resp3 { "RESP3" } else { "RESP2" })),
        );
    }
    assert!(
        all.is_empty(),
        "{name}: {} replies differ (command | ours | redis):\n{}",
        all.len(),
        all.join("\n")
    );
}

const SETBIT_GETBIT: &str = r"
    SETBIT b 7 1
    SETBIT b 7 1
    SETBIT b 7 0
    SETBIT b 7 1
    GET b
    SETBIT b 100 1
    STRLEN b
    GET b
    SETBIT b 0 1
    GETBIT b 0
    GETBIT b 1
    GETBIT b 7
    GETBIT b 100
    GETBIT b 101
    GETBIT b 1000000
    GETBIT b 4294967295
    GETBIT nokey 0
    GETBIT nokey 4294967295
    SETBIT b -1 1
    SETBIT b abc 1
    SETBIT b 1.5 1
    SETBIT b 01 1
    SETBIT b +1 1
    SETBIT b <empty> 1
    SETBIT b 4294967296 1
    SETBIT b 9223372036854775807 1
    SETBIT b 9223372036854775808 1
    SETBIT b 0 2
    SETBIT b 0 -1
    SETBIT b 0 x
    SETBIT b 0 <empty>
    SETBIT b 0 01
    SETBIT b 0 \s1
    SETBIT b 0 1.0
    SETBIT b -1 x
    SETBIT b 4294967296 x
    GETBIT b -1
    GETBIT b x
    GETBIT b 4294967296
    SETBIT b
    SETBIT b 1
    SETBIT b 1 1 1
    GETBIT b
    GETBIT b 1 2
    SET s foobar
    SETBIT s 6 1
    GET s
    SETBIT s 47 1
    SETBIT s 48 1
    GET s
    STRLEN s
    SET n 12345
    GETBIT n 2
    SETBIT n 2 0
    GET n
    SETBIT new 0 0
    EXISTS new
    GET new
    SET e <empty>
    GETBIT e 0
    SETBIT e 9 1
    GET e
    SET t x EX 100000
    SETBIT t 3 1
    PERSIST t
    SET t2 x EX 100000
    SETBIT t2 1 1
    PERSIST t2
    SETBIT t3 5 1
    PERSIST t3
    setbit lower 3 1
    GetBit lower 3
";

const BITCOUNT: &str = r"
    SET s foobar
    BITCOUNT s
    BITCOUNT s 0 0
    BITCOUNT s 1 1
    BITCOUNT s 1 1 BYTE
    BITCOUNT s 1 1 byte
    BITCOUNT s 5 30 BIT
    BITCOUNT s 5 30 bit
    BITCOUNT s 0 -1
    BITCOUNT s -2 -1
    BITCOUNT s -1 -2
    BITCOUNT s -100 -1
    BITCOUNT s -100 -90
    BITCOUNT s 0 100
    BITCOUNT s 100 200
    BITCOUNT s 3 1
    BITCOUNT s 5 -3
    BITCOUNT s -3 5
    BITCOUNT s 0 -1 BIT
    BITCOUNT s -5 -1 BIT
    BITCOUNT s -1 -5 BIT
    BITCOUNT s 0 0 BIT
    BITCOUNT s 7 7 BIT
    BITCOUNT s 1 1 BIT
    BITCOUNT s 3 12 BIT
    BITCOUNT s 8 15 BIT
    BITCOUNT s 9 14 BIT
    BITCOUNT s 40 1000 BIT
    BITCOUNT s 48 1000 BIT
    BITCOUNT s -9223372036854775808 9223372036854775807
    BITCOUNT s -9223372036854775808 9223372036854775807 BIT
    BITCOUNT s 0 1 foo
    BITCOUNT s 0 1 BITS
    BITCOUNT s 0 1 bit\x00x
    BITCOUNT s 0
    BITCOUNT s 0 1 2 3
    BITCOUNT s a b
    BITCOUNT s 0 b
    BITCOUNT s 0 1.5
    BITCOUNT s 9223372036854775808 1
    BITCOUNT s a b foo
    BITCOUNT nokey
    BITCOUNT nokey 0 -1
    BITCOUNT nokey 0 -1 BIT
    BITCOUNT nokey 0
    BITCOUNT nokey a b
    BITCOUNT nokey 0 1 foo
    BITCOUNT nokey 0 1 2 3
    BITCOUNT
    SET e <empty>
    BITCOUNT e
    BITCOUNT e 0 -1
    BITCOUNT e 0 -1 BIT
    BITCOUNT e 0 0
    BITCOUNT e 0 1 foo
    SET ones \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff
    BITCOUNT ones
    BITCOUNT ones 1 -2
    BITCOUNT ones 3 290 BIT
    SET n 1234567
    BITCOUNT n
    BITCOUNT n 1 3 BIT
";

const BITPOS: &str = r"
    SET p \xff\xf0\x00
    BITPOS p 0
    BITPOS p 1
    BITPOS p 0 2
    BITPOS p 0 0 0
    BITPOS p 1 2
    BITPOS p 1 2 -1
    BITPOS p 0 0 -1
    BITPOS p 1 1
    BITPOS p 1 -1
    BITPOS p 0 -1
    BITPOS p 0 -2 -2
    BITPOS p 0 12 20 BIT
    BITPOS p 1 12 20 BIT
    BITPOS p 1 11 20 BIT
    BITPOS p 0 0 11 bit
    BITPOS p 0 0 12 bit
    BITPOS p 0 -1 -1 bit
    BITPOS p 1 -1 -1 bit
    BITPOS p 1 -13 -1 bit
    BITPOS p 0 3 5 BIT
    BITPOS p 1 3 5 BIT
    BITPOS p 0 5 3 BIT
    BITPOS p 0 0 1000 BIT
    BITPOS p 1 16 1000 BIT
    BITPOS p 0 100
    BITPOS p 1 100
    BITPOS p 0 100 200
    BITPOS p 0 0 1 BYTE
    BITPOS p 0 0 1 byte
    BITPOS p 1 -9223372036854775808 9223372036854775807
    BITPOS p 0 -9223372036854775808 9223372036854775807 BIT
    BITPOS p 2
    BITPOS p -1
    BITPOS p x
    BITPOS p 01
    BITPOS p 1 a
    BITPOS p 1 0 a
    BITPOS p 1 0 1 foo
    BITPOS p 1 a 1 foo
    BITPOS p 1 0 a foo
    BITPOS p 1 0 1 bit extra
    BITPOS p
    BITPOS nokey 0
    BITPOS nokey 1
    BITPOS nokey 1 a
    BITPOS nokey 0 0 1 foo
    BITPOS nokey 0 1 2 3 4
    BITPOS nokey 2
    BITPOS nokey x
    SET ones \xff\xff
    BITPOS ones 0
    BITPOS ones 0 0
    BITPOS ones 0 1
    BITPOS ones 0 0 -1
    BITPOS ones 0 0 1
    BITPOS ones 0 0 15 bit
    BITPOS ones 0 3 7 bit
    BITPOS ones 1 3 7 bit
    BITPOS ones 0 -100
    SET zeros \x00\x00\x00
    BITPOS zeros 1
    BITPOS zeros 0
    BITPOS zeros 1 0 -1 bit
    BITPOS zeros 0 5 -1 bit
    SET e <empty>
    BITPOS e 0
    BITPOS e 1
    BITPOS e 0 0
    BITPOS e 0 0 -1
    BITPOS e 1 0 -1 bit
    SETBIT long 300 1
    SETBIT long 700 1
    BITPOS long 1
    BITPOS long 1 10
    BITPOS long 1 38
    BITPOS long 1 0 -1 BIT
    BITPOS long 1 301 -1 BIT
    BITPOS long 1 301 699 BIT
    BITPOS long 1 38 -2
    BITPOS long 0
    BITPOS long 0 37
    BITCOUNT long
    SET f \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe
    BITPOS f 0
    BITPOS f 0 1
    BITPOS f 0 0 39
    BITPOS f 0 0 40
    BITPOS f 0 3 319 BIT
    BITPOS f 0 3 328 BIT
    BITPOS f 1 320
    SETRANGE f 40 \xff
    BITPOS f 0 0 -1
    BITPOS f 0
    SET n 1234
    BITPOS n 0
    BITPOS n 1 1
    // Larger than one inline entry: the value is read outside the shard lock.
    SETBIT huge 80000 1
    SETBIT huge 3 1
    STRLEN huge
    BITCOUNT huge
    BITCOUNT huge 1 -1
    BITCOUNT huge 24 80000 BIT
    BITPOS huge 1
    BITPOS huge 1 1
    BITPOS huge 1 4 -1 BIT
    BITPOS huge 0
    BITPOS huge 0 0 -1 BIT
    BITPOS huge 1 0 79999 BIT
    GETBIT huge 80000
    BITFIELD huge GET u16 79992 INCRBY u16 79992 7 GET i64 #1250
    BITFIELD_RO huge GET u16 79992
    BITOP NOT nhuge huge
    BITPOS nhuge 0
    BITCOUNT nhuge
";

const BITOP: &str = r"
    SET a foobar
    SET b abcdef
    SET c \xff\x0f
    BITOP AND d a b
    GET d
    BITOP OR d a b
    GET d
    BITOP XOR d a b
    GET d
    BITOP NOT d a
    GET d
    BITOP and d a c
    GET d
    BITOP or d a c
    GET d
    BITOP xor d c a b
    GET d
    BITOP AND d c a b
    GET d
    BITOP NOT d c
    GET d
    BITOP AND d a
    GET d
    BITOP AND d a nokey
    GET d
    BITOP OR d nokey a
    GET d
    BITOP XOR d nokey c nokey2
    GET d
    BITOP NOT d nokey
    EXISTS d
    SET d x
    BITOP OR d nokey nokey2
    EXISTS d
    BITOP AND d nokey
    SET e <empty>
    BITOP OR d e e
    EXISTS d
    BITOP NOT d e
    EXISTS d
    BITOP NOT d a b
    BITOP NOT d
    BITOP FOO d a
    BITOP ANDX d a
    BITOP DIFF d a b
    BITOP ONE d a b
    BITOP and\x00x d a b
    BITOP AND d
    BITOP AND
    BITOP
    BITOP AND a a b
    GET a
    BITOP XOR b b b
    GET b
    EXISTS b
    SET t x EX 100000
    BITOP OR t c
    PERSIST t
    GET t
    SET t2 x EX 100000
    BITOP OR t2 nokey
    EXISTS t2
    PERSIST t2
    SET n 12345
    BITOP NOT d n
    GET d
    SETBIT big 1000 1
    SETBIT big2 3 1
    BITOP OR d big big2
    BITCOUNT d
    STRLEN d
    BITOP AND d big big2
    BITCOUNT d
    STRLEN d
    BITOP NOT d big
    BITCOUNT d
";

const BITFIELD: &str = r"
    BITFIELD f GET u8 0
    BITFIELD nokey GET i8 0 GET u63 0 GET i64 100
    EXISTS nokey
    BITFIELD f SET i8 0 -100 GET i8 0 GET u8 0
    BITFIELD f SET u8 8 255 GET u8 8 GET i8 8 GET u4 8 GET i4 10 GET u1 15
    GET f
    BITFIELD f INCRBY u2 100 1 INCRBY u2 100 1 INCRBY u2 100 1 INCRBY u2 100 1
    BITFIELD f OVERFLOW SAT INCRBY u2 102 1 INCRBY u2 102 1 INCRBY u2 102 1 INCRBY u2 102 -5
    BITFIELD f OVERFLOW FAIL INCRBY u2 104 1 INCRBY u2 104 1 INCRBY u2 104 1 INCRBY u2 104 1 INCRBY u2 104 -10
    BITFIELD f OVERFLOW WRAP INCRBY u2 106 -1 INCRBY u2 106 9
    BITFIELD f OVERFLOW SAT INCRBY i8 0 200 INCRBY i8 0 -1000 OVERFLOW FAIL INCRBY i8 0 -1 INCRBY i8 0 300 OVERFLOW WRAP INCRBY i8 0 300
    BITFIELD f overflow sat SET i8 0 1000 SET i8 0 -1000 GET i8 0
    BITFIELD f OVERFLOW FAIL SET i8 0 1000 SET i8 0 -1000 SET i8 0 -128 SET u8 0 256 SET u8 0 -1 GET u8 0
    BITFIELD f OVERFLOW WRAP SET i8 0 1000 SET i8 0 -1000 SET u8 0 256 SET u8 0 -1 SET u8 0 -256
    BITFIELD f OVERFLOW SAT SET u8 0 -1 SET u8 0 300 SET u4 0 9223372036854775807 SET u4 0 -9223372036854775808
    BITFIELD f SET u8 #1 200 GET u8 #1 GET u4 #3 GET u4 #2 SET i5 #2 7 GET i5 #2 GET u8 1
    BITFIELD f GET u8 #0 GET i16 #1 INCRBY u3 #10 5
    GET f
    BITFIELD f SET i64 0 -1 GET u63 0 GET i64 0 GET u63 1 GET u1 63 GET i1 0
    BITFIELD f OVERFLOW WRAP INCRBY i64 0 9223372036854775807 INCRBY i64 0 2 INCRBY i64 0 -9223372036854775808
    BITFIELD f OVERFLOW SAT SET i64 0 9223372036854775807 INCRBY i64 0 1 INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -1
    BITFIELD f OVERFLOW FAIL SET i64 0 -9223372036854775808 INCRBY i64 0 -1 INCRBY i64 0 9223372036854775807 INCRBY i64 0 1
    BITFIELD f SET u63 1 9223372036854775807 INCRBY u63 1 1 OVERFLOW SAT INCRBY u63 1 5 OVERFLOW FAIL INCRBY u63 1 1 SET u63 1 -1
    BITFIELD f OVERFLOW WRAP SET u63 1 -1 INCRBY u63 1 -9223372036854775808 INCRBY u63 1 9223372036854775807
    BITFIELD f SET i63 3 -4611686018427387904 INCRBY i63 3 -1 OVERFLOW SAT INCRBY i63 3 -9223372036854775808 INCRBY i63 3 9223372036854775807
    BITFIELD f SET i1 0 1 SET i1 0 -1 GET i1 0 SET i1 0 0 OVERFLOW SAT INCRBY i1 0 5 INCRBY i1 0 -5
    BITFIELD f SET i65 0 1
    BITFIELD f GET u64 0
    BITFIELD f GET i0 0
    BITFIELD f GET u0 0
    BITFIELD f GET x8 0
    BITFIELD f GET I8 0
    BITFIELD f GET u 0
    BITFIELD f GET <empty> 0
    BITFIELD f GET i08 0
    BITFIELD f GET i-8 0
    BITFIELD f GET i8\x00x 0
    BITFIELD f GET u8 -1
    BITFIELD f GET u8 abc
    BITFIELD f GET u8 #abc
    BITFIELD f GET u8 #
    BITFIELD f GET u8 #-1
    BITFIELD f GET u8 ##1
    BITFIELD f GET u8 1.5
    BITFIELD f GET u8 4294967296
    BITFIELD f GET u8 4294967295
    BITFIELD f GET i64 4294967295
    BITFIELD f GET u8 #536870912
    BITFIELD f GET u8 #536870911
    BITFIELD f GET i64 #9223372036854775807
    BITFIELD f GET i64 #-9223372036854775808
    BITFIELD f GET u32 #1152921504606846976
    BITFIELD f SET u8 4294967296 1
    BITFIELD f SET u8 0 abc
    BITFIELD f SET u8 0 1.5
    BITFIELD f SET u8 0 9223372036854775808
    BITFIELD f INCRBY u8 0 <empty>
    BITFIELD f SET i65 -1 abc
    BITFIELD f SET u8 -1 abc
    BITFIELD f GET u8 0 SET i65 0 1
    BITFIELD f GET u8 0 SET u8 0 x
    BITFIELD f OVERFLOW foo GET u8 0
    BITFIELD f OVERFLOW
    BITFIELD f GET u8 0 OVERFLOW
    BITFIELD f GET u8
    BITFIELD f GET
    BITFIELD f SET u8 0
    BITFIELD f INCRBY u8 0
    BITFIELD f FOO u8 0
    BITFIELD f GET u8 0 FOO
    BITFIELD f OVERFLOW sat\x00x INCRBY u2 0 100
    BITFIELD f get\x00x u8 0
    BITFIELD f
    BITFIELD
    BITFIELD f overflow wrap overflow fail overflow sat
    BITFIELD new OVERFLOW FAIL SET u2 100 5
    EXISTS new
    STRLEN new
    GET new
    BITFIELD new2 OVERFLOW FAIL SET u2 100 5 GET u8 0
    STRLEN new2
    SET short a
    BITFIELD short OVERFLOW FAIL INCRBY u8 100 1000
    GET short
    BITFIELD short GET u8 0 SET u8 0 98 GET u8 0
    GET short
    BITFIELD short SET u8 0 98
    GET short
    BITFIELD_RO f GET u8 0 GET i64 3
    BITFIELD_RO nokey GET u8 0
    BITFIELD_RO f SET u8 0 1
    BITFIELD_RO f INCRBY u8 0 1
    BITFIELD_RO f GET u8 0 SET u8 0 1
    BITFIELD_RO f SET u8 0 x
    BITFIELD_RO f SET i65 0 1
    BITFIELD_RO f OVERFLOW SAT GET u8 0
    BITFIELD_RO f OVERFLOW foo
    BITFIELD_RO f
    BITFIELD_RO
    BITFIELD_RO f GET u8 4294967296
    SET n 123
    BITFIELD n GET u8 0 SET u8 0 57 GET u16 0
    GET n
    SET t x EX 100000
    BITFIELD t SET u8 0 65
    PERSIST t
    GET t
    SET t2 x EX 100000
    BITFIELD t2 GET u8 0
    PERSIST t2
    SET t3 x EX 100000
    BITFIELD t3 OVERFLOW FAIL SET u2 0 9
    PERSIST t3
";

const LCS: &str = r"
    SET k1 ohmytext
    SET k2 mynewtext
    LCS k1 k2
    LCS k1 k2 LEN
    LCS k1 k2 len
    LCS k1 k2 IDX
    LCS k1 k2 idx
    LCS k1 k2 IDX MINMATCHLEN 4
    LCS k1 k2 IDX MINMATCHLEN 2
    LCS k1 k2 IDX MINMATCHLEN 5
    LCS k1 k2 IDX WITHMATCHLEN
    LCS k1 k2 IDX MINMATCHLEN 4 WITHMATCHLEN
    LCS k1 k2 WITHMATCHLEN IDX MINMATCHLEN 3
    LCS k1 k2 MINMATCHLEN -5 IDX
    LCS k1 k2 MINMATCHLEN 3 MINMATCHLEN 0 IDX
    LCS k1 k2 WITHMATCHLEN
    LCS k1 k2 MINMATCHLEN 4
    LCS k1 k2 LEN WITHMATCHLEN
    LCS k1 k2 LEN IDX
    LCS k1 k2 IDX LEN
    LCS k1 k2 LEN LEN
    LCS k1 k2 MINMATCHLEN
    LCS k1 k2 IDX MINMATCHLEN
    LCS k1 k2 MINMATCHLEN abc
    LCS k1 k2 MINMATCHLEN 1.5 IDX
    LCS k1 k2 FOO
    LCS k1 k2 IDX FOO
    LCS k1 k2 idx\x00x
    LCS k1 k2 MINMATCHLEN abc LEN IDX
    LCS k1 k2 LEN IDX MINMATCHLEN abc
    LCS k1 nokey
    LCS k1 nokey IDX
    LCS k1 nokey LEN
    LCS nokey nokey
    LCS nokey nokey2 IDX WITHMATCHLEN
    LCS nokey nokey2 LEN IDX
    LCS k1 k1
    LCS k1 k1 IDX WITHMATCHLEN
    LCS k2 k1 IDX WITHMATCHLEN
    LCS k1
    LCS
    SET e <empty>
    LCS e k1
    LCS e e IDX
    SET a1 abcabcabcXabc
    SET a2 XXabcabcYYabcZZ
    LCS a1 a2
    LCS a1 a2 IDX WITHMATCHLEN
    LCS a2 a1 IDX WITHMATCHLEN MINMATCHLEN 2
    SET b1 \x00\x01\x02\xff\x00
    SET b2 \x02\xff\x00\x00\x01
    LCS b1 b2
    LCS b1 b2 IDX WITHMATCHLEN
    SET n1 123456789
    SET n2 2468
    LCS n1 n2
    LCS n1 n2 IDX
    SET r1 aaaa
    SET r2 aa
    LCS r1 r2 IDX WITHMATCHLEN
    LCS r2 r1 IDX WITHMATCHLEN
    SET s1 xaxbxcx
    SET s2 abc
    LCS s1 s2 IDX WITHMATCHLEN
    LCS s2 s1 IDX WITHMATCHLEN
";

#[test]
fn setbit_getbit_match_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(
        ours.port(),
        redis.port(),
        "SETBIT/GETBIT",
        &script(SETBIT_GETBIT),
    );
}

#[test]
fn bitcount_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(ours.port(), redis.port(), "BITCOUNT", &script(BITCOUNT));
}

#[test]
fn bitpos_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(ours.port(), redis.port(), "BITPOS", &script(BITPOS));
}

#[test]
fn bitop_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(ours.port(), redis.port(), "BITOP", &script(BITOP));
}

#[test]
fn bitfield_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(ours.port(), redis.port(), "BITFIELD", &script(BITFIELD));
}

#[test]
fn lcs_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(ours.port(), redis.port(), "LCS", &script(LCS));
}

/// With `proto-max-bulk-len` at its minimum (1mb) on both: offsets whose byte is at or past
/// the limit are refused before anything is allocated; the last byte below it is usable. LCS
/// refuses a table larger than the limit.
#[test]
fn offsets_are_limited_by_proto_max_bulk_len() {
    require!("redis-server");
    let redis = RedisServer::start(&["--proto-max-bulk-len", "1mb"]);
    let ours = Server::start(&["--proto-max-bulk-len", "1mb"]);
    let mut commands = script(
        r"
        SETBIT x 8388608 1
        GETBIT x 8388608
        EXISTS x
        BITFIELD x GET u8 8388608
        BITFIELD x SET u8 8388608 1
        BITFIELD x SET u8 #1048576 1
        BITFIELD x GET u8 #1048575
        BITFIELD x SET u1 8388607 1
        STRLEN x
        DEL x
        BITFIELD x SET u8 8388600 1
        STRLEN x
        BITFIELD x SET u9 8388600 1
        BITFIELD x SET u16 8388600 1
        STRLEN x
        BITFIELD x SET i64 #131071 -1
        BITFIELD x GET i64 #131071 GET u8 8388607
        SETBIT y 8388607 1
        STRLEN y
        GETBIT y 8388607
        BITCOUNT y
        BITPOS y 1
        BITPOS y 0 -1
        BITOP NOT z y
        BITCOUNT z
        BITOP OR z y x
        BITCOUNT z
        DEL x y z
        ",
    );
    let a = vec![b'a'; 600];
    let b = vec![b'b'; 600];
    commands.push(vec![b"SET".to_vec(), b"l1".to_vec(), a]);
    commands.push(vec![b"SET".to_vec(), b"l2".to_vec(), b]);
    commands.extend(script(
        r"
        LCS l1 l2
        LCS l1 l2 LEN
        LCS l1 l2 IDX
        SET l3 abcdefghijklmnopqrstuvwxyz
        LCS l1 l3 LEN
        LCS l3 l1 IDX
        ",
    ));
    assert_same(ours.port(), redis.port(), "proto-max-bulk-len", &commands);
}

/// Keyspace hits and misses (`INFO stats`) after every read and write form: the sources of
/// `BITOP` and `LCS` and the keys of the read commands are lookups; the keys of writes are not.
#[test]
fn keyspace_hits_and_misses_match_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    let mut p = Pair::new(ours.port(), redis.port(), false);
    for cmd in script(
        r"
        SET a foo
        CONFIG RESETSTAT
        BITOP OR d a nokey
        BITOP NOT d2 nokey
        BITOP AND d3 a a
        SETBIT a 1 1
        SETBIT nokey2 1 0
        BITFIELD a GET u8 0
        BITFIELD nokey3 GET u8 0
        BITFIELD a SET u8 0 1
        BITFIELD_RO a GET u8 0
        BITFIELD_RO nokey GET u8 0
        BITCOUNT a
        BITCOUNT nokey
        BITPOS a 1
        BITPOS nokey 1
        GETBIT a 1
        GETBIT nokey 1
        LCS a nokey
        LCS a a IDX
        ",
    ) {
        p.both(&cmd);
    }
    let (a, b) = p.both(&[b"INFO".to_vec(), b"stats".to_vec()]);
    let field = |info: &[u8], name: &str| -> String {
        String::from_utf8_lossy(info)
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_default()
            .to_string()
    };
    for name in ["keyspace_hits", "keyspace_misses"] {
        assert_eq!(field(&a, name), field(&b, name), "{name}");
    }
}

/// Inside `MULTI`/`EXEC` (queued, run atomically, `BITOP` across shards), under `WATCH` (a
/// write that changes a watched key aborts the watcher's `EXEC`; one that changes nothing does
/// not), `OBJECT ENCODING` after a change, and `COMMAND GETKEYS`.
#[test]
fn transactions_watch_and_keys_match_redis() {
    require!("redis-server");
    compare_script(
        "bits/multi/watch",
        r"
        SET a foobar
        SET b abcdef
        MULTI
        SETBIT x 7 1
        GETBIT x 7
        BITFIELD x INCRBY u8 0 10 GET u8 0
        BITOP XOR d a b x
        BITCOUNT d
        BITPOS d 1
        BITFIELD_RO d GET i8 0
        LCS a b IDX WITHMATCHLEN
        SETBIT x -1 1
        EXEC
        MULTI
        BITOP NOT d
        BITFIELD x GET u64 0
        EXEC
        MULTI
        BITFIELD x GET i65 0
        SETBIT x
        EXEC
        WATCH a
        B:SETBIT a 0 1
        MULTI
        PING
        EXEC
        WATCH a
        B:SETBIT a 1 0
        MULTI
        PING
        EXEC
        WATCH a
        B:GETBIT a 1
        B:BITCOUNT a
        B:BITPOS a 0
        B:BITFIELD a GET u8 0
        B:BITFIELD_RO a GET u8 0
        B:LCS a b
        MULTI
        PING
        EXEC
        WATCH a
        B:BITFIELD a SET u8 0 1
        MULTI
        PING
        EXEC
        WATCH a
        B:BITFIELD a SET u8 0 1
        MULTI
        PING
        EXEC
        WATCH a
        B:BITFIELD a INCRBY u8 0 1
        MULTI
        PING
        EXEC
        WATCH d
        B:BITOP AND d a b
        MULTI
        PING
        EXEC
        WATCH nokey
        B:BITOP OR nokey nokey2
        MULTI
        PING
        EXEC
        WATCH b
        B:BITOP OR d b
        MULTI
        PING
        EXEC
        WATCH n
        B:SETBIT n 0 0
        MULTI
        PING
        EXEC
        SET i 12345
        SETBIT i 2 0
        OBJECT ENCODING i
        SET i 12345
        BITFIELD i INCRBY u8 0 1
        OBJECT ENCODING i
        SET s abc
        BITOP OR d2 s
        OBJECT ENCODING d2
        SETBIT new 3 1
        OBJECT ENCODING new
        BITFIELD new2 SET u8 0 49
        OBJECT ENCODING new2
        COMMAND GETKEYS SETBIT k 1 1
        COMMAND GETKEYS GETBIT k 1
        COMMAND GETKEYS BITCOUNT k
        COMMAND GETKEYS BITPOS k 1
        COMMAND GETKEYS BITOP AND dest k1 k2 k3
        COMMAND GETKEYS BITFIELD k GET u8 0
        COMMAND GETKEYS BITFIELD_RO k GET u8 0
        COMMAND GETKEYS LCS k1 k2 IDX
        ",
    );
}

/// `COMMAND INFO`'s name, arity, flags and key positions, as Redis 7.0 reports them.
#[test]
fn command_info_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    for resp3 in [false, true] {
        let mut p = Pair::new(ours.port(), redis.port(), resp3);
        for name in [
            "setbit",
            "getbit",
            "bitcount",
            "bitpos",
            "bitop",
            "bitfield",
            "bitfield_ro",
            "lcs",
        ] {
            let (a, b) = p.both(&[b"COMMAND".to_vec(), b"INFO".to_vec(), name.into()]);
            assert_eq!(
                first_fields(&a, 6),
                first_fields(&b, 6),
                "COMMAND INFO {name} (resp3: {resp3})\nours:  {:?}\nredis: {:?}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
    }
}

/// The raw bytes of the first `n` fields of the single entry of a `COMMAND INFO` reply.
fn first_fields(reply: &[u8], n: usize) -> Vec<Vec<u8>> {
    // `*1\r\n*10\r\n` (RESP2 and RESP3 alike), then the fields.
    let header_end = |b: &[u8]| b.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut rest = &reply[header_end(reply)..];
    rest = &rest[header_end(rest)..];
    let mut out = Vec::new();
    for _ in 0..n {
        let len = reply_len(rest).expect("complete field");
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

/// Seeded random streams of SETBIT / GETBIT / BITFIELD / BITOP / BITCOUNT / BITPOS (and GET /
/// STRLEN to see the values) over a few keys, applied to both servers. `BITS_SEED` and
/// `BITS_OPS` (default 600 commands) choose another stream.
struct Gen {
    rng: StdRng,
}

impl Gen {
    fn key(&mut self) -> String {
        format!("r{}", self.rng.random_range(0..4))
    }
    fn offset(&mut self) -> String {
        match self.rng.random_range(0..20) {
            0 => "-1".into(),
            1 => "x".into(),
            2 => self.rng.random_range(0..2000).to_string(),
            _ => self.rng.random_range(0..160).to_string(),
        }
    }
    fn index(&mut self) -> String {
        match self.rng.random_range(0..15) {
            0 => "a".into(),
            1 => "-9223372036854775808".into(),
            _ => self.rng.random_range(-40..40).to_string(),
        }
    }
    fn field_type(&mut self) -> String {
        let signed = self.rng.random_bool(0.5);
        match self.rng.random_range(0..30) {
            0 => "u64".into(),
            1 => "i65".into(),
            _ => {
                let bits = if signed {
                    self.rng.random_range(1..=64)
                } else {
                    self.rng.random_range(1..=63)
                };
                format!("{}{bits}", if signed { 'i' } else { 'u' })
            }
        }
    }
    fn field_offset(&mut self) -> String {
        if self.rng.random_range(0..5) == 0 {
            format!("#{}", self.rng.random_range(0..6))
        } else {
            self.rng.random_range(0..120).to_string()
        }
    }
    fn number(&mut self) -> String {
        match self.rng.random_range(0..12) {
            0 => "9223372036854775807".into(),
            1 => "-9223372036854775808".into(),
            2 => self.rng.random::<i64>().to_string(),
            3 => "x".into(),
            _ => self.rng.random_range(-300..300).to_string(),
        }
    }

    fn command(&mut self) -> Vec<String> {
        let s = |x: &str| x.to_string();
        match self.rng.random_range(0..100) {
            0..=19 => {
                let bit = if self.rng.random_range(0..20) == 0 {
                    s("2")
                } else {
                    self.rng.random_range(0..2).to_string()
                };
                vec![s("SETBIT"), self.key(), self.offset(), bit]
            }
            20..=27 => vec![s("GETBIT"), self.key(), self.offset()],
            28..=45 => {
                let ro = self.rng.random_range(0..6) == 0;
                let mut v = vec![s(if ro { "BITFIELD_RO" } else { "BITFIELD" }), self.key()];
                for _ in 0..self.rng.random_range(1..5) {
                    match self.rng.random_range(0..10) {
                        0..=2 => v.extend([s("GET"), self.field_type(), self.field_offset()]),
                        3..=4 => v.extend([
                            s("SET"),
                            self.field_type(),
                            self.field_offset(),
                            self.number(),
                        ]),
                        5..=7 => v.extend([
                            s("INCRBY"),
                            self.field_type(),
                            self.field_offset(),
                            self.number(),
                        ]),
                        _ => {
                            let kind = ["WRAP", "SAT", "FAIL", "sat"];
                            v.extend([s("OVERFLOW"), s(kind[self.rng.random_range(0..kind.len())])])
                        }
                    }
                }
                v
            }
            46..=57 => {
                let ops = ["AND", "OR", "XOR", "NOT", "or"];
                let op = ops[self.rng.random_range(0..ops.len())];
                let n = if op == "NOT" {
                    1
                } else {
                    self.rng.random_range(1..4)
                };
                let mut v = vec![s("BITOP"), s(op), self.key()];
                for _ in 0..n {
                    v.push(self.key());
                }
                v
            }
            58..=72 => {
                let mut v = vec![s("BITCOUNT"), self.key()];
                if self.rng.random_bool(0.7) {
                    v.extend([self.index(), self.index()]);
                    match self.rng.random_range(0..4) {
                        0 => v.push(s("BIT")),
                        1 => v.push(s("BYTE")),
                        _ => {}
                    }
                }
                v
            }
            73..=90 => {
                let bit = if self.rng.random_range(0..20) == 0 {
                    s("3")
                } else {
                    self.rng.random_range(0..2).to_string()
                };
                let mut v = vec![s("BITPOS"), self.key(), bit];
                match self.rng.random_range(0..4) {
                    0 => {}
                    1 => v.push(self.index()),
                    2 => v.extend([self.index(), self.index()]),
                    _ => {
                        let unit = if self.rng.random_bool(0.5) {
                            "BIT"
                        } else {
                            "BYTE"
                        };
                        v.extend([self.index(), self.index(), s(unit)]);
                    }
                }
                v
            }
            91..=94 => vec![s("GET"), self.key()],
            95..=96 => vec![s("STRLEN"), self.key()],
            97 => {
                let vals = ["foobar", "\u{0}\u{1}", "12345", "ÿÿ"];
                let val = vals[self.rng.random_range(0..vals.len())];
                vec![s("SET"), self.key(), s(val)]
            }
            98 => vec![s("DEL"), self.key()],
            _ => vec![s("EXISTS"), self.key()],
        }
    }
}

#[test]
fn random_bit_operations_match_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    let seed: u64 = std::env::var("BITS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xb175_5eed);
    let ops: usize = std::env::var("BITS_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    eprintln!("bits_diff seed {seed}, {ops} commands (rerun with BITS_SEED={seed} BITS_OPS={ops})");
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
    };
    let commands: Vec<Vec<Vec<u8>>> = (0..ops)
        .map(|_| g.command().into_iter().map(String::into_bytes).collect())
        .collect();
    assert_same(ours.port(), redis.port(), "random", &commands);
}

#[test]
fn unchanged_writes_encode_raw_and_signal_like_redis() {
    require!("redis-server");
    shardcache_tests::compare_script(
        "bit writes that change nothing",
        "
        SET n 123
        SETBIT n 0 0
        OBJECT ENCODING n
        SET m 5
        BITFIELD m SET u8 0 53
        OBJECT ENCODING m
        SET k 5
        BITFIELD k OVERFLOW FAIL SET u2 0 7
        OBJECT ENCODING k
        SET w 1
        WATCH w
        B: SETBIT w 0 0
        MULTI
        GET w
        EXEC
        WATCH f
        B: BITFIELD f OVERFLOW FAIL SET u2 100 7
        MULTI
        STRLEN f
        EXEC
        SET g ab
        WATCH g
        B: BITFIELD g OVERFLOW FAIL SET u2 0 7
        MULTI
        GET g
        EXEC
        SET h ab
        WATCH h
        B: BITFIELD h SET u8 0 97
        MULTI
        GET h
        EXEC
        ",
    );
}
