"""Bibliographic and registry records, their identifiers, and identifier normalisation.

A :class:`Record` is what every reader produces and every writer consumes: one study report
(journal article, conference abstract, preprint) or one trial registration. Identifiers are
normalised on the way in (:func:`normalize_doi`, :func:`normalize_pmid`, :func:`normalize_pmcid`,
:func:`normalize_nct`), so equal identifiers compare equal as strings.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AbstractSection",
    "MeshHeading",
    "Record",
    "find_identifiers",
    "normalize_doi",
    "normalize_nct",
    "normalize_pmcid",
    "normalize_pmid",
]

RecordType = Literal["article", "registration", "other"]

_DOI_PREFIX = re.compile(
    r"^\s*(?:doi\s*[:=]?\s*|https?://(?:dx\.)?doi\.org/|(?:dx\.)?doi\.org/|urn:doi:)",
    re.IGNORECASE,
)
_DOI_SHAPE = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_IN_TEXT = re.compile(r"\b10\.\d{4,9}/[^\s\"<>]+", re.IGNORECASE)
_PMID_SHAPE = re.compile(r"^[1-9]\d{0,8}$")
_PMID_PREFIX = re.compile(
    r"^\s*(?:pmid\s*[:=]?\s*|https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov/|ncbi\.nlm\.nih\.gov/pubmed/))",
    re.IGNORECASE,
)
_PMID_IN_TEXT = re.compile(r"\bPMID\s*:?\s*([1-9]\d{0,8})\b", re.IGNORECASE)
_PMCID_SHAPE = re.compile(r"^PMC\d{1,9}$")
_PMCID_IN_TEXT = re.compile(r"\bPMC\s?(\d{3,9})\b")
_NCT_SHAPE = re.compile(r"^NCT\d{8}$")
_NCT_IN_TEXT = re.compile(r"\bNCT\s?(\d{8})\b", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:)]}'\""


def normalize_doi(value: str | None) -> str | None:
    """Return the DOI in canonical form (lower case, no ``doi:``/URL prefix), or ``None``.

    DOIs are case-insensitive by definition, so lower case is canonical. Returns ``None`` for
    anything that is not shaped like a DOI (``10.<registrant>/<suffix>``).
    """
    if value is None:
        return None
    text = _DOI_PREFIX.sub("", value.strip())
    text = text.strip().rstrip(_TRAILING_PUNCT).strip()
    # URL-encoded slashes appear in exports copied from links.
    text = text.replace("%2F", "/").replace("%2f", "/")
    text = text.lower()
    if not _DOI_SHAPE.match(text):
        return None
    return text


def normalize_pmid(value: str | int | None) -> str | None:
    """Return the PMID as a string of digits without leading zeros, or ``None``."""
    if value is None:
        return None
    text = _PMID_PREFIX.sub("", str(value).strip()).strip().rstrip("/").strip()
    # "12345 [PubMed - indexed for MEDLINE]" is how MEDLINE PMID lines can end.
    text = text.split()[0] if text else text
    text = text.lstrip("0")
    if not _PMID_SHAPE.match(text):
        return None
    return text


def normalize_pmcid(value: str | int | None) -> str | None:
    """Return the PMCID as ``PMC<digits>``; a bare number is taken as a PMCID."""
    if value is None:
        return None
    text = str(value).strip().upper().replace(" ", "")
    text = re.sub(r"^(?:PMCID:)", "", text)
    if text.isdigit():
        text = "PMC" + text.lstrip("0")
    text = re.sub(r"^PMC0+", "PMC", text)
    if not _PMCID_SHAPE.match(text):
        return None
    return text


def normalize_nct(value: str | None) -> str | None:
    """Return a ClinicalTrials.gov id as ``NCT`` + 8 digits, or ``None``."""
    if value is None:
        return None
    text = str(value).strip().upper().replace(" ", "").replace("-", "")
    if not _NCT_SHAPE.match(text):
        return None
    return text


def find_identifiers(text: str | None) -> dict[str, list[str]]:
    """Find identifiers mentioned in free text (abstracts, notes, MEDLINE ``SI`` lines).

    Returns ``{"nct": [...], "doi": [...], "pmid": [...], "pmcid": [...]}``, each list normalised,
    de-duplicated and in order of first appearance. PMIDs are only taken when labelled ``PMID``,
    because bare numbers are too ambiguous.
    """
    found: dict[str, list[str]] = {"nct": [], "doi": [], "pmid": [], "pmcid": []}
    if not text:
        return found

    def add(kind: str, value: str | None) -> None:
        if value and value not in found[kind]:
            found[kind].append(value)

    for match in _NCT_IN_TEXT.finditer(text):
        add("nct", normalize_nct("NCT" + match.group(1)))
    for match in _DOI_IN_TEXT.finditer(text):
        add("doi", normalize_doi(match.group(0)))
    for match in _PMID_IN_TEXT.finditer(text):
        add("pmid", normalize_pmid(match.group(1)))
    for match in _PMCID_IN_TEXT.finditer(text):
        add("pmcid", normalize_pmcid("PMC" + match.group(1)))
    return found


class AbstractSection(BaseModel):
    """One labelled part of a structured abstract (``label`` is ``None`` for unlabelled text)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    text: str


class MeshHeading(BaseModel):
    """A MeSH heading: descriptor, optional qualifiers, and whether it is a major topic."""

    model_config = ConfigDict(extra="forbid")

    descriptor: str
    ui: str | None = None
    major: bool = False
    qualifiers: list[str] = Field(default_factory=list)
    major_qualifiers: list[str] = Field(default_factory=list)


class Record(BaseModel):
    """One study report or trial registration, as read from a source.

    ``abstract`` is the whole abstract as one string; when the source had a structured abstract,
    ``abstract_sections`` keeps its labelled parts (and ``abstract`` is their labelled join).
    ``label`` is an inclusion label carried by the source (ASReview/Rayyan/Covidence exports);
    ``extra`` keeps source-specific fields that have no place above, so nothing read is lost.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    record_type: RecordType = "article"
    source_id: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    nct_ids: list[str] = Field(default_factory=list)
    other_ids: dict[str, str] = Field(default_factory=dict)
    title: str | None = None
    abstract: str | None = None
    abstract_sections: list[AbstractSection] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    journal: str | None = None
    journal_abbrev: str | None = None
    year: int | None = None
    pub_date: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    language: str | None = None
    mesh: list[MeshHeading] = Field(default_factory=list)
    publication_types: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)
    label: bool | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("doi", mode="before")
    @classmethod
    def _doi(cls, value: Any) -> str | None:
        return normalize_doi(value) if value is not None else None

    @field_validator("pmid", mode="before")
    @classmethod
    def _pmid(cls, value: Any) -> str | None:
        return normalize_pmid(value) if value is not None else None

    @field_validator("pmcid", mode="before")
    @classmethod
    def _pmcid(cls, value: Any) -> str | None:
        return normalize_pmcid(value) if value is not None else None

    @field_validator("nct_ids", mode="before")
    @classmethod
    def _ncts(cls, value: Any) -> list[str]:
        if value is None:
            return []
        out: list[str] = []
        for item in value:
            nct = normalize_nct(item)
            if nct and nct not in out:
                out.append(nct)
        return out

    @field_validator("title", "abstract", "journal", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def add_identifiers_from_text(self, *texts: str | None) -> None:
        """Take NCT ids, and a DOI/PMID/PMCID where missing, from the given texts."""
        for text in texts:
            found = find_identifiers(text)
            for nct in found["nct"]:
                if nct not in self.nct_ids:
                    self.nct_ids.append(nct)
            if self.doi is None and found["doi"]:
                self.doi = found["doi"][0]
            if self.pmid is None and found["pmid"]:
                self.pmid = found["pmid"][0]
            if self.pmcid is None and found["pmcid"]:
                self.pmcid = found["pmcid"][0]

    @property
    def first_author(self) -> str | None:
        return self.authors[0] if self.authors else None

    def identifiers(self) -> dict[str, str]:
        """The record's identifiers as ``{"pmid": ..., "doi": ..., ...}`` (present ones only)."""
        ids: dict[str, str] = {}
        for kind in ("pmid", "pmcid", "doi"):
            value = getattr(self, kind)
            if value:
                ids[kind] = value
        for i, nct in enumerate(self.nct_ids):
            ids["nct" if i == 0 else f"nct{i + 1}"] = nct
        return ids

    def display_id(self) -> str:
        if self.pmid:
            return f"PMID:{self.pmid}"
        if self.nct_ids and self.record_type == "registration":
            return self.nct_ids[0]
        if self.doi:
            return f"doi:{self.doi}"
        if self.source_id:
            return f"#{self.source_id}"
        return "(no id)"


def join_abstract(sections: list[AbstractSection]) -> str:
    """The single-string form of a structured abstract: ``LABEL: text`` paragraphs."""
    parts = []
    for section in sections:
        if section.label:
            parts.append(f"{section.label}: {section.text}")
        else:
            parts.append(section.text)
    return "\n".join(parts)
