"""PubMed and ClinicalTrials.gov searches from the import page, end to end: the app is created with
its service URLs pointing at a real HTTP server on 127.0.0.1 that answers with the recorded
payloads of ``tests/fixtures/api`` (the fake services of ``tests/search``: :class:`FakeEutils`,
:class:`FakeCtgov`, :class:`Loopback`). The search runs as a job and lands in the project as one
search with its provenance; a query with a syntax error is refused, with its position, before
anything is sent."""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from leads.project import Project
from leads.web import create_app
from leads.web.online import SearchServices, run_ctgov_into, run_pubmed_into

from .conftest import PASSWORD, SETUP_CODE, Client, csrf_of, make_user

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
from test_ctgov_client import FakeCtgov
from test_eutils import EMPTY_PMID, FakeEutils, Loopback, Reply, mock_transport

PUBMED_TERM = "melanoma OR spondyloarthritis"
PUBMED_IDS = ["22663011", "35830032", "38909159", "11748933", "11700088", EMPTY_PMID]
CTGOV_COND = "certolizumab"
CTGOV_IDS = ["NCT02552212", "NCT03418623", "NCT05594173"]


class Services:
    """The loopback server with the recorded E-utilities and ClinicalTrials.gov answers."""

    def __init__(self) -> None:
        self.eutils = FakeEutils(searches={PUBMED_TERM: PUBMED_IDS})
        self.ctgov = FakeCtgov(searches={CTGOV_COND: CTGOV_IDS})
        self.server = Loopback({"/entrez/eutils/": self.eutils, "/api/v2/": self.ctgov})


@pytest.fixture
def services() -> Iterator[Services]:
    s = Services()
    yield s
    s.server.close()


@pytest.fixture
def online(tmp_path: Path, project_template: Path, services: Services,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, Path, Services]]:
    """The workspace of ``conftest.workspace``, its searches sent to the loopback server."""
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("NCBI_EMAIL", raising=False)
    project_dir = tmp_path / "projects" / "estrogens-12"
    shutil.copytree(project_template, project_dir)
    app = create_app(tmp_path / "ws", [project_dir], allowed_hosts=["testserver"], setup_token=SETUP_CODE,
                     projects_root=tmp_path / "projects",
                     eutils_url=services.server.url("/entrez/eutils/"), ctgov_url=services.server.url("/api/v2/"),
                     search_rate=100.0, ncbi_email="server@example.org")
    first = TestClient(app, follow_redirects=False)
    page = first.get("/setup")
    response = first.post("/setup", data={"csrf_token": csrf_of(page.text), "setup_code": SETUP_CODE,
                                          "username": "alice", "password": PASSWORD,
                                          "password_again": PASSWORD, "display_name": "Alice"})
    assert response.status_code == 303, response.text
    yield app, project_dir, services
    app.state.web.close()


@pytest.fixture
def owner(online: tuple[FastAPI, Path, Services]) -> Client:
    client = Client(online[0], "alice")
    client.login()
    return client


@pytest.fixture
def slug(online: tuple[FastAPI, Path, Services]) -> str:
    return str(online[0].state.web.store.projects()[0].slug)


def _job_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def _searches(project_dir: Path) -> list[dict[str, Any]]:
    with Project.open(project_dir) as project:
        return list(project.searches())


def test_a_pubmed_search_job_stores_every_record_with_provenance(online: tuple[FastAPI, Path, Services],
                                                                  owner: Client, slug: str) -> None:
    app, project_dir, services = online
    page: Any = owner.get(f"/p/{slug}/records")
    assert 'id="online-form"' in page.text and '<option value="ctgov">ClinicalTrials.gov</option>' in page.text
    before = len(_searches(project_dir))
    job = app.state.web.jobs.wait(_job_of(owner.post(f"/p/{slug}/records/online",
                                                     {"source": "pubmed", "query": f"  {PUBMED_TERM} "})))
    assert job.state == "done", job.error
    assert job.kind == "search" and job.title == f"Search PubMed: {PUBMED_TERM}"
    assert job.result[0].startswith("5 records from PubMed stored as search ")
    assert "PubMed reported 6" in job.result[0]
    assert f"Query translation: {PUBMED_TERM}[All Fields]" in job.result
    searches = _searches(project_dir)
    assert len(searches) == before + 1
    search = searches[-1]
    assert (search["source"], search["kind"], search["query"]) == ("pubmed", "database", PUBMED_TERM)
    assert search["count"] == 5 and search["params"]["count_reported"] == 6
    assert search["params"]["missing_pmids"] == [EMPTY_PMID]
    assert search["params"]["endpoint"] == services.server.url("/entrez/eutils/")
    assert search["response_sha256"] == hashlib.sha256(b"".join(services.eutils.sent)).hexdigest()
    assert search["executed_at"] is not None and search["created_by"] == "alice"
    with Project.open(project_dir) as project:
        pmids = {s.record.pmid for s in project.iter_records(search_id=search["id"])}
    assert pmids == set(PUBMED_IDS) - {EMPTY_PMID}
    # The server's contact address went with every request; no API key was configured.
    assert [name for name, _ in services.eutils.calls] == ["esearch", "efetch"]
    assert all(params["email"] == ["server@example.org"] and "api_key" not in params
               for _, params in services.eutils.calls)
    # The search is listed on the page with its count and hash.
    listed: Any = owner.get(f"/p/{slug}/records")
    assert search["response_sha256"][:12] in listed.text and PUBMED_TERM in listed.text


def test_the_projects_ncbi_settings_come_before_the_servers(online: tuple[FastAPI, Path, Services],
                                                             owner: Client, slug: str) -> None:
    app, project_dir, services = online
    toml = project_dir / "project.toml"
    toml.write_text(toml.read_text(encoding="utf-8")
                    + '\n[ncbi]\nemail = "team@example.org"\napi_key = "PROJECTKEY"\n', encoding="utf-8")
    job = app.state.web.jobs.wait(_job_of(owner.post(f"/p/{slug}/records/online",
                                                     {"source": "pubmed", "query": PUBMED_TERM})))
    assert job.state == "done", job.error
    assert all(params["email"] == ["team@example.org"] and params["api_key"] == ["PROJECTKEY"]
               for _, params in services.eutils.calls)
    search = _searches(project_dir)[-1]
    assert search["params"]["api_key_used"] is True
    assert "PROJECTKEY" not in str(search)  # the key itself is never stored


def test_a_ctgov_search_job_renders_the_query_and_stores_the_studies(online: tuple[FastAPI, Path, Services],
                                                                      owner: Client, slug: str) -> None:
    app, project_dir, services = online
    checked: Any = owner.post(f"/p/{slug}/records/online/check", {"source": "ctgov", "condition": CTGOV_COND},
                              htmx=True)
    assert checked.status_code == 200 and "query.cond=certolizumab" in checked.text
    assert services.ctgov.calls == []  # a check sends nothing
    job = app.state.web.jobs.wait(_job_of(owner.post(f"/p/{slug}/records/online",
                                                     {"source": "ctgov", "condition": CTGOV_COND, "dedup": "true"})))
    assert job.state == "done", job.error
    assert job.result[0].startswith("3 records from ClinicalTrials.gov stored as search ")
    assert any(line.startswith("Duplicates:") for line in job.result)
    search = _searches(project_dir)[-1]
    assert (search["source"], search["kind"], search["query"]) == ("ctgov", "register", "query.cond=certolizumab")
    assert search["count"] == 3 and search["params"]["count_reported"] == 3
    assert search["response_sha256"] == hashlib.sha256(b"".join(services.ctgov.sent)).hexdigest()
    with Project.open(project_dir) as project:
        ncts = {s.record.nct_ids[0] for s in project.iter_records(search_id=search["id"])}
    assert ncts == set(CTGOV_IDS)


def test_a_pubmed_query_is_rendered_for_ctgov_with_its_warnings(online: tuple[FastAPI, Path, Services],
                                                                 owner: Client, slug: str) -> None:
    checked: Any = owner.post(f"/p/{slug}/records/online/check",
                              {"source": "ctgov", "query": "heart attack[tiab] AND randomized controlled trial[pt]"},
                              htmx=True)
    assert checked.status_code == 200 and "query-ok" in checked.text
    assert "query.term=" in checked.text and "publication types have no registry equivalent" in checked.text


def test_syntax_errors_are_shown_with_their_position_and_nothing_is_sent(online: tuple[FastAPI, Path, Services],
                                                                           owner: Client, slug: str) -> None:
    app, project_dir, services = online
    before = len(_searches(project_dir))
    bad = "(estrogen[tiab] AND menopause"
    page: Any = owner.post(f"/p/{slug}/records/online", {"source": "pubmed", "query": bad})
    assert page.status_code == 400
    assert "unbalanced &#39;(&#39;: no matching &#39;)&#39; at position 0" in page.text
    assert 'data-position="0"' in page.text and "<mark>(</mark>estrogen[tiab] AND menopause" in page.text
    assert bad in page.text  # the form keeps what was typed
    fragment: Any = owner.post(f"/p/{slug}/records/online", {"source": "pubmed", "query": "estrogen[nosuch]"},
                               htmx=True)
    assert fragment.status_code == 200 and "unknown field tag" in fragment.text.lower()
    assert 'data-position="8"' in fragment.text
    ctgov: Any = owner.post(f"/p/{slug}/records/online/check", {"source": "ctgov", "intervention": "aspirin AND"},
                            htmx=True)
    assert "intervention: operator AND needs a search term after it" in ctgov.text
    for data, message in (({"source": "pubmed", "query": "  "}, "the query is empty"),
                          ({"source": "pubmed", "query": "x", "condition": "y"}, "ClinicalTrials.gov fields"),
                          ({"source": "scopus", "query": "x"}, "a search source is one of pubmed, ctgov"),
                          ({"source": "ctgov"}, "give a query, a condition or an intervention")):
        refused: Any = owner.post(f"/p/{slug}/records/online", data)
        assert refused.status_code == 400 and message in refused.text.replace("&#39;", "'"), data
    assert services.eutils.calls == [] and services.ctgov.calls == []
    assert len(_searches(project_dir)) == before
    assert app.state.web.jobs.for_project(slug) == []


def test_a_failed_search_fails_the_job_and_stores_nothing(online: tuple[FastAPI, Path, Services],
                                                          owner: Client, slug: str) -> None:
    app, project_dir, services = online
    before = len(_searches(project_dir))
    # The search answers; fetching the records is refused (a 4xx is not retried).
    services.eutils.failing["efetch"] = Reply(400, b"Bad Request")
    job = app.state.web.jobs.wait(_job_of(owner.post(f"/p/{slug}/records/online",
                                                     {"source": "pubmed", "query": PUBMED_TERM})))
    assert job.state == "failed" and "400" in (job.error or ""), job.error
    assert [name for name, _ in services.eutils.calls] == ["esearch", "efetch"]
    assert len(_searches(project_dir)) == before


def test_only_owners_search(online: tuple[FastAPI, Path, Services], owner: Client, slug: str) -> None:
    app, _, services = online
    viewer = make_user(app, "vera", "viewer")
    reviewer = make_user(app, "rob", "reviewer")
    for client in (viewer, reviewer):
        page: Any = client.get(f"/p/{slug}/records")
        assert page.status_code == 200 and 'id="online-form"' not in page.text
        for url in (f"/p/{slug}/records/online", f"/p/{slug}/records/online/check"):
            assert client.post(url, {"source": "pubmed", "query": PUBMED_TERM}).status_code == 403
    outsider = make_user(app, "olga", None)
    assert outsider.post(f"/p/{slug}/records/online", {"source": "pubmed", "query": PUBMED_TERM}).status_code == 404
    assert services.eutils.calls == []


def test_the_runs_report_their_progress_and_take_an_injected_transport(tmp_path: Path,
                                                                       services: Services) -> None:
    """The job functions on their own: progress as the page shows it, and the clients reached
    through an ``httpx`` transport given in the settings (no socket at all)."""
    eutils = FakeEutils(searches={PUBMED_TERM: PUBMED_IDS})
    steps: list[tuple[int, int | None, str]] = []
    with Project.init(tmp_path / "p", actor="tester") as project:
        found = run_pubmed_into(project, PUBMED_TERM, SearchServices(transport=mock_transport(eutils), rate=100.0),
                                progress=lambda done, total, message: steps.append((done, total, message)))
        assert found.count_fetched == 5 and [name for name, _ in eutils.calls] == ["esearch", "efetch"]
        assert steps == [(0, None, "Searching PubMed"), (0, 6, "PubMed found 6 records; fetching them"),
                         (5, 6, "Fetched 5 PubMed records; storing them")]
        steps.clear()
        settings = SearchServices(ctgov_url=services.server.url("/api/v2/"), rate=100.0)
        run = run_ctgov_into(project, {"condition": CTGOV_COND}, settings,
                             progress=lambda done, total, message: steps.append((done, total, message)))
        assert run.count_fetched == 3 and run.query == "query.cond=certolizumab"
        assert steps == [(0, None, "Searching ClinicalTrials.gov"), (3, 3, "Read 3 of 3 studies (1 page)")]
        assert len(project.searches()) == 2
