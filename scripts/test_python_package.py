#!/usr/bin/env python3
"""Tests of the Python package `modrl` (crates/py), run by scripts/test.sh after
scripts/build_python_package.sh; needs the default model (scripts/setup.sh) and the modrl binary.

    .venv/bin/python scripts/test_python_package.py [--modrl target/debug/modrl]

Checks: `import modrl` beside `import torch` (both orders, one libtorch); Classifier.score gives one
dict per text with label and score, equal (1e-5) to `modrl classify` on the same rows; score_arrow
keeps the input columns; the GIL is released while scoring; errors are modrl.ModrlError with the
CLI's message.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models/smollm2-135m-instruct")
POLICY = os.path.join(ROOT, "configs/policies/offensive-compact.toml")
PY = sys.executable
MODRL = os.path.join(ROOT, "target/debug/modrl")

TEXTS = [
    "you are a wonderful person and I love your work",
    "shut up you stupid idiot, nobody wants you here",
    "the weather in Lisbon is nice this week",
    "all of those people are trash and should disappear",
    "thanks for the help with my homework yesterday",
    "what a load of garbage, you absolute clown",
    "I made soup for dinner",
]


def run_py(code):
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import modrl

        cls.modrl = modrl
        cls.clf = modrl.Classifier(MODEL, POLICY, batch_rows=8, threads=1)

    def test_imports_beside_torch_in_either_order(self):
        for code in ["import torch, modrl; print(modrl.__version__, torch.__version__)",
                     "import modrl, torch; print(torch.ones(2).sum().item())"]:
            r = run_py(code)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_score_gives_one_dict_per_text_like_modrl_classify(self):
        res = self.clf.score(TEXTS)
        self.assertEqual(len(res), len(TEXTS))
        for r in res:
            self.assertEqual(set(r), {"label", "score", "category"})
            self.assertTrue(0.0 <= r["score"] <= 1.0)
            self.assertEqual(r["label"], int(r["score"] >= 0.5))
            self.assertTrue(r["label"] == 1 or r["category"] == "none")
        # The same rows through the CLI.
        with tempfile.TemporaryDirectory() as d:
            inp, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
            with open(inp, "w") as f:
                for i, t in enumerate(TEXTS):
                    f.write(json.dumps({"id": f"t{i}", "text": t}) + "\n")
            p = subprocess.run([MODRL, "classify", "--model", MODEL, "--policy", POLICY,
                                "--in", inp, "--out", out, "--batch-rows", "32"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                cli = {json.loads(l)["id"]: json.loads(l) for l in f}
        self.assertEqual(len(cli), len(TEXTS))
        for i, r in enumerate(res):
            c = cli[f"t{i}"]
            self.assertAlmostEqual(r["score"], c["score"], delta=1e-5, msg=TEXTS[i])
            self.assertEqual(r["label"], c["label"])
            self.assertEqual(r["category"], c["category"])
        # The scores say something: the insults score above the friendly texts on average.
        bad = [res[i]["score"] for i in (1, 3, 5)]
        good = [res[i]["score"] for i in (0, 2, 4, 6)]
        self.assertGreater(sum(bad) / 3, sum(good) / 4)

    def test_score_arrow_keeps_input_columns(self):
        import pyarrow as pa

        t = pa.table({"id": [10, 11, 12], "text": TEXTS[:3], "lang": ["en"] * 3})
        out = self.clf.score_arrow(t)
        self.assertEqual(out.column_names, ["id", "text", "lang", "label", "score", "category"])
        self.assertEqual(out.column("id").to_pylist(), [10, 11, 12])
        self.assertEqual(out.schema.field("label").type, pa.int8())
        direct = self.clf.score(TEXTS[:3])
        for a, b in zip(out.column("score").to_pylist(), direct):
            self.assertAlmostEqual(a, b["score"], delta=1e-6)
        with self.assertRaisesRegex(self.modrl.ModrlError, r"no column `body` \(columns: id, text, lang\)"):
            self.clf.score_arrow(t, "body")
        with self.assertRaisesRegex(self.modrl.ModrlError, "column `text`: row 1 is null"):
            self.clf.score_arrow(pa.table({"text": ["a", None]}))

    def test_gil_is_released_while_scoring(self):
        ticks = []
        done = threading.Event()

        def work():
            self.clf.score(TEXTS * 6)
            done.set()

        th = threading.Thread(target=work)
        th.start()
        start = time.time()
        while not done.is_set():
            ticks.append(time.time())
            time.sleep(0.001)
        th.join()
        secs = time.time() - start
        # With the GIL held for the whole call the loop could not run at all.
        self.assertGreater(secs, 0.2, "scoring was too fast to tell")
        self.assertGreater(len(ticks), 20, f"{len(ticks)} ticks in {secs:.2f} s")

    def test_errors_are_modrl_errors_with_the_cli_message(self):
        E = self.modrl.ModrlError
        with self.assertRaisesRegex(E, "no-such-model"):
            self.modrl.Classifier(os.path.join(ROOT, "no-such-model"), POLICY)
        with self.assertRaisesRegex(E, "no-such-policy.toml"):
            self.modrl.Classifier(MODEL, os.path.join(ROOT, "no-such-policy.toml"))
        with self.assertRaisesRegex(E, "scoring"):
            self.modrl.Classifier(MODEL, POLICY, scoring="magic")
        with self.assertRaisesRegex(E, "texts\\[1\\] is empty"):
            self.clf.score(["fine", "  "])
        with self.assertRaises(TypeError):
            self.clf.score("a single string")
        self.assertTrue(issubclass(E, RuntimeError))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--modrl", default=MODRL)
    a, rest = ap.parse_known_args()
    MODRL = os.path.abspath(a.modrl)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
