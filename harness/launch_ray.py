"""One run's shards as Ray tasks: ``gapbench run --ray ADDRESS --shards N``.

gapbench has no scheduler of its own. Each shard is the ``--shard i/N`` run of
:mod:`harness.shards` (its own store, resumable, ``done.json`` when its model work is done), and
Ray only places the N of them on a cluster with the resources each needs: one GPU per shard for
vLLM (``tensor_parallel_size`` of them where that is set) or a CUDA ``hf`` model, one CPU
otherwise. When every shard has finished, the driver (this process) merges and scores them as
``gapbench merge`` does, so ``results.json`` is the unsharded run's.

The run directory must be one that every node sees (``--out`` on a shared disk, and
``--data-dir`` likewise where it is given); both are made absolute here. A shard that fails stops
nothing else; the run then ends with an error that names it, and the same command resumes: the
finished shards' stores are complete, so only the failed shards do work.

``ADDRESS`` is Ray's: ``auto`` (a cluster started on this node with ``ray start``),
``host:port``, ``ray://host:10001`` (Ray Client), or ``local`` to start a cluster of this machine
for the run and stop it after.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

from gapbench.harness.errors import GapbenchError
from gapbench.harness.settings import RunOptions


def resources(opts: RunOptions) -> dict:
    """What one shard asks Ray for: GPUs for a model that runs on them, one CPU otherwise."""
    from gapbench.harness.models import backends

    args = backends.parse_model_args(opts.model_args)
    model = opts.model or ""
    if model == "vllm":
        return {"num_cpus": 1, "num_gpus": int(args.get("tensor_parallel_size", 1)) * int(args.get("pipeline_parallel_size", 1))}
    if str(args.get("device", "")).startswith("cuda"):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1, "num_gpus": 0}


def _absolute(opts: RunOptions) -> RunOptions:
    """The run's options as every shard takes them: paths absolute (a worker's working directory
    is not the driver's), no --ray."""
    out = str(Path(opts.out).expanduser().resolve()) if opts.out else None
    data_dir = str(Path(opts.data_dir).expanduser().resolve()) if opts.data_dir else None
    return replace(opts, ray=None, shards=None, shard=None, out=out, data_dir=data_dir)


def run_shard(opts: RunOptions, index: int, count: int, cwd: str) -> dict:
    """The body of one Ray task: ``gapbench run --shard index/count`` in the worker. Its log lines
    go to the worker's stderr, which Ray shows on the driver's terminal."""
    from gapbench.harness.runner import Runner

    if os.path.isdir(cwd):  # the default run directory (runs/...) is relative to the driver's
        os.chdir(cwd)
    shard = f"{index}/{count}"
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[shard {shard}] {msg}", file=sys.stderr, flush=True)

    Runner(replace(opts, shard=shard), log=log).run()
    return {"shard": shard, "host": socket.gethostname(), "seconds": round(time.perf_counter() - start, 1)}


def run(opts: RunOptions, log=print) -> list:
    """Run ``opts.shards`` shards of the run on the Ray cluster at ``opts.ray``, then merge and
    score them here. Returns the merged run's results, as :meth:`Runner.run` does."""
    from gapbench.harness.runner import Runner

    opts.check()
    try:
        import ray
    except ImportError:
        raise GapbenchError("--ray needs Ray on this machine and on the cluster's: pip install 'gapbench[ray]'.") from None
    count = opts.shards
    if count is None:  # opts.check() refuses --ray without --shards
        raise GapbenchError("--ray ADDRESS and --shards N go together (example: --ray local --shards 2)")
    base = _absolute(opts)
    # resolve the model and check the options here, once: the embedded model converts before any
    # shard starts, and a mistake stops the run before it reaches the cluster
    merger = Runner(base, log=log, merge_only=True)
    need = resources(base)
    started = time.perf_counter()
    try:
        ray.init(address=opts.ray, include_dashboard=False, log_to_driver=True, configure_logging=False)
    except Exception as exc:  # ConnectionError, ValueError: Ray's words name the address
        raise GapbenchError(f"--ray {opts.ray}: could not reach a Ray cluster there ({type(exc).__name__}: {exc}). Start one (ray start --head) or use --ray local.") from None
    try:
        have = ray.cluster_resources()
        if need["num_gpus"] and have.get("GPU", 0) < need["num_gpus"]:
            raise GapbenchError(f"--ray {opts.ray}: each shard needs {need['num_gpus']} GPU(s) and the cluster has {int(have.get('GPU', 0))}; add GPU nodes or use another --model.")
        log(f"ray: {count} shard(s) on {opts.ray} ({int(have.get('CPU', 0))} CPUs, {int(have.get('GPU', 0))} GPUs), each with {need}")
        # max_calls=1: the worker exits after its shard, so a model's memory goes with it
        task = ray.remote(max_calls=1, max_retries=0, **need)(run_shard)
        pending = {task.remote(base, i, count, os.getcwd()): f"{i}/{count}" for i in range(count)}
        failed = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(ready[0])
            try:
                info = ray.get(ready[0])
                log(f"ray: shard {shard} finished on {info['host']} in {info['seconds']} s ({len(pending)} to go)")
            except Exception as exc:  # RayTaskError wraps the shard's own error
                cause = getattr(exc, "cause", None) or exc
                failed.append(f"{shard} ({type(cause).__name__}: {str(cause).strip().splitlines()[-1][:300] if str(cause).strip() else ''})")
                log(f"ray: shard {shard} failed")
    finally:
        ray.shutdown()
    if failed:
        raise GapbenchError(
            f"shard(s) {'; '.join(failed)} failed. What every shard finished is stored; "
            "run the same command again to resume (the finished shards do no work)."
        )
    log(f"ray: {count} shard(s) done in {time.perf_counter() - started:.1f} s; merging")
    return merger.run()
