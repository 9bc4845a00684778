"""Dual screening: two independent, blinded decisions per record, their conflicts, and kappa.

In dual review every record is decided by two reviewers who do not see each other's decisions,
or by one reviewer with the AI as the second reviewer. The project stores each decision as an
ordinary append-only row (:meth:`leads.project.Project.decide`); this module reads a stage's
decision history and works out, per record:

* each reviewer's own standing decision: their newest one, an ``undo`` row by that reviewer
  withdrawing their newest standing one (another reviewer's undo never touches it);
* the first and the second reviewer: the two people who decided the record first (ordered by
  their first decision on it, so a reviewer changing their mind keeps their place); with the AI
  as the second reviewer, the AI's label (:func:`ai_screening_labels`);
* the status: ``awaiting`` (fewer than two decisions), ``agreed``, ``conflict`` (the decisions
  differ) or ``resolved`` (a resolution decision was made after the reviewers' decisions);
* a *resolution*: a decision whose note is ``resolution`` (or starts with ``resolution:``),
  made by a third person or by the two reviewers together; it settles the record and is never
  counted as a reviewer's independent decision.

Decisions on any member of a duplicate group count for the group's primary record, as in
:meth:`~leads.project.Project.current_decisions`.

:func:`agreement` gives Cohen's kappa over the (first, second) label pairs: with
``p_o`` the observed agreement and ``p_e`` the agreement expected from each rater's marginal
label frequencies, ``kappa = (p_o - p_e) / (1 - p_e)`` (Cohen 1960). Kappa is undefined
(``None``) when ``p_e = 1`` (both raters used one and the same label throughout).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AI_REVIEWER",
    "RESOLUTION_NOTE",
    "STATUSES",
    "Agreement",
    "DualRecord",
    "ReviewerDecision",
    "agreement",
    "ai_screening_labels",
    "cohen_kappa",
    "is_resolution",
    "pair_records",
    "reviewer_decisions",
]

RESOLUTION_NOTE = "resolution"
AI_REVIEWER = "AI"
STATUSES = ("awaiting", "agreed", "conflict", "resolved")


def is_resolution(note: str | None) -> bool:
    """Whether a decision's note marks it as the resolution of a dual-review record."""
    if not note:
        return False
    return note == RESOLUTION_NOTE or note.startswith(RESOLUTION_NOTE + ":")


@dataclass(frozen=True)
class ReviewerDecision:
    """One reviewer's standing decision on a record (``decision_id`` 0 for an AI label derived
    from an assessment rather than stored as a decision)."""

    record_id: int
    actor: str
    actor_kind: str
    label: str
    reasons: tuple[str, ...] = ()
    decision_id: int = 0
    created_at: Any = None
    note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], record_id: int) -> ReviewerDecision:
        return cls(record_id=record_id, actor=str(row["actor"]), actor_kind=str(row.get("actor_kind") or "human"),
                   label=str(row["label"]), reasons=tuple(str(r) for r in row.get("reasons") or ()),
                   decision_id=int(row["id"]), created_at=row.get("created_at"), note=row.get("note"))


@dataclass
class DualRecord:
    """A record's decisions under dual review."""

    record_id: int
    first: ReviewerDecision | None = None
    second: ReviewerDecision | None = None
    others: list[ReviewerDecision] = field(default_factory=list)
    """Decisions of further reviewers (a team of more than two), in the order they came."""
    resolution: ReviewerDecision | None = None

    @property
    def decisions(self) -> list[ReviewerDecision]:
        return [d for d in (self.first, self.second, *self.others) if d is not None]

    @property
    def disagree(self) -> bool:
        return len({d.label for d in self.decisions}) > 1

    @property
    def status(self) -> str:
        if self.first is None or self.second is None:
            return "awaiting"
        latest = max(d.decision_id for d in self.decisions)
        if self.resolution is not None and self.resolution.decision_id > latest:
            return "resolved"
        return "conflict" if self.disagree else "agreed"

    @property
    def consensus(self) -> str | None:
        """The label the record ends with: the resolution's, or the agreed one; else ``None``."""
        status = self.status
        if status == "resolved":
            assert self.resolution is not None
            return self.resolution.label
        if status == "agreed":
            assert self.first is not None
            return self.first.label
        return None

    def decided_by(self, actor: str) -> ReviewerDecision | None:
        return next((d for d in self.decisions if d.actor == actor), None)


def reviewer_decisions(history: Iterable[Mapping[str, Any]], *,
                       primaries: Mapping[int, int] | None = None,
                       ) -> tuple[dict[int, dict[str, ReviewerDecision]], dict[int, dict[str, int]],
                                  dict[int, ReviewerDecision]]:
    """Read a stage's decision history (oldest first, as ``Project.decision_history``).

    Returns ``(standing, first_seen, resolutions)``: per record (its duplicate group's primary)
    each actor's standing independent decision, the id of each actor's first decision on it, and
    the standing resolution. An ``undo`` row withdraws its actor's newest standing row on the
    record (independent decision or resolution).
    """
    primaries = primaries or {}
    stacks: dict[tuple[int, str], list[ReviewerDecision]] = {}
    first_seen: dict[int, dict[str, int]] = {}
    for row in history:
        key = primaries.get(int(row["record_id"]), int(row["record_id"]))
        actor = str(row["actor"])
        stack = stacks.setdefault((key, actor), [])
        if row["label"] == "undo":
            if stack:
                stack.pop()
            if not any(not is_resolution(d.note) for d in stack):
                first_seen.get(key, {}).pop(actor, None)
            continue
        decision = ReviewerDecision.from_row(row, key)
        stack.append(decision)
        if not is_resolution(decision.note):
            first_seen.setdefault(key, {}).setdefault(actor, decision.decision_id)
    standing: dict[int, dict[str, ReviewerDecision]] = {}
    resolutions: dict[int, ReviewerDecision] = {}
    for (key, actor), stack in stacks.items():
        own = [d for d in stack if not is_resolution(d.note)]
        if own:
            standing.setdefault(key, {})[actor] = own[-1]
        settled = [d for d in stack if is_resolution(d.note)]
        if settled and (key not in resolutions or settled[-1].decision_id > resolutions[key].decision_id):
            resolutions[key] = settled[-1]
    return standing, first_seen, resolutions


def ai_screening_labels(ai_decisions: Mapping[int, str], scores: Mapping[int, float | None]) -> dict[int, str]:
    """The AI's label per record when it acts as the second reviewer: its own decision (an
    unattended AI decision, or the decision its verdicts settle) where it has one, else
    ``include`` when its assessment's score is above 0 and ``exclude`` otherwise. Records with
    neither have no AI label."""
    labels: dict[int, str] = {}
    for record_id, score in scores.items():
        if score is not None:
            labels[int(record_id)] = "include" if float(score) > 0 else "exclude"
    for record_id, label in ai_decisions.items():
        labels[int(record_id)] = label
    return labels


def pair_records(history: Iterable[Mapping[str, Any]], *, second: str = "human",
                 ai_labels: Mapping[int, str] | None = None,
                 primaries: Mapping[int, int] | None = None) -> dict[int, DualRecord]:
    """Every record with at least one decision (or, with the AI as second reviewer, an AI
    label), paired for dual review.

    ``second="human"``: the first and second reviewers are the first two people to decide the
    record. ``second="ai"``: the first reviewer is the first person to decide it, the second the
    AI's label from ``ai_labels`` (stored AI decisions in the history are then not counted as a
    person's decision; other people's decisions go to ``others``).
    """
    if second not in ("human", "ai"):
        raise ValueError(f"second must be 'human' or 'ai' (got {second!r})")
    standing, first_seen, resolutions = reviewer_decisions(history, primaries=primaries)
    out: dict[int, DualRecord] = {}
    keys = set(standing) | set(resolutions) | (set(ai_labels or {}) if second == "ai" else set())
    for key in sorted(keys):
        mine = standing.get(key, {})
        seen = first_seen.get(key, {})
        people = sorted((d for d in mine.values() if d.actor_kind != "ai"),
                        key=lambda d: (seen.get(d.actor, d.decision_id), d.decision_id))
        item = DualRecord(record_id=key, resolution=resolutions.get(key))
        if second == "human":
            if people:
                item.first = people[0]
            if len(people) > 1:
                item.second = people[1]
            item.others = people[2:]
        else:
            if people:
                item.first = people[0]
            item.others = people[1:]
            label = (ai_labels or {}).get(key)
            if label is not None:
                item.second = ReviewerDecision(record_id=key, actor=AI_REVIEWER, actor_kind="ai", label=label)
        if item.first is None and item.second is None and item.resolution is None:
            continue
        out[key] = item
    return out


@dataclass(frozen=True)
class Agreement:
    """Agreement of the first and second reviewers over the records both decided."""

    n: int
    agreed: int
    observed: float | None
    """Raw agreement (p_o), ``None`` when ``n`` is 0."""
    expected: float | None
    """Chance agreement from the raters' marginals (p_e)."""
    kappa: float | None
    """Cohen's kappa; ``None`` when ``n`` is 0 or ``p_e`` is 1."""
    labels: tuple[str, ...] = ()
    table: dict[tuple[str, str], int] = field(default_factory=dict)
    """``{(first label, second label): count}``."""

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "agreed": self.agreed, "observed": self.observed, "expected": self.expected,
                "kappa": self.kappa, "table": {f"{a}|{b}": c for (a, b), c in sorted(self.table.items())}}


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Cohen's kappa of two raters' labels (any label set; categories are unordered)."""
    n = len(pairs)
    table = Counter(pairs)
    labels = tuple(sorted({a for a, _ in pairs} | {b for _, b in pairs}))
    if n == 0:
        return Agreement(0, 0, None, None, None, labels, {})
    agreed = sum(c for (a, b), c in table.items() if a == b)
    observed = agreed / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in labels) / (n * n)
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(n, agreed, observed, expected, kappa, labels, dict(table))


def agreement(records: Iterable[DualRecord]) -> Agreement:
    """Cohen's kappa and raw agreement of first vs second reviewer, over records both decided."""
    pairs = [(r.first.label, r.second.label) for r in records if r.first is not None and r.second is not None]
    return cohen_kappa(pairs)
