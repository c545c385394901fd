#!/usr/bin/env bash
# The reward-hacking study of docs/results/reward-shaping.md: does reasoning RL with the accuracy
# reward alone shorten the reasoning while the reward rises, and does a length band placed around
# the starting length plus the deterministic rubric prevent it?
#   `scripts/reward_hacking.sh [ARM...]` (default: acc shaped rl-only)
# Arms, each reasoning RL (`rl.action = "completion"`, configs/runs/recipes/star-rl.toml) on the
# offensive task's 240 training labels of the RL-vs-SFT study, the same seed (the same prompts in
# the same order), STEPS steps of 4 prompts x 4 completions of at most 96 tokens at T = 0.7:
#   acc      from the self-generated-reasoning SFT adapter (row star-sft of rl-vs-sft.md, which
#            reasons), accuracy 1 + format 0.2;
#   shaped   the same start, + length 0.5 (band BAND words: around the start's length) +
#            rubric_rules 0.5 (the deterministic rubric; the LLM judge is not used: at 0.5B it does
#            not agree with the verifiable checks, judge-agreement.md);
#   rl-only  from the base model (no SFT), accuracy 1 + format 0.2: where instruction
#            hallucination is expected; stopped after RL_ONLY_STOP steps (no reward signal), not
#            scored on test.
# Every step logs reasoning words, rewards per term, rubric checks and the hallucination monitors
# (metrics.jsonl). Each arm's final adapter is then scored as trained (`--scoring reasoned`) on the
# first LIMIT test tweets (threshold on VAL_LIMIT validation tweets), compared pairwise on the same
# items with each other and with the star-sft start. COMMIT=1 copies the small files behind the
# page to docs/results/reward-shaping/. Needs scripts/star_sft_rl.sh offensive 240 done first
# (the start adapter and its test scores). Finished steps are kept (re-running resumes). One job
# at a time: about 30 s a step on 2 cores.
# Environment: B (binary), STEPS (40), BAND ([30, 60]), LIMIT (300), VAL_LIMIT (100),
# RL_ONLY_STOP (21), RUNS
# (runs/reward-hacking).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-target/release/modrl}
M=models/smollm2-135m-instruct
P=configs/policies/offensive-compact.toml
D=runs/data/davidson-offensive.jsonl
STEPS=${STEPS:-40}
BAND=${BAND:-[30, 60]}
LIMIT=${LIMIT:-300}
VAL_LIMIT=${VAL_LIMIT:-100}
RL_ONLY_STOP=${RL_ONLY_STOP:-21}
unset STOP # set per call of train() only
RUNS=${RUNS:-runs/reward-hacking}
STAR=runs/rl-vs-sft/offensive/n240
start=$STAR/star-sft/final
[ -f "$start/adapter_model.safetensors" ] || { echo "reward_hacking.sh: no $start: run scripts/star_sft_rl.sh offensive 240 first" >&2; exit 2; }
. scripts/lib/study.sh
mkdir -p "$RUNS"
# The task config without its label-token-only keys (an overlay cannot remove a key).
grep -v -E '^(label_estimator|balance_labels) ' configs/runs/rl-vs-sft/offensive.toml > "$RUNS/rl-base.toml"

common=(--overlay configs/runs/recipes/star-rl.toml --set "rl.max_steps=$STEPS" --set data.max_train_examples=240
  --set "rewards.length_band=$BAND" --set rl.log_completions=4)
train() { # NAME extra-args... (STOP=K: stop after K of the STEPS steps, done once K are logged)
  local name=$1; shift
  local out=$RUNS/$name stop=()
  [ -f "$out/final/adapter_model.safetensors" ] && return
  if [ -n "${STOP:-}" ]; then
    [ -f "$out/metrics.jsonl" ] && [ "$(wc -l < "$out/metrics.jsonl")" -ge "$STOP" ] && return
    stop=(--stop-after "$STOP")
  fi
  local resume=()
  [ -d "$out/checkpoints" ] && resume=(--resume)
  log "train $name (${STOP:+stop after $STOP of }$STEPS steps)"
  $B train --config "$RUNS/rl-base.toml" --out "$out" "${common[@]}" "$@" "${stop[@]}" "${resume[@]}" > "$out.log" 2>&1 \
    || { tail -20 "$out.log" >&2; exit 1; }
}
score() { # NAME
  local out=$RUNS/$1/test
  [ -f "$out/metrics.json" ] && return
  log "eval $1 reasoned (first $LIMIT test tweets)"
  $B eval --model $M --adapter "$RUNS/$1/final" --policy $P --data "$D" --scoring reasoned \
    --max-new-tokens 96 --split test --limit "$LIMIT" --val-limit "$VAL_LIMIT" --save-outputs \
    --out "$out" > /dev/null 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
}

arms=("$@")
[ ${#arms[@]} -eq 0 ] && arms=(acc shaped rl-only)
for arm in "${arms[@]}"; do
  case $arm in
    acc) train acc --set "model.adapter=\"$start\"" ;;
    shaped) train shaped --set "model.adapter=\"$start\"" --set rewards.length=0.5 --set rewards.rubric_rules=0.5 ;;
    rl-only) # No signal from the base model (rewards ~0, every answer breaks the contract): stopped
      # after RL_ONLY_STOP steps of the 40-step schedule, its monitors logged; no test scores.
      STOP=$RL_ONLY_STOP train rl-only
      continue ;;
    *) echo "reward_hacking.sh: unknown arm '$arm' (acc, shaped or rl-only)" >&2; exit 2 ;;
  esac
  score "$arm"
done

# The start on the same items: the star-sft row's reasoned test scores restricted to the arms' ids.
first=$RUNS/acc/test/scores.jsonl
if [ ! -f "$RUNS/start/metrics.json" ]; then
  mkdir -p "$RUNS/start"
  restrict_scores "$first" "$STAR/star-sft/test/scores.jsonl" "$RUNS/start/scores.jsonl"
  cp "$STAR/star-sft/test/val_scores.jsonl" "$RUNS/start/"
  $B eval --from-scores "$RUNS/start" --out "$RUNS/start" > /dev/null 2>&1
fi
for pair in start:acc start:shaped acc:shaped start:rl-only; do # A:B, B against A on the same items
  a=${pair%:*} b=${pair#*:}
  adir=$RUNS/$a/test; [ "$a" = start ] && adir=$RUNS/start
  compare "$adir" "$RUNS/$b/test" "$RUNS/$b/test-vs-$a" "$b vs $a"
done

if [ "${COMMIT:-0}" = 1 ]; then
  # Per arm: the run's log, config and logged completions; its test scores as a row folder
  # (ARM/test: scores.jsonl, val_scores.jsonl, metrics.json) with the paired comparisons beside
  # them (ARM/test/vs-OTHER.json); the start's scores on the same items (start/); the figure.
  dest=docs/results/reward-shaping
  plot=()
  for arm in acc shaped rl-only; do
    [ -f "$RUNS/$arm/metrics.jsonl" ] || continue
    mkdir -p "$dest/$arm"
    cp "$RUNS/$arm/metrics.jsonl" "$RUNS/$arm/config.toml" "$RUNS/$arm/completions.jsonl" "$dest/$arm/"
    [ -f "$RUNS/$arm/test/metrics.json" ] && copy_eval "$RUNS/$arm/test" "$dest/$arm/test"
    for c in "$RUNS/$arm"/test-vs-*/compare.json; do
      [ -f "$c" ] || continue
      v=$(basename "$(dirname "$c")"); cp "$c" "$dest/$arm/test/${v#test-}.json"
    done
    plot+=(--run "$arm=$RUNS/$arm")
  done
  copy_eval "$RUNS/start" "$dest/start"
  $B plot "${plot[@]}" --key monitors/reasoning_words --key completions/mean_terminated_length \
    --key rewards/accuracy/mean --key rewards/format/mean --key reward \
    --key monitors/instruction_hallucination_rate \
    --title "Reasoning RL, SmolLM2-135M (Q4_1 GGUF as f32): per RL step" \
    --out "$dest/curves.svg" > /dev/null
  log "copied to $dest"
fi
