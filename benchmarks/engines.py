"""Benchmark: the CPU engines on the same GSM8K work, each against llama.cpp's own ceiling measured
in the same run.

    OMP_NUM_THREADS=2 python benchmarks/engines.py --data-dir ../shared/data \\
        [--model qwen2.5-coder-1.5b-instruct] [--prompts 4] [--n 4] [--max-gen-toks 128] \\
        [--engines llama.cpp-batched,llama.cpp,transformers,transformers-bf16] [--slots 16]

Each engine does a whole ``gapbench run --tasks gsm8k --verifiers mc`` (generation, then MC
verification) into a fresh folder; each stage's seconds come from the run's own timings. Engines:

- ``llama.cpp-batched``: the GGUF in process, parallel sequences (:mod:`harness.models.llamacpp_batched`);
- ``llama.cpp``: the GGUF on llama-cpp-python's server, one request at a time (:mod:`harness.models.llamacpp`);
- ``transformers``: the GGUF de-quantised to a float32 Hugging Face folder (``hf-prefix``);
- ``transformers-bf16``: the same folder loaded in bfloat16 (``dtype=bfloat16``).

**Ceilings** (llama.cpp on this machine and model, measured first): *prefill*, one sequence's
512-token ``llama_decode`` batches of a real GSM8K prompt (tokens/s); *decode*, ``--slots``
sequences on top of a cached GSM8K prompt, stepping one token each per ``llama_decode``
(tokens/s). A stage's **work** is what it cannot avoid: for sampling, every distinct prompt token
once (the shared few-shot head once) at the prefill rate plus every generated token at the decode
rate; for MC, every distinct token of the verification requests once (their token trie) at the
prefill rate. A stage's **fraction of the ceiling** is the time the ceilings need for its work over
the time it took (the transformers rows are read against llama.cpp's ceiling too: the fastest engine
sets the bar). Prints a Markdown table with J of each engine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def trie_tokens(seqs: list[list[int]]) -> int:
    """Distinct tokens of a set of sequences: the size of their prefix trie."""
    total, prev = 0, []
    for s in sorted(seqs):
        k = 0
        while k < min(len(s), len(prev)) and s[k] == prev[k]:
            k += 1
        total += len(s) - k
        prev = s
    return total


def ceilings(lm, prompt: list[int], slots: int, steps: int = 16) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of llama.cpp on this model (``lm``: a LlamaCppBatchedLM)."""
    L = lm.L
    L.llama_memory_clear(lm.mem, True)
    tokens = (prompt * (1 + 1024 // len(prompt)))[:1024]
    lm._prefill([(t, j, (0,), False) for j, t in enumerate(tokens[:64])])  # warm up
    L.llama_memory_clear(lm.mem, True)
    start = time.perf_counter()
    lm._prefill([(t, j, (0,), j == len(tokens) - 1) for j, t in enumerate(tokens)])
    prefill = len(tokens) / (time.perf_counter() - start)
    L.llama_memory_clear(lm.mem, True)
    lm._prefill([(t, j, tuple(range(slots)), j == len(prompt) - 1) for j, t in enumerate(prompt)])
    start = time.perf_counter()
    for step in range(steps):
        lm._prefill([(prompt[step % len(prompt)], len(prompt) + step, (s,), True) for s in range(slots)])
    decode = slots * steps / (time.perf_counter() - start)
    L.llama_memory_clear(lm.mem, True)
    return prefill, decode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-gen-toks", type=int, default=128)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--engines", default="llama.cpp-batched,llama.cpp,transformers,transformers-bf16")
    args = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))

    from gapbench.harness.models import embedded
    from gapbench.harness.models.llamacpp_batched import LlamaCppBatchedLM
    from gapbench.harness.runner import Runner, RunOptions
    from gapbench.harness.store import RunStore
    from gapbench.tasks import TASKS

    named = embedded.MODELS[args.model]
    lm = LlamaCppBatchedLM(gguf=str(embedded.ensure_gguf(model=named)), tokenizer=str(embedded.ensure_tokenizer(model=named)), slots=args.slots, n_threads=threads)
    task = TASKS.get("gsm8k")()
    docs = task.docs("test", args.data_dir, args.prompts)
    prompts = [lm.tok_encode(task.generation_prompt(d)) for d in docs]
    prefill_rate, decode_rate = ceilings(lm, prompts[0], args.slots)
    lm.close()

    engine_args = {
        "llama.cpp-batched": {"engine": "llama.cpp-batched", "model_args": f"slots={args.slots},n_threads={threads}"},
        "llama.cpp": {"engine": "llama.cpp", "model_args": f"n_threads={threads}"},
        "transformers": {"engine": "transformers"},
        "transformers-bf16": {"engine": "transformers", "model_args": "dtype=bfloat16"},
    }
    base = dict(model=args.model, tasks=["gsm8k"], data_dir=args.data_dir, limit=args.prompts, n=args.n, max_gen_toks=args.max_gen_toks, verifiers=["mc"], n_boot=200)
    from transformers import AutoTokenizer

    from gapbench.verifiers import VERIFIERS

    tok = AutoTokenizer.from_pretrained(str(embedded.ensure_tokenizer(model=named)))
    mc = VERIFIERS.get("mc")()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [e for e in args.engines.split(",") if e]:
            out = os.path.join(tmp, name)
            start = time.perf_counter()
            result = Runner(RunOptions(**base, **engine_args[name], out=out), log=lambda *_: None).run()[0]
            wall = time.perf_counter() - start
            samples = RunStore(Path(out) / "gsm8k").samples()
            mc_inputs = [
                tok.encode(r.context + r.continuation, add_special_tokens=False)[:-1]
                for d in docs
                for r in mc.requests(task, d, [samples[d.doc_id][i]["response"] for i in range(args.n)], {})
            ]
            rows[name] = {**result.timings, "wall": wall, "J": result.generation.J.value, "tokens": result.tokens.generated, "mc_tokens": trie_tokens(mc_inputs)}
            print(f"{name}: generate {result.timings['generate']:.1f} s, verify mc {result.timings['verify:mc']:.1f} s, J {result.generation.J.value:.3f}", flush=True)

    prompt_work = trie_tokens(prompts)
    print()
    print(f"{named.name}, GSM8K {args.prompts} prompts x n={args.n}, max {args.max_gen_toks} new tokens, MC; {threads} threads, {args.slots} slots")
    print(f"llama.cpp ceilings: prefill {prefill_rate:.0f} tokens/s, decode {decode_rate:.1f} tokens/s ({args.slots} sequences)")
    print("| engine | generate (s) | gen. tokens | of ceiling | verify MC (s) | of ceiling | whole run (s) | J |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        gen_work = prompt_work / prefill_rate + r["tokens"] / decode_rate
        mc_work = r["mc_tokens"] / prefill_rate
        print(f"| {name} | {r['generate']:.1f} | {r['tokens']} | {gen_work / r['generate']:.2f} | {r['verify:mc']:.1f} | {mc_work / r['verify:mc']:.2f} | {r['wall']:.1f} | {r['J']:.3f} |")


if __name__ == "__main__":
    main()
