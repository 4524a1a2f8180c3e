"""The stage runner: generate -> verify -> grade -> score -> results.json, per task.

Every model call happens here (through :mod:`harness.models.backends`). Each stage reads
what the store already holds and asks the model only for what is missing, in
chunks that are appended to disk as they finish.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from gapbench.harness import __version__, chat, scoring, shards
from gapbench.harness.config import RunConfig, Sampling
from gapbench.harness.digest import text_digest
from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import parse_filter
from gapbench.harness.jsonl import read_jsonl
from gapbench.harness.models import backends
from gapbench.harness.results import SCHEMA_VERSION, ChatInfo, ModelInfo, Results, RunRef, SamplingInfo, Sizes, TaskInfo, ThreadsInfo, Tokens, build, from_json
from gapbench.harness.settings import RunOptions
from gapbench.harness.store import DIGESTS, RunStore
from gapbench.harness.stored_run import StoredRun, scored_run
from gapbench.tasks import TASKS, Doc, Task
from gapbench.verifiers import prompts as verification_prompts
from gapbench.verifiers.suite import build_verifiers


class LazyModel:
    """Loads the model on first use, so a run whose work is all stored makes no model call."""

    def __init__(self, spec: backends.ModelSpec, batch_size, log, *, refuse: str | None = None):
        self.spec, self.batch_size, self.log = spec, batch_size, log
        self.refuse = refuse  # why this run may not load the model (``gapbench merge``), or None
        self._lm = None
        self._special: tuple[str, ...] | None = None
        self.calls = 0

    @property
    def lm(self):
        if self._lm is None:
            if self.refuse:
                raise GapbenchError(self.refuse)
            self.log(f"loading {self.spec.label} ({self.spec.backend}, {self.spec.arg_string()}) ...")
            self._lm = backends.load(self.spec, self.batch_size)
        return self._lm

    def close(self) -> None:
        """Stop what the loaded model started (its memory, a server). The closed model stays readable
        (its counters), not callable: a runner closes only the models it loaded, once its run is done."""
        if self._lm is not None:
            backends.close(self._lm)

    @property
    def loaded(self) -> bool:
        return self._lm is not None

    def generate(self, requests):
        self.calls += len(requests)
        return backends.generate(self.lm, requests)

    def loglikelihood(self, requests):
        self.calls += len(requests)
        return backends.loglikelihood(self.lm, requests)

    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens of the model's tokenizer (read without loading the weights where the
        tokenizer loads alone, so a resumed run's prompts are the same before and after loading)."""
        if self._special is None:
            self._special = backends.special_tokens(self.spec)
        return self._special

    def apply_chat_template(self, messages: list[dict]) -> str:
        """The model's own chat template applied to ``messages``, with the generation prompt (loads the model)."""
        return self.lm.apply_chat_template(messages, add_generation_prompt=True)


def slug(text: str) -> str:
    """A folder name made from a model or task name: letters, digits and ``._-``, never ``.``, ``..``
    or a path, so a run directory always lies under its parent (``runs/``, ``--out``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[-60:].strip("-.") or "model"


# what decides a run's samples (not how they are verified): a run may take another run's stored
# samples when these agree (gapbench cross: f's samples, verified by another model g). Not the
# limit: a sample is seeded by (run seed, doc_id, index) alone (sample_seed), so a run over more
# prompts holds the same draws for the prompts both runs hold, and only those are taken
GENERATION_IDENTITY = ("model", "task", "split", "n", "sampling", "seed", "chat")
# what, beside the verifying model itself, decides a verdict: a run that took another run's samples
# takes its verdicts too where these are that run's (``Runner.reuse_verdicts``)
VERIFICATION_IDENTITY = ("task", "split", "m", "verification_sampling", "seed", "chat")


def verifier_of(run: dict) -> tuple[dict | None, object]:
    """The model that verified a run (run.json's ``verifier_model``, else its ``model``: self-verification)
    and the digest of its weights as run.json recorded it (None where none was recorded)."""
    which = "verifier_model" if run.get("verifier_model") else "model"
    digests = run.get(DIGESTS)
    return run.get(which), digests.get(which) if isinstance(digests, dict) else None


class Runner:
    def __init__(self, opts: RunOptions, log=print, *, samples_from: Path | None = None, models: dict | None = None, merge_only: bool = False):
        """``samples_from``: a run folder (one subfolder per task) whose stored samples this run takes
        instead of generating them, where its generation settings are this run's. ``models``: loaded
        models shared between runners (keyed by their identity), so a model loads once. ``merge_only``:
        ``gapbench merge``: join the finished shards of the run and score, with no model call (a missing
        sample or verdict is an error, not work to do)."""
        self.opts = opts
        self.log = log
        self.samples_from = Path(samples_from) if samples_from else None
        self.merge_only = merge_only
        self.shard_meta: dict = {}  # the model metadata the merged shards recorded (:func:`shards.model_meta`)
        if merge_only and opts.shard:
            raise GapbenchError("gapbench merge joins every shard of a run: drop --shard.")
        self.rule = parse_filter(opts.filter)
        opts.check()
        self.tasks: list[Task] = [TASKS.get(name)(**opts.task_args.get(name, {})) for name in opts.tasks]
        unknown = set(opts.task_args) - set(opts.tasks)
        if unknown:
            raise GapbenchError(f"--task-args names {', '.join(sorted(unknown))}, which is not in --tasks {','.join(opts.tasks)}.")
        self.verifiers = build_verifiers(opts.verifiers, opts.m)
        self.spec = backends.resolve(opts.model, opts.model_args, log=log, engine=opts.engine)
        self.vspec = backends.resolve(opts.verifier_model, opts.verifier_model_args, log=log, engine=opts.engine) if opts.verifier_model else None
        for spec in filter(None, (self.spec, self.vspec)):
            if spec.backend == backends.VLLM:  # --seed reaches the engine (lm-eval's default is 1234)
                spec.args.setdefault("seed", str(opts.seed))
        # vLLM samples a prompt's n samples in one request, seeded s, s+1, ...: the runner seeds them so
        self.consecutive = self.spec.backend == backends.VLLM
        refuse = (
            "gapbench merge makes no model call, but the merged shards lack work (see above); finish the shards "
            "(`gapbench run` with the same options and --shard i/N), or run without --shard to do the rest here."
            if merge_only
            else None
        )
        # models shared with other runners (``models``: gapbench cross) stay loaded for them: whoever
        # passed them closes them (:func:`close_models`); a runner closes only the models it loaded
        self.owns_models = models is None
        shared = models if models is not None else {}
        self.model = _lazy(shared, self.spec, opts.batch_size, log, refuse)
        self.vmodel = _lazy(shared, self.vspec, opts.batch_size, log, refuse) if self.vspec else self.model
        for v in self.verifiers:  # what a response writes loses the verifying model's special tokens
            v.special_tokens = self.vmodel.special_tokens
        self.chat = chat.settings(opts.apply_chat_template, opts.fewshot_as_multiturn)
        self.prompt = self._plain
        if self.chat:  # each model reads prompts in its own template: f the generation, g the verification prompts
            self.prompt = chat.ChatFormat(self.model.apply_chat_template, opts.fewshot_as_multiturn, self.spec.label)
            vchat = chat.ChatFormat(self.vmodel.apply_chat_template, opts.fewshot_as_multiturn, self.vspec.label if self.vspec else self.spec.label)
            for v in self.verifiers:
                v.chat = vchat

    @staticmethod
    def _plain(turns: list[str]) -> str:
        return "".join(turns)

    def stop(self, until: list[str]) -> list[str]:
        """Stop strings of a generation: a chat answer keeps only those that are not whitespace."""
        return chat.chat_stop(until) if self.chat else list(until)

    # --- configuration ---------------------------------------------------------
    def config(self, task: Task) -> RunConfig:
        o = self.opts
        sampling = Sampling(o.temperature, o.top_p, o.max_gen_toks or task.max_gen_toks or 512)
        vsampling = Sampling(o.temperature, o.top_p, o.verify_max_gen_toks)
        return RunConfig(
            model=self.spec.identity(),
            verifier_model=self.vspec.identity() if self.vspec else None,
            task={**task.config(), "verification_prompts": verification_prompts.VERSION},
            split=o.split or task.default_split,
            limit=o.limit,
            n=o.n,
            m=o.m,
            sampling=asdict(sampling),
            verification_sampling=asdict(vsampling),
            seed=o.seed,
            verifiers=[v.method for v in self.verifiers],
            filter=self.rule.spec,
            chat=self.chat,
        )

    def store_dir(self, task: Task, config: RunConfig) -> Path:
        """The task's run directory; a shard's store is a folder in it (:mod:`harness.shards`)."""
        if self.opts.out:
            return Path(self.opts.out) / slug(task.name)
        return Path("runs") / slug(self.spec.label) / f"{slug(task.name)}-{config.hash()[:8]}"

    # --- the run -------------------------------------------------------------
    def run(self) -> list[Results]:
        """The results of every task run (a shard's run scores none)."""
        return [s.results for s in self.run_stored()]  # type: ignore[misc]

    def run_stored(self) -> list[StoredRun]:
        """Every task's run, generated, verified and scored: its :class:`harness.stored_run.StoredRun`
        (results, samples, grades, replies, verdicts, u), so that a caller needs no second reading."""
        plans: list[tuple[Task, RunConfig, list[Doc], RunStore, bool]] = []
        for task in self.tasks:  # every check that needs no model comes first
            config = self.config(task)
            docs = task.docs(config.split, Path(self.opts.data_dir) if self.opts.data_dir else None, self.opts.limit)
            if not docs:
                raise GapbenchError(f"task {task.name!r} has no documents in split {config.split!r} with --limit {self.opts.limit}.")
            run_dir = self.store_dir(task, config)
            if self.opts.shard:
                all_docs, docs = docs, shards.take(docs, self.opts.shard)
                if not docs:
                    raise GapbenchError(f"--shard {self.opts.shard}: task {task.name!r} has only {len(all_docs)} prompts, so this shard has none; use fewer shards.")
                run_dir = run_dir / shards.folder(self.opts.shard)
            else:
                self._shards_ready(task, config, docs, run_dir)  # before any store is opened
            store = RunStore(run_dir)
            try:
                resumed = store.open(config, self.digests(docs), n_boot=self.opts.n_boot, migrate=_portable_models)
            except BaseException:
                for *_, opened, _ in plans:
                    opened.close()
                raise
            plans.append((task, config, docs, store, resumed))
        results = []
        chosen = _threads_info()
        if chosen is not None and not self.merge_only:
            self.log(f"CPU threads: {chosen.threads} ({chosen.reason}; OMP_WAIT_POLICY={chosen.omp_wait_policy or 'unset'})")
        try:
            if not self.merge_only:
                backends.check_logprobs(self.vspec or self.spec, [v.method for v in self.verifiers if v.needs_logprobs])
            for task, config, docs, store, resumed in plans:
                if not self.opts.shard:
                    self._merge(task, config, docs, store)
                what = f" (shard {self.opts.shard})" if self.opts.shard else ""
                self.log(f"{task.name}{what}: {len(docs)} prompts x {config.n} samples -> {store.dir}" + (" (resuming)" if resumed else ""))
                self.generate_stage(task, config, docs, store)
                self.verify_stage(task, config, docs, store)
                if self.opts.shard:  # a shard only does model work: the merged run scores
                    meta = {"model": self._model_meta(self.model, self.spec, store) if self.model.loaded else None}
                    if self.vspec:
                        meta["verifier_model"] = self._model_meta(self.vmodel, self.vspec, store) if self.vmodel.loaded else None
                    shards.mark_done(store.dir, self.opts.shard, config.hash(), [d.doc_id for d in docs], meta)
                    self.log(
                        f"{task.name}: shard {self.opts.shard} done. When every shard is, `gapbench merge` with the same "
                        "options (or the same `gapbench run` without --shard) joins and scores them."
                    )
                    continue
                results.append(self.score_stage(task, config, docs, store))
        finally:
            for *_, store, _ in plans:
                store.close()
            if self.owns_models:
                for model in (self.model, self.vmodel):
                    model.close()  # a server this run started stops with it
        return results

    def digests(self, docs: list[Doc]) -> dict:
        """What run.json records of what a run measures: the digest of its documents (all they hold)
        and of the model's weight files (:func:`backends.weights`; computed once per runner)."""
        if not hasattr(self, "_weights"):
            self._weights = {"model": backends.weights(self.spec), **({"verifier_model": backends.weights(self.vspec)} if self.vspec else {})}
        return {"docs": {"count": len(docs), "sha256": docs_digest(docs)}, **self._weights}

    def _record_facts(self, store: RunStore) -> None:
        """Record in run.json what the loaded models tell of themselves, once per store and model, before
        their replies are stored (facts other than those recorded are refused: :meth:`RunStore.record_facts`)."""
        done = self.__dict__.setdefault("_facts_done", set())
        for which, model, spec in (("model", self.model, self.spec), ("verifier_model", self.vmodel, self.vspec)):
            if spec is None or not model.loaded or (str(store.dir), which) in done:
                continue
            store.record_facts(which, backends.loaded_facts(model.lm, spec))
            done.add((str(store.dir), which))

    def reuse_samples(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore) -> int:
        """Copy into ``store`` the samples of :attr:`samples_from` it lacks (none when that run's
        generation settings differ from this run's; the reason is logged). Returns how many."""
        found = self._source_run(task, store)
        if found is None:
            return 0
        source, theirs = found
        ours = config.to_json()
        differ = [k for k in GENERATION_IDENTITY if theirs.get(k) != ours.get(k)]
        if differ:
            self.log(f"{task.name}: not reusing the samples of {source.dir}: its {', '.join(differ)} differ from this run's.")
            return 0
        have, stored = store.samples(), source.samples()
        wanted = {doc.doc_id for doc in docs}
        new = [
            {k: v for k, v in r.items() if k != "__line__"}
            for d, per in stored.items()
            if d in wanted
            for i, r in sorted(per.items())
            if i < config.n and i not in have.get(d, {})
        ]
        store.add_samples(new)
        return len(new)

    def _source_run(self, task: Task, store: RunStore) -> tuple[RunStore, dict] | None:
        """The run of :attr:`samples_from` for ``task`` and its run.json (None: no such run, or it is
        this run's own folder); a run.json that is not JSON is an error naming it."""
        if self.samples_from is None:
            return None
        source = RunStore(self.samples_from / slug(task.name))
        if not source.run_path.is_file() or source.dir.resolve() == store.dir.resolve():
            return None
        try:
            return source, json.loads(source.run_path.read_text())
        except json.JSONDecodeError as exc:
            raise GapbenchError(f"{source.run_path}: not valid JSON ({exc}).") from None

    def reuse_verdicts(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore, samples: dict[str, list[str]]) -> int:
        """Copy into ``store`` the verdicts of :attr:`samples_from` that this run would compute itself:
        those of its model-calling verifiers, on the prompts whose samples this run holds as that run
        does, where that run was verified by the same model (spec and weights' digest) with the same
        verification settings. ``gapbench cross --samples-from`` thus takes a model's own verdicts on
        the diagonal instead of recomputing them. Returns how many; ``check_judged`` then checks each
        against the text it judged, as any stored verdict. ``samples``: this run's, per prompt."""
        found = self._source_run(task, store)
        if found is None or not found[0].verdicts_path.is_file():
            return 0
        source, theirs = found
        ours = {**config.to_json(), DIGESTS: store.recorded().get(DIGESTS)}
        if any(theirs.get(k) != ours.get(k) for k in VERIFICATION_IDENTITY) or verifier_of(theirs) != verifier_of(ours):
            return 0
        methods = {v.method for v in self.verifiers if v.uses_model}
        have, stored = store.replies(), source.samples()
        same = {doc.doc_id for doc in docs if [stored.get(doc.doc_id, {}).get(i, {}).get("response") for i in range(config.n)] == samples[doc.doc_id]}
        new = [
            {k: v for k, v in r.items() if k != "__line__"}
            for r in read_jsonl(source.verdicts_path)
            if r.get("method") in methods and str(r.get("doc_id")) in same and r.get("key") not in have.get(r["method"], {}).get(str(r["doc_id"]), {})
        ]
        store.add_verdicts(new)
        if new:
            self.log(f"{task.name}: took {len(new)} stored verdicts of {source.dir} (the same verifier and settings)")
        return len(new)

    def _shards_ready(self, task: Task, config: RunConfig, docs: list[Doc], run_dir: Path) -> None:
        """An unsharded run over a run directory that holds shards goes on only once every shard is
        done (else it would redo their prompts beside them); ``gapbench merge`` needs shards."""
        if shards.found(run_dir):
            shards.check_complete(run_dir, config.hash(), docs, "`gapbench run` with the same options")
        elif self.merge_only:
            raise GapbenchError(f"{run_dir} holds no shards (shard-i-of-N folders) to merge; check --out and the options against the shards' runs.")

    def _merge(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore) -> None:
        if shards.found(store.dir):
            done = shards.check_complete(store.dir, config.hash(), docs, "`gapbench run` with the same options")
            added = shards.merge(store, done, docs)
            self.shard_meta = shards.model_meta(done)
            for which, meta in self.shard_meta.items():  # the model as the shards that loaded it saw it
                if meta and which not in store.facts():
                    store.record_facts(which, {k: meta.get(k) for k in backends.FACTS})
            self.log(f"{task.name}: merged {len(done)} shards into {store.dir} ({added} new records)")
            note = shards.thread_note(done)
            if note:
                self.log(f"{task.name}: {note}")

    def generate_stage(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore) -> None:
        if self.samples_from is not None:
            reused = self.reuse_samples(task, config, docs, store)
            if reused:
                self.log(f"{task.name}: took {reused} stored samples of {self.samples_from / slug(task.name)}")
        have = store.samples()
        todo = [(doc, i) for doc in docs for i in range(config.n) if i not in have.get(doc.doc_id, {})]
        if not todo:
            return
        _seed(config.seed)  # for models that draw from torch's global generator
        gen_kwargs = Sampling(**config.sampling).gen_kwargs(self.stop(list(task.stop)))
        start = time.perf_counter()
        with tqdm(total=len(todo), desc=f"{task.name}: generate", unit="sample", dynamic_ncols=True) as bar:
            for chunk in _chunks(todo, self._chunk_size()):
                contexts = [self.prompt(task.generation_turns(doc)) for doc, _ in chunk]
                replies = self.model.generate([(c, sample_seed(gen_kwargs, config.seed, doc.doc_id, i, self.consecutive)) for c, (doc, i) in zip(contexts, chunk)])
                lm = self.model.lm
                self._record_facts(store)
                store.add_samples(
                    {
                        "doc_id": doc.doc_id,
                        "sample": i,
                        "response": y,
                        "prompt_digest": text_digest(ctx),  # what the viewer checks its rebuilt prompt against
                        "prompt_tokens": backends.count_tokens(lm, ctx),
                        "gen_tokens": backends.count_tokens(lm, y),
                    }
                    for (doc, i), ctx, y in zip(chunk, contexts, replies)
                )
                bar.update(len(chunk))
        store.add_timing("generate", time.perf_counter() - start, calls=len(todo))

    def verify_stage(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore) -> None:
        samples = self._responses(docs, store, config.n)
        self.reuse_verdicts(task, config, docs, store, samples)
        self.check_judged(task, docs, samples, store)
        vsampling = Sampling(**config.verification_sampling)
        for v in self.verifiers:
            if not v.uses_model:
                continue
            rnd = 0
            while True:
                stored = store.replies().get(v.method, {})
                todo = []
                for doc in docs:
                    got = stored.get(doc.doc_id, {})
                    todo += [(doc, r) for r in v.requests(task, doc, samples[doc.doc_id], got) if r.key not in got]
                if not todo:
                    break
                rnd += 1
                _seed(config.seed + rnd)  # for models that draw from torch's global generator
                start = time.perf_counter()
                label = f"{task.name}: verify {v.method}" + (f" (round {rnd})" if rnd > 1 else "")
                with tqdm(total=len(todo), desc=label, unit="call", dynamic_ncols=True) as bar:
                    for chunk in _chunks(todo, self._chunk_size()):
                        records = self._call(chunk, v.method, vsampling, config.seed)
                        self._record_facts(store)
                        store.add_verdicts(records)
                        bar.update(len(chunk))
                store.add_timing(f"verify:{v.method}", time.perf_counter() - start, calls=len(todo))
        store.sort_verdicts()  # one order, however often the run was killed and resumed

    def _call(self, chunk, method: str, vsampling: Sampling, seed: int) -> list[dict]:
        gens = [(i, d, r) for i, (d, r) in enumerate(chunk) if r.kind == "generate"]
        lls = [(i, d, r) for i, (d, r) in enumerate(chunk) if r.kind == "loglikelihood"]
        replies: dict[int, object] = {}
        if gens:
            kwargs = [{**vsampling.gen_kwargs(self.stop(r.gen.get("until", []))), **{k: v for k, v in r.gen.items() if k != "until"}} for _, _, r in gens]
            out = self.vmodel.generate([(r.context, seeded(kw, seed, d.doc_id, method, r.key)) for (_, d, r), kw in zip(gens, kwargs)])
            replies.update({i: y for (i, _, _), y in zip(gens, out)})
        if lls:
            out = self.vmodel.loglikelihood([(r.context, r.continuation) for _, _, r in lls])
            replies.update({i: y for (i, _, _), y in zip(lls, out)})
        return [
            {"doc_id": d.doc_id, "method": method, "key": r.key, "kind": r.kind, "reply": replies[i], "judged": judged_digest(r.context)}
            for i, (d, r) in enumerate(chunk)
        ]

    def check_judged(self, task: Task, docs: list[Doc], samples: dict[str, list[str]], store: RunStore) -> None:
        """Every stored verdict judged the text it would judge now: its ``judged`` digest is that of
        the verification context its request has with the samples as stored. A verdict of another
        text (samples.jsonl edited, or raced by a second writer) is refused, never reused."""
        digests = store.judged()
        for v in self.verifiers:
            stale = []
            for doc in docs:
                have = digests.get(v.method, {}).get(doc.doc_id)
                if not have:
                    continue
                contexts = v.contexts(task, doc, samples[doc.doc_id], list(have))
                stale += [(doc.doc_id, key) for key, digest in have.items() if digest and key in contexts and judged_digest(contexts[key]) != digest]
            if stale:
                shown = ", ".join(f"doc {d!r} request {k}" for d, k in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
                raise GapbenchError(
                    f"{store.verdicts_path}: {len(stale)} stored {v.method} verdict(s) judged a different text than "
                    f"{store.samples_path.name} now holds ({shown}): the samples were edited or written by a second process. "
                    f"Delete those lines of {store.verdicts_path.name} (or the whole file) and run again to verify them anew."
                )

    def score_stage(self, task: Task, config: RunConfig, docs: list[Doc], store: RunStore) -> StoredRun:
        start = time.perf_counter()
        samples = self._responses(docs, store, config.n)
        self.check_judged(task, docs, samples, store)
        grades = scoring.grade_all(task, docs, samples)
        store.write_grades(scoring.grade_records(docs, grades))
        stored = scored_run(store, task, docs, grades, self.verifiers, self.rule, config.seed, self.opts.n_boot)
        lengths = stored.lengths  # None for a store from before token counts: no length bias, no token axis
        generation, methods = scoring.score(task, docs, grades, stored.verdicts, self.verifiers, self.rule, n_boot=self.opts.n_boot, seed=config.seed, lengths=lengths)
        tokens = _token_counts(store)
        store.add_timing("score", time.perf_counter() - start)
        where = store.results_path

        def typed(cls, value, name):  # free-form blocks (model facts, task options) through the codec's checks
            return from_json(cls | None, value, str(where), name)

        results = build(
            Results,
            schema_version=SCHEMA_VERSION,
            gapbench_version=__version__,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            run=RunRef(backends.portable(str(store.dir.absolute())), config.hash(), threads=_threads_info()),
            model=typed(ModelInfo, self._model_meta(self.model, self.spec, store), "model"),
            verifier_model=typed(ModelInfo, self._model_meta(self.vmodel, self.vspec, store), "verifier_model") if self.vspec else None,
            task=typed(TaskInfo, {**config.task, "split": config.split}, "task"),
            sizes=Sizes(n_prompts=len(docs), n=config.n, m=config.m, n_samples=len(docs) * config.n),
            sampling=typed(SamplingInfo, config.sampling, "sampling"),
            verification_sampling=typed(SamplingInfo, config.verification_sampling, "verification_sampling"),
            **({"chat": typed(ChatInfo, config.chat, "chat")} if config.chat else {}),
            filter=self.rule.spec,
            generation=generation,
            verifiers=methods,
            tokens=typed(Tokens, tokens, "tokens"),
            timings=store.timings(),
        )
        store.write_results(results)
        stored.results = results
        return stored

    def _model_meta(self, model: LazyModel, spec: backends.ModelSpec, store: RunStore | None = None) -> dict:
        """The model block of results.json: what the model's name and arguments say, and the facts
        run.json recorded when the model was loaded, so that results.json does not depend on whether
        this invocation loaded it (a run from before they were recorded: as this invocation knows it)."""
        which = "model" if model is self.model else "verifier_model"
        if store is not None and model.loaded:
            self._record_facts(store)
        facts = store.facts().get(which) if store is not None else None
        if facts is None and not model.loaded and self.shard_meta.get(which):  # the model as the shards that ran it saw it
            return dict(self.shard_meta[which])
        digests = store.recorded().get(DIGESTS) if store is not None else None
        digest = digests.get(which) if isinstance(digests, dict) else None
        meta = backends.metadata(model._lm if model.loaded else None, spec, facts, digest if isinstance(digest, dict) else None)
        if model is self.model:
            meta.update(self.opts.model_meta)
        return meta

    def _responses(self, docs, store, n) -> dict[str, list[str]]:
        have = store.samples()
        out = {}
        for doc in docs:
            got = have.get(doc.doc_id, {})
            missing = [i for i in range(n) if i not in got]
            if missing:
                raise GapbenchError(f"{store.samples_path}: doc {doc.doc_id} lacks samples {missing}; run again to generate them.")
            out[doc.doc_id] = [got[i]["response"] for i in range(n)]
        return out

    def _chunk_size(self) -> int:
        bs = self.opts.batch_size
        # several batches per chunk: continuous batching (harness/models/prefix_generate.py) keeps its rows
        # full across a chunk; a killed run loses at most one chunk
        return max(8, int(bs) * 4) if str(bs).isdigit() else 64


def _threads_info() -> ThreadsInfo | None:
    """This invocation's CPU threads (:mod:`harness.threads`), where gapbench chose them."""
    from gapbench.harness import threads

    choice = threads.current()
    return ThreadsInfo(choice.threads, choice.reason, choice.wait_policy) if choice is not None else None


def close_models(shared: dict) -> None:
    """Close the models that runners shared (``Runner(models=shared)``), once every run is done."""
    for model in shared.values():
        model.close()


def _lazy(shared: dict, spec: backends.ModelSpec, batch_size, log, refuse: str | None = None) -> LazyModel:
    key = json.dumps(spec.identity(), sort_keys=True)
    if key not in shared:
        shared[key] = LazyModel(spec, batch_size, log, refuse=refuse)
    return shared[key]


def seeded(gen_kwargs: dict, *key) -> dict:
    """``gen_kwargs`` with the seed of the thing drawn (run seed, doc_id, sample index; for a
    verification also the method and request key) when it samples: a sample's randomness comes
    from its key, not from the batch, the chunking or how often the run was interrupted."""
    if not gen_kwargs.get("do_sample"):
        return gen_kwargs
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).digest()
    return {**gen_kwargs, "seed": int.from_bytes(digest[:4], "big") & 0x7FFFFFFF}


def sample_seed(gen_kwargs: dict, seed: int, doc_id, index: int, consecutive: bool = False) -> dict:
    """``gen_kwargs`` with the seed of sample ``index`` of a prompt. ``consecutive``: the prompt's
    samples take seeds s, s+1, ... from one seed s of (run seed, doc_id), as vLLM seeds the children
    of one request with ``n`` samples (:mod:`harness.models.vllm_seeded`); otherwise each sample's
    seed is a digest of its whole key."""
    if not consecutive or not gen_kwargs.get("do_sample"):
        return seeded(gen_kwargs, seed, doc_id, index)
    first = seeded(gen_kwargs, seed, doc_id)["seed"]
    return {**gen_kwargs, "seed": (first + index) & 0x7FFFFFFF}


def docs_digest(docs: list[Doc]) -> str:
    """The digest of a run's documents: every field of each (id, question, gold answer, meta), in order."""
    from gapbench.harness.digest import json_digest

    return json_digest([asdict(d) for d in docs])


def judged_digest(context: str) -> str:
    """What a verdict judged: a digest of its request's whole context (prompt and response)."""
    return text_digest(context)


def _chunks(items: list, size: int):
    for k in range(0, len(items), size):
        yield items[k : k + size]


def _seed(seed: int) -> None:
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def _token_counts(store: RunStore) -> dict:
    prompt = generated = 0
    for per_doc in store.samples().values():
        for r in per_doc.values():
            prompt += r.get("prompt_tokens") or 0
            generated += r.get("gen_tokens") or 0
    return {"prompt": prompt, "generated": generated}


def _portable_models(identity: dict) -> dict:
    """An older run.json's identity with its models' paths made portable, as today's (store.open)."""
    return {**identity, **{k: backends.portable_identity(identity.get(k)) for k in ("model", "verifier_model")}}
