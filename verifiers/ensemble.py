"""Ensemble: keep a response only when every member method keeps it (AND), as in
the paper. ``ensemble:mc+cot-score`` names the members; plain ``ensemble`` takes
every model-based method of the run. u is the members' mean u (used for AUROC and
best-of-n); the filter decision is the AND of the members' decisions."""

from __future__ import annotations

from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.tasks.base import Doc, Task
from gapbench.verifiers import Reply, Request, Verdict, Verifier, register
from gapbench.verifiers.base import KeepRule


@register
class Ensemble(Verifier):
    name = "ensemble"
    description = "AND of member methods' filter decisions (ensemble:mc+cot-score); u = mean member u"
    uses_model = False
    takes_arg = True

    def __init__(self, arg: str | None = None, m: int = 1, **options: Any):
        super().__init__(arg, m, **options)
        self._members = [p for p in (arg or "").split("+") if p]
        if self._members and len(self._members) < 2:
            raise GapbenchError(f"ensemble:{arg} needs at least two members joined by '+', e.g. ensemble:mc+cot-score.")

    def members(self) -> list[str]:
        return list(self._members)

    def bind(self, run_methods: list[str]) -> None:
        """Plain ``ensemble``: every other model-based method of the run."""
        if not self._members:
            self._members = [m for m in run_methods if m not in ("oracle",) and not m.startswith("ensemble")]
            if len(self._members) < 2:
                raise GapbenchError(
                    "ensemble needs at least two model-based verifiers in the run (e.g. --verifiers mc,cot-score,ensemble), "
                    "or name its members: ensemble:mc+cot-score."
                )

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        return []

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], *, member_u: dict[str, list[float]] | None = None, **_: Any) -> list[Verdict]:
        if member_u is None:
            raise RuntimeError("ensemble.score needs its members' u")
        n = len(samples)
        return [Verdict(u=sum(member_u[m][i] for m in self._members) / len(self._members)) for i in range(n)]

    def keep(self, scores: dict[str, list[float]], rule: KeepRule) -> list[bool] | None:
        masks = [rule.keep(scores[m]) for m in self._members]
        return [all(col) for col in zip(*masks)]
