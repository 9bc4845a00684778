"""Plain text and Markdown to a :class:`~leads.documents.model.Document`, verbatim.

The document text *is* the file's content (decoded; a UTF-8 byte-order mark dropped), so every
offset leads reports points into the file as the user has it. Structure is found, not imposed:

- headings: Markdown ATX (``## Methods``) and setext headings; in plain text, a short line on its
  own with no closing punctuation (``Statistical analysis``), a numbered heading
  (``2.1 Participants``), or an upper-case label line ending in a colon (``BODY.METHODS:``, the
  evidence-inference layout, where ``ABSTRACT.*`` parts are grouped under one abstract section);
- paragraphs: blank-line separated. When a file is not hard-wrapped (long lines, one paragraph
  per line) every line is a paragraph of its own;
- Markdown pipe tables become cell grids (with each cell's span in the file), captioned by a
  ``Table 1: ...`` line just before or a ``Table: ...`` line just after.

Pandoc simple and multiline tables (column rules of dashes) and ``::: caption`` divs are read
too, since that is what pandoc writes. Markdown whose headings were run into one long line
(``# Abstract ## Background Limited ...``, as in the llm-meta-analysis texts) is recognised; the
heading title then ends at a known section name or at the first word that can only start the
body, which is a guess.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from leads.documents._build import (
    Block,
    SourceCell,
    _finish_sections,
    _OpenSection,
    assemble,
    expand_cells,
)
from leads.documents.model import Document, DocumentFormat, Table
from leads.documents.sections import (
    SectionType,
    classify_heading,
    clean_heading,
    is_major_heading,
    resolve_type,
)
from leads.documents.sentences import OPENERS as _OPENERS
from leads.errors import FormatError
from leads.records import find_identifiers

__all__ = ["decode_text", "read_markdown", "read_text"]

_LINE = re.compile(r"[^\n]*\n?")
_LABEL_HEADING = re.compile(r"^([A-Z][A-Z0-9 .,&/()'\-]*?)\s*:\s*$")
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+[A-Z]")
_TERMINAL = ".;,!?"
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_DIV_FENCE = re.compile(r"^ {0,3}:{3,}")
_CAPTION_BEFORE = re.compile(r"^\s*(?:\*\*|__)?(Table\s*[A-Z]?\d+[a-z]?)\.?(?:\*\*|__)?[:.]?\s*(.*)$", re.IGNORECASE)
_CAPTION_AFTER = re.compile(r"^\s*(?:Table)?:\s+(.+)$")
_INLINE_HEADING = re.compile(r"(?:(?<=\s)|^)(#{1,6}) (?=\S)")


def decode_text(data: bytes, source: str) -> tuple[str, list[str]]:
    """Decode a text file: UTF-8 (BOM dropped), else Windows-1252 with a warning."""
    if b"\x00" in data[:4096]:
        raise FormatError("binary content (NUL bytes) in a text file", source=source)
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        warning = f"not valid UTF-8 (byte {exc.start}); decoded as Windows-1252"
    try:
        return data.decode("cp1252"), [warning]
    except UnicodeDecodeError:
        return data.decode("latin-1"), [warning.replace("Windows-1252", "Latin-1")]


@dataclass
class _Line:
    start: int
    end: int  # without the line break
    text: str

    @property
    def blank(self) -> bool:
        return not self.text.strip()


def _lines(text: str) -> list[_Line]:
    out = []
    for match in _LINE.finditer(text):
        if match.start() == match.end():
            break
        raw = match.group(0)
        content = raw.rstrip("\r\n")
        out.append(_Line(match.start(), match.start() + len(content), content))
    return out


def _is_wrapped(lines: list[_Line]) -> bool:
    """Whether paragraphs are hard-wrapped (a line break inside a paragraph is a space)."""
    lengths = [len(line.text) for line in lines if len(line.text.strip()) > 30]
    if len(lengths) < 3:
        return False
    short = sum(1 for n in lengths if n <= 100)
    return short / len(lengths) >= 0.9 and 40 <= statistics.median(lengths) <= 100


@dataclass
class _Heading:
    start: int
    end: int
    title: str
    level: int
    force: SectionType | None = None
    synthetic: bool = False  # no span of its own (a grouping section, e.g. the abstract)


@dataclass
class _TableDraft:
    label: str | None
    caption: str | None
    caption_span: tuple[int, int] | None
    rows: list[list[SourceCell]]
    cell_source_spans: dict[tuple[int, int], tuple[int, int] | None]
    header_rows: int
    start: int
    end: int


@dataclass
class _Outline:
    """Headings, blocks and tables found in a verbatim text, turned into a Document."""

    text: str
    headings: list[_Heading] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    tables: list[_TableDraft] = field(default_factory=list)

    def heading(self, start: int, end: int, title: str, level: int,
                force: SectionType | None = None) -> None:
        self.headings.append(_Heading(start, end, title, level, force))
        self.blocks.append(Block(start, end, "heading"))

    def block(self, start: int, end: int, kind: Any = "paragraph") -> None:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        if end > start:
            self.blocks.append(Block(start, end, kind))

    def build(self, *, format: DocumentFormat, **fields: Any) -> Document:
        text = self.text
        blocks = sorted(self.blocks, key=lambda b: (b.start, b.end))
        # Every heading and table becomes a section; a section ends at the last block before
        # the next heading of the same or a higher level.
        entries: list[tuple[int, int, str, Any]] = [(h.start, h.level, "heading", h) for h in self.headings]
        entries.sort(key=lambda e: (e[0], e[1]))
        opened: list[_OpenSection] = []
        stack: list[tuple[int, int]] = []  # (level, index)
        ordered = [e[3] for e in entries]
        for i, heading in enumerate(ordered):
            while stack and stack[-1][0] >= heading.level:
                stack.pop()
            parent = stack[-1][1] if stack else None
            parent_type = opened[parent].type if parent is not None else None
            own = heading.force or classify_heading(heading.title)
            kind = heading.force or resolve_type(own, parent_type)
            next_start = len(text)
            for later in ordered[i + 1:]:
                if later.level <= heading.level:
                    next_start = later.start
                    break
            end = max((b.end for b in blocks if heading.start <= b.start < next_start), default=heading.end)
            section = _OpenSection(clean_heading(heading.title) or heading.title, kind, heading.level,
                                   parent, guessed=own is None and parent is None,
                                   start=heading.start, end=end,
                                   heading=None if heading.synthetic else (heading.start, heading.end))
            opened.append(section)
            stack.append((heading.level, len(opened) - 1))
        tables: list[Table] = []
        for draft in self.tables:
            # The table is a sub-section of the innermost section around it.
            parent = None
            for index, section in enumerate(opened):
                if (section.start or 0) <= draft.start < (section.end or 0) and section.type != "table" and (
                        parent is None or section.level >= opened[parent].level):
                    parent = index
            level = opened[parent].level + 1 if parent is not None else 0
            title = " ".join(p for p in (draft.label, draft.caption) if p) or None
            grid, origin = expand_cells(draft.rows)
            cell_spans = [[draft.cell_source_spans.get(o) if o is not None else None for o in row]
                          for row in origin]
            tables.append(Table(
                label=draft.label, caption=draft.caption, rows=grid,
                header_rows=min(draft.header_rows, len(grid)), start=draft.start, end=draft.end,
                caption_start=draft.caption_span[0] if draft.caption_span else None,
                caption_end=draft.caption_span[1] if draft.caption_span else None,
                cell_spans=cell_spans,
            ))
            opened.append(_OpenSection(title, "table", level, parent, guessed=False,
                                       start=draft.start, end=draft.end, heading=draft.caption_span,
                                       table=len(tables) - 1))
        # Sections in text order (tables were appended last); parents re-pointed.
        order = sorted(range(len(opened)), key=lambda i: (opened[i].start or 0, opened[i].level))
        position = {old: new for new, old in enumerate(order)}
        resorted = []
        for old in order:
            section = opened[old]
            section.parent = position[section.parent] if section.parent is not None else None
            resorted.append(section)
        sections = _finish_sections(resorted, guess_introduction=True)
        return assemble(text, blocks, sections, tables, format=format, **fields)


# -- plain text ----------------------------------------------------------------------------------

def _looks_like_heading(line: str, *, alone: bool, first: bool) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > 100:
        return False
    if _LABEL_HEADING.match(stripped) and (alone or len(stripped) <= 80):
        return True
    if stripped[-1] in _TERMINAL or "\t" in stripped or "|" in stripped:
        return False
    words = stripped.split()
    if len(words) > 12 or not (stripped[0].isupper() or stripped[0].isdigit()):
        return False
    if not any(len(w) >= 3 and w[0].isalpha() for w in words):
        return False
    if alone:
        return True
    # The first line of a paragraph can be a heading when it names a known section.
    return first and len(words) <= 6 and (is_major_heading(stripped) or bool(_NUMBERED.match(stripped)))


def _heading_level(title: str, current_top: bool) -> int:
    numbered = _NUMBERED.match(title.strip())
    if numbered:
        return numbered.group(1).count(".")
    if is_major_heading(title):
        return 0
    return 1 if current_top else 0


def read_text(data: bytes | str, *, source: str = "<text>") -> Document:
    """Read a plain-text article; offsets are into the decoded file content."""
    text, warnings = (data, []) if isinstance(data, str) else decode_text(data, source)
    if not text.strip():
        raise FormatError("the file is empty", source=source)
    lines = _lines(text)
    wrapped = _is_wrapped(lines)
    outline = _Outline(text)
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    for line in lines:
        if line.blank:
            if current:
                paragraphs.append(current)
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append(current)

    have_top = False
    in_abstract = False
    pending: list[_Line] = []

    def flush() -> None:
        if not pending:
            return
        if wrapped:
            outline.block(pending[0].start, pending[-1].end)
        else:
            for item in pending:
                outline.block(item.start, item.end)
        pending.clear()

    for paragraph in paragraphs:
        for k, line in enumerate(paragraph):
            alone = len(paragraph) == 1
            if _looks_like_heading(line.text, alone=alone, first=k == 0) and (
                    alone or k == 0 or _LABEL_HEADING.match(line.text.strip())):
                flush()
                title = line.text.strip().rstrip(":").strip()
                start = line.start + (len(line.text) - len(line.text.lstrip()))
                end = line.start + len(line.text.rstrip())
                label = _LABEL_HEADING.match(line.text.strip())
                if label and "." in title and title.split(".", 1)[0] in ("ABSTRACT", "BODY", "TITLE"):
                    part, _, name = title.partition(".")
                    if part == "ABSTRACT":
                        if not in_abstract:
                            outline.headings.append(_Heading(start, start, "Abstract", 0, "abstract",
                                                             synthetic=True))
                            in_abstract = True
                        outline.heading(start, end, name, 1)
                    else:
                        in_abstract = False
                        level = 0 if is_major_heading(name) or not have_top else 1
                        outline.heading(start, end, name, level)
                        have_top = True
                elif label and title == "TITLE":
                    outline.heading(start, end, title, 0, force="title")
                else:
                    in_abstract = False
                    level = _heading_level(title, have_top)
                    outline.heading(start, end, title, level)
                    have_top = True
            else:
                pending.append(line)
        flush()
    if not outline.blocks:
        raise FormatError("the file has no text", source=source)
    return _finish(outline, "text", source, warnings)


def _finish(outline: _Outline, format: DocumentFormat, source: str, warnings: list[str]) -> Document:
    text = outline.text
    title = None
    title_heading = next((h for h in outline.headings if h.force == "title"), None)
    if title_heading is not None:
        after = [b for b in outline.blocks if b.start > title_heading.end and b.kind != "heading"]
        if after:
            title = text[after[0].start:after[0].end].strip()
    elif outline.headings and outline.headings[0].level == 0 and format == "markdown" and not is_major_heading(
            outline.headings[0].title) and outline.headings[0].start < 200:
        title = outline.headings[0].title
    ids = find_identifiers(text[:20000])
    return outline.build(
        format=format,
        title=title,
        pmid=ids["pmid"][0] if ids["pmid"] else None,
        pmcid=ids["pmcid"][0] if ids["pmcid"] else None,
        doi=ids["doi"][0] if ids["doi"] else None,
        nct_ids=ids["nct"],
        metadata={"warnings": warnings} if warnings else {},
    )


# -- Markdown ----------------------------------------------------------------------------------------

def _split_pipe_row(line: _Line) -> list[tuple[str, int, int]]:
    """Cells of a pipe-table row with their offsets (escaped pipes stay in the cell)."""
    text = line.text
    cells: list[tuple[str, int, int]] = []
    boundaries = [i for i, ch in enumerate(text) if ch == "|" and (i == 0 or text[i - 1] != "\\")]
    stripped_start = len(text) - len(text.lstrip())
    stripped_end = len(text.rstrip())
    edges = [b for b in boundaries]
    if not edges or edges[0] != stripped_start:
        edges.insert(0, stripped_start - 1)
    if edges[-1] != stripped_end - 1:
        edges.append(stripped_end)
    for a, b in itertools.pairwise(edges):
        raw = text[a + 1:b]
        lead = len(raw) - len(raw.lstrip())
        content = raw.strip()
        start = line.start + a + 1 + lead
        cells.append((content, start, start + len(content)))
    return cells


def read_markdown(data: bytes | str, *, source: str = "<markdown>") -> Document:
    """Read Markdown; offsets are into the decoded file content."""
    text, warnings = (data, []) if isinstance(data, str) else decode_text(data, source)
    if not text.strip():
        raise FormatError("the file is empty", source=source)
    lines = _lines(text)
    outline = _Outline(text)
    pending: list[_Line] = []
    caption: _Caption | None = None

    def flush() -> None:
        nonlocal caption
        if pending:
            outline.block(pending[0].start, pending[-1].end)
            pending.clear()
            caption = None

    i = 0
    fence: str | None = None
    while i < len(lines):
        line = lines[i]
        if fence is not None:
            pending.append(line)
            if line.text.strip().startswith(fence):
                fence = None
                flush()
            i += 1
            continue
        fence_match = _FENCE.match(line.text)
        if fence_match:
            flush()
            fence = fence_match.group(1)
            pending.append(line)
            i += 1
            continue
        if _DIV_FENCE.match(line.text):
            flush()
            if "caption" in line.text:
                i, caption = _caption_div(outline, lines, i)
            else:
                i += 1
            continue
        if line.blank:
            flush()
            i += 1
            continue
        if len(line.text) > 300 and _INLINE_HEADING.search(line.text, 1):
            # Headings run into one long line: "# Abstract ## Background Limited ...".
            flush()
            _read_flat_line(outline, line)
            caption = None
            i += 1
            continue
        atx = _ATX.match(line.text)
        if atx:
            flush()
            title = atx.group(2).strip()
            start = line.start + line.text.index(atx.group(2)) if atx.group(2) else line.start
            outline.heading(start, start + len(title), title, len(atx.group(1)) - 1)
            caption = None
            i += 1
            continue
        if "|" in line.text and i + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[i + 1].text) \
                and "-" in lines[i + 1].text and "|" in lines[i + 1].text + line.text.strip()[:1]:
            caption_line = pending[-1] if len(pending) == 1 and _CAPTION_BEFORE.match(pending[0].text) else None
            if caption_line is not None:
                pending.clear()
            flush()
            i = _pipe_table(outline, lines, i, caption_line)
            continue
        table_end = _pandoc_table(outline, lines, i, pending, caption)
        if table_end is not None:
            pending.clear()
            caption = None
            i = table_end
            continue
        if (i + 1 < len(lines) and not pending and _SETEXT.match(lines[i + 1].text)
                and len(line.text.strip()) <= 100 and "  " not in line.text.strip()):
            title = line.text.strip()
            start = line.start + (len(line.text) - len(line.text.lstrip()))
            level = 0 if lines[i + 1].text.strip().startswith("=") else 1
            outline.heading(start, start + len(title), title, level)
            i += 2
            continue
        if re.match(r"^\s*(?:[-*+]|\d+[.)])\s+", line.text):
            # A list item starts a block of its own.
            flush()
        pending.append(line)
        i += 1
    flush()
    if not outline.blocks:
        raise FormatError("the file has no text", source=source)
    return _finish(outline, "markdown", source, warnings)


@dataclass
class _Caption:
    text: str
    span: tuple[int, int]


def _caption_div(outline: _Outline, lines: list[_Line], i: int) -> tuple[int, _Caption | None]:
    """A pandoc ``::: caption`` div: its lines are the caption of the table that follows."""
    j = i + 1
    content: list[_Line] = []
    while j < len(lines) and not _DIV_FENCE.match(lines[j].text):
        if not lines[j].blank:
            content.append(lines[j])
        j += 1
    if not content:
        return j + 1, None
    outline.block(content[0].start, content[-1].end, "caption")
    text = " ".join(line.text.strip() for line in content).lstrip("#").strip()
    text = re.sub(r"\[([^\]]*)\]\{[^}]*\}", r"\1", text)  # [Title]{.smallcaps}
    return j + 1, _Caption(text, (content[0].start, content[-1].end))


_DASH_LINE = re.compile(r"^\s*-{3,}\s*$")
_COLUMN_RULE = re.compile(r"^\s*-{2,}(?:\s+-{2,})+\s*$")


def _columns(rule: str) -> list[int]:
    return [m.start() for m in re.finditer(r"-{2,}", rule)]


def _cut(line: _Line, columns: list[int]) -> list[tuple[str, int, int]]:
    """The pieces of ``line`` under each column.

    A column runs from its rule's first dash to the next column's. Content may overhang a
    column edge (right-aligned numbers, long headers); a word that straddles or touches an edge
    goes right when it stands apart (two or more spaces before it) and left when it continues
    the text before it.
    """
    text = line.text
    bounds = [0]
    for left in columns[1:]:
        b = min(left, len(text))
        if 0 < b < len(text) and not text[b - 1].isspace():
            t = b
            while t > bounds[-1] and not text[t - 1].isspace():
                t -= 1
            if t <= bounds[-1] or text[max(bounds[-1], t - 2):t] == "  " or t - 1 <= bounds[-1]:
                b = t
            else:
                while b < len(text) and not text[b].isspace():
                    b += 1
        bounds.append(max(b, bounds[-1]))
    bounds.append(len(text))
    pieces = []
    for a, b in itertools.pairwise(bounds):
        raw = text[a:b]
        lead = len(raw) - len(raw.lstrip())
        content = raw.strip()
        start = line.start + a + lead
        pieces.append((content, start, start + len(content)))
    return pieces


def _row_from(group: list[_Line], columns: list[int], header: bool,
              r: int, spans: dict[tuple[int, int], tuple[int, int] | None]) -> list[SourceCell]:
    """One table row from one or more lines (pandoc multiline rows wrap within their column)."""
    texts: list[list[str]] = [[] for _ in columns]
    for line in group:
        for k, (content, start, end) in enumerate(_cut(line, columns)):
            if content:
                texts[k].append(content)
                spans.setdefault((r, k), (start, end))  # the first line's piece stands for the cell
    row = []
    for k, parts in enumerate(texts):
        spans.setdefault((r, k), None)
        row.append(SourceCell(" ".join(parts), header=header))
    return row


def _pandoc_table(outline: _Outline, lines: list[_Line], i: int, pending: list[_Line],
                  caption: _Caption | None) -> int | None:
    """Read a pandoc simple or multiline table starting at ``lines[i]``; the index after it.

    Returns ``None`` when there is no such table here. Column positions come from the rule of
    dashes under the header; multiline rows are separated by blank lines.
    """
    line = lines[i]
    header_lines: list[_Line] = []
    multiline = False
    if _DASH_LINE.match(line.text) and not pending:
        # Multiline table: a full-width rule, header lines, the column rule.
        j = i + 1
        while j < len(lines) and j - i <= 8 and not _COLUMN_RULE.match(lines[j].text):
            if _DASH_LINE.match(lines[j].text):
                return None
            header_lines.append(lines[j])
            j += 1
        if j >= len(lines) or not _COLUMN_RULE.match(lines[j].text):
            return None
        rule_index = j
        multiline = True
    elif _COLUMN_RULE.match(line.text) and not pending:
        rule_index = i  # headerless
        multiline = True
    elif len(pending) == 1 and _COLUMN_RULE.match(line.text):
        header_lines = [pending[0]]
        rule_index = i
    else:
        return None
    columns = _columns(lines[rule_index].text)
    body_groups: list[list[_Line]] = []
    j = rule_index + 1
    group: list[_Line] = []
    closed = False
    while j < len(lines):
        current = lines[j]
        if _DASH_LINE.match(current.text) or (_COLUMN_RULE.match(current.text) and multiline):
            closed = True
            j += 1
            break
        if current.blank:
            if group:
                body_groups.append(group)
                group = []
            if not multiline:
                break
        else:
            if multiline:
                group.append(current)
            else:
                body_groups.append([current])
        j += 1
    if group:
        body_groups.append(group)
    if multiline and not closed:
        return None
    if not body_groups:
        return None
    spans: dict[tuple[int, int], tuple[int, int] | None] = {}
    rows: list[list[SourceCell]] = []
    header_rows = 0
    if any(not h.blank for h in header_lines):
        rows.append(_row_from([h for h in header_lines if not h.blank], columns, True, 0, spans))
        header_rows = 1
        outline.block(header_lines[0].start, header_lines[-1].end, "row")
    for body in body_groups:
        rows.append(_row_from(body, columns, False, len(rows), spans))
        outline.block(body[0].start, body[-1].end, "row")
    start = header_lines[0].start if header_lines else lines[i].start
    end = body_groups[-1][-1].end
    label = caption_text = None
    caption_span = None
    if caption is not None:
        match = _CAPTION_BEFORE.match(caption.text)
        if match and match.group(2):
            label, caption_text = match.group(1), match.group(2).strip()
        else:
            caption_text = caption.text
        caption_span = caption.span
        start = min(start, caption.span[0])
    outline.tables.append(_TableDraft(label, caption_text, caption_span, rows, spans, header_rows,
                                      start, end))
    return j


def _pipe_table(outline: _Outline, lines: list[_Line], i: int, caption_line: _Line | None) -> int:
    header = lines[i]
    body: list[_Line] = []
    j = i + 2
    while j < len(lines) and not lines[j].blank and "|" in lines[j].text:
        body.append(lines[j])
        j += 1
    caption_after: _Line | None = None
    if j + 1 < len(lines) and lines[j].blank and _CAPTION_AFTER.match(lines[j + 1].text):
        caption_after = lines[j + 1]
    elif j < len(lines) and _CAPTION_AFTER.match(lines[j].text):
        caption_after = lines[j]
    label: str | None = None
    caption: str | None = None
    caption_span: tuple[int, int] | None = None
    if caption_line is not None:
        match = _CAPTION_BEFORE.match(caption_line.text)
        assert match is not None
        label = match.group(1)
        caption = match.group(2).strip() or None
        caption_span = (caption_line.start, caption_line.end)
    elif caption_after is not None:
        match = _CAPTION_AFTER.match(caption_after.text)
        assert match is not None
        caption = match.group(1).strip()
        label_match = _CAPTION_BEFORE.match(caption)
        if label_match and label_match.group(2):
            label, caption = label_match.group(1), label_match.group(2).strip()
        caption_span = (caption_after.start, caption_after.end)
    rows: list[list[SourceCell]] = []
    spans: dict[tuple[int, int], tuple[int, int] | None] = {}
    for r, row_line in enumerate([header, *body]):
        cells = _split_pipe_row(row_line)
        rows.append([SourceCell(text=c[0], header=r == 0) for c in cells])
        for k, (content, start, end) in enumerate(cells):
            spans[(r, k)] = (start, end) if content else None
        outline.block(row_line.start, row_line.end, "row")
    if caption_span is not None:
        outline.block(caption_span[0], caption_span[1], "caption")
    start = min(header.start, caption_span[0]) if caption_span else header.start
    last = body[-1] if body else header
    end = max(last.end, caption_span[1]) if caption_span else last.end
    outline.tables.append(_TableDraft(label, caption, caption_span, rows, spans, 1, start, end))
    if caption_after is not None:
        return lines.index(caption_after) + 1
    return j


# Headings in flattened Markdown end where the body starts; a known section name ends there.
_KNOWN_TITLE = re.compile(
    r"^(?:materials?\s+and\s+methods|patients?\s+and\s+methods|results?\s+and\s+discussion|"
    r"abstract|background|introduction|objectives?|aims?|methods?|results?|discussion|"
    r"conclusions?|interpretation|findings|trial\s+registration|funding|summary|efficacy|safety|"
    r"outcomes?|participants|patients|study\s+population|adverse\s+events)\b:?",
    re.IGNORECASE,
)
_TITLE_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")


def _flat_title(rest: str) -> int:
    """Length of the heading title at the start of ``rest`` (a guess, see the module doc)."""
    number = _TITLE_NUMBER.match(rest)
    offset = number.end() if number else 0
    rest = rest[offset:]
    known = _KNOWN_TITLE.match(rest)
    if known:
        after = rest[known.end():].lstrip()
        if not after or after[:1].isupper() or after[:1] in "*_([":
            return offset + known.end()
    words = list(re.finditer(r"\S+", rest))
    if words and len(words[0].group(0)) > 1 and words[0].group(0).isupper():
        # An upper-case heading ends with its last upper-case word: "RESEARCH DESIGN AND METHODS A total".
        end = 0
        for k, word in enumerate(words[:15]):
            token = word.group(0).strip(":")
            nxt = words[k + 1].group(0) if k + 1 < len(words) else ""
            if not token.isupper() or (len(token) == 1 and not nxt.isupper()):
                break
            end = word.end()
        return offset + end
    end = 0
    for k, word in enumerate(words[:12]):
        token = word.group(0)
        if k > 0:
            previous = words[k - 1].group(0)
            # A capital after a lower-case word, or a common sentence opener, starts the body.
            if token[:1].isupper() and (previous[:1].islower() or token.lower() in _OPENERS):
                break
            if token[:1].isdigit() and k > 1:
                break
        end = word.end()
        if token.endswith((".", ",", ":", ";")):
            end = word.end() - 1
            break
    return offset + end


def _read_flat_line(outline: _Outline, line: _Line) -> None:
    """Headings and text of one line into which Markdown headings were run."""
    text = outline.text
    marks = [m for m in _INLINE_HEADING.finditer(text, line.start, line.end)]
    body_start = line.start
    for k, mark in enumerate(marks):
        if mark.start() > body_start:
            outline.block(body_start, mark.start())
        title_start = mark.end()
        limit = marks[k + 1].start() if k + 1 < len(marks) else line.end
        length = _flat_title(text[title_start:limit])
        title = text[title_start:title_start + length].strip()
        if not title:
            body_start = title_start
            continue
        outline.heading(title_start, title_start + len(title), title, len(mark.group(1)) - 1)
        body_start = title_start + length
    if body_start < line.end:
        outline.block(body_start, line.end)
