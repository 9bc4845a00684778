"""Numeric parsers for trial reports: counts, percentages, means and dispersions, intervals, p-values.

Every finder returns :class:`Stat` objects: the kind of statistic, its values by name, and the
character span it came from (``text[start:end] == stat.text``), so each extracted number can be
shown with the words it was read from.

Kinds and their ``values`` keys:

=================  =====================================================  ==========================
kind               example                                                values
=================  =====================================================  ==========================
``number``         ``12.5``, ``−3``, ``10,948``, ``12·3``                 value
``n``              ``n = 120``, ``(N=35)``, ``120 patients``, ``Nineteen  n
                   subjects``
``percent``        ``37.5%``, ``37.5 percent``, ``Seventy-one percent``   percent
``events_total``   ``45/120``, ``45/120 (37.5%)``, ``45 of 120``,         events, total [, percent]
                   ``37.3 % (91/244)``
``count_percent``  ``45 (37.5%)``, ``30.4% (103)``                        count, percent
``mean_sd``        ``12.3 ± 4.5``, ``12.3 (SD 4.5)``, ``mean 12.3, SD     mean, sd
                   4.5``, ``12.3 +/- 4.5``
``mean_se``        ``12.3 (SE 1.2)``, ``12.3 ± 1.2 SEM``                  mean, se
``paren``          ``12.3 (4.5)``, ``−22.6 [1.17]``: a value and one      value, paren
                   number in brackets, meaning set by context
                   (:func:`resolve`)
``median_iqr``     ``median 7 (IQR 5–9)``, ``7 (IQR 5 to 9)``             median, q1, q3
``median_range``   ``7 (range 1–57)``                                     median, min, max
``value_interval`` ``7 (1–57)``, ``0.9 (0.4, 1.9)``: a value and an       value, low, high
                   interval, meaning set by context
``ci``             ``95% CI 1.2 to 3.4``, ``(95% CI, 1.2–3.4)``, ``95%    low, high, level
                   CI [1.2, 3.4]``
``interval``       ``1.2–3.4``, ``[1.2, 3.4]``, ``9 to 14``                 low, high
``p_value``        ``p = 0.03``, ``P<0.001``, ``p ≤ .05``                 p (the bound); ``Stat.
                                                                          qualifier`` holds ``=``,
                                                                          ``<``, ``>``, ``≤``, ``≥``
=================  =====================================================  ==========================

Numbers are read with a Unicode minus (−), an en dash directly before a digit as a sign (not
between two numbers, where it is a range), a middle dot (·) as the decimal point, and commas or
thin spaces as thousands separators (``10,948``, ``10 948``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "KINDS",
    "NUMBER_WORDS",
    "Stat",
    "StatKind",
    "cell_format",
    "dispersion_hint",
    "find_all",
    "find_ci",
    "find_events_total",
    "find_mean_dispersion",
    "find_n",
    "find_numbers",
    "find_p_values",
    "find_percentages",
    "parse_cell",
    "parse_number",
    "parse_number_words",
    "resolve",
]

StatKind = Literal[
    "number", "n", "percent", "events_total", "count_percent", "mean_sd", "mean_se", "paren",
    "median_iqr", "median_range", "value_interval", "ci", "interval", "p_value",
]
KINDS: tuple[str, ...] = (
    "number", "n", "percent", "events_total", "count_percent", "mean_sd", "mean_se", "paren",
    "median_iqr", "median_range", "value_interval", "ci", "interval", "p_value",
)


@dataclass(frozen=True)
class Stat:
    """One parsed statistic: ``text[start:end] == self.text`` in the string it was found in."""

    kind: str
    start: int
    end: int
    text: str
    values: Mapping[str, float] = field(default_factory=dict)
    qualifier: str | None = None  # comparison of a p-value; a dispersion label; a CI level note

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def get(self, key: str, default: float | None = None) -> float | None:
        return self.values.get(key, default)

    def shifted(self, offset: int) -> Stat:
        """The same statistic with its span moved by ``offset`` (for a substring's matches)."""
        return Stat(self.kind, self.start + offset, self.end + offset, self.text, dict(self.values),
                    self.qualifier)

    def as_kind(self, kind: str, values: Mapping[str, float], qualifier: str | None = None) -> Stat:
        return Stat(kind, self.start, self.end, self.text, dict(values), qualifier or self.qualifier)


# --- single numbers ----------------------------------------------------------------------------

_MINUS_CHARS = "\u2212\u2013\u2012\u2010\u2011\ufe63\uff0d-"
_DOT_CHARS = ".\u00b7\u2219"
_THIN = "\u2009\u202f\u00a0"
# A bare number: thousands groups (comma or thin space) or plain digits, optional decimals; or a
# leading-dot decimal (".05").
_UNSIGNED = (rf"(?:\d{{1,3}}(?:,\d{{3}})+(?!\d)|\d{{1,3}}(?:[{_THIN}]\d{{3}})+(?!\d)|\d+)"
             rf"(?:[{_DOT_CHARS}]\d+)?|[{_DOT_CHARS}]\d+")
# A sign counts only where a number can begin (not "5-7", not "IL-6").
_SIGN = rf"(?:(?<![\w.)\]%/])[+{_MINUS_CHARS}]\s?)"
_SIGNED = rf"(?:{_SIGN}?(?<![\w.,/])(?<![A-Za-z]-)(?<!\d[{_THIN}])(?:{_UNSIGNED}))"
_INT_CORE = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?!\d)|\d{{1,3}}(?:[{_THIN}]\d{{3}})+(?!\d)|\d+)(?![{_DOT_CHARS}]?\d)"
_INT = rf"(?:(?<![\w.,/])(?<![A-Za-z]-)(?<!\d[{_THIN}]){_INT_CORE})"
_END = rf"(?![\d{_DOT_CHARS[0]}]\d|\d)"

_NUMBER_RE = re.compile(rf"{_SIGNED}{_END}")


def parse_number(text: str) -> float | None:
    """Read one number (the whole string, surrounding spaces ignored); ``None`` if it is not one.

    >>> parse_number("\u22123.5"), parse_number("10,948"), parse_number("12\u00b73"), parse_number("- 0.7")
    (-3.5, 10948.0, 12.3, -0.7)
    """
    s = text.strip()
    if not s:
        return None
    negative = False
    if s[0] in _MINUS_CHARS or s[0] == "+":
        negative = s[0] != "+"
        s = s[1:].lstrip()
    if not s:
        return None
    s = s.translate(_NUMBER_TRANSLATION)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s) or re.fullmatch(r"\d{1,3}(?: \d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "").replace(" ", "")
    if not re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", s):
        return None
    value = float(s)
    return -value if negative else value


_NUMBER_TRANSLATION = str.maketrans({"\u00b7": ".", "\u2219": ".", "\u2009": " ", "\u202f": " ",
                                     "\u00a0": " "})

NUMBER_WORDS: Mapping[str, int] = MappingProxyType({
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
})
_SCALES = {"hundred": 100, "thousand": 1000}
_WORD_ALT = "|".join(sorted([*NUMBER_WORDS, *_SCALES], key=len, reverse=True))
# "Seventy", "Eighty-two", "one hundred and twenty", "Two hundred".
_NUMBER_WORDS_RE = rf"(?:(?:{_WORD_ALT})(?:(?:[\s-]|\s+and\s+)(?:{_WORD_ALT}))*)"


def parse_number_words(text: str) -> int | None:
    """``"Eighty-two"`` → 82, ``"one hundred and five"`` → 105; ``None`` if not a number in words."""
    words = [w for w in re.split(r"[\s-]+", text.strip().lower()) if w and w != "and"]
    if not words:
        return None
    total = 0
    current = 0
    seen = False
    for word in words:
        if word in NUMBER_WORDS:
            current += NUMBER_WORDS[word]
            seen = True
        elif word == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
            seen = True
        else:
            return None
    return total + current if seen else None


def find_numbers(text: str) -> list[Stat]:
    """Every number in ``text`` (kind ``number``), signs and separators read as described above."""
    out = []
    for m in _NUMBER_RE.finditer(text):
        value = parse_number(m.group(0))
        if value is not None:
            out.append(Stat("number", m.start(), m.end(), m.group(0), {"value": value}))
    return out


# --- statistic patterns -------------------------------------------------------------------------

_S = r"[ \t\u00a0\u2009\u202f]?"  # an optional single space of any width
_OPEN = r"[(\[]"
_CLOSE = r"[)\]]"
_RANGE_SEP = rf"(?:{_S}(?:[-\u2013\u2014\u2012~]|to){_S}|,{_S}|;{_S})"
_DASH_SEP = rf"(?:{_S}(?:[-\u2013\u2014\u2012~]|to|and){_S})"
_PLUS_MINUS = r"(?:\u00b1|\+\s?/\s?-|\+\s?/\s?\u2212|\+-|\u2213)"
_SD_LABEL = r"(?:SD|S\.D\.|sd|s\.d\.|standard deviation)"
_SE_LABEL = r"(?:SEM|S\.E\.M\.|SE|S\.E\.|se|s\.e\.|s\.e\.m\.|standard error(?: of (?:the )?mean)?)"
_DISP_LABEL = rf"(?:{_SE_LABEL}|{_SD_LABEL})"
_PCT = r"(?:%|\s?percent\b|\s?per\s?cent\b)"

_PARTICIPANT_NOUNS = (
    "patients", "participants", "subjects", "children", "infants", "neonates", "newborns",
    "adults", "adolescents", "women", "men", "males", "females", "girls", "boys", "individuals",
    "persons", "people", "cases", "students", "volunteers", "respondents", "mothers", "pregnancies",
    "eyes", "families", "residents", "nurses", "physicians", "smokers", "controls", "pairs",
    "couples", "athletes", "workers", "employees", "veterans", "elders", "users", "outpatients",
    "inpatients", "survivors", "recipients", "donors", "teenagers", "youths", "babies", "twins",
)
_NOUN_RE = "|".join(_PARTICIPANT_NOUNS)


def _num(text: str) -> float:
    value = parse_number(text)
    if value is None:  # the patterns only capture numbers; this is a programming error
        raise ValueError(f"not a number: {text!r}")
    return value


def _level(text: str | None) -> float:
    if not text:
        return 0.95
    return _num(text) / 100


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    priority: int


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_CI_PREFIX = (rf"(?:(?P<level>\d{{2}}(?:[.\u00b7]\d+)?){_S}%{_S}(?:CI|C\.I\.|CrI|confidence intervals?|"
              rf"credible intervals?|confidence limits?)|\bCI|\bconfidence intervals?)")
_PATTERNS: tuple[_Pattern, ...] = (
    # 95% CI 1.2 to 3.4 / (95% CI, 1.2-3.4) / 95% CI [1.2, 3.4] / 95% CI: 1.2; 3.4
    _Pattern("ci", _compile(
        rf"{_CI_PREFIX}[\s,:=]*(?:(?:of|was|is|were|from)\s)?{_OPEN}?{_S}(?P<lo>{_SIGNED}){_RANGE_SEP}"
        rf"(?P<hi>{_SIGNED}){_END}{_S}{_CLOSE}?"), 90),
    # 37.3 % (91/244)
    _Pattern("events_total", _compile(
        rf"(?P<p>{_SIGNED}){_S}{_PCT}{_S}{_OPEN}{_S}(?P<e>{_INT}){_S}/{_S}(?P<n>{_INT_CORE}){_S}{_CLOSE}"), 85),
    # 45/120, 45/120 (37.5%), 45 / 120 [37.5]
    _Pattern("events_total", _compile(
        rf"(?<![\d/.])(?P<e>{_INT}){_S}/{_S}(?P<n>{_INT_CORE})(?!{_S}/\d|[\d.])"
        rf"(?:{_S}{_OPEN}{_S}(?P<p>{_SIGNED}){_S}%?{_S}{_CLOSE}|\s(?:[A-Za-z-]+\s){{0,2}}?(?:{_NOUN_RE})\b)?"), 80),
    # 45 of 120, 45 out of 120 (37.5%), 301 of 2743 patients
    _Pattern("events_total", _compile(
        rf"(?P<e>{_INT})\s(?:out\s)?of\s(?:the\s|all\s)?(?P<n>{_INT})(?![\d.])"
        rf"(?:{_S}{_OPEN}{_S}(?P<p>{_SIGNED}){_S}%?{_S}{_CLOSE}|\s(?:[A-Za-z-]+\s){{0,2}}?(?:{_NOUN_RE})\b)?"), 60),
    # 12.3 ± 4.5 [SD|SE]
    _Pattern("pm", _compile(
        rf"(?P<m>{_SIGNED}){_S}(?:[a-zA-Z/%]+{_S})?{_PLUS_MINUS}{_S}(?P<d>{_SIGNED}){_END}"
        rf"(?:{_S}(?:[a-zA-Z/%]+{_S})?{_OPEN}?{_S}(?P<label>{_DISP_LABEL}){_S}{_CLOSE}?)?"), 75),
    # 12.3 (SD 4.5), 12.3 (SD = 4.5), 12.3 [SE: 1.2]
    _Pattern("labelled", _compile(
        rf"(?P<m>{_SIGNED}){_S}(?:[a-zA-Z/%]+{_S})?{_OPEN}{_S}(?P<label>{_DISP_LABEL}){_S}[=:,]?{_S}"
        rf"(?P<d>{_SIGNED}){_END}{_S}{_CLOSE}"), 75),
    # mean 12.3, SD 4.5 / mean of 28.86 years (SD= 2.51) / mean = 5.2 and SD = 1.1
    _Pattern("labelled", _compile(
        rf"\b(?:mean|average)\b[\s,:=]*(?:(?:was|of|is|were)\s)?(?P<m>{_SIGNED}){_END}"
        rf"(?:\s[a-zA-Z/%]+(?:\s[a-zA-Z/%]+)?)?[\s,;]*(?:and\s)?(?:with\s)?(?:an?\s)?{_OPEN}?{_S}"
        rf"(?P<label>{_DISP_LABEL})[\s,:=]*(?:(?:was|of|is)\s)?(?P<d>{_SIGNED}){_END}{_S}{_CLOSE}?"), 70),
    # median 7 (IQR 5-9) / 7 (IQR, 5 to 9) / 7 (range 1-57) / 0.9 (95% CI 0.4-1.9)
    _Pattern("labelled_interval", _compile(
        rf"(?P<m>{_SIGNED}){_END}{_S}(?:[a-zA-Z/%]+{_S})?{_OPEN}{_S}(?P<label>IQR|inter-?quartile range|range|"
        rf"\d{{2}}{_S}%{_S}CI|CI){_S}[=:,]?{_S}(?P<lo>{_SIGNED}){_RANGE_SEP}(?P<hi>{_SIGNED}){_END}{_S}{_CLOSE}"), 75),
    # median, 7; IQR, 5 to 9 / median 7, interquartile range 5-9
    _Pattern("labelled_interval", _compile(
        rf"\bmedian\b[\s,:=]*(?:(?:was|of|is)\s)?(?P<m>{_SIGNED}){_END}(?:\s[a-zA-Z/%]+)?[\s,;]*{_OPEN}?{_S}"
        rf"(?P<label>IQR|inter-?quartile range|range)[\s,:=]*(?:(?:of|was|from)\s)?(?P<lo>{_SIGNED})"
        rf"{_DASH_SEP}(?P<hi>{_SIGNED}){_END}{_S}{_CLOSE}?"), 70),
    # 7 (1-57), 0.9 (0.4, 1.9), 13.4 (9.5-18.4)
    _Pattern("value_interval", _compile(
        rf"(?P<m>{_SIGNED}){_END}{_S}{_OPEN}{_S}(?P<lo>{_SIGNED}){_RANGE_SEP}(?P<hi>{_SIGNED}){_END}{_S}{_CLOSE}"), 65),
    # 45 (37.5%)
    _Pattern("count_percent", _compile(
        rf"(?P<c>{_INT}){_S}{_OPEN}{_S}(?P<p>{_SIGNED}){_S}{_PCT}{_S}{_CLOSE}"), 60),
    # 30.4% (103)
    _Pattern("percent_count", _compile(
        rf"(?P<p>{_SIGNED}){_S}{_PCT}{_S}{_OPEN}{_S}(?:n{_S}={_S})?(?P<c>{_INT}){_S}{_CLOSE}"), 60),
    # 12.3 (4.5), −22.6 [1.17]
    _Pattern("paren", _compile(
        rf"(?P<m>{_SIGNED}){_END}{_S}{_OPEN}{_S}(?P<d>{_SIGNED}){_END}{_S}%?{_S}{_CLOSE}"), 50),
    # n = 120, (N=35), n: 12
    _Pattern("n", _compile(rf"(?<![A-Za-z])n{_S}[=:]{_S}(?P<n>{_INT})(?![\d.])"), 55),
    # 120 patients, 19 males, 70 healthy volunteers, Nineteen subjects, Seventy women
    _Pattern("n_noun", _compile(
        rf"(?:(?P<n>{_INT})|(?<![\w-])(?P<w>{_NUMBER_WORDS_RE}))(?![\d.%])(?!\s?(?:percent|per\s?cent)\b)\s(?:[A-Za-z-]+\s){{0,2}}?"
        rf"(?:{_NOUN_RE})\b"), 40),
    # p = 0.03, P<0.001, p ≤ .05, P value < 0.001, p-value = 0.2
    _Pattern("p_value", _compile(
        rf"(?<![A-Za-z])p(?:{_S}-?{_S}value)?{_S}(?P<op><=|>=|=<|=>|[=<>\u2264\u2265\uff1c\u2266\u2267]){_S}"
        rf"(?P<v>{_UNSIGNED})"), 55),
    # 37.5%, 37.5 percent, Seventy-one percent
    _Pattern("percent", _compile(rf"(?P<p>{_SIGNED}){_S}{_PCT}"), 30),
    _Pattern("percent_words", _compile(rf"(?<![\w-])(?P<w>{_NUMBER_WORDS_RE})\s?(?:percent|per cent)\b"), 30),
    # [1.2, 3.4], 1.2-3.4, 9 to 14
    _Pattern("interval", _compile(rf"{_OPEN}{_S}(?P<lo>{_SIGNED}){_S}[,;]{_S}(?P<hi>{_SIGNED}){_END}{_S}{_CLOSE}"), 35),
    _Pattern("interval", _compile(
        rf"(?P<lo>{_SIGNED}){_END}{_S}(?:[\u2013\u2014-]|to){_S}(?P<hi>{_SIGNED}){_END}"), 20),
)


def _build(pattern: _Pattern, m: re.Match[str]) -> Stat | None:
    g = m.groupdict()
    start, end = m.start(), m.end()
    text = m.group(0)
    kind = pattern.kind
    if kind == "ci":
        lo, hi = _num(g["lo"]), _num(g["hi"])
        if lo > hi:
            return None
        return Stat("ci", start, end, text, {"low": lo, "high": hi, "level": _level(g.get("level"))})
    if kind == "events_total":
        events, total = _num(g["e"]), _num(g["n"])
        if total <= 0 or events > total:
            return None
        values = {"events": events, "total": total}
        if g.get("p"):
            values["percent"] = _num(g["p"])
        return Stat("events_total", start, end, text, values)
    if kind == "pm":
        label = (g.get("label") or "").lower().replace(".", "")
        mean, disp = _num(g["m"]), _num(g["d"])
        if disp < 0:
            return None
        if label.startswith("se") or label.startswith("standard error"):
            return Stat("mean_se", start, end, text, {"mean": mean, "se": disp}, "SE")
        return Stat("mean_sd", start, end, text, {"mean": mean, "sd": disp}, "SD" if label else None)
    if kind == "labelled":
        label = g["label"].lower().replace(".", "")
        mean, disp = _num(g["m"]), _num(g["d"])
        if disp < 0:
            return None
        if label.startswith("se") or label.startswith("standard error"):
            return Stat("mean_se", start, end, text, {"mean": mean, "se": disp}, "SE")
        return Stat("mean_sd", start, end, text, {"mean": mean, "sd": disp}, "SD")
    if kind == "labelled_interval":
        label = g["label"].lower()
        value, lo, hi = _num(g["m"]), _num(g["lo"]), _num(g["hi"])
        if lo > hi:
            return None
        if "range" in label and "quartile" not in label:
            return Stat("median_range", start, end, text, {"median": value, "min": lo, "max": hi}, "range")
        if "ci" in label:
            level_m = re.match(r"(\d{2})", label)
            return Stat("value_interval", start, end, text, {"value": value, "low": lo, "high": hi,
                                                            "level": _level(level_m.group(1) if level_m else None)},
                        "CI")
        return Stat("median_iqr", start, end, text, {"median": value, "q1": lo, "q3": hi}, "IQR")
    if kind == "value_interval":
        value, lo, hi = _num(g["m"]), _num(g["lo"]), _num(g["hi"])
        if lo > hi:
            return None
        return Stat("value_interval", start, end, text, {"value": value, "low": lo, "high": hi})
    if kind == "count_percent":
        return Stat("count_percent", start, end, text, {"count": _num(g["c"]), "percent": _num(g["p"])})
    if kind == "percent_count":
        return Stat("count_percent", start, end, text, {"count": _num(g["c"]), "percent": _num(g["p"])})
    if kind == "paren":
        value, paren = _num(g["m"]), _num(g["d"])
        return Stat("paren", start, end, text, {"value": value, "paren": paren},
                    "%" if text.rstrip(")] ").endswith("%") else None)
    if kind == "n":
        return Stat("n", start, end, text, {"n": _num(g["n"])})
    if kind == "n_noun":
        n = _num(g["n"]) if g.get("n") else parse_number_words(g["w"])
        if n is None:
            return None
        return Stat("n", start, end, text, {"n": float(n)})
    if kind == "p_value":
        op = {"\uff1c": "<", "<=": "\u2264", "=<": "\u2264", ">=": "\u2265", "=>": "\u2265",
              "\u2266": "\u2264", "\u2267": "\u2265"}.get(g["op"], g["op"])
        return Stat("p_value", start, end, text, {"p": _num(g["v"])}, op)
    if kind == "percent":
        return Stat("percent", start, end, text, {"percent": _num(g["p"])})
    if kind == "percent_words":
        words = parse_number_words(g["w"])
        if words is None:
            return None
        return Stat("percent", start, end, text, {"percent": float(words)})
    if kind == "interval":
        lo, hi = _num(g["lo"]), _num(g["hi"])
        if lo > hi:
            return None
        return Stat("interval", start, end, text, {"low": lo, "high": hi})
    raise AssertionError(kind)


def _candidates(text: str, kinds: Iterable[str] | None = None) -> list[tuple[Stat, int]]:
    wanted = set(kinds) if kinds is not None else None
    found: list[tuple[Stat, int]] = []
    for pattern in _PATTERNS:
        for m in pattern.regex.finditer(text):
            stat = _build(pattern, m)
            if stat is None or (wanted is not None and stat.kind not in wanted):
                continue
            found.append((_trim(stat), pattern.priority))
    return found


def _trim(stat: Stat) -> Stat:
    """Drop spaces caught at either edge of a match (the patterns allow optional spaces)."""
    text = stat.text
    left = len(text) - len(text.lstrip())
    right = len(text) - len(text.rstrip())
    if not left and not right:
        return stat
    return Stat(stat.kind, stat.start + left, stat.end - right, text.strip(), dict(stat.values), stat.qualifier)


def _select(candidates: list[tuple[Stat, int]]) -> list[Stat]:
    """Non-overlapping matches: longer first, then higher priority, then earlier."""
    ordered = sorted(candidates, key=lambda c: (-(c[0].end - c[0].start), -c[1], c[0].start))
    taken: list[Stat] = []
    occupied: list[tuple[int, int]] = []
    for stat, _ in ordered:
        if any(stat.start < e and s < stat.end for s, e in occupied):
            continue
        taken.append(stat)
        occupied.append((stat.start, stat.end))
    return sorted(taken, key=lambda s: s.start)


def find_all(text: str, *, numbers: bool = True) -> list[Stat]:
    """Every statistic in ``text``, non-overlapping, in order; bare numbers fill the gaps.

    The longest reading wins (``79/101 (78.2%)`` is one ``events_total``, not a count and a
    percent); ``paren`` and ``value_interval`` matches keep their ambiguity for :func:`resolve`.
    """
    return list(_find_all(text, numbers))


@functools.lru_cache(maxsize=20_000)
def _find_all(text: str, numbers: bool) -> tuple[Stat, ...]:
    stats = _select(_candidates(text))
    if numbers:
        occupied = [(s.start, s.end) for s in stats]
        for num in find_numbers(text):
            if not any(num.start < e and s < num.end for s, e in occupied):
                stats.append(num)
        stats.sort(key=lambda s: s.start)
    return tuple(stats)


def _find(text: str, kinds: set[str]) -> list[Stat]:
    return [s for s in find_all(text, numbers=False) if s.kind in kinds]


def find_n(text: str) -> list[Stat]:
    """Group or sample sizes: ``n = 120``, ``(N=35)``, ``120 patients``, ``Nineteen subjects``."""
    return _find(text, {"n"})


def find_percentages(text: str) -> list[Stat]:
    """Percentages standing alone (a percent inside ``45 (37.5%)`` belongs to that count)."""
    return _find(text, {"percent"})


def find_events_total(text: str) -> list[Stat]:
    """``45/120``, ``45/120 (37.5%)``, ``45 of 120``, ``37.3% (91/244)``."""
    return _find(text, {"events_total"})


def find_mean_dispersion(text: str) -> list[Stat]:
    """Means with SD or SE, medians with IQR or range, and ambiguous ``12.3 (4.5)`` forms."""
    return _find(text, {"mean_sd", "mean_se", "paren", "median_iqr", "median_range", "value_interval"})


def find_ci(text: str) -> list[Stat]:
    """Confidence intervals with their level (0.95 when the text gives none)."""
    return _find(text, {"ci"})


def find_p_values(text: str) -> list[Stat]:
    return _find(text, {"p_value"})


# --- context: what a bracketed number means --------------------------------------------------

CellFormat = Literal["mean_sd", "mean_se", "n_percent", "percent", "median_iqr", "median_range",
                     "mean_ci", "mean", "sd", "n", "events_total"]

_FORMAT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("events_total", _compile(r"\b(?:n|no\.?|number)\s?/\s?(?:N|total)\b|\bevents?\s?/\s?(?:total|patients|n)\b")),
    ("median_iqr", _compile(r"median\s?[(\[,]?\s?(?:IQR|inter-?quartile|25(?:th)?\s?[,-]\s?75|q1\s?[,-]\s?q3)")),
    ("median_range", _compile(r"median\s?[(\[,]?\s?(?:range|min(?:imum)?\s?[,-]\s?max)")),
    ("mean_ci", _compile(r"(?:mean|estimate|average)\s?[(\[,]?\s?\(?\d{2}\s?%\s?CI")),
    ("mean_se", _compile(rf"(?:mean|average|change)[^()\[\]]{{0,30}}(?:\(|\[|{_PLUS_MINUS}|,)\s?(?:{_SE_LABEL})\b")),
    ("mean_sd", _compile(rf"(?:mean|average|\u03c7|x\u0304)[^()\[\]]{{0,30}}(?:\(|\[|{_PLUS_MINUS}|,)\s?(?:{_SD_LABEL})\b")),
    ("mean_sd", _compile(rf"{_PLUS_MINUS}\s?(?:{_SD_LABEL})\b")),
    ("mean_se", _compile(rf"{_PLUS_MINUS}\s?(?:{_SE_LABEL})\b")),
    ("n_percent", _compile(r"\b(?:n|no\.?|number)\s?[(\[]\s?%\s?[)\]]|\bn\s?\(\s?%|\bcount\s?\(%\)|\bn\s?%")),
    ("median_iqr", _compile(r"\bIQR\b|inter-?quartile")),
    ("mean_se", _compile(rf"\({_SE_LABEL}\)|\b{_SE_LABEL}\b")),
    ("mean_sd", _compile(rf"\({_SD_LABEL}\)|\b{_SD_LABEL}\b")),
    ("percent", _compile(r"^\s*\(?%\)?\s*$|\bpercent(?:age)?\b|\(%\)|%\s*$")),
    ("mean", _compile(r"^\s*(?:mean|average|\u03c7|x\u0304|m)\s*$")),
    ("n", _compile(r"^\s*(?:n|no\.?|number|count)\s*$")),
)


def cell_format(label: str) -> str | None:
    """What the numbers under a header or beside a row label are: ``"mean_sd"`` for
    ``Mean (SD)``, ``"n_percent"`` for ``n (%)``, ``"median_iqr"`` for ``median (IQR)``, ... or
    ``None`` when the label does not say."""
    for name, regex in _FORMAT_RULES:
        if regex.search(label):
            return name
    return None


def dispersion_hint(text_before: str) -> str | None:
    """The format declared in the words just before a value (``adjusted mean [standard error]
    change, −22.6 [1.17]`` → ``"mean_se"``), looking at the last 80 characters."""
    window = text_before[-80:]
    best: tuple[int, str] | None = None
    for name, regex in _FORMAT_RULES:
        if name in ("percent", "mean", "n"):
            continue
        for m in regex.finditer(window):
            if best is None or m.end() > best[0]:
                best = (m.end(), name)
    return best[1] if best else None


def resolve(stat: Stat, fmt: str | None) -> Stat:
    """Read an ambiguous match (``paren``, ``value_interval``) under a declared format.

    ``12.3 (4.5)`` under ``mean_sd`` is mean 12.3, SD 4.5; ``23 (55)`` under ``n_percent`` is 23
    participants, 55%; ``7 (1–57)`` under ``median_range`` is a median and its range. Matches
    that are not ambiguous, or a format that does not fit, come back unchanged.
    """
    if stat.kind == "paren":
        value, paren = stat["value"], stat["paren"]
        if fmt == "mean_sd" and paren >= 0:
            return stat.as_kind("mean_sd", {"mean": value, "sd": paren}, "SD")
        if fmt == "mean_se" and paren >= 0:
            return stat.as_kind("mean_se", {"mean": value, "se": paren}, "SE")
        if fmt in ("n_percent", "percent") and value >= 0 and float(value).is_integer() and 0 <= paren <= 100:
            return stat.as_kind("count_percent", {"count": value, "percent": paren})
        if stat.qualifier == "%" and value >= 0 and float(value).is_integer():
            return stat.as_kind("count_percent", {"count": value, "percent": paren})
        return stat
    if stat.kind == "value_interval":
        value, lo, hi = stat["value"], stat["low"], stat["high"]
        if fmt == "median_iqr":
            return stat.as_kind("median_iqr", {"median": value, "q1": lo, "q3": hi}, "IQR")
        if fmt == "median_range":
            return stat.as_kind("median_range", {"median": value, "min": lo, "max": hi}, "range")
        if fmt == "mean_ci":
            return stat.as_kind("value_interval", {**stat.values, "level": stat.values.get("level", 0.95)}, "CI")
        return stat
    return stat


def parse_cell(text: str, fmt: str | None = None) -> Stat | None:
    """Read one table cell as a single statistic, under the format its header or row declares.

    Returns ``None`` for a cell that holds no number (``—``, ``NA``, ``-``). A cell with two
    values (``10.80±2.0 (4.90±1.88)``) gives its first; use :func:`find_all` for all of them.
    Trailing footnote marks (``2.19*``, ``16.74 ± 2.75iii``) are ignored.
    """
    stats = [s for s in find_all(text) if s.kind != "p_value"]
    if not stats:
        return None
    first = resolve(stats[0], fmt)
    if first.kind == "number" and len(stats) == 1:
        value = first["value"]
        if fmt == "percent":
            return first.as_kind("percent", {"percent": value})
        if fmt in ("n", "n_percent") and value >= 0 and float(value).is_integer():
            return first.as_kind("n", {"n": value})
    if first.kind == "number" and len(stats) >= 2 and stats[1].kind == "number":
        # "13 (n)  43.3%" style cells are rare; "2. 54" style typos are not read.
        return first
    return first
