"""Reading results.json files into board entries: one checkpoint's run of one task.

A checkpoint is named by results.json ``model.name`` (``--model-meta name=...``), else ``model.hub_id``,
else ``model.id``. ``model.base`` (the base model's name or hub id) and ``model.round`` (the
self-improvement round) mark a self-improved checkpoint; a checkpoint without them, or with round 0, is a base model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import Results
from gapbench.harness.results import load as load_results
from gapbench.harness.safe_paths import slugify
from gapbench.leaderboards.model_meta import Family, ModelInfo, model_info


@dataclass
class Entry:
    source: Path  # the file it was read from
    raw: bytes  # its bytes, copied verbatim into the board
    results: Results
    checkpoint: str
    base: str | None
    round: int | None
    info: ModelInfo

    @property
    def task(self) -> str:
        return str(self.results.task.name)

    @property
    def split(self) -> str:
        return str(self.results.task.split or "")

    @property
    def table(self) -> str:
        """The board table this entry belongs to: task and split, e.g. ``arith-test``."""
        return f"{self.task}-{self.split}" if self.split else self.task

    @property
    def derived(self) -> bool:
        """Self-improved: a round of 1 or more, or a base without a round. Round 0 (f_0 of
        `gapbench improve`) is the base model itself."""
        if self.round is not None:
            return int(self.round) > 0
        return bool(self.base)

    @property
    def round_key(self) -> int:
        """0 for a base model; the round of a self-improved one (a missing round sorts last)."""
        if not self.derived:
            return 0
        return int(self.round) if self.round is not None else 10**6

    @property
    def verifier(self) -> str | None:
        """The other model g that verified this checkpoint's samples (cross-verification), or None:
        the checkpoint verified itself. Named as checkpoints are."""
        g = self.results.verifier_model
        return str(g.name or g.hub_id or g.id) if g else None

    @property
    def key(self) -> tuple:
        """What identifies a tracked checkpoint: the table, the checkpoint (case-insensitive) and its round
        (and the verifier model, for a cross-verification result)."""
        key = (self.table, self.checkpoint.lower(), self.round_key)
        return key + (self.verifier.lower(),) if self.verifier else key

    @property
    def slug(self) -> str:
        text = f"{self.table}--{slugify(self.checkpoint)}"
        text += f"--r{self.round}" if self.round is not None and self.derived else ""
        return text + (f"--by--{slugify(self.verifier)}" if self.verifier else "")

    @property
    def label(self) -> str:
        return self.checkpoint + (f" (round {self.round})" if self.derived and self.round is not None else "")

    def names(self) -> set[str]:
        """Every name this checkpoint answers to (lower case), for matching a ``base``."""
        m = self.results.model
        return {str(x).lower() for x in (self.checkpoint, m.hub_id, m.id, m.name) if x}


def find_results(paths: Sequence[str | Path]) -> list[Path]:
    """results.json files named directly, or found under directories (recursively); a directory with no
    results.json inside gives its own ``*.json`` files (a board's ``results/`` folder). Sorted, unique."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = sorted(p.rglob("results.json"))
            if not hits and (p / "run.json").is_file():
                raise GapbenchError(
                    f"{p}: a run folder without results.json: its run has not finished (or was stopped before scoring). "
                    "Run the same `gapbench run` again to finish it, or leave this folder out."
                )
            if not hits:
                hits = sorted(x for x in p.glob("*.json") if x.is_file())
            if not hits:
                raise GapbenchError(f"{p}: no results.json under this folder. Give run directories or results.json files.")
            found.extend(hits)
        else:
            raise GapbenchError(f"{p}: no such file or folder. Give run directories or results.json files.")
    unique = sorted({x.resolve(): x for x in found}.items())
    return [x for _, x in unique]


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def plain_name(value: str | None, field: str, path: Path) -> str | None:
    """A name that becomes part of a board's file names (task, split): letters, digits and ``._+-``,
    not starting with a dot, so no file of the board can land outside its folder."""
    if value is None or value == "":
        return value
    if not PLAIN_NAME.fullmatch(str(value)) or ".." in str(value):
        raise GapbenchError(
            f"{path}: {field} {value!r} is not a plain name (letters, digits and . _ + -, no path separators "
            "or '..'); a board names its files after it, so this results.json is refused. Fix the field or "
            "leave the file out."
        )
    return str(value)


def load_entry(path: Path, table: tuple[Family, ...] | None = None) -> Entry:
    results, raw = load_results(path)  # typed and checked; errors name the file and field
    plain_name(results.task.name, "task.name", path)
    plain_name(results.task.split, "task.split", path)
    model = results.model
    checkpoint = str(model.name or model.hub_id or model.id)
    rnd = model.round
    if rnd is not None:
        try:
            rnd = int(rnd)
        except (TypeError, ValueError):
            raise GapbenchError(f"{path}: model.round is {rnd!r}, not a whole number (set with --model-meta round=N).") from None
    base = model.base
    return Entry(path, raw, results, checkpoint, str(base) if base else None, rnd, model_info(model, table))


def load_entries(paths: Sequence[str | Path], table: tuple[Family, ...] | None = None) -> list[Entry]:
    """Entries of every results file under ``paths``, sorted by board position; refuses two results of the
    same checkpoint, round and task unless their files are identical (then one is kept)."""
    entries: dict[tuple, Entry] = {}
    slugs: dict[str, Entry] = {}
    for path in find_results(paths):
        e = load_entry(path, table)
        old = entries.get(e.key)
        if old is not None:
            if old.raw == e.raw:
                continue
            raise GapbenchError(
                f"two results for checkpoint {e.label!r} on {e.table}: {old.source} and {e.source}. A board holds one "
                "result per checkpoint, round and task: drop one, or tell them apart with "
                "`gapbench run --model-meta name=...` (or round=...)."
            )
        clash = slugs.get(e.slug)
        if clash is not None:
            raise GapbenchError(
                f"checkpoints {clash.checkpoint!r} ({clash.source}) and {e.checkpoint!r} ({e.source}) give the same file "
                f"name {e.slug}.json; rename one with `gapbench run --model-meta name=...`."
            )
        entries[e.key] = e
        slugs[e.slug] = e
    return sorted(entries.values(), key=lambda e: e.slug)
