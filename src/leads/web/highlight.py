"""Evidence sentences highlighted in a record's title and abstract, as safe HTML.

The eligibility task grounds every evidence quote in the text it assessed, ``title + "\\n\\n" +
abstract`` (or the abstract alone when there is no title), as character offsets. The screening
page shows the title and the abstract separately, so each span is split at that boundary and
shifted. Everything is escaped; the only markup produced is ``<mark>`` elements whose attributes
are built from criterion labels (``I1``, ``E2``) that are escaped too. A span whose offsets do not
reproduce its quote is dropped: evidence that cannot be located is never shown as evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from markupsafe import Markup, escape

__all__ = ["Span", "assessed_text", "highlight", "split_spans"]

MAX_TITLE = 2000  # leads.screen.workflow truncates titles to this many characters before assessing


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of a text support criterion ``label``."""

    start: int
    end: int
    label: str


def assessed_text(title: str | None, abstract: str | None) -> tuple[str, int]:
    """The text the eligibility task assessed, and the offset at which the abstract starts in it."""
    short = title[:MAX_TITLE] if title else None
    body = abstract or ""
    if short:
        return f"{short}\n\n{body}", len(short) + 2
    return body, 0


def split_spans(
    title: str | None,
    abstract: str | None,
    evidence: Iterable[tuple[str, int, int, str]],
) -> tuple[list[Span], list[Span], int]:
    """Map ``(label, start, end, quote)`` spans on the assessed text onto the title and the
    abstract. Returns (title spans, abstract spans, number of spans dropped because the offsets
    do not reproduce the quote)."""
    text, abstract_start = assessed_text(title, abstract)
    title_len = len(title[:MAX_TITLE]) if title else 0
    in_title: list[Span] = []
    in_abstract: list[Span] = []
    dropped = 0
    for label, start, end, quote in evidence:
        if not (0 <= start < end <= len(text)) or text[start:end] != quote:
            dropped += 1
            continue
        if title and start < title_len:
            in_title.append(Span(start, min(end, title_len), label))
        if abstract and end > abstract_start:
            a_start = max(start, abstract_start) - abstract_start
            a_end = end - abstract_start
            if a_end > a_start:
                in_abstract.append(Span(a_start, a_end, label))
    return in_title, in_abstract, dropped


def highlight(text: str | None, spans: Sequence[Span]) -> Markup:
    """``text`` escaped, with every stretch covered by spans wrapped in
    ``<mark class="ev" data-criteria="I1 E2">``; overlapping spans make one mark per stretch,
    listing every criterion that covers it."""
    if not text:
        return Markup("")
    bounds = {0, len(text)}
    for span in spans:
        start, end = max(0, span.start), min(len(text), span.end)
        if start < end:
            bounds.update((start, end))
    cuts = sorted(bounds)
    parts: list[str] = []
    for a, b in pairwise(cuts):
        piece = escape(text[a:b])
        labels = sorted({s.label for s in spans if s.start <= a and b <= s.end and s.start < s.end})
        if labels:
            names = " ".join(labels)
            parts.append(f'<mark class="ev" data-criteria="{escape(names)}" title="evidence for '
                         f'{escape(", ".join(labels))}">{piece}</mark>')
        else:
            parts.append(str(piece))
    return Markup("".join(parts))
