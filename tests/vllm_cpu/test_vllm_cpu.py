"""The vLLM path (``--model vllm``) on vLLM's CPU backend: the CPU twins of tests/gpu, on the tiny
random Llama (``tests/gpu/make_tiny_llama.py``) and on the embedded SmolLM2-135M-Instruct.

Skipped where vLLM is not importable (tox, CI): ``tests/vllm_cpu/build.sh`` builds vLLM's CPU
backend into its own environment, and README.md here says how to run these with it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

# vLLM's CPU backend: a small KV cache, the engine in this process (one engine per model, shared by
# the tests), and no thread pinning on a machine that other work shares
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
pytest.importorskip("torch")
pytest.importorskip("vllm", reason="vLLM is not installed here (tests/vllm_cpu/build.sh builds its CPU backend)")

from gapbench.harness.models import backends  # noqa: E402
from gapbench.harness.runner import Runner, RunOptions  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
from make_tiny_llama import make  # noqa: E402

# log P(continuation | context), vLLM against transformers, both float32 on this CPU, per request (nats)
TOLERANCE = float(os.environ.get("GAPBENCH_VLLM_CPU_LOGPROB_TOL", "0.02"))
ENGINES: dict[str, dict] = {"tiny": {}, "smol": {}}  # one vLLM engine per model for the module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    given = os.environ.get("GAPBENCH_TINY_LLAMA")
    return Path(given) if given else make(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def vllm_args(path: Path, **extra) -> str:
    return ",".join([f"pretrained={path},dtype=float32,max_model_len=2048,enforce_eager=True", *(f"{k}={v}" for k, v in extra.items())])


def options(path: Path, out: Path, **kw) -> RunOptions:
    base = dict(model="vllm", model_args=vllm_args(path), tasks=["arith"], task_args={"arith": {"levels": "add1", "per_level": "4"}},
                n=4, max_gen_toks=8, verify_max_gen_toks=8, verifiers=["mc", "tournament"], n_boot=50, out=str(out))  # fmt: skip
    return RunOptions(**{**base, **kw})


def vllm_lm(path: Path, engines: dict):
    return Runner(options(path, Path("unused")), log=print, models=engines).model.lm


def hf_lm(path: Path):
    return backends.load(backends.resolve("hf", f"pretrained={path},device=cpu,dtype=float32", log=print), 8)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def mc_requests() -> list[tuple[str, str]]:
    from gapbench.tasks import TASKS
    from gapbench.verifiers.mc import MC

    task = TASKS.get("arith")(levels="add1", per_level="4")
    return [(r.context, r.continuation) for d in task.docs("test", None, None) for r in MC().requests(task, d, [f" {d.target}", " 7"], {})]


def test_generation_sends_a_prompts_n_samples_in_one_request_and_verifies_them(tmp_path, tiny):
    runner = Runner(options(tiny, tmp_path), log=print, models=ENGINES["tiny"])
    result = runner.run()[0].to_dict()
    lm = runner.model._lm
    assert type(lm).__name__ == "SeededVLLM"
    samples = lines(tmp_path / "arith" / "samples.jsonl")
    assert Counter(r["doc_id"] for r in samples) == {d: 4 for d in {r["doc_id"] for r in samples}} and len(samples) == 16
    assert lm.requests_sent == 4  # 4 prompts x 4 samples: one request each
    assert any(len({r["response"] for r in samples if r["doc_id"] == d}) > 1 for d in {r["doc_id"] for r in samples})
    verdicts = lines(tmp_path / "arith" / "verdicts.jsonl")
    assert {v["method"] for v in verdicts} == {"mc", "tournament"}
    assert all(isinstance(v["reply"], float) and v["reply"] <= 0 for v in verdicts if v["method"] == "mc")
    assert result["model"]["backend"] == "vllm" and result["sizes"]["n_samples"] == 16


def test_a_resumed_run_draws_exactly_what_an_uninterrupted_one_does(tmp_path, tiny):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    Runner(options(tiny, whole, verifiers=["mc"]), log=print, models=ENGINES["tiny"]).run()
    full = lines(whole / "arith" / "samples.jsonl")
    cut.joinpath("arith").mkdir(parents=True)
    shutil.copy(whole / "arith" / "run.json", cut / "arith" / "run.json")
    kept = [r for r in full if r["sample"] < 1 or r["doc_id"] == full[0]["doc_id"]]  # killed after a prompt and one sample of each other
    (cut / "arith" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    runner = Runner(options(tiny, cut, verifiers=["mc"]), log=print, models=ENGINES["tiny"])
    runner.run()
    resumed = {(r["doc_id"], r["sample"]): r["response"] for r in lines(cut / "arith" / "samples.jsonl")}
    assert resumed == {(r["doc_id"], r["sample"]): r["response"] for r in full}
    assert len(resumed) == 16 and len(kept) < 16


@pytest.mark.parametrize("which", ["tiny", "smol"])
def test_log_probabilities_equal_the_transformers_paths(which, tiny, embedded_model):
    path = tiny if which == "tiny" else embedded_model
    requests = mc_requests()
    a = backends.loglikelihood(hf_lm(path), requests)
    b = backends.loglikelihood(vllm_lm(path, ENGINES[which]), requests)
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"vLLM-CPU vs transformers ({which}), {len(a)} requests, float32: worst |delta log P| = {worst:.2e} nats")
    assert len(a) == len(b) == len(requests) and worst <= TOLERANCE, (worst, a[:4], b[:4])


def test_prefix_caching_on_and_off_give_the_same_log_probabilities(tiny):
    requests = mc_requests()
    on = vllm_lm(tiny, ENGINES["tiny"])
    first, again = backends.loglikelihood(on, requests), backends.loglikelihood(on, requests)  # the second reads the cache
    off = backends.load(backends.resolve("vllm", vllm_args(tiny, enable_prefix_caching=False, seed=1234), log=print), 8)
    # kept for the module: an in-process engine that is collected tears down vLLM's process-wide
    # parallel state, under the other engines of this process
    ENGINES["off"] = {"lm": off}
    assert off.model.llm_engine.vllm_config.cache_config.enable_prefix_caching is False
    assert on.model.llm_engine.vllm_config.cache_config.enable_prefix_caching is True
    cold = backends.loglikelihood(off, requests)
    worst = max(abs(x - y) for x, y in zip(first + again, cold + cold))
    print(f"prefix caching on vs off, {len(requests)} requests: worst |delta log P| = {worst:.2e} nats")
    assert len(cold) == len(requests) and worst <= 1e-4


def test_stop_sequences_cut_greedy_text_where_the_unstopped_text_has_them(embedded_model):
    lm = vllm_lm(embedded_model, ENGINES["smol"])
    contexts = ["Question: What is 2 + 3?\nAnswer:", "Write three short lines about the sea.\n"]
    free = backends.generate(lm, [(c, {"until": ["@@@@"], "do_sample": False, "max_gen_toks": 48}) for c in contexts])
    cut = backends.generate(lm, [(c, {"until": ["\n"], "do_sample": False, "max_gen_toks": 48}) for c in contexts])
    assert any("\n" in t for t in free), free  # the stop sequence occurs in the free text, so the cut is a real one
    assert cut == [t.split("\n")[0] for t in free]


def test_greedy_text_equals_the_transformers_paths(embedded_model):
    contexts = ["Question: What is 12 + 30?\nAnswer:", "The capital of France is", "def add(a, b):\n"]
    reqs = [(c, {"until": ["\n\n"], "do_sample": False, "max_gen_toks": 24}) for c in contexts]
    a = backends.generate(vllm_lm(embedded_model, ENGINES["smol"]), reqs)
    b = backends.generate(hf_lm(embedded_model), reqs)
    assert a == b and all(a)


def test_the_chat_template_renders_as_the_transformers_paths(embedded_model):
    messages = [{"role": "user", "content": "Q: 1 + 1?\nA: 2"}, {"role": "assistant", "content": "Correct."}, {"role": "user", "content": "Q: 2 + 5?"}]
    a = vllm_lm(embedded_model, ENGINES["smol"]).apply_chat_template(messages, add_generation_prompt=True)
    b = hf_lm(embedded_model).apply_chat_template(messages, add_generation_prompt=True)
    assert a == b and "Q: 2 + 5?" in a and a != "".join(m["content"] for m in messages)
