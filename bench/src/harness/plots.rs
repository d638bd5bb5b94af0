//! The plots of a run, drawn from the rows whatever suites and peers made
//! them:
//!
//! - `window_throughput.svg`: the window operator and its baselines by
//!   `W/S`, and every other suite's case whose parameter is a `W/S` ratio
//!   (polars', say);
//! - `threads.svg`: every case measured on more than one thread count, with
//!   its ideal scaling (linear from its 1-thread figure) dashed;
//! - `peers.svg`: every whole job and peer (every suite but the operator's
//!   `window`, `threads` and `latency`), median with min–max whiskers;
//! - `latency.svg`: the latency distribution of each batch size.

use std::path::Path;

use anyhow::Result;

use super::{Options, Recorder};
use crate::svg::{Bar, Bars, Chart, Guide, Series};

/// Suites that measure the window operator alone, not a job or a peer.
const OPERATOR_SUITES: [&str; 3] = ["window", "threads", "latency"];

/// Writes every plot into `dir`.
pub fn write(dir: &Path, rec: &Recorder, options: &Options) -> Result<()> {
    window_plot(dir, rec, options)?;
    threads_plot(dir, rec)?;
    peers_plot(dir, rec)?;
    latency_plot(dir, rec)
}

/// A case's legend text.
fn name(suite: &str, case: &str, param: i64) -> String {
    if param == 0 {
        format!("{suite} {case}")
    } else {
        format!("{suite} {case} ({param})")
    }
}

/// Throughput by `W/S`: the engine, the baselines, and every case of
/// another suite with a positive parameter (its `W/S`).
fn window_plot(dir: &Path, rec: &Recorder, options: &Options) -> Result<()> {
    let by_ratio = |case: &str| -> Vec<(f64, f64)> {
        options
            .sizes
            .ratios
            .iter()
            .filter_map(|&r| {
                rec.median("window", case, r, 1)
                    .map(|v| (r as f64, v / 1e6))
            })
            .collect()
    };
    let mut series: Vec<Series> = [
        ("engine count,sum (inverse-reduce)", "engine_count_sum"),
        ("engine max (deques)", "engine_max"),
        ("recompute baseline", "recompute"),
        ("HashMap baseline", "hashmap"),
    ]
    .into_iter()
    .map(|(label, case)| Series {
        name: label.into(),
        points: by_ratio(case),
    })
    .collect();
    let mut others: Vec<(&str, &str, usize)> = Vec::new();
    for (suite, case, param, threads) in rec.cases() {
        let key = (suite, case, threads);
        if param > 0 && !OPERATOR_SUITES.contains(&suite) && !others.contains(&key) {
            others.push(key);
        }
    }
    for (suite, case, threads) in others {
        let mut points: Vec<(f64, f64)> = rec
            .cases()
            .into_iter()
            .filter(|k| (k.0, k.1, k.3) == (suite, case, threads) && k.2 > 0)
            .filter_map(|k| {
                rec.median(k.0, k.1, k.2, k.3)
                    .map(|v| (k.2 as f64, v / 1e6))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push(Series {
            name: format!("{suite} {case} ({threads} threads)"),
            points,
        });
    }
    let chart = Chart {
        title: "Window throughput by W/S (1 thread unless noted)".into(),
        x_label: "window length ÷ slide".into(),
        y_label: "M events/s".into(),
        log_x: true,
        log_y: true,
        series,
    };
    std::fs::write(dir.join("window_throughput.svg"), chart.render())?;
    Ok(())
}

/// The series of every case measured on more than one thread count, and
/// the ideal scaling of each that has a 1-thread figure.
#[must_use]
pub fn scaling(rec: &Recorder) -> (Vec<Series>, Vec<Guide>) {
    let mut groups: Vec<(&str, &str, i64)> = Vec::new();
    for (suite, case, param, _) in rec.cases() {
        if !groups.contains(&(suite, case, param)) {
            groups.push((suite, case, param));
        }
    }
    let (mut series, mut guides) = (Vec::new(), Vec::new());
    for (suite, case, param) in groups {
        // (threads, M/s)
        let mut rates: Vec<(usize, f64)> = rec
            .cases()
            .into_iter()
            .filter(|k| (k.0, k.1, k.2) == (suite, case, param))
            .filter_map(|k| rec.median(suite, case, param, k.3).map(|v| (k.3, v / 1e6)))
            .collect();
        if rates.len() < 2 {
            continue;
        }
        rates.sort_by_key(|r| r.0);
        if let Some(&(_, one)) = rates.iter().find(|r| r.0 == 1) {
            let most = rates.iter().map(|r| r.0).max().unwrap_or(1) as f64;
            guides.push(Guide {
                of: series.len(),
                points: vec![(1.0, one), (most, one * most)],
            });
        }
        series.push(Series {
            name: name(suite, case, param),
            points: rates.into_iter().map(|(t, v)| (t as f64, v)).collect(),
        });
    }
    (series, guides)
}

/// Throughput by threads, with ideal scaling.
fn threads_plot(dir: &Path, rec: &Recorder) -> Result<()> {
    let (series, guides) = scaling(rec);
    let chart = Chart {
        title: "Throughput by threads (dashed: ideal scaling from 1 thread)".into(),
        x_label: "threads".into(),
        y_label: "M events (records)/s".into(),
        log_x: false,
        log_y: true,
        series,
    };
    std::fs::write(
        dir.join("threads.svg"),
        chart.render_with(&guides, "ideal: n × the 1-thread figure"),
    )?;
    Ok(())
}

/// The bars of every job and peer: median and min–max of each case.
#[must_use]
pub fn peer_bars(rec: &Recorder) -> Vec<Bar> {
    rec.cases()
        .into_iter()
        .filter(|k| !OPERATOR_SUITES.contains(&k.0))
        .filter_map(|(suite, case, param, threads)| {
            let s = rec.spread(suite, case, param, threads)?;
            Some(Bar {
                label: format!(
                    "{}, {threads} thread{}",
                    name(suite, case, param),
                    if threads == 1 { "" } else { "s" }
                ),
                group: suite.to_owned(),
                median: s.median / 1e6,
                min: s.min / 1e6,
                max: s.max / 1e6,
            })
        })
        .collect()
}

/// Every job and peer side by side.
fn peers_plot(dir: &Path, rec: &Recorder) -> Result<()> {
    let chart = Bars {
        title: "Jobs and peers: median, whiskers min–max (colour: suite or peer)".into(),
        x_label: "M records (events, lines)/s".into(),
        log_x: true,
        bars: peer_bars(rec),
    };
    std::fs::write(dir.join("peers.svg"), chart.render())?;
    Ok(())
}

/// The latency distribution of each batch size, HDR-style.
fn latency_plot(dir: &Path, rec: &Recorder) -> Result<()> {
    // HDR-style: x = 1 / (1 − percentile), the maximum drawn one decade on.
    let series = rec
        .latency
        .iter()
        .map(|(events, points)| {
            let mut last_x = 1.0;
            let pts = points
                .iter()
                .filter(|(p, _)| *p > 0.0)
                .map(|&(p, us)| {
                    let x = if p >= 100.0 {
                        last_x * 10.0
                    } else {
                        100.0 / (100.0 - p)
                    };
                    last_x = x;
                    (x, us)
                })
                .collect();
            Series {
                name: format!("{events} events"),
                points: pts,
            }
        })
        .collect();
    let chart = Chart {
        title: "Micro-batch latency distribution (x: 1/(1 − percentile); last point: max)".into(),
        x_label: "2 = p50, 10 = p90, 100 = p99, 1000 = p99.9".into(),
        y_label: "µs".into(),
        log_x: true,
        log_y: true,
        series,
    };
    std::fs::write(dir.join("latency.svg"), chart.render())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Row;
    use super::*;

    #[test]
    fn every_multi_thread_case_scales_against_its_ideal_and_every_peer_gets_a_bar() {
        let dir = std::env::temp_dir().join(format!("bench-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = Recorder::create(&dir).unwrap();
        let mut push = |suite: &'static str, case: &str, threads: usize, seconds: f64| {
            for iteration in 0..2 {
                rec.push(Row {
                    suite,
                    case: case.into(),
                    param: 0,
                    threads,
                    iteration,
                    elements: 3_000_000,
                    seconds: seconds * (1.0 + iteration as f64),
                })
                .unwrap();
            }
        };
        push("threads", "engine_count_sum", 1, 1.0);
        push("threads", "engine_count_sum", 4, 0.5);
        push("ingest", "ysb", 1, 1.0);
        push("ingest", "ysb", 4, 0.4);
        push("c", "ysb", 1, 2.0);
        // A peer nobody told the plots about.
        push("flink", "sql_hop", 4, 3.0);
        let (series, guides) = scaling(&rec);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["threads engine_count_sum", "ingest ysb"]);
        // 1 thread: 3 M in 1 s and in 2 s, a median of 2.25 M/s; the ideal
        // on 4 threads is 9 M/s.
        assert_eq!(guides.len(), 2);
        assert_eq!(guides[1].of, 1);
        assert_eq!(guides[1].points, vec![(1.0, 2.25), (4.0, 9.0)]);
        let bars = peer_bars(&rec);
        let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "ingest ysb, 1 thread",
                "ingest ysb, 4 threads",
                "c ysb, 1 thread",
                "flink sql_hop, 4 threads"
            ]
        );
        let c = &bars[2];
        assert_eq!((c.group.as_str(), c.min, c.max), ("c", 0.75, 1.5));
        write(
            &dir,
            &rec,
            &Options {
                sizes: super::super::Sizes::QUICK,
                out: dir.clone(),
                with_polars: false,
                with_spark: false,
                with_flink: false,
                only: Vec::new(),
                threads: 4,
                command: String::new(),
            },
        )
        .unwrap();
        let peers = std::fs::read_to_string(dir.join("peers.svg")).unwrap();
        assert!(peers.contains("flink sql_hop, 4 threads"));
        let threads = std::fs::read_to_string(dir.join("threads.svg")).unwrap();
        assert_eq!(threads.matches("stroke-dasharray").count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
