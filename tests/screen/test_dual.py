"""Dual screening: pairing reviewers' decisions, conflicts, resolutions, Cohen's kappa."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from leads.project import Project
from leads.screen.dual import (
    agreement,
    ai_screening_labels,
    cohen_kappa,
    is_resolution,
    pair_records,
    reviewer_decisions,
)

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"


def row(id_: int, record: int, actor: str, label: str, *, note: str | None = None, kind: str = "human",
        reasons: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": id_, "record_id": record, "actor": actor, "actor_kind": kind, "label": label,
            "note": note, "reasons": list(reasons), "created_at": None}


def test_kappa_of_the_textbook_example_matches_sklearn() -> None:
    # Cohen's kappa, Wikipedia's worked example: 50 proposals, two readers; yes/yes 20, yes/no 5,
    # no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    result = cohen_kappa(pairs)
    assert result.n == 50 and result.agreed == 35
    assert result.observed == pytest.approx(0.7)
    assert result.expected == pytest.approx(0.5)
    assert result.kappa == pytest.approx(0.4)
    a, b = zip(*pairs, strict=True)
    assert result.kappa == pytest.approx(cohen_kappa_score(a, b))


def test_kappa_with_three_labels_matches_sklearn_and_degenerate_cases() -> None:
    a = ["include", "exclude", "maybe", "exclude", "exclude", "include", "maybe", "exclude", "include", "exclude"]
    b = ["include", "exclude", "exclude", "exclude", "include", "include", "maybe", "exclude", "maybe", "exclude"]
    result = cohen_kappa(list(zip(a, b, strict=True)))
    assert result.kappa == pytest.approx(cohen_kappa_score(a, b))
    assert result.table[("maybe", "exclude")] == 1
    assert cohen_kappa([]).kappa is None and cohen_kappa([]).n == 0
    same = cohen_kappa([("exclude", "exclude")] * 4)  # p_e = 1: undefined, not a division by zero
    assert same.kappa is None and same.observed == 1.0
    assert math.isnan(cohen_kappa_score(["exclude"] * 4, ["exclude"] * 4))
    opposite = cohen_kappa([("include", "exclude"), ("exclude", "include")])
    assert opposite.kappa == pytest.approx(cohen_kappa_score(["include", "exclude"], ["exclude", "include"]))


def test_pairing_conflicts_resolutions_and_undo() -> None:
    history = [
        row(1, 10, "alice", "include"),
        row(2, 11, "alice", "exclude", reasons=("E1: Animal study",)),
        row(3, 10, "bob", "exclude"),              # record 10: conflict
        row(4, 11, "bob", "exclude"),              # record 11: agreed
        row(5, 12, "bob", "maybe"),                # record 12: bob only
        row(6, 13, "alice", "include"),
        row(7, 13, "bob", "exclude"),
        row(8, 13, "carol", "include", note="resolution"),  # record 13: resolved by a third person
        row(9, 14, "alice", "include"),
        row(10, 14, "bob", "exclude"),
        row(11, 14, "bob", "undo", note="undo of decision 10"),  # bob withdraws: awaiting again
        row(12, 15, "alice", "exclude"),
        row(13, 15, "bob", "include"),
        row(14, 15, "alice", "include"),           # alice changes her mind: agreed, alice still first
        row(15, 16, "alice", "exclude"),
        row(16, 16, "bob", "include"),
        row(17, 16, "alice", "include", note="resolution"),
        row(18, 16, "bob", "maybe"),               # a decision after the resolution reopens it
    ]
    records = pair_records(history)
    status = {rid: r.status for rid, r in records.items()}
    assert status == {10: "conflict", 11: "agreed", 12: "awaiting", 13: "resolved", 14: "awaiting",
                      15: "agreed", 16: "conflict"}
    assert records[10].first is not None and records[10].first.actor == "alice"
    assert records[10].second is not None and records[10].second.actor == "bob"
    assert records[11].consensus == "exclude" and records[11].first.reasons == ("E1: Animal study",)  # type: ignore[union-attr]
    assert records[13].consensus == "include" and records[13].resolution.actor == "carol"  # type: ignore[union-attr]
    assert records[15].first.actor == "alice" and records[15].first.label == "include"  # type: ignore[union-attr]
    assert records[10].consensus is None
    # the resolver is not counted as a reviewer, and alice's resolution is not her own decision
    assert [d.actor for d in records[13].decisions] == ["alice", "bob"]
    assert records[16].decided_by("alice").label == "exclude"  # type: ignore[union-attr]
    standing, _, resolutions = reviewer_decisions(history)
    assert set(standing[14]) == {"alice"} and set(resolutions) == {13, 16}
    pairs = [("include", "exclude"), ("exclude", "exclude"), ("include", "exclude"),
             ("include", "include"), ("exclude", "maybe")]
    assert agreement(records.values()).n == len(pairs)
    assert agreement(records.values()).kappa == pytest.approx(cohen_kappa(pairs).kappa)
    assert is_resolution("resolution: agreed by alice and bob") and not is_resolution("undo of decision 3")


def test_duplicates_count_for_their_primary_and_third_reviewers_are_kept() -> None:
    history = [row(1, 20, "alice", "include"), row(2, 21, "bob", "include"), row(3, 21, "carol", "exclude")]
    records = pair_records(history, primaries={21: 20})
    assert list(records) == [20]
    assert records[20].status == "conflict"  # carol, the third reviewer, disagrees
    assert [d.actor for d in records[20].others] == ["carol"]


def test_ai_as_the_second_reviewer() -> None:
    labels = ai_screening_labels({30: "exclude"}, {30: 0.8, 31: 0.2, 32: -0.5, 33: None})
    assert labels == {30: "exclude", 31: "include", 32: "exclude"}
    history = [row(1, 30, "alice", "include"), row(2, 31, "alice", "include"),
               row(3, 30, "ai:classic", "exclude", kind="ai")]
    records = pair_records(history, second="ai", ai_labels=labels)
    assert records[30].status == "conflict" and records[30].second.actor == "AI"  # type: ignore[union-attr]
    assert records[31].status == "agreed"
    assert records[32].status == "awaiting" and records[32].first is None
    assert records[30].others == []  # the stored AI decision is the AI's label, not a person's
    with pytest.raises(ValueError, match="second must be"):
        pair_records(history, second="robot")


def test_pairing_reads_a_real_project_history(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p", name="dual", actor="alice") as project:
        project.import_file(SAMPLE)
        ids = [s.id for s in project.iter_records()][:3]
        project.decide(ids[0], "include", actor="alice")
        project.decide(ids[0], "exclude", actor="bob", reasons=["E1: x"])
        project.decide(ids[1], "exclude", actor="alice")
        project.decide(ids[1], "exclude", actor="bob")
        project.decide(ids[2], "include", actor="bob")
        project.decide(ids[0], "include", actor="carol", note="resolution")
        records = pair_records(project.decision_history("title_abstract"),
                               primaries=project.duplicate_primaries())
    assert [records[i].status for i in ids] == ["resolved", "agreed", "awaiting"]
    assert records[ids[0]].second.reasons == ("E1: x",)  # type: ignore[union-attr]
    assert agreement(records.values()).n == 2
