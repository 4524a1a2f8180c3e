"""CoT-score read two ways from a stored run's replies: gapbench's parser against the first score.

    python benchmarks/cot_score_reading.py leaderboards/four-models/store/gsm8k/*/gsm8k

gapbench's parser (``verifiers.prompts.parse_score``) reads the last ``Score: s`` of a CoT-score reply
only where the reply ends with it: a reply that goes on after its score with a line of words counts as
unparsed, because a small model that writes "Score: 3" and then argues on has given no final score.
Some models write their score and then start a new, unasked check ("Score: 10\\nTo determine the final
answer, ..."). This script reads every stored CoT-score reply of each run folder both ways, with nothing
generated: **ends there** (the parser, as the run scored it) and **first score** (the reply cut after
each of its lines in turn, read by the same parser, and the first cut that gives a score), and prints each run's unread replies,
gap, relative gap and AUROC under both, from the harness's own metrics (``gapbench.harness.metrics.summarize``,
the run's filter, 1,000 bootstrap resamples, seed 0). If the two rows of a run agree within their
intervals, the parser's choice does not move that run's conclusion.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gapbench.harness.filters import parse_filter  # noqa: E402
from gapbench.harness.metrics import PromptScores, VerifierSummary, summarize  # noqa: E402
from gapbench.verifiers import prompts  # noqa: E402


def first_score(text: str) -> float | None:
    """The first score the parser reads where the reply could have ended: the reply cut after each of
    its lines in turn, read by the parser, and the first cut that gives a score."""
    end = 0
    for line in text.split("\n"):
        end += len(line) + 1
        score = prompts.parse_score(text[: end - 1])
        if score is not None:
            return score
    return None


READINGS: dict[str, Callable[[str], float | None]] = {"ends there": prompts.parse_score, "first score": first_score}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_run(folder: Path) -> tuple[dict[str, dict[int, dict]], dict[str, dict[int, list[str]]], str]:
    """A run folder's grades (doc -> sample -> row), CoT-score replies (doc -> sample -> texts) and filter."""
    grades: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in _lines(folder / "grades.jsonl"):
        grades[row["doc_id"]][row["sample"]] = row
    replies: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in _lines(folder / "verdicts.jsonl"):
        if row.get("method") == "cot-score":
            replies[row["doc_id"]][int(row["key"].split(":")[0])].append(row["reply"])
    spec = json.loads((folder / "results.json").read_text(encoding="utf-8")).get("filter") or "quantile:0.5"
    return grades, replies, str(spec)


def score_run(folder: Path, read: Callable[[str], float | None]) -> tuple[int, int, VerifierSummary]:
    grades, replies, spec = read_run(folder)
    rule = parse_filter(spec)
    prompt_scores, unread, total = [], 0, 0
    for doc, rows in grades.items():
        order = sorted(rows)
        u = []
        for i in order:
            values = [read(text) for text in replies[doc][i]]
            scores = [(v - 1) / 9 for v in values if v is not None]
            unread += len(values) - len(scores)
            total += len(values)
            u.append(sum(scores) / len(scores) if scores else 0.0)
        prompt_scores.append(PromptScores(doc, [rows[i]["g"] for i in order], u, rule.keep(u), [rows[i]["answer"] for i in order]))
    return unread, total, summarize(prompt_scores, n_boot=1000, seed=0)


def _ci(ci: list[float] | None) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (holding grades.jsonl and verdicts.jsonl)")
    args = parser.parse_args(argv)
    print("| run | reading | unread / replies | gap | relative gap | AUROC |")
    print("|---|---|---|---|---|---|")
    for folder in args.runs:
        if not (folder / "verdicts.jsonl").is_file() or not (folder / "grades.jsonl").is_file():
            print(f"{folder}: no grades.jsonl or verdicts.jsonl here; skipped", file=sys.stderr)
            continue
        name = f"{folder.parent.name}/{folder.name}"
        for label, read in READINGS.items():
            unread, total, s = score_run(folder, read)
            if total == 0:
                print(f"{folder}: no CoT-score replies stored; skipped", file=sys.stderr)
                break
            rel, auroc = s.relative_gap, s.verification.auroc
            print(f"| {name} | {label} | {unread} / {total} | {s.gap.value:+.3f} {_ci(s.gap.ci)} | {'n/a' if rel.value is None else f'{rel.value:+.3f}'} {_ci(rel.ci)} | {'n/a' if auroc is None else f'{auroc:.3f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
