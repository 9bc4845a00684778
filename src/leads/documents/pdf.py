"""PDF to a :class:`~leads.documents.model.Document` (``pypdf``; ``pdfplumber`` for tables).

A PDF has no paragraphs, headings or tables, only positioned glyphs, so this reader rebuilds
them from what ``pypdf`` gives per line (text, font size, bold) and says so where it guesses:

1. running headers and footers (a line repeated at the top or bottom of most pages, page
   numbers) are removed;
2. the title is the run of largest-font lines at the top of page 1;
3. a heading is a short line set in bold or a larger size (or, in a PDF with one font, a short
   line naming a known section: "Methods", "2.1 Participants"); its level comes from its size
   and whether it names a top-level part;
4. lines are joined into paragraphs (a paragraph ends at a short line closing a sentence), and
   words hyphenated at line ends are re-joined ("random-" + "ized"), keeping the hyphen where the
   document itself writes the compound with one ("placebo-controlled");
5. tables: with ``pdfplumber`` installed (``pip install leads[pdf]``), ruled tables become cell
   grids and their lines are taken out of the running text; without it, the lines after a
   ``Table N`` caption that do not read as prose become one-cell rows (best effort).

Offsets are into the text leads composes (``Document.text``), not into the PDF.
"""

from __future__ import annotations

import io
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from leads.documents._build import DocumentBuilder, SourceCell, collapse
from leads.documents.model import Document
from leads.documents.sections import classify_heading, clean_heading, is_major_heading
from leads.errors import FormatError
from leads.records import find_identifiers

__all__ = ["pdfplumber_available", "read_pdf"]

_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\s*$|^\s*[-\u2013]\s*\d{1,4}\s*[-\u2013]\s*$",
                          re.IGNORECASE)
_CAPTION = re.compile(r"^\s*(Table|Fig(?:ure)?\.?)\s*([A-Z]?\d+[a-z]?)\b[.:]?\s*(.*)$")
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+[A-Z]")
_BULLET = re.compile(r"^\s*(?:[\u2022\u25cf\u25aa\u2023\u2043*\-\u2013]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_FOOTNOTE = re.compile(r"^\s*[\u2020\u2021\u00a7\u00b6*#]|^\s*[a-z]\s+[A-Z]")
_TERMINAL = (".", "?", "!", ":")
_HYPHEN_END = re.compile(r"([A-Za-z]+)-$")


def pdfplumber_available() -> bool:
    try:
        import pdfplumber  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class _Line:
    text: str
    page: int
    size: float
    bold: bool

    @property
    def words(self) -> list[str]:
        return self.text.split()


@dataclass
class _PdfTable:
    page: int
    rows: list[list[str]]


def _page_lines(page: Any, number: int) -> list[_Line]:
    """The page's text lines with the dominant font size and weight of each."""
    runs: list[tuple[str, float, bool]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        name = ""
        if font:
            try:
                name = str(font.get("/BaseFont", ""))
            except Exception:  # a malformed font dictionary: no font facts for this run
                name = ""
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3]) if tm and cm else 1.0
        bold = bool(re.search(r"bold|black|heavy|semibold|demi", name, re.IGNORECASE))
        runs.append((text, round((size or 0) * (scale or 1.0), 1), bold))

    try:
        page.extract_text(visitor_text=visit)
    except Exception as exc:  # pypdf raises many types on damaged content streams
        raise FormatError(f"page {number + 1} cannot be read: {exc}") from None
    lines: list[_Line] = []
    buffer: list[str] = []
    fonts: Counter[tuple[float, bool]] = Counter()

    def end_line() -> None:
        text = "".join(buffer).rstrip()
        if text.strip():
            (size, bold), _ = fonts.most_common(1)[0] if fonts else ((0.0, False), 0)
            lines.append(_Line(text.strip(), number, size, bold))
        buffer.clear()
        fonts.clear()

    for text, size, bold in runs:
        pieces = text.split("\n")
        for k, piece in enumerate(pieces):
            if k > 0:
                end_line()
            if piece:
                buffer.append(piece)
                if piece.strip():
                    fonts[(size, bold)] += len(piece.strip())
    end_line()
    return lines


def _strip_running_heads(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Remove lines repeated at the top or bottom of most pages, and bare page numbers."""
    n = len(pages)

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", collapse(line.text).lower())

    counts: Counter[str] = Counter()
    for lines in pages:
        edge = {key(line) for line in lines[:3] + lines[-3:]}
        counts.update(edge)
    threshold = max(2, math.ceil(0.5 * n))
    repeated = {k for k, c in counts.items() if c >= threshold} if n >= 2 else set()
    out = []
    for lines in pages:
        kept = []
        for i, line in enumerate(lines):
            at_edge = i < 3 or i >= len(lines) - 3
            if at_edge and (key(line) in repeated or _PAGE_NUMBER.match(line.text)):
                continue
            kept.append(line)
        out.append(kept)
    return out


def _plumber_tables(data: bytes) -> list[_PdfTable]:
    import pdfplumber

    tables: list[_PdfTable] = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages):
            for found in page.find_tables():
                rows = [[collapse(cell or "") for cell in row] for row in found.extract()]
                rows = [row for row in rows if any(row)]
                if len(rows) >= 2 and max(len(r) for r in rows) >= 2:
                    tables.append(_PdfTable(number, rows))
    return tables


class _PdfReader:
    def __init__(self, pages: list[list[_Line]], source: str) -> None:
        self.source = source
        self.lines = [line for page in pages for line in page]
        sizes: Counter[float] = Counter()
        for line in self.lines:
            sizes[line.size] += len(line.text)
        self.body_size = sizes.most_common(1)[0][0] if sizes else 0.0
        bold_chars = sum(len(line.text) for line in self.lines if line.bold)
        total = sum(len(line.text) for line in self.lines) or 1
        # Font facts are useful only when the body is regular text and headings are not: when
        # the lines that name a part of the article ("Methods") are mostly bold or larger.
        majors = [line for line in self.lines if is_major_heading(line.text)]
        if majors:
            styled = sum(1 for line in majors if self.is_heading_style(line))
            self.fonts_informative = bold_chars / total < 0.5 and styled >= 0.5 * len(majors)
        else:
            self.fonts_informative = bold_chars / total < 0.5 and (
                bold_chars > 0 or len({s for s in sizes if sizes[s] > 20}) > 1)
        long_lines = [len(line.text) for line in self.lines if len(line.text) > 20]
        self.typical = statistics.median(long_lines) if long_lines else 80.0
        self.vocabulary: Counter[str] = Counter()
        for line in self.lines:
            for word in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)*", line.text):
                self.vocabulary[word.lower()] += 1
        self.b = DocumentBuilder()
        # Distinct sizes of heading-styled lines (largest first), for heading levels. Sizes used
        # by fewer than two lines (the title, a stray label) do not make a level of their own.
        styled_sizes = Counter(line.size for line in self.lines
                               if self.is_heading_style(line) and len(line.words) <= 12)
        self.heading_sizes = sorted((size for size, n in styled_sizes.items() if n >= 2), reverse=True)

    # -- line classification --------------------------------------------------------------------

    def is_heading(self, index: int) -> bool:
        line = self.lines[index]
        text = line.text.strip()
        words = line.words
        if not text or len(text) > 100 or len(words) > 12 or _BULLET.match(text):
            return False
        if not (text[0].isupper() or text[0].isdigit()):
            return False
        if _CAPTION.match(text):
            return False
        if text.endswith((".", ",", ";")) and not _NUMBERED.match(text):
            return False
        if sum(ch.isdigit() for ch in text) > len(text) / 3:
            return False
        previous = self.lines[index - 1] if index > 0 else None
        after_break = previous is None or self.ends_paragraph(index - 1) or self.is_heading_style(previous)
        if self.fonts_informative:
            return self.is_heading_style(line) and (after_break or (previous is not None and previous.size != line.size))
        # Headings not set apart by font: only those the words identify.
        if is_major_heading(text) or (_NUMBERED.match(text) and len(words) <= 8):
            return (previous is None or previous.text.rstrip().endswith(_TERMINAL) or after_break
                    or len(previous.text) < 0.85 * self.typical)
        return after_break and classify_heading(text) is not None and len(words) <= 4

    def is_heading_style(self, line: _Line) -> bool:
        return line.bold or line.size > self.body_size + 0.5

    def ends_paragraph(self, index: int) -> bool:
        line = self.lines[index]
        text = line.text.rstrip()
        if index + 1 < len(self.lines):
            following = self.lines[index + 1]
            if _BULLET.match(following.text):
                return True
            if self.fonts_informative and following.size != line.size and abs(following.size - line.size) > 0.5:
                return True
        return text.endswith(_TERMINAL) and len(text) < 0.85 * self.typical

    def heading_level(self, line: _Line) -> int:
        numbered = _NUMBERED.match(line.text)
        if numbered:
            return numbered.group(1).count(".")
        if self.fonts_informative and len(self.heading_sizes) > 1:
            # Larger headings are higher: the largest heading size is level 0.
            rank = [k for k, size in enumerate(self.heading_sizes) if abs(size - line.size) < 0.3]
            if rank:
                return min(rank[0], 3)
        return 0 if is_major_heading(line.text) else 1

    # -- joining lines ----------------------------------------------------------------------------

    def join(self, lines: list[str]) -> str:
        out = ""
        for line in lines:
            line = line.strip()
            if not out:
                out = line
                continue
            match = _HYPHEN_END.search(out)
            first = re.match(r"([a-z]+)", line)
            if match and first:
                head, tail = match.group(1), first.group(1)
                out = out + line if self.keep_hyphen(head, tail) else out[:-1] + line
            else:
                out = out + " " + line
        return out

    def keep_hyphen(self, head: str, tail: str) -> bool:
        """Whether "head-" + "tail" at a line break is a hyphenated compound, not a split word."""
        joined = (head + tail).lower()
        compound = f"{head}-{tail}".lower()
        if self.vocabulary.get(joined, 0) > 0:
            return False
        return any(word == compound or word.startswith(compound + "-") or word.endswith("-" + compound)
                   for word in self.vocabulary if "-" in word)

    # -- layout -------------------------------------------------------------------------------------

    def title_lines(self) -> int:
        """How many leading lines of page 1 are the title (largest font, top of the page)."""
        first_page = [line for line in self.lines if line.page == 0][:12]
        if not first_page or not self.fonts_informative:
            return 0
        biggest = max(line.size for line in first_page)
        if biggest <= self.body_size + 1:
            return 0
        start = next(i for i, line in enumerate(first_page) if line.size == biggest)
        count = 0
        for line in first_page[start:]:
            if line.size != biggest:
                break
            count += 1
        return start + count if start <= 2 else 0

    def run(self, tables: list[_PdfTable] | None) -> str | None:
        """Lay the lines out as title, sections, paragraphs and tables; returns the title."""
        lines = self.lines
        table_runs = self.place_tables(tables or [])
        title_end = self.title_lines()
        title = collapse(self.join([line.text for line in lines[:title_end]])) or None
        if title:
            self.b.open_section(title, force_type="title")
            self.b.close_section()
        open_levels: list[int] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                self.b.add_block(self.join(paragraph))
                paragraph.clear()

        i = title_end
        while i < len(lines):
            line = lines[i]
            if i in table_runs:
                flush()
                i = self.emit_table(i, table_runs[i])
                continue
            caption = self.caption_match(line)
            if caption and (i == 0 or self.ends_paragraph(i - 1) or self.is_heading_style(line)):
                flush()
                i = self.caption_block(i, caption, table_runs)
                continue
            if self.is_heading(i):
                flush()
                # A heading can wrap onto a second line in the same style.
                text = line.text
                j = i + 1
                while (j < len(lines) and self.fonts_informative and lines[j].size == line.size
                       and lines[j].bold == line.bold and self.is_heading_style(lines[j])
                       and len(text) + len(lines[j].text) < 120 and not self.is_major(lines[j])):
                    text += " " + lines[j].text
                    j += 1
                level = self.heading_level(line)
                while open_levels and open_levels[-1] >= level:
                    self.b.close_section()
                    open_levels.pop()
                self.b.open_section(clean_heading(text) or text)
                open_levels.append(level)
                i = j
                continue
            if _BULLET.match(line.text):
                flush()
            paragraph.append(line.text)
            if self.ends_paragraph(i):
                flush()
            i += 1
        flush()
        while open_levels:
            self.b.close_section()
            open_levels.pop()
        return title

    def caption_match(self, line: _Line) -> re.Match[str] | None:
        """``Table 2. Baseline ...`` is a caption; ``Table 2 shows ...`` is running text."""
        match = _CAPTION.match(line.text)
        if match is None:
            return None
        rest = match.group(3)
        separator = line.text[match.end(2):match.end(2) + 1]
        if self.is_heading_style(line) or separator in ".:" or not rest or rest[:1].isupper():
            return match
        return None

    @staticmethod
    def is_major(line: _Line) -> bool:
        return is_major_heading(line.text)

    def place_tables(self, tables: list[_PdfTable]) -> dict[int, tuple[int, _PdfTable | None]]:
        """Find each pdfplumber table's lines in the text: start index -> (end index, table)."""
        runs: dict[int, tuple[int, _PdfTable | None]] = {}
        for table in tables:
            words: Counter[str] = Counter()
            for row in table.rows:
                for cell in row:
                    words.update(cell.split())
            total = sum(words.values())
            best: tuple[int, int, int] | None = None  # covered words, start, end
            i = 0
            while i < len(self.lines):
                if self.lines[i].page not in (table.page, table.page - 1, table.page + 1):
                    i += 1
                    continue
                remaining = words.copy()
                j = i
                covered = 0
                while j < len(self.lines):
                    line_words = Counter(self.lines[j].words)
                    if any(remaining[w] < c for w, c in line_words.items()):
                        break
                    remaining.subtract(line_words)
                    covered += sum(line_words.values())
                    j += 1
                if j > i and (best is None or covered > best[0]):
                    best = (covered, i, j)
                i = j if j > i else i + 1
            if best is not None and best[0] >= 0.5 * total and best[2] - best[1] >= 2 and not any(
                    s <= best[1] < e for s, (e, _) in runs.items()):
                runs[best[1]] = (best[2], table)
        return runs

    def emit_table(self, start: int, run: tuple[int, _PdfTable | None], *,
                   label: str | None = None, caption: str | None = None) -> int:
        end, table = run
        index = end
        footnotes: list[str] = []
        while index < len(self.lines) and _FOOTNOTE.match(self.lines[index].text):
            note = [self.lines[index].text]
            while not self.ends_paragraph(index) and index + 1 < len(self.lines) and not _FOOTNOTE.match(
                    self.lines[index + 1].text):
                index += 1
                note.append(self.lines[index].text)
            footnotes.append(self.join(note))
            index += 1
        if table is not None:
            rows = [[SourceCell(cell, header=r == 0) for cell in row] for r, row in enumerate(table.rows)]
            header_rows = 1
        else:
            rows = [[SourceCell(self.lines[k].text)] for k in range(start, end)]
            header_rows = 0
        self.b.add_table(label=label, caption=caption, rows=rows, header_rows=header_rows, footnotes=footnotes)
        return index

    def caption_block(self, i: int, caption: re.Match[str], table_runs: dict[int, tuple[int, _PdfTable | None]]) -> int:
        """A ``Table N``/``Figure N`` caption and what belongs to it; returns the next line index."""
        kind, number = caption.group(1), caption.group(2)
        label = f"{kind} {number}"
        text_lines = [caption.group(3)] if caption.group(3) else []
        first = self.lines[i]

        def continues(k: int) -> bool:
            line = self.lines[k]
            if k in table_runs or self.is_heading(k) or self.caption_match(line) is not None:
                return False
            if self.fonts_informative:
                return (line.size, line.bold) == (first.size, first.bold)
            previous = self.lines[k - 1].text
            if previous.endswith("-") or line.text[:1].islower():
                return True
            return not (kind.lower().startswith("tab") and self.table_like(k))

        j = i
        # The caption runs until a line ends a paragraph, or the next line is set differently,
        # is a heading, or starts the table.
        while not self.ends_paragraph(j) and j + 1 < len(self.lines) and len(text_lines) < 8 \
                and continues(j + 1):
            j += 1
            text_lines.append(self.lines[j].text)
        j += 1
        if not text_lines and kind.lower().startswith("fig"):
            # "Fig. 1" set apart as a label: the paragraph under it is the caption.
            while j < len(self.lines) and not self.is_heading(j) and self.caption_match(self.lines[j]) is None:
                text_lines.append(self.lines[j].text)
                j += 1
                if self.ends_paragraph(j - 1) or len(text_lines) >= 12:
                    break
        caption_text = self.join(text_lines) or None
        if kind.lower().startswith("fig"):
            self.b.open_section(label, force_type="figure")
            if caption_text:
                self.b.add_block(caption_text, "caption")
            self.b.close_section()
            return j
        if j in table_runs:
            return self.emit_table(j, table_runs[j], label=label, caption=caption_text)
        # No pdfplumber grid: the lines that do not read as prose are the table's rows.
        end = j
        while end < len(self.lines) and self.table_like(end):
            end += 1
        return self.emit_table(j, (end, None), label=label, caption=caption_text)

    def table_like(self, index: int) -> bool:
        line = self.lines[index]
        text = line.text
        if _CAPTION.match(text) or _FOOTNOTE.match(text) or is_major_heading(text) or _NUMBERED.match(text):
            return False
        numbers = len(re.findall(r"\d+(?:[.,]\d+)?%?", text))
        if len(text) < 0.8 * self.typical:
            return True
        return numbers >= 3 and not text.rstrip().endswith(".")


def read_pdf(data: bytes, *, source: str = "<pdf>", tables: bool | None = None) -> Document:
    """Read a PDF. ``tables``: use pdfplumber for table grids (default: when it is installed)."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise FormatError("not a PDF (no %PDF header)", source=source)
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FormatError("the PDF is encrypted", source=source)
        pages = [_page_lines(page, n) for n, page in enumerate(reader.pages)]
        info = reader.metadata
        meta_title = collapse(str(info.title)) if info is not None and info.title else None
    except FormatError as exc:
        if exc.source is None:
            raise FormatError(exc.reason, source=source) from None
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FormatError(f"the PDF cannot be read: {exc}", source=source) from None
    if not any(pages):
        raise FormatError("the PDF has no extractable text (a scanned image? run OCR first)", source=source)
    warnings: list[str] = []
    pages = _strip_running_heads(pages)
    found_tables: list[_PdfTable] | None = None
    use_plumber = pdfplumber_available() if tables is None else tables
    if use_plumber:
        try:
            found_tables = _plumber_tables(data)
        except ImportError:
            raise FormatError("pdfplumber is not installed (pip install leads[pdf])", source=source) from None
        except Exception as exc:  # pdfminer raises many types on damaged files
            warnings.append(f"pdfplumber could not read the tables: {exc}")
    layout = _PdfReader(pages, source)
    title = layout.run(found_tables)
    if not layout.b.blocks:
        raise FormatError("the PDF has no extractable text", source=source)
    text = "".join(layout.b.parts)
    ids = find_identifiers(text[:20000])
    metadata: dict[str, Any] = {"pages": len(pages), "tables_from": "pdfplumber" if found_tables is not None
                                else "text"}
    if warnings:
        metadata["warnings"] = warnings
    return layout.b.build(
        format="pdf",
        title=title or meta_title,
        pmid=ids["pmid"][0] if ids["pmid"] else None,
        pmcid=ids["pmcid"][0] if ids["pmcid"] else None,
        doi=ids["doi"][0] if ids["doi"] else None,
        nct_ids=ids["nct"],
        metadata=metadata,
    )
