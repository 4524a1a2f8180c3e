"""Model access through lm-eval's model interface.

``--model`` takes an lm-eval model name (``hf``, ``vllm``, ``local-completions``, ...)
with ``--model-args`` in lm-eval's ``key=value,...`` syntax; a hub id or a local
path is shorthand for ``hf`` with ``pretrained=<it>``; the name of an embedded model
(:data:`harness.models.embedded.MODELS`: ``smollm2-135m-instruct``, ``gemma3-270m``) loads
its converted folder; no ``--model`` means the embedded default model. The stage runner calls only :func:`generate` and
:func:`loglikelihood` here; they hand lm-eval ``Instance`` lists to the model's own
``generate_until`` and ``loglikelihood``.

On a CPU, ``hf`` (and its aliases, the embedded model, hub ids and folders) loads as
``hf-prefix`` (:class:`harness.models.hf_prefix.HFPrefixLM`): lm-eval's ``hf`` with
gapbench's shared-prefix loglikelihood and generation. The run's identity still says
what the user asked for (``hf``), so stored runs keep their configuration hash. On a GPU,
``hf`` stays lm-eval's own unless ``--model hf-prefix`` is named.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gapbench.harness.errors import GapbenchError
from gapbench.harness.models import embedded
from gapbench.harness.models.model_args import parse_key_values

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM

T = TypeVar("T")

HF_BACKENDS = ("hf", "hf-auto", "huggingface")  # lm-eval's names for its HFLM class
PREFIX_BACKEND = "hf-prefix"  # harness.models.hf_prefix.HFPrefixLM: HFLM with the shared-prefix paths
HF_FAMILY = (*HF_BACKENDS, PREFIX_BACKEND)
# gapbench's own registered lm-eval models: name -> "module:class"
OWN_MODELS = {
    PREFIX_BACKEND: "gapbench.harness.models.hf_prefix:HFPrefixLM",
    "gapbench-fake": "gapbench.harness.models.fake:FakeLM",  # deterministic replies that a test controls
    "gapbench-llama.cpp": "gapbench.harness.models.llamacpp:LlamaCppLM",  # a GGUF file on llama.cpp's server
    "gapbench-vllm": "gapbench.harness.models.vllm_seeded:SeededVLLM",  # vLLM with a prompt's n samples in one request
    "gapbench-llama.cpp-batched": "gapbench.harness.models.llamacpp_batched:LlamaCppBatchedLM",  # llama.cpp in process, parallel sequences
}
VLLM = "gapbench-vllm"  # what --model vllm loads (its identity still says vllm)
# settings of how vLLM runs, not of what it computes (the run's seed is in its configuration)
VLLM_SERVING_ARGS = {"enable_prefix_caching", "gpu_memory_utilization", "tensor_parallel_size", "data_parallel_size", "max_num_seqs", "seed"}
LLAMACPP = "llama.cpp"  # --engine llama.cpp, and the backend a run's identity names for it
LLAMACPP_BATCHED = "llama.cpp-batched"  # --engine llama.cpp-batched: llama.cpp in process, with parallel sequences
BATCHED = "gapbench-llama.cpp-batched"
# settings of how the in-process llama.cpp runs, not of what it computes: left out of a run's identity
BATCHED_ARGS = {"slots", "n_ctx", "n_batch", "n_threads", "tokenizer"}
# OpenAI-compatible models whose server gives (completions, echo) or never gives (chat) prompt log-probabilities
SERVED = ("gapbench-llama.cpp", "local-completions", "openai-completions")
CHAT = ("local-chat-completions", "openai-chat-completions")
# settings of how a served model is reached, not of what it computes: left out of a run's identity
SERVING_ARGS = {"base_url", "num_concurrent", "timeout", "max_retries", "server_wait", "n_threads", "tokenizer"}


@dataclass
class ModelSpec:
    """A model as the user named it, resolved to an lm-eval model name and arguments."""

    backend: str  # lm-eval registry name of the class that is loaded
    args: dict[str, str] = field(default_factory=dict)
    label: str = ""  # what tables and results call it
    named: str = ""  # the backend as the user named it, when resolve loads another class for it (hf -> hf-prefix)

    def arg_string(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.args.items())

    def named_backend(self) -> str:
        """The backend as the user named it (``hf`` where resolve loads ``hf-prefix`` for it)."""
        return self.named or self.backend

    def identity_backend(self) -> str:
        """The backend that identifies the run: what the user named, with ``hf-prefix`` counted as
        ``hf`` (it computes what ``hf`` computes), so the choice of class never changes a run's hash."""
        named = self.named_backend()
        return "hf" if named == PREFIX_BACKEND else named

    def identity(self) -> dict:
        """What identifies the model in run.json (no machine-specific device or batch settings,
        nor the class that runs ``hf``)."""
        skip = {"device", "batch_size", "max_batch_size", "parallelize"}
        if self.backend in SERVED:
            skip |= SERVING_ARGS
        if self.backend == VLLM:
            skip |= VLLM_SERVING_ARGS
        if self.backend == BATCHED:
            skip |= BATCHED_ARGS
        args = {k: portable(v) for k, v in self.args.items() if k not in skip}  # no path of this machine
        return {"backend": self.identity_backend(), "args": args, "label": self.label}


def parse_model_args(text: str | None) -> dict[str, str]:
    """lm-eval's ``key=value,...`` (see :func:`.model_args.parse_key_values`)."""
    return parse_key_values(text, "--model-args")


def resolve(model: str | None, model_args: str | None, *, log: Callable[[str], object] = print, engine: str | None = None) -> ModelSpec:
    """Turn ``--model``/``--model-args`` (and ``--engine``) into a :class:`ModelSpec`."""
    args = parse_model_args(model_args)
    named = embedded.MODELS.get(model or embedded.DEFAULT.name)
    if engine is None and named is not None:
        engine = named.engine  # the engine measured fastest for that model (benchmarks/engines.py)
    if engine == LLAMACPP_BATCHED:
        return _llamacpp(model, args, log, engine)
    if engine == LLAMACPP or (model or "").endswith(".gguf"):
        return _llamacpp(model, args, log)
    if named is not None:
        if "pretrained" in args:
            raise GapbenchError(f"--model-args pretrained=... needs --model hf (the embedded model {named.name} has its own weights).")
        args = {"pretrained": str(embedded.ensure(log=log, model=named)), **args}
        spec = ModelSpec("hf", args, named.name)
    elif model is None:  # no --model is the embedded default, named above
        raise AssertionError("unreachable: no --model resolves to the embedded default model")
    elif _is_registered_backend(model):
        spec = ModelSpec(model, args, args.get("pretrained") or args.get("model") or model)
    else:  # a hub id or a local checkpoint folder
        if "pretrained" in args:
            raise GapbenchError(f"--model {model} already names the checkpoint; drop pretrained= from --model-args.")
        if model.startswith((".", "/", "~")) and not Path(model).expanduser().exists():
            raise GapbenchError(f"--model {model}: no such folder. Give a checkpoint folder, a hub id, or an lm-eval model name with --model-args.")
        spec = ModelSpec("hf", {"pretrained": model, **args}, model)
    if spec.backend in HF_FAMILY and "device" not in spec.args:
        spec.args["device"] = default_device()
    if spec.backend in HF_BACKENDS and str(spec.args.get("device", "")).startswith("cpu"):
        spec.named, spec.backend = spec.backend, PREFIX_BACKEND  # the shared-prefix paths pay most on a CPU
    if spec.backend == "vllm":
        spec.named, spec.backend = spec.backend, VLLM  # a prompt's n samples in one request (vllm_seeded)
    return spec


def _llamacpp(model: str | None, args: dict, log: Callable[[str], object], engine: str = LLAMACPP) -> ModelSpec:
    """A GGUF file (or an embedded model's, from its wheels) on llama.cpp: its server (``engine``
    :data:`LLAMACPP`, or a running one at ``base_url``) or in process (:data:`LLAMACPP_BATCHED`,
    :mod:`.llamacpp_batched`)."""
    remote = engine == LLAMACPP and "base_url" in args  # a server that is already running holds the file
    named = embedded.MODELS.get(model or embedded.DEFAULT.name)
    if named is not None:
        if not remote:
            args["gguf"] = str(embedded.ensure_gguf(log=log, model=named))
        args.setdefault("tokenizer", str(embedded.ensure_tokenizer(log=log, model=named)))  # the same tokenizer, read faster than the GGUF's
        label = named.name
    elif (model or "").endswith(".gguf"):
        path = Path(str(model)).expanduser()
        if not remote and not path.is_file():
            raise GapbenchError(f"--model {model}: no such GGUF file.")
        args["gguf"] = str(path.resolve()) if path.is_file() else model
        label = path.name
    else:
        raise GapbenchError(f"--engine {engine} runs a GGUF file: give --model path/to/model.gguf (or an embedded model's name, or no --model for the default one), not {model!r}.")
    return ModelSpec(BATCHED if engine == LLAMACPP_BATCHED else "gapbench-llama.cpp", args, label, named=engine)


def check_logprobs(spec: ModelSpec, verifiers: list[str]) -> None:
    """Verifiers that read log-probabilities (``verifiers``: their names) stop before any model work
    on a served model that cannot give them: a chat endpoint never does; a running server is asked."""
    if not verifiers:
        return
    needs = ", ".join(verifiers)
    if spec.backend in CHAT:
        raise GapbenchError(
            f"{needs} read(s) log-probabilities of the prompt, which a chat-completions endpoint ({spec.backend}) does not give. "
            "Use --verifiers cot-binary or cot-score, or the server's completions endpoint (--model local-completions)."
        )
    if spec.backend in SERVED and spec.args.get("base_url"):
        from gapbench.harness.models.llamacpp import probe_logprobs

        problem = probe_logprobs(spec.args["base_url"])
        if problem:
            raise GapbenchError(
                f"{needs} read(s) log-probabilities of the prompt, and the server at {spec.args['base_url']} gives none ({problem}). "
                "Use --verifiers cot-binary or cot-score, or a server that gives them (llama.cpp's with logits_all, vLLM's)."
            )


def close(lm: LM) -> None:
    """Stop what a model started (the llama.cpp server), if anything."""
    stop = getattr(lm, "close", None)
    if callable(stop):
        stop()


def default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def register_models() -> None:
    """Put gapbench's lm-eval models (:data:`OWN_MODELS`) in lm-eval's registry as lazy entries, as
    lm-eval lists its own: ``get_model`` imports a class (and torch) only when it is asked for. Called
    on import; :func:`load` also imports the class itself, for lm-eval versions without lazy entries."""
    try:
        import lm_eval.models  # noqa: F401  (lm-eval's own first: get_model fills only an empty registry)
        from lm_eval.api.registry import MODEL_REGISTRY

        for name, target in OWN_MODELS.items():
            if name not in MODEL_REGISTRY:
                MODEL_REGISTRY.register(name, target=target)
    except Exception:
        pass


register_models()


def _is_registered_backend(name: str) -> bool:
    from lm_eval.api.registry import MODEL_REGISTRY

    return name in OWN_MODELS or name in MODEL_REGISTRY


def load(spec: ModelSpec, batch_size: int | str) -> LM:
    """Create the lm-eval model; a checkpoint that does not load is a user error, not a traceback."""
    from lm_eval.api.registry import get_model

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    if spec.backend in OWN_MODELS:  # lm-eval versions without lazy registry entries need the import
        module = importlib.import_module(OWN_MODELS[spec.backend].partition(":")[0])
        if spec.backend == VLLM and module._lv is None:
            raise GapbenchError("--model vllm needs vLLM, on a machine with a GPU: pip install 'gapbench[vllm]'.")

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


def portable(value: T) -> T | str:
    """A value as results.json records it, without a path of this machine: an embedded model's
    folder becomes the model's name, an absolute path under the working directory becomes relative
    to it; anything else is kept (``leaderboard check`` refuses a board holding a machine path)."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    path = Path(value)
    for named in embedded.MODELS.values():
        if path == embedded.model_dir(named):
            return named.name
        if path == embedded.gguf_path(named):
            return f"{named.name}.gguf"
    try:
        return path.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return value


def portable_identity(identity: dict | None) -> dict | None:
    """A model identity as run.json recorded it before its paths were made portable (an embedded
    model's cached file by its absolute path): the same identity as :meth:`ModelSpec.identity` gives
    now, so that such a run resumes, wherever the cache lies."""
    if not isinstance(identity, dict) or not isinstance(identity.get("args"), dict):
        return identity
    return {**identity, "args": {k: portable(v) for k, v in identity["args"].items()}}


FACTS = ("parameters", "revision", "architecture")  # what only the loaded model tells: run.json records them


WEIGHT_ARGS = ("gguf", "pretrained")  # the model arguments that name a checkpoint's files


def weights(spec: ModelSpec) -> dict:
    """What run.json records of the model's weights: the digest of its files where they lie on this
    machine (:func:`harness.digest.weights_digest`, cached by size and mtime), else what is knowable
    (a hub id and the revision asked for) and that the files were not digested."""
    from gapbench.harness.digest import weights_digest

    for arg in WEIGHT_ARGS:
        value = spec.args.get(arg)
        if value and Path(str(value)).expanduser().exists():
            return {"arg": arg, **weights_digest(Path(str(value)).expanduser())}
    named = next((spec.args[a] for a in WEIGHT_ARGS if spec.args.get(a)), None) or spec.args.get("model") or spec.label
    return {
        "id": portable(str(named)),
        "revision": spec.args.get("revision"),
        "sha256": None,
        "note": "no local files: the weights were not digested (a hub id is identified by its revision)",
    }


def loaded_facts(lm: LM, spec: ModelSpec) -> dict:
    """The facts of :data:`FACTS` as the loaded model ``lm`` tells them (run.json records them at the
    first load, so a later run that loads no model reports the same)."""
    model = getattr(lm, "_model", None) or getattr(lm, "model", None)
    try:
        parameters = int(sum(p.numel() for p in model.parameters())) if model is not None else None
    except Exception:
        parameters = None
    config = getattr(model, "config", None)
    return {
        "parameters": parameters,
        "revision": getattr(lm, "revision", None) or spec.args.get("revision", "main"),
        "architecture": (getattr(config, "architectures", None) or [None])[0],
    }


def metadata(lm: LM, spec: ModelSpec, facts: dict | None = None) -> dict:
    """Facts about the model for results.json (paths of this machine made portable, :func:`portable`).
    ``facts``: those of :data:`FACTS` as run.json recorded them; else from ``lm``; ``lm`` None and no
    ``facts`` (an old run whose work was stored) gives those known without loading it."""
    args = {k: portable(v) for k, v in spec.identity()["args"].items()}
    meta: dict[str, Any] = {"id": portable(spec.label), "backend": spec.identity_backend(), "lm_eval_model": spec.backend, "model_args": args}
    named = embedded.MODELS.get(spec.label)
    if facts is None and lm is not None:
        facts = loaded_facts(lm, spec)
    if facts is not None:
        meta.update({k: facts.get(k) for k in FACTS})
    if named is not None:
        meta["hub_id"] = named.hub_id
        meta["source"] = named.source
        if meta.get("parameters") is None:  # llama.cpp holds no torch module to count
            meta["parameters"] = named.parameters
    return meta


def _instances(kind: str, args: list[tuple]) -> list[Instance]:
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


# lm-eval's own classes that take a per-request ``seed`` in gen_kwargs: vLLM (SamplingParams) and the
# OpenAI-compatible API models (a request field). gapbench's own classes say so themselves
# (``takes_seed = True``); others get the requests without it.
LM_EVAL_SEEDED = (("lm_eval.models.vllm_causallms", "VLLM"), ("lm_eval.models.api_models", "TemplateAPI"))
LM_EVAL_SERVED = ("lm_eval.models.api_models", "TemplateAPI")  # lm-eval's served models (a server that may not answer)


def _loaded_class(module: str, name: str) -> type | None:
    """lm-eval's class ``module.name`` where that module is loaded, else None (a model of that class
    cannot exist before its module is loaded, so none is imported here)."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded is not None else None
    return found if isinstance(found, type) else None


def _is_instance(lm: object, ref: tuple[str, str]) -> bool:
    cls = _loaded_class(*ref)
    return cls is not None and isinstance(lm, cls)


def takes_seed(lm: object) -> bool:
    """Whether ``lm`` takes a per-request ``seed``: its class declares ``takes_seed``, or it is one
    of lm-eval's classes in :data:`LM_EVAL_SEEDED`."""
    declared = getattr(type(lm), "takes_seed", None)
    if isinstance(declared, bool):
        return declared
    return any(_is_instance(lm, ref) for ref in LM_EVAL_SEEDED)


def generate(lm: LM, requests: list[tuple[str, dict]]) -> list[str]:
    """Sample one continuation per (context, gen_kwargs). A ``seed`` in gen_kwargs makes that
    request's draw its own (see :mod:`.prefix_generate`); a model that takes none gets it removed."""
    if not requests:
        return []
    if not takes_seed(lm):
        requests = [(c, {k: v for k, v in kw.items() if k != "seed"}) for c, kw in requests]
    instances = _instances("generate_until", requests)
    with _served(lm):
        try:
            return list(lm.generate_until(instances, disable_tqdm=True))
        except TypeError:  # backends without the keyword
            return list(lm.generate_until(instances))


def loglikelihood(lm: LM, requests: list[tuple[str, str]]) -> list[float]:
    """log P(continuation | context) per request."""
    if not requests:
        return []
    instances = _instances("loglikelihood", requests)
    with _served(lm):
        try:
            out = lm.loglikelihood(instances, disable_tqdm=True)
        except TypeError:
            out = lm.loglikelihood(instances)
    return [float(r[0]) for r in out]


@contextlib.contextmanager
def _served(lm: LM) -> Iterator[None]:
    """A served model (lm-eval's TemplateAPI: local-completions, llama.cpp) whose server did not
    answer after its retries stops the run with a message, not a traceback; what is stored stays."""
    if not _is_instance(lm, LM_EVAL_SERVED):
        yield
        return
    try:
        yield
    except (GapbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        url = getattr(lm, "base_url", "?")
        tries = getattr(lm, "max_retries", "?")
        raise GapbenchError(
            f"the model server at {url} did not answer after {tries} tries ({type(exc).__name__}: {str(exc)[:200]}). "
            "Everything finished so far is stored: start the server (or check --model-args base_url, timeout, max_retries) "
            "and run the same command again to resume."
        ) from None


def count_tokens(lm: LM, text: str) -> int | None:
    try:
        return len(lm.tok_encode(text))
    except Exception:
        return None


@functools.lru_cache(maxsize=8)
def _tokenizer_specials(source: str, revision: str | None) -> tuple[str, ...]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source, **({"revision": revision} if revision else {}))
    found = set(tok.all_special_tokens)
    found |= {t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if getattr(t, "special", False)}
    return tuple(sorted(t for t in found if t and t.strip()))


def special_tokens(spec: ModelSpec) -> tuple[str, ...]:
    """The special tokens of the tokenizer a model reads with (``all_special_tokens`` and the added
    tokens marked special), from the tokenizer alone (no weights loaded); empty where the model has no
    tokenizer at hand (a served engine without ``tokenizer=``, the fake model): then the fixed list of
    :data:`verifiers.prompts.SPECIAL_TOKENS` is all that is stripped."""
    source = spec.args.get("tokenizer") or spec.args.get("pretrained")
    if not source or spec.backend in ("gapbench-fake",):
        return ()
    try:
        return _tokenizer_specials(str(source), spec.args.get("revision"))
    except Exception:  # the model's own load reports what is wrong with the checkpoint
        return ()
