"""``arith``: integer arithmetic on a difficulty ladder, generated from a seed.

A task where small models show a real generation-verification gap: the same
format at every level, and a difficulty knob (digits per operand, number of
operands, operators) that moves generation accuracy ``J(f)`` from near 1 to
near 0. Nothing is downloaded; ``data_dir`` is ignored.

The ladder (``LEVELS``, easy to hard; a level's ``difficulty`` is its index here)::

    add1   1-digit + 1-digit
    mul1   1-digit * 1-digit
    add2   2-digit + 2-digit
    sub2   2-digit - 2-digit (answers may be negative)
    mul21  2-digit * 1-digit
    add3   3-digit + 3-digit
    mul2   2-digit * 2-digit
    mix3   three 2-digit operands, each operator one of + - *, normal precedence

A "d-digit" operand is in [10**(d-1), 10**d - 1], except that 1-digit operands
are 0..9 (so add1 and mul1 have 100 ordered pairs each). Operands are written
in the order above (mul21 is always "2-digit * 1-digit"). The options
``digits``, ``operands`` and ``ops`` replace the ladder with one custom level
named ``d{digits}x{operands}{ops}`` (e.g. ``d3x2+-``) whose difficulty is None.

Questions read "What is 37 + 45?" with the ASCII operators ``+ - *``; the target
is the integer value as a string ("82").

**Split rule (train and test are disjoint by construction).** An expression's
split is a pure function of its canonical text: it is a test problem when
``sha256("arith-split|" + expr) % m == 0`` and a train problem otherwise, with
``m = 5`` (a fifth of the expressions are test problems), except ``m = 2`` when
every operand is a single digit, so that the tiny levels keep enough test
problems. No expression can therefore be in both splits, whatever the seeds,
levels or sizes of two runs. A level's docs are the first ``per_level`` distinct
expressions of the split in a pseudo-random order fixed by (seed, level):
levels of at most 20,000 expressions are enumerated and ordered by a seeded
hash; larger ones are drawn from a seeded hash stream. Docs are prefix-stable
(``per_level=10`` gives the first 10 of ``per_level=50``). When a level's split
holds fewer than ``per_level`` expressions, all of them are produced: add1 has
46 test and 54 train problems, mul1 52 and 48, mul21 172 and 728 (fixed by the
rule; see ``split_size``). Docs are ordered round-robin over the levels,
so ``--limit`` keeps a mix of levels.

**Few-shot examples** come from a fixed stream per level, independent of the
seed, drawn from train-side expressions only, and never an expression that is
a doc of the run (for a train run, the run's train docs are filtered out; test
docs can never collide). When a tiny level runs out (a train run of add1 or
mul1 with the default ``per_level`` uses up nearly all of its train side), its
prompts get fewer examples, possibly none.

**Extraction rule** (``extract_answer``, ``extract_integer``): only the first
non-blank line of the response is read (what a verifier is shown). Unicode
minus signs and dashes become "-". If that line contains "=", the answer is
the first number after the *last* "=" (so "37 + 45 = 82" reads 82, and
"37 + 45 =" reads nothing); otherwise it is the first number of the line
("The answer is 82", "82 apples", "$82", "A: 7"). A number is an optional
sign, an optional "$", then digits with optional comma thousands separators
("1,234" is 1234; "1, 2" reads 1) and an optional decimal part: "82.0" and
"82." read 82, "82.5" reads 82.5, which is graded wrong (``extract_integer``
returns None for it).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import register
from gapbench.tasks.base import Doc, Grade, Task, VerificationExample


@dataclass(frozen=True)
class Level:
    """A difficulty: the digits of each operand, in order, and the operators to draw from."""

    name: str
    digits: tuple[int, ...]
    ops: str
    description: str

    @property
    def operands(self) -> int:
        return len(self.digits)

    def space_size(self) -> int:
        """How many distinct expressions this level has."""
        size = len(self.ops) ** (self.operands - 1)
        for d in self.digits:
            size *= _operand_count(d)
        return size


LEVELS: dict[str, Level] = {
    level.name: level
    for level in (
        Level("add1", (1, 1), "+", "1-digit + 1-digit"),
        Level("mul1", (1, 1), "*", "1-digit * 1-digit"),
        Level("add2", (2, 2), "+", "2-digit + 2-digit"),
        Level("sub2", (2, 2), "-", "2-digit - 2-digit (answers may be negative)"),
        Level("mul21", (2, 1), "*", "2-digit * 1-digit"),
        Level("add3", (3, 3), "+", "3-digit + 3-digit"),
        Level("mul2", (2, 2), "*", "2-digit * 2-digit"),
        Level("mix3", (2, 2, 2), "+-*", "three 2-digit operands, mixed + - *, normal precedence"),
    )
}

OPERATORS = "+-*"
TEST_MODULUS = 5  # an expression is a test problem when its split hash % TEST_MODULUS == 0 ...
SMALL_TEST_MODULUS = 2  # ... or % SMALL_TEST_MODULUS == 0 when all its operands are single digits
ENUMERATE_MAX = 20_000  # levels up to this many expressions are enumerated, larger ones sampled
MAX_DIGITS = 12
MAX_OPERANDS = 6

_QUESTION = re.compile(r"^What is (.+)\?$")


# --- expressions ---------------------------------------------------------------


def _operand_count(digits: int) -> int:
    return 10 if digits == 1 else 9 * 10 ** (digits - 1)


def _operand_low(digits: int) -> int:
    return 0 if digits == 1 else 10 ** (digits - 1)


def render(operands: tuple[int, ...], ops: tuple[str, ...]) -> str:
    """The canonical text of an expression: "37 + 45", "12 - 3 * 45"."""
    parts = [str(operands[0])]
    for op, value in zip(ops, operands[1:]):
        parts += [op, str(value)]
    return " ".join(parts)


def evaluate(expr: str) -> int:
    """The value of a canonical expression, with * before + and - (left to right)."""
    tokens = expr.split()
    terms: list[int] = [int(tokens[0])]
    signs: list[int] = [1]
    for op, value in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            terms[-1] *= int(value)
        elif op in "+-":
            terms.append(int(value))
            signs.append(1 if op == "+" else -1)
        else:
            raise ValueError(f"unknown operator {op!r} in {expr!r}")
    return sum(s * t for s, t in zip(signs, terms))


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha512(text.encode()).digest(), "big")


def test_modulus(expr: str) -> int:
    """1 in how many expressions like ``expr`` is a test problem: SMALL_TEST_MODULUS when
    every operand is a single digit (add1 and mul1 have only 100 expressions), else TEST_MODULUS."""
    small = all(len(token) == 1 for token in expr.split()[::2])
    return SMALL_TEST_MODULUS if small else TEST_MODULUS


def split_of(expr: str) -> str:
    """The split an expression belongs to: a pure function of its canonical text."""
    h = int.from_bytes(hashlib.sha256(f"arith-split|{expr}".encode()).digest(), "big")
    return "test" if h % test_modulus(expr) == 0 else "train"


def _expression_from_int(level: Level, h: int) -> str:
    operands = []
    for d in level.digits:
        h, r = divmod(h, _operand_count(d))
        operands.append(_operand_low(d) + r)
    ops = []
    for _ in range(level.operands - 1):
        h, r = divmod(h, len(level.ops))
        ops.append(level.ops[r])
    return render(tuple(operands), tuple(ops))


def _all_expressions(level: Level) -> Iterator[str]:
    ranges = [range(_operand_low(d), _operand_low(d) + _operand_count(d)) for d in level.digits]
    for operands in itertools.product(*ranges):
        for ops in itertools.product(level.ops, repeat=level.operands - 1):
            yield render(operands, ops)


@functools.lru_cache(maxsize=64)
def _split_expressions(level: Level, split: str) -> tuple[str, ...]:
    """Every expression of an enumerable level that belongs to ``split``, in canonical order."""
    return tuple(e for e in _all_expressions(level) if split_of(e) == split)


def split_size(level: Level, split: str) -> int | None:
    """How many expressions of ``level`` belong to ``split``; None for levels too large to enumerate."""
    if level.space_size() > ENUMERATE_MAX:
        return None
    return len(_split_expressions(level, split))


def stream(level: Level, salt: str, split: str) -> Iterator[str]:
    """Distinct expressions of ``level`` in ``split``, in a pseudo-random order fixed by ``salt``.

    Finite (the whole split) for enumerated levels; for sampled levels, drawn from
    the hash stream of ``salt`` and ended after a generous number of draws."""
    if level.space_size() <= ENUMERATE_MAX:
        candidates = list(_split_expressions(level, split))
        candidates.sort(key=lambda e: _hash_int(f"arith|{salt}|{level.name}|{e}"))
        yield from candidates
        return
    seen: set[str] = set()
    for i in itertools.count():
        if i > 100 * (len(seen) + 100):  # never reached for spaces > ENUMERATE_MAX; stops a runaway loop
            return
        expr = _expression_from_int(level, _hash_int(f"arith|{salt}|{level.name}|{i}"))
        if expr not in seen and split_of(expr) == split:
            seen.add(expr)
            yield expr


# --- extraction --------------------------------------------------------------------

_MINUS = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\ufe63\uff0d"), "-")
_NUMBER = re.compile(
    r"(?P<sign>[-+])?\$?(?P<sign2>[-+])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)"
    r"(?P<frac>\.\d+)?"
)


def answer_line(response: str) -> str:
    """The first non-blank line of a response, stripped: what is graded and shown."""
    for line in response.splitlines():
        if line.strip():
            return line.strip()
    return ""


def extract_answer(response: str) -> str | None:
    """The response's answer as a canonical number ("82", "-14", "82.5"), or None.

    See the module docstring for the rule."""
    line = answer_line(response).translate(_MINUS)
    if "=" in line:
        line = line.rsplit("=", 1)[1]
    match = _NUMBER.search(line)
    if not match:
        return None
    negative = "-" in ((match["sign"] or "") + (match["sign2"] or ""))
    try:
        value = Decimal(match["int"].replace(",", "") + (match["frac"] or ""))
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid numbers
        return None
    if negative:
        value = -value
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_integer(response: str) -> int | None:
    """The response's answer as an int; None when there is none or it is not an integer."""
    answer = extract_answer(response)
    if answer is None or not re.fullmatch(r"-?\d+", answer):
        return None
    return int(answer)


# --- the task -------------------------------------------------------------------------


@register
class Arith(Task):
    name = "arith"
    description = (
        "Integer arithmetic on a difficulty ladder (add1 ... mix3), generated from a seed; "
        "train/test disjoint by a hash of the expression."
    )
    version = "1"
    splits = ("test", "train")
    default_split = "test"
    group_keys = ("level",)
    stop = ("\n", "Q:", "</s>", "<|im_end|>")
    max_gen_toks = 16
    defaults: ClassVar[dict[str, Any]] = {
        "levels": "add1+mul1+add2+mul21+add3",
        "per_level": 12,  # the quick default run; use arith.per_level=40 or more for measurements
        "seed": 0,
        "num_fewshot": 4,
        "digits": None,
        "operands": None,
        "ops": None,
    }

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.levels = self._resolve_levels()
        self.require_whole("per_level", 1)
        self.require_whole("num_fewshot", 0)
        self.require_whole("seed")
        self._check_sizes()
        self._doc_cache: dict[str, list[Doc]] = {}
        self._fewshot_cache: dict[tuple[str, str], list[str]] = {}

    # --- options ------------------------------------------------------------------
    def _resolve_levels(self) -> list[Level]:
        opts = self.options
        if opts["digits"] is None:
            for key in ("operands", "ops"):
                if opts[key] is not None:
                    raise GapbenchError(
                        f"task option arith.{key} describes a custom level and needs arith.digits too "
                        f"(e.g. --task-args arith.digits=3,arith.{key}={opts[key]})."
                    )
            names = opts["levels"]
            if isinstance(names, str):
                names = [n.strip() for n in names.split("+")]
            elif isinstance(names, (list, tuple)):
                names = [str(n).strip() for n in names]
            else:
                raise GapbenchError(
                    f"task option arith.levels={names!r} must be level names joined by '+' (e.g. add1+add2) or a list."
                )
            names = [n for n in names if n]
            if not names:
                raise GapbenchError(f"task option arith.levels is empty. Known levels: {', '.join(LEVELS)}.")
            unknown = [n for n in names if n not in LEVELS]
            if unknown:
                raise GapbenchError(
                    f"task option arith.levels names unknown level(s) {', '.join(map(repr, unknown))}. "
                    f"Known levels: {', '.join(LEVELS)}. For another level use arith.digits, arith.operands and arith.ops."
                )
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise GapbenchError(f"task option arith.levels repeats {', '.join(map(repr, dupes))}; name each level once.")
            opts["levels"] = "+".join(names)  # one spelling for run.json, whether given as a string or a list
            return [LEVELS[n] for n in names]

        digits = _int_option("digits", opts["digits"], 1, MAX_DIGITS)
        operands = _int_option("operands", 2 if opts["operands"] is None else opts["operands"], 2, MAX_OPERANDS)
        ops = "+" if opts["ops"] is None else str(opts["ops"])
        if not ops or set(ops) - set(OPERATORS):
            raise GapbenchError(f"task option arith.ops={ops!r} must be made of the operators '+', '-' and '*' (e.g. +-).")
        ops = "".join(o for o in OPERATORS if o in ops)
        opts.update(digits=digits, operands=operands, ops=ops)
        name = f"d{digits}x{operands}{ops}"
        desc = f"{operands} operands of {digits} digit(s), operators {' '.join(ops)}"
        return [Level(name, (digits,) * operands, ops, desc)]

    def _check_sizes(self) -> None:
        per_level = self.options["per_level"]
        for level in self.levels:
            size = level.space_size()
            if size > ENUMERATE_MAX and per_level > size // (TEST_MODULUS * 4):
                raise GapbenchError(
                    f"task option arith.per_level={per_level} is too many for level {level.name!r} "
                    f"({size} expressions, about {size // TEST_MODULUS} of them test problems); "
                    f"use at most {size // (TEST_MODULUS * 4)}."
                )

    # --- data ---------------------------------------------------------------------------
    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        """The run's docs; ``data_dir`` is ignored (nothing to download)."""
        if split not in self._doc_cache:
            per_level = self.options["per_level"]
            seed = self.options["seed"]
            ladder = list(LEVELS)
            by_level = []
            for level in self.levels:
                exprs = list(itertools.islice(stream(level, f"docs|{seed}", split), per_level))
                difficulty = ladder.index(level.name) if level.name in LEVELS else None
                by_level.append(
                    [
                        Doc(
                            doc_id=f"{level.name}-{i}",
                            question=f"What is {expr}?",
                            target=str(evaluate(expr)),
                            meta={"level": level.name, "difficulty": difficulty},
                        )
                        for i, expr in enumerate(exprs)
                    ]
                )
            # round-robin over levels, so that --limit keeps a mix of levels
            self._doc_cache[split] = [
                doc for row in itertools.zip_longest(*by_level) for doc in row if doc is not None
            ]
        return list(self._doc_cache[split])

    def _level_of(self, doc: Doc) -> Level:
        name = doc.meta.get("level")
        for level in self.levels:
            if level.name == name:
                return level
        if name in LEVELS:
            return LEVELS[name]
        raise GapbenchError(
            f"arith: doc {doc.doc_id!r} is of level {name!r}, which this task's options do not describe; "
            f"run it with the options that made it."
        )

    def fewshot_expressions(self, level: Level, split: str) -> list[str]:
        """The few-shot expressions for prompts of ``level`` docs in ``split``: train-side
        expressions from a fixed stream, none of which is a doc of the run."""
        key = (level.name, split)
        if key not in self._fewshot_cache:
            k = self.options["num_fewshot"]
            exclude = {_expression(d) for d in self.load_docs(split, None) if d.meta.get("level") == level.name}
            picked = []
            if k:
                for expr in stream(level, "fewshot", "train"):
                    if expr not in exclude:
                        picked.append(expr)
                        if len(picked) == k:
                            break
            self._fewshot_cache[key] = picked
        return self._fewshot_cache[key]

    # --- prompts and grading ---------------------------------------------------------
    def generation_turns(self, doc: Doc) -> list[str]:
        level = self._level_of(doc)
        shots = self.fewshot_expressions(level, split_of(_expression(doc)))
        parts = [part for e in shots for part in (f"Q: What is {e}?\nA:", f" {evaluate(e)}\n\n")]
        parts.append(f"Q: {doc.question}\nA:")
        return parts

    def grade(self, doc: Doc, response: str) -> Grade:
        answer = extract_answer(response)
        value = extract_integer(response)
        return Grade(g=int(value is not None and value == int(doc.target)), answer=answer)

    def show_response(self, doc: Doc, response: str) -> str:
        """The first non-blank line of the response, stripped (the line that is graded)."""
        return answer_line(response)

    def verification_question(self) -> str:
        return "Is the proposed answer correct?"

    def verification_examples(self) -> list[VerificationExample]:
        """Hand-written checks on expressions no level produces (operands of mixed digit
        counts, other than mul21's 2-digit * 1-digit)."""
        return [
            VerificationExample(
                question="What is 23 + 7?",
                response="30",
                correct=True,
                rationale="23 + 7 = 30, which matches the proposed answer 30.",
                score=10,
            ),
            VerificationExample(
                question="What is 6 * 13?",
                response="68",
                correct=False,
                rationale="6 * 13 = 78, but the proposed answer is 68.",
                score=1,
            ),
            VerificationExample(
                question="What is 125 - 38?",
                response="87",
                correct=True,
                rationale="125 - 38 = 87, which matches the proposed answer 87.",
                score=9,
            ),
            VerificationExample(
                question="What is 9 - 56?",
                response="47",
                correct=False,
                rationale="9 - 56 = -47, but the proposed answer is 47: the sign is wrong.",
                score=2,
            ),
        ]


def _expression(doc: Doc) -> str:
    match = _QUESTION.match(doc.question)
    if not match:
        raise GapbenchError(f"arith: doc {doc.doc_id!r} has question {doc.question!r}, not of the form 'What is ...?'.")
    return match.group(1)


def _int_option(key: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
        if isinstance(value, bool) or (isinstance(value, float) and value != number):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise GapbenchError(f"task option arith.{key}={value!r} must be an integer from {low} to {high}.") from None
    if not low <= number <= high:
        raise GapbenchError(f"task option arith.{key}={number} must be from {low} to {high}.")
    return number
