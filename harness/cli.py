"""The ``gapbench`` command line."""

from __future__ import annotations

import argparse
import os
import sys

from harness.errors import GapbenchError


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_task_args(text: str | None) -> dict[str, dict]:
    """``gsm8k.num_fewshot=8,arith.levels=add1+add2`` -> {"gsm8k": {"num_fewshot": "8"}, ...}."""
    out: dict[str, dict] = {}
    for part in _csv(text or ""):
        key, sep, value = part.partition("=")
        task, dot, option = key.partition(".")
        if not sep or not dot:
            raise GapbenchError(f"--task-args: {part!r} is not task.option=value (example: gsm8k.num_fewshot=8).")
        out.setdefault(task.strip(), {})[option.strip()] = value.strip()
    return out


def parse_meta(text: str | None) -> dict:
    from harness.models.backends import parse_model_args

    meta: dict = {}
    for key, value in parse_model_args(text).items():
        try:
            meta[key] = float(value) if key in ("params", "tokens", "flops") else (int(value) if key == "round" else value)
        except ValueError:
            raise GapbenchError(f"--model-meta {key}={value!r}: expected a number.") from None
    return meta


def add_run_parser(sub) -> None:
    p = sub.add_parser("run", help="sample, self-verify, grade and score a model on tasks", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", help="hub id, local checkpoint folder, or an lm-eval model name (hf, vllm, local-completions, ...); default: the embedded smollm2-135m-instruct")
    p.add_argument("--model-args", help="lm-eval model arguments, key=value,... (e.g. pretrained=/ckpt,dtype=bfloat16)")
    p.add_argument("--verifier-model", help="a different model g to verify f's samples (cross-verification)")
    p.add_argument("--verifier-model-args")
    p.add_argument("--tasks", default="arith", help="comma-separated task names (see `gapbench tasks`)")
    p.add_argument("--task-args", help="task.option=value,... (e.g. gsm8k.num_fewshot=8,arith.levels=add1+add2)")
    p.add_argument("--verifiers", default="mc", help="comma-separated methods (see `gapbench verifiers`); ensemble:a+b")
    p.add_argument("--n", type=int, default=4, help="samples per prompt (the paper: 128)")
    p.add_argument("--m", type=int, default=1, help="verifications per sample (the paper: 1)")
    p.add_argument("--limit", type=int, help="first N prompts of each task")
    p.add_argument("--split", help="data split (default: the task's)")
    p.add_argument("--data-dir", help="local data folder (e.g. ../shared/data) instead of the hub")
    p.add_argument("--filter", default="quantile:0.5", help="quantile:q (per prompt, keep u >= q-quantile) or threshold:t")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--max-gen-toks", type=int, help="new tokens per sample (default: the task's, else 512)")
    p.add_argument("--verify-max-gen-toks", type=int, default=512, help="new tokens per CoT verification")
    p.add_argument("--batch-size", default="8", help="lm-eval batch size (a number, or auto on GPU)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", help="run directory (default: runs/<model>/<task>-<config hash>); one subfolder per task")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--model-meta", help="params=...,tokens=...,base=...,round=... recorded in results.json")
    p.add_argument("--markdown", action="store_true", help="print tables as GitHub Markdown")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from harness import report
    from harness.runner import RunOptions, Runner

    batch = int(args.batch_size) if str(args.batch_size).isdigit() else args.batch_size
    opts = RunOptions(
        model=args.model,
        model_args=args.model_args,
        verifier_model=args.verifier_model,
        verifier_model_args=args.verifier_model_args,
        tasks=_csv(args.tasks),
        task_args=parse_task_args(args.task_args),
        verifiers=_csv(args.verifiers),
        n=args.n,
        m=args.m,
        limit=args.limit,
        split=args.split,
        data_dir=args.data_dir,
        filter=args.filter,
        temperature=args.temperature,
        top_p=args.top_p,
        max_gen_toks=args.max_gen_toks,
        verify_max_gen_toks=args.verify_max_gen_toks,
        batch_size=batch,
        seed=args.seed,
        out=args.out,
        n_boot=args.n_boot,
        model_meta=parse_meta(args.model_meta),
    )
    runner = Runner(opts, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    for results in runner.run():
        print()
        print(report.render(results, "github" if args.markdown else "simple"))
    return 0


def add_list_parsers(sub) -> None:
    p = sub.add_parser("tasks", help="list the registered tasks")
    p.set_defaults(func=lambda a: _list("task"))
    p = sub.add_parser("verifiers", help="list the registered verification methods")
    p.set_defaults(func=lambda a: _list("verifier"))


def _list(kind: str) -> int:
    from tasks import TASKS
    from verifiers import VERIFIERS

    registry = TASKS if kind == "task" else VERIFIERS
    width = max(len(n) for n in registry.names())
    for name, cls in registry.items():
        print(f"{name:<{width}}  {cls.description}")
    return 0


def add_lm_eval_parser(sub) -> None:
    # main() hands everything after `lm-eval` to lm-eval untouched; this entry is for `gapbench --help`
    p = sub.add_parser(
        "lm-eval",
        help="lm-eval's own command line with gapbench's models registered (--model hf-prefix); every argument goes to lm-eval",
        add_help=False,
    )
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: _lm_eval(a.lm_eval_args))


def _lm_eval(args: list[str]) -> int:
    from harness.models import lm_eval_cli

    return lm_eval_cli.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gapbench",
        description="Generation accuracy, self-verification and the generation-verification gap of language models.",
    )
    sub = parser.add_subparsers(dest="command")
    add_run_parser(sub)
    add_list_parsers(sub)
    add_lm_eval_parser(sub)
    for module in ("leaderboards.cli", "harness.improve.cli", "harness.lm_eval_tasks", "leaderboards.ladder"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    logging.getLogger("lm-eval").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["lm-eval"]:  # lm-eval's arguments, logging and help as they are
        return _lm_eval(given[1:])
    _quiet()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["run", *(argv if argv is not None else sys.argv[1:])])
    try:
        return int(args.func(args) or 0)
    except GapbenchError as exc:
        print(f"gapbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gapbench: interrupted. Everything finished so far is stored; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
