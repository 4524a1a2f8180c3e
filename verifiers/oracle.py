"""Oracle: u = g, the ground truth. The upper bound of any verifier; never 'self'.

Its filter is its own: under every filter rule it keeps exactly a prompt's correct samples (none of a
prompt with none, whose J(f[w]|x) then falls back to J(f|x) = 0). That is the most any filter can
gain on each prompt, so the oracle's J(f[w(u)]) bounds every verifier's under every filter. Applying
the run's rule to u = g would not: with g in {0, 1}, ``quantile:0.5`` on a prompt with fewer correct
samples than half has its cut at 0 and keeps every sample (no gain), while a verifier with graded u
keeps its top half and may gain.
"""

from collections.abc import Sequence
from typing import Any

from gapbench.tasks.base import Doc, Task
from gapbench.verifiers import Reply, Request, Verdict, Verifier, register
from gapbench.verifiers.base import KeepRule


def correct_kept(g: Sequence[float]) -> list[bool]:
    """The oracle's keep decision for one prompt: its correct samples (g = 1)."""
    return [x >= 1.0 for x in g]


@register
class Oracle(Verifier):
    name = "oracle"
    description = "u = g (ground truth): the upper bound, not self-verification; keeps the correct samples under every filter"
    uses_model = False
    needs_ground_truth = True
    own_filter = "threshold:1"  # what correct_kept computes on u = g

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        return []

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], *, g: list[int] | None = None, **_: Any) -> list[Verdict]:
        if g is None:
            raise ValueError("the oracle is given the ground truth g (needs_ground_truth)")
        return [Verdict(u=float(x)) for x in g]

    def keep(self, scores: dict[str, list[float]], rule: KeepRule) -> list[bool] | None:
        return correct_kept(scores[self.method])
