"""Bad input, over the real command line: every case ends in exit 2 and one line that names the
option, file or field, never in a traceback.

Each case runs ``harness.cli.main`` in-process on the fake model (or on a copy of one finished
fake run, damaged one way): options out of range or of the wrong type, results.json files that are
not results, store lines of the wrong type, folders that cannot be written, names too long for the
file system, model names that matplotlib would read as mathtext, and sizes that cannot fit in memory.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import traceback
from pathlib import Path

import pytest

from gapbench.harness.cli import main

FAKE = ["--model", "gapbench-fake"]
BASE = [*FAKE, "--task-args", "arith.levels=add1,arith.per_level=4", "--n", "2", "--verifiers", "mc,oracle", "--n-boot", "20"]
LONG = "n" * 300  # over the 255 bytes a file name may have


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """One finished fake run (arith, 4 prompts x 2 samples, mc and oracle); cases damage copies of it."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["run", *BASE, "--out", str(out)]) == 0
    return out


def call(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of the command line; an exception that escapes it fails the case."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors exit 2
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - a traceback is what this file looks for
        capsys.readouterr()
        pytest.fail(f"TRACEBACK {type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))[-1500:]}")
    return code, capsys.readouterr().err


def check(argv: list[str], capsys, *expect: str) -> None:
    code, err = call(argv, capsys)
    assert "Traceback" not in err
    assert code == 2, f"exit {code}: {err[-800:]}"
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err[-800:]
    for text in expect:
        assert text.lower() in errors[0].lower(), errors[0]


# --- options of gapbench run: validated in main, one sentence each ---------------------------------

RUN_OPTIONS = [
    ("--n", "abc", "--n"), ("--n", "-1", "--n"), ("--n", "0", "--n"), ("--n", "1.5", "--n"), ("--n", "1e8", "--n"),
    ("--n", "", "--n"), ("--n", "100000000", "--n"),
    ("--m", "abc", "--m"), ("--m", "0", "--m"), ("--m", "-3", "--m"), ("--m", "1e9", "--m"), ("--m", "10000000", "--m"),
    ("--limit", "x", "--limit"), ("--limit", "0", "--limit"), ("--limit", "-1", "--limit"),
    ("--max-gen-toks", "x", "--max-gen-toks"), ("--max-gen-toks", "0", "--max-gen-toks"), ("--max-gen-toks", "1000000000", "--max-gen-toks"),
    ("--verify-max-gen-toks", "x", "--verify-max-gen-toks"), ("--verify-max-gen-toks", "0", "--verify-max-gen-toks"),
    ("--verify-max-gen-toks", "1000000000", "--verify-max-gen-toks"),
    ("--seed", "abc", "--seed"), ("--seed", "-1", "--seed"), ("--seed", str(2**64), "--seed"), ("--seed", "1.5", "--seed"),
    ("--n-boot", "abc", "--n-boot"), ("--n-boot", "-1", "--n-boot"), ("--n-boot", "1e9", "--n-boot"), ("--n-boot", "1000000000", "--n-boot"),
    ("--temperature", "abc", "--temperature"), ("--temperature", "-1", "--temperature"), ("--temperature", "nan", "--temperature"),
    ("--temperature", "inf", "--temperature"),
    ("--top-p", "abc", "--top-p"), ("--top-p", "0", "--top-p"), ("--top-p", "1.5", "--top-p"), ("--top-p", "nan", "--top-p"),
    ("--batch-size", "0", "--batch-size"), ("--batch-size", "-1", "--batch-size"), ("--batch-size", "abc", "--batch-size"),
    ("--batch-size", "1.5", "--batch-size"),
    ("--shard", "x", "--shard"), ("--shard", "3/2", "--shard"), ("--shard", "-1/2", "--shard"), ("--shard", "1/0", "--shard"), ("--shard", "a/b", "--shard"),
    ("--shards", "2", "--ray"),
    ("--task-args", "foo", "--task-args"), ("--task-args", "=1", "--task-args"), ("--task-args", ".x=1", "--task-args"),
    ("--task-args", "gsm8k.num_fewshot=2", "--task-args"), ("--task-args", "arith.per_level=abc", "per_level"),
    ("--task-args", "arith.digitz=3", "digitz"),
    ("--model-args", "noequals", "--model-args"),
    ("--model-meta", "params=abc", "--model-meta"), ("--model-meta", "round=x", "--model-meta"), ("--model-meta", "flops=nan", "--model-meta"),
    ("--model-meta", "tokens=inf", "--model-meta"),
    ("--filter", "top:0.5", "filter"), ("--filter", "quantile:abc", "filter"), ("--filter", "quantile:2", "filter"),
    ("--filter", "quantile:-1", "filter"), ("--filter", "threshold:nan", "filter"), ("--filter", "quantile:nan", "filter"),
    ("--filter", "threshold:inf", "filter"),
    ("--tasks", ",", "--tasks"), ("--tasks", "gsm9k", "gsm9k"), ("--verifiers", ",", "--verifiers"), ("--verifiers", "vibes", "vibes"),
    ("--verifiers", "mc:x", "mc"), ("--verifiers", "ensemble:mc+vibes", "vibes"),
    ("--engine", "foo", "--engine"), ("--fewshot-as-multiturn", None, "--apply-chat-template"),
]


@pytest.mark.parametrize("flag,value,expect", RUN_OPTIONS, ids=[f"run{f}={v}" for f, v, _ in RUN_OPTIONS])
def test_run_option(flag, value, expect, tmp_path, capsys):
    given = [flag] if value is None else [flag, value]
    check(["run", *BASE, *given, "--out", str(tmp_path / "o")], capsys, expect)


def test_run_names_a_missing_model_folder(tmp_path, capsys):
    check(["run", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], capsys, "--model")


def test_run_names_a_missing_data_dir(tmp_path, capsys):
    check(["run", *FAKE, "--tasks", "gsm8k", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], capsys, "--data-dir")


# --- options of the readers: compare, analyze, view, ladder, build ------------------------------------

COMPARE_OPTIONS = [
    ("--n-boot", "abc"), ("--n-boot", "-1"), ("--n-boot", "1000000000"), ("--n-perm", "-5"), ("--n-perm", "x"), ("--n-perm", "1000000000000"), ("--n-perm", "0"),
    ("--seed", "-1"), ("--seed", str(2**70)), ("--alpha", "2"), ("--alpha", "nan"), ("--alpha", "x"), ("--filter", "top:1"),
]


@pytest.mark.parametrize("flag,value", COMPARE_OPTIONS, ids=[f"compare{f}={v}" for f, v in COMPARE_OPTIONS])
def test_compare_option(flag, value, base_run, capsys):
    check(["leaderboard", "compare", str(base_run), str(base_run), flag, value], capsys, flag if flag != "--filter" else "filter")


ANALYZE_OPTIONS = [("--n-boot", "-1"), ("--n-boot", "abc"), ("--n-boot", "1000000000"), ("--seed", "-1"), ("--seed", str(2**70)), ("--filter", "quantile:7")]


@pytest.mark.parametrize("flag,value", ANALYZE_OPTIONS, ids=[f"analyze{f}={v}" for f, v in ANALYZE_OPTIONS])
def test_analyze_option(flag, value, base_run, capsys):
    check(["analyze", str(base_run), flag, value], capsys, flag if flag != "--filter" else "filter")


def test_compare_json_into_a_missing_folder(base_run, tmp_path, capsys):
    check(["leaderboard", "compare", str(base_run), str(base_run), "--json", str(tmp_path / "no" / "such" / "c.json")], capsys, "c.json")


def test_view_into_a_file(base_run, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    check(["view", str(base_run), "--out", str(tmp_path / "file.txt" / "v.html")], capsys, "file.txt")


def test_view_to_a_name_too_long(base_run, tmp_path, capsys):
    check(["view", str(base_run), "--out", str(tmp_path / f"{LONG}.html")], capsys, "too long")


def test_ladder_into_a_file(base_run, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    check(["ladder", str(base_run), "--out", str(tmp_path / "file.txt" / "x")], capsys, "file.txt")


def test_build_into_a_file(base_run, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    check(["leaderboard", "build", str(base_run), "--out", str(tmp_path / "taken")], capsys, "taken")


def test_run_out_name_too_long(tmp_path, capsys):
    check(["run", *BASE, "--out", str(tmp_path / LONG)], capsys, "too long")


def test_run_out_not_permitted(capsys):
    check(["run", *BASE, "--out", "/sys/gapbench-test-run"], capsys, "/sys/gapbench-test-run")


def test_run_out_read_only_file_system(tmp_path, capsys, monkeypatch):
    """No read-only mount is at hand here: the folder's creation fails as it does on one (EROFS)."""
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if str(self).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    check(["run", *BASE, "--out", str(tmp_path / "o")], capsys, "read-only")


def test_view_read_only_file_system(base_run, tmp_path, capsys, monkeypatch):
    from gapbench.harness import safe_paths

    real = safe_paths.write_bytes

    def write_bytes(root, path, data, **k):
        if ".html" in Path(path).name:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(root, path, data, **k)

    monkeypatch.setattr(safe_paths, "write_bytes", write_bytes)
    check(["view", str(base_run), "--out", str(tmp_path / "v.html")], capsys, "read-only")


def test_lm_eval_tasks_into_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    check(["lm-eval-tasks", "--out", str(tmp_path / "taken" / "t"), "--tasks", "arith"], capsys, "taken")


# --- results.json files that the loader must refuse, read by every consumer -----------------------------


def _set(doc: dict, path: str, value) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        doc = doc[k]
    doc[keys[-1]] = value


DAMAGE = {
    "J-nan": ("generation.J.value", float("nan"), "generation.J.value"),
    "J-inf": ("generation.J.value", float("inf"), "generation.J.value"),
    "gap-neg-inf": ("verifiers.mc.gap.value", float("-inf"), "verifiers.mc.gap.value"),
    "ci-one": ("generation.J.ci", [0.5], "generation.J.ci"),
    "ci-three": ("verifiers.mc.gap.ci", [0.1, 0.2, 0.3], "verifiers.mc.gap.ci"),
    "ci-reversed": ("verifiers.mc.J_filtered.ci", [0.9, 0.1], "verifiers.mc.J_filtered.ci"),
    "ci-nan": ("generation.J.ci", [float("nan"), 0.5], "generation.J.ci"),
    "auroc-ci-one": ("verifiers.mc.verification.auroc_ci", [0.5], "auroc_ci"),
    "verifiers-empty": ("verifiers", {}, "verifiers"),
    "auroc-nan": ("verifiers.mc.verification.auroc", float("nan"), "auroc"),
    "timings-nan": ("timings", {"generate": float("nan")}, "timings.generate"),
    "meta-nan": ("model.params", float("nan"), "model.params"),
    "sizes-str": ("sizes.n", "4", "sizes.n"),
}
TEXT_DAMAGE = {
    "deep": ("[" * 100000 + "]" * 100000, "results.json"),
    "deep-in-field": None,  # built below: deep nesting inside the model's free-form metadata
    "big-number": None,  # 1e400 is read as infinity
    "top-list": ("[1, 2]", "results.json"),
    "empty": ("", "results.json"),
    "binary": ("\udcff", "results.json"),
}
READERS = ("view", "analyze", "build", "compare", "check")


def _damaged_run(base: Path, tmp: Path, name: str) -> Path:
    run = tmp / "run"
    shutil.copytree(base, run)
    path = run / "arith" / "results.json"
    text = path.read_text()
    if name in DAMAGE:
        doc = json.loads(text)
        field, value, _ = DAMAGE[name]
        _set(doc, field, value)
        path.write_text(json.dumps(doc))
    elif name == "deep-in-field":
        doc = json.loads(text)
        doc["model"]["nested"] = "@@"
        path.write_text(json.dumps(doc).replace('"@@"', "[" * 50000 + "]" * 50000))
    elif name == "big-number":
        doc = json.loads(text)
        doc["timings"]["x"] = "@@"
        path.write_text(json.dumps(doc).replace('"@@"', "1e400"))
    elif name == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_text(TEXT_DAMAGE[name][0])
    return run


def _reader_argv(reader: str, run: Path, base: Path, tmp: Path) -> list[str]:
    return {
        "view": ["view", str(run), "--out", str(tmp / "v.html")],
        "analyze": ["analyze", str(run)],
        "build": ["leaderboard", "build", str(run), "--out", str(tmp / "board")],
        "compare": ["leaderboard", "compare", str(base), str(run)],
        "check": ["leaderboard", "check", str(tmp / "board0"), "--against", str(run)],
    }[reader]


DAMAGES = [*DAMAGE, *TEXT_DAMAGE]
RESULT_CASES = [(d, r) for d in DAMAGES for r in READERS if not (r == "check" and d not in ("J-nan", "ci-one", "verifiers-empty", "deep"))]


@pytest.mark.parametrize("damage,reader", RESULT_CASES, ids=[f"{d}-{r}" for d, r in RESULT_CASES])
def test_damaged_results(damage, reader, base_run, tmp_path, capsys):
    run = _damaged_run(base_run, tmp_path, damage)
    if reader == "check":
        assert main(["leaderboard", "build", str(base_run), "--out", str(tmp_path / "board0")]) == 0
        capsys.readouterr()
    expect = DAMAGE[damage][2] if damage in DAMAGE else "timings.x" if damage == "big-number" else "results.json"
    check(_reader_argv(reader, run, base_run, tmp_path), capsys, expect)


# --- store lines of the wrong type: named by file and line -------------------------------------------

STORE_DAMAGE = [
    ("samples.jsonl", {"doc_id": "add1-0", "sample": 0, "response": 5}, "response"),
    ("samples.jsonl", {"doc_id": "add1-0", "sample": 0, "response": ["x"]}, "response"),
    ("samples.jsonl", {"doc_id": ["add1-0"], "sample": 0, "response": "x"}, "doc_id"),
    ("samples.jsonl", {"doc_id": "add1-0", "sample": "0", "response": "x"}, "sample"),
    ("samples.jsonl", {"doc_id": "add1-0", "sample": 1.5, "response": "x"}, "sample"),
    ("samples.jsonl", {"doc_id": "add1-0", "sample": -1, "response": "x"}, "sample"),
    ("samples.jsonl", {"doc_id": "add1-0", "sample": 0, "response": "x", "gen_tokens": "many"}, "gen_tokens"),
    ("samples.jsonl", [1, 2], "samples.jsonl"),
    ("samples.jsonl", "text", "samples.jsonl"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": "mc", "key": "0:Correct", "reply": "abc", "kind": "loglikelihood"}, "reply"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": "mc", "key": "0:Correct", "reply": None, "kind": "loglikelihood"}, "reply"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": "mc", "key": "0:Correct", "reply": [1], "kind": "loglikelihood"}, "reply"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": ["mc"], "key": "0:Correct", "reply": -1.0}, "method"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": "mc", "key": ["0:Correct"], "reply": -1.0}, "key"),
    ("verdicts.jsonl", {"doc_id": {"a": 1}, "method": "mc", "key": "0:Correct", "reply": -1.0}, "doc_id"),
    ("verdicts.jsonl", {"doc_id": "add1-0", "method": "mc", "key": "0:Correct", "reply": -1.0, "judged": 7}, "judged"),
    ("timings.jsonl", {"stage": "generate", "seconds": "abc"}, "seconds"),
    ("timings.jsonl", {"stage": ["generate"], "seconds": 1.0}, "stage"),
    ("timings.jsonl", {"stage": "generate"}, "seconds"),
    ("run.json", [1, 2], "run.json"),
    ("run.json", {"hash": 5}, "run.json"),
]


@pytest.mark.parametrize("reader", ["run", "view"])
@pytest.mark.parametrize("name,record,expect", STORE_DAMAGE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(STORE_DAMAGE)])
def test_store_line_of_the_wrong_type(name, record, expect, reader, base_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    path = run / "arith" / name
    if name == "run.json":
        if reader == "view":
            pytest.skip("view reads results.json, not run.json")
        path.write_text(json.dumps(record))
    else:
        lines = path.read_text().splitlines()
        lines[0] = json.dumps(record)  # the first line replaced: the key exists, its value is damaged
        path.write_text("\n".join(lines) + "\n")
    argv = ["run", *BASE, "--out", str(run)] if reader == "run" else ["view", str(run), "--out", str(tmp_path / "v.html")]
    code, err = call(argv, capsys)
    if reader == "view" and code == 0:
        return  # view shows what the stage files hold without this field: nothing to refuse
    assert "Traceback" not in err and code == 2, f"exit {code}: {err[-800:]}"
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and name in errors[0] and expect in errors[0], errors
    if name.endswith(".jsonl"):
        assert f"{name}:1" in errors[0], errors[0]


# --- names: mathtext in plots, names over 255 bytes ----------------------------------------------------

NAMES = ["$x^$", "$\\frac{", "a$b$c", "$$", "\\$5 $\\alpha", "_^{}$"]


@pytest.mark.parametrize("name", NAMES)
def test_model_name_matplotlib_reads_as_mathtext(name, tmp_path, capsys):
    """A board of a model named like mathtext builds (its plots show the name as text)."""
    out = tmp_path / "run"
    assert main(["run", *BASE, "--model-meta", f"name={name},params=1e8,tokens=1e9", "--out", str(out)]) == 0
    capsys.readouterr()
    code, err = call(["leaderboard", "build", str(out), "--out", str(tmp_path / "board")], capsys)
    assert code == 0, err[-800:]
    assert name in (tmp_path / "board" / "leaderboard.json").read_text().replace("\\\\", "\\")


def test_model_name_over_255_bytes_builds_a_board(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *BASE, "--model-meta", f"name={LONG}", "--out", str(out)]) == 0
    capsys.readouterr()
    code, err = call(["leaderboard", "build", str(out), "--out", str(tmp_path / "board")], capsys)
    assert code == 0, err[-800:]


# --- sizes that cannot fit: refused before any model work -------------------------------------------


def test_n_boot_too_big_is_refused_before_model_work(tmp_path, capsys):
    check(["run", *BASE, "--n-boot", "500000000", "--out", str(tmp_path / "o")], capsys, "--n-boot")
    assert not (tmp_path / "o" / "arith" / "samples.jsonl").exists()


def test_memory_error_is_one_sentence(base_run, tmp_path, capsys, monkeypatch):
    """A MemoryError in scoring (a size the up-front limits let through on a small machine) ends as one sentence."""
    from gapbench.harness import metrics

    def boom(*a, **k):
        raise MemoryError()

    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    (run / "arith" / "results.json").unlink()
    monkeypatch.setattr(metrics, "bootstrap", boom)
    check(["run", *BASE, "--out", str(run)], capsys, "memory")
