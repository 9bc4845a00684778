"""A review described in a TOML file, and the runner that carries it out stage by stage.

::

    [review]
    name = "Hormone replacement therapy and ..."
    project = "estrogens-review"        # directory, relative to the current directory

    [question]                           # the PICO
    population = "..."
    intervention = "..."

    [criteria]
    inclusion = ["...", "..."]
    exclusion = ["..."]

    [[sources]]
    file = "records.csv"                 # relative to the spec file
    format = "csv"                       # optional: detected from content

    [[documents]]                        # full texts: a folder or a file, linked to records
    folder = "fulltexts"                 # by the identifier in the file name (PMC123.xml,
    pattern = "*.xml"                    # 12345678.pdf, NCT01234567.md) or the document's own
                                         # PMID/PMCID/DOI/title; or give pmcid/pmid/doi/nct

    [extraction]
    tasks = ["characteristics", "arms", "participants", "results"]
    fields = ["primary outcome: the trial's primary outcome"]   # "name: description"
    [[extraction.outcomes]]
    outcome = "Mortality up to day 28"
    intervention = "Remdesivir"
    comparator = "Placebo or standard care"
    outcome_type = "binary"              # or "continuous"; left out: decided from the paper

    [synthesis]
    measure = "RR"                       # RR, OR, RD (binary); MD, SMD (continuous)
    model = "random"                     # or "fixed"

    [registry]                           # ClinicalTrials.gov cross-check (offline by default)
    files = ["registry/NCT01234567.json"]
    online = false

    [report]
    formats = ["html", "md"]

    [run]
    stages = ["import", "dedup", "screen", "documents", "fulltext", "extract", "synthesize", "registry", "report"]
    auto_decide = true                   # unattended: the AI's decisions are recorded as AI decisions

The ``screen`` stage assesses titles and abstracts; ``fulltext`` assesses the attached full texts
of the records included (or marked maybe) at title/abstract (:mod:`leads.screen.fulltext`), and
``extract``, ``synthesize`` and ``registry`` then take the full-text includes where there are
full-text decisions (:func:`included_record_ids`). With ``auto_decide`` both stages record the
AI's unattended decisions.

Re-running continues where it stopped: files already imported or attached are skipped (by content
hash), dedup only adds links it has not made before, records and calls already assessed or
extracted are not run again, and an unchanged question or criteria set is not stored again. The
synthesis, registry check and report are recomputed from the project each time (cheap, and a
reviewer's corrections in between are taken up).
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leads.errors import FormatError, LeadsError
from leads.project import Project
from leads.project._project import _file_sha256

__all__ = ["STAGES", "ReviewRun", "ReviewSpec", "included_record_ids", "load_spec", "run_review"]

STAGES = ("import", "dedup", "screen", "documents", "fulltext", "extract", "synthesize", "registry", "report")


class _Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    project: str | None = None


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    population: str | None = None
    intervention: str | None = None
    comparison: str | None = None
    outcome: str | None = None
    study_design: str | None = None


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    format: str | None = None


class _Documents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str | None = None
    folder: str | None = None
    pattern: str = "*"
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    nct: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Documents:
        if (self.file is None) == (self.folder is None):
            raise ValueError("give either file or folder")
        if self.folder is not None and any((self.pmid, self.pmcid, self.doi, self.nct)):
            raise ValueError("an identifier links one file: give it with file, not folder")
        return self


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=1)
    intervention: str = Field(min_length=1)
    comparator: str = Field(min_length=1)
    outcome_type: Literal["binary", "continuous"] | None = None


class _Extraction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: list[Literal["characteristics", "arms", "participants", "results"]] = Field(
        default_factory=lambda: ["characteristics", "arms", "participants", "results"])  # type: ignore[arg-type]
    outcomes: list[_Outcome] = Field(default_factory=list)
    fields: list[str] | dict[str, str] = Field(default_factory=list)
    """study characteristics asked on top of the built-in ones: ``"name: description"`` strings or
    a table ``{name = "description"}``"""

    def field_map(self) -> dict[str, str]:
        if isinstance(self.fields, dict):
            return dict(self.fields)
        out: dict[str, str] = {}
        for item in self.fields:
            name, _, description = item.partition(":")
            out[name.strip()] = description.strip()
        return out


class _Synthesis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measure: Literal["RR", "OR", "RD", "MD", "SMD"] = "RR"
    continuous_measure: Literal["MD", "SMD"] = "MD"
    model: Literal["fixed", "random"] = "random"
    tau2_method: Literal["DL", "PM", "REML"] = "DL"
    hksj: bool = False
    plots: list[Literal["svg", "png"]] = Field(default_factory=lambda: ["svg", "png"])  # type: ignore[arg-type]


class _Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[str] = Field(default_factory=list)
    cache: str | None = None
    """folder of ``<NCT id>.json`` files (relative to the spec); fetched records are kept there"""
    online: bool = False
    tolerance: float = Field(default=0.10, ge=0, le=1)


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")
    formats: list[Literal["html", "md"]] = Field(default_factory=lambda: ["html", "md"])  # type: ignore[arg-type]
    folder: str = "report"
    """relative to the project directory"""


class _Run(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: list[str] = Field(default_factory=lambda: list(STAGES))
    engine: str = "classic"
    auto_decide: bool = False
    """Record the AI's unattended screening decisions (marked as AI decisions, never as human ones)."""


class ReviewSpec(BaseModel):
    """A parsed and validated review spec; ``base`` is the folder source paths are relative to."""

    model_config = ConfigDict(extra="forbid")
    review: _Review
    question: _Question = Field(default_factory=_Question)
    criteria: _Criteria = Field(default_factory=_Criteria)
    sources: list[_Source] = Field(default_factory=list)
    documents: list[_Documents] = Field(default_factory=list)
    extraction: _Extraction = Field(default_factory=_Extraction)
    synthesis: _Synthesis = Field(default_factory=_Synthesis)
    registry: _Registry = Field(default_factory=_Registry)
    report: _Report = Field(default_factory=_Report)
    run: _Run = Field(default_factory=_Run)
    base: Path = Path(".")

    def source_paths(self) -> list[tuple[Path, str | None]]:
        return [((self.base / s.file), s.format) for s in self.sources]

    def document_paths(self) -> list[tuple[Path, dict[str, str]]]:
        """Each full-text file with the identifiers the spec gives for it (files of a folder in
        name order)."""
        out: list[tuple[Path, dict[str, str]]] = []
        for d in self.documents:
            if d.file is not None:
                ids = {k: v for k, v in (("pmid", d.pmid), ("pmcid", d.pmcid), ("doi", d.doi), ("nct", d.nct)) if v}
                out.append((self.base / d.file, ids))
            else:
                assert d.folder is not None
                out.extend((p, {}) for p in sorted((self.base / d.folder).glob(d.pattern)) if p.is_file())
        return out


def load_spec(path: str | Path) -> ReviewSpec:
    """Read and validate a review spec; errors name the file and the field at fault."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeadsError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"invalid TOML: {exc}", source=str(path)) from None
    try:
        spec = ReviewSpec.model_validate({**data, "base": path.resolve().parent})
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"])
        raise FormatError(first["msg"], source=str(path), field=field_name) from None
    unknown = [s for s in spec.run.stages if s not in STAGES]
    if unknown:
        raise FormatError(
            f"unknown stage {unknown[0]!r}; this version of leads runs: {', '.join(STAGES)}",
            source=str(path), field="run.stages",
        )
    has_criteria = bool(spec.criteria.inclusion or spec.criteria.exclusion)
    if "stages" not in spec.run.model_fields_set:
        # by default, every stage the spec has what it needs for
        needs = {"screen": has_criteria, "documents": bool(spec.documents),
                 "fulltext": has_criteria and bool(spec.documents),
                 "extract": bool(spec.documents), "synthesize": bool(spec.extraction.outcomes),
                 "registry": bool(spec.documents)}
        spec.run.stages = [s for s in spec.run.stages if needs.get(s, True)]
    for stage in ("screen", "fulltext"):
        if stage in spec.run.stages and not has_criteria:
            raise FormatError(f"the {stage} stage needs eligibility criteria: add inclusion/exclusion lists",
                              source=str(path), field="criteria")
    for file, _fmt in spec.source_paths():
        if not file.is_file():
            raise FormatError(f"source file not found: {file}", source=str(path), field="sources")
    for i, d in enumerate(spec.documents):
        target = spec.base / (d.file or d.folder or "")
        if d.file is not None and not target.is_file():
            raise FormatError(f"full-text file not found: {target}", source=str(path), field=f"documents.{i}.file")
        if d.folder is not None and not target.is_dir():
            raise FormatError(f"full-text folder not found: {target}", source=str(path),
                              field=f"documents.{i}.folder")
    for i, f in enumerate(spec.registry.files):
        if not (spec.base / f).is_file():
            raise FormatError(f"registry file not found: {spec.base / f}", source=str(path),
                              field=f"registry.files.{i}")
    if "synthesize" in spec.run.stages and not spec.extraction.outcomes:
        raise FormatError("the synthesize stage needs outcomes: add [[extraction.outcomes]]",
                          source=str(path), field="extraction.outcomes")
    return spec


@dataclass
class ReviewRun:
    """What one run did, stage by stage."""

    project: Path
    imported: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    new_duplicate_links: int = 0
    stages: list[str] = field(default_factory=list)
    screening: dict[str, Any] | None = None
    full_text: dict[str, Any] | None = None
    documents_added: list[tuple[str, int | None]] = field(default_factory=list)
    documents_skipped: list[str] = field(default_factory=list)
    extraction: dict[str, Any] | None = None
    synthesis: dict[str, Any] | None = None
    registry: dict[str, Any] | None = None
    report: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


Say = Callable[[str], None]


def run_review(spec: ReviewSpec, project_dir: str | Path | None = None, *,
               say: Say = lambda message: None, actor: str | None = None) -> ReviewRun:
    """Carry out the spec's stages into a project directory (created if needed)."""
    directory = Path(project_dir or spec.review.project or _slug(spec.review.name))
    if (directory / "project.toml").exists():
        project = Project.open(directory, actor=actor)
        say(f"Continuing the review in {directory}")
    else:
        project = Project.init(directory, name=spec.review.name, actor=actor)
        say(f"Created project {directory}")
    run = ReviewRun(project=directory)
    with project:
        _store_question_and_criteria(project, spec, say)
        timer = _Timer(run)
        if "import" in spec.run.stages:
            timer.start("import")
            run.stages.append("import")
            imported_hashes = {s["response_sha256"] for s in project.searches() if s["source"] == "file"}
            for file, fmt in spec.source_paths():
                if _file_sha256(file) in imported_hashes:
                    run.skipped.append(file.name)
                    say(f"  {file.name}: already imported")
                    continue
                result = project.import_file(file, format=fmt)
                run.imported.append((file.name, result.count))
                say(f"  imported {result.count} records from {file.name} ({result.format})")
        if "dedup" in spec.run.stages:
            timer.start("dedup")
            run.stages.append("dedup")
            dedup = project.run_dedup()
            run.new_duplicate_links = dedup.new_links
            say(f"  deduplicated: {dedup.groups} groups, {dedup.duplicates} duplicate records "
                f"({dedup.new_links} new links)")
        if "screen" in spec.run.stages:
            timer.start("screen")
            run.stages.append("screen")
            run.screening = _screen(project, spec, say)
        if "documents" in spec.run.stages:
            timer.start("documents")
            run.stages.append("documents")
            _documents(project, spec, run, say)
        if "fulltext" in spec.run.stages:
            timer.start("fulltext")
            run.stages.append("fulltext")
            run.full_text = _fulltext(project, spec, say)
        if "extract" in spec.run.stages:
            timer.start("extract")
            run.stages.append("extract")
            run.extraction = _extract(project, spec, say)
        synthesis = None
        if "synthesize" in spec.run.stages:
            timer.start("synthesize")
            run.stages.append("synthesize")
            synthesis = _synthesize(project, spec, directory, say)
            run.synthesis = synthesis.as_dict()
        registry = None
        if "registry" in spec.run.stages:
            timer.start("registry")
            run.stages.append("registry")
            registry = _registry(project, spec, say)
            run.registry = registry.as_dict()
        if "report" in spec.run.stages:
            timer.start("report")
            run.stages.append("report")
            from leads.report import build_report

            run.report = build_report(project, directory / spec.report.folder, formats=tuple(spec.report.formats),
                                      synthesis=synthesis, registry=registry, spec=spec)
            say(f"  wrote the report: {', '.join(str(p) for p in run.report if p.suffix in ('.html', '.md'))}")
        timer.start(None)
    return run


class _Timer:
    """Wall time per stage, kept in :attr:`ReviewRun.seconds`."""

    def __init__(self, run: ReviewRun) -> None:
        self.run = run
        self.current: str | None = None
        self.started = time.perf_counter()

    def start(self, stage: str | None) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.run.seconds[self.current] = round(now - self.started, 3)
        self.current, self.started = stage, now


def included_record_ids(project: Project) -> list[int]:
    """The studies included so far: a standing full-text include, or a title/abstract include not
    (yet) excluded at full text. Decisions by people and unattended AI decisions both count; the
    report says which is which."""
    full_text = project.current_decisions("full_text")
    title_abstract = project.current_decisions("title_abstract")
    included = {rid for rid, d in full_text.items() if d["label"] == "include"}
    included |= {rid for rid, d in title_abstract.items() if d["label"] == "include" and rid not in full_text}
    return sorted(included)


_ID_IN_NAME = (
    ("pmcid", re.compile(r"^PMC\d+$", re.I)),
    ("nct", re.compile(r"^NCT\d{8}$", re.I)),
    ("pmid", re.compile(r"^\d{1,9}$")),
)


def _record_by_identifier(project: Project, kind: str, value: str) -> int | None:
    from leads.project import schema as t
    from leads.records import normalize_doi, normalize_nct, normalize_pmcid, normalize_pmid

    normalise = {"pmcid": normalize_pmcid, "pmid": normalize_pmid, "doi": normalize_doi, "nct": normalize_nct}[kind]
    normal = normalise(value)
    if normal is None:
        return None
    with project.engine.connect() as conn:
        found = conn.execute(sa.select(sa.func.min(t.record_identifiers.c.record_id)).where(
            t.record_identifiers.c.kind == kind, t.record_identifiers.c.value == normal)).scalar()
    if found is None:
        return None
    # a duplicate's document belongs to the record kept for screening
    return project.duplicate_primaries().get(int(found), int(found))


def _documents(project: Project, spec: ReviewSpec, run: ReviewRun, say: Say) -> None:
    from leads.documents.store import add_document

    for path, ids in spec.document_paths():
        if not ids:
            for kind, pattern in _ID_IN_NAME:
                if pattern.match(path.stem):
                    ids = {kind: path.stem}
                    break
        record_id = None
        for kind, value in ids.items():
            record_id = _record_by_identifier(project, kind, value)
            if record_id is not None:
                break
        result = add_document(project, path, record_id=record_id)
        if not result.created:
            run.documents_skipped.append(path.name)
            continue
        linked = result.document.record_id
        run.documents_added.append((path.name, linked))
        how = f"linked to record {linked} ({result.match.method if result.match else 'by hand'})" if linked \
            else "not linked to any record"
        say(f"  attached {path.name}: {how}")
    if run.documents_skipped:
        say(f"  {len(run.documents_skipped)} full texts already attached")


def _extract(project: Project, spec: ReviewSpec, say: Say) -> dict[str, Any]:
    from leads.extract.project import run_extraction

    outcomes = [o.model_dump() for o in spec.extraction.outcomes]
    say(f"  extracting {', '.join(spec.extraction.tasks)} from the included studies' full texts "
        f"(engine {spec.run.engine})")
    result = run_extraction(project, engine=spec.run.engine, tasks=tuple(spec.extraction.tasks),
                            outcomes=outcomes, fields=spec.extraction.field_map() or None,
                            record_ids=included_record_ids(project), progress=True)
    for line in result.summary().splitlines():
        say(f"  {line.strip()}")
    return dict(result.as_dict())


def _synthesize(project: Project, spec: ReviewSpec, directory: Path, say: Say) -> Any:
    from leads.synthesis.project import synthesize_project

    s = spec.synthesis
    result = synthesize_project(
        project, measure=s.measure, continuous_measure=s.continuous_measure, model=s.model,
        tau2_method=s.tau2_method, hksj=s.hksj, outcomes=[o.outcome for o in spec.extraction.outcomes],
        record_ids=included_record_ids(project), out_dir=directory / spec.report.folder,
        plot_formats=tuple(s.plots))
    for line in result.summary().splitlines():
        say(f"  {line}")
    return result


def _registry(project: Project, spec: ReviewSpec, say: Say) -> Any:
    from leads.synthesis.registry import check_registry

    r = spec.registry
    result = check_registry(project, record_ids=included_record_ids(project),
                            files=[spec.base / f for f in r.files],
                            cache_dir=spec.base / r.cache if r.cache else None, online=r.online,
                            tolerance=r.tolerance)
    for line in result.summary().splitlines():
        say(f"  registry: {line}")
    return result


def _screen(project: Project, spec: ReviewSpec, say: Say) -> dict[str, Any]:
    from leads.screen.workflow import run_screening

    say(f"  screening titles and abstracts against {len(project.criteria())} criteria "
        f"(engine {spec.run.engine})")
    result = run_screening(project, spec.run.engine, auto_decide=spec.run.auto_decide, progress=True)
    for line in result.summary().splitlines():
        say(f"  {line.strip()}")
    return result.as_dict()


def _fulltext(project: Project, spec: ReviewSpec, say: Say) -> dict[str, Any]:
    from leads.screen.workflow import run_screening

    say(f"  assessing the full texts of the records included at title/abstract against "
        f"{len(project.criteria())} criteria (engine {spec.run.engine})")
    result = run_screening(project, spec.run.engine, stage="full_text", auto_decide=spec.run.auto_decide,
                           progress=True)
    for line in result.summary().splitlines():
        say(f"  {line.strip()}")
    return result.as_dict()


def _store_question_and_criteria(project: Project, spec: ReviewSpec, say: Say) -> None:
    wanted_question = spec.question.model_dump()
    current = project.question()
    if any(wanted_question.values()) and (
        current is None or any(current.get(k) != v for k, v in wanted_question.items())
    ):
        version = project.set_question(**wanted_question)
        say(f"  stored the review question (version {version})")
    wanted: list[tuple[str, str]] = [("inclusion", c.strip()) for c in spec.criteria.inclusion]
    wanted += [("exclusion", c.strip()) for c in spec.criteria.exclusion]
    existing = [(c["kind"], c["text"]) for c in project.criteria()]
    if wanted and wanted != existing:
        version = project.set_criteria(spec.criteria.inclusion, spec.criteria.exclusion)
        say(f"  stored {len(wanted)} eligibility criteria (version {version})")


def _slug(name: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "review"

