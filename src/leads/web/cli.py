"""``leads serve``: the reviewers' workspace on 127.0.0.1."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from leads.errors import LeadsError

__all__ = ["serve_command", "workspace_for"]

PROJECT_FILE = "project.toml"


def workspace_for(paths: tuple[Path, ...], workspace: Path | None) -> tuple[Path, list[Path], Path]:
    """(workspace directory, project directories to register, where new projects go).

    ``leads serve PROJECT`` keeps the team's accounts in ``PROJECT/workspace.db`` and puts
    projects created from the pages beside PROJECT; ``leads serve DIR`` (not a project) makes DIR
    the workspace, with new projects in ``DIR/projects``; ``--workspace`` names it explicitly.
    """
    projects = [p for p in paths if (p / PROJECT_FILE).is_file()]
    others = [p for p in paths if not (p / PROJECT_FILE).is_file()]
    if workspace is None and len(others) == 1 and not projects:
        return others[0], [], others[0] / "projects"
    for p in others:
        if not p.exists():
            raise click.BadParameter(f"{p} does not exist", param_hint="PATH")
        raise click.BadParameter(f"{p} is not a leads project (no {PROJECT_FILE}); give project directories, "
                                 "or one workspace directory", param_hint="PATH")
    if workspace is not None:
        return workspace, projects, workspace / "projects"
    if projects:
        return projects[0], projects, projects[0].resolve().parent
    return Path.cwd(), [], Path.cwd() / "projects"


@click.command("serve")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1 to listen on.")
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the workspace (accounts, memberships: workspace.db). Default: the "
                   "project directory when one PROJECT is given, else PATH or the current directory.")
@click.option("--setup-code", help="Code the first-start page asks for before it creates the administrator "
                                   "(default: a random one, printed here).")
@click.option("--ncbi-email", envvar="NCBI_EMAIL",
              help="Contact e-mail sent to NCBI with PubMed searches run from the pages (or set NCBI_EMAIL); "
                   "a project's [ncbi] email in project.toml comes first.")
@click.option("--ncbi-api-key", envvar="NCBI_API_KEY",
              help="NCBI API key for PubMed searches run from the pages (better set NCBI_API_KEY than "
                   "type it here); a project's [ncbi] api_key comes first.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="info", show_default=True, help="Server log level.")
def serve_command(paths: tuple[Path, ...], port: int, workspace: Path | None, setup_code: str | None,
                  ncbi_email: str | None, ncbi_api_key: str | None, log_level: str) -> None:
    """Serve the reviewers' workspace for PATHS (projects, or a workspace directory) on 127.0.0.1.

    Accounts and roles (owner, reviewer, viewer), question and criteria, imports and searches
    (PubMed, ClinicalTrials.gov, local corpora), duplicates, screening with the AI's
    per-criterion verdicts, extraction, PRISMA diagram, exports and audit. On first start, open
    the page and create the administrator with the setup code printed here.
    """
    try:
        import uvicorn

        from leads.web.app import create_app
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"the workspace needs {exc.name!r}: pip install 'leads[web]'") from None
    directory, projects, root = workspace_for(paths, workspace)
    from leads.web.store import WorkspaceStore

    store = WorkspaceStore(directory)
    first_start = store.user_count() == 0
    store.close()
    code = setup_code or (secrets.token_urlsafe(9) if first_start else None)
    try:
        app = create_app(directory, projects, projects_root=root, setup_token=code, ncbi_email=ncbi_email,
                         ncbi_api_key=ncbi_api_key)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    url = f"http://127.0.0.1:{port}/"
    click.echo(f"leads workspace {directory} ({len(projects)} project(s) given) at {url}")
    if first_start:
        click.echo(f"First start: open {url}setup and create the administrator with the setup code: {code}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=log_level)
