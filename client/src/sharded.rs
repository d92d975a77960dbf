//! [`ShardedClient`]: client-side sharding over several servers via [`Ketama`].

use bytes::Bytes;
use futures::future::try_join_all;
use shardcache_protocol::Frame;

use crate::client::{Client, ClientConfig, SetOptions};
use crate::error::Result;
use crate::ketama::{Ketama, KetamaNode};

/// One connection per node, keys routed exactly as twemproxy's ketama/fnv1a_64
/// would route them, so it can share a key space with a twemproxy deployment.
///
/// Multi-key commands (`MGET`, `DEL`) are split per node, sent concurrently and
/// merged back in the caller's key order.
///
/// ```no_run
/// # async fn demo() -> shardcache_client::Result<()> {
/// use shardcache_client::{ClientConfig, KetamaNode, ShardedClient};
/// let nodes = vec![KetamaNode::new("127.0.0.1:7001"), KetamaNode::new("127.0.0.1:7002")];
/// let mut sharded = ShardedClient::connect(nodes, ClientConfig::new("")).await?;
/// sharded.set("user:1", "alice").await?;
/// let values = sharded.mget(&["user:1", "user:2"]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShardedClient {
    /// The continuum.
    ring: Ketama,
    /// `clients[i]` talks to `ring.nodes()[i]`.
    clients: Vec<Client>,
}

impl ShardedClient {
    /// Connects to every node; `template` supplies timeouts, auth, RESP version
    /// and db, its `addr` is replaced by each node's.
    ///
    /// # Errors
    /// The first connection error.
    pub async fn connect(nodes: Vec<KetamaNode>, template: ClientConfig) -> Result<Self> {
        let clients = try_join_all(nodes.iter().map(|n| {
            let mut cfg = template.clone();
            cfg.addr = n.addr.clone();
            Client::connect_with(cfg)
        }))
        .await?;
        Ok(ShardedClient {
            ring: Ketama::new(nodes),
            clients,
        })
    }

    /// The continuum used for routing.
    pub fn ring(&self) -> &Ketama {
        &self.ring
    }

    /// Index of the node that owns `key`.
    pub fn node_for(&self, key: &[u8]) -> usize {
        self.ring.node_for(key)
    }

    /// The client for node `index` (e.g. for per-node `INFO`).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn node_client(&mut self, index: usize) -> &mut Client {
        &mut self.clients[index]
    }

    /// The client owning `key`.
    fn route(&mut self, key: &[u8]) -> &mut Client {
        let i = self.ring.node_for(key);
        &mut self.clients[i]
    }

    /// Runs a single-key command (`args[1]` is the key) on the owning node.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn cmd_for_key<A: AsRef<[u8]>>(&mut self, key: &[u8], args: &[A]) -> Result<Frame> {
        self.route(key).cmd(args).await
    }

    /// `GET` on the owning node.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        self.route(key).get(key).await
    }

    /// `SET` on the owning node.
    ///
    /// # Errors
    /// As [`Client::set`].
    pub async fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.route(key).set(key, value).await
    }

    /// `SET` with options on the owning node.
    ///
    /// # Errors
    /// As [`Client::set_with`].
    pub async fn set_with(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: SetOptions,
    ) -> Result<bool> {
        let key = key.as_ref();
        self.route(key).set_with(key, value, opts).await
    }

    /// `INCRBY` on the owning node.
    ///
    /// # Errors
    /// As [`Client::incr_by`].
    pub async fn incr_by(&mut self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
        let key = key.as_ref();
        self.route(key).incr_by(key, delta).await
    }

    /// Groups key positions by owning node: `groups[node] = [positions]`.
    fn split<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.clients.len()];
        for (pos, k) in keys.iter().enumerate() {
            groups[self.ring.node_for(k.as_ref())].push(pos);
        }
        groups
    }

    /// `MGET` split per node, run concurrently, merged in the order of `keys`.
    ///
    /// # Errors
    /// The first error of any node.
    pub async fn mget<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        let groups = self.split(keys);
        let futs = self
            .clients
            .iter_mut()
            .zip(&groups)
            .filter(|(_, g)| !g.is_empty())
            .map(|(client, group)| async move {
                let ks: Vec<&[u8]> = group.iter().map(|&p| keys[p].as_ref()).collect();
                client.mget(&ks).await.map(|vals| (group, vals))
            });
        let mut out = vec![None; keys.len()];
        for (group, vals) in try_join_all(futs).await? {
            for (&pos, v) in group.iter().zip(vals) {
                out[pos] = v;
            }
        }
        Ok(out)
    }

    /// `DEL` split per node, run concurrently; the total number removed.
    ///
    /// # Errors
    /// The first error of any node (other nodes may have deleted their keys).
    pub async fn del<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<u64> {
        let groups = self.split(keys);
        let futs = self
            .clients
            .iter_mut()
            .zip(&groups)
            .filter(|(_, g)| !g.is_empty())
            .map(|(client, group)| async move {
                let ks: Vec<&[u8]> = group.iter().map(|&p| keys[p].as_ref()).collect();
                client.del(&ks).await
            });
        Ok(try_join_all(futs).await?.into_iter().sum())
    }
}
