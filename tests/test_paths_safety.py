"""A board or a run folder is a safe place, whatever it holds (issue 25, part A).

- Crafted boards and run folders (symbolic links where gapbench writes, renames or deletes; board names
  that are paths): gapbench writes, overwrites and deletes nothing outside the folder, and refuses
  with one sentence, no traceback.
- Two builds of one board: the second is refused while the first holds the board's lock;
  ``analyze --rescore`` takes the run's lock.
- results.json and verdicts.jsonl do not depend on how a run got there (killed and resumed, or
  rerun with no model call); run.json records the model's facts at its first load.
- run.json records digests of the task's documents and of the model's weight files; a changed data
  set or changed weights are refused, saying which and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gapbench.harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAKE = ["--model", "gapbench-fake", "--task-args", "arith.per_level=3,arith.levels=add1", "--n", "2", "--n-boot", "20"]
RUN = ["run", *FAKE, "--model-args", "arith=0.5", "--verifiers", "mc,tournament"]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def snapshot(top: Path, skip: Path) -> dict:
    """Every file, link and folder under ``top`` but those under ``skip`` (the folder gapbench may
    write): a file by the digest of its bytes, a link by its target."""
    out = {}
    for here, dirs, files in os.walk(top, followlinks=False):
        h = Path(here)
        if h == skip or skip in h.parents:
            dirs[:] = []
            continue
        for d in dirs:
            p = h / d
            if p != skip:
                out[str(p.relative_to(top))] = ("link", os.readlink(p)) if p.is_symlink() else ("dir",)
        for f in files:
            p = h / f
            out[str(p.relative_to(top))] = ("link", os.readlink(p)) if p.is_symlink() else ("file", hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def refused(capsys, argv, says="symbolic link") -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert says in err and "Traceback" not in err, err
    return err


# --- the folders the crafted cases start from ---------------------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A finished run (mc and tournament on the fake model) and a board built from its run directory."""
    base = tmp_path_factory.mktemp("made")
    assert main([*RUN, "--out", str(base / "run")]) == 0
    assert main(["leaderboard", "build", str(base / "run"), "--out", str(base / "board")]) == 0
    return base


@pytest.fixture()
def place(made, tmp_path) -> Path:
    """A copy of the made run and board, and an ``outside`` folder of sentinel files and folders."""
    shutil.copytree(made, tmp_path / "w", symlinks=True)
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim.txt").write_text("keep me\n")
    (outside / "dir" / "keep.html").write_text("<p>keep</p>\n")
    (outside / "dir" / "keep.png").write_bytes(b"png")
    return tmp_path


def _results_name(board: Path) -> str:
    return sorted((board / "results").glob("*.json"))[0].name


def _page_name(board: Path) -> str:
    return sorted((board / "runs").glob("*.html"))[0].name


# (where the link goes in the board, what it points at): build must refuse and leave `outside` as it was
BOARD_LINKS = {
    "README.md.tmp": "victim.txt",
    "index.html.tmp": "victim.txt",
    "leaderboard.json.tmp": "victim.txt",
    "README.md": "victim.txt",
    "index.html": "victim.txt",
    ".lock": "victim.txt",
    "accuracy-arith-test.png": "victim.txt",
    "results/{results}.tmp": "victim.txt",
    "results/{results}": "victim.txt",
    "results": "dir",
    "runs": "dir",
    "runs/{page}.tmp": "victim.txt",
    "runs/{page}": "victim.txt",
}


@pytest.mark.parametrize("where", sorted(BOARD_LINKS))
def test_a_board_with_a_link_is_refused_and_nothing_outside_changes(place, capsys, where):
    board, outside = place / "w" / "board", place / "outside"
    rel = where.format(results=_results_name(board), page=_page_name(board))
    link = board / rel
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(outside / BOARD_LINKS[where])
    before = snapshot(place, board)
    refused(capsys, ["leaderboard", "build", str(place / "w" / "run"), "--out", str(board)])
    assert snapshot(place, board) == before


@pytest.mark.parametrize("name", ["../../escaped-board", "/tmp/gapbench-escaped-board", "..", "../outside/dir", "{outside}/dir"])
def test_a_board_named_by_a_path_is_checked_in_a_folder_the_check_names(place, capsys, name):
    """leaderboard check rebuilds into a temporary folder of its own naming: the board's name is only text."""
    board, outside = place / "w" / "board", place / "outside"
    name = name.format(outside=outside)
    assert main(["leaderboard", "build", str(place / "w" / "run"), "--out", str(board), "--name", name]) == 0
    tmp_parent = Path(tempfile.gettempdir())
    guesses = [tmp_parent.parent / "escaped-board", Path("/tmp/gapbench-escaped-board"), outside / "dir" / "README.md"]
    before = snapshot(place, board)
    code = main(["leaderboard", "check", str(board)])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err and "differs from a rebuild" not in err, err  # (a test board holds tmp paths)
    assert snapshot(place, board) == before
    assert not any(p.exists() for p in guesses)


# (where the link goes in the run folder, the command that then writes there)
RUN_LINKS = [
    ("grades.tmp", "run"),
    ("results.tmp", "run"),
    ("run.tmp", "run"),
    ("verdicts.jsonl", "run"),
    ("samples.jsonl", "run"),
    ("timings.jsonl", "run"),
    (".lock", "run"),
    ("view.html.tmp", "view"),
    ("view.html", "view"),
    ("analysis", "analyze"),
    ("analysis/gap-vs-n.png", "analyze"),
    ("analysis/gap-vs-n.png.tmp", "analyze"),
    ("results.tmp", "rescore"),
    (".lock", "rescore"),
]


@pytest.mark.parametrize("rel, command", RUN_LINKS, ids=[f"{c}:{r}" for r, c in RUN_LINKS])
def test_a_run_folder_with_a_link_is_refused_and_nothing_outside_changes(place, capsys, rel, command):
    run, outside = place / "w" / "run" / "arith", place / "outside"
    link = run / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(outside / ("dir" if rel == "analysis" else "victim.txt"))
    argv = {
        "run": [*RUN[:-1], "mc,tournament,cot-binary", "--out", str(place / "w" / "run")],  # a new verifier: every file is written
        "view": ["view", str(run)],
        "analyze": ["analyze", str(run), "--n-boot", "10"],
        "rescore": ["analyze", str(run), "--n-boot", "10", "--rescore"],
    }[command]
    before = snapshot(place, run)
    refused(capsys, argv)
    assert snapshot(place, run) == before


def test_a_link_planted_in_an_empty_run_folder_is_refused_before_any_model_call(tmp_path, capsys):
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "run" / "arith").mkdir(parents=True)
    (tmp_path / "run" / "arith" / ".lock").symlink_to(victim)
    refused(capsys, [*RUN, "--out", str(tmp_path / "run")])
    assert victim.read_text() == "keep me\n" and not (tmp_path / "run" / "arith" / "samples.jsonl").exists()


# --- one writer per board, one per run for analyze --rescore ------------------------------------------------------


def _hold(lock_code: str, lockfile: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", lock_code], env=_env(), start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (lockfile.is_file() and lockfile.read_text().strip() == str(proc.pid)):
        time.sleep(0.05)
    assert lockfile.read_text().strip() == str(proc.pid)
    return proc


def test_a_second_build_of_a_board_is_refused_while_the_first_holds_it(place, capsys):
    board = place / "w" / "board"
    holder = _hold(f"from pathlib import Path; import time\nfrom leaderboards.builder import board_lock\nwith board_lock(Path({str(board)!r})): time.sleep(120)", board / ".lock")
    try:
        before = {p.name: p.read_bytes() for p in board.rglob("*") if p.is_file() and p.name != ".lock"}
        err = refused(capsys, ["leaderboard", "build", str(place / "w" / "run"), "--out", str(board), "--name", "other"], says=f"being built by another gapbench process (pid {holder.pid})")
        assert "Wait for it to finish" in err
        assert {p.name: p.read_bytes() for p in board.rglob("*") if p.is_file() and p.name != ".lock"} == before
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert main(["leaderboard", "build", str(place / "w" / "run"), "--out", str(board)]) == 0  # released with its process


def test_two_concurrent_builds_leave_a_board_that_passes_its_check(place):
    """Both racing builds exit 0 (one after the other) or one is refused (exit 2); the board passes its check."""
    board = place / "w" / "board2"
    outcomes = []
    for _trial in range(3):
        cmds = [[sys.executable, "-m", "gapbench.harness.cli", "leaderboard", "build", str(place / "w" / "run"), "--out", str(board), "--name", f"b{k}"] for k in range(2)]
        procs = [subprocess.Popen(c, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
        codes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        outcomes.append(sorted(c for c, _ in codes))
        assert all(c in (0, 2) for c, _ in codes) and any(c == 0 for c, _ in codes), codes
        assert all("being built by another gapbench process" in e for c, e in codes if c == 2), codes
        assert all("Traceback" not in e for _, e in codes)
        from gapbench.leaderboards.check import check_board

        failures = [f for f in check_board(board).failures if "holds the machine path" not in f]  # (test boards hold tmp paths)
        assert failures == []
    print("concurrent build outcomes (exit codes per trial):", outcomes)


def test_analyze_rescore_takes_the_runs_lock(place, capsys):
    run = place / "w" / "run" / "arith"
    results = (run / "results.json").read_bytes()
    holder = _hold(f"from pathlib import Path; import time\nfrom harness.store import RunStore\ns = RunStore(Path({str(run)!r})); s.lock(); time.sleep(120)", run / ".lock")
    try:
        refused(capsys, ["analyze", str(run), "--n-boot", "10", "--rescore"], says=f"another gapbench process (pid {holder.pid})")
        assert (run / "results.json").read_bytes() == results
        assert main(["analyze", str(run), "--n-boot", "10"]) == 0  # reading (and its plots) needs no lock
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    capsys.readouterr()
    assert main(["analyze", str(run), "--n-boot", "10", "--rescore"]) == 0


# --- results.json and verdicts.jsonl do not depend on how the run got there ----------------------------------------


def _stable(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    for volatile in ("created", "timings", "run"):
        results.pop(volatile)
    return {"results": results, "verdicts": (run / "verdicts.jsonl").read_bytes(), "samples": (run / "samples.jsonl").read_bytes()}


def test_a_rerun_with_no_model_call_reports_the_models_facts_from_run_json(made, tmp_path):
    shutil.copytree(made / "run", tmp_path / "run")
    run = tmp_path / "run" / "arith"
    facts = json.loads((run / "run.json").read_text())["model_facts"]["model"]
    assert facts == {"parameters": None, "revision": None, "architecture": None}  # what the fake model tells
    fresh = _stable(run)
    assert {"parameters", "revision", "architecture"} <= set(fresh["results"]["model"])
    (run / "results.json").unlink()
    assert main([*RUN, "--out", str(tmp_path / "run")]) == 0  # all stored: no model loads
    assert _stable(run) == fresh
    # a run folder from before run.json recorded the facts still scores (as far as it can know the model)
    doc = json.loads((run / "run.json").read_text())
    del doc["model_facts"], doc["digests"]
    (run / "run.json").write_text(json.dumps(doc))
    assert main([*RUN, "--out", str(tmp_path / "run")]) == 0
    assert json.loads((run / "results.json").read_text())["model"]["id"] == "gapbench-fake"


def _kill_after(cmd, path: Path, lines: int, timeout: float = 120) -> int:
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and (not path.is_file() or len(path.read_text().splitlines()) < lines):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_killed_anywhere_results_and_verdicts_are_those_of_an_uninterrupted_run(made, tmp_path):
    slow = ["run", "--model", "gapbench-fake", "--task-args", "arith.per_level=5,arith.levels=add1", "--n", "3", "--n-boot", "20",
            "--model-args", "arith=0.5,delay=0.01", "--verifiers", "mc,tournament", "--batch-size", "1"]  # fmt: skip
    cli = [sys.executable, "-m", "gapbench.harness.cli"]
    assert main([*slow, "--out", str(tmp_path / "whole")]) == 0
    expected = _stable(tmp_path / "whole" / "arith")
    n_verdicts = len(expected["verdicts"].splitlines())
    n_mc = sum(1 for x in expected["verdicts"].splitlines() if json.loads(x)["method"] == "mc")
    # inside generation, inside mc, and at every chunk (8 requests) of the tournament's rounds
    points = [("samples.jsonl", 1), ("verdicts.jsonl", 2)] + [("verdicts.jsonl", k) for k in range(n_mc + 1, n_verdicts + 1, 8)]
    for i, (name, lines) in enumerate(points):
        out = tmp_path / f"k{i}"
        _kill_after(cli + slow + ["--out", str(out)], out / "arith" / name, lines)
        assert main([*slow, "--out", str(out)]) == 0
        got = _stable(out / "arith")
        assert got == expected, f"kill point {name}:{lines}"


# --- a changed data set or changed weights are refused ---------------------------------------------------------


def _gsm8k(tmp_path, shared_data) -> Path:
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    rows = (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:3]
    (data / "test.jsonl").write_text("\n".join(rows) + "\n")
    shutil.copy(shared_data / "gsm8k" / "train.jsonl", data / "train.jsonl")
    return data / "test.jsonl"


def test_an_edited_data_set_is_refused_naming_the_data(tmp_path, shared_data, capsys):
    test = _gsm8k(tmp_path, shared_data)
    argv = ["run", "--model", "gapbench-fake", "--tasks", "gsm8k", "--data-dir", str(tmp_path / "data"), "--n", "2", "--n-boot", "10", "--verifiers", "mc", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    run_json = json.loads((tmp_path / "run" / "gsm8k" / "run.json").read_text())
    assert run_json["digests"]["docs"]["count"] == 3 and len(run_json["digests"]["docs"]["sha256"]) == 64
    rows = [json.loads(x) for x in test.read_text().splitlines()]
    original = test.read_text()
    rows[1]["question"] = rows[1]["question"].replace("?", " (edited)?")
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    err = refused(capsys, argv, says="the task's documents changed since this run stored its work")
    assert "Use another --out" in err and "edited samples" not in err and "samples were edited" not in err
    test.write_text(original)  # the data the run was made with: it resumes
    assert main(argv) == 0


def test_changed_weights_behind_a_path_are_refused_and_digests_are_cached(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights of model A" * 100)
    (ckpt / "config.json").write_text('{"architectures": ["A"]}')
    argv = ["run", *FAKE, "--model-args", f"arith=0.5,pretrained={ckpt}", "--verifiers", "mc", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    digests = json.loads((tmp_path / "run" / "arith" / "run.json").read_text())["digests"]["model"]
    assert set(digests["files"]) == {"model.safetensors", "config.json"} and digests["sha256"]
    cache = json.loads((tmp_path / "cache" / "weight-digests.json").read_text())
    assert str((ckpt / "model.safetensors").resolve()) in cache
    assert main(argv) == 0 and "(resuming)" in capsys.readouterr().err  # the same weights resume
    (ckpt / "model.safetensors").write_bytes(b"weights of model B" * 100)  # another model's weights, same path
    err = refused(capsys, argv, says="the weights behind --model changed since this run stored its work")
    assert "model.safetensors" in err and "Use another --out" in err and "config.json" not in err
    assert main([*argv[:-1], str(tmp_path / "run-b")]) == 0  # the new weights in a folder of their own


def test_a_hub_id_records_what_is_knowable():
    from gapbench.harness.models import backends

    spec = backends.ModelSpec("hf", {"pretrained": "Org/not-on-this-machine", "revision": "abc123"}, "Org/not-on-this-machine")
    w = backends.weights(spec)
    assert w["sha256"] is None and w["id"] == "Org/not-on-this-machine" and w["revision"] == "abc123" and "not digested" in w["note"]


def test_check_against_counts_a_nan_as_a_regression(place, capsys):
    board = place / "w" / "board"
    new = place / "new.json"
    doc = json.loads((place / "w" / "run" / "arith" / "results.json").read_text())
    doc["generation"]["J"]["value"] = float("nan")
    new.write_text(json.dumps(doc))
    from gapbench.harness.results import load
    from gapbench.leaderboards.check import check_board

    try:
        load(new)
    except Exception:
        pytest.skip("the results loader refuses NaN (issue 25, part B): the CLI never reaches the comparison")
    report = check_board(board, [new])
    assert not report.ok and any("J(f) = nan" in f and "not a number" in f for f in report.failures), report.failures
