# Shell helpers shared by the study drivers (scripts/*.sh); source it after `cd` to the repository
# root and after setting B (the modrl binary) when `compare` is used.

# A progress line on stderr with the time and the 1-minute load average (studies run one at a time).
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }

# The small files of a `modrl eval` folder behind a results page: SRC DEST.
copy_eval() {
  mkdir -p "$2"
  for f in scores.jsonl val_scores.jsonl metrics.json; do
    [ -f "$1/$f" ] && cp "$1/$f" "$2/"
  done
}

# Paired comparison of B against A on their shared items (`modrl eval --compare`), its summary line
# printed with LABEL in front: A-DIR B-DIR OUT LABEL. Nothing when either side has no scores.
compare() {
  [ -f "$1/scores.jsonl" ] && [ -f "$2/scores.jsonl" ] || return 0
  mkdir -p "$3"
  $B eval --compare "$1" "$2" --out "$3" 2> /dev/null | sed "s|^|$4: |"
}

# The rows of scores file SRC whose ids are those of scores file IDS, written to OUT (every id of
# IDS must be in SRC): IDS SRC OUT. Puts a row scored on more items beside a row on fewer.
restrict_scores() {
  .venv/bin/python - "$1" "$2" "$3" <<'PY'
import json, sys
keep = {json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip()}
rows = [l for l in open(sys.argv[2]) if l.strip() and json.loads(l)["id"] in keep]
assert len(rows) == len(keep), f"{sys.argv[2]}: {len(rows)} of {len(keep)} ids"
open(sys.argv[3], "w").writelines(rows)
PY
}
