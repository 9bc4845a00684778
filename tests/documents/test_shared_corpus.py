"""The 300 evidence-inference PMC articles: every one parses, and every annotated evidence quote
is located in the parsed text (needs ../shared/data)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from leads.documents import read_document


@pytest.mark.shared
@pytest.mark.slow
def test_all_articles_parse_and_evidence_is_located(shared_data: Path) -> None:
    folder = shared_data / "fulltext" / "evidence_inference"
    quotes: dict[str, list[str]] = defaultdict(list)
    with open(folder / "v2_annotations.csv", newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["Annotations"].strip():
                quotes[f"PMC{row['PMCID']}"].append(row["Annotations"])
    files = sorted((folder / "nxml").glob("*.nxml.gz"))
    assert len(files) == 300
    methods: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for path in files:
        document = read_document(path)
        assert document.pmcid == path.name.split(".")[0]
        for section in document.sections:
            types[section.type] += 1
        for quote in quotes.get(document.pmcid, []):
            hits = document.locate(quote)
            methods[hits[0].method if hits else "missing"] += 1
    assert methods["missing"] == 0
    assert methods["exact"] + methods["normalized"] >= 0.95 * sum(methods.values())
    for kind in ("abstract", "methods", "results", "discussion", "table", "references"):
        assert types[kind] > 100, types


@pytest.mark.shared
def test_llm_meta_analysis_texts_in_three_forms(shared_data: Path) -> None:
    """The same 10 articles as Markdown and as JATS fragments: same sections, the arm-level numbers
    of the annotated outcomes are found in both."""
    folder = shared_data / "results" / "llm_meta_analysis_dev"
    with open(folder / "annotated_rct_dataset_dev.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    found = total = 0
    for md in sorted((folder / "markdown").glob("*.md")):
        markdown = read_document(md)
        xml = read_document(folder / "xml_no_attributes" / f"{md.stem}.xml")
        assert markdown.sentences_in("results") and xml.sentences_in("results")
        for row in rows:
            if f"PMC{row['pmcid']}" != md.stem:
                continue
            for key in ("intervention_events", "intervention_group_size", "intervention_mean"):
                value = row[key].strip()
                if value and value not in ("x", "-"):
                    total += 1
                    found += bool(xml.locate(value)) and bool(markdown.locate(value))
    assert total > 30 and found / total > 0.8
