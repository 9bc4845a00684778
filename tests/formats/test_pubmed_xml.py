"""PubMed XML (efetch / baseline): field mapping on real files, errors, sniffing, round trips."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import leads.formats.pubmed_xml as pubmed_xml
from leads.errors import FormatError, LeadsError
from leads.formats import detect_format, read_bytes, read_records, write_records
from leads.records import AbstractSection, MeshHeading, Record, join_abstract

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
PUBMED = HERE / "pubmed_xml"


def _read(name: str) -> list[Record]:
    return list(read_records(PUBMED / name))


def _write(records: list[Record]) -> bytes:
    buffer = io.BytesIO()
    pubmed_xml.write(records, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- real files


def test_metric_trial_fields() -> None:
    (record,) = _read("efetch_pubmed_xml_22663011.xml")
    assert record.pmid == "22663011"  # not the CommentsCorrections PMIDs
    assert record.doi == "10.1056/nejmoa1203421"
    assert record.nct_ids == ["NCT01245062"]
    assert record.title == "Improved survival with MEK inhibition in BRAF-mutated melanoma."
    assert record.journal == "The New England journal of medicine"
    assert record.journal_abbrev == "N Engl J Med"
    assert (record.year, record.pub_date) == (2012, "2012 Jul 12")
    assert (record.volume, record.issue, record.pages) == ("367", "2", "107-14")
    assert record.language == "eng"
    assert record.authors[0] == "Flaherty, Keith T"
    assert record.authors[-1] == "METRIC Study Group"  # CollectiveName
    assert "Becker, Jürgen C" in record.authors
    assert [s.label for s in record.abstract_sections] == [
        "BACKGROUND",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    assert record.abstract == join_abstract(record.abstract_sections)
    assert record.abstract.startswith("BACKGROUND: Activating mutations")
    assert "0.63; P<0.001)" in record.abstract  # &lt; decoded
    assert "Randomized Controlled Trial" in record.publication_types
    melanoma = next(m for m in record.mesh if m.descriptor == "Melanoma")
    assert melanoma == MeshHeading(
        descriptor="Melanoma",
        ui="D008545",
        major=False,
        qualifiers=["drug therapy", "genetics", "mortality"],
        major_qualifiers=["drug therapy"],
    )
    assert record.extra["article_date"] == "2012-06-04"
    assert record.extra["medline_status"] == "MEDLINE"


def test_structured_abstract_and_major_topics() -> None:
    (record,) = _read("efetch_pubmed_xml_35830032_structured-abstract.xml")
    assert [(s.label, s.text[:20]) for s in record.abstract_sections] == [
        ("BACKGROUND", "Proton pump inhibito"),
        ("OBJECTIVE", "The purpose of this "),
        ("METHODS", "A narrative review w"),
        ("RESULTS", "Recent studies have "),
        ("CONCLUSION", "The key to mitigate "),
    ]
    # The label is kept as written; the NLM category (CONCLUSIONS) is in extra.
    assert record.extra["nlm_categories"][-1] == "CONCLUSIONS"
    major = {m.descriptor for m in record.mesh if m.major}
    assert major == {"Dementia", "Kidney Diseases", "Stomach Neoplasms"}
    dementia = next(m for m in record.mesh if m.descriptor == "Dementia")
    assert dementia.ui == "D003704"
    assert dementia.qualifiers == ["chemically induced", "drug therapy"]
    assert dementia.major_qualifiers == []
    assert (record.year, record.pub_date) == (2022, "2022 Apr-Jun")
    assert record.other_ids == {"pii": "S0004-28032022000200219"}
    assert record.publication_types == ["Journal Article", "Meta-Analysis", "Review"]
    assert record.nct_ids == []


def test_reference_list_does_not_leak_into_the_record() -> None:
    (record,) = _read("efetch_pubmed_xml_38909159_systematic-review.xml")
    assert record.pmid == "38909159"
    assert record.pmcid == "PMC11798830"
    assert record.doi == "10.1038/s41390-024-03336-8"
    assert "Systematic Review" in record.publication_types
    assert [s.label for s in record.abstract_sections][-1] == "IMPACT"


def test_two_articles_and_empty_set() -> None:
    records = _read("efetch_pubmed_xml_two-articles.xml")
    assert [r.pmid for r in records] == ["11748933", "11700088"]
    assert records[0].abstract_sections == []  # unlabelled abstract: plain text only
    assert records[0].abstract.startswith("This study subdivides")
    assert records[0].extra["abstract_copyright"] == "Copyright 2001 Elsevier Science."
    assert records[1].extra["medline_status"] == "PubMed-not-MEDLINE"
    assert records[1].title == "Proton MRI of (13)C distribution by J and chemical shift editing."
    assert _read("efetch_pubmed_xml_37909814_empty-set.xml") == []


def test_book_article_and_delete_citation() -> None:
    records = _read("update_articles_book_deletecitation.xml")
    assert [r.pmid for r in records] == ["11748933", "11700088", "20301295", "9876543", "12345678"]
    book = records[2]
    assert book.record_type == "article"
    assert book.title == "Alzheimer Disease Overview"
    assert book.extra["book_title"] == "GeneReviews®"  # <sup> flattened
    assert book.authors == ["Bird, Thomas D"]  # chapter authors, not the book's editors
    assert book.other_ids == {"bookaccession": "NBK1161"}
    assert [s.label for s in book.abstract_sections] == [
        "CLINICAL CHARACTERISTICS",
        "DIAGNOSIS/TESTING",
    ]
    deleted = records[3:]
    assert all(r.record_type == "other" for r in deleted)
    assert all(r.extra == {"pubmed_action": "delete"} for r in deleted)


def test_pretty_printed_book_root() -> None:
    (record,) = _read("jabref_MedlineImporterTestPubmedBook.xml")
    assert record.pmid == "21413195"
    # Layout line breaks inside text are collapsed.
    assert record.title == (
        "Rheumatoid Arthritis: National Clinical Guideline for Management and Treatment in Adults"
    )
    assert record.authors == [
        "National Collaborating Centre for Chronic Conditions (UK)",
        "Williams, Darlisha A",
    ]
    assert (record.year, record.pub_date) == (2009, "2009 02")
    assert record.extra["isbn"] == "9781860163593"


def test_gzipped_file(tmp_path: Path) -> None:
    target = tmp_path / "pubmed25n0001.xml.gz"
    target.write_bytes(gzip.compress((PUBMED / "efetch_pubmed_xml_two-articles.xml").read_bytes()))
    assert [r.pmid for r in read_records(target)] == ["11748933", "11700088"]


# --------------------------------------------------------------------------- errors


def test_truncated_xml_names_file_record_and_line() -> None:
    data = (PUBMED / "efetch_pubmed_xml_two-articles.xml").read_bytes()
    second = data.index(b"<PubmedArticle>", data.index(b"</PubmedArticle>"))
    truncated = data[: second + 2000]
    records: list[Record] = []
    with pytest.raises(FormatError) as info:
        records.extend(read_bytes(truncated, format="pubmed-xml", source="cut.xml"))
    error = info.value
    assert error.record == 2
    assert error.line is not None and error.line >= 3
    assert "cut.xml" in str(error) and "record 2" in str(error)


def test_streaming_yields_records_before_the_error() -> None:
    data = (PUBMED / "efetch_pubmed_xml_two-articles.xml").read_bytes()
    second = data.index(b"<PubmedArticle>", data.index(b"</PubmedArticle>"))
    seen = []
    with pytest.raises(FormatError):
        for record in pubmed_xml.read(io.BytesIO(data[: second + 50]), "cut.xml"):
            seen.append(record.pmid)
    assert seen == ["11748933"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("epost_ERROR_invalid-db.xml", "Invalid db name specified: nothing"),
        ("esummary_ERROR_no-id.xml", "Neither query_key nor id specified"),
    ],
)
def test_eutils_error_payload(name: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        list(read_records(PUBMED / name, format="pubmed-xml"))
    assert message in str(info.value)
    assert name in str(info.value)


def test_efetch_error_result() -> None:
    data = b'<?xml version="1.0"?>\n<eFetchResult>\n<ERROR>Empty id list - nothing todo</ERROR>\n</eFetchResult>\n'
    assert pubmed_xml.sniff(data)
    with pytest.raises(FormatError, match="Empty id list - nothing todo") as info:
        read_bytes(data, source="efetch.xml")
    assert info.value.line == 3


def test_jats_article_is_refused() -> None:
    with pytest.raises(FormatError, match="not PubMed XML: the root element is <article>"):
        list(read_records(PUBMED / "pmc-oa_pone.0046493_head.nxml", format="pubmed-xml"))


def test_missing_pmid_names_the_field() -> None:
    data = b"<PubmedArticleSet><PubmedArticle><MedlineCitation><Article/></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    with pytest.raises(FormatError) as info:
        read_bytes(data, format="pubmed-xml", source="x.xml")
    assert (info.value.record, info.value.field) == (1, "PMID")


def test_writer_refuses_a_record_without_pmid() -> None:
    with pytest.raises(LeadsError, match="no PMID"):
        _write([Record(title="untitled")])


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    "name",
    [
        "efetch_pubmed_xml_22663011.xml",
        "efetch_pubmed_xml_37909814_empty-set.xml",
        "update_articles_book_deletecitation.xml",
        "jabref_MedlineImporterTestPubmedBook.xml",
    ],
)
def test_sniff_accepts_pubmed_files(name: str) -> None:
    path = PUBMED / name
    assert pubmed_xml.sniff(path.read_bytes()[:65536])
    assert detect_format(path).name == "pubmed-xml"


def test_sniff_rejects_other_formats() -> None:
    import leads.formats.ctgov
    import leads.formats.endnote_xml
    import leads.formats.tabular  # noqa: F401

    others = [
        PUBMED / "pmc-oa_pone.0046493_head.nxml",
        PUBMED / "epost_ERROR_invalid-db.xml",
        *sorted((HERE / "endnote_xml").glob("*.xml")),
        *sorted((HERE / "ctgov").glob("*.json")),
        *sorted((HERE / "tabular").glob("*.csv")),
    ]
    for path in others:
        assert not pubmed_xml.sniff(path.read_bytes()[:65536]), path.name
    assert (
        detect_format(HERE / "endnote_xml" / "endnote20_pubmed_records.xml").name == "endnote-xml"
    )


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "name",
    [
        "efetch_pubmed_xml_22663011.xml",
        "efetch_pubmed_xml_35830032_structured-abstract.xml",
        "efetch_pubmed_xml_38909159_systematic-review.xml",
        "efetch_pubmed_xml_two-articles.xml",
        "update_articles_book_deletecitation.xml",
        "jabref_MedlineImporterTestPubmedBook.xml",
    ],
)
def test_round_trip_real_files(name: str) -> None:
    records = _read(name)
    data = _write(records)
    assert read_bytes(data, format="pubmed-xml", source="out.xml") == records
    root = etree.fromstring(data)
    assert root.tag == "PubmedArticleSet"
    assert b"<!DOCTYPE PubmedArticleSet" in data[:300]


def test_writer_puts_delete_citation_last(tmp_path: Path) -> None:
    deleted = Record(record_type="other", pmid="42", extra={"pubmed_action": "delete"})
    article = Record(pmid="7", title="A title")
    target = tmp_path / "update.xml.gz"
    assert write_records([deleted, article], target, "pubmed-xml") == 2
    records = list(read_records(target))
    assert [r.pmid for r in records] == ["7", "42"]
    root = etree.fromstring(gzip.decompress(target.read_bytes()))
    assert [child.tag for child in root] == ["PubmedArticle", "DeleteCitation"]


def test_writer_drops_characters_xml_cannot_carry() -> None:
    record = Record(pmid="5", title="bell\x07 and \x00null\ufffe and \ud800 surrogate")
    (back,) = read_bytes(_write([record]), format="pubmed-xml")
    assert back.title == "bell and null and surrogate"


# --------------------------------------------------------------------------- properties

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _norm(text: str) -> str:
    """What a text field becomes after writing and reading: XML-illegal characters dropped,
    XML whitespace runs collapsed to one space, then (as the Record model does) trimmed."""
    text = _XML_ILLEGAL.sub("", text)
    return re.sub(r"[ \t\n\r]+", " ", text).strip(" \t\n\r")


def _opt(text: str | None) -> str | None:
    """For title/abstract/journal, which the Record model also trims of Unicode whitespace."""
    return (_norm(text).strip() or None) if text is not None else None


def _raw(text: str | None) -> str | None:
    return (_norm(text) or None) if text is not None else None


any_text = st.text(st.characters(), max_size=40)
nonblank = any_text.filter(lambda t: _norm(t) != "")
labels = st.text(
    st.characters(categories=["Lu"], include_characters=" /"), min_size=1, max_size=12
).filter(lambda t: t.strip() != "")


@st.composite
def records(draw: st.DrawFn) -> Record:
    year = draw(st.one_of(st.none(), st.integers(1000, 2999)))
    pub_date = None
    if year is not None:
        pub_date = draw(
            st.sampled_from(
                [
                    None,
                    f"{year}",
                    f"{year} Mar",
                    f"{year} Mar 5",
                    f"{year} Spring",
                    f"{year} Dec-{year + 1} Jan",
                ]
            )
        )
    structured = draw(st.booleans())
    sections: list[AbstractSection] = []
    abstract = None
    if structured:
        sections = draw(
            st.lists(
                st.builds(AbstractSection, label=labels, text=any_text), min_size=1, max_size=4
            )
        )
        abstract = join_abstract(sections)
    else:
        abstract = draw(st.one_of(st.none(), any_text))
    qualifiers = draw(st.lists(nonblank.map(_norm), max_size=3, unique=True))
    mesh = draw(
        st.lists(
            st.builds(
                MeshHeading,
                descriptor=nonblank.map(_norm),
                ui=st.one_of(st.none(), st.from_regex(r"D[0-9]{6}", fullmatch=True)),
                major=st.booleans(),
                qualifiers=st.just(qualifiers),
                major_qualifiers=st.sets(st.sampled_from(qualifiers)).map(
                    lambda chosen: [q for q in qualifiers if q in chosen]
                )
                if qualifiers
                else st.just([]),
            ),
            max_size=3,
        )
    )
    return Record(
        pmid=str(draw(st.integers(1, 99_999_999))),
        doi=draw(
            st.one_of(
                st.none(), st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9.()-]{1,12}", fullmatch=True)
            )
        ),
        pmcid=draw(st.one_of(st.none(), st.integers(1, 9_999_999).map(lambda n: f"PMC{n}"))),
        nct_ids=draw(
            st.lists(st.from_regex(r"NCT[0-9]{8}", fullmatch=True), max_size=2, unique=True)
        ),
        title=draw(st.one_of(st.none(), any_text)),
        abstract=abstract,
        abstract_sections=sections,
        authors=draw(st.lists(any_text, max_size=4)),
        journal=draw(st.one_of(st.none(), any_text)),
        journal_abbrev=draw(st.one_of(st.none(), any_text)),
        year=year,
        pub_date=pub_date,
        volume=draw(st.one_of(st.none(), any_text)),
        issue=draw(st.one_of(st.none(), any_text)),
        pages=draw(st.one_of(st.none(), any_text)),
        language=draw(st.one_of(st.none(), nonblank)),
        mesh=mesh,
        publication_types=draw(st.lists(any_text, max_size=3)),
        keywords=draw(st.lists(any_text, max_size=3)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_generated_records_round_trip(record: Record) -> None:
    (back,) = read_bytes(_write([record]), format="pubmed-xml", source="gen.xml")
    assert back.pmid == record.pmid
    assert (back.doi, back.pmcid) == (record.doi, record.pmcid)
    assert back.title == _opt(record.title)
    assert back.journal == _opt(record.journal)
    assert back.journal_abbrev == _raw(record.journal_abbrev)
    assert (back.volume, back.issue, back.pages) == tuple(
        _raw(v) for v in (record.volume, record.issue, record.pages)
    )
    assert back.authors == [a for a in map(_norm, record.authors) if a]
    assert back.keywords == [k for k in map(_norm, record.keywords) if k]
    assert back.publication_types == [p for p in map(_norm, record.publication_types) if p]
    # A year alone is written as <PubDate><Year>, which reads back as that pub_date too.
    expected_date = record.pub_date or (str(record.year) if record.year is not None else None)
    assert (back.year, back.pub_date) == (record.year, expected_date)
    assert back.language == _norm(record.language) if record.language else back.language is None
    if record.abstract_sections:
        expected = [
            AbstractSection(label=_norm(s.label or ""), text=_norm(s.text))
            for s in record.abstract_sections
        ]
        assert back.abstract_sections == expected
        assert back.abstract == (join_abstract(expected).strip() or None)
    else:
        assert back.abstract == _opt(record.abstract)
    assert back.mesh == record.mesh
    assert back.nct_ids[: len(record.nct_ids)] == record.nct_ids
    # A second trip changes nothing at all (extra included).
    assert read_bytes(_write([back]), format="pubmed-xml") == [back]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_a_leads_error(data: bytes) -> None:
    try:
        result = read_bytes(data, format="pubmed-xml", source="fuzz.xml")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


_FRAGMENTS = st.sampled_from(
    [
        "<PubmedArticleSet>",
        "</PubmedArticleSet>",
        "<PubmedArticle>",
        "</PubmedArticle>",
        "<MedlineCitation>",
        "</MedlineCitation>",
        "<PMID>",
        "</PMID>",
        "123",
        "<Article><ArticleTitle>",
        "</ArticleTitle></Article>",
        "<DeleteCitation>",
        "</DeleteCitation>",
        "<ERROR>",
        "</ERROR>",
        "<PubDate><Year>",
        "</Year></PubDate>",
        "&amp;",
        "&bogus;",
        "<![CDATA[x]]>",
        "<!-- c -->",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=25))
def test_arbitrary_text_gives_records_or_a_leads_error(parts: list[str]) -> None:
    data = "".join(parts).encode("utf-8", errors="surrogatepass")
    try:
        result = read_bytes(data, format="pubmed-xml", source="fuzz.xml")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


# --------------------------------------------------------------------------- shared data


@pytest.mark.shared
def test_shared_eutils_and_pmc_files(shared_data: Path) -> None:
    eutils = shared_data / "api_fixtures" / "eutils"
    for path in sorted(eutils.glob("efetch_pubmed_xml_*.xml")):
        assert detect_format(path).name == "pubmed-xml"
        records = list(read_records(path))
        assert read_bytes(_write(records), format="pubmed-xml") == records
    for path in sorted(eutils.glob("e*.xml")):
        if not path.name.startswith("efetch_pubmed_xml_"):
            assert not pubmed_xml.sniff(path.read_bytes()[:65536]), path.name
    for path in sorted((shared_data / "api_fixtures" / "pmc").glob("*.*ml")):
        assert not pubmed_xml.sniff(path.read_bytes()[:65536]), path.name
        with pytest.raises(FormatError, match="not PubMed XML"):
            list(read_records(path, format="pubmed-xml"))
