"""Attaching full texts to a project's records: linking by identifiers and title, storage, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from leads.documents import (
    add_document,
    find_record,
    get_document,
    link_document,
    list_documents,
    match_record,
    read_document,
)
from leads.errors import FormatError, NotFoundError
from leads.project import Project
from leads.project import schema as t
from leads.records import Record

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"
MCGRATH_TITLE = ("The usefulness of the McGrath MAC laryngoscope in comparison with Airwayscope and "
                 "Macintosh laryngoscope during routine nasotracheal intubation: a randomaized controlled trial")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.init(tmp_path / "review", actor="alice") as p:
        p.add_records([
            Record(pmid="29191160", title=MCGRATH_TITLE, year=2017),
            Record(doi="https://doi.org/10.1186/1472-6920-4-27", title="Digital versus live lectures", year=2004),
            Record(title="An unrelated trial of aspirin in stroke prevention", year=2001),
        ], source="file", file_name="records.ris", format="ris")
        yield p


def test_identifier_link_and_storage(project: Project) -> None:
    result = add_document(project, FIXTURES / "PMC5710015.nxml")
    assert result.created and result.match is not None
    assert (result.match.method, result.document.record_id) == ("pmid", 1)
    stored = get_document(project, result.document.id)
    assert stored == read_document(FIXTURES / "PMC5710015.nxml")
    assert stored.locate("34.3 \u00b1 12.2")[0].cell is not None
    [row] = list_documents(project)
    assert (row.format, row.file_name, row.link["method"]) == ("jats", "PMC5710015.nxml", "pmid")
    assert project.status().documents == 1
    actions = [a["action"] for a in project.activity()]
    assert actions[0] == "add_document"


def test_doi_link_and_same_file_is_not_stored_twice(project: Project) -> None:
    pdf = read_document(FIXTURES / "PMC535936.pdf", tables=False)
    first = add_document(project, pdf)
    assert first.document.record_id == 2 and first.document.link["method"] == "doi"
    assert first.document.file_name == "PMC535936.pdf" and first.document.sha256 == pdf.sha256
    again = add_document(project, FIXTURES / "PMC535936.pdf")  # the same file, parsed again
    assert not again.created and again.document.id == first.document.id
    forced = add_document(project, pdf, force=True)
    assert forced.created and forced.document.id != first.document.id


def test_title_fallback_and_unmatched(project: Project, tmp_path: Path) -> None:
    # The .txt rendering has no identifiers, only the title (matched despite case and punctuation).
    text = (FIXTURES / "PMC5710015.txt").read_text(encoding="utf-8")
    variant = tmp_path / "paper.txt"
    variant.write_text(text.replace(MCGRATH_TITLE, MCGRATH_TITLE.upper().replace(":", " -")), encoding="utf-8")
    result = add_document(project, variant)
    assert result.match is not None and result.match.method == "title" and result.match.score >= 0.93
    assert result.document.record_id == 1
    unmatched = add_document(project, FIXTURES / "PMC3580751.md")
    assert unmatched.created and unmatched.document.record_id is None and unmatched.match is None


def test_manual_link_and_relink(project: Project) -> None:
    result = add_document(project, FIXTURES / "PMC3580751.md", record_id=3)
    assert result.document.record_id == 3 and result.document.link["method"] == "manual"
    moved = link_document(project, result.document.id, 2)
    assert moved.record_id == 2
    assert [d.id for d in list_documents(project, record_id=2)] == [result.document.id]
    unlinked = link_document(project, result.document.id, None)
    assert unlinked.record_id is None and unlinked.link == {}
    with pytest.raises(NotFoundError):
        add_document(project, FIXTURES / "PMC3580751.md", record_id=99, force=True)
    with pytest.raises(NotFoundError):
        get_document(project, 42)


def test_unreadable_file_leaves_the_project_unchanged(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n garbage")
    with pytest.raises(FormatError, match=r"broken\.pdf"):
        add_document(project, bad)
    with project.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.documents)).scalar_one() == 0


def test_match_record_without_a_project() -> None:
    document = read_document(FIXTURES / "PMC5710015.nxml")
    records = [(10, Record(title="Something else entirely in this title", year=2017)),
               (11, Record(pmcid="PMC5710015")), (12, Record(pmid="29191160"))]
    match = match_record(document, records)
    assert match is not None and (match.record_id, match.method) == (12, "pmid")  # PMID is tried first
    wrong_year = [(1, Record(title=MCGRATH_TITLE, year=2009))]
    assert match_record(document.model_copy(update={"pmid": None, "pmcid": None, "doi": None}), wrong_year) is None


def test_find_record_prefers_identifiers_over_titles(project: Project) -> None:
    document = read_document(FIXTURES / "PMC535936.nxml")
    match = find_record(project, document)
    assert match is not None and (match.record_id, match.method) == (2, "doi")
