"""Full-text documents: parse speed, sentence boundaries, evidence location, section typing.

    python benchmarks/documents_benchmark.py [--shared ../shared/data] [--repeat 3] [--json]

Measured on the shared developer data:

- parse speed: the 300 evidence-inference PMC articles as JATS (``nxml/*.nxml.gz``) and as their
  flattened text (``txt/*.txt.gz``), the 10 llm-meta-analysis Markdown texts, and the PDF fixture
  (with and without pdfplumber); documents/s over the whole set (best of ``--repeat``), wall and
  CPU seconds;
- sentence boundaries: exact-span precision/recall/F1 against CONSORT-TM's gold sentences, on its
  12 test articles (the rules were tuned looking at errors on the 38 others) and its 38 train
  articles, each line of the text a block; next to a naive splitter (``[.?!]`` + space + capital);
- evidence location: the evidence-inference annotators' evidence quotes (v2 annotations) located
  in the JATS-parsed documents: exact / normalised / fuzzy / missing, and the section type hit;
- section typing: how many articles get an abstract, methods, results and discussion section.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from leads.documents import read_document
from leads.documents.pdf import pdfplumber_available
from leads.documents.sentences import sentence_spans

REPO = Path(__file__).resolve().parents[1]
_NAIVE = re.compile(r"[.?!](?=\s+[A-Z])")


def timed(paths: list[Path], repeat: int, **options: Any) -> dict[str, Any]:
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for path in paths:
            read_document(path, **options)
        result = (time.perf_counter() - wall, time.process_time() - cpu)
        best = result if best is None or result[0] < best[0] else best
    assert best is not None
    return {"documents": len(paths), "wall_s": round(best[0], 3), "cpu_s": round(best[1], 3),
            "docs_per_s": round(len(paths) / best[0], 1), "ms_per_doc": round(1000 * best[0] / len(paths), 1)}


def naive_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    current = start
    for match in _NAIVE.finditer(text, start, end):
        spans.append((current, match.end()))
        current = match.end()
    spans.append((current, end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def sentence_scores(shared: Path) -> dict[str, Any]:
    from lxml import etree

    folder = shared / "fulltext" / "consort_tm"
    with open(folder / "Methods_test.csv", newline="", encoding="utf-8") as stream:
        test_ids = {row["PMCID"] for row in csv.DictReader(stream)}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    articles: Counter[str] = Counter()
    for path in sorted((folder / "xml").glob("*.xml.gz")):
        pmcid = path.name.split(".")[0]
        split = "test" if pmcid in test_ids else "train"
        articles[split] += 1
        with gzip.open(path) as stream:
            root = etree.fromstring(stream.read())
        text = root.find("text").text
        gold = {tuple(map(int, s.get("charOffset").split("-"))) for s in root.iter("sentence")}
        for name, splitter in (("leads", sentence_spans), ("naive", naive_spans)):
            predicted: set[tuple[int, int]] = set()
            position = 0
            for line in text.split("\n"):
                predicted.update(splitter(text, position, position + len(line)))
                position += len(line) + 1
            c = counts[(split, name)]
            c["tp"] += len(gold & predicted)
            c["fp"] += len(predicted - gold)
            c["fn"] += len(gold - predicted)
            c["gold"] += len(gold)
    out: dict[str, Any] = {}
    for (split, name), c in sorted(counts.items()):
        p = c["tp"] / (c["tp"] + c["fp"])
        r = c["tp"] / (c["tp"] + c["fn"])
        out[f"{split}/{name}"] = {"articles": articles[split], "gold_sentences": c["gold"],
                                  "precision": round(p, 4), "recall": round(r, 4),
                                  "f1": round(2 * p * r / (p + r), 4)}
    return out


def evidence_location(shared: Path) -> dict[str, Any]:
    folder = shared / "fulltext" / "evidence_inference"
    quotes: dict[str, list[str]] = defaultdict(list)
    with open(folder / "v2_annotations.csv", newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["Annotations"].strip():
                quotes[f"PMC{row['PMCID']}"].append(row["Annotations"])
    methods: Counter[str] = Counter()
    sections: Counter[str] = Counter()
    types: Counter[str] = Counter()
    articles = 0
    start = time.perf_counter()
    for path in sorted((folder / "nxml").glob("*.nxml.gz")):
        document = read_document(path)
        present = {s.type for s in document.sections}
        types.update(present)
        articles += 1
        for quote in quotes.get(document.pmcid or "", []):
            hits = document.locate(quote)
            methods[hits[0].method if hits else "missing"] += 1
            if hits:
                sections[hits[0].section_type or "none"] += 1
    return {"quotes": sum(methods.values()), "by_method": dict(methods), "by_section": dict(sections),
            "seconds": round(time.perf_counter() - start, 1),
            "articles": articles, "articles_with_section": dict(sorted(types.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    shared: Path = args.shared
    ei = shared / "fulltext" / "evidence_inference"
    md = sorted((shared / "results" / "llm_meta_analysis_dev" / "markdown").glob("*.md"))
    pdf = REPO / "tests" / "fixtures" / "documents" / "PMC535936.pdf"
    speed = {
        "jats (300 nxml.gz)": timed(sorted((ei / "nxml").glob("*.nxml.gz")), args.repeat),
        "text (300 txt.gz)": timed(sorted((ei / "txt").glob("*.txt.gz")), args.repeat),
        "markdown (10 md)": timed(md, args.repeat),
        "pdf (6 pages, pypdf only)": timed([pdf], args.repeat, tables=False),
    }
    if pdfplumber_available():
        speed["pdf (6 pages, + pdfplumber tables)"] = timed([pdf], args.repeat, tables=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "parse_speed": speed,
        "sentences": sentence_scores(shared),
        "evidence": evidence_location(shared),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['date']}  {result['machine']}")
    for name, row in speed.items():
        print(f"{name:38} {row['docs_per_s']:>8} docs/s  {row['ms_per_doc']:>7} ms/doc  "
              f"(wall {row['wall_s']} s, CPU {row['cpu_s']} s)")
    for name, row in result["sentences"].items():
        print(f"sentences {name:14} P {row['precision']:.4f}  R {row['recall']:.4f}  F1 {row['f1']:.4f}  "
              f"({row['articles']} articles, {row['gold_sentences']} gold sentences)")
    ev = result["evidence"]
    print(f"evidence quotes {ev['quotes']}: {ev['by_method']}; sections {ev['by_section']}")
    print(f"articles with section type: {ev['articles_with_section']} of {ev['articles']}")


if __name__ == "__main__":
    main()
