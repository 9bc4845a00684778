"""Outputs: the PRISMA 2020 diagram, exports, and the audit view."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from leads.web.deps import (
    ProjectContext,
    Viewer,
    render,
    state_of,
)
from leads.web.dual import blinded_stages, visible_decisions
from leads.web.exports import (
    decisions_csv,
    extractions_csv,
    model_call,
    recent_assessments,
    screening_json,
)
from leads.web.prisma import prisma_svg
from leads.web.store import dual_settings, slugify

router = APIRouter()

RECORD_FORMATS = {
    "ris": ("ris", "application/x-research-info-systems", "ris"),
    "csv": ("csv", "text/csv; charset=utf-8", "csv"),
    "jsonl": ("jsonl", "application/x-ndjson", "jsonl"),
    "nbib": ("medline", "text/plain; charset=utf-8", "nbib"),
    "bibtex": ("bibtex", "application/x-bibtex", "bib"),
}
DECISION_FILTERS = ("include", "exclude", "maybe")
AUDIT_PAGE = 100


def _download(content: bytes | str, media_type: str, filename: str) -> Response:
    body = content.encode("utf-8") if isinstance(content, str) else content
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _refuse_if_blinded(ctx: ProjectContext, what: str) -> None:
    """Exports that carry people's decisions are not for a reviewer blinded in a dual review."""
    if blinded_stages(ctx.role, ctx.user.username, dual_settings(ctx.project)):
        raise HTTPException(403, f"{what} shows every reviewer's decisions; while dual review is on, a blinded "
                                 "reviewer cannot export it (an owner can)")


def _stem(ctx: ProjectContext) -> str:
    return slugify(ctx.entry.name)


def _svg(ctx: ProjectContext) -> str:
    status = ctx.project.status()
    return prisma_svg(status.prisma, title=ctx.entry.name, generated=dt.date.today().isoformat(),
                      still_to_screen=status.undecided["title_abstract"],
                      reports_to_assess=status.undecided["full_text"])


@router.get("/p/{slug}/prisma")
def prisma_page(request: Request, ctx: Viewer) -> Response:
    status = ctx.project.status()
    return render(request, "project/prisma.html", status=status, active="prisma")


@router.get("/p/{slug}/prisma.svg")
def prisma_download(ctx: Viewer, download: bool = False) -> Response:
    svg = _svg(ctx)
    if download:
        return _download(svg, "image/svg+xml", f"{_stem(ctx)}-prisma.svg")
    return Response(svg, media_type="image/svg+xml")


@router.get("/p/{slug}/export")
def export_page(request: Request, ctx: Viewer) -> Response:
    return render(request, "project/export.html", record_formats=list(RECORD_FORMATS),
                  decision_filters=DECISION_FILTERS, status=ctx.project.status(), active="export")


@router.get("/p/{slug}/export/records.{fmt}")
def export_records(ctx: Viewer, fmt: str, decision: str = "", stage: str = "title_abstract", duplicates: bool = False) -> Response:
    if fmt not in RECORD_FORMATS:
        raise HTTPException(404, f"no export format {fmt!r}; formats: {', '.join(RECORD_FORMATS)}")
    if decision and decision not in DECISION_FILTERS:
        raise HTTPException(400, f"decision is one of {', '.join(DECISION_FILTERS)}")
    if stage not in ("title_abstract", "full_text"):
        raise HTTPException(400, "stage is title_abstract or full_text")
    if decision:
        _refuse_if_blinded(ctx, "a records export filtered by decision")
    name, media_type, extension = RECORD_FORMATS[fmt]
    buffer = io.BytesIO()
    ctx.project.export(buffer, name, unique=not duplicates, decision=decision or None, stage=stage)
    suffix = f"-{decision}" if decision else ""
    return _download(buffer.getvalue(), media_type, f"{_stem(ctx)}-records{suffix}.{extension}")


@router.get("/p/{slug}/export/decisions.csv")
def export_decisions(ctx: Viewer) -> Response:
    _refuse_if_blinded(ctx, "the decisions export")
    return _download(decisions_csv(ctx.project), "text/csv; charset=utf-8", f"{_stem(ctx)}-decisions.csv")


@router.get("/p/{slug}/export/screening.json")
def export_screening(ctx: Viewer) -> Response:
    _refuse_if_blinded(ctx, "the screening export")
    data = screening_json(ctx.project, exported_by=ctx.user.username)
    return _download(json.dumps(data, ensure_ascii=False, indent=1, default=str), "application/json",
                     f"{_stem(ctx)}-screening.json")


@router.get("/p/{slug}/export/extractions.csv")
def export_extractions(ctx: Viewer) -> Response:
    return _download(extractions_csv(ctx.project), "text/csv; charset=utf-8", f"{_stem(ctx)}-extractions.csv")


@router.get("/p/{slug}/audit")
def audit_page(request: Request, ctx: Viewer, view: str = "decisions", page: int = 1) -> Response:
    project = ctx.project
    context: dict[str, Any] = {"view": view, "active": "audit"}
    blinded = blinded_stages(ctx.role, ctx.user.username, dual_settings(project))
    context["blinded"] = bool(blinded)
    if view == "decisions":
        history = list(reversed(visible_decisions(project.decision_history(), ctx.user.username, blinded)))
        pages = max(1, (len(history) + AUDIT_PAGE - 1) // AUDIT_PAGE)
        page = min(max(1, page), pages)
        shown = history[(page - 1) * AUDIT_PAGE: page * AUDIT_PAGE]
        ids = sorted({int(r["record_id"]) for r in shown})
        titles = {s.id: s.record.title for s in project.iter_records(ids=ids)} if ids else {}
        context.update(rows=shown, titles=titles, page=page, pages=pages, total=len(history))
    elif view == "ai":
        if any(s.second == "ai" for s in blinded.values()):
            raise HTTPException(403, "the AI is the second reviewer in this dual review: its assessments are "
                                     "hidden from blinded reviewers")
        context.update(rows=recent_assessments(project, limit=AUDIT_PAGE))
    elif view == "activity":
        context.update(rows=project.activity(limit=200))
    elif view == "access":
        context.update(rows=state_of(request).store.events(project_id=ctx.entry.id, limit=200))
    else:
        raise HTTPException(404, f"no audit view {view!r}")
    return render(request, "project/audit.html", **context)


@router.get("/p/{slug}/audit/calls/{call_id}")
def call_page(request: Request, ctx: Viewer, call_id: int) -> Response:
    call = model_call(ctx.project, call_id)
    pretty = {key: json.dumps(call.get(key), ensure_ascii=False, indent=2, default=str)
              for key in ("parsed", "options", "validation_errors")}
    return render(request, "project/call.html", call=call, pretty=pretty, messages=_messages(call.get("messages")),
                  active="audit")


def _messages(messages: Any) -> list[tuple[str, str]]:
    """(role, content) of each message; content that is JSON (the classic engine's input) is
    shown indented."""
    out = []
    for message in messages or []:
        if not isinstance(message, dict):
            out.append(("", json.dumps(message, ensure_ascii=False, default=str)))
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, indent=2, default=str)
        if isinstance(content, str) and content.lstrip().startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                text = json.dumps(json.loads(content), ensure_ascii=False, indent=2)
        out.append((str(message.get("role", "")), text))
    return out
