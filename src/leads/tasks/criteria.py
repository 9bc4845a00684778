"""Eligibility criteria generation: a review question (PICO) to inclusion and exclusion criteria.

Not one of LEADS' six tasks (the paper takes the criteria as given), but the step before
screening that a review team does from its PICO; an LLM engine drafts the criteria through this
contract and the classic engine writes one criterion per PICO element plus the study design
(:mod:`leads.screen.criteria`). The prompt keeps LEADS' sections so the same model can serve it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leads.tasks._base import AnswerError, Message, Task, TaskInput, TaskOutput, leads_prompt

__all__ = [
    "PICO_ELEMENTS",
    "CriteriaAnswer",
    "CriteriaInput",
    "CriteriaOutput",
    "CriteriaTask",
    "GeneratedCriterion",
]

PicoElement = Literal["population", "intervention", "comparison", "outcome", "study_design", "other"]
#: The values of a criterion's ``pico_element`` (what part of the question it restates).
PICO_ELEMENTS: tuple[str, ...] = ("population", "intervention", "comparison", "outcome", "study_design", "other")


class CriteriaInput(TaskInput):
    title: str | None = Field(default=None, max_length=2000)
    population: str | None = Field(default=None, max_length=2000)
    intervention: str | None = Field(default=None, max_length=2000)
    comparison: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000)
    study_design: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _needs_a_question(self) -> CriteriaInput:
        if not any(_clean(v) for v in (self.population, self.intervention, self.comparison, self.outcome)):
            raise ValueError("give at least one of population, intervention, comparison or outcome")
        return self


class _Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["inclusion", "exclusion"]
    text: str = Field(min_length=1, max_length=500)
    pico_element: PicoElement


class CriteriaAnswer(BaseModel):
    """The model's answer: ``{"criteria": [{"kind", "text", "pico_element"}]}``."""

    model_config = ConfigDict(extra="forbid")
    criteria: list[_Criterion] = Field(min_length=1, max_length=20)


class GeneratedCriterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["inclusion", "exclusion"] = "inclusion"
    text: str = Field(min_length=1, max_length=2000)
    pico_element: PicoElement | None = None


class CriteriaOutput(TaskOutput):
    criteria: list[GeneratedCriterion] = Field(min_length=1)

    @property
    def inclusion(self) -> list[GeneratedCriterion]:
        return [c for c in self.criteria if c.kind == "inclusion"]

    @property
    def exclusion(self) -> list[GeneratedCriterion]:
        return [c for c in self.criteria if c.kind == "exclusion"]


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


class CriteriaTask(Task[CriteriaInput, CriteriaAnswer, CriteriaOutput]):
    name = "criteria"
    description = "review question (PICO) -> inclusion and exclusion criteria"
    input_model = CriteriaInput
    answer_model = CriteriaAnswer
    output_model = CriteriaOutput

    def messages(self, inp: CriteriaInput, *, text_budget: int | None = None) -> list[Message]:
        details = [f"Review title: {_clean(inp.title)}"] if _clean(inp.title) else []
        details += [
            f"Population: {_clean(inp.population) or 'not specified'}",
            f"Intervention: {_clean(inp.intervention) or 'not specified'}",
            f"Comparison: {_clean(inp.comparison) or 'not specified'}",
            f"Outcome: {_clean(inp.outcome) or 'not specified'}",
        ]
        if _clean(inp.study_design):
            details.append(f"Study design: {_clean(inp.study_design)}")
        return leads_prompt(
            context="You are a clinical researcher writing the protocol of a systematic review.",
            objective="Write the eligibility criteria that reviewers will use to screen titles and "
                      "abstracts for this review. Write one inclusion criterion for each specified "
                      "element of the question (population, intervention, comparison, outcome) and one "
                      "for the study design, and add exclusion criteria only where the question implies "
                      "them. Each criterion is one short sentence that can be checked against a paper on "
                      "its own. Do not add requirements the question does not state.",
            sections={"RESEARCH DETAILS": "\n".join(details)},
            response='A JSON object {"criteria": [{"kind": "inclusion" | "exclusion", "text": "...", '
                     '"pico_element": "population" | "intervention" | "comparison" | "outcome" | '
                     '"study_design" | "other"}]} with at least one inclusion criterion.',
        )

    def finish(self, answer: CriteriaAnswer, inp: CriteriaInput, *,
               strict_quotes: bool = True) -> CriteriaOutput:
        seen: set[str] = set()
        criteria: list[GeneratedCriterion] = []
        for item in answer.criteria:
            text = _clean(item.text)
            key = text.casefold().rstrip(".")
            if not text or key in seen:
                continue
            seen.add(key)
            criteria.append(GeneratedCriterion(kind=item.kind, text=text, pico_element=item.pico_element))
        if not any(c.kind == "inclusion" for c in criteria):
            raise AnswerError("there is no inclusion criterion; give at least one inclusion criterion "
                              "(kind \"inclusion\") for the elements of the question")
        # Inclusion criteria first: the order a project stores them in.
        criteria.sort(key=lambda c: c.kind != "inclusion")
        return CriteriaOutput(criteria=criteria)
