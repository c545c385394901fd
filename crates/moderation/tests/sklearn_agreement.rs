//! Cross-checks `modrl_moderation::metrics` against scikit-learn (and numpy for ECE and
//! percentiles) on random inputs with many tied scores. Uses the project virtualenv at
//! `<workspace>/.venv/bin/python`; fails with a clear message when it is missing.

use modrl_moderation::metrics::{self, CALIBRATION_BINS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOL: f64 = 1e-9;

/// SplitMix64, so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Case {
    scores: Vec<f64>,
    labels: Vec<u8>,
    threshold: f64,
}

/// `decimals = None` keeps scores continuous; otherwise they are rounded, creating ties.
fn make_case(
    rng: &mut Rng,
    n: usize,
    prevalence: f64,
    signal: f64,
    decimals: Option<i32>,
    threshold: f64,
) -> Case {
    loop {
        let mut scores = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let y = u8::from(rng.unit() < prevalence);
            let raw = (signal * f64::from(y) + (1.0 - signal) * rng.unit()).clamp(0.0, 1.0);
            let s = match decimals {
                Some(d) => {
                    let k = 10f64.powi(d);
                    (raw * k).round() / k
                }
                None => raw,
            };
            scores.push(s);
            labels.push(y);
        }
        if labels.contains(&0) && labels.contains(&1) {
            return Case {
                scores,
                labels,
                threshold,
            };
        }
    }
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(20_251_126);
    let mut cases = vec![
        make_case(&mut rng, 50, 0.3, 0.3, Some(1), 0.5),
        make_case(&mut rng, 200, 0.1, 0.4, Some(2), 0.3),
        make_case(&mut rng, 500, 0.5, 0.2, Some(2), 0.5),
        make_case(&mut rng, 300, 0.4, 0.5, Some(0), 0.5),
        make_case(&mut rng, 100, 0.3, 0.3, None, 0.42),
        make_case(&mut rng, 1000, 0.03, 0.5, Some(2), 0.7),
        make_case(&mut rng, 400, 0.2, 0.9, Some(1), 0.9),
        make_case(&mut rng, 2, 0.5, 0.0, Some(1), 0.5),
    ];
    // All scores tied.
    cases.push(Case {
        scores: vec![0.3; 40],
        labels: (0..40).map(|i| u8::from(i % 4 == 0)).collect(),
        threshold: 0.3,
    });
    // Halves: scores exactly on bin edges and at 0 and 1.
    cases.push(Case {
        scores: (0..60).map(|i| f64::from(i % 11) / 10.0).collect(),
        labels: (0..60).map(|i| u8::from(i % 3 == 0)).collect(),
        threshold: 0.6,
    });
    cases
}

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "the sklearn agreement test needs the project virtualenv with numpy and scikit-learn at \
         {} (create it with the project's setup scripts); it is missing",
        python.display()
    );
    python
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(num)
        .collect()
}

fn assert_close(what: &str, case: usize, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= TOL,
        "case {case}: {what}: ours {ours} vs sklearn {theirs}"
    );
}

fn assert_all_close(what: &str, case: usize, ours: &[f64], theirs: &[f64]) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "case {case}: {what}: lengths differ"
    );
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_close(&format!("{what}[{i}]"), case, *a, *b);
    }
}

#[test]
fn metrics_agree_with_scikit_learn() {
    let python = python();
    let cases = cases();
    let quantile_values: Vec<f64> = {
        let mut rng = Rng(7);
        (0..137).map(|_| rng.unit()).collect()
    };
    let input = json!({
        "cases": cases.iter().map(|c| json!({
            "scores": c.scores,
            "labels": c.labels,
            "threshold": c.threshold,
        })).collect::<Vec<_>>(),
        "quantile_values": quantile_values,
    });
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("cases.json");
    std::fs::write(&input_path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sklearn_reference.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&input_path)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let reference: Value = serde_json::from_slice(&output.stdout).unwrap();
    let version = reference["sklearn_version"].as_str().unwrap_or("?");
    eprintln!("scikit-learn {version}");

    for (i, (case, r)) in cases
        .iter()
        .zip(reference["cases"].as_array().unwrap())
        .enumerate()
    {
        let (s, y) = (&case.scores[..], &case.labels[..]);
        assert_close(
            "average_precision",
            i,
            metrics::average_precision(s, y).unwrap(),
            num(&r["average_precision"]),
        );
        assert_close(
            "roc_auc",
            i,
            metrics::roc_auc(s, y).unwrap(),
            num(&r["roc_auc"]),
        );
        assert_close(
            "brier",
            i,
            metrics::brier_score(s, y).unwrap(),
            num(&r["brier"]),
        );

        let t = metrics::at_threshold(s, y, case.threshold).unwrap();
        assert_close("precision", i, t.precision, num(&r["precision"]));
        assert_close("recall", i, t.recall, num(&r["recall"]));
        assert_close("f1", i, t.f1, num(&r["f1"]));
        let c = t.confusion;
        let theirs: Vec<u64> = r["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            vec![
                c.true_positives as u64,
                c.false_positives as u64,
                c.true_negatives as u64,
                c.false_negatives as u64
            ],
            theirs,
            "case {i}: confusion matrix (tp, fp, tn, fn)"
        );

        let pr = metrics::pr_curve(s, y).unwrap();
        let col = |f: fn(&metrics::PrPoint) -> f64| pr.iter().map(f).collect::<Vec<_>>();
        assert_all_close(
            "pr precision",
            i,
            &col(|p| p.precision),
            &nums(&r["pr_precision"]),
        );
        assert_all_close("pr recall", i, &col(|p| p.recall), &nums(&r["pr_recall"]));
        assert_all_close(
            "pr thresholds",
            i,
            &col(|p| p.threshold),
            &nums(&r["pr_thresholds"]),
        );

        let roc = metrics::roc_curve(s, y).unwrap();
        assert_eq!(roc[0].threshold, f64::INFINITY);
        let rcol = |f: fn(&metrics::RocPoint) -> f64| roc.iter().map(f).collect::<Vec<_>>();
        assert_all_close("roc fpr", i, &rcol(|p| p.fpr), &nums(&r["roc_fpr"]));
        assert_all_close("roc tpr", i, &rcol(|p| p.tpr), &nums(&r["roc_tpr"]));
        assert_all_close(
            "roc thresholds",
            i,
            &rcol(|p| p.threshold)[1..],
            &nums(&r["roc_thresholds_after_origin"]),
        );

        assert_close(
            "recall@precision>=0.9",
            i,
            metrics::recall_at_precision(s, y, 0.9).unwrap().recall,
            num(&r["recall_at_precision_90"]),
        );
        assert_close(
            "recall@fpr<=0.01",
            i,
            metrics::recall_at_fpr(s, y, 0.01).unwrap().recall,
            num(&r["recall_at_fpr_1"]),
        );

        assert_close(
            "ece",
            i,
            metrics::expected_calibration_error(s, y, CALIBRATION_BINS).unwrap(),
            num(&r["ece"]),
        );
        let bins = metrics::reliability_bins(s, y, CALIBRATION_BINS).unwrap();
        let filled: Vec<_> = bins.iter().filter(|b| b.count > 0).collect();
        assert_all_close(
            "calibration prob_true",
            i,
            &filled
                .iter()
                .map(|b| b.fraction_positive.unwrap())
                .collect::<Vec<_>>(),
            &nums(&r["calibration_prob_true"]),
        );
        assert_all_close(
            "calibration prob_pred",
            i,
            &filled
                .iter()
                .map(|b| b.mean_score.unwrap())
                .collect::<Vec<_>>(),
            &nums(&r["calibration_prob_pred"]),
        );

        let best = metrics::best_f1_threshold(s, y).unwrap();
        assert_close(
            "best f1 threshold",
            i,
            best.threshold,
            num(&r["best_f1_threshold"]),
        );
        assert_close("best f1", i, best.f1, num(&r["best_f1"]));
    }

    let mut sorted = quantile_values.clone();
    sorted.sort_by(f64::total_cmp);
    let theirs = nums(&reference["quantiles"]);
    for (q, expected) in [0.025, 0.5, 0.975].into_iter().zip(theirs) {
        assert_close(
            &format!("quantile {q}"),
            0,
            metrics::quantile(&sorted, q).unwrap(),
            expected,
        );
    }
}
