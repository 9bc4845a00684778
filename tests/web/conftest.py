"""Fixtures of the workspace tests: an app on a temporary workspace, signed-in clients, and a
project template (the vendored 12-record RIS imported, the Estrogens question and criteria,
real classic-engine AI assessments of some records) built once and copied per test."""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from leads.project import Project
from leads.screen import workflow as w
from leads.screen.criteria import CriteriaSpec
from leads.web import create_app

REPO = Path(__file__).resolve().parents[2]
RIS = REPO / "tests" / "fixtures" / "web" / "estrogens_12.ris"
SPEC = REPO / "examples" / "estrogens" / "review.toml"
SETUP_CODE = "test-setup-code"
PASSWORD = "correct horse battery"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-extensions", "--disable-sync", "--no-first-run",
                 "--disable-features=Translate,OptimizationHints,MediaRouter"]
ASSESSED = 4

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser (Playwright + /usr/bin/chromium)")


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Client:
    """A signed-in TestClient that knows its CSRF token."""

    def __init__(self, app: FastAPI, username: str) -> None:
        self.http = TestClient(app, follow_redirects=False)
        self.username = username
        self.token = ""

    def login(self, password: str = PASSWORD) -> None:
        page = self.http.get("/login")
        response = self.http.post("/login", data={"csrf_token": csrf_of(page.text), "username": self.username,
                                                  "password": password, "next": "/"})
        assert response.status_code == 303, response.text
        self.refresh_token()

    def refresh_token(self) -> None:
        self.token = csrf_of(self.http.get("/account").text)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, **kwargs)

    def post(self, url: str, data: Mapping[str, object] | None = None, *, htmx: bool = False,
             **kwargs: Any) -> Any:
        body = {"csrf_token": self.token, **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return self.http.post(url, data=body, headers=headers, **kwargs)


def _question_and_criteria(project: Project) -> None:
    spec = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    project.set_question(**spec["question"])
    w.set_criteria(project, [CriteriaSpec(text=t, kind="inclusion") for t in spec["criteria"]["inclusion"]]
                   + [CriteriaSpec(text=t, kind="exclusion") for t in spec["criteria"]["exclusion"]])


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 12 records imported, question and criteria set, the first ASSESSED records (in
    ranking order) assessed by the classic engine."""
    path = tmp_path_factory.mktemp("template") / "estrogens-12"
    with Project.init(path, name="Estrogens 12", actor="alice") as project:
        project.import_file(RIS)
        _question_and_criteria(project)
        run = w.run_screening(project, limit=ASSESSED)
        assert run.assessed == ASSESSED
    return path


@pytest.fixture
def workspace(tmp_path: Path, project_template: Path) -> Iterator[tuple[FastAPI, Path]]:
    """An app with the template project registered and ``alice`` (administrator, owner of the
    project) created; yields the app and the project's directory."""
    project_dir = tmp_path / "projects" / "estrogens-12"
    shutil.copytree(project_template, project_dir)
    app = create_app(tmp_path / "ws", [project_dir], allowed_hosts=["testserver"], setup_token=SETUP_CODE,
                     projects_root=tmp_path / "projects")
    first = TestClient(app, follow_redirects=False)  # no `with`: that would run the shutdown
    page = first.get("/setup")
    response = first.post("/setup", data={"csrf_token": csrf_of(page.text), "setup_code": SETUP_CODE,
                                          "username": "alice", "password": PASSWORD,
                                          "password_again": PASSWORD, "display_name": "Alice"})
    assert response.status_code == 303, response.text
    yield app, project_dir
    app.state.web.close()


@pytest.fixture
def slug(workspace: tuple[FastAPI, Path]) -> str:
    app, _ = workspace
    return app.state.web.store.projects()[0].slug


def make_user(app: FastAPI, username: str, role: str | None, *, slug: str | None = None) -> Client:
    """An account (and a membership with ``role`` when given), signed in."""
    store = app.state.web.store
    store.create_user(username, PASSWORD)
    if role is not None:
        entry = store.project(slug) if slug else store.projects()[0]
        store.set_member(entry, username, role, by="alice")
    client = Client(app, username)
    client.login()
    return client


@pytest.fixture
def alice(workspace: tuple[FastAPI, Path]) -> Client:
    app, _ = workspace
    client = Client(app, "alice")
    client.login()
    return client


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (the browser tests skip when either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
