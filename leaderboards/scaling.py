"""The paper's scaling fit: relative gap against log10 pre-training FLOPs, a least-squares line per family."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LinearFit:
    slope: float  # change of the relative gap per decade (x10) of pre-training FLOPs
    intercept: float  # at log10 FLOPs = 0
    r2: float | None  # coefficient of determination; None when every y is the same
    n: int

    def predict(self, flops: float) -> float:
        return self.intercept + self.slope * math.log10(flops)

    def to_json(self) -> dict:
        return asdict(self)


def linear_fit(flops: Sequence[float], values: Sequence[float]) -> LinearFit | None:
    """Ordinary least squares of ``values`` on log10(``flops``). None with fewer than 2 points or
    fewer than 2 distinct FLOPs (no line is determined)."""
    pts = [(math.log10(f), float(v)) for f, v in zip(flops, values) if f and f > 0 and v is not None]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in pts)
    r2 = None if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return LinearFit(slope, intercept, r2, n)
