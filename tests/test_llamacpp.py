"""The llama.cpp engine on loopback: the embedded model's GGUF file served by llama.cpp's real
server (llama-cpp-python, the ``llamacpp`` extra), run through lm-eval's ``local-completions``,
checked against the transformers path on the same prompts; and a served model's robustness: a
server killed in mid-run and started again, and one that does not come back."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

pytest.importorskip("llama_cpp.server", reason="the llamacpp extra (llama-cpp-python[server]) is not installed")

from gapbench.harness.errors import GapbenchError  # noqa: E402
from gapbench.harness.models import backends, embedded  # noqa: E402
from gapbench.harness.models.llamacpp import Server  # noqa: E402
from gapbench.harness.runner import Runner, RunOptions  # noqa: E402

pytestmark = pytest.mark.model

# MC log-probabilities of the same requests on llama.cpp (Q4_1 kernels, 8-bit activations) and on
# transformers (the same weights de-quantised to float32) agree to this many nats per continuation
LOGPROB_TOLERANCE = 0.3


def quiet(opts, **kw):
    return Runner(opts, log=lambda *_: None, **kw)


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def gguf(embedded_model):
    return embedded.ensure_gguf(log=lambda *_: None)


@pytest.fixture(scope="module")
def server(gguf):
    """One llama.cpp server for the tests that use a running one (``base_url=``)."""
    s = Server(gguf, n_threads=2, log=lambda *_: None).start()
    yield s
    s.stop()


def test_the_engine_starts_runs_and_stops_its_server(tmp_path, gguf, shared_data):
    opts = RunOptions(engine="llama.cpp", tasks=["gsm8k"], data_dir=str(shared_data), limit=2, n=3, max_gen_toks=24, verify_max_gen_toks=12,
                      verifiers=["mc", "tournament", "cot-binary"], n_boot=100, out=str(tmp_path))  # fmt: skip
    runner = quiet(opts)
    assert runner.spec.identity()["backend"] == "llama.cpp" and runner.spec.args["gguf"] == str(gguf)
    result = runner.run()[0].to_dict()
    lm = runner.model._lm
    assert lm.server is None  # stopped with the run
    samples = lines(tmp_path / "gsm8k" / "samples.jsonl")
    assert Counter(r["doc_id"] for r in samples) == {d: 3 for d in {r["doc_id"] for r in samples}} and len(samples) == 6
    assert all(r["gen_tokens"] is not None and r["gen_tokens"] <= 24 for r in samples)
    assert len({r["response"] for r in samples}) > 2  # sampled: the n samples of a prompt differ
    verdicts = lines(tmp_path / "gsm8k" / "verdicts.jsonl")
    mc = [v["reply"] for v in verdicts if v["method"] == "mc"]
    assert len(mc) == 12 and all(isinstance(x, float) and x < 0 for x in mc)
    assert {v["method"] for v in verdicts} == {"mc", "tournament", "cot-binary"}
    assert result["model"]["backend"] == "llama.cpp" and result["sizes"]["n_samples"] == 6
    assert 0 <= result["verifiers"]["mc"]["J"]["value"] <= 1


def test_mc_log_probabilities_match_the_transformers_path(server, embedded_model):
    from gapbench.tasks import TASKS
    from gapbench.verifiers.mc import MC

    task = TASKS.get("arith")(levels="add1", per_level="3")
    docs = task.docs("test", None, None)
    requests = [(r.context, r.continuation) for d in docs for r in MC().requests(task, d, [f" {d.target}", " 7"], {})]
    hf = backends.load(backends.resolve(None, "device=cpu", log=lambda *_: None), 8)
    cpp = backends.load(backends.resolve(None, f"base_url={server.url}", log=lambda *_: None, engine="llama.cpp"), 1)
    a, b = backends.loglikelihood(hf, requests), backends.loglikelihood(cpp, requests)
    assert len(a) == len(b) == len(requests) == 12
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst <= LOGPROB_TOLERANCE, (worst, a, b)
    # u = P(Correct) of each sample agrees too
    for k in range(0, len(a), 2):
        ua, ub = 1 / (1 + math.exp(a[k + 1] - a[k])), 1 / (1 + math.exp(b[k + 1] - b[k]))
        assert abs(ua - ub) <= 0.1, (ua, ub)


def test_generation_accuracy_matches_the_transformers_path(tmp_path, server):
    base = dict(tasks=["arith"], task_args={"arith": {"levels": "add1+add2", "per_level": "6"}}, n=4, verifiers=["oracle"], n_boot=300)
    hf = quiet(RunOptions(**base, out=str(tmp_path / "hf"))).run()[0].generation.J
    cpp = quiet(RunOptions(**base, engine="llama.cpp", model_args=f"base_url={server.url}", out=str(tmp_path / "cpp"))).run()[0].generation.J
    # each engine's J lies in the other's 95% sampling interval (12 prompts x 4 samples)
    assert hf.ci[0] <= cpp.value <= hf.ci[1] and cpp.ci[0] <= hf.value <= cpp.ci[1], (hf, cpp)


def test_a_server_without_log_probabilities_stops_mc_before_any_model_work(tmp_path, gguf):
    s = Server(gguf, n_threads=2, log=lambda *_: None)
    s.logits_all = False
    s.start()
    try:
        opts = RunOptions(engine="llama.cpp", model_args=f"base_url={s.url}", tasks=["arith"], verifiers=["cot-binary", "mc"], out=str(tmp_path))
        with pytest.raises(GapbenchError, match=r"mc read\(s\) log-probabilities of the prompt, and the server at .* gives none"):
            quiet(opts).run()
        assert not (tmp_path / "arith" / "samples.jsonl").exists()
    finally:
        s.stop()


def test_a_chat_endpoint_stops_mc_at_once():
    spec = backends.ModelSpec("local-chat-completions", {"base_url": "http://127.0.0.1:9/v1/chat/completions"}, "x")
    with pytest.raises(GapbenchError, match="chat-completions endpoint"):
        backends.check_logprobs(spec, ["mc"])
    backends.check_logprobs(spec, [])  # cot verifiers need none


# --- a served model's robustness: the real server killed in mid-run --------------------------------
def _run_cmd(url, out, extra=()):
    return [
        sys.executable, "-m", "gapbench.harness.cli", "run", "--engine", "llama.cpp",
        "--model-args", f"base_url={url},timeout=30,max_retries=8,num_concurrent=2",
        "--task-args", "arith.per_level=8,arith.levels=add1+add2", "--n", "2", "--verifiers", "mc",
        "--batch-size", "2", "--out", str(out), "--n-boot", "100", *extra,
    ]  # fmt: skip


def test_a_server_killed_mid_run_and_restarted_loses_and_duplicates_nothing(tmp_path, gguf):
    s = Server(gguf, n_threads=1, log=lambda *_: None).start()
    out = tmp_path / "run"
    samples = out / "arith" / "samples.jsonl"
    proc = subprocess.Popen(_run_cmd(s.url, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(lines(samples)) < 4:
            time.sleep(0.2)
        os.kill(s.proc.pid, signal.SIGKILL)  # the server dies in mid-run
        s.proc.wait()
        time.sleep(2)
        restarted = Server(gguf, port=s.port, n_threads=1, log=lambda *_: None).start()  # back on the same port
        try:
            stdout, stderr = proc.communicate(timeout=600)
        finally:
            restarted.stop()
    finally:
        s.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]  # the run went on through the retries
    keys = Counter((r["doc_id"], r["sample"]) for r in lines(samples))
    assert len(keys) == 16 * 2 and max(keys.values()) == 1
    verdicts = Counter((v["doc_id"], v["key"]) for v in lines(out / "arith" / "verdicts.jsonl"))
    assert len(verdicts) == 16 * 2 * 2 and max(verdicts.values()) == 1
    assert json.loads((out / "arith" / "results.json").read_text())["sizes"]["n_samples"] == 32


def test_a_server_that_does_not_come_back_stops_the_run_and_the_same_command_resumes(tmp_path, gguf):
    s = Server(gguf, n_threads=1, log=lambda *_: None).start()
    out = tmp_path / "run"
    samples = out / "arith" / "samples.jsonl"
    cmd = _run_cmd(s.url, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(lines(samples)) < 4:
            time.sleep(0.2)
        s.stop()  # and it stays down
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr[-2000:]
    assert "did not answer" in stderr and "run the same command again" in stderr
    done = len(lines(samples))
    assert 0 < done < 32

    s2 = Server(gguf, port=s.port, n_threads=1, log=lambda *_: None).start()
    try:
        finished = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        s2.stop()
    assert finished.returncode == 0, finished.stderr[-2000:]
    keys = Counter((r["doc_id"], r["sample"]) for r in lines(samples))
    assert len(keys) == 32 and max(keys.values()) == 1
    timings = [json.loads(x) for x in (out / "arith" / "timings.jsonl").read_text().splitlines()]
    assert [t["calls"] for t in timings if t["stage"] == "generate"][-1] == 32 - done  # only what was missing
