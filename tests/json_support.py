"""Comparing two results.json documents: the same keys, strings and structure, and numbers equal to a
tolerance. Log-probabilities from batched forward passes of other compositions (a resumed run, a
shard) round differently, about 1e-5 nats; metrics continuous in u (ECE, Brier, correlations) carry
that rounding into results.json, while counts, grades and rank-based metrics stay exact."""

from __future__ import annotations


def differences(a, b, tol: float, where: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ beyond ``tol`` (an empty list when they agree)."""
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        if type(a) is not type(b):
            return [f"{where or '.'}: {a!r} != {b!r}"]
        if isinstance(a, dict):
            if list(a) != list(b):
                return [f"{where or '.'}: keys {list(a)} != {list(b)}"]
            return [d for k in a for d in differences(a[k], b[k], tol, f"{where}.{k}")]
        if isinstance(a, list):
            if len(a) != len(b):
                return [f"{where or '.'}: {len(a)} items != {len(b)}"]
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, tol, f"{where}[{i}]")]
        return [] if a == b else [f"{where or '.'}: {a!r} != {b!r}"]
    if isinstance(a, int) and isinstance(b, int):
        return [] if a == b else [f"{where}: {a} != {b}"]
    return [] if abs(a - b) <= tol else [f"{where}: {a} != {b} (beyond {tol})"]
