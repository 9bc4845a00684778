"""``leads criteria``, ``leads screen``, ``leads next`` and ``leads decide``: screening in a project.

Thin commands over :mod:`leads.screen.workflow`. The main CLI adds them with
``main.add_command(...)``; they open the project themselves (``-p``/``$LEADS_PROJECT``) and turn
a :class:`~leads.errors.LeadsError` into one clear line with exit status 1, so this module does
not import :mod:`leads.cli`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["criteria_group", "decide_command", "next_command", "screen_command"]


class _Command(click.Command):
    """Shows a LeadsError as one line (exit status 1), also when used outside ``leads``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            raise click.ClickException(str(exc)) from None


class _Group(click.Group):
    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadsError as exc:
            raise click.ClickException(str(exc)) from None


def _project_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-p", "--project", "project_path", envvar="LEADS_PROJECT", default=".", show_default=True,
        help="Project directory or database URL (or set LEADS_PROJECT).",
    )(f)


def _engine_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--engine-option", "engine_option", multiple=True, metavar="KEY=VALUE",
                     help="Engine setting, repeatable (e.g. model_path=... or base_url=...); values are "
                          "read as JSON when they parse, else as text. Settings also come from "
                          "project.toml [engines.NAME].")(f)
    return f


def _parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--engine-option")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


@contextmanager
def _open(project_path: str, actor: str | None = None) -> Iterator[Any]:
    from leads.project import Project

    project = Project.open(project_path, actor=actor)
    try:
        yield project
    finally:
        project.close()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# leads criteria
# ---------------------------------------------------------------------------------------------


@click.group("criteria", cls=_Group)
def criteria_group() -> None:
    """Show, set and version the eligibility criteria; draft them from the review question.

    Criteria are versioned: every change stores a new version and decisions record the version
    they were made under. I1, I2, ... name the inclusion criteria of a version and E1, E2, ...
    its exclusion criteria (use them with `leads decide --reason`).
    """


def _print_criteria(criteria: list[Any], header: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    console.print(header)
    table = Table("id", "kind", "PICO", "criterion", box=None)
    for c in criteria:
        table.add_row(c.label, c.kind, c.pico_element or "", escape(c.text))
    console.print(table)


def _show_version(project: Any, version: int | None, as_json: bool) -> None:
    from leads.screen.workflow import current_criteria

    criteria = current_criteria(project, version)
    if as_json:
        _echo_json({"version": criteria[0].version if criteria else None,
                    "criteria": [c.as_dict() for c in criteria]})
        return
    if not criteria:
        click.echo("No eligibility criteria yet: set them with `leads criteria set` or draft them "
                   "with `leads criteria generate`.")
        return
    info = next(v for v in project.criteria_versions() if v["version"] == criteria[0].version)
    note = f"; {info['note']}" if info.get("note") else ""
    _print_criteria(criteria, f"Criteria version {info['version']} (by {info['created_by']}, "
                              f"{info['created_at']:%Y-%m-%d %H:%M}{note})")


@criteria_group.command("show")
@_project_option
@click.option("--version", "version", type=int, help="Show this version (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the criteria as JSON.")
def criteria_show(project_path: str, version: int | None, as_json: bool) -> None:
    """Show the current criteria (or a given version) with their ids."""
    with _open(project_path) as project:
        _show_version(project, version, as_json)


@criteria_group.command("versions")
@_project_option
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def criteria_versions(project_path: str, as_json: bool) -> None:
    """List every criteria version: when, by whom, how many criteria, why."""
    from rich.markup import escape
    from rich.table import Table

    with _open(project_path) as project:
        versions = project.criteria_versions()
    if as_json:
        _echo_json(versions)
        return
    if not versions:
        click.echo("No eligibility criteria yet.")
        return
    table = Table("version", "criteria", "by", "created", "note", box=None)
    for v in versions:
        table.add_row(str(v["version"]), str(v["count"]), escape(v["created_by"]),
                      f"{v['created_at']:%Y-%m-%d %H:%M}", escape(v.get("note") or ""))
    _console().print(table)


def _criteria_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--note", help="Why this version was made (kept with it).")(f)
    f = click.option("--exclude", "exclusion", multiple=True, metavar="TEXT",
                     help="An exclusion criterion (repeatable).")(f)
    f = click.option("--include", "inclusion", multiple=True, metavar="TEXT",
                     help="An inclusion criterion (repeatable).")(f)
    f = click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Criteria file: TOML (inclusion/exclusion lists, e.g. a review spec), JSON, or "
                          "text with one criterion per line ('Exclusion:' lines or an 'Exclusion criteria' "
                          "heading for exclusion criteria).")(f)
    return f


def _specs_from(file: Path | None, inclusion: tuple[str, ...], exclusion: tuple[str, ...]) -> list[Any]:
    from leads.screen.criteria import CriteriaSpec, read_criteria_file

    specs = list(read_criteria_file(file)) if file is not None else []
    specs += [CriteriaSpec(text=text, kind="inclusion") for text in inclusion if text.strip()]
    specs += [CriteriaSpec(text=text, kind="exclusion") for text in exclusion if text.strip()]
    return specs


@criteria_group.command("set")
@_project_option
@_criteria_options
@click.option("--json", "as_json", is_flag=True, help="Print the stored criteria as JSON.")
def criteria_set(project_path: str, file: Path | None, inclusion: tuple[str, ...], exclusion: tuple[str, ...],
                 note: str | None, as_json: bool) -> None:
    """Replace the criteria with those of a file and/or options (a new version)."""
    from leads.screen.workflow import set_criteria

    specs = _specs_from(file, inclusion, exclusion)
    if not specs:
        raise click.UsageError("give --file and/or --include/--exclude")
    with _open(project_path) as project:
        version = set_criteria(project, specs, note=note)
        if not as_json:
            click.echo(f"Stored criteria version {version}")
        _show_version(project, version, as_json)


@criteria_group.command("add")
@_project_option
@_criteria_options
@click.option("--json", "as_json", is_flag=True, help="Print the stored criteria as JSON.")
def criteria_add(project_path: str, file: Path | None, inclusion: tuple[str, ...], exclusion: tuple[str, ...],
                 note: str | None, as_json: bool) -> None:
    """Add criteria to the current ones (a new version)."""
    from leads.screen.workflow import add_criteria

    specs = _specs_from(file, inclusion, exclusion)
    if not specs:
        raise click.UsageError("give --include/--exclude (or --file) with the criteria to add")
    with _open(project_path) as project:
        version = add_criteria(project, specs, note=note)
        if not as_json:
            click.echo(f"Stored criteria version {version}")
        _show_version(project, version, as_json)


@criteria_group.command("remove")
@click.argument("criterion_ids", nargs=-1, required=True)
@_project_option
@click.option("--note", help="Why this version was made (kept with it).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored criteria as JSON.")
def criteria_remove(criterion_ids: tuple[str, ...], project_path: str, note: str | None, as_json: bool) -> None:
    """Drop criteria (ids such as E1, or numbers) from the current ones (a new version)."""
    from leads.screen.workflow import remove_criteria

    with _open(project_path) as project:
        version = remove_criteria(project, list(criterion_ids), note=note)
        if not as_json:
            click.echo(f"Stored criteria version {version}")
        _show_version(project, version, as_json)


@criteria_group.command("generate")
@_project_option
@click.option("--engine", help="Engine that drafts the criteria (default: the project's, else classic: one "
                               "criterion per PICO element plus the study design).")
@_engine_options
@click.option("--title", help="Review title (stored with the question when PICO options are given).")
@click.option("--population", help="Population: store a new version of the review question first.")
@click.option("--intervention", help="Intervention: store a new version of the review question first.")
@click.option("--comparison", help="Comparison: store a new version of the review question first.")
@click.option("--outcome", help="Outcome: store a new version of the review question first.")
@click.option("--study-design", help="Study design: store a new version of the review question first.")
@click.option("--append", is_flag=True, help="Add the drafted criteria to the current ones instead of "
                                            "replacing them.")
@click.option("--dry-run", is_flag=True, help="Show the draft without storing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def criteria_generate(project_path: str, engine: str | None, engine_option: tuple[str, ...], title: str | None,
                      population: str | None, intervention: str | None, comparison: str | None,
                      outcome: str | None, study_design: str | None, append: bool, dry_run: bool,
                      as_json: bool) -> None:
    """Draft criteria from the project's review question (PICO) and store them as a new version."""
    from leads.screen.workflow import current_criteria, generate_criteria

    options = _parse_options(engine_option)
    given = {"title": title, "population": population, "intervention": intervention,
             "comparison": comparison, "outcome": outcome, "study_design": study_design}
    with _open(project_path) as project:
        if any(v for v in given.values()):
            if dry_run:
                raise click.UsageError("--dry-run does not store anything: give the question without it first, "
                                       "or leave out the PICO options")
            previous = project.question() or {}
            merged = {k: v if v is not None else previous.get(k) for k, v in given.items()}
            version = project.set_question(**merged)
            if not as_json:
                click.echo(f"Stored review question version {version}")
        result = generate_criteria(project, engine, append=append, store=not dry_run, engine_options=options)
        if as_json:
            _echo_json(result.as_dict())
            return
        source = f"{result.engine} ({result.model}), call {result.call_id}"
        if result.version is None:
            from leads.screen.criteria import criterion_labels
            from leads.screen.workflow import CriterionInfo

            labels = criterion_labels([c.kind for c in result.criteria])
            draft = [CriterionInfo(0, label, c.kind, c.text, c.pico_element, i, 0)
                     for i, (c, label) in enumerate(zip(result.criteria, labels, strict=True))]
            _print_criteria(draft, f"Draft from question version {result.question_version} by {source} "
                                   "(not stored):")
            return
        _print_criteria(current_criteria(project, result.version),
                        f"Stored criteria version {result.version}, drafted from question version "
                        f"{result.question_version} by {source}:")


# ---------------------------------------------------------------------------------------------
# leads screen
# ---------------------------------------------------------------------------------------------


@click.command("screen", cls=_Command)
@_project_option
@click.option("--engine", help="Engine for the per-criterion assessments (default: the project's, else classic).")
@_engine_options
@click.option("--limit", type=click.IntRange(min=0), help="Assess at most N records in this run, in ranking order.")
@click.option("--order", type=click.Choice(["rank", "id"]), default="rank", show_default=True,
              help="Which records --limit takes first: the ranking `leads next` follows, or record order.")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Records assessed at once (default: 1 for classic, 4 for model servers).")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True),
              help="At most this many model requests per second.")
@click.option("--auto-decide", is_flag=True,
              help="Also record unattended AI decisions where the verdicts settle it (exclude: an "
                   "inclusion criterion NO or an exclusion criterion YES; include: every inclusion "
                   "criterion YES). They are stored as AI decisions (actor ai:ENGINE), never as a person's.")
@click.option("--stage", type=click.Choice(["title_abstract", "full_text"]), default="title_abstract",
              show_default=True,
              help="title_abstract: records no person has screened; full_text: the attached full texts "
                   "(abstract and methods sections) of records included or marked maybe at title/abstract "
                   "that no person has decided at full text.")
@click.option("--budget", type=click.IntRange(min=200),
              help="Full text only: characters of abstract and methods read per paper (default: 6000 for "
                   "classic, up to 20000 for model servers).")
@click.option("--embeddings/--no-embeddings", default=True, show_default=True,
              help="First compute the records' MiniLM sentence embeddings, which the ranking uses "
                   "(once per set of records, then cached).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
def screen_command(project_path: str, engine: str | None, engine_option: tuple[str, ...], limit: int | None,
                   order: str, concurrency: int | None, rate_limit: float | None, auto_decide: bool,
                   stage: str, budget: int | None, embeddings: bool, as_json: bool) -> None:
    """Assess unscreened records against each eligibility criterion (AI suggestions).

    Runs the eligibility task on every record no person has screened yet (one per duplicate
    group) and stores, per criterion, the verdict (YES/PARTIAL/NO/UNCERTAIN), the rationale and
    the evidence sentences, with the engine, model, call and criteria version. Re-running
    continues where an interrupted run stopped and skips what is done; new criteria or another
    model assess again. With --stage full_text the same is done on the attached full texts, the
    evidence located in the document.
    """
    from leads.screen.workflow import run_screening

    if budget is not None and stage != "full_text":
        raise click.BadParameter("--budget applies to --stage full_text only", param_hint="--budget")
    options = _parse_options(engine_option)
    with _open(project_path) as project:
        run = run_screening(project, engine, limit=limit, order=order, concurrency=concurrency,
                            rate_limit=rate_limit, auto_decide=auto_decide, engine_options=options,
                            progress=False if as_json else None, stage=stage, budget=budget,
                            embeddings=embeddings and stage == "title_abstract")
    if as_json:
        _echo_json(run.as_dict())
    else:
        click.echo(run.summary())
    if run.failed:
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------------------------------------
# leads next
# ---------------------------------------------------------------------------------------------

_VERDICT_STYLE = {"YES": "bold green", "PARTIAL": "yellow", "NO": "bold red", "UNCERTAIN": "dim"}


def _highlighted(content: str, spans: list[tuple[int, int]]) -> Any:
    from rich.text import Text

    text = Text(content)
    for start, end in spans:
        if 0 <= start < end <= len(content):
            text.stylize("bold underline", start, end)
    return text


def _print_next(nxt: Any) -> None:
    from rich.markup import escape

    console = _console()
    r = nxt.record
    console.print(f"[bold]Record {nxt.record_id}[/]  {escape(r.display_id())}  {r.year or ''}   "
                  f"[dim]first of {nxt.remaining} still to screen ({nxt.mode} ranking, score {nxt.score:.3f})[/]")
    a = nxt.assessment
    spans = [(int(e["start"]), int(e["end"])) for v in (a.verdicts if a else []) for e in v.evidence]
    content = f"{r.title}\n\n{r.abstract or ''}" if r.title else (r.abstract or "")
    title_end = len(r.title) if r.title else 0
    body = _highlighted(content, spans)
    if title_end:
        body.stylize("bold", 0, title_end)
    console.print(body)
    if r.authors:
        console.print(f"[dim]{escape(', '.join(r.authors[:6]))}{' et al.' if len(r.authors) > 6 else ''}"
                      f"{' — ' + escape(r.journal) if r.journal else ''}[/]")
    console.print()
    if a is None:
        console.print("[yellow]No AI assessment yet[/]: run `leads screen` (or `leads next --assess`).")
    else:
        stale = " [yellow](made under an older criteria version)[/]" if nxt.stale else ""
        console.print(f"[bold]AI assessment[/] by {escape(a.engine)} ({escape(a.model or '?')}), call {a.call_id}, "
                      f"criteria version {a.criteria_version}: score {a.score:+.2f}{stale}")
        for v in a.verdicts:
            style = _VERDICT_STYLE.get(v.eligibility, "")
            kind = "exclusion " if v.kind == "exclusion" else ""
            console.print(f"  [bold]{v.label}[/] [{style}]{v.eligibility:<9}[/] {kind}{escape(v.text)}")
            if v.rationale:
                console.print(f"       [dim]{escape(v.rationale)}[/]")
            for e in v.evidence:
                console.print(f"       evidence: [italic]\"{escape(e['quote'])}\"[/]")
    if nxt.ai_decision is not None:
        d = nxt.ai_decision
        console.print(f"[yellow]Unattended AI decision[/] ({escape(d.get('actor') or 'ai')}): "
                      f"{d.get('label')} — {escape('; '.join(d.get('reasons') or []))}")
    s = nxt.stopping
    console.print()
    console.print(f"People screened {nxt.screened} of {s.n_records}; {nxt.relevant_found} relevant (include/maybe) "
                  f"so far. {nxt.assessed} records have AI assessments under criteria version "
                  f"{nxt.criteria_version}.")
    verdict = ("[green]the target is reached: screening may stop[/]" if s.stop
               else "keep screening")
    console.print(f"Stopping estimate ({s.target_recall:.0%} recall at {s.confidence:.0%} confidence): "
                  f"at most {s.remaining_upper_bound} relevant records left (about {s.remaining_estimate}); "
                  f"recall at least {s.recall_lower_bound:.0%}; {verdict}.")
    console.print(f"[dim]Decide: leads decide {nxt.record_id} include|exclude|maybe [--reason E1] [--note TEXT][/]")


_SHORT_LABELS = {"i": "include", "e": "exclude", "m": "maybe", "include": "include", "exclude": "exclude",
                 "maybe": "maybe"}
_PROMPT = ("Decision: i(nclude) / e(xclude) / m(aybe), then criterion ids and ': note' if any "
           "(e.g. 'e E1: prior fracture'); s(kip), q(uit)")


def _parse_answer(answer: str) -> tuple[str, list[str], str | None] | None:
    """``"e E1 E2: a note"`` -> ("exclude", ["E1", "E2"], "a note"); None when not a decision."""
    head, sep, note = answer.partition(":")
    tokens = head.replace(",", " ").split()
    if not tokens or tokens[0].lower() not in _SHORT_LABELS:
        return None
    return _SHORT_LABELS[tokens[0].lower()], tokens[1:], (note.strip() or None) if sep else None


def _interactive(project: Any, first: Any, *, seed: int, assess: bool, engine: str | None,
                 options: dict[str, Any], reviewer: str | None) -> None:
    """Show, ask, decide, re-rank: one process for a whole screening session."""
    from leads.screen.workflow import decide, next_record

    nxt = first
    skipped: set[int] = set()
    decided = 0
    while nxt is not None:
        _print_next(nxt)
        shown = time.monotonic()
        while True:
            answer = click.prompt(_PROMPT, default="", show_default=False).strip()
            if answer.lower() in ("q", "quit"):
                click.echo(f"{decided} decisions recorded in this session.")
                return
            if answer.lower() in ("s", "skip"):
                skipped.add(nxt.record_id)
                break
            parsed = _parse_answer(answer)
            if parsed is None:
                click.echo("Not understood. " + _PROMPT)
                continue
            label, reasons, note = parsed
            try:
                row = decide(project, nxt.record_id, label, reasons=reasons, note=note, reviewer=reviewer,
                             seconds_spent=round(time.monotonic() - shown, 1))
            except LeadsError as exc:
                click.echo(f"Error: {exc}")
                continue
            decided += 1
            click.echo(f"Recorded {label} for record {nxt.record_id} by {row['actor']}.")
            break
        click.echo()
        nxt = next_record(project, seed=seed, assess=assess, engine=engine, engine_options=options, skip=skipped)
    click.echo(f"No record left to screen{' (except those skipped)' if skipped else ''}; "
               f"{decided} decisions recorded in this session.")


@click.command("next", cls=_Command)
@_project_option
@click.option("--assess", is_flag=True, help="Assess the record first if it has no AI assessment under "
                                             "the current criteria.")
@click.option("--engine", help="Engine for --assess (default: the project's, else classic).")
@_engine_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the ranking model's sampling.")
@click.option("-i", "--interactive", is_flag=True,
              help="Screen in a loop: show the record, read the decision (e.g. 'e E1: note'), record it "
                   "with the time spent, re-rank and show the next one.")
@click.option("--reviewer", envvar="LEADS_USER", help="Who decides in --interactive mode (default: $LEADS_USER "
                                                      "or the OS user).")
@click.option("--json", "as_json", is_flag=True, help="Print the record, its assessment and the stopping "
                                                     "estimate as JSON.")
def next_command(project_path: str, assess: bool, engine: str | None, engine_option: tuple[str, ...], seed: int,
                 interactive: bool, reviewer: str | None, as_json: bool) -> None:
    """Show the next record to screen, with the AI's per-criterion assessment.

    The ranking starts from the criteria verdicts (YES 1, PARTIAL 0.5, UNCERTAIN 0, NO -1,
    averaged) and the similarity to the review question, and then learns from every decision
    people made. The stopping estimate says how many relevant records may be left.
    """
    from leads.screen.workflow import next_record

    if interactive and as_json:
        raise click.UsageError("--interactive and --json do not go together")
    options = _parse_options(engine_option)
    with _open(project_path) as project:
        nxt = next_record(project, seed=seed, assess=assess, engine=engine, engine_options=options)
        if nxt is None:
            from leads.screen.workflow import stopping_estimate

            if as_json:
                _echo_json({"record_id": None, "stopping": stopping_estimate(project).as_dict()})
            else:
                click.echo("Every record has been screened.")
            return
        if interactive:
            _interactive(project, nxt, seed=seed, assess=assess, engine=engine, options=options, reviewer=reviewer)
            return
    if as_json:
        _echo_json(nxt.as_dict())
    else:
        _print_next(nxt)


# ---------------------------------------------------------------------------------------------
# leads decide
# ---------------------------------------------------------------------------------------------


@click.command("decide", cls=_Command)
@click.argument("record_id", type=int)
@click.argument("label", type=click.Choice(["include", "exclude", "maybe", "undo"]))
@_project_option
@click.option("--reason", "reasons", multiple=True, metavar="CRITERION_ID",
              help="The criterion the decision rests on (E1, I2, ... or its number in `leads criteria "
                   "show`); repeatable.")
@click.option("--note", help="A free-text note kept with the decision.")
@click.option("--reviewer", envvar="LEADS_USER", help="Who decides (default: $LEADS_USER or the OS user).")
@click.option("--stage", type=click.Choice(["title_abstract", "full_text"]), default="title_abstract",
              show_default=True, help="Screening stage.")
@click.option("--seconds", type=click.FloatRange(min=0), help="Time spent on the record, in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored decision as JSON.")
def decide_command(record_id: int, label: str, project_path: str, reasons: tuple[str, ...], note: str | None,
                   reviewer: str | None, stage: str, seconds: float | None, as_json: bool) -> None:
    """Record a person's decision on RECORD_ID: include, exclude, maybe (undo withdraws the last).

    Decisions are appended, never overwritten: each keeps who made it, when, and the criteria
    version it was made under.
    """
    from leads.screen.workflow import decide

    with _open(project_path) as project:
        row = decide(project, record_id, label, reasons=reasons, note=note, reviewer=reviewer, stage=stage,
                     seconds_spent=seconds)
    if as_json:
        _echo_json(row)
        return
    version = f" under criteria version {row['criteria_version']}" if row.get("criteria_version") else ""
    because = f" ({'; '.join(row['reasons'])})" if row.get("reasons") else ""
    click.echo(f"Recorded {label} for record {record_id} by {row['actor']}{version}{because} "
               f"[decision {row['id']}]")
