"""Comparing a checkpoint with its baseline: McNemar and the paired bootstrap on hand-computed cases,
the comparison of synthetic run directories, and the refusals."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from harness.cli import main
from harness.errors import GapbenchError
from leaderboards.compare import (
    compare_runs,
    interval,
    mcnemar,
    mcnemar_pairs,
    paired_mean_diff,
    paired_relative_diff,
    render,
    resample,
)
from leaderboards.rundata import load_run
from boards_support import write_run

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
    g = report["generation"]
    assert (g["base"], g["new"], g["delta"]) == (0.5, 0.75, 0.25)
    # per sample: add1-1 #1 and mul1-0 #1 go 0 -> 1, nothing goes 1 -> 0: b = 0, c = 2, p = 2 / 4 = 0.5
    assert g["test"]["unit"].startswith("per sample") and (g["test"]["b"], g["test"]["c"]) == (0, 2)
    assert g["test"]["p"] == pytest.approx(0.5) and g["significant"] is False
    assert g["ci"] == [0.0, 0.5]
    # oracle (u = g, keep the top half): base J(f[w]|x) = 1, 1, 0, 1; new = 1, 1, 1, 1
    # gap per prompt: base 0, .5, 0, .5; new 0, 0, .5, .5 -> delta 0
    # relative gap: base (1 + 0 + 1) / 3; new (1 + 1) / 2
    o = report["verifiers"]["oracle"]
    assert (o["J_filtered"]["base"], o["J_filtered"]["new"]) == (0.75, 1.0)
    assert o["gap"]["delta"] == pytest.approx(0.0)
    assert o["relative_gap"]["base"] == pytest.approx(2 / 3) and o["relative_gap"]["new"] == pytest.approx(1.0)
    assert o["relative_gap"]["delta"] == pytest.approx(1 / 3) and o["relative_gap"]["n_excluded"] == [1, 2]
    # mc rescored from verdicts.jsonl reproduces what results.json records
    base_results = json.loads((pair[0] / "results.json").read_text())
    assert report["verifiers"]["mc"]["J_filtered"]["base"] == pytest.approx(base_results["verifiers"]["mc"]["J_filtered"]["value"])
    assert report["notes"] == []
    text = render(report)
    assert "J(f): +0.250 [+0.000, +0.500], NOT significant (McNemar p = 0.5 >= 0.05)" in text


def test_a_significant_difference_is_called_so(tmp_path):
    docs = [f"add1-{i}" for i in range(6)]
    base = write_run(tmp_path / "b" / "arith", {d: [0, 0] for d in docs}, None)
    new = write_run(tmp_path / "n" / "arith", {d: [1, 1] for d in docs}, None)
    report = compare_runs(load_run(base), load_run(new), n_boot=300)
    g = report["generation"]
    assert (g["test"]["b"], g["test"]["c"]) == (0, 12) and g["test"]["p"] == pytest.approx(2 / 4096)
    assert g["significant"] and g["ci"] == [1.0, 1.0]
    assert "significant (McNemar p = 0.000488 < 0.05): NEW is better." in render(report)


def test_identical_runs_are_not_significantly_different(pair, tmp_path):
    copy = write_run(tmp_path / "copy" / "arith", G_BASE, U, model={"id": "m2"})
    report = compare_runs(load_run(pair[0]), load_run(copy), n_boot=200)
    for m in ("mc", "oracle"):
        for key in ("J_filtered", "gap", "relative_gap"):
            b = report["verifiers"][m][key]
            assert b["delta"] == 0 and b["significant"] is False
    assert report["verifiers"]["mc"]["gap"]["ci"] == [0.0, 0.0]
    assert "NOT significant (the 95% interval includes 0)" in render(report)


def test_different_n_pairs_prompts_by_majority(tmp_path):
    base = write_run(tmp_path / "b" / "arith", G_BASE, U)
    g4 = {"add1-0": [1, 1, 1, 1], "add1-1": [1, 1, 1, 0], "mul1-0": [0, 0, 0, 0], "mul1-1": [1, 1, 1, 0]}
    new = write_run(tmp_path / "n" / "arith", g4, {k: [0.5, 0.4, 0.3, 0.2] for k in g4})
    report = compare_runs(load_run(base), load_run(new), n_boot=100)
    t = report["generation"]["test"]
    # majority correct (J(f|x) > 1/2): base 1, 0, 0, 0; new 1, 1, 0, 1
    assert t["unit"].startswith("per prompt, majority correct") and (t["b"], t["c"]) == (0, 2)


def test_filter_override_rescoring(pair):
    report = compare_runs(load_run(pair[0]), load_run(pair[1]), filter_spec="quantile:0", n_boot=50)
    # quantile:0 keeps every sample: no gap at all
    assert report["verifiers"]["mc"]["gap"]["base"] == 0 and report["verifiers"]["mc"]["gap"]["new"] == 0
    assert report["filter"] == {"base": "quantile:0", "new": "quantile:0"}


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
    assert forced["n_prompts"] == 3 and "compared despite differences" in forced["notes"][0]


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
    assert compare_runs(load_run(pair[0]), load_run(thr), filter_spec="threshold:0.5", n_boot=20)["filter"]["new"] == "threshold:0.5"


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
    assert "McNemar per sample, paired by (doc_id, sample): b=0, c=2, exact binomial p=0.5" in out
    assert "NOT significant" in out
    assert json.loads((tmp_path / "c.json").read_text())["generation"]["delta"] == 0.25
    other = write_run(tmp_path / "t" / "nq", G_BASE, U, task_name="nq_open")
    assert main(["leaderboard", "compare", str(pair[0]), str(other)]) == 2
    assert "refusing to compare" in capsys.readouterr().err
