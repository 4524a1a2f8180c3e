"""The self-improvement loop: rounds of sample, self-verify, filter and fine-tune (:mod:`.loop`),
its reports round.json and summary.json as types (:mod:`.summary`), its options (:mod:`.options`),
the fine-tuning itself (:mod:`.sft`) and ``gapbench improve`` (:mod:`.cli`)."""
