"""Per-sample data of one run directory, for paired comparisons: g per (doc_id, sample) from
``grades.jsonl``, and each verifier's u per sample rescored from ``samples.jsonl`` and
``verdicts.jsonl`` with the verifier plugins (no model call), so any filter rule can be applied.

Verifier plugins score from the stored replies; they are given stand-in docs that carry only the
``doc_id`` (the prompts' text is not needed to turn replies into u, and loading a task's data may
need the network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import FilterRule
from gapbench.harness.format import number
from gapbench.harness.results import Results
from gapbench.harness.settings import N_BOOT, SEED
from gapbench.harness.stored_run import open_stored_run, task_plugin
from gapbench.verifiers.base import Verifier
from gapbench.verifiers.suite import keep_mask


@dataclass
class RunData:
    dir: Path
    results: Results
    doc_ids: list[str]  # in the run's order
    G: np.ndarray  # prompts x n, ground truth g
    u: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method -> doc_id -> u per sample
    verifiers: dict[str, Verifier] = field(default_factory=dict)  # method -> verifier plugin
    unscored: dict[str, str] = field(default_factory=dict)  # method -> why its u could not be rebuilt
    verdicts: dict[str, dict[str, list]] = field(default_factory=dict)  # method -> doc_id -> Verdict per sample
    answers: dict[str, list[str | None]] = field(default_factory=dict)  # doc_id -> extracted answer per sample
    lengths: dict[str, list[float]] | None = None  # doc_id -> generated tokens per sample (None: not recorded)
    recorded: tuple[int, int] = (SEED, N_BOOT)  # (seed, n_boot) the run was scored with (RunStore.resampling)

    @property
    def n(self) -> int:
        return int(self.G.shape[1])

    @property
    def filter(self) -> str:
        return str(self.results.filter)

    @property
    def label(self) -> str:
        m = self.results.model
        name = str(m.name or m.hub_id or m.id)
        return name + (f" (round {m.round})" if m.round is not None else "")

    def resampling(self, seed: int | None = None, n_boot: int | None = None) -> tuple[int, int]:
        """(seed, n_boot) of a rescoring: those given, else those the run was scored with."""
        return (self.recorded[0] if seed is None else seed, self.recorded[1] if n_boot is None else n_boot)

    def keep(self, method: str, rule: FilterRule, doc_ids: list[str]) -> np.ndarray:
        """The filter's keep mask (prompts x n) of ``method`` under ``rule`` for the given prompts."""
        v = self.verifiers[method]
        rows = [keep_mask(v, self.u, rule, d) for d in doc_ids]
        return np.array(rows, dtype=bool).reshape(len(doc_ids), self.n)


def load_run(path: str | Path, task: str | None = None) -> RunData:
    """A run read and rescored through :func:`harness.stored_run.open_stored_run`, after checking that its
    grades are those results.json was computed from."""
    run = open_stored_run(path, task)
    results = run.results
    assert results is not None
    G = run.G
    recorded_J = results.generation.J.value
    if recorded_J is not None and abs(float(G.mean(axis=1).mean()) - recorded_J) > 1e-9:
        raise GapbenchError(
            f"{run.dir / 'grades.jsonl'} gives J(f) = {number(float(G.mean(axis=1).mean()), 6)} but {run.results_path} records {number(recorded_J, 6)}: "
            "the files are from different scorings. Run `gapbench run` again on this directory to rescore it."
        )
    run.rescore(task_plugin(results))
    lengths = run.lengths
    return RunData(
        run.dir,
        results,
        run.doc_ids,
        G,
        u=run.u,
        verifiers=run.verifiers,
        unscored=run.unscored,
        verdicts=run.verdicts,
        answers={d: [gr.answer for gr in run.grades[d]] for d in run.doc_ids},
        lengths=None if lengths is None else {d: [float(x) for x in row] for d, row in lengths.items()},
        recorded=run.recorded,
    )
