"""Getting data into the synthesis model: from extraction outputs and from files.

- :func:`study_from_results` turns the trial-results task's :class:`~leads.tasks.extraction.ResultsOutput`
  (values per group, denominators, grounded quotes) into a study with per-value provenance.
- :func:`study_from_extraction` reads one object of the ``leads extract results --json`` contract
  (``outcome_type``, ``intervention``/``comparator`` with events, group_size, mean, sd).
- :func:`load_input` reads a JSON file (a :class:`SynthesisInput` or a list of studies), JSON
  Lines (studies or ``leads extract results`` objects) or CSV/TSV with one study per row
  (column names of metafor, RevMan-style exports and the llm-meta-analysis dataset are accepted).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from leads.errors import FormatError, SourceError
from leads.synthesis.models import (
    BinaryArm,
    BinaryStudy,
    ContinuousArm,
    ContinuousStudy,
    DataError,
    Provenance,
    SynthesisInput,
)
from leads.tasks.extraction import GroupValue, ResultsOutput

__all__ = ["load_input", "parse_mean_sd", "study_from_extraction", "study_from_results"]

_BINARY_PARAMS = {"COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS", "PERCENT"}
_CONTINUOUS_PARAMS = {"MEAN", "LEAST_SQUARES_MEAN"}
_NOT_POOLABLE = {"MEDIAN": "a median", "GEOMETRIC_MEAN": "a geometric mean",
                 "GEOMETRIC_LEAST_SQUARES_MEAN": "a geometric least-squares mean"}
_NUMBER = r"[-+−]?\d+(?:[.,]\d+)?"
_MEAN_SD = re.compile(
    rf"^\s*(?P<mean>{_NUMBER})\s*(?:"
    rf"\(\s*(?:SD\s*[:=]?\s*)?(?P<sd1>{_NUMBER})\s*\)"
    rf"|(?:±|\+/-|\+-)\s*(?P<sd2>{_NUMBER})"
    rf"|\[\s*(?:SD\s*[:=]?\s*)?(?P<sd3>{_NUMBER})\s*\]"
    rf")\s*$", re.IGNORECASE)
_MISSING = {"", "na", "n/a", "nr", "null", "none", "-", "—", "not reported", "nan"}


def _to_float(text: str) -> float:
    return float(text.replace("−", "-").replace(",", "."))


def parse_mean_sd(value: str | None) -> tuple[float, float] | None:
    """``"12.3 (4.5)"``, ``"12.3 ± 4.5"``, ``"12.3 (SD 4.5)"`` → ``(12.3, 4.5)``; else ``None``."""
    if not value:
        return None
    match = _MEAN_SD.match(value)
    if not match:
        return None
    sd = match.group("sd1") or match.group("sd2") or match.group("sd3")
    return _to_float(match.group("mean")), _to_float(sd)


# --- from the trial-results task -------------------------------------------------------------


def _value_sources(value: GroupValue, *, record_id: int | str | None, call_id: int | None,
                   document: str | None, value_id: int | str | None,
                   note: str | None = None) -> list[Provenance]:
    provs = [Provenance(record_id=record_id, call_id=call_id, document=document, value_id=value_id,
                        quote=e.quote, start=e.start, end=e.end, note=note) for e in value.evidence]
    if not provs and (record_id is not None or call_id is not None or note):
        provs = [Provenance(record_id=record_id, call_id=call_id, document=document,
                            value_id=value_id, note=note)]
    return provs


def _group(output: ResultsOutput, group_id: str, study_id: str) -> GroupValue:
    for value in output.values:
        if value.group_id == group_id:
            return value
    known = [v.group_id for v in output.values]
    raise DataError(f"the results output has no group {group_id!r} (groups: {known})", study=study_id,
                    field="group_id")


def study_from_results(output: ResultsOutput, *, study_id: str, treatment_group: str,
                       control_group: str, label: str | None = None,
                       record_id: int | str | None = None, call_id: int | None = None,
                       document: str | None = None,
                       kind: Literal["binary", "continuous"] | None = None,
                       dispersion: ResultsOutput | None = None,
                       dispersion_type: Literal["SD", "SE"] = "SD",
                       value_ids: Mapping[str, int | str] | None = None) -> BinaryStudy | ContinuousStudy:
    """A study from the trial-results task's output for two of its groups.

    Counts (``COUNT_OF_PARTICIPANTS``) or percentages with the denominators give a binary study
    (events from a percentage are rounded to whole participants and the derivation is noted in
    the provenance); means give a continuous study, with the SD read from the value itself
    (``"mean (SD)"``, ``"mean ± SD"``) or from ``dispersion`` — the same task run for the SD
    (or SE, with ``dispersion_type="SE"``). Every value keeps its located quotes, the record
    and the model call as provenance.
    """
    param = output.param_type
    if param in _NOT_POOLABLE:
        raise DataError(f"the outcome is reported as {_NOT_POOLABLE[param]}, which cannot be pooled "
                        "as a mean", study=study_id, field="param_type")
    if kind is None:
        if param in _BINARY_PARAMS:
            kind = "binary"
        elif param in _CONTINUOUS_PARAMS:
            kind = "continuous"
        else:
            raise DataError(f"cannot tell from param type {param!r} whether the outcome is binary or "
                            "continuous; pass kind='binary' or kind='continuous'", study=study_id,
                            field="param_type")
    ids = value_ids or {}
    common: dict[str, Any] = {"record_id": record_id, "call_id": call_id, "document": document}
    arms: dict[str, BinaryArm | ContinuousArm] = {}
    for arm_name, group_id in (("treatment", treatment_group), ("control", control_group)):
        value = _group(output, group_id, study_id)
        total = output.denominators.get(group_id)
        total_sources = [Provenance(note=f"denominator of group {group_id}", **common)] if total is not None else []
        if kind == "binary":
            events = value.number
            note = None
            if param == "PERCENT" and events is not None:
                if total is None:
                    events = None
                    note = "percentage without a denominator: events unknown"
                else:
                    exact = events * total / 100.0
                    events = float(round(exact))
                    note = (f"events = {value.number:g}% × {total:g} = {exact:.4g}, "
                            f"rounded to {events:g}")
            sources = {"events": _value_sources(value, value_id=ids.get(group_id), note=note, **common)}
            if total_sources:
                sources["total"] = total_sources
            arms[arm_name] = BinaryArm(label=group_id, events=events, total=total,
                                       sources={k: v for k, v in sources.items() if v})
        else:
            mean, spread = value.number, None
            parsed = parse_mean_sd(value.value)
            if parsed is not None:
                mean, spread = parsed
            if spread is None and dispersion is not None:
                spread = _group(dispersion, group_id, study_id).number
            mean_sources = _value_sources(value, value_id=ids.get(group_id), **common)
            sources = {"mean": mean_sources, "n": total_sources}
            field = "sd" if dispersion_type == "SD" else "se"
            if spread is not None:
                if parsed is not None:
                    sources[field] = mean_sources
                elif dispersion is not None:
                    sources[field] = _value_sources(_group(dispersion, group_id, study_id), value_id=None,
                                                    **common)
            arms[arm_name] = ContinuousArm(
                label=group_id, mean=mean, n=total,
                sd=spread if dispersion_type == "SD" else None,
                se=spread if dispersion_type == "SE" else None,
                sources={k: v for k, v in sources.items() if v})
    base: dict[str, Any] = {"study_id": study_id, "label": label, "record_id": record_id, "outcome": output.outcome}
    if kind == "binary":
        return BinaryStudy(treatment=arms["treatment"], control=arms["control"], **base)  # type: ignore[arg-type]
    return ContinuousStudy(treatment=arms["treatment"], control=arms["control"], **base)  # type: ignore[arg-type]


# --- from `leads extract results --json` -----------------------------------------------------

_ARM_OF = {"intervention": "treatment", "comparator": "control", "treatment": "treatment",
           "control": "control"}
_BINARY_FIELD = {"events": "events", "group_size": "total"}
_CONTINUOUS_FIELD = {"mean": "mean", "sd": "sd", "group_size": "n"}


def _evidence_item(item: Any, common: dict[str, Any]) -> tuple[str | None, Provenance]:
    if isinstance(item, str):
        return None, Provenance(quote=item, **common)
    if not isinstance(item, Mapping):
        raise ValueError(f"evidence items must be objects or strings, got {type(item).__name__}")
    quote = item.get("quote", item.get("text"))
    start, end = item.get("start"), item.get("end")
    field = item.get("field")
    arm = item.get("arm") or item.get("group")
    if field and "." not in field and arm:
        field = f"{arm}.{field}"
    return field, Provenance(quote=quote, start=start, end=end, **common)


def study_from_extraction(obj: Mapping[str, Any], *, study_id: str | None = None,
                          record_id: int | str | None = None,
                          call_id: int | None = None) -> BinaryStudy | ContinuousStudy:
    """A study from one ``leads extract results --json`` object.

    Evidence items may name the value they support (``"field": "intervention.events"``, or
    ``"arm"`` + ``"field"``); those without are kept as evidence for the study as a whole.
    """
    kind = obj.get("outcome_type")
    if kind not in ("binary", "continuous"):
        raise ValueError(f"outcome_type must be 'binary' or 'continuous', got {kind!r}")
    sid = study_id or obj.get("study_id") or obj.get("file")
    if not sid:
        raise ValueError("the object names no study: give study_id (or a 'file' key)")
    document = obj.get("file")
    common: dict[str, Any] = {"record_id": record_id, "call_id": call_id, "document": document}
    per_field: dict[str, list[Provenance]] = {}
    study_level: list[Provenance] = []
    for item in obj.get("evidence") or []:
        field, prov = _evidence_item(item, common)
        if field:
            arm_key, _, name = field.partition(".")
            arm = _ARM_OF.get(arm_key)
            mapping = _BINARY_FIELD if kind == "binary" else _CONTINUOUS_FIELD
            if arm and name in mapping:
                per_field.setdefault(f"{arm}.{mapping[name]}", []).append(prov)
                continue
        study_level.append(prov)
    arms: dict[str, dict[str, Any]] = {}
    for source_arm, arm in (("intervention", "treatment"), ("comparator", "control")):
        values = obj.get(source_arm) or {}
        if not isinstance(values, Mapping):
            raise ValueError(f"{source_arm!r} must be an object")
        mapping = _BINARY_FIELD if kind == "binary" else _CONTINUOUS_FIELD
        fields = {dest: values.get(src) for src, dest in mapping.items()}
        sources = {name: per_field[f"{arm}.{name}"] for name in mapping.values()
                   if f"{arm}.{name}" in per_field}
        arms[arm] = {**fields, "sources": sources}
    base: dict[str, Any] = {"study_id": str(sid), "record_id": record_id, "outcome": obj.get("outcome") or "",
            "sources": study_level}
    if kind == "binary":
        return BinaryStudy(treatment=BinaryArm(**arms["treatment"]), control=BinaryArm(**arms["control"]),
                           **base)
    return ContinuousStudy(treatment=ContinuousArm(**arms["treatment"]),
                           control=ContinuousArm(**arms["control"]), **base)


# --- files -----------------------------------------------------------------------------------

_COLUMNS: dict[str, tuple[str, ...]] = {
    "study_id": ("study_id", "study", "trial", "id"),
    "label": ("label", "study_label", "author"),
    "record_id": ("record_id", "pmid", "pmcid"),
    "outcome": ("outcome",),
    "type": ("type", "outcome_type", "data_type"),
    "t.events": ("events_t", "treatment_events", "intervention_events", "event_e", "events1", "ai"),
    "c.events": ("events_c", "control_events", "comparator_events", "event_c", "events2", "ci"),
    "t.size": ("total_t", "n_t", "treatment_total", "treatment_n", "intervention_group_size", "n_e",
               "n1", "n1i"),
    "c.size": ("total_c", "n_c", "control_total", "control_n", "comparator_group_size", "n2",
               "n2i"),
    "t.mean": ("mean_t", "treatment_mean", "intervention_mean", "mean_e", "mean1", "m1i"),
    "c.mean": ("mean_c", "control_mean", "comparator_mean", "mean2", "m2i"),
    "t.sd": ("sd_t", "treatment_sd", "intervention_sd", "intervention_standard_deviation", "sd_e",
             "sd1", "sd1i"),
    "c.sd": ("sd_c", "control_sd", "comparator_sd", "comparator_standard_deviation", "sd2", "sd2i"),
    "t.se": ("se_t", "treatment_se", "intervention_se"),
    "c.se": ("se_c", "control_se", "comparator_se"),
    "t.ci_lower": ("ci_lower_t", "treatment_ci_lower"),
    "t.ci_upper": ("ci_upper_t", "treatment_ci_upper"),
    "c.ci_lower": ("ci_lower_c", "control_ci_lower"),
    "c.ci_upper": ("ci_upper_c", "control_ci_upper"),
    "measure": ("measure", "effect_measure"),
    "estimate": ("estimate", "effect", "yi_natural"),
    "se": ("se", "standard_error"),
    "ci_lower": ("ci_lower", "lower"),
    "ci_upper": ("ci_upper", "upper"),
    "ci_level": ("ci_level", "level"),
}
_TYPE_WORDS = {"binary": "binary", "dichotomous": "binary", "continuous": "continuous",
               "generic": "generic", "effect": "generic"}


def _norm_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())


class _Row:
    def __init__(self, row: dict[str, str], columns: dict[str, str], source: str, number: int) -> None:
        self.row, self.columns, self.source, self.number = row, columns, source, number

    def text(self, key: str) -> str | None:
        column = self.columns.get(key)
        if column is None:
            return None
        value = (self.row.get(column) or "").strip()
        return None if value.lower() in _MISSING else value

    def number_(self, key: str) -> float | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return float(value.replace(",", "").replace("−", "-"))
        except ValueError:
            raise FormatError(f"{value!r} is not a number", source=self.source, record=self.number,
                              field=self.columns[key]) from None


def _study_from_row(row: _Row) -> dict[str, Any]:
    kind_text = row.text("type")
    kind = _TYPE_WORDS.get(kind_text.lower()) if kind_text else None
    if kind_text and kind is None:
        raise FormatError(f"unknown study type {kind_text!r}; use binary, continuous or generic",
                          source=row.source, record=row.number, field=row.columns["type"])
    if kind is None:
        if row.text("t.events") is not None or row.text("c.events") is not None:
            kind = "binary"
        elif row.text("t.mean") is not None or row.text("c.mean") is not None:
            kind = "continuous"
        elif row.text("estimate") is not None:
            kind = "generic"
        else:
            raise FormatError("cannot tell whether the row is binary, continuous or a reported effect: "
                              "give events, means, an estimate or a type column",
                              source=row.source, record=row.number)
    study_id = row.text("study_id") or f"row {row.number}"
    study: dict[str, Any] = {"study_id": study_id, "type": kind, "label": row.text("label"),
                             "outcome": row.text("outcome") or ""}
    record = row.text("record_id")
    if record is not None:
        study["record_id"] = int(record) if record.isdigit() else record
    if kind == "binary":
        for prefix, arm in (("t", "treatment"), ("c", "control")):
            study[arm] = {"events": row.number_(f"{prefix}.events"), "total": row.number_(f"{prefix}.size")}
    elif kind == "continuous":
        for prefix, arm in (("t", "treatment"), ("c", "control")):
            study[arm] = {"mean": row.number_(f"{prefix}.mean"), "sd": row.number_(f"{prefix}.sd"),
                          "n": row.number_(f"{prefix}.size"), "se": row.number_(f"{prefix}.se"),
                          "ci_lower": row.number_(f"{prefix}.ci_lower"),
                          "ci_upper": row.number_(f"{prefix}.ci_upper")}
    else:
        measure = (row.text("measure") or "").upper()
        if not measure:
            raise FormatError("a reported effect needs its measure (OR, RR, RD, MD or SMD)",
                              source=row.source, record=row.number, field="measure")
        effect: dict[str, Any] = {"measure": measure, "estimate": row.number_("estimate"),
                                  "se": row.number_("se"), "ci_lower": row.number_("ci_lower"),
                                  "ci_upper": row.number_("ci_upper")}
        level = row.number_("ci_level")
        if level is not None:
            effect["ci_level"] = level / 100 if level > 1 else level
        study["effect"] = effect
    return study


def _read_table(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") or ("\t" in text.split("\n", 1)[0]
                                                                    and "," not in text.split("\n", 1)[0]) else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if not reader.fieldnames:
        raise FormatError("the file has no header row", source=str(path))
    normalised = {_norm_header(name): name for name in reader.fieldnames}
    columns: dict[str, str] = {}
    for key, aliases in _COLUMNS.items():
        for alias in aliases:
            if alias in normalised:
                columns[key] = normalised[alias]
                break
    return [_study_from_row(_Row(row, columns, str(path), i))
            for i, row in enumerate(reader, start=1) if any((v or "").strip() for v in row.values())]


def _validate(data: Any, source: str) -> SynthesisInput:
    try:
        return SynthesisInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        record = loc[1] + 1 if len(loc) > 1 and loc[0] == "studies" and isinstance(loc[1], int) else None
        field = ".".join(str(p) for p in loc[2:]) if record is not None else ".".join(map(str, loc))
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise FormatError(f"{first['msg']}{more}", source=source, record=record,
                          field=field or None) from None


def load_input(path: str | Path, *, outcome: str | None = None) -> SynthesisInput:
    """Read studies from JSON, JSON Lines or CSV/TSV; ``outcome`` keeps only the studies whose
    outcome contains that text (case-insensitive)."""
    path = Path(path)
    if not path.is_file():
        raise SourceError("no such file", source=str(path))
    suffix = path.suffix.lower()
    data: Any
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        data = {"studies": _read_table(path)}
    elif suffix == ".jsonl":
        studies: list[Any] = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"invalid JSON: {exc.msg}", source=str(path), line=i) from None
            if isinstance(obj, dict) and "outcome_type" in obj:
                try:
                    studies.append(study_from_extraction(obj, study_id=obj.get("study_id") or obj.get("file")
                                                         or f"line {i}").model_dump())
                except (ValueError, ValidationError) as exc:
                    raise FormatError(str(exc).splitlines()[0], source=str(path), line=i) from None
            else:
                studies.append(obj)
        data = {"studies": studies}
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON: {exc.msg}", source=str(path), line=exc.lineno) from None
        if isinstance(data, list):
            data = {"studies": data}
    if outcome is not None and isinstance(data, dict) and isinstance(data.get("studies"), list):
        needle = outcome.lower()
        kept = [s for s in data["studies"] if needle in str((s or {}).get("outcome", "")).lower()]
        if not kept:
            raise FormatError(f"no study has an outcome containing {outcome!r}", source=str(path))
        data = {**data, "studies": kept, "outcome": data.get("outcome") or kept[0].get("outcome", "")}
    result = _validate(data, str(path))
    if not result.outcome:
        outcomes = {s.outcome for s in result.studies if s.outcome}
        if len(outcomes) == 1:
            result.outcome = outcomes.pop()
    return result

