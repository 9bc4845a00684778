"""ClinicalTrials.gov API v2 JSON: one study, a search page, or JSON Lines of either.

A study is ``{"protocolSection": ..., "resultsSection": ..., "derivedSection": ...,
"hasResults": ...}`` (``GET /api/v2/studies/{nctId}``); a search page is ``{"studies": [...],
"nextPageToken": ..., "totalCount": ...}`` (``GET /api/v2/studies``). Each study gives one
``Record(record_type="registration")``:

- ``nct_ids``: the study's ``nctId``, then its ``nctIdAliases`` (ids merged into it);
- ``title``: ``officialTitle``, else ``briefTitle``; ``abstract``: ``briefSummary``;
- ``year``: the year of ``startDateStruct``; ``urls``: the study's page on clinicaltrials.gov;
- ``keywords``: the conditions, then the keywords (duplicates dropped);
- ``mesh``: the condition and intervention MeSH terms of ``derivedSection``;
- ``other_ids``: ``org_study_id`` and the secondary ids, keyed by kind (``eudract``, ``ctis``,
  ``nih``, ``isrctn``, ``drks``, ... ; a second id of a kind gets ``_2``);
- ``extra``: ``brief_title``, ``acronym``, ``detailed_description``, ``overall_status``,
  ``study_type``, ``phases``, ``start_date``, ``completion_date``, ``first_posted``,
  ``lead_sponsor``, ``enrollment``, ``has_results``, ``references`` (the
  ``referencesModule`` entries as ``{"pmid", "type", "citation", "doi"}``, ``doi`` taken from
  the citation text) and ``ctgov_study``, the study exactly as read.

The writer writes one ``{"studies": [...]}`` page: a record read from this format is written
back from ``extra["ctgov_study"]`` unchanged; another registration record is written as a
minimal study built from its fields. Records that are not registrations are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from leads.errors import FormatError, LeadsError
from leads.formats._registry import RecordFormat, decode_text, register_format
from leads.records import Record, find_identifiers, normalize_nct

__all__ = ["FORMAT", "read", "sniff", "write"]

_STUDY_KEYS = {
    "protocolSection",
    "resultsSection",
    "annotationSection",
    "documentSection",
    "derivedSection",
    "hasResults",
}
_PAGE_KEYS = {"studies", "nextPageToken", "totalCount"}
_FIRST_KEY = re.compile(rb'^\s*\{\s*"([A-Za-z]+)"\s*:')
_YEAR = re.compile(r"^([0-9]{4})")
_SECONDARY_KINDS = {
    "EUDRACT_NUMBER": "eudract",
    "CTIS": "ctis",
    "NIH": "nih",
    "FDA": "fda",
    "VA": "va",
    "CDC": "cdc",
    "AHRQ": "ahrq",
    "SAMHSA": "samhsa",
    "OTHER_GRANT": "grant",
    "OTHER": "other",
}
_KIND_TYPES = {kind: type_ for type_, kind in _SECONDARY_KINDS.items()}
# Registry ids found as secondary ids of type REGISTRY, recognised by their shape.
_REGISTRIES = (
    ("isrctn", re.compile(r"^ISRCTN\s?\d+$", re.I)),
    ("drks", re.compile(r"^DRKS\d+$", re.I)),
    ("actrn", re.compile(r"^ACTRN\d+$", re.I)),
    ("chictr", re.compile(r"^ChiCTR", re.I)),
    ("jrct", re.compile(r"^jRCT", re.I)),
    ("umin", re.compile(r"^UMIN", re.I)),
    ("ctri", re.compile(r"^CTRI/", re.I)),
    ("euctr", re.compile(r"^EUCTR", re.I)),
    ("irct", re.compile(r"^IRCT", re.I)),
    ("kct", re.compile(r"^KCT\d+$", re.I)),
    ("pactr", re.compile(r"^PACTR", re.I)),
    ("ntr", re.compile(r"^(?:NTR|NL)\d+$", re.I)),
)


# --------------------------------------------------------------------------- sniffing


def sniff(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        return False
    first_line = text.split(b"\n", 1)[0].strip()
    try:
        obj = json.loads(first_line)
    except ValueError:
        # A pretty-printed or a long (cut) document: decide by its first key.
        match = _FIRST_KEY.match(text)
        return match is not None and match.group(1).decode() in _STUDY_KEYS | _PAGE_KEYS
    return isinstance(obj, dict) and _kind(obj) is not None


def _kind(obj: dict[str, Any]) -> str | None:
    if isinstance(obj.get("protocolSection"), dict):
        return "study"
    if isinstance(obj.get("studies"), list):
        return "page"
    return None


# --------------------------------------------------------------------------- reading


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _str(obj: Any, *path: str) -> str | None:
    value = _get(obj, *path)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _strings(obj: Any, *path: str) -> list[str]:
    value = _get(obj, *path)
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]


def _registry_kind(identifier: str) -> str:
    for kind, pattern in _REGISTRIES:
        if pattern.match(identifier):
            return kind
    return "registry"


def _other_ids(identification: Any) -> dict[str, str]:
    ids: dict[str, str] = {}

    def add(kind: str, value: str) -> None:
        key, n = kind, 1
        while key in ids:
            n += 1
            key = f"{kind}_{n}"
        ids[key] = value

    org_id = _str(identification, "orgStudyIdInfo", "id")
    if org_id:
        add("org_study_id", org_id)
    infos = _get(identification, "secondaryIdInfos")
    for info in infos if isinstance(infos, list) else []:
        value = _str(info, "id")
        if not value:
            continue
        type_ = _str(info, "type") or "OTHER"
        if type_ == "REGISTRY":
            add(_registry_kind(value), value)
        else:
            add(_SECONDARY_KINDS.get(type_, type_.lower()), value)
    return ids


def _references(protocol: Any) -> list[dict[str, Any]]:
    references = _get(protocol, "referencesModule", "references")
    out: list[dict[str, Any]] = []
    for reference in references if isinstance(references, list) else []:
        if not isinstance(reference, dict):
            continue
        citation = _str(reference, "citation")
        dois = find_identifiers(citation)["doi"] if citation else []
        out.append(
            {
                "pmid": _str(reference, "pmid"),
                "type": _str(reference, "type"),
                "citation": citation,
                "doi": dois[0] if dois else None,
            }
        )
    return out


def _mesh(study: Any) -> list[dict[str, Any]]:
    headings: list[dict[str, Any]] = []
    seen: set[str] = set()
    for module in ("conditionBrowseModule", "interventionBrowseModule"):
        meshes = _get(study, "derivedSection", module, "meshes")
        for mesh in meshes if isinstance(meshes, list) else []:
            term = _str(mesh, "term")
            if term and term not in seen:
                seen.add(term)
                headings.append({"descriptor": term, "ui": _str(mesh, "id")})
    return headings


def _study_record(study: Any, source: str, number: int, line: int | None) -> Record:
    def fail(message: str, field: str) -> FormatError:
        return FormatError(message, source=source, record=number, line=line, field=field)

    if not isinstance(study, dict):
        raise fail("a study must be a JSON object", "studies")
    protocol = study.get("protocolSection")
    if not isinstance(protocol, dict):
        raise fail("study without a protocolSection", "protocolSection")
    identification = protocol.get("identificationModule")
    raw_nct = _get(identification, "nctId")
    if not isinstance(raw_nct, str) or not raw_nct.strip():
        raise fail("study without an nctId", "protocolSection.identificationModule.nctId")
    nct = normalize_nct(raw_nct)
    if nct is None:
        raise fail(f"invalid nctId {raw_nct!r}", "protocolSection.identificationModule.nctId")
    aliases = [a for a in (normalize_nct(x) for x in _strings(identification, "nctIdAliases")) if a]
    brief_title = _str(identification, "briefTitle")
    start_date = _str(protocol, "statusModule", "startDateStruct", "date")
    year_match = _YEAR.match(start_date) if start_date else None
    keywords: list[str] = []
    for keyword in _strings(protocol, "conditionsModule", "conditions") + _strings(
        protocol, "conditionsModule", "keywords"
    ):
        if keyword not in keywords:
            keywords.append(keyword)
    extra: dict[str, Any] = {}
    for key, value in (
        ("brief_title", brief_title),
        ("acronym", _str(identification, "acronym")),
        ("detailed_description", _str(protocol, "descriptionModule", "detailedDescription")),
        ("overall_status", _str(protocol, "statusModule", "overallStatus")),
        ("study_type", _str(protocol, "designModule", "studyType")),
        ("phases", _strings(protocol, "designModule", "phases") or None),
        ("start_date", start_date),
        ("completion_date", _str(protocol, "statusModule", "completionDateStruct", "date")),
        ("first_posted", _str(protocol, "statusModule", "studyFirstPostDateStruct", "date")),
        ("lead_sponsor", _str(protocol, "sponsorCollaboratorsModule", "leadSponsor", "name")),
        ("enrollment", _get(protocol, "designModule", "enrollmentInfo", "count")),
        ("has_results", study.get("hasResults")),
        ("references", _references(protocol) or None),
    ):
        if value is not None:
            extra[key] = value
    extra["ctgov_study"] = study
    # Nested values are given as plain data; the Record model validates them into its types.
    return Record.model_validate(
        dict(
            record_type="registration",
            nct_ids=[nct, *aliases],
            other_ids=_other_ids(identification),
            title=_str(identification, "officialTitle") or brief_title,
            abstract=_str(protocol, "descriptionModule", "briefSummary"),
            year=int(year_match.group(1)) if year_match else None,
            urls=[f"https://clinicaltrials.gov/study/{nct}"],
            keywords=keywords,
            mesh=_mesh(study),
            extra=extra,
        )
    )


def _document(obj: Any, source: str, start: int, line: int | None) -> Iterator[Record]:
    """The records of one JSON value (a study, a page or a list of studies)."""
    number = start
    if isinstance(obj, list):
        studies = obj
    elif isinstance(obj, dict) and _kind(obj) == "page":
        studies = obj["studies"]
    elif isinstance(obj, dict) and _kind(obj) == "study":
        studies = [obj]
    elif isinstance(obj, dict) and ("FullStudiesResponse" in obj or "StudyFieldsResponse" in obj):
        raise FormatError(
            "a ClinicalTrials.gov API v1 response; only API v2 JSON is supported",
            source=source,
            line=line,
        )
    else:
        raise FormatError(
            "not ClinicalTrials.gov API v2 JSON (expected a study with protocolSection "
            "or a page with studies)",
            source=source,
            record=number + 1,
            line=line,
        )
    for study in studies:
        number += 1
        yield _study_record(study, source, number, line)


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    try:
        document = json.loads(text)
    except RecursionError:
        raise FormatError("JSON nested too deeply", source=source) from None
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise FormatError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from None
        yield from _json_lines(text, source, exc)
        return
    yield from _document(document, source, 0, None)


def _json_lines(text: str, source: str, whole: json.JSONDecodeError) -> Iterator[Record]:
    count = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            raise FormatError(
                "JSON nested too deeply", source=source, record=count + 1, line=line_no
            ) from None
        except json.JSONDecodeError as exc:
            if count == 0:
                # Not JSON Lines either: one document with something after it.
                raise FormatError(
                    f"invalid JSON: {whole.msg}", source=source, line=whole.lineno
                ) from None
            raise FormatError(
                f"invalid JSON: {exc.msg}", source=source, record=count + 1, line=line_no
            ) from None
        for record in _document(obj, source, count, line_no):
            count += 1
            yield record


# --------------------------------------------------------------------------- writing


def _secondary_infos(other_ids: dict[str, str]) -> list[dict[str, str]]:
    infos: list[dict[str, str]] = []
    for key, value in other_ids.items():
        kind = re.sub(r"_\d+$", "", key)
        if kind == "org_study_id":
            continue
        if kind in _KIND_TYPES:
            infos.append({"id": value, "type": _KIND_TYPES[kind]})
        else:
            infos.append({"id": value, "type": "REGISTRY", "domain": kind})
    return infos


def _synthesise(record: Record) -> dict[str, Any]:
    """A minimal API v2 study carrying a registration record's fields."""
    extra = record.extra
    identification: dict[str, Any] = {"nctId": record.nct_ids[0]}
    if len(record.nct_ids) > 1:
        identification["nctIdAliases"] = record.nct_ids[1:]
    if "org_study_id" in record.other_ids:
        identification["orgStudyIdInfo"] = {"id": record.other_ids["org_study_id"]}
    infos = _secondary_infos(record.other_ids)
    if infos:
        identification["secondaryIdInfos"] = infos
    brief_title = extra.get("brief_title")
    identification["briefTitle"] = brief_title if isinstance(brief_title, str) else record.title
    if record.title:
        identification["officialTitle"] = record.title
    if isinstance(extra.get("acronym"), str):
        identification["acronym"] = extra["acronym"]
    protocol: dict[str, Any] = {"identificationModule": identification}
    start = extra.get("start_date")
    if not isinstance(start, str) or not start.startswith(str(record.year)):
        start = f"{record.year:04d}" if record.year is not None else None
    if start:
        protocol["statusModule"] = {"startDateStruct": {"date": start}}
    description: dict[str, Any] = {}
    if record.abstract:
        description["briefSummary"] = record.abstract
    if isinstance(extra.get("detailed_description"), str):
        description["detailedDescription"] = extra["detailed_description"]
    if description:
        protocol["descriptionModule"] = description
    if record.keywords:
        protocol["conditionsModule"] = {"keywords": list(record.keywords)}
    references = extra.get("references")
    if isinstance(references, list) and references:
        protocol["referencesModule"] = {
            "references": [
                {k: v for k, v in ref.items() if k in ("pmid", "type", "citation") and v}
                for ref in references
                if isinstance(ref, dict)
            ]
        }
    study: dict[str, Any] = {"protocolSection": protocol}
    if record.mesh:
        study["derivedSection"] = {
            "conditionBrowseModule": {
                "meshes": [
                    {"id": m.ui, "term": m.descriptor} if m.ui else {"term": m.descriptor}
                    for m in record.mesh
                ]
            }
        }
    return study


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    studies: list[Any] = []
    for number, record in enumerate(records, start=1):
        study = record.extra.get("ctgov_study")
        if isinstance(study, dict):
            studies.append(study)
        elif record.record_type == "registration" and record.nct_ids:
            studies.append(_synthesise(record))
        else:
            raise LeadsError(
                f"record {number} ({record.display_id()}) is not a ClinicalTrials.gov "
                "registration; ctgov-json can only carry registrations with an NCT id"
            )
    text = json.dumps({"studies": studies}, ensure_ascii=False)
    # A lone surrogate (only possible inside a JSON string) becomes its \uXXXX escape.
    stream.write(text.encode("utf-8", errors="backslashreplace") + b"\n")
    return len(studies)


FORMAT = register_format(
    RecordFormat(
        name="ctgov-json",
        description="ClinicalTrials.gov API v2 JSON (study, search page, or JSON Lines)",
        extensions=(".json", ".jsonl", ".ndjson"),
        sniff=sniff,
        read=read,
        write=write,
        priority=20,
        aliases=("ctgov", "clinicaltrials-json"),
    )
)
