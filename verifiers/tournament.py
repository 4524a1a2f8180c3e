"""Tournament: single-elimination pairwise comparisons among a prompt's samples.

Round 1 pairs samples (0, 1), (2, 3), ...; an odd one out advances without a
match; winners meet in the next round until one remains. Each match asks the
model which of two solutions is correct, scored from the log-probabilities of
" A" and " B" with both orders shown (so position bias cancels); the sample with
the higher mean probability wins (ties: the lower index). The few-shot part
shows the task's worked verification examples as single-solution judgments. u = wins / matches
played (1.0 for a sample that never played, i.e. n = 1). Survivors of the later
rounds have the highest u, so a quantile filter keeps them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from gapbench.tasks.base import Doc, Task
from gapbench.verifiers import Matches, Reply, Request, Verdict, Verifier, prompts, register

ASK = "Which proposed solution is correct, A or B?"
MATCH_KEY = re.compile(r"r(\d+):(\d+)-(\d+):(ab|ba):(A|B)")  # a match's request key: round, pair, order shown, option


def pair_block(question: str, a: str, b: str) -> str:
    return f"Question: {question.strip()}\nProposed solution A: {prompts.neutralise(a)}\nProposed solution B: {prompts.neutralise(b)}\n{ASK}\n"


def fewshot_pairs(task: Task) -> list[str]:
    """The task's verification examples as single-solution judgments (as MC shows them),
    then, where two examples share a question (one correct, one not), that pair in both orders;
    as turns (see :func:`verifiers.prompts.fewshot`)."""
    examples = task.verification_examples()
    turns = prompts.fewshot(task, prompts.mc_example)
    for good in (e for e in examples if e.correct):
        for bad in (e for e in examples if not e.correct and e.question == good.question):
            turns = prompts.ask(turns, pair_block(good.question, good.response, bad.response) + "Answer:") + [" A\n\n"]
            turns = prompts.ask(turns, pair_block(good.question, bad.response, good.response) + "Answer:") + [" B\n\n"]
    return turns


@register
class Tournament(Verifier):
    name = "tournament"
    description = "single-elimination pairwise comparisons (loglikelihood); u = win rate"
    needs_logprobs = True

    def bracket(
        self, samples: list[str], replies: dict[str, Reply], task: Task | None = None, doc: Doc | None = None, ask: list[Request] | None = None, flips: list[int] | None = None
    ) -> tuple[list[int], list[int], bool]:
        """Play the bracket as far as the replies allow. Returns (wins, played, complete);
        appends the requests of unplayed matches of the current round to ``ask``. With ``flips`` (a
        list of n zeros), counts per sample its matches whose winner each order alone would pick
        differently (position bias: the two orders disagree)."""
        wins = [0] * len(samples)
        played = [0] * len(samples)
        alive = list(range(len(samples)))
        rnd = 0
        while len(alive) > 1:
            rnd += 1
            nxt, pending = [], False
            for k in range(0, len(alive) - 1, 2):
                i, j = alive[k], alive[k + 1]
                keys = [f"r{rnd}:{i}-{j}:{o}:{c}" for o in ("ab", "ba") for c in ("A", "B")]
                if all(key in replies for key in keys):
                    p_ab = _p_first(replies[keys[0]], replies[keys[1]])  # P(i) with i shown as A
                    p_ba = _p_first(replies[keys[3]], replies[keys[2]])  # P(i) with i shown as B
                    winner = i if (p_ab + p_ba) / 2 >= 0.5 else j
                    if flips is not None and (p_ab >= 0.5) != (p_ba >= 0.5):
                        flips[i] += 1
                        flips[j] += 1
                    wins[winner] += 1
                    played[i] += 1
                    played[j] += 1
                    nxt.append(winner)
                else:
                    pending = True
                    if ask is not None and task is not None and doc is not None:
                        ask.extend(self._match(task, doc, samples, rnd, i, j))
            if len(alive) % 2:
                nxt.append(alive[-1])
            if pending:
                return wins, played, False
            alive = nxt
        return wins, played, True

    def _match(self, task: Task, doc: Doc, samples: list[str], rnd: int, i: int, j: int) -> list[Request]:
        head = fewshot_pairs(task)
        a, b = task.show_response(doc, samples[i]), task.show_response(doc, samples[j])
        out = []
        for order, (x, y) in (("ab", (a, b)), ("ba", (b, a))):
            ctx = self.prompt(prompts.ask(head, pair_block(doc.question, x, y) + "Answer:"))
            out += [Request(f"r{rnd}:{i}-{j}:{order}:{c}", "loglikelihood", ctx, f" {c}") for c in ("A", "B")]
        return out

    def contexts(self, task: Task, doc: Doc, samples: list[str], keys: list[str]) -> dict[str, str]:
        """Every stored match's contexts, rebuilt from its key ``r<round>:<i>-<j>:<order>:<choice>``."""
        out = {}
        for key in keys:
            try:
                rnd, pair, _, _ = key.split(":")
                i, j = (int(x) for x in pair.split("-"))
                matches = self._match(task, doc, samples, int(rnd[1:]), i, j)
            except (ValueError, IndexError):
                continue  # not a key this verifier makes: nothing to check it against
            out.update({r.key: r.context for r in matches})
        return out

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        ask: list = []
        self.bracket(samples, replies, task, doc, ask)
        return ask

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], **_: Any) -> list[Verdict]:
        flips = [0] * len(samples)
        wins, played, complete = self.bracket(samples, replies, flips=flips)
        if not complete:
            raise RuntimeError(f"tournament for {doc.doc_id} is incomplete")
        return [
            Verdict(u=(w / p if p else 1.0), matches=Matches(wins=w, played=p, order_flips=f)) for w, p, f in zip(wins, played, flips)
        ]

    def describe_replies(self, replies: dict[str, Reply], n: int) -> list[list[dict[str, Any]]]:
        """Per sample, its matches: round, opponent, P(this sample is the correct one), won; keys of
        the ``"<sample>:<rest>"`` form as every verifier's (:meth:`Verifier.describe_replies`)."""
        out = super().describe_replies(replies, n)
        matches: dict[tuple[int, int, int], dict[tuple[str, str], Any]] = defaultdict(dict)
        for key, reply in replies.items():
            m = MATCH_KEY.fullmatch(str(key))
            if m:
                matches[(int(m[1]), int(m[2]), int(m[3]))][(m[4], m[5])] = reply
        for (rnd, i, j), r in sorted(matches.items()):
            if len(r) < 4 or i >= n or j >= n:
                continue
            p_i = (_p_first(r[("ab", "A")], r[("ab", "B")]) + _p_first(r[("ba", "B")], r[("ba", "A")])) / 2
            won = p_i >= 0.5
            out[i].append({"round": rnd, "vs": j, "p": p_i, "won": won})
            out[j].append({"round": rnd, "vs": i, "p": 1 - p_i, "won": not won})
        if matches:
            for items in out:
                items.sort(key=lambda x: (x.get("round", 0), str(x.get("key", ""))))
        return out


def _p_first(lp_first: float, lp_second: float) -> float:
    top = max(lp_first, lp_second)
    a, b = math.exp(lp_first - top), math.exp(lp_second - top)
    return a / (a + b)
