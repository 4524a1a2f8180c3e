"""File digests: the embedded model's wheel check and the SFT data set's provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- what a run measured: its documents and its model's weights (recorded in run.json) -------------

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".npz")
WEIGHT_NAMES = ("config.json",)  # beside the tensors: what they are (another architecture is another model)
CACHE_FILE = "weight-digests.json"


def text_digest(text: str) -> str:
    """The digest of a prompt as the model read it (a verdict's ``judged``, a sample's ``prompt_digest``):
    the first 16 hex digits of the SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def json_digest(value) -> str:
    """The SHA-256 of a JSON value (keys sorted), e.g. a task's documents."""
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    """Where gapbench caches what it can recompute: ``$GAPBENCH_CACHE``, else ``~/.cache/gapbench``."""
    import os

    return Path(os.environ.get("GAPBENCH_CACHE") or Path.home() / ".cache" / "gapbench")


def weight_files(path: Path) -> list[Path]:
    """The files that make a checkpoint: a file itself (a GGUF), or in a folder its tensors
    (:data:`WEIGHT_SUFFIXES`) and config.json; a folder without tensors: every file in it. Hidden
    files and folders (``.cache``, ``.lock``) are left out."""
    if path.is_file():
        return [path]
    found = sorted(
        p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    weights = [p for p in found if p.name.endswith(WEIGHT_SUFFIXES) or p.name in WEIGHT_NAMES]
    return weights or found


def weights_digest(path: Path | str) -> dict:
    """``{"files": {name: sha256}, "sha256": digest of them all}`` of the checkpoint at ``path``.
    Each file's digest is cached by its absolute path, size and modification time (:func:`cache_dir`),
    so a second run over the same weights reads no tensor."""
    import json
    import os

    path = Path(path)
    cache_path = cache_dir() / CACHE_FILE
    try:
        cache = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    files, changed = {}, False
    for f in weight_files(path):
        st = f.stat()
        key = str(f.resolve())
        hit = cache.get(key)
        if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns and isinstance(hit.get("sha256"), str):
            digest = hit["sha256"]
        else:
            digest = sha256_file(f)
            cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            changed = True
        files[f.name if f == path else f.relative_to(path).as_posix()] = digest
    if changed:
        try:
            from gapbench.harness import safe_paths

            safe_paths.write_text(cache_path.parent, cache_path, json.dumps(cache, indent=0, sort_keys=True) + "\n", tmp_suffix=f".{os.getpid()}.tmp")
        except Exception:
            pass  # a cache that cannot be written only costs time
    return {"files": files, "sha256": json_digest(files)}
