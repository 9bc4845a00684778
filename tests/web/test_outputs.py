"""Outputs: the PRISMA 2020 SVG from the project's numbers, the exports, and the audit view with
the model and prompt behind every AI suggestion."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI

from leads.formats import read_records
from leads.project import PrismaCounts, Project
from leads.project import schema as t
from leads.web.prisma import prisma_svg

from .conftest import Client, make_user

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}tspan")] + \
        ["".join(node.itertext()) for node in root.iter(f"{SVG}text") if not list(node)]


def test_prisma_svg_numbers_follow_the_decisions(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    _, project_dir = workspace
    for record, label in ((1, "exclude"), (2, "exclude"), (3, "include"), (4, "maybe")):
        alice.post(f"/p/{slug}/screen/decide", {"record_id": record, "label": label})
    with Project.open(project_dir, actor="alice") as project:
        project.decide(3, "include", stage="full_text")
        project.decide(4, "exclude", stage="full_text", reasons=["wrong population"])
    response = alice.get(f"/p/{slug}/prisma.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    texts = _texts(response.text)
    for expected in ("Records screened (n = 12)", "Records excluded (n = 2)", "Reports sought for retrieval (n = 1)",
                     "Reports assessed for eligibility (n = 2)", "wrong population (n = 1)",
                     "Studies included in review (n = 1)", "Duplicate records removed (n = 0)",
                     "- file: estrogens_12.ris (n = 12)", "8 records are still to be screened at title and abstract."):
        assert expected in texts, expected
    download = alice.get(f"/p/{slug}/prisma.svg?download=true")
    assert download.headers["content-disposition"] == 'attachment; filename="estrogens-12-prisma.svg"'
    assert 'src="/p/estrogens-12/prisma.svg"' in alice.get(f"/p/{slug}/prisma").text


def test_prisma_svg_escapes_names_and_is_standalone() -> None:
    counts = PrismaCounts(identified_databases={"file: a<b>&c.ris": 3, "pubmed": 10},
                          identified_registers={"ctgov": 2}, duplicates_removed=1, records_screened=14,
                          records_excluded=9, reports_sought=5, reports_not_retrieved=1, reports_assessed=4,
                          reports_excluded={"wrong design": 2, "x" * 120: 1}, studies_included=1)
    svg = prisma_svg(counts, title='Review "one" <&>', generated="2026-11-25")
    texts = _texts(svg)
    assert "- file: a<b>&c.ris (n = 3)" in texts and 'Review "one" <&>' in texts
    assert "Registers (n = 2)" in texts and "Databases and files (n = 13)" in texts
    assert "<script" not in svg and "href" not in svg.replace("url(#arrow)", "")
    assert not any("still to be screened" in x for x in texts)
    width = max(len(x) for x in texts)
    assert width <= 60  # long reasons wrap inside their box


def test_record_exports(workspace: tuple[FastAPI, Path], alice: Client, slug: str, tmp_path: Path) -> None:
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 7, "label": "include"})
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 8, "label": "exclude"})
    ris = alice.get(f"/p/{slug}/export/records.ris?decision=include")
    assert ris.headers["content-disposition"] == 'attachment; filename="estrogens-12-records-include.ris"'
    path = tmp_path / "included.ris"
    path.write_bytes(ris.content)
    included = list(read_records(path))
    with Project.open(workspace[1]) as project:
        assert [r.pmid for r in included] == [project.record(7).record.pmid]
    rows = list(csv.DictReader(io.StringIO(alice.get(f"/p/{slug}/export/records.csv").text)))
    assert len(rows) == 12
    lines = alice.get(f"/p/{slug}/export/records.jsonl?decision=exclude").text.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["title"]
    assert alice.get(f"/p/{slug}/export/records.docx").status_code == 404
    assert alice.get(f"/p/{slug}/export/records.ris?decision=perhaps").status_code == 400


def test_decision_history_and_screening_state(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    app, _ = workspace
    rita = make_user(app, "rita", "reviewer")
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 1, "label": "exclude", "reason": "E1", "seconds": "7.5"})
    rita.post(f"/p/{slug}/screen/decide", {"record_id": 2, "label": "include", "seconds": "4"})
    alice.post(f"/p/{slug}/screen/undo")
    rows = list(csv.DictReader(io.StringIO(alice.get(f"/p/{slug}/export/decisions.csv").text)))
    assert [(r["record_id"], r["label"], r["actor"]) for r in rows] == [
        ("1", "exclude", "alice"), ("2", "include", "rita"), ("1", "undo", "alice")]
    assert rows[0]["seconds_spent"] == "7.5" and rows[0]["criteria_version"] == "1"
    assert rows[0]["reasons"].startswith("E1: The population was selected")
    state = json.loads(alice.get(f"/p/{slug}/export/screening.json").content)
    assert state["project"] == "Estrogens 12" and state["exported_by"] == "alice"
    assert [c["label"] for c in state["criteria"]] == ["I1", "I2", "I3", "E1"]
    by_id = {r["id"]: r for r in state["records"]}
    assert len(by_id) == 12 and by_id[1]["decisions"]["title_abstract"] is None
    decision = by_id[2]["decisions"]["title_abstract"]
    assert decision["label"] == "include" and decision["actor"] == "rita" and decision["seconds_spent"] == 4.0
    assert state["prisma"]["records_screened"] == 12


def test_extraction_table(workspace: tuple[FastAPI, Path], alice: Client, slug: str) -> None:
    _, project_dir = workspace
    empty = alice.get(f"/p/{slug}/export/extractions.csv").text
    assert empty.splitlines() == ["record_id,pmid,title,task,field,value,status,origin,actor,evidence,call_id,"
                                  "document_id,created_at"]
    now = dt.datetime.now(dt.UTC)
    with Project.open(project_dir) as project, project.engine.begin() as conn:
        first = conn.execute(sa.insert(t.extractions).values(
            record_id=3, task="characteristics", field="country", value="Finland", evidence=[{"quote": "in Finland"}],
            origin="ai", status="proposed", actor="ai:classic", created_at=now)).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(sa.insert(t.extractions).values(
            record_id=3, task="characteristics", field="country", value="Finland", evidence=[{"quote": "in Finland"}],
            origin="human", status="accepted", actor="alice", supersedes_id=first, created_at=now))
        conn.execute(sa.insert(t.extractions).values(
            record_id=3, task="participants", field="total", value={"n": 464}, evidence=[], origin="ai",
            status="proposed", actor="ai:classic", created_at=now))
    rows = list(csv.DictReader(io.StringIO(alice.get(f"/p/{slug}/export/extractions.csv").text)))
    assert [(r["field"], r["value"], r["status"], r["actor"], r["evidence"]) for r in rows] == [
        ("country", "Finland", "accepted", "alice", "in Finland"), ("total", '{"n": 464}', "proposed", "ai:classic", "")]


def test_audit_shows_who_what_when_and_the_model_and_prompt(workspace: tuple[FastAPI, Path], alice: Client,
                                                            slug: str) -> None:
    _, project_dir = workspace
    alice.post(f"/p/{slug}/screen/decide", {"record_id": 6, "label": "exclude", "seconds": "9.25"})
    decisions = alice.get(f"/p/{slug}/audit").text
    assert re.search(r"<td>alice</td>\s*<td><a href=\"/p/estrogens-12/records/6\">6</a>", decisions)
    assert "9.2" in decisions
    ai = alice.get(f"/p/{slug}/audit?view=ai").text
    assert "classic/eligibility/1.0" in ai
    with Project.open(project_dir) as project:
        call_id = project.assessments()[0]["call_id"]
    call = alice.get(f"/p/{slug}/audit/calls/{call_id}").text
    assert "eligibility" in call and "classic/eligibility/1.0" in call and "Prompt (messages)" in call
    assert "comparison group of hormone replacement therapy nonusers" in call  # the criteria were in the input
    activity = alice.get(f"/p/{slug}/audit?view=activity").text
    assert "import" in activity and "criteria" in activity
    access = alice.get(f"/p/{slug}/audit?view=access").text
    assert "member-set" in access
    assert alice.get(f"/p/{slug}/audit/calls/99999").status_code == 404
    assert alice.get(f"/p/{slug}/audit?view=secrets").status_code == 404
