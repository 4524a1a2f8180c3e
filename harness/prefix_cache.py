"""Shared-prefix loglikelihood for lm-eval's ``hf`` models.

Verification requests share long few-shot heads: every MC and tournament context
of a task starts with the same worked examples. lm-eval's ``hf`` model runs the
whole context for every request. Here the longest common token prefix of a call's
requests runs once, and its key/value cache is reused for every request's
remainder, which on a CPU makes MC several times faster (see
``benchmarks/loglikelihood_prefix.py``). Tokenisation is lm-eval's own
(``_encode_pair``), so the scores equal lm-eval's up to float rounding.

Used only for causal ``HFLM`` models with a common prefix worth sharing; anything
else goes through lm-eval's own ``loglikelihood``.
"""

from __future__ import annotations

import copy
import os

MIN_SHARED = 32  # tokens: below this the plain path is as fast


def supported(lm) -> bool:
    if os.environ.get("GAPBENCH_PREFIX_CACHE", "1") == "0":
        return False
    try:
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        return False
    return type(lm) is HFLM and getattr(lm, "backend", None) == "causal"


def encode(lm, requests: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    return [lm._encode_pair(c, x) for c, x in requests]


def shared_prefix(pairs: list[tuple[list[int], list[int]]]) -> int:
    """Tokens every context shares, leaving each context at least one token of its own
    (its last position predicts the continuation's first token)."""
    first = pairs[0][0]
    n = min(len(ctx) for ctx, _ in pairs) - 1
    for ctx, _ in pairs[1:]:
        k = 0
        while k < n and ctx[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def loglikelihood(lm, requests: list[tuple[str, str]]) -> list[float] | None:
    """log P(continuation | context) per request, or None when sharing does not pay."""
    import torch
    import torch.nn.functional as F

    pairs = encode(lm, requests)
    shared = shared_prefix(pairs)
    max_len = lm.max_length
    if shared < MIN_SHARED or any(len(c) + len(x) > max_len for c, x in pairs):
        return None
    model = lm.model
    device = lm.device
    batch = int(lm.batch_size) if str(lm.batch_size).isdigit() else 8
    prefix = torch.tensor([pairs[0][0][:shared]], device=device)
    out: list[float] = [0.0] * len(pairs)
    # longest first, so a batch pads little
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    with torch.no_grad():
        head = model(prefix, use_cache=True)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            rests = [pairs[i][0][shared:] + pairs[i][1] for i in idx]
            width = max(len(r) - 1 for r in rests) + 1
            ids = torch.full((len(idx), width), lm.tokenizer.pad_token_id or 0, device=device)
            mask = torch.zeros((len(idx), shared + width), dtype=torch.long, device=device)
            mask[:, :shared] = 1
            for row, r in enumerate(rests):
                ids[row, : len(r)] = torch.tensor(r, device=device)
                mask[row, shared : shared + len(r)] = 1
            past = copy.deepcopy(head.past_key_values)
            past.batch_repeat_interleave(len(idx))
            positions = torch.arange(shared, shared + width, device=device).expand(len(idx), -1)
            logits = model(ids, attention_mask=mask, past_key_values=past, position_ids=positions, use_cache=True).logits
            logprobs = F.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(idx):
                ctx_rest = len(pairs[i][0]) - shared
                cont = pairs[i][1]
                # the token at rest position p is predicted by position p - 1
                pos = torch.arange(ctx_rest - 1, ctx_rest - 1 + len(cont), device=device)
                target = torch.tensor(cont, device=device)
                out[i] = float(logprobs[row, pos, target].sum())
    return out
