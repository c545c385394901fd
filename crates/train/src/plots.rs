//! SVG line plots of `metrics.jsonl` files, drawn with the project's one SVG writer
//! ([`modrl_moderation::plot`]).
//!
//! [`plot_metrics`] draws one panel per metric key and one line per run, so runs can be compared
//! (e.g. accuracy-only reward vs shaped reward). [`write_run_plots`] writes the standard plots of
//! one run directory into `run_dir/plots/`.
//!
//! Smoothing is TensorBoard's: a debiased exponential moving average with weight `w` in
//! `[0, 1)`,
//!
//! ```text
//! m_0 = 0;  m_t = w * m_{t-1} + (1 - w) * y_t;  smoothed_t = m_t / (1 - w^t)
//! ```
//!
//! taken over the finite values of a series in step order (`w = 0` is no smoothing; the debias
//! term keeps the start of the curve from being pulled towards 0). When smoothing is on, the raw
//! values are drawn as a faint line behind the smoothed one. Series with few points (at most
//! 40, typically evaluations) are never smoothed and get markers instead, so each sparse point
//! stays visible as logged. Non-finite values (`NaN`, `inf`) leave a gap.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use modrl_moderation::plot::{c, nice_ticks, text_width, tick_labels, Frame, Svg, PALETTE};

use crate::logging::{metric_as_f64, read_metrics, METRICS_FILE};

/// Series with at most this many points are drawn with markers.
const MARKER_MAX_POINTS: usize = 40;

/// How to draw a figure.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// EMA weight in `[0, 1)` (see the module docs); 0 draws the raw values only.
    pub smoothing: f64,
    /// Figure title drawn above the legend.
    pub title: Option<String>,
    /// Panels per row.
    pub columns: usize,
    /// Size of one panel in SVG pixels.
    pub panel_width: f64,
    /// Size of one panel in SVG pixels.
    pub panel_height: f64,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            smoothing: 0.0,
            title: None,
            columns: 2,
            panel_width: 460.0,
            panel_height: 280.0,
        }
    }
}

/// One line: `(step, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label (the run).
    pub label: String,
    /// Points in step order; non-finite values make gaps.
    pub points: Vec<(f64, f64)>,
}

/// One panel: a metric with one series per run (`None` where a run lacks the metric, which
/// keeps run colours the same in every panel).
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Panel title (the metric name).
    pub title: String,
    /// One entry per run, in legend order.
    pub series: Vec<Option<Series>>,
}

/// Plots `keys` from each run's metrics file into `out_svg`: one panel per key, one line per
/// run, labelled by the run's label.
///
/// A key may contain `*` wildcards (matching any characters, `/` included), e.g.
/// `rewards/*/mean`; it expands to every matching metric found in any run, one panel each, in
/// name order. A key that no run has is drawn as an empty panel saying "no data". Returns the
/// number of panels drawn.
pub fn plot_metrics<L: AsRef<str>, P: AsRef<Path>>(
    metrics_files: &[(L, P)],
    keys: &[&str],
    out_svg: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<usize> {
    let mut runs = Vec::with_capacity(metrics_files.len());
    for (label, path) in metrics_files {
        let recs = read_metrics(path.as_ref())?;
        runs.push((label.as_ref().to_string(), recs));
    }
    let mut expanded = Vec::new();
    for key in keys {
        if key.contains('*') {
            expanded.extend(matching_keys(&runs, key));
        } else {
            expanded.push(key.to_string());
        }
    }
    let panels = build_panels(&runs, &expanded);
    write_svg(out_svg.as_ref(), &render_svg(&panels, opts))?;
    Ok(panels.len())
}

/// The standard figures of one run, as `(file name, keys, smoothing)`.
pub const RUN_PLOTS: &[(&str, &[&str], f64)] = &[
    (
        "reward.svg",
        &[
            "reward",
            "reward_std",
            "rewards/*/mean",
            "frac_reward_zero_std",
        ],
        0.6,
    ),
    (
        "length.svg",
        &[
            "completions/mean_length",
            "completions/min_length",
            "completions/max_length",
            "completions/mean_terminated_length",
            "completions/clipped_ratio",
        ],
        0.6,
    ),
    ("eval.svg", &["eval/*"], 0.0),
    ("monitors.svg", &["monitors/*"], 0.6),
    (
        "train.svg",
        &[
            "loss",
            "kl",
            "entropy",
            "grad_norm",
            "learning_rate",
            "clip_ratio/*",
            "step_time",
            "num_tokens",
        ],
        0.6,
    ),
];

/// Writes `run_dir/plots/{reward,length,eval,monitors,train}.svg` from `run_dir/metrics.jsonl`
/// (see [`RUN_PLOTS`] for the keys of each). Only keys the run has are drawn, and a figure none
/// of whose keys are present is not written. Returns the paths written.
pub fn write_run_plots(run_dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let run_dir = run_dir.as_ref();
    let recs = read_metrics(run_dir.join(METRICS_FILE))?;
    let name = run_dir
        .canonicalize()
        .unwrap_or_else(|_| run_dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string());
    let runs = vec![(name.clone(), recs)];
    let out_dir = run_dir.join("plots");
    let mut written = Vec::new();
    for (file, keys, smoothing) in RUN_PLOTS {
        let mut present = Vec::new();
        for key in *keys {
            for k in matching_keys(&runs, key) {
                if !present.contains(&k) {
                    present.push(k);
                }
            }
        }
        if present.is_empty() {
            continue;
        }
        let panels = build_panels(&runs, &present);
        let opts = PlotOptions {
            smoothing: *smoothing,
            title: Some(format!("{name}: {}", file.trim_end_matches(".svg"))),
            ..PlotOptions::default()
        };
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let path = out_dir.join(file);
        write_svg(&path, &render_svg(&panels, &opts))?;
        written.push(path);
    }
    Ok(written)
}

fn write_svg(path: &Path, svg: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

type Run = (String, Vec<(u64, Map<String, Value>)>);

/// Metric names with a numeric value in some run matching `pattern` (`*` wildcards), sorted.
fn matching_keys(runs: &[Run], pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = runs
        .iter()
        .flat_map(|(_, recs)| recs.iter())
        .flat_map(|(_, m)| m.iter())
        .filter(|(k, v)| metric_as_f64(v).is_some() && glob_match(pattern, k))
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn build_panels(runs: &[Run], keys: &[String]) -> Vec<Panel> {
    keys.iter()
        .map(|key| Panel {
            title: key.clone(),
            series: runs
                .iter()
                .map(|(label, recs)| {
                    let mut points: Vec<(f64, f64)> = recs
                        .iter()
                        .filter_map(|(step, m)| {
                            m.get(key)
                                .and_then(metric_as_f64)
                                .map(|v| (*step as f64, v))
                        })
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!points.is_empty()).then(|| Series {
                        label: label.clone(),
                        points,
                    })
                })
                .collect(),
        })
        .collect()
}

/// TensorBoard's debiased EMA (module docs) over the finite values; non-finite values are
/// passed through unchanged and do not update the average.
pub fn ema_smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let w = weight.clamp(0.0, 0.999_999);
    if w == 0.0 {
        return values.to_vec();
    }
    let mut last = 0.0;
    let mut n = 0i32;
    values
        .iter()
        .map(|&y| {
            if !y.is_finite() {
                return y;
            }
            last = last * w + (1.0 - w) * y;
            n += 1;
            last / (1.0 - w.powi(n))
        })
        .collect()
}

// Panel geometry: the plot area inside a panel.
const PAD_LEFT: f64 = 64.0;
const PAD_RIGHT: f64 = 18.0;
const PAD_TOP: f64 = 30.0;
const PAD_BOTTOM: f64 = 42.0;
const MARGIN: f64 = 16.0;

/// Renders panels into a standalone SVG document.
pub fn render_svg(panels: &[Panel], opts: &PlotOptions) -> String {
    let cols = opts.columns.max(1).min(panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (opts.panel_width.max(200.0), opts.panel_height.max(140.0));
    let width = MARGIN * 2.0 + pw * cols as f64;

    // Legend: one entry per run (taken from the first panel that has each run's series).
    let n_runs = panels.iter().map(|p| p.series.len()).max().unwrap_or(0);
    let labels: Vec<String> = (0..n_runs)
        .map(|i| {
            panels
                .iter()
                .find_map(|p| p.series.get(i).and_then(|s| s.as_ref()))
                .map(|s| s.label.clone())
                .unwrap_or_else(|| format!("run {}", i + 1))
        })
        .collect();
    let smoothing = opts.smoothing.clamp(0.0, 0.999_999);
    // Only series longer than MARKER_MAX_POINTS are smoothed: no note when none is.
    let smoothed_any = panels.iter().any(|p| {
        p.series
            .iter()
            .flatten()
            .any(|s| s.points.len() > MARKER_MAX_POINTS)
    });
    let note = (smoothing > 0.0 && smoothed_any)
        .then(|| format!("EMA smoothing {smoothing:.2} (raw values faint)"));
    // Lay out legend entries in rows, centred.
    let entry_w = |s: &str| 30.0 + text_width(s, 12.0) + 18.0;
    let mut legend_rows: Vec<Vec<(usize, &str)>> = Vec::new();
    let mut cur: Vec<(usize, &str)> = Vec::new();
    let mut cur_w = 0.0;
    for (i, label) in labels.iter().enumerate() {
        let w = entry_w(label);
        if !cur.is_empty() && cur_w + w > width - 2.0 * MARGIN {
            legend_rows.push(std::mem::take(&mut cur));
            cur_w = 0.0;
        }
        cur_w += w;
        cur.push((i, label));
    }
    if !cur.is_empty() {
        legend_rows.push(cur);
    }
    // Vertical layout, top down: title, legend rows, note, then the panels.
    let mut y = MARGIN;
    let title_y = opts.title.as_ref().map(|_| {
        y += 30.0;
        y - 12.0
    });
    let legend_ys: Vec<f64> = legend_rows
        .iter()
        .map(|_| {
            y += 20.0;
            y
        })
        .collect();
    let note_y = note.as_ref().map(|_| {
        y += 17.0;
        y
    });
    y += 8.0;
    let height = y + rows as f64 * ph + MARGIN;
    let mut svg = Svg::blank(
        width,
        height,
        opts.title.as_deref().unwrap_or("training metrics"),
    );
    if let (Some(title), Some(ty)) = (&opts.title, title_y) {
        svg.text(
            width / 2.0,
            ty,
            title,
            17.0,
            "middle",
            r#"font-weight="bold""#,
        );
    }
    for (row, &ly) in legend_rows.iter().zip(&legend_ys) {
        let row_w: f64 = row.iter().map(|(_, l)| entry_w(l)).sum();
        let mut x = (width - row_w) / 2.0;
        for &(i, label) in row {
            let color = PALETTE[i % PALETTE.len()];
            svg.line((x, ly - 4.0), (x + 24.0, ly - 4.0), color, 3.0, None);
            svg.text(x + 30.0, ly, label, 12.0, "start", "");
            x += entry_w(label);
        }
    }
    if let (Some(note), Some(ny)) = (&note, note_y) {
        svg.text(width / 2.0, ny, note, 11.0, "middle", r##"fill="#666""##);
    }
    for (i, panel) in panels.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let x0 = MARGIN + c as f64 * pw;
        let y0 = y + r as f64 * ph;
        draw_panel(&mut svg, i, panel, (x0, y0), (pw, ph), smoothing);
    }
    svg.finish(true)
}

fn draw_panel(
    svg: &mut Svg,
    index: usize,
    panel: &Panel,
    (x0, y0): (f64, f64),
    (pw, ph): (f64, f64),
    smoothing: f64,
) {
    let (left, top) = (x0 + PAD_LEFT, y0 + PAD_TOP);
    let (w, h) = (pw - PAD_LEFT - PAD_RIGHT, ph - PAD_TOP - PAD_BOTTOM);
    svg.text(
        left + w / 2.0,
        y0 + 19.0,
        &panel.title,
        13.0,
        "middle",
        r#"font-weight="bold""#,
    );
    let finite = || {
        panel
            .series
            .iter()
            .flatten()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let frame_style = r##"stroke="#999" stroke-width="1""##;
    if finite().next().is_none() {
        svg.rect(left, top, w, h, "none", frame_style);
        let (cx, cy) = (left + w / 2.0, top + h / 2.0);
        svg.text(cx, cy, "no data", 12.0, "middle", r##"fill="#888""##);
        return;
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite() {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmax <= xmin {
        xmin -= 1.0;
        xmax += 1.0;
    } else {
        // A small margin so markers at the ends are not cut by the frame.
        let pad = (xmax - xmin) * 0.02;
        xmin -= pad;
        xmax += pad;
    }
    if ymax <= ymin {
        let d = if ymin == 0.0 { 1.0 } else { ymin.abs() * 0.1 };
        ymin -= d;
        ymax += d;
    } else {
        let pad = (ymax - ymin) * 0.06;
        ymin -= pad;
        ymax += pad;
    }
    let f = Frame {
        x0: left,
        y0: top,
        w,
        h,
        xr: (xmin, xmax),
        yr: (ymin, ymax),
    };

    // Grid and tick labels.
    let yt = nice_ticks(ymin, ymax, 6, 0.0);
    let xt = nice_ticks(xmin, xmax, 6, 1.0);
    let tick_style = r##"fill="#444""##;
    for (t, label) in yt.iter().zip(tick_labels(&yt)) {
        let py = f.y(*t);
        svg.line((left, py), (f.right(), py), "#e6e6e6", 1.0, None);
        svg.text(left - 6.0, py + 4.0, &label, 11.0, "end", tick_style);
    }
    for (t, label) in xt.iter().zip(tick_labels(&xt)) {
        let px = f.x(*t);
        svg.line((px, top), (px, f.bottom()), "#e6e6e6", 1.0, None);
        svg.line((px, f.bottom()), (px, f.bottom() + 4.0), "#999", 1.0, None);
        svg.text(px, f.bottom() + 17.0, &label, 11.0, "middle", tick_style);
    }
    svg.rect(left, top, w, h, "none", frame_style);
    let step_style = r##"fill="#666""##;
    svg.text(
        left + w / 2.0,
        f.bottom() + 33.0,
        "step",
        11.0,
        "middle",
        step_style,
    );

    // Lines, clipped to the plot area.
    svg.begin_clip(&format!("clip{index}"), &f);
    for (ri, series) in panel.series.iter().enumerate() {
        let Some(series) = series else { continue };
        let color = PALETTE[ri % PALETTE.len()];
        let xs: Vec<f64> = series.points.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = series.points.iter().map(|p| p.1).collect();
        let round = r#"stroke-linecap="round""#;
        if smoothing > 0.0 && ys.len() > MARKER_MAX_POINTS {
            let faint = r#"stroke-linecap="round" stroke-opacity="0.3""#;
            svg.path(&path_data(&f, &xs, &ys), color, 1.0, "none", faint);
            let sm = ema_smooth(&ys, smoothing);
            svg.path(&path_data(&f, &xs, &sm), color, 1.8, "none", round);
        } else {
            svg.path(&path_data(&f, &xs, &ys), color, 1.8, "none", round);
        }
        if series.points.len() <= MARKER_MAX_POINTS {
            for &(x, y) in &series.points {
                if x.is_finite() && y.is_finite() {
                    svg.marker(f.x(x), f.y(y), 2.6, color);
                }
            }
        }
    }
    svg.end_clip();
}

/// SVG path data through the finite points; a non-finite value starts a new sub-path.
fn path_data(f: &Frame, xs: &[f64], ys: &[f64]) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (&x, &y) in xs.iter().zip(ys) {
        if !(x.is_finite() && y.is_finite()) {
            pen_down = false;
            continue;
        }
        let _ = write!(
            d,
            "{}{},{}",
            if pen_down { "L" } else { "M" },
            c(f.x(x)),
            c(f.y(y))
        );
        pen_down = true;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::RunLogger;

    fn write_run(dir: &Path, steps: u64, shaped: bool) {
        let mut lg = RunLogger::create(dir, false).unwrap();
        for s in 0..steps {
            let t = s as f64;
            let noise = ((s * 7919) % 13) as f64 / 13.0 - 0.5;
            let reward = if shaped {
                0.9 - 0.8 * (-t / 60.0).exp() + 0.08 * noise
            } else {
                0.8 - 0.7 * (-t / 90.0).exp() + 0.1 * noise
            };
            let len = if shaped {
                420.0 + 30.0 * noise
            } else {
                400.0 * (-t / 120.0).exp() + 40.0 + 20.0 * noise
            };
            let mut m: Vec<(String, f64)> = vec![
                ("reward".into(), reward),
                ("reward_std".into(), 0.3 - 0.001 * t + 0.02 * noise),
                ("rewards/accuracy/mean".into(), reward - 0.05),
                ("rewards/format/mean".into(), 0.95 + 0.03 * noise),
                ("frac_reward_zero_std".into(), 0.1 + 0.002 * t),
                ("completions/mean_length".into(), len),
                ("completions/min_length".into(), len * 0.3),
                ("completions/max_length".into(), (len * 2.0).min(1024.0)),
                ("completions/clipped_ratio".into(), 0.02 + 0.01 * noise),
                ("kl".into(), 0.001 * t + 0.002 * noise.abs()),
                ("learning_rate".into(), 1e-6 * (1.0 - t / steps as f64)),
                (
                    "grad_norm".into(),
                    if s == 17 { f64::NAN } else { 1.0 + noise },
                ),
                ("monitors/length_ratio".into(), len / 440.0),
            ];
            if s % 25 == 0 {
                m.push(("eval/f1".into(), 0.5 + 0.3 * (1.0 - (-t / 80.0).exp())));
                m.push(("eval/pr_auc".into(), 0.6 + 0.25 * (1.0 - (-t / 80.0).exp())));
            }
            lg.log(s, &m).unwrap();
        }
    }

    #[test]
    fn ema_matches_tensorboard_formula() {
        assert_eq!(ema_smooth(&[1.0, 2.0, 3.0], 0.0), vec![1.0, 2.0, 3.0]);
        let s = ema_smooth(&[2.0, 4.0, f64::NAN, 4.0], 0.5);
        // Debiased: the first value is kept as is.
        assert_eq!(s[0], 2.0);
        // m1 = 1, m2 = 0.5 + 2 = 2.5, debias 1 - 0.25 -> 10/3.
        assert!((s[1] - 10.0 / 3.0).abs() < 1e-12);
        assert!(s[2].is_nan());
        // m3 = 1.25 + 2 = 3.25, debias 1 - 0.125 -> 26/7.
        assert!((s[3] - 26.0 / 7.0).abs() < 1e-12);
        // A constant series stays constant.
        assert!(ema_smooth(&[5.0; 50], 0.9)
            .iter()
            .all(|v| (v - 5.0).abs() < 1e-9));
    }

    #[test]
    fn ticks_are_nice_and_labels_readable() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 6, 0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(
            tick_labels(&nice_ticks(0.0, 1.0, 6, 0.0)),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        assert_eq!(
            nice_ticks(-3.0, 497.0, 6, 1.0),
            vec![0.0, 100.0, 200.0, 300.0, 400.0]
        );
        assert_eq!(nice_ticks(0.0, 3.0, 6, 1.0), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(tick_labels(&[0.0, 20_000.0, 40_000.0]), ["0", "20k", "40k"]);
        assert_eq!(tick_labels(&[1e6, 1.5e6, 2e6]), ["1.0M", "1.5M", "2.0M"]);
        assert_eq!(tick_labels(&[0.0, 5e-7, 1e-6]), ["0", "5.0e-7", "1.0e-6"]);
        assert_eq!(tick_labels(&[-0.1, 0.0, 0.1]), ["-0.1", "0.0", "0.1"]);
    }

    #[test]
    fn glob_matches_metric_names() {
        assert!(glob_match("rewards/*/mean", "rewards/format/mean"));
        assert!(glob_match("rewards/*/mean", "rewards/a/b/mean"));
        assert!(!glob_match("rewards/*/mean", "rewards/format/std"));
        assert!(glob_match("eval/*", "eval/f1"));
        assert!(!glob_match("eval/*", "evaluation"));
        assert!(glob_match("reward", "reward"));
        assert!(!glob_match("reward", "reward_std"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn compares_runs_in_one_figure() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("acc"), dir.path().join("shaped"));
        write_run(&a, 120, false);
        write_run(&b, 90, true);
        let out = dir.path().join("cmp/compare.svg");
        let n = plot_metrics(
            &[
                ("accuracy only", a.join(METRICS_FILE)),
                ("shaped <reward>", b.join(METRICS_FILE)),
            ],
            &["reward", "rewards/*/mean", "missing/key", "eval/f1"],
            &out,
            &PlotOptions {
                smoothing: 0.6,
                title: Some("accuracy-only vs shaped".into()),
                ..Default::default()
            },
        )
        .unwrap();
        // reward, rewards/accuracy/mean, rewards/format/mean, missing/key, eval/f1
        assert_eq!(n, 5);
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        for t in [
            "rewards/accuracy/mean",
            "rewards/format/mean",
            "eval/f1",
            "no data",
        ] {
            assert!(svg.contains(t), "missing {t}");
        }
        // Labels are escaped; both runs have a legend entry.
        assert!(svg.contains("shaped &lt;reward&gt;"));
        assert!(svg.contains(">accuracy only<"));
        // 3 dense panels x 2 runs, each drawn raw (faint) + smoothed; the sparse eval/f1 is
        // drawn raw only.
        assert_eq!(svg.matches("<path").count(), 3 * 2 * 2 + 2);
        assert_eq!(svg.matches(r#"stroke-opacity="0.3""#).count(), 3 * 2);
        // eval/f1 has 5 resp. 4 points: drawn with markers.
        assert_eq!(svg.matches("<circle").count(), 5 + 4);
        assert!(svg.contains("EMA smoothing 0.60"));
        // Runs of at most MARKER_MAX_POINTS steps are drawn raw: no smoothing note then.
        let short = dir.path().join("short");
        write_run(&short, MARKER_MAX_POINTS as u64, false);
        let out_short = dir.path().join("cmp/short.svg");
        let opts = PlotOptions {
            smoothing: 0.6,
            ..Default::default()
        };
        plot_metrics(
            &[("short", short.join(METRICS_FILE))],
            &["reward"],
            &out_short,
            &opts,
        )
        .unwrap();
        let svg_short = std::fs::read_to_string(&out_short).unwrap();
        assert!(
            !svg_short.contains("EMA smoothing"),
            "a raw-only figure claims smoothing"
        );
        assert!(!svg_short.contains(r#"stroke-opacity="0.3""#));
        if let Some(keep) = std::env::var_os("MODRL_KEEP_PLOTS") {
            std::fs::copy(&out, Path::new(&keep).join("compare.svg")).unwrap();
        }
    }

    #[test]
    fn run_plots_cover_present_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("grpo-shaped");
        write_run(&run, 150, false);
        let written = write_run_plots(&run).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "reward.svg",
                "length.svg",
                "eval.svg",
                "monitors.svg",
                "train.svg"
            ]
        );
        let length = std::fs::read_to_string(run.join("plots/length.svg")).unwrap();
        assert!(length.contains("completions/max_length"));
        // Not logged, so not drawn.
        assert!(!length.contains("mean_terminated_length"));
        let train = std::fs::read_to_string(run.join("plots/train.svg")).unwrap();
        assert!(!train.contains("entropy") && !train.contains("no data"));
        // grad_norm has a NaN at step 17: the line breaks into two sub-paths (raw + smoothed).
        let grad_panel = &train[train.find(">grad_norm<").unwrap()..];
        let grad_panel = &grad_panel[..grad_panel.find("</g>").unwrap()];
        let moves: usize = grad_panel
            .split("<path d=\"")
            .skip(1)
            .map(|p| p[..p.find('"').unwrap()].matches('M').count())
            .sum();
        assert_eq!(moves, 4);
        if let Some(keep) = std::env::var_os("MODRL_KEEP_PLOTS") {
            for p in &written {
                std::fs::copy(p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
            }
        }

        // A run without eval or monitor metrics gets no such figures.
        let bare = dir.path().join("bare");
        let mut lg = RunLogger::create(&bare, false).unwrap();
        lg.log(0, &[("reward", 0.5)]).unwrap();
        lg.log(1, &[("reward", 0.7)]).unwrap();
        let written = write_run_plots(&bare).unwrap();
        assert_eq!(written, [bare.join("plots/reward.svg")]);
    }
}
