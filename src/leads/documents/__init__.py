"""Full-text documents: PMC JATS XML, PDF, Markdown and plain text as one model.

A :class:`Document` is one flat ``text`` plus sections (typed: abstract, methods, results, ...),
tables (cell grids with each cell's span), sentences and identifiers, all as character offsets
into ``text``. Quotes offered as evidence are checked against it with :meth:`Document.locate` /
:meth:`Document.evidence`; a quote that cannot be found is reported as unsupported.

::

    from leads.documents import read_document
    doc = read_document("PMC5710015.nxml")
    doc.sentences_in("results")
    doc.evidence("Tracheal intubation time was 26.8 ± 5.7 s")

Attaching documents to a project's records is in :mod:`leads.documents.store` (also exported
here: :func:`add_document`, :func:`get_document`, :func:`list_documents`, :func:`link_document`,
:func:`find_record`).
"""

from __future__ import annotations

import importlib
from typing import Any

from leads.documents.link import RecordMatch, match_record, normalize_title
from leads.documents.model import (
    CellRef,
    Document,
    DocumentFormat,
    Evidence,
    Located,
    Section,
    Sentence,
    Table,
)
from leads.documents.reader import FORMATS, detect_document_format, read_document
from leads.documents.sections import SECTION_TYPES, SectionType, classify_heading
from leads.documents.sentences import segment, sentence_spans

_LAZY = {name: "leads.documents.store" for name in (
    "AddResult", "StoredDocument", "add_document", "find_record", "get_document", "link_document",
    "list_documents",
)}

__all__ = [
    "FORMATS",
    "SECTION_TYPES",
    "AddResult",
    "CellRef",
    "Document",
    "DocumentFormat",
    "Evidence",
    "Located",
    "RecordMatch",
    "Section",
    "SectionType",
    "Sentence",
    "StoredDocument",
    "Table",
    "add_document",
    "classify_heading",
    "detect_document_format",
    "find_record",
    "get_document",
    "link_document",
    "list_documents",
    "match_record",
    "normalize_title",
    "read_document",
    "segment",
    "sentence_spans",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'leads.documents' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
