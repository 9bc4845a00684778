"""Classic trial-results extraction: arm-level numbers for one outcome, each grounded in the paper.

Given a paper, an outcome and the arms (groups) to compare, :func:`extract_results` finds the
table row, table block or sentence that reports the outcome for those arms and reads, per arm:

- binary outcomes: events and group size (``45/120``, ``45 (37.5%)`` under an arm with its
  ``n``, a percentage with a known group size, converted and recorded as such);
- continuous outcomes: mean, SD and group size (``12.3 ± 4.5``, ``12.3 (4.5)`` under ``Mean
  (SD)``, separate ``Mean``/``SD`` columns); an SE, a CI, or a median with quartiles or range is
  kept as reported, and the SD (and mean) it implies is added as a :class:`Derivation` naming the
  formula (Cochrane Handbook 6.5.2.2; Wan et al. 2014), never written into ``sd``/``mean``.

How it decides (see :mod:`leads.extract.results_evidence` for the reading of tables and
sentences): every candidate is scored by how well its labels name the outcome (rare words of the
outcome count more; abbreviations the paper defines are expanded), whether it has the numbers
the outcome type needs for both arms, and whether it is a baseline table; among time points of
the same row, a time named in the outcome wins, then a post-intervention column (post-test,
T1, end of treatment), then the latest follow-up. Group sizes come from the chosen evidence when
it has them (``62/99``, a column's ``n = 23``), else from the arm's size stated elsewhere in the
paper (``The intervention group (n=35)``, ``Intervention (n = 125)``); in a single-group
before/after design both "arms" have the whole sample's size.

The classic engine calls :func:`classic_results` for :class:`~leads.tasks.TrialResultsTask`;
:func:`results_contract` gives the ``leads extract results --json`` shape.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from leads.engines.classic import implements
from leads.extract.conversions import (
    ConversionError,
    Converted,
    mean_sd_from_five_numbers,
    mean_sd_from_median_iqr,
    mean_sd_from_median_range,
    sd_from_ci,
    sd_from_se,
)
from leads.extract.results_doc import DocView, doc_view, remember_document
from leads.extract.results_evidence import (
    ArmStats,
    Candidate,
    GroupSize,
    group_sizes,
    other_arm_names,
    sentence_candidates,
    table_candidates,
    time_rank,
    total_sizes,
)
from leads.extract.results_match import ArmMatcher, ArmQuery, OutcomeMatcher, abbreviations
from leads.tasks._base import Evidence
from leads.tasks.extraction import (
    ArmResult,
    Derivation,
    Group,
    GroupValue,
    ResultsInput,
    ResultsOutput,
)

__all__ = [
    "VERSION",
    "ResultsChoice",
    "classic_results",
    "extract_results",
    "infer_outcome_type",
    "remember_document",
    "results_contract",
    "results_input",
]

VERSION = "1"
OutcomeType = Literal["binary", "continuous"]
MIN_OUTCOME_SCORE = 0.3

_BINARY_WORDS = re.compile(
    r"\b(?:rate|rates|incidence|proportion|number of|percentage|events?|mortality|death|deaths|died|survival|"
    r"response|responders?|remission|relapse|recurrence|adverse|complications?|infections?|failure|success|"
    r"occurrence|prevalence|risk|cure|cured|abstinence|admissions?|readmissions?|prescriptions?|use of|"
    r"continued|discontinu\w+|withdraw\w*|obstruction|pregnanc\w+|births?|sick leave|stroke|infarction|"
    r"hospitali[sz]ation|transfusion|leakage|stenosis)\b", re.IGNORECASE)
_CONTINUOUS_WORDS = re.compile(
    r"\b(?:mean|score|scores|scale|level|levels|concentration|duration|length|time|weight|gain|loss|index|"
    r"pressure|volume|intake|count|amount|change|days|hours|size|dose|quality of life|pain|severity|"
    r"frequency|fitness|test|endurance|flexibility|agility|activity|motivation|climate|losses|output)\b",
    re.IGNORECASE)


# "at 28 days" says when, not what: a unit of time counts for little.
_TIME_UNITS = re.compile(r"\b(?:days|hours|time)\b", re.IGNORECASE)
_SUMMARY_ROW = re.compile(r"\b(?:total|overall|global|composite|summary)\b", re.IGNORECASE)


def infer_outcome_type(outcome: str, candidates: Sequence[Candidate] = ()) -> OutcomeType:
    """Binary or continuous, from the outcome's words, else from the numbers the paper gives."""
    binary = len(_BINARY_WORDS.findall(outcome))
    continuous = len(_CONTINUOUS_WORDS.findall(outcome)) - 0.5 * len(_TIME_UNITS.findall(outcome))
    if binary != continuous:
        return "binary" if binary > continuous else "continuous"
    votes = {"binary": 0.0, "continuous": 0.0}
    for cand in candidates:
        if cand.outcome_score < MIN_OUTCOME_SCORE:
            continue
        for stats in cand.arms.values():
            if stats.get("mean") is not None or stats.get("median") is not None:
                votes["continuous"] += cand.outcome_score
            elif stats.get("events") is not None:
                votes["binary"] += cand.outcome_score
    return "binary" if votes["binary"] > votes["continuous"] else "continuous"


@dataclass
class ResultsChoice:
    """What :func:`extract_results` decided, kept for evaluation and error analysis."""

    output: ResultsOutput
    candidate: Candidate | None
    candidates: list[Candidate]
    sizes: dict[str, GroupSize]


def _arm_queries(groups: Sequence[Group]) -> list[ArmQuery]:
    queries = []
    comparator_words = re.compile(r"\b(?:placebo|control|usual care|treatment as usual|standard|sham|"
                                  r"no (?:treatment|intervention)|comparator|waitlist|wait-list|pre)\b", re.IGNORECASE)
    for i, group in enumerate(groups):
        role = "other"
        if group.id.lower().startswith(("interv", "exp", "treat")):
            role = "intervention"
        elif group.id.lower().startswith(("compar", "control", "placebo")):
            role = "comparator"
        elif len(groups) == 2:
            role = "intervention" if i == 0 else "comparator"
        if role == "other" and comparator_words.search(group.title):
            role = "comparator"
        aliases = [group.description] if group.description and len(group.description) <= 80 else []
        queries.append(ArmQuery(group.id, group.title, role, aliases))
    return queries


def _choose_sizes(sizes: Sequence[GroupSize]) -> dict[str, GroupSize]:
    """Per arm, the size with the most support (summed weights of identical values)."""
    by_arm: dict[str, dict[float, list[GroupSize]]] = defaultdict(lambda: defaultdict(list))
    for size in sizes:
        by_arm[size.arm][size.n].append(size)
    chosen: dict[str, GroupSize] = {}
    for arm, values in by_arm.items():
        best_n = max(values, key=lambda n: (sum(s.weight for s in values[n]), max(s.weight for s in values[n]), n))
        chosen[arm] = max(values[best_n], key=lambda s: s.weight)
    return chosen


def _score(cand: Candidate, arm_ids: Sequence[str], outcome_type: OutcomeType, outcome: OutcomeMatcher,
           sizes: dict[str, GroupSize]) -> float:
    score = cand.outcome_score
    if score < MIN_OUTCOME_SCORE:
        return -1.0
    need = ("events",) if outcome_type == "binary" else ("mean",)
    complete = [a for a in arm_ids if cand.has(a, *need)]
    if outcome_type == "binary":
        complete += [a for a in arm_ids if a not in complete and cand.has(a, "percent")
                     and (cand.has(a, "total") or cand.has(a, "n") or a in sizes)]
    else:
        # Medians are a result too (reported as such, never as means), second to means.
        medians = [a for a in arm_ids if a not in complete and cand.has(a, "median")]
        if medians:
            score -= 0.1
        complete += medians
    if len(complete) < len(arm_ids):
        # A reading that gives numbers for only some arms is not a result for the comparison.
        return -1.0
    score += 0.25 * len(complete) / max(1, len(arm_ids))
    if outcome_type == "continuous":
        score += 0.05 * sum(1 for a in arm_ids if cand.has(a, "sd")) / max(1, len(arm_ids))
    else:
        score += 0.05 * sum(1 for a in arm_ids if cand.has(a, "events", "total")) / max(1, len(arm_ids))
        if any(not cand.has(a, "events") for a in complete):
            # Percentages alone: the counts must be computed; any reading with counts is better.
            score -= 0.3
    if cand.baseline_table:
        score -= 0.5
    if cand.source == "table":
        score += 0.05
    if cand.source == "table":
        row_label = cand.label.split(" [")[0]
        score += 0.1 * outcome.precision(row_label)
        if _SUMMARY_ROW.search(row_label):
            score += 0.03
    rank = time_rank(cand.time_label, outcome.outcome)
    score += 0.02 * rank[0] + 0.01 * min(rank[1], 3650.0) / 3650.0
    if rank[0] == 1 and not outcome.score(cand.time_label):
        # A column for a subgroup (children, adolescents, women) is not the trial's result.
        score -= 0.7
    return score


def _events_from_percent(percent: float, n: float) -> Converted | None:
    """Events from a percentage of a known group size, only when the rounding is unambiguous."""
    events = round(percent * n / 100)
    decimals = 1
    back = 100 * events / n
    if abs(back - percent) > 0.5 * 10 ** (-decimals) + 1e-9 and abs(round(back) - percent) > 1e-9:
        return None
    return Converted(sd=float("nan"), mean=float(events), formula="events = round(percent × N / 100)",
                     expression="events = round(percent × N / 100)", inputs={"percent": percent, "n": n})


def _evidence(text: str, spans: list[tuple[int, int]]) -> list[Evidence]:
    out = []
    for start, end in sorted(set(spans)):
        if 0 <= start < end <= len(text):
            out.append(Evidence(quote=text[start:end], start=start, end=end))
    return out


def _context_span(view: DocView, cand: Candidate) -> tuple[int, int] | None:
    if cand.sentence is not None:
        return cand.sentence
    if cand.table is not None and cand.row is not None:
        table = next((t for t in view.tables if t.index == cand.table), None)
        if table is not None:
            spans = [s for s in table.cell_spans[cand.row] if s is not None] if cand.row < len(table.cell_spans) else []
            if spans:
                return (min(s[0] for s in spans), max(s[1] for s in spans))
    return None


def _arm_result(arm_id: str, stats: ArmStats | None, size: GroupSize | None, outcome_type: OutcomeType,
                text: str, derive: bool) -> ArmResult:
    values = stats.values if stats is not None else {}
    spans: list[tuple[int, int]] = list(stats.spans.values()) if stats is not None else []
    group_size = values.get("total", values.get("n"))
    if group_size is None and size is not None:
        group_size = size.n
        if size.span is not None:
            spans.append(size.span)
    result = ArmResult(group_id=arm_id, group_size=group_size)
    derived: list[Derivation] = []
    if outcome_type == "binary":
        result.events = values.get("events")
        result.percent = values.get("percent")
        if result.events is None and result.percent is not None and group_size:
            conv = _events_from_percent(result.percent, group_size)
            if conv is not None and conv.mean is not None:
                derived.append(Derivation(field="events", value=conv.mean, formula=conv.formula,
                                          expression=conv.expression, inputs=conv.inputs))
    else:
        result.mean = values.get("mean")
        result.sd = values.get("sd")
        result.se = values.get("se")
        result.ci_low, result.ci_high = values.get("ci_low"), values.get("ci_high")
        result.ci_level = stats.ci_level if stats is not None and result.ci_low is not None else None
        result.median = values.get("median")
        result.q1, result.q3 = values.get("q1"), values.get("q3")
        result.minimum, result.maximum = values.get("min"), values.get("max")
        if derive:
            derived.extend(_derive_continuous(result))
    result.derived = derived
    result.evidence = _evidence(text, spans)
    by_field: dict[str, tuple[int, int]] = dict(stats.spans) if stats is not None else {}
    if "total" in by_field or "n" in by_field:
        by_field["group_size"] = by_field.get("total", by_field.get("n", (0, 0)))
    elif size is not None and size.span is not None and result.group_size is not None:
        by_field["group_size"] = size.span
    names = {"events": "events", "group_size": "group_size", "percent": "percent", "mean": "mean", "sd": "sd",
             "se": "se", "median": "median", "q1": "q1", "q3": "q3", "min": "minimum", "max": "maximum",
             "ci_low": "ci_low", "ci_high": "ci_high"}
    for key, name in names.items():
        span = by_field.get(key)
        if span is not None and getattr(result, name) is not None:
            found = _evidence(text, [span])
            if found:
                result.field_evidence[name] = found[0]
    return result


def _derive_continuous(r: ArmResult) -> list[Derivation]:
    out: list[Derivation] = []
    n = r.group_size

    def add(field: str, value: float, conv: Converted) -> None:
        if value is not None and math.isfinite(value):
            out.append(Derivation(field=field, value=value, formula=conv.formula, expression=conv.expression,
                                  inputs=conv.inputs))

    try:
        if r.sd is None and r.se is not None and n:
            conv = sd_from_se(r.se, n)
            add("sd", conv.sd, conv)
        elif r.sd is None and r.ci_low is not None and r.ci_high is not None and n:
            conv = sd_from_ci(r.ci_low, r.ci_high, n, level=r.ci_level or 0.95)
            add("sd", conv.sd, conv)
        elif r.mean is None and r.median is not None and n:
            if None not in (r.q1, r.q3, r.minimum, r.maximum):
                conv = mean_sd_from_five_numbers(r.minimum, r.q1, r.median, r.q3, r.maximum, n)  # type: ignore[arg-type]
            elif r.q1 is not None and r.q3 is not None:
                conv = mean_sd_from_median_iqr(r.q1, r.median, r.q3, n)
            elif r.minimum is not None and r.maximum is not None:
                conv = mean_sd_from_median_range(r.minimum, r.median, r.maximum, n)
            else:
                return out
            if conv.mean is not None:
                add("mean", conv.mean, conv)
            add("sd", conv.sd, conv)
    except ConversionError:
        return out
    return out


def extract_results(inp: ResultsInput, *, document: Any | None = None, derive: bool = True,
                    relation_model: object | None = None, use_model: bool = True) -> ResultsChoice:
    """Find the outcome's arm-level results in ``inp.text`` (see the module docstring).

    ``relation_model`` replaces the shipped RCT-ART sentence model; ``use_model=False`` reads
    sentences with the position rules alone.
    """
    text = inp.text
    view = doc_view(text, document)
    queries = _arm_queries(inp.groups)
    abbrs = abbreviations(text)
    arms = ArmMatcher(queries, text, abbrs)
    outcome = OutcomeMatcher(" ".join(x for x in (inp.outcome, inp.outcome_description) if x), text, abbrs)
    arms.other_names = other_arm_names(view, arms)
    candidates: list[Candidate] = []
    for table in view.tables:
        candidates.extend(table_candidates(view, table, arms, outcome))
    if relation_model is None and use_model:
        relation_model = _default_relation_model()
    outcome_type: OutcomeType = inp.outcome_type or infer_outcome_type(inp.outcome, candidates)
    candidates.extend(sentence_candidates(view, arms, outcome, relation_model,
                                          bare_means=outcome_type == "continuous"))
    if inp.outcome_type is None:
        outcome_type = infer_outcome_type(inp.outcome, candidates)

    raw_sizes = group_sizes(view, arms)
    if arms.single_group:
        totals = total_sizes(view)
        raw_sizes = [GroupSize(q.id, s.n, s.span, s.weight, s.source) for s in totals for q in queries] or raw_sizes
    sizes = _choose_sizes(raw_sizes)
    arm_ids = [q.id for q in queries]

    # Ties go to the earlier candidate (the first row of a table, the abstract's sentence).
    scored = sorted(((_score(c, arm_ids, outcome_type, outcome, sizes), -i) for i, c in enumerate(candidates)),
                    reverse=True)
    best = candidates[-scored[0][1]] if scored and scored[0][0] > 0 else None

    arm_results = []
    for q in queries:
        stats = best.arms.get(q.id) if best is not None else None
        arm_results.append(_arm_result(q.id, stats, sizes.get(q.id), outcome_type, text, derive))

    values = []
    context = _context_span(view, best) if best is not None else None
    for q, result in zip(queries, arm_results, strict=True):
        number = result.events if outcome_type == "binary" else result.mean
        value = None if number is None else _fmt(number)
        evidence = list(result.evidence)
        if context is not None and number is not None:
            evidence = _evidence(text, [context]) + evidence
        values.append(GroupValue(group_id=q.id, value=value, number=number, evidence=evidence))
    param_type = "COUNT_OF_PARTICIPANTS" if outcome_type == "binary" else "MEAN"
    if outcome_type == "continuous" and all(r.mean is None and r.median is not None for r in arm_results):
        param_type = "MEDIAN"
        for v, r in zip(values, arm_results, strict=True):
            v.number = r.median
            v.value = None if r.median is None else _fmt(r.median)
    notes = []
    if best is None:
        notes.append("no table row or sentence reports this outcome for the arms")
    else:
        notes.append(f"from {best.source}: {best.label}")
        if best.time_label:
            notes.append(f"time point: {best.time_label}")
    output = ResultsOutput(
        outcome=inp.outcome, param_type=param_type,
        unit=(best.unit if best is not None else "") or ("Participants" if outcome_type == "binary" else ""),
        time_frame=best.time_label if best is not None else "",
        unit_of_denominator="Participants",
        denominators={r.group_id: r.group_size for r in arm_results},
        values=values, outcome_type=outcome_type, arms=arm_results, notes=notes,
    )
    return ResultsChoice(output=output, candidate=best, candidates=candidates, sizes=sizes)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_RELATION_MODEL: object | None = None
_RELATION_LOADED = False


def _default_relation_model() -> object | None:
    """The shipped RCT-ART sentence model, if its files are present (else position rules only)."""
    global _RELATION_MODEL, _RELATION_LOADED
    if not _RELATION_LOADED:
        _RELATION_LOADED = True
        try:
            from leads.extract.results_model import ResultSentenceModel
            _RELATION_MODEL = ResultSentenceModel.load()
        except (ImportError, FileNotFoundError):
            _RELATION_MODEL = None
    return _RELATION_MODEL


@implements("results", version=VERSION)
def classic_results(inp: ResultsInput) -> ResultsOutput:
    """The classic engine's trial-results implementation."""
    return extract_results(inp).output


def results_input(document: Any, *, intervention: str, comparator: str, outcome: str,
                  outcome_type: OutcomeType | None = None) -> ResultsInput:
    """The task input for one (intervention, comparator, outcome) question about a parsed
    :class:`~leads.documents.model.Document`; the document is registered so that the classic
    engine reads its tables (any engine can run the returned input)."""
    remember_document(document)
    return ResultsInput(text=document.text, outcome=outcome, outcome_type=outcome_type,
                        groups=[Group(id="intervention", title=intervention[:300]),
                                Group(id="comparator", title=comparator[:300])])


def results_contract(output: ResultsOutput, *, intervention: str | None = None,
                     comparator: str | None = None) -> dict[str, Any]:
    """The ``leads extract results --json`` object: outcome type, intervention and comparator
    numbers (null = not reported), derived values with their formulas, and the evidence."""
    arms = {a.group_id: a for a in output.arms}
    ids = [v.group_id for v in output.values]
    inter = intervention or (ids[0] if ids else None)
    comp = comparator or (ids[1] if len(ids) > 1 else None)

    def arm(group_id: str | None) -> dict[str, Any]:
        a = arms.get(group_id) if group_id else None
        if a is None:
            return {"events": None, "group_size": None, "mean": None, "sd": None}
        return {"events": a.events, "group_size": a.group_size, "mean": a.mean, "sd": a.sd,
                "se": a.se, "median": a.median, "q1": a.q1, "q3": a.q3, "min": a.minimum, "max": a.maximum,
                "percent": a.percent,
                "derived": [d.model_dump() for d in a.derived]}

    evidence: list[dict[str, Any]] = []
    role_of = {inter: "intervention", comp: "comparator"}
    for v in output.values:
        arm_result = arms.get(v.group_id)
        per_field = arm_result.field_evidence if arm_result is not None else {}
        field_spans = {(e.start, e.end) for e in per_field.values()}
        for e in v.evidence:
            if (e.start, e.end) not in field_spans:
                evidence.append({"group": v.group_id, "quote": e.quote, "start": e.start, "end": e.end})
        for name, e in per_field.items():
            item = {"group": v.group_id, "field": name, "quote": e.quote, "start": e.start, "end": e.end}
            if v.group_id in role_of:
                item["arm"] = role_of[v.group_id]
            evidence.append(item)
    return {"outcome": output.outcome, "outcome_type": output.outcome_type, "intervention": arm(inter),
            "comparator": arm(comp), "time_frame": output.time_frame, "unit": output.unit,
            "evidence": evidence, "notes": output.notes}
