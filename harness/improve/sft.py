"""Supervised fine-tuning on the samples a filter kept: the data set file and the training loop.

The data set (``sft.jsonl``, one JSON object a line) is in **prompt/completion** form,
because gapbench prompts base models with plain few-shot completion prompts, not chat
turns: ``prompt`` is exactly the context the sample was generated from
(``task.generation_prompt(doc)``, few-shot examples included) and ``completion`` is
the sampled response with trailing whitespace cut and the few-shot delimiter
:data:`COMPLETION_END` (``"\\n\\n"``, what separates worked examples in every gapbench
prompt) appended, so the model also learns where an answer ends (a response that hit
the token limit is kept as it is, with no delimiter). Each record carries its
provenance: ``round``, ``doc_id``, ``sample``, ``u`` (the filtering score), ``g`` (the
ground truth, never used for selection unless the oracle filter is on) and ``truncated``.

Training is a full fine-tune in a plain torch loop: AdamW, linear decay of the
learning rate to 0, ``batch_size`` examples per optimizer step (in micro-batches of
``micro_batch_size``), and the loss (mean cross-entropy per completion token of the
step) on the completion tokens only: prompt and padding positions have label -100.
Prompt and completion are tokenized separately, without special tokens, and
concatenated, so the model is trained on exactly the token boundary it generated
across (lm-eval's HF backend adds no BOS either). Weights are kept and saved in
float32; on a GPU the forward pass runs under bfloat16 autocast.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gapbench.harness.digest import sha256_file
from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import read_records

COMPLETION_END = "\n\n"
IGNORE = -100  # the label of a token that carries no loss
META_FILE = "gapbench_meta.json"


# ----------------------------------------------------------------------------------------------
# the data set


def completion_text(response: str, truncated: bool = False) -> str:
    """The training target for one sampled response (see the module docstring). A response cut by
    the token limit never ended: it is kept as it is, without the delimiter that would teach a stop."""
    return response if truncated else response.rstrip() + COMPLETION_END


def sft_records(round_: int, rows: Sequence[dict]) -> list[dict]:
    """The SFT records of the kept samples, in the order given.

    Each row has ``doc_id``, ``sample``, ``prompt``, ``response``, ``u``, ``g`` and ``keep`` (and
    optionally ``truncated``: the response hit the token limit); rows with ``keep`` false are left out."""
    return [
        {
            "prompt": r["prompt"],
            "completion": completion_text(r["response"], bool(r.get("truncated"))),
            "round": int(round_),
            "doc_id": str(r["doc_id"]),
            "sample": int(r["sample"]),
            "u": None if r["u"] is None else float(r["u"]),
            "g": int(r["g"]),
            "truncated": bool(r.get("truncated")),
        }
        for r in rows
        if r["keep"]
    ]


def dataset_text(records: Sequence[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_dataset(path: Path, records: Sequence[dict]) -> str:
    """Write the data set atomically and return its sha256; an identical file is left untouched."""
    path = Path(path)
    text = dataset_text(records)
    digest = sha256_text(text)
    if path.is_file() and sha256_file(path) == digest:
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return digest


def read_dataset(path: Path) -> list[dict]:
    """The records of an SFT data set; a line that is not one, or lacks a string ``prompt`` or
    ``completion``, is an error naming ``file:line`` (delete the file to have it written again)."""
    out = []
    for rec in read_records(path):
        line_no = rec.pop("__line__")
        for key in ("prompt", "completion"):
            if not isinstance(rec.get(key), str):
                raise GapbenchError(f"{path}:{line_no}: field {key!r} is missing or not a string. Delete the file to have it written again.")
        out.append(rec)
    return out


# ----------------------------------------------------------------------------------------------
# tokenization and the completion-only loss


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_example(tokenizer, prompt: str, completion: str, max_length: int) -> dict:
    """``input_ids`` = prompt tokens + completion tokens; ``labels`` = -100 on the prompt tokens,
    the token ids on the completion. Longer than ``max_length``: the prompt loses tokens from
    its start (the few-shot examples go first); a completion alone too long is cut at its end."""
    p = _ids(tokenizer, prompt)
    c = _ids(tokenizer, completion)
    if not c:
        raise GapbenchError(f"an SFT completion has no tokens ({completion!r}); every kept sample needs a response.")
    if len(c) >= max_length:
        c = c[: max_length - 1]
        p = p[-1:] if p else []
    elif len(p) + len(c) > max_length:
        p = p[len(p) + len(c) - max_length :]
    return {"input_ids": p + c, "labels": [IGNORE] * len(p) + c}


def collate(examples: Sequence[dict], pad_id: int):
    """Right-padded tensors ``input_ids``, ``attention_mask``, ``labels`` (-100 on padding)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        k = len(e["input_ids"])
        ids[i, :k] = torch.tensor(e["input_ids"], dtype=torch.long)
        mask[i, :k] = 1
        labels[i, :k] = torch.tensor(e["labels"], dtype=torch.long)
    return ids, mask, labels


def completion_loss(logits, labels):
    """(sum of next-token cross-entropy over positions whose label is not -100, number of such tokens).

    ``logits[:, i]`` predicts ``labels[:, i + 1]`` (the usual causal shift)."""
    import torch

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((shift_labels != IGNORE).sum())


def shared_prompt_prefix(examples: Sequence[dict]) -> int:
    """Tokens at the start of every example that are prompt (label -100) in all of them, leaving
    each example at least one prompt token of its own (its last prompt position predicts the
    first completion token): :func:`harness.models.prefix_cache.shared_prefix` over the prompt parts."""
    from gapbench.harness.models.prefix_cache import shared_prefix

    def prompt_len(e):
        return next((j for j, x in enumerate(e["labels"]) if x != IGNORE), len(e["labels"]))

    return shared_prefix([(e["input_ids"][: prompt_len(e)], []) for e in examples])


def micro_batch_loss(model, examples: Sequence[dict], pad_id: int, device, *, share_prefix: bool = True, min_shared: int = 32):
    """The summed completion loss of a micro-batch.

    Few-shot prompts share a long head (the same worked examples before every question).
    With ``share_prefix``, that head runs once per micro-batch, and its key/value cache,
    repeated for each example, carries the gradient of every example back into it: the loss
    and the gradients are those of running every example whole (causal attention: the head's
    states do not depend on what follows it), at a fraction of the compute when the head is
    most of each example. ``tests/test_improve.py`` checks both paths give the same loss and
    gradients."""
    import torch

    shared = shared_prompt_prefix(examples) if share_prefix and len(examples) > 1 else 0
    if shared < min_shared:
        ids, mask, labels = collate(examples, pad_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        return completion_loss(logits, labels.to(device))[0]
    head = torch.tensor([examples[0]["input_ids"][:shared]], dtype=torch.long, device=device)
    past = model(input_ids=head, use_cache=True).past_key_values
    past.batch_repeat_interleave(len(examples))
    rest = [{"input_ids": e["input_ids"][shared:], "labels": e["labels"][shared:]} for e in examples]
    ids, mask, labels = collate(rest, pad_id)
    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    full_mask = torch.cat([mask.new_ones(len(rest), shared), mask], dim=1)
    positions = torch.arange(shared, shared + ids.shape[1], device=device).expand(len(rest), -1)
    logits = model(input_ids=ids, attention_mask=full_mask, past_key_values=past, position_ids=positions, use_cache=True).logits
    return completion_loss(logits, labels)[0]


# ----------------------------------------------------------------------------------------------
# the training loop


@dataclass
class TrainSettings:
    lr: float = 2e-5
    epochs: int = 1
    batch_size: int = 8  # examples per optimizer step
    micro_batch_size: int = 4  # examples per forward pass (gradient accumulation); no effect on the result
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    max_length: int = 2048  # tokens per example (prompt cut from the left beyond it)
    weight_decay: float = 0.0
    seed: int = 1234
    share_prefix: bool = True  # run a micro-batch's common prompt head once (same loss and gradients)

    def check(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise GapbenchError(f"--lr must be a positive number (got {self.lr}); 1e-5 to 5e-5 suits a full fine-tune.")
        if self.epochs < 1:
            raise GapbenchError(f"--epochs must be at least 1 (got {self.epochs}).")
        if self.batch_size < 1 or self.micro_batch_size < 1:
            raise GapbenchError(f"--train-batch-size and --micro-batch-size must be at least 1 (got {self.batch_size}, {self.micro_batch_size}).")
        if self.max_steps is not None and self.max_steps < 1:
            raise GapbenchError(f"--max-steps must be at least 1 (got {self.max_steps}).")
        if self.max_length < 8:
            raise GapbenchError(f"--max-length must be at least 8 tokens (got {self.max_length}).")

    def schedule(self, n_examples: int) -> list[list[int]]:
        """The optimizer steps: lists of example indices, shuffled per epoch with ``seed``."""
        rng = random.Random(self.seed)
        steps = []
        for _ in range(self.epochs):
            order = list(range(n_examples))
            rng.shuffle(order)
            steps += [order[k : k + self.batch_size] for k in range(0, n_examples, self.batch_size)]
        return steps[: self.max_steps] if self.max_steps else steps


def training_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def finetune(
    base: str,
    records: Sequence[dict],
    out_dir: Path,
    settings: TrainSettings,
    meta: dict,
    *,
    tokenizer_name: str | None = None,
    log=print,
) -> dict:
    """Fine-tune the checkpoint ``base`` on ``records`` and save it to ``out_dir`` atomically
    (written to a hidden temporary folder beside it, then renamed), with ``gapbench_meta.json``
    holding ``meta`` and the training statistics. Returns that metadata."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings.check()
    if not records:
        raise GapbenchError("no SFT examples to train on.")
    out_dir = Path(out_dir)
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    device = training_device()
    start = time.perf_counter()
    log(f"fine-tuning {base} on {len(records)} examples ({device}) ...")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name or base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    except Exception as exc:  # a folder without weights, a hub id without network, ...
        raise GapbenchError(f"could not load {base} for fine-tuning: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
    model.to(device)
    model.train()
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded = [encode_example(tokenizer, r["prompt"], r["completion"], settings.max_length) for r in records]

    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.schedule(len(encoded))
    total = len(steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else _null()
    losses, tokens_seen = [], 0
    for step, batch in enumerate(steps, 1):
        n_tokens = sum(sum(1 for x in encoded[i]["labels"][1:] if x != IGNORE) for i in batch)
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for k in range(0, len(batch), settings.micro_batch_size):
            micro = [encoded[i] for i in batch[k : k + settings.micro_batch_size]]
            with autocast:
                loss_sum = micro_batch_loss(model, micro, pad_id, device, share_prefix=settings.share_prefix)
            (loss_sum / max(n_tokens, 1)).backward()
            step_loss += float(loss_sum.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(step_loss / max(n_tokens, 1))
        tokens_seen += n_tokens
        if step == 1 or step == total or step % max(1, total // 10) == 0:
            log(f"  step {step}/{total}  loss {losses[-1]:.4f}")

    model.eval()
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = True
    stats = {
        **meta,
        "training": {
            **asdict(settings),
            "method": "full fine-tune, completion-only loss",
            "completion_end": COMPLETION_END,
            "schedule": "AdamW, linear decay to 0, grad-norm clip 1.0",
            "device": device,
            "examples": len(records),
            "steps": total,
            "completion_tokens": tokens_seen,
            "loss_first": losses[0],
            "loss_last": losses[-1],
            "loss_mean": sum(losses) / len(losses),
            "seconds": round(time.perf_counter() - start, 2),
        },
    }
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.to("cpu")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / META_FILE).write_text(json.dumps(stats, indent=2, default=str) + "\n")
    if out_dir.exists():  # a folder without metadata is no finished checkpoint
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    del model, optimizer
    _free()
    log(f"saved {out_dir} ({stats['training']['seconds']:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f})")
    return stats


def read_meta(model_dir: Path) -> dict | None:
    """The metadata of a finished checkpoint, or None when there is none."""
    path = Path(model_dir) / META_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GapbenchError(f"{path}: not valid JSON ({exc}). Delete {model_dir} to train that round again.") from None


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _free() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
