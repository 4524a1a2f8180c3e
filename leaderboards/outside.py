"""Figures from outside the board, ``outside.json``: numbers other harnesses or a model's authors give
for a checkpoint of the board on one of its tasks (lm-eval's ``gsm8k`` on the same converted model, a
model card's table), shown beside the board's J(f) with where each comes from and how it was measured
differently. ``gapbench leaderboard build --outside FILE`` copies the file into the board as
``outside.json``; later builds (and ``leaderboard check``) read it from there.

The file::

    {"figures": [
      {"model": "qwen2.5-coder-1.5b-instruct", "task": "gsm8k", "split": "test",
       "figure": "lm-eval gsm8k (strict-match), 5-shot", "value": 0.512, "interval": [0.485, 0.539],
       "source": "gapbench lm-eval --model ... --tasks gsm8k", "differs": "5 fixed shots, greedy, ..."}
    ]}

``model`` names a checkpoint of the board (its name, hub id or id); ``split`` is optional; ``value`` and
``interval`` are shares in [0, 1] like J(f) (0.512, not 51.2); ``interval`` is optional.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.leaderboards.entries import Entry

OUTSIDE_FILE = "outside.json"
REQUIRED = ("model", "task", "figure", "value", "source", "differs")
OPTIONAL = ("split", "interval")


@dataclass(frozen=True)
class Figure:
    """One entry of ``outside.json``, checked (:func:`read`)."""

    model: str  # a checkpoint of the board: its name, hub id or id
    task: str
    figure: str  # what the number is
    value: float  # a share in [0, 1]
    source: str  # where it comes from
    differs: str  # how its measurement differs from the board's run
    split: str | None = None
    interval: list[float] | None = None


def _share(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0.0 <= x <= 1.0


def read(path: str | Path) -> tuple[bytes, list[Figure]]:
    """The file's bytes and its figures, checked field by field (an error names the file, the entry and
    the field, and what to write instead)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GapbenchError(f"{path}: cannot read the outside figures ({type(exc).__name__}: {exc}); give a JSON file like {{\"figures\": [...]}}.") from None
    if not isinstance(data, dict) or set(data) != {"figures"} or not isinstance(data["figures"], list):
        raise GapbenchError(f"{path}: expected an object with one key, \"figures\", a list of figures (see `gapbench leaderboard build --help`).")
    out = []
    for i, f in enumerate(data["figures"]):
        where = f"{path}: figures[{i}]"
        if not isinstance(f, dict):
            raise GapbenchError(f"{where}: expected an object with {', '.join(REQUIRED)} (and optionally {', '.join(OPTIONAL)}).")
        unknown = sorted(set(f) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise GapbenchError(f"{where}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(REQUIRED + OPTIONAL)}.")
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise GapbenchError(f"{where}: missing {', '.join(missing)}.")
        for k in ("model", "task", "figure", "source", "differs", "split"):
            if k in f and (not isinstance(f[k], str) or not f[k].strip()):
                raise GapbenchError(f"{where}.{k}: expected a non-empty text, got {json.dumps(f[k])[:60]}.")
        if not _share(f["value"]):
            raise GapbenchError(
                f"{where}.value: expected a share between 0 and 1 like J(f), got {json.dumps(f['value'])[:60]} "
                "(write a published 51.2% as 0.512)."
            )
        iv = f.get("interval")
        if iv is not None and not (isinstance(iv, list) and len(iv) == 2 and all(map(_share, iv)) and iv[0] <= iv[1]):
            raise GapbenchError(f"{where}.interval: expected [lo, hi], two shares between 0 and 1 with lo <= hi, got {json.dumps(iv)[:60]}.")
        out.append(Figure(**f))
    return raw, out


def match(path: str | Path, figures: list[Figure], entries: list[Entry]) -> dict[str, list[tuple[Entry, Figure]]]:
    """table -> (the base or self-improved entry, figure) for every figure; a figure whose model is not a
    checkpoint of the board on that task (and split) is refused, naming the checkpoints there are."""
    out: dict[str, list[tuple[Entry, Figure]]] = {}
    own = [e for e in entries if not e.verifier]
    for i, f in enumerate(figures):
        where = [e for e in own if e.task == f.task and (f.split is None or e.split == f.split)]
        if not where:
            tasks = sorted({e.table for e in own})
            raise GapbenchError(
                f"{path}: figures[{i}].task {f.task!r}" + (f" (split {f.split!r})" if f.split is not None else "")
                + f" is not a table of this board (tables: {', '.join(tasks)}); fix the task or leave the figure out."
            )
        hits = [e for e in where if f.model.lower() in e.names()]
        if not hits:
            names = sorted({e.label for e in where})
            raise GapbenchError(
                f"{path}: figures[{i}].model {f.model!r} is not a checkpoint of this board on {f.task} "
                f"(checkpoints there: {', '.join(names)}); name one of them (its name, hub id or id)."
            )
        if len({e.table for e in hits}) > 1:
            raise GapbenchError(f"{path}: figures[{i}]: {f.model!r} is on several {f.task} tables ({', '.join(sorted({e.table for e in hits}))}); give its split.")
        base = [e for e in hits if not e.derived]
        e = (base or hits)[0]
        out.setdefault(e.table, []).append((e, f))
    return out
