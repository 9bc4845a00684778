"""``leads documents``: read full texts, attach them to a project's records, inspect them.

The main CLI adds :data:`documents_group` as the ``documents`` command group::

    leads documents add -p PROJECT FILES...        parse, store, link to records; reports unmatched
    leads documents list -p PROJECT [--json]
    leads documents show DOC_OR_FILE [-p PROJECT] [--sections] [--tables] [--sentences] [--json]
    leads documents locate DOC_OR_FILE QUOTE... [-p PROJECT] [--json]

``DOC_OR_FILE`` is a file (read on the spot) or the id of a document stored in the project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["documents_group"]


class _DocumentsGroup(click.Group):
    """Shows a LeadsError as one clear line (exit status 1), also when used on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            raise click.ClickException(str(exc)) from None


def _project_option(required: bool) -> Any:
    return click.option(
        "-p", "--project", "project_path", envvar="LEADS_PROJECT",
        default=None if not required else ".", show_default=required,
        help="Project directory or database URL (or set LEADS_PROJECT)."
             + ("" if required else " Needed when DOC_OR_FILE is a stored document id."),
    )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group("documents", cls=_DocumentsGroup)
def documents_group() -> None:
    """Full texts (PMC XML, PDF, Markdown, plain text): sections, tables, sentences, and the
    record each one reports."""


@documents_group.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_project_option(required=True)
@click.option("--record", "record_id", type=int,
              help="Attach to this record id instead of linking by PMID/PMCID/DOI/title (one FILE only).")
@click.option("--no-link", is_flag=True, help="Store without linking to a record.")
@click.option("--force", is_flag=True, help="Store a file again even if the project holds one with the same hash.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def add_command(files: tuple[Path, ...], project_path: str, record_id: int | None, no_link: bool,
                force: bool, as_json: bool) -> None:
    """Parse FILES, store them in the project and link each to the record it reports (PMID,
    PMCID, DOI, else a close title match). Files that match no record are stored unlinked and
    listed; files that cannot be read are reported and skipped (exit status 1)."""
    from leads.documents.store import add_document
    from leads.project import Project

    if record_id is not None and len(files) != 1:
        raise click.UsageError("--record attaches one file; give exactly one FILE")
    failures = 0
    unmatched: list[str] = []
    with Project.open(project_path) as project:
        for path in files:
            try:
                result = add_document(project, path, record_id, link=not no_link, force=force)
            except LeadsError as exc:
                failures += 1
                if as_json:
                    _echo_json({"file": str(path), "error": str(exc)})
                else:
                    click.echo(f"error: {exc}", err=True)
                continue
            stored = result.document
            if stored.record_id is None:
                unmatched.append(str(path))
            if as_json:
                _echo_json({"file": str(path), "document_id": stored.id, "created": result.created,
                            "record_id": stored.record_id, "link": stored.link, "format": stored.format,
                            "title": stored.title})
                continue
            state = "added" if result.created else "already held as"
            if stored.record_id is None:
                where = "not linked to any record"
            else:
                link = stored.link
                how = link.get("method", "?")
                score = f" {link['score']:.2f}" if how == "title" and "score" in link else ""
                where = f"record {stored.record_id} (by {how}{score})"
            click.echo(f"{path}: {state} document {stored.id}, {where}")
    if not as_json and unmatched:
        click.echo(f"{len(unmatched)} file(s) matched no record: " + ", ".join(unmatched))
    if failures:
        raise SystemExit(1)


@documents_group.command("list")
@_project_option(required=True)
@click.option("--record", "record_id", type=int, help="Only the documents of this record.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(project_path: str, record_id: int | None, as_json: bool) -> None:
    """List the full texts stored in the project."""
    from dataclasses import asdict

    from leads.documents.store import list_documents
    from leads.project import Project

    with Project.open(project_path) as project:
        rows = list_documents(project, record_id=record_id)
    if as_json:
        _echo_json([asdict(row) for row in rows])
        return
    for row in rows:
        record = f"record {row.record_id}" if row.record_id is not None else "unlinked"
        click.echo(f"{row.id}\t{row.format}\t{record}\t{row.file_name or ''}\t{(row.title or '')[:80]}")


def _load(doc_or_file: str, project_path: str | None) -> Any:
    from leads.documents.reader import read_document

    path = Path(doc_or_file)
    if path.exists():
        return read_document(path)
    if doc_or_file.isdigit():
        if not project_path:
            raise click.UsageError(f"{doc_or_file} is not a file; give -p PROJECT to load stored document "
                                   f"{doc_or_file}")
        from leads.documents.store import get_document
        from leads.project import Project

        with Project.open(project_path) as project:
            return get_document(project, int(doc_or_file))
    raise click.UsageError(f"{doc_or_file}: no such file (and not a document id)")


@documents_group.command("show")
@click.argument("doc_or_file")
@_project_option(required=False)
@click.option("--sections", is_flag=True, help="List the sections (type, level, title, sentences).")
@click.option("--tables", is_flag=True, help="Print every table as its grid.")
@click.option("--sentences", "section_type", default=None,
              help="Print the sentences of sections of this type (e.g. methods, results, all).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole parsed document as JSON.")
def show_command(doc_or_file: str, project_path: str | None, sections: bool, tables: bool,
                 section_type: str | None, as_json: bool) -> None:
    """Show a full text as leads reads it: identifiers, sections, tables, sentences."""
    document = _load(doc_or_file, project_path)
    if as_json:
        click.echo(document.to_json(indent=2))
        return
    ids = ", ".join(f"{k.upper()} {getattr(document, k)}" for k in ("pmid", "pmcid", "doi") if getattr(document, k))
    click.echo(f"{document.title or '(no title)'}")
    click.echo(f"format {document.format}; {len(document.text)} characters, {len(document.sections)} sections, "
               f"{len(document.tables)} tables, {len(document.sentences)} sentences"
               + (f"; {ids}" if ids else ""))
    if document.nct_ids:
        click.echo("trial registrations: " + ", ".join(document.nct_ids))
    for warning in document.metadata.get("warnings", []):
        click.echo(f"warning: {warning}")
    if sections:
        click.echo("")
        for row in document.outline():
            indent = "  " * row["level"]
            click.echo(f"{indent}[{row['type']}] {row['title'] or '(untitled)'}  "
                       f"({row['start']}-{row['end']}, {row['sentences']} sentences)")
    if tables:
        for index, table in enumerate(document.tables):
            click.echo("")
            click.echo(f"{table.label or f'Table {index + 1}'}: {table.caption or ''}".rstrip())
            for r, row in enumerate(table.rows):
                marker = "H" if r < table.header_rows else " "
                click.echo(f"  {marker} | " + " | ".join(row))
            for note in table.footnotes:
                click.echo(f"    {note}")
    if section_type:
        click.echo("")
        chosen = document.sentences if section_type == "all" else document.sentences_in(section_type)
        for sentence in chosen:
            click.echo(f"{sentence.start}-{sentence.end}\t{document.sentence_text(sentence)}")


@documents_group.command("locate")
@click.argument("doc_or_file")
@click.argument("quotes", nargs=-1, required=True)
@_project_option(required=False)
@click.option("--min-score", type=float, default=0.9, show_default=True,
              help="Least fuzzy-match score (0-1) for a quote that is not found verbatim.")
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
def locate_command(doc_or_file: str, quotes: tuple[str, ...], project_path: str | None,
                   min_score: float, as_json: bool) -> None:
    """Check QUOTES against a full text: where each occurs (section, sentence, table cell), or
    that it is unsupported. Exit status 1 when any quote is unsupported."""
    document = _load(doc_or_file, project_path)
    evidence = [document.evidence(quote, min_score=min_score) for quote in quotes]
    if as_json:
        _echo_json([e.model_dump(mode="json") for e in evidence])
    else:
        for item in evidence:
            if not item.supported:
                click.echo(f"UNSUPPORTED: {item.quote!r}")
                continue
            for span in item.spans:
                cell = f", table {span.cell.table + 1} row {span.cell.row + 1} column {span.cell.column + 1}" \
                    if span.cell else ""
                click.echo(f"{span.method} {span.score:.2f} at {span.start}-{span.end} in "
                           f"[{span.section_type}] {span.section or ''}{cell}: {span.text!r}")
    if not all(item.supported for item in evidence):
        raise SystemExit(1)
