"""EndNote XML: style runs, field mapping, errors, sniffing and round trips."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leads.formats.endnote_xml as endnote_xml
from leads.errors import FormatError, LeadsError
from leads.formats import detect_format, read_bytes, read_records
from leads.records import Record

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
ENDNOTE = HERE / "endnote_xml"


def _read(name: str) -> list[Record]:
    return list(read_records(ENDNOTE / name))


def _write(records: list[Record]) -> bytes:
    buffer = io.BytesIO()
    endnote_xml.write(records, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- real files


def test_pubmed_records_as_endnote_exports_them() -> None:
    records = _read("endnote20_pubmed_records.xml")
    assert len(records) == 6
    metric = records[0]
    assert metric.source_id == "1"
    assert metric.pmid == "22663011"  # accession-num of a PubMed (NLM) record
    assert metric.doi == "10.1056/nejmoa1203421"
    assert metric.nct_ids == ["NCT01245062"]  # from the abstract
    assert metric.title == "Improved survival with MEK inhibition in BRAF-mutated melanoma."
    assert metric.journal == "N Engl J Med"
    assert metric.authors[:2] == ["Flaherty, K. T.", "Robert, C."]
    assert (metric.year, metric.pub_date) == (2012, "Jul 12")
    assert (metric.volume, metric.issue, metric.pages) == ("367", "2", "107-14")
    assert "Melanoma/*drug therapy/genetics/mortality" in metric.keywords
    # Abstract paragraphs were separated by carriage returns (&#xD;).
    assert metric.abstract.split("\n")[1].startswith("METHODS: In this phase 3")
    assert metric.extra["remote_database_provider"] == "NLM"
    assert metric.extra["ref_type"] == "Journal Article" and metric.extra["ref_type_id"] == "17"
    assert records[2].pmcid == "PMC11798830"  # custom2
    assert "custom2" not in records[2].extra


def test_style_runs_are_joined() -> None:
    record = _read("endnote20_pubmed_records.xml")[4]
    assert (
        record.title
        == "Efficacy of Lactobacillus rhamnosus GG in children with CO2 retention: a randomised trial"
    )
    assert record.abstract == (
        "Background: L. rhamnosus GG was compared with placebo.\n"
        "Methods: 120 children; registered as NCT01234567.\n"
        "Results: P < 0.05."
    )
    assert record.nct_ids == ["NCT01234567"]
    assert record.authors == ["Müller, Hans-Jörg", "Wróbel, Łukasz"]
    assert record.doi == "10.1000/jpg.2019.0042"  # from a doi.org URL
    # An Embase accession number is not a PMID.
    assert record.pmid is None
    assert record.extra["accession_num"] == "627312345"
    assert record.journal_abbrev == "J Pediatr Gastroenterol"


def test_book_section_with_editors() -> None:
    record = _read("endnote20_pubmed_records.xml")[5]
    assert record.extra["ref_type"] == "Book Section"
    assert record.extra["secondary_authors"] == ["Higgins, J. P. T.", "Green, S."]
    assert record.extra["publisher"] == "John Wiley & Sons"
    assert record.journal == "Cochrane Handbook for Systematic Reviews of Interventions"
    assert record.extra["pdf_urls"] == [
        "internal-pdf://0123456789/Higgins-2008-Assessing risk of bias.pdf"
    ]


def test_jabref_pretty_printed_export() -> None:
    (record,) = _read("jabref_EndnoteXmlImporterTestArticle.xml")
    assert record.pmid == "25647015"
    assert record.doi == "10.1038/bjc.2014.606"
    # Layout whitespace inside single-line fields is collapsed.
    assert record.title == (
        "Trends in the lifetime risk of developing cancer in Great Britain: "
        "comparison of risk for those born from 1930 to 1960"
    )
    assert record.abstract == "test abstract"
    assert record.authors == ["Ahmad, AS", "Ormiston-Smith, N", "Sasieni, PD"]
    assert record.keywords[2] == "Aged, 80 and over"
    assert len(record.keywords) == 13
    assert record.extra["notes"].split("\n")[:4] == [
        "Ahmad, A S",
        "Ormiston-Smith, N",
        "Sasieni, P D",
        "eng",
    ]
    assert record.extra["source_app"] == "Bookends"


def test_jabref_three_style_title_and_isi_records() -> None:
    records = _read("jabref_EndnoteXmlImporterTestLabelAndMultiTitle.xml")
    assert [r.source_id for r in records] == ["13264", "13265", "650"]
    assert records[2].title == (
        "A demographic study of the south polar skua Catharacta maccormicki at Cape Crozier"
    )
    assert records[2].extra["label"] == "B4"
    # ISI accession numbers are not PMIDs.
    assert records[0].pmid is None
    assert records[0].extra["accession_num"] == "ISI:000200148800007"
    assert records[0].urls == ["<Go to ISI>://000200148800007"]
    assert records[1].extra["ref_type"] == "Book"
    assert records[0].language == "English"


def test_empty_keyword_styles_and_unknown_fields() -> None:
    (record,) = _read("jabref_EndnoteXmlImporterTest_EmptyKeywordStyle.xml")
    assert record.keywords == ["anxiety; craving; dependency; destress; health restoration"]
    assert record.pmid == "29937971"
    assert record.extra["endnote_fields"] == {"user16": "PMC6011367"}


# --------------------------------------------------------------------------- errors


def test_truncated_file_names_file_record_and_line() -> None:
    data = (ENDNOTE / "endnote20_pubmed_records.xml").read_bytes()
    cut = data[: data.index(b"<record>", data.index(b"</record>")) + 500]
    with pytest.raises(FormatError) as info:
        read_bytes(cut, format="endnote-xml", source="library.xml")
    assert info.value.record == 2
    assert info.value.line == 1
    assert "library.xml" in str(info.value) and "record 2" in str(info.value)


def test_other_xml_is_refused() -> None:
    data = (HERE / "pubmed_xml" / "efetch_pubmed_xml_two-articles.xml").read_bytes()
    with pytest.raises(FormatError, match="not EndNote XML"):
        read_bytes(data, format="endnote-xml", source="pubmed.xml")


# --------------------------------------------------------------------------- sniffing


def test_sniff() -> None:
    import leads.formats.ctgov
    import leads.formats.pubmed_xml
    import leads.formats.tabular  # noqa: F401

    for path in sorted(ENDNOTE.glob("*.xml")):
        assert endnote_xml.sniff(path.read_bytes()[:65536]), path.name
        assert detect_format(path).name == "endnote-xml"
    assert endnote_xml.sniff(b'<?xml version="1.0"?><xml><records></records></xml>')
    for path in [
        *sorted((HERE / "pubmed_xml").glob("*.*ml")),
        *sorted((HERE / "ctgov").glob("*.json")),
        *sorted((HERE / "tabular").glob("*.csv")),
    ]:
        assert not endnote_xml.sniff(path.read_bytes()[:65536]), path.name


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(p.name for p in ENDNOTE.glob("*.xml")))
def test_round_trip_real_files(name: str) -> None:
    records = _read(name)
    data = _write(records)
    assert data.startswith(b"<?xml")
    assert read_bytes(data, format="endnote-xml", source="out.xml") == records


def test_pubmed_records_survive_endnote() -> None:
    import leads.formats.pubmed_xml  # noqa: F401

    records = list(read_records(HERE / "pubmed_xml" / "efetch_pubmed_xml_22663011.xml"))
    (back,) = read_bytes(_write(records), format="endnote-xml")
    for field in ("pmid", "doi", "title", "authors", "journal", "journal_abbrev", "year"):
        assert getattr(back, field) == getattr(records[0], field), field
    assert back.abstract == records[0].abstract
    assert back.nct_ids == records[0].nct_ids


_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _line(text: str) -> str:
    """A single-line field after writing and reading (illegal characters dropped,
    whitespace runs collapsed, trimmed)."""
    return re.sub(r"[ \t\n\r]+", " ", _XML_ILLEGAL.sub("", text)).strip(" \t\n\r")


def _multiline(text: str) -> str:
    lines = [
        re.sub(r"[ \t\n\r]+", " ", line).strip(" \t")
        for line in re.split(r"\r\n|\r|\n", _XML_ILLEGAL.sub("", text))
    ]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


any_text = st.text(st.characters(), max_size=30)
one_line = any_text.filter(lambda t: "\n" not in t and "\r" not in t)


@st.composite
def records(draw: st.DrawFn) -> Record:
    return Record(
        source_id=draw(st.one_of(st.none(), st.integers(1, 10**6).map(str))),
        pmid=draw(st.one_of(st.none(), st.integers(1, 99_999_999).map(str))),
        doi=draw(
            st.one_of(st.none(), st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9.-]{1,12}", fullmatch=True))
        ),
        title=draw(st.one_of(st.none(), any_text)),
        abstract=draw(st.one_of(st.none(), any_text)),
        authors=draw(st.lists(any_text, max_size=4)),
        journal=draw(st.one_of(st.none(), any_text)),
        journal_abbrev=draw(st.one_of(st.none(), any_text)),
        year=draw(st.one_of(st.none(), st.integers(1000, 2999))),
        pub_date=draw(st.one_of(st.none(), any_text)),
        volume=draw(st.one_of(st.none(), any_text)),
        issue=draw(st.one_of(st.none(), any_text)),
        pages=draw(st.one_of(st.none(), any_text)),
        language=draw(st.one_of(st.none(), any_text)),
        keywords=draw(st.lists(one_line, max_size=4)),
        urls=draw(st.lists(any_text, max_size=2)),
    )


def _opt(value: str | None, normalise: object = _line, strip: bool = False) -> str | None:
    if value is None:
        return None
    text = normalise(value)  # type: ignore[operator]
    if strip:
        text = text.strip()
    return text or None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=3))
def test_generated_records_round_trip(generated: list[Record]) -> None:
    back = read_bytes(_write(generated), format="endnote-xml", source="gen.xml")
    assert len(back) == len(generated)
    for number, (record, read) in enumerate(zip(generated, back, strict=True), start=1):
        assert read.source_id == (record.source_id or str(number))
        assert (read.pmid, read.doi) == (record.pmid, record.doi)
        assert read.title == _opt(record.title, strip=True)
        assert read.journal == _opt(record.journal, strip=True)
        assert read.abstract == _opt(record.abstract, _multiline, strip=True)
        assert read.journal_abbrev == _opt(record.journal_abbrev)
        for field in ("pub_date", "volume", "issue", "pages", "language"):
            assert getattr(read, field) == _opt(getattr(record, field)), field
        assert read.year == record.year
        assert read.authors == [a for a in map(_line, record.authors) if a]
        assert read.keywords == [k for k in map(_line, record.keywords) if k]
        assert read.urls == [u for u in map(_line, record.urls) if u]
    assert read_bytes(_write(back), format="endnote-xml") == back


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_a_leads_error(data: bytes) -> None:
    try:
        result = read_bytes(data, format="endnote-xml", source="fuzz.xml")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


_FRAGMENTS = st.sampled_from(
    [
        "<xml>",
        "</xml>",
        "<records>",
        "</records>",
        "<record>",
        "</record>",
        "<titles><title>",
        "</title></titles>",
        '<style face="italic">',
        "</style>",
        "<dates><year>",
        "</year></dates>",
        "<accession-num>",
        "</accession-num>",
        "<electronic-resource-num>",
        "</electronic-resource-num>",
        "<contributors><authors><author>",
        "</author></authors></contributors>",
        "<urls><related-urls><url>",
        "</url></related-urls></urls>",
        "&amp;",
        "&#xD;",
        "&nope;",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=25))
def test_arbitrary_text_gives_records_or_a_leads_error(parts: list[str]) -> None:
    data = "".join(parts).encode("utf-8", errors="surrogatepass")
    try:
        result = read_bytes(data, format="endnote-xml", source="fuzz.xml")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)
