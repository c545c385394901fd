#!/usr/bin/env bash
# Engine benchmark on a GPU: modrl_model vs PyTorch + transformers, f32 and bf16, one run. The
# same rows as bench/engine.sh (generation at batch 1 / 16 / 64, verdict-token scoring against
# transformers batched and with the prefix reused, a full fine-tuning step, the GEMM peak and the
# copy bandwidth), each side synchronising the device before a timed run ends; RUNS interleaved
# runs per side after one warm-up, medians with min-max (bench/engine_peer.py drive --device).
# Writes docs/results/gpu-engine.md and the raw runs beside it (gpu-engine/runs-DTYPE.jsonl,
# meta-DTYPE.json), from which scripts/check_results.sh rebuilds the tables.
#
# On a lent GPU machine (the device tool): build here, carry target/release/modrl-bench-engine
# and target/release/modrl (they load the machine's libtorch_cuda.so on demand) and the model
# folder. The default model's f32 weights (538 MB) and even its GGUF (98 MB) exceed the 64 MiB
# transfer limit: carry the folder without model.safetensors (config, tokenizer, chat template)
# and this script fills it with random weights of exactly that architecture (seed 0; speed does
# not depend on the values, and the page says so), e.g.
#   NO_BUILD=1 PY=python3 MODEL=models/smollm2-arch bench/gpu.sh
# Env: MODEL, DEVICE=cuda, DTYPES="f32 bf16", RUNS=5, PY, NO_BUILD=1 (use the carried binaries),
# CONFIGS (default below), SCORE_N=512.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${MODEL:-models/smollm2-135m-instruct}"
DEVICE="${DEVICE:-cuda}"
DTYPES="${DTYPES:-f32 bf16}"
RUNS="${RUNS:-5}"
SCORE_N="${SCORE_N:-512}"
CONFIGS="${CONFIGS:-gemm:8192,copy:2048,gen:1:128,gen:16:128,gen:64:256,score:64:$SCORE_N,train:8:512}"
PY="${PY:-$ROOT/.venv/bin/python}"
DATA="${DATA:-$ROOT/../shared/data/davidson-hate-offensive/labeled_data.csv}"
RAW="$ROOT/target/bench-gpu"
OUT_MD="${OUT_MD:-$ROOT/docs/results/gpu-engine.md}"
mkdir -p "$RAW"
if [ -z "${NO_BUILD:-}" ]; then
    (cd bench/engine && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet)
    cargo build --release --quiet
fi
WEIGHTS="trained"
if [ ! -f "$MODEL/model.safetensors" ]; then
    [ -f "$MODEL/config.json" ] || { echo "$MODEL: no config.json (need at least the model's config and tokenizer)" >&2; exit 2; }
    echo "== $MODEL has no weights: writing random ones of its architecture (seed 0)" >&2
    "$PY" - "$MODEL" <<'P'
import sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
torch.manual_seed(0)
d = sys.argv[1]
AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(d), dtype=torch.float32).save_pretrained(d)
open(f"{d}/RANDOM_WEIGHTS", "w").write("random weights, transformers from_config, torch.manual_seed(0)\n")
P
fi
[ -f "$MODEL/RANDOM_WEIGHTS" ] && WEIGHTS="random (transformers from_config, seed 0)"
OURS="$ROOT/target/release/modrl-bench-engine"
MODRL="$ROOT/target/release/modrl"
N_SCORE=$(echo "$CONFIGS" | tr ',' '\n' | sed -n 's/^score:[0-9]*:\([0-9]*\)$/\1/p' | sort -n | tail -1)
[ -f "$RAW/davidson-offensive.jsonl" ] || "$MODRL" data import --source davidson --task offensive \
    --in "$DATA" --out "$RAW/davidson-offensive.jsonl"
"$MODRL" data prompts --model "$MODEL" --policy configs/policies/offensive-compact.toml \
    --variant no-reasoning --in "$RAW/davidson-offensive.jsonl" --split test --limit "${N_SCORE:-64}" \
    --out "$RAW/score-prompts.jsonl"
"$PY" bench/engine_peer.py prepare --model "$MODEL" --out "$RAW/data.json" --score-prompts "$RAW/score-prompts.jsonl"
T0=$(date +%s)
for dt in $DTYPES; do
    echo "== $DEVICE $dt (ours and peer interleaved run by run)" >&2
    "$PY" bench/engine_peer.py drive --model "$MODEL" --data "$RAW/data.json" --ours "$OURS" --runs "$RUNS" \
        --device "$DEVICE" --dtype "$dt" --lr 1e-5 --configs "$CONFIGS" --out "$RAW/$dt.json" \
        2> >(grep --line-buffered -v '^Loading weights' >&2)
done
ELAPSED=$(( $(date +%s) - T0 ))
"$PY" bench/gpu_report.py "$RAW" "$OUT_MD" "MODEL=$MODEL DEVICE=$DEVICE DTYPES=\"$DTYPES\" RUNS=$RUNS CONFIGS=$CONFIGS bench/gpu.sh" \
    "$ELAPSED" "$MODEL" "$WEIGHTS" $DTYPES
cat "$OUT_MD"
