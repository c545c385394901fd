#!/usr/bin/env bash
# The files behind docs/results/scaling.md, from the runs of scripts/scaling_study.sh:
# `scripts/scaling_report.sh [RUNS_DIR] [OUT_DIR]` (default runs/scaling/offensive,
# docs/results/scaling/offensive). Writes per run NAME.points.jsonl (scripts/scaling_points.py),
# NAME.metrics.jsonl, NAME.config.toml, and for runs with at least 6 evaluations NAME.fit.json
# (`modrl scaling fit --x train_tokens --y pr_auc --json`, 1000 bootstrap resamples, hold-out half)
# and NAME.svg; then prints the page's two tables (scripts/results_lib.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/scaling/offensive}
OUT=${2:-docs/results/scaling/offensive}
B=${B:-target/release/modrl}
PROMPTS=runs/scaling/prompts-n960.jsonl
if [ ! -f "$PROMPTS" ]; then
  # Token counts of the 960 training tweets' verdict-token prompts (tokenizer only).
  $B data prompts --model models/smollm2-135m-instruct --policy configs/policies/offensive-compact.toml \
    --in runs/data/davidson-offensive.jsonl --split train --variant no-reasoning --out "$PROMPTS.all" > /dev/null
  .venv/bin/python - "$PROMPTS.all" runs/rl-vs-sft/offensive/n960/sft/train_ids.txt "$PROMPTS" <<'PY'
import json, sys
ids = set(open(sys.argv[2]).read().split())
with open(sys.argv[3], "w") as f:
    for l in open(sys.argv[1]):
        d = json.loads(l)
        if d["id"] in ids:
            f.write(json.dumps({"id": d["id"], "prompt_tokens": d["prompt_tokens"]}) + "\n")
PY
  rm -f "$PROMPTS.all"
fi
mkdir -p "$OUT"
cp "$PROMPTS" "$OUT/prompts-n960.jsonl"
.venv/bin/python scripts/scaling_points.py "$RUNS" "$OUT" --prompts "$PROMPTS"
for p in "$OUT"/*.points.jsonl; do
  name=$(basename "$p" .points.jsonl)
  if [ "$(wc -l < "$p")" -ge 7 ]; then
    $B scaling fit --in "$p" --x train_tokens --y pr_auc --json --plot "$OUT/$name.svg" > "$OUT/$name.fit.json"
  else
    rm -f "$OUT/$name.fit.json" "$OUT/$name.svg"
  fi
done
.venv/bin/python - "$OUT" <<'PY'
import sys
sys.path.insert(0, "scripts")
import results_lib as L
print("\n".join(L.scaling_curve_table(sys.argv[1])))
print()
print("\n".join(L.scaling_fit_table(sys.argv[1])))
PY
