#!/usr/bin/env bash
# The second, larger model in the RL-vs-SFT study (docs/results/rl-vs-sft.md, section "A larger
# model"): `scripts/second_model.sh [ROW ...]` (default: rl-kl-fmt).
#   1. scripts/rl_vs_sft.sh offensive 960 with MODEL=models/qwen2.5-coder-0.5b-instruct (made by
#      `scripts/setup.sh --with-qwen05b`): the 0.5B model zero-shot and each ROW trained from it on
#      the same 960 labels (the 135M study's configs and recipe overlays), scored on the same 1000
#      test tweets (threshold on the same 100 validation tweets) and 200 HateXplain posts. The runs
#      also score the first 200 validation tweets every 10 RL steps (the scaling study's curve).
#      The runs also give the scaling study its model-size curve: the base model scored on the
#      same 200 validation tweets (runs/scaling/offensive/start-base-qwen05b, step 0) and the run
#      linked as runs/scaling/offensive/ROW-qwen05b (scripts/scaling_report.sh turns it into
#      points and a fit, docs/results/scaling.md).
#   2. Paired comparisons on the same items: each 0.5B row against the 0.5B zero-shot, against the
#      same row of the 135M study and against its SFT only, SFT then RL and TF-IDF rows and SFT
#      only on 3840 labels (the committed
#      rows the page shows, docs/results/rl-vs-sft/offensive{,-ood}/ROW); the 0.5B zero-shot
#      against the 135M zero-shot.
# COMMIT=1 copies the small files behind the page into the study's task folders as rows named
# ROW-qwen05b and zero-shot-qwen05b (docs/results/rl-vs-sft/offensive{,-ood}/), each comparison
# named by the row it compares against (vs-ROW.json), as the page's checker reads them.
# Environment: B (binary), RUNS (runs/rl-vs-sft-qwen05b), LIMIT (1000), VAL_LIMIT (100), OOD_LIMIT (200).
# One job at a time: on 2 cores the 0.5B model takes about 4x the default model's time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${*:-rl-kl-fmt}
B=${B:-target/release/modrl}
MODEL=models/qwen2.5-coder-0.5b-instruct
SMALL=docs/results/rl-vs-sft/offensive
RUNS=${RUNS:-runs/rl-vs-sft-qwen05b}
export LIMIT=${LIMIT:-1000} VAL_LIMIT=${VAL_LIMIT:-100} OOD_LIMIT=${OOD_LIMIT:-200}
. scripts/lib/study.sh
[ -f "$MODEL/model.safetensors" ] || { echo "second_model.sh: no $MODEL: run scripts/setup.sh --with-qwen05b" >&2; exit 2; }
for row in zero-shot $ROWS sft sft-rl; do
  [ -f "$SMALL/$row/scores.jsonl" ] || { echo "second_model.sh: no committed 135M row $SMALL/$row" >&2; exit 2; }
done
# COMMIT=0: rl_vs_sft.sh's own copy would write these rows over the 135M study's folders.
COMMIT=0 MODEL=$MODEL RUNS=$RUNS B=$B ROWS="$ROWS" \
  SETS="eval.every=10 eval.periodic_examples=200 data.max_val_examples=200 run.save_every=10" \
  scripts/rl_vs_sft.sh offensive 960
big=$RUNS/offensive
# The scaling study's step 0 and the link to each run (the same 200 validation tweets).
S=runs/scaling/offensive
mkdir -p "$S"
if [ ! -f "$S/start-base-qwen05b/metrics.json" ]; then
  $B eval --model $MODEL --policy configs/policies/offensive-compact.toml --data runs/data/davidson-offensive.jsonl \
    --split val --val-split none --limit 200 --scoring verdict-token --out "$S/start-base-qwen05b" \
    > "$S/start-base-qwen05b.log" 2>&1
fi
for row in $ROWS; do
  [ "$row" = rl-kl-fmt ] && name=rl-kl0.5-fmt-qwen05b || name=$row-qwen05b
  [ -e "$S/$name" ] || ln -s "$(realpath "$big/n960/$row")" "$S/$name"
done

for suf in "" -ood; do
  compare "$SMALL$suf/zero-shot" "$big/zero-shot$suf" "$big/zero-shot-vs-small-zero-shot$suf" "0.5B zero-shot vs 135M zero-shot$suf"
  for row in $ROWS; do
    t=$big/n960/$row/test$suf
    compare "$SMALL$suf/$row" "$t" "$big/n960/$row/vs-small-$row$suf" "0.5B $row vs 135M $row$suf"
    for base in sft sft-rl tfidf sft-n3840; do
      compare "$SMALL$suf/$base" "$t" "$big/n960/$row/vs-small-$base$suf" "0.5B $row vs 135M $base$suf"
    done
  done
done

if [ "${COMMIT:-0}" = 1 ]; then
  for suf in "" -ood; do
    dest=docs/results/rl-vs-sft/offensive$suf
    copy_eval "$big/zero-shot$suf" "$dest/zero-shot-qwen05b"
    [ -f "$big/zero-shot-vs-small-zero-shot$suf/compare.json" ] &&
      cp "$big/zero-shot-vs-small-zero-shot$suf/compare.json" "$dest/zero-shot-qwen05b/vs-zero-shot.json"
    for row in $ROWS; do
      d=$dest/$row-qwen05b
      copy_eval "$big/n960/$row/test$suf" "$d"
      c=$big/n960/$row/vs-zero-shot$suf/compare.json
      [ -f "$c" ] && cp "$c" "$d/vs-zero-shot-qwen05b.json"
      for base in $row sft sft-rl tfidf sft-n3840; do
        c=$big/n960/$row/vs-small-$base$suf/compare.json
        [ -f "$c" ] && cp "$c" "$d/vs-$base.json"
      done
      if [ -z "$suf" ]; then
        for f in metrics.jsonl config.toml; do
          [ -f "$big/n960/$row/$f" ] && cp "$big/n960/$row/$f" "$d/run-$f"
        done
      fi
    done
  done
  echo "copied to docs/results/rl-vs-sft/offensive{,-ood}/*-qwen05b" >&2
fi
