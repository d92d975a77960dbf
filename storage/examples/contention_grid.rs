//! The full in-process contention grid with tail latency: every map (shardcache's `Store` at
//! 1/4/16/64/256 shards, `std::sync::Mutex<HashMap>`, `std::sync::RwLock<HashMap>`,
//! `parking_lot::RwLock<HashMap>`, `papaya::HashMap`) x threads x read ratio x key
//! distribution, each point run for a fixed duration with 1 op in 16 timed into an HDR
//! histogram. All maps of one workload run back to back (and `--reps` rounds interleave
//! them), so machine noise hits them alike; ratios are the figures to trust.
//!
//! ```text
//! cargo run --release -p shardcache-storage --example contention_grid -- \
//!     [--duration-ms 500] [--reps 1] [--threads 1,4,16,64] [--read-ratios 0.5,0.8,0.95,1.0] \
//!     [--dists uniform,zipf,hotkey] [--shards 1,4,16,64,256] [--no-baselines] [--out DIR]
//! ```
//!
//! Writes `DIR/grid.csv` (one line per map and workload) and `DIR/grid.md` (pivot tables:
//! ops/s relative to the single-lock store, p99, and raw numbers). Default DIR:
//! `docs/bench/grid`.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{Dist, Kind, Timed, Workload};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Command line.
#[derive(clap::Parser)]
#[command(about = "The in-process contention grid (see the file's doc comment)")]
struct Args {
    /// Run time of each point, in milliseconds.
    #[arg(long = "duration-ms", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    duration_ms: u64,
    /// Rounds; each runs every map of a workload back to back.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    threads: Vec<usize>,
    /// GET fractions.
    #[arg(
        long = "read-ratios",
        value_delimiter = ',',
        default_value = "0.5,0.8,0.95,1.0"
    )]
    read_ratios: Vec<f64>,
    /// Key distributions: uniform, zipf, hotkey.
    #[arg(long, value_delimiter = ',', default_value = "uniform,zipf,hotkey", value_parser = parse_dist)]
    dists: Vec<Dist>,
    /// Shard counts of the store.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,256")]
    shards: Vec<usize>,
    /// Skip the baseline maps (std and parking_lot locks over one map, papaya).
    #[arg(long = "no-baselines")]
    no_baselines: bool,
    /// Output directory.
    #[arg(long, default_value = "docs/bench/grid")]
    out: PathBuf,
    /// Passed by `cargo bench`-style runners; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_dist(s: &str) -> Result<Dist, String> {
    Dist::parse(s).ok_or_else(|| format!("unknown distribution {s:?} (uniform, zipf, hotkey)"))
}

/// One measured point: the median-throughput repetition, with all repetitions' latency
/// samples merged.
struct Point {
    threads: usize,
    read_ratio: f64,
    dist: Dist,
    map: String,
    ops_per_sec: f64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    /// Share of lock acquisitions that had to wait (store only), percent.
    contended_pct: Option<f64>,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let duration = Duration::from_millis(args.duration_ms);
    let reps = args.reps as usize;
    let mut kinds: Vec<Kind> = args
        .shards
        .iter()
        .map(|&shards| Kind::Store {
            shards,
            instrument: true,
        })
        .collect();
    if !args.no_baselines {
        kinds.extend([
            Kind::StdMutex,
            Kind::StdRwLock,
            Kind::PlRwLock,
            Kind::Papaya,
        ]);
    }
    let keys = common::keys();
    let value = common::value();
    let zipf = common::zipf_cdf(common::KEYS, common::ZIPF_THETA);
    eprintln!("building {} maps of {} keys", kinds.len(), common::KEYS);
    let maps: Vec<_> = kinds.iter().map(|k| k.build(&keys, &value)).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total = args.threads.len() * args.read_ratios.len() * args.dists.len();
    eprintln!(
        "{total} workloads x {} maps x {} reps x {:?} (~{:.0} s); {cores} cores",
        kinds.len(),
        reps,
        duration,
        (total * kinds.len() * reps) as f64 * duration.as_secs_f64()
    );

    let mut points = Vec::new();
    let mut n = 0;
    for &dist in &args.dists {
        for &read_ratio in &args.read_ratios {
            for &threads in &args.threads {
                n += 1;
                let w = Workload { read_ratio, dist };
                let streams = w.streams(threads, &zipf);
                let mut runs: Vec<Vec<(Timed, Option<f64>)>> =
                    (0..kinds.len()).map(|_| Vec::new()).collect();
                for _ in 0..reps {
                    for (i, map) in maps.iter().enumerate() {
                        let before = map.contention();
                        let t = common::run_for(&**map, &keys, &value, &streams, duration);
                        let pct = match (before, map.contention()) {
                            (Some((c0, a0)), Some((c1, a1))) if a1 > a0 => {
                                Some(100.0 * (c1 - c0) as f64 / (a1 - a0) as f64)
                            }
                            _ => None,
                        };
                        runs[i].push((t, pct));
                    }
                }
                let mut line = format!(
                    "[{n}/{total}] t={threads} rr={read_ratio} {}:",
                    dist.label()
                );
                for (kind, mut reps) in kinds.iter().zip(runs) {
                    reps.sort_by(|a, b| a.0.ops_per_sec().total_cmp(&b.0.ops_per_sec()));
                    let mut h = reps[0].0.latency_ns.clone();
                    for r in &reps[1..] {
                        h.add(&r.0.latency_ns).expect("same bounds");
                    }
                    let (med, pct) = &reps[reps.len() / 2];
                    let _ = write!(line, " {}={:.2}M", kind.label(), med.ops_per_sec() / 1e6);
                    points.push(Point {
                        threads,
                        read_ratio,
                        dist,
                        map: kind.label(),
                        ops_per_sec: med.ops_per_sec(),
                        p50_ns: h.value_at_quantile(0.5),
                        p99_ns: h.value_at_quantile(0.99),
                        p999_ns: h.value_at_quantile(0.999),
                        max_ns: h.max(),
                        contended_pct: *pct,
                    });
                }
                eprintln!("{line}");
            }
        }
    }

    std::fs::create_dir_all(&args.out).expect("create output dir");
    let csv = csv(&points);
    let md = markdown(&points, &kinds, &args, cores);
    std::fs::write(args.out.join("grid.csv"), csv).expect("write grid.csv");
    std::fs::write(args.out.join("grid.md"), &md).expect("write grid.md");
    println!("{md}");
    eprintln!("wrote {}/grid.csv and grid.md", args.out.display());
}

fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "threads,read_ratio,dist,map,ops_per_sec,p50_ns,p99_ns,p999_ns,max_ns,contended_pct\n",
    );
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{:.0},{},{},{},{},{}",
            p.threads,
            p.read_ratio,
            p.dist.label(),
            p.map,
            p.ops_per_sec,
            p.p50_ns,
            p.p99_ns,
            p.p999_ns,
            p.max_ns,
            p.contended_pct
                .map(|x| format!("{x:.3}"))
                .unwrap_or_default()
        );
    }
    s
}

/// Pivot tables, one row per workload, one column per map.
fn markdown(points: &[Point], kinds: &[Kind], args: &Args, cores: usize) -> String {
    let labels: Vec<String> = kinds.iter().map(Kind::label).collect();
    let base = labels.first().cloned().unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "In-process contention grid: {} keys, {}-byte values, {:?} per point, {} rep(s) \
         (median ops/s), 1 op in {} timed; {cores} cores (threads above {cores} time-slice).\n",
        common::KEYS,
        common::VALUE_SIZE,
        Duration::from_millis(args.duration_ms),
        args.reps,
        common::SAMPLE_EVERY
    );
    let workloads: Vec<(usize, f64, Dist)> = {
        let mut w = Vec::new();
        for p in points {
            let k = (p.threads, p.read_ratio, p.dist);
            if !w.contains(&k) {
                w.push(k);
            }
        }
        w
    };
    let find = |w: &(usize, f64, Dist), m: &str| {
        points
            .iter()
            .find(|p| (p.threads, p.read_ratio, p.dist) == *w && p.map == m)
    };
    let header = |s: &mut String, title: &str| {
        let _ = writeln!(s, "### {title}\n");
        let _ = write!(s, "| threads | read | dist |");
        for l in &labels {
            let _ = write!(s, " {l} |");
        }
        let _ = write!(s, "\n|---:|---:|---|");
        for _ in &labels {
            let _ = write!(s, "---:|");
        }
        s.push('\n');
    };
    type Cell<'a> = &'a dyn Fn(&Point, &Point) -> String;
    let tables: [(String, Cell); 4] = [
        (
            format!("Throughput relative to `{base}` (higher is better)"),
            &|p, b| format!("{:.2}", p.ops_per_sec / b.ops_per_sec),
        ),
        ("Throughput, million ops/s".into(), &|p, _| {
            format!("{:.2}", p.ops_per_sec / 1e6)
        }),
        (
            "p99 latency per op, ns (p50 / p99 / p99.9 in grid.csv)".into(),
            &|p, _| p.p99_ns.to_string(),
        ),
        ("p99.9 latency per op, ns".into(), &|p, _| {
            p.p999_ns.to_string()
        }),
    ];
    for (title, cell) in tables.iter() {
        header(&mut s, title);
        for w in &workloads {
            let _ = write!(s, "| {} | {:.0}% | {} |", w.0, w.1 * 100.0, w.2.label());
            let b = find(w, &base);
            for l in &labels {
                match (find(w, l), b) {
                    (Some(p), Some(b)) => {
                        let _ = write!(s, " {} |", cell(p, b));
                    }
                    _ => s.push_str(" |"),
                }
            }
            s.push('\n');
        }
        s.push('\n');
    }
    // Contention: share of store lock acquisitions that waited.
    let store_labels: Vec<&String> = labels.iter().filter(|l| l.starts_with("store/")).collect();
    let _ = writeln!(
        s,
        "### Store lock acquisitions that had to wait, % (instrumented locks)\n"
    );
    let _ = write!(s, "| threads | read | dist |");
    for l in &store_labels {
        let _ = write!(s, " {l} |");
    }
    let _ = write!(s, "\n|---:|---:|---|");
    for _ in &store_labels {
        let _ = write!(s, "---:|");
    }
    s.push('\n');
    for w in &workloads {
        let _ = write!(s, "| {} | {:.0}% | {} |", w.0, w.1 * 100.0, w.2.label());
        for l in &store_labels {
            let c = find(w, l)
                .and_then(|p| p.contended_pct)
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default();
            let _ = write!(s, " {c} |");
        }
        s.push('\n');
    }
    s
}
