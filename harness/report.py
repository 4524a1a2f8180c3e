"""Tables for the terminal and for pull requests (tabulate)."""

from __future__ import annotations

from collections.abc import Iterable

from tabulate import tabulate

from gapbench.harness.format import metric, number
from gapbench.harness.results import Results


def verifier_order(methods: Iterable[str]) -> list[str]:
    """The order every table and chart lists verifiers in: model verifiers alphabetically, then
    ensembles, the oracle last."""
    return sorted(methods, key=lambda m: (m == "oracle", m.startswith("ensemble"), m))


def summary_line(results: Results) -> str:
    gen, sizes, task = results.generation, results.sizes, results.task
    ks = list(gen.pass_at_k)
    passes = "  ".join(f"pass@{k} {number(gen.pass_at_k[k])}" for k in (ks[0], ks[-1])) if ks else ""
    variants = "  ".join(f"{k} {number(v)}" for k, v in gen.variants.items())
    return (
        f"{task.name} ({task.split}, {sizes.n_prompts} prompts x {sizes.n} samples, m={sizes.m}) "
        f"model {results.model.id}"
        + (f", verifier model {results.verifier_model.id}" if results.verifier_model else "")
        + f", filter {results.filter}\n"
        f"J(f) = {metric(gen.J)}  {passes}  maj@{ks[-1] if ks else 1} {number(gen.maj_at_k.get(ks[-1]) if ks else None)}"
        + (f"  [{variants}]" if variants else "")
    )


def verifier_table(results: Results, fmt_name: str = "simple") -> str:
    rows = []
    for method, b in results.verifiers.items():
        rel = b.relative_gap
        rows.append(
            [
                method,
                metric(b.J_filtered),
                metric(b.gap),
                metric(b.realised_share),
                number(b.within_prompt.auroc.value) + f" ({b.within_prompt.n_prompts} prompts)" if b.within_prompt else "n/a",
                metric(rel) + (f" ({rel.n_excluded} excl.)" if rel.n_excluded else ""),
                number(b.verification.auroc),
                number(b.verification.accuracy),
                number(b.best_of_n),
                number(b.filter.kept_share, 2),
                b.unparsed,
            ]
        )
    headers = [
        "verifier",
        "J(f[w(u)])",
        "gap",
        "share of oracle gap",
        "AUROC in prompt",
        "relative gap",
        "AUROC",
        "ver. acc",
        "best-of-n",
        "kept",
        "unparsed",
    ]
    return tabulate(rows, headers=headers, tablefmt=fmt_name, disable_numparse=True)


def group_tables(results: Results, fmt_name: str = "simple") -> list[str]:
    """Per group (level, subject, ...): J(f) and each method's gap."""
    out = []
    for key, groups in results.generation.by_group.items():
        methods = list(results.verifiers)
        rows = []
        for name, gen in groups.items():
            row = [name, gen.n_prompts, metric(gen.J)]
            for m in methods:
                b = results.verifiers[m].by_group[key][name]
                row += [number(b.gap.value), number(b.verification.auroc, 2)]
            rows.append(row)
        headers = [key, "prompts", "J(f)"] + [h for m in methods for h in (f"gap {m}", f"AUROC {m}")]
        out.append(tabulate(rows, headers=headers, tablefmt=fmt_name, disable_numparse=True))
    return out


def render(results: Results, fmt_name: str = "simple") -> str:
    parts = [summary_line(results), verifier_table(results, fmt_name), *group_tables(results, fmt_name)]
    if results.run:  # a document without its run's reference (none that a run writes) names no folder
        parts.append(f"stored in {results.run.dir}")
    return "\n\n".join(parts)
