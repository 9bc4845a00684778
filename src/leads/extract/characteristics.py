"""Study characteristics and arm design, classic engine: rules, lexicons and the PICO CRF.

Study characteristics (``characteristics`` task). Each requested field (``name: description``)
is mapped to a built-in extractor when its *name* says what it is (the description's head phrase
only when the name names nothing: :func:`builtin_for`), else answered by the sentence most
similar to the field (MiniLM embeddings when installed, else word overlap):

==================  ========================================================================
built-in            how
==================  ========================================================================
design              design lexicon (randomised, double-blind, placebo-controlled, crossover,
                    cluster, phase, cohort, case-control ...) in the title and methods
randomised N        the total number of participants of :mod:`leads.extract.participants`
countries           country names (ISO 3166 names of the IANA tz database, ``models/
                    countries.tsv``, plus common aliases: USA, UK, England ...)
setting             the sentence under a "Setting" heading, else the first phrase naming a
                    hospital, clinic, centre, primary care, community ...
conditions          MeSH disease concepts (tree C, F03) in the participants spans and title
interventions       intervention spans (PICO CRF) that are not comparators
comparators         intervention spans naming placebo, sham, usual/standard care, no treatment
primary outcome     "primary outcome/end point was ..." sentences, else the first outcome span
recruitment period  a date range ("between May 2010 and November 2010") in a sentence about
                    recruiting, enrolling or conducting the trial
follow-up           "followed (up) for 18 months", "median follow-up of 5.2 years" ...
funding             "funded/supported/sponsored by ...", "grant" sentences
registration        NCT (:func:`leads.records.find_identifiers`), ISRCTN, EudraCT, ACTRN,
                    ChiCTR, CTRI, DRKS, UMIN, NTR, PACTR, IRCT identifiers
==================  ========================================================================

Arm design (``arms`` task): arms come from the sentence that reports the arms' sizes
(:func:`leads.extract.participants.describe_participants`), else from the randomisation
sentence ("randomly assigned to X or Y"), else from the title ("X versus Y"). Each arm's type
follows from cue words (placebo -> PLACEBO_COMPARATOR, sham -> SHAM_COMPARATOR, no treatment /
observation / waiting list -> NO_INTERVENTION, usual or standard care and other comparators ->
ACTIVE_COMPARATOR, the rest EXPERIMENTAL), its description is the clause that names it with a
dose when there is one, and its interventions are the drug or procedure names in it.

Every value comes with a quote located in the text; a field with nothing found is ``None``
("not reported").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from leads.engines.classic import implements
from leads.extract.pico import Sentence, labels_to_spans, split_sentences
from leads.records import find_identifiers
from leads.tasks._base import Evidence
from leads.tasks.extraction import (
    ArmsInput,
    ArmsOutput,
    CharacteristicsInput,
    CharacteristicsOutput,
    ExtractedArm,
    ExtractedField,
    PicoSpan,
)

__all__ = [
    "BUILTIN_FIELDS",
    "Paper",
    "builtin_for",
    "classic_arms",
    "classic_characteristics",
    "find_countries",
    "find_registrations",
]

VERSION = "rules-1"

# --------------------------------------------------------------------------------------------
# The paper, analysed once
# --------------------------------------------------------------------------------------------


@dataclass
class Paper:
    """A text with its sentences and PICO spans (the CRF's), computed once per call."""

    text: str
    sentences: list[Sentence]
    spans: list[PicoSpan]
    _sentence_vectors: Any = field(default=None, repr=False, compare=False)

    def sentence_vectors(self, embedder: Any) -> Any:
        """The sentences' embeddings, computed once per paper (several user-defined fields
        search the same sentences)."""
        if self._sentence_vectors is None:
            self._sentence_vectors = embedder.embed([s.text for s in self.sentences])
        return self._sentence_vectors

    @classmethod
    def of(cls, text: str) -> Paper:
        from leads.extract.participants import analyse

        doc = analyse(text)
        spans = [span for tokens, labels in zip(doc.tokens, doc.labels, strict=True)
                 for span in labels_to_spans(text, tokens, labels)]
        return cls(text, split_sentences(text), spans)

    def sentence_at(self, offset: int) -> Sentence | None:
        for s in self.sentences:
            if s.start <= offset < s.end:
                return s
        return None

    def evidence(self, start: int, end: int | None = None) -> list[Evidence]:
        """The sentence holding ``start`` as evidence (or ``text[start:end]`` when not in one)."""
        s = self.sentence_at(start)
        if s is not None:
            return [Evidence(quote=s.text, start=s.start, end=s.end)]
        end = start + 1 if end is None else end
        return [Evidence(quote=self.text[start:end], start=start, end=end)]

    def labelled(self, label: str) -> list[PicoSpan]:
        return [s for s in self.spans if s.label == label]


@dataclass
class Found:
    value: str | None
    evidence: list[Evidence]


NOT_FOUND = Found(None, [])


def _join(values: Iterable[str]) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v))


# --------------------------------------------------------------------------------------------
# Built-in fields
# --------------------------------------------------------------------------------------------

_DESIGN_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cluster randomised trial", re.compile(r"\bcluster[- ]randomi[sz]ed\b", re.I)),
    ("crossover", re.compile(r"\bcross-?over\b", re.I)),
    ("non-randomised", re.compile(r"\bnon-?randomi[sz]ed\b|\bquasi-?experimental\b", re.I)),
    ("randomised controlled trial", re.compile(
        r"\brandomi[sz]ed(?:,?\s+[\w-]+){0,4}\s+(?:trial|study)\b|\brandomly\s+(?:assigned|allocated)\b"
        r"|\bwere\s+randomi[sz]ed\b|\bRCT\b", re.I)),
    ("double-blind", re.compile(r"\bdouble[- ]blind(?:ed)?\b|\bdouble[- ]mask(?:ed)?\b", re.I)),
    ("single-blind", re.compile(r"\bsingle[- ]blind(?:ed)?\b", re.I)),
    ("triple-blind", re.compile(r"\btriple[- ]blind(?:ed)?\b", re.I)),
    ("open-label", re.compile(r"\bopen[- ]label\b", re.I)),
    ("placebo-controlled", re.compile(r"\bplacebo[- ]controlled\b", re.I)),
    ("parallel-group", re.compile(r"\bparallel[- ]group\b", re.I)),
    ("multicentre", re.compile(r"\bmulti-?cent(?:er|re)\b|\bmulti-?institutional\b", re.I)),
    ("factorial", re.compile(r"\bfactorial\b", re.I)),
    ("non-inferiority", re.compile(r"\bnon-?inferiority\b", re.I)),
    ("pilot", re.compile(r"\bpilot\b", re.I)),
    ("phase", re.compile(r"\bphase\s+(?:I{1,3}V?|IV|[1-4])(?:\s*/\s*(?:I{1,3}|[1-4]))?[ab]?\b")),
    ("prospective cohort", re.compile(r"\bprospective\s+cohort\b", re.I)),
    ("cohort study", re.compile(r"\bcohort\s+study\b", re.I)),
    ("case-control study", re.compile(r"\bcase[- ]control\b", re.I)),
    ("cross-sectional study", re.compile(r"\bcross[- ]sectional\b", re.I)),
    ("single-arm", re.compile(r"\bsingle[- ]arm\b|\bsingle[- ]group\b", re.I)),
)


def _design(paper: Paper) -> Found:
    values: list[str] = []
    evidence: list[Evidence] = []
    seen_sentences: set[int] = set()
    for name, pattern in _DESIGN_CUES:
        m = pattern.search(paper.text)
        if m is None:
            continue
        if name == "randomised controlled trial" and "cluster randomised trial" in values:
            continue
        values.append(m.group(0).strip() if name == "phase" else name)
        for ev in paper.evidence(m.start(), m.end()):
            if ev.start not in seen_sentences:
                seen_sentences.add(ev.start)
                evidence.append(ev)
    return Found(_join(values), evidence) if values else NOT_FOUND


def _randomised_n(paper: Paper) -> Found:
    from leads.extract.participants import describe_participants

    summary = describe_participants(paper.text)
    if summary.total is None:
        return NOT_FOUND
    return Found(str(summary.total), summary.total_evidence)


_COUNTRY_ALIASES = {
    "US": ["United States", "United States of America", "USA", "U.S.A.", "U.S."],
    "GB": ["United Kingdom", "UK", "U.K.", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland"],
    "KR": ["South Korea", "Republic of Korea", "Korea"],
    "KP": ["North Korea"],
    "CN": ["People's Republic of China", "PR China", "P.R. China"],
    "CZ": ["Czechia", "Czech Republic"],
    "TR": ["Türkiye", "Turkey"],
    "NL": ["The Netherlands", "Holland"],
    "RU": ["Russian Federation"],
    "IR": ["Islamic Republic of Iran"],
    "CD": ["Democratic Republic of the Congo", "DR Congo"],
    "MM": ["Myanmar", "Burma"],
    "SZ": ["Eswatini", "Swaziland"],
    "CI": ["Ivory Coast", "Côte d'Ivoire", "Cote d'Ivoire"],
    "VN": ["Viet Nam"],
}
# Country names that are also common words or other things in clinical text.
_COUNTRY_TRAPS = re.compile(r"^(?:Guinea(?=\s+pigs?)|Turkey(?=\s+(?:meat|tail))|Chad(?=\s+[A-Z])|Jordan(?=\s+[A-Z]))")


@lru_cache(maxsize=1)
def _countries() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern over every country name and alias; name -> the country's display name."""
    names: dict[str, str] = {}
    raw = resources.files("leads.extract").joinpath("models", "countries.tsv").read_text(encoding="utf-8")
    display: dict[str, str] = {}
    for line in raw.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, name = line.split("\t", 1)
        base = re.sub(r"\s*\(.*\)$", "", name).strip()
        if "’" in base:
            names[base] = base.replace("’", "'")
            base = base.replace("’", "'")
        display[code] = {"GB": "United Kingdom", "US": "United States", "KR": "South Korea",
                         "KP": "North Korea", "CD": "Democratic Republic of the Congo"}.get(code, base)
        if code not in {"KR", "KP", "CD", "CG", "AS", "WS", "VG", "VI", "MF", "SX"}:
            names[base] = display[code]
        names[name] = display[code]
    for code, aliases in _COUNTRY_ALIASES.items():
        for alias in aliases:
            names[alias] = display.get(code, alias)
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(n) for n in ordered) + r")(?![\w])")
    return pattern, names


def find_countries(text: str) -> list[tuple[str, int, int]]:
    """Countries named in ``text``: ``(display name, start, end)`` in order of appearance."""
    pattern, names = _countries()
    out = []
    for m in pattern.finditer(text):
        if _COUNTRY_TRAPS.match(text[m.start():m.start() + 40]):
            continue
        matched = m.group(0)
        if matched in {"U.S.", "UK", "U.K."} and re.match(r"\s*(?:dollars?|\$|pounds?)", text[m.end():]):
            continue
        if re.search(r"\([^()]{0,60},\s*$", text[max(0, m.start() - 62):m.start()]) and \
                text[m.end():m.end() + 1] == ")":
            continue  # a manufacturer's address: "SAS 9.3 (Cary, NC, USA)"
        out.append((names[matched], m.start(), m.end()))
    return out


def _countries_field(paper: Paper) -> Found:
    found = find_countries(paper.text)
    if not found:
        return NOT_FOUND
    evidence: list[Evidence] = []
    for _name, start, end in found:
        for ev in paper.evidence(start, end):
            if all(e.start != ev.start for e in evidence):
                evidence.append(ev)
    return Found(_join(name for name, _, _ in found), evidence)


_SETTING = re.compile(
    r"\b(?:(?:tertiary|secondary|primary|academic|university|teaching|community|general|district|"
    r"referral|public|private|rural|urban|specialist|outpatient|inpatient)[\w-]*\s+){0,4}"
    r"(?:hospitals?|medical cent(?:er|re)s?|cancer cent(?:er|re)s?|cent(?:er|re)s|clinics?|primary care|"
    r"general practices?|nursing homes?|intensive care units?|ICUs?|emergency departments?|"
    r"schools?|communit(?:y|ies)|outpatient (?:clinics?|departments?)|practices)\b",
    re.I,
)


def _setting(paper: Paper) -> Found:
    for s in paper.sentences:
        if s.heading and s.heading.lower().startswith("setting"):
            body = s.text[len(s.heading):].lstrip(":. ").rstrip(".")
            if body:
                return Found(body, [Evidence(quote=s.text, start=s.start, end=s.end)])
    for s in paper.sentences[1:] + paper.sentences[:1]:
        m = _SETTING.search(s.text)
        if m and not re.fullmatch(r"(?i)cent(?:er|re)s|practices|communit(?:y|ies)", m.group(0)):
            return Found(m.group(0), [Evidence(quote=s.text, start=s.start, end=s.end)])
    return NOT_FOUND


def _conditions(paper: Paper) -> Found:
    from leads.vocab.mesh import Mesh

    mesh = Mesh.load()
    regions = [(s.start, s.end) for s in paper.labelled("participants")]
    if paper.sentences:
        regions.insert(0, (paper.sentences[0].start, paper.sentences[0].end))
    names: list[str] = []
    evidence: list[Evidence] = []
    for start, end in regions:
        for m in mesh.find_concepts(paper.text[start:end]):
            if not any(t.startswith(("C", "F03")) for t in m.descriptor.tree_numbers):
                continue
            names.append(m.text)
            for ev in paper.evidence(start + m.start):
                if all(e.start != ev.start for e in evidence):
                    evidence.append(ev)
    return Found(_join(_dedupe_case(names)), evidence) if names else NOT_FOUND


def _dedupe_case(values: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for v in values:
        seen.setdefault(v.lower(), v)
    return list(seen.values())


_COMPARATOR = re.compile(
    r"\b(?:placebos?|sham|usual care|standard (?:care|treatment|therapy)|conventional (?:care|treatment|therapy)|"
    r"no (?:treatment|intervention|therapy)|observation|wait(?:ing)?[- ]list|control(?:s)?|untreated|vehicle|"
    r"best supportive care)\b",
    re.I,
)


def _intervention_spans(paper: Paper) -> list[PicoSpan]:
    return [s for s in paper.labelled("interventions") if len(s.text) > 2]


_ADMINISTERED = re.compile(
    r"\b(?:received?|receiving|administered|given|treated\s+with|assigned\s+to|allocated\s+to|"
    r"randomi[sz]ed\s+to|consisted\s+of|dos(?:e|es|ing|age)|regimen|infusion|injection|orally|"
    r"intravenous(?:ly)?|sessions?)\b", re.I)


def _interventions(paper: Paper, comparators: bool) -> Found:
    """The intervention (or comparator) names, quoted from the sentences that describe what was
    given: those with a dose or an administration verb ("received", "were assigned to") come
    first, then the other mentions in order; the title only as a last resort, since a title
    names an intervention but does not describe it."""
    chosen = [s for s in _intervention_spans(paper) if bool(_COMPARATOR.search(s.text)) == comparators]
    if not chosen:
        return NOT_FOUND
    names = _dedupe_case(s.text for s in chosen)
    evidence: list[Evidence] = []
    for s in chosen:
        for ev in paper.evidence(s.start, s.end):
            if all(e.start != ev.start for e in evidence):
                evidence.append(ev)
    title_start = paper.sentences[0].start if paper.sentences else -1

    def rank(ev: Evidence) -> tuple[int, int]:
        if ev.start == title_start:
            return (2, ev.start)
        described = bool(_DOSE.search(ev.quote) or _ADMINISTERED.search(ev.quote))
        return (0 if described else 1, ev.start)

    return Found(_join(names[:10]), sorted(evidence, key=rank)[:5])


_PRIMARY = re.compile(
    r"\b(?:the\s+)?(?:primary|main)\s+(?:efficacy\s+)?(?:outcome|end[- ]?point|endpoint|objective|measure)s?"
    r"(?:\s+(?:measures?|variables?|parameters?))?\s*(?:was|were|is|are|included|:|,)\s*(?:the\s+)?([^.;]{3,200})",
    re.I,
)
_OUTCOME_HEADING = re.compile(r"(?i)^(?:main\s+)?outcome\s+measures?|^primary\s+outcome")


def _primary_outcome(paper: Paper) -> Found:
    for s in paper.sentences:
        m = _PRIMARY.search(s.text)
        if m:
            return Found(m.group(1).strip(" ,"), [Evidence(quote=s.text, start=s.start, end=s.end)])
    for s in paper.sentences:
        if s.heading and _OUTCOME_HEADING.match(s.heading):
            body = s.text[len(s.heading):].lstrip(":. ").rstrip(".")
            if body:
                return Found(body, [Evidence(quote=s.text, start=s.start, end=s.end)])
    outcomes = paper.labelled("outcomes")
    if outcomes:
        first = outcomes[0]
        return Found(first.text, paper.evidence(first.start, first.end))
    return NOT_FOUND


_DURATION = (r"(\d+(?:\.\d+)?(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?|[a-z]+(?:-[a-z]+)?)"
             r"(?:\s*(?:±|\+/-)\s*\d+(?:\.\d+)?)?\s*(days?|weeks?|months?|years?|yrs?|mo|wk)\b")
_FOLLOW_UP = (
    re.compile(r"\b(?:median|mean|average)\s+(?:duration\s+of\s+)?follow[- ]?up\s+(?:period\s+)?"
               r"(?:was|of|:|=|time\s+(?:was|of))?\s*(?:\w+\s+){0,2}?" + _DURATION, re.I),
    re.compile(r"\bfollow(?:ed)?[- ]?(?:up)?\s+(?:for|over|period\s+of|duration\s+of|of)\s+"
               r"(?:(?:at\s+least|up\s+to|a\s+(?:median|mean)\s+of|about|approximately|a\s+minimum\s+of)\s+)?"
               + _DURATION, re.I),
    re.compile(r"\b" + _DURATION + r"\s+(?:of\s+)?follow[- ]?up\b", re.I),
)


def _follow_up(paper: Paper) -> Found:
    """The follow-up duration: a median/mean follow-up when reported, else the first one."""
    matches = [m for pattern in _FOLLOW_UP for m in pattern.finditer(paper.text)]
    matches = [m for m in matches if m.group(1).lower() not in {"the", "a", "of", "per"}]
    if not matches:
        return NOT_FOUND
    summary = [m for m in matches if re.search(r"median|mean|average", m.group(0), re.I)]
    m = min(summary or matches, key=lambda x: x.start())
    low = m.group(0).lower()
    prefix = next((w + " " for w in ("median", "mean", "at least", "up to") if w in low), "")
    quantity = paper.text[m.start(1):m.start(2)].strip()
    return Found(f"{prefix}{quantity} {m.group(2)}", paper.evidence(m.start(), m.end()))


_FUNDED_BY = re.compile(r"\b(?:funded|supported|sponsored|financed)\s+(?:in\s+part\s+|partly\s+|initially\s+)?by\b", re.I)
_FUNDING = re.compile(
    r"\b(?:funded|supported|sponsored|financed)\s+(?:in\s+part\s+)?by\b|\bfunding\b|\bgrants?\b"
    r"|\bsponsor(?:ed|ship)?\b",
    re.I,
)


_HEADING_ONLY = re.compile(r"^[\w. ]{0,40}:?$")


def _funding(paper: Paper) -> Found:
    """The funder ("supported by a grant from X" -> "a grant from X"), else the sentence that
    mentions funding or a grant. Headings ("FUNDING:") on their own are skipped."""
    sentences = [s for s in paper.sentences if not _HEADING_ONLY.match(s.text.strip())]
    for s in sentences:
        m = _FUNDED_BY.search(s.text)
        if m:
            value = re.split(r"[.;]", s.text[m.end():].strip(" :,"), maxsplit=1)[0].strip()
            if len(value) >= 3:
                return Found(value, [Evidence(quote=s.text, start=s.start, end=s.end)])
    for s in sentences:
        if _FUNDING.search(s.text):
            return Found(s.text.rstrip("."), [Evidence(quote=s.text, start=s.start, end=s.end)])
    return NOT_FOUND


_REGISTRIES = (
    ("ISRCTN", re.compile(r"\bISRCTN\s*:?\s*(\d{8})\b")),
    ("EudraCT", re.compile(r"\b(?:EudraCT\s*(?:number|no\.?)?\s*:?\s*)(\d{4}-\d{6}-\d{2})\b", re.I)),
    ("ACTRN", re.compile(r"\b(ACTRN\d{14})\b")),
    ("ChiCTR", re.compile(r"\b(ChiCTR[-A-Z]*\d{6,12})\b")),
    ("CTRI", re.compile(r"\b(CTRI/\d{4}/\d{2,3}/\d{6})\b")),
    ("DRKS", re.compile(r"\b(DRKS\d{8})\b")),
    ("UMIN", re.compile(r"\b(UMIN\d{9})\b")),
    ("NTR", re.compile(r"\b(NTR\d{3,5})\b")),
    ("PACTR", re.compile(r"\b(PACTR\d{15,16})\b")),
    ("IRCT", re.compile(r"\b(IRCT\d{8,}N\d+)\b")),
)


def find_registrations(text: str) -> list[tuple[str, int, int]]:
    """Trial registration numbers in ``text``: ``(id, start, end)``; NCT ids normalised."""
    out: list[tuple[str, int, int]] = []
    ncts = find_identifiers(text)["nct"]
    for nct in ncts:
        m = re.search(r"NCT\s*0*" + re.escape(nct[3:].lstrip("0")), text, re.I)
        if m is None:
            m = re.search(re.escape(nct[3:]), text)
        if m is not None:
            out.append((nct, m.start(), m.end()))
    for name, pattern in _REGISTRIES:
        for m in pattern.finditer(text):
            value = m.group(1)
            if name in {"ISRCTN", "EudraCT"}:
                value = f"{name} {value}" if name == "EudraCT" else f"ISRCTN{value}"
            out.append((value, m.start(), m.end()))
    return sorted(dict.fromkeys(out), key=lambda x: x[1])


def _registration(paper: Paper) -> Found:
    found = find_registrations(paper.text)
    if not found:
        return NOT_FOUND
    evidence: list[Evidence] = []
    for _value, start, end in found:
        for ev in paper.evidence(start, end):
            if all(e.start != ev.start for e in evidence):
                evidence.append(ev)
    return Found(_join(v for v, _, _ in found), evidence)


_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE = rf"(?:(?:\d{{1,2}}(?:st|nd|rd|th)?\s+)?{_MONTH}\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?)?(?:19|20)\d{{2}}"
_DATE_RANGE = re.compile(
    rf"\b(?:between\s+{_DATE},?\s+and\s+{_DATE}|from\s+{_DATE},?\s*(?:to|until|till|through|and|-|–)\s*{_DATE}"
    rf"|{_DATE}\s*(?:-|–|to)\s*{_DATE})")
_RECRUITED = re.compile(r"\b(?:recruit|enrol|includ|conduct|screen|randomi[sz]|accru|enter|perform|carried out|"
                        r"took place|study period|trial period)", re.I)


def _recruitment_period(paper: Paper) -> Found:
    """The dates of recruitment: a date range ("between May 2010 and November 2010", "from
    2005 to 2008") in a sentence about recruiting, enrolling or conducting the study, else
    the first date range outside the title."""
    ranges = [(s, m) for s in paper.sentences[1:] for m in _DATE_RANGE.finditer(s.text)]
    if not ranges:
        return NOT_FOUND
    s, m = next(((s, m) for s, m in ranges if _RECRUITED.search(s.text)), ranges[0])
    return Found(m.group(0), [Evidence(quote=s.text, start=s.start, end=s.end)])


Extractor = Callable[[Paper], Found]

#: Built-in fields: name -> (pattern that recognises a requested field, extractor). Checked in
#: order, so the specific ones (comparator, primary outcome) come before the general ones. The
#: patterns start at word boundaries: "allocation concealment" is not a "location".
BUILTIN_FIELDS: dict[str, tuple[re.Pattern[str], Extractor]] = {
    "registration": (re.compile(r"\bregist|\btrial (?:id|number)|\bnct\b|\bidentifier|\bisrctn", re.I), _registration),
    "funding": (re.compile(r"\bfund|\bsponsor|\bgrants?\b|\bfinanc", re.I), _funding),
    "recruitment period": (re.compile(r"\brecruit|\baccrual|\b(?:enrol(?:l)?ment|study|trial|inclusion) "
                                      r"(?:period|dates?)\b|\bdates?\b", re.I), _recruitment_period),
    "follow-up": (re.compile(r"\bfollow[- ]?up|\bduration of (?:the )?(?:study|trial)", re.I), _follow_up),
    "randomised N": (re.compile(r"\brandomi[sz]ed\s*(?:n\b|number|participants|patients)|\bsample size|"
                                r"\bnumber of (?:participants|patients|subjects)|\benrol|\bN\b|\btotal\s+n\b", re.I),
                     _randomised_n),
    "design": (re.compile(r"\bdesign|\bstudy type|\btype of (?:study|trial)|\bmethodolog", re.I), _design),
    "countries": (re.compile(r"\bcountr|\blocations?\b|\bregions?\b|\bnations?\b", re.I), _countries_field),
    "setting": (re.compile(r"\bsetting|\bsites?\b|\bcent(?:er|re)s?\b|\bhospital", re.I), _setting),
    "comparators": (re.compile(r"\bcomparators?\b|\bcomparison|\bcontrols?\b", re.I),
                    lambda p: _interventions(p, comparators=True)),
    "primary outcome": (re.compile(r"\boutcome|\bend ?points?\b", re.I), _primary_outcome),
    "conditions": (re.compile(r"\bcondition|\bdisease|\bdiagnos|\bindication|\billness|\bdisorder", re.I),
                   _conditions),
    "interventions": (re.compile(r"\bintervention|\btreatment|therap|\bdrugs?\b|\bexposure", re.I),
                      lambda p: _interventions(p, comparators=False)),
}

#: Names that mean a built-in field outright (compared after :func:`_normal_name`).
BUILTIN_SYNONYMS: dict[str, frozenset[str]] = {
    "registration": frozenset({"registration", "trial registration", "registration number", "registry",
                               "trial registry", "trial id", "trial identifier", "identifier", "nct",
                               "nct number", "nct id", "clinicaltrials gov id", "isrctn"}),
    "funding": frozenset({"funding", "funder", "funders", "funding source", "source of funding",
                          "sources of funding", "sponsor", "sponsors", "sponsorship", "grant", "grants",
                          "financial support", "financing"}),
    "recruitment period": frozenset({"recruitment period", "recruitment", "recruitment dates",
                                     "dates of recruitment", "study period", "trial period", "enrolment period",
                                     "enrollment period", "accrual period", "inclusion period"}),
    "follow-up": frozenset({"follow up", "follow up duration", "duration of follow up", "length of follow up",
                            "followup", "study duration", "trial duration"}),
    "randomised N": frozenset({"randomised n", "n", "n randomised", "sample size", "number randomised",
                               "number of participants", "number of patients", "participants randomised",
                               "enrolment", "enrollment", "total n", "number enrolled"}),
    "design": frozenset({"design", "study design", "trial design", "study type", "type of study",
                         "type of trial"}),
    "countries": frozenset({"country", "countries", "location", "locations", "region", "nation"}),
    "setting": frozenset({"setting", "settings", "study setting", "sites", "study sites", "centres", "centers"}),
    "comparators": frozenset({"comparator", "comparators", "comparison", "control", "control group",
                              "control intervention", "control arm"}),
    "primary outcome": frozenset({"primary outcome", "primary outcomes", "primary endpoint", "primary end point",
                                  "main outcome", "main outcome measure", "primary outcome measure",
                                  "outcome", "outcomes", "endpoint"}),
    "conditions": frozenset({"condition", "conditions", "disease", "diseases", "indication", "diagnosis"}),
    "interventions": frozenset({"intervention", "interventions", "treatment", "treatments", "drug", "drugs",
                                "exposure", "experimental intervention", "intervention group"}),
}

# Words that open a clause or a prepositional phrase: a built-in word after one of them is not
# what the field is about ("who was blinded after assignment to *interventions*", "blinding of
# *outcome* assessors", "statistical methods used to compare groups for the primary *outcome*").
_CLAUSE = re.compile(
    r"\b(?:who|whom|whose|which|that|used|using|after|before|when|where|whether|while|defining|"
    r"describing|for|to|with|by|in|on|at|among|between|against|from|during|per|via|of)\b", re.I)
# Head nouns that take their meaning from an "of" phrase: "number of participants", "sources of
# funding", "duration of follow-up", "type of study".
_GENERIC_HEAD = frozenset("""number numbers count total type kind duration length source sources name names
                          list country countries place places date dates details description location
                          locations""".split())  # noqa: SIM905


def _normal_name(text: str) -> str:
    """Lower case, British spelling of randomis-/enrol-, punctuation to spaces."""
    text = text.lower().replace("randomiz", "randomis")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def _head_end(text: str) -> int:
    """Where the head phrase of a field name or description ends: at the first clause or
    prepositional word, except an "of" after a generic noun ("number of ...")."""
    for m in _CLAUSE.finditer(text):
        if m.group(0).lower() == "of":
            before = re.findall(r"[a-z]+", text[:m.start()].lower())
            if before and before[-1] in _GENERIC_HEAD:
                continue
        return m.start()
    return len(text)


def _builtin_in(text: str) -> str | None:
    """The built-in named first in ``text``'s head phrase ("countries of recruitment" is about
    countries); at the same place, the first in :data:`BUILTIN_FIELDS` order."""
    head = text[:_head_end(text)]
    found = [(m.start(), i, key) for i, (key, (pattern, _fn)) in enumerate(BUILTIN_FIELDS.items())
             if (m := pattern.search(head)) is not None]
    return min(found)[2] if found else None


def builtin_for(name: str, description: str = "") -> str | None:
    """The built-in field a requested field means, or ``None`` for a user-defined field.

    The name decides first: an exact synonym ("sample size", "sponsor"), else a built-in word in
    the name's head phrase ("primary end point", "countries of recruitment"). Only a name that
    names nothing falls back to the description, and there too only its head phrase counts, so a
    description that merely mentions a built-in in a clause ("who was blinded after assignment
    to interventions") leaves the field to the sentence retrieval of user-defined fields.
    """
    normal = _normal_name(name)
    for builtin, synonyms in BUILTIN_SYNONYMS.items():
        if normal in synonyms:
            return builtin
    by_name = _builtin_in(name) if name.strip() else None
    if by_name is not None:
        return by_name
    return _builtin_in(description) if description.strip() else None


# --------------------------------------------------------------------------------------------
# User-defined fields: the most similar sentence
# --------------------------------------------------------------------------------------------

_STOP = frozenset("""the a an of in on and or to for with by from as at is are was were be this that
                  what which how study trial paper reported report value number""".split())  # noqa: SIM905
MIN_SIMILARITY = 0.35
MIN_OVERLAP = 0.5


def _content(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 2}


def _similar_sentence(paper: Paper, name: str, description: str) -> Found:
    if not paper.sentences:
        return NOT_FOUND
    query = f"{name}: {description}" if description else name
    wanted = _content(query)
    scores: list[float] | None = None
    try:
        from leads.screen.embeddings import Embedder

        if Embedder.available():
            emb = Embedder.load()
            sims = emb.embed([query]) @ paper.sentence_vectors(emb).T
            scores = [float(x) for x in sims[0]]
    except Exception:
        scores = None
    overlap = [len(wanted & _content(s.text)) / max(1, len(wanted)) for s in paper.sentences]
    if scores is not None:
        combined = [sc + 0.3 * ov for sc, ov in zip(scores, overlap, strict=True)]
        best = max(range(len(combined)), key=combined.__getitem__)
        if scores[best] < MIN_SIMILARITY and overlap[best] < MIN_OVERLAP:
            return NOT_FOUND
    else:
        best = max(range(len(overlap)), key=overlap.__getitem__)
        if overlap[best] < MIN_OVERLAP:
            return NOT_FOUND
    # A section heading ("Statistical analysis", "Randomisation and masking") resembles the
    # field but reports nothing: the section's first sentence does.
    while _is_heading(paper.sentences[best].text) and best + 1 < len(paper.sentences):
        best += 1
    s = paper.sentences[best]
    return Found(s.text, [Evidence(quote=s.text, start=s.start, end=s.end)])


def _is_heading(text: str) -> bool:
    """A heading on its own: a few words without a full stop or a verb-like ending."""
    text = text.strip()
    return bool(text) and len(text.split()) <= 8 and not text.endswith((".", "?", "!")) \
        and bool(re.fullmatch(r"[\w ,;:&/()'’-]+", text))


@implements("characteristics", version=VERSION)
def classic_characteristics(inp: CharacteristicsInput) -> CharacteristicsOutput:
    """One value per requested field with its supporting sentence(s); ``None`` = not reported."""
    paper = Paper.of(inp.text)
    fields: list[ExtractedField] = []
    for spec in inp.fields:
        key = builtin_for(spec.name, spec.description)
        found = BUILTIN_FIELDS[key][1](paper) if key else _similar_sentence(paper, spec.name, spec.description)
        value = " ".join(found.value.split()) if found.value is not None else None  # NBSP, line breaks
        fields.append(ExtractedField(name=spec.name, value=value,
                                     evidence=found.evidence if found.value is not None else []))
    return CharacteristicsOutput(fields=fields)


# --------------------------------------------------------------------------------------------
# Arms
# --------------------------------------------------------------------------------------------

_DOSE = re.compile(
    r"\b\d+(?:\.\d+)?\s*(?:-|–|to)?\s*(?:\d+(?:\.\d+)?\s*)?"
    r"(?:mg|g|µg|μg|mcg|ug|ng|IU|U|units?|mL|ml|L|mmol|mEq|Gy|cGy|mg/kg|mg/m2|mg/m\(2\)|mg/m²)"
    r"(?:\s*/\s*(?:kg|m2|m²|day|d|week|wk|h|hour))?"
    r"(?:\s+(?:once|twice|three times|four times|daily|per day|a day|weekly|every \w+(?: \w+)?|"
    r"b\.?i\.?d\.?|t\.?i\.?d\.?|q\.?d\.?|orally|intravenously|i\.v\.|p\.o\.)){0,3}",
)
_PLACEBO = re.compile(r"\bplacebos?\b", re.I)
_SHAM = re.compile(r"\bsham\b", re.I)
_NO_INTERVENTION = re.compile(
    r"\bno (?:treatment|intervention|therapy|further treatment)\b|\bobservation(?: alone| only)?\b|"
    r"\bwait(?:ing)?[- ]list\b|\buntreated\b|\bnot undergo\b|^no\s+\w+", re.I)
_ACTIVE_COMPARATOR = re.compile(
    r"\b(?:usual|standard|conventional|routine) (?:care|treatment|therapy|practice)\b|\bcontrol\b|"
    r"\bbest supportive care\b|\balone\b", re.I)
_RANDOMISED_TO = re.compile(
    r"\b(?:randomi[sz]ed|randomly\s+(?:assigned|allocated)|assigned|allocated)\b[^.;]{0,40}?\bto\b"
    r"\s+(?:receive\s+|undergo\s+|either\s+|one\s+of\s+)?", re.I)
_SPLIT_ARMS = re.compile(r"\s*(?:,\s*(?:or|and)?|\bor\b|\bversus\b|\bvs\.?|\bcompared\s+with\b|\band\b)\s*", re.I)


def _arm_type(name: str, control_hint: bool) -> str:
    if _PLACEBO.search(name):
        return "PLACEBO_COMPARATOR"
    if _SHAM.search(name):
        return "SHAM_COMPARATOR"
    if _NO_INTERVENTION.search(name):
        return "NO_INTERVENTION"
    if _ACTIVE_COMPARATOR.search(name) or control_hint:
        return "ACTIVE_COMPARATOR"
    return "EXPERIMENTAL"


def _intervention_names(paper: Paper, name: str) -> list[str]:
    """Drug and procedure names in an arm's name (MeSH D/E concepts), else the name itself."""
    from leads.vocab.mesh import Mesh

    names = [m.text for m in Mesh.load().find_concepts(name)
             if any(t.startswith(("D", "E02", "E04", "E05", "F04")) for t in m.descriptor.tree_numbers)]
    names = [n for n in _dedupe_case(names) if n.lower() not in {"therapy", "treatment", "control"}]
    cleaned = re.sub(r"^(?:the|a|an)\s+|\s+(?:group|arm)s?$", "", name.strip(), flags=re.I)
    return names or [cleaned]


def _description(paper: Paper, name: str, around: Sentence | None) -> tuple[str, list[Evidence]]:
    """What the arm received: "the <name> group received X" when the paper says so, else the
    clause naming the arm with a dose, else the arm's name (quoted from the sentence it is in)."""
    received = re.compile(
        r"\b" + re.escape(name) + r"\s+(?:group|arm)?\s*(?:patients|participants|subjects)?\s*"
        r"(?:received|receiving|were given|was given|were treated with|underwent|took)\s+([^.;]{2,200})", re.I)
    for s in paper.sentences:
        m = received.search(s.text)
        if m:
            return m.group(1).strip(" ,"), [Evidence(quote=s.text, start=s.start, end=s.end)]
    key = _content(name) - {"group", "arm", "alone", "plus"}
    for s in ([around] if around else []) + paper.sentences:
        if s is None or not key or not (key & _content(s.text)):
            continue
        for clause in re.split(r"(?<=[;,])\s+(?=(?:or|and|versus|vs)\b)|;\s*", s.text):
            if key & _content(clause) and _DOSE.search(clause):
                return clause.strip(" ,;."), [Evidence(quote=s.text, start=s.start, end=s.end)]
    if around is not None:
        return name, [Evidence(quote=around.text, start=around.start, end=around.end)]
    return name, []


def _arms_from_counts(paper: Paper) -> list[tuple[str, bool, Sentence | None]]:
    from leads.extract.participants import describe_participants

    summary = describe_participants(paper.text)
    out = []
    for g in summary.groups:
        if g.name in {"intervention group", "control group"}:
            continue  # no name found in the text for this arm
        sentence = paper.sentence_at(g.evidence[0].start) if g.evidence else None
        out.append((g.name, g.type == "control", sentence))
    return out


def _arms_from_sentence(paper: Paper) -> list[tuple[str, bool, Sentence | None]]:
    """Arms named after "randomised to" (or "X versus Y" in the title): its intervention spans."""
    candidates = [s for s in paper.sentences if _RANDOMISED_TO.search(s.text)]
    if paper.sentences and re.search(r"\bversus\b|\bvs\.?\b|\bcompared with\b", paper.sentences[0].text, re.I):
        candidates.append(paper.sentences[0])
    for s in candidates:
        spans = [sp for sp in paper.labelled("interventions") if s.start <= sp.start and sp.end <= s.end]
        m = _RANDOMISED_TO.search(s.text)
        if m:
            spans = [sp for sp in spans if sp.start >= s.start + m.start()]
        pieces: list[str] = []
        for sp in spans:
            pieces.extend(p for p in _SPLIT_ARMS.split(sp.text) if len(p.strip()) > 2)
        pieces = _dedupe_case(p.strip(" ,;()") for p in pieces)
        if len(pieces) >= 2:
            return [(p, bool(_COMPARATOR.search(p)), s) for p in pieces[:6]]
    return []


@implements("arms", version=VERSION)
def classic_arms(inp: ArmsInput) -> ArmsOutput:
    """The trial's arms with type, description (with dose) and intervention names."""
    paper = Paper.of(inp.text)
    found = _arms_from_counts(paper)
    if len(found) < 2:
        found = _arms_from_sentence(paper) or found
    arms: list[ExtractedArm] = []
    for name, control, sentence in found:
        description, evidence = _description(paper, name, sentence)
        arm_type = _arm_type(name, control)
        if arm_type in {"ACTIVE_COMPARATOR", "EXPERIMENTAL"} and description != name:
            # "the control group received no statins": the description can say more than the name.
            described = _arm_type(description, False)
            if described in {"PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION"}:
                arm_type = described
        arms.append(ExtractedArm(label=" ".join(name.split()), type=arm_type,  # type: ignore[arg-type]
                                 description=" ".join(description.split()), interventions=_intervention_names(paper, name),
                                 evidence=evidence))
    return ArmsOutput(arms=arms)
