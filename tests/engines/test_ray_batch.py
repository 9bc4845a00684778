"""The Ray Data path against OpenAI-compatible servers on 127.0.0.1: a scripted fake server (exact
requests, re-asks, HTTP errors, resume) and the real SmolLM2 model through ``leads serve-model``.

Skipped without the optional extra (``pip install 'ray[data]' aiohttp``); slow (Ray starts a
local cluster, about 10 s on 2 cores).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from leads.engines import DatabaseCallLog, LLMEngine
from leads.engines.batch import batch_results, run_batch
from leads.engines.calllog import prompt_hash
from leads.engines.ray_batch import chat_payload, ray_available, run_batch_ray
from leads.engines.replay import ReplayEngine
from leads.project import Project
from leads.tasks import TASKS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ray_available(), reason="needs the optional extra: pip install 'ray[data]' aiohttp"),
]

TASK = TASKS["search_query"]
POPULATION = re.compile(r"Population: (item-\d+)")


def items(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"item-{i:03d}", {"population": f"item-{i:03d}"}) for i in range(n)]


def expected_query(key: str) -> str:
    return f'"{key}"[tiab] AND women[tiab]'


class FakeServer:
    """A chat-completions server: valid answers per item, except that item-003's first answer is
    invalid (re-asked) and item-005's first request gets HTTP 500."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = server.reply(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert path == "/v1/chat/completions"
        key = POPULATION.search(body["messages"][0]["content"]).group(1)  # type: ignore[union-attr]
        with self.lock:
            self.requests.append(body)
            first = sum(1 for r in self.requests if r["messages"][0] == body["messages"][0]) == 1
        if key == "item-005" and first:
            return 500, {"error": {"message": "the model crashed"}}
        text = json.dumps({"query": "(unbalanced AND" if key == "item-003" and first else expected_query(key)})
        return 200, {"id": "c1", "object": "chat.completion", "created": 0, "model": f"fake-{self.name}",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    started = [FakeServer("a"), FakeServer("b")]
    yield started
    for server in started:
        server.close()


def test_ray_batch_against_two_servers(tmp_path: Path, servers: list[FakeServer]) -> None:
    from leads.engines.openai import create

    with Project.init(tmp_path / "p") as project:
        log = DatabaseCallLog(project.engine)
        report = run_batch_ray(TASK, items(24), base_urls=[s.url for s in servers], model="fake-model",
                               batch_id="ray", log=log, concurrency=2, progress=False, backoff=0.01)
        assert report.ok, report.summary()
        assert report.done == 24 and report.model_calls == 24 + 1  # one re-ask (the HTTP 500 left no row)
        assert batch_results(log, "ray") == {key: {"query": expected_query(key)} for key, _ in items(24)}
        assert all(len(s.requests) >= 11 for s in servers)  # the items were split between the servers

        # The request through Ray is byte for byte what the openai engine sends (Arrow must not
        # have touched the JSON schema), and the logged calls are the openai engine's.
        engine = create(base_url=servers[0].url, model="fake-model", log=log)
        messages = TASK.messages(TASK.validate_input({"population": "item-000"}), text_budget=engine.text_budget)
        sent = [r for s in servers for r in s.requests if r["messages"] == messages]
        assert sent == [chat_payload(engine, TASK, messages)]
        assert sent[0]["response_format"]["json_schema"]["schema"] == TASK.answer_schema()

        calls = log.calls(batch_id="ray")
        assert Counter(c.item_key for c in calls)["item-003"] == 2
        assert all(c.engine == "openai" and c.model == "fake-model" and c.options == engine.options() for c in calls)
        first = next(c for c in calls if c.item_key == "item-000")
        assert first.prompt_hash == prompt_hash(list(messages), TASK.schema_id, TASK.answer_schema())  # type: ignore[arg-type]
        assert first.resolved_model in {"fake-a", "fake-b"} and first.prompt_tokens == 11
        assert first.duration_ms is not None and first.duration_ms > 0  # measured in the Ray worker
        reasked = [c for c in calls if c.item_key == "item-003"]
        assert [c.attempt for c in reasked] == [1, 2] and reasked[0].validation_errors and reasked[1].ok
        assert "not valid" in reasked[1].messages[-1]["content"]  # the re-ask carries the error

        # Resume: nothing is sent again.
        before = sum(len(s.requests) for s in servers)
        again = run_batch_ray(TASK, items(26), base_urls=[s.url for s in servers], model="fake-model",
                              batch_id="ray", log=log, concurrency=2, progress=False)
        assert again.skipped == 24 and again.done == 2 and again.model_calls == 2
        assert sum(len(s.requests) for s in servers) == before + 2

        # The rows serve the openai engine's cache and the replay engine like any other call.
        cached = run_batch(engine, TASK, items(26), batch_id="in-process", progress=False)
        assert cached.done == 26 and cached.cached == 26 and cached.model_calls == 0
        replayed = ReplayEngine(log=log).run(TASK, {"population": "item-007"})
        assert replayed.output.query == expected_query("item-007")


def test_a_ray_job_that_cannot_reach_a_server_falls_back(tmp_path: Path, servers: list[FakeServer],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    dead = servers[1].url
    servers[1].close()
    with Project.init(tmp_path / "p") as project:
        log = DatabaseCallLog(project.engine)
        engines = [LLMEngine(_backend(servers[0].url), log=log, engine_name="openai")] * 2
        report = run_batch_ray(TASK, items(6), base_urls=[servers[0].url, dead], engines=engines,
                               batch_id="dead", log=log, concurrency=2, progress=False, max_retries=1,
                               backoff=0.01)
        # the items for the dead server were done through the engines (here all on the live one)
        assert report.ok and report.done == 6, report.summary()
        assert "the Ray job failed" in caplog.text and "Cannot connect" in caplog.text
        assert set(batch_results(log, "dead")) == {key for key, _ in items(6)}


def _backend(url: str) -> Any:
    from leads.engines.openai import OpenAIBackend

    return OpenAIBackend(url, "fake-model")


def test_real_model_through_leads_serve_model(tmp_path: Path) -> None:
    """SmolLM2-135M behind two llama.cpp servers: every item ends valid or failed with the reason,
    and the logged calls answer the same requests from the cache afterwards."""
    serve = pytest.importorskip("leads.engines.serve")
    from leads.engines.openai import create

    work = [(f"q{i}", {"population": p, "intervention": "estradiol"})
            for i, p in enumerate(["postmenopausal women", "women with osteoporosis", "older women",
                                   "women after hysterectomy", "perimenopausal women", "women over 60"])]
    with serve.running_server(n_ctx=2048, n_threads=1, parallel=2) as url_a, \
            serve.running_server(n_ctx=2048, n_threads=1, parallel=2) as url_b, \
            Project.init(tmp_path / "p") as project:
        log = DatabaseCallLog(project.engine)
        report = run_batch_ray(TASK, work, base_urls=[url_a, url_b], batch_id="smol", log=log, concurrency=2,
                               max_tokens=96, progress=False)
        assert report.done + len(report.failed) == len(work), report.summary()
        # SmolLM2-135M often writes queries the grammar rejects; what must hold is that every failure
        # is an EngineError carrying its reason and that every attempt was logged.
        assert all(f.error_type == "EngineError" and f.error for f in report.failed)
        calls = log.calls(batch_id="smol")
        assert len(calls) == report.model_calls >= len(work)
        assert {c.model for c in calls} == {"SmolLM2-135M-Instruct.Q4_1"} and all(c.engine == "openai" for c in calls)
        results = batch_results(log, "smol")
        assert len(results) == report.done and all(out["query"] for out in results.values())
        engine = create(base_url=url_a, log=log, max_tokens=96)
        cached = run_batch(engine, TASK, [(k, v) for k, v in work if k in results], batch_id="smol-cache",
                           progress=False)
        assert cached.cached == len(results) and cached.model_calls == 0
