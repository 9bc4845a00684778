"""Accounts, sessions and request protection: first start, sign in/out, argon2 hashes, cookie
flags, CSRF on every state change, host and origin checks, throttling, administrator pages."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from leads.web import create_app
from leads.web.store import LOGIN_MAX_FAILURES, WorkspaceStore, users

from .conftest import PASSWORD, SETUP_CODE, Client, csrf_of, make_user


def _fresh(tmp_path: Path) -> FastAPI:
    return create_app(tmp_path / "ws", allowed_hosts=["testserver"], setup_token=SETUP_CODE)


def test_first_start_needs_the_setup_code_and_creates_the_administrator(tmp_path: Path) -> None:
    app = _fresh(tmp_path)
    client = TestClient(app, follow_redirects=False)
    assert client.get("/").headers["location"] == "/login"
    assert client.get("/login").headers["location"] == "/setup"
    page = client.get("/setup")
    token = csrf_of(page.text)
    form = {"csrf_token": token, "username": "alice", "password": PASSWORD, "password_again": PASSWORD}
    wrong = client.post("/setup", data={**form, "setup_code": "guess"})
    assert wrong.status_code == 400 and "setup code is wrong" in wrong.text
    assert app.state.web.store.user_count() == 0
    mismatch = client.post("/setup", data={**form, "setup_code": SETUP_CODE, "password_again": "other password"})
    assert mismatch.status_code == 400 and "differ" in mismatch.text
    done = client.post("/setup", data={**form, "setup_code": SETUP_CODE})
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = next(v for k, v in done.headers.multi_items() if k == "set-cookie" and v.startswith("leads_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.get("/").status_code == 200
    user = app.state.web.store.user("alice")
    assert user.is_admin
    # The setup page is closed now, also for a direct POST.
    assert client.get("/setup").headers["location"] == "/login"
    again = client.post("/setup", data={**form, "username": "mallory", "setup_code": SETUP_CODE},
                        headers={"X-CSRF-Token": csrf_of(client.get("/").text)})
    assert again.status_code == 303 and app.state.web.store.user_count() == 1
    app.state.web.close()


def test_passwords_are_argon2_hashes_never_plain_text(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path / "ws")
    store.create_user("alice", PASSWORD)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    raw = (tmp_path / "ws" / "workspace.db").read_bytes()
    assert PASSWORD.encode() not in raw
    store.close()


def test_sign_in_wrong_password_and_unknown_user_look_the_same(workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    bad = client.post("/login", data={"csrf_token": token, "username": "alice", "password": "wrong password"})
    unknown = client.post("/login", data={"csrf_token": token, "username": "nobody", "password": "wrong password"})
    assert bad.status_code == unknown.status_code == 401
    assert "wrong user name or password" in bad.text and "wrong user name or password" in unknown.text
    assert "leads_session" not in client.cookies


def test_sign_out_ends_the_session_even_for_a_copied_cookie(alice: Client) -> None:
    stolen = alice.http.cookies.get("leads_session")
    assert stolen is not None
    assert alice.get("/").status_code == 200
    out = alice.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = TestClient(alice.http.app, follow_redirects=False)
    replay.cookies.set("leads_session", stolen)
    assert replay.get("/").status_code == 303


def test_every_state_change_needs_the_csrf_token(alice: Client, slug: str) -> None:
    http = alice.http
    target = f"/p/{slug}/question"
    missing = http.post(target, data={"title": "x"})
    assert missing.status_code == 403 and "security token" in missing.text
    wrong = http.post(target, data={"title": "x", "csrf_token": "forged"})
    assert wrong.status_code == 403
    by_header = http.post(target, data={"title": "A question"}, headers={"X-CSRF-Token": alice.token})
    assert by_header.status_code == 303
    cross = http.post(target, data={"title": "x", "csrf_token": alice.token}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.text
    logout = http.post("/logout")
    assert logout.status_code == 403  # signing out is a state change too


def test_the_sign_in_form_has_its_own_csrf_token(workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert "leads_session" not in client.cookies


def test_unknown_host_headers_are_refused(workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    assert client.get("/login", headers={"Host": "attacker.example"}).status_code == 400


def test_security_headers(alice: Client) -> None:
    response = alice.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_repeated_failures_lock_the_account_for_a_while(workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    for _ in range(LOGIN_MAX_FAILURES):
        client.post("/login", data={"csrf_token": token, "username": "alice", "password": "not it at all"})
    locked = client.post("/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert locked.status_code == 401 and "too many failed sign-ins" in locked.text


def test_post_login_target_stays_on_this_site(workspace: tuple[FastAPI, Path]) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/account", "/account")):
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD,
                                               "next": target})
        assert response.headers["location"] == expected
        client.cookies.clear()


def test_protected_pages_send_to_sign_in_with_the_way_back(workspace: tuple[FastAPI, Path], slug: str) -> None:
    app, _ = workspace
    client = TestClient(app, follow_redirects=False)
    response = client.get(f"/p/{slug}/screen")
    assert response.status_code == 303 and response.headers["location"] == f"/login?next=/p/{slug}/screen"
    htmx = client.get(f"/p/{slug}/screen", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"].startswith("/login")


def test_accounts_are_managed_by_administrators_only(workspace: tuple[FastAPI, Path], alice: Client) -> None:
    app, _ = workspace
    bob = make_user(app, "bob", None)
    assert bob.get("/admin/users").status_code == 403
    assert bob.post("/admin/users", {"username": "eve", "password": PASSWORD}).status_code == 403
    created = alice.post("/admin/users", {"username": "carol", "password": PASSWORD, "display_name": "Carol"})
    assert created.status_code == 303
    assert app.state.web.store.user("carol").display_name == "Carol"
    short = alice.post("/admin/users", {"username": "dave", "password": "short"})
    assert short.status_code == 303
    assert "at least 8 characters" in alice.get("/admin/users").text
    # Disabling an account ends its sessions at once.
    assert alice.post("/admin/users/bob", {"action": "disable"}).status_code == 303
    assert bob.get("/").status_code == 303
    # The last administrator cannot revoke themselves.
    alice.post("/admin/users/alice", {"action": "revoke-admin"})
    assert app.state.web.store.user("alice").is_admin


def test_changing_the_password_ends_other_sessions(workspace: tuple[FastAPI, Path], alice: Client) -> None:
    app, _ = workspace
    other = Client(app, "alice")
    other.login()
    new = "a brand new passphrase"
    response = alice.post("/account/password", {"current": PASSWORD, "password": new, "password_again": new})
    assert response.status_code == 303
    assert other.get("/").status_code == 303  # signed out elsewhere
    alice.refresh_token()
    assert alice.get("/").status_code == 200  # this browser got a new session
    fresh = Client(app, "alice")
    fresh.login(new)
