//! Keyspace commands.

use bytes::Bytes;

use super::{CmdResult, Ctx};

/// Borrowed key slices of `args[from..]`, for the multi-key store calls.
pub fn key_slices(args: &[Bytes]) -> smallvec::SmallVec<[&[u8]; 8]> {
    args.iter().map(|a| &a[..]).collect()
}

/// `DEL key [key ...]`: atomic across shards (every involved shard is locked, in ascending
/// order, for the whole deletion).
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = if args.len() == 2 {
        usize::from(ctx.shared.store.delete(ctx.client.db, &args[1]))
    } else {
        let keys = key_slices(&args[1..]);
        ctx.shared.store.write_many(ctx.client.db, &keys, |slots| {
            (0..slots.len())
                .filter(|&i| slots.slot(i).remove().is_some())
                .count()
        })
    };
    ctx.int(n as i64)
}

/// `EXISTS key [key ...]`: a key named twice counts twice, as in Redis.
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let db = ctx.client.db;
    let n = args[1..]
        .iter()
        .filter(|k| ctx.shared.store.read(db, k, |e| e.is_some()))
        .count();
    ctx.int(n as i64)
}
