"""results.json is typed: one module reads and writes it, checks its version and fields (naming the
file and field), and makes the JSON Schema that is committed beside it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from boards_support import write_run

from gapbench.harness import results as R
from gapbench.harness.errors import GapbenchError

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(ROOT.glob("leaderboards/*/results/*.json"))


def test_the_committed_schema_is_the_one_the_code_makes():
    assert R.SCHEMA_FILE.is_file(), "run `python -m gapbench.harness.results` to write harness/results.schema.json"
    assert R.SCHEMA_FILE.read_text() == R.schema_text(), "the results classes changed: run `python -m gapbench.harness.results`"


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(R.json_schema())


def test_the_committed_boards_results_are_found():
    # the parametrized test below runs once per file: with none found it would run zero times and pass
    assert len(COMMITTED) >= 9, f"committed board results found: {len(COMMITTED)}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_committed_results_load_validate_and_write_back_byte_identical(path):
    results, raw = R.load(path)
    assert results.schema_version in R.SUPPORTED and results.generation.J.value is not None
    assert results.to_json().encode() == raw  # nothing lost, nothing reordered
    jsonschema.validate(json.loads(raw), R.json_schema())


def test_a_written_run_reads_back_as_the_same_document(tmp_path):
    run = write_run(tmp_path / "arith", {"add1-0": [1, 0], "add1-1": [0, 0]}, {"add1-0": [0.9, 0.2], "add1-1": [0.5, 0.4]})
    results, raw = R.load(run / "results.json")
    assert set(results.verifiers) == {"mc", "oracle"} and results.verifiers["mc"].relative_gap.n_excluded == 0
    assert results.generation.pass_at_k == json.loads(raw)["generation"]["pass@k"]
    R.write(tmp_path / "again.json", results)
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(raw)
    jsonschema.validate(json.loads(raw), R.json_schema())


def _doc(tmp_path) -> dict:
    run = write_run(tmp_path / "arith", {"add1-0": [1, 0]}, {"add1-0": [0.9, 0.2]})
    return json.loads((run / "results.json").read_text())


def _error(tmp_path, doc) -> str:
    path = tmp_path / "bad" / "results.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    with pytest.raises(GapbenchError) as info:
        R.load(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_a_wrongly_typed_field_is_named_with_the_file(tmp_path):
    doc = _doc(tmp_path)
    doc["verifiers"]["mc"]["gap"]["value"] = "abc"
    assert "verifiers.mc.gap.value: expected a number or null, got \"abc\"" in _error(tmp_path, doc)
    doc = _doc(tmp_path)
    doc["generation"]["J"] = {"value": 0.5, "ci": "wide"}
    assert "generation.J.ci: expected a list or null" in _error(tmp_path, doc)
    doc = _doc(tmp_path)
    doc["sizes"]["n"] = 2.5
    assert "sizes.n: expected a whole number" in _error(tmp_path, doc)


def test_a_missing_field_and_another_version_are_refused(tmp_path):
    doc = _doc(tmp_path)
    del doc["task"]
    assert "missing field 'task.name'" in _error(tmp_path, doc)
    doc = _doc(tmp_path)
    doc["schema_version"] = 99
    assert "schema_version 99 is not one this gapbench reads" in _error(tmp_path, doc)
    assert "not a gapbench results.json" in _error(tmp_path, {"hello": 1})


def test_free_form_model_facts_are_kept_in_order(tmp_path):
    doc = _doc(tmp_path)
    doc["model"] = {"id": "m", "backend": "hf", "name": "ckpt-r1", "base": "m", "round": 1, "improve_filter": "mc quantile:0.5"}
    results = R.parse(doc)
    assert (results.model.name, results.model.base, results.model.round) == ("ckpt-r1", "m", 1)
    assert results.model.get("improve_filter") == "mc quantile:0.5" and results.model.get("parameters") is None
    assert list(R.to_json(results.model)) == ["id", "backend", "name", "base", "round", "improve_filter"]


def test_update_and_present_keep_a_block_as_it_was_read():
    """``update`` sets fields and leaves the others as read: one a file left out stays out unless set;
    ``present`` names the fields a block holds."""
    block = R.from_json(R.PositionBias, {"value": 0.25, "matches": 4}, "results.json")
    assert R.present(block) == {"value": 0.25, "matches": 4}
    assert R.to_json(block) == {"value": 0.25, "matches": 4}  # ci was absent: not written as null
    again = R.update(block, matches=6)
    assert R.to_json(again) == {"value": 0.25, "matches": 6} and block.matches == 4
    assert R.to_json(R.update(block, ci=[0.1, 0.4])) == {"value": 0.25, "ci": [0.1, 0.4], "matches": 4}
    assert R.to_json(R.update(block, ci=None)) == {"value": 0.25, "ci": None, "matches": 4}  # set: written, even as null
