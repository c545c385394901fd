#!/usr/bin/env bash
# Self-generated-reasoning SFT then reasoning RL (rows star-sft and star-sft-rl of
# docs/results/rl-vs-sft.md): `scripts/star_sft_rl.sh TASK N`.
#   1. `modrl data self-reason` on exactly the N training items of the study's SFT-only run
#      (RUNS/TASK/nN/sft/train_ids.txt, made by scripts/rl_vs_sft.sh TASK N): K samples per item
#      from the base model, kept when the model's verdict after its reasoning matches the label.
#   2. SFT on the kept answers (configs/runs/recipes/star-sft.toml over the task's config).
#   3. Reasoning RL from that adapter on the same N labels (configs/runs/recipes/star-rl.toml).
#   4. Both rows scored as trained (`--scoring reasoned`: one greedy reasoning, then P(violating)
#      at the verdict position) on the study's test items, threshold on validation, and with
#      verdict-token beside it (ROW/test-vt); the out-of-distribution set at the row's threshold.
#   5. Paired comparisons on the same items against SFT only, SFT then label-token RL and
#      zero-shot at N labels (their scores restricted to the star rows' items), and each other.
# Finished steps are kept (re-running resumes; a larger LIMIT scores the items not yet scored
# once the row's metrics.json is removed). One job at a time. COMMIT=1 copies the small files
# behind the page to docs/results/rl-vs-sft/TASK/ROW-nN beside the study's rows (it refuses unless
# the rows hold exactly the study's test items) and, out of distribution, to TASK-ood/ROW-nN.
# Reasoned scoring generates an answer per item (~30-50 items a minute on 2 cores): the 1000 test
# tweets take about half an hour per row (OOD_LIMIT=0 skips out-of-distribution scoring).
# Environment: B (binary), LIMIT (1000), VAL_LIMIT (100), OOD_LIMIT (200), K (4), T (0.7),
# MAX_NEW (96), RUNS (runs/rl-vs-sft).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: scripts/star_sft_rl.sh TASK N}
N=${2:?usage: scripts/star_sft_rl.sh TASK N}
B=${B:-target/release/modrl}
M=models/smollm2-135m-instruct
C=configs/runs/rl-vs-sft/$TASK.toml
LIMIT=${LIMIT:-1000}
VAL_LIMIT=${VAL_LIMIT:-100}
OOD_LIMIT=${OOD_LIMIT:-200}
K=${K:-4}
T=${T:-0.7}
MAX_NEW=${MAX_NEW:-96}
RUNS=${RUNS:-runs/rl-vs-sft}/$TASK
case $TASK in
  prompt-harm) P=configs/policies/prompt-harm-compact.toml; D=runs/data/prompt-harm-study.jsonl; OOD= ;;
  offensive) P=configs/policies/offensive-compact.toml; D=runs/data/davidson-offensive.jsonl
    OOD=runs/data/hatexplain-offensive.jsonl ;;
  *) echo "star_sft_rl.sh: unknown task '$TASK' (prompt-harm or offensive)" >&2; exit 2 ;;
esac
ids=$RUNS/n$N/sft/train_ids.txt
[ -f "$ids" ] || { echo "star_sft_rl.sh: no $ids: run scripts/rl_vs_sft.sh $TASK $N first" >&2; exit 2; }
. scripts/lib/study.sh
dir=$RUNS/n$N
star=$dir/star
mkdir -p "$star"

if [ ! -f "$star/self-reason.jsonl" ]; then
  log "self-reason n=$N k=$K T=$T"
  $B data self-reason --model $M --policy $P --in "$D" --ids "$ids" --k "$K" --temperature "$T" \
    --max-new-tokens "$MAX_NEW" --out "$star/self-reason.jsonl" 2> "$star/self-reason.log" \
    || { cat "$star/self-reason.log" >&2; exit 1; }
fi
# The kept targets plus the task's validation records (the trainer's own final report reads them).
if [ ! -f "$star/train.jsonl" ]; then
  .venv/bin/python - "$star/self-reason.jsonl" "$D" "$star/train.jsonl" <<'PY'
import json, sys
kept = [l for l in open(sys.argv[1]) if l.strip()]
val = [l for l in open(sys.argv[2]) if l.strip() and json.loads(l).get("split") == "val"]
with open(sys.argv[3], "w") as f:
    f.writelines(kept + val)
PY
fi

train() { # NAME extra-args...
  local name=$1; shift
  local out=$dir/$name
  [ -f "$out/final/adapter_model.safetensors" ] && return
  local resume=()
  [ -d "$out/checkpoints" ] && resume=(--resume)
  log "train $name n=$N"
  $B train --config "$C" --out "$out" "$@" "${resume[@]}" > "$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
}

score() { # ROW: reasoned and verdict-token on the test items, then the OOD set at the row's threshold
  local row=$1 out
  for mode in reasoned verdict-token; do
    out=$dir/$row/test; [ "$mode" = verdict-token ] && out=$dir/$row/test-vt
    if [ ! -f "$out/metrics.json" ]; then
      log "eval $row $mode"
      $B eval --model $M --adapter "$dir/$row/final" --policy $P --data "$D" --scoring $mode \
        --max-new-tokens "$MAX_NEW" --split test --limit "$LIMIT" --val-limit "$VAL_LIMIT" \
        --out "$out" > /dev/null 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
    fi
    if [ -n "$OOD" ] && [ "$OOD_LIMIT" -gt 0 ] && [ ! -f "$out-ood/metrics.json" ]; then
      local thr
      thr=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold"])' "$out/metrics.json")
      log "eval $row $mode ood (threshold $thr)"
      $B eval --model $M --adapter "$dir/$row/final" --policy $P --data "$OOD" --scoring $mode \
        --max-new-tokens "$MAX_NEW" --split test --limit "$OOD_LIMIT" --threshold "$thr" \
        --out "$out-ood" > /dev/null 2> "$out-ood.log" || { cat "$out-ood.log" >&2; exit 1; }
    fi
  done
}

train star-sft --overlay configs/runs/recipes/star-sft.toml --set "data.path=\"$star/train.jsonl\""
score star-sft
# The task config without its label-token-only keys (an overlay cannot remove a key).
grep -v -E '^(label_estimator|balance_labels) ' "$C" > "$star/rl-base.toml"
C=$star/rl-base.toml train star-sft-rl --overlay configs/runs/recipes/star-rl.toml \
  --set "data.max_train_examples=$N" --set "model.adapter=\"$dir/star-sft/final\""
score star-sft-rl

# The baselines on exactly the items the star rows were scored on (the first LIMIT test items):
# the study's rows at N labels and zero-shot, their scores restricted to those ids, metrics
# recomputed (`modrl eval --from-scores`, threshold from the same validation scores).
sub=$dir/star/baselines
for row in zero-shot sft sft-rl rl-kl-fmt; do
  src=$dir/$row/test; [ "$row" = zero-shot ] && src=$RUNS/zero-shot
  [ -f "$src/scores.jsonl" ] || continue
  [ -f "$sub/$row/metrics.json" ] && continue
  mkdir -p "$sub/$row"
  restrict_scores "$dir/star-sft/test/scores.jsonl" "$src/scores.jsonl" "$sub/$row/scores.jsonl"
  [ -f "$src/val_scores.jsonl" ] && cp "$src/val_scores.jsonl" "$sub/$row/"
  $B eval --from-scores "$sub/$row" --out "$sub/$row" > /dev/null 2>&1
done

# Paired comparisons on the same items: each star row against SFT only, SFT then label-token RL
# and zero-shot at N labels; SFT then RL against its SFT start under the same scoring.
for row in star-sft star-sft-rl; do
  for t in test test-vt; do
    for base in sft sft-rl zero-shot; do
      compare "$sub/$base" "$dir/$row/$t" "$dir/$row/$t-vs-$base" "$row $t vs $base"
    done
  done
done
for t in test test-vt; do
  compare "$dir/star-sft/$t" "$dir/star-sft-rl/$t" "$dir/star-sft-rl/$t-vs-star-sft" "star-sft-rl $t vs star-sft"
done
# Out of distribution (OOD_LIMIT > 0): the same posts as the study's rows, so against them directly.
ood_rows=()
if [ -n "$OOD" ] && [ "$OOD_LIMIT" -gt 0 ]; then
  ood_rows=(star-sft star-sft-rl)
  for row in "${ood_rows[@]}"; do
    for t in test test-vt; do
      for base in sft sft-rl; do
        compare "$dir/$base/test-ood" "$dir/$row/$t-ood" "$dir/$row/$t-vs-$base-ood" "$row $t vs $base (ood)"
      done
      compare "$RUNS/zero-shot-ood" "$dir/$row/$t-ood" "$dir/$row/$t-vs-zero-shot-ood" "$row $t vs zero-shot (ood)"
    done
  done
  for t in test test-vt; do
    compare "$dir/star-sft/$t-ood" "$dir/star-sft-rl/$t-ood" "$dir/star-sft-rl/$t-vs-star-sft-ood" "star-sft-rl $t vs star-sft (ood)"
  done
fi

if [ "${COMMIT:-0}" = 1 ]; then
  # Into the study's task folder beside its rows, which hold every test item: the star rows must
  # have been scored on exactly the same items (LIMIT as large as the study's).
  dest=docs/results/rl-vs-sft/$TASK
  .venv/bin/python - "$dest/zero-shot/scores.jsonl" "$dir/star-sft/test/scores.jsonl" "$dir/star-sft-rl/test/scores.jsonl" <<'PY' || exit 1
import json, sys
ids = lambda p: sorted(json.loads(l)["id"] for l in open(p) if l.strip())
want = ids(sys.argv[1])
for p in sys.argv[2:]:
    if ids(p) != want:
        sys.exit(f"star_sft_rl.sh: {p} holds {len(ids(p))} test items, not the {len(want)} of {sys.argv[1]}: "
                 f"score with LIMIT={len(want)} before COMMIT=1")
PY
  for suf in "" -ood; do
    [ "$suf" = -ood ] && [ ${#ood_rows[@]} -eq 0 ] && continue
    for row in star-sft star-sft-rl; do
      for t in test test-vt; do
        name=$row-n$N; [ "$t" = test-vt ] && name=$row-vt-n$N
        [ -f "$dir/$row/$t$suf/metrics.json" ] || continue
        copy_eval "$dir/$row/$t$suf" "$dest$suf/$name"
        for c in "$dir/$row/$t"-vs-*/compare.json; do
          [ -f "$c" ] || continue
          v=$(basename "$(dirname "$c")"); v=${v#"$t"-}
          case $v in *-ood) [ "$suf" = -ood ] || continue; v=${v%-ood} ;; *) [ "$suf" = -ood ] && continue ;; esac
          # The naming rule of the study's folders: vs-ROW names the row at the same N.
          [ "$t" = test-vt ] && [ "$v" = vs-star-sft ] && v=vs-star-sft-vt
          cp "$c" "$dest$suf/$name/$v.json"
        done
      done
      if [ -z "$suf" ]; then
        for f in metrics.jsonl config.toml; do
          [ -f "$dir/$row/$f" ] && cp "$dir/$row/$f" "$dest/$row-n$N/run-$f"
        done
      fi
    done
  done
  cp "$star/self-reason.stats.json" "$dest/star-sft-n$N/self-reason.stats.json"
  log "copied to $dest and $dest-ood"
fi
