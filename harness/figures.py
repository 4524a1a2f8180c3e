"""PNG figures: matplotlib without a display (``Agg``), names drawn as text (a checkpoint called
``$x^$`` is no formula), and :func:`save`, through which every per-run reader and board writes a plot.

PNG bytes depend on the matplotlib version; with it fixed they are reproducible (no version stamp).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["text.parse_math"] = False  # names are text: "$x^$" is no formula
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gapbench.harness import safe_paths  # noqa: E402

__all__ = ["DPI", "PNG_META", "Figure", "plt", "save"]

PNG_META = {"Software": None}  # no matplotlib version stamp in the file
DPI = 110


def save(fig: Figure, path: Path, root: Path | None = None) -> None:
    """Write the figure as a PNG at ``path``, inside ``root`` (default: its folder) and never through a
    link (:mod:`harness.safe_paths`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_META)
    plt.close(fig)
    path = Path(path)
    safe_paths.write_bytes(path.parent if root is None else root, path, buf.getvalue(), what="a plot")
