"""The prompts a run's model read, rebuilt for the viewer and checked against the run's digests.

Each sample's generation prompt is rebuilt from the task plugin (``Task.generation_turns``) and each
verification prompt from the verifier plugin (``Verifier.contexts``, for the request keys stored in
``verdicts.jsonl``), then checked against what the run stored when the model read them: a sample's
``prompt_digest`` (samples.jsonl) and a verdict's ``judged`` (verdicts.jsonl), both
:func:`harness.digest.text_digest` of the exact text. A prompt is ``ok`` (the text shown is the one the
model read), ``differs`` (the plugin builds another text today: a changed task or verifier, a version
bump, an edited sample) or ``unchecked`` (the run stored no digest: runs made before digests were
recorded, or prompts through a chat template, which the viewer does not load).

Long few-shot heads are stored once (:attr:`RunPrompts.heads`): a generation prompt's head is every
turn before the question; a verifier's head is the longest line-ending prefix all its prompts share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gapbench.harness.digest import text_digest

OK, DIFFERS, UNCHECKED = "ok", "differs", "unchecked"
MIN_HEAD = 200  # characters: a shorter shared prefix is left in each prompt
SAMPLE_KEY = re.compile(r"(\d+):")  # a request key of one sample ("3:Correct", "3:0"); others (tournament) are the prompt's


@dataclass
class Prompt:
    """One prompt as shown: ``heads[head]`` (when ``head`` >= 0) followed by ``tail``."""

    head: int
    tail: str
    status: str  # OK, DIFFERS or UNCHECKED
    keys: list[str] = field(default_factory=list)  # verification: the request keys that read this text
    stored: str | None = None  # the digest the run stored (the first that differs, where one does)
    rebuilt: str = ""  # the digest of the text shown

    def to_json(self) -> dict:
        out: dict = {"h": self.head, "t": self.tail, "st": self.status}
        if self.keys:
            out["k"] = self.keys
        if self.status == DIFFERS:
            out["was"], out["now"] = self.stored, self.rebuilt
        return out


@dataclass
class RunPrompts:
    heads: list[str] = field(default_factory=list)
    generation: dict[str, Prompt] = field(default_factory=dict)  # doc_id -> its generation prompt
    verification: dict[str, dict[str, list[Prompt]]] = field(default_factory=dict)  # method -> doc_id -> prompts
    head_of: dict[str, int] = field(default_factory=dict)  # method -> its shared head (-1: none)
    summary: list[str] = field(default_factory=list)  # what was rebuilt and checked, one line per part
    warnings: list[str] = field(default_factory=list)  # what differs, said plainly
    note: str | None = None  # why no prompt is shown
    unchecked: int = 0  # prompts without a stored digest to check them against
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def head_index(self, text: str) -> int:
        if not text:
            return -1
        if text not in self._index:
            self._index[text] = len(self.heads)
            self.heads.append(text)
        return self._index[text]

    def by_sample(self, method: str, doc_id: str) -> tuple[dict[int, list[dict]], list[dict]]:
        """A doc's verification prompts of ``method`` as the page holds them: sample -> the prompts its
        requests read (each with that sample's keys only), and the prompts of no single sample (tournament
        matches). One pass over the doc's request keys."""
        per: dict[int, list[dict]] = {}
        shared: list[dict] = []
        for p in self.verification.get(method, {}).get(doc_id, []):
            keys: dict[int | None, list[str]] = {}
            for k in p.keys:
                keys.setdefault(_sample_of(k), []).append(k)
            for i, ks in keys.items():
                item = {**p.to_json(), "k": ks}
                if i is None:
                    shared.append(item)
                else:
                    per.setdefault(i, []).append(item)
        return per, shared


def _sample_of(key: str) -> int | None:
    m = SAMPLE_KEY.match(key)
    return int(m[1]) if m else None


def _status(text: str, stored: set[str | None]) -> tuple[str, str | None, str]:
    now = text_digest(text)
    digests = sorted(d for d in stored if d)
    if not digests:
        return UNCHECKED, None, now
    wrong = [d for d in digests if d != now]
    return (DIFFERS, wrong[0], now) if wrong else (OK, now, now)


class _Splitter:
    """The longest line-ending prefix shared by every text added, found in one pass without keeping the
    texts: each tail is kept relative to the shared prefix as it was then, and lengthened at the end."""

    def __init__(self) -> None:
        self.first: str | None = None
        self.common = 0
        self.parts: list[tuple[int, str]] = []

    def add(self, text: str) -> int:
        if self.first is None:
            self.first, self.common = text, len(text)
        else:
            n, first = min(self.common, len(text)), self.first
            if text[:n] != first[:n]:
                lo, hi = 0, n  # the first difference, by halving
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if text[:mid] == first[:mid]:
                        lo = mid
                    else:
                        hi = mid - 1
                n = lo
            self.common = n
        self.parts.append((self.common, text[self.common :]))
        return len(self.parts) - 1

    def finish(self) -> tuple[str, list[str]]:
        if self.first is None:
            return "", []
        cut = self.first.rfind("\n", 0, self.common) + 1
        if cut < MIN_HEAD or len(self.parts) < 2:
            cut = 0
        return self.first[:cut], [self.first[cut:at] + tail for at, tail in self.parts]


def rebuild(task, docs: dict, samples: dict[str, list[dict]], verifiers: dict, judged: dict, *, chat: bool, recorded: dict) -> RunPrompts:
    """Every prompt of the run, rebuilt and checked. ``docs``: doc_id -> Doc (the task's data as loaded
    here); ``samples``: doc_id -> samples.jsonl records; ``verifiers``: method -> the rebuilt verifier;
    ``judged``: method -> doc_id -> key -> stored digest (:meth:`harness.store.RunStore.judged`); ``chat``:
    the run put its prompts through a chat template; ``recorded``: the task block of results.json
    (its ``version`` and ``verification_prompts``), compared with today's plugins."""
    from gapbench.verifiers import prompts as verification_prompts

    out = RunPrompts()
    doc_ids = [d for d in samples if d in docs]
    if not doc_ids:
        out.note = "the task's questions are not loaded here, so its prompts cannot be rebuilt"
        return out
    versions = []
    if recorded.get("version") not in (None, task.version):
        versions.append(f"task {task.name!r} is version {task.version} here, the run used version {recorded.get('version')}")
    if recorded.get("verification_prompts") not in (None, verification_prompts.VERSION):
        versions.append(f"the verification prompts are version {verification_prompts.VERSION} here, the run used version {recorded.get('verification_prompts')}")

    counts = {OK: 0, DIFFERS: 0, UNCHECKED: 0}
    differ: list[str] = []
    for d in doc_ids:
        turns = task.generation_turns(docs[d])
        head, tail = ("".join(turns[:-1]), turns[-1]) if len(turns) > 1 else ("", "".join(turns))
        stored = {s.get("prompt_digest") for s in samples[d]}
        status, was, now = _status(head + tail, set() if chat else stored)
        out.generation[d] = Prompt(out.head_index(head), tail, status, stored=was, rebuilt=now)
        counts[status] += 1
        if status == DIFFERS:
            differ.append(d)
    out.summary.append(_line("generation", counts, len(doc_ids), "samples.jsonl", chat))
    out.unchecked += counts[UNCHECKED]
    if differ:
        out.warnings.append(_differs("generation prompt", differ, counts[DIFFERS]))

    for method, v in verifiers.items():
        if not getattr(v, "uses_model", True):
            continue
        split, where = _Splitter(), []
        counts = {OK: 0, DIFFERS: 0, UNCHECKED: 0}
        differ = []
        try:
            for d in doc_ids:
                have = judged.get(method, {}).get(d, {})
                if not have:
                    continue
                contexts = v.contexts(task, docs[d], [s["response"] for s in samples[d]], list(have))
                by_text: dict[tuple, list[str]] = {}  # one entry per text and what its keys' digests say of it
                for key in have:
                    if key in contexts:
                        by_text.setdefault((contexts[key], *_status(contexts[key], set() if chat else {have[key]})), []).append(key)
                for (text, status, was, now), keys in by_text.items():
                    where.append((d, split.add(text), keys, status, was, now))
                    counts[status] += 1
                    if status == DIFFERS and (not differ or differ[-1] != d):
                        differ.append(d)
        except Exception as exc:  # a plugin that cannot rebuild its prompts here: the rest is still shown
            out.summary.append(f"{method}: its prompts could not be rebuilt here ({type(exc).__name__}: {exc})")
            continue
        head, tails = split.finish()
        h = out.head_index(head)
        out.head_of[method] = h
        per_doc: dict[str, list[Prompt]] = {}
        for d, k, keys, status, was, now in where:
            per_doc.setdefault(d, []).append(Prompt(h, tails[k], status, keys, was, now))
        out.verification[method] = per_doc
        total = sum(counts.values())
        out.summary.append(_line(method, counts, total, "verdicts.jsonl", chat))
        out.unchecked += counts[UNCHECKED]
        if differ:
            out.warnings.append(_differs(f"{method} verification prompt", differ, counts[DIFFERS]))
    if chat:
        out.summary.append(
            "This run put its prompts through the model's chat template, which the viewer does not load: each prompt "
            "is shown as its turns joined before the template, and none is checked against the stored digests."
        )
    if versions and (out.warnings or out.unchecked):
        out.warnings.append("; ".join(versions).capitalize() + ".")
    return out


def _line(what: str, counts: dict[str, int], total: int, stored_in: str, chat: bool) -> str:
    parts = []
    if counts[OK]:
        parts.append(f"{counts[OK]} match the digest stored in {stored_in}")
    if counts[DIFFERS]:
        parts.append(f"{counts[DIFFERS]} DIFFER from what the model read")
    if counts[UNCHECKED]:
        why = "the run applied a chat template" if chat else f"{stored_in} holds no digest of them"
        parts.append(f"{counts[UNCHECKED]} not checked ({why})")
    return f"{what}: {total} prompt{'s' if total != 1 else ''}" + (": " + ", ".join(parts) if parts else "")


def _differs(what: str, docs: list[str], n: int) -> str:
    shown = ", ".join(docs[:5]) + (f" and {len(docs) - 5} more" if len(docs) > 5 else "")
    return (
        f"{n} {what}{'s' if n != 1 else ''} rebuilt here differ{'s' if n == 1 else ''} from what the model read "
        f"(docs {shown}): the text shown for {'them' if n != 1 else 'it'} is today's, not the one the model saw."
    )
