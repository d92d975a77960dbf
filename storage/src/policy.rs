//! `maxmemory-policy`.

use std::fmt;
use std::str::FromStr;

use shardcache_config::MAXMEMORY_POLICIES;

/// What to evict when used memory exceeds `maxmemory` (Redis `maxmemory-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EvictionPolicy {
    /// Never evict; commands that may grow memory fail with OOM.
    #[default]
    NoEviction,
    /// Approximated LRU over all keys.
    AllKeysLru,
    /// Approximated LRU over keys with a TTL.
    VolatileLru,
    /// Approximated LFU over all keys.
    AllKeysLfu,
    /// Approximated LFU over keys with a TTL.
    VolatileLfu,
    /// Random key.
    AllKeysRandom,
    /// Random key with a TTL.
    VolatileRandom,
    /// Key with a TTL that expires soonest.
    VolatileTtl,
}

impl EvictionPolicy {
    /// All policies, in Redis documentation order.
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::NoEviction,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ];

    /// The Redis name (`allkeys-lru`, …), as shown by `CONFIG GET maxmemory-policy`: the
    /// config crate's list, which [`EvictionPolicy::ALL`] follows entry by entry.
    pub fn as_str(self) -> &'static str {
        MAXMEMORY_POLICIES[self as usize]
    }

    /// Whether only keys with a TTL may be evicted.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    /// Whether access words hold LFU counters (otherwise LRU clocks).
    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
        )
    }

    pub(crate) fn to_u8(self) -> u8 {
        Self::ALL.iter().position(|&p| p == self).unwrap_or(0) as u8
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(EvictionPolicy::NoEviction)
    }
}

// Every policy has a name in the config crate's list, at its own index.
const _: () = assert!(MAXMEMORY_POLICIES.len() == EvictionPolicy::ALL.len());

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown maxmemory-policy '{0}'")]
pub struct UnknownPolicy(pub String);

impl FromStr for EvictionPolicy {
    type Err = UnknownPolicy;

    /// Parses a Redis policy name, ASCII case-insensitively (Redis config is).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in EvictionPolicy::ALL {
            assert_eq!(p.as_str().parse::<EvictionPolicy>().unwrap(), p);
            assert_eq!(EvictionPolicy::from_u8(p.to_u8()), p);
        }
        assert_eq!("ALLKEYS-LRU".parse(), Ok(EvictionPolicy::AllKeysLru));
        assert!("lru".parse::<EvictionPolicy>().is_err());
        assert_eq!(EvictionPolicy::default(), EvictionPolicy::NoEviction);
        for (i, p) in EvictionPolicy::ALL.into_iter().enumerate() {
            assert_eq!(p as usize, i);
        }
        assert_eq!(EvictionPolicy::VolatileTtl.as_str(), "volatile-ttl");
        assert_eq!(EvictionPolicy::AllKeysLfu.as_str(), "allkeys-lfu");
    }
}
