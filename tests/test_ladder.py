"""The difficulty ladder: level order, the per-level numbers, the table and plot, the refusal."""

from __future__ import annotations

import json

import pytest
from boards_support import write_run

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.runs.ladder import find_results, ladder_data, level_order, tables

# levels listed out of ladder order, plus one the ladder does not know
G = {
    "mul21-0": [0, 0], "mul21-1": [0, 1],
    "add1-0": [1, 1], "add1-1": [1, 0],
    "d3x2+-0": [0, 0], "d3x2+-1": [1, 0],
    "mul1-0": [1, 0], "mul1-1": [0, 1],
}  # fmt: skip
U = {k: [0.8, 0.3] for k in G}


def test_level_order_follows_the_ladder_then_the_rest():
    assert level_order(["add3", "custom", "add1", "mul21", "zzz", "mul1"]) == ["add1", "mul1", "mul21", "add3", "custom", "zzz"]


def test_ladder_data_per_level(tmp_path):
    run = write_run(tmp_path / "arith", G, U)
    results = json.loads((run / "results.json").read_text())
    data = ladder_data(results)
    assert data.levels == ["add1", "mul1", "mul21", "d3x2+"] and (data.task, data.model) == ("arith", results["model"]["id"])
    assert data.generation["add1"].J.value == pytest.approx(0.75) and data.generation["add1"].n_prompts == 2
    assert data.generation["mul21"].J.value == pytest.approx(0.25)
    mc = data.verifiers["mc"]
    # u = 0.8, 0.3 on every prompt: the filter keeps sample 0. add1: g0 = 1, 1 -> J(f[w]) = 1, gap = 0.25
    assert mc["add1"].J_filtered.value == pytest.approx(1.0) and mc["add1"].gap.value == pytest.approx(0.25)
    # mul21: g0 = 0, 0 -> J(f[w]) = 0, gap -0.25; relative gap over the prompts with J(f|x) < 1: (0 - 0)/1 and (0 - .5)/.5
    assert mc["mul21"].gap.value == pytest.approx(-0.25) and mc["mul21"].relative_gap.value == pytest.approx(-0.5)
    assert mc["add1"].gap.ci == results["verifiers"]["mc"]["by_group"]["level"]["add1"]["gap"]["ci"]
    assert data.verifiers["oracle"]["mul1"].auroc.value == 1.0 and data.verifiers["oracle"]["mul1"].auroc.ci is None
    text = "\n".join(tables(data))
    assert text.index("add1") < text.index("mul1") < text.index("mul21") < text.index("d3x2+")
    assert "J(f[w(u)]) mc" in text and "1.000 [" in text


def test_cli_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    run = write_run(tmp_path / "runs" / "arith", G, U)
    assert main(["ladder", str(tmp_path / "runs"), "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "level" in out and "relative gap" in out and "AUROC" in out
    png = tmp_path / "plots" / "ladder-arith.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # default: beside the results
    assert main(["ladder", str(run / "results.json")]) == 0
    assert (run / "ladder-arith.png").is_file()


def test_refuses_results_without_levels(tmp_path, capsys):
    run = write_run(tmp_path / "arith", G, U)
    results = json.loads((run / "results.json").read_text())
    results["generation"]["by_group"] = {}
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(GapbenchError, match="no per-level breakdown"):
        ladder_data(results)
    assert main(["ladder", str(run)]) == 2
    assert "no per-level breakdown" in capsys.readouterr().err
    with pytest.raises(GapbenchError, match="has a per-level breakdown"):
        find_results(tmp_path)  # searched from above: no run with levels
