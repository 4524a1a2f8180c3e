"""The arith task: seeded generation, disjoint splits, options, extraction and grading."""

from __future__ import annotations

import re

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import TASKS
from gapbench.tasks.arith import (
    LEVELS,
    Arith,
    Level,
    evaluate,
    extract_answer,
    extract_integer,
    split_of,
    split_size,
)
from gapbench.tasks.base import Doc

QUESTION = re.compile(r"^What is (.+)\?$")


def expr(doc: Doc) -> str:
    match = QUESTION.match(doc.question)
    assert match, doc.question
    return match.group(1)


def small(**options):
    """A quick task over the whole ladder."""
    return Arith(levels="+".join(LEVELS), per_level=options.pop("per_level", 12), **options)


# --- registration and the ladder ---------------------------------------------------


def test_registered_with_its_class_attributes():
    assert TASKS.get("arith") is Arith
    assert Arith.splits == ("test", "train") and Arith.default_split == "test"
    assert Arith.group_keys == ("level",)
    assert Arith.max_gen_toks == 16
    assert set(Arith.stop) == {"\n", "Q:", "</s>", "<|im_end|>"}


def test_ladder_names_and_descriptions():
    assert list(LEVELS)[:5] == ["add1", "mul1", "add2", "sub2", "mul21"]
    assert "add3" in LEVELS and "mix3" in LEVELS
    for name, level in LEVELS.items():
        assert level.name == name
        assert level.description and "\n" not in level.description


def test_operand_digits_and_operators_match_the_level():
    docs = small(per_level=30).docs("test")
    for doc in docs:
        level = LEVELS[doc.meta["level"]]
        tokens = expr(doc).split()
        operands, ops = tokens[::2], tokens[1::2]
        assert [len(o) for o in operands] == list(level.digits), doc
        assert set(ops) <= set(level.ops), doc
    mix = [expr(d) for d in docs if d.meta["level"] == "mix3"]
    assert len({tuple(e.split()[1::2]) for e in mix}) > 3  # operators really are mixed


# --- generation: reproducibility, sizes, ids ----------------------------------------


def test_same_seed_same_docs_and_different_seed_differs():
    a = small(seed=3).docs("test")
    b = small(seed=3).docs("test")
    c = small(seed=4).docs("test")
    assert a == b
    assert [d.question for d in a] != [d.question for d in c]
    for name in ("add2", "add3", "mix3"):  # every non-tiny level changes with the seed
        qa = [d.question for d in a if d.meta["level"] == name]
        qc = [d.question for d in c if d.meta["level"] == name]
        assert qa != qc, name


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_train_and_test_disjoint_for_every_level(seed):
    task = small(seed=seed, per_level=40)
    test, train = task.docs("test"), task.docs("train")
    for name in LEVELS:
        te = {expr(d) for d in test if d.meta["level"] == name}
        tr = {expr(d) for d in train if d.meta["level"] == name}
        assert te and tr
        assert not te & tr, name
    assert all(split_of(expr(d)) == "test" for d in test)
    assert all(split_of(expr(d)) == "train" for d in train)


def test_disjoint_across_different_seeds():
    tests = {expr(d) for s in (0, 1, 2) for d in small(seed=s, per_level=40).docs("test")}
    trains = {expr(d) for s in (3, 4, 5) for d in small(seed=s, per_level=40).docs("train")}
    assert not tests & trains


def test_per_level_respected_and_prefix_stable():
    docs = Arith(levels="add2+mix3+add3", per_level=7).docs("test")
    assert len(docs) == 21
    assert {d.meta["level"]: 0 for d in docs}.keys() == {"add2", "mix3", "add3"}
    for name in ("add2", "mix3", "add3"):
        assert sum(d.meta["level"] == name for d in docs) == 7
    more = Arith(levels="add2+mix3+add3", per_level=20).docs("test")
    by_id = {d.doc_id: d for d in more}
    for doc in docs:
        assert by_id[doc.doc_id] == doc


def test_tiny_levels_give_all_their_split_and_no_more():
    add1 = LEVELS["add1"]
    n_test, n_train = split_size(add1, "test"), split_size(add1, "train")
    assert n_test + n_train == 100
    assert 40 <= n_test <= 60  # enough test problems for a tiny level
    docs = Arith(levels="add1", per_level=1000).docs("test")
    assert len(docs) == n_test
    assert len({d.question for d in docs}) == n_test
    train = Arith(levels="add1", per_level=1000).docs("train")
    assert len(train) == n_train


def test_doc_ids_unique_and_stable():
    docs = small(per_level=15).docs("test")
    ids = [d.doc_id for d in docs]
    assert len(ids) == len(set(ids))
    for doc in docs:
        level, i = doc.doc_id.rsplit("-", 1)
        assert level == doc.meta["level"] and i.isdigit()
    assert ids == [d.doc_id for d in small(per_level=15).docs("test")]
    questions = [d.question for d in docs]
    assert len(questions) == len(set(questions))


def test_round_robin_order_and_limit_keeps_a_mix():
    task = Arith(levels="add2+sub2+mul21", per_level=5)
    first = task.docs("test", limit=6)
    assert [d.doc_id for d in first] == ["add2-0", "sub2-0", "mul21-0", "add2-1", "sub2-1", "mul21-1"]


def test_targets_equal_python_eval_and_meta():
    ladder = list(LEVELS)
    for doc in small(per_level=25).docs("test") + small(per_level=10).docs("train"):
        e = expr(doc)
        assert re.fullmatch(r"\d+( [-+*] \d+)+", e), e
        assert doc.target == str(eval(e)), doc
        assert isinstance(doc.target, str)
        assert doc.meta == {"level": doc.meta["level"], "difficulty": ladder.index(doc.meta["level"])}
    assert any(int(d.target) < 0 for d in Arith(levels="sub2").docs("test"))


def test_evaluate_precedence():
    assert evaluate("2 + 3 * 4") == 14
    assert evaluate("20 - 3 * 4 - 5") == 3
    assert evaluate("12 * 3 + 4 * 5") == 56
    assert evaluate("9 - 56") == -47


def test_load_docs_ignores_data_dir(tmp_path):
    task = Arith(levels="add2", per_level=5)
    assert task.docs("test", data_dir=tmp_path) == task.docs("test")


def test_unknown_split():
    with pytest.raises(GapbenchError, match="no split 'dev'"):
        Arith().docs("dev")


# --- options ----------------------------------------------------------------------------


def test_default_levels():
    docs = Arith().docs("test")
    assert [d.meta["level"] for d in docs[:5]] == ["add1", "mul1", "add2", "mul21", "add3"]
    assert sum(d.meta["level"] == "add2" for d in docs) == 12


def test_levels_as_string_or_list_agree():
    s = Arith(levels="add1+sub2")
    lst = Arith(levels=["add1", "sub2"])
    assert s.docs("test") == lst.docs("test")
    assert {d.meta["level"] for d in s.docs("test")} == {"add1", "sub2"}
    assert s.config() == lst.config()  # one spelling in run.json
    assert lst.options["levels"] == "add1+sub2"


def test_unknown_level_lists_known_levels():
    with pytest.raises(GapbenchError) as err:
        Arith(levels="add1+add9")
    message = str(err.value)
    assert "'add9'" in message
    for name in LEVELS:
        assert name in message


def test_empty_and_repeated_levels_refused():
    with pytest.raises(GapbenchError, match="empty"):
        Arith(levels="")
    with pytest.raises(GapbenchError, match="repeats 'add1'"):
        Arith(levels="add1+add2+add1")


def test_cli_strings_are_coerced():
    task = Arith(per_level="3", seed="5", num_fewshot="2", levels="add2")
    assert task.options["per_level"] == 3 and task.options["seed"] == 5
    docs = task.docs("test")
    assert len(docs) == 3
    assert docs == Arith(per_level=3, seed=5, levels="add2").docs("test")
    assert task.generation_prompt(docs[0]).count("Q:") == 3
    with pytest.raises(GapbenchError, match="per_level"):
        Arith(per_level="many")
    with pytest.raises(GapbenchError, match="per_level"):
        Arith(per_level=0)
    with pytest.raises(GapbenchError, match="no option 'level'"):
        Arith(level="add1")


def test_custom_level_replaces_the_ladder():
    task = Arith(digits="3", operands="3", ops="*+")  # strings as from the command line
    assert task.options["digits"] == 3 and task.options["ops"] == "+*"
    docs = task.docs("test")
    assert len(docs) == 12
    assert {d.meta["level"] for d in docs} == {"d3x3+*"}
    assert all(d.meta["difficulty"] is None for d in docs)
    assert docs[0].doc_id == "d3x3+*-0"
    for doc in docs:
        tokens = expr(doc).split()
        assert [len(t) for t in tokens[::2]] == [3, 3, 3]
        assert set(tokens[1::2]) <= {"+", "*"}
        assert doc.target == str(eval(expr(doc)))
    prompt = task.generation_prompt(docs[0])
    shots = re.findall(r"Q: What is (.+)\?\nA: (-?\d+)\n\n", prompt)
    assert len(shots) == 4 and all(len(e.split()) == 5 for e, _ in shots)


def test_custom_level_defaults_and_validation():
    docs = Arith(digits=2, per_level=5).docs("test")
    assert {d.meta["level"] for d in docs} == {"d2x2+"}
    with pytest.raises(GapbenchError, match="needs arith.digits"):
        Arith(ops="-")
    with pytest.raises(GapbenchError, match="arith.ops"):
        Arith(digits=2, ops="/")
    with pytest.raises(GapbenchError, match="arith.digits"):
        Arith(digits="two")
    with pytest.raises(GapbenchError, match="arith.operands"):
        Arith(digits=2, operands=1)


def test_too_many_per_level_for_a_sampled_level_is_refused():
    with pytest.raises(GapbenchError, match="at most"):
        Arith(digits=2, operands=3, ops="+", per_level=100_000)


# --- prompts ----------------------------------------------------------------------------


def test_prompt_shape():
    task = Arith(levels="add2", per_level=3)
    doc = task.docs("test")[0]
    prompt = task.generation_prompt(doc)
    assert prompt.endswith(f"Q: {doc.question}\nA:")
    shots = re.findall(r"Q: What is (\d+ \+ \d+)\?\nA: (\d+)\n\n", prompt)
    assert len(shots) == 4
    assert prompt == "".join(f"Q: What is {e}?\nA: {a}\n\n" for e, a in shots) + f"Q: {doc.question}\nA:"
    for e, a in shots:
        assert int(a) == eval(e)
        assert split_of(e) == "train"
    assert Arith(levels="add2", num_fewshot=0).generation_prompt(doc) == f"Q: {doc.question}\nA:"


@pytest.mark.parametrize("split", ["test", "train"])
def test_fewshot_never_a_doc_of_the_run(split):
    task = Arith(levels="add1+mul1+add2+mul21", per_level=40, num_fewshot=6)
    docs = task.docs(split)
    questions = {d.question for d in docs}
    counts = {}
    for doc in docs:
        shots = re.findall(r"Q: (What is .+\?)\nA:", task.generation_prompt(doc))[:-1]
        assert doc.question not in shots
        assert not set(shots) & questions
        counts[doc.meta["level"]] = len(shots)
    assert counts["add2"] == counts["mul21"] == 6
    if split == "test":
        assert counts["add1"] == counts["mul1"] == 6


def test_fewshot_fixed_across_seeds_for_test():
    a = Arith(levels="add3", seed=1)
    b = Arith(levels="add3", seed=2)
    pa = a.generation_prompt(a.docs("test")[0])
    pb = b.generation_prompt(b.docs("test")[0])
    assert pa.rsplit("Q:", 1)[0] == pb.rsplit("Q:", 1)[0]


def test_tiny_train_level_runs_out_of_fewshot_without_reusing_docs():
    task = Arith(levels="mul1", per_level=1000)
    docs = task.docs("train")
    prompt = task.generation_prompt(docs[0])
    assert prompt == f"Q: {docs[0].question}\nA:"  # the whole train side is docs: no example is left


# --- extraction and grading ---------------------------------------------------------------


@pytest.mark.parametrize(
    "response, expected",
    [
        (" 82", 82),
        ("82", 82),
        ("= 82", 82),
        ("82.", 82),
        ("$82", 82),
        ("-14", -14),
        ("\u221214", -14),  # unicode minus
        ("The answer is \u221214.", -14),
        ("1,234", 1234),
        ("1, 2", 1),
        ("82 apples", 82),
        ("The answer is 82", 82),
        ("37 + 45 = 82", 82),
        ("37+45=82.", 82),
        ("3 - 5 = -2", -2),
        ("12 * 3 = 30 + 6 = 36", 36),
        ("82.0", 82),
        ("82.5", None),
        ("", None),
        ("   ", None),
        ("I don't know", None),
        ("A: 7\nQ: What is 3 + 5?\nA: 8", 7),
        ("\n  56\n", 56),
        ("37 + 45 =", None),
        ("37 + 45 =\n82", None),
        ("-$14", -14),
        ("**1,234,567**", 1234567),
        ("12,34", 12),
        ("+5", 5),
    ],
)
def test_extract_integer(response, expected):
    assert extract_integer(response) == expected


def test_extract_answer_keeps_non_integers():
    assert extract_answer("82.5") == "82.5"
    assert extract_answer("82.50 dollars") == "82.5"
    assert extract_answer("-0") == "0"
    assert extract_answer("1,200") == "1200"
    assert extract_answer("nothing") is None


def test_grade():
    task = Arith(levels="sub2", per_level=5)
    doc = Doc("sub2-0", "What is 31 - 45?", "-14", {"level": "sub2", "difficulty": 3})
    g = task.grade(doc, " -14")
    assert (g.g, g.answer) == (1, "-14")
    assert task.grade(doc, "31 - 45 = \u221214").g == 1
    g = task.grade(doc, " 14")
    assert (g.g, g.answer) == (0, "14")
    g = task.grade(doc, " -14.5")
    assert (g.g, g.answer) == (0, "-14.5")
    g = task.grade(doc, " no idea")
    assert (g.g, g.answer) == (0, None)
    assert task.grade(doc, "-14.0").g == 1


def test_grade_every_doc_with_its_target():
    task = small(per_level=5)
    for doc in task.docs("test"):
        assert task.grade(doc, f" {doc.target}\n").g == 1
        assert task.grade(doc, f" {int(doc.target) + 1}").g == 0


def test_show_response_is_the_graded_line():
    task = Arith()
    doc = Doc("add2-0", "What is 37 + 45?", "82", {"level": "add2", "difficulty": 2})
    assert task.show_response(doc, "  82  \nQ: What is 1 + 1?") == "82"
    assert task.show_response(doc, "\n 37 + 45 = 82\n") == "37 + 45 = 82"
    assert task.show_response(doc, "") == ""


# --- verification ---------------------------------------------------------------------------


def test_verification_examples():
    task = Arith()
    examples = task.verification_examples()
    assert len(examples) == 4
    assert sum(e.correct for e in examples) == 2
    assert task.verification_question() == "Is the proposed answer correct?"
    for e in examples:
        m = QUESTION.match(e.question)
        assert m
        value = eval(m.group(1))
        assert (int(e.response) == value) == e.correct
        assert str(value) in e.rationale  # the rationale recomputes the result
        assert 1 <= e.score <= 10
        assert (e.score >= 6) == e.correct
        assert e.response == task.show_response(None, e.response)
        # an expression no level generates: operand digit counts fit no level of the ladder
        digits = tuple(len(t) for t in m.group(1).split()[::2])
        ops = set(m.group(1).split()[1::2])
        assert not any(level.digits == digits and ops <= set(level.ops) for level in LEVELS.values())


def test_verification_examples_not_among_docs():
    questions = {e.question for e in Arith().verification_examples()}
    for seed in (0, 1):
        task = small(seed=seed, per_level=40)
        assert not questions & {d.question for d in task.docs("test") + task.docs("train")}


def test_level_space_size():
    assert LEVELS["add1"].space_size() == 100
    assert LEVELS["mul21"].space_size() == 90 * 10
    assert LEVELS["mix3"].space_size() == 90**3 * 9
    assert Level("x", (1, 1, 1), "+-", "").space_size() == 1000 * 4


def test_generation_pinned_across_versions():
    """Doc ids are stable across runs only if the same options give the same problems on
    every machine and Python version: pin a few (these change only with ``version``)."""
    assert [d.question for d in Arith(levels="add2", per_level=2).docs("test")] == [
        "What is 84 + 70?",
        "What is 79 + 13?",
    ]
    assert Arith(levels="mix3", per_level=1).docs("test")[0].question == "What is 13 + 27 - 90?"
    assert Arith(levels="add3", per_level=1).docs("train")[0].question == "What is 299 + 409?"
    assert [split_of(e) for e in ("37 + 45", "4 + 9", "12 + 34 * 56", "100 + 200")] == [
        "train",
        "test",
        "test",
        "train",
    ]
    assert (split_size(LEVELS["add1"], "test"), split_size(LEVELS["mul1"], "test")) == (46, 52)
