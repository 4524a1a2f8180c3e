"""The paper's scaling fit: relative gap against log10 pre-training FLOPs, a least-squares line per family
and across the board's models, its slope's interval from a bootstrap over prompts, and the difference of
relative gaps between two sizes of a family with its interval (paired where the models share prompts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


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


# ---------------------------------------------------------------------------------------------
# the bootstrap over prompts: the slope's interval and the difference of a family's two sizes


@dataclass(frozen=True)
class PromptGaps:
    """One model's per-prompt relative gaps (:func:`harness.metrics.per_prompt_relative_gap`) and the
    prompts they are over. Models with the same ``prompts`` key (task, split, documents' digest and doc
    ids, the ids in the same order) ran on the same prompts and are resampled jointly (paired)."""

    prompts: tuple  # what identifies the prompts; equal keys: the same prompts in the same order
    rel_x: np.ndarray  # per prompt: (J(f[w]|x) - J(f|x)) / (1 - J(f|x)), 0 where excluded
    included: np.ndarray  # per prompt: J(f|x) < 1

    @classmethod
    def from_accuracy(cls, prompts: tuple, J_x: Sequence[float], Jw_x: Sequence[float]) -> PromptGaps:
        from gapbench.harness.metrics import per_prompt_relative_gap

        rel_x, included = per_prompt_relative_gap(np.asarray(J_x, dtype=float), np.asarray(Jw_x, dtype=float))
        return cls(prompts, rel_x, included)

    @property
    def value(self) -> float | None:
        return float(self.rel_x[self.included].mean()) if self.included.any() else None


def relative_gap_draws(models: Sequence[PromptGaps], *, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` x models: each model's relative gap over a resample of its prompts (with replacement).
    Models on the same prompts (equal ``prompts`` keys) share each resample: the draws are paired; each
    set of prompts is drawn from its own stream of one generator seeded with ``seed``, in the order the
    sets first appear. A resample with no prompt of J(f|x) < 1 gives NaN."""
    rng = np.random.default_rng(seed)
    out = np.full((n_boot, len(models)), np.nan)
    draws: dict[tuple, np.ndarray] = {}
    for j, m in enumerate(models):
        idx = draws.get(m.prompts)
        if idx is None:
            idx = draws[m.prompts] = rng.integers(0, m.rel_x.size, size=(n_boot, m.rel_x.size))
        n_inc = m.included[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(n_inc > 0, m.rel_x[idx].sum(axis=1) / n_inc, np.nan)
    return out


def slopes(log_flops: Sequence[float], values: np.ndarray) -> np.ndarray:
    """The least-squares slope of each row of ``values`` (resamples x points) on ``log_flops``."""
    x = np.asarray(log_flops, dtype=float)
    xc = x - x.mean()
    y = np.asarray(values, dtype=float)
    return (y - y.mean(axis=1, keepdims=True)) @ xc / float((xc**2).sum())


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval, and whether its resamples were paired (every model on the same prompts)."""

    ci: list[float] | None
    paired: bool


def slope_interval(flops: Sequence[float], models: Sequence[PromptGaps], *, n_boot: int, seed: int) -> Interval:
    """95% percentile interval of the least-squares slope of the relative gap on log10 FLOPs, the prompts
    resampled (jointly where the models share them); None with fewer than 2 distinct FLOPs."""
    from gapbench.harness.metrics import interval

    x = [math.log10(f) for f in flops]
    paired = len({m.prompts for m in models}) == 1
    if len(set(x)) < 2 or n_boot <= 0:
        return Interval(None, paired)
    return Interval(interval(slopes(x, relative_gap_draws(models, n_boot=n_boot, seed=seed))), paired)


def difference_interval(smaller: PromptGaps, larger: PromptGaps, *, n_boot: int, seed: int) -> Interval:
    """95% percentile interval of relative gap(larger) - relative gap(smaller), paired where both ran on
    the same prompts, else each resampled on its own."""
    from gapbench.harness.metrics import interval

    paired = smaller.prompts == larger.prompts
    if n_boot <= 0:
        return Interval(None, paired)
    d = relative_gap_draws([smaller, larger], n_boot=n_boot, seed=seed)
    return Interval(interval(d[:, 1] - d[:, 0]), paired)


def direction(ci: Sequence[float] | None) -> str:
    """``"up"`` when the interval lies above 0, ``"down"`` below, ``"flat"`` when it holds 0, ``"none"`` without one."""
    if not ci:
        return "none"
    return "up" if ci[0] > 0 else "down" if ci[1] < 0 else "flat"
