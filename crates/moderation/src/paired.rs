//! Paired comparison of two models scored on the same items: the metric of each, their
//! difference and a paired bootstrap interval of the difference ([`metrics::paired_bootstrap`]).
//!
//! Two unpaired intervals overlap long before a difference is in doubt; resampling the items
//! once and scoring both models on each draw removes the variation the two share (which items
//! happen to be easy), so a consistent gain shows. [`compare_dirs`] is what `modrl eval
//! --compare A B` and the study scripts use: it joins `A/scores.jsonl` and `B/scores.jsonl` on
//! `id`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::eval::{read_scores, EvalError, ScoredRow};
use crate::metrics::{self, average_precision, paired_bootstrap, roc_auc};

/// One metric of both models and the paired interval of `b - a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedMetric {
    /// Model A on the shared items.
    pub a: f64,
    /// Model B on the shared items.
    pub b: f64,
    /// `b - a`.
    pub diff: f64,
    /// 95 % paired bootstrap interval of `b - a`.
    pub ci: [f64; 2],
}

impl PairedMetric {
    /// The interval lies above 0: B beats A on this metric.
    pub fn b_better(&self) -> bool {
        self.ci[0] > 0.0
    }
}

/// The paired comparison of two scores files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Items scored by both (the comparison's population).
    pub n: usize,
    /// Violating items among them.
    pub n_pos: usize,
    /// Items only A scored, and only B (left out).
    pub only_a: usize,
    pub only_b: usize,
    /// Bootstrap resamples and seed.
    pub resamples: usize,
    pub seed: u64,
    /// PR-AUC (average precision).
    pub pr_auc: PairedMetric,
    /// ROC-AUC.
    pub roc_auc: PairedMetric,
}

/// Compare two sets of scored rows on the ids both contain. Errors when an id carries different
/// labels on the two sides, or when fewer than two items (or no positive and negative) are shared.
pub fn compare_rows(
    a: &[ScoredRow],
    b: &[ScoredRow],
    resamples: usize,
    seed: u64,
) -> Result<PairedComparison, String> {
    let by_id: HashMap<&str, &ScoredRow> = b.iter().map(|r| (r.id.as_str(), r)).collect();
    let (mut sa, mut sb, mut labels) = (vec![], vec![], vec![]);
    for r in a {
        if let Some(o) = by_id.get(r.id.as_str()) {
            if o.label != r.label {
                return Err(format!(
                    "item {:?} has label {} in A but {} in B: not the same items",
                    r.id, r.label, o.label
                ));
            }
            sa.push(r.score);
            sb.push(o.score);
            labels.push(r.label);
        }
    }
    let n = labels.len();
    let n_pos = labels.iter().filter(|&&y| y == 1).count();
    if n < 2 || n_pos == 0 || n_pos == n {
        return Err(format!(
            "only {n} shared items ({n_pos} violating): a paired comparison needs both classes"
        ));
    }
    let one = |f: fn(&[f64], &[u8]) -> Result<f64, metrics::MetricsError>, seed: u64| {
        let m = |s: &[f64], l: &[u8]| f(s, l).ok();
        let iv = paired_bootstrap(&sa, &sb, &labels, resamples, seed, 0.95, m)
            .map_err(|e| e.to_string())?;
        let (va, vb) = (
            f(&sa, &labels).map_err(|e| e.to_string())?,
            f(&sb, &labels).map_err(|e| e.to_string())?,
        );
        Ok::<_, String>(PairedMetric {
            a: va,
            b: vb,
            diff: iv.estimate,
            ci: [iv.lower, iv.upper],
        })
    };
    Ok(PairedComparison {
        n,
        n_pos,
        only_a: a.len() - n,
        only_b: b.len() - n,
        resamples,
        seed,
        pr_auc: one(average_precision, seed)?,
        roc_auc: one(roc_auc, seed)?,
    })
}

/// Compare `A/scores.jsonl` with `B/scores.jsonl` when both exist (`None` otherwise).
pub fn compare_dirs(
    a_dir: &Path,
    b_dir: &Path,
    resamples: usize,
    seed: u64,
) -> Result<Option<PairedComparison>, EvalError> {
    let (pa, pb) = (a_dir.join("scores.jsonl"), b_dir.join("scores.jsonl"));
    if !pa.exists() || !pb.exists() {
        return Ok(None);
    }
    let (a, b) = (read_scores(&pa)?, read_scores(&pb)?);
    compare_rows(&a, &b, resamples, seed)
        .map(Some)
        .map_err(|message| EvalError::Row {
            path: PathBuf::from(format!("{} vs {}", pa.display(), pb.display())),
            line: 0,
            message,
        })
}

/// One line for logs and scripts, e.g. `PR-AUC 0.553 -> 0.701, B - A +0.148 [+0.101, +0.197]`.
pub fn summary(c: &PairedComparison) -> String {
    let m = |name: &str, x: &PairedMetric| {
        format!(
            "{name} {:.3} -> {:.3}, B - A {:+.3} [{:+.3}, {:+.3}]",
            x.a, x.b, x.diff, x.ci[0], x.ci[1]
        )
    };
    format!(
        "{} shared items ({} violating): {}; {}",
        c.n,
        c.n_pos,
        m("PR-AUC", &c.pr_auc),
        m("ROC-AUC", &c.roc_auc)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(scores: &[(u8, f64)], prefix: &str) -> Vec<ScoredRow> {
        scores
            .iter()
            .enumerate()
            .map(|(i, &(y, s))| ScoredRow::new(format!("{prefix}{i}"), y, s))
            .collect()
    }

    #[test]
    fn joins_on_id_and_finds_a_real_gain() {
        let items: Vec<(u8, f64)> = (0..300)
            .map(|i| {
                let y = u8::from(i % 4 == 0);
                (y, ((i * 37) % 100) as f64 / 100.0)
            })
            .collect();
        let a = rows(&items, "x");
        // B ranks positives higher everywhere; it also scored 5 items A did not.
        let mut b_items = items.clone();
        for (y, s) in &mut b_items {
            *s = (*s + 0.3 * *y as f64).min(1.0);
        }
        let mut b = rows(&b_items, "x");
        b.extend(rows(&[(1, 0.9); 5], "extra"));
        b.reverse(); // order does not matter
        let c = compare_rows(&a, &b, 300, 0).unwrap();
        assert_eq!((c.n, c.n_pos, c.only_a, c.only_b), (300, 75, 0, 5));
        assert!(c.pr_auc.b_better() && c.roc_auc.b_better(), "{c:?}");
        assert!((c.pr_auc.diff - (c.pr_auc.b - c.pr_auc.a)).abs() < 1e-12);
        assert!(summary(&c).contains("300 shared items"));
        // Against itself: no gain.
        let z = compare_rows(&a, &a, 100, 0).unwrap();
        assert!(!z.pr_auc.b_better() && z.pr_auc.diff == 0.0);
    }

    #[test]
    fn refuses_mismatched_labels_and_one_class() {
        let a = rows(&[(1, 0.9), (0, 0.1)], "x");
        let b = rows(&[(0, 0.9), (0, 0.1)], "x");
        assert!(compare_rows(&a, &b, 10, 0).unwrap_err().contains("\"x0\""));
        let c = rows(&[(1, 0.2), (1, 0.3)], "x");
        assert!(compare_rows(&c, &c, 10, 0)
            .unwrap_err()
            .contains("both classes"));
    }
}
