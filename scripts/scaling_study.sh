#!/usr/bin/env bash
# The scaling study (docs/results/scaling.md): `scripts/scaling_study.sh [RUN ...]`.
# Label-token RL on the offensive-language task (the recipe of configs/runs/rl-vs-sft/offensive.toml,
# 960 balanced Davidson labels), evaluated every EVERY RL steps on the same first VAL_N validation
# tweets (verdict-token scores), so one run gives a curve of validation PR-AUC against RL steps.
# Runs (default: all, in this order; finished runs are kept):
#   sft-rl-steps  RL from the SFT adapter of the RL-vs-SFT study (n960/sft), STEPS steps, exact estimator
#   rl-steps      RL from the base model (RL only), STEPS steps, exact estimator
#   g2 g4 g8 g16  RL from the SFT adapter, sampled estimator with G labels per prompt, G_STEPS steps
#   start         the two starting points (SFT adapter, base model) scored on the same validation tweets
# Environment: B (binary, default target/release/modrl), OUT (runs/scaling/offensive), STEPS (160),
# G_STEPS (40), EVERY (10), VAL_N (200). One job at a time: nothing here reports a timing.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-target/release/modrl}
OUT=${OUT:-runs/scaling/offensive}
STEPS=${STEPS:-160}
G_STEPS=${G_STEPS:-40}
EVERY=${EVERY:-10}
VAL_N=${VAL_N:-200}
C=configs/runs/rl-vs-sft/offensive.toml
M=models/smollm2-135m-instruct
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
SFT=${SFT:-runs/rl-vs-sft/offensive/n960/sft/final}
RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(start sft-rl-steps rl-steps g2 g4 g8 g16)
[ -x "$B" ] || { echo "scaling_study.sh: no binary $B (run scripts/setup.sh)" >&2; exit 2; }
[ -f "$D" ] || $B data import --source davidson --task offensive \
  --in ../shared/data/davidson-hate-offensive/labeled_data.csv --out "$D" > /dev/null
[ -f "$SFT/adapter_model.safetensors" ] || {
  echo "scaling_study.sh: no SFT adapter at $SFT (run: ROWS=sft scripts/rl_vs_sft.sh offensive 960)" >&2; exit 2; }
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }
common=(--set 'stages=["rl"]' --set "eval.every=$EVERY" --set "eval.periodic_examples=$VAL_N"
  --set "data.max_val_examples=$VAL_N" --set "run.save_every=$EVERY")
train() { # NAME extra-set...
  local name=$1; shift
  local dir=$OUT/$name
  if [ -f "$dir/final/adapter_model.safetensors" ]; then log "$name: done"; return; fi
  local resume=()
  [ -d "$dir/checkpoints" ] && resume=(--resume)
  log "$name: training"
  $B train --config "$C" --out "$dir" "${common[@]}" "$@" "${resume[@]}" > "$dir.log" 2>&1 \
    || { echo "scaling_study.sh: $name failed, see $dir.log" >&2; exit 1; }
  log "$name: finished"
}
mkdir -p "$OUT"
for r in "${RUNS[@]}"; do
  case $r in
    start)
      for s in sft base; do
        [ -f "$OUT/start-$s/metrics.json" ] && continue
        a=(); [ $s = sft ] && a=(--adapter "$SFT")
        log "start-$s: scoring $VAL_N validation tweets"
        $B eval --model "$M" "${a[@]}" --policy "$P" --data "$D" --split val --val-split none \
          --limit "$VAL_N" --scoring verdict-token --out "$OUT/start-$s" > "$OUT/start-$s.log" 2>&1
      done ;;
    sft-rl-steps) train "$r" --set "model.adapter=\"$SFT\"" --set "rl.max_steps=$STEPS" ;;
    rl-steps) train "$r" --set "rl.max_steps=$STEPS" ;;
    g[0-9]*) train "$r" --set "model.adapter=\"$SFT\"" --set "rl.max_steps=$G_STEPS" \
        --set 'rl.label_estimator="sampled"' --set "rl.num_generations=${r#g}" ;;
    *) echo "scaling_study.sh: unknown run '$r'" >&2; exit 2 ;;
  esac
done
log "all done"
