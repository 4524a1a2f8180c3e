"""The run store and JSONL handling: refusal of a different config, torn lines, file:line errors."""

from __future__ import annotations

import json

import pytest

from gapbench.harness.config import RunConfig, differences
from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import append_jsonl, read_jsonl
from gapbench.harness.store import RunStore


def config(**over) -> RunConfig:
    base = dict(
        model={"backend": "hf", "args": {"pretrained": "m"}, "label": "m"},
        verifier_model=None,
        task={"name": "arith", "version": "1", "options": {"per_level": 5}},
        split="test",
        limit=None,
        n=4,
        m=1,
        sampling={"temperature": 0.7, "top_p": 0.9, "max_gen_toks": 16},
        verification_sampling={"temperature": 0.7, "top_p": 0.9, "max_gen_toks": 512},
        seed=1,
    )
    base.update(over)
    return RunConfig(**base)


def test_same_config_reopens_and_reports_resume(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.open(config()) is False
    store.add_samples([{"doc_id": "a", "sample": 0, "response": "1"}])
    assert RunStore(tmp_path / "run").open(config()) is True


def test_scoring_settings_may_change(tmp_path):
    RunStore(tmp_path).open(config(verifiers=["mc"], filter="quantile:0.5"))
    RunStore(tmp_path).open(config(verifiers=["mc", "cot-score"], filter="threshold:0.8"))
    assert json.loads((tmp_path / "run.json").read_text())["filter"] == "threshold:0.8"


def test_resampling_defaults_come_from_the_runs_record(tmp_path):
    from gapbench.harness.settings import N_BOOT, SEED

    assert RunStore(tmp_path / "none").resampling() == (SEED, N_BOOT)  # no run.json: the settings' defaults
    RunStore(tmp_path).open(config(seed=7))  # a run recorded before n_boot was: the default n_boot
    assert RunStore(tmp_path).resampling() == (7, N_BOOT)
    RunStore(tmp_path).open(config(seed=7), n_boot=30)
    RunStore(tmp_path).open(config(seed=7))  # reopened without n_boot: the recorded one stays
    assert RunStore(tmp_path).resampling() == (7, 30)
    assert RunStore(tmp_path).resampling(seed=0, n_boot=5) == (0, 5)  # the user's own win


def test_different_config_is_refused_naming_the_fields(tmp_path):
    RunStore(tmp_path).open(config())
    with pytest.raises(GapbenchError) as err:
        RunStore(tmp_path).open(config(n=8, task={"name": "arith", "version": "1", "options": {"per_level": 9}}))
    msg = str(err.value)
    assert "n: 4 -> 8" in msg and "task.options.per_level: 5 -> 9" in msg and str(tmp_path) in msg


def test_differences_nested():
    assert differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 0}) == ["a.c: 2 -> 3", 'd: "<absent>" -> 0']


def test_torn_tail_is_dropped_on_open(tmp_path):
    store = RunStore(tmp_path)
    store.open(config())
    store.add_samples([{"doc_id": "a", "sample": 0, "response": "1"}])
    with store.samples_path.open("a") as fh:
        fh.write('{"doc_id": "a", "sample": 1, "resp')  # a kill in the middle of a write
    store.open(config())
    store.add_samples([{"doc_id": "a", "sample": 1, "response": "2"}])
    got = store.samples()
    assert sorted(got["a"]) == [0, 1] and got["a"][1]["response"] == "2"


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\nnot json\n{"a": 4}\n')
    with pytest.raises(GapbenchError, match=r"data\.jsonl:3: not a valid JSON line"):
        list(read_jsonl(path))


def test_missing_field_names_file_line_and_field(tmp_path):
    store = RunStore(tmp_path)
    store.open(config())
    append_jsonl(store.samples_path, [{"doc_id": "a", "sample": 0, "response": "x"}, {"doc_id": "a", "sample": 1}])
    with pytest.raises(GapbenchError, match=r"samples\.jsonl:2: missing field 'response'"):
        store.samples()


def test_timings_accumulate_over_invocations(tmp_path):
    store = RunStore(tmp_path)
    store.open(config())
    store.add_timing("generate", 1.5)
    store.add_timing("generate", 2.0)
    store.add_timing("score", 0.25)
    assert store.timings() == {"generate": 3.5, "score": 0.25}


def test_input_files_are_read_with_their_line_numbers(tmp_path):
    from gapbench.harness.jsonl import read_records

    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert [(r["a"], r["__line__"]) for r in read_records(path)] == [(1, 1), (2, 4)]
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(GapbenchError, match=r"data\.jsonl:3: line does not match requested type; every line must be one JSON object"):
        read_records(path)
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(GapbenchError, match=r"data\.jsonl:2: line contains invalid json"):
        read_records(path)


def test_grades_by_doc_and_sample_and_a_bad_line_named(tmp_path):
    store = RunStore(tmp_path)
    assert store.grades() == {}
    store.write_grades([{"doc_id": "b", "sample": 1, "g": 0, "answer": "3"}, {"doc_id": "b", "sample": 0, "g": 1, "answer": "4"}, {"doc_id": "a", "sample": 0, "g": 1, "answer": None}])
    got = store.grades()
    assert list(got) == ["b", "a"] and sorted(got["b"]) == [0, 1] and got["b"][0]["answer"] == "4" and got["a"][0]["g"] == 1
    store.write_grades([{"doc_id": "a", "sample": 0, "g": 2}])
    with pytest.raises(GapbenchError, match=r"grades.jsonl:1: field 'g' is 2, not 0 or 1"):
        store.grades()


def test_locate_names_the_one_run_of_a_folder(tmp_path):
    from gapbench.harness.store import locate

    (tmp_path / "x" / "arith").mkdir(parents=True)
    (tmp_path / "x" / "arith" / "results.json").write_text("{}")
    assert locate(tmp_path / "x") == tmp_path / "x" / "arith" / "results.json"
    assert locate(tmp_path / "x" / "arith") == tmp_path / "x" / "arith" / "results.json"
    with pytest.raises(GapbenchError, match="has a level"):
        locate(tmp_path / "x", keep=lambda p: False, need="a level")
    with pytest.raises(GapbenchError, match="no such run directory"):
        locate(tmp_path / "nothing")
