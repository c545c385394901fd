#!/usr/bin/env python3
"""Turn the scaling study's runs (scripts/scaling_study.sh) into fit inputs for `modrl scaling fit`.

    .venv/bin/python scripts/scaling_points.py RUNS_DIR OUT_DIR [--prompts [TAG=]PROMPTS.jsonl ...]

For every run folder RUNS_DIR/NAME with a metrics.jsonl: one row per periodic evaluation, plus a
step-0 row from the run's starting point (RUNS_DIR/start-sft or start-base, scored on the same
validation tweets; start-base-qwen05b for a run of the 0.5B model: every model of MODELS has its
own tag, token counts and parameters, read from the run's model.path), written to
OUT_DIR/NAME.points.jsonl with
  step, prompts (RL prompts seen), rollout_tokens (sampled label tokens, the sum of num_tokens),
  train_tokens (tokens through forward + backward: the shared policy prefix once per step plus
  each prompt's own tokens, from PROMPTS: `modrl data prompts` output of the training tweets),
  flops (6 * params * train_tokens, params = the weights in matrix products, the output layer
    included and the embedding lookup not: 134.5e6 for the default model (tied embeddings),
    494.0e6 for the 0.5B one; the LoRA backward still runs through the frozen weights),
  pr_auc, roc_auc (validation, verdict-token).
The run's metrics.jsonl and config are copied beside it (OUT_DIR/NAME.metrics.jsonl). A starting
point missing from RUNS_DIR is read from its committed copy in OUT_DIR, and runs already in
OUT_DIR/points-summary.json whose folders are gone keep their entries: new runs can be added
without the earlier runs' folders.
"""
import argparse
import json
import os
import shutil
import statistics
import tomllib

PARAMS = 134.5e6
PREFIX_TOKENS = 567  # the shared prompt prefix of offensive-compact (modrl eval prints it)
# Per model: the tag of its start points and prompt files, its matrix-product parameters (all
# 630.2e6 weights of the 0.5B model but the 136.1e6 of its embedding lookup; its output layer is
# untied) and its tokenizer's prefix of offensive-compact.
MODELS = {
    "models/smollm2-135m-instruct": {"tag": "", "params": PARAMS, "prefix_tokens": PREFIX_TOKENS},
    "models/qwen2.5-coder-0.5b-instruct": {"tag": "qwen05b", "params": 494.0e6, "prefix_tokens": 523},
}


def start_metrics(runs, out, start):
    """metrics.json of a starting point: the run folder's, else the committed copy in OUT_DIR
    (scored once; its folder may be gone when later runs are added)."""
    for d in (runs, out):
        path = os.path.join(d, start, "metrics.json")
        if os.path.isfile(path):
            return path
    raise SystemExit(f"no {start}/metrics.json in {runs} or {out}: score the starting point first "
                     "(scripts/scaling_study.sh start)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("out")
    ap.add_argument("--prompts", action="append", default=[], metavar="[TAG=]FILE",
                    help="modrl data prompts --variant no-reasoning output of the training tweets, per "
                         "model tag (none: the default model; qwen05b=FILE: the 0.5B model's tokenizer)")
    a = ap.parse_args()
    own = {}  # model tag -> mean prompt tokens after the shared prefix
    for spec in a.prompts:
        tag, _, path = spec.rpartition("=")
        m = next((m for m in MODELS.values() if m["tag"] == tag), None)
        if m is None:
            ap.error(f"--prompts {spec}: no model with tag {tag!r}")
        toks = [json.loads(l)["prompt_tokens"] for l in open(path) if l.strip()]
        own[tag] = statistics.mean(toks) - m["prefix_tokens"]
    suffix = own.get("")
    os.makedirs(a.out, exist_ok=True)
    # Runs whose folders are gone (earlier sessions) keep their committed points and summary entry.
    old = os.path.join(a.out, "points-summary.json")
    kept = json.load(open(old))["runs"] if os.path.isfile(old) else {}
    summary = {"prefix_tokens": PREFIX_TOKENS, "mean_own_tokens": suffix, "params": PARAMS, "runs": {}}
    for name in sorted(os.listdir(a.runs)):
        run = os.path.join(a.runs, name)
        mfile = os.path.join(run, "metrics.jsonl")
        if not os.path.isfile(mfile) or name.startswith("start-"):
            continue
        rows = [json.loads(l) for l in open(mfile) if l.strip()]
        with open(os.path.join(run, "config.toml"), "rb") as f:
            cfg = tomllib.load(f)
        path = cfg["model"]["path"].rstrip("/")
        model = MODELS.get(path)
        if model is None:
            raise SystemExit(f"{run}/config.toml: model.path {path!r} is none of {sorted(MODELS)} "
                             "(add its parameters and prefix to MODELS)")
        tag, params, prefix = model["tag"], model["params"], model["prefix_tokens"]
        start = ("start-sft" if cfg["model"].get("adapter") else "start-base") + (f"-{tag}" if tag else "")
        per_step = cfg["rl"]["prompts_per_step"]
        s = json.load(open(start_metrics(a.runs, a.out, start)))
        points = [{"run": name, "start": start, "step": 0, "prompts": 0, "rollout_tokens": 0, "train_tokens": 0, "flops": 0,
                   "pr_auc": s["pr_auc"], "roc_auc": s["roc_auc"]}]
        prompts = rollout = 0
        for r in rows:
            prompts += per_step
            rollout += r.get("num_tokens", 0)
            if r.get("eval/pr_auc") is None:
                continue
            train = r["step"] * prefix + prompts * own[tag] if tag in own else None
            points.append({"run": name, "start": start, "step": r["step"], "prompts": prompts, "rollout_tokens": rollout,
                           "train_tokens": train, "flops": 6 * params * train if train is not None else None,
                           "pr_auc": r["eval/pr_auc"], "roc_auc": r["eval/roc_auc"]})
        with open(os.path.join(a.out, f"{name}.points.jsonl"), "w") as f:
            for p in points:
                f.write(json.dumps(p) + "\n")
        shutil.copy(mfile, os.path.join(a.out, f"{name}.metrics.jsonl"))
        shutil.copy(os.path.join(run, "config.toml"), os.path.join(a.out, f"{name}.config.toml"))
        summary["runs"][name] = {"start": start, "steps": len(rows), "evals": len(points) - 1}
        if tag:
            summary["runs"][name].update(model=path, params=params, prefix_tokens=prefix,
                                         mean_own_tokens=own.get(tag))
        print(f"{name}: {len(points)} points (start {start}, {len(rows)} steps)")
    for st in sorted(s + (f"-{m['tag']}" if m["tag"] else "") for s in ("start-sft", "start-base") for m in MODELS.values()):
        d = os.path.join(a.runs, st)
        if os.path.isdir(d):
            os.makedirs(os.path.join(a.out, st), exist_ok=True)
            for f in ("metrics.json", "scores.jsonl"):
                shutil.copy(os.path.join(d, f), os.path.join(a.out, st, f))
    for name, entry in kept.items():
        if name not in summary["runs"] and os.path.isfile(os.path.join(a.out, f"{name}.points.jsonl")):
            summary["runs"][name] = entry
    summary["runs"] = dict(sorted(summary["runs"].items()))
    json.dump(summary, open(os.path.join(a.out, "points-summary.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
