"""No board holds a path of the machine that made it: ``leaderboard check`` names the file and the field."""

from __future__ import annotations

import json

from boards_support import write_run

from gapbench.leaderboards.builder import build
from gapbench.leaderboards.check import check_board, machine_paths, paths_in_json, paths_in_text

G = {"add1-0": [1, 0], "add1-1": [0, 1]}
U = {"add1-0": [0.8, 0.3], "add1-1": [0.4, 0.6]}


def test_paths_in_text():
    text = (
        "a /work/main/improve/round-1/model b, (/root/.cache/x) C:\\Users\\me\\ckpt and D:/models/x "
        "but not https://huggingface.co/org/model, results/x.json, 1/2, J(f[w(u)]) or a lone /tmp"
    )
    assert paths_in_text(text) == ["/work/main/improve/round-1/model", "/root/.cache/x", "C:\\Users\\me\\ckpt", "D:/models/x"]
    assert paths_in_text("/home/u/ckpt") == ["/home/u/ckpt"] and paths_in_text("pretrained=/home/u/ckpt") == ["/home/u/ckpt"]


def test_paths_in_json_name_the_field():
    value = {"model": {"id": "m", "model_args": {"pretrained": "/work/x/model"}}, "list": ["ok", "/root/a/b"], "/home/u/k": 1}
    assert paths_in_json(value) == [("model.model_args.pretrained", "/work/x/model"), ("list[1]", "/root/a/b"), ("/home/u/k", "/home/u/k")]


def _board(tmp_path, model: dict):
    run = write_run(tmp_path / "run", G, U, model=model)
    data = json.loads((run / "results.json").read_text())
    data["run"]["dir"] = "runs/x/arith"  # as a run from the repository records it
    (run / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    build([run], tmp_path / "board", "b")
    return tmp_path / "board"


def test_a_board_with_a_machine_path_fails_the_check_naming_file_and_field(tmp_path):
    board = _board(tmp_path / "bad", {"id": "/work/main/improve/round-1/model", "backend": "hf", "model_args": {"pretrained": "/work/main/improve/round-1/model"}})
    found = machine_paths(board)
    results = sorted((board / "results").glob("*.json"))[0]
    assert f"{results}: field model.id holds the machine path '/work/main/improve/round-1/model'" in "\n".join(found)
    assert f"{results}: field model.model_args.pretrained holds" in "\n".join(found)
    assert any(f.startswith(f"{board / 'leaderboard.json'}: field models[0].checkpoint") for f in found)
    assert any(f.startswith(f"{board / 'README.md'}: line ") for f in found)
    report = check_board(board)
    assert not report.ok and set(found) <= set(report.failures)


def test_a_board_named_by_relative_paths_and_names_passes(tmp_path):
    board = _board(tmp_path / "good", {"id": "improve/round-1/model", "backend": "hf", "name": "smollm2-add2-mc-r1", "model_args": {"pretrained": "improve/round-1/model"}})
    assert machine_paths(board) == []
    assert check_board(board).ok


MODEL_TEXT = ("response", "reply")  # samples.jsonl's generated text, verdicts.jsonl's reply


def test_no_committed_run_store_holds_a_path_of_the_machine_that_made_it():
    """The run folders committed beside a board (``leaderboards/*/store``, resumable by the board's
    make.sh) name models and data as they are, never by a path of the machine that ran them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted(p for p in root.glob("leaderboards/*/store/**/*") if p.is_file() and p.suffix in (".json", ".jsonl"))
    for path in files:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.suffix == ".jsonl" else [json.loads(path.read_text())]
        for i, record in enumerate(records):
            # what the models wrote is data, whatever it looks like (a reply may contain "x:\\n"); the
            # fields gapbench writes are checked
            mine = {k: v for k, v in record.items() if k not in MODEL_TEXT} if isinstance(record, dict) else record
            found = paths_in_json(mine)
            assert not found, f"{path.relative_to(root)}, record {i + 1}, holds a path of this machine: {found[:3]}"
    for path in (p for p in files if p.name == "run.json"):
        run = json.loads(path.read_text())
        assert not any(str(v).startswith("/") for v in run["model"]["args"].values()), path
