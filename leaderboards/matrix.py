"""The generator x verifier matrix (``gapbench cross``'s ``cross-<task>.json``, and a board table's
``cross`` section) as types, and its codec.

A :class:`Matrix` is one task and one verification method: its generators (rows f), its verifiers
(columns g) and its :class:`Cell` s, each holding J(f), J(f[w(u_g)]), the gap, the relative gap and
the AUROC of u_g as results.json's own :class:`~harness.results.Metric` blocks. It goes through
results.json's codec (:func:`harness.results.from_json`, :func:`harness.results.to_json`): keys in
field order; :func:`load` names the file and the field that is wrong, and :func:`dumps` writes the
bytes ``gapbench cross`` has always written. The board embeds the same classes in leaderboard.json
(:class:`leaderboards.board.Table`'s ``cross``). The field names of the matrix live here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import Document, Metric, from_json, to_json

MATRIX_DOCUMENT = Document("cross-verification matrix", "run `gapbench cross` again with the same --models and --out (it reuses every stored cell)")
QUANTITY_NAMES = ("J", "J_filtered", "gap", "relative_gap", "auroc")


@dataclass
class Cell:
    """Generator f's samples verified by model g (f = g: self-verification)."""

    generator: str
    verifier: str
    is_self: bool = field(metadata={"key": "self"})  # written as "self"
    n_prompts: int
    n: int
    J: Metric
    J_filtered: Metric
    gap: Metric
    relative_gap: Metric
    auroc: Metric

    def metric(self, name: str) -> Metric:
        """One of the matrix's quantities (``J``, ``J_filtered``, ``gap``, ``relative_gap``, ``auroc``) by name."""
        if name not in QUANTITY_NAMES:
            raise KeyError(name)
        value: Metric = getattr(self, name)
        return value


@dataclass
class Matrix:
    """The generator x verifier matrix of one task and method (:func:`leaderboards.cross.cells`)."""

    task: str
    split: str
    method: str
    generators: list[str]
    verifiers: list[str]
    cells: list[Cell]

    def cell(self, f: str, g: str) -> Cell | None:
        """Generator f's samples verified by g, or None where the matrix lacks that cell."""
        return next((c for c in self.cells if c.generator == f and c.verifier == g), None)


def parse(data: Any, where: str | Path = "cross-verification matrix") -> Matrix:
    """The typed matrix from parsed JSON, or an error naming ``where`` (the file) and the field."""
    matrix: Matrix = from_json(Matrix, data, str(where), doc=MATRIX_DOCUMENT)
    return matrix


def load(path: str | Path) -> Matrix:
    """A ``cross-<task>.json``, or an error naming the file and the field that is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GapbenchError(f"{path}: cannot read it ({exc}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GapbenchError(f"{path}: not valid JSON ({exc}); {MATRIX_DOCUMENT.damaged()}") from None
    return parse(data, path)


def dumps(matrix: Matrix) -> str:
    """``cross-<task>.json``'s text."""
    return json.dumps(to_json(matrix), indent=2) + "\n"
