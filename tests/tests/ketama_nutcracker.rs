//! Our ketama continuum routes keys exactly like the real twemproxy
//! (`nutcracker`, `distribution: ketama`, `hash: fnv1a_64`).

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use shardcache_client::{Client, ClientConfig, Ketama, KetamaNode, ShardedClient};
use shardcache_tests::{free_port, require, wait_until, RedisServer};

/// Keys sent through nutcracker: 1,000 ASCII keys plus a few with bytes >= 0x80
/// (twemproxy hashes C `char`, signed on x86).
fn keys() -> Vec<Vec<u8>> {
    let mut k: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("key:{i:06}").into_bytes())
        .collect();
    k.extend((0..40u8).map(|i| vec![b'k', 0x80 + i, 0xff - i, b'z']));
    k
}

/// Starts 3 redis-servers and nutcracker with `servers` lines built by `line`;
/// SETs every key through the proxy and returns the index of the backend that
/// holds each key.
async fn route_through_nutcracker(
    redises: &[RedisServer],
    servers: &[String],
    keys: &[Vec<u8>],
) -> Vec<usize> {
    let dir =
        std::env::temp_dir().join(format!("sc-ketama-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = free_port();
    let mut yaml = format!(
        "pool:\n  listen: 127.0.0.1:{listen}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  auto_eject_hosts: false\n  servers:\n"
    );
    for s in servers {
        yaml.push_str(&format!("   - {s}\n"));
    }
    let conf = dir.join("nutcracker.yml");
    std::fs::write(&conf, &yaml).unwrap();
    let stats_port = free_port();
    let mut child = Command::new("nutcracker")
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(dir.join("nutcracker.log"))
        .args(["-s", &stats_port.to_string(), "-a", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nutcracker");
    wait_until(
        &format!("nutcracker listening; config:\n{yaml}"),
        Duration::from_secs(20),
        || TcpStream::connect(("127.0.0.1", listen)).is_ok(),
    );

    let mut proxy = Client::connect(format!("127.0.0.1:{listen}"))
        .await
        .unwrap();
    for chunk in keys.chunks(100) {
        let mut p = proxy.pipeline();
        for k in chunk {
            p.add(&[&b"SET"[..], k, k]);
        }
        for r in p.execute().await.unwrap() {
            assert!(!matches!(r, shardcache_client::Frame::Error(_)), "{r:?}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let mut backends = Vec::new();
    for r in redises {
        backends.push(Client::connect(r.addr()).await.unwrap());
    }
    let mut owner = Vec::new();
    for k in keys {
        let mut found = Vec::new();
        for (i, b) in backends.iter_mut().enumerate() {
            if b.get(k).await.unwrap().is_some() {
                found.push(i);
            }
        }
        assert_eq!(found.len(), 1, "key {k:?} on backends {found:?}");
        owner.push(found[0]);
    }
    for b in &mut backends {
        b.flushdb().await.unwrap();
    }
    owner
}

#[tokio::test]
async fn ketama_matches_nutcracker() {
    require!("redis-server");
    require!("nutcracker");
    let redises: Vec<RedisServer> = (0..3).map(|_| RedisServer::start(&[])).collect();
    let keys = keys();

    // 1. Unnamed servers `host:port:1`: the ketama name is `host:port`.
    let lines: Vec<String> = redises.iter().map(|r| format!("{}:1", r.addr())).collect();
    let owner = route_through_nutcracker(&redises, &lines, &keys).await;
    let nodes: Vec<KetamaNode> = lines
        .iter()
        .map(|l| KetamaNode::parse_twemproxy(l).unwrap())
        .collect();
    assert_eq!(nodes[0].name, redises[0].addr());
    let ring = Ketama::new(nodes.clone());
    let mismatches: Vec<_> = keys
        .iter()
        .zip(&owner)
        .filter(|(k, &o)| ring.node_for(k) != o)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} keys routed differently: {:?}",
        mismatches.len(),
        keys.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    // The comparison is only meaningful if keys were spread. The share per
    // backend varies a lot with the random ports: twemproxy's fnv1a_64 is really
    // 32-bit FNV with the truncated prime 0x1b3, which mixes similar keys
    // poorly, so one backend may get only ~1% of `key:NNNNNN`.
    let used = (0..3).filter(|i| owner.contains(i)).count();
    assert!(used >= 2, "all keys on one backend");

    // 2. Named servers with unequal weights: the name is hashed, weights scale points.
    let lines: Vec<String> = redises
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}:{} cache-{i}", r.addr(), i + 1))
        .collect();
    let owner = route_through_nutcracker(&redises, &lines, &keys).await;
    let nodes: Vec<KetamaNode> = lines
        .iter()
        .map(|l| KetamaNode::parse_twemproxy(l).unwrap())
        .collect();
    assert_eq!(nodes[2].name, "cache-2");
    let ring = Ketama::new(nodes.clone());
    let mismatches = keys
        .iter()
        .zip(&owner)
        .filter(|(k, &o)| ring.node_for(k) != o)
        .count();
    assert_eq!(
        mismatches, 0,
        "named/weighted servers: {mismatches} keys routed differently"
    );

    // 3. ShardedClient writes where nutcracker would, and splits MGET/DEL per node.
    let mut sharded = ShardedClient::connect(nodes, ClientConfig::new(""))
        .await
        .unwrap();
    for k in keys.iter().take(200) {
        sharded.set(k, k).await.unwrap();
    }
    let mut direct = Client::connect(redises[owner[7]].addr()).await.unwrap();
    assert_eq!(
        direct.get(&keys[7]).await.unwrap().as_deref(),
        Some(&keys[7][..])
    );
    let mut asked: Vec<&[u8]> = keys.iter().take(200).rev().map(|k| k.as_slice()).collect();
    asked.push(b"never-set");
    let got = sharded.mget(&asked).await.unwrap();
    for (k, v) in asked.iter().zip(&got) {
        if *k == b"never-set" {
            assert!(v.is_none());
        } else {
            assert_eq!(v.as_deref(), Some(*k));
        }
    }
    assert_eq!(sharded.del(&asked).await.unwrap(), 200);
    assert_eq!(sharded.get(&keys[0]).await.unwrap(), None);
}
