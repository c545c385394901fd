#!/usr/bin/env bash
# Zero-shot baseline of the default model (SmolLM2-135M-Instruct, no adapter) on the three tasks'
# test splits under the three scoring modes, on CPU. Reproduces docs/results/archive/zero-shot.md:
#
#   scripts/zero_shot.sh            # import data if missing, run the 9 evaluations, print tables
#   TABLES_ONLY=1 scripts/zero_shot.sh   # only print the tables from runs/zero-shot/*
#   ONLY="hate-verdict-token" scripts/zero_shot.sh   # run a subset (space-separated run names)
#
# Each run writes runs/zero-shot/<task>-<mode>/ (scores.jsonl, val_scores.jsonl, metrics.json,
# report.html, report.md) and runs/zero-shot/<task>-<mode>.{log,time}. `modrl eval` resumes an
# interrupted run from scores.jsonl; a finished run (metrics.json present) is kept as it is, so
# delete its folder to rerun and re-time it.
# The limits are CPU-budget choices (they apply to the test and the val split each; --limit takes
# the first rows of each split in file order). Monte-Carlo uses N = 8 samples (the paper: N = 32).
set -euo pipefail
cd "$(dirname "$0")/.."

M=target/release/modrl
MODEL=${MODEL:-models/smollm2-135m-instruct}
OUT=${OUT:-runs/zero-shot}
RAW=../shared/data
mkdir -p runs/data "$OUT"

if [ -z "${TABLES_ONLY:-}" ]; then
  # --- data (cheap; deterministic splits) -------------------------------------------------------
  [ -f runs/data/davidson-hate.jsonl ] || $M data import --source davidson --task hate \
    --in $RAW/davidson-hate-offensive/labeled_data.csv --out runs/data/davidson-hate.jsonl
  [ -f runs/data/davidson-offensive.jsonl ] || $M data import --source davidson --task offensive \
    --in $RAW/davidson-hate-offensive/labeled_data.csv --out runs/data/davidson-offensive.jsonl
  [ -f runs/data/prompt-harm.jsonl ] || $M data import --source prompt-harm \
    --in $RAW/prompt-harm --out runs/data/prompt-harm.jsonl

  # --- do not compete with a training run for the CPU -------------------------------------------
  while pgrep -f "modrl train" >/dev/null; do sleep 30; done

  run() { # name policy data scoring-args...
    local name=$1 policy=$2 data=$3; shift 3
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
    # Another process scoring into $OUT (e.g. an earlier copy of these runs): let it finish first
    # (two quiet checks in a row), then keep a result it wrote. Keeps the timings uncontended too.
    while pgrep -f -- "eval .*--out $OUT/" >/dev/null || { sleep 15; pgrep -f -- "eval .*--out $OUT/" >/dev/null; }; do sleep 30; done
    if [ -f "$OUT/$name/metrics.json" ]; then echo "== $name: $OUT/$name/metrics.json exists, kept (delete the folder to rerun)"; return 0; fi
    echo "== $name  start $(date -u +%FT%TZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/$name.log"
    /usr/bin/time -v -o "$OUT/$name.time" \
      $M eval --model "$MODEL" --policy "$policy" --data "$data" --out "$OUT/$name" "$@" \
      2>&1 | tee -a "$OUT/$name.log"
    echo "== $name  end   $(date -u +%FT%TZ)  loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/$name.log"
  }

  VT=(--scoring verdict-token --limit 200)
  GR=(--scoring greedy --limit 40 --max-new-tokens 160)
  MC=(--scoring mc:8:1.0 --limit 24 --max-new-tokens 160 --batch-rows 32)

  H=(configs/policies/hate-speech.toml runs/data/davidson-hate.jsonl)
  O=(configs/policies/offensive.toml runs/data/davidson-offensive.jsonl)
  P=(configs/policies/prompt-harm.toml runs/data/prompt-harm.jsonl)

  run hate-verdict-token      "${H[@]}" "${VT[@]}"
  run offensive-verdict-token "${O[@]}" "${VT[@]}"
  run prompt-harm-verdict-token "${P[@]}" "${VT[@]}"
  run hate-greedy             "${H[@]}" "${GR[@]}"
  run offensive-greedy        "${O[@]}" "${GR[@]}"
  run prompt-harm-greedy      "${P[@]}" "${GR[@]}"
  run hate-mc8                "${H[@]}" "${MC[@]}"
  run offensive-mc8           "${O[@]}" "${MC[@]}"
  run prompt-harm-mc8         "${P[@]}" "${MC[@]}"
fi

# --- tables for docs/results/archive/zero-shot.md ------------------------------------------------
OUT="$OUT" python3 - <<'EOF'
import json, os, re, statistics
out = os.environ["OUT"]
tasks = [("hate", "runs/data/davidson-hate.jsonl"),
         ("offensive", "runs/data/davidson-offensive.jsonl"),
         ("prompt-harm", "runs/data/prompt-harm.jsonl")]
modes = [("verdict-token", "verdict-token"), ("greedy", "greedy"), ("mc8", "Monte-Carlo N=8, T=1")]

# Byte-level BPE token count of the raw text (the model's tokenizer.json), to describe content length.
try:
    import regex
    tj = json.load(open("models/smollm2-135m-instruct/tokenizer.json"))
    ranks = {tuple(m) if isinstance(m, list) else tuple(m.split(" ")): i
             for i, m in enumerate(tj["model"]["merges"])}
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]; n = 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    b2u = {b: chr(c) for b, c in zip(bs, cs)}
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    def bpe(w):
        parts = list(w)
        while len(parts) > 1:
            pairs = [(ranks.get((parts[i], parts[i + 1]), 1 << 30), i) for i in range(len(parts) - 1)]
            r, i = min(pairs)
            if r == 1 << 30: break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return len(parts)
    def ntok(s):
        return sum(bpe("".join(b2u[b] for b in w.encode())) for w in pat.findall(s))
except Exception:
    ntok = None

def f(x, d=3):
    return "n/a" if x is None else f"{x:.{d}f}"

timing = []
for task, data in tasks:
    recs = {}
    for l in open(data):
        r = json.loads(l); recs[r["id"]] = r
    print(f"\n### {task}\n")
    print("| Scoring | n test | positives | prevalence | PR-AUC [95 % CI] | ROC-AUC | F1 @ val thr (thr) | ECE | format failures | mean reasoning words | distinct test scores |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for mdir, mname in modes:
        d = f"{out}/{task}-{mdir}"
        if not os.path.exists(f"{d}/metrics.json"):
            print(f"| {mname} | (not run) |"); continue
        m = json.load(open(f"{d}/metrics.json"))
        meta = json.load(open(f"{d}/report_meta.json"))
        ci = m.get("pr_auc_ci") or [None, None]
        sc = [json.loads(l) for l in open(f"{d}/scores.jsonl")]
        vs = [json.loads(l) for l in open(f"{d}/val_scores.jsonl")] if os.path.exists(f"{d}/val_scores.jsonl") else []
        distinct = len({round(s["score"], 6) for s in sc})
        print(f"| {mname} | {m['n']} | {m['n_pos']} | {f(m['prevalence'])} | {f(m['pr_auc'])} [{f(ci[0])}, {f(ci[1])}] | "
              f"{f(m['roc_auc'])} | {f(m['f1'])} ({f(m['threshold'], 2)}) | {f(m['ece'])} | {f(m['format_failure_rate'])} | "
              f"{f(m.get('mean_reasoning_words'), 1)} | {distinct} |")
        secs = float(dict(meta["extra"]).get("scoring time (this run)", "nan s").split()[0])
        log = open(f"{out}/{task}-{mdir}.log").read() if os.path.exists(f"{out}/{task}-{mdir}.log") else ""
        pre = re.search(r"shared prompt prefix: (\d+) tokens", log)
        wall = cpu = None
        if os.path.exists(f"{out}/{task}-{mdir}.time"):
            tt = open(f"{out}/{task}-{mdir}.time").read()
            t = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", tt)
            if t: wall = int(t.group(1) or 0) * 3600 + int(t.group(2)) * 60 + float(t.group(3))
            u = re.search(r"User time \(seconds\): ([\d.]+)", tt); k = re.search(r"System time \(seconds\): ([\d.]+)", tt)
            if u and k: cpu = float(u.group(1)) + float(k.group(1))
        items = len(sc) + len(vs)
        texts = [recs[s["id"]]["text"] for s in sc + vs if s["id"] in recs]
        chars = statistics.median(len(t) for t in texts) if texts else None
        toks = sorted(ntok(t) for t in texts) if (ntok and texts) else None
        timing.append((task, mname, items, secs, wall, cpu, pre.group(1) if pre else "?", chars, toks))

print("\n### Timing (2 CPU cores; scoring time excludes model loading)\n")
print("| Run | items scored (test + val) | scoring s | items/s | wall s (process) | CPU s (user+sys) | items per CPU-s | prefix tokens | content chars (median) | content tokens (median / p90 / max) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for task, mname, items, secs, wall, cpu, pre, chars, toks in timing:
    tk = f"{toks[len(toks)//2]} / {toks[int(len(toks)*0.9)]} / {toks[-1]}" if toks else "n/a"
    ipc = f"{items/cpu:.3f}" if cpu else "n/a"
    print(f"| {task} {mname} | {items} | {secs:.1f} | {items/secs:.3f} | {f(wall, 0)} | {f(cpu, 0)} | {ipc} | {pre} | {chars} | {tk} |")
EOF
