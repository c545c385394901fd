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

use modrl_moderation::plot::{c, nice_ticks, tick_labels, Frame, Svg};
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

fn validate(points: &[Point], opts: &FitOptions) -> Result<()> {
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
fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The least-squares problem in `p = [r0, a, ln b, ln c_mid]` over `t = ln x`.
struct Problem {
    t: Vec<f64>,
    y: Vec<f64>,
    r0_fixed: Option<f64>,
    /// Indices of the free entries of `p`.
    free: Vec<usize>,
    lb_range: (f64, f64),
    lc_range: (f64, f64),
    /// Upper bound on `a` (infinite when unbounded).
    a_max: f64,
}

impl Problem {
    fn new(points: &[Point], r0_fixed: Option<f64>, a_max: Option<f64>) -> Self {
        let t: Vec<f64> = points.iter().map(|p| p.x.ln()).collect();
        let y = points.iter().map(|p| p.y).collect();
        let (tmin, tmax) = min_max(&t);
        // c_mid may lie outside the data (extrapolation), but not absurdly far.
        let w = (tmax - tmin).max(std::f64::consts::LN_10);
        Problem {
            t,
            y,
            r0_fixed,
            free: if r0_fixed.is_some() {
                vec![1, 2, 3]
            } else {
                vec![0, 1, 2, 3]
            },
            lb_range: (B_RANGE.0.ln(), B_RANGE.1.ln()),
            lc_range: (tmin - 2.0 * w, tmax + 2.0 * w),
            a_max: a_max.unwrap_or(f64::INFINITY),
        }
    }

    /// The multi-start grid: ln c_mid over the observed log-x range x b in {0.5, 1, 2, 4}, each
    /// with (r0, a) from min/max of y (oriented by the trend) and from linear least squares.
    fn starts(&self) -> Vec<[f64; 4]> {
        const N_LC: usize = 7;
        let (tmin, tmax) = min_max(&self.t);
        let (ymin, ymax) = min_max(&self.y);
        let increasing = covariance(&self.t, &self.y) >= 0.0;
        let (lo_end, hi_end) = if increasing {
            (ymin, ymax)
        } else {
            (ymax, ymin)
        };
        let mut out = vec![];
        for k in 0..N_LC {
            let lc = tmin + (tmax - tmin) * k as f64 / (N_LC - 1) as f64;
            for b in [0.5f64, 1.0, 2.0, 4.0] {
                let lb = b.ln();
                let (r0, a) = match self.r0_fixed {
                    Some(r0) => (r0, hi_end),
                    None => (lo_end, hi_end),
                };
                out.push([r0, a, lb, lc]);
                if let Some((r0, a)) = self.linear_init(b, lc) {
                    out.push([r0, a, lb, lc]);
                }
            }
        }
        out
    }

    /// With b and c_mid fixed the model is linear in (r0, a): solve that exactly.
    fn linear_init(&self, b: f64, lc: f64) -> Option<(f64, f64)> {
        let s: Vec<f64> = self.t.iter().map(|&t| logistic(b * (t - lc))).collect();
        match self.r0_fixed {
            Some(r0) => {
                let ss: f64 = s.iter().map(|v| v * v).sum();
                let sy: f64 = s.iter().zip(&self.y).map(|(s, y)| s * (y - r0)).sum();
                (ss > 1e-12).then(|| (r0, r0 + sy / ss))
            }
            None => {
                // y ~ r0 * (1 - s) + a * s
                let (mut m00, mut m01, mut m11, mut v0, mut v1) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for (&s, &y) in s.iter().zip(&self.y) {
                    let u = 1.0 - s;
                    m00 += u * u;
                    m01 += u * s;
                    m11 += s * s;
                    v0 += u * y;
                    v1 += s * y;
                }
                let det = m00 * m11 - m01 * m01;
                if det.abs() <= 1e-9 * (m00 * m11).max(1e-300) {
                    return None;
                }
                Some(((v0 * m11 - v1 * m01) / det, (m00 * v1 - m01 * v0) / det))
            }
        }
    }

    fn clamp(&self, p: &mut [f64; 4]) {
        if let Some(r0) = self.r0_fixed {
            p[0] = r0;
        }
        p[2] = p[2].clamp(self.lb_range.0, self.lb_range.1);
        p[3] = p[3].clamp(self.lc_range.0, self.lc_range.1);
        p[1] = p[1].min(self.a_max);
    }

    /// Residuals `y - R` into `r`; returns their sum of squares.
    fn residuals(&self, p: &[f64; 4], r: &mut [f64]) -> f64 {
        let b = p[2].exp();
        let mut sse = 0.0;
        for ((ri, &t), &y) in r.iter_mut().zip(&self.t).zip(&self.y) {
            *ri = y - (p[0] + (p[1] - p[0]) * logistic(b * (t - p[3])));
            sse += *ri * *ri;
        }
        sse
    }

    /// dR/dp at log-compute `t`.
    fn jacobian_row(p: &[f64; 4], t: f64) -> [f64; 4] {
        let b = p[2].exp();
        let d = t - p[3];
        let s = logistic(b * d);
        let ds = (p[1] - p[0]) * s * (1.0 - s); // dR/dz, z = b (t - lc)
        [1.0 - s, s, ds * b * d, -ds * b]
    }

    fn bounds(&self, i: usize) -> (f64, f64) {
        match i {
            1 => (f64::NEG_INFINITY, self.a_max),
            2 => self.lb_range,
            3 => self.lc_range,
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    /// Levenberg-Marquardt (Marquardt's diagonal scaling, Nielsen's damping update) from `p`,
    /// with the box on (ln b, ln c_mid) handled by holding a parameter fixed while it sits on a
    /// bound that the step would cross. Returns the final parameters and sum of squared residuals.
    #[allow(clippy::needless_range_loop)] // small dense matrices read best with indices
    fn levenberg_marquardt(&self, mut p: [f64; 4], max_iter: usize) -> ([f64; 4], f64) {
        self.clamp(&mut p);
        let k = self.free.len();
        let mut r = vec![0.0; self.t.len()];
        let mut r_new = r.clone();
        let mut sse = self.residuals(&p, &mut r);
        if !sse.is_finite() {
            return (p, f64::INFINITY);
        }
        let mut lambda = 1e-3;
        let mut nu = 2.0;
        'outer: for _ in 0..max_iter {
            if sse == 0.0 {
                break;
            }
            let mut jtj = [[0.0; 4]; 4];
            let mut g = [0.0; 4];
            for (&t, &ri) in self.t.iter().zip(&r) {
                let row = Self::jacobian_row(&p, t);
                for u in 0..k {
                    let ju = row[self.free[u]];
                    g[u] += ju * ri;
                    for v in 0..=u {
                        jtj[u][v] += ju * row[self.free[v]];
                    }
                }
            }
            for u in 0..k {
                for v in 0..u {
                    jtj[v][u] = jtj[u][v];
                }
            }
            let max_diag = (0..k).map(|u| jtj[u][u]).fold(0.0, f64::max);
            let diag: Vec<f64> = (0..k)
                .map(|u| jtj[u][u].max(1e-9 * max_diag).max(f64::MIN_POSITIVE))
                .collect();
            loop {
                let mut m = jtj;
                for u in 0..k {
                    m[u][u] += lambda * diag[u];
                }
                let mut active: Vec<usize> = (0..k).collect();
                let step = loop {
                    let Some(h) = solve_spd(&m, &g, &active) else {
                        break None;
                    };
                    let before = active.len();
                    active.retain(|&u| {
                        let i = self.free[u];
                        let (lo, hi) = self.bounds(i);
                        !((p[i] <= lo && h[u] < 0.0) || (p[i] >= hi && h[u] > 0.0))
                    });
                    if active.len() == before {
                        break Some(h);
                    }
                };
                let Some(h) = step else {
                    lambda *= nu;
                    nu *= 2.0;
                    if lambda > 1e16 {
                        break 'outer;
                    }
                    continue;
                };
                if active.is_empty() {
                    break 'outer; // pinned in a corner of the box
                }
                let mut p_new = p;
                for u in 0..k {
                    p_new[self.free[u]] += h[u];
                }
                self.clamp(&mut p_new);
                let sse_new = self.residuals(&p_new, &mut r_new);
                if sse_new.is_finite() && sse_new < sse {
                    let predicted: f64 = (0..k)
                        .map(|u| h[u] * (g[u] + lambda * diag[u] * h[u]))
                        .sum();
                    let rho = (sse - sse_new) / predicted.max(f64::MIN_POSITIVE);
                    lambda *= (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0);
                    nu = 2.0;
                    let small_gain = sse - sse_new <= 1e-12 * sse;
                    let small_step = (0..k).all(|u| {
                        let i = self.free[u];
                        (p_new[i] - p[i]).abs() <= 1e-12 * (p[i].abs() + 1e-12)
                    });
                    p = p_new;
                    std::mem::swap(&mut r, &mut r_new);
                    sse = sse_new;
                    if small_gain || small_step {
                        break 'outer;
                    }
                    break;
                }
                lambda *= nu;
                nu *= 2.0;
                if lambda > 1e16 {
                    break 'outer;
                }
            }
        }
        (p, sse)
    }
}

/// Solve the symmetric positive-definite system `m x = g` restricted to the rows and columns
/// `idx` (Cholesky); the other entries of `x` are 0.
#[allow(clippy::needless_range_loop)]
fn solve_spd(m: &[[f64; 4]; 4], g: &[f64; 4], idx: &[usize]) -> Option<[f64; 4]> {
    let k = idx.len();
    let mut l = [[0.0; 4]; 4];
    for i in 0..k {
        for j in 0..=i {
            let mut s = m[idx[i]][idx[j]];
            for q in 0..j {
                s -= l[i][q] * l[j][q];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut z = [0.0; 4];
    for i in 0..k {
        let mut s = g[idx[i]];
        for q in 0..i {
            s -= l[i][q] * z[q];
        }
        z[i] = s / l[i][i];
    }
    let mut x = [0.0; 4];
    for i in (0..k).rev() {
        let mut s = z[i];
        for q in i + 1..k {
            s -= l[q][i] * x[idx[q]];
        }
        x[idx[i]] = s / l[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}
fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum()
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator for resampling.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// 95% bootstrap percentile intervals, `[lo, hi]` per parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Intervals {
    pub r0: [f64; 2],
    pub a: [f64; 2],
    pub b: [f64; 2],
    pub c_mid: [f64; 2],
    pub n_resamples: usize,
    /// Resamples whose fit failed (e.g. too few distinct x drawn); left out of the intervals.
    pub n_failed: usize,
    pub seed: u64,
}

/// Refit on `n_resamples` resamples (points drawn with replacement) and take the 2.5% and 97.5%
/// percentiles of each parameter. Failed fits are skipped and counted. Deterministic for a seed.
pub fn bootstrap(
    points: &[Point],
    opts: &FitOptions,
    n_resamples: usize,
    seed: u64,
) -> Result<Intervals> {
    validate(points, opts)?;
    if n_resamples == 0 {
        bail!("bootstrap needs at least one resample");
    }
    let mut rng = SplitMix64::new(seed);
    let seeds: Vec<u64> = (0..n_resamples).map(|_| rng.next_u64()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16)
        .min(n_resamples);
    let mut fits: Vec<Option<[f64; 4]>> = vec![None; n_resamples];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut out = vec![];
                    let mut sample = Vec::with_capacity(points.len());
                    for (i, &s) in seeds.iter().enumerate().skip(w).step_by(threads) {
                        let mut rng = SplitMix64::new(s);
                        sample.clear();
                        sample.extend((0..points.len()).map(|_| points[rng.below(points.len())]));
                        let f = fit_with(&sample, opts)
                            .ok()
                            .map(|f| [f.r0, f.a, f.b, f.c_mid]);
                        out.push((i, f));
                    }
                    out
                })
            })
            .collect();
        for w in workers {
            for (i, f) in w.join().expect("bootstrap worker panicked") {
                fits[i] = f;
            }
        }
    });
    let ok: Vec<[f64; 4]> = fits.into_iter().flatten().collect();
    let n_failed = n_resamples - ok.len();
    if ok.len() < 2 {
        bail!(
            "bootstrap: only {} of {n_resamples} resampled fits succeeded",
            ok.len()
        );
    }
    let ci = |j: usize| {
        let mut v: Vec<f64> = ok.iter().map(|p| p[j]).collect();
        v.sort_by(f64::total_cmp);
        [percentile(&v, 0.025), percentile(&v, 0.975)]
    };
    Ok(Intervals {
        r0: ci(0),
        a: ci(1),
        b: ci(2),
        c_mid: ci(3),
        n_resamples,
        n_failed,
        seed,
    })
}

/// Linear-interpolated percentile of sorted, non-empty `v` (`q` in [0, 1]).
fn percentile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(v.len() - 1);
    v[i] + (v[j] - v[i]) * (pos - i as f64)
}

/// One held-out point.
#[derive(Debug, Clone, Serialize)]
pub struct HoldoutPrediction {
    pub x: f64,
    pub y: f64,
    pub pred: f64,
    /// `pred - y`.
    pub error: f64,
}

/// Extrapolation check: fit on the least-compute points, predict the others.
#[derive(Debug, Clone, Serialize)]
pub struct Holdout {
    pub frac: f64,
    /// The largest fitted x: points with `x <= x_cut` were fitted, the rest predicted.
    pub x_cut: f64,
    pub n_fit: usize,
    pub n_pred: usize,
    /// Mean and max absolute prediction error over the held-out points.
    pub mae: f64,
    pub max_abs_error: f64,
    pub predictions: Vec<HoldoutPrediction>,
    /// The fit to the first `n_fit` points.
    pub fit: SigmoidFit,
}

/// [`holdout_with`] with default options.
pub fn holdout(points: &[Point], frac: f64) -> Result<Holdout> {
    holdout_with(points, frac, &FitOptions::default())
}

/// Sort by x, fit on the points up to the `frac` quantile of x (the first `ceil(frac * n)` points,
/// extended over ties so that every point with `x <= x_cut` is fitted) and predict the rest.
pub fn holdout_with(points: &[Point], frac: f64, opts: &FitOptions) -> Result<Holdout> {
    if !(frac > 0.0 && frac < 1.0) {
        bail!("the holdout fraction must be in (0, 1), got {frac}");
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|p, q| p.x.total_cmp(&q.x));
    let n = sorted.len();
    let mut n_fit = ((frac * n as f64).ceil() as usize).clamp(1, n);
    while n_fit < n && sorted[n_fit].x == sorted[n_fit - 1].x {
        n_fit += 1;
    }
    if n_fit == n {
        bail!("holdout fraction {frac} of {n} points leaves no point to predict");
    }
    let x_cut = sorted[n_fit - 1].x;
    let fit = fit_with(&sorted[..n_fit], opts)
        .with_context(|| format!("fitting the first {n_fit} points (x <= {x_cut})"))?;
    let predictions: Vec<HoldoutPrediction> = sorted[n_fit..]
        .iter()
        .map(|p| {
            let pred = fit.predict(p.x);
            HoldoutPrediction {
                x: p.x,
                y: p.y,
                pred,
                error: pred - p.y,
            }
        })
        .collect();
    let abs = predictions.iter().map(|p| p.error.abs());
    let mae = abs.clone().sum::<f64>() / predictions.len() as f64;
    let max_abs_error = abs.fold(0.0, f64::max);
    Ok(Holdout {
        frac,
        x_cut,
        n_fit,
        n_pred: predictions.len(),
        mae,
        max_abs_error,
        predictions,
        fit,
    })
}

/// Read `(x_key, y_key)` pairs from a JSONL file of objects, such as a run's `metrics.jsonl`.
///
/// A key is looked up as written first (`"eval/pr_auc"` is one flat key in metrics.jsonl), then,
/// if absent and it contains `/`, as a path into nested objects (`{"eval": {"pr_auc": ..}}`).
/// Rows missing either key, or holding `null`, are skipped; blank lines are ignored. A line that
/// is not a JSON object, or a present non-null field that is not a number, is an error naming the
/// file, the line number and the field.
pub fn read_points(path: impl AsRef<Path>, x_key: &str, y_key: &str) -> Result<Vec<Point>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: Value =
            serde_json::from_str(line).map_err(|e| anyhow!("{}: invalid JSON: {e}", at()))?;
        let Value::Object(obj) = v else {
            bail!("{}: expected a JSON object, got {}", at(), type_name(&v));
        };
        let get = |key: &str| -> Result<Option<f64>> {
            match lookup(&obj, key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(other) => bail!(
                    "{}: field \"{key}\" is not a number (got {} {other})",
                    at(),
                    type_name(other)
                ),
            }
        };
        if let (Some(x), Some(y)) = (get(x_key)?, get(y_key)?) {
            out.push(Point { x, y });
        }
    }
    Ok(out)
}

fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    if !key.contains('/') {
        return None;
    }
    let mut parts = key.split('/');
    let mut cur = obj.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

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

fn fit_warnings(
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
fn fmt_sci(v: f64) -> String {
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
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TRUTH: (f64, f64, f64, f64) = (0.5, 0.85, 1.5, 1e5);

    fn law(r0: f64, a: f64, b: f64, c_mid: f64, x: f64) -> f64 {
        r0 + (a - r0) / (1.0 + (c_mid / x).powf(b))
    }

    /// 12 log-spaced x from 1e3 to 1e7, y on the true law plus N(0, sd) noise.
    fn synthetic(sd: f64, seed: u64) -> Vec<Point> {
        let (r0, a, b, c) = TRUTH;
        let mut rng = SplitMix64::new(seed);
        (0..12)
            .map(|i| {
                let x = 10f64.powf(3.0 + 4.0 * i as f64 / 11.0);
                // Box-Muller
                let (u1, u2) = (1.0 - rng.next_f64(), rng.next_f64());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                Point {
                    x,
                    y: law(r0, a, b, c, x) + sd * z,
                }
            })
            .collect()
    }

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "modrl_scaling_test_{}_{name}.jsonl",
            std::process::id()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn splitmix64_matches_reference() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(7);
        for _ in 0..1000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(5) < 5);
        }
    }

    #[test]
    fn recovers_noiseless_parameters() {
        let f = fit(&synthetic(0.0, 0)).unwrap();
        assert!((f.r0 - 0.5).abs() < 1e-7, "r0 {}", f.r0);
        assert!((f.a - 0.85).abs() < 1e-7, "a {}", f.a);
        assert!((f.b - 1.5).abs() < 1e-6, "b {}", f.b);
        assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-6, "c_mid {}", f.c_mid);
        assert!(f.rmse < 1e-9, "rmse {}", f.rmse);
        assert_eq!(f.residuals.len(), 12);
        assert!((f.predict(1e5) - 0.675).abs() < 1e-7);
        assert_eq!(f.predict(0.0), f.r0);
        assert!(f.predict(-1.0).is_nan());
        assert!((f.predict(f64::INFINITY) - f.a).abs() < 1e-12);
    }

    #[test]
    fn recovers_a_decreasing_curve_given_in_any_order() {
        // A loss-like metric falling from 2.0 to 1.2, points in reverse order.
        let mut pts: Vec<Point> = (0..10)
            .map(|i| {
                let x = 10f64.powf(2.0 + 5.0 * i as f64 / 9.0);
                Point {
                    x,
                    y: law(2.0, 1.2, 0.8, 3e4, x),
                }
            })
            .collect();
        pts.reverse();
        let f = fit(&pts).unwrap();
        assert!((f.r0 - 2.0).abs() < 1e-6, "r0 {}", f.r0);
        assert!((f.a - 1.2).abs() < 1e-6, "a {}", f.a);
        assert!((f.b - 0.8).abs() < 1e-5, "b {}", f.b);
        assert!((f.c_mid / 3e4 - 1.0).abs() < 1e-5, "c_mid {}", f.c_mid);
        // residuals follow input order
        for (p, r) in pts.iter().zip(&f.residuals) {
            assert!((p.y - f.predict(p.x) - r).abs() < 1e-12);
        }
    }

    #[test]
    fn a_max_caps_the_asymptote_that_points_before_the_bend_overshoot() {
        // Rising points that stop before the midpoint of a law whose ceiling is 1.3.
        let pts: Vec<Point> = [10.0, 30.0, 100.0, 300.0, 1000.0, 2000.0]
            .iter()
            .map(|&x| Point {
                x,
                y: law(0.5, 1.3, 1.0, 1e4, x),
            })
            .collect();
        let free = fit(&pts).unwrap();
        assert!(free.a > 1.0, "{free:?}");
        let opts = FitOptions {
            a_max: Some(1.0),
            ..Default::default()
        };
        let capped = fit_with(&pts, &opts).unwrap();
        assert!(capped.a <= 1.0 && capped.a > 0.9, "{capped:?}");
        assert!(
            capped.rmse.is_finite() && capped.rmse >= free.rmse,
            "{capped:?} {free:?}"
        );
        let bad = FitOptions {
            a_max: Some(f64::NAN),
            ..Default::default()
        };
        assert!(fit_with(&pts, &bad).is_err());
    }

    #[test]
    fn fixed_r0_needs_three_points_and_recovers_the_rest() {
        let pts = synthetic(0.0, 0);
        let opts = FitOptions {
            r0: Some(0.5),
            ..Default::default()
        };
        let f = fit_with(&pts, &opts).unwrap();
        assert_eq!(f.r0, 0.5);
        assert!((f.a - 0.85).abs() < 1e-7);
        assert!((f.b - 1.5).abs() < 1e-6);
        assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-6);
        // three points spanning the transition pin a, b and c_mid exactly
        let three = [pts[2], pts[5], pts[9]];
        let f = fit_with(&three, &opts).unwrap();
        assert!(f.rmse < 1e-8, "rmse {}", f.rmse);
        assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-4, "c_mid {}", f.c_mid);
        assert!(fit(&three).is_err());
    }

    #[test]
    fn noisy_fit_is_close_and_bootstrap_intervals_cover_the_truth() {
        let pts = synthetic(0.004, 42);
        let f = fit(&pts).unwrap();
        assert!((f.r0 - 0.5).abs() < 0.03, "r0 {}", f.r0);
        assert!((f.a - 0.85).abs() < 0.03, "a {}", f.a);
        assert!((0.8..3.0).contains(&f.b), "b {}", f.b);
        assert!((f.c_mid / 1e5).ln().abs() < 2f64.ln(), "c_mid {}", f.c_mid);
        assert!(f.rmse < 0.01 && f.rmse > 0.0);

        let ci = bootstrap(&pts, &FitOptions::default(), 200, 7).unwrap();
        let (r0, a, b, c) = TRUTH;
        for (name, [lo, hi], truth, est) in [
            ("r0", ci.r0, r0, f.r0),
            ("a", ci.a, a, f.a),
            ("b", ci.b, b, f.b),
            ("c_mid", ci.c_mid, c, f.c_mid),
        ] {
            assert!(
                lo <= truth && truth <= hi,
                "{name}: {truth} not in [{lo}, {hi}]"
            );
            assert!(
                lo <= est && est <= hi,
                "{name}: estimate {est} not in [{lo}, {hi}]"
            );
        }
        assert_eq!(ci.n_resamples, 200);
        assert!(ci.n_failed < 10, "{} failed", ci.n_failed);
        // deterministic for a seed
        let again = bootstrap(&pts, &FitOptions::default(), 200, 7).unwrap();
        assert_eq!(ci.r0, again.r0);
        assert_eq!(ci.c_mid, again.c_mid);
    }

    #[test]
    fn bootstrap_counts_failed_resamples() {
        // 4 distinct x: any resample missing one of them cannot be fitted.
        let pts: Vec<Point> = synthetic(0.0, 0).into_iter().step_by(3).collect();
        assert_eq!(pts.len(), 4);
        let ci = bootstrap(&pts, &FitOptions::default(), 100, 1).unwrap();
        assert!(ci.n_failed > 50, "{} failed", ci.n_failed);
        assert!(ci.n_failed < 100);
        assert!(bootstrap(&pts, &FitOptions::default(), 0, 1).is_err());
    }

    #[test]
    fn holdout_on_noiseless_data_extrapolates() {
        let h = holdout(&synthetic(0.0, 0), 0.5).unwrap();
        assert_eq!((h.n_fit, h.n_pred), (6, 6));
        assert!(h.mae < 1e-6, "mae {}", h.mae);
        assert!(h.max_abs_error < 1e-6);
        assert!(h.predictions.iter().all(|p| p.x > h.x_cut));
        assert!(holdout(&synthetic(0.0, 0), 1.0).is_err());
        assert!(holdout(&synthetic(0.0, 0), 0.0).is_err());
        // too few points left to fit
        let err = holdout(&synthetic(0.0, 0), 0.2).unwrap_err();
        assert!(format!("{err:#}").contains("at least 4"), "{err:#}");
    }

    #[test]
    fn holdout_keeps_ties_on_the_fitted_side() {
        let mut pts = synthetic(0.0, 0);
        pts.push(Point {
            x: pts[5].x,
            y: pts[5].y,
        });
        let h = holdout(&pts, 0.5).unwrap(); // ceil(6.5) = 7 points, x[6] is the duplicate
        assert_eq!(h.n_fit + h.n_pred, 13);
        assert!(h.predictions.iter().all(|p| p.x > h.x_cut));
    }

    #[test]
    fn rejects_bad_input_with_clear_errors() {
        let pts = synthetic(0.0, 0);
        let e = format!("{:#}", fit(&pts[..3]).unwrap_err());
        assert!(e.contains("at least 4 points"), "{e}");
        let e = format!("{:#}", fit(&[]).unwrap_err());
        assert!(e.contains("got 0"), "{e}");

        let mut bad = pts.clone();
        bad[4].x = 0.0;
        let e = format!("{:#}", fit(&bad).unwrap_err());
        assert!(e.contains("point 4") && e.contains("> 0"), "{e}");
        bad[4].x = -3.0;
        assert!(fit(&bad).is_err());

        let mut bad = pts.clone();
        bad[1].y = f64::NAN;
        let e = format!("{:#}", fit(&bad).unwrap_err());
        assert!(e.contains("point 1") && e.contains("not finite"), "{e}");

        let same_x: Vec<Point> = (0..6)
            .map(|i| Point {
                x: 10.0,
                y: i as f64,
            })
            .collect();
        let e = format!("{:#}", fit(&same_x).unwrap_err());
        assert!(e.contains("distinct x"), "{e}");

        let opts = FitOptions {
            r0: Some(f64::NAN),
            ..Default::default()
        };
        assert!(fit_with(&pts, &opts).is_err());
    }

    #[test]
    fn read_points_skips_missing_and_reads_flat_and_nested_keys() {
        let text = r#"{"compute": 1000, "eval/pr_auc": 0.6}
{"compute": 2000}

{"compute": 3000, "eval/pr_auc": null}
{"step": 4, "loss": 1.0}
{"compute": 4e3, "eval": {"pr_auc": 0.7}}
  {"compute": 5000, "eval/pr_auc": 0.75, "extra": [1, 2]}
"#;
        let p = temp_file("ok", text);
        let pts = read_points(&p, "compute", "eval/pr_auc").unwrap();
        std::fs::remove_file(&p).ok();
        assert_eq!(
            pts,
            vec![
                Point { x: 1000.0, y: 0.6 },
                Point { x: 4000.0, y: 0.7 },
                Point { x: 5000.0, y: 0.75 },
            ]
        );
    }

    #[test]
    fn read_points_errors_name_file_line_and_field() {
        let p = temp_file(
            "badjson",
            "{\"compute\": 1, \"y\": 2}\n\n{\"compute\": 2, \"y\":\n",
        );
        let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
        std::fs::remove_file(&p).ok();
        assert!(e.contains(&format!("{}:3", p.display())), "{e}");
        assert!(e.contains("invalid JSON"), "{e}");

        let p = temp_file(
            "badfield",
            "{\"compute\": 1, \"y\": 2}\n{\"compute\": \"lots\", \"y\": 2}\n",
        );
        let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
        std::fs::remove_file(&p).ok();
        assert!(
            e.contains(":2") && e.contains("\"compute\"") && e.contains("not a number"),
            "{e}"
        );

        let p = temp_file("notobj", "[1, 2]\n");
        let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
        std::fs::remove_file(&p).ok();
        assert!(e.contains(":1") && e.contains("JSON object"), "{e}");

        assert!(read_points("/nonexistent/metrics.jsonl", "x", "y").is_err());
    }

    #[test]
    fn report_serialises_the_fit() {
        let pts = synthetic(0.002, 3);
        let opts = FitOptions::default();
        let f = fit_with(&pts, &opts).unwrap();
        let ci = bootstrap(&pts, &opts, 50, 0).unwrap();
        let h = holdout_with(&pts, 0.5, &opts).unwrap();
        let r = Report::new(
            &pts,
            "compute",
            "eval/pr_auc",
            &f,
            &opts,
            Some(&ci),
            Some(h),
        );
        let v: Value = serde_json::to_value(&r).unwrap();
        for k in [
            "n",
            "x_key",
            "y_key",
            "r0",
            "a",
            "b",
            "c_mid",
            "ci_r0",
            "ci_a",
            "ci_b",
            "ci_c_mid",
            "rmse",
            "residuals",
            "holdout",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["n"], 12);
        assert_eq!(v["y_key"], "eval/pr_auc");
        assert_eq!(v["ci_b"].as_array().unwrap().len(), 2);
        for k in ["frac", "mae", "max_abs_error", "n_fit", "n_pred"] {
            assert!(v["holdout"].get(k).is_some(), "missing holdout.{k}");
        }
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let r = Report::new(&pts, "x", "y", &f, &opts, None, None);
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["ci_r0"].is_null() && v["holdout"].is_null());
        // only the rising half of the curve observed: A is an extrapolation
        let early: Vec<Point> = synthetic(0.0, 0)
            .into_iter()
            .filter(|p| p.x < 5e4)
            .collect();
        let f = fit(&early).unwrap();
        let r = Report::new(&early, "x", "y", &f, &opts, None, None);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("A is an extrapolation")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn svg_has_points_curve_and_escaped_title() {
        let pts = synthetic(0.0, 0);
        let f = fit(&pts).unwrap();
        let svg = plot_svg(&pts, &f, "tokens<rollout>", "eval/pr_auc");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 12);
        assert_eq!(svg.matches("<path d=\"M").count(), 2); // fitted range + dashed extrapolation
        assert!(svg.contains(">1e5</text>"));
        assert!(svg.contains("tokens&lt;rollout&gt;"));
        assert!(
            svg.contains("R0 = 0.5, A = 0.85, B = 1.5, C_mid = 1e5"),
            "{svg}"
        );
        assert!(!svg.contains("NaN"));
        // a flat, single-point fit still renders
        let flat = SigmoidFit {
            r0: 1.0,
            a: 1.0,
            b: 1.0,
            c_mid: 10.0,
            rmse: 0.0,
            residuals: vec![],
        };
        let svg = plot_svg(&[Point { x: 10.0, y: 1.0 }], &flat, "x", "y");
        assert!(!svg.contains("NaN") && svg.contains("<circle"));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_num(0.85), "0.85");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(1e5), "1e5");
        assert_eq!(fmt_num(123456.0), "1.235e5");
        assert_eq!(fmt_num(0.0001234), "1.234e-4");
        assert_eq!(fmt_num(12.3456), "12.35");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-2.0), "-2");
    }
}
