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
from leads.web.store import OUTCOME_TYPES, extraction_plan, outcome_setting, set_extraction_plan

router = APIRouter()

MAX_FIELD_NAME = 200
REVIEW_ACTIONS = ("accept", "edit", "reject")
#: The tasks of an AI extraction run (:data:`leads.extract.project.EXTRACTION_TASKS`), as the page names them.
RUN_TASKS = {"characteristics": "study characteristics", "arms": "arms", "participants": "participants",
             "results": "results of the outcomes below"}


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
                  plan=extraction_plan(project), outcome_types=OUTCOME_TYPES, run_tasks=RUN_TASKS,
                  active="extract")


# -- the extraction plan: outcomes and extra fields the AI reads -------------------------------------


@router.post("/p/{slug}/extract/outcomes")
def add_outcome(request: Request, ctx: Owner, outcome: str = Form(""), intervention: str = Form(""),
                comparator: str = Form(""), outcome_type: str = Form("auto")) -> Response:
    back = f"{ctx.base}/extract#plan"
    try:
        setting = outcome_setting(outcome, intervention, comparator, outcome_type)
        set_extraction_plan(ctx.project, extraction_plan(ctx.project).with_outcome(setting),
                            {"added_outcome": setting.as_dict()})
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    return redirect(back, request, f"Outcome {setting.outcome!r} added: the next AI extraction reads its results.")


@router.post("/p/{slug}/extract/outcomes/remove")
def remove_outcome(request: Request, ctx: Owner, outcome: str = Form(...)) -> Response:
    back = f"{ctx.base}/extract#plan"
    try:
        set_extraction_plan(ctx.project, extraction_plan(ctx.project).without_outcome(outcome),
                            {"removed_outcome": outcome})
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    return redirect(back, request, f"Outcome {outcome!r} removed (values already extracted stay).")


@router.post("/p/{slug}/extract/fields")
def add_field(request: Request, ctx: Owner, name: str = Form(""), description: str = Form("")) -> Response:
    back = f"{ctx.base}/extract#plan"
    try:
        plan = extraction_plan(ctx.project).with_field(name, description)
        added = plan.fields[-1]
        set_extraction_plan(ctx.project, plan, {"field": {"name": added[0], "description": added[1]}})
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    return redirect(back, request, f"Field {added[0]!r} saved: the next AI extraction reads it.")


@router.post("/p/{slug}/extract/fields/remove")
def remove_field(request: Request, ctx: Owner, name: str = Form(...)) -> Response:
    back = f"{ctx.base}/extract#plan"
    try:
        set_extraction_plan(ctx.project, extraction_plan(ctx.project).without_field(name), {"removed_field": name})
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    return redirect(back, request, f"Field {name!r} removed (values already extracted stay).")


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
async def run_ai_extraction(request: Request, ctx: Owner) -> Response:
    """Run the AI extraction as a job, with the project's outcomes and extra fields; ``tasks``
    (repeatable) narrows it to some tasks, ``record_id`` to one study."""
    form = await request.form()
    raw_record = form.get("record_id")
    chosen = [str(t) for t in form.getlist("tasks")]
    unknown = [t for t in chosen if t not in RUN_TASKS]
    if unknown:
        raise HTTPException(400, f"unknown extraction task(s) {', '.join(map(repr, unknown))}; "
                                 f"choose from {', '.join(RUN_TASKS)}")
    tasks = tuple(t for t in RUN_TASKS if t in chosen) or tuple(RUN_TASKS)
    ids = included_studies(ctx.project)
    if not ids:
        return redirect(f"{ctx.base}/extract", request, "No included studies yet: include studies at screening first.",
                        "error")
    record_ids = None
    if isinstance(raw_record, str) and raw_record.strip():
        if not raw_record.strip().isdigit():
            raise HTTPException(400, f"record_id must be a record number (got {raw_record!r})")
        record_ids = [_study(ctx, int(raw_record))]
    plan = extraction_plan(ctx.project)
    outcomes = [o.for_run() for o in plan.outcomes]
    fields = plan.fields_dict()
    if tasks == ("results",) and not outcomes:
        return redirect(f"{ctx.base}/extract#plan", request,
                        "Define at least one outcome (with its intervention and comparator) to extract results.",
                        "error")

    def run(project: Project, progress: JobProgress) -> None:
        # Imported here: the extraction tasks load their models only when a run starts.
        from leads.extract.project import run_extraction

        total = len(record_ids or ids)
        progress.update(0, total, "Extracting from the included studies")
        result = run_extraction(project, engine="classic", tasks=tasks, outcomes=outcomes, fields=fields or None,
                                record_ids=record_ids,
                                progress=lambda report: progress.update(report.done, None,
                                                                        f"{report.done} items extracted"))
        progress.update(total, total)
        for line in result.summary().splitlines():
            if line.strip():
                progress.result(line.strip())

    scope = f"record {record_ids[0]}" if record_ids else f"{len(ids)} included studies"
    what = f"; {len(outcomes)} outcome(s)" if outcomes and "results" in tasks else ""
    title = f"AI extraction ({scope}{what})"
    return start_job(request, ctx, "extract", title, run)
