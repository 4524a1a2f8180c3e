"""The improve loop's documents as types, and their codec: ``round-t/round.json`` (one :class:`Round`)
and ``summary.json`` (a :class:`Summary`: the settings and every round).

They go through results.json's codec (:func:`harness.results.from_json` and :func:`harness.results.to_json`):
keys in field order, a field that an older file left out stays out when it is written back, and the
evaluation blocks are results.json's own (:class:`Metric`, :class:`RelativeGap`, :class:`Verification`).
:func:`load_round` and :func:`load_summary` name the file and the field that is wrong; :func:`round_text`
and :func:`summary_text` are the bytes the loop writes. The field names of these documents live here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.harness.improve.options import ImproveOptions
from gapbench.harness.results import Document, Metric, RelativeGap, Verification, from_json, key, omitted, to_json

SCHEMA_VERSION = 1
_REMEDY = "run `gapbench improve` again with the same settings and --out (it reuses the stored runs and checkpoints)"
# finite=False: a fine-tune whose loss diverged records NaN, and its round.json still loads
ROUND_DOCUMENT = Document("round.json", _REMEDY, finite=False)
SUMMARY_DOCUMENT = Document("summary.json", _REMEDY, finite=False)


@dataclass
class DistinctAnswers:
    """Distinct extracted final answers per prompt (no answer is not an answer): mean, min and max over
    prompts, the histogram {count: prompts} and the share of samples without an answer (None: no prompts)."""

    mean: float | None
    min: int | None
    max: int | None
    histogram: dict[str, int]
    unanswered_share: float | None


@dataclass(kw_only=True)
class EvalStats:
    """f_t on the evaluation split: its run's numbers for the round tables."""

    dir: str
    split: str | None
    n_prompts: int
    n: int
    J: Metric
    J_filtered: Metric
    gap: Metric
    relative_gap: RelativeGap
    verification: Verification
    filter_precision: float | None
    best_of_n: float | None
    J_filtered_train_filter: float | None  # J(f_t[w]) for the filter that trains (the verifier's, or the oracle's)
    J_filtered_oracle: float
    pass_at_k: dict[str, float] = key("pass@k")
    maj_at_k: dict[str, float] = key("maj@k")
    distinct_answers: DistinctAnswers
    timings: dict[str, float]
    results: str
    seconds_this_invocation: float | None = None  # absent in files of gapbench before it was recorded


@dataclass
class TrainStats:
    """What the training filter did on f_t's training run (:func:`harness.improve.loop.filter_stats`), and
    where that run is."""

    n_prompts: int
    n: int
    J: float
    J_filtered: float
    gap: float
    kept: int
    kept_share: float | None
    precision: float | None  # share of the kept samples that are correct
    recall: float | None
    prompts_none_kept: int
    prompts_kept: int
    distinct_answers: DistinctAnswers
    distinct_kept_answers: DistinctAnswers
    dir: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    seconds_this_invocation: float | None = None


@dataclass
class SftData:
    """Round t's data set, ``round-t/sft.jsonl``."""

    path: str
    sha256: str
    examples: int
    format: str


@dataclass
class Checkpoint:
    """f_{t+1}: its folder and the training statistics its ``gapbench_meta.json`` holds (free-form: the
    fine-tune's settings and numbers, see :func:`harness.improve.sft.finetune`)."""

    path: str
    training: dict[str, Any] | None
    seconds_this_invocation: float | None = None


def trained(checkpoint: Checkpoint | None, name: str) -> Any:
    """One of a checkpoint's training statistics (``steps``, ``loss_first``, ``loss_last``, ``seconds``);
    None when there is no checkpoint or it did not record that one."""
    return ((checkpoint.training if checkpoint else None) or {}).get(name)


@dataclass
class Realised:
    """Did the update realise the gap? J(f_{t+1}) against J(f_t) and J(f_t[w]) on the evaluation split."""

    J: float  # J(f_{t+1})
    J_t: float
    J_filtered_t: float
    improvement: float  # realised: J(f_{t+1}) - J(f_t)
    predicted_gap: float  # J(f_t[w]) - J(f_t)
    J_minus_J_filtered_t: float  # >= 0: the update realised (at least) the gap
    realised_share: float | None  # improvement / predicted gap; None when nothing was predicted


@dataclass(kw_only=True)
class Round:
    """Round t: f_t evaluated, and (before the last round) f_t's training run, the data set it made, the
    fine-tune into f_{t+1} and what it realised. ``round.json`` is this with ``schema_version`` first."""

    round: int
    model: str
    base: str
    eval: EvalStats
    train: TrainStats | None
    sft: SftData | None
    next: Realised | None
    checkpoint: Checkpoint | None = omitted()
    stopped: str | None = omitted()  # why the loop stopped in this round (the filter kept no sample)


@dataclass
class Summary:
    """``summary.json``: the loop's settings and every round."""

    schema_version: int
    gapbench_version: str | None
    created: str | None
    settings: ImproveOptions
    base: str
    filter: str
    verifier: str
    rounds: list[Round]


# --- reading and writing ----------------------------------------------------------------------


def round_text(r: Round) -> str:
    """round.json's text."""
    return _dumps({"schema_version": SCHEMA_VERSION, **to_json(r)})


def summary_text(s: Summary) -> str:
    """summary.json's text."""
    return _dumps(to_json(s))


def load_round(path: str | Path) -> Round:
    """A round.json, or an error naming the file and the field that is wrong."""
    data = _read(path, ROUND_DOCUMENT)
    return from_json(Round, {k: v for k, v in data.items() if k != "schema_version"}, str(path), doc=ROUND_DOCUMENT)


def load_summary(path: str | Path) -> Summary:
    """A summary.json, or an error naming the file and the field that is wrong."""
    return from_json(Summary, _read(path, SUMMARY_DOCUMENT), str(path), doc=SUMMARY_DOCUMENT)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str) + "\n"


def _read(path: str | Path, doc: Document) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise GapbenchError(f"{path}: cannot read it ({exc}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise GapbenchError(f"{path}: not valid JSON ({type(exc).__name__}: {exc}). {doc.damaged()}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise GapbenchError(f"{path}: no schema_version field; this is not a gapbench {doc.name}. {doc.damaged()}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise GapbenchError(
            f"{path}: {doc.name} schema_version {data['schema_version']!r} is not one this gapbench reads ({SCHEMA_VERSION}). "
            f"Upgrade gapbench, or {doc.remedy}."
        )
    return data
