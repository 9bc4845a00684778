"""PubMed and ClinicalTrials.gov searches run from the import page, into the project.

The page only collects the query; the search itself is :func:`leads.search.run.run_pubmed_search`
or :func:`leads.search.run.run_ctgov_search`, exactly as ``leads search pubmed|ctgov`` runs it:
every id and every record is fetched, then stored as **one** search of the project with its
provenance (source, query as written, when it ran, the count the service reported and the count
fetched, the SHA-256 of the response bodies, the request parameters; the API key is never
stored), and publications are linked to registrations.

Queries are written in PubMed syntax and checked with :func:`leads.search.query.parse` before
anything is sent, so a typing error is reported with its position instead of costing a request.
For ClinicalTrials.gov the query (and the optional condition and intervention, also in PubMed
syntax) is rendered to the registry's Essie syntax (:func:`leads.search.query.to_ctgov`), and every
part that was dropped or approximated is kept as a warning with the search.

Where the services are and how they are reached (:class:`SearchServices`) is the server's
setting (``create_app(eutils_url=..., ctgov_url=..., search_transport=...)``); the tests point it
at a loopback server replaying recorded answers. The NCBI API key and contact e-mail come from the
project's ``[ncbi]`` table in ``project.toml`` first, then from the server's settings, then from
``NCBI_API_KEY``/``NCBI_EMAIL`` (read by the client).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from leads.errors import QueryError
from leads.project import Project
from leads.records import Record
from leads.search.ctgov import CTGOV_URL, CtgovClient, CtgovPage
from leads.search.eutils import EUTILS_URL, ESearchResult, HistoryKey, PubMedClient
from leads.search.query import CtgovQuery, parse, to_ctgov
from leads.search.run import SearchRun, run_ctgov_search, run_pubmed_search

__all__ = [
    "CTGOV_PARTS",
    "MAX_QUERY",
    "SOURCES",
    "SearchServices",
    "check_pubmed_query",
    "ctgov_query",
    "ncbi_identity",
    "run_ctgov_into",
    "run_pubmed_into",
    "run_summary",
]

MAX_QUERY = 5000
SOURCES = {"pubmed": "PubMed", "ctgov": "ClinicalTrials.gov"}
#: The page's ClinicalTrials.gov fields and the API parameter each becomes.
CTGOV_PARTS = (("query", "query.term"), ("condition", "query.cond"), ("intervention", "query.intr"))

Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class SearchServices:
    """Where the online services are, and the server's own NCBI identification.

    ``transport`` (an :class:`httpx.BaseTransport`) replaces the network for both clients when
    given; ``rate`` overrides the clients' requests per second (``None``: each client's default,
    3/s for E-utilities without a key, 10/s with one, 50/min for ClinicalTrials.gov).
    """

    eutils_url: str = EUTILS_URL
    ctgov_url: str = CTGOV_URL
    transport: httpx.BaseTransport | None = None
    ncbi_api_key: str | None = None
    ncbi_email: str | None = None
    rate: float | None = None

    @classmethod
    def from_environment(cls, **overrides: Any) -> SearchServices:
        """The settings ``leads search`` also honours (``LEADS_EUTILS_URL``, ``LEADS_CTGOV_URL``),
        then ``overrides`` where they are not ``None``."""
        values: dict[str, Any] = {"eutils_url": os.environ.get("LEADS_EUTILS_URL") or EUTILS_URL,
                                  "ctgov_url": os.environ.get("LEADS_CTGOV_URL") or CTGOV_URL}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def check_pubmed_query(text: str, *, what: str = "query") -> str:
    """The query with its whitespace collapsed, after checking it with the PubMed grammar.

    Raises :class:`~leads.errors.QueryError` (with the position of the fault) for a syntax error,
    and for an empty or over-long query."""
    clean = _clean(text)
    if not clean:
        raise QueryError(f"the {what} is empty: give a search in PubMed syntax")
    if len(clean) > MAX_QUERY:
        raise QueryError(f"the {what} has {len(clean)} characters; at most {MAX_QUERY} are accepted")
    try:
        parse(clean)
    except QueryError as exc:
        raise _named(exc, what) from None
    return clean


def _named(exc: QueryError, what: str) -> QueryError:
    """``exc`` with the page field it is about in front, keeping its query and position."""
    named = QueryError(f"{what}: {exc}")
    named.query, named.position = exc.query, exc.position
    return named


def ctgov_query(parts: Mapping[str, str | None]) -> CtgovQuery:
    """The ClinicalTrials.gov search for the page's ``query``/``condition``/``intervention``
    (each optional, PubMed syntax; at least one given), rendered to Essie.

    Each part is rendered on its own, so that a warning names the part it is about; the API
    combines ``query.term``, ``query.cond`` and ``query.intr`` with AND."""
    params: dict[str, str] = {}
    warnings: list[str] = []
    for name, key in CTGOV_PARTS:
        text = _clean(parts.get(name))
        if not text:
            continue
        node = parse(check_pubmed_query(text, what=name))
        try:
            rendered = to_ctgov(node)
        except QueryError as exc:
            raise _named(exc, name) from None
        params[key] = rendered.params["query.term"]
        warnings.extend(f"{name}: {w}" for w in rendered.warnings)
    if not params:
        raise QueryError("give a query, a condition or an intervention to search ClinicalTrials.gov")
    return CtgovQuery(params=params, warnings=tuple(warnings))


def ncbi_identity(project: Project, services: SearchServices) -> tuple[str | None, str | None]:
    """(API key, e-mail): the project's ``[ncbi]`` settings, else the server's."""
    ncbi = project.config().get("ncbi") or {}
    if not isinstance(ncbi, Mapping):
        ncbi = {}
    key = str(ncbi.get("api_key") or "") or services.ncbi_api_key
    email = str(ncbi.get("email") or "") or services.ncbi_email
    return key or None, email or None


class _ReportingPubMed(PubMedClient):
    """A PubMed client that says how far the search and the fetching have come."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress = progress
        self._total: int | None = None

    def search_all(self, term: str, **kwargs: Any) -> ESearchResult:
        self._progress(0, None, "Searching PubMed")
        found = super().search_all(term, **kwargs)
        self._total = len(found.ids)
        self._progress(0, self._total, f"PubMed found {found.count} records; fetching them")
        return found

    def iter_efetch(self, pmids: Iterable[str | int] | HistoryKey, **kwargs: Any) -> Iterator[Record]:
        done = 0
        for record in super().iter_efetch(pmids, **kwargs):
            done += 1
            if done % 50 == 0:
                self._progress(done, self._total, f"Fetched {done} of {self._total} PubMed records")
            yield record
        self._progress(done, self._total, f"Fetched {done} PubMed records; storing them")


class _ReportingCtgov(CtgovClient):
    """A ClinicalTrials.gov client that says how many studies have been read."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress = progress

    def iter_pages(self, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[CtgovPage]:
        self._progress(0, None, "Searching ClinicalTrials.gov")
        total: int | None = None
        done = 0
        for number, page in enumerate(super().iter_pages(params, **kwargs), 1):
            if number == 1:
                total = page.total_count
            done += len(page.studies)
            self._progress(done, total, f"Read {done} of {total if total is not None else '?'} studies "
                                        f"({number} page{'s' if number > 1 else ''})")
            yield page


def _client_options(services: SearchServices) -> dict[str, Any]:
    options: dict[str, Any] = {"transport": services.transport}
    if services.rate is not None:
        options["rate"] = services.rate
    return options


def run_pubmed_into(project: Project, query: str, services: SearchServices, *,
                    progress: Progress | None = None) -> SearchRun:
    """Check ``query``, search PubMed for it and store every record as one search."""
    text = check_pubmed_query(query)
    key, email = ncbi_identity(project, services)
    with _ReportingPubMed(progress or _quiet, api_key=key, email=email, base_url=services.eutils_url,
                          **_client_options(services)) as client:
        return run_pubmed_search(project, text, client)


def run_ctgov_into(project: Project, parts: Mapping[str, str | None], services: SearchServices, *,
                   progress: Progress | None = None) -> SearchRun:
    """Render the page's fields for ClinicalTrials.gov, read every study and store them as one
    search (its warnings say what the rendering dropped or approximated)."""
    rendered = ctgov_query(parts)
    with _ReportingCtgov(progress or _quiet, base_url=services.ctgov_url, **_client_options(services)) as client:
        return run_ctgov_search(project, rendered, client)


def _quiet(_done: int, _total: int | None, _message: str) -> None:
    return None


def run_summary(run: SearchRun) -> list[str]:
    """What the job page says about a finished search."""
    name = SOURCES.get(run.source, run.source)
    reported = "?" if run.count_reported is None else str(run.count_reported)
    lines = [f"{run.count_fetched} records from {name} stored as search {run.search_id} "
             f"({name} reported {reported}; {run.responses} responses, SHA-256 {run.response_sha256[:12]})"]
    translation = run.params.get("query_translation")
    if translation:
        lines.append(f"Query translation: {translation}")
    lines.extend(f"Warning: {w}" for w in run.warnings)
    if run.links:
        lines.append(f"{len(run.links)} publication–registration links found")
    return lines
