"""Every gapbench task as an lm-eval task: the generated folder, how lm-eval loads it,
and lm-eval's accuracy against gapbench's J(f), sample by sample, with one (fake) model behind both."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import yaml

from gapbench.harness import lm_eval_bridge, lm_eval_tasks
from gapbench.harness.errors import GapbenchError
from gapbench.tasks import TASKS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N_DOCS = 3  # docs per task compared in the unit tests


@pytest.fixture(autouse=True)
def _quiet_lm_eval():
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def task_manager(folder: Path):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False)


def load_lm_eval(folder: Path, names: list[str]) -> dict:
    """{gapbench task name: lm-eval task object} loaded through lm-eval's TaskManager."""
    loaded = task_manager(folder).load([lm_eval_tasks.lm_eval_name(n) for n in names])["tasks"]
    return {n: loaded[lm_eval_tasks.lm_eval_name(n)] for n in names}


def available(names) -> list[str]:
    """The tasks whose docs load here. The shared data folder is always given (even when
    missing), so no task goes to the hub: a data-backed task without its files is left out."""
    out = []
    for name in names:
        try:
            TASKS.get(name)().docs(None, SHARED_DATA, limit=1)
        except GapbenchError:
            continue
        out.append(name)
    return out


def first_answer(target) -> str:
    """A gold answer as a response would write it: the target, or its first alias."""
    if isinstance(target, str):
        return target
    if isinstance(target, list) and target and isinstance(target[0], str):
        return target[0]
    return json.dumps(target, sort_keys=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    data = SHARED_DATA if SHARED_DATA.is_dir() else None
    return lm_eval_tasks.generate(tmp_path_factory.mktemp("lm_eval_tasks"), data_dir=data)


# --- the generated folder -------------------------------------------------------------------
def test_one_yaml_per_registered_task_and_the_hook_module(folder):
    names = TASKS.names()
    yamls = sorted(p.name for p in folder.glob("*.yaml"))
    assert yamls == sorted(f"gapbench_{n}.yaml" for n in names)
    assert (folder / f"{lm_eval_tasks.MODULE}.py").is_file()
    module = (folder / f"{lm_eval_tasks.MODULE}.py").read_text()
    assert "from harness import lm_eval_bridge" in module
    for name in names:
        text = (folder / f"gapbench_{name}.yaml").read_text()
        assert text.startswith(lm_eval_tasks.MARKER)
        ident = lm_eval_tasks._ident(name)
        for hook in ("dataset", "doc_to_text", "doc_to_target", "process_results"):
            assert f"!function {lm_eval_tasks.MODULE}.{ident}_{hook}\n" in text
            assert f"def {ident}_{hook}(" in module


def test_yaml_content_follows_the_plugin(folder):
    from lm_eval.tasks._yaml_loader import load_yaml

    for name, cls in TASKS.items():
        cfg = load_yaml(folder / f"gapbench_{name}.yaml", resolve_func=False)
        assert cfg["task"] == f"gapbench_{name}" and cfg["tag"] == "gapbench"
        assert cfg["output_type"] == "generate_until" and cfg["num_fewshot"] == 0
        assert cfg["target_delimiter"] == "" and cfg["fewshot_delimiter"] == "" and cfg["description"] == ""
        assert cfg["test_split"] == cls.default_split
        assert cfg["generation_kwargs"] == {
            "until": list(cls.stop),
            "max_gen_toks": cls.max_gen_toks or 512,
            "do_sample": False,
            "temperature": 0.0,
        }
        assert cfg["metric_list"] == [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
        assert cfg["metadata"]["gapbench"]["task"] == name
        assert cfg["metadata"]["gapbench"]["config"]["version"] == cls.version


def test_taskmanager_finds_every_task_and_the_tag(folder):
    tm = task_manager(folder)
    for name in TASKS.names():
        assert f"gapbench_{name}" in tm.all_subtasks
    assert "gapbench" in tm.all_tags


@pytest.mark.parametrize("name", TASKS.names())
def test_prompts_and_grades_are_gapbench_own(folder, name):
    if name not in available([name]):
        pytest.skip(f"{name}: no local data at {SHARED_DATA}")
    task = TASKS.get(name)()
    docs = task.docs(None, SHARED_DATA)
    lm_task = load_lm_eval(folder, [name])[name]
    rows = list(lm_task.eval_docs)
    assert [r["doc_id"] for r in rows] == [d.doc_id for d in docs]  # same docs, same order: --limit agrees
    for doc, row in list(zip(docs, rows))[:N_DOCS]:
        prompt = task.generation_prompt(doc)
        assert lm_task.doc_to_text(row) == prompt
        assert lm_task.fewshot_context(row, 0) == prompt  # what lm-eval actually sends
        gold = doc.target if isinstance(doc.target, str) else json.dumps(doc.target, sort_keys=True)
        assert lm_task.doc_to_target(row) == gold
        answer = first_answer(doc.target)
        for response in ("", " 42", f" {answer}", f" The answer is {answer}.\n", f" \\boxed{{{answer}}}", " #### 18"):
            assert lm_task.process_results(row, [response]) == {"acc": task.grade(doc, response).g}, response


def test_grading_is_not_trivially_zero(folder):
    lm_task = load_lm_eval(folder, ["arith"])["arith"]
    row = list(lm_task.eval_docs)[0]
    task = TASKS.get("arith")()
    doc = task.docs()[0]
    assert lm_task.process_results(row, [f" {doc.target}\n"]) == {"acc": 1}
    assert lm_task.process_results(row, [f" {int(doc.target) + 1}"]) == {"acc": 0}


def test_task_args_split_and_per_task_budgets(tmp_path):
    out = lm_eval_tasks.generate(
        tmp_path,
        tasks=["arith", "sudoku"],
        task_args={"arith": {"levels": "add2", "per_level": "5", "num_fewshot": "2"}, "sudoku": {"count": "6"}},
        split="train",
        max_gen_toks={"sudoku": 48},
    )
    assert sorted(p.name for p in out.glob("*.yaml")) == ["gapbench_arith.yaml", "gapbench_sudoku.yaml"]
    lm = load_lm_eval(out, ["arith", "sudoku"])
    arith = TASKS.get("arith")(levels="add2", per_level="5", num_fewshot="2")
    docs = arith.docs("train")
    rows = list(lm["arith"].eval_docs)
    assert len(rows) == 5 and [r["doc_id"] for r in rows] == [d.doc_id for d in docs]
    assert [lm["arith"].doc_to_text(r) for r in rows] == [arith.generation_prompt(d) for d in docs]
    assert lm["arith"].config.generation_kwargs["max_gen_toks"] == 16  # the task's own
    assert lm["sudoku"].config.generation_kwargs["max_gen_toks"] == 48  # the override
    assert lm["sudoku"].config.test_split == "train"
    # one budget for every task
    out2 = lm_eval_tasks.generate(tmp_path / "b", tasks=["arith"], max_gen_toks=7)
    assert load_lm_eval(out2, ["arith"])["arith"].config.generation_kwargs["max_gen_toks"] == 7


def test_regenerating_replaces_the_earlier_generation_only(tmp_path):
    lm_eval_tasks.generate(tmp_path, tasks=["arith", "sudoku"])
    (tmp_path / "mine.yaml").write_text("task: mine\n")
    lm_eval_tasks.generate(tmp_path, tasks=["arith"])
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["gapbench_arith.yaml", "mine.yaml"]
    (tmp_path / "gapbench_sudoku.yaml").write_text("task: not_ours\n")
    with pytest.raises(GapbenchError, match="not written by gapbench"):
        lm_eval_tasks.generate(tmp_path, tasks=["sudoku"])


def test_user_errors_are_caught_at_generation(tmp_path):
    with pytest.raises(GapbenchError, match="unknown task"):
        lm_eval_tasks.generate(tmp_path, tasks=["nope"])
    with pytest.raises(GapbenchError, match="has no option"):
        lm_eval_tasks.generate(tmp_path, tasks=["arith"], task_args={"arith": {"colour": "red"}})
    with pytest.raises(GapbenchError, match="not among the tasks"):
        lm_eval_tasks.generate(tmp_path, tasks=["arith"], task_args={"sudoku": {"count": "3"}})
    with pytest.raises(GapbenchError, match="no split"):
        lm_eval_tasks.generate(tmp_path, tasks=["arith"], split="dev")
    with pytest.raises(GapbenchError, match="no such folder"):
        lm_eval_tasks.generate(tmp_path, tasks=["arith"], data_dir=tmp_path / "missing")
    with pytest.raises(GapbenchError, match="max-gen-toks"):
        lm_eval_tasks.parse_budgets("gsm8k:48")
    assert lm_eval_tasks.parse_budgets("48") == 48
    assert lm_eval_tasks.parse_budgets("gsm8k=48,math=96") == {"gsm8k": 48, "math": 96}


def test_data_dir_from_the_environment(tmp_path, monkeypatch):
    if "gsm8k" not in available(["gsm8k"]):
        pytest.skip(f"no GSM8K data at {SHARED_DATA}")
    out = lm_eval_tasks.generate(tmp_path, tasks=["gsm8k"])  # nothing baked in
    text = (out / "gapbench_gsm8k.yaml").read_text()
    assert "GAPBENCH_DATA_DIR" in text
    monkeypatch.setenv(lm_eval_bridge.DATA_DIR_ENV, str(SHARED_DATA))
    rows = list(load_lm_eval(out, ["gsm8k"])["gsm8k"].eval_docs)
    assert len(rows) == len(TASKS.get("gsm8k")().docs(None, SHARED_DATA))


def test_a_stale_folder_is_refused():
    spec = lm_eval_tasks.task_spec("arith")
    with pytest.raises(GapbenchError, match="Regenerate"):
        lm_eval_bridge.make_task({**spec, "stop": ["\n"]})
    with pytest.raises(GapbenchError, match="Regenerate"):
        lm_eval_bridge.make_task({**spec, "version": "0"})


def test_cli_prints_the_folder_and_an_example_command(tmp_path, capsys):
    from gapbench.harness.cli import main

    assert main(["lm-eval-tasks", "--out", str(tmp_path), "--tasks", "arith,sudoku", "--task-args", "sudoku.count=4", "--max-gen-toks", "sudoku=40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(tmp_path.resolve())
    assert "gapbench_arith, gapbench_sudoku" in lines[1]
    command, faster = lines[-3].strip(), lines[-1].strip()
    assert command.startswith("lm_eval --model hf ") and f"--include_path {tmp_path.resolve()}" in command and "--tasks gapbench_" in command
    same_run = command.replace("lm_eval --model hf ", "gapbench lm-eval --model hf-prefix ", 1).replace(" --include_path", " --device cpu --include_path", 1)
    assert faster == same_run
    cfg = yaml.safe_load((tmp_path / "gapbench_sudoku.yaml").read_text().replace("!function", ""))
    assert cfg["generation_kwargs"]["max_gen_toks"] == 40
    assert main(["lm-eval-tasks", "--out", str(tmp_path), "--tasks", "nope"]) == 2


# --- one model through both: lm-eval's acc equals gapbench's J(f), sample by sample -------------
# The fake model (harness/models/fake.py) answers each prompt from a rule keyed by the whole prompt, or
# else from a hash of it: identical responses on both sides mean identical prompts, docs (--limit) and
# stop strings. That greedy decoding of a real model agrees with lm-eval is tested on the embedded
# model in test_prefix_generate.py.
MODEL_LIMIT = 3  # prompts per task
SHORT = 32  # new tokens for the long-form tasks
BUDGETS = {"gsm8k": SHORT, "math": SHORT, "math500": SHORT, "sudoku": SHORT}
SHOTS = {"gsm8k": {"num_fewshot": "1"}, "math": {"num_fewshot": "1"}, "math500": {"num_fewshot": "1"}}  # shorter prompts
BATCH = 1


def fake_replies(names: list[str], shots: dict) -> list[dict]:
    """Rules for the fake model: of each task's first prompts, the 1st and 3rd answered in a form the
    task's grader accepts, then a stop string and text that must be cut; the others get the hash reply."""
    rules = []
    for name in names:
        task = TASKS.get(name)(**shots.get(name, {}))
        for k, doc in enumerate(task.docs(None, SHARED_DATA, MODEL_LIMIT)):
            if k % 2:
                continue
            answer = first_answer(doc.target)
            forms = (f" {answer}", f" The answer is {answer}.", f" \\boxed{{{answer}}}", f" #### {answer}")
            good = next(y for y in forms if task.grade(doc, y).g == 1)
            rules.append({"endswith": task.generation_prompt(doc), "reply": good + task.stop[0] + " Question: and more"})
    return rules


@pytest.fixture(scope="module")
def both_sides(tmp_path_factory):
    """The same prompts answered by the fake model through lm-eval (the generated folder) and through gapbench."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from gapbench.harness.jsonl import read_jsonl
    from gapbench.harness.models.fake import NAME  # registers the fake model with lm-eval
    from gapbench.harness.runner import Runner, RunOptions

    names = available(TASKS.names())
    if not names:
        pytest.skip("no task has data here")
    budgets = {n: b for n, b in BUDGETS.items() if n in names}
    shots = {n: o for n, o in SHOTS.items() if n in names}
    folder = lm_eval_tasks.generate(
        tmp_path_factory.mktemp("lm_eval_model"), tasks=names, data_dir=SHARED_DATA, task_args=shots, max_gen_toks=budgets
    )
    replies = tmp_path_factory.mktemp("fake") / "replies.json"
    replies.write_text(json.dumps(fake_replies(names, shots)))
    model_args = f"replies={replies}"

    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=NAME,
        model_args=model_args,
        tasks=[lm_eval_tasks.lm_eval_name(n) for n in names],
        task_manager=TaskManager(include_path=str(folder)),  # with lm-eval's own tasks, as the CLI loads them
        limit=MODEL_LIMIT,
        batch_size=BATCH,
        log_samples=True,
        gen_kwargs="do_sample=False,temperature=0",
    )
    lm_seconds = time.perf_counter() - start

    start = time.perf_counter()
    runs = tmp_path_factory.mktemp("gapbench_runs")
    results = {}
    for budget in sorted({budgets.get(n) for n in names}, key=lambda b: b or 0):  # one run per token budget
        group = [n for n in names if budgets.get(n) == budget]
        opts = RunOptions(
            model=NAME,
            model_args=model_args,
            tasks=group,
            task_args={n: o for n, o in shots.items() if n in group},
            n=1,
            temperature=0.0,
            limit=MODEL_LIMIT,
            verifiers=["oracle"],
            data_dir=str(SHARED_DATA),
            max_gen_toks=budget,
            batch_size=BATCH,
            n_boot=10,
            out=str(runs),
        )
        for r in Runner(opts, log=lambda *_: None).run():
            results[r.task.name] = r.to_dict()
    gap_seconds = time.perf_counter() - start
    texts = [s["response"] for n in names for s in read_jsonl(runs / n / "samples.jsonl")]
    assert sum(bool(t.strip()) for t in texts) > len(texts) // 2, texts  # the comparison is not of empty strings
    grades = [g["g"] for n in names for g in read_jsonl(runs / n / "grades.jsonl")]
    assert set(grades) == {0, 1}, grades  # right and wrong answers on both sides
    print(f"\nlm-eval: {lm_seconds:.1f}s, gapbench: {gap_seconds:.1f}s for {len(names)} tasks x {MODEL_LIMIT} prompts")
    return names, out, results, runs


@pytest.mark.parametrize("name", TASKS.names())
def test_lm_eval_acc_equals_gapbench_J(both_sides, name):
    from gapbench.harness.jsonl import read_jsonl

    names, out, results, runs = both_sides
    if name not in names:
        pytest.skip(f"{name}: no local data at {SHARED_DATA}")
    key = lm_eval_tasks.lm_eval_name(name)
    lm_samples = {s["doc"]["doc_id"]: s for s in out["samples"][key]}
    responses = {r["doc_id"]: r["response"] for r in read_jsonl(runs / name / "samples.jsonl")}
    grades = {r["doc_id"]: r["g"] for r in read_jsonl(runs / name / "grades.jsonl")}
    assert sorted(lm_samples) == sorted(responses) == sorted(grades) and len(responses) == MODEL_LIMIT
    for doc_id, s in lm_samples.items():
        assert s["filtered_resps"][0] == responses[doc_id], doc_id  # the same text
        assert s["acc"] == grades[doc_id], doc_id  # the same grade
    acc = out["results"][key]["acc,none"]
    J = results[name]["generation"]["J"]["value"]
    print(f"{name}: lm-eval acc {acc:.3f}, gapbench J(f) {J:.3f}, {MODEL_LIMIT} prompts, responses identical")
    assert acc == pytest.approx(J)
