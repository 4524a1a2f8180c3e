"""Plugins from other packages: installed for real with pip into a temporary folder, then listed
by the command line. A plugin that fails to load is skipped with one warning that names it; the
others still load, and every lookup sees the same complete set. A built-in module that fails to
import is gapbench's own bug and raises, every time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from gapbench.harness.registry import PluginLoadWarning, Registry

ROOT = Path(__file__).resolve().parents[1]

# the in-process tests' own registry: a package of built-in "widgets" and its entry-point group
WIDGETS_INIT = """
from gapbench.harness.registry import Registry

WIDGETS = Registry("widget", "gapbench_test_widgets", "gapbench_test.widgets")
register = WIDGETS.register
"""

PACKAGES = {
    # a working plugin: one task, one verifier, one widget
    "thirdparty": {
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "gapbench-thirdparty"
            version = "0.1"

            [tool.setuptools]
            packages = ["gapbench_thirdparty"]

            [project.entry-points."gapbench.tasks"]
            thirdparty-echo = "gapbench_thirdparty.echo:Echo"

            [project.entry-points."gapbench.verifiers"]
            thirdparty-const = "gapbench_thirdparty.const:Const"

            [project.entry-points."gapbench_test.widgets"]
            beta = "gapbench_thirdparty.widget:Beta"
        """,
        "gapbench_thirdparty/__init__.py": "",
        "gapbench_thirdparty/echo.py": """
            from gapbench.tasks import Doc, Grade, Task, register


            @register
            class Echo(Task):
                name = "thirdparty-echo"
                description = "a third-party task: repeat the word"

                def load_docs(self, split, data_dir):
                    return [Doc(doc_id=str(i), question=f"Say {w}.", target=w) for i, w in enumerate(["yes", "no"])]

                def generation_prompt(self, doc):
                    return doc.question

                def grade(self, doc, response):
                    answer = response.strip()
                    return Grade(g=int(answer == doc.target), answer=answer)

                def verification_examples(self):
                    return []
        """,
        "gapbench_thirdparty/const.py": """
            from gapbench.verifiers import Verdict, Verifier, register


            @register
            class Const(Verifier):
                name = "thirdparty-const"
                description = "a third-party verifier: u = 0.5"
                uses_model = False

                def requests(self, task, doc, samples, replies):
                    return []

                def score(self, task, doc, samples, replies, **_):
                    return [Verdict(u=0.5) for _ in samples]
        """,
        "gapbench_thirdparty/widget.py": """
            from gapbench_test_widgets import register


            @register
            class Beta:
                name = "beta"
        """,
    },
    # a broken plugin: a task entry point naming a module that does not exist, a verifier that takes
    # a built-in's name, and widgets that fail in each way (one registers a name before it raises)
    "broken": {
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "gapbench-broken"
            version = "0.2"

            [tool.setuptools]
            packages = ["gapbench_broken"]

            [project.entry-points."gapbench.tasks"]
            broken-task = "gapbench_broken.missing:Task"

            [project.entry-points."gapbench.verifiers"]
            clash = "gapbench_broken.clash:Oracle"

            [project.entry-points."gapbench_test.widgets"]
            nowhere = "gapbench_broken.missing:Widget"
            half = "gapbench_broken.half"
            clash = "gapbench_broken.widget_clash:Alpha"
        """,
        "gapbench_broken/__init__.py": "",
        "gapbench_broken/clash.py": """
            from gapbench.verifiers import Verdict, Verifier, register


            @register
            class Oracle(Verifier):
                name = "oracle"
                description = "a third-party verifier that takes a built-in's name"
                uses_model = False
        """,
        "gapbench_broken/half.py": """
            from gapbench_test_widgets import register


            @register
            class Gamma:
                name = "gamma"


            raise RuntimeError("half-imported on purpose")
        """,
        "gapbench_broken/widget_clash.py": """
            from gapbench_test_widgets import register


            @register
            class Alpha:
                name = "alpha"


            @register
            class Delta:
                name = "delta"
        """,
    },
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Both packages installed with pip (offline: no index, no build isolation) into one folder."""
    tmp = tmp_path_factory.mktemp("plugins")
    dirs = [str(write_tree(tmp / name, files)) for name, files in PACKAGES.items()]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--no-cache-dir", "--quiet", "--target", str(tmp / "site"), *dirs],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp / "site").glob("*.dist-info")) == [
        "gapbench_broken-0.2.dist-info", "gapbench_thirdparty-0.1.dist-info",
    ]
    return tmp / "site"


@pytest.fixture(scope="module")
def good_site(site) -> Path:
    """Only the working package: the broken one's folders left out of a copy of the site."""
    import shutil

    good = site.parent / "good-site"
    if not good.exists():
        shutil.copytree(site, good, ignore=lambda d, names: [n for n in names if n.startswith("gapbench_broken")])
    return good


def cli(site: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "gapbench.harness.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def listed(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line and not line.startswith("failed to load")]


# --- the command line, with the packages installed ------------------------------------------


def test_installed_plugin_is_listed_beside_the_built_ins(good_site):
    tasks = cli(good_site, "tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert {"arith", "gsm8k", "sudoku", "thirdparty-echo"} <= set(listed(tasks.stdout))
    assert "a third-party task: repeat the word" in tasks.stdout
    verifiers = cli(good_site, "verifiers")
    assert verifiers.returncode == 0, verifiers.stderr
    assert {"mc", "oracle", "cot-binary", "thirdparty-const"} <= set(listed(verifiers.stdout))
    assert "warning" not in tasks.stderr + verifiers.stderr and "failed to load" not in tasks.stdout


def test_broken_plugin_is_one_warning_and_the_others_still_load(site):
    proc = cli(site, "tasks")
    assert proc.returncode == 0, proc.stderr
    assert {"arith", "gsm8k", "thirdparty-echo"} <= set(listed(proc.stdout))
    assert "broken-task" not in listed(proc.stdout)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    warning = lines[0]
    assert warning.startswith("gapbench: warning: task plugin 'broken-task'")
    for part in ("gapbench_broken.missing:Task", "gapbench-broken 0.2", "ModuleNotFoundError", "gapbench_broken.missing",
                 "pip uninstall gapbench-broken"):
        assert part in warning, warning
    failed = [line for line in proc.stdout.splitlines() if line.startswith("failed to load:")]
    assert len(failed) == 1 and "'broken-task'" in failed[0] and "ModuleNotFoundError" in failed[0]
    assert proc.stdout.splitlines()[-1] == failed[0]  # listed at the end


def test_plugin_taking_a_built_in_name_is_skipped_with_a_warning(site):
    proc = cli(site, "verifiers")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    names = listed(proc.stdout)
    assert names.count("oracle") == 1 and "thirdparty-const" in names
    oracle = next(line for line in proc.stdout.splitlines() if line.startswith("oracle"))
    assert "upper bound" in oracle  # the built-in kept its name
    [warning] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert warning.startswith("gapbench: warning: verifier plugin 'clash'")
    assert "'oracle'" in warning and "verifiers.oracle.Oracle" in warning and "gapbench-broken" in warning


def test_unknown_name_of_a_failed_plugin_says_why(site, tmp_path):
    proc = cli(site, "run", "--tasks", "broken-task", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("gapbench: error: unknown task 'broken-task'") and "ModuleNotFoundError" in error
    assert proc.stderr.count("gapbench: warning:") == 1


# --- the registry in process, on a package of its own ----------------------------------------


@pytest.fixture
def widgets(site, tmp_path, monkeypatch):
    """A fresh `gapbench_test_widgets` package (built-in `alpha`) with the installed plugins on the path."""
    write_tree(tmp_path / "src", {
        "gapbench_test_widgets/__init__.py": WIDGETS_INIT,
        "gapbench_test_widgets/alpha.py": """
            from gapbench_test_widgets import register


            @register
            class Alpha:
                name = "alpha"
        """,
    })
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    prefixes = ("gapbench_test_widgets", "gapbench_thirdparty", "gapbench_broken")
    yield __import__("gapbench_test_widgets").WIDGETS
    for name in [m for m in sys.modules if m.startswith(prefixes)]:
        del sys.modules[name]


def test_every_lookup_sees_the_same_complete_set_and_each_failure_warns_once(widgets):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = widgets.names()
        second = widgets.names()
        assert widgets.get("beta").__module__ == "gapbench_thirdparty.widget"
    assert first == second == ["alpha", "beta", "delta"]  # gamma's plugin failed half-way: nothing of it stays
    assert widgets.get("alpha").__module__ == "gapbench_test_widgets.alpha"  # the built-in keeps its name
    plugin = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(plugin) == 3, plugin
    assert sorted(widgets.failed) == ["clash", "half", "nowhere"]
    assert "ModuleNotFoundError" in widgets.failed["nowhere"]
    assert "RuntimeError: half-imported on purpose" in widgets.failed["half"]
    assert "registers the name 'alpha'" in widgets.failed["clash"]
    for name in widgets.failed:
        assert sum(f"widget plugin '{name}'" in m for m in plugin) == 1


def test_built_in_module_that_fails_to_import_raises_on_every_lookup(tmp_path, monkeypatch):
    write_tree(tmp_path, {
        "gapbench_test_buggy/__init__.py": "",
        "gapbench_test_buggy/a_fine.py": """
            from gapbench_test_buggy_registry import WIDGETS


            @WIDGETS.register
            class Fine:
                name = "fine"
        """,
        "gapbench_test_buggy/b_bug.py": "raise ImportError('a bug in a built-in module')\n",
        "gapbench_test_buggy_registry.py": """
            from gapbench.harness.registry import Registry

            WIDGETS = Registry("widget", "gapbench_test_buggy", "gapbench_test.none")
        """,
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry: Registry = __import__("gapbench_test_buggy_registry").WIDGETS
        for _ in range(2):  # never half-loaded and marked loaded
            with pytest.raises(ImportError, match="a bug in a built-in module"):
                registry.names()
        assert registry.failed == {}
    finally:
        for name in [m for m in sys.modules if m.startswith("gapbench_test_buggy")]:
            del sys.modules[name]


def test_two_built_ins_with_one_name_are_still_an_error():
    registry: Registry = Registry("widget", "gapbench_test_pkg", "gapbench_test.none")
    first = type("First", (), {"name": "same", "__module__": "gapbench_test_pkg.a"})
    second = type("Second", (), {"name": "same", "__module__": "gapbench_test_pkg.b"})
    registry.register(first)
    with pytest.raises(TypeError, match="two widgets are registered as 'same'"):
        registry.register(second)
