"""Numeric parsers: every documented format, spans, and round-trip property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.extract.numbers import (
    Stat,
    cell_format,
    dispersion_hint,
    find_all,
    find_ci,
    find_events_total,
    find_mean_dispersion,
    find_n,
    find_numbers,
    find_p_values,
    find_percentages,
    parse_cell,
    parse_number,
    parse_number_words,
    resolve,
)


def only(text: str) -> Stat:
    stats = find_all(text, numbers=False)
    assert len(stats) == 1, stats
    stat = stats[0]
    assert text[stat.start:stat.end] == stat.text
    return stat


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12.0), ("-3.5", -3.5), ("\u22123.5", -3.5), ("\u20133.5", -3.5), ("+2", 2.0), ("- 0.7", -0.7),
    ("10,948", 10948.0), ("1,234,567.25", 1234567.25), ("10\u2009948", 10948.0), ("12\u00b73", 12.3),
    (".05", 0.05), ("0", 0.0),
])
def test_parse_number(text: str, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12,34", "--3", "%"])
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


def test_number_words() -> None:
    assert parse_number_words("Nineteen") == 19
    assert parse_number_words("Eighty-two") == 82
    assert parse_number_words("one hundred and five") == 105
    assert parse_number_words("two thousand three hundred") == 2300
    assert parse_number_words("several") is None


def test_find_numbers_reads_signs_but_not_identifiers() -> None:
    text = "weight (- 0.7 gm), \u22127.0, range 5-7, IL-6 and COVID-19, 10,948 and 12\u00b73"
    values = [s["value"] for s in find_numbers(text)]
    assert -0.7 in values and -7.0 in values and 10948.0 in values and 12.3 in values
    assert 6.0 not in values and 19.0 not in values and values[1] == -7.0


@pytest.mark.parametrize(("text", "n"), [
    ("n = 120", 120), ("(N=35)", 35), ("n: 12", 12), ("120 patients", 120), ("19 males", 19),
    ("70 healthy volunteers", 70), ("Nineteen subjects", 19), ("Seventy women", 70),
    ("10,948 patients", 10948), ("Eighty-two patients", 82),
])
def test_n(text: str, n: int) -> None:
    stats = find_n(text)
    assert [s["n"] for s in stats] == [n]


def test_n_is_not_a_percentage() -> None:
    assert find_n("Seventy-one percent of patients") == []
    assert [s["percent"] for s in find_percentages("Seventy-one percent of patients")] == [71.0]


@pytest.mark.parametrize(("text", "events", "total", "percent"), [
    ("45/120", 45, 120, None), ("45/120 (37.5%)", 45, 120, 37.5), ("69/115 [60.0%]", 69, 115, 60.0),
    ("45 of 120", 45, 120, None), ("45 out of 120 (37.5%)", 45, 120, 37.5), ("37.3 % ( 91/244 )", 91, 244, 37.3),
    ("301 of 2743 patients", 301, 2743, None), ("1,234/2,000", 1234, 2000, None),
])
def test_events_total(text: str, events: int, total: int, percent: float | None) -> None:
    stat = only(text)
    assert stat.kind == "events_total"
    assert (stat["events"], stat["total"], stat.get("percent")) == (events, total, percent)


@pytest.mark.parametrize("text", ["12/05/2010", "12.5/100", "blood pressure 130/80 mmHg", "ratio 5/3"])
def test_not_events_total(text: str) -> None:
    # dates, decimals and counts larger than their denominator are not events of a total
    assert find_events_total(text) == []


@pytest.mark.parametrize(("text", "kind", "values"), [
    ("12.3 \u00b1 4.5", "mean_sd", {"mean": 12.3, "sd": 4.5}),
    ("12.3 +/- 4.5", "mean_sd", {"mean": 12.3, "sd": 4.5}),
    ("157+/-52 days", "mean_sd", {"mean": 157.0, "sd": 52.0}),
    ("12.3 (SD 4.5)", "mean_sd", {"mean": 12.3, "sd": 4.5}),
    ("94.68 (SD=27.14)", "mean_sd", {"mean": 94.68, "sd": 27.14}),
    ("mean 12.3, SD 4.5", "mean_sd", {"mean": 12.3, "sd": 4.5}),
    ("mean age of 28.86 years (SD= 2.51)", "mean_sd", {"mean": 28.86, "sd": 2.51}),
    ("12.3 (SE 1.2)", "mean_se", {"mean": 12.3, "se": 1.2}),
    ("12.3 \u00b1 1.2 SEM", "mean_se", {"mean": 12.3, "se": 1.2}),
    ("12.3 (4.5)", "paren", {"value": 12.3, "paren": 4.5}),
    ("\u221222.6 [1.17]", "paren", {"value": -22.6, "paren": 1.17}),
    ("median 7 (IQR 5\u20139)", "median_iqr", {"median": 7, "q1": 5, "q3": 9}),
    ("7 (range 1\u201357)", "median_range", {"median": 7, "min": 1, "max": 57}),
    ("median, 7; IQR, 5 to 9", "median_iqr", {"median": 7, "q1": 5, "q3": 9}),
    ("11 (1\u201357)", "value_interval", {"value": 11, "low": 1, "high": 57}),
    ("0.9 (0.4, 1.9)", "value_interval", {"value": 0.9, "low": 0.4, "high": 1.9}),
])
def test_mean_dispersion(text: str, kind: str, values: dict[str, float]) -> None:
    stats = find_mean_dispersion(text)
    assert len(stats) == 1
    assert stats[0].kind == kind
    assert dict(stats[0].values) == values


def test_two_arms_in_one_cell() -> None:
    stats = find_all("10.80\u00b12.0 (4.90\u00b11.88)", numbers=False)
    assert [(s["mean"], s["sd"]) for s in stats] == [(10.8, 2.0), (4.9, 1.88)]
    typo = find_all("80.50\u00b19.97 ()69.89\u00b11.59", numbers=False)
    assert [(s["mean"], s["sd"]) for s in typo] == [(80.5, 9.97), (69.89, 1.59)]


@pytest.mark.parametrize(("text", "low", "high"), [
    ("95% CI 1.2 to 3.4", 1.2, 3.4), ("95% CI 1.2-3.4", 1.2, 3.4), ("95% CI [1.2, 3.4]", 1.2, 3.4),
    ("(95% CI, \u22120.29 to 0.27)", -0.29, 0.27), ("95% confidence interval 1.05 to 4.47", 1.05, 4.47),
    ("95 % CI: 0.74-1.19", 0.74, 1.19), ("95% CI \u221219.4 to 1.6", -19.4, 1.6),
])
def test_ci(text: str, low: float, high: float) -> None:
    stats = find_ci(text)
    assert len(stats) == 1
    assert (stats[0]["low"], stats[0]["high"], stats[0]["level"]) == (low, high, 0.95)


def test_ci_level() -> None:
    assert find_ci("90% CI 1 to 2")[0]["level"] == pytest.approx(0.9)


def test_intervals() -> None:
    stat = only("[1.2, 3.4]")
    assert stat.kind == "interval" and (stat["low"], stat["high"]) == (1.2, 3.4)
    stat = only("9 to 14")
    assert stat.kind == "interval"


@pytest.mark.parametrize(("text", "op", "p"), [
    ("p = 0.03", "=", 0.03), ("P<0.001", "<", 0.001), ("p \u2264 .05", "\u2264", 0.05), ("P value < 0.001", "<", 0.001),
    ("p-value = 0.2", "=", 0.2), ("P>0.05", ">", 0.05),
])
def test_p_values(text: str, op: str, p: float) -> None:
    stats = find_p_values(text)
    assert len(stats) == 1
    assert (stats[0].qualifier, stats[0]["p"]) == (op, p)


def test_count_percent() -> None:
    stat = only("45 (37.5%)")
    assert stat.kind == "count_percent" and (stat["count"], stat["percent"]) == (45, 37.5)
    stat = only("30.4% (103)")
    assert stat.kind == "count_percent" and (stat["count"], stat["percent"]) == (103, 30.4)


def test_spans_point_into_the_text() -> None:
    text = ("At week 8, desvenlafaxine, 69/115 [60.0%]; placebo, 79/112 [70.5%] (p = 0.017); "
            "mean \u00b1 SD 9.3 \u00b1 11.9 days; 95% CI 1.05 to 4.47.")
    stats = find_all(text)
    assert [s.kind for s in stats if s.kind != "number"] == ["events_total", "events_total", "p_value", "mean_sd", "ci"]
    for s in stats:
        assert text[s.start:s.end] == s.text


@pytest.mark.parametrize(("label", "fmt"), [
    ("Mean (SD)", "mean_sd"), ("Age, mean (SD), years", "mean_sd"), ("Mean \u00b1 SD", "mean_sd"),
    ("n (%)", "n_percent"), ("No. (%)", "n_percent"), ("Median (IQR)", "median_iqr"),
    ("median (range)", "median_range"), ("Adjusted mean change (SE) from baseline", "mean_se"),
    ("%", "percent"), ("Mean", "mean"), ("n", "n"), ("Treatment group", None),
])
def test_cell_format(label: str, fmt: str | None) -> None:
    assert cell_format(label) == fmt


def test_resolve_by_format() -> None:
    paren = only("23 (55)")
    assert resolve(paren, "n_percent").kind == "count_percent"
    assert dict(resolve(paren, "mean_sd").values) == {"mean": 23.0, "sd": 55.0}
    assert resolve(paren, None).kind == "paren"
    interval = only("7 (1\u201357)")
    assert resolve(interval, "median_range").kind == "median_range"
    assert resolve(interval, "median_iqr").kind == "median_iqr"


def test_dispersion_hint() -> None:
    text = "adjusted mean [standard error] change, "
    assert dispersion_hint(text) == "mean_se"
    assert dispersion_hint("Mean (SD) CDRS-R Total Score at baseline was ") == "mean_sd"
    assert dispersion_hint("the response was ") is None


def test_parse_cell() -> None:
    assert parse_cell("\u2014") is None
    assert parse_cell("NA") is None
    stat = parse_cell("2.19*", "mean")
    assert stat is not None and stat["value"] == 2.19
    stat = parse_cell("16.74 \u00b1 2.75iii")
    assert stat is not None and stat.kind == "mean_sd" and stat["sd"] == 2.75
    stat = parse_cell("12", "n")
    assert stat is not None and stat.kind == "n"
    stat = parse_cell("62.6", "percent")
    assert stat is not None and stat.kind == "percent"


# --- round trips ------------------------------------------------------------------------------------

MINUSES = ["-", "\u2212", "\u2013"]


def render(value: float, decimals: int, *, minus: str = "-", dot: str = ".", thousands: str = "") -> str:
    text = f"{abs(value):,.{decimals}f}" if thousands else f"{abs(value):.{decimals}f}"
    if thousands:
        text = text.replace(",", thousands)
    text = text.replace(".", dot)
    return (minus if value < 0 else "") + text


def values(low: float, high: float, decimals: int) -> st.SearchStrategy[float]:
    return st.integers(int(low * 10 ** decimals), int(high * 10 ** decimals)).map(lambda i: i / 10 ** decimals)


number_style = st.fixed_dictionaries({"minus": st.sampled_from(MINUSES), "dot": st.sampled_from([".", "\u00b7"])})


@settings(max_examples=200, deadline=None)
@given(mean=values(-999, 999, 2), sd=values(0, 500, 2), decimals=st.integers(0, 2), style=number_style,
       form=st.sampled_from(["{m} \u00b1 {s}", "{m} +/- {s}", "{m}\u00b1{s}", "{m} (SD {s})", "{m} (SD = {s})",
                             "mean {m}, SD {s}", "{m} ({s})"]))
def test_mean_sd_round_trip(mean: float, sd: float, decimals: int, style: dict[str, str], form: str) -> None:
    mean, sd = round(mean, decimals), round(sd, decimals)
    text = "the value was " + form.format(m=render(mean, decimals, **style), s=render(sd, decimals, dot=style["dot"]))
    stats = [s for s in find_all(text, numbers=False)]
    assert len(stats) == 1, (text, stats)
    stat = resolve(stats[0], "mean_sd")
    assert stat.kind == "mean_sd"
    assert stat["mean"] == pytest.approx(mean) and stat["sd"] == pytest.approx(sd)
    assert text[stat.start:stat.end] == stat.text


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 200_000), data=st.data(), decimals=st.integers(0, 1),
       thousands=st.sampled_from(["", ",", "\u2009"]),
       form=st.sampled_from(["{e}/{n}", "{e}/{n} ({p}%)", "{e} of {n}", "{e} out of {n} ({p}%)", "{e}/{n} [{p}%]"]))
def test_events_total_round_trip(total: int, data: st.DataObject, decimals: int, thousands: str, form: str) -> None:
    events = data.draw(st.integers(0, total))
    percent = round(100 * events / total, decimals)
    text = "were " + form.format(e=render(events, 0, thousands=thousands), n=render(total, 0, thousands=thousands),
                                 p=render(percent, decimals)) + " patients"
    stats = find_events_total(text)
    assert len(stats) == 1, (text, stats)
    assert (stats[0]["events"], stats[0]["total"]) == (events, total)
    if "{p}" in form:
        assert stats[0]["percent"] == pytest.approx(percent)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 500_000), thousands=st.sampled_from(["", ","]),
       form=st.sampled_from(["n = {n}", "(N={n})", "n={n}", "{n} patients", "{n} participants were randomised"]))
def test_n_round_trip(n: int, thousands: str, form: str) -> None:
    text = "In total, " + form.format(n=render(n, 0, thousands=thousands))
    stats = find_n(text)
    assert [s["n"] for s in stats] == [n], text


@settings(max_examples=200, deadline=None)
@given(a=values(-50, 50, 2), width=values(0, 50, 2), decimals=st.integers(0, 2), minus=st.sampled_from(MINUSES[:2]),
       level=st.sampled_from([90, 95, 99]),
       form=st.sampled_from(["{l}% CI {a} to {b}", "({l}% CI, {a} to {b})", "{l}% CI [{a}, {b}]", "{l}% CI: {a}; {b}",
                             "{l}% confidence interval {a} to {b}"]))
def test_ci_round_trip(a: float, width: float, decimals: int, minus: str, level: int, form: str) -> None:
    low, high = round(a, decimals), round(a + width, decimals)
    text = "difference 1.2, " + form.format(l=level, a=render(low, decimals, minus=minus),
                                            b=render(high, decimals, minus=minus))
    stats = find_ci(text)
    assert len(stats) == 1, (text, stats)
    assert (stats[0]["low"], stats[0]["high"]) == (pytest.approx(low), pytest.approx(high))
    assert stats[0]["level"] == pytest.approx(level / 100)


@settings(max_examples=100, deadline=None)
@given(low=values(0, 99, 1), width=values(0, 50, 1), decimals=st.integers(0, 1))
def test_plain_range_round_trip(low: float, width: float, decimals: int) -> None:
    lo, hi = round(low, decimals), round(low + width, decimals)
    text = f"ranged {render(lo, decimals)}-{render(hi, decimals)} years"
    stats = [s for s in find_all(text, numbers=False) if s.kind == "interval"]
    assert [(s["low"], s["high"]) for s in stats] == [(pytest.approx(lo), pytest.approx(hi))]


@settings(max_examples=100, deadline=None)
@given(p=values(0, 100, 2), decimals=st.integers(0, 2), spaced=st.booleans(), dot=st.sampled_from([".", "\u00b7"]))
def test_percent_round_trip(p: float, decimals: int, spaced: bool, dot: str) -> None:
    p = round(p, decimals)
    text = f"a rate of {render(p, decimals, dot=dot)}{' ' if spaced else ''}% overall"
    stats = find_percentages(text)
    assert [s["percent"] for s in stats] == [pytest.approx(p)]


@settings(max_examples=100, deadline=None)
@given(p=values(0, 1, 3), op=st.sampled_from(["=", "<", ">", "\u2264", "\u2265"]), leading=st.booleans(),
       prefix=st.sampled_from(["p", "P", "p-value", "P value"]))
def test_p_value_round_trip(p: float, op: str, leading: bool, prefix: str) -> None:
    shown = f"{p:.3f}"
    if leading and shown.startswith("0."):
        shown = shown[1:]
    text = f"(difference 2.1; {prefix} {op} {shown})"
    stats = find_p_values(text)
    assert len(stats) == 1, text
    assert stats[0]["p"] == pytest.approx(float(shown)) and stats[0].qualifier == op


@settings(max_examples=100, deadline=None)
@given(q1=values(0, 100, 1), d1=values(0, 30, 1), d2=values(0, 30, 1), decimals=st.integers(0, 1),
       form=st.sampled_from(["median {m} (IQR {a}\u2013{b})", "{m} (IQR {a} to {b})", "median, {m}; IQR, {a} to {b}"]))
def test_median_iqr_round_trip(q1: float, d1: float, d2: float, decimals: int, form: str) -> None:
    a = round(q1, decimals)
    m = round(q1 + d1, decimals)
    b = round(q1 + d1 + d2, decimals)
    text = "scores: " + form.format(m=render(m, decimals), a=render(a, decimals), b=render(b, decimals))
    stats = [s for s in find_mean_dispersion(text) if s.kind == "median_iqr"]
    assert len(stats) == 1, text
    assert (stats[0]["median"], stats[0]["q1"], stats[0]["q3"]) == (pytest.approx(m), pytest.approx(a), pytest.approx(b))
