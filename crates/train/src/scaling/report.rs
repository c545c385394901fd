//! [`Report`]: a fit, its intervals, hold-out prediction and warnings as one JSON-serialisable
//! object, and the number formatting its text uses.

use super::*;

/// Bootstrap settings as recorded in a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapInfo {
    pub n_resamples: usize,
    pub n_failed: usize,
    pub seed: u64,
}

/// Everything about one fit, for `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub n: usize,
    pub x_key: String,
    pub y_key: String,
    pub r0: f64,
    pub a: f64,
    pub b: f64,
    pub c_mid: f64,
    /// True when r0 was pinned ([`FitOptions::r0`]) rather than fitted.
    pub r0_fixed: bool,
    /// 95% bootstrap percentile intervals `[lo, hi]` (null without a bootstrap).
    pub ci_r0: Option<[f64; 2]>,
    pub ci_a: Option<[f64; 2]>,
    pub ci_b: Option<[f64; 2]>,
    pub ci_c_mid: Option<[f64; 2]>,
    pub bootstrap: Option<BootstrapInfo>,
    pub rmse: f64,
    /// `y - predict(x)` per point, in input order.
    pub residuals: Vec<f64>,
    pub holdout: Option<Holdout>,
    /// Caveats about identifiability and extrapolation, in words.
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(
        points: &[Point],
        x_key: &str,
        y_key: &str,
        fit: &SigmoidFit,
        opts: &FitOptions,
        intervals: Option<&Intervals>,
        holdout: Option<Holdout>,
    ) -> Report {
        Report {
            n: points.len(),
            x_key: x_key.to_string(),
            y_key: y_key.to_string(),
            r0: fit.r0,
            a: fit.a,
            b: fit.b,
            c_mid: fit.c_mid,
            r0_fixed: opts.r0.is_some(),
            ci_r0: intervals.map(|i| i.r0),
            ci_a: intervals.map(|i| i.a),
            ci_b: intervals.map(|i| i.b),
            ci_c_mid: intervals.map(|i| i.c_mid),
            bootstrap: intervals.map(|i| BootstrapInfo {
                n_resamples: i.n_resamples,
                n_failed: i.n_failed,
                seed: i.seed,
            }),
            rmse: fit.rmse,
            residuals: fit.residuals.clone(),
            holdout,
            warnings: fit_warnings(points, fit, opts, intervals),
        }
    }
}

pub(crate) fn fit_warnings(
    points: &[Point],
    fit: &SigmoidFit,
    opts: &FitOptions,
    intervals: Option<&Intervals>,
) -> Vec<String> {
    let mut w = vec![];
    if fit.b <= B_RANGE.0 * 1.001 || fit.b >= B_RANGE.1 * 0.999 {
        w.push(format!(
            "B = {} is at the edge of its search range [{}, {}]: the data do not resolve the \
             transition, so B and C_mid are poorly determined",
            fmt_num(fit.b),
            fmt_num(B_RANGE.0),
            fmt_num(B_RANGE.1)
        ));
    }
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let (xmin, xmax) = min_max(&xs);
    if fit.c_mid > xmax {
        w.push(format!(
            "C_mid = {} is beyond the largest compute observed ({}): A is an extrapolation",
            fmt_num(fit.c_mid),
            fmt_num(xmax)
        ));
    } else if fit.c_mid < xmin && opts.r0.is_none() {
        w.push(format!(
            "C_mid = {} is below the smallest compute observed ({}): R0 is an extrapolation",
            fmt_num(fit.c_mid),
            fmt_num(xmin)
        ));
    }
    if let Some(i) = intervals {
        if i.n_failed * 10 > i.n_resamples {
            w.push(format!(
                "{} of {} bootstrap fits failed; the intervals use the rest",
                i.n_failed, i.n_resamples
            ));
        }
    }
    w
}

/// A number with about 4 significant digits: `0.8123`, `1.5`, `1.2e5`.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let av = v.abs();
    if (1e-3..1e5).contains(&av) {
        let decimals = (3 - av.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        fmt_sci(v)
    }
}

/// Scientific notation with up to 4 significant digits: `2e4`, `1.5e5`.
pub(crate) fn fmt_sci(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return fmt_num(v);
    }
    let s = format!("{v:.3e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    format!("{m}e{e}")
}
