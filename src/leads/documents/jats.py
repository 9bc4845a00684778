"""PMC JATS / NLM XML (``.nxml``) to a :class:`~leads.documents.model.Document`.

The text is composed in reading order: title, abstract(s) (structured sections as sub-sections),
body sections with their nested titles, tables and figure captions where the XML places them
(a ``table-wrap`` inside a paragraph follows that paragraph), floating tables and figures
(``floats-group``), then back matter (acknowledgements, appendices, notes, references).

Tables become cell grids with row and column spans expanded; captions and ``table-wrap-foot``
footnotes are kept. Inline markup (italics, superscripts, citations) is flattened to its text,
as PMC's own plain-text rendering does ("kg/m<sup>2</sup>" reads "kg/m2").

Fragments are accepted too: a file holding only ``<abstract>`` and ``<sec>`` elements (as the
llm-meta-analysis texts do) is read as abstract + body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from leads.documents._build import DocumentBuilder, SourceCell, collapse
from leads.documents.model import Document
from leads.documents.sections import SectionType
from leads.errors import FormatError
from leads.records import find_identifiers, normalize_doi, normalize_pmcid, normalize_pmid

__all__ = ["looks_like_jats", "read_jats"]

# Elements whose content is laid out as blocks of their own, not run into a paragraph.
_BLOCK_TAGS = frozenset({
    "table-wrap", "table-wrap-group", "fig", "fig-group", "list", "def-list", "disp-quote",
    "boxed-text", "disp-formula-group", "supplementary-material", "statement", "preformat",
    "array", "code", "graphic", "media", "alternatives", "chem-struct-wrap", "verse-group",
    "speech", "table",
})
# Elements whose text is never part of the reading text.
_DROP_TAGS = frozenset({"object-id", "graphic", "media", "inline-graphic", "private-char",
                        "tex-math", "annotation", "sec-meta", "kwd-group", "permissions"})
_PREFERRED_DATES = ("ppub", "epub", "pub", "epub-ppub", "collection", "pmc-release")
_FRAGMENT_ERROR = re.compile(r"Extra content at the end of the document", re.IGNORECASE)
_JATS_SNIFF = re.compile(
    rb"<!DOCTYPE\s+(?:article|pmc-articleset)|<article[\s>]|<pmc-articleset[\s>]|"
    rb"JATS|NLM//DTD|<abstract[\s>]|<body[\s>]|<sec[\s>]",
)


def _local(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""  # comment or processing instruction
    return tag.rsplit("}", 1)[-1]


def looks_like_jats(head: bytes) -> bool:
    """Whether the first bytes of a file look like JATS/NLM article XML."""
    return bool(_JATS_SNIFF.search(head[:4096]))


# -- text of inline content ---------------------------------------------------------------------

def _inline(element: Any, *, skip_blocks: bool = True) -> str:
    """The text of ``element`` with inline markup flattened (blocks and dropped tags skipped)."""
    parts: list[str] = []
    _collect(element, parts, skip_blocks, top=True)
    return collapse("".join(parts))


def _collect(element: Any, parts: list[str], skip_blocks: bool, top: bool = False) -> None:
    tag = _local(element)
    skip = not top and (tag in _DROP_TAGS or (skip_blocks and tag in _BLOCK_TAGS))
    if not skip and tag:
        if tag in ("break", "hr"):
            parts.append(" ")
        if element.text:
            parts.append(element.text)
        for child in element:
            _collect(child, parts, skip_blocks)
    if not top and element.tail:
        parts.append(element.tail)


def _itertext_spaced(element: Any) -> str:
    """All text with a space between elements (for element-citation, whose parts have no spaces)."""
    pieces = [t.strip() for t in element.itertext()]
    return collapse(" ".join(p for p in pieces if p))


def _first(element: Any, *names: str) -> Any | None:
    for child in element:
        if _local(child) in names:
            return child
    return None


def _children(element: Any, *names: str) -> list[Any]:
    return [child for child in element if _local(child) in names]


def _descendants(element: Any, name: str) -> Iterator[Any]:
    for node in element.iter():
        if _local(node) == name:
            yield node


# -- reader -------------------------------------------------------------------------------------

class _JatsReader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.b = DocumentBuilder()
        self.placed_floats: set[str] = set()

    # front matter ----------------------------------------------------------------------------

    def front(self, article: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        article_meta = next(_descendants(article, "article-meta"), None)
        journal_meta = next(_descendants(article, "journal-meta"), None)
        if journal_meta is not None:
            title = next(_descendants(journal_meta, "journal-title"), None)
            if title is not None and _inline(title):
                meta["journal"] = _inline(title)
            else:
                for jid in _descendants(journal_meta, "journal-id"):
                    if jid.get("journal-id-type") in ("nlm-ta", "iso-abbrev") and jid.text:
                        meta["journal"] = collapse(jid.text)
                        break
        if article_meta is None:
            return meta
        other_ids: dict[str, str] = {}
        for aid in _children(article_meta, "article-id"):
            kind = (aid.get("pub-id-type") or "").lower()
            value = collapse("".join(aid.itertext()))
            if kind == "pmid":
                meta["pmid"] = normalize_pmid(value)
            elif kind in ("pmc", "pmcid"):
                meta["pmcid"] = normalize_pmcid(value)
            elif kind == "doi":
                meta["doi"] = normalize_doi(value)
            elif kind and value:
                other_ids[kind] = value
        if other_ids:
            meta["other_ids"] = other_ids
        title = next(_descendants(article_meta, "article-title"), None)
        if title is not None:
            meta["title"] = _inline(title)
        authors: list[str] = []
        for contrib in _descendants(article_meta, "contrib"):
            if contrib.get("contrib-type", "author") != "author":
                continue
            name = _first(contrib, "name", "string-name")
            if name is not None:
                surname = _first(name, "surname")
                given = _first(name, "given-names")
                if surname is not None:
                    text = collapse("".join(surname.itertext()))
                    if given is not None:
                        text += ", " + collapse("".join(given.itertext()))
                    authors.append(text)
                else:
                    authors.append(_inline(name))
            else:
                collab = _first(contrib, "collab")
                if collab is not None:
                    authors.append(_inline(collab))
        meta["authors"] = [a for a in authors if a]
        meta["year"] = self._year(article_meta)
        return meta

    @staticmethod
    def _year(article_meta: Any) -> int | None:
        years: dict[str, int] = {}
        for date in _children(article_meta, "pub-date"):
            kind = date.get("pub-type") or date.get("date-type") or "pub"
            year = _first(date, "year")
            if year is not None and year.text and year.text.strip().isdigit():
                years.setdefault(kind, int(year.text.strip()))
        for kind in _PREFERRED_DATES:
            if kind in years:
                return years[kind]
        return min(years.values()) if years else None

    # blocks --------------------------------------------------------------------------------------

    def title(self, text: str | None) -> None:
        if text:
            self.b.open_section(text, force_type="title")
            self.b.close_section()

    def abstracts(self, abstracts: list[Any]) -> None:
        # The main abstract (no abstract-type) first, then summaries; graphical/teaser ones skipped.
        def rank(a: Any) -> int:
            return 0 if not a.get("abstract-type") else 1
        for abstract in sorted(abstracts, key=rank):
            kind = (abstract.get("abstract-type") or "").lower()
            if kind in ("graphical", "teaser", "toc", "web-summary"):
                continue
            title_el = _first(abstract, "title")
            title = _inline(title_el) if title_el is not None else None
            if not title:
                title = "Abstract" if not kind else kind.replace("-", " ").capitalize()
            self.b.open_section(title, force_type="abstract")
            self.container(abstract, skip_title=True)
            self.b.close_section()

    def container(self, element: Any, *, skip_title: bool = False) -> None:
        """Lay out the block-level children of ``element`` (a body, sec, abstract, ...)."""
        for child in element:
            tag = _local(child)
            if not tag:
                continue
            if tag in ("title", "label") and skip_title:
                continue
            self.block(child)

    def block(self, element: Any) -> None:
        tag = _local(element)
        if tag in ("sec", "app", "boxed-text", "ack", "notes", "glossary", "bio"):
            self.section(element)
        elif tag in ("p", "disp-formula", "statement", "preformat", "verse-group", "speech",
                     "code", "attrib", "def-list", "disp-quote", "fn", "license-p"):
            self.paragraph_like(element)
        elif tag == "list":
            self.list_block(element)
        elif tag in ("table-wrap", "table-wrap-group"):
            self.table_wrap(element)
        elif tag in ("fig", "fig-group"):
            self.figure(element)
        elif tag == "supplementary-material":
            caption = _first(element, "caption")
            label = _first(element, "label")
            text = " ".join(t for t in (_inline(label) if label is not None else "",
                                        _inline(caption) if caption is not None else "") if t)
            self.b.add_block(text)
        elif tag in ("app-group", "fn-group", "ref-list", "sec-meta", "floats-group", "back", "body"):
            if tag == "ref-list":
                self.references(element)
            elif tag == "fn-group":
                self.notes_group(element, "Footnotes")
            elif tag == "app-group" or tag in ("floats-group", "body", "back"):
                self.container(element)
        elif tag in ("title", "label", "object-id", "graphic", "media", "alternatives", "caption"):
            return
        else:
            self.b.add_block(_inline(element))

    def section(self, element: Any) -> None:
        tag = _local(element)
        title_el = _first(element, "title")
        label_el = _first(element, "label")
        title = _inline(title_el) if title_el is not None else ""
        label = _inline(label_el) if label_el is not None else ""
        heading = " ".join(p for p in (label, title) if p) or None
        if heading is None and tag == "ack":
            heading = "Acknowledgements"
        if heading is None and tag == "glossary":
            heading = "Abbreviations"
        force: SectionType | None = "other" if tag in ("ack", "notes", "glossary", "bio") else None
        self.b.open_section(heading, sec_type=element.get("sec-type"), force_type=force)
        self.container(element, skip_title=True)
        self.b.close_section()

    def paragraph_like(self, element: Any) -> None:
        tag = _local(element)
        if tag == "def-list":
            for item in _descendants(element, "def-item"):
                term = _first(item, "term")
                definition = _first(item, "def")
                text = ": ".join(t for t in (_inline(term) if term is not None else "",
                                             _inline(definition) if definition is not None else "") if t)
                self.b.add_block(text)
            return
        if tag in ("disp-quote", "fn") and any(_local(c) == "p" for c in element):
            self.container(element)
            return
        self.b.add_block(_inline(element))
        # Block elements nested in the paragraph (a table-wrap inside <p>) follow it.
        for child in element:
            if _local(child) in _BLOCK_TAGS and _local(child) not in ("graphic", "media", "alternatives"):
                self.block(child)

    def list_block(self, element: Any) -> None:
        for item in _children(element, "list-item"):
            label_el = _first(item, "label")
            label = _inline(label_el) if label_el is not None else ""
            paragraphs = [c for c in item if _local(c) not in ("label",)]
            first = True
            for child in paragraphs:
                if _local(child) == "p":
                    text = _inline(child)
                    if first and label:
                        text = f"{label} {text}"
                    self.b.add_block(text)
                    for nested in child:
                        if _local(nested) in _BLOCK_TAGS:
                            self.block(nested)
                else:
                    self.block(child)
                first = False
            if not paragraphs and label:
                self.b.add_block(label)

    def figure(self, element: Any) -> None:
        if _local(element) == "fig-group":
            for fig in _children(element, "fig"):
                self.figure(fig)
            return
        fid = element.get("id")
        if fid:
            if fid in self.placed_floats:
                return
            self.placed_floats.add(fid)
        label_el = _first(element, "label")
        caption = _first(element, "caption")
        label = _inline(label_el) if label_el is not None else ""
        caption_title = _first(caption, "title") if caption is not None else None
        title = " ".join(t for t in (label, _inline(caption_title) if caption_title is not None else "") if t)
        self.b.open_section(title or None, force_type="figure")
        if caption is not None:
            for child in caption:
                if _local(child) != "title":
                    self.b.add_block(_inline(child), "caption")
        self.b.close_section()

    def table_wrap(self, element: Any) -> None:
        if _local(element) == "table-wrap-group":
            for wrap in _children(element, "table-wrap"):
                self.table_wrap(wrap)
            return
        tid = element.get("id")
        if tid:
            if tid in self.placed_floats:
                return
            self.placed_floats.add(tid)
        label_el = _first(element, "label")
        caption_el = _first(element, "caption")
        caption = ""
        if caption_el is not None:
            caption = " ".join(t for t in (_inline(c) for c in caption_el) if t)
        rows: list[list[SourceCell]] = []
        header_rows = 0
        for table in _descendants(element, "table"):
            table_rows, table_header = self._table_rows(table)
            if not rows:
                header_rows = table_header
            rows.extend(table_rows)
        footnotes: list[str] = []
        for foot in _descendants(element, "table-wrap-foot"):
            items = list(_descendants(foot, "fn")) or _children(foot, "p") or [foot]
            footnotes.extend(_inline(item, skip_blocks=False) for item in items)
        self.b.add_table(label=_inline(label_el) if label_el is not None else None,
                         caption=caption or None, rows=rows, header_rows=header_rows,
                         footnotes=footnotes)

    @staticmethod
    def _table_rows(table: Any) -> tuple[list[list[SourceCell]], int]:
        rows: list[list[SourceCell]] = []
        thead_rows = 0
        for tr in _descendants(table, "tr"):
            in_head = any(_local(a) == "thead" for a in tr.iterancestors())
            cells = []
            for cell in tr:
                tag = _local(cell)
                if tag not in ("td", "th"):
                    continue
                cells.append(SourceCell(
                    text=_inline(cell, skip_blocks=False),
                    rowspan=_span(cell.get("rowspan")),
                    colspan=_span(cell.get("colspan")),
                    header=tag == "th" or in_head,
                ))
            rows.append(cells)
            if in_head:
                thead_rows += 1
        if thead_rows == 0:
            # No <thead>: leading rows made only of <th> cells are the header.
            for row in rows:
                if row and all(c.header for c in row):
                    thead_rows += 1
                else:
                    break
        return rows, thead_rows

    def references(self, element: Any) -> None:
        title_el = _first(element, "title")
        title = _inline(title_el) if title_el is not None else "References"
        self.b.open_section(title or "References", force_type="references")
        for ref in _descendants(element, "ref"):
            label_el = _first(ref, "label")
            label = _inline(label_el) if label_el is not None else ""
            citation = next((c for c in ref if _local(c) in ("mixed-citation", "element-citation",
                                                              "citation", "nlm-citation")), None)
            if citation is None:
                continue
            if _local(citation) == "mixed-citation" and (citation.text or "").strip():
                text = _inline(citation, skip_blocks=False)
            else:
                text = _itertext_spaced(citation)
            self.b.add_block(f"{label} {text}".strip() if label else text, "reference")
        self.b.close_section()

    def notes_group(self, element: Any, default_title: str) -> None:
        title_el = _first(element, "title")
        title = (_inline(title_el) if title_el is not None else "") or default_title
        self.b.open_section(title, force_type="other")
        for fn in _descendants(element, "fn"):
            paragraphs = _children(fn, "p")
            if paragraphs:
                for p in paragraphs:
                    self.b.add_block(_inline(p))
            else:
                self.b.add_block(_inline(fn))
        self.b.close_section()


def _span(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def _parse(data: bytes, source: str) -> tuple[Any, list[str]]:
    """Parse XML without fetching DTDs; a fragment with several top-level elements is wrapped."""
    warnings: list[str] = []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        return etree.fromstring(data, parser), warnings
    except etree.XMLSyntaxError as exc:
        first_error = exc
    # Several top-level elements (<abstract>..</abstract><sec>..</sec>): wrap them.
    if _FRAGMENT_ERROR.search(str(first_error)):
        body = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data)
        body = re.sub(rb"^\s*<!DOCTYPE[^>]*>", b"", body)
        try:
            return etree.fromstring(b"<fragment>" + body + b"</fragment>", parser), warnings
        except etree.XMLSyntaxError:
            pass
    # Undeclared named entities and similar damage: recover what lxml can, and say so.
    recovering = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True, recover=True)
    try:
        root = etree.fromstring(data, recovering)
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        line = getattr(first_error, "lineno", None)
        raise FormatError(f"not well-formed XML: {first_error.msg}", source=source, line=line) from None
    warnings.append(f"XML was damaged and read in recovery mode: {first_error.msg}")
    return root, warnings


def read_jats(data: bytes, *, source: str = "<bytes>") -> Document:
    """Read a PMC JATS/NLM article (or a fragment of one) into a Document."""
    root, warnings = _parse(data, source)
    tag = _local(root)
    if tag == "pmc-articleset":
        articles = [c for c in root if _local(c) == "article"]
        if not articles:
            raise FormatError("pmc-articleset holds no <article>", source=source)
        if len(articles) > 1:
            warnings.append(f"{len(articles)} articles in the file; only the first was read")
        root = articles[0]
        tag = "article"
    reader = _JatsReader(source)
    meta: dict[str, Any] = {}
    if tag == "article":
        meta = reader.front(root)
        reader.title(meta.get("title"))
        front = _first(root, "front")
        article_meta = next(_descendants(front, "article-meta"), None) if front is not None else None
        if article_meta is not None:
            reader.abstracts(_children(article_meta, "abstract"))
        for part in root:
            name = _local(part)
            if name in ("body", "back", "floats-group"):
                reader.container(part)
            elif name == "sub-article":
                continue  # peer review reports, translations: not the article's own text
    elif tag in ("fragment", "body", "sec", "abstract", "back"):
        items = list(root) if tag in ("fragment", "body") else [root]
        abstracts = [c for c in items if _local(c) == "abstract"]
        if abstracts:
            reader.abstracts(abstracts)
        for child in items:
            if _local(child) == "abstract":
                continue
            if _local(child) == "title-group":
                title_el = _first(child, "article-title")
                if title_el is not None:
                    meta["title"] = _inline(title_el)
                    reader.title(meta["title"])
                continue
            reader.block(child)
    else:
        raise FormatError(f"not a JATS article: the root element is <{tag}>", source=source)
    if not reader.b.blocks:
        raise FormatError("the article has no text (no title, abstract or body)", source=source)
    # Trial registrations named in the article itself (not in its reference list).
    own_text = "".join(reader.b.parts)
    reference_start = next((b.start for b in reader.b.blocks if b.kind == "reference"), None)
    text_ids = find_identifiers(own_text[:reference_start])
    document = reader.b.build(
        format="jats",
        title=meta.get("title"),
        journal=meta.get("journal"),
        year=meta.get("year"),
        authors=meta.get("authors", []),
        pmid=meta.get("pmid"),
        pmcid=meta.get("pmcid"),
        doi=meta.get("doi"),
        nct_ids=text_ids["nct"],
        metadata={k: v for k, v in (("other_ids", meta.get("other_ids")), ("warnings", warnings)) if v},
    )
    return document
