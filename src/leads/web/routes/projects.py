"""The project list, creating a project, a project's overview, members, records and jobs."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from leads.errors import LeadsError, NotFoundError
from leads.project import Project
from leads.web.deps import (
    Owner,
    SignedIn,
    Viewer,
    is_htmx,
    redirect,
    render,
    state_of,
)
from leads.web.dual import STAGE_TITLES, blinded_stages, dual_summary, visible_decisions
from leads.web.store import ROLES, WorkspaceError, dual_settings, slugify

router = APIRouter()


@router.get("/")
def home(request: Request, session: SignedIn) -> Response:
    state = state_of(request)
    mine = state.store.user_projects(session.user)
    return render(request, "projects.html", projects=mine)


@router.post("/projects")
def create_project(request: Request, session: SignedIn, name: str = Form(...)) -> Response:
    state = state_of(request)
    name = " ".join(name.split())
    if not name:
        return redirect("/", request, "Give the project a name.", "error")
    if len(name) > 200:
        return redirect("/", request, "A project name has at most 200 characters.", "error")
    root = state.config.projects_root
    root.mkdir(parents=True, exist_ok=True)
    base = slugify(name)
    path, n = root / base, 2
    while path.exists():
        path, n = root / f"{base}-{n}", n + 1
    try:
        with Project.init(path, name=name, actor=session.user.username):
            pass
    except LeadsError as exc:
        return redirect("/", request, str(exc), "error")
    entry = state.store.register_project(path, name, by=session.user.username, slug=path.name)
    state.store.set_member(entry, session.user.username, "owner", by=session.user.username)
    return redirect(f"/p/{entry.slug}/question", request, f"Project {name} created. Start with the question.")


@router.get("/p/{slug}")
def overview(request: Request, ctx: Viewer) -> Response:
    status = ctx.project.status()
    state = state_of(request)
    dual = [dual_summary(ctx.project, stage, setting) for stage, setting in dual_settings(ctx.project).items()
            if setting.enabled]
    return render(request, "project/overview.html", status=status, question=ctx.project.question(),
                  dual=dual, stage_titles=STAGE_TITLES,
                  criteria=ctx.project.criteria(), jobs=state.jobs.for_project(ctx.slug, limit=5),
                  members=state.store.members(ctx.entry), active="overview")


@router.get("/p/{slug}/members")
def members_page(request: Request, ctx: Viewer) -> Response:
    store = state_of(request).store
    members = store.members(ctx.entry)
    names = {m.user.username for m in members}
    others = [u for u in store.users() if u.username not in names and u.active] if ctx.can("owner") else []
    return render(request, "project/members.html", members=members, others=others, roles=ROLES, active="members")


@router.post("/p/{slug}/members")
def set_member(request: Request, ctx: Owner, username: str = Form(...), role: str = Form(...)) -> Response:
    store = state_of(request).store
    try:
        store.set_member(ctx.entry, username, None if role == "remove" else role, by=ctx.user.username)
    except (WorkspaceError, NotFoundError) as exc:
        return redirect(f"{ctx.base}/members", request, str(exc), "error")
    ctx.project.log("member", {"user": username, "role": None if role == "remove" else role})
    text = f"{username} removed." if role == "remove" else f"{username} is now {role}."
    return redirect(f"{ctx.base}/members", request, text)


@router.get("/p/{slug}/records/{record_id}")
def record_page(request: Request, ctx: Viewer, record_id: int) -> Response:
    project = ctx.project
    stored = project.record(record_id)
    primaries = project.duplicate_primaries()
    key = primaries.get(record_id, record_id)
    members = sorted({key, record_id, *(m for m, p in primaries.items() if p == key)})
    history = project.decision_history(record_ids=members)
    assessments = project.assessments(stage=None, record_ids=members)
    blinded = blinded_stages(ctx.role, ctx.user.username, dual_settings(project))
    if blinded:  # dual review: a blinded reviewer sees their own decisions, and no AI second opinion
        history = visible_decisions(history, ctx.user.username, blinded)
        assessments = [a for a in assessments if not (a["stage"] in blinded and blinded[a["stage"]].second == "ai")]
    return render(request, "project/record.html", stored=stored, members=members, primary=key,
                  history=history, assessments=assessments, blinded=bool(blinded), active="records")


@router.get("/p/{slug}/jobs/{job_id}")
def job_fragment(request: Request, ctx: Viewer, job_id: int) -> Response:
    state = state_of(request)
    job = state.jobs.get(job_id, ctx.slug)
    if job is None:
        raise HTTPException(404, f"no job {job_id} in this project (jobs are forgotten when the server restarts)")
    snapshot = state.jobs.snapshot(job)
    if is_htmx(request):
        return render(request, "project/_job.html", job=snapshot)
    return render(request, "project/job.html", job=snapshot, active="records")
