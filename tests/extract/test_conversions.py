"""SD and mean conversions against the Cochrane Handbook's worked examples and Wan et al. 2014."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from leads.errors import LeadsError
from leads.extract.conversions import (
    ConversionError,
    critical_value,
    mean_sd_from_five_numbers,
    mean_sd_from_median_iqr,
    mean_sd_from_median_range,
    sd_from_ci,
    sd_from_ci_difference,
    sd_from_p,
    sd_from_se,
    sd_from_se_difference,
    sd_from_t,
)


def test_handbook_t_value_for_a_group_of_25() -> None:
    # Handbook 6.5.2.2: for a 95% CI from a group of 25, 3.92 is replaced by 2 x 2.0639 = 4.128.
    assert critical_value(0.95, 24) == pytest.approx(2.0639, abs=1e-4)
    assert 2 * critical_value(0.95, 24) == pytest.approx(4.128, abs=1e-3)


def test_handbook_divisors_for_large_samples() -> None:
    # 3.92 for 95%, 3.29 for 90%, 5.15 for 99% confidence intervals.
    assert 2 * critical_value(0.95) == pytest.approx(3.92, abs=0.005)
    assert 2 * critical_value(0.90) == pytest.approx(3.29, abs=0.005)
    assert 2 * critical_value(0.99) == pytest.approx(5.15, abs=0.005)


def test_sd_from_se() -> None:
    result = sd_from_se(2.0, 25)
    assert result.sd == pytest.approx(10.0)
    assert "6.5.2.2" in result.formula and result.expression == "SD = SE × √N"


def test_sd_from_ci_uses_t_for_small_groups() -> None:
    small = sd_from_ci(4.0, 6.0, 25)
    assert small.sd == pytest.approx(math.sqrt(25) * 2.0 / 4.128, abs=1e-3)
    assert "t distribution" in small.formula
    assert small.mean == pytest.approx(5.0)
    large = sd_from_ci(4.0, 6.0, 100)
    assert large.sd == pytest.approx(10 * 2.0 / 3.92, abs=1e-3)
    assert "normal" in large.formula
    ninety = sd_from_ci(4.0, 6.0, 100, level=0.90)
    assert ninety.sd == pytest.approx(10 * 2.0 / 3.29, abs=1e-2)


def test_handbook_mean_difference_example() -> None:
    # Handbook 6.5.2.3: MD 3.8, P = 0.008, N_E = 25, N_C = 22 -> t = 2.78 (45 df), SE = 1.37, SD = 4.69.
    result = sd_from_p(3.8, 0.008, 25, 22)
    assert result.inputs["t"] == pytest.approx(2.78, abs=0.005)
    assert 3.8 / result.inputs["t"] == pytest.approx(1.37, abs=0.005)
    assert result.sd == pytest.approx(4.69, abs=0.01)
    assert sd_from_se_difference(1.37, 25, 22).sd == pytest.approx(4.69, abs=0.01)
    # From t = 2.78 without rounding SE to 1.37 first: 4.68 (the Handbook rounds in between).
    assert sd_from_t(3.8, 2.78, 25, 22).sd == pytest.approx(4.69, abs=0.02)


def test_sd_from_ci_difference_round_trip() -> None:
    # A CI built from a known SD gives that SD back.
    sd, n1, n2 = 4.69, 25, 22
    se = sd * math.sqrt(1 / n1 + 1 / n2)
    t = critical_value(0.95, n1 + n2 - 2)
    result = sd_from_ci_difference(3.8 - t * se, 3.8 + t * se, n1, n2)
    assert result.sd == pytest.approx(sd)
    assert "6.5.2.3" in result.formula


def test_wan_quantile_terms_tend_to_the_normal() -> None:
    # For a large sample the IQR of a normal sample is 1.349 SD and Wan's estimate recovers the SD.
    result = mean_sd_from_median_iqr(-0.6745, 0.0, 0.6745, 100_000)
    assert result.sd == pytest.approx(1.0, abs=1e-3)
    assert result.mean == pytest.approx(0.0)
    assert "Wan" in result.formula


def test_wan_estimates_on_simulated_samples() -> None:
    # Wan et al.'s estimators are close to unbiased for normal data: averaged over many simulated
    # trials of 50 participants they recover mean 50 and SD 10.
    rng = np.random.default_rng(7)
    iqr_sd, range_sd, five_sd, iqr_mean = [], [], [], []
    for _ in range(300):
        sample = rng.normal(50.0, 10.0, size=50)
        q1, m, q3 = np.percentile(sample, [25, 50, 75])
        iqr = mean_sd_from_median_iqr(q1, m, q3, len(sample))
        iqr_sd.append(iqr.sd)
        iqr_mean.append(iqr.mean)
        range_sd.append(mean_sd_from_median_range(sample.min(), m, sample.max(), len(sample)).sd)
        five_sd.append(mean_sd_from_five_numbers(sample.min(), q1, m, q3, sample.max(), len(sample)).sd)
    assert np.mean(iqr_sd) == pytest.approx(10.0, rel=0.05)
    assert np.mean(range_sd) == pytest.approx(10.0, rel=0.05)
    assert np.mean(five_sd) == pytest.approx(10.0, rel=0.05)
    assert np.mean(iqr_mean) == pytest.approx(50.0, abs=0.5)


def test_wan_range_formula_matches_paper_definition() -> None:
    n = 30
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    result = mean_sd_from_median_range(1.0, 7.0, 57.0, n)
    assert result.sd == pytest.approx(56.0 / xi)
    assert result.mean == pytest.approx((1 + 14 + 57) / 4)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sd_from_se(1.0, 1), "group size"),
    (lambda: sd_from_se(-1.0, 10), "negative"),
    (lambda: sd_from_ci(5.0, 4.0, 30), "below the lower"),
    (lambda: sd_from_p(1.0, 1.5, 10, 10), "between 0 and 1"),
    (lambda: mean_sd_from_median_iqr(5.0, 3.0, 9.0, 20), "bracket"),
    (lambda: sd_from_t(1.0, 0.0, 10, 10), "t statistic"),
    (lambda: critical_value(1.5), "between 0 and 1"),
])
def test_conversion_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConversionError, match=message) as info:
        call()
    assert isinstance(info.value, LeadsError)


def test_describe_names_formula_and_inputs() -> None:
    text = sd_from_se(1.5, 16).describe()
    assert text.startswith("Cochrane Handbook 6.5.2.2") and "se=1.5" in text and "n=16" in text
