"""The view of a paper the results extractor works on: prose sentences and table grids.

Offsets are always into the text the task was given (``ResultsInput.text``), so every value
found can be grounded there. The structure comes from :mod:`leads.documents` when it is
available: a :class:`~leads.documents.model.Document` registered with :func:`remember_document`
(the CLI and the evaluation read a PMC XML or PDF file into a Document and pass its ``text``), or
one parsed from the text itself (Markdown pipe tables, plain text). Tables that a document
reader renders as tab-separated rows are recognised in plain text too, so the extractor also
works on a Document's text that arrives without its Document.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DocView",
    "SentenceView",
    "TableView",
    "doc_view",
    "forget_documents",
    "remember_document",
]


@dataclass
class TableView:
    """A table as an expanded cell grid with spans into the text."""

    index: int
    caption: str
    footnotes: str
    rows: list[list[str]]
    header_rows: int
    cell_spans: list[list[tuple[int, int] | None]]
    start: int
    end: int
    caption_span: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    def cell(self, r: int, c: int) -> str:
        row = self.rows[r]
        return row[c] if c < len(row) else ""

    def span(self, r: int, c: int) -> tuple[int, int] | None:
        if r < len(self.cell_spans) and c < len(self.cell_spans[r]):
            return self.cell_spans[r][c]
        return None


@dataclass
class SentenceView:
    start: int
    end: int
    text: str
    section: str | None = None
    section_type: str | None = None


@dataclass
class DocView:
    text: str
    tables: list[TableView] = field(default_factory=list)
    sentences: list[SentenceView] = field(default_factory=list)
    source: str = "text"  # document | markdown | text | fallback


_REGISTRY: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()
_REGISTRY_SIZE = 64


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def remember_document(document: Any) -> None:
    """Register a :class:`leads.documents.model.Document` so that a task given its ``text``
    uses its tables and sentences (kept for the last 64 documents)."""
    with _LOCK:
        _REGISTRY[_key(document.text)] = document
        _REGISTRY.move_to_end(_key(document.text))
        while len(_REGISTRY) > _REGISTRY_SIZE:
            _REGISTRY.popitem(last=False)


def forget_documents() -> None:
    with _LOCK:
        _REGISTRY.clear()


def _registered(text: str) -> Any | None:
    with _LOCK:
        return _REGISTRY.get(_key(text))


def doc_view(text: str, document: Any | None = None) -> DocView:
    """Sentences and tables of ``text`` (using ``document`` or a registered one when it matches)."""
    doc = document if document is not None and getattr(document, "text", None) == text else _registered(text)
    source = "document"
    if doc is None:
        doc, source = _parse(text)
    view = _from_document(text, doc, source) if doc is not None else DocView(text=text, source="fallback")
    covered = [(t.start, t.end) for t in view.tables]
    for table in _tab_tables(text, start_index=len(view.tables)):
        if not any(table.start < e and s < table.end for s, e in covered):
            view.tables.append(table)
    if not view.sentences:
        view.sentences = _fallback_sentences(text, view.tables)
    else:
        view.sentences = [s for s in view.sentences
                          if not any(t.start <= s.start < t.end for t in view.tables)]
    return view


def _parse(text: str) -> tuple[Any | None, str]:
    try:
        from leads.documents.text import read_markdown, read_text
    except ImportError:  # pragma: no cover - leads.documents is part of leads
        return None, "fallback"
    looks_markdown = bool(re.search(r"^\s*#{1,6}\s|^\s*\|.*\|\s*$", text, re.MULTILINE))
    try:
        if looks_markdown:
            return read_markdown(text, source="<results input>"), "markdown"
        return read_text(text, source="<results input>"), "text"
    except Exception:
        return None, "fallback"


def _from_document(text: str, doc: Any, source: str) -> DocView:
    tables: list[TableView] = []
    for i, table in enumerate(getattr(doc, "tables", []) or []):
        if not table.rows:
            continue
        caption = " ".join(p for p in (table.label, table.caption) if p)
        caption_span = (table.caption_start, table.caption_end) if table.caption_start is not None else None
        tables.append(TableView(
            index=i, caption=caption, footnotes=" ".join(table.footnotes or []),
            rows=[list(r) for r in table.rows], header_rows=int(table.header_rows or 0),
            cell_spans=[[tuple(s) if s is not None else None for s in row] for row in table.cell_spans],
            start=table.start, end=table.end, caption_span=caption_span))
    for table in tables:
        if table.header_rows == 0:
            table.header_rows = _guess_header_rows(table.rows)
    sections = list(getattr(doc, "sections", []) or [])
    sentences: list[SentenceView] = []
    for s in getattr(doc, "sentences", []) or []:
        if s.end <= s.start:
            continue
        section = _innermost(sections, s.start)
        if section is not None and section.type in ("table", "figure"):
            continue
        sentences.append(SentenceView(s.start, s.end, text[s.start:s.end],
                                      section.title if section is not None else None,
                                      section.type if section is not None else None))
    return DocView(text=text, tables=tables, sentences=sentences, source=source)


def _innermost(sections: list[Any], offset: int) -> Any | None:
    best = None
    for section in sections:
        if section.start <= offset < section.end and (best is None or section.level >= best.level):
            best = section
    return best


_NUMERIC = re.compile(r"\d")
_NUMERIC_HEADER = re.compile(r"\(?\s*[nN]\s*=\s*\d+\s*\)?|\d{4}|\b[Tt]\d\b|\d+\s*(?:months?|weeks?|days?|years?|hours?)")


def _guess_header_rows(rows: list[list[str]]) -> int:
    """Leading rows whose cells (after the first) carry no data numbers are header rows."""
    count = 0
    for row in rows:
        cells = [c for c in row[1:] if c.strip()]
        if not cells:
            if count == 0:
                return 0
            break
        if any(_NUMERIC.search(_NUMERIC_HEADER.sub("", c)) for c in cells):
            break
        count += 1
        if count >= 3:
            break
    return count if count < len(rows) else 0


def _tab_tables(text: str, start_index: int = 0) -> list[TableView]:
    """Runs of two or more tab-separated lines (how leads' readers render tables) as tables."""
    tables: list[TableView] = []
    run: list[re.Match[str]] = []
    for m in re.finditer(r"^[^\n]*$", text, re.MULTILINE):
        if "\t" in m.group(0) and m.group(0).strip():
            run.append(m)
            continue
        if len(run) >= 2:
            tables.append(_table_from_lines(text, run, start_index + len(tables)))
        run = []
    if len(run) >= 2:
        tables.append(_table_from_lines(text, run, start_index + len(tables)))
    return tables


def _table_from_lines(text: str, run: list[re.Match[str]], index: int) -> TableView:
    rows: list[list[str]] = []
    spans: list[list[tuple[int, int] | None]] = []
    for m in run:
        cells: list[str] = []
        cell_spans: list[tuple[int, int] | None] = []
        offset = m.start()
        for part in m.group(0).split("\t"):
            stripped = part.strip()
            lead = len(part) - len(part.lstrip())
            cells.append(stripped)
            cell_spans.append((offset + lead, offset + lead + len(stripped)) if stripped else None)
            offset += len(part) + 1
        rows.append(cells)
        spans.append(cell_spans)
    width = max(len(r) for r in rows)
    for row, row_spans in zip(rows, spans, strict=True):
        while len(row) < width:
            row.append("")
            row_spans.append(None)
    start, end = run[0].start(), run[-1].end()
    caption = ""
    caption_span = None
    before = text[:start].rstrip("\n")
    previous = before[before.rfind("\n") + 1:]
    if re.match(r"\s*Table\s*\w+", previous, re.IGNORECASE):
        caption = previous.strip()
        caption_start = len(before) - len(previous) + (len(previous) - len(previous.lstrip()))
        caption_span = (caption_start, caption_start + len(caption))
        start = caption_start
    return TableView(index=index, caption=caption, footnotes="", rows=rows,
                     header_rows=_guess_header_rows(rows), cell_spans=spans, start=start, end=end,
                     caption_span=caption_span)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z(\[])|\n{2,}|\n(?=#)")


def _fallback_sentences(text: str, tables: list[TableView]) -> list[SentenceView]:
    try:
        from leads.documents.sentences import sentence_spans
        spans = sentence_spans(text)
    except ImportError:  # pragma: no cover
        spans = []
        start = 0
        for m in _SENTENCE_END.finditer(text):
            spans.append((start, m.start()))
            start = m.end()
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        if e <= s or any(t.start <= s < t.end for t in tables):
            continue
        out.append(SentenceView(s, e, text[s:e]))
    return out
