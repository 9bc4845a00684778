"""The extraction plan on the extraction page: outcomes (outcome, intervention, comparator, type)
and extra fields kept in the project, who may change them, and an AI extraction run that reads
them (the real classic engine over a real vendored article, PMC5710015)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from leads.documents.store import add_document
from leads.project import Project
from leads.project import schema as t
from leads.web.store import ExtractionPlan, OutcomeSetting, WorkspaceError, extraction_plan

from .conftest import REPO, Client, make_user

ARTICLE = REPO / "tests" / "fixtures" / "documents" / "PMC5710015.nxml"
OUTCOME = {"outcome": "Intubation time", "intervention": "McGrath MAC laryngoscope",
           "comparator": "Macintosh laryngoscope", "outcome_type": "continuous"}
FIELD = {"name": "Anaesthetic induction", "description": "Which drugs were used to induce anaesthesia"}


@pytest.fixture
def study(workspace: tuple[FastAPI, Path]) -> int:
    """Record 1 included, with the article attached."""
    _, project_dir = workspace
    with Project.open(project_dir, actor="alice") as project:
        rid = min(s.id for s in project.iter_records())
        project.decide(rid, "include", actor="alice")
        add_document(project, ARTICLE, record_id=rid)
    return rid


def _plan(project_dir: Path) -> ExtractionPlan:
    with Project.open(project_dir) as project:
        return extraction_plan(project)


def _flash_error(response: Any) -> None:
    assert response.status_code == 303 and response.headers["location"].endswith("/extract#plan")


def test_outcomes_and_fields_are_kept_in_the_project(alice: Client, slug: str,
                                                     workspace: tuple[FastAPI, Path]) -> None:
    _, project_dir = workspace
    assert _plan(project_dir) == ExtractionPlan()
    page: Any = alice.get(f"/p/{slug}/extract")
    assert 'id="outcome-form"' in page.text and 'id="field-form"' in page.text
    assert alice.post(f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "  Intubation \n time "}).status_code == 303
    alice.post(f"/p/{slug}/extract/outcomes", {"outcome": "Success at first attempt", "intervention": "McGrath",
                                                "comparator": "Macintosh"})
    alice.post(f"/p/{slug}/extract/fields", FIELD)
    alice.post(f"/p/{slug}/extract/fields", {"name": "anaesthetic  induction", "description": "Induction drugs"})
    plan = _plan(project_dir)
    assert plan.outcomes == (OutcomeSetting(**OUTCOME),
                             OutcomeSetting("Success at first attempt", "McGrath", "Macintosh", "auto"))
    assert [o.for_run()["outcome_type"] for o in plan.outcomes] == ["continuous", None]
    assert plan.fields_dict() == {"anaesthetic induction": "Induction drugs"}  # a field saved again is replaced
    shown: Any = alice.get(f"/p/{slug}/extract")
    assert "Success at first attempt" in shown.text and "Induction drugs" in shown.text

    # Refused, each with a message, and nothing changes.
    for url, data in ((f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "intubation TIME"}),
                      (f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "Other", "comparator": " "}),
                      (f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "Other", "outcome_type": "ordinal"}),
                      (f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "x" * 247}),
                      (f"/p/{slug}/extract/fields", {"name": "Blinding", "description": ""}),
                      (f"/p/{slug}/extract/outcomes/remove", {"outcome": "not defined"})):
        _flash_error(alice.post(url, data))
    assert _plan(project_dir) == plan

    alice.post(f"/p/{slug}/extract/outcomes/remove", {"outcome": "success at first attempt"})
    alice.post(f"/p/{slug}/extract/fields/remove", {"name": "Anaesthetic induction"})
    assert _plan(project_dir) == ExtractionPlan((OutcomeSetting(**OUTCOME),), ())
    with Project.open(project_dir) as project:
        changes = [a for a in project.activity() if a["action"] == "extraction-plan"]
    assert len(changes) == 6 and all(a["actor"] == "alice" for a in changes)
    assert changes[-1]["detail"] == {"added_outcome": OUTCOME}  # newest first


def test_a_broken_stored_plan_is_named(workspace: tuple[FastAPI, Path]) -> None:
    _, project_dir = workspace
    with Project.open(project_dir) as project:
        with project.engine.begin() as conn:
            conn.execute(sa.insert(t.project_info).values(
                key="extraction_plan", value='{"outcomes": [{"outcome": "a", "intervention": "b", '
                                             '"comparator": "c", "outcome_type": "ordinal"}]}'))
        with pytest.raises(WorkspaceError, match="project_info 'extraction_plan': an outcome type is one of"):
            extraction_plan(project)
        with project.engine.begin() as conn:
            conn.execute(sa.update(t.project_info).where(t.project_info.c.key == "extraction_plan")
                         .values(value="[1"))
        with pytest.raises(WorkspaceError, match="'extraction_plan' is not JSON"):
            extraction_plan(project)


def test_viewers_and_reviewers_cannot_change_the_plan_or_run(alice: Client, slug: str, study: int,
                                                             workspace: tuple[FastAPI, Path]) -> None:
    app, project_dir = workspace
    alice.post(f"/p/{slug}/extract/outcomes", OUTCOME)
    plan = _plan(project_dir)
    for client in (make_user(app, "vera", "viewer"), make_user(app, "rob", "reviewer")):
        page: Any = client.get(f"/p/{slug}/extract")
        assert page.status_code == 200 and "Intubation time" in page.text  # the plan is shown
        assert 'id="outcome-form"' not in page.text and "/extract/outcomes/remove" not in page.text
        for url, data in ((f"/p/{slug}/extract/outcomes", {**OUTCOME, "outcome": "Other"}),
                          (f"/p/{slug}/extract/outcomes/remove", {"outcome": "Intubation time"}),
                          (f"/p/{slug}/extract/fields", FIELD),
                          (f"/p/{slug}/extract/fields/remove", {"name": "x"}),
                          (f"/p/{slug}/extract/run", {"tasks": "results"})):
            assert client.post(url, data).status_code == 403, (client.username, url)
    assert _plan(project_dir) == plan
    assert app.state.web.jobs.for_project(slug) == []


def test_a_results_run_needs_an_outcome_and_tasks_are_checked(alice: Client, slug: str, study: int,
                                                              workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    page: Any = alice.get(f"/p/{slug}/extract")
    assert 'name="tasks" value="results"' in page.text
    _flash_error(alice.post(f"/p/{slug}/extract/run", {"tasks": "results"}))
    unknown: Any = alice.post(f"/p/{slug}/extract/run", {"tasks": "risk_of_bias"})
    assert unknown.status_code == 400 and "risk_of_bias" in unknown.text
    assert app.state.web.jobs.for_project(slug) == []


@pytest.mark.slow
def test_the_run_extracts_the_results_of_the_outcomes_and_the_extra_fields(
        alice: Client, slug: str, study: int, workspace: tuple[FastAPI, Path]) -> None:
    """The real classic engine (about 20 s): one outcome and one extra field defined on the page
    give a results value for that outcome and a value for that field."""
    app, project_dir = workspace
    alice.post(f"/p/{slug}/extract/outcomes", OUTCOME)
    alice.post(f"/p/{slug}/extract/fields", FIELD)
    response: Any = alice.post(f"/p/{slug}/extract/run", {"tasks": ["characteristics", "results"],
                                                          "record_id": str(study)})
    assert response.status_code == 303, response.text
    job = app.state.web.jobs.wait(int(response.headers["location"].rsplit("/", 1)[1]), timeout=300)
    assert job.state == "done", job.error
    assert job.title == f"AI extraction (record {study}; 1 outcome(s))"
    with Project.open(project_dir) as project:
        rows = {(r["task"], r["field"]): r for r in project.extractions(record_ids=[study])}
    results = rows[("results", "results: Intubation time")]
    assert results["origin"] == "ai" and results["value"]["outcome"] == "Intubation time"
    assert results["value"]["param_type"] == "MEAN" and results["evidence"]
    assert ("characteristics", FIELD["name"]) in rows
    assert not any(task in ("arms", "participants") for task, _ in rows)  # only the tasks ticked ran
    page: Any = alice.get(f"/p/{slug}/extract/{study}")
    assert "results: Intubation time" in page.text
