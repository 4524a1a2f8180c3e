"""The shared-prefix loglikelihood (harness/models/prefix_cache.py): which models it runs on, the
shared prefix, and where it hands a call back to lm-eval. Its answers against plain HFLM are
tested through ``hf-prefix`` in tests/test_hf_prefix.py."""

from __future__ import annotations

import pytest

from harness.models import backends, prefix_cache


def _bare(cls, backend="causal"):
    """An instance of an lm-eval model class without loading weights."""
    lm = object.__new__(cls)
    lm.backend = backend
    return lm


def test_supported_models(monkeypatch):
    from lm_eval.models.huggingface import HFLM

    from harness.models.hf_prefix import HFPrefixLM

    class Steered(HFLM):  # another subclass may change what a forward pass means
        pass

    assert prefix_cache.supported(_bare(HFPrefixLM)) and prefix_cache.supported(_bare(HFLM))
    assert not prefix_cache.supported(_bare(Steered))
    assert not prefix_cache.supported(_bare(HFPrefixLM, backend="seq2seq"))
    assert not prefix_cache.supported(object())
    monkeypatch.setenv("GAPBENCH_PREFIX_CACHE", "0")
    assert not prefix_cache.supported(_bare(HFPrefixLM))


def test_shared_prefix_leaves_every_context_a_token_of_its_own():
    assert prefix_cache.shared_prefix([([1, 2, 3, 4], [9]), ([1, 2, 3, 5], [9])]) == 3
    assert prefix_cache.shared_prefix([([1, 2, 3], [9]), ([1, 2, 3], [8])]) == 2
    assert prefix_cache.shared_prefix([([1, 2], [9]), ([3, 2], [9])]) == 0


@pytest.mark.model
def test_short_or_empty_contexts_go_to_lm_eval(embedded_model):
    from lm_eval.api.instance import Instance

    spec = backends.resolve("hf", f"pretrained={embedded_model},device=cpu", log=lambda *_: None)
    lm = backends.load(spec, 4)
    assert prefix_cache.loglikelihood(lm, [("Hello there", " friend"), ("Goodbye now", " friend")]) is None
    assert prefix_cache.loglikelihood(lm, [("", "Hello"), ("Hello", " there")]) is None  # lm-eval encodes "" its own way
    out = lm.loglikelihood([Instance("loglikelihood", {}, ("", "Hello"), 0)], disable_tqdm=True)  # HFLM's code answers
    assert len(out) == 1 and out[0][0] < 0
