"""Searches run into a project end to end: real HTTP on 127.0.0.1, recorded payloads, provenance,
publication–registration links, and the ``leads search`` commands.

None of the recorded PubMed records and ClinicalTrials.gov studies belong together: PMID 22663011
(METRIC) names NCT01245062, which was not recorded, and the PMIDs in the recorded
``referencesModule``s (NCT02552212: 35296532, 35733363, 34715908, 30848558; NCT03418623: 23032071)
are not among the recorded PubMed records. ``test_recorded_data_do_not_link`` checks exactly
that. To test linking, :data:`PUBMED_EDITS` and :data:`CTGOV_EDITS` each change one identifier in
a recorded payload (as served; the fixture files stay as recorded):

* PMID 22663011: its trial id NCT01245062 (DataBankList and abstract) becomes NCT05594173;
* NCT02552212: the RESULT reference 35296532 becomes 35830032 (a recorded PubMed record);
* NCT03418623: the BACKGROUND reference 23032071 becomes 38909159 (a recorded PubMed record).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_ctgov_client import FakeCtgov
from test_eutils import EMPTY_PMID, FakeEutils, Loopback, Reply

from leads.project import Project
from leads.search.cli import search_group
from leads.search.ctgov import CtgovClient
from leads.search.eutils import PubMedClient, SearchServiceError
from leads.search.query import CtgovQuery
from leads.search.run import RegistryLink, registry_links, run_ctgov_search, run_pubmed_search

PUBMED_TERM = "melanoma OR spondyloarthritis"
PUBMED_IDS = ["22663011", "35830032", "38909159", "11748933", "11700088", EMPTY_PMID]
CTGOV_COND = "certolizumab"
CTGOV_IDS = ["NCT02552212", "NCT03418623", "NCT05594173"]


def _replace(old: bytes, new: bytes, times: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        assert data.count(old) == times, (old, data.count(old))
        return data.replace(old, new)

    return edit


PUBMED_EDITS = {"22663011": _replace(b"NCT01245062", b"NCT05594173", 2)}
CTGOV_EDITS = {
    "NCT02552212": _replace(b'"pmid": "35296532"', b'"pmid": "35830032"', 1),
    "NCT03418623": _replace(b'"pmid": "23032071"', b'"pmid": "38909159"', 1),
}


class Services:
    def __init__(self, edited: bool) -> None:
        self.eutils = FakeEutils(
            searches={PUBMED_TERM: PUBMED_IDS}, edits=PUBMED_EDITS if edited else None
        )
        self.ctgov = FakeCtgov(
            searches={CTGOV_COND: CTGOV_IDS}, edits=CTGOV_EDITS if edited else None
        )
        self.server = Loopback({"/entrez/eutils/": self.eutils, "/api/v2/": self.ctgov})
        self.eutils_url = self.server.url("/entrez/eutils/")
        self.ctgov_url = self.server.url("/api/v2/")

    def pubmed(self, **kwargs: Any) -> PubMedClient:
        return PubMedClient(
            base_url=self.eutils_url, email="review@example.org", rate=100, **kwargs
        )

    def ctgov_client(self, **kwargs: Any) -> CtgovClient:
        return CtgovClient(base_url=self.ctgov_url, rate=100, **kwargs)


@pytest.fixture
def services() -> Iterator[Services]:
    s = Services(edited=True)
    yield s
    s.server.close()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project.init(tmp_path / "review", actor="tester")
    yield p
    p.close()


def _ids_by(project: Project, search_id: int, key: Callable[[Any], str | None]) -> dict[str, int]:
    return {key(s.record): s.id for s in project.iter_records(search_id=search_id)}  # type: ignore[misc]


def test_searches_are_stored_with_provenance_and_linked(
    services: Services, project: Project
) -> None:
    with services.pubmed() as client:
        pubmed = run_pubmed_search(
            project, PUBMED_TERM, client, mindate="2000", maxdate="2024/12/31"
        )
    with services.ctgov_client() as client:
        ctgov = run_ctgov_search(project, cond=CTGOV_COND, client=client, page_size=2)

    first, second = project.searches()
    # PubMed: one search, the reported count and the fetched count both kept.
    assert (first["id"], first["source"], first["kind"], first["query"]) == (
        pubmed.search_id,
        "pubmed",
        "database",
        PUBMED_TERM,
    )
    assert first["count"] == 5 and pubmed.count_reported == 6 and pubmed.count_fetched == 5
    assert first["note"] == "PubMed reported 6 records; 5 were fetched"
    params = first["params"]
    assert (
        params["count_reported"] == 6 and params["count_fetched"] == 5 and params["count_ids"] == 6
    )
    assert params["missing_pmids"] == [EMPTY_PMID]
    assert params["query_translation"] == f"{PUBMED_TERM}[All Fields]"
    assert (params["mindate"], params["maxdate"], params["datetype"]) == (
        "2000",
        "2024/12/31",
        "pdat",
    )
    assert params["responses"] == 2 and params["api_key_used"] is False
    assert first["response_sha256"] == hashlib.sha256(b"".join(services.eutils.sent)).hexdigest()
    assert first["executed_at"] is not None
    # What went over the wire: one esearch (with history) and one efetch of the six PMIDs.
    (esearch_name, esearch), (efetch_name, efetch) = services.eutils.calls
    assert (esearch_name, efetch_name) == ("esearch", "efetch")
    assert (
        esearch["usehistory"] == ["y"]
        and esearch["mindate"] == ["2000"]
        and esearch["email"] == ["review@example.org"]
    )
    assert efetch["id"] == [",".join(PUBMED_IDS)]

    # ClinicalTrials.gov: one search over two pages, the registrations stored as a register.
    assert (second["source"], second["kind"], second["query"]) == (
        "ctgov",
        "register",
        "query.cond=certolizumab",
    )
    assert (
        second["count"] == 3
        and second["params"]["count_reported"] == 3
        and second["params"]["pages"] == 2
    )
    assert second["params"]["request"]["pageSize"] == "2" and second["note"] is None
    assert second["response_sha256"] == hashlib.sha256(b"".join(services.ctgov.sent)).hexdigest()
    assert len(services.ctgov.sent) == 2

    pmids = _ids_by(project, pubmed.search_id, lambda r: r.pmid)
    ncts = _ids_by(project, ctgov.search_id, lambda r: r.nct_ids[0])
    assert set(pmids) == set(PUBMED_IDS) - {EMPTY_PMID} and set(ncts) == set(CTGOV_IDS)
    assert pubmed.record_ids == [pmids[p] for p in PUBMED_IDS if p != EMPTY_PMID]

    expected = sorted(
        [
            RegistryLink(pmids["22663011"], ncts["NCT05594173"], "publication_nct"),
            RegistryLink(pmids["35830032"], ncts["NCT02552212"], "registry_result"),
        ]
    )
    assert pubmed.links == []  # no registrations were in the project yet
    assert ctgov.links == expected
    assert registry_links(project) == expected
    background = RegistryLink(pmids["38909159"], ncts["NCT03418623"], "registry_background")
    assert registry_links(project, include_background=True) == sorted([*expected, background])


def test_recorded_data_do_not_link(project: Project) -> None:
    services = Services(edited=False)
    try:
        with services.pubmed() as client:
            pubmed = run_pubmed_search(project, PUBMED_TERM, client)
        with services.ctgov_client() as client:
            ctgov = run_ctgov_search(project, cond=CTGOV_COND, client=client, page_size=10)
    finally:
        services.server.close()
    records = {s.id: s.record for s in project.iter_records()}
    metric = next(r for r in records.values() if r.pmid == "22663011")
    assert metric.nct_ids == ["NCT01245062"]
    c_axspand = next(r for r in records.values() if r.nct_ids and r.nct_ids[0] == "NCT02552212")
    assert [ref["pmid"] for ref in c_axspand.extra["references"]] == [
        "35296532",
        "35733363",
        "34715908",
        "30848558",
    ]
    assert pubmed.links == ctgov.links == registry_links(project, include_background=True) == []
    assert ctgov.params["pages"] == 1 and services.ctgov.calls[0][1]["pageSize"] == ["10"]


def test_a_rendered_ctgov_query_keeps_its_warnings(services: Services, project: Project) -> None:
    query = CtgovQuery(
        params={"query.cond": CTGOV_COND}, warnings=("publication types were dropped",)
    )
    with services.ctgov_client() as client:
        run = run_ctgov_search(project, query, client, page_size=5)
    assert run.count_fetched == 3 and run.query == "query.cond=certolizumab"
    (search,) = project.searches()
    assert search["params"]["warnings"] == ["publication types were dropped"]
    assert run.warnings == ["publication types were dropped"]


def test_the_same_search_twice_is_two_searches_that_dedup_joins(
    services: Services, project: Project
) -> None:
    with services.pubmed() as client:
        one = run_pubmed_search(project, PUBMED_TERM, client)
        two = run_pubmed_search(project, PUBMED_TERM, client)
    assert one.search_id != two.search_id and one.response_sha256 == two.response_sha256
    result = project.run_dedup()
    assert result.groups == 5 and result.duplicates == 5
    for group in project.duplicate_groups():
        assert len(group.members) == 2 and set(group.rules.values()) == {"pmid"}
        assert any(m in one.record_ids for m in group.members) and any(
            m in two.record_ids for m in group.members
        )


def test_a_failed_fetch_leaves_the_project_unchanged(services: Services, project: Project) -> None:
    services.eutils.failing["efetch"] = Reply(500, b"Internal Server Error")
    with (
        services.pubmed(max_retries=2, backoff=0.01) as client,
        pytest.raises(SearchServiceError, match="HTTP 500"),
    ):
        run_pubmed_search(project, PUBMED_TERM, client)
    assert project.searches() == [] and project.count_records() == 0
    assert [u for u, _ in services.eutils.calls] == ["esearch", "efetch", "efetch", "efetch"]


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def cli_env(
    services: Services, project: Project, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("NCBI_EMAIL", raising=False)
    monkeypatch.delenv("LEADS_PROJECT", raising=False)
    return {"LEADS_EUTILS_URL": services.eutils_url, "LEADS_CTGOV_URL": services.ctgov_url}


def test_cli_dry_run_then_search_then_links(
    services: Services, project: Project, cli_env: dict[str, str]
) -> None:
    runner = CliRunner()
    where = str(project.path)
    dry = runner.invoke(
        search_group, ["pubmed", PUBMED_TERM, "-p", where, "--dry-run", "--json"], env=cli_env
    )
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) == {
        "query": PUBMED_TERM,
        "count": 6,
        "query_translation": f"{PUBMED_TERM}[All Fields]",
        "warnings": [],
    }
    assert services.eutils.calls[-1][1]["retmax"] == ["0"] and project.searches() == []

    ran = runner.invoke(
        search_group,
        ["pubmed", PUBMED_TERM, "-p", where, "--email", "cli@example.org", "--json"],
        env=cli_env,
    )
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout)
    assert (summary["source"], summary["count_reported"], summary["count_fetched"]) == (
        "pubmed",
        6,
        5,
    )
    assert services.eutils.calls[-1][1]["email"] == ["cli@example.org"]

    dry_ctgov = runner.invoke(
        search_group, ["ctgov", "--cond", CTGOV_COND, "-p", where, "--dry-run"], env=cli_env
    )
    assert dry_ctgov.exit_code == 0, dry_ctgov.output
    assert dry_ctgov.stdout.splitlines()[0] == "3 studies"

    ctgov = runner.invoke(
        search_group,
        ["ctgov", "--cond", CTGOV_COND, "-p", where, "--page-size", "2", "--json"],
        env=cli_env,
    )
    assert ctgov.exit_code == 0, ctgov.output
    summary = json.loads(ctgov.stdout)
    assert summary["count_fetched"] == 3 and [link["via"] for link in summary["links"]] == [
        "publication_nct",
        "registry_result",
    ]
    assert [s["source"] for s in project.searches()] == ["pubmed", "ctgov"]

    links = runner.invoke(search_group, ["links", "-p", where, "--include-background"], env=cli_env)
    assert (
        links.exit_code == 0
        and links.stdout.count("↔") == 3
        and "registry_background" in links.stdout
    )


def test_cli_errors_are_one_line_and_usage_is_checked(
    services: Services, project: Project, cli_env: dict[str, str]
) -> None:
    runner = CliRunner()
    missing = runner.invoke(search_group, ["ctgov", "-p", str(project.path)], env=cli_env)
    assert missing.exit_code == 2 and "give a QUERY, --cond, --intr or --filter" in missing.output
    bad_filter = runner.invoke(
        search_group, ["ctgov", "x", "--filter", "nonsense", "-p", str(project.path)], env=cli_env
    )
    assert bad_filter.exit_code == 2 and "KEY=VALUE" in bad_filter.output
    bad_date = runner.invoke(
        search_group,
        ["pubmed", "x", "--mindate", "31/01/2020", "-p", str(project.path)],
        env=cli_env,
    )
    assert bad_date.exit_code == 2 and "invalid date '31/01/2020'" in bad_date.output
    services.eutils.before.append(Reply(400, b"Bad Request"))
    failed = runner.invoke(search_group, ["pubmed", "x", "-p", str(project.path)], env=cli_env)
    assert failed.exit_code == 1 and "HTTP 400: Bad Request" in failed.output
    assert project.searches() == []


def test_every_command_and_option_has_help() -> None:
    commands = [search_group, *search_group.commands.values()]
    assert {c.name for c in commands} == {"search", "pubmed", "ctgov", "links"}
    for command in commands:
        assert command.help and command.help.strip(), command.name
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), (command.name, param.name)
