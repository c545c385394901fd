#!/usr/bin/env bash
# The test command (README and .ci/run): set up what the tests need, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cargo test --workspace "$@"
