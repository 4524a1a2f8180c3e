"""gapbench tasks behind lm-eval's task hooks.

``gapbench lm-eval-tasks`` (:mod:`harness.lm_eval_tasks`) writes a folder of lm-eval
task files; their ``!function`` hooks live in a small generated module beside them,
and every hook hands over to a function here with the task's *spec*, a plain dict
baked into that module::

    {"task": "gsm8k", "options": {"num_fewshot": "4"}, "split": "test",
     "data_dir": "/abs/path" or None, "version": "1", "stop": [...]}

So the prompts, the docs and the grader are the plugin's own, called at run time:

- ``custom_dataset`` -> :func:`dataset`: the task's docs for the spec's split, as a
  ``datasets.DatasetDict`` of rows ``{doc_id, question, target, meta}`` (strings;
  ``target`` and ``meta`` JSON-encoded where they are not strings), in the order of
  ``Task.docs`` so that lm-eval's ``--limit N`` takes the same prompts as gapbench's.
- ``doc_to_text`` -> :func:`doc_to_text`: ``task.generation_prompt(doc)``, exactly.
- ``doc_to_target`` -> :func:`doc_to_target`: the gold answer as text (for logs).
- ``process_results`` -> :func:`process_results`: ``{"acc": task.grade(doc, y).g}``.

Rows carry only the ``doc_id``; the hooks look the :class:`~tasks.base.Doc` up in the
task binding that :func:`dataset` loaded (the same process), so a doc's ``meta`` and
the plugin's few-shot state are exactly those of a gapbench run.

Data: the spec's ``data_dir`` (baked in by ``--data-dir``) when set, else the
environment variable ``GAPBENCH_DATA_DIR``, else the plugin's default source (the
Hugging Face hub; generated tasks such as arith and sudoku need none).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError

DATA_DIR_ENV = "GAPBENCH_DATA_DIR"
METRIC = "acc"


@dataclass
class Binding:
    """A task object with its docs loaded from one data source."""

    task: Any  # tasks.base.Task
    split: str
    data_dir: Path | None
    docs: list = field(default_factory=list)
    by_id: dict = field(default_factory=dict)

    def doc(self, row: dict):
        doc_id = str(row.get("doc_id"))
        try:
            return self.by_id[doc_id]
        except KeyError:
            raise GapbenchError(
                f"lm-eval task gapbench_{self.task.name}: doc_id {doc_id!r} is not among the docs of "
                f"{self.task.name} ({self.split}, data from {self.data_dir or 'the default source'}). "
                "The rows must come from this task's own custom_dataset; regenerate the folder with "
                "`gapbench lm-eval-tasks` if it was edited."
            ) from None


_BINDINGS: dict[str, Binding] = {}


def data_dir_of(spec: dict) -> Path | None:
    """Where the task's local data lives: the baked ``data_dir``, else ``$GAPBENCH_DATA_DIR``, else None (hub)."""
    given = spec.get("data_dir") or os.environ.get(DATA_DIR_ENV) or None
    return Path(given).expanduser() if given else None


def binding(spec: dict) -> Binding:
    """The (cached) task object and docs for a spec; loads the docs on first use."""
    data_dir = data_dir_of(spec)
    key = json.dumps([spec["task"], spec.get("options") or {}, spec["split"], str(data_dir)], sort_keys=True, default=str)
    if key not in _BINDINGS:
        task = make_task(spec)
        docs = task.docs(spec["split"], data_dir)
        by_id = {}
        for doc in docs:
            if doc.doc_id in by_id:
                raise GapbenchError(f"task {task.name!r}: two docs have the doc_id {doc.doc_id!r}; lm-eval rows need unique ids.")
            by_id[doc.doc_id] = doc
        _BINDINGS[key] = Binding(task, spec["split"], data_dir, docs, by_id)
    return _BINDINGS[key]


def make_task(spec: dict):
    """The plugin object for a spec, after checking that the plugin still matches the generated files."""
    from gapbench.tasks import TASKS

    cls = TASKS.get(spec["task"])
    task = cls(**(spec.get("options") or {}))
    stale = []
    if "version" in spec and str(spec["version"]) != str(task.version):
        stale.append(f"version {spec['version']!r} -> {task.version!r}")
    if "stop" in spec and list(spec["stop"]) != list(task.stop):
        stale.append(f"stop sequences {spec['stop']!r} -> {list(task.stop)!r}")
    if stale:
        raise GapbenchError(
            f"lm-eval task gapbench_{task.name} was generated from an older {task.name} plugin "
            f"({'; '.join(stale)}). Regenerate the folder: gapbench lm-eval-tasks --out <that folder> "
            "(with the same --data-dir/--task-args)."
        )
    return task


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def rows(spec: dict) -> list[dict]:
    """The task's docs as lm-eval rows (all fields strings, so Arrow sees one type per column)."""
    b = binding(spec)
    return [{"doc_id": d.doc_id, "question": d.question, "target": _text(d.target), "meta": _text(d.meta)} for d in b.docs]


# --- the hooks ------------------------------------------------------------------------
def dataset(spec: dict, **metadata: Any):
    """``custom_dataset``: a ``DatasetDict`` with one split, the spec's. lm-eval passes
    the task's ``metadata`` (and model arguments) as keyword arguments; they are ignored."""
    import datasets

    table = rows(spec)
    if not table:
        raise GapbenchError(f"task {spec['task']!r} has no documents in split {spec['split']!r}.")
    return datasets.DatasetDict({spec["split"]: datasets.Dataset.from_list(table)})


def doc_to_text(spec: dict, row: dict) -> str:
    """``doc_to_text``: the task's generation prompt, exactly as ``gapbench run`` sends it."""
    b = binding(spec)
    return b.task.generation_prompt(b.doc(row))


def doc_to_target(spec: dict, row: dict) -> str:
    """``doc_to_target``: the gold answer as text (lm-eval logs it; grading does not use it)."""
    return _text(binding(spec).doc(row).target)


def grade(spec: dict, row: dict, response: str):
    """The task's :class:`~tasks.base.Grade` of one response."""
    b = binding(spec)
    return b.task.grade(b.doc(row), response)


def process_results(spec: dict, row: dict, results: list) -> dict:
    """``process_results``: ``{"acc": g}`` for the (first) response, g from the task's grader."""
    response = results[0] if results else ""
    if isinstance(response, (list, tuple)):  # repeats without a filter
        response = response[0] if response else ""
    return {METRIC: int(grade(spec, row, str(response)).g)}
