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

from gapbench.harness.runs.compare import mcnemar, sign_flip_p

ALPHA = 0.05
FPR_BAND = (0.03, 0.07)
SIMS = 2000  # pairs of runs per case: the rate's standard error is about 0.005
N_PERM = 2000
PROMPTS = 60
FIXTURE = Path(__file__).parent / "data" / "arith-smollm2-n8-grades.jsonl"


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


def filtered(G: np.ndarray, U: np.ndarray) -> np.ndarray:
    """J(f[w]|x) under quantile:0.5 (keep u at or above the prompt's median), for (..., prompts, n) arrays."""
    cut = np.minimum(np.quantile(U, 0.5, axis=-1), U.max(axis=-1))
    K = U >= cut[..., None]
    return (G * K).sum(axis=-1) / K.sum(axis=-1)


def test_false_positive_rate_of_the_filtered_accuracy_and_the_gap():
    # the same checkpoint twice, 16 samples per prompt, u = a noisy reading of g (AUROC about 0.8)
    rng = np.random.default_rng(7)
    p = rng.beta(0.6, 0.8, size=(SIMS, PROMPTS))
    runs = []
    for _ in range(2):
        G = draw(rng, p, 16).astype(float)
        U = 0.4 * G + 0.6 * rng.random(G.shape)
        runs.append((G.mean(axis=2), filtered(G, U)))
    (Jb, Wb), (Jn, Wn) = runs
    rates = {}
    for name, D in (("J(f[w])", Wn - Wb), ("gap", (Wn - Jn) - (Wb - Jb))):
        pv, _ = sign_flip_p(D, n_perm=N_PERM, seed=1)
        rates[name] = float((pv < ALPHA).mean())
        assert FPR_BAND[0] <= rates[name] <= FPR_BAND[1], (name, rates[name])
    print(f"\nfalse-positive rate, n=16, same checkpoint: J(f[w]) {rates['J(f[w])']:.3f}, gap {rates['gap']:.3f}")


def test_false_positive_rate_on_real_resamplings_of_a_stored_run():
    # a stored run of SmolLM2-135M: each prompt's 8 samples split at random into two halves of 4
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    G = np.array([r["g"] for r in rows], dtype=bool)
    n = G.shape[1]
    rng = np.random.default_rng(11)
    order = np.argsort(rng.random((SIMS, *G.shape)), axis=2)
    split = np.take_along_axis(np.broadcast_to(G, (SIMS, *G.shape)), order, axis=2)
    Gb, Gn = split[..., : n // 2], split[..., n // 2 :]
    new, old = new_rate(Gb, Gn), old_mcnemar_rate(Gb, Gn)
    variable = int(((G.sum(axis=1) > 0) & (G.sum(axis=1) < n)).sum())
    print(f"\nreal re-samplings ({len(rows)} prompts, {variable} with both outcomes, halves of {n // 2}): sign-flip {new:.3f}, old McNemar {old:.3f}")
    assert FPR_BAND[0] <= new <= FPR_BAND[1]
