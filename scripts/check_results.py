#!/usr/bin/env python3
"""Every results page agrees with its committed data: check_results.py [DIR] (default docs/results).

    .venv/bin/python scripts/check_results.py [DIR] [--page REL.md ...]
    scripts/check_results.sh [DIR]

Reads every *.md under DIR (recursively) and prints one line per page:

  OK        the page's numbers agree with the data they come from (N numbers checked, and from where)
  FAIL      a number on the page disagrees with its data, or cannot be traced to any: one line per
            problem with the page, the line, the number on the page, the value recomputed and the
            data file(s)
  ARCHIVED  a page under archive/ that carries the archive banner: archived, not checked

Exit status 1 when any page fails. How each page is checked is declared in PAGES below:

- Evaluation pages (quickstart.md, rl-diagnosis.md, rl-vs-sft.md): every metric is recomputed from
  the committed scores.jsonl files with scripts/results_lib.py, the same way `modrl eval` computes
  it: PR-AUC (average precision), ROC-AUC, prevalence, the bootstrap CIs and the paired bootstrap
  differences (SplitMix64 draws replayed, so committed intervals are recomputed exactly), recall at
  precision / FPR, F1 and false-flag rate at the threshold chosen on val_scores.jsonl, ECE, format
  failures, per-slice metrics. The committed metrics.json / vs-*.json / compare.json must agree
  with the recomputation (1e-9), and the page must agree with it at its printed precision (half a
  unit of the last printed digit). Numbers from training logs (metrics.jsonl) are read from them.
  A page's claims are templates of its text with `{}` in place of each number ("PR-AUC {:+.3f}
  [{:+.3f}, {:+.3f}]"), each number tied to its data; a template no longer found on the page is a
  failure, so a reworded page must update its claims here. rl-vs-sft.md's tables are the lines
  scripts/rl_vs_sft_table.py prints, found verbatim.
- Coverage: on those pages every "X [lo, hi]" interval, every number written next to "PR-AUC" and
  every cell of a PR-AUC table column must lie inside a checked claim or table line, match an
  interval / PR-AUC of the page's data, or be listed in the page's `not_checked` with the reason
  (numbers quoted from archived pages, wall times from logs that were not committed). A changed or
  new headline number that no data backs fails.
- bench-engine.md: its tables and numbered sentences regenerated from the committed runs
  (bench-engine/runs.jsonl, one row per run with its load average) and shapes (meta.json);
  load-test.md: its table and throughput ratio from every request (load-test/requests.jsonl), and
    with load-test/flops.json each level's matrix-product rate and the bound on batching;
  bench-grpo.md: each regime's table from its steps (bench-grpo/REGIME.json).
- classify-*.md: the table and exactly-once check rebuilt from the raw run beside the page
  (PAGE-STEM/run.json, written by bench/classify_resume.sh) where it was committed.
- Other benchmark pages (classify-davidson.md, measured before the raw file, and gpu-engine.md):
  no raw timing files were committed, but the pages print every timed run; medians, ratios,
  totals and rates are recomputed from those runs (interval arithmetic over the printed rounding).
- A page with no entry in PAGES fails if it reports PR-AUC / ROC-AUC / F1 or has a table of
  decimals (add a checker, or archive it); otherwise it passes as prose.
- Pages under archive/ pass only with the banner that starts "> **Archived:**" (their data was
  not committed, so their numbers cannot be recomputed).
"""
import argparse
import json
import os
import re
import statistics
import string
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results_lib as L  # noqa: E402
import rl_vs_sft_table  # noqa: E402

NUM = r"(?<![\w.])([+-]?\d+(?:\.\d+)?)(?![\d])"
DEC = r"[+-]?\d+\.\d+"
ARCHIVE_BANNER = "> **Archived:**"


# --- values and where they come from -------------------------------------------------------------

class Ref:
    """A number on a page: how to compute it (fn(ctx) -> value, or (value, source)) and from which
    data file."""

    def __init__(self, fn, source):
        self.fn, self.source = fn, source

    def get(self, ctx):
        v = self.fn(ctx)
        if isinstance(v, tuple):
            return v
        return v, self.source


def pick(d, key):
    """d["a"]["b"][0] for "a.b[0]"; keys may contain dots ("recall_at_precision_0.9")."""
    while key:
        if key.startswith("["):
            i = key.index("]")
            d, key = d[int(key[1:i])], key[i + 1:].lstrip(".")
            continue
        cuts = [m.start() for m in re.finditer(r"[.\[]", key)] + [len(key)]
        head = next((key[:c] for c in reversed(cuts) if key[:c] in d), None)
        if head is None:
            raise KeyError(key)
        d, key = d[head], key[len(head):].lstrip(".")
    return d


def ev(row, key):
    """`key` of `modrl eval`'s metrics of the row folder `row` (relative to DIR), recomputed from
    row/scores.jsonl; keys that are not recomputed come from row/metrics.json."""
    def fn(ctx):
        values, recomputed = ctx.eval(row)
        top = key.split(".")[0].split("[")[0]
        src = f"{row}/scores.jsonl" if top in recomputed else f"{row}/metrics.json"
        return pick(values, key), src
    return Ref(fn, f"{row}/scores.jsonl")


def cmp(a, b, key, limit=None, committed=None):
    """`key` of the paired comparison B - A of two scores files (relative to DIR) recomputed
    (`modrl eval --compare`); `committed` is the JSON it wrote, checked against the recomputation."""
    src = f"{a} vs {b}" + (f", first {limit} rows" if limit else "")
    return Ref(lambda ctx: pick(ctx.compare(a, b, limit, committed), key), src)


def log(path, key, step=None, stage=None, agg=None, paths=None):
    """A value of a training log (metrics.jsonl, relative to DIR): at `step`, or `agg` (min, max,
    median, count, first) over the rows of `stage` (over every file of `paths` when given)."""
    files = paths or [path]

    def fn(ctx):
        rows = [r for p in files for r in ctx.jsonl(p) if stage is None or r.get("stage") == stage]
        if step is not None:
            return next(r[key] for r in rows if r["step"] == step)
        vals = [r[key] for r in rows if key in r]
        return {"min": min, "max": max, "median": statistics.median, "count": len, "sum": sum,
                "first": lambda v: v[0], "last10_mean": lambda v: statistics.mean(v[-10:])}[agg](vals)
    return Ref(fn, ", ".join(files))


def js(path, key):
    """`key` of a committed JSON file (relative to DIR), e.g. a fit of `modrl scaling fit`."""
    return Ref(lambda ctx: pick(L.read_json(ctx.path(path)), key), path)


def lines_of(path):
    return Ref(lambda ctx: sum(1 for line in L.read_text(ctx.path(path)).splitlines() if line.strip()), path)


def count_rows(path, pred):
    return Ref(lambda ctx: sum(1 for r in ctx.jsonl(path) if pred(r)), path)


def scaled(ref, factor):
    return Ref(lambda ctx: (lambda v, s: (v * factor, s))(*ref.get(ctx)), ref.source)


def pct(ref):
    return scaled(ref, 100.0)


# --- claims --------------------------------------------------------------------------------------

class Claim:
    """Text of a page with `{}` / `{:fmt}` where numbers stand; whitespace matches any whitespace
    (lines wrap). Each number is tied to a Ref."""

    def __init__(self, template, *refs):
        self.template = template
        parts = list(string.Formatter().parse(template))
        self.specs = [spec for _, field, spec, _ in parts if field is not None]
        assert len(self.specs) == len(refs), (template, len(refs))
        self.refs = refs
        rx = ""
        for literal, field, _, _ in parts:
            rx += r"\s+".join(re.escape(w) for w in re.split(r"\s+", literal))
            if field is not None:
                rx += NUM
        self.regex = re.compile(rx)

    def expected(self, ctx):
        vals = []
        for ref, spec in zip(self.refs, self.specs):
            try:
                v = ref.get(ctx)[0]
                vals.append(format(v, spec or ".3f"))
            except Exception:  # noqa: BLE001 - shown as '?' in a message only
                vals.append("?")
        return _fill(self.template, vals)


def _fill(template, vals):
    out, i = "", 0
    for literal, field, _, _ in string.Formatter().parse(template):
        out += literal
        if field is not None:
            out += vals[i]
            i += 1
    return out


class Page:
    def __init__(self, data=(), claims=(), not_checked=(), tables=None, known=None, check=None, note=""):
        self.data = list(data)
        self.claims = list(claims)
        self.not_checked = list(not_checked)
        self.tables = tables
        self.known = known
        self.check = check
        self.note = note


# --- the data behind the pages -------------------------------------------------------------------

class Ctx:
    def __init__(self, root):
        self.root = root
        self._eval, self._cmp, self._jsonl = {}, {}, {}
        self.data_errors = {}  # data file -> [problems]: committed JSON disagreeing with scores

    def path(self, rel):
        return os.path.join(self.root, rel)

    def jsonl(self, rel):
        if rel not in self._jsonl:
            self._jsonl[rel] = L.read_jsonl(self.path(rel))
        return self._jsonl[rel]

    def _problem(self, key, msg):
        self.data_errors.setdefault(key, []).append(msg)

    def eval(self, row):
        """(metrics, recomputed keys) of a row folder; checks its metrics.json."""
        if row in self._eval:
            return self._eval[row]
        d = self.path(row)
        mpath = os.path.join(d, "metrics.json")
        mj = L.read_json(mpath) if os.path.isfile(mpath) else {}
        src = mj.get("threshold_source")
        scores = os.path.join(d, "scores.jsonl")
        threshold = mj.get("threshold")
        if src == "test":
            sc = L.Scores(scores)
            threshold = L.best_f1_threshold(sc.scores, sc.labels)
        ours = L.eval_metrics(scores, os.path.join(d, "val_scores.jsonl") if src == "val" else None,
                              threshold)
        if src == "test":
            ours["threshold"] = threshold
        for key, v in ours.items():
            if key not in mj:
                continue
            for sub, a, b in _leaves(key, v, mj[key]):
                if not _close(a, b):
                    self._problem(row, f"{row}/metrics.json: {sub} is {b} but {a} recomputed from "
                                       f"{row}/scores.jsonl")
        values = dict(mj)
        values.update(ours)
        self._eval[row] = (values, set(ours))
        return self._eval[row]

    def compare(self, a, b, limit=None, committed=None):
        key = (a, b, limit, committed)
        if key not in self._cmp:
            c = L.compare(self.path(a), self.path(b), limit)
            if committed:
                cj = L.read_json(self.path(committed))
                for k in ("n", "n_pos", "pr_auc", "roc_auc"):
                    for sub, x, y in _leaves(k, c[k], cj.get(k)):
                        if not _close(x, y):
                            self._problem(committed, f"{committed}: {sub} is {y} but {x} recomputed "
                                                     f"from {a} and {b}")
            self._cmp[key] = c
        return self._cmp[key]


def _leaves(key, ours, theirs):
    if isinstance(ours, dict):
        for k, v in ours.items():
            yield from _leaves(f"{key}.{k}", v, (theirs or {}).get(k) if isinstance(theirs, dict) else None)
    elif isinstance(ours, (list, tuple)):
        for i, v in enumerate(ours):
            yield from _leaves(f"{key}[{i}]", v, theirs[i] if isinstance(theirs, list) and i < len(theirs) else None)
    else:
        yield key, ours, theirs


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


# --- checking one page ---------------------------------------------------------------------------

def decimals(text):
    return len(text.split(".")[1]) if "." in text else 0


def agrees(text, value):
    """The printed number `text` is `value` at its printed precision."""
    return abs(float(text) - value) <= 0.5 * 10 ** -decimals(text) + 1e-9 * max(1.0, abs(value))


def show(value, like):
    d = decimals(like)
    s = f"{value:+.{d}f}" if like.startswith("+") else f"{value:.{d}f}"
    return s if d >= 6 else f"{s} ({value:.{d + 3}g})" if abs(value) >= 1 else f"{s} ({value:.{d + 2}f})"


class PageCheck:
    def __init__(self, rel, text):
        self.rel, self.text = rel, text
        self.failures = []
        self.checked = 0
        self.covered = []  # (start, end) spans of checked text
        self.sources = set()

    def line(self, pos):
        return self.text.count("\n", 0, pos) + 1

    def fail(self, pos, msg):
        where = f"{self.rel}:{self.line(pos)}" if pos is not None else self.rel
        self.failures.append(f"{where}: {msg}")

    def is_covered(self, start, end):
        return any(s <= start and end <= e for s, e in self.covered)

    def number(self, pos, text, value, source, what=""):
        """One number on the page against its recomputed value."""
        self.checked += 1
        self.sources.add(source)
        if value is None or not agrees(text, value):
            got = "nothing (undefined)" if value is None else show(value, text)
            self.fail(pos, f"{what}{text} on the page, {got} recomputed from {source}")

    def derived(self, pos, text, lo, hi, what):
        """A number derived from other printed numbers: its printed range must meet [lo, hi]."""
        self.checked += 1
        x, tol = float(text), 0.5 * 10 ** -decimals(text) + 1e-9
        if x + tol < min(lo, hi) - 1e-12 or x - tol > max(lo, hi) + 1e-12:
            rng = f"{lo:.4g}" if abs(hi - lo) < 1e-12 else f"{min(lo, hi):.4g}..{max(lo, hi):.4g}"
            self.fail(pos, f"{what}: {text} on the page, {rng} recomputed from {self.derived_from}")

    derived_from = "the runs printed on the page"


def check_claims(pc, page, ctx):
    for claim in page.claims:
        matches = list(claim.regex.finditer(pc.text))
        if not matches:
            pc.fail(None, f'no text matches "{claim.expected(ctx)}" (data: '
                          f'{"; ".join(sorted({r.source for r in claim.refs}))})')
            continue
        for m in matches:
            for i, ref in enumerate(claim.refs):
                try:
                    value, source = ref.get(ctx)
                except (OSError, KeyError, StopIteration, ValueError, IndexError, TypeError) as e:
                    pc.fail(m.start(), f"{m.group(i + 1)} on the page: cannot recompute from "
                                       f"{ref.source} ({type(e).__name__}: {e})")
                    continue
                pc.number(m.start(i + 1), m.group(i + 1), value, source)
            pc.covered.append(m.span())


def check_not_checked(pc, page):
    for snippet, _reason in page.not_checked:
        rx = r"\s+".join(re.escape(w) for w in snippet.split())
        found = list(re.finditer(rx, pc.text))
        if not found:
            pc.fail(None, f'not_checked entry "{snippet}" is not on the page any more: update PAGES')
        pc.covered.extend(m.span() for m in found)


TABLE_ROW = re.compile(r"^\|.*\|\s*$", re.M)


def tables(text):
    """[(header cells, [(row start offset, [(cell text, cell start offset)])])] of the Markdown
    tables of a page."""
    out, cur = [], None
    for m in TABLE_ROW.finditer(text):
        line, start = m.group(0).rstrip(), m.start()
        cells, pos = [], start + 1
        for c in line[1:-1].split("|"):
            cells.append((c.strip(), pos + len(c) - len(c.lstrip())))
            pos += len(c) + 1
        prev_end = cur[2] if cur else None
        if cur is None or text.count("\n", prev_end, start) > 1:
            cur = [[c for c, _ in cells], [], m.end()]
            out.append(cur)
            continue
        cur[2] = m.end()
        if all(re.fullmatch(r":?-+:?", c) for c, _ in cells):
            continue
        cur[1].append((start, cells))
    return [(h, rows) for h, rows, _ in out]


def paragraph(text, pos):
    """The lower-cased paragraph (text between blank lines) holding position `pos`."""
    start = text.rfind("\n\n", 0, pos)
    end = text.find("\n\n", pos)
    return text[start + 1 if start >= 0 else 0:end if end >= 0 else len(text)].lower()


def check_coverage(pc, page, ctx):
    """Intervals, numbers next to "PR-AUC" and PR-AUC table cells must be checked or backed."""
    triples, prs = page.known(ctx) if page.known else ([], [])
    for m in re.finditer(rf"({DEC})\s*\[({DEC}),\s*({DEC})\]", pc.text):
        if pc.is_covered(m.start(), m.end()):
            continue
        got = m.groups()
        if any(all(agrees(t, v) for t, v in zip(got, k[:3])) for k in triples):
            k = next(k for k in triples if all(agrees(t, v) for t, v in zip(got, k[:3])))
            pc.checked += 3
            pc.sources.add(k[3])
            continue
        near = min(triples, key=lambda k: sum(abs(float(t) - v) for t, v in zip(got, k[:3])), default=None)
        hint = (f"; nearest in the data: {show(near[0], got[0])} [{show(near[1], got[1])}, "
                f"{show(near[2], got[2])}] from {near[3]}" if near else "")
        pc.fail(m.start(), f'"{m.group(0)}" matches no interval recomputed from the data{hint}')
    for m in re.finditer(rf"PR-AUC(?: of)?\s+({DEC})(?!\s*[\d\[])|({DEC})\s+PR-AUC", pc.text):
        g = 1 if m.group(1) else 2
        if pc.is_covered(m.start(g), m.end(g)):
            continue
        para = paragraph(pc.text, m.start(g))
        hit = [k for k in prs if agrees(m.group(g), k[0]) and (len(k) < 3 or k[2].lower() in para)]
        if hit:
            pc.checked += 1
            pc.sources.add(hit[0][1])
            continue
        near = min(prs, key=lambda k: abs(float(m.group(g)) - k[0]), default=None)
        hint = f"; nearest PR-AUC in the data: {show(near[0], m.group(g))} from {near[1]}" if near else ""
        if near and len(near) > 2 and agrees(m.group(g), near[0]):
            hint += f' (a slice\'s PR-AUC, which backs a number only where its paragraph names "{near[2]}")'

        pc.fail(m.start(g), f"PR-AUC {m.group(g)} on the page matches no PR-AUC recomputed from the data{hint}")
    for header, rows in tables(pc.text):
        cols = [i for i, h in enumerate(header) if "PR-AUC" in h]
        for start, cells in rows:
            for i in cols:
                if i >= len(cells):
                    continue
                c, pos = cells[i]
                if re.search(r"\d", c) and not pc.is_covered(pos, pos + len(c)):
                    pc.fail(pos, f'PR-AUC cell "{c}" is not checked against any data (row '
                                 f'"{cells[0][0]}")')


def check_page(rel, text, page, ctx):
    pc = PageCheck(rel, text)
    if page.check:
        page.check(pc, ctx)
    if page.tables:
        page.tables(pc, ctx)
    check_claims(pc, page, ctx)
    check_not_checked(pc, page)
    if page.data:
        check_coverage(pc, page, ctx)
        for key in sorted(ctx.data_errors):
            if any(key == d or key.startswith(d.rstrip("/") + "/") for d in page.data):
                for msg in ctx.data_errors[key]:
                    pc.fail(None, msg)
    return pc


def looks_numeric(text):
    if re.search(r"PR-AUC|ROC-AUC|\bF1\b|\bECE\b", text):
        return True
    return any(re.search(r"\d\.\d", c) for _, rows in tables(text) for _, cells in rows for c, _ in cells)


def run(root, only=None, out=sys.stdout, ctx=None):
    """Check the pages under `root` (only those in `only` when given); prints one line per page
    (more for a failing page) to `out`; returns the exit status. `ctx` may be reused across runs
    over the same data (the tests change pages, not data)."""
    ctx = ctx or Ctx(root)
    pages = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, files in os.walk(root) for f in files if f.endswith(".md"))
    if only:
        missing = [p for p in only if p not in pages]
        if missing:
            print(f"FAIL  {', '.join(missing)}: no such page under {root}", file=out)
            return 1
        pages = [p for p in pages if p in only]
    bad = 0
    for rel in pages:
        text = L.read_text(os.path.join(root, rel))
        parts = rel.split(os.sep)
        if "archive" in parts[:-1]:
            head = text.splitlines()[:12]
            if any(l.startswith(ARCHIVE_BANNER) for l in head):
                print(f"ARCHIVED  {rel}: archived, not checked (its data was not committed)", file=out)
            else:
                bad += 1
                print(f'FAIL  {rel}: under archive/ without the banner "{ARCHIVE_BANNER} ..." '
                      f"in its first lines", file=out)
            continue
        page = PAGES.get(rel.replace(os.sep, "/"))
        if page is None:
            if looks_numeric(text):
                bad += 1
                print(f"FAIL  {rel}: no checker for this page, which reports numbers that need data "
                      f"(add it to PAGES in scripts/check_results.py with its data, or move it to "
                      f"archive/ with the banner)", file=out)
            else:
                print(f"OK  {rel}: no numbers that need data (prose)", file=out)
            continue
        try:
            pc = check_page(rel, text, page, ctx)
        except (OSError, ValueError, KeyError, rl_vs_sft_table.DataError) as e:
            bad += 1
            print(f"FAIL  {rel}: its data cannot be read ({type(e).__name__}: {e})", file=out)
            continue
        if pc.failures:
            bad += 1
            for f in pc.failures:
                print(f"FAIL  {f}", file=out)
        else:
            data = ", ".join(page.data) if page.data else "values printed on the page"
            skipped = f"; {len(page.not_checked)} passages without committed data, listed as not checked" \
                if page.not_checked else ""
            print(f"OK  {rel}: {pc.checked} numbers agree with {data}{skipped}"
                  f"{'; ' + page.note if page.note else ''}", file=out)
    return 1 if bad else 0


# =================================================================================================
# The pages
# =================================================================================================

# --- rl-vs-sft.md: tables printed by rl_vs_sft_table.py, intervals and PR-AUCs from the data -------

def rl_vs_sft_dirs(ctx):
    base = ctx.path("rl-vs-sft")
    return [os.path.join("rl-vs-sft", t) for t in sorted(os.listdir(base))
            if os.path.isdir(os.path.join(base, t))]


def rl_vs_sft_rows(ctx, task):
    d = ctx.path(task)
    return [os.path.join(task, r) for r in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, r, "scores.jsonl"))]


def rl_vs_sft_pairs(ctx, task, row):
    """(A scores file, committed vs-*.json) of each paired comparison a row folder carries. A row of
    a larger label count ("sft-rl-n3000") is compared with the SFT row of the same count
    ("sft-n3000", as scripts/rl_vs_sft.sh does) and with the one zero-shot row; vs-sft-nN.json
    with SFT only at N labels ("sft-nN", or "sft" when N is the unsuffixed first count)."""
    out = []
    suffix = (re.search(r"-n\d+$", os.path.basename(row)) or [""])[0]
    for f in sorted(os.listdir(ctx.path(row))):
        m = re.fullmatch(r"vs-(.+)\.json", f)
        if m:
            base = m.group(1)
            if suffix and base + suffix != os.path.basename(row) and \
                    os.path.isdir(ctx.path(os.path.join(task, base + suffix))):
                base += suffix
            elif not os.path.isdir(ctx.path(os.path.join(task, base))):
                # vs-sft-n960.json where 960 is the study's first label count, whose rows carry
                # no suffix: SFT only at 960 labels is the row "sft".
                base = re.sub(r"-n\d+$", "", base)
            out.append((os.path.join(task, base, "scores.jsonl"), os.path.join(row, f)))
    return out


def rl_vs_sft_tables(pc, ctx):
    page_lines = {}
    for m in re.finditer(r"^.*$", pc.text, re.M):
        page_lines.setdefault(m.group(0), []).append(m.start())
    for task in rl_vs_sft_dirs(ctx):
        for row in rl_vs_sft_rows(ctx, task):
            ctx.eval(row)  # metrics.json against scores.jsonl, CIs and slices included
            for a, committed in rl_vs_sft_pairs(ctx, task, row):
                ctx.compare(a, os.path.join(row, "scores.jsonl"), committed=committed)
        for line in rl_vs_sft_table.table_lines(ctx.path(task)):
            if not (line.startswith("| ") or line.startswith("Test items:")) or set(line) <= set("|-: "):
                continue
            if line.startswith("| row |") or line.startswith("| B | A |"):
                continue
            n = len(re.findall(DEC, line))
            if line in page_lines:
                pc.checked += n
                pc.sources.add(task)
                for start in page_lines[line]:
                    pc.covered.append((start, start + len(line)))
                continue
            pc.fail(*_row_diff(line, page_lines, task))


def _row_diff(line, page_lines, task):
    """(offset, message): the nearest page line to a table line the data prints, and the cells
    that differ."""
    want = [c.strip() for c in line.strip("|").split("|")]
    key = 2 if re.match(r"\| \S+ \| \S+ \| [+-]", line) else 1
    best = None
    for pl, starts in page_lines.items():
        got = [c.strip() for c in pl.strip().strip("|").split("|")]
        if pl.startswith("|") and got[:key] == want[:key] and len(got) == len(want):
            diffs = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
            if best is None or len(diffs) < len(best[1]):
                best = (pl, diffs, starts[0])
    if best is None:
        return None, f'{task}: the data prints "{line}", which is not on the page'
    return best[2], (f'row "{" | ".join(want[:key])}": ' + "; ".join(
        f"column {i + 1}: {g} on the page, {w} recomputed from {task}" for i, g, w in best[1]))


def rl_vs_sft_known(ctx):
    """(value, lo, hi, source) intervals and (PR-AUC, source) values of every row and pair."""
    triples, prs = [], []
    for task in rl_vs_sft_dirs(ctx):
        rows = rl_vs_sft_rows(ctx, task)
        for row in rows:
            m, _ = ctx.eval(row)
            src = f"{row}/scores.jsonl"
            triples.append((m["pr_auc"], m["pr_auc_ci"][0], m["pr_auc_ci"][1], src))
            prs.append((m["pr_auc"], src))
            # A slice's PR-AUC backs a number only where its paragraph names the slice: a small
            # slice's value is otherwise a chance match for any number on the page.
            prs.extend((s["pr_auc"], f"{src} ({tag})", tag.split(":")[-1])
                       for tag, s in m["per_slice"].items() if s.get("pr_auc") is not None)
            for a, committed in rl_vs_sft_pairs(ctx, task, row):
                c = ctx.compare(a, f"{row}/scores.jsonl", committed=committed)
                for metric in ("pr_auc", "roc_auc"):
                    triples.append((c[metric]["diff"], *c[metric]["ci"], f"{src} vs {a} ({metric})"))
                prs.append((c["pr_auc"]["diff"], f"{src} vs {a}"))
    return triples, prs


# --- quickstart.md --------------------------------------------------------------------------------

QS = "quickstart"
QS_ZS, QS_TR = f"{QS}/eval-zero-shot", f"{QS}/eval"
QS_CMP = dict(a=f"{QS_ZS}/scores.jsonl", b=f"{QS_TR}/scores.jsonl", committed=f"{QS}/compare.json")
OFF = "rl-vs-sft/offensive"
PH = "rl-vs-sft/prompt-harm"
PH720 = "rl-diagnosis/prompt-harm-720"


def qs_row(name, row):
    keys = ["pr_auc", "pr_auc_ci[0]", "pr_auc_ci[1]", "roc_auc", "f1", "f1_flag_all", "false_flag_rate",
            "recall_at_precision_0.9", "ece", "format_failure_rate"]
    return Claim(f"| {name} | " + "{:.3f} [{:.3f}, {:.3f}] | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | "
                 "{:.3f} | {:.3f} |", *[ev(row, k) for k in keys])


def qs_cmp(key, limit=None):
    # compare.json is the comparison on all rows; the first-200 one has no committed file.
    return cmp(QS_CMP["a"], QS_CMP["b"], key, limit=limit, committed=None if limit else QS_CMP["committed"])


def off_cmp(b, a, key):
    return cmp(f"{OFF}/{a}/scores.jsonl", f"{OFF}/{b}/scores.jsonl", key,
               committed=f"{OFF}/{b}/vs-{a}.json")


PH720_CMP = dict(a=f"{PH720}/zero-shot/scores.jsonl", b=f"{PH720}/sft-5rl/scores.jsonl",
                 committed=f"{PH720}/sft-5rl/vs-zero-shot.json")

def console(pattern):
    """A number the quickstart script printed (its console output, committed as console.log)."""
    path = f"{QS}/console.log"

    def fn(ctx):
        m = re.search(pattern, L.read_text(ctx.path(path)))
        if not m:
            raise ValueError(f"no line matching {pattern!r}")
        return float(m.group(1))
    return Ref(fn, path)


QS_SECONDS = console(r"quickstart: (\d+) s after setup")


def qs_rule(rule, target, key):
    """`modrl eval --threshold-rule RULE:TARGET` on the quickstart's committed scores: the threshold
    picked on val_scores.jsonl, `key` measured on scores.jsonl."""
    src = f"{QS_TR}/scores.jsonl"
    return Ref(lambda ctx: L.operating_point(ctx.path(src), ctx.path(f"{QS_TR}/val_scores.jsonl"),
                                             rule, target)[key], src)

QUICKSTART = Page(
    data=[QS, OFF],
    claims=[
        Claim("(PR-AUC {:.3f} -> {:.3f}, {:+.3f} [{:+.3f}, {:+.3f}]), in {:.0f} s ({:.1f} min) after setup",
              ev(QS_ZS, "pr_auc"), ev(QS_TR, "pr_auc"), qs_cmp("pr_auc.diff"), qs_cmp("pr_auc.ci[0]"),
              qs_cmp("pr_auc.ci[1]"), QS_SECONDS, scaled(QS_SECONDS, 1 / 60)),
        Claim("(recall {:.3f} at precision 0.9)", ev(QS_TR, "recall_at_precision_0.9")),
        Claim("(it flags {:.0f} % of benign tweets)", pct(ev(QS_TR, "false_flag_rate"))),
        Claim("verdict-only SFT (`data.variant = \"no_reasoning\"`) on {:d}", lines_of(f"{QS}/train_ids.txt")),
        Claim("tweets of at most 160 characters, {:d} steps x 16", log(f"{QS}/run-metrics.jsonl", "step", stage="sft", agg="count")),
        Claim("then {:d}\n  steps of label-token RL", log(f"{QS}/run-metrics.jsonl", "step", stage="rl", agg="count")),
        Claim("beats SFT only by {:+.3f} [{:+.3f}, {:+.3f}] on {:d} test tweets",
              off_cmp("sft-rl", "sft", "pr_auc.diff"), off_cmp("sft-rl", "sft", "pr_auc.ci[0]"),
              off_cmp("sft-rl", "sft", "pr_auc.ci[1]"), off_cmp("sft-rl", "sft", "n")),
        Claim("the first {:d} test tweets ({:d} violating, prevalence {:.3f})", ev(QS_TR, "n"), ev(QS_TR, "n_pos"),
              ev(QS_TR, "prevalence")),
        Claim("thresholds chosen (maximum F1) on the first {:d} validation\n  tweets", lines_of(f"{QS_TR}/val_scores.jsonl")),
        Claim("bootstrap of the difference over the same {:d} items ({:d} resamples)", qs_cmp("n"),
              Ref(lambda ctx: L.read_json(ctx.path(QS_CMP["committed"]))["resamples"], QS_CMP["committed"])),
        qs_row("zero-shot", QS_ZS),
        qs_row("trained (SFT + 40 RL steps)", QS_TR),
        Claim("**PR-AUC {:+.3f} [{:+.3f}, {:+.3f}]**,\nROC-AUC {:+.3f} [{:+.3f}, {:+.3f}]. The PR-AUC of a random "
              "scorer is the prevalence, {:.3f}.", qs_cmp("pr_auc.diff"), qs_cmp("pr_auc.ci[0]"),
              qs_cmp("pr_auc.ci[1]"), qs_cmp("roc_auc.diff"), qs_cmp("roc_auc.ci[0]"), qs_cmp("roc_auc.ci[1]"),
              ev(QS_TR, "prevalence")),
        Claim("worse than chance (ROC-AUC {:.3f}) into a good one ({:.3f}), moves recall at\n"
              "precision 0.9 from {:.3f} to {:.3f}", ev(QS_ZS, "roc_auc"), ev(QS_TR, "roc_auc"),
              ev(QS_ZS, "recall_at_precision_0.9"), ev(QS_TR, "recall_at_precision_0.9")),
        Claim("against {:.0f} % failures zero-shot). Calibration improves too (ECE {:.3f} -> {:.3f})",
              pct(ev(QS_ZS, "format_failure_rate")), ev(QS_ZS, "ece"), ev(QS_TR, "ece")),
        Claim("maximising F1 on {:d} validation tweets ({:d} benign)\n  at a prevalence of {:.3f}",
              lines_of(f"{QS_TR}/val_scores.jsonl"),
              count_rows(f"{QS_TR}/val_scores.jsonl", lambda r: int(r["label"]) == 0),
              ev(QS_TR, "prevalence")),
        Claim("flags {:.0f} % of benign tweets\n  and its F1 ({:.3f}) equals flagging everything ({:.3f})",
              pct(ev(QS_TR, "false_flag_rate")), ev(QS_TR, "f1"), ev(QS_TR, "f1_flag_all")),
        Claim("(recall {:.3f} at precision 0.9 on these items)", ev(QS_TR, "recall_at_precision_0.9")),
        Claim("on the test tweets precision {:.3f}, recall\n  {:.3f}, false-flag rate {:.3f} (from {:.3f}); "
              "`--threshold-rule fpr:0.1` gives false-flag rate {:.3f}\n  at recall {:.3f}",
              qs_rule("precision", 0.9, "precision"), qs_rule("precision", 0.9, "recall"),
              qs_rule("precision", 0.9, "false_flag_rate"), ev(QS_TR, "false_flag_rate"),
              qs_rule("fpr", 0.1, "false_flag_rate"), qs_rule("fpr", 0.1, "recall")),
        Claim("With {:d} benign validation tweets such targets are coarse",
              count_rows(f"{QS_TR}/val_scores.jsonl", lambda r: int(r["label"]) == 0)),
        Claim("reaches PR-AUC {:.3f} on this\n  task", ev(f"{OFF}/tfidf", "pr_auc")),
        Claim("rose from {:.3f} to {:.3f}\n  (`run-metrics.jsonl`",
              log(f"{QS}/run-metrics.jsonl", "label/p_gold_mean", stage="rl", agg="first"),
              Ref(lambda ctx: [r for r in ctx.jsonl(f"{QS}/run-metrics.jsonl") if r.get("stage") == "rl"][-1]
                  ["label/p_gold_mean"], f"{QS}/run-metrics.jsonl")),
        Claim("{:.0f} s after setup, of which training steps {:.0f} s of SFT\n(median {:.1f} s/step",
              QS_SECONDS, log(f"{QS}/run-metrics.jsonl", "step_time", stage="sft", agg="sum"),
              log(f"{QS}/run-metrics.jsonl", "step_time", stage="sft", agg="median")),
        Claim("and {:.0f} s of RL (median {:.1f} s/step), the rest loading the\nmodel and scoring {:d} + {:d} items twice",
              log(f"{QS}/run-metrics.jsonl", "step_time", stage="rl", agg="sum"),
              log(f"{QS}/run-metrics.jsonl", "step_time", stage="rl", agg="median"),
              ev(QS_TR, "n"), lines_of(f"{QS_TR}/val_scores.jsonl")),
    ],
    not_checked=[
        ("about four minutes (load average 4.0;", "the load of the concurrent build, from the session's shell"),
    ],
)


# --- rl-diagnosis.md ------------------------------------------------------------------------------

RD = "rl-diagnosis"
LABEL_RUNS = [f"{RD}/label-rl-from-base.metrics.jsonl", f"{RD}/label-rl-lr1e-4-from-sft320.metrics.jsonl",
              f"{PH720}/run-metrics.jsonl"]
DIAG_CMP = dict(a=f"{RD}/zero-shot-first100/val_scores.jsonl", b=f"{RD}/sft320-val100/scores.jsonl")


def seq(path, key, steps):
    return [log(path, key, step=s) for s in steps]


def arrows(n, spec="{:.2f}"):
    return " -> ".join([spec] * n)


RS = f"{RD}/recipe-search"


def rs_cmp(b, a, key):
    """Paired comparison of two recipe-search rows on the same validation tweets."""
    return cmp(f"{RS}/{a}/scores.jsonl", f"{RS}/{b}/scores.jsonl", key, committed=f"{RS}/{b}/vs-{a}.json")


def rs_row(name, row):
    return Claim(f"| {name} | " + "{:.3f} | {:.3f} | {:+.3f} [{:+.3f}, {:+.3f}] |",
                 ev(f"{RS}/{row}", "pr_auc"), ev(f"{RS}/{row}", "roc_auc"), rs_cmp(row, "sft", "pr_auc.diff"),
                 rs_cmp(row, "sft", "pr_auc.ci[0]"), rs_cmp(row, "sft", "pr_auc.ci[1]"))


RL_DIAGNOSIS = Page(
    data=[RD, OFF],
    claims=[
        Claim("**{:d} of {:d}**\n  parse as a verdict, every reward {:d}",
              count_rows(f"{RD}/base-free-verdict-rollouts.completions.jsonl", lambda r: r["reward"] > 0),
              count_rows(f"{RD}/base-free-verdict-rollouts.completions.jsonl", lambda r: True),
              log(f"{RD}/base-free-verdict-rollouts.completions.jsonl", "reward", agg="max")),
        Claim("**{:d} of {:d}** test items put less than half the\n  next-token mass on the two label words",
              ev(f"{RD}/zero-shot-first100", "failure_counts.label_mass_below_half"),
              ev(f"{RD}/zero-shot-first100", "n")),
        Claim("accuracy reward {:.2f} and {:.2f} and {:.0f}-{:.0f} % of\n  rollouts cut at 24 tokens",
              log(f"{RD}/sft2-then-free-verdict-rl.metrics.jsonl", "rewards/accuracy/mean", step=3),
              log(f"{RD}/sft2-then-free-verdict-rl.metrics.jsonl", "rewards/accuracy/mean", step=4),
              pct(log(f"{RD}/sft2-then-free-verdict-rl.metrics.jsonl", "completions/clipped_ratio", stage="rl", agg="min")),
              pct(log(f"{RD}/sft2-then-free-verdict-rl.metrics.jsonl", "completions/clipped_ratio", stage="rl", agg="max"))),
        Claim("accuracy reward {:.2f} / {:.2f} /\n  {:.2f}, zero-variance groups {:.0f} / {:.0f} / {:.1f} %, grad norm "
              "{:.2f} / {:.2f} / {:.2f} in its first three steps",
              *seq(LABEL_RUNS[0], "rewards/accuracy/mean", (1, 2, 3)),
              *[pct(r) for r in seq(LABEL_RUNS[0], "frac_reward_zero_std", (1, 2, 3))],
              *seq(LABEL_RUNS[0], "grad_norm", (1, 2, 3))),
        Claim("Label-token RL has grad\nnorms {:.1f}-{:.1f} (clipped at 1;",
              log(None, "grad_norm", stage="rl", agg="min", paths=LABEL_RUNS),
              log(None, "grad_norm", stage="rl", agg="max", paths=LABEL_RUNS)),
        Claim("lr 1e-4, no std scaling (Dr. GRPO), same start: " + arrows(6),
              *seq(LABEL_RUNS[1], "label/p_violating_mean", range(1, 7))),
        Claim("from a 720-label SFT adapter: " + arrows(5) + " in five\n  steps",
              *seq(LABEL_RUNS[2], "label/p_violating_mean", range(46, 51))),
        Claim("From the base model at lr 3e-4 it went the other way: " + arrows(3),
              *seq(LABEL_RUNS[0], "label/p_violating_mean", (1, 2, 3))),
        Claim("validation PR-AUC {:.3f} against the\nzero-shot model's {:.3f} on the same {:d} validation items, "
              "paired difference {:+.3f}\n[{:+.3f}, {:+.3f}]",
              ev(f"{RD}/sft320-val100", "pr_auc"), cmp(**DIAG_CMP, key="pr_auc.a"), cmp(**DIAG_CMP, key="n"),
              cmp(**DIAG_CMP, key="pr_auc.diff"), cmp(**DIAG_CMP, key="pr_auc.ci[0]"),
              cmp(**DIAG_CMP, key="pr_auc.ci[1]")),
        Claim("On {:d} labels\n({:d} steps x 16) then {:d} label-RL steps: test PR-AUC {:.3f} -> {:.3f}, paired "
              "difference {:+.3f}\n[{:+.3f}, {:+.3f}] on {:d} test items",
              lines_of(f"{PH720}/train_ids.txt"),
              log(f"{PH720}/run-metrics.jsonl", "step", stage="sft", agg="count"),
              log(f"{PH720}/run-metrics.jsonl", "step", stage="rl", agg="count"),
              ev(f"{PH720}/zero-shot", "pr_auc"), ev(f"{PH720}/sft-5rl", "pr_auc"),
              cmp(**PH720_CMP, key="pr_auc.diff"), cmp(**PH720_CMP, key="pr_auc.ci[0]"),
              cmp(**PH720_CMP, key="pr_auc.ci[1]"), cmp(**PH720_CMP, key="n")),
        Claim("the gold label's probability was still only {:.2f} when RL began",
              log(f"{PH720}/run-metrics.jsonl", "label/p_gold_mean", stage="rl", agg="first")),
        Claim("Zero-variance groups were {:.0f}-{:.0f} % of groups in the label-token runs above",
              pct(log(None, "frac_reward_zero_std", stage="rl", agg="min", paths=LABEL_RUNS)),
              pct(log(None, "frac_reward_zero_std", stage="rl", agg="max", paths=LABEL_RUNS))),
        Claim("30 label-token RL steps at lr 3e-5 after SFT added {:+.3f}\n  PR-AUC [{:+.3f}, {:+.3f}] over SFT only, "
              "while 30 more SFT steps added {:+.3f} [{:+.3f}, {:+.3f}]",
              off_cmp("sft-rl-v1", "sft", "pr_auc.diff"), off_cmp("sft-rl-v1", "sft", "pr_auc.ci[0]"),
              off_cmp("sft-rl-v1", "sft", "pr_auc.ci[1]"),
              off_cmp("sft-more-v1", "sft", "pr_auc.diff"), off_cmp("sft-more-v1", "sft", "pr_auc.ci[0]"),
              off_cmp("sft-more-v1", "sft", "pr_auc.ci[1]")),
        Claim("first recipe's numbers, for the record: {:d} label-token RL steps",
              log(f"{OFF}/sft-rl-v1/run-metrics.jsonl", "step", stage="rl", agg="count")),
        # Section 8: the recipe search on validation tweets.
        Claim("the first {:d} validation tweets ({:d} violating, prevalence {:.3f};\nfixed threshold {:.1f}",
              ev(f"{RS}/sft", "n"), ev(f"{RS}/sft", "n_pos"), ev(f"{RS}/sft", "prevalence"),
              ev(f"{RS}/sft", "threshold")),
        Claim("| nothing (SFT only) | {:.3f} | {:.3f} | |", ev(f"{RS}/sft", "pr_auc"), ev(f"{RS}/sft", "roc_auc")),
        rs_row("30 more SFT steps, lr 1e-3 (the first study's control)", "sft-more"),
        rs_row("40 more SFT steps, lr 3e-4", "sft-more-lr3e-4"),
        rs_row("40 label-token RL steps, exact + balanced, lr 3e-4", "exact-bal-lr3e-4"),
        rs_row("40 label-token RL steps, exact + balanced, lr 1e-3", "exact-bal-lr1e-3"),
        Claim("rose from {:.3f} to {:.3f}\n  (`exact-bal-lr3e-4/run-metrics.jsonl`",
              log(f"{RS}/exact-bal-lr3e-4/run-metrics.jsonl", "label/p_gold_mean", agg="first"),
              log(f"{RS}/exact-bal-lr3e-4/run-metrics.jsonl", "label/p_gold_mean", step=40)),
        Claim("P(violating) still swung between steps ({:.2f}-{:.2f}) but kept coming back ({:.2f} at the last step)",
              log(f"{RS}/exact-bal-lr3e-4/run-metrics.jsonl", "label/p_violating_mean", agg="min"),
              log(f"{RS}/exact-bal-lr3e-4/run-metrics.jsonl", "label/p_violating_mean", agg="max"),
              log(f"{RS}/exact-bal-lr3e-4/run-metrics.jsonl", "label/p_violating_mean", step=40)),
        Claim("P(violating) {:.3f} and the gold label's probability {:.3f} at the\n  last step",
              log(f"{RS}/exact-bal-lr1e-3/run-metrics.jsonl", "label/p_violating_mean", step=40),
              log(f"{RS}/exact-bal-lr1e-3/run-metrics.jsonl", "label/p_gold_mean", step=40)),
        Claim("for the same 40 steps\n  gains {:+.3f}; the RL run is {:+.3f} [{:+.3f}, {:+.3f}] above it",
              rs_cmp("sft-more-lr3e-4", "sft", "pr_auc.diff"),
              rs_cmp("exact-bal-lr3e-4", "sft-more-lr3e-4", "pr_auc.diff"),
              rs_cmp("exact-bal-lr3e-4", "sft-more-lr3e-4", "pr_auc.ci[0]"),
              rs_cmp("exact-bal-lr3e-4", "sft-more-lr3e-4", "pr_auc.ci[1]")),
        Claim("\"SFT then RL\" row: {:+.3f}\n  [{:+.3f}, {:+.3f}] over SFT only",
              off_cmp("sft-rl", "sft", "pr_auc.diff"), off_cmp("sft-rl", "sft", "pr_auc.ci[0]"),
              off_cmp("sft-rl", "sft", "pr_auc.ci[1]")),
        Claim("(TF-IDF + logistic regression {:.3f} PR-AUC on the offensive task)", ev(f"{OFF}/tfidf", "pr_auc")),
    ],
    not_checked=[
        ("SFT then RL gained +0.002 PR-AUC over SFT only", "quoted from archive/prompt-harm-sft-rl.md"),
        ("(greedy format\nfailures 0.70 -> 0.05, reasoning 44 -> 25 words on 20 items)",
         "quoted from archive/prompt-harm-sft-rl.md"),
        ("(0.703 -> 0.704)", "quoted from archive/prompt-harm-sft-rl.md"),
        ("0.66 -> 0.96 -> 0.95 -> 0.80 -> 0.25 -> 0.03 -> 0.02", "that run folder was overwritten (the page says so)"),
        ("grad norms 0.005-0.07 (archived page)", "quoted from archive/prompt-harm-sft-rl.md"),
        ("(0.55 -> 0.70 on CPU, 0.58 -> 0.75 on the GPU;", "quoted from archive/prompt-harm-sft-rl.md"),
        ("against 100 % in the old accuracy-only run", "quoted from archive/reward-shaping.md"),
        ("loss 0.002935 both ways, gradient norm 0.503,\nrelative difference of the flattened LoRA gradient 6.5e-6",
         "printed by `cargo test ... --nocapture` (rerun the test to recompute)"),
    ],
)


# --- benchmark pages: medians, ratios, totals and rates from the runs the page prints -------------

def _half(text):
    return 0.5 * 10 ** -decimals(text)


def _cells(pc, header_has):
    for header, rows in tables(pc.text):
        if any(header_has in h for h in header):
            return header, rows
    pc.fail(None, f'no table with a "{header_has}" column')
    return None, []


def check_bench_engine(pc, ctx):
    """bench/engine.sh's page: its tables and the sentences that carry numbers regenerated from the
    committed runs (bench-engine/runs.jsonl) and shapes (bench-engine/meta.json)."""
    runs, meta = "bench-engine/runs.jsonl", "bench-engine/meta.json"
    if not os.path.isfile(ctx.path(runs)) or not os.path.isfile(ctx.path(meta)):
        pc.fail(None, f"{runs} or {meta} missing: the page's numbers cannot be recomputed")
        return
    check_engine_runs(pc, ctx, runs, meta)


def check_engine_runs(pc, ctx, runs, meta):
    """Every table and numbered sentence bench_engine_lines prints from one drive's raw files
    (runs.jsonl and meta.json, relative paths) must stand on the page."""
    pc.sources.update((runs, meta))
    sec = L.bench_engine_lines(ctx.jsonl(runs), L.read_json(ctx.path(meta)))
    check_lines(pc, [x for part in sec.values() for x in part], runs)


def check_load_test(pc, ctx):
    """bench/load.sh's page: its table and throughput ratio rebuilt from every request it sent
    (load-test/requests.jsonl)."""
    raw = "load-test/requests.jsonl"
    if not os.path.isfile(ctx.path(raw)):
        pc.fail(None, f"{raw} missing: the page's numbers cannot be recomputed")
        return
    pc.sources.add(raw)
    flops = "load-test/flops.json"
    f = None
    if os.path.isfile(ctx.path(flops)):
        pc.sources.add(flops)
        f = L.read_json(ctx.path(flops))
    check_lines(pc, L.load_test_lines(ctx.jsonl(raw), f), raw + (f" and {flops}" if f else ""))


def check_bench_grpo(pc, ctx):
    """bench/grpo.sh's page: each regime's table rebuilt from its committed steps
    (bench-grpo/REGIME.json)."""
    d = ctx.path("bench-grpo")
    files = sorted(f for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []
    if not files:
        pc.fail(None, "no bench-grpo/*.json: the page's numbers cannot be recomputed")
        return
    for f in files:
        pc.sources.add(f"bench-grpo/{f}")
        check_lines(pc, L.grpo_lines(L.read_json(os.path.join(d, f))), f"bench-grpo/{f}")


def check_classify(pc, ctx):
    """A bench/classify_resume.sh page: its table and check rebuilt from the raw run beside it
    (PAGE-STEM/run.json) when there is one; else (pages from before the raw file) every rate,
    total and count recomputed from the runs the page prints."""
    raw = os.path.splitext(pc.rel)[0] + "/run.json"
    if os.path.exists(ctx.path(raw)):
        pc.sources.add(raw)
        check_lines(pc, L.classify_lines(L.read_json(ctx.path(raw))), raw)
        return
    header, rows = _cells(pc, "items/s")
    if not header:
        return
    runs = []
    for _, cells in rows:
        n, wall, rate = cells[1], cells[2], cells[3]
        rtext = re.match(r"\d+(?:\.\d+)?", rate[0]).group(0)
        w = float(wall[0])
        pc.derived(rate[1], rtext, int(n[0]) / (w + _half(wall[0])), int(n[0]) / max(w - _half(wall[0]), 1e-9),
                   f"{cells[0][0]}: items/s = rows written / wall s")
        runs.append((cells[0][0], int(n[0]), w, wall))
    if len(runs) >= 3 and runs[-1][0] == "total":
        parts, total = runs[:-1], runs[-1]
        pc.derived(total[3][1] - 2, str(total[1]), sum(r[1] for r in parts), sum(r[1] for r in parts),
                   "total rows written = the runs' rows")
        slack = 0.5 * len(parts)
        s = sum(r[2] for r in parts)
        pc.derived(total[3][1], total[3][0], s - slack, s + slack, "total wall s = the runs' wall s")
        for m in re.finditer(r"(\d+) distinct ids", pc.text):
            pc.derived(m.start(1), m.group(1), total[1], total[1], "distinct ids = total rows written")
        first = parts[0][1]
        for m in re.finditer(r"(?:skips the|The) (\d+) (?:ids already written|rows written before the kill)", pc.text):
            pc.derived(m.start(1), m.group(1), first, first, "rows of run 1")
    for m in re.finditer(r"first (\d+) rows, one run each.*?`--batch-rows (\d+)` ([\d.]+) s \(([\d.]+) items/s\), "
                         r"`--batch-rows (\d+)` ([\d.]+) s \(([\d.]+) items/s\)\. Small batches\s+are ([\d.]+)x faster",
                         pc.text, re.S):
        n = int(m.group(1))
        for t, r, p in ((m.group(3), m.group(4), m.start(4)), (m.group(6), m.group(7), m.start(7))):
            pc.derived(p, r, n / (float(t) + _half(t)), n / (float(t) - _half(t)), f"items/s of {n} rows in {t} s")
        a, b = float(m.group(6)), float(m.group(3))
        pc.derived(m.start(8), m.group(8), (a - 0.05) / (b + 0.05), (a + 0.05) / (b - 0.05), "speed-up")


def check_gpu_engine(pc, ctx):
    """bench/gpu.sh's page: per dtype, its tables and numbered sentences regenerated from the
    committed runs (gpu-engine/runs-DTYPE.jsonl, meta-DTYPE.json). A page from before the script
    (no raw files): every ratio recomputed from the throughputs it prints."""
    d = ctx.path("gpu-engine")
    metas = sorted(f for f in os.listdir(d) if f.startswith("meta-") and f.endswith(".json")) if os.path.isdir(d) else []
    for m in metas:
        dt = m[len("meta-"):-len(".json")]
        runs = f"gpu-engine/runs-{dt}.jsonl"
        if not os.path.isfile(ctx.path(runs)):
            pc.fail(None, f"{runs} missing beside gpu-engine/{m}")
            continue
        check_engine_runs(pc, ctx, runs, f"gpu-engine/{m}")
    if metas:
        return
    found = False
    for m in re.finditer(r"(\d+) vs (\d+) tok/s \(([\d.]+)x\)", pc.text):
        found = True
        a, b = float(m.group(1)), float(m.group(2))
        pc.derived(m.start(3), m.group(3), (a - 0.5) / (b + 0.5), (a + 0.5) / (b - 0.5),
                   f"{m.group(1)} / {m.group(2)} tok/s")
    for m in re.finditer(r"scoring of (\d+) Davidson tweets.*?\| ([\d.]+) s including .*?\(>(\d+) items/s\)", pc.text):
        found = True
        n, t = int(m.group(1)), float(m.group(2))
        rate = n / (t + _half(m.group(2)))
        pc.checked += 1
        if rate <= float(m.group(3)):
            pc.fail(m.start(3), f">{m.group(3)} items/s on the page, but {n} items in {m.group(2)} s is {n / t:.1f}")
    if not found:
        pc.fail(None, 'no "A vs B tok/s (Rx)" numbers found')


# --- judge-agreement.md: the summary recomputed from the graded answers -------------------------

JS, JG = "judge-agreement/summary.json", "judge-agreement/graded.jsonl"

JUDGE_PAIRS = [("grounded", "grounded"), ("no_invented_facts", "grounded"), ("applies_policy", "category")]


def judge_summary(rows):
    """summary.json of `modrl grade` recomputed from its graded.jsonl (crates/train/src/grade.rs)."""
    n = max(len(rows), 1)
    means = {}
    for r in rows:
        for k, v in r["rewards"].items():
            means[k] = means.get(k, 0.0) + v
    judged = [r["judge"] for r in rows if r.get("judge")]
    both = []
    for r in rows:
        j, rules = r.get("judge"), r.get("rules")
        if j and rules:
            app = [v for v in rules.values() if v is not None]
            if app:
                both.append((j["score"], sum(app) / len(app)))

    def pearson(xy):
        if len(xy) < 2:
            return None
        mx = sum(x for x, _ in xy) / len(xy)
        my = sum(y for _, y in xy) / len(xy)
        sxy = sum((x - mx) * (y - my) for x, y in xy)
        sxx = sum((x - mx) ** 2 for x, _ in xy)
        syy = sum((y - my) ** 2 for _, y in xy)
        return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else None

    pairs = []
    for jk, rk in JUDGE_PAIRS:
        obs = [(r["judge"]["criteria"].get(jk) >= 0.5, r["rules"][rk]) for r in rows
               if r.get("judge") and r.get("rules") and r["judge"]["criteria"].get(jk) is not None
               and r["rules"].get(rk) is not None]
        k = len(obs)
        rate = (lambda f: sum(1 for o in obs if f(o)) / k) if k else (lambda f: None)
        agree, pj, pr = rate(lambda o: o[0] == o[1]), rate(lambda o: o[0]), rate(lambda o: o[1])
        kappa = None
        if k:
            pe = pj * pr + (1 - pj) * (1 - pr)
            kappa = (agree - pe) / (1 - pe) if pe < 1 - 1e-12 else None
        pairs.append({"judge": jk, "rule": rk, "n": k, "agreement": agree, "kappa": kappa,
                      "judge_pass_rate": pj, "rule_pass_rate": pr})
    return {"answers": len(rows), "reward_means": {k: v / n for k, v in means.items()},
            "rules_graded": sum(1 for r in rows if r.get("rules")), "judged": len(judged),
            "judge_parsed_fraction": sum(1 for j in judged if j["parsed"]) / len(judged) if judged else None,
            "score_correlation": pearson(both), "pairs": pairs}


def check_judge(pc, ctx):
    """docs/results/judge-agreement.md: summary.json recomputed from graded.jsonl, every graded
    answer one of answers.jsonl's, and the page's numbers (claims) from summary.json."""
    d = "judge-agreement"
    rows = ctx.jsonl(f"{d}/graded.jsonl")
    answers = {r["id"] for r in ctx.jsonl(f"{d}/answers.jsonl")}
    if {r["id"] for r in rows} != answers:
        pc.fail(None, f"{d}/graded.jsonl grades other answers than {d}/answers.jsonl holds")
    ours, theirs = judge_summary(rows), L.read_json(ctx.path(f"{d}/summary.json"))
    for key, a, b in _leaves("summary", ours, theirs):
        if not (a == b if isinstance(a, str) or isinstance(b, str) else _close(a, b)):
            pc.fail(None, f"{d}/summary.json: {key} = {b}, recomputed from graded.jsonl {a}")
    pc.sources.add(f"{d}/graded.jsonl")


def check_ray_classify(pc, ctx):
    """bench/ray_classify.py's page: its table recomputed from the committed raw runs, and the
    scale-out arithmetic from the GPU rate it quotes."""
    runs = L.read_jsonl(ctx.path("ray-classify/runs.jsonl"))
    pc.sources.add("ray-classify/runs.jsonl")
    for line in L.ray_classify_table(runs)[2:]:
        i = pc.text.find(line)
        if i < 0:
            pc.fail(None, f'the runs give "{line}", which is not on the page')
            continue
        pc.checked += len(re.findall(DEC, line))
        pc.covered.append((i, i + len(line)))
    m = re.search(r"at\s+([\d.]+) items/s with `modrl classify`.*?is ([\d,]+) items/s, so about (\d+) such GPUs",
                  pc.text, re.S)
    if not m:
        pc.fail(None, 'no "at R items/s ... is N items/s, so about G such GPUs" arithmetic found')
        return
    rate, per_s = float(m.group(1)), 1e9 / 86400
    pc.derived(m.start(2), m.group(2).replace(",", ""), per_s - 0.5, per_s + 0.5, "1e9 items / 86400 s")
    pc.derived(m.start(3), m.group(3), per_s / rate - 0.5, per_s / rate + 0.5, "items/s needed / items/s per GPU")


def _modrl_binary():
    root = os.path.dirname(HERE)
    for b in ("target/release/modrl", "target/debug/modrl"):
        if os.access(os.path.join(root, b), os.X_OK):
            return os.path.join(root, b)
    return None


def check_lines(pc, lines, where):
    """Each line (a table row the data prints) must stand verbatim on the page; a missing one fails
    with the nearest page row and the cells that differ."""
    page_lines = {}
    for m in re.finditer(r"^.*$", pc.text, re.M):
        page_lines.setdefault(m.group(0), []).append(m.start())
    for line in lines:
        i = pc.text.find(line)
        if i < 0:
            pc.fail(*_row_diff(line, page_lines, where))
            continue
        pc.checked += len(re.findall(DEC, line))
        pc.covered.append((i, i + len(line)))


def check_scaling(pc, ctx):
    """docs/results/scaling.md: its three tables (curves, fits, labels) regenerated from the
    committed points and fits (scaling/offensive/NAME.points.jsonl, NAME.fit.json); each points file's PR-AUC rows checked
    against the run's committed metrics.jsonl and start point; and, when a modrl binary is built,
    every fit.json recomputed by `modrl scaling fit` from its points."""
    folder = ctx.path("scaling/offensive")
    pc.sources.add("scaling/offensive/*.points.jsonl, *.fit.json")
    check_lines(pc, L.scaling_curve_table(folder)[2:] + L.scaling_fit_table(folder)[2:]
                + L.scaling_labels_table(folder)[2:], "scaling/offensive")
    for name, _ in L.SCALING_RUNS:
        pts_path = os.path.join(folder, f"{name}.points.jsonl")
        if not os.path.exists(pts_path):
            continue
        pts = L.read_jsonl(pts_path)
        logged = {r["step"]: r["eval/pr_auc"] for r in L.read_jsonl(os.path.join(folder, f"{name}.metrics.jsonl"))
                  if r.get("eval/pr_auc") is not None}
        start = L.read_json(os.path.join(folder, pts[0]["start"], "metrics.json"))
        for p in pts:
            want = start["pr_auc"] if p["step"] == 0 else logged.get(p["step"])
            if want is None or abs(want - p["pr_auc"]) > 1e-9:
                pc.fail(None, f"{name}.points.jsonl step {p['step']}: PR-AUC {p['pr_auc']} but the run logged {want}")
        fit_path = os.path.join(folder, f"{name}.fit.json")
        b = _modrl_binary()
        if b and os.path.exists(fit_path):
            out = subprocess.run([b, "scaling", "fit", "--in", pts_path, "--x", "train_tokens", "--y", "pr_auc",
                                  "--json"], capture_output=True, text=True)
            if out.returncode != 0:
                pc.fail(None, f"modrl scaling fit on {name}.points.jsonl failed: {out.stderr.strip()[-300:]}")
                continue
            new, old = json.loads(out.stdout), L.read_json(fit_path)
            # Every number the fits table prints: the fit, its bootstrap intervals, the hold-out error.
            if (old.get("holdout") is None) != (new.get("holdout") is None):
                pc.fail(None, f"{name}.fit.json: hold-out {old.get('holdout')}, `modrl scaling fit` now gives "
                              f"{new.get('holdout')}")
                continue
            keys = ["r0", "a", "b", "c_mid", "rmse", "ci_r0[0]", "ci_r0[1]", "ci_a[0]", "ci_a[1]",
                    "ci_b[0]", "ci_b[1]", "ci_c_mid[0]", "ci_c_mid[1]"]
            # A fit over too few points has no hold-out (the table prints "-").
            if old.get("holdout") is not None:
                keys.append("holdout.mae")
            for k in keys:
                o, n = pick(old, k), pick(new, k)
                if abs(n - o) > 1e-6 * max(1.0, abs(o)):
                    pc.fail(None, f"{name}.fit.json: {k} = {o}, `modrl scaling fit` now gives {n}")
            pc.sources.add("modrl scaling fit (refit)")


def check_reward_shaping(pc, ctx):
    """docs/results/reward-shaping.md: its table of window means regenerated from each arm's
    committed metrics.jsonl (reward-shaping/ARM/), found verbatim on the page."""
    folder = ctx.path("reward-shaping")
    pc.sources.add("reward-shaping/*/metrics.jsonl")
    table = L.shaping_table(folder)
    if not table:
        pc.fail(None, "reward-shaping/: no arm's metrics.jsonl")
    check_lines(pc, table, "reward-shaping")


RS_DIR = "reward-shaping"


def window(arm, key, lo, hi):
    """Mean of `key` over RL steps lo..hi of an arm's committed metrics.jsonl (reward-shaping/ARM)."""
    path = f"{RS_DIR}/{arm}/metrics.jsonl"
    return Ref(lambda ctx: statistics.mean(r[key] for r in ctx.jsonl(path) if lo <= r["step"] <= hi and key in r), path)


def shaping_cmp(a, b, key):
    """Paired comparison B - A of two rows of the reward-shaping page on the same test tweets."""
    pa = f"{RS_DIR}/start/scores.jsonl" if a == "start" else f"{RS_DIR}/{a}/test/scores.jsonl"
    return cmp(pa, f"{RS_DIR}/{b}/test/scores.jsonl", key, committed=f"{RS_DIR}/{b}/test/vs-{a}.json")


def shaping_ends(arm, key):
    return window(arm, key, 1, 5), window(arm, key, 36, 40)


def failures(row):
    """Greedy answers of a row without a parseable verdict (every kind of format failure)."""
    path = f"{row}/metrics.json"
    return Ref(lambda ctx: sum(L.read_json(ctx.path(path)).get("failure_counts", {}).values()), path)


def shaping_row(name, row, vs_start):
    rf = f"{RS_DIR}/{row}"
    tail = " | {:+.3f} [{:+.3f}, {:+.3f}] |" if vs_start else " | |"
    refs = [ev(rf, k) for k in ("pr_auc", "pr_auc_ci[0]", "pr_auc_ci[1]", "prevalence", "roc_auc", "f1",
                                "f1_flag_all", "false_flag_rate")] + [failures(rf)]
    if vs_start:
        arm = row.split("/")[0]
        refs += [shaping_cmp("start", arm, k) for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")]
    return Claim(f"| {name} | " + "{:.3f} [{:.3f}, {:.3f}] | {:.3f} | {:.3f} | {:.3f} ({:.3f}) | {:.3f} | {:d}" + tail,
                 *refs)


VERDICT_RX = re.compile(r'\{"label": "(\w+)".*"probability": ([0-9.]+)')


def logged(arm, what, first_step):
    """Logged answers of an arm (reward-shaping/ARM/completions.jsonl) from `first_step` on:
    "all", "no_verdict" (no verdict line with a probability), or "disagree" (label and stated
    probability on opposite sides of 0.5)."""
    def pred(r):
        if r["step"] < first_step:
            return False
        m = VERDICT_RX.search(r["completion"])
        if what == "no_verdict":
            return m is None
        if what == "disagree":
            return m is not None and (m.group(1) == "violating") != (float(m.group(2)) >= 0.5)
        return True
    return count_rows(f"{RS_DIR}/{arm}/completions.jsonl", pred)


SHAPING_CLAIMS = [
    Claim("`completions.jsonl`), {:d} of {:d} in `shaped` state a probability on the wrong side of 0.5 for\n"
          "their label and {:d} of {:d} have no verdict (cut at the budget), against {:d} and {:d} of {:d} in `acc`",
          logged("shaped", "disagree", 21), logged("shaped", "all", 21), logged("shaped", "no_verdict", 21),
          logged("shaped", "all", 21), logged("acc", "disagree", 21), logged("acc", "no_verdict", 21),
          logged("acc", "all", 21)),
    Claim("halves the reasoning ({:.1f} words per answer over the first five steps, {:.1f} over the last five)",
          *shaping_ends("acc", "monitors/reasoning_words")),
    Claim("while its reward rises ({:.2f} to {:.2f} over the same steps)", *shaping_ends("acc", "reward")),
    Claim("keeps it ({:.1f} to {:.1f} words)", *shaping_ends("shaped", "monitors/reasoning_words")),
    Claim("({:.2f} to {:.2f}, against {:.2f} to {:.2f})", *shaping_ends("shaped", "rewards/accuracy/mean"),
          *shaping_ends("acc", "rewards/accuracy/mean")),
    Claim("(finished\nanswers: {:.2f} to {:.2f}) and fewer broken answers (instruction hallucination {:.2f} to {:.2f})",
          *shaping_ends("acc", "rewards/format/mean"), *shaping_ends("acc", "monitors/instruction_hallucination_rate")),
    Claim("the rubric reward climbs ({:.2f} to {:.2f}) and broken answers stay near half ({:.2f} to\n{:.2f},",
          *shaping_ends("shaped", "rewards/rubric_rules/mean"),
          *shaping_ends("shaped", "monitors/instruction_hallucination_rate")),
    Claim("both\nend at chance (PR-AUC {:.3f} and {:.3f} at prevalence {:.3f},",
          ev(f"{RS_DIR}/acc/test", "pr_auc"), ev(f"{RS_DIR}/shaped/test", "pr_auc"), ev(f"{RS_DIR}/acc/test", "prevalence")),
    Claim("nothing measurable on test ({:+.3f} [{:+.3f}, {:+.3f}])",
          *[shaping_cmp("acc", "shaped", k) for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")]),
    Claim("({:d} kept,\n  {:.0f} words on average;", js("rl-vs-sft/offensive/star-sft-n240/self-reason.stats.json", "kept"),
          js("rl-vs-sft/offensive/star-sft-n240/self-reason.stats.json", "mean_words_kept")),
    Claim("its first RL batch\nwrote {:.1f} words per answer", log(f"{RS_DIR}/acc/metrics.jsonl", "monitors/reasoning_words", step=1)),
    Claim("(the start's answers: {:.0f} words kept for SFT, {:.1f} in the first batch;",
          js("rl-vs-sft/offensive/star-sft-n240/self-reason.stats.json", "mean_words_kept"),
          log(f"{RS_DIR}/acc/metrics.jsonl", "monitors/reasoning_words", step=1)),
    Claim("the words fall from {:.1f} at step 1 to {:.1f} over the last five steps",
          log(f"{RS_DIR}/acc/metrics.jsonl", "monitors/reasoning_words", step=1), window("acc", "monitors/reasoning_words", 36, 40)),
    Claim("the ratio stayed just above one half (lowest {:.3f})",
          log(f"{RS_DIR}/acc/metrics.jsonl", "monitors/length_ratio", agg="min")),
    Claim("(accuracy {:.2f} to {:.2f} over five-step windows) and instruction hallucination is {:.2f}",
          window("rl-only", "rewards/accuracy/mean", 1, 5), window("rl-only", "rewards/accuracy/mean", 16, 20),
          log(f"{RS_DIR}/rl-only/metrics.jsonl", "monitors/instruction_hallucination_rate", agg="min")),
    Claim("Stopped after {:d} of its 40 steps", log(f"{RS_DIR}/rl-only/metrics.jsonl", "step", agg="max")),
    shaping_row("start (`star-sft-n240`)", "start", False),
    shaping_row("`acc`", "acc/test", True),
    shaping_row("`shaped`", "shaped/test", True),
    Claim("`shaped` against `acc` on the same tweets: {:+.3f} [{:+.3f}, {:+.3f}] PR-AUC, {:+.3f} [{:+.3f},\n  {:+.3f}] ROC-AUC",
          *[shaping_cmp("acc", "shaped", k) for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]", "roc_auc.diff",
                                                       "roc_auc.ci[0]", "roc_auc.ci[1]")]),
    Claim("40 RL steps bring both arms to about\nchance, {:+.3f} over the start", shaping_cmp("start", "acc", "pr_auc.diff")),
    Claim("Format failures (greedy answers without a parseable verdict, of {:d}): none for `acc`",
          ev(f"{RS_DIR}/acc/test", "n")),
    Claim("{:d} for `shaped` ({:d} without a verdict line, all cut at the 96-token\n  budget with the reasoning still open",
          failures(f"{RS_DIR}/shaped/test"), ev(f"{RS_DIR}/shaped/test", "failure_counts.no_verdict")),
    Claim("{:d} whose verdict line does not\n  parse)", ev(f"{RS_DIR}/shaped/test", "failure_counts.bad_json")),
]


BENCH_NOTE = ("benchmark: medians, ratios, totals and rates recomputed from the runs the page prints "
              "(raw timing files were not committed)")
RAW_BENCH_NOTE = "benchmark: tables rebuilt from the committed raw runs"

SC = "scaling/offensive"
SEEDS = ("rl-kl0.5-fmt", "rl-kl0.5-fmt-seed1", "rl-kl0.5-fmt-seed2")
SCALING_CLAIMS = [
    Claim("**Validation PR-AUC at step 60: {:.3f}, {:.3f} and {:.3f}** (seeds 0, 1, 2; at step 30: {:.3f},\n"
          "  {:.3f}, {:.3f})", *[log(f"{SC}/{r}.points.jsonl", "pr_auc", step=60) for r in SEEDS],
          *[log(f"{SC}/{r}.points.jsonl", "pr_auc", step=30) for r in SEEDS]),
    Claim("points puts the asymptote at {:.3f} [{:.3f}, {:.3f}] with C_mid at",
          *[js(f"{SC}/labels-960-s188.fit.json", k) for k in ("a", "ci_a[0]", "ci_a[1]")]),
    Claim("it predicts the other 9 within {:.3f} on average\n  (it overshoots",
          js(f"{SC}/labels-960-s188.fit.json", "holdout.mae")),
    Claim("the\n  run on 120 labels (each seen 8 times) ends at {:.3f}, the one on 480 (twice) at {:.3f} and\n"
          "  the one on 960 (once) at {:.3f}, and the curves cross on the way (at step 30: {:.3f}, {:.3f},\n  {:.3f})",
          *[log(f"{SC}/{r}.points.jsonl", "pr_auc", step=60) for r in ("labels-120", "labels-480", "rl-kl0.5-fmt")],
          *[log(f"{SC}/{r}.points.jsonl", "pr_auc", step=30) for r in ("labels-120", "labels-480", "rl-kl0.5-fmt")]),
    Claim("from the SFT adapter (validation PR-AUC {:.3f}) it rises to {:.3f} in 120 steps",
          log(f"{SC}/sft-rl-steps.points.jsonl", "pr_auc", step=0),
          log(f"{SC}/sft-rl-steps.points.jsonl", "pr_auc", step=120)),
    Claim("asymptote A = {:.3f} [{:.3f}, {:.3f}]", js(f"{SC}/sft-rl-steps.fit.json", "a"),
          js(f"{SC}/sft-rl-steps.fit.json", "ci_a[0]"), js(f"{SC}/sft-rl-steps.fit.json", "ci_a[1]")),
    Claim("residual RMSE {:.4f} over {} points", js(f"{SC}/sft-rl-steps.fit.json", "rmse"),
          js(f"{SC}/sft-rl-steps.fit.json", "n")),
    Claim("overshoots the second half by {:.3f} on average ({:.3f} at the end)",
          js(f"{SC}/sft-rl-steps.fit.json", "holdout.mae"),
          js(f"{SC}/sft-rl-steps.fit.json", "holdout.max_abs_error")),
    Claim("the law puts the asymptote at {:.3f}", js(f"{SC}/sft-rl-steps.fit.json", "holdout.fit.a")),
    Claim("collapsed: validation PR-AUC {:.3f} at step 20, then {:.3f} (step 30) and {:.3f} (step 40)",
          log(f"{SC}/sft-rl-steps-lr3e-4.points.jsonl", "pr_auc", step=20),
          log(f"{SC}/sft-rl-steps-lr3e-4.points.jsonl", "pr_auc", step=30),
          log(f"{SC}/sft-rl-steps-lr3e-4.points.jsonl", "pr_auc", step=40)),
    Claim("mean P(violating) on balanced batches {:.4f} at step 7 and {:.4f} at step 10",
          log(f"{SC}/g2.metrics.jsonl", "label/p_violating_mean", step=7),
          log(f"{SC}/g2.metrics.jsonl", "label/p_violating_mean", step=10)),
    Claim("(mean P(violating) from {:.3f} at step 1 to {:.3f})",
          log(f"{SC}/rl-steps.metrics.jsonl", "label/p_violating_mean", step=1),
          log(f"{SC}/rl-steps.metrics.jsonl", "label/p_violating_mean", step=9)),
    Claim("ends highest of the three, {:.3f} ({:.3f} at step 30 against {:.3f} for G = 16)",
          log(f"{SC}/g8.points.jsonl", "pr_auc", step=40), log(f"{SC}/g8.points.jsonl", "pr_auc", step=30),
          log(f"{SC}/g16.points.jsonl", "pr_auc", step=30)),
    Claim("it ends at {:.3f}.", log(f"{SC}/g16.points.jsonl", "pr_auc", step=40)),
    Claim("Its validation PR-AUC still rose from {:.3f} to {:.3f}",
          log(f"{SC}/rl-steps.points.jsonl", "pr_auc", step=0),
          log(f"{SC}/rl-steps.points.jsonl", "pr_auc", step=10)),
    Claim("On 1000 test tweets the final adapter scores PR-AUC {:.3f}",
          ev(f"{OFF}/sft-rl-long", "pr_auc")),
    # The remedy: RL only with the KL term (runs rl-kl0.5, rl-kl0.5-fmt; rows rl-kl, rl-kl-fmt).
    Claim("only from the base model no longer collapses and climbs from {:.3f} to {:.3f} validation PR-AUC in",
          log(f"{SC}/rl-kl0.5.points.jsonl", "pr_auc", step=0), log(f"{SC}/rl-kl0.5.points.jsonl", "pr_auc", step=60)),
    Claim("on 1000 test tweets it scores {:.3f}, {:+.3f} [{:+.3f}, {:+.3f}] over SFT only",
          ev(f"{OFF}/rl-kl", "pr_auc"), off_cmp("rl-kl", "sft", "pr_auc.diff"),
          off_cmp("rl-kl", "sft", "pr_auc.ci[0]"), off_cmp("rl-kl", "sft", "pr_auc.ci[1]")),
    Claim("Its fitted asymptote ({:.3f} [{:.3f}, {:.3f}]) is below SFT then RL's ({:.3f} [{:.3f}, {:.3f}])",
          js(f"{SC}/rl-kl0.5.fit.json", "a"), js(f"{SC}/rl-kl0.5.fit.json", "ci_a[0]"),
          js(f"{SC}/rl-kl0.5.fit.json", "ci_a[1]"), js(f"{SC}/sft-rl-steps.fit.json", "a"),
          js(f"{SC}/sft-rl-steps.fit.json", "ci_a[0]"), js(f"{SC}/sft-rl-steps.fit.json", "ci_a[1]")),
    Claim("(mean P(gold) {:.3f} on the first batch)", log(f"{SC}/rl-kl0.5.metrics.jsonl", "label/p_gold_mean", step=1)),
    Claim("mean P(violating) stayed between {:.3f} and {:.3f} over all 60 steps (without it: {:.3f} by step 9)",
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "label/p_violating_mean", agg="min"),
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "label/p_violating_mean", agg="max"),
          log(f"{SC}/rl-steps.metrics.jsonl", "label/p_violating_mean", step=9)),
    Claim("the mean KL per prompt stayed at or under {:.3f} nats, and the mean P(gold) on the training batches rose "
          "from {:.3f} to {:.3f} (last ten steps)",
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "kl", agg="max"),
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "label/p_gold_mean", step=1),
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "label/p_gold_mean", agg="last10_mean")),
    Claim("**Curve**: {:.3f} at the start, {:.3f} at step 10 (the collapsed run: {:.3f}), then {:.3f}, {:.3f}, {:.3f}, "
          "{:.3f}, {:.3f}",
          *[log(f"{SC}/rl-kl0.5.points.jsonl", "pr_auc", step=k) for k in (0, 10)],
          log(f"{SC}/rl-steps.points.jsonl", "pr_auc", step=10),
          *[log(f"{SC}/rl-kl0.5.points.jsonl", "pr_auc", step=k) for k in (20, 30, 40, 50, 60)]),
    Claim("puts the asymptote at {:.3f} [{:.3f}, {:.3f}]; the SFT-then-RL recipe's is {:.3f} [{:.3f}, {:.3f}]",
          js(f"{SC}/rl-kl0.5.fit.json", "a"), js(f"{SC}/rl-kl0.5.fit.json", "ci_a[0]"),
          js(f"{SC}/rl-kl0.5.fit.json", "ci_a[1]"), js(f"{SC}/sft-rl-steps.fit.json", "a"),
          js(f"{SC}/sft-rl-steps.fit.json", "ci_a[0]"), js(f"{SC}/sft-rl-steps.fit.json", "ci_a[1]")),
    Claim("on 1000 test tweets {:.3f} [{:.3f}, {:.3f}], {:+.3f} [{:+.3f}, {:+.3f}] over SFT only on the same 960 labels, "
          "{:+.3f} [{:+.3f}, {:+.3f}] over SFT continued, {:+.3f} [{:+.3f}, {:+.3f}] over the collapsed RL-only row, "
          "level with SFT then 40 RL steps ({:+.3f} [{:+.3f}, {:+.3f}]), below SFT on 3840 labels ({:+.3f} [{:+.3f}, "
          "{:+.3f}]) and TF-IDF ({:+.3f} [{:+.3f}, {:+.3f}]). Out of distribution (HateXplain) {:.3f}, {:+.3f} "
          "[{:+.3f}, {:+.3f}] over SFT only",
          ev(f"{OFF}/rl-kl", "pr_auc"), ev(f"{OFF}/rl-kl", "pr_auc_ci[0]"), ev(f"{OFF}/rl-kl", "pr_auc_ci[1]"),
          *[off_cmp("rl-kl", a, k) for a in ("sft", "sft-more", "rl", "sft-rl", "sft-n3840", "tfidf")
            for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")],
          ev(f"{OFF}-ood/rl-kl", "pr_auc"),
          *[cmp(f"{OFF}-ood/sft/scores.jsonl", f"{OFF}-ood/rl-kl/scores.jsonl", k,
                committed=f"{OFF}-ood/rl-kl/vs-sft.json") for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")]),
    Claim("went from {:.3f} at the start to {:.3f} at step 10 and {:.2f} at step 60",
          js(f"{SC}/start-base/metrics.json", "format_failure_rate"),
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "eval/format_failure_rate", step=10),
          log(f"{SC}/rl-kl0.5.metrics.jsonl", "eval/format_failure_rate", step=60)),
    Claim("mean `m` went from {:.3f} to {:.3f} by step 10 and the failures to {:.3f} at every evaluation",
          log(f"{SC}/rl-kl0.5-fmt.metrics.jsonl", "rewards/format/mean", step=1),
          log(f"{SC}/rl-kl0.5-fmt.metrics.jsonl", "rewards/format/mean", step=10),
          log(f"{SC}/rl-kl0.5-fmt.metrics.jsonl", "eval/format_failure_rate", agg="max")),
    Claim("the ranking is unchanged on test ({:.3f} against {:.3f}; paired against SFT only {:+.3f} [{:+.3f}, {:+.3f}])",
          ev(f"{OFF}/rl-kl-fmt", "pr_auc"), ev(f"{OFF}/rl-kl", "pr_auc"),
          off_cmp("rl-kl-fmt", "sft", "pr_auc.diff"), off_cmp("rl-kl-fmt", "sft", "pr_auc.ci[0]"),
          off_cmp("rl-kl-fmt", "sft", "pr_auc.ci[1]")),
    Claim("Its validation curve jumps at step 10 ({:.3f}) and then creeps ({:.3f} at step 60)",
          log(f"{SC}/rl-kl0.5-fmt.points.jsonl", "pr_auc", step=10),
          log(f"{SC}/rl-kl0.5-fmt.points.jsonl", "pr_auc", step=60)),
    # Model size: the 0.5B run of the same recipe.
    Claim("{:.3f} at step 0 (135M: {:.3f}), {:.3f} at step 10 and {:.3f} at step 20, then {:.3f}-{:.3f} to step 60; "
          "the 135M run of the same recipe was at {:.3f} at step 60",
          log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=0),
          log(f"{SC}/rl-kl0.5-fmt.points.jsonl", "pr_auc", step=0),
          *[log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=k) for k in (10, 20)],
          log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=50),
          log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=30),
          log(f"{SC}/rl-kl0.5-fmt.points.jsonl", "pr_auc", step=60)),
    Claim("The sigmoid fit puts the asymptote at {:.3f} [{:.3f}, {:.3f}], against {:.3f} [{:.3f}, {:.3f}] for the 135M",
          *[js(f"{SC}/{r}.fit.json", k) for r in ("rl-kl0.5-fmt-qwen05b", "rl-kl0.5") for k in ("a", "ci_a[0]", "ci_a[1]")]),
    Claim("B runs into its bound ({:.2f} [{:.2f}, {:.2f}])",
          *[js(f"{SC}/rl-kl0.5-fmt-qwen05b.fit.json", k) for k in ("b", "ci_b[0]", "ci_b[1]")]),
    Claim("The slight fall after step 20 ({:.3f} to {:.3f})",
          log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=20),
          log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=40)),
    Claim("at equal FLOPs its step 10 ({:.3f})", log(f"{SC}/rl-kl0.5-fmt-qwen05b.points.jsonl", "pr_auc", step=10)),
]

PAGES = {
    "quickstart.md": QUICKSTART,
    "rl-diagnosis.md": RL_DIAGNOSIS,
    "rl-vs-sft.md": Page(data=["rl-vs-sft"], tables=rl_vs_sft_tables, known=rl_vs_sft_known, not_checked=[
        ("on the first 500 alone it was +0.031 [+0.001, +0.060]",
         "the previous version of this page: the star rows on the first 500 test tweets, committed at "
         "0c4b2fa in docs/results/rl-vs-sft/offensive-star/ (since replaced by the 1000-tweet rows)"),
    ], claims=[
        Claim("- In distribution: {:.3f} PR-AUC,", ev(f"{OFF}/sft-rl-long", "pr_auc")),
        # The larger model's rows (a bumped digit can collide with another row's PR-AUC).
        Claim("on the same 960 labels reaches {:.3f} PR-AUC in distribution", ev(f"{OFF}/rl-kl-fmt-qwen05b", "pr_auc")),
        Claim("{:.3f} PR-AUC against the 135M model's {:.3f}", ev(f"{OFF}/zero-shot-qwen05b", "pr_auc"),
              ev(f"{OFF}/zero-shot", "pr_auc")),
        Claim("**Out of distribution (HateXplain)**: {:.3f} [", ev(f"{OFF}-ood/rl-kl-fmt-qwen05b", "pr_auc")),
        Claim("flagging {:.1f} % of benign tweets in distribution where the 135M RL row flags {:.1f} %",
              scaled(ev(f"{OFF}/rl-kl-fmt-qwen05b", "false_flag_rate"), 100),
              scaled(ev(f"{OFF}/rl-kl-fmt", "false_flag_rate"), 100)),
        Claim("the mean P(violating) fell from {:.3f} at step 1 to {:.3f} at step 4 and {:.3f} from step 10 on",
              log(f"{OFF}/rl/run-metrics.jsonl", "label/p_violating_mean", step=1),
              log(f"{OFF}/rl/run-metrics.jsonl", "label/p_violating_mean", step=4),
              log(f"{OFF}/rl/run-metrics.jsonl", "label/p_violating_mean", step=10)),
        Claim("- Out of distribution (HateXplain): {:.3f}, the best 135M row on 960 labels until RL only over 188\n"
              "  steps ({:.3f}", ev(f"{OFF}-ood/sft-rl-long", "pr_auc"), ev(f"{OFF}-ood/rl-kl-fmt-long", "pr_auc")),
        Claim("training batches stayed between {:.2f} and {:.2f} (`rl-kl-fmt/run-metrics.jsonl`)",
              log("rl-vs-sft/prompt-harm/rl-kl-fmt/run-metrics.jsonl", "label/p_violating_mean", agg="min"),
              log("rl-vs-sft/prompt-harm/rl-kl-fmt/run-metrics.jsonl", "label/p_violating_mean", agg="max")),
        Claim("reaches {:.3f}: {:+.3f} [{:+.3f}, {:+.3f}] over SFT only", ev("rl-vs-sft/prompt-harm/rl-kl-fmt", "pr_auc"),
              *[cmp("rl-vs-sft/prompt-harm/sft/scores.jsonl", "rl-vs-sft/prompt-harm/rl-kl-fmt/scores.jsonl", k,
                    committed="rl-vs-sft/prompt-harm/rl-kl-fmt/vs-sft.json")
                for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")]),
        # Per-source PR-AUC on prompt-harm (no intervals; a bumped digit can collide with another
        # recomputed PR-AUC, so each is tied to its row and source here).
        Claim("On the held-out WildGuard prompts SFT then RL reaches {:.3f} PR-AUC (SFT {:.3f}, TF-IDF {:.3f}); "
              "on GuardReasoner's own prompts {:.3f} (SFT {:.3f}, TF-IDF {:.3f})",
              *[ev(f"{PH}/{r}", f"per_slice.source:{src}.pr_auc") for src in ("wildguard", "guardreasoner")
                for r in ("sft-rl", "sft", "tfidf")]),
        Claim("Per source: {:.3f} on GuardReasoner's own prompts (SFT {:.3f}), {:.3f} on the held-out WildGuard "
              "prompts (SFT {:.3f})",
              *[ev(f"{PH}/{r}", f"per_slice.source:{src}.pr_auc") for src in ("guardreasoner", "wildguard")
                for r in ("rl-kl-fmt", "sft")]),
        Claim("no longer collapses and beats SFT only on the same 960 labels: {:.3f} against {:.3f}", ev(f"{OFF}/rl-kl", "pr_auc"),
              ev(f"{OFF}/sft", "pr_auc")),
        Claim("960 labels reach {:.3f} (+", ev(f"{OFF}/sft-rl-long", "pr_auc")),
        # The labels summary: each cell the PR-AUC of a row folder.
        Claim("| 240 | {:.3f} | {:.3f} | {:.3f} | {:.3f} |", ev(f"{OFF}/sft-n240", "pr_auc"),
              ev(f"{OFF}/sft-rl-n240", "pr_auc"), ev(f"{OFF}/rl-kl-fmt-n240", "pr_auc"),
              ev(f"{OFF}/tfidf-n240", "pr_auc")),
        Claim("| 960 | {:.3f} | {:.3f} | {:.3f} | {:.3f} |", ev(f"{OFF}/sft", "pr_auc"),
              ev(f"{OFF}/sft-rl", "pr_auc"), ev(f"{OFF}/rl-kl-fmt", "pr_auc"), ev(f"{OFF}/tfidf", "pr_auc")),
        Claim("| 3840 | {:.3f} | {:.3f} | {:.3f} | {:.3f} |", ev(f"{OFF}/sft-n3840", "pr_auc"),
              ev(f"{OFF}/sft-rl-n3840", "pr_auc"), ev(f"{OFF}/rl-kl-fmt-n3840", "pr_auc"),
              ev(f"{OFF}/tfidf-n3840", "pr_auc")),
        Claim("it reaches {:.3f}, {:.3f} and {:.3f} at 240, 960 and 3840 labels",
              *[ev(f"{OFF}/{r}", "pr_auc") for r in ("rl-kl-fmt-n240", "rl-kl-fmt", "rl-kl-fmt-n3840")]),
        Claim("the gold label's mean probability on the first RL batch was {:.3f}",
              log(f"{OFF}/sft-rl-n3840/run-metrics.jsonl", "label/p_gold_mean", step=1)),
        Claim("Out of distribution it is among the best rows of the study ({:.3f}; only the 0.5B model\n"
              "  and RL only over 188 steps on 3000 labels are higher), {:+.3f} [{:+.3f}, {:+.3f}]",
              ev(f"{OFF}-ood/sft-rl-n3840", "pr_auc"),
              *[cmp(f"{OFF}-ood/sft-n3840/scores.jsonl", f"{OFF}-ood/sft-rl-n3840/scores.jsonl", k,
                    committed=f"{OFF}-ood/sft-rl-n3840/vs-sft.json") for k in ("pr_auc.diff", "pr_auc.ci[0]", "pr_auc.ci[1]")]),
    ]),
    "judge-agreement.md": Page(check=check_judge, note="summary.json recomputed from judge-agreement/graded.jsonl", claims=[
        Claim("{} of {} judged answers parsed, `judge_parsed_fraction` {:.3f}",
              js(JS, "judged"), js(JS, "judged"), js(JS, "judge_parsed_fraction")),
        Claim("the correlation of the judge's score with the deterministic rubric's is {:.3f}",
              js(JS, "score_correlation")),
        Claim("(agreement {:.3f}, kappa {:.3f})", js(JS, "pairs[0].agreement"), js(JS, "pairs[0].kappa")),
        Claim("on the {} answers that quote something: the judge passes {:.3f} of them, the rules {:.3f}; "
              "agreement {:.3f}, kappa {:.3f}", js(JS, "pairs[0].n"), js(JS, "pairs[0].judge_pass_rate"),
              js(JS, "pairs[0].rule_pass_rate"), js(JS, "pairs[0].agreement"), js(JS, "pairs[0].kappa")),
        Claim("the same {}: the judge passes {:.3f}, the rules {:.3f}; agreement {:.3f}", js(JS, "pairs[1].n"),
              js(JS, "pairs[1].judge_pass_rate"), js(JS, "pairs[1].rule_pass_rate"), js(JS, "pairs[1].agreement")),
        Claim("on {} answers: the judge passes {:.3f}, the rules {:.3f}; agreement {:.3f}, kappa {:.3f}",
              js(JS, "pairs[2].n"), js(JS, "pairs[2].judge_pass_rate"), js(JS, "pairs[2].rule_pass_rate"),
              js(JS, "pairs[2].agreement"), js(JS, "pairs[2].kappa")),
        Claim("{:.3f} over the {} answers; the rules' `rubric_rules` {:.3f}", js(JS, "reward_means.rubric"),
              js(JS, "answers"), js(JS, "reward_means.rubric_rules")),
        Claim("accuracy reward {:.3f} on these", js(JS, "reward_means.accuracy")),
        Claim("said \"no invented facts\" for {} answer in {}",
              count_rows(JG, lambda r: bool(r.get("judge")) and r["judge"]["criteria"]["no_invented_facts"] >= 0.5),
              js(JS, "judged")),
        Claim("only {} of {} name the policy's category, {} quote anything",
              count_rows(JG, lambda r: bool(r.get("rules")) and r["rules"]["category"] is True),
              js(JS, "rules_graded"), js(JS, "pairs[0].n")),
    ]),
    "reward-shaping.md": Page(data=[RS_DIR], check=check_reward_shaping, claims=SHAPING_CLAIMS,
                              note="table regenerated from reward-shaping/*/metrics.jsonl"),
    "bench-engine.md": Page(check=check_bench_engine, note=RAW_BENCH_NOTE),
    "bench-grpo.md": Page(check=check_bench_grpo, note=RAW_BENCH_NOTE),
    "load-test.md": Page(check=check_load_test, note=RAW_BENCH_NOTE),
    "classify-davidson.md": Page(check=check_classify, note=BENCH_NOTE),
    "classify-davidson-cpu-first1000.md": Page(check=check_classify, note="table rebuilt from the committed raw run "
                                                                         "(classify-davidson-cpu-first1000/run.json)"),
    "ray-classify.md": Page(check=check_ray_classify, note="table recomputed from ray-classify/runs.jsonl "
                                                           "(raw wall times, one row per run)"),
    "scaling.md": Page(check=check_scaling, claims=SCALING_CLAIMS, note="tables regenerated from scaling/offensive/*.points.jsonl and "
                                                  "*.fit.json; fits recomputed when a modrl binary is built"),
    "gpu-engine.md": Page(check=check_gpu_engine, note="tables rebuilt from gpu-engine/runs-DTYPE.jsonl where bench/gpu.sh "
                                                       "committed them; else ratios recomputed from the throughputs the page "
                                                       "prints (single runs; no raw timing files)"),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", default=os.path.join(os.path.dirname(HERE), "docs", "results"))
    ap.add_argument("--page", action="append", metavar="REL.md",
                    help="check only this page (path relative to DIR); repeatable")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.dir):
        print(f"{a.dir}: not a directory", file=sys.stderr)
        return 2
    return run(a.dir, a.page)


if __name__ == "__main__":
    sys.exit(main())
