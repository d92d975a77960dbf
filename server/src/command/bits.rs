//! Bit commands on strings (`SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`, `BITOP`, `BITFIELD`,
//! `BITFIELD_RO`) and `LCS`, with Redis 7.0's semantics, argument checks and error texts.
//!
//! Bits are numbered from the most significant bit of the first byte, as in Redis. A missing
//! key reads as an empty string; reading past the end of a string reads zeros. Writes keep the
//! key's TTL (`SETBIT`, `BITFIELD`), except `BITOP`, whose destination is overwritten and loses
//! it, as in Redis. Offsets are checked against `proto-max-bulk-len` before anything is
//! allocated. A `SETBIT` or `BITFIELD` that changes no byte and does not grow the string
//! stores nothing (so, as in Redis 7.0, it does not touch `WATCH`ers).
//!
//! The order of checks follows Redis 7.0 exactly where it shows in replies: `BITCOUNT` of a
//! missing key answers 0 before its arguments are parsed, `BITPOS` checks the bit argument,
//! then answers for a missing key, then parses the range; `BITFIELD` parses every operation
//! before touching the key.

use std::borrow::Cow;

use bytes::Bytes;
use shardcache_protocol::reply;
use shardcache_storage::Expiry;

use super::keys::key_slices;
use super::{parse_i64, parse_i64_strict, CmdError, CmdResult, Ctx};

const BIT_OFFSET_ERR: CmdError = CmdError(Cow::Borrowed(
    "ERR bit offset is not an integer or out of range",
));
const BIT_VALUE_ERR: CmdError =
    CmdError(Cow::Borrowed("ERR bit is not an integer or out of range"));
const BITFIELD_TYPE_ERR: CmdError = CmdError(Cow::Borrowed(
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
));

/// What C's string functions see of an argument: the bytes before the first NUL (Redis
/// compares option names with `strcasecmp`).
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

/// `strcasecmp(arg, word) == 0`.
fn is(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `getBitOffsetFromArgument`: a non-negative integer whose byte (`offset >> 3`) is
/// below `proto-max-bulk-len`. With `hash_bits`, `#n` means `n * bits` (BITFIELD).
fn bit_offset(arg: &[u8], hash_bits: Option<u32>, max_bulk: u64) -> Result<u64, CmdError> {
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) if bits > 0 => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    // Redis multiplies in `long long` without an overflow check; wrapping is what it does.
    let offset = parse_i64_strict(digits)
        .ok_or(BIT_OFFSET_ERR)?
        .wrapping_mul(mul);
    if offset < 0 || (offset as u64 >> 3) >= max_bulk {
        return Err(BIT_OFFSET_ERR);
    }
    Ok(offset as u64)
}

/// The bit at `offset` (0 past the end).
fn bit_at(v: &[u8], offset: u64) -> u8 {
    let byte = offset >> 3;
    usize::try_from(byte)
        .ok()
        .and_then(|b| v.get(b))
        .map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

/// `SETBIT key offset value`: the bit's previous value. Keeps the TTL.
pub fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max = ctx.shared.config.proto_max_bulk_len.bytes();
    let offset = bit_offset(&args[2], None, max)?;
    let on = parse_i64_strict(&args[3]).ok_or(BIT_VALUE_ERR)?;
    if on & !1 != 0 {
        return Err(BIT_VALUE_ERR);
    }
    let on = on as u8;
    // Below proto-max-bulk-len, so it fits in memory's address space.
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u32;
    let old = ctx.shared.store.write(ctx.client.db, &args[1], |slot| {
        let cur = slot.get();
        let old = cur.map_or(0, |v| bit_at(v, offset));
        if cur.is_some_and(|v| byte < v.len()) && old == on {
            // Nothing changes (and Redis 7.0 signals nothing), but the string becomes `raw`.
            slot.make_raw();
            return old;
        }
        let cur = cur.unwrap_or_default();
        let mut v = Vec::with_capacity(cur.len().max(byte + 1));
        v.extend_from_slice(cur);
        if v.len() <= byte {
            v.resize(byte + 1, 0);
        }
        v[byte] = (v[byte] & !(1 << shift)) | (on << shift);
        slot.set_vec(v, Expiry::Keep);
        old
    });
    ctx.int(i64::from(old))
}

/// `GETBIT key offset`.
pub fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max = ctx.shared.config.proto_max_bulk_len.bytes();
    let offset = bit_offset(&args[2], None, max)?;
    let bit = ctx.shared.store.read(ctx.client.db, &args[1], |e| {
        e.map_or(0, |e| bit_at(e.value, offset))
    });
    ctx.int(i64::from(bit))
}

/// Set bits in `v`.
fn popcount(v: &[u8]) -> u64 {
    let mut chunks = v.chunks_exact(8);
    let mut n: u64 = (&mut chunks)
        .map(|c| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or_default()).count_ones()))
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>();
    n
}

/// Set bits from bit `first` to bit `last`, both included and inside `v`.
fn count_bits(v: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut n = popcount(&v[fb..=lb]);
    // Bits of the edge bytes outside the range.
    let before = !(0xFFu32 >> (first & 7)) as u8;
    let after = (0xFFu32 >> ((last & 7) + 1)) as u8;
    n -= u64::from((v[fb] & before).count_ones());
    n -= u64::from((v[lb] & after).count_ones());
    n
}

/// The first bit equal to `bit` from bit `first` to bit `last` (both included, inside `v`).
fn first_bit(v: &[u8], first: u64, last: u64, bit: u8) -> Option<u64> {
    let skip_byte = if bit == 1 { 0u8 } else { 0xFF };
    let skip_word = if bit == 1 { 0u64 } else { u64::MAX };
    let mut pos = first;
    while pos <= last {
        let byte = (pos >> 3) as usize;
        if pos & 63 == 0 && last - pos >= 63 {
            let word = u64::from_ne_bytes(v[byte..byte + 8].try_into().unwrap_or_default());
            if word == skip_word {
                pos += 64;
                continue;
            }
        }
        if pos & 7 == 0 && last - pos >= 7 && v[byte] == skip_byte {
            pos += 8;
            continue;
        }
        if (v[byte] >> (7 - (pos & 7))) & 1 == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Whether a range is in bits (`BIT`) or bytes (`BYTE`, the default).
fn parse_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::SYNTAX)
    }
}

/// Redis's range normalization for BITCOUNT/BITPOS: negative indexes count from the end, then
/// both are clamped into the string. `len` is in the range's unit. `None`: empty range.
fn clamp_range(len: i64, mut start: i64, mut end: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    (start <= end).then_some((start, end))
}

/// Runs `f` on the key's value (`None`: missing): under the shard's read lock for a small
/// (inline) value, after releasing it for a value in its own buffer (whose handle is a
/// reference count), so a count or search over a large bitmap does not hold up the writers of
/// its shard.
fn with_value<R>(ctx: &Ctx<'_>, key: &[u8], f: impl Fn(Option<&[u8]>) -> R) -> R {
    let got = ctx.shared.store.read(ctx.client.db, key, |e| match e {
        Some(e) if e.is_external() => Err(e.value_bytes()),
        e => Ok(f(e.map(|e| e.value))),
    });
    match got {
        Ok(r) => r,
        Err(large) => f(Some(&large)),
    }
}

/// A parsed BITCOUNT range: start, end, in bits (`BIT`) rather than bytes.
type CountRange = Option<(i64, i64, bool)>;

/// `BITCOUNT key [start end [BYTE|BIT]]`.
pub fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Parsed first, reported only for an existing key: Redis 7.0 answers 0 for a missing key
    // before it reads the other arguments.
    let range: Result<CountRange, CmdError> = match args.len() {
        2 => Ok(None),
        4 | 5 => (|| {
            let start = parse_i64(&args[2])?;
            let end = parse_i64(&args[3])?;
            let isbit = match args.get(4) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            Ok(Some((start, end, isbit)))
        })(),
        _ => Err(CmdError::SYNTAX),
    };
    let n = with_value(ctx, &args[1], |v| match v {
        None => Ok(0),
        Some(v) => count_in_range(v, range.clone()?),
    })?;
    ctx.int(n as i64)
}

/// BITCOUNT of an existing value.
fn count_in_range(v: &[u8], range: CountRange) -> Result<u64, CmdError> {
    let Some((start, end, isbit)) = range else {
        return Ok(popcount(v));
    };
    if start < 0 && end < 0 && start > end {
        return Ok(0);
    }
    let len = v.len() as i64;
    let total = if isbit { len << 3 } else { len };
    let Some((s, e)) = clamp_range(total, start, end) else {
        return Ok(0);
    };
    let (first, last) = if isbit {
        (s as u64, e as u64)
    } else {
        (s as u64 * 8, e as u64 * 8 + 7)
    };
    Ok(count_bits(v, first, last))
}

/// A parsed BITPOS range: start, end if given, in bits (`BIT`) rather than bytes.
type PosRange = Option<(i64, Option<i64>, bool)>;

/// `BITPOS key bit [start [end [BYTE|BIT]]]`.
pub fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = parse_i64(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::msg("ERR The bit argument must be 1 or 0."));
    }
    let bit = bit as u8;
    // In Redis's parsing order (start, unit, end), reported only for an existing key.
    let range: Result<PosRange, CmdError> = match args.len() {
        3 => Ok(None),
        4..=6 => (|| {
            let start = parse_i64(&args[3])?;
            let isbit = match args.get(5) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            let end = args.get(4).map(|a| parse_i64(a)).transpose()?;
            Ok(Some((start, end, isbit)))
        })(),
        _ => Err(CmdError::SYNTAX),
    };
    let pos = with_value(ctx, &args[1], |v| match v {
        // A missing key is an infinite run of zeros.
        None => Ok(if bit == 1 { -1 } else { 0 }),
        Some(v) => Ok(position_in_range(v, bit, range.clone()?)),
    })?;
    ctx.int(pos)
}

/// BITPOS of an existing value.
fn position_in_range(v: &[u8], bit: u8, range: PosRange) -> i64 {
    let len = v.len() as i64;
    let (start, end, isbit) = range.unwrap_or((0, None, false));
    let end_given = end.is_some();
    let end = end.unwrap_or(len - 1);
    let total = if isbit { len << 3 } else { len };
    let Some((s, e)) = clamp_range(total, start, end) else {
        return -1;
    };
    let (first, last) = if isbit {
        (s as u64, e as u64)
    } else {
        (s as u64 * 8, e as u64 * 8 + 7)
    };
    match first_bit(v, first, last, bit) {
        Some(p) => p as i64,
        // Looking for a clear bit with no end given, the string is taken as padded with zeros
        // on the right.
        None if bit == 0 && !end_given => last as i64 + 1,
        None => -1,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: the destination's length. Atomic across
/// shards: every involved shard is write-locked for the whole operation. An empty result
/// deletes the destination; otherwise it is overwritten without a TTL.
pub fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let name = &args[1];
    let op = if is(name, "and") {
        BitOp::And
    } else if is(name, "or") {
        BitOp::Or
    } else if is(name, "xor") {
        BitOp::Xor
    } else if is(name, "not") {
        BitOp::Not
    } else {
        return Err(CmdError::SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let store = &ctx.shared.store;
    let db = ctx.client.db;
    // Redis reads the sources with `lookupKeyRead`: a keyspace hit or miss each, and an
    // LRU/LFU touch. The write below does neither, so the lookups are made here first (their
    // count can disagree with the write's snapshot only if a source changes in between).
    let sources = key_slices(&args[3..]);
    store.read_many(db, &sources, |r| {
        for i in 0..r.len() {
            r.get(i);
        }
    });
    let keys = key_slices(&args[2..]);
    let len = store.write_many(db, &keys, |slots| {
        let n = slots.len();
        let maxlen = (1..n)
            .map(|i| slots.slot(i).get().map_or(0, <[u8]>::len))
            .max()
            .unwrap_or(0);
        if maxlen == 0 {
            slots.slot(0).remove();
            return 0;
        }
        let mut res = vec![0u8; maxlen];
        {
            let s = slots.slot(1);
            let v = s.get().unwrap_or_default();
            res[..v.len()].copy_from_slice(v);
        }
        if op == BitOp::Not {
            res.iter_mut().for_each(|b| *b = !*b);
        }
        for i in 2..n {
            let s = slots.slot(i);
            let v = s.get().unwrap_or_default();
            let (head, tail) = res.split_at_mut(v.len());
            match op {
                BitOp::And => {
                    head.iter_mut().zip(v).for_each(|(r, b)| *r &= b);
                    tail.fill(0);
                }
                BitOp::Or => head.iter_mut().zip(v).for_each(|(r, b)| *r |= b),
                BitOp::Xor => head.iter_mut().zip(v).for_each(|(r, b)| *r ^= b),
                BitOp::Not => {}
            }
        }
        slots.slot(0).set_vec(res, Expiry::Persist);
        maxlen
    });
    ctx.int(len as i64)
}

// ------------------------------------------------------------------------------- BITFIELD

/// What `BITFIELD` does when a value does not fit its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

/// One parsed `BITFIELD` operation.
#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    offset: u64,
    /// SET value or INCRBY increment.
    value: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64`, `u1`..`u63`.
fn bitfield_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(BITFIELD_TYPE_ERR),
    };
    let bits = parse_i64_strict(c_str(&arg[1..])).ok_or(BITFIELD_TYPE_ERR)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(BITFIELD_TYPE_ERR);
    }
    Ok((signed, bits as u32))
}

/// Parses every operation, as Redis does before it looks at the key. Also returns whether
/// all are `GET`s and the highest bit a write reaches.
fn parse_bitfield(args: &[Bytes], max_bulk: u64) -> Result<(Vec<Field>, bool, u64), CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest = 0u64;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j];
        let op = if is(sub, "get") && remaining >= 2 {
            FieldOp::Get
        } else if is(sub, "set") && remaining >= 3 {
            FieldOp::Set
        } else if is(sub, "incrby") && remaining >= 3 {
            FieldOp::IncrBy
        } else if is(sub, "overflow") && remaining >= 1 {
            let kind = &args[j + 1];
            overflow = if is(kind, "wrap") {
                Overflow::Wrap
            } else if is(kind, "sat") {
                Overflow::Sat
            } else if is(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::SYNTAX);
        };
        let (signed, bits) = bitfield_type(&args[j + 1])?;
        let offset = bit_offset(&args[j + 2], Some(bits), max_bulk)?;
        let mut value = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + u64::from(bits) - 1);
            value = parse_i64(&args[j + 3])?;
        }
        fields.push(Field {
            op,
            offset,
            value,
            signed,
            bits,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok((fields, readonly, highest))
}

/// The `bits`-wide unsigned integer at bit `offset` (zeros past the end of `v`).
fn get_unsigned(v: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |acc, j| (acc << 1) | u64::from(bit_at(v, offset + j)))
}

/// The `bits`-wide two's complement integer at bit `offset`.
fn get_signed(v: &[u8], offset: u64, bits: u32) -> i64 {
    let u = get_unsigned(v, offset, bits);
    if bits < 64 && u & (1u64 << (bits - 1)) != 0 {
        (u | (u64::MAX << bits)) as i64
    } else {
        u as i64
    }
}

/// Writes the low `bits` bits of `value` at bit `offset`; `v` is long enough.
fn set_bits(v: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let bit = ((value >> (u64::from(bits) - 1 - j)) & 1) as u8;
        let pos = offset + j;
        let byte = (pos >> 3) as usize;
        let shift = 7 - (pos & 7);
        v[byte] = (v[byte] & !(1 << shift)) | (bit << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` overflows (1) or underflows
/// (-1) a `bits`-wide unsigned integer, and the value to store under WRAP/SAT.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        (1, limit)
    } else if incr < 0 && incr < minincr {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            _ => 0,
        };
        (-1, limit)
    } else {
        (0, 0)
    }
}

/// Redis's `checkSignedBitfieldOverflow`, with its wrapping arithmetic.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        (1, limit)
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => min,
            Overflow::Fail => 0,
        };
        (-1, limit)
    } else {
        (0, 0)
    }
}

/// Runs a SET or INCRBY on `v` (long enough): the reply (`None` for a FAIL overflow) and
/// whether the stored bits changed.
fn apply_write(v: &mut [u8], f: &Field) -> (Option<i64>, bool) {
    if f.signed {
        let old = get_signed(v, f.offset, f.bits);
        let (overflow, new, reply) = if f.op == FieldOp::IncrBy {
            let (o, w) = signed_overflow(old, f.value, f.bits, f.overflow);
            let new = if o != 0 { w } else { old.wrapping_add(f.value) };
            (o, new, new)
        } else {
            let (o, w) = signed_overflow(f.value, 0, f.bits, f.overflow);
            (o, if o != 0 { w } else { f.value }, old)
        };
        if overflow != 0 && f.overflow == Overflow::Fail {
            return (None, false);
        }
        set_bits(v, f.offset, f.bits, new as u64);
        (Some(reply), old != new)
    } else {
        let old = get_unsigned(v, f.offset, f.bits);
        let (overflow, new, reply) = if f.op == FieldOp::IncrBy {
            let (o, w) = unsigned_overflow(old, f.value, f.bits, f.overflow);
            let new = if o != 0 {
                w
            } else {
                old.wrapping_add(f.value as u64)
            };
            (o, new, new)
        } else {
            let (o, w) = unsigned_overflow(f.value as u64, 0, f.bits, f.overflow);
            (o, if o != 0 { w } else { f.value as u64 }, old)
        };
        if overflow != 0 && f.overflow == Overflow::Fail {
            return (None, false);
        }
        set_bits(v, f.offset, f.bits, new);
        (Some(reply as i64), old != new)
    }
}

/// A GET's reply.
fn apply_get(v: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed(v, f.offset, f.bits)
    } else {
        get_unsigned(v, f.offset, f.bits) as i64
    }
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`. Keeps the TTL.
pub fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

/// `BITFIELD_RO key [GET type offset] ...`.
pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[Bytes], ro_command: bool) -> CmdResult {
    let max = ctx.shared.config.proto_max_bulk_len.bytes();
    let (fields, readonly, highest) = parse_bitfield(args, max)?;
    let store = &ctx.shared.store;
    let db = ctx.client.db;
    let replies: Vec<Option<i64>> = if readonly {
        store.read(db, &args[1], |e| {
            let v = e.map_or(&b""[..], |e| e.value);
            fields.iter().map(|f| Some(apply_get(v, f))).collect()
        })
    } else if ro_command {
        return Err(CmdError::msg(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    } else {
        // Below proto-max-bulk-len, checked while parsing.
        let need = (highest >> 3) as usize + 1;
        store.write(db, &args[1], |slot| {
            let cur = slot.get();
            // Like Redis, the key is created, or padded to the farthest bit written, even if
            // every write then fails its overflow check; as Redis 7.0, only a write that
            // changes bits counts as a modification (for `WATCH`).
            let padded = !matches!(cur, Some(c) if c.len() >= need);
            let mut bits_changed = false;
            let mut succeeded = false;
            let cur = cur.unwrap_or_default();
            let mut v = Vec::with_capacity(cur.len().max(need));
            v.extend_from_slice(cur);
            if v.len() < need {
                v.resize(need, 0);
            }
            let replies = fields
                .iter()
                .map(|f| {
                    if f.op == FieldOp::Get {
                        Some(apply_get(&v, f))
                    } else {
                        let (r, c) = apply_write(&mut v, f);
                        bits_changed |= c;
                        succeeded |= r.is_some();
                        r
                    }
                })
                .collect();
            if bits_changed || (padded && succeeded) {
                slot.set_vec(v, Expiry::Keep);
            } else if padded {
                slot.set_vec_quietly(v, Expiry::Keep);
            } else {
                // No bit changed: Redis 7.0 signals no modification, but the string is `raw`.
                slot.make_raw();
            }
            replies
        })
    };
    reply::array_len(ctx.out, replies.len());
    for r in replies {
        match r {
            Some(n) => ctx.int(n)?,
            None => ctx.null()?,
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ LCS

/// One run of matching bytes found by `LCS ... IDX`: inclusive ranges in each string.
#[derive(Debug, PartialEq, Eq)]
struct Match {
    a: (u32, u32),
    b: (u32, u32),
    len: u32,
}

/// The longest common subsequence of `a` and `b` by Redis's dynamic programming, and, when
/// `trace`, the subsequence and its runs (from the end, as Redis emits them) of at least
/// `minlen` bytes. `table` is the `(a.len()+1) * (b.len()+1)` scratch table.
fn lcs(
    a: &[u8],
    b: &[u8],
    table: &mut [u32],
    trace: bool,
    minlen: u64,
) -> (u32, Vec<u8>, Vec<Match>) {
    let (alen, blen) = (a.len(), b.len());
    let w = blen + 1;
    for i in 0..=alen {
        for j in 0..=blen {
            table[i * w + j] = if i == 0 || j == 0 {
                0
            } else if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    let mut result = Vec::new();
    let mut matches = Vec::new();
    if !trace {
        return (total, result, matches);
    }
    result.resize(total as usize, 0);
    let mut idx = total as usize;
    // `alen` as the start means no run in progress, as in Redis.
    let none = alen as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (none, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == none {
                a_start = (i - 1) as u32;
                a_end = (i - 1) as u32;
                b_start = (j - 1) as u32;
                b_end = (j - 1) as u32;
            } else if a_start as usize == i && b_start as usize == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != none {
                emit = true;
            }
        }
        if emit {
            let len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if minlen == 0 || u64::from(len) >= minlen {
                matches.push(Match {
                    a: (a_start, a_end),
                    b: (b_start, b_end),
                    len,
                });
            }
            a_start = none;
        }
    }
    (total, result, matches)
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`.
pub fn lcs_command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let keys = key_slices(&args[1..3]);
    // Copied (or referenced) out of the store, so no lock is held while computing.
    let (a, b) = ctx.shared.store.read_many(ctx.client.db, &keys, |r| {
        let v = |i| r.get(i).map_or_else(Bytes::new, |e| e.value_bytes());
        (v(0), v(1))
    });
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let more = args.len() - 1 - j;
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && more > 0 {
            minmatchlen = parse_i64(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    if getlen && getidx {
        return Err(CmdError::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(CmdError::msg("ERR String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    let failed =
        || CmdError::msg("ERR Insufficient memory, failed allocating transient memory for LCS");
    let bytes = cells.checked_mul(4).ok_or_else(failed)?;
    if bytes > ctx.shared.config.proto_max_bulk_len.bytes() {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let cells = usize::try_from(cells).map_err(|_| failed())?;
    let mut table: Vec<u32> = Vec::new();
    table.try_reserve_exact(cells).map_err(|_| failed())?;
    table.resize(cells, 0);
    let trace = getidx || !getlen;
    let (total, result, matches) = lcs(&a, &b, &mut table, trace, minmatchlen as u64);
    drop(table);
    let v = ctx.client.version;
    let out = &mut *ctx.out;
    if getidx {
        reply::map_len(out, 2, v);
        reply::bulk(out, b"matches");
        reply::array_len(out, matches.len());
        for m in &matches {
            reply::array_len(out, 2 + usize::from(withmatchlen));
            reply::array_len(out, 2);
            reply::integer(out, i64::from(m.a.0));
            reply::integer(out, i64::from(m.a.1));
            reply::array_len(out, 2);
            reply::integer(out, i64::from(m.b.0));
            reply::integer(out, i64::from(m.b.1));
            if withmatchlen {
                reply::integer(out, i64::from(m.len));
            }
        }
        reply::bulk(out, b"len");
        reply::integer(out, i64::from(total));
    } else if getlen {
        reply::integer(out, i64::from(total));
    } else {
        reply::bulk(out, &result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_redis() {
        let max = 512 * 1024 * 1024;
        assert_eq!(bit_offset(b"0", None, max), Ok(0));
        assert_eq!(bit_offset(b"4294967295", None, max), Ok(4_294_967_295));
        assert_eq!(bit_offset(b"4294967296", None, max), Err(BIT_OFFSET_ERR));
        assert_eq!(bit_offset(b"-1", None, max), Err(BIT_OFFSET_ERR));
        assert_eq!(bit_offset(b"#3", None, max), Err(BIT_OFFSET_ERR));
        assert_eq!(bit_offset(b"#3", Some(8), max), Ok(24));
        assert_eq!(bit_offset(b"#-1", Some(8), max), Err(BIT_OFFSET_ERR));
        assert_eq!(bit_offset(b"1.5", None, max), Err(BIT_OFFSET_ERR));
    }

    #[test]
    fn bitfield_types() {
        assert_eq!(bitfield_type(b"i64"), Ok((true, 64)));
        assert_eq!(bitfield_type(b"u63"), Ok((false, 63)));
        assert_eq!(bitfield_type(b"u1"), Ok((false, 1)));
        for bad in [&b"u64"[..], b"i65", b"i0", b"x8", b"", b"i", b"I8", b"i08"] {
            assert_eq!(bitfield_type(bad), Err(BITFIELD_TYPE_ERR), "{bad:?}");
        }
    }

    #[test]
    fn fields_round_trip_and_overflow() {
        let mut v = vec![0u8; 3];
        set_bits(&mut v, 7, 5, 23);
        assert_eq!(v[..2], [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&v, 7, 5), 23);
        set_bits(&mut v, 0, 8, (-3i64) as u64);
        assert_eq!(get_signed(&v, 0, 8), -3);
        assert_eq!(get_signed(&v, 0, 64), get_unsigned(&v, 0, 64) as i64);
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (1, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (1, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (-1, 0));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Wrap), (-1, 251));
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), (1, -128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (-1, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (1, i64::MIN)
        );
        assert_eq!(
            signed_overflow(i64::MIN, -1, 64, Overflow::Sat),
            (-1, i64::MIN)
        );
        assert_eq!(signed_overflow(5, 3, 64, Overflow::Fail), (0, 0));
    }

    #[test]
    fn counting_and_searching() {
        let v = b"foobar";
        assert_eq!(popcount(v), 26);
        assert_eq!(count_bits(v, 8, 15), 6);
        assert_eq!(count_bits(v, 5, 30), 17);
        let v = [0xFFu8, 0xF0, 0x00];
        assert_eq!(first_bit(&v, 0, 23, 0), Some(12));
        assert_eq!(first_bit(&v, 0, 23, 1), Some(0));
        assert_eq!(first_bit(&v, 12, 23, 1), None);
        let long = [0u8; 40];
        assert_eq!(first_bit(&long, 3, 319, 1), None);
        assert_eq!(first_bit(&long, 3, 319, 0), Some(3));
    }

    #[test]
    fn lcs_matches_redis_example() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let mut t = vec![0u32; (a.len() + 1) * (b.len() + 1)];
        let (n, s, m) = lcs(a, b, &mut t, true, 0);
        assert_eq!((n, &s[..]), (6, &b"mytext"[..]));
        assert_eq!(
            m,
            vec![
                Match {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                },
                Match {
                    a: (2, 3),
                    b: (0, 1),
                    len: 2
                },
            ]
        );
    }
}
