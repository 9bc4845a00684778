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

    [run]
    stages = ["import", "dedup"]

Re-running continues where it stopped: files already imported are skipped (by content hash),
dedup only adds links it has not made before, and an unchanged question or criteria set is not
stored again.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leads.errors import FormatError, LeadsError
from leads.project import Project
from leads.project._project import _file_sha256

__all__ = ["STAGES", "ReviewRun", "ReviewSpec", "load_spec", "run_review"]

STAGES = ("import", "dedup", "screen")


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
    run: _Run = Field(default_factory=_Run)
    base: Path = Path(".")

    def source_paths(self) -> list[tuple[Path, str | None]]:
        return [((self.base / s.file), s.format) for s in self.sources]


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
    if "stages" not in spec.run.model_fields_set and not has_criteria:
        # by default, every stage the spec has what it needs for
        spec.run.stages = [s for s in spec.run.stages if s != "screen"]
    if "screen" in spec.run.stages and not has_criteria:
        raise FormatError("the screen stage needs eligibility criteria: add inclusion/exclusion lists",
                          source=str(path), field="criteria")
    for file, _fmt in spec.source_paths():
        if not file.is_file():
            raise FormatError(f"source file not found: {file}", source=str(path), field="sources")
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
        if "import" in spec.run.stages:
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
            run.stages.append("dedup")
            dedup = project.run_dedup()
            run.new_duplicate_links = dedup.new_links
            say(f"  deduplicated: {dedup.groups} groups, {dedup.duplicates} duplicate records "
                f"({dedup.new_links} new links)")
        if "screen" in spec.run.stages:
            run.stages.append("screen")
            run.screening = _screen(project, spec, say)
    return run


def _screen(project: Project, spec: ReviewSpec, say: Say) -> dict[str, Any]:
    from leads.screen.workflow import run_screening

    say(f"  screening titles and abstracts against {len(project.criteria())} criteria "
        f"(engine {spec.run.engine})")
    result = run_screening(project, spec.run.engine, auto_decide=spec.run.auto_decide, progress=True)
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

