"""Filters w(u): which of a prompt's samples the self-improved distribution f[w(u)] keeps.

Two rules, as in Song et al. (Mind the Gap, ICLR 2025), written ``kind:level``:

- ``quantile:q`` ("top q" in the paper): per prompt, keep the samples whose ``u`` is
  at least the q-quantile of that prompt's ``u`` values (numpy's linear
  interpolation). ``quantile:0.5`` keeps the top half, ``quantile:0`` keeps every
  sample, and samples tied at the cut are all kept. ``q`` is in [0, 1).
- ``threshold:t`` ("tau = t"): keep the samples with ``u >= t``, the same ``t`` for
  every prompt; it may keep none of a prompt's samples (metrics then fall back to
  all of them, see :mod:`harness.metrics`). ``t`` is in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gapbench.harness.errors import GapbenchError

KINDS = ("quantile", "threshold")
DEFAULT_FILTER = "quantile:0.5"  # the paper's default: per prompt, the top half by u
_VALID_FORMS = (
    "`quantile:Q` with Q in [0, 1) (per prompt, keep the samples at or above the Q-quantile of its scores, "
    "e.g. quantile:0.5 keeps the top half) or `threshold:T` with T in [0, 1] (keep the samples with u >= T, "
    "e.g. threshold:0.8)"
)


def _format_level(level: float) -> str:
    text = repr(float(level))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class FilterRule:
    """One filter w(u): ``kind`` is "quantile" or "threshold", ``level`` its q or t."""

    kind: str
    level: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GapbenchError(
                f"unknown filter kind {self.kind!r}. Use {_VALID_FORMS}."
            )
        level = self.level
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level):
            raise GapbenchError(f"filter level {level!r} is not a finite number. Use {_VALID_FORMS}.")
        if self.kind == "quantile" and not 0.0 <= level < 1.0:
            raise GapbenchError(
                f"filter quantile:{level} is out of range: the quantile must be in [0, 1) "
                f"(quantile:0 keeps every sample; quantile:0.9 keeps the top 10%). Use {_VALID_FORMS}."
            )
        if self.kind == "threshold" and not 0.0 <= level <= 1.0:
            raise GapbenchError(
                f"filter threshold:{level} is out of range: verification scores u lie in [0, 1], "
                f"so the threshold must be in [0, 1]. Use {_VALID_FORMS}."
            )
        object.__setattr__(self, "level", float(level))

    @property
    def spec(self) -> str:
        """The rule as written on the command line, e.g. ``quantile:0.5``; ``parse_filter`` reads it back."""
        return f"{self.kind}:{_format_level(self.level)}"

    def keep(self, u: Sequence[float]) -> list[bool]:
        """The keep decision for each of ONE prompt's samples, given their scores ``u``."""
        scores = np.asarray(u, dtype=float)
        if scores.size == 0:
            return []
        if self.kind == "quantile":
            cut = np.quantile(scores, self.level, method="linear")
            # Interpolating between equal values returns that value exactly, so ties at the cut are kept;
            # min() guards against a rounding cut just above the largest score.
            cut = min(cut, scores.max())
        else:
            cut = self.level
        return (scores >= cut).tolist()


def parse_filter(spec: str) -> FilterRule:
    """Read ``quantile:Q`` or ``threshold:T`` into a :class:`FilterRule`; anything else is a GapbenchError."""
    if not isinstance(spec, str):
        raise GapbenchError(f"filter spec {spec!r} is not a string. Use {_VALID_FORMS}.")
    kind, sep, level_text = spec.strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise GapbenchError(f"cannot read the filter spec {spec!r}. Use {_VALID_FORMS}.")
    try:
        level = float(level_text.strip())
    except ValueError:
        raise GapbenchError(
            f"cannot read the level of the filter spec {spec!r}: {level_text.strip()!r} is not a number. "
            f"Use {_VALID_FORMS}."
        ) from None
    if not math.isfinite(level):
        raise GapbenchError(f"the level of the filter spec {spec!r} is not a finite number. Use {_VALID_FORMS}.")
    try:
        return FilterRule(kind, level)
    except GapbenchError as exc:
        raise GapbenchError(f"bad filter spec {spec!r}: {exc}") from None


def sweep_levels(kind: str) -> list[float]:
    """Default levels of a filter-level sweep: quantile 0, 0.1, ..., 0.9; threshold 0, 0.1, ..., 1.0."""
    if kind == "quantile":
        return [i / 10 for i in range(10)]
    if kind == "threshold":
        return [i / 10 for i in range(11)]
    raise GapbenchError(f"unknown filter kind {kind!r} for a sweep: use 'quantile' or 'threshold'.")
