"""Readers and writers of reference and registry formats.

Every format registers itself with :func:`register_format`; :func:`read_records` detects a
file's format from its content and yields :class:`~leads.records.Record` objects.

Built-in formats: ``ris``, ``medline`` (PubMed .nbib / tagged text), ``pubmed-xml`` (efetch and
baseline files), ``csv`` / ``tsv`` / ``xlsx`` (ASReview, Rayyan, Covidence column names),
``bibtex``, ``endnote-xml``, ``ctgov-json`` (ClinicalTrials.gov API v2) and ``jsonl`` (lossless).
"""

from leads.formats._registry import (
    RecordFormat,
    decode_text,
    detect_format,
    formats,
    get_format,
    read_bytes,
    read_records,
    register_format,
    write_records,
)

# Built-in formats register on import.
from leads.formats import (  # noqa: F401  isort: skip
    bibtex,
    ctgov,
    endnote_xml,
    jsonl,
    medline,
    pubmed_xml,
    ris,
    tabular,
)

__all__ = [
    "RecordFormat",
    "decode_text",
    "detect_format",
    "formats",
    "get_format",
    "read_bytes",
    "read_records",
    "register_format",
    "write_records",
]
