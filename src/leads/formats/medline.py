"""MEDLINE/PubMed tagged text (``.nbib``, PubMed "Send to: file", ``efetch rettype=medline``) and
the Web of Science tagged format (``savedrecs.txt``, ``PT J`` ... ``ER``).

MEDLINE: each line is a tag padded to four characters, ``- `` and a value (``PMID- 1234``,
``AU  - Smith J``); a line starting with spaces continues the value above it; records are
separated by blank lines. Web of Science: a two-character tag, a space and a value; a line
starting with three spaces continues it (for author and address tags, each such line is a value
of its own); ``PT`` starts a record, ``ER`` ends it, ``EF`` ends the file.

Both readers keep the tags they do not map in ``Record.extra`` (``"medline"``/``"wos"``: tag to
list of values), and both writers write them back, so a file survives a read/write round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

from rispy.config import WOK_LIST_TYPE_TAGS

from leads.errors import FormatError
from leads.formats._registry import RecordFormat, decode_text, register_format
from leads.records import (
    AbstractSection,
    MeshHeading,
    Record,
    find_identifiers,
    join_abstract,
    normalize_doi,
    normalize_nct,
    normalize_pmcid,
    normalize_pmid,
)

__all__ = ["FORMAT", "WOS_FORMAT", "read", "read_wos", "sniff", "sniff_wos", "write", "write_wos"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# The tag is padded to four characters: "PMID- ", "AU  - ", "FAU - ".
_MEDLINE_TAG = re.compile(r"^(?=[A-Z][A-Z0-9 ]{3}-)([A-Z][A-Z0-9]{1,3}) *-(?: (.*))?$")
# Tags only MEDLINE uses (RIS shares TI, AU, AB, DA ...), for telling the two apart.
_MEDLINE_ONLY = frozenset(
    {"PMID", "FAU", "STAT", "OWN", "JT", "VI", "IP", "PG", "DEP", "AID", "LID", "SO", "EDAT",
     "MHDA", "PHST", "CRDT", "MH", "PST", "JID", "DCOM", "LR", "PMC", "OT", "OTO", "PL"}
)  # fmt: skip
_WRAP = 82
_SECTION_LABEL = re.compile(r"(?:^|(?<=[.?!]) +)([A-Z][A-Z ,&/-]*[A-Z]): +")
_ID_SUFFIX = re.compile(r"^(.*?)\s*\[([a-z-]+)\]\s*$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): i for i, name in enumerate(_MONTHS, start=1)}
_DP = re.compile(r"^(\d{4})(?: ([A-Za-z]{3})(?: (\d{1,2}))?)?$")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def _head_lines(head: bytes) -> list[str]:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="replace")
    return [line.lstrip("\ufeff") for line in _LINE_BREAK.split(text)]


def _first_lines(head: bytes, count: int) -> list[str]:
    return [line for line in _head_lines(head) if line.strip()][:count]


def _clean(value: object) -> str:
    """A value as one line: whitespace runs (line breaks included) become one space."""
    return " ".join(str(value).replace("\x00", "").split())


def _wrap(prefix: str, value: str, indent: str) -> list[str]:
    """Lines of at most ``_WRAP`` characters (longer only for one long word), split at spaces."""
    lines: list[str] = []
    current = prefix
    has_word = False
    for word in value.split(" "):
        if has_word and len(current) + 1 + len(word) > _WRAP:
            lines.append(current)
            current = indent + word
        else:
            current = f"{current} {word}" if has_word else current + word
        has_word = True
    lines.append(current)
    return lines


@dataclass
class _Block:
    number: int
    line: int
    fields: list[tuple[str, str, int]] = field(default_factory=list)


class _Tags:
    """A record's (tag, value) pairs; taking a value marks it as mapped to a Record field."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.used = [False] * len(pairs)

    def all(self, *tags: str) -> list[str]:
        return [value for tag, value in self.pairs if tag in tags]

    def take_first(self, *tags: str) -> str | None:
        for tag in tags:
            for i, (key, value) in enumerate(self.pairs):
                if key == tag and not self.used[i] and value:
                    self.used[i] = True
                    return value
        return None

    def take_all(self, *tags: str) -> list[str]:
        out = []
        for i, (key, value) in enumerate(self.pairs):
            if key in tags and not self.used[i]:
                self.used[i] = True
                if value:
                    out.append(value)
        return out

    def take_where(self, tag: str, keep: Any) -> list[Any]:
        out = []
        for i, (key, value) in enumerate(self.pairs):
            if key == tag and not self.used[i]:
                result = keep(value)
                if result is not None:
                    self.used[i] = True
                    out.append(result)
        return out

    def leftover(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for (tag, value), used in zip(self.pairs, self.used, strict=True):
            if not used and value:
                out.setdefault(tag, []).append(value)
        return out


def _leftover_from_extra(
    extra: dict[str, Any], key: str, tag_shape: re.Pattern[str]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for tag, values in (extra.get(key) or {}).items():
        if tag_shape.fullmatch(str(tag)):
            items = values if isinstance(values, list) else [values]
            out[str(tag)] = [_clean(v) for v in items if _clean(v)]
    return out


# --- MEDLINE -----------------------------------------------------------------------------------


def sniff(head: bytes) -> bool:
    """True when the content starts with MEDLINE tag lines (``PMID- ``, ``TI  - ``, ...)."""
    lines = _first_lines(head, 40)
    if not lines or not _MEDLINE_TAG.match(lines[0]):
        return False
    tags = {m.group(1) for line in lines if (m := _MEDLINE_TAG.match(line))}
    return "TY" not in tags and bool(tags & _MEDLINE_ONLY)


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    for block in _medline_blocks(text, source):
        yield _medline_record(block, source)


def _medline_blocks(text: str, source: str) -> Iterator[_Block]:
    block: _Block | None = None
    number = 0
    for line_no, raw in enumerate(_LINE_BREAK.split(text), start=1):
        line = raw.lstrip("\ufeff") if block is None else raw
        if not line.strip():
            if block is not None:
                yield block
                block = None
            continue
        if line[0] in " \t":
            if block is None:
                raise FormatError(
                    "continuation line (starting with spaces) with no tag line before it",
                    source=source,
                    record=number + 1,
                    line=line_no,
                )
            tag, value, first = block.fields[-1]
            block.fields[-1] = (tag, f"{value} {line.strip()}".strip(), first)
            continue
        match = _MEDLINE_TAG.match(line)
        if not match:
            raise FormatError(
                f"not a MEDLINE line (expected 'TAG - value' or a continuation): {line[:60]!r}",
                source=source,
                record=number + (0 if block is not None else 1),
                line=line_no,
            )
        if block is None:
            number += 1
            block = _Block(number, line_no)
        block.fields.append((match.group(1), (match.group(2) or "").strip(), line_no))
    if block is not None:
        yield block


def _medline_record(block: _Block, source: str) -> Record:
    tags = _Tags([(tag, value) for tag, value, _ in block.fields])
    record = Record()
    extra: dict[str, Any] = {}

    record.pmid = next(iter(tags.take_where("PMID", normalize_pmid)), None)
    record.title = tags.take_first("TI")
    abstract = tags.take_first("AB")
    if abstract:
        sections = _abstract_sections(abstract)
        if sections:
            record.abstract_sections = sections
            record.abstract = join_abstract(sections)
        else:
            record.abstract = abstract
    record.authors = _medline_authors(tags)
    record.journal = tags.take_first("JT")
    record.journal_abbrev = tags.take_first("TA")
    dp = next(iter(tags.all("DP")), None)
    if dp is not None:
        record.year, record.pub_date, exact = _parse_dp(dp)
        if exact:
            tags.take_first("DP")
    record.volume = tags.take_first("VI")
    record.issue = tags.take_first("IP")
    record.pages = tags.take_first("PG")
    record.language = tags.take_first("LA")
    record.mesh = [_mesh(value) for value in tags.take_all("MH")]
    record.publication_types = tags.take_all("PT")
    record.keywords = tags.take_all("OT")
    record.pmcid = next((p for p in (normalize_pmcid(v) for v in tags.all("PMC")) if p), None)
    if record.pmcid:
        tags.take_where("PMC", lambda v: v if normalize_pmcid(v) == record.pmcid else None)

    dois = [_article_id(value, "doi") for value in tags.all("AID", "LID")]
    record.doi = next((doi for doi in (normalize_doi(d) for d in dois if d) if doi), None)
    if record.doi:
        for tag in ("AID", "LID"):
            tags.take_where(
                tag, lambda v: v if normalize_doi(_article_id(v, "doi")) == record.doi else None
            )
    record.nct_ids = tags.take_where("SI", _nct_from_si)
    notes = tags.take_all("GN")
    if notes:
        extra["notes"] = notes
    for text in [record.abstract, *notes]:
        for nct in find_identifiers(text)["nct"]:
            if nct not in record.nct_ids:
                record.nct_ids.append(nct)

    leftover = tags.leftover()
    if leftover:
        extra["medline"] = leftover
    record.extra = extra
    try:
        return Record.model_validate(record.model_dump())
    except ValueError as exc:
        raise FormatError(str(exc), source=source, record=block.number, line=block.line) from None


def _medline_authors(tags: _Tags) -> list[str]:
    authors: list[str] = []
    pending_fau = False
    for i, (tag, value) in enumerate(tags.pairs):
        if tag == "FAU":
            tags.used[i] = True
            if value:
                authors.append(value)
                pending_fau = True
        elif tag == "AU":
            tags.used[i] = True
            if pending_fau:
                pending_fau = False  # the short form of the FAU just read
            elif value:
                authors.append(value)
        elif tag == "CN":
            tags.used[i] = True
            pending_fau = False
            if value:
                authors.append(value)
    return authors


def _abstract_sections(abstract: str) -> list[AbstractSection]:
    matches = list(_SECTION_LABEL.finditer(abstract))
    if not matches:
        return []
    sections: list[AbstractSection] = []
    lead = abstract[: matches[0].start()].strip()
    if lead:
        sections.append(AbstractSection(label=None, text=lead))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(abstract)
        text = abstract[match.end() : end].strip()
        sections.append(AbstractSection(label=match.group(1), text=text))
    if any(not section.text for section in sections):
        return []
    return sections


def _mesh(value: str) -> MeshHeading:
    descriptor, *qualifiers = [part.strip() for part in value.split("/")]
    major = descriptor.startswith("*")
    heading = MeshHeading(descriptor=descriptor.lstrip("*").strip() or descriptor, major=major)
    for qualifier in qualifiers:
        name = qualifier.lstrip("*").strip()
        if not name:
            continue
        heading.qualifiers.append(name)
        if qualifier.startswith("*"):
            heading.major_qualifiers.append(name)
    return heading


def _article_id(value: str, kind: str) -> str | None:
    match = _ID_SUFFIX.match(value)
    if match and match.group(2) == kind:
        return match.group(1)
    return None


def _nct_from_si(value: str) -> str | None:
    registry, _, number = value.partition("/")
    if registry.strip().lower() == "clinicaltrials.gov":
        return normalize_nct(number)
    return None


def _parse_dp(value: str) -> tuple[int | None, str | None, bool]:
    """(year, ISO date when more precise than the year, whether that says all the value says)."""
    match = _DP.match(value.strip())
    if match:
        year = int(match.group(1))
        month_name, day = match.group(2), match.group(3)
        if month_name is None:
            return year, None, True
        month = _MONTH_NUMBER.get(month_name.lower())
        if month is not None:
            try:
                if day:
                    return year, date(year, month, int(day)).isoformat(), True
                return year, f"{year:04d}-{month:02d}", True
            except ValueError:
                pass
    found = _YEAR.search(value)
    return (int(found.group(1)) if found else None), None, False


def _format_dp(record: Record) -> str | None:
    if record.pub_date:
        match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", record.pub_date)
        if match and 1 <= int(match.group(2)) <= 12:
            text = f"{match.group(1)} {_MONTHS[int(match.group(2)) - 1]}"
            return f"{text} {int(match.group(3))}" if match.group(3) else text
        return record.pub_date
    return str(record.year) if record.year is not None else None


def _short_author(full: str) -> str:
    """``Casbon, James A`` -> ``Casbon JA`` (the MEDLINE AU form)."""
    last, _, first = full.partition(",")
    short = f"{last.strip()} {_initials(first)}".strip()
    return short or full


def _format_mesh(heading: MeshHeading) -> str:
    parts = [("*" if heading.major else "") + heading.descriptor]
    for qualifier in heading.qualifiers:
        parts.append(("*" if qualifier in heading.major_qualifiers else "") + qualifier)
    return "/".join(parts)


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    count = 0
    for record in records:
        stream.write(b"\n")  # PubMed's own files start with a blank line, then one per record
        stream.write(("\n".join(_medline_lines(record)) + "\n").encode("utf-8"))
        count += 1
    return count


def _medline_lines(record: Record) -> list[str]:
    extra = record.extra or {}
    pairs: list[tuple[str, str]] = []

    def add(tag: str, value: object) -> None:
        if value is not None and _clean(value):
            pairs.append((tag, _clean(value)))

    add("PMID", record.pmid)
    add("DP", None if "DP" in (extra.get("medline") or {}) else _format_dp(record))
    add("TI", record.title)
    add("PG", record.pages)
    if record.abstract_sections:
        add(
            "AB",
            " ".join(
                f"{s.label}: {s.text}" if s.label else s.text for s in record.abstract_sections
            ),
        )
    else:
        add("AB", record.abstract)
    for author in record.authors:
        name = _clean(author)
        if "," in name:
            add("FAU", name)
            add("AU", _short_author(name))
        else:
            add("AU", name)
    add("LA", record.language)
    for publication_type in record.publication_types:
        add("PT", publication_type)
    add("VI", record.volume)
    add("IP", record.issue)
    add("TA", record.journal_abbrev)
    add("JT", record.journal)
    for heading in record.mesh:
        add("MH", _format_mesh(heading))
    add("PMC", record.pmcid)
    for keyword in record.keywords:
        add("OT", keyword)
    for nct in record.nct_ids:
        add("SI", f"ClinicalTrials.gov/{nct}")
    for note in extra.get("notes") or []:
        add("GN", note)
    if record.doi:
        add("AID", f"{record.doi} [doi]")
    for tag, values in _leftover_from_extra(
        extra, "medline", re.compile(r"[A-Z][A-Z0-9]{0,3}")
    ).items():
        for value in values:
            add(tag, value)
    if not pairs:
        return ["TI  - "]  # a record with nothing in it is still a record
    lines: list[str] = []
    for tag, value in pairs:
        lines.extend(_wrap(f"{tag.ljust(4)}- ", value, " " * 6))
    return lines


# --- Web of Science ------------------------------------------------------------------------------

_WOS_TAG = re.compile(r"^([A-Z][A-Z0-9])(?: (.*))?$")
# Tags whose continuation lines are values of their own (one author or address per line).
_WOS_LINE_TAGS = frozenset(WOK_LIST_TYPE_TAGS) | {"C1", "C3", "BE"}
_WOS_SEMICOLON_TAGS = frozenset({"DE", "ID", "DT"})


def sniff_wos(head: bytes) -> bool:
    """True for Web of Science tagged text: ``FN``/``VR`` header or ``PT J`` first."""
    lines = _first_lines(head, 3)
    if not lines:
        return False
    first = lines[0]
    if re.match(r"^FN (Thomson Reuters|Clarivate|ISI)", first):
        return True
    return bool(re.match(r"^PT [A-Z]\s*$", first)) and any(
        _WOS_TAG.match(line) and not line.startswith("PT") for line in lines[1:]
    )


def read_wos(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    blocks = list(_wos_blocks(text, source))
    if not blocks and text.strip() and not re.search(r"(?m)^(FN|VR|EF)\b", text):
        raise FormatError(
            "no Web of Science records found (a record starts with 'PT ')", source=source
        )
    for block in blocks:
        yield _wos_record(block, source)


def _wos_blocks(text: str, source: str) -> Iterator[_Block]:
    block: _Block | None = None
    number = 0
    for line_no, raw in enumerate(_LINE_BREAK.split(text), start=1):
        line = raw.lstrip("\ufeff") if block is None else raw
        if not line.strip():
            continue
        if block is not None and line[0] in " \t":
            tag, value, first = block.fields[-1]
            if tag in _WOS_LINE_TAGS:
                block.fields.append((tag, line.strip(), line_no))
            else:
                block.fields[-1] = (tag, f"{value} {line.strip()}".strip(), first)
            continue
        match = _WOS_TAG.match(line)
        if not match:
            raise FormatError(
                f"not a Web of Science line (expected 'TG value'): {line[:60]!r}",
                source=source,
                record=number + (0 if block is not None else 1),
                line=line_no,
            )
        tag, value = match.group(1), (match.group(2) or "").strip()
        if block is None:
            if tag in ("FN", "VR", "EF"):
                continue  # file header and end-of-file lines
            if tag != "PT":
                raise FormatError(
                    f"tag {tag!r} outside a record (a record starts with 'PT ')",
                    source=source,
                    record=number + 1,
                    line=line_no,
                    field=tag,
                )
            number += 1
            block = _Block(number, line_no)
        if tag == "ER":
            yield block
            block = None
            continue
        if tag == "PT" and block.fields:
            raise FormatError(
                f"a new record starts but record {number} has no 'ER' line",
                source=source,
                record=number,
                line=line_no,
                field="ER",
            )
        block.fields.append((tag, value, line_no))
    if block is not None:
        raise FormatError(
            "the file ends inside this record (no 'ER' line)",
            source=source,
            record=block.number,
            line=block.line,
            field="ER",
        )


def _wos_record(block: _Block, source: str) -> Record:
    tags = _Tags([(tag, value) for tag, value, _ in block.fields])
    record = Record()
    extra: dict[str, Any] = {}

    full = tags.all("AF")
    record.authors = full if full else tags.all("AU")
    tags.take_all("AF", "AU")
    record.authors += tags.take_all("CA")
    record.title = tags.take_first("TI")
    record.journal = tags.take_first("SO")
    record.journal_abbrev = tags.take_first("JI", "J9")
    record.abstract = tags.take_first("AB")
    year = tags.take_where("PY", lambda v: int(v) if re.fullmatch(r"\d{4}", v.strip()) else None)
    record.year = year[0] if year else None
    if record.year is not None:
        dates = tags.take_where("PD", lambda v: _wos_date(v, record.year))
        record.pub_date = dates[0] if dates else None
    record.volume = tags.take_first("VL")
    record.issue = tags.take_first("IS")
    start, end = tags.take_first("BP"), tags.take_first("EP")
    if start and end and start != end:
        record.pages = f"{start}-{end}"
    else:
        record.pages = start or end or tags.take_first("AR")
    record.doi = next((d for d in (normalize_doi(v) for v in tags.all("DI")) if d), None)
    if record.doi:
        tags.take_where("DI", lambda v: v if normalize_doi(v) == record.doi else None)
    record.pmid = next((p for p in (normalize_pmid(v) for v in tags.all("PM")) if p), None)
    if record.pmid:
        tags.take_where("PM", lambda v: v if normalize_pmid(v) == record.pmid else None)
    record.language = tags.take_first("LA")
    record.keywords = [k for value in tags.take_all("DE", "ID") for k in _semicolon_list(value)]
    record.publication_types = [t for value in tags.take_all("DT") for t in _semicolon_list(value)]
    for value in tags.all("UT"):
        if value.upper().startswith("WOS:"):
            record.other_ids["wos"] = value[4:].strip()
    for nct in find_identifiers(record.abstract)["nct"]:
        record.nct_ids.append(nct)

    leftover = tags.leftover()
    if leftover:
        extra["wos"] = leftover
    record.extra = extra
    try:
        return Record.model_validate(record.model_dump())
    except ValueError as exc:
        raise FormatError(str(exc), source=source, record=block.number, line=block.line) from None


def _semicolon_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(";") if item.strip()]


def _wos_date(value: str, year: int) -> str | None:
    match = re.fullmatch(r"(?:(\d{4}) )?([A-Za-z]{3})(?: (\d{1,2}))?", value.strip())
    if not match or (match.group(1) and int(match.group(1)) != year):
        return None
    month = _MONTH_NUMBER.get(match.group(2).lower())
    if month is None:
        return None
    try:
        if match.group(3):
            return date(year, month, int(match.group(3))).isoformat()
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}"


def write_wos(records: Iterable[Record], stream: BinaryIO) -> int:
    stream.write(b"FN Clarivate Analytics Web of Science\nVR 1.0\n")
    count = 0
    for record in records:
        stream.write(("\n".join(_wos_lines(record)) + "\n\n").encode("utf-8"))
        count += 1
    stream.write(b"EF\n")
    return count


def _wos_lines(record: Record) -> list[str]:
    extra = record.extra or {}
    leftover = _leftover_from_extra(extra, "wos", re.compile(r"[A-Z][A-Z0-9]"))
    pt = next(iter(leftover.pop("PT", [])), "J")
    pairs: list[tuple[str, str]] = []

    def add(tag: str, value: object) -> None:
        if value is not None and _clean(value):
            pairs.append((tag, _clean(value)))

    for author in record.authors:
        add("AU", _wos_short_author(_clean(author)))
    for author in record.authors:
        add("AF", author)
    add("TI", record.title)
    add("SO", record.journal)
    add("JI", record.journal_abbrev)
    add("LA", record.language)
    add("DT", "; ".join(_clean(t) for t in record.publication_types if _clean(t)))
    add("DE", "; ".join(_clean(k) for k in record.keywords if _clean(k)))
    add(
        "AB",
        record.abstract
        if record.abstract or not record.abstract_sections
        else join_abstract(record.abstract_sections),
    )
    add("PY", record.year)
    if record.pub_date and record.year is not None:
        match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", record.pub_date)
        if match and int(match.group(1)) == record.year and 1 <= int(match.group(2)) <= 12:
            month = _MONTHS[int(match.group(2)) - 1].upper()
            add("PD", f"{month} {int(match.group(3))}" if match.group(3) else month)
    add("VL", record.volume)
    add("IS", record.issue)
    if record.pages:
        start, dash, end = record.pages.partition("-")
        if dash and start.strip() and end.strip() and start.strip() != end.strip():
            add("BP", start)
            add("EP", end)
        else:
            add("BP", record.pages)
    add("DI", record.doi)
    add("PM", record.pmid)
    if "UT" not in leftover and record.other_ids.get("wos"):
        add("UT", f"WOS:{record.other_ids['wos']}")
    for tag, values in leftover.items():
        if tag not in ("ER", "EF", "FN", "VR"):
            for value in values:
                add(tag, value)

    lines = [f"PT {_clean(pt) or 'J'}"]
    previous = None
    for tag, value in pairs:
        if tag == previous and tag in _WOS_LINE_TAGS:
            lines.append(f"   {value}")
        else:
            lines.append(f"{tag} {value}")
        previous = tag
    lines.append("ER")
    return lines


def _wos_short_author(full: str) -> str:
    """``Alceste, Fabiana`` -> ``Alceste, F`` (the WoS AU form)."""
    last, comma, first = full.partition(",")
    if not comma:
        return full
    initials = _initials(first)
    return f"{last.strip()}, {initials}" if initials else last.strip() or full


def _initials(first_names: str) -> str:
    """``Mansoor A S`` -> ``MAS``; a part already written as initials (``PS``) is kept."""
    parts = [part for part in re.split(r"[\s.]+", first_names) if part]
    return "".join(part if part.isupper() and len(part) <= 3 else part[0] for part in parts)


FORMAT = register_format(
    RecordFormat(
        name="medline",
        description="MEDLINE/PubMed tagged text (.nbib, PubMed 'Send to: file', efetch rettype=medline)",
        extensions=(".nbib", ".medline", ".txt"),
        sniff=sniff,
        read=read,
        write=write,
        priority=5,
        aliases=("nbib", "pubmed"),
    )
)

WOS_FORMAT = register_format(
    RecordFormat(
        name="wos",
        description="Web of Science tagged text (savedrecs.txt: 'PT J' ... 'ER')",
        extensions=(".txt", ".ciw"),
        sniff=sniff_wos,
        read=read_wos,
        write=write_wos,
        priority=5,
        aliases=("web-of-science", "isi"),
    )
)
