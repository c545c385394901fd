#!/usr/bin/env bash
# The LLM judge against the deterministic rubric (docs/results/judge-agreement.md):
# `scripts/judge_agreement.sh`.
#   1. Answers to grade: the 135M policy with reasoning (ADAPTER, default the self-generated-
#      reasoning SFT then reasoning RL adapter of the RL-vs-SFT study at 240 labels) on the first
#      N validation tweets, `modrl eval --scoring reasoned --save-outputs` (its answers kept).
#   2. The judge: Qwen2.5-Coder-0.5B-Instruct behind `modrl serve` (OpenAI-compatible chat),
#      configs/judges/qwen05b-serve.toml.
#   3. `modrl grade`: every answer graded by the rules (rewards.rubric_rules' criteria) and by
#      the judge (its four criteria and raw answer); summary.json: the judge's parse rate, the
#      correlation of the two scores, agreement and Cohen's kappa per pair of criteria.
# COMMIT=1 copies graded.jsonl and summary.json to docs/results/judge-agreement/.
# Environment: B (binary), N (64), ADAPTER, PORT (8011), OUT (runs/judge-agreement).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-target/release/modrl}
N=${N:-64}
ADAPTER=${ADAPTER:-runs/rl-vs-sft/offensive/n240/star-sft-rl/final}
PORT=${PORT:-8011}
OUT=${OUT:-runs/judge-agreement}
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
J=models/qwen2.5-coder-0.5b-instruct
[ -f "$J/model.safetensors" ] || { echo "judge_agreement.sh: no $J: run scripts/setup.sh --with-qwen05b" >&2; exit 2; }
[ -f "$ADAPTER/adapter_model.safetensors" ] || { echo "judge_agreement.sh: no adapter $ADAPTER (scripts/star_sft_rl.sh offensive 240)" >&2; exit 2; }
. scripts/lib/study.sh
mkdir -p "$OUT"
if [ ! -f "$OUT/answers/metrics.json" ]; then
  log "answers: $N validation tweets, reasoned"
  $B eval --model models/smollm2-135m-instruct --adapter "$ADAPTER" --policy $P --data $D \
    --scoring reasoned --max-new-tokens 96 --split val --val-split none --limit "$N" \
    --save-outputs --out "$OUT/answers" > /dev/null 2> "$OUT/answers.log"
fi
log "judge: modrl serve $J on 127.0.0.1:$PORT"
$B serve --model $J --policy $P --served-model-name judge --addr "127.0.0.1:$PORT" > "$OUT/serve.log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "listening on" "$OUT/serve.log" && break
  kill -0 $srv 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
  sleep 1
done
grep -q "listening on" "$OUT/serve.log" || { echo "judge_agreement.sh: the server did not start" >&2; exit 1; }
rewards=$OUT/rewards.toml
sed "s|127.0.0.1:8011|127.0.0.1:$PORT|" configs/judges/qwen05b-serve.toml > "$rewards"
log "grade"
$B grade --answers "$OUT/answers/scores.jsonl" --data $D --policy $P --rewards "$rewards" \
  --out "$OUT/graded" 2> "$OUT/grade.log"
log "done"
if [ "${COMMIT:-0}" = 1 ]; then
  dest=docs/results/judge-agreement
  mkdir -p "$dest"
  cp "$OUT/graded/graded.jsonl" "$OUT/graded/summary.json" "$dest/"
  cp "$OUT/answers/scores.jsonl" "$dest/answers.jsonl"
  log "copied to $dest"
fi
