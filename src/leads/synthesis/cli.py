"""``leads synthesize``: pool extracted results into a meta-analysis, optionally with a forest plot.

``leads synthesize INPUT.json|jsonl|csv --measure OR|RR|RD|MD|SMD --model fixed|random
[--method IV|MH] [--tau2 DL|PM|REML] [--hksj] [--plot out.svg|out.png] [--json]``
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from leads.errors import LeadsError

__all__ = ["synthesize_command"]


@click.command("synthesize")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--measure", required=True, type=click.Choice(["OR", "RR", "RD", "MD", "SMD"], case_sensitive=False),
              help="Effect measure: odds ratio, risk ratio, risk difference (binary data); mean "
                   "difference or standardised mean difference, Hedges' g (continuous data).")
@click.option("--model", default="random", show_default=True, type=click.Choice(["fixed", "random"]),
              help="Primary model (both pooled estimates are computed; this one is reported first "
                   "and drawn).")
@click.option("--method", "fixed_method", default="IV", show_default=True,
              type=click.Choice(["IV", "MH"], case_sensitive=False),
              help="Fixed-effect method: inverse variance or Mantel-Haenszel (binary data only).")
@click.option("--tau2", "tau2_method", default="DL", show_default=True,
              type=click.Choice(["DL", "PM", "REML"], case_sensitive=False),
              help="Between-study variance estimator: DerSimonian-Laird, Paule-Mandel or REML.")
@click.option("--hksj", is_flag=True,
              help="Hartung-Knapp-Sidik-Jonkman standard error (t distribution) for the random-effects estimate.")
@click.option("--level", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Confidence level of the intervals.")
@click.option("--continuity", default=0.5, show_default=True, type=click.FloatRange(0, None),
              help="Added to each cell of a 2x2 table with a zero cell (OR, RR).")
@click.option("--outcome", help="Use only the studies whose outcome contains this text.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a forest plot (.svg or .png).")
@click.option("--show", default="primary", show_default=True, type=click.Choice(["primary", "both"]),
              help="Pooled diamonds on the plot: the primary model's, or fixed and random.")
@click.option("--link-template", help="SVG only: make each study row a link, e.g. '/records/{record_id}'.")
@click.option("--title", help="Title of the forest plot.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def synthesize_command(input_path: Path, measure: str, model: str, fixed_method: str, tau2_method: str,
                       hksj: bool, level: float, continuity: float, outcome: str | None,
                       plot_path: Path | None, show: str, link_template: str | None,
                       title: str | None, as_json: bool) -> None:
    """Meta-analyse the studies in INPUT (JSON, JSON Lines or CSV; one study per row or object).

    Binary rows give events and totals per arm, continuous rows mean, SD (or SE / CI) and n per
    arm, and reported effects an estimate with its SE or CI. Studies that cannot be used (no
    events in either arm, values not reported) are listed with the reason.
    """
    from leads.synthesis.adapters import load_input
    from leads.synthesis.forest import forest_plot
    from leads.synthesis.pooling import meta_analysis

    try:
        data = load_input(input_path, outcome=outcome)
        result = meta_analysis(data, measure.upper(), model=model,  # type: ignore[arg-type]
                               fixed_method=fixed_method.upper(),  # type: ignore[arg-type]
                               tau2_method=tau2_method.upper(),  # type: ignore[arg-type]
                               hksj=hksj, level=level, continuity=continuity)
        if plot_path is not None:
            forest_plot(result, plot_path, show=show, link_template=link_template,  # type: ignore[arg-type]
                        title=title)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    _print_summary(result, plot_path)


def _print_summary(result: object, plot_path: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from leads.synthesis.models import MetaAnalysis

    assert isinstance(result, MetaAnalysis)
    console = Console(soft_wrap=True)
    table = Table("study", result.measure, f"{result.level:.0%} CI", "weight", box=None)
    weights = {w.study_id: w.weight for w in result.primary.weights}
    for effect in result.studies:
        table.add_row(effect.label, f"{effect.display_estimate:.3f}",
                      f"{effect.display_ci_lower:.3f} to {effect.display_ci_upper:.3f}",
                      f"{weights[effect.study_id]:.1f}%")
    for pooled in (result.primary, result.random if result.model == "fixed" else result.fixed):
        name = f"{pooled.model} ({pooled.method})"
        table.add_row(f"[bold]{name}[/]", f"[bold]{pooled.display_estimate:.3f}[/]",
                      f"{pooled.display_ci_lower:.3f} to {pooled.display_ci_upper:.3f}", "100%")
    console.print(table)
    h = result.heterogeneity
    i2 = "n/a" if h.i2 is None else f"{h.i2:.1f}%"
    p = "n/a" if h.p_value is None else f"{h.p_value:.3g}"
    console.print(f"Heterogeneity: Q = {h.q:.3f} (df = {h.df}, p = {p}), I² = {i2}, "
                  f"tau² = {h.tau2:.4g} ({h.tau2_method})", highlight=False)
    random = result.random
    if random.display_prediction_lower is not None:
        console.print(f"Prediction interval: {random.display_prediction_lower:.3f} to "
                      f"{random.display_prediction_upper:.3f}", highlight=False)
    for excluded in result.excluded:
        console.print(f"Excluded {excluded.label}: {excluded.reason}", highlight=False)
    for note in result.primary.notes:
        console.print(f"Note: {note}", highlight=False)
    if plot_path is not None:
        console.print(f"Forest plot written to {plot_path}", highlight=False)
