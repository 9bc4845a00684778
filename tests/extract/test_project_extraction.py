"""`leads extract -p PROJECT`: the extraction tasks over a project's included studies.

A real project: three real records (PubMed title/abstract, see tests/fixtures/extract/README.md),
two real full texts (one linked by hand, one by its PMID), screening decisions, then the classic
engine over the included studies; plus the LLM path with the queue-based fake model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from leads.documents import add_document, get_document
from leads.engines import DatabaseCallLog, FakeBackend, LLMEngine, get_engine
from leads.engines.batch import BatchReport
from leads.errors import EngineError, ProjectError
from leads.extract.project import (
    BUILTIN_FIELDS,
    ExtractionRun,
    extraction_batch_id,
    included_studies,
    run_extraction,
)
from leads.project import Project
from leads.project import schema as t
from leads.tasks import TASKS
from leads.tasks.extraction import ArmsInput, ResultsOutput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDS = FIXTURES / "extract" / "project_records.jsonl"
# PMID 26034744 (abstract and results only, no identifiers: linked by hand); its gold annotation
# (llm-meta-analysis, tests/fixtures/extract/results/items.json) is 8/20 vs 13/44.
PYELOPLASTY = FIXTURES / "extract" / "results" / "PMC4450164.xml"
LECTURES = FIXTURES / "documents" / "PMC535936.nxml"  # PMID 15569389, linked by its PMID
OUTCOME = {"outcome": "ureteropelvic junction obstruction", "intervention": "internal drainage group",
           "comparator": "stentless cases", "outcome_type": "binary"}
FIELDS = {"anaesthesia": "type of anaesthesia used during the procedure"}


def _record_id(project: Project, pmid: str) -> int:
    with project.engine.connect() as conn:
        found = conn.execute(sa.select(t.records.c.id).where(t.records.c.pmid == pmid)).scalar()
    assert found is not None
    return int(found)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records imported, full texts linked, decisions made; nothing extracted yet."""
    path = tmp_path_factory.mktemp("extract-project") / "review"
    with Project.init(path, actor="alice") as project:
        project.import_file(RECORDS)
        study, lectures, juice = (_record_id(project, p) for p in ("26034744", "15569389", "16091146"))
        assert add_document(project, PYELOPLASTY, record_id=study).document.record_id == study
        assert add_document(project, LECTURES).document.record_id == lectures
        project.decide(study, "include")
        project.decide(juice, "include")  # included, but no full text
        project.decide(lectures, "include")
        project.decide(lectures, "exclude", stage="full_text", reasons=["wrong population"])
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def extracted(base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractionRun]:
    path = _copy(base, tmp_path_factory.mktemp("extracted") / "review")
    with Project.open(path, actor="alice") as project:
        run = run_extraction(project, outcomes=[OUTCOME], fields=FIELDS)
    return path, run


@pytest.fixture
def project(extracted: tuple[Path, ExtractionRun], tmp_path: Path) -> Iterator[Project]:
    """A private copy of the extracted project (tests may change it)."""
    with Project.open(_copy(extracted[0], tmp_path / "review"), actor="alice") as p:
        yield p


def _rows(project: Project, **kwargs: Any) -> list[dict[str, Any]]:
    return project.extractions(history=True, **kwargs)


def test_only_included_studies_with_a_document_are_extracted(extracted: tuple[Path, ExtractionRun]) -> None:
    path, run = extracted
    with Project.open(path) as project:
        study, juice = _record_id(project, "26034744"), _record_id(project, "16091146")
        # the full-text exclusion outranks the title/abstract inclusion
        assert included_studies(project) == sorted([study, juice])
        rows = _rows(project)
    assert (run.studies, run.extracted, run.no_document) == (2, 1, [juice])
    assert {row["record_id"] for row in rows} == {study}
    assert run.engine == "classic" and run.tasks == ["characteristics", "arms", "participants", "results"]
    stats = run.per_task
    assert [stats[n].items for n in run.tasks] == [1, 1, 3, 1]  # 3 baseline measures, 1 outcome
    assert all(stats[n].extracted == stats[n].items and not stats[n].failed for n in run.tasks)
    assert run.values == len(rows) and run.calls == 6
    assert run.unsupported == sum(1 for r in rows if r["value"] is not None and not r["evidence"])
    data = run.as_dict()
    assert data["skipped_no_document"] == 1 and data["values"] == len(rows)
    json.dumps(data)  # JSON-able
    assert "1 with a document" in run.summary() and "no document: 1 studies" in run.summary()


def test_stored_values_have_located_evidence_and_their_call(project: Project) -> None:
    rows = _rows(project)
    (document_id,) = {row["document_id"] for row in rows}
    text = get_document(project, document_id).text
    located = 0
    for row in rows:
        assert row["origin"] == "ai" and row["status"] == "proposed"
        if row["value"] is None:
            assert row["evidence"] == []
        for e in row["evidence"]:
            assert text[e["start"]:e["end"]] == e["quote"], (row["field"], e)
            located += 1
    assert located >= 10
    calls = {row.id: row for row in project.engine.connect().execute(sa.select(t.model_calls)).all()}
    engine = get_engine("classic")
    for row in rows:
        call = calls[row["call_id"]]
        assert call.task == row["task"]
        assert call.batch_id == extraction_batch_id(row["task"], engine)
        assert call.item_key.startswith(f"r{row['record_id']}-d{document_id}")

    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    fields = [row["field"] for row in by_task["characteristics"]]
    assert fields == [*BUILTIN_FIELDS, "anaesthesia"]
    randomised = next(r for r in by_task["characteristics"] if r["field"] == "randomised N")
    assert randomised["value"] == "82" and "Eighty-two patients" in randomised["evidence"][0]["quote"]
    (arms,) = by_task["arms"]
    assert arms["field"] == "arms" and isinstance(arms["value"], list) and arms["value"]
    assert set(arms["value"][0]) == {"label", "type", "description", "interventions"}
    assert {e["arm"] for e in arms["evidence"]} <= set(range(len(arms["value"])))
    total = next(r for r in by_task["participants"] if r["field"] == "Overall Number of Participants: Total")
    assert total["value"]["number"] == 82 and total["value"]["param_type"] == "COUNT_OF_PARTICIPANTS"
    assert total["evidence"] and total["evidence"][0]["group"] == "BG000"
    # one row per arm besides the whole sample
    assert sum(r["field"].startswith("Overall Number of Participants: ") for r in by_task["participants"]) == \
        1 + len(arms["value"])
    women = next(r for r in by_task["participants"] if r["field"] == "Sex: Female: Total")
    assert women["value"]["number"] == 31 and "31 female" in women["evidence"][0]["quote"]
    (results,) = by_task["results"]
    assert results["field"] == "results: ureteropelvic junction obstruction"
    output = ResultsOutput.model_validate(results["value"])  # the synthesis stage rebuilds it so
    assert output.outcome_type == "binary"
    assert [(a.group_id, a.events, a.group_size) for a in output.arms] == \
        [("intervention", 8, 20), ("comparator", 13, 44)]  # the gold annotation
    fields_located = {(e["group"], e.get("field")) for e in results["evidence"]}
    assert {("intervention", "events"), ("comparator", "group_size")} <= fields_located


def test_rerun_adds_nothing_and_a_reviewer_edit_stands(project: Project) -> None:
    before = _rows(project)
    design = next(r for r in before if r["field"] == "design")
    edit = project.review_extraction(design["id"], "edit", value="randomised controlled trial, 3 arms",
                                     actor="bob")
    again = run_extraction(project, outcomes=[OUTCOME], fields=FIELDS)
    assert (again.values, again.calls, again.recovered) == (0, 0, 0)
    assert again.already_done == again.items == 6
    assert "already done" in again.summary()
    assert len(_rows(project)) == len(before) + 1
    standing = {r["field"]: r for r in project.extractions(task="characteristics")}
    assert standing["design"]["id"] == edit and standing["design"]["origin"] == "human"
    ai = next(r for r in _rows(project) if r["id"] == design["id"])
    assert ai["value"] == design["value"]  # the AI's value is kept beside the edit

    # Asking something new runs only what is new: a second outcome, another field.
    more = run_extraction(project, tasks=("characteristics", "results"), fields={**FIELDS, "blinding": "who was blinded"},
                          outcomes=[OUTCOME, {"outcome": "urinary symptoms", "intervention": "With Stent",
                                              "comparator": "Without Stent"}])
    assert more.per_task["results"].items == 2 and more.per_task["results"].already_done == 1
    assert more.per_task["results"].extracted == 1
    assert more.per_task["characteristics"].extracted == 1  # a new field list is a new question
    standing = {r["field"]: r for r in project.extractions(task="characteristics")}
    assert standing["design"]["id"] == edit  # a newer AI proposal does not displace the reviewer
    assert "blinding" in standing


def test_an_interrupted_run_keeps_what_finished_and_resumes(base: Path, tmp_path: Path,
                                                            extracted: tuple[Path, ExtractionRun]) -> None:
    full_run = extracted[1]
    with Project.open(_copy(base, tmp_path / "review"), actor="alice") as project:
        rid = _record_id(project, "26034744")
        # A call that finished without its rows (killed between the call log and the store).
        engine = get_engine("classic", log=DatabaseCallLog(project.engine))
        did = get_document(project, 1)
        engine.run(TASKS["arms"], ArmsInput(text=did.text), batch_id=extraction_batch_id("arms", engine),
                   item_key=f"r{rid}-d1")

        def interrupt(report: BatchReport) -> None:
            if report.task == "participants" and report.done:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_extraction(project, outcomes=[OUTCOME], fields=FIELDS, progress=interrupt)
        stored = _rows(project)
        assert {r["task"] for r in stored} == {"characteristics", "arms", "participants"}
        assert sum(r["task"] == "arms" for r in stored) == 1
        assert sum(r["task"] == "participants" for r in stored) > 0

        resumed = run_extraction(project, outcomes=[OUTCOME], fields=FIELDS)
        stats = resumed.per_task
        assert stats["characteristics"].already_done == 1 and stats["arms"].already_done == 1
        # the item being collected and the one already running when it stopped were both stored
        assert stats["participants"].already_done >= 1
        assert stats["participants"].already_done + stats["participants"].extracted == 3
        assert stats["results"].extracted == 1
        assert len(_rows(project)) == full_run.values


def test_recovers_a_finished_call_without_rows(base: Path, tmp_path: Path) -> None:
    with Project.open(_copy(base, tmp_path / "review"), actor="alice") as project:
        rid = _record_id(project, "26034744")
        engine = get_engine("classic", log=DatabaseCallLog(project.engine))
        result = engine.run(TASKS["arms"], ArmsInput(text=get_document(project, 1).text),
                            batch_id=extraction_batch_id("arms", engine), item_key=f"r{rid}-d1")
        run = run_extraction(project, tasks=("arms",))
        assert (run.recovered, run.calls, run.per_task["arms"].extracted) == (1, 0, 0)
        (row,) = _rows(project)
        assert row["call_id"] == result.call_id


def test_record_ids_narrow_the_run(base: Path, tmp_path: Path) -> None:
    with Project.open(_copy(base, tmp_path / "review"), actor="alice") as project:
        lectures, juice = _record_id(project, "15569389"), _record_id(project, "16091146")
        run = run_extraction(project, tasks=("arms",), record_ids=[lectures, juice])
        assert run.not_included == [lectures] and run.no_document == [juice] and run.values == 0
        assert "results" not in run.tasks


def test_bad_requests_are_refused(base: Path, tmp_path: Path) -> None:
    with Project.open(_copy(base, tmp_path / "review"), actor="alice") as project:
        with pytest.raises(ProjectError, match="unknown extraction task"):
            run_extraction(project, tasks=("pico",))
        with pytest.raises(ProjectError, match="outcome 1: missing comparator"):
            run_extraction(project, outcomes=[{"outcome": "death", "intervention": "x"}])
        with pytest.raises(ProjectError, match="given twice"):
            run_extraction(project, outcomes=[OUTCOME, OUTCOME])
        with pytest.raises(ProjectError, match="outcome_type"):
            run_extraction(project, outcomes=[{**OUTCOME, "outcome_type": "ordinal"}])
        run = run_extraction(project, tasks=("results",))
        assert run.tasks == [] and "results skipped: no outcome given" in run.summary()
        assert _rows(project) == []


def test_llm_engine_results_are_stored_with_arm_numbers(base: Path, tmp_path: Path) -> None:
    row_quote = "Partial obstruction\t8/20\t13/44"
    answer = {"paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
              "timeFrame": "DTPA scan after one month", "unitOfDenom": "Participants", "denomValue": [],
              "results": [{"title": "internal drainage group", "value": "8/20", "quote": row_quote},
                          {"title": "stentless cases", "value": "13 of 44", "quote": row_quote}]}
    with Project.open(_copy(base, tmp_path / "review"), actor="alice") as project:
        backend = FakeBackend([EngineError("the server closed the connection")])
        engine = LLMEngine(backend, log=DatabaseCallLog(project.engine))
        failed = run_extraction(project, engine=engine, tasks=("results",), outcomes=[OUTCOME])
        assert failed.values == 0 and [f.error_type for f in failed.failed] == ["EngineError"]
        assert "failed r" in failed.summary() and _rows(project) == []
        backend.add(answer)  # the server is back: the failed item runs again
        run = run_extraction(project, engine=engine, tasks=("results",), outcomes=[OUTCOME])
        assert (run.values, run.calls, run.unsupported) == (1, 1, 0) and not run.failed
        (row,) = _rows(project)
        text = get_document(project, row["document_id"]).text
        output = ResultsOutput.model_validate(row["value"])
        assert output.outcome_type == "binary"
        assert [(a.events, a.group_size) for a in output.arms] == [(8, 20), (13, 44)]
        assert output.denominators == {"intervention": 20, "comparator": 44}  # read from the values
        assert output.arms[1].field_evidence["events"].quote == "13/44"  # "13 of 44" as the paper writes it
        assert row["evidence"]
        for e in row["evidence"]:
            assert text[e["start"]:e["end"]] == e["quote"]
        with project.engine.connect() as conn:
            call = conn.execute(sa.select(t.model_calls).where(t.model_calls.c.id == row["call_id"])).one()
        assert call.engine == engine.name and call.model == "fake-model"
        again = run_extraction(project, engine=engine, tasks=("results",), outcomes=[OUTCOME])
        assert (again.values, again.calls, again.already_done) == (0, 0, 1) and len(backend.requests) == 2


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_extract_over_a_project(base: Path, tmp_path: Path) -> None:
    from leads.cli import main

    path = _copy(base, tmp_path / "review")
    runner = CliRunner()
    args = ["extract", "all", "-p", str(path), "--outcome", OUTCOME["outcome"], "--intervention",
            OUTCOME["intervention"], "--comparator", OUTCOME["comparator"], "--outcome-type", "binary",
            "--field", "anaesthesia: type of anaesthesia used during the procedure"]
    result = runner.invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["studies"], data["extracted"], data["skipped_no_document"]) == (2, 1, 1)
    assert data["calls"] == 6 and data["values"] > 15 and data["outcomes"] == [OUTCOME["outcome"]]
    again = runner.invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and "0 values stored" in again.output and "1 already done" in again.output
    one = runner.invoke(main, ["extract", "arms", "-p", str(path), "--json"], catch_exceptions=False)
    assert json.loads(one.output)["tasks"] == ["arms"]
    with Project.open(path) as project:
        fields = {r["field"] for r in project.extractions(task="characteristics")}
        edited = project.review_extraction(project.extractions(task="arms")[0]["id"], "reject", actor="bob")
    assert "anaesthesia" in fields

    from leads.extract.cli import extractions_command

    listed = json.loads(runner.invoke(extractions_command, ["-p", str(path), "--json"]).output)
    assert len(listed) == data["values"] and {r["task"] for r in listed} == set(data["tasks"])
    (arms,) = [r for r in listed if r["task"] == "arms"]
    assert (arms["id"], arms["status"], arms["actor"]) == (edited, "rejected", "bob")
    history = json.loads(runner.invoke(extractions_command, ["-p", str(path), "--json", "--history"]).output)
    assert len(history) == len(listed) + 1
    table = runner.invoke(extractions_command, ["-p", str(path), "--csv", "--task", "results"]).output
    (header, line) = table.strip().split("\n")
    assert header.startswith("id,record_id,document_id,task,field,value")
    assert "results: ureteropelvic junction obstruction" in line
    text = runner.invoke(extractions_command, ["-p", str(path), "--task", "characteristics"]).output
    assert "randomised N: 82  [ai proposed, 1 quotes]" in text


@pytest.mark.parametrize(("args", "message"), [
    (["all", "FILE"], "TASK 'all' is for a project"),
    (["results", "-p", "PROJECT"], "results needs --outcome"),
    (["all", "-p", "PROJECT", "--outcome", "death"], "missing --intervention, --comparator"),
    (["pico", "-p", "PROJECT"], "with -p, TASK is one of"),
    (["arms", "-p", "PROJECT", "FILE"], "give no FILE"),
])
def test_cli_project_usage_errors(base: Path, args: list[str], message: str) -> None:
    from leads.cli import main

    args = [str(base) if a == "PROJECT" else str(LECTURES) if a == "FILE" else a for a in args]
    result = CliRunner().invoke(main, ["extract", *args])
    assert result.exit_code == 2 and message in result.output


# --- LLM answers become arm-level numbers (TrialResultsTask.finish) ----------------------------

PAPER = ("Methods: We randomly assigned 412 postmenopausal women to estradiol or placebo. Results: Hip "
         "fractures occurred in 3 of 206 women given estradiol and 9 of 206 given placebo; 12.5% of the "
         "estradiol group and 20.0% of the placebo group reported hot flushes. Pain scores were 12.3 (SE 1.2) "
         "with estradiol and 14.0 (SE 1.5) with placebo; the median hospital stay was 7 (IQR 5-9) days and 8 "
         "(IQR 6-11) days.")
GROUPS = [{"id": "OG000", "title": "Estradiol"}, {"id": "OG001", "title": "Placebo"}]


def _results(answer: dict[str, Any], outcome: str, **extra: Any) -> ResultsOutput:
    engine = LLMEngine(FakeBackend([answer]))
    output = engine.run(TASKS["results"], {"text": PAPER, "outcome": outcome, "groups": GROUPS, **extra}).output
    assert isinstance(output, ResultsOutput)
    return ResultsOutput.model_validate(output.model_dump(mode="json"))


def test_llm_binary_counts_fill_arms_and_denominators() -> None:
    out = _results({"paramType": "NUMBER", "unitOfMeasure": "participants", "results": [
        {"title": "Estradiol", "value": "3/206", "quote": "3 of 206 women given estradiol"},
        {"title": "Placebo", "value": "9 of 206", "quote": "9 of 206 given placebo"}]}, "Hip fracture")
    assert out.outcome_type == "binary"  # NUMBER, but the values are events/total
    assert [(a.events, a.group_size) for a in out.arms] == [(3.0, 206.0), (9.0, 206.0)]
    assert out.denominators == {"OG000": 206.0, "OG001": 206.0}
    assert [v.number for v in out.values] == [3.0, 9.0]
    located = out.arms[0].field_evidence["events"]
    assert PAPER[located.start:located.end] == located.quote and located.quote.startswith("3 of 206")


def test_llm_percentages_derive_events_only_with_a_denominator() -> None:
    out = _results({"paramType": "PERCENT", "unitOfMeasure": "percentage of participants",
                    "denomValue": ["200", None], "results": [
                        {"title": "Estradiol", "value": "12.5%", "quote": "12.5% of the estradiol group"},
                        {"title": "Placebo", "value": "20.0", "quote": "20.0% of the placebo group"}]},
                   "Hot flushes")
    estradiol, placebo = out.arms
    assert out.outcome_type == "binary" and estradiol.percent == 12.5 and estradiol.events is None
    (derived,) = estradiol.derived
    assert derived.field == "events" and derived.value == 25.0 and "percent" in derived.formula
    assert placebo.percent == 20.0 and placebo.derived == [] and placebo.group_size is None
    # 12.5% of 206 is 25.75 women: no whole number of events gives 12.5%, so none is derived
    ambiguous = _results({"paramType": "PERCENT", "unitOfMeasure": "%", "denomValue": ["206", "206"], "results": [
        {"title": "Estradiol", "value": "12.5", "quote": "12.5% of the estradiol group"},
        {"title": "Placebo", "value": "20.0", "quote": "20.0% of the placebo group"}]}, "Hot flushes")
    assert ambiguous.arms[0].derived == [] and ambiguous.arms[1].derived[0].value == 41.0


def test_llm_continuous_values_and_their_derivations() -> None:
    out = _results({"paramType": "MEAN", "unitOfMeasure": "points", "denomValue": ["206", "206"], "results": [
        {"title": "Estradiol", "value": "12.3 (SE 1.2)", "quote": "Pain scores were 12.3 (SE 1.2) with estradiol"},
        {"title": "Placebo", "value": "14.0 (SE 1.5)", "quote": "14.0 (SE 1.5) with placebo"}]}, "Pain score")
    estradiol = out.arms[0]
    assert out.outcome_type == "continuous" and (estradiol.mean, estradiol.se, estradiol.sd) == (12.3, 1.2, None)
    (derived,) = estradiol.derived
    assert derived.field == "sd" and derived.value == pytest.approx(1.2 * 206 ** 0.5)

    median = _results({"paramType": "MEDIAN", "unitOfMeasure": "days", "denomValue": ["206", "206"], "results": [
        {"title": "Estradiol", "value": "7 (IQR 5-9)", "quote": "the median hospital stay was 7 (IQR 5-9) days"},
        {"title": "Placebo", "value": "8 (6 to 11)", "quote": "8 (IQR 6-11) days"}]}, "Hospital stay")
    estradiol, placebo = median.arms
    assert (estradiol.median, estradiol.q1, estradiol.q3, estradiol.mean) == (7.0, 5.0, 9.0, None)
    assert {d.field for d in estradiol.derived} == {"mean", "sd"}
    # a bare interval may be a range or an IQR: only the median is taken, nothing derived
    assert (placebo.median, placebo.q1, placebo.derived) == (8.0, None, [])
    assert [v.number for v in median.values] == [7.0, 8.0]


def test_llm_results_without_numbers_say_so() -> None:
    out = _results({"paramType": "NUMBER", "unitOfMeasure": "", "results": [
        {"title": "Estradiol", "value": "not reported"}, {"title": "Placebo", "value": None}]}, "Quality of life")
    assert out.outcome_type is None and out.arms == [] and out.notes
    typed = _results({"paramType": "NUMBER", "unitOfMeasure": "", "results": [
        {"title": "Estradiol", "value": "fewer"}, {"title": "Placebo", "value": None}]}, "Falls",
        outcome_type="binary")
    assert typed.outcome_type == "binary" and [a.events for a in typed.arms] == [None, None]
    assert any("holds no number" in note for note in typed.notes)
