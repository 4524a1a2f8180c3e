#!/usr/bin/env bash
# Rebuild the two-family board from scratch, on a CPU, from the repository root:
#     bash leaderboards/smollm2-gemma3/make.sh
# Two base models of different families (SmolLM2-135M-Instruct and Gemma 3 270M, both embedded),
# one self-improved round of each on the arith ladder, their 2 x 2 generator x verifier matrix, and
# GSM8K (SmolLM2's own GSM8K loop, Gemma, and both arith-trained rounds). Not timed quietly: on this 2-core CPU, shared with other jobs, steps 1-2 took about 1 h 45 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
LADDER="arith.per_level=40"   # the ladder's 5 levels, 40 test prompts each

# 1. The 2 x 2 matrix on the arith ladder, 40 prompts x 8 samples per level. Its diagonal is each base
#    model's own run, which the improve loops below take as their round-0 evaluation (same settings).
gapbench cross --models smollm2-135m-instruct,gemma3-270m --tasks arith --task-args "$LADDER" --limit 200 --n 8 \
    --verifiers mc,oracle --out runs/cross
for m in smollm2-135m-instruct gemma3-270m; do
  mkdir -p improve/$m-arith-mc/round-0/eval
  [ -e improve/$m-arith-mc/round-0/eval/arith ] || cp -r runs/cross/$m/arith improve/$m-arith-mc/round-0/eval/arith
done

# 2. One round of self-improvement of each model on 100 training prompts of the ladder (MC filter),
#    evaluated on the same 200 test prompts x 8 samples.
for m in smollm2-135m-instruct gemma3-270m; do
  gapbench improve --model $m --task arith --task-args "$LADDER" --limit 100 --n 4 --eval-limit 200 --eval-n 8 \
      --verifier mc --rounds 1 --lr 5e-5 --out improve/$m-arith-mc
done

# 3. GSM8K, 40 prompts x 4 samples, 256 new tokens: SmolLM2's own two-round GSM8K loop (f_0, f_1, f_2;
#    about 50 min quiet; its recorded results are on the board).
gapbench improve --task gsm8k --data-dir "$DATA" --split train --limit 300 --n 2 --verifier mc \
    --filter quantile:0.5 --rounds 2 --eval-limit 40 --eval-n 4 --max-gen-toks 256 \
    --gen-batch-size 16 --micro-batch-size 8 --lr 5e-5 --out improve/smollm2-gsm8k-mc
# Gemma on GSM8K with the loop's evaluation settings, and both families' arith-trained rounds (the
# Gemma base model's last 128 samples and their verification took 75 min here beside other jobs;
# its arith-trained round answers in a few tokens and took 20 min; SmolLM2's last 96 samples, 5 min).
gapbench run --model gemma3-270m --tasks gsm8k --data-dir "$DATA" --limit 40 --n 4 --max-gen-toks 256 \
    --verifiers mc,oracle --out runs/gsm8k/gemma3-270m
for m in gemma3-270m smollm2-135m-instruct; do
  gapbench run --model improve/$m-arith-mc/round-1/model --model-meta base=$m,round=1,name=$m-arith-mc-r1 \
      --tasks gsm8k --data-dir "$DATA" --limit 40 --n 4 --max-gen-toks 256 --verifiers mc,oracle --out runs/gsm8k/$m-arith-mc-r1
done

# 4. The board.
gapbench leaderboard build runs/cross/*/arith/results.json improve/*-arith-mc/round-1/eval/arith/results.json \
    improve/smollm2-gsm8k-mc/round-{0,1,2}/eval/gsm8k/results.json runs/gsm8k/*/gsm8k \
    --out leaderboards/smollm2-gemma3 --name smollm2-gemma3 --data-dir "$DATA"
