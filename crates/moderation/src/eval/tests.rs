use std::io::Write as _;

#[test]
fn threshold_rules_parse_and_pick_the_operating_point_on_validation() {
    assert_eq!(
        "best-f1".parse::<ThresholdRule>(),
        Ok(ThresholdRule::BestF1)
    );
    assert_eq!("precision:0.9".parse(), Ok(ThresholdRule::Precision(0.9)));
    assert_eq!("fpr:0.05".parse(), Ok(ThresholdRule::Fpr(0.05)));
    assert!("precision:1.5"
        .parse::<ThresholdRule>()
        .unwrap_err()
        .contains("[0, 1]"));
    assert!("recall:0.9"
        .parse::<ThresholdRule>()
        .unwrap_err()
        .contains("unknown threshold rule"));
    assert_eq!(ThresholdRule::Fpr(0.05).to_string(), "fpr:0.05");
    // Validation: positives at 0.9, 0.8, 0.6, 0.3; negatives at 0.7, 0.5, 0.2, 0.1.
    let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1];
    let l = [1, 1, 0, 1, 0, 1, 0, 0];
    // Precision >= 0.75: at 0.6 (3 of 4 flagged are positive), the most recall there.
    assert_eq!(ThresholdRule::Precision(0.75).choose(&s, &l), Some(0.6));
    assert_eq!(ThresholdRule::Precision(1.0).choose(&s, &l), Some(0.8));
    // FPR <= 0.25: one negative of four may be flagged: down to 0.6.
    assert_eq!(ThresholdRule::Fpr(0.25).choose(&s, &l), Some(0.6));
    assert_eq!(ThresholdRule::Fpr(0.0).choose(&s, &l), Some(0.8));
    // A target nothing reaches flags nothing.
    let l2 = [0, 1, 0, 1, 0, 1, 0, 0];
    assert!(ThresholdRule::Precision(1.0).choose(&s, &l2).unwrap() > 1.0);
    let l3 = [0, 0, 0, 0, 0, 0, 0, 1];
    assert!(ThresholdRule::Precision(0.9).choose(&s, &l3).unwrap() > 1.0);
    // evaluate() applies the rule on validation and records it.
    let rows = |l: &[u8]| -> Vec<ScoredRow> {
        s.iter()
            .zip(l)
            .enumerate()
            .map(|(i, (&x, &y))| ScoredRow::new(format!("r{i}"), y, x))
            .collect()
    };
    let val = rows(&l);
    let opts = EvalOptions {
        rule: ThresholdRule::Fpr(0.0),
        bootstrap: 0,
        ..EvalOptions::default()
    };
    let m = evaluate(&rows(&l), Some(&val), &opts);
    assert_eq!(m.threshold, Some(0.8));
    assert_eq!(m.threshold_source, Some(ThresholdSource::Val));
    assert_eq!(m.threshold_rule.as_deref(), Some("fpr:0"));
}
use super::*;
use crate::metrics::{
    at_threshold, average_precision, best_f1_threshold, bootstrap_f1, bootstrap_pr_auc,
    brier_score, expected_calibration_error, recall_at_fpr, recall_at_precision, roc_auc,
};

/// SplitMix64 for reproducible test data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// `n` rows, about 30 % violating, score = sigmoid(±separation/2 + noise) rounded to three
/// decimals (so there are ties), with categories, slices and a few format failures.
pub(crate) fn synthetic_rows(n: usize, seed: u64, separation: f64) -> Vec<ScoredRow> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let label = u8::from(rng.uniform() < 0.3);
            let z = separation * (f64::from(label) - 0.5) + rng.normal();
            let score = (1.0 / (1.0 + (-z).exp()) * 1000.0).round() / 1000.0;
            let mut row = ScoredRow::new(format!("r{i}"), label, score);
            if label == 1 {
                let cat = ["slurs", "threats", "harassment"][i % 3];
                row.categories.push(cat.to_string());
                row.pred_category = (i % 2 == 0).then(|| {
                    if i % 4 == 0 {
                        cat.to_uppercase()
                    } else {
                        "threats".into()
                    }
                });
            }
            row.slices
                .push(format!("source:{}", ["gab", "twitter"][i % 2]));
            if i % 5 == 0 {
                row.slices.push("target:women".into());
            }
            if i % 17 == 0 {
                row.format_ok = false;
                row.failure = Some(if i % 2 == 0 { "bad_json" } else { "no_verdict" }.into());
            }
            row.reasoning_words = Some(20 + i % 40);
            row
        })
        .collect()
}

fn split(rows: &[ScoredRow]) -> (Vec<f64>, Vec<u8>) {
    rows.iter().map(|r| (r.score, r.label)).unzip()
}

fn no_bootstrap() -> EvalOptions {
    EvalOptions {
        bootstrap: 0,
        ..EvalOptions::default()
    }
}

#[test]
fn minimal_row_reads_with_defaults() {
    let row: ScoredRow = serde_json::from_str(r#"{"id":"a","label":1,"score":0.25}"#).unwrap();
    assert_eq!(row, ScoredRow::new("a", 1, 0.25));
    assert!(row.format_ok);
    let full = synthetic_rows(20, 1, 2.0).remove(17);
    let back: ScoredRow = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
    assert_eq!(back, full);
    assert!(!back.format_ok);
}

#[test]
fn evaluate_agrees_with_metrics_module() {
    let rows = synthetic_rows(600, 7, 2.5);
    let (s, l) = split(&rows);
    let opts = EvalOptions {
        bootstrap: 200,
        seed: 9,
        threshold: None,
        rule: ThresholdRule::BestF1,
    };
    let m = evaluate(&rows, None, &opts);
    assert_eq!(m.n, 600);
    assert_eq!(m.n_pos, l.iter().filter(|&&x| x == 1).count());
    assert_eq!(m.prevalence, Some(m.n_pos as f64 / 600.0));
    assert_eq!(m.pr_auc, Some(average_precision(&s, &l).unwrap()));
    assert_eq!(m.roc_auc, Some(roc_auc(&s, &l).unwrap()));
    let best = best_f1_threshold(&s, &l).unwrap();
    assert_eq!(m.threshold, Some(best.threshold));
    assert_eq!(m.threshold_source, Some(ThresholdSource::Test));
    assert_eq!(m.f1, Some(best.f1));
    assert_eq!(m.precision, Some(best.precision));
    assert_eq!(m.recall, Some(best.recall));
    assert_eq!(m.accuracy, Some(best.confusion.accuracy()));
    assert_eq!(m.confusion, Some(Confusion::from(best.confusion)));
    assert_eq!(
        m.recall_at_precision_0_9,
        Some(recall_at_precision(&s, &l, 0.9).unwrap().recall)
    );
    assert_eq!(
        m.recall_at_fpr_0_01,
        Some(recall_at_fpr(&s, &l, 0.01).unwrap().recall)
    );
    assert_eq!(m.ece, Some(expected_calibration_error(&s, &l, 10).unwrap()));
    assert_eq!(m.brier, Some(brier_score(&s, &l).unwrap()));
    let pr_ci = bootstrap_pr_auc(&s, &l, 200, 9).unwrap();
    assert_eq!(m.pr_auc_ci, Some([pr_ci.lower, pr_ci.upper]));
    let f1_ci = bootstrap_f1(&s, &l, best.threshold, 200, 9).unwrap();
    assert_eq!(m.f1_ci, Some([f1_ci.lower, f1_ci.upper]));
    // Sanity of the separation: a real signal, not a perfect one.
    let auc = m.roc_auc.unwrap();
    assert!(auc > 0.85 && auc < 0.99, "{auc}");
    // Format failures, reasoning words.
    let failed = rows.iter().filter(|r| !r.format_ok).count();
    assert_eq!(m.format_failure_rate, Some(failed as f64 / 600.0));
    assert_eq!(m.failure_counts.values().sum::<usize>(), failed);
    assert_eq!(
        m.failure_counts.keys().collect::<Vec<_>>(),
        vec!["bad_json", "no_verdict"]
    );
    let words: usize = rows.iter().map(|r| r.reasoning_words.unwrap()).sum();
    assert!((m.mean_reasoning_words.unwrap() - words as f64 / 600.0).abs() < 1e-9);
}

#[test]
fn curves_are_consistent() {
    let rows = synthetic_rows(5000, 3, 1.5);
    let (s, l) = split(&rows);
    let m = evaluate(&rows, None, &no_bootstrap());
    let c = &m.curves;
    assert_eq!(c.pr.first(), Some(&[0.0, 1.0]));
    assert_eq!(c.pr.last().unwrap()[0], 1.0);
    assert!(c.pr.windows(2).all(|w| w[0][0] <= w[1][0]));
    // The step area of the (thinned) curve stays within the resolution of the PR-AUC.
    let area: f64 = c.pr.windows(2).map(|w| (w[1][0] - w[0][0]) * w[1][1]).sum();
    assert!((area - m.pr_auc.unwrap()).abs() < 5e-3, "{area}");
    assert_eq!(c.roc.first(), Some(&[0.0, 0.0]));
    assert_eq!(c.roc.last(), Some(&[1.0, 1.0]));
    assert!(c.roc.len() < 2100, "thinned: {}", c.roc.len());
    let full = crate::metrics::roc_curve(&s, &l).unwrap().len();
    assert!(full > c.roc.len());
    assert_eq!(c.hist_pos.len(), HIST_BINS);
    assert_eq!(c.hist_pos.iter().sum::<usize>(), m.n_pos);
    assert_eq!(c.hist_neg.iter().sum::<usize>(), m.n - m.n_pos);
    assert_eq!(c.reliability.len(), CALIBRATION_BINS);
    assert_eq!(c.reliability.iter().map(|b| b.count).sum::<usize>(), m.n);
    // A score of exactly 1.0 lands in the last histogram bin.
    let edge = evaluate(
        &[ScoredRow::new("a", 1, 1.0), ScoredRow::new("b", 0, 0.0)],
        None,
        &no_bootstrap(),
    );
    assert_eq!(edge.curves.hist_pos[HIST_BINS - 1], 1);
    assert_eq!(edge.curves.hist_neg[0], 1);
}

#[test]
fn threshold_comes_from_val_when_given() {
    let test = synthetic_rows(400, 11, 2.0);
    // A validation set whose scores are shifted down, so its best-F1 threshold differs.
    let mut val = synthetic_rows(300, 12, 2.0);
    for r in &mut val {
        r.score = (r.score * 0.5).clamp(0.0, 1.0);
    }
    let (vs, vl) = split(&val);
    let (ts, tl) = split(&test);
    let val_best = best_f1_threshold(&vs, &vl).unwrap();
    let test_best = best_f1_threshold(&ts, &tl).unwrap();
    assert_ne!(val_best.threshold, test_best.threshold);
    let m = evaluate(&test, Some(&val), &no_bootstrap());
    assert_eq!(m.threshold, Some(val_best.threshold));
    assert_eq!(m.threshold_source, Some(ThresholdSource::Val));
    let at = at_threshold(&ts, &tl, val_best.threshold).unwrap();
    assert_eq!(m.f1, Some(at.f1));
    assert_eq!(m.confusion, Some(Confusion::from(at.confusion)));
    // A one-class validation set cannot choose: fall back to the test data.
    let negatives: Vec<ScoredRow> = val.iter().filter(|r| r.label == 0).cloned().collect();
    let m = evaluate(&test, Some(&negatives), &no_bootstrap());
    assert_eq!(m.threshold_source, Some(ThresholdSource::Test));
    assert_eq!(m.threshold, Some(test_best.threshold));
    // A fixed threshold wins over both.
    let opts = EvalOptions {
        threshold: Some(0.5),
        ..no_bootstrap()
    };
    let m = evaluate(&test, Some(&val), &opts);
    assert_eq!(m.threshold_source, Some(ThresholdSource::Fixed));
    assert_eq!(m.f1, Some(at_threshold(&ts, &tl, 0.5).unwrap().f1));
    // filter_split picks rows by their split tag.
    let mut mixed = test.clone();
    for (i, r) in mixed.iter_mut().enumerate() {
        r.split = Some(if i % 4 == 0 { "validation" } else { "test" }.into());
    }
    assert_eq!(filter_split(&mixed, Split::Val).len(), 100);
    assert_eq!(filter_split(&mixed, Split::Test).len(), 300);
}

#[test]
fn degenerate_inputs_give_nulls_not_nan() {
    let cases: Vec<Vec<ScoredRow>> = vec![
        Vec::new(),
        vec![ScoredRow::new("a", 0, 0.2), ScoredRow::new("b", 0, 0.7)],
        vec![ScoredRow::new("a", 1, 0.2), ScoredRow::new("b", 1, 0.7)],
        vec![
            ScoredRow::new("a", 1, f64::NAN),
            ScoredRow::new("b", 2, 0.5),
            ScoredRow::new("c", 0, 1.5),
        ],
    ];
    for rows in &cases {
        let m = evaluate(rows, None, &EvalOptions::default());
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
        let back: EvalMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.roc_auc, None);
        assert!(m.curves.roc.is_empty());
    }
    let empty = evaluate(&cases[0], None, &EvalOptions::default());
    assert_eq!(
        (empty.n, empty.prevalence, empty.threshold),
        (0, None, None)
    );
    assert_eq!(
        (empty.ece, empty.brier, empty.format_failure_rate),
        (None, None, None)
    );
    assert_eq!(empty.confusion, None);
    assert!(empty.curves.reliability.is_empty());
    let negatives = evaluate(&cases[1], None, &EvalOptions::default());
    assert_eq!(
        (negatives.pr_auc, negatives.threshold, negatives.f1),
        (None, None, None)
    );
    assert_eq!(negatives.prevalence, Some(0.0));
    assert!(negatives.brier.is_some() && negatives.curves.pr.is_empty());
    // With a fixed threshold a one-class set still gets its confusion matrix.
    let fixed = evaluate(
        &cases[1],
        None,
        &EvalOptions {
            threshold: Some(0.5),
            ..EvalOptions::default()
        },
    );
    assert_eq!(
        fixed.confusion,
        Some(Confusion {
            tp: 0,
            fp: 1,
            tn: 1,
            fn_: 0
        })
    );
    assert_eq!(fixed.f1_ci, None);
    let positives = evaluate(&cases[2], None, &EvalOptions::default());
    assert_eq!(positives.pr_auc, Some(1.0));
    assert_eq!(positives.recall_at_fpr_0_01, None);
    assert_eq!(positives.threshold, Some(0.2));
    let invalid = evaluate(&cases[3], None, &EvalOptions::default());
    assert_eq!((invalid.n, invalid.n_excluded), (0, 3));
}

#[test]
fn per_category_and_per_slice() {
    let mut rows = vec![
        ScoredRow::new("p1", 1, 0.9),
        ScoredRow::new("p2", 1, 0.4),
        ScoredRow::new("p3", 1, 0.8),
        ScoredRow::new("n1", 0, 0.6),
        ScoredRow::new("n2", 0, 0.1),
        ScoredRow::new("n3", 0, 0.2),
    ];
    rows[0].categories = vec!["slurs".into(), "threats".into()];
    rows[0].pred_category = Some("Threats".into());
    rows[1].categories = vec!["slurs".into()];
    rows[1].pred_category = Some("threats".into());
    rows[2].categories = vec!["threats".into()];
    rows[3].categories = vec!["ignored-on-negatives".into()];
    for r in &mut rows[..4] {
        r.slices.push("s:a".into());
    }
    rows[4].slices.push("s:neg".into());
    let opts = EvalOptions {
        threshold: Some(0.5),
        ..no_bootstrap()
    };
    let m = evaluate(&rows, None, &opts);
    assert_eq!(
        m.per_category.keys().collect::<Vec<_>>(),
        vec!["slurs", "threats"]
    );
    let slurs = &m.per_category["slurs"];
    assert_eq!((slurs.n, slurs.recall), (2, Some(0.5)));
    assert!((slurs.mean_score - 0.65).abs() < 1e-12);
    assert_eq!(
        (slurs.n_pred_category, slurs.category_accuracy),
        (2, Some(0.5))
    );
    let threats = &m.per_category["threats"];
    assert_eq!((threats.n, threats.recall), (2, Some(1.0)));
    assert_eq!(
        (threats.n_pred_category, threats.category_accuracy),
        (1, Some(1.0))
    );
    let a = &m.per_slice["s:a"];
    assert_eq!((a.n, a.n_pos), (4, 3));
    let (s, l) = (vec![0.9, 0.4, 0.8, 0.6], vec![1u8, 1, 1, 0]);
    assert_eq!(a.pr_auc, Some(average_precision(&s, &l).unwrap()));
    assert_eq!(a.f1, Some(at_threshold(&s, &l, 0.5).unwrap().f1));
    assert_eq!(a.fpr, Some(1.0));
    let neg = &m.per_slice["s:neg"];
    assert_eq!(
        (neg.n, neg.n_pos, neg.pr_auc, neg.f1, neg.fpr),
        (1, 0, None, None, Some(0.0))
    );
}

#[test]
fn metrics_json_keys_and_round_trip() {
    let rows = synthetic_rows(300, 5, 2.0);
    let m = evaluate(
        &rows,
        None,
        &EvalOptions {
            bootstrap: 50,
            ..EvalOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    m.write_json(&path).unwrap();
    assert_eq!(EvalMetrics::read_json(&path).unwrap(), m);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "n",
        "n_pos",
        "prevalence",
        "pr_auc",
        "roc_auc",
        "threshold",
        "threshold_source",
        "f1",
        "precision",
        "recall",
        "accuracy",
        "recall_at_precision_0.9",
        "recall_at_fpr_0.01",
        "ece",
        "brier",
        "format_failure_rate",
        "failure_counts",
        "mean_reasoning_words",
        "pr_auc_ci",
        "f1_ci",
        "per_category",
        "per_slice",
        "curves",
        "confusion",
    ] {
        assert!(keys.contains(&key), "missing {key}");
    }
    assert_eq!(value["threshold_source"], "test");
    assert!(value["confusion"]["fn"].is_u64());
    assert!(value["curves"]["reliability"][0]["bin_hi"].is_f64());
    assert_eq!(value["pr_auc_ci"].as_array().unwrap().len(), 2);
    assert!(m.to_string().contains("PR-AUC"));
    assert!(matches!(
        EvalMetrics::read_json(dir.path().join("missing.json")),
        Err(EvalError::Io { .. })
    ));
}

#[test]
fn resume_drops_only_a_truncated_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.jsonl");
    let rows = synthetic_rows(5, 1, 2.0);
    {
        let (mut w, done, existing) = ScoresWriter::open_append(&path).unwrap();
        assert!(done.is_empty() && existing.is_empty() && w.is_empty());
        for r in &rows[..3] {
            w.append(r).unwrap();
        }
        assert_eq!(w.len(), 3);
    }
    let good_len = std::fs::metadata(&path).unwrap().len();
    // A crash in the middle of the fourth line.
    let fourth = serde_json::to_string(&rows[3]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&fourth.as_bytes()[..fourth.len() / 2]).unwrap();
    drop(f);
    assert!(read_scores(&path).is_err());
    let (mut w, done, existing) = ScoresWriter::open_append(&path).unwrap();
    assert_eq!(existing, rows[..3].to_vec());
    assert_eq!(done, rows[..3].iter().map(|r| r.id.clone()).collect());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert!(w.contains("r0") && !w.contains("r3"));
    w.append(&rows[3]).unwrap();
    assert!(matches!(
        w.append(&rows[0]),
        Err(EvalError::InvalidRow { .. })
    ));
    let mut bad = rows[4].clone();
    bad.score = f64::NAN;
    assert!(matches!(w.append(&bad), Err(EvalError::InvalidRow { .. })));
    drop(w);
    assert_eq!(read_scores(&path).unwrap(), rows[..4].to_vec());
    // A complete last line that only lacks its newline is kept, and the newline added.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(serde_json::to_string(&rows[4]).unwrap().as_bytes())
        .unwrap();
    drop(f);
    let (w, _, existing) = ScoresWriter::open_append(&path).unwrap();
    assert_eq!(existing, rows.to_vec());
    drop(w);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("}\n") && text.lines().count() == 5);
}

#[test]
fn bad_lines_are_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.jsonl");
    let text = "{\"id\":\"a\",\"label\":1,\"score\":0.9}\n\n{\"id\":\"b\",\"label\":1}\n{\"id\":\"c\",\"label\":0,\"score\":0.1}\n";
    std::fs::write(&path, text).unwrap();
    let err = read_scores(&path).unwrap_err().to_string();
    assert!(
        err.contains("scores.jsonl:3:") && err.contains("score"),
        "{err}"
    );
    // A bad line that is not the last one is not a crash: resuming refuses and keeps the file.
    assert!(ScoresWriter::open_append(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let dup =
        "{\"id\":\"a\",\"label\":1,\"score\":0.9}\n{\"id\":\"a\",\"label\":0,\"score\":0.2}\n";
    std::fs::write(&path, dup).unwrap();
    let err = read_scores(&path).unwrap_err().to_string();
    assert!(err.contains(":2:") && err.contains("duplicate"), "{err}");
    std::fs::write(&path, "{\"id\":\"a\",\"label\":1,\"score\":1.5}\n").unwrap();
    assert!(read_scores(&path).unwrap_err().to_string().contains(":1:"));
}
