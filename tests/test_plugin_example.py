"""The plugin example in examples/plugin installs with pip and runs: its task and verifier are
listed beside the built-ins and a run on the fake model grades and scores with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("example") / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--quiet", "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""}, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def gapbench(site: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "gapbench", *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_the_example_plugin_is_listed(site, tmp_path):
    tasks = gapbench(site, "tasks", cwd=tmp_path)
    verifiers = gapbench(site, "verifiers", cwd=tmp_path)
    assert tasks.returncode == 0 and verifiers.returncode == 0, tasks.stderr + verifiers.stderr
    assert any(line.split()[:1] == ["reverse"] for line in tasks.stdout.splitlines()), tasks.stdout
    assert any(line.split()[:1] == ["length"] for line in verifiers.stdout.splitlines()), verifiers.stdout
    assert "warning" not in tasks.stderr + verifiers.stderr


def test_a_run_with_the_example_grades_and_scores(site, tmp_path):
    # the fake model spells 'stone' right and answers "olleh" (5 letters, wrong) to the nine
    # six-letter words: g is 1 on one prompt of ten, and the length verifier's u equals g there
    rules = tmp_path / "replies.json"
    rules.write_text(json.dumps([{"contains": "Spell 'stone' backwards.", "reply": " enots"}, {"reply": " olleh"}]))
    proc = gapbench(site, "run", "--model", "gapbench-fake", "--model-args", f"replies={rules}", "--tasks", "reverse",
                    "--verifiers", "length,oracle", "--n", "2", "--n-boot", "20", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "reverse" / "results.json").read_text())
    assert results["task"]["name"] == "reverse" and results["sizes"]["n_prompts"] == 10
    assert results["generation"]["J"]["value"] == pytest.approx(0.1)
    length, oracle = results["verifiers"]["length"], results["verifiers"]["oracle"]
    assert length["verification"]["auroc"] == pytest.approx(1.0)
    assert length["gap"]["value"] == pytest.approx(oracle["gap"]["value"])
