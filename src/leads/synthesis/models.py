"""Data models of the synthesis stage: what goes in (arm-level data with provenance) and what
comes out (per-study effects, pooled estimates, heterogeneity), all pydantic so that the
extraction store, the CLI, the web report and scripts exchange the same JSON.

Provenance is carried per value: an arm's ``sources`` maps a field name (``"events"``,
``"total"``, ``"mean"``, ...) to the quotes that support it. A :class:`StudyEffect` collects
them under qualified names (``"treatment.events"``), and a :class:`PooledEstimate` lists the
studies and weights that produced it, so every number on a forest plot can be traced back
span → effect → pooled estimate.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from leads.errors import LeadsError

__all__ = [
    "RATIO_MEASURES",
    "BinaryArm",
    "BinaryStudy",
    "ContinuousArm",
    "ContinuousStudy",
    "DataError",
    "ExcludedStudy",
    "FixedMethod",
    "GenericStudy",
    "Heterogeneity",
    "MeasureName",
    "MetaAnalysis",
    "ModelName",
    "PooledEstimate",
    "Provenance",
    "ReportedEffect",
    "Study",
    "StudyEffect",
    "StudyWeight",
    "SynthesisError",
    "SynthesisInput",
    "Tau2Method",
]

MeasureName = Literal["OR", "RR", "RD", "MD", "SMD"]
ModelName = Literal["fixed", "random"]
FixedMethod = Literal["IV", "MH"]
Tau2Method = Literal["DL", "PM", "REML"]

#: Measures analysed on the log scale and shown exponentiated.
RATIO_MEASURES: frozenset[str] = frozenset({"OR", "RR"})

MEASURE_NAMES: dict[str, str] = {
    "OR": "Odds ratio",
    "RR": "Risk ratio",
    "RD": "Risk difference",
    "MD": "Mean difference",
    "SMD": "Std. mean difference (Hedges' g)",
}


class SynthesisError(LeadsError):
    """A meta-analysis cannot be computed as asked (no usable study, unknown option, ...)."""


class DataError(SynthesisError):
    """A study's data are impossible (events above the total, a negative SD, ...).

    ``study`` is the study id and ``field`` the qualified field at fault (``"treatment.events"``).
    """

    def __init__(self, message: str, *, study: str | None = None, field: str | None = None) -> None:
        self.reason = message
        self.study = study
        self.field = field
        where = []
        if study is not None:
            where.append(f"study {study!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- provenance ------------------------------------------------------------------------------


class Provenance(_Strict):
    """Where a number came from: the record, the extracted value, the quote and its offsets, and
    the model call that suggested it. Every field is optional; fill what is known."""

    record_id: int | str | None = Field(default=None, description="project record the value was read from")
    value_id: int | str | None = Field(default=None, description="id of the extracted value in the store")
    call_id: int | None = Field(default=None, description="call-log id of the model call that proposed it")
    document: str | None = Field(default=None, description="file or document the quote is located in")
    quote: str | None = Field(default=None, description="the supporting text, verbatim")
    start: int | None = Field(default=None, ge=0, description="character offset of the quote's start")
    end: int | None = Field(default=None, ge=0, description="character offset just past the quote")
    note: str | None = None

    @model_validator(mode="after")
    def _offsets(self) -> Provenance:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end offsets, or neither")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end offset {self.end} is before start offset {self.start}")
        return self

    def describe(self) -> str:
        """One line for a tooltip: the quote and where it is."""
        parts = []
        if self.quote:
            parts.append(f"“{self.quote}”")
        where = []
        if self.record_id is not None:
            where.append(f"record {self.record_id}")
        if self.document:
            where.append(self.document)
        if self.start is not None:
            where.append(f"chars {self.start}–{self.end}")
        if self.call_id is not None:
            where.append(f"call {self.call_id}")
        if self.value_id is not None:
            where.append(f"value {self.value_id}")
        if where:
            parts.append(f"({', '.join(where)})")
        if self.note:
            parts.append(self.note)
        return " ".join(parts)


Sources = dict[str, list[Provenance]]


def _check_source_keys(sources: Sources, allowed: tuple[str, ...], what: str) -> Sources:
    unknown = sorted(set(sources) - set(allowed))
    if unknown:
        raise ValueError(f"sources name unknown {what} field(s) {unknown}; use {list(allowed)}")
    return sources


# --- input: arms and studies -----------------------------------------------------------------


class BinaryArm(_Strict):
    """One arm of a dichotomous outcome; ``None`` means not reported."""

    label: str = ""
    events: float | None = Field(default=None, ge=0, description="participants with the event")
    total: float | None = Field(default=None, ge=0, description="participants analysed")
    sources: Sources = Field(default_factory=dict, description="field name -> supporting quotes")

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: Sources) -> Sources:
        return _check_source_keys(value, ("events", "total"), "binary arm")


class ContinuousArm(_Strict):
    """One arm of a continuous outcome. The SD may instead be derived from the standard error of
    the mean or from a confidence interval of the mean (the conversion is recorded)."""

    label: str = ""
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)
    n: float | None = Field(default=None, ge=0)
    se: float | None = Field(default=None, ge=0, description="standard error of the mean")
    ci_lower: float | None = Field(default=None, description="lower confidence limit of the mean")
    ci_upper: float | None = Field(default=None, description="upper confidence limit of the mean")
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    sources: Sources = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: Sources) -> Sources:
        return _check_source_keys(value, ("mean", "sd", "n", "se", "ci_lower", "ci_upper"),
                                  "continuous arm")


class ReportedEffect(_Strict):
    """A study-level effect as the paper reports it (generic inverse variance).

    Ratios (OR, RR) are given on their natural scale; the analysis takes logs. The standard error
    (on the analysis scale) may be replaced by a confidence interval (natural scale).
    """

    measure: MeasureName
    estimate: float
    se: float | None = Field(default=None, gt=0, description="standard error on the analysis scale")
    ci_lower: float | None = None
    ci_upper: float | None = None
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    sources: Sources = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: Sources) -> Sources:
        return _check_source_keys(value, ("estimate", "se", "ci_lower", "ci_upper"), "reported effect")


class _StudyBase(_Strict):
    study_id: str = Field(min_length=1, description="unique within the analysis")
    label: str | None = Field(default=None, description="shown on plots (default: study_id)")
    record_id: int | str | None = Field(default=None, description="the project record of the study")
    outcome: str = ""
    sources: list[Provenance] = Field(default_factory=list,
                                      description="evidence for the study as a whole")

    @property
    def display_label(self) -> str:
        return self.label or self.study_id


class BinaryStudy(_StudyBase):
    type: Literal["binary"] = "binary"
    treatment: BinaryArm
    control: BinaryArm


class ContinuousStudy(_StudyBase):
    type: Literal["continuous"] = "continuous"
    treatment: ContinuousArm
    control: ContinuousArm


class GenericStudy(_StudyBase):
    type: Literal["generic"] = "generic"
    effect: ReportedEffect


Study = Annotated[BinaryStudy | ContinuousStudy | GenericStudy, Field(discriminator="type")]


def _infer_type(raw: dict[str, Any]) -> str | None:
    if "effect" in raw:
        return "generic"
    arms = [raw.get("treatment"), raw.get("control")]
    keys: set[str] = set()
    for arm in arms:
        if isinstance(arm, dict):
            keys |= set(arm)
    if keys & {"events", "total"}:
        return "binary"
    if keys & {"mean", "sd", "n", "se", "ci_lower", "ci_upper"}:
        return "continuous"
    return None


class SynthesisInput(_Strict):
    """The studies of one outcome and comparison. ``type`` may be left out of each study when
    its fields make it clear (``events`` → binary, ``mean`` → continuous, ``effect`` → generic)."""

    outcome: str = ""
    treatment_label: str = "Treatment"
    control_label: str = "Control"
    studies: list[Study] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _types(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("studies"), list):
            studies = []
            for raw in data["studies"]:
                if isinstance(raw, dict) and "type" not in raw:
                    kind = _infer_type(raw)
                    if kind is not None:
                        raw = {**raw, "type": kind}
                studies.append(raw)
            data = {**data, "studies": studies}
        return data

    @model_validator(mode="after")
    def _unique(self) -> SynthesisInput:
        seen: set[str] = set()
        for study in self.studies:
            if study.study_id in seen:
                raise ValueError(f"study_id {study.study_id!r} appears twice")
            seen.add(study.study_id)
        return self


# --- output ----------------------------------------------------------------------------------


class _Output(_Strict):
    """Output models: their computed fields (``display_*``, ``se``) are written to JSON and ignored
    when the JSON is read back, so a stored result validates again."""

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            computed = cls.model_computed_fields
            if any(key in computed for key in data):
                data = {k: v for k, v in data.items() if k not in computed}
        return data


def _display(measure: str, value: float | None) -> float | None:
    if value is None:
        return None
    if measure in RATIO_MEASURES:
        try:
            return math.exp(value)
        except OverflowError:
            return math.inf
    return value


class StudyEffect(_Output):
    """One study's effect on the analysis scale (log for OR/RR), with the inputs it came from,
    every correction or conversion applied, and the provenance of each input."""

    study_id: str
    label: str
    record_id: int | str | None = None
    measure: MeasureName
    estimate: float
    variance: float = Field(gt=0)
    ci_lower: float
    ci_upper: float
    inputs: dict[str, float] = Field(default_factory=dict,
                                     description="the reported numbers, e.g. treatment.events")
    adjustments: list[str] = Field(default_factory=list,
                                   description="continuity corrections and conversions applied")
    sources: Sources = Field(default_factory=dict, description="qualified field -> quotes")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def se(self) -> float:
        return math.sqrt(self.variance)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_estimate(self) -> float:
        return _display(self.measure, self.estimate)  # type: ignore[return-value]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_ci_lower(self) -> float:
        return _display(self.measure, self.ci_lower)  # type: ignore[return-value]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_ci_upper(self) -> float:
        return _display(self.measure, self.ci_upper)  # type: ignore[return-value]


class ExcludedStudy(_Strict):
    """A study left out of the pooling, and why (e.g. no events in either arm)."""

    study_id: str
    label: str
    record_id: int | str | None = None
    reason: str
    field: str | None = None


class StudyWeight(_Strict):
    study_id: str
    weight: float = Field(description="relative weight in percent")
    raw_weight: float = Field(description="the unnormalised weight (e.g. 1 / (v + tau²))")


class PooledEstimate(_Output):
    """A pooled effect on the analysis scale with its contributing studies and their weights."""

    model: ModelName
    method: str = Field(description="IV, MH (fixed) or DL, PM, REML (random)")
    measure: MeasureName
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    level: float
    statistic: float = Field(description="z (or t with the Hartung-Knapp adjustment)")
    p_value: float
    distribution: Literal["normal", "t"] = "normal"
    df: int | None = Field(default=None, description="degrees of freedom of the t distribution")
    tau2: float = 0.0
    prediction_lower: float | None = None
    prediction_upper: float | None = None
    weights: list[StudyWeight]
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_estimate(self) -> float:
        return _display(self.measure, self.estimate)  # type: ignore[return-value]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_ci_lower(self) -> float:
        return _display(self.measure, self.ci_lower)  # type: ignore[return-value]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_ci_upper(self) -> float:
        return _display(self.measure, self.ci_upper)  # type: ignore[return-value]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_prediction_lower(self) -> float | None:
        return _display(self.measure, self.prediction_lower)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_prediction_upper(self) -> float | None:
        return _display(self.measure, self.prediction_upper)


class Heterogeneity(_Strict):
    """Cochran's Q and the statistics derived from it; ``i2`` is Higgins & Thompson's
    ``max(0, (Q - df) / Q)`` in percent (``None`` with a single study)."""

    q: float
    df: int
    p_value: float | None
    i2: float | None = Field(description="percent, in [0, 100]")
    h2: float | None
    tau2: float = Field(ge=0)
    tau: float = Field(ge=0)
    tau2_method: Tau2Method
    q_about: Literal["IV", "MH"] = Field(
        default="IV", description="Q is taken about the inverse-variance or the Mantel-Haenszel estimate")


class MetaAnalysis(_Strict):
    """The result of :func:`leads.synthesis.meta_analysis`."""

    outcome: str
    measure: MeasureName
    model: ModelName
    fixed_method: FixedMethod
    tau2_method: Tau2Method
    hksj: bool
    level: float
    treatment_label: str
    control_label: str
    studies: list[StudyEffect]
    excluded: list[ExcludedStudy] = Field(default_factory=list)
    fixed: PooledEstimate
    random: PooledEstimate
    heterogeneity: Heterogeneity

    @property
    def primary(self) -> PooledEstimate:
        """The pooled estimate of the model asked for."""
        return self.fixed if self.model == "fixed" else self.random

    @property
    def log_scale(self) -> bool:
        return self.measure in RATIO_MEASURES

    def study(self, study_id: str) -> StudyEffect:
        for effect in self.studies:
            if effect.study_id == study_id:
                return effect
        raise KeyError(study_id)
