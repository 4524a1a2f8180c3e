"""One run directory read for the viewer: results.json (typed), the prompts (from the task plugin,
when its data can be loaded here), every sample with its grade, and each verifier's u, keep decision
and own replies rebuilt from ``samples.jsonl``, ``grades.jsonl`` and ``verdicts.jsonl`` with the
verifier plugins (no model call)."""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import Results
from gapbench.harness.store import locate
from gapbench.harness.stored_run import StoredRun, open_stored_run

MATCH_KEY = re.compile(r"r(\d+):(\d+)-(\d+):(ab|ba):(A|B)")  # a tournament match's request key


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
    return view


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
    missing = len(view.doc_ids) - len(view.questions)
    if missing:
        view.docs_note = f"{missing} of the run's prompts are not in the task's data as loaded here"
    return task


def _rescore(view: RunView, run: StoredRun, task) -> None:
    from gapbench.tasks import Doc

    docs = {d: Doc(d, view.questions.get(d, ""), view.targets.get(d), view.meta.get(d, {})) for d in view.doc_ids}
    run.rescore(task, docs=docs)
    view.replies, view.u, view.unscored = run.replies, run.u, run.unscored
    for method, v in run.verifiers.items():
        view.methods.append(method)
        view.parsers[method] = v
        view.kept[method] = run.keep(method)
        view.detail[method] = {d: [dict(x.detail) for x in run.verdicts[method][d]] for d in view.doc_ids}


def sample_replies(view: RunView, method: str, doc_id: str) -> list[list[dict]]:
    """A verifier's own replies per sample: CoT texts with the verdict read from them, log-probabilities
    by option (MC), and tournament matches (round, opponent, P(this sample is the correct one), won)."""
    n = view.n
    out: list[list[dict]] = [[] for _ in range(n)]
    got = view.replies.get(method, {}).get(doc_id, {})
    parse = getattr(view.parsers.get(method), "parse", None)
    matches: dict[tuple[int, int, int], dict] = defaultdict(dict)
    for key, reply in got.items():
        head, _, rest = str(key).partition(":")
        if not head.isdigit():
            m = MATCH_KEY.fullmatch(str(key))
            if m:
                matches[(int(m[1]), int(m[2]), int(m[3]))][(m[4], m[5])] = reply
            continue
        if int(head) >= n:
            continue
        item: dict = {"key": rest}
        if isinstance(reply, str):
            item["text"] = reply
            if callable(parse):
                try:
                    item["read"] = parse(reply)
                except Exception:  # a plugin's parser failing on a reply: show the reply unread
                    item["read"] = None
        else:
            item["logprob"] = reply
        out[int(head)].append(item)
    for (rnd, i, j), r in sorted(matches.items()):
        if len(r) < 4 or i >= n or j >= n:
            continue
        p_i = (_p_first(r[("ab", "A")], r[("ab", "B")]) + _p_first(r[("ba", "B")], r[("ba", "A")])) / 2
        won = p_i >= 0.5
        out[i].append({"round": rnd, "vs": j, "p": p_i, "won": won})
        out[j].append({"round": rnd, "vs": i, "p": 1 - p_i, "won": not won})
    if matches:
        for items in out:
            items.sort(key=lambda x: (x.get("round", 0), str(x.get("key", ""))))
    return out


def _p_first(lp_first: float, lp_second: float) -> float:
    top = max(lp_first, lp_second)
    a, b = math.exp(lp_first - top), math.exp(lp_second - top)
    return a / (a + b)
