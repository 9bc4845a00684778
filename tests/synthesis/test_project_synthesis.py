"""Synthesis from a project's results extractions: real trial texts, the classic extractor's real
outputs stored as extraction rows, pooled with their provenance down to each quote."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from leads.documents.store import add_document, get_document
from leads.extract.results import extract_results, results_input
from leads.project import Project
from leads.synthesis.project import outcome_of_field, study_label, synthesize_project
from leads.tasks.extraction import ResultsOutput

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "remdesivir"
OUTCOME = "Mortality up to day 28"
# Wang 2020 (PMC7190303) and the WHO Solidarity trial (PMC7727327): the texts report
# 22/158 vs 10/78 and 301/2743 vs 303/2708 deaths; ACTT-1 (PMC7262788) reports only percentages.
PMCIDS = ("PMC7190303", "PMC7727327", "PMC7262788")


def _rr(a: float, n1: float, c: float, n2: float) -> float:
    return (a / n1) / (c / n2)


@pytest.fixture(scope="module")
def project_with_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("synthesis") / "review"
    with Project.init(directory, name="remdesivir synthesis test") as project:
        project.import_file(EXAMPLE / "records.nbib")
        by_pmcid = {s.record.pmcid: s.id for s in project.iter_records()}
        rows = []
        for pmcid in PMCIDS:
            record_id = by_pmcid[pmcid]
            stored = add_document(project, EXAMPLE / "fulltexts" / f"{pmcid}.xml", record_id=record_id).document
            document = get_document(project, stored.id)
            output = extract_results(results_input(document, intervention="Remdesivir",
                                                   comparator="Placebo or standard care", outcome=OUTCOME,
                                                   outcome_type="binary")).output
            evidence = {(e.start, e.end): e.model_dump(mode="json") for v in output.values for e in v.evidence}
            rows.append({"record_id": record_id, "task": "results", "field": f"results: {OUTCOME}",
                         "value": output.model_dump(mode="json"), "evidence": list(evidence.values()),
                         "document_id": stored.id})
        project.add_extractions(rows)
    return directory


def test_pools_the_extracted_numbers_with_provenance(project_with_results: Path, tmp_path: Path) -> None:
    with Project.open(project_with_results) as project:
        result = synthesize_project(project, measure="RR", model="fixed", out_dir=tmp_path)
        texts = {d: get_document(project, d).text for d in {r["document_id"] for r in project.extractions()}}
        row_of = {r["record_id"]: r for r in project.extractions(task="results")}
    outcome = result.outcome(OUTCOME)
    analysis = outcome.analysis
    assert analysis is not None and analysis.measure == "RR"
    by_label = {e.label: e for e in analysis.studies}
    assert set(by_label) == {"Wang 2020", "WHO Solidarity Trial Consortium 2021"}
    wang, who = by_label["Wang 2020"], by_label["WHO Solidarity Trial Consortium 2021"]
    assert wang.inputs == {"treatment.events": 22, "treatment.total": 158, "control.events": 10, "control.total": 78}
    assert who.display_estimate == pytest.approx(_rr(301, 2743, 303, 2708), rel=1e-9)
    # the fixed-effect inverse-variance estimate, by hand
    logs = [(math.log(_rr(22, 158, 10, 78)), 1 / 22 - 1 / 158 + 1 / 10 - 1 / 78),
            (math.log(_rr(301, 2743, 303, 2708)), 1 / 301 - 1 / 2743 + 1 / 303 - 1 / 2708)]
    pooled = sum(y / v for y, v in logs) / sum(1 / v for _, v in logs)
    assert analysis.fixed.estimate == pytest.approx(pooled, rel=1e-9)
    # ACTT-1 gives percentages only: left out with the reason, not dropped silently
    assert [s.reason for s in outcome.skipped] == ["intervention events not reported"]
    # provenance: every number points at its extraction row, and its quotes are located in the text
    for effect in analysis.studies:
        row = row_of[effect.record_id]
        assert outcome.rows[effect.study_id] == row["id"]
        events = effect.sources["treatment.events"]
        assert events and all(p.value_id == row["id"] for p in events)
        for prov in events:
            if prov.quote is not None:
                assert texts[row["document_id"]][prov.start:prov.end] == prov.quote
    assert any("22" in (p.quote or "") for p in wang.sources["treatment.events"])
    # the forest plot: one SVG per outcome, study rows link to the report's anchors
    svg = (tmp_path / f"forest-{outcome.slug}.svg").read_text(encoding="utf-8")
    assert outcome.plots == [tmp_path / f"forest-{outcome.slug}.svg"]
    assert f'href="#study-{wang.study_id}"' in svg and "Wang 2020" in svg


def test_a_reviewers_value_replaces_the_ai_proposal(project_with_results: Path, tmp_path: Path) -> None:
    directory = tmp_path / "copy"
    import shutil

    shutil.copytree(project_with_results, directory)
    with Project.open(directory, actor="reviewer-1") as project:
        actt = next(r for r in project.extractions(task="results")
                    if project.record(r["record_id"]).record.pmcid == "PMC7262788")
        value = ResultsOutput.model_validate(actt["value"])
        # the reviewer reads 59/541 vs 77/521 deaths by day 28 from the trial's supplement
        for v, n in zip(value.values, (59, 77), strict=True):
            v.value, v.number = str(n), float(n)
        project.review_extraction(actt["id"], "edit", value=value.model_dump(mode="json"))
        result = synthesize_project(project, measure="RR", model="random")
    analysis = result.outcome(OUTCOME).analysis
    assert analysis is not None and len(analysis.studies) == 3
    beigel = next(e for e in analysis.studies if e.label == "Beigel 2020")
    assert beigel.inputs["treatment.events"] == 59 and beigel.inputs["control.total"] == 521
    assert result.outcome(OUTCOME).skipped == []


def test_outcome_filter_and_labels(project_with_results: Path) -> None:
    with Project.open(project_with_results) as project:
        assert synthesize_project(project, outcomes=["something else"]).outcomes == []
        only = synthesize_project(project, outcomes=[OUTCOME.upper()])
        assert [o.outcome for o in only.outcomes] == [OUTCOME]
        assert "RR" in only.summary() and "2 studies" in only.summary()
    assert outcome_of_field("results:  All-cause mortality ") == "All-cause mortality"

    from leads.records import Record

    assert study_label(Record(authors=["Beigel JH"], year=2020, title="x"), 1) == "Beigel 2020"
    assert study_label(Record(authors=["WHO Solidarity Trial Consortium"], year=2021), 1) == \
        "WHO Solidarity Trial Consortium 2021"
    assert study_label(Record(year=2020, title="x"), 7) == "x (2020)"
    assert study_label(Record(), 7) == "record 7"
