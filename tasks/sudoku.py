"""Sudoku: fill a grid so that every row, column and box holds 1..size once.

The paper's setting is 4x4 (``size=4``): ``count=288`` gives one puzzle for each of
the 288 valid 4x4 grids. ``size=9`` is also supported (``count`` puzzles from
seeded random full grids). Nothing is downloaded: puzzles are generated from a seed.

Generation: start from a solved grid and blank its cells in a random order,
keeping a blank only while the puzzle still has exactly one solution (so every
puzzle is unique-solution and minimal).

Splits: each split draws from its own random stream,
``Random("gapbench/sudoku/{size}/{split}/{seed}")``, and in addition every puzzle
belongs to exactly one of three buckets, ``test``, ``train`` or ``examples``, by a
hash (:func:`bucket_of`): on 4x4 the hash of its clues, since all 288 solution
grids appear in every split; on 9x9 the hash of its solution grid, which is cheaper
(a grid of the wrong bucket is redrawn before any clue is removed) and enough,
because unique-solution puzzles with different solutions differ. A split keeps
only puzzles of its own bucket, and the few-shot and verification examples come
from the ``examples`` bucket through a fixed stream that no option changes. So no
test puzzle equals a train puzzle or an example, whatever the seeds and counts.

Grading is by rule, not by comparison with the target: ``g = 1`` iff
:func:`parse_grid` reads a grid from the response (the last complete grid, since
models often echo the puzzle first) and :func:`is_valid_solution` accepts it.

Prompts are compact (rows of space-separated digits, ``.`` for blanks), so a
solution is a few dozen tokens; ``max_gen_toks`` is left to the harness default.
"""

from __future__ import annotations

import hashlib
import random
import re
from functools import cache
from math import isqrt
from pathlib import Path
from typing import Any

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import register
from gapbench.tasks.base import Doc, Grade, Task, VerificationExample

Grid = list[list[int]]  # 0 marks a blank cell

SIZES = (4, 9)
BLANK = "."
EXAMPLE_POOL = 8  # puzzles of the fixed example stream: few-shot first, verification examples last
MAX_ATTEMPTS = 1000  # removal orders tried for one puzzle before giving up
BUCKETS = ("test", "train", "examples")


# --- grids ------------------------------------------------------------------
def box_side(size: int) -> int:
    """The side of a box: 2 for 4x4, 3 for 9x9."""
    side = isqrt(size)
    if side * side != size or size < 1:
        raise ValueError(f"a Sudoku size must be a square number (4, 9, ...), got {size}")
    return side


def box_index(row: int, col: int, size: int) -> int:
    """The box number (row-major, from 0) of a cell."""
    side = box_side(size)
    return (row // side) * side + col // side


def _check_grid(grid: Grid, size: int, *, blanks: bool) -> None:
    """Raise ValueError unless ``grid`` is size x size of ints in 1..size (0 too with ``blanks``)."""
    low = 0 if blanks else 1
    if len(grid) != size or any(len(row) != size for row in grid):
        raise ValueError(f"expected a {size}x{size} grid")
    for row in grid:
        for value in row:
            if not isinstance(value, int) or not low <= value <= size:
                raise ValueError(f"a {size}x{size} grid holds {low}..{size}, found {value!r}")


def solve(grid: Grid, size: int, limit: int = 2, *, rng: random.Random | None = None) -> list[Grid]:
    """Solutions of ``grid`` (0 = blank), at most ``limit`` of them.

    Backtracking over bitmasks, always filling the blank with the fewest
    candidates. Digits are tried in increasing order, or in an order shuffled by
    ``rng`` when one is given (to draw random full grids). Contradictory clues
    give no solution.
    """
    side = box_side(size)
    _check_grid(grid, size, blanks=True)
    full = (1 << size) - 1
    cells = [list(row) for row in grid]
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    blanks: list[tuple[int, int, int]] = []
    for r in range(size):
        for c in range(size):
            b = (r // side) * side + c // side
            if cells[r][c] == 0:
                blanks.append((r, c, b))
                continue
            bit = 1 << (cells[r][c] - 1)
            if (rows[r] | cols[c] | boxes[b]) & bit:
                return []
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    solutions: list[Grid] = []

    def search(k: int) -> None:
        if k == len(blanks):
            solutions.append([row[:] for row in cells])
            return
        best, best_mask, best_count = k, 0, size + 1
        for i in range(k, len(blanks)):
            r, c, b = blanks[i]
            mask = full & ~(rows[r] | cols[c] | boxes[b])
            count = mask.bit_count()
            if count < best_count:
                best, best_mask, best_count = i, mask, count
                if count <= 1:
                    break
        if best_count == 0:
            return
        blanks[k], blanks[best] = blanks[best], blanks[k]
        r, c, b = blanks[k]
        digits = [d for d in range(1, size + 1) if best_mask >> (d - 1) & 1]
        if rng is not None:
            rng.shuffle(digits)
        for d in digits:
            bit = 1 << (d - 1)
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            cells[r][c] = d
            search(k + 1)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            cells[r][c] = 0
            if len(solutions) >= limit:
                break
        blanks[k], blanks[best] = blanks[best], blanks[k]

    if limit > 0:
        search(0)
    return solutions


def count_solutions(grid: Grid, size: int, limit: int = 2) -> int:
    """How many solutions ``grid`` has, counting up to ``limit``."""
    return len(solve(grid, size, limit))


@cache
def _all_grids_4x4() -> tuple[tuple[tuple[int, ...], ...], ...]:
    empty = [[0] * 4 for _ in range(4)]
    return tuple(sorted(tuple(map(tuple, g)) for g in solve(empty, 4, limit=10**6)))


def all_grids_4x4() -> list[Grid]:
    """Every valid 4x4 Sudoku grid (288), in lexicographic order."""
    return [[list(row) for row in grid] for grid in _all_grids_4x4()]


def random_full_grid(rng: random.Random, size: int) -> Grid:
    """A solved grid drawn by filling an empty grid with shuffled digit orders."""
    return solve([[0] * size for _ in range(size)], size, limit=1, rng=rng)[0]


def generate_puzzle(rng: random.Random, size: int, solution: Grid | None = None) -> tuple[Grid, Grid]:
    """``(puzzle, solution)``: blank the cells of a solved grid in random order,
    keeping each blank only while the puzzle's solution stays unique.

    ``solution`` defaults to one of the 288 grids on 4x4 and to a random full
    grid otherwise.
    """
    if solution is None:
        solution = rng.choice(all_grids_4x4()) if size == 4 else random_full_grid(rng, size)
    _check_grid(solution, size, blanks=False)
    puzzle = [row[:] for row in solution]
    order = [(r, c) for r in range(size) for c in range(size)]
    rng.shuffle(order)
    for r, c in order:
        value, puzzle[r][c] = puzzle[r][c], 0
        if count_solutions(puzzle, size, 2) != 1:
            puzzle[r][c] = value
    return puzzle, [row[:] for row in solution]


def clue_count(puzzle: Grid) -> int:
    """The number of given digits."""
    return sum(v != 0 for row in puzzle for v in row)


def compact(grid: Grid) -> str:
    """A grid on one line, rows joined by ``/``: ``1234/3412/2143/4321``."""
    return "/".join("".join(str(v) if v else BLANK for v in row) for row in grid)


def bucket_of(grid: Grid) -> str:
    """``test``, ``train`` or ``examples``, by a hash of a grid (blanks included)."""
    digest = hashlib.sha256(compact(grid).encode()).digest()
    return BUCKETS[int.from_bytes(digest[:8], "big") % len(BUCKETS)]


def puzzle_bucket(puzzle: Grid, solution: Grid, size: int) -> str:
    """The bucket a puzzle belongs to: by its clues on 4x4, by its solution otherwise."""
    return bucket_of(puzzle if size == 4 else solution)


def make_puzzles(size: int, count: int, stream: str, bucket: str) -> list[tuple[Grid, Grid]]:
    """``count`` distinct ``(puzzle, solution)`` pairs of one bucket, drawn from the
    random stream named ``stream``. On 4x4 the solutions run through the 288 grids
    in a shuffled order (each once per 288 puzzles); on larger sizes they are
    random full grids of the bucket."""
    rng = random.Random(stream)
    grids = all_grids_4x4() if size == 4 else None
    if grids is not None:
        rng.shuffle(grids)
    seen: set[str] = set()
    pairs = []
    for i in range(count):
        for _ in range(MAX_ATTEMPTS):
            if grids is not None:
                solution = grids[i % len(grids)]
            else:
                solution = random_full_grid(rng, size)
                if bucket_of(solution) != bucket:
                    continue
            puzzle, solution = generate_puzzle(rng, size, solution)
            key = compact(puzzle)
            if key not in seen and puzzle_bucket(puzzle, solution, size) == bucket:
                break
        else:
            raise GapbenchError(
                f"sudoku: could not draw puzzle {i + 1} of {count} distinct {size}x{size} puzzles; lower sudoku.count."
            )
        seen.add(key)
        pairs.append((puzzle, solution))
    return pairs


@cache
def _example_puzzles(size: int) -> tuple[tuple[str, str], ...]:
    pairs = make_puzzles(size, EXAMPLE_POOL, f"gapbench/sudoku/{size}/examples", "examples")
    return tuple((compact(p), compact(s)) for p, s in pairs)


def example_puzzles(size: int) -> list[tuple[Grid, Grid]]:
    """The fixed pool of example ``(puzzle, solution)`` pairs for prompts (cached):
    a stream of their own, from the ``examples`` bucket, the same for every seed."""
    return [(from_compact(p), from_compact(s)) for p, s in _example_puzzles(size)]


def from_compact(text: str) -> Grid:
    """The inverse of :func:`compact`."""
    return [[0 if ch == BLANK else int(ch) for ch in row] for row in text.split("/")]


# --- text -------------------------------------------------------------------
def render_grid(grid: Grid) -> str:
    """Rows of space-separated digits, ``.`` for blanks: the format of prompts and docs."""
    return "\n".join(" ".join(str(v) if v else BLANK for v in row) for row in grid)


def read_puzzle(text: str, size: int) -> Grid:
    """The inverse of :func:`render_grid`."""
    grid = [[0 if cell == BLANK else int(cell) for cell in line.split()] for line in text.strip().splitlines()]
    _check_grid(grid, size, blanks=True)
    return grid


_SEP = r"\s|,;:/\\\[\](){}\-+=*`'\"#>_"
_SEPARATOR_LINE = re.compile(rf"[{_SEP}]*")
_ROW_TEXT = re.compile(rf"[{_SEP}0-9.?]*")
_CELL = re.compile(r"[0-9.?]")
_LABEL_COLON = re.compile(r"^[^:\n]*[A-Za-z][^:\n]*:")  # "Solution:", "Row 1:", "**Answer**:"
_LABEL_ROW = re.compile(r"^\W*(?:row|r)\s*\d+\b", re.IGNORECASE)  # "Row 1 1 2 3 4", "R1 1234"


def _strip_label(line: str) -> str:
    match = _LABEL_COLON.match(line) or _LABEL_ROW.match(line)
    return line[match.end():] if match else line


def _digits_grid(digits: list[int], size: int) -> Grid:
    return [digits[i * size:(i + 1) * size] for i in range(size)]


def _inline_grid(line: str, size: int) -> Grid | None:
    """The last run of exactly size*size digits 1-9 inside a line of prose, such as
    ``The answer is 1234/3412/2143/4321.``"""
    runs = re.findall(rf"[1-9](?:[{_SEP}]*[1-9])*", line)
    for run in reversed(runs):
        digits = [int(ch) for ch in run if ch.isdigit()]
        if len(digits) == size * size:
            return _digits_grid(digits, size)
    return None


def parse_grid(text: str, size: int) -> Grid | None:
    """The last complete ``size`` x ``size`` grid written in free text, or None.

    A row is a line holding exactly ``size`` digits 1-9 between separators
    (spaces, ``|``, commas, brackets, markdown table bars), optionally after a label
    such as ``Row 1:``. Consecutive rows form a grid; blank and separator-only
    lines (``---+---``, ``|---|---|``, code fences) may sit between them, while
    prose (a bare label such as ``Corrected:`` included) and rows with blanks
    (``.``, ``0``, ``?``: an echoed puzzle) end a run. A run of more than
    ``size`` rows yields its last ``size`` rows. A single line with exactly
    ``size * size`` digits (``1234341221434321``, ``1234/3412/...``) is a grid too.
    When several grids appear, the last one wins.
    """
    box_side(size)
    found: Grid | None = None
    run: list[list[int]] = []

    def close_run() -> None:
        nonlocal found, run
        if len(run) >= size:
            found = [row[:] for row in run[-size:]]
        run = []

    for line in text.splitlines():
        if _SEPARATOR_LINE.fullmatch(line):
            continue  # blank or separator-only: neither adds nor breaks a run
        rest = _strip_label(line).rstrip().rstrip(".")
        if _ROW_TEXT.fullmatch(rest) and _CELL.search(rest):
            cells = _CELL.findall(rest)
            complete = all(ch in "123456789" for ch in cells)
            if complete and len(cells) == size:
                run.append([int(ch) for ch in cells])
                continue
            close_run()
            if complete and len(cells) == size * size:
                found = _digits_grid([int(ch) for ch in cells], size)
            continue
        close_run()
        inline = _inline_grid(line, size)
        if inline is not None:
            found = inline
    close_run()
    return found


# --- the rules ---------------------------------------------------------------
def _units(grid: Grid, size: int) -> list[tuple[str, list[int]]]:
    """Every row, column and box with its name, in that order."""
    side = box_side(size)
    units = [(f"row {r + 1}", list(grid[r])) for r in range(size)]
    units += [(f"column {c + 1}", [grid[r][c] for r in range(size)]) for c in range(size)]
    units += [
        (f"box {b + 1}", [grid[(b // side) * side + i // side][(b % side) * side + i % side] for i in range(size)])
        for b in range(size)
    ]
    return units


def first_violation(grid: Grid, puzzle: Grid, size: int) -> str | None:
    """A sentence naming the first broken rule, or None when ``grid`` solves ``puzzle``."""
    try:
        _check_grid(grid, size, blanks=False)
    except ValueError as exc:
        return f"the answer is not a valid {size}x{size} grid ({exc})"
    for name, values in _units(grid, size):
        for digit in range(1, size + 1):
            times = values.count(digit)
            if times > 1:
                return f"{name} ({''.join(map(str, values))}) contains {digit} {_times(times)}"
            if times == 0:
                return f"{name} ({''.join(map(str, values))}) is missing {digit}"
    for r in range(size):
        for c in range(size):
            if puzzle[r][c] and grid[r][c] != puzzle[r][c]:
                return f"the given {puzzle[r][c]} at row {r + 1}, column {c + 1} was changed to {grid[r][c]}"
    return None


def _times(n: int) -> str:
    return {2: "twice", 3: "three times"}.get(n, f"{n} times")


def is_valid_solution(grid: Grid, puzzle: Grid, size: int) -> bool:
    """True when every row, column and box of ``grid`` is a permutation of
    1..size and every clue of ``puzzle`` is kept."""
    return first_violation(grid, puzzle, size) is None


def check_report(grid: Grid, puzzle: Grid, size: int) -> str:
    """A short rule-by-rule check of a grid, ending before any verdict."""
    violation = first_violation(grid, puzzle, size)
    if violation is not None:
        return f"Checking the rows, columns and boxes: {violation}."
    groups: dict[str, list[str]] = {"Rows": [], "columns": [], "boxes": []}
    for name, values in _units(grid, size):
        key = {"row": "Rows", "column": "columns", "box": "boxes"}[name.split()[0]]
        groups[key].append("".join(map(str, values)))
    listing = "; ".join(f"{key} {', '.join(values)}" for key, values in groups.items())
    return (
        f"{listing}: each contains 1-{size} exactly once. "
        f"All {clue_count(puzzle)} given digits are kept."
    )


# --- the task ----------------------------------------------------------------
@register
class Sudoku(Task):
    """Generated Sudoku puzzles with unique solutions, graded by the rules (see the module docstring)."""

    name = "sudoku"
    description = "Sudoku (4x4 as in the paper, or 9x9), generated from a seed with unique solutions, graded by rule."
    splits = ("test", "train")
    default_split = "test"
    stop = ("\n\nPuzzle", "Puzzle:", "\n\n\n")
    max_gen_toks = None
    defaults = {"size": 4, "count": 288, "seed": 0, "num_fewshot": 4}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["size"] not in SIZES:
            raise GapbenchError(f"sudoku.size must be 4 or 9, got {self.options['size']!r}.")
        self.require_whole("count", 1)
        self.require_whole("num_fewshot", 0, EXAMPLE_POOL)
        self._docs: dict[str, list[Doc]] = {}

    @property
    def size(self) -> int:
        return self.options["size"]

    def rules(self) -> str:
        """The rule in one sentence."""
        side = box_side(self.size)
        return f"every row, column and {side}x{side} box contains 1-{self.size} exactly once"

    def examples(self) -> list[tuple[Grid, Grid]]:
        """The fixed example puzzles: few-shot from the start, verification from the end."""
        return example_puzzles(self.size)

    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        """Generated puzzles; ``data_dir`` is not used."""
        if split not in self._docs:
            stream = f"gapbench/sudoku/{self.size}/{split}/{self.options['seed']}"
            pairs = make_puzzles(self.size, self.options["count"], stream, split)
            self._docs[split] = [
                Doc(
                    doc_id=f"{split}-{i}",
                    question=render_grid(puzzle),
                    target=solution,
                    meta={"size": self.size, "clues": clue_count(puzzle)},
                )
                for i, (puzzle, solution) in enumerate(pairs)
            ]
        return list(self._docs[split])

    def generation_turns(self, doc: Doc) -> list[str]:
        instruction = f"Fill in the grid so that {self.rules()}. Blanks are shown as '{BLANK}'; keep every given digit."
        shots = [
            part
            for puzzle, solution in self.examples()[: self.options["num_fewshot"]]
            for part in (f"Puzzle:\n{render_grid(puzzle)}\nSolution:", f"\n{render_grid(solution)}\n\n")
        ]
        turns = [*shots, f"Puzzle:\n{doc.question}\nSolution:"]
        turns[0] = f"{instruction}\n\n{turns[0]}"  # the instruction opens the first question
        return turns

    def grade(self, doc: Doc, response: str) -> Grade:
        size = doc.meta["size"]
        grid = parse_grid(response, size)
        if grid is None:
            return Grade(g=0, answer=None)
        puzzle = read_puzzle(doc.question, size)
        return Grade(g=int(is_valid_solution(grid, puzzle, size)), answer=compact(grid))

    def verification_question(self) -> str:
        return f"Is this a correct solution: {self.rules()}, and every given digit is kept?"

    def verification_examples(self) -> list[VerificationExample]:
        """Two correct solutions, one with two cells of a row swapped and one with two
        digits relabelled everywhere (a valid grid that breaks a given digit)."""
        pool = self.examples()[-4:]
        answers = [
            pool[0][1],
            swap_in_row(pool[1][0], pool[1][1]),
            pool[2][1],
            relabel_given(pool[3][0], pool[3][1]),
        ]
        examples = []
        for (puzzle, _), answer in zip(pool, answers):
            correct = is_valid_solution(answer, puzzle, self.size)
            examples.append(
                VerificationExample(
                    question=render_grid(puzzle),
                    response=render_grid(answer),
                    correct=correct,
                    rationale=check_report(answer, puzzle, self.size),
                    score=9 if correct else 2,
                )
            )
        return examples


def swap_in_row(puzzle: Grid, solution: Grid) -> Grid:
    """The solution with two blank cells of one row swapped: rows and givens stay
    right, columns break."""
    grid = [row[:] for row in solution]
    for r, row in enumerate(puzzle):
        blanks = [c for c, v in enumerate(row) if v == 0]
        if len(blanks) >= 2:
            a, b = blanks[:2]
            grid[r][a], grid[r][b] = grid[r][b], grid[r][a]
            return grid
    raise ValueError("no row has two blank cells")


def relabel_given(puzzle: Grid, solution: Grid) -> Grid:
    """The solution with the digit of the first given and the next digit exchanged
    everywhere: still a valid grid, but the givens are broken."""
    first = next(v for row in puzzle for v in row if v)
    other = first % len(solution) + 1
    swap = {first: other, other: first}
    return [[swap.get(v, v) for v in row] for row in solution]
