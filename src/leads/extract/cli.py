"""``leads extract TASK FILE... [task options] [--engine E] --json`` (contract in docs/design.md).

TASK is one of ``pico``, ``characteristics``, ``arms``, ``participants``, ``results``. FILE is
plain text, Markdown, PMC XML or PDF, read by :func:`leads.documents.read_document`; every
offset in the output points into the document's text as leads reads it (for plain text, the
file's own characters). Several FILEs print JSON Lines, one object per file with a ``"file"``
key; ``results --queries Q.jsonl`` answers one (file, intervention, comparator, outcome)
question per line, in order. Models are loaded once per process.

With ``-p PROJECT`` the tasks run over the project's included studies instead (TASK is one task
or ``all``, no FILE): see :mod:`leads.extract.project`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["extract_command", "extract_file", "extractions_command"]

TASK_NAMES = ("pico", "characteristics", "arms", "participants", "results")

# The built-in characteristics asked for when no --field is given (issue: study characteristics).
DEFAULT_FIELDS = (
    "design: study design (e.g. randomised controlled trial, parallel group)",
    "randomised N: number of participants randomised",
    "countries: countries where the study was conducted",
    "setting: where participants were recruited (hospitals, clinics, community)",
    "conditions: condition or disease studied",
    "interventions: interventions given in the experimental arms",
    "comparators: control or comparator treatments",
    "primary outcome: the primary outcome measure",
    "follow-up: length of follow-up",
    "funding: funding source",
    "registration: trial registration ids",
)


def _evidence(items: list[Any]) -> list[dict[str, Any]]:
    return [e.model_dump() for e in items]


def extract_file(task: str, path: Path | str, *, engine: Any, intervention: str | None = None,
                 comparator: str | None = None, outcome: str | None = None,
                 outcome_type: str | None = None, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run one extraction task on one file; the DESIGN.md JSON object for it."""
    from leads.documents import read_document
    from leads.tasks import TASKS
    from leads.tasks.extraction import ArmsInput, CharacteristicsInput, FieldSpec, PicoInput

    document = read_document(path)
    text = document.text
    if not text.strip():
        raise LeadsError(f"{path}: no text to extract from")
    out: dict[str, Any]
    if task == "pico":
        result = engine.run(TASKS["pico"], PicoInput(text=text))
        out = {"spans": [s.model_dump() for s in result.output.spans]}
    elif task == "arms":
        result = engine.run(TASKS["arms"], ArmsInput(text=text))
        out = {"arms": [{**a.model_dump(exclude={"evidence", "unsupported_quotes"}),
                         "evidence": _evidence(a.evidence)} for a in result.output.arms]}
    elif task == "characteristics":
        specs = [FieldSpec.parse(f) for f in (fields or DEFAULT_FIELDS)]
        result = engine.run(TASKS["characteristics"], CharacteristicsInput(text=text, fields=specs))
        out = {"fields": [{"name": f.name, "value": f.value, "evidence": _evidence(f.evidence),
                           "unsupported_quotes": f.unsupported_quotes} for f in result.output.fields]}
    elif task == "participants":
        out = _participants(text, engine)
        result = None
    elif task == "results":
        if not (intervention and comparator and outcome):
            raise click.UsageError("results needs --intervention, --comparator and --outcome (or --queries)")
        from leads.extract.results import results_contract, results_input

        inp = results_input(document, intervention=intervention, comparator=comparator, outcome=outcome,
                            outcome_type=outcome_type)  # type: ignore[arg-type]
        result = engine.run(TASKS["results"], inp)
        out = results_contract(result.output, intervention="intervention", comparator="comparator")
    else:  # pragma: no cover - click restricts TASK
        raise click.UsageError(f"unknown task {task!r}")
    if result is not None:
        out["engine"], out["model"], out["call_id"] = result.engine, result.model, result.call_id
    return out


def _participants(text: str, engine: Any) -> dict[str, Any]:
    """Total and per-arm N (plus age and sex where reported), each with its evidence."""
    if engine.name == "classic":
        from leads.extract.participants import describe_participants

        summary = describe_participants(text)
        data = summary.model_dump()
        data["engine"], data["model"], data["call_id"] = "classic", summary.version, None
        return data
    # LLM engines: the arms first, then the participant counts per arm (ClinicalTrials.gov's
    # baseline "Overall Number of Participants" measure).
    from leads.tasks import TASKS
    from leads.tasks.extraction import ArmsInput, Group, ParticipantsInput

    arms = engine.run(TASKS["arms"], ArmsInput(text=text)).output.arms
    groups = [Group(id=f"BG{i:03d}", title=a.label[:300], description=a.description[:1000])
              for i, a in enumerate(arms)] or [Group(id="BG000", title="All participants")]
    result = engine.run(TASKS["participants"], ParticipantsInput(
        text=text, measure="Overall Number of Participants", groups=groups))
    by_group = {v.group_id: v for v in result.output.values}
    out_groups = []
    for group in groups:
        value = by_group.get(group.id)
        number = getattr(value, "number", None) if value else None
        out_groups.append({"name": group.title, "n": int(number) if number is not None else None,
                           "evidence": _evidence(value.evidence) if value else []})
    counts = [g["n"] for g in out_groups if g["n"] is not None]
    return {"total": sum(counts) if counts and len(counts) == len(out_groups) else None,
            "groups": out_groups, "engine": result.engine, "model": result.model, "call_id": result.call_id}


def _queries(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                query = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LeadsError(f"{path}: line {number}: not JSON ({exc.msg})") from None
            missing = [k for k in ("file", "intervention", "comparator", "outcome") if not query.get(k)]
            if missing:
                raise LeadsError(f"{path}: line {number}: missing {', '.join(missing)}")
            yield query


@click.command("extract")
@click.argument("task", type=click.Choice((*TASK_NAMES, "all")))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--project", "project_location", metavar="PROJECT",
              help="Extract over this project's included studies with documents, storing every value "
                   "(TASK: one task or 'all'; no FILE).")
@click.option("--engine", "engine_name", default=None, help="Engine (default: the configured one, else classic).")
@click.option("--intervention", help="results: the intervention arm, as the paper names it.")
@click.option("--comparator", help="results: the comparator arm.")
@click.option("--outcome", help="results: the outcome.")
@click.option("--outcome-type", type=click.Choice(["binary", "continuous"]),
              help="results: the outcome's type, when known.")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="results: JSON Lines of {file, intervention, comparator, outcome}; answers in order.")
@click.option("--field", "fields", multiple=True,
              help="characteristics: a field as 'name: description' (repeatable; default: the built-ins; "
                   "with -p: added to the built-ins).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (JSON Lines for several files or --queries; with -p the run's counts).")
def extract_command(task: str, files: tuple[Path, ...], project_location: str | None, engine_name: str | None,
                    intervention: str | None, comparator: str | None, outcome: str | None,
                    outcome_type: str | None, queries: Path | None, fields: tuple[str, ...], as_json: bool) -> None:
    """Extract TASK (pico, characteristics, arms, participants, results) from FILES, every value
    with the quote it came from; or, with -p PROJECT, over the project's included studies."""
    from leads.engines import get_engine

    if project_location is not None:
        _extract_project(project_location, task, files=files, queries=queries, engine_name=engine_name,
                         intervention=intervention, comparator=comparator, outcome=outcome,
                         outcome_type=outcome_type, fields=fields, as_json=as_json)
        return
    if task == "all":
        raise click.UsageError("TASK 'all' is for a project (-p PROJECT); give one task for FILES")
    if queries is not None and task != "results":
        raise click.UsageError("--queries is for the results task")
    if not files and queries is None:
        raise click.UsageError("give at least one FILE (or --queries for results)")
    engine = get_engine(engine_name)
    jobs: list[tuple[Path, dict[str, Any]]]
    if queries is not None:
        jobs = [(Path(q["file"]) if Path(q["file"]).is_absolute() else queries.parent / q["file"],
                 {"intervention": q["intervention"], "comparator": q["comparator"], "outcome": q["outcome"],
                  "outcome_type": q.get("outcome_type")}) for q in _queries(queries)]
    else:
        jobs = [(f, {"intervention": intervention, "comparator": comparator, "outcome": outcome,
                     "outcome_type": outcome_type}) for f in files]
    many = len(jobs) > 1 or queries is not None
    for path, options in jobs:
        out = extract_file(task, path, engine=engine, fields=fields, **options)
        if many:
            out = {"file": str(path), **out}
        if as_json:
            sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=None if many else 2) + "\n")
        else:
            click.echo(_human(task, path, out))


def _extract_project(location: str, task: str, *, files: tuple[Path, ...], queries: Path | None,
                     engine_name: str | None, intervention: str | None, comparator: str | None,
                     outcome: str | None, outcome_type: str | None, fields: tuple[str, ...],
                     as_json: bool) -> None:
    """``leads extract TASK -p PROJECT``: run_extraction over the included studies."""
    from leads.extract.project import EXTRACTION_TASKS, run_extraction
    from leads.project import Project

    if files:
        raise click.UsageError("with -p PROJECT the documents come from the project: give no FILE")
    if queries is not None:
        raise click.UsageError("--queries is for files; with -p give --outcome, --intervention and --comparator")
    if task not in (*EXTRACTION_TASKS, "all"):
        raise click.UsageError(f"with -p, TASK is one of {', '.join(EXTRACTION_TASKS)} or all")
    outcomes: list[dict[str, Any]] = []
    if outcome or intervention or comparator:
        missing = [name for name, value in (("--outcome", outcome), ("--intervention", intervention),
                                            ("--comparator", comparator)) if not value]
        if missing:
            raise click.UsageError(f"an outcome needs --outcome, --intervention and --comparator (missing "
                                   f"{', '.join(missing)})")
        outcomes.append({"outcome": outcome, "intervention": intervention, "comparator": comparator,
                         "outcome_type": outcome_type})
    elif task == "results":
        raise click.UsageError("results needs --outcome, --intervention and --comparator")
    extra: dict[str, str] = {}
    for spec in fields:
        parsed = _parse_field(spec)
        extra[parsed[0]] = parsed[1]
    tasks = EXTRACTION_TASKS if task == "all" else (task,)
    with Project.open(location) as project:
        run = run_extraction(project, engine=engine_name, tasks=tasks, outcomes=outcomes, fields=extra or None,
                             progress=None)
    if as_json:
        sys.stdout.write(json.dumps(run.as_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        click.echo(run.summary())


def _parse_field(spec: str) -> tuple[str, str]:
    """``"name: description"`` → (name, description); a field needs a name."""
    name, _, description = spec.partition(":")
    if not name.strip():
        raise click.UsageError(f"--field {spec!r}: give it as 'name: description'")
    return name.strip(), description.strip()


EXTRACTION_COLUMNS = ("id", "record_id", "document_id", "task", "field", "value", "origin", "status", "actor",
                      "call_id", "engine", "model", "supersedes_id", "created_at", "evidence")


def _listing_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in EXTRACTION_COLUMNS}
    created = out.get("created_at")
    if created is not None and hasattr(created, "isoformat"):
        out["created_at"] = created.isoformat()
    out["evidence"] = list(row.get("evidence") or [])
    return out


@click.command("extractions")
@click.option("-p", "--project", "project_location", required=True, metavar="PROJECT",
              help="The review project (directory or database URL).")
@click.option("--task", type=click.Choice(("characteristics", "arms", "participants", "results", "pico")),
              help="Only this task's values.")
@click.option("--record", "record_ids", type=int, multiple=True, help="Only this record's values (repeatable).")
@click.option("--history", is_flag=True,
              help="Every row (AI proposals and each reviewer action), not only the standing values.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print CSV (value and evidence as JSON text in their cells).")
def extractions_command(project_location: str, task: str | None, record_ids: tuple[int, ...], history: bool,
                        as_json: bool, as_csv: bool) -> None:
    """List the extracted values of a project: the standing value per record, task and field (a
    reviewer's over the AI's), with its evidence and the call it came from."""
    import csv

    from leads.project import Project

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    with Project.open(project_location) as project:
        rows = [_listing_row(r) for r in project.extractions(record_ids=list(record_ids) or None, task=task,
                                                             history=history)]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=EXTRACTION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "value": json.dumps(row["value"], ensure_ascii=False),
                             "evidence": json.dumps(row["evidence"], ensure_ascii=False)})
    else:
        if not rows:
            click.echo("no extracted values")
        for row in rows:
            value = row["value"]
            shown = "not reported" if value is None else value if isinstance(value, str) else \
                json.dumps(value, ensure_ascii=False)
            if len(shown) > 100:
                shown = shown[:97] + "..."
            who = f"{row['origin']} {row['status']}"
            click.echo(f"record {row['record_id']}  {row['task']}  {row['field']}: {shown}  "
                       f"[{who}, {len(row['evidence'])} quotes]")


def _human(task: str, path: Path, out: dict[str, Any]) -> str:
    lines = [f"{path}: {task} ({out.get('engine')})"]
    if task == "pico":
        lines += [f"  {s['label']:<13} {s['text']}" for s in out["spans"]]
    elif task == "arms":
        lines += [f"  {a['type']:<20} {a['label']}: {', '.join(a['interventions'])}" for a in out["arms"]]
    elif task == "characteristics":
        lines += [f"  {f['name']}: {f['value'] if f['value'] is not None else 'not reported'}"
                  for f in out["fields"]]
    elif task == "participants":
        lines.append(f"  total: {out.get('total') if out.get('total') is not None else 'not reported'}")
        lines += [f"  {g['name']}: {g['n'] if g['n'] is not None else 'not reported'}" for g in out["groups"]]
    else:
        lines.append(f"  outcome type: {out.get('outcome_type')}")
        for arm in ("intervention", "comparator"):
            values = ", ".join(f"{k} {v}" for k, v in out[arm].items() if v is not None) or "not reported"
            lines.append(f"  {arm}: {values}")
    return "\n".join(lines)
