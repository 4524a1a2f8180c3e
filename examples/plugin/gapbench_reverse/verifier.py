"""A verifier that calls no model: u is 1 when the reply has as many letters as the word, else 0
(a cheap baseline that the model's own verifiers should beat)."""

from __future__ import annotations

from gapbench.verifiers import Verdict, Verifier, register


@register
class Length(Verifier):
    name = "length"
    description = "u = 1 when the reply has the word's length (an example plugin; no model call)"
    uses_model = False

    def requests(self, task, doc, samples, replies):
        return []

    def score(self, task, doc, samples, replies, **_):
        n = len(doc.target)
        return [Verdict(u=float(len((s.strip().split() or [""])[0].strip(".'\"")) == n)) for s in samples]
