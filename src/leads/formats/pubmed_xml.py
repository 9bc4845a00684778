"""PubMed XML: E-utilities efetch output and the annual baseline / daily update files.

Both use the ``PubmedArticleSet`` DTD: ``<PubmedArticle>`` (journal articles),
``<PubmedBookArticle>`` (NCBI Bookshelf chapters and books) and, last in update files, one
``<DeleteCitation>`` listing PMIDs that PubMed has withdrawn.

The reader streams with :func:`lxml.etree.iterparse`, handling one record element at a time
and freeing it afterwards, so a 30,000-record baseline file is read in constant memory.
Each ``<PubmedArticle>``/``<PubmedBookArticle>`` gives one article :class:`Record`; each PMID
of a ``<DeleteCitation>`` gives a marker record (``record_type="other"``, only ``pmid`` set,
``extra["pubmed_action"] == "delete"``) so that whoever applies an update file can remove the
citation; importers that only want articles skip ``record_type == "other"``.

Text is taken with its inline markup (``<i>``, ``<sup>``, MathML) flattened to plain text, and
runs of whitespace are collapsed to one space (PubMed text fields are single paragraphs; the
line breaks found in pretty-printed files are layout, not content).

The writer emits a ``<PubmedArticleSet>`` in DTD element order that this reader reads back to
equal records. XML 1.0 cannot carry most C0 control characters, U+FFFE/U+FFFF or lone
surrogates; the writer drops them (they never occur in real bibliographic text, and escaping
them as character references would still be invalid XML). Fields the DTD requires but a record
lacks (``Language``, ``PublicationType``) are left out rather than invented. A record without a
PMID cannot be written (PubMed XML is keyed by PMID), nor can a delete marker be written before
an article: the DTD puts ``<DeleteCitation>`` last, so the writer collects delete markers and
emits them at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from lxml import etree

from leads.errors import FormatError, LeadsError
from leads.formats._registry import RecordFormat, register_format
from leads.records import (
    Record,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)

__all__ = ["FORMAT", "read", "sniff", "write"]

_RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation", "ERROR")
_SET_ROOTS = {"PubmedArticleSet", "PubmedBookArticleSet", "PubmedArticle", "PubmedBookArticle"}
# E-utilities wrap failures in their own root (eFetchResult, ePostResult, eSummaryResult, ...).
_EUTILS_ROOT = re.compile(r"^e[A-Z]\w*Result$")
_ARTICLE_ID_TYPES = {
    "pii",
    "pmcpid",
    "pmpid",
    "mid",
    "sici",
    "medline",
    "pmcid",
    "pmcbook",
    "bookaccession",
}
_MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
_WS = re.compile(r"[ \t\n\r]+")
# Searched in upper-cased text: much faster than an IGNORECASE pattern on every abstract.
_NCT_IN_TEXT = re.compile(r"NCT\s?([0-9]{8})(?![0-9])")
_YEAR = re.compile(r"[0-9]{4}")
_PUB_DATE = re.compile(r"([0-9]{4})(?: (\S+)(?: (\S+))?)?")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
_SNIFF_ROOT = re.compile(
    rb"<(PubmedArticleSet|PubmedBookArticleSet|PubmedArticle|PubmedBookArticle|eFetchResult)[\s>/]"
)


# --------------------------------------------------------------------------- sniffing


def sniff(head: bytes) -> bool:
    root = _root_name(head)
    if root is not None:
        return root in _SET_ROOTS or root == "eFetchResult"
    # The head may be cut inside the prolog of a file with a huge internal DTD subset.
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") and _SNIFF_ROOT.search(head[:4096]) is not None


def _root_name(head: bytes) -> str | None:
    """The root element's local name, from the first bytes of a document (None if not found)."""
    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, load_dtd=False, no_network=True
    )
    try:
        parser.feed(head)
        for _event, element in parser.read_events():
            return etree.QName(element).localname
    except etree.XMLSyntaxError:
        pass
    return None


# --------------------------------------------------------------------------- reading


class _Prefixed:
    """A read()-able stream that first returns ``head`` and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
                if size < 0:
                    return data + self._stream.read()
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    head = stream.read(65536)
    root = _root_name(head)
    if root is not None and root not in _SET_ROOTS and not _EUTILS_ROOT.match(root):
        raise FormatError(
            f"not PubMed XML: the root element is <{root}>, expected <PubmedArticleSet>",
            source=source,
        )
    context = etree.iterparse(
        _Prefixed(head, stream),
        events=("end",),
        tag=_RECORD_TAGS,
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )
    count = 0
    try:
        for _event, element in context:
            tag = element.tag
            if tag == "ERROR":
                message = _text(element) or "(no message)"
                raise FormatError(
                    f"E-utilities returned an error: {message!r}",
                    source=source,
                    line=element.sourceline,
                )
            if tag == "DeleteCitation":
                for pmid_el in element.iterfind("PMID"):
                    count += 1
                    yield _deleted(pmid_el, source, count)
            else:
                count += 1
                if tag == "PubmedArticle":
                    yield _article(element, source, count)
                else:
                    yield _book_article(element, source, count)
            # Free what has been read: the element and the siblings before it.
            element.clear(keep_tail=True)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else None
        raise FormatError(
            f"XML syntax error: {exc.msg}", source=source, record=count + 1, line=line
        ) from None
    if root is not None and _EUTILS_ROOT.match(root) and count == 0 and root != "eFetchResult":
        raise FormatError(
            f"not PubMed XML: an E-utilities <{root}> answer without records", source=source
        )


def _clean(value: str) -> str:
    if "\n" in value or "\t" in value or "\r" in value or "  " in value:
        value = _WS.sub(" ", value)
    return value.strip(" \t\n\r")


def _text(element: Any) -> str:
    """All text inside an element (inline markup flattened), whitespace collapsed."""
    text = element.text if len(element) == 0 else "".join(element.itertext())
    if not text:
        return ""
    if "\n" in text or "\t" in text or "\r" in text or "  " in text:
        text = _WS.sub(" ", text)
    return text.strip(" \t\n\r")


def _texts(elements: Iterable[Any]) -> list[str]:
    return [t for t in map(_text, elements) if t]


def _pmid(pmid_el: Any, container: Any, source: str, number: int) -> str:
    value = _text(pmid_el) if pmid_el is not None else ""
    pmid = normalize_pmid(value) if value else None
    if pmid is None:
        raise FormatError(
            f"invalid PMID {value!r}" if value else "missing PMID",
            source=source,
            record=number,
            line=(pmid_el if pmid_el is not None else container).sourceline,
            field="PMID",
        )
    return pmid


def _deleted(pmid_el: Any, source: str, number: int) -> Record:
    pmid = _pmid(pmid_el, pmid_el, source, number)
    return Record(record_type="other", pmid=pmid, extra={"pubmed_action": "delete"})


def _authors(author_list: Any) -> list[str]:
    authors: list[str] = []
    for author in author_list:
        if author.tag != "Author" or author.get("ValidYN") == "N":
            continue
        last = first = suffix = collective = ""
        initials = None
        for part in author:
            tag = part.tag
            if tag == "LastName":
                last = _text(part)
            elif tag == "ForeName":
                first = _text(part)
            elif tag == "Initials":
                initials = part
            elif tag == "Suffix":
                suffix = _text(part)
            elif tag == "CollectiveName":
                collective = _text(part)
        if last:
            if not first and initials is not None:
                first = _text(initials)
            name = f"{last}, {first}" if first else last
            if suffix:
                name = f"{name} {suffix}" if first else f"{name}, {suffix}"
            authors.append(name)
        elif collective:
            authors.append(collective)
    return authors


def _pub_date(pub_date: Any, fields: dict[str, Any]) -> None:
    parts: dict[str, str] = {child.tag: _text(child) for child in pub_date}
    medline = parts.get("MedlineDate")
    if medline is not None:
        match = _YEAR.search(medline)
        fields["year"] = int(match.group()) if match else None
        fields["pub_date"] = medline or None
        return
    year = parts.get("Year", "")
    fields["year"] = int(year) if _YEAR.fullmatch(year) else None
    ordered = (parts.get(tag) for tag in ("Year", "Month", "Day", "Season"))
    fields["pub_date"] = " ".join(p for p in ordered if p) or None


def _abstract(abstract: Any, fields: dict[str, Any], extra: dict[str, Any]) -> None:
    texts = [child for child in abstract if child.tag == "AbstractText"]
    if any(t.get("Label") for t in texts):
        pairs = [(t.get("Label") or None, _text(t)) for t in texts]
        fields["abstract_sections"] = [{"label": label, "text": text} for label, text in pairs]
        # The same join as leads.records.join_abstract, without building the models twice.
        fields["abstract"] = "\n".join(
            f"{label}: {text}" if label else text for label, text in pairs
        )
        categories = [t.get("NlmCategory") for t in texts]
        if any(categories):
            extra["nlm_categories"] = categories
    else:
        fields["abstract"] = " ".join(_texts(texts))
    for child in abstract:
        if child.tag == "CopyrightInformation":
            copyright_text = _text(child)
            if copyright_text:
                extra["abstract_copyright"] = copyright_text


def _mesh(mesh_list: Any) -> list[dict[str, Any]]:
    headings: list[dict[str, Any]] = []
    for heading in mesh_list:
        descriptor = None
        qualifiers: list[str] = []
        major_qualifiers: list[str] = []
        for part in heading:
            if part.tag == "DescriptorName":
                descriptor = part
            elif part.tag == "QualifierName":
                name = _text(part)
                qualifiers.append(name)
                if part.get("MajorTopicYN") == "Y":
                    major_qualifiers.append(name)
        if descriptor is None:
            continue
        # ``major`` is the descriptor's own flag; starred qualifiers are in major_qualifiers.
        headings.append(
            {
                "descriptor": _text(descriptor),
                "ui": descriptor.get("UI") or None,
                "major": descriptor.get("MajorTopicYN") == "Y",
                "qualifiers": qualifiers,
                "major_qualifiers": major_qualifiers,
            }
        )
    return headings


def _article_ids(id_list: Any, fields: dict[str, Any]) -> None:
    other_ids: dict[str, str] = fields["other_ids"]
    for article_id in id_list:
        kind = article_id.get("IdType") or ""
        value = _text(article_id)
        if not value:
            continue
        if kind == "doi":
            fields["doi"] = fields.get("doi") or normalize_doi(value)
        elif kind == "pmc":
            fields["pmcid"] = fields.get("pmcid") or normalize_pmcid(value)
        elif kind in _ARTICLE_ID_TYPES and kind not in other_ids:
            other_ids[kind] = value


def _elocations(elements: Iterable[Any], fields: dict[str, Any]) -> None:
    for location in elements:
        kind = location.get("EIdType")
        value = _text(location)
        if not value:
            continue
        if kind == "doi":
            fields["doi"] = fields.get("doi") or normalize_doi(value)
        elif kind == "pii":
            fields["other_ids"].setdefault("pii", value)


def _languages(languages: list[str], fields: dict[str, Any], extra: dict[str, Any]) -> None:
    if languages:
        fields["language"] = languages[0]
        if len(languages) > 1:
            extra["other_languages"] = languages[1:]


def _finish(fields: dict[str, Any], extra: dict[str, Any], data: Any) -> Record:
    if data is not None:
        for child in data:
            if child.tag == "ArticleIdList":
                _article_ids(child, fields)
            elif child.tag == "PublicationStatus":
                status = _text(child)
                if status:
                    extra["publication_status"] = status
    _elocations(fields.pop("_locations", ()), fields)
    # Only trial ids are taken from the abstract: a DOI or PMID quoted there is another paper's.
    abstract = fields.get("abstract")
    if abstract:
        upper = abstract.upper()
        if "NCT" in upper:
            ncts = fields.setdefault("nct_ids", [])
            for match in _NCT_IN_TEXT.finditer(upper):
                start = match.start()
                if start == 0 or not upper[start - 1].isalnum():
                    ncts.append("NCT" + match.group(1))
    fields["extra"] = extra
    return Record(**fields)


def _journal(journal: Any, fields: dict[str, Any], extra: dict[str, Any]) -> None:
    for child in journal:
        tag = child.tag
        if tag == "Title":
            fields["journal"] = _text(child) or None
        elif tag == "ISOAbbreviation":
            fields["journal_abbrev"] = _text(child) or None
        elif tag == "ISSN":
            issn = _text(child)
            if issn:
                extra["issn"] = issn
        elif tag == "JournalIssue":
            for part in child:
                if part.tag == "Volume":
                    fields["volume"] = _text(part) or None
                elif part.tag == "Issue":
                    fields["issue"] = _text(part) or None
                elif part.tag == "PubDate":
                    _pub_date(part, fields)


def _pagination(pagination: Any) -> str | None:
    parts = {child.tag: _text(child) for child in pagination}
    if parts.get("MedlinePgn"):
        return parts["MedlinePgn"]
    start, end = parts.get("StartPage"), parts.get("EndPage")
    return f"{start}-{end}" if start and end else start or None


def _article_body(article: Any, fields: dict[str, Any], extra: dict[str, Any]) -> None:
    title = vernacular = None
    languages: list[str] = []
    locations: list[Any] = []
    for child in article:
        tag = child.tag
        if tag == "Journal":
            _journal(child, fields, extra)
        elif tag == "ArticleTitle":
            title = _text(child) or None
        elif tag == "VernacularTitle":
            vernacular = _text(child) or None
        elif tag == "Pagination":
            fields["pages"] = _pagination(child)
        elif tag == "ELocationID":
            locations.append(child)
        elif tag == "Abstract":
            _abstract(child, fields, extra)
        elif tag == "AuthorList":
            fields["authors"] = _authors(child)
        elif tag == "Language":
            language = _text(child)
            if language:
                languages.append(language)
        elif tag == "DataBankList":
            _databanks(child, fields, extra)
        elif tag == "PublicationTypeList":
            fields["publication_types"] = _texts(child)
        elif tag == "ArticleDate" and "article_date" not in extra:
            parts = {part.tag: _text(part) for part in child}
            date = "-".join(p for p in (parts.get(t) for t in ("Year", "Month", "Day")) if p)
            if date:
                extra["article_date"] = date
    fields["title"] = title or vernacular
    fields["_locations"] = locations
    _languages(languages, fields, extra)


def _databanks(bank_list: Any, fields: dict[str, Any], extra: dict[str, Any]) -> None:
    databanks: dict[str, list[str]] = {}
    for bank in bank_list:
        name = ""
        numbers: list[str] = []
        for part in bank:
            if part.tag == "DataBankName":
                name = _text(part)
            elif part.tag == "AccessionNumberList":
                numbers = _texts(part)
        if name.lower() == "clinicaltrials.gov":
            fields.setdefault("nct_ids", []).extend(numbers)
        elif name:
            databanks.setdefault(name, []).extend(numbers)
    if databanks:
        extra["databanks"] = databanks


def _article(element: Any, source: str, number: int) -> Record:
    citation = data = None
    for child in element:
        if child.tag == "MedlineCitation":
            citation = child
        elif child.tag == "PubmedData":
            data = child
    if citation is None:
        raise FormatError(
            "<PubmedArticle> without <MedlineCitation>",
            source=source,
            record=number,
            line=element.sourceline,
            field="MedlineCitation",
        )
    fields: dict[str, Any] = {"other_ids": {}}
    extra: dict[str, Any] = {}
    status = citation.get("Status")
    if status:
        extra["medline_status"] = status
    pmid_el = None
    keywords: list[str] = []
    other_pmcids: list[str] = []
    for child in citation:
        tag = child.tag
        if tag == "PMID":
            pmid_el = child
        elif tag == "Article":
            _article_body(child, fields, extra)
        elif tag == "MeshHeadingList":
            fields["mesh"] = _mesh(child)
        elif tag == "KeywordList":
            keywords.extend(_texts(child))
        elif tag == "OtherID":
            other = _text(child)
            if other.startswith("PMC"):
                other_pmcids.append(other)
    fields["pmid"] = _pmid(pmid_el, citation, source, number)
    fields["keywords"] = keywords
    record = _finish(fields, extra, data)
    if record.pmcid is None:
        for other in other_pmcids:
            record.pmcid = normalize_pmcid(other)
            if record.pmcid:
                break
    return record


def _book_article(element: Any, source: str, number: int) -> Record:
    document = data = None
    for child in element:
        if child.tag == "BookDocument":
            document = child
        elif child.tag == "PubmedBookData":
            data = child
    if document is None:
        raise FormatError(
            "<PubmedBookArticle> without <BookDocument>",
            source=source,
            record=number,
            line=element.sourceline,
            field="BookDocument",
        )
    fields: dict[str, Any] = {"other_ids": {}}
    extra: dict[str, Any] = {}
    pmid_el = None
    title = None
    book_title = ""
    book_authors: list[str] = []
    authors: list[str] = []
    languages: list[str] = []
    keywords: list[str] = []
    locations: list[Any] = []
    publication_types: list[str] = []
    for child in document:
        tag = child.tag
        if tag == "PMID":
            pmid_el = child
        elif tag == "ArticleIdList":
            _article_ids(child, fields)
        elif tag == "Book":
            for part in child:
                part_tag = part.tag
                if part_tag == "BookTitle":
                    book_title = _text(part)
                elif part_tag == "Publisher":
                    for publisher in part:
                        value = _text(publisher)
                        if publisher.tag == "PublisherName" and value:
                            extra["publisher"] = value
                        elif publisher.tag == "PublisherLocation" and value:
                            extra["publisher_location"] = value
                elif part_tag == "PubDate":
                    _pub_date(part, fields)
                elif part_tag == "Volume":
                    fields["volume"] = _text(part) or None
                elif part_tag == "Isbn" and "isbn" not in extra:
                    isbn = _text(part)
                    if isbn:
                        extra["isbn"] = isbn
                elif part_tag == "ELocationID":
                    locations.append(part)
                elif part_tag == "AuthorList" and part.get("Type", "authors") == "authors":
                    book_authors = book_authors or _authors(part)
        elif tag == "ArticleTitle":
            title = _text(child) or None
        elif tag == "Pagination":
            fields["pages"] = _pagination(child)
        elif tag == "ELocationID":
            locations.append(child)
        elif tag == "Language":
            language = _text(child)
            if language:
                languages.append(language)
        elif tag == "AuthorList" and child.get("Type", "authors") == "authors":
            authors = authors or _authors(child)
        elif tag == "PublicationType":
            publication_type = _text(child)
            if publication_type:
                publication_types.append(publication_type)
        elif tag == "Abstract":
            _abstract(child, fields, extra)
        elif tag == "KeywordList":
            keywords.extend(_texts(child))
    fields["pmid"] = _pmid(pmid_el, document, source, number)
    # The writer tells book articles from journal articles by this key.
    extra["book_title"] = book_title
    fields["title"] = title or book_title or None
    fields["authors"] = authors or book_authors
    fields["publication_types"] = publication_types
    fields["keywords"] = keywords
    fields["_locations"] = locations
    _languages(languages, fields, extra)
    return _finish(fields, extra, data)


# --------------------------------------------------------------------------- writing


def _xml_safe(value: str) -> str:
    return _XML_ILLEGAL.sub("", value)


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str | None) -> Any:
    element = etree.SubElement(
        parent, tag, {k: _xml_safe(v) for k, v in attrs.items() if v is not None}
    )
    if text is not None:
        element.text = _xml_safe(text)
    return element


def _date_parts(text: str) -> list[tuple[str, str]]:
    """How a ``pub_date`` string is written: Year/Month/Day, Year/Season, or MedlineDate."""
    match = _PUB_DATE.fullmatch(text)
    if match:
        year, second, third = match.groups()
        if second is None:
            return [("Year", year)]
        if second in _MONTHS or (second.isdigit() and len(second) <= 2):
            parts = [("Year", year), ("Month", second)]
            return [*parts, ("Day", third)] if third is not None else parts
        if third is None:
            return [("Year", year), ("Season", second)]
    return [("MedlineDate", text)]


def _write_pub_date(parent: Any, record: Record) -> None:
    pub_date = _sub(parent, "PubDate")
    text = _clean(_xml_safe(record.pub_date)) if record.pub_date else ""
    if text:
        first_year = _YEAR.search(text)
        # Written only where reading it back gives the record's year.
        if record.year is None or (first_year and int(first_year.group()) == record.year):
            for tag, value in _date_parts(text):
                _sub(pub_date, tag, value)
            return
    if record.year is not None:
        _sub(pub_date, "Year", f"{record.year:04d}")


def _write_authors(parent: Any, authors: list[str], list_type: str | None = None) -> None:
    names = [_clean(_xml_safe(a)) for a in authors]
    names = [n for n in names if n]
    if not names:
        return
    author_list = _sub(parent, "AuthorList", CompleteYN="Y", Type=list_type)
    for name in names:
        author = _sub(author_list, "Author", ValidYN="Y")
        last, sep, first = name.partition(", ")
        # Split only where reading back gives the same string ("Last, Fore").
        if sep and last and first and last == _clean(last) and first == _clean(first):
            _sub(author, "LastName", last)
            _sub(author, "ForeName", first)
        elif " " in name or "," in name:
            _sub(author, "CollectiveName", name)
        else:
            _sub(author, "LastName", name)


def _write_abstract(parent: Any, record: Record) -> None:
    if record.abstract_sections:
        abstract = _sub(parent, "Abstract")
        categories = record.extra.get("nlm_categories")
        if not isinstance(categories, list) or len(categories) != len(record.abstract_sections):
            categories = [None] * len(record.abstract_sections)
        for section, category in zip(record.abstract_sections, categories, strict=True):
            label = _clean(_xml_safe(section.label)) if section.label else None
            _sub(
                abstract,
                "AbstractText",
                section.text,
                Label=label or None,
                NlmCategory=category if isinstance(category, str) else None,
            )
    elif record.abstract:
        abstract = _sub(parent, "Abstract")
        _sub(abstract, "AbstractText", record.abstract)
    else:
        return
    copyright_text = record.extra.get("abstract_copyright")
    if isinstance(copyright_text, str):
        _sub(abstract, "CopyrightInformation", copyright_text)


def _write_languages(parent: Any, record: Record) -> None:
    if record.language:
        _sub(parent, "Language", record.language)
        others = record.extra.get("other_languages")
        if isinstance(others, list):
            for language in others:
                if isinstance(language, str):
                    _sub(parent, "Language", language)


def _write_keywords(parent: Any, record: Record) -> None:
    if record.keywords:
        keyword_list = _sub(parent, "KeywordList", Owner="NOTNLM")
        for keyword in record.keywords:
            _sub(keyword_list, "Keyword", keyword, MajorTopicYN="N")


def _write_article_ids(parent: Any, record: Record) -> None:
    id_list = _sub(parent, "ArticleIdList")
    _sub(id_list, "ArticleId", record.pmid, IdType="pubmed")
    if record.doi:
        _sub(id_list, "ArticleId", record.doi, IdType="doi")
    if record.pmcid:
        _sub(id_list, "ArticleId", record.pmcid, IdType="pmc")
    for kind, value in record.other_ids.items():
        if kind in _ARTICLE_ID_TYPES:
            _sub(id_list, "ArticleId", value, IdType=kind)


def _article_element(record: Record) -> Any:
    extra = record.extra
    root = etree.Element("PubmedArticle")
    citation = _sub(
        root,
        "MedlineCitation",
        Status=extra.get("medline_status")
        if isinstance(extra.get("medline_status"), str)
        else "PubMed-not-MEDLINE",
        Owner="NLM",
    )
    _sub(citation, "PMID", record.pmid, Version="1")
    article = _sub(citation, "Article", PubModel="Print")
    journal = _sub(article, "Journal")
    if isinstance(extra.get("issn"), str):
        _sub(journal, "ISSN", extra["issn"], IssnType="Print")
    journal_issue = _sub(journal, "JournalIssue", CitedMedium="Print")
    if record.volume:
        _sub(journal_issue, "Volume", record.volume)
    if record.issue:
        _sub(journal_issue, "Issue", record.issue)
    _write_pub_date(journal_issue, record)
    if record.journal:
        _sub(journal, "Title", record.journal)
    if record.journal_abbrev:
        _sub(journal, "ISOAbbreviation", record.journal_abbrev)
    _sub(article, "ArticleTitle", record.title or "")
    if record.pages:
        pagination = _sub(article, "Pagination")
        _sub(pagination, "MedlinePgn", record.pages)
    _write_abstract(article, record)
    _write_authors(article, record.authors)
    _write_languages(article, record)
    databanks = extra.get("databanks")
    if not isinstance(databanks, dict):
        databanks = {}
    if record.nct_ids or databanks:
        bank_list = _sub(article, "DataBankList", CompleteYN="Y")
        banks: list[tuple[str, list[Any]]] = []
        if record.nct_ids:
            banks.append(("ClinicalTrials.gov", list(record.nct_ids)))
        banks.extend((str(k), v if isinstance(v, list) else [v]) for k, v in databanks.items())
        for name, numbers in banks:
            bank = _sub(bank_list, "DataBank")
            _sub(bank, "DataBankName", name)
            number_list = _sub(bank, "AccessionNumberList")
            for number in numbers:
                _sub(number_list, "AccessionNumber", str(number))
    type_list = _sub(article, "PublicationTypeList")
    for publication_type in record.publication_types:
        _sub(type_list, "PublicationType", publication_type)
    if isinstance(extra.get("article_date"), str):
        parts = extra["article_date"].split("-")
        article_date = _sub(article, "ArticleDate", DateType="Electronic")
        for tag, part in zip(("Year", "Month", "Day"), parts, strict=False):
            _sub(article_date, tag, part)
    info = _sub(citation, "MedlineJournalInfo")
    _sub(info, "MedlineTA", record.journal_abbrev or record.journal or "")
    if record.mesh:
        mesh_list = _sub(citation, "MeshHeadingList")
        for heading in record.mesh:
            mesh = _sub(mesh_list, "MeshHeading")
            _sub(
                mesh,
                "DescriptorName",
                heading.descriptor,
                UI=heading.ui,
                MajorTopicYN="Y" if heading.major else "N",
            )
            for qualifier in heading.qualifiers:
                major = "Y" if qualifier in heading.major_qualifiers else "N"
                _sub(mesh, "QualifierName", qualifier, MajorTopicYN=major)
    _write_keywords(citation, record)
    pubmed_data = _sub(root, "PubmedData")
    status = extra.get("publication_status")
    _sub(pubmed_data, "PublicationStatus", status if isinstance(status, str) else "ppublish")
    _write_article_ids(pubmed_data, record)
    return root


def _book_element(record: Record) -> Any:
    extra = record.extra
    root = etree.Element("PubmedBookArticle")
    document = _sub(root, "BookDocument")
    _sub(document, "PMID", record.pmid, Version="1")
    id_list = _sub(document, "ArticleIdList")
    for kind, value in record.other_ids.items():
        if kind in _ARTICLE_ID_TYPES:
            _sub(id_list, "ArticleId", value, IdType=kind)
    book = _sub(document, "Book")
    publisher = _sub(book, "Publisher")
    _sub(publisher, "PublisherName", str(extra.get("publisher") or ""))
    if isinstance(extra.get("publisher_location"), str):
        _sub(publisher, "PublisherLocation", extra["publisher_location"])
    book_title = str(extra["book_title"])
    _sub(book, "BookTitle", book_title)
    _write_pub_date(book, record)
    if record.volume:
        _sub(book, "Volume", record.volume)
    if isinstance(extra.get("isbn"), str):
        _sub(book, "Isbn", extra["isbn"])
    if record.doi:
        _sub(book, "ELocationID", record.doi, EIdType="doi", ValidYN="Y")
    if record.title and _clean(_xml_safe(record.title)) != _clean(_xml_safe(book_title)):
        _sub(document, "ArticleTitle", record.title)
    if record.pages:
        pagination = _sub(document, "Pagination")
        _sub(pagination, "MedlinePgn", record.pages)
    _write_languages(document, record)
    _write_authors(document, record.authors, list_type="authors")
    for publication_type in record.publication_types:
        _sub(document, "PublicationType", publication_type)
    _write_abstract(document, record)
    _write_keywords(document, record)
    pubmed_data = _sub(root, "PubmedBookData")
    status = extra.get("publication_status")
    _sub(pubmed_data, "PublicationStatus", status if isinstance(status, str) else "ppublish")
    data_ids = _sub(pubmed_data, "ArticleIdList")
    _sub(data_ids, "ArticleId", record.pmid, IdType="pubmed")
    if record.pmcid:
        _sub(data_ids, "ArticleId", record.pmcid, IdType="pmc")
    return root


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    count = 0
    deleted: list[str] = []
    with etree.xmlfile(stream, encoding="utf-8") as xf:
        xf.write_declaration()
        xf.write_doctype(_DOCTYPE)
        with xf.element("PubmedArticleSet"):
            xf.write("\n")
            for number, record in enumerate(records, start=1):
                if not record.pmid:
                    raise LeadsError(
                        f"record {number} ({record.display_id()}) has no PMID, "
                        "which PubMed XML requires"
                    )
                if record.extra.get("pubmed_action") == "delete":
                    deleted.append(record.pmid)
                    continue
                if isinstance(record.extra.get("book_title"), str):
                    xf.write(_book_element(record))
                else:
                    xf.write(_article_element(record))
                xf.write("\n")
                count += 1
            if deleted:
                delete = etree.Element("DeleteCitation")
                for pmid in deleted:
                    _sub(delete, "PMID", pmid, Version="1")
                xf.write(delete)
                xf.write("\n")
                count += len(deleted)
    stream.write(b"\n")
    return count


FORMAT = register_format(
    RecordFormat(
        name="pubmed-xml",
        description="PubMed XML (E-utilities efetch, annual baseline and update files)",
        extensions=(".xml",),
        sniff=sniff,
        read=read,
        write=write,
        priority=30,
        aliases=("pubmed_xml", "medline-xml"),
    )
)
