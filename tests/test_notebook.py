"""docs/python-api.ipynb runs, top to bottom, on the embedded model (its code cells executed in
order in one namespace, in a fresh folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "python-api.ipynb"


@pytest.mark.model
def test_the_python_api_notebook_runs(embedded_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 3
    namespace: dict = {}
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    out = capsys.readouterr().out
    assert "J(f) = " in out and "mc: gap" in out
    run = namespace["run"]
    assert run.dir.is_dir() and run.results.sizes.n == 4 and set(run.results.verifiers) == {"mc", "oracle"}
