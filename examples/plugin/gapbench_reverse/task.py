"""A task: spell a word backwards. The documents are generated from a fixed list, so the task
needs no data file; ``g`` is exact match on the first word of the reply."""

from __future__ import annotations

from gapbench.tasks import Doc, Grade, Task, VerificationExample, register

WORDS = ("stone", "planet", "garden", "silver", "window", "orange", "bridge", "candle", "forest", "rocket")


@register
class Reverse(Task):
    name = "reverse"
    description = "Spell a word backwards (an example plugin)"
    version = "1"  # bump when the prompt or the grader changes: a stored run with another version is refused
    stop = ("\n",)
    max_gen_toks = 16

    def load_docs(self, split: str, data_dir: str | None) -> list[Doc]:
        return [Doc(doc_id=f"reverse-{i}", question=f"Spell '{w}' backwards.", target=w[::-1]) for i, w in enumerate(WORDS)]

    def generation_prompt(self, doc: Doc) -> str:
        return f"{doc.question}\nAnswer:"

    def grade(self, doc: Doc, response: str) -> Grade:
        words = response.strip().strip(".'\"").split()
        answer = words[0].strip(".'\"").lower() if words else None
        return Grade(g=int(answer == doc.target), answer=answer)

    def verification_examples(self) -> list[VerificationExample]:
        return [
            VerificationExample("Spell 'table' backwards.", "elbat", True, "t-a-b-l-e read from the end is e-l-b-a-t, which matches.", 10),
            VerificationExample("Spell 'river' backwards.", "revil", False, "r-i-v-e-r read from the end is r-e-v-i-r, not revil.", 1),
        ]
