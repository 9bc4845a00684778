"""Controlled vocabularies. :mod:`leads.vocab.mesh` holds MeSH 2024 (shipped with the package)."""

from leads.vocab.mesh import (
    MESH_VERSION,
    Descriptor,
    Match,
    MatchKind,
    Mesh,
    SearchHit,
    normalize_term,
    normalize_tokens,
)

__all__ = [
    "MESH_VERSION",
    "Descriptor",
    "Match",
    "MatchKind",
    "Mesh",
    "SearchHit",
    "normalize_term",
    "normalize_tokens",
]
