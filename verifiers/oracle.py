"""Oracle: u = g, the ground truth. The upper bound of any verifier; never 'self'."""

from gapbench.verifiers import Verdict, Verifier, register


@register
class Oracle(Verifier):
    name = "oracle"
    description = "u = g (ground truth): the upper bound, not self-verification"
    uses_model = False
    needs_ground_truth = True

    def requests(self, task, doc, samples, replies):
        return []

    def score(self, task, doc, samples, replies, *, g, **_):
        return [Verdict(u=float(x)) for x in g]
