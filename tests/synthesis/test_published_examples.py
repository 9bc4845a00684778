"""Effect sizes and pooling against published worked examples.

Sources (numbers copied from them, never computed here):

- BCG vaccine trials (dat.bcg, Colditz et al. 1994): metafor's test files
  ``tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r`` and
  ``tests/testthat/test_misc_metan_vs_rma.mh_with_dat.bcg.r`` (github.com/wviechtb/metafor),
  where metafor is checked against Stata's ``metan``; and the REML fit printed in metafor's
  documentation for ``rma()`` (tau² = 0.3132 (SE = 0.1664), I² = 92.22%, estimate -0.7145,
  se 0.1798, CI -1.0669 to -0.3622). Note: -0.7145 / 0.3132 / 92.2% are the REML numbers; the DL
  ones are -0.7141 / 0.3088 / 92.1173%.
- Kacker (2004) interlaboratory example: metafor ``rma(method="PM"|"DL"|"FE")`` output recorded in
  statsmodels ``statsmodels/stats/tests/results/results_meta.py`` (``exk1_metafor``, ``exk1_dl``,
  ``exk1_dl_hksj``, ``exk1_fe``).
- Modified dat.fine1993: R ``meta::metabin(sm="OR", method.tau="DL", hakn=TRUE)`` output recorded in
  statsmodels' ``results_meta.py`` (``results_or_dl_hk``).
- Chen & Peace (2013) SMD example: R ``meta::metacont(sm="SMD")`` ``TE`` and ``seTE^2`` recorded in
  statsmodels' ``statsmodels/stats/tests/test_meta.py`` (``TestEffSmdMeta``).
- Normand (1999) length-of-stay example: Tables VIII and IX of Normand SLT, Stat Med 1999;18:321-359,
  as reproduced in metafor's ``test_analysis_example_normand1999.r``.
- Cochrane review CD014962.pub2 (remdesivir, all-cause mortality up to day 28): the review's own
  per-trial RRs, weights and pooled RR 0.93 [0.81, 1.06].
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from leads.synthesis import (
    ContinuousStudy,
    GenericStudy,
    SynthesisInput,
    load_input,
    meta_analysis,
)

# metafor prints 4 decimals: allow for rounding
R4 = 5.1e-5


def near(value: float, published: float, tol: float = R4) -> bool:
    return abs(value - published) <= tol


# --- BCG vaccine (dat.bcg) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "fe", "q", "dl", "tau2", "i2"),
    [
        ("RR", (-0.4303, -0.5097, -0.3509, -10.6247), 152.2330, (-0.7141, -1.0644, -0.3638, -3.9952), 0.3088, 92.1173),
        ("OR", (-0.4361, -0.5190, -0.3533, -10.3190), 163.1649, (-0.7474, -1.1242, -0.3706, -3.8873), 0.3663, 92.6455),
        ("RD", (-0.0009, -0.0014, -0.0005, -4.0448), 276.4737, (-0.0071, -0.0101, -0.0040, -4.5128), 0.0000, 95.6596),
    ],
)
def test_bcg_fixed_and_dersimonian_laird_match_metafor_and_metan(
    bcg: SynthesisInput, measure: str, fe: tuple[float, ...], q: float, dl: tuple[float, ...],
    tau2: float, i2: float,
) -> None:
    result = meta_analysis(bcg, measure, model="random", tau2_method="DL")  # type: ignore[arg-type]
    fixed, random, het = result.fixed, result.random, result.heterogeneity
    assert len(result.studies) == 13 and not result.excluded
    assert near(fixed.estimate, fe[0]) and near(fixed.ci_lower, fe[1]) and near(fixed.ci_upper, fe[2])
    assert near(fixed.statistic, fe[3])
    assert near(het.q, q) and het.df == 12
    assert near(random.estimate, dl[0]) and near(random.ci_lower, dl[1]) and near(random.ci_upper, dl[2])
    assert near(random.statistic, dl[3])
    assert near(het.tau2, tau2) and near(het.i2 or 0.0, i2)


def test_bcg_risk_ratio_back_transformed(bcg: SynthesisInput) -> None:
    result = meta_analysis(bcg, "RR", tau2_method="DL")
    # metan ... randomi nograph rr: 0.4896 [0.3449, 0.6950]; fixedi: 0.6503 [0.6007, 0.7040]
    assert near(result.random.display_estimate, 0.4896)
    assert near(result.random.display_ci_lower, 0.3449) and near(result.random.display_ci_upper, 0.6950)
    assert near(result.fixed.display_estimate, 0.6503)
    assert near(result.fixed.display_ci_lower, 0.6007) and near(result.fixed.display_ci_upper, 0.7040)


def test_bcg_reml_matches_metafor_default(bcg: SynthesisInput) -> None:
    result = meta_analysis(bcg, "RR", tau2_method="REML")
    assert near(result.heterogeneity.tau2, 0.3132)
    assert near(result.random.estimate, -0.7145) and near(result.random.se, 0.1798)
    assert near(result.random.ci_lower, -1.0669) and near(result.random.ci_upper, -0.3622)
    assert near(result.random.statistic, -3.9744)


@pytest.mark.parametrize(
    ("measure", "est", "lo", "hi", "z", "q"),
    [
        ("RR", -0.4537, -0.5308, -0.3766, -11.5338, 152.5676),
        ("OR", -0.4734, -0.5538, -0.3930, -11.5444, 163.9426),
        # metafor uses the Sato-Greenland-Robins (1989) variance for the MH RD (metan: Greenland-Robins)
        ("RD", -0.0033, -0.0039, -0.0027, -11.4708, 386.7759),
    ],
)
def test_bcg_mantel_haenszel_matches_rma_mh(bcg: SynthesisInput, measure: str, est: float, lo: float,
                                            hi: float, z: float, q: float) -> None:
    result = meta_analysis(bcg, measure, model="fixed", fixed_method="MH")  # type: ignore[arg-type]
    fixed = result.fixed
    assert fixed.method == "MH" and result.primary is fixed
    assert near(fixed.estimate, est) and near(fixed.ci_lower, lo) and near(fixed.ci_upper, hi)
    assert near(fixed.statistic, z)
    assert near(result.heterogeneity.q, q) and result.heterogeneity.q_about == "MH"


def test_bcg_mantel_haenszel_rr_back_transformed(bcg: SynthesisInput) -> None:
    fixed = meta_analysis(bcg, "RR", model="fixed", fixed_method="MH").fixed
    # metan tpos tneg cpos cneg, fixed nograph rr: 0.6353 [0.5881, 0.6862]
    assert near(fixed.display_estimate, 0.6353)
    assert near(fixed.display_ci_lower, 0.5881) and near(fixed.display_ci_upper, 0.6862)


# --- Kacker 2004 (metafor via statsmodels' recorded results) ---------------------------------

KACKER_Y = [61.00, 61.40, 62.21, 62.30, 62.34, 62.60, 62.70, 62.84, 65.90]
KACKER_V = [0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225]


def kacker() -> SynthesisInput:
    return SynthesisInput(studies=[
        GenericStudy(study_id=f"lab {i + 1}", effect={"measure": "MD", "estimate": y, "se": math.sqrt(v)})
        for i, (y, v) in enumerate(zip(KACKER_Y, KACKER_V, strict=True))
    ])


def test_kacker_paule_mandel_matches_metafor() -> None:
    result = meta_analysis(kacker(), "MD", tau2_method="PM")
    assert result.heterogeneity.tau2 == pytest.approx(0.705395309224248, abs=1e-8)
    assert result.random.estimate == pytest.approx(62.4076199113286, abs=1e-8)
    assert result.random.se == pytest.approx(0.338030602684471, abs=1e-8)
    assert result.random.ci_lower == pytest.approx(61.7450921043947, abs=1e-8)
    assert result.random.ci_upper == pytest.approx(63.0701477182625, abs=1e-8)
    assert result.heterogeneity.q == pytest.approx(24.801897741835, abs=1e-9)
    assert result.heterogeneity.p_value == pytest.approx(0.00167935146372742, abs=1e-12)


def test_kacker_dl_fixed_and_knapp_hartung_match_metafor() -> None:
    result = meta_analysis(kacker(), "MD", tau2_method="DL")
    assert result.heterogeneity.tau2 == pytest.approx(0.288049246973751, abs=1e-10)
    assert result.random.estimate == pytest.approx(62.3901386044504, abs=1e-10)
    assert result.random.se == pytest.approx(0.245749668040304, abs=1e-10)
    assert result.random.ci_lower == pytest.approx(61.9084781058787, abs=1e-10)
    assert result.heterogeneity.i2 == pytest.approx(67.744403741711, abs=1e-8)
    assert result.heterogeneity.h2 == pytest.approx(3.10023721772938, abs=1e-10)
    assert result.fixed.estimate == pytest.approx(62.5833970939982, abs=1e-10)
    assert result.fixed.se == pytest.approx(0.107845705498231, abs=1e-10)
    assert result.fixed.ci_lower == pytest.approx(62.3720233953344, abs=1e-10)
    hk = meta_analysis(kacker(), "MD", tau2_method="DL", hksj=True).random
    assert hk.distribution == "t" and hk.df == 8
    assert hk.se == pytest.approx(0.29477605699879, abs=1e-10)
    assert hk.ci_lower == pytest.approx(61.710383798052, abs=1e-9)
    assert hk.ci_upper == pytest.approx(63.0698934108488, abs=1e-9)
    assert hk.p_value == pytest.approx(2.77938607433693e-16, rel=1e-6)


# --- modified fine1993, R meta metabin (via statsmodels' recorded results) -------------------

META_TE = [2.70805020110221, 1.25672336971146, 0.374938517449009, 1.65822807660353, 0.784954729813068,
           0.361663949151077, 0.575364144903562, 0.250542525502324, 0.650587566141149,
           0.0918075492531229, 0.273865253802803, 0.485755524477543, 0.182321556793955,
           0.980829253011726, 1.31218638896617, -0.259511195485085, 0.138402322859119]
META_SE = [1.1130538571376, 0.505568465186247, 0.390847133738078, 0.680511012471685, 0.434831536798166,
           0.26249802054503, 0.490562645746402, 0.376864733063505, 0.529771411128472, 0.458411099840008,
           0.193159187510219, 0.206827050443269, 0.441477021807833, 0.713624032148063, 1.18251919576455,
           0.604874380241894, 0.329592099997789]
META_W_FIXED = [0.807174887892376, 3.91237113402062, 6.54615278162192, 2.15938303341902, 5.28880958450166,
                14.5126905285409, 4.15538290788013, 7.04091341579448, 3.5630585898709, 4.75871559633028,
                26.8021269609001, 23.3768140855494, 5.1307847082495, 1.96363636363636, 0.715127701375246,
                2.73318872017354, 9.2054794520548]
META_W_RANDOM = [0.806082838403413, 3.8868480814364, 6.47501150011912, 2.15158503393154, 5.24227532998639,
                 14.1675952027965, 4.12660238520421, 6.95867952431796, 3.54187734484692, 4.72100880622866,
                 25.6483453428049, 22.4942390635843, 5.0869781966579, 1.95718594121596, 0.714270384745876,
                 2.72070780232418, 9.06541462543771]


def test_fine1993_odds_ratios_match_r_meta(synthesis_fixtures: Path) -> None:
    data = load_input(synthesis_fixtures / "fine1993_modified.csv")
    result = meta_analysis(data, "OR", tau2_method="DL", hksj=True)
    np.testing.assert_allclose([s.estimate for s in result.studies], META_TE, rtol=1e-13)
    np.testing.assert_allclose([s.se for s in result.studies], META_SE, rtol=1e-13)
    np.testing.assert_allclose([w.raw_weight for w in result.fixed.weights], META_W_FIXED, rtol=1e-12)
    np.testing.assert_allclose([w.raw_weight for w in result.random.weights], META_W_RANDOM, rtol=1e-10)
    fixed, random, het = result.fixed, result.random, result.heterogeneity
    assert fixed.estimate == pytest.approx(0.428036725396544, rel=1e-13)
    assert fixed.se == pytest.approx(0.0902874968199668, rel=1e-13)
    assert fixed.ci_lower == pytest.approx(0.251076483375135, rel=1e-12)
    assert fixed.ci_upper == pytest.approx(0.604996967417954, rel=1e-12)
    assert fixed.p_value == pytest.approx(2.12855503378502e-06, rel=1e-8)
    assert het.q == pytest.approx(16.181374262823, rel=1e-12)
    assert het.p_value == pytest.approx(0.440375456698129, rel=1e-10)
    assert het.tau2 == pytest.approx(0.0016783981912744, rel=1e-10)
    assert (het.i2 or 0) / 100 == pytest.approx(0.0112088293538659, rel=1e-10)
    assert random.estimate == pytest.approx(0.429520368698268, rel=1e-12)
    assert random.se == pytest.approx(0.0915952752397692, rel=1e-12)  # Hartung-Knapp
    assert random.ci_lower == pytest.approx(0.235347059333852, rel=1e-10)
    assert random.ci_upper == pytest.approx(0.623693678062684, rel=1e-10)
    assert random.p_value == pytest.approx(0.000246175101510513, rel=1e-8)
    assert random.prediction_lower == pytest.approx(0.215650965184522, rel=1e-10)
    assert random.prediction_upper == pytest.approx(0.643389772212014, rel=1e-10)


# --- continuous ------------------------------------------------------------------------------


def test_smd_matches_r_meta_metacont(synthesis_fixtures: Path) -> None:
    data = load_input(synthesis_fixtures / "smd_chen_peace.csv")
    result = meta_analysis(data, "SMD")
    te = [0.09452437336063831, 0.27735640148036095, 0.36654634845797818, 0.66438509989113559,
          0.46180797677414176, 0.18516464424648887]
    var = [0.03337182573880991, 0.03107434965484927, 0.05088322525353587, 0.01055724834741877,
           0.04339324466573324, 0.02363264537147130]
    np.testing.assert_allclose([s.estimate for s in result.studies], te, rtol=1e-13)
    np.testing.assert_allclose([s.variance for s in result.studies], var, rtol=1e-13)
    # metafor's escalc(measure="SMD") agrees to about 1e-5 (exact bias correction)
    metafor_yi = [0.09452415852032972, 0.27735586626551018, 0.36654442951591998, 0.66438496832691396,
                  0.46180628128769841, 0.18516443739910043]
    np.testing.assert_allclose([s.estimate for s in result.studies], metafor_yi, rtol=1e-5)
    # pooled: inverse-variance average of those published effects, by hand
    w = 1 / np.array(var)
    assert result.fixed.estimate == pytest.approx(float(np.sum(w * te) / np.sum(w)), rel=1e-12)
    assert result.fixed.se == pytest.approx(float(np.sqrt(1 / np.sum(w))), rel=1e-12)


def test_normand1999_mean_differences_and_pooling(synthesis_fixtures: Path) -> None:
    rows = list(csv.DictReader((synthesis_fixtures / "normand1999.csv").open(encoding="utf-8")))
    studies = []
    for row in rows:
        n1, n2 = float(row["n_t"]), float(row["n_c"])
        sd1, sd2 = float(row["sd_t"]), float(row["sd_c"])
        # Normand (and metafor's check) use the pooled SD in both arms
        sdp = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
        studies.append(ContinuousStudy(
            study_id=row["study"],
            treatment={"mean": float(row["mean_t"]), "sd": sdp, "n": n1},
            control={"mean": float(row["mean_c"]), "sd": sdp, "n": n2}))
    data = SynthesisInput(studies=studies)
    fixed_result = meta_analysis(data, "MD", model="fixed")
    # Table VIII
    assert [s.estimate for s in fixed_result.studies] == [-20, -2, -55, -71, -4, 1, 11, -10, 7]
    assert [round(s.variance, 2) for s in fixed_result.studies] == [
        40.59, 2.05, 15.28, 150.22, 20.19, 1.22, 95.38, 8.03, 20.69]
    # Table IX
    fixed = fixed_result.fixed
    assert (round(fixed.estimate, 2), round(fixed.ci_lower, 2), round(fixed.ci_upper, 2)) == (-3.49, -5.03, -1.96)
    dl = meta_analysis(data, "MD", tau2_method="DL")
    assert (round(dl.random.estimate, 2), round(dl.random.ci_lower, 2), round(dl.random.ci_upper, 2)) == (
        -14.10, -24.45, -3.75)
    assert round(dl.heterogeneity.tau2, 2) == 218.72
    reml = meta_analysis(data, "MD", tau2_method="REML")
    assert (round(reml.random.estimate, 2), round(reml.random.ci_lower, 2), round(reml.random.ci_upper, 2)) == (
        -15.12, -32.67, 2.43)
    assert round(reml.heterogeneity.tau2, 2) == 685.20


# --- a Cochrane review -----------------------------------------------------------------------


def _parse_ci(text: str) -> tuple[float, float]:
    lo, hi = text.strip("[] ").split(",")
    return float(lo), float(hi)


def _check_cochrane(data: SynthesisInput, rows: list[dict[str, str]]) -> None:
    for model in ("fixed", "random"):
        result = meta_analysis(data, "RR", model=model)  # type: ignore[arg-type]
        pooled = result.primary
        assert round(pooled.display_estimate, 2) == float(rows[0]["meta_analysis_risk_ratio"])
        lo, hi = _parse_ci(rows[0]["meta_analysis_risk_ratio_ci"])
        assert (round(pooled.display_ci_lower, 2), round(pooled.display_ci_upper, 2)) == (lo, hi)
        weights = {w.study_id: w.weight for w in pooled.weights}
        for row, effect in zip(rows, result.studies, strict=True):
            assert effect.study_id == row["study"] and effect.record_id == int(row["pmcid"])
            assert round(effect.display_estimate, 2) == float(row["risk_ratio"])
            assert (round(effect.display_ci_lower, 2), round(effect.display_ci_upper, 2)) == _parse_ci(
                row["risk_ratio_ci"])
            assert round(weights[row["study"]], 1) == float(row["meta_analysis_weight"])
    # the review's random-effects analysis: DL's negative tau² is truncated to 0 (recorded)
    result = meta_analysis(data, "RR", model="random")
    assert result.heterogeneity.tau2 == 0.0
    assert any("truncated to 0" in note for note in result.random.notes)


def test_cochrane_cd014962_remdesivir_mortality(synthesis_fixtures: Path) -> None:
    path = synthesis_fixtures / "remdesivir_cd014962.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    _check_cochrane(load_input(path), rows)


@pytest.mark.shared
def test_cochrane_case_study_from_shared_data(shared_data: Path) -> None:
    path = shared_data / "results" / "llm_meta_analysis_dev" / "case_study" / "meta_analysis_case_study.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8-sig")))
    _check_cochrane(load_input(path), rows)
