"""Duplicate detection: which records report the same study report (or the same registration).

Pure functions over ``(key, Record)`` pairs; the caller (a review project) stores what they return.

:func:`find_duplicates` works in two passes:

1. **Identifiers.** Records sharing a PMID, a PMCID or a DOI are linked (rules ``"pmid"``,
   ``"pmcid"``, ``"doi"``); trial registrations sharing an NCT id are linked (rule ``"nct"``).
2. **Fuzzy.** Records not already joined by an identifier are compared on their normalised
   title (:func:`normalize_title`), year (one year apart is allowed: epub vs print, preprint vs
   journal), first author's surname, abstract and pagination (rule ``"fuzzy"``). Only pairs that
   meet in a *block* are compared, so 100,000 records take seconds, not hours (see
   :func:`candidate_pairs`).

Some things are never duplicates, whatever the title says, and this holds for whole groups, not
only for pairs (a chain ``A ~ B ~ C`` is refused when ``A`` and ``C`` conflict):

* two different PMIDs, two different PMCIDs, or two different journal DOIs (a preprint DOI such as
  ``10.1101/...`` next to a journal DOI is allowed; two different preprint DOIs are not);
* a trial registration and anything that is not a registration, or two registrations with
  different NCT ids;
* a pair the caller passed in ``blocked`` (a reviewer separated them).

Titles that many records share need more than a similar title:

* a notice ("Correction: <title>", "Comment on <title>", "... Author reply") never matches a
  record that is not a notice, and two notices only match on a near-identical, untruncated title;
* a short generic title ("Heart failure", "Olanzapine on trial") only matches an identical title
  with the same year, no conflicting author or pages, and an equal abstract or first page;
* a title with different numbers ("phase II" / "phase III", "1-year" / "2-year results") or
  whole words swapped ("... with methylphenidate" / "... with dextroamphetamine") is penalised;
* a truncated title of fewer than five content words also needs year and author, or the
  abstract, to agree.

Links are returned, never applied: :func:`group_duplicates` turns them into groups and
:func:`choose_primary` picks the record to show for a group.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Generic, Literal, Protocol, TypeVar

from rapidfuzz import fuzz

from leads.records import Record

__all__ = [
    "DEFAULT_THRESHOLD",
    "RULES",
    "DuplicateLink",
    "Rule",
    "candidate_pairs",
    "choose_primary",
    "find_duplicates",
    "first_author_surname",
    "group_duplicates",
    "is_preprint_doi",
    "normalize_title",
]


class _SortableKey(Hashable, Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=_SortableKey)

Rule = Literal["pmid", "pmcid", "doi", "nct", "fuzzy"]
RULES: tuple[Rule, ...] = ("pmid", "pmcid", "doi", "nct", "fuzzy")

#: Fuzzy score at or above which two records are linked; tuned on benchmark seed 1
#: (``benchmarks/dedup_benchmark.py --tune``), reported on seed 2 in ``docs/benchmarks.md``.
DEFAULT_THRESHOLD = 0.9


@dataclass(frozen=True)
class DuplicateLink(Generic[K]):
    """Evidence that records ``a`` and ``b`` (``a < b``) are duplicates.

    ``rule`` names what matched (one of :data:`RULES`); ``score`` is 1.0 for identifier rules and
    the fuzzy score (in [0, 1]) otherwise.
    """

    a: K
    b: K
    rule: Rule
    score: float


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_TRAILING_BRACKET = re.compile(r"\s*\[[^\[\]]*\][\s.]*$")
_WHOLE_BRACKET = re.compile(r"^\s*\[(.*)\][\s.]*$", re.DOTALL)
# Letters that NFKD does not decompose to ASCII.
_SPECIAL = str.maketrans(
    {
        "α": " alpha ",
        "β": " beta ",
        "γ": " gamma ",
        "δ": " delta ",
        "ε": " epsilon ",
        "κ": " kappa ",
        "λ": " lambda ",
        "μ": " mu ",
        "µ": " mu ",
        "ω": " omega ",
        "Δ": " delta ",
        "ß": "ss",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
    }
)


def _fold(text: str) -> str:
    """Unescape HTML, drop tags, fold to lower-case ASCII; punctuation is kept."""
    if "&" in text:
        # Twice, for double-escaped exports ("&amp;lt;i&amp;gt;").
        text = html.unescape(html.unescape(text)).replace("&", " and ")
    if "<" in text:
        text = _TAG.sub(" ", text)
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_SPECIAL)))
    return text.casefold()


def normalize_title(title: str | None) -> str:
    """Return ``title`` as lower-case ASCII words separated by single spaces.

    HTML entities and tags are removed, accents dropped, Greek letters spelled out, punctuation
    replaced by spaces. A title wholly in square brackets (MEDLINE's mark for a translated title)
    loses its brackets; trailing bracketed notes (``[Article in German]``, ``[see comments]``)
    are dropped. ``None`` and empty titles give ``""``.
    """
    return _normalize_folded(_fold(title)) if title else ""


def _normalize_folded(text: str) -> str:
    text = text.strip()
    whole = _WHOLE_BRACKET.match(text)
    if whole and "[" not in whole.group(1):
        text = whole.group(1)
    while "]" in text:
        stripped = _TRAILING_BRACKET.sub("", text)
        if stripped == text or len(stripped) < 10:
            break
        text = stripped
    return _NON_ALNUM.sub(" ", text).strip()


_INITIALS = re.compile(r"^(?:[A-Z]{1,3}|(?:[A-Z]\.-?)+|[A-Z]-[A-Z]\.?)$")


def first_author_surname(authors: Iterable[str]) -> str | None:
    """Return the first author's surname, lower-case ASCII without spaces, or ``None``.

    Understands ``"Last, First"``, ``"Last FM"`` (MEDLINE), ``"F. M. Last"`` and
    ``"First Middle Last"``; multi-word surnames (``"Le Chevalier T"``) are kept whole.
    """
    for author in authors:
        name = author.strip()
        if name:
            break
    else:
        return None
    if "&" in name or "<" in name:
        name = _fold(name)
    if "," in name:
        surname = name.split(",", 1)[0]
    else:
        tokens = name.replace(".", ". ").split()
        end = len(tokens)
        while end > 1 and _INITIALS.match(tokens[end - 1]):
            end -= 1
        start = 0
        if end == len(tokens):
            while start < end - 1 and _INITIALS.match(tokens[start]):
                start += 1
        # "Le Chevalier T" and "T Le Chevalier" keep both words; "First Middle Last" gives Last.
        initials = end < len(tokens) or start > 0
        surname = " ".join(tokens[start:end]) if initials else tokens[-1]
    folded = _NON_ALNUM.sub("", _fold(surname))
    return folded or None


_PREPRINT_PREFIXES = (
    "10.1101/",  # bioRxiv, medRxiv
    "10.21203/",  # Research Square
    "10.2139/",  # SSRN
    "10.20944/",  # Preprints.org
    "10.48550/",  # arXiv
    "10.31234/",  # PsyArXiv
    "10.31219/",  # OSF Preprints
    "10.31222/",  # MetaArXiv
    "10.22541/",  # Authorea
    "10.1590/scielopreprints",
)
_DOI_VERSION = re.compile(r"(?:/v|\.v|v)\d+$")


def is_preprint_doi(doi: str | None) -> bool:
    """Whether a (normalised) DOI belongs to a preprint server."""
    return bool(doi) and str(doi).startswith(_PREPRINT_PREFIXES)


def _preprint_base(doi: str) -> str:
    # "10.21203/rs.3.rs-123/v2" and "/v1" are versions of one preprint.
    return _DOI_VERSION.sub("", doi)


# Notices share their title with the article they concern ("Correction: <title>"); matched on the
# folded title with its punctuation, since "Correction of hyponatraemia" is an ordinary article.
_NOTICE = re.compile(
    r"^\W*(?:"
    r"(?:erratum|errata|corrigendum|corrigenda|expression of concern|notice of retraction"
    r"|retraction (?:notice|note)|publisher'?s note|editor'?s note|authors?'?s? reply|in reply"
    r"|reply to|comments? on|commentary on|correction to|retraction of|addendum to"
    r"|letter to the editor|withdrawn)\b"
    r"|(?:correction|retraction|reply|response|comments?|commentary|re|letter|editorial"
    r"|addendum|notice)\s*:)"
)
_NOTICE_END = re.compile(r"(?:\bauthors?'?s? reply|[.:]\s*reply|\[erratum\])\W*$")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words(
    "a an and are as at be by for from has have in into is it its of on or our than that the "
    "their this to was were what when which who with without versus vs de la le les des der die "
    "und en el del"
)
_ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
}
_ROMAN_CONTEXT = _words(
    "part phase type stage grade class study trial series section chapter volume"
)
_DIGITS = re.compile(r"\d+")
# Titles with fewer content words than this ("Heart failure", "Olanzapine on trial") are reused
# by many papers, so they only match when identical and backed by abstract or pages.
_GENERIC_BELOW = 3
_FIRST_PAGE = re.compile(r"[A-Za-z]*\d+")


def _title_numbers(title: str, tokens: list[str]) -> tuple[str, ...]:
    """Numbers in a title, roman numerals after "phase"/"part"/... included, sorted."""
    found = _DIGITS.findall(title)
    if not _ROMAN_CONTEXT.isdisjoint(tokens):
        for prev, tok in pairwise(tokens):
            if prev in _ROMAN_CONTEXT and tok in _ROMAN:
                found.append(str(_ROMAN[tok]))
    if not found:
        return ()
    return tuple(sorted(n.lstrip("0") or "0" for n in found))


# ---------------------------------------------------------------------------------------------
# Per-record preparation
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prep:
    index: int
    registration: bool
    pmid: str | None
    pmcid: str | None
    journal_doi: str | None
    preprint_doi: str | None
    ncts: frozenset[str]
    title: str
    compact: str
    content: list[str]
    words: frozenset[str]
    numbers: tuple[str, ...]
    year: int | None
    surname: str | None
    first_page: str | None
    volume: str | None
    notice: bool
    generic: bool
    abstract_raw: str | None
    has_ids: bool = False
    _abstract: str | None = field(default=None)

    @property
    def abstract(self) -> str:
        if self._abstract is None:
            raw = self.abstract_raw or ""
            self._abstract = normalize_title(raw[:500])[:300] if len(raw) >= 100 else ""
        return self._abstract


def _prepare(index: int, record: Record) -> _Prep:
    folded = _fold(record.title) if record.title else ""
    title = _normalize_folded(folded)
    tokens = title.split()
    compact = title.replace(" ", "")
    content = [t for t in tokens if t not in _STOPWORDS]
    doi = record.doi
    preprint = doi if doi and is_preprint_doi(doi) else None
    pages = record.pages or ""
    page_match = _FIRST_PAGE.search(pages)
    notice = bool(
        _NOTICE.match(folded)
        or (("reply" in folded or "erratum" in folded) and _NOTICE_END.search(folded))
    )
    return _Prep(
        index=index,
        registration=record.record_type == "registration",
        pmid=record.pmid,
        pmcid=record.pmcid,
        journal_doi=None if preprint else doi,
        preprint_doi=_preprint_base(preprint) if preprint else None,
        ncts=frozenset(record.nct_ids) if record.record_type == "registration" else frozenset(),
        title=title,
        compact=compact,
        content=content,
        words=frozenset(content),
        numbers=_title_numbers(title, tokens),
        year=record.year,
        surname=first_author_surname(record.authors),
        first_page=page_match.group(0).lower() if page_match else None,
        volume=(record.volume or "").strip().lower() or None,
        notice=notice,
        generic=len(content) < _GENERIC_BELOW or len(compact) < 20,
        abstract_raw=record.abstract,
        has_ids=bool(record.pmid or record.pmcid or doi or record.nct_ids),
    )


def _conflict(a: _Prep, b: _Prep) -> bool:
    """Identifiers or types that rule out a pair whatever else matches."""
    if a.registration != b.registration:
        return True
    if a.pmid and b.pmid and a.pmid != b.pmid:
        return True
    if a.pmcid and b.pmcid and a.pmcid != b.pmcid:
        return True
    if a.journal_doi and b.journal_doi and a.journal_doi != b.journal_doi:
        return True
    if a.preprint_doi and b.preprint_doi and a.preprint_doi != b.preprint_doi:
        return True
    return bool(a.ncts and b.ncts and not (a.ncts & b.ncts))


# ---------------------------------------------------------------------------------------------
# Blocking
# ---------------------------------------------------------------------------------------------

_WINDOW = 4  # each record meets the next _WINDOW records in every sort order below
_RARE_WORDS = 2  # ... and is filed under its _RARE_WORDS rarest title words
_MAX_EXACT_BLOCK = 200


def _candidate_pairs(preps: list[_Prep]) -> set[int]:
    """Pairs worth comparing, each encoded as ``i * n + j`` with ``i < j``.

    Three cheap passes, each linear in the number of records (after sorting):

    1. identical normalised titles (case, punctuation, markup changes): all pairs;
    2. sorted neighbourhood on the title written forwards (a truncated title or one with a
       dropped subtitle sorts right before its full form; late typos) and backwards (changes at
       the start of a title);
    3. sorted neighbourhood inside rare-word blocks: each record is filed under its rarest
       title words among those found in two records or more (a typo makes a word unique, so
       the typo is skipped and both versions are filed under the same remaining words), and
       meets its neighbours there in title order. This catches titles changed at both ends.
    """
    n = len(preps)
    pairs: set[int] = set()
    add = pairs.add
    titled = [p for p in preps if p.compact]

    exact: dict[str, list[int]] = defaultdict(list)
    for p in titled:
        exact[p.compact].append(p.index)
    for members in exact.values():
        if 1 < len(members) <= _MAX_EXACT_BLOCK:
            for x, i in enumerate(members):
                for j in members[x + 1 :]:
                    add(i * n + j)  # members are in index order

    def neighbours(order: list[int], block: list[str] | None = None) -> None:
        size = len(order)
        for x, i in enumerate(order):
            for y in range(x + 1, min(x + 1 + _WINDOW, size)):
                if block is not None and block[y] != block[x]:
                    break
                j = order[y]
                if i < j:
                    add(i * n + j)
                elif j < i:
                    add(j * n + i)

    neighbours([p.index for p in sorted(titled, key=lambda p: p.compact)])
    neighbours([p.index for p in sorted(titled, key=lambda p: p.compact[::-1])])

    df: dict[str, int] = defaultdict(int)
    for p in titled:
        for word in p.words:
            df[word] += 1
    filed: list[tuple[str, str, int]] = []
    for p in titled:
        # (df, word) pairs, so that ties are broken by the word, not by set order.
        rarest = sorted([(df[w], w) for w in p.words if df[w] >= 2])[:_RARE_WORDS]
        filed.extend([(w, p.compact, p.index) for _, w in rarest])
    filed.sort()
    neighbours([e[2] for e in filed], [e[0] for e in filed])
    return pairs


def candidate_pairs(records: Iterable[Record]) -> set[tuple[int, int]]:
    """The blocking step alone: index pairs ``(i, j)``, ``i < j``, that fuzzy matching compares.

    Exposed so that blocking recall can be tested and measured on its own.
    """
    preps = [_prepare(i, r) for i, r in enumerate(records)]
    n = len(preps)
    return {divmod(code, n) for code in _candidate_pairs(preps)} if n else set()


# ---------------------------------------------------------------------------------------------
# Fuzzy scoring
# ---------------------------------------------------------------------------------------------

_MAX_BONUS = 0.1  # the most the supporting evidence in _score can add to a title similarity
_MIN_TRUNCATED_WORDS = 3  # content words a truncated title must keep to be compared as one ...
_MIN_TRUNCATED_CHARS = 20
_CORROBORATE_BELOW = 5  # ... and below this many, year + author or the abstract must agree
_SPECIFIC_NOTICE_SIM = 0.97


def _title_similarity(a: _Prep, b: _Prep, cutoff: float) -> tuple[float, bool]:
    """Similarity of two normalised titles in [0, 1] and whether one looks truncated."""
    if a.title == b.title:
        return 1.0, False
    full = fuzz.ratio(a.title, b.title, score_cutoff=cutoff * 100) / 100
    short, long = (a, b) if len(a.title) <= len(b.title) else (b, a)
    if (
        len(short.title) < 0.92 * len(long.title)
        and len(short.content) >= _MIN_TRUNCATED_WORDS
        and len(short.title) >= _MIN_TRUNCATED_CHARS
    ):
        prefix = long.title[: len(short.title)]
        pre = fuzz.ratio(short.title, prefix, score_cutoff=cutoff * 100) / 100
        if pre > full:
            return pre, True
    return full, False


def _unmatched_words(a: _Prep, b: _Prep, truncated: bool) -> int:
    """Content words of one title with no counterpart in the other.

    A counterpart is the same word, a word within a typo of it, or the word inside the other
    title with its spaces removed ("betablockers"). Companion papers differ by whole words
    ("... with methylphenidate" / "... with dextroamphetamine"), which this counts; typos do not.
    For a truncated pair only the shorter title's words are looked up in the longer one.
    """
    pairs = [(a, b), (b, a)]
    if truncated:
        pairs = [(a, b)] if len(a.title) <= len(b.title) else [(b, a)]
    count = 0
    for x, y in pairs:
        others = set(y.content)
        last = x.content[-1] if truncated and x.content else None
        for word in set(x.content) - others:
            if len(word) <= 3 or word in y.compact:
                continue
            if word == last and any(o.startswith(word) for o in others):
                continue  # cut in the middle of a word
            if any(fuzz.ratio(word, o, score_cutoff=75) for o in others):
                continue
            count += 1
    return count


def _surnames_match(a: str, b: str) -> bool:
    if a == b:
        return True
    # "vanderberg" vs "berg", "lechevalier" vs "chevalier"
    if len(a) >= 4 and len(b) >= 4 and (a.endswith(b) or b.endswith(a)):
        return True
    return fuzz.ratio(a, b) >= 85


def _score(a: _Prep, b: _Prep, threshold: float) -> float:
    """The fuzzy score of a candidate pair (unclipped, may exceed 1), or 0.0 when it cannot
    reach ``threshold``."""
    year_gap = abs(a.year - b.year) if a.year is not None and b.year is not None else None
    if year_gap is not None and year_gap > 1:
        return 0.0
    if a.notice != b.notice:
        return 0.0  # "Correction: <title>" vs <title>
    title_sim, truncated = _title_similarity(a, b, max(0.0, threshold - _MAX_BONUS))
    if title_sim <= 0.0 or title_sim < threshold - _MAX_BONUS:
        return 0.0

    score = title_sim
    short, long = (a, b) if len(a.title) <= len(b.title) else (b, a)
    if truncated:
        score -= 0.04
        if not set(short.numbers) <= set(long.numbers):
            score -= 0.25
    elif a.numbers != b.numbers:
        score -= 0.25  # "phase II" vs "phase III", "1-year" vs "2-year results"
    if title_sim < 1.0:
        score -= 0.04 * min(5, _unmatched_words(a, b, truncated))
    if year_gap == 0:
        score += 0.02
    elif year_gap == 1:
        score -= 0.02
    author_match: bool | None = None
    if a.surname and b.surname:
        author_match = _surnames_match(a.surname, b.surname)
        score += 0.03 if author_match else -0.15
    abstract_sim: float | None = None
    if a.abstract and b.abstract:
        abstract_sim = fuzz.ratio(a.abstract, b.abstract) / 100
        if abstract_sim >= 0.9:
            score += 0.03
        elif abstract_sim < 0.6:
            score -= 0.1
    pages_match: bool | None = None
    if a.first_page and b.first_page:
        pages_match = a.first_page == b.first_page
        if pages_match:
            score += 0.02
        elif a.volume and b.volume and a.volume != b.volume:
            score -= 0.3  # another article, or another report (conference abstract) of it
        else:
            score -= 0.05

    corroborated = (abstract_sim is not None and abstract_sim >= 0.9) or pages_match is True
    if a.generic or b.generic:
        # Shared titles are common here ("Heart failure", "Erratum", "Olanzapine on trial"):
        # demand an identical title and agreement on everything else that is known, with
        # abstract or pages positively equal.
        if not (
            a.title == b.title
            and year_gap == 0
            and author_match is not False
            and pages_match is not False
            and corroborated
        ):
            return 0.0
    elif a.notice and (truncated or title_sim < _SPECIFIC_NOTICE_SIM):
        # Two notices about one article ("Erratum to X" twice) differ only in small words.
        return 0.0
    elif (
        truncated
        and len(short.content) < _CORROBORATE_BELOW
        and not (corroborated or (year_gap == 0 and author_match is True))
    ):
        return 0.0
    return max(0.0, score)


# ---------------------------------------------------------------------------------------------
# Constrained grouping
# ---------------------------------------------------------------------------------------------


class _Groups:
    """Union-find that refuses merges putting conflicting records into one group.

    Per-group state (members, identifiers, NCT ids) is only stored for groups of two or more.
    """

    def __init__(self, preps: list[_Prep], blocked: dict[int, set[int]]) -> None:
        self.preps = preps
        self.parent = list(range(len(preps)))
        self.members: dict[int, list[int]] = {}
        self.ids: dict[int, tuple[frozenset[str], ...]] = {}
        self.ncts: dict[int, frozenset[str]] = {}
        self.blocked = blocked

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def _state(self, root: int) -> tuple[list[int], tuple[frozenset[str], ...], frozenset[str]]:
        if root in self.members:
            return self.members[root], self.ids[root], self.ncts[root]
        p = self.preps[root]
        ids = tuple(
            frozenset([v]) if v else frozenset()
            for v in (p.pmid, p.pmcid, p.journal_doi, p.preprint_doi)
        )
        return [root], ids, p.ncts

    def union(self, i: int, j: int) -> bool:
        """Merge the groups of ``i`` and ``j``; False (and nothing changes) if they conflict."""
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return True
        mi, ids_i, ni = self._state(ri)
        mj, ids_j, nj = self._state(rj)
        ids = tuple(x | y for x, y in zip(ids_i, ids_j, strict=True))
        if any(len(s) > 1 for s in ids):
            return False
        if ni and nj and not (ni & nj):
            return False
        (small, small_members), (big, big_members) = sorted(
            ((ri, mi), (rj, mj)), key=lambda t: len(t[1])
        )
        if self.blocked:
            for x in small_members:
                for y in self.blocked.get(x, ()):
                    if self.find(y) == big:
                        return False
        self.parent[small] = big
        self.members[big] = big_members + small_members
        self.ids[big] = ids
        self.ncts[big] = ni | nj
        for table in (self.members, self.ids, self.ncts):
            table.pop(small, None)
        return True


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

_STAR_ABOVE = 50  # identifier groups bigger than this are linked as a star, not all pairs


def find_duplicates(
    items: Iterable[tuple[K, Record]],
    *,
    blocked: Collection[frozenset[K]] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> list[DuplicateLink[K]]:
    """Find duplicate records; return the links, sorted by ``(a, b)``.

    ``items`` are ``(key, record)`` pairs with unique, mutually comparable keys. ``blocked``
    holds pairs of keys that must not end up in one group (reviewer decisions); keys not in
    ``items`` are ignored there. ``threshold`` is the fuzzy score needed for a ``"fuzzy"`` link.

    The result does not depend on the order of ``items``. Every pair of keys joined (through
    any chain) by the returned links is free of the conflicts listed in the module docstring.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    pairs = list(items)
    pairs.sort(key=lambda kv: kv[0])
    keys = [k for k, _ in pairs]
    for x in range(1, len(keys)):
        if not keys[x - 1] < keys[x]:
            raise ValueError(f"duplicate key in items: {keys[x]!r}")
    position = {k: i for i, k in enumerate(keys)}
    preps = [_prepare(i, r) for i, (_, r) in enumerate(pairs)]
    n = len(preps)

    blocked_by: dict[int, set[int]] = defaultdict(set)
    for pair in blocked:
        if len(pair) != 2:
            continue
        u, v = (position.get(k) for k in pair)
        if u is not None and v is not None:
            blocked_by[u].add(v)
            blocked_by[v].add(u)

    groups = _Groups(preps, blocked_by)
    found: list[tuple[int, int, Rule, float]] = []
    seen: set[int] = set()

    def accept(i: int, j: int, rule: Rule, score: float) -> None:
        if i > j:
            i, j = j, i
        code = i * n + j
        if code in seen or j in blocked_by.get(i, ()) or _conflict(preps[i], preps[j]):
            return
        seen.add(code)
        if groups.union(i, j):
            found.append((i, j, rule, score))

    # Pass 1: identifiers.
    id_rules: list[tuple[Rule, dict[str, list[int]]]] = [
        ("pmid", defaultdict(list)),
        ("pmcid", defaultdict(list)),
        ("doi", defaultdict(list)),
        ("nct", defaultdict(list)),
    ]
    for p in preps:
        id_rules[0][1][p.pmid or ""].append(p.index)
        id_rules[1][1][p.pmcid or ""].append(p.index)
        id_rules[2][1][p.journal_doi or p.preprint_doi or ""].append(p.index)
        for nct in p.ncts:
            id_rules[3][1][nct].append(p.index)
    for rule, by_value in id_rules:
        for value, members in sorted(by_value.items()):
            if not value or len(members) < 2:
                continue
            if len(members) > _STAR_ABOVE:
                targets = [(members[0], j) for j in members[1:]]
            else:
                targets = [(i, j) for x, i in enumerate(members) for j in members[x + 1 :]]
            for i, j in targets:
                if rule == "doi" and not _doi_titles_agree(preps[i], preps[j]):
                    # Conference supplements share one DOI across hundreds of abstracts.
                    continue
                accept(i, j, rule, 1.0)

    # Pass 2: fuzzy, best scores first so that a weak link cannot pre-empt a strong one.
    joined_by_id = [groups.find(i) for i in range(n)]
    years = [p.year if p.year is not None else -9 for p in preps]
    # Cheap rejections first, on plain lists: this loop runs over every candidate pair.
    careful = [p.has_ids or p.registration or p.index in blocked_by for p in preps]
    scored: list[tuple[float, int, int]] = []
    for code in _candidate_pairs(preps):
        i, j = divmod(code, n)
        gap = years[i] - years[j]
        if (gap > 1 or gap < -1) and years[i] != -9 and years[j] != -9:
            continue
        if joined_by_id[i] == joined_by_id[j]:
            continue
        a, b = preps[i], preps[j]
        # Duplicates share at least a third of the shorter title's words, even with typos or
        # truncation; most neighbours in the blocks share fewer.
        if 3 * len(a.words & b.words) < min(len(a.words), len(b.words)):
            continue
        if (careful[i] or careful[j]) and (
            code in seen
            or a.registration != b.registration
            or _conflict(a, b)
            or j in blocked_by.get(i, ())
        ):
            continue
        score = _score(a, b, threshold)
        if score >= threshold:
            scored.append((score, i, j))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    for score, i, j in scored:
        accept(i, j, "fuzzy", round(min(1.0, score), 4))

    found.sort(key=lambda t: (t[0], t[1]))
    return [DuplicateLink(keys[i], keys[j], rule, score) for i, j, rule, score in found]


def _doi_titles_agree(a: _Prep, b: _Prep) -> bool:
    if not a.title or not b.title:
        return True
    return fuzz.token_set_ratio(a.title, b.title) >= 60


def group_duplicates(keys: Iterable[K], links: Iterable[DuplicateLink[K]]) -> list[list[K]]:
    """Group ``keys`` by ``links`` (transitively); return groups of two or more.

    Each group is sorted, and groups are sorted by their first key. A link naming a key not in
    ``keys`` raises :class:`ValueError`.
    """
    parent: dict[K, K] = {k: k for k in keys}

    def find(k: K) -> K:
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    for link in links:
        for k in (link.a, link.b):
            if k not in parent:
                raise ValueError(f"link {link!r} names a key not in keys: {k!r}")
        ra, rb = find(link.a), find(link.b)
        if ra != rb:
            parent[rb] = ra
    members: dict[K, list[K]] = defaultdict(list)
    for k in parent:
        members[find(k)].append(k)
    groups = [sorted(g) for g in members.values() if len(g) >= 2]
    groups.sort(key=lambda g: g[0])
    return groups


def _completeness(record: Record) -> tuple[int, ...]:
    doi = record.doi
    return (
        int(bool(record.pmid)),
        int(bool(doi) and not is_preprint_doi(doi)),
        int(bool(record.pmcid)),
        int(bool(doi)),
        int(bool(record.abstract)),
        int(bool(record.authors)),
        sum(
            bool(v)
            for v in (
                record.journal,
                record.year,
                record.volume,
                record.issue,
                record.pages,
                record.pub_date,
            )
        ),
        len(record.abstract or ""),
        len(record.authors),
        len(record.mesh),
        len(record.title or ""),
    )


def choose_primary(records: Mapping[K, Record]) -> K:
    """Pick the record to show for a duplicate group: the most complete one.

    Completeness, in order: has a PMID, has a journal (non-preprint) DOI, has a PMCID, has any
    DOI, has an abstract, has authors, number of bibliographic fields (journal, year, volume,
    issue, pages, date), abstract length, number of authors, MeSH headings, title length. Ties go
    to the smallest key.
    """
    if not records:
        raise ValueError("choose_primary needs at least one record")
    best_key: K | None = None
    best: tuple[int, ...] = ()
    for key in sorted(records):
        score = _completeness(records[key])
        if best_key is None or score > best:
            best_key, best = key, score
    assert best_key is not None
    return best_key
