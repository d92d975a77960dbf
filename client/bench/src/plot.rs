//! SVG plots of a sweep: x = shard count (log2), one line per connection level,
//! one panel per (read ratio, distribution).

use std::path::Path;

use plotters::prelude::*;

use super::sweep::SweepRow;

/// Writes `throughput.svg` (ops/s), `p99.svg` (p99 latency, us) and, when the server
/// reported lock stats, `contention.svg` (% of write-lock acquisitions that waited) into
/// `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn plot_all(rows: &[SweepRow], dir: &Path) -> anyhow::Result<()> {
    let (tput, p99) = (dir.join("throughput.svg"), dir.join("p99.svg"));
    let lower_right = SeriesLabelPosition::LowerRight;
    plot(rows, &tput, "throughput (ops/s)", lower_right, true, |r| {
        r.report.ops_per_sec
    })?;
    let upper_left = SeriesLabelPosition::UpperLeft;
    plot(
        rows,
        &p99,
        "p99 latency (us)",
        upper_left.clone(),
        true,
        |r| r.report.latency_us.p99,
    )?;
    if rows.iter().any(|r| r.contention.is_some()) {
        let path = dir.join("contention.svg");
        plot(
            rows,
            &path,
            "write locks waited (%)",
            upper_left,
            false,
            |r| r.contention.map_or(0.0, |c| c.write_contended_pct()),
        )?;
    }
    Ok(())
}

/// One SVG with a panel per workload.
fn plot(
    rows: &[SweepRow],
    path: &Path,
    metric: &str,
    legend_at: SeriesLabelPosition,
    with_redis: bool,
    value: impl Fn(&SweepRow) -> f64,
) -> anyhow::Result<()> {
    let mut workloads: Vec<(f64, String)> = Vec::new();
    for r in rows {
        let w = (r.read_ratio, r.distribution.to_string());
        if !workloads.contains(&w) {
            workloads.push(w);
        }
    }
    let mut conns: Vec<usize> = rows.iter().map(|r| r.connections).collect();
    conns.sort_unstable();
    conns.dedup();
    let panels = workloads.len().max(1);
    let cols = panels.min(2);
    let rows_n = panels.div_ceil(cols);
    let root = SVGBackend::new(path, (560 * cols as u32, 380 * rows_n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let areas = root.split_evenly((rows_n, cols));
    for ((rr, dist), area) in workloads.iter().zip(areas.iter()) {
        let mine: Vec<&SweepRow> = rows
            .iter()
            .filter(|r| r.read_ratio == *rr && r.distribution.to_string() == *dist)
            .filter(|r| with_redis || r.server == "shardcache")
            .collect();
        let shard_rows: Vec<&&SweepRow> =
            mine.iter().filter(|r| r.server == "shardcache").collect();
        let xs: Vec<f64> = shard_rows
            .iter()
            .map(|r| (r.shards.max(1) as f64).log2())
            .collect();
        let x_max = xs.iter().cloned().fold(0.0, f64::max).max(1.0);
        let y_max = mine.iter().map(|r| value(r)).fold(0.0, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{metric}: read ratio {rr}, {dist}"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.2..x_max + 0.2, 0.0..y_max)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("shards (log2 scale)")
            .x_labels(x_max as usize + 2)
            .x_label_formatter(&|x| {
                let v = 2f64.powf(*x);
                if (v - v.round()).abs() < 1e-6 && *x >= 0.0 {
                    format!("{}", v.round())
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                if y_max < 10.0 {
                    format!("{y:.2}")
                } else {
                    format!("{y:.0}")
                }
            })
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (ci, &c) in conns.iter().enumerate() {
            let color = Palette99::pick(ci).to_rgba();
            let mut pts: Vec<(f64, f64)> = shard_rows
                .iter()
                .filter(|r| r.connections == c)
                .map(|r| ((r.shards.max(1) as f64).log2(), value(r)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(format!("{c} conns"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Redis has no shards: a thin flat line, same colour, at its value for reference.
            if let Some(redis) = mine
                .iter()
                .find(|r| r.server == "redis" && r.connections == c)
            {
                let v = value(redis);
                chart
                    .draw_series(LineSeries::new(
                        vec![(-0.2, v), (x_max + 0.2, v)],
                        color.mix(0.8).stroke_width(1),
                    ))
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .label(format!("redis, {c} conns"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.mix(0.8).stroke_width(1))
                    });
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(legend_at.clone())
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
