"""A board's per-prompt records, ``prompts/<slug>.json``: for each recorded result, its prompts' ground
truth g and each verifier's keep mask (the run's own filter), so that a rebuild can resample prompts for
the scaling fit's intervals without the run directory.

A build takes a result's record from its run directory when it is given one (the run read back and
rescored once, :func:`harness.stored_run.load_stored_run`), else from the board that holds the result
(``<board>/prompts/<slug>.json`` beside ``<board>/results/<slug>.json``, or the board being built). A
record names the digest of the results.json bytes it belongs to: a record of another result is not used,
and a record whose numbers do not give the result's J(f) and relative gaps is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gapbench.harness.errors import GapbenchError
from gapbench.harness.metrics import per_prompt_accuracy
from gapbench.harness.report import verifier_order
from gapbench.leaderboards import board as doc
from gapbench.leaderboards.entries import Entry
from gapbench.leaderboards.scaling import PromptGaps

PROMPTS_DIR = "prompts"
RECORD_FORMAT = 1
TOLERANCE = 1e-9


@dataclass
class PromptRecord:
    """g per prompt and sample (``"0110"``), and per verifier which samples its filter keeps (``"1100"``)."""

    format: int
    results_sha256: str  # the results.json bytes this record belongs to
    task: str
    split: str | None
    docs_sha256: str | None  # run.json's digest of the task's documents (None: not recorded)
    doc_ids: list[str]
    g: list[str]
    keep: dict[str, list[str]]

    def arrays(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        """G and K (prompts x n) of ``method``, in the record's prompt order."""
        G = np.array([[c == "1" for c in row] for row in self.g], dtype=float)
        K = np.array([[c == "1" for c in row] for row in self.keep[method]], dtype=bool)
        return G, K

    def gaps(self, method: str) -> PromptGaps:
        """The per-prompt relative gaps of ``method``, keyed by the prompts they are over."""
        G, K = self.arrays(method)
        J_x, Jw_x, _ = per_prompt_accuracy(G, K)
        return PromptGaps.from_accuracy((self.task, self.split, self.docs_sha256, tuple(self.doc_ids)), J_x, Jw_x)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def dumps(record: PromptRecord) -> str:
    return json.dumps(doc.to_json(record), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _bits(values: Iterable[object]) -> str:
    return "".join("1" if v else "0" for v in values)


def from_run(e: Entry) -> PromptRecord:
    """The record of an entry read from a run directory: g and the keep masks of its stored run, the
    prompts sorted by doc id (so two runs of the same prompts line up)."""
    from gapbench.harness.store import RunStore
    from gapbench.harness.stored_run import load_stored_run

    run = load_stored_run(e.source)
    docs = (RunStore(run.dir).recorded().get("digests") or {}).get("docs")
    doc_ids = sorted(run.doc_ids)
    keeps = {m: run.keep(m) for m in verifier_order(e.results.verifiers) if m in run.verifiers}
    record = PromptRecord(
        format=RECORD_FORMAT,
        results_sha256=digest(e.raw),
        task=e.task,
        split=e.results.task.split,
        docs_sha256=docs.get("sha256") if isinstance(docs, dict) and isinstance(docs.get("sha256"), str) else None,
        doc_ids=doc_ids,
        g=[_bits(run.g(d)) for d in doc_ids],
        keep={m: [_bits(k[d]) for d in doc_ids] for m, k in keeps.items()},
    )
    check(record, e, str(run.dir))
    return record


def load(path: Path, e: Entry) -> PromptRecord | None:
    """The record at ``path`` if it belongs to ``e``'s results (None when it belongs to another result)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GapbenchError(f"{path}: not a per-prompt record ({type(exc).__name__}: {exc}); delete it and build the board from the run directory.") from None
    record: PromptRecord = doc.parse(PromptRecord, data, str(path))
    if record.results_sha256 != digest(e.raw):
        return None
    check(record, e, str(path))
    return record


def check(record: PromptRecord, e: Entry, where: str) -> None:
    """Refuse a record whose shape is wrong or whose g and keep masks do not give the result's J(f) and
    each verifier's relative gap."""

    def bad(what: str) -> GapbenchError:
        return GapbenchError(f"{where}: per-prompt record of {e.source}: {what}. Build the board again from the run directory.")

    if record.format != RECORD_FORMAT:
        raise bad(f"format {record.format}, this gapbench reads {RECORD_FORMAT}")
    n = int(e.results.sizes.n)
    rows = [record.g, *record.keep.values()]
    if any(len(r) != len(record.doc_ids) for r in rows):
        raise bad("g and keep masks do not have one row per doc id")
    if any(len(x) != n or set(x) - {"0", "1"} for r in rows for x in r):
        raise bad(f"a row is not {n} characters of 0 and 1")
    G = np.array([[c == "1" for c in x] for x in record.g], dtype=float).reshape(len(record.g), n)
    J = e.results.generation.J.value
    if J is not None and abs(float(G.mean()) - J) > TOLERANCE:
        raise bad(f"its g gives J(f) = {G.mean():.6f}, the result records {J:.6f}")
    for m in record.keep:
        rel = e.results.verifiers[m].relative_gap.value if m in e.results.verifiers else None
        got = record.gaps(m).value
        if (rel is None) != (got is None) or (rel is not None and got is not None and abs(got - rel) > TOLERANCE):
            raise bad(f"its keep masks give {m}'s relative gap {got}, the result records {rel}")


def gather(entries: list[Entry], folders: list[Path]) -> dict[str, PromptRecord]:
    """slug -> record, for the entries that have one: from the entry's run directory, else from the board
    holding the entry (a recorded result ``<board>/results/<slug>.json``), else from ``folders`` (boards)."""
    from gapbench.harness.view.collect import has_store

    out: dict[str, PromptRecord] = {}
    for e in entries:
        if e.verifier:  # cross-verification: not on the scaling fit
            continue
        if has_store(e.source):
            out[e.slug] = from_run(e)
            continue
        boards = ([e.source.parent.parent] if e.source.parent.name == "results" else []) + folders
        for b in boards:
            path = b / PROMPTS_DIR / f"{e.slug}.json"
            record = load(path, e) if path.is_file() and not path.is_symlink() else None
            if record is not None:
                out[e.slug] = record
                break
    return out
