#!/usr/bin/env python3
"""examples/ray_classify.py on a local Ray cluster (ray.init(num_cpus=2)), against `modrl classify`
on the same Parquet rows, with one actor killed mid-job.

    .venv/bin/python scripts/test_ray_classify.py [--rows 120] [--modrl target/debug/modrl] [--keep DIR]

Checks: exactly one output row per input id (none lost, none duplicated) although an actor dies
after its second batch (Ray restarts it and retries the batch); every score within 1e-5 of
`modrl classify --in X.parquet --out Y.parquet` on the same rows, and the same labels. Prints both
wall times. Needs the default model (scripts/setup.sh) and the Python package.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models/smollm2-135m-instruct")
POLICY = os.path.join(ROOT, "configs/policies/offensive-compact.toml")

OPENERS = ["honestly", "lol", "ugh", "wow", "listen", "yo", "so", "well"]
BODIES = [
    "you are a wonderful person and I love your work",
    "shut up you stupid idiot, nobody wants you here",
    "the weather is nice this week, going to the beach",
    "those people are trash and should all go away",
    "thanks for the help with my homework yesterday",
    "what a load of garbage, you absolute clown",
    "made soup for dinner and it was great",
    "this game was a disaster, the referee is blind",
]


def make_input(path, rows):
    ids, texts = [], []
    for i in range(rows):
        ids.append(f"row-{i:05d}")
        texts.append(f"{OPENERS[i % len(OPENERS)]} {BODIES[(i // len(OPENERS)) % len(BODIES)]} #{i}")
    # Several row groups, so Ray reads the file in several blocks.
    pq.write_table(pa.table({"id": ids, "text": texts}), path, row_group_size=max(1, rows // 4))
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=120)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--modrl", default=os.path.join(ROOT, "target/debug/modrl"))
    ap.add_argument("--keep", help="work in this folder and keep it")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="ray-classify-")
    os.makedirs(d, exist_ok=True)
    inp = os.path.join(d, "in.parquet")
    ids = make_input(inp, a.rows)

    ref = os.path.join(d, "classify.parquet")
    for f in (ref, ref + ".partial.jsonl"):
        if os.path.exists(f):
            os.remove(f)
    t0 = time.time()
    subprocess.run([a.modrl, "classify", "--model", MODEL, "--policy", POLICY, "--in", inp,
                    "--out", ref], check=True, stderr=subprocess.DEVNULL)
    t_cli = time.time() - t0

    out = os.path.join(d, "ray-out")
    if os.path.exists(out):
        subprocess.run(["rm", "-rf", out], check=True)
    t0 = time.time()
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/ray_classify.py"), "--model", MODEL,
                    "--policy", POLICY, "--in", inp, "--out", out, "--actors", str(a.actors),
                    "--num-cpus", "2", "--cpus-per-actor", str(1.0 / a.actors),
                    "--batch-size", str(a.batch_size),
                    "--fail-after-batches", "2"], check=True)
    t_ray = time.time() - t0

    marker = out + ".fail-marker"
    assert os.path.exists(marker), "no actor was killed: the fault was not injected"
    got = pq.read_table(out)
    assert set(["id", "label", "score", "category"]) <= set(got.column_names), got.column_names
    got_ids = got.column("id").to_pylist()
    dups = len(got_ids) - len(set(got_ids))
    assert dups == 0, f"{dups} ids duplicated in the Ray output"
    missing = set(ids) - set(got_ids)
    assert not missing, f"{len(missing)} ids lost, e.g. {sorted(missing)[:3]}"
    assert len(got_ids) == len(ids)
    want = {r["id"]: r for r in pq.read_table(ref).to_pylist()}
    worst = 0.0
    for r in got.to_pylist():
        w = want[r["id"]]
        worst = max(worst, abs(r["score"] - w["score"]))
        assert r["label"] == w["label"], (r, w)
    assert worst <= 1e-5, f"largest score difference {worst:.2e} > 1e-5"
    print(f"ray_classify: {len(ids)} rows, {a.actors} actors, one killed after its 2nd batch: "
          f"every id once; scores within {worst:.1e} of modrl classify "
          f"(ray {t_ray:.1f} s incl. cluster start, classify {t_cli:.1f} s)")


if __name__ == "__main__":
    main()
