"""NQ-open (Lee et al., 2019; Kwiatkowski et al., 2019): open-domain questions
from Google search, answered from memory in a few words.

The 3,610 questions of the original development split (the ``validation`` split
on the hub). A response is its first line; it is correct when, normalised as in
SQuAD (lower case, no punctuation, no articles, single spaces), it equals any of
the gold aliases. Token F1 (the best over aliases) is reported beside it.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import Doc, Grade, Task, VerificationExample, register
from gapbench.tasks.data import load_rows

__all__ = ["NQOpenTask", "normalize_answer", "exact_match", "token_f1", "FEWSHOT"]

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, drop punctuation, drop the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(c for c in text if c not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _aliases(gold: str | Iterable[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else [str(a) for a in gold]


def exact_match(prediction: str | None, gold: str | Iterable[str]) -> bool:
    """True when the normalised prediction equals the normalised gold, or any one of a list of aliases."""
    if prediction is None:
        return False
    p = normalize_answer(prediction)
    return any(p == normalize_answer(a) for a in _aliases(gold))


def token_f1(prediction: str | None, gold: str | Iterable[str]) -> float:
    """SQuAD's token F1 between the normalised prediction and the gold (the best over a list of aliases).

    When either side normalises to no tokens, F1 is 1.0 if both do, else 0.0.
    """
    if prediction is None:
        return 0.0
    return max((_f1(prediction, a) for a in _aliases(gold)), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def extract_answer(response: str | None) -> str | None:
    """The answer of a response: its first non-empty line, without a leading "A:"; None when empty."""
    for line in (response or "").splitlines():
        line = re.sub(r"^\s*A:\s*", "", line).strip()
        if line:
            return line
    return None


# Hand-written trivia, none of it from NQ-open's development split.
FEWSHOT: tuple[tuple[str, str], ...] = (
    ("who wrote the novel moby dick", "Herman Melville"),
    ("what is the chemical symbol for gold", "Au"),
    ("how many strings does a standard violin have", "four"),
    ("in which country is the city of marrakesh", "Morocco"),
)

_VERIFICATION_EXAMPLES = (
    VerificationExample(
        question="who composed the four seasons violin concertos",
        response="Antonio Vivaldi",
        correct=True,
        rationale="The Four Seasons is a set of four violin concertos published in 1725 by the Venetian "
        "composer Antonio Vivaldi. The proposed answer names him.",
        score=10,
    ),
    VerificationExample(
        question="what is the largest moon of saturn",
        response="Europa",
        correct=False,
        rationale="Europa is a moon of Jupiter, not of Saturn. Saturn's largest moon is Titan, "
        "so the proposed answer is wrong.",
        score=1,
    ),
    VerificationExample(
        question="in what year were the first modern olympic games held",
        response="1896",
        correct=True,
        rationale="The first modern Olympic Games were held in Athens in 1896, revived by Pierre de Coubertin. "
        "The proposed year matches.",
        score=9,
    ),
    VerificationExample(
        question="which planet is closest to the sun",
        response="Venus",
        correct=False,
        rationale="The planet closest to the Sun is Mercury; Venus is the second planet. "
        "The proposed answer is wrong.",
        score=2,
    ),
)


@register
class NQOpenTask(Task):
    name = "nq_open"
    description = "NQ-open development split (3,610 questions), 4-shot, normalised exact match against any gold alias"
    splits = ("validation",)
    default_split = "validation"
    stop = ("\n", "Q:", "</s>", "<|im_end|>")
    max_gen_toks = 32
    defaults = {"num_fewshot": 4, "path": None}
    local_name = "nq_open/dev.jsonl"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.require_whole("num_fewshot", 0, len(FEWSHOT))

    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        path = self.options["path"]
        rows = load_rows(
            self.name, split=split, path=path, data_dir=data_dir, local_name=self.local_name,
            hub=("google-research-datasets/nq_open", None, split),
        )
        source = str(path or (Path(data_dir) / self.local_name if data_dir is not None else "google-research-datasets/nq_open"))
        return [self._doc(i, row, split, source) for i, row in enumerate(rows)]

    def _doc(self, i: int, row: dict, split: str, source: str) -> Doc:
        where = f"{source}:{row.get('__line__', i + 1)}"
        question, answer = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise GapbenchError(f"{where}: missing field 'question' (an NQ-open row is {{question, answer: [aliases]}}).")
        aliases = [answer] if isinstance(answer, str) else answer
        if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) for a in aliases):
            raise GapbenchError(f"{where}: field 'answer' must be a non-empty list of alias strings, got {answer!r}.")
        return Doc(doc_id=f"{split}-{i}", question=question.strip(), target=list(aliases), meta={})

    def generation_turns(self, doc: Doc) -> list[str]:
        shots = [part for q, a in FEWSHOT[: self.options["num_fewshot"]] for part in (f"Q: {_as_question(q)}\nA:", f" {a}\n\n")]
        return [*shots, f"Q: {_as_question(doc.question)}\nA:"]

    def grade(self, doc: Doc, response: str) -> Grade:
        answer = extract_answer(response)
        em = int(exact_match(answer, doc.target))
        return Grade(g=em, answer=answer, variants={"f1": token_f1(answer, doc.target), "em": em})

    def show_response(self, doc: Doc, response: str) -> str:
        return extract_answer(response) or ""

    def verification_examples(self) -> list[VerificationExample]:
        return list(_VERIFICATION_EXAMPLES)

    def verification_question(self) -> str:
        return "Is the proposed answer to this question correct?"


def _as_question(text: str) -> str:
    text = text.strip()
    return text if text.endswith("?") else text + "?"
