"""CoT-score read two ways from a stored run's replies: gapbench's parser against the first score.

    python benchmarks/cot_score_reading.py leaderboards/four-models/store/gsm8k/*/gsm8k

gapbench's parser (``verifiers.prompts.parse_score``) reads the last ``Score: s`` of a CoT-score reply
only where the reply ends with it: a reply that goes on after its score with a line of words counts as
unparsed, because a small model that writes "Score: 3" and then argues on has given no final score.
Some models write their score and then start a new, unasked check ("Score: 10\\nTo determine the final
answer, ..."). This script reads every stored CoT-score reply of each run folder both ways, with nothing
generated: **ends there** (the parser, as the run scored it) and **first score** (the reply cut after
each of its lines in turn, read by the same parser, and the first cut that gives a score). It prints each
run's unread replies, gap, relative gap and AUROC under both: the run is read back and rescored by the
CoT-score verifier plugin as every reader of a run does (``harness.stored_run``; "first score" is the
same verifier with its parse reading the first score), and the metrics come from
``gapbench.harness.metrics.summarize`` under the run's filter, bootstrap seed and resamples. If the two
rows of a run agree within their intervals, the parser's choice does not move that run's conclusion.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gapbench.harness.metrics import PromptScores, VerifierSummary, summarize  # noqa: E402
from gapbench.harness.stored_run import StoredRun, open_stored_run, task_plugin  # noqa: E402
from gapbench.verifiers import prompts  # noqa: E402
from gapbench.verifiers.cot import CoTScore  # noqa: E402

METHOD = CoTScore.name


def first_score(text: str, read: Callable[[str], float | None] = prompts.parse_score) -> float | None:
    """The first score ``read`` (the parser) takes where the reply could have ended: the reply cut after
    each of its lines in turn, and the first cut that gives a score."""
    end = 0
    for line in text.split("\n"):
        end += len(line) + 1
        score = read(text[: end - 1])
        if score is not None:
            return score
    return None


class FirstScore(CoTScore):
    """CoT-score as the run scored it, but reading each reply's first score (:func:`first_score`)."""

    def parse(self, text: str) -> float | None:
        return first_score(text, super().parse)


READINGS: dict[str, type[CoTScore]] = {"ends there": CoTScore, "first score": FirstScore}


def score_run(folder: Path | StoredRun, reading: type[CoTScore]) -> tuple[int, int, VerifierSummary]:
    """(unread replies, replies, the summary) of a finished run's CoT-score replies rescored by ``reading``:
    the stored run read (``folder``, or a run already read) and rescored as every reader of a run does
    (``harness.stored_run``), under its filter and the bootstrap seed and resamples it was scored with."""
    run = folder if isinstance(folder, StoredRun) else open_stored_run(folder)
    assert run.results is not None
    run.rescore(task_plugin(run.results), [reading(m=int(run.results.sizes.m or 1))])
    verdicts = [x for vs in run.verdicts[METHOD].values() for x in vs]
    keep = run.keep(METHOD)
    scores = [PromptScores(d, run.g(d), run.u[METHOD][d], keep[d], [gr.answer for gr in run.grades[d]]) for d in run.doc_ids]
    seed, n_boot = run.resampling()
    return sum(x.unparsed for x in verdicts), sum(len(x.values or ()) for x in verdicts), summarize(scores, n_boot=n_boot, seed=seed)


def _ci(ci: list[float] | None) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (or their results.json)")
    args = parser.parse_args(argv)
    print("| run | reading | unread / replies | gap | relative gap | AUROC |")
    print("|---|---|---|---|---|---|")
    for folder in args.runs:
        run = open_stored_run(folder)
        if run.results is None or METHOD not in run.results.verifiers:
            print(f"{folder}: the run has no {METHOD} verdicts; skipped", file=sys.stderr)
            continue
        name = f"{folder.parent.name}/{folder.name}"
        for label, reading in READINGS.items():
            unread, total, s = score_run(run, reading)
            rel, auroc = s.relative_gap, s.verification.auroc
            print(f"| {name} | {label} | {unread} / {total} | {s.gap.value:+.3f} {_ci(s.gap.ci)} | {'n/a' if rel.value is None else f'{rel.value:+.3f}'} {_ci(rel.ci)} | {'n/a' if auroc is None else f'{auroc:.3f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
