"""The self-improvement loop (Song et al., "Mind the Gap", ICLR 2025, Section 5).

Round t, for t = 0 .. rounds-1, starting from f_0 = the base model:

1. **generate** n responses per training prompt from f_t and **verify** them with f_t's own
   verifier (or a fixed ``verifier_model``): a Runner run into ``round-t/train/``;
2. **filter**: keep what the filter w(u) keeps, with the keep logic the scorer uses (per prompt,
   the verifier's own ``keep`` for ensembles, else the rule on its ``u``). With the oracle filter
   (the diversity-preserving STaR-like control) a sample is kept when its ground truth g is 1
   (``threshold:1`` on u = g), whatever ``--filter`` says;
3. write the kept samples as an SFT data set, ``round-t/sft.jsonl`` (see :mod:`harness.improve.sft`);
4. **fine-tune** f_t on it into f_{t+1}: ``round-{t+1}/model/``, an ordinary HF folder with
   ``gapbench_meta.json``;
5. **evaluate** f_{t+1} on the evaluation split: a Runner run into ``round-{t+1}/eval/``
   (f_0 into ``round-0/eval/``), with the same verifier and the oracle beside it.

Every stage resumes: Runner runs resume through their run stores (a finished one makes no model
call), ``sft.jsonl`` is rewritten only when its content changes, and a round whose checkpoint
holds its metadata is not trained again (the checkpoint is written to a temporary folder and
renamed). ``improve.json`` holds the resolved settings; an out dir made with other settings is
refused, naming what differs. ``--rounds`` may grow between invocations to add rounds.

Reported per round (``round-t/round.json``, ``summary.json``, ``summary.md``, ``summary.png``):
J(f_t), J(f_t[w]), gap(f_t) and the relative gap on the evaluation split; J(f_{t+1}) against
J(f_t[w]) (did fine-tuning realise the gap?); pass@k for k = 1..n; the number of distinct
final answers per prompt; and on the training run the kept count, the filter's precision
(share of kept samples that are correct) and the prompts that lost all their samples.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from gapbench.harness import __version__
from gapbench.harness.config import differences
from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import FilterRule, parse_filter
from gapbench.harness.improve import sft
from gapbench.harness.metrics import filter_quality, filtered_accuracy, pass_at_k
from gapbench.harness.models import backends
from gapbench.harness.results import Results, to_json
from gapbench.harness.runner import Runner, slug
from gapbench.harness.settings import RunOptions, inherit, option, parse_task_args, run_fields_of
from gapbench.harness.store import RunStore
from gapbench.tasks import TASKS
from gapbench.verifiers.suite import build_verifiers

SCHEMA_VERSION = 1
ORACLE_RULE = FilterRule("threshold", 1.0)  # the oracle filter: keep the samples with g = 1
SETTINGS_FILE = "improve.json"
# settings that may change between invocations of one out dir: they do not change what is computed
# (task_args: the resolved task configuration, defaults included, is compared instead)
NOT_IDENTITY = ("out", "rounds", "gen_batch_size", "micro_batch_size", "n_boot", "data_dir", "task_args")


@dataclass
class ImproveOptions:
    """Everything ``gapbench improve`` takes. The fields it shares with a run (``inherit``) take their
    defaults and help from :class:`harness.settings.RunOptions`; ``run_options`` derives each round's
    runs from them."""

    out: str = field(metadata={"help": "folder of the loop (round-t/{train,eval,sft.jsonl,model,round.json}, summary.*)"})
    model: str | None = inherit("model", help="the base f_0: hub id, local checkpoint folder, or an lm-eval backend with --model-args pretrained=...; default: the embedded smollm2-135m-instruct")
    model_args: str | None = inherit("model_args", help="lm-eval model arguments, key=value,... (kept for every round's checkpoint, pretrained= replaced)")
    task: str = option("arith", "the loop's one task (see `gapbench tasks`); --tasks NAME, as gapbench run spells it, is the same")
    task_args: dict = option({}, "task.option=value,... (e.g. arith.levels=add2)", parse=parse_task_args)  # the task's options (option -> value)
    split: str = inherit("split", default="train", help="split whose prompts are sampled and fine-tuned on")
    eval_split: str = option("test", "split every f_t is evaluated on")
    limit: int | None = inherit("limit", help="first N training prompts")
    eval_limit: int | None = option(None, "first N evaluation prompts", parse=int)
    data_dir: str | None = inherit("data_dir")
    verifier: str = option("mc", "the verification method that filters (one; ensemble:a+b allowed); --verifiers NAME, as gapbench run spells it, is the same")
    verifier_model: str | None = inherit("verifier_model", help="a fixed verifier model instead of f_t's own")
    verifier_model_args: str | None = inherit("verifier_model_args")
    filter: str = inherit("filter", help="quantile:q or threshold:t on the verifier's u")
    oracle_filter: bool = option(False, "keep the samples with g = 1 instead (the STaR-like control; --filter is then only reported)")
    n: int = inherit("n", default=8, help="samples per training prompt")
    eval_n: int | None = option(None, "samples per evaluation prompt (default: --n); pass@k is reported for k = 1..this", parse=int)
    m: int = inherit("m")
    rounds: int = option(3, "fine-tuning rounds (f_0 -> f_rounds); may grow when resuming", parse=int)
    temperature: float = inherit("temperature")
    top_p: float = inherit("top_p")
    max_gen_toks: int | None = inherit("max_gen_toks")
    verify_max_gen_toks: int = inherit("verify_max_gen_toks")
    gen_batch_size: int | str = inherit("batch_size", flag="--gen-batch-size", help="lm-eval batch size for sampling and verifying (a number, or auto on GPU)")
    lr: float = option(2e-5, "fine-tuning learning rate (AdamW, linear decay)", parse=float)
    epochs: int = option(1, "fine-tuning epochs", parse=int)
    batch_size: int = option(
        8,
        "fine-tuning examples per optimizer step",
        parse=int,
        flag="--train-batch-size",
        deprecated={"--batch-size": " (in gapbench run --batch-size is lm-eval's batch size, which improve calls --gen-batch-size)"},
    )
    micro_batch_size: int = option(4, "examples per forward pass (gradient accumulation; same result)", parse=int)
    max_steps: int | None = option(None, "stop each fine-tune after this many optimizer steps (smoke tests)", parse=int)
    max_length: int = option(2048, "tokens per training example (the prompt is cut from the left)", parse=int)
    seed: int = inherit("seed")
    n_boot: int = inherit("n_boot", help="bootstrap resamples for the evaluation intervals")

    def settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def identity(self) -> dict:
        return {k: v for k, v in self.settings().items() if k not in NOT_IDENTITY}

    def train_settings(self) -> sft.TrainSettings:
        return sft.TrainSettings(
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            micro_batch_size=self.micro_batch_size,
            max_steps=self.max_steps,
            max_length=self.max_length,
            seed=self.seed,
        )


# ----------------------------------------------------------------------------------------------
# pure pieces (unit-tested)


def oracle_mask(g: Sequence[int]) -> list[bool]:
    """The oracle filter: keep exactly the correct samples (may keep none of a prompt's)."""
    return ORACLE_RULE.keep([float(x) for x in g])


def distinct_answers(answers: dict[str, Sequence[str | None]]) -> dict:
    """Distinct extracted final answers per prompt (None, no answer, is not an answer):
    mean, min, max over prompts, the histogram {count: prompts} and the share of samples without an answer."""
    if not answers:
        return {"mean": None, "min": None, "max": None, "histogram": {}, "unanswered_share": None}
    counts = [len({a for a in per if a is not None}) for per in answers.values()]
    total = sum(len(per) for per in answers.values())
    hist: dict[str, int] = {}
    for c in sorted(counts):
        hist[str(c)] = hist.get(str(c), 0) + 1
    return {
        "mean": float(np.mean(counts)),
        "min": int(min(counts)),
        "max": int(max(counts)),
        "histogram": hist,
        "unanswered_share": sum(a is None for per in answers.values() for a in per) / total if total else None,
    }


def pass_at_k_curve(G: np.ndarray) -> dict[str, float]:
    """pass@k for every k = 1..n (unbiased estimator, averaged over prompts)."""
    return {str(k): pass_at_k(G, k) for k in range(1, G.shape[1] + 1)}


def filter_stats(rows: Sequence[dict]) -> dict:
    """What the training filter did, from rows with doc_id, sample, g, keep (and answer):
    J(f_t) and J(f_t[w]) on the training prompts, kept count and share, precision (share of kept
    samples that are correct), recall, and prompts that lost all their samples."""
    by_doc: dict[str, list[dict]] = OrderedDict()
    for r in rows:
        by_doc.setdefault(str(r["doc_id"]), []).append(r)
    if not by_doc:
        raise GapbenchError("no training samples to filter.")
    n = len(next(iter(by_doc.values())))
    G = np.array([[r["g"] for r in sorted(v, key=lambda r: r["sample"])] for v in by_doc.values()], dtype=float).reshape(-1, n)
    K = np.array([[r["keep"] for r in sorted(v, key=lambda r: r["sample"])] for v in by_doc.values()], dtype=bool).reshape(-1, n)
    quality = filter_quality(G, K)
    J = float(G.mean(axis=1).mean())
    Jw, _ = filtered_accuracy(G, K)
    kept_answers = {d: [r.get("answer") for r in v if r["keep"]] for d, v in by_doc.items()}
    return {
        "n_prompts": len(by_doc),
        "n": n,
        "J": J,
        "J_filtered": Jw,
        "gap": Jw - J,
        "kept": int(K.sum()),
        "kept_share": quality.kept_share,
        "precision": quality.precision,
        "recall": quality.recall,
        "prompts_none_kept": quality.prompts_none_kept,
        "prompts_kept": int((K.sum(axis=1) > 0).sum()),
        "distinct_answers": distinct_answers({d: [r.get("answer") for r in v] for d, v in by_doc.items()}),
        "distinct_kept_answers": distinct_answers({d: a for d, a in kept_answers.items() if a}),
    }


def check_settings(path: Path, opts: ImproveOptions, resolved: dict | None = None) -> bool:
    """Refuse an out dir whose ``improve.json`` holds other settings (naming what differs);
    write the settings when new. ``resolved`` adds what the options resolve to (the task's
    configuration with its defaults, the verifier's): it is compared too. Returns True when the
    out dir was already started."""
    new = {**opts.identity(), **(resolved or {})}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise GapbenchError(f"{path}: not valid JSON ({exc}). Restore it, or use another --out.") from None
        old_identity = {k: v for k, v in {**(old.get("settings") or {}), **(old.get("resolved") or {})}.items() if k not in NOT_IDENTITY}
        diff = differences(_jsonable(old_identity), _jsonable(new))
        if diff:
            raise GapbenchError(
                f"{path.parent} holds a self-improvement run with different settings; refusing to mix them. Differences: "
                + "; ".join(diff)
                + ". Use another --out, or the same settings to resume (--rounds may change)."
            )
        started = True
    else:
        started = False
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"schema_version": SCHEMA_VERSION, "gapbench_version": __version__, "settings": opts.settings(), "resolved": resolved or {}})
    return started


# ----------------------------------------------------------------------------------------------
# the loop


class Improver:
    def __init__(self, opts: ImproveOptions, log=print):
        self.opts = opts
        self.log = log
        self.out = Path(opts.out)
        if opts.rounds < 0:
            raise GapbenchError(f"--rounds must be 0 or more (got {opts.rounds}).")
        if opts.n < 1 or (opts.eval_n is not None and opts.eval_n < 1):
            raise GapbenchError(f"--n and --eval-n must be at least 1 (got n={opts.n}, eval-n={opts.eval_n}).")
        self.rule = parse_filter(opts.filter)
        RunOptions(**run_fields_of(opts)).check()  # the settings its runs share, before any work
        opts.train_settings().check()
        self.verifier = build_verifiers([opts.verifier], opts.m)[0]
        task = TASKS.get(opts.task)(**opts.task_args)
        for split in (opts.split, opts.eval_split):
            if split not in task.splits:
                raise GapbenchError(f"task {opts.task!r} has no split {split!r}; its splits are: {', '.join(task.splits)}.")
        self.resolved = {"task_config": task.config(), "verifier_config": self.verifier.config()}
        if self.verifier.name == "oracle" and not opts.oracle_filter:
            self.log("note: --verifier oracle filters by ground truth; --oracle-filter is the documented control.")
        self.base = backends.resolve(opts.model, opts.model_args, log=log)
        if "pretrained" not in self.base.args:
            raise GapbenchError(
                f"improve fine-tunes the model's weights, so --model must name a checkpoint (a hub id, a local folder, "
                f"or an lm-eval backend with pretrained=...); {self.base.label!r} ({self.base.named_backend()}) has none."
            )
        self.trained = 0  # checkpoints trained by this invocation
        self._current = None  # (t, LazyModel of f_t) while f_t's runs go on
        self._verifier_model = None  # the fixed --verifier-model's LazyModel
        self._models: list = []

    # --- paths and models ---------------------------------------------------------------
    def round_dir(self, t: int) -> Path:
        return self.out / f"round-{t}"

    def model_dir(self, t: int) -> Path:
        return self.round_dir(t) / "model"

    def weights_of(self, t: int) -> str:
        """What to fine-tune from in round t: the base checkpoint, or f_t's folder."""
        return self.base.args["pretrained"] if t == 0 else str(self.model_dir(t).resolve())

    def model_options(self, t: int) -> tuple[str | None, str | None]:
        """``--model``/``--model-args`` of f_t."""
        if t == 0:
            return self.opts.model, self.opts.model_args
        ckpt = str(self.model_dir(t).resolve())
        if self.base.named_backend() in backends.HF_BACKENDS:  # f_t's folder resolves as the base did (hf-prefix on a CPU)
            rest = {k: v for k, v in self.base.args.items() if k not in ("pretrained", "device")}
            return ckpt, ",".join(f"{k}={v}" for k, v in rest.items()) or None
        args = {**self.base.args, "pretrained": ckpt}
        return self.base.named_backend(), ",".join(f"{k}={v}" for k, v in args.items())

    def model_meta(self, t: int) -> dict:
        """base/round for leaderboards; f_t (t >= 1) gets a display name instead of its folder path."""
        meta = {"base": self.base.label, "round": t, "improve_filter": self.filter_label()}
        if t >= 1:  # the loop's folder name, led by the base model's unless it already is
            folder, base = self.out.resolve().name, slug(self.base.label)
            meta["name"] = f"{folder if folder.startswith(base) else f'{base}-{folder}'}-r{t}"
        return meta

    def filter_label(self) -> str:
        return "oracle (g = 1)" if self.opts.oracle_filter else f"{self.verifier.method} {self.rule.spec}"

    def run_options(self, t: int, kind: str) -> RunOptions:
        """f_t's training (``kind="train"``) or evaluation run: the loop's run settings, with the
        round's model, the split, prompts and samples of that kind, and its own folder."""
        o = self.opts
        model, model_args = self.model_options(t)
        base = replace(
            RunOptions(**run_fields_of(o)),
            model=model,
            model_args=model_args,
            tasks=[o.task],
            task_args={o.task: dict(o.task_args)} if o.task_args else {},
            out=str(self.round_dir(t) / kind),
            model_meta=self.model_meta(t),
        )
        if kind == "train":  # the training run's intervals are not reported
            return replace(base, verifiers=["oracle"] if o.oracle_filter else [o.verifier], n_boot=0)
        return replace(
            base,
            split=o.eval_split,
            limit=o.eval_limit,
            n=o.eval_n or o.n,
            verifiers=list(dict.fromkeys([o.verifier, "oracle"])),
        )

    # --- stages ---------------------------------------------------------------------------
    def _runner(self, t: int, kind: str) -> Runner:
        """A Runner for f_t that shares f_t's loaded weights with the round's other run, and a
        fixed verifier model's with every run: each model is loaded once while it is needed."""
        runner = Runner(self.run_options(t, kind), log=self.log)
        own_verifier = runner.vmodel is runner.model
        if self._current is not None and self._current[0] == t:
            runner.model = self._current[1]
        else:
            self.release()
            self._current = (t, runner.model)
        if own_verifier:
            runner.vmodel = runner.model
        elif self._verifier_model is None:
            self._verifier_model = runner.vmodel
        else:
            runner.vmodel = self._verifier_model
        for lazy in (runner.model, runner.vmodel):
            if all(lazy is not seen for seen in self._models):
                self._models.append(lazy)
        return runner

    def release(self) -> None:
        """Drop every loaded model (before a fine-tune needs the memory, and at the end)."""
        for lazy in self._models:
            lazy._lm = None
        sft._free()

    @property
    def model_calls(self) -> int:
        """Model requests (generations and log-likelihoods) made by this invocation."""
        return sum(lazy.calls for lazy in self._models)

    def evaluate(self, t: int) -> dict:
        self.log(f"== round {t}: evaluate f_{t} on {self.opts.eval_split}")
        start = time.perf_counter()
        results = self._runner(t, "eval").run()[0]
        stats = eval_stats(results, Path(results.run.dir), self.verifier.method, self.opts.oracle_filter)
        stats["seconds_this_invocation"] = round(time.perf_counter() - start, 2)
        return stats

    def train_samples(self, t: int) -> tuple[list[dict], Results, float]:
        """Rows (doc_id, sample, prompt, response, u, g, answer, keep) of f_t's training run, its results,
        and the seconds this invocation spent on it."""
        self.log(f"== round {t}: sample and verify f_{t} on {self.opts.split}")
        start = time.perf_counter()
        runner = self._runner(t, "train")
        run = runner.run_stored()[0]  # the run as its scoring read it: no second grading or rescoring
        task = runner.tasks[0]
        config = runner.config(task)
        docs = task.docs(config.split, Path(self.opts.data_dir) if self.opts.data_dir else None, self.opts.limit)
        samples, grades = run.responses, run.grades
        if self.opts.oracle_filter:
            u = {d.doc_id: [float(gr.g) for gr in grades[d.doc_id]] for d in docs}
            keeps = {d.doc_id: oracle_mask([gr.g for gr in grades[d.doc_id]]) for d in docs}
        else:
            u = run.u[self.verifier.method]
            keeps = run.keep(self.verifier.method, self.rule)
        rows = [
            {
                "doc_id": d.doc_id,
                "sample": i,
                "prompt": task.generation_prompt(d),
                "response": samples[d.doc_id][i],
                "u": u[d.doc_id][i],
                "g": grades[d.doc_id][i].g,
                "answer": grades[d.doc_id][i].answer,
                "keep": bool(keeps[d.doc_id][i]),
                "truncated": (run.samples[d.doc_id][i].get("gen_tokens") or 0) >= config.sampling["max_gen_toks"],
            }
            for d in docs
            for i in range(config.n)
        ]
        return rows, run.results, round(time.perf_counter() - start, 2)

    def check_checkpoint(self, t: int, sft_path: Path, digest: str) -> dict | None:
        """The metadata of a finished f_{t+1}, None when there is none; refused when it was trained
        on other data than round t's data set (of sha256 ``digest``) now is."""
        target = self.model_dir(t + 1)
        meta = sft.read_meta(target)
        if meta is not None and meta.get("dataset", {}).get("sha256") != digest:
            raise GapbenchError(
                f"{target} was trained on a data set with sha256 {meta.get('dataset', {}).get('sha256')}, but the kept "
                f"samples of round {t} now make one with sha256 {digest} (the stored samples, the grader or the SFT format "
                f"changed). Delete {target} and every later round to train again, or use another --out."
            )
        return meta

    def fine_tune(self, t: int, sft_path: Path, digest: str, kept: int) -> dict:
        """f_{t+1} from f_t and round t's data set; a finished checkpoint is reused."""
        target = self.model_dir(t + 1)
        meta = self.check_checkpoint(t, sft_path, digest)
        if meta is not None:
            self.log(f"== round {t}: f_{t + 1} already trained ({target})")
            return meta
        self.log(f"== round {t}: fine-tune f_{t} on {kept} kept samples -> f_{t + 1}")
        self.release()
        records = sft.read_dataset(sft_path)
        meta = {
            "gapbench_version": __version__,
            "base": self.base.label,
            "round": t + 1,
            "parent": self.weights_of(t),
            "task": self.opts.task,
            "task_args": self.opts.task_args,
            "split": self.opts.split,
            "filter": self.filter_label(),
            "oracle_filter": self.opts.oracle_filter,
            "dataset": {"path": str(sft_path.resolve()), "sha256": digest, "examples": len(records)},
            "kept": kept,
            "created": _now(),
        }
        tokenizer = self.base.args.get("tokenizer") if t == 0 else None
        meta = sft.finetune(self.weights_of(t), records, target, self.opts.train_settings(), meta, tokenizer_name=tokenizer, log=self.log)
        self.trained += 1
        return meta

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> dict:
        started = check_settings(self.out / SETTINGS_FILE, self.opts, self.resolved)
        self.log(f"self-improvement of {self.base.label} on {self.opts.task}: {self.opts.rounds} round(s), "
                 f"filter {self.filter_label()} -> {self.out}" + (" (resuming)" if started else ""))
        rounds: list[dict] = []
        evals = {0: self.evaluate(0)}
        for t in range(self.opts.rounds + 1):
            record = {"round": t, "model": self.model_label(t), "base": self.base.label, "eval": evals[t], "train": None, "sft": None, "next": None}
            if t < self.opts.rounds:
                rows, train_results, train_seconds = self.train_samples(t)
                stats = filter_stats(rows)
                stats["dir"] = train_results.run.dir
                stats["timings"] = train_results.timings
                stats["seconds_this_invocation"] = train_seconds
                record["train"] = stats
                sft_path = self.round_dir(t) / "sft.jsonl"
                records = sft.sft_records(t, rows)
                self.check_checkpoint(t, sft_path, sft.sha256_text(sft.dataset_text(records)))  # before touching the file it was trained on
                digest = sft.write_dataset(sft_path, records)
                record["sft"] = {"path": str(sft_path), "sha256": digest, "examples": len(records), "format": "prompt/completion"}
                if not records:
                    record["stopped"] = "the filter kept no sample: nothing to fine-tune on"
                    self._write_round(record, rounds)
                    raise GapbenchError(
                        f"round {t}: the filter ({self.filter_label()}) kept none of the {stats['n_prompts'] * stats['n']} training "
                        f"samples, so there is nothing to fine-tune on (see {sft_path}). Use a looser --filter, more samples (--n), "
                        "or more prompts (--limit)."
                    )
                ft_start = time.perf_counter()
                meta = self.fine_tune(t, sft_path, digest, len(records))
                record["checkpoint"] = {
                    "path": str(self.model_dir(t + 1)),
                    "training": meta.get("training"),
                    "seconds_this_invocation": round(time.perf_counter() - ft_start, 2),
                }
                evals[t + 1] = self.evaluate(t + 1)
                record["next"] = realised(evals[t], evals[t + 1])
            self._write_round(record, rounds)
        self.release()
        summary = {
            "schema_version": SCHEMA_VERSION,
            "gapbench_version": __version__,
            "created": _now(),
            "settings": self.opts.settings(),
            "base": self.base.label,
            "filter": self.filter_label(),
            "verifier": self.verifier.method,
            "rounds": rounds,
        }
        _write_json(self.out / "summary.json", summary)
        (self.out / "summary.md").write_text(render_markdown(summary))
        plot(summary, self.out / "summary.png")
        self.log(f"summary: {self.out / 'summary.md'}")
        return summary

    def model_label(self, t: int) -> str:
        return self.base.label if t == 0 else str(self.model_dir(t))

    def _write_round(self, record: dict, rounds: list[dict]) -> None:
        rounds.append(record)
        _write_json(self.round_dir(record["round"]) / "round.json", {"schema_version": SCHEMA_VERSION, **record})


# ----------------------------------------------------------------------------------------------
# reading runs back


def eval_stats(results: Results, store_dir: Path, method: str, oracle_filter: bool) -> dict:
    """One evaluation run's numbers for the round tables."""
    grades = {d: [rows[i] for i in sorted(rows)] for d, rows in RunStore(store_dir).grades().items()}
    G = np.array([[int(r["g"]) for r in per] for per in grades.values()], dtype=float)
    block = results.verifiers[method]
    oracle_J = filtered_accuracy(G, np.array([oracle_mask(row) for row in G.astype(int)], dtype=bool))[0]
    return {
        "dir": str(store_dir),
        "split": results.task.split,
        "n_prompts": results.sizes.n_prompts,
        "n": results.sizes.n,
        "J": to_json(results.generation.J),
        "J_filtered": to_json(block.J_filtered),
        "gap": to_json(block.gap),
        "relative_gap": to_json(block.relative_gap),
        "verification": to_json(block.verification),
        "filter_precision": block.filter.precision,
        "best_of_n": block.best_of_n,
        # J(f_t[w]) for the filter that trains: the self-verification filter, or the oracle (g = 1)
        "J_filtered_train_filter": oracle_J if oracle_filter else block.J_filtered.value,
        "J_filtered_oracle": oracle_J,
        "pass@k": pass_at_k_curve(G),
        "maj@k": results.generation.maj_at_k,
        "distinct_answers": distinct_answers({d: [r.get("answer") for r in per] for d, per in grades.items()}),
        "timings": results.timings,
        "results": str(Path(store_dir) / "results.json"),
    }


def realised(before: dict, after: dict) -> dict:
    """Did the update realise the gap? J(f_{t+1}) against J(f_t) and J(f_t[w]) on the evaluation split."""
    J_t = before["J"]["value"]
    J_next = after["J"]["value"]
    J_w = before["J_filtered_train_filter"]
    predicted = J_w - J_t
    return {
        "J": J_next,
        "J_t": J_t,
        "J_filtered_t": J_w,
        "improvement": J_next - J_t,  # realised: J(f_{t+1}) - J(f_t)
        "predicted_gap": predicted,  # J(f_t[w]) - J(f_t)
        "J_minus_J_filtered_t": J_next - J_w,  # >= 0: the update realised (at least) the gap
        "realised_share": (J_next - J_t) / predicted if abs(predicted) > 1e-12 else None,
    }


# ----------------------------------------------------------------------------------------------
# the report


def _f(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, dict):
        x = x.get("value")
        if x is None:
            return "n/a"
    return f"{x:+.{digits}f}" if isinstance(x, float) and x < 0 else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def render_markdown(summary: dict) -> str:
    s = summary["settings"]
    rounds = summary["rounds"]
    lines = [
        f"# Self-improvement of {summary['base']} on {s['task']}",
        "",
        f"Train: {s['split']} ({s['limit'] or 'all'} prompts x n={s['n']}); evaluation: {s['eval_split']} "
        f"({s['eval_limit'] or 'all'} prompts x n={s['eval_n'] or s['n']}). Verifier {summary['verifier']}"
        + (f" (fixed model {s['verifier_model']})" if s.get("verifier_model") else " (f_t's own)")
        + f"; training filter: {summary['filter']}. Fine-tune: lr {s['lr']}, {s['epochs']} epoch(s), batch {s['batch_size']}"
        + (f", max {s['max_steps']} steps" if s.get("max_steps") else "")
        + ".",
        "",
        "## Evaluation split, per round",
        "",
        "| round | J(f_t) | J(f_t[w]) | gap(f_t) | relative gap | J(f_t[oracle]) | distinct answers / prompt | J(f_t+1) | J(f_t+1) - J(f_t) | J(f_t+1) - J(f_t[w]) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        e, nx = r["eval"], r.get("next") or {}
        lines.append(
            f"| {r['round']} | {_f(e['J'])} | {_f(e['J_filtered'])} | {_f(e['gap'])} | {_f(e['relative_gap'])} | "
            f"{_f(e['J_filtered_oracle'])} | {_f(e['distinct_answers']['mean'], 2)} | {_f(nx.get('J'))} | "
            f"{_f(nx.get('improvement'))} | {_f(nx.get('J_minus_J_filtered_t'))} |"
        )
    ks = list(rounds[0]["eval"]["pass@k"]) if rounds else []
    lines += ["", "## pass@k on the evaluation split (k = 1..n)", "", "| round | " + " | ".join(f"pass@{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for r in rounds:
        lines.append(f"| {r['round']} | " + " | ".join(_f(r["eval"]["pass@k"].get(k)) for k in ks) + " |")
    lines += [
        "",
        "## Training split: what the filter kept",
        "",
        "| round | J(f_t) train | J(f_t[w]) train | kept | kept share | filter precision | prompts with none kept | distinct answers / prompt | examples | steps | loss first -> last | fine-tune s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        tr = r.get("train")
        if not tr:
            continue
        training = (r.get("checkpoint") or {}).get("training") or {}
        lines.append(
            f"| {r['round']} | {_f(tr['J'])} | {_f(tr['J_filtered'])} | {tr['kept']} | {_f(tr['kept_share'], 2)} | {_f(tr['precision'])} | "
            f"{tr['prompts_none_kept']} | {_f(tr['distinct_answers']['mean'], 2)} | {(r.get('sft') or {}).get('examples', 'n/a')} | "
            f"{training.get('steps', 'n/a')} | {_f(training.get('loss_first'))} -> {_f(training.get('loss_last'))} | {_f(training.get('seconds'), 1)} |"
        )
    lines += ["", "![J, gap and pass@k by round](summary.png)", ""]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names are text: "$x^$" is no formula
    import matplotlib.pyplot as plt

    rounds = summary["rounds"]
    ts = [r["round"] for r in rounds]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.plot(ts, [r["eval"]["J"]["value"] for r in rounds], "o-", label="J(f_t)")
    ax.plot(ts, [r["eval"]["J_filtered"]["value"] for r in rounds], "s--", label="J(f_t[w])")
    ax.set(xlabel="round t", ylabel="accuracy", title="generation accuracy")
    ax.legend()
    ax = axes[1]
    ax.plot(ts, [r["eval"]["gap"]["value"] for r in rounds], "o-", label="gap(f_t)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="round t", ylabel="gap", title="generation-verification gap")
    ax.legend()
    ax = axes[2]
    for r in rounds:
        curve = r["eval"]["pass@k"]
        ax.plot([int(k) for k in curve], list(curve.values()), "o-", label=f"round {r['round']}")
    ax.set(xlabel="k", ylabel="pass@k", title="pass@k (evaluation split)")
    n_max = max((len(r["eval"]["pass@k"]) for r in rounds), default=1)
    if n_max <= 16:
        ax.set_xticks(range(1, n_max + 1))
    ax.legend()
    for ax in axes[:2]:
        ax.set_xticks(ts)
    fig.suptitle(f"{summary['base']}: self-improvement, filter {summary['filter']}")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
