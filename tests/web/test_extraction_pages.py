"""The extraction pages: included studies, a study's full text beside its values with the quotes
highlighted, accept / edit / reject, custom fields, and who may do what.

AI values are seeded with ``Project.add_extractions`` (real rows whose quotes are located in a
real vendored article, PMC5710015), so these tests do not depend on the extraction engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from leads.documents.store import add_document, get_document
from leads.grounding import locate
from leads.project import Project

from .conftest import REPO, Client, make_user

ARTICLE = REPO / "tests" / "fixtures" / "documents" / "PMC5710015.nxml"
ALLOCATION = "Patients were randomly allocated to three groups"
TIME = "Tracheal intubation time was 26.8 ± 5.7 s (mean ± standard deviation) for M group, 36.4 ± 11.0 s for A group"


def _evidence(text: str, quote: str) -> list[dict[str, Any]]:
    span = locate(quote, text)
    assert span is not None and span.method == "exact"
    return [{"quote": text[span.start:span.end], "start": span.start, "end": span.end}]


@pytest.fixture
def study(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> dict[str, Any]:
    """Record 1 included by alice, the article attached to it, three AI values seeded."""
    _, project_dir = workspace
    with Project.open(project_dir, actor="alice") as project:
        rid = min(s.id for s in project.iter_records())
        project.decide(rid, "include", actor="alice")
        added = add_document(project, ARTICLE, record_id=rid)
        text = get_document(project, added.document.id).text
        assert text
        results = {
            "outcome": "Tracheal intubation time", "param_type": "MEAN", "unit": "s", "time_frame": "",
            "unit_of_denominator": "Participants", "denominators": {"M group": 20, "A group": 20},
            "values": [{"group_id": "M group", "value": "26.8", "number": 26.8},
                       {"group_id": "A group", "value": "36.4", "number": 36.4}],
            "outcome_type": "continuous",
            "arms": [{"group_id": "M group", "mean": 26.8, "sd": 5.7, "group_size": 20.0},
                     {"group_id": "A group", "mean": 36.4, "sd": 11.0, "group_size": 20.0}],
            "notes": []}
        ids = project.add_extractions([
            {"record_id": rid, "document_id": added.document.id, "task": "characteristics", "field": "allocation",
             "value": "random allocation to three groups", "evidence": _evidence(text, ALLOCATION)},
            {"record_id": rid, "document_id": added.document.id, "task": "results",
             "field": "results: Tracheal intubation time", "value": results, "evidence": _evidence(text, TIME)},
            {"record_id": rid, "document_id": added.document.id, "task": "characteristics", "field": "funding",
             "value": None, "evidence": []},
        ])
        other = max(s.id for s in project.iter_records())
    return {"record": rid, "ids": ids, "text": text, "other": other, "project": project_dir}


def test_the_study_page_shows_the_text_with_quotes_and_readable_values(alice: Client, slug: str,
                                                                       study: dict[str, Any]) -> None:
    rid, ids = study["record"], study["ids"]
    listing: Any = alice.get(f"/p/{slug}/extract")
    assert listing.status_code == 200
    assert f'href="/p/{slug}/extract/{rid}"' in listing.text and "full text" in listing.text
    page: Any = alice.get(f"/p/{slug}/extract/{rid}")
    assert page.status_code == 200
    assert "The usefulness of the McGrath MAC laryngoscope" in page.text  # the article, not the abstract
    marks = re.findall(r'<mark class="ev" data-criteria="([^"]+)"[^>]*>([^<]*)</mark>', page.text)
    assert (f"x{ids[0]}", ALLOCATION) in marks
    assert f'data-criteria="x{ids[1]}"' in page.text
    assert f'data-anchor="x{ids[0]}"' in page.text
    # results read per group: mean (SD), N
    assert "M group: mean 26.8 (SD 5.7), N = 20" in page.text
    assert "A group: mean 36.4 (SD 11), N = 20" in page.text
    assert "not reported" in page.text  # the funding value is None
    assert f'action="/p/{slug}/extract/{rid}/review"' in page.text


def test_accept_edit_reject_and_custom_fields_are_appended(alice: Client, slug: str, study: dict[str, Any],
                                                           workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    bob = make_user(app, "bob", "reviewer")
    rid, ids = study["record"], study["ids"]
    base = f"/p/{slug}/extract/{rid}"
    accepted: Any = bob.post(base + "/review", {"extraction_id": ids[0], "action": "accept", "seconds": "7.25"})
    assert accepted.status_code == 303
    edited_results = json.dumps({**json.loads(json.dumps(_results_of(study))), "unit": "seconds"})
    edited: Any = bob.post(base + "/review", {"extraction_id": ids[1], "action": "edit", "value": edited_results})
    assert edited.status_code == 303
    bad: Any = bob.post(base + "/review", {"extraction_id": ids[2], "action": "edit", "value": "  "})
    assert bad.status_code == 303
    rejected: Any = bob.post(base + "/review", {"extraction_id": ids[2], "action": "reject"})
    assert rejected.status_code == 303
    custom: Any = bob.post(base + "/custom", {"field": "risk of bias:  randomisation", "value": "low", "seconds": "12"})
    assert custom.status_code == 303
    with Project.open(study["project"]) as project:
        standing = {row["field"]: row for row in project.extractions(record_ids=[rid])}
        history = project.extractions(record_ids=[rid], history=True)
    assert standing["allocation"]["status"] == "accepted" and standing["allocation"]["actor"] == "bob"
    assert standing["allocation"]["seconds_spent"] == 7.25
    assert standing["allocation"]["supersedes_id"] == ids[0]
    assert standing["results: Tracheal intubation time"]["value"]["unit"] == "seconds"
    assert standing["results: Tracheal intubation time"]["value"]["arms"][0]["mean"] == 26.8
    assert standing["funding"]["status"] == "rejected"
    assert standing["risk of bias: randomisation"]["value"] == "low"
    assert standing["risk of bias: randomisation"]["task"] == "custom"
    assert standing["risk of bias: randomisation"]["seconds_spent"] == 12.0
    assert len(history) == 3 + 4  # the AI proposals are kept; the empty edit stored nothing
    page: Any = bob.get(base)
    assert "risk of bias: randomisation" in page.text and "state-accepted" in page.text


def _results_of(study: dict[str, Any]) -> dict[str, Any]:
    with Project.open(study["project"]) as project:
        row = next(r for r in project.extractions(record_ids=[study["record"]]) if r["task"] == "results")
    return dict(row["value"])


def test_an_edit_of_a_structured_value_must_be_json(alice: Client, slug: str, study: dict[str, Any],
                                                    workspace: tuple[FastAPI, Path]) -> None:
    rid, ids = study["record"], study["ids"]
    response: Any = alice.post(f"/p/{slug}/extract/{rid}/review",
                               {"extraction_id": ids[1], "action": "edit", "value": "26.8 s"})
    assert response.status_code == 303
    message = workspace[0].state.web.flash_signer.loads(response.cookies["leads_flash"].strip('"'))[1]
    assert "results / results: Tracheal intubation time" in message and "JSON" in message
    with Project.open(study["project"]) as project:
        assert len(project.extractions(record_ids=[rid], history=True)) == 3


def test_who_may_do_what_on_the_extraction_pages(alice: Client, slug: str, study: dict[str, Any],
                                                 workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    viewer = make_user(app, "dave", "viewer")
    stranger = make_user(app, "erin", None)
    reviewer = make_user(app, "bob", "reviewer")
    rid, ids = study["record"], study["ids"]
    page: Any = viewer.get(f"/p/{slug}/extract/{rid}")
    assert page.status_code == 200 and "/review" not in page.text and "custom-form" not in page.text
    assert viewer.post(f"/p/{slug}/extract/{rid}/review",
                       {"extraction_id": ids[0], "action": "accept"}).status_code == 403
    assert viewer.post(f"/p/{slug}/extract/{rid}/custom", {"field": "x", "value": "y"}).status_code == 403
    assert stranger.get(f"/p/{slug}/extract").status_code == 404
    assert stranger.get(f"/p/{slug}/extract/{rid}").status_code == 404
    assert reviewer.post(f"/p/{slug}/extract/run").status_code == 403
    assert "Run AI extraction" not in reviewer.get(f"/p/{slug}/extract").text
    assert "Run AI extraction" in alice.get(f"/p/{slug}/extract").text
    # a record that is not an included study has no extraction page, and its values are not reviewable here
    assert alice.get(f"/p/{slug}/extract/{study['other']}").status_code == 404
    assert alice.post(f"/p/{slug}/extract/{rid}/review",
                      {"extraction_id": 10**6, "action": "accept"}).status_code == 404
    with Project.open(study["project"]) as project:
        assert len(project.extractions(history=True)) == 3


def test_the_abstract_is_shown_without_a_full_text(alice: Client, slug: str, workspace: tuple[FastAPI, Path]) -> None:
    _, project_dir = workspace
    with Project.open(project_dir, actor="alice") as project:
        stored = next(s for s in project.iter_records() if s.record.abstract)
        project.decide(stored.id, "include", actor="alice")
        abstract = stored.record.abstract or ""
        quote = abstract.split(". ")[0]
        text = f"{stored.record.title}\n\n{abstract}" if stored.record.title else abstract
        project.add_extractions([{"record_id": stored.id, "task": "characteristics", "field": "aim", "value": "x",
                                  "evidence": _evidence(text, quote)}])
    page: Any = alice.get(f"/p/{slug}/extract/{stored.id}")
    assert "Title and abstract" in page.text and "No full text is attached" in page.text
    assert '<mark class="ev"' in page.text


@pytest.mark.slow
def test_run_ai_extraction_as_a_job_and_review_its_values(alice: Client, slug: str, study: dict[str, Any],
                                                          workspace: tuple[FastAPI, Path]) -> None:
    """The real classic extraction over the included study (about 15 s): its values appear on the
    study page with their quotes highlighted."""
    app, _ = workspace
    rid = study["record"]
    response: Any = alice.post(f"/p/{slug}/extract/run", {"record_id": rid})
    assert response.status_code == 303
    job = app.state.web.jobs.wait(int(response.headers["location"].rsplit("/", 1)[1]), timeout=300)
    assert job.state == "done", job.error
    assert any("values stored" in line for line in job.result)
    with Project.open(study["project"]) as project:
        ai_rows = [r for r in project.extractions(record_ids=[rid], history=True)
                   if r["origin"] == "ai" and r["id"] not in study["ids"]]
    assert ai_rows and all(r["document_id"] is not None for r in ai_rows)
    quoted = [r for r in ai_rows if r["evidence"]]
    assert quoted
    page: Any = alice.get(f"/p/{slug}/extract/{rid}")
    lit = {token for labels in re.findall(r'<mark class="ev" data-criteria="([^"]+)"', page.text)
           for token in labels.split()}
    assert {f"x{r['id']}" for r in quoted} <= lit
