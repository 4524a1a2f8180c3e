"""The board's PNG plots, per task table:

- ``accuracy-<table>.png``: J(f) and each verifier's J(f[w(u)]) per checkpoint, with 95% intervals;
- ``gap-filter-<table>.png``: the gap against the filter level (each verifier's ``sweep``), a line per checkpoint;
- ``scaling-<table>.png``: the relative gap against pre-training FLOPs (log axis), base models, each point
  with its run's 95% interval, a least-squares line per family (and a dashed one across all models) with
  its slope, the slope's 95% interval and R^2 in the legend (no line with fewer than 2 points);
- ``cross-<table>.png``: where the board holds cross-verification results, the generator x verifier
  matrix of gap, relative gap and AUROC (its first model verifier).

PNG bytes depend on the matplotlib version, so ``check`` compares only their presence.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import FuncFormatter, NullFormatter

from gapbench.harness.figures import plt, save
from gapbench.harness.report import verifier_order
from gapbench.harness.results import Metric
from gapbench.leaderboards.board import ALL_MODELS, Board, BoardMetric, Row, Scaling, Table
from gapbench.leaderboards.entries import Entry
from gapbench.leaderboards.matrix import Matrix


def short(name: str, width: int = 28) -> str:
    name = name.rstrip("/").rsplit("/", 1)[-1]
    return name if len(name) <= width else name[: width - 1] + "…"


def yerr(blocks: list[BoardMetric]) -> list[list[float]]:
    """Asymmetric error bars from (value, ci) blocks (0 where there is no interval)."""
    lo, hi = [], []
    for b in blocks:
        v, ci = b.value, b.ci
        if v is None or not ci:
            lo.append(0.0)
            hi.append(0.0)
        else:
            lo.append(max(0.0, v - ci[0]))
            hi.append(max(0.0, ci[1] - v))
    return [lo, hi]


def colors(names: list[str]) -> dict[str, str]:
    """One colour per name, the same in every panel (matplotlib's default cycle, by position)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _val(b: BoardMetric) -> float:
    return math.nan if b.value is None else b.value


def draw_board(board: Board, entries: list[Entry], out: Path) -> None:
    by_source = {f"results/{e.slug}.json": e for e in entries}
    for t in board.tables:
        draw_accuracy(t, out / t.plots.accuracy)
        draw_gap_vs_filter(t, by_source, out / t.plots.gap_vs_filter)
        draw_scaling(t, out / t.plots.scaling)
        if t.cross and t.plots.cross:
            draw_cross(t.cross[0], out / t.plots.cross)


# the generator x verifier matrix (leaderboards/cross.py): one panel per quantity
CROSS_PANELS = (("gap", "gap(f, g)", 0.0, "RdBu"), ("relative_gap", "relative gap", 0.0, "RdBu"), ("auroc", "AUROC of u_g", 0.5, "PuOr"))


def draw_cross(matrix: Matrix, path: Path) -> None:
    """Rows generators, columns verifiers, each cell its value and 95% interval, coloured around
    no gain (0) or chance (AUROC 0.5); the diagonal (self-verification) outlined."""
    from matplotlib.patches import Rectangle

    fs, gs = matrix.generators, matrix.verifiers
    fig, axes = plt.subplots(1, len(CROSS_PANELS), figsize=(4.2 * len(CROSS_PANELS), 1.6 + 1.1 * len(fs)), squeeze=False)
    for ax, (key, title, centre, cmap) in zip(axes[0], CROSS_PANELS):
        blocks = [[_cross_metric(matrix, f, g, key) for g in gs] for f in fs]
        grid = [[math.nan if b is None or b.value is None else b.value for b in row] for row in blocks]
        span = max([abs(x - centre) for row in grid for x in row if not math.isnan(x)] + [0.05])
        ax.imshow(grid, cmap=cmap, vmin=centre - span, vmax=centre + span)
        for i, row in enumerate(blocks):
            for j, b in enumerate(row):
                label = "–" if b is None or b.value is None else f"{b.value:.3f}"
                if b is not None and b.ci:
                    label += f"\n[{b.ci[0]:.2f}, {b.ci[1]:.2f}]"
                dark = not math.isnan(grid[i][j]) and abs(grid[i][j] - centre) > 0.6 * span
                ax.text(j, i, label, ha="center", va="center", fontsize=8, color="white" if dark else "black")
                if fs[i] == gs[j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=2.5, edgecolor="black"))
        ax.set_xticks(range(len(gs)), [short(g, 18) for g in gs], rotation=20, ha="right", fontsize=8)
        ax.set_yticks(range(len(fs)), [short(f, 18) for f in fs], fontsize=8)
        ax.set_xlabel("verifier g")
        ax.set_ylabel("generator f")
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{matrix.task} ({matrix.method}): rows generate, columns verify; outlined: self-verification", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def _cross_metric(matrix: Matrix, f: str, g: str, name: str) -> Metric | None:
    c = matrix.cell(f, g)
    return None if c is None else c.metric(name)


def _checkpoints(t: Table) -> list[tuple[str, dict[str, Row]]]:
    """(label, rows by verifier) per checkpoint, in board order."""
    out: dict[str, dict[str, Row]] = {}
    for r in t.rows:
        label = short(r.checkpoint) + (f" r{r.round}" if r.derived and r.round is not None else "")
        out.setdefault(label, {})[r.verifier] = r
    return list(out.items())


def draw_accuracy(t: Table, path: Path) -> None:
    ckpts = _checkpoints(t)
    methods = verifier_order({m for _, rows in ckpts for m in rows})
    series = ["J(f)"] + [f"J(f[w(u)]) {m}" for m in methods]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(24.0, max(6.0, 1.5 + 0.35 * len(ckpts) * len(series))), 4.2))
    for k, name in enumerate(series):
        xs, blocks = [], []
        for i, (_, rows) in enumerate(ckpts):
            if k == 0:
                block = next(iter(rows.values())).J
            else:
                row = rows.get(methods[k - 1])
                if row is None:
                    continue
                block = row.J_filtered
            xs.append(i - 0.4 + width * (k + 0.5))
            blocks.append(block)
        ax.bar(xs, [_val(b) for b in blocks], width, yerr=yerr(blocks), capsize=2, label=name,
               color="0.55" if k == 0 else None)
    ax.set_xticks(range(len(ckpts)))
    ax.set_xticklabels([label for label, _ in ckpts], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{t.table}: generation J(f) vs verified J(f[w(u)]) (95% intervals)")
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    fig.tight_layout()
    save(fig, path)


def draw_gap_vs_filter(t: Table, by_source: dict[str, Entry], path: Path) -> None:
    ckpts = _checkpoints(t)
    methods = verifier_order({m for _, rows in ckpts for m in rows})
    cols = min(3, len(methods))
    nrows = math.ceil(len(methods) / cols)
    color = colors([label for label, _ in ckpts])
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, method in zip(axes.flat, methods):
        kind = None
        for label, rows in ckpts:
            row = rows.get(method)
            if row is None:
                continue
            sweep = by_source[row.source].results.verifiers[method].sweep
            levels = sweep.levels if sweep else []
            kind = sweep.kind if sweep else kind
            if levels:
                ax.plot([p.level for p in levels], [p.gap for p in levels], marker="o", ms=3, label=label, color=color[label])
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel({"quantile": "filter level: per-prompt quantile q", "threshold": "filter level: threshold t"}.get(kind or "", "filter level"), fontsize=8)
        ax.set_ylabel("gap J(f[w(u)]) - J(f)", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle(f"{t.table}: the gap against the filter level")
    fig.tight_layout()
    save(fig, path)


def fit_label(s: Scaling) -> str:
    fit = s.fit
    n = len(s.points)
    if fit is None:
        return f"{s.family} (n={n}, no fit)"
    r2 = "n/a" if fit.r2 is None else f"{fit.r2:.2f}"
    ci = f" [{fit.slope_ci[0]:+.3f}, {fit.slope_ci[1]:+.3f}]" if fit.slope_ci else ""
    return f"{s.family}: slope {fit.slope:+.3f}{ci}/decade, R²={r2} (n={n})"


def draw_scaling(t: Table, path: Path) -> None:
    methods = verifier_order({s.verifier for s in t.scaling})
    if not methods:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.text(0.5, 0.5, "no base checkpoint with known pre-training FLOPs\n(add one with gapbench run --model-meta params=...,tokens=...)",
                ha="center", va="center", fontsize=9, transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(f"{t.table}: relative gap vs pre-training FLOPs")
        save(fig, path)
        return
    cols = min(3, len(methods))
    nrows = math.ceil(len(methods) / cols)
    color = colors(sorted({s.family for s in t.scaling if s.family != ALL_MODELS}, key=str.lower))
    color[ALL_MODELS] = "black"
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 4.6 * nrows), squeeze=False)
    for ax, method in zip(axes.flat, methods):
        for s in [s for s in t.scaling if s.verifier == method]:
            xs = [p.flops for p in s.points]
            ys = [p.relative_gap for p in s.points]
            if s.family == ALL_MODELS:  # its points are the families' own: only the line
                ax.plot([], [], color=color[s.family], lw=1, ls="--", label=fit_label(s))
            else:
                ax.errorbar(xs, ys, yerr=yerr([BoardMetric(p.relative_gap, p.ci) for p in s.points]), fmt="o", ms=4, capsize=2,
                            label=fit_label(s), color=color[s.family])
            fit = s.fit
            if fit is not None:
                lo, hi = math.log10(min(xs)), math.log10(max(xs))
                grid = [10 ** (lo + (hi - lo) * i / 20) for i in range(21)]
                ax.plot(grid, [fit.intercept + fit.slope * math.log10(x) for x in grid], color=color[s.family], lw=1,
                        ls="--" if s.family == ALL_MODELS else "-")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"1e{round(math.log10(v))}" if v > 0 else ""))  # no TeX: parse_math is off
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("pre-training FLOPs (6ND)", fontsize=8)
        ax.set_ylabel("relative gap (95% intervals)", fontsize=8)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle(f"{t.table}: relative gap vs pre-training FLOPs (base models; slope per decade [95% interval])")
    fig.tight_layout()
    save(fig, path)
