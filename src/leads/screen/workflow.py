"""Screening inside a review project: criteria, AI assessments, the next record, decisions.

The Python API behind ``leads criteria``, ``leads screen``, ``leads next`` and ``leads decide``::

    from leads.project import Project
    from leads.screen import workflow as w

    with Project.open("estrogens-review") as project:
        w.generate_criteria(project)                 # from the project's PICO (classic engine)
        run = w.run_screening(project, limit=50)     # per-criterion AI assessments, resumable
        nxt = w.next_record(project)                 # the record to screen now, with its assessment
        w.decide(project, nxt.record_id, "exclude", reasons=["E1"], reviewer="alice")

**Criteria** are versioned by the project; ``I1``, ``E1`` name the criteria of a version
(:mod:`leads.screen.criteria`). A decision records the version it was made under.

**Assessments** (:func:`run_screening`) are the ``eligibility`` task run on every record that no
person has screened yet (one record per duplicate group), through the resumable batch runner:
the call log is the durable store, so an interrupted run continues where it stopped; assessments
are written as they finish and, after a crash, recovered from the call log. Each assessment keeps
its engine, its call (and through it the model) and the criteria version. A record counts as
done for a batch named by the criteria version, engine and model, so re-running skips it and a
new criteria version (or another model) assesses again.

**Ranking** (:func:`rank_records`, :func:`next_record`): the model measured in
docs/benchmarks.md. Before any relevant record is known, a zero-shot score: LEADS' verdict score
(YES 1, PARTIAL 0.5, UNCERTAIN 0, NO -1, averaged, an exclusion criterion that applies counting
against) next to BM25/TF-IDF and sentence-embedding similarity to the review question and the
study-design classifier's probability of the design it asks for, each standardised
(:func:`leads.screen.ranking.zero_shot_scores`); then :class:`leads.screen.ranking.ActiveLearner`
retrained on the people's decisions (include and maybe count as relevant), with the zero-shot
score as its prior. Sentence embeddings are used once :func:`prepare_embeddings` has computed
them (``leads screen`` does, before assessing); until then the ranking goes without them.

**Who decided.** Only people's decisions count as screened, train the ranking and feed the
stopping estimate. Unattended AI decisions (``run_screening(auto_decide=True)``) are stored with
``actor_kind="ai"``, the actor ``ai:<engine>`` and the call they came from, are shown as AI
decisions, and leave the record in the people's queue.

**Stopping** (:func:`stopping_estimate`): Callaghan & Müller-Hansen's hypergeometric test over
the people's decisions in the order they were made (:mod:`leads.screen.stopping`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from leads.engines._base import Engine, TaskResult
from leads.engines.batch import BatchReport, ItemFailure, run_batch
from leads.engines.calllog import DatabaseCallLog
from leads.errors import EngineError, NotFoundError, ProjectError
from leads.project import Project
from leads.project import schema as t
from leads.records import Record
from leads.screen.criteria import CriteriaSpec, criterion_labels, read_criteria_file
from leads.tasks import TASKS
from leads.tasks.criteria import CriteriaInput, CriteriaOutput
from leads.tasks.eligibility import SCORES, Criterion, EligibilityInput, EligibilityOutput

__all__ = [
    "AI_ACTOR_PREFIX",
    "Assessment",
    "CriterionAssessment",
    "CriterionInfo",
    "GeneratedCriteria",
    "NextRecord",
    "Ranking",
    "ScreeningRun",
    "add_criteria",
    "ai_decision_for",
    "assessment_batch_id",
    "current_criteria",
    "decide",
    "generate_criteria",
    "latest_assessments",
    "next_record",
    "open_engine",
    "question_text",
    "rank_records",
    "read_criteria_file",
    "remove_criteria",
    "resolve_criterion",
    "run_screening",
    "set_criteria",
    "stopping_estimate",
]

STAGE = "title_abstract"
AI_ACTOR_PREFIX = "ai:"
#: Standing labels a person gave that count as relevant for ranking and stopping: a "maybe"
#: goes on to full text like an include, so records like it should come early too.
RELEVANT_LABELS = frozenset({"include", "maybe"})
MAX_TITLE = 2000

ProgressCallback = Callable[[BatchReport], None]


# ---------------------------------------------------------------------------------------------
# Criteria
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionInfo:
    """A stored criterion: its label in its version (``I1``, ``E2``), kind, text, PICO element."""

    id: int
    label: str
    kind: str
    text: str
    pico_element: str | None
    position: int
    version: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def as_reason(self) -> str:
        """How a decision stores this criterion as its reason: ``"E1: <text>"``."""
        return f"{self.label}: {self.text}"


def current_criteria(project: Project, version: int | None = None) -> list[CriterionInfo]:
    """The criteria of a version (default: the newest) with their labels; empty when none."""
    rows = project.criteria(version)
    labels = criterion_labels([r["kind"] for r in rows])
    return [CriterionInfo(id=int(r["id"]), label=label, kind=r["kind"], text=r["text"],
                          pico_element=r["pico_element"], position=int(r["position"]), version=int(r["version"]))
            for r, label in zip(rows, labels, strict=True)]


def _store(project: Project, specs: Sequence[CriteriaSpec], note: str | None) -> int:
    inclusion = [s for s in specs if s.kind == "inclusion"]
    exclusion = [s for s in specs if s.kind == "exclusion"]
    ordered = inclusion + exclusion
    texts = [" ".join(s.text.split()) for s in ordered]
    empty = next((i for i, text in enumerate(texts) if not text), None)
    if empty is not None:
        raise ProjectError(f"criterion {empty + 1} is empty")
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        key = f"{ordered[i].kind}:{text.casefold()}"
        if key in seen:
            raise ProjectError(f"the {ordered[i].kind} criterion {text!r} is given twice")
        seen[key] = i
    if len(ordered) > 40:
        raise ProjectError(f"{len(ordered)} criteria: at most 40 can be assessed per record")
    pico = [s.pico_element for s in ordered]
    return project.set_criteria(texts[:len(inclusion)], texts[len(inclusion):],
                                pico_elements=pico if any(pico) else None, note=note)


def set_criteria(project: Project, specs: Sequence[CriteriaSpec], *, note: str | None = None) -> int:
    """Store these criteria as a new version (inclusion criteria first); returns the version."""
    if not specs:
        raise ProjectError("a criteria set needs at least one inclusion or exclusion criterion")
    return _store(project, specs, note)


def _specs(criteria: Sequence[CriterionInfo]) -> list[CriteriaSpec]:
    return [CriteriaSpec(text=c.text, kind=c.kind, pico_element=c.pico_element) for c in criteria]


def add_criteria(project: Project, specs: Sequence[CriteriaSpec], *, note: str | None = None) -> int:
    """A new version holding the current criteria plus these; returns the version."""
    if not specs:
        raise ProjectError("give at least one criterion to add")
    return _store(project, _specs(current_criteria(project)) + list(specs), note)


def resolve_criterion(criteria: Sequence[CriterionInfo], ref: str) -> CriterionInfo:
    """The criterion a reference names: its label (``E1``, case-insensitive) or its 1-based
    number in the listing (``3``). Raises :class:`NotFoundError` listing what exists."""
    text = ref.strip()
    if not criteria:
        raise NotFoundError("there are no eligibility criteria in this project yet "
                            "(set them with `leads criteria set` or `leads criteria generate`)")
    for c in criteria:
        if c.label.casefold() == text.casefold():
            return c
    if text.isdigit() and 1 <= int(text) <= len(criteria):
        return criteria[int(text) - 1]
    available = ", ".join(c.label for c in criteria)
    raise NotFoundError(f"no criterion {ref!r} in criteria version {criteria[0].version}; "
                        f"criteria: {available} (or their numbers 1-{len(criteria)})")


def remove_criteria(project: Project, refs: Sequence[str], *, note: str | None = None) -> int:
    """A new version without the named criteria (labels or numbers); returns the version."""
    criteria = current_criteria(project)
    drop = {resolve_criterion(criteria, ref).id for ref in refs}
    kept = [c for c in criteria if c.id not in drop]
    if not kept:
        raise ProjectError("removing these would leave no criterion; set new criteria instead")
    return _store(project, _specs(kept), note)


def open_engine(project: Project, engine: str | Engine | None = None,
                options: Mapping[str, Any] | None = None) -> tuple[Engine, bool]:
    """The engine to run, logging to the project's call log, and whether the caller owns it
    (must close it). An :class:`Engine` instance must already log to this project."""
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


def question_input(project: Project) -> CriteriaInput:
    """The project's review question as the ``criteria`` task's input."""
    question = project.question()
    if question is None:
        raise ProjectError("the project has no review question (PICO) yet: give it with the "
                           "--population/--intervention/--comparison/--outcome options or a review spec")
    try:
        return CriteriaInput(**{k: question.get(k) for k in
                                ("title", "population", "intervention", "comparison", "outcome",
                                 "study_design")})
    except ValueError as exc:
        raise ProjectError(f"the review question (version {question['version']}) cannot be used: {exc}") from None


@dataclass
class GeneratedCriteria:
    """Criteria drafted from the question, the call that drafted them, and the version stored
    (``None`` for a dry run)."""

    criteria: list[CriteriaSpec]
    engine: str
    model: str | None
    call_id: int | None
    question_version: int
    version: int | None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["criteria"] = [dataclasses.asdict(c) | {"label": label} for c, label in
                           zip(self.criteria, criterion_labels([c.kind for c in self.criteria]), strict=True)]
        return out


def generate_criteria(
    project: Project,
    engine: str | Engine | None = None,
    *,
    append: bool = False,
    store: bool = True,
    note: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> GeneratedCriteria:
    """Draft eligibility criteria from the project's review question with the ``criteria`` task.

    The classic engine writes one criterion per PICO element plus the study design
    (deterministic); an LLM engine drafts them from the LEADS-style prompt, validated against
    the task's schema (re-asked on errors, every attempt in the call log). The draft is stored
    as a new criteria version replacing the current criteria, or added to them with
    ``append=True``; ``store=False`` only returns it.
    """
    import leads.screen.criteria  # noqa: F401 - registers the classic implementation

    question = project.question()
    inp = question_input(project)
    runner, owned = open_engine(project, engine, engine_options)
    try:
        task = TASKS["criteria"]
        if not runner.supports(task):
            raise EngineError(f"engine {runner.name!r} cannot generate criteria")
        result: TaskResult[CriteriaOutput] = runner.run(task, inp)
    finally:
        if owned:
            runner.close()
    specs = [CriteriaSpec(text=c.text, kind=c.kind, pico_element=c.pico_element) for c in result.output.criteria]
    version = None
    if store:
        how = "appended to" if append else "replacing"
        text = note or (f"generated from question version {question['version'] if question else '?'} by "
                        f"{result.engine} ({result.model}), {how} the current criteria")
        existing = _specs(current_criteria(project)) if append else []
        known = {(s.kind, s.text.casefold()) for s in existing}
        new = [s for s in specs if (s.kind, s.text.casefold()) not in known]
        version = _store(project, existing + new, text)
        project.log("criteria-generate", {"version": version, "engine": result.engine, "model": result.model,
                                          "call_id": result.call_id, "append": append})
    return GeneratedCriteria(criteria=specs, engine=result.engine, model=result.model, call_id=result.call_id,
                             question_version=int(question["version"]) if question else 0, version=version)


def question_text(project: Project, criteria: Sequence[CriterionInfo] | None = None) -> str | None:
    """The topic text for similarity ranking: the review question (title and PICO) and the
    inclusion criteria; ``None`` when the project has neither."""
    parts: list[str] = []
    question = project.question()
    if question:
        parts.extend(str(question[k]) for k in ("title", "population", "intervention", "comparison",
                                                 "outcome", "study_design") if question.get(k))
    if criteria is None:
        criteria = current_criteria(project)
    parts.extend(c.text for c in criteria if c.kind == "inclusion")
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    return text or None


# ---------------------------------------------------------------------------------------------
# Assessments
# ---------------------------------------------------------------------------------------------


@dataclass
class CriterionAssessment:
    """The AI's verdict on one criterion, with its rationale and evidence sentences (offsets
    into the assessed text: the title, a blank line, the abstract)."""

    label: str
    kind: str
    text: str
    eligibility: str
    rationale: str
    evidence: list[dict[str, Any]]
    unsupported_quotes: list[str] = field(default_factory=list)


@dataclass
class Assessment:
    """A stored AI assessment of one record under one criteria version."""

    id: int
    record_id: int
    criteria_version: int
    engine: str
    model: str | None
    call_id: int | None
    score: float | None
    created_at: Any
    verdicts: list[CriterionAssessment]

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if isinstance(self.created_at, dt.datetime):
            out["created_at"] = self.created_at.isoformat()
        return out


def _assessment(row: Mapping[str, Any], criteria: Sequence[CriterionInfo]) -> Assessment:
    verdicts = []
    for v in row["verdicts"] or []:
        i = int(v["criterion"])
        c = criteria[i] if i < len(criteria) else None
        verdicts.append(CriterionAssessment(
            label=c.label if c else f"#{i + 1}", kind=c.kind if c else "inclusion", text=c.text if c else "",
            eligibility=v["eligibility"], rationale=v.get("rationale", ""),
            evidence=list(v.get("evidence") or []), unsupported_quotes=list(v.get("unsupported_quotes") or [])))
    return Assessment(id=int(row["id"]), record_id=int(row["record_id"]),
                      criteria_version=int(row["criteria_version"]), engine=row["engine"], model=row.get("model"),
                      call_id=row.get("call_id"), score=row.get("score"), created_at=row.get("created_at"),
                      verdicts=verdicts)


def _primary(primaries: Mapping[int, int], record_id: int) -> int:
    return primaries.get(record_id, record_id)


def latest_assessments(project: Project, criteria_version: int | None = None, *,
                       primaries: Mapping[int, int] | None = None) -> dict[int, dict[str, Any]]:
    """The newest assessment row per record (keyed by the record's duplicate-group primary) under
    a criteria version (default: the newest version). A primary's own assessment wins over one
    of another member of its group."""
    if criteria_version is None:
        criteria = project.criteria()
        if not criteria:
            return {}
        criteria_version = int(criteria[0]["version"])
    primaries = project.duplicate_primaries() if primaries is None else primaries
    out: dict[int, dict[str, Any]] = {}
    for row in project.assessments(stage=STAGE, criteria_version=criteria_version):
        key = _primary(primaries, int(row["record_id"]))
        current = out.get(key)
        if current is not None and current["record_id"] == key and row["record_id"] != key:
            continue
        out[key] = row
    return out


def assessment_batch_id(criteria_version: int, engine: Engine) -> str:
    """The batch a screening run's calls go to: one per criteria version, engine and model."""
    digest = hashlib.sha256(f"{engine.name}\x00{engine.model}".encode()).hexdigest()[:10]
    return f"screen-ta-c{criteria_version}-{engine.name[:24]}-{digest}"


def _signed(eligibility: str, kind: str) -> float:
    value = SCORES[eligibility]
    return -value if kind == "exclusion" else value


def ai_decision_for(verdicts: Sequence[Mapping[str, Any]], criteria: Sequence[CriterionInfo]) -> tuple[str, list[str]] | None:
    """The decision an unattended AI makes from an assessment, with the criteria behind it, or
    ``None`` when the verdicts do not settle it.

    Exclude when an exclusion criterion applies (YES) or an inclusion criterion is not met (NO);
    include when every inclusion criterion is met (YES) and no exclusion criterion applies even
    in part; anything else is left to people.
    """
    against: list[str] = []
    inclusion_yes = True
    partial_exclusion = False
    for v in verdicts:
        c = criteria[int(v["criterion"])]
        e = v["eligibility"]
        if c.kind == "exclusion":
            if e == "YES":
                against.append(c.as_reason())
            partial_exclusion = partial_exclusion or e == "PARTIAL"
        else:
            if e == "NO":
                against.append(c.as_reason())
            inclusion_yes = inclusion_yes and e == "YES"
    if against:
        return "exclude", against
    if inclusion_yes and not partial_exclusion and any(c.kind == "inclusion" for c in criteria):
        return "include", [c.as_reason() for c in criteria if c.kind == "inclusion"]
    return None


# ---------------------------------------------------------------------------------------------
# The project's screening state, read once per call
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    """What ranking and assessment read of a record (no full :class:`Record` needed)."""

    title: str | None
    abstract: str | None


@dataclass
class _State:
    ids: list[int]                          # primary records, id order
    records: dict[int, _Text]
    primaries: dict[int, int]
    criteria: list[CriterionInfo]
    human: dict[int, dict[str, Any]]        # standing human decision per primary
    ai: dict[int, dict[str, Any]]           # standing AI decision per primary
    screened_order: list[int]               # primaries in the order of their first human decision
    assessments: dict[int, dict[str, Any]]  # newest under the current criteria, per primary

    @property
    def criteria_version(self) -> int | None:
        return self.criteria[0].version if self.criteria else None

    @property
    def unscreened(self) -> list[int]:
        return [i for i in self.ids if i not in self.human]


def _load_state(project: Project, stage: str = STAGE) -> _State:
    primaries = project.duplicate_primaries()
    records: dict[int, _Text] = {}
    ids: list[int] = []
    with project.engine.connect() as conn:
        rows = conn.execute(sa.select(t.records.c.id, t.records.c.title, t.records.c.abstract)
                            .order_by(t.records.c.id))
        for rid, title, abstract in rows:
            if primaries.get(rid, rid) == rid:
                records[rid] = _Text(title, abstract)
                ids.append(rid)
    criteria = current_criteria(project)
    human: dict[int, dict[str, Any]] = {}
    ai: dict[int, dict[str, Any]] = {}
    first_seen: dict[int, int] = {}
    for row in project.decision_history(stage):
        key = _primary(primaries, int(row["record_id"]))
        if row["actor_kind"] == "ai":
            if row["label"] == "undo":
                ai.pop(key, None)
            else:
                ai[key] = row
            continue
        if row["label"] == "undo":
            human.pop(key, None)
            first_seen.pop(key, None)
        else:
            human[key] = row
            first_seen.setdefault(key, int(row["id"]))
    screened = sorted(first_seen, key=first_seen.__getitem__)
    version = criteria[0].version if criteria else None
    assessments = latest_assessments(project, version, primaries=primaries) if version else {}
    return _State(ids=ids, records=records, primaries=primaries, criteria=criteria, human=human, ai=ai,
                  screened_order=[i for i in screened if i in records], assessments=assessments)


def _full_record(project: Project, record_id: int) -> Record:
    with project.engine.connect() as conn:
        data = conn.execute(sa.select(t.records.c.data).where(t.records.c.id == record_id)).scalar()
    if data is None:
        raise NotFoundError(f"record {record_id} does not exist in this project")
    return Record.model_validate(data)


# ---------------------------------------------------------------------------------------------
# Ranking and stopping
# ---------------------------------------------------------------------------------------------


@dataclass
class Ranking:
    """Records no person has screened yet, most likely relevant first."""

    order: list[int]
    scores: dict[int, float]
    prior: dict[int, float] | None
    mode: str
    """"active learning" (trained on people's decisions), "zero-shot" (question similarity and
    verdicts), or "unranked" (no question, criteria or relevant decision: record order)."""
    criteria_version: int | None
    assessed: int
    """How many of the records have an assessment under the current criteria."""


def _verdict_matrix(state: _State) -> np.ndarray | None:
    if not state.criteria or not state.assessments:
        return None
    matrix = np.zeros((len(state.ids), len(state.criteria)), dtype=np.float32)
    row_of = {rid: i for i, rid in enumerate(state.ids)}
    for rid, row in state.assessments.items():
        i = row_of.get(rid)
        if i is None:
            continue
        for v in row["verdicts"] or []:
            j = int(v["criterion"])
            if j < len(state.criteria):
                matrix[i, j] = _signed(v["eligibility"], state.criteria[j].kind)
    return matrix


_feature_cache: dict[str, tuple[Any, np.ndarray | None, np.ndarray | None]] = {}
_feature_lock = threading.Lock()


def _cache_dir() -> Any:
    from leads.screen.simulate import default_cache_dir

    return default_cache_dir() / "embeddings"


def _features_and_prior(records: Sequence[_Text], verdicts: np.ndarray | None,
                        query: str | None) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """The ranking features (TF-IDF, study-design probabilities, verdicts, and MiniLM
    embeddings once :func:`prepare_embeddings` has cached them), the zero-shot prior and the
    question's embedding, kept for the last input seen: in a long-lived process (the web
    workspace, a screening session) a decision changes none of them, so re-ranking after it
    only refits the models."""
    from leads.screen.ranking import (
        ranking_features,
        record_embeddings,
        record_text,
        zero_shot_scores,
    )

    texts = [record_text(r) for r in records]
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    digest.update(b"" if verdicts is None else verdicts.tobytes() + str(verdicts.shape).encode())
    digest.update((query or "").encode("utf-8"))
    key = digest.hexdigest()
    with _feature_lock:
        found = _feature_cache.get(key)
    if found is not None and (found[0].embeddings is not None
                              or record_embeddings(texts, _cache_dir(), compute=False) is None):
        return found
    features, _ = ranking_features(records, verdicts=verdicts, embeddings="cached", cache_dir=_cache_dir())
    prior: np.ndarray | None = None
    query_embedding: np.ndarray | None = None
    if query:
        if features.embeddings is not None:
            vectors = record_embeddings([query], None)
            query_embedding = None if vectors is None else vectors[0]
        prior = zero_shot_scores(features, query, query_embedding=query_embedding)
    elif verdicts is not None:
        prior = verdicts.mean(axis=1).astype(np.float64)
    with _feature_lock:
        _feature_cache.clear()
        _feature_cache[key] = (features, prior, query_embedding)
    return features, prior, query_embedding


def prepare_embeddings(project: Project) -> bool:
    """Compute (and cache) the MiniLM embeddings of the project's records, which the ranking
    then uses (a second model and a zero-shot component). The first time takes a while (tens
    of records a second on one core), so it runs ahead of ranking: ``leads screen`` calls it.
    False when the model is not installed."""
    from leads.screen.ranking import record_embeddings, record_text

    state = _load_state(project)
    texts = [record_text(state.records[i]) for i in state.ids]
    return record_embeddings(texts, _cache_dir()) is not None


def _rank(project: Project, state: _State, *, seed: int = 0) -> Ranking:
    relevant = {rid: row["label"] in RELEVANT_LABELS for rid, row in state.human.items()}
    return rank_by_decisions(project, state, relevant, seed=seed)


def rank_by_decisions(project: Project, state: _State, relevant: Mapping[int, bool], *,
                      seed: int = 0) -> Ranking:
    """Rank the records of ``state`` that are not in ``relevant`` (record id -> the decision
    counts as relevant), learning from those decisions: the project's people's decisions for
    the shared order, one reviewer's own for a blinded dual review."""
    from leads.screen.ranking import ActiveLearner

    if not state.ids:
        return Ranking([], {}, None, "unranked", state.criteria_version, 0)
    verdicts = _verdict_matrix(state)
    query = question_text(project, state.criteria)
    features, prior, query_embedding = _features_and_prior([state.records[i] for i in state.ids], verdicts, query)
    learner = ActiveLearner(features, prior_scores=prior, query=query, query_embedding=query_embedding, seed=seed)
    index = {rid: i for i, rid in enumerate(state.ids)}
    # in the order the decisions were made (the learner reads how long the last run of
    # irrelevant decisions is)
    decided = [rid for rid in state.screened_order if rid in relevant]
    decided += [rid for rid in relevant if rid not in set(decided)]
    labels = {index[rid]: relevant[rid] for rid in decided if rid in index}
    learner.update_many(labels)
    if any(labels.values()):
        mode = "active learning"
    elif prior is not None:
        mode = "zero-shot"
    else:
        mode = "unranked"
    if mode == "unranked":
        order = [rid for rid in state.ids if rid not in relevant]
        scores = {rid: 0.0 for rid in order}
    else:
        ranked = learner.ranking()
        order = [state.ids[i] for i in ranked]
        values = learner.scores()
        scores = {state.ids[i]: float(values[i]) for i in ranked}
    return Ranking(order=order, scores=scores,
                   prior=None if prior is None else {rid: float(prior[i]) for i, rid in enumerate(state.ids)},
                   mode=mode, criteria_version=state.criteria_version, assessed=len(state.assessments))


def rank_records(project: Project, *, seed: int = 0) -> Ranking:
    """The ranking of the records no person has screened yet (see the module docstring)."""
    return _rank(project, _load_state(project), seed=seed)


def _stopping(state: _State) -> Any:
    from leads.screen.stopping import recall_estimate

    labels = [state.human[rid]["label"] in RELEVANT_LABELS for rid in state.screened_order]
    return recall_estimate(labels, max(len(state.ids), len(labels)))


def stopping_estimate(project: Project) -> Any:
    """The hypergeometric stopping estimate (:class:`leads.screen.stopping.StoppingEstimate`)
    over the people's title/abstract decisions, in the order they were made."""
    return _stopping(_load_state(project))


# ---------------------------------------------------------------------------------------------
# Running the eligibility task over the project
# ---------------------------------------------------------------------------------------------


@dataclass
class ScreeningRun:
    """What one :func:`run_screening` call did."""

    criteria_version: int
    engine: str
    model: str | None
    batch_id: str
    to_assess: int
    """Records that needed an assessment when the run started (before ``limit``)."""
    assessed: int
    """Assessments stored by this run from new model calls."""
    recovered: int
    """Assessments stored from calls an earlier, interrupted run had already made."""
    already_assessed: int
    no_text: list[int]
    """Records without a title or abstract: nothing to assess."""
    remaining: int
    """Records still without an assessment for this batch after the run."""
    failed: list[ItemFailure]
    ai_decisions: int
    elapsed: float
    report: BatchReport | None = None

    @property
    def records_per_s(self) -> float:
        return self.assessed / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("report")
        out["records_per_s"] = round(self.records_per_s, 3)
        out["model_calls"] = self.report.model_calls if self.report else 0
        return out

    def summary(self) -> str:
        lines = [f"criteria version {self.criteria_version}, engine {self.engine} ({self.model}): "
                 f"{self.assessed} records assessed in {self.elapsed:.1f} s ({self.records_per_s:.2f} records/s)"]
        if self.recovered:
            lines.append(f"  {self.recovered} assessments recovered from an interrupted run")
        if self.already_assessed:
            lines.append(f"  {self.already_assessed} records were already assessed")
        if self.no_text:
            lines.append(f"  {len(self.no_text)} records have no title or abstract: not assessed")
        if self.ai_decisions:
            lines.append(f"  {self.ai_decisions} unattended AI decisions recorded (actor ai:{self.engine})")
        lines.extend(f"  failed {f.item_key}: {f.error_type}: {f.error}" for f in self.failed)
        lines.append(f"  {self.remaining} records still to assess" if self.remaining else
                     "  every unscreened record is assessed")
        return "\n".join(lines)


def _eligibility_input(record: Record | _Text, criteria: Sequence[CriterionInfo]) -> EligibilityInput:
    title = record.title[:MAX_TITLE] if record.title else None
    return EligibilityInput(title=title, text=record.abstract or "",
                            criteria=[Criterion(text=c.text, kind=c.kind) for c in criteria])  # type: ignore[arg-type]


def _record_of_key(key: str) -> int:
    return int(key.removeprefix("record-"))


def finished_calls(project: Project, batch_id: str, task: str = "eligibility") -> dict[str, Any]:
    """The newest valid call per item key of a batch (rows with ``id``, ``item_key``, ``engine``
    and ``parsed``): what a run that was killed between the call log and its own table left."""
    calls = t.model_calls
    with project.engine.connect() as conn:
        rows = conn.execute(
            sa.select(calls.c.id, calls.c.item_key, calls.c.engine, calls.c.parsed, calls.c.validation_errors)
            .where(calls.c.batch_id == batch_id, calls.c.task == task,
                   calls.c.item_key.is_not(None), calls.c.parsed.is_not(None))
            .order_by(calls.c.id)
        ).all()
    return {row.item_key: row for row in rows if not row.validation_errors}


class _Recorder:
    """Stores assessments (and unattended AI decisions) as items finish."""

    def __init__(self, project: Project, state: _State, batch_id: str, auto_decide: bool) -> None:
        version = state.criteria_version
        if version is None:
            raise ProjectError("the project has no eligibility criteria")
        self.project = project
        self.state = state
        self.batch_id = batch_id
        self.auto_decide = auto_decide
        self.version = version
        self.assessed = 0
        self.decisions = 0

    def _store(self, record_id: int, output: Mapping[str, Any], call_id: int | None, engine: str) -> None:
        verdicts = output["verdicts"]
        self.project.add_assessments([{
            "record_id": record_id, "criteria_version": self.version, "engine": engine, "call_id": call_id,
            "verdicts": verdicts, "score": output.get("score"),
        }])
        key = _primary(self.state.primaries, record_id)
        if not self.auto_decide or key in self.state.human:
            return
        decision = ai_decision_for(verdicts, self.state.criteria)
        standing = self.state.ai.get(key)
        if decision is None or (standing is not None and standing["label"] == decision[0]
                                and standing.get("criteria_version") == self.version):
            return
        label, reasons = decision
        self.project.decide(record_id, label, reasons=reasons, actor=f"{AI_ACTOR_PREFIX}{engine}",
                            actor_kind="ai", call_id=call_id, criteria_version=self.version,
                            note="unattended AI decision from the per-criterion assessment")
        self.state.ai[key] = {"label": label, "criteria_version": self.version}
        self.decisions += 1

    def on_result(self, key: str, result: TaskResult[EligibilityOutput]) -> None:
        self._store(_record_of_key(key), result.output.model_dump(mode="json"), result.call_id, result.engine)
        self.assessed += 1

    def done(self) -> set[int]:
        """Records (as stored, not mapped to primaries) assessed in this batch."""
        return {int(a["record_id"]) for a in self.project.assessments(stage=STAGE, criteria_version=self.version)
                if a["batch_id"] == self.batch_id}

    def recover(self) -> int:
        """Store assessments for calls of this batch that finished without one (a run killed
        between the call log and the assessment, or interrupted with calls in flight)."""
        newest = finished_calls(self.project, self.batch_id)
        if not newest:
            return 0
        done = self.done()
        recovered = 0
        for key, row in newest.items():
            record_id = _record_of_key(key)
            if record_id in done:
                continue
            self._store(record_id, row.parsed, int(row.id), row.engine)
            recovered += 1
        return recovered


def run_screening(
    project: Project,
    engine: str | Engine | None = None,
    *,
    limit: int | None = None,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    auto_decide: bool = False,
    order: str = "rank",
    engine_options: Mapping[str, Any] | None = None,
    progress: bool | ProgressCallback | None = False,
    seed: int = 0,
    stage: str = STAGE,
    budget: int | None = None,
    embeddings: bool = True,
) -> ScreeningRun:
    """Assess every record no person has screened yet against the current criteria.

    One record per duplicate group; records already assessed in this batch (same criteria
    version, engine and model) are skipped, so a re-run continues an interrupted one. ``limit``
    caps the records assessed by this call, taken in ranking order (``order="rank"``, the order
    ``leads next`` shows them) or record order (``"id"``). ``auto_decide`` records unattended AI
    decisions (actor ``ai:<engine>``, see :func:`ai_decision_for`). ``concurrency`` defaults to 1
    for the classic engine (CPU-bound) and 4 for model servers.

    ``stage="full_text"`` assesses the attached full texts of the records that went on to full
    text instead (:func:`leads.screen.fulltext.run_fulltext_screening`, record order; ``budget``
    caps the characters of abstract and methods read) and returns a
    :class:`~leads.screen.fulltext.FullTextRun`.

    ``embeddings``: first compute the records' sentence embeddings for the ranking
    (:func:`prepare_embeddings`; once per set of records, then cached).
    """
    if stage == "full_text":
        from leads.screen.fulltext import run_fulltext_screening

        return run_fulltext_screening(project, engine, limit=limit, concurrency=concurrency, rate_limit=rate_limit,
                                      auto_decide=auto_decide, budget=budget, engine_options=engine_options,
                                      progress=progress)
    if stage != STAGE:
        raise ProjectError(f"stage must be {STAGE} or full_text (got {stage!r})")
    if budget is not None:
        raise ProjectError("budget applies to full-text screening (stage='full_text') only")
    if order not in ("rank", "id"):
        raise ValueError("order is 'rank' or 'id'")
    if limit is not None and limit < 0:
        raise ProjectError("limit must not be negative")
    started = time.perf_counter()
    state = _load_state(project)
    if not state.criteria:
        raise ProjectError("the project has no eligibility criteria: set them with `leads criteria set` "
                           "or draft them with `leads criteria generate`")
    if embeddings:
        prepare_embeddings(project)
    version = state.criteria_version
    assert version is not None
    runner, owned = open_engine(project, engine, engine_options)
    try:
        task = TASKS["eligibility"]
        if not runner.supports(task):
            raise EngineError(f"engine {runner.name!r} has no eligibility task")
        batch_id = assessment_batch_id(version, runner)
        recorder = _Recorder(project, state, batch_id, auto_decide)
        recovered = recorder.recover()
        done = {_primary(state.primaries, rid) for rid in recorder.done()}
        unscreened = state.unscreened
        no_text = [rid for rid in unscreened if not (state.records[rid].title or state.records[rid].abstract)]
        skip = done | set(no_text)
        todo = [rid for rid in unscreened if rid not in skip]
        already = sum(1 for rid in unscreened if rid in done)
        if order == "rank" and len(todo) > 1 and (limit is None or limit < len(todo)):
            position = {rid: i for i, rid in enumerate(_rank(project, state, seed=seed).order)}
            todo.sort(key=lambda rid: position.get(rid, len(position)))
        selected = todo if limit is None else todo[:limit]

        def items() -> Iterator[tuple[str, EligibilityInput]]:
            for rid in selected:
                yield f"record-{rid}", _eligibility_input(state.records[rid], state.criteria)

        workers = concurrency or (1 if runner.name == "classic" else 4)
        report: BatchReport | None = None
        try:
            if selected:
                report = run_batch(runner, task, items(), batch_id=batch_id, concurrency=workers,
                                   rate_limit=rate_limit, on_result=recorder.on_result, progress=progress,
                                   total=len(selected))
        finally:
            # Calls that finished while the run was being interrupted have no assessment yet.
            recovered += recorder.recover()
        project.log("screen", {"criteria_version": version, "engine": runner.name, "model": runner.model,
                               "batch_id": batch_id, "assessed": recorder.assessed, "recovered": recovered,
                               "failed": len(report.failed) if report else 0,
                               "ai_decisions": recorder.decisions})
        finished = {_primary(state.primaries, rid) for rid in recorder.done()} | set(no_text)
        remaining = sum(1 for rid in unscreened if rid not in finished)
        return ScreeningRun(
            criteria_version=version, engine=runner.name, model=runner.model, batch_id=batch_id,
            to_assess=len(todo), assessed=recorder.assessed, recovered=recovered, already_assessed=already,
            no_text=no_text, remaining=remaining, failed=list(report.failed) if report else [],
            ai_decisions=recorder.decisions, elapsed=time.perf_counter() - started, report=report,
        )
    finally:
        if owned:
            runner.close()


# ---------------------------------------------------------------------------------------------
# The next record
# ---------------------------------------------------------------------------------------------


@dataclass
class NextRecord:
    """The record to screen now, why it comes now, and what the AI said about it."""

    record_id: int
    record: Record
    score: float
    prior_score: float | None
    mode: str
    remaining: int
    """Records no person has screened yet (this one included)."""
    screened: int
    relevant_found: int
    criteria_version: int | None
    assessment: Assessment | None
    """The newest assessment under the current criteria, else the newest under an older version
    (then ``stale`` is true), else ``None``."""
    stale: bool
    ai_decision: dict[str, Any] | None
    """A standing unattended AI decision on the record (actor_kind ``ai``), if any."""
    stopping: Any
    assessed: int
    """Records with an assessment under the current criteria."""

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        ai = None
        if self.ai_decision is not None:
            ai = {k: self.ai_decision.get(k) for k in ("id", "label", "reasons", "actor", "actor_kind",
                                                       "call_id", "criteria_version", "created_at")}
            created = ai.get("created_at")
            if isinstance(created, dt.datetime):
                ai["created_at"] = created.isoformat()
        return {
            "record_id": self.record_id,
            "record": {"title": r.title, "abstract": r.abstract, "year": r.year, "authors": r.authors,
                       "journal": r.journal, "identifiers": r.identifiers(), "display_id": r.display_id()},
            "score": round(self.score, 6),
            "prior_score": None if self.prior_score is None else round(self.prior_score, 6),
            "ranking": self.mode,
            "remaining": self.remaining,
            "screened": self.screened,
            "relevant_found": self.relevant_found,
            "criteria_version": self.criteria_version,
            "assessed": self.assessed,
            "assessment": self.assessment.as_dict() if self.assessment else None,
            "assessment_stale": self.stale,
            "ai_decision": ai,
            "stopping": self.stopping.as_dict(),
        }


def _older_assessment(project: Project, state: _State, record_id: int) -> Assessment | None:
    members = [m for m, p in state.primaries.items() if p == record_id] or [record_id]
    rows = project.assessments(stage=STAGE, record_ids=members)
    if not rows:
        return None
    row = rows[-1]
    return _assessment(row, current_criteria(project, int(row["criteria_version"])))


def next_record(
    project: Project,
    *,
    seed: int = 0,
    assess: bool = False,
    engine: str | Engine | None = None,
    engine_options: Mapping[str, Any] | None = None,
    skip: Collection[int] = (),
) -> NextRecord | None:
    """The record no person has screened yet that ranks first, with its assessment and the
    stopping estimate; ``None`` when every record was screened. With ``assess``, a record that
    has no assessment under the current criteria is assessed first (and it is stored).
    ``skip``: records passed over in this session (the next one after them is returned)."""
    state = _load_state(project)
    ranking = _rank(project, state, seed=seed)
    record_id = next((rid for rid in ranking.order if rid not in skip), None)
    if record_id is None:
        return None
    if assess and state.criteria and record_id not in state.assessments and \
            (state.records[record_id].title or state.records[record_id].abstract):
        runner, owned = open_engine(project, engine, engine_options)
        try:
            batch_id = assessment_batch_id(state.criteria[0].version, runner)
            recorder = _Recorder(project, state, batch_id, auto_decide=False)
            result = runner.run(TASKS["eligibility"], _eligibility_input(state.records[record_id], state.criteria),
                                batch_id=batch_id, item_key=f"record-{record_id}")
            recorder.on_result(f"record-{record_id}", result)
        finally:
            if owned:
                runner.close()
        state.assessments = latest_assessments(project, state.criteria_version, primaries=state.primaries)
    row = state.assessments.get(record_id)
    assessment = _assessment(row, state.criteria) if row is not None else _older_assessment(project, state, record_id)
    stopping = _stopping(state)
    return NextRecord(
        record_id=record_id, record=_full_record(project, record_id), score=ranking.scores[record_id],
        prior_score=ranking.prior.get(record_id) if ranking.prior else None, mode=ranking.mode,
        remaining=len(ranking.order), screened=len(state.screened_order), relevant_found=stopping.relevant_found,
        criteria_version=state.criteria_version, assessment=assessment,
        stale=assessment is not None and row is None, ai_decision=state.ai.get(record_id), stopping=stopping,
        assessed=len(state.assessments),
    )


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------


def decide(
    project: Project,
    record_id: int,
    label: str,
    *,
    reasons: Iterable[str] = (),
    note: str | None = None,
    reviewer: str | None = None,
    stage: str = STAGE,
    seconds_spent: float | None = None,
) -> dict[str, Any]:
    """Append a person's decision on a record; returns the stored row (with ``criteria_version``).

    ``reasons`` name criteria of the current version (``E1``, ``I2`` or their numbers); each is
    stored as ``"E1: <text>"`` so the decision says which criterion, under which version, it
    rests on. ``reviewer`` is the person deciding (default: the project's actor); the decision
    is marked ``ai_assisted`` when the record has an AI assessment under the current criteria.
    """
    criteria = current_criteria(project)
    refs = [r for r in reasons if r and r.strip()]
    resolved = [resolve_criterion(criteria, ref).as_reason() for ref in refs]
    actor = reviewer.strip() if reviewer and reviewer.strip() else project.actor
    if actor.startswith(AI_ACTOR_PREFIX):
        raise ProjectError(f"reviewer names starting with {AI_ACTOR_PREFIX!r} are reserved for AI decisions")
    with project.engine.connect() as conn:
        if conn.execute(sa.select(t.records.c.id).where(t.records.c.id == record_id)).first() is None:
            raise NotFoundError(f"record {record_id} does not exist in this project")
    project.ensure_user(actor)
    assisted = None
    if criteria:
        primaries = project.duplicate_primaries()
        key = primaries.get(record_id, record_id)
        members = {record_id, key, *(m for m, p in primaries.items() if p == key)}
        assisted = bool(project.assessments(stage=stage, criteria_version=criteria[0].version,
                                            record_ids=members))
    decision_id = project.decide(record_id, label, stage=stage, reasons=list(dict.fromkeys(resolved)),
                                 seconds_spent=seconds_spent, actor_kind="human", ai_assisted=assisted,
                                 note=note, actor=actor)
    rows = [r for r in project.decision_history(stage, record_ids=[record_id]) if r["id"] == decision_id]
    return rows[0]

