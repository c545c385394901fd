#!/usr/bin/env bash
# The test command (README and .ci/run): set up what the tests need, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
# Documentation and script checks (seconds): the run-config reference agrees with the code, the
# checker and the TF-IDF baseline script do what they say.
.venv/bin/python scripts/check_config_docs.py
.venv/bin/python scripts/test_check_config_docs.py
.venv/bin/python scripts/test_baseline_tfidf.py
# The RL-vs-SFT page agrees with its committed scores (PR-AUC recomputed from scores.jsonl).
for d in docs/results/rl-vs-sft/*/; do
  .venv/bin/python scripts/rl_vs_sft_table.py "$d" --check docs/results/rl-vs-sft.md > /dev/null
done
# Every results page agrees with its committed data (PR-AUC, CIs, paired differences recomputed from
# scores.jsonl; benchmark medians and ratios from the printed runs; archived pages carry the banner),
# and the checker catches a changed number.
.venv/bin/python scripts/test_check_results.py
scripts/check_results.sh
cargo test --workspace "$@"
# The Python package (crates/py) against `modrl classify` on the same rows, and the Ray Data example
# on a local 2-CPU Ray cluster with one actor killed mid-job (needs the default model).
scripts/build_python_package.sh
cargo build -p modrl-cli --quiet
.venv/bin/python scripts/test_python_package.py --modrl target/debug/modrl
.venv/bin/python scripts/test_ray_classify.py --modrl target/debug/modrl
