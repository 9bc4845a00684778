"""The ``leads`` command line: a thin layer over the Python API."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from leads import __version__
from leads.errors import LeadsError

console = Console()
err_console = Console(stderr=True)


class LeadsGroup(click.Group):
    """A click group that shows a LeadsError as one clear line and exits with status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(1)


def project_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-p",
        "--project",
        "project_path",
        envvar="LEADS_PROJECT",
        default=".",
        show_default=True,
        help="Project directory or database URL (or set LEADS_PROJECT).",
    )(f)


def _open(project_path: str) -> Any:
    from leads.project import Project

    return Project.open(project_path)


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_json_default, ensure_ascii=False, indent=2))


@contextmanager
def _progress(description: str, enabled: bool = True) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr; yields a ``(done, total)`` callback."""
    if not enabled or not err_console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@click.group(cls=LeadsGroup)
@click.version_option(__version__, prog_name="leads")
def main() -> None:
    """leads: AI-assisted systematic reviews of clinical evidence, local-first.

    A review lives in a project directory (create one with `leads init`). Records come in with
    `leads import`, duplicates are grouped by `leads dedup run`, and `leads status` shows where
    the review stands, with the PRISMA 2020 numbers.
    """


@main.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the directory name).")
@click.option(
    "--database-url",
    help="Store the project in this database instead of PATH/project.db "
    "(e.g. postgresql+psycopg://user@host/db).",
)
def init(path: Path, name: str | None, database_url: str | None) -> None:
    """Create a review project in PATH."""
    from leads.project import Project

    with Project.init(path, name=name, database_url=database_url) as project:
        console.print(f"Created project [bold]{project.name}[/] in {project.location}")


@main.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@project_option
@click.option("--format", "format_name", help="Format of the files (default: detected from content).")
@click.option("--force", is_flag=True, help="Import a file even if it was imported before.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def import_(files: tuple[Path, ...], project_path: str, format_name: str | None, force: bool, as_json: bool) -> None:
    """Import records from reference files into the project.

    Formats: RIS, MEDLINE/.nbib, PubMed XML, CSV/TSV/XLSX (ASReview, Rayyan, Covidence),
    BibTeX, EndNote XML, ClinicalTrials.gov JSON, JSONL; plain or gzip-compressed. Each file is
    one search in the project's PRISMA record and is imported completely or not at all.
    """
    results = []
    with _open(project_path) as project:
        for file in files:
            with _progress(f"Importing {file.name}", not as_json) as update:
                result = project.import_file(file, format=format_name, force=force, progress=update)
            results.append(result)
            if not as_json:
                console.print(
                    f"Imported {result.count} records from {file} ({result.format}) as search {result.search_id}"
                )
    if as_json:
        _print_json([dataclasses.asdict(r) | {"record_ids": None} for r in results])


@main.command()
@project_option
@click.option("--format", "format_name", required=True,
              type=click.Choice(["ris", "csv", "tsv", "xlsx", "nbib", "medline", "bibtex",
                                 "endnote-xml", "pubmed-xml", "jsonl"]),
              help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: standard output; required for xlsx).")
@click.option("--all", "include_duplicates", is_flag=True,
              help="Include every duplicate, not just one record per duplicate group.")
@click.option("--search", "search_id", type=int, help="Only records from this search.")
@click.option("--decision", type=click.Choice(["include", "exclude", "maybe"]),
              help="Only records whose standing decision is this.")
@click.option("--stage", type=click.Choice(["title_abstract", "full_text"]), default="title_abstract",
              show_default=True, help="Screening stage that --decision refers to.")
def export(project_path: str, format_name: str, output: Path | None, include_duplicates: bool,
           search_id: int | None, decision: str | None, stage: str) -> None:
    """Export the project's records to a reference file."""
    fmt = "medline" if format_name == "nbib" else format_name
    with _open(project_path) as project:
        kwargs = {"unique": not include_duplicates, "search_id": search_id, "decision": decision, "stage": stage}
        if output is None:
            if fmt == "xlsx":
                raise click.UsageError("xlsx needs --output FILE")
            count = project.export(sys.stdout.buffer, fmt, **kwargs)
            sys.stdout.buffer.flush()
        else:
            count = project.export(output, fmt, **kwargs)
            err_console.print(f"Wrote {count} records to {output}")


@main.group()
def records() -> None:
    """List, filter and show the project's records."""


@records.command(name="list")
@project_option
@click.option("--search", "search_id", type=int, help="Only records from this search.")
@click.option("--unique", is_flag=True, help="One record per duplicate group.")
@click.option("--duplicates", "only_duplicates", is_flag=True, help="Only records in a duplicate group.")
@click.option("--contains", help="Only records whose title or abstract contains this text (case-insensitive).")
@click.option("--year", type=int, help="Only records from this year.")
@click.option("--label", type=click.Choice(["included", "excluded", "unlabelled"]),
              help="Only records with this imported label.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many (0: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
def records_list(project_path: str, search_id: int | None, unique: bool, only_duplicates: bool,
                 contains: str | None, year: int | None, label: str | None, limit: int, as_json: bool) -> None:
    """List records, with filters."""
    wanted_label = {"included": True, "excluded": False, "unlabelled": None}.get(label or "", ...)
    needle = contains.lower() if contains else None
    table = Table("id", "ids", "year", "title", "group", box=None)
    shown = 0
    with _open(project_path) as project:
        for stored in project.iter_records(search_id=search_id, unique=unique):
            r = stored.record
            if only_duplicates and stored.group_id is None:
                continue
            if year is not None and r.year != year:
                continue
            if wanted_label is not ... and r.label is not wanted_label:
                continue
            if needle and needle not in f"{r.title or ''} {r.abstract or ''}".lower():
                continue
            if as_json:
                click.echo(json.dumps({"id": stored.id, "group": stored.group_id, "primary": stored.is_primary,
                                       **r.model_dump(mode="json", exclude_defaults=True)}, ensure_ascii=False))
            else:
                group = "" if stored.group_id is None else f"{stored.group_id}{'*' if stored.is_primary else ''}"
                table.add_row(str(stored.id), r.display_id(), str(r.year or ""), (r.title or "")[:90], group)
            shown += 1
            if limit and shown >= limit:
                break
    if not as_json:
        console.print(table)
        console.print(f"[dim]{shown} shown; group * = the record kept for screening[/]")


@records.command(name="show")
@click.argument("record_id", type=int)
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def records_show(record_id: int, project_path: str, as_json: bool) -> None:
    """Show one record in full."""
    with _open(project_path) as project:
        stored = project.record(record_id)
    r = stored.record
    if as_json:
        _print_json({"id": stored.id, "group": stored.group_id, "primary": stored.is_primary,
                     **r.model_dump(mode="json", exclude_defaults=True)})
        return
    console.print(f"[bold]{r.title or '(no title)'}[/]")
    console.print(", ".join(r.authors[:6]) + (" et al." if len(r.authors) > 6 else ""))
    console.print(" ".join(x for x in [r.journal or "", str(r.year or ""), r.volume or "", r.pages or ""] if x))
    console.print("  ".join(f"{k}: {v}" for k, v in r.identifiers().items()))
    if stored.group_id is not None:
        console.print(f"duplicate group {stored.group_id} ({'kept' if stored.is_primary else 'duplicate'})")
    if r.abstract:
        console.print()
        console.print(r.abstract)
    if r.mesh:
        console.print("\nMeSH: " + "; ".join(("*" if m.major else "") + m.descriptor for m in r.mesh))
    if r.publication_types:
        console.print("Publication types: " + "; ".join(r.publication_types))


@main.group()
def dedup() -> None:
    """Find, review and correct duplicate records."""


@dedup.command(name="run")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def dedup_run(project_path: str, as_json: bool) -> None:
    """Group duplicate records (identifiers first, then fuzzy title/year/author matching)."""
    with _open(project_path) as project, _progress("Deduplicating", not as_json):
        result = project.run_dedup()
    if as_json:
        _print_json(result)
    else:
        console.print(
            f"{result.new_links} new duplicate links; {result.groups} groups holding "
            f"{result.duplicates} duplicates ({result.seconds:.1f} s)"
        )


@dedup.command(name="review")
@project_option
@click.option("--rule", help="Only groups with a link made by this rule (pmid, doi, fuzzy, ...).")
@click.option("--limit", type=int, default=20, show_default=True, help="At most this many groups (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
def dedup_review(project_path: str, rule: str | None, limit: int, as_json: bool) -> None:
    """Show duplicate groups with the rule behind each link, for checking."""
    with _open(project_path) as project:
        groups = project.duplicate_groups()
        if rule:
            groups = [g for g in groups if rule in g.rules.values()]
        if limit:
            groups = groups[:limit]
        if as_json:
            _print_json([{"id": g.id, "primary": g.primary, "members": g.members,
                          "links": [{"a": a, "b": b, "rule": r} for (a, b), r in g.rules.items()]}
                         for g in groups])
            return
        for g in groups:
            console.print(f"[bold]group {g.id}[/] ({len(g.members)} records; rules: "
                          f"{', '.join(sorted(set(g.rules.values())))})")
            for member in g.members:
                r = project.record(member).record
                mark = "*" if member == g.primary else " "
                console.print(f"  {mark} {member:>6}  {r.display_id():<22} {r.year or '':<5} {(r.title or '')[:80]}")
    console.print("[dim]* = the record kept for screening; split a wrong one with `leads dedup split ID`[/]")


@dedup.command(name="split")
@click.argument("record_id", type=int)
@project_option
def dedup_split(record_id: int, project_path: str) -> None:
    """Take RECORD_ID out of its duplicate group (it is a different study)."""
    with _open(project_path) as project:
        others = project.split_duplicate(record_id)
    console.print(f"Record {record_id} separated from {', '.join(map(str, others))}")


@dedup.command(name="link")
@click.argument("record_a", type=int)
@click.argument("record_b", type=int)
@project_option
def dedup_link(record_a: int, record_b: int, project_path: str) -> None:
    """Mark two records as duplicates by hand."""
    with _open(project_path) as project:
        project.link_duplicates(record_a, record_b)
    console.print(f"Linked {record_a} and {record_b} as duplicates")


@main.command()
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(project_path: str, as_json: bool) -> None:
    """Show counts per stage and the PRISMA 2020 flow numbers."""
    with _open(project_path) as project:
        st = project.status()
        stopping = None
        if st.prisma.records_screened:
            from leads.screen.workflow import stopping_estimate

            stopping = stopping_estimate(project)
    if as_json:
        data = dataclasses.asdict(st)
        _print_json({**data, "stopping": stopping.as_dict() if stopping else None})
        return
    _print_status(st)
    if stopping is not None:
        verdict = "the estimate allows stopping" if stopping.stop else "keep screening"
        console.print(f"Stopping estimate: recall >= {stopping.recall_lower_bound:.0%}, at most "
                      f"{stopping.remaining_upper_bound} relevant records left ({verdict}).")


def _print_status(st: Any) -> None:
    p = st.prisma
    console.print(f"[bold]{st.name}[/]  ({st.location}, schema {st.schema_revision})")
    console.print(f"Records: {st.records} from {st.searches} searches/imports; "
                  f"{st.duplicate_groups} duplicate groups; {st.unique_records} unique; "
                  f"{st.documents} full texts")
    if any(k != "unlabelled" for k in st.labels):
        console.print("Imported labels: " + ", ".join(f"{k} {v}" for k, v in sorted(st.labels.items())))
    table = Table("PRISMA 2020", "n", box=None)
    table.add_row("[bold]Identification[/]", "")
    for source, n in p.identified_databases.items():
        table.add_row(f"  Records identified from {source}", str(n))
    for source, n in p.identified_registers.items():
        table.add_row(f"  Records identified from register {source}", str(n))
    table.add_row("  Duplicate records removed", str(p.duplicates_removed))
    table.add_row("[bold]Screening[/]", "")
    table.add_row("  Records screened", str(p.records_screened))
    table.add_row("  Records excluded", str(p.records_excluded))
    table.add_row("  Records still to screen", str(st.undecided["title_abstract"]))
    table.add_row("  Reports sought for retrieval", str(p.reports_sought))
    table.add_row("  Reports not retrieved", str(p.reports_not_retrieved))
    table.add_row("  Reports assessed for eligibility", str(p.reports_assessed))
    for reason, n in p.reports_excluded.items():
        table.add_row(f"  Reports excluded: {reason}", str(n))
    table.add_row("[bold]Included[/]", "")
    table.add_row("  Studies included in review", str(p.studies_included))
    console.print(table)
    if st.ai_decisions:
        console.print(f"[yellow]{st.ai_decisions} standing decisions were made by the AI unattended[/]")


@main.group()
def review() -> None:
    """Run a whole review from a spec file (TOML: question, criteria, sources, stages)."""


@review.command(name="run")
@click.argument("spec_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-p", "--project", "project_path", type=click.Path(file_okay=False, path_type=Path),
              help="Project directory (default: the spec's review.project, relative to here).")
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON.")
def review_run(spec_file: Path, project_path: Path | None, as_json: bool) -> None:
    """Carry out the stages of SPEC_FILE into a project; re-running continues where it stopped."""
    from leads.project import Project
    from leads.review import load_spec, run_review

    spec = load_spec(spec_file)
    say = (lambda message: None) if as_json else (lambda message: console.print(message, highlight=False, markup=False))
    run = run_review(spec, project_path, say=say)
    with Project.open(run.project) as project:
        st = project.status()
    if as_json:
        _print_json(st)
    else:
        console.print()
        _print_status(st)
        reports = [p for p in run.report if p.suffix in (".html", ".md")]
        if reports:
            console.print(f"\nReport: {', '.join(str(p) for p in reports)}", highlight=False)


@main.command(name="formats")
def formats_() -> None:
    """List the file formats leads reads and writes."""
    from leads.formats import formats as registered

    table = Table("format", "read", "write", "extensions", "description", box=None)
    for fmt in registered():
        table.add_row(fmt.name, "yes" if fmt.read else "", "yes" if fmt.write else "",
                      " ".join(fmt.extensions), fmt.description)
    console.print(table)


def iter_commands(group: click.Group = main, prefix: str = "leads") -> Iterator[tuple[str, click.Command]]:
    """Every command and sub-command with its full name (used by the docs and their test)."""
    for name in sorted(group.commands):
        command = group.commands[name]
        full = f"{prefix} {name}"
        yield full, command
        if isinstance(command, click.Group):
            yield from iter_commands(command, full)


def _add_stage_commands() -> None:
    from leads.engines.serve import serve_model_command
    from leads.search.cli import search_group

    main.add_command(search_group, name="search")
    main.add_command(serve_model_command, name="serve-model")
    from leads.search.query_cli import query_command

    main.add_command(query_command, name="query")
    from leads.search.corpus_cli import corpus_group

    main.add_command(corpus_group, name="corpus")
    from leads.screen.cli import simulate_command

    main.add_command(simulate_command, name="simulate")
    from leads.eval.cli import eval_group

    main.add_command(eval_group, name="eval")
    from leads.synthesis.cli import synthesize_command

    main.add_command(synthesize_command, name="synthesize")
    from leads.documents.cli import documents_group

    main.add_command(documents_group, name="documents")
    from leads.screen.project_cli import (
        criteria_group,
        decide_command,
        next_command,
        screen_command,
    )

    main.add_command(criteria_group, name="criteria")
    main.add_command(screen_command, name="screen")
    main.add_command(next_command, name="next")
    main.add_command(decide_command, name="decide")
    from leads.extract.cli import extract_command, extractions_command

    main.add_command(extract_command, name="extract")
    main.add_command(extractions_command, name="extractions")
    from leads.instruct.cli import instruct_group

    main.add_command(instruct_group, name="instruct")
    from leads.train.cli import train_group

    main.add_command(train_group, name="train")
    from leads.web.cli import serve_command

    main.add_command(serve_command, name="serve")
    from leads.report.cli import report_command

    main.add_command(report_command, name="report")


_add_stage_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
