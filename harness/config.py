"""The resolved configuration of one task's run, its hash, and what differs between two."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from gapbench.harness.filters import DEFAULT_FILTER

# The paper's sampling settings (Song et al. 2025, Sec. 4): temperature 0.7, top-p 0.9, 512 new tokens.
TEMPERATURE = 0.7
TOP_P = 0.9
MAX_GEN_TOKS = 512


@dataclass
class Sampling:
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_gen_toks: int = MAX_GEN_TOKS

    def gen_kwargs(self, until: list[str], max_gen_toks: int | None = None) -> dict:
        kwargs = {"until": list(until), "max_gen_toks": int(max_gen_toks or self.max_gen_toks)}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(do_sample=False, temperature=0.0)
        return kwargs


@dataclass
class RunConfig:
    """Everything that decides what a run's stored samples and verdicts are.

    Verifiers and the filter are *scoring* settings: changing them reuses what is
    stored (new methods' verdicts are added; the filter is applied at scoring time).
    """

    model: dict
    verifier_model: dict | None
    task: dict
    split: str
    limit: int | None
    n: int
    m: int
    sampling: dict
    verification_sampling: dict
    seed: int
    # scoring settings: recorded, not part of the identity
    verifiers: list = field(default_factory=list)
    filter: str = DEFAULT_FILTER
    # prompts through the chat template (harness/chat.py): part of the identity only when set, so
    # the runs made before it existed keep their hash
    chat: dict | None = None

    IDENTITY = ("model", "verifier_model", "task", "split", "limit", "n", "m", "sampling", "verification_sampling", "seed")
    OPTIONAL_IDENTITY = ("chat",)  # in the identity (and run.json) only when set

    def identity(self) -> dict:
        return identity_of(asdict(self))

    def hash(self) -> str:
        return config_hash(self.identity())

    def to_json(self) -> dict:
        out = asdict(self)
        for key in self.OPTIONAL_IDENTITY:
            if out.get(key) is None:
                del out[key]
        return {**out, "hash": self.hash()}


def identity_of(run: dict) -> dict:
    """The identity fields of a configuration as run.json holds it (an optional one only when set)."""
    out = {k: run.get(k) for k in RunConfig.IDENTITY}
    out.update({k: run[k] for k in RunConfig.OPTIONAL_IDENTITY if run.get(k) is not None})
    return out


def config_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable ``field: old -> new`` lines for nested dicts."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, name + "."))
        elif a != b:
            out.append(f"{name}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    return out
