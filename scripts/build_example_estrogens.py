"""Build the bundled example review in examples/estrogens/ from ../shared/data (reproducible).

    python scripts/build_example_estrogens.py [--shared ../shared/data]

- asreview_estrogens.csv: the Cohen 2006 Estrogens screening set as published (ASReview CSV,
  367 records with title/abstract and final inclusion labels), copied unchanged.
- pubmed_estrogens.nbib: the same 367 PubMed records as MEDLINE text, built from the Cohen raw
  PubMed metadata (authors "Last, Initials", MeSH headings) with the year from the CSV: a second
  export of the same studies, as a review team gets from searching two sources.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import shutil
from pathlib import Path

from leads.formats import write_records
from leads.records import MeshHeading, Record

OUT = Path(__file__).resolve().parents[1] / "examples" / "estrogens"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    cohen = args.shared / "screening" / "cohen2006"
    shutil.copyfile(cohen / "Estrogens.csv", OUT / "asreview_estrogens.csv")
    with open(cohen / "Estrogens.csv", encoding="utf-8") as handle:
        years = {row["pubmedID"]: row["year"] for row in csv.DictReader(handle)}
    records = []
    with gzip.open(cohen / "mesh_raw" / "Estrogens.csv.gz", "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            year = years.get(row["pubmedID"]) or ""
            records.append(Record(
                pmid=row["pubmedID"],
                title=row["title"],
                abstract=row["abstracts"] or None,
                authors=[a.strip() for a in row["authors"].split(";") if a.strip()],
                year=int(float(year)) if year else None,
                mesh=[MeshHeading(descriptor=m.strip()) for m in row["keywords"].split(";") if m.strip()],
            ))
    count = write_records(records, OUT / "pubmed_estrogens.nbib", "medline")
    print(f"wrote {count} MEDLINE records and copied the ASReview CSV into {OUT}")


if __name__ == "__main__":
    main()
