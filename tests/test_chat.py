"""Prompts through the model's chat template (harness/chat.py): turns, messages, stop strings, the
configuration hash, and whole runs on the fake model (its own template) and on both real models."""

from __future__ import annotations

import json

import pytest

from gapbench.harness import chat
from gapbench.harness.config import RunConfig
from gapbench.harness.errors import GapbenchError
from gapbench.harness.runner import Runner
from gapbench.harness.settings import RunOptions
from gapbench.tasks import TASKS
from gapbench.tasks.arith import Arith
from gapbench.tasks.sudoku import Sudoku
from gapbench.verifiers import prompts
from gapbench.verifiers.suite import build_verifiers

FAKE = dict(model="gapbench-fake", model_args="arith=correct", tasks=["arith"], task_args={"arith": {"per_level": "2", "levels": "add1+add2"}}, n=2, n_boot=20)


def test_messages_one_user_turn_or_alternating_turns():
    turns = ["Q: What is 1 + 2?\nA:", " 3\n\n", "Q: What is 4 + 4?\nA:"]
    assert chat.messages(turns, multiturn=False) == [{"role": "user", "content": "Q: What is 1 + 2?\nA: 3\n\nQ: What is 4 + 4?\nA:"}]
    assert chat.messages(turns, multiturn=True) == [
        {"role": "user", "content": "Q: What is 1 + 2?\nA:"},
        {"role": "assistant", "content": "3"},
        {"role": "user", "content": "Q: What is 4 + 4?\nA:"},
    ]


def test_chat_answers_keep_only_the_stop_strings_that_are_not_whitespace():
    assert chat.chat_stop(["\n", "Q:", "\n\n", "</s>", " "]) == ["Q:", "</s>"]


def test_settings_record_nothing_by_default_and_refuse_multiturn_alone():
    assert chat.settings(False, False) is None
    assert chat.settings(True, False) == {"apply_chat_template": True, "fewshot_as_multiturn": False}
    assert chat.settings(True, True) == {"apply_chat_template": True, "fewshot_as_multiturn": True}
    with pytest.raises(GapbenchError, match="--fewshot-as-multiturn needs --apply-chat-template"):
        chat.settings(False, True)
    with pytest.raises(GapbenchError, match="--fewshot-as-multiturn needs --apply-chat-template"):
        RunOptions(fewshot_as_multiturn=True).check()


def test_a_missing_template_is_a_user_error():
    def no_template(messages):
        raise ValueError("Cannot use chat template functions because tokenizer.chat_template is not set")

    with pytest.raises(GapbenchError, match="--apply-chat-template: base-model has no usable chat template"):
        chat.ChatFormat(no_template, False, "base-model")(["Q: x\nA:"])


@pytest.mark.parametrize("task", [Arith(), Arith(num_fewshot=0), Sudoku(), Sudoku(num_fewshot=0)])
def test_turns_join_to_the_plain_prompt_and_alternate(task):
    doc = task.docs()[0]
    turns = task.generation_turns(doc)
    assert "".join(turns) == task.generation_prompt(doc)
    assert len(turns) % 2 == 1 and len(turns) == 2 * task.options["num_fewshot"] + 1  # question, answer, ..., question


def test_every_task_and_verifier_prompt_is_its_turns_joined(shared_data):
    """Plain runs read exactly the text they read before turns existed: the joined turns."""
    for name in ("gsm8k", "math", "nq_open", "arith", "sudoku"):
        task = TASKS.get(name)()
        doc = task.docs(None, shared_data, 1)[0]
        assert "".join(task.generation_turns(doc)) == task.generation_prompt(doc)
        for v in build_verifiers(["mc", "cot-binary", "cot-score", "tournament"], 1):
            seen = []
            v.chat = lambda turns, seen=seen: seen.append(turns) or "".join(turns)
            chatted = [r.context for r in v.requests(task, doc, ["7", "8"], {})]
            v.chat = None
            assert chatted == [r.context for r in v.requests(task, doc, ["7", "8"], {})]
            assert seen and all(len(t) % 2 == 1 and t[0].startswith(prompts.HEADER) for t in seen)


def test_the_config_hash_changes_only_when_a_template_is_used(tmp_path):
    base = Runner(RunOptions(**FAKE, out=str(tmp_path / "a")), log=lambda *_: None)
    config = base.config(base.tasks[0])
    assert config.chat is None and "chat" not in config.identity() and "chat" not in config.to_json()
    plain = RunConfig(**{k: v for k, v in config.__dict__.items() if k != "chat"})
    assert plain.hash() == config.hash()
    hashes = {config.hash()}
    for flags in ({"apply_chat_template": True}, {"apply_chat_template": True, "fewshot_as_multiturn": True}):
        r = Runner(RunOptions(**FAKE, **flags, out=str(tmp_path / "b")), log=lambda *_: None)
        c = r.config(r.tasks[0])
        assert c.identity()["chat"] == chat.settings(True, flags.get("fewshot_as_multiturn", False))
        hashes.add(c.hash())
    assert len(hashes) == 3


def _run(tmp_path, name, **flags):
    opts = RunOptions(**{**FAKE, "verifiers": ["mc", "cot-binary", "tournament"]}, **flags, out=str(tmp_path / name))
    results = Runner(opts, log=lambda *_: None).run()[0]
    folder = tmp_path / name / "arith"
    lines = lambda f: [json.loads(x) for x in (folder / f).read_text().splitlines()]  # noqa: E731
    return results, json.loads((folder / "run.json").read_text()), lines("samples.jsonl"), lines("verdicts.jsonl")


def test_a_run_through_the_fake_models_template(tmp_path):
    plain, run_plain, _, _ = _run(tmp_path, "plain")
    assert plain.chat is None and "chat" not in run_plain and "chat" not in plain.to_dict()
    for multiturn in (False, True):
        results, run, samples, verdicts = _run(tmp_path, f"chat{multiturn}", apply_chat_template=True, fewshot_as_multiturn=multiturn)
        assert run["chat"] == {"apply_chat_template": True, "fewshot_as_multiturn": multiturn} and run["hash"] != run_plain["hash"]
        assert results.to_dict()["chat"] == run["chat"]
        # the fake model answers arith through its template, and the answers are extracted and graded
        assert results.generation.J.value == 1.0 and all(s["response"].strip().isdigit() for s in samples)
        # every verification context went through the template: user turns, and the reply's start last
        assert verdicts and all(v["method"] in ("mc", "cot-binary", "tournament") for v in verdicts)
        from gapbench.harness.runner import judged_digest

        runner = Runner(RunOptions(**{**FAKE, "verifiers": ["mc"]}, apply_chat_template=True, fewshot_as_multiturn=multiturn, out=str(tmp_path / "x")), log=lambda *_: None)
        task = runner.tasks[0]
        doc = task.docs()[0]
        stored = [s["response"] for s in sorted(samples, key=lambda s: s["sample"]) if s["doc_id"] == doc.doc_id]
        ctx = runner.verifiers[0].requests(task, doc, stored, {})[0].context
        assert ctx.startswith("<|user|>\n" + prompts.HEADER.strip()) and ctx.endswith("<|end|>\n<|assistant|>\n")
        assert ctx.count("<|user|>") == (1 + len(task.verification_examples()) if multiturn else 1)
        assert judged_digest(ctx) in {v["judged"] for v in verdicts if v["method"] == "mc"}
        gen = runner.prompt(task.generation_turns(doc))
        assert gen.count("<|assistant|>") == (task.options["num_fewshot"] + 1 if multiturn else 1)


def test_the_board_settings_line_shows_the_template(tmp_path):
    from gapbench.leaderboards.board import Chat
    from gapbench.leaderboards.builder import build

    _run(tmp_path, "chat", apply_chat_template=True, fewshot_as_multiturn=True)
    board = build([tmp_path / "chat"], tmp_path / "board", "b", plots=False)
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "prompts through the model's chat template (few-shot as multi-turn)" in readme
    assert board.board.tables[0].settings[0].chat == Chat(apply_chat_template=True, fewshot_as_multiturn=True)


# --- the real models ---------------------------------------------------------------------------------
@pytest.mark.model
@pytest.mark.parametrize(
    "model, opens, user",
    [
        ("smollm2-135m-instruct", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM", "<|im_start|>user\n"),  # its template's default system turn
        ("gemma3-270m", "<bos><start_of_turn>user\n", "<start_of_turn>user\n"),
    ],
)
def test_chat_templates_on_both_models(tmp_path, model, opens, user):
    opts = RunOptions(
        model=model, task_args={"arith": {"per_level": "1", "levels": "add1+add2"}}, verifiers=["mc", "cot-binary"], n=2,
        verify_max_gen_toks=24, n_boot=20, apply_chat_template=True, fewshot_as_multiturn=True, out=str(tmp_path),
    )
    runner = Runner(opts, log=lambda *_: None)
    results = runner.run()[0]
    task, doc = runner.tasks[0], runner.tasks[0].docs()[0]
    gen = runner.prompt(task.generation_turns(doc))
    assert gen.startswith(opens) and gen.count(user) == task.options["num_fewshot"] + 1
    samples = [json.loads(x) for x in (tmp_path / "arith" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(s["gen_tokens"] <= 16 for s in samples)
    for s in samples:  # no template token leaks into an answer: generation stopped at the end of the turn
        assert "<|im_end|>" not in s["response"] and "<end_of_turn>" not in s["response"] and "<start_of_turn>" not in s["response"]
    mc = results.verifiers["mc"]
    assert 0.0 <= mc.J.value <= 1.0 and mc.verification.positive_rate is not None
    assert results.chat.apply_chat_template and results.chat.fewshot_as_multiturn
