"""Project setup from the pages: the question, versioned criteria (edited and drafted), imports by
upload with progress, and duplicate review."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from fastapi import FastAPI

from leads.project import Project

from .conftest import RIS, Client

JOB = re.compile(r'/jobs/(\d+)')


def _job_id(response: object) -> int:
    location = getattr(response, "headers", {}).get("location") or ""
    found = JOB.search(location) or re.search(r'id="job-(\d+)"', getattr(response, "text", ""))
    assert found, "no job started"
    return int(found.group(1))


def test_question_and_criteria_versions(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    _, project_dir = workspace
    response = alice.post(f"/p/{slug}/question", {"title": "HRT  and\nstroke", "population": "Postmenopausal women",
                                                  "intervention": "", "outcome": "Stroke"})
    assert response.status_code == 303
    with Project.open(project_dir) as project:
        q = project.question()
        assert q is not None and q["title"] == "HRT and stroke" and q["intervention"] is None
        assert q["version"] == 2 and q["created_by"] == "alice"
    empty = alice.post(f"/p/{slug}/question", {"title": " "})
    assert empty.status_code == 303
    assert "at least one field" in alice.get(f"/p/{slug}/question").text
    saved = alice.post(f"/p/{slug}/criteria", {"inclusion": "1. Randomised trial\n- Adults\n\n",
                                               "exclusion": "Animal studies", "note": "narrower"})
    assert saved.status_code == 303
    page = alice.get(f"/p/{slug}/question").text
    assert "Criteria saved as version 2" in page
    with Project.open(project_dir) as project:
        criteria = project.criteria()
        assert [(c["kind"], c["text"]) for c in criteria] == [
            ("inclusion", "Randomised trial"), ("inclusion", "Adults"), ("exclusion", "Animal studies")]
        assert [v["note"] for v in project.criteria_versions()] == [None, "narrower"]
    old = alice.get(f"/p/{slug}/question?version=1").text
    assert "not the current one: 2" in old and "comparison group of hormone replacement therapy" in old
    duplicate = alice.post(f"/p/{slug}/criteria", {"inclusion": "Adults\nadults"})
    assert duplicate.status_code == 303
    assert "given twice" in alice.get(f"/p/{slug}/question").text


def test_criteria_are_drafted_from_the_question(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    app, project_dir = workspace
    response = alice.post(f"/p/{slug}/criteria/generate", {}, htmx=True)
    job = app.state.web.jobs.wait(_job_id(response), timeout=240)
    assert job.state == "done", job.error
    assert "drafted by classic" in " ".join(job.result)
    with Project.open(project_dir) as project:
        versions = project.criteria_versions()
        assert len(versions) == 2 and "generated from question" in (versions[-1]["note"] or "")
        texts = [c["text"] for c in project.criteria()]
    assert any("ostmenopausal" in t for t in texts)


def test_import_by_upload_with_progress_and_dedup(workspace: tuple[FastAPI, Path], alice: Client,
                                                  slug: str, tmp_path: Path) -> None:
    app, project_dir = workspace
    packed = tmp_path / "again.ris.gz"
    packed.write_bytes(gzip.compress(RIS.read_bytes()))
    response = alice.http.post(f"/p/{slug}/records/import",
                               data={"csrf_token": alice.token, "dedup": "true", "force": "true"},
                               files=[("files", ("../../etc/evil name?.ris", RIS.read_bytes())),
                                      ("files", ("again.ris.gz", packed.read_bytes()))])
    assert response.status_code == 303
    job = app.state.web.jobs.wait(_job_id(response), timeout=120)
    assert job.state == "done", job.error
    assert job.result[0].startswith("Imported 12 records from evil name_.ris (ris)")
    assert job.result[1].startswith("Imported 12 records from again.ris.gz")
    assert "Duplicates:" in job.result[2]
    with Project.open(project_dir) as project:
        searches = project.searches()
        assert [s["file_name"] for s in searches][1:] == ["evil name_.ris", "again.ris.gz"]
        assert all(s["created_by"] == "alice" for s in searches[1:])
        assert project.status().unique_records == 12
    assert not any((app.state.web.config.workspace / "uploads").iterdir())  # uploads are cleaned up
    page = alice.get(f"/p/{slug}/records").text
    assert "evil name_.ris" in page and "again.ris.gz" in page


def test_a_bad_file_fails_the_job_and_leaves_the_project_as_it_was(workspace: tuple[FastAPI, Path],
                                                                   alice: Client, slug: str) -> None:
    app, project_dir = workspace
    response = alice.http.post(f"/p/{slug}/records/import", data={"csrf_token": alice.token, "format": "ris"},
                               files={"files": ("broken.ris", b"TY  - JOUR\nTI  - no end record\n\x00\xff")},
                               headers={"HX-Request": "true"})
    job = app.state.web.jobs.wait(_job_id(response), timeout=60)
    assert job.state == "failed" and job.error and "broken.ris" in job.error
    with Project.open(project_dir) as project:
        assert len(project.searches()) == 1 and project.count_records() == 12
    fragment = alice.get(f"/p/{slug}/jobs/{job.id}", headers={"HX-Request": "true"}).text
    assert "failed" in fragment and "broken.ris" in fragment
    again = alice.http.post(f"/p/{slug}/records/import", data={"csrf_token": alice.token},
                            files={"files": ("estrogens_12.ris", RIS.read_bytes())})
    job = app.state.web.jobs.wait(_job_id(again), timeout=60)
    assert job.state == "failed" and "already imported" in (job.error or "")


def test_duplicate_review(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    app, project_dir = workspace
    assert "No duplicate groups" in alice.get(f"/p/{slug}/duplicates").text
    assert alice.post(f"/p/{slug}/duplicates/link", {"record_a": 2, "record_b": 7}).status_code == 303
    page = alice.get(f"/p/{slug}/duplicates").text
    assert "Records 2 and 7 linked as duplicates" in page and "Group 2" in page and "manual" in page
    alice.post(f"/p/{slug}/duplicates/split", {"record_id": 7})
    assert "No duplicate groups" in alice.get(f"/p/{slug}/duplicates").text
    wrong = alice.post(f"/p/{slug}/duplicates/split", {"record_id": 7})
    assert wrong.status_code == 303
    assert "not in a duplicate group" in alice.get(f"/p/{slug}/duplicates").text
    response = alice.post(f"/p/{slug}/duplicates/run")
    job = app.state.web.jobs.wait(_job_id(response), timeout=120)
    assert job.state == "done" and "new duplicate links" in job.result[0]
    with Project.open(project_dir) as project:
        actions = [a["action"] for a in project.activity()]
    assert "dedup-link" in actions and "dedup-split" in actions and "dedup" in actions


def test_record_page(alice: Client, slug: str) -> None:
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 5, "label": "maybe", "seconds": "2"})
    page = alice.get(f"/p/{slug}/records/5").text
    assert "maybe" in page and "alice (human)" in page
    assert alice.get(f"/p/{slug}/records/999").status_code == 404
