"""llama.cpp in process, with parallel sequences: ``--engine llama.cpp-batched`` (the default
engine of the Qwen2.5-Coder models, measured fastest on a CPU by ``benchmarks/engines.py``).

llama.cpp's library (through llama-cpp-python's bindings, ``pip install 'gapbench[llamacpp]'``)
reads a GGUF file as it is: the 1.5B model's 1.1 GB of Q4_K_M weights, where transformers needs
6 GB of float32. lm-eval's ``generate_until`` and ``loglikelihood`` are served here by request
shaping on top of ``llama_decode``, no new kernels:

- **Generation** runs up to ``slots`` sequences at once, each step one ``llama_decode`` of one
  token per running sequence (continuous batching: a sequence that stops frees its slot for the
  next prompt's samples). The few-shot head that every prompt of a call shares is prefilled once
  into a sequence of its own and copied (``llama_memory_seq_cp``, no compute) to each sample; the
  rest of a prompt is prefilled once, its tokens assigned to all n of its samples' sequences.
  Each sample draws its tokens with its own generator, seeded from the request's ``seed``
  (:func:`harness.runner.seeded`): temperature, then top-k (50 where the request names none, as
  Hugging Face's default), then top-p, as Hugging Face's warpers. Stops at the request's ``until``
  strings (the text is cut at the first one, as lm-eval does), at the model's end-of-generation
  tokens, or after ``max_gen_toks`` tokens.
- **Log-likelihood** (MC and tournament verification) keeps one sequence's cache between
  requests, sorted so that requests sharing a prefix follow each other: each request computes
  only the tokens after the prefix it shares with the one before (the few-shot head and a sample's
  question and response cost once, " Correct" after " Incorrect" costs one token).

Numbers depend on how a call's tokens were grouped into ``llama_decode`` batches (llama.cpp's
CPU kernels round differently for other batch shapes), as on any batching engine: a resumed run
draws the same seeds but, where a logit is within rounding of a top-p cut, not always the same
tokens. Model arguments: ``gguf`` (the file), ``tokenizer`` (a Hugging Face tokenizer folder;
default: the GGUF's own, read with transformers), ``slots`` (parallel sequences, default 16),
``n_ctx`` (cache cells shared by all sequences, default 16384), ``n_batch`` (tokens per
``llama_decode``, default 512), ``n_threads`` (default: the process's CPU count).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from gapbench.harness.errors import GapbenchError

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance
    from tqdm import tqdm

T = TypeVar("T")

NAME = "gapbench-llama.cpp-batched"
DEFAULT_TOP_K = 50  # Hugging Face's generation default, which the transformers path applies too
# llama.cpp's CPU matrix products take another path for batches under 64 tokens (activations rounded to
# 8 bits): measured on SmolLM2's Q4_1 GGUF, the same continuation's log-probability moved by up to 0.31
# nats with the size of the last batch below 64, and not at all (0.0) from 64 tokens up
MIN_CHUNK = 64


def _import_llama() -> ModuleType:
    try:
        import llama_cpp
    except ImportError:
        raise GapbenchError(
            "the llama.cpp engine needs llama-cpp-python: pip install 'gapbench[llamacpp]' "
            '(it builds from source; CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" for a portable build), or run the model on --engine transformers.'
        ) from None
    return llama_cpp


@dataclass
class _Sample:
    """One running sequence: a generation request being answered."""

    index: int  # the request's position in the call
    seq: int  # its llama.cpp sequence id
    pos: int  # the position of its next token
    settings: dict
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    text: str = ""


def sample_token(logits: np.ndarray, settings: dict, rng: np.random.Generator) -> int:
    """A token from one row of logits: greedy without sampling, else temperature, top-k, top-p
    (Hugging Face's warpers, in their order) and one uniform draw of ``rng``."""
    if not settings["do_sample"]:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / settings["temperature"]
    k = settings["top_k"]
    if k and k < scaled.shape[0]:
        keep = np.argpartition(-scaled, k - 1)[:k]
    else:
        keep = np.arange(scaled.shape[0])
    order = keep[np.argsort(-scaled[keep], kind="stable")]
    probs = np.exp(scaled[order] - scaled[order[0]])
    probs /= probs.sum()
    top_p = settings["top_p"]
    if top_p < 1.0:
        # keep the smallest head whose mass reaches top_p (at least one token), as TopPLogitsWarper
        cut = int(np.searchsorted(np.cumsum(probs), top_p) + 1)
        probs = probs[:cut] / probs[:cut].sum()
        order = order[:cut]
    draw = rng.random()
    return int(order[min(int(np.searchsorted(np.cumsum(probs), draw, side="right")), len(order) - 1)])


def request_settings(kwargs: dict) -> dict:
    """A generation request's sampling settings, with lm-eval's defaults."""
    until = kwargs.get("until") or []
    if isinstance(until, str):
        until = [until]
    temperature = float(kwargs.get("temperature") or 0.0)
    do_sample = kwargs.get("do_sample")
    do_sample = temperature > 0 if do_sample is None else bool(do_sample) and temperature > 0
    top_k = kwargs.get("top_k")
    return {
        "until": [u for u in until if u],
        "max_gen_toks": int(kwargs.get("max_gen_toks") or 256),
        "do_sample": do_sample,
        "temperature": temperature or 1.0,
        "top_p": float(kwargs["top_p"]) if kwargs.get("top_p") is not None else 1.0,
        "top_k": DEFAULT_TOP_K if top_k is None else int(top_k),
        "seed": kwargs.get("seed"),
    }


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@register_model(NAME)
class LlamaCppBatchedLM(LM):
    takes_seed = True  # a per-request seed in gen_kwargs makes that request's draw its own (backends.takes_seed)

    def __init__(self, gguf: str | None = None, tokenizer: str | None = None, slots: int = 16, n_ctx: int = 16384, n_batch: int = 512, n_threads: int | None = None, **kwargs: Any) -> None:
        super().__init__()
        for ignored in ("device", "pretrained", "dtype", "batch_size", "max_batch_size", "parallelize", "max_length"):
            kwargs.pop(ignored, None)
        if kwargs:
            raise GapbenchError(f"the llama.cpp-batched engine takes no model argument {', '.join(sorted(kwargs))} (it takes gguf, tokenizer, slots, n_ctx, n_batch, n_threads).")
        if not gguf or not Path(gguf).is_file():
            raise GapbenchError(f"--model {gguf}: no such GGUF file.")
        self.L = L = _import_llama()
        self.gguf = Path(gguf)
        self.slots, self.n_ctx, self.n_batch = int(slots), int(n_ctx), int(n_batch)
        self.n_threads = int(n_threads) if n_threads else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer) if tokenizer else AutoTokenizer.from_pretrained(str(self.gguf.parent), gguf_file=self.gguf.name)
        L.llama_backend_init()
        L.llama_log_set(_silent, ctypes.c_void_p(0))
        mparams = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(str(self.gguf).encode(), mparams)
        if not self.model:
            raise GapbenchError(f"llama.cpp could not load {self.gguf} (is it a GGUF file of a model llama.cpp knows?).")
        cparams = L.llama_context_default_params()
        cparams.n_ctx = self.n_ctx
        cparams.n_batch = cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = self.slots + 1  # the samples' sequences and the shared head's
        cparams.kv_unified = True  # one cache: a shared token is stored once for all its sequences
        cparams.n_threads = cparams.n_threads_batch = self.n_threads
        self.ctx = L.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise GapbenchError(f"llama.cpp could not make a context of {self.n_ctx} cells for {self.gguf.name}: lower n_ctx or slots in --model-args.")
        self.mem = L.llama_get_memory(self.ctx)
        vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(vocab)
        self.eog = {t for t in range(self.n_vocab) if L.llama_vocab_is_eog(vocab, t)}  # end-of-generation tokens (<|im_end|>, ...)
        self.batch = L.llama_batch_init(self.n_batch, 0, self.slots + 1)
        self._cached: list[int] = []  # the tokens in sequence 0 (loglikelihood)
        self._rows: dict[int, np.ndarray] = {}  # logits rows of the last loglikelihood pass, by position

    # ---- lm-eval's LM interface -------------------------------------------------------------------

    @property
    def tokenizer_name(self) -> str:
        return getattr(self.tokenizer, "name_or_path", str(self.gguf)).replace("/", "__")

    def tok_encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise GapbenchError("the llama.cpp-batched engine gives no rolling log-likelihood (gapbench does not ask for one).")

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [self._encode_pair(*r.args) for r in requests]
        order = sorted(range(len(pairs)), key=lambda i: pairs[i][0] + pairs[i][1])
        out: list[tuple[float, bool] | None] = [None] * len(pairs)
        L = self.L
        for i in self._progress(order, disable_tqdm, "loglikelihood"):
            context, continuation = pairs[i]
            whole = context + continuation
            if len(whole) > self.n_ctx:
                raise GapbenchError(f"a loglikelihood request of {len(whole)} tokens does not fit llama.cpp's context of {self.n_ctx}: raise n_ctx in --model-args.")
            first = len(context) - 1  # the position whose logits predict the continuation's first token
            needed = range(first, len(whole) - 1)
            shared = common_prefix(self._cached, whole)
            if all(p < shared and p in self._rows for p in needed):  # " Incorrect" after " Correct": the same row
                rows = np.stack([self._rows[p] for p in needed])
            else:
                # every llama_decode of at least MIN_CHUNK tokens: below that llama.cpp's CPU kernels take
                # another path (8-bit activations), whose numbers move with how a call was split
                start = max(0, min(shared, first, len(whole) - 1 - MIN_CHUNK))
                L.llama_memory_seq_rm(self.mem, 0, start, -1)
                rows = self._prefill([(t, start + j, (0,), start + j >= first) for j, t in enumerate(whole[start:-1])])
                self._cached = whole[:-1]
                self._rows = dict(zip(needed, rows))
            logp = _log_softmax(rows)
            targets = np.asarray(continuation)
            picked = logp[np.arange(len(continuation)), targets]
            greedy = bool((logp.argmax(axis=-1) == targets).all())
            out[i] = (float(picked.sum()), greedy)
        done = [x for x in out if x is not None]
        if len(done) != len(out):
            raise RuntimeError(f"llama.cpp-batched left {len(out) - len(done)} of {len(out)} requests without a log-likelihood")
        return done

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        L = self.L
        L.llama_memory_clear(self.mem, True)
        self._cached, self._rows = [], {}
        reqs = [(ctx, request_settings(kw)) for ctx, kw in (r.args for r in requests)]
        if not reqs:
            return []
        # a prompt's samples share its prefill: group the requests by context, in the call's order
        groups: dict[str, list[int]] = {}
        for i, (ctx, _) in enumerate(reqs):
            groups.setdefault(ctx, []).append(i)
        encoded = {ctx: self.tok_encode(ctx) for ctx in groups}
        queue = list(groups.items())
        head = self._shared_head(list(encoded.values()))
        head_seq = self.slots
        if head:
            self._prefill([(t, j, (head_seq,), False) for j, t in enumerate(head)])
        results: list[str | None] = [None] * len(reqs)
        free = list(range(self.slots))
        running: list[_Sample] = []
        used = len(head)  # cache cells in use (shared tokens counted once)
        reserved: dict[int, int] = {}  # seq -> cells reserved for it
        bar = self._bar(len(reqs), disable_tqdm, "generate")
        while queue or running:
            # admit prompts while their samples fit the free slots and the cache
            while queue:
                ctx, idx = queue[0]
                tokens = encoded[ctx]
                if len(idx) > self.slots:  # more samples than slots: admit them in parts
                    queue[0] = (ctx, idx[self.slots :])
                    queue.insert(0, (ctx, idx[: self.slots]))
                    continue
                # the prompt's own tokens in one batch of at least MIN_CHUNK (the head's last ones again
                # where it is shorter), so its numbers are those of the whole prompt computed at once
                start = max(0, min(len(head), len(tokens) - MIN_CHUNK))
                cells = [reqs[i][1]["max_gen_toks"] + -(-(len(tokens) - start) // len(idx)) for i in idx]  # per sample
                if len(idx) > len(free) or used + sum(cells) > self.n_ctx:
                    if not running and len(idx) <= len(free):
                        raise GapbenchError(f"a prompt of {len(tokens)} tokens with {len(idx)} samples does not fit llama.cpp's context of {self.n_ctx} cells: raise n_ctx in --model-args.")
                    break
                queue.pop(0)
                seqs = [free.pop(0) for _ in idx]
                for s, n_cells in zip(seqs, cells):
                    if start:
                        L.llama_memory_seq_cp(self.mem, head_seq, s, 0, start)
                    reserved[s] = n_cells
                used += sum(cells)
                row = self._prefill([(t, start + j, tuple(seqs), start + j == len(tokens) - 1) for j, t in enumerate(tokens[start:])])[-1]
                for i, s in zip(idx, seqs):
                    settings = reqs[i][1]
                    sample = _Sample(i, s, len(tokens), settings, np.random.default_rng(_seed(settings["seed"], ctx)))
                    running.append(sample)
                    self._advance(sample, row)
            # retire the finished, step the rest
            still = []
            for sample in running:
                if self._finished(sample):
                    results[sample.index] = self._cut(sample)
                    L.llama_memory_seq_rm(self.mem, sample.seq, -1, -1)
                    free.append(sample.seq)
                    used -= reserved.pop(sample.seq, 0)
                    bar.update(1)
                else:
                    still.append(sample)
            running = still
            if running:
                rows = self._prefill([(s.tokens[-1], s.pos - 1, (s.seq,), True) for s in running])
                for sample, row in zip(running, rows):
                    self._advance(sample, row)
        bar.close()
        L.llama_memory_clear(self.mem, True)
        texts = [t for t in results if t is not None]
        if len(texts) != len(results):
            raise RuntimeError(f"llama.cpp-batched left {len(results) - len(texts)} of {len(results)} requests without a continuation")
        return texts

    # ---- internals ----------------------------------------------------------------------------------

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing spaces of the context move to the continuation; the whole is
        encoded, and the continuation is what follows the context's own encoding."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        whole = self.tok_encode(context + continuation)
        ctx = self.tok_encode(context)
        return whole[: len(ctx)], whole[len(ctx) :]

    def _shared_head(self, prompts: list[list[int]]) -> list[int]:
        """The tokens every prompt of a call starts with (less one, so each prompt has a token of its
        own to read its logits from); none for a single prompt or a short head."""
        if len(prompts) < 2:
            return []
        n = min(len(p) for p in prompts) - 1
        first = prompts[0]
        for p in prompts[1:]:
            n = min(n, common_prefix(first, p))
        return first[:n] if n >= MIN_CHUNK else []

    def _prefill(self, items: list[tuple[int, int, tuple[int, ...], bool]]) -> np.ndarray:
        """``llama_decode`` the (token, position, sequences, wants logits) items in equal batches of at
        most ``n_batch`` (so a long list has no short last batch: see :data:`MIN_CHUNK`); the logits
        rows of those that want them, in order."""
        L, b = self.L, self.batch
        rows = []
        parts = max(1, -(-len(items) // self.n_batch))
        size = max(1, -(-len(items) // parts))
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            b.n_tokens = len(chunk)
            wanted = 0
            for j, (token, pos, seqs, logits) in enumerate(chunk):
                b.token[j] = token
                b.pos[j] = pos
                b.n_seq_id[j] = len(seqs)
                for k, s in enumerate(seqs):
                    b.seq_id[j][k] = s
                b.logits[j] = 1 if logits else 0
                wanted += bool(logits)
            code = L.llama_decode(self.ctx, b)
            if code != 0:
                raise GapbenchError(f"llama.cpp's llama_decode failed (code {code}; 1 means the cache of {self.n_ctx} cells is full: raise n_ctx in --model-args).")
            if wanted:
                ptr = L.llama_get_logits(self.ctx)
                rows.append(np.ctypeslib.as_array(ptr, shape=(wanted, self.n_vocab)).copy())
        return np.concatenate(rows) if rows else np.zeros((0, self.n_vocab), dtype=np.float32)

    def _advance(self, sample: _Sample, row: np.ndarray) -> None:
        token = sample_token(row, sample.settings, sample.rng)
        sample.tokens.append(token)
        sample.pos += 1
        if token not in self.eog:
            sample.text = self.tokenizer.decode(sample.tokens, skip_special_tokens=True)

    def _finished(self, sample: _Sample) -> bool:
        if sample.tokens and sample.tokens[-1] in self.eog:
            return True
        if len(sample.tokens) >= sample.settings["max_gen_toks"]:
            return True
        return any(u in sample.text for u in sample.settings["until"])

    def _cut(self, sample: _Sample) -> str:
        text = sample.text
        for u in sample.settings["until"]:
            text = text.split(u)[0]
        return text

    def _bar(self, total: int, disable: bool, desc: str) -> tqdm:
        from tqdm import tqdm

        return tqdm(total=total, disable=disable, desc=desc, leave=False)

    def _progress(self, items: Iterable[T], disable: bool, desc: str) -> tqdm[T]:
        from tqdm import tqdm

        return tqdm(items, disable=disable, desc=desc, leave=False)

    def close(self) -> None:
        L = getattr(self, "L", None)
        if L is None:
            return
        if getattr(self, "batch", None) is not None:
            L.llama_batch_free(self.batch)
            self.batch = None
        if getattr(self, "ctx", None):
            L.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            L.llama_model_free(self.model)
            self.model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _seed(seed: int | str | None, context: str) -> int:
    """A request's generator seed: its own, else one from its context (stable across runs)."""
    if seed is not None:
        return int(seed)
    import zlib

    return zlib.crc32(context.encode("utf-8"))


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    top = rows.max(axis=-1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=-1, keepdims=True))


def _silent_log(level: int, text: bytes, user_data: object) -> None:  # pragma: no cover - called by llama.cpp
    return None


try:  # llama.cpp prints every load step to stderr; a run's terminal shows gapbench's lines only
    import llama_cpp as _llama

    _silent = _llama.llama_log_callback(_silent_log)
except Exception:  # llama-cpp-python missing: the engine says so when it is asked for
    _silent = None
