"""Finding candidate results for one outcome and its arms in a paper's tables and sentences.

A :class:`Candidate` is one reading of the paper: a table row (or a block of arm rows) or a
sentence, the numbers it gives each arm (:class:`ArmStats`, each number with the span it was read
from), how well its labels name the outcome, and the time point it refers to. The extractor in
:mod:`leads.extract.results` scores the candidates and picks one.

Tables are read in either orientation: arms as columns (``Placebo (n = 42) | Fluoxetine (n =
45)``; sub-columns such as ``χ | SD`` or ``n | (%)`` grouped under their arm; time points such as
``T0``/``T1`` or ``Pre-test``/``Post-test`` kept apart), arms as rows (``Placebo | 62/99 |
62.6``, under a block header or section row that names the outcome), or both arms in one cell
(``10.80±2.0 (4.90±1.88)`` under ``Intervention (control)``). Sentences are read by assigning
each statistic to the arm mentioned nearest to it, or in order for "..., respectively".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leads.extract.numbers import Stat, cell_format, dispersion_hint, find_all, parse_cell, resolve
from leads.extract.results_doc import DocView, SentenceView, TableView
from leads.extract.results_match import (
    COMPARATOR_ROLE,
    INTERVENTION_ROLE,
    STOPWORDS,
    ArmMatcher,
    OutcomeMatcher,
    tokens,
)

__all__ = [
    "ArmStats",
    "Candidate",
    "GroupSize",
    "assign_stats",
    "assign_with_confidence",
    "group_sizes",
    "other_arm_names",
    "sentence_candidates",
    "table_candidates",
    "time_rank",
]

FIELDS = ("events", "total", "percent", "mean", "sd", "se", "n", "median", "q1", "q3", "min", "max",
          "ci_low", "ci_high")


@dataclass
class ArmStats:
    """Numbers read for one arm, each with the (start, end) span of the text it came from."""

    values: dict[str, float] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    ci_level: float | None = None
    ambiguous: bool = False

    def set(self, name: str, value: float, span: tuple[int, int] | None, *, overwrite: bool = False) -> None:
        if name in self.values and not overwrite:
            return
        self.values[name] = value
        if span is not None:
            self.spans[name] = span

    def get(self, name: str) -> float | None:
        return self.values.get(name)

    def add_stat(self, stat: Stat, span: tuple[int, int] | None, *, role: str | None = None) -> None:
        """Store what a statistic says, read for this arm (``role`` names a bare number's meaning)."""
        v = stat.values
        kind = stat.kind
        if kind == "events_total":
            self.set("events", v["events"], span)
            self.set("total", v["total"], span)
            if "percent" in v:
                self.set("percent", v["percent"], span)
        elif kind == "count_percent":
            self.set("events", v["count"], span)
            self.set("percent", v["percent"], span)
        elif kind == "mean_sd":
            self.set("mean", v["mean"], span)
            self.set("sd", v["sd"], span)
        elif kind == "mean_se":
            self.set("mean", v["mean"], span)
            self.set("se", v["se"], span)
        elif kind == "median_iqr":
            self.set("median", v["median"], span)
            self.set("q1", v["q1"], span)
            self.set("q3", v["q3"], span)
        elif kind == "median_range":
            self.set("median", v["median"], span)
            self.set("min", v["min"], span)
            self.set("max", v["max"], span)
        elif kind == "value_interval" and stat.qualifier == "CI":
            self.set("mean", v["value"], span)
            self.set("ci_low", v["low"], span)
            self.set("ci_high", v["high"], span)
            self.ci_level = v.get("level", 0.95)
        elif kind == "mean_only":
            self.set("mean", v["mean"], span)
        elif kind == "percent":
            self.set("percent", v["percent"], span)
        elif kind == "n":
            self.set("n", v["n"], span)
        elif kind == "number":
            value = v["value"]
            if role in ("mean", "sd", "se", "percent", "events", "n", "total", "median"):
                self.set(role, value, span)

    @property
    def empty(self) -> bool:
        return not self.values

    def merged(self, other: ArmStats) -> ArmStats:
        out = ArmStats(dict(self.values), dict(self.spans), self.ci_level or other.ci_level)
        for k, v in other.values.items():
            out.set(k, v, other.spans.get(k))
        return out


@dataclass
class Candidate:
    """One reading of the paper for the outcome: numbers per arm and where they came from."""

    source: str  # table | sentence
    arms: dict[str, ArmStats]
    outcome_score: float
    label: str  # the row label / sentence, for the reviewer and for error analysis
    time_label: str = ""
    table: int | None = None
    row: int | None = None
    sentence: tuple[int, int] | None = None
    section_type: str | None = None
    baseline_table: bool = False
    unit: str = ""
    notes: list[str] = field(default_factory=list)

    def has(self, arm_id: str, *names: str) -> bool:
        stats = self.arms.get(arm_id)
        return stats is not None and all(stats.get(n) is not None for n in names)


# --- time points ---------------------------------------------------------------------------------

_BASELINE = re.compile(r"\b(?:baseline|pre[\s-]?(?:test|treatment|intervention|operative|op)?|before|t0|"
                       r"at entry|admission|screening|initial|period 1|day 0|week 0|month 0)\b", re.IGNORECASE)
_POST_EXPLICIT = re.compile(
    r"\bpost[\s-]?(?:test|treatment|intervention|operative|op|trial)?\b|\bend of (?:the )?(?:treatment|"
    r"intervention|study|therapy|trial|program(?:me)?)\b|\bT1\b|\bafter (?:the )?(?:intervention|treatment|"
    r"practicum|training|program|therapy|course)\b|\bperiod 2\b|\bfinal\b|\bcompletion\b|\bdischarge\b",
    re.IGNORECASE)
_POST = re.compile(r"\bafter\b|\bend\b", re.IGNORECASE)
_FOLLOW = re.compile(r"follow[\s-]?up|\b\d+\s*(?:-|\u2013)?\s*(?:months?|weeks?|days?|years?|hours?|mo|wk)\b",
                     re.IGNORECASE)
_TOTAL_TIME = re.compile(r"\btotal\b|\boverall\b|\bwhole\b|\bentire\b|\ball\b", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|\u2013)?\s*(months?|weeks?|days?|years?|hours?|mo\b|wk\b)", re.IGNORECASE)
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "wk": 7, "month": 30.4, "mo": 30.4, "year": 365}


def _duration_days(text: str) -> float | None:
    values = []
    for m in _DURATION.finditer(text):
        unit = m.group(2).lower().rstrip("s")
        values.append(float(m.group(1)) * _UNIT_DAYS.get(unit, 1))
    return max(values) if values else None


def is_time_label(label: str) -> bool:
    return bool(_BASELINE.search(label) or _POST_EXPLICIT.search(label) or _POST.search(label)
                or _FOLLOW.search(label) or _TOTAL_TIME.search(label)
                or re.search(r"\b(?:T\d|period \d|visit \d+|week \d+|month \d+|day \d+)\b", label, re.IGNORECASE))


def time_rank(label: str, outcome: str = "") -> tuple[int, float]:
    """Preference of a time-point label for reporting an outcome (higher is preferred).

    A time named in the outcome ("until the 6-month") wins; then a whole-period total; then a
    post-intervention label (post-test, end of treatment, T1, period 2); then the latest
    follow-up; a label that is no time point (a subgroup) next; a baseline label last.
    """
    if not label.strip():
        return (3, 0.0)
    wanted = _duration_days(outcome) if outcome else None
    days = _duration_days(label)
    if wanted is not None and days is not None and abs(days - wanted) < 1e-6:
        return (8, days)
    if _TOTAL_TIME.search(label):
        return (7, days or 0.0)
    if _BASELINE.search(label) and not _POST_EXPLICIT.search(label) and not _FOLLOW.search(label):
        return (0, 0.0)
    if _POST_EXPLICIT.search(label):
        return (6, days or 0.0)
    if _FOLLOW.search(label) or _POST.search(label):
        return (5, days or 0.0)
    return (1, 0.0)


# --- tables ----------------------------------------------------------------------------------------

_STAT_LABEL = re.compile(
    r"^\s*(?:\(?%\)?|n|no\.?|number|mean|means|median|sd|s\.d\.|se|sem|iqr|range|\u03c7|x\u0304|x|m|"
    r"mean\s*(?:\u00b1|\+/-)\s*sd|n\s*\(%\)|\(%\)|%|p|p[\s-]?value|p\s*value|95\s*%\s*ci|ci|"
    r"mean\s*\(sd\)|m\s*\(sd\)|median\s*\(iqr\)|median\s*\(range\)|n\s*%|count|events?)\s*[a-z\d]?\s*$",
    re.IGNORECASE)
_COMPARISON_LABEL = re.compile(
    r"\bp\b|p[\s-]?value|\bdifference\b|\bratio\b|\b(?:OR|RR|HR|IRR|MD|SMD)\b|\bCI\b|confidence|\bvs\.?\b|versus|"
    r"\beffect size\b|\bES\d?\b|\bt[\s-]?test\b|\bz\b|\bF\b|\bchi|\u03c7\s*2|X2|statistic|significance|\bcorrelation\b",
    re.IGNORECASE)
_TOTAL_LABEL = re.compile(r"^\s*(?:total|overall|all(?: patients| participants)?|whole sample|combined|both groups)"
                          r"\s*(?:[(\[][^()\[\]]*[)\]])?\s*[a-z*\u2020\u2021]?\s*$", re.IGNORECASE)
_BASELINE_CAPTION = re.compile(r"baseline|demographic|characteristics? of (?:the )?(?:patients|participants|study)|"
                               r"at (?:study )?entry|at admission|on admission|preoperative", re.IGNORECASE)
_NOT_BASELINE_CAPTION = re.compile(r"\bafter\b|\bpost|follow|outcome|\bend\b|change|results|during|throughout|"
                                   r"efficacy|adverse|response", re.IGNORECASE)
_HAS_NUMBER = re.compile(r"\d")
_N_IN_LABEL = re.compile(r"(?<![A-Za-z])[nN]\s*[=:]\s*(\d[\d,]*)")


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\(\s+|\s+\)", lambda m: m.group(0).strip(), text)


def _is_stat_label(label: str) -> bool:
    if _stat_role(label) is not None:
        return True
    return bool(_STAT_LABEL.match(label)) or (cell_format(label) is not None and len(label) <= 40
                                               and not re.search(r"[A-Za-z]{4,}", re.sub(
                                                   r"mean|median|range|number|percent|count|events?|deviation|"
                                                   r"standard|error|interquartile|days?|hours?|months?|years?|"
                                                   r"weeks?|of|sick|leave|score|\bin\b", "", label, flags=re.I)))


def _data_cell(text: str) -> bool:
    """Whether a cell holds data (a number that is not just a footnote mark, an n in a label or
    the level of an interval: "Wald 95% CI")."""
    stripped = _N_IN_LABEL.sub("", text)
    stripped = re.sub(r"\d{2}\s*%\s*(?:CI|C\.I\.|confidence)", "", stripped, flags=re.IGNORECASE)
    return bool(_HAS_NUMBER.search(stripped))


@dataclass
class _Column:
    index: int
    label: str  # all header text above the cell (deduplicated)
    arm: str | None = None
    both: tuple[str, str] | None = None  # a column holding two arms: "Intervention (control)"
    time: str = ""
    sub: str = ""  # the lowest header text (a statistic label such as "SD", "n (%)")
    comparison: bool = False
    score: float = 0.0


def _header_labels(table: TableView, header_rows: list[list[str]]) -> list[list[str]]:
    """Per column, the distinct header cells from top to bottom."""
    width = table.width
    out: list[list[str]] = []
    for c in range(width):
        seen: list[str] = []
        for row in header_rows:
            cell = _clean(row[c]) if c < len(row) else ""
            if cell and cell not in seen:
                seen.append(cell)
        out.append(seen)
    return out


def _label_columns(table: TableView, body: list[int]) -> int:
    """How many leading columns hold row labels rather than data."""
    width = table.width
    for c in range(width):
        cells = [table.cell(r, c) for r in body if table.cell(r, c).strip()]
        if not cells:
            continue
        numeric = sum(1 for cell in cells if _data_cell(cell))
        if numeric / len(cells) >= 0.5:
            return max(1, c)
    return 1


def _is_section_row(table: TableView, r: int, first_value: int) -> bool:
    row = table.rows[r]
    label = " ".join(_clean(x) for x in row[:first_value] if x.strip())
    values = [x for x in row[first_value:] if x.strip() and _clean(x) != label]
    return bool(label) and not values


def _is_block_header(table: TableView, r: int, first_value: int) -> bool:
    row = table.rows[r]
    values = [_clean(x) for x in row[first_value:] if x.strip()]
    if len(values) < 2:
        return False
    return not any(_data_cell(v) for v in values)


def _cell_span(table: TableView, r: int, c: int) -> tuple[int, int] | None:
    return table.span(r, c)


_TRAILING_PAREN = re.compile(r"^(.*?)[(\[]([^()\[\]]+)[)\]]\s*$")


def _two_arm_cell(cell: str, matcher: ArmMatcher) -> tuple[str, str] | None:
    """A header naming two arms as ``A (B)`` ("Intervention (control)"): cells below hold A's
    value then B's in brackets."""
    m = _TRAILING_PAREN.match(cell)
    if not m:
        return None
    first_part = re.split(r"[;:]", m.group(1))[-1]
    first, _ = matcher.best(first_part, threshold=0.34)
    second, _ = matcher.best(m.group(2), threshold=0.34)
    if first is None or second is None or first == second:
        return None
    return (first, second)


def _assign_columns(columns: list[_Column], matcher: ArmMatcher, sub_row_present: bool) -> None:
    """Give each value column its arm; columns with only a statistic label join a neighbour."""
    for col in columns:
        if col.comparison:
            continue
        # The arm may be named in any header cell; the time is what the other cells say.
        arm_cells: list[tuple[str, str, float]] = []
        for cell in col.label.split(" \u2016 "):
            pair = _two_arm_cell(cell, matcher)
            if pair is not None:
                col.both = pair
                arm_cells.append((cell, "", 1.0))
                continue
            arm, score = matcher.best(cell, threshold=0.34)
            if arm is not None:
                arm_cells.append((cell, arm, score))
        if col.both is not None:
            col.time = " ".join(c for c in col.label.split(" \u2016 ") if not _is_stat_label(c))
            continue
        if arm_cells:
            best = max(arm_cells, key=lambda a: a[2])
            col.arm = best[1]
            col.score = best[2]
            col.time = " ".join(c for c in col.label.split(" \u2016 ") if c != best[0] and not _is_stat_label(c))
    # An arm named weakly by one column group and clearly better by another keeps the better.
    best_score: dict[str, float] = {}
    for col in columns:
        if col.arm is not None:
            best_score[col.arm] = max(best_score.get(col.arm, 0.0), col.score)
    for col in columns:
        if col.arm is not None and col.score < best_score[col.arm] - 0.25:
            col.arm = None
    # Unlabelled statistic columns ("SD" under no arm) join the arm on their left unless that arm
    # already has a column with the same statistic, else the arm on their right.
    for i, col in enumerate(columns):
        if col.arm is not None or col.both is not None or col.comparison or not col.sub:
            continue
        if not _is_stat_label(col.sub):
            continue
        left = next((c for c in reversed(columns[:i]) if c.arm is not None), None)
        right = next((c for c in columns[i + 1:] if c.arm is not None), None)
        if left is not None:
            same_slot = [c for c in columns[:i] if c.arm == left.arm and c.time == left.time]
            if not any(_clean(c.sub).lower() == _clean(col.sub).lower() for c in same_slot):
                col.arm, col.time = left.arm, left.time
                continue
        if right is not None:
            col.arm, col.time = right.arm, right.time


def _eliminate(groups: dict[str, list[_Column]], matcher: ArmMatcher, unassigned: list[list[_Column]]) -> None:
    """Two arms, one named: the one other arm-like column group is the other arm."""
    missing = [a.id for a in matcher.arms if a.id not in groups]
    if len(missing) != 1 or len(unassigned) != 1 or len(matcher.arms) != 2:
        return
    groups[missing[0]] = unassigned[0]
    for col in unassigned[0]:
        col.arm = missing[0]


def _group_key(label: str) -> str:
    words = [t.stem for t in tokens(re.sub(r"\(?\s*[nN]\s*=\s*\d[\d,]*\s*\)?", "", label))]
    return " ".join(w for w in words if not _is_stat_label(w))


def _stat_role(sub: str) -> str | None:
    s = _clean(sub).lower()
    if not s:
        return None
    if re.fullmatch(r"\(?%\)?|percent(age)?|\(% ?\)", s):
        return "percent"
    if re.fullmatch(r"sd|s\.d\.|standard deviation|\(sd\)", s):
        return "sd"
    if re.fullmatch(r"se|sem|s\.e\.|standard error", s):
        return "se"
    if re.fullmatch(r"n|no\.?|number|count|events?", s):
        return "n"
    if re.search(r"\bmean\b|\u03c7|x\u0304|^m$|^x$|average", s) and not re.search(r"\bsd\b|\bse\b|\u00b1", s):
        return "mean"
    if re.fullmatch(r"median", s):
        return "median"
    return None


def _parse_slot(table: TableView, r: int, cols: list[_Column], fmt_context: list[str],
                which: int = 0) -> ArmStats:
    """Read one arm's cells of one row (a slot: the arm's columns at one time point)."""
    stats = ArmStats()
    roles = [(_stat_role(c.sub), c) for c in cols]
    has_mean_col = any(role == "mean" for role, _ in roles)
    has_pct_col = any(role == "percent" for role, _ in roles)
    seen: set[str] = set()
    for role, col in roles:
        text = table.cell(r, col.index)
        if not text.strip() or not _data_cell(text):
            continue
        key = role or "value"
        if key in seen and col.both is None:
            # Two columns say the same thing for one arm (a mislabelled header): trust neither.
            stats.ambiguous = True
        seen.add(key)
        span = _cell_span(table, r, col.index)
        fmt = cell_format(col.sub) if col.sub else None
        if fmt is None and role is not None:
            # The column's own statistic label decides; a caption's "percent" must not.
            fmt = {"mean": "mean", "n": "n", "percent": "percent", "median": "mean"}.get(role)
        if fmt is None and role is None:
            for context in (col.label, *fmt_context):
                fmt = cell_format(context) if context else None
                if fmt:
                    break
        if col.both is not None:
            found = [s for s in find_all(text) if s.kind not in ("p_value",)]
            found = [resolve(s, fmt) for s in found]
            meaningful = [s for s in found if s.kind != "number" or len(found) <= 2]
            if len(meaningful) > which:
                picked = meaningful[which]
                stats.add_stat(picked, _sub_span(span, picked), role=role)
            continue
        stat = parse_cell(text, fmt)
        if stat is None:
            continue
        if stat.kind == "number" and role is None:
            # A bare number in a column with no statistic label: its format says what it is.
            role = {"mean_sd": "mean", "mean": "mean", "n_percent": "n", "percent": "percent",
                    "n": "n"}.get(fmt or "")
        if role == "n" and stat.kind in ("number", "n"):
            value = stat.values.get("value", stat.values.get("n"))
            if value is not None:
                # "n" beside "(%)" is a count of events; beside a mean it is the group size.
                if has_pct_col or (not has_mean_col and (fmt == "n_percent")):
                    stats.set("events", value, _sub_span(span, stat))
                else:
                    stats.set("n", value, _sub_span(span, stat))
            continue
        stats.add_stat(stat, _sub_span(span, stat), role=role)
    return stats


def _sub_span(cell_span: tuple[int, int] | None, stat: Stat) -> tuple[int, int] | None:
    if cell_span is None:
        return None
    return (cell_span[0] + stat.start, cell_span[0] + stat.end)


def _unit_from(label: str) -> str:
    m = re.search(r"\(([^()]*?(?:/|mg|g|kg|cm|mm|ml|days?|hours?|hr|h|min|years?|months?|weeks?|%|score|points?|"
                  r"mmHg|mmol|\u03bcg|ug|IU|kcal|cal)[^()]*)\)", label, re.IGNORECASE)
    if m and not re.search(r"\bn\s*=|\bSD\b|\bIQR\b|%\)?$", m.group(1)):
        return m.group(1).strip()
    m = re.search(r",\s*((?:mean|median)[^,]*)?,?\s*([A-Za-z/%\u03bc0-9]+(?:/[A-Za-z0-9]+)?)\s*$", label)
    if m and m.group(2) and len(m.group(2)) <= 12 and not _is_stat_label(m.group(2)):
        return m.group(2)
    return ""


def table_candidates(view: DocView, table: TableView, arms: ArmMatcher, outcome: OutcomeMatcher) -> list[Candidate]:
    """Candidates from one table, in whichever orientation names the arms."""
    if not table.rows or table.width < 2:
        return []
    header = table.rows[: table.header_rows]
    body = list(range(table.header_rows, len(table.rows)))
    if not body:
        return []
    first_value = _label_columns(table, body)
    caption_context = _clean(table.caption)
    baseline_table = (bool(_BASELINE_CAPTION.search(table.caption))
                      and not _NOT_BASELINE_CAPTION.search(table.caption)
                      and not re.search(r"baseline", outcome.outcome, re.IGNORECASE))
    table_fmt = [x for x in (table.footnotes, table.caption) if x]

    candidates: list[Candidate] = []
    column_labels = _header_labels(table, header)
    block_label = ""
    block_labels: list[list[str]] | None = None
    blocks: list[tuple[list[list[str]], str, list[int]]] = []  # (column labels, block label, rows)
    current_rows: list[int] = []
    current_labels = column_labels
    for r in body:
        if _is_block_header(table, r, first_value) and r != body[-1]:
            if current_rows:
                blocks.append((current_labels, block_label, current_rows))
            block_label = " ".join(_clean(x) for x in table.rows[r][:first_value] if x.strip())
            # A header row with its own name in the label column starts a sub-table whose column
            # labels replace the table's; without one it refines them.
            new_subtable = bool(block_label)
            block_labels = []
            for c in range(table.width):
                cell = _clean(table.cell(r, c))
                base = list(column_labels[c]) if c < len(column_labels) else []
                if cell and c >= first_value:
                    # The block header restates this column: keep what names an arm or a time
                    # point above it, and take the block's own text as the lowest label.
                    if arms.best(cell)[0] is not None or new_subtable:
                        block_labels.append([cell])
                    elif _is_stat_label(cell):
                        block_labels.append([x for x in base if not _is_stat_label(x)] + [cell])
                    else:
                        block_labels.append([x for x in base if arms.best(x)[0] is not None or _time_like(x)] + [cell])
                else:
                    block_labels.append(base)
            current_labels = block_labels
            current_rows = []
            continue
        current_rows.append(r)
    if current_rows:
        blocks.append((current_labels, block_label, current_rows))

    for labels, block_label, rows in blocks:
        columns = []
        for c in range(first_value, table.width):
            cells = labels[c] if c < len(labels) else []
            label = " \u2016 ".join(cells)
            sub = cells[-1] if cells else ""
            # Columns comparing arms (difference, ratio, CI, p) or summing them (Total) hold no
            # arm's own value, even when their header names the arms ("placebo-active").
            comparison = bool(cells) and bool(_COMPARISON_LABEL.search(cells[-1]))
            if cells and _TOTAL_LABEL.search(cells[-1]) and not any(arms.best(x)[0] for x in cells):
                comparison = True
            columns.append(_Column(index=c, label=label, sub=sub, comparison=comparison))
        _assign_columns(columns, arms, sub_row_present=table.header_rows > 1)
        groups: dict[str, list[_Column]] = {}
        for col in columns:
            if col.arm is not None:
                groups.setdefault(col.arm, []).append(col)
        both_columns = [c for c in columns if c.both is not None]
        # Columns that look like an unnamed arm (a group label with data under it).
        unassigned_groups: dict[str, list[_Column]] = {}
        for col in columns:
            if col.arm is None and col.both is None and not col.comparison and col.label:
                top = [x for x in col.label.split(" \u2016 ") if not _is_stat_label(x) and not _time_like(x)]
                key = _group_key(" ".join(top))
                if key:
                    unassigned_groups.setdefault(key, []).append(col)
        if len(groups) == 1 and not both_columns:
            _eliminate(groups, arms, list(unassigned_groups.values()))

        column_oriented = len(groups) >= 2 or bool(both_columns)
        if column_oriented:
            candidates.extend(_column_candidates(view, table, rows, first_value, columns, groups, both_columns,
                                                 arms, outcome, caption_context, block_label, table_fmt,
                                                 baseline_table))
        else:
            candidates.extend(_row_candidates(view, table, rows, first_value, columns, arms, outcome,
                                              caption_context, block_label, table_fmt, baseline_table))
    return candidates


def _time_like(label: str) -> bool:
    return is_time_label(label)


def _row_label(table: TableView, r: int, first_value: int) -> str:
    cells: list[str] = []
    for x in table.rows[r][:first_value]:
        x = _clean(x)
        if x and x not in cells:
            cells.append(x)
    return " ".join(cells)


def _column_candidates(view: DocView, table: TableView, rows: list[int], first_value: int,
                       columns: list[_Column], groups: dict[str, list[_Column]], both_columns: list[_Column],
                       arms: ArmMatcher, outcome: OutcomeMatcher, caption: str, block_label: str,
                       table_fmt: list[str], baseline_table: bool) -> list[Candidate]:
    out: list[Candidate] = []
    section = ""
    for r in rows:
        label = _row_label(table, r, first_value)
        if _is_section_row(table, r, first_value):
            section = label
            continue
        if not label and not any(_data_cell(table.cell(r, c.index)) for c in columns):
            continue
        context = " ".join(x for x in (section, block_label) if x)
        fmt_context = [label, section, *table_fmt]
        # Slots: the arm's columns grouped by time point.
        times: dict[str, dict[str, list[_Column]]] = {}
        for arm_id, cols in groups.items():
            for col in cols:
                times.setdefault(col.time, {}).setdefault(arm_id, []).append(col)
        for col in both_columns:
            times.setdefault(col.time, {}).setdefault("__both__", []).append(col)
        for time_label, by_arm in times.items():
            arm_stats: dict[str, ArmStats] = {}
            for arm_id, cols in by_arm.items():
                if arm_id == "__both__":
                    for col in cols:
                        assert col.both is not None
                        for which, both_arm in enumerate(col.both):
                            s = _parse_slot(table, r, [col], fmt_context, which=which)
                            if not s.empty:
                                arm_stats[both_arm] = arm_stats.get(both_arm, ArmStats()).merged(s)
                    continue
                s = _parse_slot(table, r, cols, fmt_context)
                if s.ambiguous:
                    continue
                n_label = _n_from_labels([c.label for c in cols])
                if n_label is not None and not s.empty:
                    s.set("n", n_label[0], None)
                if not s.empty:
                    arm_stats[arm_id] = s
            if not arm_stats:
                continue
            score = _outcome_score(outcome, label, context, caption)
            out.append(Candidate(
                source="table", arms=arm_stats, outcome_score=score, label=_clean(f"{label} [{context}]"
                                                                                    if context else label),
                time_label=time_label, table=table.index, row=r, baseline_table=baseline_table,
                unit=_unit_from(label) or _unit_from(section)))
    return out


def _row_candidates(view: DocView, table: TableView, rows: list[int], first_value: int,
                    columns: list[_Column], arms: ArmMatcher, outcome: OutcomeMatcher, caption: str,
                    block_label: str, table_fmt: list[str], baseline_table: bool) -> list[Candidate]:
    """Arms as rows: group consecutive arm rows under the section/block that names the outcome."""
    out: list[Candidate] = []
    section = ""
    current: dict[str, int] = {}
    current_section = ""

    def flush() -> None:
        if len(current) < 1:
            return
        value_cols = [c for c in columns if not c.comparison]
        # Time slots from the column headers (Baseline / 3 months / ...), statistics as sub-columns.
        times: dict[str, list[_Column]] = {}
        for col in value_cols:
            top = [x for x in col.label.split(" \u2016 ") if not _is_stat_label(x)]
            times.setdefault(" ".join(top), []).append(col)
        if len(times) > 1 and all(not k or not _time_like(k) for k in times):
            # Distinct non-time headers (e.g. "Mean", "SD" typed differently): one slot.
            times = {"": value_cols}
        context = " ".join(x for x in (current_section, block_label) if x)
        for time_label, cols in times.items():
            arm_stats: dict[str, ArmStats] = {}
            for arm_id, r in current.items():
                label = _row_label(table, r, first_value)
                s = _parse_slot(table, r, cols, [label, current_section, block_label, *table_fmt])
                n_label = _n_from_labels([label])
                if n_label is not None and not s.empty:
                    s.set("n", n_label[0], None)
                if not s.empty:
                    arm_stats[arm_id] = s
            if not arm_stats:
                continue
            score = _outcome_score(outcome, "", context, caption)
            out.append(Candidate(
                source="table", arms=arm_stats, outcome_score=score, label=_clean(context or caption),
                time_label=time_label, table=table.index, row=min(current.values()),
                baseline_table=baseline_table, unit=_unit_from(context)))

    for r in rows:
        label = _row_label(table, r, first_value)
        if _is_section_row(table, r, first_value):
            flush()
            current = {}
            current_section = label
            section = label
            continue
        arm, _ = arms.best(label, threshold=0.34)
        if arm is None:
            has_data = any(_data_cell(x) for x in table.rows[r][first_value:])
            if current and has_data:
                # Another arm's row (a third arm not asked for) inside the block: skip it.
                continue
            if current:
                flush()
                current = {}
            current_section = label if not has_data else section
            continue
        if arm in current:
            flush()
            current = {}
        current[arm] = r
    flush()
    return out


def _n_from_labels(labels: Iterable[str]) -> tuple[float, str] | None:
    for label in labels:
        m = _N_IN_LABEL.search(label)
        if m:
            return float(m.group(1).replace(",", "")), label
    return None


def _outcome_score(outcome: OutcomeMatcher, label: str, context: str, caption: str) -> float:
    direct = outcome.score(f"{label} {context}") if (label or context) else 0.0
    if label and context:
        direct = max(direct, outcome.score(label))
    with_caption = outcome.score(f"{label} {context} {caption}")
    caption_only = outcome.score(caption)
    return max(direct, 0.85 * with_caption, 0.6 * caption_only)


# --- sentences ---------------------------------------------------------------------------------------

_RESPECTIVELY = re.compile(r"\brespectively\b", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r";|\.\s|, (?:whereas|while|but|and in|in contrast)\b|\bwhereas\b|\bwhile\b")
_VALUE_KINDS = {"events_total", "count_percent", "mean_sd", "mean_se", "paren", "percent", "median_iqr",
                "median_range", "value_interval", "number", "n"}


@dataclass
class _Mention:
    start: int
    end: int
    arm: str
    score: float


OTHER_ARM = "__other__"
_GROUP_WORD = re.compile(r"\b([A-Za-z][\w\-]{0,30})\s+(?:fed\s+|treated\s+)?(?:group|arm|cohort)s?\b")
_NOT_AN_ARM = frozenset({"both", "two", "three", "four", "all", "each", "the", "treatment", "study", "age",
                         "these", "those", "other", "either", "same", "different", "subgroup", "sub", "whole",
                         "risk", "first", "second", "third", "one", "per", "between", "this", "that", "our"})


def _mentions(text: str, arms: ArmMatcher) -> list[_Mention]:
    """Arm mentions: aliases and role words, then short word windows that score as an arm, then
    other groups the paper names ("the AJ group") as :data:`OTHER_ARM`, so that their numbers are
    not given to a neighbouring arm."""
    found = [_Mention(s, e, a, sc) for s, e, a, sc in arms.mentions(text)]
    words = list(re.finditer(r"[A-Za-z][A-Za-z0-9'\-]*", text))
    windows: list[_Mention] = []
    for size in (1, 2, 3, 4):
        for i in range(len(words) - size + 1):
            start, end = words[i].start(), words[i + size - 1].end()
            window = text[start:end]
            if re.search(r"\d", window) or not tokens(window):
                continue
            arm, score = arms.best(window, threshold=0.5)
            if arm is not None:
                windows.append(_Mention(start, end, arm, score))
    # The best-scoring, then tightest, windows that do not overlap a name already found.
    for w in sorted(windows, key=lambda m: (-m.score, m.end - m.start)):
        if not any(w.start < m.end and m.start < w.end for m in found):
            found.append(w)
    low = text.lower()
    for name in arms.other_names:
        for m in re.finditer(r"(?<![A-Za-z0-9])" + re.escape(name.lower()) + r"(?![A-Za-z0-9])", low):
            if not any(m.start() < f.end and f.start < m.end() for f in found):
                found.append(_Mention(m.start(), m.end(), OTHER_ARM, 0.8))
    for m in _GROUP_WORD.finditer(text):
        word = m.group(1)
        if word.lower() in _NOT_AN_ARM or word.lower() in STOPWORDS:
            continue
        if any(m.start(1) < f.end and f.start < m.end() for f in found):
            continue
        if word.lower() in INTERVENTION_ROLE or word.lower() in COMPARATOR_ROLE:
            continue
        found.append(_Mention(m.start(1), m.end(), OTHER_ARM, 0.5))
    return sorted(found, key=lambda m: m.start)


def _clause_id(text: str, position: int) -> int:
    return len(_CLAUSE_BREAK.findall(text[:position]))


_LIST_SPLIT = re.compile(r",\s*(?:and|or)\s+|,\s*|\s+(?:and|or|vs\.?|versus)\s+|/")


def _respectively_order(text: str, values_end: int, resp_start: int, mentions: Sequence[_Mention]) -> list[str] | None:
    """The arms listed right before "respectively" ("in AJ, WGJ and WA respectively"), in order;
    an item naming no arm asked for is another arm. ``None`` when no list is there."""
    region_start = values_end
    region = text[region_start:resp_start]
    if not region.strip(" ,") or len(region) > 160:
        return None
    parts: list[tuple[int, int]] = []
    position = 0
    for m in _LIST_SPLIT.finditer(region):
        parts.append((position, m.start()))
        position = m.end()
    parts.append((position, len(region)))
    order: list[str] = []
    for start, end in parts:
        item = region[start:end].strip(" ,;()")
        if not item:
            continue
        a, b = region_start + start, region_start + end
        inside = [m for m in mentions if a <= m.start < b]
        order.append(inside[-1].arm if inside else OTHER_ARM)
    if len(order) < 2 or all(o == OTHER_ARM for o in order):
        return None
    return order


_VERSUS = re.compile(r"^\s*(?:vs\.?|versus|compared (?:with|to)|against|and)\s*$", re.IGNORECASE)


def assign_stats(text: str, stats: Sequence[Stat], mentions: Sequence[_Mention],
                 arm_ids: Sequence[str] = ()) -> list[tuple[Stat, str, int]]:
    """Which arm each statistic belongs to (see :func:`assign_with_confidence`)."""
    return [(stat, arm, at) for stat, arm, at, _ in assign_with_confidence(text, stats, mentions, arm_ids)]


def assign_with_confidence(text: str, stats: Sequence[Stat], mentions: Sequence[_Mention],
                           arm_ids: Sequence[str] = ()) -> list[tuple[Stat, str, int, float]]:
    """Which arm each statistic belongs to, by position in the sentence.

    - "A, B and C were 1, 2 and 3, respectively": the arms named before each "respectively",
      in order, take the values of one kind in order (when the counts agree);
    - "more patients in the intervention group continued (86/125 vs 78/133)": with two arms and
      one named, a "X vs Y" pair gives X to the named arm and Y to the other;
    - otherwise a value belongs to the arm named just before it in the same clause
      ("fluoxetine (78.2%)"), else to the arm named right after it ("50.6 gm in those given
      WGJ"). Bare numbers are ignored when the sentence has proper statistics.

    Returns ``(statistic, arm, mention, confidence)`` where ``mention`` is the offset of the arm
    mention the value was tied to (-1 when tied by list position) and ``confidence`` says how
    direct the evidence is: 1.0 for a "respectively" list or a "vs" pair, 0.9 for a value right
    after its arm in one clause ("fluoxetine (78.2%)"), 0.8 for "... in those given WGJ", 0.5
    for the remaining guesses.
    """
    out: list[tuple[Stat, str, int, float]] = []
    if not mentions or not stats:
        return out
    if any(s.kind != "number" for s in stats):
        stats = [s for s in stats if s.kind != "number"]
    done: set[int] = set()
    segment_start = 0
    for resp in _RESPECTIVELY.finditer(text):
        by_kind: dict[str, list[Stat]] = {}
        for s in stats:
            if segment_start <= s.start < resp.start() and s.kind != "number":
                by_kind.setdefault(s.kind, []).append(s)
        for kind_stats in by_kind.values():
            order = _respectively_order(text, kind_stats[-1].end, resp.start(), mentions)
            if order is None:
                in_segment = [m for m in mentions if segment_start <= m.start < resp.start()]
                order = list(dict.fromkeys(m.arm for m in in_segment))
            if len(order) >= 2 and len(kind_stats) == len(order):
                for stat, arm in zip(kind_stats, order, strict=True):
                    out.append((stat, arm, -1, 1.0))
                    done.add(id(stat))
        segment_start = resp.end()
    named = {m.arm for m in mentions}
    if len(arm_ids) == 2 and len(named) == 1 and OTHER_ARM not in named:
        only = next(iter(named))
        other = next(a for a in arm_ids if a != only)
        for first, second in itertools.pairwise(stats):
            if (first.kind == second.kind and id(first) not in done and id(second) not in done
                    and _VERSUS.match(text[first.end:second.start].strip(" ,;"))):
                first_mention = min((m.start for m in mentions), default=len(text))
                if first_mention < first.start:
                    out.extend([(first, only, first_mention, 1.0), (second, other, -1, 1.0)])
                    done.update({id(first), id(second)})
    for stat in stats:
        if id(stat) in done:
            continue
        clause = _clause_id(text, stat.start)
        before = [m for m in mentions if m.end <= stat.start and _clause_id(text, m.end) == clause]
        after = [m for m in mentions if m.start >= stat.end and _clause_id(text, m.start) == clause]
        choice: _Mention | None = None
        confidence = 0.5
        if before:
            gap = text[before[-1].end:stat.start]
            if len(gap) <= 15 and not re.search(r"\d", gap):
                confidence = 0.9
        if before and after:
            gap_before = stat.start - before[-1].end
            gap_after = after[0].start - stat.end
            between_after = text[stat.end:after[0].start].lower()
            if re.match(r"^[\s,%a-z.]*\b(?:in|for|among|with|of|receiving|given|taking|treated with|assigned to|"
                        r"allocated to|randomi[sz]ed to|on)\b(?: the| those| patients| subjects| its)?[\s\w-]{0,25}$",
                        between_after) and gap_after < max(40, gap_before):
                choice = after[0]
                confidence = 0.8
            else:
                choice = before[-1]
        elif before:
            choice = before[-1]
        elif after:
            choice = after[0]
            if re.match(r"^[\s,%a-z.]*\b(?:in|for|among|with|receiving|given|taking|on)\b",
                        text[stat.end:after[0].start].lower()):
                confidence = 0.8
        else:
            prev = [m for m in mentions if m.end <= stat.start]
            if prev:
                choice = prev[-1]
        if choice is not None:
            out.append((stat, choice.arm, choice.start, confidence))
    out.sort(key=lambda pair: pair[0].start)
    return out


# The link model decides a value's arm unless the position rules read it from a "respectively"
# list, a "vs" pair or an "arm, value" adjacency (chosen by cross-validation on RCT-ART; see
# leads.extract.train_results and docs/benchmarks.md).
MODEL_CONFIDENCE = 0.5
RULE_CONFIDENT = 0.9
_MEAN_WORD = re.compile(r"\b(?:mean|means|average|averaged)\b", re.IGNORECASE)


def sentence_candidates(view: DocView, arms: ArmMatcher, outcome: OutcomeMatcher,
                        relation_model: object | None = None, *, bare_means: bool = False) -> list[Candidate]:
    """Candidates from prose sentences that name the outcome and give numbers for the arms.

    With ``bare_means`` a plain number after the word "mean" ("a mean weight gain of 18.3 gm in
    the AJ fed patients") is read as that arm's mean."""
    out: list[Candidate] = []
    previous_text = ""
    for sentence in view.sentences:
        text = sentence.text
        stats = [s for s in find_all(text) if s.kind in _VALUE_KINDS]
        stats = [s for s in stats if not (s.kind == "number" and _is_noise_number(text, s))]
        # The previous sentence or the section heading may name the outcome ("Adverse events"),
        # but a sentence that does not name it itself is weaker evidence.
        score = max(outcome.score(text), 0.5 * outcome.score(previous_text + " " + text),
                    0.8 * outcome.score(f"{sentence.section or ''} {text}"))
        previous_text = text
        if not stats or score <= 0:
            continue
        resolved = []
        for s in stats:
            hint = dispersion_hint(text[: s.start])
            resolved.append(resolve(s, hint) if hint else s)
        mentions = _mentions(text, arms)
        ruled = assign_with_confidence(text, resolved, mentions, [a.id for a in arms.arms])
        assigned = [(stat, arm, at) for stat, arm, at, _ in ruled]
        if relation_model is not None and mentions:
            # The RCT-ART link model decides where the position rules only guess.
            links = relation_model.assign(text, resolved, mentions, arms, OTHER_ARM)  # type: ignore[attr-defined]
            by_stat = {id(stat): (stat, arm, at, conf) for stat, arm, at, conf in ruled}
            for stat in resolved:
                link = links.get(id(stat))
                current = by_stat.get(id(stat))
                if link is not None and link[2] >= MODEL_CONFIDENCE and (current is None or current[3] < RULE_CONFIDENT):
                    by_stat[id(stat)] = (stat, link[0], link[1], link[2])
            assigned = [(stat, arm, at) for stat, arm, at, _ in sorted(by_stat.values(), key=lambda x: x[0].start)]
        if not assigned:
            continue
        arm_stats: dict[str, ArmStats] = {}
        mean_at = _MEAN_WORD.search(text)
        # "9 patients had died" counts events, not a group: only "n = 9" is a size in a result.
        assigned = [(stat, arm_id, at) for stat, arm_id, at in assigned if arm_id != OTHER_ARM
                    and not (stat.kind == "n" and not re.search(r"[=:]", stat.text))]
        source_of: dict[tuple[str, str], int] = {}
        for stat, arm_id, at in assigned:
            if stat.kind == "number":
                if not (bare_means and mean_at is not None and mean_at.start() < stat.start):
                    continue
                stat = stat.as_kind("mean_only", {"mean": stat.values["value"]})
            stats_for = arm_stats.setdefault(arm_id, ArmStats())
            span = (sentence.start + stat.start, sentence.start + stat.end)
            keys = _keys(stat)
            clash = [k for k in keys if k in stats_for.values]
            if clash:
                # Two values for one arm: after one mention ("the intervention group (9.3 vs 9.9,
                # respectively)") the later time point wins; after separate mentions of the arm
                # (one per comparison in a list) the first does.
                if source_of.get((arm_id, clash[0])) != at or at == -1:
                    continue
                for key in keys:
                    stats_for.values.pop(key, None)
                    stats_for.spans.pop(key, None)
            stats_for.add_stat(stat, span)
            for key in keys:
                source_of[(arm_id, key)] = at
        arm_stats = {k: v for k, v in arm_stats.items() if not v.empty}
        if not arm_stats:
            continue
        out.append(Candidate(source="sentence", arms=arm_stats, outcome_score=score, label=_clean(text)[:300],
                             sentence=(sentence.start, sentence.end), section_type=sentence.section_type,
                             unit=_sentence_unit(text)))
    return out


def _keys(stat: Stat) -> list[str]:
    return {"events_total": ["events", "total", "percent"], "count_percent": ["events", "percent"],
            "mean_only": ["mean"],
            "mean_sd": ["mean", "sd"], "mean_se": ["mean", "se"], "percent": ["percent"],
            "median_iqr": ["median", "q1", "q3"], "median_range": ["median", "min", "max"],
            "n": ["n"]}.get(stat.kind, [])


def _is_noise_number(text: str, stat: Stat) -> bool:
    after = text[stat.end: stat.end + 8].lower()
    return bool(re.match(r"\s*(?:years?|yrs|months?|weeks?|days?|hours?|h\b|mg|ml|%)", after))


def _sentence_unit(text: str) -> str:
    m = re.search(r"\d\s*(days?|hours?|hrs?|min(?:utes)?|weeks?|months?|years?|kg|g|gm|mg|ml|cm|mm|mmHg|points?)\b",
                  text)
    return m.group(1) if m else ""


# --- group sizes ---------------------------------------------------------------------------------

@dataclass
class GroupSize:
    arm: str
    n: float
    span: tuple[int, int] | None
    weight: float
    source: str


_ENROL = re.compile(r"\b(?:randomi[sz]ed|randomly (?:assigned|allocated)|assigned|allocated|enrolled|included|"
                    r"recruited|participated|hospitali[sz]ed|analy[sz]ed|comprised|consisted|selected)\b",
                    re.IGNORECASE)
_SIZE_ROW = re.compile(r"^\s*(?:participants|patients|subjects|n|no\.? of (?:patients|participants|subjects)|"
                       r"number of (?:patients|participants|subjects)|sample size|randomi[sz]ed|enrolled|allocated|"
                       r"completed|analy[sz]ed)\s*$", re.IGNORECASE)


def group_sizes(view: DocView, arms: ArmMatcher) -> list[GroupSize]:
    """Every statement of an arm's size: ``(n = 35)`` beside an arm name in a sentence or header,
    an enrolment sentence ("19 and 24 students were enrolled"), a ``Participants`` table row."""
    found: list[GroupSize] = []
    for table in view.tables:
        header = table.rows[: table.header_rows]
        labels = _header_labels(table, header)
        for c, cells in enumerate(labels):
            for cell in cells:
                m = _N_IN_LABEL.search(cell)
                if not m:
                    continue
                arm, _ = arms.best(cell, threshold=0.34)
                names_arm = arm is not None
                if arm is None:
                    arm, _ = arms.best(" ".join(cells), threshold=0.5)
                if arm is not None:
                    span = _locate_in_cells(table, c, m.group(0))
                    # Under a subgroup heading ("Children", "Adolescents") the n is the subgroup's.
                    others = [x for x in cells if x != cell and not _is_stat_label(x)
                              and arms.best(x, threshold=0.34)[0] is None]
                    subgroup = any(not _TOTAL_TIME.search(x) and not is_time_label(x) for x in others)
                    # An n beside a period or subgroup heading under the arm counts that subset.
                    found.append(GroupSize(arm, float(m.group(1).replace(",", "")), span,
                                           0.3 if subgroup or not names_arm else 0.8, "table header"))
        body = range(table.header_rows, len(table.rows))
        for r in body:
            label = _clean(table.cell(r, 0))
            m = _N_IN_LABEL.search(label)
            if m:
                arm, _ = arms.best(label, threshold=0.34)
                if arm is not None:
                    found.append(GroupSize(arm, float(m.group(1).replace(",", "")), table.span(r, 0), 1.2, "row label"))
            if _SIZE_ROW.match(label):
                for c in range(1, table.width):
                    col_label = " ".join(labels[c]) if c < len(labels) else ""
                    arm, _ = arms.best(col_label, threshold=0.34)
                    cell = table.cell(r, c)
                    parsed = parse_cell(cell)
                    if arm is not None and parsed is not None and parsed.kind in ("number", "n", "count_percent"):
                        n = parsed.values.get("value", parsed.values.get("n", parsed.values.get("count")))
                        if n is not None and n > 0 and float(n).is_integer():
                            found.append(GroupSize(arm, n, table.span(r, c), 1.2, "table row"))
    for sentence in view.sentences:
        text = sentence.text
        stats = [s for s in find_all(text, numbers=False) if s.kind in ("n", "count_percent")]
        if not stats:
            continue
        mentions = _mentions(text, arms)
        if not mentions:
            continue
        enrol = bool(_ENROL.search(text))
        n_stats = []
        for s in stats:
            explicit = s.kind == "n" and re.search(r"[=:]", s.text) is not None
            if not explicit and not enrol:
                continue
            value = s.values.get("n", s.values.get("count"))
            if value is None or value <= 0:
                continue
            n_stats.append(s)
        if not n_stats:
            continue
        for stat, arm, _ in assign_stats(text, n_stats, mentions, [a.id for a in arms.arms]):
            if arm == OTHER_ARM:
                continue
            value = stat.values.get("n", stat.values.get("count"))
            assert value is not None
            if _names_both_arms(text, stat, mentions):
                continue
            explicit = stat.kind == "n" and re.search(r"[=:]", stat.text) is not None
            weight = 1.5 if explicit else 0.8 if stat.kind == "n" else 0.6
            if sentence.section_type == "abstract":
                weight += 0.05
            found.append(GroupSize(arm, value, (sentence.start + stat.start, sentence.start + stat.end), weight,
                                   "sentence"))
    return found


def _names_both_arms(text: str, stat: Stat, mentions: Sequence[_Mention]) -> bool:
    """"10,948 patients ... to receive eptifibatide or placebo": one size next to two arms named
    together ("A or B", "A and B", "A versus B") is the total, not one arm's size."""
    real = [m for m in mentions if m.arm != OTHER_ARM]
    n_count = len([s for s in find_all(text, numbers=False) if s.kind in ("n", "count_percent")])
    if n_count != 1:
        return False
    for first, second in itertools.pairwise(real):
        if first.arm == second.arm:
            continue
        between = text[first.end:second.start]
        joined = len(between) <= 25 and re.fullmatch(
            r"[\s,]*(?:or|and|versus|vs\.?|to|with|compared with)[\s,]*(?:the\s)?", between, re.IGNORECASE)
        if joined and not first.start <= stat.start <= second.end:
            return True
    return False


def _locate_in_cells(table: TableView, c: int, needle: str) -> tuple[int, int] | None:
    for r in range(table.header_rows):
        cell = table.cell(r, c)
        span = table.span(r, c)
        if span is not None and needle in cell:
            i = cell.index(needle)
            return (span[0] + i, span[0] + i + len(needle))
    return None


def other_arm_names(view: DocView, arms: ArmMatcher) -> list[str]:
    """Groups the paper reports besides the arms asked for: headers with their own ``n = X``
    ("Fluoxetine (n = 45)") and the other arm rows of tables whose rows are arms."""
    names: set[str] = set()

    def consider(label: str) -> None:
        name = _clean(_N_IN_LABEL.sub("", label)).strip(" ()[],;:*")
        name = re.sub(r"[(\[]\s*[)\]]", "", name).strip()
        if not name or len(name.split()) > 4 or re.search(r"\d", name) or _TOTAL_LABEL.search(name):
            return
        if _is_stat_label(name) or is_time_label(name):
            return
        if arms.best(name, threshold=0.34)[0] is not None or any(arms.score(a.id, name) >= 0.34 for a in arms.arms):
            return
        names.add(name)

    for table in view.tables:
        for row in table.rows[: table.header_rows]:
            for cell in row:
                if _N_IN_LABEL.search(cell):
                    consider(cell)
        body = range(table.header_rows, len(table.rows))
        labels = {r: _clean(table.cell(r, 0)) for r in body}
        matched = {arms.best(label, threshold=0.5)[0] for label in labels.values()} - {None}
        if len(matched) >= 2:
            for r, label in labels.items():
                has_data = any(_data_cell(x) for x in table.rows[r][1:])
                if has_data and arms.best(label, threshold=0.34)[0] is None:
                    consider(label)
    return sorted(names, key=len, reverse=True)


def total_sizes(view: DocView) -> list[GroupSize]:
    """Whole-sample sizes ("A quasi experimental trail of 19 males", "Nineteen subjects
    participated"), for single-group before/after designs where both 'arms' are everyone."""
    found: list[GroupSize] = []
    for sentence in view.sentences:
        text = sentence.text
        if not _ENROL.search(text) and not re.search(r"\btrial of\b|\bstudy of\b|\bsample of\b", text, re.IGNORECASE):
            continue
        for stat in find_all(text, numbers=False):
            if stat.kind == "n" and stat.values["n"] >= 2:
                found.append(GroupSize("*", stat.values["n"], (sentence.start + stat.start, sentence.start + stat.end),
                                       1.0 if sentence.section_type == "abstract" else 0.8, "sample size"))
    return found


def sentence_of(view: DocView, offset: int) -> SentenceView | None:
    for s in view.sentences:
        if s.start <= offset < s.end:
            return s
    return None
