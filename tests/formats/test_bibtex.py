"""BibTeX reader/writer (bibtexparser v2): LaTeX decoding, names, failed blocks, round trips."""

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
from leads.records import Record

BIBTEX = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "bibtex"
RIS = BIBTEX.parent / "ris"
MEDLINE = BIBTEX.parent / "medline"
ACCENTS = BIBTEX / "latex_accents.bib"

# Everything a Record field holds that BibTeX carries.
CARRIED = {
    "pmid", "pmcid", "doi", "title", "abstract", "authors", "journal", "journal_abbrev", "year",
    "pub_date", "volume", "issue", "pages", "language", "keywords", "urls",
}  # fmt: skip


def bib(records: list[Record]) -> bytes:
    buf = io.BytesIO()
    write_records(records, buf, "bibtex")
    return buf.getvalue()


def norm(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.replace("\x00", "").split()) or None


# --- the hand-written fixture: LaTeX accents, braces, macros --------------------------------------


def test_latex_accents_and_braces() -> None:
    records = list(read_records(ACCENTS))
    assert [r.extra["bibtex_key"] for r in records] == [
        "vandeSchoot2021",
        "Blomberg2013",
        "Casbon2006",
        "Moher2015",
        "Penalver2023",
    ]
    schoot, blomberg, casbon, moher, penalver = records
    assert schoot.journal == "Nature Machine Intelligence"  # @string macro
    assert (schoot.year, schoot.pub_date) == (2021, "2021-02")  # month = feb
    assert schoot.pages == "125-133"  # "125--133"
    assert schoot.authors[:2] == ["van de Schoot, Rens", "de Bruin, Jonathan"]
    assert schoot.keywords == ["systematic reviews", "active learning", "machine learning"]
    assert schoot.extra["notes"] == ["ASReview_relevant"]  # "\_" decoded
    assert schoot.urls == ["https://www.nature.com/articles/s42256-020-00287-7"]

    assert blomberg.authors[0] == "Blomberg, Björn A."  # Bj{\"o}rn
    assert blomberg.title.startswith("The Value of Radiologic Interventions and ^18F-DOPA PET in")
    assert (blomberg.pmid, blomberg.pmcid) == ("22752652", "PMC3553406")  # upper-case field names
    assert blomberg.language == "english"
    assert blomberg.extra["bibtex_type"] == "article"  # "@Article"

    assert casbon.title == "A high level interface to SCOP and ASTRAL implemented in python"
    assert casbon.journal == "BMC Bioinformatics"
    assert casbon.authors == ["Casbon, James A.", "Crooks, Gavin E.", "Saqi, Mansoor A. S."]

    assert moher.authors[-1] == "PRISMA-P Group"  # a braced group author stays whole
    assert (moher.journal, moher.journal_abbrev) == ("Systematic Reviews", "Syst Rev")
    assert (moher.year, moher.pub_date) == (2015, "2015-01-01")  # biblatex date
    assert moher.pmid == "25554246"  # eprinttype = pubmed
    assert moher.extra["bibtex"]["eprint"] == "25554246"

    assert penalver.authors[:3] == ["Peñalver, Enrique", "Peris, David", "Álvarez-Parra, Sergio"]
    assert "Sanz, José Luis" in penalver.authors  # "First Last" comes back as "Last, First"
    assert penalver.authors[-1] == "Pérez-de la Fuente, Ricardo"
    assert penalver.title == "Symbiosis between Cretaceous dinosaurs and feather-feeding beetles"
    assert penalver.pub_date == "2023-04"  # month = {4}
    assert penalver.pages == "e2217872120"
    assert "[…]" in penalver.abstract  # \ldots
    # File paths are not LaTeX: kept as written.
    assert (
        penalver.extra["bibtex"]["file"]
        == "Full Text PDF:files/123/Penalver2023.pdf:application/pdf"
    )


def test_unbraced_accent_at_the_start_of_a_name() -> None:
    text = rb"""@article{a, author = {Smith, J and \'Alvarez, S and \"{O}zil, Mesut AND G\"odel, Kurt}}"""
    (record,) = read_bytes(text, format="bibtex", source="x.bib")
    assert record.authors == ["Smith, J", "Álvarez, S", "Özil, Mesut", "Gödel, Kurt"]


def test_identifier_fields_are_not_latex_but_may_be_escaped() -> None:
    text = rb"""@article{a, doi = {10.1000/abc\_def}, pmid = {PMID: 123}, pmcid = {PMC99},
      url = {https://example.org/a%20b?x=1&y=2}, title = {50\% of {CO$_2$}}}"""
    (record,) = read_bytes(text, format="bibtex", source="x.bib")
    assert (record.doi, record.pmid, record.pmcid) == ("10.1000/abc_def", "123", "PMC99")
    assert record.urls == ["https://example.org/a%20b?x=1&y=2"]  # "%" is not a LaTeX comment here
    assert record.title == "50% of CO_2"


def test_round_trip_of_hand_written_fixture_is_lossless() -> None:
    records = list(read_records(ACCENTS))
    again = read_bytes(bib(records), format="bibtex", source="again.bib")
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records]


def test_writer_output() -> None:
    text = bib(list(read_records(ACCENTS))).decode("utf-8")
    assert text.startswith(
        "@article{vandeSchoot2021,\n  author = {van de Schoot, Rens and de Bruin, Jonathan"
    )
    assert "  pages = {125--133},\n" in text
    assert "  note = {ASReview\\_relevant},\n" in text
    assert "{PRISMA-P Group}}" in text  # a name without a comma is braced so it stays one name
    assert 'Bj\\"' not in text and "Björn" in text  # UTF-8, not LaTeX accents


# --- other formats' records through BibTeX --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (MEDLINE / "efetch_pubmed_medline_4-records_2008.txt", "medline"),
        (MEDLINE / "pubmed_30922926_modern.nbib", "medline"),
        (RIS / "pubmed_zotero.ris", "ris"),
        (RIS / "embase.ris", "ris"),
        (RIS / "baseline_first3.ris", "ris"),
        (RIS / "web_of_science.txt", "ris"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_real_records_round_trip_through_bibtex(path: Path, fmt: str) -> None:
    records = list(read_records(path, format=fmt))
    data = bib(records)
    assert detect_format(Path("x.bib"), data).name == "bibtex"
    again = read_bytes(data, format="bibtex", source="x.bib")
    assert len(again) == len(records)
    for before, after in zip(records, again, strict=True):
        expected = before.model_dump(include=CARRIED)
        if before.abstract_sections:  # BibTeX keeps the abstract text, not its sections
            expected["abstract"] = before.abstract
        assert after.model_dump(include=CARRIED) == expected
    # A second pass changes nothing at all.
    third = read_bytes(bib(again), format="bibtex", source="y.bib")
    assert [r.model_dump() for r in third] == [r.model_dump() for r in again]


def test_citation_keys_are_generated_and_unique() -> None:
    records = [Record(title="A", authors=["Müller, Hans"], year=2020) for _ in range(3)]
    records.append(Record(title="B"))
    again = read_bytes(bib(records), format="bibtex", source="x.bib")
    assert [r.extra["bibtex_key"] for r in again] == [
        "Muller2020",
        "Muller2020a",
        "Muller2020b",
        "ref",
    ]


# --- malformed input ------------------------------------------------------------------------------


def test_unclosed_brace_names_the_entry() -> None:
    text = (
        "@article{ok1, title = {Fine}, year = {2020}}\n\n"
        "@article{broken,\n  title = {Unclosed {brace,\n  year = {2020}\n}\n\n"
        "@article{ok2, title = {Also fine}}\n"
    )
    with pytest.raises(FormatError) as info:
        read_bytes(text.encode(), format="bibtex", source="refs.bib")
    message = str(info.value)
    assert "refs.bib" in message and "record 2" in message and "line 3" in message
    assert "@article{broken" in message


def test_missing_comma_after_key() -> None:
    with pytest.raises(FormatError, match=r"x\.bib: record 1, line 2: .*comma"):
        read_bytes(b"% c\n@misc{key title = {x}}\n", format="bibtex", source="x.bib")


def test_duplicate_field_is_an_error_but_duplicate_key_is_not() -> None:
    twice = b"@article{a, title = {One}, title = {Two}}\n"
    with pytest.raises(FormatError, match=r"record 1, line 1, field 'title'"):
        read_bytes(twice, format="bibtex", source="x.bib")
    same_key = b"@article{a, title = {One}}\n@article{a, title = {Two}}\n"
    assert [r.title for r in read_bytes(same_key, format="bibtex", source="x.bib")] == [
        "One",
        "Two",
    ]


def test_not_bibtex() -> None:
    with pytest.raises(FormatError, match="no BibTeX entries"):
        read_bytes(b"just some text\n", format="bibtex", source="x.bib")
    only_strings = b"@string{x = {y}}\n% nothing else\n"
    assert read_bytes(only_strings, format="bibtex", source="x.bib") == []


# --- sniffing -----------------------------------------------------------------------------------


def test_sniff() -> None:
    assert leads.formats.bibtex.sniff(ACCENTS.read_bytes())
    assert leads.formats.bibtex.sniff(b"\xef\xbb\xbf@Article{k,\n title={x}}")
    for path in [*RIS.iterdir(), *MEDLINE.iterdir()]:
        assert not leads.formats.bibtex.sniff(path.read_bytes()[:65536]), path.name
    assert not leads.formats.ris.sniff(ACCENTS.read_bytes())
    assert not leads.formats.medline.sniff(ACCENTS.read_bytes())
    assert not leads.formats.medline.sniff_wos(ACCENTS.read_bytes())
    assert not leads.formats.bibtex.sniff(b"AD  - Dept.\n      me@example.org\n")


# --- properties ---------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
WORDS = TEXT.filter(lambda s: norm(s) is not None)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIB_PIECES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "@article{",
                "@string{",
                "@comment{",
                "}",
                "{",
                "title = ",
                ",",
                '"',
                "#",
                "\n",
                "%",
                "\\",
            ]
        ),
        TEXT,
    ),
    max_size=20,
)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_leads_errors(data: bytes) -> None:
    with contextlib.suppress(LeadsError):
        assert isinstance(read_bytes(data, format="bibtex", source="x.bib"), list)


@SETTINGS
@given(BIB_PIECES)
def test_bibtex_shaped_text_only_raises_leads_errors(pieces: list[str]) -> None:
    try:
        records = read_bytes("".join(pieces).encode("utf-8"), format="bibtex", source="x.bib")
    except LeadsError as exc:
        assert "x.bib" in str(exc)
    else:
        assert all(isinstance(r, Record) for r in records)


RECORDS = st.builds(
    Record,
    title=st.none() | TEXT,
    abstract=st.none()
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=150),
    authors=st.lists(WORDS, max_size=4),
    journal=st.none() | TEXT,
    year=st.none() | st.integers(1000, 2999),
    volume=st.none() | WORDS,
    issue=st.none() | WORDS,
    pages=st.none() | st.from_regex(r"[e]?[1-9][0-9]{0,3}(-[1-9][0-9]{0,3})?", fullmatch=True),
    doi=st.none() | st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9._-]{1,12}[a-z0-9]", fullmatch=True),
    pmid=st.none() | st.integers(1, 99_999_999).map(str),
    keywords=st.lists(WORDS.filter(lambda s: ";" not in s), max_size=3),
    language=st.none() | WORDS,
    urls=st.lists(
        st.from_regex(r"https://[a-z]{1,8}\.org/[A-Za-z0-9%_~-]{0,12}", fullmatch=True),
        max_size=2,
        unique=True,
    ),
)


@SETTINGS
@given(st.lists(RECORDS, min_size=1, max_size=4))
def test_generated_records_round_trip(records: list[Record]) -> None:
    again = read_bytes(bib(records), format="bibtex", source="gen.bib")
    assert len(again) == len(records)
    for before, after in zip(records, again, strict=True):
        for name in ("title", "abstract", "journal", "volume", "issue", "language"):
            assert norm(getattr(after, name)) == norm(getattr(before, name)), name
        for name in ("authors", "keywords"):
            assert [norm(v) for v in getattr(after, name)] == [
                norm(v) for v in getattr(before, name)
            ], name
        for name in ("year", "pages", "doi", "pmid", "urls"):
            assert getattr(after, name) == getattr(before, name), name


_LATEX_PIECES = st.sampled_from(
    ["\\%", "\\&", "\\_", "\\#", "\\$", "\\{", "\\}", "{", "}", "--", "---", "-", "%", "&", "$", "~",
     "\\", "\\'e", "\\textit{x}", "``", "''", "^", "_", "#", " ", "\n", "a", "B", "1", "é", "β", ".", "{RCT}"]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(_LATEX_PIECES, st.text(max_size=3)), max_size=12).map("".join))
def test_simple_latex_decoding_matches_pylatexenc(text: str) -> None:
    from leads.formats.bibtex import _DecodeLatexExceptVerbatim, _simple_latex_to_text

    simple = _simple_latex_to_text(text)
    if simple is not None:
        assert simple == _DecodeLatexExceptVerbatim()._decoder.latex_to_text(text)
