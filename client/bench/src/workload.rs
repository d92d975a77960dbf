//! What the load generator sends: key sampling and pre-encoded requests.

use rand::Rng;
use serde::Serialize;

/// How keys are picked from the key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian: rank `k` has probability proportional to `1 / k^theta`.
    Zipf,
    /// A small hot set receives a fixed share of the requests.
    Hotset,
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipf => "zipf",
            Distribution::Hotset => "hotset",
        })
    }
}

/// Draws key indices in `0..keys` according to a [`Distribution`].
#[derive(Clone, Debug)]
pub enum KeySampler {
    /// Uniform over `0..n`.
    Uniform {
        /// Key space size.
        n: u64,
    },
    /// Zipf over ranks `1..=n`, mapped to index `rank - 1`.
    Zipf(Zipf),
    /// `hot` keys (`0..hot`) get `share` of draws; the rest go uniformly to `hot..n`.
    Hotset {
        /// Key space size.
        n: u64,
        /// Number of hot keys.
        hot: u64,
        /// Probability that a draw is a hot key.
        share: f64,
    },
}

impl KeySampler {
    /// Builds a sampler; `keys` is clamped to at least 1, `hot` to `1..=keys`,
    /// `share` to `0..=1`. A zipf `theta <= 0` degenerates to uniform.
    pub fn new(dist: Distribution, keys: u64, theta: f64, hot: u64, share: f64) -> Self {
        let n = keys.max(1);
        match dist {
            Distribution::Uniform => KeySampler::Uniform { n },
            Distribution::Zipf if theta > 0.0 => KeySampler::Zipf(Zipf::new(n, theta)),
            Distribution::Zipf => KeySampler::Uniform { n },
            Distribution::Hotset => KeySampler::Hotset {
                n,
                hot: hot.clamp(1, n),
                share: share.clamp(0.0, 1.0),
            },
        }
    }

    /// One key index in `0..keys`.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            KeySampler::Uniform { n } => rng.random_range(0..*n),
            KeySampler::Zipf(z) => z.sample(rng) - 1,
            KeySampler::Hotset { n, hot, share } => {
                if *hot >= *n || rng.random::<f64>() < *share {
                    rng.random_range(0..*hot)
                } else {
                    rng.random_range(*hot..*n)
                }
            }
        }
    }
}

/// Zipf sampler by rejection-inversion (Hörmann & Derflinger 1996, as in Apache
/// Commons RNG): O(1) memory and expected O(1) time for any exponent > 0,
/// including exactly 1, and exact (not approximate like YCSB's method).
#[derive(Clone, Debug)]
pub struct Zipf {
    /// Number of ranks.
    n: f64,
    /// The exponent (YCSB's theta).
    s: f64,
    /// `H(1.5) - 1`.
    h_x1: f64,
    /// `H(n + 0.5)`.
    h_n: f64,
    /// Acceptance shortcut threshold.
    accept: f64,
}

impl Zipf {
    /// Ranks `1..=n` with exponent `s > 0`.
    pub fn new(n: u64, s: f64) -> Self {
        let mut z = Zipf {
            n: n.max(1) as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            accept: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(z.n + 0.5);
        z.accept = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// One rank in `1..=n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u = self.h_n + rng.random::<f64>() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.accept || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// Antiderivative of `h`, shifted so it is continuous in `s` at 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    /// Inverse of `h_integral`.
    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, stable near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(exp(x) - 1) / x`, stable near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// Encodes `GET key:NNNNNN` / `SET key:NNNNNN <value> [EX secs]` without
/// formatting: the key has a fixed width, so each request is a copied template
/// plus digits.
#[derive(Clone, Debug)]
pub struct RequestEncoder {
    /// Digits in a key (zero-padded).
    width: usize,
    /// `*2\r\n$3\r\nGET\r\n$<len>\r\nkey:`.
    get_prefix: Vec<u8>,
    /// `*3\r\n$3\r\nSET\r\n$<len>\r\nkey:` (`*5` with a TTL).
    set_prefix: Vec<u8>,
    /// `\r\n$<vlen>\r\n<value>\r\n` (then `$2\r\nEX\r\n$<n>\r\n<secs>\r\n` with a TTL).
    set_suffix: Vec<u8>,
}

impl RequestEncoder {
    /// For a key space of `keys` keys and values of `value_size` bytes; keys
    /// have at least 6 digits (`key:000123`).
    pub fn new(keys: u64, value_size: usize) -> Self {
        let width = digits(keys.saturating_sub(1)).max(6);
        Self::build(width, value_size, None)
    }

    /// Keys of exactly `key_size` bytes (`key:` and zero-padded digits) for
    /// indices `0..keys`, values of `value_size` bytes, and SETs with
    /// `EX ttl_secs` when given.
    ///
    /// # Errors
    /// When `key_size` leaves too few digits for `keys` distinct keys.
    pub fn with_key_size(
        keys: u64,
        key_size: usize,
        value_size: usize,
        ttl_secs: Option<u64>,
    ) -> Result<Self, String> {
        let need = digits(keys.saturating_sub(1));
        if key_size < 4 + need {
            return Err(format!(
                "--key-size {key_size} is too small for {keys} distinct keys (need at least {})",
                4 + need
            ));
        }
        Ok(Self::build(key_size - 4, value_size, ttl_secs))
    }

    /// The templates for `width` digits.
    fn build(width: usize, value_size: usize, ttl_secs: Option<u64>) -> Self {
        let klen = 4 + width;
        let argc = if ttl_secs.is_some() { 5 } else { 3 };
        let get_prefix = format!("*2\r\n$3\r\nGET\r\n${klen}\r\nkey:").into_bytes();
        let set_prefix = format!("*{argc}\r\n$3\r\nSET\r\n${klen}\r\nkey:").into_bytes();
        let mut set_suffix = format!("\r\n${value_size}\r\n").into_bytes();
        set_suffix.extend((0..value_size).map(|i| b'a' + (i % 26) as u8));
        set_suffix.extend_from_slice(b"\r\n");
        if let Some(secs) = ttl_secs {
            let secs = secs.to_string();
            set_suffix
                .extend_from_slice(format!("$2\r\nEX\r\n${}\r\n{secs}\r\n", secs.len()).as_bytes());
        }
        RequestEncoder {
            width,
            get_prefix,
            set_prefix,
            set_suffix,
        }
    }

    /// The key for index `idx`, e.g. `key:000123`.
    pub fn key(&self, idx: u64) -> String {
        format!("key:{idx:0width$}", width = self.width)
    }

    /// Appends `GET key:<idx>`.
    #[inline]
    pub fn push_get(&self, buf: &mut Vec<u8>, idx: u64) {
        buf.extend_from_slice(&self.get_prefix);
        self.push_digits(buf, idx);
        buf.extend_from_slice(b"\r\n");
    }

    /// Appends `SET key:<idx> <value>`.
    #[inline]
    pub fn push_set(&self, buf: &mut Vec<u8>, idx: u64) {
        buf.extend_from_slice(&self.set_prefix);
        self.push_digits(buf, idx);
        buf.extend_from_slice(&self.set_suffix);
    }

    /// Zero-padded decimal digits of `idx` (wider numbers are truncated to
    /// the low digits; the encoder never sees an index that large).
    #[inline]
    fn push_digits(&self, buf: &mut Vec<u8>, mut idx: u64) {
        let start = buf.len();
        buf.resize(start + self.width, b'0');
        for slot in buf[start..].iter_mut().rev() {
            *slot = b'0' + (idx % 10) as u8;
            idx /= 10;
        }
    }
}

/// Number of decimal digits of `n` (1 for 0).
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn encoder_produces_valid_resp() {
        let enc = RequestEncoder::new(1000, 5);
        let mut buf = Vec::new();
        enc.push_get(&mut buf, 123);
        assert_eq!(buf, b"*2\r\n$3\r\nGET\r\n$10\r\nkey:000123\r\n");
        buf.clear();
        enc.push_set(&mut buf, 7);
        assert_eq!(
            buf,
            b"*3\r\n$3\r\nSET\r\n$10\r\nkey:000007\r\n$5\r\nabcde\r\n"
        );
        assert_eq!(enc.key(42), "key:000042");
        let wide = RequestEncoder::new(10_000_000, 1);
        assert_eq!(wide.key(5), "key:0000005");
    }

    #[test]
    fn fixed_key_size_and_ttl() {
        let enc = RequestEncoder::with_key_size(10_000_000, 16, 3, Some(3600)).unwrap();
        assert_eq!(enc.key(42), "key:000000000042");
        let mut buf = Vec::new();
        enc.push_set(&mut buf, 9_999_999);
        assert_eq!(
            buf,
            b"*5\r\n$3\r\nSET\r\n$16\r\nkey:000009999999\r\n$3\r\nabc\r\n$2\r\nEX\r\n$4\r\n3600\r\n"
        );
        let plain = RequestEncoder::with_key_size(10, 5, 0, None).unwrap();
        buf.clear();
        plain.push_set(&mut buf, 9);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$5\r\nkey:9\r\n$0\r\n\r\n");
        assert!(RequestEncoder::with_key_size(11, 5, 1, None).is_err());
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(u64::MAX), 20);
    }

    /// Log-log slope of rank frequency for the top ranks should be about -theta.
    #[test]
    fn zipf_rank_frequency_follows_theta() {
        for theta in [0.8, 0.99, 1.2] {
            let z = Zipf::new(10_000, theta);
            let mut rng = SmallRng::seed_from_u64(7);
            let mut counts = vec![0u64; 10_001];
            for _ in 0..1_000_000 {
                let k = z.sample(&mut rng);
                assert!((1..=10_000).contains(&k));
                counts[k as usize] += 1;
            }
            // Least-squares slope over ranks 1..=50 in log-log space.
            let pts: Vec<(f64, f64)> = (1..=50)
                .map(|r| ((r as f64).ln(), (counts[r] as f64).ln()))
                .collect();
            let n = pts.len() as f64;
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
            let (mx, my) = (sx / n, sy / n);
            let cov: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let slope = cov / var;
            assert!((slope + theta).abs() < 0.08, "theta {theta}: slope {slope}");
            // And rank 1 vs rank 2 ratio is about 2^theta.
            let ratio = counts[1] as f64 / counts[2] as f64;
            assert!(
                (ratio / 2f64.powf(theta) - 1.0).abs() < 0.05,
                "ratio {ratio}"
            );
        }
    }

    #[test]
    fn hotset_share_is_respected() {
        let s = KeySampler::new(Distribution::Hotset, 1000, 0.0, 10, 0.9);
        let mut rng = SmallRng::seed_from_u64(1);
        let draws = 200_000;
        let hot = (0..draws).filter(|_| s.sample(&mut rng) < 10).count();
        let share = hot as f64 / draws as f64;
        assert!((share - 0.9).abs() < 0.01, "share {share}");
        // One hot key, the default: 90% of draws are key 0.
        let s = KeySampler::new(Distribution::Hotset, 1000, 0.0, 1, 0.9);
        let zero = (0..draws).filter(|_| s.sample(&mut rng) == 0).count();
        assert!((zero as f64 / draws as f64 - 0.9).abs() < 0.01);
    }

    #[test]
    fn uniform_covers_the_key_space() {
        let s = KeySampler::new(Distribution::Uniform, 100, 0.99, 1, 0.9);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = [false; 100];
        for _ in 0..10_000 {
            seen[s.sample(&mut rng) as usize] = true;
        }
        assert!(seen.iter().all(|&b| b));
    }
}
