"""An example gapbench plugin package (see ../pyproject.toml for its entry points)."""
