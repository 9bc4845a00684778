"""Plain text and Markdown: verbatim offsets, headings, pipe and pandoc tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from leads.documents import detect_document_format, read_document
from leads.documents.text import read_markdown, read_text
from leads.errors import FormatError, SourceError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"


def test_evidence_inference_text_keeps_file_offsets() -> None:
    path = FIXTURES / "PMC5710015.txt"
    content = path.read_text(encoding="utf-8")
    document = read_document(path)
    assert document.format == "text" and document.text == content
    assert document.title and document.title.startswith("The usefulness of the McGrath MAC")
    top = [(s.type, s.title) for s in document.sections if s.level == 0]
    assert top[0] == ("title", "TITLE")
    assert ("abstract", "Abstract") in top and ("methods", "METHODS") in top and ("results", "RESULTS") in top
    abstract_index = next(i for i, s in enumerate(document.sections) if s.title == "Abstract")
    parts = [s.title for s in document.sections if s.parent == abstract_index]
    assert parts[:3] == ["BACKGROUND", "METHODS", "RESULTS"]
    # The annotators' character offsets into this file land on sentences leads finds.
    with open(FIXTURES / "PMC5710015.evidence.csv", newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            start, end = int(row["Evidence Start"]), int(row["Evidence End"])
            assert document.text[start:end] == row["Annotations"]
            sentence = document.sentence_at(start)
            assert sentence is not None and sentence.start <= start < sentence.end
            [hit, *_] = document.locate(row["Annotations"])
            assert (hit.start, hit.method) == (start, "exact")


def test_hard_wrapped_text_joins_lines_into_sentences() -> None:
    text = ("Methods\n\nWe randomly assigned 412 postmenopausal women to estradiol\n"
            "or placebo for two years. Fractures were counted at every visit by a\n"
            "blinded assessor who did not know the allocation of the participant.\n\n"
            "Statistical analysis\n\nRisk ratios were computed with exact confidence\n"
            "intervals for every outcome that had been planned before the analysis.\n")
    document = read_text(text.encode(), source="wrapped.txt")
    sentences = list(document.iter_sentences())
    assert "We randomly assigned 412 postmenopausal women to estradiol\nor placebo for two years." in sentences
    methods = next(s for s in document.sections if s.title == "Methods")
    stats = next(s for s in document.sections if s.title == "Statistical analysis")
    assert methods.type == stats.type == "methods" and methods.level == 0 and stats.level == 1
    assert document.section_for(text.index("Risk ratios")) == stats


def test_markdown_headings_and_pipe_table() -> None:
    text = ("# A randomised trial of drug X\n\n## Methods\n\nAdults were randomised.\n\n## Results\n\n"
            "Table 2: Outcomes at 12 weeks\n"
            "| Outcome | Drug X (n=50) | Placebo (n=48) |\n"
            "|---|---:|:---:|\n"
            "| Response, n (%) | 30 (60) | 14 (29) |\n"
            "| Withdrawals | 3 | 5 \\| 2 |\n\n"
            "Response was higher with drug X.\n")
    document = read_markdown(text, source="trial.md")
    assert document.title == "A randomised trial of drug X"
    [table] = document.tables
    assert (table.label, table.caption, table.header_rows) == ("Table 2", "Outcomes at 12 weeks", 1)
    assert table.rows == [["Outcome", "Drug X (n=50)", "Placebo (n=48)"],
                          ["Response, n (%)", "30 (60)", "14 (29)"],
                          ["Withdrawals", "3", "5 \\| 2"]]
    span = table.cell_spans[1][1]
    assert span is not None and text[span[0]:span[1]] == "30 (60)"
    [hit] = document.locate("30 (60)")
    assert hit.cell is not None and (hit.cell.row, hit.cell.column) == (1, 1) and hit.section_type == "table"
    results = next(s for s in document.sections if s.title == "Results")
    assert results.type == "results"
    assert [document.sentence_text(s) for s in document.sentences_in("results")][-1] == \
        "Response was higher with drug X."


def test_pandoc_markdown_with_flattened_headings_and_multiline_tables() -> None:
    """The llm-meta-analysis texts: headings run into one line, pandoc multiline tables."""
    path = FIXTURES / "PMC3580751.md"
    document = read_document(path)
    assert document.text == path.read_text(encoding="utf-8")
    titles = [(s.level, s.type, s.title) for s in document.sections if s.type != "table"]
    assert titles[:7] == [(0, "abstract", "Abstract"), (1, "abstract", "Introduction"), (1, "abstract", "Methods"),
                          (1, "abstract", "Results"), (1, "abstract", "Conclusions"), (0, "results", "Results"),
                          (1, "results", "Study participants")]
    first = document.tables[0]
    assert first.caption and first.caption.startswith("Description of the study population")
    assert first.rows[0][:3] == ["Characteristics", "Intervention group: Interrupted surveillance, unit A",
                                 "Control group: Continuous surveillance, unit B"]
    gender = next(row for row in first.rows if row[0] == "Gender, male")
    assert gender[1:4] == ["308 (68.8)", "320 (65.0)", "0.23"]


def test_detection_by_content_and_extension(tmp_path: Path) -> None:
    assert detect_document_format("a.txt", b"%PDF-1.4\n...") == "pdf"
    assert detect_document_format("a.dat", b"<?xml version='1.0'?><article><body/></article>") == "jats"
    assert detect_document_format(None, b"# Title\n\nText\n") == "markdown"
    assert detect_document_format(None, b"Just some words.\n") == "text"
    assert detect_document_format("notes.md", b"plain words") == "markdown"
    gz = tmp_path / "PMC5710015.nxml.gz"
    import gzip

    gz.write_bytes(gzip.compress((FIXTURES / "PMC5710015.nxml").read_bytes()))
    assert read_document(gz).pmcid == "PMC5710015"


def test_empty_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    with pytest.raises(FormatError, match="empty"):
        read_document(empty)
    with pytest.raises(SourceError, match="not found"):
        read_document(tmp_path / "missing.pdf")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"abc\x00\x01\x02")
    with pytest.raises(FormatError, match="binary"):
        read_document(binary)


def test_windows_1252_text_is_decoded_with_a_warning() -> None:
    document = read_text("Patients\u2019 ages were 40\u201360 years.".encode("cp1252"), source="old.txt")
    assert document.text == "Patients\u2019 ages were 40\u201360 years."
    assert "Windows-1252" in document.metadata["warnings"][0]
