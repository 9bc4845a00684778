"""Per-study effect sizes and their sampling variances.

Conventions (checked against published output in ``tests/synthesis``):

- Binary data go through :func:`statsmodels.stats.meta_analysis.effectsize_2proportions`:
  log odds ratio, log risk ratio and risk difference with the usual large-sample variances
  (identical to metafor's ``escalc`` for OR/RR/RD). A study with a zero cell (no events, or
  every participant with the event, in one arm) gets ``continuity`` (0.5) added to each of its
  four cells for OR and RR: statsmodels' ``zero_correction`` is metafor's ``add=1/2,
  to="only0"``. The correction is recorded on the effect. A study with no events in either arm
  (or events in every participant of both arms) carries no information about a ratio and is
  excluded with that reason, as RevMan and the Cochrane Handbook (10.4.4.2) do; it is excluded
  for RD as well because its inverse-variance weight would be infinite.
- Standardised mean differences go through
  :func:`statsmodels.stats.meta_analysis.effectsize_smd`: Hedges' g with the approximate
  small-sample factor ``J = 1 - 3 / (4N - 9)`` and variance ``N / (n1 n2) + g² / (2 (N - 3.94))``,
  the RevMan 5 / R ``meta`` convention (metafor's default differs in the 5th decimal: exact J,
  other variance estimator).
- Mean differences: ``m1 - m2`` with variance ``sd1²/n1 + sd2²/n2``.
- A missing SD is derived from the standard error of the mean (``SD = SE √n``) or from a
  confidence interval of the mean (``SD = √n (upper - lower) / (2 t)``, with ``t`` from the
  t distribution on ``n - 1`` df below 60 participants and the normal above, Cochrane Handbook
  6.5.2.2); a reported effect with a confidence interval but no SE gets
  ``SE = (upper - lower) / (2 z)`` on the analysis scale. Each conversion is recorded.

"Not reported" (``None``) excludes a study with the field named; impossible values (more events
than participants, a zero SD) raise :class:`~leads.synthesis.models.DataError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import effectsize_2proportions, effectsize_smd

from leads.synthesis.models import (
    RATIO_MEASURES,
    BinaryStudy,
    ContinuousArm,
    ContinuousStudy,
    DataError,
    ExcludedStudy,
    GenericStudy,
    MeasureName,
    Provenance,
    Study,
    StudyEffect,
    SynthesisError,
)

__all__ = ["BINARY_MEASURES", "CONTINUOUS_MEASURES", "compute_effects", "study_effect"]

BINARY_MEASURES: frozenset[str] = frozenset({"OR", "RR", "RD"})
CONTINUOUS_MEASURES: frozenset[str] = frozenset({"MD", "SMD"})
_STATSMODELS_NAME = {"OR": "odds-ratio", "RR": "risk-ratio", "RD": "diff"}
#: Below this many participants an arm's CI of the mean is converted with the t distribution.
T_DISTRIBUTION_BELOW = 60


class _Exclude(Exception):
    """Internal control flow: a study is left out (never escapes this module)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def _check_measure(measure: str) -> None:
    if measure not in BINARY_MEASURES | CONTINUOUS_MEASURES:
        raise SynthesisError(f"unknown measure {measure!r}; use one of OR, RR, RD, MD, SMD")


def study_effect(study: Study, measure: MeasureName, *, continuity: float = 0.5,
                 level: float = 0.95) -> StudyEffect | ExcludedStudy:
    """The effect of one study on the analysis scale, or the reason it cannot be used."""
    _check_measure(measure)
    if continuity < 0:
        raise SynthesisError(f"continuity correction must be non-negative, got {continuity}")
    try:
        if isinstance(study, BinaryStudy):
            return _binary(study, measure, continuity, level)
        if isinstance(study, ContinuousStudy):
            return _continuous(study, measure, level)
        if isinstance(study, GenericStudy):
            return _generic(study, measure, level)
    except _Exclude as excl:
        return ExcludedStudy(study_id=study.study_id, label=study.display_label,
                             record_id=study.record_id, reason=excl.reason, field=excl.field)
    raise SynthesisError(f"study {study.study_id!r}: unsupported study type {type(study).__name__}")


def compute_effects(studies: Iterable[Study], measure: MeasureName, *, continuity: float = 0.5,
                    level: float = 0.95) -> tuple[list[StudyEffect], list[ExcludedStudy]]:
    """Effects of every usable study, and the studies left out with their reasons."""
    effects: list[StudyEffect] = []
    excluded: list[ExcludedStudy] = []
    for study in studies:
        result = study_effect(study, measure, continuity=continuity, level=level)
        (effects if isinstance(result, StudyEffect) else excluded).append(result)  # type: ignore[arg-type]
    return effects, excluded


# --- helpers ---------------------------------------------------------------------------------


def _sources(study: Study, arms: dict[str, Any]) -> dict[str, list[Provenance]]:
    out: dict[str, list[Provenance]] = {}
    for prefix, arm in arms.items():
        for name, provs in arm.sources.items():
            if provs:
                out[f"{prefix}.{name}"] = list(provs)
    if study.sources:
        out["study"] = list(study.sources)
    return out


def _make(study: Study, measure: MeasureName, estimate: float, variance: float, level: float,
          inputs: dict[str, float], adjustments: list[str], sources: dict[str, list[Provenance]],
          ) -> StudyEffect:
    if not (math.isfinite(estimate) and math.isfinite(variance)) or variance <= 0:
        raise _Exclude(f"the effect is not estimable (estimate {estimate}, variance {variance})")
    half = _z(level) * math.sqrt(variance)
    return StudyEffect(study_id=study.study_id, label=study.display_label, record_id=study.record_id,
                       measure=measure, estimate=float(estimate), variance=float(variance),
                       ci_lower=float(estimate - half), ci_upper=float(estimate + half),
                       inputs=inputs, adjustments=adjustments, sources=sources)


def _need(value: float | None, arm: str, field: str, what: str) -> float:
    if value is None:
        raise _Exclude(f"{arm} {what} not reported", f"{arm}.{field}")
    return float(value)


# --- binary ----------------------------------------------------------------------------------


def _binary(study: BinaryStudy, measure: MeasureName, continuity: float, level: float) -> StudyEffect:
    if measure not in BINARY_MEASURES:
        raise DataError(f"binary data (events/total) cannot give a {measure}; use OR, RR or RD",
                        study=study.study_id, field="type")
    counts = {}
    for arm_name in ("treatment", "control"):
        arm = getattr(study, arm_name)
        events = _need(arm.events, arm_name, "events", "events")
        total = _need(arm.total, arm_name, "total", "total")
        if total <= 0:
            raise DataError("no participants analysed", study=study.study_id, field=f"{arm_name}.total")
        if events > total:
            raise DataError(f"{events:g} events exceed the {total:g} participants",
                            study=study.study_id, field=f"{arm_name}.events")
        counts[arm_name] = (events, total)
    (a, n1), (c, n2) = counts["treatment"], counts["control"]
    inputs = {"treatment.events": a, "treatment.total": n1, "control.events": c, "control.total": n2}
    if a == 0 and c == 0:
        raise _Exclude("no events in either arm: the study carries no information on the "
                       f"{measure} and is excluded", "treatment.events")
    if a == n1 and c == n2:
        raise _Exclude("every participant had the event in both arms: the study carries no "
                       f"information on the {measure} and is excluded", "treatment.events")
    zero_cell = a in (0, n1) or c in (0, n2)
    adjustments: list[str] = []
    correction: float | None = None
    if zero_cell and measure in RATIO_MEASURES:
        correction = continuity
    elif measure == "RD" and a in (0, n1) and c in (0, n2):
        correction = continuity  # both proportions at 0 or 1: the RD variance would be zero
    if correction:
        adjustments.append(f"zero cell: added {correction:g} to each cell of the 2×2 table")
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        eff, var = effectsize_2proportions(np.array([a]), np.array([n1]), np.array([c]), np.array([n2]),
                                           statistic=_STATSMODELS_NAME[measure],
                                           zero_correction=correction if correction else None)
    return _make(study, measure, float(eff[0]), float(var[0]), level, inputs, adjustments,
                 _sources(study, {"treatment": study.treatment, "control": study.control}))


# --- continuous ------------------------------------------------------------------------------


def _arm_sd(arm: ContinuousArm, name: str, study_id: str, adjustments: list[str]) -> tuple[float, float, float]:
    mean = _need(arm.mean, name, "mean", "mean")
    n = _need(arm.n, name, "n", "number of participants")
    if n < 2:
        raise DataError(f"{n:g} participant(s): a standard deviation needs at least 2",
                        study=study_id, field=f"{name}.n")
    if arm.sd is not None:
        sd = float(arm.sd)
    elif arm.se is not None:
        sd = float(arm.se) * math.sqrt(n)
        adjustments.append(f"{name} SD = SE × √n = {arm.se:g} × √{n:g} = {sd:.6g}")
    elif arm.ci_lower is not None and arm.ci_upper is not None:
        if arm.ci_upper <= arm.ci_lower:
            raise DataError(f"confidence interval ({arm.ci_lower:g}, {arm.ci_upper:g}) is empty",
                            study=study_id, field=f"{name}.ci_upper")
        alpha_half = 0.5 + arm.ci_level / 2
        if n < T_DISTRIBUTION_BELOW:
            crit = float(stats.t.ppf(alpha_half, n - 1))
            dist = f"t({n - 1:g})"
        else:
            crit = float(stats.norm.ppf(alpha_half))
            dist = "normal"
        sd = math.sqrt(n) * (arm.ci_upper - arm.ci_lower) / (2 * crit)
        adjustments.append(f"{name} SD = √n × (upper − lower) / (2 × {crit:.4f} [{dist}, "
                           f"{arm.ci_level:.0%} CI]) = {sd:.6g}")
    else:
        raise _Exclude(f"{name} SD not reported (nor an SE or CI of the mean)", f"{name}.sd")
    return mean, sd, n


def _continuous(study: ContinuousStudy, measure: MeasureName, level: float) -> StudyEffect:
    if measure not in CONTINUOUS_MEASURES:
        raise DataError(f"continuous data (mean/SD/n) cannot give a {measure}; use MD or SMD",
                        study=study.study_id, field="type")
    adjustments: list[str] = []
    m1, sd1, n1 = _arm_sd(study.treatment, "treatment", study.study_id, adjustments)
    m2, sd2, n2 = _arm_sd(study.control, "control", study.study_id, adjustments)
    inputs = {"treatment.mean": m1, "treatment.sd": sd1, "treatment.n": n1,
              "control.mean": m2, "control.sd": sd2, "control.n": n2}
    if sd1 == 0 and sd2 == 0:
        raise DataError("both arms have a zero SD: the variance of the effect would be zero",
                        study=study.study_id, field="treatment.sd")
    if measure == "MD":
        estimate, variance = m1 - m2, sd1**2 / n1 + sd2**2 / n2
    else:
        g, v = effectsize_smd(m1, sd1, n1, m2, sd2, n2)
        estimate, variance = float(g), float(v)
    return _make(study, measure, estimate, variance, level, inputs, adjustments,
                 _sources(study, {"treatment": study.treatment, "control": study.control}))


# --- reported effects ------------------------------------------------------------------------


def _generic(study: GenericStudy, measure: MeasureName, level: float) -> StudyEffect:
    eff = study.effect
    if eff.measure != measure:
        raise _Exclude(f"the study reports a {eff.measure}; the analysis pools the {measure}",
                       "effect.measure")
    adjustments: list[str] = []
    inputs = {"effect.estimate": eff.estimate}
    ratio = measure in RATIO_MEASURES

    def scale(value: float, field: str) -> float:
        if not ratio:
            return value
        if value <= 0:
            raise DataError(f"a {measure} must be positive, got {value:g}", study=study.study_id,
                            field=field)
        return math.log(value)

    estimate = scale(eff.estimate, "effect.estimate")
    if eff.se is not None:
        se = float(eff.se)
        inputs["effect.se"] = se
    elif eff.ci_lower is not None and eff.ci_upper is not None:
        lo, hi = scale(eff.ci_lower, "effect.ci_lower"), scale(eff.ci_upper, "effect.ci_upper")
        inputs["effect.ci_lower"], inputs["effect.ci_upper"] = eff.ci_lower, eff.ci_upper
        if hi <= lo:
            raise DataError(f"confidence interval ({eff.ci_lower:g}, {eff.ci_upper:g}) is empty",
                            study=study.study_id, field="effect.ci_upper")
        if not lo <= estimate <= hi:
            raise DataError(f"estimate {eff.estimate:g} lies outside its confidence interval "
                            f"({eff.ci_lower:g}, {eff.ci_upper:g})", study=study.study_id,
                            field="effect.estimate")
        crit = _z(eff.ci_level)
        se = (hi - lo) / (2 * crit)
        scale_note = "ln(upper) − ln(lower)" if ratio else "upper − lower"
        adjustments.append(f"SE = ({scale_note}) / (2 × {crit:.4f}) from the {eff.ci_level:.0%} CI "
                           f"= {se:.6g}")
    else:
        raise _Exclude("neither a standard error nor a confidence interval reported", "effect.se")
    if ratio:
        adjustments.append(f"analysed as ln({measure})")
    sources = {f"effect.{k}": list(v) for k, v in eff.sources.items() if v}
    if study.sources:
        sources["study"] = list(study.sources)
    return _make(study, measure, estimate, se**2, level, inputs, adjustments, sources)
