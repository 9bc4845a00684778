"""Full-text eligibility assessment in a project: the ``eligibility`` task on attached full texts.

::

    from leads.screen.workflow import run_screening

    run = run_screening(project, "classic", stage="full_text", auto_decide=True)

**Which records.** One per duplicate group, whose standing title/abstract decision is ``include``
or ``maybe`` (a person's decision wins; where no person decided, an unattended AI decision
counts), that has a full text attached (to any member of the group; the newest document is
used) and on which no person has made a full-text decision yet. A person's full-text decision is
never overwritten or assessed again.

**What the engine reads** (:func:`fulltext_input`): the title, then the document's abstract and
methods-type sections (:mod:`leads.documents.sections`) in document order, verbatim, within a
character budget (:data:`CLASSIC_BUDGET` for the classic engine, whose design classifier was
trained on abstracts and turns vague on long texts and which must stay at a few seconds per
paper; :data:`MODEL_BUDGET` for model servers, at most the engine's own ``text_budget``). A
document without typed abstract or methods sections (plain text, an unstructured PDF) is read
from its beginning, within the same budget.

**Evidence.** The task's evidence offsets are into the assessed text (title, blank line, body).
Every selected piece is a verbatim slice of the document's text, so each evidence quote is also
mapped back into the document: the stored verdicts carry ``document_id`` and each evidence item
``document_start``/``document_end`` with ``document.text[document_start:document_end] ==
quote`` (``None`` for a quote in a title that is not part of the document's text).

**Resumable.** Calls go through the batch runner under a batch named by the criteria version,
engine, model and budget; the item key names the record and the document, so a re-run skips
what is done, a new document (or criteria version, model, budget) is assessed again, and calls
that finished without a stored assessment are recovered from the call log.

**Unattended decisions** (``auto_decide``): the title/abstract rule (:func:`ai_decision_for`),
stored at ``stage="full_text"`` with actor ``ai:<engine>``, ``actor_kind="ai"``, the call id
and the failed criteria as reasons.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from leads.documents.model import Document
from leads.engines._base import Engine, TaskResult
from leads.engines.batch import BatchReport, run_batch
from leads.errors import EngineError, ProjectError
from leads.project import Project
from leads.project import schema as t
from leads.screen.workflow import (
    AI_ACTOR_PREFIX,
    ProgressCallback,
    ScreeningRun,
    ai_decision_for,
    current_criteria,
    finished_calls,
    open_engine,
)
from leads.tasks import TASKS
from leads.tasks.eligibility import Criterion, EligibilityInput, EligibilityOutput

__all__ = [
    "CLASSIC_BUDGET",
    "FULL_TEXT",
    "MODEL_BUDGET",
    "Candidates",
    "FullTextInput",
    "FullTextRun",
    "default_budget",
    "fulltext_batch_id",
    "fulltext_candidates",
    "fulltext_input",
    "run_fulltext_screening",
]

FULL_TEXT = "full_text"
#: Characters of body text the classic engine reads: the abstract and the start of the methods.
#: Its study-design classifier was trained on abstracts; on the remdesivir trials it stays sure
#: of "randomised controlled trial" up to about this length and turns to PARTIAL on whole papers.
CLASSIC_BUDGET = 6_000
#: Characters of body text a model server reads (at most the engine's own text_budget).
MODEL_BUDGET = 20_000
#: Body section types assessed, in order of priority when the budget runs out.
SECTION_PRIORITY = ("abstract", "methods")
MIN_PIECE = 200
"""A piece cut by the budget to fewer characters than this is left out instead."""

_KEY = re.compile(r"^record-(\d+)-doc-(\d+)$")


# ---------------------------------------------------------------------------------------------
# The text assessed
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A verbatim slice of the document in the assessed content: ``content[start:start+length]
    == document.text[document_start:document_start+length]``."""

    start: int
    document_start: int
    length: int


@dataclass
class FullTextInput:
    """The eligibility input built from a document and where each part of it comes from."""

    document_id: int
    input: EligibilityInput
    pieces: list[Piece]
    sections: list[str]
    """Headings (or section types) of the sections read, in document order."""
    truncated: bool
    """Whether the budget left part of the selected sections out."""

    def to_document(self, start: int, end: int) -> tuple[int, int] | None:
        """The document span of the content span ``[start, end)``, or ``None`` when it is not
        inside one verbatim piece (the title from the record, a separator between pieces)."""
        starts = [p.start for p in self.pieces]
        i = bisect.bisect_right(starts, start) - 1
        if i < 0:
            return None
        piece = self.pieces[i]
        if not (piece.start <= start and end <= piece.start + piece.length):
            return None
        shift = piece.document_start - piece.start
        return start + shift, end + shift

    def map_verdicts(self, verdicts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The verdicts as stored: each with ``document_id``, each evidence item with its span in
        the document (``document_start``/``document_end``, ``None`` when not in the document)."""
        out: list[dict[str, Any]] = []
        for v in verdicts:
            evidence = []
            for e in v.get("evidence") or []:
                span = self.to_document(int(e["start"]), int(e["end"]))
                evidence.append({**e, "document_start": span[0] if span else None,
                                 "document_end": span[1] if span else None})
            out.append({**v, "evidence": evidence, "document_id": self.document_id})
        return out


def _outermost(document: Document, kinds: Sequence[str]) -> list[tuple[int, int, str, str]]:
    """``(start, end, type, heading)`` of the outermost sections of these types, without overlaps."""
    spans: list[tuple[int, int, str, str]] = []
    for s in document.sections:
        if s.type not in kinds:
            continue
        parent = document.sections[s.parent] if s.parent is not None and s.parent < len(document.sections) else None
        if parent is not None and parent.type == s.type:
            continue
        spans.append((s.start, s.end, s.type, s.title or s.type))
    spans.sort()
    merged: list[tuple[int, int, str, str]] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], span[1]), last[2], last[3])
        else:
            merged.append(span)
    return merged


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(document: Document, start: int, end: int, budget: int) -> int:
    """Where to end a slice starting at ``start`` so it has at most ``budget`` characters: after
    the last whole sentence that fits, else at a space."""
    limit = start + budget
    if end <= limit:
        return end
    ends = [s.end for s in document.sentences if start < s.end <= limit]
    if ends and ends[-1] - start >= budget // 2:
        return ends[-1]
    space = document.text.rfind(" ", start, limit)
    return space if space > start else limit


def fulltext_input(document: Document, document_id: int, criteria: Sequence[Criterion], *,
                   title: str | None = None, budget: int = CLASSIC_BUDGET) -> FullTextInput:
    """The eligibility input for a full text: the title (``title``, else the document's), then
    its abstract and methods-type sections verbatim, in document order, separated by blank
    lines, at most ``budget`` characters of them (the abstract first, then the methods in
    document order). Without such sections, the document from its beginning."""
    if budget < MIN_PIECE:
        raise ProjectError(f"the full-text budget must be at least {MIN_PIECE} characters (got {budget})")
    text = document.text
    chosen: list[tuple[int, int, str]] = []
    truncated = False
    left = budget
    spans = _outermost(document, SECTION_PRIORITY)
    if not spans:
        spans = [(0, len(text), "text", "text")]
    for kind in (*SECTION_PRIORITY, "text"):
        for start, end, span_kind, heading in spans:
            if span_kind != kind:
                continue
            start, end = _strip(text, start, end)
            if end <= start:
                continue
            if left < MIN_PIECE:
                truncated = True
                continue
            cut = _cut(document, start, end, left)
            start, cut = _strip(text, start, cut)
            if cut < end:
                truncated = True
            if cut - start < min(MIN_PIECE, end - start):
                continue
            chosen.append((start, cut, heading))
            left -= cut - start + 2
    chosen.sort()
    head = (title or document.title or "").strip()[:2000] or None
    body_offset = len(head) + 2 if head else 0
    pieces: list[Piece] = []
    parts: list[str] = []
    position = body_offset
    for start, end, _heading in chosen:
        pieces.append(Piece(start=position, document_start=start, length=end - start))
        parts.append(text[start:end])
        position += end - start + 2
    body = "\n\n".join(parts)
    inp = EligibilityInput(title=head, text=body, criteria=list(criteria))
    return FullTextInput(document_id=document_id, input=inp, pieces=pieces,
                         sections=[heading for _s, _e, heading in chosen], truncated=truncated)


# ---------------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------------


@dataclass
class _Standing:
    human: dict[int, dict[str, Any]] = field(default_factory=dict)
    ai: dict[int, dict[str, Any]] = field(default_factory=dict)

    def label(self, key: int) -> str | None:
        row = self.human.get(key) or self.ai.get(key)
        return None if row is None else str(row["label"])


def _standing(project: Project, stage: str, primaries: Mapping[int, int]) -> _Standing:
    """The standing decision per duplicate-group primary, a person's and the AI's apart."""
    out = _Standing()
    for row in project.decision_history(stage):
        key = primaries.get(int(row["record_id"]), int(row["record_id"]))
        side = out.ai if row["actor_kind"] == "ai" else out.human
        if row["label"] == "undo":
            side.pop(key, None)
        else:
            side[key] = row
    return out


@dataclass
class Candidates:
    """Records that go on to full text, the newest document of each, and those without one."""

    documents: dict[int, int]
    """``{primary record id: newest document id}`` of the records to assess."""
    no_document: list[int]
    decided_by_person: list[int]
    """Records that went on to full text where a person has already decided at full text."""
    full_text: _Standing


def fulltext_candidates(project: Project) -> Candidates:
    """The records that go on to full-text assessment (see the module docstring)."""
    from leads.documents.store import list_documents

    primaries = project.duplicate_primaries()
    title_abstract = _standing(project, "title_abstract", primaries)
    full_text = _standing(project, FULL_TEXT, primaries)
    newest: dict[int, int] = {}
    for doc in list_documents(project):
        if doc.record_id is not None:
            key = primaries.get(doc.record_id, doc.record_id)
            newest[key] = max(newest.get(key, 0), doc.id)
    keys = sorted(k for k in set(title_abstract.human) | set(title_abstract.ai)
                  if title_abstract.label(k) in ("include", "maybe"))
    documents: dict[int, int] = {}
    no_document: list[int] = []
    by_person: list[int] = []
    for key in keys:
        if key in full_text.human:
            by_person.append(key)
        elif key in newest:
            documents[key] = newest[key]
        else:
            no_document.append(key)
    return Candidates(documents=documents, no_document=no_document, decided_by_person=by_person,
                      full_text=full_text)


def fulltext_batch_id(criteria_version: int, engine: Engine, budget: int) -> str:
    """The batch a full-text run's calls go to: one per criteria version, engine, model and budget."""
    digest = hashlib.sha256(f"{engine.name}\x00{engine.model}\x00{budget}".encode()).hexdigest()[:10]
    return f"screen-ft-c{criteria_version}-{engine.name[:24]}-{digest}"


def default_budget(engine: Engine) -> int:
    """The body budget for an engine: :data:`CLASSIC_BUDGET` for the classic engine, else
    :data:`MODEL_BUDGET` capped by the engine's own ``text_budget`` (less room for the title)."""
    if engine.name == "classic":
        return CLASSIC_BUDGET
    own = getattr(engine, "text_budget", None)
    if isinstance(own, int) and own > 0:
        return max(MIN_PIECE, min(MODEL_BUDGET, own - 2_100))
    return MODEL_BUDGET


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class FullTextRun(ScreeningRun):
    """What one full-text :func:`run_fulltext_screening` call did."""

    stage: str = FULL_TEXT
    budget: int = CLASSIC_BUDGET
    """Characters of body text (abstract and methods) each full text was read up to."""
    no_document: list[int] = field(default_factory=list)
    """Records that went on to full text but have no document attached."""
    decided_by_person: list[int] = field(default_factory=list)
    """Records a person has already decided at full text: not assessed."""

    def summary(self) -> str:
        lines = [f"full text, criteria version {self.criteria_version}, engine {self.engine} ({self.model}): "
                 f"{self.assessed} full texts assessed in {self.elapsed:.1f} s (up to {self.budget:,} "
                 "characters of abstract and methods each)"]
        if self.recovered:
            lines.append(f"  {self.recovered} assessments recovered from an interrupted run")
        if self.already_assessed:
            lines.append(f"  {self.already_assessed} full texts were already assessed")
        if self.decided_by_person:
            lines.append(f"  {len(self.decided_by_person)} records already decided at full text by a person")
        if self.no_document:
            lines.append(f"  {len(self.no_document)} records that went on to full text have no document "
                         "attached (attach them with `leads documents add`)")
        if self.ai_decisions:
            lines.append(f"  {self.ai_decisions} unattended AI full-text decisions recorded (actor ai:{self.engine})")
        lines.extend(f"  failed {f.item_key}: {f.error_type}: {f.error}" for f in self.failed)
        lines.append(f"  {self.remaining} full texts still to assess" if self.remaining else
                     "  every full text to assess is assessed")
        return "\n".join(lines)


def _titles(project: Project, record_ids: Sequence[int]) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    wanted = list(record_ids)
    with project.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            rows = conn.execute(sa.select(t.records.c.id, t.records.c.title)
                                .where(t.records.c.id.in_(wanted[i:i + 500])))
            out.update({int(rid): title for rid, title in rows})
    return out


def _key(record_id: int, document_id: int) -> str:
    return f"record-{record_id}-doc-{document_id}"


class _FullTextRecorder:
    """Stores full-text assessments (and unattended AI decisions) as items finish."""

    def __init__(self, project: Project, *, criteria: Sequence[Any], version: int, batch_id: str,
                 budget: int, auto_decide: bool, candidates: Candidates) -> None:
        self.project = project
        self.criteria = list(criteria)
        self.version = version
        self.batch_id = batch_id
        self.budget = budget
        self.auto_decide = auto_decide
        self.candidates = candidates
        self.primaries = project.duplicate_primaries()
        self.inputs: dict[str, FullTextInput] = {}
        self._titles: dict[int, str | None] = {}
        self.assessed = 0
        self.decisions = 0

    def build(self, record_id: int, document_id: int) -> FullTextInput:
        from leads.documents.store import get_document

        key = _key(record_id, document_id)
        found = self.inputs.get(key)
        if found is not None:
            return found
        if record_id not in self._titles:
            self._titles.update(_titles(self.project, [record_id]))
        made = fulltext_input(get_document(self.project, document_id), document_id,
                              [Criterion(text=c.text, kind=c.kind) for c in self.criteria],
                              title=self._titles.get(record_id), budget=self.budget)
        self.inputs[key] = made
        return made

    def _store(self, key: str, output: Mapping[str, Any], call_id: int | None, engine: str) -> None:
        match = _KEY.match(key)
        if match is None:
            raise ProjectError(f"unexpected item key {key!r} in full-text batch {self.batch_id}")
        record_id, document_id = int(match.group(1)), int(match.group(2))
        made = self.build(record_id, document_id)
        verdicts = made.map_verdicts(output["verdicts"])
        self.project.add_assessments([{
            "record_id": record_id, "stage": FULL_TEXT, "criteria_version": self.version, "engine": engine,
            "call_id": call_id, "verdicts": verdicts, "score": output.get("score"),
        }])
        self.inputs.pop(key, None)
        if not self.auto_decide:
            return
        primary = self.primaries.get(record_id, record_id)
        if primary in self.candidates.full_text.human:
            return
        decision = ai_decision_for(verdicts, self.criteria)
        standing = self.candidates.full_text.ai.get(primary)
        if decision is None or (standing is not None and standing["label"] == decision[0]
                                and standing.get("criteria_version") == self.version):
            return
        label, reasons = decision
        self.project.decide(record_id, label, stage=FULL_TEXT, reasons=reasons,
                            actor=f"{AI_ACTOR_PREFIX}{engine}", actor_kind="ai", call_id=call_id,
                            criteria_version=self.version,
                            note=f"unattended AI decision from the per-criterion assessment of full text "
                                 f"(document {document_id})")
        self.candidates.full_text.ai[primary] = {"label": label, "criteria_version": self.version}
        self.decisions += 1

    def on_result(self, key: str, result: TaskResult[EligibilityOutput]) -> None:
        self._store(key, result.output.model_dump(mode="json"), result.call_id, result.engine)
        self.assessed += 1

    def done(self) -> set[tuple[int, int]]:
        """``(record id, document id)`` pairs assessed in this batch."""
        out: set[tuple[int, int]] = set()
        for a in self.project.assessments(stage=FULL_TEXT, criteria_version=self.version):
            if a["batch_id"] != self.batch_id:
                continue
            verdicts = a["verdicts"] or []
            if verdicts and verdicts[0].get("document_id") is not None:
                out.add((int(a["record_id"]), int(verdicts[0]["document_id"])))
        return out

    def recover(self) -> int:
        """Store assessments for calls of this batch that finished without one."""
        newest = finished_calls(self.project, self.batch_id)
        if not newest:
            return 0
        done = self.done()
        recovered = 0
        for key, row in newest.items():
            match = _KEY.match(key)
            if match is None or (int(match.group(1)), int(match.group(2))) in done:
                continue
            self._store(key, row.parsed, int(row.id), row.engine)
            recovered += 1
        return recovered


def run_fulltext_screening(
    project: Project,
    engine: str | Engine | None = None,
    *,
    limit: int | None = None,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    auto_decide: bool = False,
    budget: int | None = None,
    engine_options: Mapping[str, Any] | None = None,
    progress: bool | ProgressCallback | None = False,
) -> FullTextRun:
    """Assess the full texts of the records that went on to full text (see the module docstring).

    ``limit`` caps the records assessed by this call (record order); ``budget`` overrides the
    characters of body text read (:func:`default_budget`).
    """
    if limit is not None and limit < 0:
        raise ProjectError("limit must not be negative")
    started = time.perf_counter()
    criteria = current_criteria(project)
    if not criteria:
        raise ProjectError("the project has no eligibility criteria: set them with `leads criteria set` "
                           "or draft them with `leads criteria generate`")
    version = criteria[0].version
    candidates = fulltext_candidates(project)
    runner, owned = open_engine(project, engine, engine_options)
    try:
        task = TASKS["eligibility"]
        if not runner.supports(task):
            raise EngineError(f"engine {runner.name!r} has no eligibility task")
        size = budget if budget is not None else default_budget(runner)
        batch_id = fulltext_batch_id(version, runner, size)
        recorder = _FullTextRecorder(project, criteria=criteria, version=version, batch_id=batch_id, budget=size,
                                     auto_decide=auto_decide, candidates=candidates)
        recovered = recorder.recover()
        done = {(recorder.primaries.get(r, r), d) for r, d in recorder.done()}
        wanted = sorted(candidates.documents.items())
        todo = [(rid, doc) for rid, doc in wanted if (rid, doc) not in done]
        already = len(wanted) - len(todo)
        selected = todo if limit is None else todo[:limit]

        def items() -> Iterator[tuple[str, EligibilityInput]]:
            for rid, doc in selected:
                yield _key(rid, doc), recorder.build(rid, doc).input

        workers = concurrency or (1 if runner.name == "classic" else 4)
        report: BatchReport | None = None
        try:
            if selected:
                report = run_batch(runner, task, items(), batch_id=batch_id, concurrency=workers,
                                   rate_limit=rate_limit, on_result=recorder.on_result, progress=progress,
                                   total=len(selected))
        finally:
            recovered += recorder.recover()
        project.log("screen", {"stage": FULL_TEXT, "criteria_version": version, "engine": runner.name,
                               "model": runner.model, "batch_id": batch_id, "budget": size,
                               "assessed": recorder.assessed, "recovered": recovered,
                               "failed": len(report.failed) if report else 0, "ai_decisions": recorder.decisions})
        finished = {(recorder.primaries.get(r, r), d) for r, d in recorder.done()}
        remaining = sum(1 for pair in wanted if pair not in finished)
        return FullTextRun(
            criteria_version=version, engine=runner.name, model=runner.model, batch_id=batch_id,
            to_assess=len(todo), assessed=recorder.assessed, recovered=recovered, already_assessed=already,
            no_text=[], remaining=remaining, failed=list(report.failed) if report else [],
            ai_decisions=recorder.decisions, elapsed=time.perf_counter() - started, report=report,
            stage=FULL_TEXT, budget=size, no_document=candidates.no_document,
            decided_by_person=candidates.decided_by_person,
        )
    finally:
        if owned:
            runner.close()
