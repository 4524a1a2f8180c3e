"""The run store: one directory per task run, stages appending to JSONL files.

```
<out>/<task>/run.json        resolved configuration and its hash
<out>/<task>/samples.jsonl   one record per (doc_id, sample)
<out>/<task>/verdicts.jsonl  one record per (doc_id, method, key)
<out>/<task>/grades.jsonl    g and the extracted answer per sample (derived, rewritten each scoring)
<out>/<task>/timings.jsonl   seconds per stage per invocation
<out>/<task>/results.json    every metric (schema_version)
```

Records are appended and fsynced a batch at a time, so a killed run loses at
most the batch in flight; a torn last line is dropped on the next open.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from harness.config import RunConfig, differences
from harness.errors import GapbenchError
from harness.jsonl import append_jsonl, read_jsonl, require
from harness.results import Results
from harness.results import write as write_results


class RunStore:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.samples_path = self.dir / "samples.jsonl"
        self.verdicts_path = self.dir / "verdicts.jsonl"
        self.grades_path = self.dir / "grades.jsonl"
        self.timings_path = self.dir / "timings.jsonl"
        self.results_path = self.dir / "results.json"
        self.run_path = self.dir / "run.json"

    # --- configuration -----------------------------------------------------
    def open(self, config: RunConfig) -> bool:
        """Create the store, or check that it holds a run of the same configuration.
        Returns True when earlier work was found."""
        self.dir.mkdir(parents=True, exist_ok=True)
        new = config.to_json()
        if self.run_path.exists():
            try:
                old = json.loads(self.run_path.read_text())
            except json.JSONDecodeError as exc:
                raise GapbenchError(f"{self.run_path}: not valid JSON ({exc}). Restore it or choose another --out.") from None
            if old.get("hash") != new["hash"]:
                diff = differences({k: old.get(k) for k in RunConfig.IDENTITY}, config.identity())
                raise GapbenchError(
                    f"{self.dir} holds a run with a different configuration; refusing to mix them. Differences: "
                    + "; ".join(diff)
                    + ". Use another --out, or the same settings to resume."
                )
        for path in (self.samples_path, self.verdicts_path):
            _drop_torn_tail(path)
        resumed = self.samples_path.exists() and self.samples_path.stat().st_size > 0
        _write_json(self.run_path, new)
        return resumed

    # --- samples -----------------------------------------------------------
    def samples(self) -> dict[str, dict[int, dict]]:
        """doc_id -> sample index -> record."""
        out: dict[str, dict[int, dict]] = defaultdict(dict)
        if self.samples_path.exists():
            for r in read_jsonl(self.samples_path):
                doc_id = require(r, "doc_id", self.samples_path)
                out[str(doc_id)][int(require(r, "sample", self.samples_path))] = r
                require(r, "response", self.samples_path)
        return out

    def add_samples(self, records: list[dict]) -> None:
        append_jsonl(self.samples_path, records)

    # --- verdicts ----------------------------------------------------------
    def replies(self) -> dict[str, dict[str, dict]]:
        """method -> doc_id -> key -> reply."""
        out: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
        if self.verdicts_path.exists():
            for r in read_jsonl(self.verdicts_path):
                method = require(r, "method", self.verdicts_path)
                doc_id = str(require(r, "doc_id", self.verdicts_path))
                out[method][doc_id][require(r, "key", self.verdicts_path)] = require(r, "reply", self.verdicts_path)
        return out

    def add_verdicts(self, records: list[dict]) -> None:
        append_jsonl(self.verdicts_path, records)

    # --- derived files -----------------------------------------------------
    def write_grades(self, records: list[dict]) -> None:
        tmp = self.grades_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        os.replace(tmp, self.grades_path)

    def add_timing(self, stage: str, seconds: float, **extra) -> None:
        append_jsonl(self.timings_path, [{"stage": stage, "seconds": round(seconds, 3), **extra}])

    def timings(self) -> dict[str, float]:
        total: dict[str, float] = defaultdict(float)
        if self.timings_path.exists():
            for r in read_jsonl(self.timings_path, tolerate_torn_tail=True):
                total[r["stage"]] += float(r["seconds"])
        return {k: round(v, 3) for k, v in total.items()}

    def write_results(self, results: Results) -> None:
        """results.json (a :class:`harness.results.Results`), written atomically."""
        write_results(self.results_path, results)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline: its stage writes it again."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)
