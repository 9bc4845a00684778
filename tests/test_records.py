"""Identifier normalisation and the Record model."""

from hypothesis import given
from hypothesis import strategies as st

from leads.records import (
    AbstractSection,
    Record,
    find_identifiers,
    join_abstract,
    normalize_doi,
    normalize_nct,
    normalize_pmcid,
    normalize_pmid,
)


def test_doi_forms() -> None:
    for raw in [
        "10.1001/JAMA.288.7.872",
        "doi:10.1001/jama.288.7.872",
        "DOI: 10.1001/jama.288.7.872.",
        "https://doi.org/10.1001/jama.288.7.872",
        "http://dx.doi.org/10.1001/jama.288.7.872",
        "https://doi.org/10.1001%2Fjama.288.7.872",
        " 10.1001/jama.288.7.872 ",
    ]:
        assert normalize_doi(raw) == "10.1001/jama.288.7.872", raw
    assert normalize_doi("jama.288.7.872") is None
    assert normalize_doi("") is None
    assert normalize_doi("10.12/x") is None  # registrant codes have at least 4 digits


def test_pmid_forms() -> None:
    assert normalize_pmid("PMID: 12345678") == "12345678"
    assert normalize_pmid("https://pubmed.ncbi.nlm.nih.gov/12345678/") == "12345678"
    assert normalize_pmid("0012345") == "12345"
    assert normalize_pmid(22663011) == "22663011"
    assert normalize_pmid("22663011 [PubMed - indexed for MEDLINE]") == "22663011"
    assert normalize_pmid("abc") is None
    assert normalize_pmid("0") is None


def test_pmcid_and_nct_forms() -> None:
    assert normalize_pmcid("PMC1216327") == "PMC1216327"
    assert normalize_pmcid("1216327") == "PMC1216327"
    assert normalize_pmcid("pmc 1216327") == "PMC1216327"
    assert normalize_pmcid("PMCx") is None
    assert normalize_nct("nct00763412") == "NCT00763412"
    assert normalize_nct("NCT 00763412") == "NCT00763412"
    assert normalize_nct("NCT0076341") is None


def test_find_identifiers_in_abstract() -> None:
    text = (
        "Registered at ClinicalTrials.gov (NCT01234567) and nct 07654321; full text at "
        "https://doi.org/10.1056/NEJMoa1200303. PMID: 22663011. Also PMC3299399."
    )
    found = find_identifiers(text)
    assert found["nct"] == ["NCT01234567", "NCT07654321"]
    assert found["doi"] == ["10.1056/nejmoa1200303"]
    assert found["pmid"] == ["22663011"]
    assert found["pmcid"] == ["PMC3299399"]


def test_record_normalises_on_construction() -> None:
    r = Record(pmid="PMID:1", doi="DOI:10.1000/X", nct_ids=["nct01234567", "NCT01234567", "bad"], title="  ")
    assert (r.pmid, r.doi, r.nct_ids, r.title) == ("1", "10.1000/x", ["NCT01234567"], None)


def test_add_identifiers_from_text_fills_gaps_only() -> None:
    r = Record(doi="10.1000/keep")
    r.add_identifiers_from_text("see doi 10.2000/other and NCT11111111", None)
    assert r.doi == "10.1000/keep"
    assert r.nct_ids == ["NCT11111111"]


def test_join_abstract() -> None:
    sections = [AbstractSection(label="BACKGROUND", text="Why."), AbstractSection(text="Plain.")]
    assert join_abstract(sections) == "BACKGROUND: Why.\nPlain."


@given(st.text())
def test_normalisers_never_raise(text: str) -> None:
    for fn in (normalize_doi, normalize_pmid, normalize_pmcid, normalize_nct):
        out = fn(text)
        assert out is None or isinstance(out, str)
    find_identifiers(text)


@given(st.from_regex(r"10\.[0-9]{4,9}/[A-Za-z0-9._;()/:-]{1,40}", fullmatch=True))
def test_doi_normalisation_is_idempotent(doi: str) -> None:
    once = normalize_doi(doi)
    if once is not None:
        assert normalize_doi(once) == once
        assert normalize_doi("https://doi.org/" + once) == once
