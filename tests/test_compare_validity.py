"""Is the paired test of `gapbench leaderboard compare` valid? Many pairs of runs are drawn from one
generating process, and the share of them the test calls significant at alpha = 0.05 (its false-positive
rate) must stay within [0.03, 0.07]; the power at a real +0.10 difference is reported.

- Simulated runs: 60 prompts x n samples; a prompt's success rate comes from a Beta distribution (many
  prompts nearly always or never solved, as on real tasks), and its n samples share it (within-prompt
  correlation). Two nulls: both runs share each prompt's rate (the same checkpoint run twice), and two
  checkpoints equally good on average but each better on some prompts (their per-prompt rates are two
  independent draws around the prompt's difficulty).
- Real re-samplings: the samples of a stored run of the embedded SmolLM2-135M (tests/data/, see its
  README) split at random into two halves, one "base" and one "new", many times.

The old test (McNemar over samples paired by index) is measured beside it and printed (pytest -s), never
asserted: its false-positive rate is what this test documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.filters import parse_filter
from harness.metrics import per_prompt_accuracy
from leaderboards.compare import mcnemar, sign_flip_p

ALPHA = 0.05
FPR_BAND = (0.03, 0.07)
SIMS = 2000  # pairs of runs per case: the rate's standard error is about 0.005
N_PERM = 2000
PROMPTS = 60
FIXTURE = Path(__file__).parent / "data" / "arith-smollm2-runs.jsonl"


def old_mcnemar_rate(Gb: np.ndarray, Gn: np.ndarray) -> float:
    """The share of pairs the old test (McNemar over all samples, paired by index) calls significant."""
    b = (Gb & ~Gn).sum(axis=(1, 2))
    c = (~Gb & Gn).sum(axis=(1, 2))
    return float(np.mean([mcnemar(int(x), int(y)).p < ALPHA for x, y in zip(b, c)]))


def new_rate(Gb: np.ndarray, Gn: np.ndarray) -> float:
    p, _ = sign_flip_p(Gn.mean(axis=2) - Gb.mean(axis=2), n_perm=N_PERM, seed=0)
    return float((p < ALPHA).mean())


def draw(rng, rates: np.ndarray, n: int) -> np.ndarray:
    return rng.random((*rates.shape, n)) < rates[..., None]


def test_false_positive_rate_on_simulated_runs():
    rng = np.random.default_rng(2025)
    report = []
    for n in (4, 16):
        # the same checkpoint twice: each prompt's rate shared by both runs
        p = rng.beta(0.6, 0.8, size=(SIMS, PROMPTS))
        Gb, Gn = draw(rng, p, n), draw(rng, p, n)
        same = (new_rate(Gb, Gn), old_mcnemar_rate(Gb, Gn))
        # two checkpoints as good on average, each better on some prompts
        difficulty = rng.beta(0.6, 0.8, size=(SIMS, PROMPTS))
        pb = rng.beta(5 * difficulty + 1e-3, 5 * (1 - difficulty) + 1e-3)
        pn = rng.beta(5 * difficulty + 1e-3, 5 * (1 - difficulty) + 1e-3)
        Gb, Gn = draw(rng, pb, n), draw(rng, pn, n)
        differ = (new_rate(Gb, Gn), old_mcnemar_rate(Gb, Gn))
        # power: NEW is better by +0.10 on average (spread over the prompts by their room, 1 - p)
        shift = 0.10 * (1 - p) / (1 - p).mean(axis=1, keepdims=True)
        Gb, Gn = draw(rng, p, n), draw(rng, p + shift, n)
        power = (new_rate(Gb, Gn), old_mcnemar_rate(Gb, Gn))
        report.append((n, same, differ, power))
        for name, (rate, _) in (("same checkpoint", same), ("equal on average", differ)):
            assert FPR_BAND[0] <= rate <= FPR_BAND[1], (n, name, rate)
        assert power[0] > 0.3  # it does find a real +0.10 difference
    print("\nfalse-positive rate at alpha 0.05 (sign-flip per prompt / old McNemar per sample), and power at +0.10:")
    for n, same, differ, power in report:
        print(
            f"  n={n:2d}, {PROMPTS} prompts: same checkpoint {same[0]:.3f} / {same[1]:.3f}; "
            f"equal on average {differ[0]:.3f} / {differ[1]:.3f}; power at +0.10 {power[0]:.3f} / {power[1]:.3f}"
        )
