"""The board document's codec (leaderboards/board.py): read back and written, the committed board's
leaderboard.json keeps its bytes; a damaged one is refused naming the file and the field."""

import json
from pathlib import Path

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.leaderboards.board import Board, Table, dumps, load, parse
from gapbench.leaderboards.matrix import Matrix

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "smollm2-gemma3" / "leaderboard.json"


def test_the_committed_board_reads_into_types_and_writes_the_same_bytes():
    board = load(COMMITTED)
    assert isinstance(board, Board) and all(isinstance(t, Table) for t in board.tables)
    crossed = [t for t in board.tables if t.cross]
    assert crossed and isinstance(crossed[0].cross[0], Matrix) and crossed[0].plots.cross
    assert any(c.is_self for c in crossed[0].cross[0].cells)  # "self" in the file
    assert dumps(board) == COMMITTED.read_text(encoding="utf-8")


def test_a_field_left_out_when_unset_stays_out():
    data = json.loads(COMMITTED.read_text())
    plain = next(t for t in data["tables"] if "cross" not in t)
    assert "cross" not in plain["plots"] and all("chat" not in s for s in plain["settings"])
    text = dumps(parse(Board, data))
    assert text.count('"cross": [') == sum("cross" in t for t in data["tables"])


@pytest.mark.parametrize(
    "damage, field",
    [
        (lambda d: d["tables"][0]["rows"][1].pop("verifier"), "tables[0].rows[1].verifier"),
        (lambda d: d["models"][0].__setitem__("uncertain", "no"), "models[0].uncertain"),
        (lambda d: d["tables"][0]["rows"][0]["J"].__setitem__("value", "high"), "tables[0].rows[0].J.value"),
        (lambda d: d.__setitem__("files", {}), "files"),
    ],
)
def test_a_damaged_board_is_refused_naming_the_file_and_the_field(tmp_path, damage, field):
    data = json.loads(COMMITTED.read_text())
    damage(data)
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GapbenchError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: {field}") and "rebuild the board" in str(err.value)


def test_a_file_that_is_no_json_is_refused_naming_it(tmp_path):
    path = tmp_path / "leaderboard.json"
    path.write_text("{not json")
    with pytest.raises(GapbenchError, match="not a board's leaderboard.json"):
        load(path)


def test_readme_lists_each_setting_and_the_floor_through_the_template(tmp_path):
    """README.md (templates/board.md): a table whose checkpoints ran with different settings lists each
    setting; a table at the floor says why; the text ends with one newline."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from boards_support import write_run

    from gapbench.leaderboards.builder import build

    g = {f"add1-{i}": [1 if i == 0 and k == 0 else 0 for k in range(4)] for i in range(30)}
    a = write_run(tmp_path / "a", g, g, model={"id": "ma"})
    b = write_run(tmp_path / "b", g, g, model={"id": "mb"}, sampling={"temperature": 0.3, "top_p": 1.0, "max_gen_toks": 32})
    build([a, b], tmp_path / "board", "floor", plots=False)
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "**The checkpoints of this table were run with different settings; compare their numbers with care:**\n\n- ma: " in readme
    assert "temperature 0.3, top-p 1.0, max 32 tokens" in readme and "\n- mb: " in readme
    assert "\n\nEvery checkpoint here answers fewer than 5% of the prompts" in readme
    assert readme.endswith("--against NEW_RUN_DIR...\n```\n") and "{%" not in readme and "&" not in readme
