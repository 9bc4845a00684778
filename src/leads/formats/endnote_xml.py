"""EndNote XML: the ``<xml><records><record>`` export of EndNote (and of Bookends, Papers, ...).

Every text field may be wrapped in one or more ``<style face=... font=... size=...>`` runs
(one run per change of formatting, so a title with an italic species name has three); the
reader joins the runs' text and drops the formatting.

Mapping: ``contributors/authors/author`` -> ``authors``; ``titles/title`` -> ``title``;
``periodical/full-title`` (else ``titles/secondary-title``) -> ``journal``;
``periodical/abbr-1`` (else ``titles/alt-title``) -> ``journal_abbrev``; ``dates/year`` ->
``year``; ``dates/pub-dates/date`` -> ``pub_date``; ``pages``, ``volume``, ``number`` (issue),
``abstract``, ``keywords/keyword``, ``language``; ``electronic-resource-num`` -> ``doi``;
``accession-num`` -> ``pmid`` when it is a PubMed id (all digits and the record does not name a
non-PubMed database); ``custom2`` holding ``PMC...`` -> ``pmcid`` (where EndNote's PubMed import
puts it); ``rec-number`` -> ``source_id``; ``urls/related-urls`` and ``urls/web-urls`` -> ``urls``.
Every other simple field (``notes``, ``auth-address``, ``isbn``, ``label``, ``custom1``...) is
kept in ``extra`` under its tag name with ``-`` replaced by ``_``, as are ``ref-type`` (name and
number), secondary authors and the other URL lists. NCT ids in the abstract go to ``nct_ids``.

Whitespace: single-line fields have runs of whitespace collapsed (exports made by other tools
are often pretty-printed, which puts layout whitespace inside the fields); multi-line fields
(``abstract``, ``notes``, ``research-notes``, ``auth-address``) keep their line breaks, which
EndNote writes as carriage returns, with each line's whitespace collapsed and blank lines at the
ends dropped.

The writer produces the layout EndNote itself exports (one line, every field in a
``<style face="normal" font="default" size="100%">`` run, line breaks as ``&#xD;``). XML 1.0
cannot carry most C0 control characters, U+FFFE/U+FFFF or lone surrogates: the writer drops
them. ``extra`` keys that are not EndNote fields are not written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from lxml import etree

from leads.errors import FormatError
from leads.formats._registry import RecordFormat, register_format
from leads.records import Record, find_identifiers, normalize_doi, normalize_pmcid, normalize_pmid

__all__ = ["FORMAT", "read", "sniff", "write"]

_WS = re.compile(r"[ \t\n\r]+")
_LINES = re.compile(r"\r\n|\r|\n")
_YEAR = re.compile(r"[0-9]{4}(?![0-9])")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STYLE = {"face": "normal", "font": "default", "size": "100%"}
_MULTILINE = {"abstract", "notes", "research-notes", "auth-address"}
# Simple (text-only) record fields of the EndNote DTD that are kept in ``extra``.
_SIMPLE_FIELDS = (
    "auth-address",
    "auth-affiliaton",
    "secondary-volume",
    "secondary-issue",
    "num-vols",
    "edition",
    "section",
    "reprint-edition",
    "reprint-status",
    "pub-location",
    "publisher",
    "orig-pub",
    "isbn",
    "call-num",
    "report-id",
    "coden",
    "label",
    "image",
    "caption",
    "notes",
    "research-notes",
    "work-type",
    "reviewed-item",
    "availability",
    "remote-source",
    "meeting-place",
    "work-location",
    "work-extent",
    "pack-method",
    "size",
    "repro-ratio",
    "remote-database-name",
    "remote-database-provider",
    "access-date",
    "modified-date",
    "custom1",
    "custom2",
    "custom3",
    "custom4",
    "custom5",
    "custom6",
    "custom7",
    "misc1",
    "misc2",
    "misc3",
    "database",
    "source-app",
)
# Structural elements with nothing a record needs (internal keys, a copy of <periodical>).
_SKIPPED = {"foreign-keys", "alt-periodical"}
_SNIFF = re.compile(rb"<xml>\s*<records(?:\s*/>|>\s*(?:<record>|</records>))")
_TAG_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_EXTRA_TITLES = ("tertiary-title", "short-title", "translated-title")
_OTHER_AUTHORS = (
    "secondary-authors",
    "tertiary-authors",
    "subsidiary-authors",
    "translated-authors",
)
_OTHER_URLS = ("pdf-urls", "text-urls", "image-urls")
_REF_TYPES = {
    "Journal Article": "17",
    "Book": "6",
    "Book Section": "5",
    "Conference Proceedings": "10",
    "Conference Paper": "47",
    "Electronic Article": "43",
    "Generic": "13",
    "Report": "27",
    "Thesis": "32",
    "Web Page": "12",
    "Dataset": "59",
    "Manuscript": "36",
    "Unpublished Work": "34",
}
# Named databases whose accession numbers are not PMIDs.
_NON_PUBMED_DB = re.compile(
    r"\b(?:embase|scopus|web of science|wos|isi|psycinfo|cinahl|cochrane)\b", re.I
)


def _key(tag: str) -> str:
    return tag.replace("-", "_")


# --------------------------------------------------------------------------- sniffing


def sniff(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"<"):
        return False
    window = text[:8192]
    return _SNIFF.search(window) is not None or (
        b"<records>" in window and b"<ref-type" in text[:65536]
    )


# --------------------------------------------------------------------------- reading


def _raw(element: Any) -> str:
    """The text of a field, its <style> runs joined."""
    if element is None:
        return ""
    return "".join(element.itertext())


def _line(element: Any) -> str:
    return _WS.sub(" ", _raw(element)).strip(" \t\n\r")


def _multiline(text: str) -> str:
    lines = [_WS.sub(" ", line).strip(" \t") for line in _LINES.split(text)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _field(element: Any, tag: str) -> str:
    return _multiline(_raw(element)) if tag in _MULTILINE else _line(element)


def _children_text(container: Any, tag: str) -> list[str]:
    if container is None:
        return []
    return [t for t in (_line(child) for child in container.iterfind(tag)) if t]


def _record(element: Any, source: str, number: int) -> Record:
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    accession = ""
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == "rec-number":
            fields["source_id"] = _line(child) or None
        elif tag == "ref-type":
            name = child.get("name")
            if name:
                extra["ref_type"] = name
            number_text = _line(child)
            if number_text:
                extra["ref_type_id"] = number_text
        elif tag == "contributors":
            for group in child:
                if group.tag == "authors":
                    fields["authors"] = _children_text(group, "author")
                elif group.tag in _OTHER_AUTHORS:
                    names = _children_text(group, "author")
                    if names:
                        extra[_key(group.tag)] = names
        elif tag == "titles":
            for title in child:
                text = _line(title)
                if not text or not isinstance(title.tag, str):
                    continue
                if title.tag == "title":
                    fields["title"] = text
                elif title.tag == "secondary-title":
                    fields.setdefault("journal", text)
                elif title.tag == "alt-title":
                    extra["alt_title"] = text
                elif title.tag in _EXTRA_TITLES:
                    extra[_key(title.tag)] = text
        elif tag == "periodical":
            for part in child:
                text = _line(part)
                if part.tag == "full-title" and text:
                    fields["journal"] = text
                elif part.tag == "abbr-1" and text:
                    fields["journal_abbrev"] = text
        elif tag == "pages":
            fields["pages"] = _line(child) or None
        elif tag == "volume":
            fields["volume"] = _line(child) or None
        elif tag in ("number", "issue"):
            fields["issue"] = fields.get("issue") or _line(child) or None
        elif tag == "dates":
            for part in child:
                if part.tag == "year":
                    year_text = _line(part)
                    match = _YEAR.match(year_text)
                    if match:
                        fields["year"] = int(match.group())
                    elif year_text:
                        extra["year"] = year_text
                elif part.tag == "pub-dates":
                    dates = _children_text(part, "date")
                    if dates:
                        fields["pub_date"] = dates[0]
        elif tag == "keywords":
            keywords: list[str] = []
            for keyword in child.iterfind("keyword"):
                # EndNote keeps one keyword per line inside the field.
                keywords.extend(k for k in (_line_of(t) for t in _LINES.split(_raw(keyword))) if k)
            fields["keywords"] = keywords
        elif tag == "abstract":
            fields["abstract"] = _multiline(_raw(child)) or None
        elif tag == "electronic-resource-num":
            value = _line(child)
            doi = normalize_doi(value) if value else None
            if doi:
                fields["doi"] = doi
            elif value:
                extra["electronic_resource_num"] = value
        elif tag == "accession-num":
            accession = _line(child)
        elif tag == "language":
            fields["language"] = _line(child) or None
        elif tag == "urls":
            urls: list[str] = []
            for group in child:
                if group.tag in ("related-urls", "web-urls"):
                    urls.extend(_children_text(group, "url"))
                elif group.tag in _OTHER_URLS:
                    others = _children_text(group, "url")
                    if others:
                        extra[_key(group.tag)] = others
            fields["urls"] = urls
        elif tag in _SIMPLE_FIELDS:
            text = _field(child, tag)
            if text:
                extra[_key(tag)] = text
        elif tag not in _SKIPPED:
            # Fields outside the DTD (Bookends' user1..user20, ...) are kept as found.
            text = _field(child, tag)
            if text:
                extra.setdefault("endnote_fields", {})[tag] = text
    if accession:
        databases = " ".join(
            str(extra.get(k, "")) for k in ("remote_database_name", "remote_database_provider")
        )
        pmid = normalize_pmid(accession) if accession.isascii() and accession.isdigit() else None
        if pmid and not _NON_PUBMED_DB.search(databases):
            fields["pmid"] = pmid
        else:
            extra["accession_num"] = accession
    custom2 = extra.get("custom2")
    if isinstance(custom2, str) and custom2.upper().startswith("PMC"):
        pmcid = normalize_pmcid(custom2)
        if pmcid:
            fields["pmcid"] = pmcid
            del extra["custom2"]
    if fields.get("abstract"):
        fields["nct_ids"] = find_identifiers(fields["abstract"])["nct"]
    fields["extra"] = extra
    return Record(**fields)


def _line_of(text: str) -> str:
    return _WS.sub(" ", text).strip(" \t")


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    context = etree.iterparse(
        stream,
        events=("end",),
        tag="record",
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )
    count = 0
    root_checked = False
    try:
        for _event, element in context:
            if not root_checked:
                root_checked = True
                root = element.getroottree().getroot()
                if root.tag not in ("xml", "records"):
                    raise FormatError(
                        f"not EndNote XML: the root element is <{root.tag}>, expected <xml>",
                        source=source,
                    )
            if element.getparent() is None or element.getparent().tag != "records":
                continue
            count += 1
            yield _record(element, source, count)
            element.clear(keep_tail=True)
            parent = element.getparent()
            while element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else None
        raise FormatError(
            f"XML syntax error: {exc.msg}", source=source, record=count + 1, line=line
        ) from None
    if not root_checked:
        root = context.root
        if root is not None and root.tag not in ("xml", "records"):
            raise FormatError(
                f"not EndNote XML: the root element is <{root.tag}>, expected <xml>",
                source=source,
            )


# --------------------------------------------------------------------------- writing


def _xml_safe(value: str) -> str:
    return _XML_ILLEGAL.sub("", value)


def _styled(parent: Any, tag: str, text: str, multiline: bool = False) -> Any:
    element = etree.SubElement(parent, tag)
    style = etree.SubElement(element, "style", _STYLE)
    text = _xml_safe(text)
    # EndNote separates lines with carriage returns (serialised as &#13;).
    style.text = _LINES.sub("\r", text) if multiline else text
    return element


def _simple(element: Any, record: Record, tag: str) -> None:
    value = record.extra.get(_key(tag))
    if isinstance(value, str) and value:
        _styled(element, tag, value, multiline=tag in _MULTILINE)


def _ref_type(element: Any, record: Record) -> None:
    extra = record.extra
    name = extra.get("ref_type") if isinstance(extra.get("ref_type"), str) else None
    number = extra.get("ref_type_id") if isinstance(extra.get("ref_type_id"), str) else None
    if name is None and number is None:
        name = "Journal Article"
    ref_type = etree.SubElement(element, "ref-type")
    if name is not None:
        ref_type.set("name", _xml_safe(name))
    ref_type.text = _xml_safe(number or _REF_TYPES.get(name or "", "13"))


def _contributors(element: Any, record: Record) -> None:
    candidates: list[tuple[str, Any]] = [("authors", record.authors)]
    candidates += [(tag, record.extra.get(_key(tag))) for tag in _OTHER_AUTHORS]
    groups = [(tag, names) for tag, names in candidates if isinstance(names, list) and names]
    if groups:
        contributors = etree.SubElement(element, "contributors")
        for tag, names in groups:
            group = etree.SubElement(contributors, tag)
            for name in names:
                _styled(group, "author", str(name))


def _titles(element: Any, record: Record) -> None:
    candidates: list[tuple[str, Any]] = [
        ("title", record.title),
        ("secondary-title", record.journal),
    ]
    candidates += [("alt-title", record.extra.get("alt_title"))]
    candidates += [(tag, record.extra.get(_key(tag))) for tag in _EXTRA_TITLES]
    values = [(tag, value) for tag, value in candidates if isinstance(value, str) and value]
    if values:
        titles = etree.SubElement(element, "titles")
        for tag, value in values:
            _styled(titles, tag, value)


def _periodical(element: Any, record: Record) -> None:
    if record.journal or record.journal_abbrev:
        periodical = etree.SubElement(element, "periodical")
        if record.journal:
            _styled(periodical, "full-title", record.journal)
        if record.journal_abbrev:
            _styled(periodical, "abbr-1", record.journal_abbrev)


def _keywords(element: Any, record: Record) -> None:
    if record.keywords:
        keywords = etree.SubElement(element, "keywords")
        for keyword in record.keywords:
            _styled(keywords, "keyword", keyword)


def _dates(element: Any, record: Record) -> None:
    year = str(record.year) if record.year is not None else record.extra.get("year")
    if isinstance(year, str) or record.pub_date:
        dates = etree.SubElement(element, "dates")
        if isinstance(year, str):
            _styled(dates, "year", year)
        if record.pub_date:
            _styled(etree.SubElement(dates, "pub-dates"), "date", record.pub_date)


def _urls(element: Any, record: Record) -> None:
    candidates: list[tuple[str, Any]] = [("related-urls", record.urls)]
    candidates += [(tag, record.extra.get(_key(tag))) for tag in _OTHER_URLS]
    groups = [(tag, urls) for tag, urls in candidates if isinstance(urls, list) and urls]
    if groups:
        urls_element = etree.SubElement(element, "urls")
        for tag, urls in groups:
            group = etree.SubElement(urls_element, tag)
            for url in urls:
                _styled(group, "url", str(url))


def _value(element: Any, tag: str, value: str | None, multiline: bool = False) -> None:
    if value:
        _styled(element, tag, value, multiline=multiline)


def _record_element(record: Record, number: int) -> Any:
    """One <record>, its fields in the order of the EndNote DTD."""
    extra = record.extra
    element = etree.Element("record")
    for tag in ("database", "source-app"):
        if isinstance(extra.get(_key(tag)), str):
            name = _xml_safe(extra[_key(tag)])
            etree.SubElement(element, tag, name=name).text = name
    etree.SubElement(element, "rec-number").text = _xml_safe(record.source_id or str(number))
    _ref_type(element, record)
    _contributors(element, record)
    _simple(element, record, "auth-address")
    _simple(element, record, "auth-affiliaton")
    _titles(element, record)
    _periodical(element, record)
    _value(element, "pages", record.pages)
    _value(element, "volume", record.volume)
    _value(element, "number", record.issue)
    for tag in _SIMPLE_FIELDS[
        _SIMPLE_FIELDS.index("secondary-volume") : _SIMPLE_FIELDS.index("pub-location")
    ]:
        _simple(element, record, tag)
    _keywords(element, record)
    _dates(element, record)
    for tag in ("pub-location", "publisher", "orig-pub", "isbn"):
        _simple(element, record, tag)
    accession = record.pmid or extra.get("accession_num")
    _value(element, "accession-num", accession if isinstance(accession, str) else None)
    for tag in ("call-num", "report-id", "coden"):
        _simple(element, record, tag)
    electronic = record.doi or extra.get("electronic_resource_num")
    _value(element, "electronic-resource-num", electronic if isinstance(electronic, str) else None)
    _value(element, "abstract", record.abstract, multiline=True)
    for tag in _SIMPLE_FIELDS[_SIMPLE_FIELDS.index("label") : _SIMPLE_FIELDS.index("access-date")]:
        _simple(element, record, tag)
    _value(element, "language", record.language)
    _urls(element, record)
    for tag in ("access-date", "modified-date", "custom1"):
        _simple(element, record, tag)
    if record.pmcid:
        _styled(element, "custom2", record.pmcid)
    else:
        _simple(element, record, "custom2")
    for tag in ("custom3", "custom4", "custom5", "custom6", "custom7", "misc1", "misc2", "misc3"):
        _simple(element, record, tag)
    others = extra.get("endnote_fields")
    if isinstance(others, dict):
        for tag, value in others.items():
            if isinstance(tag, str) and _TAG_NAME.fullmatch(tag) and isinstance(value, str):
                _value(element, tag, value)
    return element


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    count = 0
    with etree.xmlfile(stream, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("xml"), xf.element("records"):
            for number, record in enumerate(records, start=1):
                xf.write(_record_element(record, number))
                count += 1
    stream.write(b"\n")
    return count


FORMAT = register_format(
    RecordFormat(
        name="endnote-xml",
        description="EndNote XML export (<xml><records><record>)",
        extensions=(".xml",),
        sniff=sniff,
        read=read,
        write=write,
        priority=30,
        aliases=("endnote_xml", "endnote"),
    )
)
