"""The paper's full sweep on paper: tokens and GPU hours of every base model of
``leaderboards/model_meta.json`` that the paper ran (0.5B to 72B) on its four tasks at 128 samples
per prompt with one verification each, on vLLM at a stated hardware utilisation.

    python benchmarks/paper_scale.py [--mfu 0.25] [--peak-tflops 989] [--verification cot-score|mc]

Nothing here is measured: the response lengths and the utilisation are assumptions, printed with
the table; change them on the command line. Cost model: every token processed (prefilled or
generated) costs 2 N FLOPs (N parameters; attention and the few-shot heads, which prefix caching
computes once per prompt, are left out), and a GPU delivers ``mfu`` x its peak dense bf16 FLOP/s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER_FAMILIES = ("Qwen-1.5", "Qwen-2", "Qwen-2.5", "Llama-2", "Llama-3", "Llama-3.1", "Yi-1.5")
MAX_PARAMS = 8e10  # the paper's models go up to 72B
# task: (prompts, assumed mean response tokens, assumed question tokens)
TASKS = {"gsm8k": (1319, 150, 80), "math": (5000, 350, 100), "nq_open": (3610, 15, 20), "sudoku": (288, 60, 40)}
SAMPLES = 128
VERIFY_GEN = {"cot-score": 150, "mc": 0}  # tokens a verification generates (MC reads 2 log-probabilities)


def models() -> list[tuple[str, str, float]]:
    meta = json.loads((ROOT / "leaderboards" / "model_meta.json").read_text())
    out = []
    for fam in meta["families"]:
        if fam["family"] in PAPER_FAMILIES:
            out += [(fam["family"], size, m["params"]) for size, m in fam["models"].items() if m["params"] <= MAX_PARAMS]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mfu", type=float, default=0.25, help="share of the GPU's peak FLOP/s that batched vLLM sampling reaches (assumed)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak dense bf16 TFLOP/s of one GPU (H100 SXM: 989)")
    p.add_argument("--verification", choices=sorted(VERIFY_GEN), default="cot-score")
    a = p.parse_args()

    samples = sum(n for n, _, _ in TASKS.values()) * SAMPLES
    gen = sum(n * SAMPLES * r for n, r, _ in TASKS.values())
    # verification prefill: the sample's question and response anew (its few-shot head is cached)
    prefill = sum(n * SAMPLES * (r + q) for n, r, q in TASKS.values()) + sum(n * q for n, _, q in TASKS.values())
    vgen = samples * VERIFY_GEN[a.verification]
    tokens = gen + prefill + vgen
    rate = a.mfu * a.peak_tflops * 1e12
    rows = [(fam, size, params, tokens * 2 * params / rate / 3600) for fam, size, params in models()]
    print(f"{len(TASKS)} tasks, {samples:,} samples per model ({SAMPLES} per prompt), one {a.verification} verification each")
    print(f"per model: {gen / 1e6:,.0f}M generated + {vgen / 1e6:,.0f}M verification tokens generated, {prefill / 1e6:,.0f}M prefilled")
    print(f"GPU: {a.peak_tflops:g} TFLOP/s peak x {a.mfu:g} utilisation; 2 N FLOPs per token\n")
    print("| family | model | parameters | GPU hours |")
    print("|---|---|---|---|")
    for fam, size, params, hours in rows:
        print(f"| {fam} | {size} | {params / 1e9:.1f}B | {hours:,.0f} |")
    total = sum(h for *_, h in rows)
    print(f"| **all {len(rows)}** | | | **{total:,.0f}** |")
    print(f"\ntokens processed in all: {tokens * len(rows) / 1e9:,.1f}B; on 8 GPUs: {total / 8 / 24:,.1f} days")


if __name__ == "__main__":
    main()
