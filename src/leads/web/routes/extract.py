"""Extraction: the included studies, one study's text beside its values, accept / edit / reject,
custom fields, and AI extraction runs."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from leads.errors import LeadsError
from leads.project import Project
from leads.web.deps import (
    Owner,
    ProjectContext,
    Reviewer,
    Viewer,
    redirect,
    render,
    start_job,
    state_of,
)
from leads.web.extraction import (
    CUSTOM_TASK,
    highlighted_text,
    included_studies,
    parse_value,
    study_text,
    value_views,
)
from leads.web.jobs import JobProgress
from leads.web.screening import parse_seconds

router = APIRouter()

MAX_FIELD_NAME = 200
REVIEW_ACTIONS = ("accept", "edit", "reject")


def _study(ctx: ProjectContext, record_id: int) -> int:
    """The study's primary record id; 404 when the record is not an included study."""
    key = ctx.project.duplicate_primaries().get(record_id, record_id)
    ctx.project.record(key)  # NotFoundError (404) names the record
    if key not in included_studies(ctx.project):
        raise HTTPException(404, f"record {record_id} is not an included study (include it at screening first)")
    return key


@router.get("/p/{slug}/extract")
def studies_page(request: Request, ctx: Viewer) -> Response:
    project = ctx.project
    ids = included_studies(project)
    records = {s.id: s.record for s in project.iter_records(ids=ids)} if ids else {}
    primaries = project.duplicate_primaries()
    counts: dict[int, dict[str, int]] = {rid: {"values": 0, "reviewed": 0} for rid in ids}
    for row in project.extractions(record_ids=sorted({m for m, p in primaries.items() if p in counts} | set(ids))):
        key = primaries.get(int(row["record_id"]), int(row["record_id"]))
        if key in counts:
            counts[key]["values"] += 1
            counts[key]["reviewed"] += row["origin"] == "human"
    from leads.documents.store import list_documents

    with_text = {primaries.get(d.record_id, d.record_id) for d in list_documents(project) if d.record_id is not None}
    state = state_of(request)
    return render(request, "project/extract.html", studies=[(rid, records.get(rid)) for rid in ids], counts=counts,
                  with_text=with_text, jobs=[j for j in state.jobs.for_project(ctx.slug) if j.kind == "extract"][:3],
                  active="extract")


@router.get("/p/{slug}/extract/{record_id}")
def study_page(request: Request, ctx: Viewer, record_id: int) -> Response:
    key = _study(ctx, record_id)
    stored = ctx.project.record(key)
    shown = study_text(ctx.project, key, stored.record)
    views = value_views(ctx.project, key, shown)
    ids = included_studies(ctx.project)
    position = ids.index(key)
    return render(request, "project/extract_study.html", record_id=key, record=stored.record, shown=shown,
                  text_html=highlighted_text(shown, views), values=views,
                  previous=ids[position - 1] if position > 0 else None,
                  following=ids[position + 1] if position + 1 < len(ids) else None,
                  active="extract")


@router.post("/p/{slug}/extract/{record_id}/review")
def review_value(request: Request, ctx: Reviewer, record_id: int, extraction_id: int = Form(...),
                 action: str = Form(...), value: str = Form(""), seconds: str = Form("")) -> Response:
    key = _study(ctx, record_id)
    back = f"{ctx.base}/extract/{key}"
    if action not in REVIEW_ACTIONS:
        return redirect(back, request, f"An action is one of {', '.join(REVIEW_ACTIONS)}.", "error")
    shown = study_text(ctx.project, key, ctx.project.record(key).record)
    views = {v.id: v for v in value_views(ctx.project, key, shown)}
    view = views.get(extraction_id)
    if view is None:
        raise HTTPException(404, f"value {extraction_id} is not a standing value of record {key}")
    try:
        new_value = parse_value(value, view.value, where=f"{view.task} / {view.field}") if action == "edit" else None
        ctx.project.review_extraction(extraction_id, action, value=new_value, seconds_spent=parse_seconds(seconds),
                                      actor=ctx.user.username)
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    done = {"accept": "accepted", "edit": "edited", "reject": "rejected"}[action]
    return redirect(f"{back}#value-{view.task}-{view.field}", request, f"{view.field}: {done}.")


@router.post("/p/{slug}/extract/{record_id}/custom")
def custom_value(request: Request, ctx: Reviewer, record_id: int, field: str = Form(...), value: str = Form(""),
                 seconds: str = Form("")) -> Response:
    key = _study(ctx, record_id)
    back = f"{ctx.base}/extract/{key}"
    name = " ".join(field.split())
    if not name or len(name) > MAX_FIELD_NAME:
        return redirect(back, request, f"A field name has 1 to {MAX_FIELD_NAME} characters.", "error")
    try:
        text = parse_value(value, "", where=f"custom field {name!r}")
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    shown = study_text(ctx.project, key, ctx.project.record(key).record)
    ctx.project.ensure_user(ctx.user.username)
    ctx.project.enter_extraction(key, CUSTOM_TASK, name, text, document_id=shown.document_id,
                                 seconds_spent=parse_seconds(seconds), actor=ctx.user.username)
    return redirect(back, request, f"{name}: entered.")


@router.post("/p/{slug}/extract/run")
def run_ai_extraction(request: Request, ctx: Owner, record_id: int | None = Form(None)) -> Response:
    ids = included_studies(ctx.project)
    if not ids:
        return redirect(f"{ctx.base}/extract", request, "No included studies yet: include studies at screening first.",
                        "error")
    record_ids = None
    if record_id is not None:
        record_ids = [_study(ctx, record_id)]

    def run(project: Project, progress: JobProgress) -> None:
        # Imported here: the extraction tasks load their models only when a run starts.
        from leads.extract.project import run_extraction

        total = len(record_ids or ids)
        progress.update(0, total, "Extracting from the included studies")
        result = run_extraction(project, engine="classic", record_ids=record_ids, progress=lambda report: progress.update(
            report.done, None, f"{report.done} items extracted"))
        progress.update(total, total)
        for line in result.summary().splitlines():
            if line.strip():
                progress.result(line.strip())

    title = f"AI extraction (record {record_ids[0]})" if record_ids else f"AI extraction ({len(ids)} included studies)"
    return start_job(request, ctx, "extract", title, run)
