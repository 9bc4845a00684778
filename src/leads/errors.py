"""The exception tree of leads.

Every error leads raises on purpose is a :class:`LeadsError`, so callers (the CLI, the web app,
scripts) can catch one class and show ``str(error)``, which always says what went wrong and where.

::

    LeadsError
    ├── SourceError         an input cannot be read at all (missing file, unreadable bytes, network)
    │   └── FormatError     an input was read but is malformed: names the file, record and field
    ├── ProjectError        a review project cannot be opened, migrated or changed as asked
    │   └── NotFoundError   a record, group, search or user named by the caller does not exist
    ├── EngineError         a model engine failed (missing dependency, server error, invalid output)
    │   └── RetryableEngineError   a transient failure (rate limit, 5xx, timeout): retry later
    └── QueryError          a search query is malformed (carries the position)
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "FormatError",
    "LeadsError",
    "NotFoundError",
    "ProjectError",
    "QueryError",
    "RetryableEngineError",
    "SourceError",
]


class LeadsError(Exception):
    """Base class of every error leads raises deliberately."""


class SourceError(LeadsError):
    """An input (file, URL, stream) could not be read."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class FormatError(SourceError):
    """An input is malformed.

    ``source`` is the file name, ``record`` the 1-based record number (or ``None`` when the problem
    is with the file as a whole), ``line`` the 1-based line where known and ``field`` the field
    at fault where known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        record: int | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.record = record
        self.line = line
        self.field = field
        where = []
        if record is not None:
            where.append(f"record {record}")
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        super().__init__(text, source=source)


class ProjectError(LeadsError):
    """A review project cannot be opened, migrated or changed as asked."""


class NotFoundError(ProjectError):
    """Something the caller named (record, duplicate group, user, ...) does not exist."""


class EngineError(LeadsError):
    """A model engine failed; ``attempts`` holds every attempt made when it gave up."""

    def __init__(self, message: str, *, attempts: list[object] | None = None) -> None:
        self.attempts = list(attempts or [])
        super().__init__(message)


class RetryableEngineError(EngineError):
    """A transient engine failure; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class QueryError(LeadsError):
    """A search query is malformed; ``position`` is the 0-based character offset of the fault."""

    def __init__(self, message: str, *, query: str | None = None, position: int | None = None) -> None:
        self.query = query
        self.position = position
        if query is not None and position is not None:
            pointer = " " * position + "^"
            message = f"{message} at position {position}\n  {query}\n  {pointer}"
        super().__init__(message)
