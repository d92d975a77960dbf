//! Error types of the storage crate.

/// Invalid store configuration, reported by [`crate::Store::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The shard count must be a power of two in `1..=65536` so a shard is picked with a mask.
    #[error("invalid shard count {0}: must be a power of two between 1 and {max}", max = crate::MAX_SHARDS)]
    InvalidShardCount(usize),
    /// The number of logical databases (Redis `databases`) must be in `1..=65536`.
    #[error("invalid number of databases {0}: must be between 1 and {max} (and at most {tables} tables in all shards)", max = crate::MAX_DATABASES, tables = crate::MAX_TABLES)]
    InvalidDatabases(usize),
}

/// Returned by [`crate::Store::reclaim_memory`] when used memory is above `maxmemory` and the
/// policy forbids eviction or nothing can be evicted. The server maps it to Redis's `-OOM`
/// error for commands that may grow memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command not allowed when used memory > 'maxmemory'.")]
pub struct OutOfMemory;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            OutOfMemory.to_string(),
            "command not allowed when used memory > 'maxmemory'."
        );
        assert!(StorageError::InvalidShardCount(3)
            .to_string()
            .contains("power of two"));
        assert!(StorageError::InvalidDatabases(0)
            .to_string()
            .contains("databases 0"));
    }
}
