"""``gapbench cross``: the generator x verifier matrix. Every model generates once, every model verifies
every model's stored samples, a model added later costs only its row and column; the matrix's table,
heatmap and board section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from boards_support import readme_sections_missing_from_index, write_run

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import load as load_results
from gapbench.harness.settings import RunOptions
from gapbench.leaderboards import cross
from gapbench.leaderboards.matrix import dumps as dumps_matrix
from gapbench.leaderboards.matrix import load as load_matrix

ARGS = dict(task_args={"arith": {"per_level": "3", "levels": "add1+add2"}}, n=3, n_boot=50)


def fake(name: str, share: str) -> str:
    return f"gapbench-fake:pretrained={name};arith={share};seed={name}"


def run(tmp_path, *models, log=None):
    return cross.run_matrix(cross.parse_models(list(models)), RunOptions(**ARGS), tmp_path, log or (lambda *_: None))


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_parse_models():
    assert cross.parse_models(["a,b", "c"]) == [("a", None), ("b", None), ("c", None)]
    assert cross.parse_models(["gapbench-fake:pretrained=x;seed=1", "b"]) == [("gapbench-fake", "pretrained=x,seed=1"), ("b", None)]
    with pytest.raises(GapbenchError, match="fewer than two models"):
        cross.parse_models(["a"])
    with pytest.raises(GapbenchError, match="NAME:key=value"):
        cross.parse_models(["a:", "b"])


def test_every_model_verifies_every_models_stored_samples(tmp_path):
    said = []
    results = run(tmp_path, fake("fa", "0.7"), fake("fb", "0.3"), log=said.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fa", "fa--by--fb", "fb", "fb--by--fa"]
    assert len(results) == 4
    # the off-diagonal cells hold the generator's own samples, taken from its run, not generated again
    for f, g in (("fa", "fb"), ("fb", "fa")):
        own = lines(tmp_path / f / "arith" / "samples.jsonl")
        taken = lines(tmp_path / f"{f}--by--{g}" / "arith" / "samples.jsonl")
        assert taken == own
        assert any(f"took {len(own)} stored samples of {tmp_path / f / 'arith'}" in m for m in said)
        r = load_results(tmp_path / f"{f}--by--{g}" / "arith" / "results.json")[0]
        assert r.model.id == f and r.verifier_model.id == g
        assert "generate" not in r.timings  # no generation in a cross cell
    matrix = cross.cells(results, "mc")
    assert matrix.generators == ["fa", "fb"] and matrix.verifiers == ["fa", "fb"]
    assert [c.is_self for c in matrix.cells] == [True, False, False, True]
    # a row's J(f) is the generator's, whoever verifies
    for f in ("fa", "fb"):
        assert len({repr(matrix.cell(f, g).J) for g in ("fa", "fb")}) == 1


def test_a_matrix_over_fewer_prompts_takes_every_cells_samples_from_longer_own_runs(tmp_path, monkeypatch):
    """--samples-from: the models' own runs over 6 prompts feed a matrix over the first 4. Nothing is
    generated; every cell holds exactly the own run's samples of those prompts; the diagonal is the
    model verifying itself over the 4 (f--by--f); a board holds the 6-prompt runs as its rows and the
    matrix with that diagonal; a missing own run is a clear error."""
    from dataclasses import replace

    from gapbench.harness.cli import main
    from gapbench.harness.runner import Runner

    monkeypatch.chdir(tmp_path)  # relative run folders: a board holds no path of the machine
    own = Path("own")
    models = [fake("fa", "0.7"), fake("fb", "0.3")]
    for (name, args), label in zip(cross.parse_models(models), ("fa", "fb")):
        Runner(RunOptions(**ARGS, model=name, model_args=args, out=str(own / label)), lambda *_: None).run()
    said: list[str] = []
    results = cross.run_matrix(cross.parse_models(models), replace(RunOptions(**ARGS), limit=4), Path("m"), said.append, samples_from=own)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["fa--by--fa", "fa--by--fb", "fb--by--fa", "fb--by--fb"]
    assert len(results) == 4
    for f in ("fa", "fb"):
        longer = lines(own / f / "arith" / "samples.jsonl")
        assert len({r["doc_id"] for r in longer}) == 6
        for g in ("fa", "fb"):
            cell = lines(tmp_path / "m" / f"{f}--by--{g}" / "arith" / "samples.jsonl")
            kept = {r["doc_id"] for r in cell}
            assert len(kept) == 4 and len(cell) == 4 * 3
            assert sorted(cell, key=repr) == sorted((r for r in longer if r["doc_id"] in kept), key=repr)
            r = load_results(tmp_path / "m" / f"{f}--by--{g}" / "arith" / "results.json")[0]
            assert "generate" not in r.timings and r.sizes.n_prompts == 4
            assert r.verifier_model is not None and r.verifier_model.id == g
        assert any(f"took 12 stored samples of {own / f / 'arith'}" in m for m in said)
        # the diagonal takes the own run's MC verdicts of those prompts (same verifier, same settings) and
        # computes none; the other cells' verifier differs, so they compute theirs
        diagonal = tmp_path / "m" / f"{f}--by--{f}" / "arith"
        kept = {r["doc_id"] for r in lines(diagonal / "samples.jsonl")}
        taken = lines(diagonal / "verdicts.jsonl")
        assert taken and taken == [r for r in lines(own / f / "arith" / "verdicts.jsonl") if r["doc_id"] in kept and r["method"] == "mc"]
        assert any(f"took {len(taken)} stored verdicts of {own / f / 'arith'}" in m for m in said)
        assert "verify:mc" not in load_results(diagonal / "results.json")[0].timings
        other = "fb" if f == "fa" else "fa"
        assert "verify:mc" in load_results(tmp_path / "m" / f"{f}--by--{other}" / "arith" / "results.json")[0].timings
    matrix = cross.cells(results, "mc")
    assert [c.is_self for c in matrix.cells] == [True, False, False, True]
    assert {c.n_prompts for c in matrix.cells} == {4}

    # the board: rows from the 6-prompt runs, the matrix (diagonal included) over the 4 prompts
    assert main(["leaderboard", "build", "own", "m", "--out", "board", "--name", "t"]) == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    table = board["tables"][0]
    assert {row["checkpoint"] for row in table["rows"]} == {"fa", "fb"}
    for row in table["rows"]:  # each row is the checkpoint's 6-prompt run
        assert load_results(tmp_path / "board" / row["source"])[0].sizes.n_prompts == 6
    (m,) = table["cross"]
    assert {c["n_prompts"] for c in m["cells"]} == {4}
    diag = {c["generator"]: c for c in m["cells"] if c["self"]}
    fa_own = load_results(tmp_path / "m" / "fa--by--fa" / "arith" / "results.json")[0].verifiers["mc"]
    assert diag["fa"]["gap"]["value"] == round(fa_own.gap.value, 6)
    assert main(["leaderboard", "check", "board"]) == 0

    with pytest.raises(GapbenchError, match="holds no run folder fa/"):
        cross.run_matrix(cross.parse_models(models), RunOptions(**ARGS), tmp_path / "m2", said.append, samples_from=tmp_path / "nowhere")


def test_adding_a_model_costs_only_its_row_and_column(tmp_path):
    run(tmp_path, fake("fa", "0.7"), fake("fb", "0.3"))
    before = {p: p.read_bytes() for name in ("samples.jsonl", "verdicts.jsonl") for p in tmp_path.rglob(name)}
    assert len(before) == 8
    said = []
    results = run(tmp_path, fake("fa", "0.7"), fake("fb", "0.3"), fake("fc", "0.5"), log=said.append)
    assert len(results) == 9
    for path, data in before.items():  # nothing stored before is generated or verified again
        assert path.read_bytes() == data, path
    new_cells = {"fc", "fa--by--fc", "fb--by--fc", "fc--by--fa", "fc--by--fb"}
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == {"fa", "fb", "fa--by--fb", "fb--by--fa"} | new_cells
    matrix = cross.cells(results, "mc")
    assert matrix.generators == ["fa", "fb", "fc"] and len(matrix.cells) == 9


def test_cells_hold_each_results_numbers_with_intervals(tmp_path):
    g = {"add1-0": [1, 0, 1, 0], "add1-1": [0, 0, 1, 1], "add2-0": [1, 1, 0, 0]}
    runs = {
        ("f", "f"): {"add1-0": [0.9, 0.1, 0.8, 0.3], "add1-1": [0.2, 0.1, 0.7, 0.9], "add2-0": [0.6, 0.7, 0.2, 0.1]},
        ("f", "h"): {"add1-0": [0.1, 0.9, 0.2, 0.8], "add1-1": [0.9, 0.8, 0.1, 0.2], "add2-0": [0.3, 0.2, 0.6, 0.7]},
    }
    results = []
    for (f, v), u in runs.items():
        d = write_run(tmp_path / f"{f}-{v}", g, u, model={"id": f, "backend": "hf"})
        data = json.loads((d / "results.json").read_text())
        if v != f:
            data["verifier_model"] = {"id": v, "backend": "hf"}
        (d / "results.json").write_text(json.dumps(data))
        results.append(load_results(d / "results.json")[0])
    matrix = cross.cells(results, "mc")
    assert matrix.generators == ["f"] and matrix.verifiers == ["f", "h"]
    good, bad = matrix.cell("f", "f"), matrix.cell("f", "h")
    assert good is not None and bad is not None and matrix.cell("h", "f") is None
    # u of the diagonal ranks every correct sample first: keeping the top half keeps only correct ones
    assert good.J.value == pytest.approx(0.5) and good.gap.value == pytest.approx(0.5)
    assert good.auroc.value == pytest.approx(1.0) and good.auroc.ci == [1.0, 1.0]
    # h's u ranks them last: the filter keeps only wrong ones, AUROC 0
    assert bad.gap.value == pytest.approx(-0.5) and bad.auroc.value == pytest.approx(0.0)
    assert bad.relative_gap.ci is not None and bad.gap.ci[0] <= -0.5 <= bad.gap.ci[1]
    text = cross.tables(matrix)
    assert "| f | **+0.500 [+0.500, +0.500]** (self) | -0.500 [-0.500, -0.500] |" in text
    assert "| f | **1.000 [1.000, 1.000]** (self) | 0.000 [0.000, 0.000] |" in text
    with pytest.raises(GapbenchError, match="two results for generator f verified by f"):
        cross.cells(results + results[:1], "mc")
    with pytest.raises(GapbenchError, match="has no 'cot-binary' verdicts"):
        cross.cells(results, "cot-binary")


def test_the_command_writes_table_json_and_heatmap_and_a_board_shows_the_matrix(tmp_path, capsys, monkeypatch):
    from gapbench.harness.cli import main
    from gapbench.leaderboards.builder import build
    from gapbench.leaderboards.check import check_board

    monkeypatch.chdir(tmp_path)  # the runs record their folders relative to where they ran: no machine path
    out = tmp_path / "m"
    argv = ["cross", "--models", fake("fa", "0.7"), "--models", fake("fb", "0.3"), "--task-args", "arith.per_level=3,arith.levels=add1+add2",
            "--n", "3", "--n-boot", "50", "--out", "m"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| gap(f, g): generator f \\ verifier g | fa | fb |" in printed and "(self)" in printed
    assert (out / "cross-arith.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = (out / "cross-arith.json").read_text()
    matrix = load_matrix(out / "cross-arith.json")
    assert matrix == cross.read_matrix(out, "arith", "mc") and dumps_matrix(matrix) == written  # the codec writes back its bytes
    assert list(json.loads(written)["cells"][0]) == ["generator", "verifier", "self", "n_prompts", "n", "J", "J_filtered", "gap", "relative_gap", "auroc"]
    board = build([out], tmp_path / "board", "cross", plots=True)
    table = board.board.tables[0]
    assert [r.checkpoint for r in table.rows] == ["fa", "fb"]  # the cross cells are not checkpoint rows
    assert table.cross[0].generators == ["fa", "fb"] and len(table.cross[0].cells) == 4
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "### Generator x verifier (mc)" in readme and "(cross-arith-test.png)" in readme
    assert readme_sections_missing_from_index(tmp_path / "board") == []  # index.html shows every README section
    index = (tmp_path / "board" / "index.html").read_text()
    self_gap = matrix.cell("fa", "fa").gap
    assert f"<td><b>{self_gap.value:+.3f} [" in index and 'src="cross-arith-test.png"' in index  # the matrix's cells and heatmap
    assert (tmp_path / "board" / "cross-arith-test.png").is_file()
    assert len(list((tmp_path / "board" / "results").glob("*--by--*.json"))) == 2
    assert load_results(out / "fa--by--fb" / "arith" / "results.json")[0].run.dir == "m/fa--by--fb/arith"
    report = check_board(tmp_path / "board")
    assert report.ok, report.failures  # rebuilt identically, and no machine path on it


def test_a_damaged_matrix_file_names_the_file_and_the_field(tmp_path):
    from gapbench.harness.results import Metric
    from gapbench.leaderboards.matrix import Cell, Matrix

    m = Metric(0.5, [0.25, 0.75])
    good = Matrix("arith", "test", "mc", ["f"], ["f"], [Cell("f", "f", True, 4, 2, m, m, m, m, Metric(None, None))])
    path = tmp_path / "cross-arith.json"
    path.write_text(dumps_matrix(good))
    assert load_matrix(path) == good and '"self": true' in path.read_text()
    data = json.loads(path.read_text())
    data["cells"][0]["gap"]["value"] = "abc"
    path.write_text(json.dumps(data))
    with pytest.raises(GapbenchError, match=r"cross-arith.json: cells\[0\].gap.value: expected a number or null, got \"abc\".*gapbench cross"):
        load_matrix(path)
    del data["cells"][0]["self"]
    path.write_text(json.dumps(data))
    with pytest.raises(GapbenchError, match=r"cross-arith.json: missing field 'cells\[0\].self'"):
        load_matrix(path)
    path.write_text("{")
    with pytest.raises(GapbenchError, match="cross-arith.json: not valid JSON"):
        load_matrix(path)
