#!/usr/bin/env bash
# Recipe comparison, zero-shot vs SFT-only vs SFT then RL, on the same test items with thresholds
# chosen on val: `scripts/recipes.sh TASK`, TASK = offensive (docs/results/archive/offensive-sft-rl.md) or
# prompt-harm (docs/results/archive/prompt-harm-sft-rl.md; both archived: their data was not committed).
#   1. import the task's data (if missing)
#   2. train configs/runs/TASK-sft-rl.toml (writes after_sft/ and final/ adapters; resumable)
#   3. evaluate base / after_sft / final with verdict-token scoring (LIMIT items) and greedy
#      reasoning (GREEDY_LIMIT items), then plot the training curves.
# Environment: LIMIT (default 300), GREEDY_LIMIT (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: scripts/recipes.sh offensive|prompt-harm}
B=target/release/modrl
M=models/smollm2-135m-instruct
case $TASK in
  offensive)
    P=configs/policies/offensive-compact.toml
    D=runs/data/davidson-offensive.jsonl
    IMPORT=(--source davidson --task offensive --in ../shared/data/davidson-hate-offensive/labeled_data.csv) ;;
  prompt-harm)
    P=configs/policies/prompt-harm-compact.toml
    D=runs/data/prompt-harm.jsonl
    IMPORT=(--source prompt-harm --in ../shared/data/prompt-harm) ;;
  *) echo "recipes.sh: unknown task '$TASK' (expected offensive or prompt-harm)" >&2; exit 2 ;;
esac
C=configs/runs/$TASK-sft-rl.toml
R=runs/$TASK-sft-rl
E=runs/$TASK-eval
LIMIT=${LIMIT:-300}
GREEDY_LIMIT=${GREEDY_LIMIT:-100}
[ -x "$B" ] || scripts/setup.sh
if [ ! -f "$D" ]; then
  $B data import "${IMPORT[@]}" --out "$D" > /dev/null
fi
if [ ! -f "$R/final/adapter_model.safetensors" ]; then
  if [ -d "$R/checkpoints" ]; then
    $B train --config "$C" --resume
  else
    $B train --config "$C"
  fi
fi
mkdir -p "$E"
for name in zero-shot sft-only sft-rl; do
  case $name in
    zero-shot) ad=() ;;
    sft-only) ad=(--adapter "$R/after_sft") ;;
    sft-rl) ad=(--adapter "$R/final") ;;
  esac
  $B eval --model $M "${ad[@]}" --policy $P --data $D --scoring verdict-token \
    --limit "$LIMIT" --out "$E/$name-verdict-token"
  $B eval --model $M "${ad[@]}" --policy $P --data $D --scoring greedy \
    --limit "$GREEDY_LIMIT" --max-new-tokens 96 --out "$E/$name-greedy"
done
$B plot --run sft-rl="$R" --key loss --key eval/pr_auc --out "$E/sft-rl-train.svg" --title "SFT then RL: loss and periodic validation PR-AUC (verdict-token)"
$B plot --run sft-rl="$R" --key reward --key rewards/accuracy/mean --key monitors/reasoning_words \
  --out "$E/sft-rl-rl.svg" --title "RL stage: reward, accuracy reward, reasoning words"
for f in "$E"/*/metrics.json; do
  d=$(dirname "$f")
  .venv/bin/python - "$f" "$(basename "$d")" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
g = lambda k: m.get(k)
print(sys.argv[2], {k: g(k) for k in ["n", "n_pos", "prevalence", "pr_auc", "pr_auc_ci", "roc_auc", "f1", "accuracy", "format_failure_rate", "mean_reasoning_words"] if k in m})
PY
done
