"""Filters w(u): quantile and threshold rules, their specs and sweep levels."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import FilterRule, parse_filter, sweep_levels
from gapbench.harness.metrics import filtered_accuracy
from gapbench.verifiers.suite import build_verifiers, keep_mask


def test_quantile_half_keeps_top_half():
    assert FilterRule("quantile", 0.5).keep([0.1, 0.2, 0.3, 0.4]) == [False, False, True, True]


def test_quantile_half_respects_sample_order():
    assert FilterRule("quantile", 0.5).keep([0.4, 0.1, 0.3, 0.2]) == [True, False, True, False]


def test_quantile_zero_keeps_all():
    assert FilterRule("quantile", 0.0).keep([0.9, 0.1, 0.5, 0.0]) == [True] * 4


def test_quantile_ties_at_cut_keep_all():
    # the 0.5-quantile of [0.2, 0.7, 0.7, 0.7] is 0.7: all three tied samples are kept
    assert FilterRule("quantile", 0.5).keep([0.2, 0.7, 0.7, 0.7]) == [False, True, True, True]
    # every score equal: any quantile keeps everything
    assert FilterRule("quantile", 0.9).keep([0.3] * 5) == [True] * 5


def test_quantile_high_keeps_at_least_the_max():
    keep = FilterRule("quantile", 0.9).keep([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert keep == [False] * 9 + [True]


def test_threshold_keeps_at_or_above():
    assert FilterRule("threshold", 0.5).keep([0.49, 0.5, 0.51]) == [False, True, True]


def test_threshold_may_keep_none():
    assert FilterRule("threshold", 0.8).keep([0.1, 0.5, 0.79]) == [False, False, False]


def test_keep_empty():
    assert FilterRule("quantile", 0.5).keep([]) == []


def test_parse_filter_forms_and_spec_roundtrip():
    assert parse_filter("quantile:0.5") == FilterRule("quantile", 0.5)
    assert parse_filter(" threshold:0.8 ") == FilterRule("threshold", 0.8)
    assert parse_filter("quantile:0.5").spec == "quantile:0.5"
    assert parse_filter("threshold:1").spec == "threshold:1"
    assert FilterRule("quantile", 0).spec == "quantile:0"
    for spec in ("quantile:0.25", "threshold:0.75", "quantile:0.1"):
        assert parse_filter(spec).spec == spec
        assert parse_filter(parse_filter(spec).spec) == parse_filter(spec)


@pytest.mark.parametrize(
    "spec",
    ["top:0.5", "quantile", "quantile:", "quantile:abc", "0.5", "", "quantile:1", "quantile:-0.1",
     "threshold:1.5", "threshold:-0.1", "threshold:nan", "quantile:inf"],
)
def test_parse_filter_errors_name_spec_and_forms(spec):
    with pytest.raises(GapbenchError) as err:
        parse_filter(spec)
    message = str(err.value)
    assert "quantile" in message and "threshold" in message
    assert repr(spec) in message


def test_rule_validates_directly():
    with pytest.raises(GapbenchError):
        FilterRule("top", 0.5)
    with pytest.raises(GapbenchError):
        FilterRule("quantile", 1.0)


def test_sweep_levels():
    assert sweep_levels("quantile") == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert len(sweep_levels("quantile")) == 10
    assert sweep_levels("threshold") == pytest.approx([i / 10 for i in range(11)])
    assert sweep_levels("threshold")[-1] == 1.0
    assert [FilterRule("quantile", q).spec for q in sweep_levels("quantile")][:3] == [
        "quantile:0", "quantile:0.1", "quantile:0.2"]
    with pytest.raises(GapbenchError):
        sweep_levels("top")


# --- the oracle is the upper bound under every filter ------------------------------------------


RULES = [FilterRule(kind, level) for kind in ("quantile", "threshold") for level in sweep_levels(kind)]


def _J_filtered(method: str, verifiers: dict, g: list[list[int]], u: dict, rule: FilterRule) -> float:
    import numpy as np

    K = np.array([keep_mask(verifiers[method], u, rule, str(i)) for i in range(len(g))], dtype=bool)
    return filtered_accuracy(np.array(g, dtype=float), K)[0]


@st.composite
def runs(draw):
    n = draw(st.integers(1, 6))
    prompts = draw(st.integers(1, 5))
    g = [draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)) for _ in range(prompts)]
    unit = st.floats(0, 1, allow_nan=False)
    scores = {m: [draw(st.lists(unit | st.sampled_from([0.0, 0.5, 1.0]), min_size=n, max_size=n)) for _ in range(prompts)] for m in ("mc", "cot-score")}
    return g, scores


@settings(max_examples=300, deadline=None)
@given(runs())
def test_the_oracle_gap_bounds_every_verifiers_under_every_filter(run):
    g, scores = run
    verifiers = {v.method: v for v in build_verifiers(["mc", "cot-score", "ensemble:mc+cot-score", "oracle"], m=1)}
    u = {m: {str(i): row for i, row in enumerate(rows)} for m, rows in scores.items()}
    u["oracle"] = {str(i): [float(x) for x in row] for i, row in enumerate(g)}
    u["ensemble:mc+cot-score"] = {d: [(a + b) / 2 for a, b in zip(u["mc"][d], u["cot-score"][d])] for d in u["mc"]}
    for rule in RULES:
        oracle = _J_filtered("oracle", verifiers, g, u, rule)
        for method in ("mc", "cot-score", "ensemble:mc+cot-score"):
            assert oracle >= _J_filtered(method, verifiers, g, u, rule) - 1e-12, (rule.spec, method)


def test_the_oracle_gains_where_the_run_s_quantile_on_g_would_keep_everything():
    g = [[1, 0, 0, 0]]  # one correct of four: the median of g is 0
    verifiers = {v.method: v for v in build_verifiers(["mc", "oracle"], m=1)}
    u = {"mc": {"0": [0.9, 0.1, 0.8, 0.2]}, "oracle": {"0": [1.0, 0.0, 0.0, 0.0]}}
    rule = FilterRule("quantile", 0.5)
    assert rule.keep(u["oracle"]["0"]) == [True] * 4  # the run's rule on u = g: keeps all, gains nothing
    assert _J_filtered("mc", verifiers, g, u, rule) == 0.5  # MC keeps its top half, the correct one in it
    assert _J_filtered("oracle", verifiers, g, u, rule) == 1.0  # the oracle keeps the correct sample
