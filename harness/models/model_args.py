"""lm-eval's ``key=value,...`` argument syntax (``--model-args``, ``--model-meta``): the model layer's
own parser, so that it imports nothing of the run layer that uses it."""

from __future__ import annotations

from gapbench.harness.errors import GapbenchError


def parse_key_values(text: str | None, option: str = "--model-args") -> dict[str, str]:
    """lm-eval's ``key=value,...`` syntax; ``option`` names the flag in the error message."""
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            raise GapbenchError(f"{option}: {part!r} is not key=value (example: pretrained=/ckpt,dtype=bfloat16).")
        key, value = part.split("=", 1)
        args[key.strip()] = value.strip()
    return args
