"""mypy over the gapbench namespace as it is installed: the four folders become gapbench's
subpackages through links in a temporary tree (mypy does not follow setuptools' package-dir map),
and the paths in its report are turned back into the repository's.

    python .ci/typecheck.py [mypy options]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("harness", "tasks", "verifiers", "leaderboards")


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "gapbench"
        pkg.mkdir()
        for f in sorted((ROOT / "gapbench").glob("*.py")):
            (pkg / f.name).symlink_to(f)
        for name in FOLDERS:
            (pkg / name).symlink_to(ROOT / name, target_is_directory=True)
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *argv, "-p", "gapbench"],
            cwd=tmp, capture_output=True, text=True, env={**os.environ, "MYPYPATH": tmp},
        )
        out = proc.stdout + proc.stderr
        for name in FOLDERS:  # gapbench/harness/x.py -> harness/x.py
            out = out.replace(f"gapbench/{name}/", f"{name}/")
        print(out, end="")
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
