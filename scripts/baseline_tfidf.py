#!/usr/bin/env python3
"""Classical content-moderation baseline: TF-IDF + logistic regression.

Trains a bag-of-n-grams classifier on the same labels an LLM run used and scores the same
validation and test items, so its PR-AUC can sit next to the LLM's in a report.

Features: the union of two TF-IDF vectorisers fitted on the training texts only,
  * word 1-2-grams (lower-cased, sublinear tf), and
  * character 2-5-grams inside word boundaries (``char_wb``, lower-cased, sublinear tf).
Classifier: L2 logistic regression (liblinear). C is chosen among a small grid by average
precision (PR-AUC) on the validation items; ties go to the smaller C. The model is fitted on the
training items only (validation items are used for the choice of C and never for fitting).

Usage (from the repository root)::

    .venv/bin/python scripts/baseline_tfidf.py --data runs/data/prompt-harm.jsonl \\
        --out runs/baseline-tfidf --train-ids RUN/train_ids.txt --val-limit 200 --limit 1000

Input: canonical JSONL, one object per line with at least ``id`` (string; an integer is
accepted), ``text`` (non-empty string) and ``label`` (0/1 or false/true, 1 = violating);
optional ``split`` (``train``, ``val``/``validation``/``dev``, ``test``), ``categories``,
``slices``; other keys are ignored. Blank lines are skipped. Ids must be unique.

Training set:
  * ``--train-ids FILE``: exactly the ids listed (one per line, blank lines ignored), whatever
    their split: use the list an LLM run trained on. An id not in the data is an error naming
    the file and line.
  * otherwise the ``--train-split`` records, shuffled with ``--seed``; with ``--max-train N``
    at most N of them, ``round(N * --positive-fraction)`` positives first and negatives filling
    the rest (``--positive-fraction none`` keeps the natural prevalence). This mirrors the
    trainer's rule but not its random generator, so for an exact match use ``--train-ids``.
Validation: the first ``--val-limit`` records of ``--val-split`` in file order (``--val-split
none``: no validation, C = 1). Test: the first ``--limit`` records of ``--split`` in file order,
the same rule ``modrl eval --limit`` uses, so the ids line up with an LLM evaluation. A file
without any ``split`` field is all test data (as in ``modrl eval``) and needs ``--train-ids``.

Output in ``--out``:
  * ``scores.jsonl`` (test) and ``val_scores.jsonl`` (validation): one object per line,
    ``{"id", "label", "score", "split"}`` (plus ``categories``/``slices`` when the record has
    them), ``score`` = P(violating) in [0, 1]; the format of ``modrl eval``'s score files.
  * ``baseline.json``: training-set size and positives, the chosen C and the validation PR-AUC
    of every C tried, the vectoriser and classifier settings, validation and test PR-AUC and
    ROC-AUC (``null`` where undefined, e.g. one class only), elapsed seconds.

Bad input (missing file, malformed JSON line, missing or invalid field, unknown id) prints one
message naming the file and line to stderr and exits with status 2. The result is deterministic
for a given seed.
"""

import argparse
import json
import os
import random
import sys
import time

SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
DEFAULT_C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
WORD_SETTINGS = {
    "analyzer": "word",
    "ngram_range": [1, 2],
    "lowercase": True,
    "sublinear_tf": True,
    "min_df": 1,
    "token_pattern": r"(?u)\b\w+\b",
}
CHAR_SETTINGS = {
    "analyzer": "char_wb",
    "ngram_range": [2, 5],
    "lowercase": True,
    "sublinear_tf": True,
    "min_df": 1,
}


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


def warn(msg):
    print(f"baseline_tfidf: warning: {msg}", file=sys.stderr)


def short(value, limit=60):
    s = json.dumps(value, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + "..."


def parse_split(name):
    """The canonical split name for `name`, or None when it is not one."""
    return SPLIT_ALIASES.get(name.strip().lower())


# ----------------------------------------------------------------------------- reading


def parse_record(path, line_no, line):
    def err(field, msg):
        where = f"{path}:{line_no}:"
        return InputError(f"{where} field {json.dumps(field)}: {msg}" if field else f"{where} {msg}")

    try:
        obj = json.loads(line.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise err(None, f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(obj, dict):
        raise err(None, f"expected a JSON object, got {short(obj)}")

    def field(name):
        v = obj.get(name)
        return v

    rid = field("id")
    if rid is None:
        raise err("id", "missing")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or (
        isinstance(rid, str) and not rid.strip()
    ):
        raise err("id", f"expected a non-empty string, got {short(rid)}")
    rid = str(rid)

    text = field("text")
    if text is None:
        raise err("text", "missing")
    if not isinstance(text, str) or not text.strip():
        raise err("text", f"expected a non-empty string, got {short(text)}")

    label = field("label")
    if label is None:
        raise err("label", "missing")
    if isinstance(label, bool):
        label = int(label)
    elif isinstance(label, (int, float)) and label in (0, 1):
        label = int(label)
    else:
        raise err("label", f"expected 0 or 1, got {short(label)}")

    split = field("split")
    if split is not None:
        if not isinstance(split, str):
            raise err("split", f"expected a string, got {short(split)}")
        canon = parse_split(split)
        if canon is None:
            raise err("split", f'expected "train", "val" or "test", got {json.dumps(split)}')
        split = canon

    rec = {"id": rid, "text": text, "label": label, "split": split}
    for name in ("categories", "slices"):
        v = field(name)
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            rec[name] = v
    return rec


def read_records(path):
    """All records of a canonical JSONL file, in file order."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    records = []
    seen = {}
    try:
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"{path}:{line_no}: line is not valid UTF-8") from None
                if not line.strip():
                    continue
                rec = parse_record(path, line_no, line)
                first = seen.get(rec["id"])
                if first is not None:
                    raise InputError(
                        f'{path}:{line_no}: field "id": duplicate id {json.dumps(rec["id"])} '
                        f"(first seen on line {first})"
                    )
                seen[rec["id"]] = line_no
                records.append(rec)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if not records:
        raise InputError(f"{path}: no records")
    return records


def read_train_ids(path, by_id):
    """The records named in an id file, in file order (repeated ids kept once)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    out = []
    first_line = {}
    repeated = 0
    try:
        with open(path, "r", encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                rid = line.strip()
                if not rid:
                    continue
                if rid in first_line:
                    repeated += 1
                    continue
                rec = by_id.get(rid)
                if rec is None:
                    raise InputError(
                        f"{path}:{line_no}: id {json.dumps(rid)} is not in the data file"
                    )
                first_line[rid] = line_no
                out.append(rec)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if repeated:
        warn(f"{path}: {repeated} repeated ids ignored")
    if not out:
        raise InputError(f"{path}: no ids")
    return out


# ----------------------------------------------------------------------------- selection


def select_train(records, split, max_train, positive_fraction, seed):
    pool = [r for r in records if r["split"] == split]
    random.Random(seed).shuffle(pool)
    if max_train is None:
        return pool
    if positive_fraction is None:
        return pool[:max_train]
    want_pos = int(round(max_train * positive_fraction))
    pos = [r for r in pool if r["label"] == 1][:want_pos]
    neg = [r for r in pool if r["label"] == 0][: max_train - len(pos)]
    out = pos + neg
    random.Random(seed + 1).shuffle(out)
    return out


def first_of_split(records, split, limit):
    out = [r for r in records if r["split"] == split]
    return out if limit is None else out[:limit]


# ----------------------------------------------------------------------------- metrics


def pr_auc(labels, scores):
    from sklearn.metrics import average_precision_score

    if not labels or 1 not in labels:
        return None
    return float(average_precision_score(labels, scores))


def roc_auc(labels, scores):
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


# ----------------------------------------------------------------------------- main


def parse_args(argv):
    def positive_int(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
        return v

    def fraction(s):
        if s.strip().lower() == "none":
            return None
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or none, got {s!r}") from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or none, got {s!r}")
        return v

    def c_grid(s):
        try:
            vals = [float(x) for x in s.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None
        if not vals or any(not (v > 0 and v < float("inf")) for v in vals):
            raise argparse.ArgumentTypeError(f"expected positive numbers, got {s!r}")
        return sorted(set(vals))

    p = argparse.ArgumentParser(
        prog="baseline_tfidf.py",
        description="TF-IDF (word 1-2 + char_wb 2-5 grams) + logistic regression baseline. "
        "Writes scores.jsonl, val_scores.jsonl and baseline.json into --out.",
        epilog="See the module docstring (top of this file) for the selection rules.",
    )
    p.add_argument("--data", required=True, help="canonical JSONL data file")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--train-ids", help="file with one id per line: exactly the training examples")
    p.add_argument("--train-split", default="train", help="split to train on without --train-ids (default train)")
    p.add_argument("--max-train", type=positive_int, help="cap on training examples without --train-ids")
    p.add_argument("--positive-fraction", type=fraction, default=0.5,
                   help="share of positives kept under --max-train (default 0.5; 'none' = natural prevalence)")
    p.add_argument("--seed", type=int, default=0, help="seed for the training-set draw and the solver (default 0)")
    p.add_argument("--val-split", default="val", help="split used to choose C (default val; 'none' = no validation)")
    p.add_argument("--val-limit", type=positive_int, help="first N validation records in file order (default all)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--limit", type=positive_int, help="first N records of --split in file order (default all)")
    p.add_argument("--c-grid", type=c_grid, default=list(DEFAULT_C_GRID),
                   help="comma-separated C values to try (default %s)" % ",".join(str(c) for c in DEFAULT_C_GRID))
    p.add_argument("--ood-data", help="also score the first --ood-limit records of --split in this "
                   "canonical JSONL file (another source) with the same model")
    p.add_argument("--ood-out", help="output folder for --ood-data (scores.jsonl)")
    p.add_argument("--ood-limit", type=positive_int, help="first N records of --split in --ood-data")
    a = p.parse_args(argv)
    if bool(a.ood_data) != bool(a.ood_out):
        p.error("--ood-data and --ood-out go together")
    for opt in ("train_split", "split"):
        canon = parse_split(getattr(a, opt))
        if canon is None:
            p.error(f"--{opt.replace('_', '-')}: expected train, val or test, got {getattr(a, opt)!r}")
        setattr(a, opt, canon)
    if a.val_split.strip().lower() == "none":
        a.val_split = None
    else:
        canon = parse_split(a.val_split)
        if canon is None:
            p.error(f"--val-split: expected train, val, test or none, got {a.val_split!r}")
        a.val_split = canon
    return a


def write_scores(path, rows, scores):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r, s in zip(rows, scores):
            obj = {"id": r["id"], "label": r["label"], "score": min(1.0, max(0.0, float(s))),
                   "split": r["split"]}
            for name in ("categories", "slices"):
                if name in r:
                    obj[name] = r[name]
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def run(a):
    t0 = time.monotonic()
    records = read_records(a.data)
    has_splits = any(r["split"] is not None for r in records)

    if a.train_ids:
        by_id = {r["id"]: r for r in records}
        train = read_train_ids(a.train_ids, by_id)
        train_source = {"train_ids": a.train_ids}
    elif not has_splits:
        raise InputError(f"{a.data}: no record has a \"split\" field; pass --train-ids")
    else:
        train = select_train(records, a.train_split, a.max_train, a.positive_fraction, a.seed)
        train_source = {"train_split": a.train_split, "max_train": a.max_train,
                        "positive_fraction": a.positive_fraction if a.max_train else None}
        if not train:
            raise InputError(f"{a.data}: no records in split {json.dumps(a.train_split)}")

    if has_splits:
        test = first_of_split(records, a.split, a.limit)
        if not test:
            raise InputError(f"{a.data}: no records in split {json.dumps(a.split)}")
        val = first_of_split(records, a.val_split, a.val_limit) if a.val_split else []
    else:
        test = records if a.limit is None else records[: a.limit]
        val = []

    train_labels = [r["label"] for r in train]
    if len(set(train_labels)) < 2:
        raise InputError(f"the training set ({len(train)} examples) has only label "
                         f"{train_labels[0]}; both classes are needed")
    train_ids = {r["id"] for r in train}
    for name, rows in (("test", test), ("validation", val)):
        overlap = sum(r["id"] in train_ids for r in rows)
        if overlap:
            warn(f"{overlap} of the {len(rows)} {name} items are also training items")

    import numpy as np
    import sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    def vec(settings):
        kw = dict(settings)
        kw["ngram_range"] = tuple(kw["ngram_range"])
        return TfidfVectorizer(dtype=np.float64, **kw)

    features = FeatureUnion([("word", vec(WORD_SETTINGS)), ("char", vec(CHAR_SETTINGS))])
    X_train = features.fit_transform([r["text"] for r in train])
    y_train = np.array(train_labels)
    X_val = features.transform([r["text"] for r in val]) if val else None
    X_test = features.transform([r["text"] for r in test])
    val_labels = [r["label"] for r in val]

    def fit(c):
        m = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=a.seed)
        m.fit(X_train, y_train)
        return m

    def proba(m, X):
        return m.predict_proba(X)[:, list(m.classes_).index(1)]

    tried = []
    if val and len(set(val_labels)) == 2:
        best = None
        for c in a.c_grid:
            m = fit(c)
            ap = pr_auc(val_labels, proba(m, X_val))
            tried.append({"C": c, "val_pr_auc": ap})
            if best is None or ap > best[1]:
                best = (c, ap, m)
        chosen_c, model = best[0], best[2]
        c_rule = "max validation PR-AUC (ties: smaller C)"
    else:
        chosen_c = 1.0
        model = fit(chosen_c)
        c_rule = ("default C=1 (no validation items)" if not val
                  else "default C=1 (validation items have one class only)")
        warn(c_rule)

    val_scores = proba(model, X_val) if val else []
    test_scores = proba(model, X_test)
    test_labels = [r["label"] for r in test]

    os.makedirs(a.out, exist_ok=True)
    write_scores(os.path.join(a.out, "scores.jsonl"), test, test_scores)
    write_scores(os.path.join(a.out, "val_scores.jsonl"), val, val_scores)
    ood_summary = None
    if a.ood_data:
        ood_records = read_records(a.ood_data)
        ood = (first_of_split(ood_records, a.split, a.ood_limit)
               if any(r["split"] is not None for r in ood_records) else ood_records[: a.ood_limit])
        if not ood:
            raise InputError(f"{a.ood_data}: no records in split {json.dumps(a.split)}")
        ood_scores = proba(model, features.transform([r["text"] for r in ood]))
        os.makedirs(a.ood_out, exist_ok=True)
        write_scores(os.path.join(a.ood_out, "scores.jsonl"), ood, ood_scores)
        ood_labels = [r["label"] for r in ood]
        ood_summary = {"data": a.ood_data, "n": len(ood), "n_pos": int(sum(ood_labels)),
                       "pr_auc": pr_auc(ood_labels, ood_scores),
                       "roc_auc": roc_auc(ood_labels, ood_scores)}

    summary = {
        "model": "tfidf-logreg",
        "data": a.data,
        "seed": a.seed,
        "train": train_source,
        "n_train": len(train),
        "n_train_pos": int(sum(train_labels)),
        "n_features": int(X_train.shape[1]),
        "vectorizer": {"union": [dict(WORD_SETTINGS), dict(CHAR_SETTINGS)]},
        "classifier": {"type": "LogisticRegression", "solver": "liblinear", "penalty": "l2",
                       "max_iter": 1000, "c_grid": a.c_grid, "c_rule": c_rule},
        "C": chosen_c,
        "c_search": tried,
        "val_split": a.val_split,
        "val_limit": a.val_limit,
        "n_val": len(val),
        "n_val_pos": int(sum(val_labels)),
        "val_pr_auc": pr_auc(val_labels, val_scores) if val else None,
        "val_roc_auc": roc_auc(val_labels, val_scores) if val else None,
        "split": a.split if has_splits else None,
        "limit": a.limit,
        "n_test": len(test),
        "n_test_pos": int(sum(test_labels)),
        "test_pr_auc": pr_auc(test_labels, test_scores),
        "test_roc_auc": roc_auc(test_labels, test_scores),
        "ood": ood_summary,
        "sklearn_version": sklearn.__version__,
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    tmp = os.path.join(a.out, "baseline.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(a.out, "baseline.json"))

    def fmt(x):
        return "n/a" if x is None else f"{x:.4f}"

    print(
        f"baseline_tfidf: trained on {summary['n_train']} ({summary['n_train_pos']} positive), "
        f"C={chosen_c:g}; val PR-AUC {fmt(summary['val_pr_auc'])} on {len(val)}; "
        f"test PR-AUC {fmt(summary['test_pr_auc'])}, ROC-AUC {fmt(summary['test_roc_auc'])} "
        f"on {len(test)}; wrote {a.out}/{{scores.jsonl,val_scores.jsonl,baseline.json}}",
        file=sys.stderr,
    )


def main(argv=None):
    a = parse_args(argv)
    try:
        run(a)
    except InputError as e:
        print(f"baseline_tfidf: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        name = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"baseline_tfidf: error: {name}{e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
