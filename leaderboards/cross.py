"""``gapbench cross``: the generator x verifier matrix (cross-verification, Song et al. Sec. 5).

Every model f generates its samples once and verifies them itself (the diagonal: the run
``<out>/<f>/``); every other model g then verifies f's stored samples (``<out>/<f>--by--<g>/``,
a run with ``--verifier-model g`` that takes f's samples from the diagonal run instead of
generating them). Each cell is an ordinary run directory, so a second call resumes, and a model
added later costs only its new row and column.

Per cell, from results.json: gap(f, g) = J(f[w(u_g)]) - J(f), the relative gap and the AUROC of
u_g for g, each with its 95% bootstrap interval over prompts. :func:`cells` builds the matrix from
any list of results (a cross folder, or a board's results) as a :class:`leaderboards.matrix.Matrix`
(``cross-<task>.json`` through that module's codec), :func:`tables` renders it as Markdown and
:func:`heatmap` draws it (one panel per quantity, the diagonal outlined).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gapbench.harness.errors import GapbenchError
from gapbench.harness.format import metric
from gapbench.harness.results import Metric, ModelInfo, Results
from gapbench.harness.results import load as load_results
from gapbench.leaderboards.matrix import Cell, Matrix
from gapbench.leaderboards.matrix import dumps as dumps_matrix

if TYPE_CHECKING:
    from gapbench.harness.settings import RunOptions

QUANTITIES = (("gap", "gap(f, g)"), ("relative_gap", "relative gap"), ("auroc", "AUROC of u_g"))
EMPTY = "–"  # a cell the matrix lacks, or a number not computed


# --- which models -------------------------------------------------------------------------------
def parse_models(values: list[str]) -> list[tuple[str, str | None]]:
    """``--models`` values: comma-separated names (``smollm2-135m-instruct,gemma3-270m``), or one model
    with lm-eval arguments as ``NAME:key=value;key=value`` (one per ``--models``)."""
    out: list[tuple[str, str | None]] = []
    for value in values:
        name, sep, args = value.partition(":")
        if sep:
            if not name.strip() or not args.strip():
                raise GapbenchError(f"--models {value!r}: write NAME:key=value;key=value (one model with arguments per --models).")
            out.append((name.strip(), args.replace(";", ",")))
        else:
            out += [(n.strip(), None) for n in value.split(",") if n.strip()]
    if len(out) < 2:
        raise GapbenchError("--models names fewer than two models; a cross-verification matrix needs at least two.")
    return out


def cell_dir(out: Path, f: str, g: str) -> Path:
    """The run folder of f's samples verified by g (f's own run on the diagonal)."""
    from gapbench.harness.runner import slug

    return out / slug(f) if f == g else out / f"{slug(f)}--by--{slug(g)}"


# --- running the matrix ------------------------------------------------------------------------
def run_matrix(
    models: list[tuple[str, str | None]], opts: RunOptions, out: Path, log: Callable[[str], object] = print, samples_from: Path | None = None
) -> list[Results]:
    """Run every cell that is not stored yet: each model's own run (it generates and self-verifies),
    then every other model's verification of its samples. Returns every cell's results.

    ``samples_from``: a folder of the models' own runs (``<folder>/<model>/``, as ``gapbench run --out``
    wrote them, over these prompts or more, e.g. a board's 200-prompt runs for a matrix over their first
    100). Every cell then takes its samples from there and nothing is generated; the diagonal is the
    model verifying its own samples over the matrix's prompts, stored as ``<out>/<f>--by--<f>/`` (a
    result whose verifier model is its generator), so a board can hold it beside the longer run."""
    from gapbench.harness.runner import Runner, close_models, slug

    labels = [_label(name, args) for name, args in models]
    if len(set(labels)) != len(labels):
        raise GapbenchError(f"--models names a model twice ({', '.join(labels)}); give each once (models with arguments need pretrained=NAME to tell them apart).")
    # where each model's samples come from: its own diagonal cell, or its run in samples_from
    sources = {label: samples_from / slug(label) if samples_from is not None else cell_dir(out, label, label) for label in labels}
    if samples_from is not None:
        for (name, _), label in zip(models, labels):
            if not sources[label].is_dir():
                raise GapbenchError(
                    f"--samples-from {samples_from}: it holds no run folder {slug(label)}/ of {label}; "
                    f"run `gapbench run --model {name} --out {sources[label]}` first, or drop --samples-from."
                )
    shared: dict = {}  # loaded models, each loaded once for the whole matrix and closed at its end
    results = []
    try:
        for (name, args), label in zip(models, labels):
            if samples_from is None:
                o = replace(opts, model=name, model_args=args, verifier_model=None, verifier_model_args=None, out=str(cell_dir(out, label, label)))
                log(f"cross: {label} generates and verifies its own samples")
                results += Runner(o, log, models=shared).run()
            else:
                o = replace(opts, model=name, model_args=args, verifier_model=name, verifier_model_args=args, out=str(out / f"{slug(label)}--by--{slug(label)}"))
                log(f"cross: {label} verifies its own samples of {sources[label]}")
                results += Runner(o, log, samples_from=sources[label], models=shared).run()
        for (name, args), label in zip(models, labels):
            for (vname, vargs), vlabel in zip(models, labels):
                if vlabel == label:
                    continue
                o = replace(opts, model=name, model_args=args, verifier_model=vname, verifier_model_args=vargs, out=str(cell_dir(out, label, vlabel)))
                log(f"cross: {vlabel} verifies the samples of {label}")
                results += Runner(o, log, samples_from=sources[label], models=shared).run()
    finally:
        close_models(shared)
    return results


def _label(name: str, args: str | None) -> str:
    """The model's name in the matrix: what the run records as its id (``pretrained=`` names it)."""
    from gapbench.harness.models.backends import parse_model_args

    if not args:
        return name
    return parse_model_args(args).get("pretrained") or name


# --- the matrix ----------------------------------------------------------------------------------
def model_name(model: ModelInfo) -> str:
    """A model of results.json as the matrix names it (as boards name checkpoints)."""
    return str(model.name or model.hub_id or model.id)


def cells(results: list[Results], method: str) -> Matrix:
    """The matrix of one task from its cells' results: each cell (generator f, verifier g) holds J(f),
    J(f[w(u_g)]), gap, relative gap and AUROC with intervals, rounded to 6 decimals."""
    if not results:
        raise GapbenchError("no results to build a cross-verification matrix from.")
    tasks = sorted({(r.task.name, r.task.split or "") for r in results})
    if len(tasks) != 1:
        raise GapbenchError(f"a matrix holds one task; these results are of {', '.join('/'.join(t) for t in tasks)}.")
    by_cell: dict[tuple[str, str], Cell] = {}
    for r in results:
        f = model_name(r.model)
        g = model_name(r.verifier_model) if r.verifier_model else f
        v = r.verifiers.get(method)
        if v is None:
            raise GapbenchError(f"the run of {f} verified by {g} has no {method!r} verdicts (it has {', '.join(r.verifiers)}).")
        if (f, g) in by_cell:
            raise GapbenchError(f"two results for generator {f} verified by {g}; a matrix holds one per cell.")
        by_cell[(f, g)] = Cell(
            generator=f,
            verifier=g,
            is_self=f == g,
            n_prompts=r.sizes.n_prompts,
            n=r.sizes.n,
            J=_metric(v.J.value, v.J.ci),
            J_filtered=_metric(v.J_filtered.value, v.J_filtered.ci),
            gap=_metric(v.gap.value, v.gap.ci),
            relative_gap=_metric(v.relative_gap.value, v.relative_gap.ci),
            auroc=_metric(v.verification.auroc, v.verification.auroc_ci),
        )
    generators = _ordered({f for f, _ in by_cell})
    verifiers = _ordered({g for _, g in by_cell}, first=generators)
    return Matrix(
        task=tasks[0][0],
        split=tasks[0][1],
        method=method,
        generators=generators,
        verifiers=verifiers,
        cells=[by_cell[(f, g)] for f in generators for g in verifiers if (f, g) in by_cell],
    )


def _ordered(names: set[str], first: list[str] | None = None) -> list[str]:
    lead = [n for n in (first or []) if n in names]
    return lead + sorted(names - set(lead))


def _metric(value: float | None, ci: Sequence[float] | None) -> Metric:
    return Metric(None if value is None else round(float(value), 6), None if not ci else [round(float(x), 6) for x in ci])


def table_parts(matrix: Matrix) -> list[tuple[list[str], list[list[tuple[str, bool]]]]]:
    """The matrix as tables of (header, rows): J(f) per generator, then one table per quantity (rows f,
    columns g); each cell is (text, self), self marking the diagonal (self-verification). README.md
    (:func:`tables`) and index.html lay out the same cells."""
    fs, gs = matrix.generators, matrix.verifiers
    parts = []
    j_rows = []
    for f in fs:
        own = matrix.cell(f, f) or next(c for c in matrix.cells if c.generator == f)
        j_rows.append([(f, False), (metric(own.J, na=EMPTY), False), (f"{own.n_prompts} x {own.n}", False)])
    parts.append((["generator f", "J(f)", "prompts x samples"], j_rows))
    for key, title in QUANTITIES:
        rows = []
        for f in fs:
            shown = [(f, False)]
            for g in gs:
                c = matrix.cell(f, g)
                shown.append((metric(c.metric(key) if c else None, signed=key != "auroc", na=EMPTY), bool(f == g and c)))
            rows.append(shown)
        parts.append(([f"{title}: generator f \\ verifier g", *gs], rows))
    return parts


def tables(matrix: Matrix) -> str:
    """Markdown: J(f) per generator, then one table per quantity (rows f, columns g; the diagonal, self-verification, in bold)."""
    out = []
    for header, rows in table_parts(matrix):
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
        lines += ["| " + " | ".join(f"**{text}** (self)" if own else text for text, own in row) + " |" for row in rows]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def heatmap(matrix: Matrix, path: Path) -> Path:
    """The matrix as a PNG (:func:`leaderboards.plots.draw_cross`)."""
    from gapbench.leaderboards.plots import draw_cross

    path.parent.mkdir(parents=True, exist_ok=True)
    draw_cross(matrix, path)
    return path


# --- the command ------------------------------------------------------------------------------------
CROSS_SKIP = ("model", "model_args", "verifier_model", "verifier_model_args", "out", "shard", "ray", "shards")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from gapbench.harness.settings import RunOptions, add_options

    p = sub.add_parser(
        "cross",
        help="generator x verifier matrix: every model verifies every model's samples (gap, relative gap, AUROC)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--models", action="append", required=True, help="models, comma-separated (names, hub ids, folders); or one NAME:key=value;key=value per --models")
    p.add_argument("--out", default="runs/cross", help="folder of the matrix: one run folder per cell, and cross-<task>.md/.json/.png")
    p.add_argument(
        "--samples-from",
        default=None,
        help="a folder of the models' own runs (FOLDER/MODEL/, from gapbench run --out, over these prompts or more): every cell takes their samples and nothing is generated; the diagonal is stored as MODEL--by--MODEL",
    )
    p.add_argument("--method", default=None, help="the verification method of the matrix (default: the first of --verifiers)")
    add_options(p, RunOptions, skip=CROSS_SKIP)
    p.set_defaults(func=cmd_cross)


def cmd_cross(args: argparse.Namespace) -> int:
    from gapbench.harness.settings import RunOptions, from_args

    opts = from_args(RunOptions, args)
    method = args.method or opts.verifiers[0]
    if method not in opts.verifiers:
        raise GapbenchError(f"--method {method} is not among --verifiers {','.join(opts.verifiers)}.")
    out = Path(args.out)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results = run_matrix(parse_models(args.models), opts, out, log, samples_from=Path(args.samples_from) if args.samples_from else None)
    for task in dict.fromkeys(r.task.name for r in results):
        matrix = cells([r for r in results if r.task.name == task], method)
        text = tables(matrix)
        (out / f"cross-{task}.md").write_text(f"# {task}: generator x verifier ({method})\n\n{text}\n")
        (out / f"cross-{task}.json").write_text(dumps_matrix(matrix))
        png = heatmap(matrix, out / f"cross-{task}.png")
        print(f"\n{task} ({method}):\n\n{text}\n\nwrote {out / f'cross-{task}.md'}, {png}")
    return 0


def read_matrix(folder: Path, task: str, method: str) -> Matrix:
    """The matrix of a cross folder, from the results.json of its cells."""
    found = sorted(Path(folder).glob(f"*/{task}/results.json"))
    if not found:
        raise GapbenchError(f"{folder}: no cell holds {task}/results.json; run `gapbench cross` first.")
    return cells([load_results(p)[0] for p in found], method)
