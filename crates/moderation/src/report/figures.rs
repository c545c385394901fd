//! The five figures of a report (PR, ROC, reliability, score histogram, confusion matrix).

use super::*;
use crate::plot::*;

pub(crate) const PLOT_W: f64 = 520.0;
pub(crate) const PLOT_H: f64 = 440.0;

pub(crate) fn unit_frame() -> Frame {
    Frame {
        x0: 66.0,
        y0: 40.0,
        w: 430.0,
        h: 330.0,
        xr: (0.0, 1.0),
        yr: (0.0, 1.0),
    }
}

pub(crate) const UNIT_TICKS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/// The PR curve as steps (its area is the average precision).
pub(crate) fn pr_path(f: &Frame, points: &[[f64; 2]]) -> String {
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

pub(crate) fn poly_path(f: &Frame, points: &[[f64; 2]]) -> String {
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
pub(crate) struct Series<'a> {
    pub(crate) label: String,
    pub(crate) color: &'a str,
    pub(crate) metrics: &'a EvalMetrics,
}

pub(crate) fn fpr_of(m: &EvalMetrics) -> Option<f64> {
    m.confusion
        .and_then(|c| (c.fp + c.tn > 0).then(|| c.fp as f64 / (c.fp + c.tn) as f64))
}

pub(crate) fn op_point_key<'a>(series: &[Series<'a>], any: bool) -> Option<(Key<'a>, String)> {
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

/// One model's curve: its path `d`, a legend line with the model's label and `auc`, and its
/// operating point (x, y), when it has one, as a dot; returns whether a dot was drawn.
fn draw_curve<'a>(
    s: &mut Svg,
    f: &Frame,
    se: &Series<'a>,
    d: &str,
    auc: String,
    point: Option<(f64, f64)>,
    legend: &mut Vec<(Key<'a>, String)>,
) -> bool {
    s.path(d, se.color, 2.2, "none", "");
    legend.push((
        Key::Line {
            color: se.color,
            dash: None,
        },
        format!("{} ({auc})", se.label),
    ));
    if let Some((x, y)) = point {
        s.dot(f.x(x), f.y(y), 5.0, se.color);
    }
    point.is_some()
}

pub(crate) fn pr_svg(series: &[Series<'_>], title: &str, standalone: bool) -> String {
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
        let point = match (m.recall, m.precision) {
            (Some(r), Some(p)) if m.confusion.is_some_and(|c| c.tp + c.fp > 0) => Some((r, p)),
            _ => None,
        };
        let d = pr_path(&f, &m.curves.pr);
        any_point |= draw_curve(
            &mut s,
            &f,
            se,
            &d,
            format!("PR-AUC {}", f4(m.pr_auc)),
            point,
            &mut legend,
        );
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

pub(crate) fn roc_svg(series: &[Series<'_>], title: &str, standalone: bool) -> String {
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
        let point = m.recall.zip(fpr_of(m)).map(|(r, fpr)| (fpr, r));
        let d = poly_path(&f, &m.curves.roc);
        any_point |= draw_curve(
            &mut s,
            &f,
            se,
            &d,
            format!("ROC-AUC {}", f4(m.roc_auc)),
            point,
            &mut legend,
        );
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

pub(crate) fn reliability_svg(m: &EvalMetrics, standalone: bool) -> String {
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

pub(crate) fn hist_svg(m: &EvalMetrics, standalone: bool) -> String {
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
pub(crate) fn heat(t: f64) -> String {
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

pub(crate) fn confusion_svg(m: &EvalMetrics, standalone: bool) -> String {
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
