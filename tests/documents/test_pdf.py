"""PDF reading on a real article typeset to PDF (scripts/make_pdf_fixture.py): running heads,
hyphenation, headings, title, tables with and without pdfplumber."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leads.documents import Document, read_document
from leads.documents.pdf import read_pdf
from leads.errors import FormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"
PDF = FIXTURES / "PMC535936.pdf"


@pytest.fixture(scope="module")
def jats() -> Document:
    return read_document(FIXTURES / "PMC535936.nxml")


@pytest.fixture(scope="module")
def pdf() -> Document:
    return read_pdf(PDF.read_bytes(), source=str(PDF), tables=False)


def test_running_heads_and_page_numbers_are_removed(pdf: Document) -> None:
    assert "BMC Medical Education 2004, 4:27" not in pdf.text
    assert not re.search(r"Page \d of \d", pdf.text)
    assert pdf.metadata["pages"] == 6


def test_hyphenated_line_ends_are_rejoined(pdf: Document, jats: Document) -> None:
    """Every word of the PDF text is a word of the article (no "cognit" + "ive" fragments)."""
    article_words = set(re.findall(r"[a-z][a-z'-]+", jats.text.lower()))
    pdf_words = re.findall(r"[a-z][a-z'-]+", pdf.text.lower())
    licence_words = set(re.findall(r"[a-z][a-z'-]+", (
        "David J Solomon Gary S Ferenchick Heather S Laird-Fick Kevin Kavanaugh This is an Open Access "
        "article distributed under the terms of the Creative Commons Attribution License http "
        "creativecommons org licenses by which permits unrestricted use distribution and reproduction in "
        "any medium provided the original work is properly cited Typeset from the PubMed Central XML "
        "PMC as a test fixture for leads the reference list is shortened BMC doi").lower()))
    strays = [w for w in pdf_words if w not in article_words and w not in licence_words]
    assert strays == []
    assert "community-based" in pdf.text  # a real compound keeps its hyphen


def test_title_headings_and_section_types(pdf: Document) -> None:
    assert pdf.doi == "10.1186/1472-6920-4-27"
    assert pdf.title == "A randomized trial comparing digital and live lecture formats [ISRCTN40455708"
    top = [(s.type, s.title) for s in pdf.sections if s.level == 0]
    assert top[:6] == [("title", pdf.title), ("abstract", "Abstract"), ("introduction", "Background"),
                       ("methods", "Methods"), ("results", "Results"), ("discussion", "Discussion")]
    abstract = next(i for i, s in enumerate(pdf.sections) if s.type == "abstract" and s.level == 0)
    assert [s.title for s in pdf.sections if s.parent == abstract] == ["Background", "Methods", "Results",
                                                                       "Conclusions"]


def test_methods_and_results_sentences_of_the_article_are_found(pdf: Document, jats: Document) -> None:
    sentences = [jats.sentence_text(s) for s in jats.sentences_in("methods") + jats.sentences_in("results")]
    sentences = [s for s in sentences if len(s) > 40]
    assert len(sentences) > 50
    for sentence in sentences:
        hits = pdf.locate(sentence)
        assert hits and hits[0].method in ("exact", "normalized"), sentence
        assert hits[0].section_type == jats.locate(sentence)[0].section_type


def test_tables_without_pdfplumber_keep_caption_and_rows(pdf: Document) -> None:
    labels = [(t.label, t.caption) for t in pdf.tables]
    assert labels == [("Table 1", "Performance on the examination: CD-ROM versus live lecture format"),
                      ("Table 2", "Feedback on the CD-ROM Based Lectures")]
    first = pdf.tables[0]
    assert ["Live lecture 4.42 1.08 12"] in first.rows
    assert first.footnotes and first.footnotes[0].startswith("\u2020The t-test was calculated")
    hit = pdf.locate("CD-ROM 4.88 2.00 17")[0]
    assert hit.section_type == "table" and hit.cell is not None


def test_tables_with_pdfplumber_are_grids() -> None:
    pytest.importorskip("pdfplumber")
    document = read_pdf(PDF.read_bytes(), source=str(PDF), tables=True)
    assert document.metadata["tables_from"] == "pdfplumber"
    first = document.tables[0]
    assert first.rows[0][-4:] == ["Mean", "SD", "No.", "p-value"]
    live = next(row for row in first.rows if row[1] == "Live lecture")
    assert live[2:5] == ["4.42", "1.08", "12"]
    hit = document.locate("4.42")[0]
    assert hit.cell is not None and first.rows[hit.cell.row][hit.cell.column] == "4.42"
    # The table's lines are not left in the running text as well.
    assert document.text.count("4.42") == 1


def test_not_a_pdf_and_damaged_pdf(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a PDF"):
        read_pdf(b"hello", source="x.pdf")
    damaged = PDF.read_bytes()[:2000]
    with pytest.raises(FormatError) as info:
        read_pdf(damaged, source="cut.pdf")
    assert "cut.pdf" in str(info.value)


def test_one_font_pdf_finds_headings_by_their_words(jats: Document) -> None:
    """Everything in one size of Helvetica, no bold (scripts/make_pdf_fixture.py --plain)."""
    document = read_pdf((FIXTURES / "PMC535936.plain.pdf").read_bytes(), source="plain.pdf", tables=False)
    assert document.title is None  # nothing sets the title apart
    assert document.doi == "10.1186/1472-6920-4-27"
    top = [(s.type, s.title) for s in document.sections if s.level == 0]
    for expected in [("abstract", "Abstract"), ("methods", "Methods"), ("results", "Results"),
                     ("discussion", "Discussion"), ("references", "References")]:
        assert expected in top
    for sentence in jats.sentences_in("results"):
        text = jats.sentence_text(sentence)
        if len(text) > 40:
            hits = document.locate(text)
            assert hits and hits[0].section_type in ("results", "table"), text
    assert [t.label for t in document.tables] == ["Table 1", "Table 2"]
