#!/usr/bin/env python3
"""Classify a Parquet dataset with modrl on Ray Data: one model per actor, Parquet out.

    .venv/bin/python examples/ray_classify.py --model models/smollm2-135m-instruct \
        --policy configs/policies/offensive.toml --in tweets.parquet --out results/ --actors 2

Reads IN (a Parquet file or a folder of them; local or any filesystem Ray reads, e.g. s3://) with
`ray.data.read_parquet`, runs `map_batches(ModrlActor, ...)` with ACTORS actors, each holding one
`modrl.Classifier` (the scoring code of `modrl classify`), and writes Parquet files under OUT with
columns `id`, `label`, `score`, `category` (plus `reasoning` for greedy / mc scoring).

Cluster: with --address (e.g. `auto`, or ray://head:10001) the job joins that cluster; without it,
a local one starts with --num-cpus CPUs. --gpus-per-actor 1 puts each actor on a GPU (and the
model on cuda). Ray reserves --cpus-per-actor CPUs per actor (default: the cluster's CPUs less one,
shared by the actors, at most 1 each: Ray's file-listing task takes a whole CPU, and a small cluster
whose actors hold every CPU deadlocks); each actor's libtorch uses --threads-per-actor threads
(default: the cluster's CPUs divided by the actors); read and write tasks reserve --io-cpus each.

Faults: Ray restarts a dead actor and retries its batches (Ray Data's defaults for actor pools:
max_restarts=-1, max_task_retries=-1), and a batch's rows reach the output only when the task that
wrote them succeeded, so a killed actor neither loses nor duplicates ids.
--fail-after-batches K (for the fault test, scripts/test_ray_classify.py) makes the first actor to
reach its K-th batch kill its own process once (marker file OUT.fail-marker).
"""

import argparse
import os
import sys
import time


class ModrlActor:
    """One model per actor; `__call__` scores a pyarrow batch."""

    def __init__(self, model, policy, adapter, scoring, device, batch_rows, threshold, threads,
                 id_column, text_column, fail_after, fail_marker):
        import modrl

        self.clf = modrl.Classifier(model, policy, adapter=adapter, scoring=scoring,
                                    device=device, batch_rows=batch_rows, threshold=threshold,
                                    threads=threads)
        self.id_column = id_column
        self.text_column = text_column
        self.fail_after = fail_after
        self.fail_marker = fail_marker
        self.batches = 0

    def __call__(self, batch):
        self.batches += 1
        if self.fail_after and self.batches == self.fail_after:
            try:  # exactly one actor, once: the first to create the marker
                fd = os.open(self.fail_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                os._exit(1)
            except FileExistsError:
                pass
        out = self.clf.score_arrow(batch, self.text_column)
        keep = [self.id_column, "label", "score", "category"]
        if "reasoning" in out.column_names:
            keep.append("reasoning")
        out = out.select(keep)
        if self.id_column != "id":
            out = out.rename_columns(["id"] + keep[1:])
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory")
    ap.add_argument("--policy", required=True, help="policy file (TOML)")
    ap.add_argument("--in", dest="input", required=True, help="Parquet file or folder")
    ap.add_argument("--out", required=True, help="output folder (Parquet files)")
    ap.add_argument("--actors", type=int, default=1, help="actors, one model each (default 1)")
    ap.add_argument("--adapter", help="PEFT LoRA adapter directory")
    ap.add_argument("--scoring", default="verdict-token", help="verdict-token, greedy, mc[:N[:T]]")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--id-column", default="id")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--batch-size", type=int, default=256, help="rows per Ray batch (default 256)")
    ap.add_argument("--blocks", type=int, default=0,
                    help="blocks to read the input into (default: 4 per actor)")
    ap.add_argument("--batch-rows", type=int, default=32, help="sequences per forward pass")
    ap.add_argument("--cpus-per-actor", type=float, default=None,
                    help="CPUs Ray reserves per actor (default: the cluster's CPUs less one, shared "
                         "by the actors, at most 1 each; see the module docs)")
    ap.add_argument("--threads-per-actor", type=int, default=None,
                    help="libtorch threads per actor (default: the cluster's CPUs divided by the "
                         "actors)")
    ap.add_argument("--io-cpus", type=float, default=0.25,
                    help="CPUs Ray reserves per read / write task (default 0.25: they mostly wait "
                         "on I/O, and must not starve when the actors hold every CPU)")
    ap.add_argument("--gpus-per-actor", type=float, default=0.0)
    ap.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    ap.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: all)")
    ap.add_argument("--fail-after-batches", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.actors < 1:
        ap.error("--actors must be >= 1")
    for p, what in [(a.model, "--model"), (a.policy, "--policy")]:
        if not os.path.exists(p):
            ap.error(f"{what} {p}: no such file or directory")
    if not a.input.startswith(("s3://", "gs://", "abfs://", "hdfs://")) and not os.path.exists(a.input):
        ap.error(f"--in {a.input}: no such file or directory")

    import ray

    if a.address:
        ray.init(address=a.address)
    else:
        ray.init(num_cpus=a.num_cpus, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
    # Ray's file-listing task takes a whole CPU: the actors' reservations leave it one, or a small
    # cluster deadlocks (2 actors x 1 CPU on 2 CPUs never starts reading).
    total = float(ray.cluster_resources().get("CPU", 1.0))
    if a.cpus_per_actor is None:
        a.cpus_per_actor = max(0.05, min(1.0, (total - 1.0) / a.actors))
    if a.threads_per_actor is None:
        a.threads_per_actor = max(1, int(total // a.actors))
    device = "cuda" if a.gpus_per_actor > 0 else "cpu"
    os.makedirs(a.out, exist_ok=True)
    marker = a.out.rstrip("/") + ".fail-marker"  # beside OUT, not in it
    if a.fail_after_batches and os.path.exists(marker):
        os.remove(marker)
    t0 = time.time()
    # Several blocks per actor, so every actor gets work: an actor task takes a whole block, and a
    # file is often read as one block whatever override_num_blocks says.
    ds = ray.data.read_parquet(a.input, num_cpus=a.io_cpus).select_columns(
        [a.id_column, a.text_column]).repartition(a.blocks or 4 * a.actors)
    ds = ds.map_batches(
        ModrlActor,
        fn_constructor_kwargs=dict(
            model=os.path.abspath(a.model), policy=os.path.abspath(a.policy),
            adapter=os.path.abspath(a.adapter) if a.adapter else None, scoring=a.scoring,
            device=device, batch_rows=a.batch_rows, threshold=a.threshold,
            threads=a.threads_per_actor, id_column=a.id_column, text_column=a.text_column,
            fail_after=a.fail_after_batches, fail_marker=marker,
        ),
        batch_size=a.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=a.actors),
        num_cpus=a.cpus_per_actor,
        num_gpus=a.gpus_per_actor or None,
    )
    ds.write_parquet(a.out, ray_remote_args={"num_cpus": a.io_cpus})
    secs = time.time() - t0
    rows = ray.data.read_parquet(a.out).count()
    print(f"classified {rows} rows with {a.actors} actor(s) in {secs:.1f} s "
          f"({rows / secs:.2f} rows/s) -> {a.out}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
