#!/usr/bin/env bash
# Engine benchmark: modrl_model (Rust, tch) vs PyTorch + transformers on the same libtorch, CPU, f32.
#   - generation tokens/s (greedy, KV cache, left-padded batch of chat prompts) at batch 1, 16, 64
#   - verdict-token scoring items/s of SCORE_N Davidson test prompts, SCORE_B per forward: ours
#     (policy prefix cached once) vs transformers batched, and transformers with the prefix reused
#   - full fine-tuning tokens/s (forward + backward + AdamW step) on 8 x 256 tokens
#   - the f32 GEMM peak and the memory copy bandwidth of these threads, each side's MFU against
#     the peak and the batch-1 decoding bound the bandwidth sets
# Each number is the median of RUNS timed runs after one warm-up. Both sides stay loaded for the
# whole run (the peer in engine_peer.py, ours as a `serve` child process of it) and take turns run
# by run, rotating which goes first, so machine noise hits both alike. Run it alone on the machine.
# Writes docs/results/bench-engine.md and every run to docs/results/bench-engine/runs.jsonl; raw
# JSON goes to target/bench-engine/.
#
# Usage: bench/engine.sh   (env: MODEL, THREADS=2, RUNS=5, MAX_NEW=64, MAX_NEW_B64=32, SCORE_B=16,
#                           SCORE_N=64, DATA=../shared/data/davidson-hate-offensive/labeled_data.csv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${MODEL:-models/smollm2-135m-instruct}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-5}"
MAX_NEW="${MAX_NEW:-64}"
MAX_NEW_B64="${MAX_NEW_B64:-32}"
SCORE_B="${SCORE_B:-16}"
SCORE_N="${SCORE_N:-64}"
DATA="${DATA:-$ROOT/../shared/data/davidson-hate-offensive/labeled_data.csv}"
PY="${PY:-$ROOT/.venv/bin/python}"
RAW="$ROOT/target/bench-engine"
OUT_MD="$ROOT/docs/results/bench-engine.md"
CMDLINE="bench/engine.sh"
for v in MODEL THREADS RUNS MAX_NEW MAX_NEW_B64 SCORE_B SCORE_N; do
    CMDLINE="$v=${!v} $CMDLINE"
done

mkdir -p "$RAW" "$(dirname "$OUT_MD")"
rm -f "$RAW"/results.json

echo "== build (bench/engine, release, CARGO_TARGET_DIR=$ROOT/target)" >&2
# Built from bench/engine so cargo picks up $ROOT/.cargo/config.toml (LIBTORCH, rpath) on its way up.
(cd bench/engine && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet)
OURS="$ROOT/target/release/modrl-bench-engine"
cargo build --release --quiet  # the whole workspace, as scripts/setup.sh builds it (no feature re-resolution)
MODRL="$ROOT/target/release/modrl"

echo "== prepare inputs" >&2
[ -f "$RAW/davidson-offensive.jsonl" ] || "$MODRL" data import --source davidson --task offensive \
    --in "$DATA" --out "$RAW/davidson-offensive.jsonl"
"$MODRL" data prompts --model "$MODEL" --policy configs/policies/offensive-compact.toml \
    --variant no-reasoning --in "$RAW/davidson-offensive.jsonl" --split test --limit "$SCORE_N" \
    --out "$RAW/score-prompts.jsonl"
"$PY" bench/engine_peer.py prepare --model "$MODEL" --out "$RAW/data.json" \
    --score-prompts "$RAW/score-prompts.jsonl"

echo "== run (ours and peer interleaved run by run; progress below)" >&2
T0=$(date +%s)
"$PY" bench/engine_peer.py drive --model "$MODEL" --data "$RAW/data.json" --ours "$OURS" \
    --runs "$RUNS" --threads "$THREADS" --lr 1e-5 \
    --configs "gemm:2048,copy:512,gen:1:$MAX_NEW,gen:16:$MAX_NEW,gen:64:$MAX_NEW_B64,score:$SCORE_B:$SCORE_N,train:8:256" \
    --out "$RAW/results.json" 2> >(grep --line-buffered -v '^Loading weights' >&2)
ELAPSED=$(( $(date +%s) - T0 ))

# Positional argument order matches engine_report.py's expectations.
"$PY" bench/engine_report.py "$RAW/results.json" "$OUT_MD" "$CMDLINE" "$ELAPSED" "$MODEL"
cat "$OUT_MD"
