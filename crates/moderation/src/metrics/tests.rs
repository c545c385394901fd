use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn sklearn_docstring_examples() {
    // average_precision_score docstring: 0.8333...
    let y = [0, 0, 1, 1];
    let s = [0.1, 0.4, 0.35, 0.8];
    assert!(close(
        average_precision(&s, &y).unwrap(),
        0.8333333333333333
    ));
    // roc_auc_score on the same data: 0.75.
    assert!(close(roc_auc(&s, &y).unwrap(), 0.75));
    // precision_recall_curve docstring, reversed and without the sentinel.
    let pr = pr_curve(&s, &y).unwrap();
    let thresholds: Vec<f64> = pr.iter().map(|p| p.threshold).collect();
    assert_eq!(thresholds, vec![0.8, 0.4, 0.35, 0.1]);
    let precision: Vec<f64> = pr.iter().map(|p| p.precision).collect();
    assert_eq!(precision, vec![1.0, 0.5, 2.0 / 3.0, 0.5]);
    let recall: Vec<f64> = pr.iter().map(|p| p.recall).collect();
    assert_eq!(recall, vec![0.5, 0.5, 1.0, 1.0]);
}

#[test]
fn ties_count_half_and_step_precision() {
    // All scores tied: AUC 0.5, AP = prevalence.
    let y = [1, 0, 0, 1, 0];
    let s = [0.5; 5];
    assert!(close(roc_auc(&s, &y).unwrap(), 0.5));
    assert!(close(average_precision(&s, &y).unwrap(), 0.4));
    // A perfect ranking.
    let s = [0.9, 0.1, 0.2, 0.8, 0.3];
    assert!(close(roc_auc(&s, &y).unwrap(), 1.0));
    assert!(close(average_precision(&s, &y).unwrap(), 1.0));
}

#[test]
fn threshold_metrics_and_confusion() {
    let y = [1, 1, 0, 0, 1, 0];
    let s = [0.9, 0.4, 0.6, 0.1, 0.7, 0.5];
    let m = at_threshold(&s, &y, 0.5).unwrap();
    assert_eq!(
        m.confusion,
        ConfusionMatrix {
            true_positives: 2,
            false_positives: 2,
            true_negatives: 1,
            false_negatives: 1
        }
    );
    assert!(close(m.precision, 0.5));
    assert!(close(m.recall, 2.0 / 3.0));
    assert!(close(m.f1, 4.0 / 7.0));
    assert!(close(m.fpr, 2.0 / 3.0));
    let none = at_threshold(&s, &y, 2.0).unwrap();
    assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
    assert!(m.confusion.to_string().contains("label 1"));
}

#[test]
fn best_f1_prefers_highest_threshold_on_ties() {
    let y = [1, 0, 1, 0];
    let s = [0.9, 0.8, 0.7, 0.1];
    // thresholds 0.9 → F1 2/3; 0.8 → 0.5; 0.7 → 0.8; 0.1 → 2/3.
    let b = best_f1_threshold(&s, &y).unwrap();
    assert_eq!(b.threshold, 0.7);
    assert!(close(b.f1, 0.8));
    let y = [1, 0];
    let s = [0.9, 0.1];
    assert_eq!(best_f1_threshold(&s, &y).unwrap().threshold, 0.9);
}

#[test]
fn constrained_recall() {
    let y = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0];
    let s = [0.95, 0.9, 0.85, 0.8, 0.3, 0.2, 0.2, 0.1, 0.1, 0.05];
    let p = recall_at_precision(&s, &y, 0.9).unwrap();
    assert_eq!(p.threshold, Some(0.9));
    assert!(close(p.recall, 2.0 / 3.0));
    let impossible = recall_at_precision(&[0.9, 0.1], &[0, 1], 0.9).unwrap();
    assert_eq!(impossible.threshold, None);
    assert_eq!(impossible.recall, 0.0);
    let r = recall_at_fpr(&s, &y, 0.0).unwrap();
    assert!(close(r.recall, 2.0 / 3.0));
    let r = recall_at_fpr(&s, &y, 1.0 / 7.0).unwrap();
    assert!(close(r.recall, 1.0));
}

#[test]
fn calibration() {
    let y = [1, 0, 1, 0];
    let s = [1.0, 0.0, 1.0, 0.0];
    assert_eq!(expected_calibration_error(&s, &y, 10).unwrap(), 0.0);
    assert_eq!(brier_score(&s, &y).unwrap(), 0.0);
    let s = [0.75, 0.75, 0.75, 0.75];
    assert!(close(expected_calibration_error(&s, &y, 10).unwrap(), 0.25));
    assert!(close(brier_score(&s, &y).unwrap(), (0.0625 + 0.5625) / 2.0));
    // Edges are right-closed: 0.1 falls in the first bin, 0.0 too, 1.0 in the last.
    let bins = reliability_bins(&[0.0, 0.1, 0.1000001, 1.0], &[0, 0, 1, 1], 10).unwrap();
    assert_eq!(bins.len(), 10);
    assert_eq!(bins[0].count, 2);
    assert_eq!(bins[1].count, 1);
    assert_eq!(bins[9].count, 1);
    assert_eq!(bins[5].mean_score, None);
    assert!(matches!(
        brier_score(&[1.5], &[1]),
        Err(MetricsError::NotAProbability { index: 0, .. })
    ));
}

#[test]
fn input_validation() {
    assert_eq!(
        average_precision(&[0.1], &[1, 0]),
        Err(MetricsError::LengthMismatch {
            scores: 1,
            labels: 2
        })
    );
    assert_eq!(roc_auc(&[], &[]), Err(MetricsError::Empty));
    assert!(matches!(
        roc_auc(&[f64::NAN, 0.1], &[1, 0]),
        Err(MetricsError::NonFiniteScore { index: 0, .. })
    ));
    assert_eq!(
        roc_auc(&[0.1, 0.2], &[1, 2]),
        Err(MetricsError::InvalidLabel { index: 1, value: 2 })
    );
    assert!(matches!(
        roc_auc(&[0.1, 0.2], &[1, 1]),
        Err(MetricsError::Undefined(_))
    ));
    assert!(matches!(
        average_precision(&[0.1, 0.2], &[0, 0]),
        Err(MetricsError::Undefined(_))
    ));
}

#[test]
fn quantile_matches_numpy_linear() {
    let v = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(quantile(&v, 0.0), Some(1.0));
    assert_eq!(quantile(&v, 1.0), Some(4.0));
    assert!(close(quantile(&v, 0.025).unwrap(), 1.075));
    assert!(close(quantile(&v, 0.5).unwrap(), 2.5));
    assert_eq!(quantile(&[], 0.5), None);
}

fn synthetic(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| {
            let y = u8::from(rng.next_u64().is_multiple_of(3));
            let noise = (rng.next_u64() % 1000) as f64 / 1000.0;
            let s = (0.35 * f64::from(y) + 0.65 * noise).clamp(0.0, 1.0);
            ((s * 100.0).round() / 100.0, y)
        })
        .unzip()
}

#[test]
fn paired_bootstrap_sees_a_small_consistent_gain() {
    // B = A plus a small push towards the truth on every item: a gain too small to show
    // between two unpaired intervals, but consistent item by item.
    let mut rng = SplitMix64(3);
    let n = 400;
    let labels: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    let a: Vec<f64> = labels
        .iter()
        .map(|&y| 0.5 * (rng.below(1000) as f64 / 1000.0) + 0.25 * y as f64)
        .collect();
    let b: Vec<f64> = a
        .iter()
        .zip(&labels)
        .map(|(&x, &y)| x + 0.03 * (y as f64 - 0.5))
        .collect();
    let ap = |s: &[f64], l: &[u8]| average_precision(s, l).ok();
    let d = paired_bootstrap(&a, &b, &labels, 500, 7, 0.95, ap).unwrap();
    assert!(d.estimate > 0.0 && d.lower > 0.0, "{d:?}");
    assert!(d.lower <= d.estimate && d.estimate <= d.upper);
    // Same seed, same interval; identical models give a zero-width interval at 0.
    assert_eq!(
        d,
        paired_bootstrap(&a, &b, &labels, 500, 7, 0.95, ap).unwrap()
    );
    let z = paired_bootstrap(&a, &a, &labels, 200, 1, 0.95, ap).unwrap();
    assert_eq!((z.estimate, z.lower, z.upper), (0.0, 0.0, 0.0));
    // Swapping the models mirrors the interval.
    let m = paired_bootstrap(&b, &a, &labels, 500, 7, 0.95, ap).unwrap();
    assert!((m.estimate + d.estimate).abs() < 1e-12 && (m.lower + d.upper).abs() < 1e-12);
    assert!(paired_bootstrap(&a, &b[..10], &labels, 10, 0, 0.95, ap).is_err());
}

#[test]
fn bootstrap_is_seeded_and_brackets_the_estimate() {
    let (s, y) = synthetic(400, 3);
    let a = bootstrap_pr_auc(&s, &y, 300, 11).unwrap();
    let b = bootstrap_pr_auc(&s, &y, 300, 11).unwrap();
    assert_eq!(a, b);
    let c = bootstrap_pr_auc(&s, &y, 300, 12).unwrap();
    assert_ne!(a.lower, c.lower);
    assert!(a.lower < a.estimate && a.estimate < a.upper, "{a}");
    assert_eq!(a.estimate, average_precision(&s, &y).unwrap());
    assert_eq!(a.resamples + a.skipped, 300);
    let f = bootstrap_f1(&s, &y, 0.5, 300, 11).unwrap();
    assert!(f.lower <= f.estimate && f.estimate <= f.upper, "{f}");
    // More data gives a narrower interval.
    let (s2, y2) = synthetic(4000, 3);
    let wide = a.upper - a.lower;
    let narrow = bootstrap_pr_auc(&s2, &y2, 300, 11).unwrap();
    assert!(narrow.upper - narrow.lower < wide);
    // Resamples without a positive are skipped, not fatal.
    let mut s3 = vec![0.1; 30];
    s3[0] = 0.9;
    let mut y3 = vec![0u8; 30];
    y3[0] = 1;
    let sparse = bootstrap_pr_auc(&s3, &y3, 200, 1).unwrap();
    assert!(sparse.skipped > 0);
    assert_eq!(sparse.resamples + sparse.skipped, 200);
}

#[test]
fn report_collects_everything() {
    let (s, y) = synthetic(200, 5);
    let r = report(&s, &y, 0.5).unwrap();
    assert_eq!(r.n, 200);
    assert_eq!(r.pr_auc, average_precision(&s, &y).unwrap());
    assert_eq!(r.roc_auc, roc_auc(&s, &y).unwrap());
    assert!(r.to_string().contains("PR-AUC"));
}
