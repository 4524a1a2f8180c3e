"""Benchmark: the same GSM8K run (n samples per prompt, MC verification) on vLLM's CPU backend
(``--model vllm``), on the transformers path (``hf-prefix``) and on llama.cpp (``--engine
llama.cpp``, the wheel's Q4_1 GGUF), one after the other in one benchmark run, and the vLLM run's
results.json against the hf-prefix run's.

    python benchmarks/vllm_cpu.py --data-dir ../shared/data --vllm-python VENV/bin/python \
        [--prompts 8] [--n 4] [--max-gen-toks 128] [--engines vllm,hf-prefix,llama.cpp] [--greedy]

vLLM lives in an environment of its own (``tests/vllm_cpu/build.sh``): each engine is a whole
``gapbench run`` in a child process, vLLM's with ``--vllm-python``, the others with this
interpreter; wall seconds are the child's, stage seconds the run's own timings. Both vLLM and
hf-prefix read the embedded SmolLM2-135M-Instruct in float32; llama.cpp reads its Q4_1 GGUF (other
weights: its J is not comparable, its time is). ``--greedy`` also runs both at temperature 0 and
compares their answers sample by sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(python: str, args: list[str], out: Path) -> tuple[dict, float, list[dict]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "nobind")}  # fmt: skip
    start = time.perf_counter()
    subprocess.run([python, "-m", "gapbench.harness.cli", "run", *args, "--out", str(out)], check=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    task = out / "gsm8k"
    samples = [json.loads(x) for x in (task / "samples.jsonl").read_text().splitlines()]
    return json.loads((task / "results.json").read_text()), wall, samples


def interval(metric: dict) -> str:
    """``value [lo, hi]``; ``n/a`` where the value is undefined (an AUROC with one class only)."""
    if metric.get("value") is None:
        return "n/a"
    ci = metric.get("ci") or [float("nan")] * 2
    return f"{metric['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-gen-toks", type=int, default=128)
    ap.add_argument("--vllm-python", default=sys.executable, help="the interpreter of vLLM's environment")
    ap.add_argument("--engines", default="vllm,hf-prefix,llama.cpp")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp server threads")
    ap.add_argument("--greedy", action="store_true", help="also run vLLM and hf-prefix at temperature 0 and compare the answers")
    args = ap.parse_args()

    from gapbench.harness.models import embedded

    smol = embedded.ensure(log=lambda *_: None)
    base = ["--tasks", "gsm8k", "--limit", str(args.prompts), "--n", str(args.n), "--max-gen-toks", str(args.max_gen_toks), "--verifiers", "mc"]
    if args.data_dir:
        base += ["--data-dir", str(Path(args.data_dir).resolve())]
    engines = {
        "vllm": (args.vllm_python, ["--model", "vllm", "--model-args", f"pretrained={smol},dtype=float32,max_model_len=2048,enforce_eager=True"]),
        "hf-prefix": (sys.executable, ["--model-args", "device=cpu"]),
        "llama.cpp": (sys.executable, ["--engine", "llama.cpp", "--model-args", f"n_threads={args.threads}"]),
    }
    chosen = args.engines.split(",")
    rows: dict[str, tuple[dict, float, list[dict]]] = {}
    greedy: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            python, extra = engines[name]
            rows[name] = run(python, base + extra, Path(tmp) / name)
            if args.greedy and name in ("vllm", "hf-prefix"):
                greedy[name] = run(python, base + extra + ["--temperature", "0"], Path(tmp) / f"{name}-greedy")[2]

    print(f"\nGSM8K, {args.prompts} prompts x n={args.n}, max {args.max_gen_toks} new tokens, MC verification; {os.cpu_count()} CPUs")
    print(f"{'':22}" + "".join(f"{n:>26}" for n in chosen))
    for label, get in (
        ("generate (s)", lambda r, w: f"{r['timings'].get('generate', float('nan')):.1f}"),
        ("verify mc (s)", lambda r, w: f"{r['timings'].get('verify:mc', float('nan')):.1f}"),
        ("whole run, wall (s)", lambda r, w: f"{w:.1f}"),
        ("generated tokens", lambda r, w: str((r.get("tokens") or {}).get("generated"))),
        ("J(f)", lambda r, w: interval(r["generation"]["J"])),
        ("gap (mc)", lambda r, w: interval(r["verifiers"]["mc"]["gap"])),
        ("AUROC (mc)", lambda r, w: interval({"value": r["verifiers"]["mc"]["verification"]["auroc"], "ci": r["verifiers"]["mc"]["verification"].get("auroc_ci")})),
    ):
        print(f"{label:22}" + "".join(f"{get(rows[n][0], rows[n][1]):>26}" for n in chosen))
    if "vllm" in rows and "hf-prefix" in rows:
        v, h = rows["vllm"][0], rows["hf-prefix"][0]
        inside = []
        for label, a, b in (
            ("J(f)", v["generation"]["J"], h["generation"]["J"]),
            ("gap", v["verifiers"]["mc"]["gap"], h["verifiers"]["mc"]["gap"]),
            ("AUROC", {"value": v["verifiers"]["mc"]["verification"]["auroc"], "ci": v["verifiers"]["mc"]["verification"].get("auroc_ci")},
             {"value": h["verifiers"]["mc"]["verification"]["auroc"], "ci": h["verifiers"]["mc"]["verification"].get("auroc_ci")}),
        ):  # fmt: skip
            both = a["ci"] and b["ci"] and a["ci"][0] <= b["value"] <= a["ci"][1] and b["ci"][0] <= a["value"] <= b["ci"][1]
            inside.append(f"{label} {'within' if both else 'NOT within'} each other's interval")
        print("vLLM vs hf-prefix: " + "; ".join(inside))
    if len(greedy) == 2:
        key = lambda r: (r["doc_id"], r["sample"])  # noqa: E731
        a = {key(r): r["response"] for r in greedy["vllm"]}
        b = {key(r): r["response"] for r in greedy["hf-prefix"]}
        same = sum(a[k] == b.get(k) for k in a)
        print(f"greedy (temperature 0): {same} of {len(a)} answers equal between vLLM and hf-prefix")
        for k in sorted(a):
            if a[k] != b.get(k):
                print(f"  differs at {k}:\n    vllm: {a[k]!r}\n    hf:   {b.get(k)!r}")


if __name__ == "__main__":
    main()
