"""Metrics on hand-computed cases, and against brute force where a closed form could slip."""

import json
import math
from collections import Counter
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest

from gapbench.harness.filters import FilterRule
from gapbench.harness.metrics import (
    PromptScores,
    answer_classes,
    auroc,
    auroc_interval,
    bootstrap,
    filter_sweep,
    ks_for,
    maj_at_k,
    pass_at_k_table,
    summarize,
)
from gapbench.harness.results import RelativeGap, SweepLevel, VerifierSummary, from_json, to_json


def P(doc_id, g, u=None, keep=None, answers=None):
    n = len(g)
    return PromptScores(
        doc_id=doc_id,
        g=list(g),
        u=list(u) if u is not None else [0.5] * n,
        keep=list(keep) if keep is not None else [True] * n,
        answers=list(answers) if answers is not None else [str(x) for x in g],
    )


# the 3-prompt example worked by hand:
#   p1 g=1001 keep=1001 -> J(f|x)=1/2, J(f[w]|x)=1,   relative (1-1/2)/(1/2)   = 1
#   p2 g=0001 keep=1100 -> J(f|x)=1/4, J(f[w]|x)=0,   relative (0-1/4)/(3/4)   = -1/3
#   p3 g=1111 keep=1000 -> J(f|x)=1,   J(f[w]|x)=1,   excluded from the relative gap
#   J = 7/12, J(f[w]) = 2/3, gap = 1/12, relative gap = (1 - 1/3)/2 = 1/3
THREE = [
    P("p1", [1, 0, 0, 1], keep=[1, 0, 0, 1]),
    P("p2", [0, 0, 0, 1], keep=[1, 1, 0, 0]),
    P("p3", [1, 1, 1, 1], keep=[1, 0, 0, 0]),
]


def test_J_filtered_gap_by_hand():
    s = summarize(THREE, n_boot=50)
    assert s.J.value == pytest.approx(7 / 12)
    assert s.J_filtered.value == pytest.approx(2 / 3)
    assert s.gap.value == pytest.approx(1 / 12)
    assert s.relative_gap.value == pytest.approx(1 / 3)
    assert s.relative_gap.n_excluded == 1
    assert s.n_prompts == 3 and s.n_samples == 4
    assert s.filter.kept_share == pytest.approx(5 / 12)  # kept 2 + 2 + 1 of 12
    assert s.filter.precision == pytest.approx(3 / 5)  # kept g: 1,1 | 0,0 | 1
    assert s.filter.recall == pytest.approx(3 / 7)  # correct: 2 + 1 + 4 = 7, of which 2 + 0 + 1 kept
    assert s.filter.prompts_none_kept == 0


def test_prompts_weigh_equally_not_samples():
    # J is the mean of per-prompt means, so with equal n it equals the pooled mean;
    # J(f[w]) is the mean of per-prompt kept means, not the pooled kept mean.
    prompts = [P("a", [1, 1, 0, 0], keep=[1, 0, 0, 0]), P("b", [0, 0, 0, 1], keep=[1, 1, 1, 0])]
    s = summarize(prompts, n_boot=0)
    assert s.J_filtered.value == pytest.approx((1 + 0) / 2)  # pooled would be 1/4
    assert s.J.ci is None


def test_none_kept_falls_back_to_all_samples():
    prompts = [P("a", [1, 0, 0, 0], keep=[0, 0, 0, 0]), P("b", [1, 1, 0, 0], keep=[1, 0, 0, 0])]
    s = summarize(prompts, n_boot=0)
    assert s.filter.prompts_none_kept == 1
    assert s.J_filtered.value == pytest.approx((0.25 + 1.0) / 2)
    assert s.gap.value == pytest.approx((0.25 + 1.0) / 2 - (0.25 + 0.5) / 2)
    # the fallback prompt contributes 0 to the relative gap but still counts in its mean
    assert s.relative_gap.value == pytest.approx((0 + 1.0) / 2)
    # filter quality uses the filter's own decisions, not the fallback
    assert s.filter.kept_share == pytest.approx(1 / 8)


def test_relative_gap_edge_cases():
    # keeping only the correct samples recovers all the room: 1.0
    assert summarize([P("a", [1, 0, 0, 0], keep=[1, 0, 0, 0])], n_boot=0).relative_gap.value == 1.0
    # a prompt with J(f|x) = 0 can not move: 0
    assert summarize([P("a", [0, 0, 0, 0], keep=[1, 0, 0, 0])], n_boot=0).relative_gap.value == 0.0
    # keeping only the wrong ones: negative
    s = summarize([P("a", [1, 1, 0, 0], keep=[0, 0, 1, 0])], n_boot=0)
    assert s.relative_gap.value == pytest.approx(-1.0)
    assert s.gap.value == pytest.approx(-0.5)
    # all prompts J(f|x) = 1: undefined, everything excluded and counted
    s = summarize([P("a", [1, 1], keep=[1, 0]), P("b", [1, 1], keep=[0, 1])], n_boot=100)
    assert s.relative_gap == RelativeGap(None, None, 2)
    assert s.gap.value == 0.0


def test_auroc_hand_count_with_ties():
    # positives 0.9, 0.5; negatives 0.5, 0.2, 0.5
    # 0.9 beats all 3; 0.5 ties two (1/2 each) and beats 0.2 -> (3 + 2) / 6
    assert auroc(np.array([0.9, 0.5, 0.5, 0.2, 0.5]), np.array([1, 1, 0, 0, 0])) == pytest.approx(5 / 6)
    assert auroc(np.array([0.3, 0.3]), np.array([1, 0])) == 0.5
    assert auroc(np.array([0.1, 0.9]), np.array([1, 0])) == 0.0
    assert auroc(np.array([0.1, 0.9]), np.array([1, 1])) is None
    assert auroc(np.array([0.1, 0.9]), np.array([0, 0])) is None


def test_auroc_matches_pair_count():
    rng = np.random.default_rng(3)
    u = rng.integers(0, 5, size=60) / 4  # many ties
    g = rng.integers(0, 2, size=60)
    pos, neg = u[g == 1], u[g == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    assert auroc(u, g) == pytest.approx(wins / (len(pos) * len(neg)))


def test_auroc_interval_by_hand():
    # two prompts: "a" holds the only positive (u 0.9) above its negative (0.1), "b" two negatives.
    # A resample of prompts has both classes only when it holds "a", and then every positive
    # (0.9) is above every negative (0.1 or 0.2 or 0.4): AUROC 1 in each such resample.
    G = np.array([[1, 0], [0, 0]])
    U = np.array([[0.9, 0.1], [0.2, 0.4]])
    assert auroc_interval(G, U, n_boot=200, seed=0) == [1.0, 1.0]
    # swap the positive's score below every negative: 0 in every resample that has it
    assert auroc_interval(G, np.array([[0.05, 0.1], [0.2, 0.4]]), n_boot=200, seed=0) == [0.0, 0.0]
    # one class only in every resample: no interval; no resampling asked: none
    assert auroc_interval(np.zeros((2, 2)), U, n_boot=50, seed=0) is None
    assert auroc_interval(G, U, n_boot=0, seed=0) is None


def test_auroc_interval_holds_the_value_and_varies_with_the_prompts():
    # prompt 1: the positive above the negative (pair AUROC 1); prompt 2: below it (0). Pooled over both
    # (positives 0.9 and 0.3, negatives 0.1 and 0.6): 0.9 beats both, 0.3 beats 0.1 -> 3/4.
    G = np.array([[1, 0], [1, 0]])
    U = np.array([[0.9, 0.1], [0.3, 0.6]])
    assert auroc(U, G) == pytest.approx(0.75)
    lo, hi = auroc_interval(G, U, n_boot=500, seed=1)
    assert lo == 0.0 and hi == 1.0  # resamples of only prompt 2 give 0, of only prompt 1 give 1
    assert auroc_interval(G, U, n_boot=500, seed=1) == [lo, hi]  # the seed fixes it


def test_verification_quality_by_hand():
    # pooled over prompts; u >= 0.5 is "called correct"
    prompts = [P("a", [1, 1, 0], u=[0.9, 0.5, 0.5]), P("b", [0, 0, 1], u=[0.2, 0.5, 0.1])]
    v = summarize(prompts, n_boot=0).verification
    # pred 1 1 1 | 0 1 0 ; g 1 1 0 | 0 0 1 -> right: 1 1 0 1 0 0
    assert v.accuracy == pytest.approx(3 / 6)
    assert v.precision == pytest.approx(2 / 4)
    assert v.recall == pytest.approx(2 / 3)
    assert v.positive_rate == pytest.approx(4 / 6)
    # positives 0.9 0.5 0.1 ; negatives 0.5 0.2 0.5
    # 0.9: 3 ; 0.5: 0.5 + 1 + 0.5 ; 0.1: 0 -> 5 / 9
    assert v.auroc == pytest.approx(5 / 9)


def test_precision_recall_undefined():
    # nothing called correct -> precision None; nothing correct -> recall None and AUROC None
    s = summarize([P("a", [0, 0], u=[0.1, 0.2], keep=[0, 0])], n_boot=0)
    v, f = s.verification, s.filter
    assert v.precision is None and v.recall is None and v.auroc is None
    assert v.accuracy == 1.0 and v.positive_rate == 0.0
    assert f.precision is None and f.recall is None and f.kept_share == 0.0
    # called correct but all wrong: precision 0, recall still undefined
    s = summarize([P("a", [0, 0], u=[0.9, 0.2], keep=[1, 0])], n_boot=0)
    assert s.verification.precision == 0.0 and s.verification.recall is None
    assert s.filter.precision == 0.0 and s.filter.recall is None


def test_best_of_n_ties_average():
    prompts = [
        P("a", [1, 0, 1], u=[0.9, 0.9, 0.1]),  # tie at 0.9: (1 + 0) / 2
        P("b", [0, 1, 1], u=[0.2, 0.8, 0.8]),  # tie at 0.8: 1
        P("c", [0, 1, 0], u=[0.7, 0.3, 0.1]),  # top is wrong: 0
    ]
    assert summarize(prompts, n_boot=0).best_of_n == pytest.approx((0.5 + 1 + 0) / 3)


def test_ks():
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(6) == [1, 2, 4, 6]
    assert ks_for(128) == [1, 2, 4, 8, 16, 32, 64, 128]


@pytest.mark.parametrize("n,k", [(1, 1), (4, 2), (5, 3), (7, 1), (7, 4), (8, 8), (10, 5)])
def test_pass_at_k_brute_force(n, k):
    table = pass_at_k_table(n, k)
    for c in range(n + 1):
        subsets = list(combinations(range(n), k))
        hit = sum(any(i < c for i in s) for s in subsets)  # samples 0..c-1 are the correct ones
        assert table[c] == pytest.approx(hit / len(subsets), abs=1e-12), (n, c, k)
        assert table[c] == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    table = pass_at_k_table(128, 64)
    assert np.all((table >= 0) & (table <= 1))
    assert table[1] == pytest.approx(0.5)
    assert table[0] == 0.0 and table[128] == 1.0


def test_pass_at_k_in_summarize():
    prompts = [P("a", [1, 0, 0, 0]), P("b", [0, 0, 0, 0]), P("c", [1, 1, 0, 0])]
    pk = summarize(prompts, n_boot=0).pass_at_k
    assert list(pk) == ["1", "2", "4"]
    assert pk["1"] == pytest.approx((0.25 + 0 + 0.5) / 3)
    assert pk["2"] == pytest.approx((0.5 + 0 + 5 / 6) / 3)
    assert pk["4"] == pytest.approx(2 / 3)


def brute_maj(answers, g, k):
    """Exact maj@k of one prompt by enumeration, with Fractions."""
    correct = {a for a, x in zip(answers, g) if a is not None and x}
    total = Fraction(0)
    subsets = list(combinations(range(len(answers)), k))
    for s in subsets:
        votes = Counter(answers[i] for i in s if answers[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, c in votes.items() if c == top]
        total += Fraction(sum(a in correct for a in tied), len(tied))
    return total / len(subsets)


MAJ_CASE = [
    # ties between answers, None answers, an answer that is correct on one sample and wrong on another
    P("a", [1, 0, 0, 0, 0, 0], answers=["x", "y", "y", None, "x", "z"]),
    P("b", [0, 0, 1, 0, 0, 0], answers=[None, None, "q", "r", None, "r"]),
    P("c", [0, 0, 0, 0, 0, 0], answers=[None] * 6),
    P("d", [1, 1, 1, 0, 0, 0], answers=["7", "7", "7", "7", "8", "9"]),
]


def test_maj_at_k_brute_force_exact():
    s = summarize(MAJ_CASE, n_boot=0)
    assert list(s.maj_at_k) == ["1", "2", "4", "6"]
    for k in (1, 2, 4, 6):
        expected = sum(brute_maj(p.answers, p.g, k) for p in MAJ_CASE) / len(MAJ_CASE)
        assert s.maj_at_k[str(k)] == pytest.approx(float(expected), abs=1e-12), k
    # spot checks by hand: maj@6 of a = tie x:2 y:2 z:1 with x correct -> 1/2; b: r wins -> 0; d: 7 wins -> 1
    assert s.maj_at_k["6"] == pytest.approx((0.5 + 0 + 0 + 1) / 4)


def test_maj_at_k_brute_force_many_single_answers():
    # answers mostly given once: the vote is decided by ties among single answers
    rng = np.random.default_rng(11)
    prompts = []
    for i in range(12):
        answers = [rng.choice(["a", "b", "c", "d", "e", "f", "g", None]) for _ in range(7)]
        g = [int(a is not None and a in "ab" and rng.random() < 0.8) for a in answers]
        prompts.append(P(f"m{i}", g, answers=answers))
    s = summarize(prompts, n_boot=0)
    assert list(s.maj_at_k) == ["1", "2", "4", "7"]
    for k in (1, 2, 3, 4, 5, 7):
        expected = float(sum(brute_maj(p.answers, p.g, k) for p in prompts) / len(prompts))
        got = maj_at_k(answer_classes(prompts), 7, k, np.random.default_rng(0))
        assert got == pytest.approx(expected, abs=1e-12), k
        if str(k) in s.maj_at_k:
            assert s.maj_at_k[str(k)] == pytest.approx(expected, abs=1e-12), k


def test_maj_at_k_sampled_close_to_exact():
    rng = np.random.default_rng(7)
    prompts = []
    for i in range(6):
        answers = [rng.choice(["1", "2", "3", None]) for _ in range(16)]
        g = [int(a == "1") for a in answers]
        prompts.append(P(f"s{i}", g, answers=answers))
    classes = answer_classes(prompts)
    k = 8  # C(16, 8) = 12870 > 2000: sampled
    est = maj_at_k(classes, 16, k, np.random.default_rng(0))
    exact = float(sum(brute_maj(p.answers, p.g, k) for p in prompts) / len(prompts))
    assert est == pytest.approx(exact, abs=0.03)
    # seeded: the same seed gives the same estimate
    assert maj_at_k(classes, 16, k, np.random.default_rng(0)) == est


def test_bootstrap_contains_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    prompts = [
        P(f"d{i}", rng.integers(0, 2, 8).tolist(), u=rng.random(8).tolist(), keep=(rng.random(8) > 0.4).tolist())
        for i in range(80)
    ]
    a = summarize(prompts, n_boot=300, seed=5)
    b = summarize(prompts, n_boot=300, seed=5)
    c = summarize(prompts, n_boot=300, seed=6)
    assert a == b
    assert a.J.ci != c.J.ci
    for key in ("J", "J_filtered", "gap", "relative_gap"):
        lo, hi = getattr(a, key).ci
        assert lo <= getattr(a, key).value <= hi, key
        assert lo < hi, key


def test_bootstrap_degenerate_when_prompts_identical():
    prompts = [P(f"d{i}", [1, 0, 0], keep=[1, 1, 0]) for i in range(30)]
    s = summarize(prompts, n_boot=200)
    for key in ("J", "J_filtered", "gap", "relative_gap"):
        lo, hi = getattr(s, key).ci
        assert lo == hi, key
        assert lo == pytest.approx(getattr(s, key).value), key


def test_bootstrap_relative_gap_skips_resamples_without_room():
    # one prompt with room, many without: some resamples have no prompt with J(f|x) < 1
    J_x = np.array([0.5] + [1.0] * 9)
    Jw_x = np.array([1.0] + [1.0] * 9)
    ci = bootstrap(J_x, Jw_x, n_boot=500, seed=0)
    assert ci.relative_gap == [1.0, 1.0]


def test_summarize_shape_and_json():
    s = summarize(MAJ_CASE, n_boot=20)
    assert isinstance(s, VerifierSummary)
    for key in ("J", "J_filtered", "gap"):
        m = getattr(s, key)
        assert type(m.value) is float and len(m.ci) == 2
        assert all(type(x) is float for x in m.ci)
    assert type(s.n_prompts) is int and type(s.filter.prompts_none_kept) is int
    assert type(s.best_of_n) is float
    assert all(type(v) is float for v in s.pass_at_k.values())
    assert all(type(v) is float for v in s.maj_at_k.values())
    # the block is results.json's: written and read back by the one codec, it is the same block
    assert from_json(VerifierSummary, json.loads(json.dumps(to_json(s))), "test") == s
    assert list(to_json(s)) == ["n_prompts", "n_samples", "J", "J_filtered", "gap", "relative_gap", "verification",
                                "filter", "best_of_n", "pass@k", "maj@k"]


def test_unequal_or_empty_samples_name_the_doc_id():
    with pytest.raises(ValueError, match="'p2'"):
        summarize([P("p1", [1, 0]), P("p2", [1, 0, 1])])
    with pytest.raises(ValueError, match="'p0'"):
        summarize([P("p0", [])])
    bad = P("p3", [1, 0])
    bad.u = [0.5]
    with pytest.raises(ValueError, match="'p3'"):
        summarize([P("p1", [1, 0]), bad])
    with pytest.raises(ValueError):
        summarize([])


def test_filter_sweep():
    prompts = [
        P("a", [1, 0, 0, 1], u=[0.9, 0.1, 0.2, 0.8]),
        P("b", [0, 1, 0, 0], u=[0.7, 0.6, 0.3, 0.1]),
    ]
    rows = filter_sweep(prompts, lambda rule, i: rule.keep(prompts[i].u), "quantile")
    assert [r.level for r in rows] == pytest.approx([i / 10 for i in range(10)])
    assert all(isinstance(r, SweepLevel) for r in rows)
    assert rows[0].gap == 0.0 and rows[0].kept_share == 1.0
    # quantile 0.5: a keeps 0.9, 0.8 (both right) -> 1; b keeps 0.7, 0.6 -> 1/2
    half = rows[5]
    assert half.J_filtered == pytest.approx(0.75)
    assert half.gap == pytest.approx(0.75 - 0.375)
    assert half.relative_gap == pytest.approx(((1 - 0.5) / 0.5 + (0.5 - 0.25) / 0.75) / 2)
    assert half.kept_share == 0.5
    # the same numbers as summarize on the same masks
    same = [P(p.doc_id, p.g, u=p.u, keep=FilterRule("quantile", 0.5).keep(p.u)) for p in prompts]
    assert summarize(same, n_boot=0).gap.value == pytest.approx(half.gap)
    # threshold sweep at 1.0 keeps none: fallback, gap 0
    rows = filter_sweep(prompts, lambda rule, i: rule.keep(prompts[i].u), "threshold", levels=[1.0])
    assert rows[0].gap == 0.0 and rows[0].kept_share == 0.0
    with pytest.raises(ValueError, match="'a'"):
        filter_sweep(prompts, lambda rule, i: [True], "quantile", levels=[0.5])


def test_summarize_full_gsm8k_size():
    # 1,319 prompts x 128 samples, as a GSM8K run with the paper's settings (no timing assertion)
    rng = np.random.default_rng(0)
    n_prompts, n = 1319, 128
    skill = rng.random(n_prompts)
    G = (rng.random((n_prompts, n)) < skill[:, None]).astype(int)
    U = np.clip(0.3 * G + 0.7 * rng.random((n_prompts, n)), 0, 1)
    choices = np.array(["0", "1", "2", "3", "4", "5"], dtype=object)
    prompts = []
    for i in range(n_prompts):
        answers = np.where(G[i] == 1, "42", choices[rng.integers(0, 6, n)]).tolist()
        answers = [None if rng.random() < 0.05 else a for a in answers]
        keep = FilterRule("quantile", 0.5).keep(U[i])
        prompts.append(PromptScores(f"gsm8k-{i}", G[i].tolist(), U[i].tolist(), keep, answers))
    s = summarize(prompts, n_boot=1000, seed=0)
    assert s.n_prompts == n_prompts and s.n_samples == n
    assert list(s.pass_at_k) == ["1", "2", "4", "8", "16", "32", "64", "128"]
    assert s.pass_at_k["1"] == pytest.approx(s.J.value)
    assert s.gap.value > 0  # u is informative here
    assert 0.5 < s.verification.auroc < 1
    lo, hi = s.gap.ci
    assert lo <= s.gap.value <= hi
    assert all(0 <= v <= 1 for v in s.maj_at_k.values())


def test_kept_precision_interval():
    # the verifier's precision at the filter's operating point: share of kept samples with g = 1, with its interval
    rng = np.random.default_rng(2)
    prompts = [P(f"d{i}", rng.integers(0, 2, 6).tolist(), keep=(rng.random(6) > 0.5).tolist()) for i in range(40)]
    f = summarize(prompts, n_boot=300, seed=1).filter
    lo, hi = f.precision_ci
    assert lo < f.precision < hi
    assert summarize(prompts, n_boot=0).filter.precision_ci is None
    none_kept = summarize([P("a", [1, 0], keep=[0, 0])], n_boot=50).filter
    assert none_kept.precision is None and none_kept.precision_ci is None
