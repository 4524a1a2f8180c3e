"""Run settings have one source of truth: RunOptions' fields make `gapbench run`'s options, improve's
shared fields inherit them, and improve's runs are derived from its options."""

from __future__ import annotations

from dataclasses import fields

import pytest

from gapbench.harness.cli import build_parser
from gapbench.harness.improve.cli import options_from_args
from gapbench.harness.improve.loop import Improver
from gapbench.harness.improve.options import ImproveOptions
from gapbench.harness.settings import RUN_FIELDS, RunOptions, from_args, run_fields_of


def run_args(*argv):
    return build_parser().parse_args(["run", *argv])


def test_run_command_defaults_are_the_dataclass_defaults():
    assert from_args(RunOptions, run_args()) == RunOptions()


def test_every_run_field_has_an_option():
    args = run_args()
    assert {f.name for f in fields(RunOptions)} <= set(vars(args))


def test_run_options_parse_to_typed_values():
    opts = from_args(
        RunOptions,
        run_args("--tasks", "gsm8k, arith", "--n", "8", "--batch-size", "auto", "--task-args", "gsm8k.num_fewshot=8",
                 "--model-meta", "params=1e9,round=2,base=x", "--top-p", "0.5"),
    )
    assert opts.tasks == ["gsm8k", "arith"] and opts.n == 8 and opts.batch_size == "auto" and opts.top_p == 0.5
    assert opts.task_args == {"gsm8k": {"num_fewshot": "8"}}
    assert opts.model_meta == {"params": 1e9, "round": 2, "base": "x"}
    assert from_args(RunOptions, run_args("--batch-size", "16")).batch_size == 16


def test_improve_command_defaults_are_the_dataclass_defaults():
    args = build_parser().parse_args(["improve", "--out", "x"])
    assert options_from_args(args) == ImproveOptions(out="x")


def test_improve_inherits_the_run_defaults_it_does_not_change():
    opts = ImproveOptions(out="x")
    shared = run_fields_of(opts)
    assert "batch_size" in shared and "filter" in shared and "temperature" in shared
    changed = {"n", "split"}  # improve samples 8 per training prompt on the train split
    for name, value in shared.items():
        if name not in changed:
            assert value == getattr(RunOptions(), name), name
    assert opts.n == 8 and opts.split == "train"
    assert all(RUN_FIELDS[name] for name in shared)


def test_improve_derives_its_runs_from_its_options(tmp_path):
    opts = ImproveOptions(out=str(tmp_path), model="hf", model_args="pretrained=/nowhere", filter="threshold:0.7",
                          temperature=0.3, gen_batch_size=3, n=6, eval_n=2, limit=5, eval_limit=7, seed=9)
    imp = Improver(opts, log=lambda *_: None)
    train, ev = imp.run_options(0, "train"), imp.run_options(0, "eval")
    for run in (train, ev):
        assert run.filter == "threshold:0.7" and run.temperature == 0.3 and run.batch_size == 3 and run.seed == 9
        assert run.tasks == ["arith"] and run.model == "hf"
    assert (train.split, train.limit, train.n, train.n_boot, train.verifiers) == ("train", 5, 6, 0, ["mc"])
    assert (ev.split, ev.limit, ev.n, ev.n_boot, ev.verifiers) == ("test", 7, 2, 1000, ["mc", "oracle"])
    assert train.out.endswith("round-0/train") and ev.out.endswith("round-0/eval")


@pytest.mark.parametrize("flag", ["--verifier", "--verifiers"])
def test_improve_verifier_flag_and_alias(flag):
    args = build_parser().parse_args(["improve", "--out", "x", flag, "cot-binary"])
    assert options_from_args(args).verifier == "cot-binary"


# --- one option name, one meaning, in every command ---------------------------------------------


def every_flag() -> dict[str, list[tuple[str, str, str]]]:
    """flag -> [(command, dest, kind)] over every subcommand's parser; kind is what the text is read
    as (the settings' parse function, argparse's type, or plain text); deprecated old names left out."""
    import argparse

    from gapbench.harness.settings import DeprecatedFlag

    found: dict[str, list[tuple[str, str, str]]] = {}

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.option_strings and not isinstance(action, (DeprecatedFlag, argparse._HelpAction)):
                reader = getattr(action, "parse", None) or action.type
                kind = "flag" if action.nargs == 0 else getattr(reader, "__name__", "text") if reader else "text"
                for flag in action.option_strings:
                    found.setdefault(flag, []).append((" ".join(path), action.dest, kind))

    walk(build_parser(), [])
    return found


def test_a_flag_name_means_one_thing_in_every_command():
    flags = every_flag()
    assert len(flags["--batch-size"]) >= 3 and len(flags["--seed"]) >= 4  # run, merge, cross, ...: the walk reached them
    # lm-eval-tasks' --max-gen-toks reads N as run's does, and also task=N,... (one budget per task)
    widened = {"parse_budgets": "int"}
    mixed = {flag: uses for flag, uses in flags.items() if len({(dest, widened.get(kind, kind)) for _, dest, kind in uses}) > 1}
    assert not mixed, "\n".join(f"{flag}: {uses}" for flag, uses in mixed.items())
    # the names the issue was about
    assert {dest for _, dest, _ in flags["--batch-size"]} == {"batch_size"} and "improve" not in {c for c, _, _ in flags["--batch-size"]}
    assert {(d, k) for _, d, k in flags["--tasks"]} == {("tasks", "csv")} and "improve" in {c for c, _, _ in flags["--tasks"]}
    assert {(d, k) for _, d, k in flags["--task"]} == {("task", "text")} and {"improve", "leaderboard compare"} <= {c for c, _, _ in flags["--task"]}


def improve_args(*argv):
    return options_from_args(build_parser().parse_args(["improve", "--out", "x", *argv]))


def test_improve_takes_the_fine_tuning_batch_as_train_batch_size_and_the_old_name_with_a_notice(capsys):
    assert improve_args("--train-batch-size", "16").batch_size == 16
    assert "deprecated" not in capsys.readouterr().err
    old = improve_args("--batch-size", "12")
    assert old.batch_size == 12 and old.gen_batch_size == RunOptions().batch_size  # still the fine-tuning batch
    notice = capsys.readouterr().err.strip()
    assert len(notice.splitlines()) == 1 and "--batch-size is deprecated" in notice and "--train-batch-size" in notice


@pytest.mark.parametrize("argv", [("--tasks", "gsm8k"), ("--task", "gsm8k"), ("--tasks", "gsm8k", "--task", "gsm8k")])
def test_improve_takes_its_one_task_as_tasks_or_task(argv):
    assert improve_args(*argv).task == "gsm8k"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--tasks", "gsm8k,arith"), "runs one task at a time"),
        (("--tasks", "gsm8k", "--task", "math"), "name different tasks"),
        (("--verifiers", "mc,oracle"), "runs one verifier at a time"),
    ],
)
def test_improve_refuses_more_than_one_task_or_verifier(argv, message):
    from gapbench.harness.errors import GapbenchError

    with pytest.raises(GapbenchError, match=message):
        improve_args(*argv)
