"""``gapbench ladder``: the difficulty chart of one run of a task with a ``level`` group (``arith``).

Per level, from results.json ``generation.by_group.level`` and ``verifiers.<method>.by_group.level``:
J(f), J(f[w(u)]), the gap, the relative gap (each with its 95% bootstrap interval) and the verification
AUROC. Levels are ordered as ``tasks.arith.LEVELS`` (the ladder, easy to hard) when they are known
names, then any others in the order results.json lists them. Prints a table per verifier and writes
``ladder-<task>.png`` (one panel per quantity, a line per verifier, intervals as error bars).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import Metric, Results
from gapbench.harness.results import load as load_results
from gapbench.harness.results import parse as parse_results

GROUP = "level"


@dataclass(frozen=True)
class LevelGeneration:
    """The generation numbers of one level."""

    n_prompts: int
    J: Metric


@dataclass(frozen=True)
class LevelVerifier:
    """One verifier's numbers on one level (``value: None`` where the level has none)."""

    J_filtered: Metric
    gap: Metric
    relative_gap: Metric
    auroc: Metric  # the verification AUROC, no interval


@dataclass
class Ladder:
    """The per-level chart of one run: what :func:`tables` prints and :func:`plot` draws."""

    task: str
    model: str
    levels: list[str]  # easy to hard (:func:`level_order`)
    generation: dict[str, LevelGeneration]  # level -> numbers
    verifiers: dict[str, dict[str, LevelVerifier]]  # method -> level -> numbers


@dataclass(frozen=True)
class Panel:
    """One panel of the chart: a verifier's quantity per level (``of``; None: J(f) of the generation)."""

    title: str
    of: Callable[[LevelVerifier], Metric] | None
    reference: float | None = None  # a horizontal line at this value
    dotted: bool = False


PANELS = (
    Panel("J(f)", None),
    Panel("J(f[w(u)])", lambda v: v.J_filtered),
    Panel("gap", lambda v: v.gap, 0.0),
    Panel("relative gap", lambda v: v.relative_gap, 0.0),
    Panel("verification AUROC", lambda v: v.auroc, 0.5, dotted=True),
)


def find_results(path: str | Path) -> Path:
    """The results.json a path names: the file, ``<dir>/results.json``, or the single one under ``<dir>``
    with a level breakdown (:func:`harness.store.locate`)."""
    from gapbench.harness.store import locate

    return locate(path, keep=lambda h: GROUP in load_results(h)[0].generation.by_group, need="a per-level breakdown; the ladder needs a task with a `level` group, such as arith")


def level_order(names: Iterable[str]) -> list[str]:
    """Known ladder levels in ladder order, then the others as found."""
    try:
        from gapbench.tasks.arith import LEVELS

        ladder = list(LEVELS)
    except ImportError:  # pragma: no cover - arith is part of this repository
        ladder = []
    names = list(names)
    known = [n for n in ladder if n in names]
    return known + [n for n in names if n not in ladder]


def _metric(b: Metric | None) -> Metric:
    return Metric(None, None) if b is None else Metric(b.value, b.ci)


def ladder_data(results: Results | dict[str, Any], source: str | Path = "results.json") -> Ladder:
    """The per-level numbers of a typed results document (a plain results.json dict is read into one)."""
    if not isinstance(results, Results):
        results = parse_results(results, source)
    gen_groups = results.generation.by_group.get(GROUP)
    if not gen_groups:
        raise GapbenchError(
            f"{source}: the results of task {results.task.name!r} have no per-level breakdown (generation.by_group.level); "
            "the ladder needs a task with a `level` group, such as arith."
        )
    levels = level_order(gen_groups)
    generation = {lv: LevelGeneration(gen_groups[lv].n_prompts, _metric(gen_groups[lv].J)) for lv in levels}
    verifiers: dict[str, dict[str, LevelVerifier]] = {}
    for method, vb in results.verifiers.items():
        groups = vb.by_group.get(GROUP) or {}
        verifiers[method] = {}
        for lv in levels:
            g = groups.get(lv)
            verifiers[method][lv] = LevelVerifier(
                J_filtered=_metric(g.J_filtered if g else None),
                gap=_metric(g.gap if g else None),
                relative_gap=_metric(g.relative_gap if g else None),
                auroc=Metric(g.verification.auroc if g else None, None),
            )
    return Ladder(results.task.name, results.model.id, levels, generation, verifiers)


def tables(data: Ladder, fmt_name: str = "simple") -> list[str]:
    from tabulate import tabulate

    from gapbench.harness.format import metric as with_ci
    from gapbench.harness.format import number as fmt

    out = []
    for method, per_level in data.verifiers.items():
        rows = [
            [
                lv,
                data.generation[lv].n_prompts,
                with_ci(data.generation[lv].J),
                with_ci(per_level[lv].J_filtered),
                with_ci(per_level[lv].gap),
                with_ci(per_level[lv].relative_gap),
                fmt(per_level[lv].auroc.value),
            ]
            for lv in data.levels
        ]
        headers = ["level", "prompts", "J(f)", f"J(f[w(u)]) {method}", "gap", "relative gap", "AUROC"]
        out.append(tabulate(rows, headers=headers, tablefmt=fmt_name, disable_numparse=True))
    if not out:  # no verifier: the generation column alone
        rows = [[lv, data.generation[lv].n_prompts, with_ci(data.generation[lv].J)] for lv in data.levels]
        out.append(tabulate(rows, headers=["level", "prompts", "J(f)"], tablefmt=fmt_name, disable_numparse=True))
    return out


def plot(data: Ladder, path: Path) -> Path:
    from gapbench.harness.figures import plt, save

    levels = data.levels
    xs = list(range(len(levels)))
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 7.2), squeeze=False)
    handles: dict[str, object] = {}
    for ax, panel in zip(axes.flat, PANELS):
        of = panel.of
        if of is None:
            series = {"generation": {lv: data.generation[lv].J for lv in levels}}
        else:
            series = {m: {lv: of(per[lv]) for lv in levels} for m, per in data.verifiers.items()}
        for k, (name, per_level) in enumerate(series.items()):
            offset = (k - (len(series) - 1) / 2) * 0.06  # keep overlapping error bars apart
            ys, lo, hi = [], [], []
            for lv in levels:
                v, ci = per_level[lv].value, per_level[lv].ci
                ys.append(float("nan") if v is None else v)
                lo.append(max(0.0, v - ci[0]) if v is not None and ci else 0.0)
                hi.append(max(0.0, ci[1] - v) if v is not None and ci else 0.0)
            colour = "0.3" if name == "generation" else f"C{list(data.verifiers).index(name) % 10}"
            line = ax.errorbar([x + offset for x in xs], ys, yerr=[lo, hi], marker="o", ms=4, capsize=3, label=name, color=colour)
            handles.setdefault("J(f), generation" if name == "generation" else f"verifier {name}", line)
        if panel.reference is not None:
            ax.axhline(panel.reference, color="0.6", lw=0.8, **({"ls": ":"} if panel.dotted else {}))
        ax.set_xticks(xs)
        ax.set_xticklabels(levels, rotation=30, fontsize=8)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("level (easy to hard)", fontsize=8)
    legend_ax = axes.flat[len(PANELS)]
    legend_ax.axis("off")
    legend_ax.legend(list(handles.values()), list(handles), loc="center", fontsize=9, frameon=False)
    fig.suptitle(f"{data.task}: the difficulty ladder of {data.model} (95% intervals)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path)
    return path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ladder", help="J(f), J(f[w(u)]), gap, relative gap and AUROC per difficulty level of one run")
    p.add_argument("run", metavar="RUN_DIR_OR_RESULTS", help="a run directory of a task with levels (arith), or its results.json")
    p.add_argument("--out", help="folder for ladder-<task>.png (default: the run's directory)")
    p.add_argument("--markdown", action="store_true", help="print the tables as GitHub Markdown")
    p.set_defaults(func=cmd_ladder)


def cmd_ladder(args: argparse.Namespace) -> int:
    path = find_results(args.run)
    data = ladder_data(load_results(path)[0], path)
    print("\n\n".join(tables(data, "github" if args.markdown else "simple")))
    out = Path(args.out) if args.out else path.parent
    png = plot(data, out / f"ladder-{data.task}.png")
    print(f"\nwrote {png}")
    return 0
