"""A checkpoint against its baseline, paired over the same prompts.

For two runs of the same task, prompts (doc_id set) and sampling settings:

- the difference (new - base) in J(f), and per verifier in J(f[w(u)]), the gap and the relative gap,
  with a 95% **paired bootstrap** interval: prompts are resampled jointly (the same resampled prompts
  for both runs), ``n_boot`` times, seeded;
- a **paired test** whose unit is the prompt: the n samples of one prompt are correlated, so pairing
  samples (n x prompts pairs) gives p-values that are too small. For J(f), J(f[w(u)]) and the gap, a
  two-sided **sign-flip permutation test** on the per-prompt differences d_x = new(x) - base(x) (of
  J(f|x), J(f[w(u)]|x), and the per-prompt gap): under "no difference" each d_x is as likely to be
  -d_x, so p = the share of sign patterns whose |sum of +-d_x| is above the observed |sum d_x|, or equal
  to it with a |sum of the signs| (prompts up minus prompts down) at least the observed one. The second
  statistic only breaks ties of the first, which are many at small n (differences move in steps of 1/n);
  the test stays exact and its false-positive rate moves nearer alpha (``benchmarks/paired_null.py``).
  Prompts with d_x = 0 change nothing and are dropped; with at most ``PERM_EXACT_MAX`` prompts left
  every pattern is enumerated (exact), else ``n_perm`` seeded random patterns give
  p = (1 + hits) / (1 + n_perm) (Monte Carlo, still a valid test).
  Where both runs have one sample per prompt (n = 1), J(f) and J(f[w(u)]) are 0/1 per prompt and the
  test is McNemar's: with b = prompts right in base only and c = right in new only, the two-sided
  p-value is exact binomial, 2 P(X <= min(b, c)) for X ~ Bin(b + c, 1/2) capped at 1, when
  b + c <= ``EXACT_MAX``; else chi-squared with continuity correction, (|b - c| - 1)^2 / (b + c) on 1 df.
- several checkpoints against one base (:func:`compare_many`): each quantity's p-values are
  adjusted over the k comparisons by Holm's step-down method, and the adjusted p decides.

A difference in J(f), J(f[w(u)]) or the gap is called significant when its test's p (Holm-adjusted
where there are several comparisons) < alpha; a difference in the relative gap (a ratio, no paired
test) when its interval excludes 0.

Runs over different prompts, tasks (name, version, options, split, verification prompts) or sampling
settings, or scored with different filters, are refused with what differs, unless ``force`` (then the
shared prompts are compared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from gapbench.harness.config import differences
from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import parse_filter
from gapbench.harness.format import compact, pvalue
from gapbench.harness.format import number as f3
from gapbench.harness.metrics import interval, per_prompt_accuracy, per_prompt_relative_gap
from gapbench.harness.report import verifier_order
from gapbench.harness.results import to_json
from gapbench.harness.runs.rundata import RunData
from gapbench.harness.settings import N_BOOT

EXACT_MAX = 25  # b + c up to this: exact binomial McNemar
PERM_EXACT_MAX = 12  # prompts with a nonzero difference up to this: every sign pattern (2^12 = 4096)
N_PERM = 10000  # else this many seeded random sign patterns


# ---------------------------------------------------------------------------------------------
# the statistics


@dataclass(frozen=True)
class McNemar:
    b: int  # right in base, wrong in new
    c: int  # wrong in base, right in new
    p: float
    method: str  # "exact binomial" or "chi-squared (continuity corrected)"
    unit: str  # what was paired
    p_adjusted: float | None = None  # Holm-adjusted over several checkpoints (compare_many)
    adjustment: str | None = None  # how, e.g. "Holm over 3 comparisons"

    name: ClassVar[str] = "McNemar"
    short: ClassVar[str] = "McNemar"  # as the verdict names it

    @property
    def decisive_p(self) -> float:
        """The p that decides significance: the adjusted one where there is one."""
        return self.p if self.p_adjusted is None else self.p_adjusted

    def to_json(self) -> dict:
        return {"name": self.name, "b": self.b, "c": self.c, "p": self.p, "method": self.method, "unit": self.unit, **_adjusted(self)}


@dataclass(frozen=True)
class SignFlip:
    mean_diff: float  # mean over prompts of new - base
    nonzero: int  # prompts whose difference is not 0
    p: float
    method: str  # "exact (every sign pattern)" or "Monte Carlo (N patterns)"
    unit: str
    p_adjusted: float | None = None
    adjustment: str | None = None

    name: ClassVar[str] = "sign-flip permutation"
    short: ClassVar[str] = "sign-flip"

    @property
    def decisive_p(self) -> float:
        return self.p if self.p_adjusted is None else self.p_adjusted

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "mean_diff": self.mean_diff,
            "nonzero": self.nonzero,
            "p": self.p,
            "method": self.method,
            "unit": self.unit,
            **_adjusted(self),
        }


def _adjusted(t: McNemar | SignFlip) -> dict:
    """The Holm adjustment's fields, written only where there was one."""
    return {} if t.p_adjusted is None else {"p_adjusted": t.p_adjusted, "adjustment": t.adjustment}


def mcnemar(b: int, c: int, unit: str = "") -> McNemar:
    """Two-sided McNemar test of b discordant pairs one way against c the other way."""
    n = b + c
    if n == 0:
        return McNemar(b, c, 1.0, "exact binomial", unit)
    if n <= EXACT_MAX:
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
        return McNemar(b, c, min(1.0, 2.0 * tail), "exact binomial", unit)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return McNemar(b, c, math.erfc(math.sqrt(chi2 / 2.0)), "chi-squared (continuity corrected)", unit)


def mcnemar_pairs(base: np.ndarray, new: np.ndarray, unit: str = "") -> McNemar:
    """McNemar from paired 0/1 outcomes (any shape, paired elementwise)."""
    base = np.asarray(base, dtype=bool).ravel()
    new = np.asarray(new, dtype=bool).ravel()
    return mcnemar(int((base & ~new).sum()), int((~base & new).sum()), unit)


def sign_flip_p(diffs: np.ndarray, *, n_perm: int = N_PERM, seed: int = 0, tie_break: bool = True) -> tuple[np.ndarray, bool]:
    """Two-sided sign-flip permutation p-values of the last axis's mean difference, for every row of
    ``diffs`` (..., prompts) at once (one set of sign patterns serves every row). Exact over all 2^k
    patterns when the last axis has k <= PERM_EXACT_MAX entries, else ``(1 + hits) / (1 + n_perm)`` over
    ``n_perm`` seeded random patterns. Returns the p-values and whether they are exact.

    A pattern is a hit when its |sum| is above the observed one, or equal to it and (``tie_break``) its
    |sum of signs| (|prompts up - prompts down|) is at least the observed one. Per-prompt differences move
    in steps of 1/n, so many patterns tie on |sum| and, counted whole, make the test conservative at small
    n; breaking the ties by a second statistic keeps the test exact (a p-value of the lexicographic order
    (|sum|, |sum of signs|)) and brings its size nearer alpha. ``tie_break=False`` gives the plain |sum|
    test (the only form before this tie break was added)."""
    D = np.asarray(diffs, dtype=float)
    k = D.shape[-1]
    if k == 0:
        return np.ones(D.shape[:-1]), True
    exact = k <= PERM_EXACT_MAX
    if exact:
        signs = 1.0 - 2.0 * ((np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1)
    else:
        signs = np.where(np.random.default_rng([seed, 2]).random((n_perm, k)) < 0.5, -1.0, 1.0)
    observed = np.abs(D.sum(axis=-1))
    tol = 1e-9 * np.maximum(1.0, observed)  # float sums of the same multiset may differ in the last bits
    total = np.abs(D @ signs.T)
    at_least = total >= (observed - tol)[..., None]
    if tie_break:
        S = np.sign(D)
        tied = at_least & (total <= (observed + tol)[..., None])
        at_least = (at_least & ~tied) | (tied & (np.abs(S @ signs.T) >= np.abs(S.sum(axis=-1))[..., None]))
    hits = at_least.sum(axis=-1)
    if exact:
        return hits / signs.shape[0], True
    return (1.0 + hits) / (1.0 + n_perm), False


def sign_flip(diffs: np.ndarray, unit: str = "", *, n_perm: int = N_PERM, seed: int = 0, tie_break: bool = True) -> SignFlip:
    """The paired sign-flip test of one set of per-prompt differences (zeros dropped; see the module docstring)."""
    d = np.asarray(diffs, dtype=float).ravel()
    mean = float(d.mean()) if d.size else 0.0
    d = d[np.abs(d) > 1e-12]
    (p,), exact = sign_flip_p(d[None, :], n_perm=n_perm, seed=seed, tie_break=tie_break)
    method = "exact (every sign pattern)" if exact else f"Monte Carlo ({n_perm} sign patterns)"
    return SignFlip(mean, int(d.size), float(min(1.0, p)), method, unit)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of k p-values: the i-th smallest becomes
    max over j <= i of min(1, (k - j + 1) p_(j)), in the original order."""
    k = len(pvalues)
    order = sorted(range(k), key=lambda i: pvalues[i])
    out = [0.0] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * pvalues[i]))
        out[i] = running
    return out


def resample(n_prompts: int, n_boot: int, seed: int) -> np.ndarray:
    """Indices of ``n_boot`` bootstrap resamples of the prompts (rows), shared by both runs."""
    return np.random.default_rng(seed).integers(0, n_prompts, size=(n_boot, n_prompts))


def paired_mean_diff(base_x: np.ndarray, new_x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per resample: mean over the resampled prompts of new_x minus that of base_x."""
    return new_x[idx].mean(axis=1) - base_x[idx].mean(axis=1)


def _ratio_of(rel_x: np.ndarray, included: np.ndarray, idx: np.ndarray) -> np.ndarray:
    n_inc = included[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_inc > 0, (rel_x * included)[idx].sum(axis=1) / n_inc, np.nan)


def paired_relative_diff(base_J: np.ndarray, base_Jw: np.ndarray, new_J: np.ndarray, new_Jw: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per resample: the relative gap of new minus that of base (NaN where either is undefined)."""
    rb, ib = per_prompt_relative_gap(base_J, base_Jw)
    rn, in_ = per_prompt_relative_gap(new_J, new_Jw)
    return _ratio_of(rn, in_, idx) - _ratio_of(rb, ib, idx)


def _rel_value(J_x: np.ndarray, Jw_x: np.ndarray) -> tuple[float | None, int]:
    rel_x, included = per_prompt_relative_gap(J_x, Jw_x)
    return (float(rel_x[included].mean()) if included.any() else None), int((~included).sum())


# ---------------------------------------------------------------------------------------------
# checking that two runs can be paired


def incompatibilities(base: RunData, new: RunData, filter_spec: str | None = None) -> list[str]:
    """What differs between two runs that a paired comparison needs to be the same."""
    out = []
    b, n = base.results, new.results
    out += differences(to_json(b.task), to_json(n.task), "task.")
    out += differences(to_json(b.sampling) or {}, to_json(n.sampling) or {}, "sampling.")
    out += differences(to_json(b.verification_sampling) or {}, to_json(n.verification_sampling) or {}, "verification_sampling.")
    if filter_spec is None and base.filter != new.filter:
        out.append(f"filter: {base.filter} -> {new.filter} (pass --filter to score both runs with one rule)")
    only_base = [d for d in base.doc_ids if d not in set(new.doc_ids)]
    only_new = [d for d in new.doc_ids if d not in set(base.doc_ids)]
    if only_base or only_new:
        out.append(
            f"prompts: {len(only_base)} doc_ids only in BASE ({_examples(only_base)}), "
            f"{len(only_new)} only in NEW ({_examples(only_new)}); {len(base.doc_ids)} vs {len(new.doc_ids)} prompts"
        )
    return out


def _examples(ids: list[str], k: int = 3) -> str:
    if not ids:
        return "none"
    return ", ".join(ids[:k]) + (", ..." if len(ids) > k else "")


# ---------------------------------------------------------------------------------------------
# the comparison


@dataclass
class Delta:
    """One quantity of both runs and its paired difference, new - base."""

    base: float | None
    new: float | None
    delta: float | None  # None where the quantity is undefined in one of the runs
    ci: list[float] | None  # 95% paired bootstrap interval of delta
    test: McNemar | SignFlip | None  # the paired test (None: the relative gap, judged by its interval)
    significant: bool
    n_excluded: list[int] | None = None  # the relative gap only: prompts left out (J(f|x) = 1) in base and new

    def to_json(self) -> dict:
        out: dict[str, object] = {
            "base": self.base,
            "new": self.new,
            "delta": self.delta,
            "ci": self.ci,
            "test": self.test.to_json() if self.test else None,
            "significant": self.significant,
        }
        if self.n_excluded is not None:
            out["n_excluded"] = self.n_excluded
        return out


@dataclass
class VerifierDelta:
    """The quantities one verifier's filter gives, compared."""

    J_filtered: Delta
    gap: Delta
    relative_gap: Delta

    def quantities(self) -> tuple[tuple[str, Delta], ...]:
        """(the quantity's name as the report prints it, its comparison), in the report's order."""
        return (("J(f[w(u)])", self.J_filtered), ("gap", self.gap), ("relative gap", self.relative_gap))

    def to_json(self) -> dict:
        return {"J_filtered": self.J_filtered.to_json(), "gap": self.gap.to_json(), "relative_gap": self.relative_gap.to_json()}


@dataclass(frozen=True)
class Side:
    """One run of the pair as the report names it."""

    dir: str
    checkpoint: str
    n: int  # samples per prompt

    def to_json(self) -> dict:
        return {"dir": self.dir, "checkpoint": self.checkpoint, "n": self.n}


@dataclass(frozen=True)
class Filters:
    """The filter rule each run was scored with in the comparison."""

    base: str
    new: str

    def to_json(self) -> dict:
        return {"base": self.base, "new": self.new}


@dataclass
class Comparison:
    """The paired comparison of NEW against BASE (``gapbench leaderboard compare``; ``--json`` writes
    :meth:`to_json`)."""

    base: Side
    new: Side
    task: str
    split: str | None
    n_prompts: int  # prompts paired
    filter: Filters
    n_boot: int
    n_perm: int
    seed: int
    alpha: float
    comparisons: int  # checkpoints compared with this base (p-values Holm-adjusted over them when > 1)
    generation: Delta  # J(f)
    verifiers: dict[str, VerifierDelta] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was not compared
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "base": self.base.to_json(),
            "new": self.new.to_json(),
            "task": self.task,
            "split": self.split,
            "n_prompts": self.n_prompts,
            "filter": self.filter.to_json(),
            "n_boot": self.n_boot,
            "n_perm": self.n_perm,
            "seed": self.seed,
            "alpha": self.alpha,
            "comparisons": self.comparisons,
            "generation": self.generation.to_json(),
            "verifiers": {m: v.to_json() for m, v in self.verifiers.items()},
            "skipped": self.skipped,
            "notes": self.notes,
        }


def _delta(base_v: float | None, new_v: float | None, diffs: np.ndarray, test: McNemar | SignFlip | None, alpha: float) -> Delta:
    delta = None if base_v is None or new_v is None else new_v - base_v
    ci = interval(diffs)
    if test is not None:
        significant = test.p < alpha
    else:
        significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
    return Delta(base_v, new_v, delta, ci, test, bool(significant) if delta is not None else False)


def compare_runs(
    base: RunData,
    new: RunData,
    *,
    force: bool = False,
    filter_spec: str | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    alpha: float = 0.05,
    n_perm: int = N_PERM,
) -> Comparison:
    """The paired comparison of ``new`` against ``base`` (see the module docstring).
    ``seed`` and ``n_boot`` default to those the base run was scored with (:meth:`RunData.resampling`;
    :data:`harness.settings.N_BOOT` where it recorded no intervals, n_boot 0)."""
    seed, n_boot = base.resampling(seed, n_boot if n_boot is not None else (base.recorded[1] or N_BOOT))
    problems = incompatibilities(base, new, filter_spec)
    if problems and not force:
        raise GapbenchError(
            f"refusing to compare {new.dir} with {base.dir}: a paired comparison needs the same prompts, task and "
            "sampling settings, and these differ: " + "; ".join(problems) + ". Rerun one with the other's settings, "
            "or pass --force to compare them anyway (on the prompts they share)."
        )
    new_pos = {d: i for i, d in enumerate(new.doc_ids)}
    docs = [d for d in base.doc_ids if d in new_pos]
    if not docs:
        raise GapbenchError(f"{base.dir} and {new.dir} share no prompt (doc_id); there is nothing to pair.")
    if n_boot < 1:
        raise GapbenchError(f"--n-boot must be at least 1 (got {n_boot}).")
    if n_perm < 1:
        raise GapbenchError(f"--n-perm must be at least 1 (got {n_perm}).")
    base_pos = {d: i for i, d in enumerate(base.doc_ids)}
    bi = np.array([base_pos[d] for d in docs])
    ni = np.array([new_pos[d] for d in docs])
    Gb, Gn = base.G[bi], new.G[ni]
    idx = resample(len(docs), n_boot, seed)

    Jb_x, Jn_x = Gb.mean(axis=1), Gn.mean(axis=1)
    single = base.n == new.n == 1

    def test(b_x: np.ndarray, n_x: np.ndarray, what: str) -> McNemar | SignFlip:
        if single and what != "gap":
            return mcnemar_pairs(b_x, n_x, f"per prompt (n = 1), {what}")
        return sign_flip(n_x - b_x, f"per prompt, differences of {what}", n_perm=n_perm, seed=seed)

    generation = _delta(float(Jb_x.mean()), float(Jn_x.mean()), paired_mean_diff(Jb_x, Jn_x, idx), test(Jb_x, Jn_x, "J(f|x)"), alpha)

    rule_b = parse_filter(filter_spec or base.filter)
    rule_n = parse_filter(filter_spec or new.filter)
    methods = verifier_order(set(base.verifiers) & set(new.verifiers))
    skipped = {}
    for m in sorted(set(base.results.verifiers) ^ set(new.results.verifiers)):
        skipped[m] = "in BASE only" if m in base.results.verifiers else "in NEW only"
    for run, name in ((base, "BASE"), (new, "NEW")):
        for m, why in run.unscored.items():
            skipped.setdefault(m, f"{name}: {why}")
    verifiers = {}
    for m in methods:
        Kb = base.keep(m, rule_b, docs)
        Kn = new.keep(m, rule_n, docs)
        _, Jwb_x, _ = per_prompt_accuracy(Gb, Kb)
        _, Jwn_x, _ = per_prompt_accuracy(Gn, Kn)
        rel_b, exc_b = _rel_value(Jb_x, Jwb_x)
        rel_n, exc_n = _rel_value(Jn_x, Jwn_x)
        relative_gap = _delta(rel_b, rel_n, paired_relative_diff(Jb_x, Jwb_x, Jn_x, Jwn_x, idx), None, alpha)
        relative_gap.n_excluded = [exc_b, exc_n]
        verifiers[m] = VerifierDelta(
            J_filtered=_delta(
                float(Jwb_x.mean()),
                float(Jwn_x.mean()),
                paired_mean_diff(Jwb_x, Jwn_x, idx),
                test(Jwb_x, Jwn_x, "J(f[w(u)]|x)"),
                alpha,
            ),
            gap=_delta(
                float((Jwb_x - Jb_x).mean()),
                float((Jwn_x - Jn_x).mean()),
                paired_mean_diff(Jwb_x - Jb_x, Jwn_x - Jn_x, idx),
                test(Jwb_x - Jb_x, Jwn_x - Jn_x, "gap"),
                alpha,
            ),
            relative_gap=relative_gap,
        )
    notes = []
    for run, name, rule in ((base, "BASE", rule_b), (new, "NEW", rule_n)):
        for m in methods:
            recorded = run.results.verifiers[m].J_filtered.value
            if rule.spec == run.filter and recorded is not None and len(docs) == len(run.doc_ids):
                rescored = verifiers[m].J_filtered
                again = rescored.base if run is base else rescored.new
                if again is not None and abs(again - recorded) > 1e-9:
                    notes.append(
                        f"{name} {m}: J(f[w(u)]) rescored from the stored verdicts is {f3(again, 4)}, results.json records "
                        f"{f3(recorded, 4)}; the run was scored by other code; rerun `gapbench run` on {run.dir} to rescore it."
                    )
    if problems:
        notes.append("compared despite differences (--force): " + "; ".join(problems))
    if filter_spec:
        notes.append(f"both runs scored with the filter {filter_spec}")
    return Comparison(
        base=Side(str(base.dir), base.label, base.n),
        new=Side(str(new.dir), new.label, new.n),
        task=base.results.task.name,
        split=base.results.task.split,
        n_prompts=len(docs),
        filter=Filters(rule_b.spec, rule_n.spec),
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
        alpha=alpha,
        comparisons=1,
        generation=generation,
        verifiers=verifiers,
        skipped=skipped,
        notes=notes,
    )


def compare_many(base: RunData, news: list[RunData], *, alpha: float = 0.05, **kwargs: Any) -> list[Comparison]:
    """Several checkpoints against one base: one report per NEW run, each quantity's test p-values
    Holm-adjusted over the k comparisons (``test.p_adjusted``); significance follows the adjusted p."""
    reports = [compare_runs(base, new, alpha=alpha, **kwargs) for new in news]
    if len(reports) < 2:
        return reports
    groups: dict[tuple[str, ...], list[Delta]] = {}
    for r in reports:
        r.comparisons = len(reports)
        groups.setdefault(("J(f)",), []).append(r.generation)
        for m, per in r.verifiers.items():
            for name, block in per.quantities():
                groups.setdefault((m, name), []).append(block)
    for group in groups.values():
        tested = [(b, b.test) for b in group if b.test is not None]
        for (b, t), adj in zip(tested, holm([t.p for _, t in tested])):
            b.test = replace(t, p_adjusted=adj, adjustment=f"Holm over {len(reports)} comparisons")
            b.significant = bool(adj < alpha) if b.delta is not None else False
    return reports


# ---------------------------------------------------------------------------------------------
# the text report


def _ci_text(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{f3(ci[0], signed=True)}, {f3(ci[1], signed=True)}]"


def _test_text(t: McNemar | SignFlip | None) -> str:
    if not t:
        return "bootstrap only"
    adj = f", Holm-adjusted p={pvalue(t.p_adjusted)}" if t.p_adjusted is not None else ""
    if isinstance(t, McNemar):
        return f"McNemar {t.unit}: b={t.b}, c={t.c}, {t.method} p={pvalue(t.p)}{adj}"
    return f"sign-flip {t.unit} ({t.nonzero} nonzero, {t.method}): p={pvalue(t.p)}{adj}"


def verdict(name: str, block: Delta, alpha: float) -> str:
    if block.delta is None:
        return f"{name}: undefined in one of the runs (every prompt has J(f|x) = 1)."
    d = f3(block.delta, signed=True)
    ci = _ci_text(block.ci)
    t = block.test
    if t is not None:
        label = f"{t.short} p = {pvalue(t.p)}" + (f", Holm-adjusted {pvalue(t.p_adjusted)}" if t.p_adjusted is not None else "")
        reason = label + (" < " if t.decisive_p < alpha else " >= ") + compact(alpha)
    else:
        reason = "the 95% interval " + ("excludes 0" if block.significant else "includes 0")
    if block.significant:
        direction = "better" if block.delta > 0 else "worse"
        return f"{name}: {d} {ci}, significant ({reason}): NEW is {direction}."
    return f"{name}: {d} {ci}, NOT significant ({reason}): no evidence of a difference."


def render(report: Comparison) -> str:
    from tabulate import tabulate

    b, n = report.base, report.new
    head = (
        f"NEW {n.checkpoint} ({n.dir})\n vs BASE {b.checkpoint} ({b.dir})\n"
        f"on {report.task} ({report.split}): {report.n_prompts} paired prompts, n = {b.n} (base) and {n.n} (new) samples, "
        f"filter {report.filter.base}" + (f" / {report.filter.new}" if report.filter.new != report.filter.base else "")
        + f"; paired bootstrap over prompts, {report.n_boot} resamples (seed {report.seed}), 95% intervals; "
        "paired tests per prompt (sign-flip permutation; McNemar where n = 1); alpha "
        + compact(report.alpha)
        + (f"; p-values Holm-adjusted over the {report.comparisons} checkpoints compared with this base" if report.comparisons > 1 else "")
    )
    rows = []
    lines = []
    g = report.generation
    rows.append(["J(f)", "", f3(g.base), f3(g.new), f3(g.delta, signed=True), _ci_text(g.ci), _test_text(g.test)])
    lines.append(verdict("J(f)", g, report.alpha))
    for m, per in report.verifiers.items():
        for name, x in per.quantities():
            rows.append([name, m, f3(x.base), f3(x.new), f3(x.delta, signed=True), _ci_text(x.ci), _test_text(x.test)])
            lines.append(verdict(f"{name} ({m})", x, report.alpha))
    table = tabulate(rows, headers=["quantity", "verifier", "base", "new", "Δ new-base", "95% interval", "paired test"], disable_numparse=True)
    parts = [head, table, "\n".join("- " + s for s in lines)]
    if report.skipped:
        parts.append("not compared: " + "; ".join(f"{m} ({why})" for m, why in sorted(report.skipped.items())))
    parts += [f"note: {x}" for x in report.notes]
    return "\n\n".join(parts)
