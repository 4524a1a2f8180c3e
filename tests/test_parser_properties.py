"""Property-based tests (hypothesis) of every extractor, grader and verdict parser: they never raise
on any string, always return a value of their domain, and never accept a wrong answer through a
parsing quirk."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gapbench.tasks import TASKS, Doc
from gapbench.tasks.math_equivalence import is_equivalent, normalize_answer
from gapbench.verifiers.prompts import parse_score, parse_verdict

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(max_size=300)
NUMBER = st.integers(min_value=-10**6, max_value=10**6)


# --- verdict parsers -----------------------------------------------------------------------------


@FAST
@given(TEXT)
def test_parse_verdict_never_raises_and_is_0_1_or_none(text):
    assert parse_verdict(text) in (0, 1, None)


@FAST
@given(TEXT)
def test_parse_score_never_raises_and_is_on_the_scale_or_none(text):
    s = parse_score(text)
    assert s is None or 1 <= s <= 10


@FAST
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r"), max_size=120).filter(lambda t: not any(w in t.lower() for w in ("correct", "wrong", "right", "true", "false", "yes", "no", "verdict"))))
def test_the_stated_verdict_decides_whatever_precedes_it(prefix):
    assert parse_verdict(prefix + "\nVerdict: Correct") == 1
    assert parse_verdict(prefix + "\nVerdict: Incorrect") == 0
    assert parse_verdict(prefix + "\nVerdict: not correct") == 0  # a negation is not the word it negates


@FAST
@given(st.integers(min_value=-100, max_value=100))
def test_a_score_off_the_scale_is_not_read_as_another_number(k):
    s = parse_score(f"Check: fine.\nScore: {k}")
    assert s == (float(k) if 1 <= k <= 10 else None)


# --- task graders ----------------------------------------------------------------------------------


def _doc(task: str, target, question: str = "q", meta: dict | None = None) -> Doc:
    return Doc("d", question, target, meta or {})


@FAST
@given(TEXT, NUMBER)
def test_gsm8k_grade_never_raises_and_takes_only_the_right_number(text, n):
    task = TASKS.get("gsm8k")()
    g = task.grade(_doc("gsm8k", str(n)), text)
    assert g.g in (0, 1) and set(g.variants) == {"strict", "flexible"}
    assert task.grade(_doc("gsm8k", str(n)), f"So the answer is #### {n}").g == 1
    assert task.grade(_doc("gsm8k", str(n)), f"So the answer is #### {n + 1}").g == 0


@FAST
@given(TEXT, NUMBER)
def test_arith_grade_never_raises_and_takes_only_the_right_number(text, n):
    task = TASKS.get("arith")()
    assert task.grade(_doc("arith", n), text).g in (0, 1)
    assert task.grade(_doc("arith", n), f" {n}\n\nQ: 1 + 1").g == 1
    assert task.grade(_doc("arith", n), f" {n - 7}").g == 0


@FAST
@given(TEXT, st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))
def test_nq_open_grade_never_raises_and_f1_is_a_share(text, aliases):
    g = TASKS.get("nq_open")().grade(_doc("nq_open", aliases), text)
    assert g.g in (0, 1) and 0.0 <= g.variants["f1"] <= 1.0


@FAST
@given(TEXT)
def test_sudoku_grade_never_raises(text):
    task = TASKS.get("sudoku")(count="2")
    doc = task.docs("test")[0]
    assert task.grade(doc, text).g in (0, 1)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_math_equivalence_never_raises_on_any_pair(a, b):
    assert is_equivalent(a, b, timeout_s=0.5) in (True, False)
    assert isinstance(normalize_answer(a), str)


@FAST
@given(NUMBER, NUMBER)
def test_math_different_integers_are_never_equal_and_equal_ones_are(a, b):
    assert is_equivalent(str(a), str(a)) is True
    assert is_equivalent(str(a), str(b)) is (a == b)


@FAST
@given(st.integers(min_value=1, max_value=500), st.sampled_from(["cm", "m", "km", "inches", "feet"]), st.sampled_from(["cm", "m", "km", "inches", "feet"]))
def test_math_units_must_agree_when_both_answers_name_them(n, u, v):
    assert is_equivalent(f"{n} \\text{{ {u}}}", f"{n} \\text{{ {v}}}") is (u == v)
    assert is_equivalent(str(n), f"{n} \\text{{ {v}}}") is True  # a bare number is read in the gold's units


@FAST
@given(st.integers(min_value=1, max_value=9))
def test_math_repeating_decimals_are_exact(k):
    assert is_equivalent(f"0.\\overline{{{k}}}", f"\\frac{{{k}}}{{9}}") is True
    assert is_equivalent(f"0.\\overline{{{k}}}", f"\\frac{{{k}}}{{10}}") is False


@FAST
@given(st.sampled_from(["Verdict: Correct", "Verdict: Incorrect", "Score: 8", "Score: 2/10"]), st.from_regex(r"[A-Za-z]{2}[A-Za-z ,.0-9]{0,40}", fullmatch=True).filter(lambda a: not a.lower().startswith(("verdict", "score"))))
def test_a_verdict_the_reply_argues_on_from_is_no_final_verdict(verdict, argument):
    reply = f"Check: 12 - 5 = 8.\n{verdict}\n{argument}"
    assert parse_verdict(reply) is None if verdict.startswith("Verdict") else parse_score(reply) is None
    assert (parse_verdict(f"Check: fine.\n{verdict}") is not None) or (parse_score(f"Check: fine.\n{verdict}") is not None)
