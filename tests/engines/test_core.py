"""The engine contract with the queue-based fake model: validation, re-ask, grounding, log, cache, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.engines import (
    DatabaseCallLog,
    FakeBackend,
    LLMEngine,
    MemoryCallLog,
    engines,
    get_engine,
)
from leads.engines.replay import ReplayEngine
from leads.errors import EngineError
from leads.project import Project
from leads.tasks import TASKS

PAPER = ("Background: Hormone therapy after menopause is common. Methods: We randomly assigned 412 "
         "postmenopausal women to estradiol or placebo. Results: Hip fractures occurred in 3 of 206 "
         "women given estradiol and 9 of 206 given placebo.")
ELIGIBILITY_INPUT = {"title": "Estradiol and fractures", "text": PAPER,
                     "criteria": [{"text": "Randomised controlled trial"},
                                  {"text": "Men only", "kind": "exclusion"}]}


def good_eligibility() -> dict:
    return {"evaluations": [
        {"eligibility": "YES", "rationale": "randomised", "evidence": ["We randomly assigned 412 postmenopausal women"]},
        {"eligibility": "NO", "rationale": "women", "evidence": []},
    ]}


def test_builtin_engines_are_registered_through_the_hook() -> None:
    assert {"classic", "openai", "llamacpp", "replay"} <= set(engines())


def test_valid_answer_is_grounded_scored_and_logged() -> None:
    backend = FakeBackend([good_eligibility()])
    engine = LLMEngine(backend)
    result = engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)
    out = result.output
    assert [v.eligibility for v in out.verdicts] == ["YES", "NO"]
    evidence = out.verdicts[0].evidence[0]
    content = "Estradiol and fractures\n\n" + PAPER
    assert content[evidence.start:evidence.end] == evidence.quote
    assert out.score == pytest.approx((1.0 + 1.0) / 2)  # exclusion criterion not met counts for
    [call] = engine.log.records  # type: ignore[attr-defined]
    assert call.id == result.call_id and call.ok and call.attempt == 1
    assert call.raw_output == json.dumps(good_eligibility())
    assert "# PAPER DETAILS #" in call.messages[0]["content"]
    # the schema was sent
    evaluations = backend.requests[0]["schema"]["properties"]["evaluations"]
    assert evaluations["minItems"] == evaluations["maxItems"] == 2  # exactly one per criterion
    assert backend.requests[0]["options"]["temperature"] == 0


def test_reask_with_the_validation_error_then_success() -> None:
    backend = FakeBackend(["not json at all", {"evaluations": [{"eligibility": "MAYBE", "rationale": ""}]},
                           good_eligibility()])
    engine = LLMEngine(backend, max_attempts=3)
    result = engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)
    assert result.output.verdicts[0].eligibility == "YES"
    calls = engine.log.records  # type: ignore[attr-defined]
    assert [c.attempt for c in calls] == [1, 2, 3]
    assert calls[0].validation_errors and calls[1].validation_errors and calls[2].ok
    reask = backend.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid" in reask[-1]["content"]
    assert len({c.prompt_hash for c in calls}) == 1  # attempts belong to one request


def test_wrong_number_of_evaluations_is_reasked() -> None:
    one = {"evaluations": [{"eligibility": "YES", "rationale": "x"}]}
    engine = LLMEngine(FakeBackend([one, good_eligibility()]))
    engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)
    first = engine.log.records[0]  # type: ignore[attr-defined]
    assert "2 criteria but 1 evaluations" in first.validation_errors[0]


def test_ungrounded_quote_is_reasked_then_flagged_on_the_last_attempt() -> None:
    invented = {"evaluations": [
        {"eligibility": "YES", "rationale": "r", "evidence": ["a double-blind crossover design"]},
        {"eligibility": "NO", "rationale": "r", "evidence": []}]}
    engine = LLMEngine(FakeBackend([invented, invented]), max_attempts=2)
    out = engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT).output
    assert out.verdicts[0].evidence == []
    assert out.verdicts[0].unsupported_quotes == ["a double-blind crossover design"]


def test_error_carries_every_attempt() -> None:
    engine = LLMEngine(FakeBackend(["{", "[]", '{"evaluations": []}']), max_attempts=3)
    with pytest.raises(EngineError) as info:
        engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)
    attempts = info.value.attempts
    assert [a["raw"] for a in attempts] == ["{", "[]", '{"evaluations": []}']
    assert all(a["errors"] for a in attempts) and all(a["call_id"] for a in attempts)
    assert "after 3 attempts" in str(info.value)


def test_cache_answers_identical_deterministic_call(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as project:
        log = DatabaseCallLog(project.engine)
        engine = LLMEngine(FakeBackend([good_eligibility()]), log=log)
        first = engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)
        second = engine.run(TASKS["eligibility"], ELIGIBILITY_INPUT)  # the queue is empty: must be cached
        assert second.cached and second.output == first.output and second.call_id != first.call_id
        calls = log.calls()
        assert calls[1].cached_from == calls[0].id
        assert calls[0].duration_ms is not None and calls[0].prompt_tokens
        # no cache when disabled, or when sampling
        with pytest.raises(AssertionError, match="no reply left"):
            LLMEngine(FakeBackend([]), log=log, cache=False).run(TASKS["eligibility"], ELIGIBILITY_INPUT)
        with pytest.raises(AssertionError, match="no reply left"):
            LLMEngine(FakeBackend([]), log=log, temperature=0.7).run(TASKS["eligibility"], ELIGIBILITY_INPUT)


def test_replay_answers_only_from_the_log() -> None:
    log = MemoryCallLog()
    LLMEngine(FakeBackend([good_eligibility()]), log=log).run(TASKS["eligibility"], ELIGIBILITY_INPUT)
    replay = ReplayEngine(log=log)
    assert replay.run(TASKS["eligibility"], ELIGIBILITY_INPUT).output.verdicts[1].eligibility == "NO"
    other = dict(ELIGIBILITY_INPUT, text=PAPER + " Extra sentence.")
    with pytest.raises(EngineError, match="no answer"):
        replay.run(TASKS["eligibility"], other)


def test_every_task_round_trips_through_the_fake_model() -> None:
    groups = [{"id": "OG000", "title": "Estradiol"}, {"id": "OG001", "title": "Placebo"}]
    cases = {
        "search_query": ({"population": "postmenopausal women", "intervention": "estradiol"},
                         {"query": '("Estradiol"[Mesh] OR estradiol[tiab]) AND postmenopaus*[tiab]'}),
        "characteristics": ({"text": PAPER, "fields": [{"name": "sample size", "description": "randomised N"},
                                                        {"name": "funding", "description": ""}]},
                            [{"name": "sample size", "value": "412", "quote": "We randomly assigned 412 postmenopausal women"},
                             {"name": "funding", "value": "not reported"}]),
        "arms": ({"text": PAPER}, [{"label": "Estradiol", "type": "EXPERIMENTAL", "description": "estradiol",
                                    "interventionNames": ["estradiol"], "quote": "to estradiol or placebo"},
                                   {"label": "Placebo", "type": "PLACEBO_COMPARATOR", "interventionNames": ["placebo"]}]),
        "participants": ({"text": PAPER, "measure": "Overall", "groups": groups},
                         {"results": [{"groupId": "OG000", "value": "206", "quote": "3 of 206 women given estradiol"},
                                      {"groupId": "OG001", "value": "206"}]}),
        "results": ({"text": PAPER, "outcome": "Hip fracture", "groups": groups},
                    {"paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants", "timeFrame": "",
                     "denomValue": ["206", "206"], "results": [
                         {"title": "Estradiol", "value": "3", "quote": "Hip fractures occurred in 3 of 206 women given estradiol"},
                         {"title": "Placebo", "value": "9", "quote": "9 of 206 given placebo"}]}),
        "pico": ({"text": PAPER}, {"participants": ["412 postmenopausal women"], "interventions": ["estradiol", "placebo"],
                                   "outcomes": ["Hip fractures"]}),
    }
    for name, (inp, answer) in cases.items():
        engine = LLMEngine(FakeBackend([answer]))
        out = engine.run(TASKS[name], inp).output
        dumped = out.model_dump()
        assert dumped, name
    # spot checks
    fields = LLMEngine(FakeBackend([cases["characteristics"][1]])).run(TASKS["characteristics"], cases["characteristics"][0]).output.fields
    assert fields[0].value == "412" and fields[0].evidence and fields[1].value is None
    res = LLMEngine(FakeBackend([cases["results"][1]])).run(TASKS["results"], cases["results"][0]).output
    assert [v.number for v in res.values] == [3.0, 9.0] and res.denominators == {"OG000": 206.0, "OG001": 206.0}
    pico = LLMEngine(FakeBackend([cases["pico"][1]])).run(TASKS["pico"], cases["pico"][0]).output
    assert all(PAPER[s.start:s.end] == s.text for s in pico.spans)


def test_search_query_syntax_is_checked() -> None:
    engine = LLMEngine(FakeBackend([{"query": "(estradiol OR estrogen AND"}, {"query": "estradiol AND women"}]))
    out = engine.run(TASKS["search_query"], {"population": "women"}).output
    assert out.query == "estradiol AND women"
    assert "not valid PubMed syntax" in engine.log.records[0].validation_errors[0]  # type: ignore[attr-defined]


def test_classic_engine_without_implementation_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from leads.engines import classic

    monkeypatch.setattr(classic, "_IMPLEMENTATIONS", {})
    monkeypatch.setattr(classic, "IMPLEMENTATION_MODULES", ())
    with pytest.raises(EngineError, match="no implementation of task 'pico'"):
        get_engine("classic").run(TASKS["pico"], {"text": "x"})


def test_unknown_engine_lists_the_available_ones() -> None:
    with pytest.raises(EngineError, match=r"unknown engine 'gpt9'.*classic"):
        get_engine("gpt9")
