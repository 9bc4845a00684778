"""The batch runner with the fake model on a real project database: concurrency, rate limit,
retries, per-item failures, resume (also after SIGKILL) and concurrent SQLite writes."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leads.engines import DatabaseCallLog, Engine, FakeBackend, LLMEngine, MemoryCallLog, TaskResult
from leads.engines.batch import (
    BatchReport,
    RateLimiter,
    batch_results,
    finished_items,
    run_batch,
)
from leads.errors import EngineError, RetryableEngineError
from leads.project import Project
from leads.tasks import TASKS, QueryOutput

TASK = TASKS["search_query"]
POPULATION = re.compile(r"Population: (item-\d+)")


def items(n: int, start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(f"item-{i:03d}", {"population": f"item-{i:03d}"}) for i in range(start, start + n)]


def expected_query(key: str) -> str:
    return f'"{key}"[tiab] AND women[tiab]'


def key_of(messages: list[dict[str, Any]]) -> str:
    found = POPULATION.search(messages[0]["content"])
    assert found, "the prompt names the population"
    return found.group(1)


def answer(messages: list[dict[str, Any]], _schema: dict[str, Any] | None = None) -> str:
    """A valid answer that depends on the item, so that results can be checked per item."""
    return json.dumps({"query": expected_query(key_of(messages))})


def slow_answer(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
    time.sleep(0.02)
    return answer(messages, schema)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.init(tmp_path / "p") as opened:
        yield opened


def rows_per_item(project: Project, batch_id: str) -> Counter[str]:
    return Counter(c.item_key for c in DatabaseCallLog(project.engine).calls(batch_id=batch_id))


def test_runs_every_item_and_results_are_read_back_from_the_log(project: Project) -> None:
    log = DatabaseCallLog(project.engine)
    engine = LLMEngine(FakeBackend([answer] * 20), log=log)
    seen: list[tuple[str, TaskResult[Any], str]] = []
    report = run_batch(
        engine,
        TASK,
        items(20),
        batch_id="b1",
        concurrency=4,
        progress=False,
        on_result=lambda key, result: seen.append((key, result, threading.current_thread().name)),
    )
    assert report.ok and report.done == 20 and report.skipped == 0 and report.model_calls == 20
    assert report.total == 20 and report.calls_per_s > 0 and "20 done" in report.summary()
    results = batch_results(log, "b1")
    assert results == {key: {"query": expected_query(key)} for key, _ in items(20)}
    assert batch_results(log, "b1", task="eligibility") == {}
    # on_result runs in the caller's thread, once per item, with the validated output
    assert sorted(k for k, _, _ in seen) == [k for k, _ in items(20)]
    assert {name for _, _, name in seen} == {threading.current_thread().name}
    assert all(
        isinstance(r.output, QueryOutput) and r.output.query == expected_query(k)
        for k, r, _ in seen
    )


def test_concurrency_bound_is_respected() -> None:
    lock = threading.Lock()
    active = 0
    peak = 0

    def tracked(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.03)
        with lock:
            active -= 1
        return answer(messages, schema)

    engine = LLMEngine(FakeBackend([tracked] * 24))
    report = run_batch(engine, TASK, items(24), batch_id="conc", concurrency=3, progress=False)
    assert report.done == 24
    assert peak == 3  # never more than 3, and the 3 workers did run at the same time


def test_rate_limit_is_respected() -> None:
    starts: list[float] = []

    def stamped(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        starts.append(time.monotonic())
        return answer(messages, schema)

    engine = LLMEngine(FakeBackend([stamped] * 11))
    began = time.monotonic()
    report = run_batch(
        engine, TASK, items(11), batch_id="rate", concurrency=4, rate_limit=20, progress=False
    )
    assert report.done == 11
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045  # 20 requests/s with 4 workers: one request every 50 ms
    assert starts[-1] - began >= 0.49


def test_rate_limit_counts_model_requests_not_cache_hits() -> None:
    engine = LLMEngine(FakeBackend([answer]))
    same = [(f"k{i}", {"population": "item-001"}) for i in range(5)]
    began = time.monotonic()
    report = run_batch(
        engine, TASK, same, batch_id="cached", concurrency=1, rate_limit=2, progress=False
    )
    # one token for the one model call; gating the four cache hits too would take >= 2 s
    assert time.monotonic() - began < 1.5
    assert report.done == 5 and report.cached == 4 and report.model_calls == 1


def test_rate_limiter_pause_holds_every_acquirer() -> None:
    gate = RateLimiter(None)
    gate.pause(0.2)
    began = time.monotonic()
    assert gate.acquire()
    assert time.monotonic() - began >= 0.19
    stop = threading.Event()
    gate.pause(5)
    threading.Timer(0.05, stop.set).start()
    assert gate.acquire(stop) is False  # interrupted, not granted
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_retryable_error_is_retried_after_retry_after() -> None:
    stamps: list[float] = []

    def failing(_m: Any, _s: Any) -> str:
        stamps.append(time.monotonic())
        raise RetryableEngineError("429 Too Many Requests", retry_after=0.3)

    def ok(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        stamps.append(time.monotonic())
        return answer(messages, schema)

    engine = LLMEngine(FakeBackend([failing, ok]))
    report = run_batch(engine, TASK, items(1), batch_id="retry", backoff=0.01, progress=False)
    assert report.ok and report.done == 1 and report.retries == 1
    assert stamps[1] - stamps[0] >= 0.3  # at least Retry-After, although the backoff is 10 ms


def test_retry_after_pauses_the_other_workers_too() -> None:
    stamps: dict[str, float] = {}
    failed_once = threading.Event()

    def responder(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        key = key_of(messages)
        if key == "item-000" and not failed_once.is_set():
            stamps["429"] = time.monotonic()
            failed_once.set()
            raise RetryableEngineError("429 Too Many Requests", retry_after=0.3)
        stamps.setdefault(key, time.monotonic())
        if key == "item-001":
            time.sleep(0.05)
        return answer(messages, schema)

    engine = LLMEngine(FakeBackend([responder] * 4))
    report = run_batch(
        engine, TASK, items(3), batch_id="pause", concurrency=2, backoff=0.001, progress=False
    )
    assert report.done == 3
    # item-002 was free to start at ~50 ms (a worker was idle) but the server asked for a pause
    assert stamps["item-002"] - stamps["429"] >= 0.29


def test_backoff_is_exponential_and_capped() -> None:
    stamps: list[float] = []

    def failing(_m: Any, _s: Any) -> str:
        stamps.append(time.monotonic())
        raise RetryableEngineError("503 Service Unavailable")

    engine = LLMEngine(FakeBackend([failing] * 4 + [answer]))
    report = run_batch(engine, TASK, items(1), batch_id="backoff", backoff=0.08, progress=False)
    assert report.done == 1 and report.retries == 4
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # jitter takes between half and all of 0.08, 0.16, 0.32
    for gap, full in zip(gaps, [0.08, 0.16, 0.32], strict=False):
        assert full / 2 - 0.005 <= gap <= full + 0.25
    capped = LLMEngine(FakeBackend([failing] * 3 + [answer]))
    stamps.clear()
    run_batch(
        capped, TASK, items(1), batch_id="capped", backoff=10, max_backoff=0.05, progress=False
    )
    assert max(b - a for a, b in itertools.pairwise(stamps)) < 0.5


def test_transient_errors_beyond_max_retries_fail_the_item_only(project: Project) -> None:
    def flaky(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        if key_of(messages) == "item-002":
            raise RetryableEngineError("502 Bad Gateway")
        return answer(messages, schema)

    log = DatabaseCallLog(project.engine)
    engine = LLMEngine(FakeBackend([flaky] * 7), log=log)
    report = run_batch(
        engine, TASK, items(4), batch_id="flaky", max_retries=3, backoff=0.001, progress=False
    )
    assert report.done == 3
    [failure] = report.failed
    assert failure.item_key == "item-002" and failure.tries == 4 and failure.transient
    assert "502" in failure.error and "item-002" in report.summary()
    # calling again retries only the failed item
    again = run_batch(
        LLMEngine(FakeBackend([answer]), log=log), TASK, items(4), batch_id="flaky", progress=False
    )
    assert again.ok and again.skipped == 3 and again.done == 1
    assert len(batch_results(log, "flaky")) == 4


def test_per_item_failures_are_reported_and_the_batch_goes_on(project: Project) -> None:
    def mixed(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        key = key_of(messages)
        if key == "item-001":
            return '{"query": "(unbalanced AND"}'  # never valid: EngineError after the attempts
        if key == "item-002":
            raise RuntimeError("backend blew up")
        return answer(messages, schema)

    log = DatabaseCallLog(project.engine)
    work = [*items(5), ("bad-input", {"population": ""})]  # fails input validation
    engine = LLMEngine(FakeBackend([mixed] * 20), log=log, max_attempts=2)
    report = run_batch(engine, TASK, work, batch_id="mixed", concurrency=3, progress=False)
    assert report.done == 3
    failures = {f.item_key: f for f in report.failed}
    assert set(failures) == {"item-001", "item-002", "bad-input"}
    assert (
        failures["item-001"].error_type == "EngineError"
        and "after 2 attempts" in failures["item-001"].error
    )
    assert failures["item-002"].error_type == "RuntimeError" and failures["item-002"].tries == 1
    assert failures["bad-input"].error_type == "ValidationError"
    assert not any(f.transient for f in report.failed)
    assert report.model_calls == 3 + 2  # the invalid item was asked twice; the crash left no row
    assert set(batch_results(log, "mixed")) == {"item-000", "item-003", "item-004"}


def test_running_a_batch_again_skips_finished_items(project: Project) -> None:
    log = DatabaseCallLog(project.engine)
    run_batch(
        LLMEngine(FakeBackend([answer] * 10), log=log),
        TASK,
        items(10),
        batch_id="again",
        progress=False,
    )
    empty = FakeBackend([])  # any model call would fail the item ("no reply left")
    report = run_batch(LLMEngine(empty, log=log), TASK, items(10), batch_id="again", progress=False)
    assert report.ok and report.skipped == 10 and report.done == 0 and report.model_calls == 0
    assert empty.requests == []
    # new items in the same batch run; finished ones do not
    more = FakeBackend([answer] * 5)
    report = run_batch(LLMEngine(more, log=log), TASK, items(15), batch_id="again", progress=False)
    assert report.skipped == 10 and report.done == 5 and len(more.requests) == 5
    assert rows_per_item(project, "again") == Counter({key: 1 for key, _ in items(15)})
    # another batch id is another batch (its calls are answered from the cache, but logged)
    other = run_batch(
        LLMEngine(FakeBackend([]), log=log), TASK, items(3), batch_id="other", progress=False
    )
    assert other.done == 3 and other.cached == 3 and other.model_calls == 0


def test_generator_input_and_progress_callback() -> None:
    reports: list[tuple[int, int, int]] = []

    def progress(report: BatchReport) -> None:
        reports.append((report.done, report.skipped, len(report.failed)))

    log = MemoryCallLog()
    run_batch(
        LLMEngine(FakeBackend([answer] * 3), log=log),
        TASK,
        items(3),
        batch_id="gen",
        progress=False,
    )
    engine = LLMEngine(FakeBackend([answer] * 4), log=log)
    report = run_batch(
        engine, TASK, (pair for pair in items(7)), batch_id="gen", concurrency=2, progress=progress
    )
    assert report.done == 4 and report.skipped == 3
    assert reports[-1] == (4, 3, 0) and len(reports) == 7
    assert finished_items(log, "gen") == {key for key, _ in items(7)}


def test_rich_progress_bar_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    run_batch(LLMEngine(FakeBackend([answer] * 3)), TASK, items(3), batch_id="bar", progress=True)
    err = capsys.readouterr().err
    assert "search_query [bar]" in err and "3/3" in err and "items/s" in err


def test_invalid_arguments_are_refused() -> None:
    engine = LLMEngine(FakeBackend([answer] * 2))
    with pytest.raises(ValueError, match="appears twice"):
        run_batch(engine, TASK, [*items(1), *items(1)], batch_id="dup", progress=False)
    with pytest.raises(ValueError, match="engine writes to"):
        run_batch(engine, TASK, items(1), batch_id="x", log=MemoryCallLog(), progress=False)
    with pytest.raises(ValueError, match="batch_id"):
        run_batch(engine, TASK, items(1), batch_id="x" * 65, progress=False)
    with pytest.raises(ValueError, match="item key"):
        run_batch(engine, TASK, [("k" * 256, {"population": "x"})], batch_id="x", progress=False)


class FlakyEngine(Engine):
    """A non-LLM engine (rate-limited per item) that fails transiently once per item."""

    name = "flaky"

    def __init__(self, log: MemoryCallLog) -> None:
        super().__init__(log=log)
        self.calls: Counter[str] = Counter()
        self.starts: list[float] = []
        self.inner = LLMEngine(FakeBackend([answer] * 100), log=log)

    def run(
        self, task: Any, inp: Any, *, batch_id: str | None = None, item_key: str | None = None
    ) -> TaskResult[Any]:
        self.starts.append(time.monotonic())
        assert item_key is not None
        self.calls[item_key] += 1
        if self.calls[item_key] == 1:
            raise RetryableEngineError("timeout")
        return self.inner.run(task, inp, batch_id=batch_id, item_key=item_key)


def test_engines_without_a_chat_backend_are_limited_per_item() -> None:
    engine = FlakyEngine(MemoryCallLog())
    report = run_batch(
        engine,
        TASK,
        items(3),
        batch_id="flaky-engine",
        concurrency=3,
        rate_limit=25,
        backoff=0.001,
        progress=False,
    )
    assert report.done == 3 and report.retries == 3
    starts = sorted(engine.starts)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.035


def test_concurrent_writers_on_one_sqlite_database(project: Project) -> None:
    """Two batches of 16 threads each write to the same SQLite file at once: no lost or
    duplicated rows, no 'database is locked'."""
    log = DatabaseCallLog(project.engine)
    reports: dict[str, BatchReport] = {}

    def batch(name: str, start: int) -> None:
        engine = LLMEngine(FakeBackend([answer] * 150), log=log, cache=False)
        reports[name] = run_batch(
            engine, TASK, items(150, start), batch_id=name, concurrency=16, progress=False
        )

    threads = [
        threading.Thread(target=batch, args=(name, start))
        for name, start in (("w1", 0), ("w2", 500))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok and r.done == 150 and r.model_calls == 150 for r in reports.values())
    for name, start in (("w1", 0), ("w2", 500)):
        assert rows_per_item(project, name) == Counter({key: 1 for key, _ in items(150, start)})
        assert batch_results(log, name) == {
            key: {"query": expected_query(key)} for key, _ in items(150, start)
        }
    ids = [c.id for c in log.calls()]
    assert len(ids) == len(set(ids))
    with sqlite3.connect(project.url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_batch import TASK, items, slow_answer
from leads.engines import DatabaseCallLog, FakeBackend, LLMEngine
from leads.engines.batch import run_batch
from leads.project import Project

project = Project.open(sys.argv[1])
engine = LLMEngine(FakeBackend([slow_answer] * 200), log=DatabaseCallLog(project.engine))
run_batch(engine, TASK, items(200), batch_id="killed", concurrency=2, progress=False)
print("finished")
"""


@pytest.mark.slow
def test_resume_after_sigkill_repeats_no_finished_call(project: Project, tmp_path: Path) -> None:
    script = tmp_path / "run_batch.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)), encoding="utf-8")
    log = DatabaseCallLog(project.engine)
    child = subprocess.Popen(
        [sys.executable, str(script), str(project.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while len(log.calls(batch_id="killed")) < 40:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL and b"finished" not in out, err.decode()

    before = rows_per_item(project, "killed")
    finished_before = finished_items(log, "killed")
    assert 40 <= len(finished_before) < 200  # killed mid-run
    assert all(n == 1 for n in before.values())

    remaining = 200 - len(finished_before)
    backend = FakeBackend([answer] * remaining)  # exactly enough replies for the unfinished items
    report = run_batch(
        LLMEngine(backend, log=log),
        TASK,
        items(200),
        batch_id="killed",
        concurrency=4,
        progress=False,
    )
    assert report.ok, report.summary()
    assert report.skipped == len(finished_before) and report.done == remaining
    assert len(backend.requests) == remaining and report.model_calls == remaining
    assert {key_of(r["messages"]) for r in backend.requests}.isdisjoint(finished_before)
    # every item finished exactly once: one call per item over both runs, each with its own answer
    assert rows_per_item(project, "killed") == Counter({key: 1 for key, _ in items(200)})
    assert batch_results(log, "killed") == {
        key: {"query": expected_query(key)} for key, _ in items(200)
    }


def test_engine_error_details_are_kept_in_the_log(project: Project) -> None:
    log = DatabaseCallLog(project.engine)
    engine = LLMEngine(FakeBackend(["nope", "nope"]), log=log, max_attempts=2)
    report = run_batch(engine, TASK, items(1), batch_id="err", progress=False)
    assert report.failed[0].error_type == EngineError.__name__
    calls = log.calls(batch_id="err")
    assert [c.attempt for c in calls] == [1, 2] and all(c.validation_errors for c in calls)
    assert finished_items(log, "err") == set()


def test_prefetched_answers_are_validated_reasked_and_logged_like_the_engines_own(project: Project) -> None:
    from leads.engines import Completion
    from leads.engines.ray_batch import PrefetchedEngine

    log = DatabaseCallLog(project.engine)
    backend = FakeBackend([answer] * 2)  # only the re-ask and the item without an answer reach it
    engine = LLMEngine(backend, log=log, engine_name="openai")
    messages = {key: TASK.messages(TASK.validate_input(inp)) for key, inp in items(4)}
    answers = {
        "item-000": (Completion(text=answer(messages["item-000"]), model="served", prompt_tokens=9), 12.5),
        "item-001": (Completion(text='{"query": "(broken"}', model="served"), None),  # invalid: re-asked
        "item-002": (Completion(text=answer(messages["item-002"]), model="served"), 3.0),
    }
    report = run_batch(PrefetchedEngine(engine, answers), TASK, items(4), batch_id="pre", concurrency=2,
                       progress=False)
    assert report.ok and report.done == 4 and report.model_calls == 5 and answers == {}
    assert batch_results(log, "pre") == {key: {"query": expected_query(key)} for key, _ in items(4)}
    assert sorted(key_of(r["messages"]) for r in backend.requests) == ["item-001", "item-003"]
    calls = {(c.item_key, c.attempt): c for c in log.calls(batch_id="pre")}
    first = calls[("item-000", 1)]
    assert first.engine == "openai" and first.duration_ms == 12.5 and first.resolved_model == "served"
    assert first.prompt_tokens == 9 and first.options == engine.options()
    assert calls[("item-001", 1)].duration_ms is None and calls[("item-001", 1)].validation_errors
    assert calls[("item-001", 2)].ok and "not valid" in calls[("item-001", 2)].messages[-1]["content"]
    assert calls[("item-003", 1)].resolved_model == "fake-model"  # no answer: the engine asked itself
