"""A run's verifiers as one suite: built from their specs, scored together, and asked what they keep.

The stage runner (:mod:`harness.runner`), the improve loop and the per-run readers' rescoring of stored
runs (:mod:`harness.runs.rundata`) all go through these three functions, so a verifier is scored
and filtered the same way wherever its u is needed:

- :func:`build_verifiers`: ``--verifiers`` specs (``name`` or ``name:arg``) to verifier objects, each
  bound to the run's other methods and with the members it combines added;
- :func:`score_all`: every verifier's :class:`~verifiers.base.Verdict` per sample, members before the
  verifiers that combine them. A verifier gets the ground truth ``g`` only when it declares
  ``needs_ground_truth`` (the oracle), and its members' u only when it names members (ensembles);
- :func:`keep_mask`: which samples of one prompt a verifier keeps under a filter rule: its own
  ``keep`` (an ensemble ANDs its members' decisions), else the rule applied to its u.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gapbench.harness.errors import GapbenchError
from gapbench.tasks.base import Task
from gapbench.verifiers import VERIFIERS
from gapbench.verifiers.base import KeepRule, Verdict, Verifier


def build_verifiers(specs: Sequence[str], m: int) -> list[Verifier]:
    """Verifier objects for ``--verifiers`` specs, in the given order, then the members they add."""
    out: dict[str, Verifier] = {}

    def make(spec: str) -> Verifier:
        name, _, arg = spec.partition(":")
        return VERIFIERS.get(name)(arg or None, m=m)

    for spec in specs:
        v = make(spec)
        out[v.method] = v
    for v in list(out.values()):
        v.bind([k for k, w in out.items() if w.uses_model])
        for member in v.members():
            if member not in out:
                out[member] = make(member)
    return list(out.values())


def scoring_order(verifiers: Sequence[Verifier]) -> list[Verifier]:
    """Every verifier after the members it combines (a stable topological order)."""
    by_method = {v.method: v for v in verifiers}
    done: dict[str, Verifier] = {}

    def visit(v: Verifier, path: tuple[str, ...]) -> None:
        if v.method in done:
            return
        if v.method in path:
            raise GapbenchError(f"verifier {v.method!r} combines itself through {' -> '.join(path + (v.method,))}.")
        for m in v.members():
            if m in by_method:
                visit(by_method[m], path + (v.method,))
        done[v.method] = v

    for v in verifiers:
        visit(v, ())
    return list(done.values())


def score_all(
    task: Task,
    docs: Sequence,
    samples: dict[str, list[str]],
    replies: dict[str, dict[str, dict]],
    verifiers: Sequence[Verifier],
    g: Callable[[str], list[int]] | dict[str, list[int]],
    *,
    unscored: dict[str, str] | None = None,
) -> dict[str, dict[str, list[Verdict]]]:
    """method -> doc_id -> one Verdict per sample.

    ``replies`` is method -> doc_id -> request key -> stored reply; ``g`` the ground truth per doc
    (a dict, or a function of the doc_id), read only for verifiers that need it. With ``unscored``
    (a dict) a verifier whose stored replies do not score, or whose members could not be scored, is
    recorded there with the reason and left out instead of raising: the leaderboards rescore old
    runs that way.
    """
    ground = g if callable(g) else g.__getitem__
    out: dict[str, dict[str, list[Verdict]]] = {}
    for v in scoring_order(verifiers):
        missing = [m for m in v.members() if m not in out]
        if missing:
            if unscored is None:
                raise GapbenchError(f"verifier {v.method!r} combines {', '.join(missing)}, which the run does not score.")
            unscored[v.method] = f"its members {', '.join(missing)} could not be rescored"
            continue
        per_doc: dict[str, list[Verdict]] = {}
        try:
            for doc in docs:
                inputs: dict = {}
                if v.needs_ground_truth:
                    inputs["g"] = list(ground(doc.doc_id))
                if v.members():
                    inputs["member_u"] = {m: [x.u for x in out[m][doc.doc_id]] for m in v.members()}
                per_doc[doc.doc_id] = v.score(task, doc, samples[doc.doc_id], replies.get(v.method, {}).get(doc.doc_id, {}), **inputs)
        except (KeyError, RuntimeError, AttributeError, TypeError) as exc:
            if unscored is None:
                raise
            unscored[v.method] = f"its stored verdicts do not rescore ({type(exc).__name__}: {exc})"
            continue
        out[v.method] = per_doc
    return out


def u_of(verdicts: dict[str, dict[str, list[Verdict]]]) -> dict[str, dict[str, list[float]]]:
    """method -> doc_id -> u per sample."""
    return {m: {d: [float(x.u) for x in vs] for d, vs in per_doc.items()} for m, per_doc in verdicts.items()}


def keep_mask(verifier: Verifier, u: dict[str, dict[str, list[float]]], rule: KeepRule, doc_id: str) -> list[bool]:
    """Which samples of one prompt ``verifier`` keeps under ``rule``: its own ``keep`` given every
    method's u of that prompt (ensembles), else the rule applied to its own u."""
    mask = verifier.keep({m: per_doc[doc_id] for m, per_doc in u.items() if doc_id in per_doc}, rule)
    return list(mask) if mask is not None else rule.keep(u[verifier.method][doc_id])
