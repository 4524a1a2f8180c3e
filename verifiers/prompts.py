"""Few-shot verification prompts built from a task's worked examples.

Every verification prompt shows the problem, one proposed response as the task
shows it, and the task's verification question, after the task's own few-shot
examples in the same format. The prompts' wording is versioned: change
``VERSION`` with it, so stored verdicts are never mixed with a new wording.
"""

from __future__ import annotations

import re

from tasks.base import Doc, Task, VerificationExample

VERSION = "3"  # 2: CoT replies also stop where the model starts a new check or repeats the question
# 3: responses are shown neutralised (no blank lines, no field labels, long ones cut in the middle)
HEADER = "Each proposed solution below is checked carefully, then judged.\n\n"
STOP = ["\n\n", "Question:", "</s>", "<|im_end|>"]


def cot_stop(task: Task) -> list[str]:
    """Where a CoT verification reply ends: a blank line, or the start of another block. Small
    models often loop, repeating the verification question and a new "Check:" without a verdict;
    stopping there saves up to the whole token budget per reply (the reply counts as unparsed)."""
    return STOP + ["\nCheck:", "\nProposed solution:", task.verification_question()]


# the labels that start a field of a verification example: a response must not be able to start one
LABELS = ("Question", "Proposed solution A", "Proposed solution B", "Proposed solution", "Check", "Verdict", "Score", "Answer")
_LABEL = re.compile(r"\b(" + "|".join(re.escape(x) for x in LABELS) + r")\s*:", re.I)
MAX_SHOWN = 3000  # characters of a response shown to a verifier; longer ones lose their middle


def neutralise(response: str) -> str:
    """A model's response as a verification prompt may show it: what it writes cannot start a new
    example or field of the few-shot prompt. Blank lines (which end an example) become single line
    breaks; the prompt's field labels (``Question:``, ``Verdict:``, ``Score:``, ...) lose their colon
    (``Verdict -``); a response longer than :data:`MAX_SHOWN` characters keeps its start and its end
    (where the final answer is), so a flood cannot push the question out of the context."""
    text = re.sub(r"\n\s*\n+", "\n", response.strip())
    text = _LABEL.sub(lambda m: f"{m.group(1)} -", text)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN // 3] + " [...] " + text[-(MAX_SHOWN - MAX_SHOWN // 3) :]
    return text


def block(question: str, response: str, ask: str) -> str:
    return f"Question: {question.strip()}\nProposed solution: {neutralise(response)}\n{ask}\n"


def fewshot(task: Task, render) -> list[str]:
    """The header and every example rendered by ``render(example, ask) -> (question, answer)``, as
    turns (question, answer, question, ...; the header opens the first question). ``"".join`` of
    them is the plain prompt's head; a chat template shows them as user and assistant turns."""
    ask = task.verification_question()
    turns = [part for e in task.verification_examples() for part in _turn_pair(render(e, ask))]
    if not turns:
        return [HEADER]
    turns[0] = HEADER + turns[0]
    return turns


def _turn_pair(pair: tuple[str, str]) -> tuple[str, str]:
    question, answer = pair
    return question, answer + "\n"


def ask(head: list[str], query: str) -> list[str]:
    """The turns of a verification prompt: the few-shot ``head`` (from :func:`fewshot`), then the
    query, which joins the head's last turn when that is a question (a head without examples)."""
    if len(head) % 2:
        return [*head[:-1], head[-1] + query]
    return [*head, query]


def target(task: Task, doc: Doc, response: str) -> str:
    return block(doc.question, task.show_response(doc, response), task.verification_question())


# --- binary verdicts (mc, cot-binary) -----------------------------------------
MC_ASK = "Answer Correct or Incorrect."
SCORE_ASK = " Score it from 1 (surely wrong) to 10 (surely right)."


# An example renderer returns (question, answer): the plain prompt shows question + answer.
def mc_example(e: VerificationExample, ask: str) -> tuple[str, str]:
    return block(e.question, e.response, f"{ask} {MC_ASK}") + "Answer:", f" {'Correct' if e.correct else 'Incorrect'}\n"


def cot_binary_example(e: VerificationExample, ask: str) -> tuple[str, str]:
    return block(e.question, e.response, ask) + "Check:", f" {e.rationale.strip()}\nVerdict: {'Correct' if e.correct else 'Incorrect'}\n"


def cot_score_example(e: VerificationExample, ask: str) -> tuple[str, str]:
    return block(e.question, e.response, ask + SCORE_ASK) + "Check:", f" {e.rationale.strip()}\nScore: {e.score}\n"


_NOT = r"(?:(?:is\s+)?not|isn't|n't|never)\s+"
_VERDICT = re.compile(rf"verdict\W{{0,4}}({_NOT})?(correct|incorrect|wrong|right|true|false|yes|no)\b", re.I)
_LAST_WORD = re.compile(rf"(\b{_NOT})?\b(correct|incorrect|wrong)\b\W*$", re.I)
_SCORE = re.compile(r"score[^0-9\n+-]{0,12}([-+]?\d+(?:\.\d+)?)(?:\s*/\s*10)?", re.I)


_FIELD_LINE = re.compile(r"\s*(verdict|score)\b", re.I)


def _argues_on(rest: str) -> bool:
    """A later line with words, other than another verdict or score line: the reply did not end at
    its verdict."""
    return any(re.search(r"[A-Za-z]{2}", line) and not _FIELD_LINE.match(line) for line in rest.split("\n")[1:])


def parse_verdict(text: str) -> int | None:
    """1 (correct), 0 (incorrect), or None when the reply gives no verdict.

    Reads the last ``Verdict: ...``; without one, a reply ending in the word
    correct/incorrect/wrong. A verdict the reply argues on from (a later line with words) is no
    final verdict: None.
    """
    found = list(_VERDICT.finditer(text))
    if found and _argues_on(text[found[-1].end() :]):
        return None  # the reply argues on after its verdict: no final verdict
    negated, word = found[-1].groups() if found else (None, None)
    if word is None:
        last = _LAST_WORD.search(text.strip())
        negated, word = (last.group(1), last.group(2)) if last else (None, None)
    if word is None:
        return None
    positive = word.lower() in ("correct", "right", "true", "yes")
    return int(positive != bool(negated))  # "not correct" is incorrect, "not wrong" correct


def parse_score(text: str) -> float | None:
    """The last ``Score: s``, when 1 <= s <= 10 and the reply ends with it (no later line with words),
    or None (a negative or out-of-scale score is not read as another number)."""
    found = list(_SCORE.finditer(text))
    if not found or _argues_on(text[found[-1].end() :]):
        return None  # no score, or the reply argues on after it
    s = float(found[-1].group(1))
    return s if 1 <= s <= 10 else None
