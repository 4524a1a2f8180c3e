"""The run store: one directory per task run, stages appending to JSONL files.

```
<out>/<task>/run.json        resolved configuration and its hash
<out>/<task>/samples.jsonl   one record per (doc_id, sample)
<out>/<task>/verdicts.jsonl  one record per (doc_id, method, key)
<out>/<task>/grades.jsonl    g and the extracted answer per sample (derived, rewritten each scoring)
<out>/<task>/timings.jsonl   seconds per stage per invocation
<out>/<task>/results.json    every metric (schema_version)
```

Records are appended and fsynced a batch at a time, so a killed run loses at
most the batch in flight; a torn last line is dropped on the next open.
"""

from __future__ import annotations

import atexit
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from gapbench.harness import safe_paths
from gapbench.harness.config import RunConfig, differences, identity_of
from gapbench.harness.errors import GapbenchError
from gapbench.harness.jsonl import append_jsonl, read_jsonl, require
from gapbench.harness.results import Results
from gapbench.harness.results import write as write_results
from gapbench.harness.safe_paths import link_error
from gapbench.harness.settings import N_BOOT, SEED

NEEDS_RUN_DIR = (
    "rescoring a stored run needs the run directory (grades.jsonl, samples.jsonl and verdicts.jsonl beside "
    "results.json), not only results.json"
)
LOCK_FILE = ".lock"
DIGESTS = "digests"  # run.json: what the run measured (the task's documents, the model's weights)
FACTS = "model_facts"  # run.json: what the loaded model told (parameters, revision, architecture)
N_BOOT_KEY = "n_boot"  # run.json: the bootstrap resamples of the last scoring (a scoring setting, not identity)
_HELD: dict[str, list] = {}  # run directory -> [its open lock file, stores of this process holding it]


@atexit.register
def _release_all() -> None:
    """Close the lock files still held at exit (the OS would release the locks anyway)."""
    for fh, _ in _HELD.values():
        fh.close()
    _HELD.clear()


class RunStore:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self._lock: str | None = None  # the open lock file while this process writes here
        self.samples_path = self.dir / "samples.jsonl"
        self.verdicts_path = self.dir / "verdicts.jsonl"
        self.grades_path = self.dir / "grades.jsonl"
        self.timings_path = self.dir / "timings.jsonl"
        self.results_path = self.dir / "results.json"
        self.run_path = self.dir / "run.json"
        self._run: dict | None = None  # run.json as this store wrote it

    # --- configuration -----------------------------------------------------
    def open(self, config: RunConfig, digests: dict | None = None, n_boot: int | None = None, *, migrate: Callable[[dict], dict] | None = None) -> bool:
        """Create the store, or check that it holds a run of the same configuration, of the same
        documents and model weights (``digests``: :func:`check_digests`). Returns True when earlier
        work was found. Takes the directory's lock first (:meth:`lock`). ``n_boot``: the bootstrap
        resamples this invocation scores with, recorded so that a later rescoring uses them
        (:meth:`resampling`). ``migrate``: turns an older run.json's identity into today's form
        (paths of this machine made portable) before it is compared."""
        if self.dir.is_symlink() and not self.dir.exists():
            raise link_error(self.dir, "a run's files")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise GapbenchError(
                f"{self.dir}: a file is in the way of the run directory. Give --out a folder (it holds one subfolder per task)."
            ) from None
        self.lock()
        new = config.to_json()
        old: dict = {}
        if self.run_path.is_symlink():
            raise link_error(self.run_path, "run.json")
        if self.run_path.exists():
            try:
                old = json.loads(self.run_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise GapbenchError(f"{self.run_path}: not valid JSON ({exc}). Restore it or choose another --out.") from None
            if not isinstance(old, dict) or not isinstance(old.get("hash"), str) or not isinstance(old.get("config", {}), dict):
                raise GapbenchError(f"{self.run_path}: not a gapbench run.json (an object with its configuration and hash). Restore it or choose another --out.")
            if old.get("hash") != new["hash"]:
                was = identity_of(old)
                # an older run.json may hold the same run in an older form (``migrate``): it resumes
                diff = differences(migrate(was) if migrate else was, config.identity())
                if diff or not migrate:
                    raise GapbenchError(
                        f"{self.dir} holds a run with a different configuration; refusing to mix them. Differences: "
                        + "; ".join(diff or ["the recorded hash"])
                        + ". Use another --out, or the same settings to resume."
                    )
        for path in (self.samples_path, self.verdicts_path, self.timings_path):
            _drop_torn_tail(path)
        resumed = self.samples_path.exists() and self.samples_path.stat().st_size > 0
        stored = old.get(DIGESTS)
        recorded: dict = stored if isinstance(stored, dict) else {}
        if digests and old and (resumed or self.verdicts_path.exists()):
            check_digests(self.dir, recorded, digests)
        if digests:
            new[DIGESTS] = {**recorded, **digests}
        elif recorded:
            new[DIGESTS] = recorded
        if isinstance(old.get(FACTS), dict):
            new[FACTS] = old[FACTS]
        if n_boot is not None:
            new[N_BOOT_KEY] = n_boot
        elif isinstance(old.get(N_BOOT_KEY), int):
            new[N_BOOT_KEY] = old[N_BOOT_KEY]
        _write_json(self.run_path, new)
        self._run = new
        return resumed

    # --- what only the loaded model tells (parameters, revision, architecture) -------------------------
    def facts(self) -> dict[str, dict]:
        """``{"model": {...}, "verifier_model": {...}}``: the facts run.json recorded when the model was
        first loaded for this run (none in a run made before they were recorded)."""
        got = self.recorded().get(FACTS)
        return got if isinstance(got, dict) else {}

    def recorded(self) -> dict:
        """run.json as this store wrote it or as it stands ({} when the folder has none, or it is unreadable:
        :meth:`open` names that when the run is resumed)."""
        run = getattr(self, "_run", None)
        if run is None:
            try:
                run = json.loads(self.run_path.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                return {}
        return run if isinstance(run, dict) else {}

    def resampling(self, seed: int | None = None, n_boot: int | None = None) -> tuple[int, int]:
        """(seed, n_boot) of a rescoring: the values given, else those the run's intervals were computed
        with (run.json's ``seed`` and ``n_boot``), else :mod:`harness.settings`' defaults (a run recorded
        before n_boot was scored with the default unless told otherwise). The one place a command that
        rescores a stored run takes its defaults from."""
        run = self.recorded()
        got_seed, got_boot = run.get("seed"), run.get(N_BOOT_KEY)
        if seed is None:
            seed = got_seed if isinstance(got_seed, int) and not isinstance(got_seed, bool) else SEED
        if n_boot is None:
            n_boot = got_boot if isinstance(got_boot, int) and not isinstance(got_boot, bool) else N_BOOT
        return seed, n_boot

    def record_facts(self, which: str, facts: dict) -> None:
        """Record the loaded model's facts in run.json (once: results.json then reads them from there,
        whether or not a later run loads the model). Facts that differ from those recorded mean another
        model behind the same name: refused."""
        have = self.facts().get(which)
        if have == facts:
            return
        if have is not None:
            diff = differences(have, facts)
            raise GapbenchError(
                f"{self.dir}: the {which.replace('_', ' ')} loaded now is not the one this run's work was made with "
                f"({'; '.join(diff)}); the name or path now leads to another model. Use another --out for it, or load "
                "the model the run was made with to resume."
            )
        run = dict(getattr(self, "_run", None) or json.loads(self.run_path.read_text()))
        run[FACTS] = {**self.facts(), which: facts}
        _write_json(self.run_path, run)
        self._run = run

    def lock(self) -> None:
        """One writer per run directory: an exclusive ``flock`` on ``<dir>/.lock``, held until every
        store of this process on the directory is closed, or the process ends (the OS releases it, so
        a killed run leaves no stale lock). Another process gets an error naming the holder's pid."""
        import fcntl

        if self._lock is not None:
            return
        key = str(self.dir.resolve())
        if key in _HELD:  # this process already writes here (one writer: a process)
            _HELD[key][1] += 1
            self._lock = key
            return
        fh = safe_paths.open_lock(self.dir, self.dir / LOCK_FILE)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise GapbenchError(
                f"{self.dir} is being written by another gapbench process (pid {holder}); two writers would mix "
                "their samples. Wait for it to finish (then run again to resume), or use another --out."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _HELD[key] = [fh, 1]
        self._lock = key

    def close(self) -> None:
        """Release this store's hold on the directory's lock."""
        import fcntl

        if self._lock is None:
            return
        key, self._lock = self._lock, None
        held = _HELD.get(key)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                fcntl.flock(held[0], fcntl.LOCK_UN)
                held[0].close()

    # --- samples -----------------------------------------------------------
    def samples(self) -> dict[str, dict[int, dict]]:
        """doc_id -> sample index -> record. A key stored twice with different responses (two writers,
        or an edit) is refused, naming both lines; an exact repeat is read once."""
        out: dict[str, dict[int, dict]] = defaultdict(dict)
        if self.samples_path.exists():
            for r in read_jsonl(self.samples_path):
                doc_id = str(_typed(r, "doc_id", self.samples_path, (str, int), "a string"))
                sample = _whole(r, "sample", self.samples_path)
                _typed(r, "response", self.samples_path, str, "a string")
                for name in ("gen_tokens", "prompt_tokens"):
                    if r.get(name) is not None:
                        _whole(r, name, self.samples_path)
                if r.get("prompt_digest") is not None:
                    _typed(r, "prompt_digest", self.samples_path, str, "a string (the digest of the generation prompt)")
                old = out[doc_id].get(sample)
                if old is not None and old["response"] != r["response"]:
                    raise _twice(self.samples_path, old, r, f"doc {doc_id!r}, sample {sample}", "responses")
                out[doc_id].setdefault(sample, r)
        return out

    def add_samples(self, records: Iterable[dict]) -> None:
        append_jsonl(self.samples_path, records)

    # --- verdicts ----------------------------------------------------------
    def replies(self) -> dict[str, dict[str, dict]]:
        """method -> doc_id -> key -> reply."""
        out: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
        if self.verdicts_path.exists():
            lines: dict[tuple, dict] = {}
            for r in read_jsonl(self.verdicts_path):
                method, doc_id, key, reply = _verdict(r, self.verdicts_path)
                got = out[method][doc_id]
                if key in got:
                    if got[key] != reply:
                        raise _twice(self.verdicts_path, lines[(method, doc_id, key)], r, f"{method} of doc {doc_id!r}, request {key}", "replies")
                    continue
                got[key] = reply
                lines[(method, doc_id, key)] = r
        return out

    def judged(self) -> dict[str, dict[str, dict[str, str | None]]]:
        """method -> doc_id -> request key -> the digest of the context its verdict judged (None for
        verdicts stored before digests were recorded)."""
        out: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
        if self.verdicts_path.exists():
            for r in read_jsonl(self.verdicts_path):
                method, doc_id, key, _ = _verdict(r, self.verdicts_path)
                out[method][doc_id].setdefault(key, r.get("judged"))
        return out

    def add_verdicts(self, records: list[dict]) -> None:
        append_jsonl(self.verdicts_path, records)

    def sort_verdicts(self) -> bool:
        """Rewrite verdicts.jsonl in its one canonical order (method, doc_id, request key; the lines
        themselves unchanged), so the file does not depend on where a run was killed and resumed.
        Returns True when it was rewritten (False: already in that order, or no file)."""
        if not self.verdicts_path.exists():
            return False
        lines = [x for x in self.verdicts_path.read_bytes().split(b"\n") if x.strip()]
        keyed = []
        for number, raw in enumerate(lines, 1):
            try:
                r = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return False  # read_jsonl names the line when it is read
            if not isinstance(r, dict):
                return False
            keyed.append((verdict_order(r), number, raw))
        ordered = sorted(keyed)
        if ordered == keyed:
            return False
        safe_paths.write_bytes(self.dir, self.verdicts_path, b"".join(raw + b"\n" for *_, raw in ordered), fsync=True)
        return True

    # --- derived files -----------------------------------------------------
    def grades(self) -> dict[str, dict[int, dict]]:
        """doc_id -> sample index -> grades.jsonl record (``g``, ``answer``, ``variants``), docs in file
        order; {} when the run was not scored yet. A line without a whole ``sample`` or with a ``g`` other
        than 0 or 1 is named with its file:line."""
        out: dict[str, dict[int, dict]] = {}
        if self.grades_path.exists():
            for r in read_jsonl(self.grades_path):
                doc_id = str(_typed(r, "doc_id", self.grades_path, (str, int), "a string"))
                sample = _whole(r, "sample", self.grades_path)
                if _whole(r, "g", self.grades_path) > 1:
                    raise GapbenchError(f"{self.grades_path}:{r.get('__line__', '?')}: field 'g' is {r['g']}, not 0 or 1. Run `gapbench run` again on {self.dir} to rescore it.")
                out.setdefault(doc_id, {})[sample] = r
        return out

    def write_grades(self, records: list[dict]) -> None:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        safe_paths.write_text(self.dir, self.grades_path, text, tmp_suffix=".tmp")

    def add_timing(self, stage: str, seconds: float, **extra) -> None:
        append_jsonl(self.timings_path, [{"stage": stage, "seconds": round(seconds, 3), **extra}])

    def timings(self) -> dict[str, float]:
        total: dict[str, float] = defaultdict(float)
        if self.timings_path.exists():
            for r in read_jsonl(self.timings_path, tolerate_torn_tail=True):
                stage = _typed(r, "stage", self.timings_path, str, "a string")
                total[stage] += _number(r, "seconds", self.timings_path)
        return {k: round(v, 3) for k, v in total.items()}

    def write_results(self, results: Results) -> None:
        """results.json (a :class:`harness.results.Results`), written atomically."""
        write_results(self.results_path, results)


def _whole(record: dict, field: str, path: Path) -> int:
    value = require(record, field, path)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GapbenchError(f"{path}:{record.get('__line__', '?')}: field {field!r} is {json.dumps(value)[:60]}, not a whole number of 0 or more. Fix or delete that line.")
    return value


def _typed(record: dict, field: str, path: Path, types, what: str):
    """A field of a stage file's line, of one of ``types``, or an error naming file:line and the field."""
    value = require(record, field, path)
    if isinstance(value, bool) or not isinstance(value, types):
        raise GapbenchError(f"{path}:{record.get('__line__', '?')}: field {field!r} is {json.dumps(value)[:60]}, not {what}. Fix or delete that line.")
    return value


def _number(record: dict, field: str, path: Path) -> float:
    value = _typed(record, field, path, (int, float), "a number")
    if not math.isfinite(value):
        raise GapbenchError(f"{path}:{record.get('__line__', '?')}: field {field!r} is {json.dumps(value)}, not a finite number. Fix or delete that line.")
    return float(value)


def _verdict(record: dict, path: Path) -> tuple[str, str, str, object]:
    """(method, doc_id, key, reply) of a verdicts.jsonl line, each of its type: a generated reply is a
    string, a log-probability a finite number."""
    method = _typed(record, "method", path, str, "a string")
    doc_id = str(_typed(record, "doc_id", path, (str, int), "a string"))
    key = _typed(record, "key", path, str, "a string")
    if record.get("judged") is not None:
        _typed(record, "judged", path, str, "a string")
    kind = record.get("kind")
    reply = require(record, "reply", path)
    if kind == "loglikelihood" or (kind is None and not isinstance(reply, str)):
        reply = _number(record, "reply", path)
    else:
        reply = _typed(record, "reply", path, str, "a string (the generated reply)")
    return method, doc_id, key, reply


def _twice(path: Path, first: dict, second: dict, what: str, things: str) -> GapbenchError:
    return GapbenchError(
        f"{path}: lines {first.get('__line__', '?')} and {second.get('__line__', '?')} both hold {what}, with different {things} "
        "(two processes wrote here, or the file was edited). Delete the line that is wrong and run again; it is scored once."
    )


def candidates(path: Path) -> list[Path]:
    """The results.json files a path names: the file itself, ``<dir>/results.json``, or every
    results.json under ``<dir>``."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise GapbenchError(f"{path}: no such run directory or results.json.")
    if (path / "results.json").is_file():
        return [path / "results.json"]
    return sorted(path.rglob("results.json"))


def locate(path: str | Path, task: str | None = None, *, keep: Callable[[Path], bool] | None = None, need: str = "") -> Path:
    """The results.json a RUN argument names: the file itself, ``<dir>/results.json``, or the one
    results.json under ``<dir>`` (of ``task`` when given, and among those ``keep`` accepts: ``need`` says
    in words what it asks for, for the error). Every command that reads one run finds it here."""
    from gapbench.harness.results import load as load_results

    def task_of(h: Path) -> str | None:
        try:
            return load_results(h)[0].task.name
        except GapbenchError:  # listing candidates: a damaged file is named when it is loaded
            return None

    p = Path(path)
    hits = candidates(p)
    if len(hits) == 1 and (hits[0] == p or hits[0] == p / "results.json"):
        return hits[0]
    if task:
        hits = [h for h in hits if task_of(h) == task]
    if not hits:
        what = f" of task {task!r}" if task else ""
        raise GapbenchError(f"{p}: no results.json{what} under this folder. Give a run directory (gapbench run --out DIR gives DIR/<task>).")
    if keep is not None:
        found = hits
        hits = [h for h in hits if keep(h)]
        if not hits:
            raise GapbenchError(f"{p}: none of its results ({', '.join(map(str, found[:4]))}) has {need}. Name a run that has.")
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(f"{h} ({task_of(h)})" for h in hits[:6])
    raise GapbenchError(f"{p} holds several runs{' with ' + need if need else ''}: {listing}. Name one directory, or pick a task with --task.")


def run_dir_of(results_path: Path, results: Results) -> Path:
    """The directory with a run's per-sample files: beside results.json, else the recorded ``run.dir``
    when it still holds the same run."""
    from gapbench.harness.results import load as load_results

    here = results_path.parent
    if (here / "grades.jsonl").is_file():
        return here
    ref = results.run
    recorded = ref.dir if ref else None
    if ref and recorded and (Path(recorded) / "grades.jsonl").is_file():
        try:
            there_ref = load_results(Path(recorded) / "results.json")[0].run
        except GapbenchError:
            there_ref = None
        if there_ref and there_ref.config_hash == ref.config_hash:
            return Path(recorded)
    raise GapbenchError(
        f"{results_path}: {NEEDS_RUN_DIR}. No grades.jsonl beside it"
        + (f" nor in its recorded run directory {recorded}" if recorded else "")
        + ". Give the directory `gapbench run --out` wrote (it holds results.json and the .jsonl files)."
    )


def check_digests(run_dir: Path, recorded: dict, now: dict) -> None:
    """Refuse a run directory whose stored work was made from other documents or other weights than
    the run would use now. A digest that run.json lacks (a run from before digests) is not checked."""
    docs_then, docs_now = recorded.get("docs"), now.get("docs")
    if isinstance(docs_then, dict) and isinstance(docs_now, dict) and docs_then.get("sha256") != docs_now.get("sha256"):
        raise GapbenchError(
            f"{run_dir}: the task's documents changed since this run stored its work: run.json records "
            f"{docs_then.get('count')} prompts with digest {str(docs_then.get('sha256'))[:16]}, the data now gives "
            f"{docs_now.get('count')} prompts with digest {str(docs_now.get('sha256'))[:16]} (the data file was edited or "
            "replaced). The stored samples answer the old questions. Use another --out to run on the new data, or "
            "restore the data the run was made with to resume it."
        )
    for which, flag in (("model", "--model"), ("verifier_model", "--verifier-model")):
        then, now_w = recorded.get(which), now.get(which)
        if not (isinstance(then, dict) and isinstance(now_w, dict)) or not then.get("sha256") or not now_w.get("sha256"):
            continue
        if then["sha256"] != now_w["sha256"]:
            a, b = then.get("files") or {}, now_w.get("files") or {}
            changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
            raise GapbenchError(
                f"{run_dir}: the weights behind {flag} changed since this run stored its work ({shown or 'its files'} "
                "differ from the digests run.json records): the stored samples and verdicts came from the old weights. "
                "Use another --out for the new weights, or put the old weights back to resume."
            )


def verdict_order(record: dict) -> tuple:
    """Where a verdict line stands in verdicts.jsonl: by method, doc_id and request key, numbers in
    names compared as numbers (``add1-2`` before ``add1-10``)."""
    return tuple(_natural(record.get(k)) for k in ("method", "doc_id", "key"))


def _natural(value) -> tuple:
    import re

    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p)


def _write_json(path: Path, obj) -> None:
    safe_paths.write_text(path.parent, path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", tmp_suffix=".tmp")


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline: its stage writes it again."""
    if path.is_symlink():
        raise link_error(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    safe_paths.truncate(path.parent, path, data.rfind(b"\n") + 1)
