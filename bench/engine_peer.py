"""Engine benchmark, peer side (PyTorch + transformers), and the shared input data.

    engine_peer.py prepare --model DIR --out FILE
        Write the benchmark inputs both sides use: 64 chat prompts (chat template + generation
        prompt, 60-120 tokens, all different lengths so batches are padded) and 8 rows of 256 token
        ids of real text for training.
    engine_peer.py drive --model DIR --data FILE --ours BINARY --out RAW.json
                         [--configs gen:1:64,gen:16:64,gen:64:32,train:8:256] [--runs R] [--threads T]
        Run the benchmark: the peer (transformers, in this process) and ours (BINARY in `serve`
        mode, a child process), interleaved run by run, one untimed warm-up each per configuration.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

TOPICS = [
    "Is this comment harassment or just a heated disagreement about football?",
    "Please check whether the following forum post breaks the community rules on spam.",
    "A user wrote that they will 'destroy' their rival in the chess tournament tomorrow.",
    "Summarise the moderation policy on hate speech in two sentences.",
    "Someone posted a link to a website selling cheap watches in a cooking thread.",
    "Explain why a message that quotes a slur in order to criticise it may still be allowed.",
    "The user keeps sending the same message to many strangers asking them to join a group.",
    "Decide if a joke about lawyers counts as a personal attack against another member.",
]
FILLER = (
    "The context is a public discussion board with a few thousand members, mostly hobbyists. "
    "Moderators must be consistent, explain their reasoning briefly, and avoid over-removing "
    "content that is merely rude. Earlier warnings were issued to this account last month. "
    "Other members reported the post twice within an hour, and one of them asked for a ban. "
    "The post has since been edited, but the original text was preserved in the report queue. "
    "Please answer with a verdict and a short justification that cites the relevant rule. "
)


def prepare(model_dir, out, n_prompts=64, train_rows=8, train_len=256):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    words = FILLER.split()
    prompts, seen = [], set()
    for i in range(n_prompts):
        # Target lengths spread over 60..120 tokens, all distinct where possible.
        target = 60 + (i * 37) % 61
        nw = 0
        while True:
            content = TOPICS[i % len(TOPICS)] + " " + " ".join(words[:nw])
            ids = tok.apply_chat_template(
                [{"role": "user", "content": content.strip()}],
                add_generation_prompt=True,
                tokenize=True,
            )
            if hasattr(ids, "keys"):  # BatchEncoding in newer transformers
                ids = ids["input_ids"]
            ids = list(ids)
            if len(ids) >= target or nw >= len(words):
                break
            nw += 1
        prompts.append(ids)
        seen.add(len(ids))
    text = (FILLER + " ".join(TOPICS) + " ") * 40
    stream = tok(text)["input_ids"]
    train_ids = [stream[r * 97 : r * 97 + train_len] for r in range(train_rows)]
    assert all(len(r) == train_len for r in train_ids)
    with open(out, "w") as f:
        json.dump({"prompts": prompts, "train_ids": train_ids}, f)
    lens = [len(p) for p in prompts]
    print(
        f"wrote {out}: {len(prompts)} prompts, lengths {min(lens)}..{max(lens)} "
        f"({len(seen)} distinct); train {train_rows}x{train_len}",
        file=sys.stderr,
    )


def load_model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


class PeerGen:
    """transformers `generate`: greedy, KV cache, left padding + attention_mask, exactly max_new
    tokens per row (min_new_tokens = max_new_tokens)."""

    def __init__(self, model, prompts, max_new):
        self.model, self.max_new = model, max_new
        pad = model.config.pad_token_id
        self.pad = 0 if pad is None else pad
        self.lmax = max(len(p) for p in prompts)
        self.ids = torch.tensor(
            [[self.pad] * (self.lmax - len(p)) + p for p in prompts], dtype=torch.long
        )
        self.mask = torch.tensor(
            [[0] * (self.lmax - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long
        )

    def __call__(self):
        self.model.eval()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=self.ids,
                attention_mask=self.mask,
                max_new_tokens=self.max_new,
                min_new_tokens=self.max_new,
                do_sample=False,
                use_cache=True,
                pad_token_id=self.pad,
            )
        dt = time.perf_counter() - t0
        return {"seconds": dt, "tokens": (out.shape[1] - self.lmax) * out.shape[0]}


class PeerTrain:
    """Full fine-tuning step: labels=input_ids (mean next-token NLL over every token), backward,
    torch.optim.AdamW with our hyper-parameters (weight decay 0)."""

    def __init__(self, model, rows, lr):
        self.model = model
        self.ids = torch.tensor(rows, dtype=torch.long)
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )

    def __call__(self):
        self.model.train()
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.model(input_ids=self.ids, labels=self.ids, use_cache=False).loss
        loss_v = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        return {
            "seconds": t3 - t0, "loss": loss_v,
            "phases": {"forward_loss": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2},
        }


class Ours:
    """Our side: the Rust bench binary in `serve` mode, one request per timed run."""

    def __init__(self, binary, model_dir, data_path, threads):
        self.p = subprocess.Popen(
            [binary, "serve", "--model", model_dir, "--data", data_path, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"bench binary exited (rc {self.p.wait()})")
        return json.loads(line)

    def __call__(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        self.p.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.p.stdin.close()
        self.p.wait()


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def drive(args):
    """Interleave ours and the peer run by run (alternating which goes first), after one untimed
    warm-up of each per configuration, and write every timing to --out."""
    import transformers

    with open(args.data) as f:
        data = json.load(f)
    model = load_model(args.model)
    ours = Ours(args.ours, args.model, args.data, args.threads)
    configs = []
    for spec in args.configs.split(","):
        kind, a, b = spec.split(":")
        configs.append((kind, int(a), int(b)))
    results = []
    t_start = time.time()
    for kind, a, b in configs:
        if kind == "gen":
            name = f"gen_b{a}"
            prompts = data["prompts"][:a]
            assert len(prompts) == a
            peer = PeerGen(model, prompts, b)
            our = lambda: ours(op="gen", batch=a, max_new=b)
            info = {"batch": a, "max_new_tokens": b,
                    "prompt_len_min": min(map(len, prompts)), "prompt_len_max": max(map(len, prompts))}
        else:
            name = f"train_{a}x{b}"
            rows = [r[:b] for r in data["train_ids"][:a]]
            assert len(rows) == a and all(len(r) == b for r in rows)
            peer = PeerTrain(model, rows, args.lr)
            ours(op="train_setup", batch=a, seq=b, lr=args.lr)
            our = lambda: ours(op="train_step")
            info = {"batch": a, "seq": b, "lr": args.lr}
        sides = {"ours": our, "peer": peer}
        rec = {"name": name, "task": kind, **info, "runs": {"ours": [], "peer": []}, "warmup": {}}

        def timed(side, label):
            load = loadavg()
            r = sides[side]()
            if "tokens" not in r:
                r["tokens"] = info["batch"] * info["seq"]
            r["tok_per_s"] = r["tokens"] / r["seconds"]
            r["load_before"] = load
            print(f"[{time.time() - t_start:6.0f}s] {name} {side} {label}: {r['seconds']:.2f}s "
                  f"{r['tok_per_s']:.1f} tok/s (load {load[0]:.2f})", file=sys.stderr, flush=True)
            return r

        for side in ("ours", "peer"):
            rec["warmup"][side] = timed(side, "warm-up")
        for i in range(args.runs):
            order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
            for side in order:
                rec["runs"][side].append(timed(side, f"run {i + 1}"))
        for side in ("ours", "peer"):
            rec[f"median_tok_per_s_{side}"] = statistics.median(
                r["tok_per_s"] for r in rec["runs"][side])
        results.append(rec)
    ours.close()
    out = {
        "results": results,
        "threads": {"ours": ours.hello["threads"], "peer": torch.get_num_threads()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "peer_attn_implementation": model.config._attn_implementation,
        "elapsed_s": time.time() - t_start,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prepare", "drive"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ours", help="path of the modrl-bench-engine binary")
    ap.add_argument("--configs", default="gen:1:64,gen:16:64,gen:64:32,train:8:256",
                    help="comma-separated gen:BATCH:MAX_NEW and train:BATCH:SEQ")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cmd == "prepare":
        prepare(args.model, args.out)
    else:
        drive(args)


if __name__ == "__main__":
    main()
