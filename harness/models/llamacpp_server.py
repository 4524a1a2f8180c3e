"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``, same arguments)
with the log-probabilities of an echoed prompt computed anew.

With ``echo`` and ``logprobs``, llama-cpp-python (0.3.x) pairs the k-th token of a prompt with the
distribution computed *after* token k (the one that predicts token k + 1) for models whose
tokenizer adds no BOS token (SmolLM2, Qwen, ...), so every echoed log-probability is one position
off; and it sorts the whole vocabulary in Python for every prompt token, seconds per request.
lm-eval's ``local-completions`` scores a continuation from that echo (MC and tournament
verification). Here a non-streamed echoed completion gets its ``logprobs`` from the model's own
scores with numpy instead: token k gets log P(token k | the tokens before it), as vLLM and the
OpenAI API give it, and the generated token (the greedy one: these requests ask for temperature
0) its own. ``tests/test_llamacpp.py`` checks the numbers against transformers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from llama_cpp import Llama

_original = Llama._create_completion


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    top = rows.max(axis=-1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=-1, keepdims=True))


def echo_logprobs(llm: Llama, k: int) -> dict:
    """The OpenAI ``logprobs`` block of the prompt just evaluated (less a leading BOS) and of the
    next, greedy token, from ``llm``'s scores (the server runs with ``logits_all``)."""
    n = llm.n_tokens
    ids = [int(t) for t in llm._input_ids[:n]]
    lp = _log_softmax(np.asarray(llm._scores[:n]))
    seq = ids + [int(np.argmax(lp[n - 1]))]
    start = 1 if ids and ids[0] == llm.token_bos() else 0
    tokens: list[str] = []
    offsets: list[int] = []
    token_lps: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    offset = 0
    for j in range(start, len(seq)):
        text = llm.detokenize([seq[j]], prev_tokens=seq[:j]).decode("utf-8", errors="ignore")
        tokens.append(text)
        offsets.append(offset)
        offset += len(text)
        if j == start:  # the OpenAI API gives the first token none
            token_lps.append(None)
            tops.append(None)
            continue
        row = lp[j - 1]
        best = np.argpartition(-row, max(k, 1) - 1)[: max(k, 1)] if k > 0 else []
        top = {llm.detokenize([int(t)], prev_tokens=seq[:j]).decode("utf-8", errors="ignore"): float(row[t]) for t in best}
        top[text] = float(row[seq[j]])
        token_lps.append(float(row[seq[j]]))
        tops.append(top)
    return {"tokens": tokens, "text_offset": offsets, "token_logprobs": token_lps, "top_logprobs": tops}


def _create_completion(self: Llama, *args: Any, **kwargs: Any) -> Any:
    """An echoed completion with ``logprobs``, its logprobs from :func:`echo_logprobs`; everything
    else (and a model without ``logits_all``, which llama-cpp-python refuses) as it was."""
    k = kwargs.get("logprobs")
    if not kwargs.get("echo") or k is None or kwargs.get("stream") or not getattr(self, "_logits_all", False):
        return _original(self, *args, **kwargs)

    def run() -> Iterator[dict]:
        for chunk in _original(self, *args, **{**kwargs, "logprobs": None}):
            chunk["choices"][0]["logprobs"] = echo_logprobs(self, int(k))
            yield chunk

    return run()


Llama._create_completion = _create_completion


if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    main()
