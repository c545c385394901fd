#!/usr/bin/env bash
# Label-token RL recipe search on validation items (docs/results/rl-diagnosis.md, "recipe search"):
# `scripts/rl_recipe_search.sh NAME='SET SET ..' ...`: each recipe is RL from the SFT adapter of
# the RL-vs-SFT study (configs/runs/rl-vs-sft/offensive.toml, stages = ["rl"]) with the given
# `--set` overrides, then scored (verdict-token) on the first VAL items of the validation split at a
# fixed threshold of 0.5. The test split is not touched: the recipe chosen here is then run by
# scripts/rl_vs_sft.sh. The SFT adapter and the compute-matched control (sft-more) are scored on
# the same validation items. One job at a time; finished runs are kept.
# Environment: SFT (adapter, default runs/rl-vs-sft/offensive/n960/sft/final), VAL (300),
# OUT (runs/rl-recipes), COMMIT=1 copies the small files behind the table (validation scores and
# metrics, each run's metrics.jsonl and config) to docs/results/rl-diagnosis/recipe-search/.
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/modrl
M=models/smollm2-135m-instruct
C=configs/runs/rl-vs-sft/offensive.toml
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
SFT=${SFT:-runs/rl-vs-sft/offensive/n960/sft/final}
VAL=${VAL:-300}
OUT=${OUT:-runs/rl-recipes}
mkdir -p "$OUT"
. scripts/lib/study.sh
val() { # NAME [--adapter DIR]
  local name=$1; shift
  [ -f "$OUT/$name/val/metrics.json" ] && return
  log "val $name"
  mkdir -p "$OUT/$name"
  $B eval --model $M "$@" --policy $P --data $D --scoring verdict-token --split val --limit "$VAL" \
    --threshold 0.5 --out "$OUT/$name/val" > /dev/null 2> "$OUT/$name/val.log"
}
val sft --adapter "$SFT"
[ -d "$(dirname "$SFT")/../sft-more/final" ] && val sft-more --adapter "$(dirname "$SFT")/../sft-more/final"
for spec in "$@"; do
  name=${spec%%=*}
  sets=()
  for s in ${spec#*=}; do sets+=(--set "$s"); done
  if [ ! -f "$OUT/$name/run/final/adapter_model.safetensors" ]; then
    resume=()
    [ -d "$OUT/$name/run/checkpoints" ] && resume=(--resume)
    log "train $name: ${spec#*=}"
    mkdir -p "$OUT/$name"
    $B train --config $C --out "$OUT/$name/run" --set 'stages=["rl"]' --set "model.adapter=\"$SFT\"" \
      --set data.max_train_examples=960 "${sets[@]}" "${resume[@]}" > "$OUT/$name/train.log" 2>&1 \
      || { tail -5 "$OUT/$name/train.log" >&2; exit 1; }
  fi
  val "$name" --adapter "$OUT/$name/run/final"
done
if [ "${COMMIT:-0}" = 1 ]; then
  for d in "$OUT"/*/; do
    name=$(basename "$d")
    [ -f "$d/val/metrics.json" ] || continue
    dest=docs/results/rl-diagnosis/recipe-search/$name
    mkdir -p "$dest"
    cp "$d/val/scores.jsonl" "$d/val/metrics.json" "$dest/"
    for f in metrics.jsonl config.toml; do
      [ -f "$d/run/$f" ] && cp "$d/run/$f" "$dest/run-$f"
    done
    # Paired bootstrap of each recipe against SFT only and the SFT-continued controls.
    case $name in sft) continue ;; esac
    for base in sft sft-more sft-more-lr3e-4; do
      [ "$base" = "$name" ] && continue
      [ -f "$OUT/$base/val/scores.jsonl" ] || continue
      $B eval --compare "$OUT/$base/val" "$d/val" --out "$d/vs-$base" > /dev/null 2>&1
      cp "$d/vs-$base/compare.json" "$dest/vs-$base.json"
    done
  done
  log "copied to docs/results/rl-diagnosis/recipe-search"
fi
.venv/bin/python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"{'recipe':28} {'val PR-AUC':>10} {'ROC-AUC':>8} {'p_gold first->last':>20} {'p_viol first->last':>20}")
for d in sorted(p for p in out.iterdir() if (p / "val/metrics.json").exists()):
    m = json.load(open(d / "val/metrics.json"))
    rows = [json.loads(l) for l in open(d / "run/metrics.jsonl")] if (d / "run/metrics.jsonl").exists() else []
    rows = [r for r in rows if "label/p_gold_mean" in r]
    pg = f"{rows[0]['label/p_gold_mean']:.3f}->{rows[-1]['label/p_gold_mean']:.3f}" if rows else ""
    pv = f"{rows[0]['label/p_violating_mean']:.3f}->{rows[-1]['label/p_violating_mean']:.3f}" if rows else ""
    print(f"{d.name:28} {m['pr_auc']:10.3f} {m['roc_auc']:8.3f} {pg:>20} {pv:>20}")
PY
