"""The verifier plugin API.

A verifier turns (task, prompt x, the prompt's sampled responses) into model
requests, and the model's replies into a score ``u(x, y)`` in [0, 1] per response.
The stage runner owns every model call: it asks ``requests`` for what is needed
given the replies stored so far, runs the requests not yet stored, and asks again,
until nothing new is needed (tournaments need several such rounds). Because each
request has a stable key, a killed run resumes without repeating a stored call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.errors import GapbenchError
from tasks.base import Doc, Task


@dataclass(frozen=True)
class Request:
    key: str  # unique within (task, doc, method); the same on every run
    kind: str  # "generate" or "loglikelihood"
    context: str
    continuation: str | None = None  # loglikelihood: the text scored after the context
    gen: dict = field(default_factory=dict)  # generate: overrides of the sampling settings (until, max_gen_toks, ...)


@dataclass(frozen=True)
class Verdict:
    """A response's score from one method."""

    u: float  # in [0, 1]
    unparsed: int = 0  # replies of this response that gave no readable verdict
    detail: dict = field(default_factory=dict)


# A reply: the generated text (generate) or the log-probability of the continuation (loglikelihood).
Reply = Any


class Verifier:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    uses_model: ClassVar[bool] = True  # False: needs no model call (oracle, ensemble)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, arg: str | None = None, m: int = 1, **options: Any):
        """``arg`` is the text after ``:`` in ``--verifiers name:arg``; ``m`` the verifications per sample."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise GapbenchError(
                f"verifier {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.defaults)) or 'none'}."
            )
        self.arg = arg
        self.m = m
        self.options = {**self.defaults, **options}

    @property
    def method(self) -> str:
        """The name under which this verifier's verdicts and results are stored."""
        return f"{self.name}:{self.arg}" if self.arg else self.name

    def config(self) -> dict:
        return {"method": self.method, "m": self.m, "options": dict(self.options)}

    def members(self) -> list[str]:
        """Other methods whose verdicts this one combines (ensemble)."""
        return []

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        """Every request needed for this prompt, given the replies so far."""
        raise NotImplementedError

    def score(
        self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply], g: list[int]
    ) -> list[Verdict]:
        """One verdict per sample. ``g`` is the ground truth: only the oracle may read it."""
        raise NotImplementedError

    def keep(self, scores: dict[str, list[float]], rule) -> list[bool] | None:
        """Which samples this method keeps under a filter rule; None: apply the rule to its own u.
        ``scores`` maps every method of the run to its u per sample of one prompt."""
        return None
