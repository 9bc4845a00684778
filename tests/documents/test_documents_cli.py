"""``leads documents``: add (with unmatched report), list, show, locate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.documents.cli import documents_group
from leads.project import Project
from leads.records import Record

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    path = tmp_path / "review"
    with Project.init(path, actor="alice") as project:
        project.add_records([Record(pmid="29191160", title="McGrath MAC laryngoscope trial", year=2017)],
                            source="file", file_name="records.ris", format="ris")
    return path


def test_every_option_has_help() -> None:
    for command in documents_group.commands.values():
        assert (command.help or "").strip()
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), (command.name, param.opts)


def test_add_reports_links_and_unmatched(project_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    broken = tmp_path / "broken.nxml"
    broken.write_text("<<< not xml")
    result = runner.invoke(documents_group, [
        "add", "-p", str(project_dir), str(FIXTURES / "PMC5710015.nxml"), str(FIXTURES / "PMC3580751.md"),
        str(broken)])
    assert result.exit_code == 1, result.output
    assert "PMC5710015.nxml: added document 1, record 1 (by pmid)" in result.output
    assert "PMC3580751.md: added document 2, not linked to any record" in result.output
    assert "1 file(s) matched no record" in result.output
    assert "broken.nxml" in result.output and "not well-formed XML" in result.output
    again = runner.invoke(documents_group, ["add", "-p", str(project_dir), str(FIXTURES / "PMC5710015.nxml"),
                                            "--json"])
    assert again.exit_code == 0
    assert json.loads(again.output)["created"] is False
    listed = runner.invoke(documents_group, ["list", "-p", str(project_dir), "--json"])
    rows = json.loads(listed.output)
    assert [(r["id"], r["record_id"], r["format"]) for r in rows] == [(1, 1, "jats"), (2, None, "markdown")]


def test_show_file_and_stored_document(project_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(documents_group, ["show", str(FIXTURES / "PMC5710015.nxml"), "--sections", "--tables"])
    assert result.exit_code == 0, result.output
    assert "PMID 29191160" in result.output and "[results] Results" in result.output
    assert "Table 1: Characterristics" in result.output and "34.3 \u00b1 12.2" in result.output
    runner.invoke(documents_group, ["add", "-p", str(project_dir), str(FIXTURES / "PMC5710015.nxml")])
    stored = runner.invoke(documents_group, ["show", "1", "-p", str(project_dir), "--json"])
    assert json.loads(stored.output)["pmcid"] == "PMC5710015"
    sentences = runner.invoke(documents_group, ["show", "1", "-p", str(project_dir), "--sentences", "methods"])
    assert "nasotracheal" in sentences.output
    missing = runner.invoke(documents_group, ["show", "7"])
    assert missing.exit_code == 2 and "-p PROJECT" in missing.output


def test_locate_supported_and_unsupported(tmp_path: Path) -> None:
    runner = CliRunner()
    path = str(FIXTURES / "PMC5710015.nxml")
    ok = runner.invoke(documents_group, ["locate", path, "34.3 \u00b1 12.2", "--json"])
    assert ok.exit_code == 0
    [evidence] = json.loads(ok.output)
    assert evidence["supported"] and evidence["spans"][0]["cell"]["table"] == 0
    bad = runner.invoke(documents_group, ["locate", path, "Mortality was 12% at 90 days in both groups"])
    assert bad.exit_code == 1 and "UNSUPPORTED" in bad.output
