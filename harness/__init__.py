"""gapbench harness: command line, configuration, stage runner, run store, metrics, model backends."""

__version__ = "0.2.0"
