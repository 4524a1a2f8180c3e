"""``gapbench analyze RUN``: the verifier diagnostics of one stored run, from its files alone (no model call).

Per verifier (see :func:`harness.metrics.diagnostics` for the definitions): how u ranks the samples
inside a prompt (within-prompt AUROC, pairwise accuracy), the share of the oracle's gap it realises under
the same filter, its calibration (ECE, Brier, a reliability diagram), its biases (the tournament's
position bias, length at fixed g, the echo of majority voting, each within prompts with the pooled
figure beside it, and the gap of majority voting as a filter), and the gap against the number of
samples n, also on an axis of the tokens generated for those samples (the verifiers' own tokens are
not counted), and against the number of CoT verifications m where m > 1. u is rescored from the stored replies, as
`gapbench leaderboard compare` does, so a run from before these numbers is analysed the same way;
``--rescore`` writes them into its results.json (schema 3).

Plots go to ``<run_dir>/analysis/``: ``calibration-<verifier>.png``, ``gap-vs-n.png`` and
``gap-vs-tokens.png`` (left out, with a note, when the store has no token counts).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gapbench.harness.filters import parse_filter
from gapbench.harness.format import NA, metric, number
from gapbench.harness.metrics import Diagnostics, PromptScores
from gapbench.harness.report import verifier_order
from gapbench.harness.results import (
    SCHEMA_VERSION,
    CurvePoint,
    RankBias,
    present,
    update,
    write,
)
from gapbench.harness.runs.rundata import RunData, load_run
from gapbench.harness.safe_paths import slugify
from gapbench.harness.scoring import verifier_diagnostics
from gapbench.harness.store import locate

ANALYSIS_DIR = "analysis"


def analyze_run(data: RunData, *, n_boot: int | None = None, seed: int | None = None, filter_spec: str | None = None) -> dict[str, Diagnostics]:
    """method -> the diagnostics of that verifier, under the run's filter or ``filter_spec``; ``n_boot`` and
    ``seed`` default to those the run was scored with (:meth:`RunData.resampling`)."""
    seed, n_boot = data.resampling(seed, n_boot)
    rule = parse_filter(filter_spec or data.filter)
    out = {}
    for m in verifier_order(data.verifiers):
        keep = data.keep(m, rule, data.doc_ids)
        prompts = [
            PromptScores(d, [int(x) for x in data.G[i]], data.u[m][d], keep[i].tolist(), data.answers[d]) for i, d in enumerate(data.doc_ids)
        ]
        out[m] = verifier_diagnostics(prompts, data.verdicts[m], rule, data.lengths, n_boot=n_boot, seed=seed)
    return out


# ---------------------------------------------------------------------------------------------
# tables


def _within(block: RankBias | None) -> str:
    """A rank bias's within-prompt mean with its interval and its count of prompts."""
    if not block:
        return NA
    return metric(block.within_prompt, signed=True) + f" ({block.n_prompts} prompts)"


def tables(diagnostics: dict[str, Diagnostics], fmt_name: str = "simple") -> list[str]:
    from tabulate import tabulate

    rank = []
    bias = []
    pooled = []
    for m, b in diagnostics.items():
        w = b.within_prompt
        echo = b.majority_echo
        rank.append(
            [
                m,
                metric(echo.gap, signed=True),
                metric(b.realised_share),
                metric(w.auroc) + f" ({w.n_prompts} prompts)",
                metric(w.pairwise_accuracy),
                metric(b.calibration.ece),
                metric(b.calibration.brier),
            ]
        )
        pb = b.position_bias
        bias.append(
            [
                m,
                (metric(pb) + f" ({pb.matches} matches)") if pb else "-",
                _within(b.length_bias_at(0)),
                _within(b.length_bias_at(1)),
                _within(echo.correlation),
                metric(echo.modal_gap, signed=True),
            ]
        )
        pooled.append([m] + [metric(x.pooled if x else None, signed=True) for x in (b.length_bias_at(0), b.length_bias_at(1), echo.correlation)])
    out = [
        "How each verifier ranks and what it buys (95% bootstrap intervals over prompts):\n"
        + tabulate(
            rank,
            headers=["verifier", "gap", "share of oracle gap", "AUROC in prompt", "pairwise acc.", "ECE", "Brier"],
            tablefmt=fmt_name,
            disable_numparse=True,
        ),
        "Biases: position (share of matches whose winner flips with the order); length (Spearman of u with generated "
        "tokens at fixed g) and majority echo (Spearman of u with the share of samples giving the same answer), each "
        "inside every prompt and averaged over the prompts where it is defined (their count); beside the echo, the gap "
        "of majority voting (keep the samples that gave the prompt's most frequent answer):\n"
        + tabulate(
            bias,
            headers=["verifier", "position bias", "length g=0 in prompt", "length g=1 in prompt", "u ~ answer share in prompt", "majority-vote gap"],
            tablefmt=fmt_name,
            disable_numparse=True,
        ),
        "The same correlations pooled over all samples of all prompts (secondary: they mix prompt difficulty in, and "
        "are far from 0 when u and the covariate both follow the prompt even where u ignores it inside every prompt):\n"
        + tabulate(
            pooled,
            headers=["verifier", "length g=0 pooled", "length g=1 pooled", "u ~ answer share pooled"],
            tablefmt=fmt_name,
            disable_numparse=True,
        ),
    ]
    for m, b in diagnostics.items():
        rows = [
            [
                p.n,
                number(p.gen_tokens, 0),
                number(p.J),
                number(p.J_filtered),
                number(p.gap, signed=True),
                number(p.best_of_n),
                number(p.pass_at_k),
                number(p.maj_at_k),
                p.subsets,
            ]
            for p in b.by_n
        ]
        out.append(
            f"{m}: the numbers of n samples per prompt (means over n-subsets of the stored samples):\n"
            + tabulate(
                rows,
                headers=["n", "gen. tokens", "J(f)", "J(f[w(u)])", "gap", "best-of-n", "pass@n", "maj@n", "subsets"],
                tablefmt=fmt_name,
                disable_numparse=True,
            )
        )
        if b.by_m:
            rows_m = [[q.m, number(q.J_filtered), number(q.gap, signed=True), number(q.best_of_n), q.subsets] for q in b.by_m]
            out.append(
                f"{m}: the numbers of m verifications per sample (means over m-subsets of the stored verifications):\n"
                + tabulate(rows_m, headers=["m", "J(f[w(u)])", "gap", "best-of-n", "subsets"], tablefmt=fmt_name, disable_numparse=True)
            )
    return out


# ---------------------------------------------------------------------------------------------
# plots


def write_plots(diagnostics: dict[str, Diagnostics], out: Path) -> list[Path]:
    """The reliability diagram of each verifier and the gap against n and against generated tokens."""
    from gapbench.harness import safe_paths
    from gapbench.harness.figures import plt, save

    safe_paths.mkdir(out.parent, out, what="the run's analysis plots")
    written = []
    for m, b in diagnostics.items():
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        bins = b.calibration.bins
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
        ax.bar([x.lo for x in bins], [x.mean_g for x in bins], width=[x.hi - x.lo for x in bins], align="edge", alpha=0.6, edgecolor="black", label="share correct")
        ax.plot([x.mean_u for x in bins], [x.mean_g for x in bins], "o-", color="C1", label="mean u vs share correct")
        for x in bins:
            ax.annotate(str(x.count), ((x.lo + x.hi) / 2, x.mean_g), ha="center", va="bottom", fontsize=7)
        ece = b.calibration.ece.value
        ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="u (bin)", ylabel="share of samples correct (g = 1)", title=f"{m}: ECE {number(ece)}")
        ax.legend(fontsize=7, loc="upper left")
        path = out / f"calibration-{slugify(m)}.png"
        save(fig, path)
        written.append(path)
    written.append(_curve_plot(diagnostics, out / "gap-vs-n.png", lambda p: p.n, "samples per prompt n (log scale)"))
    if all(p.gen_tokens is not None for b in diagnostics.values() for p in b.by_n):
        written.append(_curve_plot(diagnostics, out / "gap-vs-tokens.png", lambda p: p.gen_tokens, "generated tokens per prompt (log scale)"))
    return written


def _curve_plot(diagnostics: dict[str, Diagnostics], path: Path, x_of: Callable[[CurvePoint], float | None], x_label: str) -> Path:
    from gapbench.harness.figures import plt, save

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    first = next(iter(diagnostics.values())).by_n
    x = [x_of(p) for p in first]
    ax.plot(x, [p.J for p in first], color="black", lw=1, ls=":", label="J(f) (one sample)")
    ax.plot(x, [p.pass_at_k for p in first], color="grey", marker="^", label="pass@n (any of n)")
    ax.plot(x, [p.maj_at_k for p in first], color="tab:brown", marker="s", label="maj@n (voting)")
    for i, (m, b) in enumerate(diagnostics.items()):
        color = f"C{i}"
        ax.plot(x, [p.J_filtered for p in b.by_n], color=color, marker="o", label=f"J(f[w(u)]) {m} (filter)")
        ax.plot(x, [p.best_of_n for p in b.by_n], color=color, ls="--", label=f"best-of-n {m}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel=x_label, ylabel="accuracy", title="sampling more, voting and self-filtering")
    ax.legend(fontsize=7, loc="best")
    save(fig, path)
    return path


# ---------------------------------------------------------------------------------------------
# rewriting results.json


def rescore(data: RunData, results_path: Path, diagnostics: dict[str, Diagnostics]) -> None:
    """Write the diagnostics into the run's results.json at the current schema version (every other field as it was)."""
    verifiers = {m: update(v, **present(diagnostics[m])) if m in diagnostics else v for m, v in data.results.verifiers.items()}
    write(results_path, update(data.results, schema_version=SCHEMA_VERSION, verifiers=verifiers), root=data.dir)


# ---------------------------------------------------------------------------------------------
# the command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="verifier diagnostics of a stored run (ranking inside prompts, share of the oracle's gap, calibration, "
        "biases, the gap against n): tables and plots, no model call",
    )
    p.add_argument("run", metavar="RUN", help="a run directory (gapbench run --out DIR gives DIR/<task>) or its results.json")
    p.add_argument("--task", help="the task when the directory holds runs of several tasks")
    p.add_argument("--filter", help="analyse under this filter (quantile:Q or threshold:T) instead of the run's")
    p.add_argument("--n-boot", type=int, help="bootstrap resamples for the 95%% intervals (default: the run's own, as run.json records it)")
    p.add_argument("--seed", type=int, help="seed of the bootstrap and the random subsets (default: the run's own, as run.json records it)")
    p.add_argument("--markdown", action="store_true", help="print the tables as GitHub Markdown")
    p.add_argument("--rescore", action="store_true", help="also write the numbers into the run's results.json (the current schema)")
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from gapbench.harness.errors import GapbenchError

    if args.rescore and args.filter:
        raise GapbenchError("--rescore writes the run's own numbers: leave out --filter (or analyse without --rescore).")
    results_path = locate(args.run, args.task)
    store = None
    if args.rescore:  # results.json is rewritten: one writer per run directory (a run adding a verifier waits its turn)
        from gapbench.harness.store import RunStore

        store = RunStore(results_path.parent)
        store.lock()
    try:
        return _analyze(args, results_path)
    finally:
        if store is not None:
            store.close()


def _analyze(args: argparse.Namespace, results_path: Path) -> int:
    from gapbench.harness.settings import check_resampling

    data = load_run(results_path)
    seed, n_boot = data.resampling(args.seed, args.n_boot)
    check_resampling(n_boot=n_boot, seed=seed)
    if data.unscored:
        print("not analysed: " + "; ".join(f"{m} ({why})" for m, why in sorted(data.unscored.items())))
    diagnostics = analyze_run(data, n_boot=n_boot, seed=seed, filter_spec=args.filter)
    r = data.results
    print(
        f"{r.task.name} ({r.task.split}): {len(data.doc_ids)} prompts x {data.n} samples, filter {args.filter or data.filter}, "
        f"model {data.label}; run {data.dir}"
    )
    print("\n\n".join(tables(diagnostics, "github" if args.markdown else "simple")))
    written = write_plots(diagnostics, data.dir / ANALYSIS_DIR)
    print(f"\nplots: {', '.join(str(p) for p in written)}")
    if data.lengths is None:
        print("note: the run's samples.jsonl records no token counts: no length bias and no gap-vs-tokens.png")
    if args.rescore:
        rescore(data, results_path, diagnostics)
        print(f"rewrote {results_path} (schema_version {SCHEMA_VERSION})")
    return 0
