"""Request plumbing shared by the routes: the app's state, sessions, CSRF, project access, pages.

Every route that touches a project takes a :class:`ProjectContext` from :func:`project_access`,
which checks on the server, per request, that the signed-in user belongs to the project and has
the role the route needs. A project the user does not belong to answers 404 exactly like one
that does not exist, so project names do not leak; a member lacking the role gets 403.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from leads.errors import NotFoundError
from leads.project import Project
from leads.web.jobs import JobFunction, JobManager
from leads.web.online import SearchServices
from leads.web.screening import ClaimBoard
from leads.web.store import ProjectEntry, Session, User, WorkspaceStore, role_at_least

__all__ = [
    "PROJECT_SECTIONS",
    "LoginRequired",
    "Owner",
    "ProjectContext",
    "Reviewer",
    "SignedIn",
    "Viewer",
    "WebConfig",
    "WebState",
    "csrf_protect",
    "flash",
    "is_htmx",
    "project_access",
    "redirect",
    "render",
    "require_session",
    "start_job",
    "state_of",
]

SESSION_COOKIE = "leads_session"
PRE_CSRF_COOKIE = "leads_csrf"
FLASH_COOKIE = "leads_flash"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TEMPLATES = Path(__file__).with_name("templates")
PROJECT_CACHE = 32


@dataclass(frozen=True)
class Section:
    """A tab of a project's pages."""

    key: str
    title: str
    path: str


PROJECT_SECTIONS: list[Section] = [
    Section("overview", "Overview", ""),
    Section("question", "Question & criteria", "/question"),
    Section("records", "Import & searches", "/records"),
    Section("duplicates", "Duplicates", "/duplicates"),
    Section("screen", "Screening", "/screen"),
    Section("conflicts", "Conflicts", "/conflicts"),
    Section("extract", "Extraction", "/extract"),
    Section("prisma", "PRISMA", "/prisma"),
    Section("export", "Export", "/export"),
    Section("audit", "Audit", "/audit"),
    Section("members", "Members", "/members"),
]


@dataclass
class WebConfig:
    workspace: Path
    projects_root: Path
    allowed_hosts: list[str]
    secure_cookies: bool = False
    setup_token: str | None = None
    title: str = "leads workspace"
    corpora: list[Path] = field(default_factory=list)
    search: SearchServices = field(default_factory=SearchServices)


@dataclass
class WebState:
    config: WebConfig
    store: WorkspaceStore
    jobs: JobManager
    claims: ClaimBoard
    templates: Jinja2Templates
    flash_signer: URLSafeSerializer
    _projects: OrderedDict[tuple[str, str], Project] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open_project(self, entry: ProjectEntry, username: str) -> Project:
        """The project opened with ``username`` as its actor (cached: opening runs migrations)."""
        key = (str(entry.path), username)
        with self._lock:
            project = self._projects.get(key)
            if project is not None:
                self._projects.move_to_end(key)
                return project
        project = Project.open(entry.path, actor=username)
        with self._lock:
            self._projects[key] = project
            while len(self._projects) > PROJECT_CACHE:
                _, old = self._projects.popitem(last=False)
                old.close()
        return project

    def close(self) -> None:
        self.jobs.shutdown()
        with self._lock:
            for project in self._projects.values():
                project.close()
            self._projects.clear()
        self.store.close()


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


class LoginRequired(Exception):
    """The request needs a signed-in user."""


def current_session(request: Request) -> Session | None:
    if not hasattr(request.state, "session"):
        request.state.session = state_of(request).store.session(request.cookies.get(SESSION_COOKIE))
    session: Session | None = request.state.session
    return session


def require_session(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise LoginRequired()
    return session


#: A route parameter type: the signed-in user's session (else a redirect to the sign-in page).
SignedIn = Annotated[Session, Depends(require_session)]


def pre_session_token(request: Request) -> str:
    """The CSRF token of the sign-in and first-start forms (double-submit cookie)."""
    token = request.cookies.get(PRE_CSRF_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
        request.state.new_pre_csrf = token
    return token


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request without the session's CSRF token (form field
    ``csrf_token`` or header ``X-CSRF-Token``) or coming from another origin."""
    if request.method in SAFE_METHODS:
        return
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    session = current_session(request)
    expected = session.csrf_token if session is not None else request.cookies.get(PRE_CSRF_COOKIE)
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise HTTPException(403, "the form's security token is missing or out of date: reload the page and try again")


@dataclass
class ProjectContext:
    entry: ProjectEntry
    role: str
    session: Session
    project: Project

    @property
    def user(self) -> User:
        return self.session.user

    @property
    def slug(self) -> str:
        return self.entry.slug

    @property
    def base(self) -> str:
        return f"/p/{self.entry.slug}"

    def can(self, role: str) -> bool:
        return role_at_least(self.role, role)


def project_access(min_role: str) -> Callable[..., ProjectContext]:
    """A dependency giving the project named by the ``slug`` path parameter, if the user may."""

    def dependency(slug: str, request: Request, session: SignedIn) -> ProjectContext:
        state = state_of(request)
        try:
            entry = state.store.project(slug)
        except NotFoundError:
            raise HTTPException(404, f"no project {slug!r} here") from None
        role = state.store.role(session.user, entry)
        if role is None:
            raise HTTPException(404, f"no project {slug!r} here")
        if not role_at_least(role, min_role):
            raise HTTPException(403, f"this needs the {min_role} role in this project (you are a {role})")
        request.state.project_ctx = ctx = ProjectContext(
            entry=entry, role=role, session=session, project=state.open_project(entry, session.user.username))
        return ctx

    return dependency


as_viewer = project_access("viewer")
as_reviewer = project_access("reviewer")
as_owner = project_access("owner")
#: Route parameter types: the project, if the signed-in user has at least this role in it.
Viewer = Annotated[ProjectContext, Depends(as_viewer)]
Reviewer = Annotated[ProjectContext, Depends(as_reviewer)]
Owner = Annotated[ProjectContext, Depends(as_owner)]


def start_job(request: Request, ctx: ProjectContext, kind: str, title: str, function: JobFunction) -> Response:
    """Run ``function(project, progress)`` in the background; answer with the job's progress
    (a fragment for htmx, else a redirect to the job's page)."""
    state = state_of(request)
    job = state.jobs.submit(project_slug=ctx.slug, project_path=ctx.entry.path, user=ctx.user.username,
                            kind=kind, title=title, function=function)
    if is_htmx(request):
        return render(request, "project/_job.html", job=state.jobs.snapshot(job))
    return redirect(f"{ctx.base}/jobs/{job.id}", request)


# -- flash messages and pages ------------------------------------------------------------------


def flash(response: Response, request: Request, message: str, kind: str = "info") -> Response:
    """Show ``message`` on the next page (a signed, short-lived cookie)."""
    signer = state_of(request).flash_signer
    response.set_cookie(FLASH_COOKIE, signer.dumps([kind, message[:2000]]), max_age=60, httponly=True,
                        samesite="lax", secure=state_of(request).config.secure_cookies, path="/")
    return response


def redirect(url: str, request: Request, message: str | None = None, kind: str = "info") -> Response:
    """A 303 redirect (an ``HX-Redirect`` for htmx requests) with an optional flash message."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if message:
        flash(response, request, message, kind)
    return response


def _format_time(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["when"] = _format_time
    templates.env.globals["sections"] = PROJECT_SECTIONS
    return templates


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    state = state_of(request)
    session = current_session(request)
    flashed = None
    raw = request.cookies.get(FLASH_COOKIE)
    if raw:
        try:
            kind, message = state.flash_signer.loads(raw)
            flashed = {"kind": str(kind), "message": str(message)}
        except (BadSignature, ValueError, TypeError):
            flashed = None
    csrf = session.csrf_token if session is not None else pre_session_token(request)
    response = state.templates.TemplateResponse(request, template, {
        "user": session.user if session else None,
        "csrf_token": csrf,
        "flashed": flashed,
        "ctx": getattr(request.state, "project_ctx", None),
        "workspace_title": state.config.title,
        **context,
    }, status_code=status_code)
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/")
    new_pre = getattr(request.state, "new_pre_csrf", None)
    if new_pre:
        response.set_cookie(PRE_CSRF_COOKIE, new_pre, httponly=True, samesite="lax",
                            secure=state.config.secure_cookies, path="/")
    return response
