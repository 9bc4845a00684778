"""Synthesis from a review project: pool the standing trial-results extractions per outcome.

The input is the project's standing ``results`` extraction rows (:meth:`Project.extractions`
returns a reviewer's accepted or edited value in place of the AI's proposal): each row holds a
:class:`~leads.tasks.extraction.ResultsOutput` for one outcome of one study (``field`` is
``"results: <outcome>"``). Rows are grouped by outcome, turned into studies with
:func:`~leads.synthesis.adapters.study_from_results` (every number keeps its record, extraction
row id, model call and located quote as :class:`~leads.synthesis.models.Provenance`), pooled with
:func:`~leads.synthesis.pooling.meta_analysis`, and drawn as forest plots whose study rows link to
``#study-<study id>`` (the report's anchors for the extracted values and their quotes).

A row that cannot enter the analysis (a number not reported, a median, a group missing) is
listed in :attr:`OutcomeSynthesis.skipped` with the reason, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from leads.project import Project
from leads.synthesis.adapters import study_from_results
from leads.synthesis.models import (
    BinaryStudy,
    ContinuousStudy,
    DataError,
    GenericStudy,
    MeasureName,
    MetaAnalysis,
    ModelName,
    SynthesisError,
    SynthesisInput,
    Tau2Method,
)
from leads.tasks.extraction import ResultsOutput

__all__ = [
    "OutcomeSynthesis",
    "ProjectSynthesis",
    "SkippedRow",
    "outcome_of_field",
    "study_label",
    "synthesize_project",
]

RESULTS_PREFIX = "results:"
BINARY_MEASURES = ("RR", "OR", "RD")
CONTINUOUS_MEASURES = ("MD", "SMD")


@dataclass
class SkippedRow:
    """A results row left out of the pooling, and why."""

    record_id: int
    extraction_id: int
    study_id: str
    reason: str


@dataclass
class OutcomeSynthesis:
    """One outcome's analysis: the input built from the project (with provenance), the result
    (``None`` when no study could be pooled), the rows left out, and the plot files written."""

    outcome: str
    measure: str
    input: SynthesisInput | None
    analysis: MetaAnalysis | None
    skipped: list[SkippedRow] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    """study id -> extraction row id of the results row the study was built from"""
    plots: list[Path] = field(default_factory=list)
    error: str | None = None

    @property
    def slug(self) -> str:
        return _slug(self.outcome)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome, "measure": self.measure, "rows": self.rows,
            "skipped": [s.__dict__ for s in self.skipped], "plots": [str(p) for p in self.plots],
            "error": self.error,
        }
        if self.analysis is not None:
            primary = self.analysis.primary
            out["pooled"] = {"model": primary.model, "method": primary.method,
                             "estimate": primary.display_estimate, "ci_lower": primary.display_ci_lower,
                             "ci_upper": primary.display_ci_upper, "p_value": primary.p_value,
                             "studies": len(self.analysis.studies),
                             "i2": self.analysis.heterogeneity.i2, "tau2": self.analysis.heterogeneity.tau2}
        return out


@dataclass
class ProjectSynthesis:
    outcomes: list[OutcomeSynthesis] = field(default_factory=list)

    def outcome(self, name: str) -> OutcomeSynthesis:
        for item in self.outcomes:
            if item.outcome.lower() == name.lower():
                return item
        raise KeyError(name)

    def summary(self) -> str:
        lines = []
        for o in self.outcomes:
            if o.analysis is None:
                lines.append(f"{o.outcome}: not pooled ({o.error or 'no usable study'})")
                continue
            p = o.analysis.primary
            lines.append(f"{o.outcome}: {o.measure} {p.display_estimate:.2f} "
                         f"[{p.display_ci_lower:.2f}, {p.display_ci_upper:.2f}] from "
                         f"{len(o.analysis.studies)} studies ({p.model} effects, {p.method}); "
                         f"{len(o.skipped)} left out")
        return "\n".join(lines) or "no results extractions to pool"

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": [o.as_dict() for o in self.outcomes]}


def outcome_of_field(field_name: str) -> str:
    """``"results: All-cause mortality"`` -> ``"All-cause mortality"``."""
    text = field_name.strip()
    if text.lower().startswith(RESULTS_PREFIX):
        text = text[len(RESULTS_PREFIX):]
    return text.strip()


def study_label(record: Any, record_id: int) -> str:
    """A forest-plot label: first author's surname and year (``Wang 2020``), else the title's start."""
    authors = list(getattr(record, "authors", []) or [])
    year = getattr(record, "year", None)
    if authors:
        first = authors[0]
        surname = first.split(",")[0] if "," in first else first
        # "Beigel JH" -> "Beigel"; a consortium keeps its name
        words = surname.split()
        if len(words) == 2 and words[1].isupper() and len(words[1]) <= 3:
            surname = words[0]
        return f"{surname} {year}" if year else surname
    title = (getattr(record, "title", None) or "").strip()
    if title:
        short = title if len(title) <= 40 else title[:38].rstrip() + "…"
        return f"{short} ({year})" if year else short
    return f"record {record_id}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "outcome"


def _groups(output: ResultsOutput) -> tuple[str, str] | None:
    ids = [v.group_id for v in output.values]
    if "intervention" in ids and "comparator" in ids:
        return "intervention", "comparator"
    if len(ids) >= 2:
        return ids[0], ids[1]
    return None


def _missing(study: BinaryStudy | ContinuousStudy) -> str | None:
    if isinstance(study, BinaryStudy):
        for arm_name, arm in (("intervention", study.treatment), ("comparator", study.control)):
            if arm.events is None:
                return f"{arm_name} events not reported"
            if arm.total is None:
                return f"{arm_name} group size not reported"
        return None
    for arm_name, carm in (("intervention", study.treatment), ("comparator", study.control)):
        if carm.mean is None:
            return f"{arm_name} mean not reported"
        if carm.n is None:
            return f"{arm_name} group size not reported"
        if carm.sd is None and carm.se is None and (carm.ci_lower is None or carm.ci_upper is None):
            return f"{arm_name} SD (or SE, CI) not reported"
    return None


def _measure_for(kind: str, measure: str) -> str:
    if kind == "binary" and measure in CONTINUOUS_MEASURES:
        return "RR"
    if kind == "continuous" and measure in BINARY_MEASURES:
        return "MD"
    return measure


def synthesize_project(
    project: Project,
    *,
    measure: MeasureName = "RR",
    continuous_measure: MeasureName = "MD",
    model: ModelName = "random",
    tau2_method: Tau2Method = "DL",
    hksj: bool = False,
    outcomes: Sequence[str] | None = None,
    record_ids: Iterable[int] | None = None,
    out_dir: str | Path | None = None,
    plot_formats: Sequence[Literal["svg", "png"]] = ("svg",),
    treatment_label: str = "Intervention",
    control_label: str = "Comparator",
) -> ProjectSynthesis:
    """Pool each outcome's standing results extractions; forest plots go to ``out_dir``.

    ``measure`` is used for binary outcomes and ``continuous_measure`` for continuous ones
    (a binary measure given for a continuous outcome falls back to MD and vice versa).
    ``outcomes`` keeps only those outcomes (case-insensitive); ``record_ids`` only those studies
    (e.g. the included ones).
    """
    wanted = {o.lower() for o in outcomes} if outcomes else None
    rows = project.extractions(task="results", record_ids=list(record_ids) if record_ids is not None else None)
    by_outcome: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = outcome_of_field(row["field"])
        if wanted is not None and name.lower() not in wanted:
            continue
        by_outcome.setdefault(name, []).append(row)
    documents = _document_names(project)
    result = ProjectSynthesis()
    directory = Path(out_dir) if out_dir is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    for name, outcome_rows in by_outcome.items():
        result.outcomes.append(_one_outcome(
            project, name, outcome_rows, documents, measure=measure, continuous_measure=continuous_measure,
            model=model, tau2_method=tau2_method, hksj=hksj, directory=directory, plot_formats=plot_formats,
            treatment_label=treatment_label, control_label=control_label))
    return result


def _document_names(project: Project) -> dict[int, str]:
    from leads.documents.store import list_documents

    return {d.id: d.file_name or f"document {d.id}" for d in list_documents(project)}


def _one_outcome(project: Project, name: str, rows: list[dict[str, Any]], documents: dict[int, str], *,
                 measure: str, continuous_measure: str, model: str, tau2_method: str, hksj: bool,
                 directory: Path | None, plot_formats: Sequence[str], treatment_label: str,
                 control_label: str) -> OutcomeSynthesis:
    studies: list[BinaryStudy | ContinuousStudy | GenericStudy] = []
    skipped: list[SkippedRow] = []
    ids: dict[str, int] = {}
    used_labels: set[str] = set()
    kinds: set[str] = set()
    for row in rows:
        record_id = int(row["record_id"])
        study_id = f"record-{record_id}"
        if row.get("status") == "rejected":
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id, "rejected by a reviewer"))
            continue
        if row.get("value") is None:
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id, "not reported"))
            continue
        try:
            output = ResultsOutput.model_validate(row["value"])
        except ValidationError as exc:
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id,
                                      f"the stored value is not a trial-results output: {exc.errors()[0]['msg']}"))
            continue
        groups = _groups(output)
        if groups is None:
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id, "fewer than two groups reported"))
            continue
        label = study_label(project.record(record_id).record, record_id)
        while label in used_labels:
            label += "'"
        document = documents.get(row["document_id"]) if row.get("document_id") is not None else None
        try:
            study = study_from_results(
                output, study_id=study_id, treatment_group=groups[0], control_group=groups[1],
                label=label, record_id=record_id, call_id=row.get("call_id"), document=document,
                kind=output.outcome_type, value_ids={g: int(row["id"]) for g in groups})
        except DataError as exc:
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id, exc.reason))
            continue
        reason = _missing(study)
        if reason is not None:
            skipped.append(SkippedRow(record_id, int(row["id"]), study_id, reason))
            continue
        study.outcome = name
        used_labels.add(label)
        studies.append(study)
        ids[study_id] = int(row["id"])
        kinds.add(study.type)
    if len(kinds) > 1:
        # a mixed outcome cannot be pooled: keep the type most studies report
        majority = max(kinds, key=lambda k: sum(1 for s in studies if s.type == k))
        for other in [s for s in studies if s.type != majority]:
            studies.remove(other)
            skipped.append(SkippedRow(int(other.record_id or 0), ids.pop(other.study_id), other.study_id,
                                      f"reported as {other.type} while the other studies are {majority}"))
    kind = next(iter({s.type for s in studies}), "binary")
    chosen = _measure_for(kind, measure if kind == "binary" else continuous_measure)
    synthesis = OutcomeSynthesis(outcome=name, measure=chosen, input=None, analysis=None, skipped=skipped,
                                 rows=ids)
    if not studies:
        synthesis.error = "no study reports the numbers this outcome needs"
        return synthesis
    data = SynthesisInput(outcome=name, treatment_label=treatment_label, control_label=control_label,
                          studies=studies)
    synthesis.input = data
    from leads.synthesis.pooling import meta_analysis

    try:
        analysis = meta_analysis(data, chosen, model=model, tau2_method=tau2_method, hksj=hksj)  # type: ignore[arg-type]
    except SynthesisError as exc:
        synthesis.error = str(exc)
        return synthesis
    synthesis.analysis = analysis
    if directory is not None:
        from leads.synthesis.forest import forest_plot

        for fmt in plot_formats:
            path = directory / f"forest-{synthesis.slug}.{fmt}"
            forest_plot(analysis, path, fmt=fmt,  # type: ignore[arg-type]
                        link_template="#study-{study_id}" if fmt == "svg" else None,
                        title=f"{name}: {analysis.measure} ({analysis.model} effects)")
            synthesis.plots.append(path)
    return synthesis
