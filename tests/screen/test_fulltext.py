"""Full-text eligibility assessment in a project (leads.screen.fulltext) on the bundled remdesivir
review: real MEDLINE records, a real trial report (JATS) attached, the classic engine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from leads.documents.model import Document, Section, Sentence
from leads.documents.reader import read_document
from leads.documents.store import add_document, get_document
from leads.engines import DatabaseCallLog, get_engine
from leads.errors import ProjectError
from leads.project import Project
from leads.project import schema as t
from leads.review import included_record_ids, load_spec
from leads.screen import workflow as w
from leads.screen.fulltext import (
    CLASSIC_BUDGET,
    FullTextRun,
    fulltext_batch_id,
    fulltext_candidates,
    fulltext_input,
)
from leads.screen.project_cli import screen_command
from leads.tasks import TASKS
from leads.tasks.eligibility import Criterion

REPO = Path(__file__).resolve().parents[2]
REMDESIVIR = REPO / "examples" / "remdesivir"
FIXTURES = REPO / "tests" / "fixtures" / "documents"
TRIAL = REMDESIVIR / "fulltexts" / "PMC7442954.xml"  # SIMPLE-moderate, JAMA 2020: an RCT of remdesivir
CRITERIA = [Criterion(text="The study is a randomised controlled trial")]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The remdesivir records imported, question and criteria stored; nothing screened."""
    path = tmp_path_factory.mktemp("template") / "remdesivir"
    spec = load_spec(REMDESIVIR / "review.toml")
    with Project.init(path, name="remdesivir", actor="alice") as project:
        project.import_file(REMDESIVIR / "records.nbib")
        project.set_question(**spec.question.model_dump())
        project.set_criteria(spec.criteria.inclusion, spec.criteria.exclusion)
    return path


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Iterator[Project]:
    target = tmp_path / "remdesivir"
    shutil.copytree(template, target)
    with Project.open(target, actor="alice") as p:
        yield p


def _record(project: Project, pmcid: str) -> int:
    with project.engine.connect() as conn:
        found = conn.execute(sa.select(t.record_identifiers.c.record_id).where(
            t.record_identifiers.c.kind == "pmcid", t.record_identifiers.c.value == pmcid)).scalar()
    assert found is not None, pmcid
    return int(found)


def _calls(project: Project) -> int:
    with project.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.model_calls)).scalar_one())


def _included_with_text(project: Project) -> tuple[int, int]:
    """The SIMPLE-moderate trial included at title/abstract by a person, its full text attached."""
    rid = _record(project, "PMC7442954")
    w.decide(project, rid, "include", reviewer="alice")
    document_id = add_document(project, TRIAL, record_id=rid).document.id
    return rid, document_id


# ---------------------------------------------------------------------------------------------
# The text assessed
# ---------------------------------------------------------------------------------------------


def test_input_is_title_abstract_and_methods_verbatim_within_the_budget() -> None:
    doc = read_document(FIXTURES / "PMC535936.nxml")
    made = fulltext_input(doc, 7, CRITERIA, title="A randomized trial of lecture formats", budget=3000)
    assert made.sections == ["Abstract", "Methods"] and made.truncated
    content = made.input.content
    assert content.startswith("A randomized trial of lecture formats\n\nAbstract")
    assert len(made.input.text) <= 3000
    for piece in made.pieces:  # every piece is a verbatim slice of the document
        assert content[piece.start:piece.start + piece.length] == \
            doc.text[piece.document_start:piece.document_start + piece.length]
    methods = next(s for s in doc.sections if s.type == "methods" and s.title == "Methods")
    assert made.pieces[1].document_start == methods.start
    # the methods piece ends at a sentence end of the document
    end = made.pieces[1].document_start + made.pieces[1].length
    assert end in {s.end for s in doc.sentences}
    # a span in the title is not in the document; one across two pieces is not one span of it
    assert made.to_document(0, 5) is None
    assert made.to_document(made.pieces[0].start, made.pieces[1].start + 5) is None
    with pytest.raises(ProjectError, match="budget"):
        fulltext_input(doc, 7, CRITERIA, budget=50)


def test_input_without_typed_sections_reads_the_document_from_its_start() -> None:
    one = "We randomly assigned 40 adults to remdesivir or placebo."
    text = " ".join([one] * 20)
    sentences = [Sentence(start=i * (len(one) + 1), end=i * (len(one) + 1) + len(one)) for i in range(20)]
    doc = Document(text=text, format="text", sentences=sentences,
                   sections=[Section(title="Discussion", type="discussion", start=0, end=len(text))])
    made = fulltext_input(doc, 1, CRITERIA, budget=500)
    assert made.input.title is None and made.pieces[0].start == 0 and made.pieces[0].document_start == 0
    assert made.truncated and made.input.text == text[:len(made.input.text)]
    assert made.input.text.endswith("placebo.")  # at a sentence end
    assert fulltext_input(doc.model_copy(update={"sentences": []}), 1, CRITERIA, budget=500).input.text \
        .endswith(" to")  # without sentences, at a space


# ---------------------------------------------------------------------------------------------
# Assessments in the project
# ---------------------------------------------------------------------------------------------


def test_full_text_assessment_is_stored_with_evidence_in_the_document(project: Project) -> None:
    rid, document_id = _included_with_text(project)
    excluded = _record(project, "PMC7190303")       # excluded at title/abstract: not assessed
    w.decide(project, excluded, "exclude", reviewer="alice")
    add_document(project, REMDESIVIR / "fulltexts" / "PMC7190303.xml", record_id=excluded)
    no_text = _record(project, "PMC7262788")        # marked maybe, no full text attached yet
    w.decide(project, no_text, "maybe", reviewer="alice")

    run = w.run_screening(project, "classic", stage="full_text")
    assert isinstance(run, FullTextRun)
    assert (run.assessed, run.to_assess, run.remaining, run.ai_decisions) == (1, 1, 0, 0)
    assert run.no_document == [no_text] and run.budget == CLASSIC_BUDGET and not run.failed
    assert "1 full texts assessed" in run.summary() and "no document attached" in run.summary()

    rows = project.assessments(stage="full_text")
    assert [r["record_id"] for r in rows] == [rid] and project.assessments() == []  # none at title/abstract
    row = rows[0]
    assert row["call_id"] is not None and row["batch_id"] == run.batch_id and row["criteria_version"] == 1
    document = get_document(project, document_id)
    located = 0
    for verdict in row["verdicts"]:
        assert verdict["document_id"] == document_id
        for e in verdict["evidence"]:
            if e["document_start"] is not None:
                assert document.text[e["document_start"]:e["document_end"]] == e["quote"]
                located += 1
    assert located >= 3
    # a real RCT of remdesivir vs standard care in COVID-19: every inclusion criterion met
    assert [v["eligibility"] for v in row["verdicts"]] == ["YES", "YES", "YES"]
    # assessments are suggestions: without auto_decide no full-text decision is made
    assert project.current_decisions("full_text") == {}


def test_rerun_does_nothing_twice_and_recovers_an_interrupted_call(project: Project) -> None:
    rid, document_id = _included_with_text(project)
    # an interrupted run: the call reached the call log, its assessment was never stored
    engine = get_engine("classic", log=DatabaseCallLog(project.engine))
    batch_id = fulltext_batch_id(1, engine, CLASSIC_BUDGET)
    made = fulltext_input(get_document(project, document_id), document_id,
                          [Criterion(text=c.text, kind=c.kind) for c in w.current_criteria(project)],  # type: ignore[arg-type]
                          title=project.record(rid).record.title)
    engine.run(TASKS["eligibility"], made.input, batch_id=batch_id, item_key=f"record-{rid}-doc-{document_id}")
    engine.close()
    calls = _calls(project)
    run = w.run_screening(project, "classic", stage="full_text", auto_decide=True)
    assert (run.recovered, run.assessed, run.ai_decisions) == (1, 0, 1)
    assert _calls(project) == calls
    again = w.run_screening(project, "classic", stage="full_text", auto_decide=True)
    assert (again.assessed, again.recovered, again.already_assessed, again.ai_decisions) == (0, 0, 1, 0)
    assert _calls(project) == calls and len(project.assessments(stage="full_text")) == 1
    assert len(project.decision_history("full_text")) == 1
    # a newer full text of the record is assessed again
    add_document(project, FIXTURES / "PMC535936.nxml", record_id=rid)
    third = w.run_screening(project, "classic", stage="full_text")
    assert third.assessed == 1 and len(project.assessments(stage="full_text")) == 2


def test_unattended_full_text_decisions_are_ai_decisions(project: Project) -> None:
    rid, _document_id = _included_with_text(project)
    run = w.run_screening(project, "classic", stage="full_text", auto_decide=True)
    assert run.ai_decisions == 1
    decision = project.current_decisions("full_text")[rid]
    assessment = project.assessments(stage="full_text")[0]
    assert decision["label"] == "include" and decision["actor"] == "ai:classic" and decision["actor_kind"] == "ai"
    assert decision["call_id"] == assessment["call_id"]
    assert project.decision_history("full_text")[-1]["criteria_version"] == 1
    assert decision["reasons"][0] == "I1: The study is a randomised controlled trial"
    # the person's title/abstract decision stands beside it; the study counts as included
    assert project.current_decisions()[rid]["actor_kind"] == "human"
    assert included_record_ids(project) == [rid]
    assert project.status().prisma.studies_included == 1


def test_unattended_title_abstract_includes_go_on_to_full_text(project: Project) -> None:
    rid = _record(project, "PMC7727327")
    project.decide(rid, "include", actor="ai:classic", actor_kind="ai", note="unattended")
    add_document(project, REMDESIVIR / "fulltexts" / "PMC7727327.xml", record_id=rid)
    assert fulltext_candidates(project).documents == {rid: 1}
    # a person's exclusion at title/abstract wins over the AI's inclusion
    w.decide(project, rid, "exclude", reviewer="alice")
    assert fulltext_candidates(project).documents == {}


def test_a_persons_full_text_decision_is_never_overwritten(project: Project) -> None:
    rid, _document_id = _included_with_text(project)
    first = w.run_screening(project, "classic", stage="full_text", auto_decide=True)
    assert first.ai_decisions == 1
    w.decide(project, rid, "exclude", reasons=["I3"], stage="full_text", reviewer="alice")
    # another budget is another batch: it would assess again, but the person has decided
    calls = _calls(project)
    run = w.run_screening(project, "classic", stage="full_text", auto_decide=True, budget=3000)
    assert isinstance(run, FullTextRun)
    assert run.decided_by_person == [rid] and run.assessed == 0 and run.ai_decisions == 0
    assert _calls(project) == calls
    standing = project.current_decisions("full_text")[rid]
    assert standing["label"] == "exclude" and standing["actor"] == "alice" and standing["actor_kind"] == "human"
    assert included_record_ids(project) == []


def test_stage_and_budget_are_checked(project: Project) -> None:
    with pytest.raises(ProjectError, match="stage must be"):
        w.run_screening(project, "classic", stage="fulltext")
    with pytest.raises(ProjectError, match="full-text screening"):
        w.run_screening(project, "classic", budget=1000)


def test_cli_screen_full_text(project: Project) -> None:
    rid, _document_id = _included_with_text(project)
    path = str(project.path)
    project.close()
    runner = CliRunner()
    result = runner.invoke(screen_command, ["-p", path, "--stage", "full_text", "--auto-decide", "--json"],
                           env={"LEADS_USER": "alice"})
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["stage"] == "full_text" and out["assessed"] == 1 and out["ai_decisions"] == 1
    result = runner.invoke(screen_command, ["-p", path, "--stage", "full_text"], env={"LEADS_USER": "alice"})
    assert result.exit_code == 0 and "1 full texts were already assessed" in result.output
    result = runner.invoke(screen_command, ["-p", path, "--budget", "1000"], env={"LEADS_USER": "alice"})
    assert result.exit_code != 0 and "--stage full_text only" in result.output
    with Project.open(path) as reopened:
        assert reopened.current_decisions("full_text")[rid]["actor"] == "ai:classic"
