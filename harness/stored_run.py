"""A stored run read back and rescored once: :class:`StoredRun` holds a run directory's results, samples,
grades, verifier replies, the verifiers rebuilt from results.json, every verifier's verdicts and u, and
its keep masks. There is one path to it:

- :func:`open_stored_run` reads the files (through :class:`harness.store.RunStore`) and checks that every
  graded prompt has all its samples; :meth:`StoredRun.rescore` turns the stored replies into verdicts and u
  with the verifier plugins (no model call);
- :func:`load_stored_run` does both, for the readers of a finished run (``gapbench analyze``, ``leaderboard
  compare``, the viewer);
- the runner's scoring builds its StoredRun from the grades it just wrote (:func:`scored_run`) and hands it
  back, so the improve loop reads the kept samples from it instead of scoring the run again.

The verifiers score from the stored replies; without the task's data they are given stand-in docs that
carry only the ``doc_id`` (the prompts' text is not needed to turn replies into u, and loading a task's
data may need the network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import FilterRule, parse_filter
from gapbench.harness.results import Results
from gapbench.harness.results import load as load_results
from gapbench.harness.store import NEEDS_RUN_DIR, RunStore, locate, run_dir_of
from gapbench.tasks.base import Doc, Grade
from gapbench.verifiers.base import Verifier
from gapbench.verifiers.suite import build_verifiers, keep_mask, score_all, u_of


@dataclass
class StoredRun:
    dir: Path
    results: Results | None  # None only inside the runner, before its results are built
    doc_ids: list[str]  # in the run's order
    samples: dict[str, list[dict]]  # doc_id -> samples.jsonl record per sample
    grades: dict[str, list[Grade]]  # doc_id -> g and the extracted answer per sample
    replies: dict[str, dict[str, dict]]  # method -> doc_id -> request key -> stored reply
    rule: FilterRule  # the run's filter
    recorded: tuple[int, int]  # (seed, n_boot) the run was scored with (RunStore.resampling)
    verifiers: dict[str, Verifier] = field(default_factory=dict)  # method -> the verifier that scored it
    verdicts: dict[str, dict[str, list]] = field(default_factory=dict)  # method -> doc_id -> Verdict per sample
    u: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method -> doc_id -> u per sample
    unscored: dict[str, str] = field(default_factory=dict)  # method -> why its u could not be rebuilt
    results_path: Path | None = None  # the results.json it was read from (None inside the runner)
    _keeps: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(next(iter(self.grades.values()))) if self.grades else 0

    def g(self, doc_id: str) -> list[int]:
        return [gr.g for gr in self.grades[doc_id]]

    @property
    def G(self) -> np.ndarray:
        """Prompts x n, the ground truth g in the run's prompt order."""
        return np.array([self.g(d) for d in self.doc_ids], dtype=float).reshape(len(self.doc_ids), self.n)

    @property
    def responses(self) -> dict[str, list[str]]:
        return {d: [s["response"] for s in self.samples[d]] for d in self.doc_ids}

    @property
    def lengths(self) -> dict[str, list[int]] | None:
        """doc_id -> generated tokens per sample, as stored; None for a store from before token counts."""
        tokens = {d: [s.get("gen_tokens") for s in self.samples[d]] for d in self.doc_ids}
        if any(x is None for row in tokens.values() for x in row):
            return None
        return tokens  # type: ignore[return-value]

    def resampling(self, seed: int | None = None, n_boot: int | None = None) -> tuple[int, int]:
        """(seed, n_boot) of a rescoring: those given, else those the run was scored with."""
        return (self.recorded[0] if seed is None else seed, self.recorded[1] if n_boot is None else n_boot)

    def keep(self, method: str, rule: FilterRule | None = None) -> dict[str, list[bool]]:
        """doc_id -> which samples ``method`` keeps under ``rule`` (the run's filter when None), computed once per rule."""
        rule = rule or self.rule
        key = (method, rule.spec)
        if key not in self._keeps:
            v = self.verifiers[method]
            self._keeps[key] = {d: keep_mask(v, self.u, rule, d) for d in self.doc_ids}
        return self._keeps[key]

    def rescore(self, task, verifiers: list | None = None, docs: dict[str, Doc] | None = None) -> StoredRun:
        """Verdicts, u and the scoring verifiers from the stored replies: ``verifiers`` (default: those
        results.json records, rebuilt), with ``docs`` where the task's data is loaded (else stand-ins)."""
        if verifiers is None:
            r = self.results
            assert r is not None
            try:
                rebuilt = build_verifiers(list(r.verifiers), int(r.sizes.m or 1))
            except GapbenchError as exc:
                raise GapbenchError(f"{self.dir}: cannot rebuild the run's verifiers: {exc}") from None
            verifiers = [v for v in rebuilt if v.method in r.verifiers]
        docs = docs or {}
        stand_ins = [docs.get(d) or Doc(d, "", None, {}) for d in self.doc_ids]
        verdicts = score_all(task, stand_ins, self.responses, self.replies, verifiers, self.g, unscored=self.unscored)
        self.verdicts = verdicts
        self.u = u_of(verdicts)
        self.verifiers = {v.method: v for v in verifiers if v.method in verdicts}
        self._keeps.clear()
        return self


def scored_run(store: RunStore, task, docs: list[Doc], grades: dict[str, list[Grade]], verifiers: list, rule: FilterRule, seed: int, n_boot: int) -> StoredRun:
    """The runner's StoredRun: the grades it has just written, the store's samples and replies, scored by
    its own verifiers."""
    stored = store.samples()
    n = len(next(iter(grades.values()))) if grades else 0
    run = StoredRun(
        store.dir,
        None,
        [d.doc_id for d in docs],
        {d.doc_id: [stored[d.doc_id][i] for i in range(n)] for d in docs},
        grades,
        store.replies(),
        rule,
        (seed, n_boot),
    )
    return run.rescore(task, verifiers, {d.doc_id: d for d in docs})


def open_stored_run(path: str | Path, task: str | None = None) -> StoredRun:
    """A finished run's files, read once (not yet rescored: :meth:`StoredRun.rescore`). ``path``: a run
    directory or its results.json (:func:`harness.store.locate`); ``task`` picks one of several runs."""
    results_path = locate(path, task)
    results, _ = load_results(results_path)
    rdir = run_dir_of(results_path, results)
    store = RunStore(rdir)
    n = int(results.sizes.n)
    graded = store.grades()
    if not graded:
        raise GapbenchError(f"{store.grades_path}: no graded samples. Run `gapbench run` again on {rdir} to score it.")
    if not store.samples_path.is_file():
        raise GapbenchError(f"{store.samples_path}: missing; {NEEDS_RUN_DIR}.")
    stored = store.samples()
    for d, rows in graded.items():
        if sorted(rows) != list(range(n)):
            raise GapbenchError(
                f"{store.grades_path}: doc {d} has samples {sorted(rows)}, expected 0..{n - 1} (results.json sizes.n = {n}). "
                f"Run `gapbench run` again on {rdir} to rescore it."
            )
        if any(i not in stored.get(d, {}) for i in range(n)):
            raise GapbenchError(f"{store.samples_path}: doc {d} lacks some of its {n} samples; run `gapbench run` again on {rdir}.")
    run = StoredRun(
        rdir,
        results,
        list(graded),
        {d: [stored[d][i] for i in range(n)] for d in graded},
        {d: [Grade(int(r["g"]), r.get("answer"), r.get("variants") or {}) for _, r in sorted(rows.items())] for d, rows in graded.items()},
        store.replies(),
        parse_filter(str(results.filter)),
        store.resampling(),
    )
    run.results_path = results_path
    return run


def task_plugin(results: Results):
    """The run's task plugin, None when it is unknown or changed here (verifiers then score from replies alone)."""
    from gapbench.tasks import TASKS

    try:
        return TASKS.get(results.task.name)(**(results.task.options or {}))
    except Exception:
        return None


def load_stored_run(path: str | Path, task: str | None = None) -> StoredRun:
    """A finished run read and rescored from its files alone (no model call, no task data)."""
    run = open_stored_run(path, task)
    assert run.results is not None
    return run.rescore(task_plugin(run.results))
