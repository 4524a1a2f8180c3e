"""Shared fixtures: the reference data beside the checkout and the embedded model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One thread for the whole session and every process it starts, whatever the caller set. The
# tests that compare runs bit for bit (shards against the whole run, a request alone against in a
# batch) hold at one thread: with 2, torch's CPU kernels split a batch's sums differently and a request
# alone differs from the same request in a batch in the 6th digit (tests/test_hf_prefix.py, measured
# here); and gapbench's own choice (harness/threads.py) moves with what else the machine is doing.
os.environ["OMP_NUM_THREADS"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded SmolLM2-135M-Instruct folder (built from the PyPI wheel on first use)."""
    from gapbench.harness.models import embedded as default_model

    return default_model.ensure(log=lambda *_: None)
