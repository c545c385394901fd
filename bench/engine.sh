#!/usr/bin/env bash
# Engine benchmark: modrl_model (Rust, tch) vs PyTorch + transformers on the same libtorch, CPU, f32.
#   - generation tokens/s (greedy, KV cache, left-padded batch of chat prompts) at batch 1, 16, 64
#   - full fine-tuning tokens/s (forward + backward + AdamW step) on 8 x 256 tokens
# Each number is the median of RUNS timed runs after one warm-up. Both sides stay loaded for the
# whole run (the peer in engine_peer.py, ours as a `serve` child process of it) and take turns run
# by run, alternating which goes first, so machine noise hits both alike.
# Writes docs/results/bench-engine.md; raw JSON goes to target/bench-engine/.
#
# Usage: bench/engine.sh            (env: MODEL, THREADS=2, RUNS=3, MAX_NEW=64, MAX_NEW_B64=32)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${MODEL:-models/smollm2-135m-instruct}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
MAX_NEW="${MAX_NEW:-64}"
MAX_NEW_B64="${MAX_NEW_B64:-32}"
PY="${PY:-$ROOT/.venv/bin/python}"
RAW="$ROOT/target/bench-engine"
OUT_MD="$ROOT/docs/results/bench-engine.md"
CMDLINE="bench/engine.sh"
for v in MODEL THREADS RUNS MAX_NEW MAX_NEW_B64; do
    CMDLINE="$v=${!v} $CMDLINE"
done

mkdir -p "$RAW" "$(dirname "$OUT_MD")"
rm -f "$RAW"/results.json

echo "== build (bench/engine, release, CARGO_TARGET_DIR=$ROOT/target)" >&2
# Built from bench/engine so cargo picks up $ROOT/.cargo/config.toml (LIBTORCH, rpath) on its way up.
(cd bench/engine && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet)
OURS="$ROOT/target/release/modrl-bench-engine"

echo "== prepare inputs" >&2
"$PY" bench/engine_peer.py prepare --model "$MODEL" --out "$RAW/data.json"

echo "== run (ours and peer interleaved run by run; progress below)" >&2
T0=$(date +%s)
"$PY" bench/engine_peer.py drive --model "$MODEL" --data "$RAW/data.json" --ours "$OURS" \
    --runs "$RUNS" --threads "$THREADS" --lr 1e-5 \
    --configs "gen:1:$MAX_NEW,gen:16:$MAX_NEW,gen:64:$MAX_NEW_B64,train:8:256" \
    --out "$RAW/results.json" 2> >(grep --line-buffered -v '^Loading weights' >&2)
ELAPSED=$(( $(date +%s) - T0 ))

# Positional argument order matches engine_report.py's expectations.
"$PY" bench/engine_report.py "$RAW/results.json" "$OUT_MD" "$CMDLINE" "$ELAPSED" "$MODEL"
cat "$OUT_MD"
