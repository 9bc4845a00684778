"""The workspace: accounts, sessions, the projects a team works on and who may do what in each.

A workspace is a directory holding ``workspace.db`` (SQLite, this module's schema) and, under
``projects/``, the projects created from the web pages. Projects living elsewhere can be
registered too (their absolute path is stored). The review data itself stays in each project's
own database; the workspace only knows accounts, memberships, sessions and preferences.

Roles are per project:

* ``viewer``: reads everything (progress, records, PRISMA, exports, audit); changes nothing;
* ``reviewer``: also screens (decides, undoes their own decisions, chooses their AI panel);
* ``owner``: also edits the question and criteria, imports, reviews duplicates, runs the AI
  assessments and manages the project's members.

A workspace administrator (the account made on first start, and any account an administrator
marks so) creates accounts; anyone signed in can create a project and is its owner.

Passwords are stored as argon2id hashes; sessions are random tokens of which only a SHA-256 is
stored, so a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection, Engine

from leads.errors import LeadsError, NotFoundError

__all__ = [
    "ROLES",
    "ExtractionPlan",
    "Membership",
    "OutcomeSetting",
    "ProjectEntry",
    "Session",
    "User",
    "WorkspaceError",
    "WorkspaceStore",
    "extraction_plan",
    "outcome_setting",
    "role_at_least",
    "set_extraction_plan",
    "slugify",
]

SCHEMA_VERSION = 1
DATABASE_FILE = "workspace.db"
ROLES: tuple[str, ...] = ("viewer", "reviewer", "owner")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SESSION_IDLE_S = 8 * 3600
SESSION_MAX_S = 7 * 24 * 3600
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES = 10

metadata = sa.MetaData()

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(256)),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("password_changed_at", sa.Float, nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
)

memberships = sa.Table(
    "memberships", metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_by", sa.String(64)),
    sa.Column("added_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)

preferences = sa.Table(
    "preferences", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("actor", sa.String(64)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("project_id", sa.Integer),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_events_action_actor", "action", "actor"),
)


class WorkspaceError(LeadsError):
    """A workspace operation cannot be done as asked (the message says why, for the page)."""


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` grants what ``needed`` does (viewer < reviewer < owner)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def slugify(text: str) -> str:
    """A URL- and file-name-safe short name: lower-case ASCII letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:48].strip("-") or "project"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str | None
    is_admin: bool
    active: bool

    @property
    def label(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    token_hash: str


@dataclass(frozen=True)
class ProjectEntry:
    id: int
    slug: str
    path: Path
    name: str


@dataclass(frozen=True)
class Membership:
    project: ProjectEntry
    user: User
    role: str


def _user(row: Any) -> User:
    return User(id=int(row.id), username=row.username, display_name=row.display_name,
                is_admin=bool(row.is_admin), active=bool(row.active))


def _project(row: Any) -> ProjectEntry:
    return ProjectEntry(id=int(row.id), slug=row.slug, path=Path(row.path), name=row.name)


class WorkspaceStore:
    """The workspace database. Thread-safe: every method opens its own transaction."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DATABASE_FILE
        self.engine: Engine = sa.create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 30,
                                                                                    "check_same_thread": False})

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        self._hasher = PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._lock = threading.Lock()
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(found) > SCHEMA_VERSION:
                raise WorkspaceError(f"{self.path} was written by a newer leads (workspace schema {found}); "
                                     "upgrade leads to open it")
            if conn.execute(sa.select(meta.c.value).where(meta.c.key == "secret")).scalar() is None:
                conn.execute(sa.insert(meta).values(key="secret", value=secrets.token_hex(32)))

    def close(self) -> None:
        self.engine.dispose()

    def secret(self) -> str:
        """The workspace's random secret (signs short-lived cookies such as flash messages)."""
        with self.engine.connect() as conn:
            return str(conn.execute(sa.select(meta.c.value).where(meta.c.key == "secret")).scalar_one())

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- events ------------------------------------------------------------------------------

    def log(self, actor: str | None, action: str, detail: dict[str, Any] | None = None, *,
            project_id: int | None = None, conn: Connection | None = None) -> None:
        values = {"actor": actor, "action": action, "project_id": project_id,
                  "detail": json.dumps(detail or {}, ensure_ascii=False), "created_at": time.time()}
        if conn is not None:
            conn.execute(sa.insert(events).values(**values))
            return
        with self._tx() as own:
            own.execute(sa.insert(events).values(**values))

    def events(self, *, project_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if project_id is not None:
            query = query.where(events.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    # -- users -------------------------------------------------------------------------------

    def user_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise WorkspaceError(f"the password must have at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise WorkspaceError(f"the password must have at most {MAX_PASSWORD} characters")

    def create_user(self, username: str, password: str, *, display_name: str | None = None,
                    is_admin: bool = False, created_by: str | None = None,
                    only_if_first: bool = False) -> User:
        """Create an account. ``only_if_first`` refuses unless the workspace has no account yet
        (the first-start page), checked in the same transaction as the insert."""
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise WorkspaceError("a user name is 1-64 characters: lower-case letters, digits, '.', '_' "
                                 "or '-', starting with a letter or digit")
        self._check_password(password)
        password_hash = self._hasher.hash(password)
        now = time.time()
        with self._lock, self._tx() as conn:
            if only_if_first and conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one():
                raise WorkspaceError("the workspace already has an administrator; sign in instead")
            if conn.execute(sa.select(users.c.id).where(users.c.username == name)).first():
                raise WorkspaceError(f"the user name {name!r} is taken")
            uid = int(conn.execute(sa.insert(users).values(
                username=name, display_name=(display_name or "").strip() or None, password_hash=password_hash,
                is_admin=is_admin, active=True, created_at=now, password_changed_at=now)).inserted_primary_key[0])  # type: ignore[index]
            self.log(created_by or name, "user-create", {"username": name, "admin": is_admin}, conn=conn)
        return User(id=uid, username=name, display_name=(display_name or "").strip() or None,
                    is_admin=is_admin, active=True)

    def user(self, username: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username.strip().lower())).first()
        if row is None:
            raise NotFoundError(f"no user {username!r} in this workspace")
        return _user(row)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.username))]

    def recent_failures(self, username: str) -> int:
        since = time.time() - LOGIN_WINDOW_S
        with self.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(events).where(
                    events.c.action == "login-failed", events.c.actor == username, events.c.created_at >= since)
            ).scalar_one())

    def authenticate(self, username: str, password: str) -> User:
        """The account if the password is right; raises :class:`WorkspaceError` otherwise (the
        same message whether the name or the password was wrong)."""
        name = username.strip().lower()[:64]
        if self.recent_failures(name) >= LOGIN_MAX_FAILURES:
            raise WorkspaceError("too many failed sign-ins for this account; wait 15 minutes")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == name)).first()
        stored = row.password_hash if row is not None else self._dummy_hash
        try:
            self._hasher.verify(stored, password)
            ok = row is not None and bool(row.active)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            self.log(name, "login-failed")
            raise WorkspaceError("wrong user name or password")
        if self._hasher.check_needs_rehash(row.password_hash):
            with self._tx() as tx:
                tx.execute(sa.update(users).where(users.c.id == row.id)
                           .values(password_hash=self._hasher.hash(password)))
        return _user(row)

    def set_password(self, username: str, password: str, *, by: str) -> None:
        """Set a new password; every session of the account ends."""
        user = self.user(username)
        self._check_password(password)
        with self._tx() as conn:
            conn.execute(sa.update(users).where(users.c.id == user.id).values(
                password_hash=self._hasher.hash(password), password_changed_at=time.time()))
            conn.execute(sa.delete(sessions).where(sessions.c.user_id == user.id))
            self.log(by, "password-set", {"username": user.username}, conn=conn)

    def set_user_flags(self, username: str, *, by: str, is_admin: bool | None = None,
                       active: bool | None = None) -> None:
        user = self.user(username)
        values: dict[str, Any] = {}
        if is_admin is not None:
            values["is_admin"] = is_admin
        if active is not None:
            values["active"] = active
        if not values:
            return
        with self._lock, self._tx() as conn:
            conn.execute(sa.update(users).where(users.c.id == user.id).values(**values))
            admins = conn.execute(sa.select(sa.func.count()).select_from(users).where(
                users.c.is_admin.is_(True), users.c.active.is_(True))).scalar_one()
            if not admins:
                raise WorkspaceError("the workspace needs at least one active administrator")
            if active is False:
                conn.execute(sa.delete(sessions).where(sessions.c.user_id == user.id))
            self.log(by, "user-update", {"username": user.username, **values}, conn=conn)

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user: User) -> tuple[str, str]:
        """A new session; returns (cookie token, CSRF token). Only the token's hash is stored."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self._tx() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.last_seen < now - SESSION_IDLE_S))
            conn.execute(sa.insert(sessions).values(token_hash=_hash_token(token), user_id=user.id,
                                                    csrf_token=csrf, created_at=now, last_seen=now))
            self.log(user.username, "login", conn=conn)
        return token, csrf

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie token, or ``None`` (unknown, expired, inactive account)."""
        if not token or len(token) > 200:
            return None
        digest = _hash_token(token)
        now = time.time()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sessions.c.csrf_token, sessions.c.created_at, sessions.c.last_seen, users)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.token_hash == digest)
            ).first()
        if row is None:
            return None
        if not row.active or now - row.last_seen > SESSION_IDLE_S or now - row.created_at > SESSION_MAX_S:
            self.end_session(token)
            return None
        if now - row.last_seen > 60:
            with self._tx() as conn:
                conn.execute(sa.update(sessions).where(sessions.c.token_hash == digest).values(last_seen=now))
        return Session(user=_user(row), csrf_token=row.csrf_token, token_hash=digest)

    def end_session(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.token_hash == _hash_token(token)))

    # -- projects and memberships --------------------------------------------------------------

    def register_project(self, path: str | Path, name: str, *, by: str | None = None,
                         slug: str | None = None) -> ProjectEntry:
        """Add a project directory to the workspace (idempotent for a path already there)."""
        resolved = Path(path).resolve()
        with self._lock, self._tx() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.path == str(resolved))).first()
            if row is not None:
                return _project(row)
            base = slugify(slug or name)
            candidate, n = base, 2
            while conn.execute(sa.select(projects.c.id).where(projects.c.slug == candidate)).first():
                candidate, n = f"{base}-{n}", n + 1
            pid = int(conn.execute(sa.insert(projects).values(
                slug=candidate, path=str(resolved), name=name, created_by=by,
                created_at=time.time())).inserted_primary_key[0])  # type: ignore[index]
            self.log(by, "project-register", {"slug": candidate, "path": str(resolved)}, project_id=pid, conn=conn)
        return ProjectEntry(id=pid, slug=candidate, path=resolved, name=name)

    def projects(self) -> list[ProjectEntry]:
        with self.engine.connect() as conn:
            return [_project(r) for r in conn.execute(sa.select(projects).order_by(projects.c.name))]

    def project(self, slug: str) -> ProjectEntry:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.slug == slug)).first()
        if row is None:
            raise NotFoundError(f"no project {slug!r} in this workspace")
        return _project(row)

    def role(self, user: User, project: ProjectEntry) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(memberships.c.role).where(
                memberships.c.user_id == user.id, memberships.c.project_id == project.id)).scalar()

    def user_projects(self, user: User) -> list[tuple[ProjectEntry, str]]:
        query = (sa.select(projects, memberships.c.role)
                 .select_from(projects.join(memberships, memberships.c.project_id == projects.c.id))
                 .where(memberships.c.user_id == user.id).order_by(projects.c.name))
        with self.engine.connect() as conn:
            return [(_project(r), r.role) for r in conn.execute(query)]

    def members(self, project: ProjectEntry) -> list[Membership]:
        query = (sa.select(users, memberships.c.role)
                 .select_from(users.join(memberships, memberships.c.user_id == users.c.id))
                 .where(memberships.c.project_id == project.id).order_by(users.c.username))
        with self.engine.connect() as conn:
            return [Membership(project=project, user=_user(r), role=r.role) for r in conn.execute(query)]

    def set_member(self, project: ProjectEntry, username: str, role: str | None, *, by: str) -> None:
        """Give ``username`` a role in the project, change it, or (``role=None``) remove them.
        A project always keeps at least one owner."""
        if role is not None and role not in ROLES:
            raise WorkspaceError(f"a role is one of {', '.join(ROLES)} (got {role!r})")
        user = self.user(username)
        with self._lock, self._tx() as conn:
            where = (memberships.c.project_id == project.id) & (memberships.c.user_id == user.id)
            conn.execute(sa.delete(memberships).where(where))
            if role is not None:
                conn.execute(sa.insert(memberships).values(project_id=project.id, user_id=user.id, role=role,
                                                           added_by=by, added_at=time.time()))
            owners = conn.execute(sa.select(sa.func.count()).select_from(memberships).where(
                memberships.c.project_id == project.id, memberships.c.role == "owner")).scalar_one()
            if not owners:
                raise WorkspaceError("a project needs at least one owner")
            self.log(by, "member-set", {"username": user.username, "role": role},
                     project_id=project.id, conn=conn)

    def orphan_projects(self) -> list[ProjectEntry]:
        """Projects nobody belongs to (registered from the command line before any account)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(projects).where(
                ~projects.c.id.in_(sa.select(memberships.c.project_id))))
            return [_project(r) for r in rows]

    # -- preferences -------------------------------------------------------------------------

    def preference(self, user: User, project: ProjectEntry, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(preferences.c.value).where(
                preferences.c.user_id == user.id, preferences.c.project_id == project.id,
                preferences.c.key == key)).scalar()
        return default if value is None else json.loads(value)

    def set_preference(self, user: User, project: ProjectEntry, key: str, value: Any) -> None:
        with self._tx() as conn:
            conn.execute(sa.delete(preferences).where(
                preferences.c.user_id == user.id, preferences.c.project_id == project.id,
                preferences.c.key == key))
            conn.execute(sa.insert(preferences).values(user_id=user.id, project_id=project.id, key=key,
                                                       value=json.dumps(value)))
            self.log(user.username, "preference", {key: value}, project_id=project.id, conn=conn)


# -- project settings kept in the project (dual review) ----------------------------------------------

DUAL_REVIEW_KEY = "dual_review"
DUAL_STAGES: tuple[str, ...] = ("title_abstract", "full_text")
SECOND_REVIEWERS: tuple[str, ...] = ("human", "ai")


@dataclass(frozen=True)
class DualSetting:
    """Dual screening at one stage: on or off, who the second reviewer is (another person or the
    AI), and who besides the owners may resolve conflicts."""

    enabled: bool = False
    second: str = "human"
    resolvers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "second": self.second, "resolvers": list(self.resolvers)}


def dual_settings(project: Any) -> dict[str, DualSetting]:
    """The project's dual-review setting per stage (off where never set).

    Kept in the project's own ``project_info`` table (key ``dual_review``, JSON), not in the
    workspace: the setting is part of the review's protocol and travels with the project.
    """
    from leads.project import schema as t

    with project.engine.connect() as conn:
        raw = conn.execute(sa.select(t.project_info.c.value)
                           .where(t.project_info.c.key == DUAL_REVIEW_KEY)).scalar()
    data: dict[str, Any] = {}
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise WorkspaceError(f"{project.location}: project_info {DUAL_REVIEW_KEY!r} is not JSON: {exc}") from None
        data = loaded if isinstance(loaded, dict) else {}
    out: dict[str, DualSetting] = {}
    for stage in DUAL_STAGES:
        entry = data.get(stage) or {}
        second = str(entry.get("second") or "human")
        out[stage] = DualSetting(enabled=bool(entry.get("enabled")),
                                 second=second if second in SECOND_REVIEWERS else "human",
                                 resolvers=tuple(str(r) for r in entry.get("resolvers") or ()))
    return out


def set_dual_setting(project: Any, stage: str, setting: DualSetting) -> None:
    """Store one stage's dual-review setting in the project, and log the change in its activity."""
    from leads.project import schema as t

    if stage not in DUAL_STAGES:
        raise WorkspaceError(f"a screening stage is one of {', '.join(DUAL_STAGES)} (got {stage!r})")
    if setting.second not in SECOND_REVIEWERS:
        raise WorkspaceError(f"the second reviewer is one of {', '.join(SECOND_REVIEWERS)} (got {setting.second!r})")
    current = {k: v.as_dict() for k, v in dual_settings(project).items()}
    current[stage] = setting.as_dict()
    value = json.dumps(current, sort_keys=True)
    with project.engine.begin() as conn:
        conn.execute(sa.delete(t.project_info).where(t.project_info.c.key == DUAL_REVIEW_KEY))
        conn.execute(sa.insert(t.project_info).values(key=DUAL_REVIEW_KEY, value=value))
        project.log("dual-review", {"stage": stage, **setting.as_dict()}, conn=conn)


# -- what the AI extraction reads (kept in the project) ----------------------------------------------

EXTRACTION_PLAN_KEY = "extraction_plan"
OUTCOME_TYPES: tuple[str, ...] = ("auto", "binary", "continuous")
MAX_OUTCOME = 246  # extractions.field is VARCHAR(255) and results are stored as "results: OUTCOME"
MAX_ARM = 300
MAX_PLAN_FIELD = 200
MAX_PLAN_DESCRIPTION = 1000
MAX_PLAN_OUTCOMES = 50
MAX_PLAN_FIELDS = 40


@dataclass(frozen=True)
class OutcomeSetting:
    """An outcome whose results the AI extraction reads, for one intervention/comparator pair;
    ``outcome_type`` ``auto`` lets the task decide between binary and continuous."""

    outcome: str
    intervention: str
    comparator: str
    outcome_type: str = "auto"

    def as_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome, "intervention": self.intervention, "comparator": self.comparator,
                "outcome_type": self.outcome_type}

    def for_run(self) -> dict[str, str | None]:
        """The object :func:`leads.extract.project.run_extraction` takes in ``outcomes``."""
        return {**self.as_dict(), "outcome_type": None if self.outcome_type == "auto" else self.outcome_type}


@dataclass(frozen=True)
class ExtractionPlan:
    """The outcomes and the extra study characteristics (``name: description``) the project's AI
    extraction runs read, on top of the built-in fields."""

    outcomes: tuple[OutcomeSetting, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": [o.as_dict() for o in self.outcomes],
                "fields": [{"name": n, "description": d} for n, d in self.fields]}

    def fields_dict(self) -> dict[str, str]:
        return dict(self.fields)

    def with_outcome(self, outcome: OutcomeSetting) -> ExtractionPlan:
        key = outcome.outcome.casefold()
        if any(o.outcome.casefold() == key for o in self.outcomes):
            raise WorkspaceError(f"outcome {outcome.outcome!r} is already defined: results are stored per "
                                 "outcome name, so remove it first to change it")
        if len(self.outcomes) >= MAX_PLAN_OUTCOMES:
            raise WorkspaceError(f"at most {MAX_PLAN_OUTCOMES} outcomes can be defined")
        return ExtractionPlan((*self.outcomes, outcome), self.fields)

    def without_outcome(self, name: str) -> ExtractionPlan:
        key = " ".join(name.split()).casefold()
        kept = tuple(o for o in self.outcomes if o.outcome.casefold() != key)
        if len(kept) == len(self.outcomes):
            raise WorkspaceError(f"no outcome {name!r} is defined")
        return ExtractionPlan(kept, self.fields)

    def with_field(self, name: str, description: str) -> ExtractionPlan:
        """The plan with the field added, or its description replaced when it exists."""
        clean, text = _plan_field(name, description)
        others = tuple((n, d) for n, d in self.fields if n.casefold() != clean.casefold())
        if len(others) >= MAX_PLAN_FIELDS:
            raise WorkspaceError(f"at most {MAX_PLAN_FIELDS} fields can be defined")
        return ExtractionPlan(self.outcomes, (*others, (clean, text)))

    def without_field(self, name: str) -> ExtractionPlan:
        key = " ".join(name.split()).casefold()
        kept = tuple((n, d) for n, d in self.fields if n.casefold() != key)
        if len(kept) == len(self.fields):
            raise WorkspaceError(f"no field {name!r} is defined")
        return ExtractionPlan(self.outcomes, kept)


def outcome_setting(outcome: str, intervention: str, comparator: str, outcome_type: str = "auto") -> OutcomeSetting:
    """A checked outcome (whitespace collapsed); the error names what is wrong."""
    values = {"outcome": " ".join(str(outcome or "").split()),
              "intervention": " ".join(str(intervention or "").split()),
              "comparator": " ".join(str(comparator or "").split())}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise WorkspaceError(f"an outcome needs {', '.join(missing)}")
    if len(values["outcome"]) > MAX_OUTCOME:
        raise WorkspaceError(f"an outcome name has at most {MAX_OUTCOME} characters")
    for key in ("intervention", "comparator"):
        if len(values[key]) > MAX_ARM:
            raise WorkspaceError(f"the {key} has at most {MAX_ARM} characters")
    kind = (outcome_type or "auto").strip().lower()
    if kind not in OUTCOME_TYPES:
        raise WorkspaceError(f"an outcome type is one of {', '.join(OUTCOME_TYPES)} (got {outcome_type!r})")
    return OutcomeSetting(outcome_type=kind, **values)


def _plan_field(name: str, description: str) -> tuple[str, str]:
    clean = " ".join(str(name or "").split())
    text = " ".join(str(description or "").split())
    if not clean or len(clean) > MAX_PLAN_FIELD:
        raise WorkspaceError(f"a field name has 1 to {MAX_PLAN_FIELD} characters")
    if not text:
        raise WorkspaceError(f"field {clean!r}: describe what to extract (the AI reads the description)")
    if len(text) > MAX_PLAN_DESCRIPTION:
        raise WorkspaceError(f"field {clean!r}: a description has at most {MAX_PLAN_DESCRIPTION} characters")
    return clean, text


def extraction_plan(project: Any) -> ExtractionPlan:
    """The project's extraction plan (empty where never set).

    Kept in the project's ``project_info`` table (key ``extraction_plan``, JSON), like the
    dual-review setting: what is extracted is part of the review's protocol.
    """
    from leads.project import schema as t

    with project.engine.connect() as conn:
        raw = conn.execute(sa.select(t.project_info.c.value)
                           .where(t.project_info.c.key == EXTRACTION_PLAN_KEY)).scalar()
    if not raw:
        return ExtractionPlan()
    where = f"{project.location}: project_info {EXTRACTION_PLAN_KEY!r}"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WorkspaceError(f"{where} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{where} is not a JSON object")
    try:
        outcomes = tuple(outcome_setting(o.get("outcome", ""), o.get("intervention", ""), o.get("comparator", ""),
                                         o.get("outcome_type") or "auto") for o in data.get("outcomes") or [])
        fields = tuple(_plan_field(f.get("name", ""), f.get("description", "")) for f in data.get("fields") or [])
    except (WorkspaceError, AttributeError) as exc:
        raise WorkspaceError(f"{where}: {exc}") from None
    return ExtractionPlan(outcomes, fields)


def set_extraction_plan(project: Any, plan: ExtractionPlan, change: dict[str, Any]) -> None:
    """Store the plan in the project and log ``change`` (what was done) in its activity."""
    from leads.project import schema as t

    value = json.dumps(plan.as_dict(), sort_keys=True, ensure_ascii=False)
    with project.engine.begin() as conn:
        conn.execute(sa.delete(t.project_info).where(t.project_info.c.key == EXTRACTION_PLAN_KEY))
        conn.execute(sa.insert(t.project_info).values(key=EXTRACTION_PLAN_KEY, value=value))
        project.log("extraction-plan", change, conn=conn)
