"""The web viewer: ``gapbench view RUN [RUN ...]`` writes one self-contained HTML page of a run (or of
runs on the same prompts side by side), and the board builder writes a board's ``index.html`` with the
same style. :mod:`harness.view.collect` reads a run directory; :mod:`harness.view.page` renders.
A board's index.html holds ``templates/view.css`` and the board template's text: after changing them,
rebuild the committed boards (``gapbench leaderboard check`` in CI fails until then)."""
