//! Line charts and bar charts as standalone SVG files, for the run folders
//! of `reproduce`: no plotting dependency, readable in any browser. A line
//! chart may carry dashed guides (ideal scaling, say) in the colours of the
//! lines they belong to; a bar chart shows medians with min–max whiskers.
//!
//! ```
//! use bench::svg::{Chart, Series};
//!
//! let chart = Chart {
//!     title: "throughput".into(),
//!     x_label: "W/S".into(),
//!     y_label: "M events/s".into(),
//!     log_x: true,
//!     log_y: true,
//!     series: vec![Series { name: "engine".into(), points: vec![(10.0, 250.0), (3600.0, 240.0)] }],
//! };
//! assert!(chart.render().starts_with("<svg"));
//! ```

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// A dashed line drawn in the colour of a series, without a legend entry
/// of its own (e.g. the ideal scaling of that series).
#[derive(Debug, Clone)]
pub struct Guide {
    /// Index of the series in [`Chart::series`] whose colour it takes.
    pub of: usize,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// Logarithmic horizontal axis.
    pub log_x: bool,
    /// Logarithmic vertical axis.
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 320.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// An axis: maps data to pixels, linear or logarithmic.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    /// Ticks at whole numbers (a linear axis of a few small integers, such
    /// as thread counts).
    integer_ticks: bool,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Self {
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        let mut whole = true;
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
            whole &= v.fract() == 0.0;
        }
        if lo > hi {
            (lo, hi) = (1.0, 10.0);
        }
        if !log && whole && hi - lo <= 16.0 {
            return Self {
                log,
                lo: lo - 0.5,
                hi: hi + 0.5,
                integer_ticks: true,
            };
        }
        if log {
            lo = 10_f64.powf(lo.log10().floor());
            hi = 10_f64.powf(hi.log10().ceil().max(lo.log10() + 1.0));
        } else {
            lo = lo.min(0.0);
            if hi <= lo {
                hi = lo + 1.0;
            }
            hi *= 1.05;
        }
        Self {
            log,
            lo,
            hi,
            integer_ticks: false,
        }
    }

    /// Position in 0..=1.
    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.integer_ticks {
            let (a, b) = ((self.lo + 0.5) as i64, (self.hi - 0.5) as i64);
            return (a..=b).map(|t| t as f64).collect();
        }
        if self.log {
            let (a, b) = (
                self.lo.log10().round() as i32,
                self.hi.log10().round() as i32,
            );
            (a..=b).map(|e| 10_f64.powi(e)).collect()
        } else {
            (0..=5)
                .map(|i| self.lo + (self.hi - self.lo) * f64::from(i) / 5.0)
                .collect()
        }
    }
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 || v.abs() < 1e-2 {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `x,y x,y …` of the finite `points`, mapped to pixels by `at`.
fn pixels(points: &[(f64, f64)], at: &dyn Fn((f64, f64)) -> (f64, f64)) -> String {
    points
        .iter()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|&p| {
            let (x, y) = at(p);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The height of a chart whose legend has `entries` lines: taller than
/// [`HEIGHT`] when the legend needs it.
fn height_for(entries: usize) -> f64 {
    HEIGHT.max(TOP + 20.0 * entries as f64 + 10.0 + BOTTOM)
}

impl Chart {
    /// Draws `guides` dashed, and their legend line at `lx` below the
    /// series' (when there are any).
    fn draw_guides(
        &self,
        s: &mut String,
        guides: &[Guide],
        legend: &str,
        at: &dyn Fn((f64, f64)) -> (f64, f64),
        lx: f64,
    ) {
        for guide in guides {
            let color = COLORS[guide.of % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
                pixels(&guide.points, at)
            );
        }
        if !guides.is_empty() {
            let ly = TOP + 10.0 + 20.0 * self.series.len() as f64;
            let _ = writeln!(
                s,
                r##"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="#555" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}">{}</text>"##,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0,
                escape(legend)
            );
        }
    }

    /// The chart as an SVG document.
    #[must_use]
    pub fn render(&self) -> String {
        self.render_with(&[], "")
    }

    /// The chart with dashed `guides`, explained by `guide_legend` (a last
    /// legend line, drawn dashed) when there are any.
    #[must_use]
    pub fn render_with(&self, guides: &[Guide], guide_legend: &str) -> String {
        let points = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .chain(guides.iter().flat_map(|g| g.points.iter()))
        };
        let x = Axis::new(points().map(|p| p.0), self.log_x);
        let y = Axis::new(points().map(|p| p.1), self.log_y);
        let legend_lines = self.series.len() + usize::from(!guides.is_empty());
        let height = height_for(legend_lines);
        let (pw, ph) = (WIDTH - LEFT - RIGHT, height - TOP - BOTTOM);
        let px = |v: f64| LEFT + x.fraction(v) * pw;
        let py = |v: f64| TOP + ph - y.fraction(v) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        for t in x.ticks() {
            let at = px(t);
            let _ = writeln!(
                s,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 16.0,
                label(t)
            );
        }
        for t in y.ticks() {
            let at = py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                at + 4.0,
                label(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            height - 15.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        let lx = LEFT + pw + 12.0;
        let at = |(a, b): (f64, f64)| (px(a), py(b));
        self.draw_guides(&mut s, guides, guide_legend, &at, lx);
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
            }
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// One bar: a median and its spread.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Text left of the bar.
    pub label: String,
    /// Bars of one group share a colour (a peer, a suite).
    pub group: String,
    /// The bar's length.
    pub median: f64,
    /// The whisker's ends.
    pub min: f64,
    /// The whisker's ends.
    pub max: f64,
}

/// A horizontal bar chart with min–max whiskers, a bar per line.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Title above the plot.
    pub title: String,
    /// Label of the value axis.
    pub x_label: String,
    /// Logarithmic value axis.
    pub log_x: bool,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
}

/// Width of the label column of a bar chart.
const BAR_LABELS: f64 = 330.0;
/// Height of a bar's line.
const BAR_LINE: f64 = 22.0;

impl Bars {
    /// The chart as an SVG document.
    #[must_use]
    pub fn render(&self) -> String {
        let axis = Axis::new(
            self.bars.iter().flat_map(|b| [b.min, b.median, b.max]),
            self.log_x,
        );
        let left = BAR_LABELS;
        let pw = WIDTH - left - 90.0;
        let ph = BAR_LINE * self.bars.len().max(1) as f64;
        let height = TOP + ph + BOTTOM;
        let px = |v: f64| left + axis.fraction(v).clamp(0.0, 1.0) * pw;
        let mut groups: Vec<&str> = Vec::new();
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        for t in axis.ticks() {
            let at = px(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 16.0,
                label(t)
            );
        }
        for (i, bar) in self.bars.iter().enumerate() {
            let group = groups
                .iter()
                .position(|g| *g == bar.group)
                .unwrap_or_else(|| {
                    groups.push(&bar.group);
                    groups.len() - 1
                });
            let color = COLORS[group % COLORS.len()];
            let top = TOP + BAR_LINE * i as f64;
            let mid = top + BAR_LINE / 2.0;
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                mid + 4.0,
                escape(&bar.label)
            );
            let (x0, xm) = (px(axis.lo), px(bar.median));
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.75"/>"#,
                top + 4.0,
                (xm - x0).max(1.0),
                BAR_LINE - 8.0
            );
            let (lo, hi) = (px(bar.min), px(bar.max));
            let _ = writeln!(
                svg,
                r#"<path d="M{lo:.1},{:.1}V{:.1}M{lo:.1},{mid:.1}H{hi:.1}M{hi:.1},{:.1}V{:.1}" stroke="black" fill="none"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                mid - 5.0,
                mid + 5.0,
                mid - 5.0,
                mid + 5.0,
                hi.max(xm) + 5.0,
                mid + 4.0,
                label(bar.median)
            );
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{left}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            height - 15.0,
            escape(&self.x_label)
        );
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_and_legend_is_drawn() {
        let chart = Chart {
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series {
                    name: "one".into(),
                    points: vec![(1.0, 1.0), (10.0, 2.0), (100.0, 3.0)],
                },
                Series {
                    name: "two".into(),
                    points: vec![(1.0, 0.5)],
                },
            ],
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">one<") && svg.contains(">two<"));
        assert!(svg.contains("a &lt; b"));
        assert!(svg.ends_with("</svg>\n"));
        assert!(!svg.contains("stroke-dasharray"));
    }

    #[test]
    fn guides_are_dashed_in_their_series_colour_and_long_legends_fit() {
        let series: Vec<Series> = (0..30)
            .map(|i| Series {
                name: format!("s{i}"),
                points: vec![(1.0, 1.0 + f64::from(i)), (2.0, 1.5 + f64::from(i))],
            })
            .collect();
        let chart = Chart {
            title: "t".into(),
            x_label: "threads".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            series,
        };
        let guides = [Guide {
            of: 1,
            points: vec![(1.0, 2.0), (2.0, 4.0)],
        }];
        let svg = chart.render_with(&guides, "ideal scaling");
        // One dashed guide and its legend line, in series 1's colour.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(svg.contains(&format!(
            r#"stroke="{}" stroke-width="1.5" stroke-dasharray"#,
            COLORS[1]
        )));
        assert!(svg.contains(">ideal scaling<"));
        // 31 legend lines do not fit 460 px: the chart grows.
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .and_then(|h| h.parse().ok())
            .unwrap();
        assert!(height >= TOP + 20.0 * 31.0, "{height}");
    }

    #[test]
    fn bars_have_a_whisker_each_and_groups_share_colours() {
        let bar = |label: &str, group: &str, m: f64| Bar {
            label: label.into(),
            group: group.into(),
            median: m,
            min: m * 0.9,
            max: m * 1.1,
        };
        let chart = Bars {
            title: "peers".into(),
            x_label: "M/s".into(),
            log_x: true,
            bars: vec![
                bar("engine 1", "ingest", 10.0),
                bar("engine 2", "ingest", 18.0),
                bar("c", "c", 7.0),
            ],
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<path").count(), 3);
        assert_eq!(svg.matches(&format!(r#"fill="{}""#, COLORS[0])).count(), 2);
        assert_eq!(svg.matches(&format!(r#"fill="{}""#, COLORS[1])).count(), 1);
        assert!(svg.contains(">engine 2<") && svg.contains(">18<"));
    }
}
