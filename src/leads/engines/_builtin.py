"""The built-in engines, registered through the same hook as any plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leads.engines._base import Engine
from leads.engines._registry import EngineInfo, hookimpl


def _classic(**config: Any) -> Engine:
    from leads.engines.classic import ClassicEngine

    return ClassicEngine(**config)


def _replay(**config: Any) -> Engine:
    from leads.engines.replay import ReplayEngine

    return ReplayEngine(**config)


def _openai(**config: Any) -> Engine:
    from leads.engines.openai import create

    return create(**config)


def _llamacpp(**config: Any) -> Engine:
    from leads.engines.llamacpp import create

    return create(**config)


@hookimpl
def register_engines(register: Callable[[EngineInfo], None]) -> None:
    register(EngineInfo("classic", _classic, "offline CPU algorithms (default)"))
    register(EngineInfo("openai", _openai, "any OpenAI-compatible chat server (vLLM, llama.cpp server, "
                                           "Ollama, hosted APIs)", requires="llm"))
    register(EngineInfo("llamacpp", _llamacpp, "a GGUF model in-process through llama.cpp (xllamacpp)",
                        requires="llm"))
    register(EngineInfo("replay", _replay, "answers only from the call log, to reproduce a review"))
