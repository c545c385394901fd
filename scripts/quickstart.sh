#!/usr/bin/env bash
# The main job on the default model (SmolLM2-135M-Instruct, a Q4_1 GGUF dequantised to f32):
#   1. set up and build (scripts/setup.sh; skipped parts that are done);
#   2. import the Davidson offensive-language data (tweets; stratified train / val / test splits);
#   3. train configs/runs/quickstart.toml: verdict-only SFT (half an epoch of 960 labels), then 40
#      steps of label-token RL (balanced prompts, exact expected-reward gradient over the two label
#      words, accuracy reward), LoRA, CPU;
#   4. score the same held-back Davidson test tweets with the zero-shot model and with the trained
#      one (verdict-token, thresholds chosen on validation), and compare them with a paired
#      bootstrap interval of the PR-AUC difference.
# Usage: scripts/quickstart.sh [--out DIR] [--limit N]   (defaults runs/quickstart, 400 test items;
# thresholds on 80 validation items)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/quickstart
LIMIT=400
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --limit) LIMIT=${2:?--limit needs a number}; shift 2 ;;
    *) echo "usage: scripts/quickstart.sh [--out DIR] [--limit N]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
B=target/release/modrl
M=models/smollm2-135m-instruct
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
if [ ! -f "$D" ]; then
  mkdir -p "$(dirname "$D")"
  $B data import --source davidson --task offensive \
    --in ../shared/data/davidson-hate-offensive/labeled_data.csv --out "$D" > /dev/null
fi
start=$(date +%s)
# Resumes an interrupted run; a finished one is kept.
if [ ! -f "$OUT/final/adapter_model.safetensors" ]; then
  resume=()
  [ -d "$OUT/checkpoints" ] && resume=(--resume)
  $B train --config configs/runs/quickstart.toml --out "$OUT" "${resume[@]}"
fi
common=(--model "$M" --policy "$P" --data "$D" --scoring verdict-token --split test --limit "$LIMIT" --val-limit 80)
$B eval "${common[@]}" --out "$OUT/eval-zero-shot" > /dev/null
$B eval "${common[@]}" --adapter "$OUT/final" --out "$OUT/eval" > /dev/null
mkdir -p "$OUT/compare"
$B eval --compare "$OUT/eval-zero-shot" "$OUT/eval" --out "$OUT/compare" 2> /dev/null > "$OUT/compare/summary.txt"
echo
echo "quickstart: zero-shot (A) vs trained (B) on the same $LIMIT held-back test tweets:"
cat "$OUT/compare/summary.txt"
# The operating point for a target precision (chosen on the same validation tweets; no model).
$B eval --from-scores "$OUT/eval" --threshold-rule precision:0.9 --scorer-name "trained, threshold for precision 0.9" \
  --out "$OUT/eval-precision-0.9" 2> /dev/null > /dev/null
.venv/bin/python - "$OUT/eval/metrics.json" "$OUT/eval-precision-0.9/metrics.json" <<'PY'
import json, sys
f1, p9 = (json.load(open(p)) for p in sys.argv[1:])
for name, m in (("best F1 on val", f1), ("precision 0.9 on val", p9)):
    print(f"quickstart: threshold for {name}: {m['threshold']:.3f} -> test precision {m['precision']:.3f}, "
          f"recall {m['recall']:.3f}, false-flag rate {m['false_flag_rate']:.3f}")
PY
echo "quickstart: $(($(date +%s) - start)) s after setup"
echo "report:   $OUT/compare/compare.html (paired comparison), $OUT/eval/report.html (trained model)"
echo "scores:   $OUT/eval/scores.jsonl, $OUT/eval-zero-shot/scores.jsonl"
echo "training: $OUT/metrics.jsonl (plots: $OUT/plots/)"
