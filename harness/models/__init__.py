"""Model access: lm-eval backends resolved from ``--model``/``--model-args`` (:mod:`.backends`),
gapbench's own registered lm-eval model classes and the shared-prefix paths they use
(:mod:`.prefix_cache`, :mod:`.prefix_generate`), and the embedded default model (:mod:`.embedded`)."""
