"""``gapbench run --ray ADDRESS --shards N`` on a real Ray cluster started on this machine
(``ray start --head`` on loopback): two shards of the embedded model as Ray tasks, merged into
the unsharded run's results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra (gapbench[ray]) is not installed")

from gapbench.harness import launch_ray  # noqa: E402
from gapbench.harness.errors import GapbenchError  # noqa: E402
from gapbench.harness.runner import Runner, RunOptions  # noqa: E402

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head node of this machine with 2 CPUs; its address; stopped after the module."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = [ray_bin(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, text=True, env=env, timeout=180)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin(), "stop", "--force"], capture_output=True, env=env, timeout=120)


def results(path: Path) -> dict:
    data = json.loads(path.read_text())
    data["created"], data["timings"], data["run"]["dir"] = "-", {}, "-"
    return data


def test_two_shards_as_ray_tasks_merge_into_the_unsharded_run(tmp_path, cluster, shared_data, embedded_model):
    address, env = cluster
    args = ["--tasks", "gsm8k", "--data-dir", str(shared_data), "--limit", "3", "--n", "2", "--max-gen-toks", "24",
            "--verify-max-gen-toks", "12", "--verifiers", "mc,cot-binary", "--n-boot", "100"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "gapbench.harness.cli", "run", *args, "--out", "sharded", "--ray", address, "--shards", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shard 0/2 finished" in done.stderr and "shard 1/2 finished" in done.stderr and "merging" in done.stderr
    assert "J(f)" in done.stdout or "gsm8k" in done.stdout  # the merged run's report
    sharded = tmp_path / "sharded" / "gsm8k"
    for i in range(2):  # each shard ran as its own task, in its own store, and finished
        record = json.loads((sharded / f"shard-{i}-of-2" / "done.json").read_text())
        assert record["shard"] == f"{i}/2" and len(record["doc_ids"]) == (2 if i == 0 else 1)
        assert record["threads"] == 1  # the cluster's OMP_NUM_THREADS (Ray's own default for a task of 1 CPU)
    assert "different CPU thread counts" not in done.stderr
    # one process with the shards' thread count: the same results, byte for byte
    one = subprocess.run([sys.executable, "-m", "gapbench.harness.cli", "run", *args, "--out", "one"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    assert results(sharded / "results.json") == results(tmp_path / "one" / "gsm8k" / "results.json")
    ours, theirs = ((p / "samples.jsonl").read_text().splitlines() for p in (sharded, tmp_path / "one" / "gsm8k"))
    assert sorted(ours) == sorted(theirs)
    assert (sharded / "grades.jsonl").read_bytes() == (tmp_path / "one" / "gsm8k" / "grades.jsonl").read_bytes()

    # the same command again: every shard's store is complete, so nothing is sampled twice
    before = {p.name: (p / "samples.jsonl").read_bytes() for p in sharded.glob("shard-*")}
    again = subprocess.run(
        [sys.executable, "-m", "gapbench.harness.cli", "run", *args, "--out", "sharded", "--ray", address, "--shards", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(resuming)" in again.stderr
    assert {p.name: (p / "samples.jsonl").read_bytes() for p in sharded.glob("shard-*")} == before


def test_ray_options_are_checked_before_any_cluster_is_reached(tmp_path):
    with pytest.raises(GapbenchError, match="--ray ADDRESS and --shards N go together"):
        launch_ray.run(RunOptions(ray="local", out=str(tmp_path)), log=lambda *_: None)
    with pytest.raises(GapbenchError, match="--shards must be 1 or more"):
        launch_ray.run(RunOptions(ray="local", shards=0, out=str(tmp_path)), log=lambda *_: None)
    with pytest.raises(GapbenchError, match="drop --shard"):
        Runner(RunOptions(ray="local", shards=2, shard="0/2", out=str(tmp_path)), log=lambda *_: None)


def test_a_shard_asks_ray_for_what_its_model_runs_on():
    assert launch_ray.resources(RunOptions(model="vllm", model_args="pretrained=x,tensor_parallel_size=2")) == {"num_cpus": 1, "num_gpus": 2}
    assert launch_ray.resources(RunOptions(model="hf", model_args="pretrained=x,device=cuda:0")) == {"num_cpus": 1, "num_gpus": 1}
    assert launch_ray.resources(RunOptions()) == {"num_cpus": 1, "num_gpus": 0}
