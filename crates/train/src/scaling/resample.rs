//! Uncertainty and prediction: [`bootstrap`] intervals from fits to resampled points (seeded
//! [`SplitMix64`]) and the [`holdout`] test of a scaling law (fit the low-compute points, predict
//! the rest).

use super::*;

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
pub(crate) fn percentile(v: &[f64], q: f64) -> f64 {
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
