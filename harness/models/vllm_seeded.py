"""``--model vllm``: lm-eval's vLLM model with a prompt's n samples in one request.

vLLM samples ``SamplingParams(n=k, seed=s)`` as k child requests seeded ``s, s+1, ..., s+k-1``
(``vllm/v1/engine/parallel_sampling.py``), sharing the prompt's prefill. gapbench gives each
sample its own seed from its key (:func:`harness.runner.seeded`); for this model the runner makes
the seeds of one prompt's samples consecutive (:func:`harness.runner.sample_seed`), so the k
samples of a prompt that a call asks for go in one request whose children are seeded exactly as
k separate requests would be. A resumed run that lacks samples 3..7 of a prompt sends one request
with ``n=5, seed=s+3``: the same draws as the run that was not interrupted.

Also on by default: vLLM's automatic prefix caching (the few-shot head of every prompt is computed
once), and ``--seed`` as the engine's seed (lm-eval's own default is 1234 whatever the run's seed).

:func:`plan` (which requests go together) is pure and importable without vLLM; the model class
exists where vLLM is installed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gapbench.harness.models.prefix_generate import SEED, without_seed

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

NAME = "gapbench-vllm"


def plan(requests: list[tuple[str, dict]]) -> list[list[int]]:
    """Groups of request indices that go in one vLLM request: the same context and settings, and
    seeds that run consecutively (each group in seed order; its first seed seeds the request, with
    ``n`` = the group's size). A request without a seed is a group of its own."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, (context, kwargs) in enumerate(requests):
        settings = json.dumps(without_seed(kwargs), sort_keys=True, default=str)
        by_key.setdefault((context, settings), []).append(i)
    groups: list[list[int]] = []
    for members in by_key.values():
        seeded = sorted((int(requests[i][1][SEED]), i) for i in members if requests[i][1].get(SEED) is not None)
        run: list[tuple[int, int]] = []
        for seed, i in seeded:
            if run and seed == run[-1][0] + 1:
                run.append((seed, i))
            else:
                if run:
                    groups.append([i for _, i in run])
                run = [(seed, i)]
        if run:
            groups.append([i for _, i in run])
        groups += [[i] for i in members if requests[i][1].get(SEED) is None]
    return sorted(groups)


try:
    from lm_eval.models import vllm_causallms as _lv  # imports vllm
except ImportError:  # no vLLM here: backends.load says how to install it
    _lv = None

if _lv is not None:
    from lm_eval.api.registry import register_model
    from lm_eval.models.utils import maybe_truncate, postprocess_generated_text

    @register_model(NAME)
    class SeededVLLM(_lv.VLLM):
        """lm-eval's VLLM; prefix caching on unless ``enable_prefix_caching=False`` is given, and
        :meth:`generate_until` sends each group of :func:`plan` as one request with ``n``."""

        takes_seed = True  # a per-request seed in gen_kwargs makes that request's draw its own (backends.takes_seed)

        def __init__(self, *args: Any, enable_prefix_caching: bool = True, **kwargs: Any) -> None:
            super().__init__(*args, enable_prefix_caching=enable_prefix_caching, **kwargs)

        def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
            pairs = [tuple(r.args) for r in requests]
            groups = plan(pairs)
            eos = self.tokenizer.decode(self.eot_token_id) or getattr(self.tokenizer, "eos_token", None)
            prompts, params, stops = [], [], []
            for group in groups:
                context, gen_kwargs = pairs[group[0]]
                kwargs, until, max_gen_toks = self.modify_gen_kwargs(dict(gen_kwargs), eos=eos, default_max_gen_toks=self.max_gen_toks)
                tokens, max_gen_toks = maybe_truncate(
                    self.tok_encode(context), max_gen_toks=max_gen_toks, max_model_len=self.max_length, side=self.truncation_side, verbose=True
                )
                stop = [s for s in until if s == eos] if self.think_end_token else until
                params.append(_lv.SamplingParams(max_tokens=max_gen_toks, stop=stop, n=len(group), **kwargs))
                prompts.append(tokens)
                stops.append(until)
            outputs = self._model_generate(requests=prompts, generate=True, sampling_params=params)
            texts: list[str | None] = [None] * len(pairs)
            for group, output, until in zip(groups, outputs, stops):
                for j, i in enumerate(group):  # child j of a request is seeded seed + j
                    texts[i] = postprocess_generated_text(output.outputs[j].text, until, self.think_end_token)
            self.requests_sent = getattr(self, "requests_sent", 0) + len(prompts)  # tests/gpu counts them
            return [t if t is not None else "" for t in texts]  # every request of a group was answered
