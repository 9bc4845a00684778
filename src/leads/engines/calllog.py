"""The call log: every model call of every engine, in the project database (table ``model_calls``).

It is the audit trail (every AI suggestion points to its call), the cache (an identical
deterministic call is answered from it), the replay source, and raw material for instruction data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

__all__ = [
    "CallLog",
    "CallRecord",
    "DatabaseCallLog",
    "MemoryCallLog",
    "default_call_log",
    "prompt_hash",
]


def prompt_hash(messages: list[dict[str, Any]] | None, schema_id: str, schema: dict[str, Any] | None) -> str:
    """SHA-256 of a request (the task's messages + answer schema), independent of engine and model.

    Re-asks belong to the request they repair: every attempt carries the hash of the original
    request, and ``messages`` holds the whole conversation of that attempt.
    """
    payload = json.dumps({"messages": messages, "schema_id": schema_id, "schema": schema},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class CallRecord:
    task: str
    engine: str
    model: str | None
    messages: list[dict[str, Any]] | None
    prompt_hash: str
    schema_id: str
    options: dict[str, Any] = field(default_factory=dict)
    resolved_model: str | None = None
    raw_output: str | None = None
    parsed: Any = None
    validation_errors: list[str] | None = None
    attempt: int = 1
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None
    cached_from: int | None = None
    batch_id: str | None = None
    item_key: str | None = None
    id: int | None = None
    created_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.parsed is not None and not self.validation_errors


class CallLog(Protocol):
    def add(self, call: CallRecord) -> int: ...

    def find(self, prompt_hash: str, *, engine: str | None = None, model: str | None = None,
             options: dict[str, Any] | None = None) -> CallRecord | None:
        """The newest valid call with this prompt hash (and engine/model/options, when given)."""
        ...

    def calls(self, *, batch_id: str | None = None, limit: int | None = None) -> list[CallRecord]: ...


def _same_options(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return json.dumps(a or {}, sort_keys=True) == json.dumps(b or {}, sort_keys=True)


class MemoryCallLog:
    """A call log in memory (tests, one-off runs that keep nothing)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def add(self, call: CallRecord) -> int:
        call.id = len(self.records) + 1
        call.created_at = dt.datetime.now(dt.UTC)
        self.records.append(call)
        return call.id

    def find(self, prompt_hash: str, *, engine: str | None = None, model: str | None = None,
             options: dict[str, Any] | None = None) -> CallRecord | None:
        for call in reversed(self.records):
            if call.prompt_hash != prompt_hash or not call.ok:
                continue
            if engine is not None and call.engine != engine:
                continue
            if model is not None and call.model != model:
                continue
            if options is not None and not _same_options(call.options, options):
                continue
            return call
        return None

    def calls(self, *, batch_id: str | None = None, limit: int | None = None) -> list[CallRecord]:
        found = [c for c in self.records if batch_id is None or c.batch_id == batch_id]
        return found[:limit] if limit else found


class DatabaseCallLog:
    """The call log in a project database (or any database migrated with leads' schema)."""

    def __init__(self, engine: sa.Engine) -> None:
        from leads.project.schema import model_calls

        self.engine = engine
        self.table = model_calls

    def add(self, call: CallRecord) -> int:
        values = asdict(call)
        values.pop("id")
        values["created_at"] = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(self.table).values(**values))
            call.id = int(result.inserted_primary_key[0])  # type: ignore[index]
        call.created_at = values["created_at"]
        return call.id

    def _record(self, row: Any) -> CallRecord:
        return CallRecord(**{k: row[k] for k in CallRecord.__dataclass_fields__})

    def find(self, prompt_hash: str, *, engine: str | None = None, model: str | None = None,
             options: dict[str, Any] | None = None) -> CallRecord | None:
        t = self.table
        query = sa.select(t).where(t.c.prompt_hash == prompt_hash, t.c.parsed.is_not(None)).order_by(t.c.id.desc())
        if engine is not None:
            query = query.where(t.c.engine == engine)
        if model is not None:
            query = query.where(t.c.model == model)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                record = self._record(row)
                if record.parsed is None or record.validation_errors:
                    continue
                if options is not None and not _same_options(record.options, options):
                    continue
                return record
        return None

    def calls(self, *, batch_id: str | None = None, limit: int | None = None) -> list[CallRecord]:
        t = self.table
        query = sa.select(t).order_by(t.c.id)
        if batch_id is not None:
            query = query.where(t.c.batch_id == batch_id)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._record(row) for row in conn.execute(query).mappings()]


def default_call_log() -> DatabaseCallLog:
    """The user's call log for work outside a project: ``$LEADS_HOME/logs.db``
    (default ``~/.local/share/leads/logs.db``), created with the project schema on first use."""
    from leads.project._project import _make_engine, migrate

    home = Path(os.environ.get("LEADS_HOME") or Path.home() / ".local" / "share" / "leads")
    home.mkdir(parents=True, exist_ok=True)
    engine = _make_engine(f"sqlite:///{home / 'logs.db'}")
    migrate(engine)
    return DatabaseCallLog(engine)
