#!/usr/bin/env bash
# The scaling study (docs/results/scaling.md): `scripts/scaling_study.sh [RUN ...]`.
# Label-token RL on the offensive-language task (the recipe of configs/runs/rl-vs-sft/offensive.toml,
# 960 balanced Davidson labels), evaluated every EVERY RL steps on the same first VAL_N validation
# tweets (verdict-token scores), so one run gives a curve of validation PR-AUC against RL steps.
# Runs (default: all, in this order; finished runs are kept):
#   sft-rl-steps  RL from the SFT adapter of the RL-vs-SFT study (n960/sft), STEPS steps at STEPS_LR,
#                 exact estimator
#   rl-steps      RL from the base model (RL only), RL_STEPS steps at RL_LR
#   rl-klB        rl-steps with the KL term rl.beta = B to the base model (e.g. rl-kl0.5), no format
#                 term (rewards.format = 0); rl-klB-fmt: with the format term (rewards.format = 0.2)
#   labels-N      the rl-kl0.5-fmt recipe on the first N balanced training labels (the labels axis;
#                 same RL_STEPS, so fewer labels are revisited more often); labels-N-sS: S steps
#                 (labels-3000-s188 sees each of 3000 labels once, labels-960-s188 each ~3 times)
#   sft-rl-steps-lr3e-4  sft-rl-steps at the study's lr 3e-4 over 160 steps (it collapses: kept as
#                 the evidence for the lower STEPS_LR)
#   g2 g4 g8 g16  RL from the SFT adapter, sampled estimator with G labels per prompt, G_STEPS steps
#                 (the study's lr 3e-4 and schedule)
#   start         the two starting points (SFT adapter, base model) scored on the same validation tweets
#   RUN-seedK     any run above with run.seed = K (the seed picks the training labels among the
#                 train split, their order and the LoRA initialisation; the validation tweets stay)
#   test          TEST_RUN's (default sft-rl-steps) final adapter scored like the rows of the RL-vs-SFT
#                 study (first LIMIT = 1000 Davidson test tweets, threshold on the first 100
#                 validation tweets; first OOD_LIMIT = 200 HateXplain posts at that threshold) into
#                 OUT/TEST_RUN/test[-ood], with paired comparisons against that study's committed rows
#                 BASES (docs/results/rl-vs-sft/offensive[-ood]/BASE) in OUT/TEST_RUN/vs-BASE[-ood]
# With COMMIT=1, `test` also copies the row into docs/results/rl-vs-sft/offensive[-ood]/ROW (default
# sft-rl-long), each comparison as vs-BASE.json.
# Environment: B (binary, default target/release/modrl), OUT (runs/scaling/offensive), STEPS (120),
# STEPS_LR (1e-4), RL_STEPS (60), RL_LR (2e-4), G_STEPS (40), EVERY (10), VAL_N (200). One job at a time: nothing here reports a timing.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-target/release/modrl}
OUT=${OUT:-runs/scaling/offensive}
STEPS=${STEPS:-120}
STEPS_LR=${STEPS_LR:-1e-4}
G_STEPS=${G_STEPS:-40}
EVERY=${EVERY:-10}
VAL_N=${VAL_N:-200}
C=configs/runs/rl-vs-sft/offensive.toml
M=models/smollm2-135m-instruct
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
SFT=${SFT:-runs/rl-vs-sft/offensive/n960/sft/final}
RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(start sft-rl-steps g2 g4 g8 g16 rl-steps)
[ -x "$B" ] || { echo "scaling_study.sh: no binary $B (run scripts/setup.sh)" >&2; exit 2; }
[ -f "$D" ] || $B data import --source davidson --task offensive \
  --in ../shared/data/davidson-hate-offensive/labeled_data.csv --out "$D" > /dev/null
for r in "${RUNS[@]}"; do # runs from the base model (rl-*, labels-*) and test need no SFT adapter
  case $r in rl-*|labels-*|test) ;; *)
    [ -f "$SFT/adapter_model.safetensors" ] || {
      echo "scaling_study.sh: run $r needs the SFT adapter $SFT (run: ROWS=sft scripts/rl_vs_sft.sh offensive 960)" >&2; exit 2; } ;;
  esac
done
. scripts/lib/study.sh
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
  seed=() base=${r%-seed[0-9]*}
  case $r in *-seed[0-9]*) seed=(--set "run.seed=${r##*-seed}") ;; esac
  case $base in
    start)
      for s in sft base; do
        [ -f "$OUT/start-$s/metrics.json" ] && continue
        a=(); [ $s = sft ] && a=(--adapter "$SFT")
        log "start-$s: scoring $VAL_N validation tweets"
        $B eval --model "$M" "${a[@]}" --policy "$P" --data "$D" --split val --val-split none \
          --limit "$VAL_N" --scoring verdict-token --out "$OUT/start-$s" > "$OUT/start-$s.log" 2>&1
      done ;;
    sft-rl-steps) train "$r" "${seed[@]}" --set "model.adapter=\"$SFT\"" --set "rl.max_steps=$STEPS" \
        --set "rl.learning_rate=$STEPS_LR" ;;
    rl-steps) train "$r" "${seed[@]}" --set "rl.max_steps=${RL_STEPS:-60}" --set "rl.learning_rate=${RL_LR:-2e-4}" ;;
    labels-[0-9]*) n=${base#labels-} steps=${RL_STEPS:-60}
      # The labels axis: the RL-only recipe of rl-kl0.5-fmt (KL 0.5 + format 0.2, RL_STEPS steps at
      # RL_LR from the base model) on the first N balanced training labels; the step budget is
      # fixed, so fewer labels are seen more often (RL_STEPS x 16 prompts: 960 draws at 60 steps).
      # labels-N-sS: S steps instead (labels-3000-s188: one pass over 3000 labels).
      case $n in *-s[0-9]*) steps=${n#*-s} n=${n%%-s*} ;; esac
      train "$r" "${seed[@]}" --overlay configs/runs/recipes/rl-kl-fmt.toml --set "rl.max_steps=$steps" \
        --set "rl.learning_rate=${RL_LR:-2e-4}" --set rl.beta=0.5 --set rewards.format=0.2 \
        --set "data.max_train_examples=$n" ;;
    rl-kl*) b=${base#rl-kl}; f=0
      case $b in *-fmt) b=${b%-fmt}; f=0.2 ;; esac
      # The recipe overlay (configs/runs/recipes/rl-kl-fmt.toml) with this run's beta and format.
      train "$r" "${seed[@]}" --overlay configs/runs/recipes/rl-kl-fmt.toml --set "rl.max_steps=${RL_STEPS:-60}" \
        --set "rl.learning_rate=${RL_LR:-2e-4}" --set "rl.beta=$b" --set "rewards.format=$f" ;;
    sft-rl-steps-lr3e-4) train "$r" "${seed[@]}" --set "model.adapter=\"$SFT\"" --set "rl.max_steps=160" ;;
    g[0-9]*) train "$r" "${seed[@]}" --set "model.adapter=\"$SFT\"" --set "rl.max_steps=$G_STEPS" \
        --set 'rl.label_estimator="sampled"' --set "rl.num_generations=${r#g}" ;;
    test)
      TR=${TEST_RUN:-sft-rl-steps}; ROW=${ROW:-sft-rl-long}
      BASES=${BASES:-zero-shot sft sft-more sft-rl tfidf sft-n3840 tfidf-n3840 rl-kl-fmt}
      SMALL=docs/results/rl-vs-sft/offensive
      t=$OUT/$TR/test
      [ -f "$OUT/$TR/final/adapter_model.safetensors" ] || { echo "scaling_study.sh: run $TR first" >&2; exit 2; }
      if [ ! -f "$t/metrics.json" ]; then
        log "test: scoring $TR on ${LIMIT:-1000} test tweets"
        $B eval --model "$M" --adapter "$OUT/$TR/final" --policy "$P" --data "$D" --scoring verdict-token \
          --split test --limit "${LIMIT:-1000}" --val-limit 100 --out "$t" > /dev/null 2> "$t.log" \
          || { cat "$t.log" >&2; exit 1; }
      fi
      if [ ! -f "$t-ood/metrics.json" ]; then
        thr=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold"])' "$t/metrics.json")
        log "test: scoring $TR on ${OOD_LIMIT:-200} HateXplain posts at threshold $thr"
        $B eval --model "$M" --adapter "$OUT/$TR/final" --policy "$P" --data runs/data/hatexplain-offensive.jsonl \
          --scoring verdict-token --split test --limit "${OOD_LIMIT:-200}" --threshold "$thr" --out "$t-ood" \
          > /dev/null 2> "$t-ood.log" || { cat "$t-ood.log" >&2; exit 1; }
      fi
      for base in $BASES; do
        for suf in "" -ood; do
          compare "$SMALL$suf/$base" "$t$suf" "$OUT/$TR/vs-$base$suf" "$TR vs $base$suf"
        done
      done
      if [ "${COMMIT:-0}" = 1 ]; then
        # The row ROW of docs/results/rl-vs-sft.md (the layout rl_vs_sft_table.py reads).
        for suf in "" -ood; do
          dest=$SMALL$suf/$ROW
          copy_eval "$t$suf" "$dest"
          for base in $BASES; do
            c=$OUT/$TR/vs-$base$suf/compare.json
            [ -f "$c" ] && cp "$c" "$dest/vs-$base.json"
          done
        done
        for f in metrics.jsonl config.toml train_ids.txt; do
          cp "$OUT/$TR/$f" "$SMALL/$ROW/run-$f"
        done
      fi ;;
    *) echo "scaling_study.sh: unknown run '$r'" >&2; exit 2 ;;
  esac
done
log "all done"
