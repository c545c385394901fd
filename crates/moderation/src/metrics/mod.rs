//! Evaluation metrics for binary moderation scores.
//!
//! Inputs are `scores` (higher = more likely violating; probabilities in `[0, 1]` where a metric
//! needs them) and `labels` (0/1). Definitions follow scikit-learn 1.9 exactly, ties included:
//!
//! * [`average_precision`] = `sklearn.metrics.average_precision_score`: the step-wise
//!   `Σ (Rₖ − Rₖ₋₁)·Pₖ` over distinct score thresholds, highest first (no interpolation);
//! * [`roc_auc`] = `roc_auc_score`: trapezoidal area under the ROC curve, so tied scores count
//!   one half;
//! * [`pr_curve`] / [`roc_curve`] = `precision_recall_curve` / `roc_curve(drop_intermediate=False)`;
//! * a prediction is positive when `score >= threshold`; precision with no predicted positives
//!   is 0 (sklearn's `zero_division=0`);
//! * [`reliability_bins`] use `calibration_curve(strategy="uniform")` bins: edges `i/n`, closed on
//!   the right, with 0 in the first bin; [`expected_calibration_error`] is
//!   `Σ_b (n_b/n)·|mean score_b − fraction positive_b|` over those bins (10 by default).
//!
//! Bootstrap intervals resample items with replacement using a fixed, portable generator
//! (SplitMix64), so the same seed gives the same interval everywhere.

use serde::Serialize;
use std::fmt;

/// Number of bins used for ECE and reliability diagrams unless stated otherwise.
pub const CALIBRATION_BINS: usize = 10;

/// Invalid metric inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// `scores` and `labels` differ in length.
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch {
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },
    /// No items.
    #[error("no items")]
    Empty,
    /// A score is NaN or infinite.
    #[error("score {index} is not finite ({value})")]
    NonFiniteScore {
        /// Position of the score.
        index: usize,
        /// The score.
        value: f64,
    },
    /// A probability metric got a score outside `[0, 1]`.
    #[error("score {index} = {value} is not a probability in [0, 1]")]
    NotAProbability {
        /// Position of the score.
        index: usize,
        /// The score.
        value: f64,
    },
    /// A label is not 0 or 1.
    #[error("label {index} is {value}, expected 0 or 1")]
    InvalidLabel {
        /// Position of the label.
        index: usize,
        /// The label.
        value: u8,
    },
    /// The metric needs both classes (or at least one positive) and the data lacks one.
    #[error("metric is undefined: {0}")]
    Undefined(&'static str),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

fn check(scores: &[f64], labels: &[u8]) -> Result<(), MetricsError> {
    if scores.len() != labels.len() {
        return Err(MetricsError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(MetricsError::NonFiniteScore { index, value });
    }
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, &l)| l > 1) {
        return Err(MetricsError::InvalidLabel { index, value });
    }
    Ok(())
}

fn check_probabilities(scores: &[f64], labels: &[u8]) -> Result<(), MetricsError> {
    check(scores, labels)?;
    match scores
        .iter()
        .enumerate()
        .find(|(_, s)| !(0.0..=1.0).contains(*s))
    {
        Some((index, &value)) => Err(MetricsError::NotAProbability { index, value }),
        None => Ok(()),
    }
}

/// Cumulative counts at each distinct threshold, highest threshold first.
struct Cumulative {
    thresholds: Vec<f64>,
    tps: Vec<usize>,
    fps: Vec<usize>,
    positives: usize,
    negatives: usize,
}

fn cumulative(scores: &[f64], labels: &[u8]) -> Cumulative {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut c = Cumulative {
        thresholds: Vec::new(),
        tps: Vec::new(),
        fps: Vec::new(),
        positives: 0,
        negatives: 0,
    };
    for (k, &i) in order.iter().enumerate() {
        if labels[i] == 1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            c.thresholds.push(scores[i]);
            c.tps.push(tp);
            c.fps.push(fp);
        }
    }
    c.positives = tp;
    c.negatives = fp;
    c
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// PR-AUC as average precision (sklearn `average_precision_score`). Needs at least one positive.
pub fn average_precision(scores: &[f64], labels: &[u8]) -> Result<f64, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    if c.positives == 0 {
        return Err(MetricsError::Undefined(
            "average precision needs a positive",
        ));
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (&tp, &fp) in c.tps.iter().zip(&c.fps) {
        let recall = tp as f64 / c.positives as f64;
        ap += (recall - prev_recall) * ratio(tp, tp + fp);
        prev_recall = recall;
    }
    Ok(ap)
}

/// ROC-AUC (sklearn `roc_auc_score`); ties count one half. Needs both classes.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> Result<f64, MetricsError> {
    let points = roc_curve(scores, labels)?;
    let c = (points.last().map(|p| (p.fpr, p.tpr))).unwrap_or((0.0, 0.0));
    if c.0 == 0.0 || c.1 == 0.0 {
        return Err(MetricsError::Undefined("ROC-AUC needs both classes"));
    }
    Ok(points
        .windows(2)
        .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
        .sum())
}

/// One point of a precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrPoint {
    /// Predict positive when `score >= threshold`.
    pub threshold: f64,
    /// Precision at this threshold.
    pub precision: f64,
    /// Recall at this threshold.
    pub recall: f64,
}

/// Precision-recall points, one per distinct score, highest threshold first (sklearn's
/// `precision_recall_curve` reversed, without its final `(precision 1, recall 0)` sentinel).
/// Needs at least one positive.
pub fn pr_curve(scores: &[f64], labels: &[u8]) -> Result<Vec<PrPoint>, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    if c.positives == 0 {
        return Err(MetricsError::Undefined("a PR curve needs a positive"));
    }
    Ok((0..c.thresholds.len())
        .map(|k| PrPoint {
            threshold: c.thresholds[k],
            precision: ratio(c.tps[k], c.tps[k] + c.fps[k]),
            recall: ratio(c.tps[k], c.positives),
        })
        .collect())
}

/// One point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// Predict positive when `score >= threshold` (`+inf` for the origin).
    pub threshold: f64,
    /// False-positive rate.
    pub fpr: f64,
    /// True-positive rate (recall).
    pub tpr: f64,
}

/// ROC points: the origin (threshold `+inf`) then one per distinct score, highest first (sklearn
/// `roc_curve(drop_intermediate=False)`). Rates are 0 for a class that is absent.
pub fn roc_curve(scores: &[f64], labels: &[u8]) -> Result<Vec<RocPoint>, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    points.extend((0..c.thresholds.len()).map(|k| RocPoint {
        threshold: c.thresholds[k],
        fpr: ratio(c.fps[k], c.negatives),
        tpr: ratio(c.tps[k], c.positives),
    }));
    Ok(points)
}

/// Counts of a thresholded classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ConfusionMatrix {
    /// Violating, predicted violating.
    pub true_positives: usize,
    /// Non-violating, predicted violating.
    pub false_positives: usize,
    /// Non-violating, predicted non-violating.
    pub true_negatives: usize,
    /// Violating, predicted non-violating.
    pub false_negatives: usize,
}

impl ConfusionMatrix {
    /// Precision (0 when nothing is predicted positive).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Recall (0 when there are no positives).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// F1 = 2TP / (2TP + FP + FN) (0 when undefined).
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }

    /// False-positive rate (0 when there are no negatives).
    pub fn fpr(&self) -> f64 {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }

    /// Accuracy.
    pub fn accuracy(&self) -> f64 {
        ratio(
            self.true_positives + self.true_negatives,
            self.true_positives + self.false_positives + self.true_negatives + self.false_negatives,
        )
    }
}

impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "              pred 1    pred 0")?;
        writeln!(
            f,
            "label 1 {:>10} {:>9}",
            self.true_positives, self.false_negatives
        )?;
        write!(
            f,
            "label 0 {:>10} {:>9}",
            self.false_positives, self.true_negatives
        )
    }
}

/// The confusion matrix when predicting positive for `score >= threshold`.
pub fn confusion_matrix(
    scores: &[f64],
    labels: &[u8],
    threshold: f64,
) -> Result<ConfusionMatrix, MetricsError> {
    check(scores, labels)?;
    let mut m = ConfusionMatrix::default();
    for (&s, &l) in scores.iter().zip(labels) {
        match (l == 1, s >= threshold) {
            (true, true) => m.true_positives += 1,
            (true, false) => m.false_negatives += 1,
            (false, true) => m.false_positives += 1,
            (false, false) => m.true_negatives += 1,
        }
    }
    Ok(m)
}

/// Metrics of a thresholded classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdMetrics {
    /// Predict positive when `score >= threshold`.
    pub threshold: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// False-positive rate.
    pub fpr: f64,
    /// The counts.
    pub confusion: ConfusionMatrix,
}

impl ThresholdMetrics {
    fn from_confusion(threshold: f64, confusion: ConfusionMatrix) -> Self {
        ThresholdMetrics {
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            fpr: confusion.fpr(),
            confusion,
        }
    }
}

/// Precision, recall, F1 and FPR at `threshold`.
pub fn at_threshold(
    scores: &[f64],
    labels: &[u8],
    threshold: f64,
) -> Result<ThresholdMetrics, MetricsError> {
    let m = confusion_matrix(scores, labels, threshold)?;
    Ok(ThresholdMetrics::from_confusion(threshold, m))
}

/// The threshold (one of the scores) that maximises F1 on this data — use it on a validation
/// set, then apply it to the test set. Ties go to the highest threshold. Needs a positive.
pub fn best_f1_threshold(scores: &[f64], labels: &[u8]) -> Result<ThresholdMetrics, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    if c.positives == 0 {
        return Err(MetricsError::Undefined(
            "best-F1 threshold needs a positive",
        ));
    }
    let mut best: Option<(usize, f64)> = None;
    for k in 0..c.thresholds.len() {
        let f1 = ratio(2 * c.tps[k], c.tps[k] + c.fps[k] + c.positives);
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((k, f1));
        }
    }
    let (k, _) = best.expect("at least one threshold");
    let confusion = ConfusionMatrix {
        true_positives: c.tps[k],
        false_positives: c.fps[k],
        true_negatives: c.negatives - c.fps[k],
        false_negatives: c.positives - c.tps[k],
    };
    Ok(ThresholdMetrics::from_confusion(c.thresholds[k], confusion))
}

/// An operating point chosen under a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// The threshold, or `None` when no threshold satisfies the constraint (recall is then 0).
    pub threshold: Option<f64>,
    /// Recall at the threshold.
    pub recall: f64,
    /// Precision at the threshold (1 by convention when no threshold qualifies).
    pub precision: f64,
    /// False-positive rate at the threshold.
    pub fpr: f64,
}

/// Highest recall over thresholds whose precision is `>= min_precision` (e.g. 0.9). Among
/// thresholds with that recall, the highest precision. Needs a positive.
pub fn recall_at_precision(
    scores: &[f64],
    labels: &[u8],
    min_precision: f64,
) -> Result<OperatingPoint, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    if c.positives == 0 {
        return Err(MetricsError::Undefined(
            "recall at precision needs a positive",
        ));
    }
    let mut best = OperatingPoint {
        threshold: None,
        recall: 0.0,
        precision: 1.0,
        fpr: 0.0,
    };
    for k in 0..c.thresholds.len() {
        let precision = ratio(c.tps[k], c.tps[k] + c.fps[k]);
        let recall = ratio(c.tps[k], c.positives);
        if precision >= min_precision
            && (recall > best.recall || (recall == best.recall && precision > best.precision))
        {
            best = OperatingPoint {
                threshold: Some(c.thresholds[k]),
                recall,
                precision,
                fpr: ratio(c.fps[k], c.negatives),
            };
        }
    }
    Ok(best)
}

/// Highest recall over thresholds whose false-positive rate is `<= max_fpr` (e.g. 0.01). Needs
/// both classes.
pub fn recall_at_fpr(
    scores: &[f64],
    labels: &[u8],
    max_fpr: f64,
) -> Result<OperatingPoint, MetricsError> {
    check(scores, labels)?;
    let c = cumulative(scores, labels);
    if c.positives == 0 || c.negatives == 0 {
        return Err(MetricsError::Undefined("recall at FPR needs both classes"));
    }
    let mut best = OperatingPoint {
        threshold: None,
        recall: 0.0,
        precision: 1.0,
        fpr: 0.0,
    };
    for k in 0..c.thresholds.len() {
        let fpr = ratio(c.fps[k], c.negatives);
        let recall = ratio(c.tps[k], c.positives);
        if fpr <= max_fpr && recall > best.recall {
            best = OperatingPoint {
                threshold: Some(c.thresholds[k]),
                recall,
                precision: ratio(c.tps[k], c.tps[k] + c.fps[k]),
                fpr,
            };
        }
    }
    Ok(best)
}

/// Mean squared error between probability scores and labels (sklearn `brier_score_loss`).
pub fn brier_score(scores: &[f64], labels: &[u8]) -> Result<f64, MetricsError> {
    check_probabilities(scores, labels)?;
    Ok(scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (s - f64::from(l)).powi(2))
        .sum::<f64>()
        / scores.len() as f64)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except 0 for the first bin).
    pub lower: f64,
    /// Upper edge (inclusive).
    pub upper: f64,
    /// Items in the bin.
    pub count: usize,
    /// Mean score of the bin's items (`None` when empty).
    pub mean_score: Option<f64>,
    /// Fraction of the bin's items that are violating (`None` when empty).
    pub fraction_positive: Option<f64>,
}

/// Index of the equal-width bin of `p` (edges `i·(1/n)` as numpy's `linspace` computes them,
/// right-closed, 0 in bin 0), matching sklearn's `calibration_curve(strategy="uniform")`.
fn bin_index(p: f64, n_bins: usize) -> usize {
    let step = 1.0 / n_bins as f64;
    (1..n_bins).filter(|&i| i as f64 * step < p).count()
}

/// Reliability-diagram bins (all `n_bins` of them, empty ones included).
pub fn reliability_bins(
    scores: &[f64],
    labels: &[u8],
    n_bins: usize,
) -> Result<Vec<ReliabilityBin>, MetricsError> {
    check_probabilities(scores, labels)?;
    if n_bins == 0 {
        return Err(MetricsError::InvalidParameter(
            "n_bins must be positive".into(),
        ));
    }
    let mut sums = vec![(0usize, 0.0f64, 0usize); n_bins];
    for (&s, &l) in scores.iter().zip(labels) {
        let b = &mut sums[bin_index(s, n_bins)];
        b.0 += 1;
        b.1 += s;
        b.2 += usize::from(l);
    }
    let step = 1.0 / n_bins as f64;
    Ok(sums
        .into_iter()
        .enumerate()
        .map(|(i, (count, score_sum, pos))| ReliabilityBin {
            lower: i as f64 * step,
            upper: if i + 1 == n_bins {
                1.0
            } else {
                (i + 1) as f64 * step
            },
            count,
            mean_score: (count > 0).then(|| score_sum / count as f64),
            fraction_positive: (count > 0).then(|| pos as f64 / count as f64),
        })
        .collect())
}

/// Expected calibration error with `n_bins` equal-width bins (use [`CALIBRATION_BINS`] = 10).
pub fn expected_calibration_error(
    scores: &[f64],
    labels: &[u8],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    let bins = reliability_bins(scores, labels, n_bins)?;
    let n = scores.len() as f64;
    Ok(bins
        .iter()
        .filter_map(|b| Some(b.count as f64 / n * (b.mean_score? - b.fraction_positive?).abs()))
        .sum())
}

/// A bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The metric on the full data.
    pub estimate: f64,
    /// Lower percentile bound.
    pub lower: f64,
    /// Upper percentile bound.
    pub upper: f64,
    /// Resamples on which the metric was defined (and used for the bounds).
    pub resamples: usize,
    /// Resamples skipped because the metric was undefined (e.g. no positive drawn).
    pub skipped: usize,
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.4} [{:.4}, {:.4}]",
            self.estimate, self.lower, self.upper
        )
    }
}

/// SplitMix64: small, fast and identical on every platform and crate version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform index in `0..n` (multiply-shift; bias below 2⁻³² for realistic `n`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted values with linear interpolation (numpy's default
/// `percentile` method). `None` for an empty slice.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Percentile bootstrap interval for any metric: `n_resamples` resamples of the items with
/// replacement, seeded; resamples where `metric` returns `None` are skipped and counted.
pub fn bootstrap<F>(
    scores: &[f64],
    labels: &[u8],
    n_resamples: usize,
    seed: u64,
    confidence: f64,
    metric: F,
) -> Result<Interval, MetricsError>
where
    F: Fn(&[f64], &[u8]) -> Option<f64>,
{
    check(scores, labels)?;
    check_resampling(n_resamples, confidence)?;
    let estimate = metric(scores, labels).ok_or(MetricsError::Undefined(
        "the metric is undefined on the full data",
    ))?;
    let (mut s, mut l) = (vec![0.0; scores.len()], vec![0u8; scores.len()]);
    resampled_interval(
        scores.len(),
        n_resamples,
        seed,
        confidence,
        estimate,
        |draw| {
            for (k, &i) in draw.iter().enumerate() {
                s[k] = scores[i];
                l[k] = labels[i];
            }
            metric(&s, &l)
        },
    )
}

/// The bootstrap settings are usable: `0 < confidence < 1` and at least one resample.
fn check_resampling(n_resamples: usize, confidence: f64) -> Result<(), MetricsError> {
    if !(confidence > 0.0 && confidence < 1.0) || n_resamples == 0 {
        return Err(MetricsError::InvalidParameter(format!(
            "need 0 < confidence < 1 and n_resamples > 0, got {confidence} and {n_resamples}"
        )));
    }
    Ok(())
}

/// The percentile interval of `stat` over `n_resamples` seeded draws of `n` item indices with
/// replacement (resamples where `stat` is undefined or not finite are skipped and counted).
fn resampled_interval(
    n: usize,
    n_resamples: usize,
    seed: u64,
    confidence: f64,
    estimate: f64,
    mut stat: impl FnMut(&[usize]) -> Option<f64>,
) -> Result<Interval, MetricsError> {
    let mut rng = SplitMix64(seed);
    let mut draw = vec![0usize; n];
    let mut values = Vec::with_capacity(n_resamples);
    let mut skipped = 0;
    for _ in 0..n_resamples {
        for d in draw.iter_mut() {
            *d = rng.below(n);
        }
        match stat(&draw) {
            Some(v) if v.is_finite() => values.push(v),
            _ => skipped += 1,
        }
    }
    if values.is_empty() {
        return Err(MetricsError::Undefined(
            "the metric was undefined on every resample",
        ));
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Ok(Interval {
        estimate,
        lower: quantile(&values, alpha).unwrap_or(f64::NAN),
        upper: quantile(&values, 1.0 - alpha).unwrap_or(f64::NAN),
        resamples: values.len(),
        skipped,
    })
}

/// Paired percentile bootstrap of the difference `metric(b) - metric(a)` between two models
/// scored on the same items (`scores_a[i]` and `scores_b[i]` belong to item `i`, whose label is
/// `labels[i]`): each resample draws items with replacement and evaluates both models on the
/// same draw, so the item-to-item variation they share cancels. An interval above 0 says that B
/// beats A on this population of items at the given confidence.
pub fn paired_bootstrap<F>(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[u8],
    n_resamples: usize,
    seed: u64,
    confidence: f64,
    metric: F,
) -> Result<Interval, MetricsError>
where
    F: Fn(&[f64], &[u8]) -> Option<f64>,
{
    check(scores_a, labels)?;
    check(scores_b, labels)?;
    check_resampling(n_resamples, confidence)?;
    let undefined = MetricsError::Undefined("the metric is undefined on the full data");
    let estimate = metric(scores_b, labels).ok_or(undefined.clone())?
        - metric(scores_a, labels).ok_or(undefined)?;
    let n = labels.len();
    let (mut sa, mut sb, mut l) = (vec![0.0; n], vec![0.0; n], vec![0u8; n]);
    resampled_interval(n, n_resamples, seed, confidence, estimate, |draw| {
        for (k, &i) in draw.iter().enumerate() {
            sa[k] = scores_a[i];
            sb[k] = scores_b[i];
            l[k] = labels[i];
        }
        Some(metric(&sb, &l)? - metric(&sa, &l)?)
    })
}

/// 95% bootstrap interval for PR-AUC (average precision).
pub fn bootstrap_pr_auc(
    scores: &[f64],
    labels: &[u8],
    n_resamples: usize,
    seed: u64,
) -> Result<Interval, MetricsError> {
    bootstrap(scores, labels, n_resamples, seed, 0.95, |s, l| {
        average_precision(s, l).ok()
    })
}

/// 95% bootstrap interval for F1 at a fixed threshold (choose it on validation data first).
pub fn bootstrap_f1(
    scores: &[f64],
    labels: &[u8],
    threshold: f64,
    n_resamples: usize,
    seed: u64,
) -> Result<Interval, MetricsError> {
    bootstrap(scores, labels, n_resamples, seed, 0.95, |s, l| {
        at_threshold(s, l, threshold).ok().map(|m| m.f1)
    })
}

/// The headline metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Number of items.
    pub n: usize,
    /// Number of violating items.
    pub positives: usize,
    /// PR-AUC (average precision).
    pub pr_auc: f64,
    /// ROC-AUC.
    pub roc_auc: f64,
    /// Metrics at the given threshold.
    pub at_threshold: ThresholdMetrics,
    /// Recall at precision ≥ 0.9.
    pub recall_at_precision_90: OperatingPoint,
    /// Recall at FPR ≤ 1%.
    pub recall_at_fpr_1: OperatingPoint,
    /// ECE with 10 bins.
    pub ece: f64,
    /// Brier score.
    pub brier: f64,
}

/// Computes a [`Report`] for probability scores at `threshold`. Needs both classes.
pub fn report(scores: &[f64], labels: &[u8], threshold: f64) -> Result<Report, MetricsError> {
    check_probabilities(scores, labels)?;
    Ok(Report {
        n: scores.len(),
        positives: labels.iter().filter(|&&l| l == 1).count(),
        pr_auc: average_precision(scores, labels)?,
        roc_auc: roc_auc(scores, labels)?,
        at_threshold: at_threshold(scores, labels, threshold)?,
        recall_at_precision_90: recall_at_precision(scores, labels, 0.9)?,
        recall_at_fpr_1: recall_at_fpr(scores, labels, 0.01)?,
        ece: expected_calibration_error(scores, labels, CALIBRATION_BINS)?,
        brier: brier_score(scores, labels)?,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.at_threshold;
        writeln!(
            f,
            "n = {}, positives = {} ({:.2}%)",
            self.n,
            self.positives,
            100.0 * ratio(self.positives, self.n)
        )?;
        writeln!(f, "PR-AUC            {:.4}", self.pr_auc)?;
        writeln!(f, "ROC-AUC           {:.4}", self.roc_auc)?;
        writeln!(
            f,
            "@ threshold {:.3}  P {:.4}  R {:.4}  F1 {:.4}  FPR {:.4}",
            t.threshold, t.precision, t.recall, t.f1, t.fpr
        )?;
        writeln!(
            f,
            "recall @ P>=0.90  {:.4}",
            self.recall_at_precision_90.recall
        )?;
        writeln!(f, "recall @ FPR<=1%  {:.4}", self.recall_at_fpr_1.recall)?;
        writeln!(f, "ECE (10 bins)     {:.4}", self.ece)?;
        write!(f, "Brier             {:.4}", self.brier)
    }
}

#[cfg(test)]
mod tests;
