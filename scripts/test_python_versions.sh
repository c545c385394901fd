#!/usr/bin/env bash
# Setup on every supported Python: `scripts/test_python_versions.sh [VERSION ...]` (default
# 3.10 3.11 3.12 3.13). For each version: a fresh venv under .cache/pyvenvs/VERSION, `pip install -r
# scripts/requirements.txt` there (pins chosen by the file's python_version markers), the import
# check of scripts/setup.sh, the Python package's abi3 wheel (target/wheels, built by
# scripts/build_python_package.sh: one wheel for every version) installed and tested against the
# modrl binary (scripts/test_python_package.py), and the Python-side tests (TF-IDF baseline, the
# results and config-docs checkers). Needs the default model (scripts/setup.sh) and network access
# to PyPI; each venv is about 6 GB (kept for re-runs; delete .cache/pyvenvs to start afresh).
# Not part of scripts/test.sh (it downloads torch once per version). Prints one line per version
# and exits non-zero if any failed; logs in .cache/pyvenvs/VERSION.log.
# Environment: MODRL (the binary, default target/debug/modrl).
set -uo pipefail
cd "$(dirname "$0")/.."
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.10 3.11 3.12 3.13)
MODRL=${MODRL:-target/debug/modrl}
WHEEL=$(ls target/wheels/modrl-*.whl 2>/dev/null | head -1)
[ -n "$WHEEL" ] || { echo "test_python_versions: no wheel in target/wheels: run scripts/build_python_package.sh" >&2; exit 2; }
[ -x "$MODRL" ] || { echo "test_python_versions: no binary $MODRL: cargo build -p modrl-cli" >&2; exit 2; }
find_python() { # VERSION -> an interpreter of that version
  local v=$1 c
  # On PATH, then pyenv's versions (PYENV_ROOT, default ~/.pyenv).
  for c in "python$v" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v"; do
    for p in $c; do
      if command -v "$p" >/dev/null 2>&1 && "$p" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; then
        command -v "$p"; return 0
      fi
    done
  done
  return 1
}
check='import torch, transformers, peft, gguf, sklearn, safetensors, tensorboard, openai, pyarrow, ray, maturin; assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__'
failed=0
mkdir -p .cache/pyvenvs
for v in "${VERSIONS[@]}"; do
  log=.cache/pyvenvs/$v.log
  venv=.cache/pyvenvs/$v
  py=$(find_python "$v") || { echo "python $v: SKIPPED (no interpreter found)"; failed=1; continue; }
  start=$(date +%s)
  {
    set -e
    echo "== $py ($($py --version 2>&1))"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
      "$venv/bin/python" -m pip install -q --upgrade pip
      "$venv/bin/python" -m pip install -q -r scripts/requirements.txt
    fi
    "$venv/bin/python" -c "$check"
    "$venv/bin/python" -m pip freeze | grep -iE '^(torch|transformers|scikit-learn|pyarrow|ray)=='
    "$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL"
    "$venv/bin/python" scripts/test_python_package.py --modrl "$MODRL"
    "$venv/bin/python" scripts/test_baseline_tfidf.py
    "$venv/bin/python" scripts/test_check_results.py
    "$venv/bin/python" scripts/test_check_config_docs.py
  } > "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc = 0 ]; then
    echo "python $v: ok ($(grep -iE '^(transformers|scikit-learn|pyarrow)==' "$log" | tr '\n' ' ')in ${secs}s)"
  else
    echo "python $v: FAILED (rc $rc, log $log):"; tail -5 "$log" | sed 's/^/    /'
    failed=1
  fi
done
exit $failed
