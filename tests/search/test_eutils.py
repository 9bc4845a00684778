"""PubMedClient against recorded E-utilities payloads: offline (httpx.MockTransport) and end to end
through a loopback HTTP server.

The fake service below answers with the recorded bodies in ``tests/fixtures/api/eutils`` (see its
README). Where a test needs an answer that was never recorded (another page of a recorded
result, a search whose ids are ones we have efetch records for), the answer is made from a recorded
payload with the least change possible, and each such change is named where it is made.
``test_search_run`` reuses :class:`FakeEutils`, :func:`mock_transport` and :class:`Loopback`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from leads.errors import SourceError
from leads.search.eutils import (
    PUBMED_ESEARCH_LIMIT,
    EutilsError,
    HistoryKey,
    PubMedClient,
    RateLimiter,
    ResultLimitError,
    SearchServiceError,
    parse_esearch,
    parse_retry_after,
)

API = Path(__file__).resolve().parents[1] / "fixtures" / "api"
EUTILS = API / "eutils"

Params = dict[str, list[str]]


def payload(name: str) -> bytes:
    return (EUTILS / name).read_bytes()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- the fake E-utilities

_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.S)
_PMID = re.compile(rb"<PMID Version=\"1\">(\d+)</PMID>")
EFETCH_FILES = (
    "efetch_pubmed_xml_two-articles.xml",
    "efetch_pubmed_xml_22663011.xml",
    "efetch_pubmed_xml_35830032_structured-abstract.xml",
    "efetch_pubmed_xml_38909159_systematic-review.xml",
)
# 37909814 is a PMID whose recorded efetch answer is an empty PubmedArticleSet.
EMPTY_PMID = "37909814"
HART_IDS = re.findall(
    r"<Id>(\d+)</Id>", payload("esearch_pubmed_author_usehistory_webenv.xml").decode()
)


def _first(params: Params, key: str, default: str | None = None) -> str | None:
    values = params.get(key)
    return values[0] if values else default


class FakeEutils:
    """E-utilities answering from recorded payloads.

    * esearch: ``biopython``, ``abcXYZ`` (PhraseNotFound) and ``cancer`` (42,249 matches) get
      their recorded answer unchanged; ``hart rk[author]`` gets its recorded answer, re-sliced
      by ``retstart``/``retmax`` (Count, WebEnv and ids as recorded, RetStart/RetMax/IdList cut
      to the page asked for); a term in ``searches`` gets the same recorded answer with Count,
      IdList and QueryTranslation replaced by that search's ids (so that the ids are ones we have
      recorded efetch answers for).
    * efetch: the recorded ``PubmedArticle`` elements (byte for byte) of the PMIDs asked for, in a
      recorded ``PubmedArticleSet`` envelope; a request for exactly the PMIDs of one recorded file
      gets that file unchanged. PMIDs without a record are absent, as in PubMed's answers.
    * esummary 27933103 (and, without ids, the recorded ERROR answer), elink 9298984 and the
      epost ERROR answers as recorded.

    ``before`` holds replies sent (once each) before the normal ones: 429s and 5xx for retry
    tests; ``failing`` maps a utility to the reply it always gets. ``sent`` keeps every 200 body in order, for provenance hashes. ``edits`` maps a PMID
    to a function applied to its article bytes.
    """

    def __init__(
        self,
        searches: dict[str, list[str]] | None = None,
        edits: dict[str, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        self.searches = searches or {}
        self.edits = edits or {}
        self.before: list[Reply] = []
        self.failing: dict[str, Reply] = {}
        self.calls: list[tuple[str, Params]] = []
        self.sent: list[bytes] = []
        self.articles: dict[str, bytes] = {}
        self.files: dict[tuple[str, ...], bytes] = {}
        for name in EFETCH_FILES:
            data = payload(name)
            pmids = []
            for article in _ARTICLE.findall(data):
                pmid = _PMID.search(article).group(1).decode()  # type: ignore[union-attr]
                self.articles[pmid] = article
                pmids.append(pmid)
            self.files[tuple(pmids)] = data
        self.files[(EMPTY_PMID,)] = payload("efetch_pubmed_xml_37909814_empty-set.xml")
        envelope = payload("efetch_pubmed_xml_two-articles.xml")
        self.head = envelope[: envelope.index(b"<PubmedArticleSet>")]
        self.history: dict[str, list[str]] = {}

    def __call__(self, utility: str, params: Params) -> Reply:
        self.calls.append((utility, params))
        if self.before:
            return self.before.pop(0)
        if utility in self.failing:
            return self.failing[utility]
        reply = getattr(self, "_" + utility, self._unknown)(params)
        if reply.status == 200:
            self.sent.append(reply.body)
        return reply

    def _unknown(self, params: Params) -> Reply:
        return Reply(500, b"unexpected request in the test's fake E-utilities")

    def _esearch(self, params: Params) -> Reply:
        term = _first(params, "term", "")
        assert term
        recorded = {
            "biopython": "esearch_pubmed_term-biopython.xml",
            "abcXYZ": "esearch_protein_no-hits_PhraseNotFound.xml",
            "cancer": "esearch_pubmed_usehistory_cancer_reldate60.xml",
        }
        if term in recorded and _first(params, "retstart", "0") == "0":
            return Reply(200, payload(recorded[term]), {"Content-Type": "text/xml; charset=UTF-8"})
        if term == "hart rk[author]":
            return Reply(200, self._render(params, HART_IDS, None))
        if term in self.searches:
            return Reply(200, self._render(params, self.searches[term], f"{term}[All Fields]"))
        return self._unknown(params)

    def _render(self, params: Params, ids: list[str], translation: str | None) -> bytes:
        body = payload("esearch_pubmed_author_usehistory_webenv.xml")
        start = int(_first(params, "retstart", "0") or 0)
        size = int(_first(params, "retmax", "20") or 20)
        page = ids[start : start + size]
        id_list = (
            (b"<IdList>\n" + b"".join(b"<Id>%s</Id>\n" % i.encode() for i in page) + b"</IdList>")
            if page
            else b"<IdList/>"
        )
        body = re.sub(rb"<IdList>.*?</IdList>", lambda _: id_list, body, flags=re.S)
        body = re.sub(rb"<Count>\d+</Count>", b"<Count>%d</Count>" % len(ids), body)
        body = re.sub(rb"<RetMax>\d+</RetMax>", b"<RetMax>%d</RetMax>" % len(page), body)
        body = re.sub(rb"<RetStart>\d+</RetStart>", b"<RetStart>%d</RetStart>" % start, body)
        webenv = re.search(rb"<WebEnv>([^<]+)</WebEnv>", body).group(1).decode()  # type: ignore[union-attr]
        if _first(params, "usehistory") == "y":
            self.history[webenv] = ids
        else:
            body = re.sub(rb"<QueryKey>\d+</QueryKey><WebEnv>[^<]*</WebEnv>", b"", body)
        if translation is not None:
            body = re.sub(
                rb"<TranslationSet>.*?</TranslationSet>", b"<TranslationSet/>", body, flags=re.S
            )
            body = re.sub(
                rb"<QueryTranslation>.*?</QueryTranslation>",
                lambda _: b"<QueryTranslation>%s</QueryTranslation>" % translation.encode(),
                body,
            )
        return body

    def _efetch(self, params: Params) -> Reply:
        if _first(params, "WebEnv"):
            ids = self.history[_first(params, "WebEnv") or ""]
            start = int(_first(params, "retstart", "0") or 0)
            pmids = ids[start : start + int(_first(params, "retmax", "20") or 20)]
        else:
            pmids = (_first(params, "id", "") or "").split(",")
        if tuple(pmids) in self.files and not any(p in self.edits for p in pmids):
            return Reply(200, self.files[tuple(pmids)])
        articles = []
        for pmid in pmids:
            if pmid in self.articles:
                article = self.articles[pmid]
                articles.append(self.edits[pmid](article) if pmid in self.edits else article)
        body = (
            self.head + b"<PubmedArticleSet>\n" + b"\n".join(articles) + b"\n</PubmedArticleSet>\n"
        )
        return Reply(200, body)

    def _esummary(self, params: Params) -> Reply:
        if _first(params, "id") == "27933103":
            return Reply(200, payload("esummary_pubmed_json_27933103.json"))
        if not _first(params, "id"):
            return Reply(200, payload("esummary_ERROR_no-id.xml"))
        return self._unknown(params)

    def _epost(self, params: Params) -> Reply:
        if _first(params, "db") == "nothing":
            return Reply(200, payload("epost_ERROR_invalid-db.xml"))
        return Reply(200, payload("epost_ERROR_id-overflow.xml"))

    def _elink(self, params: Params) -> Reply:
        if params.get("id") == ["9298984"]:
            return Reply(200, payload("elink_pubmed_neighbor_9298984.xml"))
        return self._unknown(params)


def request_params(request: httpx.Request) -> Params:
    params = parse_qs(request.url.query.decode(), keep_blank_values=True)
    if request.method == "POST":
        for key, values in parse_qs(request.content.decode(), keep_blank_values=True).items():
            params.setdefault(key, []).extend(values)
    return params


def mock_transport(
    app: Callable[[str, Params], Reply], prefix: str = "/entrez/eutils/"
) -> httpx.MockTransport:
    """An httpx transport answering through ``app(name, params)``; ``name`` is the path after
    ``prefix`` without ``.fcgi``."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith(prefix), path
        reply = app(path[len(prefix) :].removesuffix(".fcgi"), request_params(request))
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body)

    return httpx.MockTransport(handle)


class Loopback:
    """A real HTTP server on 127.0.0.1 (in a thread) routing path prefixes to fake services."""

    def __init__(self, routes: dict[str, Callable[[str, Params], Reply]]) -> None:
        self.routes = routes
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urlsplit(self.path)
                params = parse_qs(url.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                    for key, values in form.items():
                        params.setdefault(key, []).extend(values)
                for prefix, app in outer.routes.items():
                    if url.path.startswith(prefix):
                        reply = app(url.path[len(prefix) :].removesuffix(".fcgi"), params)
                        break
                else:
                    reply = Reply(404, b"no route")
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{prefix}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sleeps(list[float]):
    """A ``sleep`` that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(app: Callable[[str, Params], Reply], **kwargs: Any) -> PubMedClient:
    kwargs.setdefault("rate", 1000.0)
    kwargs.setdefault("sleep", Sleeps())
    return PubMedClient(transport=mock_transport(app), **kwargs)


@pytest.fixture(autouse=True)
def _no_ncbi_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("NCBI_EMAIL", raising=False)


# --------------------------------------------------------------------------- esearch


def test_esearch_parses_the_recorded_answer_and_sends_identification() -> None:
    app = FakeEutils()
    client = client_for(app, email="reviewer@example.org", api_key="KEY123")
    result = client.esearch("biopython")
    assert result.count == 63
    assert result.ids[:3] == ["41282813", "41148224", "41011574"] and len(result.ids) == 20
    assert result.query_translation == '"biopython"[All Fields]'
    assert result.warnings == [] and result.history is None
    utility, params = app.calls[0]
    assert utility == "esearch"
    assert params["db"] == ["pubmed"] and params["term"] == ["biopython"]
    assert params["tool"] == ["leads"] and params["email"] == ["reviewer@example.org"]
    assert params["api_key"] == ["KEY123"] and params["retmax"] == ["20"]


def test_phrase_not_found_becomes_warnings_not_an_error() -> None:
    result = client_for(FakeEutils()).esearch("abcXYZ")
    assert result.count == 0 and result.ids == []
    assert result.warnings == ["PhraseNotFound: abcXYZ", "OutputMessage: No items found."]
    assert result.query_translation == "(abcXYZ[All Fields])"


def test_json_esearch_answer_with_phrases_not_found() -> None:
    result = parse_esearch(payload("esearch_pubmed_json_retmax100.json"))
    assert result.count == 40362 and len(result.ids) == 100 and result.ids[0] == "42555032"
    assert result.warnings == ["PhraseNotFound: p.E1317Q"]
    assert result.query_translation.endswith('NOT "retracted publication"[Publication Type]')
    assert result.translations[0][0] == "APC"


def test_usehistory_answer_carries_webenv_and_translation() -> None:
    result = parse_esearch(payload("esearch_pubmed_usehistory_cancer_reldate60.xml"))
    assert result.count == 42249 and len(result.ids) == 100
    assert result.history == HistoryKey("MCID_6927d6e7fee3e90f880ec190", "1", 42249)
    assert result.translations[0][0] == "cancer"
    assert '"neoplasms"[MeSH Terms]' in result.translations[0][1]
    assert result.query_translation.endswith("AND 2025/09/27:2025/11/26[Date - Entry]")


def test_dates_are_sent_with_both_bounds_and_a_date_type() -> None:
    app = FakeEutils()
    client_for(app).esearch("biopython", mindate=dt.date(2020, 1, 31), maxdate="2024")
    params = app.calls[0][1]
    assert params["mindate"] == ["2020/01/31"] and params["maxdate"] == ["2024"]
    assert params["datetype"] == ["pdat"]
    client_for(app).esearch("biopython", maxdate="2024-06", datetype="edat")
    params = app.calls[1][1]
    assert params["mindate"] == ["1000/01/01"] and params["maxdate"] == ["2024/06"]
    assert params["datetype"] == ["edat"]
    with pytest.raises(ValueError, match="invalid date"):
        client_for(app).esearch("biopython", mindate="31/01/2020")


def test_error_payloads_raise_eutils_errors_with_ncbi_messages() -> None:
    app = FakeEutils()
    client = client_for(app)
    assert client.esummary([]) == [] and app.calls == []  # nothing to ask for, nothing sent
    # The recorded answer to an esummary call without ids, served here for a call with one: the
    # client must surface whatever <ERROR> an answer carries.
    app.before.append(Reply(200, payload("esummary_ERROR_no-id.xml")))
    with pytest.raises(EutilsError, match="Neither query_key nor id specified") as caught:
        client.esummary(["27933103"])
    assert isinstance(caught.value, SourceError)
    with pytest.raises(EutilsError, match="Invalid db name specified: nothing"):
        client.epost(["1"], db="nothing")
    with pytest.raises(EutilsError) as caught:
        client.epost(["12345"])
    assert caught.value.messages == [
        "Empty ID list; Nothing to store",
        "Some IDs have invalid value and were omitted. Maximum ID value 18446744073709551615",
    ]


def test_medgen_search_from_a_cassette_with_its_real_headers() -> None:
    yaml = pytest.importorskip("yaml")
    cassette = yaml.safe_load(
        payload("cassette_biocommons_test_esearch_medgen_ratelimit-headers.yaml")
    )
    recorded = cassette["interactions"][0]
    # The cassette stores the body decoded, so the encoding/length headers no longer apply.
    headers = {
        k: v[0]
        for k, v in recorded["response"]["headers"].items()
        if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")
    }
    body = recorded["response"]["body"]["string"].encode()
    seen: list[Params] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request_params(request))
        return httpx.Response(recorded["response"]["status"]["code"], headers=headers, content=body)

    client = PubMedClient(transport=httpx.MockTransport(handle), rate=1000)
    result = client.esearch("OCRL", db="medgen", retmax=250, usehistory=True)
    assert result.count == 5 and result.ids == ["1054894", "336867", "336322", "168056", "18145"]
    assert result.history == HistoryKey("MCID_66198254cf40a865a76b5e71", "1", 5)
    recorded_form = parse_qs(recorded["request"]["body"])
    for key in ("db", "term", "usehistory", "retmax", "retmode"):
        assert seen[0][key] == recorded_form[key], key


# --------------------------------------------------------------------------- search_all


def test_search_all_pages_with_retstart_and_keeps_the_history_key() -> None:
    app = FakeEutils()
    result = client_for(app).search_all("hart rk[author]", page_size=10)
    assert result.ids == HART_IDS and result.count == 34
    assert result.webenv == "MCID_6934533c4c5abba8c303da1d" and result.query_key == "1"
    starts = [(p["retstart"][0], p["retmax"][0]) for _, p in app.calls]
    assert starts == [("0", "10"), ("10", "10"), ("20", "10"), ("30", "4")]
    assert app.calls[0][1]["usehistory"] == ["y"]
    assert result.query_translation == "hart, rk[Author] OR hart rk[Author]"
    assert result.warnings == []


def test_search_all_refuses_a_recorded_set_above_the_cap_when_splitting_is_off() -> None:
    with pytest.raises(ResultLimitError, match="42249 records match"):
        client_for(FakeEutils()).search_all("cancer", split=False)


class SimulatedPubMed:
    """A PubMed of synthetic records, for the 9,999 cap (no recording has 10,000 ids).

    Answers are in the recorded esearch format and it enforces PubMed's limits: positions above
    9,998 are refused with the error text NCBI gives, and a page never reaches past 9,999.
    ``undated`` records match only searches without dates.
    """

    def __init__(self, dated: dict[str, dt.date], undated: list[str] = ()) -> None:
        self.dated = dated
        self.undated = list(undated)
        self.calls: list[Params] = []

    def __call__(self, utility: str, params: Params) -> Reply:
        assert utility == "esearch"
        self.calls.append(params)
        start = int(params["retstart"][0])
        if start > PUBMED_ESEARCH_LIMIT - 1:
            return Reply(
                200,
                b'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><ERROR>Search Backend failed: '
                b"Exception:\n'retstart' cannot be larger than 9998. For PubMed, ESearch can only "
                b"retrieve the first 9,999 records matching the query.</ERROR></eSearchResult>",
            )
        if "mindate" in params:
            low = _bound(params["mindate"][0], end=False)
            high = _bound(params["maxdate"][0], end=True)
            ids = sorted(
                (p for p, d in self.dated.items() if low <= d <= high),
                key=lambda p: (self.dated[p], p),
                reverse=True,
            )
        else:
            ids = sorted(self.dated, key=lambda p: (self.dated[p], p), reverse=True) + self.undated
        size = min(int(params["retmax"][0]), PUBMED_ESEARCH_LIMIT - start)
        page = ids[start : start + size]
        id_list = b"".join(b"<Id>%s</Id>\n" % p.encode() for p in page)
        return Reply(
            200,
            b'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><Count>%d</Count><RetMax>%d</RetMax>'
            b"<RetStart>%d</RetStart><IdList>\n%s</IdList><TranslationSet/>"
            b"<QueryTranslation>simulated[All Fields]</QueryTranslation></eSearchResult>"
            % (len(ids), len(page), start, id_list),
        )


def _bound(text: str, *, end: bool) -> dt.date:
    parts = [int(p) for p in text.split("/")] + [0, 0]
    year, month, day = parts[:3]
    if day:
        return dt.date(year, month, day)
    if month:
        following = dt.date(year + (month == 12), month % 12 + 1, 1)
        return following - dt.timedelta(days=1) if end else dt.date(year, month, 1)
    return dt.date(year, 12, 31) if end else dt.date(year, 1, 1)


def _dated(n: int, first: dt.date, days: int, offset: int = 1_000_000) -> dict[str, dt.date]:
    return {str(offset + i): first + dt.timedelta(days=i % days) for i in range(n)}


def test_search_all_splits_a_large_set_by_date_and_collects_every_id() -> None:
    records = _dated(23_456, dt.date(2001, 1, 1), days=7000)
    service = SimulatedPubMed(records)
    result = client_for(service).search_all("simulated")
    assert result.count == 23_456
    assert sorted(result.ids) == sorted(records) and len(set(result.ids)) == len(result.ids)
    assert result.warnings == []
    assert result.slices and all(0 < s["count"] <= PUBMED_ESEARCH_LIMIT for s in result.slices)
    assert sum(s["count"] for s in result.slices) == 23_456
    assert all(int(p["retstart"][0]) <= PUBMED_ESEARCH_LIMIT - 1 for p in service.calls)
    assert all(p["datetype"] == ["pdat"] for p in service.calls[1:])
    # Slices are contiguous, in date order, and cover the whole default range.
    bounds = [(s["mindate"], s["maxdate"]) for s in result.slices]
    assert bounds == sorted(bounds)


def test_search_all_within_user_dates_splits_inside_them() -> None:
    records = _dated(12_000, dt.date(2010, 1, 1), days=400)
    service = SimulatedPubMed(records)
    client_for(service).search_all("simulated", mindate="2010", maxdate="2011/02", datetype="edat")
    windows = [(p["mindate"][0], p["maxdate"][0]) for p in service.calls[1:]]
    assert windows[0] == ("2010/01/01", "2011/02/28")
    assert all("2010/01/01" <= low <= high <= "2011/02/28" for low, high in windows)
    assert all(p["datetype"] == ["edat"] for p in service.calls)


def test_search_all_names_a_single_day_that_cannot_be_split() -> None:
    records = _dated(10_500, dt.date(2020, 3, 1), days=1)
    with pytest.raises(ResultLimitError, match="single day 2020/03/01"):
        client_for(SimulatedPubMed(records)).search_all("simulated")


def test_search_all_warns_when_the_slices_miss_records_pubmed_counted() -> None:
    records = _dated(10_010, dt.date(2015, 1, 1), days=30)
    result = client_for(SimulatedPubMed(records, undated=["1", "2", "3"])).search_all("simulated")
    assert result.count == 10_013 and len(result.ids) == 10_010
    assert result.warnings == ["collected 10010 PMIDs but PubMed reported 10013 matches"]


# --------------------------------------------------------------------------- efetch / esummary / elink


def test_efetch_parses_records_with_the_pubmed_xml_reader_in_batches() -> None:
    app = FakeEutils()
    records = client_for(app).efetch(["11748933", "11700088", "22663011", EMPTY_PMID], batch_size=3)
    assert [r.pmid for r in records] == ["11748933", "11700088", "22663011"]
    assert records[2].title == "Improved survival with MEK inhibition in BRAF-mutated melanoma."
    assert records[2].nct_ids == ["NCT01245062"]  # DataBankList (and the abstract)
    assert records[2].doi == "10.1056/nejmoa1203421"
    assert [p["id"] for _, p in app.calls] == [["11748933,11700088,22663011"], [EMPTY_PMID]]
    assert all(p["retmode"] == ["xml"] for _, p in app.calls)


def test_efetch_of_a_recorded_file_and_of_an_empty_set() -> None:
    app = FakeEutils()
    client = client_for(app)
    (record,) = client.efetch(["35830032"])
    assert record.abstract_sections and record.abstract_sections[0].label
    assert app.sent[-1] == payload("efetch_pubmed_xml_35830032_structured-abstract.xml")
    assert client.efetch([EMPTY_PMID]) == []
    with pytest.raises(ValueError, match="not a PMID"):
        client.efetch(["PMC123"])


def test_efetch_from_the_history_server_pages_with_retstart() -> None:
    ids = ["22663011", "35830032", "38909159", "11748933", "11700088"]
    app = FakeEutils(searches={"melanoma": ids})
    client = client_for(app)
    found = client.esearch("melanoma", usehistory=True, retmax=0)
    assert found.count == 5 and found.history is not None
    records = client.efetch(found.history, batch_size=2)
    assert [r.pmid for r in records] == ids
    fetches = [(p["retstart"], p["retmax"], p["query_key"]) for u, p in app.calls if u == "efetch"]
    assert fetches == [(["0"], ["2"], ["1"]), (["2"], ["2"], ["1"]), (["4"], ["1"], ["1"])]


def test_efetch_from_a_cassette_with_recorded_headers() -> None:
    yaml = pytest.importorskip("yaml")
    recorded = yaml.safe_load(payload("cassette_biocommons_test_efetch.yaml"))["interactions"][0]
    headers = {
        k: v[0]
        for k, v in recorded["response"]["headers"].items()
        if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")
    }
    body = recorded["response"]["body"]["string"].encode()

    def handle(request: httpx.Request) -> httpx.Response:
        assert request_params(request)["id"] == parse_qs(recorded["request"]["body"])["id"]
        return httpx.Response(200, headers=headers, content=body)

    (record,) = PubMedClient(transport=httpx.MockTransport(handle), rate=1000).efetch([1234567])
    assert record.pmid == "1234567"
    assert (
        record.title
        == "The effect of castration and peroral estrogen therapy on some psychological functions."
    )
    assert record.doi == "10.1159/000398269"


def test_esummary_returns_the_document_summaries() -> None:
    (summary,) = client_for(FakeEutils()).esummary(["27933103"])
    assert summary["uid"] == "27933103"
    assert summary["title"].startswith("Programmatic conversion of crystal structures")
    assert {"idtype": "doi", "idtypen": 3, "value": "10.1186/s13321-016-0181-z"} in summary[
        "articleids"
    ]


def test_elink_parses_every_link_name_of_the_recorded_answer() -> None:
    app = FakeEutils()
    links = client_for(app).elink(["9298984"])
    assert set(links) == {"9298984"}
    assert set(links["9298984"]) == {
        "pubmed_pubmed",
        "pubmed_pubmed_citedin",
        "pubmed_pubmed_combined",
        "pubmed_pubmed_five",
        "pubmed_pubmed_refs",
        "pubmed_pubmed_reviews",
        "pubmed_pubmed_reviews_five",
    }
    assert links["9298984"]["pubmed_pubmed"][:2] == ["9298984", "8794856"]
    assert len(links["9298984"]["pubmed_pubmed_citedin"]) == 39
    assert app.calls[0][1]["cmd"] == ["neighbor"] and "db" not in app.calls[0][1]


def test_elink_sends_one_id_parameter_per_pmid_and_derives_the_target_db() -> None:
    seen: list[Params] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request_params(request))
        return httpx.Response(200, content=payload("elink_pubmed_neighbor_9298984.xml"))

    client = PubMedClient(transport=httpx.MockTransport(handle), rate=1000)
    client.elink(["9298984", "PMID: 123"], linkname="pubmed_pmc")
    assert seen[0]["id"] == ["9298984", "123"]
    assert seen[0]["linkname"] == ["pubmed_pmc"] and seen[0]["db"] == ["pmc"]


# --------------------------------------------------------------------------- retries and limits


def test_429_with_retry_after_is_retried_after_the_asked_wait() -> None:
    app = FakeEutils()
    rate_limited = payload("esummary_pubmed_json_429_rate-limit.json")
    # The recorded 429 body came without its headers; Retry-After is added here.
    app.before.append(
        Reply(429, rate_limited, {"Retry-After": "2", "Content-Type": "application/json"})
    )
    sleeps = Sleeps()
    client = client_for(app, sleep=sleeps)
    with client.record_responses() as log:
        (summary,) = client.esummary(["27933103"])
    assert summary["uid"] == "27933103"
    assert sleeps == [2.0] and len(app.calls) == 2
    # Only the answer that was used is part of the provenance hash.
    good = payload("esummary_pubmed_json_27933103.json")
    assert log.count == 1 and log.sha256 == hashlib.sha256(good).hexdigest()


def test_5xx_and_connection_errors_back_off_exponentially() -> None:
    app = FakeEutils()
    app.before += [Reply(503, b"Service Unavailable"), Reply(502, b"Bad Gateway")]
    sleeps = Sleeps()
    assert client_for(app, sleep=sleeps, backoff=0.5).esearch("biopython").count == 63
    assert sleeps == [0.5, 1.0]
    failures = [httpx.ConnectError("connection refused")]

    def handle(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop()
        return httpx.Response(200, content=payload("esearch_pubmed_term-biopython.xml"))

    sleeps = Sleeps()
    client = PubMedClient(transport=httpx.MockTransport(handle), rate=1000, sleep=sleeps)
    assert client.esearch("biopython").count == 63 and sleeps == [1.0]


def test_retries_are_bounded_and_the_error_names_the_service_answer() -> None:
    app = FakeEutils()
    rate_limited = payload("esummary_pubmed_json_429_rate-limit.json")
    app.before += [Reply(429, rate_limited) for _ in range(10)]
    sleeps = Sleeps()
    client = client_for(app, sleep=sleeps, max_retries=3, backoff=1.0, max_wait=3.0)
    with pytest.raises(SearchServiceError, match="API rate limit exceeded") as caught:
        client.esummary(["27933103"])
    assert caught.value.status == 429 and "gave up after 4 attempts" in str(caught.value)
    assert sleeps == [1.0, 2.0, 3.0] and len(app.calls) == 4


def test_a_retry_after_longer_than_max_wait_fails_at_once() -> None:
    app = FakeEutils()
    app.before.append(
        Reply(429, payload("esummary_pubmed_json_429_rate-limit.json"), {"Retry-After": "3600"})
    )
    sleeps = Sleeps()
    with pytest.raises(SearchServiceError, match="retry after 3600 s") as caught:
        client_for(app, sleep=sleeps, max_wait=60).esummary(["27933103"])
    assert caught.value.retry_after == 3600 and sleeps == [] and len(app.calls) == 1


def test_client_errors_are_not_retried() -> None:
    app = FakeEutils()
    app.before.append(Reply(400, b"Bad Request"))
    with pytest.raises(SearchServiceError, match="HTTP 400: Bad Request") as caught:
        client_for(app).esearch("biopython")
    assert caught.value.status == 400 and len(app.calls) == 1


def test_retry_after_as_an_http_date() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    seconds = parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 25 < seconds <= 30
    assert parse_retry_after("5") == 5.0 and parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_rate_limiter_spaces_calls_by_its_interval() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert waits == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not saved up as a burst
    limiter.acquire()
    limiter.acquire()
    assert waits[4:] == [0.25]
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_rate_limiter_is_shared_fairly_across_threads() -> None:
    limiter = RateLimiter(50)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        limiter.acquire()
        with lock:
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    # Stamps are taken after acquire(), so a descheduled thread can bunch two of them; check the
    # rate over windows rather than single gaps: 12 slots of 20 ms take at least 220 ms, and any
    # six consecutive grants span at least 4 slots.
    assert stamps[-1] - stamps[0] >= 11 * 0.02 - 0.005
    assert all(b - a >= 4 * 0.02 for a, b in zip(stamps, stamps[5:], strict=False))


def test_client_rate_follows_the_api_key_and_limits_real_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PubMedClient().limiter.rate == 3
    assert PubMedClient(api_key="k").limiter.rate == 10
    monkeypatch.setenv("NCBI_API_KEY", "from-env")
    monkeypatch.setenv("NCBI_EMAIL", "env@example.org")
    client = PubMedClient()
    assert (
        client.limiter.rate == 10
        and client.api_key == "from-env"
        and client.email == "env@example.org"
    )
    app = FakeEutils()
    client = PubMedClient(transport=mock_transport(app), rate=20)
    started = time.monotonic()
    for _ in range(5):
        client.esearch("biopython")
    assert time.monotonic() - started >= 4 * 0.05 - 0.005
    assert all(
        p["api_key"] == ["from-env"] and p["email"] == ["env@example.org"] for _, p in app.calls
    )


def test_response_log_hashes_bodies_in_order_and_keeps_no_key() -> None:
    app = FakeEutils()
    client = client_for(app, api_key="SECRET")
    with client.record_responses() as log:
        client.esearch("biopython")
        client.efetch(["11748933", "11700088"])
    expected = hashlib.sha256(
        payload("esearch_pubmed_term-biopython.xml") + payload("efetch_pubmed_xml_two-articles.xml")
    ).hexdigest()
    assert log.sha256 == expected and log.count == 2
    assert "SECRET" not in repr(log.entries)
    assert [e["url"].rsplit("/", 1)[-1] for e in log.entries] == ["esearch.fcgi", "efetch.fcgi"]


# --------------------------------------------------------------------------- end to end over HTTP


@pytest.fixture
def loopback() -> Any:
    app = FakeEutils()
    server = Loopback({"/entrez/eutils/": app})
    server.app = app  # type: ignore[attr-defined]
    yield server
    server.close()


def test_end_to_end_over_loopback_http(loopback: Any) -> None:
    client = PubMedClient(
        base_url=loopback.url("/entrez/eutils/"), email="e2e@example.org", rate=50
    )
    with client:
        found = client.search_all("hart rk[author]", page_size=20)
        records = client.efetch(["22663011", "35830032", EMPTY_PMID])
        links = client.elink(["9298984"])
        with pytest.raises(EutilsError, match="Invalid db name"):
            client.epost(["1"], db="nothing")
    assert found.ids == HART_IDS
    assert [r.pmid for r in records] == ["22663011", "35830032"]
    assert len(links["9298984"]["pubmed_pubmed_refs"]) == 56
    assert [u for u, _ in loopback.app.calls] == ["esearch", "esearch", "efetch", "elink", "epost"]


def test_end_to_end_retry_after_is_honoured_in_real_time(loopback: Any) -> None:
    loopback.app.before.append(
        Reply(429, payload("esummary_pubmed_json_429_rate-limit.json"), {"Retry-After": "1"})
    )
    client = PubMedClient(base_url=loopback.url("/entrez/eutils/"), rate=50, backoff=0.01)
    started = time.monotonic()
    (summary,) = client.esummary(["27933103"])
    assert summary["uid"] == "27933103"
    assert time.monotonic() - started >= 1.0


def test_end_to_end_connection_refused_is_a_search_service_error() -> None:
    server = Loopback({})
    url = server.url("/entrez/eutils/")
    server.close()  # nothing listens on the port any more
    client = PubMedClient(base_url=url, rate=1000, max_retries=1, backoff=0.01)
    with pytest.raises(SearchServiceError, match="gave up after 2 attempts; last: ConnectError"):
        client.esearch("biopython")
