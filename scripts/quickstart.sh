#!/usr/bin/env bash
# The main job on the default model: set up and build, import the hate speech data, then run
# configs/runs/quickstart.toml (SFT then RL with LoRA on CPU) ending with an evaluation report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
data=runs/data/davidson-hate.jsonl
if [ ! -f "$data" ]; then
  target/release/modrl data import --source davidson --task hate \
    --in ../shared/data/davidson-hate-offensive/labeled_data.csv --out "$data" > /dev/null
fi
target/release/modrl train --config configs/runs/quickstart.toml "$@"
echo "report: runs/quickstart/eval/report.html   metrics: runs/quickstart/metrics.jsonl"
