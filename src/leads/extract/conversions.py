"""Deriving a group's SD (and mean) from what a paper reports, each with the formula used.

Meta-analysis of a continuous outcome needs mean, SD and N per group; papers often give a
standard error, a confidence interval, or a median with its quartiles or range instead. These
functions return a :class:`Converted` value that names the formula, so the reviewer sees how a
number was obtained and can reject the conversion.

- :func:`sd_from_se`: SD = SE × √N (Cochrane Handbook 6.5.2.2).
- :func:`sd_from_ci`: SD = √N × (upper − lower) / (2 × q), q the normal quantile, or the t
  quantile with N − 1 degrees of freedom for small groups (Handbook 6.5.2.2: "if the sample size
  is small (say less than 60 in each group)").
- :func:`sd_from_se_difference`, :func:`sd_from_ci_difference`, :func:`sd_from_t`,
  :func:`sd_from_p`: the within-group SD from the SE / CI / t / P of a difference between two
  independent means (Handbook 6.5.2.3), the same SD for both groups.
- :func:`mean_sd_from_median_iqr`, :func:`mean_sd_from_median_range`,
  :func:`mean_sd_from_five_numbers`: Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and
  standard deviation from the sample size, median, range and/or interquartile range. BMC Med Res
  Methodol 2014;14:135 (scenarios C3, C1 and C2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from leads.errors import LeadsError

__all__ = [
    "SMALL_SAMPLE",
    "ConversionError",
    "Converted",
    "critical_value",
    "mean_sd_from_five_numbers",
    "mean_sd_from_median_iqr",
    "mean_sd_from_median_range",
    "sd_from_ci",
    "sd_from_ci_difference",
    "sd_from_p",
    "sd_from_se",
    "sd_from_se_difference",
    "sd_from_t",
]

# Below this group size the Handbook expects a CI to have been computed with a t value.
SMALL_SAMPLE = 60


class ConversionError(LeadsError):
    """The inputs cannot give an SD (a group size below 2, an interval with upper < lower, ...)."""


@dataclass(frozen=True)
class Converted:
    """A derived statistic: ``sd`` (and ``mean`` when the conversion estimates it too), the
    formula's name, the formula itself, and the inputs it used."""

    sd: float
    formula: str
    expression: str
    inputs: dict[str, float]
    mean: float | None = None

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in self.inputs.items())
        return f"{self.formula}: {self.expression} ({shown})"


def _check_n(n: float, name: str = "n") -> None:
    if not n or n < 2 or not math.isfinite(n):
        raise ConversionError(f"{name} must be a group size of at least 2, got {n!r}")


def critical_value(level: float, df: float | None = None) -> float:
    """Two-sided critical value: the normal quantile, or Student's t with ``df`` degrees of freedom.

    ``critical_value(0.95)`` is 1.960; ``critical_value(0.95, 24)`` is 2.064 (the Handbook's
    example for a group of 25).
    """
    if not 0 < level < 1:
        raise ConversionError(f"confidence level must be between 0 and 1, got {level!r}")
    q = 1 - (1 - level) / 2
    if df is None:
        return float(stats.norm.ppf(q))
    if df < 1:
        raise ConversionError(f"degrees of freedom must be at least 1, got {df!r}")
    return float(stats.t.ppf(q, df))


def sd_from_se(se: float, n: float) -> Converted:
    """SD = SE × √N for the SE of one group's mean (Handbook 6.5.2.2)."""
    _check_n(n)
    if se < 0:
        raise ConversionError(f"a standard error cannot be negative, got {se!r}")
    return Converted(sd=se * math.sqrt(n), formula="Cochrane Handbook 6.5.2.2 (SE to SD)",
                     expression="SD = SE × √N", inputs={"se": se, "n": n})


def sd_from_ci(lower: float, upper: float, n: float, *, level: float = 0.95,
               small_sample: int = SMALL_SAMPLE) -> Converted:
    """SD from the CI of one group's mean: √N × (upper − lower) / (2 × q) (Handbook 6.5.2.2).

    ``q`` is Student's t with N − 1 degrees of freedom when N < ``small_sample`` (the Handbook's
    "say less than 60"), else the normal quantile (1.96 for 95%, so the divisor is 3.92).
    """
    _check_n(n)
    if upper < lower:
        raise ConversionError(f"confidence interval upper limit {upper} is below the lower limit {lower}")
    if n < small_sample:
        q = critical_value(level, n - 1)
        name = "Cochrane Handbook 6.5.2.2 (CI to SD, t distribution)"
        expression = "SD = √N × (upper − lower) / (2 × t(N−1))"
    else:
        q = critical_value(level)
        name = "Cochrane Handbook 6.5.2.2 (CI to SD, normal)"
        expression = "SD = √N × (upper − lower) / (2 × z)"
    sd = math.sqrt(n) * (upper - lower) / (2 * q)
    mean = (upper + lower) / 2
    return Converted(sd=sd, formula=name, expression=expression,
                     inputs={"lower": lower, "upper": upper, "n": n, "level": level, "critical": q}, mean=mean)


def sd_from_se_difference(se: float, n1: float, n2: float) -> Converted:
    """Within-group SD from the SE of a difference of two independent means (Handbook 6.5.2.3):
    SD = SE / √(1/N1 + 1/N2); the same SD is used for both groups."""
    _check_n(n1, "n1")
    _check_n(n2, "n2")
    if se < 0:
        raise ConversionError(f"a standard error cannot be negative, got {se!r}")
    return Converted(sd=se / math.sqrt(1 / n1 + 1 / n2),
                     formula="Cochrane Handbook 6.5.2.3 (SE of a mean difference to SD)",
                     expression="SD = SE / √(1/N1 + 1/N2)", inputs={"se": se, "n1": n1, "n2": n2})


def sd_from_ci_difference(lower: float, upper: float, n1: float, n2: float, *, level: float = 0.95,
                          small_sample: int = SMALL_SAMPLE) -> Converted:
    """Within-group SD from the CI of a difference of two means (Handbook 6.5.2.3).

    SE = (upper − lower) / (2 × q), with t on N1 + N2 − 2 degrees of freedom for small trials
    (either group below ``small_sample``), then SD = SE / √(1/N1 + 1/N2).
    """
    _check_n(n1, "n1")
    _check_n(n2, "n2")
    if upper < lower:
        raise ConversionError(f"confidence interval upper limit {upper} is below the lower limit {lower}")
    small = min(n1, n2) < small_sample
    q = critical_value(level, n1 + n2 - 2) if small else critical_value(level)
    se = (upper - lower) / (2 * q)
    return Converted(sd=se / math.sqrt(1 / n1 + 1 / n2),
                     formula="Cochrane Handbook 6.5.2.3 (CI of a mean difference to SD"
                             + (", t distribution)" if small else ", normal)"),
                     expression="SE = (upper − lower) / (2 × q); SD = SE / √(1/N1 + 1/N2)",
                     inputs={"lower": lower, "upper": upper, "n1": n1, "n2": n2, "level": level, "critical": q})


def sd_from_t(difference: float, t: float, n1: float, n2: float) -> Converted:
    """Within-group SD from a two-sample t statistic (Handbook 6.5.2.3): SE = MD / t."""
    if t == 0:
        raise ConversionError("a t statistic of 0 gives no standard error")
    se = abs(difference / t)
    result = sd_from_se_difference(se, n1, n2)
    return Converted(sd=result.sd, formula="Cochrane Handbook 6.5.2.3 (t statistic to SD)",
                     expression="SE = MD / t; SD = SE / √(1/N1 + 1/N2)",
                     inputs={"difference": difference, "t": t, "n1": n1, "n2": n2})


def sd_from_p(difference: float, p: float, n1: float, n2: float) -> Converted:
    """Within-group SD from the two-sided P value of a two-sample t test (Handbook 6.5.2.3).

    t is the quantile of Student's t on N1 + N2 − 2 degrees of freedom with two-sided tail P
    (the Handbook's ``TINV(P, df)``); then SE = MD / t and SD = SE / √(1/N1 + 1/N2).
    """
    if not 0 < p < 1:
        raise ConversionError(f"P must be strictly between 0 and 1, got {p!r}")
    _check_n(n1, "n1")
    _check_n(n2, "n2")
    t = float(stats.t.ppf(1 - p / 2, n1 + n2 - 2))
    se = abs(difference) / t
    result = sd_from_se_difference(se, n1, n2)
    return Converted(sd=result.sd, formula="Cochrane Handbook 6.5.2.3 (P value to SD)",
                     expression="t = TINV(P, N1+N2−2); SE = MD / t; SD = SE / √(1/N1 + 1/N2)",
                     inputs={"difference": difference, "p": p, "n1": n1, "n2": n2, "t": t})


def _wan_xi(n: float) -> float:
    """Wan et al. 2014 ξ(n) = 2 Φ⁻¹((n − 0.375)/(n + 0.25)), the expected range in SD units."""
    return 2 * float(stats.norm.ppf((n - 0.375) / (n + 0.25)))


def _wan_eta(n: float) -> float:
    """Wan et al. 2014 η(n) = 2 Φ⁻¹((0.75n − 0.125)/(n + 0.25)), the expected IQR in SD units."""
    return 2 * float(stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))


def mean_sd_from_median_iqr(q1: float, median: float, q3: float, n: float) -> Converted:
    """Wan et al. 2014, scenario C3: mean ≈ (q1 + m + q3) / 3; SD ≈ (q3 − q1) / η(n)."""
    _check_n(n)
    if not q1 <= median <= q3:
        raise ConversionError(f"quartiles must bracket the median: {q1} ≤ {median} ≤ {q3}")
    return Converted(sd=(q3 - q1) / _wan_eta(n), mean=(q1 + median + q3) / 3,
                     formula="Wan et al. 2014 (median and IQR, scenario C3)",
                     expression="mean = (q1 + m + q3) / 3; SD = (q3 − q1) / (2 Φ⁻¹((0.75N − 0.125)/(N + 0.25)))",
                     inputs={"q1": q1, "median": median, "q3": q3, "n": n})


def mean_sd_from_median_range(minimum: float, median: float, maximum: float, n: float) -> Converted:
    """Wan et al. 2014, scenario C1: mean ≈ (a + 2m + b) / 4 (Hozo et al.); SD ≈ (b − a) / ξ(n)."""
    _check_n(n)
    if not minimum <= median <= maximum:
        raise ConversionError(f"the range must bracket the median: {minimum} ≤ {median} ≤ {maximum}")
    return Converted(sd=(maximum - minimum) / _wan_xi(n), mean=(minimum + 2 * median + maximum) / 4,
                     formula="Wan et al. 2014 (median and range, scenario C1)",
                     expression="mean = (a + 2m + b) / 4; SD = (b − a) / (2 Φ⁻¹((N − 0.375)/(N + 0.25)))",
                     inputs={"min": minimum, "median": median, "max": maximum, "n": n})


def mean_sd_from_five_numbers(minimum: float, q1: float, median: float, q3: float, maximum: float,
                              n: float) -> Converted:
    """Wan et al. 2014, scenario C2: mean ≈ (a + 2q1 + 2m + 2q3 + b) / 8;
    SD ≈ (b − a) / (2ξ(n)) + (q3 − q1) / (2η(n))."""
    _check_n(n)
    if not minimum <= q1 <= median <= q3 <= maximum:
        raise ConversionError("the five numbers must be ordered: min ≤ q1 ≤ median ≤ q3 ≤ max")
    sd = (maximum - minimum) / (2 * _wan_xi(n)) + (q3 - q1) / (2 * _wan_eta(n))
    mean = (minimum + 2 * q1 + 2 * median + 2 * q3 + maximum) / 8
    return Converted(sd=sd, mean=mean, formula="Wan et al. 2014 (five-number summary, scenario C2)",
                     expression="mean = (a + 2q1 + 2m + 2q3 + b) / 8; SD = (b − a)/(2ξ(N)) + (q3 − q1)/(2η(N))",
                     inputs={"min": minimum, "q1": q1, "median": median, "q3": q3, "max": maximum, "n": n})
