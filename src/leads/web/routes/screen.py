"""The screening page: one record at a time, decisions, undo, the AI panel, AI assessment runs."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from leads.project import Project
from leads.screen import workflow as w
from leads.web.deps import (
    Owner,
    ProjectContext,
    Reviewer,
    Viewer,
    is_htmx,
    redirect,
    render,
    start_job,
    state_of,
)
from leads.web.dual import dual_undo
from leads.web.jobs import JobProgress
from leads.web.screening import STAGE, parse_seconds, record_decision, screen_view, undo_last
from leads.web.store import DualSetting, dual_settings

router = APIRouter()

AI_PANEL = "ai_panel"
ASSESS_LIMITS = (25, 100, 500, 0)


def _ai_on(request: Request, ctx: ProjectContext) -> bool:
    """The reviewer's AI panel preference; always off while the AI is the second reviewer."""
    dual = _dual(ctx)
    if dual is not None and dual.second == "ai":
        return False
    return bool(state_of(request).store.preference(ctx.user, ctx.entry, AI_PANEL, True))


def _dual(ctx: ProjectContext) -> DualSetting | None:
    """The title/abstract dual-review setting when it is on."""
    setting = dual_settings(ctx.project)[STAGE]
    return setting if setting.enabled else None


def _card(request: Request, ctx: ProjectContext, *, record_id: int | None = None,
          notice: str | None = None, status_code: int = 200) -> Response:
    state = state_of(request)
    view = None
    stopping = None
    if ctx.can("reviewer"):
        view = screen_view(ctx.project, slug=ctx.slug, user=ctx.user.username, ai_on=_ai_on(request, ctx),
                           claims=state.claims, record_id=record_id, notice=notice, dual=_dual(ctx))
    if view is None:
        stopping = w.stopping_estimate(ctx.project)
    template = "project/_screen_card.html" if is_htmx(request) else "project/screen.html"
    return render(request, template, status_code=status_code, view=view, stopping=stopping,
                  notice=notice, assess_limits=ASSESS_LIMITS, active="screen", dual=_dual(ctx),
                  jobs=[j for j in state.jobs.for_project(ctx.slug) if j.kind == "assess"][:1])


@router.get("/p/{slug}/screen")
def screen_page(request: Request, ctx: Viewer, record: int | None = None) -> Response:
    return _card(request, ctx, record_id=record)


@router.post("/p/{slug}/screen/decide")
async def decide(request: Request, ctx: Reviewer) -> Response:
    form = await request.form()
    # The hidden field (set by the page's script) and the clicked button may both send a label.
    label = next((str(v) for v in form.getlist("label") if str(v)), "")
    try:
        record_id = int(str(form.get("record_id") or ""))
    except ValueError:
        return redirect(f"{ctx.base}/screen", request, "The decision did not say which record.", "error")
    reasons = [str(r) for r in form.getlist("reason")] if label == "exclude" else []
    seconds = parse_seconds(str(form.get("seconds") or ""))
    record_decision(ctx.project, record_id=record_id, label=label, reasons=reasons, seconds=seconds,
                    user=ctx.user.username, ai_on=_ai_on(request, ctx))
    state_of(request).claims.release(ctx.slug, record_id, ctx.user.username)
    notice = f"Record {record_id}: {label}" + (f" ({', '.join(reasons)})" if reasons else "") + "."
    if is_htmx(request):
        return _card(request, ctx, notice=notice)
    return redirect(f"{ctx.base}/screen", request, notice)


@router.post("/p/{slug}/screen/undo")
def undo(request: Request, ctx: Reviewer) -> Response:
    if _dual(ctx) is not None:
        withdrawn = dual_undo(ctx.project, ctx.user.username, STAGE)
        undone = None if withdrawn is None else (withdrawn[0], {"label": withdrawn[1].label})
    else:
        undone = undo_last(ctx.project, ctx.user.username)
    if undone is None:
        notice = "You have no standing decision to undo."
        if is_htmx(request):
            return _card(request, ctx, notice=notice)
        return redirect(f"{ctx.base}/screen", request, notice, "error")
    record_id, row = undone
    notice = f"Undone: your {row['label']} on record {record_id}. Decide it again."
    if is_htmx(request):
        return _card(request, ctx, record_id=record_id, notice=notice)
    return redirect(f"{ctx.base}/screen?record={record_id}", request, notice)


@router.post("/p/{slug}/screen/ai")
def toggle_ai(request: Request, ctx: Reviewer, record_id: int | None = Form(None)) -> Response:
    store = state_of(request).store
    dual = _dual(ctx)
    if dual is not None and dual.second == "ai":
        notice = "The AI is the second reviewer: its panel stays off so that your decisions are independent."
        if is_htmx(request):
            return _card(request, ctx, record_id=record_id, notice=notice)
        return redirect(f"{ctx.base}/screen", request, notice, "error")
    on = not _ai_on(request, ctx)
    store.set_preference(ctx.user, ctx.entry, AI_PANEL, on)
    notice = "AI assistance is on." if on else "AI assistance is off: you screen on your own."
    if is_htmx(request):
        return _card(request, ctx, record_id=record_id, notice=notice)
    target = f"{ctx.base}/screen" + (f"?record={record_id}" if record_id else "")
    return redirect(target, request, notice)


@router.post("/p/{slug}/screen/assess")
def assess(request: Request, ctx: Owner, limit: int = Form(25)) -> Response:
    if not w.current_criteria(ctx.project):
        return redirect(f"{ctx.base}/question", request,
                        "Set the eligibility criteria first: the AI assesses records against them.", "error")
    cap = None if limit <= 0 else limit
    undecided = ctx.project.status().undecided["title_abstract"]
    estimate = undecided if cap is None else min(cap, undecided)

    def run(project: Project, progress: JobProgress) -> None:
        progress.update(0, estimate, "Assessing records against the criteria")
        result = w.run_screening(project, limit=cap, progress=lambda report: progress.update(
            report.done + len(report.failed), estimate, f"Assessed {report.done} records"))
        for line in result.summary().splitlines():
            progress.result(line.strip())

    title = f"AI assessments ({'all unscreened records' if cap is None else f'next {cap} records'})"
    return start_job(request, ctx, "assess", title, run)
