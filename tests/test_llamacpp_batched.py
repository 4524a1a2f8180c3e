"""llama.cpp in process with parallel sequences (``--engine llama.cpp-batched``), on the embedded
SmolLM2's own GGUF file: log-probabilities against transformers and against llama.cpp's own
one-request-at-a-time evaluation, sampling with per-request seeds, stop strings, shared prefill,
and a whole run."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed")

from gapbench.harness.models import backends, embedded  # noqa: E402
from gapbench.harness.models.llamacpp_batched import MIN_CHUNK, LlamaCppBatchedLM, request_settings, sample_token  # noqa: E402
from gapbench.harness.runner import Runner, RunOptions  # noqa: E402

pytestmark = pytest.mark.model

LOGPROB_TOLERANCE = 0.3  # Q4_1 kernels with 8-bit activations against the de-quantised float32 weights (as tests/test_llamacpp.py)


@pytest.fixture(scope="module")
def lm(embedded_model):
    gguf = embedded.ensure_gguf(log=lambda *_: None)
    model = LlamaCppBatchedLM(gguf=str(gguf), tokenizer=str(embedded_model), slots=6, n_ctx=4096, n_threads=2)
    yield model
    model.close()


def instances(kind, args):
    return backends._instances(kind, args)


def mc_requests():
    from gapbench.tasks import TASKS
    from gapbench.verifiers.mc import MC

    task = TASKS.get("arith")(levels="add1", per_level="3")
    docs = task.docs("test", None, None)
    return [(r.context, r.continuation) for d in docs for r in MC().requests(task, d, [f" {d.target}", " 7"], {})]


def test_log_probabilities_match_transformers_and_do_not_depend_on_the_call(lm, embedded_model):
    requests = mc_requests()
    hf = backends.load(backends.resolve(None, "device=cpu", log=lambda *_: None), 8)
    a = backends.loglikelihood(hf, requests)
    b = backends.loglikelihood(lm, requests)
    assert len(b) == len(requests) == 12 and all(x < 0 for x in b)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst <= LOGPROB_TOLERANCE, (worst, a, b)
    for k in range(0, len(a), 2):  # u = P(Correct) agrees
        ua, ub = 1 / (1 + math.exp(a[k + 1] - a[k])), 1 / (1 + math.exp(b[k + 1] - b[k]))
        assert abs(ua - ub) <= 0.1, (ua, ub)
    # one request alone, the call reversed, after a generation call: the same floats (every batch of at
    # least MIN_CHUNK tokens; below that llama.cpp's kernels round otherwise, by up to 0.3 nats here)
    alone = [backends.loglikelihood(lm, [r])[0] for r in requests[:3]]
    reverse = backends.loglikelihood(lm, requests[::-1])[::-1]
    backends.generate(lm, [("2 + 2 =", {"until": ["\n"], "max_gen_toks": 4, "do_sample": False})])
    after = backends.loglikelihood(lm, requests[3:6])
    assert alone == b[:3] and reverse == b and after == b[3:6]
    # a continuation's log-probability is the sum of its tokens' (two-token " Incorrect")
    ctx, cont = requests[1]
    assert len(lm._encode_pair(ctx, cont)[1]) >= 1


def test_seeded_samples_are_the_requests_own_whatever_the_call_holds(lm):
    prompt = "Once upon a time, in a small village by the sea,"
    other = "The three primary colours are"
    kw = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": True, "temperature": 1.0, "top_p": 0.95}
    alone = backends.generate(lm, [(prompt, {**kw, "seed": 11}), (prompt, {**kw, "seed": 12})])
    again = backends.generate(lm, [(other, {**kw, "seed": 5}), (prompt, {**kw, "seed": 12}), (prompt, {**kw, "seed": 11})])
    assert again[2] == alone[0] and again[1] == alone[1]
    assert alone[0] != alone[1] and all(t.strip() for t in alone)  # two seeds, two samples
    assert all(len(lm.tok_encode(t)) <= 24 for t in alone + again)


def test_stop_strings_cut_the_text_and_greedy_matches_slots_1(lm, embedded_model):
    prompt = "Count: one, two, three, four,"
    kw = {"until": [" six"], "max_gen_toks": 16, "do_sample": False}
    text = backends.generate(lm, [(prompt, kw)])[0]
    assert " six" not in text and text.strip()
    one = LlamaCppBatchedLM(gguf=str(lm.gguf), tokenizer=str(embedded_model), slots=1, n_ctx=2048, n_threads=2)
    try:
        prompts = [prompt, "The capital of France is", "2 + 2 ="]
        greedy = {"until": ["\n"], "max_gen_toks": 8, "do_sample": False}
        assert backends.generate(one, [(p, greedy) for p in prompts]) == backends.generate(lm, [(p, greedy) for p in prompts])
    finally:
        one.close()


def test_more_samples_than_slots_and_a_shared_head(lm):
    head = "You are a careful assistant. Answer in one word.\n" * 12
    kw = {"until": ["\n"], "max_gen_toks": 6, "do_sample": True, "temperature": 1.0, "top_p": 1.0}
    requests = [(head + f"Q{k}: a colour?\nA:", {**kw, "seed": s}) for k in range(3) for s in range(4)]  # 12 samples, 6 slots
    out = backends.generate(lm, requests)
    assert len(out) == 12 and all(isinstance(t, str) for t in out)
    assert len(lm._shared_head([lm.tok_encode(c) for c, _ in requests])) >= MIN_CHUNK
    assert out == backends.generate(lm, requests)  # the same seeds draw the same samples


def test_sampling_follows_temperature_top_k_and_top_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float64))
    settings = request_settings({"do_sample": True, "temperature": 1.0, "top_p": 0.7})
    draws = Counter(sample_token(logits, settings, np.random.default_rng(s)) for s in range(4000))
    assert set(draws) == {0, 1}  # top-p 0.7 keeps the two most likely
    assert abs(draws[0] / 4000 - 0.5 / 0.8) < 0.03
    greedy = request_settings({"do_sample": False, "temperature": 0.7})
    assert sample_token(logits, greedy, np.random.default_rng(0)) == 0
    topk = request_settings({"do_sample": True, "temperature": 1.0, "top_k": 1})
    assert {sample_token(logits, topk, np.random.default_rng(s)) for s in range(50)} == {0}


def test_a_run_on_the_engine_resumes_without_model_calls(tmp_path, shared_data):
    opts = dict(engine="llama.cpp-batched", model_args="slots=8,n_ctx=8192,n_threads=2", tasks=["gsm8k"], data_dir=str(shared_data), limit=2, n=3,
                max_gen_toks=32, verifiers=["mc", "oracle"], n_boot=100, out=str(tmp_path))  # fmt: skip
    runner = Runner(RunOptions(**opts), log=lambda *_: None)
    assert runner.spec.identity()["backend"] == "llama.cpp-batched"
    assert "slots" not in runner.spec.identity()["args"]
    first = runner.run()[0].to_dict()
    samples = [json.loads(x) for x in (tmp_path / "gsm8k" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and len({s["response"] for s in samples}) > 2
    again = Runner(RunOptions(**opts), log=lambda *_: None)
    second = again.run()[0].to_dict()
    assert again.model._lm is None  # nothing to compute: no model loaded
    assert second["generation"] == first["generation"] and second["verifiers"]["mc"]["gap"] == first["verifiers"]["mc"]["gap"]
    assert first["model"]["backend"] == "llama.cpp-batched"


def test_a_matrix_keeps_each_shared_model_loaded_until_its_last_cell(tmp_path):
    """gapbench cross loads each model once for the whole matrix: a cell's runner must not free a model
    that a later cell verifies with (it did, and llama.cpp then read freed memory: a segmentation
    fault on the first call of the later cell). Two copies of the GGUF are two models here."""
    import shutil

    from gapbench.leaderboards.cross import run_matrix

    gguf = embedded.ensure_gguf(log=lambda *_: None)
    copy = tmp_path / "copy" / "smollm2-copy.gguf"
    copy.parent.mkdir()
    shutil.copyfile(gguf, copy)
    opts = RunOptions(engine="llama.cpp-batched", model_args="slots=4,n_ctx=2048,n_threads=2", tasks=["arith"], task_args={"arith": {"levels": "add1", "per_level": "2"}},
                      n=2, max_gen_toks=8, verifiers=["mc"], n_boot=50, out=str(tmp_path / "x"))  # fmt: skip
    results = run_matrix([("smollm2-135m-instruct", None), (str(copy), None)], opts, tmp_path / "cross", log=lambda *_: None)
    cells = {(r.model.id, r.verifier_model.id if r.verifier_model else r.model.id) for r in results}
    assert len(results) == 4 and len(cells) == 4  # every cell of the 2 x 2 matrix, the last one included
    assert all(r.verifiers["mc"].gap.value is not None and r.sizes.n_samples == 4 for r in results)
