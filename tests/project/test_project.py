"""Review projects on SQLite: creation, import atomicity, duplicates, decisions, PRISMA counts."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from leads.errors import FormatError, NotFoundError, ProjectError
from leads.formats import read_bytes
from leads.project import Project, schema_head
from leads.project.schema import metadata

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.init(tmp_path / "review", name="estrogens", actor="alice")
    yield p
    p.close()


def test_init_creates_directory_with_toml_and_wal_database(tmp_path: Path) -> None:
    with Project.init(tmp_path / "r", actor="alice") as p:
        assert p.name == "r"
        assert p.schema_revision == schema_head()
    assert (tmp_path / "r" / "project.toml").is_file()
    con = sqlite3.connect(tmp_path / "r" / "project.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    users = con.execute("SELECT name, role FROM users").fetchall()
    assert users == [("alice", "owner")]


def test_init_refuses_existing_project_and_open_refuses_non_project(tmp_path: Path) -> None:
    Project.init(tmp_path / "r").close()
    with pytest.raises(ProjectError, match="already a leads project"):
        Project.init(tmp_path / "r")
    with pytest.raises(ProjectError, match="not a leads project"):
        Project.open(tmp_path)


def test_migrated_database_matches_schema_metadata(project: Project) -> None:
    with project.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_foreign_keys_are_enforced(project: Project) -> None:
    with pytest.raises(sa.exc.IntegrityError), project.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO search_records (search_id, position, record_id) VALUES (99, 0, 99)"))


def test_import_stores_search_provenance_and_records(project: Project) -> None:
    result = project.import_file(SAMPLE)
    assert (result.count, result.format, len(result.record_ids)) == (150, "jsonl", 150)
    [search] = project.searches()
    assert search["source"] == "file" and search["file_name"] == SAMPLE.name
    assert search["count"] == 150 and len(search["response_sha256"]) == 64
    original = read_bytes(SAMPLE.read_bytes(), source=SAMPLE.name)
    stored = [s.record for s in project.iter_records()]
    assert stored == original  # lossless


def test_reimport_is_refused_unless_forced(project: Project) -> None:
    project.import_file(SAMPLE)
    with pytest.raises(ProjectError, match="already imported"):
        project.import_file(SAMPLE)
    project.import_file(SAMPLE, force=True)
    assert project.count_records() == 300


def test_malformed_file_leaves_project_unchanged(project: Project, tmp_path: Path) -> None:
    project.import_file(SAMPLE)
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines[79] = lines[79][:-5]  # truncate record 80 mid-JSON
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    before = (project.count_records(), len(project.searches()), len(project.activity()))
    with pytest.raises(FormatError) as info:
        project.import_file(bad)
    assert "bad.jsonl" in str(info.value) and "record 80" in str(info.value)
    assert (project.count_records(), len(project.searches()), len(project.activity())) == before


def test_error_during_write_rolls_back(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import leads.project._project as impl

    calls = {"n": 0}
    real = impl._record_row

    def failing(record, created):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 120:
            raise RuntimeError("disk on fire")
        return real(record, created)

    monkeypatch.setattr(impl, "INSERT_CHUNK", 50)
    monkeypatch.setattr(impl, "_record_row", failing)
    with pytest.raises(RuntimeError):
        project.import_file(SAMPLE)
    assert project.count_records() == 0 and project.searches() == []


def test_dedup_groups_split_and_does_not_relink(project: Project) -> None:
    project.import_file(SAMPLE)
    project.import_file(SAMPLE, force=True)
    result = project.run_dedup()
    assert result.groups == 150 and result.duplicates == 150
    groups = project.duplicate_groups()
    assert all(set(g.rules.values()) == {"pmid"} for g in groups)
    assert project.status().unique_records == 150
    target = groups[0].members[1]
    separated = project.split_duplicate(target)
    assert separated == [groups[0].members[0]]
    again = project.run_dedup()
    assert again.new_links == 0 and again.groups == 149
    stored = project.record(target)
    assert stored.group_id is None and stored.is_primary
    with pytest.raises(ProjectError, match="not in a duplicate group"):
        project.split_duplicate(target)
    project.link_duplicates(target, groups[0].members[0])
    assert project.run_dedup().groups == 150


def test_unique_iteration_keeps_one_per_group(project: Project) -> None:
    project.import_file(SAMPLE)
    project.import_file(SAMPLE, force=True)
    project.run_dedup()
    unique = list(project.iter_records(unique=True))
    assert len(unique) == 150
    assert len({s.record.pmid for s in unique}) == 150


def test_decisions_are_append_only_and_state_is_derived(project: Project) -> None:
    ids = project.import_file(SAMPLE).record_ids
    project.decide(ids[0], "include", seconds_spent=12.5)
    project.decide(ids[0], "exclude", reasons=["wrong population"])
    project.decide(ids[1], "maybe")
    project.decide(ids[1], "undo")
    current = project.current_decisions()
    assert set(current) == {ids[0]}
    assert current[ids[0]]["label"] == "exclude" and current[ids[0]]["reasons"] == ["wrong population"]
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), project.engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET label = 'include'"))
    project.link_duplicates(ids[0], ids[1])
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), project.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM duplicate_events"))
    with pytest.raises(ProjectError, match="label must be"):
        project.decide(ids[0], "yes")
    with pytest.raises(NotFoundError):
        project.decide(10_000, "include")


def test_decision_on_a_duplicate_counts_for_its_group(project: Project) -> None:
    project.import_file(SAMPLE)
    second = project.import_file(SAMPLE, force=True).record_ids
    project.run_dedup()
    project.decide(second[0], "include")
    current = project.current_decisions()
    [(key, decision)] = current.items()
    assert decision["record_id"] == second[0]
    [group] = [g for g in project.duplicate_groups() if second[0] in g.members]
    assert key == group.primary


def test_prisma_counts(project: Project) -> None:
    ids = project.import_file(SAMPLE).record_ids
    project.import_file(SAMPLE, force=True)
    project.run_dedup()
    for rid in ids[:10]:
        project.decide(rid, "exclude")
    for rid in ids[10:14]:
        project.decide(rid, "include")
    project.decide(ids[10], "include", stage="full_text")
    project.decide(ids[11], "exclude", stage="full_text", reasons=["not an RCT"])
    project.decide(ids[12], "include", stage="full_text", actor_kind="ai")
    st = project.status()
    p = st.prisma
    assert p.identified_total == 300 and p.duplicates_removed == 150
    assert p.records_screened == 150 and p.records_excluded == 10
    assert p.reports_sought == 4 and p.reports_assessed == 3
    assert p.reports_not_retrieved == 4  # no full texts attached yet
    assert p.reports_excluded == {"not an RCT": 1} and p.studies_included == 2
    assert st.undecided == {"title_abstract": 136, "full_text": 1}
    assert st.ai_decisions == 1
    assert st.labels["included"] + st.labels["excluded"] == 300


def test_export_unique_jsonl_roundtrip_and_decision_filter(project: Project) -> None:
    ids = project.import_file(SAMPLE).record_ids
    project.import_file(SAMPLE, force=True)
    project.run_dedup()
    buffer = io.BytesIO()
    assert project.export(buffer, "jsonl") == 150
    assert read_bytes(buffer.getvalue(), source="x.jsonl") == read_bytes(SAMPLE.read_bytes(), source="s.jsonl")
    buffer = io.BytesIO()
    assert project.export(buffer, "jsonl", unique=False) == 300
    project.decide(ids[3], "include")
    buffer = io.BytesIO()
    assert project.export(buffer, "jsonl", decision="include") == 1
    assert json.loads(buffer.getvalue())["pmid"] == project.record(ids[3]).record.pmid


def test_activity_log_records_actions(project: Project) -> None:
    project.import_file(SAMPLE)
    project.run_dedup()
    actions = [a["action"] for a in project.activity()]
    assert actions == ["dedup", "import", "init"]
    assert all(a["actor"] == "alice" for a in project.activity())


def test_project_survives_being_copied(project: Project, tmp_path: Path) -> None:
    project.import_file(SAMPLE)
    project.close()
    copy = tmp_path / "copy"
    shutil.copytree(project.path, copy)  # type: ignore[arg-type]
    with Project.open(copy) as again:
        assert again.count_records() == 150
