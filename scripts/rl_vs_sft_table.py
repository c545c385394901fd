#!/usr/bin/env python3
"""Tables of the RL-vs-SFT study from its committed files (docs/results/rl-vs-sft/TASK/ROW/).

    scripts/rl_vs_sft_table.py docs/results/rl-vs-sft/prompt-harm [--check PAGE.md]

Every number comes from the files beside the page: metrics.json of each row (written by
`modrl eval` from the row's scores.jsonl) and the paired comparisons vs-sft.json / vs-zero-shot.json
(written by `modrl eval --compare`; vs-sft-nN.json: against SFT only at N labels). "reasoning words":
the mean words of reasoning of the scored answers ("-" for verdict-only scoring, which reads no
reasoning). PR-AUC and ROC-AUC are recomputed here from scores.jsonl
(average precision and the rank statistic, as scikit-learn computes them) and must agree with
metrics.json. Prints Markdown. With --check PAGE.md, exits 1 when a table row printed here is
not found verbatim in the page (the page and its data disagree).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_lib import average_precision, roc_auc  # noqa: E402  (shared with check_results.py)

ROW_ORDER = ["zero-shot", "zero-shot-qwen05b", "tfidf", "sft", "sft-more", "rl", "rl-kl", "rl-kl-fmt",
             "rl-kl-fmt-qwen05b", "rl-kl-fmt-seed1", "rl-kl-fmt-seed2", "rl-kl-fmt-long", "sft-rl", "sft-rl-long",
             "star-sft", "star-sft-vt", "star-sft-rl", "star-sft-rl-vt", "sft-more-v1", "rl-v1", "sft-rl-v1"]
# vs-BASE.json in a row of another label count ("-nN") compares with BASE at the same count.
BASES = ("sft", "zero-shot", "zero-shot-qwen05b", "sft-more", "tfidf", "sft-rl", "rl", "rl-kl-fmt",
         "star-sft", "star-sft-vt")


class DataError(Exception):
    """The committed files disagree with each other (metrics.json vs scores.jsonl, test ids)."""


ROW_NAMES = {
    "zero-shot": "zero-shot",
    "zero-shot-qwen05b": "zero-shot, Qwen2.5-Coder-0.5B-Instruct",
    "tfidf": "TF-IDF + logistic regression",
    "sft": "SFT only (verdict-only)",
    "sft-more": "SFT then more SFT (compute-matched control)",
    "rl": "RL only (label-token)",
    "rl-kl": "RL only + KL to the base (beta 0.5), 60 steps at lr 2e-4",
    "rl-kl-fmt": "RL only + KL (beta 0.5) + format term, 60 steps at lr 2e-4",
    "rl-kl-fmt-qwen05b": "RL only + KL + format term (the same recipe), Qwen2.5-Coder-0.5B-Instruct",
    "rl-kl-fmt-seed1": "RL only + KL + format term, 60 steps, seed 1 (other labels, order, init)",
    "rl-kl-fmt-seed2": "RL only + KL + format term, 60 steps, seed 2 (other labels, order, init)",
    "rl-kl-fmt-long": "RL only + KL + format term, 188 steps at lr 2e-4",
    "sft-rl": "SFT then RL (label-token)",
    "sft-rl-long": "SFT then RL, 120 steps at lr 1e-4 (scaling study)",
    "star-sft": "self-generated-reasoning SFT, scored reasoned",
    "star-sft-vt": "self-generated-reasoning SFT, scored verdict-token",
    "star-sft-rl": "self-generated-reasoning SFT then reasoning RL, scored reasoned",
    "star-sft-rl-vt": "self-generated-reasoning SFT then reasoning RL, scored verdict-token",
    "sft-more-v1": "first recipe: SFT then 30 more SFT steps",
    "rl-v1": "first recipe: RL only (sampled labels, lr 3e-5)",
    "sft-rl-v1": "first recipe: SFT then RL (sampled labels, lr 3e-5)",
}


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def load_rows(task_dir):
    rows = []
    names = sorted(os.listdir(task_dir), key=lambda n: (ROW_ORDER.index(n.split("-n")[0]) if n.split("-n")[0] in ROW_ORDER else 99, n))
    for name in names:
        d = os.path.join(task_dir, name)
        mpath = os.path.join(d, "metrics.json")
        if not os.path.isfile(mpath):
            continue
        with open(mpath) as f:
            m = json.load(f)
        scores, labels, ids, slices = [], [], [], []
        with open(os.path.join(d, "scores.jsonl")) as f:
            score_lines = f.readlines()
        for line_no, line in enumerate(score_lines, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            scores.append(float(r["score"]))
            labels.append(int(r["label"]))
            ids.append(r["id"])
            slices.append(r.get("slices") or [])
        ap, auc = average_precision(scores, labels), roc_auc(scores, labels)
        for key, ours in (("pr_auc", ap), ("roc_auc", auc)):
            if m.get(key) is None or ours is None or abs(m[key] - ours) > 1e-6:
                raise DataError(f"{mpath}: {key} {m.get(key)} but {ours} from scores.jsonl")
        # vs-sft.json etc. compare with the row of the same label count (sft-n240 for
        # sft-rl-n240); vs-sft-nN.json with SFT only at N labels (another count).
        suffix = name[len(name.split("-n")[0]):]
        paired = {}
        for base in BASES:
            p = os.path.join(d, f"vs-{base}.json")
            if os.path.isfile(p):
                with open(p) as f:
                    paired[base if base.startswith("zero-shot") else base + suffix] = json.load(f)
        named = {f"vs-{b}.json" for b in BASES}
        for f_ in sorted(os.listdir(d)):
            # vs-sft-nN.json, and any other vs-ROW.json: against that row by its folder name.
            if f_.startswith("vs-") and f_.endswith(".json") and f_ not in named:
                with open(os.path.join(d, f_)) as f:
                    paired[f_[3:-5]] = json.load(f)
        rows.append({"name": name, "m": m, "ids": ids, "paired": paired})
    return rows


def slice_metrics(m, tag):
    s = m.get("per_slice", {}).get(tag)
    return s or {}


def table_lines(task_dir):
    """The Markdown lines of one task's tables (raises DataError when the files disagree)."""
    rows = load_rows(task_dir)
    if not rows:
        raise DataError(f"{task_dir}: no rows with metrics.json")
    ids0 = sorted(rows[0]["ids"])
    for r in rows[1:]:
        if sorted(r["ids"]) != ids0:
            raise DataError(f"{task_dir}/{r['name']}: not the same test ids as {rows[0]['name']}")
    m0 = rows[0]["m"]
    out = []
    out.append(f"Test items: {m0['n']} ({m0['n_pos']} violating, prevalence {fmt(m0['prevalence'])}).")
    out.append("")
    out.append("| row | PR-AUC [95% CI] | ROC-AUC | recall @ precision 0.9 | recall @ FPR 1% | F1 @ val threshold | F1 flag-all | false-flag rate | ECE | format failures | reasoning words |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["m"]
        base = r["name"].split("-n")[0]
        label = ROW_NAMES.get(base, base) + (f" ({r['name'][len(base) + 1:]})" if r["name"] != base else "")
        ci = m.get("pr_auc_ci") or [None, None]
        out.append(
            f"| {label} | {fmt(m['pr_auc'])} [{fmt(ci[0])}, {fmt(ci[1])}] | {fmt(m['roc_auc'])} | "
            f"{fmt(m.get('recall_at_precision_0.9'))} | {fmt(m.get('recall_at_fpr_0.01'))} | {fmt(m.get('f1'))} | "
            f"{fmt(m.get('f1_flag_all'))} | {fmt(m.get('false_flag_rate'))} | {fmt(m.get('ece'))} | {fmt(m.get('format_failure_rate'))} | "
            f"{fmt(m.get('mean_reasoning_words'), 0)} |"
        )
    out.append("")
    sources = sorted({k for r in rows for k in r["m"].get("per_slice", {}) if k.startswith("source:")})
    if len(sources) > 1:
        out.append("Per source (PR-AUC / false-flag rate at the row's threshold):")
        out.append("")
        out.append("| row | " + " | ".join(f"{s[7:]} PR-AUC | {s[7:]} false-flag rate" for s in sources) + " |")
        out.append("|---|" + "---|---|" * len(sources))
        for r in rows:
            m = r["m"]
            base = r["name"].split("-n")[0]
            label = ROW_NAMES.get(base, base) + (f" ({r['name'][len(base) + 1:]})" if r["name"] != base else "")
            cells = []
            for s_ in sources:
                sm = slice_metrics(m, s_)
                cells += [fmt(sm.get("pr_auc")), fmt(sm.get("fpr"))]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("Paired bootstrap (1000 resamples of the same items) of the PR-AUC difference B - A:")
    out.append("")
    out.append("| B | A | PR-AUC B - A | 95% paired CI | ROC-AUC B - A | 95% paired CI |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        for base, c in r["paired"].items():
            pa, ra = c["pr_auc"], c["roc_auc"]
            out.append(
                f"| {r['name']} | {base} | {pa['diff']:+.3f} | [{pa['ci'][0]:+.3f}, {pa['ci'][1]:+.3f}] | "
                f"{ra['diff']:+.3f} | [{ra['ci'][0]:+.3f}, {ra['ci'][1]:+.3f}] |"
            )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task_dir")
    ap.add_argument("--check", metavar="PAGE.md")
    a = ap.parse_args()
    try:
        out = table_lines(a.task_dir)
    except DataError as e:
        sys.exit(str(e))
    text = "\n".join(out)
    print(text)
    if a.check:
        with open(a.check) as f:
            page = f.read()
        missing = [l for l in out if l.startswith("| ") and l not in page]
        if missing:
            for l in missing:
                print(f"{a.check}: row not found (page and data disagree): {l}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
