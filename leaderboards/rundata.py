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
from gapbench.harness.results import Results
from gapbench.harness.results import load as load_results
from gapbench.harness.settings import N_BOOT, SEED
from gapbench.harness.store import NEEDS_RUN_DIR, RunStore, locate, run_dir_of
from gapbench.verifiers.suite import keep_mask


@dataclass
class RunData:
    dir: Path
    results: Results
    doc_ids: list[str]  # in the run's order
    G: np.ndarray  # prompts x n, ground truth g
    u: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method -> doc_id -> u per sample
    verifiers: dict[str, object] = field(default_factory=dict)  # method -> verifier plugin
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
    results_path = locate(path, task)
    results, _ = load_results(results_path)
    rdir = run_dir_of(results_path, results)
    n = int(results.sizes.n)
    grades_path = rdir / "grades.jsonl"
    graded = RunStore(rdir).grades()
    per_doc = {d: {i: int(r["g"]) for i, r in rows.items()} for d, rows in graded.items()}
    answers = {d: {i: r.get("answer") for i, r in rows.items()} for d, rows in graded.items()}
    if not per_doc:
        raise GapbenchError(f"{grades_path}: no graded samples. Run `gapbench run` again on this directory to score it.")
    doc_ids = list(per_doc)
    for d in doc_ids:
        if sorted(per_doc[d]) != list(range(n)):
            raise GapbenchError(
                f"{grades_path}: doc {d} has samples {sorted(per_doc[d])}, expected 0..{n - 1} (results.json sizes.n = {n}). "
                "Run `gapbench run` again on this directory to rescore it."
            )
    G = np.array([[per_doc[d][i] for i in range(n)] for d in doc_ids], dtype=float)
    recorded_J = results.generation.J.value
    if recorded_J is not None and abs(float(G.mean(axis=1).mean()) - recorded_J) > 1e-9:
        raise GapbenchError(
            f"{grades_path} gives J(f) = {G.mean(axis=1).mean():.6f} but {results_path} records {recorded_J:.6f}: "
            "the files are from different scorings. Run `gapbench run` again on this directory to rescore it."
        )
    data = RunData(rdir, results, doc_ids, G)
    data.answers = {d: [answers[d][i] for i in range(n)] for d in doc_ids}
    _rescore(data, per_doc)
    return data


def _rescore(data: RunData, per_doc: dict[str, dict[int, int]]) -> None:
    """Fill ``data.u`` and ``data.verifiers`` from the stored replies, method by method."""
    from gapbench.tasks import TASKS, Doc
    from gapbench.verifiers.suite import build_verifiers, score_all, u_of

    results = data.results
    store = RunStore(data.dir)
    data.recorded = store.resampling()
    if not store.samples_path.is_file():
        raise GapbenchError(f"{store.samples_path}: missing; {NEEDS_RUN_DIR}.")
    stored = store.samples()
    samples = {}
    for d in data.doc_ids:
        got = stored.get(d, {})
        if any(i not in got for i in range(data.n)):
            raise GapbenchError(f"{store.samples_path}: doc {d} lacks some of its {data.n} samples; run `gapbench run` again on {data.dir}.")
        samples[d] = [got[i]["response"] for i in range(data.n)]
    tokens = {d: [stored[d][i].get("gen_tokens") for i in range(data.n)] for d in data.doc_ids}
    if all(x is not None for row in tokens.values() for x in row):
        data.lengths = {d: [float(x) for x in row] for d, row in tokens.items()}
    replies = store.replies()
    try:
        task = TASKS.get(results.task.name)(**(results.task.options or {}))
    except Exception:
        task = None  # an unknown or changed task plugin: verifiers score from replies alone
    try:
        verifiers = build_verifiers(list(results.verifiers), int(results.sizes.m or 1))
    except GapbenchError as exc:
        raise GapbenchError(f"{data.dir}: cannot rebuild the run's verifiers: {exc}") from None
    docs = [Doc(d, "", None, {}) for d in data.doc_ids]
    recorded = [v for v in verifiers if v.method in results.verifiers]
    verdicts = score_all(task, docs, samples, replies, recorded, lambda d: [per_doc[d][i] for i in range(data.n)], unscored=data.unscored)
    data.u.update(u_of(verdicts))
    data.verdicts.update(verdicts)
    data.verifiers.update({v.method: v for v in recorded if v.method in verdicts})
