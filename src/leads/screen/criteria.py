"""Eligibility criteria as a review project holds them: reading them from files, their short
labels (``I1``, ``I2``, ``E1``), and the classic engine's criteria generation from a PICO.

Labels. A criteria version stores its inclusion criteria first, then its exclusion criteria
(:meth:`leads.project.Project.set_criteria`); ``I<n>`` is the n-th inclusion criterion and ``E<n>``
the n-th exclusion criterion of a version, so a label plus the version a decision was made under
names one criterion for good.

Files (:func:`read_criteria_file`):

- TOML: ``inclusion = [...]`` and ``exclusion = [...]`` at the top level or in a ``[criteria]``
  table (a ``leads review`` spec such as ``examples/estrogens/review.toml`` works as it is);
- JSON: ``{"inclusion": [...], "exclusion": [...]}`` or a list of
  ``{"text", "kind", "pico_element"}`` objects (or plain strings: inclusion criteria);
- any other text: one criterion per non-empty line, bullets and numbers removed. A heading line
  ("Inclusion criteria:", "## Exclusion criteria") switches between the two lists; a line
  starting with "Exclusion:", "Exclude:" or "[EXCLUSION]" is an exclusion criterion on its own,
  and so is one that starts "Exclusion of ..." or "Exclude ..." (what follows is excluded).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leads.engines.classic import implements
from leads.errors import FormatError, SourceError
from leads.tasks.criteria import PICO_ELEMENTS, CriteriaInput, CriteriaOutput, GeneratedCriterion

__all__ = [
    "CLASSIC_VERSION",
    "DEFAULT_DESIGN_CRITERION",
    "CriteriaSpec",
    "criterion_labels",
    "generate_classic",
    "parse_criteria_text",
    "read_criteria_file",
]

CLASSIC_VERSION = "1.0"
#: The design criterion the classic generator writes when the question names no study design:
#: what any systematic review of studies asks for (the classic assessor reads "original research"
#: as a design criterion that rules out reviews).
DEFAULT_DESIGN_CRITERION = "Original research study (not a review, editorial, comment or letter)"


@dataclass(frozen=True)
class CriteriaSpec:
    """One criterion to store: its text, inclusion or exclusion, and the PICO element it restates."""

    text: str
    kind: str = "inclusion"
    pico_element: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("inclusion", "exclusion"):
            raise ValueError(f"a criterion is 'inclusion' or 'exclusion', not {self.kind!r}")
        if self.pico_element is not None and self.pico_element not in PICO_ELEMENTS:
            raise ValueError(f"pico_element must be one of {', '.join(PICO_ELEMENTS)} (got {self.pico_element!r})")


def criterion_labels(kinds: Sequence[str]) -> list[str]:
    """``I1, I2, ..., E1, ...`` for criteria of these kinds, in order."""
    counts = {"inclusion": 0, "exclusion": 0}
    labels = []
    for kind in kinds:
        counts[kind] += 1
        labels.append(f"{'I' if kind == 'inclusion' else 'E'}{counts[kind]}")
    return labels


# -- reading files ------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*•+]+|\d+[.)]|\(?[a-z]\)|\(\d+\))\s+", re.IGNORECASE)
_HEADING = re.compile(r"^\s*#*\s*(inclusion|exclusion)(?:\s+criteria|\s+criterion)?\s*:?\s*$", re.IGNORECASE)
_EXCLUSION_PREFIX = re.compile(
    r"^(?:\[exclusion\]|exclusion\s*(?:criterion|criteria)?\s*:|exclude[sd]?\s*:)\s*", re.IGNORECASE)
# "Exclusion of X" / "Exclude X": the rest of the line is what is excluded.
_EXCLUSION_OF = re.compile(r"^(?:exclusion\s+of|exclude)\s+(?=\S)", re.IGNORECASE)
_INCLUSION_PREFIX = re.compile(
    r"^(?:\[inclusion\]|inclusion\s*(?:criterion|criteria)?\s*:|include[sd]?\s*:)\s*", re.IGNORECASE)


def parse_criteria_text(text: str) -> list[CriteriaSpec]:
    """Criteria from plain text (see the module docstring for the conventions)."""
    out: list[CriteriaSpec] = []
    section = "inclusion"
    for raw in text.splitlines():
        heading = _HEADING.match(raw)
        if heading:
            section = heading.group(1).lower()
            continue
        line = _BULLET.sub("", raw).strip()
        if not line or line.startswith("#"):
            continue
        kind = section
        match = _EXCLUSION_PREFIX.match(line)
        excluded_of = None if match else _EXCLUSION_OF.match(line)
        if match:
            kind, line = "exclusion", line[match.end():].strip()
        elif excluded_of:
            rest = line[excluded_of.end():].strip()
            kind, line = "exclusion", rest[:1].upper() + rest[1:]
        else:
            match = _INCLUSION_PREFIX.match(line)
            if match:
                kind, line = "inclusion", line[match.end():].strip()
        if line:
            out.append(CriteriaSpec(text=line, kind=kind))
    return out


def _from_lists(data: Mapping[str, Any], source: str) -> list[CriteriaSpec]:
    out: list[CriteriaSpec] = []
    for kind in ("inclusion", "exclusion"):
        values = data.get(kind, [])
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            raise FormatError(f"{kind!r} must be a list of strings", source=source, field=kind)
        for i, value in enumerate(values, 1):
            if not isinstance(value, str):
                raise FormatError(f"{kind} criterion {i} is not a string", source=source, field=kind)
            if value.strip():
                out.append(CriteriaSpec(text=" ".join(value.split()), kind=kind))
    return out


def _from_items(items: list[Any], source: str) -> list[CriteriaSpec]:
    out: list[CriteriaSpec] = []
    for i, item in enumerate(items, 1):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
            raise FormatError("each criterion needs a \"text\" string", source=source, record=i, field="text")
        try:
            spec = CriteriaSpec(text=" ".join(item["text"].split()), kind=item.get("kind", "inclusion"),
                                pico_element=item.get("pico_element"))
        except ValueError as exc:
            raise FormatError(str(exc), source=source, record=i) from None
        if spec.text:
            out.append(spec)
    return out


def read_criteria_file(path: str | Path) -> list[CriteriaSpec]:
    """Criteria from a TOML, JSON or text file; raises :class:`FormatError` naming the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError("file not found", source=str(file)) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the file: {exc}", source=str(file)) from None
    suffix = file.suffix.lower()
    source = str(file)
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FormatError(f"invalid TOML: {exc}", source=source) from None
        table = data.get("criteria", data)
        if not isinstance(table, Mapping):
            raise FormatError("[criteria] must be a table with inclusion/exclusion lists", source=source)
        found = _from_lists(table, source)
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from None
        if isinstance(data, Mapping) and "criteria" in data:
            data = data["criteria"]
        if isinstance(data, list):
            found = _from_items(data, source)
        elif isinstance(data, Mapping):
            found = _from_lists(data, source)
        else:
            raise FormatError("expected an object with inclusion/exclusion lists or a list of criteria",
                              source=source)
    else:
        found = parse_criteria_text(text)
    if not found:
        raise FormatError("no criteria found", source=source)
    return found


# -- classic generation ---------------------------------------------------------------------------


def _clause(text: str) -> str:
    """A PICO answer made to continue a sentence: one line, no final period, and a capital first
    letter lowered unless the first word looks like an acronym or a name ("HIV", "COVID-19")."""
    text = " ".join(text.split()).rstrip(" .;")
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        text = text[0].lower() + text[1:]
    return text


@implements("criteria", version=CLASSIC_VERSION)
def generate_classic(inp: CriteriaInput) -> CriteriaOutput:
    """One inclusion criterion per PICO element the question gives, plus the study design.

    Deterministic: the same question always gives the same criteria, in the order population,
    intervention, comparison, outcome, study design.
    """
    criteria: list[GeneratedCriterion] = []
    if inp.population and inp.population.strip():
        criteria.append(GeneratedCriterion(text=f"Participants are {_clause(inp.population)}",
                                           pico_element="population"))
    if inp.intervention and inp.intervention.strip():
        criteria.append(GeneratedCriterion(text=f"The study evaluates {_clause(inp.intervention)}",
                                           pico_element="intervention"))
    if inp.comparison and inp.comparison.strip():
        criteria.append(GeneratedCriterion(
            text=f"The study has a comparison group: {_clause(inp.comparison)}", pico_element="comparison"))
    if inp.outcome and inp.outcome.strip():
        criteria.append(GeneratedCriterion(text=f"The study reports {_clause(inp.outcome)}",
                                           pico_element="outcome"))
    design = _clause(inp.study_design) if inp.study_design and inp.study_design.strip() else None
    criteria.append(GeneratedCriterion(
        text=f"Study design: {design}" if design else DEFAULT_DESIGN_CRITERION, pico_element="study_design"))
    return CriteriaOutput(criteria=criteria)
