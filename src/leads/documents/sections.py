"""Section typing: which part of a trial report a heading opens.

Extraction tasks look in different places (arms and eligibility in the methods, numbers in the
results and tables), so every section gets one of a small set of types. A heading is typed from
its words (``"Patients and methods"`` -> methods, ``"Statistical analysis"`` -> methods,
``"Results and discussion"`` -> results); JATS ``sec-type`` attributes are used first when
present. A heading that says nothing about its type (``"Primary outcome"``) inherits the type of
the section it is nested in; see :func:`resolve_type`.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

__all__ = [
    "SECTION_TYPES",
    "SectionType",
    "classify_heading",
    "classify_sec_type",
    "clean_heading",
    "is_major_heading",
    "resolve_type",
]

SectionType = Literal[
    "title",
    "abstract",
    "introduction",
    "methods",
    "results",
    "discussion",
    "conclusion",
    "table",
    "figure",
    "references",
    "other",
]
SECTION_TYPES: tuple[str, ...] = get_args(SectionType)

# Order matters: the first pattern that matches at the start of the heading wins, so
# "Results and discussion" is results and "Methods and results" is methods.
_RULE_PATTERNS: tuple[tuple[SectionType, str], ...] = (
    ("abstract", r"^(?:structured\s+)?(?:abstract|summary\s+abstract|author\s+summary|synopsis)\b"),
    ("references", r"^(?:references?|bibliography|literature\s+cited|works\s+cited|citations)\b"),
    ("introduction", r"^(?:introduction|background|rationale|context|objectives?|aims?|purpose|"
                         r"hypothes[ie]s|study\s+objectives?)\b"),
    ("methods", r"^(?:(?:materials?|patients?|subjects?|participants?)\s+(?:and|&)\s+methods?|"
                    r"methods?|methodology|study\s+design|trial\s+design|design|setting|participants?|"
                    r"patients?\b(?!\s+characteristics)|subjects|population|eligibility|inclusion|exclusion|"
                    r"interventions?|procedures?|randomi[sz]ation|allocation|blinding|masking|"
                    r"sample\s+size|statistic(?:al|s)|data\s+(?:analysis|collection|management)|"
                    r"outcome\s+measures?|(?:primary|secondary)\s+(?:outcome|end\s*-?\s*point)s?\s+measures?|"
                    r"measurements?|assessments?|ethic(?:s|al)|experimental|study\s+population|"
                    r"follow-?up\s+procedures?|treatment\s+protocol|protocol)\b"),
    ("results", r"^(?:results?|findings|outcomes?\b(?!\s+measures?)|baseline\s+characteristics|"
                    r"patient\s+characteristics|participant\s+flow|recruitment|efficacy|safety|"
                    r"adverse\s+events?|primary\s+(?:outcome|end\s*-?\s*point)s?$)"),
    ("discussion", r"^(?:discussion|comments?|interpretation|limitations?|strengths?|"
                       r"general\s+discussion)\b"),
    ("conclusion", r"^(?:conclusions?|concluding\s+remarks?|summary|implications?|"
                       r"clinical\s+implications?|key\s+messages?|what\s+this\s+study\s+adds)\b"),
    ("other", r"^(?:acknowledge?ments?|funding|financial\s+(?:support|disclosure)|competing\s+interests?|"
                  r"conflicts?\s+of\s+interests?|declaration|disclosures?|author(?:s'?|'s)?\s+contributions?|"
                  r"contributors|abbreviations|supplementary|supporting\s+information|appendix|"
                  r"additional\s+(?:file|information|material)s?|electronic\s+supplementary|"
                  r"pre-?publication\s+history|footnotes?|notes|trial\s+registration|registration|"
                  r"data\s+(?:availability|sharing)|availability\s+of\s+data|consent|provenance|"
                  r"ethics\s+approval\s+and\s+consent)\b"),
)
_RULES: tuple[tuple[SectionType, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _RULE_PATTERNS
)

# JATS sec-type values (JATS tag library, "sec-type" suggested values) and common variants.
_SEC_TYPES: dict[str, SectionType] = {
    "intro": "introduction",
    "introduction": "introduction",
    "background": "introduction",
    "materials": "methods",
    "methods": "methods",
    "materials|methods": "methods",
    "materials and methods": "methods",
    "subjects": "methods",
    "patients": "methods",
    "cases": "methods",
    "results": "results",
    "results|discussion": "results",
    "discussion": "discussion",
    "conclusions": "conclusion",
    "conclusion": "conclusion",
    "supplementary-material": "other",
    "display-objects": "other",
    "abbreviations": "other",
    "acknowledgments": "other",
    "funding-information": "other",
    "COI-statement": "other",
    "data-availability": "other",
}

_NUMBERING = re.compile(r"^\s*(?:(?:\d+|[IVXivx]+|[A-Z])(?:\.\d+)*\.?\)?|\(\w\))\s+")


def clean_heading(title: str) -> str:
    """The heading without numbering, punctuation around it, or repeated whitespace."""
    text = re.sub(r"\s+", " ", title).strip()
    text = _NUMBERING.sub("", text)
    return text.strip(" .:;-\u2013\u2014")


def classify_heading(title: str | None) -> SectionType | None:
    """The section type a heading names, or ``None`` when its words do not say."""
    if not title:
        return None
    text = clean_heading(title)
    # "ABSTRACT.BACKGROUND" / "BODY.METHODS" (the evidence-inference text layout).
    if "." in text and re.fullmatch(r"[A-Z][A-Z .&/-]*\.[A-Z][A-Z .&/-]*", text):
        head, _, tail = text.partition(".")
        if head.strip() == "ABSTRACT":
            return "abstract"
        text = tail
    if re.search(r"\bresults?$", text, re.IGNORECASE) and not re.match(r"(?i)(?:materials?\s+and\s+)?methods?\b", text):
        return "results"  # "Data analysis and results", "Main results"
    for kind, pattern in _RULES:
        if pattern.search(text):
            return kind
    return None


def classify_sec_type(sec_type: str | None) -> SectionType | None:
    """The section type of a JATS ``sec-type`` attribute value, if it is a known one."""
    if not sec_type:
        return None
    value = sec_type.strip()
    return _SEC_TYPES.get(value) or _SEC_TYPES.get(value.lower())


def resolve_type(own: SectionType | None, parent: SectionType | None) -> SectionType:
    """The type of a section from its own heading's type and its parent section's type.

    Inside the abstract, methods, results or discussion a sub-heading keeps the parent's type
    ("Results" > "Adverse events" stays results; "Abstract" > "Methods" stays abstract), except
    where the sub-heading is a table or figure. Under an untyped parent the sub-heading's own
    type wins.
    """
    if own in ("table", "figure"):
        return own
    if parent is not None and parent not in ("other", "title"):
        return parent
    if own is not None:
        return own
    return parent or "other"


_MAJOR = re.compile(
    r"^(?:abstract|summary|introduction|background|(?:materials?|patients?|subjects?|participants?)\s+"
    r"(?:and|&)\s+methods?|methods?|methodology|results?(?:\s+and\s+discussion)?|findings|discussion|"
    r"conclusions?|concluding\s+remarks|references|bibliography|acknowledge?ments?|funding|"
    r"competing\s+interests?|conflicts?\s+of\s+interests?|declarations?|author(?:s'?|'s)?\s+contributions?|"
    r"abbreviations|appendix|supplementary\s+materials?|trial\s+registration)$",
    re.IGNORECASE,
)


def is_major_heading(title: str | None) -> bool:
    """Whether a heading names a top-level part of an article (Methods, Results, References...).

    Flat text (plain text, PDF) has no nesting, so readers use this to decide whether a heading
    opens a new top-level section or a sub-section of the current one.
    """
    if not title:
        return False
    text = clean_heading(title)
    if "." in text and re.fullmatch(r"[A-Z][A-Z .&/-]*\.[A-Z][A-Z .&/-]*", text):
        text = text.partition(".")[2]
    return bool(_MAJOR.match(text.strip()))
