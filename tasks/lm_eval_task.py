"""Any generative lm-eval task as a gapbench task: ``--tasks lm-eval:NAME``.

NAME is resolved by lm-eval's own ``TaskManager`` (its built-in tasks, plus the YAML folder given
as the task option ``include_path``), and everything that decides what is measured is lm-eval's:

- the documents: lm-eval's evaluation docs (its ``test_split``, else its ``validation_split``), after
  its ``process_docs``; doc ids are ``<split>-<index>``;
- the generation prompt: exactly the context lm-eval sends a model (``description``, few-shot examples
  drawn by its sampler with its few-shot seed 1234, ``doc_to_text``, delimiters, ``gen_prefix``),
  drawn in document order as lm-eval draws them, so a prompt depends on the data only, never on
  ``--limit`` or shards; the stop strings are its ``generation_kwargs.until`` (and its
  ``max_gen_toks`` when it sets one). Temperature and the n samples are gapbench's own;
- the ground truth ``g(x, y)``: the response through the task's filter pipeline (``filter_list``),
  then the task's own ``process_results``/metric (e.g. ``exact_match`` with its normalisation). The
  first filter and the first metric of the task are ``g`` (options ``filter`` and ``metric`` pick
  others); every filter/metric pair is in ``Grade.variants``. ``g`` must be 0 or 1.

Verification uses a generic prompt (question, proposed answer, is it correct?) with four
hand-written short-answer examples, since lm-eval tasks carry no verification examples.

Only ``generate_until`` tasks can be run (a loglikelihood or multiple-choice task has no sampled
response to verify). A task whose data lives on the Hugging Face hub can be pointed at local files
with a YAML in an include folder: a group of that one task that overrides ``dataset_path: json``,
``dataset_name: null`` and ``dataset_kwargs: {data_files: {SPLIT: FILE}}`` (examples/lm-eval-local/);
relative data files are resolved against ``--data-dir`` (else the working directory).

This module imports lm-eval only when an lm-eval task is set up. It relies on lm-eval 0.4.13's task
index (``TaskManager.task_index`` entries with their raw ``cfg``) and its task factory.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar

from gapbench.harness.errors import GapbenchError
from gapbench.tasks import TASKS
from gapbench.tasks.base import Doc, Grade, Task, VerificationExample

PREFIX = "lm-eval"
FEWSHOT_SEED = 1234  # lm-eval's default --fewshot_random_seed
GROUP_KEYS = frozenset({"group", "group_alias", "task", "aggregate_metric_list", "metadata"})  # lm-eval's GroupConfig fields
LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow"})  # datasets' builders that read data_files
QUESTION_FIELDS = ("question", "problem", "query", "input", "prompt")
INVALID = "[invalid]"  # what lm-eval's regex filter gives when nothing matches
LOCAL_HINT = (
    "Point it at local files: in a folder DIR, write a YAML that names a group of this one task and overrides "
    "`dataset_path: json`, `dataset_name: null` and `dataset_kwargs: {{data_files: {{<split>: FILE, ...}}}}` "
    "(examples/lm-eval-local/ has such files), then run `--tasks lm-eval:<that group> "
    "--task-args lm-eval:<that group>.include_path=DIR`; relative data files resolve against --data-dir."
)


@functools.lru_cache(maxsize=4)
def task_manager(include_path: str | None) -> Any:
    """lm-eval's TaskManager with its built-in tasks and ``include_path`` (indexed once per process: seconds)."""
    from lm_eval.tasks import TaskManager

    if include_path is not None:
        folder = Path(include_path).expanduser()
        if not folder.is_dir():
            raise GapbenchError(
                f"lm-eval include path {include_path!r} is not a folder. Give the folder of your task YAMLs as "
                "--task-args lm-eval:NAME.include_path=DIR."
            )
    manager = TaskManager(include_path=str(Path(include_path).expanduser()) if include_path else None)
    if not hasattr(manager, "task_index") or not hasattr(manager, "_factory"):
        import lm_eval

        raise GapbenchError(
            f"lm-eval {getattr(lm_eval, '__version__', '?')} lacks the task index gapbench reads for lm-eval:NAME tasks; "
            "install lm-eval 0.4.13 or later."
        )
    return manager


@functools.cache
def task_class(lm_eval_name: str) -> type[Task]:
    """The task class of ``lm-eval:NAME`` (one class per name, so a registry lookup is stable)."""
    return type(
        f"LmEvalTask[{lm_eval_name}]",
        (LmEvalTask,),
        {"name": f"{PREFIX}:{lm_eval_name}", "lm_eval_name": lm_eval_name, "description": f"lm-eval's task {lm_eval_name}"},
    )


def _kind(entry: Any) -> str:
    kind = getattr(entry, "kind", None)
    return str(getattr(kind, "name", kind)).upper()


def _listed(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _strip_machine_paths(value: Any) -> Any:
    """A config with each unresolved ``!function`` reference (an absolute path) cut to its module.function."""
    if isinstance(value, dict):
        return {str(k): _strip_machine_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strip_machine_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return value.rsplit("/", 1)[-1]
    return value if isinstance(value, (int, float, bool, type(None))) else str(value)


def _jsonable(value: Any) -> Any:
    """A doc's target as JSON can hold it (numpy numbers and tuples included)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


class LmEvalTask(Task):
    """An lm-eval ``generate_until`` task (see the module docstring). ``task_class(NAME)`` makes the
    class of one NAME; the per-task facts (stop strings, split) are set on the instance."""

    name = f"{PREFIX}:NAME"
    lm_eval_name: ClassVar[str] = ""
    version = "1"
    defaults = {
        "include_path": None,  # a folder of lm-eval task YAMLs, searched as lm-eval's --include_path
        "num_fewshot": None,  # None: the task's own num_fewshot
        "filter": None,  # None: the task's first filter (lm-eval's filter_list order)
        "metric": None,  # None: the task's first metric
        "fewshot_seed": FEWSHOT_SEED,
        "question": "auto",  # what a verifier sees as the question: a doc field, "auto" or "prompt" (doc_to_text)
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.lm_eval_name:
            raise GapbenchError(f"name an lm-eval task: --tasks {PREFIX}:NAME (e.g. {PREFIX}:gsm8k).")
        if self.options["num_fewshot"] is not None:
            try:
                self.options["num_fewshot"] = int(self.options["num_fewshot"])
            except (TypeError, ValueError):
                raise GapbenchError(f"task option {self.name}.num_fewshot={self.options['num_fewshot']!r}: give a whole number.") from None
            self.require_whole("num_fewshot", 0)
        self.require_whole("fewshot_seed")
        self.manager = task_manager(self.options["include_path"])
        self.entry = self._entry()
        self.leaf = self._leaf_config(self.entry, self.lm_eval_name)
        output_type = self.leaf.get("output_type", "generate_until")
        if output_type != "generate_until" and "class" not in self.leaf:
            raise GapbenchError(
                f"lm-eval task {self.lm_eval_name!r} is a {output_type} task; only generative (generate_until) lm-eval "
                "tasks can be run as gapbench tasks, since a gap needs sampled responses to verify."
            )
        split = self.leaf.get("test_split") or self.leaf.get("validation_split")
        if not split:
            raise GapbenchError(f"lm-eval task {self.lm_eval_name!r} names neither a test_split nor a validation_split to evaluate.")
        gen = dict(self.leaf.get("generation_kwargs") or {})
        # per-instance values of what other plugins declare per class (they depend on the task's config)
        vars(self).update(
            splits=(str(split),),
            default_split=str(split),
            stop=self._until(gen),
            max_gen_toks=int(gen["max_gen_toks"]) if gen.get("max_gen_toks") else None,
        )
        self._built: dict[str | None, Any] = {}  # data_dir -> the lm-eval task built on it
        self.lm_task: Any = None
        self._raw: dict[str, tuple[int, dict]] = {}  # doc_id -> (index, lm-eval doc)
        self._order: list[str] = []
        self._contexts: dict[str, tuple[str, list[str]]] = {}  # doc_id -> (lm-eval's context, turns)

    # --- resolving the name ---------------------------------------------------
    def _entry(self) -> Any:
        entry = self.manager.task_index.get(self.lm_eval_name)
        if entry is None:
            close = difflib.get_close_matches(self.lm_eval_name, self.manager.all_tasks, n=5, cutoff=0.6)
            where = f" or in {self.options['include_path']}" if self.options["include_path"] else ""
            raise GapbenchError(
                f"lm-eval has no task {self.lm_eval_name!r} (among its built-in tasks{where})."
                + (f" Close names: {', '.join(close)}." if close else "")
                + " `lm-eval ls tasks` lists them; a task of your own needs its YAML folder as "
                f"--task-args {self.name}.include_path=DIR."
            )
        return entry

    def _leaf_config(self, entry: Any, name: str, depth: int = 0) -> dict:
        """The config of the one task that ``name`` stands for (a task, or a group or tag of one task with
        the group's overrides), as lm-eval's index holds it: includes merged, functions not yet imported."""
        kind = _kind(entry)
        cfg = dict(getattr(entry, "cfg", None) or {})
        if kind in ("TASK", "PY_TASK"):
            return cfg
        if depth > 4:
            raise GapbenchError(f"lm-eval task {self.lm_eval_name!r}: groups nest too deep to find its one task.")
        if kind == "TAG":
            members: list = sorted(getattr(entry, "tags", ()) or ())
        else:
            members = cfg.get("task") or []
            members = members if isinstance(members, list) else [members]
        if len(members) != 1:
            names = [m if isinstance(m, str) else str(m.get("task") or m.get("group")) for m in members]
            raise GapbenchError(
                f"lm-eval {kind.lower()} {name!r} holds {len(members)} tasks ({_listed(names)}); a gapbench task is one "
                f"lm-eval task: name one of them, as {PREFIX}:{names[0] if names else 'NAME'}."
            )
        member = members[0]
        over = {} if isinstance(member, str) else {k: v for k, v in member.items() if k != "task"}
        base_name = member if isinstance(member, str) else member.get("task")
        if not isinstance(base_name, str):
            raise GapbenchError(f"lm-eval group {name!r}: its member {member!r} names no task.")
        base_entry = self.manager.task_index.get(base_name)
        base = self._leaf_config(base_entry, base_name, depth + 1) if base_entry is not None else {}
        group_overrides = {k: v for k, v in cfg.items() if k not in GROUP_KEYS} if kind == "GROUP" else {}
        return {**base, **group_overrides, **over}

    @staticmethod
    def _until(gen: dict) -> tuple[str, ...]:
        until = gen.get("until")
        if until is None:
            return ("\n\n",)  # lm-eval's default: the few-shot delimiter
        return (until,) if isinstance(until, str) else tuple(str(u) for u in until)

    def config(self) -> dict:
        import lm_eval

        digest = hashlib.sha256(json.dumps(_strip_machine_paths(self.leaf), sort_keys=True).encode()).hexdigest()
        metadata = self.leaf.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return {
            **super().config(),
            "lm_eval": {
                "task": self.lm_eval_name,
                "task_version": metadata.get("version"),
                "config_sha256": digest,
                "lm_eval_version": getattr(lm_eval, "__version__", None),
            },
        }

    # --- data -------------------------------------------------------------------
    def _dataset_overrides(self, data_dir: Path | None) -> dict:
        """``dataset_kwargs`` with each relative data file resolved against ``data_dir``, where that changes
        anything; every local file checked, naming the YAML key that gives it."""
        kwargs = dict(self.leaf.get("dataset_kwargs") or {})
        files = kwargs.get("data_files")
        if files is None:
            return {}
        base = Path(data_dir).expanduser() if data_dir is not None else None

        def resolve(path: Any, key: str) -> Any:
            if not isinstance(path, str) or "://" in path:
                return path
            full = base / path if base is not None and not Path(path).is_absolute() else Path(path).expanduser()
            if not re.search(r"[*?\[]", path) and not full.is_file():
                where = f"--data-dir {base}" if base is not None else "the working directory"
                raise GapbenchError(
                    f"lm-eval task {self.lm_eval_name!r}: its data file {full} (dataset_kwargs.data_files{key} of "
                    f"{self._source()}) does not exist. Relative data files resolve against {where}; "
                    "give --data-dir the folder that holds them."
                )
            return str(full)

        if isinstance(files, dict):
            resolved: Any = {
                split: [resolve(p, f".{split}") for p in v] if isinstance(v, list) else resolve(v, f".{split}") for split, v in files.items()
            }
        elif isinstance(files, list):
            resolved = [resolve(p, "") for p in files]
        else:
            resolved = resolve(files, "")
        return {"dataset_kwargs": {**kwargs, "data_files": resolved}} if resolved != files else {}

    def _source(self) -> str:
        path = getattr(self.entry, "yaml_path", None)
        return f"{Path(path).name} in {Path(path).parent.name}/" if path else f"the config of {self.lm_eval_name!r}"

    def build(self, data_dir: Path | None) -> Any:
        """lm-eval's task object on its data (``data_dir`` resolves relative data files); built once per data_dir."""
        key = str(data_dir) if data_dir is not None else None
        if key in self._built:
            return self._built[key]
        overrides = self._dataset_overrides(data_dir)
        try:
            built = self.manager._factory.build(self.entry, overrides=overrides or None, registry=self.manager.task_index)
        except GapbenchError:
            raise
        except Exception as exc:
            raise self._build_error(exc) from None
        tasks = built if isinstance(built, list) else built.get_all_tasks() if hasattr(built, "get_all_tasks") else [built]
        if len(tasks) != 1:
            raise GapbenchError(f"lm-eval {self.lm_eval_name!r} builds {len(tasks)} tasks; name one of them as {PREFIX}:NAME.")
        task = tasks[0]
        if task.OUTPUT_TYPE != "generate_until":
            raise GapbenchError(
                f"lm-eval task {self.lm_eval_name!r} is a {task.OUTPUT_TYPE} task; only generative (generate_until) "
                "lm-eval tasks can be run as gapbench tasks."
            )
        vars(self)["stop"] = self._until(dict(task.config.generation_kwargs or {}))
        self._built[key] = task
        return task

    def _build_error(self, exc: Exception) -> GapbenchError:
        text = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {text[0] if text else ''}"
        path = self.leaf.get("dataset_path")
        local = path in LOCAL_BUILDERS or (isinstance(path, str) and Path(path).expanduser().exists())
        network = isinstance(exc, (OSError, ConnectionError)) or any(
            word in type(exc).__name__ for word in ("Connection", "NotFound", "Offline", "HTTP", "Hub")
        )
        if network and not local:
            name = self.leaf.get("dataset_name")
            return GapbenchError(
                f"lm-eval task {self.lm_eval_name!r} could not load its data set dataset_path: {path}"
                f"{f', dataset_name: {name}' if name else ''} from the Hugging Face hub ({what}). " + LOCAL_HINT
            )
        return GapbenchError(f"lm-eval task {self.lm_eval_name!r} could not be set up ({what}).")

    def load_docs(self, split: str, data_dir: Path | None) -> list[Doc]:
        task = self.build(data_dir)
        if task is not self.lm_task:
            self.lm_task, self._raw, self._order, self._contexts = task, {}, [], {}
            for index, raw in enumerate(task.eval_docs):
                doc_id = f"{split}-{index}"
                self._raw[doc_id] = (index, raw)
                self._order.append(doc_id)
        docs = []
        for doc_id in self._order:
            index, raw = self._raw[doc_id]
            docs.append(Doc(doc_id=doc_id, question=self._question(raw), target=_jsonable(task.doc_to_target(raw))))
        return docs

    def _question(self, raw: dict) -> str:
        choice = self.options["question"]
        if choice == "auto":
            field = next((f for f in QUESTION_FIELDS if isinstance(raw.get(f), str)), None)
            return raw[field] if field else str(self.lm_task.doc_to_text(raw))
        if choice == "prompt":
            return str(self.lm_task.doc_to_text(raw))
        if choice not in raw:
            raise GapbenchError(
                f"task option {self.name}.question={choice!r}: the docs have no such field; "
                f"they have {', '.join(sorted(map(str, raw)))} (or give auto or prompt)."
            )
        return str(raw[choice])

    def _doc(self, doc: Doc) -> tuple[int, dict]:
        if doc.doc_id not in self._raw:
            raise GapbenchError(f"{self.name}: doc {doc.doc_id!r} is not among the task's loaded docs; load the docs first.")
        return self._raw[doc.doc_id]

    # --- generation ---------------------------------------------------------------
    def _num_fewshot(self) -> int:
        k = self.options["num_fewshot"]
        return int(k) if k is not None else int(self.lm_task.config.num_fewshot or 0)

    def _context(self, doc: Doc) -> tuple[str, list[str]]:
        """lm-eval's context of a doc and the same as turns. The sampler draws in document order from
        the few-shot seed, as lm-eval's evaluator does, so every doc up to this one is drawn first."""
        index, _ = self._doc(doc)
        task = self.lm_task
        if not self._contexts:
            task.set_fewshot_seed(self.options["fewshot_seed"])
        k = self._num_fewshot()
        for doc_id in self._order[len(self._contexts) : index + 1]:
            position, raw = self._raw[doc_id]
            sampler = getattr(task, "sampler", None)
            state = sampler.rnd.getstate() if sampler is not None else None
            ctx = task.fewshot_context(raw, k, gen_prefix=task.doc_to_prefix(raw))
            request = task.construct_requests(doc=raw, ctx=ctx, metadata=(task.config.task, position, 1))
            request = request[0] if isinstance(request, list) else request
            plain = request.arguments[0]
            after = sampler.rnd.getstate() if sampler is not None else None
            if sampler is not None:
                sampler.rnd.setstate(state)
            messages = task.fewshot_context(
                raw, k, apply_chat_template=True, fewshot_as_multiturn=True, chat_template=lambda m, **_: m,
                gen_prefix=task.doc_to_prefix(raw),
            )
            if sampler is not None:
                sampler.rnd.setstate(after)
            self._contexts[doc_id] = (plain, _turns(plain, messages))
        return self._contexts[doc.doc_id]

    def generation_turns(self, doc: Doc) -> list[str]:
        return self._context(doc)[1]

    def generation_prompt(self, doc: Doc) -> str:
        return self._context(doc)[0]

    # --- grading ------------------------------------------------------------------
    def filtered(self, doc: Doc, response: str) -> dict[str, Any]:
        """The response through each of lm-eval's filter pipelines, as its evaluator applies them: {filter: value}."""
        from lm_eval.api.instance import Instance

        index, raw = self._doc(doc)
        task = self.lm_task
        inst = Instance(
            request_type="generate_until", doc=raw, arguments=("", dict(task.config.generation_kwargs or {})), idx=0,
            metadata=(task.config.task, index, 1),
        )
        inst.resps = [response]
        for ensemble in task._filters:
            ensemble.apply([inst])
        return dict(inst.filtered_resps)

    def scores(self, doc: Doc, response: str) -> dict[str, dict[str, Any]]:
        """lm-eval's metrics of one response under each of its filters: {filter: {metric: value}}, from the
        task's own ``process_results`` (its metric functions with their arguments from the YAML)."""
        _, raw = self._doc(doc)
        return {name: self.lm_task.process_results(raw, [value]) for name, value in self.filtered(doc, response).items()}

    def grade(self, doc: Doc, response: str) -> Grade:
        _, raw = self._doc(doc)
        filtered = self.filtered(doc, response)
        scores = {name: self.lm_task.process_results(raw, [value]) for name, value in filtered.items()}
        chosen = self.options["filter"] or next(iter(scores))
        if chosen not in scores:
            raise GapbenchError(f"task option {self.name}.filter={chosen!r}: lm-eval's task has the filters {', '.join(scores)}.")
        metrics = scores[chosen]
        listed = [m.get("metric") for m in self.leaf.get("metric_list") or [] if isinstance(m, dict)]
        metric = self.options["metric"] or next((m for m in listed if m in metrics), next(iter(metrics), None))
        if metric not in metrics:
            raise GapbenchError(f"task option {self.name}.metric={metric!r}: lm-eval's task gives the metrics {', '.join(metrics)}.")
        g = _binary(metrics[metric])
        if g is None:
            raise GapbenchError(
                f"{self.name}: lm-eval's metric {metric!r} gave {metrics[metric]!r}, not 0 or 1; g(x, y) needs a correct/incorrect "
                f"metric (pick one with {self.name}.metric=NAME among {', '.join(metrics)})."
            )
        variants = {f"{name}/{m}": v for name, per in scores.items() for m, value in per.items() if (v := _number(value)) is not None}
        return Grade(g=g, answer=_answer(filtered[chosen]), variants=variants)

    # --- verification -------------------------------------------------------------
    def verification_examples(self) -> list[VerificationExample]:
        return list(GENERIC_EXAMPLES)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no number


def _binary(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number in (0.0, 1.0) else None


def _answer(value: Any) -> str | None:
    """The filtered response as the extracted answer; None where the filter found none (lm-eval's ``[invalid]``)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or str(value).strip() in ("", INVALID):
        return None
    return str(value).strip()


def _turns(plain: str, messages: Any) -> list[str]:
    """``plain`` cut into turns (user, assistant, ..., user) at the starts of lm-eval's chat messages, a
    system message joined to the first turn; ``[plain]`` when the messages do not line up with it."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return [plain]
    body = messages[1:] if messages and messages[0].get("role") == "system" else messages
    roles = [m.get("role") for m in body]
    if not body or len(body) % 2 == 0 or roles != ["user", "assistant"] * (len(body) // 2) + ["user"]:
        return [plain]
    starts: list[int] = []
    pos = len(str(messages[0].get("content", ""))) if len(body) < len(messages) and plain.startswith(str(messages[0].get("content", ""))) else 0
    for m in body:
        content = str(m.get("content", ""))
        at = plain.find(content, pos)
        if at < 0:
            return [plain]
        # an answer turn opens right after its question (the target delimiter leads it, as in gapbench's own
        # tasks); a question turn opens at its text (the few-shot delimiter closes the answer before it)
        starts.append(pos if m.get("role") == "assistant" else at)
        pos = at + len(content)
    starts[0] = 0  # the system message and description open the first turn
    turns = [plain[a:b] for a, b in zip(starts, [*starts[1:], len(plain)])]
    return turns if "".join(turns) == plain else [plain]


GENERIC_EXAMPLES = (
    VerificationExample(
        question="What is the capital city of Australia?",
        response="Sydney",
        correct=False,
        rationale="Sydney is Australia's largest city, but the capital is Canberra. The answer is wrong.",
        score=1,
    ),
    VerificationExample(
        question="A box holds 6 rows of 8 eggs. 5 eggs are broken. How many eggs are not broken?",
        response="6 x 8 = 48 eggs in all. 48 - 5 = 43 are not broken. The answer is 43.",
        correct=True,
        rationale="6 x 8 = 48 is right and 48 - 5 = 43 is right. The final answer 43 is correct.",
        score=10,
    ),
    VerificationExample(
        question="Who wrote the novel Pride and Prejudice?",
        response="Jane Austen",
        correct=True,
        rationale="Pride and Prejudice (1813) is by Jane Austen. The answer is correct.",
        score=10,
    ),
    VerificationExample(
        question="What is the value of x if 3x + 4 = 19?",
        response="3x = 19 + 4 = 23, so x = 23 / 3. The answer is 23/3.",
        correct=False,
        rationale="Subtracting 4 gives 3x = 15, not 23, so x = 5. The final answer 23/3 is wrong.",
        score=2,
    ),
)


TASKS.register_family(
    PREFIX,
    task_class,
    "any generative lm-eval task by its lm-eval name (its prompt, filters and metric as g); "
    f"own YAMLs through --task-args {PREFIX}:NAME.include_path=DIR",
)
