"""MC: the model picks Correct or Incorrect; u = P(Correct) from the next-token
log-probabilities of the two options, normalised over them. One forward pass per
option, no generation, so never unparseable."""

from __future__ import annotations

import math
from typing import Any

from gapbench.tasks.base import Doc, Task
from gapbench.verifiers import Reply, Request, Verdict, Verifier, prompts, register

OPTIONS = (" Correct", " Incorrect")


@register
class MC(Verifier):
    name = "mc"
    description = "multiple choice: u = P(Correct) from log-probabilities (loglikelihood, no generation)"
    needs_logprobs = True

    def context(self, task: Task, doc: Doc, response: str) -> str:
        head = prompts.fewshot(task, prompts.mc_example)
        body = prompts.block(doc.question, task.show_response(doc, response), f"{task.verification_question()} {prompts.MC_ASK}")
        return self.prompt(prompts.ask(head, body + "Answer:"))

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        out = []
        for i, response in enumerate(samples):
            ctx = self.context(task, doc, response)
            out += [Request(key=f"{i}:{opt.strip()}", kind="loglikelihood", context=ctx, continuation=opt) for opt in OPTIONS]
        return out

    def score(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], **_: Any) -> list[Verdict]:
        verdicts = []
        for i in range(len(samples)):
            yes, no = replies[f"{i}:Correct"], replies[f"{i}:Incorrect"]
            top = max(yes, no)
            p = math.exp(yes - top) / (math.exp(yes - top) + math.exp(no - top))
            verdicts.append(Verdict(u=p))
        return verdicts
