"""Metrics of one run: generation accuracy, the generation-verification gap, and their companions.

How metrics are defined (Song et al., "Mind the Gap", ICLR 2025; every prompt has n samples)
-------------------------------------------------------------------------------------------
- ``g`` is the ground truth of a sample (1 correct, 0 not); ``u`` the model's own
  verification score in [0, 1]; ``keep`` the filter w(u)'s decision (see :mod:`harness.filters`).
- J(f|x) = mean g over the prompt's n samples; J(f) = mean of J(f|x) over prompts
  (every prompt weighs the same).
- J(f[w]|x) = mean g over the prompt's kept samples. A prompt whose filter keeps none
  of its samples falls back to all of them (its gap is 0) and is counted in
  ``filter.prompts_none_kept``. J(f[w]) = mean of J(f[w]|x) over prompts.
- gap = J(f[w]) - J(f).
- relative gap (per-prompt form of the paper's Def. 2.2) = mean over the prompts with
  J(f|x) < 1 of (J(f[w]|x) - J(f|x)) / (1 - J(f|x)). Prompts with J(f|x) = 1 have no
  room to improve: they are left out and counted in ``n_excluded``; if every prompt is
  left out the relative gap is None.
- verification quality of u against g, pooled over all samples of all prompts: the
  verifier calls a sample correct when u >= 0.5; accuracy, precision, recall
  (None when their denominator is 0), ``positive_rate`` = share called correct,
  and AUROC of u as a score for g (Mann-Whitney, ties count 1/2; None when only one
  class of g is present), with a 95% bootstrap interval (``auroc_ci``; resamples of one class
  of g only are left out).
- filter quality, pooled over all samples, from the filter's own decisions (before the
  none-kept fallback): ``kept_share``, precision = share of kept samples that are
  correct, recall = share of correct samples that are kept (None when undefined).
- best-of-n: per prompt, g of the sample with the highest u (ties: mean g of the tied
  samples), averaged over prompts.
- pass@k: unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), per prompt,
  averaged over prompts.
- maj@k: per prompt, the expected correctness of a majority vote over a uniformly
  random size-k subset of its n samples (exact over all subsets when C(n, k) <= 2000,
  else the mean over 2000 seeded random subsets). None answers do not vote (a subset
  of only None scores 0); an answer is correct when any sample giving it has g = 1;
  a tie between top answers scores the share of the tied answers that are correct.
- ks for pass@k and maj@k: 1, 2, 4, ... up to n, plus n.
- confidence intervals: 95% percentile bootstrap, resampling prompts with replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from harness.filters import FilterRule, sweep_levels

MAJ_EXACT_LIMIT = 2000  # enumerate every k-subset when there are at most this many
MAJ_SAMPLES = 2000  # else average this many seeded random k-subsets
CI_LEVEL = 0.95


@dataclass
class PromptScores:
    """One prompt's samples: ground truth ``g``, verification score ``u``, the filter's ``keep``,
    the extracted final ``answers`` (None when none could be extracted) and free ``group`` meta."""

    doc_id: str
    g: list[int]
    u: list[float]
    keep: list[bool]
    answers: list[str | None]
    group: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# input checking and the per-prompt arrays


def _check(prompts: Sequence[PromptScores]) -> int:
    """The common number of samples n; ValueError naming the doc_id that breaks the rules."""
    if not prompts:
        raise ValueError("no prompts to score: the run has no graded samples yet")
    n = len(prompts[0].g)
    for p in prompts:
        if len(p.g) == 0:
            raise ValueError(f"prompt {p.doc_id!r} has no samples; every prompt needs n > 0 samples")
        if len(p.g) != n:
            raise ValueError(
                f"prompt {p.doc_id!r} has {len(p.g)} samples but prompt {prompts[0].doc_id!r} has {n}; "
                "every prompt must have the same number of samples"
            )
        for name in ("u", "keep", "answers"):
            if len(getattr(p, name)) != n:
                raise ValueError(
                    f"prompt {p.doc_id!r} has {n} ground-truth values but {len(getattr(p, name))} values of {name!r}"
                )
    return n


def _arrays(prompts: Sequence[PromptScores], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    G = np.array([p.g for p in prompts], dtype=float).reshape(len(prompts), n)
    U = np.array([p.u for p in prompts], dtype=float).reshape(len(prompts), n)
    K = np.array([p.keep for p in prompts], dtype=bool).reshape(len(prompts), n)
    bad_g = ~np.isin(G, (0.0, 1.0)).all(axis=1)
    if bad_g.any():
        i = int(np.argmax(bad_g))
        raise ValueError(f"prompt {prompts[i].doc_id!r} has a ground truth g other than 0 or 1: {prompts[i].g}")
    bad_u = ~(np.isfinite(U) & (U >= 0.0) & (U <= 1.0)).all(axis=1)
    if bad_u.any():
        i = int(np.argmax(bad_u))
        raise ValueError(f"prompt {prompts[i].doc_id!r} has a verification score u outside [0, 1]: {prompts[i].u}")
    return G, U, K


def per_prompt_accuracy(G: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt: J(f|x), J(f[w]|x) with the none-kept fallback, and whether none was kept."""
    J_x = G.mean(axis=1)
    kept = K.sum(axis=1)
    none_kept = kept == 0
    Jw_x = np.where(none_kept, J_x, (G * K).sum(axis=1) / np.maximum(kept, 1))
    return J_x, Jw_x, none_kept


def per_prompt_relative_gap(J_x: np.ndarray, Jw_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: the relative gap (0 where excluded) and whether the prompt counts (J(f|x) < 1)."""
    included = J_x < 1.0
    rel_x = np.where(included, (Jw_x - J_x) / np.where(included, 1.0 - J_x, 1.0), 0.0)
    return rel_x, included


# ---------------------------------------------------------------------------------------------
# the headline numbers


def generation_accuracy(G: np.ndarray) -> float:
    """J(f): mean over prompts of J(f|x) = the prompt's mean g."""
    return float(G.mean(axis=1).mean())


def filtered_accuracy(G: np.ndarray, K: np.ndarray) -> tuple[float, int]:
    """J(f[w]) and the number of prompts whose filter kept none (those fall back to all samples)."""
    _, Jw_x, none_kept = per_prompt_accuracy(G, K)
    return float(Jw_x.mean()), int(none_kept.sum())


def relative_gap(G: np.ndarray, K: np.ndarray) -> tuple[float | None, int]:
    """Per-prompt relative gap (Def. 2.2) averaged over prompts with J(f|x) < 1, and how many were excluded.

    The value is None when every prompt has J(f|x) = 1.
    """
    J_x, Jw_x, _ = per_prompt_accuracy(G, K)
    rel_x, included = per_prompt_relative_gap(J_x, Jw_x)
    n_excluded = int((~included).sum())
    if not included.any():
        return None, n_excluded
    return float(rel_x[included].mean()), n_excluded


# ---------------------------------------------------------------------------------------------
# verification and filter quality


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """AUROC of ``scores`` for binary ``labels``: P(score of a positive > score of a negative),
    ties counting 1/2 (the Mann-Whitney U statistic over n_pos * n_neg). None with one class only."""
    scores = np.asarray(scores, dtype=float).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts  # how many scores are strictly smaller than each distinct value
    mid_rank = below + (counts + 1) / 2.0  # 1-based average rank of a tied group
    rank_sum = mid_rank[inverse][labels].sum()
    u_stat = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u_stat / (n_pos * n_neg))


def verification_quality(G: np.ndarray, U: np.ndarray) -> dict:
    """Quality of u as a verifier of g, pooled over all samples; u >= 0.5 means "called correct"."""
    g = G.ravel().astype(bool)
    pred = U.ravel() >= 0.5
    tp = float((pred & g).sum())
    return {
        "accuracy": float((pred == g).mean()),
        "precision": _ratio(tp, float(pred.sum())),
        "recall": _ratio(tp, float(g.sum())),
        "auroc": auroc(U, g),
        "positive_rate": float(pred.mean()),
    }


def filter_quality(G: np.ndarray, K: np.ndarray) -> dict:
    """The filter's own decisions (before the none-kept fallback), pooled over all samples."""
    g = G.astype(bool)
    tp = float((K & g).sum())
    return {
        "kept_share": float(K.mean()),
        "precision": _ratio(tp, float(K.sum())),
        "recall": _ratio(tp, float(g.sum())),
        "prompts_none_kept": int((K.sum(axis=1) == 0).sum()),
    }


# ---------------------------------------------------------------------------------------------
# best-of-n, pass@k, maj@k


def best_of_n(G: np.ndarray, U: np.ndarray) -> float:
    """Per prompt, g of the sample with the highest u (ties: mean g of the tied ones); mean over prompts."""
    top = U == U.max(axis=1, keepdims=True)
    return float(((G * top).sum(axis=1) / top.sum(axis=1)).mean())


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself."""
    ks = []
    k = 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def pass_at_k_table(n: int, k: int) -> np.ndarray:
    """pass@k for c = 0..n correct samples out of n: 1 - C(n-c, k)/C(n, k), in the stable product form
    1 - prod_{i=n-c+1}^{n} (1 - k/i)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    terms = 1.0 - k / np.arange(n, 0, -1, dtype=float)  # i = n, n-1, ..., 1
    prods = np.concatenate([[1.0], np.cumprod(terms)])  # prods[c] = prod over the c largest i
    table = 1.0 - prods
    c = np.arange(n + 1)
    table[n - c < k] = 1.0  # fewer than k incorrect samples: every k-subset holds a correct one
    return table


def pass_at_k(G: np.ndarray, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021) per prompt, averaged over prompts."""
    n = G.shape[1]
    c = G.sum(axis=1).astype(int)
    return float(pass_at_k_table(n, k)[c].mean())


@dataclass
class AnswerClasses:
    """Per prompt, what a majority vote needs to know: the sizes of the answers given by two or more
    samples (``sizes``, padded with empty classes) and whether each is correct (``correct``), and the
    numbers of answers given by a single sample that are correct (``single_right``) or not
    (``single_wrong``). None answers are dropped; an answer is correct when some sample giving it has
    g = 1."""

    sizes: np.ndarray  # prompts x classes, int
    correct: np.ndarray  # prompts x classes, bool
    single_right: np.ndarray  # prompts, int
    single_wrong: np.ndarray  # prompts, int


def answer_classes(prompts: Sequence[PromptScores]) -> AnswerClasses:
    """Group each prompt's answers into classes (see :class:`AnswerClasses`)."""
    sizes: list[list[int]] = []
    correct: list[list[bool]] = []
    single_right = np.zeros(len(prompts), dtype=np.int64)
    single_wrong = np.zeros(len(prompts), dtype=np.int64)
    for i, p in enumerate(prompts):
        count: dict[str, int] = {}
        right: dict[str, bool] = {}
        for answer, g in zip(p.answers, p.g):
            if answer is None:
                continue
            count[answer] = count.get(answer, 0) + 1
            right[answer] = right.get(answer, False) or bool(g)
        multi = [a for a, c in count.items() if c >= 2]
        sizes.append([count[a] for a in multi])
        correct.append([right[a] for a in multi])
        single_right[i] = sum(1 for a, c in count.items() if c == 1 and right[a])
        single_wrong[i] = sum(1 for a, c in count.items() if c == 1 and not right[a])
    width = max(1, max(len(s) for s in sizes))
    S = np.zeros((len(prompts), width), dtype=np.int64)
    C = np.zeros((len(prompts), width), dtype=bool)
    for i, (s, c) in enumerate(zip(sizes, correct)):
        S[i, : len(s)] = s
        C[i, : len(c)] = c
    return AnswerClasses(S, C, single_right, single_wrong)


def _subsets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indicator rows (subsets x n) of every k-subset when there are at most MAJ_EXACT_LIMIT of them,
    else of MAJ_SAMPLES uniformly random k-subsets."""
    if math.comb(n, k) <= MAJ_EXACT_LIMIT:
        rows = np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    else:
        rows = np.argsort(rng.random((MAJ_SAMPLES, n)), axis=1)[:, :k]
    M = np.zeros((rows.shape[0], n), dtype=bool)
    np.put_along_axis(M, rows, True, axis=1)
    return M


def maj_at_k(classes: AnswerClasses, n: int, k: int, rng: np.random.Generator) -> float:
    """maj@k averaged over prompts (see the module docstring), exact or from seeded random subsets.

    Only the class sizes matter, so each prompt's samples are laid out class by class: answers
    given twice or more, then the correct single answers, then the wrong ones, then None. A subset's
    votes for a class are its members in that class's index range, and one set of subsets serves
    every prompt. Single answers can only matter when no answer gets two votes, so they are
    counted as two ranges rather than one class each.
    """
    M = _subsets(n, k, rng)
    dtype = np.int16 if n < 2**15 else np.int32
    cum = np.concatenate([np.zeros((M.shape[0], 1), dtype=dtype), np.cumsum(M, axis=1, dtype=dtype)], axis=1)
    hi = np.cumsum(classes.sizes, axis=1)
    lo = hi - classes.sizes
    a = hi[:, -1]
    b = a + classes.single_right
    c = b + classes.single_wrong
    width = classes.sizes.shape[1]
    chunk = max(1, 4_000_000 // (M.shape[0] * (width + 2)))
    per_prompt = np.empty(classes.sizes.shape[0])
    for start in range(0, per_prompt.size, chunk):
        sl = slice(start, start + chunk)
        votes = cum[:, hi[sl]] - cum[:, lo[sl]]  # subsets x prompts x classes
        s_right = cum[:, b[sl]] - cum[:, a[sl]]  # subsets x prompts: votes for correct single answers
        s_any = cum[:, c[sl]] - cum[:, a[sl]]
        top = np.maximum(votes.max(axis=2), (s_any > 0).astype(votes.dtype))
        tied = (votes == top[..., None]) & (top[..., None] > 0)
        singles_tie = top == 1
        n_tied = tied.sum(axis=2) + np.where(singles_tie, s_any, 0)
        n_right = (tied & classes.correct[sl][None]).sum(axis=2) + np.where(singles_tie, s_right, 0)
        credit = np.where(n_tied > 0, n_right / np.maximum(n_tied, 1), 0.0)
        per_prompt[sl] = credit.mean(axis=0)
    return float(per_prompt.mean())


# ---------------------------------------------------------------------------------------------
# bootstrap


def interval(values: np.ndarray) -> list[float] | None:
    """The central 95% percentile interval of bootstrap values (non-finite ones dropped)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap(J_x: np.ndarray, Jw_x: np.ndarray, *, n_boot: int, seed: int) -> dict[str, list[float] | None]:
    """95% percentile intervals of J, J_filtered, gap and relative gap, resampling prompts with
    replacement ``n_boot`` times. A resample with no prompt of J(f|x) < 1 gives no relative gap
    and is left out of that interval."""
    if n_boot <= 0:
        return {"J": None, "J_filtered": None, "gap": None, "relative_gap": None}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, J_x.size, size=(n_boot, J_x.size))
    rel_x, included = per_prompt_relative_gap(J_x, Jw_x)
    J_b = J_x[idx].mean(axis=1)
    Jw_b = Jw_x[idx].mean(axis=1)
    n_inc = included[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_b = np.where(n_inc > 0, rel_x[idx].sum(axis=1) / n_inc, np.nan)
    return {
        "J": interval(J_b),
        "J_filtered": interval(Jw_b),
        "gap": interval(Jw_b - J_b),
        "relative_gap": interval(rel_b) if included.any() else None,
    }


def auroc_interval(G: np.ndarray, U: np.ndarray, *, n_boot: int, seed: int) -> list[float] | None:
    """95% percentile interval of the pooled AUROC of u for g, resampling prompts (rows of ``G`` and
    ``U``) with replacement ``n_boot`` times; a resample with one class of g only has no AUROC and is
    left out. None when ``n_boot`` is 0 or no resample has both classes."""
    if n_boot <= 0:
        return None
    rng = np.random.default_rng([seed, 2])
    idx = rng.integers(0, G.shape[0], size=(n_boot, G.shape[0]))
    values = [auroc(U[rows], G[rows]) for rows in idx]
    return interval(np.array([np.nan if v is None else v for v in values], dtype=float))


# ---------------------------------------------------------------------------------------------
# the public entry points


def summarize(prompts: Sequence[PromptScores], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Every metric of a run, JSON-serialisable (see the module docstring for the definitions).

    ``n_samples`` is n, the number of samples per prompt. ``ci`` is a 95% bootstrap interval
    ``[lo, hi]`` (None when ``n_boot`` is 0, or for the relative gap when it is undefined).
    ``seed`` drives the bootstrap and the random subsets of maj@k. Raises ValueError, naming the
    doc_id, when prompts differ in their number of samples or have none.
    """
    n = _check(prompts)
    G, U, K = _arrays(prompts, n)
    J_x, Jw_x, none_kept = per_prompt_accuracy(G, K)
    rel_x, included = per_prompt_relative_gap(J_x, Jw_x)
    J = float(J_x.mean())
    Jw = float(Jw_x.mean())
    ci = bootstrap(J_x, Jw_x, n_boot=n_boot, seed=seed)

    classes = answer_classes(prompts)
    maj_rng = np.random.default_rng([seed, 1])
    ks = ks_for(n)
    return {
        "n_prompts": len(prompts),
        "n_samples": n,
        "J": {"value": J, "ci": ci["J"]},
        "J_filtered": {"value": Jw, "ci": ci["J_filtered"]},
        "gap": {"value": Jw - J, "ci": ci["gap"]},
        "relative_gap": {
            "value": float(rel_x[included].mean()) if included.any() else None,
            "ci": ci["relative_gap"],
            "n_excluded": int((~included).sum()),
        },
        "verification": {**verification_quality(G, U), "auroc_ci": auroc_interval(G, U, n_boot=n_boot, seed=seed)},
        "filter": filter_quality(G, K),
        "best_of_n": best_of_n(G, U),
        "pass@k": {str(k): pass_at_k(G, k) for k in ks},
        "maj@k": {str(k): maj_at_k(classes, n, k, maj_rng) for k in ks},
    }


def filter_sweep(
    prompts: Sequence[PromptScores],
    keep_for: Callable[[FilterRule, int], list[bool]],
    kind: str,
    levels: Sequence[float] | None = None,
) -> list[dict]:
    """The gap as the filter level varies: for each level, the rule ``FilterRule(kind, level)`` and the
    keep masks ``keep_for(rule, i)`` of every prompt i give J(f[w]), the gap, the relative gap and the
    kept share (point estimates; the same definitions as :func:`summarize`). ``levels`` defaults to
    :func:`harness.filters.sweep_levels`."""
    n = _check(prompts)
    G, _, _ = _arrays(prompts, n)
    J_x = G.mean(axis=1)
    J = float(J_x.mean())
    out = []
    for level in sweep_levels(kind) if levels is None else levels:
        rule = FilterRule(kind, level)
        masks = []
        for i, p in enumerate(prompts):
            mask = list(keep_for(rule, i))
            if len(mask) != n:
                raise ValueError(
                    f"the keep mask of prompt {p.doc_id!r} under {rule.spec} has {len(mask)} values, expected {n}"
                )
            masks.append(mask)
        K = np.array(masks, dtype=bool).reshape(len(prompts), n)
        _, Jw_x, _ = per_prompt_accuracy(G, K)
        rel, _ = relative_gap(G, K)
        Jw = float(Jw_x.mean())
        out.append(
            {
                "level": rule.level,
                "J_filtered": Jw,
                "gap": Jw - J,
                "relative_gap": rel,
                "kept_share": float(K.mean()),
            }
        )
    return out
