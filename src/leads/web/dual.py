"""Dual review in the workspace: each reviewer's own queue, blinding, conflicts and resolution.

The pure logic (who decided what, conflicts, kappa) is :mod:`leads.screen.dual`; this module
reads it out of a project for the pages:

* **Each reviewer's queue.** While dual screening is on, a record leaves a reviewer's queue when
  *they* have decided it, not when anybody has. The order is the workflow's ranking (TF-IDF and
  verdict features, zero-shot prior from the question) with the active learner trained on the
  reviewer's *own* decisions only, so that the other reviewer's decisions do not steer it.
* **Blinding.** A member whose role is exactly ``reviewer`` and who is not a designated resolver
  sees only their own decisions (screening card, record page, audit, conflicts on records they
  decided themselves); exports that carry decisions are refused to them. Owners, resolvers and
  viewers see everything.
* **The AI as second reviewer.** Its label per record is its stored unattended decision, else
  the decision its verdicts settle, else include when the assessment's score is above 0
  (:func:`leads.screen.dual.ai_screening_labels`). The AI panel is then off for the people
  screening, who must decide independently of it.
* **Resolution** is a decision with the note ``resolution``, appended by an owner, a designated
  resolver, or one of the record's two reviewers recording what they agreed
  (``resolution: agreed by A and B``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from leads.errors import NotFoundError
from leads.project import Project
from leads.screen import workflow as w
from leads.screen.dual import (
    RESOLUTION_NOTE,
    Agreement,
    DualRecord,
    ReviewerDecision,
    agreement,
    ai_screening_labels,
    pair_records,
    reviewer_decisions,
)
from leads.web.store import DualSetting, WorkspaceError

__all__ = [
    "STAGE_TITLES",
    "DualSummary",
    "ReviewerQueue",
    "ai_labels",
    "can_resolve",
    "dual_records",
    "dual_summary",
    "dual_undo",
    "is_blinded",
    "resolve",
    "reviewer_queue",
]

STAGE_TITLES = {"title_abstract": "Title and abstract", "full_text": "Full text"}
LABELS = ("include", "exclude", "maybe")


def ai_labels(project: Project, stage: str) -> dict[int, str]:
    """The AI's label per record (duplicate-group primary) for the AI-as-second-reviewer mode."""
    primaries = project.duplicate_primaries()
    decisions: dict[int, str] = {}
    for row in project.decision_history(stage):
        if row["actor_kind"] != "ai":
            continue
        key = primaries.get(int(row["record_id"]), int(row["record_id"]))
        if row["label"] == "undo":
            decisions.pop(key, None)
        else:
            decisions[key] = str(row["label"])
    criteria = w.current_criteria(project)
    scores: dict[int, float | None] = {}
    settled_by_verdicts: dict[int, str] = {}
    if criteria:
        # Oldest first: a newer assessment of the record replaces an older one's score and verdicts.
        for row in project.assessments(stage=stage, criteria_version=criteria[0].version):
            key = primaries.get(int(row["record_id"]), int(row["record_id"]))
            scores[key] = row.get("score")
            try:
                settled = w.ai_decision_for(row["verdicts"] or [], criteria)
            except (IndexError, KeyError, ValueError):
                settled = None
            if settled is not None:
                settled_by_verdicts[key] = settled[0]
            else:
                settled_by_verdicts.pop(key, None)
    # A stored (unattended) AI decision wins over what the verdicts settle, which wins over the score.
    decisions = {**settled_by_verdicts, **decisions}
    return ai_screening_labels(decisions, scores)


def dual_records(project: Project, stage: str, setting: DualSetting) -> dict[int, DualRecord]:
    history = project.decision_history(stage)
    labels = ai_labels(project, stage) if setting.second == "ai" else None
    return pair_records(history, second=setting.second, ai_labels=labels, primaries=project.duplicate_primaries())


@dataclass
class DualSummary:
    stage: str
    setting: DualSetting
    records: dict[int, DualRecord]
    agreement: Agreement
    counts: dict[str, int]

    @property
    def conflicts(self) -> list[DualRecord]:
        return [r for r in self.records.values() if r.status == "conflict"]

    @property
    def resolved(self) -> list[DualRecord]:
        return [r for r in self.records.values() if r.status == "resolved"]


def dual_summary(project: Project, stage: str, setting: DualSetting) -> DualSummary:
    records = dual_records(project, stage, setting)
    counts = {status: 0 for status in ("awaiting", "agreed", "conflict", "resolved")}
    for record in records.values():
        counts[record.status] += 1
    return DualSummary(stage=stage, setting=setting, records=records, agreement=agreement(records.values()),
                       counts=counts)


def is_blinded(role: str, username: str, setting: DualSetting | None) -> bool:
    """Whether this member must not see other people's decisions at a stage."""
    return bool(setting and setting.enabled and role == "reviewer" and username not in setting.resolvers)


def can_resolve(role: str, username: str, setting: DualSetting, record: DualRecord) -> bool:
    """Owners and designated resolvers resolve any conflict; the record's own reviewers may record
    what they agreed on."""
    if role == "owner" or (role == "reviewer" and username in setting.resolvers):
        return True
    return role == "reviewer" and record.decided_by(username) is not None


def resolve(project: Project, *, stage: str, record: DualRecord, label: str, reasons: list[str], user: str,
            role: str, setting: DualSetting, seconds: float | None = None) -> int:
    """Append the resolution of a conflict; returns the decision id."""
    if label not in LABELS:
        raise WorkspaceError(f"a decision is one of {', '.join(LABELS)} (got {label!r})")
    if record.status != "conflict":
        raise WorkspaceError(f"record {record.record_id} has no open conflict at {STAGE_TITLES[stage].lower()} "
                             f"(it is {record.status})")
    if not can_resolve(role, user, setting, record):
        raise WorkspaceError(f"record {record.record_id}: a conflict is resolved by an owner, a designated "
                             "resolver, or its two reviewers together")
    note = RESOLUTION_NOTE
    own = record.decided_by(user)
    if own is not None and role != "owner" and user not in setting.resolvers:
        other = next((d.actor for d in record.decisions if d.actor != user), "the other reviewer")
        note = f"{RESOLUTION_NOTE}: agreed by {user} and {other}"
    criteria = w.current_criteria(project)
    resolved = list(dict.fromkeys(w.resolve_criterion(criteria, r).as_reason() for r in reasons if r.strip()))
    project.ensure_user(user)
    return project.decide(record.record_id, label, stage=stage, reasons=resolved, seconds_spent=seconds,
                          actor=user, actor_kind="human", note=note)


def own_decisions(project: Project, user: str, stage: str = w.STAGE) -> dict[int, ReviewerDecision]:
    standing, _, _ = reviewer_decisions(project.decision_history(stage), primaries=project.duplicate_primaries())
    return {rid: by[user] for rid, by in standing.items() if user in by}


def dual_undo(project: Project, user: str, stage: str = w.STAGE) -> tuple[int, ReviewerDecision] | None:
    """Withdraw ``user``'s newest standing independent decision (an ``undo`` row by them); returns
    (record id, the decision withdrawn), or ``None`` when they have none."""
    mine = own_decisions(project, user, stage)
    if not mine:
        return None
    newest = max(mine.values(), key=lambda d: d.decision_id)
    project.decide(newest.record_id, "undo", stage=stage, actor=user, actor_kind="human",
                   note=f"undo of decision {newest.decision_id}")
    return newest.record_id, newest


@dataclass
class ReviewerQueue:
    """One reviewer's place in dual screening."""

    order: list[int]
    scores: dict[int, float]
    mode: str
    screened: int
    relevant_found: int
    total: int
    assessed: int
    stopping: Any
    own: dict[int, ReviewerDecision]


def reviewer_queue(project: Project, user: str, *, seed: int = 0) -> ReviewerQueue:
    """The records ``user`` has not decided, ranked for them (see the module docstring)."""
    from leads.screen.stopping import recall_estimate

    # The workflow's state and feature cache: the same texts, verdict features and zero-shot
    # prior as the single-review order, so the two modes rank alike before anyone decides.
    state = w._load_state(project)
    standing, first_seen, _ = reviewer_decisions(project.decision_history(w.STAGE), primaries=state.primaries)
    own = {rid: by[user] for rid, by in standing.items() if user in by and rid in state.records}
    in_order = sorted(own, key=lambda rid: first_seen.get(rid, {}).get(user, own[rid].decision_id))
    labels_in_order = [own[rid].label in w.RELEVANT_LABELS for rid in in_order]
    stopping = recall_estimate(labels_in_order, max(len(state.ids), len(in_order)))
    if not state.ids:
        return ReviewerQueue([], {}, "unranked", 0, 0, 0, 0, stopping, own)
    ranking = w.rank_by_decisions(project, state, {rid: own[rid].label in w.RELEVANT_LABELS for rid in own},
                                  seed=seed)
    order, scores, mode = ranking.order, ranking.scores, ranking.mode
    return ReviewerQueue(order=order, scores=scores, mode=mode, screened=len(own),
                         relevant_found=sum(labels_in_order), total=len(state.ids),
                         assessed=len(state.assessments), stopping=stopping, own=own)


def next_for_reviewer(queue: ReviewerQueue, skip: Collection[int]) -> int | None:
    """The first record of the queue not open elsewhere (else the first, when all are)."""
    found = next((rid for rid in queue.order if rid not in skip), None)
    if found is None and queue.order:
        found = queue.order[0]
    return found


def find_record(records: Mapping[int, DualRecord], record_id: int, primaries: Mapping[int, int]) -> DualRecord:
    key = primaries.get(record_id, record_id)
    found = records.get(key)
    if found is None:
        raise NotFoundError(f"record {record_id} has no dual-review decisions")
    return found


def blinded_stages(role: str, username: str, settings: Mapping[str, DualSetting]) -> dict[str, DualSetting]:
    """The stages at which this member is blinded, with their settings."""
    return {stage: s for stage, s in settings.items() if is_blinded(role, username, s)}


def visible_decisions(rows: list[dict[str, Any]], username: str, blinded: Collection[str]) -> list[dict[str, Any]]:
    """Decision rows a member may see: everything at stages where they are not blinded; only
    their own rows where they are."""
    return [r for r in rows if r["stage"] not in blinded or r["actor"] == username]
