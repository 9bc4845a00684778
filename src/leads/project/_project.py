"""A review project: a directory with ``project.toml`` and a database (SQLite, or a PostgreSQL URL)."""

from __future__ import annotations

import datetime as dt
import gc
import getpass
import hashlib
import os
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from leads import __version__
from leads.errors import LeadsError, NotFoundError, ProjectError
from leads.formats import detect_format, get_format, read_records, write_records
from leads.project import schema as t
from leads.records import Record

__all__ = [
    "DuplicateGroup",
    "ImportResult",
    "PrismaCounts",
    "Project",
    "ProjectStatus",
    "StoredRecord",
    "migrate",
]

Stage = Literal["title_abstract", "full_text"]
Label = Literal["include", "exclude", "maybe"]
STAGES: tuple[str, ...] = ("title_abstract", "full_text")
LABELS: tuple[str, ...] = ("include", "exclude", "maybe")
ACTOR_KINDS: tuple[str, ...] = ("human", "ai")
PROJECT_FILE = "project.toml"
DATABASE_FILE = "project.db"
MIGRATIONS = Path(__file__).with_name("migrations")
REGISTER_SOURCES = {"ctgov"}
INSERT_CHUNK = 2000

ProgressCallback = Callable[[int, int | None], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_actor() -> str:
    """The name decisions are recorded under when none is given: ``$LEADS_USER`` or the OS user."""
    name = os.environ.get("LEADS_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> str:
    """Bring the database to the newest schema; returns the revision it is at."""
    with engine.begin() as connection:
        config = _alembic_config(connection)
        command.upgrade(config, "head")
        context = MigrationContext.configure(connection)
        revision = context.get_current_revision()
    return revision or ""


def _schema_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    return head or ""


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ProjectError(
            f"the database driver for {url.split(':', 1)[0]!r} is not installed ({exc.name}); "
            "for PostgreSQL install leads[postgres]"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ProjectError(f"invalid database URL {url!r}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _write_toml(path: Path, data: dict[str, dict[str, Any]]) -> None:
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


@dataclass
class StoredRecord:
    """A record as stored in a project: its row id, the record, and its duplicate group."""

    id: int
    record: Record
    group_id: int | None = None
    is_primary: bool = True


@dataclass
class ImportResult:
    search_id: int
    file_name: str
    format: str
    count: int
    record_ids: list[int]
    sha256: str


@dataclass
class DuplicateGroup:
    """Records judged to be the same study report; ``primary`` is the one kept for screening."""

    id: int
    primary: int
    members: list[int]
    rules: dict[tuple[int, int], str]


@dataclass
class DedupResult:
    new_links: int
    groups: int
    duplicates: int
    seconds: float


@dataclass
class PrismaCounts:
    """The PRISMA 2020 flow numbers (identification, screening, included)."""

    identified_databases: dict[str, int]
    identified_registers: dict[str, int]
    duplicates_removed: int
    records_screened: int
    records_excluded: int
    reports_sought: int
    reports_not_retrieved: int
    reports_assessed: int
    reports_excluded: dict[str, int]
    studies_included: int

    @property
    def identified_total(self) -> int:
        return sum(self.identified_databases.values()) + sum(self.identified_registers.values())


@dataclass
class ProjectStatus:
    name: str
    location: str
    schema_revision: str
    records: int
    unique_records: int
    searches: int
    duplicate_groups: int
    documents: int
    decisions: dict[str, dict[str, int]]
    undecided: dict[str, int]
    ai_decisions: int
    prisma: PrismaCounts
    labels: dict[str, int] = field(default_factory=dict)


class Project:
    """A review project. Open with :meth:`Project.open`, create with :meth:`Project.init`."""

    def __init__(self, url: str, *, path: Path | None, name: str, actor: str | None = None) -> None:
        self.url = url
        self.path = path
        self.name = name
        self.actor = actor or default_actor()
        self.engine = _make_engine(url)
        try:
            self.schema_revision = migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise ProjectError(f"cannot open the project database {url!r}: {exc.orig}") from None

    # -- creation and opening -------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        database_url: str | None = None,
        actor: str | None = None,
    ) -> Project:
        """Create a project directory (``project.toml`` + database) and return it opened."""
        directory = Path(path)
        if (directory / PROJECT_FILE).exists():
            raise ProjectError(f"{directory} is already a leads project")
        if directory.exists() and not directory.is_dir():
            raise ProjectError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        name = name or directory.resolve().name
        config = {
            "project": {"name": name, "created": _now().isoformat(timespec="seconds"),
                        "leads_version": __version__},
            "database": {"url": database_url or f"sqlite:///{DATABASE_FILE}"},
            "engine": {"default": "classic"},
        }
        _write_toml(directory / PROJECT_FILE, config)
        project = cls.open(directory, actor=actor)
        project.ensure_user(project.actor, role="owner")
        project.log("init", {"name": name})
        return project

    @classmethod
    def open(cls, location: str | os.PathLike[str], *, actor: str | None = None) -> Project:
        """Open a project directory, or a database URL (``postgresql://...``, ``sqlite:///...``)."""
        text = str(location)
        if "://" in text:
            return cls(text, path=None, name=text.rsplit("/", 1)[-1], actor=actor)
        directory = Path(text)
        config_path = directory / PROJECT_FILE
        if not config_path.is_file():
            raise ProjectError(f"{directory} is not a leads project (no {PROJECT_FILE}); create one with `leads init`")
        try:
            config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{config_path}: invalid TOML: {exc}") from None
        url = str(config.get("database", {}).get("url", f"sqlite:///{DATABASE_FILE}"))
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url[len("sqlite:///"):]
            url = f"sqlite:///{(directory / relative).resolve()}"
        name = str(config.get("project", {}).get("name", directory.resolve().name))
        return cls(url, path=directory.resolve(), name=name, actor=actor)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self.name!r}, {self.location})"

    @property
    def location(self) -> str:
        return str(self.path) if self.path else self.url

    def config(self) -> dict[str, Any]:
        """The parsed ``project.toml`` (empty for a project opened by URL)."""
        if self.path is None:
            return {}
        return tomllib.loads((self.path / PROJECT_FILE).read_text(encoding="utf-8"))

    # -- users and activity ----------------------------------------------------------------

    def ensure_user(self, name: str, role: str = "reviewer") -> int:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).first()
            if row:
                return int(row.id)
            result = conn.execute(
                sa.insert(t.users).values(name=name, role=role, created_at=_now())
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def log(self, action: str, detail: dict[str, Any] | None = None, *,
            conn: Connection | None = None) -> None:
        """Append a line to the project's activity log (the audit trail of project-level actions)."""
        values = {"actor": self.actor, "action": action, "detail": detail or {}, "created_at": _now()}
        if conn is not None:
            conn.execute(sa.insert(t.activity).values(**values))
            return
        with self.engine.begin() as own:
            own.execute(sa.insert(t.activity).values(**values))

    def activity(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.activity).order_by(t.activity.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    # -- question and criteria (versioned) -----------------------------------------------------

    def set_question(
        self,
        *,
        title: str | None = None,
        population: str | None = None,
        intervention: str | None = None,
        comparison: str | None = None,
        outcome: str | None = None,
        study_design: str | None = None,
    ) -> int:
        """Store a new version of the review question (PICO); returns its version number."""
        with self.engine.begin() as conn:
            version = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.questions.c.version), 0))).scalar_one()) + 1
            conn.execute(sa.insert(t.questions).values(
                version=version, title=title, population=population, intervention=intervention,
                comparison=comparison, outcome=outcome, study_design=study_design,
                created_by=self.actor, created_at=_now()))
            self.log("question", {"version": version}, conn=conn)
        return version

    def question(self) -> dict[str, Any] | None:
        """The current (newest) version of the review question, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.questions).order_by(t.questions.c.version.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def set_criteria(
        self,
        inclusion: Sequence[str] = (),
        exclusion: Sequence[str] = (),
        *,
        pico_elements: Sequence[str | None] | None = None,
        note: str | None = None,
    ) -> int:
        """Store a new version of the eligibility criteria; returns its version number.

        Decisions record the criteria version they were made under.
        """
        items = [("inclusion", text) for text in inclusion] + [("exclusion", text) for text in exclusion]
        if not items:
            raise ProjectError("a criteria set needs at least one inclusion or exclusion criterion")
        if pico_elements is not None and len(pico_elements) != len(items):
            raise ProjectError("pico_elements must have one entry per criterion")
        with self.engine.begin() as conn:
            version = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.criteria_sets.c.version), 0))).scalar_one()) + 1
            set_id = int(conn.execute(sa.insert(t.criteria_sets).values(
                version=version, note=note, created_by=self.actor, created_at=_now())).inserted_primary_key[0])  # type: ignore[index]
            conn.execute(sa.insert(t.criteria), [
                {"set_id": set_id, "position": i, "kind": kind, "text": text.strip(),
                 "pico_element": pico_elements[i] if pico_elements else None}
                for i, (kind, text) in enumerate(items)
            ])
            self.log("criteria", {"version": version, "count": len(items)}, conn=conn)
        return version

    def criteria(self, version: int | None = None) -> list[dict[str, Any]]:
        """The criteria of a version (default: the newest), in order, as dicts."""
        with self.engine.connect() as conn:
            query = sa.select(t.criteria_sets.c.id, t.criteria_sets.c.version)
            query = query.where(t.criteria_sets.c.version == version) if version else \
                query.order_by(t.criteria_sets.c.version.desc()).limit(1)
            found = conn.execute(query).first()
            if found is None:
                if version is not None:
                    raise NotFoundError(f"criteria version {version} does not exist")
                return []
            rows = conn.execute(sa.select(t.criteria).where(t.criteria.c.set_id == found.id)
                                .order_by(t.criteria.c.position)).mappings()
            return [dict(row) | {"version": found.version} for row in rows]

    def criteria_versions(self) -> list[dict[str, Any]]:
        """Every criteria version, oldest first: ``version``, ``note``, ``created_by``,
        ``created_at`` and ``count`` (how many criteria it holds)."""
        count = (sa.select(t.criteria.c.set_id, sa.func.count().label("count"))
                 .group_by(t.criteria.c.set_id).subquery())
        query = (
            sa.select(t.criteria_sets.c.version, t.criteria_sets.c.note, t.criteria_sets.c.created_by,
                      t.criteria_sets.c.created_at, sa.func.coalesce(count.c.count, 0).label("count"))
            .select_from(t.criteria_sets.outerjoin(count, count.c.set_id == t.criteria_sets.c.id))
            .order_by(t.criteria_sets.c.version)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- importing ---------------------------------------------------------------------------

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Import every record of a file as one search (PRISMA-S: file, format, count, hash).

        The file is read and validated completely before the database is touched, and the
        records are written in one transaction: a malformed file, an error or a killed process
        leaves the project exactly as it was.
        """
        file_path = Path(path)
        sha256 = _file_sha256(file_path)
        if not force:
            with self.engine.connect() as conn:
                previous = conn.execute(
                    sa.select(t.searches.c.id, t.searches.c.executed_at)
                    .where(t.searches.c.response_sha256 == sha256, t.searches.c.source == "file")
                ).first()
            if previous:
                raise ProjectError(
                    f"{file_path}: this file was already imported (search {previous.id} on "
                    f"{previous.executed_at:%Y-%m-%d %H:%M}); pass force=True (--force) to import it again"
                )
        fmt = get_format(format) if format else detect_format(file_path)
        with _gc_paused():
            records = list(read_records(file_path, format=fmt.name))
            search_id, ids = self.add_records(
                records,
                source="file",
                kind="other",
                file_name=file_path.name,
                format=fmt.name,
                response_sha256=sha256,
                progress=progress,
            )
        return ImportResult(search_id, file_path.name, fmt.name, len(records), ids, sha256)

    def add_records(
        self,
        records: Sequence[Record],
        *,
        source: str,
        kind: str | None = None,
        query: str | None = None,
        file_name: str | None = None,
        format: str | None = None,
        params: dict[str, Any] | None = None,
        response_sha256: str | None = None,
        executed_at: dt.datetime | None = None,
        note: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[int, list[int]]:
        """Store records as the result of one search, in one transaction; returns (search id, record ids)."""
        kind = kind or ("register" if source in REGISTER_SOURCES else "database")
        total = len(records)
        ids: list[int] = []
        created = _now()
        with self.engine.begin() as conn:
            search_id = int(
                conn.execute(
                    sa.insert(t.searches).values(
                        source=source, kind=kind, query=query, file_name=file_name,
                        format=format, params=params or {}, executed_at=executed_at or created,
                        count=total, response_sha256=response_sha256,
                        created_by=self.actor, note=note,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            for start in range(0, total, INSERT_CHUNK):
                chunk = records[start:start + INSERT_CHUNK]
                rows = [_record_row(record, created) for record in chunk]
                result = conn.execute(
                    sa.insert(t.records).returning(t.records.c.id, sort_by_parameter_order=True),
                    rows,
                )
                chunk_ids = [int(row.id) for row in result]
                ids.extend(chunk_ids)
                identifier_rows = [
                    {"record_id": rid, "kind": kind_, "value": value}
                    for rid, record in zip(chunk_ids, chunk, strict=True)
                    for kind_, value in _identifier_pairs(record)
                ]
                if identifier_rows:
                    conn.execute(sa.insert(t.record_identifiers), identifier_rows)
                conn.execute(
                    sa.insert(t.search_records),
                    [
                        {"search_id": search_id, "position": start + i, "record_id": rid}
                        for i, rid in enumerate(chunk_ids)
                    ],
                )
                if progress:
                    progress(len(ids), total)
            self.log(
                "import" if source == "file" else "search",
                {"search_id": search_id, "source": source, "file": file_name, "count": total},
                conn=conn,
            )
        return search_id, ids

    # -- reading records ---------------------------------------------------------------------

    def count_records(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.records)).scalar_one())

    def record(self, record_id: int) -> StoredRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.records.c.id, t.records.c.data).where(t.records.c.id == record_id)
            ).first()
        if row is None:
            raise NotFoundError(f"record {record_id} does not exist in this project")
        groups = self._group_index()
        return self._stored(row.id, row.data, groups)

    def iter_records(
        self,
        *,
        search_id: int | None = None,
        unique: bool = False,
        ids: Iterable[int] | None = None,
        batch: int = 5000,
    ) -> Iterator[StoredRecord]:
        """Stored records in id order; ``unique`` keeps one record (the primary) per duplicate group."""
        groups = self._group_index()
        query = sa.select(t.records.c.id, t.records.c.data).order_by(t.records.c.id)
        if search_id is not None:
            query = query.where(
                t.records.c.id.in_(
                    sa.select(t.search_records.c.record_id).where(
                        t.search_records.c.search_id == search_id
                    )
                )
            )
        if ids is not None:
            query = query.where(t.records.c.id.in_(list(ids)))
        last = 0
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(query.where(t.records.c.id > last).limit(batch)).all()
                if not rows:
                    return
                for row in rows:
                    stored = self._stored(row.id, row.data, groups)
                    if unique and not stored.is_primary:
                        continue
                    yield stored
                last = rows[-1].id

    def _stored(self, record_id: int, data: dict[str, Any], groups: dict[int, DuplicateGroup]) -> StoredRecord:
        group = groups.get(record_id)
        return StoredRecord(
            id=record_id,
            record=Record.model_validate(data),
            group_id=group.id if group else None,
            is_primary=group is None or group.primary == record_id,
        )

    def searches(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.select(t.searches).order_by(t.searches.c.id)).mappings()]

    # -- duplicates --------------------------------------------------------------------------

    def _pair_states(self, conn: Connection) -> dict[tuple[int, int], tuple[str, str]]:
        """The last action (link/unlink) and rule for every pair that has a duplicate event."""
        states: dict[tuple[int, int], tuple[str, str]] = {}
        rows = conn.execute(
            sa.select(t.duplicate_events.c.record_a, t.duplicate_events.c.record_b,
                      t.duplicate_events.c.action, t.duplicate_events.c.rule)
            .order_by(t.duplicate_events.c.id)
        )
        for a, b, action, rule in rows:
            states[(a, b)] = (action, rule)
        return states

    def duplicate_groups(self) -> list[DuplicateGroup]:
        """Groups of duplicate records, derived from the link/unlink history."""
        with self.engine.connect() as conn:
            states = self._pair_states(conn)
            links = {pair: rule for pair, (action, rule) in states.items() if action == "link"}
            if not links:
                return []
            from leads.dedup import DuplicateLink, choose_primary, group_duplicates

            members = sorted({k for pair in links for k in pair})
            grouped = group_duplicates(
                members, [DuplicateLink(a, b, rule, 1.0) for (a, b), rule in links.items()]  # type: ignore[arg-type]
            )
            needed = sorted({k for g in grouped for k in g})
            data = dict(
                conn.execute(
                    sa.select(t.records.c.id, t.records.c.data).where(t.records.c.id.in_(needed))
                ).all()
            )
        result = []
        for group in sorted(grouped, key=min):
            group = sorted(group)
            primary = choose_primary({k: Record.model_validate(data[k]) for k in group})
            rules = {pair: rule for pair, rule in links.items() if pair[0] in group}
            result.append(DuplicateGroup(id=min(group), primary=primary, members=group, rules=rules))
        return result

    def _group_index(self) -> dict[int, DuplicateGroup]:
        return {member: group for group in self.duplicate_groups() for member in group.members}

    def run_dedup(self, *, progress: ProgressCallback | None = None) -> DedupResult:
        """Find duplicates among all records and append a link event for each new pair.

        Pairs a reviewer separated (last event ``unlink``) are never linked again automatically.
        """
        import time

        from leads.dedup import find_duplicates

        started = time.perf_counter()
        with self.engine.connect() as conn:
            states = self._pair_states(conn)
            items = [
                (int(rid), Record.model_validate(data))
                for rid, data in conn.execute(sa.select(t.records.c.id, t.records.c.data))
            ]
        blocked = [frozenset(pair) for pair, (action, _rule) in states.items() if action == "unlink"]
        links = find_duplicates(items, blocked=blocked)
        now = _now()
        rows = []
        for link in links:
            a, b = sorted((link.a, link.b))
            if (a, b) in states:
                continue
            rows.append({"record_a": a, "record_b": b, "action": "link", "rule": link.rule,
                         "score": link.score, "actor": "leads.dedup", "created_at": now})
        with self.engine.begin() as conn:
            if rows:
                conn.execute(sa.insert(t.duplicate_events), rows)
            self.log("dedup", {"new_links": len(rows), "records": len(items)}, conn=conn)
        groups = self.duplicate_groups()
        return DedupResult(
            new_links=len(rows),
            groups=len(groups),
            duplicates=sum(len(g.members) - 1 for g in groups),
            seconds=time.perf_counter() - started,
        )

    def link_duplicates(self, a: int, b: int, *, reason: str = "manual") -> None:
        """A reviewer marks two records as duplicates."""
        self._check_records([a, b])
        if a == b:
            raise ProjectError("a record cannot be a duplicate of itself")
        a, b = sorted((a, b))
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.duplicate_events).values(
                record_a=a, record_b=b, action="link", rule=reason, score=1.0,
                actor=self.actor, created_at=_now()))

    def split_duplicate(self, record_id: int) -> list[int]:
        """Take a record out of its duplicate group (a reviewer says it is a different study).

        Appends an ``unlink`` event against every other member, so later dedup runs keep them
        apart; returns the members it was separated from.
        """
        groups = self._group_index()
        group = groups.get(record_id)
        if group is None:
            self._check_records([record_id])
            raise ProjectError(f"record {record_id} is not in a duplicate group")
        others = [m for m in group.members if m != record_id]
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.duplicate_events), [
                {"record_a": min(record_id, o), "record_b": max(record_id, o), "action": "unlink",
                 "rule": "reviewer-split", "score": None, "actor": self.actor, "created_at": now}
                for o in others
            ])
            self.log("dedup-split", {"record": record_id, "from": others}, conn=conn)
        return others

    def _check_records(self, ids: Sequence[int]) -> None:
        with self.engine.connect() as conn:
            found = {r for (r,) in conn.execute(sa.select(t.records.c.id).where(t.records.c.id.in_(ids)))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"record {missing[0]} does not exist in this project")

    # -- decisions ---------------------------------------------------------------------------

    def decide(
        self,
        record_id: int,
        label: str,
        *,
        stage: str = "title_abstract",
        reasons: Sequence[str] = (),
        seconds_spent: float | None = None,
        actor_kind: str = "human",
        call_id: int | None = None,
        ai_assisted: bool | None = None,
        note: str | None = None,
        actor: str | None = None,
        criteria_version: int | None = None,
    ) -> int:
        """Append a screening decision; earlier decisions stay in the history.

        The decision records the criteria version it was made under: ``criteria_version`` when
        given (an AI decision made from an assessment under that version), else the newest.
        ``actor`` defaults to the project's actor; ``actor_kind`` is ``human`` or ``ai``.
        """
        if label not in (*LABELS, "undo"):
            raise ProjectError(f"label must be one of {', '.join(LABELS)} (got {label!r})")
        if stage not in STAGES:
            raise ProjectError(f"stage must be one of {', '.join(STAGES)} (got {stage!r})")
        if actor_kind not in ACTOR_KINDS:
            raise ProjectError(f"actor_kind must be one of {', '.join(ACTOR_KINDS)} (got {actor_kind!r})")
        self._check_records([record_id])
        with self.engine.begin() as conn:
            if criteria_version is None:
                set_id = conn.execute(sa.select(sa.func.max(t.criteria_sets.c.id))).scalar()
            else:
                set_id = self._criteria_set_id(conn, criteria_version)
            result = conn.execute(sa.insert(t.decisions).values(
                record_id=record_id, stage=stage, label=label, reasons=list(reasons),
                criteria_set_id=set_id, actor=actor or self.actor, actor_kind=actor_kind, call_id=call_id,
                ai_assisted=ai_assisted, seconds_spent=seconds_spent, note=note, created_at=_now()))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def decision_history(self, stage: str | None = None, *,
                         record_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Every decision (``undo`` rows included) in the order they were made, each with the
        criteria ``criteria_version`` it was made under; optionally one stage or some records."""
        query = (
            sa.select(t.decisions, t.criteria_sets.c.version.label("criteria_version"))
            .select_from(t.decisions.outerjoin(t.criteria_sets,
                                               t.criteria_sets.c.id == t.decisions.c.criteria_set_id))
            .order_by(t.decisions.c.id)
        )
        if stage is not None:
            query = query.where(t.decisions.c.stage == stage)
        if record_ids is not None:
            query = query.where(t.decisions.c.record_id.in_(list(record_ids)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def duplicate_primaries(self) -> dict[int, int]:
        """``{record id: primary record id of its duplicate group}`` for records in a group."""
        return {member: group.primary for member, group in self._group_index().items()}

    # -- AI assessments ----------------------------------------------------------------------

    @staticmethod
    def _criteria_set_id(conn: Connection, version: int) -> int:
        found = conn.execute(
            sa.select(t.criteria_sets.c.id).where(t.criteria_sets.c.version == version)
        ).scalar()
        if found is None:
            raise NotFoundError(f"criteria version {version} does not exist")
        return int(found)

    def add_assessments(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Append AI assessments (per-criterion verdicts of one record) in one transaction.

        Each row: ``record_id``, ``criteria_version``, ``engine``, ``verdicts`` (the task output's
        per-criterion verdicts as JSON), ``score``, and optionally ``call_id`` (the call-log row
        that produced it: the model is read from there) and ``stage`` (default
        ``title_abstract``). Returns the new row ids. Assessments are suggestions, never
        decisions: they are append-only and a newer one for the same record and criteria
        version supersedes the older one.
        """
        if not rows:
            return []
        now = _now()
        ids: list[int] = []
        with self.engine.begin() as conn:
            set_ids: dict[int, int] = {}
            for row in rows:
                version = int(row["criteria_version"])
                if version not in set_ids:
                    set_ids[version] = self._criteria_set_id(conn, version)
                stage = row.get("stage", "title_abstract")
                if stage not in STAGES:
                    raise ProjectError(f"stage must be one of {', '.join(STAGES)} (got {stage!r})")
                result = conn.execute(sa.insert(t.ai_assessments).values(
                    record_id=int(row["record_id"]), stage=stage, criteria_set_id=set_ids[version],
                    call_id=row.get("call_id"), engine=str(row["engine"]), verdicts=row["verdicts"],
                    score=row.get("score"), created_at=now))
                ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        return ids

    def assessments(
        self,
        *,
        stage: str | None = "title_abstract",
        criteria_version: int | None = None,
        record_ids: Iterable[int] | None = None,
        engine: str | None = None,
        call_ids: Iterable[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Stored AI assessments, oldest first, each with its ``criteria_version`` and the
        ``model`` and ``batch_id`` of its call; filtered by stage, criteria version, records,
        engine or call ids when given."""
        a, calls = t.ai_assessments, t.model_calls
        query = (
            sa.select(a, t.criteria_sets.c.version.label("criteria_version"),
                      calls.c.model.label("model"), calls.c.batch_id.label("batch_id"))
            .select_from(a.outerjoin(t.criteria_sets, t.criteria_sets.c.id == a.c.criteria_set_id)
                         .outerjoin(calls, calls.c.id == a.c.call_id))
            .order_by(a.c.id)
        )
        if stage is not None:
            query = query.where(a.c.stage == stage)
        if criteria_version is not None:
            query = query.where(t.criteria_sets.c.version == criteria_version)
        if record_ids is not None:
            query = query.where(a.c.record_id.in_(list(record_ids)))
        if engine is not None:
            query = query.where(a.c.engine == engine)
        if call_ids is not None:
            query = query.where(a.c.call_id.in_(list(call_ids)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def current_decisions(self, stage: str = "title_abstract") -> dict[int, dict[str, Any]]:
        """The standing decision per record at a stage: the newest one, ``undo`` withdrawing it.

        Decisions on any member of a duplicate group count for the group's primary record.
        """
        groups = self._group_index()
        current: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.decisions).where(t.decisions.c.stage == stage).order_by(t.decisions.c.id)
            ).mappings()
            for row in rows:
                group = groups.get(row["record_id"])
                key = group.primary if group else row["record_id"]
                if row["label"] == "undo":
                    current.pop(key, None)
                else:
                    current[key] = dict(row)
        return current

    # -- extractions -------------------------------------------------------------------------

    def add_extractions(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Append AI-extracted values in one transaction; returns the new row ids.

        Each row: ``record_id``, ``task`` (``characteristics``, ``arms``, ``participants``,
        ``results`` or ``pico``), ``field`` (what the value answers, e.g. ``design`` or
        ``results: All-cause mortality``), ``value`` (JSON; ``None`` means "not reported"),
        ``evidence`` (a list of ``{"quote", "start", "end"}`` located in the document's text;
        empty when the value is not supported), and optionally ``document_id``, ``call_id`` (the
        call-log row behind it) and ``actor`` (default: the project's actor). AI values are
        proposals: a reviewer's accept, edit or reject is appended by :meth:`review_extraction`
        and never overwrites them.
        """
        if not rows:
            return []
        now = _now()
        ids: list[int] = []
        self._check_records(sorted({int(row["record_id"]) for row in rows}))
        with self.engine.begin() as conn:
            for row in rows:
                evidence = _checked_evidence(row.get("evidence") or [], row)
                result = conn.execute(sa.insert(t.extractions).values(
                    record_id=int(row["record_id"]), document_id=row.get("document_id"),
                    task=str(row["task"]), field=str(row["field"]), value=row.get("value"),
                    evidence=evidence, origin="ai", status="proposed", call_id=row.get("call_id"),
                    actor=row.get("actor") or self.actor, supersedes_id=None,
                    seconds_spent=row.get("seconds_spent"), created_at=now))
                ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        return ids

    def review_extraction(
        self,
        extraction_id: int,
        action: str,
        *,
        value: Any = None,
        evidence: Sequence[dict[str, Any]] | None = None,
        seconds_spent: float | None = None,
        actor: str | None = None,
    ) -> int:
        """A reviewer's verdict on an extracted value: ``accept``, ``edit`` (with the new
        ``value``, and optionally new ``evidence``) or ``reject``. Appended as a new row that
        supersedes the one reviewed; the reviewed row is kept as it was."""
        statuses = {"accept": "accepted", "edit": "edited", "reject": "rejected"}
        if action not in statuses:
            raise ProjectError(f"action must be one of {', '.join(statuses)} (got {action!r})")
        with self.engine.begin() as conn:
            old = conn.execute(
                sa.select(t.extractions).where(t.extractions.c.id == extraction_id)
            ).mappings().first()
            if old is None:
                raise NotFoundError(f"extraction {extraction_id} does not exist")
            if action == "edit" and value is None:
                raise ProjectError(f"extraction {extraction_id}: an edit needs the new value")
            new_value = value if action == "edit" else old["value"]
            new_evidence = (_checked_evidence(evidence, {"record_id": old["record_id"], "field": old["field"]})
                            if evidence is not None else old["evidence"])
            result = conn.execute(sa.insert(t.extractions).values(
                record_id=old["record_id"], document_id=old["document_id"], task=old["task"],
                field=old["field"], value=new_value, evidence=new_evidence, origin="human",
                status=statuses[action], call_id=old["call_id"], actor=actor or self.actor,
                supersedes_id=extraction_id, seconds_spent=seconds_spent, created_at=_now()))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def enter_extraction(
        self,
        record_id: int,
        task: str,
        field_name: str,
        value: Any,
        *,
        evidence: Sequence[dict[str, Any]] = (),
        document_id: int | None = None,
        seconds_spent: float | None = None,
        actor: str | None = None,
    ) -> int:
        """A value a reviewer entered themselves (e.g. a custom field the AI was not asked)."""
        self._check_records([record_id])
        checked = _checked_evidence(evidence, {"record_id": record_id, "field": field_name})
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(t.extractions).values(
                record_id=record_id, document_id=document_id, task=task, field=field_name,
                value=value, evidence=checked, origin="human", status="edited", call_id=None,
                actor=actor or self.actor, supersedes_id=None, seconds_spent=seconds_spent,
                created_at=_now()))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def extractions(
        self,
        *,
        record_ids: Iterable[int] | None = None,
        task: str | None = None,
        history: bool = False,
    ) -> list[dict[str, Any]]:
        """Extracted values, oldest first, each with its call's ``model``.

        By default only the standing value per (record, task, field): the newest human row
        when a reviewer has acted on that field, else the newest AI proposal. ``history=True``
        returns every row (AI proposals and each reviewer action), for audits.
        """
        x, calls = t.extractions, t.model_calls
        query = (
            sa.select(x, calls.c.model.label("model"), calls.c.engine.label("engine"))
            .select_from(x.outerjoin(calls, calls.c.id == x.c.call_id))
            .order_by(x.c.id)
        )
        if record_ids is not None:
            query = query.where(x.c.record_id.in_(list(record_ids)))
        if task is not None:
            query = query.where(x.c.task == task)
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        if history:
            return rows
        standing: dict[tuple[int, str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["record_id"], row["task"], row["field"])
            held = standing.get(key)
            if held is None or row["origin"] == "human" or held["origin"] == "ai":
                standing[key] = row
        return sorted(standing.values(), key=lambda row: row["id"])

    # -- status ------------------------------------------------------------------------------

    def status(self) -> ProjectStatus:
        groups = self.duplicate_groups()
        with self.engine.connect() as conn:
            n_records = int(conn.execute(sa.select(sa.func.count()).select_from(t.records)).scalar_one())
            search_rows = conn.execute(sa.select(t.searches.c.source, t.searches.c.kind, t.searches.c.file_name,
                                                 t.searches.c.count)).all()
            n_documents = int(conn.execute(sa.select(sa.func.count()).select_from(t.documents)).scalar_one())
            with_document = {r for (r,) in conn.execute(sa.select(t.documents.c.record_id).distinct())}
            label_rows = conn.execute(sa.select(t.records.c.label, sa.func.count()).group_by(t.records.c.label)).all()
            revision = MigrationContext.configure(conn).get_current_revision() or ""
        databases: Counter[str] = Counter()
        registers: Counter[str] = Counter()
        for source, kind, file_name, count in search_rows:
            name = f"file: {file_name}" if source == "file" else source
            (registers if kind == "register" else databases)[name] += count
        duplicates = sum(len(g.members) - 1 for g in groups)
        unique = n_records - duplicates
        decisions: dict[str, dict[str, int]] = {}
        ai_decisions = 0
        current_by_stage = {}
        for stage in STAGES:
            current = self.current_decisions(stage)
            current_by_stage[stage] = current
            decisions[stage] = dict(Counter(d["label"] for d in current.values()))
            ai_decisions += sum(1 for d in current.values() if d["actor_kind"] == "ai")
        ta = current_by_stage["title_abstract"]
        ft = current_by_stage["full_text"]
        members_of = {g.primary: set(g.members) for g in groups}
        sought = [rid for rid, d in ta.items() if d["label"] == "include"]
        not_retrieved = [rid for rid in sought if not (members_of.get(rid, {rid}) & with_document)]
        ft_excluded: Counter[str] = Counter()
        for d in ft.values():
            if d["label"] == "exclude":
                reasons = d.get("reasons") or ["no reason given"]
                ft_excluded[str(reasons[0])] += 1
        prisma = PrismaCounts(
            identified_databases=dict(databases),
            identified_registers=dict(registers),
            duplicates_removed=duplicates,
            records_screened=unique,
            records_excluded=sum(1 for d in ta.values() if d["label"] == "exclude"),
            reports_sought=len(sought),
            reports_not_retrieved=len(not_retrieved) if ft else 0,
            reports_assessed=sum(1 for d in ft.values() if d["label"] in ("include", "exclude")),
            reports_excluded=dict(ft_excluded),
            studies_included=sum(1 for d in ft.values() if d["label"] == "include"),
        )
        labels = {("included" if v else "excluded" if v is False else "unlabelled"): int(c) for v, c in label_rows}
        return ProjectStatus(
            name=self.name,
            location=self.location,
            schema_revision=revision,
            records=n_records,
            unique_records=unique,
            searches=len(search_rows),
            duplicate_groups=len(groups),
            documents=n_documents,
            decisions=decisions,
            undecided={stage: (unique - len(current_by_stage[stage])) if stage == "title_abstract"
                       else max(0, len(sought) - len(ft)) for stage in STAGES},
            ai_decisions=ai_decisions,
            prisma=prisma,
            labels=labels,
        )

    # -- export ------------------------------------------------------------------------------

    def export(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        format: str,
        *,
        unique: bool = True,
        search_id: int | None = None,
        decision: str | None = None,
        stage: str = "title_abstract",
    ) -> int:
        """Write records to a file or stream; by default one record per duplicate group.

        ``decision`` keeps only records whose standing decision at ``stage`` has that label.
        """
        keep: set[int] | None = None
        if decision is not None:
            keep = {rid for rid, d in self.current_decisions(stage).items() if d["label"] == decision}
        records = (
            stored.record
            for stored in self.iter_records(search_id=search_id, unique=unique)
            if keep is None or stored.id in keep
        )
        return write_records(records, target, format)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file's records are built.

    Building tens of thousands of Records (each ~65 container objects) makes the collector rescan
    the growing list again and again, more than halving parse speed; nothing cyclic is created.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise LeadsError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LeadsError(f"{path}: is a directory, not a file") from None
    return digest.hexdigest()


def _record_row(record: Record, created: dt.datetime) -> dict[str, Any]:
    return {
        "record_type": record.record_type,
        "pmid": record.pmid,
        "pmcid": record.pmcid,
        "doi": record.doi,
        "title": record.title,
        "abstract": record.abstract,
        "year": record.year,
        "first_author": (record.first_author or "")[:255] or None,
        "journal": record.journal,
        "label": record.label,
        "data": record.model_dump(mode="json", exclude_defaults=True),
        "created_at": created,
    }


def _identifier_pairs(record: Record) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for kind in ("pmid", "pmcid", "doi"):
        value = getattr(record, kind)
        if value:
            pairs.append((kind, value[:255]))
    pairs.extend(("nct", nct) for nct in record.nct_ids)
    return list(dict.fromkeys(pairs))


def schema_head() -> str:
    """The newest schema revision this version of leads knows."""
    return _schema_head()


def _checked_evidence(evidence: Iterable[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """Evidence as stored: a list of ``{"quote", "start", "end", ...}`` with integer offsets."""
    checked: list[dict[str, Any]] = []
    for item in evidence:
        try:
            start, end = int(item["start"]), int(item["end"])
            quote = str(item["quote"])
        except (KeyError, TypeError, ValueError):
            raise ProjectError(
                f"record {row.get('record_id')}, field {row.get('field')!r}: evidence needs "
                f"quote, start and end (got {item!r})") from None
        if not 0 <= start <= end:
            raise ProjectError(f"record {row.get('record_id')}, field {row.get('field')!r}: "
                               f"evidence offsets {start}..{end} are not a span")
        checked.append({**item, "quote": quote, "start": start, "end": end})
    return checked
