"""``leads eval``: benchmarks of each stage on held-out data (results go to docs/benchmarks.md)."""

from __future__ import annotations

import click

from leads.eval.extraction_pico import eval_participants_command, eval_pico_command
from leads.eval.extraction_results import results_eval_command
from leads.eval.search import eval_search_command

__all__ = ["eval_group"]


@click.group("eval")
def eval_group() -> None:
    """Measure a stage against gold data (search recall, screening, extraction)."""


eval_group.add_command(eval_search_command, name="search")
eval_group.add_command(results_eval_command, name="results")
eval_group.add_command(eval_pico_command, name="pico")
eval_group.add_command(eval_participants_command, name="participants")
