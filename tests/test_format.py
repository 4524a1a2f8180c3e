"""harness/format.py: every number gapbench prints, on hand-written cases."""

from __future__ import annotations

from gapbench.harness.format import NA, compact, interval, metric, number, pvalue
from gapbench.harness.results import Metric


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
