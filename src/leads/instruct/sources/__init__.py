"""Where instruction examples come from: each source turns gold data into candidate examples.

A source yields :class:`Candidate` objects (task, input, gold answer, group keys); the builder
validates each one with :func:`leads.instruct.example.make_example` and drops those leads would
refuse. Sources never invent labels: each module's docstring says what its gold is and what it
leaves out.

The sources of :func:`shared_sources` are read from the developer data folder (``shared/data``); a review project
is read by :func:`leads.instruct.sources.project.project_candidates`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from leads.tasks import TaskInput

__all__ = [
        "CallCandidate",
    "Candidate",
    "SharedSource",
    "SourceSkipped",
    "first_existing",
    "segment_around",
    "shared_sources",
    "text_key",
]


@dataclass
class Candidate:
    """A candidate example before validation."""

    task: str
    input: TaskInput | dict[str, Any]
    answer: BaseModel | dict[str, Any] | list[Any]
    item: str
    groups: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass
class CallCandidate:
    """A logged model call proposed as an example (see :func:`leads.instruct.example.make_call_example`)."""

    task: str
    messages: list[dict[str, Any]]
    raw_output: str
    item: str
    groups: list[str]
    notes: list[str] = field(default_factory=list)


class SourceSkipped(Exception):
    """A source whose files are not there (the builder reports it and goes on)."""


@dataclass(frozen=True)
class SharedSource:
    """A source in the shared developer data: its name, licence, tasks and reader."""

    name: str
    licence: str
    tasks: tuple[str, ...]
    read: Callable[[Path, int | None], Iterator[Candidate]]
    description: str


def text_key(text: str) -> str:
    """A group key for a document known by its text only (records without identifiers)."""
    normal = re.sub(r"\s+", " ", text.casefold()).strip()
    return "text:" + hashlib.sha1(normal.encode("utf-8")).hexdigest()[:16]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def segment_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence (within its line) that holds ``text[start:end]``, as offsets; widened to whole
    sentences when the span crosses a boundary."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    seg_start, seg_end = line_start, line_end
    for match in _SENTENCE_END.finditer(text, line_start, line_end):
        if match.end() <= start:
            seg_start = match.end()
        elif match.start() >= end:
            seg_end = match.start()
            break
    while seg_start < seg_end and text[seg_start].isspace():
        seg_start += 1
    while seg_end > seg_start and text[seg_end - 1].isspace():
        seg_end -= 1
    return seg_start, seg_end


@functools.cache
def shared_sources() -> dict[str, SharedSource]:
    """Every shared-data source by name, in build order."""
    from leads.instruct.sources import corpora, registry, screening, search

    found: dict[str, SharedSource] = {}
    for module in (screening, search, registry, corpora):
        for source in module.SOURCES:
            found[source.name] = source
    return found


def first_existing(paths: Iterable[Path]) -> Path:
    for path in paths:
        if path.exists():
            return path
    raise SourceSkipped(f"none of {[str(p) for p in paths]} exists")
