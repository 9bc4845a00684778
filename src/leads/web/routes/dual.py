"""Dual review: the setting (owner), the conflicts page with agreement, and resolving conflicts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from leads.errors import LeadsError
from leads.screen import workflow as w
from leads.web.deps import Owner, Reviewer, Viewer, redirect, render, state_of
from leads.web.dual import STAGE_TITLES, can_resolve, dual_summary, find_record, is_blinded, resolve
from leads.web.screening import parse_seconds
from leads.web.store import (
    DUAL_STAGES,
    SECOND_REVIEWERS,
    DualSetting,
    dual_settings,
    set_dual_setting,
)

router = APIRouter()


def _stage(stage: str) -> str:
    if stage not in DUAL_STAGES:
        raise HTTPException(400, f"stage is one of {', '.join(DUAL_STAGES)} (got {stage!r})")
    return stage


@router.post("/p/{slug}/dual")
async def save_setting(request: Request, ctx: Owner) -> Response:
    form = await request.form()
    stage = _stage(str(form.get("stage") or "title_abstract"))
    second = str(form.get("second") or "human")
    if second not in SECOND_REVIEWERS:
        return redirect(f"{ctx.base}/question", request, f"The second reviewer is one of {', '.join(SECOND_REVIEWERS)}.",
                        "error")
    members = {m.user.username: m.role for m in state_of(request).store.members(ctx.entry)}
    resolvers = sorted({str(r) for r in form.getlist("resolvers") if str(r)})
    unknown = [r for r in resolvers if members.get(r) not in ("reviewer", "owner")]
    if unknown:
        return redirect(f"{ctx.base}/question", request,
                        f"A resolver must be a reviewer or owner of this project: {', '.join(unknown)}", "error")
    enabled = str(form.get("enabled") or "") in ("true", "on", "1")
    set_dual_setting(ctx.project, stage, DualSetting(enabled=enabled, second=second, resolvers=tuple(resolvers)))
    title = STAGE_TITLES[stage].lower()
    if not enabled:
        message = f"Dual screening at {title} is off."
    else:
        message = (f"Dual screening at {title} is on: second reviewer "
                   f"{'the AI' if second == 'ai' else 'another person'}.")
    return redirect(f"{ctx.base}/question", request, message)


@router.get("/p/{slug}/conflicts")
def conflicts_page(request: Request, ctx: Viewer, stage: str = "title_abstract") -> Response:
    stage = _stage(stage)
    settings = dual_settings(ctx.project)
    setting = settings[stage]
    summary = dual_summary(ctx.project, stage, setting)
    me = ctx.user.username
    blinded = is_blinded(ctx.role, me, setting)
    conflicts = summary.conflicts
    resolved = sorted(summary.resolved, key=lambda r: r.resolution.decision_id if r.resolution else 0,
                      reverse=True)[:50]
    if blinded:  # a blinded reviewer sees the conflicts of records they decided themselves
        conflicts = [r for r in conflicts if r.decided_by(me) is not None]
        resolved = [r for r in resolved if r.decided_by(me) is not None]
    ids = sorted({r.record_id for r in (*conflicts, *resolved)})
    titles = {s.id: s.record.title for s in ctx.project.iter_records(ids=ids)} if ids else {}
    return render(request, "project/conflicts.html", stage=stage, stages=STAGE_TITLES, settings=settings,
                  setting=setting, summary=summary, conflicts=conflicts, resolved=resolved, titles=titles,
                  blinded=blinded, criteria=w.current_criteria(ctx.project),
                  resolvable={r.record_id for r in conflicts if can_resolve(ctx.role, me, setting, r)},
                  active="conflicts")


@router.post("/p/{slug}/conflicts/resolve")
async def resolve_conflict(request: Request, ctx: Reviewer) -> Response:
    form = await request.form()
    stage = _stage(str(form.get("stage") or "title_abstract"))
    back = f"{ctx.base}/conflicts?stage={stage}"
    try:
        record_id = int(str(form.get("record_id") or ""))
    except ValueError:
        return redirect(back, request, "The resolution did not say which record.", "error")
    label = str(form.get("label") or "")
    setting = dual_settings(ctx.project)[stage]
    if not setting.enabled:
        return redirect(back, request, f"Dual screening at {STAGE_TITLES[stage].lower()} is off.", "error")
    records = dual_summary(ctx.project, stage, setting).records
    try:
        record = find_record(records, record_id, ctx.project.duplicate_primaries())
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    if not can_resolve(ctx.role, ctx.user.username, setting, record):
        raise HTTPException(403, "a conflict is resolved by an owner, a designated resolver, or its two reviewers")
    reasons = [str(r) for r in form.getlist("reason")] if label == "exclude" else []
    try:
        resolve(ctx.project, stage=stage, record=record, label=label, reasons=reasons, user=ctx.user.username,
                role=ctx.role, setting=setting, seconds=parse_seconds(str(form.get("seconds") or "")))
    except LeadsError as exc:
        return redirect(back, request, str(exc), "error")
    return redirect(back, request, f"Record {record.record_id} resolved: {label}.")
