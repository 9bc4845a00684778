"""Signing in and out, the first-start page, one's account, and the administrator's user list."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from leads.errors import NotFoundError
from leads.web.deps import (
    SESSION_COOKIE,
    SignedIn,
    current_session,
    redirect,
    render,
    state_of,
)
from leads.web.store import Session, WorkspaceError

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no ``//``) may be a post-login target."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _sign_in(request: Request, username: str, password: str, target: str) -> Response:
    state = state_of(request)
    user = state.store.authenticate(username, password)
    token, _csrf = state.store.create_session(user)
    response = redirect(_safe_next(target), request)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=state.config.secure_cookies, path="/")
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    state = state_of(request)
    if state.store.user_count() == 0:
        return redirect("/setup", request)
    if current_session(request) is not None:
        return redirect(_safe_next(next), request)
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login")
def login(request: Request, username: str = Form(...), password: str = Form(...),
          next: str = Form("/")) -> Response:
    try:
        return _sign_in(request, username, password, next)
    except WorkspaceError as exc:
        return render(request, "login.html", status_code=401, next=_safe_next(next), error=str(exc),
                      username=username)


@router.post("/logout")
def logout(request: Request, session: SignedIn) -> Response:
    state = state_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        state.store.end_session(token)
    state.store.log(session.user.username, "logout")
    response = redirect("/login", request, "You are signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/setup")
def setup_page(request: Request) -> Response:
    if state_of(request).store.user_count() > 0:
        return redirect("/login", request)
    return render(request, "setup.html")


@router.post("/setup")
def setup(request: Request, setup_code: str = Form(""), username: str = Form(...), password: str = Form(...),
          password_again: str = Form(...), display_name: str = Form("")) -> Response:
    state = state_of(request)
    expected = state.config.setup_token or ""
    error = None
    if state.store.user_count() > 0:
        return redirect("/login", request)
    if not expected or not hmac.compare_digest(expected.encode(), setup_code.strip().encode()):
        error = "the setup code is wrong: `leads serve` printed it when it started"
    elif password != password_again:
        error = "the two passwords differ"
    if error is None:
        try:
            user = state.store.create_user(username, password, display_name=display_name, is_admin=True,
                                           only_if_first=True)
        except WorkspaceError as exc:
            error = str(exc)
        else:
            for entry in state.store.orphan_projects():
                state.store.set_member(entry, user.username, "owner", by=user.username)
            return _sign_in(request, username, password, "/")
    return render(request, "setup.html", status_code=400, error=error, username=username,
                  display_name=display_name)


@router.get("/account")
def account_page(request: Request, session: SignedIn) -> Response:
    return render(request, "account.html")


@router.post("/account/password")
def change_password(request: Request, session: SignedIn, current: str = Form(...), password: str = Form(...),
                    password_again: str = Form(...)) -> Response:
    state = state_of(request)
    user = session.user
    try:
        state.store.authenticate(user.username, current)
    except WorkspaceError:
        return render(request, "account.html", status_code=400, error="the current password is wrong")
    if password != password_again:
        return render(request, "account.html", status_code=400, error="the two new passwords differ")
    try:
        state.store.set_password(user.username, password, by=user.username)
    except WorkspaceError as exc:
        return render(request, "account.html", status_code=400, error=str(exc))
    return _sign_in(request, user.username, password, "/account")


def _admin(session: Session) -> None:
    if not session.user.is_admin:
        raise HTTPException(403, "only a workspace administrator manages accounts")


@router.get("/admin/users")
def users_page(request: Request, session: SignedIn) -> Response:
    _admin(session)
    return render(request, "admin_users.html", users=state_of(request).store.users())


@router.post("/admin/users")
def create_user(request: Request, session: SignedIn, username: str = Form(...), password: str = Form(...),
                display_name: str = Form(""), is_admin: bool = Form(False)) -> Response:
    _admin(session)
    try:
        user = state_of(request).store.create_user(username, password, display_name=display_name,
                                                   is_admin=is_admin, created_by=session.user.username)
    except WorkspaceError as exc:
        return redirect("/admin/users", request, str(exc), "error")
    return redirect("/admin/users", request, f"Account {user.username} created.")


@router.post("/admin/users/{username}")
def update_user(request: Request, session: SignedIn, username: str, action: str = Form(...), password: str = Form("")) -> Response:
    _admin(session)
    store = state_of(request).store
    try:
        if action == "password":
            store.set_password(username, password, by=session.user.username)
            message = f"New password set for {username}; their sessions ended."
        elif action in ("make-admin", "revoke-admin"):
            store.set_user_flags(username, is_admin=action == "make-admin", by=session.user.username)
            message = f"{username} updated."
        elif action in ("disable", "enable"):
            store.set_user_flags(username, active=action == "enable", by=session.user.username)
            message = f"{username} {'enabled' if action == 'enable' else 'disabled'}."
        else:
            raise HTTPException(400, f"unknown action {action!r}")
    except (WorkspaceError, NotFoundError) as exc:
        return redirect("/admin/users", request, str(exc), "error")
    return redirect("/admin/users", request, message)
