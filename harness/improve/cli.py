"""``gapbench improve``: the self-improvement loop (see :mod:`harness.improve.loop` and docs/improve.md)."""

from __future__ import annotations

import argparse
import sys

from harness.errors import GapbenchError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "improve",
        help="self-improve a model: sample on train prompts, self-verify, filter, fine-tune, repeat (Mind the Gap, Sec. 5)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder of the loop (round-t/{train,eval,sft.jsonl,model,round.json}, summary.*)")
    p.add_argument("--model", help="the base f_0: hub id, local checkpoint folder, or an lm-eval backend with --model-args pretrained=...; default: the embedded smollm2-135m-instruct")
    p.add_argument("--model-args", help="lm-eval model arguments, key=value,... (kept for every round's checkpoint, pretrained= replaced)")
    p.add_argument("--task", default="arith", help="one task (see `gapbench tasks`)")
    p.add_argument("--task-args", help="task.option=value,... (e.g. arith.levels=add2)")
    p.add_argument("--split", default="train", help="split whose prompts are sampled and fine-tuned on")
    p.add_argument("--eval-split", default="test", help="split every f_t is evaluated on")
    p.add_argument("--limit", type=int, help="first N training prompts")
    p.add_argument("--eval-limit", type=int, help="first N evaluation prompts")
    p.add_argument("--data-dir", help="local data folder (e.g. ../shared/data) instead of the hub")
    p.add_argument("--verifier", "--verifiers", dest="verifier", default="mc", help="the verification method that filters (one; ensemble:a+b allowed)")
    p.add_argument("--verifier-model", help="a fixed verifier model instead of f_t's own")
    p.add_argument("--verifier-model-args")
    p.add_argument("--filter", default="quantile:0.5", help="quantile:q or threshold:t on the verifier's u")
    p.add_argument("--oracle-filter", action="store_true", help="keep the samples with g = 1 instead (the STaR-like control; --filter is then only reported)")
    p.add_argument("--n", type=int, default=8, help="samples per training prompt")
    p.add_argument("--eval-n", type=int, help="samples per evaluation prompt (default: --n); pass@k is reported for k = 1..this")
    p.add_argument("--m", type=int, default=1, help="verifications per sample")
    p.add_argument("--rounds", type=int, default=3, help="fine-tuning rounds (f_0 -> f_rounds); may grow when resuming")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--max-gen-toks", type=int, help="new tokens per sample (default: the task's, else 512)")
    p.add_argument("--verify-max-gen-toks", type=int, default=512)
    p.add_argument("--gen-batch-size", default="8", help="lm-eval batch size for sampling and verifying (a number, or auto on GPU)")
    p.add_argument("--lr", type=float, default=2e-5, help="fine-tuning learning rate (AdamW, linear decay)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8, help="fine-tuning examples per optimizer step")
    p.add_argument("--micro-batch-size", type=int, default=4, help="examples per forward pass (gradient accumulation; same result)")
    p.add_argument("--max-steps", type=int, help="stop each fine-tune after this many optimizer steps (smoke tests)")
    p.add_argument("--max-length", type=int, default=2048, help="tokens per training example (the prompt is cut from the left)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the evaluation intervals")
    p.set_defaults(func=cmd_improve)


def options_from_args(args):
    from harness.cli import parse_task_args
    from harness.improve.loop import ImproveOptions

    task_args = parse_task_args(args.task_args)
    other = sorted(set(task_args) - {args.task})
    if other:
        raise GapbenchError(f"--task-args names {', '.join(other)}, which is not --task {args.task}.")
    batch = int(args.gen_batch_size) if str(args.gen_batch_size).isdigit() else args.gen_batch_size
    return ImproveOptions(
        out=args.out,
        model=args.model,
        model_args=args.model_args,
        task=args.task,
        task_args=task_args.get(args.task, {}),
        split=args.split,
        eval_split=args.eval_split,
        limit=args.limit,
        eval_limit=args.eval_limit,
        data_dir=args.data_dir,
        verifier=args.verifier,
        verifier_model=args.verifier_model,
        verifier_model_args=args.verifier_model_args,
        filter=args.filter,
        oracle_filter=args.oracle_filter,
        n=args.n,
        eval_n=args.eval_n,
        m=args.m,
        rounds=args.rounds,
        temperature=args.temperature,
        top_p=args.top_p,
        max_gen_toks=args.max_gen_toks,
        verify_max_gen_toks=args.verify_max_gen_toks,
        gen_batch_size=batch,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        max_steps=args.max_steps,
        max_length=args.max_length,
        seed=args.seed,
        n_boot=args.n_boot,
    )


def cmd_improve(args) -> int:
    from harness.improve.loop import Improver

    improver = Improver(options_from_args(args), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    summary = improver.run()
    print((improver.out / "summary.md").read_text())
    print(f"model calls this invocation: {improver.model_calls}; checkpoints trained: {improver.trained}", file=sys.stderr)
    return 0 if summary else 1
