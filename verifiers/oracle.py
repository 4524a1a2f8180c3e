"""Oracle: u = g, the ground truth. The upper bound of any verifier; never 'self'."""

from typing import Any

from gapbench.tasks.base import Doc, Task
from gapbench.verifiers import Reply, Request, Verdict, Verifier, register


@register
class Oracle(Verifier):
    name = "oracle"
    description = "u = g (ground truth): the upper bound, not self-verification"
    uses_model = False
    needs_ground_truth = True

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        return []

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], *, g: list[int] | None = None, **_: Any) -> list[Verdict]:
        if g is None:
            raise ValueError("the oracle is given the ground truth g (needs_ground_truth)")
        return [Verdict(u=float(x)) for x in g]
