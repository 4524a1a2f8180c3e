"""The grade and score stages: ground truth per sample, then every metric from g, each method's u
(scored by :func:`verifiers.suite.score_all`) and its filter decisions (:func:`verifiers.suite.keep_mask`),
overall and per group (e.g. per level or subject)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from gapbench.harness.filters import FilterRule, parse_filter, sweep_levels
from gapbench.harness.metrics import (
    Diagnostics,
    PromptScores,
    answer_classes,
    diagnostics,
    filter_sweep,
    gap_curve,
    gap_curve_m,
    position_bias,
    summarize,
)
from gapbench.harness.results import Generation, GenerationSummary, Sweep, VerifierResults, VerifierSummary, build, present, update
from gapbench.tasks.base import Doc, Grade, Task
from gapbench.verifiers.suite import keep_mask


def grade_all(task: Task, docs: list[Doc], samples: dict[str, list[str]]) -> dict[str, list[Grade]]:
    return {doc.doc_id: [task.grade(doc, y) for y in samples[doc.doc_id]] for doc in docs}


def grade_records(docs, grades) -> list[dict]:
    return [
        {"doc_id": doc.doc_id, "sample": i, "g": gr.g, "answer": gr.answer, "variants": gr.variants}
        for doc in docs
        for i, gr in enumerate(grades[doc.doc_id])
    ]


def score(
    task: Task,
    docs: list[Doc],
    grades: dict[str, list[Grade]],
    verdicts: dict[str, dict[str, list]],
    verifiers: list,
    rule: FilterRule,
    *,
    n_boot: int,
    seed: int,
    lengths: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Generation, dict[str, VerifierResults]]:
    """The metric blocks of results.json: ``generation`` and ``verifiers``. ``lengths`` (generated tokens
    per sample, by doc_id) give the length bias and the token axis of the gap-against-n curve."""
    g = {d.doc_id: [gr.g for gr in grades[d.doc_id]] for d in docs}
    answers = {d.doc_id: [gr.answer for gr in grades[d.doc_id]] for d in docs}
    u = {m: {d: [x.u for x in vs] for d, vs in per_doc.items()} for m, per_doc in verdicts.items()}

    def keep_for(v, r: FilterRule, doc_id: str) -> list[bool]:
        return keep_mask(v, u, r, doc_id)

    def prompts_for(v, subset: list[Doc], r: FilterRule) -> list[PromptScores]:
        return [
            PromptScores(d.doc_id, g[d.doc_id], u[v.method][d.doc_id], keep_for(v, r, d.doc_id), answers[d.doc_id], d.meta)
            for d in subset
        ]

    generation = Generation(
        **vars(_gen_summary(docs, g, answers, n_boot, seed)),
        variants=_variant_means(docs, grades),
        unanswered=sum(gr.answer is None for d in docs for gr in grades[d.doc_id]),
        by_group=_by_group(task, docs, lambda sub: _gen_summary(sub, g, answers, n_boot, seed)),
    )

    methods = {}
    for v in verifiers:
        prompts = prompts_for(v, docs, rule)
        own = parse_filter(v.own_filter) if v.own_filter else rule  # the oracle's gap-against-n under its own filter
        diag = verifier_diagnostics(prompts, verdicts[v.method], rule, lengths, n_boot=n_boot, seed=seed, curve_rule=own)
        methods[v.method] = build(
            VerifierResults,
            **vars(summarize(prompts, n_boot=n_boot, seed=seed)),
            unparsed=sum(x.unparsed for vs in verdicts[v.method].values() for x in vs),
            sweep=Sweep(rule.kind, filter_sweep(prompts, lambda r, i: keep_for(v, r, docs[i].doc_id), rule.kind, sweep_levels(rule.kind))),  # noqa: B023 (called at once, inside the loop)
            by_group=_by_group(task, docs, lambda sub: summarize(prompts_for(v, sub, rule), n_boot=n_boot, seed=seed)),  # noqa: B023 (called at once, inside the loop)
            # the diagnostics' blocks (one a verifier lacks, e.g. position_bias of a verifier without matches, stays absent)
            **present(diag),
        )
    return generation, methods


def verifier_diagnostics(
    prompts: list[PromptScores], verdicts: dict[str, list], rule: FilterRule, lengths, *, n_boot: int, seed: int, curve_rule: FilterRule | None = None
) -> Diagnostics:
    """The schema-2 blocks of one verifier: :func:`harness.metrics.diagnostics` (its realised share
    against the oracle's keep, :func:`verifiers.oracle.correct_kept`), the position bias of a verifier
    whose verdicts count order flips (tournament), and the gap against n and m (``by_n``, ``by_m``)
    under ``curve_rule`` (the run's ``rule`` unless the verifier has its own filter)."""
    import numpy as np

    from gapbench.verifiers.oracle import correct_kept

    curve_rule = curve_rule or rule
    L = [lengths[p.doc_id] for p in prompts] if lengths is not None else None
    out = diagnostics(prompts, [correct_kept(p.g) for p in prompts], rule, lengths=L, n_boot=n_boot, seed=seed)
    per_doc = [verdicts[p.doc_id] for p in prompts]
    matches = [[x.matches for x in vs] for vs in per_doc]
    if all(m is not None for row in matches for m in row):  # a pairwise verifier: its block, null without matches
        out = update(out, position_bias=position_bias(
            [[m.order_flips for m in row if m] for row in matches], [[m.played for m in row if m] for row in matches], n_boot=n_boot, seed=seed
        ))
    G = np.array([p.g for p in prompts], dtype=float)
    U = np.array([p.u for p in prompts], dtype=float)
    per_sample = float(np.mean(L)) if L is not None else None
    curve = [
        replace(point, gen_tokens=None if per_sample is None else point.n * per_sample)
        for point in gap_curve(G, U, curve_rule, answer_classes(prompts), seed=seed)
    ]
    out = update(out, by_n=curve)
    values = [[x.values for x in vs] for vs in per_doc]
    if all(v is not None and len(v) > 1 for row in values for v in row):
        V = np.array([[[np.nan if x is None else x for x in v] for v in row] for row in values], dtype=float)
        out = update(out, by_m=gap_curve_m(G, V, curve_rule, seed=seed))
    return out


def _gen_summary(sub, g, answers, n_boot, seed) -> GenerationSummary:
    """J with its interval, pass@k and maj@k: the method-independent numbers."""
    s: VerifierSummary = summarize(
        [PromptScores(d.doc_id, g[d.doc_id], [0.0] * len(g[d.doc_id]), [True] * len(g[d.doc_id]), answers[d.doc_id], d.meta) for d in sub],
        n_boot=n_boot,
        seed=seed,
    )
    return GenerationSummary(s.n_prompts, s.n_samples, s.J, s.pass_at_k, s.maj_at_k)


def _by_group(task: Task, docs: list[Doc], summarise) -> dict:
    out = {}
    for key in task.group_keys:
        groups: dict[str, list[Doc]] = defaultdict(list)
        for d in docs:
            groups[str(d.meta.get(key))].append(d)
        out[key] = {name: summarise(sub) for name, sub in groups.items()}
    return out


def _variant_means(docs, grades) -> dict[str, float]:
    """Mean over prompts of each extra grading (e.g. GSM8K strict/flexible, NQ F1)."""
    sums: dict[str, float] = defaultdict(float)
    for d in docs:
        per: dict[str, float] = defaultdict(float)
        for gr in grades[d.doc_id]:
            for k, val in gr.variants.items():
                per[k] += float(val)
        for k, val in per.items():
            sums[k] += val / len(grades[d.doc_id])
    return {k: v / len(docs) for k, v in sums.items()} if docs else {}
