"""``gapbench improve``: the self-improvement loop (see :mod:`harness.improve.loop` and docs/improve.md)."""

from __future__ import annotations

import argparse
import sys

from gapbench.harness.errors import GapbenchError


def add_parser(sub) -> None:
    from gapbench.harness.improve.options import ImproveOptions
    from gapbench.harness.settings import add_options

    p = sub.add_parser(
        "improve",
        help="self-improve a model: sample on train prompts, self-verify, filter, fine-tune, repeat (Mind the Gap, Sec. 5)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(p, ImproveOptions)
    p.set_defaults(func=cmd_improve)


def options_from_args(args):
    from gapbench.harness.improve.options import ImproveOptions
    from gapbench.harness.settings import from_args, parse_values

    parse_values(ImproveOptions, args)
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
