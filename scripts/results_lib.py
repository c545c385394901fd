"""Metrics of the committed result files (docs/results/), recomputed the way `modrl eval` computes them.

Shared by scripts/rl_vs_sft_table.py and scripts/check_results.py. Pure Python except the bootstrap
functions, which need numpy (imported when first used).

- average_precision / roc_auc: PR-AUC (sklearn's average precision) and ROC-AUC (ties count one
  half) of one scores file, exactly as crates/moderation/src/metrics/mod.rs computes them.
- bootstrap_ci / paired_bootstrap_ci: the percentile bootstrap intervals of `modrl eval` (the
  `pr_auc_ci` of metrics.json) and of `modrl eval --compare` (vs-*.json, compare.json), replayed
  draw for draw: the same SplitMix64 generator and seed, items drawn in the same order, the same
  interpolated percentiles, so the committed intervals are recomputed, not approximated.
- eval_metrics: the headline fields of metrics.json from scores.jsonl (and val_scores.jsonl for
  the threshold).
"""
import json
import math
import os

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# --- reading -------------------------------------------------------------------------------------

class Scores:
    """The valid rows of one scores file (label 0/1, score a probability), in file order."""

    def __init__(self, path, limit=None):
        self.path = path
        self.ids, self.labels, self.scores, self.format_ok = [], [], [], []
        self.failures, self.slices = [], []
        self.n_rows = 0
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                if limit is not None and self.n_rows >= limit:
                    break
                self.n_rows += 1
                r = json.loads(line)
                s, y = float(r["score"]), int(r["label"])
                if y not in (0, 1) or not math.isfinite(s) or not 0.0 <= s <= 1.0:
                    continue  # `modrl eval` excludes these rows (n_excluded)
                self.ids.append(r["id"])
                self.labels.append(y)
                self.scores.append(s)
                self.format_ok.append(r.get("format_ok", True) is not False)
                self.failures.append(r.get("failure") or "unknown")
                self.slices.append(r.get("slices") or [])

    def __len__(self):
        return len(self.labels)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- metrics of one scores file ------------------------------------------------------------------

def _cumulative(scores, labels):
    """(tp, fp) at the last item of each run of tied scores, highest score first."""
    pairs = sorted(zip(scores, labels), key=lambda x: -x[0])
    out = []
    tp = fp = 0
    for k, (s, y) in enumerate(pairs):
        tp += y
        fp += 1 - y
        if k + 1 == len(pairs) or pairs[k + 1][0] != s:
            out.append((s, tp, fp))
    return out, tp, fp


def average_precision(scores, labels):
    cum, n_pos, _ = _cumulative(scores, labels)
    if n_pos == 0:
        return None
    ap = prev_recall = 0.0
    for _, tp, fp in cum:
        recall = tp / n_pos
        ap += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
    return ap


def roc_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return None
    # Mann-Whitney U with ties counted half.
    order = sorted(scores)
    ranks = {}
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and order[j] == order[i]:
            j += 1
        ranks[order[i]] = (i + j + 1) / 2.0
        i = j
    r_pos = sum(ranks[s] for s in pos)
    return (r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg))


def recall_at_precision(scores, labels, min_precision):
    cum, n_pos, _ = _cumulative(scores, labels)
    if n_pos == 0:
        return None
    best_r, best_p = 0.0, 1.0
    for _, tp, fp in cum:
        p, r = tp / (tp + fp), tp / n_pos
        if p >= min_precision and (r > best_r or (r == best_r and p > best_p)):
            best_r, best_p = r, p
    return best_r


def recall_at_fpr(scores, labels, max_fpr):
    cum, n_pos, n_neg = _cumulative(scores, labels)
    if n_pos == 0 or n_neg == 0:
        return None
    best = 0.0
    for _, tp, fp in cum:
        if fp / n_neg <= max_fpr and tp / n_pos > best:
            best = tp / n_pos
    return best


def best_f1_threshold(scores, labels):
    cum, n_pos, _ = _cumulative(scores, labels)
    if n_pos == 0:
        return None
    best = None
    for s, tp, fp in cum:
        f1 = 2 * tp / (tp + fp + n_pos)
        if best is None or f1 > best[1]:
            best = (s, f1)
    return best[0]


def rule_threshold(scores, labels, rule, target):
    """The threshold `modrl eval --threshold-rule RULE:TARGET` picks: the most recall with precision
    >= target ("precision") or false-positive rate <= target ("fpr"); 1 + 1e-9 when none does."""
    cum, n_pos, n_neg = _cumulative(scores, labels)
    best = None  # (recall, precision, threshold)
    for s, tp, fp in cum:
        p, r = tp / (tp + fp), tp / n_pos
        ok = p >= target if rule == "precision" else fp / n_neg <= target
        if not ok:
            continue
        better = best is None or r > best[0] or (rule == "precision" and r == best[0] and p > best[1])
        if better:
            best = (r, p, s)
    return 1.0 + 1e-9 if best is None else best[2]


def operating_point(test_path, val_path, rule, target):
    """Precision, recall and false-flag rate on the test scores at the threshold RULE:TARGET picks
    on the validation scores."""
    def load(p):
        rows = [r for r in read_jsonl(p) if r.get("score") is not None]
        return [float(r["score"]) for r in rows], [int(r["label"]) for r in rows]
    vs, vl = load(val_path)
    t = rule_threshold(vs, vl, rule, target)
    ts, tl = load(test_path)
    tp = sum(1 for s, y in zip(ts, tl) if y == 1 and s >= t)
    fp = sum(1 for s, y in zip(ts, tl) if y == 0 and s >= t)
    n_pos, n_neg = sum(tl), len(tl) - sum(tl)
    return {"threshold": t, "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / n_pos,
            "false_flag_rate": fp / n_neg}


def at_threshold(scores, labels, t):
    tp = sum(1 for s, y in zip(scores, labels) if y == 1 and s >= t)
    fp = sum(1 for s, y in zip(scores, labels) if y == 0 and s >= t)
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    f1 = 2 * tp / (tp + fp + n_pos) if tp + fp + n_pos else 0.0
    return {"f1": f1, "false_flag_rate": fp / n_neg if n_neg else 0.0}


def ece(scores, labels, n_bins=10):
    step = 1.0 / n_bins
    bins = [[0, 0.0, 0] for _ in range(n_bins)]
    for s, y in zip(scores, labels):
        b = bins[sum(1 for i in range(1, n_bins) if i * step < s)]
        b[0] += 1
        b[1] += s
        b[2] += y
    n = len(scores)
    return sum(c / n * abs(ss / c - p / c) for c, ss, p in bins if c)


# --- bootstrap (numpy) ---------------------------------------------------------------------------

def _np():
    import numpy
    return numpy


def splitmix_draws(n, n_resamples, seed):
    """Item indices of `n_resamples` draws of `n` items, as metrics::resampled_interval draws them
    (SplitMix64 from `seed`, multiply-shift `below(n)`): an n_resamples x n array."""
    np = _np()
    with np.errstate(over="ignore"):
        k = np.arange(1, n * n_resamples + 1, dtype=np.uint64)
        z = np.uint64(seed) + k * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        # floor(z * n / 2^64) without 128-bit integers (n < 2^32).
        hi = (z >> np.uint64(32)) * np.uint64(n)
        lo = (z & np.uint64(0xFFFFFFFF)) * np.uint64(n)
        idx = (hi + (lo >> np.uint64(32))) >> np.uint64(32)
    return idx.astype(np.int64).reshape(n_resamples, n)


def _ap_rows(S, Y):
    """Average precision of each row of scores S with labels Y (NaN where no positive)."""
    np = _np()
    order = np.argsort(-S, axis=1, kind="stable")
    s = np.take_along_axis(S, order, axis=1)
    y = np.take_along_axis(Y, order, axis=1).astype(np.float64)
    n = S.shape[1]
    tp = np.cumsum(y, axis=1)
    prec = tp / np.arange(1, n + 1)
    # Precision at the last item of each tie run, carried back over the run.
    last = np.ones_like(s, dtype=bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    idx = np.where(last, np.arange(n), n)
    idx = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    prec_run = np.take_along_axis(prec, idx, axis=1)
    n_pos = y.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, (y * prec_run).sum(axis=1) / n_pos, np.nan)


def _roc_rows(S, Y):
    """ROC-AUC of each row (ties count one half; NaN without both classes)."""
    np = _np()
    order = np.argsort(S, axis=1, kind="stable")
    s = np.take_along_axis(S, order, axis=1)
    y = np.take_along_axis(Y, order, axis=1).astype(np.float64)
    n = S.shape[1]
    neg = np.cumsum(1.0 - y, axis=1)
    first = np.ones_like(s, dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    last = np.ones_like(s, dtype=bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    i_first = np.maximum.accumulate(np.where(first, np.arange(n), 0), axis=1)
    i_last = np.minimum.accumulate(np.where(last, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    neg_before = np.take_along_axis(neg, i_first, axis=1) - np.take_along_axis(1.0 - y, i_first, axis=1)
    neg_tied = np.take_along_axis(neg, i_last, axis=1) - neg_before
    n_pos = y.sum(axis=1)
    n_neg = n - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (y * (neg_before + 0.5 * neg_tied)).sum(axis=1)
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


ROW_METRICS = {"pr_auc": _ap_rows, "roc_auc": _roc_rows}
POINT_METRICS = {"pr_auc": average_precision, "roc_auc": roc_auc}


def _quantile(sorted_values, q):
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _interval(values, confidence=0.95):
    np = _np()
    v = np.sort(values[np.isfinite(values)])
    if len(v) == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    return [_quantile(v, alpha), _quantile(v, 1.0 - alpha)]


def bootstrap_ci(scores, labels, metric="pr_auc", n_resamples=1000, seed=0):
    """The 95 % percentile interval of `modrl eval` (metrics.json `pr_auc_ci`)."""
    np = _np()
    draws = splitmix_draws(len(labels), n_resamples, seed)
    S, Y = np.asarray(scores)[draws], np.asarray(labels)[draws]
    return _interval(ROW_METRICS[metric](S, Y))


def paired_bootstrap_ci(scores_a, scores_b, labels, metric="pr_auc", n_resamples=1000, seed=0):
    """The 95 % paired interval of metric(B) - metric(A) of `modrl eval --compare`."""
    np = _np()
    draws = splitmix_draws(len(labels), n_resamples, seed)
    Y = np.asarray(labels)[draws]
    f = ROW_METRICS[metric]
    return _interval(f(np.asarray(scores_b)[draws], Y) - f(np.asarray(scores_a)[draws], Y))


# --- what the committed files should say ---------------------------------------------------------

def eval_metrics(scores_path, val_path=None, threshold=None, bootstrap=True):
    """metrics.json's headline fields recomputed from a scores file. The threshold is the best-F1
    threshold on `val_path` when given, else `threshold` (e.g. the one metrics.json names)."""
    sc = Scores(scores_path)
    s, y = sc.scores, sc.labels
    n, n_pos = len(y), sum(y)
    m = {
        "n": n,
        "n_pos": n_pos,
        "prevalence": n_pos / n if n else None,
        "pr_auc": average_precision(s, y),
        "roc_auc": roc_auc(s, y),
        "recall_at_precision_0.9": recall_at_precision(s, y, 0.9),
        "recall_at_fpr_0.01": recall_at_fpr(s, y, 0.01),
        "f1_flag_all": 2 * n_pos / (n + n_pos) if n_pos else None,
        "ece": ece(s, y) if n else None,
        "format_failure_rate": sum(1 for ok in sc.format_ok if not ok) / n if n else None,
    }
    if val_path and os.path.isfile(val_path):
        v = Scores(val_path)
        if 0 < sum(v.labels) < len(v.labels):
            threshold = best_f1_threshold(v.scores, v.labels)
            m["threshold"] = threshold
    if threshold is not None and n_pos:
        m.update(at_threshold(s, y, threshold))
    failures = {}
    for ok, kind in zip(sc.format_ok, sc.failures):
        if not ok:
            failures[kind] = failures.get(kind, 0) + 1
    m["failure_counts"] = failures
    per_slice = {}
    for tag in sorted({t for tags in sc.slices for t in tags}):
        ss = [x for x, tags in zip(s, sc.slices) if tag in tags]
        sl = [x for x, tags in zip(y, sc.slices) if tag in tags]
        k = sum(sl)
        at = at_threshold(ss, sl, threshold) if threshold is not None else {}
        per_slice[tag] = {
            "n": len(sl),
            "n_pos": k,
            "pr_auc": average_precision(ss, sl) if 0 < k < len(sl) else None,
            "f1": at.get("f1") if k > 0 else None,
            "fpr": at.get("false_flag_rate") if k < len(sl) else None,
        }
    m["per_slice"] = per_slice
    if bootstrap and m["pr_auc"] is not None:
        m["pr_auc_ci"] = bootstrap_ci(s, y, "pr_auc")
    return m


def compare(a_path, b_path, limit=None, n_resamples=1000, seed=0):
    """`modrl eval --compare A B` recomputed: A's rows in file order joined with B's on id (the
    first `limit` rows of each file when given)."""
    a, b = Scores(a_path, limit), Scores(b_path, limit)
    by_id = {i: (s, y) for i, s, y in zip(b.ids, b.scores, b.labels)}
    sa, sb, labels = [], [], []
    for i, s, y in zip(a.ids, a.scores, a.labels):
        if i in by_id:
            if by_id[i][1] != y:
                raise ValueError(f"{a_path} vs {b_path}: item {i} has different labels")
            sa.append(s)
            sb.append(by_id[i][0])
            labels.append(y)
    out = {"n": len(labels), "n_pos": sum(labels)}
    for metric, f in POINT_METRICS.items():
        va, vb = f(sa, labels), f(sb, labels)
        out[metric] = {"a": va, "b": vb, "diff": vb - va,
                       "ci": paired_bootstrap_ci(sa, sb, labels, metric, n_resamples, seed)}
    return out


# --- bench/ray_classify.py: the table of its page, from its raw runs -----------------------------

RAY_CONFIGS = [
    ("classify", "`modrl classify` (one process, 2 libtorch threads)"),
    ("ray-1", "Ray Data, 1 actor (2 threads)"),
    ("ray-2", "Ray Data, 2 actors (1 thread each)"),
]


def ray_classify_table(runs):
    """Markdown lines of docs/results/ray-classify.md from its runs.jsonl rows ({"config",
    "round", "rows", "wall_s", "load1"}): median and min-max wall time and items/s per config, and
    the ratio of medians against `modrl classify` and against 1 actor."""
    by = {}
    for r in runs:
        by.setdefault(r["config"], []).append(r)
    med = {}
    out = ["| configuration | runs | rows | wall s, median [min, max] | items/s, median [min, max] | vs `modrl classify` | vs 1 actor |",
           "|---|---:|---:|---|---|---:|---:|"]
    for key, _ in RAY_CONFIGS:
        if key in by:
            walls = sorted(r["wall_s"] for r in by[key])
            med[key] = _quantile(walls, 0.5)
    for key, name in RAY_CONFIGS:
        rs = by.get(key)
        if not rs:
            continue
        rows = rs[0]["rows"]
        walls = sorted(r["wall_s"] for r in rs)
        rates = sorted(rows / w for w in walls)
        m = med[key]
        vs = lambda base: "-" if base not in med or base == key else f"{med[base] / m:.2f}x"
        out.append(f"| {name} | {len(rs)} | {rows} | {m:.1f} [{walls[0]:.1f}, {walls[-1]:.1f}] | "
                   f"{rows / m:.2f} [{rates[0]:.2f}, {rates[-1]:.2f}] | {vs('classify')} | {vs('ray-1')} |")
    return out


# --- the scaling study (docs/results/scaling.md) -------------------------------------------------

SCALING_RUNS = [  # (run folder name, what it is)
    ("sft-rl-steps", "SFT then RL, lr 1e-4, 120 steps"),
    ("sft-rl-steps-lr3e-4", "SFT then RL, lr 3e-4, 160-step schedule (stopped at 48)"),
    ("rl-steps", "RL only (base model), lr 2e-4, 60-step schedule (stopped at 10: collapsed)"),
    ("rl-kl0.5", "RL only + KL to the base (beta 0.5), lr 2e-4, 60 steps"),
    ("rl-kl0.5-fmt", "RL only + KL (beta 0.5) + format term, lr 2e-4, 60 steps"),
    ("rl-kl0.5-fmt-qwen05b", "the same recipe on Qwen2.5-Coder-0.5B-Instruct (model size)"),
    ("labels-120", "the `rl-kl0.5-fmt` recipe on 120 labels (8 passes)"),
    ("labels-480", "the `rl-kl0.5-fmt` recipe on 480 labels (2 passes)"),
    ("rl-kl0.5-fmt-seed1", "`rl-kl0.5-fmt` with seed 1 (other 960 labels, order and LoRA init)"),
    ("rl-kl0.5-fmt-seed2", "`rl-kl0.5-fmt` with seed 2"),
    ("labels-3000-s188", "the `rl-kl0.5-fmt` recipe on 3000 labels, 188 steps (one pass)"),
    ("labels-960-s120", "the `rl-kl0.5-fmt` recipe on 960 labels, 120 steps (2 passes)"),
    ("labels-960-s188", "the `rl-kl0.5-fmt` recipe on 960 labels, 188 steps (3.1 passes)"),
    ("g2", "SFT then RL, sampled, G = 2 (stopped at 10: collapsed)"),
    ("g4", "SFT then RL, sampled, G = 4"),
    ("g8", "SFT then RL, sampled, G = 8"),
    ("g16", "SFT then RL, sampled, G = 16"),
]


def scaling_points(folder, runs):
    """(run, its second field, points) for each run of `runs` with a NAME.points.jsonl in folder."""
    for name, x in runs:
        path = os.path.join(folder, f"{name}.points.jsonl")
        if os.path.exists(path):
            yield name, x, read_jsonl(path)


def scaling_curve_table(folder):
    """Markdown lines: validation PR-AUC at every evaluation of every run (step 0 = the start)."""
    out = ["| run | what | validation PR-AUC at step 0, 10, 20, ... | rollout tokens at the end |",
           "|---|---|---|---:|"]
    for name, what, pts in scaling_points(folder, SCALING_RUNS):
        curve = " ".join(f"{p['pr_auc']:.3f}" for p in pts)
        out.append(f"| `{name}` | {what} | {curve} | {pts[-1]['rollout_tokens']} |")
    return out


LABEL_RUNS = [("labels-120", 120), ("labels-480", 480), ("rl-kl0.5-fmt", 960), ("labels-960-s120", 960),
              ("labels-960-s188", 960), ("labels-3000-s188", 3000)]


def scaling_labels_table(folder):
    """Markdown lines: the labels axis (the same RL-only recipe on N labels, 60 steps, or 188 for
    the -s188 runs): validation PR-AUC at the start, at steps 30, 60 and 120 and at the end, from
    NAME.points.jsonl."""
    out = ["| training labels | run | last evaluation at step | passes over the labels by then | validation PR-AUC at "
           "step 0 | at step 30 | at step 60 | at step 120 | at the last evaluation |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, n, rows in scaling_points(folder, LABEL_RUNS):
        pts = {p["step"]: p for p in rows}
        last = max(pts)
        passes = pts[last]["prompts"] / n
        cell = lambda s: f"{pts[s]['pr_auc']:.3f}" if s in pts else "-"
        out.append(f"| {n} | `{name}` | {last} | {passes:.2g} | {cell(0)} | {cell(30)} | {cell(60)} | {cell(120)} "
                   f"| {cell(last)} |")
    return out


def _ci(fit, key, spec):
    ci = fit.get(f"ci_{key}")
    v = format(fit[key], spec)
    return f"{v} [{format(ci[0], spec)}, {format(ci[1], spec)}]" if ci else v


def scaling_fit_table(folder):
    """Markdown lines: the sigmoid fit of each run with a committed NAME.fit.json."""
    out = ["| run | points | R0 [95% CI] | A (asymptote) [95% CI] | B [95% CI] | C_mid, train tokens [95% CI] "
           "| RMSE | hold-out: fit on the first half, mean abs error on the rest |",
           "|---|---:|---|---|---|---|---:|---:|"]
    for name, _ in SCALING_RUNS:
        path = os.path.join(folder, f"{name}.fit.json")
        if not os.path.exists(path):
            continue
        f = read_json(path)
        ho = f.get("holdout")
        hold = f"{ho['mae']:.4f} ({ho['n_fit']} fit, {ho['n_pred']} predicted)" if ho else "-"
        out.append(f"| `{name}` | {f['n']} | {_ci(f, 'r0', '.3f')} | {_ci(f, 'a', '.3f')} | {_ci(f, 'b', '.2f')} | "
                   f"{_ci(f, 'c_mid', '.3g')} | {f['rmse']:.4f} | {hold} |")
    return out


# --- the reward-hacking study (docs/results/reward-shaping.md) -----------------------------------

SHAPING_ARMS = [  # (run folder under reward-shaping/, what it is)
    ("acc", "accuracy + format"),
    ("shaped", "+ length band + rubric"),
    ("rl-only", "RL only: accuracy + format"),
]
SHAPING_METRICS = [  # (metrics.jsonl key, row name, format)
    ("monitors/reasoning_words", "reasoning words", ".1f"),
    ("completions/mean_terminated_length", "tokens of finished answers", ".1f"),
    ("completions/clipped_ratio", "cut at the token budget", ".2f"),
    ("rewards/accuracy/mean", "accuracy reward", ".2f"),
    ("rewards/format/mean", "format reward", ".2f"),
    ("rewards/length/mean", "length reward (band)", ".2f"),
    ("rewards/rubric_rules/mean", "rubric_rules reward", ".2f"),
    ("monitors/instruction_hallucination_rate", "instruction hallucination", ".2f"),
    ("factuality", "factuality hallucination (of quoting answers)", ".2f"),
]


def shaping_windows(rows, width):
    """[(first step, last step)] of consecutive windows of `width` steps."""
    last = max(r["step"] for r in rows)
    return [(lo, min(lo + width - 1, last)) for lo in range(1, last + 1, width)]


def shaping_value(rows, key):
    """The window's mean of `key`; "factuality" pools the quoting answers of the window: each
    step's rate weighted by its share of quoting answers (every step has the same number of
    answers, so the shares weigh as the counts would), None when none quoted."""
    if key == "factuality":
        quoting = [r.get("monitors/quoting_rate", 0.0) for r in rows]
        bad = sum(r.get("monitors/factuality_hallucination_rate", 0.0) * q for r, q in zip(rows, quoting))
        return bad / sum(quoting) if sum(quoting) > 0 else None
    vals = [r[key] for r in rows if key in r]
    return sum(vals) / len(vals) if vals else None


def shaping_table(folder, width=5):
    """Markdown lines: every arm's monitors and rewards as means over windows of `width` RL steps,
    from reward-shaping/ARM/metrics.jsonl."""
    arms = [(a, w) for a, w in SHAPING_ARMS if os.path.exists(os.path.join(folder, a, "metrics.jsonl"))]
    if not arms:
        return []
    runs = {a: [r for r in read_jsonl(os.path.join(folder, a, "metrics.jsonl")) if r.get("stage") == "rl"]
            for a, _ in arms}
    wins = shaping_windows(runs[arms[0][0]], width)
    out = ["| arm | per step, mean over steps | " + " | ".join(f"{lo}-{hi}" for lo, hi in wins) + " |",
           "|---|---|" + "---:|" * len(wins)]
    for arm, what in arms:
        # The first arm's windows; "-" past the end of a shorter run.
        per_window = [[r for r in runs[arm] if lo <= r["step"] <= hi] for lo, hi in wins]
        for key, name, spec in SHAPING_METRICS:
            cells = []
            for rows in per_window:
                v = shaping_value(rows, key) if rows else None
                cells.append("-" if v is None else format(v, spec))
            out.append(f"| `{arm}` ({what}) | {name} | " + " | ".join(cells) + " |")
    return out


# --- the engine benchmark (docs/results/bench-engine.md) ----------------------------------------

ENGINE_SIDES = {"ours": "ours", "peer": "peer", "peer_prefix": "peer, prefix reused"}


def engine_kept(runs, bench, side):
    """Timed runs of one side of one benchmark that count (not warm-ups, not over the load cap)."""
    return [r for r in runs if r["bench"] == bench and r["side"] == side and not r["discarded"]]


def _engine_median(runs, bench, side, key="rate"):
    xs = sorted(r[key] for r in engine_kept(runs, bench, side))
    return _quantile(xs, 0.5) if xs else float("nan")


def _layer_dims(cfg):
    """(hidden, query width, key/value width, weights of one layer's seven projections)."""
    d = cfg["hidden_size"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    return d, q, kv, d * q + 2 * d * kv + q * d + 3 * d * cfg["intermediate_size"]


def engine_forward_flops(cfg, n_tokens, ctx_pairs, logit_rows):
    """Matmul FLOPs of a dense forward: the seven projections of every layer for n_tokens tokens,
    attention (QK^T and PV) over ctx_pairs query-key pairs per layer, and the vocabulary
    projection for logit_rows positions. Norms, RoPE, softmax and activations are not counted."""
    d, q, _, proj = _layer_dims(cfg)
    return cfg["num_hidden_layers"] * (n_tokens * 2 * proj + 4 * q * ctx_pairs) + 2 * d * cfg["vocab_size"] * logit_rows


def _causal_pairs(start, n):
    """Query-key pairs of n causal queries after `start` cached positions."""
    return n * start + n * (n + 1) // 2


def engine_flops(cfg, bench):
    """FLOPs of one run of a benchmark, (ours, peer): a training step is 3x its forward (backward =
    2x forward); scoring counts what each side computes: the peer every prompt whole, ours the
    shared prefix once and each prompt's suffix after it."""
    if bench["task"] == "train":
        b, t = bench["batch"], bench["seq"]
        f = 3 * engine_forward_flops(cfg, b * t, b * _causal_pairs(0, t), b * t)
        return f, f
    if bench["task"] == "score":
        p, lens = bench["prefix_tokens"], bench["prompt_lens"]
        full = engine_forward_flops(cfg, sum(lens), sum(_causal_pairs(0, x) for x in lens), len(lens))
        shared = engine_forward_flops(cfg, p, _causal_pairs(0, p), 0) + engine_forward_flops(
            cfg, sum(x - p for x in lens), sum(_causal_pairs(p, x - p) for x in lens), len(lens))
        return shared, full
    return None


def engine_fastest_rate(runs, meta):
    """The fastest matrix products (GFLOP/s) an engine benchmark run reached on its machine: any
    kept GEMM run or training step (whose products can beat one 2048-cube product), either side."""
    rates = []
    for b in meta["benchmarks"]:
        kept = [r for r in runs if r["bench"] == b["name"] and not r["discarded"]]
        if b["task"] == "gemm":
            rates += [r["rate"] for r in kept]
        elif b["task"] == "train":
            f = engine_flops(meta["model_config"], b)[0]
            rates += [f / r["seconds"] / 1e9 for r in kept]
    return max(rates)


def bench_engine_lines(runs, meta):
    """The data-bearing lines of docs/results/bench-engine.md, from its runs.jsonl rows ({"bench",
    "side", "run", "seconds", "rate", "discarded", "load_before", ...}) and meta.json (the
    benchmarks' shapes, the model's dimensions, the load cap): the throughput tables, the scores'
    agreement, the GEMM peak and MFU table, and the training phases, by section. meta's "dtype"
    (default f32; bench/gpu.sh also measures bf16) names the weights' type in the text."""
    sec = {k: [] for k in ("throughput", "scoring", "agreement", "limit", "memory", "phases", "goals")}
    dtype = meta.get("dtype", "f32")
    out = sec["throughput"]
    cap = meta["max_load"]
    benches = meta["benchmarks"]

    def runs_cell(name, sides):
        return "; ".join(f"{len(k)}: " + ", ".join(f"{r['rate']:.1f}" for r in k)
                         for k in (engine_kept(runs, name, s) for s in sides))

    def load_cell(name):
        xs = [r for r in runs if r["bench"] == name and r["run"] > 0]
        loads = [r["load_before"][0] for r in xs]
        dropped = sum(r["discarded"] for r in xs)
        return f"{min(loads):.1f}-{max(loads):.1f}" + (f" ({dropped} over {cap:g} dropped)" if dropped else "")

    med = lambda name, side: _engine_median(runs, name, side)
    out += ["| benchmark | shape | ours tok/s | peer tok/s | ratio ours/peer | best-run ratio "
            "| runs: ours; peer (tok/s) | load avg (1 min) before runs |",
            "|---|---|---:|---:|---:|---:|---|---|"]
    for b in benches:
        n = b["name"]
        if b["task"] == "gen":
            label = f"generation, batch {b['batch']}"
            shape = (f"B={b['batch']}, prompts {b['prompt_len_min']}-{b['prompt_len_max']} tok, "
                     f"{b['max_new_tokens']} new tok/row")
        elif b["task"] == "train":
            label = f"training step, {b['batch']} x {b['seq']}"
            shape = f"B={b['batch']}, T={b['seq']}, AdamW lr={b['lr']:g}"
        else:
            continue
        mo, mp = med(n, "ours"), med(n, "peer")
        best = (max(r["rate"] for r in engine_kept(runs, n, "ours"))
                / max(r["rate"] for r in engine_kept(runs, n, "peer")))
        out.append(f"| {label} | {shape} | {mo:.1f} | {mp:.1f} | {mo / mp:.2f} | {best:.2f} | "
                   f"{runs_cell(n, ['ours', 'peer'])} | {load_cell(n)} |")
    scores = [b for b in benches if b["task"] == "score"]
    out = sec["scoring"]
    if scores:
        out += ["| benchmark | shape | ours items/s | peer items/s | peer, prefix reused items/s "
                "| ours / peer | ours / peer, prefix reused | runs: ours; peer; peer, prefix reused (items/s) "
                "| load avg (1 min) before runs |",
                "|---|---|---:|---:|---:|---:|---:|---|---|"]
        for b in scores:
            n = b["name"]
            m = {s: med(n, s) for s in ENGINE_SIDES}
            shape = (f"{b['items']} prompts of {b['prompt_len_min']}-{b['prompt_len_max']} tok "
                     f"(shared prefix {b['prefix_tokens']}), B={b['batch']}")
            out.append(f"| verdict-token scoring, batch {b['batch']} | {shape} | {m['ours']:.1f} | "
                       f"{m['peer']:.1f} | {m['peer_prefix']:.1f} | {m['ours'] / m['peer']:.2f} | "
                       f"{m['ours'] / m['peer_prefix']:.2f} | {runs_cell(n, list(ENGINE_SIDES))} | {load_cell(n)} |")
        for b in scores:
            d = b["max_abs_prob_diff"]
            sec["agreement"].append(f"Same scores on every side: the largest difference of P(violating | the two "
                       f"label tokens) between ours and the peer over the {b['items']} items is "
                       f"{d['peer']:.1e}, and {d['peer_prefix']:.1e} with the prefix reused.")
    gemm = [b for b in benches if b["task"] == "gemm"]
    reused_rate = {}  # scoring benchmark -> the peer's GFLOP/s with the prefix reused (ours' FLOPs)
    out = sec["limit"]
    if gemm:
        g = gemm[0]
        peak = {s: med(g["name"], s) for s in ("ours", "peer")}
        out.append(f"GEMM peak: a{'n' if dtype == 'f32' else ''} {dtype} {g['n']} x {g['n']} by {g['n']} x {g['n']} matrix product in "
                   f"libtorch, same threads: ours {peak['ours']:.1f} GFLOP/s, peer {peak['peer']:.1f} "
                   f"GFLOP/s (median of {runs_cell(g['name'], ['ours', 'peer'])} GFLOP/s).")
        out += ["| what | FLOPs per run, ours / peer (G) | ours GFLOP/s | ours MFU | peer GFLOP/s | peer MFU |",
                "|---|---:|---:|---:|---:|---:|"]
        for b in benches:
            f = engine_flops(meta["model_config"], b)
            if f is None:
                continue
            what = (f"training step {b['batch']} x {b['seq']}" if b["task"] == "train" else
                    f"verdict-token scoring of {b['items']} prompts (peer: whole prompts; ours: prefix once)")
            so = _engine_median(runs, b["name"], "ours", "seconds")
            sp = _engine_median(runs, b["name"], "peer", "seconds")
            go, gp = f[0] / so / 1e9, f[1] / sp / 1e9
            out.append(f"| {what} | {f[0] / 1e9:.1f} / {f[1] / 1e9:.1f} | {go:.1f} | {go / peak['ours']:.0%} | "
                       f"{gp:.1f} | {gp / peak['peer']:.0%} |")
            if b["task"] == "score":
                # The peer with the prefix reused does ours' work: same FLOPs, so the ratio of the
                # two sides is the ratio of their MFUs, and 3x would need 3x ours' MFU of the peer's.
                gr = reused_rate[b["name"]] = f[0] / _engine_median(runs, b["name"], "peer_prefix", "seconds") / 1e9
                out.append(f"| the same, peer with the prefix reused (ours' work) | {f[0] / 1e9:.1f} / "
                           f"{f[0] / 1e9:.1f} | {go:.1f} | {go / peak['ours']:.0%} | {gr:.1f} | "
                           f"{gr / peak['peer']:.0%} |")
    copy = [b for b in benches if b["task"] == "copy"]
    gen1 = [b for b in benches if b["task"] == "gen" and b["batch"] == 1]
    if copy and gen1:
        c, g1 = copy[0], gen1[0]
        bw = {s: med(c["name"], s) for s in ("ours", "peer")}
        mc = meta["model_config"]
        d, _, _, proj = _layer_dims(mc)
        weights = mc["num_hidden_layers"] * (proj + 2 * d) + mc["vocab_size"] * d + d
        mb = (2 if dtype == "bf16" else 4) * weights / 1e6
        sec["memory"].append(f"Memory: copying {c['mib']} MiB of f32 four times into a touched buffer moves ours {bw['ours']:.1f} GB/s, peer "
                   f"{bw['peer']:.1f} GB/s (read + write; median of {runs_cell(c['name'], ['ours', 'peer'])} "
                   f"GB/s). Greedy decoding at batch 1 reads every weight once per token ({mb:.0f} MB "
                   f"of {dtype}, the vocabulary projection included), so at that bandwidth it cannot pass "
                   f"{1e3 * bw['ours'] / mb:.1f} tokens/s; generation at batch 1 made "
                   f"{med(g1['name'], 'ours'):.1f} (ours) and {med(g1['name'], 'peer'):.1f} (peer), "
                   f"prefill included.")
    for b in benches:
        n = b["name"]
        if b["task"] == "gen":
            r = med(n, "ours") / med(n, "peer")
            sec["goals"].append(f"- generation at batch {b['batch']}: ours / transformers {r:.2f}x against the goal "
                                f"of 1.5x: {'met' if r >= 1.5 else 'not met'}")
        elif b["task"] == "train":
            r = med(n, "ours") / med(n, "peer")
            sec["goals"].append(f"- training step {b['batch']} x {b['seq']}: ours / PyTorch {r:.2f}x")
        elif b["task"] == "score":
            r, rp = med(n, "ours") / med(n, "peer"), med(n, "ours") / med(n, "peer_prefix")
            sec["goals"].append(f"- verdict-token scoring: ours / transformers batched {r:.2f}x, ours / transformers "
                                f"with the prefix reused {rp:.2f}x, against the goal of 3x: "
                                f"{'met' if r >= 3 else 'not met'} and {'met' if rp >= 3 else 'not met'}")
            if n in reused_rate and rp < 3:
                # Same FLOPs on both sides: even at the fastest rate measured ours cannot pass the
                # peer's rate by more than (that rate) / (the peer's achieved rate).
                f, gr = engine_flops(meta["model_config"], b)[0], reused_rate[n]
                pk = engine_fastest_rate(runs, meta)
                sec["goals"].append(f"  - the bound: with the prefix reused both sides do the same {f / 1e9:.1f} "
                                    f"GFLOP, and the peer does them at {gr:.1f} GFLOP/s; at the fastest "
                                    f"matrix-product rate any run here reached ({pk:.1f} GFLOP/s, GEMM or "
                                    f"training step) ours would be {pk / gr:.2f}x the peer: 3x is out of "
                                    f"reach on this machine in {dtype} without doing less work than the peer")
    for b in benches:
        if b["task"] != "train":
            continue
        n = b["name"]
        ph = ("forward_loss", "backward", "optimizer")
        po = {k: _quantile(sorted(r["phases"][k] for r in engine_kept(runs, n, "ours")), 0.5) for k in ph}
        pp = {k: _quantile(sorted(r["phases"][k] for r in engine_kept(runs, n, "peer")), 0.5) for k in ph}
        lo = [r["loss"] for r in runs if r["bench"] == n and r["side"] == "ours"]
        lp = [r["loss"] for r in runs if r["bench"] == n and r["side"] == "peer"]
        sec["phases"].append(
            f"Training {b['batch']} x {b['seq']}, median seconds per phase, ours / peer: forward+loss "
            f"{po['forward_loss']:.2f} / {pp['forward_loss']:.2f}, backward {po['backward']:.2f} / "
            f"{pp['backward']:.2f}, optimizer {po['optimizer']:.2f} / {pp['optimizer']:.2f}. "
            "Loss before each step in run order, warm-up first (same data every step; ours / peer): "
            + ", ".join(f"{x:.4f}" for x in lo) + " / " + ", ".join(f"{x:.4f}" for x in lp) + ".")
    return sec


# --- the serving load test (docs/results/load-test.md) -------------------------------------------

def _nearest_rank(sorted_values, q):
    """bench/load_test.py's percentile: the value at round(q * (n - 1)) of the sorted values."""
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def load_test_lines(rows, flops=None):
    """The table of docs/results/load-test.md and its throughput ratio, from its requests.jsonl
    (bench/load_test.py --raw: one "level" row per level with its wall time and load average, one
    "request" row per request with its latency and status); with flops (load-test/flops.json), the
    matrix-product rate of each level and the bound it puts on batching."""
    levels = [r for r in rows if r["kind"] == "level"]
    out = ["| clients | requests | ok req/s | p50 ms | p90 ms | p99 ms | max ms | status codes | load avg before-after |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    rate = {}
    for lv in levels:
        reqs = [r for r in rows if r["kind"] == "request" and r["label"] == lv["label"]]
        ok = sorted(r["latency_ms"] for r in reqs if r["code"] == "200")
        codes = {}
        for r in reqs:
            codes[r["code"]] = codes.get(r["code"], 0) + 1
        rate[lv["label"]] = len(ok) / lv["wall_s"]
        cells = [f"{_nearest_rank(ok, q):.1f}" for q in (0.5, 0.9, 0.99)] + [f"{ok[-1]:.1f}"] if ok else ["-"] * 4
        out.append(f"| {lv['label']} | {len(reqs)} | {rate[lv['label']]:.2f} | " + " | ".join(cells) + " | "
                   + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))
                   + f" | {lv['load_before'][0]:.2f}-{lv['load_after'][0]:.2f} |")
    if "1" in rate:
        for label in rate:
            if label != "1" and "queue" not in label:
                out.append(f"Throughput at {label} clients / at 1 client: {rate[label] / rate['1']:.2f}x.")
    if flops and "1" in rate:
        out += load_test_flops_lines(rows, flops)
    return out


def load_test_flops_lines(rows, flops):
    """The matrix-product work of each level's answered requests (bench/load_flops.py's flops.json:
    the cached prefix, every text's suffix tokens, the clients' seed), the rate the server reached
    and the bound that rate puts on batching's gain against the machine's fastest measured rate."""
    import random
    cfg, p, suf = flops["model_config"], flops["prefix_tokens"], flops["suffix_tokens"]
    out = []
    for lv in [r for r in rows if r["kind"] == "level" and "queue" not in r["label"]]:
        reqs = [r for r in rows if r["kind"] == "request" and r["label"] == lv["label"]]
        # bench/load_test.py: texts drawn in sequence under a lock from Random(seed + clients), one per
        # request sent, so the k-th request sent (in any thread) scored the k-th draw.
        rng = random.Random(flops["seed"] + lv["clients"])
        drawn = [rng.randrange(len(suf)) for _ in reqs]
        work = sum(engine_forward_flops(cfg, suf[i], _causal_pairs(p, suf[i]), 1) for i in drawn)
        rate = work / lv["wall_s"] / 1e9
        line = (f"- {lv['label']} client(s): {work / len(reqs) / 1e9:.2f} GFLOP per request (mean suffix "
                f"{sum(suf[i] for i in drawn) / len(drawn):.1f} tokens after the {p}-token cached prefix), "
                f"{rate:.1f} GFLOP/s of matrix products, {rate / flops['peak_gflop_per_s']:.0%} of the fastest "
                f"rate measured on this machine")
        if lv["label"] == "1":
            line += (f"; 3x this throughput would need {3 * rate:.1f} GFLOP/s, "
                     f"{3 * rate / flops['peak_gflop_per_s']:.1f}x that fastest rate "
                     f"({flops['peak_gflop_per_s']:.1f} GFLOP/s)")
        out.append(line)
    return out


# --- one GRPO step vs TRL (docs/results/bench-grpo.md) -------------------------------------------

def grpo_lines(doc):
    """The table of one regime of docs/results/bench-grpo.md from its bench-grpo/REGIME.json
    (bench/grpo.sh): per side the median and range of the timed steps (every step of a run but its
    first), completion tokens, cut completions, reward, and the phase times (modrl's from its
    metrics; TRL's from bench/grpo_trl.py's timers, its forward + backward = the step minus
    generate-and-score and the optimizer); TRL / modrl."""
    timed = {s: [r for r in doc["steps"] if r["side"] == s and not r["warmup"]] for s in ("modrl", "trl")}
    # TRL's loss forward + backward: the step minus generate-and-score and the optimizer (bench/grpo_trl.py).
    timed["trl"] = [dict(r, forward_backward_s=r["seconds"] - r["generate_and_score_s"] - r["optimizer_s"])
                    for r in timed["trl"]]

    def med(side, key):
        xs = sorted(r[key] for r in timed[side] if r.get(key) is not None)
        return _quantile(xs, 0.5) if xs else None

    def rng(side):
        xs = sorted(r["seconds"] for r in timed[side])
        return f"{_quantile(xs, 0.5):.1f} [{xs[0]:.1f}, {xs[-1]:.1f}]"

    def num(v, spec):
        return "n/a" if v is None else format(v, spec)

    per_tok = {s: _quantile(sorted(1e3 * r["seconds"] / r["completion_tokens"] for r in timed[s]), 0.5)
               for s in timed}
    def steps(side):
        return ", ".join("%.1f" % r["seconds"] for r in timed[side])

    def phase(label, key, spec=".1f"):
        a, b = med("modrl", key), med("trl", key)
        ratio = f" {b / a:.2f}x " if a and b else " "
        return f"| {label} | {num(a, spec)} | {num(b, spec)} |{ratio}|"

    loads = {s: sorted({r["load_before_run"] for r in doc["steps"] if r["side"] == s}) for s in timed}
    ratio = med("trl", "seconds") / med("modrl", "seconds")
    return [
        f"| {doc['regime']} | modrl | TRL {doc['versions']['trl']} | TRL / modrl |",
        "|---|---:|---:|---:|",
        f"| s / step, median [min, max] | {rng('modrl')} | {rng('trl')} | **{ratio:.2f}x** |",
        f"| timed steps (s), run order | {steps('modrl')} | {steps('trl')} | |",
        f"| completion tokens / step (median) | {med('modrl', 'completion_tokens'):.0f} | "
        f"{med('trl', 'completion_tokens'):.0f} | |",
        f"| ms / completion token (median over steps) | {per_tok['modrl']:.1f} | {per_tok['trl']:.1f} | "
        f"{per_tok['trl'] / per_tok['modrl']:.2f}x |",
        f"| completions cut at {doc['max_completion_length']} tokens (median) | {num(med('modrl', 'clipped'), '.2f')} | "
        f"{num(med('trl', 'clipped'), '.2f')} | |",
        f"| mean reward / step (median) | {num(med('modrl', 'reward'), '.3f')} | {num(med('trl', 'reward'), '.3f')} | |",
        *([f"| groups with all rewards equal, share / step (median) | {num(med('modrl', 'frac_reward_zero_std'), '.2f')} | "
           f"{num(med('trl', 'frac_reward_zero_std'), '.2f')} | |"]
          if any(r.get("frac_reward_zero_std") is not None for r in doc["steps"]) else []),
        phase("rollout generation s / step (median)", "generation_s"),
        phase("rewards s / step (median)", "rewards_s", ".3f"),
        phase("loss forward + backward s / step (median)", "forward_backward_s"),
        phase("optimizer s / step (median)", "optimizer_s", ".3f"),
        f"| load average (1 min) before each run | {', '.join(f'{x:.2f}' for x in loads['modrl'])} | "
        f"{', '.join(f'{x:.2f}' for x in loads['trl'])} | |",
        f"| goal: TRL / modrl >= 2x | | | {'met' if ratio >= 2 else 'not met'} |",
    ]


def classify_lines(run):
    """The table and the exactly-once check of a bench/classify_resume.sh page from its raw run
    file (REPORT-STEM/run.json: the four wall-clock stamps, rows written by each run, and the
    counts of the final file's check)."""
    w1, w2 = run["t1"] - run["t0"], run["t3"] - run["t2"]
    n1, n2 = run["rows_run1"], run["rows_run2"]
    c = run["check"]
    ok = c["duplicated"] == 0 and c["missing"] == 0 and c["unknown"] == 0 and c["unreadable"] == 0 and c["keys_ok"]
    return [
        "| | rows written | wall s | items/s |",
        "|---|---:|---:|---:|",
        f"| run 1, killed with SIGKILL after {run['kill_after']} s | {n1} | {w1:.0f} | {n1 / w1:.1f} (incl. model load) |",
        f"| run 2, same command (skips the {n1} ids already written) | {n2} | {w2:.0f} | {n2 / w2:.1f} (incl. model load) |",
        f"| total | {n1 + n2} | {w1 + w2:.0f} | {(n1 + n2) / (w1 + w2):.1f} |",
        "",
        f"Check of the final file against the {c['input_ids']} input ids: **{'one result per id' if ok else 'FAILED'}** —",
        f"{c['distinct']} distinct ids, {c['duplicated']} duplicated, {c['missing']} missing, {c['unknown']} unknown, "
        f"{c['unreadable']} unreadable lines,",
        f"every row has `id`, `label`, `score`: {c['keys_ok']}; {c['rejects']} rows in the rejects file. The {n1} rows "
        "written before the kill",
        f"are unchanged at the start of the final file: {c['prefix_unchanged']}. Flagged (score >= 0.5): {c['flagged']} "
        f"of {n1 + n2}.",
        f"Load average (1 min) before run 1: {run['load_before'][0]:.2f}, before run 2: {run['load_before'][1]:.2f}. "
        f"Peak memory of run 2 (host RAM): {run['peak_rss_gb']:.2f} GB (0 = not measured).",
    ]


def write_page(path, lines):
    """Write a generated results page (its lines joined by newlines) and say so on stderr."""
    import sys
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)
