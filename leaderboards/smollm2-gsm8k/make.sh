#!/usr/bin/env bash
# Rebuild the GSM8K self-improvement board from scratch, on a CPU, from the repository root:
#     bash leaderboards/smollm2-gsm8k/make.sh
# Two rounds of `gapbench improve` on the embedded SmolLM2-135M-Instruct (about 50 min on a
# quiet 2-core CPU; see docs/improve.md), then the board of f_0, f_1, f_2 on 40 GSM8K test prompts.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}

gapbench improve --task gsm8k --data-dir "$DATA" --split train --limit 300 --n 2 --verifier mc \
    --filter quantile:0.5 --rounds 2 --eval-limit 40 --eval-n 4 --max-gen-toks 256 \
    --gen-batch-size 16 --micro-batch-size 8 --lr 5e-5 --out improve/smollm2-gsm8k-mc

gapbench leaderboard build improve/smollm2-gsm8k-mc/round-{0,1,2}/eval --out leaderboards/smollm2-gsm8k
