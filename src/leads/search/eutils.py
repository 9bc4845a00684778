"""A PubMed client for NCBI E-utilities: esearch, efetch, esummary, elink, epost.

:class:`PubMedClient` speaks to ``https://eutils.ncbi.nlm.nih.gov/entrez/eutils/`` with httpx.
Every call is a form POST (E-utilities accept POST everywhere; it avoids URL length limits for
long queries and id lists, and keeps the API key out of URLs and logs).

Usage policy and limits handled here:

* **Rate**: NCBI allows 3 requests per second without an API key and 10 with one. All requests
  of a client go through one thread-safe :class:`RateLimiter` that spaces them evenly.
* **Retries**: HTTP 429 and 5xx answers and connection errors/timeouts are retried with
  exponential backoff (``backoff`` * 2^attempt, at most ``max_wait`` seconds); a
  ``Retry-After`` header is honoured when it asks for at most ``max_wait`` seconds, and a longer
  demand fails at once rather than hammering the service. After ``max_retries`` retries the
  call raises :class:`SearchServiceError`.
* **Identification**: ``tool``, ``email`` and ``api_key`` are sent with every call; ``email``
  and ``api_key`` default to ``$NCBI_EMAIL`` and ``$NCBI_API_KEY``.
* **The 9,999 cap**: for PubMed, esearch returns at most the first 9,999 ids of a result set
  (``retstart`` above 9,998 is refused). :meth:`PubMedClient.search_all` therefore pages with
  ``retstart`` while a set fits, and splits a larger one into publication-date slices that each
  fit (as NCBI's EDirect does); a slice of a single day that is still too large raises
  :class:`ResultLimitError` naming the day, because PubMed offers no further way to page it.

Answers: an ``<ERROR>`` payload (or a JSON ``error``) raises :class:`EutilsError` with NCBI's
message. ``PhraseNotFound``/``FieldNotFound`` (esearch's ``ErrorList``) and ``OutputMessage``/
``QuotedPhraseNotFound``/``PhraseIgnored`` (its ``WarningList``) are not failures: they become
``warnings`` on :class:`ESearchResult` (PubMed searched without the phrase; the user must know).

efetch results are parsed by :mod:`leads.formats.pubmed_xml` (the same reader as for files).

Links to ClinicalTrials.gov: Entrez has no ClinicalTrials.gov database, so no ``elink``
link name leads from PubMed to a trial registration (the ``pubmed_*`` link names reach PubMed,
PMC, Gene, ClinVar and other Entrez databases). A publication's NCT ids come from its record
instead: the MEDLINE ``DataBankList`` (``SI`` field) and NCT ids quoted in the abstract, both
already in :attr:`leads.records.Record.nct_ids`; the other direction comes from the CT.gov
record's ``referencesModule`` (see :mod:`leads.search.run`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from lxml import etree

from leads.errors import FormatError, SourceError
from leads.formats import pubmed_xml
from leads.records import Record, normalize_pmid

__all__ = [
    "EUTILS_URL",
    "PUBMED_ESEARCH_LIMIT",
    "ESearchResult",
    "EutilsError",
    "HistoryKey",
    "PubMedClient",
    "RateLimiter",
    "ResponseLog",
    "ResultLimitError",
    "SearchServiceError",
    "eutils_date",
    "parse_esearch",
    "parse_retry_after",
]

EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
# PubMed's esearch serves positions 0..9998 of a result set and no further.
PUBMED_ESEARCH_LIMIT = 9_999
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_WARNING_TAGS = ("OutputMessage", "QuotedPhraseNotFound", "PhraseIgnored")
_ERRORLIST_TAGS = ("PhraseNotFound", "FieldNotFound")
_DATE_TEXT = re.compile(r"^[0-9]{4}(?:/[0-9]{1,2}(?:/[0-9]{1,2})?)?$")
# The earliest publication dates in PubMed are from the 1780s; ahead-of-print records can carry
# dates a few years ahead.
_SPLIT_START = dt.date(1700, 1, 1)
_SPLIT_AHEAD_YEARS = 5


# --------------------------------------------------------------------------- errors


class SearchServiceError(SourceError):
    """An online search service failed (HTTP error, retries exhausted, unreadable answer).

    ``status`` is the last HTTP status (``None`` for a connection failure), ``url`` the
    endpoint, ``retry_after`` the wait the service asked for, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        status: int | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        super().__init__(message, source=source)


class EutilsError(SearchServiceError):
    """E-utilities answered with an error payload (``<ERROR>`` or a JSON ``error``)."""

    def __init__(self, messages: Sequence[str], *, source: str | None = None) -> None:
        self.messages = list(messages)
        super().__init__("E-utilities error: " + "; ".join(self.messages), source=source)


class ResultLimitError(SearchServiceError):
    """A result set cannot be retrieved completely within the service's limits."""


# --------------------------------------------------------------------------- HTTP machinery


class RateLimiter:
    """Spaces calls at least ``1 / rate`` seconds apart, across threads.

    Each :meth:`acquire` reserves the next free slot under a lock and then sleeps outside it, so
    concurrent callers queue in order instead of bursting. ``clock`` and ``sleep`` are
    injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive (got {rate})")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = float("-inf")

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class ResponseLog:
    """The bodies of the responses a client used, in order: count, combined SHA-256, entries.

    ``sha256`` is the hash of the concatenation of the bodies, which is the provenance hash
    stored with a search. Responses that were retried (429, 5xx) are not part of it.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def add(self, response: httpx.Response) -> None:
        body = response.content
        with self._lock:
            self._digest.update(body)
            self.entries.append(
                {
                    "method": response.request.method,
                    # Calls are POSTs or key-free GETs, so the URL holds no secret.
                    "url": str(response.request.url),
                    "status": response.status_code,
                    "bytes": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
            )

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def sha256(self) -> str:
        with self._lock:
            return self._digest.copy().hexdigest()


class _HttpService:
    """An httpx client with a rate limiter, bounded retries and response recording."""

    service = "http"

    def __init__(
        self,
        base_url: str,
        transport: httpx.BaseTransport | None,
        rate: float,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_wait: float,
        sleep: Callable[[float], None],
        limiter: RateLimiter | None,
        user_agent: str,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self.limiter = limiter or RateLimiter(rate)
        self._logs: list[ResponseLog] = []
        self._logs_lock = threading.Lock()
        self._client = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> _HttpService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def record_responses(self) -> Iterator[ResponseLog]:
        """Collect every response body used inside the block (for provenance hashes)."""
        log = ResponseLog()
        with self._logs_lock:
            self._logs.append(log)
        try:
            yield log
        finally:
            with self._logs_lock:
                self._logs.remove(log)

    def _wait_for(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.backoff * (2**attempt), self.max_wait)
        return max(backoff, retry_after or 0.0)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        url = self.base_url + path
        last_problem = ""
        last_status: int | None = None
        for attempt in range(self.max_retries + 1):
            self.limiter.acquire()
            retry_after: float | None = None
            try:
                response = self._client.request(method, path, params=params, data=data)
            except _RETRY_EXCEPTIONS as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                last_status = None
            except httpx.HTTPError as exc:
                raise SearchServiceError(
                    f"request failed: {type(exc).__name__}: {exc}", source=self.service, url=url
                ) from None
            else:
                status = response.status_code
                if status < 400:
                    with self._logs_lock:
                        logs = list(self._logs)
                    for log in logs:
                        log.add(response)
                    return response
                last_status = status
                last_problem = f"HTTP {status}: {_excerpt(response)}"
                if status not in RETRY_STATUSES:
                    raise SearchServiceError(
                        last_problem, source=self.service, status=status, url=url
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_wait:
                    raise SearchServiceError(
                        f"{last_problem} (the service asks to retry after {retry_after:.0f} s, "
                        f"longer than the {self.max_wait:.0f} s this client waits)",
                        source=self.service,
                        status=status,
                        url=url,
                        retry_after=retry_after,
                    )
            if attempt < self.max_retries:
                self._sleep(self._wait_for(attempt, retry_after))
        raise SearchServiceError(
            f"gave up after {self.max_retries + 1} attempts; last: {last_problem}",
            source=self.service,
            status=last_status,
            url=url,
        )


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "") if text else "(empty body)"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class HistoryKey:
    """A result set stored on NCBI's history server (``WebEnv`` + ``query_key``)."""

    webenv: str
    query_key: str
    count: int | None = None


@dataclass
class ESearchResult:
    """One esearch answer, or (from :meth:`PubMedClient.search_all`) a whole result set.

    ``count`` is the number of matches PubMed reported; ``ids`` the PMIDs returned (all of them
    for ``search_all``). ``warnings`` holds the non-fatal notices (phrases not found or ignored,
    output messages). ``slices`` lists the date slices ``search_all`` used for a set above
    PubMed's 9,999 cap, as ``{"mindate", "maxdate", "count"}``.
    """

    count: int
    ids: list[str]
    retstart: int = 0
    retmax: int = 0
    webenv: str | None = None
    query_key: str | None = None
    query_translation: str | None = None
    translations: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def history(self) -> HistoryKey | None:
        if self.webenv and self.query_key:
            return HistoryKey(self.webenv, self.query_key, self.count)
        return None


# --------------------------------------------------------------------------- parsing

_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
)


def _xml_root(body: bytes, source: str) -> Any:
    try:
        return etree.fromstring(body, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"unreadable E-utilities XML: {exc.msg}", source=source) from None


def _child_text(element: Any, tag: str) -> str | None:
    child = element.find(tag)
    if child is None:
        return None
    text = "".join(child.itertext()).strip()
    return text or None


def _raise_xml_errors(root: Any, source: str) -> None:
    """Raise EutilsError for ``<ERROR>`` elements directly under the answer's root."""
    if root.tag == "ERROR":
        raise EutilsError(["".join(root.itertext()).strip() or "(no message)"], source=source)
    messages = ["".join(e.itertext()).strip() for e in root.findall("ERROR")]
    messages = [m for m in messages if m]
    if messages:
        raise EutilsError(messages, source=source)


def _raise_json_errors(obj: Any, source: str) -> None:
    if not isinstance(obj, dict):
        raise FormatError("unexpected E-utilities JSON (not an object)", source=source)
    error = obj.get("error") or obj.get("ERROR")
    if error:
        detail = {k: v for k, v in obj.items() if k not in ("error", "ERROR", "api-key")}
        message = str(error) + (f" ({json.dumps(detail)})" if detail else "")
        raise EutilsError([message], source=source)
    for key in ("esummaryresult", "esearchresult", "linksets"):
        inner = obj.get(key)
        if isinstance(inner, list) and inner and all(isinstance(m, str) for m in inner):
            raise EutilsError([str(m) for m in inner], source=source)
        if isinstance(inner, dict) and inner.get("ERROR"):
            raise EutilsError([str(inner["ERROR"])], source=source)


def parse_esearch(body: bytes, source: str = "esearch") -> ESearchResult:
    """Parse an esearch answer (XML, or JSON from ``retmode=json``) into an ESearchResult."""
    if body.lstrip()[:1] == b"{":
        return _parse_esearch_json(body, source)
    root = _xml_root(body, source)
    _raise_xml_errors(root, source)
    if root.tag != "eSearchResult":
        raise FormatError(f"not an esearch answer: root element <{root.tag}>", source=source)
    count_text = _child_text(root, "Count")
    if count_text is None or not count_text.isdigit():
        raise FormatError("esearch answer without a Count", source=source)
    id_list = root.find("IdList")
    ids = (
        []
        if id_list is None
        else [t for t in ("".join(i.itertext()).strip() for i in id_list) if t]
    )
    warnings: list[str] = []
    error_list = root.find("ErrorList")
    if error_list is not None:
        for child in error_list:
            text = "".join(child.itertext()).strip()
            if child.tag in _ERRORLIST_TAGS and text:
                warnings.append(f"{child.tag}: {text}")
    warning_list = root.find("WarningList")
    if warning_list is not None:
        for child in warning_list:
            text = "".join(child.itertext()).strip()
            if text:
                warnings.append(f"{child.tag}: {text}")
    translations: list[tuple[str, str]] = []
    translation_set = root.find("TranslationSet")
    if translation_set is not None:
        for translation in translation_set.findall("Translation"):
            source_text = _child_text(translation, "From") or ""
            target = _child_text(translation, "To") or ""
            translations.append((source_text, " ".join(target.split())))
    return ESearchResult(
        count=int(count_text),
        ids=ids,
        retstart=int(_child_text(root, "RetStart") or 0),
        retmax=int(_child_text(root, "RetMax") or 0),
        webenv=_child_text(root, "WebEnv"),
        query_key=_child_text(root, "QueryKey"),
        query_translation=_child_text(root, "QueryTranslation"),
        translations=translations,
        warnings=warnings,
    )


def _parse_esearch_json(body: bytes, source: str) -> ESearchResult:
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise FormatError(f"unreadable E-utilities JSON: {exc}", source=source) from None
    _raise_json_errors(obj, source)
    result = obj.get("esearchresult")
    if not isinstance(result, dict) or "count" not in result:
        raise FormatError("esearch JSON without esearchresult.count", source=source)
    warnings: list[str] = []
    labels = {
        "phrasesnotfound": "PhraseNotFound",
        "fieldsnotfound": "FieldNotFound",
        "phrasesignored": "PhraseIgnored",
        "quotedphrasesnotfound": "QuotedPhraseNotFound",
        "outputmessages": "OutputMessage",
    }
    for section in ("errorlist", "warninglist"):
        block = result.get(section)
        if isinstance(block, dict):
            for key, values in block.items():
                for value in values if isinstance(values, list) else [values]:
                    if value:
                        warnings.append(f"{labels.get(key, key)}: {value}")
    translations = [
        (str(t.get("from", "")), str(t.get("to", "")))
        for t in result.get("translationset") or []
        if isinstance(t, dict)
    ]
    return ESearchResult(
        count=int(result["count"]),
        ids=[str(i) for i in result.get("idlist") or []],
        retstart=int(result.get("retstart") or 0),
        retmax=int(result.get("retmax") or 0),
        webenv=result.get("webenv") or None,
        query_key=str(result["querykey"]) if result.get("querykey") else None,
        query_translation=result.get("querytranslation") or None,
        translations=translations,
        warnings=warnings,
    )


def _check_efetch(body: bytes, source: str) -> None:
    """Raise EutilsError if an efetch answer is an E-utilities error instead of articles."""
    head = body[:4096]
    if b"<ERROR>" not in head and b"<ERROR " not in head:
        return
    root = _xml_root(body, source)
    _raise_xml_errors(root, source)


# --------------------------------------------------------------------------- dates


def eutils_date(value: str | dt.date | None) -> str | None:
    """A date as E-utilities takes it (``YYYY``, ``YYYY/MM`` or ``YYYY/MM/DD``; ``-`` is
    accepted as separator); raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d")
    text = str(value).strip().replace("-", "/")
    if _DATE_TEXT.match(text):
        try:
            _date_bound(text, end=False)
        except ValueError:
            pass
        else:
            return text
    raise ValueError(f"invalid date {value!r}: use YYYY, YYYY/MM or YYYY/MM/DD")


def _date_bound(text: str, *, end: bool) -> dt.date:
    """The first (or, with ``end``, the last) day an E-utilities date text covers."""
    parts = [int(p) for p in text.split("/")]
    year = parts[0]
    if len(parts) == 3:
        return dt.date(year, parts[1], parts[2])
    if len(parts) == 2:
        if not end:
            return dt.date(year, parts[1], 1)
        following = dt.date(year + (parts[1] == 12), parts[1] % 12 + 1, 1)
        return following - dt.timedelta(days=1)
    return dt.date(year, 12, 31) if end else dt.date(year, 1, 1)


# --------------------------------------------------------------------------- the client


class PubMedClient(_HttpService):
    """NCBI E-utilities for PubMed (and, through ``db=``, other Entrez databases).

    ``api_key``/``email`` default to ``$NCBI_API_KEY``/``$NCBI_EMAIL``; ``rate`` defaults to
    10 requests per second with a key and 3 without. ``transport`` replaces httpx's network
    transport (tests pass an ``httpx.MockTransport``). ``limiter`` shares one
    :class:`RateLimiter` between clients (NCBI's limit is per key or per IP, not per client);
    ``sleep`` is what waits between retries (tests pass a recorder).
    """

    service = "E-utilities"

    def __init__(
        self,
        api_key: str | None = None,
        email: str | None = None,
        tool: str = "leads",
        base_url: str = EUTILS_URL,
        transport: httpx.BaseTransport | None = None,
        rate: float | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        from leads import __version__

        self.api_key = api_key or os.environ.get("NCBI_API_KEY") or None
        self.email = email or os.environ.get("NCBI_EMAIL") or None
        self.tool = tool
        if rate is None:
            rate = 10.0 if self.api_key else 3.0
        super().__init__(
            base_url,
            transport,
            rate,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_wait=max_wait,
            sleep=sleep,
            limiter=limiter,
            user_agent=f"leads/{__version__} ({tool})",
        )

    def __enter__(self) -> PubMedClient:
        return self

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, utility: str, params: Mapping[str, Any]) -> bytes:
        data: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        data["tool"] = self.tool
        if self.email:
            data["email"] = self.email
        if self.api_key:
            data["api_key"] = self.api_key
        return self._request("POST", f"{utility}.fcgi", data=data).content

    @staticmethod
    def _pmids(pmids: Iterable[str | int]) -> list[str]:
        out: list[str] = []
        for value in pmids:
            pmid = normalize_pmid(value)
            if pmid is None:
                raise ValueError(f"not a PMID: {value!r}")
            out.append(pmid)
        return out

    # -- esearch ----------------------------------------------------------------------------

    def esearch(
        self,
        term: str,
        *,
        db: str = "pubmed",
        mindate: str | dt.date | None = None,
        maxdate: str | dt.date | None = None,
        datetype: str | None = None,
        retstart: int = 0,
        retmax: int = 20,
        usehistory: bool = False,
        webenv: str | None = None,
        sort: str | None = None,
    ) -> ESearchResult:
        """Run one esearch. Dates are ``YYYY``, ``YYYY/MM``, ``YYYY/MM/DD`` or ``date`` objects.

        E-utilities need both date bounds; a missing one is filled with ``1000/01/01`` or
        ``3000/12/31``. ``datetype`` defaults to ``pdat`` (publication date) when dates are
        given. With ``usehistory`` the result set is kept on the history server
        (:attr:`ESearchResult.history`), for :meth:`efetch`.
        """
        if not term or not term.strip():
            raise ValueError("an empty search term")
        params: dict[str, Any] = {
            "db": db,
            "term": term,
            "retstart": retstart,
            "retmax": retmax,
            "retmode": "xml",
        }
        low, high = eutils_date(mindate), eutils_date(maxdate)
        if low or high:
            params["mindate"] = low or "1000/01/01"
            params["maxdate"] = high or "3000/12/31"
            params["datetype"] = datetype or "pdat"
        if usehistory:
            params["usehistory"] = "y"
        if webenv:
            params["WebEnv"] = webenv
        if sort:
            params["sort"] = sort
        return parse_esearch(self._call("esearch", params), source="esearch")

    def count(self, term: str, **dates: Any) -> ESearchResult:
        """The number of matches and the query translation, without ids (``retmax=0``)."""
        return self.esearch(term, retmax=0, **dates)

    def search_all(
        self,
        term: str,
        *,
        mindate: str | dt.date | None = None,
        maxdate: str | dt.date | None = None,
        datetype: str | None = None,
        page_size: int = PUBMED_ESEARCH_LIMIT,
        split: bool = True,
    ) -> ESearchResult:
        """Every PMID matching ``term``, however many.

        The first esearch keeps the set on the history server (``webenv``/``query_key`` of the
        result, usable with :meth:`efetch`). Up to 9,999 matches are paged with ``retstart``
        (``page_size`` ids per request). A larger set is split into date slices (by
        ``datetype``, default publication date) of at most 9,999 matches each; ``slices`` on
        the result lists them. With ``split=False`` a set above the cap raises
        :class:`ResultLimitError` instead.

        If the ids collected differ in number from the count PubMed reported (records can
        change between requests, and records without a date fall outside every slice), a
        warning says so; the ids are de-duplicated, in the order received.
        """
        if not 1 <= page_size <= PUBMED_ESEARCH_LIMIT:
            raise ValueError(f"page_size must be between 1 and {PUBMED_ESEARCH_LIMIT}")
        dates: dict[str, Any] = {"mindate": mindate, "maxdate": maxdate, "datetype": datetype}
        first = self.esearch(term, retmax=page_size, usehistory=True, **dates)
        result = ESearchResult(
            count=first.count,
            ids=[],
            webenv=first.webenv,
            query_key=first.query_key,
            query_translation=first.query_translation,
            translations=first.translations,
            warnings=list(first.warnings),
        )
        if first.count <= PUBMED_ESEARCH_LIMIT:
            ids = self._page(term, first, page_size, dates)
        elif not split:
            raise ResultLimitError(
                f"{first.count} records match, but PubMed's esearch returns at most "
                f"{PUBMED_ESEARCH_LIMIT}; narrow the query or allow splitting by date",
                source=self.service,
            )
        else:
            ids = self._split(term, first, page_size, dates, result.slices)
        seen: set[str] = set()
        for pmid in ids:
            if pmid not in seen:
                seen.add(pmid)
                result.ids.append(pmid)
        result.retmax = len(result.ids)
        if len(result.ids) != result.count:
            result.warnings.append(
                f"collected {len(result.ids)} PMIDs but PubMed reported {result.count} matches"
            )
        return result

    def _page(
        self, term: str, first: ESearchResult, page_size: int, dates: Mapping[str, Any]
    ) -> list[str]:
        """All ids of a set of at most 9,999, given its first page."""
        ids = list(first.ids)
        total = min(first.count, PUBMED_ESEARCH_LIMIT)
        while len(ids) < total:
            retmax = min(page_size, total - len(ids))
            page = self.esearch(term, retstart=len(ids), retmax=retmax, **dates)
            if not page.ids:
                break  # the set shrank between requests
            ids.extend(page.ids)
        return ids

    def _split(
        self,
        term: str,
        first: ESearchResult,
        page_size: int,
        dates: Mapping[str, Any],
        slices: list[dict[str, Any]],
    ) -> list[str]:
        datetype = dates.get("datetype") or "pdat"
        low_text = eutils_date(dates.get("mindate"))
        high_text = eutils_date(dates.get("maxdate"))
        low = _date_bound(low_text, end=False) if low_text else _SPLIT_START
        high = (
            _date_bound(high_text, end=True)
            if high_text
            else dt.date(dt.date.today().year + _SPLIT_AHEAD_YEARS, 12, 31)
        )
        ids: list[str] = []
        pending = [(low, high)]
        while pending:
            start, end = pending.pop(0)
            window: dict[str, Any] = {"mindate": start, "maxdate": end, "datetype": datetype}
            probe = self.esearch(term, retmax=0, **window)
            if probe.count == 0:
                continue
            if probe.count <= PUBMED_ESEARCH_LIMIT:
                page = self.esearch(term, retmax=min(page_size, probe.count), **window)
                ids.extend(self._page(term, page, page_size, window))
                slices.append(
                    {
                        "mindate": f"{start:%Y/%m/%d}",
                        "maxdate": f"{end:%Y/%m/%d}",
                        "count": page.count,
                    }
                )
                continue
            if start >= end:
                raise ResultLimitError(
                    f"{probe.count} records match on the single day {start:%Y/%m/%d} "
                    f"({datetype}), more than the {PUBMED_ESEARCH_LIMIT} PubMed's esearch can "
                    "return for one query; narrow the query",
                    source=self.service,
                )
            middle = start + (end - start) // 2
            # Depth first and in date order, so the ids come out oldest slice first.
            pending[:0] = [(start, middle), (middle + dt.timedelta(days=1), end)]
        return ids

    # -- epost / efetch ---------------------------------------------------------------------

    def epost(self, pmids: Iterable[str | int], *, db: str = "pubmed") -> HistoryKey:
        """Store ids on the history server; returns their WebEnv/query_key."""
        ids = self._pmids(pmids) if db == "pubmed" else [str(i) for i in pmids]
        body = self._call("epost", {"db": db, "id": ",".join(ids)})
        root = _xml_root(body, "epost")
        _raise_xml_errors(root, "epost")
        webenv, query_key = _child_text(root, "WebEnv"), _child_text(root, "QueryKey")
        if not webenv or not query_key:
            raise FormatError("epost answer without WebEnv/QueryKey", source="epost")
        return HistoryKey(webenv, query_key, len(ids))

    def iter_efetch(
        self,
        pmids: Iterable[str | int] | HistoryKey,
        *,
        batch_size: int = 200,
        count: int | None = None,
    ) -> Iterator[Record]:
        """Yield PubMed records, fetched ``batch_size`` at a time (see :meth:`efetch`)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if isinstance(pmids, HistoryKey):
            yield from self._efetch_history(pmids, batch_size, count)
            return
        ids = self._pmids(pmids)
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            body = self._call("efetch", {"db": "pubmed", "id": ",".join(batch), "retmode": "xml"})
            yield from self._parse_efetch(body, f"efetch {start + 1}-{start + len(batch)}")

    def efetch(
        self,
        pmids: Iterable[str | int] | HistoryKey,
        *,
        batch_size: int = 200,
        count: int | None = None,
    ) -> list[Record]:
        """PubMed records for PMIDs, or for a result set on the history server.

        With PMIDs, they are fetched ``batch_size`` per request (NCBI suggests at most a few
        hundred). With a :class:`HistoryKey`, the set is paged with ``retstart`` up to
        ``count`` (default: the key's count; without one, until a short page). PMIDs PubMed has
        no record for are silently absent from its answer, so compare the PMIDs of the result
        with those asked for. Parsing is :mod:`leads.formats.pubmed_xml`'s.
        """
        return list(self.iter_efetch(pmids, batch_size=batch_size, count=count))

    def _efetch_history(
        self, key: HistoryKey, batch_size: int, count: int | None
    ) -> Iterator[Record]:
        total = count if count is not None else key.count
        start = 0
        while total is None or start < total:
            size = batch_size if total is None else min(batch_size, total - start)
            body = self._call(
                "efetch",
                {
                    "db": "pubmed",
                    "WebEnv": key.webenv,
                    "query_key": key.query_key,
                    "retstart": start,
                    "retmax": size,
                    "retmode": "xml",
                },
            )
            records = list(self._parse_efetch(body, f"efetch history {start + 1}-{start + size}"))
            yield from records
            if not records or (total is None and len(records) < size):
                return
            start += size

    @staticmethod
    def _parse_efetch(body: bytes, source: str) -> Iterator[Record]:
        _check_efetch(body, source)
        return pubmed_xml.read(io.BytesIO(body), source)

    # -- esummary / elink -------------------------------------------------------------------

    def esummary(
        self, pmids: Iterable[str | int], *, db: str = "pubmed", batch_size: int = 200
    ) -> list[dict[str, Any]]:
        """Document summaries (E-utilities JSON, version 2.0 fields), one dict per id, in order.

        An id NCBI cannot summarise comes back as ``{"uid": ..., "error": ...}``.
        """
        ids = self._pmids(pmids) if db == "pubmed" else [str(i) for i in pmids]
        summaries: list[dict[str, Any]] = []
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            body = self._call(
                "esummary", {"db": db, "id": ",".join(batch), "retmode": "json", "version": "2.0"}
            )
            summaries.extend(_parse_esummary(body))
        return summaries

    def elink(
        self,
        pmids: Iterable[str | int],
        *,
        linkname: str | None = None,
        dbfrom: str = "pubmed",
        db: str | None = None,
        cmd: str = "neighbor",
    ) -> dict[str, dict[str, list[str]]]:
        """Links of each id: ``{id: {linkname: [linked ids]}}``.

        The ids are sent as separate ``id`` parameters, so E-utilities answers one link set per
        id instead of merging them. ``linkname`` (e.g. ``pubmed_pubmed_citedin``,
        ``pubmed_pmc``) restricts the answer to one kind of link; ``db`` defaults to the
        target named by ``linkname``. There is no link name to ClinicalTrials.gov (see the
        module notes).
        """
        ids = self._pmids(pmids) if dbfrom == "pubmed" else [str(i) for i in pmids]
        if not ids:
            return {}
        if db is None and linkname:
            parts = linkname.split("_")
            db = parts[1] if len(parts) > 1 else None
        params: dict[str, Any] = {"dbfrom": dbfrom, "id": ids, "cmd": cmd, "retmode": "xml"}
        if db:
            params["db"] = db
        if linkname:
            params["linkname"] = linkname
        return parse_elink(self._call("elink", params))


def _parse_esummary(body: bytes, source: str = "esummary") -> list[dict[str, Any]]:
    if body.lstrip()[:1] == b"<":
        # E-utilities answers some failures in XML whatever retmode was asked for.
        root = _xml_root(body, source)
        _raise_xml_errors(root, source)
        raise FormatError(f"expected JSON, got XML <{root.tag}>", source=source)
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise FormatError(f"unreadable E-utilities JSON: {exc}", source=source) from None
    _raise_json_errors(obj, source)
    result = obj.get("result")
    if not isinstance(result, dict):
        raise FormatError("esummary JSON without a result", source=source)
    uids = result.get("uids") or []
    return [result[uid] for uid in uids if isinstance(result.get(uid), dict)]


def parse_elink(body: bytes, source: str = "elink") -> dict[str, dict[str, list[str]]]:
    """Parse an elink (``cmd=neighbor``) XML answer into ``{id: {linkname: [ids]}}``.

    A link set listing several source ids (ids sent comma-joined) is credited to each of them.
    """
    root = _xml_root(body, source)
    _raise_xml_errors(root, source)
    if root.tag != "eLinkResult":
        raise FormatError(f"not an elink answer: root element <{root.tag}>", source=source)
    links: dict[str, dict[str, list[str]]] = {}
    for link_set in root.findall("LinkSet"):
        errors = ["".join(e.itertext()).strip() for e in link_set.findall("ERROR")]
        id_list = link_set.find("IdList")
        sources = (
            []
            if id_list is None
            else ["".join(i.itertext()).strip() for i in id_list.findall("Id")]
        )
        if errors and not link_set.findall("LinkSetDb"):
            raise EutilsError([e for e in errors if e] or ["(no message)"], source=source)
        for pmid in sources:
            entry = links.setdefault(pmid, {})
            for db in link_set.findall("LinkSetDb"):
                name = _child_text(db, "LinkName") or _child_text(db, "DbTo") or "?"
                targets = ["".join(i.itertext()).strip() for i in db.findall("Link/Id")]
                entry.setdefault(name, []).extend(t for t in targets if t)
    return links
