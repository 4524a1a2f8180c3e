"""Load time of results.json: gapbench's hand-written codec (harness/results.py ``load``) against a
pydantic 2 ``TypeAdapter`` over the same dataclasses, and whether the two accept and reject the same
documents. A measurement only: the codec is not switched.

    python benchmarks/results_codec.py [--loads 200] [--methods 32] [--levels 40]

Documents: every results.json of the committed board (``leaderboards/smollm2-gemma3/results``) and
one large document made from the largest of them (its verifier block copied to ``--methods`` methods,
each with ``--levels`` per-level groups), written to a temporary folder. Times are ms per load
(the best of 5 rounds of ``--loads`` loads each: the machine's other jobs only slow a round down), from the file's bytes to the typed document:

- ``hand``: ``load(path)`` (read, ``json.loads``, then the typed walk with its checks);
- ``pydantic``: ``TypeAdapter(Results).validate_json(bytes)`` (parsing and validation in pydantic-core),
  lax (default) and ``strict=True``.

pydantic reads the classes as they are, with two settings given through ``__pydantic_config__`` (set
on each class in this process only): the JSON keys that are not Python names (``pass@k``, ``maj@k``,
from the fields' ``key`` metadata) as aliases, and extra keys allowed (the blocks with ``extra`` keep
a model's ``--model-meta`` facts there; pydantic, given the same classes, does not). It has no
equivalent of the codec's interval, non-empty and finite checks, nor of its schema_version gate; the
second table shows what that changes on damaged documents.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gapbench.harness import results as R  # noqa: E402
from gapbench.harness.errors import GapbenchError  # noqa: E402

BOARD = ROOT / "leaderboards" / "smollm2-gemma3" / "results"


def pydantic_adapters():
    from pydantic import ConfigDict, TypeAdapter

    for cls in vars(R).values():
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == R.__name__:
            aliases = {f.name: f.metadata["key"] for f in dataclasses.fields(cls) if "key" in f.metadata}
            cls.__pydantic_config__ = ConfigDict(alias_generator=lambda name, a=aliases: a.get(name, name), populate_by_name=True, extra="allow")  # type: ignore[attr-defined]
    return TypeAdapter(R.Results)


def large_document(base: dict, methods: int, levels: int) -> dict:
    doc = copy.deepcopy(base)
    block = doc["verifiers"][next(iter(doc["verifiers"]))]
    groups = block["by_group"].get("level", {})
    first = next(iter(groups.values()))
    block["by_group"] = {"level": {f"level{i}": copy.deepcopy(first) for i in range(levels)}}
    doc["generation"]["by_group"] = {"level": {f"level{i}": copy.deepcopy(next(iter(doc["generation"]["by_group"]["level"].values()))) for i in range(levels)}}
    doc["verifiers"] = {f"method{i}": copy.deepcopy(block) for i in range(methods)}
    return doc


def per_load_ms(fn, loads: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(loads):
            fn()
        times.append((time.perf_counter() - start) / loads * 1000)
    return min(times)


def differences(a, b, path: str = "") -> list[str]:
    """Where two typed documents differ (dataclass fields, dict keys, list items); pydantic's extra keys
    (set as attributes) are compared against the codec's ``extra`` dict."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        out = []
        for f in dataclasses.fields(a):
            out += differences(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}" if path else f.name)
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in {'hand' if k in a else 'pydantic'}" for k in sorted(set(a) ^ set(b))]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path}: hand {a!r} ({type(a).__name__}), pydantic {b!r} ({type(b).__name__})"]
    return []


def damaged(base: dict) -> list[tuple[str, object]]:
    """(what is wrong, the document or its raw text): the damage the codec refuses."""
    method = next(iter(base["verifiers"]))

    def edit(fn):
        doc = copy.deepcopy(base)
        fn(doc)
        return doc

    return [
        ("gap.value a string", edit(lambda d: d["verifiers"][method]["gap"].__setitem__("value", "abc"))),
        ("task.name missing", edit(lambda d: d["task"].pop("name"))),
        ("sizes.n true (a bool for an int)", edit(lambda d: d["sizes"].__setitem__("n", True))),
        ("sizes.n \"8\" (a string for an int)", edit(lambda d: d["sizes"].__setitem__("n", "8"))),
        ("sizes.n 8.5 (a float for an int)", edit(lambda d: d["sizes"].__setitem__("n", 8.5))),
        ("J.value NaN", json.dumps(edit(lambda d: d["verifiers"][method]["J"].__setitem__("value", float("nan"))))),
        ("gap.ci [hi, lo]", edit(lambda d: d["verifiers"][method]["gap"].__setitem__("ci", [0.5, 0.1]))),
        ("gap.ci three numbers", edit(lambda d: d["verifiers"][method]["gap"].__setitem__("ci", [0.1, 0.2, 0.3]))),
        ("verifiers {} (empty)", edit(lambda d: d.__setitem__("verifiers", {}))),
        ("schema_version 99", edit(lambda d: d.__setitem__("schema_version", 99))),
        ("model.flops Infinity (a --model-meta fact, kept in extra)", json.dumps(edit(lambda d: d["model"].__setitem__("flops", float("inf"))))),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", type=int, default=200)
    ap.add_argument("--methods", type=int, default=32)
    ap.add_argument("--levels", type=int, default=40)
    args = ap.parse_args(argv)
    import pydantic
    from pydantic import ValidationError

    start = time.perf_counter()
    lax = pydantic_adapters()
    built = (time.perf_counter() - start) * 1000
    paths = sorted(BOARD.glob("*.json"))
    largest = max(paths, key=lambda p: p.stat().st_size)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "large-results.json"
        big.write_text(json.dumps(large_document(json.loads(largest.read_text()), args.methods, args.levels), indent=2))
        print(f"pydantic {pydantic.VERSION}, python {sys.version.split()[0]}; ms per load, best of 5 rounds of {args.loads} loads")
        print(f"(pydantic builds its validator once per process: {built:.0f} ms)")
        print("(json.loads: reading and parsing the file alone, the part of `hand` before its typed walk)\n")
        print(f"{'document':58s} {'KB':>6s} {'json.loads':>10s} {'hand':>8s} {'pyd lax':>8s} {'pyd strict':>10s} {'hand/lax':>8s} {'hand/strict':>11s}")
        rows = [(p.name, p, args.loads) for p in paths]
        rows.append((f"large ({args.methods} methods x {args.levels} levels)", big, max(args.loads // 10, 5)))
        for name, path, loads in rows:
            raw = path.read_bytes()
            plain = per_load_ms(lambda p=path: json.loads(p.read_bytes()), loads)
            hand = per_load_ms(lambda p=path: R.load(p), loads)
            pl = per_load_ms(lambda p=path: lax.validate_json(p.read_bytes()), loads)
            ps = per_load_ms(lambda p=path: lax.validate_json(p.read_bytes(), strict=True), loads)
            print(f"{name[:58]:58s} {len(raw) / 1024:6.0f} {plain:10.3f} {hand:8.3f} {pl:8.3f} {ps:10.3f} {hand / pl:8.1f} {hand / ps:11.1f}")

        print("\nsame documents: fields where pydantic's typed document differs from the codec's")
        for path in [*paths, big]:
            mine = R.load(path)[0]
            for mode in ("lax", "strict"):
                try:
                    theirs = lax.validate_json(path.read_bytes(), strict=mode == "strict")
                except ValidationError as exc:
                    print(f"  {path.name} ({mode}): REJECTED {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
                    continue
                diff = differences(mine, theirs)
                attrs = {k: v for k, v in vars(theirs.model).items() if k not in {f.name for f in dataclasses.fields(theirs.model)}}
                moved = bool(attrs) and attrs == mine.model.extra and all(d.startswith("model.extra.") for d in diff)
                shown = "; ".join(diff[:2]) + (f" (+{len(diff) - 2} more)" if len(diff) > 2 else "")
                verdict = "the same" if not diff else (
                    f"the same but model.extra: its {len(attrs)} keys are attributes of pydantic's ModelInfo, its .extra is empty"
                    if moved else f"{len(diff)} fields differ: {shown}")
                print(f"  {path.name[:60]:60s} {mode:6s}: {verdict}")

        print("\ndamaged documents: the codec's error against pydantic's (lax, strict)")
        base = json.loads(largest.read_text())
        for what, doc in damaged(base):
            text = doc if isinstance(doc, str) else json.dumps(doc)
            try:
                R.parse(json.loads(text), "results.json")
                hand_says = "accepted"
            except GapbenchError as exc:
                hand_says = str(exc).split(". ")[0]
            print(f"- {what}\n    hand:     {hand_says}")
            for mode in ("lax", "strict"):
                try:
                    lax.validate_json(text, strict=mode == "strict")
                    says = "accepted"
                except ValidationError as exc:
                    e = exc.errors()[0]
                    says = f"{exc.error_count()} error(s); first: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                print(f"    {mode + ':':9s} {says}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
