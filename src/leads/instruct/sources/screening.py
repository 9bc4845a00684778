"""Eligibility examples from labelled screening datasets whose eligibility criteria are published.

Gold: the reviewers' title/abstract decision on a record. Only the overall decision is known,
never a verdict per criterion, so an example asks about **one** criterion, the review's
criteria as a whole ("The study meets all of this review's eligibility criteria: ..."), and
answers YES (included at title/abstract screening) or NO (excluded), with an empty rationale
and no evidence: nobody wrote a reason, and inventing one would teach the model to make reasons
up. Per-criterion examples come only from assessments reviewers accepted in a project
(:mod:`leads.instruct.sources.project`).

Datasets: Cohen 2006 Estrogens (criteria of its SYNERGY key Nelson_2002) and CDSS_RO (criteria
from Dennstaedt et al. 2024). The other Cohen topics and screening sets have no published
criteria and are left out. Records without an abstract are left out.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

from leads.instruct.sources import Candidate, SharedSource, SourceSkipped, text_key
from leads.tasks.eligibility import Criterion, EligibilityInput

__all__ = ["SOURCES", "overall_answer", "overall_criterion"]

#: The one criterion of a label-only example.
OVERALL_PREFIX = "The study meets all of this review's eligibility criteria: "
MAX_CRITERION = 2000


def overall_criterion(criteria_text: str) -> Criterion:
    """The review's criteria as a single criterion (list markers dropped, lines joined)."""
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in criteria_text.splitlines()]
    body = "; ".join(line.rstrip(";") for line in lines if line)
    text = OVERALL_PREFIX + body
    if len(text) > MAX_CRITERION:
        raise ValueError(f"the criteria are {len(text)} characters; one criterion holds at most {MAX_CRITERION}")
    return Criterion(text=text, kind="inclusion")


def overall_answer(included: bool) -> dict[str, object]:
    """A label-only answer: the verdict, no rationale, no evidence."""
    return {"evaluations": [{"eligibility": "YES" if included else "NO", "rationale": "", "evidence": []}]}


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _candidates(review: str, rows: list[dict[str, str]], criterion: Criterion, *,
                title_key: str, abstract_key: str, label_key: str, pmid_key: str | None) -> Iterator[Candidate]:
    for number, row in enumerate(rows, 1):
        abstract = (row.get(abstract_key) or "").strip()
        label = (row.get(label_key) or "").strip()
        if not abstract or label not in {"0", "1"}:
            continue
        title = (row.get(title_key) or "").strip() or None
        pmid = (row.get(pmid_key) or "").strip() if pmid_key else ""
        groups = [f"review:{review}", text_key(abstract)]
        if pmid:
            groups.append(f"pmid:{pmid}")
        inp = EligibilityInput(title=title[:2000] if title else None, text=abstract, criteria=[criterion])
        yield Candidate(task="eligibility", input=inp, answer=overall_answer(label == "1"),
                        item=f"{review}#{pmid or number}", groups=groups,
                        notes=["label-only: the reviewers' overall title/abstract decision"])


def _estrogens(shared: Path, budget: int | None) -> Iterator[Candidate]:
    data = shared / "screening" / "cohen2006" / "Estrogens.csv"
    criteria = shared / "screening" / "criteria" / "Estrogens.txt"
    if not data.is_file() or not criteria.is_file():
        raise SourceSkipped(f"{data} or {criteria} is missing")
    criterion = overall_criterion(criteria.read_text(encoding="utf-8"))
    yield from _candidates("cohen2006/Estrogens", _rows(data), criterion, title_key="title",
                           abstract_key="abstract", label_key="label_abstract_screening", pmid_key="pubmedID")


def _cdss(shared: Path, budget: int | None) -> Iterator[Candidate]:
    data = shared / "screening" / "other" / "CDSS_RO.csv"
    criteria = shared / "screening" / "criteria" / "CDSS_RO.txt"
    if not data.is_file() or not criteria.is_file():
        raise SourceSkipped(f"{data} or {criteria} is missing")
    criterion = overall_criterion(criteria.read_text(encoding="utf-8"))
    yield from _candidates("CDSS_RO", _rows(data, delimiter=";"), criterion, title_key="Title",
                           abstract_key="Abstract", label_key="label_included", pmid_key=None)


SOURCES = (
    SharedSource(
        name="screening/cohen2006-estrogens",
        licence="MIT (asreview/systematic-review-datasets); dataset: custom open license; criteria CC0 (SYNERGY)",
        tasks=("eligibility",),
        read=_estrogens,
        description="Cohen 2006 Estrogens: title/abstract decisions against the published criteria (overall verdict only)",
    ),
    SharedSource(
        name="screening/cdss-ro",
        licence="MIT (med-data-tools/title-abstract-screening-ai)",
        tasks=("eligibility",),
        read=_cdss,
        description="CDSS in radiation oncology: title/abstract decisions against the published criteria (overall verdict only)",
    ),
)
