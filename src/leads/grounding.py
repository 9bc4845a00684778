"""Locating quotes in a source text: the check behind every piece of evidence leads shows.

A quote from a model is rarely byte-identical to the paper (whitespace, line breaks, curly
quotes, case, a dropped word). :func:`locate` finds it exactly when it can, then after
normalising whitespace/quotes/case, then by fuzzy alignment (``rapidfuzz``), and returns the
character span in the *original* text, or ``None`` when the quote is not there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz

__all__ = ["Span", "locate", "locate_all", "locate_every", "normalize_with_map"]

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u2212": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " "})
_SPACE = re.compile(r"\s+")
MIN_FUZZY_LENGTH = 12


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` of the source; ``score`` is 1.0 for an exact match, lower when fuzzy."""

    start: int
    end: int
    text: str
    score: float
    method: str  # exact | normalized | fuzzy


def _normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Lower-case, unify quotes/dashes, collapse whitespace; map each output char to its source index."""
    out: list[str] = []
    index: list[int] = []
    previous_space = True
    for i, ch in enumerate(text):
        ch = unicodedata.normalize("NFKC", ch).translate(_QUOTES).lower()
        for c in ch:
            if c.isspace():
                if previous_space:
                    continue
                out.append(" ")
                index.append(i)
                previous_space = True
            else:
                out.append(c)
                index.append(i)
                previous_space = False
    if out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """``text`` normalised as :func:`locate` compares it, and each character's source index.

    Callers that locate many quotes in one long text compute this once and pass it to
    :func:`locate` / :func:`locate_every` as ``normalized``.
    """
    return _normalize_with_map(text)


def _clean_quote(quote: str) -> str:
    return quote.strip().strip('"').strip()


def locate(quote: str, text: str, *, min_score: float = 0.9, start_hint: int = 0,
           normalized: tuple[str, list[int]] | None = None) -> Span | None:
    """Find ``quote`` in ``text``; ``None`` if it is not there (fuzzy score below ``min_score``).

    ``normalized`` is ``normalize_with_map(text)`` when the caller has it already.
    """
    quote = _clean_quote(quote)
    if not quote or not text:
        return None
    position = text.find(quote, start_hint)
    if position < 0:
        position = text.find(quote)
    if position >= 0:
        return Span(position, position + len(quote), quote, 1.0, "exact")
    norm_text, mapping = normalized if normalized is not None else _normalize_with_map(text)
    norm_quote, _ = _normalize_with_map(quote)
    if not norm_quote:
        return None
    position = norm_text.find(norm_quote)
    if position >= 0:
        start = mapping[position]
        end = mapping[position + len(norm_quote) - 1] + 1
        return Span(start, end, text[start:end], 1.0, "normalized")
    if len(norm_quote) < MIN_FUZZY_LENGTH:
        return None
    alignment = fuzz.partial_ratio_alignment(norm_quote, norm_text, score_cutoff=min_score * 100)
    if alignment is None or alignment.dest_end <= alignment.dest_start:
        return None
    # The aligned window must cover most of the quote, not a short lucky substring.
    if (alignment.dest_end - alignment.dest_start) < 0.8 * len(norm_quote):
        return None
    start = mapping[alignment.dest_start]
    end = mapping[alignment.dest_end - 1] + 1
    # The alignment may clip a word at either edge; a quote is shown in whole words.
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return Span(start, end, text[start:end], alignment.score / 100, "fuzzy")


def locate_every(quote: str, text: str, *, min_score: float = 0.9, limit: int | None = None,
                 normalized: tuple[str, list[int]] | None = None) -> list[Span]:
    """Every occurrence of ``quote`` in ``text``, in text order; empty when it is not there.

    Exact occurrences when there are any; otherwise every occurrence after normalisation
    (whitespace, quotes, dashes, case); otherwise the single best fuzzy match (see
    :func:`locate`). ``limit`` caps the number of spans returned.
    """
    cleaned = _clean_quote(quote)
    if not cleaned or not text:
        return []
    spans: list[Span] = []
    position = text.find(cleaned)
    while position >= 0 and (limit is None or len(spans) < limit):
        spans.append(Span(position, position + len(cleaned), cleaned, 1.0, "exact"))
        position = text.find(cleaned, position + 1)
    if spans:
        return spans
    norm_text, mapping = normalized if normalized is not None else _normalize_with_map(text)
    norm_quote, _ = _normalize_with_map(cleaned)
    if not norm_quote:
        return []
    position = norm_text.find(norm_quote)
    while position >= 0 and (limit is None or len(spans) < limit):
        start = mapping[position]
        end = mapping[position + len(norm_quote) - 1] + 1
        spans.append(Span(start, end, text[start:end], 1.0, "normalized"))
        position = norm_text.find(norm_quote, position + 1)
    if spans:
        return spans
    best = locate(cleaned, text, min_score=min_score, normalized=(norm_text, mapping))
    return [best] if best is not None else []


def locate_all(quotes: list[str], text: str, *, min_score: float = 0.9) -> tuple[list[Span], list[str]]:
    """Locate several quotes; returns (spans found, quotes that could not be located)."""
    found: list[Span] = []
    missing: list[str] = []
    for quote in quotes:
        span = locate(quote, text, min_score=min_score)
        if span is None:
            missing.append(quote)
        else:
            found.append(span)
    return found, missing
