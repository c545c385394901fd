"""TRL's GRPOTrainer on the same GRPO step as `modrl train` (bench/grpo.sh): same model, LoRA,
prompts (rendered by `modrl data prompts`), G, batch, completion length, loss and rewards.

Prints one JSON line per optimizer step: {"step", "step_time", "completion_tokens", "clipped",
"reward", "frac_reward_zero_std", "generation_s", "rewards_s", "generate_and_score_s",
"optimizer_s"} (reward: the mean total reward of the step's completions, TRL's "reward" log;
frac_reward_zero_std: the share of groups whose rewards are all equal, i.e. without signal). The phases are timed by wrapping
GRPOTrainer's own methods: `_generate` (sampling), `_calculate_rewards`, and
`_generate_and_score_completions` (both, plus the prompt handling and any log-prob pass before
training); optimizer = from the `on_pre_optimizer_step` to the `on_optimizer_step` callback.
"""
import argparse
import json
import re
import time

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--prompts", required=True, help="JSONL from `modrl data prompts`")
ap.add_argument("--out", required=True)
ap.add_argument("--steps", type=int, default=4)
ap.add_argument("--prompts-per-step", type=int, default=2)
ap.add_argument("--num-generations", type=int, default=4)
ap.add_argument("--max-completion-length", type=int, default=64)
ap.add_argument("--micro-batch", type=int, default=4, help="completions per forward/backward")
ap.add_argument("--lr", type=float, default=3e-5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

rows = [json.loads(l) for l in open(a.prompts)]
ds = Dataset.from_list([{"prompt": r["prompt"], "label": r["label"]} for r in rows])
LABEL = re.compile(r'"label"\s*:\s*"(violating|non_violating|not_violating|safe|unsafe)"')


def accuracy(completions, label, **_):
    out = []
    for c, y in zip(completions, label):
        m = LABEL.search(c)
        out.append(0.0 if m is None else float((m.group(1) in ("violating", "unsafe")) == bool(y)))
    return out


def fmt(completions, **_):
    return [0.2 * float("</reasoning>" in c and LABEL.search(c) is not None) for c in completions]


PHASES = ("generation_s", "rewards_s", "generate_and_score_s", "optimizer_s")


class Timer(TrainerCallback):
    def __init__(self):
        self.t0 = None
        self.t_opt = None
        self.rows = []
        self.phase = dict.fromkeys(PHASES, 0.0)

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()
        self.phase = dict.fromkeys(PHASES, 0.0)

    def on_pre_optimizer_step(self, args, state, control, **kw):
        self.t_opt = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kw):
        self.phase["optimizer_s"] += time.perf_counter() - self.t_opt

    def on_step_end(self, args, state, control, **kw):
        self.rows.append({"step": state.global_step, "step_time": time.perf_counter() - self.t0, **self.phase})

    def wrap(self, obj, name, key):
        """Add the wall time of every call of obj.name to this step's phase `key`."""
        inner = getattr(obj, name)

        def timed(*args, **kw):
            t = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                self.phase[key] += time.perf_counter() - t

        setattr(obj, name, timed)


tok = AutoTokenizer.from_pretrained(a.model)
tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32, attn_implementation="sdpa")
cfg = GRPOConfig(
    output_dir=a.out,
    use_cpu=True,
    bf16=False,
    max_steps=a.steps,
    # One optimizer step = prompts_per_step x G completions, generated together, trained in
    # micro-batches of --micro-batch (gradient accumulation), as modrl's micro_batch_size does.
    per_device_train_batch_size=a.micro_batch,
    gradient_accumulation_steps=a.prompts_per_step * a.num_generations // a.micro_batch,
    num_generations=a.num_generations,
    max_completion_length=a.max_completion_length,
    temperature=1.0,
    learning_rate=a.lr,
    lr_scheduler_type="constant",
    beta=0.0,
    loss_type="dapo",
    scale_rewards="group",
    num_iterations=1,
    gradient_checkpointing=False,  # we do not checkpoint either; on by default in TRL
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    max_grad_norm=1.0,
    seed=a.seed,
    dataloader_num_workers=0,
    disable_dropout=True,
)
peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
timer = Timer()
logs = []


class Logs(TrainerCallback):
    def on_log(self, args, state, control, logs_=None, **kw):
        if kw.get("logs"):
            logs.append(dict(kw["logs"]))


trainer = GRPOTrainer(model=model, reward_funcs=[accuracy, fmt], args=cfg, train_dataset=ds,
                      processing_class=tok, peft_config=peft, callbacks=[timer, Logs()])
for name, key in [("_generate", "generation_s"), ("_calculate_rewards", "rewards_s"),
                  ("_generate_and_score_completions", "generate_and_score_s")]:
    timer.wrap(trainer, name, key)
trainer.train()
for r, l in zip(timer.rows, [l for l in logs if "completions/mean_length" in l]):
    r["completion_tokens"] = l["completions/mean_length"] * a.prompts_per_step * a.num_generations
    r["clipped"] = l.get("completions/clipped_ratio")
    r["reward"] = l.get("reward")
    r["frac_reward_zero_std"] = l.get("frac_reward_zero_std")
    print(json.dumps(r), flush=True)
