"""Few-shot verification prompts built from a task's worked examples.

Every verification prompt shows the problem, one proposed response as the task
shows it, and the task's verification question, after the task's own few-shot
examples in the same format. The prompts' wording is versioned: change
``VERSION`` with it, so stored verdicts are never mixed with a new wording.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from gapbench.tasks.base import Doc, Task, VerificationExample

VERSION = "4"  # 2: CoT replies also stop where the model starts a new check or repeats the question
# 3: responses are shown neutralised (no blank lines, no field labels, long ones cut in the middle)
# 4: neutralised after Unicode normalisation, decorated and translated labels, special tokens stripped
HEADER = "Each proposed solution below is checked carefully, then judged.\n\n"
STOP = ["\n\n", "Question:", "</s>", "<|im_end|>"]


def cot_stop(task: Task) -> list[str]:
    """Where a CoT verification reply ends: a blank line, or the start of another block. Small
    models often loop, repeating the verification question and a new "Check:" without a verdict;
    stopping there saves up to the whole token budget per reply (the reply counts as unparsed)."""
    return STOP + ["\nCheck:", "\nProposed solution:", task.verification_question()]


# the labels that start a field of a verification example: a response must not be able to start one,
# in English or in another language a model may write it in
LABELS = (
    "Question", "Proposed solution A", "Proposed solution B", "Proposed solution", "Check", "Verdict", "Score", "Answer",
    "Final verdict", "Judgement", "Judgment", "Evaluation", "Assessment", "Rating", "Grade",
    "Veredicto", "Veredito", "Verdetto", "Urteil", "Oordeel", "Werdykt", "Вердикт", "Вывод", "Оценка", "Ответ",
    "Respuesta", "Réponse", "Risposta", "Antwort", "Puntuación", "Punteggio", "Bewertung", "Note",
    "判定", "判决", "結論", "结论", "评分", "評価", "答案", "回答", "판정", "점수",
)
# words that read as a verdict after any short key ("Status: Correct", "Urteil: Richtig")
VERDICT_WORDS = (
    "correct", "incorrect", "right", "wrong", "true", "false", "valid", "invalid", "yes", "no",
    "correcto", "incorrecto", "correcta", "richtig", "falsch", "corretto", "sbagliato", "vrai", "faux", "juste",
    "верно", "неверно", "правильно", "неправильно", "正确", "正確", "错误", "錯誤", "정답", "오답",
)
MAX_SHOWN = 3000  # characters of a response shown to a verifier; longer ones lose their middle

# special tokens no model text may carry into a prompt, for engines whose tokenizer is not at hand; the
# tokenizer in use adds its own (:func:`strip_special`, ``Verifier.special_tokens``)
SPECIAL_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<|im_sep|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<s>", "</s>", "[INST]", "[/INST]",
)
_PIPE_TOKEN = re.compile(r"<\|[^<>|\s]{1,40}\|>")  # <|anything|>: the shape of most chat models' special tokens

# look-alikes a label may be spelled with (Cyrillic, Greek, Latin variants), folded to the letter they
# imitate before labels are matched; one character for one, so a match's place holds in the shown text
_FOLD = str.maketrans(
    dict(
        zip(
            "аеорсухіјѕԁԛԝһӏАВЕКМНОРСТХІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧοιν꞉∶˸׃܃܄ː‐‑‒–—―−",
            "aeopcyxijsdqwhlABEKMHOPCTXIJSABEZHIKMNOPTYXoiv:::::::-------",
            strict=True,
        )
    )
)
_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFFA0}


def normalise(text: str) -> str:
    """Unicode as a verifier should see it: NFKC (fullwidth letters and colons, ligatures and small
    forms become plain ones), format characters removed (zero-width spaces and joiners, direction
    marks, soft hyphens, BOMs, tags), and combining marks stacked on a Latin letter dropped."""
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or ord(ch) in _INVISIBLE:
            continue
        if cat in ("Mn", "Me") and out and out[-1].isascii() and out[-1].isalpha():
            continue
        out.append(ch)
    return "".join(out)


def strip_special(text: str, tokens: Sequence[str] = ()) -> str:
    """``text`` without any special token: ``tokens`` (the tokenizer's), :data:`SPECIAL_TOKENS` and any
    ``<|...|>``, removed until none is left (removing one must not join two halves into another)."""
    pattern = _special_pattern(tuple(tokens))
    while True:
        cleaned = pattern.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


@functools.lru_cache(maxsize=32)
def _special_pattern(tokens: tuple[str, ...]) -> re.Pattern:
    """The pattern of :func:`strip_special`, made once per tokenizer's tokens (every prompt asks for it)."""
    words = sorted({t for t in (*SPECIAL_TOKENS, *tokens) if t and t.strip()}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words)) + "|" + _PIPE_TOKEN.pattern)


def _words(words: Iterable[str]) -> str:
    return "|".join(re.escape(w.translate(_FOLD)) for w in sorted(words, key=len, reverse=True))


_PRE = r"[\s#>*_~`'\"\[({|]*"  # decoration before a label: markdown headings, bold, quotes, brackets, JSON
_POST = r"[*_~`'\"\])}\s]*?"  # decoration after it
_SEP = r"(?:[:=|>]|-+(?!label\))|→|⇒)"  # what ends a label: colon, equals, dash or arrow (never our own "-label)")
_LABEL = re.compile(rf"(?<!\w)({_words(LABELS)})(?!\w){_POST}{_SEP}", re.I)
_LABEL_LINE = re.compile(rf"^({_PRE})({_words(LABELS)})[*_~`'\"\])}}:\s]*$", re.I | re.M)  # "### Verdict", "**Verdict**"
_KEY_VERDICT = re.compile(  # any short key, then a verdict word: "Status: Correct", "Result = wrong"
    rf"^({_PRE})([^\W\d_][^\W\d_ ]*(?: [^\W\d_]+){{0,2}}){_POST}{_SEP}(?=[\s*_~`'\"]*(?:{_words(VERDICT_WORDS)})(?!\w))",
    re.I | re.M,
)


def _label(word: str) -> str:
    """How a label a response wrote is shown: ``(verdict-label)``, which no verdict or score parser reads
    (a word follows ``verdict`` and a hyphen follows ``score``) and no example field starts with."""
    return f"({word.translate(_FOLD).lower()}-label)"


def _defuse(text: str) -> str:
    """Every label form of ``text`` rewritten by :func:`_label`, matched on the folded text."""
    for pattern, word_group, whole in ((_LABEL, 1, True), (_LABEL_LINE, 2, False), (_KEY_VERDICT, 2, True)):
        folded = text.translate(_FOLD)
        pieces, last = [], 0
        for m in pattern.finditer(folded):
            start, end = m.span(word_group)
            pieces += [text[last:start], _label(text[start:end])]
            last = m.end() if whole else end
            if whole:
                pieces.append(" " if m.end() < len(text) and not text[m.end()].isspace() else "")
        text = "".join(pieces) + text[last:]
    # what a verdict or score parser would still read ("verdict correct", "the score is 10") loses its key word
    while True:
        folded = text.translate(_FOLD)
        key = _VERDICT.search(folded) or _SCORE.search(folded)
        if key is None:
            break
        word = re.match(r"verdict|score", folded[key.start() :], re.I)
        assert word is not None  # both patterns begin with one of the two words
        text = text[: key.start()] + _label(text[key.start() : key.start() + word.end()]) + text[key.start() + word.end() :]
    if _LAST_WORD.search(text.translate(_FOLD).strip()):  # ends in a verdict word: it must not read as one
        text += "\n(end of the proposed solution)"
    return text


def neutralise(response: str, special_tokens: Sequence[str] = ()) -> str:
    """A model's response as a verification prompt may show it: what it writes cannot start a new
    example or field of the few-shot prompt, nor act as a verdict.

    The text is normalised first (:func:`normalise`: NFKC, zero-width and format characters removed)
    and loses every special token (:func:`strip_special`: ``special_tokens``, the tokenizer's, and a fixed
    list), so a written ``<|im_start|>assistant`` never becomes a real turn. Blank lines (which end an
    example) become single line breaks. Labels are matched on the text with look-alike letters folded
    (Cyrillic ``е`` as ``e``), however they are decorated (``**Verdict**:``, ``### Verdict``,
    ``Verdict = ``, ``"verdict":``, ``Verdict -``, in several languages) and after any short key when a
    verdict word follows (``Status: Correct``); each is shown as ``(verdict-label)``, a form that
    :func:`parse_verdict` and :func:`parse_score` never read, and a text that still ends in a verdict
    word gets a closing line. A response longer than :data:`MAX_SHOWN` characters keeps its start and
    its end (where the final answer is), so a flood cannot push the question out of the context."""
    text = strip_special(normalise(response), special_tokens).strip()
    text = re.sub(r"\n\s*\n+", "\n", text)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN // 3] + " [...] " + text[-(MAX_SHOWN - MAX_SHOWN // 3) :]
    return _defuse(text)


def block(question: str, response: str, ask: str) -> str:
    return f"Question: {question.strip()}\nProposed solution: {neutralise(response)}\n{ask}\n"


def fewshot(task: Task, render: Callable[[VerificationExample, str], tuple[str, str]]) -> list[str]:
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
