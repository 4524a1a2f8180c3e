"""The length bias and the majority echo on simulated runs whose answer is known: within prompts against pooled.

    OMP_NUM_THREADS=1 python benchmarks/rank_bias.py [--prompts 2000] [--n 8] [--seed 0]

Each prompt x has a difficulty d (easier when larger): its n samples are correct with probability
sigmoid(1.5 d), a sample's length is exp(5 - 0.5 d + 0.3 z) (hard prompts get longer answers; z is the
sample's own deviation, independent of g), and its answer is the gold when correct, else one of a few
wrong answers (fewer on easy prompts, so their answers agree more). Three ways of making u:

- ``prompt``: u = sigmoid(2 d + 0.5 e), e the sample's noise: u follows the prompt, ignores the sample's
  length and answer share. The true within-prompt correlations are 0.
- ``length``: u = sigmoid(2 d - A z + B e): inside a prompt u falls with the sample's own length. (u, z) is
  Gaussian with r = -A / sqrt(A^2 + B^2), so the expected Spearman's correlation of m samples is
  ((m - 2) rho_s + 3 tau) / (m + 1) with rho_s = (6/pi) asin(r/2), tau = (2/pi) asin(r); the truth is its
  mean over the prompts the within-prompt figure averages (their stratum sizes m).
- ``share``: u = sigmoid(2 d) + share / 10: inside a prompt u increases with the answer share, so the
  within-prompt correlation is exactly 1 wherever the share varies.

The table gives, per scenario and bias, the truth, the pooled correlation (over all samples of all
prompts) and the within-prompt mean (with its count of prompts), from :func:`harness.metrics.rank_bias`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapbench.harness.metrics import answer_share, rank_bias  # noqa: E402
from gapbench.harness.results import Metric, RankBias  # noqa: E402

A, B = 1.0, 1.0  # the length scenario: u = sigmoid(2 d - A z + B e), r = -A / sqrt(A^2 + B^2)
WRONG_ANSWERS = 4  # at most this many wrong answers per prompt


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(prompts: int, n: int, scenario: str, seed: int = 0) -> dict:
    """G, U, L (lengths) and the answers of one simulated run (prompts x n)."""
    rng = np.random.default_rng([seed, ["prompt", "length", "share"].index(scenario)])
    d = rng.normal(size=(prompts, 1))
    G = (rng.random((prompts, n)) < _sigmoid(1.5 * d)).astype(float)
    z = rng.normal(size=(prompts, n))
    L = np.exp(5.0 - 0.5 * d + 0.3 * z)
    wrong = 1 + (rng.random((prompts, 1)) * WRONG_ANSWERS * _sigmoid(-d)).astype(int)  # 1..4, fewer when easy
    pick = (rng.random((prompts, n)) * wrong).astype(int)
    answers = [[("gold" if G[i, j] else f"wrong{pick[i, j]}") for j in range(n)] for i in range(prompts)]
    share = answer_share(answers)
    e = rng.normal(size=(prompts, n))
    if scenario == "prompt":
        U = _sigmoid(2.0 * d + 0.5 * e)
    elif scenario == "length":
        U = _sigmoid(2.0 * d - A * z + B * e)
    else:
        U = _sigmoid(2.0 * d) * 0.9 + share / 10.0
    return {"G": G, "U": np.broadcast_to(U, G.shape).copy(), "L": L, "share": share}


def expected_spearman(r: float, m: int) -> float:
    """E[Spearman's correlation] of m draws of a bivariate normal with correlation r."""
    rho_s = 6.0 / math.pi * math.asin(r / 2.0)
    tau = 2.0 / math.pi * math.asin(r)
    return ((m - 2) * rho_s + 3.0 * tau) / (m + 1)


class Row(NamedTuple):
    """One line of the table: the scenario, the bias, its true within-prompt value and what rank_bias measured."""

    scenario: str
    bias: str
    truth: float
    measured: RankBias


def rows(prompts: int, n: int, seed: int = 0, n_boot: int = 200) -> list[Row]:
    """scenario, bias, truth, and the measured pooled and within-prompt figures (with their intervals and counts)."""
    idx = np.random.default_rng(seed).integers(0, prompts, size=(n_boot, prompts))
    out = []
    for scenario in ("prompt", "length", "share"):
        s = simulate(prompts, n, scenario, seed)
        G, U = s["G"], s["U"]
        cases = [(f"length g={v}", s["L"], G == v) for v in (0, 1)] + [("majority echo", s["share"], np.ones_like(G, dtype=bool))]
        for name, Y, mask in cases:
            b = rank_bias(U, Y, mask, idx)
            if scenario == "length" and name.startswith("length"):
                m = mask.sum(axis=1)
                m = m[m >= 2]
                truth = float(np.mean([expected_spearman(-A / math.hypot(A, B), int(k)) for k in m]))
            elif scenario == "share" and name == "majority echo":
                truth = 1.0
            else:  # u ignores this covariate inside every prompt
                truth = 0.0
            out.append(Row(scenario, name, truth, b))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"{args.prompts} prompts x {args.n} samples, seed {args.seed}, {args.n_boot} bootstrap resamples (95% intervals)")
    print("| u follows | bias | true (within prompt) | pooled | within prompt | prompts |")
    print("|---|---|---|---|---|---|")
    fmt = lambda x: "n/a" if x is None else f"{x:+.3f}"  # noqa: E731
    def ci(m: Metric) -> str:
        return "" if not m.ci else f" [{m.ci[0]:+.3f}, {m.ci[1]:+.3f}]"

    for r in rows(args.prompts, args.n, args.seed, args.n_boot):
        w, p = r.measured.within_prompt, r.measured.pooled
        assert w is not None and p is not None  # rank_bias sets both (schema 3)
        print(f"| {r.scenario} | {r.bias} | {fmt(r.truth)} | {fmt(p.value)}{ci(p)} | {fmt(w.value)}{ci(w)} | {r.measured.n_prompts} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
