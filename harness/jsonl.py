"""JSON Lines reading and appending, with errors that name the file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from harness.errors import GapbenchError


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


def require(record: dict, field: str, path: Path | str):
    """A field of a JSONL record, or an error naming the file, line and field."""
    if field not in record:
        raise GapbenchError(
            f"{path}:{record.get('__line__', '?')}: missing field {field!r} "
            f"(fields present: {', '.join(k for k in record if k != '__line__') or 'none'})."
        )
    return record[field]


def append_jsonl(path: Path | str, records: Iterable[dict]) -> None:
    """Append records, flushed to disk before returning, so a kill loses at most the line being written."""
    path = Path(path)
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    if not data:
        return
    with path.open("a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
