"""Gathering a project's state into report data, and writing it as HTML and Markdown.

The HTML is one file with inline CSS and the SVG figures inlined: no scripts, fonts, images or
style sheets are fetched, so it can be mailed, archived or opened offline. The Markdown file
refers to the SVG files written beside it.

Provenance anchors (the same in both formats): ``#study-<study id>`` is a study's block of
extracted values, ``#x<row id>`` one extracted value (its quotes, offsets, document and model
call). Every number in a results table links to the value it came from, and each study row of a
forest plot links to that study's extracted results; pooled estimates name their studies and
weights (``data-studies`` in the SVG, the weight column in the table).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from leads.errors import LeadsError
from leads.project import Project
from leads.project import schema as t

__all__ = ["ReportError", "build_report", "methods_paragraph", "report_data"]

FORMATS = ("html", "md")


class ReportError(LeadsError):
    """The report cannot be written as asked."""


@dataclass
class ReportData:
    """Everything the report shows, read from the project once."""

    name: str
    generated: str
    question: dict[str, Any] | None
    criteria: list[dict[str, Any]]
    searches: list[dict[str, Any]]
    status: Any
    prisma_svg: str
    screening: dict[str, Any]
    included: list[int]
    studies: list[dict[str, Any]]
    extractions: list[dict[str, Any]]
    synthesis: Any
    registry: Any
    calls: list[dict[str, Any]]
    methods: str
    documents: dict[int, str] = field(default_factory=dict)


# --- gathering -------------------------------------------------------------------------------


def _calls(project: Project) -> list[dict[str, Any]]:
    c = t.model_calls
    query = (sa.select(c.c.task, c.c.engine, c.c.model, c.c.schema_id, sa.func.count().label("calls"),
                       sa.func.count(sa.distinct(c.c.prompt_hash)).label("prompts"),
                       sa.func.min(c.c.created_at).label("first"), sa.func.max(c.c.created_at).label("last"))
             .group_by(c.c.task, c.c.engine, c.c.model, c.c.schema_id).order_by(c.c.task, c.c.engine, c.c.model))
    with project.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        hashes = conn.execute(sa.select(c.c.task, c.c.model, c.c.prompt_hash).distinct()).all()
    by_key: dict[tuple[str | None, str | None], list[str]] = {}
    for task, model, prompt in hashes:
        if prompt:
            by_key.setdefault((task, model), []).append(prompt)
    for row in rows:
        row["prompt_hashes"] = sorted(by_key.get((row["task"], row["model"]), []))
    return rows


def _kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in set(first) | set(second)) / (n * n)
    if expected >= 1:
        return 1.0 if observed == 1 else None
    return (observed - expected) / (1 - expected)


def _screening(project: Project) -> dict[str, Any]:
    stats: dict[str, Any] = {"stages": {}}
    for stage in ("title_abstract", "full_text"):
        current = project.current_decisions(stage)
        history = project.decision_history(stage)
        labels = Counter(d["label"] for d in current.values())
        by_kind = Counter(d["actor_kind"] for d in current.values())
        actors = Counter((d["actor_kind"], d["actor"]) for d in current.values())
        # agreement: the latest human and the latest AI decision of the same record
        latest: dict[tuple[int, str], str] = {}
        primaries = project.duplicate_primaries()
        for d in history:
            key = primaries.get(d["record_id"], d["record_id"])
            if d["label"] == "undo":
                latest.pop((key, d["actor_kind"]), None)
            else:
                latest[(key, d["actor_kind"])] = d["label"]
        pairs = [(latest[(rid, "human")], latest[(rid, "ai")]) for (rid, kind) in latest
                 if kind == "human" and (rid, "ai") in latest]
        agree = sum(1 for a, b in pairs if a == b)
        stats["stages"][stage] = {
            "decided": len(current), "labels": dict(labels), "by_kind": dict(by_kind),
            "actors": [{"kind": k, "actor": a, "decisions": n} for (k, a), n in sorted(actors.items())],
            "both": len(pairs), "agreement": agree / len(pairs) if pairs else None, "kappa": _kappa(pairs),
        }
    assessments = project.assessments(stage=None)
    stats["assessments"] = len(assessments)
    stats["assessed_records"] = len({a["record_id"] for a in assessments})
    stats["assessment_engines"] = sorted({f"{a['engine']} ({a['model'] or 'no model'})" for a in assessments})
    return stats


def _study_rows(project: Project, included: list[int], extractions: list[dict[str, Any]],
                documents: dict[int, list[str]]) -> list[dict[str, Any]]:
    from leads.synthesis.project import study_label

    by_record: dict[int, list[dict[str, Any]]] = {}
    for row in extractions:
        by_record.setdefault(int(row["record_id"]), []).append(row)
    decisions = {stage: project.current_decisions(stage) for stage in ("title_abstract", "full_text")}
    out = []
    for rid in included:
        record = project.record(rid).record
        rows = by_record.get(rid, [])
        decided = decisions["full_text"].get(rid) or decisions["title_abstract"].get(rid) or {}
        out.append({
            "record_id": rid, "study_id": f"record-{rid}", "label": study_label(record, rid),
            "title": record.title or "", "year": record.year, "pmid": record.pmid, "pmcid": record.pmcid,
            "doi": record.doi, "nct_ids": list(record.nct_ids), "documents": documents.get(rid, []),
            "decided_by": f"{decided.get('actor', '?')} ({decided.get('actor_kind', '?')})" if decided else "",
            "stage": "full text" if rid in decisions["full_text"] else "title/abstract",
            "characteristics": [r for r in rows if r["task"] == "characteristics"],
            "arms": [r for r in rows if r["task"] == "arms"],
            "participants": [r for r in rows if r["task"] == "participants"],
            "results": [r for r in rows if r["task"] == "results"],
        })
    return out


def report_data(project: Project, *, synthesis: Any = None, registry: Any = None,
                spec: Any = None) -> ReportData:
    """Read what the report shows. ``synthesis`` (a :class:`~leads.synthesis.project.ProjectSynthesis`)
    and ``registry`` (a :class:`~leads.synthesis.registry.RegistryCheck`) are computed from the
    project when not given (the registry check offline, from the spec's files when a spec is given)."""
    from leads.documents.store import list_documents
    from leads.review import included_record_ids
    from leads.web.prisma import prisma_svg

    status = project.status()
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    included = included_record_ids(project)
    stored = list_documents(project)
    doc_names = {d.id: d.file_name or f"document {d.id}" for d in stored}
    by_record: dict[int, list[str]] = {}
    for d in stored:
        if d.record_id is not None:
            by_record.setdefault(d.record_id, []).append(d.file_name or f"document {d.id}")
    extractions = project.extractions(record_ids=included)
    if synthesis is None:
        from leads.synthesis.project import synthesize_project

        kwargs: dict[str, Any] = {}
        if spec is not None:
            s = spec.synthesis
            kwargs = {"measure": s.measure, "continuous_measure": s.continuous_measure, "model": s.model,
                      "tau2_method": s.tau2_method, "hksj": s.hksj}
        synthesis = synthesize_project(project, record_ids=included, **kwargs)
    if registry is None:
        from leads.synthesis.registry import check_registry

        files = [spec.base / f for f in spec.registry.files] if spec is not None else []
        cache = spec.base / spec.registry.cache if spec is not None and spec.registry.cache else None
        registry = check_registry(project, record_ids=included, files=files, cache_dir=cache, online=False)
    calls = _calls(project)
    screening = _screening(project)
    data = ReportData(
        name=project.name, generated=generated, question=project.question(), criteria=project.criteria(),
        searches=project.searches(), status=status,
        prisma_svg=prisma_svg(status.prisma, title=project.name, generated=generated[:10],
                              still_to_screen=status.undecided["title_abstract"],
                              reports_to_assess=status.undecided["full_text"]),
        screening=screening, included=included,
        studies=_study_rows(project, included, extractions, by_record), extractions=extractions,
        synthesis=synthesis, registry=registry, calls=calls, methods="", documents=doc_names,
    )
    data.methods = methods_paragraph(project, data)
    return data


def methods_paragraph(project: Project, data: ReportData) -> str:
    """The methods, written from the logs: searches, deduplication, who screened and with what
    (engines, models, prompt versions), human and AI decisions, extraction and synthesis."""
    status = data.status
    parts = []
    files = [s for s in data.searches if s["source"] == "file"]
    online = [s for s in data.searches if s["source"] != "file"]
    if data.searches:
        what = []
        if files:
            what.append(f"{len(files)} imported file(s) ({', '.join(str(s['file_name']) for s in files)})")
        if online:
            what.append(f"{len(online)} search(es) of {', '.join(sorted({s['source'] for s in online}))}")
        parts.append(f"Records came from {' and '.join(what)}: {status.records} records, of which "
                     f"{status.prisma.duplicates_removed} were removed as duplicates by leads' identifier and "
                     f"title matching, leaving {status.unique_records} to screen.")
    ta = data.screening["stages"]["title_abstract"]
    if data.screening["assessments"]:
        engines = "; ".join(data.screening["assessment_engines"])
        version = data.criteria[0]["version"] if data.criteria else None
        parts.append(f"Titles and abstracts were assessed against {len(data.criteria)} eligibility criteria"
                     f"{f' (version {version})' if version else ''} by {engines}: "
                     f"{data.screening['assessed_records']} records, one verdict per criterion with its evidence.")
    human = ta["by_kind"].get("human", 0)
    ai = ta["by_kind"].get("ai", 0)
    if human or ai:
        who = ", ".join(f"{a['actor']} ({a['kind']}, {a['decisions']})" for a in ta["actors"])
        parts.append(f"Of the standing title/abstract decisions, {human} were made by people and {ai} were "
                     f"unattended AI decisions ({who}); {status.undecided['title_abstract']} records are "
                     "still undecided.")
        if ai and not human:
            parts.append("No person has yet checked the AI's decisions: the included studies are the AI's "
                         "selection and must be confirmed by reviewers.")
    if ta["both"]:
        kappa = ta["kappa"]
        parts.append(f"Where both a person and the AI decided ({ta['both']} records), they agreed on "
                     f"{ta['agreement']:.0%}" + (f" (Cohen's κ {kappa:.2f})." if kappa is not None else "."))
    ft = data.screening["stages"]["full_text"]
    if ft["decided"]:
        parts.append(f"{ft['decided']} full texts were assessed ({ft['by_kind'].get('human', 0)} by people, "
                     f"{ft['by_kind'].get('ai', 0)} by the AI).")
    rows = data.extractions
    if rows:
        origins = Counter(r["origin"] for r in rows)
        statuses = Counter(r["status"] for r in rows)
        tasks = sorted({r["task"] for r in rows})
        reviewers = sorted({r["actor"] for r in rows if r["origin"] == "human"})
        reviewed = statuses.get("accepted", 0) + statuses.get("edited", 0) + statuses.get("rejected", 0)
        parts.append(f"Data were extracted from {len({r['record_id'] for r in rows})} full texts "
                     f"({', '.join(tasks)}): {origins.get('ai', 0)} values stand as AI proposals and "
                     f"{origins.get('human', 0)} as reviewers' values ({reviewed} reviewed"
                     f"{', by ' + ', '.join(reviewers) if reviewers else ''}); every value carries the quote it was "
                     "read from, located in the text.")
    if data.calls:
        described = []
        for c in data.calls:
            prompt = ", ".join(h[:10] for h in c["prompt_hashes"][:3])
            more = f" and {len(c['prompt_hashes']) - 3} more" if len(c["prompt_hashes"]) > 3 else ""
            described.append(f"{c['task']}: {c['calls']} calls to {c['engine']} ({c['model'] or 'no model name'}; "
                             f"{c['prompts']} distinct inputs, prompt hashes {prompt}{more})")
        parts.append("Model calls in the call log: " + "; ".join(described) + ".")
    pooled = [o for o in getattr(data.synthesis, "outcomes", []) if o.analysis is not None]
    if pooled:
        a = pooled[0].analysis
        method = {"DL": "DerSimonian-Laird", "PM": "Paule-Mandel", "REML": "REML"}[a.tau2_method]
        parts.append(f"Effects were pooled per outcome with {'random' if a.model == 'random' else 'common'}-effect "
                     f"models ({a.measure}; τ² by {method}{', Hartung-Knapp' if a.hksj else ''}); heterogeneity "
                     "is given as Cochran's Q, I² and τ². Analyses by leads (statsmodels), forest plots by matplotlib.")
    checked = [s for s in getattr(data.registry, "studies", []) if s.available]
    if getattr(data.registry, "studies", []):
        parts.append(f"{len(data.registry.studies)} included studies name a ClinicalTrials.gov record; "
                     f"{len(checked)} were compared with it (arms, sample size, primary outcome, time frames).")
    return " ".join(parts)


# --- formatting helpers ------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if float(value).is_integer() and abs(value) < 1e9 and digits == 0:
        return str(int(value))
    return f"{value:.{digits}f}"


def _count(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _value_text(value: Any) -> str:
    """A stored value as one line of text (results, arms, participants and plain values)."""
    if value is None:
        return "not reported"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "values" in value and "param_type" in value:  # a trial-results output
            denominators = value.get("denominators") or {}
            parts = []
            for v in value.get("values") or []:
                number = v.get("value") if v.get("value") is not None else "not reported"
                parts.append(f"{v.get('group_id')}: {number} of {_count(denominators.get(v.get('group_id')))}")
            frame = f"; time frame {value['time_frame']}" if value.get("time_frame") else ""
            return "; ".join(parts) + frame
        if isinstance(value.get("arms"), list):
            return _value_text(value["arms"])
        if "total" in value:
            groups = value.get("groups") or []
            inner = ", ".join(f"{g.get('name')}: {g.get('n')}" for g in groups if isinstance(g, dict))
            return f"total {value.get('total')}" + (f" ({inner})" if inner else "")
        if "value" in value and ("unit" in value or "number" in value):  # a participants value
            if value.get("value") is None:
                return "not reported"
            unit = value.get("unit") or ""
            return f"{value['value']} {unit}".strip()
        if "label" in value:
            return str(value["label"])
    if isinstance(value, list):
        texts = [_value_text(v) for v in value]
        return "; ".join(dict.fromkeys(texts))
    return json.dumps(value, ensure_ascii=False)[:300]


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


#: Characteristics shown in the table (the rest, and every full value, are under "Extracted values").
TABLE_FIELDS = ("design", "randomised N", "countries", "interventions", "comparators", "primary outcome",
                "follow-up")
HIDDEN_FIELDS = frozenset({"setting", "conditions", "funding", "registration"})


def _table_fields(studies: Sequence[dict[str, Any]]) -> list[str]:
    present = {r["field"] for s in studies for r in s["characteristics"]}
    ordered = [f for f in TABLE_FIELDS if f in present]
    ordered += sorted(f for f in present if f not in TABLE_FIELDS and f not in HIDDEN_FIELDS)
    return ordered


def _participants_row(study: dict[str, Any]) -> dict[str, Any] | None:
    rows = study["participants"]
    for r in rows:
        if r["field"].lower().startswith("overall number of participants") and r["field"].lower().endswith("total"):
            return r
    return rows[0] if rows else None


def _svg_inline(svg: str) -> str:
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    return re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)


CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1d;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #a8c8e8;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccd;padding:.3em .5em;
vertical-align:top;text-align:left}th{background:#eef3f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555;font-size:.9em}.ai{background:#fff4d6;border:1px solid #e0c060;border-radius:3px;padding:0 .3em;
font-size:.85em}.warn{color:#8a1c1c;font-weight:bold}.ok{color:#1c6b2a}.info{color:#555}
blockquote{margin:.3em 0 .6em 1em;padding:.2em .6em;border-left:3px solid #a8c8e8;background:#f7f9fc}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}.pooled{font-size:1.05em;font-weight:bold}
a{color:#1a4f8b}:target{background:#fff4d6}
"""


# --- HTML --------------------------------------------------------------------------------------


def _html_question(data: ReportData) -> list[str]:
    out = ['<h2 id="question">Question</h2>']
    q = data.question or {}
    rows = [(k, q.get(k)) for k in ("title", "population", "intervention", "comparison", "outcome", "study_design")
            if q.get(k)]
    if rows:
        out.append("<table>" + "".join(f"<tr><th>{_e(k.replace('_', ' ').capitalize())}</th><td>{_e(v)}</td></tr>"
                                       for k, v in rows) + "</table>")
    else:
        out.append("<p>No review question (PICO) is stored in the project.</p>")
    if data.criteria:
        out.append(f"<p>Eligibility criteria (version {data.criteria[0]['version']}):</p><ol>")
        out.extend(f"<li><b>{_e(c['kind'])}</b>: {_e(c['text'])}</li>" for c in data.criteria)
        out.append("</ol>")
    return out


def _html_searches(data: ReportData) -> list[str]:
    out = ['<h2 id="searches">Searches</h2>']
    if not data.searches:
        return [*out, "<p>No searches or imports are recorded.</p>"]
    out.append("<table><tr><th>#</th><th>source</th><th>query or file</th><th>format</th><th>records</th>"
               "<th>run</th><th>by</th><th>SHA-256 of the response/file</th></tr>")
    for s in data.searches:
        what = s["query"] or s["file_name"] or ""
        executed = s["executed_at"].strftime("%Y-%m-%d %H:%M") if s.get("executed_at") else ""
        out.append(f"<tr><td>{s['id']}</td><td>{_e(s['source'])} ({_e(s['kind'])})</td><td>{_e(what)}</td>"
                   f"<td>{_e(s['format'])}</td><td class=n>{s['count']}</td><td>{_e(executed)}</td>"
                   f"<td>{_e(s['created_by'])}</td><td><code>{_e((s['response_sha256'] or '')[:16])}</code></td></tr>")
    out.append("</table>")
    return out


def _html_screening(data: ReportData) -> list[str]:
    out = ['<h2 id="prisma">PRISMA 2020 flow diagram</h2>', f"<figure>{_svg_inline(data.prisma_svg)}</figure>",
           '<h2 id="screening">Screening</h2>']
    names = {"title_abstract": "Title and abstract", "full_text": "Full text"}
    out.append("<table><tr><th>stage</th><th>decided</th><th>include</th><th>exclude</th><th>maybe</th>"
               "<th>by people</th><th>by AI (unattended)</th><th>person and AI both decided</th>"
               "<th>agreement</th><th>Cohen's κ</th></tr>")
    for stage, s in data.screening["stages"].items():
        labels = s["labels"]
        agreement = f"{s['agreement']:.0%}" if s["agreement"] is not None else "–"
        kappa = f"{s['kappa']:.2f}" if s["kappa"] is not None else "–"
        out.append(f"<tr><td>{names[stage]}</td><td class=n>{s['decided']}</td>"
                   f"<td class=n>{labels.get('include', 0)}</td><td class=n>{labels.get('exclude', 0)}</td>"
                   f"<td class=n>{labels.get('maybe', 0)}</td><td class=n>{s['by_kind'].get('human', 0)}</td>"
                   f"<td class=n>{s['by_kind'].get('ai', 0)}</td><td class=n>{s['both']}</td>"
                   f"<td class=n>{agreement}</td><td class=n>{kappa}</td></tr>")
    out.append("</table>")
    out.append(f"<p>{data.screening['assessments']} AI assessments of {data.screening['assessed_records']} records"
               f"{' by ' + _e('; '.join(data.screening['assessment_engines'])) if data.screening['assessment_engines'] else ''}."
               " Decisions marked <span class=ai>AI</span> below were made by the AI unattended; they are not "
               "reviewers' decisions.</p>")
    return out


def _html_characteristics(data: ReportData) -> list[str]:
    out = ['<h2 id="characteristics">Included studies</h2>']
    if not data.studies:
        return [*out, "<p>No study is included yet.</p>"]
    fields = _table_fields(data.studies)
    head = "".join(f"<th>{_e(f)}</th>" for f in fields)
    out.append(f"<table><tr><th>study</th><th>identifiers</th><th>included by</th><th>full text</th>{head}"
               "<th>arms</th><th>participants</th></tr>")
    for s in data.studies:
        ids = ", ".join(x for x in [s["pmid"] and f"PMID {s['pmid']}", s["pmcid"], s["doi"], *s["nct_ids"]] if x)
        by = _e(s["decided_by"]) + (" <span class=ai>AI</span>" if "(ai)" in s["decided_by"] else "")
        chars = {r["field"]: r for r in s["characteristics"]}
        cells = "".join(_html_value_cell(chars.get(f)) for f in fields)
        arms = _html_value_cell(s["arms"][0] if s["arms"] else None)
        parts = _html_value_cell(_participants_row(s))
        out.append(f"<tr><td><a href=\"#study-{_e(s['study_id'])}\">{_e(s['label'])}</a><br>"
                   f"<span class=meta>{_e(s['title'])}</span></td><td>{_e(ids)}</td><td>{by} ({s['stage']})</td>"
                   f"<td>{_e(', '.join(s['documents']) or 'none')}</td>{cells}{arms}{parts}</tr>")
    out.append("</table>")
    return out


def _html_value_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "<td>–</td>"
    return f"<td><a href=\"#x{row['id']}\">{_e(_short(_value_text(row['value'])))}</a></td>"


def _arm_link(effect: Any, arm: str, name: str, rows: dict[str, int]) -> str:
    value = effect.inputs.get(f"{arm}.{name}")
    text = _count(value)
    row = rows.get(effect.study_id)
    return f'<a href="#x{row}">{text}</a>' if row is not None else text


def _html_results(data: ReportData, plots: dict[str, str]) -> list[str]:
    out = ['<h2 id="results">Results</h2>']
    outcomes = getattr(data.synthesis, "outcomes", [])
    if not outcomes:
        return [*out, "<p>No trial results have been extracted yet.</p>"]
    for o in outcomes:
        out.append(f'<h3 id="outcome-{_e(o.slug)}">{_e(o.outcome)}</h3>')
        a = o.analysis
        if a is None:
            out.append(f"<p>Not pooled: {_e(o.error)}.</p>")
        else:
            p = a.primary
            h = a.heterogeneity
            d = 3 if a.measure == "RD" else 2
            out.append(f'<p class=pooled id="pooled-{_e(o.slug)}">{_e(a.measure)} {p.display_estimate:.{d}f} '
                       f"[{p.display_ci_lower:.{d}f}, {p.display_ci_upper:.{d}f}], p = {p.p_value:.3g} "
                       f"({'random' if p.model == 'random' else 'common'} effect, {_e(p.method)}; "
                       f"{len(a.studies)} studies)</p>")
            i2 = f"{h.i2:.0f}%" if h.i2 is not None else "–"
            out.append(f"<p>Heterogeneity: Q = {h.q:.2f} (df {h.df}"
                       f"{f', p = {h.p_value:.3g}' if h.p_value is not None else ''}), I² = {i2}, "
                       f"τ² = {h.tau2:.4f}. Common-effect estimate {a.fixed.display_estimate:.{d}f} "
                       f"[{a.fixed.display_ci_lower:.{d}f}, {a.fixed.display_ci_upper:.{d}f}].</p>")
            if o.slug in plots:
                out.append(f"<figure>{_svg_inline(plots[o.slug])}</figure>")
            weights = {w.study_id: w.weight for w in p.weights}
            binary = a.measure in ("RR", "OR", "RD")
            cols = ("events", "total") if binary else ("mean", "sd", "n")
            head = "".join(f"<th>{_e(a.treatment_label)} {c}</th>" for c in cols) + \
                "".join(f"<th>{_e(a.control_label)} {c}</th>" for c in cols)
            out.append(f"<table><tr><th>study</th>{head}<th>{_e(a.measure)} [95% CI]</th><th>weight</th></tr>")
            for e in a.studies:
                cells = "".join(f"<td class=n>{_arm_link(e, 'treatment', c, o.rows)}</td>" for c in cols)
                cells += "".join(f"<td class=n>{_arm_link(e, 'control', c, o.rows)}</td>" for c in cols)
                out.append(f"<tr><td><a href=\"#study-{_e(e.study_id)}\">{_e(e.label)}</a></td>{cells}"
                           f"<td class=n><a href=\"#study-{_e(e.study_id)}\">{e.display_estimate:.{d}f} "
                           f"[{e.display_ci_lower:.{d}f}, {e.display_ci_upper:.{d}f}]</a></td>"
                           f"<td class=n>{weights.get(e.study_id, 0):.1f}%</td></tr>")
            out.append("</table>")
            for ex in a.excluded:
                out.append(f"<p class=info>Left out of the pooling: {_e(ex.label)}: {_e(ex.reason)}</p>")
        for sk in o.skipped:
            out.append(f"<p class=info>Not pooled: <a href=\"#x{sk.extraction_id}\">record {sk.record_id}</a>: "
                       f"{_e(sk.reason)}</p>")
    return out


def _html_provenance(data: ReportData) -> list[str]:
    out = ['<h2 id="provenance">Extracted values and their quotes</h2>',
           "<p>Each value as it stands (a reviewer's value replaces the AI's proposal), the quotes it was read "
           "from with their character offsets in the full text, and the model call behind it.</p>"]
    if not data.studies:
        return [*out, "<p>None yet.</p>"]
    for s in data.studies:
        out.append(f'<h3 id="study-{_e(s["study_id"])}">{_e(s["label"])} <span class=meta>record '
                   f'{s["record_id"]}</span></h3>')
        rows = s["characteristics"] + s["arms"] + s["participants"] + s["results"]
        if not rows:
            out.append("<p>Nothing extracted yet.</p>")
        for r in rows:
            origin = "<span class=ai>AI proposal</span>" if r["origin"] == "ai" else f"{_e(r['status'])} by {_e(r['actor'])}"
            call = f"call {r['call_id']} ({_e(r.get('engine'))}, {_e(r.get('model'))})" if r.get("call_id") else "no model call"
            doc = data.documents.get(r["document_id"], "") if r.get("document_id") is not None else ""
            out.append(f'<div id="x{r["id"]}"><p><b>{_e(r["field"])}</b>: {_e(_value_text(r["value"]))} '
                       f'<span class=meta>[value {r["id"]}; {origin}; {call}{"; " + _e(doc) if doc else ""}]</span></p>')
            for ev in r.get("evidence") or []:
                out.append(f"<blockquote>{_e(ev.get('quote'))} <span class=meta>(chars {ev.get('start')}–"
                           f"{ev.get('end')})</span></blockquote>")
            out.append("</div>")
    return out


def _html_registry(data: ReportData) -> list[str]:
    out = ['<h2 id="registry">Registry cross-check (ClinicalTrials.gov)</h2>']
    studies = getattr(data.registry, "studies", [])
    if not studies:
        return [*out, "<p>No included study names a ClinicalTrials.gov record.</p>"]
    out.append(f"<p>{data.registry.discrepancies} discrepancies flagged.</p>")
    for s in studies:
        out.append(f"<h3>{_e(s.nct_id)} <span class=meta>record {s.record_id}</span></h3>")
        if not s.available:
            out.append(f"<p class=info>{_e(s.note)}</p>")
            continue
        out.append("<table><tr><th>check</th><th>result</th><th>publication</th><th>registry</th></tr>")
        for f in s.findings:
            cls = {"warning": "warn", "ok": "ok", "info": "info"}[f.severity]
            extracted = _e(_value_text(f.extracted))
            if f.extraction_id is not None:
                extracted = f'<a href="#x{f.extraction_id}">{extracted}</a>'
            out.append(f"<tr><td>{_e(f.kind.replace('_', ' '))}</td><td class={cls}>{_e(f.message)}</td>"
                       f"<td>{extracted}</td><td>{_e(_value_text(f.registered))}</td></tr>")
        out.append("</table>")
    return out


def _included_text(data: ReportData) -> str:
    full = sum(1 for s in data.studies if s["stage"] == "full text")
    partial = len(data.studies) - full
    if not partial:
        return f"{full} studies included."
    return (f"{len(data.studies)} studies included: {full} after full-text assessment, {partial} at title and "
            "abstract only (their full texts are not yet assessed).")


def _html(data: ReportData, plots: dict[str, str]) -> str:
    body = [f"<h1>{_e(data.name)}</h1>",
            f"<p class=meta>Systematic review report generated by leads on {_e(data.generated)}. "
            f"{_e(_included_text(data))}</p>",
            '<nav><a href="#question">Question</a> · <a href="#searches">Searches</a> · <a href="#prisma">PRISMA</a>'
            ' · <a href="#screening">Screening</a> · <a href="#characteristics">Studies</a> · '
            '<a href="#results">Results</a> · <a href="#registry">Registry</a> · <a href="#methods">Methods</a> · '
            '<a href="#provenance">Provenance</a></nav>']
    body += _html_question(data) + _html_searches(data) + _html_screening(data) + _html_characteristics(data)
    body += _html_results(data, plots) + _html_registry(data)
    body += ['<h2 id="methods">Methods</h2>', f"<p>{_e(data.methods)}</p>"]
    body += _html_provenance(data)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(data.name)}: review report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- Markdown ----------------------------------------------------------------------------------


def _md_escape(text: Any) -> str:
    return str("" if text is None else text).replace("|", "\\|").replace("\n", " ")


def _markdown(data: ReportData, plot_files: dict[str, str]) -> str:
    out = [f"# {data.name}", "", f"Systematic review report generated by leads on {data.generated}. "
           f"{_included_text(data)}", "", "## Question", ""]
    q = data.question or {}
    for k in ("title", "population", "intervention", "comparison", "outcome", "study_design"):
        if q.get(k):
            out.append(f"- **{k.replace('_', ' ').capitalize()}**: {q[k]}")
    if data.criteria:
        out += ["", f"Eligibility criteria (version {data.criteria[0]['version']}):", ""]
        out += [f"{i}. **{c['kind']}**: {c['text']}" for i, c in enumerate(data.criteria, 1)]
    out += ["", "## Searches", ""]
    if data.searches:
        out += ["| # | source | query or file | format | records | run | by | SHA-256 |", "|---|---|---|---|---|---|---|---|"]
        for s in data.searches:
            executed = s["executed_at"].strftime("%Y-%m-%d %H:%M") if s.get("executed_at") else ""
            out.append(f"| {s['id']} | {s['source']} ({s['kind']}) | {_md_escape(s['query'] or s['file_name'])} | "
                       f"{s['format'] or ''} | {s['count']} | {executed} | {s['created_by']} | "
                       f"`{(s['response_sha256'] or '')[:16]}` |")
    else:
        out.append("No searches or imports are recorded.")
    out += ["", "## PRISMA 2020 flow diagram", "", "![PRISMA 2020 flow diagram](prisma.svg)", "", "## Screening", "",
            "| stage | decided | include | exclude | maybe | by people | by AI (unattended) | both decided | "
            "agreement | Cohen's κ |", "|---|---|---|---|---|---|---|---|---|---|"]
    for stage, s in data.screening["stages"].items():
        labels = s["labels"]
        agreement = f"{s['agreement']:.0%}" if s["agreement"] is not None else "–"
        kappa = f"{s['kappa']:.2f}" if s["kappa"] is not None else "–"
        out.append(f"| {stage.replace('_', ' ')} | {s['decided']} | {labels.get('include', 0)} | "
                   f"{labels.get('exclude', 0)} | {labels.get('maybe', 0)} | {s['by_kind'].get('human', 0)} | "
                   f"{s['by_kind'].get('ai', 0)} | {s['both']} | {agreement} | {kappa} |")
    out += ["", f"{data.screening['assessments']} AI assessments of {data.screening['assessed_records']} records. "
            "Decisions by `ai:` actors were made by the AI unattended; they are not reviewers' decisions.", "",
            "## Included studies", ""]
    if data.studies:
        fields = _table_fields(data.studies)
        out.append("| study | identifiers | included by | full text | " + " | ".join(fields)
                   + (" | " if fields else "") + "arms | participants |")
        out.append("|" + "---|" * (6 + len(fields)))
        for s in data.studies:
            ids = ", ".join(x for x in [s["pmid"] and f"PMID {s['pmid']}", s["pmcid"], s["doi"], *s["nct_ids"]] if x)
            chars = {r["field"]: r for r in s["characteristics"]}
            cells = [_md_value(chars.get(f)) for f in fields]
            cells += [_md_value(s["arms"][0] if s["arms"] else None),
                      _md_value(_participants_row(s))]
            out.append(f"| [{_md_escape(s['label'])}](#study-{s['study_id']}) | {ids} | {s['decided_by']} "
                       f"({s['stage']}) | {', '.join(s['documents']) or 'none'} | " + " | ".join(cells) + " |")
    else:
        out.append("No study is included yet.")
    out += ["", "## Results", ""]
    outcomes = getattr(data.synthesis, "outcomes", [])
    if not outcomes:
        out.append("No trial results have been extracted yet.")
    for o in outcomes:
        out += [f"### {o.outcome}", ""]
        a = o.analysis
        if a is None:
            out.append(f"Not pooled: {o.error}.")
        else:
            p, h = a.primary, a.heterogeneity
            d = 3 if a.measure == "RD" else 2
            i2 = f"{h.i2:.0f}%" if h.i2 is not None else "–"
            out += [f"**{a.measure} {p.display_estimate:.{d}f} [{p.display_ci_lower:.{d}f}, {p.display_ci_upper:.{d}f}]**, "
                    f"p = {p.p_value:.3g} ({p.model} effects, {p.method}; {len(a.studies)} studies). Heterogeneity: "
                    f"Q = {h.q:.2f} (df {h.df}), I² = {i2}, τ² = {h.tau2:.4f}.", ""]
            if o.slug in plot_files:
                out += [f"![Forest plot: {o.outcome}]({plot_files[o.slug]})", ""]
            binary = a.measure in ("RR", "OR", "RD")
            cols = ("events", "total") if binary else ("mean", "sd", "n")
            weights = {w.study_id: w.weight for w in p.weights}
            out.append("| study | " + " | ".join(f"{a.treatment_label} {c}" for c in cols) + " | "
                       + " | ".join(f"{a.control_label} {c}" for c in cols) + f" | {a.measure} [95% CI] | weight |")
            out.append("|" + "---|" * (3 + 2 * len(cols)))
            for e in a.studies:
                row = o.rows.get(e.study_id)
                nums = [f"[{_count(e.inputs.get(f'{arm}.{c}'))}](#x{row})" for arm in ("treatment", "control")
                        for c in cols]
                out.append(f"| [{_md_escape(e.label)}](#study-{e.study_id}) | " + " | ".join(nums) +
                           f" | {e.display_estimate:.{d}f} [{e.display_ci_lower:.{d}f}, {e.display_ci_upper:.{d}f}] | "
                           f"{weights.get(e.study_id, 0):.1f}% |")
            for ex in a.excluded:
                out.append(f"\nLeft out of the pooling: {ex.label}: {ex.reason}")
        for sk in o.skipped:
            out.append(f"\nNot pooled: [record {sk.record_id}](#x{sk.extraction_id}): {sk.reason}")
        out.append("")
    out += ["## Registry cross-check (ClinicalTrials.gov)", ""]
    studies = getattr(data.registry, "studies", [])
    if not studies:
        out.append("No included study names a ClinicalTrials.gov record.")
    else:
        out.append(f"{data.registry.discrepancies} discrepancies flagged.")
    for s in studies:
        out += ["", f"### {s.nct_id} (record {s.record_id})", ""]
        if not s.available:
            out.append(s.note)
            continue
        out += ["| check | result | publication | registry |", "|---|---|---|---|"]
        for f in s.findings:
            mark = {"warning": "**DISCREPANCY** ", "ok": "", "info": ""}[f.severity]
            extracted = _md_escape(_value_text(f.extracted))
            if f.extraction_id is not None:
                extracted = f"[{extracted}](#x{f.extraction_id})"
            out.append(f"| {f.kind.replace('_', ' ')} | {mark}{_md_escape(f.message)} | {extracted} | "
                       f"{_md_escape(_value_text(f.registered))} |")
    out += ["", "## Methods", "", data.methods or "Nothing has been done in this project yet.", "",
            "## Extracted values and their quotes", ""]
    for s in data.studies:
        out += [f'### <a id="study-{s["study_id"]}"></a>{s["label"]} (record {s["record_id"]})', ""]
        for r in s["characteristics"] + s["arms"] + s["participants"] + s["results"]:
            origin = "AI proposal" if r["origin"] == "ai" else f"{r['status']} by {r['actor']}"
            call = f"call {r['call_id']} ({r.get('engine')}, {r.get('model')})" if r.get("call_id") else "no model call"
            out.append(f'- <a id="x{r["id"]}"></a>**{r["field"]}**: {_md_escape(_value_text(r["value"]))} '
                       f"(value {r['id']}; {origin}; {call})")
            for ev in r.get("evidence") or []:
                out.append(f"  > {_md_escape(ev.get('quote'))} (chars {ev.get('start')}–{ev.get('end')})")
        out.append("")
    return "\n".join(out) + "\n"


def _md_value(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    return f"[{_md_escape(_short(_value_text(row['value'])))}](#x{row['id']})"


# --- entry point -------------------------------------------------------------------------------


def build_report(project: Project, out_dir: str | Path, formats: Sequence[str] = FORMATS, *,
                 synthesis: Any = None, registry: Any = None, spec: Any = None) -> list[Path]:
    """Write the report into ``out_dir``: ``report.html`` (self-contained) and/or ``report.md``
    with ``prisma.svg`` and one ``forest-<outcome>.svg`` per pooled outcome. Returns the paths."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ReportError(f"unknown report format {unknown[0] if unknown else '(none)'}; use html and/or md")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    data = report_data(project, synthesis=synthesis, registry=registry, spec=spec)
    from leads.synthesis.forest import forest_plot

    plots: dict[str, str] = {}
    plot_files: dict[str, str] = {}
    written: list[Path] = []
    for o in getattr(data.synthesis, "outcomes", []):
        if o.analysis is None:
            continue
        svg_path = directory / f"forest-{o.slug}.svg"
        text = forest_plot(o.analysis, None, fmt="svg", link_template="#study-{study_id}",
                           title=f"{o.outcome}: {o.analysis.measure} ({o.analysis.model} effects)").decode("utf-8")
        # each study row goes straight to its extracted results and their quotes
        for study_id, row_id in o.rows.items():
            text = text.replace(f'href="#study-{study_id}"', f'href="#x{row_id}"')
        svg_path.write_text(text, encoding="utf-8")
        plots[o.slug] = text
        plot_files[o.slug] = svg_path.name
        written.append(svg_path)
    prisma = directory / "prisma.svg"
    prisma.write_text(data.prisma_svg, encoding="utf-8")
    written.append(prisma)
    if "html" in formats:
        path = directory / "report.html"
        path.write_text(_html(data, plots), encoding="utf-8")
        written.insert(0, path)
    if "md" in formats:
        path = directory / "report.md"
        path.write_text(_markdown(data, plot_files), encoding="utf-8")
        written.insert(0 if "html" not in formats else 1, path)
    return written
