"""CSV / TSV / XLSX with ASReview, Rayyan and Covidence columns: labels, mapping, round trips."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

import leads.formats.tabular as tabular
from leads.errors import FormatError, LeadsError
from leads.formats import detect_format, read_bytes, read_records, write_records
from leads.records import Record

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
TABULAR = HERE / "tabular"


def _read(name: str) -> list[Record]:
    return list(read_records(TABULAR / name))


def _write(records: list[Record], fmt: str) -> bytes:
    buffer = io.BytesIO()
    write_records(records, buffer, fmt)
    return buffer.getvalue()


# --------------------------------------------------------------------------- real files


def test_cohen_labels_and_pmids() -> None:
    records = _read("cohen2006_OralHypoglycemics_first60.csv")
    assert len(records) == 60
    first = records[0]
    assert first.source_id == "1"
    assert first.pmid == "10068412"  # pubmedID column
    assert first.year == 2000  # "2000.0"
    assert first.authors[:2] == ["H Yki-Järvinen", "L Ryysy"]
    assert first.label is False
    assert first.extra == {"label_abstract_screening": "0"}
    assert sum(r.label is True for r in records) == 14
    assert sum(r.extra["label_abstract_screening"] == "1" for r in records) == 14
    assert all(r.label is not None for r in records)


def test_asreview_generic_columns() -> None:
    records = _read("generic_labels.csv")
    assert [r.label for r in records] == [True, False, True, False, True, False]
    first = records[0]
    assert first.authors == ["Marx, Karl", "Lindgren, Astrid"]  # Python-list cell
    assert first.keywords == ["Pippi", "Nordwind", "Piraten"]
    assert first.year == 2014  # "2014//"
    assert first.urls == ["http://example_url.com"]
    assert first.extra["issn"] == "1932-6208"
    assert first.extra["type_of_reference"] == "JOUR"
    partial = _read("generic_partial_labels.csv")
    assert [r.label for r in partial] == [True, False, None, None, True, False]


def test_record_id_and_final_included() -> None:
    records = _read("record_id.csv")
    assert [r.source_id for r in records][:3] == ["12", "11", "10"]
    assert [r.label for r in records][:3] == [True, False, None]


def test_delimiters_semicolon_tab_and_crlf() -> None:
    semicolon = _read("generic_semicolon.csv")
    tab = _read("generic_tab.tsv")
    assert (
        [r.title for r in semicolon]
        == [r.title for r in tab]
        == [
            "Title of reference",
            "The title of the reference",
        ]
    )
    cdss = _read(
        "CDSS_RO_first20.csv"
    )  # ";"-separated, CRLF, columns Title;Abstract;label_included
    assert len(cdss) == 20
    assert all(r.label is True for r in cdss)
    assert cdss[0].title.startswith("Machine Learning and Nomogram Prognostic Modeling")
    assert cdss[0].abstract.startswith("PURPOSE:")
    assert detect_format(TABULAR / "generic_tab.tsv").name == "tsv"
    assert detect_format(TABULAR / "CDSS_RO_first20.csv").name == "csv"


def test_gzipped_nagtegaal() -> None:
    records = _read("Nagtegaal_2019_first30.csv.gz")
    assert len(records) == 30
    assert records[0].title.startswith("A prospective, controlled trial of a pharmacy-driven")
    assert records[0].label is False and records[0].extra["label_abstract_screening"] == "1"
    assert "duplicate_record_id" not in records[0].extra  # empty cell


def test_embase_export() -> None:
    records = _read("embase.csv")
    assert records[0].authors == ["Liu R.", "Adler D.G."]  # "Author Names", comma-separated
    # Commas inside parentheses do not split a keyword.
    assert "bronchogenic duplication cyst (diagnosis, surgery)" in records[0].keywords
    assert records[0].extra["Source"].startswith("Endoscopic Ultrasound (2014)")


def test_rayyan_export() -> None:
    records = _read("rayyan_articles.csv")
    assert [r.label for r in records] == [True, False, None, None, None]
    first = records[0]
    assert first.source_id == "7301001"
    assert first.pmid == "22663011"
    assert first.authors[:2] == ["Flaherty, Keith T", "Robert, Caroline"]  # " and "
    assert first.nct_ids == ["NCT01245062"]  # from the abstract
    assert first.journal == "The New England journal of medicine"
    assert first.extra["month"] == "7"
    assert first.extra["notes"].startswith(' RAYYAN-INCLUSION: {"Alice"=>"Included"')
    assert records[2].pmcid == "PMC11798830"  # pmc_id without prefix


def test_covidence_export() -> None:
    records = _read("covidence_export.csv")  # UTF-8 with BOM, CRLF
    first = records[0]
    assert first.title == "Improved survival with MEK inhibition in BRAF-mutated melanoma."
    assert first.authors[-1] == "METRIC Study Group"  # "; "-separated
    assert first.year == 2012  # "Published Year"
    assert first.doi == "10.1056/nejmoa1203421"
    assert first.source_id == "#101"  # "Covidence #"
    assert first.pmid == "22663011"  # short accession number
    assert first.extra["Study"] == "Flaherty 2012"
    assert first.extra["Tags"] == "RCT; melanoma"
    embase = records[-1]
    assert embase.pmid is None  # 9-digit Embase accession number
    assert embase.extra["Accession Number"] == "627312345"
    assert embase.nct_ids == ["NCT01234567"]


# --------------------------------------------------------------------------- labels and errors


@pytest.mark.parametrize(
    ("cell", "label"),
    [
        ("1", True),
        ("0", False),
        ("yes", True),
        ("No", False),
        ("TRUE", True),
        ("false", False),
        ("include", True),
        ("Excluded", False),
        ("1.0", True),
        ("", None),
        ("-1", None),
    ],
)
def test_label_values(cell: str, label: bool | None) -> None:
    (record,) = read_bytes(f"title,included\nA title,{cell}\n".encode(), format="csv")
    assert record.label is label


def test_bad_label_names_file_row_line_and_column() -> None:
    data = b'title,abstract,label_included\nfirst,"two\nlines",1\nsecond,x,maybe\n'
    with pytest.raises(FormatError) as info:
        read_bytes(data, format="csv", source="screened.csv")
    error = info.value
    assert (error.record, error.line, error.field) == (2, 4, "label_included")
    assert "screened.csv" in str(error) and "record 2" in str(error)
    assert "'maybe'" in str(error)


def test_bad_screening_label_is_an_error_too() -> None:
    data = b"title,label_included,label_abstract_screening\nA,1,2\n"
    with pytest.raises(FormatError, match="label_abstract_screening"):
        read_bytes(data, format="csv", source="x.csv")


def test_junk_year_is_kept_raw() -> None:
    data = b"title,year\nA,2019 Mar\nB,in press\nC,12345\n"
    records = read_bytes(data, format="csv")
    assert [r.year for r in records] == [2019, None, None]
    assert records[1].extra == {"year": "in press"}
    assert records[2].extra == {"year": "12345"}


def test_row_longer_than_header() -> None:
    with pytest.raises(FormatError) as info:
        read_bytes(b"title,year\nA,2019,extra\n", format="csv", source="x.csv")
    assert (info.value.record, info.value.line) == (1, 2)


def test_unterminated_quote_is_a_format_error() -> None:
    data = b'title,abstract\nA,"never closed\n'
    try:
        records = read_bytes(data, format="csv", source="x.csv")
    except FormatError as error:
        assert "x.csv" in str(error)
    else:  # the csv module reads to the end of the file as one field
        assert records[0].abstract == "never closed"


# --------------------------------------------------------------------------- sniffing


def test_sniff_accepts_tables_and_rejects_other_formats() -> None:
    import leads.formats.ctgov
    import leads.formats.endnote_xml
    import leads.formats.pubmed_xml  # noqa: F401

    for path in [*sorted(TABULAR.glob("*.csv")), TABULAR / "generic_tab.tsv"]:
        assert tabular.sniff_csv(path.read_bytes()[:65536]), path.name
    assert tabular.sniff_tsv((TABULAR / "generic_tab.tsv").read_bytes())
    assert not tabular.sniff_tsv((TABULAR / "generic_labels.csv").read_bytes())
    others = [
        *sorted((HERE / "pubmed_xml").glob("*.*ml")),
        *sorted((HERE / "endnote_xml").glob("*.xml")),
        *sorted((HERE / "ctgov").glob("*.json")),
    ]
    for path in others:
        assert not tabular.sniff_csv(path.read_bytes()[:65536]), path.name
    for text in (
        b"TY  - JOUR\nTI  - A title, with a comma\nAU  - Smith, J\nER  - \n",
        b"PMID- 12345678\nOWN - NLM\nTI  - title, abstract, authors\n",
        b"FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nAU Smith, J\nTI title,abstract\n",
        b"@article{key,\n  title = {title, abstract},\n  year = {2020}\n}\n",
        b'{"title": "x", "abstract": "y", "authors": []}\n',
        b"63 300\njusto 0.0053761 -0.077535\n",
        b"PK\x03\x04\x14\x00\x00\x00xl/workbook.xml",
    ):
        assert not tabular.sniff_csv(text), text[:20]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["csv", "tsv", "xlsx"])
@pytest.mark.parametrize(
    "name",
    [
        "cohen2006_OralHypoglycemics_first60.csv",
        "generic_labels.csv",
        "generic_partial_labels.csv",
        "embase.csv",
        "rayyan_articles.csv",
        "covidence_export.csv",
        "CDSS_RO_first20.csv",
        "record_id.csv",
        "missing_values.csv",
    ],
)
def test_round_trip_real_files(name: str, fmt: str) -> None:
    records = _read(name)
    back = read_bytes(_write(records, fmt), format=fmt, source=f"out.{fmt}")
    assert back == records


def test_written_csv_is_asreview_shaped() -> None:
    records = _read("cohen2006_OralHypoglycemics_first60.csv")
    header = _write(records, "csv").split(b"\r\n", 1)[0].decode()
    assert header.split(",") == [
        "record_id",
        "title",
        "abstract",
        "authors",
        "year",
        "pmid",
        "label_included",
        "label_abstract_screening",
    ]


def test_xlsx_sniff_and_formula_like_text(tmp_path: Path) -> None:
    record = Record(title="=SUM(A1:A2)", abstract="+1 -2 @x", label=True, extra={"note": "=1"})
    target = tmp_path / "out.xlsx"
    write_records([record], target, "xlsx")
    assert tabular.sniff_xlsx(target.read_bytes()[:65536])
    assert detect_format(target).name == "xlsx"
    (back,) = read_records(target)
    assert back == record
    sheet = load_workbook(target).worksheets[0]
    assert sheet["A2"].data_type == "s"


def test_xlsx_refuses_oversized_cells() -> None:
    with pytest.raises(LeadsError, match="32767"):
        _write([Record(title="x", abstract="a" * 40_000)], "xlsx")


def test_extra_values_that_are_not_strings_are_json() -> None:
    record = Record(title="t", extra={"n": 3, "tags": ["a", "b"]})
    (back,) = read_bytes(_write([record], "csv"), format="csv")
    assert back.extra == {"n": "3", "tags": '["a", "b"]'}


def test_gzip_csv(tmp_path: Path) -> None:
    records = _read("rayyan_articles.csv")
    target = tmp_path / "out.csv.gz"
    write_records(records, target, "csv")
    assert gzip.decompress(target.read_bytes()).startswith(b"record_id,title")
    assert list(read_records(target)) == records


# --------------------------------------------------------------------------- properties

any_text = st.text(st.characters(), max_size=30)
# List items without control characters: a list that is written as JSON keeps those (escaped),
# one written "; "-separated loses the ones the format cannot carry, so the expectation would
# depend on the encoding chosen; scalar fields cover the dropping.
item = (
    st.text(
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="\ufffe\uffff"),
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
column = st.from_regex(r"x_[a-z]{1,6}", fullmatch=True)
_CSV_DROPPED = re.compile("[\x00\ud800-\udfff]")
_XLSX_DROPPED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@st.composite
def records(draw: st.DrawFn) -> Record:
    return Record(
        source_id=draw(st.one_of(st.none(), item)),
        title=draw(st.one_of(st.none(), any_text)),
        abstract=draw(st.one_of(st.none(), any_text)),
        authors=draw(st.lists(item, max_size=4)),
        keywords=draw(st.lists(item, max_size=4)),
        year=draw(st.one_of(st.none(), st.integers(1000, 2999))),
        doi=draw(
            st.one_of(st.none(), st.from_regex(r"10\.[0-9]{4,6}/[a-z0-9.-]{1,12}", fullmatch=True))
        ),
        pmid=draw(st.one_of(st.none(), st.integers(1, 99_999_999).map(str))),
        journal=draw(st.one_of(st.none(), any_text)),
        volume=draw(st.one_of(st.none(), item)),
        label=draw(st.one_of(st.none(), st.booleans())),
        extra=draw(st.dictionaries(column, any_text.filter(bool), max_size=3)),
    )


def _clean(record: Record, dropped: re.Pattern[str]) -> Record:
    """The record as written: characters the format cannot carry removed."""

    def fix(value: object) -> object:
        if isinstance(value, str):
            return dropped.sub("", value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    data = {k: fix(v) for k, v in record.model_dump().items()}
    data["authors"] = [a.strip() for a in data["authors"] if a.strip()]
    data["keywords"] = [k.strip() for k in data["keywords"] if k.strip()]
    data["extra"] = {k: v for k, v in data["extra"].items() if v != ""}
    if data["source_id"] is not None:
        data["source_id"] = data["source_id"].strip() or None
    if data["volume"] is not None:
        data["volume"] = data["volume"].strip() or None
    return Record.model_validate(data)


@pytest.mark.parametrize(
    ("fmt", "dropped"),
    [("csv", _CSV_DROPPED), ("tsv", _CSV_DROPPED), ("xlsx", _XLSX_DROPPED)],
    ids=["csv", "tsv", "xlsx"],
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=st.lists(records(), min_size=1, max_size=4))
def test_generated_records_round_trip(
    generated: list[Record], fmt: str, dropped: re.Pattern[str]
) -> None:
    back = read_bytes(_write(generated, fmt), format=fmt, source=f"gen.{fmt}")
    expected = [_clean(r, dropped) for r in generated]
    # Rows whose every cell is empty are not records.
    expected = [r for r in expected if r != Record()]
    assert back == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_a_leads_error(data: bytes) -> None:
    for fmt in ("csv", "xlsx"):
        try:
            result = read_bytes(data, format=fmt, source=f"fuzz.{fmt}")
        except LeadsError:
            continue
        assert all(isinstance(r, Record) for r in result)


_CELLS = st.sampled_from(
    [
        "title",
        "abstract",
        "label_included",
        "year",
        "authors",
        "1",
        "0",
        "maybe",
        '"',
        '""',
        "2019.0",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(_CELLS, st.text(max_size=6)), max_size=5).map(
            lambda cells: ",".join(cells)
        ),
        max_size=6,
    )
)
def test_arbitrary_text_gives_records_or_a_leads_error(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    try:
        result = read_bytes(data, format="csv", source="fuzz.csv")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


# --------------------------------------------------------------------------- shared data

COHEN = {  # topic: (records, final includes, title/abstract includes), from the data README
    "ACEInhibitors": (2518, 41, 182),
    "ADHD": (805, 19, 74),
    "Antihistamines": (309, 16, 92),
    "AtypicalAntipsychotics": (1109, 146, 362),
    "BetaBlockers": (2014, 41, 294),
    "CalciumChannelBlockers": (1202, 96, 275),
    "Estrogens": (367, 80, 80),
    "NSAIDS": (365, 39, 84),
    "OralHypoglycemics": (501, 135, 138),
    "UrinaryIncontinence": (320, 40, 78),
}


@pytest.mark.shared
@pytest.mark.parametrize("topic", sorted(COHEN))
def test_cohen_topics_counts(shared_data: Path, topic: str) -> None:
    records = list(read_records(shared_data / "screening" / "cohen2006" / f"{topic}.csv"))
    total, final, abstract_stage = COHEN[topic]
    assert len(records) == total
    assert sum(r.label is True for r in records) == final
    assert sum(r.extra["label_abstract_screening"] == "1" for r in records) == abstract_stage
    assert all(r.pmid for r in records)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "total", "includes"),
    [
        ("CDSS_RO.csv", 519, 36),
        ("Nagtegaal_2019.csv.gz", 2015, 101),
        ("Bannach-Brown_2019.csv.gz", 1993, 280),
    ],
)
def test_other_screening_sets(shared_data: Path, name: str, total: int, includes: int) -> None:
    records = list(read_records(shared_data / "screening" / "other" / name))
    assert len(records) == total
    assert sum(r.label is True for r in records) == includes
    assert read_bytes(_write(records, "csv"), format="csv") == records


@pytest.mark.shared
def test_asreview_demo_data(shared_data: Path) -> None:
    folder = shared_data / "formats" / "asreview_demo_data"
    for path in sorted(folder.iterdir()):
        head = path.read_bytes()[:65536]
        if path.suffix in (".csv", ".tsv", ".tab"):
            assert tabular.sniff_csv(head), path.name
            records = list(read_records(path))
            assert records, path.name
            assert read_bytes(_write(records, "csv"), format="csv") == records
        else:  # RIS, MEDLINE, Web of Science, and generic.vec (fastText word vectors)
            assert not tabular.sniff_csv(head), path.name


def test_damaged_workbook_is_a_format_error() -> None:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("xl/workbook.xml", "not xml at all")
    data = buffer.getvalue()
    assert tabular.sniff_xlsx(data)
    with pytest.raises(FormatError, match="XLSX"):
        read_bytes(data, format="xlsx", source="broken.xlsx")
    good = _write([Record(title="a title")], "xlsx")
    with pytest.raises(FormatError):
        read_bytes(good[: len(good) // 2], format="xlsx", source="cut.xlsx")


def test_deeply_nested_list_cell_is_just_text() -> None:
    cell = "[" * 5000 + "]" * 5000
    (record,) = read_bytes(f"title,authors\nA,{cell}\n".encode(), format="csv")
    assert record.authors == [cell]


def test_tsv_cells_with_commas_keep_the_tab_delimiter() -> None:
    # Found by hypothesis: a one-column TSV whose cell holds a comma was read as a CSV.
    back = read_bytes(b"volume\r\n\",\"\r\n", format="tsv", source="one.tsv")
    assert [r.volume for r in back] == [","]
    back = read_bytes(b"title\tvolume\r\nA, b\t1,2\r\n", format="tsv", source="two.tsv")
    assert [(r.title, r.volume) for r in back] == [("A, b", "1,2")]
