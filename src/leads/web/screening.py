"""What the screening page shows and does, over :mod:`leads.screen.workflow` and the project.

* The record: the first in the workflow's ranking (active learning once a person has found a
  relevant record, zero-shot from the question and the AI verdicts before) that no other
  reviewer has open right now (``next_record(skip=...)``), so a team screening at the same time
  does not see the same record twice. A record can also be asked for by id (after an undo, or from a link).
* The AI panel: the newest assessment of the record under the current criteria (else an older
  one, marked stale), each criterion's verdict with its rationale and evidence sentences
  highlighted in the text by their offsets. A reviewer can switch the panel off; their
  decisions are then stored with ``ai_assisted = False``, so AI-assisted and unassisted
  screening can be compared as in the LEADS user study.
* Decisions: include / exclude / maybe with criteria as reasons (``E1``, ``I2`` or their numbers),
  the seconds from showing the record to deciding, the reviewer as actor; undo withdraws the
  reviewer's newest standing decision.
* Dual review (:mod:`leads.web.dual`): the record comes from the reviewer's own queue (the
  records they have not decided), the card shows only their own decision, and with the AI as
  the second reviewer the AI panel is off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from leads.errors import NotFoundError
from leads.project import Project
from leads.records import Record
from leads.screen import workflow as w
from leads.web.dual import next_for_reviewer, reviewer_queue
from leads.web.highlight import highlight, split_spans
from leads.web.store import DualSetting, WorkspaceError

__all__ = [
    "LABELS",
    "ClaimBoard",
    "ScreenView",
    "VerdictView",
    "assessment_rows",
    "record_decision",
    "screen_view",
    "undo_last",
]

STAGE = "title_abstract"
LABELS = ("include", "exclude", "maybe")
MAX_SECONDS = 24 * 3600.0
CLAIM_S = 300.0


class ClaimBoard:
    """Which reviewer has which record open (in memory, per server), so that reviewers
    screening at the same time are shown different records. A claim lapses after five minutes."""

    def __init__(self, ttl: float = CLAIM_S) -> None:
        self.ttl = ttl
        self._claims: dict[tuple[str, int], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def claim(self, project: str, record_id: int, user: str) -> None:
        with self._lock:
            self._claims[(project, record_id)] = (user, time.monotonic() + self.ttl)

    def release(self, project: str, record_id: int, user: str) -> None:
        with self._lock:
            holder = self._claims.get((project, record_id))
            if holder is not None and holder[0] == user:
                del self._claims[(project, record_id)]

    def held_by_others(self, project: str, user: str) -> set[int]:
        now = time.monotonic()
        with self._lock:
            expired = [key for key, (_, until) in self._claims.items() if until < now]
            for key in expired:
                del self._claims[key]
            return {rid for (slug, rid), (holder, _) in self._claims.items() if slug == project and holder != user}


@dataclass
class VerdictView:
    number: int
    label: str
    kind: str
    text: str
    eligibility: str
    rationale: str
    quotes: list[str]
    unsupported: list[str]

    @property
    def against(self) -> bool:
        """The verdict counts against including the record."""
        return (self.kind == "exclusion" and self.eligibility == "YES") or \
            (self.kind == "inclusion" and self.eligibility == "NO")

    @property
    def supports(self) -> bool:
        return self.kind == "inclusion" and self.eligibility == "YES"


@dataclass
class ScreenView:
    """Everything the screening card shows."""

    record_id: int
    record: Record
    criteria: list[w.CriterionInfo]
    title_html: Markup
    abstract_html: Markup
    ai_on: bool
    assessment: dict[str, Any] | None
    """engine, model, call_id, created_at, criteria_version, score, stale."""
    verdicts: list[VerdictView]
    suggestion: tuple[str, list[str]] | None
    dropped_evidence: int
    ai_decision: dict[str, Any] | None
    standing: dict[str, Any] | None
    """The record's standing decision (a record shown again after an undo has none)."""
    score: float | None
    mode: str
    screened: int
    remaining: int
    relevant_found: int
    assessed: int
    stopping: Any
    explicit: bool = False
    notice: str | None = None
    duplicates: list[int] = field(default_factory=list)
    dual: str | None = None
    """Dual screening: ``human`` or ``ai`` (the second reviewer); ``None`` in single review."""

    @property
    def total(self) -> int:
        return self.screened + self.remaining

    @property
    def reason_options(self) -> list[tuple[int, w.CriterionInfo]]:
        return list(enumerate(self.criteria, 1))


def _members(project: Project, record_id: int) -> tuple[int, list[int]]:
    primaries = project.duplicate_primaries()
    key = primaries.get(record_id, record_id)
    members = sorted({key, record_id, *(m for m, p in primaries.items() if p == key)})
    return key, members


def assessment_rows(project: Project, record_id: int) -> list[dict[str, Any]]:
    """Every stored title/abstract assessment of a record or any member of its duplicate group."""
    _, members = _members(project, record_id)
    return project.assessments(stage=STAGE, record_ids=members)


def _pick_assessment(rows: Sequence[dict[str, Any]], record_id: int,
                     version: int | None) -> tuple[dict[str, Any] | None, bool]:
    """The newest assessment under the current criteria (the record's own before a duplicate's),
    else the newest under any version (stale)."""
    current = [r for r in rows if version is not None and r["criteria_version"] == version]
    if current:
        own = [r for r in current if r["record_id"] == record_id]
        return (own or current)[-1], False
    if rows:
        return rows[-1], True
    return None, False


def _verdicts(row: dict[str, Any], criteria: Sequence[w.CriterionInfo]) -> list[VerdictView]:
    out = []
    for v in row["verdicts"] or []:
        i = int(v["criterion"])
        c = criteria[i] if 0 <= i < len(criteria) else None
        out.append(VerdictView(
            number=i + 1, label=c.label if c else f"#{i + 1}", kind=c.kind if c else "inclusion",
            text=c.text if c else "(criterion not in this version)", eligibility=str(v["eligibility"]),
            rationale=str(v.get("rationale") or ""),
            quotes=[str(e.get("quote", "")) for e in v.get("evidence") or []],
            unsupported=[str(q) for q in v.get("unsupported_quotes") or []]))
    return out


def screen_view(project: Project, *, slug: str, user: str, ai_on: bool, claims: ClaimBoard,
                record_id: int | None = None, notice: str | None = None,
                dual: DualSetting | None = None) -> ScreenView | None:
    """The card for the next record (or ``record_id``); ``None`` when nothing is left to screen.

    With ``dual`` (dual screening on), the record comes from the reviewer's own queue, the card
    shows only their own decision, and with the AI as second reviewer the AI panel is off."""
    if dual is not None and dual.enabled:
        return _dual_view(project, slug=slug, user=user, ai_on=ai_on and dual.second != "ai", claims=claims,
                          record_id=record_id, notice=notice, second=dual.second)
    score: float | None
    if record_id is None:
        held = claims.held_by_others(slug, user)
        nxt = w.next_record(project, skip=held)
        if nxt is None and held:  # everything left is open elsewhere: show the best anyway
            nxt = w.next_record(project)
        if nxt is None:
            return None
        rid, score, explicit = nxt.record_id, nxt.score, False
    else:
        nxt = w.next_record(project)
        key, _ = _members(project, record_id)
        project.record(key)  # NotFoundError names the record
        rid, score, explicit = key, (nxt.score if nxt and nxt.record_id == key else None), True
    stored = project.record(rid)
    claims.claim(slug, rid, user)
    panel = _panel(project, rid, stored.record, ai_on)
    standing = project.current_decisions(STAGE).get(rid)
    stopping = nxt.stopping if nxt is not None else w.stopping_estimate(project)
    screened = nxt.screened if nxt is not None else stopping.screened
    remaining = nxt.remaining if nxt is not None else 0
    _, members = _members(project, rid)
    return ScreenView(
        record_id=rid, record=stored.record, **panel,
        ai_on=ai_on,
        ai_decision=(nxt.ai_decision if nxt is not None and nxt.record_id == rid else None),
        standing=standing, score=score, mode=nxt.mode if nxt is not None else "finished",
        screened=screened, remaining=remaining, relevant_found=stopping.relevant_found,
        assessed=nxt.assessed if nxt is not None else 0, stopping=stopping, explicit=explicit, notice=notice,
        duplicates=[m for m in members if m != rid],
    )


def _dual_view(project: Project, *, slug: str, user: str, ai_on: bool, claims: ClaimBoard,
               record_id: int | None, notice: str | None, second: str) -> ScreenView | None:
    queue = reviewer_queue(project, user)
    if record_id is None:
        rid = next_for_reviewer(queue, claims.held_by_others(slug, user))
        if rid is None:
            return None
        explicit = False
    else:
        rid, _ = _members(project, record_id)
        project.record(rid)  # NotFoundError names the record
        explicit = True
    stored = project.record(rid)
    claims.claim(slug, rid, user)
    panel = _panel(project, rid, stored.record, ai_on)
    own = queue.own.get(rid)
    standing = None
    if own is not None:
        standing = {"id": own.decision_id, "label": own.label, "actor": own.actor, "reasons": list(own.reasons)}
    _, members = _members(project, rid)
    return ScreenView(
        record_id=rid, record=stored.record, **panel, ai_on=ai_on, ai_decision=None, standing=standing,
        score=queue.scores.get(rid), mode=queue.mode, screened=queue.screened,
        remaining=len(queue.order), relevant_found=queue.relevant_found, assessed=queue.assessed,
        stopping=queue.stopping, explicit=explicit, notice=notice,
        duplicates=[m for m in members if m != rid], dual=second,
    )


def _panel(project: Project, rid: int, record: Record, ai_on: bool) -> dict[str, Any]:
    """The AI panel's part of the card: criteria, verdicts, highlighted title and abstract."""
    criteria = w.current_criteria(project)
    version = criteria[0].version if criteria else None
    row, stale = _pick_assessment(assessment_rows(project, rid), rid, version)
    verdicts: list[VerdictView] = []
    assessment = None
    suggestion = None
    title_spans: list[Any] = []
    abstract_spans: list[Any] = []
    dropped = 0
    if row is not None:
        row_criteria = criteria if not stale else w.current_criteria(project, int(row["criteria_version"]))
        verdicts = _verdicts(row, row_criteria)
        assessment = {k: row.get(k) for k in ("engine", "model", "call_id", "created_at", "criteria_version",
                                               "score", "record_id")}
        assessment["stale"] = stale
        if not stale and criteria:
            try:
                suggestion = w.ai_decision_for(row["verdicts"] or [], criteria)
            except (IndexError, KeyError, ValueError):
                suggestion = None
        if ai_on:
            evidence = []
            for v in row["verdicts"] or []:
                i = int(v["criterion"])
                label = row_criteria[i].label if 0 <= i < len(row_criteria) else f"#{i + 1}"
                for e in v.get("evidence") or []:
                    evidence.append((label, int(e.get("start", -1)), int(e.get("end", -1)), str(e.get("quote", ""))))
            # An assessment of a duplicate was made on that record's text, not this one's.
            if int(row["record_id"]) == rid:
                title_spans, abstract_spans, dropped = split_spans(record.title, record.abstract, evidence)
            else:
                dropped = len(evidence)
    return {"criteria": criteria, "title_html": highlight(record.title, title_spans),
            "abstract_html": highlight(record.abstract, abstract_spans), "assessment": assessment,
            "verdicts": verdicts, "suggestion": suggestion, "dropped_evidence": dropped}


def parse_seconds(value: str | None) -> float | None:
    """The client's measurement of the time on the record, if it is a sane number."""
    if value is None or not str(value).strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return round(min(seconds, MAX_SECONDS), 3)


def record_decision(project: Project, *, record_id: int, label: str, reasons: Sequence[str],
                    seconds: float | None, user: str, ai_on: bool) -> dict[str, Any]:
    """Store a reviewer's decision; returns the stored row.

    ``ai_assisted`` is true only when the reviewer had the AI panel on and the record had an
    assessment to show, which is what a comparison of assisted and unassisted screening needs
    (:func:`leads.screen.workflow.decide` marks any record with an assessment as assisted).
    """
    if label not in LABELS:
        raise WorkspaceError(f"a decision is one of {', '.join(LABELS)} (got {label!r})")
    criteria = w.current_criteria(project)
    refs = [r for r in reasons if r and r.strip()]
    resolved = list(dict.fromkeys(w.resolve_criterion(criteria, ref).as_reason() for ref in refs))
    project.record(record_id)
    project.ensure_user(user)
    assisted = ai_on and bool(assessment_rows(project, record_id))
    decision_id = project.decide(record_id, label, stage=STAGE, reasons=resolved, seconds_spent=seconds,
                                 actor=user, actor_kind="human", ai_assisted=assisted)
    rows = [r for r in project.decision_history(STAGE, record_ids=[record_id]) if r["id"] == decision_id]
    if not rows:
        raise NotFoundError(f"decision {decision_id} was not stored")
    return rows[0]


def undo_last(project: Project, user: str) -> tuple[int, dict[str, Any]] | None:
    """Withdraw ``user``'s newest decision that still stands; returns (record id shown again,
    the decision withdrawn), or ``None`` when they have none standing."""
    primaries = project.duplicate_primaries()
    current = project.current_decisions(STAGE)
    for row in reversed(project.decision_history(STAGE)):
        if row["actor"] != user or row["actor_kind"] != "human" or row["label"] == "undo":
            continue
        key = primaries.get(int(row["record_id"]), int(row["record_id"]))
        standing = current.get(key)
        if standing is not None and standing["id"] == row["id"]:
            project.decide(int(row["record_id"]), "undo", stage=STAGE, actor=user, actor_kind="human",
                           note=f"undo of decision {row['id']}")
            return key, row
    return None
