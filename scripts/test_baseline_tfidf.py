#!/usr/bin/env python3
"""Self-test of scripts/baseline_tfidf.py on a tiny synthetic, separable dataset.

Run from the repository root:  .venv/bin/python scripts/test_baseline_tfidf.py
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "baseline_tfidf.py")

BAD_WORDS = ["attack", "poison", "weapon", "hurt", "steal", "explosive", "kill", "hack"]
GOOD_WORDS = ["garden", "recipe", "music", "weather", "library", "holiday", "painting", "poem"]
FILLER = ["the", "a", "please", "tell", "me", "about", "how", "to", "my", "with", "some", "for"]


def make_text(rng, label):
    words = rng.sample(FILLER, 5) + rng.sample(BAD_WORDS if label else GOOD_WORDS, 2)
    rng.shuffle(words)
    return " ".join(words)


def write_dataset(path, seed=0):
    """120 train, 40 val, 50 test records, classes interleaved; returns the records."""
    rng = random.Random(seed)
    records = []
    for split, n in (("train", 120), ("val", 40), ("test", 50)):
        for i in range(n):
            label = int(rng.random() < 0.4)
            records.append({"id": f"{split}-{i}", "text": make_text(rng, label), "label": label,
                            "split": split, "source": "synthetic"})
    rng.shuffle(records)  # splits interleaved in file order, as in real files
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return records


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class BaselineTfidfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="baseline_tfidf_test_")
        cls.dir = cls.tmp.name
        cls.data = os.path.join(cls.dir, "data.jsonl")
        cls.records = write_dataset(cls.data)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def out(self, name):
        return os.path.join(self.dir, name)

    def test_help(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--train-ids", p.stdout)

    def test_split_training_and_outputs(self):
        out = self.out("split")
        p = run("--data", self.data, "--out", out, "--limit", "30", "--val-limit", "25")
        self.assertEqual(p.returncode, 0, p.stderr)
        for name in ("scores.jsonl", "val_scores.jsonl", "baseline.json"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        rows = read_jsonl(os.path.join(out, "scores.jsonl"))
        want = [r["id"] for r in self.records if r["split"] == "test"][:30]
        self.assertEqual([r["id"] for r in rows], want)  # first 30 of the split, file order
        self.assertEqual(len({r["id"] for r in rows}), len(rows))
        for r in rows:
            self.assertTrue(0.0 <= r["score"] <= 1.0, r)
            self.assertEqual(r["split"], "test")
            self.assertIn(r["label"], (0, 1))
        val_rows = read_jsonl(os.path.join(out, "val_scores.jsonl"))
        self.assertEqual([r["id"] for r in val_rows],
                         [r["id"] for r in self.records if r["split"] == "val"][:25])
        with open(os.path.join(out, "baseline.json")) as f:
            b = json.load(f)
        self.assertEqual(b["n_train"], 120)
        self.assertEqual(b["n_test"], 30)
        self.assertGreater(b["test_pr_auc"], 0.9)
        self.assertGreater(b["test_roc_auc"], 0.9)
        self.assertIn(b["C"], b["classifier"]["c_grid"])
        for key in ("n_train_pos", "vectorizer", "val_pr_auc", "elapsed_s"):
            self.assertIn(key, b)

    def test_deterministic(self):
        outs = [self.out("det1"), self.out("det2")]
        for o in outs:
            p = run("--data", self.data, "--out", o, "--max-train", "40", "--seed", "3")
            self.assertEqual(p.returncode, 0, p.stderr)
        texts = []
        for o in outs:
            with open(os.path.join(o, "scores.jsonl")) as f:
                texts.append(f.read())
        self.assertEqual(texts[0], texts[1])
        with open(os.path.join(outs[0], "baseline.json")) as f:
            s = json.load(f)
        self.assertEqual((s["n_train"], s["n_train_pos"]), (40, 20))  # positive fraction 0.5

    def test_train_ids_restrict_training(self):
        train = [r for r in self.records if r["split"] == "train"]
        ids = [r["id"] for r in train if r["label"] == 1][:7] + \
              [r["id"] for r in train if r["label"] == 0][:10]
        ids_file = self.out("train_ids.txt")
        with open(ids_file, "w") as f:
            f.write("\n".join(ids) + "\n")
        out = self.out("ids")
        p = run("--data", self.data, "--out", out, "--train-ids", ids_file)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "baseline.json")) as f:
            b = json.load(f)
        self.assertEqual(b["n_train"], len(ids))
        self.assertEqual(b["n_train_pos"], 7)
        self.assertEqual(len(read_jsonl(os.path.join(out, "scores.jsonl"))), 50)

    def test_unknown_train_id(self):
        ids_file = self.out("bad_ids.txt")
        with open(ids_file, "w") as f:
            f.write("train-0\n\nno-such-id\n")
        p = run("--data", self.data, "--out", self.out("badids"), "--train-ids", ids_file)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{ids_file}:3:", p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    def test_malformed_line(self):
        bad = self.out("bad.jsonl")
        with open(self.data) as f:
            lines = f.readlines()
        lines.insert(4, '{"id": "x", "text": "oops", "label": \n')  # becomes line 5
        with open(bad, "w") as f:
            f.writelines(lines)
        p = run("--data", bad, "--out", self.out("bad"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{bad}:5:", p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    def test_missing_field_and_file(self):
        bad = self.out("nolabel.jsonl")
        with open(bad, "w") as f:
            f.write('{"id": "a", "text": "hello", "label": 1, "split": "train"}\n')
            f.write('{"id": "b", "text": "world", "split": "test"}\n')
        p = run("--data", bad, "--out", self.out("nolabel"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{bad}:2:", p.stderr)
        self.assertIn('"label"', p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        p = run("--data", self.out("does-not-exist.jsonl"), "--out", self.out("nofile"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("does-not-exist.jsonl", p.stderr)
        self.assertNotIn("Traceback", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
