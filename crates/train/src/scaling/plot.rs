//! [`plot_svg`]: the points and the fitted curve on a log-x axis, drawn through
//! [`modrl_moderation::plot`].

use super::*;
use modrl_moderation::plot::{c, nice_ticks, tick_labels, Frame, Svg};

/// A plot of the points and the fitted curve on a log-x axis, with the asymptotes and C_mid
/// marked where they fall inside the frame; the title carries the fitted parameters.
pub fn plot_svg(points: &[Point], fit: &SigmoidFit, x_key: &str, y_key: &str) -> String {
    const W: f64 = 760.0;
    const H: f64 = 480.0;
    let (left, right, top, bottom) = (78.0, 40.0, 66.0, 56.0);
    let (pw, ph) = (W - left - right, H - top - bottom);

    let pts: Vec<&Point> = points
        .iter()
        .filter(|p| p.x > 0.0 && p.x.is_finite() && p.y.is_finite())
        .collect();
    let lx: Vec<f64> = pts.iter().map(|p| p.x.log10()).collect();
    let (mut x_lo, mut x_hi) = if lx.is_empty() {
        let c = fit.c_mid.log10();
        (c - 1.0, c + 1.0)
    } else {
        min_max(&lx)
    };
    let data_hi = x_hi;
    let span = (x_hi - x_lo).max(0.5);
    x_lo -= 0.05 * span;
    x_hi += 0.25 * span; // room to show the extrapolation
    if x_hi - x_lo < 1e-9 {
        x_lo -= 0.5;
        x_hi += 0.5;
    }

    const N_CURVE: usize = 240;
    let curve: Vec<(f64, f64)> = (0..N_CURVE)
        .map(|i| {
            let l = x_lo + (x_hi - x_lo) * i as f64 / (N_CURVE - 1) as f64;
            (l, fit.predict(10f64.powf(l)))
        })
        .filter(|(_, y)| y.is_finite())
        .collect();
    let ys: Vec<f64> = pts
        .iter()
        .map(|p| p.y)
        .chain(curve.iter().map(|c| c.1))
        .collect();
    let (mut y_lo, mut y_hi) = if ys.is_empty() {
        (0.0, 1.0)
    } else {
        min_max(&ys)
    };
    if y_hi - y_lo < 1e-12 {
        let d = (y_lo.abs() * 0.1).max(0.05);
        y_lo -= d;
        y_hi += d;
    }
    let pad = 0.08 * (y_hi - y_lo);
    y_lo -= pad;
    y_hi += pad;

    let f = Frame {
        x0: left,
        y0: top,
        w: pw,
        h: ph,
        xr: (x_lo, x_hi),
        yr: (y_lo, y_hi),
    };
    let in_y = |y: f64| y.is_finite() && y >= y_lo && y <= y_hi;
    let grey = r##"fill="#444""##;
    let mut s = Svg::new(W, H, &format!("{y_key} vs {x_key}: sigmoid scaling fit"));
    let params = format!(
        "R0 = {}, A = {}, B = {}, C_mid = {}, RMSE = {} (n = {})",
        fmt_num(fit.r0),
        fmt_num(fit.a),
        fmt_num(fit.b),
        fmt_num(fit.c_mid),
        fmt_num(fit.rmse),
        pts.len()
    );
    s.text(W / 2.0, 46.0, &params, 12.0, "middle", grey);

    // y grid and labels
    let yt = nice_ticks(y_lo, y_hi, 6, 0.0);
    for (v, label) in yt.iter().zip(tick_labels(&yt)) {
        let py = f.y(*v);
        s.line((left, py), (f.right(), py), "#e6e6e6", 1.0, None);
        s.text(left - 6.0, py + 4.0, &label, 11.0, "end", grey);
    }
    // x grid (log) and labels
    let ticks = log_ticks(x_lo, x_hi);
    let sci = ticks.iter().any(|&l| l >= 4.0 - 1e-9) || ticks.iter().any(|&l| l < -3.0);
    for l in ticks {
        let px = f.x(l);
        let label = if sci {
            fmt_sci(10f64.powf(l))
        } else {
            fmt_num(10f64.powf(l))
        };
        s.line((px, top), (px, f.bottom()), "#e6e6e6", 1.0, None);
        s.text(px, f.bottom() + 16.0, &label, 11.0, "middle", grey);
    }
    s.rect(left, top, pw, ph, "none", r##"stroke="#999""##);
    let axis = r##"fill="#333""##;
    let xlabel = format!("{x_key} (log scale)");
    s.text(left + pw / 2.0, H - 14.0, &xlabel, 12.0, "middle", axis);
    let rotate = format!(
        r##"fill="#333" transform="rotate(-90 18 {})""##,
        c(top + ph / 2.0)
    );
    s.text(18.0, top + ph / 2.0, y_key, 12.0, "middle", &rotate);

    // asymptotes and C_mid
    let note = r##"fill="#666""##;
    for (val, name) in [(fit.r0, "R0"), (fit.a, "A")] {
        if in_y(val) {
            let py = f.y(val);
            s.line((left, py), (f.right(), py), "#888", 1.0, Some("5 4"));
            s.text(f.right() + 4.0, py + 4.0, name, 11.0, "start", note);
        }
    }
    let lc = fit.c_mid.log10();
    if lc.is_finite() && lc >= x_lo && lc <= x_hi {
        let px = f.x(lc);
        // label left of the line, in the corner the curve stays away from
        let label_y = if fit.a >= fit.r0 {
            top + 0.12 * ph + 4.0
        } else {
            top + 0.88 * ph + 4.0
        };
        s.line((px, top), (px, f.bottom()), "#888", 1.0, Some("2 3"));
        s.text(px - 4.0, label_y, "C_mid", 11.0, "end", note);
    }

    // the curve, dashed beyond the largest observed compute (extrapolation), then the points
    let path = |seg: Vec<(f64, f64)>| {
        let mut d = String::new();
        for (i, (l, y)) in seg.into_iter().enumerate() {
            let _ = write!(
                d,
                "{}{},{}",
                if i == 0 { "M" } else { " L" },
                c(f.x(l)),
                c(f.y(y))
            );
        }
        d
    };
    let (fitted, beyond): (Vec<_>, Vec<_>) = curve.iter().copied().partition(|c| c.0 <= data_hi);
    if fitted.len() > 1 {
        let mut seg = fitted;
        seg.extend(beyond.first()); // join the two pieces
        s.path(&path(seg), "#1f77b4", 2.2, "none", "");
    }
    if beyond.len() > 1 {
        s.path(
            &path(beyond),
            "#1f77b4",
            2.2,
            "none",
            r#"stroke-dasharray="6 4""#,
        );
    }
    for (p, l) in pts.iter().zip(&lx) {
        let tip = format!("x = {}, y = {}", fmt_num(p.x), fmt_num(p.y));
        s.dot_titled(f.x(*l), f.y(p.y), 3.8, "#ff7f0e", &tip);
    }
    s.finish(true)
}

/// log10 positions of decade ticks (plus 2 and 5 when the range spans under 3 decades) in range;
/// the two ends when fewer than two such ticks fall inside.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mantissas: &[f64] = if hi - lo >= 3.0 {
        &[1.0]
    } else if hi - lo >= 1.2 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 2.0, 3.0, 5.0, 7.0]
    };
    let mut out = vec![];
    let mut dec = lo.floor() as i32;
    while (dec as f64) <= hi.ceil() {
        for &m in mantissas {
            let l = dec as f64 + m.log10();
            if l >= lo - 1e-9 && l <= hi + 1e-9 {
                out.push(l);
            }
        }
        dec += 1;
    }
    if out.len() < 2 {
        out = vec![lo, hi];
    }
    out
}
