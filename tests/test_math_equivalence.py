"""The MATH grader: answer equivalence, its timeouts, and final-answer extraction."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from gapbench.tasks.math import extract_answer, last_boxed
from gapbench.tasks.math_equivalence import is_equivalent, normalize_answer

EQUIVALENT = [
    # the same answer, spelled differently
    ("3", "3"),
    ("\\frac{1}{2}", "\\frac{1}{2}"),
    ("$\\frac{1}{2}$", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac{3}{4}", "\\frac34"),
    ("\\frac12", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    # fractions and decimals
    ("0.5", "\\frac{1}{2}"),
    ("\\frac{3}{2}", "1.5"),
    (".5", "0.5"),
    ("-\\frac{2}{3}", "-\\frac{2}{3}"),
    ("\\frac{-2}{3}", "-\\frac{2}{3}"),
    ("18.9", "\\$18.90"),
    # units, degrees, text wrappers
    ("90", "90^\\circ"),
    ("90^{\\circ}", "90^\\circ"),
    ("5 \\text{ cm}", "5"),
    ("5", "5\\text{ cm}^2"),
    ("12", "12\\mbox{ inches}"),
    ("\\text{Evelyn}", "\\text{Evelyn}"),
    ("Evelyn", "\\text{Evelyn}"),
    ("\\text{(C)}", "\\text{(C)}"),
    ("(C)", "\\text{(C)}"),
    ("\\$5", "5"),
    # percentages
    ("10\\%", "10\\%"),
    ("10", "10\\%"),
    ("0.1", "10\\%"),
    # thousands separators
    ("1,000", "1000"),
    ("1000", "1,\\!000"),
    ("12,345.5", "12345.5"),
    # intervals, tuples, sets, multiple answers
    ("[2, 5)", "[2,5)"),
    ("(-\\infty, 3]", "(-\\infty,3]"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("(1, 2)", "(1,2)"),
    ("2, 3", "3, 2"),  # a list of answers is a set: order does not matter
    ("3,5,7", "3, 5, 7"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    # matrices
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}"),
    # pi, radicals, expressions
    ("2\\pi", "2 \\pi"),
    ("\\pi \\cdot 2", "2\\pi"),
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("11\\sqrt{2}", "11\\sqrt2"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
    ("x^2+2x+1", "(x+1)^2"),
    ("6 - 5i", "6-5i"),
    # equations and a trailing full stop
    ("x = 5", "5"),
    ("5", "x=5"),
    ("y = 2x + 3", "y=2x+3"),
    ("24.", "24"),
]

NOT_EQUIVALENT = [
    ("2", "3"),
    ("-2", "2"),
    ("\\frac{1}{3}", "\\frac{2}{3}"),
    ("0.33", "\\frac{1}{3}"),  # decimals are not rounded to the gold
    ("6.28", "2\\pi"),
    ("(3, 2)", "(2, 3)"),  # an ordered pair is ordered
    ("(2,5)", "[2,5)"),  # an open end is not a closed one
    ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\sqrt{2}", "2\\sqrt{2}"),
    ("\\text{Bob}", "\\text{Evelyn}"),
    ("\\text{odd}", "\\text{even}"),
    ("x^2+1", "(x+1)^2"),
    ("2, 3", "2, 3, 4"),  # a missing answer
    ("1000", "100"),
    ("1,000", "1,001"),
    ("", "5"),
    (None, "5"),
    ("\\frac{1}{0}", "1"),
]


@pytest.mark.parametrize("pred,gold", EQUIVALENT)
def test_equivalent(pred, gold):
    assert is_equivalent(pred, gold) is True


@pytest.mark.parametrize("pred,gold", NOT_EQUIVALENT)
def test_not_equivalent(pred, gold):
    assert is_equivalent(pred, gold) is False


# An inequality in one variable against an interval: the same verdict whichever is the gold, and an
# open end is not a closed one.
INEQUALITY_INTERVAL = [
    ("x \\geq 2", "[2,\\infty)", True),
    ("1<x<4", "(1,4)", True),
    ("x>1", "(1,\\infty)", True),
    ("x \\le 2", "(-\\infty, 2]", True),
    ("2\\le x<4", "[2,4)", True),
    ("-2 < x \\leq 3", "(-2,3]", True),
    ("4 > x \\geq 1", "[1,4)", True),  # written from above
    ("2 < x", "(2,\\infty)", True),  # the variable on the right
    ("x > \\frac12", "(0.5,\\infty)", True),
    ("t \\geqslant 0", "\\left[0, \\infty\\right)", True),
    # near misses: an end open instead of closed (or the other way), a wrong end, a wrong side
    ("x > 2", "[2,\\infty)", False),
    ("x \\geq 2", "(2,\\infty)", False),
    ("1<x<4", "[1,4]", False),
    ("1 \\le x < 4", "(1,4)", False),
    ("x < 2", "(-\\infty,2]", False),
    ("x \\geq 3", "[2,\\infty)", False),
    ("1<x<4", "(1,5)", False),
    ("2 < x", "(-\\infty,2)", False),
    ("1 < x > 4", "(1,4)", False),  # not an interval
    ("x < 2x", "(-\\infty,2)", False),  # the variable on both sides
]


@pytest.mark.parametrize("inequality,interval,expected", INEQUALITY_INTERVAL)
def test_inequality_against_interval_either_way(inequality, interval, expected):
    assert is_equivalent(inequality, interval) is expected
    assert is_equivalent(interval, inequality) is expected


# \sqrt23 as TeX sets it (and MATH's answers write it): \sqrt{2}3 = 3\sqrt{2}, never \sqrt{23}
SQRT_SHORT = [
    ("\\sqrt23", "3\\sqrt{2}", True),
    ("\\sqrt 23", "3\\sqrt2", True),
    ("\\sqrt23", "\\sqrt{2} \\cdot 3", True),
    ("\\sqrt23", "\\sqrt{23}", False),
    ("\\sqrt{23}", "3\\sqrt{2}", False),
    ("\\sqrt{23}", "\\sqrt{23}", True),
    ("\\sqrt3i", "i\\sqrt{3}", True),
]


@pytest.mark.parametrize("a,b,expected", SQRT_SHORT)
def test_bare_sqrt_takes_one_token_either_way(a, b, expected):
    assert is_equivalent(a, b) is expected
    assert is_equivalent(b, a) is expected


# an equation of one variable: its variable must match the other equation's
EQUATION_VARIABLE = [
    ("y=5", "x=5", False),
    ("y = 2x+3", "x = 2y+3", False),
    ("k = 4", "n=4", False),
    ("x=5", "x = 5", True),
    ("x = 5", "5", True),  # one side names no variable: the value decides
    ("y = 2x + 3", "y=2x+3", True),
    ("y=6", "y=5", False),
]


@pytest.mark.parametrize("a,b,expected", EQUATION_VARIABLE)
def test_equation_variables_must_match(a, b, expected):
    assert is_equivalent(a, b) is expected
    assert is_equivalent(b, a) is expected


def test_case_counts():
    assert len(EQUIVALENT) + len(NOT_EQUIVALENT) >= 40
    assert len(NOT_EQUIVALENT) >= 12


@pytest.mark.parametrize(
    "raw,normal",
    [
        ("$\\dfrac{1}{2}$", "\\frac{1}{2}"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("90^{\\circ}", "90"),
        ("1,\\!000", "1000"),
        ("5\\text{ cm}^2", "5"),
        ("\\text{Evelyn}", "Evelyn"),
        ("\\$18.90.", "18.90"),
        ("x = 3", "3"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("\\sqrt23", "\\sqrt{2}3"),  # TeX's reading: one digit
        ("2, 3", "2,3"),  # a list keeps its commas
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize("pred", ["9^{9^{9^{9}}}", "10!!!", "(10^{10})!", "3^{100000000}+1"])
def test_pathological_answer_times_out(pred):
    start = time.monotonic()
    assert is_equivalent(pred, "1", timeout_s=0.5) is False
    assert time.monotonic() - start < 5


def test_never_raises_on_garbage():
    for pred in ["\\frac{", "}}}{{{", "\\begin{pmatrix}", "$$$", "\\boxed{", "a" * 5000, "\x00"]:
        assert is_equivalent(pred, "\\frac{1}{2}") is False


def test_alarm_handler_and_timer_restored():
    def mine(signum, frame):  # pragma: no cover - never fires: the timer is cancelled below
        raise AssertionError("our timer fired")

    old = signal.signal(signal.SIGALRM, mine)
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        assert is_equivalent("\\sqrt{8}", "2\\sqrt{2}")
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 90
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_outside_main_thread_uses_helper_process():
    """math-verify's signal-based timeout raises outside the main thread; ours must not."""
    results = {}

    def grade():
        results["sqrt"] = is_equivalent("\\sqrt{8}", "2\\sqrt{2}", timeout_s=2.0)
        results["half"] = is_equivalent("0.5", "\\frac{1}{2}", timeout_s=2.0)
        results["wrong"] = is_equivalent("\\sqrt{2}", "2\\sqrt{2}", timeout_s=2.0)
        start = time.monotonic()
        results["tower"] = is_equivalent("9^{9^{9^{9}}}", "1", timeout_s=1.0)
        results["tower_s"] = time.monotonic() - start
        results["after"] = is_equivalent("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", timeout_s=2.0)

    thread = threading.Thread(target=grade)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert results["sqrt"] is True and results["half"] is True and results["wrong"] is False
    assert results["tower"] is False and results["tower_s"] < 5
    assert results["after"] is True  # a fresh helper serves the call after a timeout


# --- extraction -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("so the answer is $\\boxed{5}$.", "5"),
        ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("$\\boxed{\\frac{\\sqrt{3}}{2}}$ and more", "\\frac{\\sqrt{3}}{2}"),
        ("first \\boxed{1}, then \\boxed{2}", "2"),
        ("\\fbox{7}", "7"),
        ("\\boxed{3} then \\fbox{4}", "4"),
        ("\\boxed 5", "5"),
        ("\\boxed {6}", "6"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
        ("\\boxed{3} and then cut off \\boxed{\\frac{1", "3"),  # an unclosed box falls back to the one before
        ("no box at all", None),
        ("", None),
        (None, None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    "response,expected",
    [
        ("We get $x=2$.\nThe final answer is $\\boxed{2}$.", "2"),
        ("Thus $\\boxed{\\dfrac{9}{7}}$.", "\\dfrac{9}{7}"),
        ("Final Answer: The final answer is $\\frac{2}{3}$. I hope it is correct.", "\\frac{2}{3}"),
        ("The final answer is 12.", "12"),
        ("the final answer is: 7\nProblem: next", "7"),
        ("I do not know.", None),
        ("The final answer is $\\boxed{}$.", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected
