"""``leads corpus``: build a local search corpus and search it with PubMed syntax.

The main CLI adds :data:`corpus_group` as the ``corpus`` sub-command group. Contract (used by
scripts and benchmarks)::

    leads corpus build SOURCE... -o CORPUS.db
    leads corpus search CORPUS.db "QUERY" --json
    -> {"count": int, "results": [{"id": str, "pmid": str|null, "title": str}, ...]}

``--json`` prints every match (there is no cap); ``--limit`` only shortens the table printed
without ``--json``. A malformed query prints the error with its position and exits with status 1.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["corpus_group"]


class _CorpusGroup(click.Group):
    """Shows a LeadsError as one clear line (exit status 1), also when used on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("corpus", cls=_CorpusGroup)
def corpus_group() -> None:
    """Build a local search corpus (SQLite + FTS5) from record files and search it offline
    with PubMed query syntax: [tiab], [mh] with explosion, [majr], [pt], dates, Boolean
    operators left to right."""


@corpus_group.command("build")
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The corpus file to write (replaced atomically when the build succeeds).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print the build statistics as JSON.")
def build_command(sources: tuple[str, ...], output: str, quiet: bool, as_json: bool) -> None:
    """Build CORPUS.db from SOURCE files: haystack JSONL (one object per line with doc_id,
    pmid, title, abstract, mesh, year) or any format `leads formats` lists (PubMed XML,
    MEDLINE/nbib, RIS, CSV, leads JSONL...), plain or gzip-compressed. The first record with a
    given id wins; later duplicates are counted and skipped."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from leads.search.corpus import BuildProgress, build_corpus

    console = Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or as_json,
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=None)

        def progress(p: BuildProgress) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            if p.phase == "reading":
                name = p.source.rsplit("/", 1)[-1] if p.source else ""
                text = f"reading {name}: {p.records:,} records ({p.records / elapsed:,.0f}/s)"
            elif p.phase == "indexing":
                text = f"indexing {p.records:,} records: {p.step}"
            else:
                text = "done"
            bar.update(task, description=text)

        stats = build_corpus(list(sources), output, progress=progress)
    if as_json:
        data = {
            "path": stats.path,
            "records": stats.records,
            "duplicates": stats.duplicates,
            "descriptors": stats.descriptors,
            "unresolved_headings": stats.unresolved_headings,
            "docs_with_mesh": stats.docs_with_mesh,
            "docs_with_pubtypes": stats.docs_with_pubtypes,
            "seconds": round(stats.seconds, 3),
            "cpu_seconds": round(stats.cpu_seconds, 3),
            "records_per_second": round(stats.rate, 1),
            "size_bytes": stats.size_bytes,
        }
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{stats.path}: {stats.records:,} records"
        + (f" ({stats.duplicates:,} duplicate ids skipped)" if stats.duplicates else "")
        + f" in {stats.seconds:.1f} s ({stats.rate:,.0f} records/s), "
        f"{stats.size_bytes / 1e6:,.1f} MB"
    )
    if stats.unresolved_headings:
        shown = ", ".join(stats.unresolved_headings[:10])
        more = len(stats.unresolved_headings) - 10
        click.echo(
            f"{len(stats.unresolved_headings)} MeSH headings not in MeSH 2024 (searched by name): "
            + shown
            + (f", ... ({more} more)" if more > 0 else "")
        )


@corpus_group.command("search")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.argument("query")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"count", "results": [{"id", "pmid", "title"}]} with every match (no cap).',
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many matches the table shows (0: all); ignored with --json.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print the parsed query, the FTS5 expressions and SQL used, and notes on "
    "approximations (to stderr with --json).",
)
def search_command(corpus: str, query: str, as_json: bool, limit: int, explain: bool) -> None:
    """Search CORPUS with a PubMed QUERY, e.g. '"Estrogens"[mh] AND random*[tiab]'.

    Untagged terms are mapped to MeSH as PubMed's automatic term mapping does (see `--explain`);
    results are in corpus order."""
    from leads.search.corpus import Corpus

    with Corpus(corpus) as c:
        if explain:
            click.echo(c.explain(query), err=as_json)
        ids = c.matches(query)
        if as_json:
            # UTF-8 bytes straight from SQLite to stdout, piece by piece (see Corpus.iter_json).
            sys.stdout.flush()
            binary = getattr(sys.stdout, "buffer", None)
            for piece in c.iter_json(ids):
                if binary is not None:
                    binary.write(piece)
                else:  # a text-only stream (an embedding application's)
                    sys.stdout.write(piece.decode("utf-8"))
            (binary or sys.stdout).flush()
            return
        shown = c.hits((ids if limit == 0 else ids[:limit]).tolist())
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("id", "pmid", "year", "title", box=None)
    for hit in shown:
        table.add_row(hit.id, hit.pmid or "", str(hit.year or ""), hit.title[:100])
    if shown:
        console.print(table)
    more = f" (first {len(shown):,} shown)" if len(shown) < len(ids) else ""
    console.print(f"{len(ids):,} matches{more}", highlight=False)
