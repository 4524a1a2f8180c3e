"""``lm-eval:NAME`` tasks: lm-eval's own tasks (gsm8k, nq_open, hendrycks_math500, pointed at the local
reference data by examples/lm-eval-local/) run end to end on the fake model, and J(f) equal to the
exact_match that lm-eval itself computes (``lm_eval.simple_evaluate``) on the same stored responses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gapbench.harness.cli import main
from gapbench.harness.errors import GapbenchError
from gapbench.harness.runner import Runner
from gapbench.harness.settings import RunOptions
from gapbench.harness.store import RunStore
from gapbench.tasks import TASKS
from gapbench.tasks.lm_eval_task import _turns, task_manager

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "examples" / "lm-eval-local"
LOCAL = ["gsm8k_local", "nq_open_local", "hendrycks_math500_local"]
N_PROMPTS, N = 2, 2


def _rules(path: Path, data: Path) -> Path:
    """Fake-model replies: GSM8K's first prompt answered right in lm-eval's strict form, its second with the
    right number in words only the flexible filter reads; NQ's first right, its second wrong."""
    gsm = [json.loads(line) for line in (data / "gsm8k" / "test.jsonl").read_text().splitlines()[:N_PROMPTS]]
    gold = [row["answer"].split("####")[-1].strip() for row in gsm]
    nq = [json.loads(line) for line in (data / "nq_open" / "dev.jsonl").read_text().splitlines()[:N_PROMPTS]]
    rules = [
        {"endswith": f"Question: {gsm[0]['question']}\nAnswer:", "reply": f" She makes it. #### {gold[0]}"},
        {"endswith": f"Question: {gsm[1]['question']}\nAnswer:", "reply": f" It takes {gold[1]} bolts in all"},
        {"endswith": f"Q: {nq[0]['question']}?\nA:", "reply": f" {nq[0]['answer'][0]}"},
        {"endswith": f"Q: {nq[1]['question']}?\nA:", "reply": " not an answer"},
    ]
    path.write_text(json.dumps(rules))
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, shared_data):
    """The three tasks, 2 prompts x 2 samples, verified by mc and cot-binary on the fake model."""
    out = tmp_path_factory.mktemp("lm-eval-tasks")
    opts = RunOptions(
        model="gapbench-fake",
        model_args=f"replies={_rules(out / 'rules.json', shared_data)}",
        tasks=[f"lm-eval:{name}" for name in LOCAL],
        task_args={f"lm-eval:{name}": {"include_path": str(INCLUDE)} for name in LOCAL},
        data_dir=str(shared_data),
        verifiers=["mc", "cot-binary"],
        n=N,
        limit=N_PROMPTS,
        n_boot=50,
        out=str(out / "run"),
    )
    runner = Runner(opts, log=lambda *_: None)
    stored = runner.run_stored()
    return out / "run", runner, {s.results.task.name: s for s in stored}


def test_three_lm_eval_tasks_run_end_to_end(local_run):
    run_dir, _, stored = local_run
    assert sorted(stored) == sorted(f"lm-eval:{name}" for name in LOCAL)
    for name, run in stored.items():
        r = run.results
        assert (r.sizes.n_prompts, r.sizes.n, r.sizes.n_samples) == (N_PROMPTS, N, N_PROMPTS * N)
        assert set(r.verifiers) == {"mc", "cot-binary"}
        assert r.task.extra["lm_eval"]["task"] == name.split(":", 1)[1]
        samples = RunStore(run_dir / name.replace(":", "-")).samples()
        assert sum(len(per) for per in samples.values()) == N_PROMPTS * N
    # the fake replies: GSM8K's first prompt right under strict-match (g), its second only under flexible-extract
    gsm = stored["lm-eval:gsm8k_local"].results.generation
    assert gsm.J.value == 0.5
    assert gsm.variants == {"strict-match/exact_match": 0.5, "flexible-extract/exact_match": 1.0}
    assert stored["lm-eval:nq_open_local"].results.generation.J.value == 0.5


def test_gsm8k_J_is_lm_evals_own_exact_match(local_run, shared_data, monkeypatch):
    """lm-eval itself (simple_evaluate, its own TaskManager over the same YAML, data read relative to the
    working directory) scores the stored responses: its exact_match under each filter equals J(f) and the
    flexible variant. The replayed contexts must be lm-eval's own prompts, or the replay fails."""
    from gapbench.harness.lm_eval_replay import lm_eval_scores

    run_dir, runner, stored = local_run
    for name, filters in (("gsm8k_local", ("strict-match", "flexible-extract")), ("nq_open_local", ("remove_whitespace",))):
        task = next(t for t in runner.tasks if t.name == f"lm-eval:{name}")
        docs = task.docs(None, shared_data, N_PROMPTS)
        samples = RunStore(run_dir / f"lm-eval-{name}").samples()
        prompts = [(task.generation_prompt(d), [samples[d.doc_id][i]["response"] for i in range(N)]) for d in docs]
        monkeypatch.chdir(shared_data)  # lm-eval reads the YAML's relative data files from here
        theirs = lm_eval_scores(name, prompts, task_manager=task_manager(str(INCLUDE)))
        generation = stored[f"lm-eval:{name}"].results.generation
        assert theirs[f"exact_match,{filters[0]}"] == pytest.approx(generation.J.value, abs=1e-12)
        for f in filters:
            assert theirs[f"exact_match,{f}"] == pytest.approx(generation.variants[f"{f}/exact_match"], abs=1e-12)


def test_prompt_is_lm_evals_context_and_turns_join_to_it(local_run, shared_data):
    _, runner, _ = local_run
    task = next(t for t in runner.tasks if t.name == "lm-eval:gsm8k_local")
    doc = task.docs(None, shared_data, 1)[0]
    prompt, turns = task.generation_prompt(doc), task.generation_turns(doc)
    assert prompt.count("Question:") == 6 and prompt.endswith(f"Question: {doc.question}\nAnswer:")  # 5-shot, as lm-eval's gsm8k
    assert len(turns) == 11 and "".join(turns) == prompt and turns[1].startswith(" ")
    assert task.stop == ("Question:", "</s>", "<|im_end|>")


def test_turns_fall_back_to_one_turn_when_messages_do_not_line_up():
    plain = "Intro\n\nQ: a\nA: 1\n\nQ: b\nA:"
    messages = [{"role": "system", "content": "Intro"}, {"role": "user", "content": "Q: a\nA:"},
                {"role": "assistant", "content": "1"}, {"role": "user", "content": "Q: b\nA:"}]  # fmt: skip
    assert _turns(plain, messages) == ["Intro\n\nQ: a\nA:", " 1\n\n", "Q: b\nA:"]
    assert _turns(plain, messages[:2]) == [plain]  # ends on an assistant turn
    assert _turns(plain, [*messages[:3], {"role": "user", "content": "elsewhere"}]) == [plain]


def test_registry_resolves_the_family_and_lists_it(capsys):
    assert TASKS.get("lm-eval:gsm8k") is TASKS.get("lm-eval:gsm8k")
    assert TASKS.get("lm-eval:gsm8k").name == "lm-eval:gsm8k"
    with pytest.raises(GapbenchError, match="names no lm-eval task"):
        TASKS.get("lm-eval:")
    with pytest.raises(GapbenchError, match="lm-eval:NAME"):
        TASKS.get("no-such-task")
    assert main(["tasks"]) == 0
    assert "lm-eval:NAME" in capsys.readouterr().out


def test_clear_errors_for_names_that_cannot_run(tmp_path, shared_data):
    with pytest.raises(GapbenchError, match=r"no task 'gsm8kk'.*Close names: gsm8k"):
        TASKS.get("lm-eval:gsm8kk")()
    with pytest.raises(GapbenchError, match="multiple_choice task; only generative"):
        TASKS.get("lm-eval:hellaswag")()
    with pytest.raises(GapbenchError, match=r"holds 7 tasks.*name one of them"):
        TASKS.get("lm-eval:hendrycks_math")()
    with pytest.raises(GapbenchError, match="include path .* is not a folder"):
        TASKS.get("lm-eval:gsm8k_local")(include_path=str(tmp_path / "nowhere"))
    task = TASKS.get("lm-eval:gsm8k_local")(include_path=str(INCLUDE))
    with pytest.raises(GapbenchError, match=r"gsm8k/train.jsonl \(dataset_kwargs.data_files.train of gsm8k_local.yaml.*give --data-dir"):
        task.docs(None, tmp_path, 1)  # a --data-dir without the files
    with pytest.raises(GapbenchError, match="has no option 'num_shots'"):
        TASKS.get("lm-eval:gsm8k_local")(num_shots=3)


def test_hub_dataset_out_of_reach_says_how_to_point_it_at_local_files(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gapbench", "run", "--model", "gapbench-fake", "--tasks", "lm-eval:gsm8k",
         "--limit", "1", "--n", "1", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    err = proc.stderr
    assert "dataset_path: openai/gsm8k, dataset_name: main" in err and "Hugging Face hub" in err
    assert "dataset_path: json" in err and "data_files" in err and "include_path=DIR" in err
