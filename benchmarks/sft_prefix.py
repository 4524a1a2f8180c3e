"""Benchmark: one fine-tuning micro-batch with the shared few-shot head run once
(``harness.improve.sft.micro_batch_loss(share_prefix=True)``, the default) against every example
run whole, on the embedded model, in the same run.

    python benchmarks/sft_prefix.py [--task gsm8k --data-dir ../shared/data] [--examples 8]

The examples are the task's few-shot prompts, each with a stand-in response of about
the length of SmolLM2's GSM8K samples that ends in the doc's target. Prints seconds for forward + backward on each path, the speed-up, and the
differences in loss and gradient between the two.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gapbench.harness.improve import sft
    from gapbench.harness.models import embedded as default_model
    from gapbench.tasks import TASKS

    path = default_model.ensure(log=lambda *_: None)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    task = TASKS.get(args.task)()
    docs = task.docs(args.split, data_dir=args.data_dir)[: args.examples]
    # a stand-in response of about the length SmolLM2's GSM8K samples have (30-40 tokens)
    response = " First we add the two amounts, then we take away what was spent, so the result is {t}.\n#### {t}"
    examples = [sft.encode_example(tok, task.generation_prompt(d), sft.completion_text(response.format(t=d.target)), 2048) for d in docs]
    pad = tok.pad_token_id or 0

    def run(share: bool):
        best, loss, grads = None, None, None
        for _ in range(args.repeats):
            model.zero_grad()
            t = time.perf_counter()
            loss = sft.micro_batch_loss(model, examples, pad, "cpu", share_prefix=share)
            loss.backward()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return best, float(loss.detach()), grads

    t_whole, l_whole, g_whole = run(False)
    t_shared, l_shared, g_shared = run(True)
    lengths = [len(e["input_ids"]) for e in examples]
    print(
        f"task {args.task}: {len(examples)} examples, {sum(lengths) / len(lengths):.0f} tokens each on average, "
        f"shared head {sft.shared_prompt_prefix(examples)} tokens ({default_model.NAME}, CPU, {torch.get_num_threads()} threads, best of {args.repeats})"
    )
    print(f"every example whole : {t_whole:7.2f} s")
    print(f"shared head once    : {t_shared:7.2f} s")
    print(f"speed-up            : {t_whole / t_shared:7.2f}x")
    print(f"loss difference     : {abs(l_whole - l_shared):.2e} (of {l_whole:.3f})")
    print(f"gradient difference : {float((g_whole - g_shared).norm() / g_whole.norm()):.2e} (relative L2)")


if __name__ == "__main__":
    main()
