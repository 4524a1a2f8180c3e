"""The paired sign-flip test of `gapbench leaderboard compare` at small n: false-positive rate and power.

    OMP_NUM_THREADS=1 python benchmarks/paired_null.py [--pairs 4000] [--direct 600] [--seed 0]

Pairs of runs of P prompts x n samples are drawn as in tests/test_compare_validity.py: a prompt's success
rate from Beta(0.6, 0.8), shared by its n samples. Null: both runs share each prompt's rate (the same
checkpoint twice). Power: NEW better by +0.10 on average (spread over the prompts by their room, 1 - p).
The test is on J(f|x), whose per-prompt differences move in steps of 1/n. Three forms, alpha 0.05:

- ``plain``: p = share of sign patterns with |sum| >= the observed |sum| (gapbench's test before);
- ``tie-break``: ties on |sum| broken by |sum of signs| (lexicographic, still exact; gapbench's test now);
- ``mid-p``: P(|sum| > observed) + P(|sum| = observed) / 2 (for reference; not exact, see below).

Two measures of each form's false-positive rate, over the same null pairs:

- **exact**: a pair's differences d_x = j_x / n fix the permutation distribution, which a convolution over
  the integers j_x gives exactly; the pair's conditional size is that distribution's mass where the test
  rejects, and its mean over the pairs is the false-positive rate with no sampling noise from the signs
  (``max`` is the largest conditional size: an exact test never exceeds alpha there);
- **direct**: the share of ``--direct`` pairs on which harness.runs.compare.sign_flip itself (exact
  enumeration up to 12 nonzero prompts, else 10,000 seeded sign patterns) says p < alpha.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapbench.harness.runs.compare import sign_flip  # noqa: E402

ALPHA = 0.05
FORMS = ("plain", "tie-break", "mid-p")


def joint_null(j: np.ndarray) -> np.ndarray:
    """P(|S| = s, |C| = c) under random signs, for S = sum eps_x j_x and C = sum eps_x (j_x > 0 integers):
    a (sum j + 1) x (k + 1) table."""
    M, k = int(j.sum()), len(j)
    table = np.zeros((2 * M + 1, 2 * k + 1))
    table[M, k] = 1.0
    for x in j.astype(int):
        new = np.zeros_like(table)
        new[: 2 * M + 1 - x, :-1] += 0.5 * table[x:, 1:]  # eps = -1
        new[x:, 1:] += 0.5 * table[: 2 * M + 1 - x, :-1]  # eps = +1
        table = new
    folded = table[M:].copy()
    folded[1:] += table[:M][::-1]
    out = folded[:, k:].copy()
    out[:, 1:] += folded[:, :k][:, ::-1]
    return out


def p_tables(j: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The joint null table and each form's p-value at every (|S|, |C|)."""
    g = joint_null(j)
    fs = g.sum(axis=1)
    ge = np.cumsum(fs[::-1])[::-1]
    gt = ge - fs
    tail_c = np.cumsum(g[:, ::-1], axis=1)[:, ::-1]
    shape = g.shape
    return g, {
        "plain": np.broadcast_to(ge[:, None], shape),
        "tie-break": gt[:, None] + tail_c,
        "mid-p": np.broadcast_to((gt + 0.5 * fs)[:, None], shape),
    }


def draw_pairs(rng: np.random.Generator, pairs: int, prompts: int, n: int, shift: float = 0.0) -> np.ndarray:
    """Per pair and prompt: (correct samples of NEW) - (correct samples of BASE), integers."""
    p = rng.beta(0.6, 0.8, size=(pairs, prompts))
    pn = p + shift * (1 - p) / (1 - p).mean(axis=1, keepdims=True) if shift else p
    cb = (rng.random((pairs, prompts, n)) < p[..., None]).sum(axis=-1)
    cn = (rng.random((pairs, prompts, n)) < pn[..., None]).sum(axis=-1)
    return cn - cb


def exact_measures(d: np.ndarray) -> dict[str, dict[str, float]]:
    """Per form: the mean and max conditional size, and the share of pairs rejected (p < alpha)."""
    size = {f: [] for f in FORMS}
    reject = {f: [] for f in FORMS}
    for row in d:
        nz = row[row != 0]
        if nz.size == 0:
            for f in FORMS:
                size[f].append(0.0)
                reject[f].append(False)
            continue
        g, ps = p_tables(np.abs(nz))
        s, c = abs(int(nz.sum())), abs(int(np.sign(nz).sum()))
        for f in FORMS:
            size[f].append(float(g[ps[f] < ALPHA].sum()))
            reject[f].append(bool(ps[f][s, c] < ALPHA))
    return {f: {"size": float(np.mean(size[f])), "max": float(np.max(size[f])), "rejected": float(np.mean(reject[f]))} for f in FORMS}


def direct_rate(d: np.ndarray, n: int, tie_break: bool) -> float:
    return float(np.mean([sign_flip(row / n, tie_break=tie_break).p < ALPHA for row in d]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4000, help="null pairs per setting for the exact measure (default 4000)")
    ap.add_argument("--power-pairs", type=int, default=1000, help="pairs per setting for the power (default 1000)")
    ap.add_argument("--direct", type=int, default=600, help="null pairs per setting run through compare.sign_flip (default 600)")
    ap.add_argument("--prompts", default="10,20,60")
    ap.add_argument("--ns", default="4,8")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    print(f"alpha {ALPHA}; null: the same checkpoint twice, Beta(0.6, 0.8) rates; {args.pairs} null pairs per row (exact), "
          f"{args.direct} through compare.sign_flip (direct), {args.power_pairs} pairs at +0.10 (power); seed {args.seed}")
    print("| n | prompts | FPR plain | FPR tie-break | FPR mid-p | max cond. size plain / tie-break / mid-p "
          "| direct FPR plain / tie-break | power plain | power tie-break | power mid-p |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.ns.split(",")):
        for prompts in (int(x) for x in args.prompts.split(",")):
            rng = np.random.default_rng([args.seed, n, prompts])
            null = exact_measures(draw_pairs(rng, args.pairs, prompts, n))
            power = exact_measures(draw_pairs(rng, args.power_pairs, prompts, n, shift=0.10))
            d = draw_pairs(rng, args.direct, prompts, n)
            direct = [direct_rate(d, n, tb) for tb in (False, True)]
            print(
                f"| {n} | {prompts} | {null['plain']['size']:.4f} | {null['tie-break']['size']:.4f} | {null['mid-p']['size']:.4f} "
                f"| {null['plain']['max']:.3f} / {null['tie-break']['max']:.3f} / {null['mid-p']['max']:.3f} "
                f"| {direct[0]:.3f} / {direct[1]:.3f} "
                f"| {power['plain']['rejected']:.3f} | {power['tie-break']['rejected']:.3f} | {power['mid-p']['rejected']:.3f} |",
                flush=True,
            )
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
