"""What ``gapbench improve`` takes: :class:`ImproveOptions`, its command-line options (made from
the fields, as :class:`harness.settings.RunOptions` makes ``gapbench run``'s), and which of them identify
a loop's out dir. summary.json records them as its ``settings``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from gapbench.harness.improve import sft
from gapbench.harness.settings import inherit, option, parse_task_args

# settings that may change between invocations of one out dir: they do not change what is computed
# (task_args: the resolved task configuration, defaults included, is compared instead)
NOT_IDENTITY = ("out", "rounds", "gen_batch_size", "micro_batch_size", "n_boot", "data_dir", "task_args")


@dataclass
class ImproveOptions:
    """Everything ``gapbench improve`` takes. The fields it shares with a run (``inherit``) take their
    defaults and help from :class:`harness.settings.RunOptions`; ``run_options`` derives each round's
    runs from them."""

    out: str = field(metadata={"help": "folder of the loop (round-t/{train,eval,sft.jsonl,model,round.json}, summary.*)"})
    model: str | None = inherit("model", help="the base f_0: hub id, local checkpoint folder, or an lm-eval backend with --model-args pretrained=...; default: the embedded smollm2-135m-instruct")
    model_args: str | None = inherit("model_args", help="lm-eval model arguments, key=value,... (kept for every round's checkpoint, pretrained= replaced)")
    task: str = option("arith", "the loop's one task (see `gapbench tasks`); --tasks NAME, as gapbench run spells it, is the same")
    task_args: dict = option({}, "task.option=value,... (e.g. arith.levels=add2)", parse=parse_task_args)  # the task's options (option -> value)
    split: str = inherit("split", default="train", help="split whose prompts are sampled and fine-tuned on")
    eval_split: str = option("test", "split every f_t is evaluated on")
    limit: int | None = inherit("limit", help="first N training prompts")
    eval_limit: int | None = option(None, "first N evaluation prompts", parse=int)
    data_dir: str | None = inherit("data_dir")
    verifier: str = option("mc", "the verification method that filters (one; ensemble:a+b allowed); --verifiers NAME, as gapbench run spells it, is the same")
    verifier_model: str | None = inherit("verifier_model", help="a fixed verifier model instead of f_t's own")
    verifier_model_args: str | None = inherit("verifier_model_args")
    filter: str = inherit("filter", help="quantile:q or threshold:t on the verifier's u")
    oracle_filter: bool = option(False, "keep the samples with g = 1 instead (the STaR-like control; --filter is then only reported)")
    n: int = inherit("n", default=8, help="samples per training prompt")
    eval_n: int | None = option(None, "samples per evaluation prompt (default: --n); pass@k is reported for k = 1..this", parse=int)
    m: int = inherit("m")
    rounds: int = option(3, "fine-tuning rounds (f_0 -> f_rounds); may grow when resuming", parse=int)
    temperature: float = inherit("temperature")
    top_p: float = inherit("top_p")
    max_gen_toks: int | None = inherit("max_gen_toks")
    verify_max_gen_toks: int = inherit("verify_max_gen_toks")
    gen_batch_size: int | str = inherit("batch_size", flag="--gen-batch-size", help="lm-eval batch size for sampling and verifying (a number, or auto on GPU)")
    lr: float = option(2e-5, "fine-tuning learning rate (AdamW, linear decay)", parse=float)
    epochs: int = option(1, "fine-tuning epochs", parse=int)
    batch_size: int = option(
        8,
        "fine-tuning examples per optimizer step",
        parse=int,
        flag="--train-batch-size",
        deprecated={"--batch-size": " (in gapbench run --batch-size is lm-eval's batch size, which improve calls --gen-batch-size)"},
    )
    micro_batch_size: int = option(4, "examples per forward pass (gradient accumulation; same result)", parse=int)
    max_steps: int | None = option(None, "stop each fine-tune after this many optimizer steps (smoke tests)", parse=int)
    max_length: int = option(2048, "tokens per training example (the prompt is cut from the left)", parse=int)
    seed: int = inherit("seed")
    n_boot: int = inherit("n_boot", help="bootstrap resamples for the evaluation intervals")

    def settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def identity(self) -> dict:
        return {k: v for k, v in self.settings().items() if k not in NOT_IDENTITY}

    def train_settings(self) -> sft.TrainSettings:
        return sft.TrainSettings(
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            micro_batch_size=self.micro_batch_size,
            max_steps=self.max_steps,
            max_length=self.max_length,
            seed=self.seed,
        )
