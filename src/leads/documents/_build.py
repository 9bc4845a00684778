"""Assembling a :class:`~leads.documents.model.Document`: text, sections, tables, sentences.

Two ways in. Readers that *compose* the text (JATS, PDF) use :class:`DocumentBuilder`, which
appends blocks (headings, paragraphs, table rows) with blank lines between them and records every
span as it goes. Readers that keep a file's characters *verbatim* (plain text, Markdown) find the
blocks themselves and call :func:`assemble`. Both end in the same place: sentences are segmented
block by block, so no sentence crosses a block, and blocks never cross a section boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from leads.documents.model import Document, DocumentFormat, Section, Sentence, Table
from leads.documents.sections import SectionType, classify_heading, classify_sec_type, resolve_type
from leads.documents.sentences import sentence_spans

__all__ = ["Block", "DocumentBuilder", "SourceCell", "assemble", "collapse", "expand_cells"]

BlockKind = Literal["heading", "paragraph", "caption", "row", "footnote", "reference"]
# Blocks that are segmented into sentences; the others are one unit each.
_SEGMENTED = frozenset({"paragraph", "caption", "footnote"})


def collapse(text: str) -> str:
    """Whitespace runs (line breaks, no-break and thin spaces included) to one space, trimmed."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    kind: BlockKind


@dataclass(frozen=True)
class SourceCell:
    """A table cell as the source has it, before row and column spans are expanded."""

    text: str
    rowspan: int = 1
    colspan: int = 1
    header: bool = False


def expand_cells(rows: list[list[SourceCell]]) -> tuple[list[list[str]], list[list[tuple[int, int] | None]]]:
    """Expand row/column spans into a rectangular grid.

    Returns the grid and, for each grid cell, the ``(row, index)`` of the source cell it came
    from (``None`` for padding added to ragged rows). A cell spanning 2 rows and 3 columns fills
    6 grid positions with its text. Spans are capped at 100 so a malformed ``rowspan="9999"``
    cannot blow up the grid.
    """
    grid: list[list[str]] = []
    origin: list[list[tuple[int, int] | None]] = []
    pending: dict[int, tuple[int, str, tuple[int, int]]] = {}  # column -> (rows left, text, origin)
    for r, row in enumerate(rows):
        out: list[str] = []
        org: list[tuple[int, int] | None] = []
        column = 0
        cells = iter(enumerate(row))

        while True:
            if column in pending:
                _take_pending(pending, column, out, org)
                column += 1
                continue
            item = next(cells, None)
            if item is None:
                break
            index, cell = item
            rowspan = max(1, min(cell.rowspan, 100))
            colspan = max(1, min(cell.colspan, 100))
            for _ in range(colspan):
                out.append(cell.text)
                org.append((r, index))
                if rowspan > 1:
                    pending[column] = (rowspan - 1, cell.text, (r, index))
                column += 1
        # Row-spanning cells to the right of the last cell of this row.
        for col in sorted(c for c in pending if c >= column):
            while column < col:
                out.append("")
                org.append(None)
                column += 1
            _take_pending(pending, col, out, org)
            column += 1
        grid.append(out)
        origin.append(org)
    # Cells still spanning down past the last row are dropped (the table ends there).
    width = max((len(line) for line in grid), default=0)
    for line, sources in zip(grid, origin, strict=True):
        while len(line) < width:
            line.append("")
            sources.append(None)
    return grid, origin


def _take_pending(pending: dict[int, tuple[int, str, tuple[int, int]]], column: int,
                  out: list[str], org: list[tuple[int, int] | None]) -> None:
    """Fill ``column`` of the current row from a cell spanning down from a row above."""
    left, text, source = pending[column]
    out.append(text)
    org.append(source)
    if left > 1:
        pending[column] = (left - 1, text, source)
    else:
        del pending[column]


@dataclass
class _OpenSection:
    title: str | None
    type: SectionType
    level: int
    parent: int | None
    guessed: bool
    start: int | None = None
    end: int | None = None
    heading: tuple[int, int] | None = None
    table: int | None = None


@dataclass
class DocumentBuilder:
    """Composes a document's text block by block, recording every span.

    Blocks are separated by a blank line; table rows by a single line break. Sections are opened
    and closed around the blocks they contain.
    """

    parts: list[str] = field(default_factory=list)
    pos: int = 0
    blocks: list[Block] = field(default_factory=list)
    sections: list[_OpenSection] = field(default_factory=list)
    stack: list[int] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    # -- text ------------------------------------------------------------------------------------

    def _emit(self, text: str, kind: BlockKind, separator: str = "\n\n") -> tuple[int, int]:
        if self.pos:
            self.parts.append(separator)
            self.pos += len(separator)
        start = self.pos
        self.parts.append(text)
        self.pos += len(text)
        self.blocks.append(Block(start, self.pos, kind))
        for index in self.stack:
            section = self.sections[index]
            if section.start is None:
                section.start = start
            section.end = self.pos
        return start, self.pos

    def add_block(self, text: str, kind: BlockKind = "paragraph") -> tuple[int, int] | None:
        """Append a block (whitespace collapsed); empty text adds nothing and returns ``None``."""
        text = collapse(text)
        if not text:
            return None
        return self._emit(text, kind)

    # -- sections ----------------------------------------------------------------------------------

    def open_section(self, title: str | None, *, sec_type: str | None = None,
                     force_type: SectionType | None = None) -> int:
        """Open a (sub-)section; its heading, if any, is added as a block."""
        title = collapse(title) if title else None
        parent = self.stack[-1] if self.stack else None
        parent_type = self.sections[parent].type if parent is not None else None
        own = force_type or classify_sec_type(sec_type) or classify_heading(title)
        kind = force_type or resolve_type(own, parent_type)
        level = len(self.stack)
        self.sections.append(_OpenSection(title or None, kind, level, parent,
                                          guessed=own is None and parent is None))
        index = len(self.sections) - 1
        self.stack.append(index)
        if title:
            self.sections[index].heading = self._emit(title, "heading")
        return index

    def close_section(self) -> None:
        self.stack.pop()

    @property
    def current_type(self) -> SectionType | None:
        return self.sections[self.stack[-1]].type if self.stack else None

    # -- tables --------------------------------------------------------------------------------------

    def add_table(self, *, label: str | None, caption: str | None, rows: list[list[SourceCell]],
                  header_rows: int = 0, footnotes: list[str] | None = None) -> int:
        """Append a table (as its own ``table`` section) and return its index in ``tables``."""
        label = collapse(label) if label else None
        caption = collapse(caption) if caption else None
        rows = [[SourceCell(collapse(c.text), c.rowspan, c.colspan, c.header) for c in row]
                for row in rows if row]
        notes = [n for n in (collapse(f) for f in footnotes or []) if n]
        heading = " ".join(p for p in (label, caption) if p) or None
        # A table is its own section: the caption is its heading block (segmented, since
        # captions are sentences), rows and footnotes its body.
        section_index = self.open_section(None, force_type="table")
        caption_span = self._emit(heading, "caption") if heading else None
        grid, origin = expand_cells(rows)
        spans_by_source: dict[tuple[int, int], tuple[int, int] | None] = {}
        for r, source_row in enumerate(rows):
            texts = [cell.text for cell in source_row]
            line = "\t".join(texts)
            if not line.strip():
                continue
            separator = "\n" if self.blocks and self.blocks[-1].kind in ("row", "caption") else "\n\n"
            start, _ = self._emit(line, "row", separator)
            offset = start
            for i, text in enumerate(texts):
                spans_by_source[(r, i)] = (offset, offset + len(text)) if text else None
                offset += len(text) + 1
        cell_spans = [[spans_by_source.get(o) if o is not None else None for o in org] for org in origin]
        for note in notes:
            self._emit(note, "footnote")
        section = self.sections[section_index]
        self.close_section()
        start = section.start if section.start is not None else self.pos
        end = section.end if section.end is not None else self.pos
        section.title = heading
        if caption_span is not None:
            section.heading = caption_span
        table = Table(label=label, caption=caption, footnotes=notes, rows=grid,
                      header_rows=min(header_rows, len(grid)), start=start, end=end,
                      caption_start=caption_span[0] if caption_span else None,
                      caption_end=caption_span[1] if caption_span else None,
                      cell_spans=cell_spans, image_only=not grid)
        self.tables.append(table)
        section.table = len(self.tables) - 1
        return len(self.tables) - 1

    # -- result ----------------------------------------------------------------------------------------

    def build(self, *, format: DocumentFormat, guess_introduction: bool = True, **fields: Any) -> Document:
        text = "".join(self.parts)
        sections = _finish_sections(self.sections, guess_introduction)
        return assemble(text, self.blocks, sections, self.tables, format=format, **fields)


def _finish_sections(open_sections: list[_OpenSection], guess_introduction: bool) -> list[Section]:
    """Drop empty sections (re-pointing parents), and type untyped leading body sections.

    A top-level section with an uninformative heading that comes after the abstract and before
    any methods section is the introduction ("Osteoarthritis and its treatment").
    """
    if guess_introduction:
        seen_body = False
        for section in open_sections:
            if section.level != 0:
                continue
            if section.type in ("methods", "results", "discussion", "conclusion"):
                break
            if section.type in ("abstract", "title"):
                continue
            if section.type == "introduction":
                seen_body = True
                continue
            if section.guessed and section.type == "other" and not seen_body:
                section.type = "introduction"
                for child in open_sections:
                    if _descends(open_sections, child, section):
                        child.type = "introduction" if child.type == "other" else child.type
    keep: dict[int, int] = {}
    out: list[Section] = []
    for i, section in enumerate(open_sections):
        if section.start is None or section.end is None or section.end <= section.start:
            continue
        parent = section.parent
        while parent is not None and parent not in keep:
            parent = open_sections[parent].parent
        keep[i] = len(out)
        out.append(Section(
            title=section.title, type=section.type, start=section.start, end=section.end,
            level=section.level, parent=keep[parent] if parent is not None else None,
            heading_start=section.heading[0] if section.heading else None,
            heading_end=section.heading[1] if section.heading else None,
            table=section.table,
        ))
    return out


def _descends(sections: list[_OpenSection], child: _OpenSection, ancestor: _OpenSection) -> bool:
    parent = child.parent
    while parent is not None:
        if sections[parent] is ancestor:
            return True
        parent = sections[parent].parent
    return False


def assemble(text: str, blocks: list[Block], sections: list[Section], tables: list[Table], *,
             format: DocumentFormat, **fields: Any) -> Document:
    """A Document from its text and spans; sentences are segmented within each block."""
    sentences: list[Sentence] = []
    for block in sorted(blocks, key=lambda b: b.start):
        if block.kind in _SEGMENTED:
            spans = sentence_spans(text, block.start, block.end)
        else:
            spans = _trimmed(text, block.start, block.end)
        sentences.extend(Sentence(start=s, end=e) for s, e in spans)
    return Document(text=text, format=format, sections=sections, tables=tables,
                    sentences=sentences, **fields)


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if end > start else []
