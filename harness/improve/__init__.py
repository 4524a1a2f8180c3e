"""The self-improvement loop: rounds of sample, self-verify, filter and fine-tune (:mod:`.loop`),
the fine-tuning itself (:mod:`.sft`) and ``gapbench improve`` (:mod:`.cli`)."""
