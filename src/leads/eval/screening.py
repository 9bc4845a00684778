"""``leads eval screening``: the paper's Recall@k of the zero-shot ranking, and a simulation.

Data: an ASReview-style labelled file (title, abstract, ``label_included``; any format
:func:`leads.formats.read_records` reads) and the review's eligibility criteria
(``--criteria-file``, one per line; :func:`leads.screen.simulate.parse_criteria`).

Protocol
--------
1. **Zero-shot ranking** (LEADS' study-selection benchmark): the engine's ``eligibility`` task
   judges every record against every criterion; records are ranked by the task's overall score
   (YES 1, PARTIAL 0.5, UNCERTAIN 0, NO -1, averaged; a met exclusion counts against), ties in
   file order. **Recall@k** is the share of the included records among the first ``k``, for
   k = 10, 20, 50 and k = the number of includes (R-precision). A record the engine fails on
   gets the lowest score and is counted in ``failures``.
2. **Simulation** (:func:`leads.screen.simulate.simulate`, reused as is): zero-shot start from the
   criteria, then active learning with the engine's per-criterion verdicts as features; WSS@95,
   recall after screening 10 % and 25 % of the records, records to 95 % recall
   (:mod:`leads.screen.metrics`). ``--no-simulation`` skips it.

``--limit N`` evaluates a sample of N records that keeps the share of includes (at least one),
drawn with ``--seed``: a quick check, e.g. of an LLM engine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from leads.errors import LeadsError
from leads.eval.common import EvalError, common_options, emit

__all__ = ["RECALL_KS", "eval_screening_command", "evaluate_screening", "recall_at_k", "sample_records"]

RECALL_KS = (10, 20, 50)


def recall_at_k(scores: Sequence[float], labels: Sequence[bool], k: int) -> float | None:
    """Share of the relevant records among the ``k`` highest scores (ties in input order)."""
    y = np.asarray(labels, dtype=bool)
    if not y.any():
        return None
    order = np.lexsort((np.arange(len(y)), -np.asarray(scores, dtype=float)))
    return round(float(y[order[:k]].sum() / y.sum()), 4)


def sample_records(labels: Sequence[bool], limit: int, seed: int) -> list[int]:
    """Indexes of ``limit`` records keeping the share of relevant ones (at least one), in file order."""
    y = np.asarray(labels, dtype=bool)
    if limit <= 0 or limit >= len(y):
        return list(range(len(y)))
    relevant, irrelevant = np.flatnonzero(y), np.flatnonzero(~y)
    n_rel = min(len(relevant), max(1, round(limit * len(relevant) / len(y))))
    n_irr = min(len(irrelevant), limit - n_rel)
    rng = np.random.default_rng(seed)
    chosen = list(rng.choice(relevant, n_rel, replace=False)) + list(rng.choice(irrelevant, n_irr, replace=False))
    return sorted(int(i) for i in chosen)


def _load(data: Path) -> tuple[list[Any], list[bool]]:
    from leads.formats import read_records

    records = list(read_records(data))
    if not records:
        raise EvalError(f"{data}: no records")
    missing = next((i for i, r in enumerate(records) if r.label is None), None)
    if missing is not None:
        raise EvalError(f"{data}: record {missing} has no label (label_included); the evaluation needs every label")
    return records, [bool(r.label) for r in records]


def evaluate_screening(data: Path, criteria_file: Path, *, engine: str = "classic", limit: int = 0,
                       seed: int = 0, simulation: bool = True, embeddings: bool = False,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Recall@k of the engine's zero-shot eligibility ranking and the simulation metrics."""
    from leads.engines import MemoryCallLog, get_engine
    from leads.screen.simulate import parse_criteria, simulate
    from leads.tasks import TASKS, EligibilityInput

    if not criteria_file.is_file():
        raise EvalError(f"{criteria_file}: criteria file not found")
    criteria = parse_criteria(criteria_file.read_text(encoding="utf-8"))
    if not criteria:
        raise EvalError(f"{criteria_file}: no criteria (one per non-empty line)")
    all_records, all_labels = _load(data)
    keep = sample_records(all_labels, limit, seed)
    records = [all_records[i] for i in keep]
    labels = [all_labels[i] for i in keep]
    if not any(labels):
        raise EvalError(f"{data}: no included record (label_included = 1)")

    started = time.perf_counter()
    runner = get_engine(engine, log=MemoryCallLog())
    task = TASKS["eligibility"]
    scores: list[float] = []
    failures: list[dict[str, Any]] = []
    verdict_counts: dict[str, int] = {}
    try:
        for i, record in enumerate(records):
            title = (record.title or "").strip() or None
            text = (record.abstract or "").strip() or title or "(no title or abstract)"
            try:
                out = runner.run(task, EligibilityInput(title=title, text=text, criteria=criteria)).output
            except LeadsError as exc:
                scores.append(-math.inf)
                failures.append({"record": keep[i], "error": str(exc)[:500]})
                continue
            scores.append(float(out.score))
            for verdict in out.verdicts:
                verdict_counts[verdict.eligibility] = verdict_counts.get(verdict.eligibility, 0) + 1
            if progress is not None:
                progress(i + 1, len(records))
    finally:
        runner.close()
    ranking_seconds = time.perf_counter() - started
    n_included = int(sum(labels))
    recall = {str(k): recall_at_k(scores, labels, k) for k in RECALL_KS}
    recall["n_included"] = recall_at_k(scores, labels, n_included)
    metrics: dict[str, Any] = {"recall_at": recall}

    finite = np.asarray([s if math.isfinite(s) else -2.0 for s in scores])
    y = np.asarray(labels, dtype=bool)
    if y.any() and (~y).any():
        from leads.screen.classic import ranking_metrics

        ranked = ranking_metrics(finite.tolist(), y.astype(int).tolist(), seed=seed)
        metrics["ranking"] = {"auc": ranked["auc"], "wss_95": ranked["wss95"]}

    result: dict[str, Any] = {
        "task": "screening", "dataset": data.name, "engine": engine,
        "criteria_file": criteria_file.name, "criteria": len(criteria),
        "n": len(records), "n_included": n_included, "n_in_file": len(all_records),
        "sampled": len(records) < len(all_records), "seed": seed,
        "verdicts": verdict_counts, "failures": len(failures), "failed_records": failures[:20],
        "metrics": metrics,
    }
    if simulation:
        sim_started = time.perf_counter()
        try:
            sim = simulate(records, labels, criteria=criteria, engine=engine, seed=seed, embeddings=embeddings)
        except LeadsError as exc:
            # e.g. an LLM engine that gives up on one record: the ranking above still stands.
            result["simulation"] = {"error": str(exc)[:500]}
            result["seconds"] = round(time.perf_counter() - started, 1)
            result["ranking_seconds"] = round(ranking_seconds, 1)
            return result
        m = sim.metrics
        metrics["simulation"] = {"wss_95": round(m.wss_95, 4), "recall_at_10pct": round(m.recall_at_10, 4),
                                 "recall_at_25pct": round(m.recall_at_25, 4),
                                 "screened_to_95": round(m.screened_to_95, 4), "atd": round(m.atd, 4)}
        result["simulation"] = {"mode": sim.mode, "features": sim.features, "records_to_95": m.records_to_95,
                                "seconds": round(time.perf_counter() - sim_started, 1)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["ranking_seconds"] = round(ranking_seconds, 1)
    return result


def markdown(result: dict[str, Any]) -> str:
    """The Recall@k and simulation metrics as a one-row Markdown table."""
    m = result["metrics"]
    head = ["dataset", "engine", "records", "includes", "R@10", "R@20", "R@50", "R@#inc"]
    cells = [result["dataset"], result["engine"], str(result["n"]), str(result["n_included"])]
    cells += [_fmt(m["recall_at"][k]) for k in ("10", "20", "50", "n_included")]
    if "simulation" in m:
        head += ["WSS@95", "recall@10%", "recall@25%"]
        s = m["simulation"]
        cells += [_fmt(s["wss_95"]), _fmt(s["recall_at_10pct"]), _fmt(s["recall_at_25pct"])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |"]
    if result["failures"]:
        lines.append(f"\n{result['failures']} record(s) failed (ranked last)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


@click.command("screening")
@common_options(data_help="Labelled screening file (ASReview CSV: title, abstract, label_included).")
@click.option("--criteria-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Eligibility criteria, one per line ('Exclusion:' marks an exclusion criterion).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --limit sampling and the simulation.")
@click.option("--simulation/--no-simulation", default=True, show_default=True,
              help="Also run the screening simulation (WSS@95, recall at 10/25 %).")
@click.option("--embeddings/--no-embeddings", default=False, show_default=True,
              help="Add MiniLM embeddings to the simulation's features.")
def eval_screening_command(data: Path, engine: str, limit: int, as_json: bool, markdown_file: Path | None,
                           criteria_file: Path, seed: int, simulation: bool, embeddings: bool) -> None:
    """Screening: Recall@k of the zero-shot eligibility ranking, plus simulation metrics."""
    try:
        result = evaluate_screening(data, criteria_file, engine=engine, limit=limit, seed=seed,
                                    simulation=simulation, embeddings=embeddings)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(result, as_json=as_json, markdown_file=markdown_file, text=markdown(result))
