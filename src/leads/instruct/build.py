"""Build a LEADSInstruct-style data set: collect, validate, deduplicate, split, write, describe.

``build(BuildOptions(out=..., shared=..., projects=[...]))`` writes into ``out``:

- ``train.jsonl`` and ``test.jsonl``: conversational examples ``{"messages": [...], "meta": {...}}``
  (see :mod:`leads.instruct.example`), each in a seeded shuffled order (the first N test
  examples are a sample of all tasks and sources);
- ``datasheet.json`` and ``datasheet.md``: counts per task x source x split, licences, what was
  left out and why, the options used;
- ``splits.json``: the group keys (reviews, trials, articles, topics) on each side, so that an
  evaluation of a model trained on ``train.jsonl`` can keep to the test side.

Deduplication is by the normalised input hash (task + prompt, case and whitespace folded): the
first example wins (projects first, then the shared sources in their order); a duplicate whose
answer differs is counted as a conflict.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leads.errors import LeadsError
from leads.instruct.example import (
    DEFAULT_TEXT_BUDGET,
    Example,
    ExampleRejected,
    make_call_example,
    make_example,
    write_examples,
)
from leads.instruct.sources import CallCandidate, Candidate, SourceSkipped, shared_sources
from leads.instruct.split import split_examples
from leads.tasks import TASKS

__all__ = ["BuildOptions", "BuildResult", "build", "collect"]

#: The tasks examples are built for by default: LEADS' six and PICO spans.
DEFAULT_TASKS = ("search_query", "eligibility", "characteristics", "arms", "participants", "results", "pico")
PROJECT_LICENCE = "the review team's own data (project {name})"


@dataclass
class BuildOptions:
    out: Path
    shared: Path | None = None
    projects: Sequence[str | Path] = ()
    tasks: Sequence[str] = DEFAULT_TASKS
    sources: Sequence[str] | None = None
    seed: int = 0
    test_fraction: float = 0.15
    text_budget: int | None = DEFAULT_TEXT_BUDGET
    max_per_source: int | None = None

    def check(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise LeadsError(f"unknown task(s) {unknown}; tasks: {', '.join(TASKS)}")
        if self.sources is not None:
            known = shared_sources()
            missing = [s for s in self.sources if s not in known]
            if missing:
                raise LeadsError(f"unknown source(s) {missing}; sources: {', '.join(known)}")
        if not 0 <= self.test_fraction < 1:
            raise LeadsError("the test fraction must be at least 0 and below 1")
        if self.shared is None and not self.projects:
            raise LeadsError("nothing to build from: give --shared PATH and/or --project P")
        if self.shared is not None and not Path(self.shared).is_dir():
            raise LeadsError(f"{self.shared}: the shared data folder does not exist")


@dataclass
class SourceReport:
    """What one source gave: candidates, examples kept, rejections (by reason) and licence."""

    name: str
    licence: str
    description: str = ""
    candidates: int = 0
    examples: int = 0
    skipped: str | None = None
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_samples: list[str] = field(default_factory=list)
    capped: int = 0
    seconds: float = 0.0


@dataclass
class BuildResult:
    examples: list[Example]
    reports: list[SourceReport]
    duplicates: int
    conflicts: int
    datasheet: dict[str, Any]


Progress = Callable[[str], None]


def _reason(message: str) -> str:
    """The kind of a rejection, for counting (the part after the item name)."""
    text = message.split("): ", 1)[-1]
    return text.split(":", 1)[0][:80]


def _stable(seed: int, item: str) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()


def _examples_of(candidates: Iterable[Candidate | CallCandidate], report: SourceReport, *, source: str,
                 licence: str, tasks: set[str], budget: int | None) -> Iterator[Example]:
    for candidate in candidates:
        if candidate.task not in tasks:
            continue
        report.candidates += 1
        try:
            if isinstance(candidate, CallCandidate):
                yield make_call_example(candidate.task, candidate.messages, candidate.raw_output, source=source,
                                        item=candidate.item, groups=candidate.groups, licence=licence,
                                        notes=candidate.notes)
            else:
                yield make_example(candidate.task, candidate.input, candidate.answer, source=source,
                                   item=candidate.item, groups=candidate.groups, licence=licence,
                                   text_budget=budget, notes=candidate.notes)
        except ExampleRejected as exc:
            report.rejected[_reason(str(exc))] += 1
            if len(report.rejected_samples) < 5:
                report.rejected_samples.append(str(exc)[:400])


def _cap(examples: list[Example], limit: int | None, seed: int, report: SourceReport) -> list[Example]:
    if limit is None:
        return examples
    by_task: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_task[example.task].append(example)
    kept: list[Example] = []
    for group in by_task.values():
        if len(group) > limit:
            report.capped += len(group) - limit
            group = sorted(group, key=lambda e: _stable(seed, e.item))[:limit]
        kept.extend(group)
    return kept


def collect(options: BuildOptions, progress: Progress | None = None) -> tuple[list[Example], list[SourceReport]]:
    """Every validated example of the projects and shared sources, before deduplication."""
    from leads.instruct.sources.project import project_candidates
    from leads.project import Project

    options.check()
    say = progress or (lambda _message: None)
    tasks = set(options.tasks)
    examples: list[Example] = []
    reports: list[SourceReport] = []
    for location in options.projects:
        started = time.perf_counter()
        with Project.open(location) as project:
            name = f"project:{project.name}"
            report = SourceReport(name=name, licence=PROJECT_LICENCE.format(name=project.name),
                                  description=f"review project at {project.location}")
            say(f"reading {name}")
            found = list(_examples_of(project_candidates(project), report, source=name, licence=report.licence,
                                      tasks=tasks, budget=options.text_budget))
        found = _cap(found, options.max_per_source, options.seed, report)
        report.examples = len(found)
        report.seconds = time.perf_counter() - started
        examples.extend(found)
        reports.append(report)
    if options.shared is not None:
        for name, source in shared_sources().items():
            if options.sources is not None and name not in options.sources:
                continue
            if not tasks & set(source.tasks):
                continue
            started = time.perf_counter()
            report = SourceReport(name=name, licence=source.licence, description=source.description)
            say(f"reading {name}")
            try:
                found = list(_examples_of(source.read(Path(options.shared), options.text_budget), report,
                                          source=name, licence=source.licence, tasks=tasks,
                                          budget=options.text_budget))
            except SourceSkipped as exc:
                report.skipped = str(exc)
                found = []
            found = _cap(found, options.max_per_source, options.seed, report)
            report.examples = len(found)
            report.seconds = time.perf_counter() - started
            examples.extend(found)
            reports.append(report)
    return examples, reports


def _dedup(examples: list[Example]) -> tuple[list[Example], int, int]:
    seen: dict[str, Example] = {}
    duplicates = conflicts = 0
    for example in examples:
        kept = seen.get(example.hash)
        if kept is None:
            seen[example.hash] = example
            continue
        duplicates += 1
        if kept.answer != example.answer:
            conflicts += 1
    return list(seen.values()), duplicates, conflicts


def _datasheet(examples: list[Example], reports: list[SourceReport], duplicates: int, conflicts: int,
               options: BuildOptions, components: int) -> dict[str, Any]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for example in examples:
        by_source = counts.setdefault(example.task, {}).setdefault(example.source, {"train": 0, "test": 0})
        by_source[example.split or "train"] += 1
    chars = defaultdict(list)
    for example in examples:
        chars[example.task].append(sum(len(m["content"]) for m in example.messages))
    groups_by_split: dict[str, set[str]] = {"train": set(), "test": set()}
    for example in examples:
        groups_by_split[example.split or "train"].update(example.groups)
    return {
        "format": "leads-instruct/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {
            "shared": str(options.shared) if options.shared else None,
            "projects": [str(p) for p in options.projects],
            "tasks": list(options.tasks),
            "sources": list(options.sources) if options.sources is not None else None,
            "seed": options.seed,
            "test_fraction": options.test_fraction,
            "text_budget": options.text_budget,
            "max_per_source": options.max_per_source,
        },
        "totals": {
            "examples": len(examples),
            "train": sum(1 for e in examples if e.split == "train"),
            "test": sum(1 for e in examples if e.split == "test"),
            "duplicates_removed": duplicates,
            "duplicate_conflicts": conflicts,
            "components": components,
            "shared_group_keys": len(groups_by_split["train"] & groups_by_split["test"]),
        },
        "counts": counts,
        "prompt_chars": {task: {"median": sorted(v)[len(v) // 2], "max": max(v)} for task, v in chars.items()},
        "sources": [
            {
                "name": r.name,
                "licence": r.licence,
                "description": r.description,
                "candidates": r.candidates,
                "examples": r.examples,
                "rejected": dict(r.rejected.most_common()),
                "rejected_samples": r.rejected_samples,
                "capped": r.capped,
                "skipped": r.skipped,
                "seconds": round(r.seconds, 2),
            }
            for r in reports
        ],
    }


def datasheet_markdown(sheet: dict[str, Any]) -> str:
    """The datasheet as Markdown (``datasheet.md``)."""
    lines = ["# leads instruction data: datasheet", "",
             f"Built {sheet['created']} with seed {sheet['options']['seed']}, test fraction "
             f"{sheet['options']['test_fraction']}, text budget {sheet['options']['text_budget']} characters.", ""]
    totals = sheet["totals"]
    lines += [f"**{totals['examples']} examples**: {totals['train']} train, {totals['test']} test; "
              f"{totals['duplicates_removed']} duplicates removed ({totals['duplicate_conflicts']} with a "
              f"different answer); {totals['components']} split groups; group keys on both sides: "
              f"{totals['shared_group_keys']}.", "",
              "## Examples per task, source and split", "",
              "| task | source | train | test |", "|---|---|---|---|"]
    for task in sorted(sheet["counts"]):
        for source, n in sorted(sheet["counts"][task].items()):
            lines.append(f"| {task} | {source} | {n['train']} | {n['test']} |")
    lines += ["", "## Sources", "", "| source | licence | candidates | kept | left out (why) |", "|---|---|---|---|---|"]
    for s in sheet["sources"]:
        why = "; ".join(f"{k}: {v}" for k, v in s["rejected"].items())
        if s["capped"]:
            why = (why + "; " if why else "") + f"over the cap: {s['capped']}"
        if s["skipped"]:
            why = f"skipped: {s['skipped']}"
        lines.append(f"| {s['name']} | {s['licence']} | {s['candidates']} | {s['examples']} | {why or '-'} |")
    lines += ["", "Licences are as stated by each source; check the original terms before redistributing.",
              "Each example's `meta.notes` says how its gold was obtained; the source modules of",
              "`leads.instruct.sources` document what is gold and what is left out.", ""]
    return "\n".join(lines)


def build(options: BuildOptions, progress: Progress | None = None) -> BuildResult:
    """Build the data set into ``options.out`` (see the module docstring)."""
    examples, reports = collect(options, progress)
    unique, duplicates, conflicts = _dedup(examples)
    if not unique:
        raise LeadsError("no example could be built from the given sources (see the rejections: "
                         + "; ".join(f"{r.name}: {dict(r.rejected)}" for r in reports) + ")")
    parts = split_examples(unique, test_fraction=options.test_fraction, seed=options.seed)
    sheet = _datasheet(unique, reports, duplicates, conflicts, options, len(parts))
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    train = [e for e in unique if e.split == "train"]
    test = [e for e in unique if e.split == "test"]
    random.Random(options.seed).shuffle(train)
    random.Random(options.seed + 1).shuffle(test)  # so that the first N test examples are a sample
    write_examples(out / "train.jsonl", train)
    write_examples(out / "test.jsonl", test)
    (out / "datasheet.json").write_text(json.dumps(sheet, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "datasheet.md").write_text(datasheet_markdown(sheet), encoding="utf-8")
    sides: dict[str, list[str]] = {"train": [], "test": []}
    for part in parts:
        side = unique[part.members[0]].split or "train"
        sides[side].extend(k for k in part.keys if not k.startswith("text:"))
    (out / "splits.json").write_text(json.dumps({k: sorted(v) for k, v in sides.items()}, indent=1) + "\n",
                                     encoding="utf-8")
    return BuildResult(examples=unique, reports=reports, duplicates=duplicates, conflicts=conflicts, datasheet=sheet)
