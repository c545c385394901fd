#!/usr/bin/env python3
"""The data-efficiency figure of docs/results/rl-vs-sft.md: test PR-AUC with its 95 % bootstrap CI
against the number of training labels, one line per recipe, from the committed metrics.json of
each row (docs/results/rl-vs-sft/offensive/ROW[-nN]/).

    .venv/bin/python scripts/labels_plot.py [--task offensive] [--out docs/results/rl-vs-sft-offensive-labels.svg]

A small hand-written SVG (no plotting library is in the venv; the project's SVG writer is the
Rust crate's, which this script does not link).
"""
import argparse
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES = [  # (row, label, colour)
    ("sft", "SFT only", "#1f77b4"),
    ("sft-rl", "SFT then RL", "#d62728"),
    ("rl-kl-fmt", "RL only + KL + format", "#2ca02c"),
    ("tfidf", "TF-IDF + logistic regression", "#7f7f7f"),
    ("rl-kl-fmt-qwen05b", "RL only + KL + format, 0.5B model", "#9467bd"),
    ("rl-kl-fmt-long", "RL only + KL + format, 188 steps", "#ff7f0e"),
]
COUNTS = [240, 960, 3840]
SERIES_COUNTS = {"rl-kl-fmt-long": [960, 3000]}  # rows at other label counts than COUNTS
FIRST = 960  # the study's first label count: its rows carry no suffix


def metrics(task_dir, row, n):
    name = row if n == FIRST else f"{row}-n{n}"
    p = os.path.join(task_dir, name, "metrics.json")
    if not os.path.isfile(p):
        return None
    m = json.load(open(p))
    return m["pr_auc"], m["pr_auc_ci"][0], m["pr_auc_ci"][1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="offensive")
    ap.add_argument("--out")
    a = ap.parse_args()
    task_dir = os.path.join(HERE, "..", "docs", "results", "rl-vs-sft", a.task)
    out = a.out or os.path.join(HERE, "..", "docs", "results", f"rl-vs-sft-{a.task}-labels.svg")
    data = {row: [(n, metrics(task_dir, row, n)) for n in SERIES_COUNTS.get(row, COUNTS)] for row, _, _ in SERIES}
    data = {r: [(n, v) for n, v in pts if v] for r, pts in data.items()}
    vals = [x for pts in data.values() for _, v in pts for x in v]
    lo, hi = math.floor(min(vals) * 20) / 20, min(1.0, math.ceil(max(vals) * 20) / 20)
    W, H, L, R, T, B = 760, 480, 70, 250, 50, 60
    px = lambda n: L + (math.log(n) - math.log(COUNTS[0] / 1.5)) / (math.log(COUNTS[-1] * 1.5) - math.log(COUNTS[0] / 1.5)) * (W - L - R)
    py = lambda v: T + (hi - v) / (hi - lo) * (H - T - B)
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
          'font-family="Helvetica, Arial, sans-serif" fill="#222">',
          f'<rect width="{W}" height="{H}" fill="#fff"/>',
          f'<text x="{(W - R + L) / 2}" y="28" text-anchor="middle" font-size="15" font-weight="bold">'
          f'{a.task}: test PR-AUC (95% CI) against training labels</text>']
    y = lo
    while y <= hi + 1e-9:
        el.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#e6e6e6"/>'
                  f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end" font-size="11">{y:.2f}</text>')
        y += 0.05
    for n in sorted({n for pts in data.values() for n, _ in pts} | set(COUNTS)):
        el.append(f'<text x="{px(n):.1f}" y="{H - B + 18}" text-anchor="middle" font-size="11">{n}</text>')
    el.append(f'<text x="{(W - R + L) / 2}" y="{H - 18}" text-anchor="middle" font-size="12">training labels (log scale)</text>')
    el.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>')
    for k, (row, label, colour) in enumerate(SERIES):
        pts = data.get(row) or []
        if not pts:
            continue
        dx = (k - 2) * 4  # spread the error bars of one label count
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(n) + dx:.1f},{py(v[0]):.1f}" for i, (n, v) in enumerate(pts))
        el.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for n, (v, c0, c1) in pts:
            x = px(n) + dx
            el.append(f'<line x1="{x:.1f}" y1="{py(c0):.1f}" x2="{x:.1f}" y2="{py(c1):.1f}" stroke="{colour}"/>'
                      f'<circle cx="{x:.1f}" cy="{py(v):.1f}" r="3.5" fill="{colour}"><title>{label}, {n} labels: '
                      f'{v:.3f} [{c0:.3f}, {c1:.3f}]</title></circle>')
        ly = T + 16 + 20 * k
        el.append(f'<line x1="{W - R + 14}" y1="{ly - 4}" x2="{W - R + 34}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>'
                  f'<text x="{W - R + 40}" y="{ly}" font-size="11">{label}</text>')
    el.append("</svg>")
    with open(out, "w") as f:
        f.write("".join(el) + "\n")
    print(f"wrote {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
