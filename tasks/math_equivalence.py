"""Whether two final answers to a competition-maths problem are the same answer.

:func:`is_equivalent` is the ground-truth grader ``g`` of the MATH tasks. It
never raises and always returns within about ``timeout_s`` seconds:

1. **Fast path** (pure string work, microseconds): both answers are normalised
   (:func:`normalize_answer`: ``$``, ``\\left``/``\\right``, spacing commands,
   ``\\dfrac``/``\\tfrac``, degrees, percent signs, dollar signs, unit words in
   ``\\text{}``, thousands separators, a trailing full stop, a leading ``x =``)
   and compared; two plain rational numbers are compared exactly.
2. **math-verify** (Hugging Face's maintained LaTeX/SymPy answer checker) for
   everything else: ``0.5`` vs ``\\frac12``, ``\\sqrt{8}`` vs ``2\\sqrt{2}``,
   intervals, sets, tuples, matrices, expressions. The gold is its first
   argument: its comparison is not symmetric.

Conventions worth knowing (the tests pin them down):

- A bare comma-separated list (``2, 3``) is a *set* of answers, as MATH's
  "enter all solutions, separated by commas" asks: ``3, 2`` equals ``2, 3``.
  A parenthesised pair ``(2, 3)`` is an ordered pair (or an open interval) and
  ``(3, 2)`` does not equal it.
- ``10\\%`` equals ``10`` (MATH writes percentages both ways); it also equals
  ``0.1`` through math-verify.
- Decimals are not rounded by us: ``0.33`` is not ``\\frac13``; math-verify
  accepts a decimal that agrees with the gold to 6 places.
- An inequality in one variable against an interval is read as that interval,
  whichever side is the gold: ``x \\geq 2`` is ``[2,\\infty)``, ``1<x\\le 4`` is
  ``(1,4]``, and an open end is not a closed one (``x>2`` is not ``[2,\\infty)``).
- ``\\sqrt23`` is read as TeX sets it, ``\\sqrt{2}3`` (= ``3\\sqrt{2}``), not as
  ``\\sqrt{23}``: a bare ``\\sqrt`` takes one digit or letter (MATH's own answers
  write ``\\sqrt2``, ``\\sqrt 5``, ``\\sqrt3i``, never a longer bare radicand).
- ``x = 5`` equals ``5``, but when both answers are equations of one variable
  (``y = 5``, ``x = 5``) the variables must be the same.

Timeouts. math-verify's own timeout is ``signal.alarm``: whole seconds, one per
parse and per comparison, and a ``ValueError`` outside the main thread. So we
switch it off (``parsing_timeout=None, timeout_seconds=None``) and guard the
whole parse+verify call ourselves, with one deadline of ``timeout_s``:

- in the main thread (POSIX): ``signal.setitimer(ITIMER_REAL)`` raises inside
  the computation. A signal also interrupts CPython's big-integer arithmetic
  (``9^{9^{9^{9}}}`` ends up in ``int.__pow__``), which nothing else in-process
  can. Any SIGALRM handler and timer set before the call are restored after it.
- in any other thread (or without ``setitimer``): the comparison runs in a
  helper process (``python -c``; started on first need in about a second, which
  the deadline does not count; reused; serialised by a lock), killed when the
  deadline passes and started afresh on the next call. A thread-based guard (an
  asynchronous exception raised into the grading thread) was tried and
  rejected: it cannot interrupt ``int.__pow__``, and ``9^{9^{9^{9}}}`` hung it
  for minutes.

A timed-out comparison counts as not equivalent.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import queue
    import subprocess
    from types import FrameType

__all__ = ["is_equivalent", "normalize_answer"]

# math-verify warns once that its timeout is off: we guard the call ourselves.
class _DropTimeoutDisabledWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())

# Answers longer than this skip math-verify (string comparison only): no MATH
# answer is near it, and a long one is a runaway generation, not an answer.
MAX_ANSWER_CHARS = 1000


def is_equivalent(pred: str | None, gold: str | None, timeout_s: float = 2.0) -> bool:
    """True when the predicted final answer ``pred`` is the gold answer ``gold``.

    Never raises; a parse failure, an empty answer or a timeout give False.
    """
    try:
        if pred is None or gold is None:
            return False
        pred, gold = str(pred).strip(), str(gold).strip()
        if not pred or not gold:
            return False
        pred, gold = _inequality_as_interval(pred, gold), _inequality_as_interval(gold, pred)
        fast = _fast_path(pred, gold)
        if fast is not None:
            return fast
        if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
            return False
        return bool(_math_verify_guarded(pred, gold, timeout_s))
    except Exception:  # a grader that raises would stop a whole run
        return False


# --- the fast path -------------------------------------------------------------

_SPACING = re.compile(r"\\[,;:> ]|\\q?quad\b")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_UNIT_WORD = r"(?:\\(?:text|textbf|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\^\{?\d\}?)?)"
_TRAILING_UNITS = re.compile(rf"^(.*?[\d}}])\s*{_UNIT_WORD}+\s*$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mbox|mathrm|mathbf)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"^([-+]?\d{1,3}(?:,\d{3})+)(\.\d+)?$")
_SINGLE_VAR_EQ = re.compile(r"^[a-zA-Z]\s*=\s*(?=\S)(?!.*=)(.*)$")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF_SHORT = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)|\\frac\s*(\d)\s*(\{[^{}]*\})")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d|[a-zA-Z])")  # TeX's reading: \sqrt23 is \sqrt{2}3
_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")
_REPEATING = re.compile(r"^([-+]?)(\d*)\.(\d*)\\overline\{(\d{1,20})\}$")
_FRACTION = re.compile(r"^([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}$|^([-+]?\d+)/(\d+)$")


def normalize_answer(answer: str) -> str:
    """A canonical spelling of a final answer, for string comparison.

    Conservative: two answers that normalise alike are equal; two that do not
    may still be equal (math-verify decides those).
    """
    s = answer.strip()
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _LEFT_RIGHT.sub("", s)
    s = s.replace("\\!", "")  # a negative thin space, as in 1,\!000
    s = _SPACING.sub(" ", s)
    s = s.replace("\\displaystyle", "")
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.strip()
    s = re.sub(r"\.\s*$", "", s).strip()  # a sentence's full stop, not a decimal point ("5." is 5)
    s = _TRAILING_UNITS.sub(r"\1", s)
    s = _TEXT_WRAPPER.sub(r"\1", s)
    s = s.strip()
    m = _THOUSANDS.match(s)
    if m:
        s = m.group(1).replace(",", "") + (m.group(2) or "")
    m = _SINGLE_VAR_EQ.match(s)
    if m:
        s = m.group(1)
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF_SHORT.sub(lambda m: _frac_fix(m), s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = re.sub(r"\s+", "", s)
    if s.startswith("."):
        s = "0" + s
    elif s.startswith("-."):
        s = "-0" + s[1:]
    return s


def _frac_fix(m: re.Match) -> str:
    if m.group(1) is not None:
        return f"\\frac{m.group(1)}{{{m.group(2)}}}"
    return f"\\frac{{{m.group(3)}}}{m.group(4)}"


def _as_rational(s: str) -> tuple[Fraction, bool] | None:
    """A normalised plain number as an exact fraction, and whether it was written as a decimal."""
    if len(s) > 100:  # beyond any MATH answer, and near int()'s digit limit
        return None
    if _NUMBER.match(s):
        return Fraction(s), "." in s
    m = _REPEATING.match(s)
    if m:  # 0.1\overline{6} = 1/6: exact, as a fraction is
        sign, whole, fixed, period = m.groups()
        value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed)) + Fraction(
            int(period), (10 ** len(period) - 1) * 10 ** len(fixed)
        )
        return (-value if sign == "-" else value), False
    m = _FRACTION.match(s)
    if m:
        if m.group(2) is not None:
            sign, num, den = m.group(1), m.group(2), m.group(3)
        else:
            sign, num, den = "", m.group(4), m.group(5)
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return (-value if sign == "-" else value), False
    return None


def units(answer: str) -> str | None:
    """The unit words that end an answer (``5 \\text{ cm}`` -> ``cm``), or None when it names none."""
    s = _DEGREES.sub("", answer.strip().replace("$", "")).strip()
    s = re.sub(r"\.\s*$", "", s).strip()
    m = _TRAILING_UNITS.match(s)
    if not m:
        return None
    words = re.findall(r"\{\s*([a-zA-Z][a-zA-Z .]*)\}(\^\{?\d\}?)?", s[len(m.group(1)):])
    return " ".join((w.strip() + (p or "")).lower() for w, p in words) or None


def _fast_path(pred: str, gold: str) -> bool | None:
    """True or False when string work settles it; None to ask math-verify. Two answers that both name
    units are unequal when the units differ (``5 cm`` is not ``5 m``); an answer without units is
    read as in the gold's units."""
    up, ug = units(pred), units(gold)
    if up is not None and ug is not None and up != ug:
        return False
    vp, vg = _equation_variable(pred), _equation_variable(gold)
    if vp is not None and vg is not None and vp != vg:
        return False  # y = 5 is not x = 5
    p, g = normalize_answer(pred), normalize_answer(gold)
    if p and p == g:
        return True
    rp, rg = _as_rational(p), _as_rational(g)
    if rp is not None and rg is not None:
        if rp[0] == rg[0]:
            return True
        if not rp[1] and not rg[1]:
            return False  # two different exact numbers (integers, fractions)
    return None  # decimals are math-verify's: it accepts agreement to 6 places


# --- equations and inequalities of one variable -----------------------------------

_VAR_EQ = re.compile(r"^([a-zA-Z])=(?!=)")
# a relation: <, >, <=, >=, \lt, \gt, \le, \leq, \leqslant, \ge, \geq, \geqslant, and the Unicode signs
_RELATION = re.compile(r"(<=|>=|\\(?:leqslant|geqslant|leq|geq|le|ge|lt|gt)(?![a-zA-Z])|<|>|\u2264|\u2265)")
_INTERVAL = re.compile(r"^[(\[][^()\[\]]*,[^()\[\]]*[)\]]$")


def _bare(answer: str, squeeze: bool = True) -> str:
    """An answer without dollar signs, ``\\left``/``\\right``, spacing commands, a full stop and
    (``squeeze``) whitespace."""
    s = answer.strip().replace("\\$", "").replace("$", "")
    s = _LEFT_RIGHT.sub("", s)
    s = _SPACING.sub(" ", s).replace("\\!", "")
    s = re.sub(r"\.\s*$", "", s.strip())
    return re.sub(r"\s+", "", s) if squeeze else s


def _equation_variable(answer: str) -> str | None:
    """The variable of an answer written ``v = ...`` with one letter v, else None."""
    s = _bare(answer)
    m = _VAR_EQ.match(s)
    return m.group(1) if m and s.count("=") == 1 else None


def _inequality_as_interval(answer: str, other: str) -> str:
    """``answer`` written as an interval when it is an inequality in one variable (``x \\geq 2``,
    ``2 < x``, ``1 < x \\le 4``) and ``other`` is an interval; else ``answer`` unchanged."""
    if not _INTERVAL.match(_bare(other)):
        return answer
    parts = [re.sub(r"\s+", "", p) for p in _RELATION.split(_bare(answer, squeeze=False))]  # "\le x": split, then squeeze
    if len(parts) not in (3, 5) or any(not p for p in parts[::2]):
        return answer
    ops = [(op in ("<", "<=", "\\lt", "\\le", "\\leq", "\\leqslant", "\u2264"), op in ("<", ">", "\\lt", "\\gt")) for op in parts[1::2]]
    terms = parts[::2]
    variables = [i for i, t in enumerate(terms) if re.fullmatch(r"[a-zA-Z]", t)]
    if len(variables) != 1:
        return answer
    v = terms[variables[0]]
    if any(re.search(rf"(?<![\\a-zA-Z]){v}(?![a-zA-Z])", t) for i, t in enumerate(terms) if i != variables[0]):
        return answer  # the variable on both sides: not an interval
    lo, hi = ("-\\infty", False), ("\\infty", False)  # (end, closed)
    if len(terms) == 2:
        (less, strict), i = ops[0], variables[0]
        if i == 1:  # a < x reads x > a
            less = not less
        bound = (terms[1 - i], not strict)
        lo, hi = (lo, bound) if less else (bound, hi)
    else:
        if variables[0] != 1 or ops[0][0] != ops[1][0]:
            return answer  # a < x > b, or x < a < b: not an interval
        (less, s1), (_, s2) = ops
        first, second = (terms[0], not s1), (terms[2], not s2)
        lo, hi = (first, second) if less else (second, first)
    return ("[" if lo[1] else "(") + f"{lo[0]},{hi[0]}" + ("]" if hi[1] else ")")


# --- math-verify, under a deadline ------------------------------------------------


def _math_verify(pred: str, gold: str) -> bool:
    """math-verify's verdict, with its own (signal-based) timeouts off."""
    from math_verify import parse, verify

    gold_parsed = parse(_as_latex(gold), parsing_timeout=None)
    pred_parsed = parse(_as_latex(pred), parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _as_latex(answer: str) -> str:
    """An answer as a LaTeX environment math-verify extracts: ``$...$``, as its docs ask of a gold."""
    inner = answer.strip()
    if len(inner) >= 2 and inner.startswith("$") and inner.endswith("$"):
        inner = inner.strip("$")
    return f"${inner}$"


class _Timeout(BaseException):
    """Raised into a comparison whose deadline passed (BaseException: library
    code that catches Exception must not swallow it)."""


_WARM: list[bool] = []


def _warm_up() -> None:
    """Import math-verify and parse once outside any deadline: the first call loads sympy and the LaTeX
    grammar (seconds on a loaded machine), which a comparison's deadline must not pay for."""
    if not _WARM:
        _math_verify("1", "1")
        _WARM.append(True)


def _math_verify_guarded(pred: str, gold: str, timeout_s: float) -> bool:
    _warm_up()
    if timeout_s is None or timeout_s <= 0:
        return _math_verify(pred, gold)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        try:
            return _with_alarm(pred, gold, timeout_s)
        except _NoSignals:
            pass
    return _WORKER.compare(pred, gold, timeout_s)


class _NoSignals(Exception):
    """This interpreter may not set signal handlers (e.g. a subinterpreter)."""


def _with_alarm(pred: str, gold: str, timeout_s: float) -> bool:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if frame is not None and frame.f_code is _with_alarm.__code__:
            # It landed in our own bookkeeping, not in the comparison: raising
            # here could skip the clean-up below. The 0.1 s repeat fires again.
            return
        raise _Timeout()

    try:
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:
        raise _NoSignals() from None
    # Re-fire every 0.1 s after the deadline, in case library code swallowed one.
    old_timer = signal.setitimer(signal.ITIMER_REAL, timeout_s, 0.1)
    try:
        return _math_verify(pred, gold)
    except _Timeout:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_timer[0] > 0:  # someone else's timer: put it back (with its time as of our call)
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


def _worker_loop() -> None:
    """The helper process: one JSON request per stdin line, one verdict ("1"/"0") per stdout line."""
    import json
    import sys

    import math_verify  # noqa: F401  (imported before "ready": startup is not a comparison's time)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            verdict = _math_verify(request["pred"], request["gold"])
        except Exception:
            verdict = False
        sys.stdout.write("1\n" if verdict else "0\n")
        sys.stdout.flush()


class _Worker:
    """A helper process for comparisons outside the main thread: killable at the deadline.

    A plain subprocess (``python -c``), not ``multiprocessing``: spawning would
    re-import the caller's ``__main__``, which breaks scripts without a
    ``if __name__ == "__main__"`` guard.
    """

    STARTUP_TIMEOUT_S = 120.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] | None = None

    def compare(self, pred: str, gold: str, timeout_s: float) -> bool:
        import json
        import queue

        with self._lock:
            if not self._start():
                return False
            assert self._process is not None and self._process.stdin is not None and self._replies is not None  # started above
            try:
                self._process.stdin.write(json.dumps({"pred": pred, "gold": gold}) + "\n")
                self._process.stdin.flush()
                reply = self._replies.get(timeout=timeout_s)
                if reply is not None:
                    return reply.strip() == "1"
            except (queue.Empty, OSError, ValueError):
                pass
            self._stop()  # timed out or died: kill it; a fresh one serves the next call
            return False

    def _start(self) -> bool:
        import queue
        import subprocess
        import sys
        from pathlib import Path

        if self._process is not None and self._process.poll() is None:
            return True
        self._stop()
        root = str(Path(__file__).resolve().parents[1])  # the folder holding this tasks package, first on
        # sys.path so that no other "tasks" (say, one in the working directory) shadows it
        bootstrap = "import sys; sys.path.insert(0, sys.argv[1]); from tasks.math_equivalence import _worker_loop; _worker_loop()"
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", bootstrap, root],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, encoding="utf-8", bufsize=1,
            )
        except OSError:
            logging.getLogger(__name__).warning("could not start the math-verify helper process (%s)", sys.executable)
            return False
        replies: queue.Queue = queue.Queue()

        def read_replies() -> None:  # a thread, so that waiting for a reply can time out on any platform
            for line in process.stdout or ():
                replies.put(line)
            replies.put(None)  # the process ended

        threading.Thread(target=read_replies, daemon=True, name="gapbench-math-verify-reader").start()
        self._process, self._replies = process, replies
        try:
            if replies.get(timeout=self.STARTUP_TIMEOUT_S) == "ready\n":
                return True
        except queue.Empty:
            pass
        self._stop()
        logging.getLogger(__name__).warning(
            "could not start the math-verify helper process (%s); answers that need math-verify "
            "and are graded outside the main thread count as not equivalent", sys.executable
        )
        return False

    def _stop(self) -> None:
        process, self._process, self._replies = self._process, None, None
        if process is not None:
            process.kill()
            process.wait(5)
            for stream in (process.stdin, process.stdout):
                if stream is None:
                    continue
                try:
                    stream.close()
                except OSError:
                    pass


_WORKER = _Worker()
