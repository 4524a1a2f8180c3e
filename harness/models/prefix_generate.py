"""Sampling for lm-eval's ``hf`` models with a shared few-shot head and continuous batching
(``hf-prefix``'s ``generate_until``, :mod:`.hf_prefix`).

lm-eval's ``hf`` ``generate_until`` runs every request's whole context through the
model, and runs each batch until its *longest* member stops. gapbench's generation
and CoT-verification requests all start with the same few-shot examples, and small
models' answers vary from a few tokens to the token limit, so on a CPU most of that
work is repeated prefill and padding rows. Here:

- the token prefix shared by all of a call's contexts runs once; its key/value cache
  is copied into every row;
- then each distinct context's own tokens run once (a prompt's n samples, the m
  verifications of one sample share one context), and that cache is copied into the rows
  of its requests; it is kept only until its last request has a row, so memory stays
  bounded by the batch, not by the number of prompts;
- up to ``batch_size`` rows decode together; a row that stops (a stop sequence, the
  end-of-sequence token, or ``max_gen_toks``) leaves the batch at once and waiting
  requests take its place (continuous batching); the gaps this leaves in the cache
  are masked out and cut away as they grow.

The result of each request follows lm-eval exactly: the same tokenisation and left
truncation (``tok_batch_encode``), the same stop sequences (the request's ``until``
plus the end-of-sequence string), the same ``max_gen_toks``, the same decoding and
cut at the first stop sequence (``postprocess_generated_text``). Greedy decoding gives
lm-eval's tokens up to float rounding (a test checks equal strings); sampling uses the
warpers of Hugging Face ``generate`` in its order (temperature, top-k from the model's
generation config or 50, top-p), so the distribution is the same, though the random
draws differ from lm-eval's padded batches. ``benchmarks/generate_prefix.py`` measures
the speed-up. ``GAPBENCH_PREFIX_CACHE=0`` turns this path off with the loglikelihood one;
``batch_size=auto`` also leaves generation to lm-eval, which sizes batches to the GPU.
"""

from __future__ import annotations

import collections
import copy
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gapbench.harness.models import prefix_cache

if TYPE_CHECKING:
    from lm_eval.models.huggingface import HFLM
    from transformers import LogitsProcessorList

# Settings of a model's generation config under which generate() would change the
# distribution beyond temperature/top-k/top-p: such models go through lm-eval.
_NEUTRAL = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "min_p": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "sequence_bias": (None,),
    "num_beams": (None, 1),
}
_ALLOWED_KWARGS = {"do_sample", "temperature", "top_p", "top_k"}
COMPACT_AT = 16  # cut masked cache columns once every row has this many


def generate(lm: HFLM, requests: list[tuple[str, dict]], progress: Callable[[int], None] | None = None, share: bool = True) -> list[str] | None:
    """One continuation per (context, gen_kwargs), or None when this path does not apply
    (another backend, a model whose generation config or cache this loop does not cover,
    or generation settings beyond until/max_gen_toks/do_sample/temperature/top_p/top_k).
    ``progress(k)``, when given, is called as requests finish (k of them at a time).
    ``share=False`` prefills every request's own tokens separately even where contexts are equal
    (the path before contexts were shared, kept for ``benchmarks/ceiling.py`` and the tests)."""
    if not requests or not prefix_cache.supported(lm) or not _model_ok(lm):
        return None
    if not str(lm.batch_size).isdigit():  # batch_size=auto: lm-eval sizes its batches to the GPU's memory
        return None
    if isinstance(getattr(lm, "think_end_token", None), int):  # lm-eval cuts at a thinking token id
        return None
    groups: dict[str, list[int]] = {}
    for i, (_, kwargs) in enumerate(requests):
        groups.setdefault(json.dumps(without_seed(kwargs), sort_keys=True, default=str), []).append(i)
    # every group's settings are read before any generation, so a fallback wastes no work
    plans = [(idx, _settings(lm, without_seed(requests[idx[0]][1]))) for idx in groups.values()]
    ready = [(idx, settings) for idx, settings in plans if settings is not None]
    if len(ready) < len(plans):
        return None
    out: list[str | None] = [None] * len(requests)
    for idx, settings in ready:
        seeds = [requests[i][1].get(SEED) for i in idx]
        texts = _generate_group(lm, [requests[i][0] for i in idx], settings, progress, seeds, share)
        if texts is None:
            return None
        for i, t in zip(idx, texts):
            out[i] = t
    return _answered(out)


def _answered(out: list[str | None]) -> list[str]:
    """Every request's text, once each has one."""
    done = [t for t in out if t is not None]
    if len(done) != len(out):
        raise RuntimeError(f"shared-prefix generation left {len(out) - len(done)} of {len(out)} requests without a continuation")
    return done


SEED = "seed"  # a request's own seed in its gen_kwargs: its sampled tokens depend on nothing else


def without_seed(gen_kwargs: dict) -> dict:
    return {k: v for k, v in gen_kwargs.items() if k != SEED}


def _model_ok(lm: HFLM) -> bool:
    model = lm.model
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "is_encoder_decoder", False):
        return False
    return all(getattr(config, key, None) in ok for key, ok in _NEUTRAL.items())


def _settings(lm: HFLM, gen_kwargs: dict) -> tuple[list[str], int, bool, LogitsProcessorList | None] | None:
    """lm-eval's own reading of gen_kwargs: (until, max_gen_toks, do_sample, warpers), or None for
    settings this loop does not cover (other kwargs, or no room for the context)."""
    from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs

    kwargs = normalize_gen_kwargs(dict(gen_kwargs), lm.max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=lm.tok_decode(lm.eot_token_id, skip_special_tokens=False))
    max_gen_toks = int(kwargs.pop("max_gen_toks"))
    if set(kwargs) - _ALLOWED_KWARGS or lm.max_length - max_gen_toks <= 0:
        return None
    temperature = float(kwargs.get("temperature") or 0.0)
    do_sample = kwargs.get("do_sample")
    if do_sample is None:
        do_sample = temperature > 0
    warpers = _warpers(lm, temperature, kwargs.get("top_p"), kwargs.get("top_k")) if do_sample else None
    return until, max_gen_toks, bool(do_sample), warpers


def _warpers(lm: HFLM, temperature: float, top_p: float | None, top_k: int | None) -> LogitsProcessorList:
    """The logits warpers of Hugging Face ``generate`` for these settings, in its order."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    config = lm.model.generation_config
    if top_k is None:
        top_k = config.top_k if config.top_k is not None else 50
    if top_p is None:
        top_p = config.top_p if config.top_p is not None else 1.0
    if not temperature:
        temperature = config.temperature if config.temperature is not None else 1.0
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(float(temperature)))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k=int(top_k), min_tokens_to_keep=1))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=float(top_p), min_tokens_to_keep=1))
    return warpers


def _eos_ids(lm: HFLM) -> set[int]:
    ids = {int(lm.eot_token_id)}
    config_eos = lm.model.generation_config.eos_token_id
    if config_eos is not None:
        ids |= {int(x) for x in (config_eos if isinstance(config_eos, (list, tuple)) else [config_eos])}
    return ids


def _encode(lm: HFLM, contexts: list[str], max_ctx_len: int) -> list[list[int]]:
    out = []
    for c in contexts:
        ids, mask = lm.tok_batch_encode([c], left_truncate_len=max_ctx_len, truncation=lm.truncation)
        out.append([int(t) for t, m in zip(ids[0].tolist(), mask[0].tolist()) if m])
    return out


class _Batch:
    """The rows decoding together: one DynamicCache (rows x heads x T x dim per layer),
    a (rows x T) attention mask with 0 on gaps, each row's next position and next-token logits.
    Columns [0, P) hold the shared prefix in every row."""

    def __init__(self, prefix_len: int):
        self.P = prefix_len
        # torch's DynamicCache and tensors, once the first rows are prefilled (torch is imported lazily)
        self.cache: Any = None
        self.mask: Any = None
        self.pos: Any = None
        self.logits: Any = None
        self.rows: list[int] = []  # request index per row

    def __len__(self) -> int:
        return len(self.rows)

    def width(self) -> int:
        return 0 if self.mask is None else self.mask.shape[1]

    def _layers(self) -> list:
        return self.cache.layers

    def widen(self, width: int) -> None:
        """Insert masked columns right after the prefix until the cache is ``width`` wide."""
        import torch

        extra = width - self.width()
        if extra <= 0 or not self.rows:
            return
        P = self.P
        for layer in self._layers():
            for name in ("keys", "values"):
                t = getattr(layer, name)
                pad = t.new_zeros(t.shape[0], t.shape[1], extra, t.shape[3])
                setattr(layer, name, torch.cat([t[:, :, :P], pad, t[:, :, P:]], dim=2))
        pad = self.mask.new_zeros(self.mask.shape[0], extra)
        self.mask = torch.cat([self.mask[:, :P], pad, self.mask[:, P:]], dim=1)

    def merge(self, other: _Batch) -> None:
        import torch

        if not self.rows:
            self.cache, self.mask, self.pos, self.logits, self.rows = other.cache, other.mask, other.pos, other.logits, list(other.rows)
            return
        width = max(self.width(), other.width())
        self.widen(width)
        other.widen(width)
        for mine, theirs in zip(self._layers(), other._layers()):
            mine.keys = torch.cat([mine.keys, theirs.keys], dim=0)
            mine.values = torch.cat([mine.values, theirs.values], dim=0)
        self.mask = torch.cat([self.mask, other.mask], dim=0)
        self.pos = torch.cat([self.pos, other.pos], dim=0)
        self.logits = torch.cat([self.logits, other.logits], dim=0)
        self.rows += other.rows

    def take(self, rows: list[int]) -> _Batch:
        """A new batch of these row positions (a position may repeat: its cache is copied); this one is unchanged."""
        import torch
        from transformers.cache_utils import DynamicCache

        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        b = _Batch(self.P)
        b.cache = DynamicCache([(layer.keys[index], layer.values[index]) for layer in self._layers()])
        b.mask, b.pos, b.logits, b.rows = self.mask[index], self.pos[index], self.logits[index], [self.rows[r] for r in rows]
        return b

    def keep(self, keep: list[int]) -> None:
        """Keep only these row positions."""
        import torch

        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[k] for k in keep]
        if not keep:
            self.cache = self.mask = self.pos = self.logits = None
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.pos, self.logits = self.mask[index], self.pos[index], self.logits[index]

    def compact(self) -> None:
        """Cut the columns after the prefix that every row masks."""
        import torch

        if not self.rows:
            return
        P = self.P
        body = self.mask[:, P:]
        live = body.any(dim=0).nonzero()
        gap = int(live[0]) if len(live) else body.shape[1]
        if gap < COMPACT_AT:
            return
        for layer in self._layers():
            layer.keys = torch.cat([layer.keys[:, :, :P], layer.keys[:, :, P + gap :]], dim=2)
            layer.values = torch.cat([layer.values[:, :, :P], layer.values[:, :, P + gap :]], dim=2)
        self.mask = torch.cat([self.mask[:, :P], self.mask[:, P + gap :]], dim=1)


def _generate_group(lm: HFLM, contexts: list[str], settings: tuple, progress: Callable[[int], None] | None = None, seeds: list[int | None] | None = None, share: bool = True) -> list[str] | None:
    """Generate for contexts of one settings group. A context with a seed (``seeds[i]``) samples from
    its own ``torch.Generator``, so its tokens do not depend on the batch, the chunking or on how
    many requests ran before it; one without samples from torch's global generator. Requests with
    the same context share its prefill (``share=False``: each request prefills its own copy)."""
    import torch
    from lm_eval.models.utils import postprocess_generated_text

    until, max_gen_toks, do_sample, warpers = settings
    encoded = _encode(lm, contexts, lm.max_length - max_gen_toks)
    if any(not e for e in encoded):
        return None
    P = prefix_cache.shared_prefix([(e, []) for e in encoded])
    model, device = lm.model, lm.device
    batch_size = max(1, int(lm.batch_size))
    eos = _eos_ids(lm)
    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    think = lm.think_end_token if isinstance(getattr(lm, "think_end_token", None), str) else None
    autocast = torch.autocast(device_type=device.type, dtype=lm.mixed_precision_dtype, enabled=lm.mixed_precision_dtype is not None)

    generated: dict[int, list[int]] = {}
    generators: dict[int, torch.Generator] = {}
    # the first request of each distinct context, and how many of its requests wait for a row
    first_of: dict[tuple, int] = {}
    first = [first_of.setdefault(tuple(e), i) if share else i for i, e in enumerate(encoded)]
    waiting = collections.Counter(first)
    results: list[str | None] = [None] * len(contexts)
    with torch.no_grad(), autocast:
        head = None
        if P > 0:
            head = model(torch.tensor([encoded[0][:P]], device=device), use_cache=True, **prefix_cache.last_logits_only(model)).past_key_values
            if not _plain_cache(head):
                return None

        def prefill(firsts: list[int]) -> _Batch:
            """Run these requests' own tokens (left-padded) on top of the shared prefix: one row each."""
            rests = [encoded[i][P:] for i in firsts]
            S = max(len(r) for r in rests)
            ids = torch.full((len(firsts), S), pad_id, dtype=torch.long, device=device)
            mask = torch.zeros((len(firsts), P + S), dtype=torch.long, device=device)
            mask[:, :P] = 1
            positions = torch.zeros((len(firsts), S), dtype=torch.long, device=device)
            for row, r in enumerate(rests):
                ids[row, S - len(r) :] = torch.tensor(r, device=device)
                mask[row, P + S - len(r) :] = 1
                positions[row, S - len(r) :] = torch.arange(P, P + len(r), device=device)
            if head is not None:
                past = copy.deepcopy(head)
                past.batch_repeat_interleave(len(firsts))
            else:
                past = None
            # left-padded: every row's last token is the last column, the only logits read
            out = model(ids, attention_mask=mask, past_key_values=past, position_ids=positions, use_cache=True, **prefix_cache.last_logits_only(model))
            if not _plain_cache(out.past_key_values):
                raise _Unsupported
            b = _Batch(P)
            b.cache, b.mask, b.logits, b.rows = out.past_key_values, mask, out.logits[:, -1, :].float(), list(firsts)
            b.pos = torch.tensor([len(encoded[i]) for i in firsts], dtype=torch.long, device=device)
            return b

        # the contexts prefilled whose requests are not all admitted yet: one row per context
        # (rows = the context's first request index); a context leaves once its last request is admitted
        ready = _Batch(P)

        def admit(indices: list[int]) -> _Batch:
            """Rows for these requests: each distinct context is prefilled once (or taken from ``ready``)
            and its cache copied into the rows of its requests."""
            fresh = list(dict.fromkeys(first[i] for i in indices if first[i] not in ready.rows))
            if fresh:
                ready.merge(prefill(fresh))
            b = ready.take([ready.rows.index(first[i]) for i in indices])
            b.rows = list(indices)
            for i in indices:
                waiting[first[i]] -= 1
                generated[i] = []
                seed = seeds[i] if seeds else None
                if do_sample and seed is not None:
                    generators[i] = torch.Generator(device=device).manual_seed(int(seed))
            ready.keep([row for row, c in enumerate(ready.rows) if waiting[c] > 0])
            return b

        # longest contexts first, as lm-eval orders them; a context's requests stay together
        queue = sorted(range(len(contexts)), key=lambda i: (-len(encoded[i]), first[i]))
        batch = _Batch(P)
        try:
            while queue or batch.rows:
                free = batch_size - len(batch)
                if queue and (free >= max(1, batch_size // 4) or len(queue) <= free or not batch.rows):
                    take, queue = queue[:free], queue[free:]
                    batch.merge(admit(take))
                logits = batch.logits
                if do_sample:
                    probs = torch.softmax(warpers(None, logits), dim=-1)
                    if generators:  # each row draws from its own request's generator
                        tokens = torch.cat(
                            [torch.multinomial(probs[r : r + 1], num_samples=1, generator=generators.get(i)) for r, i in enumerate(batch.rows)]
                        ).squeeze(1)
                    else:
                        tokens = torch.multinomial(probs, num_samples=1).squeeze(1)
                else:
                    tokens = logits.argmax(dim=-1)
                keep = []
                for row, (i, t) in enumerate(zip(batch.rows, tokens.tolist())):
                    toks = generated[i]
                    toks.append(int(t))
                    text = lm.tok_decode(toks)
                    if int(t) in eos or len(toks) >= max_gen_toks or any(s and s in text for s in until):
                        results[i] = postprocess_generated_text(generation=text, stop=until, think_end_token=think)
                    else:
                        keep.append(row)
                if progress is not None and len(keep) != len(batch.rows):
                    progress(len(batch.rows) - len(keep))
                keep_tokens = tokens[keep] if len(keep) != len(batch.rows) else tokens
                batch.keep(keep)
                if not batch.rows:
                    continue
                batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch), 1)], dim=1)
                out = model(
                    keep_tokens.view(-1, 1).to(device),
                    attention_mask=batch.mask,
                    past_key_values=batch.cache,
                    position_ids=batch.pos.view(-1, 1),
                    use_cache=True,
                )
                batch.cache = out.past_key_values
                batch.logits = out.logits[:, -1, :].float()
                batch.pos = batch.pos + 1
                batch.compact()
        except _Unsupported:
            return None
    return _answered(results)


class _Unsupported(Exception):
    pass


def _plain_cache(cache: object) -> bool:
    """A DynamicCache of plain (full-attention) layers: the only kind the row surgery above handles."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)
