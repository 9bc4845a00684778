"""BibTeX (``.bib``), read with ``bibtexparser`` v2 and written so that it reads back the same.

Reading: ``bibtexparser`` splits the file into blocks and its middlewares resolve ``@string``
macros, strip the enclosing braces/quotes, lower-case field names, split ``author`` on ``and``
and decode LaTeX (``{\\"u}`` -> ``ü``). Identifier and link fields (``doi``, ``url``, ...) are not
LaTeX-decoded, because a ``%`` in a URL is not a comment. Names come back as ``Last, First``.
A block bibtexparser could not parse raises :class:`FormatError` with the entry's number and line.

Writing: text is UTF-8 with only the characters LaTeX would misread escaped (``\\{``, ``\\%``,
``-{}-`` ...), so the reader's decoding restores it exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any, BinaryIO

import bibtexparser
from bibtexparser.exceptions import PartialMiddlewareException
from bibtexparser.library import Library
from bibtexparser.middlewares import (
    LatexDecodingMiddleware,
    NormalizeFieldKeys,
    RemoveEnclosingMiddleware,
    ResolveStringReferencesMiddleware,
    SeparateCoAuthors,
)
from bibtexparser.middlewares.middleware import BlockMiddleware
from bibtexparser.middlewares.names import parse_single_name_into_parts
from bibtexparser.model import (
    Block,
    DuplicateBlockKeyBlock,
    Entry,
    Field,
    ImplicitComment,
    MiddlewareErrorBlock,
    ParsingFailedBlock,
)

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

_VERBATIM = frozenset(
    {"doi", "url", "urls", "urldate", "pmid", "pmcid", "eprint", "file", "isbn", "issn", "pages"}
)
_NAME_FIELDS = ("author", "editor", "translator")
_ENTRY_START = re.compile(r"^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(]", re.MULTILINE)
_MONTHS = {
    name: i
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")],
        start=1,
    )
    for name in names
}  # fmt: skip
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_:.-]+")


def sniff(head: bytes) -> bool:
    """True when the content has a ``@type{`` block at the start of a line before any RIS/MEDLINE tag."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff")
    match = _ENTRY_START.search(text)
    if not match:
        return False
    before = text[: match.start()]
    # Tagged formats (RIS "TY  - ", MEDLINE "PMID- ", WoS "PT J") never start with a BibTeX block.
    return not re.search(r"(?m)^(?:[A-Z][A-Z0-9]{1,3} *- |PT [A-Z]\s*$|FN )", before)


# --- reading -----------------------------------------------------------------------------------


# pylatexenc walks every character, which was most of the read time. Text whose only LaTeX is
# escaped specials (\% \& \_ \# \$ \{ \}), grouping braces and dashes is decoded here instead,
# with the same result (tests/formats/test_bibtex.py compares the two); the rest goes to it.
_SIMPLE_LATEX = re.compile(r"\\[%&_#${}]|---|--|[{}]")
_SIMPLE_REPLACEMENT = {"---": "\u2014", "--": "\u2013", "{": "", "}": ""}
_ESCAPED_SPECIAL = re.compile(r"\\[%&_#${}]")
_NEEDS_DECODER = re.compile(r"\\|[$~%&^]|``|''|!`|\?`")


def _simple_latex_to_text(text: str) -> str | None:
    """``text`` decoded, or None when it holds LaTeX beyond escapes, braces and dashes."""
    if _NEEDS_DECODER.search(_ESCAPED_SPECIAL.sub("", text)):
        return None
    return _SIMPLE_LATEX.sub(lambda m: _SIMPLE_REPLACEMENT.get(m.group(), m.group()[1:]), text)


class _DecodeLatexExceptVerbatim(LatexDecodingMiddleware):
    """LaTeX decoding of text fields and of name lists; identifiers and links are left alone."""

    def __init__(self) -> None:
        # Math to text: "$\\beta$-blockers" reads "β-blockers", which is what screening needs.
        super().__init__(allow_inplace_modification=True, keep_math_mode=False)

    def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
        simple = _simple_latex_to_text(python_string)
        if simple is not None:
            return simple, ""
        return super()._transform_python_value_string(python_string)

    def transform_entry(self, entry: Entry, library: Library) -> Block:
        fields = entry.fields
        errors: list[str] = []
        for item in fields:
            if isinstance(item.value, list) and all(isinstance(v, str) for v in item.value):
                enclosing = item.enclosing
                decoded = [self._transform_python_value_string(v) for v in item.value]
                item.value = [text for text, _ in decoded]
                item.enclosing = enclosing
                errors.extend(error for _, error in decoded if error)
        entry.fields = [
            f for f in fields if f.key not in _VERBATIM and not isinstance(f.value, list)
        ]
        try:
            result = super().transform_entry(entry, library)
        finally:
            entry.fields = fields
        if errors and result is entry:
            return MiddlewareErrorBlock(block=entry, error=PartialMiddlewareException(errors))
        return result


class _SplitNames(SeparateCoAuthors):
    """``SeparateCoAuthors``, minus a bibtexparser slip: a name after " and " that starts with
    an escape (``\\'Alvarez``) loses its first two characters, so an empty group shields it."""

    def _transform_field_value(self, name: str) -> list[str]:
        return super()._transform_field_value(re.sub(r"(?i)(\sand\s+)(?=\\)", r"\1{}", name))


class _NamesLastFirst(BlockMiddleware):
    """``First von Last`` -> ``von Last, First``; ``{Group Name}`` is kept whole."""

    def __init__(self) -> None:
        super().__init__(allow_inplace_modification=True, allow_parallel_execution=True)

    @classmethod
    def metadata_key(cls) -> str:
        return "leads_names_last_first"

    def transform_entry(self, entry: Entry, library: Library) -> Block:
        for item in entry.fields:
            if item.key in _NAME_FIELDS and isinstance(item.value, list):
                enclosing = item.enclosing
                item.value = [_last_first(name) for name in item.value]
                item.enclosing = enclosing
        return entry


def _last_first(name: str) -> str:
    name = name.strip()
    if _is_braced_whole(name) or _has_top_level_comma(name):
        return name
    parts = parse_single_name_into_parts(name, strict=False)
    return parts.merge_last_name_first or name


def _is_braced_whole(text: str) -> bool:
    if not (text.startswith("{") and text.endswith("}")):
        return False
    depth = 0
    for i, char in enumerate(text):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _has_top_level_comma(text: str) -> bool:
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def _parse_stack() -> list[Any]:
    return [
        ResolveStringReferencesMiddleware(allow_inplace_modification=True),
        RemoveEnclosingMiddleware(allow_inplace_modification=True),
        NormalizeFieldKeys(allow_inplace_modification=True),
        _SplitNames(allow_inplace_modification=True),
        _NamesLastFirst(),
        _DecodeLatexExceptVerbatim(),
    ]


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    library = _parse(text, source)
    number = 0
    for block in library.blocks:
        if isinstance(block, DuplicateBlockKeyBlock) and block.raw:
            # A repeated citation key is a problem for LaTeX, not for screening: read the entry.
            number += 1
            entry = _reparse(block, library, source, number)
            yield _to_record(entry, source, number, (block.start_line or 0) + 1)
        elif isinstance(block, ParsingFailedBlock):
            number += 1
            raise FormatError(
                _failure_message(block),
                source=source,
                record=number,
                line=(block.start_line or 0) + 1,
                field=_failure_field(block),
            )
        elif isinstance(block, Entry):
            number += 1
            yield _to_record(block, source, number, (block.start_line or 0) + 1)
    if number == 0 and text.strip() and all(isinstance(b, ImplicitComment) for b in library.blocks):
        raise FormatError("no BibTeX entries found (an entry starts with '@type{')", source=source)


def _parse(text: str, source: str, library: Library | None = None) -> Library:
    try:
        return bibtexparser.parse_string(text, parse_stack=_parse_stack(), library=library)
    except RecursionError:
        raise FormatError("BibTeX nested too deeply to parse", source=source) from None
    except Exception as exc:  # bibtexparser's own invariant checks; never let them escape
        raise FormatError(
            f"cannot parse BibTeX: {type(exc).__name__}: {exc}", source=source
        ) from None


def _reparse(block: DuplicateBlockKeyBlock, library: Library, source: str, number: int) -> Entry:
    """The parse stack is not applied to a duplicate-key block; parse it again on its own."""
    alone = _parse(block.raw or "", source, Library(list(library.strings)))
    for parsed in alone.blocks:
        if isinstance(parsed, Entry):
            return parsed
        if isinstance(parsed, ParsingFailedBlock):
            raise FormatError(
                _failure_message(parsed),
                source=source,
                record=number,
                line=(block.start_line or 0) + 1,
                field=_failure_field(parsed),
            )
    raise FormatError(
        "invalid BibTeX entry", source=source, record=number, line=(block.start_line or 0) + 1
    )


def _failure_message(block: ParsingFailedBlock) -> str:
    error = block.error
    reason = getattr(error, "abort_reason", None) or str(error) or type(error).__name__
    raw = (block.raw or "").strip().splitlines()
    head = f" in {raw[0][:60]!r}" if raw else ""
    return f"invalid BibTeX entry{head}: {reason}"


def _failure_field(block: ParsingFailedBlock) -> str | None:
    keys = getattr(block, "duplicate_keys", None)
    if keys:
        return ", ".join(sorted(keys))
    return None


def _to_record(entry: Entry, source: str, number: int, line: int) -> Record:
    fields: dict[str, Any] = {}
    for item in entry.fields:
        fields[item.key] = item.value
    used: set[str] = set()

    def take(*keys: str) -> str | None:
        for key in keys:
            value = fields.get(key)
            if isinstance(value, str) and value.strip():
                used.add(key)
                return _text(value, key)
        return None

    record = Record()
    record.title = take("title")
    record.abstract = take("abstract")
    authors = fields.get("author")
    if isinstance(authors, list):
        record.authors = [_text(name, "author") for name in authors if name.strip()]
        used.add("author")
    record.journal = take("journal", "journaltitle")
    record.journal_abbrev = take("shortjournal")
    record.year, record.pub_date = _dates(fields, used)
    record.volume = take("volume")
    record.issue = take("number", "issue")
    pages = take("pages")
    record.pages = re.sub(r"\s*-{1,3}\s*", "-", pages) if pages else None
    identifiers = {key: _text(str(fields.get(key, "")), key) for key in ("doi", "pmid", "pmcid")}
    record.doi = normalize_doi(identifiers["doi"])
    record.pmid = normalize_pmid(identifiers["pmid"])
    record.pmcid = normalize_pmcid(identifiers["pmcid"])
    used.update(key for key in identifiers if getattr(record, key))
    eprint = _text(str(fields.get("eprint", "")), "eprint")
    if record.pmid is None and str(fields.get("eprinttype", "")).lower() == "pubmed":
        record.pmid = normalize_pmid(eprint)  # the eprint field stays: it is not the pmid field
    for key in ("url", "urls"):
        links = take(key)
        record.urls.extend(link for link in (links or "").split() if link not in record.urls)
    keywords = take("keywords")
    if keywords:
        separator = ";" if ";" in keywords else ","
        record.keywords = [k.strip() for k in keywords.split(separator) if k.strip()]
    record.language = take("language")
    note = take("note")

    extra: dict[str, Any] = {"bibtex_type": entry.entry_type.lower(), "bibtex_key": entry.key}
    if note:
        extra["notes"] = [note]
    rest: dict[str, str | list[str]] = {}
    for key, value in fields.items():
        if key in used:
            continue
        if isinstance(value, list):
            rest[key] = [_text(str(name), key) for name in value]
        else:
            rest[key] = _text(str(value), key)
    if rest:
        extra["bibtex"] = rest
    record.extra = extra
    for text in (record.abstract, note):
        for nct in find_identifiers(text)["nct"]:
            if nct not in record.nct_ids:
                record.nct_ids.append(nct)
    try:
        return Record.model_validate(record.model_dump())
    except ValueError as exc:
        raise FormatError(str(exc), source=source, record=number, line=line) from None


def _text(value: str, key: str) -> str:
    if key in _VERBATIM:
        # Not LaTeX-decoded, but exports escape the odd character in DOIs and URLs (10.1000/a\_b).
        return re.sub(r"\\([_%&#$])", r"\1", value).strip()
    return value.replace("\xa0", " ").strip()


def _dates(fields: dict[str, Any], used: set[str]) -> tuple[int | None, str | None]:
    year: int | None = None
    raw_year = fields.get("year")
    if isinstance(raw_year, str) and re.fullmatch(r"\s*\d{4}\s*", raw_year):
        year = int(raw_year)
        used.add("year")
    raw_date = fields.get("date")
    if isinstance(raw_date, str) and (match := _ISO_DATE.match(raw_date.strip())):
        iso = _checked_iso(int(match.group(1)), match.group(2), match.group(3))
        if iso is not None or not match.group(2):
            used.add("date")
            year = year if year is not None else int(match.group(1))
            return year, iso
    raw_month = fields.get("month")
    if year is not None and isinstance(raw_month, str):
        month_text = raw_month.strip().lower().rstrip(".")
        month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text)
        if month is not None and 1 <= month <= 12:
            used.add("month")
            return year, f"{year:04d}-{month:02d}"
    return year, None


def _checked_iso(year: int, month: str | None, day: str | None) -> str | None:
    if not month:
        return None
    try:
        if day:
            return date(year, int(month), int(day)).isoformat()
        date(year, int(month), 1)
    except ValueError:
        return None
    return f"{year:04d}-{int(month):02d}"


# --- writing -----------------------------------------------------------------------------------


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    entries: list[Block] = []
    keys: set[str] = set()
    for record in records:
        entries.append(_to_entry(record, keys))
    if not entries:
        return 0
    library = Library(entries)
    bib_format = bibtexparser.BibtexFormat()
    bib_format.indent = "  "
    bib_format.trailing_comma = True
    stream.write(bibtexparser.write_string(library, bibtex_format=bib_format).encode("utf-8"))
    return len(entries)


def _to_entry(record: Record, keys: set[str]) -> Entry:
    extra = record.extra or {}
    entry_type = str(extra.get("bibtex_type") or "")
    if not re.fullmatch(r"[A-Za-z]+", entry_type):
        entry_type = "article" if record.record_type == "article" else "misc"
    key = _citation_key(record, str(extra.get("bibtex_key") or ""), keys)
    fields: list[Field] = []

    def add(name: str, value: object, verbatim: bool = False) -> None:
        if value is None:
            return
        text = str(value).replace("\x00", "")
        if not text.strip():
            return
        fields.append(Field(name, _verbatim(text) if verbatim else _escape(text)))

    if record.authors:
        names = [_author(name) for name in record.authors if name.replace("\x00", "").strip()]
        if names:
            fields.append(Field("author", " and ".join(names)))
    add("title", _one_line(record.title))
    add("journal", _one_line(record.journal))
    add("shortjournal", _one_line(record.journal_abbrev))
    add("year", record.year)
    add("date", record.pub_date)
    add("volume", _one_line(record.volume))
    add("number", _one_line(record.issue))
    if record.pages:
        add("pages", re.sub(r"(?<=\S)-(?=\S)", "--", _one_line(record.pages) or ""), verbatim=True)
    add("doi", record.doi, verbatim=True)
    add("pmid", record.pmid, verbatim=True)
    add("pmcid", record.pmcid, verbatim=True)
    if record.urls:
        add("url", record.urls[0], verbatim=True)
        # BibTeX has one url; the others go in a field styles ignore, so none is lost.
        add("urls", " ".join(record.urls[1:]) or None, verbatim=True)
    keywords = [k for k in (_one_line(k) for k in record.keywords) if k and k.strip()]
    joined = "; ".join(keywords)
    if len(keywords) == 1 and "," in joined:
        joined += ";"  # else the reader would split one keyword at its commas
    add("keywords", joined or None)
    add("language", _one_line(record.language))
    abstract = record.abstract
    if abstract is None and record.abstract_sections:
        abstract = join_abstract(record.abstract_sections)
    add("abstract", abstract)
    notes = [str(note) for note in extra.get("notes") or [] if str(note).strip()]
    add("note", "\n".join(notes) if notes else None)
    taken = {f.key for f in fields}
    for name, value in (extra.get("bibtex") or {}).items():
        name = str(name).lower()
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name in taken:
            continue
        taken.add(name)
        if isinstance(value, list):
            names = [_author(str(n)) for n in value if str(n).replace("\x00", "").strip()]
            if names:
                fields.append(Field(name, " and ".join(names)))
        else:
            add(name, value, verbatim=name in _VERBATIM)
    return Entry(entry_type.lower(), key, fields)


def _one_line(value: object) -> str | None:
    if value is None:
        return None
    return " ".join(re.split(r"\r\n|\r|\n", str(value)))


_LATEX_SPECIAL = {
    "\\": "\\textbackslash{}",
    "~": "\\textasciitilde{}",
    **{char: "\\" + char for char in "{}%$&#_"},
}


def _escape(text: str) -> str:
    """Escape what LaTeX decoding would otherwise change, so it reads back as the same text."""
    text = re.sub(r"[\\~{}%$&#_]", lambda m: _LATEX_SPECIAL[m.group()], text)
    # Ligatures LaTeX makes of -- --- `` '' ?` !`: break them with an empty group.
    text = re.sub(r"-(?=-)", "-{}", text)
    text = re.sub(r"`(?=`)", "`{}", text)
    text = re.sub(r"'(?=')", "'{}", text)
    text = re.sub(r"([?!])(?=`)", r"\1{}", text)
    # An @ at the start of a line would start a new block for the splitter.
    return re.sub(r"(?m)^([ \t]*)@", r"\1{@}", text)


def _verbatim(text: str) -> str:
    text = " ".join(text.split())
    if text.count("{") != text.count("}") or "\\" in text:
        text = text.replace("{", "%7B").replace("}", "%7D").replace("\\", "%5C")
    return text


def _author(name: str) -> str:
    name = (_one_line(name) or "").replace("\x00", "")
    name = " ".join(name.split())
    if "," in name and not re.search(r"(?i)(?:^|\s)and(?:\s|$)", name):
        last, _, first = name.partition(",")
        if last.strip() and first.strip():
            escaped = _escape(name)
            # bibtexparser's name splitter drops an escape right after " and "; "{}" shields it.
            return "{}" + escaped if escaped.startswith("\\") else escaped
    # No "Last, First" shape (a group, or one word): braces keep BibTeX from splitting it.
    return "{" + _escape(name) + "}"


def _citation_key(record: Record, wanted: str, keys: set[str]) -> str:
    if wanted and re.fullmatch(r"[A-Za-z0-9_:.+/-]+", wanted) and wanted not in keys:
        keys.add(wanted)
        return wanted
    surname = ""
    if record.authors:
        surname = record.authors[0].split(",")[0]
    base = unicodedata.normalize("NFKD", surname).encode("ascii", "ignore").decode()
    base = _KEY_UNSAFE.sub("", base.title().replace(" ", ""))[:30] or "ref"
    base += str(record.year) if record.year is not None else ""
    key = base
    suffix = 0
    while key in keys:
        suffix += 1
        key = f"{base}{_letters(suffix)}"
    keys.add(key)
    return key


def _letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(ord("a") + rem) + out
    return out


FORMAT = register_format(
    RecordFormat(
        name="bibtex",
        description="BibTeX / BibLaTeX (.bib)",
        extensions=(".bib", ".bibtex"),
        sniff=sniff,
        read=read,
        write=write,
        priority=0,
        aliases=("bib", "biblatex"),
    )
)
