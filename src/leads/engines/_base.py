"""The engine protocol, the generic structured-output loop for LLMs, and the queue-based fake model."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import ValidationError

from leads.engines.calllog import CallLog, CallRecord, MemoryCallLog, prompt_hash
from leads.errors import EngineError
from leads.tasks import AnswerError, Message, Task, TaskInput, TaskOutput

__all__ = [
    "ChatBackend",
    "Completion",
    "Engine",
    "FakeBackend",
    "LLMEngine",
    "TaskResult",
]

OutputT = TypeVar("OutputT", bound=TaskOutput)


@dataclass
class TaskResult(Generic[OutputT]):
    """A task's validated output and the call (in the call log) that produced it."""

    output: OutputT
    call_id: int | None
    engine: str
    model: str | None
    cached: bool = False


class Engine(ABC):
    """Turns (task, input) into the task's validated output, logging the call."""

    name: ClassVar[str]

    def __init__(self, *, log: CallLog | None = None) -> None:
        self.log: CallLog = log if log is not None else MemoryCallLog()

    @property
    def model(self) -> str | None:
        return None

    @abstractmethod
    def run(self, task: Task, inp: TaskInput | dict[str, Any], *, batch_id: str | None = None,
            item_key: str | None = None) -> TaskResult[Any]:
        """Run one task on one input; raises :class:`EngineError` when no valid output can be had."""

    def supports(self, task: Task) -> bool:
        return True

    def close(self) -> None:  # noqa: B027 - a no-op default; engines holding resources override it
        """Release models, connections and threads."""


@dataclass
class Completion:
    """A chat model's raw reply."""

    text: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class ChatBackend(Protocol):
    """What an LLM engine needs from a model: messages + JSON schema in, text out."""

    model: str

    def complete(self, messages: list[Message], *, schema: dict[str, Any], schema_name: str,
                 options: dict[str, Any]) -> Completion: ...

    def close(self) -> None: ...


@dataclass
class _Attempt:
    attempt: int
    raw: str | None
    errors: list[str]
    call_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "raw": self.raw, "errors": self.errors, "call_id": self.call_id}


def _errors_of(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()][:10]
    return [str(exc)]


REASK = ("Your answer was not valid: {errors}\nAnswer again with only the corrected JSON, "
         "following the schema and the instructions above.")


class LLMEngine(Engine):
    """A generic engine over any :class:`ChatBackend`: prompt, schema-constrained answer,
    client-side validation, quote grounding, re-ask with the error, call log, cache.

    ``temperature`` defaults to 0; deterministic calls are answered from the call log when the
    identical call (same messages, schema, engine, model and options) was made before, unless
    ``cache=False``. When every attempt fails it raises :class:`EngineError` whose ``attempts``
    hold each raw answer and its errors: there is never a silent default.
    """

    name = "llm"

    def __init__(
        self,
        backend: ChatBackend,
        *,
        log: CallLog | None = None,
        max_attempts: int = 3,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        seed: int | None = 0,
        text_budget: int | None = 24_000,
        cache: bool = True,
        engine_name: str | None = None,
    ) -> None:
        super().__init__(log=log)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.backend = backend
        self.max_attempts = max_attempts
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.text_budget = text_budget
        self.cache = cache
        if engine_name:
            self.name = engine_name  # type: ignore[misc]

    @property
    def model(self) -> str | None:
        return self.backend.model

    def options(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed,
                "text_budget": self.text_budget}

    def run(self, task: Task, inp: TaskInput | dict[str, Any], *, batch_id: str | None = None,
            item_key: str | None = None) -> TaskResult[Any]:
        inp = inp if isinstance(inp, TaskInput) else task.validate_input(inp)
        messages = task.messages(inp, text_budget=self.text_budget)
        schema = task.answer_schema(inp)
        options = self.options()
        first_hash = prompt_hash(list(messages), task.schema_id, schema)  # type: ignore[arg-type]
        if self.cache and self.temperature == 0:
            hit = self.log.find(first_hash, engine=self.name, model=self.model, options=options)
            if hit is not None:
                result = self._from_cache(task, inp, hit, batch_id, item_key)
                if result is not None:
                    return result
        attempts: list[_Attempt] = []
        conversation = list(messages)
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            completion = self.backend.complete(conversation, schema=schema, schema_name=task.name,
                                               options={k: v for k, v in options.items() if k != "text_budget"})
            duration = (time.perf_counter() - started) * 1000
            record = CallRecord(
                task=task.name, engine=self.name, model=self.model, messages=list(conversation),  # type: ignore[arg-type]
                prompt_hash=first_hash, schema_id=task.schema_id, options=options,
                resolved_model=completion.model, raw_output=completion.text, attempt=attempt,
                prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                duration_ms=duration, batch_id=batch_id, item_key=item_key,
            )
            try:
                answer = task.parse_answer(completion.text)
                # On the last attempt, quotes that cannot be located are flagged, not fatal.
                output = task.finish(answer, inp, strict_quotes=attempt < self.max_attempts)
            except (ValidationError, AnswerError, ValueError) as exc:
                errors = _errors_of(exc)
                if completion.finish_reason == "length":
                    errors.append("the answer was cut off at the token limit")
                record.validation_errors = errors
                call_id = self.log.add(record)
                attempts.append(_Attempt(attempt, completion.text, errors, call_id))
                conversation = [*messages, {"role": "assistant", "content": completion.text},
                                {"role": "user", "content": REASK.format(errors="; ".join(errors))}]
                continue
            record.parsed = output.model_dump(mode="json")
            call_id = self.log.add(record)
            return TaskResult(output=output, call_id=call_id, engine=self.name, model=self.model)
        raise EngineError(
            f"{self.name} ({self.model}) gave no valid answer for task {task.name!r} after "
            f"{self.max_attempts} attempts; last errors: {'; '.join(attempts[-1].errors)}",
            attempts=[a.as_dict() for a in attempts],
        )

    def _from_cache(self, task: Task, inp: TaskInput, hit: CallRecord, batch_id: str | None,
                    item_key: str | None) -> TaskResult[Any] | None:
        try:
            output = task.output_model.model_validate(hit.parsed)
        except ValidationError:
            return None
        record = CallRecord(
            task=task.name, engine=self.name, model=self.model, messages=hit.messages,
            prompt_hash=hit.prompt_hash, schema_id=hit.schema_id, options=hit.options,
            resolved_model=hit.resolved_model, raw_output=hit.raw_output, parsed=hit.parsed,
            attempt=hit.attempt, prompt_tokens=0, completion_tokens=0, duration_ms=0.0,
            cached_from=hit.cached_from or hit.id, batch_id=batch_id, item_key=item_key,
        )
        call_id = self.log.add(record)
        return TaskResult(output=output, call_id=call_id, engine=self.name, model=self.model, cached=True)

    def close(self) -> None:
        self.backend.close()


Responder = Callable[[list[Message], dict[str, Any]], str]


@dataclass
class FakeBackend:
    """A queue-based fake chat model for tests: each call pops the next reply.

    A reply is a string (returned as is), a dict/list (returned as JSON), an exception (raised),
    or a callable ``(messages, schema) -> str``. ``requests`` records what was asked.
    """

    replies: Iterable[Any] = ()
    model: str = "fake-model"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Any] = deque(self.replies)

    def add(self, *replies: Any) -> None:
        self._queue.extend(replies)

    def complete(self, messages: list[Message], *, schema: dict[str, Any], schema_name: str,
                 options: dict[str, Any]) -> Completion:
        self.requests.append({"messages": list(messages), "schema": schema, "schema_name": schema_name,
                              "options": options})
        if not self._queue:
            raise AssertionError("FakeBackend: no reply left in the queue")
        reply = self._queue.popleft()
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(messages, schema)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return Completion(text=text, model=self.model, prompt_tokens=sum(len(m["content"].split()) for m in messages),
                          completion_tokens=len(text.split()), finish_reason="stop")

    def close(self) -> None:
        pass
