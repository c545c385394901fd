#!/usr/bin/env bash
# RL with rollouts from a served model over HTTP, on the default model: starts `modrl serve` on
# loopback, runs configs/runs/remote-rollouts.toml against it (the adapter is written and reloaded
# on the server before every step), then prints what the server saw. Results: runs/remote-rollouts/.
set -euo pipefail
cd "$(dirname "$0")/.."
M=target/release/modrl
PORT=${PORT:-8000}
[ -x "$M" ] || cargo build --release -p modrl-cli
mkdir -p runs/data runs/remote-rollouts
[ -f runs/offensive-sft-rl/after_sft/adapter_model.safetensors ] \
  || { echo "remote_rollouts: needs the SFT weights runs/offensive-sft-rl/after_sft (run scripts/recipes.sh offensive first)" >&2; exit 1; }
$M serve --model models/smollm2-135m-instruct --policy configs/policies/offensive-compact.toml \
  --addr "127.0.0.1:$PORT" > runs/remote-rollouts/serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
$M train --config configs/runs/remote-rollouts.toml "$@"
echo "== server: requests by route and status"
curl -s "http://127.0.0.1:$PORT/metrics" | grep '^modrl_requests_total' | tee runs/remote-rollouts/server-requests.txt
curl -s "http://127.0.0.1:$PORT/v1/models" | tee runs/remote-rollouts/server-models.json; echo
grep -i "lora" runs/remote-rollouts/serve.log | tail -3 || true
