"""Reference values for tests/sklearn_agreement.rs, computed with scikit-learn and numpy.

Usage: python sklearn_reference.py INPUT.json  (prints JSON to stdout)

INPUT: {"cases": [{"scores": [...], "labels": [...], "threshold": t}], "quantile_values": [...]}
Conventions mirrored from modrl_moderation::metrics (see its module docs):
predict positive when score >= threshold; precision with nothing predicted is 0; curves
without sklearn's final PR sentinel and with ROC thresholds after the +inf origin.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def ece(y, s, n_bins=10):
    # Same bins as sklearn.calibration.calibration_curve(strategy="uniform").
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], s)
    total = 0.0
    for b in range(n_bins):
        mask = ids == b
        if mask.any():
            total += mask.sum() / len(s) * abs(s[mask].mean() - y[mask].mean())
    return float(total)


def one(case):
    y = np.asarray(case["labels"], dtype=int)
    s = np.asarray(case["scores"], dtype=float)
    t = case["threshold"]
    pred = (s >= t).astype(int)
    precision, recall, pr_thr = precision_recall_curve(y, s)
    fpr, tpr, roc_thr = roc_curve(y, s, drop_intermediate=False)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")

    # Best-F1 threshold by brute force over the distinct scores; ties -> highest threshold.
    best_t, best_f1 = None, -1.0
    for cand in sorted(set(s.tolist()), reverse=True):
        f = f1_score(y, (s >= cand).astype(int), zero_division=0)
        if f > best_f1 + 1e-12:
            best_t, best_f1 = cand, f

    return {
        "average_precision": float(average_precision_score(y, s)),
        "roc_auc": float(roc_auc_score(y, s)),
        "brier": float(brier_score_loss(y, s)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "confusion": [int(tp), int(fp), int(tn), int(fn)],
        "pr_precision": precision[:-1][::-1].tolist(),
        "pr_recall": recall[:-1][::-1].tolist(),
        "pr_thresholds": pr_thr[::-1].tolist(),
        "roc_fpr": fpr.tolist(),
        "roc_tpr": tpr.tolist(),
        "roc_thresholds_after_origin": roc_thr[1:].tolist(),
        "recall_at_precision_90": float(recall[precision >= 0.9].max()),
        "recall_at_fpr_1": float(tpr[fpr <= 0.01].max()),
        "ece": ece(y, s),
        "calibration_prob_true": prob_true.tolist(),
        "calibration_prob_pred": prob_pred.tolist(),
        "best_f1_threshold": best_t,
        "best_f1": float(best_f1),
    }


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    values = np.asarray(data["quantile_values"], dtype=float)
    out = {
        "sklearn_version": sklearn.__version__,
        "cases": [one(c) for c in data["cases"]],
        "quantiles": [float(np.percentile(values, q)) for q in (2.5, 50.0, 97.5)],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
