#!/usr/bin/env bash
# Rebuild the committed SmolLM2 board from scratch, on a CPU, from the repository root:
#     bash leaderboards/smollm2/make.sh
# Every number on the board comes from these commands (OMP_NUM_THREADS=1 lets two jobs share two cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 1. Two self-improvement loops on two-digit addition (issue: arithmetic ladder): MC self-verification
#    filter, and the ground-truth (oracle) filter. Each evaluates f_0, f_1, f_2 on 40 test prompts.
for mode in mc oracle; do
  extra=""; [ "$mode" = oracle ] && extra="--oracle-filter"
  gapbench improve --task arith --task-args arith.levels=add2,arith.per_level=60 --limit 60 --n 4 \
      --eval-limit 40 --verifier mc --rounds 2 --lr 5e-5 $extra --out improve/smollm2-add2-$mode
done

# 2. The base model and the first MC-filtered round on GSM8K and 4x4 Sudoku (small: 8 prompts, 2 samples).
R1=improve/smollm2-add2-mc/round-1/model
gapbench run --tasks gsm8k,sudoku --data-dir "$DATA" --limit 8 --n 2 --max-gen-toks 128 \
    --verifiers mc,oracle --out runs/board/base
gapbench run --model "$R1" --model-meta base=smollm2-135m-instruct,round=1,name=smollm2-135m-add2-mc-r1 \
    --tasks gsm8k,sudoku --data-dir "$DATA" --limit 8 --n 2 --max-gen-toks 128 \
    --verifiers mc,oracle --out runs/board/add2-mc-r1

# 3. The board: round 0 once (both loops start from the same f_0 with the same settings).
gapbench leaderboard build \
    improve/smollm2-add2-mc/round-{0,1,2}/eval improve/smollm2-add2-oracle/round-{1,2}/eval \
    runs/board --out leaderboards/smollm2
