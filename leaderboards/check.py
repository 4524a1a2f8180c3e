"""``gapbench leaderboard check``: the committed board is what its recorded results build, and (with
``--against``) no tracked checkpoint has regressed.

1. Rebuild the board from ``<board>/results/*.json`` into a temporary folder and compare README.md,
   leaderboard.json and index.html as text (index.html linking the run pages the board holds); the PNGs
   only by presence (their bytes vary with the matplotlib version).
   No text file of the board (README.md, leaderboard.json, index.html, the recorded results) may hold a path of
   the machine that made it (:func:`machine_paths`).
2. For each new result given with ``--against`` whose checkpoint, round and task are on the board:
   fail when its J(f), or a verifier's J(f[w(u)]), is below the recorded value minus the half-width of
   the recorded 95% interval (a recorded value without an interval allows no drop at all).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gapbench.harness.config import differences
from gapbench.harness.errors import GapbenchError
from gapbench.harness.report import verifier_order
from gapbench.harness.results import Metric, to_json
from gapbench.leaderboards.board import load as load_board
from gapbench.leaderboards.builder import RESULTS_DIR, build
from gapbench.leaderboards.entries import Entry, load_entries
from gapbench.leaderboards.prompt_records import PROMPTS_DIR

TOLERANCE = 1e-9  # float noise allowed below the threshold
TEXT_FILES = ("README.md", "leaderboard.json", "index.html")


@dataclass
class CheckReport:
    board: Path
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0  # new results matched against tracked checkpoints

    @property
    def ok(self) -> bool:
        return not self.failures


def _first_difference(name: str, committed: str, rebuilt: str, context: int = 2) -> str:
    a, b = committed.splitlines(), rebuilt.splitlines()
    diff = list(difflib.unified_diff(a, b, f"{name} (committed)", f"{name} (rebuilt)", n=context, lineterm=""))
    shown = diff[:14]
    more = len(diff) - len(shown)
    return "\n".join("    " + line for line in shown) + (f"\n    ... ({more} more diff lines)" if more > 0 else "")


# An absolute path of a machine: /work/..., /root/..., /home/u/... (two or more components, at the start
# of a text or after a space, quote, bracket, = or :), or a Windows drive path C:\... or C:/...
MACHINE_PATH = re.compile(r"""(?:^|(?<=[\s"'(\[=:,]))(/(?:[A-Za-z0-9._~-]+/)+[A-Za-z0-9._~-]*|[A-Za-z]:[\\/][^\s"'|)\]]*)""")


def paths_in_text(text: str) -> list[str]:
    """The machine paths in a text (see :data:`MACHINE_PATH`)."""
    return [m.group(1) for m in MACHINE_PATH.finditer(text)]


def paths_in_json(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(field, path) for every machine path in a JSON value; a field is written ``a.b[2].c``."""
    out: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_in_json(v, f"{where}.{k}" if where else str(k))
            out += [(f"{where}.{k}" if where else str(k), p) for p in paths_in_text(str(k))]  # a key that is a path
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_in_json(v, f"{where}[{i}]")
    elif isinstance(value, str):
        out += [(where or "(value)", p) for p in paths_in_text(value)]
    return out


def machine_paths(board: str | Path) -> list[str]:
    """One failure per machine path in the board's README.md, leaderboard.json and results/*.json,
    naming the file and the field (or line) that holds it."""
    board = Path(board)
    found = []
    files = [board / name for name in (*TEXT_FILES, "outside.json")] + sorted((board / RESULTS_DIR).glob("*.json"))
    files += sorted((board / PROMPTS_DIR).glob("*.json"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            pairs = [(f"field {field}", p) for field, p in paths_in_json(json.loads(text))] if path.suffix == ".json" else None
        except json.JSONDecodeError:
            pairs = None  # not JSON: read it line by line
        if pairs is None:
            pairs = [(f"line {n}", p) for n, line in enumerate(text.splitlines(), 1) for p in paths_in_text(line)]
        for where, value in pairs:
            found.append(
                f"{path}: {where} holds the machine path {value!r}; a board may hold no path of the machine that made it. "
                "Name checkpoints with `gapbench run --model-meta name=...` (or run from the folder that holds them, so "
                "results.json records a relative path), then rebuild the board."
            )
    return found


def check_board(board: str | Path, against: list[str | Path] | None = None) -> CheckReport:
    board = Path(board)
    report = CheckReport(board)
    meta_path = board / "leaderboard.json"
    if not meta_path.is_file():
        raise GapbenchError(f"{board}: no leaderboard.json; build the board first with `gapbench leaderboard build RESULTS... --out {board}`.")
    committed_meta = load_board(meta_path)  # a damaged one is refused naming its field
    name = committed_meta.name
    recorded_files = sorted((board / RESULTS_DIR).glob("*.json"))
    for src in committed_meta.sources:
        f = src.file
        if f and not (board / f).is_file():
            report.failures.append(f"{board / f}: listed in leaderboard.json but missing; restore it or rebuild the board.")
    report.failures += machine_paths(board)
    if not recorded_files:
        report.failures.append(f"{board / RESULTS_DIR}: no recorded results to rebuild the board from.")
        return report

    with tempfile.TemporaryDirectory(prefix="gapbench-board-") as tmp:
        # the rebuild's folder is named by the check, never by the board: its name is only text on the page
        from gapbench.leaderboards.outside import OUTSIDE_FILE

        outside = board / OUTSIDE_FILE if (board / OUTSIDE_FILE).is_file() else None
        rebuilt = build(recorded_files, Path(tmp) / "board", name, pages_from=board, outside=outside)
        for fname in TEXT_FILES:
            mine, theirs = board / fname, rebuilt.out / fname
            if not mine.is_file():
                report.failures.append(f"{mine}: missing; rebuild the board.")
                continue
            a, b = mine.read_text(encoding="utf-8"), theirs.read_text(encoding="utf-8")
            if a != b:
                report.failures.append(
                    f"{mine} differs from a rebuild from {board / RESULTS_DIR}/ (edited by hand, or built by another "
                    f"gapbench version; rebuild with `gapbench leaderboard build {board / RESULTS_DIR} --out {board}`):\n"
                    + _first_difference(fname, a, b)
                )
        want = {p.name for p in rebuilt.out.glob("*.png")}
        have = {p.name for p in board.glob("*.png")}
        for missing in sorted(want - have):
            report.failures.append(f"{board / missing}: missing (the rebuild draws it); rebuild the board.")
        for extra in sorted(have - want):
            report.failures.append(f"{board / extra}: not drawn by a rebuild of this board; remove it or rebuild the board.")
        tracked = {e.key: e for e in rebuilt.entries}

    if against:
        for e in load_entries(against):
            rec = tracked.get(e.key)
            if rec is None:
                report.notes.append(f"{e.source}: {e.label} on {e.table} is not on the board; not checked.")
                continue
            report.checked += 1
            changed = differences(_setting(rec), _setting(e))
            if changed:
                report.notes.append(
                    f"{e.source}: {e.label} on {e.table} was run with other settings than recorded ({'; '.join(changed)}); "
                    "its numbers are checked all the same."
                )
            report.failures += regressions(rec, e)
            for m in verifier_order(set(rec.results.verifiers) - set(e.results.verifiers)):
                report.notes.append(f"{e.source}: has no verifier {m} (tracked for {rec.label} on {rec.table}); not checked.")
    return report


def _setting(e: Entry) -> dict:
    r = e.results
    return {"task": to_json(r.task), "sizes": to_json(r.sizes), "sampling": to_json(r.sampling), "filter": r.filter}


def _drop(name: str, rec_block: Metric, new_block: Metric, rec: Entry, new: Entry, verifier: str | None) -> str | None:
    old, now = rec_block.value, new_block.value
    where = f"verifier {verifier}" if verifier else "generation"
    if now is not None and not math.isfinite(now):  # NaN compares false with everything: never "no regression"
        return (
            f"regression: {rec.label} on {rec.table}, {where}: {name} = {now} ({new.source}) is not a number; "
            "a result without a finite value cannot show that the checkpoint did not regress. Rerun it."
        )
    if old is not None and not math.isfinite(old):
        return (
            f"{rec.label} on {rec.table}, {where}: the board records {name} = {old}, not a number, so nothing can be "
            f"checked against it; rebuild the board from a result with a finite value."
        )
    if old is None or now is None:
        return None
    ci = rec_block.ci
    half = (ci[1] - ci[0]) / 2.0 if ci else 0.0
    if not math.isfinite(half):
        return (
            f"{rec.label} on {rec.table}, {where}: the board records the 95% interval of {name} as {list(ci or ())}, not "
            "finite, so no floor can be drawn; rebuild the board from a result with a finite interval."
        )
    floor = old - half
    if now < floor - TOLERANCE:
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}], half-width {half:.3f}" if ci else "no recorded interval, half-width 0"
        return (
            f"regression: {rec.label} on {rec.table}, {where}: {name} = {now:.3f} ({new.source}) is below the recorded "
            f"{old:.3f} minus the half-width of its 95% interval {ci_text}: floor {floor:.3f}."
        )
    return None


def regressions(rec: Entry, new: Entry) -> list[str]:
    """Failures of ``new`` against the recorded ``rec`` of the same checkpoint and task."""
    out = []
    msg = _drop("J(f)", rec.results.generation.J, new.results.generation.J, rec, new, None)
    if msg:
        out.append(msg)
    for m in verifier_order(set(rec.results.verifiers) & set(new.results.verifiers)):
        msg = _drop("J(f[w(u)])", rec.results.verifiers[m].J_filtered, new.results.verifiers[m].J_filtered, rec, new, m)
        if msg:
            out.append(msg)
    return out
