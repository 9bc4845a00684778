"""The ``replay`` engine: answers only from a call log, to reproduce a review exactly.

It builds the same prompt the original engine built (same task, input and ``text_budget``) and
returns the newest valid answer logged for it, whichever engine and model produced it. A call
that was never made is an error, never a guess.
"""

from __future__ import annotations

from typing import Any

from leads.engines._base import Engine, TaskResult
from leads.engines.calllog import CallLog, CallRecord, prompt_hash
from leads.errors import EngineError
from leads.tasks import Task, TaskInput

__all__ = ["ReplayEngine"]


class ReplayEngine(Engine):
    name = "replay"

    def __init__(self, *, log: CallLog | None = None, source: CallLog | None = None,
                 text_budget: int | None = 24_000, **_ignored: Any) -> None:
        super().__init__(log=log)
        self.source = source if source is not None else self.log
        self.text_budget = text_budget

    @property
    def model(self) -> str | None:
        return "replay"

    def run(self, task: Task, inp: TaskInput | dict[str, Any], *, batch_id: str | None = None,
            item_key: str | None = None) -> TaskResult[Any]:
        inp = inp if isinstance(inp, TaskInput) else task.validate_input(inp)
        candidates = [
            prompt_hash(list(task.messages(inp, text_budget=self.text_budget)), task.schema_id, task.answer_schema(inp)),  # type: ignore[arg-type]
            prompt_hash([{"role": "input", "content": inp.model_dump_json()}], task.schema_id, None),  # classic
        ]
        hit = next((h for h in (self.source.find(c) for c in candidates) if h is not None), None)
        if hit is None:
            raise EngineError(f"replay: the call log has no answer for this {task.name!r} input")
        output = task.output_model.model_validate(hit.parsed)
        call_id = self.log.add(CallRecord(
            task=task.name, engine=self.name, model=hit.model, messages=hit.messages,
            prompt_hash=hit.prompt_hash, schema_id=hit.schema_id, options=hit.options,
            resolved_model=hit.resolved_model, raw_output=hit.raw_output, parsed=hit.parsed,
            cached_from=hit.cached_from or hit.id, duration_ms=0.0, batch_id=batch_id, item_key=item_key,
        ))
        return TaskResult(output=output, call_id=call_id, engine=self.name, model=hit.model, cached=True)
