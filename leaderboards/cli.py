"""``gapbench leaderboard build | compare | check``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="build, compare and check leaderboards of results.json files")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="{build,compare,check}")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    b = lsub.add_parser(
        "build",
        help="write README.md, index.html, leaderboard.json, plots and the recorded results of a board (and run pages for run directories)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b.add_argument("results", nargs="+", metavar="RESULTS", help="results.json files or run directories (searched recursively)")
    b.add_argument("--out", required=True, help="the board folder, e.g. leaderboards/main")
    b.add_argument("--name", help="the board's name (default: the --out folder's name)")
    b.add_argument("--data-dir", help="where the tasks' data lies, to show the questions on the run pages")
    b.add_argument(
        "--outside",
        metavar="FILE.json",
        help='figures from outside the board to show beside J(f) (lm-eval, model cards): {"figures": [{"model", "task", "split"?, '
        '"figure", "value", "interval"?, "source", "differs"}]}; copied into the board as outside.json, which later builds read',
    )
    b.set_defaults(func=cmd_build)

    c = lsub.add_parser(
        "compare",
        help="checkpoints against their baseline over the same prompts: paired bootstrap and per-prompt paired tests",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    c.add_argument("base", metavar="BASE_RUN", help="the baseline's run directory (or its results.json)")
    c.add_argument(
        "new", nargs="+", metavar="NEW_RUN", help="the new checkpoint's run directory (or its results.json); several: p-values Holm-adjusted"
    )
    c.add_argument("--task", help="the task to compare when a directory holds runs of several tasks")
    c.add_argument("--filter", help="score both runs with this filter (quantile:Q or threshold:T) instead of their own")
    c.add_argument("--n-boot", type=int, help="paired bootstrap resamples (default: the base run's own, as its run.json records it)")
    c.add_argument("--n-perm", type=int, default=10000, help="random sign patterns of the sign-flip test (exact when few prompts differ)")
    c.add_argument("--seed", type=int, help="seed of the paired bootstrap and the sign-flip test (default: the base run's own)")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level")
    c.add_argument("--force", action="store_true", help="compare even when prompts, task or sampling differ (on the shared prompts)")
    c.add_argument("--json", metavar="PATH", help="also write the comparison as JSON")
    c.set_defaults(func=cmd_compare)

    k = lsub.add_parser(
        "check",
        help="fail when a board differs from a rebuild of its recorded results, or a tracked checkpoint regressed",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    k.add_argument("board", metavar="BOARD", help="the board folder, e.g. leaderboards/main")
    k.add_argument("--against", nargs="+", metavar="RESULTS", help="new results.json files or run directories of tracked checkpoints")
    k.set_defaults(func=cmd_check)


def cmd_build(args: argparse.Namespace) -> int:
    from gapbench.leaderboards.builder import build

    built = build(args.results, args.out, args.name, data_dir=args.data_dir, outside=args.outside)
    n_rows = sum(len(t.rows) for t in built.board.tables)
    print(
        f"built board {built.board.name!r} in {built.out}: {len(built.entries)} results, "
        f"{len(built.board.tables)} task table(s), {n_rows} rows; files: {', '.join(built.board.files[:2])}, "
        f"{sum(f.endswith('.png') for f in built.board.files)} plots, {len(built.entries)} recorded results"
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from gapbench.harness.errors import GapbenchError
    from gapbench.harness.runs.compare import compare_many, render
    from gapbench.harness.runs.rundata import load_run
    from gapbench.harness.settings import check_resampling

    if not 0 < args.alpha < 1:
        raise GapbenchError(f"--alpha must be between 0 and 1 (got {args.alpha}).")
    base = load_run(args.base, args.task)
    seed, n_boot = base.resampling(args.seed, args.n_boot)
    check_resampling(n_boot=n_boot, seed=seed, n_perm=args.n_perm)
    news = [load_run(x, args.task) for x in args.new]
    reports = compare_many(
        base, news, force=args.force, filter_spec=args.filter, n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed, alpha=args.alpha
    )
    print("\n\n".join(render(r) for r in reports))
    if args.json:
        Path(args.json).write_text(json.dumps(reports[0].to_json() if len(reports) == 1 else [r.to_json() for r in reports], indent=2) + "\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gapbench.leaderboards.check import check_board

    report = check_board(args.board, args.against)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if not report.ok:
        print(f"gapbench: leaderboard check failed for {report.board}:", file=sys.stderr)
        for f in report.failures:
            print(f"- {f}", file=sys.stderr)
        return 1
    msg = f"board {report.board} matches a rebuild from its recorded results"
    if args.against:
        msg += f"; {report.checked} tracked checkpoint result(s) checked, no regression"
    print(msg)
    return 0
