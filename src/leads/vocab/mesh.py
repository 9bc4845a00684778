"""MeSH 2024: descriptor lookup, tree explosion, entry terms, pharmacological actions, and
finding MeSH concepts in free text.

The vocabulary ships with the package (``leads/vocab/data/mesh2024.json.gz``, built from NLM's
``desc2024``/``mtrees2024`` by ``scripts/build_mesh_data.py``), so nothing here touches the network.

>>> mesh = Mesh.load()
>>> mesh.descriptor("Heart Attack")
Descriptor('D009203', 'Myocardial Infarction')
>>> [m.descriptor.name for m in mesh.find_concepts("postmenopausal women with osteoporosis")]
['Osteoporosis, Postmenopausal', 'Women']
>>> "Nifedipine" in {d.name for d in mesh.drugs_with_action("Calcium Channel Blockers")}
True

:class:`Mesh` offers: :meth:`~Mesh.descriptor` / :meth:`~Mesh.lookup` (by UI, name or entry term),
:meth:`~Mesh.search` (fuzzy), :meth:`~Mesh.find_concepts` (concepts in free text),
:meth:`~Mesh.entry_terms` (synonyms), :meth:`~Mesh.descendants`, :meth:`~Mesh.children`,
:meth:`~Mesh.parents`, :meth:`~Mesh.ancestors`, :meth:`~Mesh.by_tree_number` (the trees),
:meth:`~Mesh.drugs_with_action`, :meth:`~Mesh.actions_of` (pharmacological actions) and
:meth:`~Mesh.explode` (tree plus pharmacological action, as PubMed searches a heading).

Lookups work at three levels, tried in order:

1. **exact**: the name or an entry term, ignoring case and surrounding space;
2. **normalised**: :func:`normalize_term` on both sides: case, accents, punctuation, possessives
   (``Alzheimer's``), singular/plural (``Heart Attacks``, ``Stenoses``), British spellings
   (``oesophageal``, ``tumour``, ``anaemia``, ``randomised``) and inverted terms
   (``Infarction, Myocardial`` = ``Myocardial Infarction``);
3. **reordered**: the same content words in any order (``Estrogens, Conjugated (USP)`` =
   ``conjugated estrogens USP``; ``quality of life`` = ``life quality``).

:meth:`Mesh.search` adds fuzzy matching (typos) with rapidfuzz, and :meth:`Mesh.find_concepts`
finds the concepts mentioned in a phrase such as a PICO element.

MeSH is produced by the U.S. National Library of Medicine; see ``leads/vocab/data/README.md``.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import chain, combinations, repeat
from pathlib import Path
from typing import Any, Literal, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from leads.errors import NotFoundError

__all__ = [
    "GENERIC_WORDS",
    "MESH_VERSION",
    "NORMALIZER_VERSION",
    "STOPWORDS",
    "Descriptor",
    "Match",
    "MatchKind",
    "Mesh",
    "SearchHit",
    "normalize_term",
    "normalize_tokens",
]

MESH_VERSION = "2024"
#: Bumped whenever :func:`normalize_tokens` changes: the package data stores the keys it computed,
#: so it must then be rebuilt (``scripts/build_mesh_data.py``; a test checks the keys agree).
NORMALIZER_VERSION = 1
DATA_FORMAT = 2
DATA_FILE = "mesh2024.json.gz"

MatchKind = Literal["exact", "normalized", "reordered", "discontiguous"]

# Function words: ignored when comparing words in any order and when finding concepts whose words
# are not adjacent. They stay in the ordered keys, so "Quality of Life" still needs its "of".
STOPWORDS = frozenset(
    """a an and any are as at be been being but by during each for from had has have in into is
    it its of on or other per than that the their these this those to via vs versus was were
    which who whom whose with within without""".split()  # noqa: SIM905
)

# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_UI_RE = re.compile(r"[Dd]\d{6,9}")
# Where a concept cannot continue: sentence or clause punctuation, brackets, line breaks. A full
# stop only counts before a space or the end, so "2.5 mg" and "S.aureus" stay whole.
_BREAK_RE = re.compile(r"[;:!?()\[\]{}\n]|\.(?=\s|$)")

_GREEK = str.maketrans(
    {
        "α": "alpha",
        "β": "beta",
        "ß": "beta",  # common stand-in for beta in clinical text ("Aß42"); absent from MeSH
        "γ": "gamma",
        "δ": "delta",
        "ε": "epsilon",
        "κ": "kappa",
        "λ": "lambda",
        "μ": "mu",
        "ω": "omega",
    }
)

_IRREGULAR = {
    "women": "woman",
    "men": "man",
    "children": "child",
    "teeth": "tooth",
    "feet": "foot",
    "mice": "mouse",
    "lice": "louse",
    "geese": "goose",
    "bacteria": "bacterium",
    "criteria": "criterion",
    "phenomena": "phenomenon",
    "media": "medium",
    "fungi": "fungus",
    "nuclei": "nucleus",
    "bronchi": "bronchus",
    "stimuli": "stimulus",
    "bacilli": "bacillus",
    "calculi": "calculus",
    "emboli": "embolus",
    "thrombi": "thrombus",
    "alveoli": "alveolus",
    "villi": "villus",
    "cocci": "coccus",
    "streptococci": "streptococcus",
    "staphylococci": "staphylococcus",
    "enterococci": "enterococcus",
    "pneumococci": "pneumococcus",
    "meningococci": "meningococcus",
    "gonococci": "gonococcus",
}
# "-uses" words whose singular ends in "-use" ("houses") rather than "-us" ("viruses").
_USE_WORDS = frozenset({"uses", "abuses", "misuses", "overuses", "disuses", "excuses", "refuses"})
# British -> American spelling fragments (applied to singular forms, both sides of a lookup).
_SPELLING = (
    ("oesophag", "esophag"),
    ("oestr", "estr"),
    ("oedem", "edem"),
    ("coeli", "celi"),
    ("foet", "fet"),
    ("rrhoea", "rrhea"),
    ("amoeb", "ameb"),
    ("aem", "em"),
    ("paed", "ped"),
    ("aetiol", "etiol"),
    ("caesar", "cesar"),
    ("gynaec", "gynec"),
    ("anaes", "anes"),
    ("faec", "fec"),
)
_SPELLING_TRIGGERS = ("oe", "ae")
_ISE_SUFFIXES = ("isation", "ised", "ising", "iser")
_OUR_EXCEPTIONS = frozenset({"devour", "detour", "contour", "velour", "paramour", "troubadour"})


def _singular(w: str) -> str:
    irregular = _IRREGULAR.get(w)
    if irregular is not None:
        return irregular
    n = len(w)
    if n <= 3:
        return w
    if w.endswith("ae"):
        return w[:-1] if n > 4 else w  # vertebrae, larvae
    if not w.endswith("s") or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies"):
        return w[:-3] + "y" if n > 4 else w
    if w.endswith(("sses", "shes", "xes", "zzes")):
        return w[:-2]
    if w.endswith("ches"):
        return w[:-1] if w.endswith("aches") else w[:-2]  # headaches / patches
    if w.endswith("uses"):
        return w[:-1] if (w in _USE_WORDS or w[-5] in "aeiou") else w[:-2]
    return w[:-1]


def _canonical(w: str) -> str:
    """Singular, American spelling, and one form for -sis/-ses (stenosis = stenoses)."""
    w = _singular(w)
    if any(t in w for t in _SPELLING_TRIGGERS):
        for old, new in _SPELLING:
            if old in w:
                w = w.replace(old, new)
    n = len(w)
    if n > 5 and w.endswith("our") and w not in _OUR_EXCEPTIONS:
        w = w[:-3] + "or"  # tumour, behaviour
    elif n > 5 and w.endswith(_ISE_SUFFIXES):
        cut = w.rfind("is")
        w = w[:cut] + "iz" + w[cut + 2 :]  # randomised, hospitalisation
    elif n > 5 and w.endswith("ogue"):
        w = w[:-2]  # analogue, catalogue
    elif n > 4 and w.endswith(("tre", "bre")):
        w = w[:-2] + "er"  # centre, fibre
    # "diagnosis" and "diagnoses" (and the singular of "doses", "dose") share one form; so do
    # "-esis/-eses", "-ysis/-yses", "-asis/-ases".
    if n >= 5 and w.endswith("sis") and w[-4] in "aeioy":
        w = w[:-2] + "e"
    return w


def _fold(token: str) -> str:
    """Case, accents, Greek letters and apostrophes, without any change to the word itself."""
    if not token.isascii():
        # Greek before and after case folding: "ß" must not fold to "ss", "Β" folds to "β".
        token = unicodedata.normalize("NFKC", token).translate(_GREEK).casefold().translate(_GREEK)
        token = "".join(
            c for c in unicodedata.normalize("NFKD", token) if not unicodedata.combining(c)
        )
    token = token.casefold()
    if "'" in token or "’" in token:
        if token.endswith(("'s", "’s")):
            token = token[:-2]
        token = token.replace("'", "").replace("’", "")
    return token


def _protected(surface: str, context_has_lower: bool, single: bool) -> bool:
    # An all-capitals token in mixed-case text is an acronym: "AIDS" must not become "aid".
    return _is_acronym(surface) and (context_has_lower or single)


def _token_keys(surfaces: Sequence[str], text: str) -> list[str]:
    has_lower = any(c.islower() for c in text)
    single = len(surfaces) == 1
    out = []
    for s in surfaces:
        f = _fold(s)
        out.append(f if _protected(s, has_lower, single) else _canonical(f))
    return out


def normalize_tokens(text: str) -> list[str]:
    """The normalised words of ``text``, as used for every MeSH lookup.

    Lower case, no accents or punctuation, possessives dropped, each word singular and in
    American spelling; an all-capitals word in mixed-case text is kept as an acronym.

    >>> normalize_tokens("Alzheimer's Diseases")
    ['alzheimer', 'disease']
    >>> normalize_tokens("Oesophageal tumours")
    ['esophageal', 'tumor']
    """
    surfaces = _TOKEN_RE.findall(text)
    return _token_keys(surfaces, text)


def normalize_term(text: str) -> str:
    """:func:`normalize_tokens` joined with single spaces (the key of an ordered lookup)."""
    return " ".join(normalize_tokens(text))


def _bag(key: str) -> str:
    """Content words of a normalised key, sorted: the key of an any-order lookup."""
    return " ".join(sorted(w for w in key.split() if w not in STOPWORDS))


def _surface(text: str) -> str:
    """Folded words without any change to their form, to prefer the term the text spells out."""
    return " ".join(_fold(t) for t in _TOKEN_RE.findall(text))


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Descriptor:
    """A MeSH descriptor (main heading).

    ``tree_numbers`` place it in the hierarchy (``C14.280.647.500``); ``entry_terms`` are its
    synonyms and narrower terms, without the name and in MeSH order (the preferred concept's terms
    first); ``pharmacological_actions`` are the UIs of the action descriptors (such as D002121
    *Calcium Channel Blockers*) of a drug, empty for anything else. Descriptors compare and hash
    by ``ui``. MeSH scope notes are not in the shipped data.
    """

    ui: str
    name: str
    tree_numbers: tuple[str, ...]
    entry_terms: tuple[str, ...]
    pharmacological_actions: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        """The top-level tree categories (``"C"`` = Diseases, ``"D"`` = Chemicals and Drugs, ...)."""
        return tuple(sorted({t[0] for t in self.tree_numbers}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descriptor) and other.ui == self.ui

    def __hash__(self) -> int:
        return hash(self.ui)

    def __repr__(self) -> str:
        return f"Descriptor({self.ui!r}, {self.name!r})"


class SearchHit(NamedTuple):
    """One result of :meth:`Mesh.search`: the descriptor, a 0-100 score and the term that matched."""

    descriptor: Descriptor
    score: float
    matched_term: str


@dataclass(frozen=True, slots=True)
class Match:
    """A MeSH concept found in free text by :meth:`Mesh.find_concepts`.

    ``start``/``end`` are character offsets into the text (``text[start:end] == self.text``);
    for a ``"discontiguous"`` match (``postmenopausal women with osteoporosis`` ->
    *Osteoporosis, Postmenopausal*) they run from the first to the last matched word and
    ``spans`` lists the words used. ``kind`` says how the words matched ``matched_term``:
    ``"exact"`` (same words, any case), ``"normalized"`` (plural, spelling, punctuation...),
    ``"reordered"`` (same content words, other order) or ``"discontiguous"``.
    ``alternatives`` are other descriptors with a term that matched the same words equally well.
    """

    descriptor: Descriptor
    start: int
    end: int
    text: str
    matched_term: str
    kind: MatchKind
    spans: tuple[tuple[int, int], ...]
    alternatives: tuple[Descriptor, ...] = ()


# --------------------------------------------------------------------------------------------
# The vocabulary
# --------------------------------------------------------------------------------------------

# Term flags in the package data (one letter each).
_F_NARROWER = "n"  # not in the descriptor's preferred concept
_F_ABBREVIATION = "a"  # MeSH lexical tag ABB or ACR
_F_TRADE = "t"  # lexical tag TRD
_F_LAB = "l"  # lexical tag LAB (manufacturer's code number)
_F_LOOKUP = "p"  # a MeSH permuted form that normalisation does not derive: lookup only
_F_CASE = "c"  # only matches free text spelled with the same capitals (acronyms such as "AIDS")

#: Single words that are MeSH entry terms but that clinical text nearly always uses in a general
#: or another sense; :meth:`Mesh.find_concepts` skips them on their own unless ``generic=True``.
GENERIC_WORDS = frozenset(
    """ability association bias classification collection consensus culture diagnose diagnosis
    disease diseases flag flags form forms genetic history index judgement judgment knowledge
    language method methods need needs patient patients population populations procedure
    procedures publication publications purpose report reports research respect retinal review
    reviews risk role specialist standard standards surgery table tables technique techniques
    time transient treatment treatments uniform weight will""".split()  # noqa: SIM905
)

_COORDINATORS = frozenset({"and", "or", "nor", "but", "v", "vs", "versus"})
_JOINT_RE = re.compile(r"[,/&+]")
_MAX_BAG_WINDOW = 8  # tokens in a window matched in any order
_MAX_BAG_WORDS = 5


_INDEX_FIELDS = ("keys", "bags", "alt", "exact_multi", "ordered_multi", "bags_multi", "first_len")

Hits = int | list[int]  # a term index, or several when terms share a key


def _hits(table: dict[str, Hits], key: str) -> list[int]:
    v = table.get(key)
    if v is None:
        return []
    return [v] if isinstance(v, int) else v


class _Index:
    """Lookup tables (key -> term indexes), built on first use from precomputed keys.

    ``dict(zip(...))`` keeps the last term of a shared key; the package data lists every shared
    key with all its terms (``*_multi``), which then replace those entries.
    """

    def __init__(self, mesh: Mesh, data: dict[str, Any]) -> None:
        n = len(mesh._t_text)
        keys = data["keys"].split("\n")
        # A term's any-order key: "" = the same as its ordered key, "-" = none (only stopwords).
        bags = [
            k if not b else "" if b == "-" else b
            for b, k in zip(data["bags"].split("\n"), keys, strict=True)
        ]
        self.exact: dict[str, Hits] = dict(
            zip(map(str.casefold, mesh._t_text), range(n), strict=True)
        )
        self.exact.update(data["exact_multi"])
        self.ordered: dict[str, Hits] = dict(zip(keys, range(n), strict=True))
        self.ordered.update({k: ti for ti, k in data["alt"]})
        self.ordered.update(data["ordered_multi"])
        self.bags: dict[str, Hits] = dict(zip(bags, range(n), strict=True))
        self.bags.pop("", None)
        self.bags.update(data["bags_multi"])
        self.first_len: dict[str, int] = data["first_len"]

    def longest(self, word: str) -> int:
        """The most words of a key starting with ``word`` (0 if none starts with it)."""
        n = self.first_len.get(word)
        if n is not None:
            return n
        return 1 if word in self.ordered else 0


class _Trees:
    def __init__(self, mesh: Mesh) -> None:
        pairs = sorted((tn, di) for di, d in enumerate(mesh._descs) for tn in d.tree_numbers)
        self.numbers = [p[0] for p in pairs]
        self.desc = [p[1] for p in pairs]
        self.by_number = dict(pairs)


class Mesh:
    """The MeSH vocabulary. Use :meth:`load` (one shared instance per data file).

    Methods that take a descriptor accept a :class:`Descriptor`, a UI (``"D009203"``) or any name
    :meth:`descriptor` resolves, and raise :class:`~leads.errors.NotFoundError` for an unknown one.
    """

    _instances: dict[str, Mesh] = {}  # noqa: RUF012 - class-level cache by design
    _load_lock = threading.Lock()

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != DATA_FORMAT or data.get("normalizer") != NORMALIZER_VERSION:
            raise ValueError(
                "MeSH data was built by another version of leads "
                f"(format {data.get('format')!r}, normalizer {data.get('normalizer')!r}); "
                "rebuild it with scripts/build_mesh_data.py"
            )
        self.version: str = data["mesh_version"]
        self._t_text: list[str] = data["terms"].split("\n")
        self._t_flags: list[str] = data["flags"].split("\n")
        self._descs: list[Descriptor] = []
        self._first_term: list[int] = []
        counts: list[int] = []
        first = 0
        texts = self._t_text
        for ui, name, trees, actions, n_terms, n_lookup in data["descriptors"]:
            self._first_term.append(first)
            counts.append(n_terms)
            self._descs.append(
                Descriptor(
                    ui=ui,
                    name=name,
                    tree_numbers=tuple(trees.split("|")) if trees else (),
                    # Terms: the name, the entry terms, then lookup-only permutations.
                    entry_terms=tuple(texts[first + 1 : first + n_terms - n_lookup]),
                    pharmacological_actions=tuple(actions.split("|")) if actions else (),
                )
            )
            first += n_terms
        if first != len(texts) or len(self._t_flags) != len(texts):
            raise ValueError("MeSH data is inconsistent (term counts do not add up)")
        self._t_desc: list[int] = list(
            chain.from_iterable(repeat(di, c) for di, c in enumerate(counts))
        )
        self._by_ui: dict[str, int] = {d.ui: di for di, d in enumerate(self._descs)}
        # The index columns, kept until _index() builds its tables from them.
        self._data: dict[str, Any] | None = {k: data[k] for k in _INDEX_FIELDS}
        self._lock = threading.Lock()
        self._index_: _Index | None = None
        self._trees_: _Trees | None = None
        self._actions_: dict[str, list[int]] | None = None
        self._fuzzy_: tuple[list[str], list[int]] | None = None

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> Mesh:
        """The vocabulary from ``path`` (default: the MeSH 2024 data shipped with leads).

        Cached: every call with the same path returns the same instance, and the lookup tables
        are built on first use.
        """
        key = str(Path(path).resolve()) if path is not None else ""
        with cls._load_lock:
            inst = cls._instances.get(key)
            if inst is None:
                if path is None:
                    blob = resources.files("leads.vocab").joinpath("data", DATA_FILE).read_bytes()
                else:
                    blob = Path(path).read_bytes()
                inst = cls(json.loads(gzip.decompress(blob)))
                cls._instances[key] = inst
        return inst

    def _index(self) -> _Index:
        if self._index_ is None:
            with self._lock:
                if self._index_ is None:
                    assert self._data is not None
                    self._index_ = _Index(self, self._data)
                    self._data = None
        return self._index_

    def _trees(self) -> _Trees:
        if self._trees_ is None:
            with self._lock:
                if self._trees_ is None:
                    self._trees_ = _Trees(self)
        return self._trees_

    def warm_up(self) -> Mesh:
        """Build every lookup table now (otherwise each is built on its first use)."""
        self._index()
        self._trees()
        self._action_index()
        self._fuzzy_choices()
        return self

    # ---- basic access ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._descs)

    def __iter__(self) -> Iterator[Descriptor]:
        return iter(self._descs)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Descriptor):
            return item.ui in self._by_ui
        return isinstance(item, str) and self.descriptor(item) is not None

    def descriptor(self, ui_or_name: str) -> Descriptor | None:
        """The descriptor with this UI, name or entry term, or ``None``.

        Tries an exact (case-insensitive) match, then a normalised one, then the same words in any
        order (see the module docstring). When several descriptors share a term, the one whose
        name it is, or whose preferred concept it names, wins; :meth:`lookup` returns them all.
        """
        s = ui_or_name.strip()
        if _UI_RE.fullmatch(s):
            di = self._by_ui.get(s.upper())
            return self._descs[di] if di is not None else None
        hits = self._lookup(s)
        return self._descs[self._t_desc[hits[0][0]]] if hits else None

    def lookup(self, text: str) -> list[Descriptor]:
        """Every descriptor with a term matching ``text`` at the first level that matches any
        (exact, normalised, reordered), best first."""
        s = text.strip()
        if _UI_RE.fullmatch(s):
            d = self.descriptor(s)
            return [d] if d is not None else []
        seen: dict[int, None] = {}
        for ti, _ in self._lookup(s):
            seen.setdefault(self._t_desc[ti], None)
        return [self._descs[di] for di in seen]

    def by_tree_number(self, tree_number: str) -> Descriptor | None:
        """The descriptor at a tree number such as ``"C14.280.647.500"``."""
        di = self._trees().by_number.get(tree_number.strip().upper())
        return self._descs[di] if di is not None else None

    def _resolve(self, d: Descriptor | str) -> int:
        if isinstance(d, Descriptor):
            di = self._by_ui.get(d.ui)
        else:
            found = self.descriptor(d)
            di = self._by_ui[found.ui] if found is not None else None
        if di is None:
            raise NotFoundError(f"unknown MeSH descriptor: {d!r}")
        return di

    def _lookup(self, s: str) -> list[tuple[int, MatchKind]]:
        """Term indexes matching ``s`` at the first level that has any, best first."""
        if not s:
            return []
        idx = self._index()
        folded = " ".join(s.casefold().split())
        hits = _hits(idx.exact, folded)
        if hits:
            return [(ti, "exact") for ti in self._rank(hits, s)]
        key = normalize_term(s)
        if not key:
            return []
        hits = _hits(idx.ordered, key)
        if hits:
            return [(ti, "normalized") for ti in self._rank(hits, s)]
        hits = _hits(idx.bags, _bag(key))
        if hits:
            return [(ti, "reordered") for ti in self._rank(hits, s)]
        return []

    def _rank(self, term_indexes: Sequence[int], text: str) -> list[int]:
        """Order candidate terms: the text's own spelling, then a descriptor's name, then its
        preferred concept, then MeSH permutations last; then the deeper (more specific) heading."""
        if len(term_indexes) == 1:
            return list(term_indexes)
        surface = _surface(text)

        def rank(ti: int) -> tuple[bool, bool, bool, bool, int, int]:
            di = self._t_desc[ti]
            flags = self._t_flags[ti]
            depth = max((t.count(".") for t in self._descs[di].tree_numbers), default=-1)
            return (
                _surface(self._t_text[ti]) != surface,
                ti != self._first_term[di],
                _F_NARROWER in flags,
                _F_LOOKUP in flags,
                -depth,
                di,
            )

        return sorted(dict.fromkeys(term_indexes), key=rank)

    # ---- terms -----------------------------------------------------------------------------

    def entry_terms(
        self,
        descriptor: Descriptor | str,
        *,
        include_name: bool = False,
        narrower: bool = True,
        trade_names: bool = True,
        lab_numbers: bool = True,
    ) -> list[str]:
        """Synonyms of a descriptor for free-text expansion, in MeSH order.

        ``narrower=False`` keeps only the preferred concept's terms (strict synonyms);
        ``trade_names``/``lab_numbers`` control brand names (*Premarin*) and manufacturers' codes
        (*A-23187*). MeSH's permuted forms (*Attacks, Heart*) are not included.
        """
        di = self._resolve(descriptor)
        start = self._first_term[di]
        end = self._first_term[di + 1] if di + 1 < len(self._first_term) else len(self._t_text)
        out: list[str] = []
        for ti in range(start, end):
            flags = self._t_flags[ti]
            if _F_LOOKUP in flags or (ti == start and not include_name):
                continue
            if (
                (not narrower and _F_NARROWER in flags)
                or (not trade_names and _F_TRADE in flags)
                or (not lab_numbers and _F_LAB in flags)
            ):
                continue
            out.append(self._t_text[ti])
        return out

    # ---- hierarchy -------------------------------------------------------------------------

    def descendants(
        self, descriptor: Descriptor | str, include_self: bool = True
    ) -> list[Descriptor]:
        """Everything under a descriptor in any of its trees ("explosion", as PubMed's ``[mh]``
        search does by default), in tree order, each once."""
        di = self._resolve(descriptor)
        trees = self._trees()
        out: dict[int, None] = {di: None} if include_self else {}
        for tn in self._descs[di].tree_numbers:
            prefix = tn + "."
            i = bisect_left(trees.numbers, prefix)
            while i < len(trees.numbers) and trees.numbers[i].startswith(prefix):
                out.setdefault(trees.desc[i], None)
                i += 1
        return [self._descs[i] for i in out]

    def children(self, descriptor: Descriptor | str) -> list[Descriptor]:
        """The descriptors one level below, in any of its trees."""
        di = self._resolve(descriptor)
        trees = self._trees()
        out: dict[int, None] = {}
        for tn in self._descs[di].tree_numbers:
            prefix = tn + "."
            i = bisect_left(trees.numbers, prefix)
            while i < len(trees.numbers) and trees.numbers[i].startswith(prefix):
                if "." not in trees.numbers[i][len(prefix) :]:
                    out.setdefault(trees.desc[i], None)
                i += 1
        return [self._descs[i] for i in out]

    def ancestors(
        self, descriptor: Descriptor | str, include_self: bool = False
    ) -> list[Descriptor]:
        """Everything above a descriptor in any of its trees, most general first."""
        di = self._resolve(descriptor)
        by_number = self._trees().by_number
        found: dict[int, int] = {}
        for tn in self._descs[di].tree_numbers:
            parts = tn.split(".")
            for depth in range(1, len(parts)):
                up = by_number.get(".".join(parts[:depth]))
                if up is not None and up != di:
                    found[up] = min(found.get(up, depth), depth)
        order = sorted(found, key=lambda i: (found[i], self._descs[i].tree_numbers))
        if include_self:
            order.append(di)
        return [self._descs[i] for i in order]

    def parents(self, descriptor: Descriptor | str) -> list[Descriptor]:
        """The descriptors one level above, in any of its trees."""
        di = self._resolve(descriptor)
        by_number = self._trees().by_number
        out: dict[int, None] = {}
        for tn in self._descs[di].tree_numbers:
            if "." in tn:
                up = by_number.get(tn.rsplit(".", 1)[0])
                if up is not None:
                    out.setdefault(up, None)
        return [self._descs[i] for i in out]

    def is_descendant(self, descriptor: Descriptor | str, ancestor: Descriptor | str) -> bool:
        """Whether ``descriptor`` is under ``ancestor`` (or is it) in some tree."""
        a = self._descs[self._resolve(ancestor)]
        d = self._descs[self._resolve(descriptor)]
        return a == d or _under(d.tree_numbers, a.tree_numbers)

    # ---- pharmacological actions -----------------------------------------------------------

    def _action_index(self) -> dict[str, list[int]]:
        if self._actions_ is None:
            with self._lock:
                if self._actions_ is None:
                    idx: dict[str, list[int]] = {}
                    for di, d in enumerate(self._descs):
                        for a in d.pharmacological_actions:
                            idx.setdefault(a, []).append(di)
                    self._actions_ = idx
        return self._actions_

    def drugs_with_action(
        self, action: Descriptor | str, *, explode: bool = True
    ) -> list[Descriptor]:
        """Descriptors with this pharmacological action (PubMed's ``[pa]``), such as every
        calcium channel blocker for ``"Calcium Channel Blockers"``.

        ``explode`` also takes the narrower actions under it in the tree (``Adrenergic
        beta-Antagonists`` then includes ``Adrenergic beta-1 Receptor Antagonists`` drugs).
        Supplementary concept records (non-descriptor chemicals) are not in the shipped data.
        """
        ai = self._resolve(action)
        actions = self.descendants(self._descs[ai]) if explode else [self._descs[ai]]
        idx = self._action_index()
        out: dict[int, None] = {}
        for a in actions:
            for di in idx.get(a.ui, ()):
                out.setdefault(di, None)
        return sorted((self._descs[i] for i in out), key=lambda d: d.name.casefold())

    def explode(
        self, descriptor: Descriptor | str, *, pharmacological_actions: bool = True
    ) -> list[Descriptor]:
        """What a PubMed search for a heading covers: its tree descendants (:meth:`descendants`)
        and, for a pharmacological-action heading, the drugs with that action or a narrower one
        (PubMed maps "estrogens" to ``Estrogens[mh] OR Estrogens[pa]``).

        The difference matters for drug classes: in MeSH 2024 *Estradiol* is not in the
        *Estrogens* tree (it sits under *Estradiol Congeners* and *Estranes*) but has the
        *Estrogens* action, so ``explode("Estrogens")`` includes it and ``descendants`` does not.
        """
        out = dict.fromkeys(self.descendants(descriptor))
        if pharmacological_actions:
            out.update(dict.fromkeys(self.drugs_with_action(descriptor)))
        return list(out)

    def actions_of(self, drug: Descriptor | str) -> list[Descriptor]:
        """The pharmacological actions of a drug, as descriptors."""
        d = self._descs[self._resolve(drug)]
        return [self._descs[self._by_ui[a]] for a in d.pharmacological_actions if a in self._by_ui]

    # ---- fuzzy search ----------------------------------------------------------------------

    def _fuzzy_choices(self) -> tuple[list[str], list[int]]:
        if self._fuzzy_ is None:
            with self._lock:
                if self._fuzzy_ is None:
                    choices: list[str] = []
                    owners: list[int] = []
                    seen: set[tuple[int, str]] = set()
                    for ti, text in enumerate(self._t_text):
                        if _F_LOOKUP in self._t_flags[ti]:
                            continue
                        c = " ".join(sorted(default_process(text).split()))
                        k = (self._t_desc[ti], c)
                        if c and k not in seen:
                            seen.add(k)
                            choices.append(c)
                            owners.append(ti)
                    self._fuzzy_ = (choices, owners)
        return self._fuzzy_

    def search(self, text: str, limit: int = 5, *, score_cutoff: float = 70.0) -> list[SearchHit]:
        """Descriptors whose name or an entry term resembles ``text``, best first.

        Exact, normalised and reordered matches come first with score 100; then fuzzy matches
        (rapidfuzz ratio on lower-cased words in sorted order, so typos and word order are
        forgiven) down to ``score_cutoff``. One hit per descriptor, with its best-matching term.
        """
        if limit <= 0 or not text or not text.strip():
            return []
        best: dict[int, SearchHit] = {}
        for ti, _ in self._lookup(text.strip()):
            di = self._t_desc[ti]
            if di not in best:
                best[di] = SearchHit(self._descs[di], 100.0, self._t_text[ti])
        query = " ".join(sorted(default_process(text).split()))
        if query and len(best) < limit:
            choices, owners = self._fuzzy_choices()
            results = process.extract(
                query,
                choices,
                scorer=fuzz.ratio,
                limit=max(4 * limit, limit + 20),
                score_cutoff=score_cutoff,
            )
            ranked = sorted(
                results,
                key=lambda r: (
                    -r[1],
                    owners[r[2]] != self._first_term[self._t_desc[owners[r[2]]]],
                    r[2],
                ),
            )
            for _choice, score, ci in ranked:
                ti = owners[ci]
                di = self._t_desc[ti]
                if di not in best:
                    best[di] = SearchHit(self._descs[di], float(score), self._t_text[ti])
        return list(best.values())[:limit]

    # ---- concepts in free text -------------------------------------------------------------

    def find_concepts(
        self,
        text: str,
        *,
        overlapping: bool = False,
        discontiguous: bool = True,
        max_gap: int = 2,
        generic: bool = False,
    ) -> list[Match]:
        """The MeSH concepts mentioned in ``text`` (a PICO element, a title, a sentence).

        Matches run over normalised words (see :func:`normalize_tokens`), and the reading that
        covers the most words with the fewest, longest matches wins: ``"heart attacks in older
        adults"`` gives *Myocardial Infarction* ("heart attacks") and *Adult* ("adults"), not
        *Heart*; ``"breast cancer screening"`` gives *Breast Neoplasms* and *Mass Screening*.
        Content words in another order match too (``"pain in the lower back"`` -> *Low Back
        Pain*), but not across ``and``/``or``/commas. Acronyms match in capitals only, and a word
        in capitals only matches the same word (``PET`` is not *Pets*). Matches stop at sentence
        and clause punctuation and brackets.

        With ``discontiguous`` (the default), a more specific heading whose words are split by up
        to ``max_gap`` other content words is also found, and replaces the general heading it
        refines: ``"postmenopausal women with osteoporosis"`` -> *Osteoporosis, Postmenopausal*
        (plus *Women*) rather than *Osteoporosis*; ``"breast and ovarian cancer"`` -> *Breast
        Neoplasms* and *Ovarian Neoplasms*. A word inside another multi-word match is only
        taken when the new heading refines that match, or when it is the head shared by a
        coordination ("X and Y *Z*"), so ``"heart disease and kidney failure"`` does not give
        *Heart Failure*.

        Single words that MeSH lists as entry terms but that clinical text nearly always uses in
        a general or another sense (:data:`GENERIC_WORDS`: "patients", "review", "index",
        "will", "surgery", ...) are skipped unless ``generic=True``; they still count inside
        longer terms. ``overlapping=True`` returns every candidate (nested and overlapping ones
        too) instead of the best reading. Matches are sorted by position.
        """
        t = _Text.of(text)
        n = len(t.toks)
        if n == 0:
            return []
        idx = self._index()
        cands: list[_Cand] = []
        for i in range(n):
            longest = max(idx.longest(t.keys[i]), idx.longest(t.plain[i]))
            for j in range(min(n, i + longest), i, -1):
                if t.clause[j - 1] != t.clause[i]:
                    continue
                if j - i == 1 and not generic and _fold(t.surfaces[i]) in GENERIC_WORDS:
                    continue
                hits = self._ordered_hits(t, i, j)
                if hits:
                    cands.append(_Cand(i, j, hits, "normalized", sum(t.content[i:j])))
        for i in range(n):
            if not t.content[i]:
                continue
            for j in range(i + 2, min(n, i + _MAX_BAG_WINDOW) + 1):
                if t.clause[j - 1] != t.clause[i] or t.joint[j - 1]:
                    break
                if not t.content[j - 1]:
                    continue
                words = [t.keys[k] for k in range(i, j) if t.content[k]]
                if len(words) > _MAX_BAG_WORDS:
                    break
                bag_hits = _hits(idx.bags, " ".join(sorted(words)))
                if not bag_hits:
                    continue
                span = range(i, j)
                hits = [
                    ti
                    for ti in self._rank(bag_hits, text[t.toks[i][1] : t.toks[j - 1][2]])
                    if self._case_ok(ti, t, span)
                ]
                if hits and not any(c.i == i and c.j == j and c.hits[0] in hits for c in cands):
                    cands.append(_Cand(i, j, hits, "reordered", len(words)))

        chosen = cands if overlapping else _best_reading(cands, n)
        found = self._discontiguous(t, chosen, max_gap) if discontiguous else []

        matches: list[Match] = []
        dropped: set[int] = set()
        for combo, ti in found:
            d = self._descs[self._t_desc[ti]]
            if not overlapping:
                dropped.update(
                    ci
                    for ci, c in enumerate(chosen)
                    if any(c.i <= p < c.j for p in combo) and self._superseded(c, d)
                )
            start, end = t.toks[combo[0]][1], t.toks[combo[-1]][2]
            matches.append(
                Match(
                    descriptor=d,
                    start=start,
                    end=end,
                    text=text[start:end],
                    matched_term=self._t_text[ti],
                    kind="discontiguous",
                    spans=tuple((t.toks[p][1], t.toks[p][2]) for p in combo),
                )
            )
        for ci, c in enumerate(chosen):
            if ci in dropped:
                continue
            start, end = t.toks[c.i][1], t.toks[c.j - 1][2]
            span_text = text[start:end]
            ti = c.hits[0]
            kind = c.kind
            if kind == "normalized" and _surface(span_text) == _surface(self._t_text[ti]):
                kind = "exact"
            matches.append(
                Match(
                    descriptor=self._descs[self._t_desc[ti]],
                    start=start,
                    end=end,
                    text=span_text,
                    matched_term=self._t_text[ti],
                    kind=kind,
                    spans=((start, end),),
                    alternatives=self._alternatives(c.hits),
                )
            )
        matches.sort(key=lambda m: (m.start, -m.end, m.descriptor.ui))
        return matches

    def _case_ok(self, ti: int, t: _Text, positions: Iterable[int]) -> bool:
        """Acronyms in a term (``AIDS``) must be in capitals in the text, and a word in capitals
        in the text must be a word of the term ("PET" is not "Pets", "BIA" not "Bias")."""
        term_tokens: list[str] | None = None
        if _F_CASE in self._t_flags[ti]:
            term_tokens = _TOKEN_RE.findall(self._t_text[ti])
            surfaces = {t.surfaces[p] for p in positions}
            if not all(w in surfaces for w in term_tokens if _is_acronym(w)):
                return False
        caps = [t.surfaces[p] for p in positions if t.protected[p]]
        if caps:
            if term_tokens is None:
                term_tokens = _TOKEN_RE.findall(self._t_text[ti])
            folded = {_fold(w) for w in term_tokens}
            return all(_fold(c) in folded for c in caps)
        return True

    def _ordered_hits(self, t: _Text, i: int, j: int) -> list[int]:
        idx = self._index()
        hits = _hits(idx.ordered, " ".join(t.keys[i:j]))
        if not hits and t.plain[i:j] != t.keys[i:j]:
            hits = _hits(idx.ordered, " ".join(t.plain[i:j]))
        if not hits:
            return []
        span = range(i, j)
        return [
            ti for ti in self._rank(hits, " ".join(t.surfaces[i:j])) if self._case_ok(ti, t, span)
        ]

    def _alternatives(self, hits: list[int]) -> tuple[Descriptor, ...]:
        first = self._t_desc[hits[0]]
        seen: dict[int, None] = {}
        for ti in hits[1:]:
            di = self._t_desc[ti]
            if di != first:
                seen.setdefault(di, None)
        return tuple(self._descs[di] for di in seen)

    def _discontiguous(
        self, t: _Text, chosen: list[_Cand], max_gap: int
    ) -> list[tuple[tuple[int, ...], int]]:
        """Headings whose content words appear in the text with other content words between
        them: ``(token positions, term index)`` pairs, larger ones first."""
        idx = self._index()
        positions = [i for i in range(len(t.toks)) if t.content[i]]
        cover: dict[int, int] = {}  # token -> the chosen match over it (the longest)
        for ci, c in sorted(enumerate(chosen), key=lambda x: x[1].i - x[1].j):
            for k in range(c.i, c.j):
                cover.setdefault(k, ci)
        found: list[tuple[tuple[int, ...], int]] = []
        for size in (4, 3, 2):
            for a in range(len(positions)):
                window = positions[a + 1 : a + size + max_gap]
                for rest in combinations(window, size - 1):
                    combo = (positions[a], *rest)
                    # Adjacent content words are the contiguous matcher's job.
                    if (
                        t.clause[combo[-1]] != t.clause[combo[0]]
                        or positions.index(combo[-1]) - a == size - 1
                    ):
                        continue
                    hits = _hits(idx.bags, " ".join(sorted(t.keys[p] for p in combo)))
                    if not hits or any(set(combo) < set(f[0]) for f in found):
                        continue
                    surf = " ".join(t.surfaces[p] for p in combo)
                    for ti in self._rank(hits, surf):
                        if self._case_ok(ti, t, combo) and self._may_take(
                            ti, combo, t, cover, chosen
                        ):
                            found.append((combo, ti))
                            break
        return found

    def _may_take(
        self,
        ti: int,
        combo: tuple[int, ...],
        t: _Text,
        cover: dict[int, int],
        chosen: list[_Cand],
    ) -> bool:
        """Whether a discontiguous heading may take these words (see :meth:`find_concepts`)."""
        first, last = combo[0], combo[-1]
        joints = [k for k in range(first + 1, last + 1) if t.joint[k]]
        if joints:
            # Only "X and Y Z" -> "X Z": the words skipped must be Y's, after the coordination.
            skipped = (k for k in range(first + 1, last) if t.content[k] and k not in combo)
            if any(k < joints[-1] for k in skipped):
                return False
        d = self._descs[self._t_desc[ti]]
        refines = False
        lenders: set[int] = set()
        for p in combo:
            ci = cover.get(p)
            if ci is None:
                continue
            c = chosen[ci]
            other = self._descs[self._t_desc[c.hits[0]]]
            if other == d:
                return False  # already found, contiguously
            if c.j - c.i == 1:
                continue
            if _under(d.tree_numbers, other.tree_numbers):
                refines = True
            else:
                lenders.add(ci)
        if not lenders:
            return True
        # "breast and ovarian cancer": Breast Neoplasms may borrow "cancer", the head of
        # "ovarian cancer", across the coordination.
        if refines or len(lenders) != 1 or not joints:
            return False
        lender = chosen[lenders.pop()]
        return lender.j - 1 == last and all(not (lender.i <= p < lender.j) for p in combo[:-1])

    def _superseded(self, c: _Cand, d: Descriptor) -> bool:
        """Whether a contiguous match gives way to the discontiguous heading ``d`` over it."""
        other = self._descs[self._t_desc[c.hits[0]]]
        return c.j - c.i == 1 or _under(d.tree_numbers, other.tree_numbers)


class _Text(NamedTuple):
    """A text cut into words, with what matching needs to know about each."""

    toks: list[tuple[str, int, int]]  # (surface, start, end)
    surfaces: list[str]
    keys: list[str]  # normalised
    plain: list[str]  # normalised as if not an acronym ("ESTROGENS" in capitals)
    protected: list[bool]  # an acronym: in capitals in mixed-case text
    content: list[bool]  # not a stopword
    clause: list[int]  # clause number (a match never spans two)
    joint: list[bool]  # joined to the previous word by "and", "or", ",", "/"...

    @classmethod
    def of(cls, text: str) -> _Text:
        toks = [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
        n = len(toks)
        surfaces = [tok[0] for tok in toks]
        has_lower = any(c.islower() for c in text)
        protected = [_protected(s, has_lower, n == 1) for s in surfaces]
        plain = [_canonical(_fold(s)) for s in surfaces]
        keys = [_fold(s) if p else k for s, p, k in zip(surfaces, protected, plain, strict=True)]
        clause = [0] * n
        joint = [False] * n
        for k in range(1, n):
            gap = text[toks[k - 1][2] : toks[k][1]]
            clause[k] = clause[k - 1] + (1 if _BREAK_RE.search(gap) else 0)
            joint[k] = (
                keys[k] in _COORDINATORS
                or keys[k - 1] in _COORDINATORS
                or _JOINT_RE.search(gap) is not None
            )
        content = [k not in STOPWORDS for k in keys]
        return cls(toks, surfaces, keys, plain, protected, content, clause, joint)


class _Cand(NamedTuple):
    i: int  # first token
    j: int  # one past the last token
    hits: list[int]  # term indexes, best first
    kind: MatchKind
    weight: int  # content words covered


def _best_reading(cands: list[_Cand], n: int) -> list[_Cand]:
    """Non-overlapping candidates covering the most content words, then with the fewest matches,
    then with the most in their own word order; ties go to the longest match further left."""
    by_start: list[list[_Cand]] = [[] for _ in range(n)]
    for c in cands:
        by_start[c.i].append(c)
    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)
    choice: list[_Cand | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i] = best[i + 1]
        for c in sorted(by_start[i], key=lambda c: (c.i - c.j, c.kind != "normalized")):
            rest = best[c.j]
            score = (rest[0] + c.weight, rest[1] - 1, rest[2] + (c.kind == "normalized"))
            if score > best[i]:
                best[i] = score
                choice[i] = c
    out = []
    i = 0
    while i < n:
        picked = choice[i]
        if picked is None:
            i += 1
        else:
            out.append(picked)
            i = picked.j
    return out


def _is_acronym(token: str) -> bool:
    return len(token) >= 2 and token.isupper()


def _under(trees: Iterable[str], ancestor_trees: Iterable[str]) -> bool:
    anc = tuple(a + "." for a in ancestor_trees)
    return bool(anc) and any(t.startswith(anc) for t in trees)


def _deinvert(term: str) -> str:
    """``"Leukemia, Myeloid, Acute"`` -> ``"Acute Myeloid Leukemia"`` (MeSH's inverted order
    undone); the term itself when it has no ``", "``."""
    parts = term.split(", ")
    return " ".join(reversed(parts)) if 1 < len(parts) <= 3 else term
