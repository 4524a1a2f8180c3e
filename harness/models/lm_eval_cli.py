"""lm-eval's own command line, with gapbench's models registered: ``hf-prefix`` (and ``gapbench-fake``).

lm-eval 0.4.x finds models only in its registry, which it fills from its own package
(``lm_eval.models``); it reads no entry points for models and imports no user Python before
it creates the model (``--include_path`` task hooks load later, with the tasks). So the plain
``lm_eval`` command cannot know ``hf-prefix``. These two commands register it, then run
lm-eval's command line with the arguments unchanged::

    gapbench lm-eval --model hf-prefix --model_args pretrained=<folder> --tasks <task> ...
    python -m gapbench.harness.models.lm_eval_cli --model hf-prefix --model_args pretrained=<folder> --tasks <task> ...

Every lm-eval subcommand and option works as with ``lm_eval`` (``run``, ``ls``, ``validate``,
``--include_path``, ``--output_path``, ...). From Python, ``import harness.models.hf_prefix`` is
enough: ``lm_eval.simple_evaluate(model="hf-prefix", ...)``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Register gapbench's lm-eval models, then hand ``argv`` (default: this process's arguments)
    to lm-eval's ``cli_evaluate``. Returns 0 when it returns; its ``SystemExit`` (usage errors,
    ``--help``) passes through unchanged, as from ``lm_eval``."""
    from lm_eval.__main__ import cli_evaluate

    from gapbench.harness.models.backends import register_models

    register_models()  # hf-prefix and gapbench-fake, lazily

    args = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    sys.argv = ["lm-eval", *args]  # lm-eval's parser reads sys.argv (and inserts `run` for the legacy form)
    try:
        cli_evaluate()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
