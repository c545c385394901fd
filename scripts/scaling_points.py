#!/usr/bin/env python3
"""Turn the scaling study's runs (scripts/scaling_study.sh) into fit inputs for `modrl scaling fit`.

    .venv/bin/python scripts/scaling_points.py RUNS_DIR OUT_DIR [--prompts PROMPTS.jsonl]

For every run folder RUNS_DIR/NAME with a metrics.jsonl: one row per periodic evaluation, plus a
step-0 row from the run's starting point (RUNS_DIR/start-sft or start-base, scored on the same
validation tweets), written to OUT_DIR/NAME.points.jsonl with
  step, prompts (RL prompts seen), rollout_tokens (sampled label tokens, the sum of num_tokens),
  train_tokens (tokens through forward + backward: the shared policy prefix once per step plus
  each prompt's own tokens, from PROMPTS: `modrl data prompts` output of the training tweets),
  flops (6 * 134.5e6 * train_tokens: the LoRA backward still runs through the frozen weights),
  pr_auc, roc_auc (validation, verdict-token).
The run's metrics.jsonl and config are copied beside it (OUT_DIR/NAME.metrics.jsonl).
"""
import argparse
import json
import os
import shutil
import statistics
import tomllib

PARAMS = 134.5e6
PREFIX_TOKENS = 567  # the shared prompt prefix of offensive-compact (modrl eval prints it)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("out")
    ap.add_argument("--prompts", help="modrl data prompts --variant no-reasoning output of the training tweets")
    a = ap.parse_args()
    suffix = None
    if a.prompts:
        toks = [json.loads(l)["prompt_tokens"] for l in open(a.prompts) if l.strip()]
        suffix = statistics.mean(toks) - PREFIX_TOKENS
    os.makedirs(a.out, exist_ok=True)
    summary = {"prefix_tokens": PREFIX_TOKENS, "mean_own_tokens": suffix, "params": PARAMS, "runs": {}}
    for name in sorted(os.listdir(a.runs)):
        run = os.path.join(a.runs, name)
        mfile = os.path.join(run, "metrics.jsonl")
        if not os.path.isfile(mfile) or name.startswith("start-"):
            continue
        rows = [json.loads(l) for l in open(mfile) if l.strip()]
        with open(os.path.join(run, "config.toml"), "rb") as f:
            cfg = tomllib.load(f)
        start = "start-sft" if cfg["model"].get("adapter") else "start-base"
        per_step = cfg["rl"]["prompts_per_step"]
        s = json.load(open(os.path.join(a.runs, start, "metrics.json")))
        points = [{"run": name, "start": start, "step": 0, "prompts": 0, "rollout_tokens": 0, "train_tokens": 0, "flops": 0,
                   "pr_auc": s["pr_auc"], "roc_auc": s["roc_auc"]}]
        prompts = rollout = 0
        for r in rows:
            prompts += per_step
            rollout += r.get("num_tokens", 0)
            if r.get("eval/pr_auc") is None:
                continue
            train = r["step"] * PREFIX_TOKENS + prompts * suffix if suffix is not None else None
            points.append({"run": name, "start": start, "step": r["step"], "prompts": prompts, "rollout_tokens": rollout,
                           "train_tokens": train, "flops": 6 * PARAMS * train if train is not None else None,
                           "pr_auc": r["eval/pr_auc"], "roc_auc": r["eval/roc_auc"]})
        with open(os.path.join(a.out, f"{name}.points.jsonl"), "w") as f:
            for p in points:
                f.write(json.dumps(p) + "\n")
        shutil.copy(mfile, os.path.join(a.out, f"{name}.metrics.jsonl"))
        shutil.copy(os.path.join(run, "config.toml"), os.path.join(a.out, f"{name}.config.toml"))
        summary["runs"][name] = {"start": start, "steps": len(rows), "evals": len(points) - 1}
        print(f"{name}: {len(points)} points (start {start}, {len(rows)} steps)")
    for st in ("start-sft", "start-base"):
        d = os.path.join(a.runs, st)
        if os.path.isdir(d):
            os.makedirs(os.path.join(a.out, st), exist_ok=True)
            for f in ("metrics.json", "scores.jsonl"):
                shutil.copy(os.path.join(d, f), os.path.join(a.out, st, f))
    json.dump(summary, open(os.path.join(a.out, "points-summary.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
