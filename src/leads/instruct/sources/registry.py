"""Arm design, participant statistics and trial results examples from ClinicalTrials.gov records.

**API v2 studies with results** (``api_fixtures/ctgov``): the record's own structured data is the
gold, and the text is the record rendered as a readable report by :func:`render_study` (title,
summaries, arms and interventions as the registry's web page lists them, baseline table, outcome
measures with their per-group results). Every gold value therefore stands in the text, and each
quote is the rendered line that states it. Arms whose type the registry does not give, measures
whose parameter type the task does not know and values reported as not available are left out.

**NLI4CT** (``registry/nli4ct``): breast-cancer trials flattened to text by the NLI4CT authors
(intervention and results sections). The text is those sections as given, and the gold for the
trial results task is parsed back from its lines ("Measure Type", "Unit of Measure" + value,
"Overall Number of Participants Analyzed", "Time frame"); outcomes reported by category (several
values per group) are left out. NLI4CT gives no arm types, so no arm-design examples are made.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leads.instruct.sources import Candidate, SharedSource, SourceSkipped
from leads.tasks.extraction import ARM_TYPES, ArmsInput, Group, ParticipantsInput, ResultsInput

__all__ = ["SOURCES", "nli4ct_results", "render_study", "study_candidates"]

PARAM_TYPES = ("NUMBER", "COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS", "MEAN", "MEDIAN", "LEAST_SQUARES_MEAN",
               "GEOMETRIC_MEAN", "GEOMETRIC_LEAST_SQUARES_MEAN", "PERCENT")
_ARM_TITLES = {
    "EXPERIMENTAL": "Experimental",
    "ACTIVE_COMPARATOR": "Active Comparator",
    "PLACEBO_COMPARATOR": "Placebo Comparator",
    "SHAM_COMPARATOR": "Sham Comparator",
    "NO_INTERVENTION": "No Intervention",
    "OTHER": "Other",
}
_NOT_AVAILABLE = {"", "NA", "N/A", "NR"}


def _param_name(param: str) -> str:
    return param.replace("_", " ").lower()


def _value_text(measurement: dict[str, Any]) -> str:
    value = str(measurement.get("value", "")).strip()
    if measurement.get("spread"):
        value += f" ({measurement['spread']})"
    elif measurement.get("lowerLimit") and measurement.get("upperLimit"):
        value += f" ({measurement['lowerLimit']} to {measurement['upperLimit']})"
    return value


def _rows(measure: dict[str, Any]) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """``(row name, {group id: measurement})`` for each class x category of a measure."""
    title = str(measure.get("title", "")).strip()
    for cls in measure.get("classes") or []:
        for category in cls.get("categories") or []:
            parts = [title, str(cls.get("title") or "").strip(), str(category.get("title") or "").strip()]
            name = ": ".join(p for p in parts if p)
            values = {str(m.get("groupId")): m for m in category.get("measurements") or []}
            yield name, values


def _line(name: str, measure: dict[str, Any], groups: list[dict[str, Any]],
          values: dict[str, dict[str, Any]]) -> str:
    param = measure.get("paramType")
    unit = str(measure.get("unitOfMeasure") or "").strip()
    head = f"{name} ({_param_name(param) + ', ' if param else ''}{unit})" if unit or param else name
    cells = [f"{g.get('title', g['id'])}: {_value_text(values[g['id']])}" for g in groups if g["id"] in values]
    return f"{head}: " + "; ".join(cells)


def render_study(study: dict[str, Any]) -> str:
    """A ClinicalTrials.gov API v2 study as a plain-text report (see the module docstring)."""
    protocol = study.get("protocolSection") or {}
    results = study.get("resultsSection") or {}
    ident = protocol.get("identificationModule") or {}
    description = protocol.get("descriptionModule") or {}
    parts: list[str] = [str(ident.get("officialTitle") or ident.get("briefTitle") or "").strip()]
    if description.get("briefSummary"):
        parts.append("Brief summary:\n" + str(description["briefSummary"]).strip())
    if description.get("detailedDescription"):
        parts.append("Detailed description:\n" + str(description["detailedDescription"]).strip())
    arms_module = protocol.get("armsInterventionsModule") or {}
    arm_lines = []
    for arm in arms_module.get("armGroups") or []:
        kind = _ARM_TITLES.get(str(arm.get("type")), "")
        arm_lines.append(f"{kind + ': ' if kind else ''}{arm.get('label', '').strip()}")
        if arm.get("description"):
            arm_lines.append(str(arm["description"]).strip())
        if arm.get("interventionNames"):
            arm_lines.append("Interventions: " + ", ".join(arm["interventionNames"]))
    if arm_lines:
        parts.append("Arms and interventions:\n" + "\n".join(arm_lines))
    baseline = results.get("baselineCharacteristicsModule") or {}
    if baseline.get("measures"):
        groups = baseline.get("groups") or []
        lines = ["Baseline characteristics:"]
        if baseline.get("populationDescription"):
            lines.append(str(baseline["populationDescription"]).strip())
        lines.append("Groups: " + "; ".join(f"{g.get('title', g['id'])}" + (f" ({g['description'].strip()})"
                                            if g.get("description") else "") for g in groups))
        for denom in baseline.get("denoms") or []:
            counts = {str(c.get("groupId")): {"value": c.get("value")} for c in denom.get("counts") or []}
            lines.append(_line(f"Overall number of baseline {denom.get('units', 'participants')}",
                               {}, groups, counts))
        for measure in baseline["measures"]:
            for name, values in _rows(measure):
                lines.append(_line(name, measure, groups, values))
        parts.append("\n".join(lines))
    outcomes = (results.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []
    for number, measure in enumerate(outcomes, 1):
        groups = measure.get("groups") or []
        lines = [f"Outcome measure {number} ({str(measure.get('type', '')).lower()}): {measure.get('title', '').strip()}"]
        if measure.get("description"):
            lines.append("Description: " + str(measure["description"]).strip())
        if measure.get("timeFrame"):
            lines.append("Time frame: " + str(measure["timeFrame"]).strip())
        if measure.get("populationDescription"):
            lines.append("Analysis population: " + str(measure["populationDescription"]).strip())
        lines.append("Groups: " + "; ".join(f"{g.get('title', g['id'])}" + (f" ({g['description'].strip()})"
                                            if g.get("description") else "") for g in groups))
        for denom in measure.get("denoms") or []:
            counts = {str(c.get("groupId")): {"value": c.get("value")} for c in denom.get("counts") or []}
            lines.append(_line(f"Number analysed ({denom.get('units', 'Participants')})", {}, groups, counts))
        for name, values in _rows(measure):
            lines.append(_line(name, measure, groups, values))
        parts.append("\n".join(lines))
    return "\n\n".join(p for p in parts if p)


def _group_models(groups: list[dict[str, Any]]) -> list[Group] | None:
    if not groups or len(groups) > 20:
        return None
    titles = [str(g.get("title", "")).strip() for g in groups]
    if len({t.casefold() for t in titles}) != len(titles) or not all(titles):
        return None
    return [Group(id=str(g["id"]), title=t[:300], description=str(g.get("description") or "").strip()[:1000])
            for g, t in zip(groups, titles, strict=True)]


def _complete(values: dict[str, dict[str, Any]], groups: list[Group]) -> bool:
    return all(g.id in values and str(values[g.id].get("value", "")).strip() not in _NOT_AVAILABLE for g in groups)


def study_candidates(study: dict[str, Any], item: str) -> Iterator[Candidate]:
    """Arm-design, participant-statistics and trial-results candidates of one registry study."""
    protocol = study.get("protocolSection") or {}
    nct = str((protocol.get("identificationModule") or {}).get("nctId") or item)
    text = render_study(study)
    groups_key = [f"nct:{nct}"]
    arms = (protocol.get("armsInterventionsModule") or {}).get("armGroups") or []
    if arms and all(str(a.get("type")) in ARM_TYPES and a.get("label") for a in arms):
        arm_answer: list[dict[str, Any]] = []
        for arm in arms:
            kind = _ARM_TITLES[str(arm["type"])]
            arm_answer.append({"label": str(arm["label"]).strip(), "type": arm["type"],
                           "description": str(arm.get("description") or "").strip(),
                           "interventionNames": list(arm.get("interventionNames") or []),
                           "quote": f"{kind}: {str(arm['label']).strip()}"})
        yield Candidate(task="arms", input=ArmsInput(text=text), answer=arm_answer, item=f"{nct}#arms",
                        groups=groups_key)
    results = study.get("resultsSection") or {}
    baseline = results.get("baselineCharacteristicsModule") or {}
    base_groups = _group_models(baseline.get("groups") or [])
    if base_groups:
        raw_groups = baseline.get("groups") or []
        for measure in baseline.get("measures") or []:
            param = measure.get("paramType")
            if param not in PARAM_TYPES:
                continue
            for name, values in _rows(measure):
                if not _complete(values, base_groups) or len(name) > 300:
                    continue
                quote = _line(name, measure, raw_groups, values)
                base_answer = {"results": [{"groupId": g.id, "value": str(values[g.id]["value"]).strip(), "note": "",
                                       "quote": quote} for g in base_groups]}
                base_input = ParticipantsInput(text=text, measure=name, param_type=param,
                                        unit=str(measure.get("unitOfMeasure") or "")[:100], groups=base_groups)
                yield Candidate(task="participants", input=base_input, answer=base_answer, item=f"{nct}#baseline:{name}",
                                groups=groups_key)
    for number, measure in enumerate((results.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or [], 1):
        param = measure.get("paramType")
        groups = _group_models(measure.get("groups") or [])
        if param not in PARAM_TYPES or not groups:
            continue
        denoms = (measure.get("denoms") or [{}])[0]
        counts = {str(c.get("groupId")): str(c.get("value")) for c in denoms.get("counts") or []}
        rows = list(_rows(measure))
        for name, values in rows:
            if not _complete(values, groups) or len(name) > 500:
                continue
            quote = _line(name, measure, measure.get("groups") or [], values)
            answer = {
                "paramType": param,
                "unitOfMeasure": str(measure.get("unitOfMeasure") or "")[:100],
                "timeFrame": str(measure.get("timeFrame") or "").strip()[:300],
                "unitOfDenom": str(denoms.get("units") or "Participants")[:100],
                "denomValue": [counts.get(g.id) for g in groups],
                "results": [{"title": g.title, "value": str(values[g.id]["value"]).strip(), "quote": quote}
                            for g in groups],
            }
            inp = ResultsInput(text=text, outcome=name, groups=groups,
                               outcome_description=str(measure.get("description") or "").strip()[:2000])
            yield Candidate(task="results", input=inp, answer=answer, item=f"{nct}#outcome{number}:{name}",
                            groups=groups_key)


def _ctgov(shared: Path, budget: int | None) -> Iterator[Candidate]:
    folder = shared / "api_fixtures" / "ctgov"
    if not folder.is_dir():
        raise SourceSkipped(f"{folder} is missing")
    for path in sorted(folder.glob("study_*.json")):
        study = json.loads(path.read_text(encoding="utf-8"))
        if not study.get("resultsSection"):
            continue
        yield from study_candidates(study, path.stem)


# --- NLI4CT ----------------------------------------------------------------------------------

_NLI_PARAMS = {
    "number": "NUMBER",
    "mean": "MEAN",
    "median": "MEDIAN",
    "count of participants": "COUNT_OF_PARTICIPANTS",
    "count of units": "COUNT_OF_UNITS",
    "least squares mean": "LEAST_SQUARES_MEAN",
    "geometric mean": "GEOMETRIC_MEAN",
    "geometric least squares mean": "GEOMETRIC_LEAST_SQUARES_MEAN",
}
_VALUE = re.compile(r"^(?P<value>-?\d[\d,]*(?:\.\d+)?)(?P<rest>.*)$")
_DISPERSION = re.compile(r"^\s*(?:\([^()]*\)|±\s*\S+|\d+(?:\.\d+)?\s*%|)\s*$")


def _split_field(line: str, name: str) -> str | None:
    stripped = line.strip()
    return stripped[len(name):].strip() if stripped.startswith(name) else None


def nli4ct_results(trial: dict[str, Any]) -> Candidate | None:
    """The trial-results candidate of one NLI4CT trial, or ``None`` when its outcome is not one
    value per group."""
    nct = str(trial.get("Clinical Trial ID", "")).strip()
    lines = [str(x) for x in trial.get("Results") or []]
    if not nct or not lines or not lines[0].startswith("Outcome Measurement"):
        return None
    text = "\n".join(["Interventions:", *(str(x) for x in trial.get("Intervention") or []), "", "Results:", *lines])
    head: list[str] = []
    blocks: list[list[str]] = []
    for line in lines[1:]:
        if re.match(r"^Results \d+:", line):
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
        else:
            head.append(line.strip())
    if not head or not blocks:
        return None
    outcome = head[0]
    time_frame = ""
    description: list[str] = []
    for line in head[1:]:
        frame = _split_field(line, "Time frame:")
        if frame is not None:
            time_frame = frame
        elif line and line != "[Not Specified]":
            description.append(line)
    groups: list[Group] = []
    denominators: list[str | None] = []
    results: list[dict[str, str]] = []
    param: str | None = None
    unit: str | None = None
    for index, block in enumerate(blocks):
        fields: dict[str, str] = {}
        unit_line: str | None = None
        extra = 0
        current: str | None = None
        for line in block:
            stripped = line.strip()
            for name in ("Arm/Group Title:", "Arm/Group Description:", "Overall Number of Participants Analyzed:",
                         "Measure Type:", "Unit of Measure:"):
                value = _split_field(line, name)
                if value is not None:
                    current = name
                    fields[name] = value
                    if name == "Unit of Measure:":
                        unit_line = stripped
                    break
            else:
                if current == "Arm/Group Description:":
                    fields[current] += " " + stripped
                elif current == "Unit of Measure:" and stripped:
                    extra += 1
        if unit_line is None or extra or "Arm/Group Title:" not in fields:
            return None
        unit_value = fields["Unit of Measure:"]
        parts = re.split(r"\s{2,}", unit_value, maxsplit=1)
        if len(parts) != 2 or ":" in parts[0]:
            return None
        match = _VALUE.match(parts[1].strip())
        if not match or not _DISPERSION.match(match.group("rest")):
            return None
        block_param = _NLI_PARAMS.get(fields.get("Measure Type:", "").strip().casefold())
        if block_param is None or (param is not None and block_param != param) or (unit is not None and parts[0] != unit):
            return None
        param, unit = block_param, parts[0]
        groups.append(Group(id=f"OG{index:03d}", title=fields["Arm/Group Title:"][:300],
                            description=fields.get("Arm/Group Description:", "")[:1000]))
        denominators.append(fields.get("Overall Number of Participants Analyzed:") or None)
        results.append({"title": groups[-1].title, "value": match.group("value"), "quote": unit_line})
    if param is None or unit is None or len(groups) > 20 or len({g.title.casefold() for g in groups}) != len(groups):
        return None
    answer = {"paramType": param, "unitOfMeasure": unit[:100], "timeFrame": time_frame[:300],
              "unitOfDenom": "Participants", "denomValue": denominators, "results": results}
    inp = ResultsInput(text=text, outcome=outcome[:500], outcome_description=" ".join(description)[:2000],
                       groups=groups)
    return Candidate(task="results", input=inp, answer=answer, item=f"{nct}#primary", groups=[f"nct:{nct}"])


def _nli4ct(shared: Path, budget: int | None) -> Iterator[Candidate]:
    path = shared / "registry" / "nli4ct" / "cts.jsonl.gz"
    if not path.is_file():
        raise SourceSkipped(f"{path} is missing")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                candidate = nli4ct_results(json.loads(line))
                if candidate is not None:
                    yield candidate


SOURCES = (
    SharedSource(
        name="registry/ctgov-api",
        licence="ClinicalTrials.gov records (U.S. Government data); fixtures from ctti-clinicaltrials/aact (MIT)",
        tasks=("arms", "participants", "results"),
        read=_ctgov,
        description="ClinicalTrials.gov API v2 studies with results: the record's structured data, rendered as text",
    ),
    SharedSource(
        name="registry/nli4ct",
        licence="ClinicalTrials.gov records (U.S. Government data); NLI4CT repository has no licence file",
        tasks=("results",),
        read=_nli4ct,
        description="NLI4CT breast-cancer trials: the flattened results section, one value per group",
    ),
)
