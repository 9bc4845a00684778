"""The full-text document model: one flat text and everything else as offsets into it.

``Document.text`` is the coordinate system of every offset leads stores: section spans, table
spans and cell spans, sentence spans, and the evidence spans of extracted values. Readers build
the text (JATS, PDF) or take it verbatim (plain text, Markdown: the file's own characters), so a
quote located in ``text`` can always be highlighted in what the reviewer sees.

Sections nest (``level``, ``parent``); a section's span runs from its heading to the end of its
last block, so it contains its sub-sections. Tables are rendered into the text as a caption
line, one line per row with cells separated by tabs, and footnotes; each cell knows its span, so
a quote from a table cell is found and attributed to its row and column.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from leads.documents.sections import SectionType
from leads.grounding import Span, locate_every, normalize_with_map

__all__ = [
    "PARSER_VERSION",
    "CellRef",
    "Document",
    "DocumentFormat",
    "Evidence",
    "Located",
    "Section",
    "Sentence",
    "Table",
]

PARSER_VERSION = "1"

DocumentFormat = Literal["jats", "pdf", "text", "markdown"]


class Section(BaseModel):
    """A section: its heading (``title``), type, span in the text, and place in the hierarchy.

    ``start``/``end`` cover the heading and the whole body, sub-sections included;
    ``heading_start``/``heading_end`` cover the heading alone (``None`` for untitled sections).
    """

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    type: SectionType
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    level: int = Field(default=0, ge=0)
    parent: int | None = None
    heading_start: int | None = None
    heading_end: int | None = None
    table: int | None = None  # index into Document.tables for type == "table"


class Table(BaseModel):
    """A table as a cell grid, with where its caption and each cell lie in the text.

    ``rows`` is the expanded grid (row and column spans repeated into every cell they cover, so
    every row has the same length); ``header_rows`` says how many of the first rows are the
    header. ``cell_spans[r][c]`` is ``[start, end]`` of the cell's text in ``Document.text``
    (repeated cells share their span; empty cells have ``None``).
    """

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    caption: str | None = None
    footnotes: list[str] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list)
    header_rows: int = 0
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    caption_start: int | None = None
    caption_end: int | None = None
    cell_spans: list[list[tuple[int, int] | None]] = Field(default_factory=list)
    image_only: bool = False  # the source has the table only as a picture: caption, no cells

    @property
    def header(self) -> list[list[str]]:
        return self.rows[: self.header_rows]

    @property
    def body(self) -> list[list[str]]:
        return self.rows[self.header_rows:]


class Sentence(BaseModel):
    """A sentence (or a heading, or a table row) as a span of the text."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class CellRef(BaseModel):
    """A table cell: table index, row and column in the expanded grid."""

    table: int
    row: int
    column: int


class Located(BaseModel):
    """Where a quote was found: the span, how it matched, and where it lies in the document."""

    start: int
    end: int
    text: str
    score: float
    method: str  # exact | normalized | fuzzy
    section: str | None = None  # the innermost section's title
    section_type: SectionType | None = None
    sentence_start: int | None = None
    sentence_end: int | None = None
    cell: CellRef | None = None


class Evidence(BaseModel):
    """A quote offered as evidence, and whether the document supports it.

    ``supported`` is ``False`` when the quote could not be located: such a quote is flagged to
    the reviewer and never shown as evidence.
    """

    quote: str
    supported: bool
    spans: list[Located] = Field(default_factory=list)


class Document(BaseModel):
    """A parsed full-text article (or any text) linked to its identifiers."""

    model_config = ConfigDict(extra="forbid")

    text: str
    format: DocumentFormat
    source: str | None = None
    sha256: str | None = None
    parser_version: str = PARSER_VERSION
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    nct_ids: list[str] = Field(default_factory=list)
    title: str | None = None
    journal: str | None = None
    year: int | None = None
    authors: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    sentences: list[Sentence] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _sentence_starts: list[int] | None = PrivateAttr(default=None)
    _normalized: tuple[str, list[int]] | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # Field values only: the lookup caches (private attributes) do not make documents differ.
        if not isinstance(other, Document):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    # -- serialisation -----------------------------------------------------------------------

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent, exclude_defaults=False)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Document:
        if isinstance(data, dict):
            return cls.model_validate(data)
        return cls.model_validate(json.loads(data))

    # -- navigation ---------------------------------------------------------------------------

    def section_for(self, offset: int) -> Section | None:
        """The innermost section containing ``offset``, or ``None`` (e.g. between sections)."""
        best: Section | None = None
        for section in self.sections:
            if section.start <= offset < section.end and (best is None or section.level >= best.level):
                best = section
        return best

    def section_path(self, offset: int) -> list[Section]:
        """The sections containing ``offset``, outermost first."""
        innermost = self.section_for(offset)
        path: list[Section] = []
        while innermost is not None:
            path.append(innermost)
            innermost = self.sections[innermost.parent] if innermost.parent is not None else None
        return path[::-1]

    def sentence_at(self, offset: int) -> Sentence | None:
        """The sentence containing ``offset``, or ``None`` when ``offset`` is between sentences."""
        if self._sentence_starts is None:
            self._sentence_starts = [s.start for s in self.sentences]
        i = bisect.bisect_right(self._sentence_starts, offset) - 1
        if i >= 0 and self.sentences[i].start <= offset < self.sentences[i].end:
            return self.sentences[i]
        return None

    def sentences_in(self, section_type: str) -> list[Sentence]:
        """The sentences inside any section of ``section_type`` (sub-sections included)."""
        spans = sorted((s.start, s.end) for s in self.sections if s.type == section_type)
        out: list[Sentence] = []
        for sentence in self.sentences:
            for start, end in spans:
                if start <= sentence.start and sentence.end <= end:
                    out.append(sentence)
                    break
        return out

    def sentence_text(self, sentence: Sentence) -> str:
        return self.text[sentence.start:sentence.end]

    def iter_sentences(self) -> Iterator[str]:
        for sentence in self.sentences:
            yield self.text[sentence.start:sentence.end]

    def section_text(self, section: Section | int) -> str:
        s = self.sections[section] if isinstance(section, int) else section
        return self.text[s.start:s.end]

    def text_of_table(self, index: int) -> str:
        """The table as it appears in the text (caption, tab-separated rows, footnotes)."""
        table = self.tables[index]
        return self.text[table.start:table.end]

    def cell_at(self, offset: int) -> CellRef | None:
        """The table cell whose text contains ``offset``, if any."""
        for t_index, table in enumerate(self.tables):
            if not table.start <= offset < table.end:
                continue
            for r, row in enumerate(table.cell_spans):
                for c, span in enumerate(row):
                    if span is not None and span[0] <= offset < span[1]:
                        return CellRef(table=t_index, row=r, column=c)
        return None

    # -- grounding -----------------------------------------------------------------------------

    def _normalized_text(self) -> tuple[str, list[int]]:
        if self._normalized is None:
            self._normalized = normalize_with_map(self.text)
        return self._normalized

    def locate(self, quote: str, *, min_score: float = 0.9, limit: int | None = None) -> list[Located]:
        """Every place ``quote`` occurs (exact, else after normalising, else the best fuzzy match).

        Returns an empty list when the quote is not in the document.
        """
        spans = locate_every(quote, self.text, min_score=min_score, limit=limit,
                             normalized=self._normalized_text())
        return [self._located(span) for span in spans]

    def evidence(self, quote: str, *, min_score: float = 0.9) -> Evidence:
        """``quote`` checked against the document: supported with its spans, or unsupported."""
        spans = self.locate(quote, min_score=min_score)
        return Evidence(quote=quote, supported=bool(spans), spans=spans)

    def _located(self, span: Span) -> Located:
        section = self.section_for(span.start)
        sentence = self.sentence_at(span.start)
        return Located(
            start=span.start,
            end=span.end,
            text=span.text,
            score=span.score,
            method=span.method,
            section=section.title if section else None,
            section_type=section.type if section else None,
            sentence_start=sentence.start if sentence else None,
            sentence_end=sentence.end if sentence else None,
            cell=self.cell_at(span.start),
        )

    # -- summaries ----------------------------------------------------------------------------

    def outline(self) -> list[dict[str, Any]]:
        """Sections as plain dicts (title, type, level, span, sentence count) for display."""
        starts = [s.start for s in self.sentences]
        rows = []
        for section in self.sections:
            first = bisect.bisect_left(starts, section.start)
            last = bisect.bisect_left(starts, section.end)
            rows.append({"title": section.title, "type": section.type, "level": section.level,
                         "start": section.start, "end": section.end, "sentences": last - first})
        return rows
