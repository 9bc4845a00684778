"""The classic (offline, CPU) eligibility assessor: a record judged against each criterion, with
the sentences that support each verdict.

For every criterion:

1. **What it is about** (:func:`analyse_criterion`): study design, population, intervention,
   comparator, outcome, language, date or other, from its wording and its MeSH concepts; the
   designs it asks for or rules out ("randomised", "original articles, exclusion of review
   articles"); sex and age groups; a language; years.
2. **Matching** against the record: MeSH concepts of the criterion, exploded (a record about
   *Estradiol* satisfies a criterion about *Estrogens*), against the concepts found in each
   sentence; the criterion's content words; all-MiniLM-L6-v2 similarity between the criterion
   and each sentence (:mod:`leads.screen.embeddings`, skipped when the model is not installed);
   the study-design classifier (:mod:`leads.screen.design`) for design criteria.
3. **Verdict**: YES on strong evidence, PARTIAL on part of it, NO only on positive evidence of a
   mismatch (another design, non-human subjects, men only for a criterion about women, a title
   marked as translated for an English-only criterion), UNCERTAIN when the record does not say.
   For an exclusion criterion the same matching decides whether the exclusion applies (YES).

The evidence quotes are whole sentences of ``inp.content`` with exact offsets. Thresholds were
calibrated on the Estrogens review only (see ``docs/benchmarks.md``)::

    python -m leads.screen.classic evaluate --shared ../shared/data
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leads.engines.classic import implements
from leads.screen.design import DESIGN_LABELS, DesignModel, DesignPrediction
from leads.tasks._base import Evidence
from leads.tasks.eligibility import (
    Criterion,
    CriterionVerdict,
    EligibilityInput,
    EligibilityOutput,
)
from leads.vocab.mesh import STOPWORDS, Descriptor, Mesh, normalize_tokens

__all__ = [
    "VERSION",
    "CriterionProfile",
    "Sentence",
    "analyse_criterion",
    "assess",
    "split_sentences",
]

VERSION = "1.0"

# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """``source[start:end] == text``; ``label`` is a section label just before it (``METHODS``)."""

    text: str
    start: int
    end: int
    label: str | None = None


# Words whose final period does not end a sentence (lower-cased, without the period).
_ABBREVIATIONS = frozenset(
    """al e.g eg i.e ie vs v cf ca approx approx. appr fig figs no nos vol pp p.o i.v i.m s.c
    b.i.d t.i.d q.i.d dr mr mrs ms prof jr sr st inc ltd co corp dept univ eq ref resp
    jan feb mar apr jun jul aug sep sept oct nov dec mol wt ed eds et seq incl esp max min
    avg sd s.d se s.e n.s hr hrs mo yr yrs wk wks mg kg ml dl mmol""".split()  # noqa: SIM905
)
_LABEL_RE = re.compile(
    r"(?:(?<=\A)|(?<=[.;:!?]\s)|(?<=\n))((?:[A-Z][A-Z0-9]+(?:[ /&,-]+(?:AND|OF|THE|[A-Z][A-Z0-9]+))*)"
    r"|(?:Background|Objectives?|Aims?|Purpose|Methods?|Results?|Conclusions?|Design|Setting|"
    r"Participants|Patients|Interventions?|Measurements|Main outcome measures?|Findings|"
    r"Interpretation|Introduction|Materials and methods|Context|Importance|Discussion))"
    r"(?::|\.(?=\s+[A-Z]))\s+"
)
_LETTER_NAMES = frozenset(
    """vitamin type group phase hepatitis class grade stage arm factor protein kinase trial
    study cohort period part section appendix table figure fig schedule regimen""".split()  # noqa: SIM905
)
# A candidate boundary: . ! or ? (with closing quotes/brackets) and whitespace after it.
_END_RE = re.compile(r"[.!?]+['\"’”)\]]*(?=\s)|[.!?]+['\"’”)\]]*\Z")


def _section_labels(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _LABEL_RE.finditer(text):
        label = m.group(1)
        # All-capitals labels must look like headings (a word of 3+ letters), not an acronym
        # that happens to precede a colon ("HRT: ").
        if label.isupper() and (len(label) < 4 or label in {"HRT", "RCT", "BMI"}):
            continue
        out.append((m.start(1), m.end(), label))
    return out


def _is_boundary(text: str, end: int) -> bool:
    """Whether the punctuation run ending at ``end`` ends a sentence."""
    rest = text[end:]
    nxt = rest.lstrip()
    if not nxt:
        return True
    if "\n" in rest[: len(rest) - len(nxt)]:
        return True
    first = nxt[0]
    if first.islower() or first in ",;:%":
        return False
    j = end
    while j > 0 and text[j - 1] in "'\"’”)]":
        j -= 1
    if text[j - 1] != ".":
        return True  # ! or ?
    # The word before the period.
    k = j - 1
    while k > 0 and not text[k - 1].isspace() and text[k - 1] not in "([":
        k -= 1
    word = text[k:j - 1]
    low = word.lower().rstrip(".")
    if low in _ABBREVIATIONS or (word.count(".") >= 1 and len(word) <= 6 and word[-1:].isalpha()
                                 and all(len(p) <= 2 for p in word.split("."))):
        return False  # "i.e.", "U.S.", "p.o."
    if len(word) == 1 and word.isupper():
        # An initial ("J. R. Smith"), unless the letter names something ("vitamin D.").
        prev = text[:k].rstrip().rsplit(None, 1)[-1].lower() if text[:k].strip() else ""
        return prev in _LETTER_NAMES
    return True


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Split clinical text into sentences with character offsets (``+ offset``).

    Handles abbreviations ("et al.", "i.e.", "vs.", "Fig."), decimals ("2.5 mg", "P < .05"),
    initials, section labels ("METHODS:", "Results."), which start a new sentence and are kept
    apart in ``Sentence.label``, and line breaks (a paragraph or line break always ends a
    sentence). Every sentence is stripped of surrounding whitespace and non-empty.
    """
    cuts: set[int] = set()
    labels: dict[int, tuple[int, str]] = {}
    for start, end, name in _section_labels(text):
        labels[start] = (end, name)
        cuts.add(start)
    for m in re.finditer(r"\n", text):
        cuts.add(m.end())
    for m in _END_RE.finditer(text):
        if _is_boundary(text, m.end()):
            cuts.add(m.end())
    # No cut inside a label ("Results. " ends with a period).
    cuts = {c for c in cuts if not any(a < c < e for a, (e, _) in labels.items())}
    points = sorted(cuts | {0, len(text)})
    out: list[Sentence] = []
    for a, b in itertools.pairwise(points):
        label: str | None = None
        if a in labels and labels[a][0] <= b and text[labels[a][0]:b].strip():
            a, label = labels[a][0], labels[a][1]
        chunk = text[a:b]  # a heading with nothing after it stays as a sentence of its own
        stripped = chunk.strip()
        if not stripped:
            continue
        s = a + (len(chunk) - len(chunk.lstrip()))
        out.append(Sentence(stripped, s + offset, s + len(stripped) + offset, label))
    return out


# --------------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------------

Aspect = str  # design | population | intervention | comparator | outcome | language | date | other

_DESIGN_TERMS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"\brandomi[sz]ed\b|\brandomi[sz]ation\b|\bRCTs?\b|\brandom allocation\b", re.I),
     frozenset({"rct"})),
    (re.compile(r"\bnon-?randomi[sz]ed\b|\bquasi-?experimental\b|\bsingle-arm\b|\bopen-label\b",
                re.I), frozenset({"nonrandomised_trial"})),
    (re.compile(r"\b(?:clinical|controlled|intervention) (?:trials?|studies|study)\b", re.I),
     frozenset({"rct", "nonrandomised_trial"})),
    (re.compile(r"\bcohort\b|\bcase-control\b|\bcross-sectional\b|\bobservational\b|"
                r"\bregistry\b|\bepidemiolog", re.I), frozenset({"observational"})),
    (re.compile(r"\bsystematic reviews?\b|\bmeta-?analy", re.I), frozenset({"systematic_review"})),
    (re.compile(r"\breview(?: article)?s?\b|\beditorials?\b|\bletters?\b|\bcommentar", re.I),
     frozenset({"review", "systematic_review"})),
    (re.compile(r"\bcase reports?\b|\bcase series\b", re.I), frozenset({"case_report"})),
    (re.compile(r"\banimals?\b|\bin vitro\b|\bpreclinical\b|\brodents?\b|\bmice\b|\brats\b", re.I),
     frozenset({"animal"})),
    # A study with a comparison group: trials and controlled observational studies.
    (re.compile(r"\b(?:comparison|control|comparator|reference) (?:group|arm|cohort)s?\b|"
                r"\bcontrolled\b|\bcomparative\b|\bnon-?users\b", re.I),
     frozenset({"rct", "nonrandomised_trial", "observational"})),
)
_PRIMARY_RE = re.compile(r"\boriginal (?:articles?|research|stud(?:y|ies)|papers?)\b|"
                         r"\bprimary (?:research|stud(?:y|ies))\b|\bempirical stud", re.I)
_NEGATION_RE = re.compile(r"\b(?:exclu(?:sion|de[sd]?|ding)|not|no|non|without|other than|except)\b"
                          r"(?: of)?\s*(?:\w+\s+){0,2}$", re.I)
_LANGUAGES = ("english", "german", "french", "spanish", "italian", "chinese", "japanese",
              "portuguese", "dutch", "russian")
_YEAR_RE = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_FEMALE_RE = re.compile(r"\b(?:women|woman|female|females|girls?|postmenopausal|"
                        r"pre-?menopausal|perimenopausal|menopausal|pregnan\w*|mothers?)\b", re.I)
_MALE_RE = re.compile(r"\b(?:men|man|male|males|boys?)\b", re.I)
_CHILD_RE = re.compile(r"\b(?:child|children|childhood|paediatric|pediatric|infants?|neonat\w*|"
                       r"newborns?|adolescen\w*|boys|girls|schoolchildren|juvenile)\b", re.I)
_ADULT_RE = re.compile(r"\b(?:adults?|elderly|older (?:people|persons|adults|patients)|"
                       r"men|women|aged (?:1[89]|[2-9]\d)|postmenopausal|veterans)\b", re.I)
_HUMAN_WORDS = re.compile(r"\b(?:patients?|humans?|people|persons|participants|subjects|"
                          r"women|men|adults?|children|volunteers|population)\b", re.I)
_ANIMAL_WORDS = re.compile(r"\b(?:rats?|mice|mouse|murine|rodents?|dogs?|canine|rabbits?|pigs?|"
                           r"swine|porcine|monkeys?|primates?|sheep|ovine|cats?|feline|hamsters?|"
                           r"guinea pigs?|in vitro|cultured cells?|cell lines?|bovine)\b", re.I)
_ASPECT_WORDS: dict[str, re.Pattern[str]] = {
    "population": re.compile(r"\b(?:population|participants|patients|subjects|people|persons|"
                             r"women|men|adults?|children|aged|age|with\b|diagnosed|suffering|"
                             r"selected|sample|recruited|postmenopausal|elderly|clinicians?)",
                             re.I),
    "intervention": re.compile(r"\b(?:therapy|treatment|intervention|drugs?|use of|used|using|"
                               r"receiv\w+|administ\w+|dose|exposure|examining|system|software|"
                               r"program|device|surgery|vaccin\w*)\b", re.I),
    "comparator": re.compile(r"\b(?:compar\w+|versus|vs\.?|placebo|control|non-?users?|"
                             r"usual care|another drug)\b", re.I),
    "outcome": re.compile(r"\b(?:outcomes?|mortality|morbidity|incidence|risk of|efficacy|"
                          r"effectiveness|safety|adverse|survival|reports? data|endpoints?|"
                          r"effects? on|quality of life)\b", re.I),
}
# Words that carry no content in a criterion ("the study reports data on ...").
_CRITERION_STOP = frozenset(
    """study studies trial trials data report reports reported reporting article articles paper
    papers publication publications published include included inclusion exclude excluded
    exclusion only one several relevant interest use used using based intended should must
    examining examine examined support supported type types targeted criterion criteria
    according selected prior condition conditions associated higher lower high low clinical
    outcome outcomes group groups another other any all must may also such e g eg ie
    compared comparison versus after before patient adult child woman man people subject
    participant drug agent""".split()  # noqa: SIM905
)
# Demographic qualifiers are checked for contradictions (:func:`_population_conflict`), not
# required as positive evidence: abstracts say "patients", rarely "adults".
_DEMOGRAPHIC = frozenset({"Adult", "Aged", "Aged, 80 and over", "Middle Aged", "Young Adult",
                          "Child", "Child, Preschool", "Adolescent", "Infant", "Women", "Men",
                          "Humans", "Female", "Male"})


def _alternatives(between: str, after: str) -> bool:
    """Whether two concepts with ``between`` between them are items of one "A, B or C" list."""
    words = re.findall(r"[a-z/]+", between.lower())
    others = [w for w in words if w not in {"or", "and/or"}]
    if len(others) > 2 or {"with", "and", "in", "for", "of", "to", "versus", "compared"} & set(others):
        return False
    return "or" in words or "and/or" in words or ("," in between and re.search(r"\bor\b", after) is not None)


# MeSH concepts too general to count as matched content.
_GENERIC_CONCEPTS = frozenset({
    "Pharmaceutical Preparations", "Risk", "Research", "Publications", "Research Design",
    "Therapeutics", "Patients", "Population", "Methods", "Data Collection", "Persons",
    "Humans", "Outcome Assessment, Health Care", "Treatment Outcome", "Time", "Association",
})


@dataclass
class CriterionProfile:
    """What a criterion asks for, as far as :func:`analyse_criterion` can tell."""

    text: str
    kind: str
    aspect: Aspect
    aspects: tuple[Aspect, ...]
    concepts: tuple[Descriptor, ...] = ()
    terms: tuple[str, ...] = ()
    designs_required: frozenset[str] = frozenset()
    designs_forbidden: frozenset[str] = frozenset()
    human: bool = False
    sex: str | None = None  # "female" | "male"
    age: str | None = None  # "child" | "adult"
    language: str | None = None
    years: tuple[int, ...] = ()
    expanded: dict[str, int] = field(default_factory=dict)  # descriptor UI -> concept index
    groups: tuple[int, ...] = ()  # per concept: alternatives ("A, B or C") share a group

    def concept_coverage(self, matched: Iterable[int]) -> float:
        """Share of the concept groups with a matched concept."""
        if not self.concepts:
            return 0.0
        groups = self.groups or tuple(range(len(self.concepts)))
        return len({groups[i] for i in matched}) / len(set(groups))


def _content_terms(text: str) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for t in normalize_tokens(text):
        if len(t) > 2 and t not in STOPWORDS and t not in _CRITERION_STOP and not t.isdigit():
            out[t] = None
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def analyse_criterion(text: str, kind: str = "inclusion") -> CriterionProfile:
    """Classify a criterion and extract what matching needs (cached)."""
    mesh = Mesh.load()
    required: set[str] = set()
    forbidden: set[str] = set()
    taken: list[tuple[int, int]] = []
    for pattern, designs in _DESIGN_TERMS:
        for m in pattern.finditer(text):
            # The more specific term wins: "systematic review" is not also a "review".
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append(m.span())
            negated = _NEGATION_RE.search(text[:m.start()][-40:]) is not None
            (forbidden if negated else required).update(designs)
    if "rct" in required and _DESIGN_TERMS[0][0].search(text):
        # "randomised controlled trial": "controlled" and "trial" do not widen it.
        required = {"rct"}
    if _PRIMARY_RE.search(text):
        forbidden.update({"review", "systematic_review"})
    required -= forbidden

    low = text.lower()
    language = next((lang for lang in _LANGUAGES if lang in low), None)
    if language is None and re.search(r"\blanguages?\b", low):
        language = "english"
    years = tuple(int(y) for y in _YEAR_RE.findall(text))
    female, male = bool(_FEMALE_RE.search(text)), bool(_MALE_RE.search(text))
    sex = "female" if female and not male else "male" if male and not female else None
    child, adult = bool(_CHILD_RE.search(text)), bool(re.search(
        r"\badults?\b|\belderly\b|\bolder (?:people|adults|patients)\b|\baged (?:1[89]|[2-9]\d)",
        text, re.I))
    age = "child" if child and not adult else "adult" if adult and not child else None

    concepts: list[Descriptor] = []
    groups: list[int] = []  # concepts in one "X, Y or Z" list share a group: any one will do
    comparator = re.search(r"\b(?:compared (?:with|to)|versus|vs\.?|against)\s", text, re.I)
    previous_end = -1
    for found in mesh.find_concepts(text):
        d = found.descriptor
        if d.name in _GENERIC_CONCEPTS or d.name in _DEMOGRAPHIC or d in concepts:
            continue
        if "V" in d.categories:  # publication types: handled as design
            continue
        between = text[previous_end:found.start] if previous_end >= 0 else ""
        alternative = bool(concepts) and (
            _alternatives(between, text[found.end:found.end + 120])
            # Everything after "compared with" is one comparator: any of it will do.
            or (comparator is not None and previous_end > comparator.end()))
        groups.append(groups[-1] if alternative and groups else len(set(groups)))
        concepts.append(d)
        previous_end = found.end
    # Drug classes and other noun phrases that MeSH knows only as a whole ("ACE inhibitors").
    for chunk in re.split(r",|;|\(|\)|\b(?:and|or|with|compared|versus|vs|of|in|for|to)\b", text):
        chunk = chunk.strip(" .")
        if len(chunk) > 3:
            for d in mesh.lookup(chunk)[:1]:
                if (d not in concepts and d.name not in _GENERIC_CONCEPTS
                        and d.name not in _DEMOGRAPHIC and "V" not in d.categories):
                    groups.append(len(set(groups)))
                    concepts.append(d)
    expanded: dict[str, int] = {}
    for i, d in enumerate(concepts):
        for e in mesh.explode(d):
            expanded.setdefault(e.ui, i)

    scores: dict[str, float] = {}
    if required or forbidden:
        scores["design"] = 2.0 + len(required | forbidden) * 0.1
    if language:
        scores["language"] = 3.0
    if years and re.search(r"\b(?:published|publication|year|since|after|before|between)\b", low):
        scores["date"] = 3.0
    for aspect, pattern in _ASPECT_WORDS.items():
        n = len(pattern.findall(text))
        if n:
            scores[aspect] = scores.get(aspect, 0.0) + n
    for d in concepts:
        cats = set(d.categories)
        if cats & {"C", "M"} or d.name in {"Women", "Men", "Adult", "Child"}:
            scores["population"] = scores.get("population", 0.0) + 1.0
        if cats & {"D", "E", "L"}:
            scores["intervention"] = scores.get("intervention", 0.0) + 1.0
    if sex or age:
        scores["population"] = scores.get("population", 0.0) + 1.5
    human = bool(_HUMAN_WORDS.search(text)) or sex is not None or age is not None
    aspects = tuple(sorted(scores, key=lambda a: -scores[a])) or ("other",)
    return CriterionProfile(
        text=text, kind=kind, aspect=aspects[0], aspects=aspects, concepts=tuple(concepts),
        terms=_content_terms(text), designs_required=frozenset(required),
        designs_forbidden=frozenset(forbidden), human=human, sex=sex, age=age,
        language=language, years=years, expanded=expanded, groups=tuple(groups),
    )


# --------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------


@dataclass
class RecordView:
    content: str
    title: str | None
    sentences: list[Sentence]
    tokens: list[set[str]]
    concepts: list[dict[str, str]]  # per sentence: descriptor UI -> the words that matched
    design: DesignPrediction
    embeddings: np.ndarray | None


_embedder_state: dict[str, Any] = {}
_embedder_lock = threading.Lock()


def _embedder() -> Any:
    """The MiniLM embedder, or ``None`` when it is not installed (matching then goes without)."""
    with _embedder_lock:
        if "embedder" not in _embedder_state:
            from leads.screen.embeddings import Embedder

            # One thread, one sentence per run: the fastest setting measured for the int8 model
            # on 2 cores (docs/benchmarks.md); larger padded batches cost more CPU per sentence.
            _embedder_state["embedder"] = Embedder.load(threads=1) if Embedder.available() else None
        return _embedder_state["embedder"]


@functools.lru_cache(maxsize=512)
def _criterion_embedding(text: str) -> np.ndarray | None:
    emb = _embedder()
    return None if emb is None else emb.embed([text], batch_size=1)[0]


def _view(inp: EligibilityInput) -> RecordView:
    content = inp.content
    sentences = split_sentences(content)
    mesh = Mesh.load()
    per_sentence: list[dict[str, str]] = [{} for _ in sentences]
    starts = [s.start for s in sentences]
    for m in mesh.find_concepts(content):
        # The sentence holding the match (by its start offset).
        lo, hi = 0, len(starts) - 1
        k = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if starts[mid] <= m.start:
                k, lo = mid, mid + 1
            else:
                hi = mid - 1
        if k >= 0:
            per_sentence[k].setdefault(m.descriptor.ui, m.text)
            for alt in m.alternatives:
                per_sentence[k].setdefault(alt.ui, m.text)
    tokens = [set(normalize_tokens(s.text)) for s in sentences]
    design = DesignModel.load().predict(inp.title, inp.text)
    emb = _embedder()
    embeddings = (emb.embed([s.text for s in sentences], batch_size=1)
                  if emb is not None and sentences else None)
    return RecordView(content, inp.title, sentences, tokens, per_sentence, design, embeddings)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------

# Calibrated on the Estrogens review (Cohen 2006 / SYNERGY Nelson_2002) only.
SIM_FLOOR = 0.25  # cosine below which a sentence is unrelated
SIM_SPAN = 0.40  # cosine above SIM_FLOOR + SIM_SPAN counts as a full match
YES_AT = 0.70
PARTIAL_AT = 0.40
DESIGN_YES = 0.60
DESIGN_PARTIAL = 0.30
DESIGN_NO = 0.12
NONHUMAN_NO = 0.15  # P(human) below this (and animal words in the text) -> NO for human criteria


@dataclass
class _Scored:
    index: int
    score: float
    similarity: float
    concepts: list[str]
    terms: list[str]


def _quote(view: RecordView, idx: Iterable[int], scores: dict[int, float] | None = None) -> list[Evidence]:
    out = []
    for i in idx:
        s = view.sentences[i]
        score = 1.0 if scores is None else float(min(1.0, max(0.0, scores.get(i, 1.0))))
        out.append(Evidence(quote=s.text, start=s.start, end=s.end, score=round(score, 3)))
    return out


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _score_sentences(profile: CriterionProfile, view: RecordView) -> list[_Scored]:
    crit_emb = _criterion_embedding(profile.text) if view.embeddings is not None else None
    sims = (view.embeddings @ crit_emb) if crit_emb is not None else None
    terms = set(profile.terms)
    out = []
    for i, _s in enumerate(view.sentences):
        found = [ui for ui in view.concepts[i] if ui in profile.expanded]
        concept_cov = profile.concept_coverage(profile.expanded[ui] for ui in found)
        hit_terms = sorted(terms & view.tokens[i])
        term_cov = len(hit_terms) / len(terms) if terms else 0.0
        sim = float(sims[i]) if sims is not None else 0.0
        sim_part = min(1.0, max(0.0, (sim - SIM_FLOOR) / SIM_SPAN))
        lexical = max(concept_cov, term_cov)
        score = 0.55 * sim_part + 0.45 * lexical if sims is not None else lexical
        out.append(_Scored(i, score, sim, found, hit_terms))
    return out


def _coverage(profile: CriterionProfile, view: RecordView) -> tuple[float, list[str], list[str]]:
    """Share of the criterion's concepts (exploded) and content words found anywhere."""
    matched: dict[int, str] = {}
    for per in view.concepts:
        for ui, words in per.items():
            if ui in profile.expanded:
                matched.setdefault(profile.expanded[ui], words)
    all_tokens = set().union(*view.tokens) if view.tokens else set()
    hit_terms = [t for t in profile.terms if t in all_tokens]
    concept_cov = profile.concept_coverage(matched)
    term_cov = len(hit_terms) / len(profile.terms) if profile.terms else 0.0
    names = [f"{profile.concepts[i].name} ('{w}')" for i, w in sorted(matched.items())]
    return max(concept_cov, term_cov), names, hit_terms


def _population_conflict(profile: CriterionProfile, view: RecordView) -> tuple[str, list[int]] | None:
    """Positive evidence that the record's subjects are not the criterion's population."""
    texts = [s.text for s in view.sentences]
    if profile.human or profile.sex or profile.age:
        animal_idx = [i for i, t in enumerate(texts) if _ANIMAL_WORDS.search(t)]
        if view.design.human < NONHUMAN_NO and animal_idx:
            return (f"non-human subjects (P(human)={view.design.human:.2f})", animal_idx[:2])
    if profile.sex:
        want, other = (_FEMALE_RE, _MALE_RE) if profile.sex == "female" else (_MALE_RE, _FEMALE_RE)
        if not any(want.search(t) for t in texts):
            idx = [i for i, t in enumerate(texts) if other.search(t)]
            if len(idx) >= 1 and re.search(r"\b(?:men|women|males|females)\b", " ".join(texts[i] for i in idx), re.I):
                sex = "men" if profile.sex == "female" else "women"
                return (f"the record studies {sex} only", idx[:2])
    if profile.age:
        want, other = (_CHILD_RE, _ADULT_RE) if profile.age == "child" else (_ADULT_RE, _CHILD_RE)
        if not any(want.search(t) for t in texts):
            idx = [i for i, t in enumerate(texts) if other.search(t)]
            if idx:
                who = "adults" if profile.age == "child" else "children"
                return (f"the record studies {who} only", idx[:2])
    return None


_DESIGN_SENTENCE = {
    "rct": re.compile(r"\brandom\w*|\bdouble-blind|\bplacebo-controlled|\bcross-?over\b", re.I),
    "nonrandomised_trial": re.compile(r"\bopen(?:-label)?\b|\bnon-?randomi|\bsingle-arm|"
                                      r"\bpilot\b|\btrial\b|\bwere treated\b|\bprospective", re.I),
    "observational": re.compile(r"\bcohort|\bcase-control|\bcross-sectional|\bretrospective|"
                                r"\bprospective|\bfollow(?:ed)?[- ]up|\bregistry|\bsurvey|"
                                r"\bpopulation-based|\busers?\b|\bexposure", re.I),
    "systematic_review": re.compile(r"\bmeta-?analy|\bsystematic|\bpooled|\bsearch(?:ed)? "
                                    r"(?:of )?(?:MEDLINE|the literature|databases?)", re.I),
    "review": re.compile(r"\breview|\bdiscuss|\boverview|\bsummar", re.I),
    "case_report": re.compile(r"\bcase\b|\b\d+-year-old\b|\bpatient (?:who|with)\b", re.I),
    "animal": _ANIMAL_WORDS,
}
_COMPARISON_RE = re.compile(r"\bcompar\w+|\bversus\b|\bvs\.?|\bcontrol(?:s|led)?\b|\bplacebo|"
                            r"\bnon-?users?\b|\bnever[- ]users?\b|\breference group|\buntreated|"
                            r"\brelative risk|\bodds ratio|\bhazard ratio|\bRR\b|\bOR\b", re.I)


def _design_sentences(view: RecordView, designs: Iterable[str], limit: int = 2,
                      comparison: bool = False) -> list[int]:
    pats = [_DESIGN_SENTENCE[d] for d in designs if d in _DESIGN_SENTENCE]
    if comparison:
        pats.append(_COMPARISON_RE)
    scored = []
    for i, s in enumerate(view.sentences):
        n = sum(len(p.findall(s.text)) for p in pats)
        if n:
            scored.append((-n, i))
    return [i for _, i in sorted(scored)[:limit]]


_COMPARATIVE = frozenset({"rct", "nonrandomised_trial", "observational"})


def _names(designs: Iterable[str]) -> str:
    designs = set(designs)
    if designs == _COMPARATIVE:
        return "a comparative study (trial or observational study with a comparison group)"
    return " or ".join(DESIGN_LABELS[d] for d in sorted(designs))


def _judge_design(profile: CriterionProfile, view: RecordView) -> CriterionVerdict | None:
    p = view.design.probabilities
    cue = view.design.cue
    best = view.design.design
    required, forbidden = profile.designs_required, profile.designs_forbidden
    comparison = bool(required) and required >= {"observational", "rct"}
    cue_note = f"; the record says '{cue.text}'" if cue else ""
    if required:
        p_req = sum(p[d] for d in required)
        if cue is not None and cue.design not in required and not comparison:
            p_req = min(p_req, 0.1)
        elif cue is not None and cue.design in required:
            p_req = max(p_req, 0.9)
        idx = _design_sentences(view, required, comparison=comparison)
        if comparison and not idx:
            p_req *= 0.5  # a comparative design with no comparison in the text
        where = f": '{_short(view.sentences[idx[0]].text)}'" if idx else ""
        verdict: str
        if p_req >= DESIGN_YES:
            verdict = "YES"
            why = f"{_names(required)} (design classifier p={p_req:.2f}){where}"
        elif p_req >= DESIGN_PARTIAL:
            verdict = "PARTIAL"
            why = (f"possibly {_names(required)} (design classifier p={p_req:.2f}; most likely "
                   f"{DESIGN_LABELS[best]} p={p[best]:.2f}){where}")
        elif p_req < DESIGN_NO and (p[best] >= 0.6 or cue is not None):
            verdict = "NO"
            idx = ([] if cue is None else [i for i, s in enumerate(view.sentences)
                                          if s.start <= cue.start < s.end + 1][:1]) or \
                _design_sentences(view, [best])
            where = f": '{_short(view.sentences[idx[0]].text)}'" if idx else ""
            why = (f"another design: {DESIGN_LABELS[cue.design if cue else best]} "
                   f"(design classifier p={p[best]:.2f}{cue_note}), not {_names(required)}{where}")
        else:
            return None  # weak: let the general matcher decide (often UNCERTAIN)
        return CriterionVerdict(criterion=0, eligibility=verdict,  # type: ignore[arg-type]
                                rationale=f"Design: {why}.", evidence=_quote(view, idx))
    if forbidden:
        p_bad = sum(p[d] for d in forbidden)
        if cue is not None and cue.design in forbidden:
            p_bad = max(p_bad, 0.9)
        if p_bad >= 1 - DESIGN_YES:
            idx = ([i for i, s in enumerate(view.sentences) if cue and s.start <= cue.start < s.end + 1][:1]
                   or _design_sentences(view, forbidden))
            where = f": '{_short(view.sentences[idx[0]].text)}'" if idx else ""
            return CriterionVerdict(
                criterion=0, eligibility="NO",
                rationale=f"Design: {_names(forbidden)} (design classifier p={p_bad:.2f}{cue_note}), "
                          f"which the criterion rules out{where}.", evidence=_quote(view, idx))
        if p_bad <= 0.15:
            idx = _design_sentences(view, [best])
            where = f": '{_short(view.sentences[idx[0]].text)}'" if idx else ""
            return CriterionVerdict(
                criterion=0, eligibility="YES",
                rationale=f"Design: {DESIGN_LABELS[best]} (design classifier p={p[best]:.2f}), "
                          f"not {_names(forbidden)} (p={p_bad:.2f}){where}.",
                evidence=_quote(view, idx))
        return CriterionVerdict(
            criterion=0, eligibility="PARTIAL",
            rationale=f"Design unclear: {_names(forbidden)} has p={p_bad:.2f} (most likely "
                      f"{DESIGN_LABELS[best]}, p={p[best]:.2f}).", evidence=[])
    return None


def _judge_language(profile: CriterionProfile, view: RecordView) -> CriterionVerdict:
    title = (view.title or "").strip()
    target = profile.language or "english"
    ev = _quote(view, [0]) if view.sentences else []
    translated = title.startswith("[") and title.rstrip(".").endswith("]")
    if target == "english":
        if translated:
            return CriterionVerdict(
                criterion=0, eligibility="NO", evidence=ev,
                rationale="Language: the title is in brackets, MEDLINE's mark of an article "
                          "published in another language (translated title).")
        words = re.findall(r"[a-z]+", view.content.lower())
        english = sum(w in {"the", "of", "and", "in", "to", "with", "was", "were", "is"} for w in words)
        if words and english / len(words) > 0.12:
            return CriterionVerdict(
                criterion=0, eligibility="YES", evidence=ev,
                rationale="Language: the title and abstract are in English and the title is not "
                          "marked as translated.")
    return CriterionVerdict(criterion=0, eligibility="UNCERTAIN", evidence=[],
                            rationale=f"Language: the record does not say whether it is in {target.title()}.")


def _judge_date(profile: CriterionProfile, view: RecordView) -> CriterionVerdict:
    return CriterionVerdict(
        criterion=0, eligibility="UNCERTAIN", evidence=[],
        rationale="Date: the publication date is not part of the title and abstract given "
                  f"(criterion years: {', '.join(map(str, profile.years))}).")


def _judge_general(profile: CriterionProfile, view: RecordView) -> CriterionVerdict:
    scored = _score_sentences(profile, view)
    ranked = sorted(scored, key=lambda s: -s.score)
    coverage, concept_names, hit_terms = _coverage(profile, view)
    best = ranked[0] if ranked else None
    has_embeddings = view.embeddings is not None
    best_sim_part = (min(1.0, max(0.0, (best.similarity - SIM_FLOOR) / SIM_SPAN))
                     if best and has_embeddings else 0.0)
    strength = (0.55 * best_sim_part + 0.45 * coverage) if has_embeddings else coverage
    evidence_idx = [s.index for s in ranked[:2] if s.score >= 0.25 * (ranked[0].score or 1)] if best else []
    if len(evidence_idx) > 1 and ranked[1].score < 0.8 * ranked[0].score:
        evidence_idx = evidence_idx[:1]
    scores = {s.index: s.score for s in scored}
    basis = []
    if concept_names:
        basis.append("MeSH " + ", ".join(concept_names[:3]))
    elif hit_terms:
        basis.append("words " + ", ".join(hit_terms[:4]))
    if best and has_embeddings:
        basis.append(f"best sentence similarity {best.similarity:.2f}")
    basis_text = "; ".join(basis) or "nothing in the record"
    first = f": '{_short(view.sentences[evidence_idx[0]].text)}'" if evidence_idx else ""
    if profile.kind == "exclusion" and (profile.terms or profile.concepts) and coverage == 0:
        strength = min(strength, PARTIAL_AT - 1e-6)  # only the review's shared topic matched
    if strength >= YES_AT:
        verdict, why = "YES", f"Matches ({basis_text}){first}."
    elif strength >= PARTIAL_AT:
        verdict, why = "PARTIAL", f"Partly matches ({basis_text}){first}."
    else:
        missing = [d.name for d in profile.concepts][:3]
        verdict = "UNCERTAIN"
        why = (f"The record does not say ({basis_text}"
               + (f"; not found: {', '.join(missing)}" if missing and not concept_names else "")
               + ").")
        evidence_idx = []
    return CriterionVerdict(criterion=0, eligibility=verdict, rationale=why,  # type: ignore[arg-type]
                            evidence=_quote(view, evidence_idx, scores))


def judge(profile: CriterionProfile, view: RecordView) -> CriterionVerdict:
    """The verdict for one criterion on one record (``criterion`` index left at 0)."""
    if not view.sentences:
        return CriterionVerdict(criterion=0, eligibility="UNCERTAIN", evidence=[],
                                rationale="The record has no text to judge.")
    if profile.aspect == "language":
        return _judge_language(profile, view)
    if profile.aspect == "date":
        return _judge_date(profile, view)
    about_population = "population" in profile.aspects[:2] or profile.sex or profile.age
    if profile.kind == "inclusion" and about_population:
        conflict = _population_conflict(profile, view)
        if conflict is not None:
            why, idx = conflict
            return CriterionVerdict(criterion=0, eligibility="NO", evidence=_quote(view, idx),
                                    rationale=f"Population mismatch: {why}: "
                                              f"'{_short(view.sentences[idx[0]].text)}'.")
    if profile.designs_required or profile.designs_forbidden:
        verdict = _judge_design(profile, view)
        if verdict is not None:
            return verdict
    return _judge_general(profile, view)


def _distinctive(profile: CriterionProfile, others: Sequence[CriterionProfile]) -> CriterionProfile:
    """An exclusion criterion restricted to what sets it apart from the inclusion criteria.

    Exclusions usually share the review's topic ("systems intended for non-clinicians" in a
    review of clinical decision-support systems); matched on the shared words they would
    apply to every on-topic record. Only their own words and concepts count as support.
    """
    shared_terms = {t for o in others for t in o.terms}
    shared_uis = {ui for o in others for ui in o.expanded}
    keep = [i for i, d in enumerate(profile.concepts) if d.ui not in shared_uis]
    concepts = tuple(profile.concepts[i] for i in keep)
    groups = tuple(profile.groups[i] for i in keep) if profile.groups else ()
    expanded = {ui: keep.index(i) for ui, i in profile.expanded.items() if i in keep}
    return dataclasses.replace(profile, terms=tuple(t for t in profile.terms if t not in shared_terms),
                               concepts=concepts, expanded=expanded, groups=groups)


@implements("eligibility", version=VERSION)
def assess(inp: EligibilityInput) -> EligibilityOutput:
    """Judge the record against each criterion (the classic engine's ``eligibility`` task)."""
    return _assess(inp, _view(inp))


def _assess(inp: EligibilityInput, view: RecordView) -> EligibilityOutput:
    profiles = [analyse_criterion(c.text, c.kind) for c in inp.criteria]
    inclusion = [p for p in profiles if p.kind == "inclusion"]
    verdicts = []
    for i, profile in enumerate(profiles):
        if profile.kind == "exclusion" and inclusion:
            profile = _distinctive(profile, inclusion)
        verdict = judge(profile, view)
        verdicts.append(verdict.model_copy(update={"criterion": i}))
    return EligibilityOutput(verdicts=verdicts, score=EligibilityOutput.score_of(verdicts, inp.criteria))


# --------------------------------------------------------------------------------------------
# Evaluation: zero-shot ranking of real screening sets
# --------------------------------------------------------------------------------------------

#: Criteria built from each Cohen 2006 topic's name (the nine topics have no published
#: criteria): design, drug class versus placebo or another drug, the indication's population.
COHEN_CRITERIA: dict[str, tuple[str, str]] = {
    "ACEInhibitors": ("ACE inhibitors", "Adults with hypertension, heart failure or diabetic nephropathy"),
    "ADHD": ("Drugs for attention deficit hyperactivity disorder (stimulants or atomoxetine)",
             "Children or adults with attention deficit hyperactivity disorder"),
    "Antihistamines": ("Second-generation antihistamines", "Patients with allergic rhinitis or urticaria"),
    "AtypicalAntipsychotics": ("Atypical antipsychotics", "Patients with schizophrenia or bipolar disorder"),
    "BetaBlockers": ("Beta blockers", "Adults with hypertension, angina, heart failure or after myocardial infarction"),
    "CalciumChannelBlockers": ("Calcium channel blockers", "Adults with hypertension, angina or heart failure"),
    "Estrogens": ("Estrogen hormone replacement therapy", "Postmenopausal women"),
    "NSAIDS": ("Nonsteroidal anti-inflammatory drugs", "Adults with osteoarthritis or rheumatoid arthritis"),
    "OralHypoglycemics": ("Oral hypoglycemic agents", "Adults with type 2 diabetes"),
    "UrinaryIncontinence": ("Drugs for overactive bladder or urinary incontinence",
                            "Adults with urinary incontinence or overactive bladder"),
}


def cohen_criteria(topic: str) -> list[Criterion]:
    drug, population = COHEN_CRITERIA[topic]
    return [Criterion(text="Randomised controlled trial"),
            Criterion(text=f"{drug} compared with placebo or another drug"),
            Criterion(text=population)]


def estrogens_criteria() -> list[Criterion]:
    """``examples/estrogens/review.toml``: the published Nelson 2002 criteria, one per line."""
    return [
        Criterion(text="The study has a comparison group of hormone replacement therapy nonusers"),
        Criterion(text="The study reports data on hormone replacement therapy use and clinical outcomes of interest"),
        Criterion(text="The study is published in English"),
        Criterion(text="The population was selected according to prior events or conditions associated "
                       "with higher risks for the targeted outcomes", kind="exclusion"),
    ]


def cdss_criteria() -> list[Criterion]:
    """``screening/criteria/CDSS_RO.txt``, one criterion per line; 'exclusion of ...' lines are
    exclusion criteria restated positively."""
    return [
        Criterion(text="Only inclusion of original articles, exclusion of review articles"),
        Criterion(text="Publications examining one or several clinical decision-support systems relevant for radiation therapy"),
        Criterion(text="Decision-support systems are software based"),
        Criterion(text="Systems intended for support of non-clinicians (e.g. patient decision-aids)", kind="exclusion"),
        Criterion(text="Publications about models (e.g. prognostic models) should only be included, if the model "
                       "is intended to support clinical decision-making as part of a software application, which "
                       "may resemble a clinical decision support system"),
    ]


def ranking_metrics(scores: Sequence[float], labels: Sequence[int], *, weights: Sequence[float] | None = None,
                    seed: int = 0, repeats: int = 50) -> dict[str, float]:
    """ROC AUC (ties count half) and WSS@95 (ties broken at random, mean of ``repeats``).

    ``weights`` (records each sampled record stands for) give the WSS of the full set when the
    excluded records were subsampled; AUC does not depend on that.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    equal = (pos[:, None] == neg[None, :]).sum()
    auc = (greater + 0.5 * equal) / (len(pos) * len(neg))
    rng = np.random.default_rng(seed)
    n, n_pos, total = len(y), int(y.sum()), float(w.sum())
    need = int(np.ceil(0.95 * n_pos))
    wss = []
    for _ in range(repeats):
        order = np.lexsort((rng.random(n), -s))
        found = np.cumsum(y[order])
        k = int(np.searchsorted(found, need))
        screened = float(w[order][: k + 1].sum())
        wss.append((total - screened) / total - 0.05)
    return {"auc": round(float(auc), 4), "wss95": round(float(np.mean(wss)), 4),
            "records": n, "includes": n_pos}


_GRID = {
    "YES_AT": (0.6, 0.65, 0.7, 0.75, 0.8),
    "PARTIAL_AT": (0.35, 0.4, 0.45, 0.5, 0.55),
    "SIM_FLOOR": (0.2, 0.25, 0.3),
}


def _main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - benchmark runner
    import argparse
    import json
    import os
    import time
    from collections import Counter
    from pathlib import Path

    import pandas as pd

    parser = argparse.ArgumentParser(prog="python -m leads.screen.classic")
    parser.add_argument("command", choices=["evaluate", "tune"],
                        help="evaluate: zero-shot ranking; tune: threshold grid (on Estrogens)")
    parser.add_argument("--shared", default=os.environ.get("LEADS_SHARED_DATA", "../shared/data"))
    parser.add_argument("--datasets", default="Estrogens,CDSS_RO,cohen",
                        help="comma list: Estrogens, EstrogensTopic, CDSS_RO, cohen or Cohen topic names")
    parser.add_argument("--sample", type=int, default=0,
                        help="per data set: every include plus random excludes up to this many "
                             "records (0 = all); WSS is then weighted back to the full set")
    parser.add_argument("--out", help="JSON results file")
    args = parser.parse_args(argv)
    shared = Path(args.shared)

    sets: list[tuple[str, list[Criterion], pd.DataFrame]] = []
    for name in args.datasets.split(","):
        if name == "Estrogens":
            df = pd.read_csv(shared / "screening/cohen2006/Estrogens.csv")
            sets.append(("Estrogens (review.toml criteria)", estrogens_criteria(), df))
        elif name == "EstrogensTopic":
            df = pd.read_csv(shared / "screening/cohen2006/Estrogens.csv")
            sets.append(("Estrogens (topic-name criteria)", cohen_criteria("Estrogens"), df))
        elif name == "CDSS_RO":
            df = pd.read_csv(shared / "screening/other/CDSS_RO.csv", sep=";").rename(
                columns={"Title": "title", "Abstract": "abstract"})
            sets.append(("CDSS_RO", cdss_criteria(), df))
        else:
            topics = [t for t in COHEN_CRITERIA if t != "Estrogens"] if name == "cohen" else [name]
            for topic in topics:
                df = pd.read_csv(shared / f"screening/cohen2006/{topic}.csv")
                sets.append((f"Cohen {topic} (topic-name criteria)", cohen_criteria(topic), df))

    def inputs(df: pd.DataFrame, criteria: list[Criterion]) -> Iterable[tuple[EligibilityInput, int, float]]:
        weight = {0: 1.0, 1: 1.0}
        if args.sample and len(df) > args.sample:
            inc, exc = df[df.label_included == 1], df[df.label_included == 0]
            keep = exc.sample(n=max(0, args.sample - len(inc)), random_state=0)
            weight[0] = len(exc) / max(1, len(keep))
            df = pd.concat([inc, keep])
        for row in df.itertuples():
            title = row.title if isinstance(row.title, str) and row.title.strip() else None
            text = row.abstract if isinstance(row.abstract, str) and row.abstract.strip() else ""
            if not text:
                text = title or "(no title or abstract)"
            label = int(row.label_included)
            yield EligibilityInput(title=title, text=text, criteria=criteria), label, weight[label]

    results = []
    rows: list[tuple[float, float, dict[str, float]]] = []
    for label, criteria, df in sets:
        started, cpu = time.perf_counter(), time.process_time()
        cases = [(inp, _view(inp), y, w) for inp, y, w in inputs(df, criteria)]
        if args.command == "tune":
            rows.clear()
            for grid in itertools.product(*_GRID.values()):
                setting = dict(zip(_GRID, grid, strict=True))
                globals().update(setting)
                tuned = [_assess(inp, view).score for inp, view, _, _ in cases]
                r = ranking_metrics(tuned, [c[2] for c in cases], weights=[c[3] for c in cases])
                rows.append((r["auc"], r["wss95"], setting))
            rows.sort(key=lambda r: (-r[0], -r[1]))
            for auc, wss, setting in rows[:10]:
                print(json.dumps({"dataset": label, "auc": auc, "wss95": wss, **setting}))
            continue
        scores, labels, weights = [], [], []
        verdicts: Counter[str] = Counter()
        for inp, view, y, w in cases:
            out = _assess(inp, view)
            scores.append(out.score)
            labels.append(y)
            weights.append(w)
            for v in out.verdicts:
                verdicts[f"c{v.criterion}:{v.eligibility}"] += 1
        m: dict[str, Any] = dict(ranking_metrics(scores, labels, weights=weights))
        m.update(dataset=label, full_records=len(df), seconds=round(time.perf_counter() - started, 1),
                 cpu_seconds=round(time.process_time() - cpu, 1),
                 verdicts=dict(sorted(verdicts.items())))
        results.append(m)
        print(json.dumps(m), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _main()
