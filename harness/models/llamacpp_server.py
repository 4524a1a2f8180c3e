"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``, same arguments)
with one correction: the log-probabilities it echoes for a prompt's tokens.

With ``echo`` and ``logprobs``, llama-cpp-python (0.3.x) pairs the k-th token of a prompt with the
distribution computed *after* token k (the one that predicts token k + 1), for models whose
tokenizer adds no BOS token (SmolLM2, Qwen, ...): every echoed log-probability is one position
off, and the generated token gets none. lm-eval's ``local-completions`` (and any client that
scores a continuation from the echo) then reads wrong numbers. Here the distributions are moved
by one position for such models, so token k gets log P(token k | tokens before it), as vLLM and
the OpenAI API give it. Models whose tokenizer adds BOS are left as they are (the BOS row
already lines them up). ``tests/test_llamacpp.py`` checks the result against transformers.
"""

from __future__ import annotations

import numpy as np
from llama_cpp import Llama

_original_logprobs = Llama.logits_to_logprobs
_original_completion = Llama._create_completion
_SHIFT = [False]  # while an echoed completion of a model without BOS runs (the server runs one at a time)


def _logits_to_logprobs(logits, axis: int = -1):
    out = _original_logprobs(logits, axis)
    if _SHIFT[0] and getattr(out, "ndim", 0) == 2:
        out = np.concatenate([np.zeros_like(out[:1]), out], axis=0)  # row k: the distribution before token k
    return out


def _create_completion(self, *args, **kwargs):
    echo, logprobs = kwargs.get("echo", False), kwargs.get("logprobs")
    if not echo or logprobs is None:
        return _original_completion(self, *args, **kwargs)
    probe = self.tokenize(b"x", add_bos=True)
    shift = not (probe and probe[0] == self.token_bos())

    def run():
        _SHIFT[0] = shift
        try:
            yield from _original_completion(self, *args, **kwargs)
        finally:
            _SHIFT[0] = False

    return run()


Llama.logits_to_logprobs = staticmethod(_logits_to_logprobs)
Llama._create_completion = _create_completion


if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    main()
