"""The board document, ``leaderboard.json``, as types, and its codec.

A board holds its ``sources`` (the recorded results), its ``models`` (one row per checkpoint with its
parameters, tokens and FLOPs), its ``tables`` (one per task and split: settings, rows per checkpoint and
verifier, the scaling fit, plot names and, where the board holds cross-verification results, the
generator x verifier matrices, :mod:`leaderboards.matrix`'s types) and its ``files`` (everything a build writes, which the next build may
remove). :func:`load` reads a file into :class:`Board`, an error naming the file and the field when it
is not one; :func:`dumps` writes it back, keys in field order, the same bytes the builder has always
written. The field names of the document live here (the matrices' in leaderboards/matrix.py) and nowhere else.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.leaderboards.matrix import Matrix

BOARD_SCHEMA_VERSION = 1


def omitted() -> Any:
    """A field written only when it is set (not None): boards without it keep their bytes."""
    return field(default=None, metadata={"omit_none": True})


@dataclass
class BoardMetric:
    """A number with its 95% interval, rounded for the board."""

    value: float | None
    ci: list[float] | None


@dataclass
class RelativeGapMetric(BoardMetric):
    n_excluded: int | None = None  # prompts left out of the mean (J(f|x) = 1)


@dataclass
class Delta:
    """A derived checkpoint's row minus its base model's row (same task, same verifier)."""

    J: float | None
    J_filtered: float | None
    gap: float | None
    relative_gap: float | None


@dataclass
class Row:
    """One checkpoint and one verification method on a table."""

    checkpoint: str
    round: Any
    base: str | None
    group: str
    derived: bool
    verifier: str
    J: BoardMetric
    J_filtered: BoardMetric
    gap: BoardMetric
    relative_gap: RelativeGapMetric
    auroc: float | None
    within_prompt_auroc: BoardMetric
    realised_share: BoardMetric
    best_of_n: float | None
    baseline: str | None
    delta: Delta | None
    source: str


@dataclass
class Sampling:
    max_gen_toks: int
    temperature: float
    top_p: float


@dataclass
class Chat:
    """How prompts went through the chat template (results' ``chat``, as recorded)."""

    apply_chat_template: bool
    fewshot_as_multiturn: bool | None = omitted()


@dataclass(kw_only=True)
class Settings:
    """The settings some checkpoints of a table were run with (keys sorted, as written)."""

    chat: Chat | None = omitted()
    filter: Any
    m: int
    n: int
    n_prompts: int
    sampling: Sampling
    task_options: dict[str, Any]
    task_version: Any
    checkpoints: list[str]


@dataclass
class ScalingPoint:
    checkpoint: str
    flops: float
    relative_gap: float
    ci: list[float] | None = omitted()  # the run's own 95% interval of the relative gap


@dataclass
class Fit:
    slope: float
    intercept: float
    r2: float | None
    n: int
    # the slope's 95% interval, a bootstrap over prompts (leaderboards/scaling.py), where every point has
    # its per-prompt record; paired: every model ran on the same prompts, resampled jointly
    slope_ci: list[float] | None = omitted()
    paired: bool | None = omitted()


@dataclass
class SizeStep:
    """Two sizes of one family: relative gap(larger) - relative gap(smaller), with its bootstrap interval."""

    smaller: str
    larger: str
    difference: float
    ci: list[float] | None
    paired: bool | None  # the same prompts, resampled jointly (None: no per-prompt records, no interval)


ALL_MODELS = "all models"  # the family name of the fit across every family of a table


@dataclass
class Scaling:
    """A verifier's and a family's base models (or, as family ``all models``, every base model of the
    table): (FLOPs, relative gap) points, their line and, for a family, the steps between its sizes."""

    verifier: str
    family: str
    points: list[ScalingPoint]
    fit: Fit | None
    steps: list[SizeStep] | None = omitted()


@dataclass
class Plots:
    accuracy: str
    gap_vs_filter: str
    scaling: str
    cross: str | None = omitted()

    def names(self) -> list[str]:
        return [p for p in (self.accuracy, self.gap_vs_filter, self.scaling, self.cross) if p is not None]


@dataclass
class OutsideFigure:
    """A number from outside the board for one of its checkpoints on this task (``outside.json``): another
    harness's score on the same model, or the model authors' published figure, beside the board's J(f)."""

    checkpoint: str
    figure: str  # what the number is, e.g. "lm-eval gsm8k, strict-match, 5-shot"
    value: float
    interval: list[float] | None
    source: str  # where it comes from (a citation, a command)
    differs: str  # how its prompt, quantisation and decoding differ from the board's run
    J: BoardMetric  # the board's J(f) of the checkpoint on this table


@dataclass
class Table:
    """One task and split."""

    table: str
    task: str
    split: str | None
    settings: list[Settings]
    rows: list[Row]
    scaling: list[Scaling]
    plots: Plots
    cross: list[Matrix] | None = omitted()  # the generator x verifier matrices (leaderboards/matrix.py)
    outside: list[OutsideFigure] | None = omitted()


@dataclass
class ModelRow:
    checkpoint: str
    round: Any
    base: str | None
    id: str
    hub_id: str | None
    revision: str | None
    family: str | None
    params: float | None
    params_source: str | None
    tokens: float | None
    tokens_source: str | None
    flops: float | None
    flops_source: str | None
    uncertain: bool
    weights: str | None = omitted()  # what the weights are (results.json's model.weights, harness/models/identity.py)
    weights_sha256: str | None = omitted()  # their digest, where known
    weights_digest_of: str | None = omitted()  # what that digest is the digest of
    engine: str | None = omitted()  # results' model.backend (and the lm-eval class that ran it, where it differs)


@dataclass
class Source:
    """A recorded result of the board (``results/<slug>.json``)."""

    file: str
    checkpoint: str
    round: Any
    table: str
    created: str | None
    gapbench_version: str | None
    config_hash: str | None


@dataclass
class Board:
    schema_version: int
    name: str
    sources: list[Source]
    models: list[ModelRow]
    tables: list[Table]
    files: list[str]


# ---------------------------------------------------------------------------------------------
# the codec


def _key(f: Any) -> str:
    return f.metadata.get("key", f.name)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    if is_dataclass(tp):
        return "an object"
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or tp is dict:
        return "an object"
    return {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}.get(tp, "a value")


def _optional(tp: Any) -> tuple[bool, Any]:
    args = typing.get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0] if len(rest) == 1 else Any
    return False, tp


def _damaged(where: str, path: str, what: str) -> GapbenchError:
    return GapbenchError(
        f"{where}: {path or 'the document'}: {what}. This leaderboard.json is damaged or was not written by gapbench; "
        "rebuild the board (`gapbench leaderboard build BOARD/results --out BOARD`)."
    )


def parse(tp: Any, value: Any, where: str = "leaderboard.json", path: str = "") -> Any:
    """``value`` (plain JSON) as type ``tp``, or an error naming ``where`` (the file) and the dotted field."""
    optional, tp = _optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise _damaged(where, path, f"expected {_describe(tp)}, got null")
    if tp is Any:
        return value
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise _damaged(where, path, f"expected an object, got {json.dumps(value)[:60]}")
        hints = _hints(tp)  # type: ignore[arg-type]
        kwargs = {}
        for f in fields(tp):
            k = _key(f)
            sub = f"{path}.{k}" if path else k
            if k not in value:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise _damaged(where, sub, "missing")
                continue
            kwargs[f.name] = parse(hints[f.name], value[k], where, sub)
        return typing.cast(Any, tp)(**kwargs)
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            raise _damaged(where, path, f"expected a list, got {json.dumps(value)[:60]}")
        (item,) = typing.get_args(tp)
        return [parse(item, v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _damaged(where, path, f"expected an object, got {json.dumps(value)[:60]}")
        return dict(value)
    ok = {
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
    }.get(tp)
    if ok is not None and not ok(value):
        raise _damaged(where, path, f"expected {_describe(tp)}, got {json.dumps(value)[:60]}")
    return value


def to_json(obj: Any) -> Any:
    """Plain JSON values of a board (keys in field order; an unset ``omitted()`` field left out)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[_key(f)] = to_json(value)
        return out
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


def dumps(board: Board) -> str:
    """leaderboard.json's text."""
    return json.dumps(to_json(board), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def load(path: str | Path) -> Board:
    """A board's leaderboard.json, or an error naming the file and the field that is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GapbenchError(f"{path}: not a board's leaderboard.json ({type(exc).__name__}: {exc}); rebuild the board.") from None
    return parse(Board, data, str(path))
