"""A ClinicalTrials.gov API v2 client, and a parser of posted results.

:class:`CtgovClient` searches ``GET /studies`` and follows ``nextPageToken`` until the last
page (``totalCount`` is only on the first page, when ``countTotal=true``), and reads one study
with ``GET /studies/{nctId}``. Requests share the rate limiter, retries and response recording
of :mod:`leads.search.eutils` (ClinicalTrials.gov asks for about 50 requests per minute per
IP, the default rate here). Studies become records through :mod:`leads.formats.ctgov`.

:func:`parse_results` turns a study's JSON into :class:`StudyResults`: arms (``armGroups``
with their interventions), baseline characteristics and outcome measures with per-group values,
denominators and statistical analyses. The vocabulary is ClinicalTrials.gov's, which is also the
vocabulary of the extraction tasks (:mod:`leads.tasks.extraction`: arm types ``ARM_TYPES``,
parameter types ``ParamType``). Values are kept as the registry gives them: enumerations as
strings (a value outside the known lists is kept, not rejected), numbers as the original text
plus a parsed ``number`` where the text is a plain number. (An outcome's ``dispersionType`` is
free text in API v2, e.g. ``"Standard Deviation"``; a baseline measure's is an enumeration,
e.g. ``FULL_RANGE``.)
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import httpx
from pydantic import BaseModel, ConfigDict, Field

from leads.errors import FormatError
from leads.formats import ctgov as ctgov_format
from leads.records import Record, normalize_nct
from leads.search.eutils import RateLimiter, SearchServiceError, _HttpService
from leads.tasks.extraction import ARM_TYPES, ParamType

__all__ = [
    "ARM_TYPES",
    "CTGOV_PARAM_TYPES",
    "CTGOV_URL",
    "EXTRACTION_PARAM_TYPES",
    "OUTCOME_TYPES",
    "Analysis",
    "Arm",
    "BaselineCharacteristics",
    "BaselineMeasure",
    "Category",
    "CtgovClient",
    "CtgovPage",
    "CtgovSearchResult",
    "Denominator",
    "Intervention",
    "MeasureClass",
    "Measurement",
    "OutcomeMeasure",
    "ResultGroup",
    "StudyResults",
    "parse_results",
    "records_from_page",
]

CTGOV_URL = "https://clinicaltrials.gov/api/v2/"
MAX_PAGE_SIZE = 1000
DEFAULT_RATE = 50 / 60
# ClinicalTrials.gov's MeasureParam enumeration. The extraction tasks' ParamType lists the
# same values except LOG_MEAN, and adds PERCENT.
CTGOV_PARAM_TYPES: tuple[str, ...] = (
    "GEOMETRIC_MEAN",
    "GEOMETRIC_LEAST_SQUARES_MEAN",
    "LEAST_SQUARES_MEAN",
    "LOG_MEAN",
    "MEAN",
    "MEDIAN",
    "NUMBER",
    "COUNT_OF_PARTICIPANTS",
    "COUNT_OF_UNITS",
)
EXTRACTION_PARAM_TYPES: tuple[str, ...] = get_args(ParamType)
OUTCOME_TYPES: tuple[str, ...] = ("PRIMARY", "SECONDARY", "OTHER_PRE_SPECIFIED", "POST_HOC")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_P_VALUE = re.compile(r"^\s*(<=|>=|≤|≥|<|>|=)?\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*$")


# --------------------------------------------------------------------------- results models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Intervention(_Model):
    """One intervention of ``armsInterventionsModule.interventions``."""

    type: str | None = None
    name: str
    description: str | None = None
    other_names: list[str] = Field(default_factory=list)
    arm_group_labels: list[str] = Field(default_factory=list)


class Arm(_Model):
    """One arm (``armGroups``): ``type`` is one of ``ARM_TYPES``; ``intervention_names`` as
    registered (``"Drug: Placebo"``); ``interventions`` the interventions listing this arm."""

    label: str
    type: str | None = None
    description: str | None = None
    intervention_names: list[str] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)


class ResultGroup(_Model):
    """A results group (``BG000``, ``OG001``, ...): the population a column of results is for."""

    id: str
    title: str | None = None
    description: str | None = None


class Denominator(_Model):
    """Analysed units per group (``units`` is usually ``Participants``)."""

    units: str | None = None
    counts: dict[str, int | None] = Field(default_factory=dict)


class Measurement(_Model):
    """One group's value; ``spread`` (SD/SE) or ``lower_limit``/``upper_limit`` (ranges, CIs)
    carry the dispersion named by the measure's ``dispersion_type``."""

    group_id: str
    value: str | None = None
    number: float | None = None
    spread: str | None = None
    lower_limit: str | None = None
    upper_limit: str | None = None
    comment: str | None = None


class Category(_Model):
    title: str | None = None
    measurements: list[Measurement] = Field(default_factory=list)


class MeasureClass(_Model):
    """A row group of a measure (e.g. a time point or a sub-population) with its categories."""

    title: str | None = None
    denoms: list[Denominator] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)


class BaselineMeasure(_Model):
    title: str
    description: str | None = None
    population_description: str | None = None
    param_type: str | None = None
    dispersion_type: str | None = None
    unit: str | None = None
    denoms: list[Denominator] = Field(default_factory=list)
    classes: list[MeasureClass] = Field(default_factory=list)


class BaselineCharacteristics(_Model):
    population_description: str | None = None
    groups: list[ResultGroup] = Field(default_factory=list)
    denoms: list[Denominator] = Field(default_factory=list)
    measures: list[BaselineMeasure] = Field(default_factory=list)

    def denominators(self) -> dict[str, int | None]:
        """Participants per baseline group (the first denominator, usually Participants)."""
        return dict(self.denoms[0].counts) if self.denoms else {}


class Analysis(_Model):
    """A statistical analysis of an outcome: compared groups, estimate, CI and p-value.

    ``p_value`` is the registry's text (``"<0.0001"``); ``p_value_number`` its number and
    ``p_value_comparator`` its sign (``"<"``, ``"="``, ...) when the text is that simple.
    """

    group_ids: list[str] = Field(default_factory=list)
    group_description: str | None = None
    non_inferiority_type: str | None = None
    statistical_method: str | None = None
    statistical_comment: str | None = None
    p_value: str | None = None
    p_value_number: float | None = None
    p_value_comparator: str | None = None
    p_value_comment: str | None = None
    param_type: str | None = None
    param_value: str | None = None
    param_number: float | None = None
    ci_pct_value: str | None = None
    ci_num_sides: str | None = None
    ci_lower_limit: str | None = None
    ci_upper_limit: str | None = None
    dispersion_type: str | None = None
    dispersion_value: str | None = None
    estimate_comment: str | None = None


class OutcomeMeasure(_Model):
    """One outcome measure. ``type`` is one of ``OUTCOME_TYPES``; ``param_type`` one of
    ``CTGOV_PARAM_TYPES``; ``reporting_status`` ``POSTED`` or ``NOT_POSTED``."""

    type: str | None = None
    title: str
    description: str | None = None
    population_description: str | None = None
    reporting_status: str | None = None
    time_frame: str | None = None
    param_type: str | None = None
    dispersion_type: str | None = None
    unit: str | None = None
    groups: list[ResultGroup] = Field(default_factory=list)
    denoms: list[Denominator] = Field(default_factory=list)
    classes: list[MeasureClass] = Field(default_factory=list)
    analyses: list[Analysis] = Field(default_factory=list)

    def denominators(self) -> dict[str, int | None]:
        """Analysed units per group (the first denominator of the measure)."""
        return dict(self.denoms[0].counts) if self.denoms else {}

    def values(self) -> dict[str, list[Measurement]]:
        """Every measurement of each group, in class then category order."""
        by_group: dict[str, list[Measurement]] = {g.id: [] for g in self.groups}
        for measure_class in self.classes:
            for category in measure_class.categories:
                for measurement in category.measurements:
                    by_group.setdefault(measurement.group_id, []).append(measurement)
        return by_group


class StudyResults(_Model):
    """The design and posted results of one study (``baseline`` is ``None`` without results)."""

    nct_id: str | None = None
    has_results: bool = False
    arms: list[Arm] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    baseline: BaselineCharacteristics | None = None
    outcomes: list[OutcomeMeasure] = Field(default_factory=list)

    @property
    def primary_outcomes(self) -> list[OutcomeMeasure]:
        return [o for o in self.outcomes if o.type == "PRIMARY"]


# --------------------------------------------------------------------------- results parsing


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _strings(obj: Any, key: str) -> list[str]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    cleaned = text.replace(",", "").strip()
    return float(cleaned) if _NUMBER.match(cleaned) else None


def _count(text: Any) -> int | None:
    number = _number(str(text)) if text is not None else None
    return int(number) if number is not None and number == int(number) else None


def _denoms(items: list[dict[str, Any]]) -> list[Denominator]:
    return [
        Denominator(
            units=_text(item, "units"),
            counts={
                str(c.get("groupId")): _count(c.get("value"))
                for c in _list(item, "counts")
                if c.get("groupId")
            },
        )
        for item in items
    ]


def _groups(items: list[dict[str, Any]]) -> list[ResultGroup]:
    return [
        ResultGroup(id=str(g["id"]), title=_text(g, "title"), description=_text(g, "description"))
        for g in items
        if g.get("id")
    ]


def _classes(items: list[dict[str, Any]]) -> list[MeasureClass]:
    classes = []
    for item in items:
        categories = []
        for category in _list(item, "categories"):
            measurements = []
            for m in _list(category, "measurements"):
                if not m.get("groupId"):
                    continue
                value = _text(m, "value")
                measurements.append(
                    Measurement(
                        group_id=str(m["groupId"]),
                        value=value,
                        number=_number(value),
                        spread=_text(m, "spread"),
                        lower_limit=_text(m, "lowerLimit"),
                        upper_limit=_text(m, "upperLimit"),
                        comment=_text(m, "comment"),
                    )
                )
            categories.append(Category(title=_text(category, "title"), measurements=measurements))
        classes.append(
            MeasureClass(
                title=_text(item, "title"),
                denoms=_denoms(_list(item, "denoms")),
                categories=categories,
            )
        )
    return classes


def _analysis(item: dict[str, Any]) -> Analysis:
    p_value = _text(item, "pValue")
    match = _P_VALUE.match(p_value) if p_value else None
    comparator = None
    if match:
        comparator = {"≤": "<=", "≥": ">="}.get(match.group(1) or "=", match.group(1) or "=")
    param_value = _text(item, "paramValue")
    return Analysis(
        group_ids=_strings(item, "groupIds"),
        group_description=_text(item, "groupDescription"),
        non_inferiority_type=_text(item, "nonInferiorityType"),
        statistical_method=_text(item, "statisticalMethod"),
        statistical_comment=_text(item, "statisticalComment"),
        p_value=p_value,
        p_value_number=float(match.group(2)) if match else None,
        p_value_comparator=comparator,
        p_value_comment=_text(item, "pValueComment"),
        param_type=_text(item, "paramType"),
        param_value=param_value,
        param_number=_number(param_value),
        ci_pct_value=_text(item, "ciPctValue"),
        ci_num_sides=_text(item, "ciNumSides"),
        ci_lower_limit=_text(item, "ciLowerLimit"),
        ci_upper_limit=_text(item, "ciUpperLimit"),
        dispersion_type=_text(item, "dispersionType"),
        dispersion_value=_text(item, "dispersionValue"),
        estimate_comment=_text(item, "estimateComment"),
    )


def parse_results(study: Mapping[str, Any] | Record) -> StudyResults:
    """Arms, baseline characteristics and outcome measures of a study (API v2 JSON).

    ``study`` is the JSON of ``GET /studies/{nctId}`` or a registration record read by
    :mod:`leads.formats.ctgov` (its ``extra["ctgov_study"]``). A study without posted results
    gives its arms and ``has_results=False``.
    """
    if isinstance(study, Record):
        raw = study.extra.get("ctgov_study")
        if not isinstance(raw, dict):
            raise FormatError(
                f"record {study.display_id()} carries no ClinicalTrials.gov study JSON",
                field="extra.ctgov_study",
            )
        study = raw
    if not isinstance(study, Mapping):
        raise FormatError("a ClinicalTrials.gov study must be a JSON object")
    protocol = study.get("protocolSection")
    arms_module = _get(protocol, "armsInterventionsModule")
    interventions = [
        Intervention(
            type=_text(item, "type"),
            name=_text(item, "name") or "(unnamed)",
            description=_text(item, "description"),
            other_names=_strings(item, "otherNames"),
            arm_group_labels=_strings(item, "armGroupLabels"),
        )
        for item in _list(arms_module, "interventions")
    ]
    arms = []
    for item in _list(arms_module, "armGroups"):
        label = _text(item, "label") or ""
        arms.append(
            Arm(
                label=label,
                type=_text(item, "type"),
                description=_text(item, "description"),
                intervention_names=_strings(item, "interventionNames"),
                interventions=[i for i in interventions if label in i.arm_group_labels],
            )
        )
    results = study.get("resultsSection")
    baseline = None
    outcomes: list[OutcomeMeasure] = []
    if isinstance(results, dict):
        module = results.get("baselineCharacteristicsModule")
        if isinstance(module, dict):
            baseline = BaselineCharacteristics(
                population_description=_text(module, "populationDescription"),
                groups=_groups(_list(module, "groups")),
                denoms=_denoms(_list(module, "denoms")),
                measures=[
                    BaselineMeasure(
                        title=_text(m, "title") or "(untitled)",
                        description=_text(m, "description"),
                        population_description=_text(m, "populationDescription"),
                        param_type=_text(m, "paramType"),
                        dispersion_type=_text(m, "dispersionType"),
                        unit=_text(m, "unitOfMeasure"),
                        denoms=_denoms(_list(m, "denoms")),
                        classes=_classes(_list(m, "classes")),
                    )
                    for m in _list(module, "measures")
                ],
            )
        for m in _list(results, "outcomeMeasuresModule", "outcomeMeasures"):
            outcomes.append(
                OutcomeMeasure(
                    type=_text(m, "type"),
                    title=_text(m, "title") or "(untitled)",
                    description=_text(m, "description"),
                    population_description=_text(m, "populationDescription"),
                    reporting_status=_text(m, "reportingStatus"),
                    time_frame=_text(m, "timeFrame"),
                    param_type=_text(m, "paramType"),
                    dispersion_type=_text(m, "dispersionType"),
                    unit=_text(m, "unitOfMeasure"),
                    groups=_groups(_list(m, "groups")),
                    denoms=_denoms(_list(m, "denoms")),
                    classes=_classes(_list(m, "classes")),
                    analyses=[_analysis(a) for a in _list(m, "analyses")],
                )
            )
    has_results = study.get("hasResults")
    return StudyResults(
        nct_id=normalize_nct(_get(protocol, "identificationModule", "nctId")),
        has_results=bool(has_results) if has_results is not None else isinstance(results, dict),
        arms=arms,
        interventions=interventions,
        baseline=baseline,
        outcomes=outcomes,
    )


# --------------------------------------------------------------------------- the client


@dataclass
class CtgovPage:
    """One page of ``GET /studies``; ``total_count`` is only given on the first page."""

    studies: list[dict[str, Any]]
    total_count: int | None
    next_page_token: str | None
    body: bytes = b""


@dataclass
class CtgovSearchResult:
    """Every study of a search. ``total_count`` is what the registry reported (``None`` without
    ``countTotal``); ``warnings`` says when fewer or more studies came than reported."""

    params: dict[str, str]
    total_count: int | None
    studies: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def nct_ids(self) -> list[str]:
        ids = (_get(s, "protocolSection", "identificationModule", "nctId") for s in self.studies)
        return [i for i in ids if isinstance(i, str)]


def _parse_page(body: bytes, source: str) -> CtgovPage:
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise FormatError(f"unreadable ClinicalTrials.gov JSON: {exc}", source=source) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("studies"), list):
        raise FormatError("a ClinicalTrials.gov search page without 'studies'", source=source)
    total = obj.get("totalCount")
    token = obj.get("nextPageToken")
    return CtgovPage(
        studies=[s for s in obj["studies"] if isinstance(s, dict)],
        total_count=int(total) if isinstance(total, int | str) and str(total).isdigit() else None,
        next_page_token=str(token) if token else None,
        body=body,
    )


def records_from_page(page: CtgovPage | bytes, source: str = "ClinicalTrials.gov") -> list[Record]:
    """The registration records of a search page, read by :mod:`leads.formats.ctgov`."""
    body = page.body if isinstance(page, CtgovPage) else page
    return list(ctgov_format.read(io.BytesIO(body), source))


class CtgovClient(_HttpService):
    """ClinicalTrials.gov API v2 (``https://clinicaltrials.gov/api/v2/``).

    ``rate`` is requests per second (default 50 per minute), or pass a shared ``limiter``;
    ``transport`` replaces httpx's network transport (tests pass an ``httpx.MockTransport``);
    ``sleep`` is what waits between retries.
    """

    service = "ClinicalTrials.gov"

    def __init__(
        self,
        base_url: str = CTGOV_URL,
        transport: httpx.BaseTransport | None = None,
        *,
        rate: float = DEFAULT_RATE,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        from leads import __version__

        super().__init__(
            base_url,
            transport,
            rate,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_wait=max_wait,
            sleep=sleep,
            limiter=limiter,
            user_agent=f"leads/{__version__}",
        )

    def __enter__(self) -> CtgovClient:
        return self

    @staticmethod
    def build_params(
        params: Mapping[str, Any] | None = None,
        *,
        term: str | None = None,
        cond: str | None = None,
        intr: str | None = None,
        fields: Iterable[str] | str | None = None,
        filters: Mapping[str, Any] | None = None,
        page_size: int = 100,
        count_total: bool = True,
        sort: str | None = None,
    ) -> dict[str, str]:
        """The query parameters of a ``GET /studies`` search.

        ``params`` passes API parameters through as given (``{"query.titles": ...}``);
        ``term``/``cond``/``intr`` set ``query.term``/``query.cond``/``query.intr``;
        ``filters`` keys get a ``filter.`` prefix where they lack one (a list value is
        comma-joined, e.g. ``{"overallStatus": ["RECRUITING", "COMPLETED"]}``); ``fields``
        restricts the study fields returned (the NCT id must be among them for records).
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        out: dict[str, str] = {}
        for key, value in (params or {}).items():
            if value is not None:
                out[str(key)] = _param_value(value)
        for key, value in (("query.term", term), ("query.cond", cond), ("query.intr", intr)):
            if value:
                out[key] = value
        for key, value in (filters or {}).items():
            if value is not None:
                name = key if key.startswith("filter.") else f"filter.{key}"
                out[name] = _param_value(value)
        if fields:
            out["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        if sort:
            out["sort"] = sort
        out.setdefault("pageSize", str(page_size))
        out["countTotal"] = "true" if count_total else "false"
        out.setdefault("format", "json")
        if not any(k.startswith(("query.", "filter.", "postFilter.")) for k in out):
            raise ValueError("a search needs a query (term, cond, intr) or a filter")
        return out

    def iter_pages(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        max_pages: int | None = None,
        **kwargs: Any,
    ) -> Iterator[CtgovPage]:
        """Yield the pages of a search, following ``nextPageToken`` to the last page."""
        query = self.build_params(params, **kwargs)
        token: str | None = None
        seen: set[str] = set()
        number = 0
        while True:
            request = dict(query)
            if token:
                request["pageToken"] = token
            number += 1
            response = self._request("GET", "studies", params=request)
            page = _parse_page(response.content, f"ClinicalTrials.gov page {number}")
            yield page
            token = page.next_page_token
            if not token or (max_pages is not None and number >= max_pages):
                return
            if token in seen:
                raise FormatError(
                    f"ClinicalTrials.gov repeated the page token {token!r}; stopping",
                    source="ClinicalTrials.gov",
                )
            seen.add(token)

    def search(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        max_pages: int | None = None,
        **kwargs: Any,
    ) -> CtgovSearchResult:
        """Every study of a search (all pages); arguments as for :meth:`build_params`."""
        query = self.build_params(params, **kwargs)
        result = CtgovSearchResult(params=query, total_count=None)
        for page in self.iter_pages(query, max_pages=max_pages):
            result.pages += 1
            if result.pages == 1:
                result.total_count = page.total_count
            result.studies.extend(page.studies)
        if result.total_count is not None and result.total_count != len(result.studies):
            result.warnings.append(
                f"fetched {len(result.studies)} studies but ClinicalTrials.gov reported "
                f"{result.total_count}"
            )
        return result

    def count(self, params: Mapping[str, Any] | None = None, **kwargs: Any) -> CtgovSearchResult:
        """The number of matching studies, from one small first page (``pageSize=1``)."""
        kwargs.setdefault("fields", ["NCTId"])
        kwargs["page_size"] = 1
        kwargs["count_total"] = True
        return self.search(params, max_pages=1, **kwargs)

    def study(self, nct_id: str, *, fields: Iterable[str] | str | None = None) -> dict[str, Any]:
        """One study's JSON (``GET /studies/{nctId}``)."""
        nct = normalize_nct(nct_id)
        if nct is None:
            raise ValueError(f"not a ClinicalTrials.gov id: {nct_id!r}")
        params: dict[str, str] = {"format": "json"}
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        try:
            response = self._request("GET", f"studies/{nct}", params=params)
        except SearchServiceError as exc:
            if exc.status == 404:
                raise SearchServiceError(
                    f"study {nct} not found", source=self.service, status=404, url=exc.url
                ) from None
            raise
        try:
            study = json.loads(response.content)
        except ValueError as exc:
            raise FormatError(f"unreadable study JSON: {exc}", source=nct) from None
        if not isinstance(study, dict):
            raise FormatError("a study must be a JSON object", source=nct)
        return study

    def results(self, nct_id: str) -> StudyResults:
        """Arms, baseline characteristics and outcome measures of one study."""
        return parse_results(self.study(nct_id))


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return str(value)
