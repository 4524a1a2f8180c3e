"""The Python API (gapbench.evaluate, gapbench.load_run) and the one import name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gapbench
from gapbench.harness.errors import GapbenchError

ROOT = Path(__file__).resolve().parents[1]
FAKE = {"task_args": "arith.per_level=2,arith.levels=add1+add2", "n": 2, "n_boot": 20, "model_args": "arith=0.5"}


def test_evaluate_returns_typed_results_and_the_run_folder(tmp_path):
    [run] = gapbench.evaluate("gapbench-fake", tasks="arith", verifiers="mc,oracle", out=str(tmp_path / "o"), log=None, **FAKE)
    assert run.dir == tmp_path / "o" / "arith" and (run.dir / "results.json").is_file()
    assert run.results.sizes.n_prompts == 4 and run.results.sizes.n == 2
    assert set(run.results.verifiers) == {"mc", "oracle"}
    assert 0 < run.results.generation.J.value < 1  # arith=0.5: about half right
    again = gapbench.load_run(run.dir)
    assert again.results == run.results and gapbench.load_run(run.dir / "results.json").dir == run.dir


def test_a_list_and_the_command_lines_text_are_the_same_options(tmp_path):
    a = gapbench.api.options(tasks="arith", verifiers="mc,oracle", task_args="arith.per_level=2")
    b = gapbench.api.options(tasks=["arith"], verifiers=("mc", "oracle"), task_args={"arith": {"per_level": "2"}})
    assert a.tasks == b.tasks == ["arith"] and a.verifiers == b.verifiers == ["mc", "oracle"]
    assert a.task_args == b.task_args == {"arith": {"per_level": "2"}}


def test_a_resumed_evaluate_makes_no_model_call_and_gives_the_same_numbers(tmp_path):
    first = gapbench.evaluate("gapbench-fake", verifiers=["mc"], out=str(tmp_path / "o"), log=None, **FAKE)[0]
    lines = []
    second = gapbench.evaluate("gapbench-fake", verifiers=["mc"], out=str(tmp_path / "o"), log=lines.append, **FAKE)[0]
    assert second.results.generation == first.results.generation
    assert any("resuming" in str(line) for line in lines)


@pytest.mark.parametrize(
    "kwargs, says",
    [({"nboot": 3}, "unknown option nboot"), ({"n": "four"}, "--n 'four'"), ({"tasks": "nosuchtask"}, "nosuchtask")],
)
def test_bad_options_are_clear_errors(kwargs, says, tmp_path):
    with pytest.raises(GapbenchError, match=says):
        gapbench.evaluate("gapbench-fake", out=str(tmp_path / "o"), log=None, **kwargs)


def test_load_run_of_a_folder_without_results_says_what_to_give(tmp_path):
    with pytest.raises(GapbenchError, match="no results.json"):
        gapbench.load_run(tmp_path)


def test_a_users_own_tasks_folder_does_not_shadow_gapbench(tmp_path):
    """A notebook's folder with its own tasks/ and harness/ packages (the reproduced bug): gapbench
    still imports its own, and the user's stay importable under their names."""
    for name in ("tasks", "harness", "verifiers"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"MINE = {name!r}\n")
    code = (
        "import tasks, harness, gapbench\n"
        "from gapbench.tasks import TASKS\n"
        "assert tasks.MINE == 'tasks' and harness.MINE == 'harness'\n"
        "assert 'arith' in TASKS.names() and gapbench.evaluate\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_one_version_everywhere():
    import re

    project = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    changelog = re.search(r"^## (?!Unreleased\b)(\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)[1]  # the newest release, below any "Unreleased"
    cff = re.search(r"^version: (\S+)", (ROOT / "CITATION.cff").read_text(), re.M)[1]
    assert gapbench.__version__ == project == changelog == cff
    proc = subprocess.run([sys.executable, "-m", "gapbench", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"gapbench {project}"
