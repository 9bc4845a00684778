"""`leads review run` on the bundled example review, and the spec's validation errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leads.errors import FormatError
from leads.project import Project
from leads.review import load_spec, run_review

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "estrogens" / "review.toml"


@pytest.mark.slow
def test_bundled_review_runs_and_continues(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    messages: list[str] = []
    run = run_review(spec, tmp_path / "review", say=messages.append)
    assert run.imported == [("asreview_estrogens.csv", 367), ("pubmed_estrogens.nbib", 367)]
    assert run.new_duplicate_links == 367
    with Project.open(tmp_path / "review") as project:
        status = project.status()
        assert status.unique_records == 367 and status.prisma.duplicates_removed == 367
        assert status.labels["included"] == 80
        assert [c["kind"] for c in project.criteria()] == ["inclusion"] * 3 + ["exclusion"]
        assert project.question()["population"] == "Postmenopausal women"
        # the kept record of each group carries the MeSH headings from the MEDLINE export or the CSV's label
        kept = list(project.iter_records(unique=True))
        assert len(kept) == 367
    again = run_review(spec, tmp_path / "review", say=messages.append)
    assert again.imported == [] and again.skipped == ["asreview_estrogens.csv", "pubmed_estrogens.nbib"]
    assert again.new_duplicate_links == 0
    # every record was screened by the classic engine the first time; the re-run assesses none
    assert run.screening is not None and run.screening["assessed"] == 367 and not run.screening["failed"]
    assert again.screening is not None and again.screening["assessed"] == 0
    assert again.screening["already_assessed"] == 367
    with Project.open(tmp_path / "review") as project:
        assert len(project.criteria()) == 4 and project.criteria()[0]["version"] == 1


def test_cli_review_run_json(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("leads")
    if not exe.exists():
        pytest.skip("console script not installed")
    # the same review without its screen stage (test_bundled_review_runs_and_continues screens)
    spec = tmp_path / "review.toml"
    text = SPEC.read_text(encoding="utf-8").replace('stages = ["import", "dedup", "screen"]',
                                                   'stages = ["import", "dedup"]')
    spec.write_text(text.replace('file = "', f'file = "{SPEC.parent}/'), encoding="utf-8")
    out = subprocess.run([str(exe), "review", "run", str(spec), "-p", str(tmp_path / "r"), "--json"],
                         capture_output=True, text=True, check=True)
    status = json.loads(out.stdout)
    assert status["prisma"]["records_screened"] == 367


def test_spec_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "review.toml"
    bad.write_text('[review]\nname = "x"\n[run]\nstages = ["import", "screen-everything"]\n')
    with pytest.raises(FormatError, match=r"field 'run.stages'.*unknown stage 'screen-everything'"):
        load_spec(bad)
    bad.write_text('[review]\nname = "x"\nprojekt = "typo"\n')
    with pytest.raises(FormatError, match=r"review\.projekt"):
        load_spec(bad)
    bad.write_text('[review]\nname = "x"\n[[sources]]\nfile = "nowhere.ris"\n')
    with pytest.raises(FormatError, match="source file not found"):
        load_spec(bad)
    bad.write_text("[review\n")
    with pytest.raises(FormatError, match="invalid TOML"):
        load_spec(bad)
