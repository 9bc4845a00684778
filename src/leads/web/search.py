"""Searching a local corpus from the import page, into the project as one search.

A local corpus is a SQLite file built with ``leads corpus build`` (:mod:`leads.search.corpus`):
PubMed-syntax Boolean search, offline. The workspace offers the corpora it was given
(``create_app(corpora=...)``) and every ``*.db`` file in ``WORKSPACE/corpora/``; a page never
names a file path itself, only one of those, so a project owner cannot make the server open an
arbitrary file.

The search runs completely (every match), then its records are stored as **one** search of the
project (:meth:`leads.project.Project.add_records`) with its provenance: ``source``
``corpus:<file name>``, the query as written, when it ran, and in ``params`` the corpus file's
name, size and modification time, its document count, the number of matches and the query's
approximation notes; ``response_sha256`` is the SHA-256 of the matching ids (one per line, in
corpus order), so the same search of the same corpus can be checked to give the same result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leads.project import Project
from leads.records import MeshHeading, Record
from leads.web.store import WorkspaceError

__all__ = ["MAX_RESULTS", "CorpusSearch", "available_corpora", "record_from_corpus", "search_corpus_into"]

MAX_RESULTS = 20_000
CORPORA_DIR = "corpora"


def available_corpora(workspace: Path, extra: Iterable[Path] = ()) -> dict[str, Path]:
    """The corpora a page may search, by the name it shows (the file name; a clash gets a number)."""
    found: dict[str, Path] = {}
    folder = workspace / CORPORA_DIR
    candidates = list(extra) + (sorted(folder.glob("*.db")) if folder.is_dir() else [])
    seen: set[Path] = set()
    for path in candidates:
        resolved = Path(path).resolve()
        if resolved in seen or not resolved.is_file():
            continue
        seen.add(resolved)
        name, n = resolved.name, 2
        while name in found:
            name, n = f"{resolved.name} ({n})", n + 1
        found[name] = resolved
    return found


def _split(value: Any) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in str(value).split(";") if part.strip()]


def _headings(value: Any) -> list[MeshHeading]:
    from leads.search.corpus import _parse_heading  # the corpus's own reading of "Name/*qualifier"

    out = []
    for text in _split(value):
        name, major, qualifiers = _parse_heading(text)
        out.append(MeshHeading(descriptor=name, major=major, qualifiers=[q for q, _ in qualifiers],
                               major_qualifiers=[q for q, m in qualifiers if m]))
    return out


def record_from_corpus(row: Mapping[str, Any]) -> Record:
    """A project record from a corpus document (``Corpus.get``)."""
    year = row.get("year")
    return Record(
        source_id=str(row["id"]), pmid=row.get("pmid") or None, pmcid=row.get("pmcid") or None,
        doi=row.get("doi") or None, title=row.get("title") or None, abstract=row.get("abstract") or None,
        authors=_split(row.get("authors")), journal=row.get("journal") or None,
        year=int(year) if year else None, language=row.get("language") or None,
        publication_types=_split(row.get("pubtypes")), keywords=_split(row.get("keywords")),
        mesh=_headings(row.get("mesh")),
    )


@dataclass
class CorpusSearch:
    search_id: int
    count: int
    record_ids: list[int]
    notes: list[str]


def search_corpus_into(project: Project, corpus_path: Path, query: str, *,
                       progress: Callable[[int, int | None, str], None] | None = None,
                       max_results: int = MAX_RESULTS) -> CorpusSearch:
    """Run ``query`` on the corpus and store every match as one search of the project."""
    from leads.search.corpus import Corpus

    text = " ".join(query.split())
    if not text:
        raise WorkspaceError("give a search query (PubMed syntax)")
    executed_at = dt.datetime.now(dt.UTC)
    with Corpus(corpus_path) as corpus:
        _, _, notes = corpus.plan(text)  # QueryError (a LeadsError) says what is wrong with the query
        hits = corpus.search(text)
        if len(hits) > max_results:
            raise WorkspaceError(f"{len(hits)} records match in {corpus_path.name}; more than {max_results} "
                                 "cannot be imported from the page: narrow the query")
        size = len(corpus)
        records: list[Record] = []
        for i, hit in enumerate(hits, 1):
            row = corpus.get(hit.id)
            if row is None:  # the corpus changed under us
                raise WorkspaceError(f"{corpus_path.name}: document {hit.id} vanished during the search")
            records.append(record_from_corpus(row))
            if progress is not None and i % 500 == 0:
                progress(i, len(hits), f"Reading {len(hits)} matching records")
    digest = hashlib.sha256("".join(f"{hit.id}\n" for hit in hits).encode("utf-8")).hexdigest()
    stat = corpus_path.stat()
    params = {"corpus": corpus_path.name, "corpus_bytes": stat.st_size,
              "corpus_modified": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(timespec="seconds"),
              "corpus_documents": size, "count_reported": len(hits), "count_fetched": len(records),
              "notes": list(notes)}
    search_id, ids = project.add_records(records, source=f"corpus:{corpus_path.name}", kind="database", query=text,
                                         params=params, response_sha256=digest, executed_at=executed_at)
    project.log("corpus-search", {"search_id": search_id, "corpus": corpus_path.name, "query": text,
                                  "count": len(ids)})
    return CorpusSearch(search_id=search_id, count=len(ids), record_ids=ids, notes=list(notes))
