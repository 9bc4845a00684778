"""Examples from a review project: accepted AI work and human decisions, nothing invented."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from leads.engines._base import FakeBackend, LLMEngine
from leads.engines.calllog import DatabaseCallLog
from leads.instruct import BuildOptions, build, read_examples
from leads.instruct.build import collect
from leads.project import Project
from leads.project import schema as t
from leads.records import Record
from leads.tasks import TASKS

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"
INCLUSION = ["Postmenopausal women", "Hormone replacement therapy compared with no therapy"]
EXCLUSION = ["Populations selected for prior disease"]


def _verdicts(*values: str) -> dict[str, object]:
    return {"evaluations": [{"eligibility": v, "rationale": f"judged {v}", "evidence": []} for v in values]}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = Project.init(tmp_path / "review", actor="alice")
    project.import_file(SAMPLE)
    project.set_criteria(INCLUSION, EXCLUSION)
    yield project
    project.close()


def _assess(project: Project, record_id: int, answer: dict[str, object] | str) -> int:
    record = project.record(record_id).record
    engine = LLMEngine(FakeBackend([answer]), log=DatabaseCallLog(project.engine), engine_name="fake-llm")
    criteria = [{"text": c["text"], "kind": c["kind"]} for c in project.criteria()]
    result = engine.run(TASKS["eligibility"], {"title": record.title, "text": record.abstract or "",
                                               "criteria": criteria})
    output = result.output.model_dump(mode="json")
    project.add_assessments([{"record_id": record_id, "criteria_version": 1, "engine": "fake-llm",
                              "call_id": result.call_id, "verdicts": output["verdicts"], "score": output["score"]}])
    assert result.call_id is not None
    return result.call_id


def _with_abstract(project: Project, n: int) -> list[int]:
    ids = [s.id for s in project.iter_records() if s.record.abstract]
    return ids[:n]


def test_accepted_assessments_and_human_decisions(project: Project) -> None:
    r1, r2, r3, r4, r5, r6 = _with_abstract(project, 6)
    # include, agreed -> per-criterion example (the reply came in a Markdown code fence)
    _assess(project, r1, "```json\n" + json.dumps(_verdicts("YES", "YES", "NO")) + "\n```")
    project.decide(r1, "include")
    _assess(project, r2, _verdicts("NO", "YES", "NO"))         # exclude for I1, agreed
    project.decide(r2, "exclude", reasons=[f"I1: {INCLUSION[0]}"])
    _assess(project, r3, _verdicts("YES", "YES", "NO"))        # AI says include, human excludes -> label only
    project.decide(r3, "exclude")
    _assess(project, r4, _verdicts("NO", "YES", "NO"))         # human names a criterion the AI said YES to
    project.decide(r4, "exclude", reasons=[f"I2: {INCLUSION[1]}"])
    project.decide(r5, "include", actor_kind="ai")             # AI decisions are never gold
    project.decide(r6, "include")
    project.decide(r6, "undo")                                 # withdrawn
    examples, reports = collect(BuildOptions(out=Path("."), projects=[project.location]))
    (report,) = reports
    assert not report.rejected, report.rejected_samples
    by_item = {e.item.split("#", 1)[1].split(":")[0]: e for e in examples}
    assert set(by_item) == {f"record{r}" for r in (r1, r2, r3, r4)}
    accepted = by_item[f"record{r1}"]
    assert len(accepted.input["criteria"]) == 3
    assert [v["eligibility"] for v in accepted.answer["evaluations"]] == ["YES", "YES", "NO"]
    assert accepted.answer["evaluations"][0]["rationale"] == "judged YES"
    assert [v["eligibility"] for v in by_item[f"record{r2}"].answer["evaluations"]] == ["NO", "YES", "NO"]
    for label_only, verdict in ((r3, "NO"), (r4, "NO")):
        example = by_item[f"record{label_only}"]
        assert len(example.input["criteria"]) == 1
        assert example.answer["evaluations"] == [{"eligibility": verdict, "rationale": "", "evidence": []}]
    assert "exclude studies that meet any of: Populations selected for prior disease" in \
        by_item[f"record{r3}"].input["criteria"][0]["text"]
    assert all(f"project:{project.name}" in e.groups for e in examples)


def test_accepted_extraction_and_search_calls(project: Project, tmp_path: Path) -> None:
    r1, r2 = _with_abstract(project, 2)
    log = DatabaseCallLog(project.engine)
    texts = {r: project.record(r).record.abstract or "" for r in (r1, r2)}
    calls = {}
    for record_id in (r1, r2):
        quote = texts[record_id].split(". ")[0]
        answer = [{"name": "Design", "value": "trial", "quote": quote}]
        engine = LLMEngine(FakeBackend([answer]), log=log, engine_name="fake-llm")
        result = engine.run(TASKS["characteristics"], {"text": texts[record_id],
                                                       "fields": [{"name": "Design", "description": "design"}]})
        calls[record_id] = result.call_id
    now = dt.datetime.now(dt.UTC)
    with project.engine.begin() as conn:
        for record_id in (r1, r2):
            conn.execute(sa.insert(t.extractions).values(
                record_id=record_id, task="characteristics", field="Design", value="trial", origin="ai",
                status="proposed", call_id=calls[record_id], actor="ai:fake-llm", created_at=now))
        conn.execute(sa.insert(t.extractions).values(
            record_id=r1, task="characteristics", field="Design", value="trial", origin="human",
            status="accepted", actor="alice", created_at=now))
        conn.execute(sa.insert(t.extractions).values(
            record_id=r2, task="characteristics", field="Design", value="cohort", origin="human",
            status="edited", actor="alice", created_at=now))
    query_engine = LLMEngine(FakeBackend([{"query": "estrogens[tiab] AND menopause[tiab]"},
                                          {"query": "hrt[tiab]"}]), log=log, engine_name="fake-llm")
    query_engine.run(TASKS["search_query"], {"population": "postmenopausal women", "intervention": "HRT"})
    query_engine.run(TASKS["search_query"], {"population": "women"})
    project.add_records([Record(title="x")], source="pubmed", query="estrogens[tiab] AND menopause[tiab]")
    result = build(BuildOptions(out=tmp_path / "out", projects=[project.location], test_fraction=0))
    examples = list(read_examples(tmp_path / "out" / "train.jsonl"))
    kinds = sorted((e.task, e.item.rsplit(":", 1)[-1]) for e in examples)
    assert ("characteristics", f"call{calls[r1]}") in kinds
    assert ("characteristics", f"call{calls[r2]}") not in kinds  # the reviewer edited it
    queries = [json.loads(e.messages[-1]["content"])["query"] for e in examples if e.task == "search_query"]
    assert queries == ["estrogens[tiab] AND menopause[tiab]"]
    extraction = next(e for e in examples if e.task == "characteristics")
    request = TASKS["characteristics"].messages(TASKS["characteristics"].validate_input(
        {"text": texts[r1], "fields": [{"name": "Design", "description": "design"}]}), text_budget=24_000)
    assert extraction.messages[:-1] == request
    assert result.datasheet["counts"]["search_query"][f"project:{project.name}"]["train"] == 1
