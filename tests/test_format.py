"""harness/format.py: every number gapbench prints, on hand-written cases."""

from __future__ import annotations

from gapbench.harness.format import NA, compact, display, human, interval, metric, number, pvalue
from gapbench.harness.results import Metric
from gapbench.leaderboards import cross
from gapbench.leaderboards.matrix import Cell, Matrix


def test_number_rounds_signs_and_never_prints_minus_zero():
    assert number(0.25) == "0.250" and number(0.2346, 2) == "0.23"
    assert number(-0.01, signed=True) == "-0.010" and number(0.01, signed=True) == "+0.010"
    assert number(-0.0002) == "0.000" and number(-0.0002, signed=True) == "+0.000"
    assert number(None) == NA == "n/a" and number(True) == "true"


def test_interval_and_metric_with_their_missing_text():
    assert interval(0.25, [0.1, 0.4]) == "0.250 [0.100, 0.400]"
    assert interval(0.25, None) == interval(0.25, []) == "0.250"
    assert interval(0.05, [-0.01, 0.1], signed=True) == "+0.050 [-0.010, +0.100]"
    assert metric({"value": 0.5, "ci": [0.4, 0.6]}) == metric(Metric(0.5, [0.4, 0.6])) == "0.500 [0.400, 0.600]"
    assert metric(None) == metric({"value": None, "ci": None}) == "n/a"
    assert metric(None, na="–") == metric({"value": None, "ci": [0.1, 0.2]}, na="–") == "–"


def test_display_and_human():
    assert display(3) == "3" and display(0.5) == "0.500" and display("x") == "x" and display(False) == "False"
    assert human(134515008) == "134.5M" and human(1.8e13) == "18T" and human(999) == "999" and human(None) == NA


def test_the_cross_matrix_prints_through_format():
    j, gap, none = Metric(0.5, [0.25, 0.75]), Metric(0.0004, [-0.0002, 0.01]), Metric(None, None)
    matrix = Matrix("arith", "test", "mc", ["f"], ["f", "h"], [Cell("f", "f", True, 4, 2, j, j, gap, none, Metric(1.0, None))])
    text = cross.tables(matrix)
    assert "| f | 0.500 [0.250, 0.750] | 4 x 2 |" in text
    assert "| f | **+0.000 [+0.000, +0.010]** (self) | – |" in text  # h's cell is missing: the en dash
    assert "| f | **–** (self) | – |" in text  # relative gap not computed
    assert "| f | **1.000** (self) | – |" in text


def test_number_never_prints_minus_zero():
    assert number(0.25) == "0.250" and number(-0.01, signed=True) == "-0.010" and number(None) == NA
    assert number(-5e-17) == "0.000" and number(-5e-17, signed=True) == "+0.000" and number(-0.0004) == "0.000"
    assert number(12.4, 0) == "12" and number(0.1234567, 6) == "0.123457"


def test_interval_and_metric():
    assert interval(0.25, [0.1, 0.4]) == "0.250 [0.100, 0.400]" and interval(0.25, None) == "0.250" and interval(None, [0, 1]) == NA
    assert metric(Metric(0.1, [-0.2, 0.3]), signed=True) == "+0.100 [-0.200, +0.300]"
    assert metric(None) == NA and metric(Metric(None, None)) == NA


def test_pvalue_and_compact():
    assert pvalue(0.5) == "0.5" and pvalue(2 / 64) == "0.0312" and pvalue(1.0) == "1" and pvalue(1.234e-5) == "1.23e-05"
    assert compact(0.05) == "0.05" and compact(0.01234) == "0.01234" and compact(1e-6) == "1e-06"
