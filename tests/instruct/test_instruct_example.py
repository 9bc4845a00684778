"""Instruction examples are leads' own prompts with answers leads accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.engines._base import FakeBackend, LLMEngine
from leads.instruct.example import (
    Example,
    ExampleRejected,
    input_hash,
    make_call_example,
    make_example,
    read_examples,
    write_examples,
)
from leads.tasks import TASKS

TEXT = ("Background. We studied adults with asthma.\n\nMethods. Sixty adults were randomised to "
        "budesonide or placebo for 12 weeks. The primary outcome was FEV1.\n\nResults. FEV1 rose by "
        "210 ml with budesonide and 40 ml with placebo.")
PICO = {"participants": ["adults with asthma"], "interventions": ["budesonide", "placebo"], "outcomes": ["FEV1"]}


def _pico(**kwargs: object) -> Example:
    return make_example("pico", {"text": TEXT}, PICO, source="test", item="a1", groups=["pmid:1"],
                        licence="test", **kwargs)  # type: ignore[arg-type]


def test_example_is_the_engines_prompt_plus_the_serialised_answer() -> None:
    example = _pico()
    # What an LLM engine sends for the same input and text budget, captured from a fake backend.
    backend = FakeBackend([PICO])
    LLMEngine(backend, text_budget=24_000).run(TASKS["pico"], {"text": TEXT})
    assert example.messages[:-1] == backend.requests[0]["messages"]
    assert example.messages[-1] == {"role": "assistant", "content": json.dumps(PICO)}
    # The answer parses with the task's own parser and passes finish with strict quotes.
    task = TASKS["pico"]
    output = task.finish(task.parse_answer(example.messages[-1]["content"]),
                         task.validate_input(example.input), strict_quotes=True)
    assert {s.text for s in output.spans} == {"adults with asthma", "budesonide", "placebo", "FEV1"}


def test_cut_text_is_stored_and_matches_the_engines_cut_prompt() -> None:
    budget = 120
    example = make_example("pico", {"text": TEXT}, {"participants": ["adults with asthma"]}, source="t",
                           item="a", groups=["g"], licence="x", text_budget=budget)
    backend = FakeBackend([{"participants": ["adults with asthma"]}])
    LLMEngine(backend, text_budget=budget).run(TASKS["pico"], {"text": TEXT})
    assert example.messages[:-1] == backend.requests[0]["messages"]
    assert example.input["text"].endswith("[... text truncated ...]")


def test_quotes_beyond_the_text_budget_are_refused() -> None:
    with pytest.raises(ExampleRejected, match="not in the text"):
        make_example("pico", {"text": TEXT}, {"outcomes": ["FEV1 rose by 210 ml"]}, source="t", item="a",
                     groups=["g"], licence="x", text_budget=100)


def test_answers_leads_would_refuse_are_rejected() -> None:
    criteria = [{"text": "Adults", "kind": "inclusion"}, {"text": "Asthma", "kind": "inclusion"}]
    one = {"evaluations": [{"eligibility": "YES", "rationale": "adults", "evidence": []}]}
    with pytest.raises(ExampleRejected, match=r"schema|criteria"):
        make_example("eligibility", {"text": TEXT, "criteria": criteria}, one, source="t", item="a",
                     groups=["g"], licence="x")
    with pytest.raises(ExampleRejected, match="invalid answer"):
        make_example("arms", {"text": TEXT}, [{"label": "A", "type": "DRUG"}], source="t", item="a",
                     groups=["g"], licence="x")
    with pytest.raises(ExampleRejected, match="not valid PubMed syntax"):
        make_example("search_query", {"population": "asthma"}, {"query": "asthma[tiab] AND ("}, source="t",
                     item="a", groups=["g"], licence="x")
    with pytest.raises(ExampleRejected, match="group key"):
        make_example("pico", {"text": TEXT}, PICO, source="t", item="a", groups=[], licence="x")


def test_input_hash_ignores_case_and_spacing_but_not_content() -> None:
    a = [{"role": "user", "content": "Judge  THIS paper"}, {"role": "assistant", "content": "x"}]
    b = [{"role": "user", "content": "judge this\npaper"}, {"role": "assistant", "content": "y"}]
    c = [{"role": "user", "content": "judge that paper"}, {"role": "assistant", "content": "x"}]
    assert input_hash("pico", a) == input_hash("pico", b)  # type: ignore[arg-type]
    assert input_hash("pico", a) != input_hash("pico", c)  # type: ignore[arg-type]
    assert input_hash("pico", a) != input_hash("arms", a)  # type: ignore[arg-type]


def test_call_example_keeps_the_request_not_the_reask() -> None:
    request = TASKS["search_query"].messages(TASKS["search_query"].validate_input({"population": "asthma"}))
    messages = [*request, {"role": "assistant", "content": "bad"}, {"role": "user", "content": "again"}]
    example = make_call_example("search_query", messages, '```json\n{"query": "asthma[tiab]"}\n```',
                                source="p", item="c1", groups=["project:x"], licence="x")
    assert example.messages == [*request, {"role": "assistant", "content": '{"query": "asthma[tiab]"}'}]
    assert example.input == {}
    with pytest.raises(ExampleRejected, match="does not parse"):
        make_call_example("search_query", request, "not json", source="p", item="c", groups=["g"], licence="x")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    example = _pico()
    path = tmp_path / "x.jsonl"
    assert write_examples(path, [example]) == 1
    line = json.loads(path.read_text())
    assert set(line) == {"messages", "meta"} and isinstance(line["meta"]["input"], str)
    (back,) = list(read_examples(path))
    assert back.messages == example.messages and back.input == example.input and back.answer == PICO
