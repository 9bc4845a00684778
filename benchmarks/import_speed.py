"""Import speed: records/s for a 15,000-record file in each format, parse alone and into a project.

    python benchmarks/import_speed.py [--shared ../shared/data] [--n 15000] [--json]

The records are real: the 12,687 documents with a PMID of ``search/haystack_dev`` (Cohen 2006 + evidence
inference: titles, abstracts, years, MeSH) with authors from the Cohen CSVs, cycled to reach
``--n`` (PMIDs made unique). They are written once with leads' own writer per format, then timed:
``read``   = parse the file into Records (``leads.read_records``),
``import`` = ``Project.import_file`` into a fresh SQLite project (parse + validate + one transaction).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from leads.formats import read_records, write_records
from leads.project import Project
from leads.records import MeshHeading, Record

FORMATS = ["ris", "pubmed-xml", "medline", "csv", "jsonl", "bibtex", "endnote-xml"]
SUFFIX = {"ris": ".ris", "pubmed-xml": ".xml", "medline": ".nbib", "csv": ".csv", "jsonl": ".jsonl",
          "bibtex": ".bib", "endnote-xml": ".xml"}


def real_records(shared: Path, n: int) -> list[Record]:
    authors: dict[str, list[str]] = {}
    for path in sorted((shared / "screening" / "cohen2006").glob("*.csv")):
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["pubmedID"]:
                    authors[row["pubmedID"]] = [a.strip() for a in row["authors"].split(";") if a.strip()]
    base: list[Record] = []
    with gzip.open(shared / "search" / "haystack_dev" / "haystack_dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            if not doc["pmid"]:  # PubMed XML requires a PMID; 112 PMC-only documents are left out
                continue
            base.append(Record(
                pmid=doc["pmid"], pmcid=doc["pmcid"], title=doc["title"], abstract=doc["abstract"] or None,
                year=doc["year"], authors=authors.get(doc["pmid"] or "", []),
                mesh=[MeshHeading(descriptor=m) for m in doc["mesh"]],
            ))
    out = []
    for i in range(n):
        record = base[i % len(base)].model_copy(deep=True)
        if i >= len(base):
            record.pmid = str(40_000_000 + i)
        out.append(record)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--n", type=int, default=15_000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    records = real_records(args.shared, args.n)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            path = Path(tmp) / f"bench{SUFFIX[fmt]}"
            write_records(records, path, fmt)
            started, cpu = time.perf_counter(), time.process_time()
            count = sum(1 for _ in read_records(path))
            read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu
            with Project.init(Path(tmp) / f"project-{fmt}") as project:
                started, cpu = time.perf_counter(), time.process_time()
                imported = project.import_file(path).count
                import_s, import_cpu = time.perf_counter() - started, time.process_time() - cpu
            assert count == imported == len(records), (fmt, count, imported)
            results.append({"format": fmt, "records": count, "mb": round(path.stat().st_size / 1e6, 1),
                            "read_s": round(read_s, 2), "read_per_s": round(count / read_s),
                            "import_s": round(import_s, 2), "import_per_s": round(count / import_s),
                            "read_cpu_s": round(read_cpu, 2), "import_cpu_s": round(import_cpu, 2)})
    if args.json:
        print(json.dumps({"machine": platform.machine(), "results": results}, indent=2))
        return
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| format | records | file MB | parse s (CPU s) | parse rec/s | import s (CPU s) | import rec/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['format']} | {r['records']} | {r['mb']} | {r['read_s']} ({r['read_cpu_s']}) | "
              f"{r['read_per_s']} | {r['import_s']} ({r['import_cpu_s']}) | {r['import_per_s']} |")


if __name__ == "__main__":
    main()
