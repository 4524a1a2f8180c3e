"""The NQ-open task plugin: SQuAD normalisation, exact match, token F1, data and prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import TASKS, Doc
from gapbench.tasks.nq_open import FEWSHOT, NQOpenTask, exact_match, extract_answer, normalize_answer, token_f1

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "nq_open" / "dev.jsonl").is_file(), reason=f"reference data not at {DATA}")


@pytest.mark.parametrize(
    "raw,normal",
    [
        ("The Beatles", "beatles"),
        ("  an   Apple a day ", "apple day"),
        ("U.S.A.", "usa"),
        ("Rock 'n' Roll!", "rock n roll"),
        ("THEORY of Everything", "theory of everything"),
        ("Athens", "athens"),  # "the" inside a word stays
        ("a", ""),
        ("14 December 1972 UTC", "14 december 1972 utc"),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match():
    assert exact_match("the Beatles.", "Beatles")
    assert exact_match("Bob Russell", ["Bobby Scott", "Bob Russell"])  # any alias
    assert exact_match("one", ["one", "one season"])
    assert not exact_match("Bob", ["Bobby Scott", "Bob Russell"])
    assert not exact_match("December 1972 UTC", ["14 December 1972 UTC", "December 1972"])
    assert not exact_match(None, ["x"])
    assert not exact_match("anything", [])


def test_token_f1_by_hand():
    # "december 1972" vs "14 december 1972 utc": 2 shared tokens, P = 2/2, R = 2/4, F1 = 2*1*0.5/1.5 = 2/3
    assert token_f1("December 1972", "14 December 1972 UTC") == pytest.approx(2 / 3)
    # "barack obama jr" vs "barack obama": P = 2/3, R = 1, F1 = 0.8
    assert token_f1("Barack Obama Jr.", "Barack Obama") == pytest.approx(0.8)
    # the best alias wins: 2/3 against the first, 1.0 against the second
    assert token_f1("December 1972", ["14 December 1972 UTC", "December 1972"]) == 1.0
    assert token_f1("Paris", "London") == 0.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert token_f1("the", "Paris") == 0.0
    assert token_f1(None, ["Paris"]) == 0.0
    # repeated tokens count once per match: "new new york" vs "new york": common 2, P = 2/3, R = 1
    assert token_f1("new new york", "New York") == pytest.approx(0.8)


def test_extract_answer():
    assert extract_answer(" Bobby Scott") == "Bobby Scott"
    assert extract_answer("\n A: Paris\nQ: next") == "Paris"
    assert extract_answer("") is None
    assert extract_answer("   \n ") is None


def _doc():
    return Doc(doc_id="validation-0", question="who wrote he ain't heavy he's my brother lyrics",
               target=["Bobby Scott", "Bob Russell"])


def test_grade():
    task = NQOpenTask()
    right = task.grade(_doc(), " Bob Russell.")
    assert (right.g, right.answer, right.variants) == (1, "Bob Russell.", {"f1": 1.0, "em": 1})
    partial = task.grade(_doc(), " Bob Russell and Bobby Scott")
    assert partial.g == 0 and partial.variants["em"] == 0
    # vs "bobby scott": common {bobby, scott}, P = 2/5, R = 1 -> F1 = 4/7; vs "bob russell": also 4/7
    assert partial.variants["f1"] == pytest.approx(4 / 7)
    empty = task.grade(_doc(), "")
    assert (empty.g, empty.answer, empty.variants) == (0, None, {"f1": 0.0, "em": 0})


def test_prompt_shape():
    task = NQOpenTask()
    prompt = task.generation_prompt(_doc())
    assert prompt.startswith("Q: who wrote the novel moby dick?\nA: Herman Melville\n\n")
    assert prompt.endswith("Q: who wrote he ain't heavy he's my brother lyrics?\nA:")
    assert prompt.count("Q: ") == 5
    assert NQOpenTask(num_fewshot=0).generation_prompt(_doc()) == "Q: who wrote he ain't heavy he's my brother lyrics?\nA:"
    with pytest.raises(GapbenchError, match="num_fewshot"):
        NQOpenTask(num_fewshot=9)
    assert task.stop[0] == "\n" and task.max_gen_toks == 32


def test_registered_and_verification_facts():
    assert TASKS.get("nq_open") is NQOpenTask
    task = NQOpenTask()
    assert task.splits == ("validation",) and task.default_split == "validation"
    examples = task.verification_examples()
    assert len(examples) == 4 and sorted(e.correct for e in examples) == [False, False, True, True]
    assert all(1 <= e.score <= 10 and (e.score >= 6) == e.correct and e.rationale for e in examples)
    assert task.verification_question() == "Is the proposed answer to this question correct?"
    with pytest.raises(GapbenchError, match="no split"):
        task.docs(split="test", data_dir=DATA)


@needs_data
def test_docs_from_shared_data():
    docs = NQOpenTask().docs(data_dir=DATA)
    assert len(docs) == 3610
    first = docs[0]
    assert first.doc_id == "validation-0"
    assert first.question == "when was the last time anyone was on the moon"
    assert first.target == ["14 December 1972 UTC", "December 1972"]
    assert len({d.doc_id for d in docs}) == 3610
    assert all(isinstance(d.target, list) and d.target for d in docs)
    # the hand-written examples are not dev questions
    questions = {d.question for d in docs}
    own = [q for q, _ in FEWSHOT] + [e.question for e in NQOpenTask().verification_examples()]
    assert not questions & set(own)
    assert NQOpenTask().grade(first, " December 1972").g == 1


def test_bad_row_is_an_error(tmp_path):
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps({"question": "q", "answer": "x"}) + "\n" + json.dumps({"question": "q2", "answer": []}) + "\n")
    with pytest.raises(GapbenchError, match=r"bad.jsonl:2: field 'answer'"):
        NQOpenTask(path=str(file)).docs()
