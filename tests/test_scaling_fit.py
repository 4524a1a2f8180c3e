"""The scaling fit's intervals: the paired bootstrap over prompts against brute force, the slope's
interval and a family's size step on a board built from runs of several models (synthetic and through
the runner on the fake model), the sentences made from them, the per-prompt records a rebuild reads,
the outside figures beside J(f), and the engine in the models table."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from boards_support import write_run

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.metrics import relative_gap
from gapbench.harness.settings import N_BOOT, SEED
from gapbench.leaderboards.board import ALL_MODELS, Fit, Scaling, ScalingPoint, SizeStep, load
from gapbench.leaderboards.builder import build
from gapbench.leaderboards.check import check_board
from gapbench.leaderboards.scaling import PromptGaps, difference_interval, relative_gap_draws, slope_interval, slopes
from gapbench.leaderboards.scaling_text import fit_sentence, step_sentence

FOUR = [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", 0.2),
    ("google/gemma-3-270m", 0.3),
    ("Qwen/Qwen2.5-Coder-0.5B-Instruct", 0.4),
    ("Qwen/Qwen2.5-Coder-1.5B-Instruct", 0.6),
]


def _gaps(G, K, key):
    from gapbench.harness.metrics import per_prompt_accuracy

    J_x, Jw_x, _ = per_prompt_accuracy(np.asarray(G, dtype=float), np.asarray(K, dtype=bool))
    return PromptGaps.from_accuracy(key, J_x, Jw_x)


# --- the bootstrap, against brute force -------------------------------------------------------


def test_paired_bootstrap_matches_brute_force_on_a_tiny_example():
    """Three models on the same 5 prompts (one model on other prompts): every resample's relative gaps
    equal harness.metrics.relative_gap on the resampled g and keep rows, the paired models share each
    resample, and the slope is numpy's least-squares slope of those values."""
    rng = np.random.default_rng(0)
    Gs = [rng.integers(0, 2, size=(5, 3)) for _ in range(4)]
    Ks = [rng.integers(0, 2, size=(5, 3)).astype(bool) for _ in range(4)]
    Gs[0][0] = 1  # a prompt with J(f|x) = 1: left out of its relative gap
    keys = ["same", "same", "same", "other"]
    models = [_gaps(G, K, k) for G, K, k in zip(Gs, Ks, keys)]
    n_boot, seed = 60, 7
    got = relative_gap_draws(models, n_boot=n_boot, seed=seed)

    brute = np.random.default_rng(seed)
    shared = brute.integers(0, 5, size=(n_boot, 5))  # drawn first: the first set of prompts
    other = brute.integers(0, 5, size=(n_boot, 5))  # then the other set, from the same generator
    for b in range(n_boot):
        for j, (G, K) in enumerate(zip(Gs, Ks)):
            rows = shared[b] if keys[j] == "same" else other[b]
            want, _ = relative_gap(G[rows].astype(float), K[rows])
            assert (np.isnan(got[b, j]) and want is None) or got[b, j] == pytest.approx(want, abs=1e-12)
    x = np.log10([1e20, 1e21, 3e21, 1e22])
    finite = np.isfinite(got).all(axis=1)
    assert finite.sum() > n_boot // 2
    want_slopes = [np.polyfit(x, row, 1)[0] for row in got[finite]]
    assert slopes(x, got[finite]) == pytest.approx(want_slopes, abs=1e-12)


def test_pairing_cancels_what_the_models_share():
    """Two models with the same per-prompt relative gaps: paired over the same prompts their difference is
    exactly 0 in every resample; on other prompts (independent resamples) its interval is wide."""
    rng = np.random.default_rng(1)
    G = rng.integers(0, 2, size=(40, 4))
    K = rng.integers(0, 2, size=(40, 4)).astype(bool)
    a, b = _gaps(G, K, "p"), _gaps(G, K, "p")
    paired = difference_interval(a, b, n_boot=500, seed=3)
    assert paired.paired and paired.ci == [0.0, 0.0]
    unpaired = difference_interval(a, _gaps(G, K, "q"), n_boot=500, seed=3)
    assert not unpaired.paired and unpaired.ci[0] < -0.05 and unpaired.ci[1] > 0.05
    # a slope needs two FLOPs; the same seed gives the same interval
    assert slope_interval([1e21, 1e21], [a, b], n_boot=100, seed=0).ci is None
    one = slope_interval([1e21, 1e22], [a, _gaps(G, ~K, "p")], n_boot=300, seed=5)
    assert one == slope_interval([1e21, 1e22], [a, _gaps(G, ~K, "p")], n_boot=300, seed=5) and one.paired


# --- the sentences ---------------------------------------------------------------------------


def _scaling(family, slope_ci, n=4, steps=None, paired=True):
    pts = [ScalingPoint(f"m{i}", 10.0 ** (20 + i), 0.1 * i) for i in range(n)]
    return Scaling("mc", family, pts, Fit(0.05, -1.0, 0.5, n, slope_ci, paired if slope_ci else None), steps)


def test_sentences_say_rising_only_when_the_interval_is_above_zero():
    up = fit_sentence(_scaling(ALL_MODELS, [0.01, 0.2]))
    assert up.startswith("Across the 4 models, the relative gap (mc) changes by +0.050 per decade of pre-training FLOPs [+0.010, +0.200]")
    assert "paired bootstrap over the same prompts" in up and "lies above 0, so the paper's finding" in up and up.endswith("reappears here.")
    flat = fit_sentence(_scaling(ALL_MODELS, [-0.1, 0.2], paired=False))
    assert "includes 0" in flat and "is not shown here" in flat and "reappears" not in flat and "each model's own prompts" in flat
    down = fit_sentence(_scaling("Qwen-2.5", [-0.3, -0.01], n=3))
    assert down.startswith("Within Qwen-2.5 (3 sizes)") and "falls with compute here, against" in down
    none = fit_sentence(_scaling(ALL_MODELS, None))
    assert "without an interval" in none and none.endswith("reappears here is not tested.")
    fam = _scaling("Qwen-2.5-Coder", [0.0, 0.1], n=2)
    st = SizeStep("q-0.5b", "q-1.5b", 0.03, [-0.02, 0.08], True)
    line = step_sentence(fam, st)
    assert line.startswith("Qwen-2.5-Coder, q-0.5b -> q-1.5b (mc): relative gap +0.030 [-0.020, +0.080]")
    assert "no evidence either way on the paper's finding" in line
    assert "supports" in step_sentence(fam, SizeStep("a", "b", 0.1, [0.001, 0.2], True))
    assert "does not test" in step_sentence(fam, SizeStep("a", "b", 0.1, None, None))
    # the oracle's rising relative gap is pass@n's head room, not the paper's finding
    oracle = Scaling("oracle", ALL_MODELS, fam.points, Fit(0.2, -1.0, 0.8, 2, [0.1, 0.3], True), None)
    for said in (fit_sentence(oracle), step_sentence(oracle, SizeStep("a", "b", 0.3, [0.2, 0.4], True))):
        assert said is not None and "[+0." in said and "the upper bound, not self-verification" in said
        assert "reappears" not in said and "supports" not in said


# --- a board of four models ------------------------------------------------------------------


def four_runs(root, docs_of=lambda k: [f"add1-{i}" for i in range(30)]):
    paths = []
    for k, (hub, p) in enumerate(FOUR):
        rng = random.Random(k)
        docs = docs_of(k)
        g = {d: [int(rng.random() < p) for _ in range(4)] for d in docs}
        u = {d: [min(0.99, max(0.01, 0.5 + (0.2 + 0.1 * k) * (x - 0.5) + rng.uniform(-0.3, 0.3))) for x in g[d]] for d in docs}
        model = {"id": hub, "backend": "hf", "lm_eval_model": "hf-prefix"} if k else {"id": hub, "backend": "llama.cpp-batched"}
        paths.append(write_run(root / str(k) / "arith", g, u, model=model))
    return paths


def test_board_of_four_models_shows_slope_interval_step_and_sentences(tmp_path):
    out = tmp_path / "board"
    build(four_runs(tmp_path / "runs"), out)
    t = load(out / "leaderboard.json").tables[0]
    by = {(s.verifier, s.family): s for s in t.scaling}
    every = by[("mc", ALL_MODELS)]
    assert len(every.points) == 4 and every.fit.n == 4 and every.fit.paired is True
    lo, hi = every.fit.slope_ci
    assert lo < every.fit.slope < hi
    assert all(p.ci and p.ci[0] <= p.relative_gap <= p.ci[1] for p in every.points)  # each point with its run's interval
    qwen = by[("mc", "Qwen-2.5-Coder")]
    (step,) = qwen.steps
    assert (step.smaller, step.larger) == ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert step.difference == pytest.approx(qwen.points[1].relative_gap - qwen.points[0].relative_gap, abs=2e-6)
    assert step.paired and step.ci[0] < step.difference < step.ci[1]
    assert by[("mc", "SmolLM2")].steps is None and every.steps is None
    readme = (out / "README.md").read_text()
    assert f"| mc | {ALL_MODELS} | 4 | {every.fit.slope:+.3f} | [{lo:+.3f}, {hi:+.3f}] paired |" in readme
    assert "| mc | Qwen-2.5-Coder | Qwen/Qwen2.5-Coder-0.5B-Instruct -> Qwen/Qwen2.5-Coder-1.5B-Instruct |" in readme
    assert f"- Across the 4 models, the relative gap (mc) changes by {every.fit.slope:+.3f} per decade" in readme
    assert "- Qwen-2.5-Coder, Qwen/Qwen2.5-Coder-0.5B-Instruct -> Qwen/Qwen2.5-Coder-1.5B-Instruct (mc): relative gap" in readme
    html = (out / "index.html").read_text()
    assert "Across the 4 models, the relative gap (mc)" in html and "Δ relative gap" in html
    # the engine: results' model.backend, with the lm-eval class where it differs
    assert "| engine |" in readme and "| llama.cpp-batched |" in readme and "| hf (hf-prefix) |" in readme
    assert sorted(p.name for p in (out / "prompts").glob("*.json")) == sorted(p.name for p in (out / "results").glob("*.json"))

    # deterministic: a second build from the run directories, and a rebuild from the board's own
    # recorded results and per-prompt records, give the same bytes; the check passes
    texts = {p: (out / p).read_bytes() for p in ("README.md", "leaderboard.json", "index.html")}
    again = tmp_path / "again"
    build(four_runs(tmp_path / "runs2"), again, "board")
    assert all((again / p).read_bytes() == b for p, b in texts.items())
    build([out / "results"], out)
    assert all((out / p).read_bytes() == b for p, b in texts.items())
    assert check_board(out).ok


def test_rebuild_without_records_has_no_interval_and_says_so(tmp_path):
    out = tmp_path / "board"
    build(four_runs(tmp_path / "runs"), out)
    shutil.rmtree(out / "prompts")
    report = check_board(out)
    assert not report.ok and any("README.md differs" in f for f in report.failures)
    plain = tmp_path / "plain"
    build(sorted((out / "results").glob("*.json")), plain)
    every = {(s.verifier, s.family): s for s in load(plain / "leaderboard.json").tables[0].scaling}[("mc", ALL_MODELS)]
    assert every.fit.slope_ci is None and every.fit.paired is None
    readme = (plain / "README.md").read_text()
    assert "n/a (no per-prompt records)" in readme and "without an interval" in readme
    assert "slope_ci" not in json.dumps(json.loads((plain / "leaderboard.json").read_text()))  # omitted, not null


def test_a_damaged_record_is_refused_and_one_of_another_result_is_ignored(tmp_path):
    out = tmp_path / "board"
    build(four_runs(tmp_path / "runs"), out)
    rec = sorted((out / "prompts").glob("*.json"))[0]
    data = json.loads(rec.read_text())
    data["g"][1] = "".join("1" if c == "0" else "0" for c in data["g"][1])
    rec.write_text(json.dumps(data))
    with pytest.raises(GapbenchError, match=r"per-prompt record of .*gives J\(f\)"):
        build([out / "results"], out)
    data["results_sha256"] = "0" * 64  # a record of another result: not used
    rec.write_text(json.dumps(data))
    build([out / "results"], tmp_path / "other")
    assert not (tmp_path / "other" / "prompts" / rec.name).exists()


def test_models_on_different_prompts_are_resampled_independently(tmp_path):
    out = tmp_path / "board"
    build(four_runs(tmp_path / "runs", docs_of=lambda k: [f"add1-{i + 5 * k}" for i in range(30)]), out)
    by = {(s.verifier, s.family): s for s in load(out / "leaderboard.json").tables[0].scaling}
    assert by[("mc", ALL_MODELS)].fit.paired is False and by[("mc", "Qwen-2.5-Coder")].steps[0].paired is False
    readme = (out / "README.md").read_text()
    assert "] unpaired |" in readme and "bootstrap over each model's own prompts" in readme


def test_runs_through_the_runner_are_paired_by_their_documents(tmp_path, monkeypatch):
    """Three fake-model runs of the same arith prompts, recorded as three models of two families: the
    records carry run.json's digest of the documents, and the fit and the Qwen step are paired."""
    from gapbench.harness.runner import Runner, RunOptions

    monkeypatch.chdir(tmp_path)
    for i, (hub, p) in enumerate([FOUR[0], FOUR[2], FOUR[3]]):
        opts = RunOptions(
            model="gapbench-fake", model_args=f"arith={p}", tasks=["arith"], task_args={"arith": {"per_level": "4", "levels": "add1+mul1"}},
            verifiers=["mc", "oracle"], n=3, n_boot=50, seed=i, out=f"r{i}", model_meta={"hub_id": hub},
        )  # fmt: skip
        Runner(opts, log=lambda *_: None).run()
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "r0", "r1", "r2", "--out", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in sorted((out / "prompts").glob("*.json"))]
    assert len(records) == 3 and len({r["docs_sha256"] for r in records}) == 1 and records[0]["docs_sha256"]
    by = {(s.verifier, s.family): s for s in load(out / "leaderboard.json").tables[0].scaling}
    assert by[("oracle", ALL_MODELS)].fit.paired is True and by[("oracle", ALL_MODELS)].fit.slope_ci is not None
    assert by[("oracle", "Qwen-2.5-Coder")].steps[0].paired is True
    assert main(["leaderboard", "check", str(out)]) == 0


def test_the_board_interval_is_the_bootstrap_of_its_records_with_the_settings_seed(tmp_path):
    from gapbench.leaderboards.entries import load_entries
    from gapbench.leaderboards.prompt_records import load as load_record

    out = tmp_path / "board"
    build(four_runs(tmp_path / "runs"), out)
    every = {(s.verifier, s.family): s for s in load(out / "leaderboard.json").tables[0].scaling}[("mc", ALL_MODELS)]
    entries = {e.checkpoint: e for e in load_entries([out / "results"])}
    gaps = [load_record(out / "prompts" / f"{entries[p.checkpoint].slug}.json", entries[p.checkpoint]).gaps("mc") for p in every.points]
    want = slope_interval([p.flops for p in every.points], gaps, n_boot=N_BOOT, seed=SEED)
    assert want.paired and every.fit.slope_ci == pytest.approx(want.ci, abs=1e-6)
    other = slope_interval([p.flops for p in every.points], gaps, n_boot=N_BOOT, seed=SEED + 1)
    assert other.ci != want.ci  # the seed matters: the board's is harness.settings'


# --- outside figures -------------------------------------------------------------------------


def _outside(tmp_path, figures):
    path = tmp_path / "figures.json"
    path.write_text(json.dumps({"figures": figures}))
    return path


GOOD = {
    "model": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
    "task": "arith",
    "split": "test",
    "figure": "lm-eval arith, greedy",
    "value": 0.512,
    "interval": [0.48, 0.54],
    "source": "https://example.org/report Table 3",
    "differs": "greedy decoding; bf16 weights, not the Q8 GGUF",
}


def test_outside_figures_sit_beside_j_and_survive_rebuild_and_check(tmp_path):
    out = tmp_path / "board"
    runs = four_runs(tmp_path / "runs")
    assert main(["leaderboard", "build", *map(str, runs), "--out", str(out), "--outside", str(_outside(tmp_path, [GOOD]))]) == 0
    t = load(out / "leaderboard.json").tables[0]
    (fig,) = t.outside
    assert fig.checkpoint == "Qwen/Qwen2.5-Coder-1.5B-Instruct" and fig.value == 0.512 and fig.interval == [0.48, 0.54]
    row = next(r for r in t.rows if r.checkpoint == fig.checkpoint)
    assert fig.J == row.J
    readme = (out / "README.md").read_text()
    assert "| checkpoint | J(f) here | outside figure | value | source | how it differs |" in readme
    assert "| lm-eval arith, greedy | 0.512 [0.480, 0.540] | https://example.org/report Table 3 |" in readme
    assert (out / "outside.json").is_file() and "outside.json" in load(out / "leaderboard.json").files
    assert check_board(out).ok  # the check reads the board's outside.json; a URL is no machine path
    build([out / "results"], out)  # a later build without --outside keeps them
    assert load(out / "leaderboard.json").tables[0].outside == [fig]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"value": 51.2}, r"figures\[0\]\.value: expected a share between 0 and 1 .* as 0\.512"),
        ({"model": "nobody/else"}, r"figures\[0\]\.model 'nobody/else' is not a checkpoint of this board on arith \(checkpoints there: "),
        ({"task": "gsm8k"}, r"figures\[0\]\.task 'gsm8k' .*is not a table of this board \(tables: arith-test\)"),
        ({"interval": [0.6, 0.5]}, r"figures\[0\]\.interval: expected \[lo, hi\]"),
        ({"source": ""}, r"figures\[0\]\.source: expected a non-empty text"),
        ({"note": "x"}, r"figures\[0\]: unknown field\(s\) note"),
        ({"differs": None}, r"figures\[0\]\.differs: expected a non-empty text"),
    ],
)
def test_bad_outside_figures_are_refused_naming_the_field(tmp_path, change, message):
    path = _outside(tmp_path, [{**GOOD, **change}])
    with pytest.raises(GapbenchError, match=message):
        build(four_runs(tmp_path / "runs"), tmp_path / "board", outside=path)
    (tmp_path / "missing.json").write_text(json.dumps({"figures": [{k: v for k, v in GOOD.items() if k != "differs"}]}))
    with pytest.raises(GapbenchError, match=r"figures\[0\]: missing differs"):
        build(four_runs(tmp_path / "runs"), tmp_path / "board", outside=tmp_path / "missing.json")


def test_lm_eval_outside_writes_figures_the_board_reads(tmp_path):
    """benchmarks/lm_eval_outside.py turns lm-eval's gsm8k results (numpy floats, as lm-eval gives them)
    into outside.json entries with value +- 1.96 stderr clipped to [0, 1], which the board's reader
    accepts; the committed four-models outside.json reads as well."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    from gapbench.leaderboards import outside

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("lm_eval_outside", root / "benchmarks" / "lm_eval_outside.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    results = {"gsm8k": {"exact_match,strict-match": np.float64(0.5), "exact_match_stderr,strict-match": 0.05, "exact_match,flexible-extract": 0.02, "exact_match_stderr,flexible-extract": 0.014}}
    figs = mod.figures("qwen2.5-coder-1.5b-instruct", results, 100, "llama.cpp-batched")
    assert [f["figure"] for f in figs] == ["lm-eval gsm8k, exact_match (strict-match)", "lm-eval gsm8k, exact_match (flexible-extract)"]
    assert figs[0]["value"] == 0.5 and figs[0]["interval"] == [0.402, 0.598]
    assert figs[1]["interval"] == [0.0, 0.0474]  # clipped at 0
    path = tmp_path / "outside.json"
    path.write_text(json.dumps({"figures": figs}))
    _, read = outside.read(path)
    assert [(f.model, f.value, f.interval) for f in read] == [(f["model"], f["value"], f["interval"]) for f in figs]
    committed = root / "leaderboards" / "four-models" / "outside.json"
    assert all(f.task == "gsm8k" and 0 <= f.value <= 1 for f in outside.read(committed)[1])
