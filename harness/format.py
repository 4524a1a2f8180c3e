"""Every number gapbench prints, in one place: the terminal tables, the Markdown and HTML of a
run and of a board, and the reports of ``analyze``, ``compare``, ``ladder`` and ``cross``.

- ``number(0.25)`` -> ``0.250``; ``number(-0.01, signed=True)`` -> ``-0.010``; ``number(None)`` -> ``n/a``.
  A value that rounds to zero prints as ``0.000`` (``+0.000`` signed), never ``-0.000``.
- ``interval(0.25, [0.1, 0.4])`` -> ``0.250 [0.100, 0.400]``: a value with its confidence interval.
- ``metric(block)``: the same from a results ``Metric`` (or its JSON form ``{"value", "ci"}``); ``na=``
  names what an absent one prints (the cross matrix's empty cell is ``–``).
- ``human(134515008)`` -> ``134.5M``: counts of parameters, tokens and FLOPs.
- ``plain(0.25)`` -> ``0.250``, ``plain(3)`` -> ``3``: the improve loop's summary.md cells.
- ``pvalue(0.03125)`` -> ``0.0312``: a test's p-value, to three significant digits.
- ``compact(0.05)`` -> ``0.05``: a setting as the user wrote it (six significant digits at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NA = "n/a"


def number(x: float | int | None, digits: int = 3, *, signed: bool = False) -> str:
    if x is None:
        return NA
    if isinstance(x, bool):
        return str(x).lower()
    y = round(float(x), digits)
    if y == 0:
        y = 0.0  # -0.0 rounds to "0.000"
    return f"{y:+.{digits}f}" if signed else f"{y:.{digits}f}"


def interval(value: float | None, ci: Sequence[float] | None, digits: int = 3, *, signed: bool = False, na: str = NA) -> str:
    if value is None:
        return na
    text = number(value, digits, signed=signed)
    return f"{text} [{number(ci[0], digits, signed=signed)}, {number(ci[1], digits, signed=signed)}]" if ci else text


def metric(block: Any, digits: int = 3, *, signed: bool = False, na: str = NA) -> str:
    """A ``Metric`` (``.value``, ``.ci``) or its JSON form; ``na`` (``n/a``) when absent or not computed."""
    if block is None:
        return na
    if isinstance(block, dict):
        return interval(block.get("value"), block.get("ci"), digits, signed=signed, na=na)
    return interval(block.value, block.ci, digits, signed=signed, na=na)


def display(x: Any) -> str:
    """Any value of a document as a cell: a float as ``number``, an int as itself, else its text."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return str(x) if isinstance(x, int) else number(x)


def plain(x: Any, digits: int = 3) -> str:
    """A value of the improve loop's tables (summary.md): ``n/a`` for None, a float with ``digits``
    decimals as Python formats it (unlike :func:`number`, a tiny negative value keeps its sign,
    ``-0.000``, as those tables always printed), anything else (a count, a text) as its text."""
    if x is None:
        return NA
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def human(x: float | None, unit: str = "") -> str:
    """134515008 -> 134.5M; 1.8e13 -> 18T."""
    if x is None:
        return NA
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.4g}{suffix}{unit}"
    return f"{x:.4g}{unit}"


def pvalue(p: float) -> str:
    """A p-value to three significant digits: 0.5, 0.0312, 1.2e-05."""
    return f"{p:.3g}"


def compact(x: float) -> str:
    """A setting (a significance level alpha, a filter level) as short as it reads: 0.05, 1e-06."""
    return f"{x:g}"
