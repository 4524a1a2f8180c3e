"""The command line: listings, and each user error as one paragraph and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gapbench.harness.cli import main
from gapbench.harness.settings import parse_task_args
from gapbench.tasks import TASKS


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_and_verifiers_list_one_line_each(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"gsm8k", "sudoku", "arith"} <= set(names) and len(names) == len(set(names))
    code, out, _ = run_cli(capsys, "verifiers")
    names = [line.split()[0] for line in out.splitlines()]
    assert {"mc", "cot-binary", "cot-score", "tournament", "ensemble", "oracle"} <= set(names)


def test_unknown_task_lists_known_ones(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--tasks", "gsm9k", "--out", str(tmp_path))
    assert code == 2 and "unknown task 'gsm9k'" in err and "gsm8k" in err and "sudoku" in err


def test_unknown_verifier_lists_known_ones(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--verifiers", "mc,vibes", "--out", str(tmp_path))
    assert code == 2 and "unknown verifier 'vibes'" in err and "tournament" in err


FAKE = ("--model", "gapbench-fake")  # these errors come before any model call: no need for real weights


def test_data_not_found_says_how_to_give_a_local_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", *FAKE, "--tasks", "gsm8k", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert code == 2 and "gsm8k/test.jsonl" in err and "--data-dir" in err and "gsm8k.path=FILE" in err


def test_malformed_jsonl_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a #### 1"}\n{"question": "q2", "answer": \n')
    code, _, err = run_cli(capsys, "run", *FAKE, "--tasks", "gsm8k", "--task-args", f"gsm8k.path={bad}", "--out", str(tmp_path / "o"))
    assert code == 2 and f"{bad}:2" in err


def test_bad_filter_and_task_option(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--filter", "top:0.5", "--out", str(tmp_path))
    assert code == 2 and "quantile:" in err and "threshold:" in err
    code, _, err = run_cli(capsys, "run", "--task-args", "arith.digitz=3", "--out", str(tmp_path))
    assert code == 2 and "digitz" in err and "per_level" in err


def test_run_on_the_fake_model_from_the_command_line(capsys, tmp_path):
    """`gapbench run --model gapbench-fake --model-args replies=FILE`: the replies file decides each answer."""
    docs = TASKS.get("arith")(levels="add1", per_level=4).docs()
    right = {docs[0].doc_id, docs[3].doc_id}  # half the prompts answered correctly, the rest " 0"
    rules = [{"endswith": f"{d.question}\nA:", "reply": f" {d.target}\nQ: What is 1 + 1?"} for d in docs if d.doc_id in right]
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([*rules, {"reply": " 0"}]))
    out = tmp_path / "run"
    argv = ["run", *FAKE, "--model-args", f"replies={replies}", "--task-args", "arith.levels=add1,arith.per_level=4", "--n", "2", "--verifiers", "mc,oracle", "--n-boot", "50", "--out", str(out)]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "stored in" in stdout and "J(f)" in stdout
    results = json.loads((out / "arith" / "results.json").read_text())
    assert results["model"]["backend"] == "gapbench-fake" and results["model"]["model_args"] == {"replies": str(replies)}
    samples = [json.loads(line) for line in (out / "arith" / "samples.jsonl").read_text().splitlines()]
    targets = {d.doc_id: d.target for d in docs}
    assert len(samples) == 8
    for s in samples:  # the rule's reply, cut at the arith task's stop string "\n"
        assert s["response"] == (f" {targets[s['doc_id']]}" if s["doc_id"] in right else " 0")
    assert results["generation"]["J"]["value"] == pytest.approx(0.5)
    assert results["verifiers"]["oracle"]["verification"]["auroc"] == 1.0


def test_task_args_parsing():
    assert parse_task_args("gsm8k.num_fewshot=8,arith.levels=add1+add2") == {
        "gsm8k": {"num_fewshot": "8"},
        "arith": {"levels": "add1+add2"},
    }


@pytest.mark.model
def test_checkpoint_that_does_not_load_is_one_paragraph(tmp_path):
    """Run as a user would: a subprocess, checking that no traceback reaches the terminal."""
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "gapbench.harness.cli", "run", "--model", str(empty), "--task-args", "arith.per_level=1", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "did not load" in proc.stderr and str(empty) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_only_the_libraries_known_notices_are_silenced():
    """``gapbench`` silences the deprecation notices of the libraries under it, by module, not every
    warning of the process: its own, another package's and a plugin's that failed to load are shown."""
    import warnings

    from gapbench.harness import cli
    from gapbench.harness.registry import PluginLoadWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        cli._quiet()
        warnings.warn_explicit("old argument", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
        warnings.warn_explicit("TypedStorage is deprecated", UserWarning, "storage.py", 1, module="torch.storage")
        warnings.warn_explicit("a user's own", UserWarning, "mine.py", 1, module="mypackage")
        warnings.warn_explicit("odd", RuntimeWarning, "metrics.py", 1, module="gapbench.harness.metrics")
    shown = [str(w.message) for w in caught]
    assert shown == ["a user's own", "odd"]
    with warnings.catch_warnings(record=True):
        warnings.resetwarnings()
        cli._quiet()
        import io
        import sys

        err, sys.stderr = sys.stderr, io.StringIO()
        try:
            warnings.warn_explicit("plugin x did not load", PluginLoadWarning, "registry.py", 1, module="gapbench.harness.registry")
            printed = sys.stderr.getvalue()
        finally:
            sys.stderr = err
    assert "gapbench: warning: plugin x did not load" in printed
