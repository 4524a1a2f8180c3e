"""Shared-prefix loglikelihood for lm-eval's ``hf`` models (used by ``hf-prefix``, :mod:`.hf_prefix`).

Verification requests share long few-shot heads: every MC and tournament context
of a task starts with the same worked examples, and a prompt's samples share its
question. lm-eval's ``hf`` model runs the whole context for every request. Here a
context runs in blocks of :data:`BLOCK` tokens at fixed positions (0-31, 32-63, ...),
each block on top of the key/value cache of the blocks before it, and a block that
an earlier context of the call already ran is taken from there (the calls' contexts
go in token order, so contexts that share blocks are neighbours). On a CPU that
makes MC several times faster (see ``benchmarks/loglikelihood_prefix.py``).

Every forward pass is a function of one context's tokens alone: the same blocks, the
same shapes, one row, no padding. A request's log-probability is therefore the same
float whatever other requests share its call, so a run split into shards, resumed in
mid-verification or batched differently scores every sample to the same bits as one
uninterrupted run. Tokenisation is lm-eval's own (``_encode_pair``), so the scores equal
lm-eval's up to float rounding, and each answer is lm-eval's ``(log-probability, is_greedy)``.

Used only for causal models of lm-eval's own ``HFLM`` class or of a subclass that
declares it keeps HFLM's internals (``HFPrefixLM.prefix_paths``); anything else, an
empty context or one longer than the model takes goes through lm-eval's own ``loglikelihood``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lm_eval.api.model import LM
    from lm_eval.models.huggingface import HFLM
    from transformers import PreTrainedModel
    from transformers.cache_utils import DynamicCache

BLOCK = 32  # tokens per cached block of a loglikelihood context
HEAD_ROWS = 8  # positions per run of the output layer in loglikelihood
GROUP = 2  # contexts per group, per row of batch_size: one level of a group runs GROUP * batch_size rows of BLOCK tokens


def enabled() -> bool:
    """``GAPBENCH_PREFIX_CACHE=0`` turns the shared-prefix paths off (read at every call)."""
    return os.environ.get("GAPBENCH_PREFIX_CACHE", "1") != "0"


def last_logits_only(model: PreTrainedModel) -> dict:
    """``logits_to_keep=1`` where the model takes it: a pass whose logits are read only at its last
    position (or not at all) skips the output layer elsewhere, which dominates with a large
    vocabulary (Gemma 3: 262k tokens)."""
    import inspect

    try:
        takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    return {"logits_to_keep": 1} if takes else {}


def supported(lm: LM) -> bool:
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


def encode(lm: HFLM, requests: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    return [lm._encode_pair(c, x) for c, x in requests]


def shared_prefix(pairs: list[tuple[list[int], list[int]]]) -> int:
    """Tokens every context shares, leaving each context at least one token of its own
    (its last position predicts the continuation's first token)."""
    first = pairs[0][0]
    n = min(len(ctx) for ctx, _ in pairs) - 1
    for ctx, _ in pairs[1:]:
        n = min(n, common(first, ctx))
    return max(n, 0)


def common(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two token sequences share."""
    n = min(len(a), len(b))
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


def whole_blocks(context: Sequence[int]) -> int:
    """Tokens of a context that run as whole blocks: all but its last 1..BLOCK tokens, whose last
    position predicts the continuation's first token."""
    return (len(context) - 1) // BLOCK * BLOCK


def _stacked(caches: Sequence[DynamicCache]) -> DynamicCache:
    """One cache whose rows are the given one-or-more-row caches' rows (all of one length)."""
    import torch

    out = copy.copy(caches[0])
    out.layers = []
    for parts in zip(*(c.layers for c in caches)):
        layer = copy.copy(parts[0])
        layer.keys = torch.cat([p.keys for p in parts])
        layer.values = torch.cat([p.values for p in parts])
        out.layers.append(layer)
    return out


def _row(cache: DynamicCache, r: int) -> DynamicCache:
    """Row r of a cache, as a cache of its own (views: nothing is copied)."""
    out = copy.copy(cache)
    out.layers = []
    for layer in cache.layers:
        mine = copy.copy(layer)
        mine.keys, mine.values = layer.keys[r : r + 1], layer.values[r : r + 1]
        out.layers.append(mine)
    return out


def _layered(cache: object) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(getattr(layer, "keys", None) is not None for layer in layers or ())


def loglikelihood(lm: HFLM, requests: list[tuple[str, str]]) -> list[tuple[float, bool]] | None:
    """lm-eval's answer per request, ``(log P(continuation | context), is_greedy)``, or None where
    lm-eval's own code must answer (an empty context, which lm-eval encodes its own way, a request
    longer than the model takes, or a model whose cache is not a list of key/value layers).

    Each request is a job: its context and its continuation but the last token, run in blocks of
    ``BLOCK`` tokens at fixed positions, the last block padded on the right to ``BLOCK`` (causal
    attention: the padding changes nothing before it). Blocks of the context that end before its
    last 1..BLOCK tokens are the same for every job of that context, and for every context with
    those tokens, and run once. Jobs go in groups of ``GROUP * batch_size`` contexts (in token order); a
    group runs level by level, every row of a level one block wide on a cache of one length, so a
    row's numbers depend on its own tokens only. The caches of the blocks the next contexts share
    are kept from one group to the next (the ``stack``)."""
    import torch
    import torch.nn.functional as F

    if not requests or any(not c for c, _ in requests):
        return None
    pairs = encode(lm, requests)
    if any(len(c) + len(x) > lm.max_length for c, x in pairs):
        return None
    model, device = lm.model, lm.device
    try:  # the transformer without its output layer, which runs below on rows of fixed count
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if decoder is None or head is None:
        return None
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    group_size = GROUP * (int(lm.batch_size) if str(lm.batch_size).isdigit() else 8)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    by_context: dict[tuple, list[int]] = {}  # each distinct context's blocks run once
    for i, (context, _) in enumerate(pairs):
        by_context.setdefault(tuple(context), []).append(i)
    contexts = sorted(by_context)  # token order: contexts that share blocks are neighbours
    # ahead[k]: the whole blocks context k shares with context k + 1; smaller[k]: the next context
    # after k whose share is smaller (so a context's shares with all later ones are a short chain)
    ahead = [common(a, b) // BLOCK * BLOCK for a, b in zip(contexts, contexts[1:])] + [0]
    smaller, pending = [len(ahead)] * len(ahead), list[int]()
    for k, v in enumerate(ahead):
        while pending and ahead[pending[-1]] > v:
            smaller[pending.pop()] = k
        pending.append(k)
    out: list[float] = [0.0] * len(pairs)
    greedy: list[bool] = [True] * len(pairs)
    stack: list[tuple[int, object]] = []  # (block end, cache) along `path`, shallowest first
    path: tuple = ()
    dtype = getattr(lm, "mixed_precision_dtype", None)  # as lm-eval's _model_call
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None)

    with torch.no_grad(), autocast:
        for g in range(0, len(contexts), group_size):
            group = range(g, min(g + group_size, len(contexts)))
            jobs = []  # (start, padded tokens, {absolute position: [(request, target token)]})
            for n in group:
                ctx = contexts[n]
                full = whole_blocks(ctx)
                reach = min(common(ctx, path), full)
                start = max((end for end, _ in stack if end <= reach), default=0)
                # one row per continuation that is no other's prefix: the shorter ones read its row
                # (causal attention: the positions after a token change nothing at it)
                remainders: dict[tuple, list[int]] = {}
                for i in sorted(by_context[ctx], key=lambda i: -len(pairs[i][1])):
                    stem = tuple(pairs[i][1][:-1])
                    reader = next((r for r in remainders if r[: len(stem)] == stem), stem)
                    remainders.setdefault(reader, []).append(i)
                for rest, requests_here in sorted(remainders.items()):
                    seq = list(ctx) + list(rest)
                    seq += [pad] * (-(len(seq) - full) % BLOCK)
                    targets: dict[int, list] = {}
                    for i in requests_here:
                        for step, token in enumerate(pairs[i][1]):
                            targets.setdefault(len(ctx) - 1 + step, []).append((i, token))
                    jobs.append((start, seq, targets))
            # the last context's blocks that later contexts share stay for the next group
            last = contexts[group[-1]]
            last_full, keep, k = whole_blocks(last), set(), group[-1]
            while k < len(ahead) and min(ahead[k], last_full) > 0:
                keep.add(min(ahead[k], last_full))
                k = smaller[k]
            kept = [(end, cache) for end, cache in stack if end in keep and end <= common(last, path)]
            cached = dict(stack)
            level: dict[tuple, object] = {}  # block key -> cache after that block, for the level just run
            for end in range(min(j[0] for j in jobs) + BLOCK, max(len(j[1]) for j in jobs) + 1, BLOCK):
                rows: dict[tuple, int] = {}
                parents: list = []
                wanted: list = []
                for start, seq, targets in jobs:
                    if not start < end <= len(seq):
                        continue
                    key = tuple(seq[:end])
                    if key not in rows:
                        rows[key] = len(rows)
                        parents.append(cached[start] if end - BLOCK == start and start else level.get(tuple(seq[: end - BLOCK])))
                    wanted += [(rows[key], p, hits) for p, hits in targets.items() if end - BLOCK <= p < end]
                if not rows:
                    continue
                ids = torch.tensor([list(key[end - BLOCK :]) for key in rows], device=device)
                past = _stacked(parents) if end > BLOCK else None
                result = decoder(ids, past_key_values=past, use_cache=True)
                if not _layered(result.past_key_values):
                    return None
                if wanted:
                    hidden = result.last_hidden_state
                    picked = torch.stack([hidden[row, p - (end - BLOCK)] for row, p, _ in wanted])
                    for first in range(0, len(wanted), HEAD_ROWS):
                        # the output layer on exactly HEAD_ROWS rows (zeros fill the last group): a row's
                        # numbers would otherwise depend on how many rows share the multiplication
                        part = picked[first : first + HEAD_ROWS]
                        part = torch.cat([part, part.new_zeros(HEAD_ROWS - len(part), part.shape[1])])
                        logits = head(part).float()
                        if cap:  # Gemma-style soft-capping, as the model's own forward applies it
                            logits = torch.tanh(logits / cap) * cap
                        for (_at, _p, hits), values in zip(wanted[first : first + HEAD_ROWS], logits):
                            logp = F.log_softmax(values, dim=-1)
                            best = int(logp.argmax())
                            for i, token in hits:
                                out[i] += float(logp[token])
                                greedy[i] = greedy[i] and best == token
                level = {key: _row(result.past_key_values, r) for key, r in rows.items()}
                if end in keep and tuple(last[:end]) in level:
                    kept.append((end, level[tuple(last[:end])]))
            stack, path = sorted(dict(kept).items()), last
    return list(zip(out, greedy))
