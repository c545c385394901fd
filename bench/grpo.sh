#!/usr/bin/env bash
# One GRPO step on the default model: `modrl train` vs TRL's GRPOTrainer, CPU, same model, LoRA,
# prompts, G, batch, completion length, loss (DAPO token mean, beta = 0) and rewards. Each side
# runs ROUNDS times, the sides alternating (ours, TRL, TRL, ours, ...), STEPS optimizer steps a run;
# the first step of every run is a warm-up. Round r seeds both sides with r (data order and
# sampling), so the rounds draw different prompts and completions instead of repeating one run.
# Every step is written to docs/results/bench-grpo/REGIME.json, from which bench/grpo_report.py
# writes docs/results/bench-grpo.md (all regimes measured so far) and scripts/check_results.sh
# rebuilds its tables. Not a test: run it alone on the machine.
#
#   bench/grpo.sh                                        # REGIME=prefix-heavy (defaults below)
#   REGIME=long-completion POLICY=bench/policies/short.toml G=8 PROMPTS=1 MAXLEN=256 MICRO=8 bench/grpo.sh
#   REGIME=short-prefix POLICY=bench/policies/short-compact.toml G=8 PROMPTS=1 MAXLEN=256 MICRO=4 bench/grpo.sh
#   REGIME=nonzero-rewards START=sft MAXLEN=128 bench/grpo.sh
# START=sft: both sides start from the default model after a short SFT in the output contract
# (bench/grpo-start-sft.toml, trained once into runs/bench-grpo/sft-start/final), whose rollouts
# write valid verdicts and so earn mixed rewards; from the base model every reward is 0.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/smollm2-135m-instruct}
REGIME=${REGIME:-prefix-heavy}
ROUNDS=${ROUNDS:-2}        # runs per side, alternating
STEPS=${STEPS:-4}          # per run; step 1 is a warm-up
G=${G:-4}
PROMPTS=${PROMPTS:-2}
MAXLEN=${MAXLEN:-64}
THREADS=${THREADS:-2}
MICRO=${MICRO:-4}          # completions per forward/backward on both sides (memory: TRL needs
                           # ~16 GB at 8 rows of ~650 tokens without gradient checkpointing)
POLICY=${POLICY:-configs/policies/prompt-harm-compact.toml}
START=${START:-base}       # base | sft
OUT=${OUT:-runs/bench-grpo/$REGIME}
PY=.venv/bin/python
M=target/release/modrl

cargo build --release --quiet  # never a stale binary
$PY -c "import trl" 2>/dev/null || .venv/bin/pip install -q "trl==1.16.0"
mkdir -p "$OUT" runs/data
[ -f runs/data/prompt-harm.jsonl ] || $M data import --source prompt-harm --in ../shared/data/prompt-harm --out runs/data/prompt-harm.jsonl
case "$START" in
  base) ;;
  sft)
    SFT_DIR=runs/bench-grpo/sft-start
    [ -f "$SFT_DIR/final/model.safetensors" ] || $M train --config bench/grpo-start-sft.toml --out "$SFT_DIR" \
      --set "model.path=\"$MODEL\""
    MODEL="$SFT_DIR/final" ;;
  *) echo "START must be base or sft, not '$START'" >&2; exit 2 ;;
esac
# 16 training prompts of similar length (100-200 characters; half harmful), so that both sides
# see the same prompt lengths whichever 2 they draw per step.
$PY - "$OUT" <<'P'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open("runs/data/prompt-harm.jsonl")]
pick = {0: [], 1: []}
for r in rows:
    if r["split"] == "train" and 100 <= len(r["text"]) <= 200 and len(pick[r["label"]]) < 8:
        pick[r["label"]].append(r)
recs = [dict(r, split="train") for r in pick[0] + pick[1]] + [dict(pick[0][0], id="v0", split="val"), dict(pick[1][0], id="v1", split="val")]
with open(f"{out}/data.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
P
$M data prompts --model "$MODEL" --policy "$POLICY" --in "$OUT/data.jsonl" --split train --out "$OUT/prompts.jsonl"
cat > "$OUT/ours.toml" <<T
stages = ["rl"]
[model]
path = "$MODEL"
[lora]
r = 16
lora_alpha = 32.0
lora_dropout = 0.0
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
[data]
path = "$OUT/data.jsonl"
policy = "$POLICY"
max_val_examples = 2
[rl]
max_steps = $STEPS
prompts_per_step = $PROMPTS
num_generations = $G
max_completion_length = $MAXLEN
temperature = 1.0
learning_rate = 3e-5
loss_type = "dapo"
scale_rewards = "group"
micro_batch_size = $MICRO
[rewards]
accuracy = 1.0
format = 0.2
[eval]
every = 0
scoring = "verdict-token"
[run]
out = "$OUT/ours-run"
save_every = 1000
threads = $THREADS
seed = SEED
T
load() { cut -d' ' -f1 /proc/loadavg; }
RAW="$OUT/steps.jsonl"
rm -f "$RAW"
ours() { # round
  rm -rf "$OUT/ours-run"
  local l0; l0=$(load)
  echo "== round $1: ours (load $l0)"
  sed "s/^seed = SEED$/seed = $1/" "$OUT/ours.toml" > "$OUT/ours-round.toml"
  $M train --config "$OUT/ours-round.toml" 2>&1 | grep -v "^\s*$" | tail -2
  $PY - "$OUT/ours-run/metrics.jsonl" "$1" "$l0" >> "$RAW" <<'P'
import json, sys
path, rnd, load = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rows = [r for r in map(json.loads, open(path)) if r.get("stage") == "rl" and "step_time" in r]
for i, r in enumerate(rows):
    print(json.dumps({"side": "modrl", "round": rnd, "step": i + 1, "warmup": i == 0,
                      "seconds": round(r["step_time"], 3), "completion_tokens": r["num_tokens"],
                      "clipped": r.get("completions/clipped_ratio"), "reward": r.get("reward"),
                      "frac_reward_zero_std": r.get("frac_reward_zero_std"),
                      **{k: round(r[m], 3) for k, m in [("generation_s", "timing/generation"),
                         ("rewards_s", "timing/rewards"), ("forward_backward_s", "timing/forward_backward"),
                         ("optimizer_s", "timing/optimizer")] if m in r},
                      "seed": rnd, "load_before_run": load}))
P
}
trl() { # round
  rm -rf "$OUT/trl-run"
  local l0; l0=$(load)
  echo "== round $1: TRL (load $l0)"
  $PY bench/grpo_trl.py --model "$MODEL" --prompts "$OUT/prompts.jsonl" --out "$OUT/trl-run" --steps "$STEPS" \
    --prompts-per-step "$PROMPTS" --num-generations "$G" --max-completion-length "$MAXLEN" --threads "$THREADS" \
    --micro-batch "$MICRO" --seed "$1" 2>"$OUT/trl.log" | grep '^{"step"' > "$OUT/trl.jsonl"
  $PY - "$OUT/trl.jsonl" "$1" "$l0" >> "$RAW" <<'P'
import json, sys
path, rnd, load = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for i, r in enumerate(map(json.loads, open(path))):
    print(json.dumps({"side": "trl", "round": rnd, "step": i + 1, "warmup": i == 0,
                      "seconds": round(r["step_time"], 3), "completion_tokens": r["completion_tokens"],
                      "clipped": r.get("clipped"), "reward": r.get("reward"),
                      "frac_reward_zero_std": r.get("frac_reward_zero_std"),
                      **{k: round(r[k], 3) for k in ("generation_s", "rewards_s", "generate_and_score_s", "optimizer_s") if k in r},
                      "seed": rnd, "load_before_run": load}))
P
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then ours "$r"; trl "$r"; else trl "$r"; ours "$r"; fi
done
mkdir -p docs/results/bench-grpo
$PY - "$OUT" "$REGIME" "$MODEL" "$POLICY" "$STEPS" "$ROUNDS" "$G" "$PROMPTS" "$MAXLEN" "$THREADS" "$MICRO" "$START" <<'P'
import datetime, json, platform, subprocess, sys
out, regime, model, policy, steps, rounds, g, prompts, maxlen, threads, micro, start = sys.argv[1:]
import torch, transformers, trl, peft
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
plen = [json.loads(l)["prompt_tokens"] for l in open(f"{out}/prompts.jsonl")]
def shared_prefix_tokens():
    """Tokens of the text every prompt starts with (instruction + policy + content header)."""
    texts = [json.loads(l)["prompt"] for l in open(f"{out}/prompts.jsonl")]
    n = min(len(t) for t in texts)
    common = next((i for i in range(n) if len({t[i] for t in texts}) > 1), n)
    return len(transformers.AutoTokenizer.from_pretrained(model)(texts[0][:common], add_special_tokens=False)["input_ids"])
dirty = sh("git status --porcelain --untracked-files=no -- crates bench")
doc = {
    "regime": regime, "model": model,
    "start": "base model" if start == "base" else "the default model after bench/grpo-start-sft.toml's SFT", "policy": policy, "steps_per_run": int(steps), "rounds": int(rounds),
    "num_generations": int(g), "prompts_per_step": int(prompts), "max_completion_length": int(maxlen),
    "threads": int(threads), "micro_batch": int(micro), "prompt_tokens": plen,
    "shared_prefix_tokens": shared_prefix_tokens(),
    "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                 "peft": peft.__version__, "python": platform.python_version(), "rustc": sh("rustc --version")},
    "commit": sh("git rev-parse --short HEAD") + (" with uncommitted changes in crates/ or bench/" if dirty else ""),
    "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(), "nproc": int(sh("nproc")),
    "command": f"REGIME={regime}{' START=' + start if start != 'base' else ''} POLICY={policy} ROUNDS={rounds} STEPS={steps} G={g} PROMPTS={prompts} "
               f"MAXLEN={maxlen} THREADS={threads} MICRO={micro} bench/grpo.sh",
    "steps": [json.loads(l) for l in open(f"{out}/steps.jsonl")],
}
json.dump(doc, open(f"docs/results/bench-grpo/{regime}.json", "w"), indent=1)
P
$PY bench/grpo_report.py docs/results/bench-grpo docs/results/bench-grpo.md
