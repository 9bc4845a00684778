"""Reading a full-text file of any supported format: detection and dispatch.

The format is taken from the extension (``.nxml``/``.xml`` JATS, ``.pdf``, ``.md``/``.markdown``,
``.txt``; a ``.gz`` suffix is looked through) and confirmed or found by sniffing the content
(``%PDF``, JATS elements, Markdown headings or tables), so a PDF saved as ``paper.txt`` is still
read as a PDF. The document's ``sha256`` is the hash of the file's bytes as given (before any
decompression), which is what a project uses to recognise a file it already holds.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path

from leads.documents.model import Document, DocumentFormat
from leads.errors import FormatError, SourceError

__all__ = ["FORMATS", "detect_document_format", "read_document"]

FORMATS: tuple[str, ...] = ("jats", "pdf", "markdown", "text")
_EXTENSIONS: dict[str, DocumentFormat] = {
    ".nxml": "jats",
    ".xml": "jats",
    ".jats": "jats",
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
_MARKDOWN_SNIFF = re.compile(rb"(?m)^ {0,3}#{1,6} \S|^\s*\|.*\|\s*$\n^\s*\|?\s*:?-{3,}")


def detect_document_format(name: str | None, head: bytes) -> DocumentFormat:
    """The format of a file from its name and first bytes (content wins over a wrong extension)."""
    from leads.documents.jats import looks_like_jats

    stripped = head.lstrip()
    if stripped.startswith(b"%PDF"):
        return "pdf"
    suffix = ""
    if name:
        lowered = name.lower()
        if lowered.endswith(".gz"):
            lowered = lowered[:-3]
        suffix = os.path.splitext(lowered)[1]
    by_name = _EXTENSIONS.get(suffix)
    if stripped.startswith(b"<") and looks_like_jats(head):
        return "jats"
    if by_name == "jats":
        return "jats"  # XML that is not JATS fails in the reader with a clear message
    if by_name in ("markdown", "text"):
        return by_name
    if _MARKDOWN_SNIFF.search(head[:65536]):
        return "markdown"
    return "text"


def _load(source: str | os.PathLike[str] | bytes, name: str | None) -> tuple[bytes, str | None]:
    if isinstance(source, bytes):
        return source, name
    path = Path(source)
    try:
        return path.read_bytes(), name or str(path)
    except FileNotFoundError:
        raise SourceError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise SourceError("is a directory, not a file", source=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot read the file: {exc.strerror}", source=str(path)) from None


def read_document(
    source: str | os.PathLike[str] | bytes,
    *,
    format: DocumentFormat | None = None,
    name: str | None = None,
    tables: bool | None = None,
) -> Document:
    """Read a full text (PMC JATS XML, PDF, Markdown or plain text) into a Document.

    ``source`` is a path or the file's bytes (then ``name`` names it in errors and helps detect
    the format). ``format`` skips detection. ``tables`` controls pdfplumber table extraction for
    PDFs (default: use it when installed).
    """
    raw, label = _load(source, name)
    label = label or "<bytes>"
    if not raw.strip():
        raise FormatError("the file is empty", source=label)
    data = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise FormatError(f"damaged gzip data: {exc}", source=label) from None
        if not data.strip():
            raise FormatError("the file is empty", source=label)
    kind = format or detect_document_format(label, data[:65536])
    if kind not in FORMATS:
        raise FormatError(f"unknown document format {kind!r}; expected one of {', '.join(FORMATS)}",
                          source=label)
    document: Document
    if kind == "jats":
        from leads.documents.jats import read_jats

        document = read_jats(data, source=label)
    elif kind == "pdf":
        from leads.documents.pdf import read_pdf

        document = read_pdf(data, source=label, tables=tables)
    elif kind == "markdown":
        from leads.documents.text import read_markdown

        document = read_markdown(data, source=label)
    else:
        from leads.documents.text import read_text

        document = read_text(data, source=label)
    document.source = None if isinstance(source, bytes) and name is None else label
    document.sha256 = hashlib.sha256(raw).hexdigest()
    return document
