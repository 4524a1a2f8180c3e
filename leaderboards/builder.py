"""Build a board: results.json files in, ``README.md``, ``leaderboard.json``, PNG plots and the recorded
results out.

The output is a pure function of the input files' contents: inputs are sorted by their file name in
the board (``results/<slug>.json``, from the task, split, checkpoint and round), numbers are written
with fixed formats (3 decimals in README.md, rounded to 6 in leaderboard.json), and no clock or path
of the machine that builds is written, so rebuilding an unchanged board gives the same text
(``gapbench leaderboard check``). Timestamps in leaderboard.json are the ones copied from results.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapbench.harness import safe_paths
from gapbench.harness.errors import GapbenchError
from gapbench.harness.format import human, metric, number
from gapbench.harness.report import verifier_order
from gapbench.harness.results import Metric, RelativeGap, to_json
from gapbench.harness.settings import N_BOOT, SEED
from gapbench.leaderboards import board as doc
from gapbench.leaderboards.board import (
    ALL_MODELS,
    BOARD_SCHEMA_VERSION,
    Board,
    BoardMetric,
    Chat,
    Delta,
    Fit,
    ModelRow,
    OutsideFigure,
    Plots,
    RelativeGapMetric,
    Row,
    Scaling,
    ScalingPoint,
    Settings,
    SizeStep,
    Source,
    Table,
)
from gapbench.leaderboards.entries import Entry, load_entries
from gapbench.leaderboards.matrix import Matrix
from gapbench.leaderboards.outside import Figure
from gapbench.leaderboards.prompt_records import PROMPTS_DIR, PromptRecord
from gapbench.leaderboards.scaling import PromptGaps, difference_interval, linear_fit, slope_interval

RESULTS_DIR = "results"
MANAGED_SUFFIXES = (".png",)  # top-level files a build owns besides README.md and leaderboard.json
MANAGED_DIRS = (RESULTS_DIR, PROMPTS_DIR)  # folders whose listed files a build owns


# ---------------------------------------------------------------------------------------------
# numbers


def rnd(x: Any, digits: int = 6) -> Any:
    """A float rounded for leaderboard.json (no -0.0); None and non-floats pass through."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, (int, float)):
        y = round(float(x), digits)
        return 0.0 if y == 0 else y
    return x


def sci(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _metric(block: Metric | None) -> BoardMetric:
    ci = block.ci if block is not None else None
    return BoardMetric(rnd(block.value if block is not None else None), [rnd(ci[0]), rnd(ci[1])] if ci else None)


def _relative_gap(block: RelativeGap | None) -> RelativeGapMetric:
    m = _metric(block)
    return RelativeGapMetric(m.value, m.ci, getattr(block, "n_excluded", None))


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else rnd(a - b)


# ---------------------------------------------------------------------------------------------
# the board's content


def _baseline(e: Entry, table_entries: list[Entry]) -> Entry | None:
    if not e.derived or not e.base:
        return None
    want = e.base.lower()
    for b in table_entries:
        if not b.derived and want in b.names():
            return b
    return None


def _settings(e: Entry) -> dict:
    r = e.results
    out = {
        "task_version": r.task.version,
        "task_options": r.task.options,
        "n_prompts": r.sizes.n_prompts,
        "n": r.sizes.n,
        "m": r.sizes.m,
        "filter": r.filter,
        "sampling": to_json(r.sampling),
    }
    if r.chat is not None:  # only when set: boards of plain runs are unchanged
        out["chat"] = to_json(r.chat)
    return out


def _ordered(table_entries: list[Entry]) -> list[tuple[Entry, Entry | None, str]]:
    """(entry, its baseline, group name) in board order: groups by base model, base first, then rounds."""
    out = []
    for e in table_entries:
        base = _baseline(e, table_entries)
        group = base.checkpoint if base else (e.base if e.derived and e.base else e.checkpoint)
        out.append((e, base, group))
    out.sort(key=lambda t: (t[2].lower(), t[0].round_key, t[0].checkpoint.lower()))
    return out


def board_content(
    entries: list[Entry],
    name: str,
    records: dict[str, PromptRecord] | None = None,
    outside: dict[str, list[tuple[Entry, Figure]]] | None = None,
    *,
    outside_file: bool = False,
) -> Board:
    """leaderboard.json as a :class:`Board`. ``records``: the per-prompt records by entry slug (the
    scaling fit's intervals); ``outside``: the outside figures by table (:func:`leaderboards.outside.match`),
    ``outside_file``: the board holds ``outside.json``."""
    records = records or {}
    tables: dict[str, list[Entry]] = {}
    crossed: dict[str, list[Entry]] = {}  # cross-verification results (another model verified): the matrix only
    for e in entries:
        (crossed if e.verifier else tables).setdefault(e.table, []).append(e)
    out_tables: list[Table] = []
    model_rows: dict[tuple, ModelRow] = {}
    for table in sorted(tables):
        ordered = _ordered(tables[table])
        rows: list[Row] = []
        for e, base, group in ordered:
            gen = e.results.generation
            for method in verifier_order(e.results.verifiers):
                b = e.results.verifiers[method]
                row = Row(
                    checkpoint=e.checkpoint,
                    round=e.round,
                    base=e.base,
                    group=group,
                    derived=e.derived,
                    verifier=method,
                    J=_metric(gen.J),
                    J_filtered=_metric(b.J_filtered),
                    gap=_metric(b.gap),
                    relative_gap=_relative_gap(b.relative_gap),
                    auroc=rnd(b.verification.auroc),
                    within_prompt_auroc=_metric(b.within_prompt.auroc if b.within_prompt else None),
                    realised_share=_metric(b.realised_share),
                    best_of_n=rnd(b.best_of_n),
                    baseline=None,
                    delta=None,
                    source=f"{RESULTS_DIR}/{e.slug}.json",
                )
                if base is not None:
                    row.baseline = base.checkpoint
                    bb = base.results.verifiers.get(method)
                    if bb is not None:
                        row.delta = Delta(
                            J=_diff(gen.J.value, base.results.generation.J.value),
                            J_filtered=_diff(b.J_filtered.value, bb.J_filtered.value),
                            gap=_diff(b.gap.value, bb.gap.value),
                            relative_gap=_diff(b.relative_gap.value, bb.relative_gap.value),
                        )
                rows.append(row)
            mkey = (group.lower(), e.round_key, e.checkpoint.lower())
            mrow = model_rows.setdefault(mkey, _model_row(e))
            used = engine(e)
            if used and mrow.engine and used not in mrow.engine.split(", "):  # another engine on another table
                mrow.engine = ", ".join(sorted({*mrow.engine.split(", "), used}))
        settings: dict[str, list[str]] = {}
        for e, _, _ in ordered:
            settings.setdefault(json.dumps(_settings(e), sort_keys=True), []).append(e.label)
        first = tables[table][0]
        out_tables.append(
            Table(
                table=table,
                task=first.task,
                split=first.split,
                settings=[doc.parse(Settings, {**json.loads(k), "checkpoints": v}) for k, v in sorted(settings.items())],
                rows=rows,
                scaling=_scaling(ordered, records),
                plots=plot_names(table),
            )
        )
        if outside and table in outside:
            out_tables[-1].outside = [_outside(e, f) for e, f in outside[table]]
        if table in crossed:
            out_tables[-1].cross = _cross(tables[table], crossed[table])
            out_tables[-1].plots.cross = f"cross-{table}.png"
    stray = sorted(set(crossed) - set(tables))
    if stray:
        raise GapbenchError(
            f"cross-verification results of {', '.join(stray)} have no self-verification results of their generators "
            "on the board; add those runs (gapbench cross writes both)."
        )
    sources = [
        Source(
            file=f"{RESULTS_DIR}/{e.slug}.json",
            checkpoint=e.checkpoint,
            round=e.round,
            table=e.table,
            created=e.results.created,
            gapbench_version=e.results.gapbench_version,
            config_hash=e.results.run.config_hash if e.results.run else None,
        )
        for e in entries
    ]
    files = ["README.md", "leaderboard.json", "index.html"]
    files += sorted(p for t in out_tables for p in t.plots.names())
    files += [s.file for s in sources]
    files += [f"{PROMPTS_DIR}/{e.slug}.json" for e in entries if e.slug in records]
    if outside_file:
        from gapbench.leaderboards.outside import OUTSIDE_FILE

        files.append(OUTSIDE_FILE)
    return Board(
        schema_version=BOARD_SCHEMA_VERSION,
        name=name,
        sources=sources,
        models=[model_rows[k] for k in sorted(model_rows)],
        tables=out_tables,
        files=files,
    )


def _cross(own: list[Entry], crossed: list[Entry]) -> list[Matrix]:
    """The generator x verifier matrices of a table, one per model verifier that every cross result
    has: its generators' own results (the diagonal) and the cross results."""
    from gapbench.leaderboards.cross import cells

    generators = {e.checkpoint.lower() for e in crossed}
    # a generator verified by itself among the cross results (gapbench cross --samples-from: its own
    # verification over the matrix's prompts) is the diagonal instead of its board row's longer run
    by_itself = {e.checkpoint.lower() for e in crossed if (e.verifier or "").lower() == e.checkpoint.lower()}
    diagonal = [e for e in own if e.checkpoint.lower() in generators - by_itself]
    methods = set.intersection(*(set(e.results.verifiers) for e in crossed))
    return [cells([e.results for e in diagonal + crossed], m) for m in verifier_order(methods) if m != "oracle"]


def _outside(e: Entry, f: Figure) -> OutsideFigure:
    iv = f.interval
    return OutsideFigure(
        checkpoint=e.label,
        figure=f.figure,
        value=rnd(f.value),
        interval=[rnd(iv[0]), rnd(iv[1])] if iv else None,
        source=f.source,
        differs=f.differs,
        J=_metric(e.results.generation.J),
    )


def engine(e: Entry) -> str | None:
    """The engine a result was run with: results' ``model.backend`` (the lm-eval model as named), and the
    lm-eval class that ran it where that differs (``hf`` on a CPU runs ``hf-prefix``)."""
    m = e.results.model
    if m.backend and m.lm_eval_model and m.lm_eval_model != m.backend:
        return f"{m.backend} ({m.lm_eval_model})"
    return m.backend or m.lm_eval_model


def _model_row(e: Entry) -> ModelRow:
    m = e.results.model
    info = e.info
    weights = m.named_weights()
    return ModelRow(
        checkpoint=e.checkpoint,
        round=e.round,
        base=e.base,
        id=m.id,
        hub_id=m.hub_id,
        revision=m.known_revision,
        family=info.family,
        params=info.params,
        params_source=info.params_source,
        tokens=info.tokens,
        tokens_source=info.tokens_source,
        flops=info.flops,
        flops_source=info.flops_source,
        uncertain=info.uncertain,
        weights=weights.description,
        weights_sha256=weights.sha256,
        weights_digest_of=weights.digest_of,
        engine=engine(e),
    )


def _scaling(ordered: list[tuple[Entry, Entry | None, str]], records: dict[str, PromptRecord]) -> list[Scaling]:
    """Per verifier: each family's base models' (FLOPs, relative gap) points, their fit and the steps
    between the family's sizes; and, where the table holds two or more families at three or more FLOPs,
    the fit across all of them (family ``all models``). Self-improved checkpoints share their base's FLOPs
    and are left out. Intervals (a bootstrap over prompts, :mod:`leaderboards.scaling`) where every model
    of a fit or step has its per-prompt record; seed and resamples from :mod:`harness.settings`."""
    points: dict[tuple[str, str], list[tuple[ScalingPoint, Entry, float]]] = {}
    for e, _, _ in ordered:
        if e.derived:
            continue
        for method in verifier_order(e.results.verifiers):
            rel = e.results.verifiers[method].relative_gap
            if e.info.flops is None or rel.value is None:
                continue
            family = e.info.family or "other"
            ci = [rnd(rel.ci[0]), rnd(rel.ci[1])] if rel.ci else None
            points.setdefault((method, family), []).append((ScalingPoint(e.checkpoint, e.info.flops, rnd(rel.value), ci), e, rel.value))
    for method in {m for m, _ in points}:
        families = [pts for (m, _), pts in points.items() if m == method]
        every = [p for pts in families for p in pts]
        if len(families) >= 2 and len({p.flops for p, _, _ in every}) >= 3:
            points[(method, ALL_MODELS)] = every
    order = verifier_order({m for m, _ in points})
    out = []
    for method, family in sorted(points, key=lambda k: (order.index(k[0]), k[1] == ALL_MODELS, k[1].lower())):
        triples = sorted(points[(method, family)], key=lambda p: (p[0].flops, p[0].checkpoint.lower()))
        pts = [p for p, _, _ in triples]
        gaps = [_gaps(records, e, method) for _, e, _ in triples]
        values = [v for _, _, v in triples]
        fit = linear_fit([p.flops for p in pts], values)
        board_fit = None
        if fit is not None:
            board_fit = Fit(rnd(fit.slope), rnd(fit.intercept), rnd(fit.r2), fit.n)
            if all(g is not None for g in gaps):
                iv = slope_interval([p.flops for p in pts], gaps, n_boot=N_BOOT, seed=SEED)  # type: ignore[arg-type]
                board_fit.slope_ci = [rnd(iv.ci[0]), rnd(iv.ci[1])] if iv.ci else None
                board_fit.paired = iv.paired
        steps = None
        if family != ALL_MODELS and len({p.flops for p in pts}) >= 2:
            steps = []
            for i, j in zip(range(len(pts)), range(1, len(pts))):
                if pts[i].flops == pts[j].flops:
                    continue
                step = SizeStep(pts[i].checkpoint, pts[j].checkpoint, rnd(values[j] - values[i]), None, None)
                gi, gj = gaps[i], gaps[j]
                if gi is not None and gj is not None:
                    d = difference_interval(gi, gj, n_boot=N_BOOT, seed=SEED)
                    step.ci = [rnd(d.ci[0]), rnd(d.ci[1])] if d.ci else None
                    step.paired = d.paired
                steps.append(step)
        out.append(Scaling(verifier=method, family=family, points=pts, fit=board_fit, steps=steps or None))
    return out


def _gaps(records: dict[str, PromptRecord], e: Entry, method: str) -> PromptGaps | None:
    record = records.get(e.slug)
    return record.gaps(method) if record is not None and method in record.keep else None


def plot_names(table: str) -> Plots:
    return Plots(accuracy=f"accuracy-{table}.png", gap_vs_filter=f"gap-filter-{table}.png", scaling=f"scaling-{table}.png")


# ---------------------------------------------------------------------------------------------
# README.md


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def md_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _settings_line(s: Settings) -> str:
    opt_text = ", ".join(f"{k}={v}" for k, v in (s.task_options or {}).items() if v is not None)
    samp = s.sampling
    return (
        f"{s.n_prompts} prompts x {s.n} samples (m={s.m}), filter {s.filter}, "
        f"temperature {samp.temperature}, top-p {samp.top_p}, max {samp.max_gen_toks} tokens; "
        f"task version {s.task_version}" + (f" ({opt_text})" if opt_text else "") + _chat_text(s.chat)
    )


HEADERS = [
    "checkpoint",
    "round",
    "verifier",
    "J(f)",
    "J(f[w(u)])",
    "gap",
    "share of oracle gap",
    "relative gap",
    "AUROC",
    "AUROC in prompt",
    "best-of-n",
    "ΔJ(f)",
    "ΔJ(f[w(u)])",
    "Δgap",
]


def table_cells(t: Table) -> list[list[str]]:
    """The cells of a board table's rows, under :data:`HEADERS` (README.md and index.html)."""
    rows = []
    previous = None
    for r in t.rows:
        ident = (r.checkpoint, r.round, r.derived)
        if r.derived:
            shown = f"↳ {r.checkpoint}" if ident != previous else ""
            rnd_text = str(r.round) if r.round is not None else "?"
        else:
            shown = r.checkpoint if ident != previous else ""
            rnd_text = "base"
        if r.delta is not None:
            d = r.delta
            deltas = [number(d.J, signed=True), number(d.J_filtered, signed=True), number(d.gap, signed=True)]
        elif r.derived:
            why = "no base" if r.baseline is None else "n/a"
            deltas = [why, why, why]
        else:
            deltas = ["", "", ""]
        rows.append(
            [
                shown if shown else "",
                rnd_text if ident != previous else "",
                r.verifier,
                metric(r.J),
                metric(r.J_filtered),
                metric(r.gap),
                metric(r.realised_share),
                metric(r.relative_gap),
                number(r.auroc),
                metric(r.within_prompt_auroc),
                number(r.best_of_n),
                *deltas,
            ]
        )
        previous = ident
    return rows


MODEL_HEADERS = ["checkpoint", "round", "base", "family", "weights (sha256)", "parameters N", "pre-training tokens D", "FLOPs 6ND", "engine"]


def model_cells(board: Board) -> list[list[str]]:
    mrows = []
    for m in board.models:
        star = " *" if m.uncertain else ""
        mrows.append(
            [
                m.checkpoint,
                "base" if not (m.base or m.round) else (str(m.round) if m.round is not None else "?"),
                m.base or "",
                m.family or "unknown",
                (m.weights or "") + (f" ({m.weights_sha256[:12]})" if m.weights_sha256 else ""),
                human(m.params) + (f" ({m.params_source})" if m.params_source else ""),
                human(m.tokens) + (f" ({m.tokens_source})" if m.tokens_source else ""),
                sci(m.flops) + star,
                m.engine or "n/a",
            ]
        )
    return mrows


def _chat_text(chat: Chat | None) -> str:
    if chat is None or not chat.apply_chat_template:
        return ""
    return "; prompts through the model's chat template" + (" (few-shot as multi-turn)" if chat.fewshot_as_multiturn else "")


FLOOR = 0.05  # a table whose every checkpoint has J(f) below this says so above its rows


def floor_note(t: Table) -> str | None:
    """One line for a table where every checkpoint answers fewer than FLOOR of its prompts: why its
    numbers sit near zero, and what they still show."""
    values = [r.J.value for r in t.rows if r.J.value is not None]
    if not values or max(values) >= FLOOR:
        return None
    line = (
        f"Every checkpoint here answers fewer than {FLOOR:.0%} of the prompts (J(f) at most {max(values):.3f}): these models "
        "are at this task's floor, where a filter has almost no correct sample to keep, so the gaps are near zero as the "
        "paper finds for its smallest models. The table is here to show that floor, not to rank them."
    )
    widths = [(r.J.ci[1] - r.J.ci[0], r.checkpoint) for r in t.rows if r.J.ci]
    if widths and max(widths)[0] >= FLOOR:
        width, who = max(widths)
        prompts = sorted({s.n_prompts for s in t.settings if s.n_prompts})
        over = f" over {'/'.join(map(str, prompts))} prompts" if prompts else ""
        line += (
            f" The widest J(f) interval, {who}'s, is {width:.3f} wide{over}; an interval narrows with the square root of "
            "the prompts, so halving it takes four times as many."
        )
    return line


@dataclass
class SettingsLine:
    """Some checkpoints of a table and the settings they ran with, as one line."""

    checkpoints: list[str]
    line: str


@dataclass
class ReadmeCross:
    method: str
    text: str  # the matrix's Markdown tables (:func:`leaderboards.cross.tables`)


@dataclass
class ReadmeTable:
    """What README.md shows of one table, its Markdown tables already laid out."""

    t: Table
    settings: list[SettingsLine]
    floor: str | None
    table: str
    missing: list[str]
    fits: str | None
    steps: str | None
    sentences: list[str]
    outside: str | None
    cross: list[ReadmeCross]


def render_readme(board: Board) -> str:
    """README.md, from ``templates/board.md`` (the environment of index.html, not escaped: Markdown)."""
    from gapbench.harness.view.page import render
    from gapbench.leaderboards.cross import tables as cross_tables
    from gapbench.leaderboards.scaling_text import sentences

    tables = []
    for t in board.tables:
        fit_rows = fit_cells(t)
        tables.append(
            ReadmeTable(
                t=t,
                settings=[SettingsLine(checkpoints=s.checkpoints, line=_settings_line(s)) for s in t.settings],
                floor=floor_note(t),
                table=md_table(HEADERS, table_cells(t)),
                missing=sorted({r.base for r in t.rows if r.derived and r.baseline is None and r.base}),  # index.html: render_index
                fits=md_table(FIT_HEADERS, fit_rows) if fit_rows else None,
                steps=md_table(STEP_HEADERS, step_cells(t)) if step_cells(t) else None,
                sentences=sentences(t),
                outside=md_table(OUTSIDE_HEADERS, outside_cells(t)) if t.outside else None,
                cross=[ReadmeCross(m.method, cross_tables(m)) for m in t.cross or []],
            )
        )
    return render("board.md", board=board, tables=tables, models=md_table(MODEL_HEADERS, model_cells(board)), results_dir=RESULTS_DIR)


# ---------------------------------------------------------------------------------------------
# index.html


RUN_PAGES = "runs"  # runs/<result file stem>.html: a row's run page, written when its run directory is given


@dataclass
class IndexRow:
    cells: list[str]
    link: str
    page: bool  # the link is the run's viewer page (else its recorded results)
    derived: bool


@dataclass
class IndexTable:
    """What board.html shows of one table."""

    t: Table
    rows: list[IndexRow]
    settings: list[SettingsLine]
    fits: list[list]
    floor: str | None
    missing: list[str]
    cross: list[IndexCross]
    steps: list[list]
    sentences: list[str]
    outside: list[list]


@dataclass
class IndexCross:
    """What board.html shows of a generator x verifier matrix: README.md's tables as cells."""

    method: str
    parts: list[tuple[list[str], list[list[tuple[str, bool]]]]]  # (header, rows of (text, self)): :func:`leaderboards.cross.table_parts`


FIT_HEADERS = ["verifier", "family", "points", "slope", "95% interval", "R²"]
STEP_HEADERS = ["verifier", "family", "smaller -> larger", "Δ relative gap", "95% interval"]
OUTSIDE_HEADERS = ["checkpoint", "J(f) here", "outside figure", "value", "source", "how it differs"]


def _resampled(ci: list[float] | None, paired: bool | None) -> str:
    from gapbench.leaderboards.scaling_text import bounds

    if not ci:
        return "n/a (no per-prompt records)" if paired is None else "n/a"
    return bounds(ci) + (" paired" if paired else " unpaired")


def fit_cells(t: Table) -> list[list]:
    """The scaling fits of a table as rows: verifier, family, points, slope, its interval, R²."""
    return [
        [s.verifier, s.family, len(s.points), number(s.fit.slope, signed=True), _resampled(s.fit.slope_ci, s.fit.paired), number(s.fit.r2)]
        for s in t.scaling
        if s.fit is not None
    ]


def step_cells(t: Table) -> list[list]:
    """The steps between a family's sizes as rows: verifier, family, the two checkpoints, the difference, its interval."""
    return [
        [s.verifier, s.family, f"{st.smaller} -> {st.larger}", number(st.difference, signed=True), _resampled(st.ci, st.paired)]
        for s in t.scaling
        for st in s.steps or []
    ]


def outside_cells(t: Table) -> list[list]:
    """The outside figures of a table beside the board's J(f)."""
    from gapbench.harness.format import interval

    return [[f.checkpoint, metric(f.J), f.figure, interval(f.value, f.interval), f.source, f.differs] for f in t.outside or []]


def render_index(board: Board, pages: set[str]) -> str:
    """index.html: README.md's tables and plots as a web page, each row linked to its run's viewer page
    (``runs/<stem>.html``, for the stems in ``pages``) or, without one, to its recorded results."""
    from gapbench.harness.view.page import public_name, render
    from gapbench.leaderboards.cross import table_parts
    from gapbench.leaderboards.scaling_text import sentences

    tables = []
    for t in board.tables:
        rows = []
        for r, cells in zip(t.rows, table_cells(t)):
            stem = Path(r.source).stem
            link = f"{RUN_PAGES}/{stem}.html" if stem in pages else r.source
            rows.append(IndexRow(cells=[public_name(cells[0]), *cells[1:]], link=link, page=stem in pages, derived=r.derived))
        settings = [SettingsLine(checkpoints=[public_name(c) for c in s.checkpoints], line=_settings_line(s)) for s in t.settings]
        cross = [IndexCross(m.method, table_parts(m)) for m in t.cross or []]
        missing = sorted({r.base for r in t.rows if r.derived and r.baseline is None and r.base})
        tables.append(
            IndexTable(
                t=t, rows=rows, settings=settings, fits=fit_cells(t), floor=floor_note(t), missing=missing, cross=cross,
                steps=step_cells(t), sentences=sentences(t), outside=[[public_name(c[0]), *c[1:]] for c in outside_cells(t)],
            )
        )
    return render(
        "board.html",
        title=f"gapbench leaderboard: {board.name}",
        board=board,
        tables=tables,
        headers=HEADERS,
        model_headers=MODEL_HEADERS,
        fit_headers=FIT_HEADERS,
        step_headers=STEP_HEADERS,
        outside_headers=OUTSIDE_HEADERS,
        models=[[public_name(c) for c in row] for row in model_cells(board)],
        results_dir=RESULTS_DIR,
    )


def dump_json(board: Board) -> str:
    return doc.dumps(board)


# ---------------------------------------------------------------------------------------------
# writing a board


@dataclass
class Built:
    out: Path
    board: Board
    entries: list[Entry]


def build(
    paths: Sequence[str | Path],
    out: str | Path,
    name: str | None = None,
    *,
    plots: bool = True,
    pages_from: str | Path | None = None,
    data_dir: str | Path | None = None,
    outside: str | Path | None = None,
) -> Built:
    """Read every results file under ``paths`` and write the board into ``out``.

    Files a previous build of ``out`` wrote (listed in its leaderboard.json) and this build does not are
    removed, so the board always shows exactly its inputs; nothing else in ``out`` is touched.
    A result read from a run directory (its samples beside it) also gets its viewer page,
    ``runs/<stem>.html`` (questions from ``data_dir`` where the task needs it); a page already in the
    board for a result stays, one for a result no longer on the board is removed. index.html links the
    pages found in ``pages_from`` (default: ``out``; the check passes the committed board).
    """
    out = Path(out)
    entries = load_entries(paths)
    if not entries:
        raise GapbenchError("no results to build a board from.")
    name = name or out.resolve().name
    from gapbench.leaderboards import outside as outside_figures
    from gapbench.leaderboards.prompt_records import dumps as record_text
    from gapbench.leaderboards.prompt_records import gather

    folders = [Path(pages_from)] if pages_from else []
    records = gather(entries, [*folders, out])
    if outside is None and (out / outside_figures.OUTSIDE_FILE).is_file():
        outside = out / outside_figures.OUTSIDE_FILE
    figures_raw, matched = None, None
    if outside is not None:
        figures_raw, figures = outside_figures.read(outside)
        matched = outside_figures.match(outside, figures, entries)
    board = board_content(entries, name, records, matched, outside_file=figures_raw is not None)
    if out.is_symlink() and not out.exists():
        raise safe_paths.link_error(out, "the board")
    out.mkdir(parents=True, exist_ok=True)
    with board_lock(out):
        old_files = _previous_files(out)
        safe_paths.mkdir(out, out / RESULTS_DIR, what="the board's recorded results")
        for rel in board.files:  # every file the board writes lies inside it
            inside(out, rel, "a file of the board")
        for e in entries:  # raw bytes first: a results file inside `out` may be one of the inputs
            _write_bytes(inside(out, f"{RESULTS_DIR}/{e.slug}.json", str(e.source)), e.raw, out)
        if records:
            safe_paths.mkdir(out, out / PROMPTS_DIR, what="the board's per-prompt records")
        for slug, record in sorted(records.items()):
            _write_text(inside(out, f"{PROMPTS_DIR}/{slug}.json", slug), record_text(record), out)
        if figures_raw is not None:
            _write_bytes(inside(out, outside_figures.OUTSIDE_FILE, str(outside)), figures_raw, out)
        _write_text(out / "leaderboard.json", dump_json(board), out)
        _write_text(out / "README.md", render_readme(board), out)
        _write_text(out / "index.html", render_index(board, _run_pages(entries, out, Path(pages_from) if pages_from else out, data_dir)), out)
        if plots:
            from gapbench.leaderboards import plots as plotting

            plotting.draw_board(board, entries, out)
        for rel in sorted(set(old_files) - set(board.files)):
            p = out / rel
            if p.is_file() and (rel.startswith(tuple(d + "/" for d in MANAGED_DIRS)) or rel.endswith(MANAGED_SUFFIXES)):
                safe_paths.unlink(out, p, what="an old file of the board")
    return Built(out, board, entries)


BOARD_LOCK = ".lock"


@contextmanager
def board_lock(out: Path) -> Iterator[None]:
    """One writer per board: an exclusive ``flock`` on ``<board>/.lock`` while a build writes it (the
    OS releases it when the process ends). A second build is refused, naming the holder's pid."""
    import fcntl

    fh = safe_paths.open_lock(out, out / BOARD_LOCK, what="the board's lock file")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise GapbenchError(
                f"{out} is being built by another gapbench process (pid {holder}); two builds would mix their files. "
                "Wait for it to finish and build again."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def _run_pages(entries: list[Entry], out: Path, pages_from: Path, data_dir: str | Path | None) -> set[str]:
    """Write the viewer page of each entry read from a run directory; the stems with a page in ``pages_from``."""
    from gapbench.harness.view.collect import has_store, load_view
    from gapbench.harness.view.page import write_run_page

    stems = {e.slug for e in entries}
    folder = out / RUN_PAGES
    for e in entries:
        if has_store(e.source):
            write_run_page([load_view(e.source, data_dir)], inside(out, f"{RUN_PAGES}/{e.slug}.html", str(e.source)), root=out)
    for name in safe_paths.listdir(out, folder, what="the board's run pages"):
        if name.endswith(".html") and name[: -len(".html")] not in stems:
            safe_paths.unlink(out, folder / name, what="an old run page of the board")
    return {s for s in stems if (pages_from / RUN_PAGES / f"{s}.html").is_file()}


def inside(out: Path, rel: str, what: str) -> Path:
    """``out / rel``, refused unless ``rel`` is a relative path that stays inside ``out`` and passes
    through no symbolic link (:func:`harness.safe_paths.inside`)."""
    if Path(rel).is_absolute() or ".." in Path(rel).parts or not (out / rel).resolve().is_relative_to(out.resolve()):
        if not (Path(rel).is_absolute() or ".." in Path(rel).parts):
            safe_paths.inside(out, rel, what)  # inside but for a link: say so
        raise GapbenchError(f"{what} would be written or deleted at {rel!r}, outside the board folder {out}; refused.")
    return safe_paths.inside(out, rel, what)


def _previous_files(out: Path) -> list[str]:
    """The files the last build wrote (leaderboard.json ``files``); a listed path outside the board
    folder is refused, so a tampered leaderboard.json cannot make a build delete anything else."""
    if not (out / "leaderboard.json").is_file():
        return []
    try:
        files = doc.load(out / "leaderboard.json").files
    except GapbenchError:  # not a board's: nothing of it is trusted to delete
        return []
    for i, rel in enumerate(files):
        inside(out, rel, f"{out / 'leaderboard.json'}: files[{i}]")
    return files


def _write_text(path: Path, text: str, root: Path) -> None:
    _write_bytes(path, text.encode("utf-8"), root)


def _write_bytes(path: Path, data: bytes, root: Path) -> None:
    """Write ``data`` at ``path`` inside the board ``root`` (unless it holds them already), atomically
    and never through a link (:mod:`harness.safe_paths`)."""
    for p in (path, path.with_name(path.name + ".tmp")):  # a board that holds a link is refused, written or not
        if p.is_symlink():
            raise safe_paths.link_error(p, "a file of the board")
    if path.is_file() and path.read_bytes() == data:
        return
    safe_paths.write_bytes(root, path, data, what="a file of the board")

