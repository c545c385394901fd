#!/usr/bin/env python3
"""Self-test of scripts/check_results.py on a copy of docs/results.

Run from anywhere:  .venv/bin/python scripts/test_check_results.py

The unmodified tree passes; changing any PR-AUC on any page that reports PR-AUC (every number
written next to "PR-AUC" in its text, the headline first, and every cell of its PR-AUC table
columns) makes the checker fail naming that page and line; so do a changed score in a committed scores file,
an archived page without its banner, and a new page with PR-AUC numbers but no checker.
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(ROOT, "docs", "results")
SCRIPT = os.path.join(HERE, "check_results.py")
SHELL = os.path.join(HERE, "check_results.sh")
sys.path.insert(0, HERE)
import check_results  # noqa: E402

PR_NEAR = re.compile(r"PR-AUC(?: of)?\s+([+-]?\d\.\d+)|([+-]?\d\.\d+)\s+PR-AUC")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def bump(number):
    """The same number with its last digit changed (0.779 -> 0.770, +0.098 -> +0.099)."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def pages_with_pr_auc(root):
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if f.endswith(".md") and "archive" not in rel.split(os.sep)[:-1]:
                if "PR-AUC" in read(os.path.join(root, rel)):
                    out.append(rel)
    return sorted(out)


def pr_auc_spans(rel, text):
    """(what, start, end) of every number written next to "PR-AUC" in the prose and of the first
    number of every cell of a PR-AUC table column, except the passages the page's checker lists as
    not checked (quoted from archived pages)."""
    spec = check_results.PAGES.get(rel.replace(os.sep, "/"))
    skip = []
    for snippet, _ in (spec.not_checked if spec else []):
        rx = r"\s+".join(re.escape(w) for w in snippet.split())
        skip.extend(m.span() for m in re.finditer(rx, text))
    spans = []
    table_lines = {m.start() for m in re.finditer(r"^\|", text, re.M)}
    for m in PR_NEAR.finditer(text):
        g = 1 if m.group(1) else 2
        if text.rfind("\n", 0, m.start(g)) + 1 not in table_lines:
            spans.append(("prose", m.start(g), m.end(g)))
    for header, rows in check_results.tables(text):
        for col in [i for i, h in enumerate(header) if "PR-AUC" in h]:
            for _, cells in rows:
                cell, pos = cells[col]
                m = re.search(r"[+-]?\d+\.\d+", cell)
                if m:
                    spans.append(("table", pos + m.start(), pos + m.end()))
    return [sp for sp in spans if not any(a <= sp[1] and sp[2] <= b for a, b in skip)]


class CheckResultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="check_results_test_")
        cls.dir = os.path.join(cls.tmp.name, "results")
        shutil.copytree(RESULTS, cls.dir)
        cls.ctx = check_results.Ctx(cls.dir)  # shared by the in-process runs: they change pages only

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, only=None, root=None):
        buf = io.StringIO()
        rc = check_results.run(root or self.dir, only, buf,
                               ctx=None if root else self.ctx)
        return rc, buf.getvalue()

    @contextlib.contextmanager
    def edited(self, rel, text):
        """Page `rel` of the copy holds `text` inside the block, and its old text (or nothing) after."""
        path = os.path.join(self.dir, rel)
        old = read(path) if os.path.exists(path) else None
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            yield
        finally:
            if old is None:
                os.remove(path)
            else:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(old)

    def test_unmodified_tree_passes(self):
        p = subprocess.run([SHELL, self.dir], capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        pages = sorted(os.path.relpath(os.path.join(d, f), self.dir)
                       for d, _, fs in os.walk(self.dir) for f in fs if f.endswith(".md"))
        for rel in pages:
            line = next((l for l in lines if l.split()[1].rstrip(":") == rel), None)
            self.assertIsNotNone(line, f"no line for {rel}:\n{p.stdout}")
            if rel.startswith("archive" + os.sep):
                self.assertTrue(line.startswith("ARCHIVED"), line)
                self.assertIn("archived, not checked", line)
            else:
                self.assertTrue(line.startswith("OK"), line)
        self.assertFalse([l for l in lines if l.startswith("FAIL")], p.stdout)

    def test_default_dir_is_docs_results(self):
        p = subprocess.run([sys.executable, SCRIPT, "--page", "quickstart.md"], capture_output=True,
                           text=True, timeout=600, cwd=tempfile.gettempdir())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(p.stdout.startswith("OK  quickstart.md"), p.stdout)

    def test_changed_pr_auc_fails_naming_the_page(self):
        """Every PR-AUC number of every page that reports PR-AUC, the headlines included: changing
        its last digit fails, naming the page and the line or the number."""
        pages = pages_with_pr_auc(self.dir)
        for must in ("quickstart.md", "rl-vs-sft.md", "rl-diagnosis.md"):
            self.assertIn(must, pages)
        for rel in pages:
            text = read(os.path.join(self.dir, rel))
            spans = pr_auc_spans(rel, text)
            self.assertTrue(any(w == "prose" for w, _, _ in spans), f"{rel}: no PR-AUC in the prose")
            for what, start, end in spans:
                old = text[start:end]
                new = bump(old)
                line_no = text.count("\n", 0, start) + 1
                with self.subTest(page=rel, line=line_no, where=what, number=old), \
                        self.edited(rel, text[:start] + new + text[end:]):
                    rc, out = self.check([rel])
                    self.assertEqual(rc, 1, out)
                    fails = [l for l in out.splitlines() if l.startswith(f"FAIL  {rel}")]
                    self.assertTrue(fails, out)
                    self.assertTrue(any(f"{rel}:{line_no}:" in l and new in l for l in fails), out)

    def test_unbacked_interval_fails(self):
        rel = "quickstart.md"
        text = read(os.path.join(self.dir, rel))
        added = text + "\nA later run reached PR-AUC 0.912 [0.880, 0.940].\n"
        with self.edited(rel, added):
            rc, out = self.check([rel])
        self.assertEqual(rc, 1, out)
        self.assertIn("0.912 [0.880, 0.940]", out)
        self.assertIn("matches no interval", out)

    def bumped_cell(self, rel, pattern):
        """Check page `rel` with the number of `pattern`'s group 1 bumped: (output, old, new); the
        check must fail."""
        text = read(os.path.join(self.dir, rel))
        m = re.search(pattern, text, re.M)
        self.assertIsNotNone(m)
        new = bump(m.group(1))
        with self.edited(rel, text[:m.start(1)] + new + text[m.end(1):]):
            rc, out = self.check([rel])
        self.assertEqual(rc, 1, out)
        return out, m.group(1), new

    def test_changed_table_row_names_the_cell(self):
        out, old, new = self.bumped_cell("rl-vs-sft.md", r"^\| sft-rl \| sft \| ([+-]\d\.\d{3}) \|")
        self.assertRegex(out, rf"FAIL  rl-vs-sft\.md.*sft-rl \| sft.*{re.escape(new)} on the page, "
                              rf"{re.escape(old)} recomputed from rl-vs-sft/")

    def test_reward_shaping_table_and_logs_are_checked(self):
        rel = "reward-shaping.md"
        out, old, new = self.bumped_cell(rel, r"^\| `acc` \(accuracy \+ format\) \| reasoning words \| [\d.]+ \| ([\d.]+) \|")
        self.assertIn(f"column 4: {new} on the page, {old} recomputed from reward-shaping", out)
        # A changed training log (one step's reasoning words) no longer matches the page either.
        rc, out = self.check_changed_data(rel, "reward-shaping/acc/metrics.jsonl",
                                          r'"monitors/reasoning_words":\s*[0-9.e-]+', '"monitors/reasoning_words":99.0')
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL  reward-shaping.md", out)

    def test_changed_benchmark_ratio_fails(self):
        rel = "bench-engine.md"
        text = read(os.path.join(self.dir, rel))
        header, rows = next((h, r) for h, r in check_results.tables(text) if "ratio ours/peer" in h)
        cell, pos = rows[0][1][header.index("ratio ours/peer")]
        new = str(round(float(cell) + 0.2, 2))
        with self.edited(rel, text[:pos] + new + text[pos + len(cell):]):
            rc, out = self.check([rel])
        self.assertEqual(rc, 1, out)
        self.assertIn(f"FAIL  {rel}", out)
        self.assertIn(f"{new} on the page", out)

    def check_changed_data(self, rel, data, pattern, repl):
        """Check page `rel` on a fresh copy of docs/results whose file `data` has `pattern` replaced
        by `repl` in its first line: (rc, output)."""
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "results")
            shutil.copytree(RESULTS, root)
            path = os.path.join(root, data)
            lines = read(path).splitlines(True)
            lines[0] = re.sub(pattern, repl, lines[0])
            with open(path, "w") as f:
                f.writelines(lines)
            return self.check([rel], root=root)

    def changed_row(self, rel, data, pick, key, value):
        """Check page `rel` on a fresh copy of docs/results whose JSONL file `data` has `key` set to
        `value` in the first row `pick` accepts: (rc, output)."""
        import json
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "results")
            shutil.copytree(RESULTS, root)
            path = os.path.join(root, data)
            rows = [json.loads(line) for line in read(path).splitlines() if line.strip()]
            row = next(r for r in rows if pick(r))
            row[key] = value
            with open(path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            return self.check([rel], root=root)

    def test_raw_benchmark_runs_are_checked(self):
        """bench-engine.md, load-test.md and bench-grpo.md: a changed timed run, request latency or
        step time in the committed raw data fails, naming the row or sentence it changes."""
        for rel, data, pick, key in (
                ("bench-engine.md", "bench-engine/runs.jsonl",
                 lambda r: r["bench"] == "gen_b1" and r["side"] == "ours" and not r["discarded"], "rate"),
                ("load-test.md", "load-test/requests.jsonl",
                 lambda r: r["kind"] == "request" and r["label"] == "1", "latency_ms")):
            rc, out = self.changed_row(rel, data, pick, key, 12345.6)
            self.assertEqual(rc, 1, out)
            self.assertIn(f"FAIL  {rel}", out)
            self.assertIn(f"recomputed from {data}", out)
            self.assertIn("12345.6", out)
        # bench-grpo.md: one timed step of each regime's steps file.
        import json
        for f in sorted(os.listdir(os.path.join(RESULTS, "bench-grpo"))):
            with tempfile.TemporaryDirectory() as tmp:
                root = os.path.join(tmp, "results")
                shutil.copytree(RESULTS, root)
                path = os.path.join(root, "bench-grpo", f)
                doc = json.loads(read(path))
                next(r for r in doc["steps"] if r["side"] == "trl" and not r["warmup"])["seconds"] = 12345.6
                with open(path, "w") as out_f:
                    json.dump(doc, out_f)
                rc, out = self.check(["bench-grpo.md"], root=root)
            self.assertEqual(rc, 1, out)
            self.assertIn(f"recomputed from bench-grpo/{f}", out)
            self.assertIn("12345.6", out)

    def test_serving_bound_is_checked(self):
        """load-test.md's matrix-product rates and bound come from load-test/flops.json and the
        requests: a changed rate on the page, or a changed token count or reference rate in the
        file, fails."""
        rel = "load-test.md"
        text = read(os.path.join(self.dir, rel))
        m = re.search(r"^- 1 client\(s\): .*?, ([0-9.]+) GFLOP/s of matrix products", text, re.M)
        self.assertIsNotNone(m, "load-test.md has no 1-client work line")
        new = f"{float(m.group(1)) + 1.0:.1f}"
        with self.edited(rel, text[:m.start(1)] + new + text[m.end(1):]):
            rc, out = self.check([rel])
        self.assertEqual(rc, 1, out)
        self.assertIn(f"FAIL  {rel}", out)
        import json
        for key, value in (("prefix_tokens", 50), ("peak_gflop_per_s", 300.0)):
            with tempfile.TemporaryDirectory() as tmp:
                root = os.path.join(tmp, "results")
                shutil.copytree(RESULTS, root)
                path = os.path.join(root, "load-test", "flops.json")
                doc = json.loads(read(path))
                doc[key] = value
                with open(path, "w") as f:
                    json.dump(doc, f)
                rc, out = self.check([rel], root=root)
            self.assertEqual(rc, 1, f"{key}: {out}")
            self.assertIn("load-test/flops.json", out)

    def test_classify_raw_run_is_checked(self):
        """classify-davidson-cpu-first1000.md: its table is rebuilt from the raw run beside it, so a
        changed wall-clock stamp or row count in run.json fails, naming the row it changes."""
        import json
        rel, data = "classify-davidson-cpu-first1000.md", "classify-davidson-cpu-first1000/run.json"
        for key, value in (("t3", None), ("rows_run1", 7)):
            with tempfile.TemporaryDirectory() as tmp:
                root = os.path.join(tmp, "results")
                shutil.copytree(RESULTS, root)
                path = os.path.join(root, data)
                run = json.loads(read(path))
                run[key] = run["t3"] + 1000.0 if key == "t3" else value
                with open(path, "w") as f:
                    json.dump(run, f)
                rc, out = self.check([rel], root=root)
            self.assertEqual(rc, 1, out)
            self.assertIn(f"FAIL  {rel}", out)
            self.assertIn(f"recomputed from {data}", out)

    def test_changed_score_fails(self):
        rc, out = self.check_changed_data("quickstart.md", "quickstart/eval/scores.jsonl", r'"score":\s*[0-9.e-]+',
                                          '"score":0.999')
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL  quickstart.md", out)
        self.assertIn("quickstart/eval/metrics.json: pr_auc is", out)

    def test_archived_page_needs_the_banner(self):
        archived = sorted(f for f in os.listdir(os.path.join(self.dir, "archive")) if f.endswith(".md"))
        self.assertTrue(archived)
        rel = os.path.join("archive", archived[0])
        text = read(os.path.join(self.dir, rel))
        no_banner = "\n".join(l for l in text.splitlines() if not l.startswith(">")) + "\n"
        with self.edited(rel, no_banner):
            rc, out = self.check([rel])
        self.assertEqual(rc, 1, out)
        self.assertIn(f"FAIL  {rel}: under archive/ without the banner", out)

    def test_new_page_with_pr_auc_but_no_checker_fails(self):
        with self.edited("new-study.md", "# New study\n\nSFT reaches PR-AUC 0.912 on the test set.\n"):
            rc, out = self.check(["new-study.md"])
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL  new-study.md: no checker", out)

    def test_prose_page_passes_with_a_note(self):
        with self.edited("notes.md", "# Notes\n\nHow the studies are run; no numbers here.\n"):
            rc, out = self.check(["notes.md"])
        self.assertEqual(rc, 0, out)
        self.assertIn("OK  notes.md: no numbers that need data", out)

    def test_paired_comparisons_name_the_row_compared_with(self):
        # A row of another label count ("-n3000") compared with a row of the first count by its
        # folder name (vs-rl-kl-fmt-long.json) is compared with that row, not with itself; the
        # table prints the pair under that name.
        task = "rl-vs-sft/offensive"
        row = f"{task}/rl-kl-fmt-long-n3000"
        pairs = {os.path.basename(c): a for a, c in check_results.rl_vs_sft_pairs(self.ctx, task, row)}
        self.assertEqual(pairs["vs-rl-kl-fmt-long.json"], f"{task}/rl-kl-fmt-long/scores.jsonl")
        self.assertEqual(pairs["vs-sft-n3840.json"], f"{task}/sft-n3840/scores.jsonl")
        self.assertEqual(pairs["vs-zero-shot.json"], f"{task}/zero-shot/scores.jsonl")
        import rl_vs_sft_table
        lines = rl_vs_sft_table.table_lines(os.path.join(self.dir, task))
        self.assertTrue(any(l.startswith("| rl-kl-fmt-long-n3000 | rl-kl-fmt-long | ") for l in lines))
        self.assertFalse(any(l.startswith("| rl-kl-fmt-long-n3000 | rl-kl-fmt-long-n3000 |") for l in lines))

    def test_rl_vs_sft_table_still_checks_its_page(self):
        page = os.path.join(self.dir, "rl-vs-sft.md")
        for task in sorted(os.listdir(os.path.join(self.dir, "rl-vs-sft"))):
            p = subprocess.run([sys.executable, os.path.join(HERE, "rl_vs_sft_table.py"),
                                os.path.join(self.dir, "rl-vs-sft", task), "--check", page],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("| row | PR-AUC [95% CI] |", p.stdout)


if __name__ == "__main__":
    unittest.main()
