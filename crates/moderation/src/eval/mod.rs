//! From scored items to metrics: the resumable `scores.jsonl` file and [`evaluate`], which turns
//! scored rows into the [`EvalMetrics`] written to `metrics.json`.
//!
//! # `scores.jsonl`
//!
//! One [`ScoredRow`] per line. Only `id`, `label` and `score` are required:
//!
//! ```text
//! {"id": "a1", "label": 1, "score": 0.93}
//! {"id": "a2", "label": 0, "score": 0.04, "split": "test", "format_ok": false, "failure": "bad_json"}
//! ```
//!
//! [`ScoresWriter`] appends one line per item and flushes it, so a killed run loses nothing it
//! wrote; reopening it returns the ids already done so scoring resumes where it stopped. A last
//! line cut short by a crash is dropped and the file truncated back to the last complete line.
//!
//! # Metrics
//!
//! All numbers come from [`crate::metrics`]. A metric that is undefined on the data (PR-AUC
//! without a positive, ROC-AUC with one class, anything on zero items) is `None` and serialises
//! as `null`, so `metrics.json` never contains NaN. Rows whose label is not 0/1 or whose score is
//! not a finite number in `[0, 1]` are left out of every metric and counted in `n_excluded`.

use crate::dataset::Split;
use crate::metrics::{self, CALIBRATION_BINS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Number of bins of the per-class score histograms in [`Curves`].
pub const HIST_BINS: usize = 20;

/// Curves are thinned for plotting: a point is kept when it moves at least this far (in either
/// coordinate) from the last kept point. First and last points are always kept.
pub const CURVE_RESOLUTION: f64 = 1e-3;

mod scores;
#[cfg(test)]
pub(crate) mod tests;

pub use scores::*;

/// How [`evaluate`] chooses the decision threshold on the validation rows (or, without usable
/// ones, on the test rows).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ThresholdRule {
    /// The threshold of the best F1.
    #[default]
    BestF1,
    /// The lowest threshold whose precision is at least this (the most recall at that
    /// precision): "of what we flag, at most 1 - p is wrong".
    Precision(f64),
    /// The lowest threshold whose false-positive rate is at most this: "flag at most this
    /// fraction of benign items".
    Fpr(f64),
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let target = |v: &str| -> Result<f64, String> {
            match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
                _ => Err(format!(
                    "threshold rule {s:?}: the target must be a number in [0, 1]"
                )),
            }
        };
        match s.split_once(':') {
            None if s == "best-f1" => Ok(ThresholdRule::BestF1),
            Some(("precision", v)) => Ok(ThresholdRule::Precision(target(v)?)),
            Some(("fpr", v)) => Ok(ThresholdRule::Fpr(target(v)?)),
            _ => Err(format!(
                "unknown threshold rule {s:?} (expected best-f1, precision:P or fpr:F, e.g. precision:0.9)"
            )),
        }
    }
}

impl std::fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdRule::BestF1 => f.write_str("best-f1"),
            ThresholdRule::Precision(p) => write!(f, "precision:{p}"),
            ThresholdRule::Fpr(x) => write!(f, "fpr:{x}"),
        }
    }
}

impl ThresholdRule {
    /// The threshold this rule picks on `scores` / `labels`; `None` when the rule is undefined
    /// there (no positive; for `Fpr`, no negative). When no threshold reaches a precision or FPR
    /// target, 1.0 + 1e-9: nothing is flagged.
    pub fn choose(&self, scores: &[f64], labels: &[u8]) -> Option<f64> {
        const NOTHING: f64 = 1.0 + 1e-9;
        match *self {
            ThresholdRule::BestF1 => metrics::best_f1_threshold(scores, labels)
                .ok()
                .map(|m| m.threshold),
            ThresholdRule::Precision(p) => metrics::recall_at_precision(scores, labels, p)
                .ok()
                .map(|o| o.threshold.unwrap_or(NOTHING)),
            ThresholdRule::Fpr(x) => metrics::recall_at_fpr(scores, labels, x)
                .ok()
                .map(|o| o.threshold.unwrap_or(NOTHING)),
        }
    }
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Use this threshold instead of choosing one with `rule`.
    pub threshold: Option<f64>,
    /// How to choose the threshold (default: best F1).
    pub rule: ThresholdRule,
    /// Bootstrap resamples for the intervals (0 = no intervals).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            threshold: None,
            rule: ThresholdRule::BestF1,
            bootstrap: 1000,
            seed: 0,
        }
    }
}

/// Where the decision threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdSource {
    /// Best F1 on the validation rows.
    Val,
    /// Best F1 on the test rows themselves (optimistic; no usable validation rows).
    Test,
    /// Given by [`EvalOptions::threshold`].
    Fixed,
}

impl ThresholdSource {
    /// `val`, `test` or `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdSource::Val => "val",
            ThresholdSource::Test => "test",
            ThresholdSource::Fixed => "fixed",
        }
    }
}

impl fmt::Display for ThresholdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts at the decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Violating, predicted violating.
    pub tp: usize,
    /// Non-violating, predicted violating.
    pub fp: usize,
    /// Non-violating, predicted non-violating.
    pub tn: usize,
    /// Violating, predicted non-violating.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl From<metrics::ConfusionMatrix> for Confusion {
    fn from(m: metrics::ConfusionMatrix) -> Self {
        Confusion {
            tp: m.true_positives,
            fp: m.false_positives,
            tn: m.true_negatives,
            fn_: m.false_negatives,
        }
    }
}

/// Metrics of one gold category (over the positives that carry it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMetrics {
    /// Positives with this category.
    pub n: usize,
    /// Fraction of them scored at or above the threshold (`null` without a threshold).
    pub recall: Option<f64>,
    /// Their mean score.
    pub mean_score: f64,
    /// How many of them have a predicted category.
    pub n_pred_category: usize,
    /// Fraction of those whose predicted category is one of the item's gold categories
    /// (case-insensitive, `-`/space = `_`); `null` when none has a prediction.
    pub category_accuracy: Option<f64>,
}

/// Metrics of one slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceMetrics {
    /// Items in the slice.
    pub n: usize,
    /// Violating items in the slice.
    pub n_pos: usize,
    /// PR-AUC (`null` unless both classes are present).
    pub pr_auc: Option<f64>,
    /// F1 at the global threshold (`null` without a threshold or a positive).
    pub f1: Option<f64>,
    /// False-positive rate at the global threshold (`null` without a threshold or a negative).
    pub fpr: Option<f64>,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityPoint {
    /// Lower edge.
    pub bin_lo: f64,
    /// Upper edge.
    pub bin_hi: f64,
    /// Items in the bin.
    pub count: usize,
    /// Mean score of the bin (`null` when empty).
    pub mean_score: Option<f64>,
    /// Fraction violating in the bin (`null` when empty).
    pub frac_pos: Option<f64>,
}

/// Curves for the plots (thinned to [`CURVE_RESOLUTION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Curves {
    /// `[recall, precision]`, recall increasing, starting with sklearn's `[0, 1]` sentinel;
    /// plotted as steps its area is the PR-AUC. Empty without a positive.
    pub pr: Vec<[f64; 2]>,
    /// `[fpr, tpr]` from `[0, 0]` to `[1, 1]`. Empty unless both classes are present.
    pub roc: Vec<[f64; 2]>,
    /// Reliability bins (10, empty ones included; no bins on zero items).
    pub reliability: Vec<ReliabilityPoint>,
    /// Score histogram of the violating items ([`HIST_BINS`] equal bins on `[0, 1]`).
    pub hist_pos: Vec<usize>,
    /// Score histogram of the non-violating items.
    pub hist_neg: Vec<usize>,
}

/// Everything [`evaluate`] computes; serialised as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Items evaluated.
    pub n: usize,
    /// Violating items.
    pub n_pos: usize,
    /// Rows left out because their label or score was invalid.
    #[serde(default)]
    pub n_excluded: usize,
    /// `n_pos / n`.
    pub prevalence: Option<f64>,
    /// Average precision.
    pub pr_auc: Option<f64>,
    /// ROC-AUC.
    pub roc_auc: Option<f64>,
    /// The decision threshold (predict violating when `score >= threshold`).
    pub threshold: Option<f64>,
    /// Where the threshold came from.
    pub threshold_source: Option<ThresholdSource>,
    /// How it was chosen (`best-f1`, `precision:P`, `fpr:F`; absent in files written before the
    /// rule was a setting, which all used best F1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_rule: Option<String>,
    /// F1 at the threshold.
    pub f1: Option<f64>,
    /// F1 of flagging every item (`2p / (1 + p)` at prevalence `p`): the floor an F1 at a
    /// threshold must clear to show a usable classifier.
    #[serde(default)]
    pub f1_flag_all: Option<f64>,
    /// False-flag rate at the threshold: share of non-violating items predicted violating.
    #[serde(default)]
    pub false_flag_rate: Option<f64>,
    /// Precision at the threshold.
    pub precision: Option<f64>,
    /// Recall at the threshold.
    pub recall: Option<f64>,
    /// Accuracy at the threshold.
    pub accuracy: Option<f64>,
    /// Highest recall with precision ≥ 0.9 (0 when no threshold reaches it).
    #[serde(rename = "recall_at_precision_0.9")]
    pub recall_at_precision_0_9: Option<f64>,
    /// Highest recall with FPR ≤ 1 %.
    #[serde(rename = "recall_at_fpr_0.01")]
    pub recall_at_fpr_0_01: Option<f64>,
    /// Expected calibration error, 10 bins.
    pub ece: Option<f64>,
    /// Brier score.
    pub brier: Option<f64>,
    /// Fraction of rows whose output did not parse.
    pub format_failure_rate: Option<f64>,
    /// Failure kind → count (`unknown` when a failing row names no kind).
    pub failure_counts: BTreeMap<String, usize>,
    /// Mean reasoning words over rows that report them.
    pub mean_reasoning_words: Option<f64>,
    /// 95 % bootstrap interval of the PR-AUC.
    pub pr_auc_ci: Option<[f64; 2]>,
    /// 95 % bootstrap interval of F1 at the threshold.
    pub f1_ci: Option<[f64; 2]>,
    /// Gold category → metrics over the positives with it.
    pub per_category: BTreeMap<String, CategoryMetrics>,
    /// Slice tag → metrics.
    pub per_slice: BTreeMap<String, SliceMetrics>,
    /// Curves for the plots.
    pub curves: Curves,
    /// Counts at the threshold.
    pub confusion: Option<Confusion>,
}

impl EvalMetrics {
    /// Writes pretty-printed JSON to `path`.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        let path = path.as_ref();
        let mut text = serde_json::to_string_pretty(self).map_err(|e| EvalError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        text.push('\n');
        std::fs::write(path, text).map_err(io_err(path))
    }

    /// Reads a `metrics.json`.
    pub fn read_json(path: impl AsRef<Path>) -> Result<EvalMetrics, EvalError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| EvalError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

impl fmt::Display for EvalMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ci = |c: Option<[f64; 2]>| {
            c.map_or_else(String::new, |[lo, hi]| format!(" [{lo:.4}, {hi:.4}]"))
        };
        writeln!(
            f,
            "n = {}, positives = {} (prevalence {})",
            self.n,
            self.n_pos,
            opt(self.prevalence)
        )?;
        writeln!(
            f,
            "PR-AUC            {}{}",
            opt(self.pr_auc),
            ci(self.pr_auc_ci)
        )?;
        writeln!(f, "ROC-AUC           {}", opt(self.roc_auc))?;
        writeln!(
            f,
            "threshold         {} ({})",
            opt(self.threshold),
            self.threshold_source
                .map_or("none", ThresholdSource::as_str)
        )?;
        writeln!(
            f,
            "F1 {}{}  P {}  R {}  acc {}",
            opt(self.f1),
            ci(self.f1_ci),
            opt(self.precision),
            opt(self.recall),
            opt(self.accuracy)
        )?;
        writeln!(f, "recall @ P>=0.90  {}", opt(self.recall_at_precision_0_9))?;
        writeln!(f, "recall @ FPR<=1%  {}", opt(self.recall_at_fpr_0_01))?;
        writeln!(f, "ECE (10 bins)     {}", opt(self.ece))?;
        writeln!(f, "Brier             {}", opt(self.brier))?;
        write!(f, "format failures   {}", opt(self.format_failure_rate))
    }
}

/// Keeps the first and last points and every point at least `eps` away (in some coordinate)
/// from the last kept one.
fn thin(points: Vec<[f64; 2]>, eps: f64) -> Vec<[f64; 2]> {
    let n = points.len();
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(n.min(4096));
    for (i, p) in points.into_iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(q) => i + 1 == n || (p[0] - q[0]).abs() >= eps || (p[1] - q[1]).abs() >= eps,
        };
        if keep {
            out.push(p);
        }
    }
    out
}

fn histogram(scores: impl Iterator<Item = f64>) -> Vec<usize> {
    let mut h = vec![0; HIST_BINS];
    for s in scores {
        let i = ((s * HIST_BINS as f64).floor() as usize).min(HIST_BINS - 1);
        h[i] += 1;
    }
    h
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

fn normalise_category(c: &str) -> String {
    c.trim().to_lowercase().replace(['-', ' '], "_")
}

fn has_both_classes(labels: &[u8]) -> bool {
    labels.contains(&0) && labels.contains(&1)
}

/// Chooses the threshold: fixed if given, else by `opts.rule` on `val` (when it has both
/// classes), else by the rule on the test rows (when it is defined there).
fn choose_threshold(
    test: (&[f64], &[u8]),
    val: Option<&[ScoredRow]>,
    opts: &EvalOptions,
) -> Option<(f64, ThresholdSource)> {
    if let Some(t) = opts.threshold.filter(|t| !t.is_nan()) {
        return Some((t, ThresholdSource::Fixed));
    }
    if let Some(val) = val {
        let (s, l): (Vec<f64>, Vec<u8>) = val
            .iter()
            .filter(|r| r.is_valid())
            .map(|r| (r.score, r.label))
            .unzip();
        if has_both_classes(&l) {
            if let Some(t) = opts.rule.choose(&s, &l) {
                return Some((t, ThresholdSource::Val));
            }
        }
    }
    opts.rule
        .choose(test.0, test.1)
        .map(|t| (t, ThresholdSource::Test))
}

/// Computes all metrics of the `test` rows; the threshold is chosen on `val` when given (see
/// [`EvalMetrics::threshold_source`]). Never panics; undefined metrics are `None`.
pub fn evaluate(test: &[ScoredRow], val: Option<&[ScoredRow]>, opts: &EvalOptions) -> EvalMetrics {
    let rows: Vec<&ScoredRow> = test.iter().filter(|r| r.is_valid()).collect();
    let n_excluded = test.len() - rows.len();
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
    let n = rows.len();
    let n_pos = labels.iter().filter(|&&l| l == 1).count();
    let (s, l) = (scores.as_slice(), labels.as_slice());
    let both = has_both_classes(l);

    let chosen = choose_threshold((s, l), val, opts);
    let threshold = chosen.map(|c| c.0);
    let at = threshold.and_then(|t| metrics::at_threshold(s, l, t).ok());
    let confusion = at.map(|m| m.confusion);

    let pr_auc = metrics::average_precision(s, l).ok();
    let roc_auc = metrics::roc_auc(s, l).ok();
    let ci = |r: Result<metrics::Interval, metrics::MetricsError>| {
        r.ok()
            .filter(|i| i.lower.is_finite() && i.upper.is_finite())
            .map(|i| [i.lower, i.upper])
    };
    let (pr_auc_ci, f1_ci) = if opts.bootstrap > 0 && n > 0 {
        let pr = if pr_auc.is_some() {
            ci(metrics::bootstrap_pr_auc(s, l, opts.bootstrap, opts.seed))
        } else {
            None
        };
        let f1 = match threshold {
            Some(t) if n_pos > 0 => ci(metrics::bootstrap_f1(s, l, t, opts.bootstrap, opts.seed)),
            _ => None,
        };
        (pr, f1)
    } else {
        (None, None)
    };

    let mut failure_counts = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.format_ok) {
        let kind = r.failure.clone().unwrap_or_else(|| "unknown".into());
        *failure_counts.entry(kind).or_insert(0) += 1;
    }
    let n_failed: usize = failure_counts.values().sum();

    let mut per_category: BTreeMap<String, CategoryMetrics> = BTreeMap::new();
    let mut categories: Vec<&str> = rows
        .iter()
        .filter(|r| r.label == 1)
        .flat_map(|r| r.categories.iter().map(String::as_str))
        .collect();
    categories.sort_unstable();
    categories.dedup();
    for cat in categories {
        let members: Vec<&&ScoredRow> = rows
            .iter()
            .filter(|r| r.label == 1 && r.categories.iter().any(|c| c == cat))
            .collect();
        let predicted: Vec<bool> = members
            .iter()
            .filter_map(|r| {
                let p = normalise_category(r.pred_category.as_deref()?);
                Some(r.categories.iter().any(|c| normalise_category(c) == p))
            })
            .collect();
        per_category.insert(
            cat.to_string(),
            CategoryMetrics {
                n: members.len(),
                recall: threshold
                    .and_then(|t| mean(members.iter().map(|r| f64::from(u8::from(r.score >= t))))),
                mean_score: mean(members.iter().map(|r| r.score)).unwrap_or(0.0),
                n_pred_category: predicted.len(),
                category_accuracy: mean(predicted.iter().map(|&ok| f64::from(u8::from(ok)))),
            },
        );
    }

    let mut per_slice: BTreeMap<String, SliceMetrics> = BTreeMap::new();
    let mut slices: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.slices.iter().map(String::as_str))
        .collect();
    slices.sort_unstable();
    slices.dedup();
    for tag in slices {
        let (ss, sl): (Vec<f64>, Vec<u8>) = rows
            .iter()
            .filter(|r| r.slices.iter().any(|t| t == tag))
            .map(|r| (r.score, r.label))
            .unzip();
        let pos = sl.iter().filter(|&&x| x == 1).count();
        let m = threshold.and_then(|t| metrics::at_threshold(&ss, &sl, t).ok());
        per_slice.insert(
            tag.to_string(),
            SliceMetrics {
                n: ss.len(),
                n_pos: pos,
                pr_auc: if has_both_classes(&sl) {
                    metrics::average_precision(&ss, &sl).ok()
                } else {
                    None
                },
                f1: m.filter(|_| pos > 0).map(|m| m.f1),
                fpr: m.filter(|_| pos < ss.len()).map(|m| m.fpr),
            },
        );
    }

    let pr = match metrics::pr_curve(s, l) {
        Ok(points) => {
            let mut v = vec![[0.0, 1.0]];
            v.extend(points.iter().map(|p| [p.recall, p.precision]));
            thin(v, CURVE_RESOLUTION)
        }
        Err(_) => Vec::new(),
    };
    let roc = match metrics::roc_curve(s, l) {
        Ok(points) if both => thin(
            points.iter().map(|p| [p.fpr, p.tpr]).collect(),
            CURVE_RESOLUTION,
        ),
        _ => Vec::new(),
    };
    let reliability = metrics::reliability_bins(s, l, CALIBRATION_BINS)
        .map(|bins| {
            bins.iter()
                .map(|b| ReliabilityPoint {
                    bin_lo: b.lower,
                    bin_hi: b.upper,
                    count: b.count,
                    mean_score: b.mean_score,
                    frac_pos: b.fraction_positive,
                })
                .collect()
        })
        .unwrap_or_default();

    EvalMetrics {
        n,
        n_pos,
        n_excluded,
        prevalence: (n > 0).then(|| n_pos as f64 / n as f64),
        pr_auc,
        roc_auc,
        threshold,
        threshold_source: chosen.map(|c| c.1),
        threshold_rule: chosen
            .filter(|c| c.1 != ThresholdSource::Fixed)
            .map(|_| opts.rule.to_string()),
        f1: at.map(|m| m.f1),
        f1_flag_all: (n_pos > 0).then(|| 2.0 * n_pos as f64 / (n + n_pos) as f64),
        false_flag_rate: confusion
            .filter(|c| c.false_positives + c.true_negatives > 0)
            .map(|c| c.false_positives as f64 / (c.false_positives + c.true_negatives) as f64),
        precision: at.map(|m| m.precision),
        recall: at.map(|m| m.recall),
        accuracy: confusion.map(|c| c.accuracy()),
        recall_at_precision_0_9: metrics::recall_at_precision(s, l, 0.9)
            .ok()
            .map(|p| p.recall),
        recall_at_fpr_0_01: metrics::recall_at_fpr(s, l, 0.01).ok().map(|p| p.recall),
        ece: metrics::expected_calibration_error(s, l, CALIBRATION_BINS).ok(),
        brier: metrics::brier_score(s, l).ok(),
        format_failure_rate: (n > 0).then(|| n_failed as f64 / n as f64),
        failure_counts,
        mean_reasoning_words: mean(
            rows.iter()
                .filter_map(|r| r.reasoning_words)
                .map(|w| w as f64),
        ),
        pr_auc_ci,
        f1_ci,
        per_category,
        per_slice,
        curves: Curves {
            pr,
            roc,
            reliability,
            hist_pos: histogram(rows.iter().filter(|r| r.label == 1).map(|r| r.score)),
            hist_neg: histogram(rows.iter().filter(|r| r.label == 0).map(|r| r.score)),
        },
        confusion: confusion.map(Confusion::from),
    }
}
