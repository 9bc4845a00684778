"""PMC JATS reading on real articles: front matter, sections, tables with spans, fragments."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from leads.documents import Document, read_document
from leads.documents.jats import read_jats
from leads.errors import FormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"


@pytest.fixture(scope="module")
def mcgrath() -> Document:
    return read_document(FIXTURES / "PMC5710015.nxml")


def test_front_matter(mcgrath: Document) -> None:
    assert mcgrath.format == "jats"
    assert (mcgrath.pmid, mcgrath.pmcid, mcgrath.doi) == ("29191160", "PMC5710015", "10.1186/s12871-017-0451-y")
    assert mcgrath.title is not None and mcgrath.title.startswith("The usefulness of the McGrath MAC laryngoscope")
    assert mcgrath.journal == "BMC Anesthesiology" and mcgrath.year == 2017
    assert mcgrath.authors and "," in mcgrath.authors[0]
    assert len(mcgrath.sha256 or "") == 64
    assert mcgrath.text.startswith(mcgrath.title)


def test_sections_are_typed_nested_and_cover_their_headings(mcgrath: Document) -> None:
    top = [(s.type, s.title) for s in mcgrath.sections if s.level == 0]
    assert top[:5] == [("title", mcgrath.title), ("abstract", "Abstract"), ("introduction", "Background"),
                       ("methods", "Methods"), ("results", "Results")]
    abstract = next(s for s in mcgrath.sections if s.type == "abstract" and s.level == 0)
    parts = [s.title for s in mcgrath.sections if s.parent == mcgrath.sections.index(abstract)]
    assert parts == ["Background", "Methods", "Results", "Conclusion", "Trial registration"]
    subjects = next(s for s in mcgrath.sections if s.title == "Subjects")
    assert subjects.type == "methods" and subjects.level == 1
    assert mcgrath.sections[subjects.parent].title == "Methods"
    for section in mcgrath.sections:
        if section.heading_start is not None:
            heading = mcgrath.text[section.heading_start:section.heading_end]
            assert section.title is not None and heading == section.title
        parent = mcgrath.sections[section.parent] if section.parent is not None else None
        if parent is not None:
            assert parent.start <= section.start and section.end <= parent.end
    assert any(s.type == "references" for s in mcgrath.sections)


def test_tables_expand_spans_and_locate_cells(mcgrath: Document) -> None:
    first = mcgrath.tables[0]
    assert first.label == "Table 1"
    assert first.caption and first.caption.startswith("Characterristics and airway")  # sic, as published
    assert first.header_rows == 1
    width = len(first.rows[0])
    assert all(len(row) == width for row in first.rows)
    # "Sex" spans two rows (Man, Woman): the expanded grid repeats it, sharing one span.
    man = next(i for i, row in enumerate(first.rows) if row[1] == "Man")
    assert first.rows[man][0] == first.rows[man + 1][0] == "Sex"
    assert first.cell_spans[man][0] == first.cell_spans[man + 1][0]
    for r, row in enumerate(first.rows):
        for c, value in enumerate(row):
            span = first.cell_spans[r][c]
            if value:
                assert span is not None and mcgrath.text[span[0]:span[1]] == value
                assert first.start <= span[0] and span[1] <= first.end
    # A quote from a cell is found in that cell, inside the table's section.
    [hit] = mcgrath.locate("34.3 ± 12.2")
    assert hit.section_type == "table" and hit.cell is not None
    assert first.rows[hit.cell.row][hit.cell.column] == "34.3 ± 12.2"
    assert mcgrath.text_of_table(0).startswith("Table 1 Characterristics")
    second = mcgrath.tables[1]
    assert second.header_rows == 2
    assert len(set(second.rows[0])) == 1  # a title row spanning every column
    table_section = next(s for s in mcgrath.sections if s.table == 1)
    assert table_section.type == "table" and mcgrath.sections[table_section.parent].type == "results"


def test_every_annotated_evidence_span_is_located(mcgrath: Document) -> None:
    """Evidence-inference annotators' evidence quotes (from the .txt rendering) are all found."""
    with open(FIXTURES / "PMC5710015.evidence.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 9
    for row in rows:
        evidence = mcgrath.evidence(row["Annotations"])
        assert evidence.supported, row["Annotations"]
        assert evidence.spans[0].section_type in ("results", "abstract")


def test_fragment_of_abstract_and_sections() -> None:
    """The llm-meta-analysis texts hold <abstract> and <sec> elements without an <article>."""
    document = read_document(FIXTURES / "PMC3580751.fragment.xml")
    assert document.format == "jats"
    assert [s.title for s in document.sections if s.level == 0][:2] == ["Abstract", "Results"]
    assert document.tables and document.tables[0].rows
    assert document.sentences_in("results")


def test_table_wrap_inside_a_paragraph_follows_it() -> None:
    xml = b"""<article><front><article-meta><title-group><article-title>Trial</article-title></title-group>
    </article-meta></front><body><sec><title>Results</title><p>Baseline data are shown.
    <table-wrap id="t1"><label>Table 1</label><caption><p>Baseline</p></caption><table><thead>
    <tr><th rowspan="2">Group</th><th colspan="2">Sex</th></tr><tr><th>Male</th><th>Female</th></tr>
    </thead><tbody><tr><td>A</td><td>9</td><td>21</td></tr></tbody></table>
    <table-wrap-foot><fn><p>Counts.</p></fn></table-wrap-foot></table-wrap></p>
    <p>After the table.</p></sec></body></article>"""
    document = read_jats(xml, source="inline.xml")
    assert document.tables[0].rows == [["Group", "Sex", "Sex"], ["Group", "Male", "Female"], ["A", "9", "21"]]
    assert document.tables[0].footnotes == ["Counts."]
    text = document.text
    assert text.index("Baseline data are shown.") < text.index("Table 1 Baseline") < text.index("After the table.")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<<< not xml >>>", "not well-formed XML"),
        (b"<html><body><p>hello</p></body></html>", "not a JATS article"),
        (b"<article><front/></article>", "no text"),
    ],
)
def test_unreadable_xml_names_the_file(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        read_jats(data, source="bad.nxml")
    assert "bad.nxml" in str(info.value)


def test_damaged_xml_is_recovered_with_a_warning() -> None:
    document = read_jats(b"<article><body><p>Patients were randomised.</body></article>", source="damaged.nxml")
    assert document.text == "Patients were randomised."
    assert "recovery mode" in document.metadata["warnings"][0]
