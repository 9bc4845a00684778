"""RIS reader/writer: real exports (vendored from ASReview's demo data), round trips, malformed
input, content sniffing and property tests."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leads.formats.bibtex
import leads.formats.medline
import leads.formats.ris
from leads.errors import FormatError, LeadsError
from leads.formats import detect_format, get_format, read_bytes, read_records, write_records
from leads.records import Record

RIS = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "ris"
MEDLINE = RIS.parent / "medline"
BIBTEX = RIS.parent / "bibtex"


def read(name: str) -> list[Record]:
    return list(read_records(RIS / name, format="ris"))


def ris_bytes(records: list[Record]) -> bytes:
    buf = io.BytesIO()
    write_records(records, buf, "ris")
    return buf.getvalue()


def norm(value: str | None) -> str | None:
    """What RIS keeps of a text: its words (line breaks and runs of spaces are not kept)."""
    if value is None:
        return None
    return " ".join(value.replace("\x00", "").split()) or None


# --- real files: field-level checks -------------------------------------------------------------


def test_pubmed_via_endnote() -> None:
    records = read("pubmed_endnote.txt")
    assert len(records) == 6
    first = records[0]
    assert first.pmid == "21553931"  # AN, because DP says NLM
    assert first.doi == "10.2165/11586800-000000000-00000"
    assert first.title.startswith("Boswellia serrata: an overall assessment")
    assert first.authors == ["Abdel-Tawab, M.", "Werz, O.", "Schubert-Zsilavecz, M."]
    assert first.journal == "Clin Pharmacokinet"
    assert (first.year, first.pub_date) == (2011, "2011-06")  # PY 2011 + DA "Jun"
    assert (first.volume, first.issue, first.pages) == ("50", "6", "349-69")
    assert first.language == "eng"
    # EndNote puts one keyword per continuation line under a single KW tag.
    assert len(first.keywords) == 10
    assert "Boswellia/*chemistry" in first.keywords
    assert first.source_id == "369"
    assert first.extra["ris_type"] == "JOUR"
    assert first.extra["ris"]["DP"] == ["NLM"]
    assert first.extra["ris"]["ET"] == ["2011/05/11"]
    assert first.extra["notes"][0].startswith("1179-1926\nAbdel-Tawab, Mona\n")
    assert records[1].pub_date == "2018-03-01"  # DA "Mar 1"
    assert all(r.pmid for r in records)


def test_pubmed_via_zotero() -> None:
    first = read("pubmed_zotero.ris")[0]
    assert first.title.startswith("The importance of cognitive flexibility")
    assert first.authors[:2] == ["Rudnik, Agata", "Piotrowicz, Grazyna"]
    assert first.journal == "Przeglad gastroenterologiczny"  # T2 of a JOUR
    assert first.journal_abbrev == "Prz Gastroenterol"
    assert (first.year, first.pub_date) == (2019, None)  # "2019///" says only the year
    assert first.doi == "10.5114/pg.2018.81081"
    assert first.pages == "121-128"
    assert first.abstract.startswith("Introduction: There are studies")


def test_embase() -> None:
    records = read("embase.ris")
    assert len(records) == 6
    first = records[0]
    assert (
        first.title
        == "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound"
    )
    assert first.authors == ["Liu R.", "Adler D.G."]  # A1
    assert first.year == 2014  # Y1
    assert first.journal == "Endoscopic Ultrasound"
    assert first.doi == "10.4103/2303-9027.138783"
    assert first.other_ids == {"embase": "L373791783"}
    assert first.abstract  # N2
    assert first.extra["ris"]["JO"] == ["Endoscopic Ultrasound"]  # the unused twin of JF is kept


def test_ovid_with_numbering_and_trailing_tags() -> None:
    records = read("ovid_psycinfo_first2.ris")
    assert len(records) == 2  # "1." and "Link to the Ovid Full Text ..." lines are not records
    first = records[0]
    assert first.doi == "10.1002/cpp.2398"  # from "http://dx.doi.org/10.1002/cpp.2398"
    assert first.year == 2019  # Y1 "2019//"
    assert first.source_id == "2019-65183-001"
    assert first.pages is None  # SP "No" / EP "Specified"
    assert first.extra["ris"]["SP"] == ["No"]
    assert first.extra["ris"]["EP"] == ["Specified"]
    # Ovid writes NL after ER; it belongs to the record before it.
    assert first.extra["ris"]["NL"] == ["Clin Psychol Psychother"]
    assert records[1].extra["ris"]["NL"] == ["J Health Psychol"]
    assert records[1].keywords[0] == "*Body Image"


def test_scopus_pmid_in_c2() -> None:
    (record,) = read("scopus_record4.ris")
    assert record.pmid == "31574429"  # Scopus puts the PubMed ID in C2
    assert record.doi == "10.1016/j.yebeh.2019.106490"
    assert record.journal == "Epilepsy and Behavior"
    assert record.journal_abbrev == "Epilepsy Behav."
    assert record.other_ids["scopus"] == "2-s2.0-85072655092"
    assert any(note.startswith("References:") for note in record.extra["notes"])


def test_web_of_science_ris_export() -> None:
    records = read("web_of_science.txt")
    assert len(records) == 10
    first = records[0]
    assert first.authors == ["Alceste, F", "Luke, TJ", "Kassin, SM"]
    assert first.journal == "JOURNAL OF APPLIED RESEARCH IN MEMORY AND COGNITION"
    assert first.doi == "10.1016/j.jarmac.2018.03.001"
    assert first.other_ids == {"wos": "000444108200009"}
    assert first.year == 2018
    assert first.extra["notes"][0].startswith("Times Cited in Web of Science Core Collection")


def test_rayyan_export_keywords_and_embedded_ids() -> None:
    records = read("ris_issue_992.txt")
    assert len(records) == 19
    first = records[0]
    assert first.keywords[:2] == ["Health Facility Administration", "Joint Commission"]
    assert len(first.keywords) == 13
    assert first.keywords[-1] == "Patient Education"
    assert first.extra["ris"]["AN"] == ["rayyan-264552525"]
    by_an = {r.extra["ris"]["AN"][0]: r for r in records}
    assert by_an["rayyan-264552528"].pmid == "23803397"  # "PMID: NLM23803397" in the notes
    assert by_an["rayyan-264552528"].other_ids["wos"] == "000298449100001"
    assert by_an["rayyan-264552530"].pmid == "23162881"  # from a PubMed URL


def test_continuation_lines_and_blank_lines_inside_a_value() -> None:
    records = read("ris_issue_1099.txt")
    assert len(records) == 7
    assert records[0].extra["ris"]["U3"] == ["Cited By :9\n\nExport Date: 12 May 2022\n\nArticle"]
    assert records[0].journal_abbrev == "Adv. Electr. Electron. Eng."
    assert records[1].extra["ris_type"] == "BOOK"


def test_faulty_year_is_kept_not_guessed() -> None:
    (record,) = read("faulty_year.ris")
    assert record.year is None
    assert record.extra["ris"]["PY"] == ["10 15"]


def test_empty_values() -> None:
    records = read("baseline_empty_values.ris")
    assert [r.title for r in records] == ["Title of reference", None, "Title of reference", None]
    assert [r.abstract is not None for r in records] == [False, True, False, True]
    assert [r.source_id for r in records] == ["1", "2", "3", "4"]


def test_reference_types_with_bom_and_crlf() -> None:
    records = read("baseline_reference_types.ris")
    assert len(records) == 61
    assert records[0].extra["ris_type"] == ""  # "TY  -" with no type, written back the same
    types = [r.extra.get("ris_type") for r in records]
    assert {"JOUR", "CHAP", "THES", "WEB"} <= set(types)
    jour = records[types.index("JOUR")]
    assert jour.extra["notes"] == ["Reference Type: Journal Article"]


def test_notes_split_and_multiline() -> None:
    records = read("baseline_tag-notes.ris")
    assert records[1].extra["notes"] == ["What about", "multiline notes?"]
    oops = next(r for r in records if r.extra["notes"][0].startswith("Oops"))
    assert oops.extra["notes"] == [
        "Oops, there is an empty line",
        "in this record's notes section.",
    ]
    ansi = next(r for r in records if "ANSI" in r.extra["notes"][0])
    assert "ÿ" in ansi.extra["notes"][-1]


def test_zotero_html_notes_are_stripped() -> None:
    records = read("baseline_tag-notes_zotero.ris")
    assert [r.extra["notes"] for r in records] == [
        ["XHTML tags should be stripped, leaving content intact."]
    ] * 4


def test_asreview_labels() -> None:
    records = read("baseline_tag-notes_labels.ris")
    assert len(records) == 32
    for record in records:
        if 'labeled "relevant"' in record.title:
            expected: bool | None = True
        elif 'labeled "irrelevant"' in record.title:
            expected = False
        else:
            expected = None
        assert record.label is expected, record


def test_label_in_lb_tag() -> None:
    text = "TY  - JOUR\nTI  - X\nLB  - ASReview_irrelevant\nLB  - 42\nER  - \n"
    (record,) = read_bytes(text.encode(), format="ris", source="x.ris")
    assert record.label is False
    assert record.extra["ris"]["LB"] == ["42"]  # an ordinary RIS label is kept
    (again,) = read_bytes(ris_bytes([record]), format="ris", source="y.ris")
    assert again.label is False  # written as an N1 mark, the way ASReview exports it


def test_zotero_export_with_label_and_full_date() -> None:
    first = read("baseline_zotero_first3.ris")[0]
    assert first.label is True  # "<p>ASReview_relevant</p>"
    assert first.pub_date == "2021-02-01"
    assert first.journal == "Nature Machine Intelligence"
    assert first.authors[0] == "van de Schoot, Rens"


def test_lens_export_pmid_and_pmcid_from_links() -> None:
    first = read("baseline_first3.ris")[0]
    assert first.pmid == "22752652"  # http://www.ncbi.nlm.nih.gov/pubmed/22752652
    assert first.pmcid == "PMC3553406"  # http://europepmc.org/articles/PMC3553406
    assert first.source_id == "000-463-679-101-319"
    assert first.pub_date == "2012-07-03"
    assert "https://lens.org/000-463-679-101-319" in first.urls
    assert first.extra["ris"]["SN"] == ["18602002", "15361632"]


def test_tag_definitions_with_tabs() -> None:
    (record,) = read("baseline_tag_and_field_definitions.ris")
    assert record.authors == ["First Authors", "Authors"]  # "A1\t- First Authors"
    assert record.title == "Title"  # TI wins over T1
    assert record.abstract == "Abstract"  # AB wins over N2
    assert record.journal == "Alternate Title 3"  # JF; T2 is not a journal for TY GEN
    assert record.journal_abbrev == "Alternate Title 1"
    assert record.source_id == "ID"
    assert record.doi is None and record.year is None
    kept = record.extra["ris"]
    assert kept["T1"] == ["Primary Title"]
    assert kept["N2"] == ["Notes Abstract"]
    assert kept["DO"] == ["DOI"]
    # "ER  - End of Reference" is not an end of record (a real ER has no value): the record
    # goes on to the unknown tag after it and ends at the bare "ER  -".
    assert kept["UK"] == ["Unknown Tag"]
    assert "ER" not in kept


def test_list_tags() -> None:
    (record,) = read("baseline_tag_and_field_definitions_lists.ris")
    assert record.authors == ["First Author 1", "First Author 2", "Author 1", "Author 2"]
    assert record.keywords == ["Keywords 1", "Keywords 2"]
    assert record.extra["notes"] == ["Notes 1", "Notes 2"]
    assert record.extra["ris"]["A2"] == ["Secondary Author 1", "Secondary Author 2"]


def test_proquest_accession_is_not_a_pmid() -> None:
    records = read("proquest.ris")
    assert len(records) == 6
    assert all(r.pmid is None for r in records)
    assert records[0].extra["ris"]["AN"] == ["2214991469; 51887"]
    assert records[0].journal == "Journal of Traumatic Stress"  # JF


def test_nct_ids_from_abstract_and_notes() -> None:
    text = (
        "TY  - JOUR\nTI  - A trial\nAB  - Registered as NCT01234567.\n"
        "N1  - Also nct 07654321; see References below\nER  - \n"
    )
    (record,) = read_bytes(text.encode(), format="ris", source="x.ris")
    assert record.nct_ids == ["NCT07654321", "NCT01234567"]


def test_utf16_and_windows_1252_files() -> None:
    original = read("baseline_first3.ris")
    text = (RIS / "baseline_first3.ris").read_text(encoding="utf-8-sig")
    utf16 = read_bytes(text.encode("utf-16"), source="x.ris")  # detected from content
    cp1252 = read_bytes(text.encode("cp1252"), format="ris", source="x.ris")
    assert utf16 == original and cp1252 == original
    assert original[0].authors[0] == "Blomberg, Björn A."


# --- round trips ------------------------------------------------------------------------------

FIXTURES = sorted(p.name for p in RIS.iterdir() if p.suffix in (".ris", ".txt"))


@pytest.mark.parametrize("name", FIXTURES)
def test_round_trip_is_lossless(name: str) -> None:
    records = read(name)
    again = read_bytes(ris_bytes(records), format="ris", source="again.ris")
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records]


def test_writer_output_shape() -> None:
    data = ris_bytes(read("pubmed_zotero.ris"))
    text = data.decode("utf-8")
    assert b"\r" not in data and not data.startswith(b"\xef\xbb\xbf")
    assert text.startswith("TY  - JOUR\n")
    assert text.endswith("ER  - \n")
    assert text.count("TY  - ") == text.count("ER  - ") == 6


def test_medline_records_to_ris() -> None:
    source = list(
        read_records(MEDLINE / "efetch_pubmed_medline_4-records_2008.txt", format="medline")
    )
    source[0].nct_ids = ["NCT00000102"]
    source[0].label = False
    back = read_bytes(ris_bytes(source), format="ris", source="x.ris")
    fields = ["pmid", "pmcid", "doi", "title", "authors", "journal", "journal_abbrev", "year"]
    fields += ["pub_date", "volume", "issue", "pages", "language", "nct_ids", "label"]
    for before, after in zip(source, back, strict=True):
        assert after.model_dump(include=set(fields)) == before.model_dump(include=set(fields))
        assert norm(after.abstract) == norm(before.abstract)
    assert back[0].extra["ris"]["DB"] == ["PubMed"]


def test_bibtex_records_to_ris() -> None:
    source = list(read_records(BIBTEX / "latex_accents.bib", format="bibtex"))
    back = read_bytes(ris_bytes(source), format="ris", source="x.ris")
    for before, after in zip(source, back, strict=True):
        assert (after.title, after.authors, after.doi, after.pmid) == (
            before.title,
            before.authors,
            before.doi,
            before.pmid,
        )


def test_changed_label_replaces_the_asreview_mark() -> None:
    records = read("baseline_tag-notes_labels.ris")
    flipped = [
        r.model_copy(update={"label": not r.label if r.label is not None else True})
        for r in records
    ]
    again = read_bytes(ris_bytes(flipped), format="ris", source="x.ris")
    assert [r.label for r in again] == [r.label for r in flipped]
    # Notes other than the mark survive.
    assert "Additional notes 1." in "\n".join(again[10].extra["notes"])


# --- malformed input --------------------------------------------------------------------------


def test_tag_line_outside_a_record() -> None:
    text = "TY  - JOUR\nTI  - A\nER  - \n\nTI  - B\nER  - \n"
    with pytest.raises(FormatError) as info:
        read_bytes(text.encode(), format="ris", source="bad.ris")
    message = str(info.value)
    assert "bad.ris" in message and "record 2" in message and "line 5" in message
    assert info.value.field == "TI"


def test_record_without_ty_right_after_an_er() -> None:
    text = "TY  - JOUR\nTI  - A\nER  - \nTI  - B\nER  - \n"
    with pytest.raises(FormatError, match=r"bad\.ris: record 2, line 5, field 'ER'"):
        read_bytes(text.encode(), format="ris", source="bad.ris")


def test_record_without_er_before_next_ty() -> None:
    text = "TY  - JOUR\nTI  - A\nER  - \nTY  - JOUR\nTI  - B\nTY  - JOUR\nER  - \n"
    with pytest.raises(FormatError) as info:
        read_bytes(text.encode(), format="ris", source="bad.ris")
    assert (
        "bad.ris" in str(info.value)
        and "record 2" in str(info.value)
        and "line 6" in str(info.value)
    )


def test_file_ending_inside_a_record() -> None:
    with pytest.raises(FormatError, match=r"bad\.ris: record 1, line 1"):
        read_bytes(b"TY  - JOUR\nTI  - truncated", format="ris", source="bad.ris")


def test_not_ris_at_all() -> None:
    with pytest.raises(FormatError, match="no RIS records"):
        read_bytes(b"title,abstract\nA,B\n", format="ris", source="x.csv")
    assert read_bytes(b"  \n\n", format="ris", source="empty.ris") == []


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_sniff_accepts_ris(name: str) -> None:
    head = (RIS / name).read_bytes()[:65536]
    assert leads.formats.ris.sniff(head)
    assert detect_format(RIS / name).name == "ris"


@pytest.mark.parametrize(
    "path",
    [
        MEDLINE / "efetch_pubmed_medline_4-records_2008.txt",
        MEDLINE / "pubmed_30922926_modern.nbib",
        MEDLINE / "wos_rispy_example.txt",
        BIBTEX / "latex_accents.bib",
    ],
    ids=lambda p: p.name,
)
def test_sniff_rejects_other_formats(path: Path) -> None:
    assert not leads.formats.ris.sniff(path.read_bytes()[:65536])


def test_sniff_rejects_jsonl_and_csv() -> None:
    assert not leads.formats.ris.sniff(b'{"title": "TY  - JOUR"}\n')
    assert not leads.formats.ris.sniff(b"title,abstract\nA study,TY is a tag\n")


# --- the real files in ../shared/data -----------------------------------------------------------


def test_all_asreview_ris_flavours(shared_data: Path) -> None:
    folder = shared_data / "formats" / "asreview_demo_data"
    expected = {
        "_baseline.ris": 100,
        "baseline_zotero.ris": 100,
        "scopus.ris": 6,
        "ovid_psycinfo.ris": 6,
        "ris_issue_1099.txt": 7,
        "ris_issue_992.txt": 19,
        "pubmed_endnote.txt": 6,
        "web_of_science.txt": 10,
    }
    paths = sorted(folder.glob("*.ris")) + [
        folder / name for name in expected if name.endswith(".txt")
    ]
    assert len(paths) >= 18
    for path in paths:
        assert detect_format(path).name == "ris", path.name
        records = list(read_records(path))
        assert records, path.name
        if path.name in expected:
            assert len(records) == expected[path.name], path.name
        again = read_bytes(ris_bytes(records), format="ris", source=path.name)
        assert [r.model_dump() for r in again] == [r.model_dump() for r in records], path.name
    scopus = list(read_records(folder / "scopus.ris"))
    assert sum(1 for r in scopus if r.pmid) == 5
    assert sum(1 for r in read_records(folder / "baseline_zotero.ris") if r.label is not None) > 0


# --- properties -------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
WORDS = TEXT.filter(lambda s: norm(s) is not None)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG_LINES = st.lists(
    st.one_of(
        st.sampled_from(["TY  - JOUR", "ER  - ", "ER  -", "", "TI  - x", "AU  - A, B", "1."]),
        st.builds(
            lambda tag, value: f"{tag}  - {value}",
            st.from_regex(r"[A-Z][A-Z0-9]", fullmatch=True),
            TEXT,
        ),
        TEXT,
    ),
    max_size=12,
)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_leads_errors(data: bytes) -> None:
    with contextlib.suppress(LeadsError):
        assert isinstance(read_bytes(data, format="ris", source="x.ris"), list)


@SETTINGS
@given(TAG_LINES, st.sampled_from(["\n", "\r\n", "\r"]))
def test_ris_shaped_text_only_raises_leads_errors(lines: list[str], newline: str) -> None:
    try:
        records = read_bytes(newline.join(lines).encode("utf-8"), format="ris", source="x.ris")
    except LeadsError as exc:
        assert "x.ris" in str(exc)
    else:
        assert all(isinstance(r, Record) for r in records)


RECORDS = st.builds(
    Record,
    title=st.none() | TEXT,
    abstract=st.none()
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120),
    authors=st.lists(WORDS, max_size=4),
    journal=st.none() | TEXT,
    journal_abbrev=st.none() | WORDS,
    year=st.none() | st.integers(1000, 2999),
    volume=st.none() | st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    issue=st.none() | st.from_regex(r"[0-9A-Za-z]{1,4}", fullmatch=True),
    pages=st.none() | st.from_regex(r"[e]?[1-9][0-9]{0,3}(-[1-9][0-9]{0,3})?", fullmatch=True),
    doi=st.none() | st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9._-]{1,12}[a-z0-9]", fullmatch=True),
    pmid=st.none() | st.integers(1, 99_999_999).map(str),
    keywords=st.lists(WORDS, max_size=3),
    language=st.none() | st.sampled_from(["eng", "English", "ger"]),
    label=st.none() | st.booleans(),
)


@SETTINGS
@given(st.lists(RECORDS, min_size=1, max_size=4))
def test_generated_records_round_trip(records: list[Record]) -> None:
    again = read_bytes(ris_bytes(records), format="ris", source="gen.ris")
    assert len(again) == len(records)
    for before, after in zip(records, again, strict=True):
        for name in ("title", "abstract", "journal", "journal_abbrev"):
            assert norm(getattr(after, name)) == norm(getattr(before, name)), name
        for name in ("authors", "keywords"):
            assert [norm(v) for v in getattr(after, name)] == [
                norm(v) for v in getattr(before, name)
            ]
        for name in ("year", "volume", "issue", "pages", "doi", "pmid", "language", "label"):
            assert getattr(after, name) == getattr(before, name), name


def test_writer_is_registered_with_extension() -> None:
    fmt = get_format("ris")
    assert fmt.extensions == (".ris",) and fmt.read is not None and fmt.write is not None
