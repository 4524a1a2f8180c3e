"""Imports flow one way: tasks <- verifiers <- harness <- leaderboards, with the command line on top
(docs/architecture.md). A few foundation modules of ``harness`` (errors, the registry, JSONL,
digests and safe paths) import nothing of gapbench's but each other, so every layer may use them. Every import is
read from the source, function-level imports included, and no module may import a higher layer or
take part in an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "verifiers", "harness", "leaderboards")
FOUNDATION = {"harness", "harness.errors", "harness.registry", "harness.jsonl", "harness.digest", "harness.safe_paths"}
CLI = {"harness.cli", "harness.improve.cli", "leaderboards.cli"}
LAYER = {"foundation": -1, "tasks": 0, "verifiers": 1, "harness": 2, "leaderboards": 3, "cli": 4}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def layer(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    if module in CLI:
        return "cli"
    return module.split(".")[0]


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The gapbench modules ``module`` imports (``from pkg import name`` counts as pkg.name when that
    is a module, else as pkg)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        else:
            continue
        for name in names:
            name = name.removeprefix("gapbench.")  # every import goes through the installed namespace
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def test_every_package_is_found():
    mods = modules()
    for name in ("tasks.base", "verifiers.base", "harness.runner", "harness.models.backends", "harness.improve.loop", "harness.view.page", "harness.runs.ladder", "leaderboards.builder"):
        assert name in mods


def test_no_module_imports_a_higher_layer():
    bad = []
    for module, deps in graph().items():
        for dep in deps:
            # a package's __init__ re-exports its own modules; a module may import its own package
            if dep == module.split(".")[0] or module == dep.split(".")[0]:
                continue
            if LAYER[layer(dep)] > LAYER[layer(module)]:
                bad.append(f"{module} ({layer(module)}) imports {dep} ({layer(dep)})")
    assert not bad, "imports against tasks <- verifiers <- harness <- leaderboards <- cli:\n" + "\n".join(sorted(bad))


def test_foundation_imports_only_foundation():
    g = graph()
    bad = [f"{m} imports {d}" for m in FOUNDATION for d in g.get(m, ()) if d not in FOUNDATION]
    assert not bad, bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    # a package's __init__ importing its own modules is not a cycle of design
    g = {m: {d for d in deps if d != m.split(".")[0]} for m, deps in graph().items()}
    assert cycles(g) == []


@pytest.mark.parametrize(
    "edges, expected",
    [({"a": {"b"}, "b": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": {"c"}, "c": set()}, [])],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert cycles(edges) == expected


def test_the_layer_check_would_catch_an_upward_import(tmp_path):
    mods = modules()
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from gapbench.leaderboards.entries import load_entries\n")
    deps = imports("harness.example", src, set(mods))
    assert deps == {"leaderboards.entries"} and LAYER[layer("leaderboards.entries")] > LAYER[layer("harness.example")]


def test_every_import_goes_through_the_gapbench_namespace():
    """``from harness.x import`` would load a second copy of a module (or a user's own ``tasks/``
    folder): every import of gapbench's code names ``gapbench.``."""
    bare = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bare += [f"{module}: {n}" for n in names if n.split(".")[0] in PACKAGES]
    assert not bare, bare


RUN_LAYER = ("settings", "runner", "store", "config", "results", "scoring", "metrics", "view", "improve")


def reachable(g: dict[str, set[str]], module: str) -> set[str]:
    """Every module ``module`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in g.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def run_layer_imports(g: dict[str, set[str]]) -> list[str]:
    """Every import, direct or through another module, by which a module of ``harness.models`` reaches
    the run layer (:data:`RUN_LAYER`): the model layer takes plain arguments and is used by it, never
    the other way round."""
    bad = []
    for module in sorted(m for m in g if m.startswith("harness.models")):
        seen = reachable(g, module)
        bad += [f"{module} reaches {dep}" for dep in sorted(seen) if dep.split(".")[:1] == ["harness"] and dep.split(".")[1:2] and dep.split(".")[1] in RUN_LAYER]
    return bad


def test_the_model_layer_imports_no_run_layer():
    g = graph()
    assert any(m.startswith("harness.models.") for m in g)
    assert run_layer_imports(g) == []


def test_the_model_layer_check_would_catch_a_run_layer_import():
    g = {"harness.models.x": {"harness.models.y"}, "harness.models.y": {"harness.settings"}, "harness.settings": set()}
    assert run_layer_imports(g) == ["harness.models.x reaches harness.settings", "harness.models.y reaches harness.settings"]


# The per-run readers (analyze, compare, ladder, the per-sample data they pair) sit beside the StoredRun
# they read, and read a run, never a board: the boards are built from their results, not the other way.
PER_RUN = ("harness.stored_run", "harness.runs")


def per_run_reader_imports(g: dict[str, set[str]]) -> list[str]:
    """Every import, direct or through another module, by which a per-run reader (:data:`PER_RUN`)
    reaches a module of ``leaderboards``."""
    bad = []
    for module in sorted(m for m in g if any(m == p or m.startswith(p + ".") for p in PER_RUN)):
        seen = reachable(g, module)
        bad += [f"{module} reaches {dep}" for dep in sorted(seen) if dep.split(".")[0] == "leaderboards"]
    return bad


def test_the_per_run_readers_import_no_board_module():
    g = graph()
    readers = [m for m in g if m.startswith("harness.runs.")]
    assert {"harness.runs.analyze", "harness.runs.compare", "harness.runs.ladder", "harness.runs.rundata"} <= set(readers)
    assert not [m for m in g if m.startswith("leaderboards.") and m.split(".")[1] in ("analyze", "compare", "ladder", "rundata")]
    assert per_run_reader_imports(g) == []


def test_the_per_run_reader_check_would_catch_a_board_import():
    g = {"harness.runs.x": {"harness.report"}, "harness.report": {"leaderboards.entries"}, "leaderboards.entries": set()}
    assert per_run_reader_imports(g) == ["harness.runs.x reaches leaderboards.entries"]
