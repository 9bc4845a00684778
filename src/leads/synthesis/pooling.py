"""Fixed- and random-effects pooling, heterogeneity and prediction intervals.

- Fixed effect, inverse variance: statsmodels' ``combine_effects`` (which also gives Cochran's Q).
- Fixed effect, Mantel-Haenszel (binary data only): pooled OR with the Robins-Breslow-Greenland
  variance, pooled RR with the Greenland-Robins variance, pooled RD with the Sato-Greenland-Robins
  variance (as metafor's ``rma.mh``); computed from the uncorrected counts. Q is then taken about
  the MH estimate with inverse-variance weights (metafor, RevMan 5).
- Random effects: ``tau²`` by DerSimonian-Laird (from Q, truncated at 0 — statsmodels' ``dl``
  estimate is not truncated, so a negative value would give nonsense weights), Paule-Mandel
  (statsmodels ``method_re="iterated"``, convergence verified, with a bracketing fallback) or REML
  (Fisher scoring); weights ``1 / (v + tau²)``. Optional Hartung-Knapp-Sidik-Jonkman standard
  error with a t distribution on ``k - 1`` df.
- I² is Higgins & Thompson's ``max(0, (Q - df) / Q)``; the prediction interval is
  ``mu ± t(k-2) √(se² + tau²)`` (Higgins, Thompson & Spiegelhalter 2009; Cochrane Handbook 10.10.4.3),
  given from three studies on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from leads.synthesis.effects import BINARY_MEASURES, compute_effects
from leads.synthesis.models import (
    ExcludedStudy,
    FixedMethod,
    Heterogeneity,
    MeasureName,
    MetaAnalysis,
    ModelName,
    PooledEstimate,
    Study,
    StudyEffect,
    StudyWeight,
    SynthesisError,
    SynthesisInput,
    Tau2Method,
)

__all__ = ["mantel_haenszel", "meta_analysis", "pool_effects", "tau2_estimate"]

_TAU2_METHODS = ("DL", "PM", "REML")
_REML_TOL = 1e-10
_MAX_ITER = 1000


@contextmanager
def _quiet() -> Iterator[None]:
    """statsmodels divides by ``k - 1`` and ``q`` unguarded; its warnings are not ours to show."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def meta_analysis(data: SynthesisInput | Sequence[Study], measure: MeasureName, *,
                  model: ModelName = "random", fixed_method: FixedMethod = "IV",
                  tau2_method: Tau2Method = "DL", hksj: bool = False, level: float = 0.95,
                  continuity: float = 0.5) -> MetaAnalysis:
    """Effect sizes of every study, then fixed- and random-effects pooling.

    Both pooled estimates are always computed; ``model`` says which one is primary (drawn on the
    forest plot and printed first). Studies that cannot be used are listed in ``excluded``.
    """
    if isinstance(data, SynthesisInput):
        studies: Sequence[Study] = data.studies
        outcome, t_label, c_label = data.outcome, data.treatment_label, data.control_label
    else:
        studies = list(data)
        outcome = next((s.outcome for s in studies if s.outcome), "")
        t_label, c_label = "Treatment", "Control"
    effects, excluded = compute_effects(studies, measure, continuity=continuity, level=level)
    return pool_effects(effects, measure, model=model, fixed_method=fixed_method,
                        tau2_method=tau2_method, hksj=hksj, level=level, excluded=excluded,
                        outcome=outcome, treatment_label=t_label, control_label=c_label)


def _check_options(model: str, fixed_method: str, tau2_method: str, level: float) -> None:
    if model not in ("fixed", "random"):
        raise SynthesisError(f"unknown model {model!r}; use fixed or random")
    if fixed_method not in ("IV", "MH"):
        raise SynthesisError(f"unknown fixed-effect method {fixed_method!r}; use IV or MH")
    if tau2_method not in _TAU2_METHODS:
        raise SynthesisError(f"unknown tau² estimator {tau2_method!r}; use DL, PM or REML")
    if not 0 < level < 1:
        raise SynthesisError(f"confidence level must be between 0 and 1, got {level}")


def pool_effects(effects: Sequence[StudyEffect], measure: MeasureName, *, model: ModelName = "random",
                 fixed_method: FixedMethod = "IV", tau2_method: Tau2Method = "DL", hksj: bool = False,
                 level: float = 0.95, excluded: Sequence[ExcludedStudy] = (), outcome: str = "",
                 treatment_label: str = "Treatment", control_label: str = "Control") -> MetaAnalysis:
    """Pool already computed study effects (all on the analysis scale of ``measure``)."""
    _check_options(model, fixed_method, tau2_method, level)
    if not effects:
        reasons = "; ".join(f"{e.study_id}: {e.reason}" for e in excluded) or "no studies given"
        raise SynthesisError(f"no study can be pooled ({reasons})")
    for effect in effects:
        if effect.measure != measure:
            raise SynthesisError(f"study {effect.study_id!r} has a {effect.measure} effect; "
                                 f"the analysis pools the {measure}")
    ids = [e.study_id for e in effects]
    y = np.array([e.estimate for e in effects], dtype=float)
    v = np.array([e.variance for e in effects], dtype=float)
    k = len(effects)
    df = k - 1

    fixed_notes: list[str] = []
    if fixed_method == "MH":
        if measure not in BINARY_MEASURES:
            raise SynthesisError(f"Mantel-Haenszel pooling needs binary data; {measure} is not binary")
        est, se, mh_weights = mantel_haenszel(effects, measure)
        fixed_raw = mh_weights
        q = float(np.sum((y - est) ** 2 / v))
    else:
        est, se, q, fixed_raw = _inverse_variance(y, v)
    fixed = _estimate("fixed", fixed_method, measure, est, se, level, ids, fixed_raw, fixed_notes)

    random_notes: list[str] = []
    tau2 = tau2_estimate(y, v, tau2_method, q=q, notes=random_notes) if k > 1 else 0.0
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se_re = math.sqrt(1.0 / float(np.sum(w)))
    t_df: int | None = None
    if hksj:
        if k < 2:
            random_notes.append("Hartung-Knapp adjustment needs two or more studies; not applied")
        else:
            se_re = math.sqrt(float(np.sum(w * (y - mu) ** 2)) / (df * float(np.sum(w))))
            t_df = df
    random = _estimate("random", tau2_method, measure, mu, se_re, level, ids, w, random_notes,
                       tau2=tau2, t_df=t_df)
    if k >= 3:
        crit = float(stats.t.ppf(0.5 + level / 2, k - 2))
        half = crit * math.sqrt(se_re**2 + tau2)
        random.prediction_lower, random.prediction_upper = mu - half, mu + half
    else:
        random.notes.append("no prediction interval with fewer than three studies")

    heterogeneity = Heterogeneity(
        q=q, df=df, p_value=float(stats.chi2.sf(q, df)) if df > 0 else None,
        i2=(100.0 * max(0.0, (q - df) / q) if q > 0 else 0.0) if df > 0 else None,
        h2=q / df if df > 0 else None, tau2=tau2, tau=math.sqrt(tau2), tau2_method=tau2_method,
        q_about="MH" if fixed_method == "MH" else "IV")
    return MetaAnalysis(outcome=outcome, measure=measure, model=model, fixed_method=fixed_method,
                        tau2_method=tau2_method, hksj=hksj, level=level,
                        treatment_label=treatment_label, control_label=control_label,
                        studies=list(effects), excluded=list(excluded), fixed=fixed, random=random,
                        heterogeneity=heterogeneity)


def _estimate(model: ModelName, method: str, measure: MeasureName, est: float, se: float,
              level: float, ids: list[str], raw: Any, notes: list[str], *, tau2: float = 0.0,
              t_df: int | None = None) -> PooledEstimate:
    if t_df is not None:
        crit = float(stats.t.ppf(0.5 + level / 2, t_df))
        p_value = float(2 * stats.t.sf(abs(est / se), t_df)) if se > 0 else 0.0
    else:
        crit = float(stats.norm.ppf(0.5 + level / 2))
        p_value = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else 0.0
    raw = np.asarray(raw, dtype=float)
    total = float(raw.sum())
    weights = [StudyWeight(study_id=sid, weight=100.0 * float(r) / total, raw_weight=float(r))
               for sid, r in zip(ids, raw, strict=True)]
    return PooledEstimate(model=model, method=method, measure=measure, estimate=est, se=se,
                          ci_lower=est - crit * se, ci_upper=est + crit * se, level=level,
                          statistic=est / se if se > 0 else math.inf, p_value=p_value,
                          distribution="t" if t_df is not None else "normal", df=t_df, tau2=tau2,
                          weights=weights, notes=notes)


def _inverse_variance(y: np.ndarray, v: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Fixed-effect estimate, its SE, Cochran's Q and the raw weights, via statsmodels."""
    if len(y) == 1:
        return float(y[0]), math.sqrt(float(v[0])), 0.0, 1.0 / v
    with _quiet():
        res = combine_effects(y, v, method_re="dl")
    return float(res.mean_effect_fe), float(res.sd_eff_w_fe), float(res.q), np.asarray(res.weights_fe)


# --- tau² ------------------------------------------------------------------------------------


def _generalised_q(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def tau2_estimate(y: np.ndarray, v: np.ndarray, method: Tau2Method, *, q: float | None = None,
                  notes: list[str] | None = None) -> float:
    """Between-study variance by DerSimonian-Laird, Paule-Mandel or REML (never negative).

    ``q`` overrides the Q used by DL (the Mantel-Haenszel analyses take Q about the MH estimate).
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    notes = notes if notes is not None else []
    k = len(y)
    if k < 2:
        return 0.0
    if method == "DL":
        w = 1.0 / v
        if q is None:
            with _quiet():
                raw = float(combine_effects(y, v, method_re="dl").tau2)
        else:
            raw = (q - (k - 1)) / (float(w.sum()) - float((w**2).sum()) / float(w.sum()))
        if raw < 0:
            notes.append(f"DerSimonian-Laird tau² estimate {raw:.6g} truncated to 0")
            return 0.0
        return raw
    if method == "PM":
        return _paule_mandel(y, v, notes)
    if method == "REML":
        return _reml(y, v, notes)
    raise SynthesisError(f"unknown tau² estimator {method!r}; use DL, PM or REML")


def _paule_mandel(y: np.ndarray, v: np.ndarray, notes: list[str]) -> float:
    df = len(y) - 1
    if _generalised_q(y, v, 0.0) <= df:
        return 0.0
    with _quiet():
        tau2 = float(combine_effects(y, v, method_re="iterated", atol=1e-10, maxiter=200).tau2)
    if tau2 > 0 and abs(_generalised_q(y, v, tau2) - df) <= 1e-8 * max(1.0, df):
        return tau2
    # statsmodels' iteration did not reach the root: bracket it (Q(tau²) decreases monotonically)
    upper = max(float(np.var(y)), 1e-8)
    while _generalised_q(y, v, upper) > df:
        upper *= 2.0
    root = float(optimize.brentq(lambda t: _generalised_q(y, v, t) - df, 0.0, upper, xtol=1e-14))
    notes.append(f"statsmodels' Paule-Mandel iteration stopped off the root (tau² = {tau2:.6g}); "
                 "root found by bracketing")
    return root


def _reml(y: np.ndarray, v: np.ndarray, notes: list[str]) -> float:
    """REML tau² by Fisher scoring, truncated at 0 (as metafor's default estimator)."""
    tau2 = max(0.0, float(np.var(y, ddof=1) - np.mean(v)))
    for _ in range(_MAX_ITER):
        w = 1.0 / (v + tau2)
        sw = float(w.sum())
        mu = float(np.sum(w * y) / sw)
        sw2 = float((w**2).sum())
        tr_p = sw - sw2 / sw
        tr_p2 = sw2 - 2.0 * float((w**3).sum()) / sw + (sw2 / sw) ** 2
        score = float(np.sum(w**2 * (y - mu) ** 2)) - tr_p
        new = max(0.0, tau2 + score / tr_p2)
        if abs(new - tau2) <= _REML_TOL * max(1.0, tau2):
            return new
        tau2 = new
    # Fisher scoring did not settle: maximise the restricted likelihood directly
    notes.append("REML by bounded maximisation (Fisher scoring did not converge)")

    def neg_loglik(t: float) -> float:
        w = 1.0 / (v + t)
        mu = np.sum(w * y) / np.sum(w)
        return float(0.5 * (np.sum(np.log(v + t)) + math.log(np.sum(w)) + np.sum(w * (y - mu) ** 2)))

    upper = max(10.0 * float(np.var(y)), 1e-6)
    result = optimize.minimize_scalar(neg_loglik, bounds=(0.0, upper), method="bounded",
                                      options={"xatol": 1e-12})
    return float(result.x)


# --- Mantel-Haenszel -------------------------------------------------------------------------


def _counts(effects: Sequence[StudyEffect]) -> tuple[np.ndarray, ...]:
    cols = []
    for key in ("treatment.events", "treatment.total", "control.events", "control.total"):
        values = []
        for effect in effects:
            if key not in effect.inputs:
                raise SynthesisError(f"study {effect.study_id!r}: Mantel-Haenszel pooling needs "
                                     f"arm-level counts, and {key} is missing (a reported effect "
                                     "can only be pooled by inverse variance)")
            values.append(effect.inputs[key])
        cols.append(np.array(values, dtype=float))
    return tuple(cols)


def mantel_haenszel(effects: Sequence[StudyEffect], measure: MeasureName) -> tuple[float, float, np.ndarray]:
    """Mantel-Haenszel pooled estimate (log scale for OR/RR), its SE and the raw MH weights.

    Uses the reported counts without continuity correction, as the method needs none.
    """
    a, n1, c, n2 = _counts(effects)
    b, d, n = n1 - a, n2 - c, n1 + n2
    if measure == "OR":
        r, s = a * d / n, b * c / n
        sr, ss = float(r.sum()), float(s.sum())
        if sr == 0 or ss == 0:
            raise SynthesisError("the Mantel-Haenszel odds ratio is not estimable (a zero margin "
                                 "across all studies); use inverse-variance pooling")
        p, q = (a + d) / n, (b + c) / n
        var = (float(np.sum(p * r)) / (2 * sr**2) + float(np.sum(p * s + q * r)) / (2 * sr * ss)
               + float(np.sum(q * s)) / (2 * ss**2))
        return math.log(sr / ss), math.sqrt(var), s
    if measure == "RR":
        r, s = a * n2 / n, c * n1 / n
        sr, ss = float(r.sum()), float(s.sum())
        if sr == 0 or ss == 0:
            raise SynthesisError("the Mantel-Haenszel risk ratio is not estimable (no events in one "
                                 "arm of every study); use inverse-variance pooling")
        var = float(np.sum((n1 * n2 * (a + c) - a * c * n) / n**2)) / (sr * ss)
        return math.log(sr / ss), math.sqrt(var), s
    if measure == "RD":
        w = n1 * n2 / n
        sw = float(w.sum())
        rd = float(np.sum((a * n2 - c * n1) / n)) / sw
        p = float(np.sum((n1**2 * c - n2**2 * a + n1 * n2 * (n2 - n1) / 2) / n**2))
        q = float(np.sum((a * (n2 - c) + c * (n1 - a)) / (2 * n)))
        return rd, math.sqrt((rd * p + q) / sw**2), w
    raise SynthesisError(f"Mantel-Haenszel pooling needs binary data; {measure} is not binary")
