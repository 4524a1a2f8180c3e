"""Model metadata for the boards: parameters N, pre-training tokens D and FLOPs = 6 N D.

Where each number comes from, first match wins:

- parameters: results.json ``model.params`` (``gapbench run --model-meta params=...``), then the
  family table (``model_meta.json``), then ``model.parameters`` (counted from the loaded checkpoint);
- tokens: ``model.tokens``, then the table (by the checkpoint's hub id, else by its base model's);
- FLOPs: ``model.flops``, else 6 N D when both are known;
- family: ``model.family``, then the table (by hub id, else by the base model's).

A self-improved checkpoint (one with ``model.base``) inherits its base model's pre-training tokens and
family: fine-tuning adds a negligible amount of compute next to pre-training.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.results import ModelInfo as Model
from gapbench.harness.results import from_json

TABLE_PATH = Path(__file__).with_name("model_meta.json")


@dataclass(frozen=True)
class TableEntry:
    family: str
    size: str
    params: float | None
    tokens: float | None
    uncertain: bool


@dataclass(frozen=True)
class ModelInfo:
    family: str | None
    params: float | None
    params_source: str | None  # "model-meta", "table", "checkpoint"
    tokens: float | None
    tokens_source: str | None
    flops: float | None
    flops_source: str | None  # "model-meta", "6ND"
    uncertain: bool  # a number came from a table entry marked uncertain

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TableModel:
    """One size of a family in model_meta.json."""

    params: float | None = None
    tokens: float | None = None
    uncertain: bool | None = None


@dataclass(frozen=True)
class Family:
    """A family of model_meta.json: the hub ids it matches (``match``, with a ``size`` group) and its sizes."""

    family: str
    regex: re.Pattern
    models: dict[str, TableModel]
    tokens: float | None = None
    uncertain: bool = False


@cache
def load_table(path: str | None = None) -> tuple[Family, ...]:
    """The families of the table (model_meta.json), each with its compiled ``match`` regex."""
    p = Path(path) if path else TABLE_PATH
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GapbenchError(f"{p}: cannot read the model metadata table ({exc}).") from None
    families = []
    for i, fam in enumerate(data.get("families", [])):
        for key in ("family", "match", "models"):
            if key not in fam:
                raise GapbenchError(f"{p}: families[{i}] lacks the field {key!r}.")
        models = {
            size: TableModel(_num(m.get("params")), _num(m.get("tokens")), m.get("uncertain"))
            for size, m in fam["models"].items()
        }
        families.append(
            Family(fam["family"], re.compile(fam["match"], re.IGNORECASE), models, fam.get("tokens"), bool(fam.get("uncertain", False)))
        )
    return tuple(families)


def lookup(hub_id: str | None, table: tuple[Family, ...] | None = None) -> TableEntry | None:
    """The table entry of a hub id (case-insensitive); a family matched with an unknown size gives an
    entry without numbers; None when no family matches."""
    if not hub_id:
        return None
    for fam in table if table is not None else load_table():
        m = fam.regex.search(str(hub_id))
        if not m:
            continue
        size = m.group("size").lower()
        model = fam.models.get(size)
        if model is None:
            return TableEntry(fam.family, size, None, None, False)
        tokens = model.tokens if model.tokens is not None else fam.tokens
        uncertain = bool(model.uncertain if model.uncertain is not None else fam.uncertain)
        return TableEntry(fam.family, size, model.params, _num(tokens), uncertain)
    return None


@dataclass(frozen=True)
class Given:
    """What ``gapbench run --model-meta`` recorded of a model (results.json ``model``, beside its named fields)."""

    params: float | None
    tokens: float | None
    flops: float | None
    family: str | None

    @classmethod
    def of(cls, model: Model) -> Given:
        numbers = {f.name: _num(model.extra.get(f.name)) for f in fields(cls) if f.name != "family"}
        return cls(**numbers, family=model.extra.get("family") or None)


def model_info(block: Model | dict, table: tuple[Family, ...] | None = None) -> ModelInfo:
    """Family, N, D and FLOPs of a results.json ``model`` block (see the module docstring)."""
    model: Model = from_json(Model, block, "model") if isinstance(block, dict) else block
    given = Given.of(model)
    own = None
    for name in (model.hub_id, model.id, model.name):
        own = lookup(name, table)
        if own:
            break
    base = lookup(model.base, table) if model.base else None
    entry = own or base

    params: float | None = given.params
    params_source: str | None = "model-meta"
    if params is None and own is not None and own.params is not None:
        params, params_source = own.params, "table"
    if params is None and _num(model.parameters) is not None:
        params, params_source = _num(model.parameters), "checkpoint"
    if params is None and base is not None and base.params is not None:
        params, params_source = base.params, "table"
    if params is None:
        params_source = None

    tokens: float | None = given.tokens
    tokens_source: str | None = "model-meta"
    if tokens is None and entry is not None and entry.tokens is not None:
        tokens, tokens_source = entry.tokens, "table"
    if tokens is None:
        tokens_source = None

    flops: float | None = given.flops
    flops_source: str | None = "model-meta"
    if flops is None and params is not None and tokens is not None:
        flops, flops_source = 6.0 * params * tokens, "6ND"
    if flops is None:
        flops_source = None

    uncertain = entry is not None and entry.uncertain and "table" in (params_source, tokens_source)
    family = given.family or (entry.family if entry else None)
    return ModelInfo(family, params, params_source, tokens, tokens_source, flops, flops_source, bool(uncertain))


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None
