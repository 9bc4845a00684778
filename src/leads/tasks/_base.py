"""What a task is: input model, the answer a model emits (LEADS JSON keys), the validated output.

A :class:`Task` is defined once and run by any engine. LLM engines send :meth:`Task.messages`
with :meth:`Task.answer_schema` as the structured-output schema, validate the reply against
``answer_model`` and turn it into ``output_model`` with :meth:`Task.finish` (which grounds quotes
in the source text). The classic engine produces ``output_model`` directly.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from leads.grounding import locate

__all__ = [
    "AnswerError",
    "Evidence",
    "Message",
    "Task",
    "TaskInput",
    "TaskOutput",
    "enum_property",
    "exact_items",
    "ground_quotes",
    "leads_prompt",
    "truncate_text",
]


class Message(TypedDict):
    role: str
    content: str


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Evidence(BaseModel):
    """A supporting quote located in the source text: ``text[start:end] == quote``."""

    model_config = ConfigDict(extra="forbid")

    quote: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    score: float = Field(default=1.0, ge=0, le=1)


class AnswerError(ValueError):
    """The model's answer is valid JSON of the right shape but wrong in content (e.g. a quote
    that is not in the paper, or one evaluation too few); the message is fed back in a re-ask."""


InputT = TypeVar("InputT", bound=TaskInput)
AnswerT = TypeVar("AnswerT", bound=BaseModel)
OutputT = TypeVar("OutputT", bound=TaskOutput)


class Task(ABC, Generic[InputT, AnswerT, OutputT]):
    """One of leads' tasks. Subclasses set the class attributes and implement the three methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    prompt_version: ClassVar[str] = "1"
    input_model: ClassVar[type[TaskInput]]
    answer_model: ClassVar[type[BaseModel]]
    output_model: ClassVar[type[TaskOutput]]

    @abstractmethod
    def messages(self, inp: InputT, *, text_budget: int | None = None) -> list[Message]:
        """The LEADS-style prompt for this input (text cut to ``text_budget`` characters)."""

    @abstractmethod
    def finish(self, answer: AnswerT, inp: InputT, *, strict_quotes: bool = True) -> OutputT:
        """Turn a schema-valid answer into the output, grounding quotes in the input's text.

        Raises :class:`AnswerError` for content errors a re-ask could fix; with
        ``strict_quotes=False`` quotes that cannot be located are flagged instead of raising.
        """

    @property
    def schema_id(self) -> str:
        return f"leads.{self.name}.v{self.prompt_version}"

    def answer_schema(self, inp: InputT | None = None) -> dict[str, Any]:
        """JSON schema of the answer, for ``response_format`` / grammar-constrained decoding.

        Given the input, tasks narrow it (exactly one evaluation per criterion, group ids and
        field names from the input), so constrained decoding enforces what validation checks.
        """
        return self.answer_model.model_json_schema()

    def parse_answer(self, raw: str) -> AnswerT:
        """Parse and validate a raw model reply (JSON, possibly inside a Markdown code fence)."""
        text = _strip_code_fence(raw)
        return self.answer_model.model_validate_json(text)  # type: ignore[return-value]

    def validate_input(self, data: Any) -> InputT:
        return self.input_model.model_validate(data)  # type: ignore[return-value]


def exact_items(schema: dict[str, Any], count: int) -> None:
    """Require exactly ``count`` items of an array schema."""
    schema["minItems"] = schema["maxItems"] = count


def enum_property(schema: dict[str, Any], definition: str, prop: str, values: list[str]) -> None:
    """Restrict ``$defs[definition].properties[prop]`` to the given values."""
    target = schema["$defs"][definition]["properties"][prop]
    for key in ("anyOf", "type", "maxLength", "minLength"):
        target.pop(key, None)
    target["enum"] = list(dict.fromkeys(values))


def _strip_code_fence(raw: str) -> str:
    text = raw.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else text[3:]
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text.strip()


def truncate_text(text: str, budget: int | None) -> str:
    """Cut text to a character budget at a paragraph or sentence boundary, marking the cut."""
    if budget is None or len(text) <= budget:
        return text
    cut = text[:budget]
    for sep in ("\n\n", "\n", ". "):
        position = cut.rfind(sep)
        if position > budget * 0.8:
            cut = cut[: position + len(sep)]
            break
    return cut.rstrip() + "\n[... text truncated ...]"


def leads_prompt(context: str, objective: str, sections: dict[str, str], response: str) -> list[Message]:
    """A single user turn with the section headings the LEADS model was trained on."""
    parts = [f"# CONTEXT #\n{context.strip()}", f"# OBJECTIVE #\n{objective.strip()}"]
    parts.extend(f"# {heading} #\n{body.strip()}" for heading, body in sections.items())
    parts.append(f"# RESPONSE #\n{response.strip()}")
    return [{"role": "user", "content": "\n\n".join(parts)}]


def ground_quotes(
    quotes: list[str], text: str, *, strict: bool, where: str
) -> tuple[list[Evidence], list[str]]:
    """Locate quotes; in strict mode a missing quote raises :class:`AnswerError` naming ``where``."""
    found: list[Evidence] = []
    missing: list[str] = []
    for quote in quotes:
        if not quote or not quote.strip():
            continue
        span = locate(quote, text)
        if span is None:
            missing.append(quote)
        else:
            found.append(Evidence(quote=span.text, start=span.start, end=span.end, score=span.score))
    if missing and strict:
        raise AnswerError(
            f"{where}: these quotes are not in the text; quote the text word for word: "
            + json.dumps(missing, ensure_ascii=False)
        )
    return found, missing
