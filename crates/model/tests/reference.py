"""Reference computations with `transformers` / `peft` for modrl's parity tests.

Each sub-command reads/writes plain files so the Rust tests can compare results:
  tiny ARCH OUT_DIR                       write a tiny random HF model of ARCH (llama, llama3, qwen2, qwen3)
  logits MODEL_DIR IDS_JSON OUT_JSON      logits of each id row (no padding); also greedy generations
                                          when the JSON has "generate": N
  chat MODEL_DIR CASES_JSON OUT_JSON      apply_chat_template for each case {template?, messages, add_generation_prompt}
  peft MODEL_DIR ADAPTER_DIR IDS_JSON OUT_JSON   logits of base + PEFT adapter loaded by peft
"""
import json
import sys

import torch

torch.set_num_threads(2)


def tiny(arch: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(
        vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    if arch == "llama":
        cfg = LlamaConfig(**common, rope_theta=10000.0, tie_word_embeddings=True)
    elif arch == "llama3":  # Llama-3 rope scaling, untied head, attention bias
        cfg = LlamaConfig(**common, tie_word_embeddings=False, attention_bias=True,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                          rope_theta=500000.0)
    elif arch == "qwen2":
        cfg = Qwen2Config(**common, rope_theta=1000000.0, tie_word_embeddings=False)
    elif arch == "qwen3":
        cfg = Qwen3Config(**common, head_dim=32, rope_theta=1000000.0, tie_word_embeddings=True)
    else:
        sys.exit(f"unknown arch {arch}")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # make norms and biases non-trivial so they are really tested
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(out, safe_serialization=True)


def logits(model_dir: str, ids_json: str, out: str) -> None:
    from transformers import AutoModelForCausalLM

    spec = json.load(open(ids_json))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    res = {"logits": [], "generated": []}
    with torch.no_grad():
        for row in spec["ids"]:
            ids = torch.tensor([row])
            res["logits"].append(model(ids).logits[0].tolist())
            if spec.get("generate"):
                g = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                   max_new_tokens=spec["generate"], pad_token_id=0)
                res["generated"].append(g[0, len(row):].tolist())
    json.dump(res, open(out, "w"))


def chat(model_dir: str, cases_json: str, out: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    res = []
    for case in json.load(open(cases_json)):
        kw = {"chat_template": case["template"]} if case.get("template") else {}
        res.append(tok.apply_chat_template(case["messages"], tokenize=False,
                                           add_generation_prompt=case["add_generation_prompt"], **kw))
    json.dump(res, open(out, "w"))


def peft_logits(model_dir: str, adapter_dir: str, ids_json: str, out: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    spec = json.load(open(ids_json))
    with torch.no_grad():
        res = {"logits": [model(torch.tensor([row])).logits[0].tolist() for row in spec["ids"]]}
    json.dump(res, open(out, "w"))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"tiny": tiny, "logits": logits, "chat": chat, "peft": peft_logits}[cmd](*args)
