"""The tables of a review project (SQLAlchemy Core).

The migrations in ``migrations/versions`` create exactly these tables; a test checks that the
migrated database and this metadata agree. Tables holding what people and models did
(``decisions``, ``duplicate_events``, ``extractions``, ``ai_assessments``, ``model_calls``,
``activity``) are append-only: the database refuses UPDATE and DELETE on them, and the current
state is derived from their history.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

APPEND_ONLY_TABLES = (
    "activity",
    "duplicate_events",
    "decisions",
    "ai_assessments",
    "extractions",
    "model_calls",
)

project_info = Table(
    "project_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("display_name", String(256)),
    Column("email", String(256)),
    Column("password_hash", String(512)),
    Column("role", String(16), nullable=False, server_default="reviewer"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("title", Text),
    Column("population", Text),
    Column("intervention", Text),
    Column("comparison", Text),
    Column("outcome", Text),
    Column("study_design", Text),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

criteria_sets = Table(
    "criteria_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("note", Text),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

criteria = Table(
    "criteria",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("set_id", Integer, ForeignKey("criteria_sets.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # inclusion | exclusion
    Column("text", Text, nullable=False),
    Column("pico_element", String(16)),
    UniqueConstraint("set_id", "position", name="uq_criteria_position"),
)

searches = Table(
    "searches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),  # file | pubmed | ctgov | corpus
    Column("kind", String(16), nullable=False),  # database | register | other
    Column("query", Text),
    Column("file_name", Text),
    Column("format", String(32)),
    Column("params", JSON),
    Column("executed_at", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    Column("response_sha256", String(64)),
    Column("created_by", String(128), nullable=False),
    Column("note", Text),
)

records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_type", String(16), nullable=False),
    Column("pmid", String(16)),
    Column("pmcid", String(16)),
    Column("doi", String(255)),
    Column("title", Text),
    Column("abstract", Text),
    Column("year", Integer),
    Column("first_author", String(255)),
    Column("journal", Text),
    Column("label", Boolean),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_records_pmid", "pmid"),
    Index("ix_records_doi", "doi"),
    Index("ix_records_pmcid", "pmcid"),
)

record_identifiers = Table(
    "record_identifiers",
    metadata,
    Column("record_id", Integer, ForeignKey("records.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(255), primary_key=True),
    Index("ix_record_identifiers_value", "kind", "value"),
)

search_records = Table(
    "search_records",
    metadata,
    Column("search_id", Integer, ForeignKey("searches.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id"), nullable=False),
    Index("ix_search_records_record", "record_id"),
)

duplicate_events = Table(
    "duplicate_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_a", Integer, ForeignKey("records.id"), nullable=False),
    Column("record_b", Integer, ForeignKey("records.id"), nullable=False),
    Column("action", String(8), nullable=False),  # link | unlink
    Column("rule", String(32), nullable=False),
    Column("score", Float),
    Column("actor", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_duplicate_events_pair", "record_a", "record_b"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id")),
    Column("kind", String(32), nullable=False),  # pmc-xml | pdf | text | markdown
    Column("file_name", Text),
    Column("sha256", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_documents_record", "record_id"),
)

model_calls = Table(
    "model_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task", String(64)),
    Column("engine", String(64), nullable=False),
    Column("model", String(255)),
    Column("resolved_model", String(255)),
    Column("messages", JSON),
    Column("prompt_hash", String(64)),
    Column("schema_id", String(128)),
    Column("options", JSON),
    Column("raw_output", Text),
    Column("parsed", JSON),
    Column("validation_errors", JSON),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("duration_ms", Float),
    Column("cached_from", Integer, ForeignKey("model_calls.id")),
    Column("batch_id", String(64)),
    Column("item_key", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_model_calls_prompt_hash", "prompt_hash"),
    Index("ix_model_calls_batch", "batch_id", "item_key"),
)

ai_assessments = Table(
    "ai_assessments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id"), nullable=False),
    Column("stage", String(16), nullable=False),  # title_abstract | full_text
    Column("criteria_set_id", Integer, ForeignKey("criteria_sets.id")),
    Column("call_id", Integer, ForeignKey("model_calls.id")),
    Column("engine", String(64), nullable=False),
    Column("verdicts", JSON, nullable=False),
    Column("score", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_ai_assessments_record", "record_id", "stage"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id"), nullable=False),
    Column("stage", String(16), nullable=False),  # title_abstract | full_text
    Column("label", String(8), nullable=False),  # include | exclude | maybe | undo
    Column("reasons", JSON),
    Column("criteria_set_id", Integer, ForeignKey("criteria_sets.id")),
    Column("actor", String(128), nullable=False),
    Column("actor_kind", String(8), nullable=False),  # human | ai
    Column("call_id", Integer, ForeignKey("model_calls.id")),
    Column("ai_assisted", Boolean),
    Column("seconds_spent", Float),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_decisions_record", "record_id", "stage"),
)

extractions = Table(
    "extractions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id"), nullable=False),
    Column("document_id", Integer, ForeignKey("documents.id")),
    Column("task", String(32), nullable=False),
    Column("field", String(255), nullable=False),
    Column("value", JSON),
    Column("evidence", JSON),
    Column("origin", String(8), nullable=False),  # ai | human
    Column("status", String(16), nullable=False),  # proposed | accepted | edited | rejected
    Column("call_id", Integer, ForeignKey("model_calls.id")),
    Column("actor", String(128), nullable=False),
    Column("supersedes_id", Integer, ForeignKey("extractions.id")),
    Column("seconds_spent", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_extractions_record", "record_id", "task"),
)

activity = Table(
    "activity",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
