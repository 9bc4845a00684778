"""Full texts in a review project: attach, link to records, list, load.

Documents live in the project's ``documents`` table (created by the initial migration and
already counted by ``Project.status`` as retrieved full texts): the flat text in ``text``, the
rest of the parsed :class:`~leads.documents.model.Document` as JSON in ``data``, the file's
SHA-256 in ``sha256`` and the format in ``kind``. How the document was linked to its record
(identifier, title score, or by hand) is kept in ``data["link"]`` and in the activity log.

Attaching is one transaction: the file is parsed completely first, so an unreadable file
leaves the project unchanged. A file whose hash the project already holds is not stored twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa

from leads.documents.link import MatchMethod, RecordMatch, best_title_match, normalize_title
from leads.documents.model import Document
from leads.documents.reader import read_document
from leads.errors import NotFoundError, SourceError
from leads.project import Project
from leads.project import schema as t

__all__ = [
    "AddResult",
    "StoredDocument",
    "add_document",
    "find_record",
    "get_document",
    "link_document",
    "list_documents",
]


@dataclass
class StoredDocument:
    """A document row without its (possibly large) text and structure."""

    id: int
    record_id: int | None
    format: str
    file_name: str | None
    sha256: str
    title: str | None
    created_by: str
    created_at: dt.datetime
    link: dict[str, Any] = field(default_factory=dict)


@dataclass
class AddResult:
    """What :func:`add_document` did: ``created`` is ``False`` when the file was already held."""

    document: StoredDocument
    created: bool
    match: RecordMatch | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stored(row: Any) -> StoredDocument:
    data = row.data or {}
    return StoredDocument(
        id=int(row.id), record_id=row.record_id, format=row.kind, file_name=row.file_name,
        sha256=row.sha256, title=data.get("title"), created_by=row.created_by,
        created_at=row.created_at, link=dict(data.get("link") or {}),
    )


_LIST_COLUMNS = (t.documents.c.id, t.documents.c.record_id, t.documents.c.kind, t.documents.c.file_name,
                 t.documents.c.sha256, t.documents.c.data, t.documents.c.created_by, t.documents.c.created_at)


def find_record(project: Project, document: Document, *, min_title_score: float | None = None) -> RecordMatch | None:
    """The project record ``document`` reports: by PMID, PMCID, DOI, else by title (fuzzy)."""
    with project.engine.connect() as conn:
        for kind in ("pmid", "pmcid", "doi"):
            value = getattr(document, kind)
            if not value:
                continue
            row = conn.execute(
                sa.select(sa.func.min(t.record_identifiers.c.record_id))
                .where(t.record_identifiers.c.kind == kind, t.record_identifiers.c.value == value)
            ).scalar()
            if row is not None:
                return RecordMatch(int(row), cast(MatchMethod, kind), 1.0, value)
        if not normalize_title(document.title):
            return None
        rows = conn.execute(
            sa.select(t.records.c.id, t.records.c.title, t.records.c.year)
            .where(t.records.c.title.is_not(None)).order_by(t.records.c.id)
        ).all()
    titles = [(int(r.id), normalize_title(r.title), r.year) for r in rows]
    kwargs = {} if min_title_score is None else {"min_title_score": min_title_score}
    return best_title_match(document, titles, **kwargs)


def add_document(
    project: Project,
    source: str | os.PathLike[str] | Document,
    record_id: int | None = None,
    *,
    link: bool = True,
    force: bool = False,
) -> AddResult:
    """Parse (if given a path) and store a full text, linked to ``record_id`` or to the record
    :func:`find_record` finds (when ``link``); unlinked when neither gives one.

    A file the project already holds (same SHA-256) is returned as it is (``created=False``)
    unless ``force``.
    """
    document: Document | None = None
    path: str | os.PathLike[str] | None = None
    if isinstance(source, Document):
        document = source
        sha256 = document.sha256 or hashlib.sha256(document.text.encode("utf-8")).hexdigest()
    else:
        # Hash the file first: a file the project already holds is not parsed again.
        path = source
        sha256 = _file_sha256(path)
    if not force:
        with project.engine.connect() as conn:
            row = conn.execute(sa.select(*_LIST_COLUMNS).where(t.documents.c.sha256 == sha256)
                               .order_by(t.documents.c.id)).first()
        if row is not None:
            return AddResult(_stored(row), False, None)
    if document is None:
        assert path is not None
        document = read_document(path)
    match: RecordMatch | None = None
    if record_id is not None:
        _check_record(project, record_id)
        match = RecordMatch(record_id, "manual", 1.0)
    elif link:
        match = find_record(project, document)
    file_name = os.path.basename(document.source) if document.source else None
    data = document.model_dump(mode="json", exclude={"text"})
    data["sha256"] = sha256
    data["link"] = _link_data(match)
    created = _now()
    with project.engine.begin() as conn:
        new_id = int(conn.execute(sa.insert(t.documents).values(
            record_id=match.record_id if match else None, kind=document.format, file_name=file_name,
            sha256=sha256, text=document.text, data=data, created_by=project.actor, created_at=created,
        )).inserted_primary_key[0])  # type: ignore[index]
        project.log("add_document", {"document_id": new_id, "file": file_name, "sha256": sha256,
                                     "record_id": match.record_id if match else None,
                                     "link": data["link"]}, conn=conn)
    stored = StoredDocument(new_id, match.record_id if match else None, document.format, file_name, sha256,
                            document.title, project.actor, created, data["link"])
    return AddResult(stored, True, match)


def _file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise SourceError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise SourceError("is a directory, not a file", source=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot read the file: {exc.strerror}", source=str(path)) from None
    return digest.hexdigest()


def _link_data(match: RecordMatch | None) -> dict[str, Any]:
    if match is None:
        return {}
    return {"method": match.method, "score": match.score, "value": match.value}


def _check_record(project: Project, record_id: int) -> None:
    with project.engine.connect() as conn:
        exists = conn.execute(sa.select(t.records.c.id).where(t.records.c.id == record_id)).first()
    if exists is None:
        raise NotFoundError(f"record {record_id} does not exist in this project")


def get_document(project: Project, document_id: int) -> Document:
    """The stored Document, as it was parsed."""
    with project.engine.connect() as conn:
        row = conn.execute(sa.select(t.documents.c.text, t.documents.c.data)
                           .where(t.documents.c.id == document_id)).first()
    if row is None:
        raise NotFoundError(f"document {document_id} does not exist in this project")
    data = dict(row.data or {})
    data.pop("link", None)
    data["text"] = row.text
    return Document.model_validate(data)


def list_documents(project: Project, *, record_id: int | None = None) -> list[StoredDocument]:
    """Stored documents (without text), oldest first; only ``record_id``'s when given."""
    query = sa.select(*_LIST_COLUMNS).order_by(t.documents.c.id)
    if record_id is not None:
        query = query.where(t.documents.c.record_id == record_id)
    with project.engine.connect() as conn:
        return [_stored(row) for row in conn.execute(query)]


def link_document(project: Project, document_id: int, record_id: int | None) -> StoredDocument:
    """Link a stored document to ``record_id`` by hand (``None`` unlinks it); logged."""
    if record_id is not None:
        _check_record(project, record_id)
    with project.engine.begin() as conn:
        row = conn.execute(sa.select(t.documents.c.data, t.documents.c.record_id)
                           .where(t.documents.c.id == document_id)).first()
        if row is None:
            raise NotFoundError(f"document {document_id} does not exist in this project")
        data = dict(row.data or {})
        data["link"] = _link_data(RecordMatch(record_id, "manual")) if record_id is not None else {}
        conn.execute(sa.update(t.documents).where(t.documents.c.id == document_id)
                     .values(record_id=record_id, data=data))
        project.log("link_document", {"document_id": document_id, "from": row.record_id,
                                      "to": record_id}, conn=conn)
        updated = conn.execute(sa.select(*_LIST_COLUMNS).where(t.documents.c.id == document_id)).one()
    return _stored(updated)
