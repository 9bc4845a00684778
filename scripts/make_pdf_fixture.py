"""Render a real PMC article (JATS) to a small PDF for the PDF reader's tests.

    python scripts/make_pdf_fixture.py [--plain] [SOURCE.nxml] [OUT.pdf]

Defaults: ``tests/fixtures/documents/PMC535936.nxml`` (Solomon et al., BMC Medical Education
2004, CC BY 2.0) -> ``tests/fixtures/documents/PMC535936.pdf``. The PDF carries the article's own
text, typeset the way journals do it, with the things a PDF reader has to undo: a running header
and a "Page N of M" footer on every page, words hyphenated at line ends, headings in bold, and
the tables drawn as ruled grids. The reference list is cut to its first entries to keep the file
small; the licence notice and source are printed at the end.

``--plain`` typesets everything in one size of the core Helvetica font, without bold (headings
then differ from text only by their words and position, as in many older PDFs); its default
output is ``PMC535936.plain.pdf``.

Needs ``fpdf2`` (``pip install fpdf2``), which leads itself does not depend on. Uses DejaVu Sans
when installed (full Unicode), else the core Helvetica font with non-Latin-1 characters
transliterated.
"""

from __future__ import annotations

import datetime as dt
import sys
import unicodedata
from pathlib import Path

from fpdf import FPDF

from leads.documents.jats import read_jats
from leads.documents.model import Document

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / "tests" / "fixtures" / "documents" / "PMC535936.nxml"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
MAX_REFERENCES = 5
HEADER = "BMC Medical Education 2004, 4:27    http://www.biomedcentral.com/1472-6920/4/27"
LICENCE = ("This is an Open Access article distributed under the terms of the Creative Commons "
           "Attribution License (http://creativecommons.org/licenses/by/2.0), which permits "
           "unrestricted use, distribution, and reproduction in any medium, provided the original "
           "work is properly cited. Typeset from the PubMed Central XML (PMC535936) as a test "
           "fixture for leads; the reference list is shortened.")
_ASCII = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
                        "\u201d": '"', "\u2264": "<=", "\u2265": ">=", "\u2009": " ", "\u00a0": " ",
                        "\u2212": "-", "\u2022": "*"})


class ArticlePDF(FPDF):
    def __init__(self, unicode_font: bool, plain: bool = False) -> None:
        super().__init__(format="A4")
        self.unicode_font = unicode_font
        self.plain = plain
        if unicode_font:
            self.add_font("Body", "", str(DEJAVU / "DejaVuSans.ttf"))
            self.add_font("Body", "B", str(DEJAVU / "DejaVuSans-Bold.ttf"))
            self.family = "Body"
        else:
            self.family = "Helvetica"
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(True, margin=20)

    def clean(self, text: str) -> str:
        if self.unicode_font:
            return text
        text = text.translate(_ASCII)
        return "".join(ch if ord(ch) < 256 else (unicodedata.normalize("NFKD", ch)[:1] or "?")
                       for ch in text).encode("latin-1", "replace").decode("latin-1")

    def header(self) -> None:
        self.set_font(self.family, "", 7)
        self.set_y(10)
        self.cell(0, 4, self.clean(HEADER), align="L")
        self.ln(8)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.family, "", 7)
        self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="C")

    def paragraph(self, text: str, size: float = 9.5, style: str = "", gap: float = 2.0) -> None:
        """Typeset a paragraph line by line, hyphenating long words that straddle the margin."""
        if self.plain:
            size, style = 9.5, ""
        self.set_font(self.family, style, size)
        width = self.w - self.l_margin - self.r_margin
        height = size * 0.48
        for line in self._lines(self.clean(text), width):
            self.cell(width, height, line, new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)

    def _lines(self, text: str, width: float) -> list[str]:
        lines: list[str] = []
        current = ""
        for word in text.split():
            candidate = f"{current} {word}" if current else word
            if self.get_string_width(candidate) <= width:
                current = candidate
                continue
            split = self._hyphenate(current, word, width)
            if split is not None:
                head, tail = split
                lines.append(f"{current} {head}-" if current else f"{head}-")
                current = tail
                continue
            lines.append(current)
            current = word
        if current:
            lines.append(current)
        return lines

    def _hyphenate(self, current: str, word: str, width: float) -> tuple[str, str] | None:
        """Split ``word`` so its head (plus a hyphen) still fits on the line, as typesetters do."""
        if len(word) < 8 or not word.isalpha():
            return None
        for cut in range(len(word) - 3, 2, -1):
            head = word[:cut]
            line = f"{current} {head}-" if current else f"{head}-"
            if self.get_string_width(line) <= width:
                return head, word[cut:]
        return None

    def table_grid(self, rows: list[list[str]], header_rows: int) -> None:
        self.set_font(self.family, "", 9.5 if self.plain else 7)
        usable = self.w - self.l_margin - self.r_margin
        columns = max(len(r) for r in rows)
        with self.table(width=usable, col_widths=tuple([1] * columns), line_height=3.6,
                        text_align="LEFT", first_row_as_headings=header_rows > 0 and not self.plain) as table:
            for row in rows:
                cells = table.row()
                for value in row + [""] * (columns - len(row)):
                    cells.cell(self.clean(value))
        self.ln(3)


def render(document: Document, out: Path, *, plain: bool = False) -> None:
    pdf = ArticlePDF(unicode_font=not plain and (DEJAVU / "DejaVuSans.ttf").is_file(), plain=plain)
    pdf.add_page()
    text = document.text
    heading_starts = {s.heading_start: s for s in document.sections if s.heading_start is not None}
    table_at = {t.start: i for i, t in enumerate(document.tables)}
    references = 0
    position = 0
    for chunk in text.split("\n\n"):
        start = text.index(chunk, position)
        position = start + len(chunk)
        section = document.section_for(start)
        inside_table = next((t for t in document.tables if t.start <= start < t.end), None)
        if inside_table is not None:
            if start in table_at:
                table = document.tables[table_at[start]]
                pdf.paragraph(" ".join(p for p in (table.label, table.caption) if p), size=8.5,
                              style="B", gap=1)
                if table.rows:
                    pdf.table_grid(table.rows, table.header_rows)
                for note in table.footnotes:
                    pdf.paragraph(note, size=7.5)
            continue
        if section is not None and section.type == "references":
            if start in heading_starts:
                pdf.paragraph(chunk, size=11, style="B", gap=1)
            elif references < MAX_REFERENCES:
                pdf.paragraph(chunk, size=7.5, gap=1)
                references += 1
            continue
        if start in heading_starts:
            heading = heading_starts[start]
            size = 14 if heading.type == "title" else 11 if heading.level == 0 else 10
            pdf.paragraph(chunk, size=size, style="B", gap=1)
            if heading.type == "title" and document.authors:
                names = [", ".join(reversed(a.split(", "))) for a in document.authors]
                pdf.paragraph(" ".join(n.replace(",", "") for n in names), size=9)
                if document.doi:
                    pdf.paragraph(f"{document.journal} {document.year}; doi:{document.doi}", size=8)
            continue
        pdf.paragraph(chunk)
    pdf.paragraph(LICENCE, size=7.5)
    pdf.set_creation_date(dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    pdf.output(str(out))


def main(argv: list[str]) -> None:
    plain = "--plain" in argv
    args = [a for a in argv[1:] if a != "--plain"]
    source = Path(args[0]) if args else DEFAULT_SOURCE
    out = Path(args[1]) if len(args) > 1 else source.with_suffix(".plain.pdf" if plain else ".pdf")
    document = read_jats(source.read_bytes(), source=str(source))
    render(document, out, plain=plain)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
