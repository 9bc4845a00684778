"""Tasks 3-6 (study characteristics, arm design, participant statistics, trial results) and PICO spans.

Output shapes follow ClinicalTrials.gov's results schema (API v2 ``armsInterventionsModule``,
``baselineCharacteristicsModule``, ``outcomeMeasuresModule``). Every value carries evidence quotes
located in the paper; ``None`` means "not reported", which is an answer, not a failure.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from leads.tasks._base import (
    AnswerError,
    Evidence,
    Message,
    Task,
    TaskInput,
    TaskOutput,
    enum_property,
    exact_items,
    ground_quotes,
    leads_prompt,
    truncate_text,
)

__all__ = [
    "ARM_TYPES",
    "ArmDesignTask",
    "ArmsAnswer",
    "ArmsInput",
    "ArmsOutput",
    "CharacteristicsAnswer",
    "CharacteristicsInput",
    "CharacteristicsOutput",
    "ExtractedArm",
    "ExtractedField",
    "FieldSpec",
    "Group",
    "GroupValue",
    "ParticipantStatisticsTask",
    "ParticipantsAnswer",
    "ParticipantsInput",
    "ParticipantsOutput",
    "PicoAnswer",
    "PicoInput",
    "PicoOutput",
    "PicoSpan",
    "PicoTask",
    "ResultsAnswer",
    "ResultsInput",
    "ResultsOutput",
    "StudyCharacteristicsTask",
    "TrialResultsTask",
]

PAPER_CONTEXT = "You are a clinical researcher extracting data from a clinical trial report for a systematic review."
QUOTE_RULE = "For every value, copy the sentence or table row that supports it word for word as a quote."

ArmType = Literal["EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR",
                  "NO_INTERVENTION", "OTHER"]
ARM_TYPES: tuple[str, ...] = ("EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR",
                              "NO_INTERVENTION", "OTHER")
ParamType = Literal["NUMBER", "COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS", "MEAN", "MEDIAN",
                    "LEAST_SQUARES_MEAN", "GEOMETRIC_MEAN", "GEOMETRIC_LEAST_SQUARES_MEAN", "PERCENT"]


class _PaperInput(TaskInput):
    text: str = Field(description="The paper (full text or abstract) as leads reads it.")


def _paper(inp: _PaperInput, budget: int | None) -> str:
    return truncate_text(inp.text, budget)


# --- study characteristics -------------------------------------------------------------------


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)

    @classmethod
    def parse(cls, spec: str) -> FieldSpec:
        """``"name: description"`` as given on the command line."""
        name, _, description = spec.partition(":")
        return cls(name=name.strip(), description=description.strip())


class CharacteristicsInput(_PaperInput):
    fields: list[FieldSpec] = Field(min_length=1, max_length=60)


class _FieldAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    value: str | None = Field(max_length=2000, description="null when the paper does not report it")
    quote: str | None = Field(default=None, max_length=1500)


class CharacteristicsAnswer(RootModel[list[_FieldAnswer]]):
    """LEADS' answer: ``[{"name": ..., "value": ...}]`` (leads adds ``quote``)."""

    root: list[_FieldAnswer] = Field(max_length=60)


class ExtractedField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: str | None
    evidence: list[Evidence] = Field(default_factory=list)
    unsupported_quotes: list[str] = Field(default_factory=list)


class CharacteristicsOutput(TaskOutput):
    fields: list[ExtractedField]


class StudyCharacteristicsTask(Task[CharacteristicsInput, CharacteristicsAnswer, CharacteristicsOutput]):
    name = "characteristics"
    description = "paper + fields (name: description) -> one value per field, with quotes"
    input_model = CharacteristicsInput
    answer_model = CharacteristicsAnswer
    output_model = CharacteristicsOutput

    def answer_schema(self, inp: CharacteristicsInput | None = None) -> dict[str, Any]:
        schema = super().answer_schema(inp)
        if inp is not None:
            exact_items(schema, len(inp.fields))
            enum_property(schema, "_FieldAnswer", "name", [f.name for f in inp.fields])
        return schema

    def messages(self, inp: CharacteristicsInput, *, text_budget: int | None = None) -> list[Message]:
        fields = "\n".join(f"- {f.name}: {f.description}" for f in inp.fields)
        return leads_prompt(
            context=PAPER_CONTEXT,
            objective="Extract the value of each target field from the paper. Use null as the value "
                      f"when the paper does not report it. {QUOTE_RULE}",
            sections={"PAPER CONTENT": _paper(inp, text_budget), "TARGET": fields},
            response='A JSON list [{"name": "<field name>", "value": "<value or null>", "quote": "..."}] '
                     "with one entry per target field, in order.",
        )

    def finish(self, answer: CharacteristicsAnswer, inp: CharacteristicsInput, *,
               strict_quotes: bool = True) -> CharacteristicsOutput:
        by_name = {a.name.strip().lower(): a for a in answer.root}
        missing = [f.name for f in inp.fields if f.name.strip().lower() not in by_name]
        if missing:
            raise AnswerError(f"no entry for the field(s) {missing}; give one entry per target field")
        out = []
        for spec in inp.fields:
            item = by_name[spec.name.strip().lower()]
            value = _none_if_not_reported(item.value)
            quotes = [item.quote] if item.quote and value is not None else []
            evidence, unsupported = ground_quotes(quotes, inp.text, strict=strict_quotes,
                                                  where=f"field {spec.name!r}")
            out.append(ExtractedField(name=spec.name, value=value, evidence=evidence,
                                      unsupported_quotes=unsupported))
        return CharacteristicsOutput(fields=out)


def _none_if_not_reported(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if text.lower() in {"", "null", "none", "nr", "n/a", "not reported", "not stated", "unknown"}:
        return None
    return text


# --- arm design ------------------------------------------------------------------------------


class ArmsInput(_PaperInput):
    pass


class _ArmAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(max_length=300)
    type: ArmType
    description: str = Field(default="", max_length=2000)
    interventionNames: list[str] = Field(default_factory=list, max_length=20)
    quote: str | None = Field(default=None, max_length=1500)


class ArmsAnswer(RootModel[list[_ArmAnswer]]):
    """LEADS' answer: ``[{"label", "type", "description", "interventionNames"}]``."""

    root: list[_ArmAnswer] = Field(min_length=1, max_length=20)


class ExtractedArm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    type: ArmType
    description: str
    interventions: list[str]
    evidence: list[Evidence] = Field(default_factory=list)
    unsupported_quotes: list[str] = Field(default_factory=list)


class ArmsOutput(TaskOutput):
    arms: list[ExtractedArm]


class ArmDesignTask(Task[ArmsInput, ArmsAnswer, ArmsOutput]):
    name = "arms"
    description = "paper -> arms: label, type, description, intervention names"
    input_model = ArmsInput
    answer_model = ArmsAnswer
    output_model = ArmsOutput

    def messages(self, inp: ArmsInput, *, text_budget: int | None = None) -> list[Message]:
        return leads_prompt(
            context=PAPER_CONTEXT,
            objective="List every arm (group) of the trial: its label, its type (one of "
                      + ", ".join(ARM_TYPES) + "), a description with the intervention, dose and "
                      f"schedule, and the names of its interventions. {QUOTE_RULE}",
            sections={"PAPER CONTENT": _paper(inp, text_budget)},
            response='A JSON list [{"label": "...", "type": "EXPERIMENTAL", "description": "...", '
                     '"interventionNames": ["..."], "quote": "..."}], one entry per arm.',
        )

    def finish(self, answer: ArmsAnswer, inp: ArmsInput, *, strict_quotes: bool = True) -> ArmsOutput:
        arms = []
        for i, arm in enumerate(answer.root):
            evidence, unsupported = ground_quotes([arm.quote] if arm.quote else [], inp.text,
                                                  strict=strict_quotes, where=f"arm {i + 1}")
            arms.append(ExtractedArm(label=arm.label.strip(), type=arm.type, description=arm.description.strip(),
                                     interventions=[n.strip() for n in arm.interventionNames if n.strip()],
                                     evidence=evidence, unsupported_quotes=unsupported))
        return ArmsOutput(arms=arms)


# --- participant statistics ------------------------------------------------------------------


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=20, description="e.g. BG000")
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=1000)


class ParticipantsInput(_PaperInput):
    measure: str = Field(min_length=1, max_length=300, description="e.g. 'Age', 'Sex: Female'")
    param_type: ParamType = "COUNT_OF_PARTICIPANTS"
    unit: str = Field(default="Participants", max_length=100)
    groups: list[Group] = Field(min_length=1, max_length=20)


class _GroupValueAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groupId: str = Field(max_length=20)
    value: str | None = Field(max_length=100)
    note: str = Field(default="", max_length=500)
    quote: str | None = Field(default=None, max_length=1500)


class ParticipantsAnswer(BaseModel):
    """LEADS' answer: ``{"results": [{"groupId", "value", "note"}]}``."""

    model_config = ConfigDict(extra="forbid")
    results: list[_GroupValueAnswer] = Field(max_length=20)


class GroupValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group_id: str
    value: str | None
    number: float | None = None
    note: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    unsupported_quotes: list[str] = Field(default_factory=list)


class ParticipantsOutput(TaskOutput):
    measure: str
    param_type: str
    unit: str
    values: list[GroupValue]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    text = value.replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def _group_values(answers: list[_GroupValueAnswer], groups: list[Group], text: str,
                  strict: bool) -> list[GroupValue]:
    by_id = {a.groupId.strip(): a for a in answers}
    unknown = [g for g in by_id if g not in {grp.id for grp in groups}]
    if unknown:
        raise AnswerError(f"unknown groupId(s) {unknown}; use only {[g.id for g in groups]}")
    values = []
    for group in groups:
        item = by_id.get(group.id)
        value = _none_if_not_reported(item.value) if item else None
        quotes = [item.quote] if item and item.quote and value is not None else []
        evidence, unsupported = ground_quotes(quotes, text, strict=strict, where=f"group {group.id}")
        values.append(GroupValue(group_id=group.id, value=value, number=_number(value),
                                 note=item.note if item else "", evidence=evidence,
                                 unsupported_quotes=unsupported))
    return values


def _groups_text(groups: list[Group]) -> str:
    return "\n".join(f"- {g.id}: {g.title}" + (f" ({g.description})" if g.description else "") for g in groups)


class ParticipantStatisticsTask(Task[ParticipantsInput, ParticipantsAnswer, ParticipantsOutput]):
    name = "participants"
    description = "paper + baseline measure + groups -> value per group"
    input_model = ParticipantsInput
    answer_model = ParticipantsAnswer
    output_model = ParticipantsOutput

    def answer_schema(self, inp: ParticipantsInput | None = None) -> dict[str, Any]:
        schema = super().answer_schema(inp)
        if inp is not None:
            exact_items(schema["properties"]["results"], len(inp.groups))
            enum_property(schema, "_GroupValueAnswer", "groupId", [g.id for g in inp.groups])
        return schema

    def messages(self, inp: ParticipantsInput, *, text_budget: int | None = None) -> list[Message]:
        target = (f"Baseline measure: {inp.measure}\nparamType: {inp.param_type}\n"
                  f"unitOfMeasure: {inp.unit}\nGroups:\n{_groups_text(inp.groups)}")
        return leads_prompt(
            context=PAPER_CONTEXT,
            objective="Report the baseline measure for each group, as a number in the given unit "
                      f"(null when the paper does not report it). {QUOTE_RULE}",
            sections={"PAPER CONTENT": _paper(inp, text_budget), "TARGET": target},
            response='A JSON object {"results": [{"groupId": "...", "value": "...", "note": "...", '
                     '"quote": "..."}]}, one entry per group.',
        )

    def finish(self, answer: ParticipantsAnswer, inp: ParticipantsInput, *,
               strict_quotes: bool = True) -> ParticipantsOutput:
        return ParticipantsOutput(measure=inp.measure, param_type=inp.param_type, unit=inp.unit,
                                  values=_group_values(answer.results, inp.groups, inp.text, strict_quotes))


# --- trial results ---------------------------------------------------------------------------


class ResultsInput(_PaperInput):
    outcome: str = Field(min_length=1, max_length=500)
    outcome_description: str = Field(default="", max_length=2000)
    groups: list[Group] = Field(min_length=1, max_length=20)
    outcome_type: Literal["binary", "continuous"] | None = Field(
        default=None, description="binary (events/total) or continuous (mean, SD); None: decide from the paper")


class Derivation(BaseModel):
    """A number computed rather than read (SD from SE or CI, mean and SD from a median, events
    from a percentage): the formula named so the reviewer can accept or reject it."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(description="the ArmResult field it stands in for: sd, mean, events")
    value: float
    formula: str
    expression: str = ""
    inputs: dict[str, float] = Field(default_factory=dict)


class ArmResult(BaseModel):
    """Arm-level numbers for meta-analysis: binary (events of group_size) or continuous (mean,
    SD, group_size), plus what the paper reported instead (SE, CI, median and quartiles or range).
    Every field is as reported (``None`` = not reported); computed values are in ``derived``."""

    model_config = ConfigDict(extra="forbid")
    group_id: str
    events: float | None = None
    group_size: float | None = None
    percent: float | None = None
    mean: float | None = None
    sd: float | None = None
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    derived: list[Derivation] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    field_evidence: dict[str, Evidence] = Field(
        default_factory=dict, description="the quote each number was read from, by field name")


class _ResultValueAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=300, description="the group title")
    value: str | None = Field(max_length=100)
    quote: str | None = Field(default=None, max_length=1500)


class ResultsAnswer(BaseModel):
    """LEADS' answer: paramType, unitOfMeasure, timeFrame, unitOfDenom, denomValue, results."""

    model_config = ConfigDict(extra="forbid")
    paramType: ParamType
    unitOfMeasure: str = Field(max_length=100)
    timeFrame: str = Field(default="", max_length=300)
    unitOfDenom: str = Field(default="Participants", max_length=100)
    denomValue: list[str | None] = Field(default_factory=list, max_length=20)
    results: list[_ResultValueAnswer] = Field(max_length=20)


class ResultsOutput(TaskOutput):
    outcome: str
    param_type: str
    unit: str
    time_frame: str
    unit_of_denominator: str
    denominators: dict[str, float | None]
    values: list[GroupValue]
    outcome_type: Literal["binary", "continuous"] | None = None
    arms: list[ArmResult] = Field(default_factory=list, description="arm-level numbers (classic engine)")
    notes: list[str] = Field(default_factory=list)


class TrialResultsTask(Task[ResultsInput, ResultsAnswer, ResultsOutput]):
    name = "results"
    description = "paper + outcome + groups -> param type, unit, time frame, denominators, values"
    input_model = ResultsInput
    answer_model = ResultsAnswer
    output_model = ResultsOutput

    def answer_schema(self, inp: ResultsInput | None = None) -> dict[str, Any]:
        schema = super().answer_schema(inp)
        if inp is not None:
            exact_items(schema["properties"]["results"], len(inp.groups))
            schema["properties"]["denomValue"]["maxItems"] = len(inp.groups)
            enum_property(schema, "_ResultValueAnswer", "title", [g.title for g in inp.groups])
        return schema

    def messages(self, inp: ResultsInput, *, text_budget: int | None = None) -> list[Message]:
        target = f"Outcome: {inp.outcome}\n"
        if inp.outcome_description:
            target += f"Description: {inp.outcome_description}\n"
        target += f"Groups:\n{_groups_text(inp.groups)}"
        return leads_prompt(
            context=PAPER_CONTEXT,
            objective="Report the result of the outcome for each group: the parameter type, the unit "
                      "of measure, the time frame, the unit and value of the denominators (analysed "
                      f"participants per group), and the value per group. {QUOTE_RULE}",
            sections={"PAPER CONTENT": _paper(inp, text_budget), "TARGET": target},
            response='A JSON object {"paramType": "MEAN", "unitOfMeasure": "...", "timeFrame": "...", '
                     '"unitOfDenom": "Participants", "denomValue": ["<n per group, in order>"], '
                     '"results": [{"title": "<group title>", "value": "...", "quote": "..."}]}.',
        )

    def finish(self, answer: ResultsAnswer, inp: ResultsInput, *, strict_quotes: bool = True) -> ResultsOutput:
        by_title = {g.title.strip().lower(): g.id for g in inp.groups}
        converted = []
        for i, item in enumerate(answer.results):
            group_id = by_title.get(item.title.strip().lower())
            if group_id is None and i < len(inp.groups):
                group_id = inp.groups[i].id
            if group_id is None:
                raise AnswerError(f"result {i + 1} names no known group; use the group titles given")
            converted.append(_GroupValueAnswer(groupId=group_id, value=item.value, quote=item.quote))
        denominators = {g.id: (_number(answer.denomValue[i]) if i < len(answer.denomValue) else None)
                        for i, g in enumerate(inp.groups)}
        values = _group_values(converted, inp.groups, inp.text, strict_quotes)
        outcome_type, arms, notes = _arm_results(answer.paramType, inp, values, denominators)
        return ResultsOutput(
            outcome=inp.outcome, param_type=answer.paramType, unit=answer.unitOfMeasure.strip(),
            time_frame=answer.timeFrame.strip(), unit_of_denominator=answer.unitOfDenom.strip(),
            denominators=denominators, values=values, outcome_type=outcome_type, arms=arms, notes=notes,
        )


# Arm-level numbers from an LLM's answer strings ("45/120", "45 (37.5%)", "12.3 ± 4.5", "7 (IQR
# 5-9)"), so that an LLM engine's results can be pooled like the classic engine's.
_BINARY_PARAMS = frozenset({"COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS", "PERCENT"})
_CONTINUOUS_PARAMS = frozenset({"MEAN", "MEDIAN", "LEAST_SQUARES_MEAN", "GEOMETRIC_MEAN",
                                "GEOMETRIC_LEAST_SQUARES_MEAN"})
_GEOMETRIC_PARAMS = frozenset({"GEOMETRIC_MEAN", "GEOMETRIC_LEAST_SQUARES_MEAN"})
_BINARY_KINDS = frozenset({"events_total", "count_percent", "percent"})
_CONTINUOUS_KINDS = frozenset({"mean_sd", "mean_se", "median_iqr", "median_range"})
_STAT_FIELDS = {"events": "events", "total": "group_size", "count": "events", "percent": "percent",
                "mean": "mean", "sd": "sd", "se": "se", "median": "median", "q1": "q1", "q3": "q3",
                "min": "minimum", "max": "maximum", "low": "ci_low", "high": "ci_high"}


def _read_stat(value: str | None, outcome_type: str | None) -> Any:
    """The first statistic of an answer's value string (p-values skipped), with an ambiguous
    ``12.3 (4.5)`` read as mean (SD) for a continuous outcome and as n (%) for a binary one."""
    if value is None:
        return None
    from leads.extract.numbers import find_all, resolve

    stats = [s for s in find_all(value) if s.kind != "p_value"]
    if not stats:
        return None
    fmt = {"binary": "n_percent", "continuous": "mean_sd"}.get(outcome_type or "")
    return resolve(stats[0], fmt)


def _outcome_type_of(param_type: str, inp: ResultsInput, stats: list[Any]) -> Literal["binary", "continuous"] | None:
    if inp.outcome_type is not None:
        return inp.outcome_type
    if param_type in _BINARY_PARAMS:
        return "binary"
    if param_type in _CONTINUOUS_PARAMS:
        return "continuous"
    kinds = {s.kind for s in stats if s is not None}
    if kinds & _BINARY_KINDS and not kinds & _CONTINUOUS_KINDS:
        return "binary"
    if kinds & _CONTINUOUS_KINDS and not kinds & _BINARY_KINDS:
        return "continuous"
    return None


def _binary_numbers(stat: Any, param_type: str) -> dict[str, float]:
    kind, v = stat.kind, stat.values
    if kind == "events_total":
        out = {"events": v["events"], "total": v["total"]}
        if "percent" in v:
            out["percent"] = v["percent"]
        return out
    if kind == "count_percent":
        return {"count": v["count"], "percent": v["percent"]}
    if kind == "percent":
        return {"percent": v["percent"]}
    if kind in ("number", "n"):
        number = v.get("value", v.get("n"))
        return {"percent" if param_type == "PERCENT" else "events": number}
    return {}


def _continuous_numbers(stat: Any, param_type: str) -> dict[str, float]:
    kind, v = stat.kind, stat.values
    centre = "median" if param_type == "MEDIAN" else "mean"
    if kind in ("mean_sd", "mean_se"):
        return dict(v)
    if kind in ("median_iqr", "median_range"):
        return dict(v)
    if kind == "value_interval":
        # A labelled CI ("12.3 (95% CI 10.1 to 14.5)") is read; a bare interval may be a range,
        # an IQR or a CI, so only the central value is taken.
        if "level" in v and centre == "mean":
            return {"mean": v["value"], "low": v["low"], "high": v["high"]}
        return {centre: v["value"]}
    if kind in ("number", "paren"):
        return {centre: v["value"]}
    return {}


def _events_from_percent(percent: float, n: float) -> Derivation | None:
    """Events from a percentage of a known group size, only when the rounding is unambiguous
    (the same rule as the classic engine)."""
    events = round(percent * n / 100)
    back = 100 * events / n
    if abs(back - percent) > 0.05 + 1e-9 and abs(round(back) - percent) > 1e-9:
        return None
    return Derivation(field="events", value=float(events), formula="events = round(percent × N / 100)",
                      expression="events = round(percent × N / 100)", inputs={"percent": percent, "n": n})


def _continuous_derivations(arm: ArmResult) -> list[Derivation]:
    """SD from an SE or a CI, mean and SD from a median (Cochrane Handbook 6.5.2.2; Wan et al.
    2014), each naming its formula; nothing when the group size is unknown."""
    import math

    from leads.extract.conversions import (
        ConversionError,
        Converted,
        mean_sd_from_five_numbers,
        mean_sd_from_median_iqr,
        mean_sd_from_median_range,
        sd_from_ci,
        sd_from_se,
    )

    n = arm.group_size
    out: list[Derivation] = []

    def add(field: str, value: float | None, conv: Converted) -> None:
        if value is not None and math.isfinite(value):
            out.append(Derivation(field=field, value=value, formula=conv.formula, expression=conv.expression,
                                  inputs=conv.inputs))

    if not n:
        return out
    try:
        if arm.sd is None and arm.se is not None:
            conv = sd_from_se(arm.se, n)
            add("sd", conv.sd, conv)
        elif arm.sd is None and arm.ci_low is not None and arm.ci_high is not None:
            conv = sd_from_ci(arm.ci_low, arm.ci_high, n, level=arm.ci_level or 0.95)
            add("sd", conv.sd, conv)
        elif arm.mean is None and arm.median is not None:
            if None not in (arm.q1, arm.q3, arm.minimum, arm.maximum):
                conv = mean_sd_from_five_numbers(arm.minimum, arm.q1, arm.median, arm.q3, arm.maximum,  # type: ignore[arg-type]
                                                 n)
            elif arm.q1 is not None and arm.q3 is not None:
                conv = mean_sd_from_median_iqr(arm.q1, arm.median, arm.q3, n)
            elif arm.minimum is not None and arm.maximum is not None:
                conv = mean_sd_from_median_range(arm.minimum, arm.median, arm.maximum, n)
            else:
                return out
            add("mean", conv.mean, conv)
            add("sd", conv.sd, conv)
    except ConversionError:
        return []
    return out


def _stat_evidence(stat: Any, numbers: dict[str, float], value: GroupValue, text: str) -> Evidence | None:
    """Where the value's numbers sit inside its located quote: the value string verbatim, else a
    statistic of the quote with the same numbers (``3/206`` is ``3 of 206`` in the paper)."""
    from leads.extract.numbers import find_all

    wanted = sorted(numbers.values())
    for e in value.evidence:
        at = text.find(stat.text, e.start, e.end)
        if at >= 0:
            return Evidence(quote=stat.text, start=at, end=at + len(stat.text))
    for e in value.evidence:
        for found in find_all(text[e.start:e.end]):
            if sorted(v for k, v in found.values.items() if k != "level") == wanted:
                return Evidence(quote=found.text, start=e.start + found.start, end=e.start + found.end)
    return None


def _arm_results(param_type: str, inp: ResultsInput, values: list[GroupValue],
                 denominators: dict[str, float | None]) -> tuple[Literal["binary", "continuous"] | None,
                                                               list[ArmResult], list[str]]:
    """The outcome type and per-arm numbers read from the answer's value strings.

    Fills ``denominators`` (and a value's ``number``) where the value string states what the
    answer left out (``45/120`` gives 120 participants); numbers that are computed rather than
    read (events from a percentage, an SD from an SE) go to ``derived`` with their formula.
    """
    first = [_read_stat(v.value, inp.outcome_type) for v in values]
    outcome_type = _outcome_type_of(param_type, inp, first)
    notes: list[str] = []
    if outcome_type is None:
        notes.append(f"param type {param_type} with these values does not say whether the outcome is "
                     "binary or continuous: no arm-level numbers")
        return None, [], notes
    if param_type in _GEOMETRIC_PARAMS:
        notes.append(f"{param_type.lower().replace('_', ' ')}s are not arithmetic means: no arm-level numbers")
        return outcome_type, [], notes
    arms: list[ArmResult] = []
    for value in values:
        stat = _read_stat(value.value, outcome_type)
        numbers: dict[str, float] = {}
        if stat is not None:
            numbers = (_binary_numbers if outcome_type == "binary" else _continuous_numbers)(stat, param_type)
        elif value.value is not None:
            notes.append(f"group {value.group_id}: the value {value.value!r} holds no number")
        arm = ArmResult(group_id=value.group_id, evidence=list(value.evidence))
        for key, number in numbers.items():
            setattr(arm, _STAT_FIELDS[key], number)
        if "low" in numbers:
            arm.ci_level = stat.values.get("level", 0.95)
        # The value's own total ("45/120") is this outcome's denominator; else the answer's.
        denominator = denominators.get(value.group_id)
        if arm.group_size is None:
            arm.group_size = denominator
        elif denominator is None:
            denominators[value.group_id] = arm.group_size
        located = _stat_evidence(stat, numbers, value, inp.text) if stat is not None and numbers else None
        if located is not None:
            arm.field_evidence = {_STAT_FIELDS[key]: located for key in numbers}
        if outcome_type == "binary":
            if arm.events is None and arm.percent is not None and arm.group_size:
                derived = _events_from_percent(arm.percent, arm.group_size)
                if derived is not None:
                    arm.derived.append(derived)
        else:
            arm.derived.extend(_continuous_derivations(arm))
        if value.number is None and value.value is not None:
            primary = {"binary": "percent" if param_type == "PERCENT" else "events",
                       "continuous": "median" if param_type == "MEDIAN" else "mean"}[outcome_type]
            value.number = getattr(arm, primary)
        arms.append(arm)
    return outcome_type, arms, notes


# --- PICO spans ------------------------------------------------------------------------------


class PicoInput(_PaperInput):
    pass


class PicoAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participants: list[str] = Field(default_factory=list, max_length=20)
    interventions: list[str] = Field(default_factory=list, max_length=20)
    outcomes: list[str] = Field(default_factory=list, max_length=30)


class PicoSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Literal["participants", "interventions", "outcomes"]
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class PicoOutput(TaskOutput):
    spans: list[PicoSpan]
    unsupported_quotes: list[str] = Field(default_factory=list)


class PicoTask(Task[PicoInput, PicoAnswer, PicoOutput]):
    name = "pico"
    description = "paper -> participant, intervention and outcome spans"
    input_model = PicoInput
    answer_model = PicoAnswer
    output_model = PicoOutput

    def messages(self, inp: PicoInput, *, text_budget: int | None = None) -> list[Message]:
        return leads_prompt(
            context=PAPER_CONTEXT,
            objective="Copy, word for word, the phrases of the paper that describe the participants "
                      "(who was studied), the interventions (what was given or compared, including "
                      "control), and the outcomes (what was measured).",
            sections={"PAPER CONTENT": _paper(inp, text_budget)},
            response='A JSON object {"participants": ["..."], "interventions": ["..."], "outcomes": ["..."]}.',
        )

    def finish(self, answer: PicoAnswer, inp: PicoInput, *, strict_quotes: bool = True) -> PicoOutput:
        spans: list[PicoSpan] = []
        unsupported: list[str] = []
        for label in ("participants", "interventions", "outcomes"):
            evidence, missing = ground_quotes(getattr(answer, label), inp.text, strict=strict_quotes,
                                              where=label)
            spans.extend(PicoSpan(label=label, start=e.start, end=e.end, text=e.quote) for e in evidence)
            unsupported.extend(missing)
        spans.sort(key=lambda s: (s.start, s.end))
        return PicoOutput(spans=spans, unsupported_quotes=unsupported)
