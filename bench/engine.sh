#!/usr/bin/env bash
# Engine benchmark: modrl_model (Rust, tch) vs PyTorch + transformers on the same libtorch, CPU, f32.
#   - generation tokens/s (greedy, KV cache, left-padded batch of chat prompts) at batch 1, 16, 64
#   - full fine-tuning tokens/s (forward + backward + AdamW step) on 8 x 256 tokens
# Each number is the median of RUNS timed runs after one warm-up; ours and the peer run back to
# back for each configuration (alternating which goes first) so machine noise hits both.
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
rm -f "$RAW"/*.json

echo "== build (bench/engine, release, CARGO_TARGET_DIR=$ROOT/target)" >&2
# Built from bench/engine so cargo picks up $ROOT/.cargo/config.toml (LIBTORCH, rpath) on its way up.
(cd bench/engine && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet)
OURS="$ROOT/target/release/modrl-bench-engine"

echo "== prepare inputs" >&2
"$PY" bench/engine_peer.py prepare --model "$MODEL" --out "$RAW/data.json"

T0=$(date +%s)
i=0
run_pair() {  # name, then the arguments shared by both sides
    local name="$1"; shift
    local common=(--model "$MODEL" --data "$RAW/data.json" --runs "$RUNS" --threads "$THREADS" "$@")
    local first second
    if (( i % 2 == 0 )); then first=ours; second=peer; else first=peer; second=ours; fi
    i=$((i + 1))
    for side in $first $second; do
        echo "== $name: $side ($(( $(date +%s) - T0 ))s elapsed, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        if [[ $side == ours ]]; then
            "$OURS" "${common[@]}" > "$RAW/$name.ours.json"
        else
            "$PY" bench/engine_peer.py "${common[@]}" 2>/dev/null > "$RAW/$name.peer.json"
        fi
        cat "$RAW/$name.$side.json" >&2
    done
}
run_pair gen_b1 gen --batch 1 --max-new "$MAX_NEW"
run_pair gen_b16 gen --batch 16 --max-new "$MAX_NEW"
run_pair gen_b64 gen --batch 64 --max-new "$MAX_NEW_B64"
run_pair train_8x256 train --batch 8 --seq 256 --lr 1e-5
ELAPSED=$(( $(date +%s) - T0 ))

# Positional argument order matches engine_report.py's expectations.
"$PY" bench/engine_report.py "$RAW" "$OUT_MD" "$CMDLINE" "$ELAPSED" "$MODEL"
cat "$OUT_MD"
