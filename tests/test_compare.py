"""Comparing a checkpoint with its baseline: the per-prompt sign-flip test, McNemar (n = 1), Holm and the
paired bootstrap on hand-computed cases, the comparison of synthetic run directories, and the refusals.
(The false-positive rate of the tests on simulated and real re-sampled runs: tests/test_compare_validity.py.)"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from boards_support import write_run

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import load as load_results
from gapbench.harness.runs.compare import (
    compare_many,
    compare_runs,
    holm,
    interval,
    mcnemar,
    mcnemar_pairs,
    paired_mean_diff,
    paired_relative_diff,
    render,
    resample,
    sign_flip,
    sign_flip_p,
)
from gapbench.harness.runs.rundata import load_run

G_BASE = {"add1-0": [1, 1], "add1-1": [1, 0], "mul1-0": [0, 0], "mul1-1": [0, 1]}  # J = 0.5
G_NEW = {"add1-0": [1, 1], "add1-1": [1, 1], "mul1-0": [0, 1], "mul1-1": [0, 1]}  # J = 0.75
U = {"add1-0": [0.9, 0.8], "add1-1": [0.7, 0.2], "mul1-0": [0.4, 0.3], "mul1-1": [0.6, 0.5]}


# --- McNemar ---------------------------------------------------------------------------------


def test_mcnemar_exact_binomial_small_counts():
    # b=1, c=5: 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * (1 + 6) / 64
    t = mcnemar(1, 5)
    assert t.p == pytest.approx(14 / 64) and t.method == "exact binomial"
    assert mcnemar(0, 6).p == pytest.approx(2 / 64)
    assert mcnemar(5, 1).p == mcnemar(1, 5).p  # two-sided
    assert mcnemar(3, 3).p == 1.0  # capped at 1
    assert mcnemar(0, 0).p == 1.0
    # b + c = 25 is still exact: 2 * P(X <= 5), X ~ Bin(25, 1/2)
    assert mcnemar(5, 20).p == pytest.approx(2 * sum(math.comb(25, i) for i in range(6)) / 2**25)


def test_mcnemar_chi_squared_for_large_counts():
    t = mcnemar(10, 30)  # (|10 - 30| - 1)^2 / 40 = 9.025 on 1 df
    assert t.method.startswith("chi-squared")
    assert t.p == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))
    assert t.p == pytest.approx(0.002663, abs=1e-5)


def test_mcnemar_pairs_counts_discordant_pairs():
    base = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
    new = np.array([[1, 0], [1, 1], [1, 1], [0, 1]])
    t = mcnemar_pairs(base, new)
    assert (t.b, t.c) == (1, 3)  # right only in base: (0,1); right only in new: (1,1), (2,0), (2,1)
    assert t.p == pytest.approx(2 * (1 + 4) / 16)


# --- the sign-flip permutation test and Holm ------------------------------------------------


def test_sign_flip_exact_on_hand_computed_cases():
    # two prompts differ, both by +0.5: of the 4 sign patterns, ++ and -- reach |sum| = 1: p = 2/4
    t = sign_flip(np.array([0.0, 0.5, 0.5, 0.0]))
    assert (t.nonzero, t.p, t.mean_diff) == (2, 0.5, 0.25) and t.method.startswith("exact")
    # six prompts all +1: only ++++++ and ------ reach 6: p = 2/64
    assert sign_flip(np.ones(6)).p == pytest.approx(2 / 64)
    # +1 and -1 cancel: every pattern reaches |sum| >= 0
    assert sign_flip(np.array([1.0, -1.0])).p == 1.0
    # 1, 1, -0.5: |sum| = 1.5; patterns: sums +-(1+1-.5)=1.5, +-(1-1-.5)=.5, +-(1-1+.5)=.5, +-(1+1+.5)=2.5 -> 4 of 8 reach 1.5
    assert sign_flip(np.array([1.0, 1.0, -0.5])).p == pytest.approx(4 / 8)
    assert sign_flip(np.zeros(5)).p == 1.0  # no prompt differs


def test_sign_flip_breaks_ties_of_the_sum_by_the_count_of_signs():
    # 1, .5, .5, -1: |sum| = 1 with |sum of signs| = |1 + 1 + 1 - 1| = 2. Of the 16 patterns, 6 have |sum| > 1
    # (2 and 3); 6 have |sum| = 1: 4 with the two 1s cancelling (|signs| 2) and 2 with the .5s against them (|signs| 0)
    d = np.array([1.0, 0.5, 0.5, -1.0])
    assert sign_flip(d, tie_break=False).p == pytest.approx(12 / 16)  # every tie counts
    assert sign_flip(d).p == pytest.approx(10 / 16)  # only the ties at least as one-sided


def test_sign_flip_p_matches_the_exact_null_distribution():
    """Against benchmarks/paired_null.py's convolution over integer differences (an independent computation
    of the same exact p-values): every sign pattern enumerated, both forms."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("paired_null", Path(__file__).resolve().parents[1] / "benchmarks" / "paired_null.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(1, 13))
        j = rng.integers(-4, 5, size=k)
        j = j[j != 0]
        if j.size == 0:
            continue
        _, ps = bench.p_tables(np.abs(j))
        s, c = abs(int(j.sum())), abs(int(np.sign(j).sum()))
        for tie_break, form in ((False, "plain"), (True, "tie-break")):
            assert sign_flip(j / 4.0, tie_break=tie_break).p == pytest.approx(ps[form][s, c]), (j, form)
        assert ps["tie-break"][s, c] <= ps["plain"][s, c] and ps["mid-p"][s, c] <= ps["plain"][s, c]


def test_sign_flip_monte_carlo_beyond_the_exact_limit():
    # 20 prompts all +1: the exact p is 2 / 2^20; no random pattern of 1000 reaches it: p = 1 / 1001
    t = sign_flip(np.ones(20), n_perm=1000, seed=5)
    assert t.p == pytest.approx(1 / 1001) and t.method == "Monte Carlo (1000 sign patterns)"
    # rows at once: the same patterns give each row its p
    p, exact = sign_flip_p(np.array([[1.0, 0.5, 0.5], [0.0, 0.0, 0.0]]))
    assert exact and p.tolist() == [2 / 8, 1.0]


def test_holm_adjustment():
    # sorted .01, .03, .04 -> 3 x .01 = .03, 2 x .03 = .06, max(.06, 1 x .04) = .06; original order kept
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # 2 x .5 capped at 1; then max(1, 1 x .9): adjusted p never decrease
    assert holm([0.2]) == [0.2]


# --- the paired bootstrap --------------------------------------------------------------------


def test_paired_bootstrap_interval_on_a_hand_computed_case():
    # per-prompt differences 0, .5, .5, 0: a resample's mean is 0.5 k / 4 with k ~ Bin(4, 1/2),
    # so P(mean = 0) = P(mean = 0.5) = 1/16 > 2.5%: the 95% interval is exactly [0, 0.5]
    base = np.array([1.0, 0.5, 0.0, 0.5])
    new = np.array([1.0, 1.0, 0.5, 0.5])
    diffs = paired_mean_diff(base, new, resample(4, 4000, seed=3))
    assert set(np.round(diffs, 9)) <= {0.0, 0.125, 0.25, 0.375, 0.5}
    assert interval(diffs) == [0.0, 0.5]
    # resampling jointly: a constant shift has no spread at all; identical runs differ by 0
    assert interval(paired_mean_diff(base, base + 0.25, resample(4, 500, 0))) == [0.25, 0.25]
    assert interval(paired_mean_diff(base, base, resample(4, 500, 0))) == [0.0, 0.0]


def test_paired_relative_gap_difference():
    # base: J(f|x) .5, .5 -> J(f[w]|x) 1, .5: relative 1, 0 -> 0.5; new: .5 -> 1 on both: 1
    idx = np.array([[0, 1], [0, 0], [1, 1]])
    d = paired_relative_diff(np.array([0.5, 0.5]), np.array([1.0, 0.5]), np.array([0.5, 0.5]), np.array([1.0, 1.0]), idx)
    assert d.tolist() == [0.5, 0.0, 1.0]
    # a resample where every prompt has J(f|x) = 1 gives no relative gap
    d = paired_relative_diff(np.array([1.0, 0.5]), np.array([1.0, 1.0]), np.array([1.0, 0.5]), np.array([1.0, 0.5]), np.array([[0, 0]]))
    assert math.isnan(d[0])


# --- comparing run directories ---------------------------------------------------------------


@pytest.fixture
def pair(tmp_path):
    base = write_run(tmp_path / "base" / "arith", G_BASE, U, model={"id": "m"})
    new = write_run(tmp_path / "new" / "arith", G_NEW, U, model={"id": "m-r1", "base": "m", "round": 1})
    return base, new


def test_compare_on_a_hand_computed_pair(pair):
    report = compare_runs(load_run(pair[0]), load_run(pair[1]), n_boot=2000, seed=1)
    g = report.generation
    assert (g.base, g.new, g.delta) == (0.5, 0.75, 0.25)
    # per prompt J(f|x) differences 0, +.5, +.5, 0: two nonzero, exact sign-flip p = 2/4
    assert g.test.name == "sign-flip permutation" and g.test.unit == "per prompt, differences of J(f|x)"
    assert g.test.nonzero == 2 and g.test.p == pytest.approx(0.5) and g.significant is False
    assert g.ci == [0.0, 0.5]
    # oracle (u = g, keep the top half): base J(f[w]|x) = 1, 1, 0, 1; new = 1, 1, 1, 1
    # gap per prompt: base 0, .5, 0, .5; new 0, 0, .5, .5 -> delta 0
    # relative gap: base (1 + 0 + 1) / 3; new (1 + 1) / 2
    o = report.verifiers["oracle"]
    assert (o.J_filtered.base, o.J_filtered.new) == (0.75, 1.0)
    assert o.gap.delta == pytest.approx(0.0)
    # per-prompt gap differences 0, -.5, +.5, 0: |sum| = 0, every pattern reaches it
    assert o.gap.test.p == 1.0 and o.gap.significant is False
    # J(f[w(u)]|x) differences 0, 0, +1, 0: one nonzero, p = 2/2
    assert o.J_filtered.test.nonzero == 1 and o.J_filtered.test.p == 1.0
    assert o.relative_gap.base == pytest.approx(2 / 3) and o.relative_gap.new == pytest.approx(1.0)
    assert o.relative_gap.delta == pytest.approx(1 / 3) and o.relative_gap.n_excluded == [1, 2]
    # mc rescored from verdicts.jsonl reproduces what results.json records
    base_results, _ = load_results(pair[0] / "results.json")
    assert report.verifiers["mc"].J_filtered.base == pytest.approx(base_results.verifiers["mc"].J_filtered.value)
    assert report.notes == []
    text = render(report)
    assert "J(f): +0.250 [+0.000, +0.500], NOT significant (sign-flip p = 0.5 >= 0.05)" in text


def test_a_significant_difference_is_called_so(tmp_path):
    docs = [f"add1-{i}" for i in range(6)]
    base = write_run(tmp_path / "b" / "arith", {d: [0, 0] for d in docs}, None)
    new = write_run(tmp_path / "n" / "arith", {d: [1, 1] for d in docs}, None)
    report = compare_runs(load_run(base), load_run(new), n_boot=300)
    g = report.generation
    # six prompts each +1: exact sign-flip p = 2 / 64
    assert g.test.nonzero == 6 and g.test.p == pytest.approx(2 / 64)
    assert g.significant and g.ci == [1.0, 1.0]
    assert "significant (sign-flip p = 0.0312 < 0.05): NEW is better." in render(report)


def test_one_sample_per_prompt_uses_mcnemar(tmp_path):
    docs = [f"add1-{i}" for i in range(8)]
    base = write_run(tmp_path / "b" / "arith", {d: [0] for d in docs}, None)
    new = write_run(tmp_path / "n" / "arith", {d: [1 if i < 7 else 0] for i, d in enumerate(docs)}, None)
    report = compare_runs(load_run(base), load_run(new), n_boot=100)
    t = report.generation.test
    # 7 prompts right only in NEW: b = 0, c = 7, exact p = 2 / 2^7
    assert t.name == "McNemar" and (t.b, t.c) == (0, 7) and t.p == pytest.approx(2 / 128)
    assert t.unit == "per prompt (n = 1), J(f|x)"


def test_several_checkpoints_against_one_base_are_holm_adjusted(tmp_path):
    docs = [f"add1-{i}" for i in range(6)]
    base = write_run(tmp_path / "b" / "arith", {d: [0, 0] for d in docs}, None)
    better = write_run(tmp_path / "n1" / "arith", {d: [1, 1] for d in docs}, None, model={"id": "m-r1", "base": "m", "round": 1})
    same = write_run(tmp_path / "n2" / "arith", {d: [0, 0] for d in docs}, None, model={"id": "m-r2", "base": "m", "round": 2})
    reports = compare_many(load_run(base), [load_run(better), load_run(same)], n_boot=100)
    g1, g2 = reports[0].generation, reports[1].generation
    # raw p: 2/64 and 1 -> Holm: 2 x 2/64 = 1/16 (> 0.05: no longer significant), max(1/16, 1) = 1
    assert g1.test.p == pytest.approx(2 / 64) and g1.test.p_adjusted == pytest.approx(1 / 16)
    assert g1.significant is False and g2.test.p_adjusted == 1.0
    text = render(reports[0])
    assert "Holm-adjusted over the 2 checkpoints" in text and "Holm-adjusted p=0.0625" in text
    # the JSON (--json): the adjustment is written beside the raw p only where there was one
    doc = reports[0].to_json()
    assert list(doc) == ["base", "new", "task", "split", "n_prompts", "filter", "n_boot", "n_perm", "seed", "alpha", "comparisons", "generation", "verifiers", "skipped", "notes"]
    assert doc["comparisons"] == 2 and doc["generation"]["test"]["adjustment"] == "Holm over 2 comparisons"
    assert doc["generation"]["test"]["p_adjusted"] == pytest.approx(1 / 16) and doc["generation"]["significant"] is False
    alone = compare_runs(load_run(base), load_run(better), n_boot=100).to_json()
    assert "p_adjusted" not in alone["generation"]["test"] and alone["generation"]["significant"] is True


def test_identical_runs_are_not_significantly_different(pair, tmp_path):
    copy = write_run(tmp_path / "copy" / "arith", G_BASE, U, model={"id": "m2"})
    report = compare_runs(load_run(pair[0]), load_run(copy), n_boot=200)
    for m in ("mc", "oracle"):
        for key in ("J_filtered", "gap", "relative_gap"):
            b = getattr(report.verifiers[m], key)
            assert b.delta == 0 and b.significant is False
    assert report.verifiers["mc"].gap.ci == [0.0, 0.0]
    assert "NOT significant (the 95% interval includes 0)" in render(report)


def test_different_n_pairs_prompts_by_majority(tmp_path):
    base = write_run(tmp_path / "b" / "arith", G_BASE, U)
    g4 = {"add1-0": [1, 1, 1, 1], "add1-1": [1, 1, 1, 0], "mul1-0": [0, 0, 0, 0], "mul1-1": [1, 1, 1, 0]}
    new = write_run(tmp_path / "n" / "arith", g4, {k: [0.5, 0.4, 0.3, 0.2] for k in g4})
    report = compare_runs(load_run(base), load_run(new), n_boot=100)
    t = report.generation.test
    # J(f|x): base 1, .5, 0, .5; new 1, .75, 0, .75: differences 0, .25, 0, .25 -> p = 2/4
    assert t.name == "sign-flip permutation" and t.nonzero == 2 and t.p == pytest.approx(0.5)


def test_filter_override_rescoring(pair):
    report = compare_runs(load_run(pair[0]), load_run(pair[1]), filter_spec="quantile:0", n_boot=50)
    # quantile:0 keeps every sample: no gap at all
    assert report.verifiers["mc"].gap.base == 0 and report.verifiers["mc"].gap.new == 0
    assert (report.filter.base, report.filter.new) == ("quantile:0", "quantile:0")


# --- refusals --------------------------------------------------------------------------------


def test_refuses_different_prompts(tmp_path, pair):
    other = dict(G_BASE)
    other["mul1-2"] = other.pop("mul1-1")
    new = write_run(tmp_path / "other" / "arith", other, {**U, "mul1-2": U["mul1-1"]}, task_options={"levels": "add1+mul1", "per_level": 2, "seed": 0})
    with pytest.raises(GapbenchError) as err:
        compare_runs(load_run(pair[0]), load_run(new))
    msg = str(err.value)
    assert "refusing to compare" in msg and "1 doc_ids only in BASE (mul1-1)" in msg and "1 only in NEW (mul1-2)" in msg
    assert "--force" in msg
    forced = compare_runs(load_run(pair[0]), load_run(new), force=True, n_boot=50)
    assert forced.n_prompts == 3 and "compared despite differences" in forced.notes[0]


def test_refuses_different_task_options_task_and_sampling(tmp_path, pair):
    opts = write_run(tmp_path / "o" / "arith", G_BASE, U, task_options={"levels": "add1+mul1", "per_level": 3, "seed": 0})
    with pytest.raises(GapbenchError, match=r"task\.options\.per_level: 2 -> 3"):
        compare_runs(load_run(pair[0]), load_run(opts))
    other_task = write_run(tmp_path / "t" / "nq", G_BASE, U, task_name="nq_open")
    with pytest.raises(GapbenchError, match=r'task\.name: "arith" -> "nq_open"'):
        compare_runs(load_run(pair[0]), load_run(other_task))
    hot = write_run(tmp_path / "s" / "arith", G_BASE, U, sampling={"temperature": 1.0, "top_p": 0.9, "max_gen_toks": 16})
    with pytest.raises(GapbenchError, match=r"sampling\.temperature: 0\.7 -> 1\.0"):
        compare_runs(load_run(pair[0]), load_run(hot))
    thr = write_run(tmp_path / "f" / "arith", G_BASE, U, filter_spec="threshold:0.5")
    with pytest.raises(GapbenchError, match="filter: quantile:0.5 -> threshold:0.5"):
        compare_runs(load_run(pair[0]), load_run(thr))
    assert compare_runs(load_run(pair[0]), load_run(thr), filter_spec="threshold:0.5", n_boot=20).filter.new == "threshold:0.5"


def test_results_json_alone_is_not_enough(tmp_path, pair):
    lone = tmp_path / "lone"
    lone.mkdir()
    results = json.loads((pair[0] / "results.json").read_text())
    (lone / "results.json").write_text(json.dumps({**results, "run": {"dir": str(tmp_path / "gone"), "config_hash": "x"}}))
    with pytest.raises(GapbenchError, match="needs the run directory"):
        load_run(lone / "results.json")
    # a copied results.json whose recorded run directory still exists finds its per-sample files there
    shutil.copyfile(pair[0] / "results.json", tmp_path / "copied.json")
    assert load_run(tmp_path / "copied.json").dir.resolve() == pair[0].resolve()  # recorded relative to where it ran


def test_stale_grades_are_refused(pair):
    r = json.loads((pair[0] / "results.json").read_text())
    r["generation"]["J"]["value"] = 0.9
    (pair[0] / "results.json").write_text(json.dumps(r))
    with pytest.raises(GapbenchError, match="different scorings"):
        load_run(pair[0])


def test_cli_compare(pair, tmp_path, capsys):
    assert main(["leaderboard", "compare", str(pair[0].parent), str(pair[1].parent), "--n-boot", "100", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "sign-flip per prompt, differences of J(f|x) (2 nonzero, exact (every sign pattern)): p=0.5" in out
    assert "NOT significant" in out
    assert json.loads((tmp_path / "c.json").read_text())["generation"]["delta"] == 0.25
    other = write_run(tmp_path / "t" / "nq", G_BASE, U, task_name="nq_open")
    assert main(["leaderboard", "compare", str(pair[0]), str(other)]) == 2
    assert "refusing to compare" in capsys.readouterr().err
