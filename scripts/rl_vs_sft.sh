#!/usr/bin/env bash
# The RL-vs-SFT study (docs/results/rl-vs-sft.md): `scripts/rl_vs_sft.sh TASK [N ...]`.
# For each label count N (default: 1000): SFT only, RL only (from the base model) and SFT then RL
# (RL from the SFT run's adapter) from configs/runs/rl-vs-sft/TASK.toml, all verdict-only; a
# TF-IDF + logistic regression baseline on exactly the SFT run's training ids; then every row and
# the zero-shot model scored on the same test items (first LIMIT of the test split; thresholds on
# the first VAL_LIMIT validation items), and paired bootstrap comparisons against SFT only and
# zero-shot (SFT then RL also against SFT then more SFT and TF-IDF, and against SFT only at every
# larger label count given). Finished runs and scores are kept (re-running resumes). One job at a time: the
# timings in the run folders mean something only on a quiet machine.
# With COMMIT=1 the small files behind the page (scores, metrics, run metrics.jsonl, configs,
# training ids) are copied to docs/results/rl-vs-sft/TASK/ (rows of the first N without suffix).
# Rows: sft, rl, sft-rl, sft-more (SFT continued for as many steps as the RL stage of sft-rl:
# the compute-matched control), and rl-kl-fmt (RL only with the KL term to the base and the format
# term: the recipe overlay configs/runs/recipes/rl-kl-fmt.toml). Tasks with an out-of-distribution set (offensive: HateXplain) also
# score every row there at the row's in-distribution threshold (ROW/test-ood).
# Environment: B (binary, default target/release/modrl), LIMIT (default 400), VAL_LIMIT (100), RUNS (runs/rl-vs-sft), ROWS (default
# "sft rl sft-rl"), SETS (extra --set overrides for every training run, space separated), MODEL (an
# HF model directory every row is trained from and scored with instead of the default model; with
# its own RUNS and without COMMIT: scripts/second_model.sh runs the 0.5B model this way).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: scripts/rl_vs_sft.sh TASK [N ...]}
shift
LABELS=("$@")
[ ${#LABELS[@]} -gt 0 ] || LABELS=(1000)
B=${B:-target/release/modrl}
M=${MODEL:-models/smollm2-135m-instruct}
if [ -n "${MODEL:-}" ] && [ "${COMMIT:-0}" = 1 ]; then
  echo "rl_vs_sft.sh: COMMIT=1 with MODEL would copy its rows over the default model's in docs/results; commit them with scripts/second_model.sh" >&2
  exit 2
fi
C=configs/runs/rl-vs-sft/$TASK.toml
LIMIT=${LIMIT:-400}
VAL_LIMIT=${VAL_LIMIT:-100}
RUNS=${RUNS:-runs/rl-vs-sft}/$TASK
ROWS=${ROWS:-sft rl sft-rl}
case $TASK in
  prompt-harm)
    P=configs/policies/prompt-harm-compact.toml
    D0=runs/data/prompt-harm.jsonl
    D=runs/data/prompt-harm-study.jsonl
    IMPORT=(--source prompt-harm --in ../shared/data/prompt-harm) ;;
  offensive)
    P=configs/policies/offensive-compact.toml
    D0=runs/data/davidson-offensive.jsonl
    D=$D0
    IMPORT=(--source davidson --task offensive --in ../shared/data/davidson-hate-offensive/labeled_data.csv)
    # Out of distribution: HateXplain posts (Gab and Twitter, other annotators), offensive =
    # hate speech or offensive; scored at each row's in-distribution threshold.
    OOD=runs/data/hatexplain-offensive.jsonl
    OOD_IMPORT=(--source hatexplain --task offensive --in ../shared/data/hatexplain-partial) ;;
  *) echo "rl_vs_sft.sh: unknown task '$TASK' (prompt-harm or offensive)" >&2; exit 2 ;;
esac
[ -f "$C" ] || { echo "rl_vs_sft.sh: no config $C" >&2; exit 2; }
[ -x "$B" ] || scripts/setup.sh
if [ ! -f "$D0" ]; then
  mkdir -p "$(dirname "$D0")"
  $B data import "${IMPORT[@]}" --out "$D0" > /dev/null
fi
if [ "$D" != "$D0" ] && [ ! -f "$D" ]; then
  # The same records; the test split reordered to alternate its sources (GuardReasoner, the
  # training source, and WildGuard, held out), so the first LIMIT test items hold both.
  .venv/bin/python - "$D0" "$D" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
test = [r for r in rows if r.get("split") == "test"]
by = {}
for r in test:
    by.setdefault(r["id"].split("-")[0], []).append(r)
groups = list(by.values())
inter = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
out = [r for r in rows if r.get("split") != "test"] + inter
with open(sys.argv[2], "w") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
fi
if [ -n "${OOD:-}" ] && [ ! -f "$OOD" ]; then
  $B data import "${OOD_IMPORT[@]}" --out "$OOD" > /dev/null
fi
OOD_LIMIT=${OOD_LIMIT:-200}
sets=()
for s in ${SETS:-}; do sets+=(--set "$s"); done
. scripts/lib/study.sh

train() { # NAME N extra-set...
  local name=$1 n=$2; shift 2
  local dir=$RUNS/n$n/$name
  if [ -f "$dir/final/adapter_model.safetensors" ]; then return; fi
  local resume=()
  [ -d "$dir/checkpoints" ] && resume=(--resume)
  mkdir -p "$(dirname "$dir")"
  log "train $name n=$n"
  $B train --config "$C" --out "$dir" --set "model.path=\"$M\"" --set "data.max_train_examples=$n" "${sets[@]}" "$@" "${resume[@]}" \
    > "$dir.log" 2>&1 || { mkdir -p "$dir"; cat "$dir.log" >&2; exit 1; }
}

score() { # OUTDIR [--adapter DIR]: test items (threshold on val), then the OOD set if any
  local out=$1; shift
  if [ ! -f "$out/metrics.json" ]; then
    log "eval $out"
    $B eval --model $M "$@" --policy $P --data $D --scoring verdict-token --split test \
      --limit "$LIMIT" --val-limit "$VAL_LIMIT" --out "$out" > /dev/null 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
  fi
  if [ -n "${OOD:-}" ] && [ ! -f "$out-ood/metrics.json" ]; then
    local thr
    thr=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold"])' "$out/metrics.json")
    log "eval $out-ood (threshold $thr from the in-distribution validation items)"
    $B eval --model $M "$@" --policy $P --data "$OOD" --scoring verdict-token --split test \
      --limit "$OOD_LIMIT" --threshold "$thr" --out "$out-ood" > /dev/null 2> "$out-ood.log" || { cat "$out-ood.log" >&2; exit 1; }
  fi
}

mkdir -p "$RUNS"
score "$RUNS/zero-shot"
for n in "${LABELS[@]}"; do
  for row in $ROWS; do
    case $row in
      sft) train sft "$n" --set 'stages=["sft"]' ;;
      rl) train rl "$n" --set 'stages=["rl"]' ;;
      rl-kl-fmt)  # RL only with the KL term to the base and the format term (docs/results/scaling.md)
        train rl-kl-fmt "$n" --overlay configs/runs/recipes/rl-kl-fmt.toml ;;
      sft-more)  # the compute-matched control of sft-rl: as many more SFT steps as RL steps
        train sft "$n" --set 'stages=["sft"]'
        train sft-more "$n" --set 'stages=["sft"]' --set "model.adapter=\"$RUNS/n$n/sft/final\"" \
          --set "sft.max_steps=$(.venv/bin/python -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["rl"]["max_steps"])' "$C")" ;;
      sft-rl)
        train sft "$n" --set 'stages=["sft"]'
        train sft-rl "$n" --set 'stages=["rl"]' --set "model.adapter=\"$RUNS/n$n/sft/final\"" ;;
      *) echo "unknown row $row" >&2; exit 2 ;;
    esac
    score "$RUNS/n$n/$row/test" --adapter "$RUNS/n$n/$row/final"
  done
  # The classical baseline on exactly the SFT run's training examples.
  ids=$RUNS/n$n/sft/train_ids.txt
  if [ -f "$ids" ] && [ ! -f "$RUNS/n$n/tfidf/test/metrics.json" ]; then
    log "tfidf n=$n"
    mkdir -p "$RUNS/n$n/tfidf/test"
    ood_args=()
    [ -n "${OOD:-}" ] && ood_args=(--ood-data "$OOD" --ood-out "$RUNS/n$n/tfidf/test-ood" --ood-limit "$OOD_LIMIT")
    .venv/bin/python scripts/baseline_tfidf.py --data "$D" --train-ids "$ids" \
      --out "$RUNS/n$n/tfidf/test" --limit "$LIMIT" --val-limit "$VAL_LIMIT" "${ood_args[@]}" > /dev/null
    $B eval --from-scores "$RUNS/n$n/tfidf/test" --scorer-name "TF-IDF + logistic regression (n=$n)" \
      --out "$RUNS/n$n/tfidf/test" > /dev/null
    if [ -n "${OOD:-}" ]; then
      thr=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold"])' "$RUNS/n$n/tfidf/test/metrics.json")
      $B eval --from-scores "$RUNS/n$n/tfidf/test-ood" --threshold "$thr" \
        --scorer-name "TF-IDF + logistic regression (n=$n), out of distribution" --out "$RUNS/n$n/tfidf/test-ood" > /dev/null
    fi
  fi
  for row in $ROWS tfidf; do
    for suf in "" -ood; do
      [ -f "$RUNS/n$n/$row/test$suf/metrics.json" ] || continue
      bases="zero-shot sft"
      # SFT then RL against its compute-matched control, SFT then as many more SFT steps.
      # ... and against the classical baseline on the same labels.
      [ "$row" = sft-rl ] && bases="$bases sft-more tfidf"
      [ "$row" = rl-kl-fmt ] && bases="$bases sft-more tfidf sft-rl rl"
      for base in $bases; do
        [ "$row" = "$base" ] && continue
        a=$RUNS/$base$suf; [ "$base" != zero-shot ] && a=$RUNS/n$n/$base/test$suf
        [ -f "$a/scores.jsonl" ] || continue
        mkdir -p "$RUNS/n$n/$row/vs-$base$suf"
        $B eval --compare "$a" "$RUNS/n$n/$row/test$suf" --out "$RUNS/n$n/$row/vs-$base$suf" 2> /dev/null \
          | sed "s|^|n=$n $row vs $base$suf: |"
      done
    done
  done
done
# Labels against labels (the paper's "RL matches SFT on 10x-100x the labels"): SFT then RL at each
# label count n1 against SFT only at every larger count n2, paired on the same test items.
for n1 in "${LABELS[@]}"; do
  for n2 in "${LABELS[@]}"; do
    [ "$n2" -gt "$n1" ] || continue
    for suf in "" -ood; do
      a=$RUNS/n$n2/sft/test$suf b=$RUNS/n$n1/sft-rl/test$suf
      [ -f "$a/scores.jsonl" ] && [ -f "$b/scores.jsonl" ] || continue
      mkdir -p "$RUNS/n$n1/sft-rl/vs-sft-n$n2$suf"
      $B eval --compare "$a" "$b" --out "$RUNS/n$n1/sft-rl/vs-sft-n$n2$suf" 2> /dev/null \
        | sed "s|^|sft-rl n=$n1 vs sft n=$n2$suf: |"
    done
  done
done
if [ "${COMMIT:-0}" = 1 ]; then
  dest=docs/results/rl-vs-sft/$TASK
  first=${LABELS[0]}
  copy_eval "$RUNS/zero-shot" "$dest/zero-shot"
  [ -f "$RUNS/zero-shot-ood/metrics.json" ] && copy_eval "$RUNS/zero-shot-ood" "$dest-ood/zero-shot"
  for n in "${LABELS[@]}"; do
    suffix=""; [ "$n" = "$first" ] || suffix="-n$n"
    for row in $ROWS tfidf; do
      [ -f "$RUNS/n$n/$row/test/metrics.json" ] || continue
      copy_eval "$RUNS/n$n/$row/test" "$dest/$row$suffix"
      [ -f "$RUNS/n$n/$row/test-ood/metrics.json" ] && copy_eval "$RUNS/n$n/$row/test-ood" "$dest-ood/$row$suffix"
      for f in metrics.jsonl config.toml train_ids.txt; do
        [ -f "$RUNS/n$n/$row/$f" ] && cp "$RUNS/n$n/$row/$f" "$dest/$row$suffix/run-$f"
      done
      for c in "$RUNS/n$n/$row"/vs-*/compare.json; do
        [ -f "$c" ] || continue
        v=$(basename "$(dirname "$c")")
        case $v in
          *-ood) cp "$c" "$dest-ood/$row$suffix/${v%-ood}.json" ;;
          *) cp "$c" "$dest/$row$suffix/$v.json" ;;
        esac
      done
    done
  done
  log "copied to $dest"
fi
