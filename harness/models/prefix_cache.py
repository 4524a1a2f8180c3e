"""Shared-prefix loglikelihood for lm-eval's ``hf`` models (used by ``hf-prefix``, :mod:`.hf_prefix`).

Verification requests share long few-shot heads: every MC and tournament context
of a task starts with the same worked examples. lm-eval's ``hf`` model runs the
whole context for every request. Here the longest common token prefix of a call's
requests runs once, and its key/value cache is reused for every request's
remainder, which on a CPU makes MC several times faster (see
``benchmarks/loglikelihood_prefix.py``). Tokenisation is lm-eval's own
(``_encode_pair``), so the scores equal lm-eval's up to float rounding, and each
answer is lm-eval's ``(log-probability, is_greedy)``.

Used only for causal models of lm-eval's own ``HFLM`` class or of a subclass that
declares it keeps HFLM's internals (``HFPrefixLM.prefix_paths``), with a common prefix
worth sharing; anything else goes through lm-eval's own ``loglikelihood``.
"""

from __future__ import annotations

import copy
import os

MIN_SHARED = 32  # tokens: below this the plain path is as fast


def enabled() -> bool:
    """``GAPBENCH_PREFIX_CACHE=0`` turns the shared-prefix paths off (read at every call)."""
    return os.environ.get("GAPBENCH_PREFIX_CACHE", "1") != "0"


def last_logits_only(model) -> dict:
    """``logits_to_keep=1`` where the model takes it: a pass whose logits are read only at its last
    position (or not at all) skips the output layer elsewhere, which dominates with a large
    vocabulary (Gemma 3: 262k tokens)."""
    import inspect

    try:
        takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    return {"logits_to_keep": 1} if takes else {}


def supported(lm) -> bool:
    """The shared-prefix paths may run on ``lm``: they are switched on, and ``lm`` is a causal model of
    lm-eval's ``HFLM`` itself or of a subclass marked ``prefix_paths = True`` (``HFPrefixLM``). Other
    subclasses (lm-eval's steered or multimodal models) may change what a forward pass means."""
    if not enabled():
        return False
    try:
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        return False
    ours = type(lm) is HFLM or (isinstance(lm, HFLM) and getattr(type(lm), "prefix_paths", False) is True)
    return ours and getattr(lm, "backend", None) == "causal"


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


def loglikelihood(lm, requests: list[tuple[str, str]]) -> list[tuple[float, bool]] | None:
    """lm-eval's answer per request, ``(log P(continuation | context), is_greedy)``, or None when
    sharing does not pay (or a context is empty, which lm-eval encodes its own way)."""
    import torch
    import torch.nn.functional as F

    if not requests or any(not c for c, _ in requests):
        return None
    pairs = encode(lm, requests)
    shared = shared_prefix(pairs)
    max_len = lm.max_length
    if shared < MIN_SHARED or any(len(c) + len(x) > max_len for c, x in pairs):
        return None
    model = lm.model
    device = lm.device
    batch = int(lm.batch_size) if str(lm.batch_size).isdigit() else 8
    pad = lm.tokenizer.pad_token_id or 0
    prefix = torch.tensor([pairs[0][0][:shared]], device=device)
    out: list[float] = [0.0] * len(pairs)
    greedy: list[bool] = [True] * len(pairs)
    # each distinct context runs once (MC asks for " Correct" and " Incorrect" after the same one)
    by_context: dict[tuple, list[int]] = {}
    for i, (ctx, _) in enumerate(pairs):
        by_context.setdefault(tuple(ctx), []).append(i)
    contexts = sorted(by_context, key=len, reverse=True)  # longest first, so a batch pads little
    dtype = getattr(lm, "mixed_precision_dtype", None)  # as lm-eval's _model_call
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None)
    with torch.no_grad(), autocast:
        head = model(prefix, use_cache=True, **last_logits_only(model))  # only its cache is used
        for start in range(0, len(contexts), batch):
            group = contexts[start : start + batch]
            rests = [list(c[shared:]) for c in group]
            width = max(len(r) for r in rests)
            ids = torch.full((len(group), width), pad, device=device)
            mask = torch.zeros((len(group), shared + width), dtype=torch.long, device=device)
            mask[:, :shared] = 1
            for row, r in enumerate(rests):
                ids[row, : len(r)] = torch.tensor(r, device=device)
                mask[row, shared : shared + len(r)] = 1
            past = copy.deepcopy(head.past_key_values)
            past.batch_repeat_interleave(len(group))
            positions = torch.arange(shared, shared + width, device=device).expand(len(group), -1)
            logits = model(ids, attention_mask=mask, past_key_values=past, position_ids=positions, use_cache=True).logits
            last = F.log_softmax(logits[torch.arange(len(group)), [len(r) - 1 for r in rests]].float(), dim=-1)
            # the first continuation token comes from the context's last position; the rest of a
            # longer continuation runs on top of its context's cache
            longer = []
            for row, c in enumerate(group):
                for i in by_context[c]:
                    cont = pairs[i][1]
                    out[i] = float(last[row, cont[0]])
                    greedy[i] = int(last[row].argmax()) == cont[0]
                    if len(cont) > 1:
                        longer.append((row, i))
            if not longer:
                continue
            rows = torch.tensor([row for row, _ in longer], device=device)
            past.batch_select_indices(rows)
            tails = [pairs[i][1] for _, i in longer]
            twidth = max(len(t) - 1 for t in tails)
            tids = torch.full((len(longer), twidth), pad, device=device)
            tmask = torch.cat([mask[rows], torch.zeros((len(longer), twidth), dtype=torch.long, device=device)], dim=1)
            tpos = torch.zeros((len(longer), twidth), dtype=torch.long, device=device)
            for k, ((row, i), t) in enumerate(zip(longer, tails)):
                n = len(t) - 1
                tids[k, :n] = torch.tensor(t[:-1], device=device)
                tmask[k, shared + width : shared + width + n] = 1
                tpos[k, :n] = torch.arange(len(pairs[i][0]), len(pairs[i][0]) + n, device=device)
            tlogits = F.log_softmax(model(tids, attention_mask=tmask, past_key_values=past, position_ids=tpos, use_cache=True).logits.float(), dim=-1)
            for k, ((_, i), t) in enumerate(zip(longer, tails)):
                # tail position p (token t[p]) predicts t[p + 1]
                steps = torch.arange(len(t) - 1, device=device)
                wanted = torch.tensor(t[1:], device=device)
                out[i] += float(tlogits[k, steps, wanted].sum())
                greedy[i] = greedy[i] and bool((tlogits[k, steps].argmax(dim=-1) == wanted).all())
    return list(zip(out, greedy))
