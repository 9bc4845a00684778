"""Searching a local corpus from the import page: the search runs as a job and is stored as one
search of the project with its provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from leads.project import Project
from leads.search.corpus import Corpus, build_corpus

from .conftest import REPO, Client, make_user

SAMPLE = REPO / "tests" / "fixtures" / "project" / "estrogens_150.jsonl"
QUERY = "estrogen*[tiab] AND postmenopausal[tiab]"


@pytest.fixture
def corpus(workspace: tuple[FastAPI, Path]) -> Path:
    app, _ = workspace
    path = app.state.web.config.workspace / "corpora" / "estrogens.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    build_corpus([SAMPLE], path)
    return path


def _job_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_a_corpus_search_is_stored_as_one_search_with_provenance(alice: Client, slug: str, corpus: Path,
                                                                 workspace: tuple[FastAPI, Path]) -> None:
    app, project_dir = workspace
    page: Any = alice.get(f"/p/{slug}/records")
    assert 'id="search-form"' in page.text and '<option value="estrogens.db">' in page.text
    with Corpus(corpus) as c:
        expected = [hit.id for hit in c.search(QUERY)]
    assert 0 < len(expected) < 150
    job = app.state.web.jobs.wait(_job_of(alice.post(f"/p/{slug}/records/search",
                                                     {"corpus": "estrogens.db", "query": QUERY, "dedup": "true"})))
    assert job.state == "done", job.error
    assert job.result[0].startswith(f"{len(expected)} records from estrogens.db stored as search")
    with Project.open(project_dir) as project:
        search = project.searches()[-1]
        stored = list(project.iter_records(search_id=search["id"]))
    assert search["source"] == "corpus:estrogens.db" and search["kind"] == "database"
    assert search["query"] == QUERY and search["count"] == len(expected)
    assert search["response_sha256"] == hashlib.sha256("".join(f"{i}\n" for i in expected).encode()).hexdigest()
    assert search["params"]["corpus_documents"] == 150 and search["params"]["count_fetched"] == len(expected)
    assert sorted(str(s.record.pmid) for s in stored) == sorted(expected)
    assert all(s.record.title and s.record.abstract for s in stored)
    assert any("Duplicates:" in line for line in job.result)


def test_bad_queries_unknown_corpora_and_roles(alice: Client, slug: str, corpus: Path,
                                               workspace: tuple[FastAPI, Path]) -> None:
    app, project_dir = workspace
    with Project.open(project_dir) as project:
        before = len(project.searches())
    job = app.state.web.jobs.wait(_job_of(alice.post(f"/p/{slug}/records/search",
                                                     {"corpus": "estrogens.db", "query": "estrogen[nosuchfield]"})))
    assert job.state == "failed" and "unknown field" in (job.error or "")
    unknown: Any = alice.post(f"/p/{slug}/records/search", {"corpus": "../../etc/passwd", "query": "x"})
    assert unknown.status_code == 303 and unknown.headers["location"] == f"/p/{slug}/records"
    reviewer = make_user(app, "bob", "reviewer")
    assert reviewer.post(f"/p/{slug}/records/search",
                         {"corpus": "estrogens.db", "query": QUERY}).status_code == 403
    assert 'id="search-form"' not in reviewer.get(f"/p/{slug}/records").text
    with Project.open(project_dir) as project:
        assert len(project.searches()) == before
