"""``leads eval``: the six LEADS tasks (plus PICO spans) measured on labelled data, one option shape
(``--data``, ``--engine``, ``--limit``, ``--json``, ``--markdown``), and the regression check.
Protocols: docs/evaluation.md; numbers: docs/benchmarks.md."""

from __future__ import annotations

import click

from leads.eval.arms import eval_arms_command
from leads.eval.characteristics import eval_characteristics_command
from leads.eval.extraction_pico import eval_participants_command, eval_pico_command
from leads.eval.extraction_results import results_eval_command
from leads.eval.regression import eval_regression_command
from leads.eval.screening import eval_screening_command
from leads.eval.search import eval_search_command

__all__ = ["eval_group"]


@click.group("eval")
def eval_group() -> None:
    """Measure a task against gold data (search, screening, extraction) or run the regression checks."""


eval_group.add_command(eval_search_command, name="search")
eval_group.add_command(results_eval_command, name="results")
eval_group.add_command(eval_pico_command, name="pico")
eval_group.add_command(eval_participants_command, name="participants")
eval_group.add_command(eval_screening_command, name="screening")
eval_group.add_command(eval_arms_command, name="arms")
eval_group.add_command(eval_characteristics_command, name="characteristics")
eval_group.add_command(eval_regression_command, name="regression")
