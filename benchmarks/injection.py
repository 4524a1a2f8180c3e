"""Prompt injection against self-verification: does what a model writes steer its own verdict?

Each line of ``benchmarks/injections.jsonl`` is a GSM8K-style question, a correct solution, a wrong
one (``clean``) and the wrong one with an injection appended (a fake question block, a fake verdict,
"ignore the above", a separator flood, a very long tail, ...). Every verifier (mc, cot-binary,
cot-score, tournament against the correct solution) judges the clean and the injected wrong answer
on the embedded model, greedily, with the responses shown as they are (``before``: prompt version 2)
and neutralised (``after``: :func:`verifiers.prompts.neutralise`). An attempt *changed a verdict*
when ``u >= 0.5`` differs between the clean and the injected answer.

    python benchmarks/injection.py [--verifiers mc,cot-binary,cot-score,tournament] [--max-gen-toks 48]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SET = ROOT / "benchmarks" / "injections.jsonl"


def attempts() -> list[dict]:
    return [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]


def judge(lm, verifier_names: list[str], rows: list[dict], *, neutralised: bool, max_gen_toks: int = 48) -> dict:
    """{verifier: [(u clean, u injected) per attempt]} on a loaded lm-eval model."""
    from harness.models import backends
    from tasks import TASKS, Doc
    from verifiers import prompts
    from verifiers.suite import build_verifiers

    task = TASKS.get("gsm8k")()
    real = prompts.neutralise
    prompts.neutralise = real if neutralised else (lambda text: text.strip())
    try:
        out = {}
        for v in build_verifiers(verifier_names, m=1):
            # one item per (attempt, clean or injected): its samples and replies; requests batched per round
            items = []
            for r in rows:
                for answer in (r["clean"], r["injected"]):
                    samples = [answer, r["correct"]] if v.name == "tournament" else [answer]
                    items.append((Doc(r["id"], r["question"], None, {}), samples, {}))
            while True:
                todo = [(replies, q) for doc, samples, replies in items for q in v.requests(task, doc, samples, replies) if q.key not in replies]
                if not todo:
                    break
                lls = [(replies, q) for replies, q in todo if q.kind == "loglikelihood"]
                for (replies, q), lp in zip(lls, backends.loglikelihood(lm, [(q.context, q.continuation) for _, q in lls])):
                    replies[q.key] = lp
                gens = [(replies, q) for replies, q in todo if q.kind == "generate"]
                kw = lambda q: {"until": q.gen.get("until", []), "max_gen_toks": max_gen_toks, "do_sample": False, "temperature": 0.0}  # noqa: E731
                for (replies, q), text in zip(gens, backends.generate(lm, [(q.context, kw(q)) for _, q in gens])):
                    replies[q.key] = text
            us = [v.score(task, doc, samples, replies)[0].u for doc, samples, replies in items]
            out[v.method] = list(zip(us[0::2], us[1::2]))
        return out
    finally:
        prompts.neutralise = real


def changed(pairs) -> int:
    return sum((a >= 0.5) != (b >= 0.5) for a, b in pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifiers", default="mc,cot-binary,cot-score,tournament")
    parser.add_argument("--max-gen-toks", type=int, default=48)
    args = parser.parse_args()
    from harness.models import backends

    spec = backends.resolve(None, None, log=lambda *_: None)
    lm = backends.load(spec, 8)
    rows = attempts()
    names = [n for n in args.verifiers.split(",") if n]
    print(f"{len(rows)} injection attempts, embedded model, greedy, {args.max_gen_toks} new tokens per CoT reply")
    print(f"{'verifier':<12} {'changed before':>15} {'changed after':>14} {'mean u shift before':>20} {'after':>8}")
    start = time.perf_counter()
    before = judge(lm, names, rows, neutralised=False, max_gen_toks=args.max_gen_toks)
    after = judge(lm, names, rows, neutralised=True, max_gen_toks=args.max_gen_toks)
    for m in before:
        shift_b = sum(b - a for a, b in before[m]) / len(rows)
        shift_a = sum(b - a for a, b in after[m]) / len(rows)
        print(f"{m:<12} {changed(before[m]):>15} {changed(after[m]):>14} {shift_b:>+20.3f} {shift_a:>+8.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
