"""Extraction inside a review project: the four extraction tasks over the included studies.

The Python API behind ``leads extract -p PROJECT``::

    from leads.project import Project
    from leads.extract.project import run_extraction

    with Project.open("remdesivir-review") as project:
        run = run_extraction(project, outcomes=[{
            "outcome": "All-cause mortality", "intervention": "Remdesivir",
            "comparator": "Placebo", "outcome_type": "binary"}])
        print(run.summary())

**Which studies.** A study is included when its standing full-text decision
(:meth:`Project.current_decisions`) is ``include``, or, where no full-text decision stands, its
title/abstract decision is. Decisions count for a duplicate group's primary record, and so do
documents linked to any member of the group; when a study has several documents, the newest one
is read. Included studies without a document (or whose document has no text) are listed as
"no document" and not extracted.

**What is stored.** Every value becomes a row of :meth:`Project.add_extractions` with the
document it was read from, the call-log row that produced it and its evidence: quotes located
in the document's text (``text[start:end] == quote``). A value without a located quote keeps
empty evidence; no quote is ever made up for it. Rows per task:

- ``characteristics``: one row per field (the built-in fields plus the user's), the value a
  string, ``None`` when the paper does not report it;
- ``arms``: one row, field ``arms``, the list of arms (label, type, description, interventions);
- ``participants``: one row per baseline measure and group, field ``"<measure>: <group>"``
  (the number of participants of the whole sample and of each arm, the mean age and the number
  of women of the whole sample), the value ``{"value", "number", "unit", "param_type", "group",
  "note"}``;
- ``results``: one row per outcome, field ``"results: <outcome>"``, the value
  ``ResultsOutput.model_dump(mode="json")`` (rebuild it with ``ResultsOutput.model_validate``).
  The field names the outcome only, so one run asks each outcome name once; the same outcome
  for another pair of arms, asked in a later run, becomes the newer AI proposal of that field
  (both stay in the history).

**Resumable.** Each task runs through :func:`leads.engines.batch.run_batch`, one batch per
task, engine and model; an item is one study (and outcome, or measure) with a key that names
the record, the document and a digest of what was asked, so asking something else (another
field list, another outcome) makes new items while re-running the same extraction does nothing
again. Rows are written as each item finishes; calls that finished without their rows (a run
killed between the call log and the store, or calls still running when a run was interrupted) are
stored from the call log when the interrupted run unwinds, or at the start of the next run.

**Reviewers' values stand.** AI values are proposals; a reviewer's accept, edit or reject is a
new row beside them (:meth:`Project.review_extraction`), and :meth:`Project.extractions` shows
the reviewer's value over any AI proposal, older or newer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from leads.documents.model import Document
from leads.documents.store import get_document, list_documents
from leads.engines._base import Engine, TaskResult
from leads.engines.batch import BatchReport, ItemFailure, batch_results, finished_items, run_batch
from leads.engines.calllog import DatabaseCallLog
from leads.errors import EngineError, NotFoundError, ProjectError
from leads.extract.cli import DEFAULT_FIELDS
from leads.project import Project
from leads.project import schema as t
from leads.tasks import TASKS, Task, TaskInput, TaskOutput
from leads.tasks._base import Evidence
from leads.tasks.extraction import (
    ArmsInput,
    ArmsOutput,
    CharacteristicsInput,
    CharacteristicsOutput,
    FieldSpec,
    Group,
    ParticipantsInput,
    ParticipantsOutput,
    ResultsOutput,
)

__all__ = [
    "BUILTIN_FIELDS",
    "EXTRACTION_TASKS",
    "PARTICIPANT_MEASURES",
    "ExtractionRun",
    "OutcomeSpec",
    "TaskStats",
    "extraction_batch_id",
    "included_studies",
    "run_extraction",
]

EXTRACTION_TASKS: tuple[str, ...] = ("characteristics", "arms", "participants", "results")
#: The study characteristics asked for in every run (``name: description``).
BUILTIN_FIELDS: dict[str, str] = {spec.name: spec.description for spec in map(FieldSpec.parse, DEFAULT_FIELDS)}
#: Baseline measures of the participants task: (measure, param type, unit, per arm or whole sample only).
PARTICIPANT_MEASURES: tuple[tuple[str, str, str, bool], ...] = (
    ("Overall Number of Participants", "COUNT_OF_PARTICIPANTS", "Participants", True),
    ("Age", "MEAN", "years", False),
    ("Sex: Female", "COUNT_OF_PARTICIPANTS", "Participants", False),
)
TOTAL_GROUP = "Total"
MAX_FIELD = 255  # extractions.field is VARCHAR(255)
MAX_CHARACTERISTICS = 60  # CharacteristicsInput.fields

ProgressCallback = Callable[[BatchReport], None]


# ---------------------------------------------------------------------------------------------
# What to extract
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeSpec:
    """One outcome to read the results of, for one intervention/comparator pair."""

    outcome: str
    intervention: str
    comparator: str
    outcome_type: Literal["binary", "continuous"] | None = None

    @classmethod
    def parse(cls, obj: Mapping[str, Any], index: int = 0) -> OutcomeSpec:
        """Validate ``{"outcome", "intervention", "comparator", "outcome_type"}``."""
        if not isinstance(obj, Mapping):
            raise ProjectError(f"outcome {index + 1}: expected an object with outcome, intervention and "
                               f"comparator, got {type(obj).__name__}")
        missing = [k for k in ("outcome", "intervention", "comparator")
                   if not isinstance(obj.get(k), str) or not obj[k].strip()]
        if missing:
            raise ProjectError(f"outcome {index + 1}: missing {', '.join(missing)}")
        unknown = sorted(set(obj) - {"outcome", "intervention", "comparator", "outcome_type"})
        if unknown:
            raise ProjectError(f"outcome {index + 1}: unknown key(s) {', '.join(unknown)}")
        kind = obj.get("outcome_type")
        if kind not in (None, "binary", "continuous"):
            raise ProjectError(f"outcome {index + 1}: outcome_type must be binary, continuous or null (got {kind!r})")
        spec = cls(outcome=" ".join(obj["outcome"].split()), intervention=" ".join(obj["intervention"].split()),
                   comparator=" ".join(obj["comparator"].split()), outcome_type=kind)
        if len(spec.field) > MAX_FIELD:
            raise ProjectError(f"outcome {index + 1}: the outcome name is longer than "
                               f"{MAX_FIELD - len('results: ')} characters")
        if len(spec.intervention) > 300 or len(spec.comparator) > 300:
            raise ProjectError(f"outcome {index + 1}: intervention and comparator names are at most 300 characters")
        return spec

    @property
    def field(self) -> str:
        """The extraction field its results are stored under."""
        return f"results: {self.outcome}"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:12]


def _field_specs(fields: Mapping[str, str] | None) -> list[FieldSpec]:
    """The built-in fields, then the user's; a user field named like a built-in replaces it."""
    merged: dict[str, FieldSpec] = {}
    for name, description in BUILTIN_FIELDS.items():
        merged[name.casefold()] = FieldSpec(name=name, description=description)
    for name, description in (fields or {}).items():
        if not isinstance(name, str) or not name.strip():
            raise ProjectError("a characteristics field needs a name")
        if not isinstance(description, str):
            raise ProjectError(f"field {name!r}: the description must be a string")
        clean = " ".join(name.split())
        if len(clean) > 200 or len(description) > 1000:
            raise ProjectError(f"field {clean[:40]!r}: names are at most 200 and descriptions 1000 characters")
        merged[clean.casefold()] = FieldSpec(name=clean, description=description.strip())
    if len(merged) > MAX_CHARACTERISTICS:
        raise ProjectError(f"{len(merged)} characteristics fields: at most {MAX_CHARACTERISTICS} can be asked at once")
    return list(merged.values())


# ---------------------------------------------------------------------------------------------
# Which studies
# ---------------------------------------------------------------------------------------------


def included_studies(project: Project) -> list[int]:
    """Records (duplicate-group primaries) whose standing decision is ``include``: at full text,
    or at title/abstract where no full-text decision stands. In record id order."""
    full_text = project.current_decisions("full_text")
    title_abstract = project.current_decisions("title_abstract")
    ids = {rid for rid, d in full_text.items() if d["label"] == "include"}
    ids |= {rid for rid, d in title_abstract.items() if d["label"] == "include" and rid not in full_text}
    return sorted(ids)


def _check_records(project: Project, record_ids: Sequence[int]) -> None:
    wanted = sorted(set(record_ids))
    found: set[int] = set()
    with project.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            found.update(int(r) for (r,) in conn.execute(
                sa.select(t.records.c.id).where(t.records.c.id.in_(wanted[i:i + 500]))))
    missing = [r for r in wanted if r not in found]
    if missing:
        raise NotFoundError(f"record {missing[0]} does not exist in this project")


def _study_documents(project: Project) -> dict[int, int]:
    """``{primary record id: newest document id}`` over the documents linked to any member."""
    primaries = project.duplicate_primaries()
    newest: dict[int, int] = {}
    for doc in list_documents(project):
        if doc.record_id is None:
            continue
        key = primaries.get(doc.record_id, doc.record_id)
        newest[key] = max(newest.get(key, 0), doc.id)
    return newest


# ---------------------------------------------------------------------------------------------
# The run's report
# ---------------------------------------------------------------------------------------------


@dataclass
class TaskStats:
    """What one task did in a run."""

    task: str
    batch_id: str
    items: int = 0
    """Items (study, or study and outcome/measure) this run asked for."""
    already_done: int = 0
    """Items an earlier run had finished and stored: not redone."""
    extracted: int = 0
    """Items extracted by this run's own calls."""
    recovered: int = 0
    """Items whose calls an interrupted earlier run had made: stored now from the call log."""
    values: int = 0
    """Rows stored by this run (extracted and recovered items)."""
    not_reported: int = 0
    """Of those, values the paper does not report (``None``; results with no number)."""
    unsupported: int = 0
    """Of those, values found without a quote located in the document (empty evidence)."""
    calls: int = 0
    """Model calls this run made (cache hits not counted)."""
    elapsed: float = 0.0
    """Seconds this task took in this run (storing and recovery included)."""
    failed: list[ItemFailure] = field(default_factory=list)


@dataclass
class ExtractionRun:
    """What one :func:`run_extraction` call did."""

    engine: str
    model: str | None
    tasks: list[str]
    studies: int
    """Included studies considered (after ``record_ids``)."""
    extracted: int
    """Studies with a document: the ones the tasks ran on."""
    no_document: list[int]
    """Included studies without a document (or with an empty one): not extracted."""
    not_included: list[int] = field(default_factory=list)
    """Records asked for by ``record_ids`` that are not included studies: not extracted."""
    outcomes: list[str] = field(default_factory=list)
    per_task: dict[str, TaskStats] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def _total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.per_task.values())

    @property
    def values(self) -> int:
        return self._total("values")

    @property
    def unsupported(self) -> int:
        return self._total("unsupported")

    @property
    def not_reported(self) -> int:
        return self._total("not_reported")

    @property
    def calls(self) -> int:
        return self._total("calls")

    @property
    def items(self) -> int:
        return self._total("items")

    @property
    def already_done(self) -> int:
        return self._total("already_done")

    @property
    def recovered(self) -> int:
        return self._total("recovered")

    @property
    def failed(self) -> list[ItemFailure]:
        return [f for s in self.per_task.values() for f in s.failed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "model": self.model, "tasks": list(self.tasks),
            "studies": self.studies, "extracted": self.extracted,
            "skipped_no_document": len(self.no_document), "no_document": list(self.no_document),
            "not_included": list(self.not_included), "outcomes": list(self.outcomes),
            "items": self.items, "already_done": self.already_done, "recovered": self.recovered,
            "values": self.values, "not_reported": self.not_reported, "unsupported": self.unsupported,
            "calls": self.calls, "failed": [dataclasses.asdict(f) for f in self.failed],
            "per_task": {name: {k: v for k, v in dataclasses.asdict(s).items() if k not in ("failed", "elapsed")}
                         | {"failed": len(s.failed), "elapsed": round(s.elapsed, 3)}
                         for name, s in self.per_task.items()},
            "notes": list(self.notes), "elapsed": round(self.elapsed, 3),
        }

    def summary(self) -> str:
        lines = [f"engine {self.engine} ({self.model}): {self.studies} included studies, "
                 f"{self.extracted} with a document, {self.values} values stored "
                 f"({self.not_reported} not reported, {self.unsupported} without a located quote), "
                 f"{self.calls} calls in {self.elapsed:.1f} s"]
        if self.no_document:
            lines.append(f"  no document: {len(self.no_document)} studies (records "
                         f"{', '.join(map(str, self.no_document[:20]))}{', ...' if len(self.no_document) > 20 else ''})")
        if self.not_included:
            lines.append(f"  not included studies, not extracted: records {', '.join(map(str, self.not_included))}")
        for name, s in self.per_task.items():
            done = f", {s.already_done} already done" if s.already_done else ""
            recovered = f", {s.recovered} recovered from an interrupted run" if s.recovered else ""
            failed = f", {len(s.failed)} failed" if s.failed else ""
            lines.append(f"  {name}: {s.extracted} of {s.items} items extracted{done}{recovered}{failed}; "
                         f"{s.values} values in {s.elapsed:.1f} s")
        lines.extend(f"  failed {f.item_key}: {f.error_type}: {f.error}" for f in self.failed)
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Engine and batches
# ---------------------------------------------------------------------------------------------


def _open_engine(project: Project, engine: str | Engine | None,
                 options: Mapping[str, Any] | None) -> tuple[Engine, bool]:
    """The engine to run, logging to the project's call log, and whether this module owns it."""
    if isinstance(engine, Engine):
        log = engine.log
        if not isinstance(log, DatabaseCallLog) or \
                log.engine.url.render_as_string() != project.engine.url.render_as_string():
            raise ProjectError("the engine must write to this project's call log: create it with "
                               "log=DatabaseCallLog(project.engine)")
        return engine, False
    from leads.engines import get_engine

    return get_engine(engine, log=DatabaseCallLog(project.engine), project_config=project.config(),
                      **dict(options or {})), True


def extraction_batch_id(task: str, engine: Engine) -> str:
    """The batch a task's calls go to: one per task, engine and model."""
    digest = hashlib.sha256(f"{engine.name}\x00{engine.model}".encode()).hexdigest()[:10]
    return f"extract-{task}-{engine.name[:20]}-{digest}"


@dataclass
class _Item:
    """One planned task input: its key, the study, and how to build the input and read the output."""

    key: str
    record_id: int
    document_id: int
    build: Callable[[Document], TaskInput]
    rows: Callable[[TaskOutput, str], list[dict[str, Any]]]
    """(output, document text) -> extraction rows without record, document and call."""


class _Documents:
    """Documents loaded on demand, the last few kept (items come study by study)."""

    def __init__(self, project: Project, size: int = 4) -> None:
        self._project = project
        self._cache: OrderedDict[int, Document] = OrderedDict()
        self._size = size

    def get(self, document_id: int) -> Document:
        doc = self._cache.get(document_id)
        if doc is None:
            doc = get_document(self._project, document_id)
            self._cache[document_id] = doc
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(document_id)
        return doc

    def text(self, document_id: int) -> str:
        return self.get(document_id).text


# ---------------------------------------------------------------------------------------------
# Rows from task outputs
# ---------------------------------------------------------------------------------------------


def _located(evidence: Sequence[Evidence], text: str, **tags: Any) -> list[dict[str, Any]]:
    """Evidence as stored: only quotes that really sit at their offsets in the document's text."""
    out = []
    for e in evidence:
        if 0 <= e.start <= e.end <= len(text) and text[e.start:e.end] == e.quote and e.quote:
            out.append({"quote": e.quote, "start": e.start, "end": e.end, "score": e.score, **tags})
    return out


def _dedupe(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for item in evidence:
        key = (item["start"], item["end"], item.get("group"), item.get("field"), item.get("arm"))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _characteristics_rows(output: TaskOutput, text: str) -> list[dict[str, Any]]:
    assert isinstance(output, CharacteristicsOutput)
    return [{"task": "characteristics", "field": f.name[:MAX_FIELD], "value": f.value,
             "evidence": _located(f.evidence, text) if f.value is not None else []}
            for f in output.fields]


def _arms_rows(output: TaskOutput, text: str) -> list[dict[str, Any]]:
    assert isinstance(output, ArmsOutput)
    arms = [{"label": a.label, "type": a.type, "description": a.description, "interventions": list(a.interventions)}
            for a in output.arms]
    evidence = _dedupe([e for i, a in enumerate(output.arms) for e in _located(a.evidence, text, arm=i)])
    return [{"task": "arms", "field": "arms", "value": arms or None, "evidence": evidence}]


def _participants_rows(titles: Mapping[str, str]) -> Callable[[TaskOutput, str], list[dict[str, Any]]]:
    def rows(output: TaskOutput, text: str) -> list[dict[str, Any]]:
        assert isinstance(output, ParticipantsOutput)
        out = []
        for v in output.values:
            title = titles.get(v.group_id, v.group_id)
            value = None if v.value is None else {
                "value": v.value, "number": v.number, "unit": output.unit, "param_type": output.param_type,
                "group": title, "note": v.note}
            out.append({"task": "participants", "field": f"{output.measure}: {title}"[:MAX_FIELD], "value": value,
                        "evidence": _located(v.evidence, text, group=v.group_id) if value is not None else []})
        return out

    return rows


def _results_reported(output: ResultsOutput) -> bool:
    numbers = ("events", "group_size", "percent", "mean", "sd", "se", "median")
    return any(v.value is not None for v in output.values) or \
        any(getattr(a, n) is not None for a in output.arms for n in numbers)


def _results_rows(spec: OutcomeSpec) -> Callable[[TaskOutput, str], list[dict[str, Any]]]:
    def rows(output: TaskOutput, text: str) -> list[dict[str, Any]]:
        assert isinstance(output, ResultsOutput)
        evidence: list[dict[str, Any]] = []
        for v in output.values:
            evidence.extend(_located(v.evidence, text, group=v.group_id))
        for a in output.arms:
            evidence.extend(_located(a.evidence, text, group=a.group_id))
            for name, e in a.field_evidence.items():
                evidence.extend(_located([e], text, group=a.group_id, field=name))
        return [{"task": "results", "field": spec.field, "value": output.model_dump(mode="json"),
                 "evidence": _dedupe(evidence), "_reported": _results_reported(output)}]

    return rows


def _participant_groups(arms: Mapping[str, Any] | None) -> list[Group]:
    """The whole sample, then one group per arm (titles made unique)."""
    groups = [Group(id="BG000", title=TOTAL_GROUP)]
    seen = {TOTAL_GROUP.casefold()}
    for i, arm in enumerate((arms or {}).get("arms") or [], start=1):
        if len(groups) >= 20:
            break
        title = " ".join(str(arm.get("label") or f"Arm {i}").split())[:280] or f"Arm {i}"
        unique, n = title, 2
        while unique.casefold() in seen:
            unique, n = f"{title} ({n})", n + 1
        seen.add(unique.casefold())
        groups.append(Group(id=f"BG{i:03d}", title=unique, description=str(arm.get("description") or "")[:1000]))
    return groups


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


# ---------------------------------------------------------------------------------------------
# Storing and recovering
# ---------------------------------------------------------------------------------------------


class _Recorder:
    """Stores one task's rows as items finish, and recovers calls that have no rows yet."""

    def __init__(self, project: Project, task: Task, batch_id: str, items: Sequence[_Item],
                 documents: _Documents, stats: TaskStats) -> None:
        self.project = project
        self.task = task
        self.batch_id = batch_id
        self.items = {item.key: item for item in items}
        self.documents = documents
        self.stats = stats

    def store(self, item: _Item, output: TaskOutput, call_id: int | None) -> None:
        rows = item.rows(output, self.documents.text(item.document_id))
        for row in rows:
            reported = row.pop("_reported", row["value"] is not None)
            row.update(record_id=item.record_id, document_id=item.document_id, call_id=call_id)
            if not reported:
                self.stats.not_reported += 1
            elif not row["evidence"]:
                self.stats.unsupported += 1
        self.project.add_extractions(rows)
        self.stats.values += len(rows)

    def on_result(self, key: str, result: TaskResult[Any]) -> None:
        self.store(self.items[key], result.output, result.call_id)
        self.stats.extracted += 1

    def _calls(self) -> dict[str, list[tuple[int, Any]]]:
        """Valid calls of this batch per planned item key, oldest first: (call id, parsed)."""
        calls = t.model_calls
        with self.project.engine.connect() as conn:
            rows = conn.execute(
                sa.select(calls.c.id, calls.c.item_key, calls.c.parsed, calls.c.validation_errors)
                .where(calls.c.batch_id == self.batch_id, calls.c.task == self.task.name,
                       calls.c.item_key.is_not(None), calls.c.parsed.is_not(None))
                .order_by(calls.c.id)).all()
        out: dict[str, list[tuple[int, Any]]] = {}
        for row in rows:
            if row.item_key in self.items and not row.validation_errors:
                out.setdefault(row.item_key, []).append((int(row.id), row.parsed))
        return out

    def _stored_calls(self, call_ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        x = t.extractions
        with self.project.engine.connect() as conn:
            for i in range(0, len(call_ids), 500):
                chunk = list(call_ids[i:i + 500])
                found.update(int(c) for (c,) in conn.execute(
                    sa.select(x.c.call_id).where(x.c.call_id.in_(chunk)).distinct()))
        return found

    def stored_keys(self) -> set[str]:
        calls = self._calls()
        stored = self._stored_calls([cid for found in calls.values() for cid, _ in found])
        return {key for key, found in calls.items() if any(cid in stored for cid, _ in found)}

    def recover(self) -> int:
        """Store the newest call of every planned item that finished but has no rows."""
        calls = self._calls()
        stored = self._stored_calls([cid for found in calls.values() for cid, _ in found])
        recovered = 0
        for key, found in calls.items():
            if any(cid in stored for cid, _ in found):
                continue
            call_id, parsed = found[-1]
            self.store(self.items[key], self.task.output_model.model_validate(parsed), call_id)
            recovered += 1
        self.stats.recovered += recovered
        return recovered


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def _plan(task_name: str, studies: Sequence[tuple[int, int]], *, specs: Sequence[FieldSpec],
          outcomes: Sequence[OutcomeSpec], arms: Mapping[str, Any]) -> list[_Item]:
    items: list[_Item] = []
    if task_name == "characteristics":
        digest = _digest([s.model_dump() for s in specs])
        for rid, did in studies:
            items.append(_Item(f"r{rid}-d{did}-f{digest}", rid, did,
                               lambda doc: CharacteristicsInput(text=doc.text, fields=list(specs)),
                               _characteristics_rows))
    elif task_name == "arms":
        for rid, did in studies:
            items.append(_Item(f"r{rid}-d{did}", rid, did, lambda doc: ArmsInput(text=doc.text), _arms_rows))
    elif task_name == "participants":
        for rid, did in studies:
            all_groups = _participant_groups(arms.get(f"r{rid}-d{did}"))
            for measure, param_type, unit, per_arm in PARTICIPANT_MEASURES:
                groups = all_groups if per_arm else all_groups[:1]
                digest = _digest([measure, param_type, unit, [g.model_dump() for g in groups]])
                titles = {g.id: g.title for g in groups}

                def build(doc: Document, measure: str = measure, param_type: str = param_type, unit: str = unit,
                          groups: list[Group] = groups) -> TaskInput:
                    return ParticipantsInput(text=doc.text, measure=measure, param_type=param_type,  # type: ignore[arg-type]
                                             unit=unit, groups=groups)

                items.append(_Item(f"r{rid}-d{did}-{_slug(measure)}-{digest}", rid, did, build,
                                   _participants_rows(titles)))
    elif task_name == "results":
        from leads.extract.results import results_input

        for rid, did in studies:
            for spec in outcomes:
                digest = _digest(dataclasses.asdict(spec))

                def build_results(doc: Document, spec: OutcomeSpec = spec) -> TaskInput:
                    return results_input(doc, intervention=spec.intervention, comparator=spec.comparator,
                                         outcome=spec.outcome, outcome_type=spec.outcome_type)

                items.append(_Item(f"r{rid}-d{did}-o{digest}", rid, did, build_results, _results_rows(spec)))
    return items


def run_extraction(
    project: Project,
    *,
    engine: str | Engine | None = "classic",
    tasks: Sequence[str] = EXTRACTION_TASKS,
    outcomes: Sequence[Mapping[str, Any]] = (),
    fields: Mapping[str, str] | None = None,
    record_ids: Sequence[int] | None = None,
    progress: bool | ProgressCallback | None = False,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> ExtractionRun:
    """Run the extraction tasks over the project's included studies that have a document.

    ``tasks``: any of ``characteristics``, ``arms``, ``participants``, ``results`` (run in that
    order: the participants task asks per arm found by the arms task, when it ran).
    ``outcomes``: ``{"outcome", "intervention", "comparator", "outcome_type"}`` objects; the
    results task runs once per outcome per study and is skipped (with a note) when there is
    none. ``fields``: ``{name: description}`` characteristics asked on top of the built-ins
    (:data:`BUILTIN_FIELDS`). ``record_ids`` narrows the run to those included studies.
    ``engine``: a name (``None`` = the project's default) or an engine that logs to this
    project. ``concurrency`` defaults to 1 for the classic engine and 4 for model servers.
    See the module docstring for what is stored and how a re-run resumes.
    """
    started = time.perf_counter()
    if isinstance(tasks, str):
        tasks = (tasks,)
    unknown = [name for name in tasks if name not in EXTRACTION_TASKS]
    if unknown:
        raise ProjectError(f"unknown extraction task(s) {', '.join(map(repr, unknown))}; "
                           f"choose from {', '.join(EXTRACTION_TASKS)}")
    if not tasks:
        raise ProjectError("give at least one extraction task")
    wanted = [name for name in EXTRACTION_TASKS if name in set(tasks)]
    specs = _field_specs(fields) if "characteristics" in wanted else []
    outcome_specs = [OutcomeSpec.parse(o, i) for i, o in enumerate(outcomes)]
    names = [o.outcome.casefold() for o in outcome_specs]
    repeated = sorted({o.outcome for o in outcome_specs if names.count(o.outcome.casefold()) > 1})
    if repeated:
        raise ProjectError(f"outcome(s) {', '.join(map(repr, repeated))} given twice: results are stored "
                           "per outcome name, so give each outcome once")
    notes: list[str] = []
    if "results" in wanted and not outcome_specs:
        wanted.remove("results")
        notes.append("results skipped: no outcome given (give an outcome with its intervention and comparator)")

    included = included_studies(project)
    not_included: list[int] = []
    if record_ids is not None:
        _check_records(project, [int(r) for r in record_ids])
        primaries = project.duplicate_primaries()
        asked = list(dict.fromkeys(primaries.get(int(r), int(r)) for r in record_ids))
        included_set = set(included)
        not_included = [r for r in asked if r not in included_set]
        included = [r for r in asked if r in included_set]
    documents_of = _study_documents(project)
    documents = _Documents(project)
    studies: list[tuple[int, int]] = []
    no_document: list[int] = []
    with project.engine.connect() as conn:
        empty = {int(i) for (i,) in conn.execute(
            sa.select(t.documents.c.id).where(sa.func.length(sa.func.trim(sa.func.coalesce(t.documents.c.text, "")))
                                              == 0))}
    for rid in included:
        did = documents_of.get(rid)
        if did is None or did in empty:
            no_document.append(rid)
        else:
            studies.append((rid, did))

    runner, owned = _open_engine(project, engine, engine_options)
    run = ExtractionRun(engine=runner.name, model=runner.model, tasks=wanted, studies=len(included),
                        extracted=len(studies), no_document=no_document, not_included=not_included,
                        outcomes=[o.outcome for o in outcome_specs], notes=notes)
    try:
        for name in wanted:
            task = TASKS[name]
            if not runner.supports(task):
                raise EngineError(f"engine {runner.name!r} has no {name} task")
            batch_id = extraction_batch_id(name, runner)
            task_started = time.perf_counter()
            arms: dict[str, Any] = {}
            if name == "participants":
                arms = batch_results(runner.log, extraction_batch_id("arms", runner), task="arms")
            items = _plan(name, studies, specs=specs, outcomes=outcome_specs, arms=arms)
            stats = TaskStats(task=name, batch_id=batch_id, items=len(items))
            run.per_task[name] = stats
            recorder = _Recorder(project, task, batch_id, items, documents, stats)
            recorder.recover()
            stats.already_done = len(recorder.stored_keys()) - stats.recovered
            finished = finished_items(runner.log, batch_id, task=task)
            todo = [item for item in items if item.key not in finished]

            def inputs(todo: list[_Item] = todo) -> Iterator[tuple[str, TaskInput]]:
                for item in todo:
                    yield item.key, item.build(documents.get(item.document_id))

            workers = concurrency or (1 if runner.name == "classic" else 4)
            report: BatchReport | None = None
            try:
                if todo:
                    report = run_batch(runner, task, inputs(), batch_id=batch_id, concurrency=workers,
                                       rate_limit=rate_limit, on_result=recorder.on_result, progress=progress,
                                       total=len(todo))
            finally:
                # Calls that finished while the run was being interrupted have no rows yet.
                recorder.recover()
                stats.elapsed = time.perf_counter() - task_started
            if report is not None:
                stats.calls = report.model_calls
                stats.failed = list(report.failed)
    finally:
        if owned:
            runner.close()
        run.elapsed = time.perf_counter() - started
    project.log("extract", {k: v for k, v in run.as_dict().items() if k not in ("failed", "no_document")}
                | {"no_document": len(no_document), "failed": len(run.failed)})
    return run
