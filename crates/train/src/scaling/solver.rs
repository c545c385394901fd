//! The Levenberg-Marquardt least-squares solver behind [`fit_with`] (analytic Jacobian, box
//! constraints) and its small linear-algebra helpers.

use super::*;

/// The least-squares problem in `p = [r0, a, ln b, ln c_mid]` over `t = ln x`.
pub(crate) struct Problem {
    pub(crate) t: Vec<f64>,
    pub(crate) y: Vec<f64>,
    pub(crate) r0_fixed: Option<f64>,
    /// Indices of the free entries of `p`.
    pub(crate) free: Vec<usize>,
    pub(crate) lb_range: (f64, f64),
    pub(crate) lc_range: (f64, f64),
    /// Upper bound on `a` (infinite when unbounded).
    pub(crate) a_max: f64,
}

impl Problem {
    pub(crate) fn new(points: &[Point], r0_fixed: Option<f64>, a_max: Option<f64>) -> Self {
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
    pub(crate) fn starts(&self) -> Vec<[f64; 4]> {
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
    pub(crate) fn linear_init(&self, b: f64, lc: f64) -> Option<(f64, f64)> {
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

    pub(crate) fn clamp(&self, p: &mut [f64; 4]) {
        if let Some(r0) = self.r0_fixed {
            p[0] = r0;
        }
        p[2] = p[2].clamp(self.lb_range.0, self.lb_range.1);
        p[3] = p[3].clamp(self.lc_range.0, self.lc_range.1);
        p[1] = p[1].min(self.a_max);
    }

    /// Residuals `y - R` into `r`; returns their sum of squares.
    pub(crate) fn residuals(&self, p: &[f64; 4], r: &mut [f64]) -> f64 {
        let b = p[2].exp();
        let mut sse = 0.0;
        for ((ri, &t), &y) in r.iter_mut().zip(&self.t).zip(&self.y) {
            *ri = y - (p[0] + (p[1] - p[0]) * logistic(b * (t - p[3])));
            sse += *ri * *ri;
        }
        sse
    }

    /// dR/dp at log-compute `t`.
    pub(crate) fn jacobian_row(p: &[f64; 4], t: f64) -> [f64; 4] {
        let b = p[2].exp();
        let d = t - p[3];
        let s = logistic(b * d);
        let ds = (p[1] - p[0]) * s * (1.0 - s); // dR/dz, z = b (t - lc)
        [1.0 - s, s, ds * b * d, -ds * b]
    }

    pub(crate) fn bounds(&self, i: usize) -> (f64, f64) {
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
    pub(crate) fn levenberg_marquardt(&self, mut p: [f64; 4], max_iter: usize) -> ([f64; 4], f64) {
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
pub(crate) fn solve_spd(m: &[[f64; 4]; 4], g: &[f64; 4], idx: &[usize]) -> Option<[f64; 4]> {
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
pub(crate) fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

pub(crate) fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum()
}
