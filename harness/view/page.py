"""The viewer's pages: one self-contained HTML file per run (or per set of runs on the same prompts),
rendered with Jinja2 (autoescape on: every text from a model or a data file is escaped), small plain
JavaScript and inline SVG charts drawn by matplotlib.

The prompt table's data is one JSON block; each prompt's samples (responses, grades, every verifier's
u, keep decision and replies) are a gzip-compressed JSON blob per prompt and run, decoded only when
the prompt is opened, so a run of 1,319 prompts x 128 samples opens at once. The output is a pure
function of the runs' files: no clock and no path of this machine is written.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.format import display, metric, number
from gapbench.harness.results import CalibrationBin, entries, to_json
from gapbench.harness.view.collect import RunView, sample_replies
from gapbench.harness.view.prompts import DIFFERS

TEMPLATES = Path(__file__).with_name("templates")
SKIP_FLAT = ("by_group", "sweep")  # blocks shown as their own tables or charts
ANALYSIS_DIR = "analysis"  # <run>/analysis/*.png|svg: plots another command drew for the run


# --- formatting -------------------------------------------------------------------------------


def public_name(text):
    """A model named by an absolute path of the machine that ran it, shown by its last three parts
    (``/home/me/improve/x/round-1/model`` -> ``…/x/round-1/model``): a page holds no machine path."""
    if not isinstance(text, str):
        return text
    head, sep, rest = text.rpartition("↳ ")  # a board's self-improved row: "↳ <checkpoint>"
    parts = [p for p in rest.split("/") if p]
    if not rest.startswith("/") or len(parts) <= 3:
        return text
    return head + sep + "…/" + "/".join(parts[-3:])


METRIC_KEYS = frozenset({"value", "ci", "n_excluded"})  # a block of only these is one number with its interval


def _pairs(block: Any) -> list[tuple[str, Any]]:
    """A typed block's (JSON key, value) pairs as results.json writes them, or a dict's items."""
    return list(block.items()) if isinstance(block, dict) else entries(block)


def flatten(block: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every number of a typed results block as (dotted name as in results.json, text): a field added to
    results.json later shows up without a change here. A block of only a value, its interval and the
    prompts left out (a ``Metric``, a ``RelativeGap``, a schema-2 ``RankBias``) is one entry."""
    out = []
    for k, v in _pairs(block):
        name = f"{prefix}{k}"
        if k in SKIP_FLAT:
            continue
        if is_dataclass(v):
            keys = {key for key, _ in entries(v)}
            if "value" in keys and keys <= METRIC_KEYS:
                excluded = getattr(v, "n_excluded", 0)
                out.append((name, metric(v) + (f" ({excluded} excluded)" if excluded else "")))
            else:
                out += flatten(v, name + ".")
        elif isinstance(v, dict):
            out += flatten(v, name + ".")
        elif isinstance(v, (int, float)) or v is None:
            out.append((name, "n/a" if v is None else display(v)))
    return out


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, keep_trailing_newline=True)
    env.filters.update(f3=number, with_ci=metric, number=display)
    return env


def render(template: str, **context) -> str:
    """A page from ``templates/<template>`` with the shared style and script."""
    css, js = ((TEMPLATES / name).read_text(encoding="utf-8") for name in ("view.css", "view.js"))
    return _env().get_template(template).render(css=css, js=js, **context)


# --- charts -----------------------------------------------------------------------------------


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _rc() -> dict:
    return {"svg.hashsalt": "gapbench", "svg.fonttype": "none", "font.size": 9}


def sweep_chart(results) -> str | None:
    """The gap against the filter level, one line per verifier."""
    lines = [(m, b.sweep) for m, b in results.verifiers.items() if b.sweep and b.sweep.levels]
    if not lines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names are text: "$x^$" is no formula
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(5.2, 3.0))
        for method, sweep in lines:
            pts = [(lv.level, lv.gap) for lv in sweep.levels if lv.gap is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=method)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel(f"filter level ({lines[0][1].kind})")
        ax.set_ylabel("gap  J(f[w(u)]) - J(f)")
        ax.legend(fontsize=7, frameon=False)
        ax.grid(alpha=0.3)
        return _svg(fig)


def calibration_bins(view: RunView, method: str) -> list[CalibrationBin]:
    """The reliability diagram's bins of one verifier: results.json's (``calibration.bins``), or for a
    results.json from before it held them (schema 1), the same bins from the run's g and u
    (:func:`harness.metrics.calibration`)."""
    block = view.results.verifiers.get(method)
    if block is not None and block.calibration is not None:
        return block.calibration.bins
    import numpy as np

    from gapbench.harness.metrics import calibration

    G = np.array([view.g(d) for d in view.doc_ids], dtype=float)
    U = np.array([view.u[method][d] for d in view.doc_ids], dtype=float)
    return calibration(G, U).bins


def calibration_chart(view: RunView) -> str | None:
    """Mean g against mean u in equal-width bins of u (results.json's ``calibration.bins``), per
    self-verification method (the diagonal is perfect calibration)."""
    methods = [m for m in view.methods if getattr(view.parsers.get(m), "uses_model", True)]
    if not methods:
        return None
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names are text: "$x^$" is no formula
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(3.6, 3.0))
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        for m in methods:
            pts = calibration_bins(view, m)
            ax.plot([p.mean_u for p in pts], [p.mean_g for p in pts], marker="o", ms=3, label=m)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("u (bin mean)")
        ax.set_ylabel("share correct, g")
        ax.legend(fontsize=7, frameon=False)
        ax.grid(alpha=0.3)
        return _svg(fig)


def analysis_images(view: RunView) -> list[dict]:
    """The run's ``analysis/*.png`` and ``*.svg`` plots as data URIs (the page stays one file)."""
    folder = view.dir / ANALYSIS_DIR
    out = []
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(p.suffix.lower())
            if mime and p.is_file():
                out.append({"name": p.stem, "src": f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode()})
    return out


# --- the run page -----------------------------------------------------------------------------


def _pack(obj) -> str:
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def _prompt_numbers(view: RunView, d: str) -> dict:
    g = view.g(d)
    w: dict[str, float] = {}
    kw: dict[str, int] = {}
    dr: dict[str, int] = {}
    for m in view.methods:
        keep = view.kept[m][d]
        kept_g = [x for x, k in zip(g, keep) if k] or g  # a filter that keeps nothing falls back to all
        w[m] = sum(kept_g) / len(kept_g)
        kw[m] = sum(1 for x, k in zip(g, keep) if k and not x)
        dr[m] = sum(1 for x, k in zip(g, keep) if not k and x)
    return {"J": sum(g) / len(g), "w": w, "kw": kw, "dr": dr}


def _details(view: RunView, d: str) -> dict:
    replies = {m: sample_replies(view, m, d) for m in view.methods}
    prompts = view.prompts
    split = {m: prompts.by_sample(m, d) for m in prompts.verification}
    out = []
    for i, (s, gr) in enumerate(zip(view.samples[d], view.grades[d])):
        item = {
            "y": s["response"],
            "a": gr.get("answer"),
            "g": int(gr["g"]),
            "u": {m: view.u[m][d][i] for m in view.methods},
            "k": {m: bool(view.kept[m][d][i]) for m in view.methods},
            "v": {m: replies[m][i] for m in view.methods if replies[m][i]},
        }
        if s.get("gen_tokens") is not None:
            item["tok"] = s["gen_tokens"]
        det = {m: view.detail[m][d][i] for m in view.methods if view.detail[m][d][i]}
        if det:
            item["d"] = det
        vp = {m: split[m][0][i] for m in split if i in split[m][0]}
        if vp:
            item["vp"] = vp
        out.append(item)
    blob: dict = {"s": out}
    if d in prompts.generation:
        blob["gp"] = prompts.generation[d].to_json()
    shared = {m: split[m][1] for m in split if split[m][1]}
    if shared:
        blob["tp"] = shared
    return blob


def _prompts_differ(view: RunView, d: str) -> bool:
    p = view.prompts
    gen = p.generation.get(d)
    return (gen is not None and gen.status == DIFFERS) or any(x.status == DIFFERS for per_doc in p.verification.values() for x in per_doc.get(d, []))


def _header(view: RunView) -> dict:
    r = view.results
    m = r.model
    weights = m.named_weights()
    facts = [
        ("model", public_name(m.name or m.hub_id or m.id)),
        ("model id", public_name(m.id)),
        ("backend", m.backend),
        ("parameters", m.parameters),
        ("weights", weights.description),
        ("weights sha256", f"{weights.sha256} (of {weights.digest_of})" if weights.sha256 else None),
        ("revision", m.known_revision),
        ("base", m.base),
        ("round", m.round),
        ("task", f"{r.task.name} (version {r.task.version})"),
        ("split", r.task.split),
        ("task options", ", ".join(f"{k}={v}" for k, v in (r.task.options or {}).items() if v is not None)),
        ("prompts x samples", f"{r.sizes.n_prompts} x {r.sizes.n} (m = {r.sizes.m} verifications per sample)"),
        ("sampling", ", ".join(f"{k} {v}" for k, v in to_json(r.sampling).items()) if r.sampling else None),
        ("filter", r.filter),
        ("verifier model", (r.verifier_model.name or r.verifier_model.id) if r.verifier_model else None),
        ("config hash", r.run.config_hash if r.run else None),
        ("created", r.created),
        ("gapbench", r.gapbench_version),
    ]
    return {"label": public_name(view.label), "facts": [(k, v) for k, v in facts if v not in (None, "")]}


def _groups(r) -> list[dict]:
    out = []
    for key, groups in r.generation.by_group.items():
        rows = []
        for name, gen in groups.items():
            cells = {}
            for m, b in r.verifiers.items():
                vb = b.by_group.get(key, {}).get(name)
                cells[m] = vb
            rows.append({"name": name, "gen": gen, "v": cells})
        out.append({"key": key, "rows": rows})
    return out


def run_page(views: list[RunView], title: str | None = None) -> str:
    """The HTML of one run, or of several runs on the same prompts side by side."""
    if not views:
        raise GapbenchError("no run to show.")
    first = views[0]
    for v in views[1:]:
        if v.results.task.name != first.results.task.name:
            raise GapbenchError(
                f"{v.dir} is a run of task {v.results.task.name!r} and {first.dir} of {first.results.task.name!r}: "
                "runs side by side must share their prompts. View them one at a time."
            )
    shared = set.intersection(*(set(v.doc_ids) for v in views))
    doc_ids = [d for d in first.doc_ids if d in shared]
    if not doc_ids:
        raise GapbenchError(f"the runs {', '.join(str(v.dir) for v in views)} share no prompt; view them one at a time.")
    rows, blobs = [], []
    group_keys = sorted({k for d in doc_ids for k in first.meta.get(d, {})})
    for idx, d in enumerate(doc_ids):
        nums = [_prompt_numbers(v, d) for v in views]
        right = [x["J"] >= 0.5 for x in nums]
        flips = [0] + [(1 if r else -1) if r != right[0] else 0 for r in right[1:]]
        answers = sorted({str(gr.get("answer")) for gr in first.grades[d] if gr.get("answer") is not None})
        rows.append(
            {
                "id": d,
                "q": first.questions.get(d, ""),
                "t": "" if first.targets.get(d) is None else str(first.targets[d]),
                "grp": first.meta.get(d, {}),
                "ans": " ".join(answers)[:400],
                "r": nums,
                "flip": flips,
                "pd": [_prompts_differ(v, d) for v in views],
            }
        )
        for k, v in enumerate(views):
            blobs.append((f"d{k}-{idx}", _pack(_details(v, d))))
    labels = [public_name(v.label) for v in views]
    if len(set(labels)) < len(labels):  # the same model twice (two seeds, two settings): tell them apart
        labels = [f"{x} ({v.results.run.config_hash if v.results.run else k + 1})" for k, (x, v) in enumerate(zip(labels, views))]
    data = {
        "runs": [
            {"label": x, "methods": v.methods, "n": v.n, "heads": v.prompts.heads, "vhead": v.prompts.head_of, "pnote": v.prompts.note}
            for v, x in zip(views, labels)
        ],
        "groupKeys": group_keys,
        "rows": rows,
    }
    runs = []
    for v, label in zip(views, labels):
        r = v.results
        runs.append(
            {
                "header": {**_header(v), "label": label},
                "results": r,
                "flat_gen": flatten(r.generation),
                "flat": {m: flatten(b) for m, b in r.verifiers.items()},
                "groups": _groups(r),
                "sweep": sweep_chart(r),
                "calibration": calibration_chart(v),
                "images": analysis_images(v),
                "unscored": v.unscored,
                "docs_note": v.docs_note,
                "prompts": v.prompts,
                "n_docs": len(v.doc_ids),
            }
        )
    if title is None:
        title = " vs ".join(labels) + f" on {first.results.task.name}"
    return render("run.html", title=title, runs=runs, data=data, blobs=blobs, n_shared=len(doc_ids))


def write_run_page(views: list[RunView], out: str | Path, *, root: str | Path | None = None) -> Path:
    """Write the page at ``out`` (through ``<out>.tmp``), inside ``root`` (default: its folder) and never
    through a symbolic link (:mod:`harness.safe_paths`)."""
    from gapbench.harness import safe_paths

    out = Path(out)
    if out.is_dir() and not out.is_symlink():
        raise GapbenchError(f"{out} is a folder; give --out a file name ending in .html.")
    if out.is_symlink():
        raise safe_paths.link_error(out, "the page")
    text = run_page(views)
    safe_paths.write_text(out.parent if root is None else root, out, text, what="the page")
    return out
