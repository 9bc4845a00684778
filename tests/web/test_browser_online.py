"""In a real browser: a PubMed query with a syntax error is checked and shown with its position,
then the corrected search runs as a job against the loopback E-utilities (recorded payloads) and
its records land in the project; on the extraction page an outcome is defined.

Skipped cleanly when Playwright or /usr/bin/chromium is missing (see ``test_browser``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leads.project import Project
from leads.web import create_app
from leads.web.store import extraction_plan

from .conftest import PASSWORD, SETUP_CODE
from .test_browser import SHOTS_ENV, LiveServer, _sign_in
from .test_online_search import PUBMED_TERM, Services

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def search_server(tmp_path: Path, project_template: Path) -> Iterator[tuple[LiveServer, str, Path, Services]]:
    services = Services()
    project_dir = tmp_path / "projects" / "estrogens-12"
    shutil.copytree(project_template, project_dir)
    app = create_app(tmp_path / "ws", [project_dir], projects_root=tmp_path / "projects", setup_token=SETUP_CODE,
                     eutils_url=services.server.url("/entrez/eutils/"), ctgov_url=services.server.url("/api/v2/"),
                     search_rate=100.0, ncbi_email="server@example.org")
    store = app.state.web.store
    store.create_user("alice", PASSWORD, display_name="Alice Owner", is_admin=True)
    entry = store.projects()[0]
    store.set_member(entry, "alice", "owner", by="test")
    try:
        with LiveServer(app) as server:
            yield server, entry.slug, project_dir, services
    finally:
        services.server.close()


def test_check_a_query_run_a_pubmed_search_and_define_an_outcome(
        search_server: tuple[LiveServer, str, Path, Services], browser: Any, tmp_path: Path) -> None:
    live, slug, project_dir, services = search_server
    shots = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    page = _sign_in(browser, live.url, "alice")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    base = f"{live.url}/p/{slug}"

    page.goto(base + "/records")
    page.fill("#online-query", "melanoma[tiab] OR (spondyloarthritis")
    page.click("#online-check")
    page.wait_for_selector("#online-job .query-error")
    assert "unbalanced '(': no matching ')' at position 18" in page.inner_text("#online-job")
    assert page.inner_text("#online-job pre.query-fault mark") == "("
    page.click("#online-submit")  # submitted anyway: refused the same way, nothing sent
    page.wait_for_selector("#online-job .query-error")
    assert services.eutils.calls == []

    page.fill("#online-query", PUBMED_TERM)
    page.click("#online-submit")
    page.wait_for_selector("#online-job .job-done")
    assert "5 records from PubMed stored as search 2" in page.inner_text("#online-job")
    page.locator("#online-search").screenshot(path=str(shots / "21-pubmed-search.png"), caret="initial")
    page.reload()
    assert PUBMED_TERM in page.inner_text("table")

    page.goto(base + "/extract")
    page.fill("#outcome-form input[name=outcome]", "Intubation time")
    page.fill("#outcome-form input[name=intervention]", "McGrath MAC laryngoscope")
    page.fill("#outcome-form input[name=comparator]", "Macintosh laryngoscope")
    page.select_option("#outcome-form select[name=outcome_type]", "continuous")
    page.click("#add-outcome")
    page.wait_for_selector("text=Outcome 'Intubation time' added")
    assert "McGrath MAC laryngoscope" in page.inner_text("#outcomes")
    assert errors == [], "\n".join(errors)
    page.context.close()

    with Project.open(project_dir) as project:
        assert project.searches()[-1]["source"] == "pubmed"
        assert [o.outcome_type for o in extraction_plan(project).outcomes] == ["continuous"]
