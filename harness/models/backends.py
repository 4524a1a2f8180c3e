"""Model access through lm-eval's model interface.

``--model`` takes an lm-eval model name (``hf``, ``vllm``, ``local-completions``, ...)
with ``--model-args`` in lm-eval's ``key=value,...`` syntax; a hub id or a local
path is shorthand for ``hf`` with ``pretrained=<it>``; no ``--model`` means the
embedded default model. The stage runner calls only :func:`generate` and
:func:`loglikelihood` here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.models import embedded as default_model
from harness.errors import GapbenchError

HF_BACKENDS = ("hf", "hf-auto", "huggingface")


@dataclass
class ModelSpec:
    """A model as the user named it, resolved to an lm-eval model name and arguments."""

    backend: str  # lm-eval registry name
    args: dict[str, str] = field(default_factory=dict)
    label: str = ""  # what tables and results call it

    def arg_string(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.args.items())

    def identity(self) -> dict:
        """What identifies the model in run.json (no machine-specific device or batch settings)."""
        skip = {"device", "batch_size", "max_batch_size", "parallelize"}
        return {"backend": self.backend, "args": {k: v for k, v in self.args.items() if k not in skip}, "label": self.label}


def parse_model_args(text: str | None) -> dict[str, str]:
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            raise GapbenchError(f"--model-args: {part!r} is not key=value (example: pretrained=/ckpt,dtype=bfloat16).")
        key, value = part.split("=", 1)
        args[key.strip()] = value.strip()
    return args


def resolve(model: str | None, model_args: str | None, *, log=print) -> ModelSpec:
    """Turn ``--model``/``--model-args`` into a :class:`ModelSpec`."""
    args = parse_model_args(model_args)
    if model in (None, "", default_model.NAME):
        if "pretrained" in args:
            raise GapbenchError("--model-args pretrained=... needs --model hf (the embedded model has its own weights).")
        args = {"pretrained": str(default_model.ensure(log=log)), **args}
        spec = ModelSpec("hf", args, default_model.NAME)
    elif _is_registered_backend(model):
        spec = ModelSpec(model, args, args.get("pretrained") or args.get("model") or model)
    else:  # a hub id or a local checkpoint folder
        if "pretrained" in args:
            raise GapbenchError(f"--model {model} already names the checkpoint; drop pretrained= from --model-args.")
        if model.startswith((".", "/", "~")) and not Path(model).expanduser().exists():
            raise GapbenchError(f"--model {model}: no such folder. Give a checkpoint folder, a hub id, or an lm-eval model name with --model-args.")
        spec = ModelSpec("hf", {"pretrained": model, **args}, model)
    if spec.backend in HF_BACKENDS and "device" not in spec.args:
        spec.args["device"] = default_device()
    return spec


def default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _is_registered_backend(name: str) -> bool:
    from lm_eval.api.registry import MODEL_REGISTRY

    import harness.models.fake  # noqa: F401  (registers gapbench-fake)
    try:
        import lm_eval.models  # noqa: F401  (fills the registry)
    except Exception:
        pass
    return name in MODEL_REGISTRY


def load(spec: ModelSpec, batch_size: int | str):
    """Create the lm-eval model; a checkpoint that does not load is a user error, not a traceback."""
    from lm_eval.api.registry import get_model

    import harness.models.fake  # noqa: F401  (registers gapbench-fake)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    try:
        cls = get_model(spec.backend)
    except Exception as exc:
        raise GapbenchError(f"lm-eval has no model backend {spec.backend!r} ({exc}).") from None
    try:
        return cls.create_from_arg_string(spec.arg_string(), {"batch_size": batch_size})
    except GapbenchError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GapbenchError(
            f"the model {spec.label!r} ({spec.backend}: {spec.arg_string()}) did not load: {type(exc).__name__}: {first} "
            "Check the path or hub id, that the folder holds config.json and weights, and --model-args."
        ) from None


def metadata(lm, spec: ModelSpec) -> dict:
    """Facts about the loaded model for results.json."""
    meta = {"id": spec.label, "backend": spec.backend, "model_args": spec.identity()["args"]}
    model = getattr(lm, "_model", None) or getattr(lm, "model", None)
    try:
        meta["parameters"] = int(sum(p.numel() for p in model.parameters()))
    except Exception:
        meta["parameters"] = None
    config = getattr(model, "config", None)
    meta["revision"] = getattr(lm, "revision", None) or spec.args.get("revision", "main")
    meta["architecture"] = (getattr(config, "architectures", None) or [None])[0]
    if spec.label == default_model.NAME:
        meta["hub_id"] = default_model.HUB_ID
        meta["source"] = default_model.WHEEL
    return meta


def _instances(kind: str, args: list[tuple]):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def generate(lm, requests: list[tuple[str, dict]]) -> list[str]:
    """Sample one continuation per (context, gen_kwargs)."""
    if not requests:
        return []
    from harness.models import prefix_generate

    shared = prefix_generate.generate(lm, requests)
    if shared is not None:
        return shared
    instances = _instances("generate_until", requests)
    try:
        return list(lm.generate_until(instances, disable_tqdm=True))
    except TypeError:  # backends without the keyword
        return list(lm.generate_until(instances))


def loglikelihood(lm, requests: list[tuple[str, str]]) -> list[float]:
    """log P(continuation | context) per request."""
    if not requests:
        return []
    from harness.models import prefix_cache

    if prefix_cache.supported(lm):
        shared = prefix_cache.loglikelihood(lm, requests)
        if shared is not None:
            return shared
    instances = _instances("loglikelihood", requests)
    try:
        out = lm.loglikelihood(instances, disable_tqdm=True)
    except TypeError:
        out = lm.loglikelihood(instances)
    return [float(r[0]) for r in out]


def count_tokens(lm, text: str) -> int | None:
    try:
        return len(lm.tok_encode(text))
    except Exception:
        return None
