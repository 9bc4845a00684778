"""``leads report -p PROJECT [-o DIR]``: write the review report (HTML and Markdown)."""

from __future__ import annotations

from pathlib import Path

import click

from leads.errors import LeadsError


@click.command("report")
@click.option("-p", "--project", "project_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The review project directory.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder to write the report into (default: PROJECT/report).")
@click.option("--format", "formats", type=click.Choice(["html", "md"]), multiple=True,
              help="Report format; repeat for both (default: html and md).")
@click.option("--registry-file", "registry_files", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              multiple=True, help="A ClinicalTrials.gov study JSON to cross-check against (offline); repeatable.")
def report_command(project_dir: Path, out_dir: Path | None, formats: tuple[str, ...],
                   registry_files: tuple[Path, ...]) -> None:
    """Write the review report: question, searches, PRISMA diagram, screening, included studies,
    results with forest plots, registry discrepancies and methods, with every number linked to
    the extracted value and its quote."""
    from leads.project import Project
    from leads.report import build_report

    try:
        with Project.open(project_dir) as project:
            registry = None
            if registry_files:
                from leads.review import included_record_ids
                from leads.synthesis.registry import check_registry

                registry = check_registry(project, record_ids=included_record_ids(project), files=registry_files)
            paths = build_report(project, out_dir or project_dir / "report", formats or ("html", "md"),
                                 registry=registry)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(str(path))
