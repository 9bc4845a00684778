"""``leads eval regression``: every task on small vendored real data, against expected metrics.

The regression file (``regression.yaml`` next to this module) has two parts:

``datasets``
    name -> ``{task, data, ...options}``: which evaluation runs on which files. Paths are
    relative to the repository root (the folder holding ``pyproject.toml`` above the file, or
    ``--root``); the data live under ``tests/fixtures/eval/`` so that the check runs without the
    shared data.
``checks``
    a list of ``{task, dataset, engine, metric, expected, tolerance}`` (optionally
    ``direction: lower`` for a metric where less is better). ``metric`` is a dotted path into the
    evaluation's JSON result (``metrics.recall_at.10``).

A check **fails** when the metric is missing or ``None``, or worse than ``expected - tolerance``
(``expected + tolerance`` for ``direction: lower``); it passes when equal or better, so an
improvement never fails the check (``--update`` then records it). Each (dataset, engine) runs
once however many checks read it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError
from leads.eval.common import EvalError, metric_value

__all__ = [
    "DEFAULT_FILE",
    "Check",
    "CheckResult",
    "RegressionFile",
    "check_results",
    "eval_regression_command",
    "load_regression",
    "run_dataset",
    "run_regression",
    "write_regression",
]

DEFAULT_FILE = Path(__file__).with_name("regression.yaml")
TASKS = ("search", "screening", "characteristics", "arms", "participants", "results", "pico")


@dataclass(frozen=True)
class Check:
    task: str
    dataset: str
    engine: str
    metric: str
    expected: float
    tolerance: float
    direction: str = "higher"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "dataset": self.dataset, "engine": self.engine,
                               "metric": self.metric, "expected": self.expected, "tolerance": self.tolerance}
        if self.direction != "higher":
            out["direction"] = self.direction
        return out


@dataclass
class CheckResult:
    check: Check
    actual: float | None
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.check.as_dict(), "actual": self.actual, "passed": self.passed, "reason": self.reason}


@dataclass
class RegressionFile:
    path: Path
    root: Path
    datasets: dict[str, dict[str, Any]]
    checks: list[Check]
    header: str = ""


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml ships with the dev and train extras
        raise EvalError("the regression file is YAML: pip install pyyaml") from exc
    return yaml


def _repo_root(path: Path) -> Path:
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def load_regression(path: Path = DEFAULT_FILE, *, root: Path | None = None) -> RegressionFile:
    """Read and validate a regression file (every error names the file and the entry)."""
    yaml = _yaml()
    if not path.is_file():
        raise EvalError(f"{path}: regression file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise EvalError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, Mapping):
        raise EvalError(f"{path}: expected a mapping with 'datasets' and 'checks'")
    datasets = data.get("datasets") or {}
    if not isinstance(datasets, Mapping):
        raise EvalError(f"{path}: 'datasets' must be a mapping of name -> {{task, data, ...}}")
    for name, spec in datasets.items():
        if not isinstance(spec, Mapping) or spec.get("task") not in TASKS or not spec.get("data"):
            raise EvalError(f"{path}: dataset {name!r} needs 'task' (one of {', '.join(TASKS)}) and 'data'")
    checks: list[Check] = []
    for i, entry in enumerate(data.get("checks") or [], 1):
        where = f"{path}: check {i}"
        if not isinstance(entry, Mapping):
            raise EvalError(f"{where}: expected a mapping")
        missing = [k for k in ("task", "dataset", "engine", "metric", "expected", "tolerance") if k not in entry]
        if missing:
            raise EvalError(f"{where}: missing {', '.join(missing)}")
        if entry["dataset"] not in datasets:
            raise EvalError(f"{where}: unknown dataset {entry['dataset']!r}")
        if datasets[entry["dataset"]]["task"] != entry["task"]:
            raise EvalError(f"{where}: dataset {entry['dataset']!r} is for task "
                            f"{datasets[entry['dataset']]['task']!r}, not {entry['task']!r}")
        direction = str(entry.get("direction", "higher"))
        if direction not in ("higher", "lower"):
            raise EvalError(f"{where}: direction must be 'higher' or 'lower'")
        try:
            expected, tolerance = float(entry["expected"]), float(entry["tolerance"])
        except (TypeError, ValueError) as exc:
            raise EvalError(f"{where}: expected and tolerance must be numbers") from exc
        if tolerance < 0:
            raise EvalError(f"{where}: tolerance must not be negative")
        checks.append(Check(task=str(entry["task"]), dataset=str(entry["dataset"]), engine=str(entry["engine"]),
                            metric=str(entry["metric"]), expected=expected, tolerance=tolerance,
                            direction=direction))
    leading = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        leading.append(line)
    return RegressionFile(path=path, root=root or _repo_root(path), datasets=dict(datasets), checks=checks,
                          header="\n".join(leading) + ("\n" if leading else ""))


def _path(root: Path, value: Any, name: str, key: str) -> Path:
    path = root / str(value)
    if not path.exists():
        raise EvalError(f"dataset {name!r}: {key} {path} does not exist")
    return path


def run_dataset(name: str, spec: Mapping[str, Any], engine: str, root: Path) -> dict[str, Any]:
    """Run one dataset's evaluation with ``engine``; returns the evaluation's JSON result."""
    task = spec["task"]
    data = _path(root, spec["data"], name, "data")
    limit = int(spec.get("limit", 0))
    if task == "search":
        from leads.eval.search import MemoryCorpus, evaluate_search, topics_file

        topics = topics_file(_path(root, spec["topics"], name, "topics"))
        return evaluate_search(topics, MemoryCorpus.from_jsonl(data), engine, corpus_name=data.name).to_dict()
    if task == "screening":
        from leads.eval.screening import evaluate_screening

        return evaluate_screening(data, _path(root, spec["criteria_file"], name, "criteria_file"), engine=engine,
                                  limit=limit, seed=int(spec.get("seed", 0)),
                                  simulation=bool(spec.get("simulation", True)))
    if task == "characteristics":
        from leads.eval.characteristics import evaluate_characteristics, load_consort_articles

        articles = load_consort_articles(data)
        return evaluate_characteristics(articles[:limit] if limit else articles, engine=engine, dataset=data.name)
    if task == "arms":
        from leads.eval.arms import evaluate_arms, load_arms_items

        texts = _path(root, spec["texts"], name, "texts") if spec.get("texts") else None
        items = load_arms_items(data, texts=texts, split=spec.get("split", "DEV"))
        return evaluate_arms(items[:limit] if limit else items, engine=engine, dataset=data.name)
    if task == "results":
        from leads.eval.extraction_results import evaluate, load_items

        annotated = load_items(data, split=spec.get("split", "DEV"))
        return evaluate(annotated[:limit] if limit else annotated, _path(root, spec["texts"], name, "texts"),
                        engine=engine, dataset=data.name)
    if task == "participants":
        from leads.eval.extraction_pico import evaluate_participants_engine

        return evaluate_participants_engine(data, engine=engine, limit=limit)
    if task == "pico":
        from leads.eval.extraction_pico import evaluate_pico_engine

        return evaluate_pico_engine(data, engine=engine, limit=limit)
    raise EvalError(f"dataset {name!r}: unknown task {task!r}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_results(checks: Sequence[Check], results: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[CheckResult]:
    """Compare each check's metric in ``results[(dataset, engine)]`` with its expected value."""
    out: list[CheckResult] = []
    for check in checks:
        result = results.get((check.dataset, check.engine))
        if result is None:
            out.append(CheckResult(check, None, False, "the dataset was not evaluated"))
            continue
        if "error" in result and len(result) == 1:
            out.append(CheckResult(check, None, False, f"evaluation failed: {result['error']}"))
            continue
        try:
            actual = _number(metric_value(result, check.metric))
        except KeyError as exc:
            out.append(CheckResult(check, None, False, f"no such metric ({exc.args[0]})"))
            continue
        if actual is None:
            out.append(CheckResult(check, None, False, "the metric is missing (None)"))
            continue
        if check.direction == "lower":
            bound = check.expected + check.tolerance
            ok = actual <= bound + 1e-12
            reason = "" if ok else f"{actual:.4f} > {check.expected} + {check.tolerance}"
        else:
            bound = check.expected - check.tolerance
            ok = actual >= bound - 1e-12
            reason = "" if ok else f"{actual:.4f} < {check.expected} - {check.tolerance}"
        out.append(CheckResult(check, round(actual, 4), ok, reason))
    return out


def run_regression(regression: RegressionFile, *, engine: str | None = None, tasks: Sequence[str] = (),
                   progress: Callable[[str], None] | None = None) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run every (dataset, engine) that a selected check needs, then check them all.

    ``engine`` keeps only the checks of that engine, ``tasks`` only those tasks. An evaluation
    that raises fails its checks (with the error) rather than stopping the run."""
    checks = [c for c in regression.checks
              if (engine is None or c.engine == engine) and (not tasks or c.task in tasks)]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for check in checks:
        key = (check.dataset, check.engine)
        if key in results:
            continue
        if progress is not None:
            progress(f"{check.task} on {check.dataset} ({check.engine})")
        started = time.perf_counter()
        try:
            results[key] = run_dataset(check.dataset, regression.datasets[check.dataset], check.engine,
                                       regression.root)
        except LeadsError as exc:
            results[key] = {"error": str(exc)}
        timings[f"{check.dataset} ({check.engine})"] = round(time.perf_counter() - started, 1)
    return check_results(checks, results), {"results": results, "seconds": timings}


def write_regression(regression: RegressionFile, outcomes: Sequence[CheckResult], path: Path | None = None) -> int:
    """Write the file with each checked metric's expected value set to the value measured now
    (checks not run, or without a value, are kept as they were). Returns the number changed."""
    yaml = _yaml()
    measured = {(o.check.dataset, o.check.engine, o.check.metric): o.actual for o in outcomes if o.actual is not None}
    changed = 0
    entries = []
    for check in regression.checks:
        entry = check.as_dict()
        value = measured.get((check.dataset, check.engine, check.metric))
        if value is not None and value != check.expected:
            entry["expected"] = value
            changed += 1
        entries.append(entry)
    body = yaml.safe_dump({"datasets": regression.datasets}, sort_keys=False, allow_unicode=True, width=120)
    checks_text = "checks:\n" + "".join(
        "  - {" + ", ".join(f"{k}: {_scalar(v)}" for k, v in entry.items()) + "}\n" for entry in entries)
    (path or regression.path).write_text(regression.header + body + "\n" + checks_text, encoding="utf-8")
    return changed


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 4))
    return str(value)


def table(outcomes: Sequence[CheckResult], *, only_failures: bool = False) -> str:
    """The checks as a Markdown table."""
    lines = ["| task | dataset | engine | metric | expected | tolerance | actual | status |",
             "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        if only_failures and o.passed:
            continue
        c = o.check
        sign = "+" if c.direction == "lower" else "−"
        status = "ok" if o.passed else f"**FAIL** {o.reason}"
        lines.append(f"| {c.task} | {c.dataset} | {c.engine} | {c.metric} | {c.expected} | {sign}{c.tolerance} | "
                     f"{'–' if o.actual is None else o.actual} | {status} |")
    return "\n".join(lines)


@click.command("regression")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_FILE,
              show_default=False, help="The regression file (default: leads/eval/regression.yaml).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder the data paths are relative to (default: the repository holding the file).")
@click.option("--engine", default=None, help="Run only the checks of this engine (default: every check).")
@click.option("--task", "tasks", multiple=True, type=click.Choice(TASKS),
              help="Run only the checks of this task (repeatable).")
@click.option("--update", is_flag=True, help="Write the measured values into the file as the new expected values.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the measured results as JSON.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table of checks to this file.")
def eval_regression_command(path: Path, root: Path | None, engine: str | None, tasks: tuple[str, ...],
                            update: bool, as_json: bool, markdown_file: Path | None) -> None:
    """Run every regression check; exit 1 with a table of failures when a metric got worse."""
    import json

    try:
        regression = load_regression(path, root=root)
        outcomes, extra = run_regression(regression, engine=engine, tasks=tasks,
                                         progress=lambda what: click.echo(f"running {what}", err=True))
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    failures = [o for o in outcomes if not o.passed]
    if markdown_file is not None:
        markdown_file.write_text(table(outcomes) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"checks": [o.as_dict() for o in outcomes], "failures": len(failures),
                               "seconds": extra["seconds"]}, indent=2))
    else:
        click.echo(table(outcomes))
        click.echo(f"\n{len(outcomes) - len(failures)} of {len(outcomes)} checks passed; "
                   + ", ".join(f"{k} {v} s" for k, v in extra["seconds"].items()))
    if update:
        changed = write_regression(regression, outcomes)
        click.echo(f"updated {changed} expected value(s) in {regression.path}", err=True)
        return
    if failures:
        click.echo("\nFailures:\n" + table(failures), err=True)
        raise SystemExit(1)
