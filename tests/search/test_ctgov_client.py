"""CtgovClient and parse_results against recorded ClinicalTrials.gov API v2 payloads.

Search pages: the recorded Phelan-McDermid page 1 (``totalCount`` 21, a ``nextPageToken``) and
page 2 (requested with that token; no ``totalCount``, a new token) are served as recorded. Page 2's
token was never followed when recording, so the fake answers it with the recorded last page of
another search (``studies_search_last-page_no-token.json``, the only recorded page without a
token), to end the chain. Searches in ``FakeCtgov.searches`` are answered with pages built around
recorded full studies (the page wrapper is made here; the studies are as recorded).
``test_search_run`` reuses :class:`FakeCtgov`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_eutils import Loopback, Params, Reply, Sleeps, mock_transport

from leads.errors import FormatError
from leads.formats import read_records
from leads.search.ctgov import (
    ARM_TYPES,
    CTGOV_PARAM_TYPES,
    EXTRACTION_PARAM_TYPES,
    CtgovClient,
    StudyResults,
    parse_results,
    records_from_page,
)
from leads.search.eutils import SearchServiceError

CTGOV = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "ctgov"
PAGE1 = "studies_search_page1_countTotal_nextPageToken.json"
PAGE2 = "studies_search_page2_pageToken.json"
LAST = "studies_search_last-page_no-token.json"
FILTERED = "studies_search_filter-overallStatus.json"
PHELAN_FIELDS = (
    "NCTId,BriefTitle,OverallStatus,Phase,StudyType,Condition,InterventionName,LeadSponsorName,"
    "EnrollmentCount,BriefSummary,StartDate,CompletionDate,MinimumAge,MaximumAge"
)
STUDY_FILES = {path.name.split("_")[1]: path.name for path in CTGOV.glob("study_NCT*.json")}


def ctgov_payload(name: str) -> bytes:
    return (CTGOV / name).read_bytes()


def study_json(nct: str) -> dict[str, Any]:
    return json.loads(ctgov_payload(STUDY_FILES[nct]))


class FakeCtgov:
    """ClinicalTrials.gov API v2 answering from recorded payloads (see the module notes).

    ``searches`` maps a ``query.cond`` to NCT ids whose recorded full studies make up its pages
    (``pageSize`` per page, ``totalCount`` on the first page only, tokens ``page-2``, ...).
    ``edits`` maps an NCT id to a function applied to its recorded study bytes.
    """

    def __init__(
        self,
        searches: dict[str, list[str]] | None = None,
        edits: dict[str, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        self.searches = searches or {}
        self.edits = edits or {}
        self.before: list[Reply] = []
        self.calls: list[tuple[str, Params]] = []
        self.sent: list[bytes] = []
        page1 = json.loads(ctgov_payload(PAGE1))
        page2 = json.loads(ctgov_payload(PAGE2))
        self.tokens = {page1["nextPageToken"]: PAGE2, page2["nextPageToken"]: LAST}

    def __call__(self, path: str, params: Params) -> Reply:
        self.calls.append((path, params))
        if self.before:
            return self.before.pop(0)
        reply = self._studies(params) if path == "studies" else self._study(path)
        if reply.status == 200:
            self.sent.append(reply.body)
        return reply

    def study_bytes(self, nct: str) -> bytes:
        data = ctgov_payload(STUDY_FILES[nct])
        return self.edits[nct](data) if nct in self.edits else data

    def _study(self, path: str) -> Reply:
        nct = path.removeprefix("studies/")
        if nct not in STUDY_FILES:
            return Reply(404, b"", {"Content-Type": "application/json"})
        return Reply(200, self.study_bytes(nct), {"Content-Type": "application/json"})

    def _studies(self, params: Params) -> Reply:
        token = params.get("pageToken", [None])[0]
        cond = params.get("query.cond", [None])[0]
        if cond in self.searches:
            ids = self.searches[cond]
            size = int(params["pageSize"][0])
            start = int(token.removeprefix("page-")) - 1 if token else 0
            chunk = ids[start * size : (start + 1) * size]
            parts = [b'{"studies":[', b",".join(self.study_bytes(n).strip() for n in chunk), b"]"]
            if not token and params.get("countTotal") == ["true"]:
                parts.append(b',"totalCount":%d' % len(ids))
            if (start + 1) * size < len(ids):
                parts.append(b',"nextPageToken":"page-%d"' % (start + 2))
            return Reply(200, b"".join(parts) + b"}", {"Content-Type": "application/json"})
        if token in self.tokens:
            return Reply(200, ctgov_payload(self.tokens[token]))
        if cond == "Phelan-McDermid Syndrome" and not token:
            return Reply(200, ctgov_payload(PAGE1))
        if (
            cond == "melanoma"
            and params.get("filter.overallStatus") == ["RECRUITING"]
            and not token
        ):
            return Reply(200, ctgov_payload(FILTERED))
        return Reply(400, b"unexpected request in the test's fake ClinicalTrials.gov")


def ctgov_client(app: FakeCtgov, **kwargs: Any) -> CtgovClient:
    kwargs.setdefault("rate", 1000.0)
    kwargs.setdefault("sleep", Sleeps())
    return CtgovClient(transport=mock_transport(app, prefix="/api/v2/"), **kwargs)


# --------------------------------------------------------------------------- searching


def test_search_follows_page_tokens_and_keeps_the_first_total() -> None:
    app = FakeCtgov()
    result = ctgov_client(app).search(
        cond="Phelan-McDermid Syndrome", fields=PHELAN_FIELDS.split(","), page_size=5
    )
    assert result.pages == 3 and result.total_count == 21
    page_ids = [json.loads(ctgov_payload(n))["studies"] for n in (PAGE1, PAGE2, LAST)]
    expected = [
        s["protocolSection"]["identificationModule"]["nctId"] for page in page_ids for s in page
    ]
    assert result.nct_ids == expected and len(expected) == 12
    assert result.warnings == ["fetched 12 studies but ClinicalTrials.gov reported 21"]
    first, second, third = (params for _, params in app.calls)
    # The first request is the recorded one: query.cond, countTotal, pageSize, fields.
    assert first["query.cond"] == ["Phelan-McDermid Syndrome"] and first["countTotal"] == ["true"]
    assert first["pageSize"] == ["5"] and first["fields"] == [PHELAN_FIELDS]
    assert "pageToken" not in first
    assert second["pageToken"] == ["ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4dnDeTsPkw"]
    assert third["pageToken"] == ["ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4bmjeauvk_IQ"]
    # Later pages repeat the query, as the API requires.
    assert all(
        p["query.cond"] == first["query.cond"] and p["fields"] == first["fields"]
        for p in (second, third)
    )


def test_filters_and_raw_params_and_the_count_only_request() -> None:
    app = FakeCtgov()
    counted = ctgov_client(app).count(cond="melanoma", filters={"overallStatus": "RECRUITING"})
    assert counted.total_count == 480 and counted.pages == 1
    params = app.calls[0][1]
    assert params["filter.overallStatus"] == ["RECRUITING"] and params["pageSize"] == ["1"]
    assert params["fields"] == ["NCTId"]
    built = CtgovClient.build_params(
        {"query.titles": "aspirin", "filter.advanced": "AREA[Phase]PHASE3"},
        intr="aspirin",
        filters={"overallStatus": ["RECRUITING", "COMPLETED"]},
        count_total=False,
        page_size=1000,
    )
    assert built == {
        "query.titles": "aspirin",
        "filter.advanced": "AREA[Phase]PHASE3",
        "query.intr": "aspirin",
        "filter.overallStatus": "RECRUITING,COMPLETED",
        "pageSize": "1000",
        "countTotal": "false",
        "format": "json",
    }
    with pytest.raises(ValueError, match="page_size"):
        CtgovClient.build_params(term="x", page_size=1001)
    with pytest.raises(ValueError, match="needs a query"):
        CtgovClient.build_params(page_size=10)


def test_records_from_a_recorded_page_use_the_ctgov_reader() -> None:
    records = records_from_page(ctgov_payload(PAGE1))
    assert [r.record_type for r in records] == ["registration"] * 5
    assert records[0].nct_ids == ["NCT02710084"]
    assert all(r.extra["ctgov_study"] for r in records)


def test_a_repeated_page_token_stops_the_search() -> None:
    page = json.dumps({"studies": [], "nextPageToken": "same"}).encode()
    app = FakeCtgov()
    app.before += [Reply(200, page), Reply(200, page), Reply(200, page)]
    with pytest.raises(FormatError, match="repeated the page token"):
        ctgov_client(app).search(term="loop")
    assert len(app.calls) == 2


def test_study_retries_a_5xx_and_reports_404() -> None:
    app = FakeCtgov()
    app.before.append(Reply(503, b"Service Unavailable"))
    sleeps = Sleeps()
    client = ctgov_client(app, sleep=sleeps)
    with client.record_responses() as log:
        study = client.study("nct 05594173")
    assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT05594173"
    assert sleeps == [1.0] and app.calls[-1][0] == "studies/NCT05594173"
    assert log.sha256 == hashlib.sha256(ctgov_payload(STUDY_FILES["NCT05594173"])).hexdigest()
    with pytest.raises(SearchServiceError, match="study NCT99999999 not found") as caught:
        client.study("NCT99999999")
    assert caught.value.status == 404
    with pytest.raises(ValueError):
        client.study("12345")


def test_study_with_a_fields_subset() -> None:
    app = FakeCtgov()
    fields = ["NCTId", "BriefTitle", "Condition", "InterventionName", "OverallStatus"]
    study = ctgov_client(app).study("NCT02576665", fields=fields)
    assert app.calls[0][1]["fields"] == [
        "NCTId,BriefTitle,Condition,InterventionName,OverallStatus"
    ]
    results = parse_results(study)
    assert results.nct_id == "NCT02576665" and results.has_results is False
    assert results.outcomes == [] and results.baseline is None and results.arms == []
    # A sparse response: interventions without type or arm labels still parse.
    assert [(i.name, i.type, i.other_names[0]) for i in results.interventions] == [
        ("Toca 511", None, "vocimagene amiretrorepvec"),
        ("Toca FC", None, "Flucytosine"),
    ]


def test_default_rate_is_fifty_per_minute() -> None:
    assert CtgovClient().limiter.rate == pytest.approx(50 / 60)


def test_end_to_end_over_loopback_http() -> None:
    app = FakeCtgov()
    server = Loopback({"/api/v2/": app})
    try:
        with CtgovClient(base_url=server.url("/api/v2/"), rate=100) as client:
            result = client.search(
                cond="Phelan-McDermid Syndrome", fields=PHELAN_FIELDS, page_size=5
            )
            results = client.results("NCT02210780")
    finally:
        server.close()
    assert result.total_count == 21 and len(result.studies) == 12
    assert app.calls[1][1]["pageToken"] == ["ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4dnDeTsPkw"]
    assert results.nct_id == "NCT02210780" and len(results.outcomes) == 11


# --------------------------------------------------------------------------- results


def test_arms_and_interventions() -> None:
    results = parse_results(study_json("NCT02210780"))
    assert [(a.label, a.type) for a in results.arms] == [
        ("Placebo qw", "EXPERIMENTAL"),
        ("Dupilumab 300 mg qw", "EXPERIMENTAL"),
    ]
    dupilumab = results.arms[1]
    assert dupilumab.intervention_names == ["Drug: Dupilumab"]
    assert [(i.type, i.name, i.other_names) for i in dupilumab.interventions] == [
        ("DRUG", "Dupilumab", ["REGN668", "SAR231893", "Dupixent"])
    ]
    assert dupilumab.description.startswith("Two subcutaneous injections of Dupilumab 300 mg")


def test_baseline_characteristics_with_ranges_and_categories() -> None:
    baseline = parse_results(study_json("NCT05594173")).baseline
    assert baseline is not None
    assert [(g.id, g.title) for g in baseline.groups] == [("BG000", "Healthy Participants")]
    assert baseline.denominators() == {"BG000": 17}
    age, sex = baseline.measures[:2]
    assert (age.title, age.param_type, age.dispersion_type, age.unit) == (
        "Age, Continuous",
        "MEDIAN",
        "FULL_RANGE",
        "years",
    )
    (measurement,) = age.classes[0].categories[0].measurements
    assert (
        measurement.value,
        measurement.number,
        measurement.lower_limit,
        measurement.upper_limit,
    ) == ("26", 26.0, "22", "54")
    assert [(c.title, c.measurements[0].number) for c in sex.classes[0].categories] == [
        ("Female", 10.0),
        ("Male", 7.0),
    ]
    assert baseline.measures[-1].classes[0].title == "Canada"


def test_outcome_measures_with_dispersion_and_denominators() -> None:
    results = parse_results(study_json("NCT05594173"))
    assert [o.type for o in results.outcomes] == ["PRIMARY", "PRIMARY"]
    chewing = results.outcomes[0]
    assert chewing.title == "Number of Chewing Cycles Per Bolus"
    assert (chewing.param_type, chewing.dispersion_type, chewing.unit) == (
        "MEAN",
        "Standard Deviation",
        "number of chewing cycles",
    )
    assert chewing.time_frame == "Baseline (single timepoint only)"
    assert chewing.denominators() == {f"OG00{i}": 14 for i in range(6)}
    assert [(m.value, m.spread) for m in chewing.values()["OG000"]] == [("22", "11")]


def test_outcome_analyses_with_p_values() -> None:
    results = parse_results(study_json("NCT02210780"))
    outcome = next(o for o in results.outcomes if o.analyses)
    assert outcome.title.startswith(
        "Percentage of Participants Achieving an Investigator's Global Assessment"
    )
    assert outcome.denominators() == {"OG000": 97, "OG001": 97}
    assert {g: [m.number for m in ms] for g, ms in outcome.values().items()} == {
        "OG000": [10.3],
        "OG001": [44.3],
    }
    analysis = outcome.analyses[0]
    assert analysis.group_ids == ["OG000", "OG001"]
    assert (analysis.p_value, analysis.p_value_comparator, analysis.p_value_number) == (
        "<0.0001",
        "<",
        0.0001,
    )
    assert (analysis.statistical_method, analysis.param_type, analysis.param_number) == (
        "Cochran-Mantel-Haenszel",
        "Percentage Difference",
        34.0,
    )
    assert (analysis.ci_pct_value, analysis.ci_lower_limit, analysis.ci_upper_limit) == (
        "90",
        "24.29",
        "43.75",
    )
    assert results.primary_outcomes[0].title.startswith(
        "Percentage of Participants With a Positive Response"
    )


def test_a_large_results_section_and_an_outcome_without_data() -> None:
    results = parse_results(study_json("NCT02552212"))
    assert len(results.outcomes) == 31 and len(results.primary_outcomes) == 11
    analyses = [a for o in results.outcomes for a in o.analyses]
    assert len(analyses) == 12
    assert {(a.p_value, a.p_value_comparator) for a in analyses} >= {
        ("=0.247", "="),
        ("<0.001", "<"),
    }
    assert results.baseline is not None and results.baseline.denominators() == {
        "BG000": 158,
        "BG001": 159,
        "BG002": 317,
    }
    concentration = next(
        o
        for o in results.outcomes
        if o.title == "Certolizumab Pegol Plasma Concentration at Baseline"
    )
    assert concentration.param_type is None and concentration.classes == []
    assert concentration.denominators() == {"OG000": 0, "OG001": 0}


def test_a_study_without_results_and_a_record_as_input() -> None:
    results = parse_results(study_json("NCT03418623"))
    assert results.has_results is False and results.baseline is None and results.outcomes == []
    assert [a.type for a in results.arms] == ["EXPERIMENTAL", "PLACEBO_COMPARATOR"]
    (record,) = read_records(CTGOV / STUDY_FILES["NCT00763412"], format="ctgov-json")
    from_record = parse_results(record)
    assert isinstance(from_record, StudyResults) and from_record.nct_id == "NCT00763412"
    assert [(a.label, [i.name for i in a.interventions]) for a in from_record.arms] == [
        ("1 Placebo", ["placebo"]),
        ("2. repaglinide", ["repaglinide"]),
    ]
    with pytest.raises(FormatError, match=r"no ClinicalTrials\.gov study JSON"):
        parse_results(record.model_copy(update={"extra": {}}))


def test_recorded_vocabulary_matches_the_extraction_tasks() -> None:
    arm_types: set[str] = set()
    param_types: set[str] = set()
    for nct in STUDY_FILES:
        results = parse_results(study_json(nct))
        arm_types |= {a.type for a in results.arms if a.type}
        measures = results.outcomes + (results.baseline.measures if results.baseline else [])
        param_types |= {m.param_type for m in measures if m.param_type}
    assert arm_types and arm_types <= set(ARM_TYPES)
    assert param_types and param_types <= set(EXTRACTION_PARAM_TYPES) & set(CTGOV_PARAM_TYPES)
    # The registry's enumeration differs from the tasks' in two values only (see ctgov.py).
    assert set(CTGOV_PARAM_TYPES) ^ set(EXTRACTION_PARAM_TYPES) == {"LOG_MEAN", "PERCENT"}
