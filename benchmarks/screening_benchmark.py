"""Screening prioritisation: leads vs ASReview's default model, in simulation, on the dev topics.

For every topic and seed, both tools get the same priors (one relevant and one irrelevant record,
drawn with the seed), and leads also runs with no priors at all (zero-shot from the topic text,
then active learning). Every metric is computed by ``leads.screen.metrics`` from the screening
orders, so both tools are measured identically. The stopping rules are evaluated on leads'
orders.

ASReview runs from its own virtual environment (its pins would clash with ours)::

    python -m venv /tmp/asr-venv && /tmp/asr-venv/bin/pip install asreview==3.0.8
    python benchmarks/screening_benchmark.py --asreview /tmp/asr-venv/bin/asreview

Results are cached per (tool, topic, seed) in ``bench-out/screening/runs.json``; a rerun only
computes what is missing (``--force TOOL`` recomputes a tool's runs).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LEADS_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "bench-out" / "screening"

RCT = "randomized controlled trials"


@dataclass(frozen=True)
class Topic:
    name: str
    path: str  # relative to shared/data
    query: str | None = None  # topic text for the no-prior run
    criteria: str | None = None  # criteria file (relative to shared/data), used as the topic text

    def topic_text(self) -> str:
        if self.criteria:
            return (SHARED / self.criteria).read_text(encoding="utf-8").strip()
        assert self.query is not None
        return self.query


COHEN = "screening/cohen2006"
TOPICS: list[Topic] = [
    Topic("ACEInhibitors", f"{COHEN}/ACEInhibitors.csv", f"ACE inhibitors {RCT}"),
    Topic("ADHD", f"{COHEN}/ADHD.csv", f"ADHD {RCT}"),
    Topic("Antihistamines", f"{COHEN}/Antihistamines.csv", f"antihistamines {RCT}"),
    Topic("AtypicalAntipsychotics", f"{COHEN}/AtypicalAntipsychotics.csv", f"atypical antipsychotics {RCT}"),
    Topic("BetaBlockers", f"{COHEN}/BetaBlockers.csv", f"beta blockers {RCT}"),
    Topic("CalciumChannelBlockers", f"{COHEN}/CalciumChannelBlockers.csv", f"calcium channel blockers {RCT}"),
    Topic("Estrogens", f"{COHEN}/Estrogens.csv", criteria="screening/criteria/Estrogens.txt"),
    Topic("NSAIDS", f"{COHEN}/NSAIDS.csv", f"NSAIDs {RCT}"),
    Topic("OralHypoglycemics", f"{COHEN}/OralHypoglycemics.csv", f"oral hypoglycemics {RCT}"),
    Topic("UrinaryIncontinence", f"{COHEN}/UrinaryIncontinence.csv", f"urinary incontinence {RCT}"),
    Topic("CDSS_RO", "screening/other/CDSS_RO.csv", criteria="screening/criteria/CDSS_RO.txt"),
    Topic("Nagtegaal_2019", "screening/other/Nagtegaal_2019.csv.gz", "nudging healthcare professionals"),
    Topic("Bannach-Brown_2019", "screening/other/Bannach-Brown_2019.csv.gz", "animal models of depression"),
]
TOPIC_BY_NAME = {t.name: t for t in TOPICS}
# The model was developed on these topics; the others were only run for the report.
TUNING_TOPICS = ("ADHD", "Antihistamines", "NSAIDS", "UrinaryIncontinence", "CDSS_RO")

TOOLS = ("asreview", "leads", "leads-zero")
TOOL_LABELS = {
    "asreview": "ASReview 3.0.8 default (ELAS u4), 1+1 priors",
    "leads": "leads, same 1+1 priors + topic text",
    "leads-zero": "leads, no priors (topic text only)",
    "leads-tfidf": "leads, TF-IDF model only, same 1+1 priors, no topic text",
}
# Identifies the leads model that made a cached run: runs made by another version are recomputed.
MODEL_TAG = "2026-11-25.4: tfidf-lr + minilm-lr (newton-cg) ensemble, design probabilities, topic text, mesh expansion, stall 10"
METRICS = ("wss_95", "recall_at_10", "recall_at_25", "screened_to_95", "atd")


# -- data -----------------------------------------------------------------------------------------

_DATA_CACHE: dict[str, tuple[list, np.ndarray]] = {}


def load_topic(topic: Topic) -> tuple[list, np.ndarray]:
    """The topic's records (leads' reader) and labels, in row order (record id = row index)."""
    if topic.name not in _DATA_CACHE:
        from leads.formats import read_records

        records = list(read_records(SHARED / topic.path))
        labels = np.array([bool(r.label) for r in records])
        _DATA_CACHE[topic.name] = (records, labels)
    return _DATA_CACHE[topic.name]


def asreview_csv(topic: Topic) -> Path:
    """The topic as a plain ASReview CSV (title, abstract, label_included) in leads' row order, so
    that both tools number the records the same way (CDSS_RO's `;`-separated file included)."""
    path = OUT / "data" / f"{topic.name}.csv"
    if not path.exists():
        records, labels = load_topic(topic)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["title", "abstract", "label_included"])
            for record, label in zip(records, labels, strict=True):
                writer.writerow([record.title or "", record.abstract or "", int(label)])
        tmp.replace(path)
    return path


def sample_priors(topic: Topic, seed: int) -> list[int]:
    """One relevant and one irrelevant record, drawn with the seed (the same for both tools)."""
    _, labels = load_topic(topic)
    rng = np.random.default_rng([seed, zlib.crc32(topic.name.encode())])
    relevant = int(rng.choice(np.flatnonzero(labels)))
    irrelevant = int(rng.choice(np.flatnonzero(~labels)))
    return [relevant, irrelevant]


# -- runs -----------------------------------------------------------------------------------------

def run_asreview(topic: Topic, seed: int, asreview: str) -> dict:
    data = asreview_csv(topic)
    priors = sample_priors(topic, seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim.asreview"
        command = [asreview, "simulate", str(data), "--prior-idx", *map(str, priors),
                   "--seed", str(seed), "-o", str(out)]
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"asreview failed on {topic.name}: {proc.stderr[-2000:]}")
        with zipfile.ZipFile(out) as zf:
            zf.extract("results.db", tmp)
        conn = sqlite3.connect(Path(tmp) / "results.db")
        try:
            order = [int(r) for (r,) in conn.execute("SELECT record_id FROM results ORDER BY rowid")]
        finally:
            conn.close()
    if order[:2] != priors:
        raise RuntimeError(f"asreview's order does not start with the priors {priors}: {order[:2]}")
    # ASReview stops when the last relevant record is found; the rest is irrelevant, in id order.
    _, labels = load_topic(topic)
    seen = set(order)
    order += [i for i in range(len(labels)) if i not in seen]
    return {"order": order, "priors": priors, "seconds": round(seconds, 2),
            "command": " ".join(command[:1] + command[1:]).replace(str(REPO) + "/", "")}


def run_leads(topic: Topic, seed: int, zero_shot: bool, *, baseline: bool = False) -> dict:
    """leads' simulation: with the seed's 1+1 priors (or none) and the topic text, MiniLM
    embeddings and study-design features; ``baseline``: the TF-IDF model alone, priors only."""
    from leads.screen.ranking import LearnerConfig
    from leads.screen.simulate import simulate

    records, labels = load_topic(topic)
    priors = [] if zero_shot else sample_priors(topic, seed)
    started = time.perf_counter()
    if baseline:
        result = simulate(records, labels, priors=priors, seed=seed, query=None, embeddings=False,
                          design=False, verdicts=False, config=LearnerConfig(prior_mix=0.0))
    else:
        result = simulate(records, labels, priors=priors, seed=seed, query=topic.topic_text(),
                          embeddings=True, design=True, verdicts=False,
                          embeddings_cache=OUT / "embeddings")
    seconds = time.perf_counter() - started
    return {"order": result.order, "priors": priors, "seconds": round(seconds, 2),
            "rerank_ms": result.rerank_ms, "model": MODEL_TAG, "features": result.features}


# -- cache ----------------------------------------------------------------------------------------

def load_runs(path: Path) -> dict[str, dict]:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def save_run(path: Path, k: str, run: dict) -> dict[str, dict]:
    """Add one run to the cache file (re-read first: several tools may run at once)."""
    runs = load_runs(path)
    runs[k] = run
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(runs, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return runs


def key(tool: str, topic: str, seed: int) -> str:
    return f"{tool}|{topic}|{seed}"


# -- evaluation -----------------------------------------------------------------------------------

def evaluate(runs: dict[str, dict], topics: list[Topic], seeds: list[int], tools: tuple[str, ...]) -> dict:
    from leads.screen.metrics import screening_metrics

    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for topic in topics:
        _, labels = load_topic(topic)
        for tool in tools:
            for seed in seeds:
                run = runs.get(key(tool, topic.name, seed))
                if run is None:
                    continue
                m = screening_metrics(run["order"], labels, run["priors"]).as_dict()
                slot = table.setdefault(topic.name, {}).setdefault(tool, {})
                for metric in METRICS:
                    slot.setdefault(metric, []).append(float(m[metric]))
    return table


def stopping_evaluation(runs: dict[str, dict], topics: list[Topic], seeds: list[int],
                        tools: tuple[str, ...]) -> list[dict]:
    from leads.screen.stopping import evaluate_stopping_rules

    rows: list[dict] = []
    for tool in tools:
        outcomes: dict[str, list[tuple[float, float]]] = {}
        for topic in topics:
            _, labels = load_topic(topic)
            for seed in seeds:
                run = runs.get(key(tool, topic.name, seed))
                if run is None:
                    continue
                for rule, (recall, fraction, _) in evaluate_stopping_rules(
                        run["order"], labels, run["priors"]).items():
                    outcomes.setdefault(rule, []).append((recall, fraction))
        for rule, values in outcomes.items():
            recalls = [r for r, _ in values]
            rows.append({
                "tool": tool, "rule": rule, "runs": len(values),
                "reached_95": sum(r >= 0.95 - 1e-12 for r in recalls) / len(values),
                "mean_recall": statistics.fmean(recalls),
                "min_recall": min(recalls),
                "mean_screened": statistics.fmean(f for _, f in values),
            })
    return rows


def fmt(values: list[float], pct: bool = True) -> str:
    scale = 100 if pct else 1
    if not values:
        return "–"
    mean = statistics.fmean(values) * scale
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {sd:.1f}"


def markdown(table: dict, topics: list[Topic], tools: tuple[str, ...], stopping: list[dict]) -> str:
    lines: list[str] = []
    header = "| topic | N | R | tool | WSS@95 % | recall@10% % | recall@25% % | screened to 95% % | ATD % |"
    lines += [header, "|" + "---|" * 9]
    for topic in topics:
        _, labels = load_topic(topic)
        for tool in tools:
            slot = table.get(topic.name, {}).get(tool)
            if not slot:
                continue
            cells = [fmt(slot[m]) for m in METRICS]
            tuned = "*" if topic.name in TUNING_TOPICS else ""
            lines.append(f"| {topic.name}{tuned} | {len(labels)} | {int(labels.sum())} | {tool} | "
                         + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean over topics (each topic's mean over seeds; ± is the SD across topics; "
                 "held out = not among the tuning topics marked *):")
    lines.append("")
    lines += ["| tool | topics | WSS@95 % | recall@10% % | recall@25% % | screened to 95% % | ATD % |",
              "|" + "---|" * 7]
    held_out = [t.name for t in topics if t.name not in TUNING_TOPICS]
    for subset, names in (("all", [t.name for t in topics]), ("held out", held_out)):
        for tool in tools:
            per_topic = {m: [statistics.fmean(table[n][tool][m]) for n in names
                             if tool in table.get(n, {})] for m in METRICS}
            if per_topic["wss_95"]:
                lines.append(f"| {TOOL_LABELS[tool]} | {len(per_topic['wss_95'])} {subset} | "
                             + " | ".join(fmt(per_topic[m]) for m in METRICS) + " |")
    if stopping:
        lines += ["", "| orders of | rule | runs | runs with recall ≥ 95% at the stop | mean recall | "
                  "min recall | mean fraction screened |", "|" + "---|" * 7]
        for row in stopping:
            lines.append(f"| {row['tool']} | {row['rule']} | {row['runs']} | {100 * row['reached_95']:.0f}% | "
                         f"{100 * row['mean_recall']:.1f}% | {100 * row['min_recall']:.1f}% | "
                         f"{100 * row['mean_screened']:.1f}% |")
    return "\n".join(lines)


def rerank_latency(decided: tuple[int, ...] = (2, 500, 1500, 3000), steps: int = 30) -> str:
    """Re-rank time (fit on the decisions + score every record) at 10,000 records: the 2,518
    ACEInhibitors records repeated (with their embeddings and design probabilities), the leads
    model as benchmarked; ``steps`` decisions timed after ``decided`` random decisions."""
    from leads.screen.ranking import (
        ActiveLearner,
        build_features,
        design_features,
        record_embeddings,
        record_text,
        zero_shot_scores,
    )

    topic = TOPIC_BY_NAME["ACEInhibitors"]
    records, labels = load_topic(topic)
    emb = record_embeddings([record_text(r) for r in records], OUT / "embeddings")
    if emb is None:
        raise RuntimeError("the MiniLM model is not installed")
    design = design_features(records)
    idx = np.tile(np.arange(len(records)), 10_000 // len(records) + 1)[:10_000]
    features = build_features([record_text(records[i], title_repeats=2) for i in idx],
                              embeddings=emb[idx], design=design[idx])
    query_embedding = record_embeddings([topic.topic_text()], None)
    assert query_embedding is not None
    prior = zero_shot_scores(features, topic.topic_text(), query_embedding=query_embedding[0])
    y = labels[idx]
    rng = np.random.default_rng(0)
    lines = ["| decisions so far | re-rank p50 ms (wall) | p95 ms (wall) | p50 ms (CPU) | p95 ms (CPU) |",
             "|---:|---:|---:|---:|---:|"]
    for n_decided in decided:
        learner = ActiveLearner(features, query=topic.topic_text(), query_embedding=query_embedding[0],
                                prior_scores=prior, seed=0)
        chosen = rng.choice(len(y), n_decided, replace=False)
        chosen[0], chosen[1] = np.flatnonzero(y)[0], np.flatnonzero(~y)[0]
        for i in chosen:
            learner.update(int(i), bool(y[i]))
        wall, cpu = [], []
        for _ in range(steps):
            w0, c0 = time.perf_counter(), time.process_time()
            nxt = learner.next()
            wall.append((time.perf_counter() - w0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert nxt is not None
            learner.update(nxt, bool(y[nxt]))
        lines.append(f"| {n_decided:,} | {np.percentile(wall, 50):.1f} | {np.percentile(wall, 95):.1f} | "
                     f"{np.percentile(cpu, 50):.1f} | {np.percentile(cpu, 95):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asreview", default=os.environ.get("ASREVIEW", "/tmp/asr-venv/bin/asreview"),
                        help="the asreview executable (of its own venv)")
    parser.add_argument("--topics", default=",".join(t.name for t in TOPICS))
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--force", action="append", default=[], help="recompute this tool's runs")
    parser.add_argument("--runs", type=Path, default=OUT / "runs.json")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--no-run", action="store_true", help="only report what is cached")
    parser.add_argument("--latency", action="store_true",
                        help="only measure the re-rank latency at 10,000 records")
    args = parser.parse_args(argv)
    # One BLAS thread: the simulations fit small models thousands of times (more threads only
    # add contention on the 2 shared cores this ran on), and latencies are then per core.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if args.latency:
        print(rerank_latency())
        return 0

    topics = [TOPIC_BY_NAME[name] for name in args.topics.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    tools = tuple(args.tools.split(","))
    runs = load_runs(args.runs)
    runners: dict[str, Callable[[Topic, int], dict]] = {
        "asreview": lambda t, s: run_asreview(t, s, args.asreview),
        "leads": lambda t, s: run_leads(t, s, zero_shot=False),
        "leads-zero": lambda t, s: run_leads(t, s, zero_shot=True),
        "leads-tfidf": lambda t, s: run_leads(t, s, zero_shot=False, baseline=True),
    }
    if not args.no_run:
        for topic in topics:
            for tool in tools:
                for seed in seeds:
                    k = key(tool, topic.name, seed)
                    cached = runs.get(k)
                    if cached is not None and tool not in args.force and (
                            tool == "asreview" or cached.get("model") == MODEL_TAG):
                        continue
                    run = runners[tool](topic, seed)
                    runs = save_run(args.runs, k, run)
                    print(f"{k}: {run['seconds']:.1f} s", file=sys.stderr, flush=True)
    table = evaluate(runs, topics, seeds, tools)
    stopping = stopping_evaluation(runs, topics, seeds, tools)
    text = markdown(table, topics, tools, stopping)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
