"""Build throughput and query latency of the local search corpus (:mod:`leads.search.corpus`).

Data (from ``../shared/data``, or ``--shared``):

* real records, first in the build (so they win over nothing: their ids do not collide with the
  generated ones): ``search/haystack_dev/haystack_dev.jsonl.gz`` (12,799; MeSH headings for
  6,430), the ten Cohen 2006 CSVs (``screening/cohen2006/*.csv``; 9,510 rows whose PMIDs are
  all in haystack_dev, so they are counted as duplicates), ``screening/other/*.csv*``
  (CDSS_RO, Nagtegaal 2019, Bannach-Brown 2019: no PMIDs, stable hash ids), the PICO-Corpus
  abstracts (``pico/pico_corpus_dev/*.txt``) and the EBM-NLP abstracts (``pico/ebmnlp_dev.txt``,
  tokens re-joined), the last two written to a small haystack-format file first.
* generated records, to reach ``--records`` (default 1,000,000), in haystack JSONL (the
  evaluator's format) with these fields:

  - ``title``: a random real title whose words of four or more letters are each replaced, with
    probability 0.3, by a random real title word;
  - ``abstract``: 9 % empty (the share of real haystack records without one); otherwise as many
    random real abstract sentences as a random real abstract has (sentences split at ``.``,
    ``?`` or ``!`` followed by a capital);
  - ``mesh``: with the probability that a real Cohen (MEDLINE) record has MeSH headings, a list
    as long as a random real record's list, drawn from the real heading frequencies (repeats
    dropped); otherwise none;
  - ``year``: uniform in 1950-2024; ``pmid``: 40,000,000 + n (no collision with real PMIDs);
  - ``authors``: as many as a random Cohen record has, names drawn from the real Cohen authors;
  - ``language`` and ``publication_types``: **synthetic** (the real files carry none):
    ``eng`` 90 %, else one of fre, ger, spa, ita, jpn, chi, rus; every record a Journal Article,
    plus Randomized Controlled Trial 8 %, Clinical Trial 5 %, Review 12 %, Meta-Analysis 1 %,
    Comparative Study 10 %, Case Reports 5 %.

Queries: one drug-class search per Cohen 2006 topic (written here in the way such reviews
search PubMed: MeSH heading OR drug names in [tiab], AND a condition or design filter), the real
Cochrane PubMed searches of ``tests/fixtures/search/pubmed_queries.txt`` that stand alone (no
``#n`` reference, no ``[sb]`` subset, which a local corpus cannot evaluate), and simple
``[tiab]``, ``[mh]``, phrase, truncation, date, ``[pt]``, ``[au]``, ``[la]`` and untagged
queries. Each query runs ``--repeat`` times after one first (cold-ish) run; the per-query median
is reported, and p50/p95 are over queries. ``count`` is the set evaluation
(:meth:`Corpus.count`), ``search`` adds reading every hit's id, PMID and title
(:meth:`Corpus.search`, what ``leads corpus search --json`` prints). The same queries also run
once with ``engine="sql"`` (one compound SELECT with INTERSECT/UNION/EXCEPT) for the comparison
with Python sets.

Usage::

    python benchmarks/corpus_benchmark.py --workdir /tmp/leads-corpus-bench            # all
    python benchmarks/corpus_benchmark.py --workdir /tmp/leads-corpus-bench --skip-build
    python benchmarks/corpus_benchmark.py ... --write-docs   # (re)write the docs section
"""

from __future__ import annotations

import argparse
import array
import csv
import gzip
import json
import os
import platform
import random
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from leads.search import parse
from leads.search.corpus import (
    SCHEMA_VERSION,
    BuildProgress,
    Corpus,
    _iter_source,
    build_corpus,
)
from leads.search.query import iter_leaves
from leads.vocab.mesh import Mesh

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Local corpus (1M records)"
DATE = "2026-11-25"
# The schema-1 query numbers (earlier run of this script on the same data, same date), quoted
# for comparison in the docs section.
PREVIOUS = {
    "count_ms": 38.0,
    "count_cpu_ms": 35.8,
    "json_ms": 137.4,
    "json_cpu_ms": 131.2,
    "json_p95_ms": 1374.7,
}

COHEN_QUERIES = {
    "ACEInhibitors": '("Angiotensin-Converting Enzyme Inhibitors"[mh] OR ace inhibitor*[tiab] '
    "OR enalapril[tiab] OR lisinopril[tiab] OR captopril[tiab] OR ramipril[tiab]) AND "
    "(randomized controlled trial[pt] OR random*[tiab])",
    "ADHD": '("Attention Deficit Disorder with Hyperactivity"[mh] OR adhd[tiab] OR attention '
    'deficit*[tiab]) AND (methylphenidate[tiab] OR atomoxetine[tiab] OR "Central Nervous System '
    'Stimulants"[mh])',
    "Antihistamines": '("Histamine H1 Antagonists"[mh] OR antihistamin*[tiab] OR cetirizine[tiab] '
    "OR loratadine[tiab] OR fexofenadine[tiab]) AND (rhinitis[tiab] OR urticaria[tiab])",
    "AtypicalAntipsychotics": '("Antipsychotic Agents"[mh] OR olanzapine[tiab] OR '
    "risperidone[tiab] OR quetiapine[tiab] OR clozapine[tiab] OR ziprasidone[tiab]) AND "
    "(schizophrenia[mh] OR schizophreni*[tiab])",
    "BetaBlockers": '("Adrenergic beta-Antagonists"[mh] OR beta blocker*[tiab] OR metoprolol[tiab] '
    'OR carvedilol[tiab] OR atenolol[tiab]) AND ("Heart Failure"[mh] OR heart failure[tiab] OR '
    "hypertension[tiab])",
    "CalciumChannelBlockers": "calcium channel blockers AND (hypertension OR angina) AND "
    "1985:2005[dp]",
    "Estrogens": '(estrogens OR "Estrogen Replacement Therapy"[mh] OR hormone replacement[tiab]) '
    'AND (postmenopaus*[tiab] OR "Postmenopause"[mh]) NOT (animals[mh] NOT humans[mh])',
    "NSAIDS": '("Anti-Inflammatory Agents, Non-Steroidal"[mh] OR nsaid*[tiab] OR ibuprofen[tiab] '
    'OR naproxen[tiab] OR celecoxib[tiab]) AND (osteoarthritis[tiab] OR "Arthritis, '
    'Rheumatoid"[mh])',
    "OralHypoglycemics": '("Hypoglycemic Agents"[mh] OR metformin[tiab] OR sulfonylurea*[tiab] OR '
    'glipizide[tiab] OR pioglitazone[tiab]) AND ("Diabetes Mellitus, Type 2"[mh] OR type 2 '
    "diabetes[tiab])",
    "UrinaryIncontinence": '("Urinary Incontinence"[mh] OR incontinence[tiab] OR overactive '
    'bladder[tiab]) AND (oxybutynin[tiab] OR tolterodine[tiab] OR "Muscarinic Antagonists"[mh])',
}
SIMPLE_QUERIES = {
    "tiab word": "hypertension[tiab]",
    "tiab rare word": "xylitol[tiab]",
    "mh exploded": '"Cardiovascular Diseases"[mh]',
    "mh noexp": '"Hypertension"[mh:noexp]',
    "mh Humans": "Humans[mh]",
    "phrase": '"double blind"[tiab]',
    "truncation": "random*[tiab]",
    "truncation short": "thromb*[tiab]",
    "date range": "2000:2010[dp]",
    "tiab + date": '"heart failure"[tiab] AND 2010:2020[dp]',
    "pt": "randomized controlled trial[pt]",
    "author": "smith j[au]",
    "language": "eng[la] AND cancer[ti]",
    "untagged word": "hypertension",
    "untagged words": "heart attack",
    "proximity": '"blood pressure"[tiab:~3]',
}


def load_shared_queries(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("--") or not line.strip():
            continue
        key, status, query = line.split("\t", 2)
        if status != "ok" or re.search(r"#\d", query):
            continue
        leaves = list(iter_leaves(parse(query)))
        if any(getattr(leaf, "field", None) == "sb" for leaf in leaves):
            continue
        out[f"sigir {key}"] = query
    return out


# --------------------------------------------------------------------------------------------
# Data


def real_sources(shared: Path, workdir: Path) -> list[Path]:
    sources = [shared / "search/haystack_dev/haystack_dev.jsonl.gz"]
    sources += sorted((shared / "screening/cohen2006").glob("*.csv"))
    sources += sorted((shared / "screening/other").glob("*.csv*"))
    extra = workdir / "pico_abstracts.jsonl"
    with open(extra, "w", encoding="utf-8") as out:
        for txt in sorted((shared / "pico/pico_corpus_dev").glob("*.txt")):
            text = txt.read_text(encoding="utf-8").strip()
            row = {"doc_id": txt.stem, "pmid": txt.stem, "title": None, "abstract": text}
            out.write(json.dumps(row) + "\n")
        pmid: str | None = None
        tokens: list[str] = []
        for line in (shared / "pico/ebmnlp_dev.txt").read_text(encoding="utf-8").splitlines():
            m = re.match(r"-DOCSTART- \((\d+)\)", line)
            if m:
                if pmid and tokens:
                    row = {
                        "doc_id": pmid,
                        "pmid": pmid,
                        "title": None,
                        "abstract": " ".join(tokens),
                    }
                    out.write(json.dumps(row) + "\n")
                pmid, tokens = m.group(1), []
            elif line.strip():
                tokens.append(line.split(" ")[0])
        if pmid and tokens:
            row = {"doc_id": pmid, "pmid": pmid, "title": None, "abstract": " ".join(tokens)}
            out.write(json.dumps(row) + "\n")
    return [*sources, extra]


SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
PUBTYPES = [
    ("Randomized Controlled Trial", 0.08),
    ("Clinical Trial", 0.05),
    ("Review", 0.12),
    ("Meta-Analysis", 0.01),
    ("Comparative Study", 0.10),
    ("Case Reports", 0.05),
]
OTHER_LANGUAGES = ["fre", "ger", "spa", "ita", "jpn", "chi", "rus"]


def generate(shared: Path, out: Path, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with gzip.open(shared / "search/haystack_dev/haystack_dev.jsonl.gz", "rt") as f:
        docs = [json.loads(line) for line in f]
    titles = [d["title"] for d in docs if d.get("title")]
    title_words = [w for t in titles for w in t.split() if len(w) >= 4 and w.isalpha()]
    abstracts = [d["abstract"] for d in docs if d.get("abstract")]
    sentences = [s for a in abstracts for s in SENTENCE.split(a) if len(s) > 20]
    sentence_counts = [len(SENTENCE.split(a)) for a in abstracts]
    no_abstract = 1 - len(abstracts) / len(docs)
    mesh_lists = [d["mesh"] for d in docs if d["mesh"]]
    heading_freq = Counter(h for lst in mesh_lists for h in lst)
    headings, weights = zip(*heading_freq.items(), strict=True)
    cohen_pmids = set()
    author_lists: list[list[str]] = []
    for path in sorted((shared / "screening/cohen2006").glob("*.csv")):
        with open(path, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                cohen_pmids.add(row["pubmedID"])
                author_lists.append(
                    [a.strip() for a in (row["authors"] or "").split(";") if a.strip()]
                )
    with_mesh = sum(1 for d in docs if d["mesh"] and d["pmid"] in cohen_pmids) / max(
        1, sum(1 for d in docs if d["pmid"] in cohen_pmids)
    )
    author_names = [a for lst in author_lists for a in lst]
    started = time.perf_counter()
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=1) as f:
        for n in range(count):
            words = rng.choice(titles).split()
            title = " ".join(
                rng.choice(title_words) if len(w) >= 4 and w.isalpha() and rng.random() < 0.3 else w
                for w in words
            )
            abstract = None
            if rng.random() >= no_abstract:
                abstract = " ".join(rng.choices(sentences, k=rng.choice(sentence_counts)))
            mesh: list[str] = []
            if rng.random() < with_mesh:
                k = len(rng.choice(mesh_lists))
                mesh = list(dict.fromkeys(rng.choices(headings, weights=weights, k=k)))
            pts = ["Journal Article"] + [p for p, share in PUBTYPES if rng.random() < share]
            row = {
                "doc_id": f"G{n + 1:07d}",
                "pmid": str(40_000_000 + n + 1),
                "pmcid": None,
                "title": title,
                "abstract": abstract,
                "mesh": mesh,
                "year": rng.randint(1950, 2024),
                "authors": [rng.choice(author_names) for _ in rng.choice(author_lists)],
                "language": "eng" if rng.random() < 0.9 else rng.choice(OTHER_LANGUAGES),
                "publication_types": pts,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {
        "generated": count,
        "seconds": time.perf_counter() - started,
        "sentences": len(sentences),
        "titles": len(titles),
        "share_with_mesh": with_mesh,
        "share_without_abstract": no_abstract,
        "distinct_headings": len(headings),
        "author_names": len(author_names),
    }


class LoadSampler:
    """Samples the 1-minute load average every few seconds while a phase runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        return (
            f"{statistics.mean(self.samples):.1f} mean, {min(self.samples):.1f}-"
            f"{max(self.samples):.1f} range (1-min load average)"
        )


# --------------------------------------------------------------------------------------------
# Measuring


def timed(fn: Any) -> tuple[Any, float, float]:
    t, p = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - t, time.process_time() - p


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_queries(
    corpus: Corpus, queries: dict[str, str], repeat: int, sql: bool
) -> list[dict[str, Any]]:
    rows = []
    for name, query in queries.items():
        count, first, _ = timed(lambda q=query: corpus.count(q))
        counts = [timed(lambda q=query: corpus.count(q)) for _ in range(repeat)]
        searches = [timed(lambda q=query: corpus.search(q)) for _ in range(repeat)]
        assert all(len(s[0]) == count for s in searches)

        def as_json(q: str = query) -> bytes:
            # What `leads corpus search --json` writes to stdout (Corpus.iter_json).
            return b"".join(corpus.iter_json(corpus.matches(q)))

        jsons = [timed(as_json) for _ in range(repeat)]
        document = json.loads(jsons[0][0])
        assert document["count"] == count == len(document["results"])
        assert [r["id"] for r in document["results"]] == [h.id for h in searches[0][0]]
        row = {
            "name": name,
            "query": query,
            "count": count,
            "first_ms": first * 1000,
            "count_ms": statistics.median(c[1] for c in counts) * 1000,
            "count_cpu_ms": statistics.median(c[2] for c in counts) * 1000,
            "search_ms": statistics.median(s[1] for s in searches) * 1000,
            "search_cpu_ms": statistics.median(s[2] for s in searches) * 1000,
            "json_ms": statistics.median(s[1] for s in jsons) * 1000,
            "json_cpu_ms": statistics.median(s[2] for s in jsons) * 1000,
        }
        if sql:
            sql_count, sql_wall, sql_cpu = timed(lambda q=query: corpus.count(q, engine="sql"))
            assert sql_count == count, (name, sql_count, count)
            row["sql_ms"] = sql_wall * 1000
            row["sql_cpu_ms"] = sql_cpu * 1000
        rows.append(row)
        print(
            f"  {name:28s} {count:>8,d}  count {row['count_ms']:8.1f} ms  search "
            f"{row['search_ms']:8.1f} ms  json {row['json_ms']:8.1f} ms"
            + (f"  sql {row['sql_ms']:8.1f} ms" if sql else ""),
            flush=True,
        )
    return rows


def summarise(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [r[key] for r in rows]
    return percentile(values, 0.5), percentile(values, 0.95)


def _set_from_sql(conn: sqlite3.Connection, sql: str) -> set[int]:
    """Rowids as a Python set, read as the corpus did before it used masks (one JSON array)."""
    (text,) = conn.execute(f"SELECT json_group_array(doc) FROM ({sql})").fetchone()
    return set(json.loads(text))


def _set_from_postings(conn: sqlite3.Connection, kind: str, key: str) -> set[int]:
    (blob,) = conn.execute(
        "SELECT docs FROM postings WHERE kind = ? AND key = ?", (kind, key)
    ).fetchone()
    return set(array.array("i", blob))


def set_algebra(corpus: Corpus) -> list[dict[str, Any]]:
    """Boolean masks (what Corpus uses), Python sets and SQLite compound SELECTs on two large
    real operands, each side read from the corpus as in a query."""
    conn = corpus._conn
    mesh = corpus.mesh
    humans = mesh.descriptor("Humans")
    assert humans is not None
    did = corpus._dids_for_uis([humans.ui])[0]
    expr = '{title abstract keywords} : "random" *'
    left_sql = f"SELECT doc FROM doc_mesh WHERE did = {did}"
    right_sql = f"SELECT rowid AS doc FROM fts WHERE fts MATCH '{expr}'"
    out = []
    for op, py in (("INTERSECT", "&"), ("UNION", "|"), ("EXCEPT", "-")):
        sql = f"SELECT count(*) FROM ({left_sql} {op} {right_sql})"
        (n_sql,), wall_sql, cpu_sql = timed(lambda s=sql: conn.execute(s).fetchone())

        def python(op: str = py) -> int:
            a = _set_from_postings(conn, "mesh", str(did))
            b = _set_from_sql(conn, right_sql)
            return len(a & b if op == "&" else a | b if op == "|" else a - b)

        def masks(op: str = py) -> int:
            a = corpus._postings("mesh", [str(did)])
            b = corpus._fts(expr)
            if op == "&":
                a &= b
            elif op == "|":
                a |= b
            else:
                a &= ~b
            return int(a.sum())

        n_py, wall_py, cpu_py = timed(python)
        n_mask, wall_mask, cpu_mask = timed(masks)
        assert n_py == n_sql == n_mask
        out.append(
            {
                "op": op,
                "result": n_py,
                "sql_ms": wall_sql * 1000,
                "sql_cpu_ms": cpu_sql * 1000,
                "py_ms": wall_py * 1000,
                "py_cpu_ms": cpu_py * 1000,
                "mask_ms": wall_mask * 1000,
                "mask_cpu_ms": cpu_mask * 1000,
            }
        )
    sizes = (int(corpus._postings("mesh", [str(did)]).sum()), int(corpus._fts(expr).sum()))
    for row in out:
        row["operands"] = sizes
    return out


def run_cli(db: Path, queries: dict[str, str], repeat: int) -> list[dict[str, Any]]:
    """`leads corpus search DB QUERY --json > pipe` end to end, a new process each time
    (interpreter start, imports, MeSH, the query, the document written to a pipe); once through
    the `leads` command and once through the corpus group alone (its own imports only)."""
    commands = {
        "leads": [str(Path(sys.executable).with_name("leads")), "corpus"],
        "group": [
            sys.executable,
            "-c",
            "from leads.search.corpus_cli import corpus_group; corpus_group()",
        ],
    }
    rows = []
    for name, query in queries.items():
        row: dict[str, Any] = {"name": name}
        for label, command in commands.items():
            walls, cpus = [], []
            for _ in range(repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                done = subprocess.run(
                    [*command, "search", str(db), query, "--json"],
                    stdout=subprocess.PIPE,
                    check=True,
                )
                walls.append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            row["count"] = json.loads(done.stdout)["count"]
            row["bytes"] = len(done.stdout)
            row[f"{label}_wall_ms"] = statistics.median(walls) * 1000
            row[f"{label}_cpu_ms"] = statistics.median(cpus) * 1000
        rows.append(row)
        print(
            f"  cli {name:28s} leads {row['leads_wall_ms']:8.0f} ms, "
            f"group {row['group_wall_ms']:8.0f} ms",
            flush=True,
        )
    return rows


# --------------------------------------------------------------------------------------------
# Report


def markdown(report: dict[str, Any]) -> str:
    b = report["build"]
    g = report.get("generation") or {}
    rows = report["queries"]
    p50, p95 = summarise(rows, "count_ms")
    sp50, sp95 = summarise(rows, "search_ms")
    jp50, jp95 = summarise(rows, "json_ms")
    jcp50, jcp95 = summarise(rows, "json_cpu_ms")
    cp50, cp95 = summarise(rows, "count_cpu_ms")
    sql50, sql95 = (
        summarise(rows, "sql_ms") if rows and "sql_ms" in rows[0] else (float("nan"),) * 2
    )
    target_rate = 5000
    # Only builds of the same corpus schema as the one measured are comparable.
    builds = {
        mode: o
        for mode, o in report.get("builds", {}).items()
        if o.get("schema_version") == b.get("schema_version")
    }
    lines = [
        SECTION,
        "",
        "`leads.search.corpus`: `build_corpus` into SQLite (FTS5 + MeSH/publication-type tables and",
        "postings, `doc_json`), then PubMed-syntax queries with `Corpus.count`, "
        "`Corpus.iter_json` (the `--json` output) and `Corpus.search`.",
        "",
        "```",
        *(
            line
            for o in builds.values()
            for line in (
                f'# build with fts="{o["fts"]}"'
                + (" and run the queries" if o["command"] == report["command"] else ""),
                o["command"],
            )
        ),
        *(
            ("# run the queries on it", report["command"])
            if all(o["command"] != report["command"] for o in builds.values())
            else ()
        ),
        "# write this section",
        f"python benchmarks/corpus_benchmark.py --workdir {report.get('workdir', '...')} "
        f"--docs-only --write-docs --fts {b['fts']}",
        "```",
        "",
        f"- Date: {DATE}. Machine: {report['machine']}. Python {report['python']}, SQLite "
        f"{report['sqlite']}. The build runs two threads (parsing; SQLite inserts), queries one.",
        f"- Load during the build: {b['load']}; during the queries: {report['query_load']}. Where "
        "other jobs shared the 2 cores (a load above 2), wall times are inflated and CPU time "
        "(process time) is the better estimate of an idle machine.",
        f"- Records: {b['records']:,} in the corpus ({b['real']:,} real, {b['generated']:,} "
        f"generated; {b['duplicates']:,} duplicate ids skipped: the Cohen CSV rows already in "
        "haystack_dev). Generator: see the module docstring of `benchmarks/corpus_benchmark.py` "
        f"(real sentences {g.get('sentences', 0):,}, real titles {g.get('titles', 0):,}, "
        f"{g.get('distinct_headings', 0):,} real headings, MeSH on "
        f"{100 * g.get('share_with_mesh', 0):.0f} % of generated records; language and "
        "publication types synthetic).",
        f"- Corpus file: {b['size_bytes'] / 1e9:.2f} GB.",
        "",
        "### Build",
        "",
        f'`build_corpus(..., fts="{b["fts"]}")`'
        + (
            " (the full-text index is fed batch by batch from the writer thread while the main "
            "thread parses: the 'reading' phase includes the FTS5 inserts; then `optimize`):"
            if b["fts"] == "stream"
            else " (the full-text index is built in one `rebuild` pass after reading):"
        ),
        "",
        "| phase | wall (s) | records/s (wall) |",
        "|---|---:|---:|",
        f"| reading (+ docs tables{', FTS5 inserts' if b['fts'] == 'stream' else ''}) | "
        f"{b['read_seconds']:.0f} | {b['records'] / b['read_seconds']:,.0f} |",
        f"| MeSH tables, postings, FTS5 {'optimize' if b['fts'] == 'stream' else 'rebuild + optimize'}, "
        f"indexes | {b['index_seconds']:.0f} | |",
        f"| **total** | **{b['seconds']:.0f}** | **{b['rate']:,.0f}** |",
        "",
        f"Total CPU time {b['cpu_seconds']:.0f} s ({b['records'] / b['cpu_seconds']:,.0f} records "
        "per CPU second). Index steps:",
        "",
        "| step | wall (s) |",
        "|---|---:|",
        *(f"| {name} | {secs:.1f} |" for name, secs in b["steps"]),
        "",
        *(
            line
            for mode, o in builds.items()
            if mode != b["fts"]
            for line in (
                f'The other FTS mode, `fts="{mode}"`, same data '
                f"(`{o['command']}`): {o['seconds']:.0f} s wall ({o['rate']:,.0f} records/s), "
                f"{o['cpu_seconds']:.0f} s CPU ({o['records'] / o['cpu_seconds']:,.0f} records per "
                f"CPU second), load {o['load']}.",
                "",
            )
        ),
        f"Target >= {target_rate:,} records/s: "
        + (
            f"met ({b['rate']:,.0f}/s wall)."
            if b["rate"] >= target_rate
            else f"missed on wall time ({b['rate']:,.0f}/s, {100 * (1 - b['rate'] / target_rate):.0f} % short)"
            + (
                f"; met on CPU time ({b['records'] / b['cpu_seconds']:,.0f}/s)."
                if b["records"] / b["cpu_seconds"] >= target_rate
                else "."
            )
        ),
        "",
        "### Queries",
        "",
        f'On the corpus built with `fts="{report.get("query_fts", b["fts"])}"` (both modes '
        "write the same tables and a one-segment FTS5 index).",
        "",
        f"{len(rows)} queries, each run once cold(ish) and then {report['repeat']} times; "
        "the per-query median is shown. `count` = evaluating the set of matches "
        "(`Corpus.count`); `json` = the sorted matches (`Corpus.matches`) plus the whole "
        "`--json` document with every hit's id, PMID and title, as the bytes that "
        "`leads corpus search --json` writes (`Corpus.iter_json`); `search` = "
        "`Corpus.search`, a Python `Hit` per match; `sql` = one run of the same plan as a "
        "single compound SELECT (INTERSECT/UNION/EXCEPT). Times in ms, wall unless marked CPU.",
        "",
        "| query | matches | first | count | count CPU | json | json CPU | search | sql |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['count']:,} | {r['first_ms']:.0f} | {r['count_ms']:.1f} | "
            f"{r['count_cpu_ms']:.1f} | {r['json_ms']:.1f} | {r['json_cpu_ms']:.1f} | "
            f"{r['search_ms']:.1f} | {r.get('sql_ms', float('nan')):.0f} |"
        )
    lines += [
        "",
        "| | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|",
        f"| count (wall) | {p50:.1f} | {p95:.1f} |",
        f"| count (CPU) | {cp50:.1f} | {cp95:.1f} |",
        f"| json (wall) | {jp50:.1f} | {jp95:.1f} |",
        f"| json (CPU) | {jcp50:.1f} | {jcp95:.1f} |",
        f"| search, Python hits (wall) | {sp50:.1f} | {sp95:.1f} |",
        f"| compound SQL engine (wall, 1 run) | {sql50:.1f} | {sql95:.1f} |",
        "",
        "Target p50 <= 100 ms, on wall time (on CPU time): "
        f"{'met' if p50 <= 100 else 'missed'} ({'met' if cp50 <= 100 else 'missed'}) for "
        f"`count` ({p50:.1f} ms; CPU {cp50:.1f} ms), "
        f"{'met' if jp50 <= 100 else 'missed'} ({'met' if jcp50 <= 100 else 'missed'}) for "
        f"`json` ({jp50:.1f} ms; CPU {jcp50:.1f} ms), "
        f"{'met' if sp50 <= 100 else 'missed'} for `search` ({sp50:.1f} ms wall). "
        f"The queries ran at a load of {report['query_load'].split(' mean')[0]} on 2 cores "
        f"(wall p50 / CPU p50 = {jp50 / jcp50:.1f} for `json`: other processes took part of "
        "the core); with one idle core the wall time of a single-threaded query is about its "
        "CPU time.",
        "",
        f"Before this version (schema 1: Python sets of rowids, and the JSON built per query "
        f"with `json_object` and returned as a Python str; same data and queries, measured "
        f"earlier on {DATE} at a load of 4.8): count p50 {PREVIOUS['count_ms']} ms wall "
        f"({PREVIOUS['count_cpu_ms']} CPU), json p50 {PREVIOUS['json_ms']} ms wall "
        f"({PREVIOUS['json_cpu_ms']} CPU), json p95 {PREVIOUS['json_p95_ms']:,} ms wall.",
        "",
        "Set algebra on two large real operands (Humans[mh]: "
        f"{report['algebra'][0]['operands'][0]:,} rowids, random*[tiab]: "
        f"{report['algebra'][0]['operands'][1]:,}; each side read from the corpus as in a "
        "query): boolean masks (what `Corpus` uses), Python sets (what it used before), SQLite "
        'compound SELECT (`engine="sql"`):',
        "",
        "| operation | result | masks wall / CPU (ms) | Python sets wall / CPU (ms) | "
        "SQLite compound wall / CPU (ms) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {a['op']} | {a['result']:,} | {a['mask_ms']:.0f} / {a['mask_cpu_ms']:.0f} | "
            f"{a['py_ms']:.0f} / {a['py_cpu_ms']:.0f} | "
            f"{a['sql_ms']:.0f} / {a['sql_cpu_ms']:.0f} |"
            for a in report["algebra"]
        ),
        "",
        f"Per process (not in the query times): importing leads and loading MeSH "
        f"{report['startup_ms']:.0f} ms, so one `leads corpus search` command costs about that "
        "much more than its query.",
        "",
    ]
    if report.get("cli"):
        lines += [
            "End to end, as separate commands (`... search CORPUS.db QUERY --json`, stdout to "
            "a pipe: interpreter start, imports, MeSH, query, document) for the five queries "
            "around the json median; median of "
            f"{report.get('cli_repeat', '?')} runs, load {report.get('cli_load', '?')}. "
            "`leads corpus` = through the `leads` command, which imports every command group "
            "(statistics and plotting libraries included); `group` = the corpus group alone "
            "(`python -c 'from leads.search.corpus_cli import corpus_group; corpus_group()'`):",
            "",
            "| query | matches | output (MB) | `leads corpus` wall / CPU (ms) | "
            "`group` wall / CPU (ms) |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {c['name']} | {c['count']:,} | {c['bytes'] / 1e6:.1f} | "
                f"{c['leads_wall_ms']:,.0f} / {c['leads_cpu_ms']:,.0f} | "
                f"{c['group_wall_ms']:,.0f} / {c['group_cpu_ms']:,.0f} |"
                for c in report["cli"]
            ),
            "",
        ]
    small = [r for r in rows if r["count"] < 10_000]
    large = [r for r in rows if r["count"] >= 10_000]
    per_hit = [1000 * (r["json_cpu_ms"] - r["count_cpu_ms"]) / r["count"] for r in large]
    by_name = {r["name"]: r for r in rows}
    records = b["records"]

    def share(name: str) -> str:
        return f"{100 * by_name[name]['count'] / records:.0f} %" if name in by_name else "?"

    lines += [
        "### Reading the numbers",
        "",
        "- Result sets are large because the generator resamples sentences from about 12,000 "
        "Cohen drug-class and evidence-inference abstracts, mostly trials: `hypertension[tiab]` "
        f"matches {share('tiab word')} of the records, `random*[tiab]` {share('truncation')}, "
        f"(`Humans[mh]` {share('mh Humans')}, which is realistic); in PubMed the two text "
        "terms match a few percent of the records at most. "
        "Time grows with the number of matches (the FTS5 doclists, and for the `--json` "
        f"document {percentile(per_hit, 0.5):.2f} us of CPU per hit, median over the "
        f"{len(large)} queries with 10,000 matches or more), so these latencies are "
        "pessimistic for PubMed-like term "
        f"frequencies. The {len(small)} queries with fewer than 10,000 matches: count p50 "
        f"{percentile([r['count_ms'] for r in small], 0.5):.1f} ms, p95 "
        f"{percentile([r['count_ms'] for r in small], 0.95):.1f} ms; json p50 "
        f"{percentile([r['json_ms'] for r in small], 0.5):.1f} ms, p95 "
        f"{percentile([r['json_ms'] for r in small], 0.95):.1f} ms.",
        "- The slowest queries (p95) are Cochrane searches whose RCT filter ORs words such as "
        "randomized, placebo, trial and groups: here they match 75-90 % of the corpus, and "
        "FTS5 spends 300-400 ms merging those doclists even when the final result has 21 or 80 "
        "documents (sigir 110/1, 41/1). Restricting FTS5 to the candidate rowids of the other "
        "operands (`rowid IN (...)`) was tried and is far slower (FTS5 re-evaluates the "
        "prefix expression for each rowid: about 0.1 s per candidate). What would help: caching leaf results across "
        "the queries of a session (the same filter is ANDed into every search); a command-line "
        "call cannot benefit, as it runs one query per process.",
        "- Where the time went before, and what changed (schema 2): building Python sets of "
        "rowids cost 30-100 ns per rowid, more than the set operations themselves; the masks "
        "take the postings' int32 arrays and FTS5's rowids (one comma-separated text parsed by "
        "NumPy) without a Python object per document, and AND/OR/NOT are single passes over "
        "one byte per document. For `--json`, `json_object` per hit at query time and "
        "decoding the result into a Python str (often UCS-2, as titles carry characters such "
        "as en dashes) and encoding it again for stdout cost more than the rowid seeks: the "
        "objects are now made once while building (`doc_json`), SQLite concatenates them, and "
        "the bytes go to stdout unchanged. The remaining cost is about one B-tree seek per hit "
        "(0.4-0.5 us of CPU on this loaded machine) plus copying the text. A block layout (256 "
        "objects per row, sliced in Python) was tried: faster above roughly 130,000 matches, "
        "slower below (it copies whole blocks: about 10 us per match when matches are sparse), "
        "and worse at the median (91 against 67 ms CPU in a trial), so it was not kept. "
        "`Corpus.search` (a Python `Hit` per match) stays slower; the CLI does not use it for "
        "`--json`.",
        "- Build: in the schema-1 measurements (load 3.2 and 4.8) "
        '`fts="rebuild"` used about 10 % less CPU than `fts="stream"` (whose '
        "per-row FTS5 inserts from Python cost more than one `rebuild` pass in C); `stream` "
        "can only win on wall time when a second core is idle, "
        "so `rebuild` is the default. `doc_json` adds about 1 s of CPU per million records "
        "(`json_object` and the inserts, timed alone on 100,000 records: 0.10 s CPU) and "
        "0.18 GB to the file (4.29 -> 4.47 GB). An A/B build of the first 200,000 generated "
        "records, the schema-1 `corpus.py` (git HEAD e5f6f44, imported as a separate module) "
        "against this one, alternating old/new/new/old under `nice -n 10` at a load of 6-7.5: "
        "33.9 and 31.5 s CPU (old) against 32.9 and 34.1 s (new), a difference within the "
        "run-to-run spread. The schema-2 build was first run at a load of about 10 under "
        "`nice -n 10` (1,356 records/s wall, 4,240 per CPU second) and then again on a quiet "
        "machine (the table above); the schema-1 build of the same data made 5,077 records/s "
        "(197 s wall, 176 s CPU) at a load of 3.2. "
        "Wall times above 5,000 records/s need roughly one "
        "uncontended core; further gains would need fewer FTS5 columns or a cheaper tokenizer "
        "(unicode61 with diacritic folding is kept for PubMed-like matching). Prefix indexes "
        "(`prefix='2 3'`) were not used: in a 100,000-record trial they made indexing 2.2 "
        "times slower.",
        "",
    ]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = re.search(r"^## ", text[start + len(SECTION) :], flags=re.MULTILINE)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + section + ("\n" + text[end:] if nxt else "")
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/leads-corpus-bench"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-build", action="store_true", help="reuse the corpus in --workdir")
    parser.add_argument("--generate-only", action="store_true", help="only write the records")
    parser.add_argument("--no-sql", action="store_true", help="skip the compound-SQL runs")
    parser.add_argument(
        "--cli-repeat",
        type=int,
        default=3,
        help="runs of `leads corpus search --json` per command-line query (0: none)",
    )
    parser.add_argument(
        "--fts",
        choices=["stream", "rebuild"],
        default="rebuild",
        help="build_corpus(fts=...); with --docs-only, the build shown first",
    )
    parser.add_argument("--build-only", action="store_true", help="no queries")
    parser.add_argument(
        "--docs-only",
        action="store_true",
        help="only print (and write) the section from report.json",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write '{SECTION}' into docs")
    parser.add_argument("--json", type=Path, help="also write the raw report here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / "corpus.db"
    report_path = args.workdir / "report.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.exists() else {}
    report["machine"] = (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}, virtual machine)"
    )
    report["python"] = platform.python_version()
    report["sqlite"] = sqlite3.sqlite_version
    report["repeat"] = args.repeat
    if args.docs_only:
        report["build"] = report["builds"][args.fts]
        section = markdown(report)
        print(section)
        if args.write_docs:
            write_docs(section)
        return
    previous_command = report.get("command")
    argv = sys.argv[1:] + ([] if "--fts" in sys.argv else ["--fts", args.fts])
    report["command"] = "python benchmarks/corpus_benchmark.py " + " ".join(argv)
    report["workdir"] = str(args.workdir)
    mesh = Mesh.load()
    if not args.skip_build:
        real = real_sources(args.shared, args.workdir)
        real_ids = {doc.id for path in real for doc in _iter_source(path)}
        generated = args.workdir / "generated.jsonl.gz"
        meta = args.workdir / "generated.json"
        wanted = args.records - len(real_ids)
        info = json.loads(meta.read_text()) if meta.exists() else {}
        if info.get("generated") != wanted or info.get("seed") != args.seed:
            print(f"generating {wanted:,} records -> {generated}", flush=True)
            info = generate(args.shared, generated, wanted, args.seed)
            info["seed"] = args.seed
            meta.write_text(json.dumps(info))
        report["generation"] = info
        if args.generate_only:
            return
        steps: list[tuple[str, float]] = []
        last: list[Any] = [time.perf_counter(), ""]

        def progress(p: BuildProgress) -> None:
            now = time.perf_counter()
            if p.phase == "indexing" or p.phase == "done":
                if last[1]:
                    steps.append((str(last[1]), now - last[0]))
                last[0], last[1] = now, p.step or ""
                print(f"  [{p.phase}] {p.step or ''} ({p.records:,} records)", flush=True)
            elif p.records % 100_000 < 20_000:
                print(f"  read {p.records:,} ({p.source})", flush=True)

        print("building", flush=True)
        with LoadSampler() as load:
            stats = build_corpus([*real, generated], db, progress=progress, mesh=mesh, fts=args.fts)
        build = {
            "fts": args.fts,
            "schema_version": SCHEMA_VERSION,
            "command": report["command"],
            "records": stats.records,
            "duplicates": stats.duplicates,
            "real": stats.records - info["generated"],
            "generated": info["generated"],
            "seconds": stats.seconds,
            "cpu_seconds": stats.cpu_seconds,
            "read_seconds": stats.read_seconds,
            "index_seconds": stats.index_seconds,
            "rate": stats.rate,
            "size_bytes": stats.size_bytes,
            "steps": steps,
            "load": load.summary(),
        }
        report.setdefault("builds", {})[args.fts] = build
        if not args.build_only:
            report["build"] = build
        print(
            f"built {stats.records:,} records in {stats.seconds:.0f} s ({stats.rate:,.0f}/s), "
            f"CPU {stats.cpu_seconds:.0f} s"
        )
        if args.build_only:
            if previous_command:
                report["command"] = previous_command
            report_path.write_text(json.dumps(report, indent=1))
            return
    queries = {f"cohen {k}": v for k, v in COHEN_QUERIES.items()}
    queries.update(load_shared_queries(REPO / "tests/fixtures/search/pubmed_queries.txt"))
    queries.update(SIMPLE_QUERIES)
    started = time.perf_counter()
    code = "import leads.search.corpus as c; c.Mesh.load().descriptor('x')"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    report["startup_ms"] = (time.perf_counter() - t) * 1000
    if args.skip_build and args.fts in report.get("builds", {}):
        report["build"] = report["builds"][args.fts]
    with Corpus(db, mesh=mesh) as corpus, LoadSampler() as load:
        corpus.count("Humans[mh]")  # descriptor tables loaded once per process
        print(f"queries ({len(queries)}) on {len(corpus):,} records", flush=True)
        report["queries"] = run_queries(corpus, queries, args.repeat, not args.no_sql)
        report["query_fts"] = report.get("build", {}).get("fts", args.fts)
        report["algebra"] = set_algebra(corpus)
    report["query_load"] = load.summary()
    if args.cli_repeat:
        # The queries around the in-process json median, as separate commands.
        ranked = sorted(report["queries"], key=lambda r: r["json_ms"])
        middle = ranked[max(0, len(ranked) // 2 - 2) : len(ranked) // 2 + 3]
        with LoadSampler() as load:
            report["cli"] = run_cli(db, {r["name"]: r["query"] for r in middle}, args.cli_repeat)
        report["cli_load"] = load.summary()
        report["cli_repeat"] = args.cli_repeat
    print(f"queries done in {time.perf_counter() - started:.0f} s")
    report_path.write_text(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    section = markdown(report)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
