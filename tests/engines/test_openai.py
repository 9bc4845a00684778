"""The openai engine against a mocked OpenAI-compatible server (httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("openai")

from leads.engines import get_engine
from leads.engines.openai import OpenAIBackend, create, parse_retry_after
from leads.errors import EngineError, RetryableEngineError
from leads.tasks import TASKS

BASE = "http://llm.test/v1"
PAPER = (
    "Methods: We randomly assigned 412 postmenopausal women to estradiol or placebo. Results: "
    "Hip fractures occurred in 3 of 206 women given estradiol and 9 of 206 given placebo."
)
ELIGIBILITY = {"text": PAPER, "criteria": [{"text": "Randomised controlled trial"}]}
ANSWER = {
    "evaluations": [
        {
            "eligibility": "YES",
            "rationale": "randomised",
            "evidence": ["We randomly assigned 412 postmenopausal women"],
        }
    ]
}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "LEADS_OPENAI_BASE_URL",
        "OPENAI_BASE_URL",
        "LEADS_OPENAI_MODEL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADS_CONFIG", str(tmp_path / "no-config.toml"))


def chat_response(
    content: str, *, model: str = "org/served-model-2026", finish: str = "stop"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366},
    }


class Server:
    """Records requests; answers /models with ``models`` and chat requests with ``chat``."""

    def __init__(self, chat: Handler | None = None, models: list[str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.chat = chat or (
            lambda request: httpx.Response(200, json=chat_response(json.dumps(ANSWER)))
        )
        self.models = models if models is not None else ["org/served-model-2026"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/models"):
            return httpx.Response(
                200,
                json={
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "me"}
                        for m in self.models
                    ],
                },
            )
        assert request.url.path == "/v1/chat/completions"
        return self.chat(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.content) for r in self.requests if r.url.path.endswith("/chat/completions")
        ]


def engine_for(server: Server, **options: Any) -> Any:
    options.setdefault("model", "leads-model")
    return create(base_url=BASE, http_client=server.client(), **options)


def test_request_uses_response_format_json_schema_and_passes_options() -> None:
    server = Server()
    engine = engine_for(server, seed=7, max_tokens=300)
    result = engine.run(TASKS["eligibility"], ELIGIBILITY)
    assert result.output.verdicts[0].eligibility == "YES"
    assert (
        result.output.verdicts[0].evidence[0].quote
        == "We randomly assigned 412 postmenopausal women"
    )
    [body] = server.chat_bodies
    assert body["model"] == "leads-model"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "eligibility",
            "schema": TASKS["eligibility"].answer_schema(
                TASKS["eligibility"].validate_input(ELIGIBILITY)
            ),
            "strict": False,
        },
    }
    assert "guided_json" not in body and "guided_json" not in json.dumps(body)
    assert body["temperature"] == 0 and body["max_tokens"] == 300 and body["seed"] == 7
    assert (
        body["messages"][0]["role"] == "user"
        and "# PAPER DETAILS #" in body["messages"][0]["content"]
    )
    [call] = engine.log.records
    assert call.engine == "openai" and call.model == "leads-model"
    assert call.resolved_model == "org/served-model-2026"  # what the server says it ran
    assert (call.prompt_tokens, call.completion_tokens) == (321, 45)
    assert call.ok and call.parsed["verdicts"][0]["eligibility"] == "YES"


def test_api_key_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()
    monkeypatch.setenv("MY_KEY", "sk-secret")
    engine_for(server, api_key_env="MY_KEY").run(TASKS["eligibility"], ELIGIBILITY)
    assert server.requests[-1].headers["authorization"] == "Bearer sk-secret"
    # without a key a placeholder is sent (local servers need none)
    other = Server()
    engine_for(other).run(TASKS["eligibility"], ELIGIBILITY)
    assert other.requests[-1].headers["authorization"] == "Bearer not-needed"


def test_cut_off_answer_is_reasked_and_says_so() -> None:
    replies = iter(
        [
            chat_response('{"evaluations": [{"eligibility": "YES", "rat', finish="length"),
            chat_response(json.dumps(ANSWER)),
        ]
    )
    server = Server(chat=lambda request: httpx.Response(200, json=next(replies)))
    engine = engine_for(server)
    engine.run(TASKS["eligibility"], ELIGIBILITY)
    first, second = engine.log.records
    assert "the answer was cut off at the token limit" in first.validation_errors
    assert second.ok and len(server.chat_bodies) == 2


@pytest.mark.parametrize("header", ["7", "7.0"])
def test_429_is_retryable_with_retry_after_seconds(header: str) -> None:
    server = Server(
        chat=lambda r: httpx.Response(
            429, headers={"Retry-After": header}, json={"error": {"message": "Rate limit reached"}}
        )
    )
    with pytest.raises(RetryableEngineError, match="Rate limit reached") as info:
        engine_for(server).run(TASKS["eligibility"], ELIGIBILITY)
    assert info.value.retry_after == 7.0
    assert len(server.chat_bodies) == 1  # the client itself does not retry


def test_retry_after_as_http_date() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    server = Server(
        chat=lambda r: httpx.Response(
            503,
            headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)},
            text="busy",
        )
    )
    with pytest.raises(RetryableEngineError) as info:
        engine_for(server).run(TASKS["eligibility"], ELIGIBILITY)
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "0"}) == 0.0
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_500_is_retryable_without_a_hint() -> None:
    server = Server(
        chat=lambda r: httpx.Response(500, json={"error": {"message": "CUDA out of memory"}})
    )
    with pytest.raises(RetryableEngineError, match="HTTP 500: CUDA out of memory") as info:
        engine_for(server).run(TASKS["eligibility"], ELIGIBILITY)
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        # vLLM's error body
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            "maximum context length is 4096",
        ),
        # OpenAI's error body
        (
            401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            "Incorrect API key provided",
        ),
        (404, {"error": {"message": "The model `leads-model` does not exist."}}, "does not exist"),
    ],
)
def test_client_errors_are_not_retryable_and_carry_the_server_message(
    status: int, body: dict[str, Any], message: str
) -> None:
    server = Server(chat=lambda r: httpx.Response(status, json=body))
    with pytest.raises(EngineError, match=message) as info:
        engine_for(server).run(TASKS["eligibility"], ELIGIBILITY)
    assert not isinstance(info.value, RetryableEngineError)
    assert f"HTTP {status}" in str(info.value)


def test_a_rejected_seed_is_surfaced_not_dropped() -> None:
    def chat(request: httpx.Request) -> httpx.Response:
        if "seed" in json.loads(request.content):
            return httpx.Response(
                400, json={"error": {"message": "Unrecognized request argument: seed"}}
            )
        return httpx.Response(200, json=chat_response(json.dumps(ANSWER)))

    server = Server(chat=chat)
    with pytest.raises(EngineError, match="Unrecognized request argument: seed"):
        engine_for(server).run(TASKS["eligibility"], ELIGIBILITY)
    assert len(server.chat_bodies) == 1
    # seed=None leaves it out
    assert engine_for(server, seed=None).run(TASKS["eligibility"], ELIGIBILITY).output.verdicts


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (httpx.ConnectError("Connection refused"), "cannot connect"),
        (httpx.ReadTimeout("timed out"), "timed out"),
    ],
)
def test_connection_errors_and_timeouts_are_retryable(error: Exception, text: str) -> None:
    def chat(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(RetryableEngineError, match=text):
        engine_for(Server(chat=chat)).run(TASKS["eligibility"], ELIGIBILITY)


def test_model_is_detected_from_v1_models() -> None:
    server = Server(models=["zifeng-ai/leads-mistral-7b-v1"])
    engine = create(base_url=BASE, http_client=server.client())
    assert engine.model == "zifeng-ai/leads-mistral-7b-v1"
    assert server.requests[0].url.path == "/v1/models"
    engine.run(TASKS["eligibility"], ELIGIBILITY)
    assert server.chat_bodies[0]["model"] == "zifeng-ai/leads-mistral-7b-v1"


def test_several_served_models_must_be_chosen_from() -> None:
    server = Server(models=["model-a", "model-b"])
    with pytest.raises(EngineError, match=r"several models.*model-a, model-b"):
        create(base_url=BASE, http_client=server.client())
    with pytest.raises(EngineError, match="serves no model"):
        create(base_url=BASE, http_client=Server(models=[]).client())


def test_model_listing_failure_is_an_engine_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "Missing API key"}})

    with pytest.raises(EngineError, match="HTTP 401: Missing API key"):
        create(base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(models=["never-asked"])
    monkeypatch.setenv("OPENAI_BASE_URL", "http://other.test/v1")
    monkeypatch.setenv("LEADS_OPENAI_BASE_URL", BASE)  # wins over OPENAI_BASE_URL
    monkeypatch.setenv("LEADS_OPENAI_MODEL", "env-model")
    engine = create(http_client=server.client())
    assert engine.model == "env-model" and engine.name == "openai"
    assert engine.backend.base_url == BASE
    engine.run(TASKS["eligibility"], ELIGIBILITY)
    assert [str(r.url) for r in server.requests] == [
        f"{BASE}/chat/completions"
    ]  # no /models lookup


def test_missing_base_url_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match=r"needs the server's URL.*LEADS_OPENAI_BASE_URL"):
        create(model="m")


def test_get_engine_builds_it_through_the_registry() -> None:
    server = Server()
    engine = get_engine(
        "openai",
        base_url=BASE,
        model="leads-model",
        http_client=server.client(),
        max_attempts=1,
        text_budget=50,
    )
    assert engine.name == "openai" and engine.max_attempts == 1
    engine.run(TASKS["eligibility"], ELIGIBILITY)
    assert "[... text truncated ...]" in server.chat_bodies[0]["messages"][0]["content"]
    with pytest.raises(EngineError, match="invalid configuration"):
        get_engine(
            "openai", base_url=BASE, model="m", http_client=server.client(), no_such_option=1
        )


def test_backend_does_not_close_an_injected_client() -> None:
    client = Server().client()
    backend = OpenAIBackend(BASE, "m", http_client=client)
    backend.close()
    assert not client.is_closed
