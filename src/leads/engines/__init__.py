"""Engines: one contract for every task, interchangeable implementations, one call log.

``get_engine(name)`` returns an :class:`Engine`; ``engine.run(task, input)`` returns a
:class:`TaskResult` whose ``call_id`` points into the call log. Built-in engines: ``classic``
(offline algorithms), ``openai`` (any OpenAI-compatible server), ``llamacpp`` (in-process GGUF),
``replay`` (answers from the log). Others register through the ``register_engines`` hook.
"""

from leads.engines._base import ChatBackend, Completion, Engine, FakeBackend, LLMEngine, TaskResult
from leads.engines._registry import (
    EngineInfo,
    engine_config,
    engines,
    get_engine,
    hookimpl,
    hookspec,
    plugin_manager,
)
from leads.engines.batch import BatchReport, batch_results, run_batch
from leads.engines.calllog import (
    CallLog,
    CallRecord,
    DatabaseCallLog,
    MemoryCallLog,
    default_call_log,
    prompt_hash,
)

__all__ = [
    "BatchReport",
    "CallLog",
    "CallRecord",
    "ChatBackend",
    "Completion",
    "DatabaseCallLog",
    "Engine",
    "EngineInfo",
    "FakeBackend",
    "LLMEngine",
    "MemoryCallLog",
    "TaskResult",
    "batch_results",
    "default_call_log",
    "engine_config",
    "engines",
    "get_engine",
    "hookimpl",
    "hookspec",
    "plugin_manager",
    "prompt_hash",
    "run_batch",
]
