"""Shared-prefix, continuous-batching generation (harness/models/prefix_generate.py) on the real embedded
model, loaded as gapbench loads ``hf`` on a CPU: ``hf-prefix``. Greedy text against plain HFLM, with rows
joining and leaving, is tested in tests/test_hf_prefix.py."""

from __future__ import annotations

import pytest

from gapbench.harness.models import backends, prefix_generate
from gapbench.tasks import TASKS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def lm(embedded_model):
    spec = backends.resolve("hf", f"pretrained={embedded_model},device=cpu", log=lambda *_: None)
    lm = backends.load(spec, 3)  # fewer rows than requests: rows leave and join mid-call
    assert type(lm).__name__ == "HFPrefixLM"
    return lm


def _prompts(k: int) -> list[str]:
    task = TASKS.get("arith")(levels="add2", per_level=8)
    return [task.generation_prompt(d) for d in task.docs("test")[:k]]


def test_sampling_is_seeded_stops_at_the_stop_sequences_and_mixes_settings(lm):
    import torch

    prompts = _prompts(4)
    sample = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": True, "temperature": 1.0, "top_p": 0.95}
    greedy = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": False, "temperature": 0.0}
    requests = [(p, sample) for p in prompts for _ in range(3)] + [(prompts[0], greedy)]
    torch.manual_seed(7)
    first = prefix_generate.generate(lm, requests)
    finished = []
    torch.manual_seed(7)
    again = prefix_generate.generate(lm, requests, progress=finished.append)
    assert first == again
    assert sum(finished) == len(requests)  # what hf-prefix's progress bar counts
    assert not any("\n\n" in y for y in first)
    assert all(len(lm.tok_encode(y)) <= 24 for y in first)
    assert len(set(first[:12])) > 4  # sampled, not greedy
    assert first[-1] == backends.generate(lm, [(prompts[0], greedy)])[0]


def test_settings_it_does_not_cover_go_to_lm_eval(lm, monkeypatch):
    """None before any generation: hf-prefix's generate_until then runs HFLM's (its answer against
    plain HFLM is in tests/test_hf_prefix.py)."""
    prompt = _prompts(1)[0]
    plain = {"until": ["\n"], "max_gen_toks": 4}
    assert prefix_generate.generate(lm, [(prompt, {**plain, "repetition_penalty": 1.3})]) is None
    assert prefix_generate.generate(lm, [(prompt, plain), (prompt, {**plain, "num_beams": 2})]) is None  # any group falls back
    monkeypatch.setattr(lm, "batch_size_per_gpu", "auto")  # lm-eval sizes batches to the GPU
    assert prefix_generate.generate(lm, [(prompt, plain)]) is None
    monkeypatch.setenv("GAPBENCH_PREFIX_CACHE", "0")
    monkeypatch.setattr(lm, "batch_size_per_gpu", 3)
    assert prefix_generate.generate(lm, [(prompt, plain)]) is None


def test_a_prompts_samples_share_its_prefill_and_keep_their_seeded_tokens(lm, monkeypatch):
    """Each distinct context runs once, its cache copied into its samples' rows; every sample keeps the
    tokens its own seed gives when each request prefills its own copy (the path before sharing)."""
    prompts = _prompts(3)
    sample = {"until": ["\n\n"], "max_gen_toks": 24, "do_sample": True, "temperature": 1.0, "top_p": 0.95}
    requests = [(p, {**sample, "seed": 1000 * k + j}) for k, p in enumerate(prompts) for j in range(4)]
    prefill_rows = []
    forward = lm.model.forward

    def counting(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids.shape[1] > 1:  # a prefill, not a decoding step
            prefill_rows.append(ids.shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(lm.model, "forward", counting)
    shared = prefix_generate.generate(lm, requests)
    rows_shared, prefill_rows[:] = list(prefill_rows), []
    separate = prefix_generate.generate(lm, requests, share=False)
    # the few-shot head once, then each prompt once (three rows per batch, four samples per prompt:
    # a prompt's samples span two admissions, the second takes the kept cache), against one per request
    assert rows_shared[0] == 1 and sum(rows_shared[1:]) == len(prompts)
    assert prefill_rows[0] == 1 and sum(prefill_rows[1:]) == len(requests)
    assert shared == separate
    assert len(set(shared)) > 6  # the seeds differ, so do the samples
    # a sample's tokens come from its seed alone: asked again in another order, among other requests
    reordered = prefix_generate.generate(lm, requests[::-1] + [(prompts[0], {**sample, "seed": 99})])
    assert reordered[: len(requests)][::-1] == shared
