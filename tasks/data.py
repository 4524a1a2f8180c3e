"""Where a task's rows come from: a local JSONL file, a data directory, or the Hugging Face hub."""

from __future__ import annotations

from pathlib import Path

from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import read_records


def load_rows(
    task: str,
    *,
    split: str,
    path: str | None,
    data_dir: Path | None,
    local_name: str,
    hub: tuple[str, str | None, str],
) -> list[dict]:
    """Rows of a data set, from the first of these that is given:

    1. ``path`` (the task option ``<task>.path``): one JSONL file;
    2. ``data_dir / local_name`` (``--data-dir``), e.g. ``DIR/gsm8k/test.jsonl``;
    3. the hub: ``hub = (dataset name, config or None, split)``.
    """
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise GapbenchError(f"{task}: data file {file} does not exist. Give an existing JSONL file as {task}.path=FILE.")
        return read_records(file)
    if data_dir is not None:
        file = Path(data_dir).expanduser() / local_name
        if not file.is_file():
            raise GapbenchError(
                f"{task}: no {split} data at {file}. --data-dir expects the layout DIR/{local_name}; "
                f"or give the file itself with --task-args {task}.path=FILE."
            )
        return read_records(file)
    name, config, hub_split = hub
    try:
        import datasets

        rows = datasets.load_dataset(name, config, split=hub_split)
    except Exception as exc:  # the hub's failures come in many types
        raise GapbenchError(
            f"{task}: could not load {name}{'/' + config if config else ''} ({hub_split}) from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Without the hub, give a local copy: "
            f"--data-dir DIR with DIR/{local_name}, or --task-args {task}.path=FILE (JSONL)."
        ) from None
    return [dict(r) for r in rows]


