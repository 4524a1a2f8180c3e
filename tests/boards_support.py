"""Synthetic run directories for tests and demos: the files ``gapbench run`` writes (results.json,
grades.jsonl, samples.jsonl, verdicts.jsonl, run.json), made from given ground truth g and ``mc``
probabilities u, with every metric computed by :mod:`harness.metrics` as a real run computes it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from gapbench.harness.filters import parse_filter, sweep_levels
from gapbench.harness.metrics import PromptScores, filter_sweep, summarize
from gapbench.harness.results import Generation, GenerationSummary, ModelInfo, Results, RunRef, SamplingInfo, Sizes, Sweep, TaskInfo, Tokens, VerifierResults, build, from_json
from gapbench.verifiers.oracle import correct_kept


def _level(doc_id: str) -> str:
    return doc_id.split("-")[0]


def write_run(
    directory: str | Path,
    g: dict[str, list[int]],
    u_mc: dict[str, list[float]] | None = None,
    *,
    model: dict | None = None,
    task_options: dict | None = None,
    task_name: str = "arith",
    sampling: dict | None = None,
    filter_spec: str = "quantile:0.5",
    n_boot: int = 200,
    seed: int = 0,
    created: str = "2025-01-01T00:00:00+00:00",
) -> Path:
    """Write a run of ``task_name`` with the ``mc`` verifier (when ``u_mc`` is given) and ``oracle``.
    Doc ids look like ``<level>-<k>`` (e.g. ``add1-0``): the level is the text before the dash.
    Returns the run directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    docs = list(g)
    n = len(g[docs[0]])
    rule = parse_filter(filter_spec)
    u_all = {"oracle": {k: [float(x) for x in g[k]] for k in docs}}
    if u_mc is not None:
        u_all = {"mc": {k: list(u_mc[k]) for k in docs}, **u_all}

    def keep(method, r, k):  # the oracle keeps a prompt's correct samples under every filter (verifiers/oracle.py)
        return correct_kept(g[k]) if method == "oracle" else r.keep(u_all[method][k])

    def prompts(method, subset, r=rule):
        return [PromptScores(k, g[k], u_all[method][k], keep(method, r, k), [str(x) for x in g[k]], {"level": _level(k)}) for k in subset]

    levels: dict[str, list[str]] = {}
    for k in docs:
        levels.setdefault(_level(k), []).append(k)

    def gen(subset) -> GenerationSummary:
        s = summarize([PromptScores(k, g[k], [0.0] * n, [True] * n, [str(x) for x in g[k]]) for k in subset], n_boot=n_boot, seed=seed)
        return GenerationSummary(s.n_prompts, s.n_samples, s.J, s.pass_at_k, s.maj_at_k)

    verifiers = {}
    for method in u_all:
        ps = prompts(method, docs)
        verifiers[method] = build(
            VerifierResults,
            **vars(summarize(ps, n_boot=n_boot, seed=seed)),
            unparsed=0,
            sweep=Sweep(rule.kind, filter_sweep(ps, lambda r, i: keep(method, r, ps[i].doc_id), rule.kind, sweep_levels(rule.kind))),  # noqa: B023 (called at once)
            by_group={"level": {lv: summarize(prompts(method, sub), n_boot=n_boot, seed=seed) for lv, sub in levels.items()}},
        )
    where = str(d / "results.json")
    results = build(
        Results,
        schema_version=1,
        gapbench_version="0.1.0",
        created=created,
        run=from_json(RunRef, {"dir": os.path.relpath(d), "config_hash": "synthetic"}, where),  # relative, as a run records it: no machine path
        model=from_json(ModelInfo, model or {"id": "test-model", "backend": "hf", "parameters": 1000}, where, "model"),
        verifier_model=None,
        task=from_json(
            TaskInfo,
            {
                "name": task_name,
                "version": "1",
                "options": task_options if task_options is not None else {"levels": "+".join(levels), "per_level": len(docs) // max(1, len(levels)), "seed": 0},
                "verification_prompts": "1",
                "split": "test",
            },
            where,
            "task",
        ),
        sizes=Sizes(n_prompts=len(docs), n=n, m=1, n_samples=len(docs) * n),
        sampling=from_json(SamplingInfo, sampling or {"temperature": 0.7, "top_p": 0.9, "max_gen_toks": 16}, where, "sampling"),
        verification_sampling=SamplingInfo(temperature=0.7, top_p=0.9, max_gen_toks=48),
        filter=rule.spec,
        generation=Generation(**vars(gen(docs)), variants={}, unanswered=0, by_group={"level": {lv: gen(sub) for lv, sub in levels.items()}}),
        verifiers=verifiers,
        tokens=Tokens(prompt=0, generated=0),
        timings={},
    )  # plain prompts: no chat block
    (d / "results.json").write_text(results.to_json())
    (d / "run.json").write_text(json.dumps({"n": n, "m": 1, "verifiers": list(verifiers), "filter": rule.spec}) + "\n")
    lines = lambda recs: "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)  # noqa: E731
    (d / "grades.jsonl").write_text(lines({"doc_id": k, "sample": i, "g": int(g[k][i]), "answer": str(g[k][i]), "variants": {}} for k in docs for i in range(n)))
    (d / "samples.jsonl").write_text(lines({"doc_id": k, "sample": i, "response": f" {g[k][i]}"} for k in docs for i in range(n)))
    verdicts = []
    if u_mc is not None:
        for k in docs:
            for i, p in enumerate(u_mc[k]):
                p = min(max(p, 1e-9), 1 - 1e-9)
                verdicts.append({"doc_id": k, "method": "mc", "key": f"{i}:Correct", "kind": "loglikelihood", "reply": math.log(p)})
                verdicts.append({"doc_id": k, "method": "mc", "key": f"{i}:Incorrect", "kind": "loglikelihood", "reply": math.log(1 - p)})
    (d / "verdicts.jsonl").write_text(lines(verdicts))
    return d


def readme_sections_missing_from_index(board: str | Path) -> list[str]:
    """The section headings of a board's README.md that its index.html does not show as a heading."""
    import re
    from html.parser import HTMLParser

    headings, fenced = [], False
    for line in (Path(board) / "README.md").read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            headings.append(re.sub(r"[*`]", "", line.lstrip("#").strip()))

    class Headings(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.shown: list[str] = []
            self.inside = False

        def handle_starttag(self, tag, attrs):
            if re.fullmatch(r"h[1-6]", tag):
                self.inside = True
                self.shown.append("")

        def handle_endtag(self, tag):
            if re.fullmatch(r"h[1-6]", tag):
                self.inside = False

        def handle_data(self, data):
            if self.inside:
                self.shown[-1] += data

    parser = Headings()
    parser.feed((Path(board) / "index.html").read_text(encoding="utf-8"))
    shown = {" ".join(h.split()) for h in parser.shown}
    assert headings, f"{board}/README.md has no section heading"
    return [h for h in headings if " ".join(h.split()) not in shown]
