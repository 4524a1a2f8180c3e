"""Run settings: one dataclass holds every field of a run with its default and its command-line help.

:class:`RunOptions` is the one source of truth: ``gapbench run``'s options are generated from its
fields (:func:`add_options`) and read back into it (:func:`from_args`), and ``gapbench improve``
(:class:`harness.improve.options.ImproveOptions`) declares the fields it shares with a run through
:func:`inherit`, taking their defaults and help from here, and derives each of its runs with
``dataclasses.replace``. A field's ``metadata`` says how the command line shows it:

- ``help``: the help text; ``flag``: the option name when it is not ``--field-name``;
- ``parse``: turns the command-line text into the field's value (a list, a dict, a number);
- ``cli``: False for fields that only code sets (``model_meta`` is set by ``--model-meta``, which
  has its own parser);
- ``run_field``: the :class:`RunOptions` field that a field of another options class feeds
  (``improve --gen-batch-size`` is a run's ``batch_size``);
- ``aliases``: other names of the same option; ``deprecated``: old names that still work for one
  release and print a one-line notice naming the new one (:class:`DeprecatedFlag`).

One option name means one thing in every command (``tests/test_settings.py`` checks it over every
subcommand's parser): ``--batch-size`` is lm-eval's batch size, ``--tasks`` a list of task names and
``--task`` one task name, ``--verifiers`` a list of methods and ``--verifier`` one.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from gapbench.harness.config import MAX_GEN_TOKS, TEMPERATURE, TOP_P
from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import DEFAULT_FILTER
from gapbench.harness.models import embedded
from gapbench.harness.models.model_args import parse_key_values

SEED = 1234
N_BOOT = 1000


def csv(text: str) -> list[str]:
    """``a, b,,c`` -> ["a", "b", "c"]."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_task_args(text: str | None) -> dict[str, dict]:
    """``gsm8k.num_fewshot=8,arith.levels=add1+add2`` -> {"gsm8k": {"num_fewshot": "8"}, ...}."""
    out: dict[str, dict] = {}
    for part in csv(text or ""):
        key, sep, value = part.partition("=")
        task, dot, option = key.partition(".")
        if not sep or not dot:
            raise GapbenchError(f"--task-args: {part!r} is not task.option=value (example: gsm8k.num_fewshot=8).")
        out.setdefault(task.strip(), {})[option.strip()] = value.strip()
    return out


def parse_meta(text: str | None) -> dict:
    """``--model-meta params=...,tokens=...,base=...,round=...``: numbers where they are numbers."""
    meta: dict = {}
    for key, value in parse_key_values(text, "--model-meta").items():
        try:
            meta[key] = float(value) if key in ("params", "tokens", "flops") else (int(value) if key == "round" else value)
        except ValueError:
            raise GapbenchError(f"--model-meta {key}={value!r}: expected a number.") from None
        if isinstance(meta[key], float) and not math.isfinite(meta[key]):
            raise GapbenchError(f"--model-meta {key}={value!r}: expected a finite number.")
    return meta


def batch_size(text: str | int) -> int | str:
    """A number, or lm-eval's ``auto``."""
    return int(text) if str(text).isdigit() else str(text)


def parse_shard(text: str) -> str:
    """``i/N`` (0 <= i < N): this process runs shard i of N (:mod:`harness.shards`)."""
    index, sep, count = str(text).partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit() and int(index) < int(count)):
        raise GapbenchError(f"--shard {text!r}: give i/N with 0 <= i < N (example: --shard 0/4 ... --shard 3/4).")
    return f"{int(index)}/{int(count)}"


def option(default: Any = None, help: str = "", **meta: Any) -> Any:
    """A settings field: its default and how the command line shows it (see the module docstring)."""
    meta["help"] = help
    if isinstance(default, (list, dict)):
        made = default
        return field(default_factory=lambda: type(made)(made), metadata=meta)
    return field(default=default, metadata=meta)


# (field, lowest, highest) of the sizes a run takes: the highest are limits of memory, checked before
# any model work (a sample, a verification or a bootstrap resample of each prompt is held at once)
LIMITS = (
    ("n", 1, 100_000),
    ("m", 1, 10_000),
    ("limit", 1, None),
    ("max_gen_toks", 1, 1_000_000),
    ("verify_max_gen_toks", 1, 1_000_000),
    ("n_boot", 0, 1_000_000),
)


def check_resampling(*, n_boot: int, seed: int, n_perm: int | None = None) -> None:
    """The resampling options of a reader (``analyze``, ``leaderboard compare``), checked before any
    work: the bootstrap and the sign-flip test hold every resample in memory, and seeds are 32-bit."""
    problems = []
    for flag, value, low, high in (("--n-boot", n_boot, 0, 1_000_000), ("--n-perm", n_perm, 1, 10_000_000)):
        if value is not None and not low <= value <= high:
            problems.append(f"{flag} must be from {low} to {high:,} (got {value:,})")
    if not 0 <= seed < 2**32:
        problems.append(f"--seed must be a whole number from 0 to {2**32 - 1} (got {seed})")
    if problems:
        raise GapbenchError("; ".join(problems) + ".")


@dataclass
class RunOptions:
    """Everything ``gapbench run`` takes. Defaults follow the paper where it has one (sampling) and a
    CPU where it does not (n = 4 samples; the paper draws 128)."""

    model: str | None = option(
        None,
        f"hub id, local checkpoint folder, an embedded model ({', '.join(embedded.MODELS)}), or an lm-eval model name "
        f"(hf, vllm, local-completions, ...); default: the embedded {embedded.DEFAULT.name}",
    )
    model_args: str | None = option(None, "lm-eval model arguments, key=value,... (e.g. pretrained=/ckpt,dtype=bfloat16)")
    engine: str | None = option(
        None,
        "transformers, llama.cpp (llama.cpp's server, one request at a time) or llama.cpp-batched (llama.cpp in process, parallel sequences): "
        "the engine of a GGUF or embedded model; default: the embedded model's own (llama.cpp-batched for the Qwen models, else transformers), or what --model names",
    )
    verifier_model: str | None = option(None, "a different model g to verify f's samples (cross-verification)")
    verifier_model_args: str | None = option(None, "lm-eval model arguments of --verifier-model")
    tasks: list[str] = option(["arith"], "comma-separated task names (see `gapbench tasks`)", parse=csv)
    task_args: dict[str, dict] = option({}, "task.option=value,... (e.g. gsm8k.num_fewshot=8,arith.levels=add1+add2)", parse=parse_task_args)
    verifiers: list[str] = option(["mc"], "comma-separated methods (see `gapbench verifiers`); ensemble:a+b", parse=csv)
    n: int = option(4, "samples per prompt (the paper: 128)", parse=int)
    m: int = option(1, "verifications per sample (the paper: 1)", parse=int)
    limit: int | None = option(None, "first N prompts of each task", parse=int)
    split: str | None = option(None, "data split (default: the task's)")
    data_dir: str | None = option(None, "local data folder (e.g. ../shared/data) instead of the hub")
    filter: str = option(DEFAULT_FILTER, "quantile:q (per prompt, keep u >= q-quantile) or threshold:t")
    temperature: float = option(TEMPERATURE, "sampling temperature (the paper: 0.7)", parse=float)
    top_p: float = option(TOP_P, "nucleus sampling top-p (the paper: 0.9)", parse=float)
    max_gen_toks: int | None = option(None, f"new tokens per sample (default: the task's, else {MAX_GEN_TOKS})", parse=int)
    verify_max_gen_toks: int = option(MAX_GEN_TOKS, "new tokens per CoT verification", parse=int)
    batch_size: int | str = option(8, "lm-eval batch size (a number, or auto on GPU)", parse=batch_size)
    seed: int = option(SEED, "seed of sampling and of the bootstrap", parse=int)
    out: str | None = option(None, "run directory (default: runs/<model>/<task>-<config hash>); one subfolder per task")
    n_boot: int = option(N_BOOT, "bootstrap resamples for the 95%% intervals", parse=int)
    apply_chat_template: bool = option(False, "format generation and verification prompts with the reading model's own chat template (the few-shot text as one user turn)")
    fewshot_as_multiturn: bool = option(False, "with --apply-chat-template: each few-shot example a user turn and its answer an assistant turn")
    shard: str | None = option(None, "i/N: run shard i of N (0 <= i < N), a deterministic 1/N of the prompts in its own store; `gapbench merge` joins them", parse=parse_shard)
    ray: str | None = option(None, "ADDRESS: run the shards as Ray tasks on the cluster at ADDRESS (auto, ray://host:10001, host:6379, or local to start one here), then merge; needs gapbench[ray] and --shards")
    shards: int | None = option(None, "with --ray: how many shards to split the run into (one Ray task each)", parse=int)
    model_meta: dict = option({}, "params=...,tokens=...,base=...,round=... recorded in results.json", flag="--model-meta", parse=parse_meta)

    def check(self) -> None:
        """Refuse settings that would run something other than what was asked, one sentence each."""
        problems = []
        if not self.tasks:
            problems.append("--tasks names no task (see `gapbench tasks`)")
        if not self.verifiers:
            problems.append("--verifiers names no verifier (see `gapbench verifiers`)")
        for name, low, high in LIMITS:
            value = getattr(self, name)
            if value is not None and value < low:
                problems.append(f"--{name.replace('_', '-')} must be {low} or more (got {value})")
            elif value is not None and high is not None and value > high:
                problems.append(f"--{name.replace('_', '-')} must be at most {high:,} (got {value:,}): more cannot fit in memory")
        if not 0 <= self.seed < 2**32:
            problems.append(f"--seed must be a whole number from 0 to {2**32 - 1} (got {self.seed})")
        if not self.temperature >= 0:
            problems.append(f"--temperature must be 0 (greedy) or more (got {self.temperature})")
        if not 0 < self.top_p <= 1:
            problems.append(f"--top-p must be in (0, 1] (got {self.top_p})")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1) and self.batch_size != "auto":
            problems.append(f"--batch-size must be a whole number of 1 or more, or auto (got {self.batch_size!r})")
        if self.fewshot_as_multiturn and not self.apply_chat_template:
            problems.append("--fewshot-as-multiturn needs --apply-chat-template")
        if (self.ray is None) != (self.shards is None):
            problems.append("--ray ADDRESS and --shards N go together (example: --ray local --shards 2)")
        elif self.shards is not None and self.shards < 1:
            problems.append(f"--shards must be 1 or more (got {self.shards})")
        if self.ray is not None and self.shard is not None:
            problems.append("--ray runs every shard itself: drop --shard")
        if problems:
            raise GapbenchError("; ".join(problems) + ".")
        if self.shard is not None:
            parse_shard(self.shard)
        if self.engine not in (None, "llama.cpp", "llama.cpp-batched", "transformers"):
            raise GapbenchError(
                f"--engine {self.engine!r}: known engines are transformers, llama.cpp (its server, one request at a time) and llama.cpp-batched "
                "(in process, parallel sequences); the default is the model's own (transformers for SmolLM2 and Gemma, llama.cpp-batched for the Qwen models)."
            )


def inherit(name: str, **changes: Any) -> Any:
    """A field of another options class that is :class:`RunOptions`' field ``name``: the same default
    and help unless ``changes`` (``default=``, ``help=``, ``flag=``, ...) says otherwise."""
    base = RUN_FIELDS[name]
    default = changes.pop("default", base.default_factory() if base.default_factory is not MISSING else base.default)
    meta = {**base.metadata, "run_field": name, **changes}
    help = meta.pop("help", "")
    return option(default, help, **meta)


RUN_FIELDS: dict[str, Field] = {f.name: f for f in fields(RunOptions)}


def run_fields_of(opts: Any) -> dict[str, Any]:
    """The :class:`RunOptions` values that another options object (e.g. ``ImproveOptions``) holds,
    by the ``run_field`` of its fields."""
    out = {}
    for f in fields(opts):
        target = f.metadata.get("run_field")
        if target:
            out[target] = getattr(opts, f.name)
    return out


def _flag(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _shown(value: Any) -> Any:
    """A default as the command line writes it."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return None
    return value


class DeprecatedFlag(argparse.Action):
    """An old name of an option: it sets the option's field as the new name does and prints a one-line
    notice naming the new name (for one release; then the name goes)."""

    def __init__(self, option_strings, dest, new: str = "", note: str = "", **kwargs):
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.note = new, note

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        print(f"gapbench {parser.prog.split()[-1]}: {option_string} is deprecated and goes in the next release; use {self.new}{self.note}.", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_options(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> None:
    """One command-line option per field of the dataclass ``cls`` (see the module docstring)."""
    for f in fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        kwargs: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help", "")}
        if isinstance(default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs["default"] = _shown(default) if default is not MISSING else None
            # no type=: argparse would let an error raised there escape as a traceback; main parses the
            # text in from_args, where every error is one sentence naming the option
            if default is MISSING:
                kwargs["required"] = True
        flags = [_flag(f), *f.metadata.get("aliases", ())]
        action = parser.add_argument(*flags, **kwargs)
        action.parse = f.metadata.get("parse")  # type: ignore[attr-defined]  # what the text means (tests/test_settings.py)
        for old, note in f.metadata.get("deprecated", {}).items():
            parser.add_argument(old, dest=f.name, action=DeprecatedFlag, new=_flag(f), note=note, help=argparse.SUPPRESS)


_KINDS = {int: "a whole number", float: "a finite number"}


def parse_values(cls: type, args: argparse.Namespace) -> None:
    """Turn the option texts of ``args`` into their fields' values in place (each field's ``parse``), so
    that a bad value is a :class:`GapbenchError` naming the option, never a traceback."""
    for f in fields(cls):
        parse: Callable | None = f.metadata.get("parse")
        value = getattr(args, f.name, None)
        if parse is None or not isinstance(value, str):
            continue
        what = _KINDS.get(parse, "a value of the form its help shows")  # type: ignore[call-overload]  # int and float are its keys
        try:
            parsed = parse(value)
        except (ValueError, TypeError, OverflowError):
            raise GapbenchError(f"{_flag(f)} {value!r}: expected {what}.") from None
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise GapbenchError(f"{_flag(f)} {value!r}: expected {what}.")
        setattr(args, f.name, parsed)


def from_args(cls: type, args: argparse.Namespace, **extra: Any):
    """The dataclass ``cls`` from parsed options (their texts parsed by :func:`parse_values`); a field
    whose option was not given (and has no text form of its default, such as a dict) gets its default."""
    parse_values(cls, args)
    values = {}
    for f in fields(cls):
        if f.name in extra or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if value is None and f.default_factory is not MISSING:
            continue
        values[f.name] = value
    return cls(**values, **extra)
