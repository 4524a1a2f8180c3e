"""The task plugin API.

A task is a dataset, a generation prompt, an answer extractor with a ground-truth
grader ``g(x, y)``, and what its verifiers need: how to show a response and a few
worked verification examples. A plugin is one module in ``tasks/`` that subclasses
:class:`Task` and decorates it with :func:`tasks.register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gapbench.harness.errors import GapbenchError


@dataclass(frozen=True)
class Doc:
    """One prompt ``x`` of a task."""

    doc_id: str  # stable across runs: the key every stage file uses
    question: str  # the problem as a verifier shows it
    target: Any  # the gold answer, JSON-serialisable
    meta: dict = field(default_factory=dict)  # e.g. {"level": 3, "subject": "Algebra"}


@dataclass(frozen=True)
class Grade:
    """The ground truth ``g(x, y)`` of one response."""

    g: int  # 1 when correct under the task's primary grading, else 0
    answer: str | None  # the extracted final answer; None when none could be read
    variants: dict = field(default_factory=dict)  # other gradings, e.g. {"strict": 0, "flexible": 1}


@dataclass(frozen=True)
class VerificationExample:
    """A worked example for few-shot verification prompts."""

    question: str
    response: str  # as `show_response` would show it
    correct: bool
    rationale: str  # a short check of the response, ending before the verdict
    score: int  # 1..10, for score-style verification


class Task:
    """Base class of task plugins. Subclasses set the class attributes and
    implement ``load_docs``, ``generation_turns`` (or ``generation_prompt``), ``grade`` and
    ``verification_examples``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when a prompt or the grader changes
    splits: ClassVar[tuple[str, ...]] = ("test",)
    default_split: ClassVar[str] = "test"
    group_keys: ClassVar[tuple[str, ...]] = ()  # doc.meta keys that metrics are broken down by
    stop: ClassVar[tuple[str, ...]] = ("\n\n",)  # stop sequences for generation
    max_gen_toks: ClassVar[int | None] = None  # the task's own default; None: the harness default (512)
    defaults: ClassVar[dict[str, Any]] = {}  # options and their defaults (e.g. num_fewshot, path)

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise GapbenchError(
                f"task {self.name!r} has no option {', '.join(map(repr, unknown))}. Its options are: {known}."
            )
        self.options = {**self.defaults}
        for key, value in options.items():
            self.options[key] = _coerce(self.name, key, value, self.defaults[key])

    def require_whole(self, key: str, low: int | None = None, high: int | None = None) -> int:
        """The option ``key`` as a whole number within [low, high], or an error naming it."""
        value = self.options[key]
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and ((low is not None and value < low) or (high is not None and value > high)):
            ok = False
        if not ok:
            bound = (
                f" from {low} to {high}" if low is not None and high is not None
                else f" of {low} or more" if low is not None
                else ""
            )
            raise GapbenchError(f"task option {self.name}.{key}={value!r}: give a whole number{bound}.")
        return value

    def config(self) -> dict:
        """What identifies this task's prompts and data in run.json."""
        return {"name": self.name, "version": self.version, "options": dict(self.options)}

    def docs(self, split: str | None = None, data_dir: Path | None = None, limit: int | None = None) -> list[Doc]:
        split = split or self.default_split
        if split not in self.splits:
            raise GapbenchError(f"task {self.name!r} has no split {split!r}; its splits are: {', '.join(self.splits)}.")
        docs = self.load_docs(split, Path(data_dir) if data_dir else None)
        return docs[:limit] if limit is not None else docs

    # --- to implement -------------------------------------------------------
    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        raise NotImplementedError

    def generation_turns(self, doc: Doc) -> list[str]:
        """The generation prompt as turns: each worked example's question and answer, then the doc's
        question (``"".join`` of them is :meth:`generation_prompt`). A chat template shows them as
        user and assistant turns (``--fewshot-as-multiturn``). Implement this or
        :meth:`generation_prompt`; a task that implements only the prompt has one turn."""
        if type(self).generation_prompt is Task.generation_prompt:
            raise NotImplementedError
        return [self.generation_prompt(doc)]

    def generation_prompt(self, doc: Doc) -> str:
        return "".join(self.generation_turns(doc))

    def grade(self, doc: Doc, response: str) -> Grade:
        raise NotImplementedError

    def verification_examples(self) -> list[VerificationExample]:
        raise NotImplementedError

    # --- may override -------------------------------------------------------
    def show_response(self, doc: Doc, response: str) -> str:
        """The response as a verifier sees it."""
        return response.strip()

    def verification_question(self) -> str:
        """The question a verifier asks of a response."""
        return "Is the proposed answer correct?"


def _coerce(task: str, key: str, value: Any, default: Any) -> Any:
    """Turn a command-line string into the type of the option's default."""
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            return type(default)(v for v in value.split("+") if v)
    except ValueError:
        raise GapbenchError(
            f"task option {task}.{key}={value!r} is not a valid {type(default).__name__} (default: {default!r})."
        ) from None
    return value
