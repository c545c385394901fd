#!/usr/bin/env bash
# The main job on the default model: set up, build, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
target/release/modrl generate --model models/smollm2-135m-instruct \
  --prompt "In one sentence: why do online platforms moderate content?" --max-new-tokens 48 --temperature 0
