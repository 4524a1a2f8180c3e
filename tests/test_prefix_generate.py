"""Shared-prefix, continuous-batching generation (harness/models/prefix_generate.py) on the real embedded model."""

from __future__ import annotations

import pytest

from harness.models import backends, prefix_cache, prefix_generate
from tasks import TASKS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def lm(embedded_model):
    spec = backends.resolve("hf", f"pretrained={embedded_model}", log=lambda *_: None)
    return backends.load(spec, 3)  # fewer rows than requests: rows leave and join mid-call


def _prompts(k: int) -> list[str]:
    task = TASKS.get("arith")(levels="add2", per_level=8)
    return [task.generation_prompt(d) for d in task.docs("test")[:k]]


def test_greedy_equals_lm_eval_with_rows_joining_and_leaving(lm, monkeypatch):
    prompts = _prompts(7) + ["Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,"]
    requests = [(p, {"until": ["\n\n", "Question:"], "max_gen_toks": 40, "do_sample": False, "temperature": 0.0}) for p in prompts]
    assert prefix_cache.shared_prefix([(lm.tok_encode(p), []) for p in prompts[:7]]) >= prefix_cache.MIN_SHARED
    fast = prefix_generate.generate(lm, requests)
    monkeypatch.setenv("GAPBENCH_PREFIX_CACHE", "0")
    assert prefix_generate.generate(lm, requests) is None  # the switch turns this path off
    plain = backends.generate(lm, requests)
    assert fast == plain
    assert len(set(plain)) > 3  # the prompts really differ
    lengths = [len(lm.tok_encode(x)) for x in plain]
    assert min(lengths) < 10 and max(lengths) >= 30  # short answers left early, long ones ran on


def test_sampling_is_seeded_stops_at_the_stop_sequences_and_mixes_settings(lm):
    import torch

    prompts = _prompts(4)
    sample = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": True, "temperature": 1.0, "top_p": 0.95}
    greedy = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": False, "temperature": 0.0}
    requests = [(p, sample) for p in prompts for _ in range(3)] + [(prompts[0], greedy)]
    torch.manual_seed(7)
    first = prefix_generate.generate(lm, requests)
    torch.manual_seed(7)
    again = prefix_generate.generate(lm, requests)
    assert first == again
    assert not any("\n\n" in y for y in first)
    assert all(len(lm.tok_encode(y)) <= 24 for y in first)
    assert len(set(first[:12])) > 4  # sampled, not greedy
    assert first[-1] == backends.generate(lm, [(prompts[0], greedy)])[0]


def test_settings_it_does_not_cover_go_to_lm_eval(lm):
    prompts = _prompts(2)
    assert prefix_generate.generate(lm, [(prompts[0], {"until": ["\n"], "max_gen_toks": 4, "repetition_penalty": 1.3})]) is None
    out = backends.generate(lm, [(p, {"until": ["\n"], "max_gen_toks": 4, "do_sample": False, "repetition_penalty": 1.3}) for p in prompts])
    assert len(out) == 2 and all(isinstance(y, str) for y in out)
