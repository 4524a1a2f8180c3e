"""``hf-prefix``: lm-eval's ``hf`` model with gapbench's shared-prefix paths, as a registered lm-eval model.

:class:`HFPrefixLM` is lm-eval's :class:`~lm_eval.models.huggingface.HFLM` with two methods
overridden:

- ``loglikelihood`` runs each context in fixed blocks, a block that several contexts share once,
  so that a request's answer does not depend on the rest of its call (:mod:`.prefix_cache`);
- ``generate_until`` runs the shared few-shot head once, then each distinct context once for all
  of its requests (a prompt's n samples), and decodes with continuous batching (:mod:`.prefix_generate`).

Both give lm-eval's own results (the same tokenisation, stop sequences, truncation and
post-processing; scores equal up to float rounding, greedy text equal), and both hand a call
back to ``HFLM`` exactly where the shared path does not apply: ``GAPBENCH_PREFIX_CACHE=0``,
a non-causal model, ``batch_size=auto``, generation settings beyond
until/max_gen_toks/do_sample/temperature/top_p/top_k, a generation config that changes
sampling, a cache the row surgery does not cover, a thinking token id, an empty context, or a
request longer than the model takes. Everything else (loading, ``loglikelihood_rolling``, chat
templates) is ``HFLM``'s.

Importing this module registers the name with lm-eval's model registry, so
``get_model("hf-prefix")`` and ``simple_evaluate(model="hf-prefix", ...)`` find it. gapbench's
backends import it before creating a model and use it for ``hf`` on a CPU. lm-eval's own
``lm_eval`` command has no plug-in discovery for models; ``gapbench lm-eval ARGS`` or
``python -m gapbench.harness.models.lm_eval_cli ARGS`` registers the class, then runs lm-eval's command
line with ``ARGS`` unchanged (:mod:`.lm_eval_cli`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from gapbench.harness.models import prefix_cache, prefix_generate

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

NAME = "hf-prefix"


@register_model(NAME)
class HFPrefixLM(HFLM):
    """lm-eval's ``hf`` with shared-prefix loglikelihood and shared-prefix, continuous-batching generation."""

    prefix_paths = True  # prefix_cache.supported: this class keeps HFLM's internals that the paths use
    takes_seed = True  # a per-request seed in gen_kwargs makes that request's draw its own (backends.takes_seed)

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        if requests and not getattr(self, "enable_thinking", None) and prefix_cache.supported(self):  # HFLM refuses thinking
            pairs = [tuple(r.args) for r in requests]
            shared = prefix_cache.loglikelihood(self, pairs)
            if shared is not None:
                for pair, answer in zip(pairs, shared):
                    self.cache_hook.add_partial("loglikelihood", pair, answer)
                return shared
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        if requests and prefix_cache.supported(self):
            args = [tuple(r.args) for r in requests]
            bar = None

            def progress(done: int) -> None:  # the bar appears once generation has started
                nonlocal bar
                if bar is None:
                    bar = tqdm(total=len(args), disable=disable_tqdm or self.rank != 0, desc="Running generate_until requests")
                bar.update(done)

            try:
                shared = prefix_generate.generate(self, args, progress=progress)
            finally:
                if bar is not None:
                    bar.close()
            if shared is not None:
                for (context, gen_kwargs), text in zip(args, shared):
                    self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
                return shared
        return super().generate_until(_unseeded(requests), disable_tqdm=disable_tqdm)


def _unseeded(requests: list[Instance]) -> list[Instance]:
    """The requests without their per-request ``seed`` (HFLM's own generate would pass it on to
    Hugging Face ``generate``, which takes none): HFLM samples from torch's global generator."""
    out = []
    for r in requests:
        context, kwargs = r.args[0], r.args[1] if len(r.args) > 1 else {}
        if isinstance(kwargs, dict) and prefix_generate.SEED in kwargs:
            r = copy.copy(r)
            r.arguments = (context, prefix_generate.without_seed(kwargs), *r.args[2:])
        out.append(r)
    return out
