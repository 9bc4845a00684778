"""Classic search query generation: a PICO and/or eligibility criteria to a PubMed Boolean query.

The method is the one an information specialist follows, with MeSH as the knowledge source:

1. **Concepts.** Each PICO element (and each inclusion criterion) is cut into segments at line
   breaks, sentence ends, ``;`` and ``,``; :meth:`Mesh.find_concepts` finds the MeSH descriptors
   in each segment. Descriptors that do not name a searchable topic are dropped: persons
   (``Adult``, ``Women``: age and sex limits cost recall and are better applied at screening),
   publication characteristics, study-design and research-method headings, disciplines,
   organisations, geography, and the top heading of any tree (``Therapeutics``, ``Drugs``). A
   segment of two or more words that MeSH does not recognise is looked up as a subset of a MeSH
   term's words (``beta blockers`` -> *beta-Blockers, Adrenergic* -> *Adrenergic
   beta-Antagonists*).
2. **Terms per concept.** ``"Descriptor"[mh]`` (PubMed explodes it to the narrower headings);
   the descriptor's name and entry terms as ``[tiab]`` (inverted forms put back in order,
   manufacturers' codes, trade names and chemical names left out, truncation ``*`` on the last
   word where the stem keeps five letters or more); the names of its direct narrower headings
   as ``[tiab]`` (``[mh]`` explosion reaches records indexed with them, the words reach records
   not yet indexed). A **pharmacological action** (a drug class: ACE inhibitors, calcium channel
   blockers, estrogens...) adds every drug with that action or a narrower one
   (:meth:`Mesh.drugs_with_action`): ``"Drug"[mh]`` and the drug's name without its salt
   (``Quetiapine Fumarate`` -> ``quetiapine``) as ``[tiab]``; and the therapy headings named
   after the class (``Estrogens`` -> *Estrogen Replacement Therapy*). Short segments (a PICO
   element as a person types it) also give their own words as a ``[tiab]`` phrase.
3. **Facets.** The terms of one element are ORed into one facet. Facets are combined as
   ``(P) AND (I) [AND (C)]``:

   * the **comparison** is ANDed only when it names a specific active intervention; placebo,
     usual or standard care and no treatment are left out (trials say "placebo" in many ways,
     and comparator-free designs would be lost);
   * the **outcome** is never ANDed (recall first: abstracts often do not name every outcome
     a review needs; Cochrane Handbook, chapter 4, advises against outcome facets); its concepts
     are reported in ``notes`` only; it is used as a facet only when it is the sole element;
   * **criteria** concepts join the facet their category belongs to: conditions and organisms
     the population, drugs and procedures the intervention; exclusion criteria are skipped;
   * an element such as ``ADHD drugs`` (a condition plus a generic drug word and no named drug)
     becomes the condition facet, because MeSH has no list of the drugs for a condition; the
     drug restriction is left to screening (``notes`` says so).

4. **Filter.** Optionally the Cochrane Highly Sensitive Search Strategy for randomized trials
   (sensitivity-maximizing version, 2008 revision, PubMed format; Lefebvre C, Manheimer E,
   Glanville J. Chapter 6: Searching for studies. In: Higgins JPT, Green S (eds). *Cochrane
   Handbook for Systematic Reviews of Interventions* version 5.1.0, 2011, box 6.4.b; kept in
   the Technical Supplement to chapter 4 of version 6)::

       #1 randomized controlled trial [pt]
       #2 controlled clinical trial [pt]
       #3 randomized [tiab]
       #4 placebo [tiab]
       #5 drug therapy [sh]
       #6 randomly [tiab]
       #7 trial [tiab]
       #8 groups [tiab]
       #9 #1 OR #2 OR #3 OR #4 OR #5 OR #6 OR #7 OR #8
       #10 animals [mh] NOT humans [mh]
       #11 #9 NOT #10

Every term of the query is listed in :attr:`GeneratedQuery.terms` with its provenance
(:class:`TermSource`). The query is split with :func:`~leads.search.query.split_query` so that
each sub-query fits PubMed's length limit; their results together are the query's. The result is
deterministic: the same input gives the same query, term for term.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from leads.engines.classic import implements
from leads.errors import LeadsError
from leads.search.query import (
    And,
    CtgovQuery,
    Node,
    Not,
    Or,
    Term,
    iter_leaves,
    split_query,
    to_ctgov,
    to_pubmed,
)
from leads.tasks.search_query import QueryInput, QueryOutput
from leads.vocab.mesh import GENERIC_WORDS, STOPWORDS, Descriptor, Mesh, normalize_tokens

__all__ = [
    "GENERATOR_VERSION",
    "RCT_FILTER",
    "Element",
    "GeneratedQuery",
    "GenerationOptions",
    "TermKind",
    "TermSource",
    "classic_search_query",
    "generate_query",
    "rct_filter_node",
    "read_criteria",
]

GENERATOR_VERSION = "1"

#: Where a term came from: a PICO element, the criteria, the RCT filter, or an LLM's query.
Element = Literal[
    "population", "intervention", "comparison", "outcome", "criteria", "filter", "model"
]
#: How a term was obtained.
#:
#: ``mesh``: the descriptor found in the input (``[mh]``); ``entry_term``: its name or an entry
#: term (``[tiab]``); ``narrower``: the name of a narrower descriptor (``[tiab]``); ``drug``: a
#: drug with the pharmacological action found in the input (``[mh]`` and ``[tiab]``);
#: ``related_therapy``: a therapy heading named after the drug class; ``free_text``: words of
#: the input itself; ``filter``: the RCT filter; ``model``: a term an LLM engine wrote.
TermKind = Literal[
    "mesh", "entry_term", "narrower", "drug", "related_therapy", "free_text", "filter", "model"
]


@dataclass(frozen=True)
class TermSource:
    """Where one term of a generated query came from.

    ``term`` is the term as it appears in the query (PubMed syntax); ``element`` the PICO element
    (or ``criteria``/``filter``) whose text produced it and ``criterion`` the criterion's 0-based
    index; ``facet`` the AND group it is in; ``kind`` how it was obtained (:data:`TermKind`);
    ``descriptor``/``descriptor_ui`` the MeSH descriptor behind it (for a ``drug``, the drug);
    ``matched`` the words of the input that led to it; ``via`` the intermediate step (the
    pharmacological action of a drug, the broader heading of a narrower one).
    """

    term: str
    element: Element
    facet: str
    kind: TermKind
    descriptor: str | None = None
    descriptor_ui: str | None = None
    matched: str | None = None
    via: str | None = None
    criterion: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationOptions:
    """Knobs of :func:`generate_query`; the defaults favour recall."""

    #: AND the Cochrane highly sensitive RCT filter (:data:`RCT_FILTER`).
    rct_filter: bool = False
    #: Longest sub-query (characters of PubMed syntax) for :func:`split_query`.
    max_length: int = 4000
    #: Add the drugs of a pharmacological action (drug class).
    drug_members: bool = True
    #: Add trade names (brand names) of drugs and classes as ``[tiab]``.
    trade_names: bool = False
    #: Add the names of direct narrower descriptors as ``[tiab]`` (at most this many; 0 = none).
    max_narrower: int = 15
    #: Use the outcome as a facet (ANDed) even when other elements are given.
    outcome_facet: bool = False


@dataclass(frozen=True)
class GeneratedQuery:
    """A generated query: the PubMed text, its AST, its sub-queries and each term's source.

    ``subqueries`` are PubMed strings, each at most the ``max_length`` asked for when that is
    possible (see :func:`split_query`), whose results together are the query's. ``notes`` say
    what was left out and why. ``facets`` names the AND groups in order.
    """

    query: str
    node: Node
    subqueries: list[str]
    terms: list[TermSource]
    notes: list[str] = field(default_factory=list)
    facets: list[str] = field(default_factory=list)
    #: The query without the RCT filter (what a trial registry is searched with).
    topic_node: Node | None = None
    max_length: int = 4000

    def ctgov(self) -> list[CtgovQuery]:
        """ClinicalTrials.gov API v2 parameters, one per sub-query of the topic query (the RCT
        filter is left out: a registry holds trials only)."""
        node = self.topic_node if self.topic_node is not None else self.node
        return [to_ctgov(part) for part in split_query(node, max_length=self.max_length)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "subqueries": list(self.subqueries),
            "terms": [t.to_dict() for t in self.terms],
            "notes": list(self.notes),
            "facets": list(self.facets),
        }


# --------------------------------------------------------------------------------------------
# The RCT filter

_HSSS_TERMS: tuple[tuple[str, str], ...] = (
    ("randomized controlled trial", "pt"),
    ("controlled clinical trial", "pt"),
    ("randomized", "tiab"),
    ("placebo", "tiab"),
    ("drug therapy", "sh"),
    ("randomly", "tiab"),
    ("trial", "tiab"),
    ("groups", "tiab"),
)


def rct_filter_node() -> Node:
    """The Cochrane HSSS, sensitivity-maximizing version (2008), PubMed format, as an AST."""
    hits = Or(tuple(Term(text, field=tag, phrase=" " in text) for text, tag in _HSSS_TERMS))
    animals_only = Not(Term("animals", field="mh"), Term("humans", field="mh"))
    return Not(hits, animals_only)


#: The filter as PubMed text.
RCT_FILTER = to_pubmed(rct_filter_node())


# --------------------------------------------------------------------------------------------
# Concept selection

# Tree branches whose descriptors never make a topic facet.
_DENY_TREES = (
    "M01",  # persons: age groups, sex, patients
    "V",  # publication characteristics
    "E05.318",  # epidemiologic methods: study designs, risk, statistics
    "E05.581",  # methods
    "G17",  # mathematical concepts
    "H",  # disciplines and occupations
    "I",  # anthropology, education, sociology
    "J",  # technology, industry, agriculture
    "K",  # humanities
    "L",  # information science
    "N",  # health care
    "Z",  # geographicals
)
# In segments that are sentences (protocol or criteria prose) only these branches count: the
# rest (anatomy, phenomena, behaviour...) is too often incidental there.
_PROSE_TREES = ("B01", "B03", "B04", "C", "D", "E01", "E02", "E03", "E04", "E07", "F03")
# Routing of criteria concepts to facets.
_POPULATION_TREES = ("A", "B", "C", "F03", "G")
_INTERVENTION_TREES = ("D", "E")
# Descriptors too general to be a facet although not at the top of a tree.
_GENERIC_UIS = frozenset(
    {
        "D004358",  # Drug Therapy
        "D004364",  # Pharmaceutical Preparations
        "D013812",  # Therapeutics
        "D003933",  # Diagnosis
        "D004194",  # Disease
        "D020969",  # Disease Attributes
        "D010919",  # Placebos (handled as a generic comparator)
        "D059039",  # Standard of Care
    }
)
_PLACEBO_WORDS = frozenset({
    "placebo", "placebos", "sham", "usual", "standard", "care", "no", "nothing", "treatment",
    "control", "controls", "conventional", "routine", "waiting", "list", "observation",
})
_DRUG_WORDS = frozenset({
    "drug", "drugs", "medication", "medications", "medicine", "medicines", "pharmacotherapy",
    "pharmacotherapies", "pharmacological", "pharmacologic", "agents",
})
_SALT_WORDS = frozenset({
    "acetate", "besylate", "bitartrate", "bromide", "calcium", "chloride", "citrate",
    "dihydrochloride", "dimesylate", "disodium", "dipropionate", "fumarate", "hemifumarate",
    "hydrobromide", "hydrochloride", "hyclate", "lactate", "maleate", "magnesium", "malate",
    "mesylate", "monohydrate", "napsylate", "nitrate", "oxalate", "pamoate", "palmitate",
    "phosphate", "potassium", "propionate", "sodium", "succinate", "sulfate", "tartrate",
    "tosylate", "tromethamine", "valerate", "hydrate", "anhydrous",
})
_INVARIANT_S = frozenset({
    "diabetes", "herpes", "rabies", "scabies", "series", "species", "caries", "mumps", "measles",
    "rickets", "lens", "news", "physics", "genetics", "diagnostics", "therapeutics", "economics",
    "statistics", "ethics",
})
_BAD_TERM_CHARS = re.compile(r"[\"“”\[\]*:#$?()<>{}=;]")
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Concept segments end at line breaks, sentence ends and semicolons (find_concepts itself does not
# cross commas or coordinations); free-text phrases also end at commas, brackets and "and"/"or".
_SEGMENT_RE = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z(])|;")
_PHRASE_RE = re.compile(r"[,()\[\]/]|\s+(?:and|or|vs\.?|versus)\s+", re.IGNORECASE)
_EXCLUSION_RE = re.compile(r"\bexclu(?:de|ded|des|ding|sion)\b", re.IGNORECASE)
_SHORT_SEGMENT = 6  # content words: longer segments are prose


def _under(d: Descriptor, prefixes: Iterable[str]) -> bool:
    prefixes = tuple(prefixes)
    return any(t.startswith(p) for t in d.tree_numbers for p in prefixes)


def _usable(d: Descriptor, prose: bool) -> bool:
    if d.ui in _GENERIC_UIS or not d.tree_numbers:
        return False
    if all("." not in t for t in d.tree_numbers):
        return False  # the top heading of a tree
    if all(any(t.startswith(p) for p in _DENY_TREES) for t in d.tree_numbers):
        return False
    return not prose or _under(d, _PROSE_TREES)


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text) if w.casefold() not in STOPWORDS]


def _segments(text: str, pattern: re.Pattern[str] = _SEGMENT_RE) -> list[str]:
    out = []
    for part in pattern.split(text):
        part = part.strip(" \t.:-–—")
        if part and _content_words(part):
            out.append(part)
    return out


def _is_acronym(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


# --------------------------------------------------------------------------------------------
# Term text


_QUALIFIER_RE = re.compile(r"\s*\((?:USP|INN|BAN|DCF|JAN|NF)\)\s*$", re.IGNORECASE)


def _deinvert(term: str) -> str:
    """``Inhibitors, ACE`` -> ``ACE Inhibitors``; ``Estrogens, Conjugated (USP)`` ->
    ``Conjugated Estrogens`` (MeSH's inverted forms and pharmacopoeia qualifiers)."""
    term = _QUALIFIER_RE.sub("", term)
    if term.count(",") != 1:
        return term
    head, tail = (p.strip() for p in term.split(","))
    if not head or not tail:
        return term
    return f"{tail} {head}"


def _stem(word: str) -> str | None:
    """``word`` cut to its truncation stem (``Inhibitors`` -> ``Inhibitor``), or ``None`` when
    truncation is unsafe (acronyms, mixed case, short stems)."""
    prefix, _, last = word.rpartition("-")
    if not last.isalpha() or _is_acronym(last) or any(c.isupper() for c in last[1:]):
        return None
    w = last.casefold()
    if w in _INVARIANT_S or w.endswith(("us", "is", "ss")):
        return None  # mellitus, sepsis, diabetes: no plural to catch
    if w.endswith("ies"):
        cut = 3
    elif w.endswith(("sses", "shes", "ches", "xes")):
        cut = 2
    elif w.endswith(("s", "y")):
        cut = 1
    else:
        cut = 0
    if cut == 0 and not normalize_tokens(last)[0].startswith(w[:-1]):
        return None  # an irregular plural ("women"): its singular is not a variant of the stem
    stem = last[: len(last) - cut]
    # Five letters keep the variants close to the word (PubMed itself needs four).
    if len(stem) < 5:
        return None
    return f"{prefix}-{stem}" if prefix else stem


def _tiab_term(text: str, *, truncate: bool) -> Term | None:
    """A ``[tiab]`` term for ``text``, or ``None`` when the text cannot be a good search term."""
    text = " ".join(text.split())
    if not text or _BAD_TERM_CHARS.search(text) or "," in text:
        return None
    words = text.split(" ")
    if len(words) > 6 or any(len(w) > 40 for w in words):
        return None  # chemical names and descriptions, not search words
    if len(words) == 1:
        w = words[0]
        if len(w) < 3 or w.casefold() in GENERIC_WORDS or w.casefold() in STOPWORDS:
            return None
    if sum(c.isdigit() for c in text) > 2:
        return None  # codes
    if any(w.casefold() in {"and", "or", "not"} for w in words):
        return Term(text, field="tiab", phrase=True)
    stem = _stem(words[-1]) if truncate else None
    if stem is not None:
        text = " ".join([*words[:-1], stem])
    return Term(text, field="tiab", phrase=len(words) > 1 or "-" in text, truncated=stem is not None)


def _key(term: Term) -> tuple[str, str, bool]:
    return (term.field or "", " ".join(normalize_tokens(term.text.replace("-", " "))),
            term.truncated)


def _base_drug_name(name: str) -> str | None:
    """``Quetiapine Fumarate`` -> ``Quetiapine``; ``None`` when nothing is to strip or what is
    left is itself a salt word (``Magnesium Sulfate`` stays whole)."""
    words = name.split(" ")
    kept = list(words)
    while len(kept) > 1 and kept[-1].casefold() in _SALT_WORDS:
        kept.pop()
    if len(kept) == len(words) or (len(kept) == 1 and kept[0].casefold() in _SALT_WORDS):
        return None
    return " ".join(kept)


# --------------------------------------------------------------------------------------------
# Generation


@dataclass
class _Facet:
    name: str
    terms: dict[tuple[str, str, bool], tuple[Term, TermSource]] = field(default_factory=dict)

    def add(self, term: Term | None, source: dict[str, Any]) -> None:
        if term is None:
            return
        key = _key(term)
        if key in self.terms:
            return
        # A truncated term covers the same words untruncated.
        if not term.truncated and (key[0], key[1], True) in self.terms:
            return
        rendered = to_pubmed(term)
        self.terms[key] = (term, TermSource(term=rendered, facet=self.name, **source))

    def node(self) -> Node | None:
        items = [t for t, _ in self.terms.values()]
        if not items:
            return None
        return items[0] if len(items) == 1 else Or(tuple(items))


@dataclass(frozen=True)
class _Concept:
    descriptor: Descriptor
    matched: str
    element: str
    criterion: int | None = None
    #: Found in a sentence of prose (protocol, criteria) rather than a short PICO phrase: not
    #: expanded to drugs or narrower headings, where one stray concept would flood the facet.
    prose: bool = False


class _Generator:
    def __init__(self, mesh: Mesh, options: GenerationOptions) -> None:
        self.mesh = mesh
        self.options = options
        self.notes: list[str] = []

    # ---- concepts ----------------------------------------------------------------------

    def concepts(self, text: str, element: str, criterion: int | None = None
                 ) -> tuple[list[_Concept], list[str]]:
        """The usable concepts of ``text`` and its short free-text segments."""
        found: dict[str, _Concept] = {}
        free: list[str] = []
        for segment in _segments(text):
            prose = len(_content_words(segment)) > _SHORT_SEGMENT
            persons: list[tuple[int, int]] = []
            for m in self.mesh.find_concepts(segment):
                if prose and _is_acronym(m.text) and len(m.text) <= 5:
                    continue  # prose defines its own abbreviations ("TIC" is not Tics)
                if _usable(m.descriptor, prose):
                    found.setdefault(m.descriptor.ui,
                                     _Concept(m.descriptor, m.text, element, criterion, prose))
                elif _under(m.descriptor, ("M01",)):
                    persons.extend(m.spans)
            if prose:
                continue
            # "postmenopausal women" is searched as "postmenopausal": the person word adds
            # nothing but missed records.
            if persons:
                kept = list(segment)
                for start, end in persons:
                    kept[start:end] = " " * (end - start)
                segment = "".join(kept)
            for phrase in _segments(segment, _PHRASE_RE):
                phrase = _trim(phrase)
                if not phrase:
                    continue
                free.append(phrase)
                if not self.mesh.find_concepts(phrase):
                    d = _subset_lookup(self.mesh, phrase)
                    if d is not None and _usable(d, prose):
                        found.setdefault(d.ui, _Concept(d, phrase, element, criterion))
        return list(found.values()), free

    # ---- terms -------------------------------------------------------------------------

    def add_concept(self, facet: _Facet, c: _Concept) -> None:
        d = c.descriptor
        base = {"element": c.element, "criterion": c.criterion, "matched": c.matched}
        facet.add(Term(d.name, field="mh", phrase=True),
                  {**base, "kind": "mesh", "descriptor": d.name, "descriptor_ui": d.ui})
        # A chemical's names are exact; class and disease names vary in number.
        chemical = _under(d, ("D",)) and not _under(d, ("D27",))
        for text in self.synonyms(d):
            facet.add(_tiab_term(text, truncate=not chemical),
                      {**base, "kind": "entry_term", "descriptor": d.name, "descriptor_ui": d.ui})
        expand = not c.prose
        members = self.mesh.drugs_with_action(d) if self.options.drug_members and expand else []
        if members:
            for drug in members:
                src = {**base, "kind": "drug", "descriptor": drug.name, "descriptor_ui": drug.ui,
                       "via": d.name}
                facet.add(Term(drug.name, field="mh", phrase=True), src)
                for text in self.drug_names(drug):
                    facet.add(_tiab_term(text, truncate=False), src)
            for therapy in _related_therapies(self.mesh, d):
                src = {**base, "kind": "related_therapy", "descriptor": therapy.name,
                       "descriptor_ui": therapy.ui, "via": d.name}
                facet.add(Term(therapy.name, field="mh", phrase=True), src)
                for text in self.synonyms(therapy):
                    facet.add(_tiab_term(text, truncate=True), src)
        elif expand and self.options.max_narrower and not _under(d, ("D",)):
            children = self.mesh.children(d)
            if len(children) <= self.options.max_narrower:
                for child in children:
                    facet.add(_tiab_term(_deinvert(child.name), truncate=True),
                              {**base, "kind": "narrower", "descriptor": child.name,
                               "descriptor_ui": child.ui, "via": d.name})

    def synonyms(self, d: Descriptor) -> list[str]:
        names = [d.name, *self.mesh.entry_terms(d, trade_names=self.options.trade_names,
                                                lab_numbers=False)]
        return [_deinvert(n) for n in names]

    def drug_names(self, drug: Descriptor) -> list[str]:
        if drug.name.endswith("Drug Combination"):
            return []  # its components are searched by their own names
        name = _deinvert(drug.name)
        names = [name]
        base = _base_drug_name(name)
        if base is not None:
            names.append(base)
        # Strict synonyms that are one word (INN variants such as "Glibenclamide").
        for term in self.mesh.entry_terms(drug, narrower=False, trade_names=self.options.trade_names,
                                          lab_numbers=False):
            if " " not in term and "-" not in term and term.isalpha():
                names.append(term)
        return names

    # ---- the query ---------------------------------------------------------------------

    def run(self, inp: QueryInput) -> GeneratedQuery:
        facets: dict[str, _Facet] = {name: _Facet(name) for name in
                                     ("population", "intervention", "comparison", "outcome")}
        pending: dict[str, list[_Concept]] = {name: [] for name in facets}
        free: dict[str, list[tuple[str, str]]] = {name: [] for name in facets}

        for element in ("population", "intervention", "comparison", "outcome"):
            text = getattr(inp, element)
            if not text:
                continue
            concepts, phrases = self.concepts(text, element)
            target = element
            if element in ("intervention", "comparison") and _drugs_for_condition(text, concepts):
                conditions = [c for c in concepts if _under(c.descriptor, ("C", "F03"))]
                pending["population"].extend(conditions)
                concepts = [c for c in concepts if c not in conditions]
                self.notes.append(
                    f"{element} {text!r}: a condition and a generic drug word; MeSH lists no drugs "
                    "for a condition, so the condition is searched and the drug restriction is "
                    "left to screening"
                )
                free["population"].extend((_without_drug_words(p), element) for p in phrases)
                phrases = []
            if element == "comparison" and _generic_comparator(text, concepts):
                self.notes.append(f"comparison {text!r}: a generic comparator, not searched")
                continue
            pending[target].extend(concepts)
            free[target].extend((p, element) for p in phrases)

        for index, criterion in enumerate(inp.criteria):
            for sentence in _sentences(criterion):
                if _EXCLUSION_RE.search(sentence):
                    continue
                concepts, _ = self.concepts(sentence, "criteria", index)
                for c in concepts:
                    if _under(c.descriptor, _INTERVENTION_TREES):
                        pending["intervention"].append(c)
                    elif _under(c.descriptor, _POPULATION_TREES):
                        pending["population"].append(c)

        for name, concepts in pending.items():
            for c in concepts:
                self.add_concept(facets[name], c)
            for phrase, element in free[name]:
                facets[name].add(_tiab_term(phrase, truncate=True),
                                 {"element": element, "kind": "free_text", "matched": phrase})

        order = ["population", "intervention", "comparison"]
        used = [name for name in order if facets[name].terms]
        if facets["outcome"].terms:
            if not used or self.options.outcome_facet:
                used.append("outcome")
            else:
                names = sorted({s.descriptor for _, s in facets["outcome"].terms.values()
                                if s.descriptor and s.kind == "mesh"})
                self.notes.append(
                    "outcome not ANDed (recall first)"
                    + (f"; its concepts: {', '.join(names)}" if names else "")
                )
        if not used:
            raise LeadsError(
                "no searchable concept found in the input: give a population, intervention or "
                "condition in words MeSH knows, or plain keywords"
            )
        parts = [part for name in used if (part := facets[name].node()) is not None]
        topic: Node = parts[0] if len(parts) == 1 else And(tuple(parts))
        node = topic
        terms = [s for name in used for _, s in facets[name].terms.values()]
        if self.options.rct_filter:
            node = And((topic, rct_filter_node()))
            seen = set()
            for leaf in iter_leaves(rct_filter_node()):
                rendered = to_pubmed(leaf)
                if rendered not in seen:
                    seen.add(rendered)
                    terms.append(TermSource(term=rendered, element="filter", facet="rct_filter",
                                            kind="filter", via="Cochrane HSSS 2008 (PubMed)"))
        query = to_pubmed(node)
        subqueries = [to_pubmed(n) for n in split_query(node, max_length=self.options.max_length)]
        return GeneratedQuery(
            query=query, node=node, subqueries=subqueries, terms=terms, notes=self.notes,
            facets=used + (["rct_filter"] if self.options.rct_filter else []),
            topic_node=topic, max_length=self.options.max_length,
        )


def _trim(segment: str) -> str:
    """A segment without the function and generic words at its ends."""
    words = segment.split()
    while words and (_bare(words[0]) in STOPWORDS or _bare(words[0]) in GENERIC_WORDS):
        words.pop(0)
    while words and (_bare(words[-1]) in STOPWORDS or _bare(words[-1]) in GENERIC_WORDS):
        words.pop()
    return " ".join(w.strip(".:'’") for w in words)


def _bare(word: str) -> str:
    return word.strip(".,:;'’").casefold()


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _drugs_for_condition(text: str, concepts: Sequence[_Concept]) -> bool:
    words = {w.casefold() for w in _WORD_RE.findall(text)}
    if not words & _DRUG_WORDS:
        return False
    has_condition = any(_under(c.descriptor, ("C", "F03")) for c in concepts)
    has_drug = any(_under(c.descriptor, ("D",)) for c in concepts)
    return has_condition and not has_drug


def _without_drug_words(phrase: str) -> str:
    return " ".join(w for w in phrase.split() if _bare(w) not in _DRUG_WORDS)


def _generic_comparator(text: str, concepts: Sequence[_Concept]) -> bool:
    """Placebo, usual/standard care, no treatment, controls: nothing specific to search."""
    if any(c.descriptor.ui not in _GENERIC_UIS for c in concepts):
        return False
    words = {w.casefold() for w in _content_words(text)}
    return words <= (_PLACEBO_WORDS | GENERIC_WORDS | _DRUG_WORDS)


def _subset_lookup(mesh: Mesh, segment: str) -> Descriptor | None:
    """The descriptor with a term made of the segment's words plus at most one more."""
    words = [w for w in _rough_words(segment) if w not in STOPWORDS]
    if not words or (len(words) == 1 and (len(words[0]) < 5 or words[0] in GENERIC_WORDS)):
        return None
    index = _word_index(mesh)
    candidates: set[int] | None = None
    for w in words:
        hits = index[0].get(w, set())
        candidates = set(hits) if candidates is None else candidates & hits
        if not candidates:
            return None
    best: tuple[int, int, str] | None = None
    chosen: Descriptor | None = None
    per_descriptor: dict[str, int] = {}
    fits: list[tuple[int, Descriptor]] = []
    for ti in sorted(candidates or ()):
        size, d, extra_words = index[1][ti]
        extra = size - len(set(words))
        # One word alone may only gain a class word ("sulfonylureas" -> Sulfonylurea Compounds).
        if extra <= 1 and (len(words) > 1 or extra_words - set(words) <= _CLASS_WORDS):
            fits.append((extra, d))
            per_descriptor[d.ui] = per_descriptor.get(d.ui, 0) + 1
    for extra, d in fits:
        rank = (extra, -per_descriptor[d.ui], d.ui)
        if best is None or rank < best:
            best, chosen = rank, d
    return chosen


_CLASS_WORDS = frozenset({"compound", "agent", "drug", "preparation", "product"})
_ROUGH_RE = re.compile(r"[a-z0-9]+")


def _rough_words(text: str) -> list[str]:
    """Lower-case words with a plain plural "s" removed: a cheap normalisation (the index of
    every MeSH term is built with it in under a second)."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) else w
            for w in _ROUGH_RE.findall(text.casefold())]


@lru_cache(maxsize=4)
def _word_index(
    mesh: Mesh,
) -> tuple[dict[str, set[int]], list[tuple[int, Descriptor, frozenset[str]]]]:
    words: dict[str, set[int]] = {}
    terms: list[tuple[int, Descriptor, frozenset[str]]] = []
    for d in mesh:
        for text in (d.name, *d.entry_terms):
            tokens = {w for w in _rough_words(text) if w not in STOPWORDS}
            ti = len(terms)
            terms.append((len(tokens), d, frozenset(tokens)))
            for w in tokens:
                words.setdefault(w, set()).add(ti)
    return words, terms


def _related_therapies(mesh: Mesh, action: Descriptor) -> list[Descriptor]:
    """Therapy headings named after a drug class (``Estrogens`` -> *Estrogen Replacement Therapy*)."""
    head = normalize_tokens(action.name)
    if len(head) != 1:
        return []
    return [d for d in _therapies(mesh) if head[0] in normalize_tokens(d.name)]


@lru_cache(maxsize=4)
def _therapies(mesh: Mesh) -> tuple[Descriptor, ...]:
    return tuple(d for d in mesh if any(t.startswith("E02.") for t in d.tree_numbers))


# --------------------------------------------------------------------------------------------
# Public API


def read_criteria(text: str) -> list[str]:
    """Eligibility criteria from a text file: one per non-empty line, list markers removed,
    paragraphs of prose split into sentences; at most 50 (the task's limit), each at most 2000
    characters."""
    out: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)]|[a-z][.)])\s+", "", line).strip()
        if not line:
            continue
        if len(line) > 300:
            out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line) if s.strip())
        else:
            out.append(line)
    return [c[:2000] for c in out[:50]]


def generate_query(inp: QueryInput, options: GenerationOptions | None = None, *,
                   mesh: Mesh | None = None) -> GeneratedQuery:
    """Build a PubMed Boolean query from a PICO and/or criteria (see the module docstring)."""
    return _Generator(mesh or Mesh.load(), options or GenerationOptions()).run(inp)


@implements("search_query", version=GENERATOR_VERSION)
def classic_search_query(inp: QueryInput) -> QueryOutput:
    """The classic engine's ``search_query`` task: the generated query (no RCT filter)."""
    return QueryOutput(query=generate_query(inp).query)
