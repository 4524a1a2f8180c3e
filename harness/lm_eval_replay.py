"""lm-eval's own score of a run's stored responses: the check that an ``lm-eval:NAME`` task's J(f) is
lm-eval's metric.

:func:`lm_eval_scores` runs ``lm_eval.simple_evaluate`` (lm-eval's task building, prompts, filters,
metrics and aggregation, nothing of gapbench's) once per sample index i, with :class:`ReplayLM`, a model
that answers each generation request with the stored response i of the prompt whose context it is. The
mean over i of lm-eval's ``exact_match`` (or any metric) is then what gapbench's J(f) must equal, since
every prompt has the same n samples. A context lm-eval asks for that the run has no response to (its
prompt differs from gapbench's) is an error, so the check covers the prompts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval.api.model import LM

from gapbench.harness.errors import GapbenchError


class ReplayLM(LM):
    """An lm-eval model that replays stored responses, looked up by the request's exact context."""

    def __init__(self, replies: dict[str, str]):
        super().__init__()
        self.replies = replies
        self.asked: list[str] = []

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for request in requests:
            context = request.args[0]
            if context not in self.replies:
                raise GapbenchError(
                    "lm-eval asked for a context that the run holds no response to: lm-eval's prompt differs from "
                    f"the run's (its last 200 characters: {context[-200:]!r})."
                )
            self.asked.append(context)
            out.append(self.replies[context])
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise GapbenchError("ReplayLM replays generations only; this lm-eval task asks for log-likelihoods.")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        raise GapbenchError("ReplayLM replays generations only; this lm-eval task asks for log-likelihoods.")


def lm_eval_scores(
    task: str,
    prompts: Sequence[tuple[str, Sequence[str]]],
    *,
    task_manager: Any = None,
    fewshot_seed: int = 1234,
) -> dict[str, float]:
    """lm-eval's own metrics of stored responses: ``prompts`` are (lm-eval context, the n responses) of
    lm-eval's first ``len(prompts)`` evaluation docs, in order. Returns {"<metric>,<filter>": mean over the
    n sample indices of lm-eval's aggregate} for every metric lm-eval reports of ``task``."""
    from lm_eval import simple_evaluate

    if not prompts:
        raise GapbenchError("lm_eval_scores: no prompts to score.")
    n = len(prompts[0][1])
    if any(len(responses) != n for _, responses in prompts):
        raise GapbenchError("lm_eval_scores: every prompt needs the same number of responses.")
    totals: dict[str, float] = {}
    for i in range(n):
        model = ReplayLM({context: responses[i] for context, responses in prompts})
        out = simple_evaluate(
            model=model,
            tasks=[task],
            task_manager=task_manager,
            limit=len(prompts),
            bootstrap_iters=0,
            log_samples=False,
            fewshot_random_seed=fewshot_seed,
        )
        if out is None or len(model.asked) != len(prompts):
            raise GapbenchError(f"lm-eval scored {len(model.asked)} of the {len(prompts)} prompts of {task!r}.")
        tasks = set(out.get("configs", {}))  # task blocks only: a group's block repeats its task's numbers
        for name, block in out["results"].items():
            if name not in tasks:
                continue
            for key, value in block.items():
                if "," in key and not key.endswith("_stderr") and "_stderr," not in key and isinstance(value, (int, float)):
                    totals[key] = totals.get(key, 0.0) + float(value) / n
    return totals
