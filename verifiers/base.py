"""The verifier plugin API.

A verifier turns (task, prompt x, the prompt's sampled responses) into model
requests, and the model's replies into a score ``u(x, y)`` in [0, 1] per response.
The stage runner owns every model call: it asks ``requests`` for what is needed
given the replies stored so far, runs the requests not yet stored, and asks again,
until nothing new is needed (tournaments need several such rounds). Because each
request has a stable key, a killed run resumes without repeating a stored call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from gapbench.harness.errors import GapbenchError
from gapbench.tasks.base import Doc, Task


class KeepRule(Protocol):
    """A filter rule w(u) as verifiers see it (:class:`harness.filters.FilterRule`): which of one
    prompt's samples it keeps, given their u."""

    def keep(self, u: Sequence[float]) -> list[bool]: ...


@dataclass(frozen=True)
class Request:
    key: str  # unique within (task, doc, method); the same on every run
    kind: str  # "generate" or "loglikelihood"
    context: str
    continuation: str | None = None  # loglikelihood: the text scored after the context
    gen: dict = field(default_factory=dict)  # generate: overrides of the sampling settings (until, max_gen_toks, ...)


@dataclass(frozen=True)
class Matches:
    """A response's pairwise comparisons (tournament): won, played, and how many of them changed
    winner when the two responses' order was swapped (position bias)."""

    wins: int
    played: int
    order_flips: int


@dataclass(frozen=True)
class Verdict:
    """A response's score from one method."""

    u: float  # in [0, 1]
    unparsed: int = 0  # replies of this response that gave no readable verdict
    values: tuple[float | None, ...] | None = None  # cot: each of the m verdicts as read (None: unreadable)
    matches: Matches | None = None  # tournament: the comparisons this response took part in

    @property
    def detail(self) -> dict[str, Any]:
        """The typed fields that are set, as the viewer shows them beside a sample (its JSON)."""
        out: dict[str, Any] = {}
        if self.matches is not None:
            out.update(wins=self.matches.wins, played=self.matches.played, order_flips=self.matches.order_flips)
        if self.values is not None:
            out["values"] = list(self.values)
        return out


# A reply: the generated text (generate) or the log-probability of the continuation (loglikelihood).
Reply = Any


class Verifier:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    uses_model: ClassVar[bool] = True  # False: needs no model call (oracle, ensemble)
    needs_logprobs: ClassVar[bool] = False  # True: asks for log-probabilities (loglikelihood requests)
    needs_ground_truth: ClassVar[bool] = False  # True: score() is given g (the oracle); no self-verifier is
    takes_arg: ClassVar[bool] = False  # True: accepts ``name:arg`` (ensemble:mc+cot-score)
    # a filter (``kind:level``) this method applies in place of the run's, which its ``keep`` implements:
    # the oracle's threshold:1 keeps exactly the correct samples under every filter (the upper bound)
    own_filter: ClassVar[str | None] = None
    defaults: ClassVar[dict[str, Any]] = {}

    # how a prompt's turns become the context text: plain (joined), or the verifying model's chat
    # template (set by the runner for --apply-chat-template; see harness/chat.py)
    chat: Callable[[list[str]], str] | None = None
    # the special tokens of the verifying model's tokenizer (set by the runner): no prompt text carries one
    special_tokens: Callable[[], tuple[str, ...]] | None = None

    def __init__(self, arg: str | None = None, m: int = 1, **options: Any):
        """``arg`` is the text after ``:`` in ``--verifiers name:arg``; ``m`` the verifications per sample."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise GapbenchError(
                f"verifier {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.defaults)) or 'none'}."
            )
        if arg and not self.takes_arg:
            raise GapbenchError(f"verifier {self.name!r} takes no argument (got {self.name}:{arg}); write it as {self.name}.")
        self.arg = arg
        self.m = m
        self.options = {**self.defaults, **options}

    def prompt(self, turns: list[str]) -> str:
        """The context of a prompt given as turns (few-shot questions and answers, then the query):
        their plain concatenation, or the chat template's rendering when :attr:`chat` is set, after
        every special token of the verifying model's tokenizer is taken out of the turns' text."""
        from gapbench.verifiers.prompts import strip_special

        tokens = self.special_tokens() if self.special_tokens is not None else ()
        turns = [strip_special(t, tokens) for t in turns]  # a response's <|im_start|> never becomes a real turn
        return self.chat(turns) if self.chat is not None else "".join(turns)

    @property
    def method(self) -> str:
        """The name under which this verifier's verdicts and results are stored."""
        return f"{self.name}:{self.arg}" if self.arg else self.name

    def config(self) -> dict:
        return {"method": self.method, "m": self.m, "options": dict(self.options)}

    def members(self) -> list[str]:
        """Other methods whose verdicts this one combines (ensemble): they are scored first, and
        their u is passed to :meth:`score` as ``member_u``."""
        return []

    def bind(self, run_methods: list[str]) -> None:
        """Told the run's model-based methods once the suite is built (plain ``ensemble`` takes them
        as its members); most verifiers ignore it."""

    def requests(self, task: Task, doc: Doc, samples: list[str], replies: dict[str, Reply]) -> list[Request]:
        """Every request needed for this prompt, given the replies so far."""
        raise NotImplementedError

    def contexts(self, task: Task, doc: Doc, samples: list[str], keys: list[str]) -> dict[str, str]:
        """The verification context of each stored request key, as it would be asked now: the runner
        checks that every stored verdict judged that text. The default asks :meth:`requests` with no
        replies; a verifier whose later requests depend on replies (tournament) overrides it."""
        return {r.key: r.context for r in self.requests(task, doc, samples, {})}

    def score(
        self,
        task: Task,
        doc: Doc,
        samples: list[str],
        replies: dict[str, Reply],
        *,
        g: list[int] | None = None,
        member_u: dict[str, list[float]] | None = None,
    ) -> list[Verdict]:
        """One verdict per sample, from the stored ``replies`` (request key -> reply). ``g``, the ground
        truth, is given only to a verifier that declares ``needs_ground_truth``; ``member_u`` (each
        member's u per sample) only to one that names :meth:`members`. See :mod:`verifiers.suite`."""
        raise NotImplementedError

    def describe_replies(self, replies: dict[str, Reply], n: int) -> list[list[dict[str, Any]]]:
        """This verifier's stored replies of one prompt (request key -> reply) as the viewer shows them,
        per sample: each reply of a key ``"<sample>:<rest>"`` with its text and the verdict read from
        it (:meth:`parse`, where the verifier has one), or its log-probability. A verifier whose keys
        have another grammar (tournament) overrides it."""
        return describe_sample_replies(replies, n, getattr(self, "parse", None))

    def keep(self, scores: dict[str, list[float]], rule: KeepRule) -> list[bool] | None:
        """Which samples this method keeps under a filter rule; None: apply the rule to its own u.
        ``scores`` maps every method of the run to its u per sample of one prompt."""
        return None


def describe_sample_replies(replies: dict[str, Reply], n: int, parse: Callable[[str], Any] | None = None) -> list[list[dict[str, Any]]]:
    """Replies keyed ``"<sample>:<rest>"``, per sample of ``n`` (see :meth:`Verifier.describe_replies`);
    keys of another form, or of a sample past ``n``, are left out."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for key, reply in replies.items():
        head, _, rest = str(key).partition(":")
        if not head.isdigit() or int(head) >= n:
            continue
        item: dict[str, Any] = {"key": rest}
        if isinstance(reply, str):
            item["text"] = reply
            if callable(parse):
                try:
                    item["read"] = parse(reply)
                except Exception:  # a plugin's parser failing on a reply: show the reply unread
                    item["read"] = None
        else:
            item["logprob"] = reply
        out[int(head)].append(item)
    return out
