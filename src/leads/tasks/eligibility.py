"""Task 2: study eligibility — a record judged against each criterion, with evidence."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leads.tasks._base import (
    AnswerError,
    Evidence,
    Message,
    Task,
    TaskInput,
    TaskOutput,
    exact_items,
    ground_quotes,
    leads_prompt,
    truncate_text,
)

__all__ = [
    "SCORES",
    "Criterion",
    "CriterionVerdict",
    "EligibilityAnswer",
    "EligibilityInput",
    "EligibilityOutput",
    "EligibilityTask",
]

Eligibility = Literal["YES", "PARTIAL", "NO", "UNCERTAIN"]
# The LEADS ranking score: the mean over criteria of these values.
SCORES: dict[str, float] = {"YES": 1.0, "PARTIAL": 0.5, "UNCERTAIN": 0.0, "NO": -1.0}


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    kind: Literal["inclusion", "exclusion"] = "inclusion"


class EligibilityInput(TaskInput):
    title: str | None = Field(default=None, max_length=2000)
    text: str = Field(description="Abstract or full text (the title is prepended when given).")
    criteria: list[Criterion] = Field(min_length=1, max_length=40)

    @property
    def content(self) -> str:
        return f"{self.title}\n\n{self.text}" if self.title else self.text


class _Evaluation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    eligibility: Eligibility
    rationale: str = Field(max_length=1500)
    evidence: list[str] = Field(default_factory=list, max_length=3,
                                description="Sentences copied word for word from the paper.")


class EligibilityAnswer(BaseModel):
    """LEADS' answer: ``{"evaluations": [{"eligibility", "rationale"}]}``, one per criterion in order."""

    model_config = ConfigDict(extra="forbid")
    evaluations: list[_Evaluation] = Field(min_length=1, max_length=40)


class CriterionVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    criterion: int = Field(ge=0, description="0-based index into the input criteria")
    eligibility: Eligibility
    rationale: str
    evidence: list[Evidence] = Field(default_factory=list)
    unsupported_quotes: list[str] = Field(default_factory=list)


class EligibilityOutput(TaskOutput):
    verdicts: list[CriterionVerdict]
    score: float = Field(ge=-1, le=1)

    @staticmethod
    def score_of(verdicts: list[CriterionVerdict], criteria: list[Criterion]) -> float:
        """LEADS' score (YES 1, PARTIAL 0.5, UNCERTAIN 0, NO -1, averaged); an exclusion criterion
        that is met counts against the record."""
        values = []
        for verdict in verdicts:
            value = SCORES[verdict.eligibility]
            if criteria[verdict.criterion].kind == "exclusion":
                value = -value
            values.append(value)
        return sum(values) / len(values) if values else 0.0


class EligibilityTask(Task[EligibilityInput, EligibilityAnswer, EligibilityOutput]):
    name = "eligibility"
    description = "record + criteria -> per criterion YES/PARTIAL/NO/UNCERTAIN, rationale, evidence"
    input_model = EligibilityInput
    answer_model = EligibilityAnswer
    output_model = EligibilityOutput

    def answer_schema(self, inp: EligibilityInput | None = None) -> dict[str, Any]:
        schema = super().answer_schema(inp)
        if inp is not None:
            exact_items(schema["properties"]["evaluations"], len(inp.criteria))
        return schema

    def messages(self, inp: EligibilityInput, *, text_budget: int | None = None) -> list[Message]:
        criteria = "\n".join(
            f"{i}. {'[EXCLUSION] ' if c.kind == 'exclusion' else ''}{c.text}"
            for i, c in enumerate(inp.criteria, 1)
        )
        return leads_prompt(
            context="You are a clinical researcher screening studies for a systematic review.",
            objective="Judge the paper against each criterion, in order. Answer YES if the paper meets "
                      "the criterion, PARTIAL if it meets part of it, NO if the paper shows it does not, "
                      "and UNCERTAIN if the paper does not say. For an [EXCLUSION] criterion, YES means "
                      "the exclusion applies. Give a short rationale and copy the sentence(s) that "
                      "support your judgement word for word as evidence.",
            sections={
                "PAPER DETAILS": truncate_text(inp.content, text_budget),
                "EVALUATION CRITERIA": criteria,
            },
            response='A JSON object {"evaluations": [{"eligibility": "YES" | "PARTIAL" | "NO" | '
                     '"UNCERTAIN", "rationale": "...", "evidence": ["..."]}]} with exactly '
                     f"{len(inp.criteria)} evaluations, one per criterion in order.",
        )

    def finish(self, answer: EligibilityAnswer, inp: EligibilityInput, *,
               strict_quotes: bool = True) -> EligibilityOutput:
        if len(answer.evaluations) != len(inp.criteria):
            raise AnswerError(
                f"there are {len(inp.criteria)} criteria but {len(answer.evaluations)} evaluations; "
                "give exactly one evaluation per criterion, in order"
            )
        verdicts = []
        for i, evaluation in enumerate(answer.evaluations):
            evidence, missing = ground_quotes(evaluation.evidence, inp.content, strict=strict_quotes,
                                              where=f"evaluation {i + 1}")
            verdicts.append(CriterionVerdict(criterion=i, eligibility=evaluation.eligibility,
                                             rationale=evaluation.rationale.strip(), evidence=evidence,
                                             unsupported_quotes=missing))
        return EligibilityOutput(verdicts=verdicts, score=EligibilityOutput.score_of(verdicts, inp.criteria))
