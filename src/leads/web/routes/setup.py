"""Project setup: the question (PICO), versioned criteria, imports, duplicate review."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response

from leads.errors import LeadsError, QueryError
from leads.formats import formats as registered_formats
from leads.project import Project
from leads.screen import workflow as w
from leads.screen.criteria import CriteriaSpec, parse_criteria_text
from leads.web.deps import (
    Owner,
    ProjectContext,
    Viewer,
    is_htmx,
    redirect,
    render,
    start_job,
    state_of,
)
from leads.web.dual import STAGE_TITLES
from leads.web.jobs import JobProgress
from leads.web.online import (
    SOURCES,
    check_pubmed_query,
    ctgov_query,
    run_ctgov_into,
    run_pubmed_into,
    run_summary,
)
from leads.web.search import CORPORA_DIR, available_corpora, search_corpus_into
from leads.web.store import dual_settings

router = APIRouter()

PICO_FIELDS = ("title", "population", "intervention", "comparison", "outcome", "study_design")
MAX_FIELD = 5000
GROUPS_PER_PAGE = 50


# -- question and criteria ------------------------------------------------------------------------


@router.get("/p/{slug}/question")
def question_page(request: Request, ctx: Viewer, version: int | None = None) -> Response:
    project = ctx.project
    current = w.current_criteria(project)
    shown = w.current_criteria(project, version) if version else current
    members = state_of(request).store.members(ctx.entry)
    return render(request, "project/question.html", question=project.question(), criteria=shown,
                  dual=dual_settings(project), dual_stages=STAGE_TITLES,
                  dual_candidates=[m for m in members if m.role == "reviewer"],
                  current_version=current[0].version if current else None,
                  shown_version=shown[0].version if shown else None,
                  versions=project.criteria_versions(), fields=PICO_FIELDS,
                  inclusion_text="\n".join(c.text for c in current if c.kind == "inclusion"),
                  exclusion_text="\n".join(c.text for c in current if c.kind == "exclusion"),
                  active="question")


@router.post("/p/{slug}/question")
async def save_question(request: Request, ctx: Owner) -> Response:
    form = await request.form()
    values: dict[str, str | None] = {}
    for name in PICO_FIELDS:
        raw = form.get(name)
        text = " ".join(raw.split()) if isinstance(raw, str) else ""
        if len(text) > MAX_FIELD:
            return redirect(f"{ctx.base}/question", request, f"{name} is longer than {MAX_FIELD} characters", "error")
        values[name] = text or None
    if not any(values.values()):
        return redirect(f"{ctx.base}/question", request, "Fill in at least one field of the question.", "error")
    version = ctx.project.set_question(**values)
    return redirect(f"{ctx.base}/question", request, f"Question saved as version {version}.")


def _specs(text: str, kind: str, previous: dict[tuple[str, str], str | None]) -> list[CriteriaSpec]:
    """One criterion per non-empty line (bullets and numbers removed), keeping the PICO element of
    a criterion whose text is unchanged."""
    specs = []
    for line in text.splitlines():
        parsed = parse_criteria_text(line)
        for spec in parsed:
            clean = " ".join(spec.text.split())
            if clean:
                specs.append(CriteriaSpec(text=clean, kind=kind,
                                          pico_element=previous.get((kind, clean.casefold()))))
    return specs


@router.post("/p/{slug}/criteria")
def save_criteria(request: Request, ctx: Owner, inclusion: str = Form(""), exclusion: str = Form(""), note: str = Form("")) -> Response:
    project = ctx.project
    previous = {(c.kind, c.text.casefold()): c.pico_element for c in w.current_criteria(project)}
    specs = _specs(inclusion, "inclusion", previous) + _specs(exclusion, "exclusion", previous)
    if not specs:
        return redirect(f"{ctx.base}/question", request, "Give at least one criterion.", "error")
    try:
        version = w.set_criteria(project, specs, note=note.strip() or None)
    except LeadsError as exc:
        return redirect(f"{ctx.base}/question", request, str(exc), "error")
    return redirect(f"{ctx.base}/question", request, f"Criteria saved as version {version}.")


@router.post("/p/{slug}/criteria/generate")
def generate(request: Request, ctx: Owner, append: bool = Form(False)) -> Response:
    if ctx.project.question() is None:
        return redirect(f"{ctx.base}/question", request, "Save the question first: criteria are drafted from it.",
                        "error")

    def run(project: Project, progress: JobProgress) -> None:
        progress.say("Drafting criteria from the question")
        result = w.generate_criteria(project, append=append)
        progress.update(1, 1)
        progress.result(f"Criteria version {result.version} drafted by {result.engine} ({result.model}): "
                        f"{len(result.criteria)} criteria")

    return start_job(request, ctx, "criteria", "Draft criteria from the question", run)


# -- imports and searches ---------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def _safe_name(name: str | None) -> str:
    base = Path(name or "").name
    base = _UNSAFE.sub("_", base).strip(" .") or "upload"
    return base[:120]


def _records_page(request: Request, ctx: ProjectContext, *, status_code: int = 200, **extra: Any) -> Response:
    state = state_of(request)
    readable = [f for f in registered_formats() if f.read]
    values = {"source": "pubmed", "query": "", "condition": "", "intervention": "", **extra.pop("online", {})}
    return render(request, "project/records.html", status_code=status_code, searches=ctx.project.searches(),
                  formats=readable, corpora=sorted(available_corpora(state.config.workspace, state.config.corpora)),
                  corpora_dir=state.config.workspace / CORPORA_DIR, online=values, sources=SOURCES,
                  jobs=state.jobs.for_project(ctx.slug), active="records", **extra)


@router.get("/p/{slug}/records")
def records_page(request: Request, ctx: Viewer) -> Response:
    return _records_page(request, ctx)


def _query_error(exc: QueryError) -> dict[str, Any]:
    """What the page shows of a query error: the message, and the query with the fault marked."""
    message = str(exc).split("\n", 1)[0]
    query, position = exc.query, exc.position
    if query is None or position is None:
        return {"message": message, "before": None}
    position = max(0, min(position, len(query)))
    return {"message": message, "before": query[:position], "at": query[position:position + 1] or " ",
            "after": query[position + 1:], "position": position}


def _online_fields(source: str, query: str, condition: str, intervention: str) -> dict[str, str]:
    if source not in SOURCES:
        raise QueryError(f"a search source is one of {', '.join(SOURCES)} (got {source!r})")
    if source == "pubmed" and (condition.strip() or intervention.strip()):
        raise QueryError("condition and intervention are ClinicalTrials.gov fields: put them into the PubMed query")
    return {"query": query, "condition": condition, "intervention": intervention}


def _check_online(source: str, fields: dict[str, str]) -> tuple[str, list[str]]:
    """(the search as it will be sent, warnings); QueryError for a query that cannot run."""
    if source == "pubmed":
        return check_pubmed_query(fields["query"]), []
    rendered = ctgov_query(fields)
    return "&".join(f"{k}={v}" for k, v in rendered.params.items()), list(rendered.warnings)


@router.post("/p/{slug}/records/online/check")
def check_online(request: Request, ctx: Owner, source: str = Form("pubmed"), query: str = Form(""),
                 condition: str = Form(""), intervention: str = Form("")) -> Response:
    """Check the query with the PubMed grammar (and render it for ClinicalTrials.gov); nothing is sent."""
    try:
        fields = _online_fields(source, query, condition, intervention)
        sent, warnings = _check_online(source, fields)
    except QueryError as exc:
        return render(request, "project/_query_check.html", error=_query_error(exc))
    return render(request, "project/_query_check.html", error=None, source=SOURCES[source], sent=sent,
                  warnings=warnings)


@router.post("/p/{slug}/records/online")
def search_online(request: Request, ctx: Owner, source: str = Form("pubmed"), query: str = Form(""),
                  condition: str = Form(""), intervention: str = Form(""), dedup: bool = Form(False)) -> Response:
    """Search PubMed or ClinicalTrials.gov as a job; the query is checked first (errors with their
    position, on the page, with nothing sent)."""
    state = state_of(request)
    entered = {"source": source, "query": query, "condition": condition, "intervention": intervention}
    try:
        fields = _online_fields(source, query, condition, intervention)
        sent, _ = _check_online(source, fields)
    except QueryError as exc:
        error = _query_error(exc)
        if is_htmx(request):
            return render(request, "project/_query_check.html", error=error)
        return _records_page(request, ctx, status_code=400, online=entered, query_error=error)
    services = state.config.search

    def run(project: Project, progress: JobProgress) -> None:
        if source == "pubmed":
            found = run_pubmed_into(project, fields["query"], services, progress=progress.update)
        else:
            found = run_ctgov_into(project, fields, services, progress=progress.update)
        progress.update(found.count_fetched, found.count_fetched, "Stored")
        for line in run_summary(found):
            progress.result(line)
        if dedup and found.record_ids:
            progress.update(0, None, "Finding duplicates")
            result = project.run_dedup()
            progress.result(f"Duplicates: {result.new_links} new links; {result.groups} groups holding "
                            f"{result.duplicates} duplicates")

    return start_job(request, ctx, "search", f"Search {SOURCES[source]}: {sent[:80]}", run)


@router.post("/p/{slug}/records/search")
def search_corpus(request: Request, ctx: Owner, corpus: str = Form(...), query: str = Form(...),
                  dedup: bool = Form(False)) -> Response:
    state = state_of(request)
    corpora = available_corpora(state.config.workspace, state.config.corpora)
    path = corpora.get(corpus)
    if path is None:
        return redirect(f"{ctx.base}/records", request, f"No corpus {corpus!r} in this workspace.", "error")
    text = " ".join(query.split())
    if not text or len(text) > MAX_FIELD:
        return redirect(f"{ctx.base}/records", request, f"Give a query of 1 to {MAX_FIELD} characters.", "error")

    def run(project: Project, progress: JobProgress) -> None:
        progress.update(0, None, f"Searching {corpus}")
        found = search_corpus_into(project, path, text, progress=progress.update)
        progress.result(f"{found.count} records from {corpus} stored as search {found.search_id}")
        for note in found.notes:
            progress.result(f"Note: {note}")
        if dedup and found.count:
            progress.update(0, None, "Finding duplicates")
            result = project.run_dedup()
            progress.result(f"Duplicates: {result.new_links} new links; {result.groups} groups holding "
                            f"{result.duplicates} duplicates")

    return start_job(request, ctx, "search", f"Search {corpus}: {text[:80]}", run)


@router.post("/p/{slug}/records/import")
def import_files(request: Request, ctx: Owner, files: Annotated[list[UploadFile], File()], format: str = Form(""),
                 force: bool = Form(False), dedup: bool = Form(False)) -> Response:
    state = state_of(request)
    if format and format not in {f.name for f in registered_formats() if f.read}:
        raise HTTPException(400, f"unknown format {format!r}")
    uploads = [f for f in files if f.filename]
    if not uploads:
        return redirect(f"{ctx.base}/records", request, "Choose or drop at least one file.", "error")
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=_uploads_dir(state.config.workspace)))
    saved: list[Path] = []
    try:
        for upload in uploads:
            target = folder / _safe_name(upload.filename)
            n = 2
            while target.exists():
                target = folder / f"{target.stem}-{n}{target.suffix}"
                n += 1
            with open(target, "wb") as out:
                shutil.copyfileobj(upload.file, out, 1 << 20)
            saved.append(target)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(500, f"could not store the upload: {exc}") from None

    def run(project: Project, progress: JobProgress) -> None:
        try:
            for path in saved:
                message = f"Importing {path.name}"
                progress.update(0, None, message)

                def report(done: int, total: int | None, message: str = message) -> None:
                    progress.update(done, total, message)

                result = project.import_file(path, format=format or None, force=force, progress=report)
                progress.result(f"Imported {result.count} records from {result.file_name} ({result.format}) "
                                f"as search {result.search_id}")
            if dedup:
                progress.update(0, None, "Finding duplicates")
                found = project.run_dedup()
                progress.result(f"Duplicates: {found.new_links} new links; {found.groups} groups holding "
                                f"{found.duplicates} duplicates")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    names = ", ".join(p.name for p in saved)
    return start_job(request, ctx, "import", f"Import {names}", run)


def _uploads_dir(workspace: Path) -> Path:
    path = workspace / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- duplicates -----------------------------------------------------------------------------------


@router.get("/p/{slug}/duplicates")
def duplicates_page(request: Request, ctx: Viewer, page: int = 1) -> Response:
    project = ctx.project
    groups = project.duplicate_groups()
    pages = max(1, (len(groups) + GROUPS_PER_PAGE - 1) // GROUPS_PER_PAGE)
    page = min(max(1, page), pages)
    shown = groups[(page - 1) * GROUPS_PER_PAGE: page * GROUPS_PER_PAGE]
    ids = sorted({m for g in shown for m in g.members})
    records = {s.id: s.record for s in project.iter_records(ids=ids)} if ids else {}
    views = []
    for g in shown:
        rules: dict[int, set[str]] = {m: set() for m in g.members}
        for (a, b), rule in g.rules.items():
            rules.setdefault(a, set()).add(rule)
            rules.setdefault(b, set()).add(rule)
        views.append({"group": g, "members": [(m, records.get(m), sorted(rules.get(m, ()))) for m in g.members]})
    state = state_of(request)
    return render(request, "project/duplicates.html", groups=views, total=len(groups), page=page, pages=pages,
                  jobs=[j for j in state.jobs.for_project(ctx.slug) if j.kind == "dedup"], active="duplicates")


@router.post("/p/{slug}/duplicates/run")
def run_dedup(request: Request, ctx: Owner) -> Response:
    def run(project: Project, progress: JobProgress) -> None:
        progress.say("Finding duplicates")
        found = project.run_dedup()
        progress.update(1, 1)
        progress.result(f"{found.new_links} new duplicate links; {found.groups} groups holding "
                        f"{found.duplicates} duplicates ({found.seconds:.1f} s)")

    return start_job(request, ctx, "dedup", "Find duplicates", run)


@router.post("/p/{slug}/duplicates/split")
def split(request: Request, ctx: Owner, record_id: int = Form(...), page: int = Form(1)) -> Response:
    try:
        others = ctx.project.split_duplicate(record_id)
    except LeadsError as exc:
        return redirect(f"{ctx.base}/duplicates?page={page}", request, str(exc), "error")
    return redirect(f"{ctx.base}/duplicates?page={page}", request,
                    f"Record {record_id} separated from {', '.join(map(str, others))}.")


@router.post("/p/{slug}/duplicates/link")
def link(request: Request, ctx: Owner, record_a: int = Form(...), record_b: int = Form(...)) -> Response:
    try:
        ctx.project.link_duplicates(record_a, record_b)
    except LeadsError as exc:
        return redirect(f"{ctx.base}/duplicates", request, str(exc), "error")
    ctx.project.log("dedup-link", {"records": [record_a, record_b]})
    return redirect(f"{ctx.base}/duplicates", request, f"Records {record_a} and {record_b} linked as duplicates.")
