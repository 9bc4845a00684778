"""The screening page over a real project with real classic-engine assessments: the card, the AI
panel and its highlights, decisions with reasons and seconds, undo, the per-reviewer AI switch,
reviewers screening side by side, and running the AI assessments from the page."""

from __future__ import annotations

import math
import re
from pathlib import Path

from fastapi import FastAPI

from leads.project import Project
from leads.web.screening import parse_seconds

from .conftest import ASSESSED, Client, make_user

RECORD = re.compile(r'data-record="(\d+)"')


def _shown(html: str) -> int:
    found = RECORD.search(html)
    assert found, "no record on the screening card"
    return int(found.group(1))


def _assessed(project_dir: Path) -> list[int]:
    with Project.open(project_dir) as project:
        return sorted({int(a["record_id"]) for a in project.assessments()})


def _history(project_dir: Path) -> list[dict[str, object]]:
    with Project.open(project_dir) as project:
        return project.decision_history()


def _current(project_dir: Path) -> dict[int, dict[str, object]]:
    with Project.open(project_dir) as project:
        return project.current_decisions()


def test_the_card_shows_the_verdicts_with_highlighted_evidence(workspace: tuple[FastAPI, Path], alice: Client,
                                                               slug: str) -> None:
    _, project_dir = workspace
    assessed = _assessed(project_dir)
    assert len(assessed) == ASSESSED
    with Project.open(project_dir) as project:
        rows = project.assessments(record_ids=[assessed[0]])
        record = project.record(assessed[0]).record
    quotes = [e["quote"] for v in rows[-1]["verdicts"] for e in v["evidence"]]
    html = alice.get(f"/p/{slug}/screen?record={assessed[0]}").text
    assert _shown(html) == assessed[0]
    assert "AI assessment" in html and "classic/eligibility" in html
    for label in ("I1", "I2", "I3", "E1"):
        assert f'data-criterion="{label}"' in html
    assert f'href="/p/{slug}/audit/calls/{rows[-1]["call_id"]}"' in html
    assert '<mark class="ev"' in html and quotes
    marked = "".join(re.findall(r'<mark class="ev"[^>]*>(.*?)</mark>', html, flags=re.S))
    assert any(q[:40].replace("&", "&amp;").replace("<", "&lt;") in marked or q[:40] in marked for q in quotes)
    assert (record.title or "")[:30] in html.replace("&#39;", "'")
    assert "0 of 12 screened" in html and "Recall" in html


def test_an_unassessed_record_says_so(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    app, project_dir = workspace
    assessed = set(_assessed(project_dir))
    other = next(i for i in range(1, 13) if i not in assessed)
    html = alice.get(f"/p/{slug}/screen?record={other}").text
    assert "AI assessments not run yet" in html and "Run AI assessments" in html and "<mark" not in html
    rita = make_user(app, "rita", "reviewer")
    html = rita.get(f"/p/{slug}/screen?record={other}").text
    assert "A project owner starts the AI assessments" in html and "Run AI assessments" not in html


def test_a_decision_stores_who_reasons_seconds_and_ai_assistance(workspace: tuple[FastAPI, Path],
                                                                 alice: Client, slug: str) -> None:
    _, project_dir = workspace
    first, second = _assessed(project_dir)[:2]
    card = alice.post(f"/p/{slug}/screen/decide",
                      {"record_id": first, "label": "exclude", "reason": ["E1", "2"], "seconds": "12.5"}, htmx=True)
    assert card.status_code == 200 and "<html" not in card.text and 'id="screen"' in card.text
    assert f"Record {first}: exclude" in card.text and _shown(card.text) != first
    assert "1 of 12 screened" in card.text
    [row] = _history(project_dir)
    assert row["actor"] == "alice" and row["actor_kind"] == "human" and row["label"] == "exclude"
    assert row["seconds_spent"] == 12.5 and row["ai_assisted"] is True and row["criteria_version"] == 1
    assert row["reasons"] == [
        "E1: The population was selected according to prior events or conditions associated with higher "
        "risks for the targeted outcomes",
        "I2: The study reports data on hormone replacement therapy use and clinical outcomes of interest"]
    # With the AI panel off: no verdicts, no highlights, and the decision is not AI-assisted.
    off = alice.post(f"/p/{slug}/screen/ai", {"record_id": second}, htmx=True)
    assert "<h2>AI assistance off</h2>" in off.text and "<mark" not in off.text and "data-criterion" not in off.text
    assert _shown(off.text) == second
    alice.post(f"/p/{slug}/screen/decide", {"record_id": second, "label": "include", "seconds": "3"})
    last = _history(project_dir)[-1]
    assert last["label"] == "include" and last["ai_assisted"] is False and last["reasons"] == []


def test_reasons_count_only_for_exclusions_and_must_name_a_criterion(workspace: tuple[FastAPI, Path],
                                                                     alice: Client, slug: str) -> None:
    _, project_dir = workspace
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 1, "label": "maybe", "reason": "E1"})
    assert _history(project_dir)[-1]["reasons"] == []
    bad = alice.post(f"/p/{slug}/screen/decide", {"record_id": 2, "label": "exclude", "reason": "E9"})
    assert bad.status_code == 404 and "no criterion &#39;E9&#39;" in bad.text and "I1, I2, I3, E1" in bad.text
    wrong = alice.post(f"/p/{slug}/screen/decide", {"record_id": 2, "label": "yes"})
    assert wrong.status_code == 400 and "include, exclude, maybe" in wrong.text
    missing = alice.post(f"/p/{slug}/screen/decide", {"record_id": 999, "label": "include"})
    assert missing.status_code == 404 and "record 999" in missing.text
    nonsense = alice.get(f"/p/{slug}/screen?record=abc")
    assert nonsense.status_code == 400 and "invalid request" in nonsense.text and "<html" in nonsense.text
    assert len(_history(project_dir)) == 1


def test_seconds_from_the_browser_are_checked() -> None:
    assert parse_seconds("4.25") == 4.25
    assert parse_seconds("") is None and parse_seconds(None) is None
    assert parse_seconds("-3") is None and parse_seconds("nan") is None and parse_seconds("soon") is None
    assert parse_seconds("1e12") == 86400.0
    assert math.isclose(parse_seconds("0.0004") or 0, 0.0)


def test_undo_withdraws_ones_own_decisions_newest_first(workspace: tuple[FastAPI, Path], alice: Client,
                                                        slug: str) -> None:
    app, project_dir = workspace
    rita = make_user(app, "rita", "reviewer")
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 3, "label": "include"})
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 4, "label": "exclude"})
    rita.post(f"/p/{slug}/screen/decide", {"record_id": 5, "label": "maybe"})
    card = alice.post(f"/p/{slug}/screen/undo", htmx=True)
    assert "Undone: your exclude on record 4" in card.text and _shown(card.text) == 4
    assert sorted(_current(project_dir)) == [3, 5]
    plain = alice.post(f"/p/{slug}/screen/undo")
    assert plain.status_code == 303 and plain.headers["location"] == f"/p/{slug}/screen?record=3"
    assert sorted(_current(project_dir)) == [5]
    none_left = alice.post(f"/p/{slug}/screen/undo", htmx=True)
    assert "no standing decision to undo" in none_left.text
    assert sorted(_current(project_dir)) == [5]  # rita's decision stands
    undo_rows = [d for d in _history(project_dir) if d["label"] == "undo"]
    assert [(d["record_id"], d["actor"]) for d in undo_rows] == [(4, "alice"), (3, "alice")]


def test_the_ai_switch_is_each_reviewers_own_and_persists(workspace: tuple[FastAPI, Path], alice: Client,
                                                          slug: str) -> None:
    app, project_dir = workspace
    rita = make_user(app, "rita", "reviewer")
    record = _assessed(project_dir)[0]
    alice.post(f"/p/{slug}/screen/ai", {"record_id": record})
    assert "<h2>AI assistance off</h2>" in alice.get(f"/p/{slug}/screen?record={record}").text
    assert "<h2>AI assistance off</h2>" not in rita.get(f"/p/{slug}/screen?record={record}").text
    again = Client(app, "alice")
    again.login()
    assert "<h2>AI assistance off</h2>" in again.get(f"/p/{slug}/screen?record={record}").text
    again.post(f"/p/{slug}/screen/ai", {"record_id": record})
    assert "<h2>AI assistance off</h2>" not in alice.get(f"/p/{slug}/screen?record={record}").text


def test_reviewers_screening_together_get_different_records(workspace: tuple[FastAPI, Path], alice: Client,
                                                            slug: str) -> None:
    app, _ = workspace
    rita = make_user(app, "rita", "reviewer")
    a = _shown(alice.get(f"/p/{slug}/screen").text)
    r = _shown(rita.get(f"/p/{slug}/screen").text)
    assert a != r
    assert _shown(alice.get(f"/p/{slug}/screen").text) == a  # the same reviewer keeps their record


def test_screening_to_the_end(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    _, project_dir = workspace
    seen = []
    html = alice.get(f"/p/{slug}/screen").text
    for _ in range(12):
        record = _shown(html)
        seen.append(record)
        html = alice.post(f"/p/{slug}/screen/decide", {"record_id": record, "label": "exclude"}, htmx=True).text
    assert sorted(seen) == list(range(1, 13))
    assert "Nothing left to screen" in html and "decide-form" not in html
    assert len(_current(project_dir)) == 12


def test_owners_run_the_ai_assessments_from_the_page(workspace: tuple[FastAPI, Path], alice: Client,
                                                     slug: str) -> None:
    app, project_dir = workspace
    response = alice.post(f"/p/{slug}/screen/assess", {"limit": "2"}, htmx=True)
    assert response.status_code == 200 and "AI assessments (next 2 records)" in response.text
    job_id = int(re.search(r'id="job-(\d+)"', response.text).group(1))  # type: ignore[union-attr]
    job = app.state.web.jobs.wait(job_id, timeout=240)
    assert job.state == "done", job.error
    assert len(_assessed(project_dir)) == ASSESSED + 2
    page = alice.get(f"/p/{slug}/jobs/{job_id}").text
    assert "2 records assessed" in page and "done" in page
    fragment = alice.get(f"/p/{slug}/jobs/{job_id}", headers={"HX-Request": "true"}).text
    assert "hx-trigger" not in fragment  # a finished job stops polling
