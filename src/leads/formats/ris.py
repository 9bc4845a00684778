"""RIS (Research Information Systems) tagged text, as exported by EndNote, Zotero, Mendeley,
PubMed, Embase, Scopus, Web of Science, Ovid, ProQuest, Rayyan and ASReview.

A record runs from ``TY  - <type>`` to ``ER  - ``; each line inside is ``XX  - value`` with a
two-character tag, and any other line continues the previous tag's value. Exports disagree on
almost everything else, so the reader is lenient where nothing can be lost and strict where
something could be (a tag line outside a record, a record that never ends), and it keeps
every tag it does not map (plus the ``TY`` type) in ``Record.extra`` so RIS -> RIS keeps them.

``rispy`` supplies the list of multi-valued tags. Its parser is not used: it reports no line
numbers, silently skips tag lines outside records and a last record without ``ER``, only
accepts the exact two-space separator (some exports use tabs), and keeps only the first value
of a repeated single-valued tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from rispy.config import LIST_TYPE_TAGS

from leads.errors import FormatError
from leads.formats._registry import RecordFormat, decode_text, register_format
from leads.records import (
    Record,
    find_identifiers,
    join_abstract,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)

__all__ = ["FORMAT", "read", "sniff", "write"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])[ \t]+-(?:[ \t]+(.*?))?[ \t]*$")

# Each line of these is a value of its own (continuation lines included: Rayyan and EndNote put
# one keyword/author per line under a single tag). N1 is a rispy list tag but one note can span
# lines, so notes keep their line breaks instead.
_LIST_TAGS = (frozenset(LIST_TYPE_TAGS) - {"N1"}) | {"L1", "L2", "L3", "L4"}
# Single-line by nature: continuation lines are joined with a space.
_SCALAR_TAGS = frozenset(
    {"TY", "TI", "T1", "T2", "T3", "JF", "JO", "JA", "J1", "J2", "PY", "Y1", "DA", "VL", "IS",
     "SP", "EP", "DO", "AN", "ID", "LA", "ST", "SN", "DB", "DP", "C2", "LB", "M3"}
)  # fmt: skip
# Types whose secondary title (T2) is the journal; for a chapter it is the book, and so on.
_JOURNAL_TYPES = frozenset({"JOUR", "EJOUR", "JFULL", "MGZN", "NEWS", "ABST", "INPR"})
_URL = re.compile(r"^(?:https?|ftp)://\S+$", re.IGNORECASE)
_HTML_TAG = re.compile(
    r"</?(?:p|br|div|span|b|i|u|em|strong|sub|sup|ul|ol|li|h[1-6]|a|blockquote|pre|code)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_LABEL_MARK = re.compile(r"\bASReview_(relevant|irrelevant|not_seen)\b")
_PUBMED_SOURCE = re.compile(r"pubmed|medline|\bnlm\b", re.IGNORECASE)
_PUBMED_URL = re.compile(r"(?:ncbi\.nlm\.nih\.gov/pubmed|pubmed\.ncbi\.nlm\.nih\.gov)/(\d{1,9})\b")
_PMID_NLM = re.compile(r"\bPMID\s*:?\s*NLM(\d{1,9})\b", re.IGNORECASE)
_SCOPUS_EID = re.compile(r"\beid=(2-s2\.0-\d+)")
_WOS_ID = re.compile(r"\bWOS:(\w+)")
_MONTHS = {
    m: i
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")],
        start=1,
    )
    for m in names
}  # fmt: skip
_NUMERIC_DATE = re.compile(r"^(\d{4})(?:[/-](\d{0,2})(?:[/-](\d{0,2}))?)?(?:/.*)?$")
_NAMED_DATE = re.compile(r"^(?:(\d{4})\s+)?([A-Za-z]{3,9})\.?(?:\s+(\d{1,2}))?(?:,?\s+(\d{4}))?$")


def sniff(head: bytes) -> bool:
    """True when the first tag line of the content is ``TY  - ``."""
    for line in _head_lines(head)[:200]:
        match = _TAG_LINE.match(line)
        if match:
            return match.group(1) == "TY"
    return False


def _head_lines(head: bytes) -> list[str]:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="replace")
    return [line.lstrip("\ufeff") for line in _LINE_BREAK.split(text)]


# --- reading -----------------------------------------------------------------------------------


@dataclass
class _Field:
    tag: str
    lines: list[str]


@dataclass
class _RawRecord:
    number: int
    line: int
    fields: list[_Field] = field(default_factory=list)


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    raws = _split_records(text, source)
    if not raws and text.strip():
        raise FormatError("no RIS records found (a record starts with 'TY  - ')", source=source)
    for raw in raws:
        yield _to_record(raw, source)


def _split_records(text: str, source: str) -> list[_RawRecord]:
    records: list[_RawRecord] = []
    current: _RawRecord | None = None
    # Ovid writes a tag right after ER ("NL  - ..."); it belongs to the record just closed.
    trailing: _RawRecord | None = None
    blanks = 0
    for number, raw_line in enumerate(_LINE_BREAK.split(text), start=1):
        match = _TAG_LINE.match(raw_line.lstrip("\ufeff"))
        tag, value = (match.group(1), (match.group(2) or "").strip()) if match else ("", "")
        if current is not None:
            if tag == "ER" and value:
                continue  # "ER  - End of Reference": a real ER has no value
            if tag == "ER":
                records.append(current)
                trailing, current = current, None
            elif tag == "TY":
                raise FormatError(
                    f"a new record starts on line {number} but record {current.number} "
                    f"(line {current.line}) has no 'ER  - ' line",
                    source=source,
                    record=current.number,
                    line=number,
                    field="ER",
                )
            elif tag:
                current.fields.append(_Field(tag, [value]))
            elif not raw_line.strip():
                blanks += 1
                continue
            else:
                current.fields[-1].lines.extend([*[""] * blanks, raw_line.strip()])
            blanks = 0
        elif tag == "TY":
            current = _RawRecord(len(records) + 1, number, [_Field("TY", [value])])
            trailing = None
        elif tag and tag != "ER" and trailing is not None:
            trailing.fields.append(_Field(tag, [value]))
        elif tag:
            raise FormatError(
                f"tag line {tag!r} outside a record (a record starts with 'TY  - ')",
                source=source,
                record=len(records) + 1,
                line=number,
                field=tag,
            )
        else:
            # Free text between records (Ovid's numbering and links) carries nothing.
            trailing = None
    if current is not None:
        raise FormatError(
            "the file ends inside this record (no 'ER  - ' line)",
            source=source,
            record=current.number,
            line=current.line,
            field="ER",
        )
    return records


class _Tags:
    """A record's (tag, value) pairs; taking a value marks it as mapped to a Record field."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.used = [False] * len(pairs)

    def all(self, *tags: str) -> list[str]:
        return [value for tag, value in self.pairs if tag in tags]

    def first(self, *tags: str) -> str | None:
        for tag in tags:
            for key, value in self.pairs:
                if key == tag:
                    return value
        return None

    def take_first(self, *tags: str) -> str | None:
        for tag in tags:
            for i, (key, value) in enumerate(self.pairs):
                if key == tag and not self.used[i]:
                    self.used[i] = True
                    return value
        return None

    def take_all(self, *tags: str) -> list[str]:
        out = []
        for i, (key, value) in enumerate(self.pairs):
            if key in tags and not self.used[i]:
                self.used[i] = True
                out.append(value)
        return out

    def take_where(self, tag: str, keep: Any) -> list[Any]:
        """Take the values of ``tag`` for which ``keep(value)`` is not None; return those results."""
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
            if not used:
                out.setdefault(tag, []).append(value)
        return out


def _pairs(raw: _RawRecord) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in raw.fields[1:]:
        if item.tag in _LIST_TAGS:
            values = [line for line in item.lines if line]
        elif item.tag in _SCALAR_TAGS:
            values = [" ".join(line for line in item.lines if line)]
        else:
            values = ["\n".join(item.lines).strip()]
        pairs.extend((item.tag, value) for value in values if value)
    return pairs


def _to_record(raw: _RawRecord, source: str) -> Record:
    ris_type = " ".join(raw.fields[0].lines).strip().upper()
    tags = _Tags(_pairs(raw))
    record = Record()
    extra: dict[str, Any] = {"ris_type": ris_type}

    record.title = tags.take_first("TI", "T1")
    record.abstract = tags.take_first("AB", "N2")
    record.authors = tags.take_all("AU", "A1")
    journal_tags = (
        ("T2", "JF", "JO") if ris_type in _JOURNAL_TYPES or not ris_type else ("JF", "JO")
    )
    record.journal = tags.take_first(*journal_tags)
    record.journal_abbrev = tags.take_first("J2", "JA", "J1")

    record.year, record.pub_date = _dates(tags)
    record.volume = tags.take_first("VL")
    record.issue = tags.take_first("IS")
    record.pages = _pages(tags)
    record.language = tags.take_first("LA")
    record.keywords = tags.take_all("KW")
    record.source_id = tags.take_first("ID")
    record.urls = _urls(tags)

    notes = [_strip_html(note) for note in tags.take_all("N1")]
    notes = [note for note in notes if note]
    if notes:
        extra["notes"] = notes
    labels = _label_marks([*notes, *tags.all("LB")])
    tags.take_where("LB", lambda value: value if _LABEL_MARK.search(value) else None)
    record.label = _label_from_marks(labels)

    _identifiers(tags, record, notes)

    leftover = tags.leftover()
    if leftover:
        extra["ris"] = leftover
    record.extra = extra
    try:
        return Record.model_validate(record.model_dump())
    except ValueError as exc:
        raise FormatError(str(exc), source=source, record=raw.number, line=raw.line) from None


def _identifiers(tags: _Tags, record: Record, notes: list[str]) -> None:
    """DOI, PMID, PMCID, NCT ids and database ids, from wherever this export put them."""
    dois = [normalize_doi(value) for value in tags.all("DO")]
    record.doi = next((doi for doi in dois if doi), None)
    if record.doi:
        tags.take_where("DO", lambda value: value if normalize_doi(value) == record.doi else None)

    pubmed_source = any(_PUBMED_SOURCE.search(value) for value in tags.all("DB", "DP"))
    if pubmed_source:
        found = tags.take_where("AN", lambda v: normalize_pmid(v) if v.strip().isdigit() else None)
        record.pmid = found[0] if found else None

    # Notes that are a reference list name other papers' identifiers, not this one's.
    own_notes = [note for note in notes if not note.lower().startswith("references:")]
    link_values = tags.all("UR", "L1", "L2", "L3", "L4") + record.urls
    for link in link_values:
        for url in link.split():
            if record.doi is None:
                record.doi = _doi_from_url(url)
            if record.pmid is None and (match := _PUBMED_URL.search(url)):
                record.pmid = normalize_pmid(match.group(1))
    if record.pmid is None and any("scopus" in value.lower() for value in tags.all("DB")):
        record.pmid = next((normalize_pmid(v) for v in tags.all("C2") if v.strip().isdigit()), None)
    for value in tags.all("C2"):
        if record.pmcid is None and re.fullmatch(r"\s*PMC\d+\s*", value):
            record.pmcid = normalize_pmcid(value)
    for text in [*own_notes, *tags.all("ID", "M3")]:
        if record.pmid is None and (match := _PMID_NLM.search(text)):
            record.pmid = normalize_pmid(match.group(1))
    record.add_identifiers_from_text(*own_notes, *tags.all("ID", "M3"), *link_values)
    for nct_source in [record.abstract, *tags.all("AN")]:
        for nct in find_identifiers(nct_source)["nct"]:
            if nct not in record.nct_ids:
                record.nct_ids.append(nct)

    for value in tags.all("AN", "UR", "L2"):
        if (match := _WOS_ID.search(value)) and "wos" not in record.other_ids:
            record.other_ids["wos"] = match.group(1)
    for value in tags.all("UR"):
        if (match := _SCOPUS_EID.search(value)) and "scopus" not in record.other_ids:
            record.other_ids["scopus"] = match.group(1)
    if any("embase" in value.lower() for value in tags.all("DB")):
        for value in tags.all("U2"):
            if re.fullmatch(r"L\d+", value.strip()):
                record.other_ids.setdefault("embase", value.strip())


def _doi_from_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.lower()
    if host.endswith("doi.org"):
        return normalize_doi(unquote(parts.path.lstrip("/")))
    for value in parse_qs(parts.query).get("doi", []):
        doi = normalize_doi(value)
        if doi:
            return doi
    return None


def _urls(tags: _Tags) -> list[str]:
    urls: list[str] = []

    def url_list(value: str) -> list[str] | None:
        pieces = [piece.rstrip(";,") for piece in value.split()]
        if pieces and all(_URL.match(piece) for piece in pieces):
            return pieces
        return None

    for tag in ("UR", "L1", "L2", "L3", "L4"):
        for pieces in tags.take_where(tag, url_list):
            urls.extend(piece for piece in pieces if piece not in urls)
    return urls


def _pages(tags: _Tags) -> str | None:
    start, end = tags.first("SP"), tags.first("EP")
    if start is not None and end is not None and f"{start} {end}".lower() == "no specified":
        return None  # Ovid's placeholder for "no pages"
    start = tags.take_first("SP")
    end = tags.take_first("EP")
    if start and end and start != end:
        return f"{start}-{end}"
    return start or end


def _dates(tags: _Tags) -> tuple[int | None, str | None]:
    year: int | None = None
    pub_date: str | None = None
    for tag in ("PY", "Y1"):
        for value in tags.all(tag):
            parsed = _parse_date(value, None)
            if parsed is not None:
                year, pub_date = parsed
                tags.take_where(tag, lambda v, value=value: v if v == value else None)
                break
        if year is not None:
            break
    for value in tags.all("DA"):
        parsed = _parse_date(value, year)
        if parsed is not None:
            da_year, da_date = parsed
            if year is None:
                year = da_year
            if da_date is not None or pub_date is None:
                pub_date = da_date or pub_date
            tags.take_where("DA", lambda v, value=value: v if v == value else None)
            break
    return year, pub_date


def _parse_date(value: str, year: int | None) -> tuple[int | None, str | None] | None:
    """Parse a RIS date (``2019``, ``2019///``, ``2012/07/03``, ``Mar 1``) into (year, ISO date).

    The ISO date is ``None`` when the value says no more than the year. Returns ``None`` when the
    value cannot be read as a date at all (it is then kept as it was).
    """
    text = value.strip()
    match = _NUMERIC_DATE.match(text)
    if match:
        y = int(match.group(1))
        return y, _iso(y, match.group(2), match.group(3))
    match = _NAMED_DATE.match(text)
    if match and match.group(2).lower() in _MONTHS:
        y_text = match.group(1) or match.group(4)
        named_year = int(y_text) if y_text else year
        if named_year is None:
            return None
        month = str(_MONTHS[match.group(2).lower()])
        iso = _iso(named_year, month, match.group(3))
        return (named_year, iso) if iso else None
    return None


def _iso(year: int, month: str | None, day: str | None) -> str | None:
    if not month:
        return None
    try:
        if day:
            return date(year, int(month), int(day)).isoformat()
        date(year, int(month), 1)
    except ValueError:
        return None
    return f"{year:04d}-{int(month):02d}"


def _strip_html(note: str) -> str:
    # Zotero wraps notes in XHTML (<p>...</p>).
    if "<" not in note:
        return note.strip()
    text = _HTML_TAG.sub(" ", note)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _label_marks(texts: Iterable[str]) -> list[str]:
    return [match.group(1) for text in texts for match in _LABEL_MARK.finditer(text)]


def _label_from_marks(marks: list[str]) -> bool | None:
    # ASReview writes one mark per record; when a record carries several, the last one wins.
    decided = [mark for mark in marks if mark in ("relevant", "irrelevant")]
    if not decided:
        return None
    return decided[-1] == "relevant"


# --- writing -----------------------------------------------------------------------------------


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    count = 0
    for record in records:
        if count:
            stream.write(b"\n")
        stream.write(_format_record(record).encode("utf-8"))
        count += 1
    return count


def _format_record(record: Record) -> str:
    extra = record.extra or {}
    leftover: dict[str, list[str]] = {
        str(tag): [str(v) for v in (values if isinstance(values, list) else [values])]
        for tag, values in (extra.get("ris") or {}).items()
    }
    ris_type = str(extra.get("ris_type", "JOUR" if record.record_type == "article" else "GEN"))
    ris_type = " ".join(ris_type.split()).upper()
    pairs: list[tuple[str, str]] = []

    def add(tag: str, value: object) -> None:
        if value is not None and str(value).strip():
            pairs.append((tag, str(value)))

    add("TI", record.title)
    for author in record.authors:
        add("AU", author)
    add("PY", record.year)
    if record.pub_date:
        add("DA", _ris_date(record.pub_date))
    add("T2" if ris_type in _JOURNAL_TYPES else "JF", record.journal)
    add("J2", record.journal_abbrev)
    add("VL", record.volume)
    add("IS", record.issue)
    if record.pages:
        start, dash, end = record.pages.partition("-")
        if dash and start.strip() and end.strip() and start.strip() != end.strip():
            add("SP", start.strip())
            add("EP", end.strip())
        else:
            add("SP", record.pages)
    abstract = record.abstract
    if abstract is None and record.abstract_sections:
        abstract = join_abstract(record.abstract_sections)
    add("AB", abstract)
    add("DO", record.doi)
    add("LA", record.language)
    for keyword in record.keywords:
        add("KW", keyword)
    for url in record.urls:
        add("UR", url)
    add("ID", record.source_id)
    for note in _notes_for_label([str(n) for n in extra.get("notes") or []], record.label):
        add("N1", note)
    for tag, values in leftover.items():
        if _TAG_LINE.match(f"{tag}  - ") and tag not in ("TY", "ER"):
            for value in values:
                add(tag, value)
    pairs.extend(_missing_identifiers(record, pairs))

    lines = [f"TY  - {ris_type}".rstrip(" ")]
    for tag, value in pairs:
        lines.extend(_format_field(tag, value))
    lines.append("ER  - ")
    return "\n".join(lines) + "\n"


def _missing_identifiers(record: Record, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Tags to add so that the PMID, PMCID and NCT ids read back (RIS has no tag of their own)."""
    probe = Record()
    notes = [value for tag, value in pairs if tag == "N1"]
    tags = _Tags(list(pairs))
    probe.urls = _urls(_Tags(list(pairs)))
    probe.abstract = tags.first("AB")
    _identifiers(tags, probe, notes)
    added: list[tuple[str, str]] = []
    if record.pmid and probe.pmid != record.pmid:
        added.append(("AN", record.pmid))
        if not any(_PUBMED_SOURCE.search(v) for tag, v in pairs if tag in ("DB", "DP")):
            added.append(("DB", "PubMed"))
    if record.pmcid and probe.pmcid != record.pmcid:
        added.append(("C2", record.pmcid))
    missing = [nct for nct in record.nct_ids if nct not in probe.nct_ids]
    if missing:
        added.append(("N1", "Trial registration: " + ", ".join(missing)))
    return added


def _notes_for_label(notes: list[str], label: bool | None) -> list[str]:
    if _label_from_marks(_label_marks(notes)) == label:
        return notes
    kept = []
    for note in notes:
        cleaned = _LABEL_MARK.sub("", note)
        if cleaned.strip(" .;,\n\t"):
            kept.append(note if cleaned == note else cleaned.strip())
    if label is not None:
        kept.append("ASReview_relevant" if label else "ASReview_irrelevant")
    return kept


def _ris_date(pub_date: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", pub_date)
    if match:
        return "/".join(part for part in match.groups() if part)
    return pub_date


def _format_field(tag: str, value: str) -> list[str]:
    value = value.replace("\x00", "")
    if tag in _LIST_TAGS or tag in _SCALAR_TAGS:
        return [f"{tag}  - {' '.join(_LINE_BREAK.split(value)).strip()}"]
    lines = [line.strip() for line in _LINE_BREAK.split(value.strip())]
    out = [f"{tag}  - {lines[0]}"]
    for line in lines[1:]:
        if _TAG_LINE.match(line.lstrip("\ufeff")):
            # A continuation line shaped like a tag would be read as one: keep it on the line before.
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


FORMAT = register_format(
    RecordFormat(
        name="ris",
        description="RIS tagged references (EndNote, Zotero, Mendeley, PubMed, Embase, Scopus, WoS, Ovid)",
        extensions=(".ris",),
        sniff=sniff,
        read=read,
        write=write,
        priority=5,
    )
)
