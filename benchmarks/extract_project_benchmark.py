"""Extraction in a project: `run_extraction` (= `leads extract all -p PROJECT`) end to end.

    python benchmarks/extract_project_benchmark.py \
        --data ../shared/data/results/llm_meta_analysis_dev [--workdir DIR] [--out results.json]

1. A fresh project with the 10 llm-meta-analysis DEV articles and the 4 articles of its
   remdesivir case study (``xml_abstract_and_results/`` texts, read as the results evaluation
   reads them), one record per article (PMCID; the texts carry no other identifier), each
   document linked to its record by hand and the record included.
2. The classic engine's characteristics (the 11 built-in fields), arms and participants tasks
   over the 14 included studies in one run; then the results task, one run per article with its
   annotated (outcome, intervention, comparator, type) items (an outcome name asked twice for one
   article goes to a second run, since results are stored per outcome name).
3. The stored results are scored against the annotations with the results evaluation's
   protocol (``leads.eval.extraction_results.metrics``: all fields exact, values as reported), and
   every stored quote is checked against the document text at its offsets.
4. Everything is run again: a resumed run must make no call and store nothing.

Wall and CPU time (this process) per phase; engine loading is included in the first phase.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from leads.documents import add_document, get_document
from leads.eval.extraction_results import (
    BINARY_FIELDS,
    CONTINUOUS_FIELDS,
    Item,
    load_items,
    metrics,
    read_article,
)
from leads.extract.project import ExtractionRun, run_extraction
from leads.project import Project
from leads.records import Record
from leads.tasks.extraction import ResultsOutput


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _number(value: float | None) -> Any:
    if value is None:
        return "x"
    return int(value) if float(value).is_integer() else float(value)


def _predicted(item: Item, output: ResultsOutput) -> dict[str, Any]:
    arms = {a.group_id: a for a in output.arms}
    out: dict[str, Any] = {}
    for role in ("intervention", "comparator"):
        arm = arms.get(role)
        if item.outcome_type == "binary":
            out[f"{role}_events"] = _number(arm.events if arm else None)
            out[f"{role}_group_size"] = _number(arm.group_size if arm else None)
        else:
            out[f"{role}_mean"] = _number(arm.mean if arm else None)
            out[f"{role}_standard_deviation"] = _number(arm.sd if arm else None)
            out[f"{role}_group_size"] = _number(arm.group_size if arm else None)
    return out


def _runs_for(items: list[Item]) -> list[list[Item]]:
    """Items of one article split so that no outcome name is asked twice in a run."""
    runs: list[list[Item]] = []
    for item in items:
        for run in runs:
            if all(i.outcome.strip().casefold() != item.outcome.strip().casefold() for i in run):
                run.append(item)
                break
        else:
            runs.append([item])
    return runs


def _phase(name: str, fn: Any) -> tuple[Any, dict[str, Any]]:
    wall, cpu = time.perf_counter(), _cpu()
    value = fn()
    timing = {"phase": name, "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(_cpu() - cpu, 2)}
    print(f"{name}: {timing['wall_s']} s wall, {timing['cpu_s']} s CPU", file=sys.stderr)
    return value, timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the llm_meta_analysis_dev directory")
    parser.add_argument("--workdir", type=Path, default=None, help="where to create the project (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    dev = load_items(args.data / "annotated_rct_dataset_dev.csv", split="DEV")
    case = load_items(args.data / "case_study" / "meta_analysis_case_study.json", split=None)
    texts = {**{i.pmcid: args.data / "xml_abstract_and_results" / f"PMC{i.pmcid}.xml" for i in dev},
             **{i.pmcid: args.data / "case_study" / "xml_abstract_and_results" / f"PMC{i.pmcid}.xml" for i in case}}
    items_of: dict[str, list[Item]] = defaultdict(list)
    for item in [*dev, *case]:
        items_of[item.pmcid].append(item)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="extract-project-"))
    path = workdir / "review"

    project = Project.init(path, name="extraction benchmark", actor="benchmark")
    pmcids = sorted(texts)
    _, ids = project.add_records([Record(pmcid=f"PMC{p}", title=f"PMC{p}") for p in pmcids], source="file",
                                 file_name="llm_meta_analysis_dev", format="csv")
    record_of = dict(zip(pmcids, ids, strict=True))
    for pmcid in pmcids:
        add_document(project, read_article(texts[pmcid]), record_id=record_of[pmcid])
        project.decide(record_of[pmcid], "include")

    timings: list[dict[str, Any]] = []
    first, timing = _phase("characteristics, arms, participants (14 studies)", lambda: run_extraction(
        project, tasks=("characteristics", "arms", "participants")))
    timings.append(timing)

    def results_runs() -> tuple[list[ExtractionRun], list[tuple[Item, dict[str, Any]]]]:
        runs, pairs = [], []
        for pmcid in pmcids:
            for batch in _runs_for(items_of[pmcid]):
                before = {r["id"] for r in project.extractions(record_ids=[record_of[pmcid]], task="results",
                                                               history=True)}
                run = run_extraction(project, tasks=("results",), record_ids=[record_of[pmcid]], outcomes=[
                    {"outcome": i.outcome, "intervention": i.intervention, "comparator": i.comparator,
                     "outcome_type": i.outcome_type} for i in batch])
                runs.append(run)
                new = {r["field"]: r for r in project.extractions(record_ids=[record_of[pmcid]], task="results",
                                                                  history=True) if r["id"] not in before}
                pairs.extend((i, new.get(f"results: {' '.join(i.outcome.split())}", {})) for i in batch)
        return runs, pairs

    (result_runs, pairs), timing = _phase(f"results ({len(dev) + len(case)} outcomes)", results_runs)
    timings.append(timing)

    # Scoring and evidence checks.
    scored: dict[str, list[dict[str, Any]]] = {"dev": [], "case": []}
    case_pmcids = {i.pmcid for i in case}
    for item, row in pairs:
        output = ResultsOutput.model_validate(row["value"]) if row else None
        predicted = _predicted(item, output) if output else dict.fromkeys(item.reference, "x")
        scored["case" if item.pmcid in case_pmcids else "dev"].append(
            {"id": item.id, "pmcid": item.pmcid, "outcome": item.outcome, "type": item.outcome_type,
             "reference": item.reference, "predicted": predicted, "stored": bool(row)})
    rows = project.extractions(history=True)
    text_of = {did: get_document(project, did).text for did in {r["document_id"] for r in rows}}
    quotes = sum(len(r["evidence"]) for r in rows)
    misplaced = sum(1 for r in rows for e in r["evidence"] if text_of[r["document_id"]][e["start"]:e["end"]] != e["quote"])
    all_runs = [first, *result_runs]
    counts = {name: sum(getattr(r, name) for r in all_runs) for name in ("values", "not_reported", "unsupported")}

    def rerun() -> list[ExtractionRun]:
        again = [run_extraction(project, tasks=("characteristics", "arms", "participants"))]
        for pmcid in pmcids:
            for batch in _runs_for(items_of[pmcid]):
                again.append(run_extraction(project, tasks=("results",), record_ids=[record_of[pmcid]], outcomes=[
                    {"outcome": i.outcome, "intervention": i.intervention, "comparator": i.comparator,
                     "outcome_type": i.outcome_type} for i in batch]))
        return again

    again, timing = _phase("re-run of everything (resume)", rerun)
    timings.append(timing)
    project.close()

    def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
        binary = [r for r in rows if r["type"] == "binary"]
        continuous = [r for r in rows if r["type"] == "continuous"]
        out = {}
        for kind, subset, fields in (("binary", binary, BINARY_FIELDS), ("continuous", continuous, CONTINUOUS_FIELDS)):
            if subset:
                m = metrics(subset, fields)
                out[kind] = {"items": m["items"], "all_fields": round(m["exact_match"]["total"], 3),
                             "per_field": {f: round(m["exact_match"][f], 3) for f in fields}}
        return out

    result = {
        "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "machine": platform.machine(),
        "studies": len(pmcids), "outcomes": len(pairs),
        "first_run": first.as_dict(),
        "results_runs": {"runs": len(result_runs), "values": sum(r.values for r in result_runs),
                         "calls": sum(r.calls for r in result_runs), "failed": sum(len(r.failed) for r in result_runs)},
        "timings": timings,
        "first_run_seconds_per_task": {name: round(st.elapsed, 2) for name, st in first.per_task.items()},
        "rows": len(rows), "values": counts["values"], "not_reported": counts["not_reported"],
        "reported_without_located_quote": counts["unsupported"],
        "quotes": quotes, "quotes_not_at_their_offsets": misplaced,
        "rerun": {"values": sum(r.values for r in again), "calls": sum(r.calls for r in again),
                  "already_done": sum(r.already_done for r in again)},
        "score_dev": score(scored["dev"]), "score_case_study": score(scored["case"]),
        "items": scored,
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k not in ("items", "first_run")}
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
