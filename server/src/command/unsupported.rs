//! Commands Redis has that shardcache deliberately lacks, and why. They answer
//! `-ERR shardcache does not support '<name>': <reason> (see README: What shardcache is not)`
//! instead of Redis's generic "unknown command", so a user learns it is a design decision,
//! not a bug. The table is the list the README refers to.

/// Why a family of commands is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// SAVE, BGSAVE…
    Persistence,
    /// REPLICAOF, SYNC…
    Replication,
    /// EVAL, FUNCTION…
    Scripting,
    /// MULTI, EXEC, WATCH…
    /// SUBSCRIBE, PUBLISH…
    PubSub,
    /// CLUSTER…
    Cluster,
    /// Lists, hashes, sets, sorted sets, streams, HyperLogLog, geo.
    NonStringType,
}

impl Reason {
    /// The explanation shown to the client.
    pub fn text(self) -> &'static str {
        match self {
            Reason::Persistence => "shardcache is a cache and keeps nothing on disk",
            Reason::Replication => "shardcache has no replication (scale out with a proxy)",
            Reason::Scripting => "shardcache runs no scripts",
            Reason::PubSub => "shardcache has no pub/sub",
            Reason::Cluster => "shardcache has no cluster mode (use a proxy such as twemproxy)",
            Reason::NonStringType => "shardcache is a string-only cache",
        }
    }
}

use Reason::*;

/// Every deliberately unsupported command, sorted by name.
pub static UNSUPPORTED: &[(&str, Reason)] = &[
    ("asking", Cluster),
    ("bgrewriteaof", Persistence),
    ("bgsave", Persistence),
    ("blmove", NonStringType),
    ("blmpop", NonStringType),
    ("blpop", NonStringType),
    ("brpop", NonStringType),
    ("brpoplpush", NonStringType),
    ("bzmpop", NonStringType),
    ("bzpopmax", NonStringType),
    ("bzpopmin", NonStringType),
    ("cluster", Cluster),
    ("eval", Scripting),
    ("eval_ro", Scripting),
    ("evalsha", Scripting),
    ("evalsha_ro", Scripting),
    ("failover", Replication),
    ("fcall", Scripting),
    ("fcall_ro", Scripting),
    ("geoadd", NonStringType),
    ("geodist", NonStringType),
    ("geohash", NonStringType),
    ("geopos", NonStringType),
    ("georadius", NonStringType),
    ("georadiusbymember", NonStringType),
    ("geosearch", NonStringType),
    ("geosearchstore", NonStringType),
    ("hdel", NonStringType),
    ("hexists", NonStringType),
    ("hget", NonStringType),
    ("hgetall", NonStringType),
    ("hincrby", NonStringType),
    ("hincrbyfloat", NonStringType),
    ("hkeys", NonStringType),
    ("hlen", NonStringType),
    ("hmget", NonStringType),
    ("hmset", NonStringType),
    ("hrandfield", NonStringType),
    ("hscan", NonStringType),
    ("hset", NonStringType),
    ("hsetnx", NonStringType),
    ("hstrlen", NonStringType),
    ("hvals", NonStringType),
    ("lastsave", Persistence),
    ("lindex", NonStringType),
    ("linsert", NonStringType),
    ("llen", NonStringType),
    ("lmove", NonStringType),
    ("lmpop", NonStringType),
    ("lpop", NonStringType),
    ("lpos", NonStringType),
    ("lpush", NonStringType),
    ("lpushx", NonStringType),
    ("lrange", NonStringType),
    ("lrem", NonStringType),
    ("lset", NonStringType),
    ("ltrim", NonStringType),
    ("pfadd", NonStringType),
    ("pfcount", NonStringType),
    ("pfmerge", NonStringType),
    ("psubscribe", PubSub),
    ("psync", Replication),
    ("publish", PubSub),
    ("pubsub", PubSub),
    ("punsubscribe", PubSub),
    ("readonly", Cluster),
    ("readwrite", Cluster),
    ("replconf", Replication),
    ("replicaof", Replication),
    ("rpop", NonStringType),
    ("rpoplpush", NonStringType),
    ("rpush", NonStringType),
    ("rpushx", NonStringType),
    ("sadd", NonStringType),
    ("save", Persistence),
    ("scard", NonStringType),
    ("sdiff", NonStringType),
    ("sdiffstore", NonStringType),
    ("sinter", NonStringType),
    ("sintercard", NonStringType),
    ("sinterstore", NonStringType),
    ("sismember", NonStringType),
    ("slaveof", Replication),
    ("smembers", NonStringType),
    ("smismember", NonStringType),
    ("smove", NonStringType),
    ("spop", NonStringType),
    ("spublish", PubSub),
    ("srandmember", NonStringType),
    ("srem", NonStringType),
    ("sscan", NonStringType),
    ("ssubscribe", PubSub),
    ("subscribe", PubSub),
    ("sunion", NonStringType),
    ("sunionstore", NonStringType),
    ("sunsubscribe", PubSub),
    ("sync", Replication),
    ("unsubscribe", PubSub),
    ("wait", Replication),
    ("xack", NonStringType),
    ("xadd", NonStringType),
    ("xautoclaim", NonStringType),
    ("xclaim", NonStringType),
    ("xdel", NonStringType),
    ("xgroup", NonStringType),
    ("xinfo", NonStringType),
    ("xlen", NonStringType),
    ("xpending", NonStringType),
    ("xrange", NonStringType),
    ("xread", NonStringType),
    ("xreadgroup", NonStringType),
    ("xrevrange", NonStringType),
    ("xsetid", NonStringType),
    ("xtrim", NonStringType),
    ("zadd", NonStringType),
    ("zcard", NonStringType),
    ("zcount", NonStringType),
    ("zdiff", NonStringType),
    ("zdiffstore", NonStringType),
    ("zincrby", NonStringType),
    ("zinter", NonStringType),
    ("zintercard", NonStringType),
    ("zinterstore", NonStringType),
    ("zlexcount", NonStringType),
    ("zmpop", NonStringType),
    ("zmscore", NonStringType),
    ("zpopmax", NonStringType),
    ("zpopmin", NonStringType),
    ("zrandmember", NonStringType),
    ("zrange", NonStringType),
    ("zrangebylex", NonStringType),
    ("zrangebyscore", NonStringType),
    ("zrangestore", NonStringType),
    ("zrank", NonStringType),
    ("zrem", NonStringType),
    ("zremrangebylex", NonStringType),
    ("zremrangebyrank", NonStringType),
    ("zremrangebyscore", NonStringType),
    ("zrevrange", NonStringType),
    ("zrevrangebylex", NonStringType),
    ("zrevrangebyscore", NonStringType),
    ("zrevrank", NonStringType),
    ("zscan", NonStringType),
    ("zscore", NonStringType),
    ("zunion", NonStringType),
    ("zunionstore", NonStringType),
];

/// The error text for a deliberately unsupported command (`name` in any case), or `None`
/// when Redis has no such command either (or shardcache supports it).
pub fn message(name: &[u8]) -> Option<String> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let i = UNSUPPORTED
        .binary_search_by(|(n, _)| n.as_bytes().cmp(lower))
        .ok()?;
    let (n, reason) = UNSUPPORTED[i];
    Some(format!(
        "ERR shardcache does not support '{n}': {} (see README: What shardcache is not)",
        reason.text()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_disjoint_from_commands() {
        for w in UNSUPPORTED.windows(2) {
            assert!(w[0].0 < w[1].0, "{} / {}", w[0].0, w[1].0);
        }
        for (n, _) in UNSUPPORTED {
            assert!(
                crate::table::lookup(n.as_bytes()).is_none(),
                "{n} is supported"
            );
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            message(b"LPUSH").as_deref(),
            Some(
                "ERR shardcache does not support 'lpush': shardcache is a string-only cache \
                 (see README: What shardcache is not)"
            )
        );
        assert!(message(b"get").is_none());
        assert!(message(b"nosuchcommand").is_none());
        assert!(message(&[b'a'; 64]).is_none());
    }
}
