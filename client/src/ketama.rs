//! A ketama consistent-hash continuum, bit-compatible with twemproxy's
//! `distribution: ketama` + `hash: fnv1a_64` (nc_ketama.c, nc_hashkit.c).

use crate::md5::md5;

/// Points per server for equal weights (40 MD5 digests x 4 points each).
const POINTS_PER_SERVER: u32 = 160;
/// Points taken from one MD5 digest.
const POINTS_PER_HASH: u32 = 4;

/// One server on the continuum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KetamaNode {
    /// The string hashed onto the continuum. twemproxy uses the server's name
    /// when given (`- 127.0.0.1:6379:1 cache1`), otherwise `host:port`
    /// (just `host` when the port is 11211, for libmemcached compatibility).
    pub name: String,
    /// Where to connect (`host:port`).
    pub addr: String,
    /// Relative weight; points are proportional to it.
    pub weight: u32,
}

impl KetamaNode {
    /// A node named after its address, with weight 1.
    pub fn new(addr: impl Into<String>) -> Self {
        let addr = addr.into();
        KetamaNode {
            name: addr.clone(),
            addr,
            weight: 1,
        }
    }

    /// Parses a twemproxy `servers:` entry: `host:port:weight [name]`.
    ///
    /// # Errors
    /// A message when the entry is not `host:port:weight` with numeric port and weight.
    ///
    /// ```
    /// use shardcache_client::KetamaNode;
    /// let n = KetamaNode::parse_twemproxy("127.0.0.1:6379:2 cache-a").unwrap();
    /// assert_eq!((n.name.as_str(), n.addr.as_str(), n.weight), ("cache-a", "127.0.0.1:6379", 2));
    /// let n = KetamaNode::parse_twemproxy("127.0.0.1:6380:1").unwrap();
    /// assert_eq!(n.name, "127.0.0.1:6380");
    /// ```
    pub fn parse_twemproxy(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (spec, name) = match entry.split_once(char::is_whitespace) {
            Some((s, n)) => (s, Some(n.trim())),
            None => (entry, None),
        };
        let mut parts = spec.rsplitn(3, ':');
        let (Some(weight), Some(port), Some(host)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("expected host:port:weight, got {spec:?}"));
        };
        let weight: u32 = weight
            .parse()
            .map_err(|_| format!("bad weight in {spec:?}"))?;
        let port_num: u16 = port.parse().map_err(|_| format!("bad port in {spec:?}"))?;
        let addr = format!("{host}:{port}");
        let name = match name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ if port_num == 11211 => host.to_string(),
            _ => addr.clone(),
        };
        Ok(KetamaNode { name, addr, weight })
    }
}

/// The continuum: sorted points, each owned by a node index.
///
/// ```
/// use shardcache_client::{Ketama, KetamaNode};
/// let ring = Ketama::new(vec![KetamaNode::new("10.0.0.1:6379"), KetamaNode::new("10.0.0.2:6379")]);
/// let node = ring.node_for(b"user:42");
/// assert!(node < 2);
/// assert_eq!(node, ring.node_for(b"user:42"));
/// ```
#[derive(Clone, Debug)]
pub struct Ketama {
    /// The servers, in configuration order (indices returned by `node_for`).
    nodes: Vec<KetamaNode>,
    /// `(point, node index)` sorted by point.
    points: Vec<(u32, usize)>,
}

impl Ketama {
    /// Builds the continuum exactly as twemproxy's `ketama_update` does with all
    /// servers live. Nodes with weight 0 get no points.
    pub fn new(nodes: Vec<KetamaNode>) -> Self {
        let live = nodes.iter().filter(|n| n.weight > 0).count();
        let total_weight: u64 = nodes.iter().map(|n| u64::from(n.weight)).sum();
        let mut points = Vec::with_capacity(live * POINTS_PER_SERVER as usize);
        for (idx, node) in nodes.iter().enumerate() {
            if node.weight == 0 {
                continue;
            }
            // Same float arithmetic as the C code: float pct, float products,
            // the double epsilon, then floorf.
            let pct = node.weight as f32 / total_weight as f32;
            let scaled = pct * POINTS_PER_SERVER as f32 / 4.0 * live as f32;
            let per_server = (((f64::from(scaled) + 0.000_000_000_1) as f32).floor() as u32) * 4;
            for hash_index in 0..per_server / POINTS_PER_HASH {
                let digest = md5(format!("{}-{}", node.name, hash_index).as_bytes());
                for x in 0..POINTS_PER_HASH as usize {
                    let b = &digest[x * 4..x * 4 + 4];
                    points.push((u32::from_le_bytes([b[0], b[1], b[2], b[3]]), idx));
                }
            }
        }
        points.sort_by_key(|p| p.0);
        Ketama { nodes, points }
    }

    /// The nodes, in the order given to [`Ketama::new`].
    pub fn nodes(&self) -> &[KetamaNode] {
        &self.nodes
    }

    /// Number of points on the continuum (160 per node for equal weights).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no node has any points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Index (into [`Ketama::nodes`]) of the node owning `key`: the first point
    /// `>= fnv1a_64(key)`, wrapping to the first point. Returns 0 for an empty ring.
    pub fn node_for(&self, key: &[u8]) -> usize {
        self.node_for_hash(fnv1a_64(key))
    }

    /// As [`Ketama::node_for`], for an already computed hash.
    pub fn node_for_hash(&self, hash: u32) -> usize {
        if self.points.is_empty() {
            return 0;
        }
        let i = self.points.partition_point(|p| p.0 < hash);
        self.points.get(i).unwrap_or(&self.points[0]).1
    }
}

/// twemproxy's `hash_fnv1a_64`: FNV-1a computed in a `uint32_t` with the
/// 64-bit offset basis and prime truncated to 32 bits. Bytes are widened from
/// C `char`, which is signed on x86, so bytes >= 0x80 are sign-extended.
pub fn fnv1a_64(key: &[u8]) -> u32 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 as u32;
    for &b in key {
        hash ^= b as i8 as i32 as u32;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3_u64 as u32);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_give_160_points_each() {
        let ring = Ketama::new((0..5).map(|i| KetamaNode::new(format!("h:{i}"))).collect());
        assert_eq!(ring.len(), 800);
    }

    #[test]
    fn weights_are_proportional() {
        let mut a = KetamaNode::new("a:1");
        a.weight = 3;
        let ring = Ketama::new(vec![a, KetamaNode::new("b:1")]);
        let a_points = ring.points.iter().filter(|p| p.1 == 0).count();
        assert_eq!(a_points, 240);
        assert_eq!(ring.len(), 320);
    }

    #[test]
    fn fnv1a_matches_low_32_bits_of_real_fnv1a_64_for_ascii() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in b"key:000123" {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(fnv1a_64(b"key:000123"), h as u32);
    }

    #[test]
    fn lookup_wraps_past_the_last_point() {
        let ring = Ketama::new(vec![KetamaNode::new("a:1"), KetamaNode::new("b:1")]);
        let last = ring.points.last().unwrap();
        assert_eq!(
            ring.node_for_hash(u32::MAX),
            if last.0 == u32::MAX {
                last.1
            } else {
                ring.points[0].1
            }
        );
        assert_eq!(ring.node_for_hash(0), ring.points[0].1);
    }
}
