"""One run over many processes or machines: ``gapbench run --shard i/N`` and ``gapbench merge``.

Shard ``i`` of ``N`` takes the prompts at positions ``i, i + N, i + 2N, ...`` of the task's
document list (the same list an unsharded run uses, so the shards partition it exactly) and
writes its own store in ``<run dir>/<task>/shard-i-of-N/``, with the run's configuration and
hash: the samples and verdicts it stores are those an unsharded run stores for its prompts,
since every request's seed comes from its key (:func:`harness.runner.seeded`), never from the
batch. A shard that finished its model work writes ``done.json`` there; it does not score.

Merging (``gapbench merge`` with the run's options, or the first ``gapbench run`` without
``--shard`` once every shard is done) copies the shards' samples and verdicts into the run's
own store, adding only what it lacks, and then scores as an unsharded run does, so
``results.json`` is the unsharded run's (its ``created`` time and ``timings`` aside) byte for
byte: no log-probability depends on which prompts share a call (:mod:`harness.models.prefix_cache`).
On a CPU that holds where the shards and the unsharded run use the same number of threads;
``done.json`` records each shard's, and merging says where they differ.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from gapbench.harness import safe_paths
from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import read_jsonl
from gapbench.harness.settings import parse_shard

DONE = "done.json"
PATTERN = re.compile(r"^shard-(\d+)-of-(\d+)$")


def split(shard: str) -> tuple[int, int]:
    index, count = parse_shard(shard).split("/")
    return int(index), int(count)


def folder(shard: str) -> str:
    index, count = split(shard)
    return f"shard-{index}-of-{count}"


def take(docs: list, shard: str) -> list:
    """Shard ``i/N``'s prompts: every N-th document from position i."""
    index, count = split(shard)
    return docs[index::count]


def mark_done(directory: Path, shard: str, config_hash: str, doc_ids: list[str], meta: dict) -> None:
    """``done.json``: the shard's model work is finished. ``meta`` holds the model metadata of
    results.json as the shard saw the loaded model (None where it loaded none), for the merged run,
    which loads no model."""
    torch = sys.modules.get("torch")  # loaded with the model: how many CPU threads its sums were split over
    threads = torch.get_num_threads() if torch is not None else None
    record = {"shard": shard, "config_hash": config_hash, "doc_ids": doc_ids, "threads": threads, **meta}
    safe_paths.write_text(directory, directory / DONE, json.dumps(record, indent=1) + "\n")


def thread_note(shard_dirs: list[Path]) -> str | None:
    """A line for the log where the shards ran with different numbers of CPU threads: torch's CPU
    kernels split sums by thread, so their log-probabilities (and the metrics continuous in u, ECE
    and Brier) can differ from one process's in the 7th digit; counts, grades and ranks cannot."""
    counts = sorted({json.loads((p / DONE).read_text()).get("threads") for p in shard_dirs} - {None})
    if len(counts) < 2:
        return None
    return (
        f"note: the shards ran with different CPU thread counts ({', '.join(map(str, counts))}); their log-probabilities "
        "may differ from a one-process run's in the 7th digit. Set OMP_NUM_THREADS to one value for byte-identical results."
    )


def model_meta(shard_dirs: list[Path]) -> dict:
    """``{"model": ..., "verifier_model": ...}``: the first metadata a shard recorded of each."""
    out: dict = {}
    for path in shard_dirs:
        record = json.loads((path / DONE).read_text())
        for which in ("model", "verifier_model"):
            if record.get(which) and which not in out:
                out[which] = record[which]
    return out


def _position(name: str) -> tuple[int, int] | None:
    """``(index, count)`` of a shard folder's name (``shard-2-of-4`` -> ``(2, 4)``), else None."""
    m = PATTERN.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _position_of(shard: Path) -> tuple[int, int]:
    """``(index, count)`` of a folder :func:`found` returned (its name matched)."""
    pos = _position(shard.name)
    assert pos is not None, shard
    return pos


def found(run_dir: Path) -> list[Path]:
    """The shard folders under a task's run directory."""
    if not run_dir.is_dir():
        return []
    return sorted((p for p in run_dir.iterdir() if p.is_dir() and _position(p.name)), key=_position_of)


def check_complete(run_dir: Path, config_hash: str, docs: list, command_hint: str) -> list[Path]:
    """The shard folders of ``run_dir`` in shard order, once every one of them is done with this
    configuration and they cover ``docs``; else an error that names what is missing."""
    shards = found(run_dir)
    counts = sorted({_position_of(p)[1] for p in shards})
    if len(counts) > 1:
        raise GapbenchError(
            f"{run_dir} holds shards of different counts ({', '.join(f'N={c}' for c in counts)}): one run is split one way. "
            "Move the folders of the other split away and merge again."
        )
    count = counts[0]
    by_index = {_position_of(p)[0]: p for p in shards}
    missing, wrong = [], []
    for index in range(count):
        path = by_index.get(index)
        done = path / DONE if path else None
        if path is None or done is None or not done.is_file():
            missing.append(f"{index}/{count}")
            continue
        try:
            record = json.loads(done.read_text())
        except json.JSONDecodeError as exc:
            raise GapbenchError(f"{done}: not valid JSON ({exc}); run that shard again to write it anew.") from None
        if record.get("config_hash") != config_hash:
            wrong.append(f"{path.name} (configuration {record.get('config_hash')}, this run's is {config_hash})")
        elif record.get("doc_ids") != [d.doc_id for d in take(docs, f"{index}/{count}")]:
            wrong.append(f"{path.name} (it ran other prompts than shard {index}/{count} of this run's {len(docs)})")
    if wrong:
        raise GapbenchError(f"{run_dir}: shard(s) of another run: {'; '.join(wrong)}. Use the same settings as the shards, or another --out.")
    if missing:
        raise GapbenchError(
            f"{run_dir}: shard(s) {', '.join(missing)} of {count} are not finished. Run {command_hint} with "
            + " and ".join(f"--shard {m}" for m in missing)
            + " (a killed shard resumes), then merge."
        )
    return [by_index[i] for i in range(count)]


def merge(store, shard_dirs: list[Path], docs: list) -> int:
    """Copy into ``store`` (an open :class:`harness.store.RunStore`) the samples and verdicts of
    ``shard_dirs`` that it lacks, samples in document order; a shard's timings are added with it
    the first time it brings anything. Returns how many records were added."""
    from gapbench.harness.store import RunStore

    have = store.samples()
    have_verdicts = {(m, d, k) for m, per_doc in store.replies().items() for d, keys in per_doc.items() for k in keys}
    order = {d.doc_id: i for i, d in enumerate(docs)}
    added = 0
    for path in shard_dirs:
        shard = RunStore(path)
        new_samples = [_plain(r) for per_doc in shard.samples().values() for r in per_doc.values() if r["sample"] not in have.get(str(r["doc_id"]), {})]
        new_samples.sort(key=lambda r: (order.get(str(r["doc_id"]), len(order)), r["sample"]))
        new_verdicts = []
        if shard.verdicts_path.exists():
            seen = set(have_verdicts)
            for r in read_jsonl(shard.verdicts_path):
                key = (r["method"], str(r["doc_id"]), r["key"])
                if key not in seen:
                    seen.add(key)
                    new_verdicts.append(_plain(r))
        if not new_samples and not new_verdicts:
            continue
        store.add_samples(new_samples)
        store.add_verdicts(new_verdicts)
        if shard.timings_path.exists():
            for r in read_jsonl(shard.timings_path, tolerate_torn_tail=True):
                store.add_timing(r["stage"], float(r["seconds"]), **{k: v for k, v in _plain(r).items() if k not in ("stage", "seconds", "shard")}, shard=path.name)
        have_verdicts |= {(r["method"], str(r["doc_id"]), r["key"]) for r in new_verdicts}
        added += len(new_samples) + len(new_verdicts)
    return added


def _plain(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "__line__"}
