"""MEDLINE (PubMed tagged text) and Web of Science tagged readers/writers."""

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
from leads.formats import detect_format, read_bytes, read_records, write_records
from leads.records import AbstractSection, MeshHeading, Record

MEDLINE = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "medline"
RIS = MEDLINE.parent / "ris"
BIBTEX = MEDLINE.parent / "bibtex"
EFETCH = MEDLINE / "efetch_pubmed_medline_4-records_2008.txt"
MODERN = MEDLINE / "pubmed_30922926_modern.nbib"
WOS = MEDLINE / "wos_rispy_example.txt"


def written(records: list[Record], fmt: str) -> bytes:
    buf = io.BytesIO()
    write_records(records, buf, fmt)
    return buf.getvalue()


def norm(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.replace("\x00", "").split()) or None


# --- MEDLINE: real files ------------------------------------------------------------------------


def test_efetch_four_records() -> None:
    records = list(read_records(EFETCH))
    assert [r.pmid for r in records] == ["16403221", "16377612", "14871861", "14630660"]
    assert [r.title for r in records] == [
        "A high level interface to SCOP and ASTRAL implemented in python.",
        "GenomeDiagram: a python package for the visualization of large-scale genomic data.",
        "Open source clustering software.",
        "PDB file parser and structure class implemented in Python.",
    ]
    assert [r.doi for r in records] == [
        "10.1186/1471-2105-7-10",
        "10.1093/bioinformatics/btk021",
        "10.1093/bioinformatics/bth078",
        None,
    ]
    first, second, third, fourth = records
    assert first.pmcid == "PMC1373603"
    assert first.authors == ["Casbon, James A", "Crooks, Gavin E", "Saqi, Mansoor A S"]
    assert (first.journal, first.journal_abbrev) == ("BMC bioinformatics", "BMC Bioinformatics")
    assert (first.year, first.pub_date, first.volume, first.issue, first.pages) == (
        2006,
        None,
        "7",
        None,
        "10",
    )
    assert (second.year, second.pub_date, second.issue, second.pages) == (
        2006,
        "2006-03-01",
        "5",
        "616-7",
    )
    assert third.pub_date == "2004-06-12"
    assert first.language == "eng"
    assert first.publication_types == ["Evaluation Studies", "Journal Article"]
    assert first.extra["medline"]["AID"] == ["1471-2105-7-10 [pii]"]
    assert first.extra["medline"]["SO"] == ["BMC Bioinformatics. 2006 Jan 10;7:10."]
    # Continuation lines are joined with one space.
    assert first.extra["medline"]["AD"][0].startswith(
        "Bioinformatics, Institute of Cell and Molecular Science, School of Medicine and Dentistry, Queen Mary"
    )
    assert fourth.extra["medline"]["RN"] == ["0 (Macromolecular Substances)"]


def test_mesh_major_flags() -> None:
    first, _, _, fourth = read_records(EFETCH)
    assert first.mesh[0] == MeshHeading(descriptor="Database Management Systems", major=True)
    assert first.mesh[2] == MeshHeading(
        descriptor="Information Storage and Retrieval",
        major=False,
        qualifiers=["methods"],
        major_qualifiers=["methods"],
    )
    assert first.mesh[3] == MeshHeading(descriptor="Programming Languages")
    assert [m.descriptor for m in first.mesh if m.major] == [
        "Database Management Systems",
        "Databases, Protein",
        "Software",
        "User-Computer Interface",
    ]
    both = next(m for m in fourth.mesh if m.descriptor == "Information Storage and Retrieval")
    assert both.qualifiers == both.major_qualifiers == ["methods", "standards"]
    assert next(
        m for m in fourth.mesh if m.descriptor == "Database Management Systems"
    ).major_qualifiers == ["standards"]


def test_structured_abstract_sections() -> None:
    first, second, _, fourth = read_records(EFETCH)
    assert [s.label for s in first.abstract_sections] == ["BACKGROUND", "RESULTS", "CONCLUSION"]
    assert first.abstract_sections[0].text.startswith(
        "Benchmarking algorithms in structural bioinformatics"
    )
    assert first.abstract_sections[2].text == (
        "The modules make the analysis and generation of datasets for use in structural genomics "
        "easier and more principled."
    )
    assert first.abstract.startswith("BACKGROUND: Benchmarking")
    assert "\nRESULTS: We have designed" in first.abstract
    assert [s.label for s in second.abstract_sections] == [
        "SUMMARY",
        "AVAILABILITY",
        "SUPPLEMENTARY INFORMATION",
    ]
    # Unlabelled text before the first label is a section without a label.
    assert [s.label for s in fourth.abstract_sections] == [None, "AVAILABILITY"]


def test_modern_pubmed_record() -> None:
    (record,) = read_records(MODERN)
    assert record.pmid == "30922926"
    assert record.pmcid == "PMC7026692"
    assert record.doi == "10.1016/j.ejmg.2019.03.004"  # from LID/AID "[doi]"
    assert (record.year, record.pub_date) == (2020, "2020-02")  # DP "2020 Feb"
    assert record.authors == ["Griffin, Darren K", "Larkin, Denis M", "O'Connor, Rebecca E"]
    assert record.keywords == [
        "Chromosome",
        "Comparative",
        "Dinosaur",
        "Genome evolution",
        "Karyotype",
    ]
    assert record.publication_types == ["Historical Article", "Journal Article", "Review"]
    assert MeshHeading(descriptor="Genomics", major=True, qualifiers=["history"]) in record.mesh
    assert "∼7 fissions" in record.abstract and not record.abstract_sections
    kept = record.extra["medline"]
    assert kept["LID"] == ["S1769-7212(19)30059-X [pii]", "103640"]
    assert kept["AID"] == ["S1769-7212(19)30059-X [pii]", "103640 [pii]"]
    assert kept["IS"] == ["1878-0849 (Electronic)", "1769-7212 (Print)", "1769-7212 (Linking)"]
    assert kept["CI"] == [
        "Copyright © 2019 The Authors. Published by Elsevier Masson SAS.. All rights reserved."
    ]


def test_secondary_ids_and_collective_author() -> None:
    text = (
        "PMID- 29787288\nDP  - 2018 Nov 1\nTI  - A Multicenter Randomized Controlled Trial of Zephyr\n"
        "      Endobronchial Valve Treatment.\nAB  - BACKGROUND: Valves. METHODS: Randomized (NCT02025205).\n"
        "FAU - Criner, Gerard J\nAU  - Criner GJ\nAU  - Sue R\nCN  - LIBERATE Study Group\n"
        "SI  - ClinicalTrials.gov/NCT01796392\nSI  - GENBANK/AB123456\nGN  - Trial registered as\n"
        "      NCT01796392.\n"
    )
    (record,) = read_bytes(text.encode(), format="medline", source="x.nbib")
    assert (
        record.title
        == "A Multicenter Randomized Controlled Trial of Zephyr Endobronchial Valve Treatment."
    )
    assert record.authors == ["Criner, Gerard J", "Sue R", "LIBERATE Study Group"]
    assert record.nct_ids == ["NCT01796392", "NCT02025205"]
    assert record.extra["medline"]["SI"] == ["GENBANK/AB123456"]
    assert record.extra["notes"] == ["Trial registered as NCT01796392."]
    assert record.pub_date == "2018-11-01"


def test_odd_publication_date_is_kept_as_written() -> None:
    (record,) = read_bytes(
        b"PMID- 1\nDP  - 2006 Mar-Apr\nTI  - X\n", format="medline", source="x.nbib"
    )
    assert (record.year, record.pub_date) == (2006, None)
    assert record.extra["medline"]["DP"] == ["2006 Mar-Apr"]
    again = read_bytes(written([record], "medline"), format="medline", source="y.nbib")
    assert again[0].model_dump() == record.model_dump()


# --- MEDLINE: round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [EFETCH, MODERN], ids=lambda p: p.name)
def test_round_trip_is_lossless(path: Path) -> None:
    records = list(read_records(path))
    data = written(records, "medline")
    again = read_bytes(data, format="medline", source="again.nbib")
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records]
    text = data.decode("utf-8")
    assert max(len(line) for line in text.splitlines()) <= 82 + 20  # wrapped, bar one long word
    assert "\r" not in text and text.startswith("\nPMID- ")


def test_ris_records_to_medline() -> None:
    source = list(read_records(RIS / "pubmed_endnote.txt", format="ris"))
    back = read_bytes(written(source, "medline"), format="medline", source="x.nbib")
    fields = {"pmid", "doi", "title", "authors", "journal", "year", "pub_date", "volume", "issue"}
    fields |= {"pages", "language", "keywords"}
    for before, after in zip(source, back, strict=True):
        assert after.model_dump(include=fields) == before.model_dump(include=fields)
        assert norm(after.abstract) == norm(before.abstract)


def test_writer_forms() -> None:
    record = Record(
        pmid="123",
        title="T",
        authors=["Saqi, Mansoor A S", "WHO Group"],
        mesh=[
            MeshHeading(
                descriptor="Aspirin",
                major=True,
                qualifiers=["therapeutic use", "adverse effects"],
                major_qualifiers=["adverse effects"],
            )
        ],
        abstract_sections=[
            AbstractSection(label="BACKGROUND", text="b."),
            AbstractSection(label="RESULTS", text="r."),
        ],
        nct_ids=["NCT01234567"],
        pub_date="2019-03-05",
        year=2019,
        doi="10.1000/xyz",
    )
    text = written([record], "medline").decode()
    assert "FAU - Saqi, Mansoor A S\nAU  - Saqi MAS\n" in text
    assert "AU  - WHO Group\n" in text
    assert "MH  - *Aspirin/therapeutic use/*adverse effects\n" in text
    assert "AB  - BACKGROUND: b. RESULTS: r.\n" in text
    assert "SI  - ClinicalTrials.gov/NCT01234567\n" in text
    assert "DP  - 2019 Mar 5\n" in text
    assert "AID - 10.1000/xyz [doi]\n" in text
    (again,) = read_bytes(text.encode(), format="medline", source="x.nbib")
    assert again.model_dump(exclude={"extra"}) == record.model_copy(
        update={"abstract": "BACKGROUND: b.\nRESULTS: r."}
    ).model_dump(exclude={"extra"})


# --- MEDLINE: malformed input and sniffing ------------------------------------------------------


def test_garbage_mid_file() -> None:
    lines = EFETCH.read_text().split("\n")
    at = lines.index("PMID- 16377612") + 3
    lines.insert(at, "this line is not MEDLINE")
    with pytest.raises(FormatError) as info:
        read_bytes("\n".join(lines).encode(), format="medline", source="broken.txt")
    message = str(info.value)
    assert "broken.txt" in message and "record 2" in message and f"line {at + 1}" in message
    assert (info.value.record, info.value.line) == (2, at + 1)


def test_continuation_without_tag() -> None:
    with pytest.raises(FormatError, match=r"x\.nbib: record 2, line 4"):
        read_bytes(b"PMID- 1\nTI  - A\n\n      dangling\n", format="medline", source="x.nbib")


@pytest.mark.parametrize("path", [EFETCH, MODERN], ids=lambda p: p.name)
def test_sniff_medline(path: Path) -> None:
    assert leads.formats.medline.sniff(path.read_bytes()[:65536])
    assert not leads.formats.medline.sniff_wos(path.read_bytes()[:65536])
    assert detect_format(path).name == "medline"


@pytest.mark.parametrize(
    "path",
    [*sorted(RIS.iterdir()), WOS, BIBTEX / "latex_accents.bib"],
    ids=lambda p: p.name,
)
def test_medline_sniff_rejects_others(path: Path) -> None:
    assert not leads.formats.medline.sniff(path.read_bytes()[:65536])


def test_pubmed_endnote_txt_is_ris(shared_data: Path) -> None:
    # Despite its name, ASReview's pubmed_endnote.txt is RIS (EndNote's export of PubMed records).
    path = shared_data / "formats" / "asreview_demo_data" / "pubmed_endnote.txt"
    assert detect_format(path).name == "ris"
    assert not leads.formats.medline.sniff(path.read_bytes())


def test_shared_efetch_file(shared_data: Path) -> None:
    path = shared_data / "api_fixtures" / "eutils" / "efetch_pubmed_medline_4-records_2008.txt"
    assert [r.pmid for r in read_records(path)] == ["16403221", "16377612", "14871861", "14630660"]


# --- Web of Science -----------------------------------------------------------------------------


def test_wos_real_export() -> None:
    assert detect_format(WOS).name == "wos"
    first, second = read_records(WOS)
    assert first.authors == ["Parkes-Loach, PS", "Majeed, AP", "Law, CJ", "Loach, PA"]  # AF
    assert first.title == (
        "Interactions stabilizing the structure of the core light-harvesting complex (LHl) of "
        "photosynthetic bacteria and its subunit (B820)"
    )
    assert (first.journal, first.journal_abbrev) == ("BIOCHEMISTRY", "Biochemistry")
    assert (first.year, first.pub_date) == (2004, "2004-06-08")  # PY 2004 + PD "JUN 8"
    assert (first.volume, first.issue, first.pages) == ("43", "22", "7003-7016")
    assert (first.doi, first.pmid) == ("10.1021/bi049798f", "15170338")
    assert first.other_ids == {"wos": "000221807500019"}
    assert first.keywords[:2] == ["CHEMICALLY SYNTHESIZED POLYPEPTIDES", "IN-VITRO RECONSTITUTION"]
    assert first.keywords[-1] == "ANTENNA COMPLEX"
    assert first.publication_types == ["Article"]
    assert len(first.extra["wos"]["CR"]) == 59  # one cited reference per continuation line
    assert first.extra["wos"]["NR"] == ["59"]
    assert second.extra["wos"]["C1"] == [
        "Northeastern Univ, Dept Phys, Boston, MA 02115 USA.",
        "Northeastern Univ, Ctr Interdisciplinary Res Complex Syst, Boston, MA 02115 USA.",
    ]


def test_wos_round_trip_is_lossless() -> None:
    records = list(read_records(WOS))
    data = written(records, "wos")
    assert data.startswith(b"FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\n")
    assert data.endswith(b"ER\n\nEF\n")
    again = read_bytes(data, format="wos", source="again.txt")
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records]


def test_wos_malformed() -> None:
    with pytest.raises(FormatError, match=r"x\.txt: record 1, line 3, field 'ER'"):
        read_bytes(b"PT J\nTI A\nPT J\nER\n", format="wos", source="x.txt")
    with pytest.raises(FormatError, match=r"x\.txt: record 2, line 4, field 'TI'"):
        read_bytes(b"PT J\nTI A\nER\nTI B\nER\n", format="wos", source="x.txt")
    with pytest.raises(FormatError, match=r"record 1, line 1, field 'ER'"):
        read_bytes(b"PT J\nTI truncated\n", format="wos", source="x.txt")


def test_wos_sniff() -> None:
    assert leads.formats.medline.sniff_wos(WOS.read_bytes())
    for path in [*RIS.iterdir(), EFETCH, MODERN]:
        assert not leads.formats.medline.sniff_wos(path.read_bytes()[:65536]), path.name


def test_wos_ris_export_is_not_wos_tagged(shared_data: Path) -> None:
    # ASReview's web_of_science.txt is WoS's RIS export ("TY  - JOUR"), not the tagged format.
    path = shared_data / "formats" / "asreview_demo_data" / "web_of_science.txt"
    assert detect_format(path).name == "ris"


# --- properties ---------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)
WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
    lambda s: norm(s) is not None
)
PLAIN = st.from_regex(r"[A-Za-z][A-Za-z ,-]{0,20}[a-z]", fullmatch=True)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDLINE_LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "PMID- 123",
                "",
                "      cont",
                "AU  - A B",
                "FAU - A, B",
                "MH  - *X/*y",
                "DP  - 2001 Feb 30",
            ]
        ),
        st.builds(
            lambda t, v: f"{t.ljust(4)}- {v}",
            st.from_regex(r"[A-Z][A-Z0-9]{1,3}", fullmatch=True),
            TEXT,
        ),
        TEXT,
    ),
    max_size=12,
)


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from(["medline", "wos"]))
def test_arbitrary_bytes_only_raise_leads_errors(data: bytes, fmt: str) -> None:
    with contextlib.suppress(LeadsError):
        assert isinstance(read_bytes(data, format=fmt, source="x.txt"), list)


@SETTINGS
@given(MEDLINE_LINES, st.sampled_from(["medline", "wos"]))
def test_tagged_text_only_raises_leads_errors(lines: list[str], fmt: str) -> None:
    try:
        records = read_bytes("\n".join(lines).encode("utf-8"), format=fmt, source="x.txt")
    except LeadsError as exc:
        assert "x.txt" in str(exc)
    else:
        assert all(isinstance(r, Record) for r in records)


MESH = st.builds(
    lambda d, major, quals, majors: MeshHeading(
        descriptor=d,
        major=major,
        qualifiers=quals,
        major_qualifiers=[q for q, m in zip(quals, majors, strict=False) if m],
    ),
    PLAIN,
    st.booleans(),
    st.lists(PLAIN, max_size=2, unique=True),
    st.lists(st.booleans(), min_size=2, max_size=2),
)
RECORDS = st.builds(
    Record,
    pmid=st.none() | st.integers(1, 99_999_999).map(str),
    title=st.none() | TEXT,
    abstract=st.none() | TEXT,
    authors=st.lists(WORDS, max_size=4),
    journal=st.none() | WORDS,
    journal_abbrev=st.none() | WORDS,
    year=st.none() | st.integers(1000, 2999),
    volume=st.none() | WORDS,
    issue=st.none() | WORDS,
    pages=st.none() | WORDS,
    language=st.none() | WORDS,
    doi=st.none() | st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9._-]{1,12}[a-z0-9]", fullmatch=True),
    keywords=st.lists(WORDS.filter(lambda s: ";" not in s), max_size=3),
    publication_types=st.lists(WORDS.filter(lambda s: ";" not in s), max_size=2),
    mesh=st.lists(MESH, max_size=3),
)
TEXT_FIELDS = (
    "title",
    "abstract",
    "journal",
    "journal_abbrev",
    "volume",
    "issue",
    "pages",
    "language",
)


@SETTINGS
@given(st.lists(RECORDS, min_size=1, max_size=4))
def test_generated_records_round_trip_medline(records: list[Record]) -> None:
    again = read_bytes(written(records, "medline"), format="medline", source="gen.nbib")
    assert len(again) == len(records)
    for before, after in zip(records, again, strict=True):
        for name in TEXT_FIELDS:
            assert norm(getattr(after, name)) == norm(getattr(before, name)), name
        for name in ("authors", "keywords", "publication_types"):
            assert [norm(v) for v in getattr(after, name)] == [
                norm(v) for v in getattr(before, name)
            ], name
        assert (after.pmid, after.doi, after.year) == (before.pmid, before.doi, before.year)
        assert [m.model_dump() for m in after.mesh] == [
            m.model_copy(
                update={
                    "descriptor": norm(m.descriptor),
                    "qualifiers": [norm(q) for q in m.qualifiers],
                    "major_qualifiers": [norm(q) for q in m.major_qualifiers],
                }
            ).model_dump()
            for m in before.mesh
        ]


PAGES = st.from_regex(r"[e]?[1-9][0-9]{0,3}(-[1-9][0-9]{0,3})?", fullmatch=True)
WOS_RECORDS = st.tuples(RECORDS, st.none() | PAGES).map(
    lambda t: t[0].model_copy(update={"pages": t[1]})
)


@SETTINGS
@given(st.lists(WOS_RECORDS, min_size=1, max_size=4))
def test_generated_records_round_trip_wos(records: list[Record]) -> None:
    again = read_bytes(written(records, "wos"), format="wos", source="gen.txt")
    assert len(again) == len(records)
    for before, after in zip(records, again, strict=True):
        for name in TEXT_FIELDS:
            assert norm(getattr(after, name)) == norm(getattr(before, name)), name
        for name in ("authors", "keywords", "publication_types"):
            assert [norm(v) for v in getattr(after, name)] == [
                norm(v) for v in getattr(before, name)
            ], name
        assert (after.pmid, after.doi, after.year) == (before.pmid, before.doi, before.year)
