"""The scaling section in words: one sentence per fit and per step between a family's sizes, made from
the board's numbers (never written by hand), saying whether the paper's finding, the relative gap rising
with pre-training compute, reappears. Rising is said only when the whole 95% interval lies above 0."""

from __future__ import annotations

from collections.abc import Sequence

from gapbench.harness.format import number
from gapbench.leaderboards.board import ALL_MODELS, Scaling, SizeStep, Table
from gapbench.leaderboards.scaling import direction

FINDING = "the paper's finding (the relative gap rising with pre-training compute)"
# the oracle (u = g) is the bound every verifier is read against, not self-verification: its relative
# gap is the share of wrong samples a perfect filter removes, which grows with pass@n, whatever the
# paper's finding
ORACLE = "the oracle (u = g) is the upper bound, not self-verification: its relative gap grows with pass@n, so it does not bear on " + FINDING + "."
NO_RECORD = "the per-prompt records of some of its models are missing (build the board from their run directories)"


def bounds(ci: Sequence[float] | None) -> str:
    """``[lo, hi]`` with signs, or n/a."""
    return f"[{number(ci[0], signed=True)}, {number(ci[1], signed=True)}]" if ci else "n/a"


def _how(paired: bool | None) -> str:
    return "paired bootstrap over the same prompts" if paired else "bootstrap over each model's own prompts"


def fit_sentence(s: Scaling) -> str | None:
    """Across the models (or within a family of three or more sizes): the slope, its interval and what it shows."""
    fit = s.fit
    if fit is None:
        return None
    who = f"Across the {len(s.points)} models" if s.family == ALL_MODELS else f"Within {s.family} ({len(s.points)} sizes)"
    head = f"{who}, the relative gap ({s.verifier}) changes by {number(fit.slope, signed=True)} per decade of pre-training FLOPs"
    return _judged(head, fit.slope_ci, fit.paired, {
        "none": f"so whether {FINDING} reappears here is not tested.",
        "up": f": the interval lies above 0, so {FINDING} reappears here.",
        "down": f": the interval lies below 0, so the relative gap falls with compute here, against {FINDING}.",
        "flat": f": the interval includes 0, so {FINDING} is not shown here.",
    }, s.verifier)  # fmt: skip


def step_sentence(s: Scaling, st: SizeStep) -> str:
    """Two sizes of one family: the difference of relative gaps, its interval and how far it supports the finding."""
    head = f"{s.family}, {st.smaller} -> {st.larger} ({s.verifier}): relative gap {number(st.difference, signed=True)}"
    return _judged(head, st.ci, st.paired, {
        "none": f"so this pair does not test {FINDING}.",
        "up": f": the interval lies above 0, so this pair supports {FINDING}.",
        "down": f": the interval lies below 0, so this pair goes against {FINDING}.",
        "flat": f": the interval includes 0, so this pair gives no evidence either way on {FINDING}.",
    }, s.verifier)  # fmt: skip


def _judged(head: str, ci: Sequence[float] | None, paired: bool | None, endings: dict[str, str], verifier: str = "") -> str:
    """``head`` with its interval and the ending for where that interval lies (:func:`direction`); the
    oracle's says what the oracle is instead."""
    if verifier == "oracle":
        return f"{head} {bounds(ci)}: {ORACLE}"
    kind = direction(ci)
    if kind == "none":
        return f"{head}, without an interval: {NO_RECORD}, {endings['none']}"
    return f"{head} {bounds(ci)} (95%, {_how(paired)})" + endings[kind]


def sentences(t: Table) -> list[str]:
    """The table's sentences: the fit across all models and each family fit of three or more sizes, then each step."""
    out = []
    for s in t.scaling:
        if s.family == ALL_MODELS or len(s.points) >= 3:
            line = fit_sentence(s)
            if line:
                out.append(line)
    for s in t.scaling:
        out += [step_sentence(s, st) for st in s.steps or []]
    return out
