"""Batch throughput: model calls/s of the batch runner, in-process and through Ray Data.

    python benchmarks/batch_throughput.py [--items 30] [--max-tokens 96] [--skip-ray] [--overhead 2000]

Rows (each on a fresh SQLite project, so nothing is answered from the cache):

``runner overhead``  ``run_batch`` with the fake model answering instantly: the runner + call-log
                     ceiling (SQLite writes from 8 threads), no model.
``run_batch``        ``run_batch`` + the ``openai`` engine against ``leads serve-model``-style
                     llama.cpp servers (``leads.engines.serve.running_server``) with SmolLM2-135M.
``run_batch_ray``    the same requests through Ray Data's HTTP request processor
                     (``leads.engines.ray_batch.run_batch_ray``); Ray is started before timing
                     (its start-up is reported separately), actor start-up is inside the timing.

The task is ``search_query`` (PICO in, PubMed query out) for distinct populations; ``calls`` counts
model calls including re-asks; an item fails when the model gives no valid query in 3 attempts.
The machine's cores are shared by the servers and the client, so the numbers compare the paths on
one box; they are not a scale-out measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from leads.engines import DatabaseCallLog, FakeBackend, LLMEngine
from leads.engines.batch import BatchReport, run_batch
from leads.project import Project
from leads.tasks import TASKS

TASK = TASKS["search_query"]
POPULATIONS = ["postmenopausal women", "women with osteoporosis", "older adults", "children with asthma",
               "adults with type 2 diabetes", "patients with heart failure", "smokers", "pregnant women",
               "nursing home residents", "patients after hip fracture", "adolescents with obesity",
               "men with prostate cancer", "patients with chronic kidney disease", "veterans with PTSD",
               "adults with major depression"]
INTERVENTIONS = ["estradiol", "exercise", "vitamin D", "metformin", "cognitive behavioural therapy"]


def work(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"q{i:04d}", {"population": POPULATIONS[i % len(POPULATIONS)],
                           "intervention": INTERVENTIONS[(i // len(POPULATIONS)) % len(INTERVENTIONS)]})
            for i in range(n)]


@contextmanager
def fresh_log() -> Iterator[DatabaseCallLog]:
    with tempfile.TemporaryDirectory() as tmp, Project.init(Path(tmp) / "p") as project:
        yield DatabaseCallLog(project.engine)


def row(name: str, servers: str, concurrency: int, report: BatchReport) -> dict[str, Any]:
    return {"path": name, "servers": servers, "concurrency": concurrency, "items": report.total,
            "done": report.done, "failed": len(report.failed), "calls": report.model_calls,
            "seconds": round(report.elapsed, 1), "calls_per_s": round(report.calls_per_s, 2),
            "items_per_s": round(report.items_per_s, 2)}


def overhead(n: int) -> dict[str, Any]:
    def instant(messages: list[dict[str, Any]], _schema: dict[str, Any]) -> str:
        return json.dumps({"query": f"{len(messages[0]['content'])}[tiab]"})

    with fresh_log() as log:
        engine = LLMEngine(FakeBackend([instant] * n), log=log, cache=False)
        report = run_batch(engine, TASK, work(n), batch_id="overhead", concurrency=8, progress=False)
    return row("runner overhead (fake model)", "-", 8, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--overhead", type=int, default=2000, help="items for the runner-overhead row")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from leads.engines.openai import create
    from leads.engines.serve import running_server

    cores = os.cpu_count() or 1
    rows = [overhead(args.overhead)]
    print(f"  {rows[-1]}", flush=True)
    items = work(args.items)
    ray_start = None
    ray_ok = False
    if not args.skip_ray:
        from leads.engines.ray_batch import _init_ray, ray_available, run_batch_ray

        ray_ok = ray_available()
        if not ray_ok:
            print("  ray not installed (pip install 'ray[data]' aiohttp): Ray rows skipped")

    # One server with llama.cpp's default threads (a core left for the client) and 2 slots, then
    # two servers with half the cores each and 1 slot.
    for count, threads, parallel in [(1, max(1, cores - 1), 2), (2, max(1, cores // 2), 1)]:
        label = f"{count} x ({threads} threads, {parallel} slots)"
        with ExitStack() as stack:
            urls = [stack.enter_context(running_server(n_ctx=2048, n_threads=threads, parallel=parallel))
                    for _ in range(count)]
            if count == 1:
                for concurrency in (1, parallel):
                    with fresh_log() as log:
                        engine = create(base_url=urls[0], log=log, max_tokens=args.max_tokens)
                        report = run_batch(engine, TASK, items, batch_id="bench", concurrency=concurrency,
                                           progress=False)
                    rows.append(row("run_batch (openai engine)", label, concurrency, report))
                    print(f"  {rows[-1]}", flush=True)
            if not ray_ok:
                continue
            if ray_start is None:
                began = time.perf_counter()
                _init_ray(None, None)
                ray_start = time.perf_counter() - began
            with fresh_log() as log:
                report = run_batch_ray(TASK, items, base_urls=urls, batch_id="bench", log=log,
                                       concurrency=parallel, max_tokens=args.max_tokens, progress=False)
            rows.append(row("run_batch_ray (Ray Data HTTP)", label, parallel * count, report))
            print(f"  {rows[-1]}", flush=True)

    if args.json:
        print(json.dumps({"rows": rows, "ray_start_s": ray_start}, indent=2))
        return
    print(f"\n{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}; "
          f"SmolLM2-135M-Instruct Q4_1, max_tokens {args.max_tokens}, task search_query"
          + (f"; Ray start-up {ray_start:.1f} s (not in the timings)" if ray_start else ""))
    header = ["path", "servers", "concurrency", "items", "done", "failed", "calls", "seconds", "calls_per_s",
              "items_per_s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
