"""Run an online search into a project, with provenance, and link publications to registrations.

:func:`run_pubmed_search` and :func:`run_ctgov_search` execute a search completely (every id,
every record), then store the records as **one** search of the project
(:meth:`leads.project.Project.add_records`) with its provenance (PRISMA-S):

* ``source`` (``pubmed``/``ctgov``), ``query`` (the search as the user wrote it; for
  ClinicalTrials.gov the query/filter parameters as ``key=value`` joined by ``&``),
  ``executed_at`` (when the first request was sent);
* ``response_sha256``: SHA-256 of the concatenated bodies of the responses used (in the order
  received; answers that were retried, such as a 429, are not included);
* ``params``: the request parameters and dates, the service's query translation, the count the
  service reported (``count_reported``) and the number of records fetched (``count_fetched``);
  when those differ, ``note`` on the search says so and ``missing_pmids`` lists PMIDs that
  esearch returned but efetch did not. The API key is never stored.

Publications and registrations are linked without storing anything new: :func:`registry_links`
derives the links from what the project already holds, the ``nct`` identifiers of publications
(MEDLINE ``DataBankList``/``SI`` and NCT ids in abstracts) and the ``referencesModule`` PMIDs of
ClinicalTrials.gov records (``extra["references"]``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from leads.project import Project
from leads.project import schema as t
from leads.records import Record, normalize_pmid
from leads.search.ctgov import CtgovClient, records_from_page
from leads.search.eutils import PubMedClient

if TYPE_CHECKING:
    from leads.search.query import CtgovQuery

__all__ = [
    "LINK_VIAS",
    "RegistryLink",
    "SearchRun",
    "registry_links",
    "run_ctgov_search",
    "run_pubmed_search",
]

# How a link was found: the publication names the NCT id, or the registration lists the PMID
# (by its ClinicalTrials.gov reference type).
LINK_VIAS = {
    "publication_nct": "the publication's record names the registration's NCT id",
    "registry_result": "the registration lists the publication as a RESULT reference",
    "registry_derived": "the registration lists the publication as a DERIVED reference "
    "(matched by ClinicalTrials.gov from PubMed)",
    "registry_background": "the registration cites the publication as BACKGROUND",
    "registry_reference": "the registration lists the publication (no reference type)",
}


class RegistryLink(NamedTuple):
    """A publication record linked to a registration record of the same project."""

    publication: int
    registration: int
    via: str


@dataclass
class SearchRun:
    """What a search run stored: the project's search id, its records, counts and links."""

    search_id: int
    source: str
    query: str
    executed_at: dt.datetime
    count_reported: int | None
    count_fetched: int
    record_ids: list[int]
    response_sha256: str
    responses: int
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    links: list[RegistryLink] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _date_param(value: str | dt.date | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y/%m/%d") if isinstance(value, dt.date) else str(value)


def run_pubmed_search(
    project: Project,
    query: str,
    client: PubMedClient | None = None,
    *,
    mindate: str | dt.date | None = None,
    maxdate: str | dt.date | None = None,
    datetype: str | None = None,
    batch_size: int = 200,
    include_background: bool = False,
) -> SearchRun:
    """Search PubMed for ``query``, fetch every record and store them as one search."""
    own = client is None
    client = client or PubMedClient()
    executed_at = _now()
    try:
        with client.record_responses() as log:
            found = client.search_all(query, mindate=mindate, maxdate=maxdate, datetype=datetype)
            records = client.efetch(found.ids, batch_size=batch_size)
    finally:
        if own:
            client.close()
    fetched = {r.pmid for r in records if r.pmid}
    missing = [pmid for pmid in found.ids if pmid not in fetched]
    warnings = list(found.warnings)
    if missing:
        warnings.append(f"efetch returned no record for {len(missing)} PMID(s)")
    params: dict[str, Any] = {
        "endpoint": client.base_url,
        "db": "pubmed",
        "term": query,
        "query_translation": found.query_translation,
        "count_reported": found.count,
        "count_ids": len(found.ids),
        "count_fetched": len(records),
        "responses": log.count,
        "tool": client.tool,
        "api_key_used": client.api_key is not None,
    }
    for key, value in (("mindate", mindate), ("maxdate", maxdate)):
        if value is not None:
            params[key] = _date_param(value)
    if mindate is not None or maxdate is not None or datetype is not None:
        params["datetype"] = datetype or "pdat"
    if missing:
        params["missing_pmids"] = missing
    if found.slices:
        params["date_slices"] = found.slices
    if warnings:
        params["warnings"] = warnings
    note = None
    if found.count != len(records):
        note = f"PubMed reported {found.count} records; {len(records)} were fetched"
    return _store(
        project,
        records,
        source="pubmed",
        query=query,
        params=params,
        sha256=log.sha256,
        responses=log.count,
        executed_at=executed_at,
        reported=found.count,
        warnings=warnings,
        note=note,
        include_background=include_background,
    )


def _ctgov_query_text(params: Mapping[str, str]) -> str:
    parts = [
        f"{key}={value}"
        for key, value in params.items()
        if key.startswith(("query.", "filter.", "postFilter.", "aggFilters", "geoDecay"))
    ]
    return "&".join(parts)


def run_ctgov_search(
    project: Project,
    params: Mapping[str, Any] | CtgovQuery | None = None,
    client: CtgovClient | None = None,
    *,
    term: str | None = None,
    cond: str | None = None,
    intr: str | None = None,
    filters: Mapping[str, Any] | None = None,
    fields: Iterable[str] | str | None = None,
    page_size: int = 100,
    include_background: bool = False,
) -> SearchRun:
    """Search ClinicalTrials.gov, read every page's studies and store them as one search.

    Arguments are those of :meth:`CtgovClient.build_params`; ``params`` may also be a
    :class:`leads.search.query.CtgovQuery` (a PubMed query rendered for the registry), whose
    warnings about dropped or approximated parts are kept with the search. The records are
    :mod:`leads.formats.ctgov`'s (full study JSON unless ``fields`` restricts it).
    """
    own = client is None
    client = client or CtgovClient()
    warnings: list[str] = []
    if params is not None and not isinstance(params, Mapping):
        # A CtgovQuery (duck-typed: this module does not need the query parser).
        warnings.extend(str(w) for w in getattr(params, "warnings", ()))
        params = dict(params.params)
    request = client.build_params(
        params,
        term=term,
        cond=cond,
        intr=intr,
        filters=filters,
        fields=fields,
        page_size=page_size,
        count_total=True,
    )
    executed_at = _now()
    records: list[Record] = []
    total: int | None = None
    pages = 0
    try:
        with client.record_responses() as log:
            for page in client.iter_pages(request):
                pages += 1
                if pages == 1:
                    total = page.total_count
                records.extend(records_from_page(page, f"ClinicalTrials.gov page {pages}"))
    finally:
        if own:
            client.close()
    note = None
    if total is not None and total != len(records):
        note = f"ClinicalTrials.gov reported {total} studies; {len(records)} were fetched"
        warnings.append(note)
    query = _ctgov_query_text(request)
    stored_params: dict[str, Any] = {
        "endpoint": client.base_url + "studies",
        "request": request,
        "count_reported": total,
        "count_fetched": len(records),
        "pages": pages,
        "responses": log.count,
    }
    if warnings:
        stored_params["warnings"] = warnings
    return _store(
        project,
        records,
        source="ctgov",
        query=query,
        params=stored_params,
        sha256=log.sha256,
        responses=log.count,
        executed_at=executed_at,
        reported=total,
        warnings=warnings,
        note=note,
        include_background=include_background,
    )


def _store(
    project: Project,
    records: list[Record],
    *,
    source: str,
    query: str,
    params: dict[str, Any],
    sha256: str,
    responses: int,
    executed_at: dt.datetime,
    reported: int | None,
    warnings: list[str],
    note: str | None,
    include_background: bool,
) -> SearchRun:
    search_id, ids = project.add_records(
        records,
        source=source,
        query=query,
        params=params,
        response_sha256=sha256,
        executed_at=executed_at,
        note=note,
    )
    mine = set(ids)
    links = [
        link
        for link in registry_links(project, include_background=include_background)
        if link.publication in mine or link.registration in mine
    ]
    return SearchRun(
        search_id=search_id,
        source=source,
        query=query,
        executed_at=executed_at,
        count_reported=reported,
        count_fetched=len(records),
        record_ids=ids,
        response_sha256=sha256,
        responses=responses,
        params=params,
        warnings=warnings,
        links=links,
    )


def registry_links(project: Project, *, include_background: bool = False) -> list[RegistryLink]:
    """Every (publication record, registration record, via) link the project's data supports.

    ``publication_nct``: a non-registration record has an ``nct`` identifier that is an NCT id
    (or alias) of a registration record. ``registry_result``/``registry_derived``/
    ``registry_reference``: a ClinicalTrials.gov record's ``referencesModule`` lists the PMID of
    a publication record. BACKGROUND references are papers a trial cites, not reports of it;
    they are left out unless ``include_background``. Sorted, without repeats; a pair found both
    ways appears once per way.
    """
    ri, rec = t.record_identifiers, t.records
    registrations_by_nct: dict[str, set[int]] = {}
    publications_by_nct: dict[str, set[int]] = {}
    publications_by_pmid: dict[str, set[int]] = {}
    registrations: list[tuple[int, Any]] = []
    with project.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ri.c.record_id, ri.c.kind, ri.c.value, rec.c.record_type)
            .join(rec, rec.c.id == ri.c.record_id)
            .where(ri.c.kind.in_(("nct", "pmid")))
        )
        for record_id, kind, value, record_type in rows:
            if kind == "nct":
                target = (
                    registrations_by_nct if record_type == "registration" else publications_by_nct
                )
                target.setdefault(value, set()).add(int(record_id))
            elif record_type != "registration":
                publications_by_pmid.setdefault(value, set()).add(int(record_id))
        for record_id, data in conn.execute(
            sa.select(rec.c.id, rec.c.data).where(rec.c.record_type == "registration")
        ):
            registrations.append((int(record_id), data))
    links: set[RegistryLink] = set()
    for nct, publications in publications_by_nct.items():
        for registration in registrations_by_nct.get(nct, ()):
            links.update(RegistryLink(p, registration, "publication_nct") for p in publications)
    for registration, data in registrations:
        references = ((data or {}).get("extra") or {}).get("references") or []
        for reference in references:
            if not isinstance(reference, dict):
                continue
            pmid = normalize_pmid(reference.get("pmid"))
            if pmid is None:
                continue
            kind = str(reference.get("type") or "").upper()
            if kind == "BACKGROUND" and not include_background:
                continue
            via = (
                f"registry_{kind.lower()}"
                if kind in ("RESULT", "DERIVED", "BACKGROUND")
                else "registry_reference"
            )
            links.update(
                RegistryLink(p, registration, via) for p in publications_by_pmid.get(pmid, ())
            )
    return sorted(links)
