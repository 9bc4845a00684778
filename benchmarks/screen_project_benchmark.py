"""Screening in a project: `leads screen` throughput and `leads next` latency on the Estrogens example.

    python benchmarks/screen_project_benchmark.py [--workdir DIR] [--concurrency 1,2]
                                                  [--decisions 40] [--cli-calls 10]

1. ``leads review run examples/estrogens/review.toml`` into a fresh project (both files, dedup:
   367 unique records, the review's 4 criteria).
2. ``leads screen --json`` (classic engine) over every record, once per concurrency, each on a
   fresh copy of the project: records/s from the run's own timing (engine loading included) and
   the process's wall and CPU time.
3. ``leads next`` after each decision: a reviewer follows the ranking and decides by the review's
   published labels (`label_included` of the CSV member of each duplicate group). Timed in one
   process (``next_record``, what a long-lived session or the web workspace pays) for
   ``--decisions`` decisions (what ``leads next --interactive``, a long-lived session or the web
   workspace pays per decision, next to the time of ``decide`` itself), and as a fresh
   ``leads next --json`` process for ``--cli-calls`` of them (start-up and imports included).

The screening commands are run through ``leads.screen.project_cli`` directly (``python -c``), so
the CLI numbers do not include importing the rest of ``leads.cli``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from leads.project import Project
from leads.review import load_spec, run_review
from leads.screen import workflow as w

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "estrogens" / "review.toml"
SCREEN = "import sys; from leads.screen.project_cli import screen_command; screen_command(sys.argv[1:])"
NEXT = "import sys; from leads.screen.project_cli import next_command; next_command(sys.argv[1:])"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(code: str, *args: str) -> tuple[str, float, float]:
    """Run a command in a fresh Python; returns (stdout, wall s, CPU s)."""
    cpu = _child_cpu()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, "LEADS_USER": "benchmark"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout, wall, _child_cpu() - cpu


def _labels(project: Project) -> dict[int, bool]:
    primaries = project.duplicate_primaries()
    out: dict[int, bool] = {}
    for stored in project.iter_records():
        if stored.record.label is not None:
            out[primaries.get(stored.id, stored.id)] = stored.record.label
    return out


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 1), "median": round(statistics.median(values), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1), "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="Where to build the projects (default: a temporary directory).")
    parser.add_argument("--concurrency", default="1,2", help="Concurrencies for `leads screen`, comma-separated.")
    parser.add_argument("--decisions", type=int, default=40, help="Decisions timed with next_record in-process.")
    parser.add_argument("--cli-calls", type=int, default=10, help="Decisions timed with a `leads next` process.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()

    base = args.workdir or Path(tempfile.mkdtemp(prefix="leads-screen-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    template = base / "template"
    shutil.rmtree(template, ignore_errors=True)
    run_review(load_spec(SPEC), template, say=lambda _m: None)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
                               "cpus": os.cpu_count(), "load_before": os.getloadavg()}

    screened: Path | None = None
    results["screen"] = []
    for concurrency in [int(c) for c in args.concurrency.split(",") if c]:
        target = base / f"screen-c{concurrency}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(template, target)
        load = os.getloadavg()[0]
        out, wall, cpu = _run(SCREEN, "-p", str(target), "--concurrency", str(concurrency), "--json")
        run = json.loads(out)
        row = {"concurrency": concurrency, "records": run["assessed"], "run_s": round(run["elapsed"], 1),
               "records_per_s": round(run["records_per_s"], 3), "process_wall_s": round(wall, 1),
               "process_cpu_s": round(cpu, 1), "cpu_s_per_record": round(cpu / max(1, run["assessed"]), 3),
               "failed": len(run["failed"]), "load_1min_start": round(load, 2), "load_1min_end": round(os.getloadavg()[0], 2)}
        results["screen"].append(row)
        print(json.dumps(row), flush=True)
        screened = screened or target

    assert screened is not None
    session = base / "next"
    shutil.rmtree(session, ignore_errors=True)
    shutil.copytree(screened, session)
    in_process: list[float] = []
    deciding: list[float] = []
    cli: list[float] = []
    cli_cpu: list[float] = []
    with Project.open(session, actor="benchmark") as project:
        labels = _labels(project)
        found = 0
        for i in range(args.decisions + args.cli_calls):
            if i < args.decisions:
                started = time.perf_counter()
                nxt = w.next_record(project)
                in_process.append((time.perf_counter() - started) * 1000)
                assert nxt is not None
                rid = nxt.record_id
            else:
                out, wall, cpu = _run(NEXT, "-p", str(session), "--json")
                cli.append(wall * 1000)
                cli_cpu.append(cpu * 1000)
                rid = json.loads(out)["record_id"]
            found += labels[rid]
            started = time.perf_counter()
            w.decide(project, rid, "include" if labels[rid] else "exclude")
            deciding.append((time.perf_counter() - started) * 1000)
        estimate = w.stopping_estimate(project)
    results["next_in_process_ms"] = _summary(in_process[1:])  # the first call builds the features
    results["next_in_process_first_ms"] = round(in_process[0], 1)
    results["decide_ms"] = _summary(deciding)
    results["next_cli_ms"] = _summary(cli) if cli else None
    results["next_cli_cpu_ms"] = _summary(cli_cpu) if cli_cpu else None
    results["decisions"] = args.decisions + args.cli_calls
    results["relevant_found"] = found
    results["stopping"] = estimate.as_dict()
    results["load_after"] = os.getloadavg()
    print(json.dumps({k: v for k, v in results.items() if k != "screen"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
