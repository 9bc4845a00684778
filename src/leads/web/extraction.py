"""What the extraction pages show: the included studies, a study's text with every value's quote
highlighted, and the values in a readable form.

* **Included studies**: a study's standing full-text decision is ``include``, or, where none
  stands, its title/abstract decision is (duplicate groups count for their primary), as
  :mod:`leads.extract.project` reads them.
* **The text**: the newest full text linked to the study (or to any record of its duplicate
  group), else the record's title and abstract.
* **Quotes**: each value's evidence is a ``{quote, start, end}`` located in the text it was
  read from. A span whose offsets reproduce its quote in the text shown is used as it is; a
  quote read from another text (the abstract while the full text is shown, or an older
  document) is located again in the shown text (:func:`leads.grounding.locate`); a quote that
  cannot be found is listed as such and never highlighted.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from leads.documents.store import get_document, list_documents
from leads.grounding import locate
from leads.project import Project
from leads.records import Record
from leads.web.highlight import Span, assessed_text, highlight
from leads.web.store import WorkspaceError

__all__ = [
    "CUSTOM_TASK",
    "StudyText",
    "ValueView",
    "included_studies",
    "parse_value",
    "render_value",
    "study_text",
    "value_views",
]

CUSTOM_TASK = "custom"
TASK_ORDER = ("characteristics", "pico", "arms", "participants", "results", CUSTOM_TASK)
MAX_VALUE = 20_000


def _group_members(primaries: Mapping[int, int], key: int) -> list[int]:
    return sorted({key, *(m for m, p in primaries.items() if p == key)})


def included_studies(project: Project) -> list[int]:
    """Primary record ids of the included studies, in id order."""
    ta = project.current_decisions("title_abstract")
    ft = project.current_decisions("full_text")
    included = {rid for rid, d in ft.items() if d["label"] == "include"}
    included |= {rid for rid, d in ta.items() if d["label"] == "include" and rid not in ft}
    return sorted(included)


@dataclass
class StudyText:
    """The text a study is shown with, and where it comes from."""

    text: str
    source: str
    """``full text`` or ``title and abstract``."""
    document_id: int | None
    file_name: str | None = None


def study_text(project: Project, record_id: int, record: Record) -> StudyText:
    """The study's newest full text (of any record of its duplicate group), else its title and
    abstract."""
    members = _group_members(project.duplicate_primaries(), record_id)
    documents = [d for m in members for d in list_documents(project, record_id=m)]
    for stored in sorted(documents, key=lambda d: d.id, reverse=True):
        document = get_document(project, stored.id)
        if document.text.strip():
            return StudyText(document.text, "full text", stored.id, stored.file_name)
    text, _ = assessed_text(record.title, record.abstract)
    return StudyText(text, "title and abstract", None)


@dataclass
class QuoteView:
    quote: str
    located: bool


@dataclass
class ValueView:
    """One standing extracted value, as the form shows it."""

    id: int
    task: str
    field: str
    value: Any
    display: Markup
    edit_text: str
    status: str
    origin: str
    actor: str | None
    model: str | None
    anchor: str
    quotes: list[QuoteView] = dataclasses.field(default_factory=list)
    spans: list[Span] = dataclasses.field(default_factory=list)

    @property
    def located(self) -> bool:
        return bool(self.spans)

    @property
    def reviewed(self) -> bool:
        return self.origin == "human"


def _spans(evidence: Sequence[Mapping[str, Any]], text: str, same_text: bool, anchor: str) -> tuple[list[Span], list[QuoteView]]:
    spans: list[Span] = []
    quotes: list[QuoteView] = []
    for item in evidence or []:
        quote = str(item.get("quote") or "")
        if not quote:
            continue
        start, end = item.get("start"), item.get("end")
        if same_text and isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text) \
                and text[start:end] == quote:
            spans.append(Span(start, end, anchor))
            quotes.append(QuoteView(quote, True))
            continue
        found = locate(quote, text)
        if found is not None:
            spans.append(Span(found.start, found.end, anchor))
        quotes.append(QuoteView(quote, found is not None))
    return spans, quotes


def value_views(project: Project, record_id: int, shown: StudyText) -> list[ValueView]:
    """The study's standing values (the AI's proposals and the reviewers' values), in task order."""
    members = _group_members(project.duplicate_primaries(), record_id)
    rows = project.extractions(record_ids=members)
    views = []
    for row in rows:
        anchor = f"x{row['id']}"
        same_text = row.get("document_id") == shown.document_id
        spans, quotes = _spans(row.get("evidence") or [], shown.text, same_text, anchor)
        views.append(ValueView(
            id=int(row["id"]), task=str(row["task"]), field=str(row["field"]), value=row.get("value"),
            display=render_value(str(row["task"]), row.get("value")), edit_text=edit_text(row.get("value")),
            status=str(row["status"]), origin=str(row["origin"]), actor=row.get("actor"),
            model=row.get("model"), anchor=anchor, quotes=quotes, spans=spans))
    order = {name: i for i, name in enumerate(TASK_ORDER)}
    views.sort(key=lambda v: (order.get(v.task, len(order)), v.id))
    return views


def highlighted_text(shown: StudyText, views: Sequence[ValueView]) -> Markup:
    return highlight(shown.text, [span for view in views for span in view.spans])


# -- values as people read them -----------------------------------------------------------------


def _number(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _results_lines(value: Mapping[str, Any]) -> list[str]:
    """A ``ResultsOutput`` as lines: the outcome with its measure, then one line per group,
    events/total (binary) or mean (SD), N (continuous) where the arm-level numbers are there,
    else the value as reported."""
    head = str(value.get("outcome") or "outcome")
    details = [str(value[k]) for k in ("param_type", "unit", "time_frame") if value.get(k)]
    lines = [head + (f" ({', '.join(details)})" if details else "")]
    denominators = value.get("denominators") or {}
    arms = {str(a.get("group_id")): a for a in value.get("arms") or [] if isinstance(a, Mapping)}
    seen: set[str] = set()
    for group in value.get("values") or []:
        if not isinstance(group, Mapping):
            continue
        gid = str(group.get("group_id"))
        seen.add(gid)
        lines.append(f"{gid}: {_arm_text(arms.get(gid), group, denominators.get(gid))}")
    for gid, arm in arms.items():
        if gid not in seen:
            lines.append(f"{gid}: {_arm_text(arm, {}, denominators.get(gid))}")
    return lines


def _arm_text(arm: Mapping[str, Any] | None, group: Mapping[str, Any], denominator: Any) -> str:
    if arm:
        n = arm.get("group_size") if arm.get("group_size") is not None else denominator
        if arm.get("events") is not None:
            return f"{_number(arm['events'])}/{_number(n)} events"
        if arm.get("mean") is not None:
            sd = f" (SD {_number(arm.get('sd'))})" if arm.get("sd") is not None else ""
            return f"mean {_number(arm['mean'])}{sd}, N = {_number(n)}"
        if arm.get("median") is not None:
            return f"median {_number(arm['median'])} (IQR {_number(arm.get('q1'))}–{_number(arm.get('q3'))}), N = {_number(n)}"
    reported = group.get("value")
    if reported in (None, ""):
        return "not reported"
    suffix = f" (N = {_number(denominator)})" if denominator is not None else ""
    return f"{reported}{suffix}"


def _arms_lines(value: Sequence[Any]) -> list[str]:
    lines = []
    for arm in value:
        if isinstance(arm, Mapping):
            label = str(arm.get("label") or arm.get("title") or "arm")
            kind = f" ({arm['type']})" if arm.get("type") else ""
            description = f": {arm['description']}" if arm.get("description") else ""
            lines.append(f"{label}{kind}{description}")
        else:
            lines.append(str(arm))
    return lines


def render_value(task: str, value: Any) -> Markup:
    """A value as escaped HTML lines: ``not reported`` for ``None``; results per group; arms one
    per line; other objects as ``key: value`` pairs."""
    if value is None:
        return Markup('<span class="muted">not reported</span>')
    if isinstance(value, Mapping) and (task == "results" or ("values" in value and "outcome" in value)):
        lines = _results_lines(value)
    elif isinstance(value, Mapping) and "value" in value and ("group" in value or "unit" in value):
        unit = f" {value['unit']}" if value.get("unit") else ""
        group = f" ({value['group']})" if value.get("group") else ""
        lines = [f"{value.get('value')}{unit}{group}"]
    elif isinstance(value, Mapping):
        lines = [f"{k}: {v}" for k, v in value.items() if v not in (None, "", [], {})]
    elif isinstance(value, list):
        lines = _arms_lines(value)
    else:
        lines = [_number(value) if isinstance(value, float) else str(value)]
    return Markup("<br>").join(Markup.escape(line) for line in lines) if lines else Markup("")


def edit_text(value: Any) -> str:
    """The value as the edit box shows it: text as it is, anything structured as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)


def parse_value(text: str, like: Any, *, where: str) -> Any:
    """A reviewer's edited value, of the kind of the value it replaces: JSON for a structured
    value (``where`` names the field in the error), a number for a number, else text."""
    if len(text) > MAX_VALUE:
        raise WorkspaceError(f"{where}: a value has at most {MAX_VALUE} characters")
    stripped = text.strip()
    if not stripped:
        raise WorkspaceError(f"{where}: the edited value is empty (reject the value instead)")
    if isinstance(like, dict | list):
        try:
            parsed = json.loads(stripped)
        except ValueError as exc:
            raise WorkspaceError(f"{where}: the value is structured; give it as JSON ({exc})") from None
        if not isinstance(parsed, type(like)):
            raise WorkspaceError(f"{where}: the value must stay a JSON {'object' if isinstance(like, dict) else 'list'}")
        return parsed
    if isinstance(like, bool):
        return stripped
    if isinstance(like, int | float):
        try:
            number = float(stripped)
        except ValueError:
            return stripped
        return int(number) if number.is_integer() and isinstance(like, int) else number
    return stripped
