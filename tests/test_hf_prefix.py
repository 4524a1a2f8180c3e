"""``hf-prefix`` (harness/models/hf_prefix.py): lm-eval's ``hf`` with the shared-prefix paths, as a
registered lm-eval model. The registry, the run identity (unchanged for stored runs), and (marked
``model``) its answers against plain ``HFLM`` on the same weights and lm-eval's command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gapbench.harness.config import RunConfig, config_hash
from gapbench.harness.models import backends, prefix_cache, prefix_generate

ROOT = Path(__file__).resolve().parents[1]


# --- the registry and the run identity (no model) ----------------------------------------------
def test_get_model_finds_the_subclass_after_importing_backends():
    from lm_eval.api.registry import get_model
    from lm_eval.models.huggingface import HFLM

    cls = get_model("hf-prefix")
    assert cls.__name__ == "HFPrefixLM" and cls.__module__ == "gapbench.harness.models.hf_prefix"
    assert issubclass(cls, HFLM) and cls is not HFLM
    assert get_model("hf") is HFLM  # lm-eval's own names are untouched


def test_hf_on_a_cpu_loads_hf_prefix_and_on_a_gpu_stays_lm_evals():
    quiet = {"log": lambda *_: None}
    assert backends.resolve("hf", "pretrained=/ckpt,device=cpu", **quiet).backend == "hf-prefix"
    assert backends.resolve("huggingface", "pretrained=/ckpt,device=cpu", **quiet).backend == "hf-prefix"
    assert backends.resolve("hf", "pretrained=/ckpt,device=cuda", **quiet).backend == "hf"
    assert backends.resolve("hf-prefix", "pretrained=/ckpt,device=cuda", **quiet).backend == "hf-prefix"  # named: kept
    assert backends.resolve("dummy", None, **quiet).backend == "dummy"


# The identity a run stored before hf-prefix existed, and its hash: resumed runs must still match.
OLD_DEFAULT = {"backend": "hf", "args": {"pretrained": "/models/smollm2-135m-instruct"}, "label": "smollm2-135m-instruct"}
OLD_DEFAULT_HASH = "810282b18c5f1168"  # config_hash of OLD_DEFAULT, computed with the code before hf-prefix


def test_the_identity_of_a_default_hf_spec_is_unchanged(monkeypatch):
    from gapbench.harness.models import embedded

    monkeypatch.setattr(embedded, "ensure", lambda log=print, model=None: Path("/models/smollm2-135m-instruct"))
    for model, args in ((None, "device=cpu"), (None, None), ("hf-prefix", "pretrained=/models/smollm2-135m-instruct")):
        spec = backends.resolve(model, args, log=lambda *_: None)
        if model is None:
            assert spec.backend == ("hf-prefix" if spec.args["device"] == "cpu" else "hf")
        identity = spec.identity()
        if model == "hf-prefix":
            identity["label"] = OLD_DEFAULT["label"]  # a named backend is labelled by its folder
        assert identity == OLD_DEFAULT
        assert config_hash(identity) == OLD_DEFAULT_HASH


def test_an_old_run_resumes_under_hf_prefix(tmp_path, monkeypatch):
    """A run.json written with the old identity is accepted by a runner that now loads hf-prefix."""
    from gapbench.harness.models import embedded
    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.harness.store import RunStore

    monkeypatch.setattr(embedded, "ensure", lambda log=print, model=None: Path("/models/smollm2-135m-instruct"))
    runner = Runner(RunOptions(model_args="device=cpu", tasks=["arith"], out=str(tmp_path)), log=lambda *_: None)
    assert runner.spec.backend == "hf-prefix"
    task = runner.tasks[0]
    new = runner.config(task)
    old = RunConfig(**{**new.__dict__, "model": dict(OLD_DEFAULT)})
    assert new.hash() == old.hash()
    store = RunStore(tmp_path / "arith")
    store.open(old)
    store.open(new)  # no "different configuration" refusal


# --- the real model: hf-prefix answers as plain HFLM does ----------------------------------------
@pytest.fixture(scope="module")
def models(embedded_model):
    """(hf-prefix as gapbench loads it, plain lm-eval HFLM on the same weights)."""
    from lm_eval.models.huggingface import HFLM

    spec = backends.resolve("hf", f"pretrained={embedded_model},device=cpu", log=lambda *_: None)
    lm = backends.load(spec, 2)  # fewer rows than requests: rows leave and join mid-call
    plain = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=2)
    assert type(lm).__name__ == "HFPrefixLM" and type(plain) is HFLM
    return lm, plain


def _instances(kind, args):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def _spy(monkeypatch, module, name):
    """Count the calls of module.name that returned an answer (the shared path ran)."""
    real = getattr(module, name)
    ran = []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        ran.append(out is not None)
        return out

    monkeypatch.setattr(module, name, spy)
    return ran


HEAD = "Question: Is the sky blue on a clear day? Answer Correct or Incorrect.\nAnswer: Correct\n\n" * 8  # whole blocks to share
LOGLIKELIHOOD = [
    (HEAD + "Question: Is the sky blue on a clear day? Answer Correct or Incorrect.\nAnswer:", " Correct"),
    (HEAD + "Question: What is 2 + 3? Proposed: 6\nAnswer:", " Incorrect"),
    (HEAD + "Q:", " What is the longest river in the world and how long is it?"),  # multi-token continuation
    (HEAD + "Question: What is 7 * 8? Proposed: 56\nAnswer: ", "Correct"),  # trailing space moves to the continuation; greedy
]


@pytest.mark.model
def test_loglikelihood_equals_plain_hflm(models, monkeypatch):
    lm, plain = models
    ran = _spy(monkeypatch, prefix_cache, "loglikelihood")
    assert prefix_cache.shared_prefix(prefix_cache.encode(lm, LOGLIKELIHOOD)) >= 2 * prefix_cache.BLOCK
    fast = lm.loglikelihood(_instances("loglikelihood", LOGLIKELIHOOD))
    assert ran == [True]
    slow = plain.loglikelihood(_instances("loglikelihood", LOGLIKELIHOOD), disable_tqdm=True)
    assert [x for x, _ in fast] == pytest.approx([x for x, _ in slow], abs=2e-3)
    assert [g for _, g in fast] == [g for _, g in slow] and any(g for _, g in fast)  # is_greedy, as lm-eval computes it
    assert len({round(x, 3) for x, _ in slow}) == len(slow)  # distinct requests, distinct scores
    # gapbench's backends hand Instances to the model and keep the log-probabilities
    assert backends.loglikelihood(lm, LOGLIKELIHOOD) == [x for x, _ in fast]
    # switched off: HFLM's own code answers
    monkeypatch.setenv("GAPBENCH_PREFIX_CACHE", "0")
    assert lm.loglikelihood(_instances("loglikelihood", LOGLIKELIHOOD[:2]), disable_tqdm=True) == slow[:2]
    assert ran == [True, True]  # the two calls above; none while switched off


@pytest.mark.model
def test_a_requests_log_probability_does_not_depend_on_its_call(models):
    """The same float for a request alone, in another order, beside other contexts or without the
    other continuation of its context: shards, resumed runs and merged runs score alike to the bit."""
    lm, _ = models
    short = [("Hello there", " friend"), ("Goodbye now", " friend")]  # no block to share
    every = LOGLIKELIHOOD + short
    together = prefix_cache.loglikelihood(lm, every)
    assert prefix_cache.loglikelihood(lm, every[::-1])[::-1] == together
    assert [prefix_cache.loglikelihood(lm, [r])[0] for r in every] == together
    mc = [LOGLIKELIHOOD[0], (LOGLIKELIHOOD[0][0], " Incorrect")]  # " Incorrect" is two tokens: its row serves both
    assert prefix_cache.loglikelihood(lm, mc)[0] == together[0]
    assert len(lm.tok_encode(" Incorrect")) > 1 and len({x for x, _ in together}) == len(together)


@pytest.mark.model
def test_greedy_generate_until_equals_plain_hflm(models, monkeypatch):
    from gapbench.tasks import TASKS

    lm, plain = models
    task = TASKS.get("arith")(levels="add2", per_level=8)
    prompts = [task.generation_prompt(d) for d in task.docs("test")[:7]]
    head = prompts[0][: prompts[0].rfind("Q:")]  # the few-shot examples
    prompts.append(head + "Q: Count from 1 to 60.\nA: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,")  # the longest: admitted first, runs long
    greedy = {"until": ["\n\n", "Question:"], "max_gen_toks": 40, "do_sample": False, "temperature": 0.0}
    requests = [(p, dict(greedy)) for p in prompts]
    assert prefix_cache.shared_prefix([(lm.tok_encode(p), []) for p in prompts]) >= 32  # a few-shot head to share
    ran = _spy(monkeypatch, prefix_generate, "generate")
    fast = lm.generate_until(_instances("generate_until", requests), disable_tqdm=True)
    assert ran == [True]
    slow = plain.generate_until(_instances("generate_until", requests), disable_tqdm=True)
    assert fast == slow
    lengths = [len(lm.tok_encode(y)) for y in slow]
    # two rows for eight requests: arith answers left early and the others joined while the count ran on
    assert max(lengths[:7]) < 10 and lengths[7] >= 30 and len(set(slow)) > 3
    assert backends.generate(lm, requests[:1]) == fast[:1]
    # settings the loop does not cover go to HFLM's generate_until
    odd = [(prompts[0], {**greedy, "max_gen_toks": 4, "repetition_penalty": 1.3})]
    assert lm.generate_until(_instances("generate_until", odd), disable_tqdm=True) == plain.generate_until(
        _instances("generate_until", odd), disable_tqdm=True
    )
    assert ran == [True, True, False]


# --- lm-eval's command line reaches hf-prefix ---------------------------------------------------
def test_gapbench_lm_eval_hands_the_arguments_to_lm_eval_unchanged(monkeypatch):
    import lm_eval.__main__

    from gapbench.harness.cli import main
    from gapbench.harness.models import lm_eval_cli

    seen = []

    def fake_cli():
        from lm_eval.api.registry import get_model

        seen.append((list(sys.argv), get_model("hf-prefix").__name__, get_model("gapbench-fake").__name__))

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", fake_cli)
    args = ["--model", "hf-prefix", "--model_args", "pretrained=x", "--tasks", "t", "--limit", "2", "-h"]
    assert main(["lm-eval", *args]) == 0
    assert lm_eval_cli.main(args) == 0
    assert seen == [(["lm-eval", *args], "HFPrefixLM", "FakeLM")] * 2


@pytest.mark.model
def test_lm_eval_command_line_runs_hf_prefix(tmp_path, embedded_model):
    from gapbench.harness.cli import main

    folder = tmp_path / "tasks"
    assert main(["lm-eval-tasks", "--out", str(folder), "--tasks", "arith", "--task-args", "arith.levels=add1"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "gapbench.harness.cli", "lm-eval",
        "--model", "hf-prefix", "--model_args", f"pretrained={embedded_model}", "--device", "cpu",
        "--include_path", str(folder), "--tasks", "gapbench_arith", "--limit", "2", "--batch_size", "2",
        "--gen_kwargs", "max_gen_toks=8", "--output_path", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (tmp_path / "out").rglob("results_*.json")
    results = json.loads(path.read_text())
    assert results["config"]["model"] == "hf-prefix"
    assert "acc,none" in results["results"]["gapbench_arith"]
    assert results["n-samples"]["gapbench_arith"]["effective"] == 2


def test_a_run_records_no_path_of_this_machine_and_an_older_record_resumes(tmp_path, monkeypatch):
    """run.json's model identity names an embedded model's cached files by the model, not by where the
    cache lies (so a run folder moves between machines and resumes); a run.json recorded with the
    absolute path resumes and is recorded anew; a different model is still refused."""
    from gapbench.harness.errors import GapbenchError
    from gapbench.harness.models import embedded
    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.harness.store import RunStore

    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path / "cache"))
    folder = embedded.model_dir(embedded.SMOLLM2)
    monkeypatch.setattr(embedded, "ensure", lambda log=print, model=None: folder)
    runner = Runner(RunOptions(model_args="device=cpu", tasks=["arith"], out=str(tmp_path / "out")), log=lambda *_: None)
    new = runner.config(runner.tasks[0])
    assert new.model["args"] == {"pretrained": "smollm2-135m-instruct"}
    assert str(tmp_path) not in json.dumps(new.to_json())
    old = RunConfig(**{**new.__dict__, "model": {**new.model, "args": {"pretrained": str(folder)}}})
    assert old.hash() != new.hash()
    store = RunStore(tmp_path / "out" / "arith")
    store.open(old)
    store.close()
    runner_store = RunStore(tmp_path / "out" / "arith")
    from gapbench.harness.runner import _portable_models

    runner_store.open(new, migrate=_portable_models)  # resumed: no refusal
    runner_store.close()
    recorded = json.loads((tmp_path / "out" / "arith" / "run.json").read_text())
    assert recorded["hash"] == new.hash() and str(tmp_path) not in json.dumps(recorded)
    other = RunConfig(**{**new.__dict__, "model": {**new.model, "args": {"pretrained": str(tmp_path / "elsewhere")}}})
    with pytest.raises(GapbenchError, match="different configuration"):
        RunStore(tmp_path / "out" / "arith").open(other, migrate=_portable_models)
