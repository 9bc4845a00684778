"""Registry cross-check against a real ClinicalTrials.gov record with posted results
(NCT02210780: dupilumab and vaccine responses in atopic dermatitis; tests/fixtures/api/ctgov)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leads.errors import FormatError
from leads.project import Project
from leads.records import Record
from leads.synthesis.registry import (
    check_registry,
    load_registry_studies,
    outcome_similarity,
    time_frame_days,
)
from leads.tasks.extraction import GroupValue, ResultsOutput

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "ctgov" / "study_NCT02210780_with-results.json"
OUTCOME = "Positive response (≥4-fold increase) to tetanus toxoid"


def _results(denominators: tuple[float, float], time_frame: str) -> dict[str, Any]:
    return ResultsOutput(
        outcome=OUTCOME, param_type="PERCENT", unit="percentage of participants", time_frame=time_frame,
        unit_of_denominator="Participants",
        denominators={"intervention": denominators[0], "comparator": denominators[1]},
        values=[GroupValue(group_id="intervention", value="83.3", number=83.3),
                GroupValue(group_id="comparator", value="83.7", number=83.7)],
        outcome_type="binary").model_dump(mode="json")


def _store(project: Project, record_id: int, *, arms: list[str], randomised: str, primary: str,
           denominators: tuple[float, float], time_frame: str) -> None:
    project.add_extractions([
        {"record_id": record_id, "task": "arms", "field": "arms",
         "value": [{"label": a, "type": "EXPERIMENTAL", "description": "",
                    "interventions": ["Placebo" if "Placebo" in a else "Dupilumab"]} for a in arms]},
        {"record_id": record_id, "task": "characteristics", "field": "randomised N", "value": randomised},
        {"record_id": record_id, "task": "characteristics", "field": "primary outcome", "value": primary},
        {"record_id": record_id, "task": "results", "field": f"results: {OUTCOME}",
         "value": _results(denominators, time_frame)},
    ])


@pytest.fixture()
def project(tmp_path: Path) -> Any:
    with Project.init(tmp_path / "review", name="registry check") as p:
        p.add_records([
            Record(title="Dupilumab and vaccine responses in adults with atopic dermatitis",
                   nct_ids=["NCT02210780"]),
            Record(title="The same trial, reported differently", nct_ids=["NCT02210780"]),
            Record(title="A trial without a registration"),
        ], source="file", file_name="records.ris")
        yield p


def test_agreeing_publication(project: Project) -> None:
    _store(project, 1, arms=["Placebo qw", "Dupilumab 300 mg qw"], randomised="194",
           primary="percentage of participants with a positive response (≥4-fold increase) to tetanus toxoid "
                   "at week 16", denominators=(90, 92), time_frame="Week 16")
    result = check_registry(project, record_ids=[1, 3], files=[FIXTURE])
    assert [(s.record_id, s.nct_id, s.available) for s in result.studies] == [(1, "NCT02210780", True)]
    findings = {f.kind: f for f in result.studies[0].findings}
    assert set(findings) == {"arms", "sample_size", "primary_outcome", "time_frame", "denominator"}
    assert all(f.severity == "ok" for f in findings.values()), [f.message for f in findings.values()]
    assert result.discrepancies == 0
    assert findings["sample_size"].registered == 194 and findings["denominator"].registered == [92, 90]


def test_outcome_switching_and_denominator_drift(project: Project) -> None:
    # a report of completers only, with an efficacy outcome promoted to primary and an extra arm
    _store(project, 2, arms=["Placebo qw", "Dupilumab 300 mg qw", "Dupilumab 300 mg q2w"], randomised="240",
           primary="proportion of patients achieving EASI-75 at week 16", denominators=(75, 78),
           time_frame="week 12")
    result = check_registry(project, record_ids=[2], files=[FIXTURE], tolerance=0.10)
    findings = {f.kind: f for f in result.studies[0].findings}
    assert {k for k, f in findings.items() if f.severity == "warning"} == {
        "arms", "sample_size", "primary_outcome", "time_frame", "denominator"}
    assert "Dupilumab 300 mg q2w" in findings["arms"].message
    assert "outcome switching" in findings["primary_outcome"].message
    assert "registered as a secondary outcome" in findings["primary_outcome"].message
    assert "EASI-75" in findings["primary_outcome"].message
    assert "denominator drift" in findings["denominator"].message and findings["denominator"].extracted == [75, 78]
    assert "240" in findings["sample_size"].message and "194" in findings["sample_size"].message
    assert result.discrepancies == 5
    # every finding points back at the extraction row it judged
    rows = {r["id"] for r in project.extractions(record_ids=[2])}
    assert all(f.extraction_id in rows for f in findings.values())


def test_offline_without_the_record(project: Project, tmp_path: Path) -> None:
    result = check_registry(project, record_ids=[1], cache_dir=tmp_path / "empty")
    assert len(result.studies) == 1 and not result.studies[0].available
    assert "online = true" in result.studies[0].note and result.discrepancies == 0
    # a cache folder of <NCT id>.json files is read like the files
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "NCT02210780.json").write_bytes(FIXTURE.read_bytes())
    assert check_registry(project, record_ids=[1], cache_dir=cache).studies[0].available


def test_registry_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match=r"bad\.json.*invalid JSON"):
        load_registry_studies([bad])
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"protocolSection": {}}))
    with pytest.raises(FormatError, match="nctId"):
        load_registry_studies([nameless])
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"studies": [json.loads(FIXTURE.read_text(encoding="utf-8"))]}))
    assert list(load_registry_studies([page])) == ["NCT02210780"]


def test_time_frames_and_similarity() -> None:
    assert time_frame_days("Day 28") == [28.0]
    assert time_frame_days("Baseline to Week 16") == [112.0]
    assert time_frame_days("28 days after randomisation") == [28.0]
    assert time_frame_days("up to 2 years") == [730.5]
    assert time_frame_days("end of treatment") == []
    assert outcome_similarity("All-cause mortality at day 28", "Mortality (all causes) at Day 29") >= 0.5
    assert outcome_similarity("Time to recovery", "All-cause mortality at day 28") < 0.5
