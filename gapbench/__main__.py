"""``python -m gapbench ...``: the command line."""

from gapbench.harness.cli import main

raise SystemExit(main())
