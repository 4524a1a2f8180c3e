"""GSM8K: grade-school math word problems, graded by the final number.

Data: ``openai/gsm8k`` (config ``main``) from the hub, or ``DIR/gsm8k/{split}.jsonl``
with ``--data-dir DIR``, or one JSONL file with ``gsm8k.path=FILE``; rows have
``question`` and ``answer`` (a worked solution ending in ``#### N``).

The prompt and the grading follow lm-eval's ``gsm8k`` task (lm-eval 0.4.x,
``lm_eval/tasks/gsm8k/gsm8k.yaml``) exactly, so numbers are comparable:

- prompt: ``num_fewshot`` worked examples, ``"Question: {q}\\nAnswer: {answer}\\n\\n"``
  each, then ``"Question: {q}\\nAnswer:"``. The examples are the *first*
  ``num_fewshot`` rows of the train split (4 by default, the paper's setting; lm-eval
  samples 5 at random). When the train split itself is evaluated, its first
  ``num_fewshot`` rows are not docs, so no doc appears in its own prompt.
- ``strict`` extraction: the first ``#### N`` (regex ``#### (\\-?[0-9\\.\\,]+)``).
- ``flexible`` extraction: the last number-like span
  (regex ``(-?[$0-9.,]{2,})|(-?[0-9]+)``, last match).
- both compared to the gold number by lm-eval's ``exact_match`` with
  ``ignore_case`` and ``regexes_to_ignore`` ``[",", "\\$", "(?s).*#### ", "\\.$"]``.

``g(x, y)`` (and so ``J``) uses the **flexible** extraction, because few-shot base
models often end with a sentence rather than ``#### N``; both gradings are reported
in ``Grade.variants`` (``strict``, ``flexible``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import require
from gapbench.tasks import register
from gapbench.tasks.base import Doc, Grade, Task, VerificationExample
from gapbench.tasks.data import load_rows

STRICT_PATTERN = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE_PATTERN = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
REGEXES_TO_IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")

HUB_NAME, HUB_CONFIG = "openai/gsm8k", "main"


def extract_strict(text: str) -> str | None:
    """The number after the first ``#### `` (lm-eval's ``strict-match``); None where
    lm-eval's filter gives its fallback ``[invalid]``."""
    matches = STRICT_PATTERN.findall(text)
    return matches[0].strip() if matches else None


def extract_flexible(text: str) -> str | None:
    """The last number-like span of the text (lm-eval's ``flexible-extract``); None
    where lm-eval's filter gives its fallback ``[invalid]``."""
    matches = FLEXIBLE_PATTERN.findall(text)
    if not matches:
        return None
    groups = [group for group in matches[-1] if group]
    return groups[0].strip() if groups else None


def normalize(text: str) -> str:
    """lm-eval's ``exact_match`` normalisation for GSM8K: drop commas, ``$``,
    everything up to ``#### ``, one trailing period; lower-case."""
    for pattern in REGEXES_TO_IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def is_match(extracted: str | None, target: str) -> int:
    """1 when an extracted answer equals the gold number after normalisation."""
    return int(extracted is not None and normalize(extracted) == normalize(target))


def gold_number(answer: str) -> str | None:
    """The gold number of a GSM8K ``answer``: the text after the last ``####``,
    commas removed; None when there is no ``####``."""
    if "####" not in answer:
        return None
    return answer.split("####")[-1].strip().replace(",", "")


def format_question(question: str) -> str:
    """One question as lm-eval's ``doc_to_text`` writes it."""
    return f"Question: {question}\nAnswer:"


def format_example(question: str, answer: str) -> str:
    """One worked few-shot example: the question, the target delimiter ``" "``, the
    full worked answer and the few-shot delimiter ``"\\n\\n"``."""
    return f"{format_question(question)} {answer}\n\n"


@register
class GSM8K(Task):
    """GSM8K with lm-eval's prompt and answer extraction (see the module docstring)."""

    name = "gsm8k"
    description = "Grade-school math word problems (GSM8K), exact match on the final number as lm-eval grades it."
    splits = ("test", "train")
    default_split = "test"
    stop = ("Question:", "</s>", "<|im_end|>", "\n\n")
    defaults = {"num_fewshot": 4, "path": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.require_whole("num_fewshot", 0)
        self._data_dir: Path | None = None
        self._fewshot: list[tuple[str, str]] | None = None

    # --- data ---------------------------------------------------------------
    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        """Docs of a split. On the train split the first ``num_fewshot`` rows are the
        few-shot examples and are left out (their doc ids keep the row index)."""
        if data_dir != self._data_dir:
            self._fewshot = None  # few-shot rows come from the data source last given
        self._data_dir = data_dir
        path = self.options["path"]
        rows = self._rows(split, path, data_dir)
        source = self._source(split, path, data_dir)
        pairs = [_question_answer(row, source) for row in rows]
        skip = self.options["num_fewshot"] if split == "train" else 0
        if split == "train" and not path and len(pairs) >= skip:
            self._fewshot = pairs[:skip]  # the same rows the prompt would load
        docs = []
        for index, (row, (question, answer)) in enumerate(zip(rows, pairs)):
            if index < skip:
                continue
            target = gold_number(answer)
            if target is None:
                raise GapbenchError(
                    f"{source}:{row.get('__line__', index + 1)}: field 'answer' has no final '#### N' "
                    "(GSM8K answers end with '#### <number>'). Fix that row or remove it."
                )
            docs.append(Doc(doc_id=f"{split}-{index}", question=question, target=target, meta={}))
        return docs

    def fewshot_examples(self) -> list[tuple[str, str]]:
        """(question, answer) of the first ``num_fewshot`` train rows, from the data
        source that ``load_docs`` was given (data directory or hub); loaded once."""
        if self._fewshot is None:
            k = self.options["num_fewshot"]
            if k == 0:
                self._fewshot = []
            else:
                rows = self._rows("train", None, self._data_dir)
                source = self._source("train", None, self._data_dir)
                if len(rows) < k:
                    raise GapbenchError(
                        f"gsm8k: {source} has {len(rows)} rows, fewer than gsm8k.num_fewshot={k}. "
                        "Lower num_fewshot or give the full train split."
                    )
                self._fewshot = [_question_answer(row, source) for row in rows[:k]]
        return self._fewshot

    @staticmethod
    def _rows(split: str, path: str | None, data_dir: Path | None) -> list[dict]:
        return load_rows(
            "gsm8k",
            split=split,
            path=path,
            data_dir=data_dir,
            local_name=f"gsm8k/{split}.jsonl",
            hub=(HUB_NAME, HUB_CONFIG, split),
        )

    @staticmethod
    def _source(split: str, path: str | None, data_dir: Path | None) -> str:
        """Where rows came from, as error messages name it."""
        if path:
            return str(Path(path).expanduser())
        if data_dir is not None:
            return str(Path(data_dir).expanduser() / f"gsm8k/{split}.jsonl")
        return f"{HUB_NAME}/{HUB_CONFIG} ({split})"

    # --- generation and grading ----------------------------------------------
    def generation_turns(self, doc: Doc) -> list[str]:
        shots = [part for q, a in self.fewshot_examples() for part in (format_question(q), f" {a}\n\n")]  # format_example, split
        return [*shots, format_question(doc.question)]

    def grade(self, doc: Doc, response: str) -> Grade:
        strict = extract_strict(response)
        flexible = extract_flexible(response)
        flexible_ok = is_match(flexible, doc.target)
        return Grade(
            g=flexible_ok,
            answer=flexible,
            variants={"strict": is_match(strict, doc.target), "flexible": flexible_ok},
        )

    # --- verification ---------------------------------------------------------
    def verification_question(self) -> str:
        return "Is the final answer of this solution correct?"

    def verification_examples(self) -> list[VerificationExample]:
        """Four hand-written problems (not from GSM8K), two solved right, two wrong."""
        return list(VERIFICATION_EXAMPLES)


def _question_answer(row: dict, source: str) -> tuple[str, str]:
    """A row's question and answer, or an error naming file:line and the field."""
    return str(require(row, "question", source)), str(require(row, "answer", source))


VERIFICATION_EXAMPLES = (
    VerificationExample(
        question=(
            "A baker makes 24 muffins in the morning and 18 muffins in the afternoon. "
            "She sells 30 of them. How many muffins does she have left?"
        ),
        response="She makes 24 + 18 = 42 muffins.\nAfter selling 30, she has 42 - 30 = 12 muffins left.\n#### 12",
        correct=True,
        rationale=(
            "The total is 24 + 18 = 42, which is right. Selling 30 leaves 42 - 30 = 12, which is right. "
            "The final answer 12 follows from correct steps."
        ),
        score=9,
    ),
    VerificationExample(
        question=(
            "Tom buys 3 notebooks that cost $4 each and a pen that costs $2. "
            "He pays with a $20 bill. How much change does he get?"
        ),
        response=(
            "The notebooks cost 3 x 4 = $12.\nWith the pen, the total is 12 + 2 = $14.\n"
            "His change is 20 - 14 = $8.\n#### 8"
        ),
        correct=False,
        rationale=(
            "3 x 4 = 12 and 12 + 2 = 14 are right, but 20 - 14 = 6, not 8. "
            "The final answer 8 is wrong; it should be 6."
        ),
        score=2,
    ),
    VerificationExample(
        question=(
            "A train travels at 60 miles per hour for 2.5 hours, then at 40 miles per hour for 1 hour. "
            "How many miles does it travel in total?"
        ),
        response=(
            "In the first part it travels 60 x 2.5 = 150 miles.\nIn the second part it travels 40 x 1 = 40 miles.\n"
            "In total it travels 150 + 40 = 190 miles.\n#### 190"
        ),
        correct=True,
        rationale=(
            "60 x 2.5 = 150 and 40 x 1 = 40 are right, and 150 + 40 = 190 is right. "
            "The final answer 190 is correct."
        ),
        score=10,
    ),
    VerificationExample(
        question=(
            "A class has 32 students. One quarter of them walk to school, and half of the rest take the bus. "
            "How many students take the bus?"
        ),
        response=(
            "One quarter of 32 is 32 / 4 = 8 students who walk.\nHalf of 32 is 16, so 16 students take the bus.\n#### 16"
        ),
        correct=False,
        rationale=(
            "32 / 4 = 8 walkers is right, but the bus riders are half of the remaining 32 - 8 = 24 students, "
            "which is 12, not half of all 32. The final answer 16 is wrong; it should be 12."
        ),
        score=2,
    ),
)
