"""The regression check (CI): every task with the classic engine on vendored real data.

``test_regression_file_passes`` runs ``src/leads/eval/regression.yaml`` for real; the other tests
feed the real checker real results with one metric made worse, and check the command's exit code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from leads.eval.regression import (
    DEFAULT_FILE,
    Check,
    check_results,
    eval_regression_command,
    load_regression,
    run_regression,
    table,
    write_regression,
)

REPO = Path(__file__).resolve().parents[2]
# One run of every task takes about 75 s of CPU; on a shared, loaded machine far more wall time.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def regression_run() -> tuple[Any, list[Any], dict[str, Any]]:
    regression = load_regression(DEFAULT_FILE)
    outcomes, extra = run_regression(regression, engine="classic")
    return regression, outcomes, extra


def test_regression_file_passes(regression_run: tuple[Any, list[Any], dict[str, Any]]) -> None:
    regression, outcomes, _extra = regression_run
    assert regression.root == REPO
    assert {c.task for c in regression.checks} == {"search", "screening", "characteristics", "arms",
                                                   "results", "participants", "pico"}
    assert len(outcomes) == len([c for c in regression.checks if c.engine == "classic"])
    failures = [o for o in outcomes if not o.passed]
    assert not failures, "\n" + table(failures)


def test_a_worse_metric_fails(regression_run: tuple[Any, list[Any], dict[str, Any]]) -> None:
    regression, _outcomes, extra = regression_run
    results = copy.deepcopy(extra["results"])
    check = next(c for c in regression.checks if c.metric == "metrics.recall_at.10")
    key = (check.dataset, check.engine)
    assert check_results([check], results)[0].passed
    results[key]["metrics"]["recall_at"]["10"] = check.expected - check.tolerance - 0.01
    outcome = check_results([check], results)[0]
    assert not outcome.passed and "<" in outcome.reason
    # exactly at the bound passes; better always passes
    results[key]["metrics"]["recall_at"]["10"] = check.expected - check.tolerance
    assert check_results([check], results)[0].passed
    results[key]["metrics"]["recall_at"]["10"] = 1.0
    assert check_results([check], results)[0].passed
    # a metric that disappears, or comes back None, fails
    results[key]["metrics"]["recall_at"]["10"] = None
    assert not check_results([check], results)[0].passed
    del results[key]["metrics"]["recall_at"]
    outcome = check_results([check], results)[0]
    assert not outcome.passed and "no such metric" in outcome.reason


def test_lower_is_better_and_missing_dataset() -> None:
    check = Check(task="screening", dataset="d", engine="classic", metric="metrics.screened_to_95",
                  expected=0.5, tolerance=0.05, direction="lower")
    assert check_results([check], {("d", "classic"): {"metrics": {"screened_to_95": 0.54}}})[0].passed
    assert not check_results([check], {("d", "classic"): {"metrics": {"screened_to_95": 0.6}}})[0].passed
    outcome = check_results([check], {})[0]
    assert not outcome.passed and "not evaluated" in outcome.reason


def test_update_writes_measured_values(tmp_path: Path,
                                       regression_run: tuple[Any, list[Any], dict[str, Any]]) -> None:
    regression, outcomes, _extra = regression_run
    target = tmp_path / "regression.yaml"
    write_regression(regression, outcomes, target)
    reread = load_regression(target, root=REPO)
    measured = {(o.check.dataset, o.check.metric): o.actual for o in outcomes}
    assert reread.datasets == regression.datasets
    assert reread.header.startswith("# leads eval regression")
    for check in reread.checks:
        assert check.expected == pytest.approx(measured[(check.dataset, check.metric)])


def _one_check_file(tmp_path: Path, expected: float) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(
        "datasets:\n"
        "  ebmnlp-6: {task: pico, data: tests/fixtures/eval/ebmnlp_sample.txt}\n"
        "checks:\n"
        f"  - {{task: pico, dataset: ebmnlp-6, engine: classic, metric: metrics.macro_f1, expected: {expected}, "
        "tolerance: 0.01}\n", encoding="utf-8")
    return path


def test_command_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(eval_regression_command, ["--file", str(_one_check_file(tmp_path, 0.5)), "--root", str(REPO)])
    assert ok.exit_code == 0, ok.output
    assert "1 of 1 checks passed" in ok.output
    bad = runner.invoke(eval_regression_command, ["--file", str(_one_check_file(tmp_path, 0.99)),
                                                  "--root", str(REPO)])
    assert bad.exit_code == 1
    assert "**FAIL**" in bad.output and "metrics.macro_f1" in bad.output


@pytest.mark.parametrize(("text", "message"), [
    ("checks:\n  - {task: pico}\n", "missing"),
    ("datasets:\n  x: {task: pico, data: a}\nchecks:\n  - {task: arms, dataset: x, engine: classic, "
     "metric: m, expected: 1, tolerance: 0}\n", "is for task 'pico'"),
    ("datasets:\n  x: {task: nope, data: a}\n", "needs 'task'"),
    ("datasets: [\n", "not valid YAML"),
])
def test_malformed_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    from leads.eval.common import EvalError

    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalError, match=message) as info:
        load_regression(path)
    assert str(path) in str(info.value)
