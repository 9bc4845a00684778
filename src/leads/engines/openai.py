"""The ``openai`` engine: any OpenAI-compatible chat server (vLLM, llama.cpp's llama-server,
``leads serve-model``, Ollama, hosted APIs) through the official ``openai`` client.

Structured output is requested only through ``response_format`` with a JSON schema, which vLLM,
llama.cpp and OpenAI honour. (vLLM's old ``guided_json`` extra parameter is ignored without an
error by current vLLM, so it is never sent.)

Configuration (``[engines.openai]`` or options, then environment):

* ``base_url``: ``$LEADS_OPENAI_BASE_URL`` or ``$OPENAI_BASE_URL``, e.g. ``http://localhost:8000/v1``
* ``model``: ``$LEADS_OPENAI_MODEL``, else the only model the server lists at ``/v1/models``
* ``api_key`` or ``api_key_env`` (default ``OPENAI_API_KEY``); a local server needs none
* ``timeout`` (seconds, default 120), plus the :class:`LLMEngine` options
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
from collections.abc import Mapping
from typing import Any, cast

import httpx
import openai

from leads.engines._base import Completion, LLMEngine
from leads.engines.calllog import CallLog
from leads.errors import EngineError, RetryableEngineError
from leads.tasks import Message

__all__ = ["OpenAIBackend", "create", "parse_retry_after"]

NO_KEY = "not-needed"  # the client insists on a key; local servers ignore it


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait according to ``Retry-After`` (seconds or an HTTP date) or OpenAI's
    ``retry-after-ms``; ``None`` when absent or unreadable."""
    if not headers:
        return None
    headers = httpx.Headers(dict(headers.items()))
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    text = exc.response.text.strip() if exc.response is not None else ""
    return text[:1000] or exc.message


def _translate(exc: openai.OpenAIError, base_url: str) -> EngineError:
    if isinstance(exc, openai.APITimeoutError):
        return RetryableEngineError(f"{base_url}: the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return RetryableEngineError(f"{base_url}: cannot connect ({cause})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"{base_url}: HTTP {status}: {_server_message(exc)}"
        if status in (408, 409, 429) or status >= 500:
            return RetryableEngineError(
                message, retry_after=parse_retry_after(exc.response.headers)
            )
        return EngineError(message)
    return EngineError(f"{base_url}: {exc}")


class OpenAIBackend:
    """Chat completions with a JSON-schema ``response_format`` on an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_client = http_client is None
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or NO_KEY,
            timeout=timeout,
            max_retries=0,
            # openai 3 types this as an httpx2.Client; an httpx.Client works the same
            http_client=cast(Any, http_client),
        )
        self.model: str = model or self._only_model()

    def served_models(self) -> list[str]:
        """The model ids the server lists at ``/models``."""
        try:
            return [m.id for m in self.client.models.list()]
        except openai.OpenAIError as exc:
            raise _translate(exc, self.base_url) from None

    def _only_model(self) -> str:
        models = self.served_models()
        if len(models) == 1:
            return models[0]
        if not models:
            raise EngineError(f"{self.base_url} serves no model; set [engines.openai] model")
        raise EngineError(
            f"{self.base_url} serves several models, choose one with [engines.openai] "
            f"model (or $LEADS_OPENAI_MODEL): {', '.join(models)}"
        )

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        schema_name: str,
        options: dict[str, Any],
    ) -> Completion:
        kwargs: dict[str, Any] = {}
        for key in ("temperature", "max_tokens", "seed"):
            if options.get(key) is not None:
                kwargs[key] = options[key]
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=cast(Any, list(messages)),
                response_format=cast(
                    Any,
                    {
                        "type": "json_schema",
                        "json_schema": {"name": schema_name, "schema": schema, "strict": False},
                    },
                ),
                stream=False,
                **kwargs,
            )
        except openai.OpenAIError as exc:
            raise _translate(exc, self.base_url) from None
        if not response.choices:
            raise EngineError(
                f"{self.base_url}: the response has no choices (model {response.model})"
            )
        choice = response.choices[0]
        message = choice.message
        usage = response.usage
        return Completion(
            text=message.content or getattr(message, "refusal", None) or "",
            model=response.model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            finish_reason=choice.finish_reason,
        )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def create(
    *,
    log: CallLog | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 120,
    http_client: httpx.Client | None = None,
    **llm_options: Any,
) -> LLMEngine:
    """The ``openai`` engine: :class:`LLMEngine` over an :class:`OpenAIBackend`."""
    base_url = (
        base_url or os.environ.get("LEADS_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    )
    if not base_url:
        raise EngineError(
            "the openai engine needs the server's URL: set base_url in [engines.openai] of the config "
            "or project.toml, or $LEADS_OPENAI_BASE_URL (e.g. http://localhost:8000/v1 for vLLM)"
        )
    model = model or os.environ.get("LEADS_OPENAI_MODEL") or None
    key = api_key or os.environ.get(api_key_env) or None
    backend = OpenAIBackend(
        base_url, model, api_key=key, timeout=float(timeout), http_client=http_client
    )
    try:
        return LLMEngine(backend, log=log, engine_name="openai", **llm_options)
    except TypeError:
        backend.close()
        raise
