"""Build the remdesivir example review's files from the shared research data.

Run from the repository root (needs ``../shared/data``; the built files are committed, so users
never run this)::

    python examples/remdesivir/build.py

It writes

- ``records.nbib``: the records to screen, as MEDLINE text: the 4 trials of Cochrane review
  CD014962 (abstract text taken verbatim from their full texts; titles as published) and real
  randomised trials on other topics from the Evidence Inference full-text subset (title and
  abstract as given there, unchanged);
- ``fulltexts/PMC*.xml``: the 4 trials' texts (abstract and results sections, JATS without
  attributes) from the llm-meta-analysis case study, unchanged.
"""

from __future__ import annotations

import csv
import gzip
import re
import shutil
import sys
from pathlib import Path

from lxml import etree

from leads.formats import write_records
from leads.records import AbstractSection, Record

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1].parent / "shared" / "data"
CASE = SHARED / "results" / "llm_meta_analysis_dev" / "case_study"
EVIDENCE = SHARED / "fulltext" / "evidence_inference"
OTHER_TRIALS = 36

# The 4 included trials: titles, years and authors as published (the texts hold neither);
# the NCT ids are the ones each text states.
TRIALS = {
    "7262788": ("Remdesivir for the Treatment of Covid-19 - Final Report", 2020, "Beigel JH",
                "N Engl J Med"),
    "7442954": ("Effect of Remdesivir vs Standard Care on Clinical Status at 11 Days in Patients With "
                "Moderate COVID-19: A Randomized Clinical Trial", 2020, "Spinner CD", "JAMA"),
    "7190303": ("Remdesivir in adults with severe COVID-19: a randomised, double-blind, placebo-controlled, "
                "multicentre trial", 2020, "Wang Y", "Lancet"),
    "7727327": ("Repurposed Antiviral Drugs for Covid-19 - Interim WHO Solidarity Trial Results", 2021,
                "WHO Solidarity Trial Consortium", "N Engl J Med"),
}


def _text(element: etree._Element) -> str:
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def _abstract_sections(path: Path) -> list[AbstractSection]:
    root = etree.fromstring(b"<root>" + path.read_bytes() + b"</root>")
    abstract = root.find("abstract")
    if abstract is None:
        raise SystemExit(f"{path}: no <abstract>")
    sections = []
    for sec in abstract.iter("sec"):
        title = sec.find("title")
        body = " ".join(_text(p) for p in sec.findall("p"))
        if body:
            sections.append(AbstractSection(label=_text(title) if title is not None else "", text=body))
    return sections


def _trial_records() -> list[Record]:
    records = []
    for pmcid, (title, year, author, journal) in TRIALS.items():
        path = CASE / "xml_no_attributes" / f"PMC{pmcid}.xml"
        sections = _abstract_sections(path)
        abstract = " ".join(f"{s.label.upper()}: {s.text}" if s.label else s.text for s in sections)
        ncts = sorted(set(re.findall(r"NCT\d{8}", path.read_text(encoding="utf-8"))))
        records.append(Record(pmcid=f"PMC{pmcid}", title=title, abstract=abstract, abstract_sections=sections,
                              authors=[author], journal=journal, year=year, nct_ids=ncts,
                              publication_types=["Journal Article"]))
    return records


def _evidence_inference_records() -> list[Record]:
    records = []
    with open(EVIDENCE / "subset_index.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        if len(records) == OTHER_TRIALS:
            break
        with gzip.open(EVIDENCE / "txt" / f"PMC{row['pmcid']}.txt.gz", "rt", encoding="utf-8") as stream:
            text = stream.read()
        title_match = re.search(r"TITLE:\s*\n(.+?)\n", text)
        sections = [AbstractSection(label=label.strip().title(), text=body.strip())
                    for label, body in re.findall(r"ABSTRACT\.([A-Z &/]+):\n(.*?)(?=\n\n[A-Z. &/]+:\n|\Z)", text, re.S)
                    if body.strip()]
        if title_match is None or not sections:
            continue
        abstract = " ".join(f"{s.label.upper()}: {s.text}" for s in sections)
        records.append(Record(pmid=row["pmid"] or None, pmcid=f"PMC{row['pmcid']}",
                              title=title_match.group(1).strip(), abstract=abstract,
                              abstract_sections=sections))
    return records


def main() -> int:
    if not CASE.is_dir() or not EVIDENCE.is_dir():
        print(f"shared data not found under {SHARED}", file=sys.stderr)
        return 1
    records = _trial_records() + _evidence_inference_records()
    write_records(records, HERE / "records.nbib", "medline")
    texts = HERE / "fulltexts"
    texts.mkdir(exist_ok=True)
    for pmcid in TRIALS:
        shutil.copyfile(CASE / "xml_no_attributes" / f"PMC{pmcid}.xml", texts / f"PMC{pmcid}.xml")
    print(f"wrote {len(records)} records and {len(TRIALS)} full texts to {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
