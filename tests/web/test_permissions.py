"""Who may do what, checked on the server for every route: a stranger gets 404 (as for a project
that does not exist), a viewer reads, a reviewer screens, an owner sets the project up."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from leads.project import Project

from .conftest import RIS, Client, make_user

READ_ROUTES = [
    "", "/question", "/records", "/duplicates", "/screen", "/prisma", "/prisma.svg", "/export",
    "/export/records.ris", "/export/records.csv", "/export/decisions.csv", "/export/screening.json",
    "/export/extractions.csv", "/audit", "/audit?view=ai", "/audit?view=activity", "/audit?view=access",
    "/members", "/records/1",
]
# (path, form) of every state-changing route, with the role it needs.
REVIEWER_POSTS = [
    ("/screen/decide", {"record_id": "1", "label": "include"}),
    ("/screen/undo", {}),
    ("/screen/ai", {}),
]
OWNER_POSTS = [
    ("/question", {"title": "Changed"}),
    ("/criteria", {"inclusion": "Adults"}),
    ("/criteria/generate", {}),
    ("/duplicates/run", {}),
    ("/duplicates/split", {"record_id": "1"}),
    ("/duplicates/link", {"record_a": "1", "record_b": "2"}),
    ("/screen/assess", {"limit": "1"}),
    ("/members", {"username": "alice", "role": "viewer"}),
]


def _decisions(project_dir: Path) -> list[dict[str, object]]:
    with Project.open(project_dir) as project:
        return project.decision_history()


def test_a_stranger_cannot_tell_the_project_exists(workspace: tuple[FastAPI, Path], slug: str) -> None:
    app, project_dir = workspace
    mallory = make_user(app, "mallory", None)
    for path in READ_ROUTES:
        response = mallory.get(f"/p/{slug}{path}")
        missing = mallory.get(f"/p/no-such-project{path}")
        assert response.status_code == 404, path
        assert missing.status_code == 404, path
        assert response.text.replace(slug, "X") == missing.text.replace("no-such-project", "X"), path
    for path, form in REVIEWER_POSTS + OWNER_POSTS:
        assert mallory.post(f"/p/{slug}{path}", form).status_code == 404, path
    upload = mallory.http.post(f"/p/{slug}/records/import", data={"csrf_token": mallory.token},
                               files={"files": ("x.ris", RIS.read_bytes())})
    assert upload.status_code == 404
    assert slug not in mallory.get("/").text
    assert _decisions(project_dir) == []


def test_a_viewer_reads_everything_and_changes_nothing(workspace: tuple[FastAPI, Path], slug: str) -> None:
    app, project_dir = workspace
    vera = make_user(app, "vera", "viewer")
    for path in READ_ROUTES:
        assert vera.get(f"/p/{slug}{path}").status_code == 200, path
    screen = vera.get(f"/p/{slug}/screen").text
    assert "decide-form" not in screen and "screening needs the reviewer role" in screen
    for path, form in REVIEWER_POSTS + OWNER_POSTS:
        response = vera.post(f"/p/{slug}{path}", form)
        assert response.status_code == 403, path
        assert "role" in response.text
    upload = vera.http.post(f"/p/{slug}/records/import", data={"csrf_token": vera.token},
                            files={"files": ("x.ris", RIS.read_bytes())})
    assert upload.status_code == 403
    assert _decisions(project_dir) == []
    with Project.open(project_dir) as project:
        assert project.question()["title"] != "Changed"  # type: ignore[index]
        assert len(project.searches()) == 1


def test_a_reviewer_screens_but_does_not_set_the_project_up(workspace: tuple[FastAPI, Path], slug: str) -> None:
    app, project_dir = workspace
    rita = make_user(app, "rita", "reviewer")
    response = rita.post(f"/p/{slug}/screen/decide", {"record_id": "1", "label": "include"})
    assert response.status_code == 303
    decisions = _decisions(project_dir)
    assert [(d["actor"], d["label"], d["actor_kind"]) for d in decisions] == [("rita", "include", "human")]
    for path, form in OWNER_POSTS:
        assert rita.post(f"/p/{slug}{path}", form).status_code == 403, path
    assert "decide-form" in rita.get(f"/p/{slug}/screen").text


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_owners_see_the_setup_forms(workspace: tuple[FastAPI, Path], slug: str, role: str) -> None:
    app, _ = workspace
    member = make_user(app, "member", role)
    assert "criteria-form" not in member.get(f"/p/{slug}/question").text
    assert "import-form" not in member.get(f"/p/{slug}/records").text


def test_owners_manage_members_and_a_project_keeps_an_owner(workspace: tuple[FastAPI, Path], alice: Client,
                                                            slug: str) -> None:
    app, _ = workspace
    bob = make_user(app, "bob", None)
    assert bob.get(f"/p/{slug}").status_code == 404
    assert alice.post(f"/p/{slug}/members", {"username": "bob", "role": "reviewer"}).status_code == 303
    assert bob.get(f"/p/{slug}").status_code == 200
    assert bob.post(f"/p/{slug}/members", {"username": "bob", "role": "owner"}).status_code == 403
    alice.post(f"/p/{slug}/members", {"username": "alice", "role": "viewer"})
    store = app.state.web.store
    entry = store.project(slug)
    assert store.role(store.user("alice"), entry) == "owner"
    assert "needs at least one owner" in alice.get(f"/p/{slug}/members").text
    assert alice.post(f"/p/{slug}/members", {"username": "bob", "role": "remove"}).status_code == 303
    assert bob.get(f"/p/{slug}").status_code == 404


def test_a_created_project_belongs_to_its_creator(workspace: tuple[FastAPI, Path], alice: Client,
                                                  tmp_path: Path) -> None:
    app, _ = workspace
    bob = make_user(app, "bob", None)
    response = bob.post("/projects", {"name": "Statins <primary> prevention"})
    assert response.status_code == 303
    new_slug = response.headers["location"].split("/")[2]
    assert new_slug == "statins-primary-prevention"
    assert (tmp_path / "projects" / new_slug / "project.toml").is_file()
    assert bob.get(f"/p/{new_slug}").status_code == 200
    assert "Statins &lt;primary&gt; prevention" in bob.get("/").text
    assert alice.get(f"/p/{new_slug}").status_code == 404  # the administrator is not a member
