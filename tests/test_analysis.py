"""The verifier diagnostics of harness/metrics.py on hand-computed cases: within-prompt AUROC and pairwise
accuracy, the realised share of the attainable gain, calibration, Spearman's correlation, the answer
share and the majority-vote filter, the biases within prompts against pooled on simulated runs whose answer
is known, the gap against n, the position bias; and their place in a run's results."""

from __future__ import annotations

import numpy as np
import pytest

from gapbench.harness.filters import parse_filter
from gapbench.harness.metrics import (
    PromptScores,
    answer_classes,
    answer_share,
    calibration,
    diagnostics,
    gap_curve,
    modal_keep,
    pairwise_accuracy,
    pooled_spearman_draws,
    position_bias,
    realised_share,
    spearman,
    within_prompt_auroc,
    within_prompt_spearman,
)

HALF = parse_filter("quantile:0.5")


def test_within_prompt_auroc_and_pairwise_accuracy():
    G = np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=float)
    U = np.array([[0.9, 0.5, 0.5, 0.1], [0.2, 0.3, 0.4, 0.1], [0.1, 0.2, 0.3, 0.4]])
    # prompt 1, pairs (correct, incorrect): (0,1) .9>.5: 1; (0,3): 1; (2,1) .5=.5: 1/2; (2,3): 1 -> 3.5 / 4
    # prompt 2: (0,1) .2<.3: 0; (0,2): 0; (0,3) .2>.1: 1 -> 1 / 3; prompt 3 has no incorrect sample: left out
    auc, n_prompts = within_prompt_auroc(G, U)
    assert auc == pytest.approx((3.5 / 4 + 1 / 3) / 2) and n_prompts == 2
    assert pairwise_accuracy(G, U) == pytest.approx(4.5 / 7)  # pooled over the 7 pairs
    assert within_prompt_auroc(np.ones((2, 3)), np.zeros((2, 3))) == (None, 0)
    assert pairwise_accuracy(np.ones((2, 3)), np.zeros((2, 3))) is None


def test_realised_share_of_the_attainable_gain():
    G = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=float)
    K = np.array([[1, 0, 0, 1], [1, 1, 0, 0]], dtype=bool)  # J(f[w]|x) = .5, .5 against J(f|x) = .5, .25
    K_oracle = np.array([HALF.keep(row) for row in G])  # [1,0,1,0] -> 1; [1,0,0,0]: median 0 keeps all -> .25
    # gap(u) = (0 + .25) / 2 = .125; gap(oracle) = (.5 + 0) / 2 = .25
    assert realised_share(G, K, K_oracle) == pytest.approx(0.5)
    assert realised_share(G, K_oracle, K_oracle) == pytest.approx(1.0)
    assert realised_share(np.ones((1, 2)), np.ones((1, 2), bool), np.ones((1, 2), bool)) is None  # the oracle gains nothing


def test_calibration_ece_brier_and_bins():
    G = np.array([[0, 1], [1, 0]], dtype=float)
    U = np.array([[0.05, 1.0], [0.55, 0.55]])
    c = calibration(G, U)
    # bins: [0, .1) u .05 g 0 -> .05; [.5, .6) u .55 x2 g .5 -> .05 x 2; [.9, 1] (1.0 included) u 1 g 1 -> 0
    assert c.ece.value == pytest.approx((0.05 + 0.1 + 0.0) / 4) and c.ece.ci is None
    assert c.brier.value == pytest.approx((0.0025 + 0.0 + 0.2025 + 0.3025) / 4)
    assert [(b.lo, b.count, b.mean_g) for b in c.bins] == [(0.0, 1, 0.0), (0.5, 2, 0.5), (0.9, 1, 1.0)]


def test_spearman_and_answer_share():
    # ranks 1 2 3 4 against 1 3 2 4: rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant: undefined
    # ties take their mean rank: x ranks 1.5 1.5 3, y ranks 1 2 3 -> Pearson of those
    assert spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1])
    assert answer_share([["3", "3", "4", None]]).tolist() == [[0.5, 0.5, 0.25, 0.0]]


def _prompt(doc_id, g, u, answers, rule=HALF):
    return PromptScores(doc_id, g, u, rule.keep(u), answers)


def test_diagnostics_majority_echo_and_length_bias():
    prompts = [
        _prompt("a", [1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], ["3", "3", "4", "5"]),
        _prompt("b", [0, 1, 0, 0], [0.6, 0.7, 0.3, 0.4], ["7", "6", "7", "8"]),
    ]
    lengths = [[10, 20, 30, 40], [5, 6, 7, 8]]
    d = diagnostics(prompts, [HALF.keep(p.g) for p in prompts], HALF, lengths=lengths, n_boot=200, seed=1)
    # u ranks every pair right inside both prompts (prompt b: .7 above .6, .3, .4)
    assert d.within_prompt.auroc.value == 1.0 and d.within_prompt.n_prompts == 2
    # majority voting as a filter: a's modal answer "3" (samples 0, 1) -> 1 (gap +.5); b's "7" (samples 0, 2) -> 0 (gap -.25)
    echo = d.majority_echo
    assert echo.modal_gap.value == pytest.approx((0.5 - 0.25) / 2)
    assert "majority_gap" not in d.to_json()["majority_echo"]  # schema 3 writes the modal gap instead
    # u keeps a: 0,1 -> 1 (gap +.5); b: 0,1 -> .5 (gap +.25)
    assert echo.gap.value == pytest.approx(0.375)
    # the oracle under the same filter: a keeps 0,1 (+.5); b's g = 0 1 0 0 has median 0, so quantile:0.5 keeps all (0):
    # gap(oracle) = .25 and the share is .375 / .25 = 1.5 (a quantile filter can make u beat the binary oracle)
    assert d.realised_share.value == pytest.approx(1.5)
    # length bias at g = 1 within prompts: only a has two correct samples, u (.9, .8) against lengths (10, 20): -1
    g1 = d.length_bias_at(1)
    assert g1.within_prompt.value == pytest.approx(-1.0) and g1.n_prompts == 1
    # pooled over the 3 correct samples: u (.9, .8, .7) against lengths (10, 20, 6): ranks 3 2 1 vs 2 3 1 -> rho 0.5
    assert g1.pooled.value == pytest.approx(0.5) and g1.n_samples == 3
    # at g = 0: a (.2, .1) against (30, 40): -1; b (.6, .3, .4) against (5, 7, 8): ranks 3 1 2 vs 1 2 3 -> -0.5
    g0 = d.length_bias_at(0)
    assert g0.within_prompt.value == pytest.approx((-1.0 - 0.5) / 2) and g0.n_prompts == 2
    # u against the answer share inside each prompt: a's shares .5 .5 .25 .25 follow u's ranks 4 3 2 1
    # (4/sqrt(20)); b's .5 .25 .5 .25 against u's ranks 3 4 1 2: (.5 - 1.5 - 1.5 + .5)/sqrt(5 x 4) = -2/sqrt(20)
    corr = echo.correlation
    assert corr.within_prompt.value == pytest.approx((4 - 2) / np.sqrt(20) / 2) and corr.n_prompts == 2
    assert within_prompt_spearman(np.array([[0.9, 0.8, 0.2, 0.1]]), np.array([[0.5, 0.5, 0.25, 0.25]]), np.ones((1, 4), bool))[0] == pytest.approx(
        4 / np.sqrt(20)
    )
    # pooled over all 8 samples: Spearman of the two columns
    u = [0.9, 0.8, 0.2, 0.1, 0.6, 0.7, 0.3, 0.4]
    share = [0.5, 0.5, 0.25, 0.25, 0.5, 0.25, 0.5, 0.25]
    assert corr.pooled.value == pytest.approx(spearman(u, share)) and corr.n_samples == 8
    for block in (d.within_prompt.pairwise_accuracy, d.calibration.ece, echo.gap, corr.pooled, g0.within_prompt):
        lo, hi = block.ci
        assert lo <= block.value <= hi
    # the blocks as results.json writes them: schema 3's fields only, a block not computed left out
    assert list(d.to_json()["length_bias"]["g=0"]) == ["within_prompt", "n_prompts", "pooled", "n_samples"]
    no_lengths = diagnostics(prompts, [HALF.keep(p.g) for p in prompts], HALF, n_boot=0)
    assert no_lengths.length_bias is None and "length_bias" not in no_lengths.to_json() and no_lengths.calibration.ece.ci is None


def test_modal_keep_is_majority_voting():
    keep = modal_keep([["3", "3", "4", None], ["1", "2", None, None], [None, None, None, None], ["5", "5", "6", "6"]])
    assert keep.tolist() == [
        [True, True, False, False],  # the most frequent answer
        [True, True, False, False],  # a tie of single answers keeps both; None never
        [False, False, False, False],  # no answer: none kept (the filter falls back to all samples)
        [True, True, True, True],  # two answers tied for the most
    ]
    # 8 samples, answers 1 x3, 2 x2, 3, 4, 5: quantile:0.5 on the answer share (what schema 2 called the
    # majority filter) keeps shares >= the median .25, answers 1 and 2; majority voting keeps answer 1 only
    row = ["1", "1", "1", "2", "2", "3", "4", "5"]
    assert modal_keep([row]).tolist() == [[True] * 3 + [False] * 5]
    assert HALF.keep(answer_share([row])[0]) == [True] * 5 + [False] * 3


def test_pooled_interval_reranks_every_resample():
    rng = np.random.default_rng(7)
    X = np.round(rng.random((6, 4)), 1)  # ties inside and across prompts
    Y = rng.integers(0, 5, size=(6, 4)).astype(float)
    mask = rng.random((6, 4)) < 0.8
    idx = rng.integers(0, 6, size=(40, 6))
    draws = pooled_spearman_draws(X, Y, mask, idx)
    for b, rows in enumerate(idx):
        # the resample written out: each drawn prompt's masked samples, again for every time it is drawn
        x = np.concatenate([X[i][mask[i]] for i in rows])
        y = np.concatenate([Y[i][mask[i]] for i in rows])
        want = spearman(x, y)
        assert (np.isnan(draws[b]) if want is None else draws[b] == pytest.approx(want)), b


def _load_benchmark(name: str):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_biases_within_prompts_find_the_truth_where_pooled_ones_do_not():
    """Simulated runs (benchmarks/rank_bias.py) where u, the length and the answer share all follow the prompt's
    difficulty: when u ignores the sample inside every prompt, the within-prompt biases are near 0 while the
    pooled ones are far from it; when u falls with the sample's own length (or rises with its answer share),
    the within-prompt figure is near the known truth."""
    sim = _load_benchmark("rank_bias")
    table = {(r.scenario, r.bias): r for r in sim.rows(600, 8, seed=3, n_boot=100)}
    for bias in ("length g=0", "length g=1", "majority echo"):
        r = table[("prompt", bias)]
        assert r.truth == 0.0 and r.measured.n_prompts > 300
        assert abs(r.measured.within_prompt.value) < 0.05
        lo, hi = r.measured.within_prompt.ci
        assert lo < 0.0 < hi
        assert abs(r.measured.pooled.value) > 0.25  # confounded by the prompt's difficulty
    for bias in ("length g=0", "length g=1"):
        r = table[("length", bias)]
        assert -0.65 < r.truth < -0.5
        assert abs(r.measured.within_prompt.value - r.truth) < 0.05
        assert abs(r.measured.pooled.value - r.truth) > 0.2
    echo = table[("share", "majority echo")]
    assert echo.truth == 1.0 and echo.measured.within_prompt.value == pytest.approx(1.0)
    assert echo.measured.pooled.value < 0.7
    # correct samples all give the gold answer: u is constant among them, so no prompt qualifies
    assert table[("share", "length g=1")].measured.n_prompts == 0 and table[("share", "length g=1")].measured.within_prompt.value is None
    # the expected Spearman's correlation of the truth, against the textbook's limits
    assert sim.expected_spearman(-1 / np.sqrt(2), 2) == pytest.approx(2 / np.pi * np.arcsin(-1 / np.sqrt(2)))  # Kendall's tau
    assert sim.expected_spearman(0.5, 10**6) == pytest.approx(6 / np.pi * np.arcsin(0.25), abs=1e-5)


def test_gap_curve_subsamples_without_replacement():
    G = np.array([[1.0, 0.0]])
    U = np.array([[0.9, 0.1]])
    classes = answer_classes([PromptScores("a", [1, 0], [0.9, 0.1], [True, False], ["a", "b"])])
    one, two = gap_curve(G, U, HALF, classes)
    # k = 1: each single sample keeps itself: J(f[w]) = J = .5, best-of-1 = .5, maj@1 = .5
    assert (one.n, one.J_filtered, one.gap, one.best_of_n, one.maj_at_k, one.subsets) == (1, 0.5, 0.0, 0.5, 0.5, 2)
    # k = 2: the filter keeps sample 0: J(f[w]) = 1, gap .5; best-of-2 = 1; pass@2 = 1; maj@2: a tie of two single answers -> 1/2
    assert (two.J_filtered, two.gap, two.best_of_n, two.pass_at_k, two.maj_at_k) == (1.0, 0.5, 1.0, 1.0, 0.5)


def test_gap_curve_seeded_subsets_estimate_the_exact_mean():
    rng = np.random.default_rng(0)
    G = (rng.random((30, 12)) < 0.4).astype(float)
    U = np.clip(0.5 * G + 0.6 * rng.random((30, 12)), 0, 1)
    prompts = [PromptScores(str(i), list(G[i]), list(U[i]), [True] * 12, [None] * 12) for i in range(30)]
    point = {p.n: p for p in gap_curve(G, U, HALF, answer_classes(prompts), seed=3)}
    assert point[4].subsets == 200  # C(12, 4) = 495 > 200: seeded subsets
    assert point[4] == {p.n: p for p in gap_curve(G, U, HALF, answer_classes(prompts), seed=3)}[4]  # reproducible
    # the exact mean over all 495 subsets, by enumeration
    from itertools import combinations

    exact = []
    for rows in combinations(range(12), 4):
        Gs, Us = G[:, rows], U[:, rows]
        keep = np.array([HALF.keep(u) for u in Us])
        exact.append(((Gs * keep).sum(1) / keep.sum(1)).mean())
    assert point[4].J_filtered == pytest.approx(float(np.mean(exact)), abs=0.02)
    assert point[12].subsets == 1 and point[12].pass_at_k == pytest.approx(float((G.sum(1) > 0).mean()))


def test_position_bias_share_of_flipped_matches():
    # 4 samples: matches (0,1), (2,3), then the winners 1 and 2; only (0,1) flips with the order
    flips = [[1, 1, 0, 0], [0, 0, 0, 0]]
    played = [[1, 2, 2, 1], [1, 1, 0, 0]]
    b = position_bias(flips, played, n_boot=100)
    assert b.value == pytest.approx(2 / 8) and b.matches == 4 and b.ci is not None
    assert position_bias([[0, 0]], [[0, 0]]) is None


# --- in a run's results and `gapbench analyze` ------------------------------------------------


def test_analyze_an_old_run_and_rescore_it_to_the_current_schema(tmp_path, capsys):
    import json

    from boards_support import write_run

    from gapbench.harness.cli import main
    from gapbench.harness.results import load

    g = {"add1-0": [1, 0, 1, 0], "add1-1": [1, 0, 0, 0], "add2-0": [1, 1, 1, 1]}
    u = {"add1-0": [0.9, 0.5, 0.5, 0.1], "add1-1": [0.2, 0.3, 0.4, 0.1], "add2-0": [0.1, 0.2, 0.3, 0.4]}
    run = write_run(tmp_path / "arith", g, u)  # a schema-1 results.json, no token counts in samples.jsonl
    before = json.loads((run / "results.json").read_text())
    assert main(["analyze", str(run), "--n-boot", "100", "--rescore"]) == 0
    out = capsys.readouterr().out
    assert "AUROC in prompt" in out and "share of oracle gap" in out and "no gap-vs-tokens.png" in out
    assert sorted(p.name for p in (run / "analysis").iterdir()) == ["calibration-mc.png", "calibration-oracle.png", "gap-vs-n.png"]
    results, _ = load(run / "results.json")
    after = json.loads((run / "results.json").read_text())
    assert after["schema_version"] == 3 and after["generation"] == before["generation"]
    mc = results.verifiers["mc"]
    # the hand-computed case of test_within_prompt_auroc_and_pairwise_accuracy (the mc replies hold u to 1e-9)
    assert mc.within_prompt.auroc.value == pytest.approx((3.5 / 4 + 1 / 3) / 2) and mc.within_prompt.n_prompts == 2
    assert mc.within_prompt.pairwise_accuracy.value == pytest.approx(4.5 / 7)
    assert results.verifiers["oracle"].within_prompt.auroc.value == 1.0
    assert mc.length_bias is None and mc.position_bias is None  # no token counts; not a pairwise verifier
    assert [p.n for p in mc.by_n] == [1, 2, 4] and mc.by_n[-1].J_filtered == pytest.approx(mc.J_filtered.value)
    assert mc.calibration.ece.value == pytest.approx(calibration(np.array(list(g.values()), float), np.array(list(u.values()))).ece.value, abs=1e-6)


def test_a_run_writes_schema_2_with_position_bias_and_the_token_axis(tmp_path, capsys):
    from gapbench.harness.cli import main
    from gapbench.harness.results import SCHEMA_VERSION
    from gapbench.harness.runner import Runner, RunOptions

    opts = RunOptions(
        model="gapbench-fake",
        model_args="arith=0.5",
        tasks=["arith"],
        task_args={"arith": {"per_level": "3", "levels": "add1+add2"}},
        verifiers=["mc", "tournament", "oracle"],
        n=4,
        n_boot=50,
        out=str(tmp_path),
    )
    r = Runner(opts, log=lambda *_: None).run()[0]
    assert r.schema_version == SCHEMA_VERSION == 3
    t = r.verifiers["tournament"]
    assert t.position_bias.matches == 6 * 3  # 4 samples: 3 matches per prompt, 6 prompts
    assert 0 <= t.position_bias.value <= 1 and r.verifiers["mc"].position_bias is None
    assert [p.n for p in t.by_n] == [1, 2, 4]
    per_sample = r.tokens.generated / (6 * 4)
    assert [p.gen_tokens for p in t.by_n] == pytest.approx([per_sample, 2 * per_sample, 4 * per_sample])
    assert set(t.length_bias) == {"g=0", "g=1"}
    assert main(["analyze", str(tmp_path / "arith"), "--n-boot", "50"]) == 0
    assert "matches)" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "arith" / "analysis").iterdir())
    assert names == ["calibration-mc.png", "calibration-oracle.png", "calibration-tournament.png", "gap-vs-n.png", "gap-vs-tokens.png"]


def test_gap_curve_over_m_verifications():
    from gapbench.harness.metrics import gap_curve_m

    G = np.array([[1.0, 0.0]])
    V = np.array([[[1.0, 0.0], [0.0, np.nan]]])  # sample 0 read 1 then 0; sample 1 read 0, then nothing readable
    one, two = gap_curve_m(G, V, HALF)
    # m' = 1: first verification u = (1, 0) keeps sample 0 -> 1; second u = (0, 0 unreadable) keeps both -> .5
    assert (one.m, one.J_filtered, one.gap, one.best_of_n, one.subsets) == (1, 0.75, 0.25, 0.75, 2)
    # m' = 2: u = (.5, 0) keeps sample 0
    assert (two.m, two.J_filtered, two.gap, two.best_of_n) == (2, 1.0, 0.5, 1.0)


def test_cot_verdicts_keep_each_verification_value():
    from gapbench.tasks import TASKS
    from gapbench.verifiers import VERIFIERS

    task = TASKS.get("arith")(per_level=1, levels="add1")
    doc = task.docs()[0]
    v = VERIFIERS.get("cot-binary")(m=2)
    replies = {"0:0": " fine.\nVerdict: Correct", "0:1": " no verdict here"}
    (verdict,) = v.score(task, doc, ["5"], replies)
    assert verdict.u == 1.0 and verdict.unparsed == 1 and verdict.values == (1, None)


def test_board_columns_from_schema_2_results_and_n_a_for_schema_1(tmp_path):
    import json

    from boards_support import write_run

    from gapbench.harness.cli import main

    g = {"add1-0": [1, 0, 1, 0], "add1-1": [1, 0, 0, 0]}
    u = {"add1-0": [0.9, 0.5, 0.5, 0.1], "add1-1": [0.2, 0.3, 0.4, 0.1]}
    write_run(tmp_path / "old" / "arith", g, u, model={"id": "old-model"})
    new = write_run(tmp_path / "new" / "arith", g, u, model={"id": "new-model"})
    assert main(["analyze", str(new), "--n-boot", "50", "--rescore"]) == 0
    assert main(["leaderboard", "build", str(tmp_path / "old"), str(tmp_path / "new"), "--out", str(tmp_path / "board")]) == 0
    rows = {(r["checkpoint"], r["verifier"]): r for r in json.loads((tmp_path / "board" / "leaderboard.json").read_text())["tables"][0]["rows"]}
    assert rows[("new-model", "mc")]["within_prompt_auroc"]["value"] == pytest.approx((3.5 / 4 + 1 / 3) / 2, abs=1e-6)
    # gap(mc): keeps 0 (and the tied 1, 2) of add1-0 -> 2/3 (+1/6); keeps 1, 2 of add1-1 -> 0 (-1/4);
    # oracle (each prompt's correct samples): +1/2 and +3/4
    assert rows[("new-model", "mc")]["realised_share"]["value"] == pytest.approx((1 / 6 - 1 / 4) / 2 / ((0.5 + 0.75) / 2), abs=1e-6)
    assert rows[("old-model", "mc")]["within_prompt_auroc"] == {"value": None, "ci": None}
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "| old-model | base | mc |" in readme and readme.count("| n/a |") >= 2


def test_analyze_rescore_keeps_the_runs_own_seed_and_n_boot(tmp_path, capsys):
    """`analyze --rescore` without --seed/--n-boot recomputes the intervals with the run's recorded seed
    and n_boot: results.json comes back unchanged (seed 0 or another n_boot would move every interval)."""
    import json

    from gapbench.harness.cli import main
    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.harness.store import RunStore

    opts = RunOptions(
        model="gapbench-fake",
        model_args="arith=0.5",
        tasks=["arith"],
        task_args={"arith": {"per_level": "4", "levels": "add1+add2"}},
        verifiers=["mc", "oracle"],
        n=4,
        n_boot=40,
        seed=77,
        out=str(tmp_path),
    )
    Runner(opts, log=lambda *_: None).run()
    run = tmp_path / "arith"
    assert RunStore(run).resampling() == (77, 40)
    before = json.loads((run / "results.json").read_text())
    assert before["verifiers"]["mc"]["calibration"]["ece"]["ci"] is not None
    assert main(["analyze", str(run), "--rescore"]) == 0
    capsys.readouterr()
    assert json.loads((run / "results.json").read_text())["verifiers"] == before["verifiers"]
    assert main(["analyze", str(run), "--rescore", "--seed", "0"]) == 0  # told otherwise: other intervals
    assert json.loads((run / "results.json").read_text())["verifiers"]["mc"]["calibration"] != before["verifiers"]["mc"]["calibration"]


def test_analyze_gives_typed_diagnostics_whose_json_is_the_computed_blocks(tmp_path):
    """analyze_run's output is typed (Diagnostics, the results codec's blocks); to_json writes exactly the
    blocks harness.scoring.verifier_diagnostics computes, key order included, absent ones left out."""
    import json

    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.harness.runs.analyze import Diagnostics, analyze_run
    from gapbench.harness.runs.rundata import load_run
    from gapbench.harness.scoring import verifier_diagnostics

    opts = RunOptions(
        model="gapbench-fake",
        model_args="arith=0.5",
        tasks=["arith"],
        task_args={"arith": {"per_level": "3", "levels": "add1+add2"}},
        verifiers=["mc", "tournament", "cot-binary"],
        n=4,
        m=2,
        n_boot=30,
        out=str(tmp_path),
    )
    Runner(opts, log=lambda *_: None).run()
    data = load_run(tmp_path / "arith")
    diagnostics = analyze_run(data)
    assert list(diagnostics) == ["cot-binary", "mc", "tournament"] and all(isinstance(d, Diagnostics) for d in diagnostics.values())
    assert diagnostics["tournament"].position_bias.matches == 6 * 3 and diagnostics["mc"].position_bias is None
    assert diagnostics["cot-binary"].by_m is not None and [q.m for q in diagnostics["cot-binary"].by_m] == [1, 2] and diagnostics["mc"].by_m is None
    assert diagnostics["mc"].length_bias_at(0) is diagnostics["mc"].length_bias["g=0"] and diagnostics["mc"].length_bias_at(1) is not None
    rule = parse_filter(data.filter)
    seed, n_boot = data.resampling()
    for m, d in diagnostics.items():
        keep = data.keep(m, rule, data.doc_ids)
        prompts = [PromptScores(x, [int(v) for v in data.G[i]], data.u[m][x], keep[i].tolist(), data.answers[x]) for i, x in enumerate(data.doc_ids)]
        raw = verifier_diagnostics(prompts, data.verdicts[m], rule, data.lengths, n_boot=n_boot, seed=seed)
        assert json.dumps(d.to_json()) == json.dumps(raw.to_json()), m
    assert "position_bias" not in diagnostics["mc"].to_json() and "by_m" not in diagnostics["mc"].to_json()


def test_analyze_prints_every_number_through_harness_format(tmp_path, capsys):
    """The gap at n = 1 is 0 up to float error (here -5e-17 or so): printed as +0.000, never -0.000
    (harness/format.py's rule, which analyze's tables follow like every other report)."""
    import random

    from boards_support import write_run

    from gapbench.harness.cli import main

    rng = random.Random(11)
    docs = [f"{lv}-{k}" for lv in ("add1", "add2", "mul1") for k in range(7)]
    g = {d: [int(rng.random() < 0.4) for _ in range(6)] for d in docs}
    u = {d: [round(min(1, max(0, 0.5 * x + rng.random() * 0.7)), 4) for x in g[d]] for d in docs}
    run = write_run(tmp_path / "arith", g, u, n_boot=80, seed=4)
    assert main(["analyze", str(run)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("1    n/a"))
    assert row.split()[4] == "+0.000" and "-0.000" not in out
