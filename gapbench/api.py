"""The Python API: ``gapbench.evaluate`` runs a model on tasks as ``gapbench run`` does and returns
the typed results with the run folder; ``gapbench.load_run`` reads a stored run back.

    import gapbench
    run = gapbench.evaluate(tasks="arith", verifiers=["mc", "oracle"], n=4, limit=20)[0]
    print(run.results.generation.J.value, run.results.verifiers["mc"].gap.value, run.dir)

Every option of ``gapbench run`` is a keyword (``--max-gen-toks`` is ``max_gen_toks``), with the same
defaults. An option that takes a list or key=value pairs takes either the command line's text
(``tasks="arith,gsm8k"``, ``task_args="arith.per_level=3"``) or the Python value (``tasks=["arith"]``,
``task_args={"arith": {"per_level": 3}}``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gapbench.harness.errors import GapbenchError

if TYPE_CHECKING:  # imported when used: `python -m gapbench.harness.results` must not find it loaded
    from gapbench.harness.results import Results


@dataclass(frozen=True)
class Evaluation:
    """One task's run: its typed results.json and the folder that stores its samples and verdicts."""

    results: Results
    dir: Path


def _stderr(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def options(**kwargs: Any) -> Any:
    """``RunOptions`` from keywords: texts parsed as the command line parses them, Python values kept."""
    from gapbench.harness.settings import RunOptions, from_args

    known = {f.name for f in fields(RunOptions)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise GapbenchError(f"unknown option{'s' * (len(unknown) > 1)} {', '.join(unknown)}; the options are {', '.join(sorted(known))} (those of `gapbench run`).")
    for name in ("tasks", "verifiers"):  # one name or several
        if isinstance(kwargs.get(name), (list, tuple)):
            kwargs[name] = [str(x) for x in kwargs[name]]
    return from_args(RunOptions, argparse.Namespace(**kwargs))


def evaluate(model: str | None = None, tasks: str | list[str] = "arith", verifiers: str | list[str] = "mc", *, log: Callable[..., None] | None = _stderr, **kwargs: Any) -> list[Evaluation]:
    """Sample, self-verify, grade and score ``model`` on ``tasks``: one :class:`Evaluation` per task,
    in the order given. ``model`` is what ``gapbench run --model`` takes (default: the embedded
    SmolLM2-135M-Instruct). A stored run with the same settings resumes and costs no model call.
    ``log``: where progress lines go (default: stderr; None: nowhere)."""
    from gapbench.harness.runner import Runner

    opts = options(model=model, tasks=tasks, verifiers=verifiers, **kwargs)
    if opts.shard or opts.ray:
        raise GapbenchError("evaluate() runs a whole run in this process: use `gapbench run --shard` or `--ray` for shards.")
    runner = Runner(opts, log=log or (lambda *_: None))
    results = runner.run()
    return [Evaluation(r, runner.store_dir(t, runner.config(t))) for r, t in zip(results, runner.tasks)]


def load_run(path: str | Path) -> Evaluation:
    """A stored run's results: ``path`` is a task's run folder or its results.json."""
    from gapbench.harness import results as R

    p = Path(path)
    file = p / "results.json" if p.is_dir() else p
    if not file.is_file():
        raise GapbenchError(f"{path}: no results.json there; give a task's run folder (it holds run.json and results.json) or the file.")
    return Evaluation(R.load(file)[0], file.parent)
