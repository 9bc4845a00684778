"""Review projects: storage, migrations, append-only history, PRISMA counts."""

from leads.project._project import (
    DedupResult,
    DuplicateGroup,
    ImportResult,
    PrismaCounts,
    Project,
    ProjectStatus,
    StoredRecord,
    default_actor,
    migrate,
    schema_head,
)

__all__ = [
    "DedupResult",
    "DuplicateGroup",
    "ImportResult",
    "PrismaCounts",
    "Project",
    "ProjectStatus",
    "StoredRecord",
    "default_actor",
    "migrate",
    "schema_head",
]
