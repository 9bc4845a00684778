"""``leads query``: a PICO and/or criteria to a PubMed Boolean query, its sub-queries and the source
of every term.

Contract (``--json``)::

    {"query": str, "subqueries": [str, ...], "terms": [{"term", "element", "facet", "kind",
     "descriptor", "descriptor_ui", "matched", "via", "criterion"}, ...],
     "notes": [str, ...], "engine": str, "ctgov": [...] (with --ctgov)}

The classic engine (default) builds the query from MeSH (:mod:`leads.search.generate`); any
other engine writes it through the ``search_query`` task, and then ``terms`` lists the query's
leaves with ``kind`` ``"model"``. Both are split with the same splitter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from leads.errors import LeadsError
from leads.search.generate import (
    GeneratedQuery,
    GenerationOptions,
    TermSource,
    generate_query,
    rct_filter_node,
    read_criteria,
)
from leads.search.query import And, Node, Term, iter_leaves, parse, split_query, to_pubmed
from leads.tasks.search_query import QueryInput

__all__ = ["engine_query", "query_command"]


def engine_query(inp: QueryInput, engine: str, *, rct_filter: bool = False,
                 max_length: int = 4000) -> GeneratedQuery:
    """Have ``engine`` write the query (``search_query`` task), then parse and split it."""
    from leads.engines import get_engine
    from leads.tasks import TASKS

    result = get_engine(engine).run(TASKS["search_query"], inp)
    topic = parse(result.output.query)
    node: Node = And((topic, rct_filter_node())) if rct_filter else topic
    terms: list[TermSource] = []
    seen: set[str] = set()
    for leaf in iter_leaves(topic):
        rendered = to_pubmed(leaf)
        if rendered not in seen:
            seen.add(rendered)
            terms.append(TermSource(term=rendered, element="model", facet="model", kind="model",
                                    via=f"{result.engine}/{result.model}" if result.model else
                                    result.engine))
    if rct_filter:
        for leaf in iter_leaves(rct_filter_node()):
            rendered = to_pubmed(leaf)
            if rendered not in seen and isinstance(leaf, Term):
                seen.add(rendered)
                terms.append(TermSource(term=rendered, element="filter", facet="rct_filter",
                                        kind="filter", via="Cochrane HSSS 2008 (PubMed)"))
    return GeneratedQuery(
        query=to_pubmed(node), node=node,
        subqueries=[to_pubmed(n) for n in split_query(node, max_length=max_length)],
        terms=terms, notes=[], facets=["model"] + (["rct_filter"] if rct_filter else []),
        topic_node=topic, max_length=max_length,
    )


@click.command("query")
@click.option("--population", "-P", default=None, help="Population / condition.")
@click.option("--intervention", "-I", default=None, help="Intervention (a drug class works too).")
@click.option("--comparison", "-C", default=None, help="Comparison (placebo and usual care are "
              "not searched).")
@click.option("--outcome", "-O", default=None, help="Outcome (reported, not ANDed: recall first).")
@click.option("--criteria-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Eligibility criteria, one per line (or prose).")
@click.option("--engine", default="classic", show_default=True,
              help="classic (MeSH-based) or an LLM engine (openai, llamacpp, ...).")
@click.option("--rct-filter/--no-rct-filter", default=False, show_default=True,
              help="AND the Cochrane highly sensitive search strategy for RCTs (PubMed, 2008).")
@click.option("--max-length", type=click.IntRange(min=50), default=4000, show_default=True,
              help="Longest sub-query in characters.")
@click.option("--ctgov", is_flag=True, help="Also give the ClinicalTrials.gov API v2 parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def query_command(population: str | None, intervention: str | None, comparison: str | None,
                  outcome: str | None, criteria_file: Path | None, engine: str, rct_filter: bool,
                  max_length: int, ctgov: bool, as_json: bool) -> None:
    """Build a PubMed Boolean query from a PICO and/or eligibility criteria."""
    criteria = read_criteria(criteria_file.read_text(encoding="utf-8")) if criteria_file else []
    try:
        inp = QueryInput(population=population, intervention=intervention, comparison=comparison,
                         outcome=outcome, criteria=criteria)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise click.UsageError(message) from None
    try:
        if engine == "classic":
            generated = generate_query(
                inp, GenerationOptions(rct_filter=rct_filter, max_length=max_length)
            )
        else:
            generated = engine_query(inp, engine, rct_filter=rct_filter, max_length=max_length)
        ct = [{"params": q.params, "warnings": list(q.warnings)} for q in generated.ctgov()] \
            if ctgov else None
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc

    if as_json:
        out: dict[str, Any] = {**generated.to_dict(), "engine": engine}
        if ct is not None:
            out["ctgov"] = ct
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    click.echo(generated.query)
    if len(generated.subqueries) > 1:
        click.echo(f"\n{len(generated.subqueries)} sub-queries (at most {max_length} characters):")
        for i, sub in enumerate(generated.subqueries, 1):
            click.echo(f"\n[{i}] {sub}")
    for note in generated.notes:
        click.echo(f"\nnote: {note}", err=True)
    if ct is not None:
        for i, q in enumerate(ct, 1):
            click.echo(f"\nClinicalTrials.gov [{i}]: {json.dumps(q['params'], ensure_ascii=False)}")
            for w in q["warnings"]:
                click.echo(f"  warning: {w}", err=True)
