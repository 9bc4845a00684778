"""One instruction example: a task input, its gold answer, and the conversation a model learns from.

An :class:`Example` is built with :func:`make_example`, which

1. validates the input with the task's own input model,
2. cuts the paper's text to the character budget exactly as an LLM engine does (the example's
   stored input is the cut text, so replaying it sends the very prompt the model learnt from),
3. validates the gold answer with the task's answer model and **runs the task's own**
   :meth:`~leads.tasks.Task.finish` **on it with strict quotes**: an answer whose quotes are not
   in the (cut) text, whose criteria or groups do not match the input, or whose query does not
   parse is refused with :class:`ExampleRejected`, so every example is an answer leads accepts,
4. renders the prompt with :meth:`~leads.tasks.Task.messages` (the code every engine uses) and
   appends the answer, serialised from the answer model, as the assistant turn.

Examples travel as JSON Lines: ``{"messages": [...], "meta": {...}}``; ``meta`` holds the task,
source, licence, group keys, the input (as a JSON string, so that a JSONL loader sees one schema
for every task) and the normalised input hash used for deduplication.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from leads.errors import FormatError, LeadsError
from leads.tasks import TASKS, Message, Task, TaskInput
from leads.tasks._base import truncate_text

__all__ = [
    "DEFAULT_TEXT_BUDGET",
    "Example",
    "ExampleRejected",
    "answer_json",
    "input_hash",
    "make_call_example",
    "make_example",
    "normalise_text",
    "read_examples",
    "unsupported_quotes",
    "write_examples",
]

#: Characters of paper text in a prompt: the default of :class:`leads.engines.LLMEngine`.
DEFAULT_TEXT_BUDGET = 24_000


class ExampleRejected(LeadsError):
    """A candidate example that leads would not accept (says which source item and why)."""


@dataclass
class Example:
    """A validated instruction example."""

    task: str
    source: str
    item: str
    messages: list[Message]
    input: dict[str, Any]
    answer: Any
    groups: list[str]
    licence: str
    hash: str
    split: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def user_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "meta": {
                "task": self.task,
                "source": self.source,
                "item": self.item,
                "split": self.split,
                "groups": self.groups,
                "licence": self.licence,
                "hash": self.hash,
                "input": json.dumps(self.input, ensure_ascii=False),
                "notes": self.notes,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = "") -> Example:
        try:
            meta = data["meta"]
            messages = data["messages"]
            answer = json.loads(messages[-1]["content"])
            return cls(task=meta["task"], source=meta["source"], item=meta["item"], messages=messages,
                       input=json.loads(meta["input"]), answer=answer, groups=list(meta["groups"]),
                       licence=meta.get("licence", ""), hash=meta["hash"], split=meta.get("split"),
                       notes=list(meta.get("notes") or []))
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise FormatError(f"not a leads instruction example: {exc!r}", source=where or None) from None


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: the form inputs are compared in."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def input_hash(task: str, messages: Sequence[Message]) -> str:
    """SHA-256 of the task name and the normalised prompt (everything but the answer)."""
    prompt = "\n".join(normalise_text(m["content"]) for m in messages if m["role"] != "assistant")
    return hashlib.sha256(f"{task}\n{prompt}".encode()).hexdigest()


def answer_json(answer: BaseModel) -> str:
    """The answer as the model should write it: the answer model's JSON, keys in schema order."""
    return json.dumps(answer.model_dump(mode="json"), ensure_ascii=False)


def _cut_input(task: Task, inp: TaskInput, budget: int | None) -> TaskInput:
    """The input with its text cut as :meth:`Task.messages` cuts it for ``budget``."""
    if budget is None:
        return inp
    data = inp.model_dump()
    if task.name == "eligibility":
        content = inp.content  # type: ignore[attr-defined]
        if len(content) <= budget:
            return inp
        data["title"] = None
        data["text"] = truncate_text(content, budget)
    elif "text" in data:
        if len(data["text"]) <= budget:
            return inp
        data["text"] = truncate_text(data["text"], budget)
    else:
        return inp
    return task.validate_input(data)


def unsupported_quotes(value: Any) -> list[str]:
    """Every non-empty ``unsupported_quotes`` list inside a task output (as JSON)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "unsupported_quotes" and item:
                found.extend(item)
            else:
                found.extend(unsupported_quotes(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(unsupported_quotes(item))
    return found


def _check_schema(task: Task, inp: TaskInput, answer: Any, where: str) -> None:
    """Check the answer against the input-narrowed JSON schema engines decode with (when the
    optional ``jsonschema`` package is there; the task's ``finish`` checks the same things)."""
    try:
        import jsonschema
    except ModuleNotFoundError:  # pragma: no cover - jsonschema comes with the dev tools
        return
    try:
        jsonschema.validate(answer, task.answer_schema(inp))
    except jsonschema.ValidationError as exc:
        raise ExampleRejected(f"{where}: the answer breaks the task's schema: {exc.message}") from None


def make_example(
    task_name: str,
    inp: TaskInput | dict[str, Any],
    answer: BaseModel | dict[str, Any] | list[Any],
    *,
    source: str,
    item: str,
    groups: Iterable[str],
    licence: str,
    text_budget: int | None = DEFAULT_TEXT_BUDGET,
    notes: Iterable[str] = (),
) -> Example:
    """Build and validate one example (see the module docstring); raises :class:`ExampleRejected`."""
    where = f"{source} {item} ({task_name})"
    task = TASKS.get(task_name)
    if task is None:
        raise LeadsError(f"unknown task {task_name!r}; tasks: {', '.join(TASKS)}")
    try:
        parsed_input = inp if isinstance(inp, TaskInput) else task.validate_input(inp)
        cut = _cut_input(task, parsed_input, text_budget)
    except ValidationError as exc:
        raise ExampleRejected(f"{where}: invalid input: {_first_error(exc)}") from None
    try:
        raw = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
        gold = task.answer_model.model_validate(raw)
    except ValidationError as exc:
        raise ExampleRejected(f"{where}: invalid answer: {_first_error(exc)}") from None
    serialised = answer_json(gold)
    _check_schema(task, cut, json.loads(serialised), where)
    try:
        output = task.finish(task.parse_answer(serialised), cut, strict_quotes=True)
    except (ValidationError, ValueError) as exc:  # AnswerError is a ValueError
        reason = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ExampleRejected(f"{where}: leads would refuse this answer: {reason}") from None
    unsupported = unsupported_quotes(output.model_dump(mode="json"))
    if unsupported:
        raise ExampleRejected(f"{where}: quotes not in the text: {unsupported[:3]}")
    messages: list[Message] = [*task.messages(cut, text_budget=None), {"role": "assistant", "content": serialised}]
    key_groups = sorted(set(groups))
    if not key_groups:
        raise ExampleRejected(f"{where}: no group key (needed for a leak-free split)")
    return Example(task=task_name, source=source, item=item, messages=messages,
                   input=cut.model_dump(mode="json"), answer=json.loads(serialised), groups=key_groups,
                   licence=licence, hash=input_hash(task_name, messages), notes=list(notes))


def make_call_example(
    task_name: str,
    messages: Sequence[dict[str, Any]],
    raw_output: str,
    *,
    source: str,
    item: str,
    groups: Iterable[str],
    licence: str,
    notes: Iterable[str] = (),
) -> Example:
    """An example from a logged model call whose output leads validated and a person accepted.

    The prompt is the call's original request (the messages before the first answer: a re-ask's
    conversation is not kept), exactly as the engine built it with the task's prompt code; the
    answer is the call's reply parsed with the task's answer model and serialised again. The
    task input is not in the call log, so ``input`` is empty (such examples cannot be replayed).
    """
    where = f"{source} {item} ({task_name})"
    task = TASKS.get(task_name)
    if task is None:
        raise ExampleRejected(f"{where}: unknown task {task_name!r}")
    request: list[Message] = []
    for message in messages:
        if message.get("role") == "assistant":
            break
        request.append({"role": str(message["role"]), "content": str(message["content"])})
    if not request or request[-1]["role"] != "user":
        raise ExampleRejected(f"{where}: the call has no user prompt")
    try:
        answer = task.parse_answer(raw_output)
    except (ValidationError, ValueError) as exc:
        reason = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ExampleRejected(f"{where}: the call's answer does not parse: {reason}") from None
    serialised = answer_json(answer)
    full: list[Message] = [*request, {"role": "assistant", "content": serialised}]
    key_groups = sorted(set(groups))
    if not key_groups:
        raise ExampleRejected(f"{where}: no group key (needed for a leak-free split)")
    return Example(task=task_name, source=source, item=item, messages=full, input={},
                   answer=json.loads(serialised), groups=key_groups, licence=licence,
                   hash=input_hash(task_name, full), notes=list(notes))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"]) or "(root)"
    return f"{loc}: {error['msg']}"


def write_examples(path: Path, examples: Iterable[Example]) -> int:
    """Write examples as JSON Lines; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for example in examples:
            fh.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_examples(path: Path) -> Iterator[Example]:
    """Read examples written by :func:`write_examples`."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"invalid JSON: {exc.msg}", source=str(path), line=number) from None
            yield Example.from_json(data, where=f"{path}:{number}")
