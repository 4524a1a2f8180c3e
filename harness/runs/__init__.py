"""The per-run readers: what a stored run (:class:`harness.stored_run.StoredRun`) tells once read back,
without a model call. ``rundata`` gives a run's per-sample data for pairing; ``analyze`` the verifier
diagnostics (``gapbench analyze``); ``compare`` a checkpoint against its baseline (``gapbench leaderboard
compare``); ``ladder`` the per-level chart (``gapbench ladder``). They import no board module
(tests/test_layering.py): the boards read their results, never the other way round.
"""
