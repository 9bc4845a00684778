"""``leads search``: run PubMed and ClinicalTrials.gov searches into a project.

The main CLI adds :data:`search_group` as a sub-command group. The commands open the project
themselves (``-p``/``$LEADS_PROJECT``), so this module does not import :mod:`leads.cli`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from leads.errors import LeadsError, ProjectError

__all__ = ["search_group"]

_LINK_HELP = "publication–registration links"


class _SearchGroup(click.Group):
    """Shows a LeadsError as one clear line (exit status 1), also when used on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            raise click.ClickException(str(exc)) from None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _project_option(f: Any) -> Any:
    return click.option(
        "-p",
        "--project",
        "project_path",
        envvar="LEADS_PROJECT",
        default=".",
        show_default=True,
        help="Project directory or database URL (or set LEADS_PROJECT).",
    )(f)


def _open_project(path: str) -> Any:
    from leads.project import Project

    return Project.open(path)


def _check_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from leads.search.eutils import eutils_date

    try:
        return eutils_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _pubmed_client(api_key: str | None, email: str | None, ncbi: dict[str, Any]) -> Any:
    from leads.search.eutils import EUTILS_URL, PubMedClient

    return PubMedClient(
        api_key=api_key or ncbi.get("api_key"),
        email=email or ncbi.get("email"),
        base_url=os.environ.get("LEADS_EUTILS_URL") or EUTILS_URL,
    )


def _run_summary(run: Any) -> dict[str, Any]:
    return {
        "search_id": run.search_id,
        "source": run.source,
        "query": run.query,
        "executed_at": run.executed_at.isoformat(),
        "count_reported": run.count_reported,
        "count_fetched": run.count_fetched,
        "response_sha256": run.response_sha256,
        "responses": run.responses,
        "warnings": run.warnings,
        "links": [link._asdict() for link in run.links],
    }


def _print_run(run: Any) -> None:
    reported = "?" if run.count_reported is None else str(run.count_reported)
    click.echo(
        f"Stored {run.count_fetched} records from {run.source} as search {run.search_id} "
        f"(reported: {reported}; sha256 {run.response_sha256[:12]}…)"
    )
    for warning in run.warnings:
        click.echo(f"warning: {warning}", err=True)
    if run.links:
        click.echo(f"{len(run.links)} {_LINK_HELP}:")
        for link in run.links:
            click.echo(f"  record {link.publication} ↔ record {link.registration} ({link.via})")


@click.group(name="search", cls=_SearchGroup)
def search_group() -> None:
    """Search PubMed or ClinicalTrials.gov and store the results in the project.

    Each run is stored as one search with its provenance (query, parameters, date, counts and
    the SHA-256 of the service's responses), ready for `leads dedup run`. Set
    LEADS_EUTILS_URL or LEADS_CTGOV_URL to use another server (a mirror or a test server).
    """


@search_group.command(name="pubmed")
@click.argument("query")
@_project_option
@click.option(
    "--mindate", callback=_check_date, help="Earliest date (YYYY, YYYY/MM or YYYY/MM/DD)."
)
@click.option("--maxdate", callback=_check_date, help="Latest date (YYYY, YYYY/MM or YYYY/MM/DD).")
@click.option(
    "--datetype",
    type=click.Choice(["pdat", "edat", "mdat"]),
    help="Which date --mindate/--maxdate refer to: publication (default), Entrez or modification.",
)
@click.option(
    "--api-key",
    envvar="NCBI_API_KEY",
    help="NCBI API key (or set NCBI_API_KEY, or [ncbi] api_key in project.toml); "
    "allows 10 requests per second instead of 3.",
)
@click.option(
    "--email",
    envvar="NCBI_EMAIL",
    help="Contact e-mail sent to NCBI with each request (or set NCBI_EMAIL, or [ncbi] email "
    "in project.toml).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only print the count and PubMed's query translation; store nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pubmed_command(
    query: str,
    project_path: str,
    mindate: str | None,
    maxdate: str | None,
    datetype: str | None,
    api_key: str | None,
    email: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Search PubMed for QUERY (PubMed syntax) and store every matching record."""
    from leads.search.run import run_pubmed_search

    dates: dict[str, Any] = {"mindate": mindate, "maxdate": maxdate, "datetype": datetype}
    if dry_run:
        # A dry run needs no project; one that exists still supplies [ncbi] settings.
        try:
            with _open_project(project_path) as project:
                ncbi = project.config().get("ncbi", {})
        except ProjectError:
            ncbi = {}
        with _pubmed_client(api_key, email, ncbi) as client:
            found = client.count(query, **dates)
        data = {
            "query": query,
            "count": found.count,
            "query_translation": found.query_translation,
            "warnings": found.warnings,
        }
        if as_json:
            _echo_json(data)
        else:
            click.echo(f"{found.count} records")
            click.echo(f"query translation: {found.query_translation or '(none)'}")
            for warning in found.warnings:
                click.echo(f"warning: {warning}", err=True)
        return
    with _open_project(project_path) as project:
        ncbi = project.config().get("ncbi", {})
        with _pubmed_client(api_key, email, ncbi) as client:
            run = run_pubmed_search(project, query, client, **dates)
    if as_json:
        _echo_json(_run_summary(run))
    else:
        _print_run(run)


@search_group.command(name="ctgov")
@click.argument("query", required=False)
@_project_option
@click.option("--cond", help="Condition or disease (query.cond).")
@click.option("--intr", help="Intervention or treatment (query.intr).")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="An API filter, e.g. overallStatus=RECRUITING or advanced=AREA[Phase]PHASE3 "
    "(repeatable; 'filter.' is added to KEY).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Studies per request.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only print the number of matching studies and the request; store nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def ctgov_command(
    query: str | None,
    project_path: str,
    cond: str | None,
    intr: str | None,
    filters: tuple[str, ...],
    page_size: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Search ClinicalTrials.gov for QUERY (query.term; Essie syntax) and store every study.

    QUERY may be left out when --cond, --intr or --filter says what to search.
    """
    from leads.search.ctgov import CTGOV_URL, CtgovClient
    from leads.search.run import run_ctgov_search

    parsed: dict[str, str] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--filter")
        parsed[key.strip()] = value.strip()
    if not (query or cond or intr or parsed):
        raise click.UsageError("give a QUERY, --cond, --intr or --filter")
    arguments: dict[str, Any] = {"term": query, "cond": cond, "intr": intr, "filters": parsed}
    base_url = os.environ.get("LEADS_CTGOV_URL") or CTGOV_URL
    if dry_run:
        with CtgovClient(base_url=base_url) as client:
            counted = client.count(**arguments)
        request = client.build_params(page_size=page_size, **arguments)
        data = {"count": counted.total_count, "request": request}
        if as_json:
            _echo_json(data)
        else:
            click.echo(f"{counted.total_count} studies")
            click.echo("request: " + "&".join(f"{k}={v}" for k, v in request.items()))
        return
    with _open_project(project_path) as project, CtgovClient(base_url=base_url) as client:
        run = run_ctgov_search(project, client=client, page_size=page_size, **arguments)
    if as_json:
        _echo_json(_run_summary(run))
    else:
        _print_run(run)


@search_group.command(name="links")
@_project_option
@click.option(
    "--include-background",
    is_flag=True,
    help="Also link publications that registrations cite only as BACKGROUND.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the links as JSON.")
def links_command(project_path: str, include_background: bool, as_json: bool) -> None:
    """List the publication–registration links the project's records support."""
    from leads.search.run import registry_links

    with _open_project(project_path) as project:
        links = registry_links(project, include_background=include_background)
    if as_json:
        _echo_json([link._asdict() for link in links])
        return
    if not links:
        click.echo("no links")
    for link in links:
        click.echo(f"record {link.publication} ↔ record {link.registration} ({link.via})")
