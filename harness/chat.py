"""Prompts through a model's own chat template (``--apply-chat-template``, ``--fewshot-as-multiturn``).

Tasks and verifiers give every prompt as turns: each worked example's question and answer, then
the query (``Task.generation_turns``, ``verifiers.prompts.fewshot``/``ask``); their plain
concatenation is the prompt of a run without a template. With ``--apply-chat-template`` the
prompt is the model's template applied to one user message holding that whole text (lm-eval's
``--apply_chat_template``); with ``--fewshot-as-multiturn`` as well, each example is a user turn
and its answer an assistant turn, and the query the last user turn. The template comes from the
model that reads the prompt (lm-eval's ``LM.apply_chat_template``: for ``hf``, the tokenizer's
own), so a verifier model formats verification prompts with its template.

A chat answer ends at the model's end-of-turn token, so generation keeps the task's stop strings
except the whitespace-only ones (a blank line inside a chat answer does not end it).
"""

from __future__ import annotations

from collections.abc import Callable

from gapbench.harness.errors import GapbenchError


def settings(apply_chat_template: bool, fewshot_as_multiturn: bool) -> dict | None:
    """What run.json and results.json record: None (nothing recorded) for plain prompts."""
    if fewshot_as_multiturn and not apply_chat_template:
        raise GapbenchError("--fewshot-as-multiturn needs --apply-chat-template (the turns are the chat template's).")
    if not apply_chat_template:
        return None
    return {"apply_chat_template": True, "fewshot_as_multiturn": bool(fewshot_as_multiturn)}


def messages(turns: list[str], multiturn: bool) -> list[dict]:
    """The chat of a prompt's turns: one user message, or alternating user and assistant turns."""
    if not multiturn:
        return [{"role": "user", "content": "".join(turns).strip()}]
    return [{"role": "user" if k % 2 == 0 else "assistant", "content": t.strip()} for k, t in enumerate(turns)]


def chat_stop(until: list[str]) -> list[str]:
    """Stop strings of a chat answer: those that are not only whitespace."""
    return [s for s in until if s.strip()]


class ChatFormat:
    """Turns -> the text the model reads, through ``apply(messages) -> text`` (the model's template,
    called with the generation prompt added)."""

    def __init__(self, apply: Callable[[list[dict]], str], multiturn: bool, label: str = "the model"):
        self.apply, self.multiturn, self.label = apply, multiturn, label

    def __call__(self, turns: list[str]) -> str:
        try:
            return self.apply(messages(turns, self.multiturn))
        except GapbenchError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GapbenchError(
                f"--apply-chat-template: {self.label} has no usable chat template ({first}). "
                "Run it without --apply-chat-template, or give a checkpoint whose tokenizer has one."
            ) from None
