"""Tabular records: CSV, TSV and XLSX, with the column names of ASReview, Rayyan and Covidence.

Column names are matched case-insensitively after trimming them and turning runs of spaces,
underscores and hyphens into one underscore (``"Published Year"`` -> ``published_year``). The
first column that maps to a field wins; every other column, mapped or not, is kept in ``extra``
under its header exactly as written, as the raw cell text, so a CSV -> CSV round trip keeps it.

Cells are decoded as follows:

- authors: a JSON/Python list (``['Marx, Karl', 'Lindgren, Astrid']``, as ASReview writes
  them), else split on ``;`` (Covidence, Cohen), else on ``, `` for Embase's ``Author Names``,
  else on `` and `` (Rayyan);
- keywords: a list, else split on ``;``, else on commas outside parentheses;
- year: the leading four digits of ``2019``, ``2019.0``, ``2019 Mar``, ``2014//``; any other
  non-empty value leaves ``year`` empty and is kept in ``extra``;
- labels (``label_included``, ``included``, ``final_included``, ...): ``1``/``0``,
  ``yes``/``no``, ``y``/``n``, ``true``/``false``, ``include(d)``/``exclude(d)`` (any case, and
  ``1.0``/``0.0``); empty or ``-1`` (ASReview's "not labelled") is ``None``; anything else is a
  :class:`FormatError` naming the row and column. A title/abstract screening label
  (``label_abstract_screening``, ...) becomes ``label`` only when the file has no final label;
  otherwise it is checked and kept in ``extra``. Without any label column, a Rayyan
  ``notes`` cell's ``RAYYAN-INCLUSION: {"Name"=>"Included"}`` decisions give the label: all
  reviewers included -> True, all excluded -> False, otherwise (maybe, conflicts) None;
- NCT ids come from an ``nct_id``/``nct_ids`` column and from the abstract.

Records are numbered by data row (the header is not a record, blank rows are skipped but
counted); errors give that number and the physical line (CSV/TSV) or sheet row (XLSX).

The writers emit ASReview-compatible columns (``record_id, title, abstract, authors, year, doi,
pmid, ...,  label_included``, only those some record fills), then the ``extra`` columns in
first-seen order. Lists are written ``; ``-separated unless that would read back differently,
in which case they are written as a JSON list. Non-string ``extra`` values are written as JSON.
``record_id`` is used when every record has a unique integer ``source_id`` (ASReview requires
that), otherwise the column is called ``source_id``. XLSX cannot hold the C0 control characters
other than tab/newline/CR; the XLSX writer drops them, and refuses cells over Excel's limit of
32,767 characters.
"""

from __future__ import annotations

import ast
import csv
import datetime
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from leads.errors import FormatError, LeadsError
from leads.formats._registry import RecordFormat, decode_text, register_format
from leads.records import Record, find_identifiers

__all__ = ["CSV_FORMAT", "TSV_FORMAT", "XLSX_FORMAT", "read_csv", "read_tsv", "read_xlsx", "sniff_csv"]

_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "source_id": ("record_id", "source_id", "key", "covidence_#", "covidence_number"),
    "title": ("title", "primary_title", "article_title", "document_title"),
    "abstract": ("abstract", "notes_abstract", "abstract_note"),
    "authors": ("authors", "author", "author_names", "first_authors"),
    "keywords": ("keywords", "keyword"),
    "year": ("year", "publication_year", "published_year", "pub_year", "py"),
    "doi": ("doi",),
    "pmid": ("pmid", "pubmed_id", "pubmedid"),
    "pmcid": ("pmcid", "pmc_id"),
    "nct_ids": ("nct_ids", "nct_id", "nct"),
    "journal": ("journal", "journal_title", "publication_title", "source_title", "secondary_title"),
    "journal_abbrev": ("journal_abbrev", "journal_abbreviation", "abbreviated_source_title"),
    "volume": ("volume",),
    "issue": ("issue",),
    "pages": ("pages",),
    "language": ("language",),
    "urls": ("url", "urls", "link"),
    "label": (
        "label_included",
        "final_included",
        "included",
        "included_label",
        "included_final",
        "label",
        "include",
        "included_flag",
        "debug_label",
    ),
}
_SCREENING_LABELS = (
    "label_abstract_screening",
    "abstract_included",
    "included_abstract",
    "included_after_abstract",
)
_ALIASES: dict[str, str] = {
    alias: field for field, aliases in _FIELD_ALIASES.items() for alias in aliases
}
_KNOWN = set(_ALIASES) | set(_SCREENING_LABELS) | {"notes", "accession_number", "tags", "ref"}
_NAME_SEP = re.compile(r"[\s_\-]+")
_YEAR = re.compile(r"([0-9]{4})(?:\.0+)?(?![0-9])")
_TRUE = {"1", "1.0", "yes", "y", "true", "t", "include", "included"}
_FALSE = {"0", "0.0", "no", "n", "false", "f", "exclude", "excluded"}
_UNLABELLED = {"", "-1", "-1.0"}
_RAYYAN_BLOCK = re.compile(r"RAYYAN-INCLUSION:\s*\{([^}]*)\}")
_RAYYAN_PAIR = re.compile(r'"([^"]*)"\s*=>\s*"([^"]*)"')
_TAGGED_LINE = re.compile(r"^(?:[A-Z][A-Z0-9]{1,3}\s{0,3}-(?:\s|$)|[A-Z][A-Z0-9] \S)")
# XLSX cells are XML: no C0 controls but tab/newline/CR, no U+FFFE/U+FFFF, no lone surrogates.
_XLSX_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# NUL makes the file look binary to decode_text; lone surrogates cannot be encoded as UTF-8.
_CSV_ILLEGAL = re.compile("[\x00\ud800-\udfff]")
_XLSX_CELL_LIMIT = 32767
_CSV_FIELD_LIMIT = 2**31 - 1
_DELIMITERS = (",", ";", "\t")


def _normalise_name(name: str) -> str:
    return _NAME_SEP.sub("_", name.strip().lower()).strip("_")


# --------------------------------------------------------------------------- sniffing


def _header_row(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def _choose_delimiter(text: str) -> tuple[str, int]:
    """The delimiter whose header row has the most known column names (and that count)."""
    best, best_score = ",", (-1, -1)
    first_line = text.split("\n", 1)[0]
    for delimiter in _DELIMITERS:
        header = _header_row(text, delimiter)
        known = sum(1 for name in header if _normalise_name(name) in _KNOWN)
        # Columns seen in the unquoted first line break ties between delimiters.
        score = (known, first_line.count(delimiter))
        if score > best_score:
            best, best_score = delimiter, score
    return best, best_score[0]


def _head_text(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return None
    try:
        text = decode_text(head, "<head>")
    except LeadsError:
        return None
    return text.lstrip("\ufeff")


def _looks_tabular(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped or stripped[0] in "{[<@%":
        return False
    return not _TAGGED_LINE.match(stripped.split("\n", 1)[0])


def sniff_csv(head: bytes) -> bool:
    text = _head_text(head)
    if text is None or not _looks_tabular(text):
        return False
    _delimiter, known = _choose_delimiter(text)
    return known >= 1


def sniff_tsv(head: bytes) -> bool:
    text = _head_text(head)
    if text is None or not _looks_tabular(text):
        return False
    delimiter, known = _choose_delimiter(text)
    return delimiter == "\t" and known >= 1


def sniff_xlsx(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") and b"xl/" in head


# --------------------------------------------------------------------------- cell decoding


def _parse_list(value: str) -> list[str] | None:
    if not (value.startswith("[") and value.endswith("]")):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return [item.strip() for item in parsed if item.strip()]
    return None


def _split(value: str, separator: str) -> list[str]:
    return [part.strip() for part in value.split(separator) if part.strip()]


def _split_commas(value: str) -> list[str]:
    """Split on commas that are not inside parentheses (Embase: ``cyst (diagnosis, surgery)``)."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in value:
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _decode_authors(value: str, column: str) -> list[str]:
    parsed = _parse_list(value)
    if parsed is not None:
        return parsed
    if ";" in value:
        return _split(value, ";")
    if column == "author_names":
        return _split(value, ", ")
    if " and " in value:
        return _split(value, " and ")
    return [value.strip()] if value.strip() else []


def _decode_keywords(value: str) -> list[str]:
    parsed = _parse_list(value)
    if parsed is not None:
        return parsed
    if ";" in value:
        return _split(value, ";")
    return _split_commas(value)


def _encode_list(items: list[str], decode: Any) -> str:
    text = "; ".join(items)
    if decode(text) == items:
        return text
    return json.dumps(items, ensure_ascii=False)


def _label(value: str, source: str, number: int, line: int, column: str) -> bool | None:
    text = value.strip().lower()
    if text in _UNLABELLED:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FormatError(
        f"invalid label {value.strip()!r} (expected 1/0, yes/no, true/false or include/exclude)",
        source=source,
        record=number,
        line=line,
        field=column,
    )


def _rayyan_label(notes: str) -> bool | None:
    block = _RAYYAN_BLOCK.search(notes)
    if block is None:
        return None
    decisions = {
        decision.strip().lower() for _name, decision in _RAYYAN_PAIR.findall(block.group(1))
    }
    if decisions == {"included"}:
        return True
    if decisions == {"excluded"}:
        return False
    return None


# --------------------------------------------------------------------------- reading


class _Columns:
    """How the columns of one file map to record fields."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = [str(name) if name is not None else "" for name in header]
        self.field_of: dict[int, str] = {}
        self.screening: list[int] = []
        self.notes: int | None = None
        self.accession: int | None = None
        taken: set[str] = set()
        normalised = [_normalise_name(name) for name in self.header]
        self.normalised = normalised
        for index, name in enumerate(normalised):
            field = _ALIASES.get(name)
            if field is not None and field not in taken:
                taken.add(field)
                self.field_of[index] = field
            elif name in _SCREENING_LABELS:
                self.screening.append(index)
            if name == "notes" and self.notes is None:
                self.notes = index
            if name == "accession_number" and self.accession is None:
                self.accession = index
        self.has_label = "label" in taken
        if not self.has_label and self.screening:
            # The title/abstract decision is the only label the file has.
            self.field_of[self.screening.pop(0)] = "label"
            self.has_label = True


def _record(columns: _Columns, row: Sequence[str], source: str, number: int, line: int) -> Record:
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    header = columns.header
    for index, value in enumerate(row):
        if index >= len(header):
            if value.strip():
                raise FormatError(
                    f"row has {len(row)} cells but the header has {len(header)} columns",
                    source=source,
                    record=number,
                    line=line,
                )
            continue
        field = columns.field_of.get(index)
        name = header[index]
        if field is None:
            if index in columns.screening:
                _label(value, source, number, line, name)
            if value != "":
                extra[name] = value
            continue
        text = value.strip()
        if field == "label":
            fields["label"] = _label(value, source, number, line, name)
        elif not text:
            continue
        elif field == "authors":
            fields["authors"] = _decode_authors(text, columns.normalised[index])
        elif field == "keywords":
            fields["keywords"] = _decode_keywords(text)
        elif field == "year":
            match = _YEAR.match(text)
            if match:
                fields["year"] = int(match.group(1))
            else:
                extra[name] = value
        elif field == "nct_ids":
            fields["nct_ids"] = find_identifiers(text)["nct"]
        elif field == "urls":
            fields["urls"] = text.split()
        elif field == "abstract":
            fields["abstract"] = value
        else:
            fields[field] = text
    if "pmid" not in fields and columns.accession is not None and columns.accession < len(row):
        # Covidence's accession number is the PMID for PubMed records (Embase's are longer).
        accession = row[columns.accession].strip()
        if accession.isascii() and accession.isdigit() and len(accession) <= 8:
            fields["pmid"] = accession
    if not columns.has_label and columns.notes is not None and columns.notes < len(row):
        fields["label"] = _rayyan_label(row[columns.notes])
    if fields.get("abstract"):
        ncts = fields.setdefault("nct_ids", [])
        ncts.extend(find_identifiers(fields["abstract"])["nct"])
    fields["extra"] = extra
    return Record(**fields)


def _records(rows: Iterator[tuple[int, list[str]]], source: str) -> Iterator[Record]:
    header: _Columns | None = None
    number = 0
    for line, row in rows:
        if header is None:
            if not any(cell.strip() for cell in row):
                continue
            header = _Columns(row)
            continue
        number += 1
        if not any(cell.strip() for cell in row):
            continue
        yield _record(header, row, source, number, line)


def read_csv(stream: BinaryIO, source: str) -> Iterator[Record]:
    """Delimited text; the delimiter (, ; or tab) is the one whose header has the most known columns."""
    return _read_delimited(stream, source, None)


def read_tsv(stream: BinaryIO, source: str) -> Iterator[Record]:
    """Tab-separated text: the delimiter is a tab, whatever the cells contain."""
    return _read_delimited(stream, source, "\t")


def _read_delimited(stream: BinaryIO, source: str, delimiter: str | None) -> Iterator[Record]:
    text = decode_text(stream.read(), source).lstrip("\ufeff")
    if delimiter is None:
        delimiter, _known = _choose_delimiter(text[:65536])
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FormatError(f"malformed CSV: {exc}", source=source, line=start) from None
            yield start, row
            start = reader.line_num + 1

    yield from _records(rows(), source)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def read_xlsx(stream: BinaryIO, source: str) -> Iterator[Record]:
    from openpyxl import load_workbook

    data = stream.read()
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    # openpyxl raises many kinds of error on a damaged workbook (zip, XML, its own types).
    except Exception as exc:
        raise FormatError(f"not a readable XLSX workbook: {exc}", source=source) from None
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]

        def rows() -> Iterator[tuple[int, list[str]]]:
            line = 0
            values_iter = sheet.iter_rows(values_only=True)
            while True:
                try:
                    values = next(values_iter)
                except StopIteration:
                    return
                except Exception as exc:  # the sheet's XML is parsed lazily, row by row
                    raise FormatError(
                        f"unreadable XLSX sheet: {exc}", source=source, line=line + 1
                    ) from None
                line += 1
                yield line, [_cell_text(value) for value in values]

        yield from _records(rows(), source)
    finally:
        workbook.close()


# --------------------------------------------------------------------------- writing


def _columns_and_rows(records: Iterable[Record]) -> tuple[list[str], list[list[Any]]]:
    records = list(records)
    source_ids = [r.source_id for r in records]
    integer_ids = all(s is not None and s.isdigit() for s in source_ids)
    id_column = (
        "record_id" if integer_ids and len(set(source_ids)) == len(source_ids) else "source_id"
    )
    core: list[tuple[str, Any]] = [
        (id_column, lambda r: r.source_id),
        ("title", lambda r: r.title),
        ("abstract", lambda r: r.abstract),
        (
            "authors",
            lambda r: (
                _encode_list(r.authors, lambda t: _decode_authors(t, "authors"))
                if r.authors
                else None
            ),
        ),
        ("year", lambda r: r.year),
        ("doi", lambda r: r.doi),
        ("pmid", lambda r: r.pmid),
        ("pmcid", lambda r: r.pmcid),
        ("nct_ids", lambda r: "; ".join(r.nct_ids) if r.nct_ids else None),
        ("journal", lambda r: r.journal),
        ("journal_abbrev", lambda r: r.journal_abbrev),
        ("volume", lambda r: r.volume),
        ("issue", lambda r: r.issue),
        ("pages", lambda r: r.pages),
        ("language", lambda r: r.language),
        ("keywords", lambda r: _encode_list(r.keywords, _decode_keywords) if r.keywords else None),
        ("url", lambda r: " ".join(r.urls) if r.urls else None),
        ("label_included", lambda r: None if r.label is None else int(r.label)),
    ]
    core_values = [[get(r) for _name, get in core] for r in records]
    used = [
        i for i in range(len(core)) if any(values[i] not in (None, "") for values in core_values)
    ]
    extra_names: list[str] = []
    seen: set[str] = set()
    for record in records:
        for key in record.extra:
            if key not in seen:
                seen.add(key)
                extra_names.append(key)
    header = [core[i][0] for i in used] + extra_names
    rows = []
    for record, values in zip(records, core_values, strict=True):
        row: list[Any] = [values[i] for i in used]
        for key in extra_names:
            value = record.extra.get(key)
            if value is None:
                row.append(None)
            elif isinstance(value, str):
                row.append(value)
            else:
                row.append(json.dumps(value, ensure_ascii=False))
        rows.append(row)
    return header, rows


def _write_delimited(records: Iterable[Record], stream: BinaryIO, delimiter: str) -> int:
    header, rows = _columns_and_rows(records)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow([_CSV_ILLEGAL.sub("", name) for name in header])
    for row in rows:
        writer.writerow(
            [
                ""
                if value is None
                else _CSV_ILLEGAL.sub("", value)
                if isinstance(value, str)
                else value
                for value in row
            ]
        )
    stream.write(buffer.getvalue().encode("utf-8"))
    return len(rows)


def write_csv(records: Iterable[Record], stream: BinaryIO) -> int:
    return _write_delimited(records, stream, ",")


def write_tsv(records: Iterable[Record], stream: BinaryIO) -> int:
    return _write_delimited(records, stream, "\t")


def write_xlsx(records: Iterable[Record], stream: BinaryIO) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    header, rows = _columns_and_rows(records)

    def text(value: Any, number: int, column: str) -> Any:
        if value is None or isinstance(value, int):
            return value
        cleaned = _XLSX_ILLEGAL.sub("", str(value))
        if len(cleaned) > _XLSX_CELL_LIMIT:
            raise LeadsError(
                f"record {number}, column {column!r}: {len(cleaned)} characters is more than "
                f"an XLSX cell holds ({_XLSX_CELL_LIMIT})"
            )
        return cleaned

    # Checked before the workbook exists, so that a refusal leaves nothing half-written.
    table = [[text(name, 0, name) for name in header]]
    for number, row in enumerate(rows, start=1):
        table.append([text(value, number, name) for value, name in zip(row, header, strict=True)])
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("records")

    def cell(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        written = WriteOnlyCell(sheet, value=value)
        # A string starting with "=" would otherwise be stored as a formula.
        written.data_type = "s"
        return written

    for values in table:
        sheet.append([cell(value) for value in values])
    workbook.save(stream)
    return len(rows)


CSV_FORMAT = register_format(
    RecordFormat(
        name="csv",
        description="CSV with ASReview / Rayyan / Covidence column names (, ; or tab)",
        extensions=(".csv", ".txt"),
        sniff=sniff_csv,
        read=read_csv,
        write=write_csv,
        priority=-10,
    )
)

TSV_FORMAT = register_format(
    RecordFormat(
        name="tsv",
        description="Tab-separated values with ASReview / Rayyan / Covidence column names",
        extensions=(".tsv", ".tab"),
        sniff=sniff_tsv,
        read=read_tsv,
        write=write_tsv,
        priority=-9,
    )
)

XLSX_FORMAT = register_format(
    RecordFormat(
        name="xlsx",
        description="Excel workbook (first sheet) with ASReview / Rayyan / Covidence column names",
        extensions=(".xlsx",),
        sniff=sniff_xlsx,
        read=read_xlsx,
        write=write_xlsx,
        priority=5,
        aliases=("excel",),
    )
)
