"""The vLLM path on a GPU (``--model vllm``), on a tiny randomly initialised Llama
(``make_tiny_llama.py``): generation with a prompt's n samples in one request, MC and tournament
verification, log-probabilities against the transformers path, and an exact resume. Skipped where
CUDA or vLLM is absent (CI has neither); see README.md here for how to run it."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'gapbench[vllm]')")

from gapbench.harness.models import backends  # noqa: E402
from gapbench.harness.runner import Runner, RunOptions  # noqa: E402

pytestmark = pytest.mark.gpu
DTYPE = os.environ.get("GAPBENCH_GPU_DTYPE", "float32")
# log P(continuation | context) of vLLM and of transformers on the same GPU, per request, in nats
TOLERANCE = float(os.environ.get("GAPBENCH_GPU_LOGPROB_TOL", "0.02" if DTYPE == "float32" else "0.15"))
SHARED: dict = {}  # one vLLM engine for every run of this module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    given = os.environ.get("GAPBENCH_TINY_LLAMA")
    if given:
        return Path(given)
    from make_tiny_llama import make

    return make(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def vllm_args(tiny: Path) -> str:
    return f"pretrained={tiny},dtype={DTYPE},gpu_memory_utilization=0.25,max_model_len=2048,enforce_eager=True"


def options(tiny: Path, out: Path, **kw) -> RunOptions:
    base = dict(model="vllm", model_args=vllm_args(tiny), tasks=["arith"], task_args={"arith": {"levels": "add1", "per_level": "4"}},
                n=4, max_gen_toks=8, verify_max_gen_toks=8, verifiers=["mc", "tournament"], n_boot=50, out=str(out))  # fmt: skip
    return RunOptions(**{**base, **kw})


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_generation_sends_a_prompts_n_samples_in_one_request_and_verifies_them(tmp_path, tiny):
    runner = Runner(options(tiny, tmp_path), log=print, models=SHARED)
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


def test_log_probabilities_equal_the_transformers_paths(tiny):
    from gapbench.tasks import TASKS
    from gapbench.verifiers.mc import MC

    task = TASKS.get("arith")(levels="add1", per_level="4")
    requests = [(r.context, r.continuation) for d in task.docs("test", None, None) for r in MC().requests(task, d, [f" {d.target}", " 7"], {})]
    hf = backends.load(backends.resolve("hf", f"pretrained={tiny},device=cuda,dtype={DTYPE}", log=print), 8)
    vllm = Runner(options(tiny, Path("unused")), log=print, models=SHARED).model.lm()
    a, b = backends.loglikelihood(hf, requests), backends.loglikelihood(vllm, requests)
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"vLLM vs transformers, {len(a)} requests, {DTYPE}: worst |delta log P| = {worst:.2e} nats")
    assert len(a) == len(b) == len(requests) and worst <= TOLERANCE, (worst, a[:4], b[:4])


def test_a_resumed_run_draws_exactly_what_an_uninterrupted_one_does(tmp_path, tiny):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    Runner(options(tiny, whole, verifiers=["mc"]), log=print, models=SHARED).run()
    full = lines(whole / "arith" / "samples.jsonl")
    cut.joinpath("arith").mkdir(parents=True)
    shutil.copy(whole / "arith" / "run.json", cut / "arith" / "run.json")
    kept = [r for r in full if r["sample"] < 1 or r["doc_id"] == full[0]["doc_id"]]  # killed after a prompt and one sample of each other
    (cut / "arith" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    Runner(options(tiny, cut, verifiers=["mc"]), log=print, models=SHARED).run()
    resumed = {(r["doc_id"], r["sample"]): r["response"] for r in lines(cut / "arith" / "samples.jsonl")}
    assert resumed == {(r["doc_id"], r["sample"]): r["response"] for r in full}
