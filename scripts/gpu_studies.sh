#!/usr/bin/env bash
# The compute-bound studies, side by side on one GPU, each bounded by BUDGET seconds:
#   1. `modrl classify` over the full Davidson file (24,783 tweets), killed with SIGKILL midway and
#      resumed (bench/classify_resume.sh; report docs/results/classify-davidson.md);
#   2. the reward-shaping pair (configs/runs/gpu/shaping-{accuracy-only,shaped}.toml);
#   3. SFT then RL on prompt-harm (configs/runs/gpu/prompt-harm-sft-rl.toml), then the zero-shot,
#      SFT-only and SFT-then-RL weights evaluated on the same test prompts (verdict-token, LIMIT items).
# Needs: the default model in models/, runs/data/{davidson-hate,prompt-harm}.jsonl, a CUDA build of
# torch 2.11 on LD_LIBRARY_PATH (the CPU-built binary loads libtorch_cuda.so on demand).
# Logs go to runs/gpu-logs/. Plots and result pages are made afterwards on any machine
# (docs/results/archive/reward-shaping.md and archive/prompt-harm-sft-rl.md say how).
set -uo pipefail
cd "$(dirname "$0")/.."
M=${M:-target/release/modrl}
PY=${PY:-python3}
BUDGET=${BUDGET:-420}
LIMIT=${LIMIT:-1000}
MODEL=models/smollm2-135m-instruct
L=runs/gpu-logs
mkdir -p "$L"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
START=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - START))); }

OUT=runs/classify-davidson DEVICE=cuda M=$M PY=$PY WHERE="one ${GPU:-GPU}" KILL_AFTER=${KILL_AFTER:-40} BATCH=${BATCH:-64} \
  timeout "$BUDGET" bench/classify_resume.sh >"$L/classify.log" 2>&1 &

for c in shaping-accuracy-only shaping-shaped; do
  timeout "$BUDGET" "$M" train --config "configs/runs/gpu/$c.toml" >"$L/$c.log" 2>&1 &
done

eval_one() { # name, adapter args...
  local name=$1; shift
  timeout "$(left)" "$M" eval --model "$MODEL" "$@" --device cuda --policy configs/policies/prompt-harm-compact.toml \
    --data runs/data/prompt-harm.jsonl --scoring verdict-token --limit "$LIMIT" --batch-rows 64 \
    --out "runs/gpu-prompt-harm-eval/$name-verdict-token" >"$L/eval-$name.log" 2>&1
}
(
  eval_one zero-shot
  R=runs/gpu-prompt-harm-sft-rl
  timeout $(($(left) - 45)) "$M" train --config configs/runs/gpu/prompt-harm-sft-rl.toml >"$L/prompt-harm-sft-rl.log" 2>&1
  [ -d "$R/after_sft" ] && eval_one sft-only --adapter "$R/after_sft"
  [ -d "$R/final" ] && eval_one sft-rl --adapter "$R/final"
) &
wait
echo "gpu_studies: done in $(($(date +%s) - START)) s on ${GPU:-?}"
tail -n 3 "$L"/*.log
