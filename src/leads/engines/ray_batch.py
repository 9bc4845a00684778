"""Scale-out batches with Ray Data: first answers from a pool of OpenAI-compatible servers through
``ray.data.llm``'s HTTP request processor, validation, grounding and re-asks in the driver.

Optional extra: ``pip install 'ray[data]' aiohttp`` (``ray[llm]`` would also pull vLLM, which
the HTTP path does not need). Tested with Ray 2.60.

How it works::

    items ──► driver: skip finished (call log), answer cache hits, build each request
          ──► Ray Data: one HttpRequestProcessor per server URL (items split evenly), union
          ──► driver, as rows stream back: run_batch with an engine whose first "model call" for
              an item is the answer Ray already fetched; validation, quote grounding, re-asks
              (to the same server, through the normal LLMEngine path), retries and the call log
              are exactly those of :func:`leads.engines.batch.run_batch`

so the call log gets the same :class:`~leads.engines.calllog.CallRecord` rows as an in-process
run with the ``openai`` engine (same engine name, model, options and prompt hash: the cache and
the replay engine treat them alike), the batch resumes the same way, and anything Ray could not
answer (HTTP errors, a failed Ray job) is done through the normal path. The request sent through
Ray is the one :class:`~leads.engines.openai.OpenAIBackend` sends: the task's messages and
``response_format`` with the task's JSON schema.

Commit point: an item is durable when the driver has logged its validated answer. A Ray answer
that reached the server but not the driver's log (the driver was killed) is asked again.

GPU nodes: vLLM inside Ray instead of HTTP servers. On a node with GPUs (``pip install
'ray[llm]'``, which brings vLLM), Ray can run the model itself with
``ray.data.llm.vLLMEngineProcessorConfig``. leads does not wrap it (it cannot be run or tested
without a GPU); the driver side is the same, with :class:`PrefetchedEngine`. A sketch for Ray
2.60 (``sampling_params["structured_outputs"]`` becomes vLLM's ``StructuredOutputsParams``)::

    schema = json.dumps(task.answer_schema(inp))     # strings: Arrow would reshape a dict schema
    config = vLLMEngineProcessorConfig(model_source="/models/leads-7b", concurrency=4, batch_size=64,
                                       engine_kwargs={"max_model_len": 16384})
    processor = build_processor(config,
        preprocess=lambda row: {"item_key": row["item_key"], "messages": json.loads(row["messages"]),
                                "sampling_params": {"temperature": 0, "max_tokens": 1024, "seed": 0,
                                                    "structured_outputs": {"json": schema}}},
        postprocess=lambda row: {"item_key": row["item_key"], "text": row["generated_text"]})
    answers = {r["item_key"]: (Completion(text=r["text"], model="leads-7b"), None)
               for r in processor(ray.data.from_items(rows)).iter_rows()}
    run_batch(PrefetchedEngine(reask_engine, answers), task, items, batch_id=...)

where ``reask_engine`` is an :class:`LLMEngine` (named and configured like the vLLM run) for the
re-asks, e.g. over ``vllm serve``; with ``max_attempts=1`` invalid answers are reported as failed
instead. See ``docs/scale.md``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from leads.engines._base import Completion, Engine, LLMEngine, TaskResult
from leads.engines.batch import (
    BatchReport,
    ProgressCallback,
    ResultCallback,
    _check_key,
    finished_items,
    run_batch,
)
from leads.engines.calllog import CallLog, CallRecord, prompt_hash
from leads.errors import EngineError
from leads.tasks import Message, Task, TaskInput

__all__ = ["JsonBodySession", "PrefetchedEngine", "chat_payload", "ray_available", "run_batch_ray"]

logger = logging.getLogger(__name__)

# Ray Data runs up to this many batches of one block at once in an async UDF actor
# (RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY); the HTTP stage sends a batch's requests
# one after another, so batches of one row and blocks of up to this many rows give this many
# requests in flight per actor.
ASYNC_BATCHES_PER_ACTOR = 4
LATENCY_FIELD = "leads_latency_ms"


def ray_available() -> bool:
    """Whether Ray Data's LLM module (and aiohttp, which its HTTP stage needs) can be imported."""
    try:
        import aiohttp  # noqa: F401
        import ray.data.llm  # noqa: F401
    except ImportError:
        return False
    return True


def chat_payload(engine: LLMEngine, task: Task, messages: list[Message],
                 inp: TaskInput | None = None) -> dict[str, Any]:
    """The chat-completions request :class:`~leads.engines.openai.OpenAIBackend` would send."""
    options = engine.options()
    payload: dict[str, Any] = {
        "model": engine.model,
        "messages": list(messages),
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": task.name, "schema": task.answer_schema(inp), "strict": False}},
    }
    for key in ("temperature", "max_tokens", "seed"):
        if options.get(key) is not None:
            payload[key] = options[key]
    return payload


# -- inside Ray workers -------------------------------------------------------------------------


class _TimedRequest:
    """Awaits a request and adds its latency to the JSON the HTTP stage reads from the response."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def __await__(self) -> Any:
        return self._send().__await__()

    async def _send(self) -> Any:
        started = time.perf_counter()
        response = await self._request
        read_json = response.json

        async def json_with_latency(*args: Any, **kwargs: Any) -> Any:
            data = await read_json(*args, **kwargs)
            if isinstance(data, dict):
                data[LATENCY_FIELD] = (time.perf_counter() - started) * 1000
            return data

        response.json = json_with_latency
        return response


class JsonBodySession:
    """The ``session_factory`` of the HTTP stage: sends each row's request body verbatim.

    Ray Data stores rows in Arrow, which merges the shapes of nested dicts and so would corrupt a
    JSON schema in the payload (``{"type": "null"}`` comes back as ``{"type": "null",
    "maxLength": null}``). Rows therefore carry the request as a JSON string,
    ``payload = {"body": "..."}``, and this session posts that string as the body.
    """

    def __init__(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))

    async def __aenter__(self) -> JsonBodySession:
        await self._session.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.__aexit__(*exc)

    def post(self, url: str, *, data: Any = None, headers: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        body = json.loads(data)["body"]
        return _TimedRequest(self._session.post(url, data=body.encode("utf-8"), headers=headers, **kwargs))


def _response_row(row: dict[str, Any]) -> dict[str, Any]:
    """Postprocess: flatten a chat-completions response (or an error body) to plain columns."""
    response = row.get("http_response") or {}
    out: dict[str, Any] = {"item_key": row["item_key"], "server": row["server"], "text": None, "error": None,
                           "model": None, "finish_reason": None, "prompt_tokens": None,
                           "completion_tokens": None, "latency_ms": None}
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices:
        error = response.get("error") if isinstance(response, dict) else None
        if isinstance(error, dict):
            error = error.get("message")
        out["error"] = str(error or response)[:2000]
        return out
    message = choices[0].get("message") or {}
    usage = response.get("usage") or {}
    out.update(text=message.get("content") or "", model=response.get("model"),
               finish_reason=choices[0].get("finish_reason"), prompt_tokens=usage.get("prompt_tokens"),
               completion_tokens=usage.get("completion_tokens"), latency_ms=response.get(LATENCY_FIELD))
    return out


# -- in the driver ------------------------------------------------------------------------------


class _PrimedBackend:
    """Answers the first request of an item with the completion Ray fetched, then (re-asks) asks
    the real backend."""

    def __init__(self, first: Completion, messages: list[Message], backend: Any) -> None:
        self._first: Completion | None = first
        self._messages = messages
        self._backend = backend
        self.model = backend.model

    def complete(self, messages: list[Message], *, schema: dict[str, Any], schema_name: str,
                 options: dict[str, Any]) -> Completion:
        first, self._first = self._first, None
        if first is not None and list(messages) == self._messages:
            return first
        return self._backend.complete(messages, schema=schema, schema_name=schema_name, options=options)

    def close(self) -> None:
        pass


class _LatencyLog:
    """The engine's call log, recording the latency measured where the first answer was fetched
    (the engine itself only sees the hand-over), or none when it is not known."""

    def __init__(self, log: CallLog, latency_ms: float | None) -> None:
        self._log = log
        self._latency_ms = latency_ms

    def add(self, call: CallRecord) -> int:
        if call.attempt == 1 and call.cached_from is None:
            call.duration_ms = self._latency_ms
        return self._log.add(call)

    def find(self, prompt_hash: str, *, engine: str | None = None, model: str | None = None,
             options: dict[str, Any] | None = None) -> CallRecord | None:
        return self._log.find(prompt_hash, engine=engine, model=model, options=options)

    def calls(self, *, batch_id: str | None = None, limit: int | None = None) -> list[CallRecord]:
        return self._log.calls(batch_id=batch_id, limit=limit)


class PrefetchedEngine(Engine):
    """An engine for :func:`run_batch` whose first model call for an item is an answer fetched
    elsewhere (Ray Data here; a vLLM processor or a provider's batch API alike).

    ``answers[item_key]`` is ``(Completion, latency_ms or None)``; it is taken (popped) when the
    item runs. The answer is then validated, grounded and, when invalid, re-asked through
    ``engines[route[item_key]]`` (default the first), exactly as that :class:`LLMEngine` would,
    and logged as its call. Items without an answer simply run on that engine.
    """

    def __init__(self, engines: LLMEngine | Sequence[LLMEngine],
                 answers: dict[str, tuple[Completion, float | None]] | None = None,
                 route: dict[str, int] | None = None) -> None:
        engines = [engines] if isinstance(engines, LLMEngine) else list(engines)
        super().__init__(log=engines[0].log)
        self.name = engines[0].name  # type: ignore[misc]
        self.engines = engines
        self.answers = answers if answers is not None else {}
        self.route = route if route is not None else {}

    @property
    def model(self) -> str | None:
        return self.engines[0].model

    def run(self, task: Task, inp: TaskInput | dict[str, Any], *, batch_id: str | None = None,
            item_key: str | None = None) -> TaskResult[Any]:
        engine = self.engines[self.route.get(item_key or "", 0)]
        answered = self.answers.pop(item_key or "", None)
        if answered is None:
            return engine.run(task, inp, batch_id=batch_id, item_key=item_key)
        completion, latency = answered
        if not isinstance(inp, TaskInput):
            inp = task.validate_input(inp)
        primed = copy.copy(engine)
        primed.backend = _PrimedBackend(completion, task.messages(inp, text_budget=engine.text_budget),
                                        engine.backend)
        primed.log = _LatencyLog(engine.log, latency)
        return primed.run(task, inp, batch_id=batch_id, item_key=item_key)


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address is None:
        # A local cluster for this process; leads sends no usage statistics on the user's behalf.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)


def run_batch_ray(
    task: Task,
    items: Iterable[tuple[str, TaskInput | dict[str, Any]]],
    *,
    base_urls: Sequence[str],
    batch_id: str,
    log: CallLog,
    model: str | None = None,
    concurrency: int = 4,
    engines: Sequence[LLMEngine] | None = None,
    api_key: str | None = None,
    max_retries: int = 5,
    backoff: float = 1.0,
    on_result: ResultCallback | None = None,
    progress: bool | ProgressCallback | None = None,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    actor_num_cpus: float = 0.25,
    **llm_options: Any,
) -> BatchReport:
    """Run ``task`` on ``items`` through Ray Data against OpenAI-compatible servers; the same
    report, call-log rows and resume semantics as :func:`leads.engines.batch.run_batch`.

    ``base_urls`` are the servers' OpenAI base URLs (``http://host:port/v1``); items are split
    evenly between them, with ``concurrency`` requests in flight per server (match the servers'
    parallel slots). ``model`` is the served model id (default: the one the first server lists).
    ``engines`` (one per URL, logging to ``log``) replace the ``openai`` engines built from
    ``base_urls``, ``api_key`` and ``llm_options`` (``max_tokens``, ``max_attempts``, ...), which
    make the re-asks and do the items Ray could not. Ray is started locally unless it is running
    or ``ray_address`` names a cluster (whose workers need leads installed).
    """
    if not ray_available():
        raise EngineError("run_batch_ray needs Ray Data and aiohttp: pip install 'ray[data]' aiohttp")
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    if not base_urls:
        raise ValueError("run_batch_ray needs at least one server URL in base_urls")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if engines is None:
        from leads.engines.openai import create

        first = create(base_url=base_urls[0], model=model, api_key=api_key, log=log, **llm_options)
        engines = [first] + [create(base_url=url, model=first.model, api_key=api_key, log=log, **llm_options)
                             for url in base_urls[1:]]
    engines = list(engines)
    if len(engines) != len(base_urls) or any(e.log is not log for e in engines):
        raise ValueError("give one engine per URL in base_urls, each writing to log")
    if len({(e.name, e.model, json.dumps(e.options(), sort_keys=True)) for e in engines}) != 1:
        raise ValueError("the engines must have the same name, model and options")
    lead = engines[0]

    # The driver decides what goes through Ray: not finished, not in the cache, a valid input.
    finished = finished_items(log, batch_id, task=task)
    work: list[tuple[str, TaskInput | dict[str, Any]]] = []
    rows: list[list[dict[str, Any]]] = [[] for _ in base_urls]
    shard: dict[str, int] = {}
    direct: list[str] = []
    seen: set[str] = set()
    use_cache = lead.cache and lead.temperature == 0
    for key, raw in items:
        _check_key(key)
        if key in seen:
            raise ValueError(f"item key {key!r} appears twice in batch {batch_id!r}")
        seen.add(key)
        work.append((key, raw))
        if key in finished:
            continue
        try:
            inp = raw if isinstance(raw, TaskInput) else task.validate_input(raw)
        except ValueError:
            direct.append(key)  # run_batch reports the invalid input
            continue
        messages = task.messages(inp, text_budget=lead.text_budget)
        if use_cache and log.find(prompt_hash(list(messages), task.schema_id, task.answer_schema(inp)),  # type: ignore[arg-type]
                                  engine=lead.name, model=lead.model, options=lead.options()) is not None:
            direct.append(key)
            continue
        server = len(shard) % len(base_urls)
        shard[key] = server
        rows[server].append({"item_key": key, "server": server,
                             "payload": {"body": json.dumps(chat_payload(lead, task, messages, inp))}})
    inputs = dict(work)
    pending = len(direct) + len(shard)
    answers: dict[str, tuple[Completion, float | None]] = {}

    def stream() -> Iterator[tuple[str, TaskInput | dict[str, Any]]]:
        for key in direct:
            yield key, inputs[key]
        if not shard:
            return
        _init_ray(ray_address, ray_num_cpus)
        context = ray.data.DataContext.get_current()
        saved = context.enable_progress_bars, context.print_on_execution_start
        context.enable_progress_bars, context.print_on_execution_start = False, False
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        per_actor = min(concurrency, ASYNC_BATCHES_PER_ACTOR)
        actors = math.ceil(concurrency / per_actor)
        parts = []
        for server, url in enumerate(base_urls):
            if not rows[server]:
                continue
            config = HttpRequestProcessorConfig(
                url=url.rstrip("/") + "/chat/completions", headers=headers, batch_size=1,
                concurrency=(actors, actors), max_retries=max_retries, base_retry_wait_time_in_s=backoff,
                session_factory=JsonBodySession,
                http_request_stage={"num_cpus": actor_num_cpus, "concurrency": (actors, actors)},
            )
            processor = build_processor(config, postprocess=_response_row)
            blocks = max(1, math.ceil(len(rows[server]) / per_actor))
            parts.append(processor(ray.data.from_items(rows[server], override_num_blocks=blocks)))
        dataset = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        delivered: set[str] = set()
        try:
            for row in dataset.iter_rows():
                key = row["item_key"]
                delivered.add(key)
                if row["error"] is None:
                    answers[key] = (Completion(
                        text=row["text"], model=row["model"], prompt_tokens=row["prompt_tokens"],
                        completion_tokens=row["completion_tokens"], finish_reason=row["finish_reason"],
                    ), row["latency_ms"])
                else:
                    logger.warning("batch %s: %s answered item %s with an error, asking again: %s",
                                   batch_id, base_urls[row["server"]], key, row["error"])
                yield key, inputs[key]
        except Exception as exc:  # a failed Ray job: what it did not deliver goes the normal way
            logger.warning("batch %s: the Ray job failed (%s: %.500s); the remaining items run in-process",
                           batch_id, type(exc).__name__, exc)
        finally:
            context.enable_progress_bars, context.print_on_execution_start = saved
        for key in shard:
            if key not in delivered:
                yield key, inputs[key]

    engine = PrefetchedEngine(engines, answers, shard)
    report = run_batch(engine, task, stream(), batch_id=batch_id, concurrency=concurrency * len(base_urls),
                       max_retries=max_retries, backoff=backoff, on_result=on_result, progress=progress,
                       total=pending)
    # Items the finished check in run_batch skipped, as they were finished before this call.
    report.skipped += sum(1 for key, _ in work if key in finished)
    return report

