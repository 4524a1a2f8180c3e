"""The shared-prefix loglikelihood gives lm-eval's own scores (real embedded model)."""

from __future__ import annotations

import pytest

from harness.models import backends, prefix_cache

pytestmark = pytest.mark.model


def test_shared_prefix_equals_lm_eval(embedded_model, monkeypatch):
    spec = backends.resolve("hf", f"pretrained={embedded_model}", log=lambda *_: None)
    lm = backends.load(spec, 4)
    head = "Question: Is the sky blue on a clear day? Answer Correct or Incorrect.\nAnswer: Correct\n\n" * 3
    requests = [
        (head + "Question: What is 2 + 3? Proposed: 5\nAnswer:", " Correct"),
        (head + "Question: What is 2 + 3? Proposed: 6\nAnswer:", " Incorrect"),
        (head + "Question: Name the capital of France. Proposed: Paris, a city\nAnswer:", " Correct"),
        (head + "Q:", " What is the longest river in the world and how long is it?"),  # multi-token continuation
        (head + "Question: What is 7 * 8? Proposed: 56\nAnswer: ", "Correct"),  # trailing space moves to the continuation
    ]
    assert prefix_cache.supported(lm)
    assert prefix_cache.shared_prefix(prefix_cache.encode(lm, requests)) >= prefix_cache.MIN_SHARED
    shared = prefix_cache.loglikelihood(lm, requests)
    monkeypatch.setenv("GAPBENCH_PREFIX_CACHE", "0")
    assert not prefix_cache.supported(lm)
    plain = backends.loglikelihood(lm, requests)
    assert shared == pytest.approx(plain, abs=2e-3)
    assert len(set(round(x, 3) for x in plain)) == len(plain)  # distinct requests, distinct scores


def test_short_common_prefix_falls_back(embedded_model):
    spec = backends.resolve("hf", f"pretrained={embedded_model}", log=lambda *_: None)
    lm = backends.load(spec, 4)
    assert prefix_cache.loglikelihood(lm, [("Hello there", " friend"), ("Goodbye now", " friend")]) is None
