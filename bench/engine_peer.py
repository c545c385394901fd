"""Engine benchmark, peer side (PyTorch + transformers), and the shared input data.

    engine_peer.py prepare --model DIR --out FILE [--score-prompts PROMPTS.jsonl]
        Write the benchmark inputs both sides use: 64 chat prompts (chat template + generation
        prompt, 60-120 tokens, all different lengths so batches are padded), 8 rows of 256 token
        ids of real text for training, and (with --score-prompts, the output of `modrl data
        prompts --variant no-reasoning`) the verdict-token prompts sorted by length with the two
        label words' first tokens.
    engine_peer.py drive --model DIR --data FILE --ours BINARY --out RAW.json
                         [--configs gemm:2048,copy:512,gen:1:64,gen:16:64,gen:64:32,score:16:64,train:8:256]
                         [--runs R] [--threads T] [--device cpu|cuda] [--dtype f32|bf16]
        Run the benchmark: the peer (transformers, in this process) and ours (BINARY in `serve`
        mode, a child process), interleaved run by run (the order rotates), one untimed warm-up
        each per configuration. Scoring has two peers: a batched forward of whole prompts, and the
        policy prefix computed once and reused through past_key_values. On a GPU (--device cuda)
        both sides synchronise the device before a timed run ends (torch.cuda.synchronize here,
        tch::Cuda::synchronize in ours), and --dtype bf16 loads both models in bfloat16.
"""

import copy

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


def score_inputs(tok, path):
    """Token ids of `modrl data prompts` rows (each checked against the count modrl wrote), sorted by
    length so both sides batch similar lengths, and the first token of each label word after the
    verdict prefix the prompts end with."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    prompts = []
    for r in rows:
        ids = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        if len(ids) != r["prompt_tokens"]:
            sys.exit(f"{path}: id {r['id']}: {len(ids)} tokens here, {r['prompt_tokens']} in modrl")
        prompts.append(ids)
    labels = []
    for word in ("violating", "non-violating"):
        ids = tok(rows[0]["prompt"] + word, add_special_tokens=False)["input_ids"]
        if ids[: len(prompts[0])] != prompts[0]:
            sys.exit(f"{path}: the label word {word!r} changes the prompt's tokens")
        labels.append(ids[len(prompts[0])])
    if labels[0] == labels[1]:
        sys.exit(f"the label words share their first token {labels[0]}")
    return sorted(prompts, key=len), labels


def prepare(model_dir, out, score_prompts=None, n_prompts=64, train_rows=8, train_len=256):
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
    data = {"prompts": prompts, "train_ids": train_ids}
    if score_prompts:
        data["score_prompts"], data["label_ids"] = score_inputs(tok, score_prompts)
    with open(out, "w") as f:
        json.dump(data, f)
    lens = [len(p) for p in prompts]
    print(
        f"wrote {out}: {len(prompts)} prompts, lengths {min(lens)}..{max(lens)} "
        f"({len(seen)} distinct); train {train_rows}x{train_len}",
        file=sys.stderr,
    )


DEVICE = torch.device("cpu")
DTYPE = torch.float32


def sync():
    """Wait for the GPU's queued kernels (nothing to wait for on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def on_device(rows, dtype=torch.long):
    """A tensor of token ids (or mask values) on the benchmark's device."""
    return torch.tensor(rows, dtype=dtype, device=DEVICE)


def load_model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=DTYPE).to(DEVICE)


class PeerGen:
    """transformers `generate`: greedy, KV cache, left padding + attention_mask, exactly max_new
    tokens per row (min_new_tokens = max_new_tokens)."""

    def __init__(self, model, prompts, max_new):
        self.model, self.max_new = model, max_new
        pad = model.config.pad_token_id
        self.pad = 0 if pad is None else pad
        self.lmax = max(len(p) for p in prompts)
        self.ids = on_device([[self.pad] * (self.lmax - len(p)) + p for p in prompts])
        self.mask = on_device([[0] * (self.lmax - len(p)) + [1] * len(p) for p in prompts])

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
        sync()
        dt = time.perf_counter() - t0
        return {"seconds": dt, "tokens": (out.shape[1] - self.lmax) * out.shape[0]}


def common_prefix(prompts):
    """Length of the prompts' common start, leaving each at least one token of its own (as
    modrl_model::generate::common_start)."""
    n = min(map(len, prompts)) - 1
    for p in prompts[1:]:
        n = min(n, next((i for i, (a, b) in enumerate(zip(prompts[0], p)) if a != b), n))
    return n


def two_label_probs(logits, labels):
    return torch.softmax(logits[:, labels].float(), dim=-1)[:, 0].tolist()


class PeerScore:
    """Verdict-token scoring, transformers' usual way: batches of whole prompts, left-padded, with
    the attention mask and matching position ids, logits of the last position only."""

    def __init__(self, model, prompts, labels, batch):
        self.model, self.labels, self.batch = model, labels, batch
        self.prompts = prompts

    def __call__(self):
        self.model.eval()
        probs = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(self.prompts), self.batch):
                chunk = self.prompts[i : i + self.batch]
                lmax = max(map(len, chunk))
                ids = on_device([[0] * (lmax - len(p)) + p for p in chunk])
                mask = on_device([[0] * (lmax - len(p)) + [1] * len(p) for p in chunk])
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1)
                probs += two_label_probs(out.logits[:, -1], self.labels)
        return {"seconds": time.perf_counter() - t0, "items": len(self.prompts), "probs": probs}


class PeerScorePrefix:
    """Verdict-token scoring with the policy prefix computed once per pass and reused through
    past_key_values (the prefix cache copied and repeated to the batch for every forward, as
    transformers documents prompt reuse), suffixes right-padded, logits at each row's last token."""

    def __init__(self, model, prompts, labels, batch):
        self.model, self.labels, self.batch = model, labels, batch
        self.prompts = prompts
        self.p = common_prefix(prompts)

    def __call__(self):
        self.model.eval()
        probs = []
        p = self.p
        t0 = time.perf_counter()
        with torch.inference_mode():
            pre = self.model(input_ids=on_device([self.prompts[0][:p]]), use_cache=True).past_key_values
            for i in range(0, len(self.prompts), self.batch):
                chunk = [q[p:] for q in self.prompts[i : i + self.batch]]
                b, lmax = len(chunk), max(map(len, chunk))
                ids = on_device([q + [0] * (lmax - len(q)) for q in chunk])
                mask = on_device([[1] * (p + len(q)) + [0] * (lmax - len(q)) for q in chunk])
                pos = torch.arange(p, p + lmax, device=DEVICE).unsqueeze(0).expand(b, lmax)
                cache = copy.deepcopy(pre)
                cache.batch_repeat_interleave(b)
                hidden = self.model.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                          past_key_values=cache, use_cache=True).last_hidden_state
                last = hidden[torch.arange(b, device=DEVICE), on_device([len(q) - 1 for q in chunk])]
                probs += two_label_probs(self.model.lm_head(last), self.labels)
        return {"seconds": time.perf_counter() - t0, "items": len(self.prompts), "probs": probs,
                "prefix_tokens": p}


def peer_gemm(n):
    a, b = (torch.randn(n, n, dtype=DTYPE, device=DEVICE) for _ in range(2))
    sync()
    t0 = time.perf_counter()
    c = a @ b
    sync()
    dt = time.perf_counter() - t0
    del c
    return {"seconds": dt, "flops": 2.0 * n ** 3}


def peer_copy(mib):
    a = torch.randn(mib * (1 << 20) // 4, device=DEVICE)
    b = torch.zeros_like(a)
    sync()
    t0 = time.perf_counter()
    for _ in range(4):
        b.copy_(a)
    sync()
    dt = time.perf_counter() - t0
    return {"seconds": dt, "bytes": 4 * 2.0 * mib * (1 << 20)}


class PeerTrain:
    """Full fine-tuning step: labels=input_ids (mean next-token NLL over every token), backward,
    torch.optim.AdamW with our hyper-parameters (weight decay 0)."""

    def __init__(self, model, rows, lr):
        self.model = model
        self.ids = on_device(rows)
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
        sync()
        t2 = time.perf_counter()
        self.opt.step()
        sync()
        t3 = time.perf_counter()
        return {
            "seconds": t3 - t0, "loss": loss_v,
            "phases": {"forward_loss": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2},
        }


class Ours:
    """Our side: the Rust bench binary in `serve` mode, one request per timed run."""

    def __init__(self, binary, model_dir, data_path, threads, device="cpu", dtype="f32"):
        self.p = subprocess.Popen(
            [binary, "serve", "--model", model_dir, "--data", data_path, "--threads", str(threads),
             "--device", device, "--dtype", dtype],
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
    """Interleave the sides run by run (rotating which goes first), after one untimed warm-up of
    each per configuration, and write every timing to --out."""
    import transformers

    with open(args.data) as f:
        data = json.load(f)
    model = load_model(args.model)
    ours = Ours(args.ours, args.model, args.data, args.threads, args.device, args.dtype)
    configs = []
    for spec in args.configs.split(","):
        kind, *nums = spec.split(":")
        configs.append((kind, [int(x) for x in nums]))
    results = []
    t_start = time.time()
    for kind, nums in configs:
        if kind == "gen":
            a, b = nums
            name = f"gen_b{a}"
            prompts = data["prompts"][:a]
            assert len(prompts) == a
            sides = {"ours": lambda: ours(op="gen", batch=a, max_new=b), "peer": PeerGen(model, prompts, b)}
            info = {"batch": a, "max_new_tokens": b,
                    "prompt_len_min": min(map(len, prompts)), "prompt_len_max": max(map(len, prompts))}
        elif kind == "score":
            a, n = nums
            name = f"score_b{a}"
            prompts, labels = data["score_prompts"][:n], data["label_ids"]
            assert len(prompts) == n, f"data file has {len(data['score_prompts'])} score prompts, need {n}"
            sides = {"ours": lambda: ours(op="score", batch=a, n=n),
                     "peer": PeerScore(model, prompts, labels, a),
                     "peer_prefix": PeerScorePrefix(model, prompts, labels, a)}
            info = {"batch": a, "items": n, "prompt_lens": [len(q) for q in prompts],
                    "prompt_len_min": min(map(len, prompts)), "prompt_len_max": max(map(len, prompts)),
                    "prefix_tokens": common_prefix(prompts)}
        elif kind == "copy":
            (mib,) = nums
            name = f"copy_{mib}mib"
            sides = {"ours": lambda: ours(op="copy", mib=mib), "peer": lambda: peer_copy(mib)}
            info = {"mib": mib}
        elif kind == "gemm":
            (n,) = nums
            name = f"gemm_{n}"
            sides = {"ours": lambda: ours(op="gemm", n=n), "peer": lambda: peer_gemm(n)}
            info = {"n": n}
        else:
            a, b = nums
            name = f"train_{a}x{b}"
            rows = [r[:b] for r in data["train_ids"][:a]]
            assert len(rows) == a and all(len(r) == b for r in rows)
            ours(op="train_setup", batch=a, seq=b, lr=args.lr)
            sides = {"ours": lambda: ours(op="train_step"), "peer": PeerTrain(model, rows, args.lr)}
            info = {"batch": a, "seq": b, "lr": args.lr}
        order = list(sides)
        rec = {"name": name, "task": kind, **info, "runs": {s: [] for s in order}, "warmup": {}}

        def timed(side, label):
            load = loadavg()
            r = sides[side]()
            r["load_before"], r["load_after"] = load, loadavg()
            if kind == "gemm":
                r["gflop_per_s"] = r["flops"] / r["seconds"] / 1e9
                rate = f"{r['gflop_per_s']:.1f} GFLOP/s"
            elif kind == "copy":
                r["gb_per_s"] = r["bytes"] / r["seconds"] / 1e9
                rate = f"{r['gb_per_s']:.1f} GB/s"
            elif kind == "score":
                r["items_per_s"] = r["items"] / r["seconds"]
                rate = f"{r['items_per_s']:.1f} items/s"
            else:
                r.setdefault("tokens", info.get("batch", 0) * info.get("seq", 0))
                r["tok_per_s"] = r["tokens"] / r["seconds"]
                rate = f"{r['tok_per_s']:.1f} tok/s"
            print(f"[{time.time() - t_start:6.0f}s] {name} {side} {label}: {r['seconds']:.2f}s "
                  f"{rate} (load {load[0]:.2f})", file=sys.stderr, flush=True)
            return r

        for side in order:
            rec["warmup"][side] = timed(side, "warm-up")
        for i in range(args.runs):
            k = i % len(order)
            for side in order[k:] + order[:k]:
                rec["runs"][side].append(timed(side, f"run {i + 1}"))
        if kind == "score":
            ref = rec["runs"]["ours"][0]["probs"]
            rec["max_abs_prob_diff"] = {
                s: max(abs(x - y) for x, y in zip(ref, rec["runs"][s][0]["probs"])) for s in order[1:]}
            for s in order:
                for r in rec["runs"][s] + [rec["warmup"][s]]:
                    r.pop("probs")
        results.append(rec)
    ours.close()
    out = {
        "results": results,
        "threads": {"ours": ours.hello["threads"], "peer": torch.get_num_threads()},
        "device": args.device, "dtype": args.dtype,
        "gpu": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
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
    ap.add_argument("--configs", default="gemm:2048,copy:512,gen:1:64,gen:16:64,gen:64:32,score:16:64,train:8:256",
                    help="comma-separated gen:BATCH:MAX_NEW, score:BATCH:ITEMS, train:BATCH:SEQ, gemm:N, copy:MIB")
    ap.add_argument("--score-prompts", help="prepare: `modrl data prompts --variant no-reasoning` output")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"], help="both sides' weights and activations")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global DEVICE, DTYPE
    DEVICE = torch.device(args.device)
    DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    if args.cmd == "prepare":
        prepare(args.model, args.out, args.score_prompts)
    else:
        drive(args)


if __name__ == "__main__":
    main()
