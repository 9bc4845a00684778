"""The FastAPI application of the reviewers' workspace (``create_app``)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeSerializer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from leads.errors import LeadsError, NotFoundError
from leads.project import Project
from leads.web.deps import (
    WebConfig,
    WebState,
    csrf_protect,
    is_htmx,
    make_templates,
    render,
)
from leads.web.jobs import JobManager
from leads.web.online import SearchServices
from leads.web.screening import ClaimBoard
from leads.web.store import WorkspaceStore

__all__ = ["DEFAULT_HOSTS", "create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
DEFAULT_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _register_projects(store: WorkspaceStore, paths: Sequence[str | Path]) -> None:
    """Add projects named on the command line; the first administrator owns those nobody does."""
    for path in paths:
        with Project.open(path) as project:
            name = project.name
        store.register_project(path, name, by="leads serve")
    admins = [u for u in store.users() if u.is_admin and u.active]
    if admins:
        for entry in store.orphan_projects():
            store.set_member(entry, admins[0].username, "owner", by="leads serve")


def create_app(
    workspace: str | Path,
    projects: Sequence[str | Path] = (),
    *,
    projects_root: str | Path | None = None,
    allowed_hosts: Sequence[str] | None = None,
    secure_cookies: bool = False,
    setup_token: str | None = None,
    title: str = "leads workspace",
    corpora: Sequence[str | Path] = (),
    eutils_url: str | None = None,
    ctgov_url: str | None = None,
    search_transport: httpx.BaseTransport | None = None,
    search_rate: float | None = None,
    ncbi_api_key: str | None = None,
    ncbi_email: str | None = None,
) -> FastAPI:
    """The workspace app.

    ``workspace`` is the directory of ``workspace.db`` (accounts, memberships, sessions);
    ``projects`` are project directories to register in it; projects created from the pages go
    under ``projects_root`` (default ``WORKSPACE/projects``). ``allowed_hosts`` are the Host
    headers answered (default: the loopback names, which also stops DNS-rebinding pages from
    reaching the server). While the workspace has no account, the first-start page creates the
    administrator and asks for ``setup_token`` (a random one is made and logged when not given),
    so that nobody else on the machine can claim a fresh workspace first. ``corpora`` are local
    search corpora (``leads corpus build``) the import page may search, besides the ``*.db``
    files in ``WORKSPACE/corpora/``.

    PubMed and ClinicalTrials.gov searches from the import page go to ``eutils_url`` and
    ``ctgov_url`` (default: ``$LEADS_EUTILS_URL``/``$LEADS_CTGOV_URL``, else the public
    services), through ``search_transport`` when given (an :class:`httpx.BaseTransport`), at
    ``search_rate`` requests per second (default: each client's own); ``ncbi_api_key`` and
    ``ncbi_email`` identify the server to NCBI where a project's ``[ncbi]`` settings do not.
    """
    workspace_dir = Path(workspace).resolve()
    store = WorkspaceStore(workspace_dir)
    _register_projects(store, projects)
    if store.user_count() == 0 and setup_token is None:
        setup_token = secrets.token_urlsafe(12)
        log.warning("first start: create the administrator at /setup with the setup code %s", setup_token)
    config = WebConfig(
        workspace=workspace_dir,
        projects_root=Path(projects_root).resolve() if projects_root else workspace_dir / "projects",
        allowed_hosts=list(allowed_hosts or DEFAULT_HOSTS),
        secure_cookies=secure_cookies,
        setup_token=setup_token,
        title=title,
        corpora=[Path(c).resolve() for c in corpora],
        search=SearchServices.from_environment(eutils_url=eutils_url, ctgov_url=ctgov_url,
                                               transport=search_transport, rate=search_rate,
                                               ncbi_api_key=ncbi_api_key, ncbi_email=ncbi_email),
    )
    state = WebState(config=config, store=store, jobs=JobManager(), claims=ClaimBoard(),
                     templates=make_templates(), flash_signer=URLSafeSerializer(store.secret(), salt="flash"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
                  dependencies=[Depends(csrf_protect)])
    app.state.web = state
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.allowed_hosts)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from leads.web.deps import LoginRequired

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = "/login" if target in ("/", "/login") else f"/login?next={_quote(target)}"
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in exc.errors())
        return _error_page(request, 400, f"invalid request ({problems})")

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return _error_page(request, 404, str(exc))

    @app.exception_handler(LeadsError)
    async def leads_error(request: Request, exc: LeadsError) -> Response:
        return _error_page(request, 400, str(exc))

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail), exc.headers)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    from leads.web.routes import auth, dual, extract, outputs, screen, setup
    from leads.web.routes import projects as project_routes

    for module in (auth, project_routes, setup, screen, dual, extract, outputs):
        app.include_router(module.router)
    return app


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _error_page(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    if is_htmx(request):
        return PlainTextResponse(message, status_code=status, headers=dict(headers or {}))
    response = render(request, "error.html", status_code=status, status=status, message=message)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
