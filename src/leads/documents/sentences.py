"""Sentence segmentation for biomedical articles, with character offsets.

A rule segmenter, not a model: it must be fast (every document is segmented when it is read),
deterministic, and right on the things that trip general-purpose splitters in trial reports:
``et al.``, ``e.g.``/``i.e.``, ``vs.``, ``Fig. 2``, ``No. 5``, decimals (``0.05``, ``P = .03``),
initials (``J. Smith``), and citation numbers printed after the full stop (``... disease.12 The``).

A candidate boundary is terminal punctuation (``.``, ``?``, ``!``), optionally followed by a
citation number and closing quotes/brackets, then whitespace, then something that can start a
sentence (an upper-case letter, a digit, or an opening bracket/quote before one). The token
before a full stop decides the rest:

- a *strong* abbreviation (``e.g.``, ``vs.``, ``Fig.``, ``approx.``) never ends a sentence;
- a *weak* one (``et al.``, ``etc.``, ``Inc.``, a single initial, ``U.S.``) ends it only when the
  next word is a common sentence opener (``The``, ``We``, ``In``, ``Patients``...), because
  "as reported by Smith et al. The trial..." does end there while "Smith et al. Nature" does not;
- a list number at the start of a block (``1. Patients aged``) is not a sentence.

:func:`segment` works on one block of text (a paragraph, caption, footnote); callers never pass
text that spans two sections, so no sentence can cross a section boundary. Every non-whitespace
character of the block lies in exactly one sentence, and sentences are in order.
"""

from __future__ import annotations

import re

__all__ = ["OPENERS", "segment", "sentence_spans"]

# Never a sentence end when followed by a capital: "e.g. Smith", "Fig. 2", "vs. Placebo".
_STRONG = frozenset(
    ["e.g", "eg", "i.e", "ie", "vs", "v", "cf", "viz", "fig", "figs", "eq", "eqs", "ref", "refs", "no", "nos", "approx", "ca", "dr", "mr", "mrs", "ms", "prof", "sr", "st", "vol", "vols", "pp", "suppl", "tab", "resp", "incl", "esp", "dept", "univ", "nr"]
)
# A sentence end only when the next word is a common sentence opener.
_WEAK = frozenset(
    ["al", "etc", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "est", "ed", "eds", "u.s", "u.k", "et"]
)
# Words that commonly open a sentence in an article; used to decide after weak abbreviations.
OPENERS = _OPENERS = frozenset(
    ["a", "an", "after", "all", "also", "although", "among", "an", "and", "another", "any", "as", "at", "based", "because", "before", "both", "but", "by", "compared", "consequently", "conversely", "data", "despite", "due", "during", "each", "either", "even", "finally", "first", "following", "for", "from", "further", "furthermore", "given", "having", "here", "hence", "however", "if", "importantly", "in", "indeed", "interestingly", "it", "its", "lastly", "less", "many", "mean", "median", "more", "moreover", "most", "no", "none", "nevertheless", "nonetheless", "not", "notably", "of", "on", "one", "only", "other", "others", "our", "overall", "participants", "patients", "previous", "previously", "results", "second", "several", "similar", "similarly", "since", "some", "subjects", "such", "taken", "that", "the", "their", "then", "there", "therefore", "these", "they", "third", "this", "those", "though", "thus", "to", "together", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty", "unlike", "until", "using", "we", "were", "what", "when", "whereas", "which", "while", "with", "within", "without", "yet"]
)

# Terminal punctuation, an optional citation number printed after it ("disease.12"), closing
# quotes or brackets, then the whitespace that must follow a sentence end.
_END = re.compile(
    r"(?P<punct>[.!?]+)"
    r"(?P<cite>\d{1,3}(?:(?:[,\u2013\u2014-]| )\d{1,3})*)?"
    r"(?P<close>[\"'\u201d\u2019)\]]*)"
    r"(?P<space>\s+)"
)
_OPEN_BRACKETS = "([\"'\u201c\u2018"
# Footnote markers open sentences in table footnotes ("SAE=serious adverse event. *Two patients").
_MARKERS = "*\u2020\u2021\u00a7\u00b6#"
# Lower-case openers that are not continuations: "mRNA levels", "eGFR was", "rt-PA was",
# "p Values were", Greek letters ("α was set at 0.05").
_MIXED_CASE = re.compile(r"[a-z]{1,3}-?[A-Z]|[pn] [A-Z]|[\u03b1-\u03c9]")
_TOKEN_STRIP = "([{\"'\u201c\u2018"


def _next_word(text: str, position: int) -> str:
    """The word starting at ``position`` (after any opening brackets), without trailing punctuation."""
    end = position
    n = len(text)
    while end < n and not text[end].isspace():
        end += 1
    word = text[position:end].lstrip(_OPEN_BRACKETS)
    return re.sub(r"[^\w-].*$", "", word)


def _can_start(text: str, position: int) -> bool:
    """Whether a sentence can start at ``position``: a capital or digit, maybe after a bracket."""
    n = len(text)
    i = position
    while i < n and text[i] in _OPEN_BRACKETS and i - position < 3:
        i += 1
    if i >= n:
        return False
    ch = text[i]
    if ch.isupper() or ch.isdigit() or ch in _MARKERS:
        return True
    return bool(_MIXED_CASE.match(text, i))


def _token_before(text: str, position: int, floor: int) -> str:
    """The whitespace-delimited token that ends at ``position`` (exclusive)."""
    start = position
    while start > floor and not text[start - 1].isspace():
        start -= 1
    return text[start:position]


def _is_boundary(text: str, match: re.Match[str], floor: int) -> bool:
    punct = match.group("punct")
    cite = match.group("cite")
    next_start = match.end()
    if next_start >= len(text) or not _can_start(text, next_start):
        return False
    next_word = _next_word(text, next_start)
    opener = next_word.lower() in _OPENERS
    punct_start = match.start("punct")
    before = text[punct_start - 1] if punct_start > floor else ""
    if cite:
        # "disease.12 The" is a citation after the stop; "0.05 The" or "P = .05 The" is a number.
        if not (before.isalpha() or before in ")]%"):
            return False
        if not (next_word[:1].isupper()):
            return False
    if punct[0] in "?!" or (len(punct) > 1 and "." not in punct):
        return True
    token = _token_before(text, punct_start, floor)
    bare = token.lstrip(_TOKEN_STRIP)
    low = bare.lower()
    if not bare:
        return True
    if low in _STRONG or low.rstrip(".") in _STRONG:
        # "Fig. 2" or "e.g. Smith"; a digit may follow only these.
        return False
    if low in _WEAK or low.rstrip(".") in _WEAK:
        return opener
    if len(bare) == 1 and bare.isalpha() and bare.isupper():
        # An initial ("J. Smith") unless a common opener follows ("vitamin D. The").
        return opener
    if "." in bare.rstrip(".") and re.fullmatch(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}", bare):
        # Dotted abbreviations such as "U.S." or "a.m.".
        return opener
    return not _is_list_number(text, bare, punct_start, floor)


def _is_list_number(text: str, bare: str, punct_start: int, floor: int) -> bool:
    """``1.`` or ``(a).`` opening a block is an enumeration label, not a sentence."""
    if not re.fullmatch(r"\(?(?:\d{1,2}|[a-zA-Z]|[ivx]{1,4})\)?", bare):
        return False
    prefix = text[floor:punct_start - len(bare)].rstrip()
    if not prefix or prefix[-1] in ":;":
        return True
    if prefix[-1] != ".":
        return False
    # "years. 2. Written consent" is a list; "Fig. 1. Baseline" is a figure number.
    previous = prefix.split()[-1].lstrip(_TOKEN_STRIP).rstrip(".").lower()
    return previous not in _STRONG and previous not in _WEAK and not previous.isdigit()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` offsets in ``text[start:end]`` (offsets into ``text``).

    Leading and trailing whitespace is outside every sentence; everything else is inside one.
    """
    stop = len(text) if end is None else end
    block = text[:stop]
    spans: list[tuple[int, int]] = []
    current = start
    for match in _END.finditer(block, start):
        if not _is_boundary(block, match, start):
            continue
        sentence_end = match.start("space")
        _append(block, spans, current, sentence_end)
        current = match.end()
    _append(block, spans, current, stop)
    return spans


def _append(text: str, spans: list[tuple[int, int]], start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def segment(text: str) -> list[str]:
    """The sentences of ``text`` as strings (see :func:`sentence_spans` for offsets)."""
    return [text[s:e] for s, e in sentence_spans(text)]
