"""Leaderboards: build (grouping, deltas, determinism, plots), check (rebuild and --against), the
model metadata table, the scaling fit; and one end-to-end test from two runs of the fake model."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from boards_support import write_run

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.leaderboards import model_meta
from gapbench.leaderboards.builder import build, render_readme
from gapbench.leaderboards.check import check_board
from gapbench.leaderboards.entries import load_entries
from gapbench.leaderboards.scaling import linear_fit

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QWEN = "Qwen/Qwen2.5-0.5B"

# 4 prompts x 2 samples; J(f) = mean of per-prompt means
G_BASE = {"add1-0": [1, 1], "add1-1": [1, 0], "mul1-0": [0, 0], "mul1-1": [0, 1]}  # J = (1 + .5 + 0 + .5)/4 = 0.5
U_BASE = {"add1-0": [0.9, 0.8], "add1-1": [0.7, 0.2], "mul1-0": [0.4, 0.3], "mul1-1": [0.6, 0.5]}
G_R1 = {"add1-0": [1, 1], "add1-1": [1, 1], "mul1-0": [0, 1], "mul1-1": [0, 1]}  # J = (1 + 1 + .5 + .5)/4 = 0.75
U_R1 = {"add1-0": [0.9, 0.8], "add1-1": [0.7, 0.6], "mul1-0": [0.4, 0.3], "mul1-1": [0.2, 0.5]}
G_R2 = {"add1-0": [1, 1], "add1-1": [1, 1], "mul1-0": [1, 1], "mul1-1": [0, 1]}  # J = 0.875
G_QWEN = {"add1-0": [1, 1], "add1-1": [1, 1], "mul1-0": [1, 0], "mul1-1": [0, 0]}  # J = 0.625


def smol(**extra):
    return {"id": "smollm2-135m-instruct", "hub_id": SMOL, "backend": "hf", "parameters": 134515008, **extra}


@pytest.fixture
def runs(tmp_path):
    """A base model with two self-improved rounds, and a second base model."""
    root = tmp_path / "runs"
    return {
        "base": write_run(root / "base" / "arith", G_BASE, U_BASE, model=smol()),
        "r1": write_run(root / "r1" / "arith", G_R1, U_R1, model={"id": "ckpt/smol-r1", "backend": "hf", "parameters": 134515008, "base": SMOL, "round": 1}),
        "r2": write_run(root / "r2" / "arith", G_R2, U_R1, model={"id": "ckpt/smol-r2", "backend": "hf", "base": SMOL.lower(), "round": 2}),
        "qwen": write_run(root / "qwen" / "arith", G_QWEN, U_BASE, model={"id": QWEN, "backend": "hf", "parameters": 494032768}),
    }


def board_rows(out):
    board = json.loads((out / "leaderboard.json").read_text())
    return board, board["tables"][0]["rows"]


# --- build -----------------------------------------------------------------------------------


def test_build_writes_readme_json_plots_and_recorded_results(runs, tmp_path):
    out = tmp_path / "boards" / "main"
    built = build([tmp_path / "runs"], out)  # a folder searched recursively
    assert len(built.entries) == 4
    board, rows = board_rows(out)
    assert board["schema_version"] == 1 and board["name"] == "main"
    for png in ("accuracy-arith-test.png", "gap-filter-arith-test.png", "scaling-arith-test.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = sorted(p.name for p in (out / "results").glob("*.json"))
    assert recorded == [
        "arith-test--HuggingFaceTB-SmolLM2-135M-Instruct.json",
        "arith-test--Qwen-Qwen2.5-0.5B.json",
        "arith-test--ckpt-smol-r1--r1.json",
        "arith-test--ckpt-smol-r2--r2.json",
    ]
    # the copies are byte-for-byte the inputs
    assert (out / "results" / "arith-test--Qwen-Qwen2.5-0.5B.json").read_bytes() == (runs["qwen"] / "results.json").read_bytes()
    readme = (out / "README.md").read_text()
    assert "## arith (test)" in readme and "| checkpoint | round | verifier | J(f) | J(f[w(u)]) | gap | share of oracle gap | relative gap | AUROC | AUROC in prompt | best-of-n |" in readme
    assert "0.500 [" in readme  # J(f) of the base with its interval


def test_rounds_sit_under_their_base_with_deltas(runs, tmp_path):
    out = tmp_path / "main"
    build([runs[k] for k in ("qwen", "r2", "base", "r1")], out)
    _, rows = board_rows(out)
    order = [(r["checkpoint"], r["round"], r["verifier"]) for r in rows]
    assert order == [
        (SMOL, None, "mc"),
        (SMOL, None, "oracle"),
        ("ckpt/smol-r1", 1, "mc"),
        ("ckpt/smol-r1", 1, "oracle"),
        ("ckpt/smol-r2", 2, "mc"),
        ("ckpt/smol-r2", 2, "oracle"),
        (QWEN, None, "mc"),
        (QWEN, None, "oracle"),
    ]
    by = {(r["checkpoint"], r["verifier"]): r for r in rows}
    base_results = json.loads((runs["base"] / "results.json").read_text())
    r1_results = json.loads((runs["r1"] / "results.json").read_text())
    d = by[("ckpt/smol-r1", "mc")]["delta"]
    assert by[("ckpt/smol-r1", "mc")]["baseline"] == SMOL
    assert d["J"] == pytest.approx(0.75 - 0.5)
    assert d["J_filtered"] == pytest.approx(r1_results["verifiers"]["mc"]["J_filtered"]["value"] - base_results["verifiers"]["mc"]["J_filtered"]["value"], abs=1e-6)
    assert d["gap"] == pytest.approx(r1_results["verifiers"]["mc"]["gap"]["value"] - base_results["verifiers"]["mc"]["gap"]["value"], abs=1e-6)
    assert by[("ckpt/smol-r2", "oracle")]["delta"]["J"] == pytest.approx(0.875 - 0.5)  # base matched case-insensitively
    assert by[(SMOL, "mc")]["delta"] is None and by[(QWEN, "mc")]["delta"] is None
    readme = (out / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("| ")]
    assert any(line.startswith("| ↳ ckpt/smol-r1 | 1 | mc |") and line.endswith("| +0.250 | " + f"{d['J_filtered']:+.3f}" + " | " + f"{d['gap']:+.3f}" + " |") for line in lines), lines
    assert readme.index("↳ ckpt/smol-r2") > readme.index("↳ ckpt/smol-r1") > readme.index(f"| {SMOL} | base |")
    assert readme.index(f"| {QWEN} | base |") > readme.index("↳ ckpt/smol-r2")


def test_a_round_without_its_base_on_the_board_has_no_delta(runs, tmp_path):
    out = tmp_path / "b"
    build([runs["r1"], runs["qwen"]], out)
    _, rows = board_rows(out)
    r1 = [r for r in rows if r["round"] == 1]
    assert r1 and all(r["delta"] is None and r["baseline"] is None for r in r1)
    readme = (out / "README.md").read_text()
    assert "no base" in readme and f"No base model on this board for: `{SMOL}`" in readme


def test_building_twice_gives_identical_text(runs, tmp_path):
    a, b, c = tmp_path / "x" / "main", tmp_path / "y" / "main", tmp_path / "z" / "main"
    build([runs[k] for k in ("base", "r1", "r2", "qwen")], a)
    build([runs[k] for k in ("qwen", "r2", "r1", "base")], b)  # input order does not matter
    build([a / "results"], c)  # rebuilding from the recorded results alone
    for name in ("README.md", "leaderboard.json"):
        assert (a / name).read_text() == (b / name).read_text() == (c / name).read_text()
    assert "/runs/" not in (a / "leaderboard.json").read_text()  # no input path leaks into the board


def test_duplicate_checkpoint_is_refused(runs, tmp_path):
    other = write_run(tmp_path / "again" / "arith", G_R1, U_R1, model=smol())
    with pytest.raises(GapbenchError, match="two results for checkpoint"):
        build([runs["base"], other], tmp_path / "dup")
    # the very same file twice is not a conflict
    build([runs["base"], runs["base"] / "results.json"], tmp_path / "same")


def test_rebuild_with_fewer_inputs_removes_files_it_no_longer_owns(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["base"], runs["qwen"]], out)
    (out / "notes.txt").write_text("mine")
    build([runs["base"]], out)
    assert sorted(p.name for p in (out / "results").glob("*.json")) == ["arith-test--HuggingFaceTB-SmolLM2-135M-Instruct.json"]
    assert (out / "notes.txt").read_text() == "mine"


# --- check -----------------------------------------------------------------------------------


def test_check_passes_then_fails_after_editing_readme(runs, tmp_path):
    out = tmp_path / "main"
    build(list(runs.values()), out)
    assert check_board(out).ok
    readme = out / "README.md"
    readme.write_text(readme.read_text().replace("0.500 [", "0.600 [", 1))
    report = check_board(out)
    assert not report.ok
    assert "README.md differs" in report.failures[0] and "0.600" in report.failures[0]
    assert main(["leaderboard", "check", str(out)]) == 1


def test_check_fails_on_edited_json_and_missing_plot(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["base"], runs["r1"]], out)
    (out / "leaderboard.json").write_text((out / "leaderboard.json").read_text().replace('"name": "main"', '"name": "main", "x": 1'))
    (out / "scaling-arith-test.png").unlink()
    failures = check_board(out).failures
    assert any("leaderboard.json differs" in f for f in failures)
    assert any("scaling-arith-test.png: missing" in f for f in failures)


def test_check_fails_when_a_recorded_result_changes(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["base"], runs["qwen"]], out)
    shutil.copyfile(runs["r1"] / "results.json", out / "results" / "extra.json")  # a result the board does not show
    assert any("README.md differs" in f for f in check_board(out).failures)


def test_check_against_flags_a_regression_beyond_the_interval(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["base"], runs["r1"]], out)
    rec = json.loads((runs["r1"] / "results.json").read_text())
    lo, hi = rec["generation"]["J"]["ci"]
    floor = 0.75 - (hi - lo) / 2
    assert floor > 0.125  # the regression below is outside the interval
    r1_meta = rec["model"]
    worse = write_run(tmp_path / "new" / "worse" / "arith", {k: [0, 0] if k != "add1-0" else [1, 0] for k in G_R1}, U_R1, model=r1_meta)
    same = write_run(tmp_path / "new" / "same" / "arith", G_R1, U_R1, model=r1_meta)
    untracked = write_run(tmp_path / "new" / "other" / "arith", G_R1, U_R1, model={"id": "someone/else"})

    ok = check_board(out, [same, untracked])
    assert ok.ok and ok.checked == 1 and any("someone/else" in n and "not on the board" in n for n in ok.notes)

    bad = check_board(out, [worse])
    assert not bad.ok
    msg = next(f for f in bad.failures if "generation: J(f)" in f)
    assert "ckpt/smol-r1 (round 1)" in msg and "arith-test" in msg and "0.125" in msg and "0.750" in msg and f"{floor:.3f}" in msg
    assert any("verifier mc: J(f[w(u)])" in f for f in bad.failures)
    assert main(["leaderboard", "check", str(out), "--against", str(worse)]) == 1
    assert main(["leaderboard", "check", str(out), "--against", str(same)]) == 0


def test_check_against_allows_a_drop_within_the_interval(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["r1"]], out)
    r1_meta = json.loads((runs["r1"] / "results.json").read_text())["model"]
    # J 0.75 -> 0.625: within the recorded interval's half-width
    slightly = write_run(tmp_path / "new" / "arith", {**G_R1, "mul1-1": [0, 0]}, U_R1, model=r1_meta)
    rec = json.loads((runs["r1"] / "results.json").read_text())["generation"]["J"]["ci"]
    assert 0.75 - (rec[1] - rec[0]) / 2 <= 0.625
    assert not [f for f in check_board(out, [slightly]).failures if "J(f) =" in f]


def test_check_against_notes_other_settings(runs, tmp_path):
    out = tmp_path / "main"
    build([runs["r1"]], out)
    r1_meta = json.loads((runs["r1"] / "results.json").read_text())["model"]
    hot = write_run(tmp_path / "hot" / "arith", G_R1, U_R1, model=r1_meta, sampling={"temperature": 1.0, "top_p": 0.9, "max_gen_toks": 16})
    report = check_board(out, [hot])
    assert report.ok and any("other settings than recorded (sampling.temperature: 0.7 -> 1.0)" in n for n in report.notes)


# --- model metadata and FLOPs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "hub_id, family, params, tokens",
    [
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen-2.5", 7.61e9, 1.8e13),
        ("qwen/QWEN2.5-0.5B", "Qwen-2.5", 4.9e8, 1.8e13),
        ("Qwen/Qwen2-0.5B", "Qwen-2", 4.94e8, 1.2e13),
        ("Qwen/Qwen2-7B", "Qwen-2", 7.62e9, 7e12),
        ("Qwen/Qwen1.5-1.8B", "Qwen-1.5", 1.84e9, 3e12),
        ("meta-llama/Llama-2-13b-hf", "Llama-2", 1.3e10, 2e12),
        ("meta-llama/Meta-Llama-3-8B", "Llama-3", 8.03e9, 1.5e13),
        ("meta-llama/Llama-3.1-70B", "Llama-3.1", 7.06e10, 1.5e13),
        ("meta-llama/Meta-Llama-3.1-405B", "Llama-3.1", 4.06e11, 1.56e13),
        ("01-ai/Yi-1.5-9B", "Yi-1.5", 8.83e9, 4.4e12),
        (SMOL, "SmolLM2", 134515008, 2e12),
        ("HuggingFaceTB/SmolLM2-1.7B", "SmolLM2", 1.71e9, 1.1e13),
    ],
)
def test_table_lookup_by_hub_id(hub_id, family, params, tokens):
    e = model_meta.lookup(hub_id)
    assert (e.family, e.params, e.tokens) == (family, params, tokens)


def test_table_does_not_match_other_models():
    assert model_meta.lookup("TinyLlama/TinyLlama-1.1B") is None
    assert model_meta.lookup("Qwen/Qwen2.5-Math-7B") is None
    assert model_meta.lookup("codellama/CodeLlama-7b-hf") is None
    assert model_meta.lookup("Qwen/Qwen2-57B-A14B").params is None  # a family match, an unknown size
    assert model_meta.lookup("Qwen/Qwen1.5-7B").uncertain and not model_meta.lookup(QWEN).uncertain


def test_flops_from_table_and_overrides():
    info = model_meta.model_info({"id": "smollm2-135m-instruct", "hub_id": SMOL, "parameters": 1})
    assert (info.family, info.params_source, info.tokens_source) == ("SmolLM2", "table", "table")
    assert info.flops == pytest.approx(6 * 134515008 * 2e12)
    over = model_meta.model_info({"id": QWEN, "params": 1e9, "tokens": 1e12, "parameters": 5})
    assert (over.params, over.tokens, over.flops, over.params_source, over.family) == (1e9, 1e12, 6e21, "model-meta", "Qwen-2.5")
    assert model_meta.model_info({"id": "x", "flops": 3e20}).flops == 3e20
    # unknown checkpoint: counted parameters, no tokens, no FLOPs
    unknown = model_meta.model_info({"id": "/ckpt/mine", "parameters": 123})
    assert (unknown.params, unknown.params_source, unknown.tokens, unknown.flops, unknown.family) == (123, "checkpoint", None, None, None)
    # a self-improved checkpoint from a local folder: its own weights, its base's pre-training tokens and family
    derived = model_meta.model_info({"id": "/ckpt/r1", "parameters": 494032768, "base": QWEN, "round": 1})
    assert (derived.family, derived.params, derived.tokens) == ("Qwen-2.5", 494032768, 1.8e13)
    assert derived.flops == pytest.approx(6 * 494032768 * 1.8e13)


def test_models_section_and_overrides_on_the_board(tmp_path):
    a = write_run(tmp_path / "a" / "arith", G_BASE, U_BASE, model={"id": "org/custom-1b", "params": 1e9, "tokens": 2e12, "family": "Custom"})
    out = tmp_path / "main"
    build([a], out)
    board, _ = board_rows(out)
    m = board["models"][0]
    assert (m["family"], m["params"], m["tokens"], m["flops"], m["params_source"]) == ("Custom", 1e9, 2e12, 1.2e22, "model-meta")
    weights = "org/custom-1b from the Hugging Face hub (revision not recorded)"  # no model_args recorded: named by its id
    assert f"| org/custom-1b | base |  | Custom | {weights} | 1B (model-meta) | 2T (model-meta) | 1.2e+22 |" in (out / "README.md").read_text()


# --- the scaling fit -------------------------------------------------------------------------


def test_linear_fit_on_exact_and_noisy_points():
    fit = linear_fit([1e20, 1e21, 1e22], [0.1, 0.3, 0.5])
    assert fit.slope == pytest.approx(0.2) and fit.intercept == pytest.approx(0.1 - 0.2 * 20) and fit.r2 == pytest.approx(1.0)
    # x = 0, 1, 2 (log10 FLOPs - 20), y = 0, 2, 1: slope 0.5, mean y 1, residuals -0.5, 1, -0.5 -> SSres 1.5, SStot 2
    noisy = linear_fit([1e20, 1e21, 1e22], [0.0, 2.0, 1.0])
    assert noisy.slope == pytest.approx(0.5) and noisy.r2 == pytest.approx(1 - 1.5 / 2) and noisy.n == 3
    assert linear_fit([1e21], [0.3]) is None
    assert linear_fit([1e21, 1e21], [0.3, 0.4]) is None
    assert linear_fit([1e20, 1e21], [0.2, 0.2]).r2 is None


def test_board_fits_families_with_two_points_and_still_plots_one(tmp_path):
    fams = [
        ("Qwen/Qwen2.5-0.5B", G_BASE),
        ("Qwen/Qwen2.5-7B", G_R1),
        ("meta-llama/Meta-Llama-3-8B", G_QWEN),
    ]
    paths = [write_run(tmp_path / f"r{i}" / "arith", g, U_BASE, model={"id": hub}) for i, (hub, g) in enumerate(fams)]
    out = tmp_path / "main"
    build(paths, out)
    from gapbench.leaderboards.board import load

    scaling = {(s.verifier, s.family): s for s in load(out / "leaderboard.json").tables[0].scaling}
    qwen = scaling[("mc", "Qwen-2.5")]
    assert len(qwen.points) == 2 and scaling[("mc", "Llama-3")].fit is None
    x = [math.log10(p.flops) for p in qwen.points]
    y = [p.relative_gap for p in qwen.points]
    assert qwen.fit.slope == pytest.approx((y[1] - y[0]) / (x[1] - x[0]), abs=1e-5)
    assert qwen.fit.r2 == 1.0
    readme = (out / "README.md").read_text()
    assert "| mc | Qwen-2.5 | 2 |" in readme and (out / "scaling-arith-test.png").is_file()
    from gapbench.leaderboards.plots import fit_label

    assert fit_label(qwen).startswith("Qwen-2.5: slope ") and "R²=1.00 (n=2)" in fit_label(qwen)
    assert fit_label(scaling[("mc", "Llama-3")]) == "Llama-3 (n=1, no fit)"


# --- command line ----------------------------------------------------------------------------


def test_cli_build_and_errors(runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["leaderboard", "build", str(runs["base"]), str(runs["r1"]), "--out", str(out), "--name", "demo"]) == 0
    assert json.loads((out / "leaderboard.json").read_text())["name"] == "demo"
    assert main(["leaderboard", "check", str(out)]) == 0
    assert main(["leaderboard", "build", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "model": {"id": "x"}}')
    assert main(["leaderboard", "build", str(bad), "--out", str(out)]) == 2
    assert "missing field 'task.name'" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished" / "arith"  # a run folder still running: run.json, no results.json
    unfinished.mkdir(parents=True)
    (unfinished / "run.json").write_text('{"model": {"backend": "hf"}}')
    assert main(["leaderboard", "build", str(unfinished), "--out", str(out)]) == 2
    assert f"{unfinished}: a run folder without results.json: its run has not finished" in capsys.readouterr().err


def test_render_readme_marks_uncertain_table_values(tmp_path):
    a = write_run(tmp_path / "a" / "arith", G_BASE, U_BASE, model={"id": "Qwen/Qwen1.5-7B"})
    entries = load_entries([a])
    from gapbench.leaderboards.builder import board_content

    text = render_readme(board_content(entries, "t"))
    weights = "Qwen/Qwen1.5-7B from the Hugging Face hub (revision not recorded)"
    assert f"| Qwen/Qwen1.5-7B | base |  | Qwen-1.5 | {weights} | 7.72B (table) | 3T (table) | 1.39e+23 * |" in text


# --- end to end from two runs -----------------------------------------------------------------


def test_two_runs_build_check_and_compare(tmp_path, capsys, monkeypatch):
    """Two runs through the runner, on the fake model (the board and the comparison read only results and
    run directories): a base that answers some arith prompts right, and a "round 1" that answers more.
    Both are recorded as the embedded SmolLM2 (``hub_id``), as its runs record themselves."""
    from gapbench.harness.runner import Runner, RunOptions

    monkeypatch.chdir(tmp_path)  # runs record their folders relative to where they ran: no machine path on the board
    common = dict(
        model="gapbench-fake",
        tasks=["arith"],
        task_args={"arith": {"per_level": "3", "levels": "add1+mul1"}},
        verifiers=["mc", "oracle"],
        n=2,
        n_boot=200,
    )
    base = Runner(RunOptions(**common, model_args="arith=0.4", seed=1, out="base", model_meta={"hub_id": SMOL}), log=lambda *_: None).run()[0]
    new = Runner(
        RunOptions(**common, model_args="arith=0.8", seed=2, out="new", model_meta={"hub_id": SMOL, "base": SMOL, "round": 1}),
        log=lambda *_: None,
    ).run()[0]
    base, new = base.to_dict(), new.to_dict()
    assert base["sizes"]["n_prompts"] == 6 and new["model"]["round"] == 1
    assert 0 < base["generation"]["J"]["value"] < new["generation"]["J"]["value"] < 1  # the deltas below are not 0 - 0

    board = tmp_path / "leaderboards" / "smoke"
    assert main(["leaderboard", "build", str(tmp_path / "base"), str(tmp_path / "new"), "--out", str(board)]) == 0
    content = json.loads((board / "leaderboard.json").read_text())
    rows = content["tables"][0]["rows"]
    assert [(r["round"], r["verifier"]) for r in rows] == [(None, "mc"), (None, "oracle"), (1, "mc"), (1, "oracle")]
    assert rows[2]["delta"]["J"] == pytest.approx(new["generation"]["J"]["value"] - base["generation"]["J"]["value"], abs=1e-6)
    assert content["models"][0]["family"] == "SmolLM2" and content["models"][0]["flops"] == pytest.approx(6 * 134515008 * 2e12)
    assert len(list(board.glob("*.png"))) == 3
    assert main(["leaderboard", "check", str(board)]) == 0
    assert main(["leaderboard", "check", str(board), "--against", str(tmp_path / "new")]) == 0

    capsys.readouterr()
    assert main(["leaderboard", "compare", str(tmp_path / "base"), str(tmp_path / "new"), "--n-boot", "500", "--json", str(tmp_path / "cmp.json")]) == 0
    text = capsys.readouterr().out
    assert "sign-flip per prompt, differences of J(f|x)" in text and "J(f)" in text
    report = json.loads((tmp_path / "cmp.json").read_text())
    assert report["n_prompts"] == 6 and set(report["verifiers"]) == {"mc", "oracle"}
    assert report["generation"]["delta"] == pytest.approx(new["generation"]["J"]["value"] - base["generation"]["J"]["value"])
    assert report["verifiers"]["oracle"]["gap"]["delta"] == pytest.approx(
        new["verifiers"]["oracle"]["gap"]["value"] - base["verifiers"]["oracle"]["gap"]["value"]
    )
    assert report["verifiers"]["mc"]["J_filtered"]["base"] == pytest.approx(base["verifiers"]["mc"]["J_filtered"]["value"])
    # the recorded copies alone cannot be compared: the comparison needs the run directories
    recorded = sorted((board / "results").glob("*.json"))
    shutil.rmtree(tmp_path / "base")
    assert main(["leaderboard", "compare", str(recorded[0]), str(recorded[1])]) == 2
    assert "needs the run directory" in capsys.readouterr().err


def test_round_zero_of_an_improve_loop_is_the_base_row(tmp_path):
    """`gapbench improve` marks f_0's evaluation base=<itself>, round=0: it is the baseline, not a round."""
    from boards_support import write_run

    from gapbench.leaderboards.entries import load_entry

    g = {"a-0": [1, 0], "a-1": [0, 0]}
    for rnd, derived in ((0, False), (1, True), (None, True)):
        run = write_run(tmp_path / f"r{rnd}", g, model={"id": "m", "base": "m", "round": rnd})
        results = run / "results.json" if (run / "results.json").exists() else next(run.rglob("results.json"))
        assert load_entry(results).derived is derived


def _floor_table(js, cis=None, n_prompts=40):
    """A board table whose rows have J(f) values ``js`` (intervals ``cis``), for :func:`floor_note`."""
    from gapbench.leaderboards.board import BoardMetric, Plots, RelativeGapMetric, Row, Sampling, Settings, Table

    def row(i, j, ci):
        none = BoardMetric(None, None)
        return Row(checkpoint="ab"[i], round=None, base=None, group="ab"[i], derived=False, verifier="mc", J=BoardMetric(j, ci),
                   J_filtered=none, gap=none, relative_gap=RelativeGapMetric(None, None), auroc=None, within_prompt_auroc=none,
                   realised_share=none, best_of_n=None, baseline=None, delta=None, source=f"results/{i}.json")  # fmt: skip

    settings = Settings(filter="quantile:0.5", m=1, n=2, n_prompts=n_prompts, sampling=Sampling(16, 0.7, 0.9), task_options={},
                        task_version="1", checkpoints=["a", "b"])  # fmt: skip
    return Table(table="t", task="t", split=None, settings=[settings], rows=[row(i, j, (cis or [None] * len(js))[i]) for i, j in enumerate(js)],
                 scaling=[], plots=Plots("a.png", "g.png", "s.png"))  # fmt: skip


def test_a_table_at_the_floor_says_why_it_is_on_the_board():
    from gapbench.leaderboards.builder import floor_note

    low = _floor_table([0.006, 0.013])
    assert "fewer than 5% of the prompts (J(f) at most 0.013)" in floor_note(low)
    assert floor_note(_floor_table([0.006, 0.08])) is None
    assert "widest" not in floor_note(low)
    # an interval of 0.05 or wider: the line says whose, how wide, over how many prompts, and what would narrow it
    wide = _floor_table([0.006, 0.037], [[0.0, 0.019], [0.0, 0.1]])
    assert "The widest J(f) interval, b's, is 0.100 wide over 40 prompts" in floor_note(wide)
    assert "four times as many" in floor_note(wide)
