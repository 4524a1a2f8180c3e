"""Model access: lm-eval backends resolved from ``--model``/``--model-args`` (:mod:`.backends`),
gapbench's own registered lm-eval model class ``hf-prefix`` (:mod:`.hf_prefix`) and the
shared-prefix paths it uses (:mod:`.prefix_cache`, :mod:`.prefix_generate`), lm-eval's command line
with that class registered (:mod:`.lm_eval_cli`), and the embedded default model (:mod:`.embedded`)."""
