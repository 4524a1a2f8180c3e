"""The MATH and MATH-500 task plugins: data, prompt, grading, verifier facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import TASKS, Doc
from gapbench.tasks.math import FEWSHOT, Math500Task, MathTask

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "math" / "test.jsonl").is_file() or not (DATA / "math500" / "test.jsonl").is_file(),
    reason=f"reference data not at {DATA}",
)


@pytest.fixture(scope="module")
def math_docs():
    return MathTask().docs(data_dir=DATA)


@pytest.fixture(scope="module")
def math500_docs():
    return Math500Task().docs(data_dir=DATA)


def test_registered():
    assert TASKS.get("math") is MathTask
    assert TASKS.get("math500") is Math500Task
    for cls in (MathTask, Math500Task):
        assert cls.group_keys == ("subject", "level")
        assert cls.splits == ("test",) and cls.default_split == "test"
        assert "Problem:" in cls.stop


@needs_data
def test_math_docs(math_docs):
    assert len(math_docs) == 5000
    first = math_docs[0]
    assert first.doc_id == "test-0"
    assert first.question.startswith("How many vertical asymptotes")
    assert first.target == "2"
    assert first.meta == {"subject": "Algebra", "level": 3}
    assert len({d.doc_id for d in math_docs}) == 5000
    assert {d.meta["level"] for d in math_docs} == {1, 2, 3, 4, 5}
    assert len({d.meta["subject"] for d in math_docs}) == 7
    assert all(d.target for d in math_docs)
    json.dumps([d.target for d in math_docs])  # targets are JSON-serialisable


@needs_data
def test_math_target_is_last_box_with_nested_braces(math_docs):
    doc = next(d for d in math_docs if d.question.startswith("Find $x$ such that $\\lceil x \\rceil + x = \\dfrac{23}{7}$"))
    assert doc.target == "\\dfrac{9}{7}"


@needs_data
def test_math500_docs(math500_docs):
    assert len(math500_docs) == 500
    first = math500_docs[0]
    assert first.doc_id == "test/precalculus/807.json"
    assert first.target == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta == {"subject": "Precalculus", "level": 2}
    assert len({d.doc_id for d in math500_docs}) == 500


@needs_data
def test_math_targets_match_math500_answers(math_docs, math500_docs):
    by_problem = {d.question: d for d in math_docs}
    spot = [d for d in math500_docs if d.question in by_problem]
    assert len(spot) >= 490  # MATH-500 is a subset of the test split
    for doc in spot[:: len(spot) // 10]:
        full = by_problem[doc.question]
        assert full.target == doc.target, doc.doc_id
        assert full.meta == doc.meta, doc.doc_id


@needs_data
def test_limit_and_path_option(tmp_path):
    assert len(Math500Task().docs(data_dir=DATA, limit=3)) == 3
    rows = [json.loads(line) for line in (DATA / "math" / "test.jsonl").read_text().splitlines()[:2]]
    file = tmp_path / "two.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = MathTask(path=str(file)).docs()
    assert [d.doc_id for d in docs] == ["test-0", "test-1"]


def test_row_without_answer_is_an_error(tmp_path):
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps({"problem": "What is 1+1?", "solution": "It is 2.", "level": "Level 1", "type": "Algebra"}) + "\n")
    with pytest.raises(GapbenchError, match=r"bad.jsonl:1: no gold answer"):
        MathTask(path=str(file)).docs()


def test_level_parsing(tmp_path):
    file = tmp_path / "rows.jsonl"
    rows = [
        {"problem": "p1", "solution": "\\boxed{1}", "level": "Level ?", "type": "Geometry"},
        {"problem": "p2", "answer": "2", "level": 4, "subject": "Algebra", "unique_id": "test/algebra/1.json"},
    ]
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = Math500Task(path=str(file)).docs()
    assert docs[0].meta == {"subject": "Geometry", "level": None}
    assert docs[1].meta == {"subject": "Algebra", "level": 4}
    assert docs[1].doc_id == "test/algebra/1.json"


def _doc(target="\\frac{1}{2}"):
    return Doc(doc_id="t", question="What is one half?", target=target, meta={"subject": "Algebra", "level": 1})


def test_prompt_shape():
    prompt = MathTask().generation_prompt(_doc())
    assert prompt.startswith("Problem:\nFind the domain of the expression")
    assert prompt.endswith("Problem:\nWhat is one half?\n\nSolution:")
    assert prompt.count("Problem:\n") == 5 and prompt.count("Solution:\n") == 4
    assert prompt.count("The final answer is $\\boxed{") == 4
    assert "\n\n\n" not in prompt  # a stop sequence must not occur in the examples
    for problem, solution in FEWSHOT:
        assert solution.rstrip().endswith("$.") and "The final answer is $\\boxed{" in solution
        assert "\n\n\n" not in problem + solution


def test_num_fewshot_option():
    assert MathTask(num_fewshot="0").generation_prompt(_doc()) == "Problem:\nWhat is one half?\n\nSolution:"
    assert Math500Task(num_fewshot=2).generation_prompt(_doc()).count("Problem:\n") == 3
    with pytest.raises(GapbenchError, match="num_fewshot"):
        MathTask(num_fewshot=5)
    with pytest.raises(GapbenchError, match="no option"):
        MathTask(shots=2)


def test_fewshot_answers_extract_and_grade():
    task = MathTask()
    answers = ["[2,5)", "24", "16", "-\\frac{2}{3}"]
    for (_problem, solution), gold in zip(FEWSHOT, answers):
        grade = task.grade(_doc(gold), solution)
        assert grade.g == 1 and grade.answer == gold


def test_grade():
    task = Math500Task()
    right = task.grade(_doc(), "Half of one is $0.5$.\nThe final answer is $\\boxed{0.5}$.")
    assert (right.g, right.answer, right.variants) == (1, "0.5", {})
    wrong = task.grade(_doc(), "The final answer is $\\boxed{\\frac{1}{3}}$.")
    assert (wrong.g, wrong.answer) == (0, "\\frac{1}{3}")
    none = task.grade(_doc(), "I am not sure.")
    assert (none.g, none.answer) == (0, None)
    fallback = task.grade(_doc(), "The final answer is $\\frac12$. I hope it is correct.")
    assert (fallback.g, fallback.answer) == (1, "\\frac12")


def test_verification_facts():
    task = MathTask()
    examples = task.verification_examples()
    assert len(examples) == 4
    assert sorted(e.correct for e in examples) == [False, False, True, True]
    true_answers = ["39", "12", "\\frac{3}{28}", "12"]  # worked out by hand
    for example, truth in zip(examples, true_answers):
        assert 1 <= example.score <= 10
        assert (example.score >= 6) == example.correct
        assert example.rationale and example.question
        # each worked example's verdict agrees with the task's own grader
        assert task.grade(_doc(truth), example.response).g == int(example.correct)
    assert task.verification_question() == "Is the final answer of this solution correct?"
    assert task.config() == {"name": "math", "version": "1", "options": {"num_fewshot": 4, "path": None}}
