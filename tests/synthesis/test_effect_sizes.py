"""Effect sizes on small cases computed by hand, zero cells, conversions and data errors."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError
from scipy import stats

from leads.synthesis import (
    BinaryStudy,
    ContinuousStudy,
    DataError,
    ExcludedStudy,
    GenericStudy,
    Provenance,
    StudyEffect,
    SynthesisInput,
    compute_effects,
    study_effect,
)

Z975 = 1.959963984540054


def binary(a: float | None, n1: float | None, c: float | None, n2: float | None, sid: str = "s1",
           **arm_sources: list[Provenance]) -> BinaryStudy:
    return BinaryStudy(study_id=sid, treatment={"events": a, "total": n1, "sources": arm_sources},
                       control={"events": c, "total": n2})


def effect(study: object, measure: str) -> StudyEffect:
    result = study_effect(study, measure)  # type: ignore[arg-type]
    assert isinstance(result, StudyEffect), result
    return result


def test_log_risk_ratio_by_hand() -> None:
    e = effect(binary(4, 123, 11, 139), "RR")
    assert e.estimate == pytest.approx(math.log((4 / 123) / (11 / 139)), rel=1e-14)
    assert e.variance == pytest.approx(1 / 4 - 1 / 123 + 1 / 11 - 1 / 139, rel=1e-12)
    assert e.ci_lower == pytest.approx(e.estimate - Z975 * math.sqrt(e.variance), rel=1e-12)
    assert e.display_estimate == pytest.approx((4 / 123) / (11 / 139), rel=1e-14)
    assert e.inputs == {"treatment.events": 4, "treatment.total": 123, "control.events": 11,
                        "control.total": 139}
    assert e.adjustments == []


def test_log_odds_ratio_and_risk_difference_by_hand() -> None:
    e = effect(binary(4, 123, 11, 139), "OR")
    assert e.estimate == pytest.approx(math.log(4 * 128 / (119 * 11)), rel=1e-13)
    assert e.variance == pytest.approx(1 / 4 + 1 / 119 + 1 / 11 + 1 / 128, rel=1e-12)
    rd = effect(binary(4, 123, 11, 139), "RD")
    p1, p2 = 4 / 123, 11 / 139
    assert rd.estimate == pytest.approx(p1 - p2, rel=1e-13)
    assert rd.variance == pytest.approx(p1 * (1 - p1) / 123 + p2 * (1 - p2) / 139, rel=1e-12)


def test_zero_cell_gets_continuity_correction_recorded() -> None:
    e = effect(binary(0, 10, 5, 10), "OR")
    a, b, c, d = 0.5, 10.5, 5.5, 5.5
    assert e.estimate == pytest.approx(math.log(a * d / (b * c)), rel=1e-13)
    assert e.variance == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d, rel=1e-12)
    assert e.adjustments == ["zero cell: added 0.5 to each cell of the 2×2 table"]
    # every participant with the event in one arm is a zero cell too
    rr = effect(binary(10, 10, 5, 10), "RR")
    assert rr.estimate == pytest.approx(math.log((10.5 / 11) / (5.5 / 11)), rel=1e-13)
    assert rr.adjustments
    # the risk difference needs no correction
    rd = effect(binary(0, 10, 5, 10), "RD")
    assert rd.estimate == pytest.approx(-0.5) and rd.adjustments == []


def test_custom_continuity_correction() -> None:
    e = study_effect(binary(0, 10, 5, 10), "OR", continuity=0.25)
    assert isinstance(e, StudyEffect)
    assert e.estimate == pytest.approx(math.log(0.25 * 5.25 / (10.25 * 5.25)), rel=1e-13)
    assert "0.25" in e.adjustments[0]


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_double_zero_studies_are_excluded_with_a_reason(measure: str) -> None:
    result = study_effect(binary(0, 20, 0, 25, sid="Nil 2001"), measure)  # type: ignore[arg-type]
    assert isinstance(result, ExcludedStudy)
    assert result.study_id == "Nil 2001" and "no events in either arm" in result.reason
    assert result.field == "treatment.events"
    full = study_effect(binary(20, 20, 25, 25), measure)  # type: ignore[arg-type]
    assert isinstance(full, ExcludedStudy) and "every participant" in full.reason


def test_not_reported_values_exclude_the_study_naming_the_field() -> None:
    result = study_effect(binary(3, 40, None, 41, sid="Gap 1999"), "RR")
    assert isinstance(result, ExcludedStudy)
    assert result.field == "control.events" and result.reason == "control events not reported"
    effects, excluded = compute_effects([binary(3, 40, 5, 41, sid="a"), binary(3, None, 5, 41, sid="b")], "OR")
    assert [e.study_id for e in effects] == ["a"]
    assert [(x.study_id, x.field) for x in excluded] == [("b", "treatment.total")]


def test_impossible_counts_raise_naming_study_and_field() -> None:
    with pytest.raises(DataError) as info:
        study_effect(binary(12, 10, 3, 10, sid="Odd 2010"), "RR")
    assert info.value.study == "Odd 2010" and info.value.field == "treatment.events"
    assert "Odd 2010" in str(info.value) and "treatment.events" in str(info.value)
    with pytest.raises(DataError, match="no participants"):
        study_effect(binary(0, 0, 3, 10), "RR")


def test_wrong_measure_for_the_data_raises() -> None:
    with pytest.raises(DataError, match="cannot give a MD"):
        study_effect(binary(1, 10, 2, 10), "MD")
    cont = ContinuousStudy(study_id="c", treatment={"mean": 1, "sd": 1, "n": 10},
                           control={"mean": 0, "sd": 1, "n": 10})
    with pytest.raises(DataError, match="cannot give a OR"):
        study_effect(cont, "OR")


def test_mean_difference_and_hedges_g_by_hand() -> None:
    study = ContinuousStudy(study_id="c", treatment={"mean": 94, "sd": 22, "n": 60},
                            control={"mean": 92, "sd": 20, "n": 60})
    md = effect(study, "MD")
    assert md.estimate == 2 and md.variance == pytest.approx(22**2 / 60 + 20**2 / 60, rel=1e-14)
    g = effect(study, "SMD")
    sp = math.sqrt((59 * 22**2 + 59 * 20**2) / 118)
    j = 1 - 3 / (4 * 120 - 9)
    assert g.estimate == pytest.approx(j * 2 / sp, rel=1e-13)
    assert g.variance == pytest.approx(120 / 3600 + g.estimate**2 / (2 * (120 - 3.94)), rel=1e-13)


def test_sd_derived_from_se_and_ci_is_recorded() -> None:
    study = ContinuousStudy(study_id="c", treatment={"mean": 10, "se": 0.5, "n": 25},
                            control={"mean": 8, "ci_lower": 7.0, "ci_upper": 9.0, "n": 30})
    md = effect(study, "MD")
    sd1 = 0.5 * 5
    sd2 = math.sqrt(30) * 2.0 / (2 * stats.t.ppf(0.975, 29))
    assert md.inputs["treatment.sd"] == pytest.approx(sd1)
    assert md.inputs["control.sd"] == pytest.approx(sd2, rel=1e-12)
    assert md.variance == pytest.approx(sd1**2 / 25 + sd2**2 / 30, rel=1e-12)
    assert any(a.startswith("treatment SD = SE × √n") for a in md.adjustments)
    assert any("t(29)" in a for a in md.adjustments)
    large = ContinuousStudy(study_id="L", treatment={"mean": 10, "sd": 2, "n": 100},
                            control={"mean": 8, "ci_lower": 7.0, "ci_upper": 9.0, "n": 100})
    assert effect(large, "MD").inputs["control.sd"] == pytest.approx(10 * 2.0 / (2 * Z975), rel=1e-9)


def test_continuous_errors_and_exclusions() -> None:
    missing_sd = ContinuousStudy(study_id="m", treatment={"mean": 1, "n": 10}, control={"mean": 0, "sd": 1, "n": 10})
    result = study_effect(missing_sd, "MD")
    assert isinstance(result, ExcludedStudy) and result.field == "treatment.sd"
    zero = ContinuousStudy(study_id="z", treatment={"mean": 1, "sd": 0, "n": 10}, control={"mean": 0, "sd": 0, "n": 10})
    with pytest.raises(DataError, match="zero SD"):
        study_effect(zero, "MD")
    tiny = ContinuousStudy(study_id="t", treatment={"mean": 1, "sd": 1, "n": 1}, control={"mean": 0, "sd": 1, "n": 10})
    with pytest.raises(DataError) as info:
        study_effect(tiny, "SMD")
    assert info.value.field == "treatment.n"
    empty_ci = ContinuousStudy(study_id="e", treatment={"mean": 1, "ci_lower": 2, "ci_upper": 1, "n": 10},
                               control={"mean": 0, "sd": 1, "n": 10})
    with pytest.raises(DataError, match="is empty"):
        study_effect(empty_ci, "MD")


def test_reported_ratio_with_ci_converted_to_log_se() -> None:
    study = GenericStudy(study_id="g", effect={"measure": "OR", "estimate": 0.74, "ci_lower": 0.54,
                                               "ci_upper": 1.01})
    e = effect(study, "OR")
    assert e.estimate == pytest.approx(math.log(0.74))
    assert e.se == pytest.approx((math.log(1.01) - math.log(0.54)) / (2 * Z975), rel=1e-12)
    assert any("ln(upper) − ln(lower)" in a for a in e.adjustments)
    md = effect(GenericStudy(study_id="m", effect={"measure": "MD", "estimate": -2.0, "se": 0.8}), "MD")
    assert (md.estimate, md.variance) == (-2.0, pytest.approx(0.64))


def test_reported_effect_mismatch_and_errors() -> None:
    other = study_effect(GenericStudy(study_id="g", effect={"measure": "OR", "estimate": 0.7, "se": 0.2}), "RR")
    assert isinstance(other, ExcludedStudy) and "reports a OR" in other.reason
    no_se = study_effect(GenericStudy(study_id="g", effect={"measure": "RR", "estimate": 0.7}), "RR")
    assert isinstance(no_se, ExcludedStudy) and no_se.field == "effect.se"
    with pytest.raises(DataError, match="outside its confidence interval"):
        study_effect(GenericStudy(study_id="g", effect={"measure": "RR", "estimate": 2.0, "ci_lower": 0.5,
                                                        "ci_upper": 1.5}), "RR")
    with pytest.raises(DataError, match="must be positive"):
        study_effect(GenericStudy(study_id="g", effect={"measure": "RR", "estimate": -1.0, "se": 0.3}), "RR")


def test_provenance_is_carried_per_field() -> None:
    quote = Provenance(record_id=7, quote="4 of 123 vaccinated children", start=10, end=38, call_id=3)
    e = effect(binary(4, 123, 11, 139, events=[quote]), "RR")
    assert e.sources == {"treatment.events": [quote]}
    assert "4 of 123" in quote.describe() and "record 7" in quote.describe()


def test_input_validation() -> None:
    with pytest.raises(ValidationError, match="end offset"):
        Provenance(quote="x", start=10, end=5)
    with pytest.raises(ValidationError, match="both start and end"):
        Provenance(quote="x", start=10)
    with pytest.raises(ValidationError, match="unknown binary arm field"):
        BinaryStudy(study_id="s", treatment={"events": 1, "total": 2, "sources": {"mean": []}},
                    control={"events": 1, "total": 2})
    with pytest.raises(ValidationError, match="appears twice"):
        SynthesisInput(studies=[binary(1, 10, 2, 10, sid="a"), binary(1, 10, 2, 10, sid="a")])
    with pytest.raises(ValidationError):
        binary(-1, 10, 2, 10)


def test_study_types_are_inferred_from_fields() -> None:
    data = SynthesisInput.model_validate({"studies": [
        {"study_id": "b", "treatment": {"events": 1, "total": 10}, "control": {"events": 2, "total": 10}},
        {"study_id": "c", "treatment": {"mean": 1, "sd": 1, "n": 5}, "control": {"mean": 0, "sd": 1, "n": 5}},
        {"study_id": "g", "effect": {"measure": "RR", "estimate": 0.8, "se": 0.1}},
    ]})
    assert [s.type for s in data.studies] == ["binary", "continuous", "generic"]
