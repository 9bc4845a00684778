"""The Document model: structural invariants (property tests), locate/evidence, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leads.documents import Document, read_document
from leads.documents.text import read_markdown, read_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"
FILES = ["PMC5710015.nxml", "PMC5710015.txt", "PMC3580751.md", "PMC3580751.fragment.xml", "PMC535936.pdf",
         "PMC535936.nxml"]


@pytest.fixture(scope="module", params=FILES)
def document(request: pytest.FixtureRequest) -> Document:
    return read_document(FIXTURES / request.param, tables=False)


def check_invariants(document: Document) -> None:
    """Sentences in order, disjoint, covering every non-blank character of sections' bodies, and
    never crossing a section boundary; sections nested inside their parents."""
    text = document.text
    previous = 0
    for sentence in document.sentences:
        assert previous <= sentence.start < sentence.end <= len(text)
        assert not text[sentence.start].isspace() and not text[sentence.end - 1].isspace()
        previous = sentence.end
        for section in document.sections:
            inside = section.start <= sentence.start and sentence.end <= section.end
            outside = sentence.end <= section.start or section.end <= sentence.start
            assert inside or outside, (section.title, text[sentence.start:sentence.end][:80])
    for section in document.sections:
        assert 0 <= section.start < section.end <= len(text)
        if section.parent is not None:
            parent = document.sections[section.parent]
            assert parent.start <= section.start and section.end <= parent.end
            assert parent.level < section.level
    for table in document.tables:
        assert 0 <= table.start < table.end <= len(text)
        assert all(len(row) == len(table.rows[0]) for row in table.rows)


def test_real_documents_satisfy_the_invariants(document: Document) -> None:
    check_invariants(document)
    covered = sum(s.end - s.start for s in document.sentences)
    assert covered > 0.9 * len("".join(document.text.split()))


_HEADINGS = st.sampled_from(["Methods", "Results", "Discussion", "Statistical analysis", "Primary outcome",
                             "Abstract", "2.1 Participants", "BODY.RESULTS:", "Conclusions"])
_SENTENCES = st.sampled_from([
    "Patients were randomised (n = 120).", "Smith et al. found no effect.", "Mean age was 54.3 years.",
    "The difference was significant (p < 0.05).", "See Fig. 2 for details.", "Pain fell vs. placebo.",
    "Adverse events, e.g. nausea, were rare.", "J. Smith did the analysis.", "It worked!",
])
_PARAGRAPHS = st.lists(_SENTENCES, min_size=1, max_size=5).map(" ".join)
_BLOCKS = st.lists(st.one_of(_HEADINGS.map(lambda h: ("h", h)), _PARAGRAPHS.map(lambda p: ("p", p))),
                   min_size=1, max_size=12)


@given(_BLOCKS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_plain_text_and_markdown_invariants(blocks: list[tuple[str, str]]) -> None:
    plain = "\n\n".join(text for _, text in blocks) + "\n"
    markdown = "\n\n".join(f"## {text}" if kind == "h" else text for kind, text in blocks) + "\n"
    for document in (read_text(plain, source="t.txt"), read_markdown(markdown, source="t.md")):
        assert document.text in (plain, markdown)
        check_invariants(document)
        for kind, text in blocks:
            if kind == "p":
                assert document.locate(text)


@pytest.fixture(scope="module")
def mcgrath() -> Document:
    return read_document(FIXTURES / "PMC5710015.nxml")


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_substring_is_located_at_its_offset(mcgrath: Document, data: st.DataObject) -> None:
    text = mcgrath.text
    start = data.draw(st.integers(0, len(text) - 20))
    length = data.draw(st.integers(12, 200))
    quote = text[start:start + length]
    assume(quote.strip() == quote and quote.strip('"') == quote and quote)
    hits = mcgrath.locate(quote)
    assert any(hit.start == start and hit.end == start + len(quote) for hit in hits)
    assert all(text[hit.start:hit.end] == quote for hit in hits)


@given(st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reformatted_substring_is_located_at_its_offset(mcgrath: Document, data: st.DataObject) -> None:
    """Case, whitespace and quote style changed, as a model copying the text might do."""
    text = mcgrath.text
    start = data.draw(st.integers(0, len(text) - 40))
    quote = text[start:start + data.draw(st.integers(20, 150))]
    assume(quote == quote.strip() and quote[0].isalnum() and quote[-1].isalnum())
    variant = " ".join(quote.split()).upper().replace("'", "\u2019")
    hits = mcgrath.locate(variant)
    assert any(hit.start == start and hit.end == start + len(quote) for hit in hits)


def test_navigation(mcgrath: Document) -> None:
    offset = mcgrath.text.index("Tracheal intubation time was 26.8")
    section = mcgrath.section_for(offset)
    assert section is not None and section.type == "results"
    sentence = mcgrath.sentence_at(offset)
    assert sentence is not None and mcgrath.sentence_text(sentence).startswith("Tracheal intubation time was")
    assert sentence in mcgrath.sentences_in("results")
    assert sentence not in mcgrath.sentences_in("methods")
    assert [s.title for s in mcgrath.section_path(offset)] == ["Results"]
    between = mcgrath.text.index("\n\n")
    assert mcgrath.sentence_at(between) is None
    outline = mcgrath.outline()
    assert outline[0]["type"] == "title" and sum(r["sentences"] for r in outline if r["level"] == 0) == len(
        mcgrath.sentences)


def test_evidence_flags_unsupported_quotes(mcgrath: Document) -> None:
    found = mcgrath.evidence("tracheal intubation time was 26.8 \u00b1 5.7 s")
    assert found.supported and found.spans[0].method == "normalized"
    assert found.spans[0].section_type == "results" and found.spans[0].sentence_start is not None
    missing = mcgrath.evidence("Mortality at 90 days was 12% in the McGrath group")
    assert not missing.supported and missing.spans == []
    assert not mcgrath.evidence("   ").supported


def test_repeated_quote_returns_every_occurrence(mcgrath: Document) -> None:
    hits = mcgrath.locate("McGrath")
    assert len(hits) == mcgrath.text.count("McGrath") > 5
    assert [h.start for h in hits] == sorted(h.start for h in hits)
    assert len(mcgrath.locate("McGrath", limit=2)) == 2


def test_json_round_trip(mcgrath: Document) -> None:
    again = Document.from_json(mcgrath.to_json())
    assert again == mcgrath
    assert again.locate("34.3 \u00b1 12.2")[0].cell is not None
