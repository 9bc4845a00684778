"""Linking a full text to the bibliographic record it reports.

Identifiers decide first, in the order PMID, PMCID, DOI (each normalised the way
:mod:`leads.records` normalises them, so ``doi:10.1186/X`` and ``10.1186/x`` are one DOI). Only
when no identifier matches is the title compared: normalised titles (case, punctuation,
whitespace) must agree to ``min_title_score`` (rapidfuzz ratio) and, when both sides have a year,
the years may differ by at most one (online-first vs issue year). A title match is reported with
its score so a reviewer can check it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

from rapidfuzz import fuzz, process

from leads.documents.model import Document
from leads.records import Record

__all__ = ["RecordMatch", "match_record", "normalize_title"]

MatchMethod = Literal["pmid", "pmcid", "doi", "title", "manual"]
MIN_TITLE_SCORE = 0.93
MIN_TITLE_WORDS = 4


@dataclass(frozen=True)
class RecordMatch:
    """The record a document was linked to, how, and how sure (1.0 for identifiers)."""

    record_id: int
    method: MatchMethod
    score: float = 1.0
    value: str | None = None  # the identifier or title that matched


def normalize_title(title: str | None) -> str:
    """Lower case, accents and punctuation removed, whitespace collapsed."""
    if not title:
        return ""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"<[^>]+>", " ", text)  # stray markup (<i>, <sup>) in exported titles
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def _years_compatible(a: int | None, b: int | None) -> bool:
    return a is None or b is None or abs(a - b) <= 1


def match_record(
    document: Document,
    records: Iterable[tuple[int, Record]],
    *,
    min_title_score: float = MIN_TITLE_SCORE,
) -> RecordMatch | None:
    """The record among ``records`` (``(id, Record)`` pairs) that ``document`` reports, if any."""
    candidates = list(records)
    for kind in ("pmid", "pmcid", "doi"):
        value = getattr(document, kind)
        if not value:
            continue
        for record_id, record in candidates:
            if getattr(record, kind) == value:
                return RecordMatch(record_id, cast(MatchMethod, kind), 1.0, value)
    titles = [(record_id, normalize_title(record.title), record.year) for record_id, record in candidates]
    return best_title_match(document, titles, min_title_score=min_title_score)


def best_title_match(
    document: Document,
    titles: list[tuple[int, str, int | None]],
    *,
    min_title_score: float = MIN_TITLE_SCORE,
) -> RecordMatch | None:
    """The best title match among ``(record id, normalised title, year)`` triples, if good enough."""
    wanted = normalize_title(document.title)
    if len(wanted.split()) < MIN_TITLE_WORDS or not titles:
        return None
    choices = {i: t for i, (_, t, _) in enumerate(titles) if t}
    best: RecordMatch | None = None
    for _, score, index in process.extract(wanted, choices, scorer=fuzz.ratio,
                                            score_cutoff=min_title_score * 100, limit=10):
        record_id, _, year = titles[index]
        if not _years_compatible(document.year, year):
            continue
        if best is None or score / 100 > best.score or (score / 100 == best.score and record_id < best.record_id):
            best = RecordMatch(record_id, "title", round(score / 100, 4), document.title)
    return best
