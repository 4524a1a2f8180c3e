"""The fake lm-eval model (harness/models/fake.py): rules, stop strings, determinism, hashes, and
that gapbench finds it by name like any lm-eval model."""

from __future__ import annotations

import json
import math
import random

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.harness.models import backends
from gapbench.harness.models.fake import NAME, FakeLM, evaluate


def rules_file(tmp_path, rules, name="replies.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rules))
    return path


def load(args: str = "", batch_size=8):
    return backends.load(backends.resolve(NAME, args, log=lambda *_: None), batch_size)


ARITH = "Q: What is 1 + 2?\nA: 3\n\nQ: What is {}?\nA:"


def test_the_registered_name_resolves_and_loads_through_backends(tmp_path):
    from lm_eval.api.registry import get_model

    spec = backends.resolve(NAME, f"replies={rules_file(tmp_path, [])},device=cpu", log=lambda *_: None)
    assert spec.backend == NAME and spec.label == NAME and "device" not in spec.identity()["args"]
    lm = backends.load(spec, 4)
    assert isinstance(lm, FakeLM) and get_model(NAME) is FakeLM
    assert get_model("hf").__name__ == "HFLM"  # registering ours leaves lm-eval's own models findable
    meta = backends.metadata(lm, spec)
    assert meta["id"] == NAME and meta["backend"] == NAME and meta["parameters"] is None
    # the arguments lm-eval passes to every model are accepted and ignored
    FakeLM.create_from_arg_string("pretrained=x,device=cpu,dtype=float32", {"batch_size": 8, "max_batch_size": 64, "device": "cuda"})


def test_rules_first_match_wins_with_contains_lists_and_endswith(tmp_path):
    path = rules_file(
        tmp_path,
        [
            {"contains": ["2 + 3", "Q:"], "reply": " 5"},
            {"contains": "2 + 3", "reply": " five"},
            {"endswith": "7 * 6?\nA:", "reply": " 42"},
            {"contains": "x", "continuation": " Correct", "logprob": -0.1},
            {"contains": "x", "logprob": -2.5},
        ],
    )
    lm = load(f"replies={path},default=?")
    gen = {"until": ["\n"], "max_gen_toks": 16}
    out = backends.generate(lm, [("Q: What is 2 + 3?\nA:", gen), ("What is 2 + 3?", gen), ("Q: What is 7 * 6?\nA:", gen), ("7 * 6?\nA: no", gen)])
    assert out == [" 5", " five", " 42", "?"]
    assert backends.loglikelihood(lm, [("x", " Correct"), ("x", " Incorrect"), ("y", " Correct")])[:2] == [-0.1, -2.5]
    assert lm.calls == {"generate_until": 4, "loglikelihood": 3}


def test_stop_strings_cut_at_the_first_one_and_max_gen_toks_limits_words(tmp_path):
    path = rules_file(tmp_path, [{"contains": "go", "reply": " one two\nthree Question: four\n\nfive"}])
    lm = load(f"replies={path}")
    out = backends.generate(
        lm,
        [
            ("go", {"until": ["Question:", "\n"], "max_gen_toks": 50}),  # the earliest stop wins, not the first listed
            ("go", {"until": ["Question:"], "max_gen_toks": 50}),
            ("go", {"until": [], "max_gen_toks": 3}),
            ("go", {"until": "\n\n", "max_gen_toks": 50}),  # a single string, as lm-eval allows
        ],
    )
    assert out == [" one two", " one two\nthree ", " one two\nthree", " one two\nthree Question: four"]


def test_replies_do_not_depend_on_batch_order_or_call_count(tmp_path):
    lm = load("arith=0.5")
    contexts = [ARITH.format(f"{a} + {b}") for a in range(5) for b in range(4)] + [f"free text {k}" for k in range(10)]
    gen = {"until": ["\n\n"], "max_gen_toks": 40}
    pairs = [(c, x) for c in contexts[:12] for x in (" Correct", " Incorrect", " A")]
    first = dict(zip(contexts, backends.generate(lm, [(c, gen) for c in contexts])))
    first_ll = dict(zip(pairs, backends.loglikelihood(lm, pairs)))
    rng = random.Random(0)
    for _ in range(3):
        order = rng.sample(contexts, len(contexts))
        again = load("arith=0.5") if rng.random() < 0.5 else lm  # a fresh instance or the same one, called again
        assert dict(zip(order, backends.generate(again, [(c, gen) for c in order]))) == first
        shuffled = rng.sample(pairs, len(pairs))
        assert dict(zip(shuffled, backends.loglikelihood(again, shuffled))) == first_ll
    assert backends.generate(lm, [(contexts[-1], gen)] * 3) == [first[contexts[-1]]] * 3  # one chunk or several


def test_default_loglikelihood_varies_within_bounds_and_with_the_seed():
    lm, other = load(), load("seed=2")
    pairs = [(f"Question {k}\nAnswer:", opt) for k in range(40) for opt in (" Correct", " Incorrect")]
    lps = backends.loglikelihood(lm, pairs)
    assert all(-5.0 <= x <= -0.05 for x in lps) and len(set(lps)) == len(lps)
    u = [math.exp(a) / (math.exp(a) + math.exp(b)) for a, b in zip(lps[::2], lps[1::2])]  # what MC makes of them
    assert min(u) < 0.2 and max(u) > 0.8
    assert backends.loglikelihood(other, pairs) != lps
    raw = lm.loglikelihood([_instance("loglikelihood", ("Question 1\nAnswer:", " Correct"))])
    assert raw == [(lps[2], lps[2] > math.log(0.5))]  # lm-eval's (logprob, is_greedy)
    rolling = lm.loglikelihood_rolling([_instance("loglikelihood_rolling", ("a b c",))])
    assert len(rolling) == 1 and rolling[0] < 0


def _instance(kind, args):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


def test_default_reply_reads_as_an_answer_a_verdict_and_a_score():
    from gapbench.verifiers.prompts import parse_score, parse_verdict

    lm = load()
    replies = backends.generate(lm, [(f"Question {k}\nCheck:", {"until": ["\n\n"], "max_gen_toks": 64}) for k in range(30)])
    assert {parse_verdict(y) for y in replies} == {0, 1}
    scores = {parse_score(y) for y in replies}
    assert None not in scores and len(scores) > 3
    # cut at a task's stop string, only the number is left
    cut = backends.generate(lm, [("Question 1\nCheck:", {"until": ["\n"], "max_gen_toks": 64})])[0]
    assert cut.strip().isdigit() and replies[1].startswith(cut)
    assert backends.generate(load("default=I do not know"), [("anything", {"until": ["\n"]})]) == ["I do not know"]


def test_arith_mode_answers_the_last_question_of_an_arith_prompt():
    lm = load("arith=correct")
    gen = {"until": ["\n"], "max_gen_toks": 16}
    exprs = ["6 + 5", "8 * 8", "12 - 30", "3 + 4 * 2", "(3 + 4) * 2"]
    assert backends.generate(lm, [(ARITH.format(e), gen) for e in exprs]) == [" 11", " 64", " -18", " 11", " 14"]
    # not an arith generation prompt (a verification prompt asks about a proposed solution): the default
    (other,) = backends.generate(lm, [("Question: What is 6 + 5?\nProposed solution: 5\nCheck:", gen)])
    assert other != " 11"
    half = load("arith=0.5")
    exprs = [f"{a} + {b}" for a in range(10) for b in range(10)]
    right = [y == f" {evaluate(e)}" for e, y in zip(exprs, backends.generate(half, [(ARITH.format(e), gen) for e in exprs]))]
    assert 30 < sum(right) < 70
    wrong = [y for e, y in zip(exprs, backends.generate(half, [(ARITH.format(e), gen) for e in exprs])) if y != f" {evaluate(e)}"]
    assert all(y.strip().lstrip("-").isdigit() for y in wrong)  # wrong, but still a number
    assert all(y == f" {evaluate(e)}" for e, y in zip(exprs, backends.generate(load("arith=1"), [(ARITH.format(e), gen) for e in exprs])))
    with pytest.raises(ValueError, match="not an arithmetic expression"):
        evaluate("__import__('os')")


def test_tokens_are_whitespace_words_and_count_in_backends():
    lm = load()
    assert backends.count_tokens(lm, " one two\n three ") == 3 and backends.count_tokens(lm, "") == 0
    assert lm.tok_encode("a b a") [0] == lm.tok_encode("a")[0]


def test_bad_arguments_and_rules_are_user_errors(tmp_path):
    def refused(args, *words):
        with pytest.raises(GapbenchError) as err:
            load(args)
        assert "did not load" in str(err.value) and all(w in str(err.value) for w in words), str(err.value)

    refused("replys=x.json", "replys", "known: replies")
    refused(f"replies={tmp_path / 'missing.json'}", "missing.json", "cannot read")
    refused(f"replies={rules_file(tmp_path, {'reply': 'x'}, 'obj.json')}", "obj.json", "JSON list")
    refused(f"replies={rules_file(tmp_path, [{'reply': 'x'}, {'contains': 'a'}], 'neither.json')}", "rule 1", "exactly one of")
    refused(f"replies={rules_file(tmp_path, [{'reply': 'x', 'contain': 'a'}], 'typo.json')}", "rule 0", "contain")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[\n{"reply": "x"},\n{oops}\n]')
    refused(f"replies={bad_json}", "bad.json:3")
    refused("arith=most", "arith=most")
    refused("delay=-1", "delay")


def test_a_run_on_the_fake_model_gives_varied_grades_and_u(tmp_path):
    """Every verifier through the runner in well under a second; the numbers are not degenerate."""
    from gapbench.harness.runner import Runner, RunOptions

    opts = RunOptions(
        model=NAME,
        model_args="arith=0.5",
        tasks=["arith"],
        task_args={"arith": {"levels": "add1+add2+mul1", "per_level": "6"}},
        verifiers=["mc", "cot-binary", "cot-score", "tournament", "ensemble", "oracle"],
        n=2,
        n_boot=50,
        out=str(tmp_path),
    )
    runner = Runner(opts, log=lambda *_: None)
    (typed,) = runner.run()
    results = typed.to_dict()
    assert 0.2 < results["generation"]["J"]["value"] < 0.8
    assert results["model"] == {"id": NAME, "backend": NAME, "lm_eval_model": NAME, "model_args": {"arith": "0.5"}, "parameters": None, "revision": None, "architecture": None,
        "weights": {"description": f"the lm-eval model {NAME} (no checkpoint named)", "sha256": None, "digest_of": None}}
    assert runner.model.lm.calls["generate_until"] == 18 * 2 + 18 * 2 * 2  # samples, then CoT binary and score
    for method in ("mc", "cot-binary", "cot-score"):
        auroc = results["verifiers"][method]["verification"]["auroc"]
        assert auroc is not None and 0.0 < auroc < 1.0, (method, auroc)
    assert results["verifiers"]["oracle"]["verification"]["auroc"] == 1.0
    assert results["tokens"]["generated"] == 18 * 2  # one word per reply


def test_an_engine_declares_whether_it_takes_a_seed():
    """An engine says so itself (``takes_seed``); lm-eval's seeded classes are known by class, not by name."""
    from lm_eval.api.model import LM
    from lm_eval.models.api_models import TemplateAPI

    assert backends.takes_seed(FakeLM()) is True
    assert backends.takes_seed(object()) is False

    class Unseeded(LM):
        def loglikelihood(self, requests): ...
        def loglikelihood_rolling(self, requests): ...
        def generate_until(self, requests): ...

    class FakeLMOfAnotherName(Unseeded):  # a name never decides it
        pass

    assert backends.takes_seed(Unseeded()) is False and backends.takes_seed(FakeLMOfAnotherName()) is False
    class Served(TemplateAPI):  # lm-eval's API models send a seed with each request
        def _create_payload(self, *a, **k): ...
        def parse_generations(self, *a, **k): ...
        def parse_logprobs(self, *a, **k): ...

    assert backends.takes_seed(Served.__new__(Served)) is True  # __new__: no server is reached
