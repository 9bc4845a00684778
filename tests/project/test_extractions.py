"""Extracted values in a project: AI proposals, reviewers' actions appended beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leads.errors import NotFoundError, ProjectError
from leads.project import Project

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project.init(tmp_path / "p", name="extraction test", actor="alice")
    project.import_file(SAMPLE)
    yield project
    project.close()


def test_reviewer_actions_are_appended_and_the_ai_value_is_kept(project: Project) -> None:
    rid = project.iter_records().__next__().id
    ids = project.add_extractions([
        {"record_id": rid, "task": "characteristics", "field": "design", "value": "RCT",
         "evidence": [{"quote": "randomised", "start": 10, "end": 20}]},
        {"record_id": rid, "task": "characteristics", "field": "funding", "value": None},
    ])
    assert len(ids) == 2
    edited = project.review_extraction(ids[0], "edit", value="cluster RCT", seconds_spent=4.5,
                                       actor="bob")
    project.review_extraction(ids[1], "reject")
    standing = {row["field"]: row for row in project.extractions(record_ids=[rid])}
    assert standing["design"]["id"] == edited
    assert standing["design"]["value"] == "cluster RCT"
    assert standing["design"]["origin"] == "human" and standing["design"]["actor"] == "bob"
    assert standing["design"]["supersedes_id"] == ids[0]
    # the edit keeps the AI's quote when it brings none
    assert standing["design"]["evidence"][0]["start"] == 10
    assert standing["funding"]["status"] == "rejected"
    history = project.extractions(record_ids=[rid], history=True)
    assert [row["status"] for row in history] == ["proposed", "proposed", "edited", "rejected"]
    assert history[0]["value"] == "RCT"
    # a later AI run does not displace the reviewer's value
    project.add_extractions([{"record_id": rid, "task": "characteristics", "field": "design",
                              "value": "cohort"}])
    standing = {row["field"]: row for row in project.extractions(record_ids=[rid])}
    assert standing["design"]["value"] == "cluster RCT"


def test_entered_values_and_bad_input(project: Project) -> None:
    rid = project.iter_records().__next__().id
    project.enter_extraction(rid, "characteristics", "risk of bias", "low")
    (row,) = project.extractions(task="characteristics")
    assert row["origin"] == "human" and row["value"] == "low" and row["supersedes_id"] is None
    with pytest.raises(ProjectError, match="evidence needs quote"):
        project.add_extractions([{"record_id": rid, "task": "arms", "field": "arms", "value": [],
                                  "evidence": [{"start": 1}]}])
    with pytest.raises(ProjectError, match="not a span"):
        project.add_extractions([{"record_id": rid, "task": "arms", "field": "arms", "value": [],
                                  "evidence": [{"quote": "x", "start": 5, "end": 2}]}])
    with pytest.raises(NotFoundError):
        project.add_extractions([{"record_id": 10**6, "task": "arms", "field": "a", "value": 1}])
    with pytest.raises(ProjectError, match="needs the new value"):
        project.review_extraction(row["id"], "edit")
    with pytest.raises(ProjectError, match="action must be"):
        project.review_extraction(row["id"], "approve")
    with pytest.raises(NotFoundError):
        project.review_extraction(10**6, "accept")
    assert len(project.extractions(history=True)) == 1
