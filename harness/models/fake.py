"""A small deterministic lm-eval model for fast tests: ``--model gapbench-fake``.

Registered in lm-eval's model registry like lm-eval's own ``dummy``, so the runner, the
store, scoring and the command line run on it exactly as on a real model, in milliseconds.
Every reply is a pure function of the request and the model arguments: never of batch
order, chunking or how often the model was called, so a resumed or re-chunked run gets
the same replies. (So the n samples of one prompt, identical requests, get one reply.)

Model arguments, in lm-eval's ``key=value,...`` syntax (``--model-args``):

- ``replies=PATH``: a JSON list of rules, tried in order; the first that matches a
  request answers it. A rule matches a request when every string of ``contains`` (a
  string or a list of strings) is in the context and the context ends with ``endswith``
  (when given). A rule with ``reply`` answers generation; a rule with ``logprob`` answers
  loglikelihood, only for its ``continuation`` when it names one::

      [{"endswith": "What is 2 + 3?\\nA:", "reply": " 5"},
       {"contains": "Proposed solution: 5\\n", "continuation": " Correct", "logprob": -0.1},
       {"reply": " I do not know"}]

- ``default=TEXT``: the reply when no rule matches a generation request. Without it the
  reply is made from a hash of the context: ``" <number>\\nVerdict: <Correct|Incorrect>\\nScore:
  <1-10>"``, so generation (cut at the task's stop strings), CoT-binary and CoT-score
  verification all read something, and it varies from prompt to prompt.
- ``arith=correct`` or ``arith=P`` (a share in [0, 1]): a generation context ending in
  ``What is <expression>?\\nA:`` (the arith task's prompt) is answered with the value of
  the expression: always, or for the share P of expressions picked by a hash (the others
  get the value plus one); also through the fake model's chat template (``<|role|>\\ncontent<|end|>\\n``
  per message, then ``<|assistant|>\\n``). Rules still come first.
- ``seed=TEXT``: salts every hash, for a second, different fake model.
- ``delay=SECONDS``: sleep this long per request (a run slow enough to be killed in a test).

Unmatched loglikelihood requests get ``-(0.05 .. 5.0)`` from a hash of (context,
continuation), so MC and tournament verification give varied ``u``. Generation follows
lm-eval: the reply is cut at the first of the request's ``until`` strings and kept to
``max_gen_toks`` tokens. Tokens are whitespace-separated words (:meth:`FakeLM.tok_encode`).
``device``, ``batch_size``, ``max_batch_size``, ``pretrained`` and ``dtype`` are accepted
and ignored. :attr:`FakeLM.calls` counts the requests of each kind.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lm_eval.models  # noqa: F401  (lm-eval fills its registry lazily only while it is empty: fill it before adding ours)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

NAME = "gapbench-fake"
IGNORED_ARGS = frozenset({"device", "batch_size", "max_batch_size", "pretrained", "dtype"})
ARITH_PROMPT = re.compile(r"What is ([0-9+\-*() ]+)\?\s*\nA:\s*$")
CHAT_END, CHAT_REPLY = "<|end|>\n", "<|assistant|>\n"  # the fake model's chat template: <|role|>\ncontent<|end|>\n ...


class Rule:
    """One entry of the replies file."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: a rule is a JSON object, got {type(raw).__name__}.")
        unknown = set(raw) - {"contains", "endswith", "reply", "continuation", "logprob"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: contains, endswith, reply, continuation, logprob).")
        if ("reply" in raw) == ("logprob" in raw):
            raise ValueError(f"{where}: give exactly one of 'reply' (generation) or 'logprob' (loglikelihood).")
        contains = raw.get("contains", [])
        self.contains = [contains] if isinstance(contains, str) else list(contains)
        self.endswith = raw.get("endswith")
        self.reply = raw.get("reply")
        self.continuation = raw.get("continuation")
        self.logprob = None if raw.get("logprob") is None else float(raw["logprob"])
        texts = [*self.contains, *(x for x in (self.endswith, self.reply, self.continuation) if x is not None)]
        if not all(isinstance(x, str) for x in texts):
            raise ValueError(f"{where}: contains, endswith, reply and continuation are strings.")
        if self.continuation is not None and self.logprob is None:
            raise ValueError(f"{where}: 'continuation' goes with 'logprob'.")

    def matches(self, context: str) -> bool:
        return all(c in context for c in self.contains) and (self.endswith is None or context.endswith(self.endswith))


def load_rules(path: str | Path) -> list[Rule]:
    p = Path(str(path)).expanduser()
    try:
        raw = json.loads(p.read_text())
    except OSError as exc:
        raise ValueError(f"replies={path}: cannot read it ({exc.strerror or exc}).") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg}).") from None
    if not isinstance(raw, list):
        raise ValueError(f"{p}: the replies file is a JSON list of rules.")
    return [Rule(r, f"{p}: rule {i}") for i, r in enumerate(raw)]


def evaluate(expr: str) -> int:
    """The value of an integer expression of + - * and parentheses (nothing else is evaluated)."""

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            a, b = walk(node.left), walk(node.right)
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        raise ValueError(f"not an arithmetic expression: {expr!r}")

    return walk(ast.parse(expr.strip(), mode="eval"))


def _cut_tokens(text: str, max_tokens: int | str | None) -> str:
    """``text`` up to the end of its ``max_tokens``-th whitespace-separated token."""
    if max_tokens is None:
        return text
    limit = int(max_tokens)
    words = list(re.finditer(r"\S+", text))
    if len(words) <= limit:
        return text
    return text[: words[limit - 1].end()] if limit > 0 else ""


@register_model(NAME)
class FakeLM(LM):
    """Replies from rules and hashes, never from weights (see the module docstring)."""

    takes_seed = True  # a per-request seed in gen_kwargs makes that request's draw its own (backends.takes_seed)

    def __init__(self, replies: str | None = None, default: object = None, arith: str | float | None = None, seed: object = "", delay: float | str = 0, **ignored: object) -> None:
        super().__init__()
        unknown = set(ignored) - IGNORED_ARGS
        if unknown:
            raise ValueError(f"{NAME}: unknown model argument(s) {', '.join(sorted(unknown))} (known: replies, default, arith, seed, delay).")
        self.rules = load_rules(replies) if replies else []
        self.default = None if default is None else str(default)
        self.arith = self._arith_share(arith)
        self.seed = str(seed)
        self.delay = float(delay)
        if self.delay < 0:
            raise ValueError(f"{NAME}: delay={delay} must be at least 0 seconds.")
        self.calls: Counter = Counter()  # requests answered, per request type

    @staticmethod
    def _arith_share(arith: str | float | None) -> float | None:
        if arith is None or arith == "":
            return None
        if str(arith) == "correct":
            return 1.0
        try:
            share = float(arith)
        except ValueError:
            share = -1.0
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{NAME}: arith={arith}: give 'correct' or a share of correct answers in [0, 1].")
        return share

    @classmethod
    def create_from_arg_string(cls, arg_string: str | None, additional_config: dict | None = None) -> FakeLM:
        """Like lm-eval's, but every value stays the string it was (``default=1`` is the text "1")."""
        args = {}
        for part in filter(None, (arg_string or "").split(",")):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"{NAME}: model argument {part!r} is not key=value.")
            args[key.strip()] = value
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in args}
        return cls(**args, **extra)

    # --- hashing -------------------------------------------------------------------------
    def _unit(self, *parts: str) -> float:
        """A number in [0, 1) fixed by ``parts`` and the seed."""
        h = hashlib.sha256("\x1f".join((self.seed, *parts)).encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def _wait(self) -> None:
        if self.delay:
            time.sleep(self.delay)

    # --- lm-eval's interface ------------------------------------------------------------
    def reply(self, context: str) -> str:
        """The whole reply to a generation context, before stop strings and the token limit."""
        for rule in self.rules:
            if rule.reply is not None and rule.matches(context):
                return rule.reply
        if self.arith is not None:
            m = ARITH_PROMPT.search(context.removesuffix(CHAT_END + CHAT_REPLY))
            if m:
                try:
                    value = evaluate(m.group(1))
                except (ValueError, SyntaxError):
                    value = None
                if value is not None:
                    right = self._unit("arith", m.group(1).strip()) < self.arith
                    return f" {value if right else value + 1}"
        if self.default is not None:
            return self.default
        number = int(self._unit("number", context) * 100)
        verdict = "Correct" if self._unit("verdict", context) < 0.5 else "Incorrect"
        score = 1 + int(self._unit("score", context) * 10)
        return f" {number}\nVerdict: {verdict}\nScore: {score}"

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        from lm_eval.models.utils import postprocess_generated_text

        out = []
        for request in requests:
            context, gen_kwargs = request.arguments[0], dict(request.arguments[1] or {})
            until = gen_kwargs.get("until") or []
            text = postprocess_generated_text(self.reply(context), until, None)
            out.append(_cut_tokens(text, gen_kwargs.get("max_gen_toks")))
            self.calls["generate_until"] += 1
            self._wait()
        return out

    def logprob(self, context: str, continuation: str) -> float:
        for rule in self.rules:
            if rule.logprob is not None and rule.matches(context) and rule.continuation in (None, continuation):
                return rule.logprob
        return -(0.05 + 4.95 * self._unit("loglikelihood", context, continuation))

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for request in requests:
            lp = self.logprob(*request.arguments[:2])
            out.append((lp, lp > math.log(0.5)))  # "greedy" when more likely than not
            self.calls["loglikelihood"] += 1
            self._wait()
        return out

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        out = []
        for request in requests:
            text = request.arguments[0]
            out.append(sum(-(0.05 + 4.95 * self._unit("rolling", w)) for w in text.split()))
            self.calls["loglikelihood_rolling"] += 1
            self._wait()
        return out

    def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
        """A chat template of its own: ``<|role|>\\ncontent<|end|>\\n`` per message, then ``<|assistant|>\\n``."""
        text = "".join(f"<|{m['role']}|>\n{m['content']}{CHAT_END}" for m in chat_history)
        return text + (CHAT_REPLY if add_generation_prompt else "")

    def tok_encode(self, text: str, **kwargs: Any) -> list[int]:
        """One token per whitespace-separated word."""
        return [zlib.crc32(w.encode()) for w in text.split()]
