"""JSON Lines reading and appending, with errors that name the file and line.

Two kinds of JSONL file, two readers:

- **input files** (task data, ``sft.jsonl``): :func:`read_records`, on the ``jsonlines`` package;
- **the run store's stage files** (``samples.jsonl``, ``verdicts.jsonl``, ...): :func:`read_jsonl`
  and :func:`append_jsonl`, gapbench's own, because the store needs what ``jsonlines`` does not do:
  appends fsynced a batch at a time, and a last line that a kill tore (no newline) tolerated on
  reading and cut on the next open (:mod:`harness.store`), so a killed run loses at most one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from gapbench.harness.errors import GapbenchError


def read_jsonl(path: Path | str, *, tolerate_torn_tail: bool = False) -> Iterator[dict]:
    """Yield the records of a JSONL file.

    A malformed line raises :class:`GapbenchError` naming ``file:line``. With
    ``tolerate_torn_tail`` a last line without its newline (a write cut off by a
    kill) is skipped instead: the stage that wrote it will write it again.
    """
    path = Path(path)
    with path.open("rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1  # the text after the final newline ("" when the file ends cleanly)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if tolerate_torn_tail and number - 1 == last:
                return
            raise GapbenchError(
                f"{path}:{number}: not a valid JSON line ({exc}). Fix or delete that line and run again; "
                "every other line is kept."
            ) from None
        if not isinstance(record, dict):
            raise GapbenchError(f"{path}:{number}: expected a JSON object per line, got {type(record).__name__}.")
        record["__line__"] = number
        yield record


class _Counted:
    """Lines of a file, counting them: after a record is read, ``n`` is its line number."""

    def __init__(self, fh):
        self.fh, self.n = fh, 0

    def __iter__(self):
        for line in self.fh:
            self.n += 1
            yield line


def read_records(path: Path | str) -> list[dict]:
    """Every JSON object of an input JSONL file (blank lines skipped), each with its ``__line__``.
    A line that is not a JSON object raises :class:`GapbenchError` naming ``file:line``."""
    import jsonlines

    path = Path(path)
    out = []
    with path.open("rb") as fh:
        lines = _Counted(fh)
        reader = jsonlines.Reader(lines)
        while True:
            try:
                record = reader.read(type=dict, skip_empty=True)
            except EOFError:
                break
            except jsonlines.InvalidLineError as exc:
                what = str(exc.args[0]).rsplit(" (line", 1)[0]
                raise GapbenchError(
                    f"{path}:{exc.lineno}: {what}; every line must be one JSON object. Fix or delete that line and run again."
                ) from None
            record["__line__"] = lines.n
            out.append(record)
    return out


def require(record: dict, field: str, path: Path | str):
    """A field of a JSONL record, or an error naming the file, line and field."""
    if field not in record:
        raise GapbenchError(
            f"{path}:{record.get('__line__', '?')}: missing field {field!r} "
            f"(fields present: {', '.join(k for k in record if k != '__line__') or 'none'})."
        )
    return record[field]


def append_jsonl(path: Path | str, records: Iterable[dict], *, root: Path | str | None = None) -> None:
    """Append records, flushed to disk before returning, so a kill loses at most the line being written.
    The file lies inside ``root`` (default: its folder) and is never a link (:mod:`harness.safe_paths`);
    a failed write names the file (disk full)."""
    from gapbench.harness import safe_paths

    path = Path(path)
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    if not data:
        return
    safe_paths.append_bytes(path.parent if root is None else root, path, data.encode("utf-8"))
