"""End to end: every verifier on GSM8K and Sudoku on the real embedded SmolLM2-135M (marked ``model``);
resume after a kill and cross-verification on the fake model (harness/models/fake.py), which is what
they test: the store and the runner, not the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from gapbench.harness import report
from gapbench.harness.results import parse as parse_results
from gapbench.harness.runner import Runner, RunOptions

ALL_VERIFIERS = ["mc", "cot-binary", "cot-score", "tournament", "ensemble", "oracle"]


@pytest.mark.model
def test_every_verifier_on_gsm8k_and_sudoku(tmp_path, shared_data, embedded_model):
    opts = RunOptions(
        tasks=["gsm8k", "sudoku"],
        task_args={"sudoku": {"count": "4"}},
        verifiers=ALL_VERIFIERS,
        n=2,
        limit=2,
        data_dir=str(shared_data),
        max_gen_toks=40,
        verify_max_gen_toks=24,
        n_boot=200,
        out=str(tmp_path),
    )
    runner = Runner(opts, log=lambda *_: None)
    results = runner.run()
    assert [r.task.name for r in results] == ["gsm8k", "sudoku"]
    for r in (x.to_dict() for x in results):
        assert r["schema_version"] == 3 and r["sizes"] == {"n_prompts": 2, "n": 2, "m": 1, "n_samples": 4}
        assert r["model"]["parameters"] > 100_000_000 and r["model"]["id"] == "smollm2-135m-instruct"
        assert r["model"]["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # what boards find the family and FLOPs by
        assert set(r["verifiers"]) == {"mc", "cot-binary", "cot-score", "tournament", "oracle", "ensemble"}
        for method, b in r["verifiers"].items():
            for key in ("J", "J_filtered", "gap", "relative_gap", "verification", "filter", "best_of_n", "pass@k", "maj@k", "unparsed", "sweep"):
                assert key in b, (method, key)
            assert b["J"]["value"] == r["generation"]["J"]["value"]
            assert b["gap"]["value"] == pytest.approx(b["J_filtered"]["value"] - b["J"]["value"])
            assert len(b["J"]["ci"]) == 2 and b["J"]["ci"][0] <= b["J"]["value"] <= b["J"]["ci"][1]
        assert r["verifiers"]["oracle"]["gap"]["value"] >= 0  # the upper bound never loses accuracy
        assert list(r["generation"]["pass@k"]) == ["1", "2"]
        assert r["tokens"]["generated"] > 0 and r["timings"]["generate"] > 0
        assert "verify:cot-score" in r["timings"]
        on_disk = json.loads((tmp_path / r["task"]["name"] / "results.json").read_text())
        assert on_disk["verifiers"].keys() == r["verifiers"].keys()
        table = report.render(parse_results(r))
        assert "tournament" in table and "J(f[w(u)])" in table
    gsm = results[0].to_dict()
    assert set(gsm["generation"]["variants"]) == {"strict", "flexible"}
    # every CoT reply was stored once per (sample, verification)
    verdicts = [json.loads(line) for line in (tmp_path / "gsm8k" / "verdicts.jsonl").read_text().splitlines()]
    keys = Counter((v["doc_id"], v["method"], v["key"]) for v in verdicts)
    assert max(keys.values()) == 1
    assert sum(1 for k in keys if k[1] == "cot-binary") == 4

    # a finished run, run again: no model is even loaded, the results are the same
    again = Runner(opts, log=lambda *_: None)
    results2 = again.run()
    assert not again.model.loaded and again.model.calls == 0
    assert results2[0].to_dict()["verifiers"]["mc"]["gap"] == gsm["verifiers"]["mc"]["gap"]


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_killed_run_resumes_with_every_sample_once(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "gapbench.harness.cli", "run",
        "--model", "gapbench-fake", "--model-args", "arith=0.5,delay=0.05",  # slow enough to be killed mid-run
        "--task-args", "arith.per_level=6,arith.levels=add1+add2",
        "--n", "2", "--verifiers", "mc", "--batch-size", "2", "--out", str(out), "--n-boot", "100",
    ]  # fmt: skip
    samples = out / "arith" / "samples.jsonl"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(_lines(samples)) < 8:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-generation: a chunk may be half done
    proc.wait()
    done_before = len(_lines(samples))
    assert 0 < done_before < 24, "the kill should land inside the generation stage"

    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    records = [json.loads(line) for line in _lines(samples)]
    keys = Counter((r["doc_id"], r["sample"]) for r in records)
    assert len(keys) == 12 * 2 and max(keys.values()) == 1  # every sample exactly once
    timings = [json.loads(line) for line in _lines(out / "arith" / "timings.jsonl")]
    generated = [t["calls"] for t in timings if t["stage"] == "generate"]
    assert generated == [24 - done_before]  # the resumed run asked only for what was missing
    verdict_keys = Counter((v["doc_id"], v["method"], v["key"]) for v in map(json.loads, _lines(out / "arith" / "verdicts.jsonl")))
    assert max(verdict_keys.values()) == 1
    results = json.loads((out / "arith" / "results.json").read_text())
    assert results["sizes"]["n_samples"] == 24 and "stored in" in finished.stdout


def test_cross_verification_uses_the_verifier_model(tmp_path):
    from gapbench.harness.models.fake import NAME

    verifier_replies = tmp_path / "g.json"  # g's own, recognisable log-probabilities
    verifier_replies.write_text(json.dumps([{"continuation": " Correct", "logprob": -0.25}, {"continuation": " Incorrect", "logprob": -1.5}]))
    opts = RunOptions(
        model=NAME,
        model_args="arith=correct",
        tasks=["arith"],
        task_args={"arith": {"levels": "add1", "per_level": "2"}},
        verifiers=["mc"],
        n=2,
        verifier_model=NAME,  # a second model, loaded as another model
        verifier_model_args=f"replies={verifier_replies}",
        n_boot=50,
        out=str(tmp_path / "run"),
    )
    runner = Runner(opts, log=lambda *_: None)
    (results,) = runner.run()
    assert runner.vmodel is not runner.model
    assert runner.model.calls == 4 and runner.vmodel.calls == 8  # 4 samples; 2 options each verified by g
    assert runner.model.lm.calls == {"generate_until": 4} and runner.vmodel.lm.calls == {"loglikelihood": 8}
    assert results.verifier_model.id == NAME and results.verifier_model.model_args == {"replies": str(verifier_replies)}
    assert results.model.model_args == {"arith": "correct"}
    stored = json.loads((tmp_path / "run" / "arith" / "run.json").read_text())
    assert stored["verifier_model"]["args"] == {"replies": str(verifier_replies)} and stored["model"]["args"] == {"arith": "correct"}
    verdicts = [json.loads(line) for line in _lines(tmp_path / "run" / "arith" / "verdicts.jsonl")]
    assert len(verdicts) == 8 and {v["reply"] for v in verdicts} == {-0.25, -1.5}  # answered by g, not by f
    # a checkpoint folder as --verifier-model is an hf model with pretrained=<it> (resolved, not loaded)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    by_path = Runner(RunOptions(**{**opts.__dict__, "verifier_model": str(folder), "verifier_model_args": None}), log=lambda *_: None)
    identity = by_path.config(by_path.tasks[0]).verifier_model
    assert identity["backend"] == "hf" and identity["args"]["pretrained"] == str(folder) and identity["label"] == str(folder)
    assert not by_path.vmodel.loaded
