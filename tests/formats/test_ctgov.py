"""ClinicalTrials.gov API v2 JSON: studies, search pages, JSON Lines; sniffing and round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leads.formats.ctgov as ctgov
from leads.errors import FormatError, LeadsError
from leads.formats import detect_format, get_format, read_bytes, read_records
from leads.formats import jsonl as jsonl_format
from leads.records import Record

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
CTGOV = HERE / "ctgov"


def _read(name: str) -> list[Record]:
    return list(read_records(CTGOV / name))


def _write(records: list[Record]) -> bytes:
    buffer = io.BytesIO()
    ctgov.write(records, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- real files


def test_study_with_results_and_references() -> None:
    (record,) = _read("study_NCT02552212_with-results_trimmed.json")
    assert record.record_type == "registration"
    assert record.nct_ids == ["NCT02552212"]
    assert record.title.startswith("Phase 3, Multicenter, Randomized, Placebo-Controlled")
    assert record.extra["brief_title"].startswith("Multicenter Study Evaluating Certolizumab")
    assert record.extra["acronym"] == "C-AXSPAND"
    assert record.abstract.startswith("Patients with active Axial Spondyloarthritis")
    assert record.year == 2015  # startDateStruct 2015-09
    assert record.urls == ["https://clinicaltrials.gov/study/NCT02552212"]
    assert record.other_ids == {"org_study_id": "AS0006", "eudract": "2015-001894-41"}
    assert record.keywords[:3] == [
        "Axial Spondyloarthritis",
        "Nonradiographic Axial Spondyloarthritis",
        "Nr-axSpA",
    ]
    references = record.extra["references"]
    assert references[0] == {
        "pmid": "35296532",
        "type": "RESULT",
        "citation": references[0]["citation"],
        "doi": "10.1136/rmdopen-2021-002138",
    }
    assert {r["type"] for r in references} >= {"RESULT", "DERIVED"}
    assert record.extra["has_results"] is True
    assert record.extra["phases"] == ["PHASE3"]
    assert record.extra["lead_sponsor"] == "UCB BIOSCIENCES GmbH"
    assert "Spondylarthritis" in [m.descriptor for m in record.mesh]
    assert record.extra["ctgov_study"]["protocolSection"]["identificationModule"]["nctId"] == (
        "NCT02552212"
    )


def test_study_fields() -> None:
    (cf,) = _read("study_NCT00763412_with-results.json")
    assert cf.other_ids == {"org_study_id": "05-1109", "nih": "P60DK020579"}
    assert cf.year == 2006
    # Conditions then keywords, duplicates dropped.
    assert cf.keywords[:3] == [
        "Cystic Fibrosis Related Diabetes",
        "Pancreatic Insufficiency",
        "Cystic Fibrosis",
    ]
    assert cf.keywords.count("Cystic Fibrosis Related Diabetes") == 1
    assert cf.extra["detailed_description"].startswith("As people w")
    (no_results,) = _read("study_NCT03418623_no-results.json")
    assert no_results.extra["has_results"] is False
    assert no_results.extra["references"] == [
        {
            "pmid": "23032071",
            "type": "BACKGROUND",
            "citation": "Schacht JP, Anton RF, Voronin KE",
            "doi": None,
        }
    ]
    (subset,) = _read("study_NCT02576665_fields-subset.json")
    assert subset.title.startswith("A Study of Toca 511")  # briefTitle when no officialTitle
    assert subset.other_ids == {}
    assert "has_results" not in subset.extra


def test_search_pages() -> None:
    page1 = _read("studies_search_page1_countTotal_nextPageToken.json")
    page2 = _read("studies_search_page2_pageToken.json")
    assert [r.nct_ids[0] for r in page1][:2] == ["NCT02710084", "NCT05105685"]
    assert len(page1) == len(page2) == 5
    assert all(r.record_type == "registration" for r in page1 + page2)
    assert page2[0].nct_ids == ["NCT05187377"]
    assert len(_read("studies_search_last-page_no-token.json")) == 2


def test_json_lines_of_studies(tmp_path: Path) -> None:
    names = ["study_NCT00763412_with-results.json", "study_NCT03418623_no-results.json"]
    lines = [json.dumps(json.loads((CTGOV / n).read_text())) for n in names]
    target = tmp_path / "studies.jsonl"
    target.write_text("\n".join(lines) + "\n")
    assert detect_format(target).name == "ctgov-json"
    assert [r.nct_ids[0] for r in read_records(target)] == ["NCT00763412", "NCT03418623"]


def test_nct_aliases_and_registry_secondary_ids() -> None:
    study = {
        "protocolSection": {
            "identificationModule": {
                "nctId": "NCT01234567",
                "nctIdAliases": ["NCT07654321"],
                "secondaryIdInfos": [
                    {"id": "ISRCTN12345678", "type": "REGISTRY", "domain": "ISRCTN"},
                    {"id": "DRKS00012345", "type": "REGISTRY"},
                    {"id": "U1111-1111-1111", "type": "OTHER"},
                    {"id": "U2222-2222-2222", "type": "OTHER"},
                ],
                "briefTitle": "Brief",
            }
        }
    }
    (record,) = read_bytes(json.dumps(study).encode(), source="one.json")
    assert record.nct_ids == ["NCT01234567", "NCT07654321"]
    assert record.other_ids == {
        "isrctn": "ISRCTN12345678",
        "drks": "DRKS00012345",
        "other": "U1111-1111-1111",
        "other_2": "U2222-2222-2222",
    }


# --------------------------------------------------------------------------- errors


def test_missing_nct_id_names_record_and_field() -> None:
    page = {
        "studies": [
            {"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}},
            {"protocolSection": {"identificationModule": {"briefTitle": "x"}}},
        ]
    }
    with pytest.raises(FormatError) as info:
        read_bytes(json.dumps(page).encode(), format="ctgov-json", source="page.json")
    error = info.value
    assert error.record == 2
    assert error.field == "protocolSection.identificationModule.nctId"
    assert "page.json" in str(error) and "record 2" in str(error)


def test_truncated_json_names_the_line() -> None:
    data = (CTGOV / "studies_search_page1_countTotal_nextPageToken.json").read_bytes()
    with pytest.raises(FormatError) as info:
        read_bytes(data[: len(data) // 2], format="ctgov-json", source="cut.json")
    assert info.value.line is not None and info.value.line > 10
    assert "cut.json" in str(info.value)


def test_bad_json_line_in_json_lines() -> None:
    study = (CTGOV / "study_NCT03418623_no-results.json").read_text()
    data = (json.dumps(json.loads(study)) + "\n{not json\n").encode()
    with pytest.raises(FormatError) as info:
        read_bytes(data, format="ctgov-json", source="s.jsonl")
    assert (info.value.record, info.value.line) == (2, 2)


def test_api_v1_and_other_json_are_refused() -> None:
    with pytest.raises(FormatError, match="API v1"):
        read_bytes(b'{"FullStudiesResponse": {"NStudiesFound": 0}}', format="ctgov-json")
    with pytest.raises(FormatError, match=r"not ClinicalTrials\.gov API v2"):
        read_bytes(b'{"title": "a leads record"}', format="ctgov-json")


def test_writer_refuses_articles() -> None:
    with pytest.raises(LeadsError, match=r"not a ClinicalTrials\.gov registration"):
        _write([Record(pmid="1", nct_ids=["NCT01234567"])])


# --------------------------------------------------------------------------- sniffing


def test_sniff() -> None:
    import leads.formats.endnote_xml
    import leads.formats.pubmed_xml
    import leads.formats.tabular  # noqa: F401

    for path in sorted(CTGOV.glob("*.json")):
        assert ctgov.sniff(path.read_bytes()[:65536]), path.name
        assert detect_format(path).name == "ctgov-json"
    for path in [
        *sorted((HERE / "pubmed_xml").glob("*.*ml")),
        *sorted((HERE / "endnote_xml").glob("*.xml")),
        *sorted((HERE / "tabular").glob("*.csv")),
    ]:
        assert not ctgov.sniff(path.read_bytes()[:65536]), path.name
    assert get_format("ctgov-json").priority > get_format("jsonl").priority


def test_leads_jsonl_holding_a_registration_stays_jsonl(tmp_path: Path) -> None:
    (record,) = _read("study_NCT03418623_no-results.json")
    target = tmp_path / "records.jsonl"
    with target.open("wb") as stream:
        jsonl_format.write([record], stream)
    head = target.read_bytes()[:65536]
    assert b'"protocolSection"' in head  # inside extra.ctgov_study
    assert not ctgov.sniff(head)
    assert detect_format(target).name == "jsonl"
    assert list(read_records(target)) == [record]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(p.name for p in CTGOV.glob("*.json")))
def test_round_trip_real_files(name: str) -> None:
    records = _read(name)
    data = _write(records)
    assert set(json.loads(data)) == {"studies"}
    assert read_bytes(data, format="ctgov-json", source="out.json") == records


def test_studies_written_back_unchanged() -> None:
    original = json.loads((CTGOV / "study_NCT05594173_with-results.json").read_text())
    data = _write(_read("study_NCT05594173_with-results.json"))
    assert json.loads(data) == {"studies": [original]}


text = st.text(st.characters(), max_size=40)


@st.composite
def registrations(draw: st.DrawFn) -> Record:
    ncts = draw(
        st.lists(st.from_regex(r"NCT[0-9]{8}", fullmatch=True), min_size=1, max_size=3, unique=True)
    )
    return Record(
        record_type="registration",
        nct_ids=ncts,
        title=draw(st.one_of(st.none(), text)),
        abstract=draw(st.one_of(st.none(), text)),
        year=draw(st.one_of(st.none(), st.integers(1900, 2100))),
        keywords=draw(st.lists(text.map(str.strip).filter(bool), max_size=4, unique=True)),
        other_ids=draw(
            st.dictionaries(
                st.sampled_from(["org_study_id", "eudract", "nih", "ctis", "other"]),
                text.map(str.strip).filter(bool),
                max_size=3,
            )
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(registrations(), max_size=3))
def test_generated_registrations_round_trip(generated: list[Record]) -> None:
    """Registrations from elsewhere (no raw study) are written as minimal studies."""
    back = read_bytes(_write(generated), format="ctgov-json", source="gen.json")
    assert len(back) == len(generated)
    for record, read in zip(generated, back, strict=True):
        assert read.record_type == "registration"
        assert read.nct_ids == record.nct_ids
        assert read.title == record.title
        assert read.abstract == record.abstract
        assert read.year == record.year
        assert read.keywords == record.keywords
        assert read.other_ids == record.other_ids
        assert read.urls == [f"https://clinicaltrials.gov/study/{record.nct_ids[0]}"]
    # Written again from the raw study they now carry: nothing changes.
    assert read_bytes(_write(back), format="ctgov-json") == back


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_a_leads_error(data: bytes) -> None:
    try:
        result = read_bytes(data, format="ctgov-json", source="fuzz.json")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=15,
)
study_like = st.fixed_dictionaries(
    {},
    optional={
        "protocolSection": st.fixed_dictionaries(
            {},
            optional={
                "identificationModule": st.fixed_dictionaries(
                    {},
                    optional={
                        "nctId": st.one_of(
                            st.from_regex(r"NCT[0-9]{8}", fullmatch=True), json_values
                        ),
                        "nctIdAliases": json_values,
                        "secondaryIdInfos": json_values,
                        "officialTitle": json_values,
                    },
                ),
                "statusModule": json_values,
                "conditionsModule": json_values,
                "referencesModule": json_values,
            },
        ),
        "derivedSection": json_values,
        "hasResults": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        study_like,
        st.fixed_dictionaries({"studies": st.lists(study_like | json_values, max_size=3)}),
        json_values,
    )
)
def test_arbitrary_json_gives_records_or_a_leads_error(value: object) -> None:
    data = json.dumps(value).encode()
    try:
        result = read_bytes(data, format="ctgov-json", source="fuzz.json")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in result)


@pytest.mark.shared
def test_all_shared_ctgov_files(shared_data: Path) -> None:
    for path in sorted((shared_data / "api_fixtures" / "ctgov").glob("*.json")):
        assert detect_format(path).name == "ctgov-json", path.name
        records = list(read_records(path))
        assert records and all(r.record_type == "registration" for r in records)
        assert read_bytes(_write(records), format="ctgov-json") == records
    (record,) = read_records(
        shared_data / "api_fixtures" / "ctgov" / "study_NCT02210780_with-results.json"
    )
    assert record.other_ids == {"org_study_id": "R668-AD-1314"}
    assert record.extra["lead_sponsor"] == "Regeneron Pharmaceuticals"


@pytest.mark.shared
def test_other_shared_json_is_not_ctgov(shared_data: Path) -> None:
    for path in [
        *sorted((shared_data / "api_fixtures" / "eutils").glob("*.json")),
        *sorted((shared_data / "api_fixtures" / "openalex").glob("*.json")),
        *sorted((shared_data / "api_fixtures" / "pmc").glob("*.json")),
    ]:
        assert not ctgov.sniff(path.read_bytes()[:65536]), path.name


def test_deeply_nested_json_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="nested too deeply"):
        read_bytes(b'{"studies": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", format="ctgov-json")
