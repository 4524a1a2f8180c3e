"""Write a tiny randomly initialised Llama (2 layers, hidden size 128; about 13 MB in bfloat16)
with the embedded SmolLM2's tokenizer, as transformers saves it, for tests/gpu: small enough to
travel to a GPU machine that cannot download anything.

    python tests/gpu/make_tiny_llama.py build/tiny-llama
"""

from __future__ import annotations

import sys
from pathlib import Path


def make(out: Path, tokenizer_from: Path | None = None, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if tokenizer_from is None:
        from gapbench.harness.models import embedded

        tokenizer_from = embedded.ensure(log=lambda *_: None)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(make(Path(sys.argv[1])))
