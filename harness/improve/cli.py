"""``gapbench improve``: the self-improvement loop (see :mod:`harness.improve.loop` and docs/improve.md)."""

from __future__ import annotations

import argparse
import sys

from gapbench.harness.errors import GapbenchError
from gapbench.harness.settings import csv


def add_parser(sub) -> None:
    from gapbench.harness.improve.options import ImproveOptions
    from gapbench.harness.settings import add_options

    p = sub.add_parser(
        "improve",
        help="self-improve a model: sample on train prompts, self-verify, filter, fine-tune, repeat (Mind the Gap, Sec. 5)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(p, ImproveOptions)
    # gapbench run's plural names, for the one task and the one verifier of a loop (one name each)
    for plural, one in (("--tasks", "--task"), ("--verifiers", "--verifier")):
        action = p.add_argument(plural, dest=plural[2:], default=None, help=f"the same as {one} (one name), as gapbench run spells it")
        action.parse = csv  # type: ignore[attr-defined]  # a list of names, as in gapbench run (tests/test_settings.py)
    p.set_defaults(func=cmd_improve)


def _one(args, plural: str, one: str) -> None:
    """``--tasks X`` / ``--verifiers X`` (gapbench run's names) given to improve: exactly one name, the
    same as ``--task X`` / ``--verifier X``."""
    from gapbench.harness.improve.loop import ImproveOptions

    text = getattr(args, plural)
    if text is None:
        return
    names = csv(text)
    field = one[2:]
    default = ImproveOptions.__dataclass_fields__[field].default
    if len(names) != 1:
        raise GapbenchError(f"--{plural} {text!r}: gapbench improve runs one {field} at a time; give one name (or --{field} NAME).")
    if getattr(args, field) not in (default, names[0]):
        raise GapbenchError(f"--{plural} {names[0]} and --{field} {getattr(args, field)} name different {field}s; give one of them.")
    setattr(args, field, names[0])


def options_from_args(args):
    from gapbench.harness.improve.options import ImproveOptions
    from gapbench.harness.settings import from_args, parse_values

    parse_values(ImproveOptions, args)
    _one(args, "tasks", "--task")
    _one(args, "verifiers", "--verifier")
    task_args = args.task_args or {}
    other = sorted(set(task_args) - {args.task})
    if other:
        raise GapbenchError(f"--task-args names {', '.join(other)}, which is not --task {args.task}.")
    return from_args(ImproveOptions, args, task_args=task_args.get(args.task, {}))


def cmd_improve(args) -> int:
    from gapbench.harness.improve.loop import Improver

    improver = Improver(options_from_args(args), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    summary = improver.run()
    print((improver.out / "summary.md").read_text())
    print(f"model calls this invocation: {improver.model_calls}; checkpoints trained: {improver.trained}", file=sys.stderr)
    return 0 if summary else 1
