"""Sudoku: the solver, generation, splits, grid parsing and the rule-based grader."""

from __future__ import annotations

import random
import time

import pytest

from gapbench.harness.errors import GapbenchError
from gapbench.tasks.base import Doc
from gapbench.tasks.sudoku import (
    Sudoku,
    all_grids_4x4,
    compact,
    count_solutions,
    example_puzzles,
    first_violation,
    generate_puzzle,
    is_valid_solution,
    parse_grid,
    read_puzzle,
    render_grid,
    solve,
)

SOLUTION = [[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]]
PUZZLE = [[1, 0, 0, 4], [0, 4, 0, 0], [0, 0, 4, 0], [4, 0, 0, 1]]
EMPTY4 = [[0] * 4 for _ in range(4)]
EMPTY9 = [[0] * 9 for _ in range(9)]


# --- solver and generation ------------------------------------------------------
def test_all_grids_4x4():
    grids = all_grids_4x4()
    assert len(grids) == 288
    assert len({compact(g) for g in grids}) == 288
    assert all(is_valid_solution(g, EMPTY4, 4) for g in grids)


def test_solve_limits_and_contradictions():
    assert len(solve(EMPTY4, 4, limit=5)) == 5
    assert count_solutions(EMPTY4, 4, limit=1000) == 288
    assert solve([[1, 1, 0, 0]] + EMPTY4[1:], 4) == []  # two 1s in a row
    assert solve(SOLUTION, 4) == [SOLUTION]
    with pytest.raises(ValueError):
        solve([[5, 0, 0, 0]] + EMPTY4[1:], 4)


def test_generate_puzzle_4x4_unique_and_minimal():
    rng = random.Random(7)
    for _ in range(20):
        puzzle, solution = generate_puzzle(rng, 4)
        assert solve(puzzle, 4) == [solution]
        for r in range(4):  # minimal: no clue can go
            for c in range(4):
                if puzzle[r][c]:
                    fewer = [row[:] for row in puzzle]
                    fewer[r][c] = 0
                    assert count_solutions(fewer, 4) == 2


def test_generate_puzzle_9x9_unique_and_fast():
    rng = random.Random(3)
    start = time.perf_counter()
    for _ in range(3):
        puzzle, solution = generate_puzzle(rng, 9)
        assert solve(puzzle, 9) == [solution]
        assert is_valid_solution(solution, puzzle, 9)
        assert 17 <= sum(v != 0 for row in puzzle for v in row) < 40
    assert time.perf_counter() - start < 6.0


def test_docs_4x4_cover_every_grid_once_with_unique_puzzles():
    docs = Sudoku().docs()
    assert len(docs) == 288
    assert docs[0].doc_id == "test-0" and docs[-1].doc_id == "test-287"
    assert {compact(d.target) for d in docs} == {compact(g) for g in all_grids_4x4()}
    assert len({d.question for d in docs}) == 288
    for doc in docs:
        puzzle = read_puzzle(doc.question, 4)
        assert solve(puzzle, 4) == [doc.target]
        assert doc.meta == {"size": 4, "clues": sum(v != 0 for row in puzzle for v in row)}


def test_docs_9x9():
    docs = Sudoku(size="9", count="2").docs()  # options as the command line gives them
    assert len(docs) == 2
    for doc in docs:
        assert solve(read_puzzle(doc.question, 9), 9) == [doc.target]
        assert doc.meta["size"] == 9


def test_generation_is_reproducible_and_seeded():
    a = Sudoku(count=20).docs("test")
    assert a == Sudoku(count=20).docs("test")
    assert a[:5] == Sudoku(count=5).docs("test")  # a smaller count is a prefix
    assert [d.question for d in a] != [d.question for d in Sudoku(count=20, seed=1).docs("test")]
    assert Sudoku(size=9, count=1).docs() == Sudoku(size=9, count=1).docs()


def test_train_test_and_examples_are_disjoint():
    examples = {render_grid(p) for p, _ in example_puzzles(4)}
    test = {d.question for d in Sudoku().docs("test")}
    for seed in (0, 1):
        train = {d.question for d in Sudoku(seed=seed).docs("train")}
        assert len(train) == 288
        assert not test & train
        assert not examples & train
    assert not examples & test
    nine_test = {d.question for d in Sudoku(size=9, count=3).docs("test")}
    nine_train = {d.question for d in Sudoku(size=9, count=3).docs("train")}
    assert len(nine_test) == 3 and not nine_test & nine_train


def test_options_are_checked():
    with pytest.raises(GapbenchError, match="size must be 4 or 9"):
        Sudoku(size=5)
    with pytest.raises(GapbenchError, match="count"):
        Sudoku(count=0)
    with pytest.raises(GapbenchError, match="num_fewshot"):
        Sudoku(num_fewshot=100)
    with pytest.raises(GapbenchError, match="no option 'difficulty'"):
        Sudoku(difficulty="hard")


# --- text -------------------------------------------------------------------
def test_render_and_read_round_trip():
    assert render_grid(PUZZLE) == "1 . . 4\n. 4 . .\n. . 4 .\n4 . . 1"
    assert read_puzzle(render_grid(PUZZLE), 4) == PUZZLE


ROWS = "1 2 3 4\n3 4 1 2\n2 1 4 3\n4 3 2 1"
WRONG = "1 2 3 4\n3 4 1 2\n4 3 2 1\n2 1 4 3"


@pytest.mark.parametrize(
    "text",
    [
        ROWS,
        "\n" + ROWS + "\n",
        "1234\n3412\n2143\n4321",
        f"Puzzle:\n{render_grid(PUZZLE)}\nSolution:\n{ROWS}",
        f"{render_grid(PUZZLE)}\n{ROWS}",  # echo straight before the answer
        f"First try:\n{WRONG}\nThat breaks a box. Corrected:\n{ROWS}\nDone.",
        f"{WRONG}\n\n{ROWS}",  # two grids, blank line between: the last one
        "| C1 | C2 | C3 | C4 |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |\n| 3 | 4 | 1 | 2 |\n| 2 | 1 | 4 | 3 |\n| 4 | 3 | 2 | 1 |",
        "| 1 | 2 | 3 | 4 |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |\n| 3 | 4 | 1 | 2 |\n| 2 | 1 | 4 | 3 |\n| 4 | 3 | 2 | 1 |",
        "1234341221434321",
        "The answer is 1234/3412/2143/4321.",
        "[[1, 2, 3, 4],\n [3, 4, 1, 2],\n [2, 1, 4, 3],\n [4, 3, 2, 1]]",
        "[[1,2,3,4],[3,4,1,2],[2,1,4,3],[4,3,2,1]]",
        "1,2,3,4\n3,4,1,2\n2,1,4,3\n4,3,2,1",
        "Let me think step by step.\nHere is the solution:\n\n1 2 | 3 4\n3 4 | 1 2\n----+----\n2 1 | 4 3\n4 3 | 2 1\n\nEvery row, column and box has 1-4.",
        "Row 1: 1 2 3 4\nRow 2: 3 4 1 2\nRow 3: 2 1 4 3\nRow 4: 4 3 2 1",
        "Solution: 1 2 3 4\n3 4 1 2\n2 1 4 3\n4 3 2 1",
        "**1 2 3 4**\n**3 4 1 2**\n**2 1 4 3**\n**4 3 2 1**",
        "```\n1 2 3 4\n3 4 1 2\n2 1 4 3\n4 3 2 1\n```",
        "1 2 3 4\n3 4 1 2\n2 1 4 3\n4 3 2 1.",
    ],
)
def test_parse_grid_reads_the_last_grid(text):
    assert parse_grid(text, 4) == SOLUTION


@pytest.mark.parametrize(
    "text",
    [
        "I cannot solve this puzzle.",
        "",
        "1 2 3 4\n3 4 1 2\n2 1 4 3",  # three rows
        render_grid(PUZZLE),  # only the echoed puzzle
        "1 2 3 4\n3 4 1 2\nand then\n2 1 4 3\n4 3 2 1",  # prose splits the rows
        "1 2 3\n4 5 6",
    ],
)
def test_parse_grid_finds_nothing(text):
    assert parse_grid(text, 4) is None


def test_parse_grid_9x9():
    _, solution = generate_puzzle(random.Random(11), 9)
    assert parse_grid("Solution:\n" + render_grid(solution) + "\nDone.", 9) == solution
    line = "".join(str(v) for row in solution for v in row)
    assert parse_grid(f"My answer: {line}", 9) == solution
    boxed = "\n".join(
        " | ".join(" ".join(map(str, row[i:i + 3])) for i in (0, 3, 6)) + ("\n------+-------+------" if r in (2, 5) else "")
        for r, row in enumerate(solution)
    )
    assert parse_grid(boxed, 9) == solution
    assert parse_grid(ROWS, 9) is None


# --- rules and grading ----------------------------------------------------------
def test_is_valid_solution():
    assert is_valid_solution(SOLUTION, PUZZLE, 4)
    row_duplicate = [[1, 2, 3, 3]] + SOLUTION[1:]
    assert not is_valid_solution(row_duplicate, EMPTY4, 4)
    assert "row 1 (1233) contains 3 twice" == first_violation(row_duplicate, EMPTY4, 4)
    columns_broken = [[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [3, 4, 1, 2]]  # rows fine, column 1 is 1323
    assert first_violation(columns_broken, EMPTY4, 4) == "column 1 (1323) contains 3 twice"
    boxes_broken = [[1, 2, 3, 4], [2, 3, 4, 1], [3, 4, 1, 2], [4, 1, 2, 3]]  # rows and columns fine
    assert first_violation(boxes_broken, EMPTY4, 4).startswith("box 1")
    assert not is_valid_solution([[1, 2, 3, 4]] * 3, EMPTY4, 4)
    assert not is_valid_solution([[1, 2, 3, 5]] + SOLUTION[1:], EMPTY4, 4)


def _doc(puzzle, solution) -> Doc:
    return Doc(doc_id="test-0", question=render_grid(puzzle), target=solution, meta={"size": 4, "clues": 6})


def test_grade_valid_solution():
    grade = Sudoku().grade(_doc(PUZZLE, SOLUTION), "\n" + ROWS + "\n\n")
    assert grade.g == 1 and grade.answer == "1234/3412/2143/4321"


def test_grade_row_duplicate():
    grade = Sudoku().grade(_doc(PUZZLE, SOLUTION), "1 2 3 3\n3 4 1 2\n2 1 4 3\n4 3 2 1")
    assert grade.g == 0 and grade.answer == "1233/3412/2143/4321"


def test_grade_valid_grid_that_breaks_a_clue():
    other = [[2, 1, 4, 3], [4, 3, 2, 1], [1, 2, 3, 4], [3, 4, 1, 2]]
    assert is_valid_solution(other, EMPTY4, 4)  # a valid grid by itself...
    puzzle = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert not is_valid_solution(other, puzzle, 4)  # ...that changes the given 1
    assert Sudoku().grade(_doc(puzzle, SOLUTION), render_grid(other)).g == 0


def test_grade_accepts_any_valid_grid_not_only_the_target():
    puzzle = [[1, 0, 0, 0]] + EMPTY4[1:]  # many solutions: the rule decides, not the target
    assert Sudoku().grade(_doc(puzzle, SOLUTION), "1 3 2 4\n2 4 1 3\n3 1 4 2\n4 2 3 1").g == 1


def test_grade_unparseable():
    grade = Sudoku().grade(_doc(PUZZLE, SOLUTION), "The puzzle has no solution.")
    assert grade.g == 0 and grade.answer is None


def test_grade_every_doc_target():
    task = Sudoku(count=30)
    for doc in task.docs():
        assert task.grade(doc, render_grid(doc.target)).g == 1


# --- prompts and verification -------------------------------------------------------
def test_generation_prompt_shape():
    task = Sudoku()
    doc = task.docs()[0]
    prompt = task.generation_prompt(doc)
    assert prompt.startswith("Fill in the grid so that every row, column and 2x2 box contains 1-4 exactly once.")
    assert prompt.endswith(f"\n\nPuzzle:\n{doc.question}\nSolution:")
    assert prompt.count("Puzzle:\n") == 5 and prompt.count("Solution:") == 5
    for puzzle, solution in example_puzzles(4)[:4]:
        assert f"Puzzle:\n{render_grid(puzzle)}\nSolution:\n{render_grid(solution)}\n\n" in prompt
    assert Sudoku(num_fewshot=0).generation_prompt(doc).count("Puzzle:") == 1
    nine = Sudoku(size=9, count=1)
    assert "3x3 box contains 1-9" in nine.generation_prompt(nine.docs()[0])
    assert not any(s in "\n".join(render_grid(solution) for _, solution in example_puzzles(4)) for s in task.stop)


def test_examples_are_fixed_unique_and_independent_of_seed():
    pairs = example_puzzles(4)
    assert pairs == example_puzzles(4)
    assert all(solve(p, 4) == [s] for p, s in pairs)
    assert Sudoku(seed=5).generation_prompt(Sudoku().docs()[0]) == Sudoku().generation_prompt(Sudoku().docs()[0])


@pytest.mark.parametrize("size", [4, 9])
def test_verification_examples(size):
    task = Sudoku(size=size, count=1)
    examples = task.verification_examples()
    assert [e.correct for e in examples] == [True, False, True, False]
    for example in examples:
        puzzle = read_puzzle(example.question, size)
        doc = Doc(doc_id="x", question=example.question, target=None, meta={"size": size, "clues": 0})
        assert task.grade(doc, example.response).g == int(example.correct)
        assert (example.score >= 7) if example.correct else (example.score <= 3)
        assert example.rationale
        assert example.response == task.show_response(doc, example.response)
        assert count_solutions(puzzle, size) == 1
    swapped, relabelled = examples[1], examples[3]
    assert "column" in swapped.rationale and "given" in relabelled.rationale
    relabelled_grid = parse_grid(relabelled.response, size)
    assert is_valid_solution(relabelled_grid, [[0] * size for _ in range(size)], size)
    assert "2x2" in Sudoku().verification_question() and "given" in Sudoku().verification_question()
