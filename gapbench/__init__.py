"""gapbench: generation accuracy, self-verification and the generation-verification gap of a model
(Song et al., "Mind the Gap", ICLR 2025).

The repository's four folders are this package's subpackages: ``gapbench.tasks``,
``gapbench.verifiers``, ``gapbench.harness`` and ``gapbench.leaderboards`` (pyproject.toml maps them),
so a user's own ``tasks/`` or ``harness/`` folder cannot shadow them.
"""

from __future__ import annotations

import os as _os

__all__ = ["Evaluation", "evaluate", "load_run", "__version__"]

# A source checkout imported without installing it (the repository root on sys.path, as
# ``python -m`` from the root does): the four folders sit beside this one, so look for the
# subpackages there too. An installed copy has them inside this folder and skips this.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isfile(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "harness", "__init__.py")) and all(
    _os.path.isfile(_os.path.join(_root, p, "__init__.py")) for p in ("harness", "tasks", "verifiers", "leaderboards")
) and _os.path.isfile(_os.path.join(_root, "pyproject.toml")):
    __path__.append(_root)  # type: ignore[name-defined]  # noqa: F821


from gapbench.api import Evaluation, evaluate, load_run  # noqa: E402  (the subpackages' path is set above)
from gapbench.harness import __version__  # noqa: E402
