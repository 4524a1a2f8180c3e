"""CoT-Binary and CoT-Score: the model reasons about a response, then gives a
verdict (correct/incorrect) or a score from 1 to 10; ``m`` sampled verifications
per response. u is the mean verdict, or the mean score mapped to [0, 1] by
(s - 1) / 9. Replies without a readable verdict are counted as unparsed and left
out of the mean; a response with no readable verdict at all gets u = 0 (it was
not verified, so a filter does not keep it on merit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gapbench.tasks.base import Doc, Task, VerificationExample
from gapbench.verifiers import Reply, Request, Verdict, Verifier, prompts, register


class _CoT(Verifier):
    render: Callable[[VerificationExample, str], tuple[str, str]] | None = None  # example renderer
    extra_ask = ""

    def context(self, task: Task, doc: Doc, response: str) -> str:
        render = type(self).render
        assert render is not None, f"{type(self).__name__} names its example renderer"
        head = prompts.fewshot(task, render)
        body = prompts.block(doc.question, task.show_response(doc, response), task.verification_question() + self.extra_ask)
        return self.prompt(prompts.ask(head, body + "Check:"))

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        gen = {"until": prompts.cot_stop(task)}
        return [
            Request(key=f"{i}:{j}", kind="generate", context=self.context(task, doc, response), gen=gen)
            for i, response in enumerate(samples)
            for j in range(self.m)
        ]

    def parse(self, text: str) -> float | None:
        raise NotImplementedError

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], **_: Any) -> list[Verdict]:
        verdicts = []
        for i in range(len(samples)):
            values = [self.parse(replies[f"{i}:{j}"]) for j in range(self.m)]
            read = [v for v in values if v is not None]
            verdicts.append(Verdict(u=sum(read) / len(read) if read else 0.0, unparsed=len(values) - len(read), values=tuple(values)))
        return verdicts


@register
class CoTBinary(_CoT):
    name = "cot-binary"
    description = "chain of thought, then Correct/Incorrect; u = mean verdict over m verifications"
    render = staticmethod(prompts.cot_binary_example)

    def parse(self, text: str) -> float | None:
        return prompts.parse_verdict(text)


@register
class CoTScore(_CoT):
    name = "cot-score"
    description = "chain of thought, then a score 1-10; u = (mean score - 1) / 9"
    render = staticmethod(prompts.cot_score_example)
    extra_ask = prompts.SCORE_ASK

    def parse(self, text: str) -> float | None:
        s = prompts.parse_score(text)
        return None if s is None else (s - 1) / 9
