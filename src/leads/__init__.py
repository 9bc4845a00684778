"""leads: local-first, AI-assisted systematic reviews of clinical evidence.

The public Python API. Everything listed in ``__all__`` is stable; modules whose names start
with an underscore are private.
"""

from leads.errors import (
    EngineError,
    FormatError,
    LeadsError,
    NotFoundError,
    ProjectError,
    QueryError,
    RetryableEngineError,
    SourceError,
)
from leads.formats import detect_format, read_records, write_records
from leads.records import (
    AbstractSection,
    MeshHeading,
    Record,
    find_identifiers,
    normalize_doi,
    normalize_nct,
    normalize_pmcid,
    normalize_pmid,
)

__version__ = "0.1.0"

__all__ = [
    "AbstractSection",
    "EngineError",
    "FormatError",
    "LeadsError",
    "MeshHeading",
    "NotFoundError",
    "ProjectError",
    "QueryError",
    "Record",
    "RetryableEngineError",
    "SourceError",
    "__version__",
    "detect_format",
    "find_identifiers",
    "normalize_doi",
    "normalize_nct",
    "normalize_pmcid",
    "normalize_pmid",
    "read_records",
    "write_records",
]
