"""Examples from a review project: what its reviewers decided and accepted.

What counts as gold, and what does not:

* **Eligibility, per criterion.** An AI assessment (``ai_assessments``, linked to its call)
  whose call passed validation with every quote located, of a record whose reviewer's standing
  title/abstract decision was made under the same criteria version and agrees with it: an
  *include* when no verdict speaks against the record (no inclusion criterion NO, no exclusion
  criterion YES); an *exclude* when some verdict does and, where the reviewer named criteria as
  reasons, every named criterion's verdict speaks against it. The answer is the call's own reply;
  the input is rebuilt from the record (title, abstract) and the criteria version, as the
  screening workflow builds it, and the reply is validated against it again.
* **Eligibility, overall.** A record with a standing human include/exclude decision and an
  abstract, but no accepted assessment: one combined criterion (the criteria version as a whole)
  answered YES/NO with no rationale (see :mod:`leads.instruct.sources.screening`). Per-criterion
  labels are never made up from an overall decision.
* **Extraction tasks.** A call that produced extraction rows (``extractions.call_id``) all of
  whose fields a person accepted, each field's newest row being ``accepted`` with the call's
  value; an edited or rejected field disqualifies the call. The prompt is the call's request
  and the answer its reply (the task input is not in the call log).
* **Search query.** A ``search_query`` call whose query the team ran: a search in the project
  with the same query (whitespace aside).

Decisions of AI actors (``actor_kind = "ai"``) are never gold. ``maybe`` decisions are left out.
Only the title/abstract stage is used: a full-text decision rests on a text the record does not
hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from leads.engines.calllog import CallRecord, DatabaseCallLog
from leads.instruct.sources import CallCandidate, Candidate, text_key
from leads.instruct.sources.screening import OVERALL_PREFIX, overall_answer
from leads.project import Project
from leads.project import schema as t
from leads.tasks import TASKS
from leads.tasks.eligibility import Criterion, EligibilityInput

__all__ = ["overall_criterion_from", "project_candidates"]

STAGE = "title_abstract"
MAX_TITLE = 2000


def overall_criterion_from(criteria: Sequence[Mapping[str, Any]]) -> Criterion:
    """A project's criteria version as one combined criterion."""
    inclusion = [str(c["text"]).strip().rstrip(".;") for c in criteria if c["kind"] == "inclusion"]
    exclusion = [str(c["text"]).strip().rstrip(".;") for c in criteria if c["kind"] == "exclusion"]
    parts = []
    if inclusion:
        parts.append("include studies that meet: " + "; ".join(inclusion))
    if exclusion:
        parts.append("exclude studies that meet any of: " + "; ".join(exclusion))
    text = OVERALL_PREFIX + ". ".join(parts)
    if len(text) > 2000:
        raise ValueError("the criteria are too long for one criterion")
    return Criterion(text=text, kind="inclusion")


def _against(eligibility: str, kind: str) -> bool:
    return (kind == "inclusion" and eligibility == "NO") or (kind == "exclusion" and eligibility == "YES")


def _named(reasons: Sequence[str], criteria: Sequence[Mapping[str, Any]]) -> set[int] | None:
    """Positions of the criteria a decision names as reasons; ``None`` when a reason names none."""
    named: set[int] = set()
    for reason in reasons:
        text = str(reason).strip()
        if not text:
            continue
        body = text.split(":", 1)[1].strip() if re.match(r"^[IE]\d+:", text) else text
        hits = [i for i, c in enumerate(criteria) if str(c["text"]).strip() == body]
        if not hits:
            return None
        named.update(hits)
    return named


def accepted(verdicts: Sequence[Mapping[str, Any]], criteria: Sequence[Mapping[str, Any]], label: str,
             reasons: Sequence[str]) -> bool:
    """Whether a reviewer's decision ``label`` (with ``reasons``) agrees with an assessment's verdicts."""
    if len(verdicts) != len(criteria):
        return False
    against = {int(v["criterion"]) for v in verdicts
               if _against(str(v["eligibility"]), str(criteria[int(v["criterion"])]["kind"]))}
    if label == "include":
        return not against
    if label != "exclude" or not against:
        return False
    named = _named(reasons, criteria)
    return named is None or named <= against


def _human_decisions(project: Project) -> dict[int, dict[str, Any]]:
    """The standing human decision per record (duplicates count for their group's primary)."""
    primaries = project.duplicate_primaries()
    current: dict[int, dict[str, Any]] = {}
    for row in project.decision_history(STAGE):
        if row["actor_kind"] != "human":
            continue
        key = primaries.get(row["record_id"], row["record_id"])
        if row["label"] == "undo":
            current.pop(key, None)
        else:
            current[key] = row
    return current


def _record_groups(project_key: str, record: Any) -> list[str]:
    groups = [project_key]
    if record.pmid:
        groups.append(f"pmid:{record.pmid}")
    if record.doi:
        groups.append(f"doi:{str(record.doi).casefold()}")
    if record.abstract:
        groups.append(text_key(record.abstract))
    return groups


def _ok_call(call: CallRecord | None) -> bool:
    from leads.instruct.example import unsupported_quotes

    return bool(call and call.ok and call.raw_output and not unsupported_quotes(call.parsed))


def project_candidates(project: Project, *, name: str | None = None) -> Iterator[Candidate | CallCandidate]:
    """Every candidate example of a project (see the module docstring)."""
    project_key = f"project:{name or project.name}"
    calls = {c.id: c for c in DatabaseCallLog(project.engine).calls() if c.id is not None}
    decisions = _human_decisions(project)
    primaries = project.duplicate_primaries()
    criteria_cache: dict[int, list[dict[str, Any]]] = {}

    def criteria_of(version: int) -> list[dict[str, Any]]:
        if version not in criteria_cache:
            criteria_cache[version] = project.criteria(version)
        return criteria_cache[version]

    covered: set[int] = set()
    newest: dict[tuple[int, int], dict[str, Any]] = {}
    for row in project.assessments(stage=STAGE):
        key = primaries.get(row["record_id"], row["record_id"])
        newest[(key, int(row["criteria_version"] or 0))] = row
    for (key, version), row in sorted(newest.items()):
        decision = decisions.get(key)
        call = calls.get(row["call_id"]) if row.get("call_id") is not None else None
        if decision is None or decision["criteria_version"] != version or call is None:
            continue
        if call.task != "eligibility" or not _ok_call(call):
            continue
        criteria = criteria_of(version)
        verdicts = row["verdicts"]
        verdicts = verdicts.get("verdicts", verdicts) if isinstance(verdicts, dict) else verdicts
        if not accepted(verdicts, criteria, decision["label"], decision.get("reasons") or []):
            continue
        record = project.record(row["record_id"]).record
        if not record.abstract:
            continue
        inp = EligibilityInput(title=record.title[:MAX_TITLE] if record.title else None, text=record.abstract,
                               criteria=[Criterion(text=c["text"], kind=c["kind"]) for c in criteria])
        try:
            answer = TASKS["eligibility"].parse_answer(call.raw_output or "")
        except ValueError:  # pydantic's ValidationError is a ValueError
            continue
        covered.add(key)
        yield Candidate(task="eligibility", input=inp, answer=answer,
                        item=f"{project_key}#record{key}:call{call.id}", groups=_record_groups(project_key, record),
                        notes=[f"AI assessment (call {call.id}, {call.engine}/{call.model}) accepted by "
                               f"{decision['actor']} ({decision['label']})"])
    for key, decision in sorted(decisions.items()):
        if key in covered or decision["label"] not in ("include", "exclude") or not decision["criteria_version"]:
            continue
        record = project.record(key).record
        if not record.abstract:
            continue
        try:
            criterion = overall_criterion_from(criteria_of(int(decision["criteria_version"])))
        except ValueError:
            continue
        inp = EligibilityInput(title=record.title[:MAX_TITLE] if record.title else None, text=record.abstract,
                               criteria=[criterion])
        yield Candidate(task="eligibility", input=inp, answer=overall_answer(decision["label"] == "include"),
                        item=f"{project_key}#record{key}", groups=_record_groups(project_key, record),
                        notes=[f"label-only: {decision['actor']}'s overall title/abstract decision"])
    yield from _extraction_calls(project, calls, project_key)
    yield from _search_calls(project, calls, project_key)


def _extraction_calls(project: Project, calls: dict[int, CallRecord], project_key: str) -> Iterator[CallCandidate]:
    e = t.extractions
    with project.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(e).order_by(e.c.id)).mappings()]
    standing: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in rows:
        standing[(row["record_id"], row["task"], row["field"])] = row
    by_call: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["call_id"] is not None and row["origin"] == "ai":
            by_call.setdefault(int(row["call_id"]), []).append(row)
    for call_id, proposed in sorted(by_call.items()):
        call = calls.get(call_id)
        if not _ok_call(call) or call is None or call.task is None:
            continue
        good = True
        for row in proposed:
            final = standing[(row["record_id"], row["task"], row["field"])]
            if final["status"] != "accepted" or final["value"] != row["value"]:
                good = False
                break
        if not good:
            continue
        record_id = proposed[0]["record_id"]
        record = project.record(record_id).record
        yield CallCandidate(task=call.task, messages=list(call.messages or []), raw_output=call.raw_output or "",
                            item=f"{project_key}#record{record_id}:call{call_id}",
                            groups=_record_groups(project_key, record),
                            notes=[f"call {call_id} ({call.engine}/{call.model}): every field accepted"])


def _search_calls(project: Project, calls: dict[int, CallRecord], project_key: str) -> Iterator[CallCandidate]:
    ran = {" ".join(str(s["query"]).split()) for s in project.searches() if s.get("query")}
    for call in calls.values():
        if call.task != "search_query" or not _ok_call(call) or not isinstance(call.parsed, dict):
            continue
        query = " ".join(str(call.parsed.get("query", "")).split())
        if query and query in ran:
            yield CallCandidate(task="search_query", messages=list(call.messages or []),
                                raw_output=call.raw_output or "", item=f"{project_key}#call{call.id}",
                                groups=[project_key], notes=[f"call {call.id}: the team ran this query"])
