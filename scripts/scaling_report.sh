#!/usr/bin/env bash
# The files behind docs/results/scaling.md, from the runs of scripts/scaling_study.sh:
# `scripts/scaling_report.sh [RUNS_DIR] [OUT_DIR]` (default runs/scaling/offensive,
# docs/results/scaling/offensive). Writes per run NAME.points.jsonl (scripts/scaling_points.py),
# NAME.metrics.jsonl, NAME.config.toml, and for runs with at least 6 evaluations NAME.fit.json
# (`modrl scaling fit --x train_tokens --y pr_auc --json`, 1000 bootstrap resamples, hold-out half)
# and NAME.svg; then prints the page's three tables (scripts/results_lib.py; the third: the labels
# axis, runs labels-N of scripts/scaling_study.sh beside rl-kl0.5-fmt at 960 labels). A run of the 0.5B
# model (NAME-qwen05b, linked by scripts/second_model.sh) gets its tokenizer's prompt counts.
# Runs whose folders are gone keep their committed points (scripts/scaling_points.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/scaling/offensive}
OUT=${2:-docs/results/scaling/offensive}
B=${B:-target/release/modrl}
PROMPTS=runs/scaling/prompts-n960.jsonl
prompt_counts() { # MODEL OUT: token counts of the 960 training tweets' verdict-token prompts (tokenizer only)
  [ -f "$2" ] && return
  # The committed copy (the study's training ids are in it) when the RL-vs-SFT run folder is gone.
  [ -f "$OUT/$(basename "$2")" ] && { mkdir -p "$(dirname "$2")"; cp "$OUT/$(basename "$2")" "$2"; return; }
  $B data prompts --model "$1" --policy configs/policies/offensive-compact.toml \
    --in runs/data/davidson-offensive.jsonl --split train --variant no-reasoning --out "$2.all" > /dev/null
  .venv/bin/python - "$2.all" runs/rl-vs-sft/offensive/n960/sft/train_ids.txt "$2" <<'PY'
import json, sys
ids = set(open(sys.argv[2]).read().split())
with open(sys.argv[3], "w") as f:
    for l in open(sys.argv[1]):
        d = json.loads(l)
        if d["id"] in ids:
            f.write(json.dumps({"id": d["id"], "prompt_tokens": d["prompt_tokens"]}) + "\n")
PY
  rm -f "$2.all"
}
prompt_counts models/smollm2-135m-instruct "$PROMPTS"
prompts=(--prompts "$PROMPTS")
mkdir -p "$OUT"
cp "$PROMPTS" "$OUT/prompts-n960.jsonl"
# The 0.5B model's run (scripts/second_model.sh links it here): its own tokenizer's counts.
if compgen -G "$RUNS/*-qwen05b/metrics.jsonl" > /dev/null; then
  Q=runs/scaling/prompts-n960-qwen05b.jsonl
  prompt_counts models/qwen2.5-coder-0.5b-instruct "$Q"
  cp "$Q" "$OUT/prompts-n960-qwen05b.jsonl"
  prompts+=(--prompts "qwen05b=$Q")
fi
.venv/bin/python scripts/scaling_points.py "$RUNS" "$OUT" "${prompts[@]}"
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
print()
print("\n".join(L.scaling_labels_table(sys.argv[1])))
PY
