"""GSM8K: lm-eval's extraction and exact match, prompts, data errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.tasks.base import Doc
from gapbench.tasks.gsm8k import GSM8K, extract_flexible, extract_strict, gold_number, normalize

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file(), reason="no shared GSM8K copy at ../shared/data"
)

# (response, strict extraction, flexible extraction)
EXTRACTIONS = [
    ("She has 42 - 30 = 12 left.\n#### 12", "12", "12"),
    ("#### 42", "42", "42"),
    ("The total is 1,234.\n#### 1,234", "1,234", "1,234"),
    ("The cost is $1,234.", None, "$1,234."),
    ("The temperature drops to -5 degrees.", None, "-5"),
    ("#### -7", "-7", "-7"),
    ("He had 5 apples, ate 2 and bought 10 more, so 13.", None, "13."),
    ("No numbers here.", None, None),
    ("The answer is 18.", None, "18."),
    ("The answer is 18", None, "18"),
    ("#### 12\nThen 5 more.", "12", "5"),
    ("3 + 4 = 7", None, "7"),
    ("It takes 3.5 hours", None, "3.5"),
    ("#### 72.\n", "72.", "72."),
    ("Answer: 1, 2, or 3", None, "3"),
    ("#### $20", None, "$20"),
    ("#### 5\n#### 6", "5", "6"),
    ("", None, None),
]


@pytest.mark.parametrize("response,strict,flexible", EXTRACTIONS)
def test_extraction(response, strict, flexible):
    assert extract_strict(response) == strict
    assert extract_flexible(response) == flexible


@pytest.mark.parametrize(
    "text,expected",
    [("1,234", "1234"), ("$20", "20"), ("18.", "18"), ("3.50.", "3.50"), ("blah #### 7", "7"), ("ABC", "abc")],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


# (response, gold answer as GSM8K writes it, strict g, flexible g)
GRADINGS = [
    ("So 42 - 30 = 12.\n#### 12", "42 - 30 = <<42-30=12>>12\n#### 12", 1, 1),
    ("#### 1,234", "#### 1,234", 1, 1),
    ("The cost is $1,234.", "#### 1,234", 0, 1),
    ("The answer is 18.", "#### 18", 0, 1),
    ("#### 18\nCheck: 9 + 9 = 18, and 2 more makes 20", "#### 18", 1, 0),
    ("#### -7", "#### -7", 1, 1),
    ("The drop is 7 degrees", "#### -7", 0, 0),
    ("No idea.", "#### 3", 0, 0),
    ("#### 72.", "#### 72", 1, 1),
    ("It takes 3.5 hours", "#### 3.5", 0, 1),
    ("#### 3.50", "#### 3.5", 0, 0),
    ("#### $20", "#### 20", 0, 1),
]


def _doc(target: str) -> Doc:
    return Doc(doc_id="test-0", question="q", target=target)


@pytest.mark.parametrize("response,answer,strict,flexible", GRADINGS)
def test_grade(response, answer, strict, flexible):
    grade = GSM8K().grade(_doc(gold_number(answer)), response)
    assert grade.variants == {"strict": strict, "flexible": flexible}
    assert grade.g == flexible
    assert grade.answer == extract_flexible(response)


def test_grade_without_a_number_has_no_answer():
    grade = GSM8K().grade(_doc("3"), "I do not know.")
    assert grade.answer is None and grade.g == 0


def test_gold_number():
    assert gold_number("a\nb <<2*3=6>>6\n#### 1,500") == "1500"
    assert gold_number("no final line") is None


def test_matches_lm_eval_reference():
    """Our grading equals lm-eval's own regex filter + exact_match on every hand-written case."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    strict_filter = RegexFilter(regex_pattern=r"#### (\-?[0-9\.\,]+)")
    flexible_filter = RegexFilter(regex_pattern=r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    kwargs = dict(ignore_case=True, ignore_punctuation=False, regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"])
    cases = [(r, a) for r, a, _, _ in GRADINGS] + [(r, "#### 12") for r, _, _ in EXTRACTIONS]
    for response, answer in cases:
        ours = GSM8K().grade(_doc(gold_number(answer)), response)
        for name, filt in (("strict", strict_filter), ("flexible", flexible_filter)):
            extracted = list(filt.apply([[response]], [{}]))[0][0]
            reference = exact_match_hf_evaluate(predictions=[extracted], references=[answer], **kwargs)["exact_match"]
            assert ours.variants[name] == int(reference), (name, response, answer)
            ours_extracted = extract_strict(response) if name == "strict" else extract_flexible(response)
            assert (ours_extracted or "[invalid]") == extracted


# --- data and prompts ----------------------------------------------------------
def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(prefix: str, n: int) -> list[dict]:
    return [{"question": f"{prefix} question {i}?", "answer": f"Work {i}.\n#### {i},000"} for i in range(n)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    _write_jsonl(tmp_path / "gsm8k" / "test.jsonl", _rows("test", 3))
    _write_jsonl(tmp_path / "gsm8k" / "train.jsonl", _rows("train", 6))
    return tmp_path


def test_docs_from_data_dir(data_dir):
    docs = GSM8K().docs(data_dir=data_dir)
    assert [d.doc_id for d in docs] == ["test-0", "test-1", "test-2"]
    assert docs[1].question == "test question 1?"
    assert docs[1].target == "1000"
    assert docs[1].meta == {}


def test_prompt_zero_shot(data_dir):
    task = GSM8K(num_fewshot=0)
    doc = task.docs(data_dir=data_dir)[0]
    assert task.generation_prompt(doc) == "Question: test question 0?\nAnswer:"


def test_prompt_four_shot(data_dir):
    task = GSM8K(num_fewshot="4")  # as the command line gives it
    doc = task.docs(data_dir=data_dir)[2]
    shots = "".join(f"Question: train question {i}?\nAnswer: Work {i}.\n#### {i},000\n\n" for i in range(4))
    assert task.generation_prompt(doc) == shots + "Question: test question 2?\nAnswer:"


def test_train_split_leaves_out_the_fewshot_rows(data_dir):
    task = GSM8K(num_fewshot=4)
    docs = task.docs("train", data_dir=data_dir)
    assert [d.doc_id for d in docs] == ["train-4", "train-5"]
    prompt = task.generation_prompt(docs[0])
    assert prompt.count("Question:") == 5 and "train question 3?" in prompt
    assert GSM8K(num_fewshot=0).docs("train", data_dir=data_dir)[0].doc_id == "train-0"


def test_path_option_overrides_the_split_but_not_the_fewshot_source(data_dir, tmp_path):
    own = _write_jsonl(tmp_path / "own.jsonl", [{"question": "mine?", "answer": "#### 9"}])
    task = GSM8K(path=str(own), num_fewshot=1)
    docs = task.docs(data_dir=data_dir)
    assert [(d.question, d.target) for d in docs] == [("mine?", "9")]
    assert task.generation_prompt(docs[0]).startswith("Question: train question 0?")


def test_missing_field_names_file_line_and_field(tmp_path):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "a", "answer": "#### 1"}, {"question": "b"}])
    with pytest.raises(GapbenchError, match=rf"{bad}:2: missing field 'answer'"):
        GSM8K(path=str(bad)).docs()


def test_answer_without_final_number_names_line(tmp_path):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "a", "answer": "#### 1"}, {"question": "b", "answer": "2"}])
    with pytest.raises(GapbenchError, match=rf"{bad}:2: field 'answer' has no final '#### N'"):
        GSM8K(path=str(bad)).docs()


def test_missing_field_in_fewshot_rows(tmp_path):
    _write_jsonl(tmp_path / "gsm8k" / "test.jsonl", _rows("test", 1))
    train = _write_jsonl(tmp_path / "gsm8k" / "train.jsonl", [{"answer": "#### 1"}])
    task = GSM8K(num_fewshot=1)
    doc = task.docs(data_dir=tmp_path)[0]
    with pytest.raises(GapbenchError, match=rf"{train}:1: missing field 'question'"):
        task.generation_prompt(doc)


def test_unknown_option():
    with pytest.raises(GapbenchError, match="no option 'shots'"):
        GSM8K(shots=3)


def test_negative_fewshot_refused():
    with pytest.raises(GapbenchError, match="num_fewshot"):
        GSM8K(num_fewshot=-1)


def test_data_not_found_mentions_data_dir(tmp_path):
    with pytest.raises(GapbenchError, match="--data-dir"):
        GSM8K().docs(data_dir=tmp_path)


def test_missing_train_file_for_fewshot_mentions_data_dir(tmp_path):
    _write_jsonl(tmp_path / "gsm8k" / "test.jsonl", _rows("test", 1))
    task = GSM8K()
    doc = task.docs(data_dir=tmp_path)[0]
    with pytest.raises(GapbenchError, match="--data-dir"):
        task.generation_prompt(doc)


def test_missing_path_file_mentions_option(tmp_path):
    with pytest.raises(GapbenchError, match="gsm8k.path"):
        GSM8K(path=str(tmp_path / "nope.jsonl")).docs()


@needs_shared
def test_shared_data_prompt_and_targets():
    task = GSM8K()
    docs = task.docs(data_dir=SHARED_DATA)
    assert len(docs) == 1319 and docs[0].doc_id == "test-0"
    prompt = task.generation_prompt(docs[0])
    assert prompt.startswith("Question: Natalia sold clips")
    assert prompt.count("\nAnswer: ") == 4 and prompt.count("Question: ") == 5
    assert prompt.endswith(f"Question: {docs[0].question}\nAnswer:")
    assert GSM8K(num_fewshot=0).generation_prompt(docs[0]) == f"Question: {docs[0].question}\nAnswer:"
    # our target normalises like lm-eval's reference (the full worked answer)
    rows = [json.loads(line) for line in (SHARED_DATA / "gsm8k" / "test.jsonl").read_text().splitlines()]
    for doc, row in zip(docs, rows):
        assert normalize(doc.target) == normalize(row["answer"])
        assert task.grade(doc, row["answer"]).variants == {"strict": 1, "flexible": 1}


@needs_shared
def test_shared_train_split_skips_fewshot_rows():
    docs = GSM8K(num_fewshot=4).docs("train", data_dir=SHARED_DATA, limit=2)
    assert [d.doc_id for d in docs] == ["train-4", "train-5"]


# --- verification ----------------------------------------------------------------
def test_verification_examples_are_consistent():
    task = GSM8K()
    examples = task.verification_examples()
    assert len(examples) == 4
    assert sorted(e.correct for e in examples) == [False, False, True, True]
    true_answers = ["12", "6", "190", "12"]
    for example, answer in zip(examples, true_answers):
        assert task.grade(_doc(answer), example.response).g == int(example.correct)
        assert example.response == example.response.strip()
        assert 1 <= example.score <= 10
        assert (example.score >= 7) if example.correct else (example.score <= 3)
        assert example.rationale and example.question.endswith("?")
    assert task.verification_question() == "Is the final answer of this solution correct?"
    assert task.show_response(_doc("1"), "  #### 1 \n") == "#### 1"
