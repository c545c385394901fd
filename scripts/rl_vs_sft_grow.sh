#!/usr/bin/env bash
# Grow the test sets of the committed RL-vs-SFT rows (docs/results/rl-vs-sft/TASK[-ood]/ROW) to the
# first LIMIT test items (and OOD_LIMIT out-of-distribution items) without retraining anything:
# `scripts/rl_vs_sft_grow.sh TASK`.
# Each row's trained adapter is scored on the larger set; `modrl eval` resumes the run's existing
# scores.jsonl (the first items keep their scores, only the new ones are scored), the threshold is
# still chosen on the same first VAL_LIMIT validation items, and the OOD items are still scored at
# that threshold. The TF-IDF rows are refitted on the same training ids and rescored. Then the
# row's scores, val scores and metrics are copied to docs/results/rl-vs-sft/TASK[-ood]/ROW and
# every paired comparison already committed there (vs-BASE.json) is recomputed from the committed
# scores of BASE and ROW. One job at a time (scoring only; no timing is reported).
# Where each row was trained (ROW=RUN folder; the runs of scripts/rl_vs_sft.sh and
# scripts/scaling_study.sh) is listed below; a row whose run folder is missing is an error.
# Environment: B (binary, default target/release/modrl), LIMIT (1000), OOD_LIMIT (600), VAL_LIMIT (100).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: scripts/rl_vs_sft_grow.sh TASK}
B=${B:-target/release/modrl}
M=models/smollm2-135m-instruct
LIMIT=${LIMIT:-1000}
OOD_LIMIT=${OOD_LIMIT:-600}
VAL_LIMIT=${VAL_LIMIT:-100}
R=runs/rl-vs-sft/$TASK
S=runs/scaling/$TASK
case $TASK in
  prompt-harm)
    P=configs/policies/prompt-harm-compact.toml
    D=runs/data/prompt-harm-study.jsonl
    OOD=""
    ROWS="zero-shot=$R/zero-shot sft=$R/n960/sft sft-more=$R/n960/sft-more sft-rl=$R/n960/sft-rl
      rl-kl-fmt=$R/n960/rl-kl-fmt tfidf=$R/n960/tfidf" ;;
  offensive)
    P=configs/policies/offensive-compact.toml
    D=runs/data/davidson-offensive.jsonl
    OOD=runs/data/hatexplain-offensive.jsonl
    ROWS="zero-shot=$R/zero-shot sft=$R/n960/sft sft-rl=$R/n960/sft-rl
      sft-more=$R/n960/sft-more rl=$R/n960/rl rl-v1=$R/n960/rl-v1 sft-rl-v1=$R/n960/sft-rl-v1
      sft-more-v1=$R/n960/sft-more-v1 rl-kl=$S/rl-kl0.5 rl-kl-fmt=$S/rl-kl0.5-fmt
      sft-rl-long=$S/sft-rl-steps sft-n240=$R/n240/sft sft-rl-n240=$R/n240/sft-rl
      rl-kl-fmt-n240=$R/n240/rl-kl-fmt sft-n3840=$R/n3840/sft tfidf=$R/n960/tfidf
      tfidf-n240=$R/n240/tfidf tfidf-n3840=$R/n3840/tfidf" ;;
  *) echo "rl_vs_sft_grow.sh: unknown task '$TASK' (prompt-harm or offensive)" >&2; exit 2 ;;
esac
DEST=docs/results/rl-vs-sft/$TASK
. scripts/lib/study.sh
py() { .venv/bin/python -c "$@"; }
json_key() { py 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
count() { if [ -f "$1/scores.jsonl" ]; then wc -l < "$1/scores.jsonl"; else echo 0; fi; }

grow() { # OUT N DATA [eval args...]: resume OUT's scores up to the first N test items of DATA
  local out=$1 n=$2 data=$3; shift 3
  if [ -f "$out/metrics.json" ] && [ "$(count "$out")" -ge "$n" ]; then return; fi
  log "grow $out from $(count "$out") to $n items"
  rm -f "$out/metrics.json"
  $B eval --model $M "$@" --policy $P --data "$data" --scoring verdict-token --split test \
    --limit "$n" --out "$out" > /dev/null 2> "$out.grow.log" || { cat "$out.grow.log" >&2; exit 1; }
}


for entry in $ROWS; do
  row=${entry%%=*} run=${entry#*=}
  [ -d "$run" ] || { echo "rl_vs_sft_grow.sh: row $row: no run folder $run" >&2; exit 2; }
  if [ "$row" = zero-shot ]; then
    t=$run o=$run-ood adapter=()
  else
    t=$run/test o=$run/test-ood adapter=(--adapter "$run/final")
  fi
  if [ "${row%%-*}" = tfidf ]; then
    if [ "$(count "$t")" -lt "$LIMIT" ] || { [ -n "$OOD" ] && [ "$(count "$o")" -lt "$OOD_LIMIT" ]; }; then
      log "tfidf $row: refit on $run/../sft/train_ids.txt, score $LIMIT test items"
      ood_args=()
      [ -n "$OOD" ] && ood_args=(--ood-data "$OOD" --ood-out "$o" --ood-limit "$OOD_LIMIT")
      .venv/bin/python scripts/baseline_tfidf.py --data "$D" --train-ids "$run/../sft/train_ids.txt" \
        --out "$t" --limit "$LIMIT" --val-limit "$VAL_LIMIT" "${ood_args[@]}" > /dev/null
      n=${run%/tfidf}; n=${n##*/n}
      $B eval --from-scores "$t" --scorer-name "TF-IDF + logistic regression (n=$n)" --out "$t" > /dev/null
      if [ -n "$OOD" ]; then
        $B eval --from-scores "$o" --threshold "$(json_key "$t/metrics.json" threshold)" \
          --scorer-name "TF-IDF + logistic regression (n=$n), out of distribution" --out "$o" > /dev/null
      fi
    fi
  else
    grow "$t" "$LIMIT" "$D" "${adapter[@]}" --val-limit "$VAL_LIMIT"
    [ -n "$OOD" ] && grow "$o" "$OOD_LIMIT" "$OOD" "${adapter[@]}" --threshold "$(json_key "$t/metrics.json" threshold)"
  fi
  copy_eval "$t" "$DEST/$row"
  [ -n "$OOD" ] && copy_eval "$o" "$DEST-ood/$row"
done

# Every committed paired comparison, recomputed from the committed scores.
for suf in "" -ood; do
  [ -d "$DEST$suf" ] || continue
  for v in "$DEST$suf"/*/vs-*.json; do
    row=$(basename "$(dirname "$v")") base=$(basename "$v" .json); base=${base#vs-}
    # As rl_vs_sft.sh names them: in a row of another label count (ROW-nN), a base without a
    # count is the same count's row (vs-sft.json of sft-rl-n240 is sft-n240); the study's first
    # count, 960, has no suffix in row names (vs-sft-n960.json is sft).
    n=$(echo "$row" | sed -n 's/.*-n\([0-9][0-9]*\)$/\1/p')
    case $base in
      *-n960) base=${base%-n960} ;;
      *-n[0-9]*|zero-shot) ;;
      *) [ -n "$n" ] && base=$base-n$n ;;
    esac
    [ -f "$DEST$suf/$base/scores.jsonl" ] || { echo "rl_vs_sft_grow.sh: $v: no scores for $base" >&2; exit 2; }
    tmp=$(mktemp -d)
    $B eval --compare "$DEST$suf/$base" "$DEST$suf/$row" --out "$tmp" > /dev/null 2>&1
    cp "$tmp/compare.json" "$v"
    rm -rf "$tmp"
  done
done
log "done: $DEST"
