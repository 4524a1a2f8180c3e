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
  correct (the verifier's precision at the filter's operating point, with ``precision_ci``),
  recall = share of correct samples that are kept (None when undefined).
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

Verifier diagnostics (:func:`diagnostics`, results schema 2; the biases within prompts and the modal gap, schema 3):
- within-prompt AUROC: per prompt with both classes, the share of its (correct, incorrect) sample pairs
  that u orders right (ties 1/2), averaged over those prompts (their count is reported); pairwise
  accuracy: the same share pooled over all such pairs of all prompts.
- realised share: gap(u) / gap(oracle), the oracle's keep mask being the same rule applied to u = g
  (None when the oracle gains nothing; above 1 is possible with quantile:q, whose median cut keeps
  every sample of a prompt with fewer than half correct under the binary oracle).
- calibration: ECE = sum over 10 equal-width bins of u of (bin share of samples) x |mean u - mean g|
  (u = 1 falls in the last bin); Brier = mean (u - g)^2.
- length bias: per g stratum, Spearman's correlation of u with the response length (generated tokens);
  majority echo: Spearman's correlation of u with the share of the prompt's samples giving the same
  answer (0 for no answer). Each is computed inside every prompt and averaged over the prompts where
  it is defined (two or more samples in the stratum, u and the covariate each varying; their count is
  reported): the headline, since a correlation pooled over all samples of all prompts mixes prompt
  difficulty in (when u, the length and the answer share all follow the prompt's difficulty, the pooled
  figure is far from 0 although u ignores them inside every prompt). The pooled correlation is kept as a
  labelled secondary; its bootstrap interval re-ranks every resample. Beside the echo, the gap of
  majority voting as a filter: keep the samples that gave the prompt's most frequent answer (all tied
  answers; None answers never), with the none-kept fallback.
- position bias: share of pairwise matches whose winner differs between the two orders shown.
- gap against n (:func:`gap_curve`) and m (:func:`gap_curve_m`): means over subsets of the stored samples
  (verifications), every subset when there are at most CURVE_SUBSETS, else that many seeded ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import NamedTuple

import numpy as np

from gapbench.harness.filters import FilterRule, sweep_levels
from gapbench.harness.results import (
    Calibration,
    CalibrationBin,
    CurvePoint,
    CurvePointM,
    FilterQuality,
    MajorityEcho,
    Metric,
    PositionBias,
    RankBias,
    RelativeGap,
    SweepLevel,
    Verification,
    VerifierSummary,
    WithinPrompt,
    build,
    to_json,
    update,
)

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


def verification_quality(G: np.ndarray, U: np.ndarray, auroc_ci: list[float] | None = None) -> Verification:
    """Quality of u as a verifier of g, pooled over all samples; u >= 0.5 means "called correct"."""
    g = G.ravel().astype(bool)
    pred = U.ravel() >= 0.5
    tp = float((pred & g).sum())
    return Verification(
        accuracy=float((pred == g).mean()),
        precision=_ratio(tp, float(pred.sum())),
        recall=_ratio(tp, float(g.sum())),
        auroc=auroc(U, g),
        positive_rate=float(pred.mean()),
        auroc_ci=auroc_ci,
    )


def filter_quality(G: np.ndarray, K: np.ndarray, *, n_boot: int = 0, seed: int = 0) -> FilterQuality:
    """The filter's own decisions (before the none-kept fallback), pooled over all samples; the precision
    of the kept samples (the verifier's precision at the filter's operating point) with a 95% interval
    from ``n_boot`` resamples of prompts (the resamples of :func:`bootstrap`; one keeping none is left out)."""
    g = G.astype(bool)
    tp = float((K & g).sum())
    return FilterQuality(
        kept_share=float(K.mean()),
        precision=_ratio(tp, float(K.sum())),
        recall=_ratio(tp, float(g.sum())),
        prompts_none_kept=int((K.sum(axis=1) == 0).sum()),
        precision_ci=_kept_precision_interval(G, K, n_boot=n_boot, seed=seed),
    )


def _kept_precision_interval(G: np.ndarray, K: np.ndarray, *, n_boot: int, seed: int) -> list[float] | None:
    if n_boot <= 0 or not K.any():
        return None
    idx = np.random.default_rng(seed).integers(0, G.shape[0], size=(n_boot, G.shape[0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return interval((K & G.astype(bool)).sum(axis=1)[idx].sum(axis=1) / K.sum(axis=1)[idx].sum(axis=1))


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


def _subset_rows(n: int, k: int, rng: np.random.Generator, exact_limit: int, samples: int) -> np.ndarray:
    """Index rows (subsets x k) of every k-subset of range(n) when there are at most ``exact_limit``
    of them, else of ``samples`` uniformly random (seeded) k-subsets."""
    if math.comb(n, k) <= exact_limit:
        return np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    return np.argsort(rng.random((samples, n)), axis=1)[:, :k]


def _subsets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indicator rows (subsets x n) of every k-subset when there are at most MAJ_EXACT_LIMIT of them,
    else of MAJ_SAMPLES uniformly random k-subsets."""
    rows = _subset_rows(n, k, rng, MAJ_EXACT_LIMIT, MAJ_SAMPLES)
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


class Intervals(NamedTuple):
    """The 95% intervals of :func:`summarize`'s headline numbers (None: not computed)."""

    J: list[float] | None
    J_filtered: list[float] | None
    gap: list[float] | None
    relative_gap: list[float] | None


def bootstrap(J_x: np.ndarray, Jw_x: np.ndarray, *, n_boot: int, seed: int) -> Intervals:
    """95% percentile intervals of J, J_filtered, gap and relative gap, resampling prompts with
    replacement ``n_boot`` times. A resample with no prompt of J(f|x) < 1 gives no relative gap
    and is left out of that interval."""
    if n_boot <= 0:
        return Intervals(None, None, None, None)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, J_x.size, size=(n_boot, J_x.size))
    rel_x, included = per_prompt_relative_gap(J_x, Jw_x)
    J_b = J_x[idx].mean(axis=1)
    Jw_b = Jw_x[idx].mean(axis=1)
    n_inc = included[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_b = np.where(n_inc > 0, rel_x[idx].sum(axis=1) / n_inc, np.nan)
    return Intervals(
        J=interval(J_b),
        J_filtered=interval(Jw_b),
        gap=interval(Jw_b - J_b),
        relative_gap=interval(rel_b) if included.any() else None,
    )


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


def summarize(prompts: Sequence[PromptScores], *, n_boot: int = 1000, seed: int = 0) -> VerifierSummary:
    """Every metric of a run, as results.json's block (see the module docstring for the definitions).

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
    return VerifierSummary(
        n_prompts=len(prompts),
        n_samples=n,
        J=Metric(J, ci.J),
        J_filtered=Metric(Jw, ci.J_filtered),
        gap=Metric(Jw - J, ci.gap),
        relative_gap=RelativeGap(float(rel_x[included].mean()) if included.any() else None, ci.relative_gap, int((~included).sum())),
        verification=verification_quality(G, U, auroc_interval(G, U, n_boot=n_boot, seed=seed)),
        filter=filter_quality(G, K, n_boot=n_boot, seed=seed),
        best_of_n=best_of_n(G, U),
        pass_at_k={str(k): pass_at_k(G, k) for k in ks},
        maj_at_k={str(k): maj_at_k(classes, n, k, maj_rng) for k in ks},
    )


def filter_sweep(
    prompts: Sequence[PromptScores],
    keep_for: Callable[[FilterRule, int], list[bool]],
    kind: str,
    levels: Sequence[float] | None = None,
) -> list[SweepLevel]:
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
        out.append(SweepLevel(level=rule.level, J_filtered=Jw, gap=Jw - J, relative_gap=rel, kept_share=float(K.mean())))
    return out


# ---------------------------------------------------------------------------------------------
# verifier diagnostics: ranking inside a prompt, the share of the attainable gain, calibration, biases

CALIBRATION_BINS = 10  # equal-width bins of u for the expected calibration error
CURVE_SUBSETS = 200  # gap against n: every k-subset when there are at most this many, else this many seeded ones


def within_prompt_pairs(G: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: the credit of its (correct, incorrect) sample pairs (1 when u ranks the correct
    one higher, 1/2 on a tie, 0 else), summed, and the number of such pairs c (n - c)."""
    g = G.astype(bool)
    credit, pairs = np.zeros(G.shape[0]), np.zeros(G.shape[0])
    chunk = max(1, 2_000_000 // G.shape[1] ** 2)  # bounded memory at n = 128 and thousands of prompts
    for start in range(0, G.shape[0], chunk):
        sl = slice(start, start + chunk)
        u, c = U[sl], g[sl]
        higher = (u[:, :, None] > u[:, None, :]) + 0.5 * (u[:, :, None] == u[:, None, :])  # prompts x i x j
        pair = c[:, :, None] & ~c[:, None, :]  # i correct, j incorrect
        credit[sl] = (higher * pair).sum(axis=(1, 2))
        pairs[sl] = pair.sum(axis=(1, 2))
    return credit, pairs


def within_prompt_auroc(G: np.ndarray, U: np.ndarray) -> tuple[float | None, int]:
    """AUROC of u for g inside each prompt (its pairs' credit / its pairs), averaged over the prompts
    that have both correct and incorrect samples; and how many prompts that is. None when none has."""
    credit, pairs = within_prompt_pairs(G, U)
    both = pairs > 0
    if not both.any():
        return None, 0
    return float((credit[both] / pairs[both]).mean()), int(both.sum())


def pairwise_accuracy(G: np.ndarray, U: np.ndarray) -> float | None:
    """Share of all (correct, incorrect) pairs of the same prompt that u ranks correctly (ties 1/2),
    pooled over prompts (a prompt weighs by its number of pairs). None when there is no such pair."""
    credit, pairs = within_prompt_pairs(G, U)
    return _ratio(float(credit.sum()), float(pairs.sum()))


def realised_share(G: np.ndarray, K: np.ndarray, K_oracle: np.ndarray) -> float | None:
    """gap(u) / gap(oracle): the share of what the oracle (``K_oracle``: each prompt's correct samples,
    the most any filter can gain) gains that this verifier gains. None when the oracle gains nothing."""
    J_x, Jw_x, _ = per_prompt_accuracy(G, K)
    _, Jo_x, _ = per_prompt_accuracy(G, K_oracle)
    gap_o = float((Jo_x - J_x).mean())
    return float((Jw_x - J_x).mean()) / gap_o if gap_o > 1e-12 else None


def calibration_bins(G: np.ndarray, U: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt and bin of u ([0, 1/b), ..., [(b-1)/b, 1]): the count of samples, their sum of u and of g
    (prompts x bins each)."""
    b = np.minimum((U * bins).astype(int), bins - 1)
    onehot = b[:, :, None] == np.arange(bins)[None, None, :]
    return onehot.sum(axis=1).astype(float), (onehot * U[:, :, None]).sum(axis=1), (onehot * G[:, :, None]).sum(axis=1)


def _ece(count: np.ndarray, su: np.ndarray, sg: np.ndarray) -> np.ndarray:
    """ECE from bin totals (..., bins): sum over bins of (count / N) |mean u - mean g| = sum |su - sg| / N."""
    return np.abs(su - sg).sum(axis=-1) / count.sum(axis=-1)


def calibration(G: np.ndarray, U: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
    """Calibration of u as a probability of g, pooled over samples: ``ece`` (expected calibration error
    over ``bins`` equal-width bins: sum of (bin share) x |mean u - mean g|), ``brier`` (mean (u - g)^2),
    both without intervals (:func:`diagnostics` adds them), and the reliability diagram's ``bins``
    (lo, hi, count, mean u, mean g; empty bins left out)."""
    count, su, sg = (x.sum(axis=0) for x in calibration_bins(G, U, bins))
    table = [
        CalibrationBin(lo=i / bins, hi=(i + 1) / bins, count=int(count[i]), mean_u=float(su[i] / count[i]), mean_g=float(sg[i] / count[i]))
        for i in range(bins)
        if count[i] > 0
    ]
    return Calibration(ece=Metric(float(_ece(count, su, sg)), None), brier=Metric(float(((U - G) ** 2).mean()), None), bins=table)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    return (below + (counts + 1) / 2.0)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation (Pearson's of the average ranks); None when either side is constant
    or there are fewer than 2 values."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / den) if den > 0 else None


def answer_share(answers: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Per sample: the share of its prompt's n samples that gave the same answer (0 for no answer)."""
    out = []
    for row in answers:
        count = _answer_counts(row)
        out.append([count[a] / len(row) if a is not None else 0.0 for a in row])
    return np.array(out, dtype=float)


def _answer_counts(row: Sequence[str | None]) -> dict[str, int]:
    """How many samples of one prompt gave each answer (None answers left out)."""
    return Counter(a for a in row if a is not None)


def modal_keep(answers: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Per prompt, keep the samples that gave its most frequent answer (every answer tied for the most
    frequent; None answers are never kept, and a prompt with no answer keeps none): majority voting as
    a filter. prompts x n, bool."""
    out = []
    for row in answers:
        count = _answer_counts(row)
        top = max(count.values(), default=0)
        out.append([a is not None and count[a] == top for a in row])
    return np.array(out, dtype=bool).reshape(len(answers), -1)


def within_prompt_spearman(X: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per prompt (row): Spearman's correlation of X with Y over its masked samples; NaN where it is
    undefined (fewer than 2 such samples, or X or Y constant among them)."""
    out = np.full(X.shape[0], np.nan)
    for i in range(X.shape[0]):
        r = spearman(X[i][mask[i]], Y[i][mask[i]])
        if r is not None:
            out[i] = r
    return out


def pooled_spearman_draws(X: np.ndarray, Y: np.ndarray, mask: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Spearman's correlation of X with Y over the masked samples of each bootstrap resample of prompts
    (rows of ``idx``), ranked afresh in every resample: a prompt drawn k times brings k tied copies of
    each of its samples. NaN where a resample leaves X or Y constant."""
    rows = np.nonzero(mask)[0]
    x, y = X[mask], Y[mask]
    if x.size == 0:
        return np.full(idx.shape[0], np.nan)
    _, ix = np.unique(x, return_inverse=True)
    _, iy = np.unique(y, return_inverse=True)
    ix, iy = ix.ravel(), iy.ravel()
    P = X.shape[0]
    out = np.empty(idx.shape[0])
    for b, draw in enumerate(idx):
        w = np.bincount(draw, minlength=P)[rows].astype(float)  # each sample's copies in the resample
        ranks = []
        for inv in (ix, iy):
            tot = np.bincount(inv, weights=w)
            below = np.cumsum(tot) - tot
            ranks.append((below + (tot + 1.0) / 2.0)[inv])  # mid-ranks among the resample's copies
        rx, ry = ranks
        c = w.sum()
        if c == 0:  # the resample drew none of the masked samples' prompts: no correlation in it
            out[b] = np.nan
            continue
        mx, my = (w * rx).sum() / c, (w * ry).sum() / c
        sxy = (w * (rx - mx) * (ry - my)).sum()
        den = math.sqrt(float((w * (rx - mx) ** 2).sum() * (w * (ry - my) ** 2).sum()))
        out[b] = sxy / den if den > 0 else np.nan
    return out


def rank_bias(X: np.ndarray, Y: np.ndarray, mask: np.ndarray, idx: np.ndarray) -> RankBias:
    """How u (``X``) follows a covariate ``Y`` of the sample, over the masked samples (prompts x n), each
    with a 95% interval from the bootstrap resamples ``idx`` (rows of prompt indices):

    - ``within_prompt`` (the headline): Spearman's correlation inside each prompt, averaged over the
      ``n_prompts`` prompts where it is defined (two or more masked samples, X and Y each varying);
      a prompt's ranks do not change when prompts are resampled, so its interval averages the same
      per-prompt values over the resampled prompts. None when no prompt qualifies.
    - ``pooled`` (secondary): Spearman's correlation over all ``n_samples`` masked samples of all prompts,
      its interval re-ranking each resample. It mixes prompts: where u and the covariate both follow the
      prompt's difficulty it is far from 0 even when u ignores the covariate inside every prompt.
    """
    per = within_prompt_spearman(X, Y, mask)
    ok = np.isfinite(per)
    value = float(per[ok].mean()) if ok.any() else None
    n_boot = idx.shape[0]
    within_ci = None
    if value is not None and n_boot > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            within_ci = interval(np.where(ok, per, 0.0)[idx].sum(axis=1) / ok[idx].sum(axis=1))
    pooled = spearman(X[mask], Y[mask])
    pooled_ci = interval(pooled_spearman_draws(X, Y, mask, idx)) if pooled is not None and n_boot > 0 else None
    # schema 3's fields only (schema 2's pooled ``value`` and ``ci`` left out of the block)
    block: RankBias = build(RankBias, within_prompt=Metric(value, within_ci), n_prompts=int(ok.sum()), pooled=Metric(pooled, pooled_ci), n_samples=int(mask.sum()))
    return block


def gap_curve(G: np.ndarray, U: np.ndarray, rule: FilterRule, classes: AnswerClasses, *, seed: int = 0) -> list[CurvePoint]:
    """The gap against the number of samples: for k = 1, 2, 4, ..., n, the mean over k-subsets of every
    prompt's samples (every subset when there are at most CURVE_SUBSETS, else CURVE_SUBSETS seeded
    ones; one set of subsets serves every prompt) of J(f[w]) with ``rule`` applied to the subset's u,
    the gap, best-of-k; and pass@k, maj@k of the full sample (unbiased over all k-subsets). J(f) is
    the same at every k."""
    n = G.shape[1]
    rng = np.random.default_rng([seed, 3])
    J = float(G.mean())
    out = []
    for k in ks_for(n):
        rows = _subset_rows(n, k, rng, CURVE_SUBSETS, CURVE_SUBSETS)
        Jw_x, best_x = np.empty(G.shape[0]), np.empty(G.shape[0])
        chunk = max(1, 4_000_000 // (rows.size or 1))
        for start in range(0, G.shape[0], chunk):
            sl = slice(start, start + chunk)
            Gs, Us = G[sl][:, rows], U[sl][:, rows]  # prompts x subsets x k
            if rule.kind == "quantile":
                cut = np.minimum(np.quantile(Us, rule.level, axis=2, method="linear"), Us.max(axis=2))
            else:
                cut = np.full(Us.shape[:2], rule.level)
            keep = Us >= cut[..., None]
            kept = keep.sum(axis=2)
            Jw = np.where(kept > 0, (Gs * keep).sum(axis=2) / np.maximum(kept, 1), Gs.mean(axis=2))
            top = Us == Us.max(axis=2, keepdims=True)
            Jw_x[sl] = Jw.mean(axis=1)
            best_x[sl] = ((Gs * top).sum(axis=2) / top.sum(axis=2)).mean(axis=1)
        Jw_mean = float(Jw_x.mean())
        out.append(
            CurvePoint(
                n=k,
                J=J,
                J_filtered=Jw_mean,
                gap=Jw_mean - J,
                best_of_n=float(best_x.mean()),
                pass_at_k=pass_at_k(G, k),
                maj_at_k=maj_at_k(classes, n, k, np.random.default_rng([seed, 1])),
                subsets=int(rows.shape[0]),
            )
        )
    return out


def gap_curve_m(G: np.ndarray, V: np.ndarray, rule: FilterRule, *, seed: int = 0) -> list[CurvePointM]:
    """The gap against the number of verifications m per sample: ``V`` (prompts x n x m) holds each
    verification's value (NaN where unreadable). For m' = 1, 2, 4, ..., m, over m'-subsets of the m
    verifications (every one when there are at most CURVE_SUBSETS, else seeded ones; one subset serves
    every sample), u = the mean readable value of the subset (0 when none is readable, as the CoT verifiers
    score), and the mean over subsets of J(f[w]) under ``rule``, the gap and best-of-n."""
    m = V.shape[2]
    rng = np.random.default_rng([seed, 4])
    J = float(G.mean())
    out = []
    for k in ks_for(m):
        rows = _subset_rows(m, k, rng, CURVE_SUBSETS, CURVE_SUBSETS)
        Jw, best = [], []
        for r in rows:
            sub = V[:, :, r]
            read = ~np.isnan(sub)
            U = np.where(read.any(axis=2), np.nansum(sub, axis=2) / np.maximum(read.sum(axis=2), 1), 0.0)
            K = np.array([rule.keep(row) for row in U], dtype=bool).reshape(G.shape)
            _, Jw_x, _ = per_prompt_accuracy(G, K)
            Jw.append(float(Jw_x.mean()))
            best.append(best_of_n(G, U))
        out.append(CurvePointM(m=k, J_filtered=float(np.mean(Jw)), gap=float(np.mean(Jw)) - J, best_of_n=float(np.mean(best)), subsets=int(rows.shape[0])))
    return out


@dataclass(kw_only=True)
class Diagnostics:
    """The diagnostics of one verifier: the blocks results.json's ``verifiers.<method>`` holds from schema 2
    on (:class:`harness.results.VerifierResults`' fields of the same names and types). :func:`diagnostics`
    gives the first five; :func:`harness.scoring.verifier_diagnostics` adds the position bias and the gap
    against n and m. Built with :func:`harness.results.build`: a block not computed stays absent
    (:func:`harness.results.present` leaves it out), as results.json leaves it out."""

    within_prompt: WithinPrompt
    realised_share: Metric
    calibration: Calibration
    length_bias: dict[str, RankBias] | None = None  # "g=0", "g=1"; absent when the run recorded no token counts
    majority_echo: MajorityEcho
    position_bias: PositionBias | None = None  # pairwise verifiers (tournament) only; absent otherwise
    by_n: list[CurvePoint] = field(default_factory=list)  # the gap against n (scoring.verifier_diagnostics)
    by_m: list[CurvePointM] | None = None  # absent unless the verifier read m > 1 verifications per sample

    def length_bias_at(self, g: int) -> RankBias | None:
        """The length bias among the samples with ground truth ``g`` (0 or 1), or None without token counts."""
        return (self.length_bias or {}).get(f"g={g}")

    def to_json(self) -> dict:
        """The blocks as results.json writes them (absent ones left out)."""
        out: dict = to_json(self)
        return out


def diagnostics(
    prompts: Sequence[PromptScores],
    oracle_keep: Sequence[Sequence[bool]],
    rule: FilterRule,
    *,
    lengths: Sequence[Sequence[float]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Diagnostics:
    """How well a verifier ranks and what it buys, beside :func:`summarize`'s numbers; each with a 95%
    bootstrap interval over prompts (the same resampled prompts as :func:`bootstrap`, from ``seed``):

    - ``within_prompt``: AUROC inside each prompt averaged over the ``n_prompts`` prompts with both
      classes, and the pooled ``pairwise_accuracy`` (see :func:`within_prompt_auroc`);
    - ``realised_share``: gap(u) / gap(oracle) (``oracle_keep``: the oracle's keep, each prompt's correct
      samples, :func:`verifiers.oracle.correct_kept`, the most any filter gains);
    - ``calibration``: ECE and Brier score of u against g (:func:`calibration`), with the bins;
    - ``length_bias``: per g stratum (``g=0``, ``g=1``), Spearman's correlation of u with the response
      length (``lengths``, e.g. generated tokens; left out when not given), within prompts (the headline)
      and pooled (see :func:`rank_bias`);
    - ``majority_echo``: Spearman's correlation of u with the share of the prompt's samples that gave
      the sample's answer (``correlation``, within prompts and pooled, see :func:`rank_bias`), this
      verifier's ``gap``, and beside it ``modal_gap``: the gap of majority voting as a filter, keeping the
      samples that gave the prompt's most frequent answer (:func:`modal_keep`; it does not depend on
      ``rule``).
    """
    n = _check(prompts)
    G, U, K = _arrays(prompts, n)
    K_o = np.array(oracle_keep, dtype=bool).reshape(len(prompts), n)
    P = len(prompts)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, P, size=(n_boot, P)) if n_boot > 0 else np.zeros((0, P), dtype=np.int64)

    credit, pairs = within_prompt_pairs(G, U)
    both = pairs > 0
    auc_x = np.where(both, credit / np.where(both, pairs, 1.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_b = (auc_x * both)[idx].sum(axis=1) / both[idx].sum(axis=1)
        pair_b = credit[idx].sum(axis=1) / pairs[idx].sum(axis=1)
    auc, n_both = within_prompt_auroc(G, U)

    J_x, Jw_x, _ = per_prompt_accuracy(G, K)
    _, Jo_x, _ = per_prompt_accuracy(G, K_o)
    with np.errstate(invalid="ignore", divide="ignore"):
        go_b = (Jo_x - J_x)[idx].mean(axis=1)
        share_b = np.where(go_b > 1e-12, (Jw_x - J_x)[idx].mean(axis=1) / go_b, np.nan)

    count, su, sg = calibration_bins(G, U)
    cal = calibration(G, U)
    with np.errstate(invalid="ignore", divide="ignore"):
        ece_b = _ece(count[idx].sum(axis=1), su[idx].sum(axis=1), sg[idx].sum(axis=1))
    brier_x = ((U - G) ** 2).mean(axis=1)

    share_value = realised_share(G, K, K_o)
    within = WithinPrompt(
        auroc=Metric(auc, interval(auc_b) if auc is not None and n_boot > 0 else None),
        n_prompts=n_both,
        pairwise_accuracy=Metric(pairwise_accuracy(G, U), interval(pair_b) if both.any() and n_boot > 0 else None),
    )
    calibrated = Calibration(
        ece=Metric(cal.ece.value, interval(ece_b) if n_boot > 0 else None),
        brier=Metric(cal.brier.value, interval(brier_x[idx].mean(axis=1)) if n_boot > 0 else None),
        bins=cal.bins,
    )
    share = answer_share([p.answers for p in prompts])
    _, Jm_x, _ = per_prompt_accuracy(G, modal_keep([p.answers for p in prompts]))
    echo = build(
        MajorityEcho,  # schema 3's fields (schema 2's majority_gap left out)
        correlation=rank_bias(U, share, np.ones_like(G, dtype=bool), idx),
        gap=Metric(float((Jw_x - J_x).mean()), interval((Jw_x - J_x)[idx].mean(axis=1)) if n_boot > 0 else None),
        modal_gap=Metric(float((Jm_x - J_x).mean()), interval((Jm_x - J_x)[idx].mean(axis=1)) if n_boot > 0 else None),
    )
    share_metric = Metric(share_value, interval(share_b) if n_boot > 0 and share_value is not None else None)
    out: Diagnostics = build(Diagnostics, within_prompt=within, realised_share=share_metric, calibration=calibrated, majority_echo=echo)
    if lengths is not None:
        L = np.array(lengths, dtype=float).reshape(P, n)
        out = update(out, length_bias={f"g={v}": rank_bias(U, L, G == v, idx) for v in (0, 1)})
    return out


def position_bias(flips: Sequence[Sequence[int]], played: Sequence[Sequence[int]], *, n_boot: int = 1000, seed: int = 0) -> PositionBias | None:
    """Of a pairwise verifier's matches, the share whose winner changes when the two orders are swapped:
    per prompt, the samples' ``flips`` (matches of the sample where each order alone picks a different
    winner) and ``played`` (matches of the sample) each count every match twice. None without matches.
    Interval: bootstrap over prompts."""
    f = np.array([sum(r) for r in flips], dtype=float)
    p = np.array([sum(r) for r in played], dtype=float)
    if p.sum() == 0:
        return None
    idx = np.random.default_rng(seed).integers(0, f.size, size=(n_boot, f.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = f[idx].sum(axis=1) / p[idx].sum(axis=1)
    return PositionBias(float(f.sum() / p.sum()), interval(draws) if n_boot > 0 else None, matches=int(p.sum() // 2))
