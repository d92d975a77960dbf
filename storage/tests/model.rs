//! Model test: random operation sequences against a `HashMap` model, across shard counts.

use bytes::Bytes;
use proptest::prelude::*;
use shardcache_storage::entry_memory;
use shardcache_storage::{Clock, Expiry, ManualClock, Store, StoreConfig};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Set {
        db: usize,
        key: u8,
        value: Vec<u8>,
        ttl: Option<u64>,
    },
    SetKeepTtl {
        db: usize,
        key: u8,
        value: Vec<u8>,
    },
    Get {
        db: usize,
        key: u8,
    },
    Delete {
        db: usize,
        key: u8,
    },
    Expire {
        db: usize,
        key: u8,
        ttl: Option<u64>,
    },
    Mset {
        db: usize,
        pairs: Vec<(u8, Vec<u8>)>,
    },
    Advance(u64),
    Cycle,
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0usize..2;
    let key = 0u8..24;
    let value = prop::collection::vec(any::<u8>(), 0..40);
    let ttl = prop::option::of(0u64..50);
    prop_oneof![
        4 => (db.clone(), key.clone(), value.clone(), ttl.clone())
            .prop_map(|(db, key, value, ttl)| Op::Set { db, key, value, ttl }),
        1 => (db.clone(), key.clone(), value.clone())
            .prop_map(|(db, key, value)| Op::SetKeepTtl { db, key, value }),
        4 => (db.clone(), key.clone()).prop_map(|(db, key)| Op::Get { db, key }),
        2 => (db.clone(), key.clone()).prop_map(|(db, key)| Op::Delete { db, key }),
        2 => (db.clone(), key.clone(), ttl).prop_map(|(db, key, ttl)| Op::Expire { db, key, ttl }),
        1 => (db, prop::collection::vec((key, value), 1..6))
            .prop_map(|(db, pairs)| Op::Mset { db, pairs }),
        2 => (1u64..30).prop_map(Op::Advance),
        1 => Just(Op::Cycle),
    ]
}

/// Model entry: value and absolute expiry (0 = none).
type Model = HashMap<(usize, Vec<u8>), (Vec<u8>, u64)>;

fn live(m: &Model, now: u64, db: usize, key: &[u8]) -> Option<Vec<u8>> {
    m.get(&(db, key.to_vec()))
        .filter(|(_, at)| *at == 0 || *at > now)
        .map(|(v, _)| v.clone())
}

fn k(key: u8) -> Vec<u8> {
    format!("key:{key}").into_bytes()
}

fn run(shards: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(1_000));
    let s = Store::with_clock(
        StoreConfig {
            shards,
            databases: 2,
            ..Default::default()
        },
        clock.clone(),
    )
    .unwrap();
    let mut m: Model = HashMap::new();
    for op in ops {
        let now = clock.now_ms();
        // Drop expired keys from the model (the store hides them).
        m.retain(|_, (_, at)| *at == 0 || *at > now);
        match op {
            Op::Set {
                db,
                key,
                value,
                ttl,
            } => {
                let exp = ttl.map_or(Expiry::Persist, |t| Expiry::At(now + t));
                s.set(*db, Bytes::from(k(*key)), Bytes::from(value.clone()), exp);
                match ttl {
                    Some(0) => {
                        m.remove(&(*db, k(*key)));
                    }
                    _ => {
                        m.insert((*db, k(*key)), (value.clone(), ttl.map_or(0, |t| now + t)));
                    }
                }
            }
            Op::SetKeepTtl { db, key, value } => {
                s.write(*db, &k(*key), |slot| {
                    slot.set(Bytes::from(value.clone()), Expiry::Keep)
                });
                let at = m.get(&(*db, k(*key))).map_or(0, |e| e.1);
                m.insert((*db, k(*key)), (value.clone(), at));
            }
            Op::Get { db, key } => {
                let got = s.get(*db, &k(*key)).map(|b| b.to_vec());
                prop_assert_eq!(got, live(&m, now, *db, &k(*key)));
            }
            Op::Delete { db, key } => {
                let removed = s.delete(*db, &k(*key));
                prop_assert_eq!(removed, m.remove(&(*db, k(*key))).is_some());
            }
            Op::Expire { db, key, ttl } => {
                let at = ttl.map(|t| now + t);
                let r = s.write(*db, &k(*key), |slot| slot.set_expiry(at));
                let exists = m.contains_key(&(*db, k(*key)));
                prop_assert_eq!(r, exists);
                if exists {
                    match at {
                        Some(a) if a <= now => {
                            m.remove(&(*db, k(*key)));
                        }
                        _ => {
                            if let Some(e) = m.get_mut(&(*db, k(*key))) {
                                e.1 = at.unwrap_or(0);
                            }
                        }
                    }
                }
            }
            Op::Mset { db, pairs } => {
                let keys: Vec<Vec<u8>> = pairs.iter().map(|(key, _)| k(*key)).collect();
                let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                s.write_many(*db, &refs, |ms| {
                    for (i, (_, v)) in pairs.iter().enumerate() {
                        ms.slot(i).set(Bytes::from(v.clone()), Expiry::Persist);
                    }
                });
                for (key, v) in pairs {
                    m.insert((*db, k(*key)), (v.clone(), 0));
                }
            }
            Op::Advance(ms) => clock.advance(*ms),
            Op::Cycle => {
                s.expire_cycle(1_000);
            }
        }
        let now = clock.now_ms();
        for db in 0..2 {
            let expected = m
                .iter()
                .filter(|((d, _), (_, at))| *d == db && (*at == 0 || *at > now))
                .count();
            prop_assert_eq!(s.dbsize(db), expected);
        }
    }
    // Full comparison, then memory accounting after reclaiming everything expired.
    let now = clock.now_ms();
    for db in 0..2 {
        let mut keys: Vec<Vec<u8>> = s.keys(db, b"*").iter().map(|b| b.to_vec()).collect();
        keys.sort();
        let mut expected: Vec<Vec<u8>> = m
            .iter()
            .filter(|((d, _), (_, at))| *d == db && (*at == 0 || *at > now))
            .map(|((_, key), _)| key.clone())
            .collect();
        expected.sort();
        prop_assert_eq!(keys, expected);
    }
    s.expire_cycle(usize::MAX);
    m.retain(|_, (_, at)| *at == 0 || *at > now);
    let mem: u64 = m
        .iter()
        .map(|((_, key), (v, _))| entry_memory(key.len(), v.len(), false))
        .sum();
    // The incremental accounting equals a full recount, and covers at least the entries
    // (a key that once had a TTL keeps room for one).
    prop_assert_eq!(s.used_memory(), s.recount_memory());
    prop_assert!(s.used_memory() >= mem + s.overhead_memory());
    prop_assert_eq!(s.stats().keys, m.len() as u64);
    s.flush_all(false);
    prop_assert_eq!(s.used_memory(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_hashmap_model(
        shards in prop::sample::select(vec![1usize, 2, 16, 1024]),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(shards, &ops)?;
    }
}
