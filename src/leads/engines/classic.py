"""The ``classic`` engine: offline CPU algorithms, one implementation per task.

Implementations live next to their stage (search, screening, extraction) and register here with
:func:`implements`; the engine dispatches on the task name and logs each call like any engine
(the input as the prompt, the algorithm's version as the model).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from leads.engines._base import Engine, TaskResult
from leads.engines.calllog import CallLog, CallRecord, prompt_hash
from leads.errors import EngineError
from leads.tasks import Task, TaskInput, TaskOutput

__all__ = ["ClassicEngine", "implementations", "implements"]

ClassicFunction = Callable[[Any], TaskOutput]

_IMPLEMENTATIONS: dict[str, tuple[ClassicFunction, str]] = {}

# Stage modules that register classic implementations when imported. A module that does not
# exist yet (its stage not built) is skipped.
IMPLEMENTATION_MODULES = (
    "leads.search.generate",
    "leads.screen.classic",
    "leads.screen.criteria",
    "leads.extract.pico",
    "leads.extract.characteristics",
    "leads.extract.participants",
    "leads.extract.results",
)


def implements(task_name: str, *, version: str) -> Callable[[ClassicFunction], ClassicFunction]:
    """Decorator: register ``fn(inp) -> output`` as the classic implementation of a task."""

    def decorate(fn: ClassicFunction) -> ClassicFunction:
        _IMPLEMENTATIONS[task_name] = (fn, version)
        return fn

    return decorate


def implementations() -> dict[str, tuple[ClassicFunction, str]]:
    for module in IMPLEMENTATION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    return dict(_IMPLEMENTATIONS)


class ClassicEngine(Engine):
    name = "classic"

    def __init__(self, *, log: CallLog | None = None, **_ignored: Any) -> None:
        super().__init__(log=log)

    @property
    def model(self) -> str | None:
        return "classic"

    def supports(self, task: Task) -> bool:
        return task.name in implementations()

    def run(self, task: Task, inp: TaskInput | dict[str, Any], *, batch_id: str | None = None,
            item_key: str | None = None) -> TaskResult[Any]:
        inp = inp if isinstance(inp, TaskInput) else task.validate_input(inp)
        found = implementations().get(task.name)
        if found is None:
            raise EngineError(
                f"the classic engine has no implementation of task {task.name!r} yet; "
                "use an LLM engine (--engine openai or --engine llamacpp)"
            )
        fn, version = found
        as_prompt = [{"role": "input", "content": inp.model_dump_json()}]
        started = time.perf_counter()
        output = fn(inp)
        duration = (time.perf_counter() - started) * 1000
        record = CallRecord(
            task=task.name, engine=self.name, model=f"classic/{task.name}/{version}", messages=as_prompt,
            prompt_hash=prompt_hash(as_prompt, task.schema_id, None), schema_id=task.schema_id,
            parsed=output.model_dump(mode="json"), duration_ms=duration, batch_id=batch_id, item_key=item_key,
        )
        call_id = self.log.add(record)
        return TaskResult(output=output, call_id=call_id, engine=self.name, model=record.model)
