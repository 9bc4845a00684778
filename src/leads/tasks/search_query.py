"""Task 1: search query generation — a PICO (and/or criteria) to a PubMed Boolean query."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leads.tasks._base import AnswerError, Message, Task, TaskInput, TaskOutput, leads_prompt

__all__ = ["QueryAnswer", "QueryInput", "QueryOutput", "SearchQueryTask"]


class QueryInput(TaskInput):
    population: str | None = Field(default=None, max_length=2000)
    intervention: str | None = Field(default=None, max_length=2000)
    comparison: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000)
    criteria: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something_to_search(self) -> QueryInput:
        if not any([self.population, self.intervention, self.comparison, self.outcome, self.criteria]):
            raise ValueError("give at least one of population, intervention, comparison, outcome or criteria")
        return self


class QueryAnswer(BaseModel):
    """The LEADS model's answer: ``{"query": "<PubMed Boolean>"}``."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)


class QueryOutput(TaskOutput):
    query: str


class SearchQueryTask(Task[QueryInput, QueryAnswer, QueryOutput]):
    name = "search_query"
    description = "PICO (and/or eligibility criteria) -> PubMed Boolean query"
    input_model = QueryInput
    answer_model = QueryAnswer
    output_model = QueryOutput

    def messages(self, inp: QueryInput, *, text_budget: int | None = None) -> list[Message]:
        details = [f"Population: {inp.population or 'not specified'}",
                   f"Intervention: {inp.intervention or 'not specified'}",
                   f"Comparison: {inp.comparison or 'not specified'}",
                   f"Outcome: {inp.outcome or 'not specified'}"]
        if inp.criteria:
            details.append("Eligibility criteria:\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(inp.criteria, 1)))
        return leads_prompt(
            context="You are an information specialist building the literature search for a systematic "
                    "review of clinical studies.",
            objective="Write one PubMed Boolean query that finds the studies this review needs. Combine "
                      "synonyms of each concept with OR, group them in parentheses, and join the concepts "
                      "with AND. Use MeSH terms ([Mesh]) and title/abstract words ([tiab]), with * for "
                      "truncation. Favour recall: do not add concepts the question does not require.",
            sections={"RESEARCH DETAILS": "\n".join(details)},
            response='A JSON object {"query": "<the PubMed query>"} and nothing else.',
        )

    def finish(self, answer: QueryAnswer, inp: QueryInput, *, strict_quotes: bool = True) -> QueryOutput:
        from leads.errors import QueryError
        from leads.search.query import parse, to_pubmed

        query = " ".join(answer.query.split())
        try:
            node = parse(query)
        except QueryError as exc:
            raise AnswerError(f"the query is not valid PubMed syntax: {exc}") from None
        return QueryOutput(query=to_pubmed(node))
