"""MATH (Hendrycks et al., 2021): competition mathematics with a boxed final answer.

Two tasks: ``math``, the full 5,000-problem test split, and ``math500``, the
MATH-500 subset (Lightman et al., "Let's Verify Step by Step"). Both use the
four worked examples of Minerva (Lewkowycz et al., 2022) as the few-shot prompt,
read the last ``\\boxed{}`` of a response, and grade it with
:func:`tasks.math_equivalence.is_equivalent` against the gold final answer.
Metrics are broken down by subject and level.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import Doc, Grade, Task, VerificationExample, register
from gapbench.tasks.data import load_rows
from gapbench.tasks.math_equivalence import is_equivalent

__all__ = ["MathTask", "Math500Task", "last_boxed", "extract_answer", "FEWSHOT"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str | None) -> str | None:
    """The content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in ``text``, braces balanced.

    ``\\boxed 5`` (no braces) gives ``5``. A box left unclosed (a response cut off
    mid-answer) is skipped for the one before it. None when there is none.
    """
    if not text:
        return None
    end = len(text)
    while True:
        start = max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)
        if start < 0:
            return None
        content = _box_content(text, start)
        if content is not None:
            return content
        end = start


def _box_content(text: str, start: int) -> str | None:
    cmd = "\\boxed" if text.startswith("\\boxed", start) else "\\fbox"
    i = start + len(cmd)
    if i < len(text) and text[i].isalpha():  # \boxedfoo is another command
        return None
    after = i
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        if i == after:
            return None
        m = re.match(r"[^\s$]+", text[i:])  # \boxed 5: the token after the space
        return (m.group().rstrip(".") or None) if m else None
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":  # \{ and \} are braces of the maths, not of the box
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
        j += 1
    return None


_FINAL_ANSWER = re.compile(r"final answer is\s*:?\s*(.+)", re.IGNORECASE)


def extract_answer(response: str | None) -> str | None:
    """The final answer of a response: its last box; failing that, what follows
    "The final answer is"; None when there is neither."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed or None  # an empty box is no answer
    if not response:
        return None
    matches = list(_FINAL_ANSWER.finditer(response))
    if not matches:
        return None
    line = matches[-1].group(1).strip()
    if line.startswith("$"):
        m = re.match(r"\$+(.+?)\$+", line)
        if m:
            return m.group(1).strip() or None
    line = re.split(r"\. (?:I hope|$)", line)[0]
    line = line.split("\n")[0].strip().rstrip(".").strip()
    return line or None


# The four worked examples of Minerva (Lewkowycz et al., 2022), MATH training
# problems, ending in the sentence the extractor falls back on.
FEWSHOT: tuple[tuple[str, str], ...] = (
    (
        "Find the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, "
        "and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, "
        "which gives $x<5$. Therefore, the domain of the expression is $[2,5)$.\n"
        "The final answer is $\\boxed{[2,5)}$.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = 24.$\n"
        "The final answer is $\\boxed{24}$.",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, "
        "how many times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of "
        "weight. If he lifts two 15-pound weights instead for $n$ times, he will lift a total of "
        "$2\\cdot15\\cdot n=30n$ pounds of weight. Equating this to 480 pounds, we can solve for $n$:\n"
        "\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=16\n\\end{align*}\n"
        "The final answer is $\\boxed{16}$.",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}"
        "has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$"
        "Since we also know that $6y-9x=b$, we have\n\n"
        "$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=-\\frac{2}{3}.$$\n"
        "The final answer is $\\boxed{-\\frac{2}{3}}$.",
    ),
)

_VERIFICATION_EXAMPLES = (
    VerificationExample(
        question="What is the sum of all positive divisors of 18?",
        response="The positive divisors of 18 are 1, 2, 3, 6, 9 and 18. Their sum is "
        "$1+2+3+6+9+18 = 39$.\nThe final answer is $\\boxed{39}$.",
        correct=True,
        rationale="18 = 2 * 3^2, so its divisors are 1, 2, 3, 6, 9, 18: none is missing. "
        "Their sum is 1+2+3+6+9+18 = 39, which agrees with (1+2)(1+3+9) = 3 * 13 = 39.",
        score=10,
    ),
    VerificationExample(
        question="Solve for $x$: $3x - 7 = 2x + 5$.",
        response="Subtracting $2x$ from both sides gives $x - 7 = 5$, and adding 7 gives $x = -2$.\n"
        "The final answer is $\\boxed{-2}$.",
        correct=False,
        rationale="The first step is right: x - 7 = 5. Adding 7 to both sides gives x = 12, not -2. "
        "Check: 3(12) - 7 = 29 and 2(12) + 5 = 29, while 3(-2) - 7 = -13 and 2(-2) + 5 = 1 differ.",
        score=1,
    ),
    VerificationExample(
        question="A bag holds 3 red and 5 blue marbles. Two marbles are drawn without replacement. "
        "What is the probability that both are red? Express your answer as a common fraction.",
        response="The probability that the first marble is red is $\\frac{3}{8}$, and then that the second is red is "
        "$\\frac{2}{7}$. So the probability is $\\frac{3}{8}\\cdot\\frac{2}{7} = \\frac{6}{56} = \\frac{3}{28}$.\n"
        "The final answer is $\\boxed{\\frac{3}{28}}$.",
        correct=True,
        rationale="After one red marble is drawn, 2 red remain among 7, so the factors 3/8 and 2/7 are right. "
        "Their product is 6/56 = 3/28. Counting gives the same: C(3,2)/C(8,2) = 3/28.",
        score=9,
    ),
    VerificationExample(
        question="Find the area of a triangle with side lengths 5, 5 and 6.",
        response="The triangle is isosceles, so the height to the side of length 6 splits it into two halves of "
        "length 3. The height is $\\sqrt{5^2 - 3^2} = 4$. The area is $6 \\cdot 4 = 24$.\n"
        "The final answer is $\\boxed{24}$.",
        correct=False,
        rationale="The height sqrt(25 - 9) = 4 is right, but the area of a triangle is half of base times height: "
        "(1/2)(6)(4) = 12. The response forgot the factor 1/2 and doubled the area.",
        score=2,
    ),
)

_SUBJECT_CONFIGS = (  # EleutherAI/hendrycks_math, concatenated in this order (that of the local copy)
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


class _MathBase(Task):
    """What ``math`` and ``math500`` share: all but where the rows come from."""

    local_name: ClassVar[str]
    group_keys = ("subject", "level")
    stop = ("Problem:", "\n\n\n", "</s>", "<|im_end|>")
    max_gen_toks = None  # the paper's 512; --max-gen-toks 1024 for long worked solutions
    defaults = {"num_fewshot": 4, "path": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.require_whole("num_fewshot", 0, len(FEWSHOT))

    def _rows(self, split: str, data_dir: Path | None) -> tuple[list[dict], str]:
        raise NotImplementedError

    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        rows, source = self._rows(split, data_dir)
        return [self._doc(i, row, split, source) for i, row in enumerate(rows)]

    def _doc(self, i: int, row: dict, split: str, source: str) -> Doc:
        where = f"{source}:{row.get('__line__', i + 1)}"
        problem = row.get("problem")
        if not isinstance(problem, str) or not problem.strip():
            raise GapbenchError(f"{where}: missing field 'problem' (a MATH row needs problem and solution or answer).")
        target = row.get("answer")
        if not isinstance(target, str) or not target.strip():
            target = last_boxed(row.get("solution"))
        if not target:
            raise GapbenchError(
                f"{where}: no gold answer: the row has no 'answer' field and its 'solution' has no \\boxed{{}}."
            )
        return Doc(
            doc_id=str(row.get("unique_id") or f"{split}-{i}"),
            question=problem.strip(),
            target=target.strip(),
            meta={"subject": row.get("subject") or row.get("type"), "level": _level(row.get("level"))},
        )

    def generation_turns(self, doc: Doc) -> list[str]:
        shots = [
            part
            for problem, solution in FEWSHOT[: self.options["num_fewshot"]]
            for part in (f"Problem:\n{problem}\n\nSolution:", f"\n{solution}\n\n")
        ]
        return [*shots, f"Problem:\n{doc.question}\n\nSolution:"]

    def grade(self, doc: Doc, response: str) -> Grade:
        answer = extract_answer(response)
        g = int(answer is not None and is_equivalent(answer, doc.target))
        return Grade(g=g, answer=answer, variants={})

    def verification_examples(self) -> list[VerificationExample]:
        return list(_VERIFICATION_EXAMPLES)

    def verification_question(self) -> str:
        return "Is the final answer of this solution correct?"


def _level(value: object) -> int | None:
    """3 from 3, "3" or "Level 3"; None from "Level ?" (a few MATH rows) or nothing."""
    if isinstance(value, int):
        return value
    m = re.search(r"\d+", str(value or ""))
    return int(m.group()) if m else None


@register
class MathTask(_MathBase):
    name = "math"
    description = "MATH test split (5,000 competition problems), Minerva 4-shot, boxed answer graded by math-verify"
    local_name = "math/test.jsonl"

    def _rows(self, split: str, data_dir: Path | None) -> tuple[list[dict], str]:
        path = self.options["path"]
        if path or data_dir is not None:
            rows = load_rows(
                self.name, split=split, path=path, data_dir=data_dir, local_name=self.local_name,
                hub=("EleutherAI/hendrycks_math", None, split),
            )
            return rows, str(path or Path(data_dir or ".") / self.local_name)  # path or data_dir: one is given
        rows = []
        for config in _SUBJECT_CONFIGS:  # the hub has one config per subject
            rows += load_rows(
                self.name, split=split, path=None, data_dir=None, local_name=self.local_name,
                hub=("EleutherAI/hendrycks_math", config, split),
            )
        return rows, "EleutherAI/hendrycks_math"


@register
class Math500Task(_MathBase):
    name = "math500"
    description = "MATH-500 (Lightman et al.'s 500-problem MATH test subset), Minerva 4-shot, graded by math-verify"
    local_name = "math500/test.jsonl"

    def _rows(self, split: str, data_dir: Path | None) -> tuple[list[dict], str]:
        path = self.options["path"]
        rows = load_rows(
            self.name, split=split, path=path, data_dir=data_dir, local_name=self.local_name,
            hub=("HuggingFaceH4/MATH-500", None, split),
        )
        source = str(path or (Path(data_dir) / self.local_name if data_dir is not None else "HuggingFaceH4/MATH-500"))
        return rows, source
