#!/usr/bin/env bash
# Build the Python package `modrl` (crates/py: PyO3 abi3 extension + crates/py/python/modrl) with
# maturin and install it into .venv: `scripts/build_python_package.sh [--release]`.
# scripts/setup.sh runs it with --release; scripts/test.sh with the test profile's settings.
# The wheel links the venv torch's libtorch (rpath $ORIGIN/../torch/lib), so it is not repaired into a
# manylinux wheel with its own copy (--auditwheel skip): it is for this venv, not for PyPI.
# Run from anywhere: cargo reads .cargo/config.toml (LIBTORCH) from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
case "${1:-}" in
  --release) args=(--release) ;;
  "") ;;
  *) echo "usage: scripts/build_python_package.sh [--release]" >&2; exit 2 ;;
esac
[ -x .venv/bin/maturin ] || { echo "build_python_package: .venv/bin/maturin missing: run scripts/setup.sh --no-build" >&2; exit 1; }
rm -f target/wheels/modrl-*.whl
.venv/bin/maturin build "${args[@]}" --manifest-path crates/py/Cargo.toml \
  --interpreter .venv/bin/python --out target/wheels --auditwheel skip --compatibility linux >&2
.venv/bin/python -m pip install -q --force-reinstall --no-deps target/wheels/modrl-*.whl
.venv/bin/python -c 'import modrl; print("installed modrl", modrl.__version__, "from", modrl.__file__)' >&2
