"""Counts that issue 26 (one typed result model) set goals for, read from the source with ``ast``.

    python benchmarks/architecture_counts.py

Prints, per package module: string-key reads (``x["key"]`` and ``x.get("key")`` with a literal key),
function annotation coverage, and lines; then the totals. The codecs (``harness/results.py``,
``leaderboards/board.py``, ``harness/improve/summary.py`` and ``leaderboards/matrix.py``, which turn JSON into the typed classes
and back) are reported on their own line: their string keys are the one place a document's field
names are meant to live.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gapbench", "tasks", "verifiers", "harness", "leaderboards")
# the codecs: results.json, leaderboard.json, the improve loop's round.json and summary.json, and cross-<task>.json
CODEC = {"harness/results.py", "leaderboards/board.py", "harness/improve/summary.py", "leaderboards/matrix.py"}
# the modules that read a run's or a board's documents (results.json, leaderboard.json, round.json,
# summary.json, compare's and analyze's reports): the issue's "string-key reads of results or board
# documents outside the codec"
DOCUMENT_READERS = {
    "harness/runner.py", "harness/report.py", "harness/view/page.py", "harness/view/collect.py",
    "harness/improve/loop.py", "harness/runs/analyze.py", "harness/runs/compare.py", "harness/runs/ladder.py",
    "harness/runs/rundata.py", "leaderboards/builder.py", "leaderboards/plots.py", "leaderboards/check.py",
    "leaderboards/cross.py", "leaderboards/entries.py", "leaderboards/scaling.py",
}


def string_key_reads(tree: ast.AST) -> int:
    n = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                n += 1
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                n += 1
    return n


def annotated(tree: ast.AST) -> tuple[int, int]:
    fns = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    ok = 0
    for f in fns:
        args = [a for a in f.args.args + f.args.kwonlyargs if a.arg not in ("self", "cls")]
        if f.returns is not None and all(a.annotation is not None for a in args):
            ok += 1
    return ok, len(fns)


def main() -> int:
    rows = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(), rel)
            ok, fns = annotated(tree)
            rows.append((rel, string_key_reads(tree), ok, fns, len(path.read_text().splitlines())))
    width = max(len(r[0]) for r in rows)
    print(f"{'module':<{width}}  str-key reads  annotated  lines")
    for rel, reads, ok, fns, lines in rows:
        if reads:
            print(f"{rel:<{width}}  {reads:>13}  {ok:>4}/{fns:<4}  {lines:>5}")
    outside = sum(r[1] for r in rows if r[0] not in CODEC)
    codec = sum(r[1] for r in rows if r[0] in CODEC)
    ok, fns = sum(r[2] for r in rows), sum(r[3] for r in rows)
    docs = sum(r[1] for r in rows if r[0] in DOCUMENT_READERS or Path(r[0]).name in {Path(d).name for d in DOCUMENT_READERS} and r[0].split("/")[0] == "gapbench")
    print(f"\nstring-key reads in the modules that read results and board documents: {docs}")
    print(f"string-key reads outside the codec, every module: {outside} (codec: {codec})")
    print(f"functions annotated: {ok}/{fns} ({ok / max(fns, 1):.0%})")
    print(f"package lines: {sum(r[4] for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
