"""The batch runner: one task over many items, concurrently, rate-limited, retried and resumable.

::

    from leads.engines.batch import run_batch, batch_results

    report = run_batch(engine, TASKS["eligibility"], items, batch_id="ta-screen-1", concurrency=8,
                       rate_limit=5)          # at most 5 model requests per second
    print(report.summary())                   # done, cached, skipped, failed (with reasons), calls/s
    outputs = batch_results(engine.log, "ta-screen-1")   # {item_key: output dict}

Durability and resume. The call log is the only store: an item is finished when the call log holds
a row with its ``(batch_id, item_key)`` and a valid parsed output, and the engine writes that row
(in its own committed transaction) as soon as the item's answer is validated. Nothing else is kept,
so there is nothing to get out of step with the log. Running the same batch again (after an error,
Ctrl-C or SIGKILL) skips the finished items without calling the model, and retries the failed ones.
A call in flight when the process dies is lost and made again; a finished one never is.

Failures. :class:`~leads.errors.RetryableEngineError` (rate limit, 5xx, timeout) is retried with
capped exponential backoff with jitter, waiting at least the server's ``retry_after``; a
``retry_after`` also pauses the other workers, since a rate limit applies to the whole server. Any
other exception (e.g. an :class:`~leads.errors.EngineError` after the model never gave a valid
answer) marks the item as failed in the report, and the batch goes on.

SQLite. Each worker thread writes its rows through its own pooled connection; each row is one short
write transaction that starts with the INSERT, so with WAL and the project's 30 s busy timeout
writers queue on the write lock instead of failing.
"""

from __future__ import annotations

import copy
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from leads.engines._base import ChatBackend, Completion, Engine, LLMEngine, TaskResult
from leads.engines.calllog import CallLog, CallRecord, DatabaseCallLog, MemoryCallLog
from leads.errors import RetryableEngineError
from leads.tasks import Message, Task, TaskInput

__all__ = [
    "BatchReport",
    "ItemFailure",
    "RateLimiter",
    "batch_results",
    "finished_items",
    "run_batch",
]

MAX_BATCH_ID = 64  # model_calls.batch_id is VARCHAR(64)
MAX_ITEM_KEY = 255  # model_calls.item_key is VARCHAR(255)

Item = tuple[str, TaskInput | dict[str, Any]]
ResultCallback = Callable[[str, TaskResult[Any]], None]
ProgressCallback = Callable[["BatchReport"], None]


@dataclass
class ItemFailure:
    """An item that did not finish: why, and how many times it was tried."""

    item_key: str
    error: str
    error_type: str
    tries: int
    transient: bool = False  # it ran out of retries on transient errors: running again may succeed


@dataclass
class BatchReport:
    """What one :func:`run_batch` call did.

    ``done`` counts items finished by this run (``cached`` of them answered from the call-log
    cache without a model call), ``skipped`` items finished by an earlier run, ``failed`` the items
    that did not finish. ``model_calls`` counts the model calls made (re-asks included, cache
    hits excluded), read back from the call log.
    """

    batch_id: str
    task: str
    done: int = 0
    cached: int = 0
    skipped: int = 0
    failed: list[ItemFailure] = field(default_factory=list)
    retries: int = 0
    model_calls: int = 0
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.skipped + len(self.failed)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def items_per_s(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def calls_per_s(self) -> float:
        return self.model_calls / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"batch {self.batch_id} ({self.task}): {self.done} done ({self.cached} from cache), "
            f"{self.skipped} already done, {len(self.failed)} failed; {self.model_calls} model calls "
            f"in {self.elapsed:.1f} s ({self.calls_per_s:.2f} calls/s, {self.items_per_s:.2f} items/s)"
        ]
        if self.retries:
            lines[0] += f"; {self.retries} transient errors retried"
        lines.extend(f"  failed {f.item_key} after {f.tries} tries: {f.error_type}: {f.error}" for f in self.failed)
        return "\n".join(lines)


class RateLimiter:
    """A token bucket shared by the workers of a batch (pass one instance to several
    :func:`run_batch` calls to share a server's budget between them).

    ``rate`` is in requests per second (``None``: unlimited); ``burst`` is the bucket size.
    :meth:`pause` stops every acquirer until the given time has passed (a server's Retry-After).
    """

    def __init__(self, rate: float | None, *, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate_limit must be positive (requests per second) or None")
        self.rate = rate
        self.capacity = max(1.0, burst)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token; returns False (without a token) when ``stop`` is set meanwhile."""
        stop = stop or threading.Event()
        while True:
            with self._lock:
                now = self._clock()
                wait_for = self._paused_until - now
                if wait_for <= 0:
                    if self.rate is None:
                        return True
                    if now > self._updated:
                        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                        self._updated = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return True
                    wait_for = (1 - self._tokens) / self.rate
            if stop.wait(wait_for):
                return False

    def pause(self, seconds: float) -> None:
        """Hold every acquirer for ``seconds`` from now; the bucket does not refill meanwhile."""
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                self._tokens = min(self._tokens, 0.0)
                self._updated = max(self._updated, until)


class _GatedBackend:
    """A chat backend whose every request first takes a token from the batch's rate limiter."""

    def __init__(self, backend: ChatBackend, gate: RateLimiter, stop: threading.Event) -> None:
        self._backend = backend
        self._gate = gate
        self._stop = stop
        self.model = backend.model

    def complete(self, messages: list[Message], *, schema: dict[str, Any], schema_name: str,
                 options: dict[str, Any]) -> Completion:
        if not self._gate.acquire(self._stop):
            raise _Stopped()
        return self._backend.complete(messages, schema=schema, schema_name=schema_name, options=options)

    def close(self) -> None:
        self._backend.close()


class _Stopped(Exception):
    """The batch was interrupted before this item's call started."""


def _gated(engine: Engine, gate: RateLimiter, stop: threading.Event) -> tuple[Engine, bool]:
    """The engine to run items with, and whether the gate sits in front of each model request.

    For an :class:`LLMEngine` the limiter wraps the backend (a shallow copy of the engine, so the
    caller's engine is not changed): cache hits cost no token and every re-ask takes one. Other
    engines are gated per item.
    """
    if isinstance(engine, LLMEngine):
        gated = copy.copy(engine)
        gated.backend = _GatedBackend(engine.backend, gate, stop)
        return gated, True
    return engine, False


# -- reading the call log -----------------------------------------------------------------


def _valid(parsed: Any, validation_errors: Any) -> bool:
    return parsed is not None and not validation_errors


def _task_name(task: Task | str | None) -> str | None:
    return task if task is None or isinstance(task, str) else task.name


def batch_results(log: CallLog, batch_id: str, *,
                  task: Task | str | None = None) -> dict[str, dict[str, Any]]:
    """The output (as a JSON-able dict) of every finished item of a batch, by item key.

    Read from the call log: for each item the newest call with a valid parsed output (of ``task``,
    when given). Items that have not finished are absent.
    """
    name = _task_name(task)
    results: dict[str, dict[str, Any]] = {}
    if isinstance(log, DatabaseCallLog):
        t = log.table
        query = (sa.select(t.c.item_key, t.c.task, t.c.parsed, t.c.validation_errors)
                 .where(t.c.batch_id == batch_id, t.c.item_key.is_not(None)).order_by(t.c.id))
        if name is not None:
            query = query.where(t.c.task == name)
        with log.engine.connect() as conn:
            for key, _task, parsed, errors in conn.execute(query):
                if _valid(parsed, errors):
                    results[key] = parsed
        return results
    for call in sorted(log.calls(batch_id=batch_id), key=lambda c: c.id or 0):
        if call.item_key is not None and (name is None or call.task == name) and call.ok:
            results[call.item_key] = call.parsed
    return results


def finished_items(log: CallLog, batch_id: str, *, task: Task | str | None = None) -> set[str]:
    """Keys of the items of a batch that have a valid output in the call log."""
    return set(batch_results(log, batch_id, task=task))


def _batch_calls(log: CallLog, batch_id: str, after_id: int = 0) -> tuple[int, int]:
    """(highest call id, number of model calls, i.e. not cache hits, after ``after_id``) of a batch."""
    if isinstance(log, DatabaseCallLog):
        t = log.table
        with log.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(t.c.id)).where(t.c.batch_id == batch_id)).scalar()
            made = conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.batch_id == batch_id, t.c.id > after_id, t.c.cached_from.is_(None))).scalar()
        return int(top or 0), int(made or 0)
    calls: list[CallRecord] = (
        [c for c in log.records if c.batch_id == batch_id] if isinstance(log, MemoryCallLog)
        else log.calls(batch_id=batch_id))
    top = max((c.id or 0 for c in calls), default=0)
    return top, sum(1 for c in calls if (c.id or 0) > after_id and c.cached_from is None)


# -- progress -------------------------------------------------------------------------------


class _Bar:
    """A rich progress bar on stderr (items/s and ETA), or nothing."""

    def __init__(self, show: bool, total: int | None, label: str) -> None:
        self._progress: Any = None
        self._task: Any = None
        if not show:
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:.2f} items/s" if speed else "- items/s", style="progress.data.speed")

        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=Console(stderr=True), transient=False,
        )
        self._task = self._progress.add_task(escape(label), total=total, status="")

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, report: BatchReport, *, advance: int) -> None:
        if self._progress is None:
            return
        status = f"{report.cached} cached, {len(report.failed)} failed"
        self._progress.update(self._task, advance=advance, status=status)


# -- the runner -----------------------------------------------------------------------------


@dataclass
class _Outcome:
    key: str
    result: TaskResult[Any] | None = None
    failure: ItemFailure | None = None
    retries: int = 0


_jitter = random.Random()


def _backoff_delay(retry: int, backoff: float, max_backoff: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter (between half and all of it), capped, but never shorter than
    the server's ``retry_after``."""
    delay = min(max_backoff, backoff * 2 ** (retry - 1)) * _jitter.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


def _run_item(engine: Engine, gated_requests: bool, gate: RateLimiter, stop: threading.Event,
              task: Task, key: str, inp: TaskInput | dict[str, Any], batch_id: str,
              max_retries: int, backoff: float, max_backoff: float) -> _Outcome:
    tries = 0
    while True:
        if stop.is_set() or (not gated_requests and not gate.acquire(stop)):
            return _Outcome(key, failure=ItemFailure(key, "the batch was interrupted", "Interrupted", tries))
        tries += 1
        try:
            return _Outcome(key, result=engine.run(task, inp, batch_id=batch_id, item_key=key), retries=tries - 1)
        except _Stopped:
            return _Outcome(key, failure=ItemFailure(key, "the batch was interrupted", "Interrupted", tries - 1))
        except RetryableEngineError as exc:
            if tries > max_retries:
                return _Outcome(key, failure=ItemFailure(key, str(exc), type(exc).__name__, tries, transient=True),
                                retries=tries - 1)
            if exc.retry_after:
                gate.pause(exc.retry_after)
            if stop.wait(_backoff_delay(tries, backoff, max_backoff, exc.retry_after)):
                return _Outcome(key, failure=ItemFailure(key, f"interrupted while retrying: {exc}",
                                                         type(exc).__name__, tries, transient=True),
                                retries=tries - 1)
        except Exception as exc:
            return _Outcome(key, failure=ItemFailure(key, str(exc) or repr(exc), type(exc).__name__, tries),
                            retries=tries - 1)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"item keys must be non-empty strings, got {key!r}")
    if len(key) > MAX_ITEM_KEY:
        raise ValueError(f"item key longer than {MAX_ITEM_KEY} characters: {key[:40]!r}...")
    return key


def run_batch(
    engine: Engine,
    task: Task,
    items: Iterable[Item],
    *,
    batch_id: str,
    log: CallLog | None = None,
    concurrency: int = 4,
    rate_limit: float | RateLimiter | None = None,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    on_result: ResultCallback | None = None,
    progress: bool | ProgressCallback | None = None,
    total: int | None = None,
) -> BatchReport:
    """Run ``task`` on every ``(item_key, input)`` of ``items``; returns a :class:`BatchReport`.

    ``batch_id`` names the batch in the call log; running the same batch again skips the items that
    finished (see the module docstring). ``log`` must be the engine's call log (the default).
    At most ``concurrency`` items run at once, in threads; ``rate_limit`` caps model requests per
    second (re-asks included, cache hits free); a :class:`RateLimiter` can be shared between
    batches. Transient errors are retried up to ``max_retries`` times after
    ``backoff * 2**(n-1)`` seconds (jittered, at most ``max_backoff``, at least the server's
    Retry-After). ``items`` is consumed lazily (a generator works; ``total`` sizes the progress bar).

    ``on_result(item_key, TaskResult)`` is called in the calling thread as each item finishes.
    ``progress``: ``None`` shows a rich bar on stderr when it is a terminal, ``True`` always,
    ``False`` never; a callable instead gets the running :class:`BatchReport` after each item.
    """
    if not batch_id or len(batch_id) > MAX_BATCH_ID:
        raise ValueError(f"batch_id must be 1 to {MAX_BATCH_ID} characters")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if max_retries < 0 or backoff < 0:
        raise ValueError("max_retries and backoff must not be negative")
    if log is not None and log is not engine.log:
        raise ValueError("run_batch reads the call log the engine writes to: create the engine with "
                         "log=... instead of passing another log")
    log = engine.log
    started = time.perf_counter()
    report = BatchReport(batch_id=batch_id, task=task.name)
    finished = finished_items(log, batch_id, task=task)
    first_id, _ = _batch_calls(log, batch_id)

    if isinstance(items, Sequence):
        total = sum(1 for key, _ in items if key not in finished)
    callback = progress if callable(progress) else None
    show = progress if isinstance(progress, bool) else (progress is None and sys.stderr.isatty())
    already = f" ({len(finished)} already done)" if finished else ""
    bar = _Bar(show, total, f"{task.name} [{batch_id}]{already}")

    gate = rate_limit if isinstance(rate_limit, RateLimiter) else RateLimiter(rate_limit)
    stop = threading.Event()
    runner, gated_requests = _gated(engine, gate, stop)
    seen: set[str] = set()
    inflight: dict[Future[_Outcome], str] = {}

    def collect(done: Iterable[Future[_Outcome]]) -> None:
        for future in done:
            inflight.pop(future)
            outcome = future.result()
            report.retries += outcome.retries
            if outcome.result is not None:
                report.done += 1
                report.cached += outcome.result.cached
            elif outcome.failure is not None:
                report.failed.append(outcome.failure)
            bar.update(report, advance=1)
            if callback is not None:
                callback(report)
            if on_result is not None and outcome.result is not None:
                on_result(outcome.key, outcome.result)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"leads-batch-{batch_id}")
    context: AbstractContextManager[Any] = bar if show else nullcontext()
    try:
        with context:
            for key, inp in items:
                _check_key(key)
                if key in seen:
                    raise ValueError(f"item key {key!r} appears twice in batch {batch_id!r}")
                seen.add(key)
                if key in finished:
                    report.skipped += 1
                    if callback is not None:
                        callback(report)
                    continue
                # Feed the pool lazily: at most two items waiting per worker.
                collect([f for f in inflight if f.done()])
                while len(inflight) >= 2 * concurrency:
                    collect(wait(inflight, return_when=FIRST_COMPLETED).done)
                inflight[pool.submit(_run_item, runner, gated_requests, gate, stop, task, key, inp,
                                     batch_id, max_retries, backoff, max_backoff)] = key
            while inflight:
                collect(wait(inflight, return_when=FIRST_COMPLETED).done)
    except BaseException:
        # Calls already running finish and are logged (nothing is lost); queued ones are dropped.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    report.elapsed = time.perf_counter() - started
    _, report.model_calls = _batch_calls(log, batch_id, first_id)
    return report
