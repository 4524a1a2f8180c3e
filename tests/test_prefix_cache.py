"""The shared-prefix loglikelihood (harness/models/prefix_cache.py): which models it runs on, the
shared prefix, and where it hands a call back to lm-eval. Its answers against plain HFLM are
tested through ``hf-prefix`` in tests/test_hf_prefix.py."""

from __future__ import annotations

import pytest

from gapbench.harness.models import backends, prefix_cache


def _bare(cls, backend="causal"):
    """An instance of an lm-eval model class without loading weights."""
    lm = object.__new__(cls)
    lm.backend = backend
    return lm


def test_supported_models(monkeypatch):
    from lm_eval.models.huggingface import HFLM

    from gapbench.harness.models.hf_prefix import HFPrefixLM

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
def test_empty_contexts_go_to_lm_eval_and_short_ones_stay(embedded_model):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    spec = backends.resolve("hf", f"pretrained={embedded_model},device=cpu", log=lambda *_: None)
    lm = backends.load(spec, 4)
    assert prefix_cache.loglikelihood(lm, [("", "Hello"), ("Hello", " there")]) is None  # lm-eval encodes "" its own way
    out = lm.loglikelihood([Instance("loglikelihood", {}, ("", "Hello"), 0)], disable_tqdm=True)  # HFLM's code answers
    assert len(out) == 1 and out[0][0] < 0
    # contexts shorter than a block share nothing and still run here, as lm-eval scores them
    short = [("Hello there", " friend"), ("Goodbye now", " my old friend")]
    plain = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=4)
    expected = plain.loglikelihood([Instance("loglikelihood", {}, r, i) for i, r in enumerate(short)], disable_tqdm=True)
    got = prefix_cache.loglikelihood(lm, short)
    assert [x for x, _ in got] == pytest.approx([x for x, _ in expected], abs=2e-3) and [g for _, g in got] == [g for _, g in expected]


def test_whole_blocks_leave_every_context_its_last_tokens():
    B = prefix_cache.BLOCK
    assert [prefix_cache.whole_blocks([0] * n) for n in (1, B, B + 1, 2 * B, 2 * B + 1)] == [0, 0, B, B, 2 * B]
    assert prefix_cache.common([1, 2, 3], [1, 2, 4, 5]) == 2 and prefix_cache.common([], [1]) == 0


def test_loglikelihood_calls_the_module_row_function():
    """A loop variable named ``_row`` inside :func:`prefix_cache.loglikelihood` made the name local, so
    the level's ``_row(cache, r)`` called an int (a crash on the first shared block): the name stays
    the module's function."""
    import inspect
    import symtable

    from gapbench.harness.models import prefix_cache

    table = symtable.symtable(inspect.getsource(prefix_cache), "prefix_cache", "exec")
    body = next(c for c in table.get_children() if c.get_name() == "loglikelihood")
    local = {s.get_name() for s in body.get_symbols() if s.is_local()}
    module_functions = {name for name, v in vars(prefix_cache).items() if inspect.isfunction(v) and v.__module__ == prefix_cache.__name__}
    assert "_row" in module_functions and not (local & module_functions)
