"""Pooling: properties that must hold for any data, cross-checks with statsmodels, edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.meta_analysis import combine_effects

from leads.synthesis import (
    BinaryStudy,
    GenericStudy,
    StudyEffect,
    SynthesisError,
    SynthesisInput,
    meta_analysis,
    pool_effects,
    tau2_estimate,
)

effects_strategy = st.lists(
    st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(1e-3, 4.0, allow_nan=False)),
    min_size=1, max_size=15)


def generic(pairs: list[tuple[float, float]]) -> SynthesisInput:
    return SynthesisInput(studies=[
        GenericStudy(study_id=f"s{i}", effect={"measure": "MD", "estimate": y, "se": math.sqrt(v)})
        for i, (y, v) in enumerate(pairs)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(effects_strategy, st.sampled_from(["DL", "PM", "REML"]))
def test_pooled_estimates_lie_within_the_study_effects(pairs: list[tuple[float, float]], method: str) -> None:
    result = meta_analysis(generic(pairs), "MD", tau2_method=method)  # type: ignore[arg-type]
    ys = [y for y, _ in pairs]
    slack = 1e-9 * (1 + max(abs(y) for y in ys))
    for pooled in (result.fixed, result.random):
        assert min(ys) - slack <= pooled.estimate <= max(ys) + slack
        assert pooled.ci_lower <= pooled.estimate <= pooled.ci_upper
        assert sum(w.weight for w in pooled.weights) == pytest.approx(100.0)
        assert all(w.weight >= 0 for w in pooled.weights)
    het = result.heterogeneity
    assert het.tau2 >= 0 and het.q >= -1e-9
    if len(pairs) > 1:
        assert het.i2 is not None and 0.0 <= het.i2 <= 100.0
    else:
        assert het.i2 is None and het.p_value is None
    # the random-effects SE is never below the fixed-effect SE
    assert result.random.se >= result.fixed.se * (1 - 1e-9)
    if len(pairs) >= 3:
        assert result.random.prediction_lower is not None and result.random.prediction_upper is not None
        assert result.random.prediction_lower <= result.random.ci_lower + 1e-9
    else:
        assert result.random.prediction_lower is None


@settings(max_examples=100, deadline=None)
@given(effects_strategy.filter(lambda p: len(p) >= 2))
def test_tau2_estimators_solve_their_equations(pairs: list[tuple[float, float]]) -> None:
    y = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    df = len(y) - 1

    def gen_q(t: float) -> float:
        w = 1 / (v + t)
        mu = np.sum(w * y) / np.sum(w)
        return float(np.sum(w * (y - mu) ** 2))

    pm = tau2_estimate(y, v, "PM")
    if pm > 0:
        assert gen_q(pm) == pytest.approx(df, rel=1e-6)
    else:
        assert gen_q(0.0) <= df * (1 + 1e-9)
    reml = tau2_estimate(y, v, "REML")
    w = 1 / (v + reml)
    mu = np.sum(w * y) / np.sum(w)
    score = float(np.sum(w**2 * (y - mu) ** 2) - (np.sum(w) - np.sum(w**2) / np.sum(w)))
    if reml > 1e-8:
        assert abs(score) <= 1e-6 * float(np.sum(w))
    else:
        assert score <= 1e-6 * float(np.sum(w))
    dl = tau2_estimate(y, v, "DL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels' unguarded divisions
        raw = combine_effects(y, v, method_re="dl").tau2
    assert dl == pytest.approx(max(0.0, raw), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40)),
                min_size=2, max_size=8))
def test_mantel_haenszel_odds_ratio_matches_statsmodels_stratified_table(
        tables: list[tuple[int, int, int, int]]) -> None:
    studies = [BinaryStudy(study_id=f"s{i}", treatment={"events": a, "total": a + b},
                           control={"events": c, "total": c + d}) for i, (a, b, c, d) in enumerate(tables)]
    result = meta_analysis(SynthesisInput(studies=studies), "OR", model="fixed", fixed_method="MH")
    st_table = StratifiedTable(np.array([[[a, b], [c, d]] for a, b, c, d in tables], dtype=float).transpose(1, 2, 0))
    assert result.fixed.estimate == pytest.approx(st_table.logodds_pooled, rel=1e-10, abs=1e-12)
    assert result.fixed.se == pytest.approx(st_table.logodds_pooled_se, rel=1e-10)
    assert result.fixed.display_estimate == pytest.approx(st_table.oddsratio_pooled, rel=1e-10)


def test_mantel_haenszel_risk_ratio_by_hand() -> None:
    tables = [(4, 123, 11, 139), (6, 306, 29, 303)]
    studies = [BinaryStudy(study_id=f"s{i}", treatment={"events": a, "total": n1},
                           control={"events": c, "total": n2}) for i, (a, n1, c, n2) in enumerate(tables)]
    fixed = meta_analysis(SynthesisInput(studies=studies), "RR", model="fixed", fixed_method="MH").fixed
    r = sum(a * n2 / (n1 + n2) for a, n1, c, n2 in tables)
    s = sum(c * n1 / (n1 + n2) for a, n1, c, n2 in tables)
    p = sum((n1 * n2 * (a + c) - a * c * (n1 + n2)) / (n1 + n2) ** 2 for a, n1, c, n2 in tables)
    assert fixed.estimate == pytest.approx(math.log(r / s), rel=1e-13)
    assert fixed.se == pytest.approx(math.sqrt(p / (r * s)), rel=1e-12)
    weights = [c * n1 / (n1 + n2) for a, n1, c, n2 in tables]
    assert [w.raw_weight for w in fixed.weights] == pytest.approx(weights)


def test_mantel_haenszel_uses_raw_counts_with_a_zero_cell() -> None:
    studies = [BinaryStudy(study_id="z", treatment={"events": 0, "total": 10}, control={"events": 3, "total": 10}),
               BinaryStudy(study_id="y", treatment={"events": 2, "total": 12}, control={"events": 5, "total": 11})]
    result = meta_analysis(SynthesisInput(studies=studies), "OR", model="fixed", fixed_method="MH")
    r = 0 * 7 / 20 + 2 * 6 / 23
    s = 10 * 3 / 20 + 10 * 5 / 23
    assert result.fixed.estimate == pytest.approx(math.log(r / s), rel=1e-13)
    assert result.studies[0].adjustments  # the study's own effect (for Q and the plot) is corrected


def test_statsmodels_agreement_for_inverse_variance_and_hksj() -> None:
    pairs = [(0.1, 0.04), (0.5, 0.09), (-0.2, 0.02), (0.9, 0.2), (0.3, 0.05)]
    y = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    ref = combine_effects(y, v, method_re="dl")
    assert ref.tau2 > 0
    result = meta_analysis(generic(pairs), "MD", tau2_method="DL", hksj=True)
    assert result.fixed.estimate == pytest.approx(ref.mean_effect_fe, rel=1e-13)
    assert result.random.estimate == pytest.approx(ref.mean_effect_re, rel=1e-13)
    assert result.random.se == pytest.approx(math.sqrt(ref.var_hksj_re), rel=1e-12)
    lo, hi = ref.conf_int(use_t=True)[3]
    assert (result.random.ci_lower, result.random.ci_upper) == (pytest.approx(lo), pytest.approx(hi))
    pm = combine_effects(y, v, method_re="iterated")  # statsmodels' default tolerance (1e-5 on Q - df)
    assert meta_analysis(generic(pairs), "MD", tau2_method="PM").heterogeneity.tau2 == pytest.approx(pm.tau2, rel=1e-5)


def test_paule_mandel_survives_statsmodels_stopping_at_zero() -> None:
    # With a tight tolerance statsmodels' iteration can land a rounding error below the root,
    # see Q - df < 0 and return tau² = 0; leads checks the root and brackets it instead.
    y = np.array([0.1, 0.5, -0.2, 0.9, 0.3])
    v = np.array([0.04, 0.09, 0.02, 0.2, 0.05])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert combine_effects(y, v, method_re="iterated", atol=1e-12, maxiter=200).tau2 == 0
    notes: list[str] = []
    tau2 = tau2_estimate(y, v, "PM", notes=notes)
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    assert float(np.sum(w * (y - mu) ** 2)) == pytest.approx(len(y) - 1, rel=1e-10)
    assert tau2 == pytest.approx(0.0814475, rel=1e-5)


def test_single_study() -> None:
    result = meta_analysis(generic([(0.4, 0.04)]), "MD", hksj=True)
    assert result.fixed.estimate == pytest.approx(0.4) and result.random.estimate == pytest.approx(0.4)
    assert result.fixed.se == pytest.approx(0.2)
    assert result.heterogeneity.df == 0 and result.heterogeneity.i2 is None
    assert result.random.distribution == "normal"
    assert any("Hartung-Knapp" in n for n in result.random.notes)


def test_errors_name_the_problem() -> None:
    studies = [BinaryStudy(study_id="nil", treatment={"events": 0, "total": 10}, control={"events": 0, "total": 12})]
    with pytest.raises(SynthesisError, match=r"no study can be pooled.*nil: no events in either arm"):
        meta_analysis(SynthesisInput(studies=studies), "RR")
    with pytest.raises(SynthesisError, match="needs arm-level counts"):
        meta_analysis(SynthesisInput(studies=[GenericStudy(study_id="g", effect={"measure": "RR", "estimate": 0.8,
                                                                                  "se": 0.1})]),
                      "RR", fixed_method="MH")
    with pytest.raises(SynthesisError, match="needs binary data"):
        meta_analysis(generic([(0.1, 0.1), (0.2, 0.1)]), "MD", fixed_method="MH")
    with pytest.raises(SynthesisError, match="unknown tau"):
        meta_analysis(generic([(0.1, 0.1)]), "MD", tau2_method="HS")  # type: ignore[arg-type]
    with pytest.raises(SynthesisError, match="unknown measure"):
        meta_analysis(generic([(0.1, 0.1)]), "HR")  # type: ignore[arg-type]
    mixed = [StudyEffect(study_id="a", label="a", measure="RR", estimate=0.1, variance=0.1, ci_lower=0, ci_upper=1)]
    with pytest.raises(SynthesisError, match="has a RR effect"):
        pool_effects(mixed, "OR")


def test_excluded_studies_are_reported_next_to_the_result() -> None:
    studies = [BinaryStudy(study_id="a", treatment={"events": 3, "total": 10}, control={"events": 5, "total": 10}),
               BinaryStudy(study_id="nil", treatment={"events": 0, "total": 10}, control={"events": 0, "total": 9})]
    result = meta_analysis(SynthesisInput(studies=studies), "RR")
    assert [s.study_id for s in result.studies] == ["a"]
    assert [(x.study_id, x.field) for x in result.excluded] == [("nil", "treatment.events")]
    dumped = result.model_dump(mode="json")
    assert dumped["excluded"][0]["reason"].startswith("no events in either arm")
    assert dumped["studies"][0]["display_estimate"] == pytest.approx(0.6)


def test_results_round_trip_through_json() -> None:
    studies = [BinaryStudy(study_id=f"s{i}", treatment={"events": 3 + i, "total": 40},
                           control={"events": 6 + 2 * i, "total": 41}) for i in range(4)]
    result = meta_analysis(SynthesisInput(studies=studies), "OR", tau2_method="REML", hksj=True)
    again = type(result).model_validate_json(result.model_dump_json())
    assert again == result
