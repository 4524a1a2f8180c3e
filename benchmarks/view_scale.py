"""The viewer at the paper's scale: a run of 1,319 prompts x 128 samples made from a real run's records,
its page's size, and how long headless Chromium takes to open it and to filter its prompts.

    python benchmarks/view_scale.py RUN_DIR [--prompts 1319] [--n 128] [--out DIR]

RUN_DIR is a run directory (``gapbench run`` writes one): an arith run, or a run of a task whose data
--data-dir holds (GSM8K's test split has the paper's 1,319 prompts). The synthetic run has the task's
first --prompts prompts; its samples, grades and per-sample verdicts (MC, CoT, oracle: every verifier
whose request keys start with the sample index) are RUN_DIR's records, each used in turn (see
:func:`scale_run`), and its results.json is RUN_DIR's with the sizes changed.
Prints the figures; `tests/test_view.py` runs the same on a small fake-model run with the issue's 3 s limit.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_SAMPLE_KEY = re.compile(r"(\d+):(.*)")


def scale_run(src: str | Path, dst: str | Path, n_prompts: int = 1319, n: int = 128, data_dir: str | Path | None = None) -> Path:
    """Write the synthetic run into ``dst``; returns it. Its prompts are the task's first ``n_prompts``
    docs (arith: generated, with more prompts per level; other tasks: loaded from ``data_dir``, e.g.
    GSM8K's 1,319 test prompts); sample i of prompt k copies the source run's record number
    ``(k * n + i) mod (records)`` (response, grade and per-sample verdicts), so every record is used
    and a prompt's samples differ as a real run's do."""
    from gapbench.harness.jsonl import read_jsonl
    from gapbench.tasks import TASKS

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    results = json.loads((src / "results.json").read_text())
    name, options = results["task"]["name"], dict(results["task"]["options"] or {})
    split = results["task"].get("split") or "test"
    if name == "arith":
        options["per_level"] = math.ceil(n_prompts / len(options["levels"].split("+")))
        docs = TASKS.get(name)(**options).docs(split, None, n_prompts)
        while len(docs) < n_prompts:  # a level with few distinct problems (add1) holds fewer: ask the others for more
            options["per_level"] *= 2
            more = TASKS.get(name)(**options).docs(split, None, n_prompts)
            if len(more) == len(docs):
                raise SystemExit(f"the arith levels {options['levels']} hold only {len(docs)} distinct prompts.")
            docs = more
    else:
        docs = TASKS.get(name)(**options).docs(split, Path(data_dir) if data_dir else None, n_prompts)
    samples, grades, verdicts = {}, {}, {}
    for r in read_jsonl(src / "samples.jsonl"):
        samples[(r["doc_id"], r["sample"])] = r
    for r in read_jsonl(src / "grades.jsonl"):
        grades[(r["doc_id"], r["sample"])] = r
    methods = set()
    for r in read_jsonl(src / "verdicts.jsonl"):
        m = PER_SAMPLE_KEY.fullmatch(r["key"])
        if m:
            verdicts.setdefault((r["doc_id"], int(m[1])), []).append((r, m[2]))
            methods.add(r["method"])
    keys = list(grades)
    keep_methods = [m for m in results["verifiers"] if m in methods or m == "oracle"]
    s_lines, g_lines, v_lines = [], [], []
    for k, doc in enumerate(docs):
        for i in range(n):
            key = keys[(k * n + i) % len(keys)]
            s = {**samples[key], "doc_id": doc.doc_id, "sample": i}
            s.pop("__line__", None)
            s.pop("prompt_digest", None)  # the digest of another prompt's prompt: this copy's is unknown
            s_lines.append(json.dumps(s, sort_keys=True))
            g = {**grades[key], "doc_id": doc.doc_id, "sample": i}
            g.pop("__line__", None)
            g_lines.append(json.dumps(g, sort_keys=True))
            for r, rest in verdicts.get(key, []):
                if r["method"] in keep_methods:
                    v = {k2: r[k2] for k2 in ("method", "kind", "reply") if k2 in r}
                    v_lines.append(json.dumps({**v, "doc_id": doc.doc_id, "key": f"{i}:{rest}"}, sort_keys=True))
    for fname, lines in (("samples.jsonl", s_lines), ("grades.jsonl", g_lines), ("verdicts.jsonl", v_lines)):
        (dst / fname).write_text("\n".join(lines) + "\n")
    results["task"]["options"] = options
    results["sizes"].update(n_prompts=len(docs), n=n, n_samples=len(docs) * n)
    results["verifiers"] = {m: b for m, b in results["verifiers"].items() if m in keep_methods}
    results["run"] = {"dir": "synthetic", "config_hash": "synthetic"}
    (dst / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return dst


def time_in_chromium(page_path: Path, chromium: str = "/usr/bin/chromium") -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            return measure(browser, page_path)
        finally:
            browser.close()


def measure(browser, page_path: Path) -> dict:
    """Seconds to open the page (until its prompt table is drawn), then to narrow it with a filter and
    a search, and to open one prompt's samples, in a new page of ``browser``."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    start = time.perf_counter()
    page.goto(page_path.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    opened = time.perf_counter()
    total = page.inner_text("#count")
    target = page.eval_on_selector("#prompts tbody tr.prompt:last-child", "r => r.dataset.doc")
    page.select_option("#f-outcome", "kw")  # the kept-but-wrong prompts, then back to all and a search
    kept_wrong = page.inner_text("#count")
    page.select_option("#f-outcome", "")
    page.fill("#f-text", target)
    page.wait_for_function("t => document.getElementById('count').textContent !== t", arg=total)
    filtered = time.perf_counter()
    narrowed = page.inner_text("#count")
    page.click("#prompts tbody tr.prompt >> nth=0")
    page.wait_for_selector("table.samples tbody tr")
    details = time.perf_counter()
    shown = page.locator("table.samples tbody tr").count()
    page.close()
    return {
        "open_s": opened - start,
        "open_and_filter_s": filtered - start,
        "open_prompt_s": details - filtered,
        "rows_before": total,
        "rows_after": narrowed,
        "rows_kept_wrong": kept_wrong,
        "samples_shown": shown,
        "errors": errors,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory (arith, or a task whose data --data-dir holds)")
    ap.add_argument("--prompts", type=int, default=1319)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--out", help="where to write the synthetic run (default: a temporary folder)")
    ap.add_argument("--data-dir", help="the task's data (a task other than arith: its prompts and questions)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from gapbench.harness.view.collect import load_view
    from gapbench.harness.view.page import write_run_page

    tmp = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gapbench-view-"))
    try:
        for label, run in (("given run", Path(args.run)), (f"{args.prompts} x {args.n}", None)):
            if run is None:
                t = time.perf_counter()
                run = scale_run(args.run, tmp / "scaled", args.prompts, args.n, args.data_dir)
                print(f"synthetic run written in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            page = write_run_page([load_view(run, args.data_dir)], tmp / f"{label.replace(' ', '')}.html")
            built = time.perf_counter() - t
            got = time_in_chromium(page)
            print(
                f"{label}: page {page.stat().st_size / 1e6:.2f} MB (written in {built:.1f} s); Chromium opens it in "
                f"{got['open_s']:.2f} s, opens and filters in {got['open_and_filter_s']:.2f} s ({got['rows_before']} -> "
                f"{got['rows_after']}; kept but wrong: {got['rows_kept_wrong']}), one prompt's {got['samples_shown']} samples in {got['open_prompt_s']:.2f} s; "
                f"console errors: {len(got['errors'])}"
            )
    finally:
        if not args.out:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
