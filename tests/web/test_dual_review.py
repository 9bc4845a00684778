"""Dual review in the workspace: the owner's setting, blinded screening, conflicts, resolution,
agreement, and who may do what."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sklearn.metrics import cohen_kappa_score

from leads.project import Project
from leads.web.store import dual_settings

from .conftest import Client, make_user

RECORD = re.compile(r'data-record="(\d+)"')


def flashed(app: FastAPI, response: Any) -> str:
    """The flash message a redirect carries (a signed cookie)."""
    cookie = response.cookies.get("leads_flash")
    assert cookie, "no flash message"
    return str(app.state.web.flash_signer.loads(cookie.strip('"'))[1])


def enable(alice: Client, slug: str, second: str = "human", resolvers: tuple[str, ...] = ()) -> None:
    response: Any = alice.post(f"/p/{slug}/dual", {"stage": "title_abstract", "enabled": "true", "second": second,
                                                    "resolvers": list(resolvers)})
    assert response.status_code == 303, response.text


def shown(client: Client, slug: str, record: int | None = None) -> tuple[int, str]:
    response: Any = client.get(f"/p/{slug}/screen" + (f"?record={record}" if record else ""))
    assert response.status_code == 200, response.text
    return int(RECORD.search(response.text).group(1)), response.text  # type: ignore[union-attr]


def decide(client: Client, slug: str, record: int, label: str, reasons: tuple[str, ...] = ()) -> None:
    response: Any = client.post(f"/p/{slug}/screen/decide", {"record_id": record, "label": label,
                                                              "reason": list(reasons), "seconds": "3.5"})
    assert response.status_code == 303, response.text


@pytest.fixture
def team(workspace: tuple[FastAPI, Path], slug: str) -> dict[str, Client]:
    app, _ = workspace
    return {"bob": make_user(app, "bob", "reviewer"), "carol": make_user(app, "carol", "reviewer"),
            "dave": make_user(app, "dave", "viewer"), "erin": make_user(app, "erin", None)}


def test_the_owner_sets_dual_review_in_the_project(alice: Client, slug: str, team: dict[str, Client],
                                                   workspace: tuple[FastAPI, Path]) -> None:
    page: Any = alice.get(f"/p/{slug}/question")
    assert 'id="dual-review"' in page.text and 'id="dual-form-title_abstract"' in page.text
    enable(alice, slug, "ai", resolvers=("carol",))
    _, project_dir = workspace
    with Project.open(project_dir) as project:
        setting = dual_settings(project)["title_abstract"]
        assert setting.enabled and setting.second == "ai" and setting.resolvers == ("carol",)
        assert not dual_settings(project)["full_text"].enabled
        assert project.activity(limit=1)[0]["action"] == "dual-review"
    refused: Any = team["bob"].post(f"/p/{slug}/dual", {"stage": "title_abstract", "enabled": "true"})
    assert refused.status_code == 403
    bad: Any = alice.post(f"/p/{slug}/dual", {"stage": "title_abstract", "enabled": "true", "resolvers": ["dave"]})
    assert "must be a reviewer or owner" in flashed(workspace[0], bad)
    with Project.open(project_dir) as project:
        assert dual_settings(project)["title_abstract"].resolvers == ("carol",)  # the viewer was refused


def test_blinded_screening_conflict_and_resolution(alice: Client, slug: str, team: dict[str, Client],
                                                   workspace: tuple[FastAPI, Path]) -> None:
    bob, carol, dave, erin = team["bob"], team["carol"], team["dave"], team["erin"]
    enable(alice, slug)
    first, page = shown(bob, slug)
    assert 'id="dual-banner"' in page
    decide(bob, slug, first, "include")
    # bob's queue moves on; his own decision is shown to him when he asks for the record again
    after, _ = shown(bob, slug)
    assert after != first
    _, again = shown(bob, slug, first)
    assert 'id="own-decision"' in again
    # carol, blinded, sees the record as undecided: no decision of bob's, no consensus
    _, carol_page = shown(carol, slug, first)
    assert "bob" not in carol_page and 'id="own-decision"' not in carol_page and "Already decided" not in carol_page
    record_page: Any = carol.get(f"/p/{slug}/records/{first}")
    assert "bob" not in record_page.text.split('id="blinded-note"')[1]
    audit: Any = carol.get(f"/p/{slug}/audit")
    assert "bob" not in audit.text.split('id="audit-decisions"')[1]
    assert carol.get(f"/p/{slug}/export/decisions.csv").status_code == 403
    assert carol.get(f"/p/{slug}/export/screening.json").status_code == 403
    assert alice.get(f"/p/{slug}/export/decisions.csv").status_code == 200
    # bob's record is still in carol's queue: her ranking excludes only what she decided
    decide(carol, slug, first, "exclude", ("E1",))
    conflicts: Any = alice.get(f"/p/{slug}/conflicts")
    assert f'id="conflict-{first}"' in conflicts.text
    block = conflicts.text.split(f'id="conflict-{first}"')[1].split("</article>")[0]
    assert "bob" in block and "carol" in block and "E1:" in block
    assert 'id="agreement-n">1<' in conflicts.text
    # a viewer sees the conflicts but can neither decide nor resolve; a non-member gets 404
    assert f'id="conflict-{first}"' in dave.get(f"/p/{slug}/conflicts").text
    assert "resolve-form" not in dave.get(f"/p/{slug}/conflicts").text
    viewer_resolve: Any = dave.post(f"/p/{slug}/conflicts/resolve", {"record_id": first, "label": "include"})
    assert viewer_resolve.status_code == 403
    viewer_decide: Any = dave.post(f"/p/{slug}/screen/decide", {"record_id": first, "label": "include"})
    assert viewer_decide.status_code == 403
    assert erin.get(f"/p/{slug}/conflicts").status_code == 404
    assert erin.post(f"/p/{slug}/conflicts/resolve", {"record_id": first, "label": "include"}).status_code == 404
    # a third person resolves it; the resolution is an appended decision with the note "resolution"
    resolved: Any = alice.post(f"/p/{slug}/conflicts/resolve", {"record_id": first, "label": "include"})
    assert resolved.status_code == 303
    _, project_dir = workspace
    with Project.open(project_dir) as project:
        history = project.decision_history("title_abstract", record_ids=[first])
        standing = project.current_decisions()[first]
    assert [(d["actor"], d["label"], d["note"]) for d in history] == [
        ("bob", "include", None), ("carol", "exclude", None), ("alice", "include", "resolution")]
    assert standing["label"] == "include" and standing["actor"] == "alice"
    after_page: Any = alice.get(f"/p/{slug}/conflicts")
    assert 'id="no-conflicts"' in after_page.text and 'id="resolved"' in after_page.text
    again_resolve: Any = alice.post(f"/p/{slug}/conflicts/resolve", {"record_id": first, "label": "exclude"})
    assert "has no open conflict" in flashed(workspace[0], again_resolve)
    with Project.open(project_dir) as project:
        assert len(project.decision_history("title_abstract", record_ids=[first])) == 3


def test_kappa_on_the_page_and_agreement_by_the_two_reviewers(alice: Client, slug: str, team: dict[str, Client],
                                                              workspace: tuple[FastAPI, Path]) -> None:
    bob, carol = team["bob"], team["carol"]
    enable(alice, slug)
    _, project_dir = workspace
    with Project.open(project_dir) as project:
        ids = [s.id for s in project.iter_records()][:6]
    bob_labels = ["include", "exclude", "exclude", "include", "exclude", "maybe"]
    carol_labels = ["include", "exclude", "include", "include", "exclude", "exclude"]
    for rid, a, b in zip(ids, bob_labels, carol_labels, strict=True):
        decide(bob, slug, rid, a)
        decide(carol, slug, rid, b)
    page: Any = alice.get(f"/p/{slug}/conflicts")
    kappa = float(re.search(r'id="agreement-kappa">([-0-9.]+)<', page.text).group(1))  # type: ignore[union-attr]
    assert kappa == pytest.approx(cohen_kappa_score(bob_labels, carol_labels), abs=5e-4)
    assert 'id="count-conflict">2<' in page.text
    overview: Any = alice.get(f"/p/{slug}")
    assert "Dual review: title and abstract" in overview.text and f"{kappa:.3f}" in overview.text
    # the two reviewers record what they agreed; a reviewer outside the conflict cannot
    frank = make_user(workspace[0], "frank", "reviewer")
    assert frank.post(f"/p/{slug}/conflicts/resolve", {"record_id": ids[2], "label": "include"}).status_code == 403
    agreed: Any = bob.post(f"/p/{slug}/conflicts/resolve", {"record_id": ids[2], "label": "include"})
    assert agreed.status_code == 303
    with Project.open(project_dir) as project:
        last = project.decision_history("title_abstract", record_ids=[ids[2]])[-1]
    assert last["note"] == "resolution: agreed by bob and carol" and last["actor"] == "bob"
    # bob's undo withdraws only his own decision: carol's stays, and the record is back in his queue
    undo: Any = carol.post(f"/p/{slug}/screen/undo")
    assert undo.status_code == 303 and f"record={ids[5]}" in undo.headers["location"]
    with Project.open(project_dir) as project:
        rows = project.decision_history("title_abstract", record_ids=[ids[5]])
    assert [(r["actor"], r["label"]) for r in rows] == [("bob", "maybe"), ("carol", "exclude"), ("carol", "undo")]
    page = alice.get(f"/p/{slug}/conflicts")
    assert 'id="agreement-n">5<' in page.text


def test_the_ai_as_second_reviewer(alice: Client, slug: str, team: dict[str, Client],
                                   workspace: tuple[FastAPI, Path]) -> None:
    bob = team["bob"]
    enable(alice, slug, "ai")
    _, project_dir = workspace
    with Project.open(project_dir) as project:
        assessed = {int(a["record_id"]): a for a in project.assessments()}
    record, page = shown(bob, slug, next(iter(assessed)))
    assert "AI assistance off" in page and 'id="ai-toggle"' not in page  # independent of the AI
    score = assessed[record]["score"]
    from leads.screen import workflow as w

    with Project.open(project_dir) as project:
        settled = w.ai_decision_for(assessed[record]["verdicts"], w.current_criteria(project))
    ai_label = settled[0] if settled else ("include" if score > 0 else "exclude")
    other = "exclude" if ai_label == "include" else "include"
    decide(bob, slug, record, other)
    with Project.open(project_dir) as project:
        row = project.decision_history("title_abstract", record_ids=[record])[-1]
    assert row["ai_assisted"] is False
    conflicts: Any = alice.get(f"/p/{slug}/conflicts")
    block = conflicts.text.split(f'id="conflict-{record}"')[1].split("</article>")[0]
    assert "AI" in block and f"label-{ai_label}" in block and f"label-{other}" in block
    assert bob.get(f"/p/{slug}/audit?view=ai").status_code == 403
