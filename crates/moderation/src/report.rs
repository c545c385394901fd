//! Files a person looks at: `report.md` and a self-contained `report.html` with inline SVG plots
//! drawn here (no plotting crate, no external CSS, JS or fonts; the HTML opens from `file://`),
//! plus each plot as a standalone `.svg`, and side-by-side comparisons of two reports.
//!
//! [`write_report`] writes into a directory:
//!
//! * `report.html` — header with the [`ReportMeta`], metrics table with bootstrap intervals, the
//!   plots inline, per-category, per-slice and format-failure tables;
//! * `report.md` — the same tables in Markdown, linking the plot files;
//! * `pr.svg`, `roc.svg`, `reliability.svg`, `hist.svg`, `confusion.svg`;
//! * `metrics.json` (the [`EvalMetrics`]) and `report_meta.json` (the [`ReportMeta`]), so that
//!   [`compare_reports`] can read the directory later.
//!
//! [`compare_reports`] reads two such directories (only `metrics.json` is required) and writes
//! `compare.md`, `compare.html`, `compare_pr.svg` and `compare_roc.svg`; when both have
//! `scores.jsonl`, also `compare.json` with paired bootstrap intervals of the differences
//! ([`crate::paired`]).

use crate::eval::{EvalError, EvalMetrics, ThresholdSource};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Who and what produced a report; shown in its header. Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// Report title.
    pub title: String,
    /// Model (name, path or checkpoint).
    pub model: String,
    /// Policy id.
    pub policy_id: String,
    /// Policy version.
    pub policy_version: String,
    /// The scored data file.
    pub data_file: String,
    /// Scoring mode, e.g. `verdict-token`, `mc N=32 T=1.0`, `greedy`.
    pub scoring_mode: String,
    /// The command line that produced the scores.
    pub command: String,
    /// When the report was made.
    pub timestamp: String,
    /// Further key/value pairs, shown in order.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl ReportMeta {
    fn fields(&self) -> Vec<(String, String)> {
        let policy = match (self.policy_id.is_empty(), self.policy_version.is_empty()) {
            (true, true) => String::new(),
            (false, true) => self.policy_id.clone(),
            (true, false) => format!("version {}", self.policy_version),
            (false, false) => format!("{} v{}", self.policy_id, self.policy_version),
        };
        let mut out: Vec<(String, String)> = [
            ("Model", self.model.clone()),
            ("Policy", policy),
            ("Data", self.data_file.clone()),
            ("Scoring", self.scoring_mode.clone()),
            ("Command", self.command.clone()),
            ("Time", self.timestamp.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        out.extend(self.extra.iter().cloned());
        out.retain(|(_, v)| !v.trim().is_empty());
        out
    }

    fn title_or(&self, fallback: &str) -> String {
        if self.title.trim().is_empty() {
            fallback.to_string()
        } else {
            self.title.clone()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers.

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn f4(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

fn ci_text(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(String::new, |[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
}

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:+.4}"))
}

/// Coordinates with one decimal keep the SVG small.
fn c(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(4)
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn nice_step(max: f64, target: usize) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 0.2;
    }
    let raw = max / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn ticks(max: f64, step: f64) -> Vec<f64> {
    let n = (max / step).round() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

// ---------------------------------------------------------------------------------------------
// A tiny SVG writer.

const BLUE: &str = "#0072B2";
const ORANGE: &str = "#E69F00";
const VERMILLION: &str = "#D55E00";
const GREY: &str = "#666666";
const GRID: &str = "#e5e5e5";
const FONT: &str = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif";

/// The plot area in pixels and the data ranges it shows.
#[derive(Debug, Clone, Copy)]
struct Frame {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xr: (f64, f64),
    yr: (f64, f64),
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        self.x0 + (v - self.xr.0) / (self.xr.1 - self.xr.0) * self.w
    }

    fn y(&self, v: f64) -> f64 {
        self.y0 + self.h - (v - self.yr.0) / (self.yr.1 - self.yr.0) * self.h
    }

    fn bottom(&self) -> f64 {
        self.y0 + self.h
    }

    fn right(&self) -> f64 {
        self.x0 + self.w
    }
}

#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Line {
        color: &'a str,
        dash: Option<&'a str>,
    },
    Dot {
        color: &'a str,
    },
    Swatch {
        color: &'a str,
    },
}

#[derive(Debug, Clone, Copy)]
enum Corner {
    TopLeft,
    TopCenter,
    BottomLeft,
    BottomRight,
}

struct Svg {
    w: f64,
    h: f64,
    title: String,
    body: String,
}

impl Svg {
    fn new(w: f64, h: f64, title: &str) -> Svg {
        let mut s = Svg {
            w,
            h,
            title: title.to_string(),
            body: String::new(),
        };
        let _ = write!(
            s.body,
            r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
            c(w),
            c(h)
        );
        s.text(
            w / 2.0,
            22.0,
            title,
            15.0,
            "middle",
            r#"font-weight="bold""#,
        );
        s
    }

    fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="{anchor}" {extra}>{}</text>"#,
            c(x),
            c(y),
            c(size),
            esc(s)
        );
    }

    fn line(
        &mut self,
        (x1, y1): (f64, f64),
        (x2, y2): (f64, f64),
        stroke: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let dash = dash.map_or_else(String::new, |d| format!(r#" stroke-dasharray="{d}""#));
        let _ = write!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{stroke}" stroke-width="{}"{dash}/>"#,
            c(x1),
            c(y1),
            c(x2),
            c(y2),
            c(width)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}" {extra}/>"#,
            c(x),
            c(y),
            c(w.max(0.0)),
            c(h.max(0.0))
        );
    }

    fn path(&mut self, d: &str, stroke: &str, width: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<path d="{d}" stroke="{stroke}" stroke-width="{}" fill="{fill}" stroke-linejoin="round" {extra}/>"#,
            c(width)
        );
    }

    fn dot(&mut self, x: f64, y: f64, r: f64, fill: &str) {
        let _ = write!(
            self.body,
            r##"<circle cx="{}" cy="{}" r="{}" fill="{fill}" stroke="#ffffff" stroke-width="1"/>"##,
            c(x),
            c(y),
            c(r)
        );
    }

    /// Grid, frame, ticks with labels and axis labels.
    fn axes(
        &mut self,
        f: &Frame,
        xt: (&[f64], f64),
        yt: (&[f64], f64),
        xlabel: &str,
        ylabel: &str,
    ) {
        for &t in xt.0 {
            let x = f.x(t);
            self.line((x, f.y0), (x, f.bottom()), GRID, 1.0, None);
            self.line((x, f.bottom()), (x, f.bottom() + 5.0), "#333333", 1.0, None);
            self.text(
                x,
                f.bottom() + 18.0,
                &tick_label(t, xt.1),
                11.0,
                "middle",
                "",
            );
        }
        for &t in yt.0 {
            let y = f.y(t);
            self.line((f.x0, y), (f.right(), y), GRID, 1.0, None);
            self.line((f.x0 - 5.0, y), (f.x0, y), "#333333", 1.0, None);
            self.text(f.x0 - 8.0, y + 4.0, &tick_label(t, yt.1), 11.0, "end", "");
        }
        self.rect(
            f.x0,
            f.y0,
            f.w,
            f.h,
            "none",
            r##"stroke="#333333" stroke-width="1""##,
        );
        self.text(
            f.x0 + f.w / 2.0,
            f.bottom() + 38.0,
            xlabel,
            12.5,
            "middle",
            "",
        );
        let (lx, ly) = (16.0, f.y0 + f.h / 2.0);
        self.text(
            lx,
            ly,
            ylabel,
            12.5,
            "middle",
            &format!(r#"transform="rotate(-90 {} {})""#, c(lx), c(ly)),
        );
    }

    fn legend(&mut self, f: &Frame, entries: &[(Key<'_>, String)], corner: Corner) {
        if entries.is_empty() {
            return;
        }
        let row = 18.0;
        let longest = entries
            .iter()
            .map(|(_, s)| s.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let w = 40.0 + longest * 6.6;
        let h = 8.0 + row * entries.len() as f64;
        let pad = 8.0;
        let (x, y) = match corner {
            Corner::TopLeft => (f.x0 + pad, f.y0 + pad),
            Corner::TopCenter => (f.x0 + (f.w - w) / 2.0, f.y0 + pad),
            Corner::BottomLeft => (f.x0 + pad, f.bottom() - pad - h),
            Corner::BottomRight => (f.right() - pad - w, f.bottom() - pad - h),
        };
        self.rect(
            x,
            y,
            w,
            h,
            "#ffffff",
            r##"fill-opacity="0.9" stroke="#bbbbbb" stroke-width="0.8" rx="3""##,
        );
        for (i, (key, label)) in entries.iter().enumerate() {
            let cy = y + 4.0 + row * (i as f64 + 0.5);
            match *key {
                Key::Line { color, dash } => {
                    self.line((x + 8.0, cy), (x + 28.0, cy), color, 2.2, dash)
                }
                Key::Dot { color } => self.dot(x + 18.0, cy, 4.5, color),
                Key::Swatch { color } => self.rect(
                    x + 10.0,
                    cy - 6.0,
                    16.0,
                    12.0,
                    color,
                    &format!(r#"fill-opacity="0.45" stroke="{color}" stroke-width="1.2""#),
                ),
            }
            self.text(x + 34.0, cy + 4.0, label, 11.5, "start", "");
        }
    }

    fn note(&mut self, f: &Frame, s: &str) {
        self.text(
            f.x0 + f.w / 2.0,
            f.y0 + f.h / 2.0,
            s,
            13.0,
            "middle",
            &format!(r#"fill="{GREY}""#),
        );
    }

    /// The finished SVG; `standalone` adds the namespace a `.svg` file needs (inline SVG in HTML
    /// does without it).
    fn finish(self, standalone: bool) -> String {
        let ns = if standalone {
            r#" xmlns="http://www.w3.org/2000/svg""#
        } else {
            ""
        };
        format!(
            r##"<svg{ns} viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="{FONT}" fill="#222222"><title>{t}</title>{body}</svg>"##,
            w = c(self.w),
            h = c(self.h),
            t = esc(&self.title),
            body = self.body
        ) + if standalone { "\n" } else { "" }
    }
}

const PLOT_W: f64 = 520.0;
const PLOT_H: f64 = 440.0;

fn unit_frame() -> Frame {
    Frame {
        x0: 66.0,
        y0: 40.0,
        w: 430.0,
        h: 330.0,
        xr: (0.0, 1.0),
        yr: (0.0, 1.0),
    }
}

const UNIT_TICKS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/// The PR curve as steps (its area is the average precision).
fn pr_path(f: &Frame, points: &[[f64; 2]]) -> String {
    let mut d = String::new();
    for (i, p) in points.iter().enumerate() {
        if i == 0 {
            let _ = write!(d, "M{} {}", c(f.x(p[0])), c(f.y(p[1])));
        } else {
            let _ = write!(d, "V{}H{}", c(f.y(p[1])), c(f.x(p[0])));
        }
    }
    d
}

fn poly_path(f: &Frame, points: &[[f64; 2]]) -> String {
    let mut d = String::new();
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            d,
            "{}{} {}",
            if i == 0 { "M" } else { "L" },
            c(f.x(p[0])),
            c(f.y(p[1]))
        );
    }
    d
}

/// One model's curve for an overlay plot.
struct Series<'a> {
    label: String,
    color: &'a str,
    metrics: &'a EvalMetrics,
}

fn fpr_of(m: &EvalMetrics) -> Option<f64> {
    m.confusion
        .and_then(|c| (c.fp + c.tn > 0).then(|| c.fp as f64 / (c.fp + c.tn) as f64))
}

fn op_point_key<'a>(series: &[Series<'a>], any: bool) -> Option<(Key<'a>, String)> {
    match series {
        _ if !any => None,
        [one] => Some((
            Key::Dot { color: one.color },
            format!("threshold {}", f4(one.metrics.threshold)),
        )),
        _ => Some((
            Key::Dot { color: GREY },
            "operating points at thresholds".into(),
        )),
    }
}

fn pr_svg(series: &[Series<'_>], title: &str, standalone: bool) -> String {
    let f = unit_frame();
    let mut s = Svg::new(PLOT_W, PLOT_H, title);
    s.axes(
        &f,
        (&UNIT_TICKS, 0.2),
        (&UNIT_TICKS, 0.2),
        "Recall",
        "Precision",
    );
    let mut legend = Vec::new();
    let mut baselines = Vec::new();
    let mut any_point = false;
    for se in series {
        let m = se.metrics;
        if m.curves.pr.is_empty() {
            continue;
        }
        s.path(&pr_path(&f, &m.curves.pr), se.color, 2.2, "none", "");
        legend.push((
            Key::Line {
                color: se.color,
                dash: None,
            },
            format!("{} (PR-AUC {})", se.label, f4(m.pr_auc)),
        ));
        if let (Some(r), Some(p)) = (m.recall, m.precision) {
            if m.confusion.is_some_and(|c| c.tp + c.fp > 0) {
                s.dot(f.x(r), f.y(p), 5.0, se.color);
                any_point = true;
            }
        }
        if let Some(p) = m.prevalence {
            baselines.push((p, se));
        }
    }
    // The no-skill line: one grey line when the prevalences agree, else one per model.
    let same = baselines
        .windows(2)
        .all(|w| (w[0].0 - w[1].0).abs() < 1e-12);
    for (k, (p, se)) in baselines.iter().enumerate() {
        if same && k > 0 {
            break;
        }
        let (color, who) = if same {
            (GREY, String::new())
        } else {
            (se.color, format!("{}: ", se.label))
        };
        s.line(
            (f.x(0.0), f.y(*p)),
            (f.x(1.0), f.y(*p)),
            color,
            1.2,
            Some("6 4"),
        );
        legend.push((
            Key::Line {
                color,
                dash: Some("6 4"),
            },
            format!("{who}no skill (prevalence {p:.3})"),
        ));
    }
    legend.extend(op_point_key(series, any_point));
    if baselines.is_empty() && legend.is_empty() {
        s.note(&f, "undefined: no violating items");
    }
    s.legend(&f, &legend, Corner::BottomLeft);
    s.finish(standalone)
}

fn roc_svg(series: &[Series<'_>], title: &str, standalone: bool) -> String {
    let f = unit_frame();
    let mut s = Svg::new(PLOT_W, PLOT_H, title);
    s.axes(
        &f,
        (&UNIT_TICKS, 0.2),
        (&UNIT_TICKS, 0.2),
        "False-positive rate",
        "True-positive rate (recall)",
    );
    s.line(
        (f.x(0.0), f.y(0.0)),
        (f.x(1.0), f.y(1.0)),
        GREY,
        1.2,
        Some("6 4"),
    );
    let mut legend = Vec::new();
    let mut any_point = false;
    for se in series {
        let m = se.metrics;
        if m.curves.roc.is_empty() {
            continue;
        }
        s.path(&poly_path(&f, &m.curves.roc), se.color, 2.2, "none", "");
        legend.push((
            Key::Line {
                color: se.color,
                dash: None,
            },
            format!("{} (ROC-AUC {})", se.label, f4(m.roc_auc)),
        ));
        if let (Some(r), Some(fpr)) = (m.recall, fpr_of(m)) {
            s.dot(f.x(fpr), f.y(r), 5.0, se.color);
            any_point = true;
        }
    }
    if legend.is_empty() {
        s.note(&f, "undefined: needs both classes");
    }
    legend.extend(op_point_key(series, any_point));
    legend.push((
        Key::Line {
            color: GREY,
            dash: Some("6 4"),
        },
        "chance".to_string(),
    ));
    s.legend(&f, &legend, Corner::BottomRight);
    s.finish(standalone)
}

fn reliability_svg(m: &EvalMetrics, standalone: bool) -> String {
    let mut s = Svg::new(PLOT_W, PLOT_H, "Reliability diagram");
    let f = Frame {
        h: 270.0,
        ..unit_frame()
    };
    let counts = Frame {
        y0: f.bottom() + 14.0,
        h: 60.0,
        yr: (0.0, 1.0),
        ..f
    };
    // Main panel: bars of the fraction violating per bin, the identity line, mean-score points.
    for &t in &UNIT_TICKS {
        s.line((f.x(t), f.y0), (f.x(t), f.bottom()), GRID, 1.0, None);
        s.line((f.x0, f.y(t)), (f.right(), f.y(t)), GRID, 1.0, None);
        s.line((f.x0 - 5.0, f.y(t)), (f.x0, f.y(t)), "#333333", 1.0, None);
        s.text(
            f.x0 - 8.0,
            f.y(t) + 4.0,
            &tick_label(t, 0.2),
            11.0,
            "end",
            "",
        );
    }
    let bins = &m.curves.reliability;
    for b in bins {
        if let Some(fp) = b.frac_pos {
            s.rect(
                f.x(b.bin_lo) + 1.0,
                f.y(fp),
                f.x(b.bin_hi) - f.x(b.bin_lo) - 2.0,
                f.bottom() - f.y(fp),
                BLUE,
                r#"fill-opacity="0.25""#,
            );
        }
    }
    s.line(
        (f.x(0.0), f.y(0.0)),
        (f.x(1.0), f.y(1.0)),
        GREY,
        1.2,
        Some("6 4"),
    );
    let pts: Vec<[f64; 2]> = bins
        .iter()
        .filter_map(|b| Some([b.mean_score?, b.frac_pos?]))
        .collect();
    if !pts.is_empty() {
        s.path(&poly_path(&f, &pts), VERMILLION, 2.0, "none", "");
        for p in &pts {
            s.dot(f.x(p[0]), f.y(p[1]), 4.0, VERMILLION);
        }
    } else {
        s.note(&f, "no items");
    }
    s.rect(
        f.x0,
        f.y0,
        f.w,
        f.h,
        "none",
        r##"stroke="#333333" stroke-width="1""##,
    );
    let (lx, ly) = (16.0, f.y0 + f.h / 2.0);
    s.text(
        lx,
        ly,
        "Fraction violating",
        12.5,
        "middle",
        &format!(r#"transform="rotate(-90 {} {})""#, c(lx), c(ly)),
    );
    s.legend(
        &f,
        &[
            (
                Key::Dot { color: VERMILLION },
                format!("model (ECE {})", f4(m.ece)),
            ),
            (
                Key::Swatch { color: BLUE },
                "fraction violating per bin".into(),
            ),
            (
                Key::Line {
                    color: GREY,
                    dash: Some("6 4"),
                },
                "perfect calibration".into(),
            ),
        ],
        Corner::TopLeft,
    );
    // Count panel: items per bin, with the counts written above the bars.
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0);
    for b in bins {
        if max == 0 {
            break;
        }
        let frac = b.count as f64 / max as f64;
        let (x0, x1) = (counts.x(b.bin_lo) + 1.0, counts.x(b.bin_hi) - 1.0);
        let top = counts.y(frac * 0.78);
        s.rect(
            x0,
            top,
            x1 - x0,
            counts.bottom() - top,
            GREY,
            r#"fill-opacity="0.45""#,
        );
        s.text(
            (x0 + x1) / 2.0,
            top - 3.0,
            &b.count.to_string(),
            9.5,
            "middle",
            "",
        );
    }
    s.rect(
        counts.x0,
        counts.y0,
        counts.w,
        counts.h,
        "none",
        r##"stroke="#333333" stroke-width="1""##,
    );
    s.text(
        counts.x0 - 8.0,
        counts.y0 + counts.h / 2.0 + 4.0,
        "items",
        11.0,
        "end",
        "",
    );
    for &t in &UNIT_TICKS {
        let x = counts.x(t);
        s.line(
            (x, counts.bottom()),
            (x, counts.bottom() + 5.0),
            "#333333",
            1.0,
            None,
        );
        s.text(
            x,
            counts.bottom() + 18.0,
            &tick_label(t, 0.2),
            11.0,
            "middle",
            "",
        );
    }
    s.text(
        counts.x0 + counts.w / 2.0,
        counts.bottom() + 38.0,
        "Predicted P(violating) (points: mean score of the bin)",
        12.5,
        "middle",
        "",
    );
    s.finish(standalone)
}

fn hist_svg(m: &EvalMetrics, standalone: bool) -> String {
    let mut s = Svg::new(PLOT_W, PLOT_H, "Score distribution by class");
    let total = |h: &[usize]| h.iter().sum::<usize>();
    let (npos, nneg) = (total(&m.curves.hist_pos), total(&m.curves.hist_neg));
    let frac = |h: &[usize], n: usize| -> Vec<f64> {
        h.iter()
            .map(|&k| if n == 0 { 0.0 } else { k as f64 / n as f64 })
            .collect()
    };
    let (fp, fneg) = (
        frac(&m.curves.hist_pos, npos),
        frac(&m.curves.hist_neg, nneg),
    );
    let peak = fp.iter().chain(&fneg).cloned().fold(0.0, f64::max);
    let step = nice_step(peak.max(0.05), 5);
    let ymax = ((peak.max(0.05) / step).ceil() * step).max(step);
    let f = Frame {
        yr: (0.0, ymax),
        ..unit_frame()
    };
    s.axes(
        &f,
        (&UNIT_TICKS, 0.2),
        (&ticks(ymax, step), step),
        "Predicted P(violating)",
        "Fraction of the class",
    );
    let mut legend = Vec::new();
    for (h, n, color, name) in [
        (&fneg, nneg, BLUE, "non-violating"),
        (&fp, npos, VERMILLION, "violating"),
    ] {
        if n == 0 {
            continue;
        }
        let bins = h.len().max(1) as f64;
        let mut d = format!("M{} {}", c(f.x(0.0)), c(f.y(0.0)));
        for (i, &v) in h.iter().enumerate() {
            let _ = write!(
                d,
                "L{} {}L{} {}",
                c(f.x(i as f64 / bins)),
                c(f.y(v)),
                c(f.x((i + 1) as f64 / bins)),
                c(f.y(v))
            );
        }
        let _ = write!(d, "L{} {}Z", c(f.x(1.0)), c(f.y(0.0)));
        s.path(&d, color, 1.6, color, r#"fill-opacity="0.35""#);
        legend.push((Key::Swatch { color }, format!("{name} (n = {n})")));
    }
    if let Some(t) = m.threshold.filter(|t| (0.0..=1.0).contains(t)) {
        s.line(
            (f.x(t), f.y0),
            (f.x(t), f.bottom()),
            "#222222",
            1.4,
            Some("5 3"),
        );
        let x = f.x(t).clamp(f.x0 + 50.0, f.right() - 50.0);
        s.text(
            x,
            f.y0 - 5.0,
            &format!("threshold {t:.3}"),
            11.0,
            "middle",
            "",
        );
        legend.push((
            Key::Line {
                color: "#222222",
                dash: Some("5 3"),
            },
            "decision threshold".to_string(),
        ));
    }
    if npos + nneg == 0 {
        s.note(&f, "no items");
    }
    s.legend(&f, &legend, Corner::TopCenter);
    s.finish(standalone)
}

/// Light-to-dark blue for `t` in `[0, 1]`.
fn heat(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(239.0, 8.0),
        lerp(243.0, 69.0),
        lerp(255.0, 148.0)
    )
}

fn confusion_svg(m: &EvalMetrics, standalone: bool) -> String {
    let mut s = Svg::new(PLOT_W, PLOT_H, "Confusion matrix");
    let (x0, y0, cell) = (170.0, 90.0, 140.0);
    let Some(cm) = m.confusion else {
        let f = unit_frame();
        s.note(&f, "no threshold: no confusion matrix");
        return s.finish(standalone);
    };
    let sub = match (m.threshold, m.threshold_source) {
        (Some(t), Some(src)) => {
            format!("predict violating when score ≥ {t:.3} (threshold from {src})")
        }
        (Some(t), None) => format!("predict violating when score ≥ {t:.3}"),
        _ => String::new(),
    };
    s.text(
        PLOT_W / 2.0,
        42.0,
        &sub,
        11.5,
        "middle",
        &format!(r#"fill="{GREY}""#),
    );
    let rows = [
        ("violating", [cm.tp, cm.fn_], ["TP", "FN"]),
        ("non-violating", [cm.fp, cm.tn], ["FP", "TN"]),
    ];
    s.text(
        x0 + cell,
        y0 - 14.0,
        "Predicted",
        12.5,
        "middle",
        r#"font-weight="bold""#,
    );
    for (j, name) in ["violating", "non-violating"].iter().enumerate() {
        s.text(
            x0 + cell * (j as f64 + 0.5),
            y0 + 2.0 * cell + 20.0,
            name,
            12.0,
            "middle",
            "",
        );
    }
    let (lx, ly) = (40.0, y0 + cell);
    s.text(
        lx,
        ly,
        "Actual",
        12.5,
        "middle",
        &format!(
            r#"font-weight="bold" transform="rotate(-90 {} {})""#,
            c(lx),
            c(ly)
        ),
    );
    for (i, (name, counts, tags)) in rows.iter().enumerate() {
        let row_total = counts[0] + counts[1];
        s.text(
            x0 - 10.0,
            y0 + cell * (i as f64 + 0.5) + 4.0,
            name,
            12.0,
            "end",
            "",
        );
        for j in 0..2 {
            let share = if row_total == 0 {
                None
            } else {
                Some(counts[j] as f64 / row_total as f64)
            };
            let t = share.unwrap_or(0.0);
            let (x, y) = (x0 + cell * j as f64, y0 + cell * i as f64);
            s.rect(
                x,
                y,
                cell,
                cell,
                &heat(t),
                r##"stroke="#ffffff" stroke-width="2""##,
            );
            let ink = if t > 0.5 { "#ffffff" } else { "#111111" };
            let (cx, cy) = (x + cell / 2.0, y + cell / 2.0);
            s.text(
                cx,
                cy - 18.0,
                tags[j],
                12.0,
                "middle",
                &format!(r#"fill="{ink}""#),
            );
            s.text(
                cx,
                cy + 8.0,
                &counts[j].to_string(),
                22.0,
                "middle",
                &format!(r#"fill="{ink}" font-weight="bold""#),
            );
            let pct = share.map_or_else(
                || "n/a".to_string(),
                |v| format!("{:.1}% of row", 100.0 * v),
            );
            s.text(
                cx,
                cy + 30.0,
                &pct,
                11.0,
                "middle",
                &format!(r#"fill="{ink}""#),
            );
        }
    }
    s.text(
        PLOT_W / 2.0,
        y0 + 2.0 * cell + 44.0,
        "shading: share of the actual class (row)",
        10.5,
        "middle",
        &format!(r#"fill="{GREY}""#),
    );
    s.finish(standalone)
}

// ---------------------------------------------------------------------------------------------
// Tables.

struct MetricRow {
    name: &'static str,
    get: fn(&EvalMetrics) -> Option<f64>,
    ci: fn(&EvalMetrics) -> Option<[f64; 2]>,
    /// Whether higher is better (for colouring deltas); `None` = neutral.
    higher_better: Option<bool>,
}

fn no_ci(_: &EvalMetrics) -> Option<[f64; 2]> {
    None
}

const METRIC_ROWS: &[MetricRow] = &[
    MetricRow {
        name: "PR-AUC (average precision)",
        get: |m| m.pr_auc,
        ci: |m| m.pr_auc_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "ROC-AUC",
        get: |m| m.roc_auc,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "F1 at threshold",
        get: |m| m.f1,
        ci: |m| m.f1_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "F1 of flagging everything",
        get: |m| m.f1_flag_all,
        ci: no_ci,
        higher_better: None,
    },
    MetricRow {
        name: "False-flag rate at threshold (benign items)",
        get: |m| m.false_flag_rate,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Precision at threshold",
        get: |m| m.precision,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at threshold",
        get: |m| m.recall,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Accuracy at threshold",
        get: |m| m.accuracy,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at precision ≥ 0.9",
        get: |m| m.recall_at_precision_0_9,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at FPR ≤ 0.01",
        get: |m| m.recall_at_fpr_0_01,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "ECE (10 bins)",
        get: |m| m.ece,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Brier score",
        get: |m| m.brier,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Format failure rate",
        get: |m| m.format_failure_rate,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Threshold",
        get: |m| m.threshold,
        ci: no_ci,
        higher_better: None,
    },
    MetricRow {
        name: "Prevalence",
        get: |m| m.prevalence,
        ci: no_ci,
        higher_better: None,
    },
];

fn source_text(m: &EvalMetrics) -> &'static str {
    match m.threshold_source {
        Some(ThresholdSource::Val) => "best F1 on validation",
        Some(ThresholdSource::Test) => "best F1 on the test data itself (optimistic)",
        Some(ThresholdSource::Fixed) => "fixed",
        None => "none (no positives to choose one)",
    }
}

fn counts_line(m: &EvalMetrics) -> String {
    let mut s = format!("{} items, {} violating", m.n, m.n_pos);
    if m.n_excluded > 0 {
        let _ = write!(
            s,
            "; {} rows excluded (invalid label or score)",
            m.n_excluded
        );
    }
    if let Some(w) = m.mean_reasoning_words {
        let _ = write!(s, "; mean reasoning length {w:.1} words");
    }
    s
}

const CSS: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1120px;color:#222;padding:0 16px}\
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f4f6f8}\
table.meta td{text-align:left;border:none;padding:2px 10px}table.meta td:first-child{color:#666;font-weight:bold}\
code{font-family:Menlo,Consolas,monospace;font-size:13px;word-break:break-all}\
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;border:1px solid #e5e5e5;border-radius:4px;padding:4px}\
svg{max-width:100%;height:auto;display:block}.muted{color:#666}.good{color:#1a7f37}.bad{color:#c62828}";

fn html_meta(meta: &ReportMeta) -> String {
    let mut out = String::from("<table class=\"meta\">");
    for (k, v) in meta.fields() {
        let value = if k == "Command" || k == "Data" {
            format!("<code>{}</code>", esc(&v))
        } else {
            esc(&v)
        };
        let _ = write!(out, "<tr><td>{}</td><td>{value}</td></tr>", esc(&k));
    }
    out.push_str("</table>");
    out
}

fn md_meta(meta: &ReportMeta) -> String {
    let mut out = String::new();
    for (k, v) in meta.fields() {
        let _ = writeln!(out, "- **{}**: `{}`", md(&k), v.replace('`', "'"));
    }
    out
}

fn html_metrics(m: &EvalMetrics) -> String {
    let mut out =
        String::from("<table><tr><th>Metric</th><th>Value</th><th>95% bootstrap CI</th></tr>");
    for r in METRIC_ROWS {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.name),
            f4((r.get)(m)),
            ci_text((r.ci)(m))
        );
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        "<p class=\"muted\">{}. Threshold source: {}.</p>",
        esc(&counts_line(m)),
        source_text(m)
    );
    out
}

fn md_metrics(m: &EvalMetrics) -> String {
    let mut out = String::from("| Metric | Value | 95% bootstrap CI |\n|---|---:|---:|\n");
    for r in METRIC_ROWS {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.name,
            f4((r.get)(m)),
            ci_text((r.ci)(m))
        );
    }
    let _ = write!(
        out,
        "\n{}. Threshold source: {}.\n",
        counts_line(m),
        source_text(m)
    );
    out
}

/// (header, rows) of the per-category, per-slice and failure tables.
type Table = (Vec<&'static str>, Vec<Vec<String>>);

fn category_table(m: &EvalMetrics) -> Table {
    let rows = m
        .per_category
        .iter()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.n.to_string(),
                f4(v.recall),
                format!("{:.4}", v.mean_score),
                format!("{} ({})", f4(v.category_accuracy), v.n_pred_category),
            ]
        })
        .collect();
    (
        vec![
            "Category",
            "n (violating)",
            "Recall",
            "Mean score",
            "Category accuracy (n predicted)",
        ],
        rows,
    )
}

fn slice_table(m: &EvalMetrics) -> Table {
    let rows = m
        .per_slice
        .iter()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.n.to_string(),
                v.n_pos.to_string(),
                f4(v.pr_auc),
                f4(v.f1),
                f4(v.fpr),
            ]
        })
        .collect();
    (
        vec!["Slice", "n", "n violating", "PR-AUC", "F1", "FPR"],
        rows,
    )
}

fn failure_table(m: &EvalMetrics) -> Table {
    let rows = m
        .failure_counts
        .iter()
        .map(|(k, v)| {
            let share = if m.n == 0 {
                0.0
            } else {
                *v as f64 / m.n as f64
            };
            vec![k.clone(), v.to_string(), format!("{:.2}%", 100.0 * share)]
        })
        .collect();
    (vec!["Failure kind", "Count", "Share of items"], rows)
}

fn html_table((header, rows): &Table, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>", esc(empty));
    }
    let mut out = String::from("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

fn md_table((header, rows): &Table, empty: &str) -> String {
    if rows.is_empty() {
        return format!("_{empty}_\n");
    }
    let mut out = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        (0..header.len())
            .map(|i| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|s| md(s)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        esc(title)
    )
}

fn write_file(path: PathBuf, contents: &str, written: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    std::fs::write(&path, contents).map_err(|source| EvalError::Io {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The plot files of a report, with their captions.
const PLOTS: [(&str, &str); 5] = [
    ("pr.svg", "Precision-recall curve"),
    ("roc.svg", "ROC curve"),
    ("reliability.svg", "Reliability diagram"),
    ("hist.svg", "Score distribution by class"),
    ("confusion.svg", "Confusion matrix"),
];

fn plots(m: &EvalMetrics, standalone: bool) -> [String; 5] {
    let one = [Series {
        label: "model".into(),
        color: BLUE,
        metrics: m,
    }];
    [
        pr_svg(&one, "Precision-recall curve", standalone),
        roc_svg(&one, "ROC curve", standalone),
        reliability_svg(m, standalone),
        hist_svg(m, standalone),
        confusion_svg(m, standalone),
    ]
}

/// Writes `report.md`, `report.html`, the five plot `.svg` files, `metrics.json` and
/// `report_meta.json` into `dir` (created if needed). Returns the paths written.
pub fn write_report(
    dir: impl AsRef<Path>,
    metrics: &EvalMetrics,
    meta: &ReportMeta,
) -> Result<Vec<PathBuf>, EvalError> {
    let dir = dir.as_ref();
    create_dir(dir)?;
    let mut written = Vec::new();
    let title = meta.title_or("Moderation evaluation");

    for ((file, _), svg) in PLOTS.iter().zip(plots(metrics, true)) {
        write_file(dir.join(file), &svg, &mut written)?;
    }

    let cats = category_table(metrics);
    let slices = slice_table(metrics);
    let failures = failure_table(metrics);
    let no_cat = "No gold categories on violating items.";
    let no_slice = "No slices.";
    let no_fail = "Every output parsed.";

    let mut body = format!(
        "<h1>{}</h1>\n{}\n<h2>Metrics</h2>\n{}\n<h2>Plots</h2>\n<div class=\"plots\">",
        esc(&title),
        html_meta(meta),
        html_metrics(metrics)
    );
    for ((_, caption), svg) in PLOTS.iter().zip(plots(metrics, false)) {
        let _ = write!(
            body,
            "<figure aria-label=\"{}\">{svg}</figure>",
            esc(caption)
        );
    }
    body.push_str("</div>\n");
    let _ = write!(
        body,
        "<h2>Per category</h2>\n{}\n<h2>Per slice</h2>\n{}\n<h2>Format failures</h2>\n{}\n",
        html_table(&cats, no_cat),
        html_table(&slices, no_slice),
        html_table(&failures, no_fail)
    );
    write_file(
        dir.join("report.html"),
        &html_page(&title, &body),
        &mut written,
    )?;

    let mut text = format!(
        "# {}\n\n{}\n## Metrics\n\n{}\n## Plots\n\n",
        md(&title),
        md_meta(meta),
        md_metrics(metrics)
    );
    for (file, caption) in PLOTS {
        let _ = writeln!(text, "![{caption}]({file})\n");
    }
    let _ = write!(
        text,
        "## Per category\n\n{}\n## Per slice\n\n{}\n## Format failures\n\n{}",
        md_table(&cats, no_cat),
        md_table(&slices, no_slice),
        md_table(&failures, no_fail)
    );
    write_file(dir.join("report.md"), &text, &mut written)?;

    let path = dir.join("metrics.json");
    metrics.write_json(&path)?;
    written.push(path);
    let meta_json = serde_json::to_string_pretty(meta).map_err(|e| EvalError::Json {
        path: dir.join("report_meta.json"),
        message: e.to_string(),
    })?;
    write_file(
        dir.join("report_meta.json"),
        &(meta_json + "\n"),
        &mut written,
    )?;
    Ok(written)
}

/// A report directory read back for comparison.
struct Side {
    label: String,
    meta: Option<ReportMeta>,
    metrics: EvalMetrics,
}

fn read_side(dir: &Path, fallback: &str) -> Result<Side, EvalError> {
    let metrics = EvalMetrics::read_json(dir.join("metrics.json"))?;
    let meta: Option<ReportMeta> = std::fs::read_to_string(dir.join("report_meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let name = meta
        .as_ref()
        .map(|m| {
            if m.model.trim().is_empty() {
                m.title.clone()
            } else {
                m.model.clone()
            }
        })
        .filter(|s| !s.trim().is_empty())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Side {
        label: format!("{fallback}: {name}"),
        meta,
        metrics,
    })
}

fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// Reads `metrics.json` (and `report_meta.json` when present, for labels) from two report
/// directories and writes `compare.md`, `compare.html`, `compare_pr.svg` and `compare_roc.svg`
/// into `out_dir`: a metrics table with A, B and B − A columns, a per-slice table and the PR
/// and ROC curves of both overlaid. Returns the paths written.
pub fn compare_reports(
    a_dir: impl AsRef<Path>,
    b_dir: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>, EvalError> {
    let (a_dir, b_dir, out_dir) = (a_dir.as_ref(), b_dir.as_ref(), out_dir.as_ref());
    let a = read_side(a_dir, "A")?;
    let b = read_side(b_dir, "B")?;
    create_dir(out_dir)?;
    let mut written = Vec::new();
    // Paired intervals of B - A on the items both scored, when both have scores.jsonl.
    let paired = crate::paired::compare_dirs(a_dir, b_dir, 1000, 0)?;
    let paired_md = match &paired {
        Some(c) => {
            let row = |name: &str, m: &crate::paired::PairedMetric| {
                format!(
                    "| {name} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {} |\n",
                    m.a,
                    m.b,
                    m.diff,
                    m.ci[0],
                    m.ci[1],
                    if m.b_better() {
                        "B better"
                    } else if m.ci[1] < 0.0 {
                        "A better"
                    } else {
                        "no clear difference"
                    }
                )
            };
            let json = serde_json::to_string_pretty(c).unwrap_or_default();
            write_file(out_dir.join("compare.json"), &json, &mut written)?;
            format!(
                "## Paired comparison on the same items\n\n{} items scored by both ({} violating; {} only in A, {} only in B), \
                 {} paired bootstrap resamples of the items (seed {}).\n\n\
                 | Metric | A | B | B − A | 95 % paired CI | verdict |\n|---|---:|---:|---:|---|---|\n{}{}\n",
                c.n,
                c.n_pos,
                c.only_a,
                c.only_b,
                c.resamples,
                c.seed,
                row("PR-AUC", &c.pr_auc),
                row("ROC-AUC", &c.roc_auc)
            )
        }
        None => String::new(),
    };
    let make = |standalone: bool| {
        let s = [
            Series {
                label: a.label.clone(),
                color: BLUE,
                metrics: &a.metrics,
            },
            Series {
                label: b.label.clone(),
                color: ORANGE,
                metrics: &b.metrics,
            },
        ];
        (
            pr_svg(&s, "Precision-recall curves", standalone),
            roc_svg(&s, "ROC curves", standalone),
        )
    };
    let (pr_file, roc_file) = make(true);
    write_file(out_dir.join("compare_pr.svg"), &pr_file, &mut written)?;
    write_file(out_dir.join("compare_roc.svg"), &roc_file, &mut written)?;

    // Metrics rows: name, A, B, B - A, whether the change is good.
    let mut rows: Vec<(String, String, String, String, Option<bool>)> = vec![(
        "Items (violating)".into(),
        format!("{} ({})", a.metrics.n, a.metrics.n_pos),
        format!("{} ({})", b.metrics.n, b.metrics.n_pos),
        String::new(),
        None,
    )];
    for r in METRIC_ROWS {
        let (va, vb) = ((r.get)(&a.metrics), (r.get)(&b.metrics));
        let with_ci = |v: Option<f64>, ci: Option<[f64; 2]>| {
            let t = ci_text(ci);
            if t.is_empty() {
                f4(v)
            } else {
                format!("{} {t}", f4(v))
            }
        };
        let d = delta(va, vb);
        let good = match (r.higher_better, d) {
            (Some(h), Some(d)) if d != 0.0 => Some((d > 0.0) == h),
            _ => None,
        };
        rows.push((
            r.name.to_string(),
            with_ci(va, (r.ci)(&a.metrics)),
            with_ci(vb, (r.ci)(&b.metrics)),
            signed(d),
            good,
        ));
    }
    rows.push((
        "Threshold source".into(),
        a.metrics
            .threshold_source
            .map_or("none", ThresholdSource::as_str)
            .into(),
        b.metrics
            .threshold_source
            .map_or("none", ThresholdSource::as_str)
            .into(),
        String::new(),
        None,
    ));

    let mut slice_names: Vec<&String> = a
        .metrics
        .per_slice
        .keys()
        .chain(b.metrics.per_slice.keys())
        .collect();
    slice_names.sort();
    slice_names.dedup();
    let slice_rows: Vec<Vec<String>> = slice_names
        .iter()
        .map(|k| {
            let sa = a.metrics.per_slice.get(*k);
            let sb = b.metrics.per_slice.get(*k);
            let pa = sa.and_then(|s| s.pr_auc);
            let pb = sb.and_then(|s| s.pr_auc);
            let fa = sa.and_then(|s| s.f1);
            let fb = sb.and_then(|s| s.f1);
            vec![
                (*k).clone(),
                format!("{} / {}", sa.map_or(0, |s| s.n), sb.map_or(0, |s| s.n)),
                f4(pa),
                f4(pb),
                signed(delta(pa, pb)),
                f4(fa),
                f4(fb),
                signed(delta(fa, fb)),
            ]
        })
        .collect();
    let slice_table: Table = (
        vec![
            "Slice",
            "n (A / B)",
            "PR-AUC A",
            "PR-AUC B",
            "Δ PR-AUC",
            "F1 A",
            "F1 B",
            "Δ F1",
        ],
        slice_rows,
    );

    let title = format!("Comparison: {} vs {}", a.label, b.label);
    // HTML.
    let mut body = format!("<h1>{}</h1>\n<div class=\"plots\">", esc(&title));
    for side in [&a, &b] {
        let meta = side.meta.clone().unwrap_or_default();
        let _ = write!(
            body,
            "<div><h2>{}</h2>{}</div>",
            esc(&side.label),
            html_meta(&meta)
        );
    }
    body.push_str("</div>\n<h2>Metrics</h2>\n<table><tr><th>Metric</th>");
    let _ = write!(
        body,
        "<th>{}</th><th>{}</th><th>B − A</th></tr>",
        esc(&a.label),
        esc(&b.label)
    );
    for (name, va, vb, d, good) in &rows {
        let class = match good {
            Some(true) => " class=\"good\"",
            Some(false) => " class=\"bad\"",
            None => "",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td></tr>",
            esc(name),
            esc(va),
            esc(vb),
            esc(d)
        );
    }
    body.push_str("</table>\n<p class=\"muted\">Green: B is better; red: B is worse (intervals are 95% bootstrap).</p>\n");
    if let Some(c) = &paired {
        let _ = write!(
            body,
            "<h2>Paired comparison on the same items</h2>\n<p>{}</p>\n",
            esc(&crate::paired::summary(c))
        );
    }
    body.push_str("<h2>Curves</h2>\n<div class=\"plots\">");
    let (pr_inline, roc_inline) = make(false);
    let _ = writeln!(
        body,
        "<figure>{pr_inline}</figure><figure>{roc_inline}</figure></div>"
    );
    let _ = write!(
        body,
        "<h2>Per slice</h2>\n{}\n",
        html_table(&slice_table, "No slices.")
    );
    write_file(
        out_dir.join("compare.html"),
        &html_page(&title, &body),
        &mut written,
    )?;

    // Markdown.
    let mut text = format!("# {}\n\n", md(&title));
    for side in [&a, &b] {
        let _ = write!(
            text,
            "## {}\n\n{}\n",
            md(&side.label),
            md_meta(&side.meta.clone().unwrap_or_default())
        );
    }
    let _ = write!(
        text,
        "## Metrics\n\n| Metric | {} | {} | B − A |\n|---|---:|---:|---:|\n",
        md(&a.label),
        md(&b.label)
    );
    for (name, va, vb, d, _) in &rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} |",
            md(name),
            md(va),
            md(vb),
            md(d)
        );
    }
    if !paired_md.is_empty() {
        let _ = write!(text, "\n{paired_md}");
    }
    let _ = write!(
        text,
        "\n## Curves\n\n![Precision-recall curves](compare_pr.svg)\n\n![ROC curves](compare_roc.svg)\n\n## Per slice\n\n{}",
        md_table(&slice_table, "No slices.")
    );
    write_file(out_dir.join("compare.md"), &text, &mut written)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::tests::synthetic_rows;
    use crate::eval::{evaluate, EvalOptions, ScoredRow};

    fn meta(title: &str) -> ReportMeta {
        ReportMeta {
            title: title.into(),
            model: "qwen3-0.6b-grpo".into(),
            policy_id: "hate".into(),
            policy_version: "3".into(),
            data_file: "data/hatexplain_test.jsonl".into(),
            scoring_mode: "mc N=32 T=1.0".into(),
            command: "modrl eval --scores s.jsonl".into(),
            timestamp: "2025-01-01T00:00:00Z".into(),
            extra: vec![("seed".into(), "7".into())],
        }
    }

    /// Checks that every start tag has its end tag (a cheap well-formedness check of the SVG).
    fn balanced(xml: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').ok_or("unclosed <")? + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.starts_with('?') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                if !["meta", "br"].contains(&name.as_str()) {
                    stack.push(name);
                }
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    fn external_links(html: &str) -> Vec<String> {
        let lower = html.to_lowercase();
        let mut found = Vec::new();
        for attr in ["src=", "href=", "url("] {
            for (i, _) in lower.match_indices(attr) {
                let value = lower[i + attr.len()..].trim_start_matches(['"', '\'', ' ']);
                if value.starts_with("http") || value.starts_with("//") {
                    found.push(lower[i..(i + 60).min(lower.len())].to_string());
                }
            }
        }
        found
    }

    #[test]
    fn report_is_complete_and_self_contained() {
        let rows = synthetic_rows(800, 21, 2.5);
        let m = evaluate(
            &rows,
            None,
            &EvalOptions {
                bootstrap: 100,
                ..EvalOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let written = write_report(dir.path(), &m, &meta("Hate <speech> & co")).unwrap();
        for file in [
            "report.md",
            "report.html",
            "pr.svg",
            "roc.svg",
            "reliability.svg",
            "hist.svg",
            "confusion.svg",
            "metrics.json",
            "report_meta.json",
        ] {
            assert!(
                written.contains(&dir.path().join(file)),
                "{file} not reported"
            );
            assert!(dir.path().join(file).is_file(), "{file} missing");
        }
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_eq!(html.matches("<svg").count(), 5);
        for title in [
            "Precision-recall curve",
            "ROC curve",
            "Reliability diagram",
            "Score distribution by class",
            "Confusion matrix",
        ] {
            assert!(html.contains(&format!("<title>{title}</title>")), "{title}");
        }
        assert_eq!(external_links(&html), Vec::<String>::new());
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("@import"));
        assert!(html.contains("Hate &lt;speech&gt; &amp; co") && !html.contains("<speech>"));
        balanced(&html).unwrap();
        // Numbers in the page are evaluate's.
        assert!(html.contains(&format!("{:.4}", m.pr_auc.unwrap())));
        let [lo, hi] = m.pr_auc_ci.unwrap();
        assert!(html.contains(&format!("[{lo:.4}, {hi:.4}]")));
        assert!(html.contains("source:gab") && html.contains("slurs") && html.contains("bad_json"));
        for (file, _) in PLOTS {
            let svg = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(
                svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
                "{file}"
            );
            balanced(&svg).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{file}");
        }
        let roc = std::fs::read_to_string(dir.path().join("roc.svg")).unwrap();
        assert!(
            roc.contains("chance") && roc.contains(&format!("ROC-AUC {:.4}", m.roc_auc.unwrap()))
        );
        let pr = std::fs::read_to_string(dir.path().join("pr.svg")).unwrap();
        assert!(pr.contains(&format!("prevalence {:.3}", m.prevalence.unwrap())));
        let confusion = std::fs::read_to_string(dir.path().join("confusion.svg")).unwrap();
        let cm = m.confusion.unwrap();
        for count in [cm.tp, cm.fp, cm.tn, cm.fn_] {
            assert!(confusion.contains(&format!(">{count}</text>")));
        }
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        for (file, caption) in PLOTS {
            assert!(md.contains(&format!("![{caption}]({file})")), "{file}");
        }
        assert!(md.contains("| PR-AUC (average precision) |") && md.contains("| source:gab |"));
        assert!(md.contains("modrl eval --scores s.jsonl"));
        assert_eq!(
            EvalMetrics::read_json(dir.path().join("metrics.json")).unwrap(),
            m
        );
    }

    #[test]
    fn degenerate_metrics_still_render() {
        let one_class = vec![ScoredRow::new("a", 0, 0.3), ScoredRow::new("b", 0, 0.6)];
        for rows in [Vec::new(), one_class] {
            let m = evaluate(&rows, None, &EvalOptions::default());
            let dir = tempfile::tempdir().unwrap();
            write_report(dir.path(), &m, &ReportMeta::default()).unwrap();
            let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
            assert_eq!(html.matches("<svg").count(), 5);
            assert!(html.contains("<title>Moderation evaluation</title>"));
            assert!(html.contains("undefined: no violating items"));
            assert!(html.contains("no threshold: no confusion matrix"));
            assert!(!html.contains("NaN"));
            balanced(&html).unwrap();
        }
    }

    #[test]
    fn comparison_has_both_models_and_deltas() {
        let root = tempfile::tempdir().unwrap();
        let (a_dir, b_dir, out) = (
            root.path().join("a"),
            root.path().join("b"),
            root.path().join("cmp"),
        );
        let opts = EvalOptions {
            bootstrap: 50,
            ..EvalOptions::default()
        };
        let ma = evaluate(&synthetic_rows(500, 1, 1.5), None, &opts);
        let mb = evaluate(&synthetic_rows(500, 1, 3.0), None, &opts);
        write_report(
            &a_dir,
            &ma,
            &ReportMeta {
                model: "base".into(),
                ..meta("A")
            },
        )
        .unwrap();
        // B has only metrics.json: the directory name labels it.
        std::fs::create_dir_all(&b_dir).unwrap();
        mb.write_json(b_dir.join("metrics.json")).unwrap();
        let written = compare_reports(&a_dir, &b_dir, &out).unwrap();
        assert_eq!(written.len(), 4);
        let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("A: base") && html.contains("B: b"));
        let d = mb.pr_auc.unwrap() - ma.pr_auc.unwrap();
        assert!(d > 0.0);
        assert!(html.contains(&format!("<td class=\"good\">{d:+.4}</td>")));
        assert!(external_links(&html).is_empty() && !html.contains("http"));
        balanced(&html).unwrap();
        let pr = std::fs::read_to_string(out.join("compare_pr.svg")).unwrap();
        assert!(pr.contains(BLUE) && pr.contains(ORANGE));
        assert!(pr.contains(&format!("A: base (PR-AUC {:.4})", ma.pr_auc.unwrap())));
        let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
        assert!(md.contains("![ROC curves](compare_roc.svg)") && md.contains("| B − A |"));
        assert!(md.contains(&format!("{d:+.4}")));
        // A directory without metrics.json is an error naming the file.
        let err = compare_reports(&out, &b_dir, root.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("metrics.json"));
    }
}
