"""``leads simulate``: replay a labelled screening dataset through prioritised screening.

Contract (docs/design): ``leads simulate DATA.csv [--criteria-file F] [--engine E]
[--prior-ids I,J] [--seed S] [--order-out FILE] [--json]``. Record id = 0-based row index;
``--order-out`` writes the ids in screening order (priors first), one per line; ``--json`` prints
the metrics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["simulate_command"]


def _parse_ids(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter("expected record ids separated by commas, e.g. 0,17") from None


@click.command("simulate")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--criteria-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Eligibility criteria, one per line: the topic text for zero-shot ranking, and "
                   "per-criterion verdicts as features when the engine can give them.")
@click.option("--query", help="Topic text for zero-shot ranking (e.g. the review question).")
@click.option("--engine", default=None, help="Engine for criterion verdicts (default: classic).")
@click.option("--prior-ids", help="Given priors: record ids (0-based rows) labelled first, e.g. 0,17.")
@click.option("--random-priors", type=int, default=0, show_default=True,
              help="Draw N relevant and N irrelevant priors with the seed (instead of --prior-ids).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for random priors, background samples and tie-breaking.")
@click.option("--order-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the record ids in screening order (priors first), one per line.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the recall curve (.png or .svg).")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the simulation into this leads project (created if absent).")
@click.option("--embeddings/--no-embeddings", default=True, show_default=True,
              help="MiniLM sentence embeddings as features and as a second model (computed once per "
                   "dataset, then cached).")
@click.option("--verdicts/--no-verdicts", default=None,
              help="Use criterion verdicts as features (default: when the engine implements them).")
@click.option("--full", is_flag=True, help="Retrain through the last record (default: stop retraining "
                                            "once every relevant record was found).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def simulate_command(data: Path, criteria_file: Path | None, query: str | None, engine: str | None,
                     prior_ids: str | None, random_priors: int, seed: int, order_out: Path | None,
                     plot: Path | None, project_dir: Path | None, embeddings: bool,
                     verdicts: bool | None, full: bool, as_json: bool) -> None:
    """Simulate screening DATA (CSV with title, abstract, label_included; any format leads reads)."""
    from leads.errors import LeadsError
    from leads.formats import read_records
    from leads.screen.metrics import plot_recall_curves
    from leads.screen.simulate import simulate

    priors = _parse_ids(prior_ids)
    if priors and random_priors:
        raise click.UsageError("give --prior-ids or --random-priors, not both")
    records = list(read_records(data))
    if not records:
        raise LeadsError(f"{data}: no records")
    missing = next((i for i, r in enumerate(records) if r.label is None), None)
    if missing is not None:
        raise LeadsError(f"{data}: record {missing} has no label (label_included); a simulation needs every label")
    criteria = criteria_file.read_text(encoding="utf-8") if criteria_file else None
    if not priors and not random_priors and not (criteria or query):
        click.echo("note: no priors and no topic text (--criteria-file or --query): the first "
                   "records are drawn at random until a relevant one is found", err=True)

    project = None
    if project_dir is not None:
        from leads.project import Project

        project = Project.open(project_dir) if (project_dir / "project.toml").exists() else \
            Project.init(project_dir)
    try:
        result = simulate(records, priors=priors, n_random_priors=random_priors, seed=seed,
                          criteria=criteria, query=query, engine=engine, verdicts=verdicts,
                          embeddings=embeddings, full=full, project=project)
    finally:
        if project is not None:
            project.close()

    if order_out is not None:
        order_out.parent.mkdir(parents=True, exist_ok=True)
        order_out.write_text("".join(f"{i}\n" for i in result.order), encoding="utf-8")
    if plot is not None:
        try:
            plot_recall_curves({f"leads ({result.mode})": result.curve()}, plot, title=data.name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--plot") from None

    payload: dict[str, Any] = {"dataset": str(data), **result.as_dict()}
    if as_json:
        json.dump(payload, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
        return
    m = result.metrics
    click.echo(f"{data.name}: {len(records)} records, {int(result.labels.sum())} relevant; "
               f"{result.mode}{' ' + str(result.priors) if result.priors else ''}; seed {seed}; "
               f"features: {', '.join(result.features)}")
    click.echo(f"  WSS@95 {m.wss_95:.3f}   recall@10% {m.recall_at_10:.3f}   recall@25% {m.recall_at_25:.3f}")
    click.echo(f"  95% recall after {m.records_to_95} of {m.n_records} records ({m.screened_to_95:.1%}); "
               f"ATD {m.atd:.1%}")
    for rule, stop in result.stopping.items():
        click.echo(f"  stop by {rule}: {stop['screened']} screened ({stop['fraction']:.1%}), "
                   f"recall {stop['recall']:.1%}")
    click.echo(f"  re-rank: {result.rerank_ms['mean']:.1f} ms mean, {result.rerank_ms['max']:.1f} ms max")
