"""The ``gapbench`` command line."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from gapbench.harness.errors import GapbenchError


def add_run_parser(sub) -> None:
    from gapbench.harness.settings import RunOptions, add_options

    p = sub.add_parser("run", help="sample, self-verify, grade and score a model on tasks", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(p, RunOptions)
    p.add_argument("--markdown", action="store_true", help="print tables as GitHub Markdown")
    p.set_defaults(func=cmd_run)


def add_merge_parser(sub) -> None:
    from gapbench.harness.settings import RunOptions, add_options

    p = sub.add_parser(
        "merge",
        help="join the finished shards of a run (gapbench run --shard i/N) and score them; takes the run's options",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(p, RunOptions, skip=("shard", "ray", "shards"))
    p.add_argument("--markdown", action="store_true", help="print tables as GitHub Markdown")
    p.set_defaults(func=lambda a: cmd_run(a, merge_only=True))


def cmd_run(args, merge_only: bool = False) -> int:
    from gapbench.harness import report
    from gapbench.harness.runner import Runner
    from gapbench.harness.settings import RunOptions, from_args

    opts = from_args(RunOptions, args)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if opts.ray is not None:
        from gapbench.harness import launch_ray

        done = launch_ray.run(opts, log)
    else:
        done = Runner(opts, log=log, merge_only=merge_only).run()
    for results in done:
        print()
        print(report.render(results, "github" if args.markdown else "simple"))
    return 0


def add_list_parsers(sub) -> None:
    p = sub.add_parser("tasks", help="list the registered tasks")
    p.set_defaults(func=lambda a: _list("task"))
    p = sub.add_parser("verifiers", help="list the registered verification methods")
    p.set_defaults(func=lambda a: _list("verifier"))


def _list(kind: str) -> int:
    from gapbench.tasks import TASKS
    from gapbench.verifiers import VERIFIERS

    registry = TASKS if kind == "task" else VERIFIERS
    families = registry.families()
    width = max(len(n) for n in [*registry.names(), *(f for f, _ in families)])
    for name, cls in registry.items():
        print(f"{name:<{width}}  {cls.description}")
    for family, description in families:
        print(f"{family:<{width}}  {description}")
    for why in registry.failed.values():
        print(f"failed to load: {why}")
    return 0


def add_view_parser(sub) -> None:
    p = sub.add_parser("view", help="write one self-contained HTML page of a run, or of runs on the same prompts side by side")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or their results.json); several: shown side by side")
    p.add_argument("--out", metavar="FILE.html", help="the page to write (default: view.html in the first run's directory)")
    p.add_argument("--data-dir", help="where the task's data lies, to show the questions (as given to gapbench run)")
    p.set_defaults(func=cmd_view)


def cmd_view(args) -> int:
    from pathlib import Path

    from gapbench.harness.view.collect import load_view
    from gapbench.harness.view.page import write_run_page

    views = [load_view(r, args.data_dir) for r in args.runs]
    out = write_run_page(views, args.out or Path(views[0].dir) / "view.html")
    print(out)
    return 0


def add_lm_eval_parser(sub) -> None:
    # main() hands everything after `lm-eval` to lm-eval untouched; this entry is for `gapbench --help`
    p = sub.add_parser(
        "lm-eval",
        help="lm-eval's own command line with gapbench's models registered (--model hf-prefix); every argument goes to lm-eval",
        add_help=False,
    )
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: _lm_eval(a.lm_eval_args))


def _lm_eval(args: list[str]) -> int:
    from gapbench.harness.models import lm_eval_cli

    return lm_eval_cli.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gapbench",
        description="Generation accuracy, self-verification and the generation-verification gap of language models.",
    )
    from gapbench.harness import __version__

    parser.add_argument("--version", action="version", version=f"gapbench {__version__}")
    sub = parser.add_subparsers(dest="command")
    add_run_parser(sub)
    add_merge_parser(sub)
    add_list_parsers(sub)
    add_view_parser(sub)
    add_lm_eval_parser(sub)
    for module in ("gapbench.leaderboards.cli", "gapbench.harness.improve.cli", "gapbench.harness.lm_eval_tasks", "gapbench.harness.runs.ladder", "gapbench.harness.runs.analyze", "gapbench.leaderboards.cross"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


# Warnings that the libraries under a run print on every load and that no user acts on (deprecation
# notices of transformers, torch, lm-eval, datasets and the hub; transformers' and torch's notices about
# generation settings and storage): silenced by the module that issues them. Every other warning,
# gapbench's own and a plugin's that failed to load included, is shown.
_LIBRARIES = r"(transformers|torch|lm_eval|datasets|huggingface_hub|accelerate|evaluate|sacrebleu|pytablewriter)(\.|$)"
HARMLESS_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, _LIBRARIES),
    (DeprecationWarning, _LIBRARIES),
    (PendingDeprecationWarning, _LIBRARIES),
    (UserWarning, r"(transformers|torch)(\.|$)"),
)


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import logging
    import warnings

    for category, module in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", category=category, module=module)
    _show_plugin_warnings()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    logging.getLogger("lm-eval").setLevel(logging.ERROR)


def _show_plugin_warnings() -> None:
    """A plugin that failed to load is the user's to fix: show it, as one line on stderr,
    whatever the filters of the libraries' notices (:data:`HARMLESS_WARNINGS`) say."""
    import warnings

    from gapbench.harness.registry import PluginLoadWarning

    warnings.filterwarnings("always", category=PluginLoadWarning)
    original = warnings.showwarning
    if getattr(original, "gapbench", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginLoadWarning):
            print(f"gapbench: warning: {message}", file=file or sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    show.gapbench = True  # type: ignore[attr-defined]  # marks the wrapper: wrapped once
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["lm-eval"]:  # lm-eval's arguments, logging and help as they are
        return _lm_eval(given[1:])
    _quiet()
    parser = build_parser()
    try:
        args = parser.parse_args(given)
        if not getattr(args, "func", None):
            args = parser.parse_args(["run", *given])
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gapbench: interrupted. Everything finished so far is stored; run the same command again to resume.", file=sys.stderr)
        return 130
    except (GapbenchError, OSError, MemoryError, RecursionError) as exc:
        print(f"gapbench: error: {one_sentence(exc)}", file=sys.stderr)
        return 2


# what to do about an operating-system error, by its errno
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full{where}. Everything finished before it is stored; free some space and run the same command again to resume",
    errno.EDQUOT: "the disk quota is used up{where}. Everything finished before it is stored; free some space and run the same command again to resume",
    errno.EROFS: "{file}: the file system is read-only. Give an output folder (--out) on a writable disk",
    errno.ENAMETOOLONG: "{file}: the file name is too long for the file system (255 bytes a name). Give a shorter --out or name",
    errno.ENOENT: "{file}: no such file or folder. Check the path, or create the folder first",
    errno.ENOTDIR: "{file}: a file is in the way where a folder is needed. Give another path",
    errno.EISDIR: "{file}: is a folder where a file is needed. Give a file's path",
    errno.EACCES: "{file}: permission denied. Give a path you may read or write",
    errno.EPERM: "{file}: the operation is not permitted there. Give a path you may read or write",
}


def one_sentence(exc: BaseException) -> str:
    """The one line a user sees for an error: a :class:`GapbenchError`'s own message, or what the
    operating system said (naming the file) with what to do about it."""
    if isinstance(exc, GapbenchError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return (
            "out of memory. Lower the sizes of the run (--n, --m, --n-boot, --limit, --batch-size), or run it on a machine "
            "with more memory; everything finished before it is stored, so the same command resumes."
        )
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply to read (a damaged or hostile JSON file?). Restore the file and run again."
    assert isinstance(exc, OSError)  # the only kind left
    file = exc.filename or "a file"
    if getattr(exc, "filename2", None):
        file = f"{exc.filename} -> {exc.filename2}"
    advice = _OS_ADVICE.get(exc.errno) if exc.errno is not None else None
    if advice is None:
        return f"{file}: {exc.strerror or exc} (errno {exc.errno}). Check the path and the disk, then run the same command again."
    where = f" while writing {exc.filename}" if exc.filename else ""
    return advice.format(file=file, where=where) + f" ({exc.strerror})."


if __name__ == "__main__":
    sys.exit(main())
