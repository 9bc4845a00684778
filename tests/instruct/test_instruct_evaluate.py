"""Replaying held-out examples through an engine: validity and agreement."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads.engines._base import FakeBackend, LLMEngine
from leads.instruct import BuildOptions, build
from leads.instruct.evaluate import agreement, evaluate_examples
from leads.tasks import TASKS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "instruct" / "shared"


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list:
    out = tmp_path_factory.mktemp("eval")
    return build(BuildOptions(out=out, shared=FIXTURE, test_fraction=0)).examples


def test_gold_answers_score_one_and_wrong_answers_less(examples: list) -> None:
    picked = {}
    for example in examples:
        picked.setdefault(example.task, example)
    chosen = list(picked.values())
    gold = LLMEngine(FakeBackend([e.answer for e in chosen]), max_attempts=1)
    result = evaluate_examples(chosen, gold)
    assert result["overall"] == {**result["overall"], "n": len(chosen), "valid": 1.0, "grounded": 1.0,
                                 "agreement": 1.0}
    assert set(result["tasks"]) == set(picked)

    broken = LLMEngine(FakeBackend(["not json"] * len(chosen)), max_attempts=1)
    result = evaluate_examples(chosen, broken)
    assert result["overall"]["valid"] == 0.0 and result["items"][0]["error"]


def test_agreement_measures() -> None:
    task = TASKS["pico"]
    inp = task.validate_input({"text": "Adults with asthma took budesonide; FEV1 was measured."})
    gold = task.finish(task.answer_model.model_validate(
        {"participants": ["Adults with asthma"], "interventions": ["budesonide"], "outcomes": ["FEV1"]}), inp)
    half = task.finish(task.answer_model.model_validate({"interventions": ["budesonide"]}), inp)
    assert agreement("pico", gold, gold) == 1.0
    assert agreement("pico", gold, half) == pytest.approx(0.5)
    results = TASKS["results"]
    rinp = results.validate_input({"text": "Mortality was 5 of 50 with A and 9 of 51 with B.", "outcome": "death",
                                   "groups": [{"id": "OG000", "title": "A"}, {"id": "OG001", "title": "B"}]})

    def out(values: list[str], param: str = "COUNT_OF_PARTICIPANTS") -> object:
        return results.finish(results.answer_model.model_validate(
            {"paramType": param, "unitOfMeasure": "Participants",
             "results": [{"title": t, "value": v} for t, v in zip(["A", "B"], values, strict=True)]}), rinp)

    assert agreement("results", out(["5", "9"]), out(["5.0", "9"])) == 1.0
    assert agreement("results", out(["5", "9"]), out(["5", "8"], "NUMBER")) == pytest.approx(1 / 3)
