"""The vLLM path's plumbing that runs without a GPU: which samples go in one request
(``SamplingParams(n=k, seed=s)`` seeds its children s, s+1, ...), the runner's consecutive seeds
for it, and how ``--model vllm`` resolves. The engine itself runs in tests/gpu."""

from __future__ import annotations

import importlib.util

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.harness.models import backends
from gapbench.harness.models.vllm_seeded import plan
from gapbench.harness.runner import Runner, RunOptions, sample_seed, seeded

KW = {"do_sample": True, "temperature": 0.7, "until": ["\n"]}


def test_a_prompts_consecutive_seeds_go_in_one_request():
    reqs = [("A", {**KW, "seed": 10}), ("B", {**KW, "seed": 50}), ("A", {**KW, "seed": 11}), ("A", {**KW, "seed": 12}), ("B", {**KW, "seed": 51})]
    assert plan(reqs) == [[0, 2, 3], [1, 4]]


def test_gaps_other_settings_and_greedy_requests_split_groups():
    reqs = [
        ("A", {**KW, "seed": 12}), ("A", {**KW, "seed": 10}), ("A", {**KW, "seed": 11}),  # 10, 11, 12 in seed order
        ("A", {**KW, "seed": 14}),  # 13 is missing (stored already): a request of its own
        ("A", {**KW, "temperature": 1.0, "seed": 15}),  # other settings
        ("A", {"do_sample": False, "until": ["\n"]}), ("A", {"do_sample": False, "until": ["\n"]}),  # greedy, unseeded
        ("A", {**KW, "seed": 10}),  # the same seed twice is two draws of one seed: its own request
    ]  # fmt: skip
    groups = plan(reqs)
    seeds = [[reqs[i][1].get("seed") for i in g] for g in groups]
    assert sorted(seeds, key=str) == sorted([[10], [10, 11, 12], [14], [15], [None], [None]], key=str)
    for g in groups:  # one request: one context, one setting, seeds s, s+1, ...
        assert len({(reqs[i][0], str({k: v for k, v in reqs[i][1].items() if k != "seed"})) for i in g}) == 1
    assert sorted(i for g in groups for i in g) == list(range(len(reqs)))


def test_consecutive_sample_seeds_resume_as_one_request_would_have_drawn_them():
    full = [sample_seed(KW, 1234, "doc-7", i, consecutive=True)["seed"] for i in range(8)]
    assert full == [full[0] + i for i in range(8)]
    # a resumed call for samples 3..7: one request seeded full[3], whose children are full[3..7]
    resumed = [("q", sample_seed(KW, 1234, "doc-7", i, consecutive=True)) for i in range(3, 8)]
    assert plan(resumed) == [[0, 1, 2, 3, 4]] and resumed[0][1]["seed"] == full[3]
    # other engines keep a digest of the whole key per sample; greedy requests carry no seed
    assert sample_seed(KW, 1234, "doc-7", 2) == seeded(KW, 1234, "doc-7", 2)
    assert "seed" not in sample_seed({"do_sample": False}, 1234, "doc-7", 2, consecutive=True)


def test_model_vllm_loads_the_seeded_class_and_keeps_its_identity(tmp_path):
    spec = backends.resolve("vllm", "pretrained=/ckpt/x,tensor_parallel_size=2,gpu_memory_utilization=0.5")
    assert spec.backend == backends.VLLM and spec.named_backend() == "vllm"
    assert spec.identity() == {"backend": "vllm", "args": {"pretrained": "/ckpt/x"}, "label": "/ckpt/x"}
    runner = Runner(RunOptions(model="vllm", model_args="pretrained=/ckpt/x", seed=77, out=str(tmp_path)), log=lambda *_: None)
    assert runner.spec.args["seed"] == "77" and runner.consecutive  # --seed reaches the engine
    assert not Runner(RunOptions(model="gapbench-fake", out=str(tmp_path)), log=lambda *_: None).consecutive


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_the_run_stops_with_how_to_install_it():
    with pytest.raises(GapbenchError, match=r"needs vLLM.*gapbench\[vllm\]"):
        backends.load(backends.resolve("vllm", "pretrained=/ckpt/x"), 8)
