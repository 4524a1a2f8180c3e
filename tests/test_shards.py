"""``gapbench run --shard i/N`` and ``gapbench merge``: the shards partition the prompts, and the
merged run's results.json is the unsharded run's byte for byte (its ``created`` time and
``timings`` aside), on the fake model (every verifier kind, tournament rounds included) and on the
real embedded model (marked ``model``)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from gapbench.harness import shards
from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.runner import Runner, RunOptions

FAKE = dict(
    model="gapbench-fake",
    model_args="arith=0.5",
    tasks=["arith"],
    task_args={"arith": {"levels": "add1+add2", "per_level": "5"}},
    verifiers=["mc", "cot-binary", "tournament"],
    n=3,
    n_boot=100,
)


def quiet(opts, **kw):
    return Runner(opts, log=lambda *_: None, **kw)


def normalised(path) -> str:
    """results.json's text with the fields that differ between any two runs (when it was written,
    how long it took) set to one value; every other byte is kept."""
    data = json.loads(path.read_text())
    data["created"], data["timings"] = "-", {}
    return json.dumps(data, indent=2)


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_sharded(base: dict, out, count: int) -> None:
    for i in range(count):
        assert quiet(RunOptions(**base, out=str(out), shard=f"{i}/{count}")).run() == []  # a shard does not score


def test_shards_partition_the_prompts_in_order():
    docs = list(range(10))
    parts = [shards.take(docs, f"{i}/3") for i in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(sum(parts, [])) == docs


@pytest.mark.parametrize("text", ["3/3", "1", "a/2", "-1/2", "1/0"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(GapbenchError, match="--shard"):
        RunOptions(shard=text).check()


def test_merged_shards_are_the_unsharded_run(tmp_path):
    out = tmp_path / "run"
    one = quiet(RunOptions(**FAKE, out=str(out))).run()[0]
    shutil.move(out, tmp_path / "one")  # the same run directory for both, so run.dir is the same too
    run_sharded(FAKE, out, 3)
    assert not (out / "arith" / "results.json").exists()
    for i in range(3):
        shard = out / "arith" / f"shard-{i}-of-3"
        done = json.loads((shard / "done.json").read_text())
        assert done["config_hash"] == one.run.config_hash and len(done["doc_ids"]) in (3, 4)
        assert {r["doc_id"] for r in lines(shard / "samples.jsonl")} == set(done["doc_ids"])

    merger = quiet(RunOptions(**FAKE, out=str(out)), merge_only=True)
    merged = merger.run()[0]
    assert merger.model.calls == 0 and not merger.model.loaded
    assert normalised(out / "arith" / "results.json") == normalised(tmp_path / "one" / "arith" / "results.json")
    assert merged.model == one.model  # as the shards that loaded it recorded it
    assert (out / "arith" / "grades.jsonl").read_bytes() == (tmp_path / "one" / "arith" / "grades.jsonl").read_bytes()
    assert (out / "arith" / "run.json").read_bytes() == (tmp_path / "one" / "arith" / "run.json").read_bytes()

    # merging again (or a plain run now) adds nothing and duplicates nothing
    sizes = {p: (out / "arith" / p).stat().st_size for p in ("samples.jsonl", "verdicts.jsonl")}
    again = quiet(RunOptions(**FAKE, out=str(out)))
    again.run()
    assert not again.model.loaded
    assert {p: (out / "arith" / p).stat().st_size for p in sizes} == sizes
    keys = Counter((r["doc_id"], r["method"], r["key"]) for r in lines(out / "arith" / "verdicts.jsonl"))
    assert max(keys.values()) == 1 and sum(keys.values()) == sum(1 for _ in lines(tmp_path / "one" / "arith" / "verdicts.jsonl"))


def test_unfinished_shards_stop_merge_and_run_naming_them(tmp_path, capsys):
    out = tmp_path / "run"
    quiet(RunOptions(**FAKE, out=str(out), shard="1/3")).run()
    with pytest.raises(GapbenchError, match=r"shard\(s\) 0/3, 2/3 of 3 are not finished.*--shard 0/3 and --shard 2/3"):
        quiet(RunOptions(**FAKE, out=str(out)), merge_only=True).run()
    runner = quiet(RunOptions(**FAKE, out=str(out)))  # a plain run would redo the shards' prompts beside them
    with pytest.raises(GapbenchError, match="not finished"):
        runner.run()
    assert not runner.model.loaded and not (out / "arith" / "samples.jsonl").exists()

    # the command line: exit 2 and the same sentence; a merge of a folder without shards says so
    argv = ["--model", "gapbench-fake", "--model-args", "arith=0.5", "--task-args", "arith.levels=add1+add2,arith.per_level=5",
            "--verifiers", "mc,cot-binary,tournament", "--n", "3", "--n-boot", "100"]  # fmt: skip
    assert main(["merge", *argv, "--out", str(out)]) == 2
    assert "--shard 0/3 and --shard 2/3" in capsys.readouterr().err
    assert main(["merge", *argv, "--out", str(tmp_path / "empty")]) == 2
    assert "holds no shards" in capsys.readouterr().err


def test_shards_of_another_configuration_or_split_are_refused(tmp_path):
    out, other = tmp_path / "run", tmp_path / "other"
    run_sharded(FAKE, out, 2)
    run_sharded({**FAKE, "seed": 7}, other, 2)
    with pytest.raises(GapbenchError, match=r"shard\(s\) of another run: shard-0-of-2 \(configuration"):  # merged with other settings
        quiet(RunOptions(**{**FAKE, "seed": 7}, out=str(out)), merge_only=True).run()
    shutil.rmtree(out / "arith" / "shard-1-of-2")
    shutil.copytree(other / "arith" / "shard-1-of-2", out / "arith" / "shard-1-of-2")  # another seed's shard
    with pytest.raises(GapbenchError, match=r"shard-1-of-2 \(configuration [0-9a-f]+, this run's is"):
        quiet(RunOptions(**FAKE, out=str(out)), merge_only=True).run()
    run_sharded(FAKE, out, 1)  # a second split of the same run beside the first
    with pytest.raises(GapbenchError, match="different counts"):
        quiet(RunOptions(**FAKE, out=str(out)), merge_only=True).run()
    assert not (out / "arith" / "samples.jsonl").exists()  # nothing was merged


def test_merging_shards_of_different_thread_counts_says_so(tmp_path):
    dirs = []
    for i, threads in enumerate((1, 2, None)):
        d = tmp_path / f"shard-{i}-of-3"
        d.mkdir()
        shards.mark_done(d, f"{i}/3", "h", [], {})
        record = json.loads((d / "done.json").read_text())
        (d / "done.json").write_text(json.dumps({**record, "threads": threads}))
        dirs.append(d)
    assert "thread counts (1, 2)" in shards.thread_note(dirs) and "OMP_NUM_THREADS" in shards.thread_note(dirs)
    assert shards.thread_note(dirs[:1] + dirs[2:]) is None  # one count (or unknown): nothing to say


def test_a_shard_with_no_prompts_is_refused(tmp_path):
    with pytest.raises(GapbenchError, match="has only 10 prompts, so this shard has none"):
        quiet(RunOptions(**FAKE, out=str(tmp_path), shard="11/12")).run()


@pytest.mark.model
def test_merged_shards_of_the_embedded_model_are_the_unsharded_run(tmp_path, shared_data, embedded_model):
    base = dict(tasks=["gsm8k"], data_dir=str(shared_data), limit=3, n=2, max_gen_toks=32, verify_max_gen_toks=16, verifiers=["mc", "cot-binary"], n_boot=100)
    out = tmp_path / "run"
    quiet(RunOptions(**base, out=str(out))).run()
    shutil.move(out, tmp_path / "one")
    run_sharded(base, out, 2)
    quiet(RunOptions(**base, out=str(out)), merge_only=True).run()
    # byte for byte: a sample's log-probabilities do not depend on which prompts share its call
    assert normalised(out / "gsm8k" / "results.json") == normalised(tmp_path / "one" / "gsm8k" / "results.json")
    assert sorted((out / "gsm8k" / "samples.jsonl").read_text().splitlines()) == sorted((tmp_path / "one" / "gsm8k" / "samples.jsonl").read_text().splitlines())
    assert (out / "gsm8k" / "grades.jsonl").read_bytes() == (tmp_path / "one" / "gsm8k" / "grades.jsonl").read_bytes()
