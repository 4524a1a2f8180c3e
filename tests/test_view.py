"""The web viewer, checked in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright for Python pointed at the system browser (its pip package brings its own driver, and its
page events give every console message and uncaught error). Runs are real ``gapbench run``s on the
``gapbench-fake`` model. Without Chromium here these tests are skipped; CI installs it (.ci/run)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from boards_support import readme_sections_missing_from_index

from gapbench.harness.cli import main
from gapbench.harness.filters import parse_filter

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GAPBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("GAPBENCH_SCREENSHOTS", "/tmp"))
PAYLOADS = [
    "<script>window.__xss = 'script'</script>",
    '<img src=x onerror="window.__xss = \'img\'">',
    "</script><script>window.__xss = 'close'</script>",
    "</pre></td><svg onload=\"window.__xss='svg'\">",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium here (apt-get install -y chromium; CI's .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install .[test])")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A browser page with every console error and uncaught exception recorded."""

    def __init__(self, browser, path: Path, width: int = 1400):
        self.page = browser.new_page(viewport={"width": width, "height": 1000})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(path.resolve().as_uri())

    def ready(self):
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        return self

    def rows(self) -> list[str]:
        return self.page.eval_on_selector_all("#prompts tbody tr.prompt", "rs => rs.map(r => r.dataset.doc)")

    def count(self) -> str:
        return self.page.inner_text("#count")

    def open(self, doc_id: str) -> None:
        self.page.click(f"#prompts tbody tr.prompt[data-doc='{doc_id}']")
        self.page.wait_for_selector("tr.detail table.samples tbody tr")


def gapbench(*args) -> None:
    assert main([str(a) for a in args]) == 0


def fake_run(out: Path, *extra) -> Path:
    gapbench("run", "--model", "gapbench-fake", "--tasks", "arith", "--limit", 10, "--n", 4, "--out", out, "--n-boot", 50, *extra)
    return out / "arith"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("view") / "run", "--model-args", "arith=0.5", "--verifiers", "mc,cot-binary,tournament,oracle")


@pytest.fixture(scope="module")
def run_page(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "run.html"
    gapbench("view", run_dir, "--out", out)
    return out


def with_ci(block) -> str:
    if block["value"] is None:
        return "n/a"
    ci = block["ci"]
    return f"{block['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_view_prints_the_page_it_wrote_and_the_page_needs_no_network(run_dir, tmp_path, capsys):
    out = tmp_path / "x.html"
    gapbench("view", run_dir, "--out", out)
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page loads nothing from the network"
    assert str(run_dir) not in text and "/tmp/" not in text, "no path of this machine on the page"


def test_the_numbers_on_the_page_are_those_of_results_json(browser, run_dir, run_page):
    results = json.loads((run_dir / "results.json").read_text())
    p = Page(browser, run_page).ready()
    header = p.page.inner_text("table.facts")
    for fact in ("gapbench-fake", "arith", results["run"]["config_hash"], results["filter"], "10 x 4"):
        assert fact in header
    shown = p.page.eval_on_selector_all(
        "table.headline tbody tr",
        "rs => rs.map(r => [r.dataset.verifier, Object.fromEntries([...r.querySelectorAll('td[data-field]')].map(td => [td.dataset.field, td.textContent]))])",
    )
    assert [v for v, _ in shown] == list(results["verifiers"])
    for method, cells in shown:
        b = results["verifiers"][method]
        assert cells["J"] == with_ci(results["generation"]["J"])
        assert cells["J_filtered"] == with_ci(b["J_filtered"])
        assert cells["gap"] == with_ci(b["gap"])
        assert cells["relative_gap"] == with_ci(b["relative_gap"])
        assert cells["auroc"] == ("n/a" if b["verification"]["auroc"] is None else f"{b['verification']['auroc']:.3f}")
    groups = p.page.eval_on_selector_all("table.groups tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    by_level = results["generation"]["by_group"]["level"]
    assert {row[0]: row[2] for row in groups} == {lv: with_ci(x["J"]) for lv, x in by_level.items()}
    assert p.page.locator(".charts svg").count() == 2  # the filter sweep and the calibration, drawn as SVG
    p.page.screenshot(path=str(SHOTS / "gapbench-view-run.png"), full_page=True)
    assert p.errors == []


def test_a_new_numeric_field_of_results_json_shows_up():
    from dataclasses import dataclass, field

    from gapbench.harness.results import Metric, PositionBias, RelativeGap
    from gapbench.harness.view.page import flatten

    @dataclass
    class Later:  # a block as a later results.json might add it
        gap: Metric
        relative_gap: RelativeGap
        position: PositionBias
        ece: float
        label: str
        by_group: dict = field(default_factory=lambda: {"x": 1})
        deep: dict = field(default_factory=lambda: {"k": 3, "pass@k": {"1": 0.5}})

    rows = dict(flatten(Later(Metric(0.25, [0.1, 0.4]), RelativeGap(0.5, None, n_excluded=2), PositionBias(0.1, [0.0, 0.2], matches=7), 0.125, "text")))
    assert rows == {
        "gap": "0.250 [0.100, 0.400]",
        "relative_gap": "0.500 (2 excluded)",
        "position.value": "0.100",  # a block with more than a value and its interval: each number on its own
        "position.matches": "7",
        "ece": "0.125",
        "deep.k": "3",
        "deep.pass@k.1": "0.500",
    }


def test_opening_a_prompt_shows_its_samples_and_every_verifiers_replies(browser, run_dir, run_page):
    samples = [r for r in records(run_dir / "samples.jsonl") if r["doc_id"] == "add1-0"]
    grades = [r for r in records(run_dir / "grades.jsonl") if r["doc_id"] == "add1-0"]
    verdicts = [r for r in records(run_dir / "verdicts.jsonl") if r["doc_id"] == "add1-0"]
    p = Page(browser, run_page).ready()
    p.open("add1-0")
    detail = p.page.locator("tr.detail")
    assert "What is" in detail.locator(".question pre").inner_text()
    rows = detail.locator("table.samples tbody tr")
    assert rows.count() == 4
    for i in range(4):
        cells = rows.nth(i).locator("td")
        assert cells.nth(1).inner_text() == samples[i]["response"]
        assert cells.nth(2).inner_text() == grades[i]["answer"]
        assert cells.nth(3).inner_text() == str(grades[i]["g"])
    # every details element opened: the CoT texts, the MC log-probabilities, the tournament's matches
    p.page.eval_on_selector_all("tr.detail details", "ds => ds.forEach(d => d.open = true)")
    text = detail.inner_text()
    cot = [r["reply"] for r in verdicts if r["method"] == "cot-binary"]
    assert cot and all(line.strip() in text for reply in cot for line in reply.splitlines() if line.strip())
    mc = next(r for r in verdicts if r["method"] == "mc" and r["key"] == "0:Correct")
    assert f"Correct: log-probability {mc['reply']:.3f}" in text
    assert "round 1 vs #1: P(this one) = " in text and ("won" in text and "lost" in text)
    p.page.click("#prompts tbody tr.prompt[data-doc='add1-0']")  # a second click closes it
    assert p.page.locator("tr.detail").count() == 0
    assert p.errors == []


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_opening_a_prompt_shows_the_exact_prompts_the_model_read(browser, run_dir, run_page):
    from gapbench.tasks import TASKS

    results = json.loads((run_dir / "results.json").read_text())
    task = TASKS.get("arith")(**results["task"]["options"])
    doc = next(d for d in task.docs("test", None, None) if d.doc_id == "add1-0")
    want = "".join(task.generation_turns(doc))
    samples = [r for r in records(run_dir / "samples.jsonl") if r["doc_id"] == "add1-0"]
    assert {s["prompt_digest"] for s in samples} == {digest(want)}  # the run stored the digest of what the model read
    judged = {(r["method"], r["key"]): r["judged"] for r in records(run_dir / "verdicts.jsonl") if r["doc_id"] == "add1-0"}
    p = Page(browser, run_page).ready()
    assert "generation: 10 prompts: 10 match" in p.page.inner_text(".prompts-summary")
    p.open("add1-0")
    gen = p.page.locator("tr.detail .prompt.gen")
    assert gen.locator(".status").inner_text().startswith("\u2713")
    assert gen.locator("pre.tail").is_visible() and not gen.locator("details.head pre").is_visible()  # the head starts collapsed
    p.page.eval_on_selector_all("tr.detail details", "ds => ds.forEach(d => d.open = true)")
    assert gen.locator("details.head pre").is_visible()
    shown = gen.locator("details.head pre").inner_text() + gen.locator("pre.tail").inner_text()
    assert shown == want  # the exact text, few-shot head and question
    heads = {}
    for h in p.page.locator("tr.detail .runcol > details.head").all():
        for m in h.locator("summary").inner_text().split(" verification prompts")[0].split(", "):
            heads[m] = h.locator("pre").inner_text()
    assert set(heads) == {"mc", "cot-binary", "tournament"}
    rows = p.page.locator("tr.detail table.samples tbody tr")
    for i in range(4):
        for m, key in (("mc", f"{i}:Correct"), ("cot-binary", f"{i}:0")):
            box = rows.nth(i).locator(f"details.prompt.ver[data-method='{m}']")
            assert box.is_visible() and box.locator("summary").inner_text() == "prompt \u2713"
            assert digest(heads[m] + box.locator("pre.tail").inner_text()) == judged[(m, key)]  # what the verdict judged
    pairs = p.page.locator("tr.detail details.prompt.ver[data-method='tournament']")
    assert pairs.count() >= 1
    assert digest(heads["tournament"] + pairs.first.locator("pre.tail").inner_text()) in {v for (m, _), v in judged.items() if m == "tournament"}
    assert p.errors == []


def test_a_prompt_that_differs_from_what_the_model_read_is_said_plainly(browser, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns(".lock", "view.html"))
    samples = records(run / "samples.jsonl")
    for s in samples:
        if s["doc_id"] == "mul1-0":
            s["prompt_digest"] = "0" * 16
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    verdicts = records(run / "verdicts.jsonl")
    for v in verdicts:
        if v["doc_id"] == "add2-1" and v["method"] == "cot-binary" and v["key"] == "2:0":
            v["judged"] = "f" * 16
    (run / "verdicts.jsonl").write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    page = tmp_path / "differs.html"
    gapbench("view", run, "--out", page)
    p = Page(browser, page).ready()
    top = p.page.locator("p.prompts-warning").all_inner_texts()
    assert any("1 generation prompt rebuilt here differs" in w and "mul1-0" in w for w in top)
    assert any("1 cot-binary verification prompt rebuilt here differs" in w and "add2-1" in w for w in top)
    p.page.select_option("#f-outcome", "pd")
    assert sorted(p.rows()) == ["add2-1", "mul1-0"]
    p.open("mul1-0")
    assert "DIFFERS from the text the model read (stored digest 0000000000000000" in p.page.inner_text("tr.detail .prompt.gen .status")
    p.page.click("#prompts tbody tr.prompt[data-doc='mul1-0']")
    p.open("add2-1")
    rows = p.page.locator("tr.detail table.samples tbody tr")
    marks = [rows.nth(i).locator("details.prompt.ver[data-method='cot-binary'] summary").inner_text() for i in range(4)]
    assert marks[2] == "prompt \u2717 DIFFERS from what the model read" and all(m == "prompt \u2713" for k, m in enumerate(marks) if k != 2)
    assert p.page.locator("tr.detail .prompt.gen .status").inner_text().startswith("\u2713")
    assert p.errors == []


def test_a_run_without_digests_shows_its_prompts_unchecked(run_dir, tmp_path):
    from gapbench.harness.view.collect import load_view

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns(".lock", "view.html"))
    for name, field in (("samples.jsonl", "prompt_digest"), ("verdicts.jsonl", "judged")):
        rows = records(run / name)
        (run / name).write_text("".join(json.dumps({k: v for k, v in r.items() if k != field}) + "\n" for r in rows))
    prompts = load_view(run).prompts
    assert prompts.summary[0] == "generation: 10 prompts: 10 not checked (samples.jsonl holds no digest of them)"
    assert {p.status for p in prompts.generation.values()} == {"unchecked"} and prompts.warnings == []
    assert all(p.status == "unchecked" for per_doc in prompts.verification["mc"].values() for p in per_doc)
    results = json.loads((run / "results.json").read_text())
    results["task"]["verification_prompts"] = "3"  # unchecked, and made with older verification prompts: said
    (run / "results.json").write_text(json.dumps(results))
    from gapbench.verifiers.prompts import VERSION

    assert load_view(run).prompts.warnings == [f"The verification prompts are version {VERSION} here, the run used version 3."]


def test_filters_narrow_the_rows(browser, run_dir, run_page):
    g = {}
    for r in records(run_dir / "grades.jsonl"):
        g.setdefault(r["doc_id"], []).append(r["g"])
    lp = {}
    for r in records(run_dir / "verdicts.jsonl"):
        if r["method"] == "mc":
            lp[(r["doc_id"], r["key"])] = r["reply"]
    rule = parse_filter(json.loads((run_dir / "results.json").read_text())["filter"])
    kept_wrong = []
    for d, gs in g.items():  # u = P(Correct) from the two log-probabilities, by hand
        u = [1 / (1 + math.exp(lp[(d, f"{i}:Incorrect")] - lp[(d, f"{i}:Correct")])) for i in range(len(gs))]
        if any(k and not x for k, x in zip(rule.keep(u), gs)):
            kept_wrong.append(d)
    p = Page(browser, run_page).ready()
    assert len(p.rows()) == 10 and p.count() == "10 of 10 prompts"
    p.page.select_option("#f-group", label="level = add2")
    assert p.rows() == ["add2-0", "add2-1"]
    p.page.select_option("#f-group", "")
    p.page.select_option("#f-verifier", "mc")
    p.page.select_option("#f-outcome", "kw")
    assert sorted(p.rows()) == sorted(kept_wrong) and 0 < len(kept_wrong) < 10
    p.page.select_option("#f-outcome", "")
    p.page.fill("#f-text", "mul21")
    assert p.rows() == ["mul21-0", "mul21-1"]
    p.page.fill("#f-text", "")
    p.page.click("#prompts thead th:has-text('J(f|x)')")  # sort ascending by J(f|x)
    order = [sum(g[d]) / len(g[d]) for d in p.rows()]
    assert order == sorted(order) and order[0] < order[-1]
    p.page.click("#prompts thead th:has-text('J(f|x)')")
    assert [sum(g[d]) / len(g[d]) for d in p.rows()] == sorted(order, reverse=True)
    assert p.errors == []


def test_model_output_and_data_run_nothing(browser, tmp_path):
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    rows = [{"question": f"{x} How many?", "answer": "It is 4.\n#### 4"} for x in PAYLOADS]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "train.jsonl").write_text("".join(json.dumps({"question": f"q{i}", "answer": f"#### {i}"}) + "\n" for i in range(6)))
    replies = tmp_path / "replies.json"
    reply = " ".join(PAYLOADS) + " The answer is 4."
    replies.write_text(json.dumps([{"reply": reply + "\nVerdict: Correct"}]))
    run = tmp_path / "run"
    gapbench(
        "run", "--model", "gapbench-fake", "--model-args", f"replies={replies}", "--tasks", "gsm8k", "--data-dir", tmp_path / "data",
        "--n", 2, "--verifiers", "mc,cot-binary", "--out", run, "--n-boot", 20, "--max-gen-toks", 200,
    )
    page = tmp_path / "xss.html"
    gapbench("view", run / "gsm8k", "--data-dir", tmp_path / "data", "--out", page)
    p = Page(browser, page).ready()
    for doc in p.rows():
        p.open(doc)
    p.page.eval_on_selector_all("tr.detail details", "ds => ds.forEach(d => d.open = true)")
    p.page.wait_for_timeout(200)
    assert p.page.evaluate("window.__xss") is None
    assert p.page.locator("img[src=x], svg[onload]").count() == 0
    text = p.page.inner_text("#browser")
    for x in PAYLOADS:
        assert x in text  # shown as text, questions and responses alike
    assert p.page.inner_text("table.samples tbody tr td.resp pre >> nth=0").startswith("<script>")
    prompts = p.page.locator(".prompt pre.tail").all_inner_texts()
    for x in PAYLOADS:  # the generation and verification prompts hold the questions and responses, as text
        assert any(x in t for t in prompts)
    assert p.errors == []


def test_two_runs_side_by_side_list_the_flipped_prompts_first(browser, tmp_path):
    a = fake_run(tmp_path / "a", "--model-args", "arith=0.3", "--verifiers", "mc")
    b = fake_run(tmp_path / "b", "--model-args", "arith=0.7,seed=other", "--verifiers", "mc")

    def right(run):
        g = {}
        for r in records(run / "grades.jsonl"):
            g.setdefault(r["doc_id"], []).append(r["g"])
        return {d: sum(x) / len(x) >= 0.5 for d, x in g.items()}

    ra, rb = right(a), right(b)
    flipped = [d for d in ra if ra[d] != rb[d]]
    assert flipped, "the two fake models must disagree somewhere for this test to mean anything"
    page = tmp_path / "two.html"
    gapbench("view", a, b, "--out", page)
    p = Page(browser, page).ready()
    rows = p.rows()
    assert rows[: len(flipped)] == flipped and sorted(rows) == sorted(ra)
    marks = p.page.eval_on_selector_all("#prompts tbody tr.prompt", "rs => rs.map(r => r.lastChild.textContent)")
    for d, mark in zip(rows, marks):
        assert mark == ("· ↗" if d in flipped and rb[d] else "· ↘" if d in flipped else "· ·")
    p.page.select_option("#f-outcome", "flip")
    assert p.rows() == flipped
    p.open(flipped[0])
    assert p.page.locator("tr.detail .runcol table.samples").count() == 2  # both runs' samples, side by side
    assert p.errors == []


def test_a_board_page_links_each_row_and_is_rebuilt_byte_identically(browser, tmp_path, monkeypatch):
    from gapbench.leaderboards.builder import build
    from gapbench.leaderboards.check import check_board

    monkeypatch.chdir(tmp_path)  # runs record their folders relative to where they ran: no machine path on the board
    base = fake_run(tmp_path / "base", "--model-args", "arith=0.5", "--verifiers", "mc")
    board = tmp_path / "board"
    built = build([base], board, "demo")
    page = board / "runs" / f"{built.entries[0].slug}.html"
    assert page.is_file()
    index = (board / "index.html").read_text()
    assert f'href="runs/{page.name}"' in index and str(tmp_path) not in index
    assert check_board(board).ok  # rebuilt from results/ alone, linking the run pages the board holds
    p = Page(browser, board / "index.html")
    p.page.wait_for_load_state("load")
    gap = json.loads((base / "results.json").read_text())["verifiers"]["mc"]["gap"]
    assert with_ci(gap) in p.page.inner_text("table.board")
    widths = p.page.eval_on_selector_all(".charts img", "is => is.map(i => i.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths)  # the plots beside it load
    p.page.screenshot(path=str(SHOTS / "gapbench-view-board.png"), full_page=True)
    p.page.click(f"a[href='runs/{page.name}']")
    p.page.wait_for_selector("body[data-ready='1']")
    assert p.page.locator("table.headline").count() == 1
    assert p.errors == []
    (board / "index.html").write_text(index.replace("run page", "edited"))
    report = check_board(board)
    assert not report.ok and any("index.html" in f for f in report.failures)


def test_a_committed_board_page_links_the_recorded_results_it_holds():
    for board in sorted((ROOT / "leaderboards").glob("*/leaderboard.json")):
        index = (board.parent / "index.html").read_text()
        links = re.findall(r'href="([^"]+)"', index)
        rows = [x for x in links if x.startswith(("results/", "runs/")) and x != "results/"]
        assert rows and all((board.parent / x).is_file() for x in rows)
        assert not re.search(r"/(work|root|home|tmp)/", index)
        assert readme_sections_missing_from_index(board.parent) == []  # index.html has every section of its README


def test_the_paper_scale_run_opens_and_filters_within_3_seconds(browser, run_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("view_scale", ROOT / "benchmarks" / "view_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    big = bench.scale_run(run_dir, tmp_path / "big", 1319, 128)
    page = tmp_path / "big.html"
    gapbench("view", big, "--out", page)
    got = bench.measure(browser, page)
    print(f"\n1319 x 128 page: {page.stat().st_size / 1e6:.2f} MB; opened in {got['open_s']:.2f} s, opened and filtered in {got['open_and_filter_s']:.2f} s")
    assert got["rows_before"] == "1319 of 1319 prompts" and got["rows_after"] != got["rows_before"]
    assert got["samples_shown"] == 128 and got["errors"] == []
    assert got["open_and_filter_s"] < 3.0  # the limit


def test_bad_runs_are_one_clear_sentence(run_dir, tmp_path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(run_dir / "results.json", lone / "results.json")
    assert main(["view", str(lone)]) == 2
    assert "no samples.jsonl and grades.jsonl beside it" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    other = tmp_path / "other"
    gapbench("run", "--model", "gapbench-fake", "--tasks", "sudoku", "--limit", 2, "--n", 2, "--out", other, "--n-boot", 10, "--verifiers", "oracle")
    assert main(["view", str(run_dir), str(other / "sudoku"), "--out", str(tmp_path / "x.html")]) == 2
    assert "must share their prompts" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_the_runs_analysis_plots_are_embedded(run_dir, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns(".lock", "view.html"))
    (run / "analysis").mkdir()
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(run / "analysis" / "gap-vs-n.png")
    plt.close(fig)
    (run / "analysis" / "notes.txt").write_text("not a plot")
    gapbench("view", run, "--out", tmp_path / "x.html")
    text = (tmp_path / "x.html").read_text()
    import base64

    png = base64.b64encode((run / "analysis" / "gap-vs-n.png").read_bytes()).decode()
    assert f'alt="gap-vs-n" src="data:image/png;base64,{png}"' in text and "not a plot" not in text


def test_the_calibration_chart_draws_the_bins_results_json_holds(run_dir):
    """The reliability diagram reads results.json's calibration.bins (no second binning in the viewer);
    a results.json from before it held them (schema 1) gets the same bins from harness.metrics."""
    import numpy as np

    from gapbench.harness.metrics import calibration
    from gapbench.harness.results import update
    from gapbench.harness.view.collect import load_view
    from gapbench.harness.view.page import calibration_bins

    view = load_view(run_dir)
    mc = view.results.verifiers["mc"]
    assert mc.calibration is not None and calibration_bins(view, "mc") is mc.calibration.bins
    G = np.array([view.g(d) for d in view.doc_ids], dtype=float)
    U = np.array([view.u["mc"][d] for d in view.doc_ids], dtype=float)
    recomputed = calibration(G, U).bins
    assert [(b.lo, b.count) for b in recomputed] == [(b.lo, b.count) for b in mc.calibration.bins]
    assert [b.mean_u for b in recomputed] == pytest.approx([b.mean_u for b in mc.calibration.bins], abs=1e-12)
    view.results.verifiers["mc"] = update(mc, calibration=None)  # as a schema-1 results.json reads
    assert calibration_bins(view, "mc") == recomputed
