#!/usr/bin/env python3
"""The work behind docs/results/load-test.md: writes docs/results/load-test/flops.json, from which
scripts/results_lib.load_test_lines computes the matrix-product FLOP/s the server reached at each
level and how far batching could raise throughput on this machine.

    load_flops.py --prompts PROMPTS.jsonl --tokenizer TOKENIZER.json --engine-dir DIR --out FILE

PROMPTS: `modrl data prompts --variant no-reasoning` of the load test's texts (the first POPULATION
of runs/data/davidson-hate.jsonl, 5000 by default, in order, which bench/load_test.py draws from
with random.Random(seed + clients); bench/load.sh passes the same POPULATION to both), under the
served policy. Their longest common token prefix is the
server's cached policy prefix; each request's work is its suffix after it (one row, the
vocabulary projection at its last token only). DIR: the engine benchmark's raw files (runs.jsonl,
meta.json): the model's dimensions and the fastest matrix-product rate measured on this machine
(any GEMM run or training step), the reference the page divides by.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import results_lib as L  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--engine-dir", default="docs/results/bench-engine")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tok = Tokenizer.from_file(a.tokenizer)
    rows = [json.loads(l) for l in open(a.prompts) if l.strip()]
    ids = [tok.encode(r["prompt"], add_special_tokens=False).ids for r in rows]
    bad = [r["id"] for r, x in zip(rows, ids) if len(x) != r["prompt_tokens"]]
    if bad:
        raise SystemExit(f"{a.prompts}: {len(bad)} prompts tokenize to another length than prompt_tokens "
                         f"(first: {bad[0]}): not this model's tokenizer")
    pre = os.path.commonprefix(ids)  # element-wise on the token lists
    runs = L.read_jsonl(os.path.join(a.engine_dir, "runs.jsonl"))
    meta = L.read_json(os.path.join(a.engine_dir, "meta.json"))
    doc = {
        "prefix_tokens": len(pre),
        "suffix_tokens": [len(x) - len(pre) for x in ids],
        "seed": a.seed,
        "model_config": meta["model_config"],
        "peak_gflop_per_s": round(L.engine_fastest_rate(runs, meta), 1),
        "peak_source": f"{a.engine_dir}: the fastest matrix-product rate of its run (GEMM or training step)",
    }
    with open(a.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{a.out}: prefix {doc['prefix_tokens']} tokens, {len(ids)} texts, peak {doc['peak_gflop_per_s']} GFLOP/s")


if __name__ == "__main__":
    main()
