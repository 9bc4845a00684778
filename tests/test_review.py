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
REMDESIVIR = REPO / "examples" / "remdesivir" / "review.toml"
COCHRANE_RR = 0.93  # CD014962, all-cause mortality up to day 28: RR 0.93 [0.81, 1.06], 4 trials


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
        question = project.question()
        assert question is not None and question["population"] == "Postmenopausal women"
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


@pytest.mark.slow
def test_remdesivir_review_from_question_to_report(tmp_path: Path) -> None:
    """The README's first command: search results -> screening -> full texts -> extraction ->
    synthesis -> registry check -> report, offline on the classic engine; a re-run does nothing twice."""
    exe = Path(sys.executable).with_name("leads")
    if not exe.exists():
        pytest.skip("console script not installed")
    target = tmp_path / "remdesivir"
    subprocess.run([str(exe), "review", "run", str(REMDESIVIR), "-p", str(target)], capture_output=True,
                   text=True, check=True)
    report = target / "report"
    html = (report / "report.html").read_text(encoding="utf-8")
    md = (report / "report.md").read_text(encoding="utf-8")
    assert (report / "prisma.svg").is_file() and (report / "forest-mortality-up-to-day-28.svg").is_file()
    assert (report / "forest-mortality-up-to-day-28.png").is_file()
    with Project.open(target) as project:
        status = project.status()
        included = [rid for rid, d in project.current_decisions().items() if d["label"] == "include"]
        trials = {project.record(rid).record.pmcid for rid in included}
        decisions = project.current_decisions()
        full_text = project.current_decisions("full_text")
        full_text_assessments = project.assessments(stage="full_text")
        calls = _calls(project)
    # the 4 trials of the Cochrane review are the AI's inclusions, recorded as AI decisions, at
    # title/abstract and again after their full texts were assessed
    assert trials == {"PMC7262788", "PMC7442954", "PMC7190303", "PMC7727327"}
    assert all(decisions[rid]["actor_kind"] == "ai" for rid in included)
    assert sorted(full_text) == sorted(included) and len(full_text_assessments) == 4
    assert all(d["label"] == "include" and d["actor"] == "ai:classic" for d in full_text.values())
    assert status.prisma.reports_assessed == 4 and status.prisma.studies_included == 4
    assert "4 studies included." in md and "at title and abstract only" not in md
    prisma = (report / "prisma.svg").read_text(encoding="utf-8")
    assert "Reports assessed for eligibility (n = 4)" in prisma and "Studies included in review (n = 4)" in prisma
    assert status.documents == 4 and status.records == 40
    assert "ai:classic (ai)" in html and "5 were unattended AI decisions" in md
    # the pooled risk ratio of the extracted numbers is near the Cochrane review's
    from leads.synthesis.project import synthesize_project

    with Project.open(target) as project:
        pooled = synthesize_project(project, measure="RR", model="random").outcome("Mortality up to day 28")
    assert pooled.analysis is not None and len(pooled.analysis.studies) >= 2
    estimate = pooled.analysis.primary.display_estimate
    assert abs(estimate - COCHRANE_RR) <= 0.1, estimate
    assert f"{estimate:.2f}" in md
    # re-running: nothing imported, attached, assessed, extracted or called again
    again = run_review(load_spec(REMDESIVIR), target)
    assert again.imported == [] and again.documents_added == [] and len(again.documents_skipped) == 4
    assert again.screening is not None and again.screening["assessed"] == 0
    assert again.full_text is not None and again.full_text["assessed"] == 0
    assert again.full_text["already_assessed"] == 4
    assert again.extraction is not None and again.extraction["calls"] == 0 and again.extraction["values"] == 0
    with Project.open(target) as project:
        assert _calls(project) == calls
    assert (target / "report" / "report.html").is_file() and again.report


def _calls(project: Project) -> int:
    import sqlalchemy as sa

    from leads.project import schema as t

    with project.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.model_calls)).scalar_one())


def test_new_spec_sections_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "review.toml"
    bad.write_text('[review]\nname = "x"\n[[documents]]\nfolder = "texts"\n')
    with pytest.raises(FormatError, match=r"documents\.0\.folder.*full-text folder not found"):
        load_spec(bad)
    (tmp_path / "texts").mkdir()
    bad.write_text('[review]\nname = "x"\n[[documents]]\nfolder = "texts"\nfile = "a.xml"\n')
    with pytest.raises(FormatError, match="give either file or folder"):
        load_spec(bad)
    bad.write_text('[review]\nname = "x"\n[run]\nstages = ["synthesize"]\n')
    with pytest.raises(FormatError, match=r"extraction\.outcomes"):
        load_spec(bad)
    bad.write_text('[review]\nname = "x"\n[synthesis]\nmeasure = "HR"\n')
    with pytest.raises(FormatError, match=r"synthesis\.measure"):
        load_spec(bad)
    bad.write_text('[review]\nname = "x"\n[registry]\nfiles = ["NCT00000000.json"]\n')
    with pytest.raises(FormatError, match="registry file not found"):
        load_spec(bad)
    # by default only the stages the spec has what they need for
    bad.write_text('[review]\nname = "x"\n[[documents]]\nfolder = "texts"\n')
    assert load_spec(bad).run.stages == ["import", "dedup", "documents", "extract", "registry", "report"]
    spec = load_spec(REMDESIVIR)
    assert spec.run.stages[3:5] == ["documents", "fulltext"]
    bad.write_text('[review]\nname = "x"\n[criteria]\ninclusion = ["RCT"]\n[[documents]]\nfolder = "texts"\n')
    assert load_spec(bad).run.stages[:5] == ["import", "dedup", "screen", "documents", "fulltext"]
    bad.write_text('[review]\nname = "x"\n[run]\nstages = ["fulltext"]\n')
    with pytest.raises(FormatError, match="the fulltext stage needs eligibility criteria"):
        load_spec(bad)
    assert spec.extraction.field_map() == {
        "disease severity": "severity of COVID-19 at enrolment (e.g. mild, moderate, severe, critical)"}
    assert [p.name for p, _ids in spec.document_paths()] == [
        "PMC7190303.xml", "PMC7262788.xml", "PMC7442954.xml", "PMC7727327.xml"]
