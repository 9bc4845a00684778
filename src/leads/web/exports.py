"""Exports of a project beyond the reference formats: the decision history as CSV, the screening
state as JSON, the extraction table as CSV, and one model call for the audit view.

The reference formats (RIS, CSV, JSON Lines, ...) are :meth:`leads.project.Project.export`. The
extraction table and the call log are read straight from the project's tables (read only): the
project API has no reader for them yet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from leads.errors import NotFoundError
from leads.project import Project
from leads.project import schema as t
from leads.screen import workflow as w

__all__ = ["decisions_csv", "extractions_csv", "model_call", "screening_json"]

STAGES = ("title_abstract", "full_text")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    return str(value)


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def decisions_csv(project: Project) -> str:
    """Every decision ever made (undo rows too), oldest first: who, what, when, under which
    criteria version, with how much time and whether the AI panel was shown."""
    primaries = project.duplicate_primaries()
    history = project.decision_history()
    ids = sorted({int(r["record_id"]) for r in history})
    records = {s.id: s.record for s in project.iter_records(ids=ids)} if ids else {}
    header = ["decision_id", "created_at", "stage", "record_id", "screened_as_record", "pmid", "doi", "title",
              "label", "reasons", "actor", "actor_kind", "ai_assisted", "seconds_spent", "criteria_version",
              "call_id", "note"]
    rows = []
    for r in history:
        rid = int(r["record_id"])
        rec = records.get(rid)
        rows.append([r["id"], _iso(r["created_at"]), r["stage"], rid, primaries.get(rid, rid),
                     rec.pmid if rec else None, rec.doi if rec else None, rec.title if rec else None,
                     r["label"], " | ".join(r.get("reasons") or []), r["actor"], r["actor_kind"],
                     "" if r["ai_assisted"] is None else str(bool(r["ai_assisted"])).lower(),
                     r["seconds_spent"], r.get("criteria_version"), r["call_id"], r["note"]])
    return _csv(header, rows)


def screening_json(project: Project, *, exported_by: str) -> dict[str, Any]:
    """The review's screening state: question, criteria, every unique record with its standing
    decision at each stage, and the PRISMA numbers."""
    versions = {int(r["id"]): r.get("criteria_version") for r in project.decision_history()}
    current = {stage: project.current_decisions(stage) for stage in STAGES}
    status = project.status()
    question = project.question()
    criteria = w.current_criteria(project)

    def decision(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {"label": row["label"], "reasons": list(row.get("reasons") or []), "actor": row["actor"],
                "actor_kind": row["actor_kind"], "ai_assisted": row["ai_assisted"],
                "seconds_spent": row["seconds_spent"], "criteria_version": versions.get(int(row["id"])),
                "created_at": _iso(row["created_at"]), "decision_id": row["id"]}

    records = []
    for stored in project.iter_records(unique=True):
        r = stored.record
        records.append({
            "id": stored.id, "identifiers": r.identifiers(), "title": r.title, "year": r.year,
            "journal": r.journal, "authors": r.authors,
            "decisions": {stage: decision(current[stage].get(stored.id)) for stage in STAGES},
        })
    prisma = status.prisma
    return {
        "project": project.name,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "exported_by": exported_by,
        "question": None if question is None else {k: _iso(v) if isinstance(v, dt.datetime) else v
                                                   for k, v in question.items() if k != "id"},
        "criteria": [c.as_dict() for c in criteria],
        "records": records,
        "prisma": {**prisma.__dict__, "identified_total": prisma.identified_total},
    }


def extractions_csv(project: Project) -> str:
    """The extraction table: the newest value of every (record, task, field), not superseded,
    with its status, origin, who set it and the supporting quotes."""
    x = t.extractions
    with project.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(x).order_by(x.c.id)).mappings()]
    superseded = {int(r["supersedes_id"]) for r in rows if r["supersedes_id"] is not None}
    newest: dict[tuple[int, str, str], dict[str, Any]] = {}
    for r in rows:
        if int(r["id"]) in superseded:
            continue
        newest[(int(r["record_id"]), r["task"], r["field"])] = r
    ids = sorted({k[0] for k in newest})
    records = {s.id: s.record for s in project.iter_records(ids=ids)} if ids else {}
    header = ["record_id", "pmid", "title", "task", "field", "value", "status", "origin", "actor", "evidence",
              "call_id", "document_id", "created_at"]
    out = []
    for (rid, task, field), r in sorted(newest.items()):
        rec = records.get(rid)
        value = r["value"]
        shown = value if isinstance(value, str) or value is None else json.dumps(value, ensure_ascii=False)
        evidence = r["evidence"] or []
        quotes = " | ".join(str(e.get("quote", e)) if isinstance(e, dict) else str(e) for e in evidence)
        out.append([rid, rec.pmid if rec else None, rec.title if rec else None, task, field, shown, r["status"],
                    r["origin"], r["actor"], quotes, r["call_id"], r["document_id"], _iso(r["created_at"])])
    return _csv(header, out)


def model_call(project: Project, call_id: int) -> dict[str, Any]:
    """One row of the call log: engine, model, the prompt (messages), the raw and parsed output."""
    calls = t.model_calls
    with project.engine.connect() as conn:
        row = conn.execute(sa.select(calls).where(calls.c.id == call_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"model call {call_id} does not exist in this project")
    return dict(row)


def recent_assessments(project: Project, limit: int = 100) -> list[dict[str, Any]]:
    """The newest AI assessments, newest first, with their model (from the call log)."""
    a, calls = t.ai_assessments, t.model_calls
    query = (sa.select(a.c.id, a.c.record_id, a.c.stage, a.c.engine, a.c.call_id, a.c.score, a.c.created_at,
                       t.criteria_sets.c.version.label("criteria_version"), calls.c.model, calls.c.prompt_hash)
             .select_from(a.outerjoin(t.criteria_sets, t.criteria_sets.c.id == a.c.criteria_set_id)
                          .outerjoin(calls, calls.c.id == a.c.call_id))
             .order_by(a.c.id.desc()).limit(limit))
    with project.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
