//! A reasoning-length collapse monitor: reward hacking by ever shorter reasoning shows here first,
//! logged each step as `monitors/length_*`.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::logging::metric_as_f64;

/// Watches the mean reasoning (completion) length per step for *length collapse*: RL with a
/// reward that does not need reasoning often drives the policy to ever shorter reasoning.
///
/// The monitor keeps the first `window` observations (the *early* baseline) and the last
/// `window` observations (the *recent* window). Once at least `2 * window` observations have
/// been seen (so the two windows do not overlap) it reports a collapse when
///
/// ```text
/// mean(recent) < fraction * mean(early)        (fraction defaults to 0.5)
/// ```
///
/// The trend is the least-squares slope of length against step over the recent window, in
/// tokens per step (negative = shrinking). Non-finite observations are ignored.
#[derive(Debug, Clone)]
pub struct LengthMonitor {
    window: usize,
    fraction: f64,
    early: Vec<f64>,
    recent: VecDeque<(u64, f64)>,
    seen: usize,
}

/// What [`LengthMonitor`] reports after each observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthTrend {
    /// Mean of the first `window` observations (once that many were seen).
    pub early_mean: Option<f64>,
    /// Mean of the last `window` observations (once that many were seen).
    pub recent_mean: Option<f64>,
    /// `recent_mean / early_mean`, when both exist and `early_mean > 0`.
    pub ratio: Option<f64>,
    /// Least-squares slope of length per step over the recent window (>= 2 distinct steps).
    pub slope_per_step: Option<f64>,
    /// `ratio < fraction`, evaluated once `2 * window` observations were seen.
    pub collapsed: bool,
}

impl LengthTrend {
    /// The trend as metrics for [`RunLogger::log`]: `monitors/length_ratio`,
    /// `monitors/length_slope`, `monitors/length_collapsed` (0 or 1); absent values are left out.
    pub fn to_metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(r) = self.ratio {
            out.push(("monitors/length_ratio".to_string(), r));
        }
        if let Some(s) = self.slope_per_step {
            out.push(("monitors/length_slope".to_string(), s));
        }
        out.push((
            "monitors/length_collapsed".to_string(),
            if self.collapsed { 1.0 } else { 0.0 },
        ));
        out
    }
}

impl LengthMonitor {
    /// Default collapse threshold: recent mean below half the early mean.
    pub const DEFAULT_FRACTION: f64 = 0.5;

    /// A monitor with windows of `window` steps (at least 1) and the default fraction 0.5.
    pub fn new(window: usize) -> Self {
        Self::with_fraction(window, Self::DEFAULT_FRACTION)
    }

    /// A monitor with windows of `window` steps (at least 1) flagging collapse when the recent
    /// mean falls below `fraction` of the early mean.
    pub fn with_fraction(window: usize, fraction: f64) -> Self {
        let window = window.max(1);
        LengthMonitor {
            window,
            fraction,
            early: Vec::with_capacity(window),
            recent: VecDeque::with_capacity(window + 1),
            seen: 0,
        }
    }

    /// Records the mean reasoning length of `step` and returns the updated trend.
    pub fn push(&mut self, step: u64, mean_length: f64) -> LengthTrend {
        if mean_length.is_finite() {
            self.seen += 1;
            if self.early.len() < self.window {
                self.early.push(mean_length);
            }
            self.recent.push_back((step, mean_length));
            if self.recent.len() > self.window {
                self.recent.pop_front();
            }
        }
        self.trend()
    }

    /// Feeds `key` of every logged record (from [`read_metrics`]) into the monitor, e.g. to
    /// rebuild its state when a run resumes.
    pub fn replay(&mut self, records: &[(u64, Map<String, Value>)], key: &str) -> LengthTrend {
        for (step, m) in records {
            if let Some(v) = m.get(key).and_then(metric_as_f64) {
                self.push(*step, v);
            }
        }
        self.trend()
    }

    /// The current trend.
    pub fn trend(&self) -> LengthTrend {
        let mean = |xs: &mut dyn Iterator<Item = f64>| {
            let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            s / n as f64
        };
        let early_mean =
            (self.early.len() == self.window).then(|| mean(&mut self.early.iter().copied()));
        let recent_mean =
            (self.recent.len() == self.window).then(|| mean(&mut self.recent.iter().map(|p| p.1)));
        let ratio = match (early_mean, recent_mean) {
            (Some(e), Some(r)) if e > 0.0 => Some(r / e),
            _ => None,
        };
        let collapsed = self.seen >= 2 * self.window && ratio.is_some_and(|r| r < self.fraction);
        LengthTrend {
            early_mean,
            recent_mean,
            ratio,
            slope_per_step: slope(self.recent.iter().map(|&(s, y)| (s as f64, y))),
            collapsed,
        }
    }
}

/// Least-squares slope of y on x; `None` with fewer than two distinct x.
fn slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let n = points.clone().count() as f64;
    if n < 2.0 {
        return None;
    }
    let (sx, sy) = points
        .clone()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn length_monitor_flags_collapse_and_trend() {
        let mut m = LengthMonitor::new(5);
        // Stable at 400 tokens for 10 steps: no collapse, flat trend.
        let mut t = m.push(0, 400.0);
        assert_eq!(t.early_mean, None);
        assert_eq!(t.slope_per_step, None);
        for s in 1..10 {
            t = m.push(s, 400.0);
        }
        assert_eq!(t.early_mean, Some(400.0));
        assert_eq!(t.ratio, Some(1.0));
        assert_eq!(t.slope_per_step, Some(0.0));
        assert!(!t.collapsed);

        // Linear decline of 30 tokens per step.
        for s in 10..20u64 {
            t = m.push(s, 400.0 - 30.0 * (s - 9) as f64);
        }
        // Recent window: steps 15..19 -> 220, 190, 160, 130, 100; mean 160 < 0.5 * 400.
        assert_eq!(t.recent_mean, Some(160.0));
        assert_eq!(t.ratio, Some(0.4));
        assert!((t.slope_per_step.unwrap() + 30.0).abs() < 1e-9);
        assert!(t.collapsed);
        let metrics = t.to_metrics();
        assert!(metrics.contains(&("monitors/length_collapsed".to_string(), 1.0)));

        // A milder drop (to 60 % of the start) is not a collapse at the default fraction...
        let mut mild = LengthMonitor::new(2);
        for (s, v) in [(0, 100.0), (1, 100.0), (2, 60.0), (3, 60.0)] {
            t = mild.push(s, v);
        }
        assert_eq!(t.ratio, Some(0.6));
        assert!(!t.collapsed);
        // ...but is with fraction 0.7. NaN observations are ignored.
        let mut strict = LengthMonitor::with_fraction(2, 0.7);
        for (s, v) in [(0, 100.0), (1, 100.0), (2, f64::NAN), (3, 60.0), (4, 60.0)] {
            t = strict.push(s, v);
        }
        assert!(t.collapsed);

        // Too few observations for non-overlapping windows: never collapsed.
        let mut short = LengthMonitor::new(3);
        for (s, v) in [(0, 100.0), (1, 100.0), (2, 100.0), (3, 1.0)] {
            t = short.push(s, v);
        }
        assert!(!t.collapsed);
    }

    #[test]
    fn length_monitor_replays_logged_metrics() {
        let recs: Vec<(u64, Map<String, Value>)> = (0..6u64)
            .map(|s| {
                let mut m = Map::new();
                m.insert(
                    "completions/mean_length".into(),
                    json!(if s < 3 { 300.0 } else { 50.0 }),
                );
                (s, m)
            })
            .collect();
        let t = LengthMonitor::new(3).replay(&recs, "completions/mean_length");
        assert_eq!(t.early_mean, Some(300.0));
        assert_eq!(t.recent_mean, Some(50.0));
        assert!(t.collapsed);
    }
}
