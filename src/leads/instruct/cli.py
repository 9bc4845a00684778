"""``leads instruct``: build instruction data (``build``), list its sources, replay a test split."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["instruct_group"]


def _split_list(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.group("instruct")
def instruct_group() -> None:
    """Instruction data for fine-tuning (LEADSInstruct format) from projects and annotated data."""


@instruct_group.command("build")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write train.jsonl, test.jsonl, datasheet.md/.json and splits.json into.")
@click.option("--project", "-p", "projects", multiple=True,
              help="A review project (folder or database URL) to take accepted work from; repeatable.")
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The shared developer data folder (default: $LEADS_SHARED_DATA or ../shared/data when no "
                   "--project is given).")
@click.option("--tasks", "tasks", multiple=True,
              help="Tasks to build (comma-separated or repeated; default: the six LEADS tasks and pico).")
@click.option("--source", "sources", multiple=True,
              help="Only these shared sources (comma-separated or repeated; see `leads instruct sources`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and of the train order.")
@click.option("--test-fraction", type=float, default=0.15, show_default=True,
              help="Share of each task's examples to hold out (whole reviews, trials or articles).")
@click.option("--text-budget", type=int, default=24_000, show_default=True,
              help="Characters of paper text per prompt (as an engine cuts it); 0 for no limit.")
@click.option("--max-per-source", type=int, default=None,
              help="At most this many examples per source and task (a seeded sample).")
@click.option("--json", "as_json", is_flag=True, help="Print the datasheet as JSON.")
def build_command(out: Path, projects: tuple[str, ...], shared: Path | None, tasks: tuple[str, ...],
                  sources: tuple[str, ...], seed: int, test_fraction: float, text_budget: int,
                  max_per_source: int | None, as_json: bool) -> None:
    """Build deduplicated, leak-free train/test instruction data with a datasheet.

    Every example is the task's own prompt and a gold answer that leads validates (quotes located
    in the text); the split keeps each review, trial and article on one side.
    """
    from leads.instruct.build import DEFAULT_TASKS, BuildOptions, build

    if shared is None and not projects:
        from leads.eval.search import shared_data_dir

        try:
            shared = shared_data_dir()
        except LeadsError as exc:
            raise click.ClickException(f"{exc}; or give --project") from None
    options = BuildOptions(out=out, shared=shared, projects=list(projects),
                           tasks=_split_list(tasks) or list(DEFAULT_TASKS),
                           sources=_split_list(sources) or None, seed=seed, test_fraction=test_fraction,
                           text_budget=text_budget or None, max_per_source=max_per_source)
    try:
        result = build(options, progress=None if as_json else lambda m: click.echo(m, err=True))
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.datasheet, indent=2, ensure_ascii=False))
        return
    totals = result.datasheet["totals"]
    click.echo(f"{totals['examples']} examples ({totals['train']} train, {totals['test']} test) in {out}; "
               f"{totals['duplicates_removed']} duplicates removed; see {out / 'datasheet.md'}")


@instruct_group.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
def sources_command(as_json: bool) -> None:
    """List the shared-data sources, their tasks and licences."""
    from leads.instruct.sources import shared_sources

    rows = [{"name": s.name, "tasks": list(s.tasks), "licence": s.licence, "description": s.description}
            for s in shared_sources().values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}  [{', '.join(row['tasks'])}]\n    {row['description']}\n    licence: {row['licence']}")


def _options(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--option")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


@instruct_group.command("eval")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--engine", "engine_name", default="llamacpp", show_default=True,
              help="Engine to answer with (llamacpp, openai, classic, ...).")
@click.option("--model-path", default=None, help="GGUF file for the llamacpp engine (default: SmolLM2-135M).")
@click.option("--option", "options", multiple=True,
              help="Engine option KEY=VALUE (JSON values), e.g. n_ctx=4096, base_url=..., model=...; repeatable.")
@click.option("--max-attempts", type=int, default=1, show_default=True,
              help="Attempts per example (1 measures first answers).")
@click.option("--tasks", "tasks", multiple=True, help="Only these tasks (comma-separated or repeated).")
@click.option("--limit", type=int, default=None, help="At most this many examples.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full result (with per-item scores) to this JSON file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def eval_command(data: Path, engine_name: str, model_path: str | None, options: tuple[str, ...],
                 max_attempts: int, tasks: tuple[str, ...], limit: int | None, out: Path | None,
                 as_json: bool) -> None:
    """Replay held-out examples (test.jsonl) through an engine: validity and agreement per task."""
    from leads.engines import get_engine
    from leads.instruct.evaluate import evaluate_examples
    from leads.instruct.example import read_examples

    settings = _options(options)
    settings["max_attempts"] = max_attempts
    if model_path:
        settings["model_path"] = model_path
    try:
        engine = get_engine(engine_name, **settings)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        result = evaluate_examples(read_examples(data), engine, limit=limit, tasks=_split_list(tasks) or None,
                                   progress=None if as_json else
                                   lambda s: click.echo(f"{s.task} {s.item}: valid={s.valid} grounded={s.grounded} "
                                                        f"agreement={s.agreement:.2f} ({s.seconds:.1f}s)", err=True))
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.close()
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "items"}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    overall = summary["overall"]
    click.echo(f"{summary['engine']} ({summary['model']}): {overall['n']} examples, valid {overall['valid']}, "
               f"grounded {overall['grounded']}, agreement {overall['agreement']}")
    for task, row in summary["tasks"].items():
        click.echo(f"  {task}: n={row['n']} valid={row['valid']} grounded={row['grounded']} "
                   f"agreement={row['agreement']}")
    sys.stdout.flush()
