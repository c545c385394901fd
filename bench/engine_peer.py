"""Engine benchmark, peer side (PyTorch + transformers), and the shared input data.

    engine_peer.py prepare --model DIR --out FILE
        Write the benchmark inputs both sides use: 64 chat prompts (chat template + generation
        prompt, 60-120 tokens, all different lengths so batches are padded) and 8 rows of 256 token
        ids of real text for training.
    engine_peer.py gen   --model DIR --data FILE --batch B --max-new N [--runs R] [--threads T]
    engine_peer.py train --model DIR --data FILE --batch B --seq L [--runs R] [--threads T] [--lr LR]

Prints one JSON object per call; every measurement follows one untimed warm-up of the same shape.
"""

import argparse
import json
import statistics
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

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model


def bench_gen(args, data):
    model = load_model(args.model).eval()
    prompts = data["prompts"][: args.batch]
    assert len(prompts) == args.batch
    pad = model.config.pad_token_id
    if pad is None:
        pad = 0
    lmax = max(len(p) for p in prompts)
    # Left padding with an attention mask, as transformers expects for batched generation.
    ids = torch.tensor([[pad] * (lmax - len(p)) + p for p in prompts], dtype=torch.long)
    mask = torch.tensor([[0] * (lmax - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)

    def run():
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=args.max_new,
                min_new_tokens=args.max_new,
                do_sample=False,
                use_cache=True,
                pad_token_id=pad,
            )
        dt = time.perf_counter() - t0
        return dt, (out.shape[1] - lmax) * out.shape[0]

    warm, _ = run()
    times, tokens = [], []
    for _ in range(args.runs):
        dt, n = run()
        times.append(dt)
        tokens.append(n)
    tps = [n / t for n, t in zip(tokens, times)]
    lens = [len(p) for p in prompts]
    return {
        "side": "peer", "task": "gen", "batch": args.batch, "max_new_tokens": args.max_new,
        "prompt_len_min": min(lens), "prompt_len_max": max(lens),
        "attn_implementation": model.config._attn_implementation,
        "warmup_s": warm, "times_s": times, "tokens": tokens, "tok_per_s": tps,
        "median_tok_per_s": statistics.median(tps),
    }


def bench_train(args, data):
    model = load_model(args.model).train()
    rows = [r[: args.seq] for r in data["train_ids"][: args.batch]]
    assert len(rows) == args.batch and all(len(r) == args.seq for r in rows)
    ids = torch.tensor(rows, dtype=torch.long)
    # Full fine-tuning, f32, PyTorch's AdamW with the same hyper-parameters as ours (weight decay 0).
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        # labels=input_ids: mean next-token NLL over every token (shifted inside transformers).
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss_v = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        return t3 - t0, loss_v, (t1 - t0, t2 - t1, t3 - t2)

    warm, loss0, _ = step()
    times, losses, phases = [], [loss0], []
    for _ in range(args.runs):
        dt, l, ph = step()
        times.append(dt)
        losses.append(l)
        phases.append(ph)
    ntok = args.batch * args.seq
    tps = [ntok / t for t in times]
    med = [statistics.median(p[i] for p in phases) for i in range(3)]
    return {
        "side": "peer", "task": "train", "batch": args.batch, "seq": args.seq, "lr": args.lr,
        "attn_implementation": model.config._attn_implementation,
        "warmup_s": warm, "times_s": times, "tok_per_s": tps,
        "median_tok_per_s": statistics.median(tps), "losses": losses,
        "median_phase_s": {"forward_loss": med[0], "backward": med[1], "optimizer": med[2]},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prepare", "gen", "train"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data")
    ap.add_argument("--out")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--max-new", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cmd == "prepare":
        prepare(args.model, args.out)
        return
    with open(args.data) as f:
        data = json.load(f)
    res = bench_gen(args, data) if args.cmd == "gen" else bench_train(args, data)
    res["threads"] = torch.get_num_threads()
    res["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
