"""pyproject.toml declares every third-party package the code imports, and nothing it does not use."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gapbench", "harness", "tasks", "verifiers", "leaderboards")

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(optional: bool = False) -> set[str]:
    """The packages of ``dependencies`` (with ``optional``: and of every extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    if optional:
        deps += [d for extra in project.get("optional-dependencies", {}).values() for d in extra]
    return {normal(re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0]) for d in deps}


def imported_modules() -> set[str]:
    out = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    out |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    out.add(node.module.split(".")[0])
    return out - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


# import names of optional packages that may not be installed here, and the distribution that gives each
NOT_INSTALLED = {"llama_cpp": "llama-cpp-python"}


def test_every_imported_package_is_declared():
    dists = packages_distributions()
    missing = {}
    for module in sorted(imported_modules()):
        names = {normal(d) for d in dists.get(module, [NOT_INSTALLED.get(module, module)])}
        if not names & declared(optional=True):  # an extra's package (llama_cpp) is imported where it is used
            missing[module] = sorted(names)
    assert not missing, f"imported but not declared in pyproject.toml dependencies: {missing}"


def test_every_declared_package_is_imported():
    dists = packages_distributions()
    used = {normal(d) for m in imported_modules() for d in dists.get(m, [m])}
    # accelerate and gguf are needed by transformers' GGUF loading of the embedded model, not imported
    unused = declared() - used - {"accelerate", "gguf"}
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_the_quick_start_is_two_commands_the_main_run_and_the_test_suite():
    """README's Quick start: one command runs the main job on the embedded model, one the test suite
    (the tox command .ci/run runs too); nothing more to type on a fresh machine."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Quick start has no bash block"
    commands = [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.split("#", 1)[0].strip()]
    assert len(commands) == 2, commands
    assert "gapbench run" in commands[0] and "torch==2.13.0" in commands[0]
    assert commands[1].endswith("tox") and "tox -e py" in (root / ".ci" / "run").read_text()
