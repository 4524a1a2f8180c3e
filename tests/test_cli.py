"""The command line: listings, and each user error as one paragraph and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import main
from harness.settings import parse_task_args


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


def test_data_not_found_says_how_to_give_a_local_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--tasks", "gsm8k", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert code == 2 and "gsm8k/test.jsonl" in err and "--data-dir" in err and "gsm8k.path=FILE" in err


def test_malformed_jsonl_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a #### 1"}\n{"question": "q2", "answer": \n')
    code, _, err = run_cli(capsys, "run", "--tasks", "gsm8k", "--task-args", f"gsm8k.path={bad}", "--out", str(tmp_path / "o"))
    assert code == 2 and f"{bad}:2" in err


def test_bad_filter_and_task_option(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--filter", "top:0.5", "--out", str(tmp_path))
    assert code == 2 and "quantile:" in err and "threshold:" in err
    code, _, err = run_cli(capsys, "run", "--task-args", "arith.digitz=3", "--out", str(tmp_path))
    assert code == 2 and "digitz" in err and "per_level" in err


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
        [sys.executable, "-m", "harness.cli", "run", "--model", str(empty), "--task-args", "arith.per_level=1", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "did not load" in proc.stderr and str(empty) in proc.stderr
    assert "Traceback" not in proc.stderr
