"""One run directory read for the viewer: results.json (typed), the prompts (from the task plugin,
when its data can be loaded here), every sample with its grade, and each verifier's u, keep decision
and own replies rebuilt from ``samples.jsonl``, ``grades.jsonl`` and ``verdicts.jsonl`` with the
verifier plugins (no model call)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import Results
from gapbench.harness.store import RunStore, locate
from gapbench.harness.stored_run import StoredRun, open_stored_run
from gapbench.harness.view.prompts import RunPrompts, rebuild
from gapbench.tasks.base import Doc
from gapbench.verifiers.base import Verifier, describe_sample_replies


@dataclass
class RunView:
    dir: Path
    results: Results
    doc_ids: list[str]  # in the run's order
    questions: dict[str, str] = field(default_factory=dict)  # doc_id -> question (when the task's data loads)
    targets: dict[str, object] = field(default_factory=dict)  # doc_id -> reference answer
    meta: dict[str, dict] = field(default_factory=dict)  # doc_id -> the doc's groups (level, subject, ...)
    docs_note: str | None = None  # why the questions are not shown
    samples: dict[str, list[dict]] = field(default_factory=dict)  # doc_id -> samples.jsonl records by sample
    grades: dict[str, list[dict]] = field(default_factory=dict)  # doc_id -> grades.jsonl records by sample
    methods: list[str] = field(default_factory=list)  # the verifiers whose u could be rebuilt
    u: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # method -> doc_id -> u per sample
    kept: dict[str, dict[str, list[bool]]] = field(default_factory=dict)  # method -> doc_id -> filter keeps
    detail: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # method -> doc_id -> Verdict.detail per sample
    replies: dict[str, dict[str, dict]] = field(default_factory=dict)  # method -> doc_id -> request key -> reply
    parsers: dict[str, object] = field(default_factory=dict)  # method -> verifier plugin
    unscored: dict[str, str] = field(default_factory=dict)  # method -> why its u could not be rebuilt
    prompts: RunPrompts = field(default_factory=RunPrompts)  # every prompt the model read, rebuilt and checked
    docs: dict[str, Doc] = field(default_factory=dict, repr=False)  # doc_id -> the task's doc as loaded here

    @property
    def n(self) -> int:
        return int(self.results.sizes.n)

    @property
    def label(self) -> str:
        m = self.results.model
        name = str(m.name or m.hub_id or m.id)
        return name + (f" (round {m.round})" if m.round not in (None, 0) else "")

    def g(self, doc_id: str) -> list[int]:
        return [int(r["g"]) for r in self.grades[doc_id]]


def has_store(results_path: Path) -> bool:
    d = results_path.parent
    return (d / "samples.jsonl").is_file() and (d / "grades.jsonl").is_file()


def load_view(path: str | Path, data_dir: str | Path | None = None) -> RunView:
    rpath = locate(path)
    if not has_store(rpath):
        raise GapbenchError(
            f"{rpath}: no samples.jsonl and grades.jsonl beside it; the viewer needs the run directory that "
            "`gapbench run` wrote, not only its results.json."
        )
    run = open_stored_run(rpath)
    assert run.results is not None
    view = RunView(run.dir, run.results, run.doc_ids)
    view.samples = run.samples
    view.grades = {d: [asdict(gr) for gr in run.grades[d]] for d in run.doc_ids}
    task = _load_docs(view, data_dir)
    _rescore(view, run, task)
    if task is not None:
        _prompts(view, run, task)
    else:
        view.prompts.note = view.docs_note
    return view


def _prompts(view: RunView, run: StoredRun, task) -> None:
    """Every generation and verification prompt, rebuilt from the plugins and checked against the digests
    the run stored (:mod:`harness.view.prompts`)."""
    r = view.results
    judged = RunStore(run.dir).judged() if any(getattr(v, "uses_model", True) for v in view.parsers.values()) else {}
    view.prompts = rebuild(
        task,
        view.docs,
        {d: view.samples[d] for d in view.doc_ids},
        view.parsers,
        judged,
        chat=bool(r.chat and r.chat.apply_chat_template),
        recorded={"version": r.task.version, "verification_prompts": r.task.verification_prompts},
    )


def _load_docs(view: RunView, data_dir) -> object | None:
    """The task plugin, and the run's questions, references and groups where its data loads here."""
    from gapbench.tasks import TASKS

    r = view.results
    try:
        task = TASKS.get(r.task.name)(**(r.task.options or {}))
    except Exception as exc:  # an unknown or changed task plugin: the samples are still shown
        view.docs_note = f"task {r.task.name!r} could not be set up here ({exc})"
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a viewer never waits on the network
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        docs = task.docs(r.task.split, Path(data_dir) if data_dir else None, None)
    except Exception as exc:
        view.docs_note = f"the questions of {r.task.name!r} could not be loaded here ({type(exc).__name__}: {exc}); give --data-dir"
        return task
    by_id = {d.doc_id: d for d in docs}
    for doc_id in view.doc_ids:
        doc = by_id.get(doc_id)
        if doc is not None:
            view.questions[doc_id] = doc.question
            view.targets[doc_id] = doc.target
            view.meta[doc_id] = {k: str(doc.meta.get(k)) for k in task.group_keys}
            view.docs[doc_id] = doc
    missing = len(view.doc_ids) - len(view.questions)
    if missing:
        view.docs_note = f"{missing} of the run's prompts are not in the task's data as loaded here"
    return task


def _rescore(view: RunView, run: StoredRun, task) -> None:
    docs = {d: Doc(d, view.questions.get(d, ""), view.targets.get(d), view.meta.get(d, {})) for d in view.doc_ids}
    run.rescore(task, docs=docs)
    view.replies, view.u, view.unscored = run.replies, run.u, run.unscored
    for method, v in run.verifiers.items():
        view.methods.append(method)
        view.parsers[method] = v
        view.kept[method] = run.keep(method)
        view.detail[method] = {d: [dict(x.detail) for x in run.verdicts[method][d]] for d in view.doc_ids}


def sample_replies(view: RunView, method: str, doc_id: str) -> list[list[dict]]:
    """A verifier's own replies per sample, as the verifier describes them
    (:meth:`verifiers.base.Verifier.describe_replies`: CoT texts with the verdict read from them,
    log-probabilities (MC), tournament matches)."""
    got = view.replies.get(method, {}).get(doc_id, {})
    verifier = view.parsers.get(method)
    if isinstance(verifier, Verifier):
        return verifier.describe_replies(got, view.n)
    return describe_sample_replies(got, view.n)

