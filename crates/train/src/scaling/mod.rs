//! Fit the ScaleRL sigmoid compute-scaling law
//!
//! ```text
//! R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)        C > 0, B > 0, C_mid > 0
//! ```
//!
//! to (compute, metric) points, e.g. cumulative rollout tokens against eval PR-AUC. `R0` is the
//! metric at zero compute, `A` the asymptote, `B` the steepness (in log-compute) and `C_mid` the
//! compute at which half of the gain `A - R0` is reached. With `t = ln C` the law is a logistic in
//! `t`: `R = R0 + (A - R0) * sigma(B * (t - ln C_mid))`, which is how it is fitted.
//!
//! - [`fit`] / [`fit_with`]: Levenberg-Marquardt least squares on `(r0, a, ln b, ln c_mid)` with an
//!   analytic Jacobian, started from a grid over `ln c_mid` (across the observed log-x range) and
//!   `b` in {0.5, 1, 2, 4}; the best of all starts wins. [`FitOptions::r0`] pins `R0`.
//! - [`bootstrap`]: 95% percentile intervals from fits to resampled points (seeded, threaded,
//!   deterministic for a seed whatever the thread count).
//! - [`holdout`]: fit on the points with the least compute, predict the rest.
//! - [`read_points`]: (x, y) pairs from a JSONL file such as a run's `metrics.jsonl`.
//! - [`Report`]: everything above as one JSON-serialisable object; [`plot_svg`]: a log-x plot.

use std::collections::HashSet;
use std::fmt::Write as _;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

/// One observation: `x` is compute (must be > 0 to fit), `y` the metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// A fitted law and its residuals (`y - predict(x)`, in input order).
#[derive(Debug, Clone, Serialize)]
pub struct SigmoidFit {
    pub r0: f64,
    pub a: f64,
    pub b: f64,
    pub c_mid: f64,
    /// Root mean squared residual.
    pub rmse: f64,
    pub residuals: Vec<f64>,
}

impl SigmoidFit {
    /// `R(x)`; `r0` at `x = 0` (the limit), NaN for negative `x`.
    pub fn predict(&self, x: f64) -> f64 {
        if x == 0.0 {
            return self.r0;
        }
        if x.is_nan() || x < 0.0 {
            return f64::NAN;
        }
        let s = logistic(self.b * (x.ln() - self.c_mid.ln()));
        self.r0 + (self.a - self.r0) * s
    }
}

/// The search box for `b`; a fit on its edge means the data do not resolve the transition.
pub const B_RANGE: (f64, f64) = (0.01, 100.0);

/// Options for [`fit_with`], [`bootstrap`] and [`holdout_with`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Pin `R0` (often the zero-step value of the metric) instead of fitting it; then 3 points
    /// are enough.
    pub r0: Option<f64>,
    /// Levenberg-Marquardt iterations per start.
    pub max_iter: usize,
    /// Upper bound on the asymptote `A` (e.g. 1 for PR-AUC, which cannot exceed it); default
    /// none. A fit on the bound says the data put the ceiling at or above it.
    pub a_max: Option<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            r0: None,
            max_iter: 300,
            a_max: None,
        }
    }
}

/// Fit all four parameters (see [`fit_with`]).
pub fn fit(points: &[Point]) -> Result<SigmoidFit> {
    fit_with(points, &FitOptions::default())
}

/// Fit the law by multi-start Levenberg-Marquardt. Needs at least 4 points with 4 distinct x
/// (3 when `opts.r0` is set), every x finite and > 0, every y finite.
pub fn fit_with(points: &[Point], opts: &FitOptions) -> Result<SigmoidFit> {
    validate(points, opts)?;
    let prob = Problem::new(points, opts.r0, opts.a_max);
    // Scout from every start with a few iterations, then polish the most promising ones.
    const SCOUT_ITERS: usize = 30;
    const POLISH: usize = 4;
    let max_iter = opts.max_iter.max(1);
    let mut scouted: Vec<([f64; 4], f64)> = prob
        .starts()
        .into_iter()
        .map(|s| prob.levenberg_marquardt(s, SCOUT_ITERS.min(max_iter)))
        .filter(|(p, sse)| sse.is_finite() && p.iter().all(|v| v.is_finite()))
        .collect();
    scouted.sort_by(|x, y| x.1.total_cmp(&y.1));
    let (p, sse) = scouted
        .into_iter()
        .take(POLISH)
        .map(|(p, _)| prob.levenberg_marquardt(p, max_iter))
        .filter(|(p, sse)| sse.is_finite() && p.iter().all(|v| v.is_finite()))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .ok_or_else(|| anyhow!("the sigmoid fit diverged from every start"))?;
    let mut fit = SigmoidFit {
        r0: p[0],
        a: p[1],
        b: p[2].exp(),
        c_mid: p[3].exp(),
        rmse: (sse / points.len() as f64).sqrt(),
        residuals: vec![],
    };
    fit.residuals = points.iter().map(|q| q.y - fit.predict(q.x)).collect();
    Ok(fit)
}

pub(crate) fn validate(points: &[Point], opts: &FitOptions) -> Result<()> {
    if let Some(r0) = opts.r0 {
        if !r0.is_finite() {
            bail!("the fixed r0 must be finite, got {r0}");
        }
    }
    if let Some(a) = opts.a_max {
        if !a.is_finite() {
            bail!("the bound on the asymptote must be finite, got {a}");
        }
    }
    for (i, p) in points.iter().enumerate() {
        if !(p.x.is_finite() && p.x > 0.0) {
            bail!(
                "point {i}: x = {} but compute x must be finite and > 0 (the law is fitted in \
                 log x); drop zero-compute rows (their metric can be passed as a fixed r0)",
                p.x
            );
        }
        if !p.y.is_finite() {
            bail!("point {i} (x = {}): y = {} is not finite", p.x, p.y);
        }
    }
    let need = if opts.r0.is_some() { 3 } else { 4 };
    let what = if opts.r0.is_some() {
        "a, b, c_mid (r0 fixed)"
    } else {
        "r0, a, b, c_mid"
    };
    if points.len() < need {
        bail!(
            "need at least {need} points to fit {what}, got {}",
            points.len()
        );
    }
    let distinct = points
        .iter()
        .map(|p| p.x.to_bits())
        .collect::<HashSet<_>>()
        .len();
    if distinct < need {
        bail!(
            "need at least {need} distinct x values to fit {what}, got {distinct} among {} points",
            points.len()
        );
    }
    Ok(())
}

/// `1 / (1 + e^-z)` without overflow.
pub(crate) fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

mod plot;
mod points;
mod report;
mod resample;
mod solver;
#[cfg(test)]
mod tests;

pub use plot::*;
pub use points::*;
pub use report::*;
pub use resample::*;
use solver::*;
