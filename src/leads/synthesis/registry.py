"""Registry cross-check: compare what was extracted from a publication with its ClinicalTrials.gov record.

For each included study with an NCT id, the registered record (API v2 study JSON) is compared
with the project's standing extractions:

- **arms**: the registered arm groups against the extracted arms (labels and interventions,
  fuzzy) - an arm registered but not reported, or reported but not registered;
- **sample size**: the registered enrolment against the extracted number randomised, and each
  results row's denominators against the registered results' denominators of the same outcome
  (*denominator drift* beyond ``tolerance``, relative);
- **primary outcome**: the publication's primary outcome (a ``characteristics`` field named like
  "primary outcome") against the registered primary outcomes (*outcome switching* when none is
  similar; noted when it was registered as a secondary outcome);
- **time frames**: each results row's time frame against the matched registered outcome's.

Registered records are read offline from files (``files``) or a cache folder holding
``<NCT id>.json``; the network is used only with ``online=True`` (through
:class:`~leads.search.ctgov.CtgovClient`), and what is fetched is written to the cache.

Rows are read flexibly because the extraction tasks store their outputs as JSON: ``arms`` rows
hold an :class:`~leads.tasks.extraction.ArmsOutput` (``{"arms": [...]}``), a list of arms or one
arm; ``participants`` rows a mapping with ``total`` (and ``groups``) or a number; ``results`` rows
a :class:`~leads.tasks.extraction.ResultsOutput`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

from leads.errors import FormatError, LeadsError
from leads.project import Project
from leads.records import normalize_nct

__all__ = [
    "Finding",
    "RegistryCheck",
    "RegistryError",
    "StudyCheck",
    "check_registry",
    "compare_study",
    "load_registry_studies",
    "outcome_similarity",
    "time_frame_days",
]

Severity = Literal["ok", "info", "warning"]
DEFAULT_TOLERANCE = 0.10
OUTCOME_MATCH = 0.5
"""Similarity from which a publication's outcome counts as the registered one."""


class RegistryError(LeadsError):
    """A registry record cannot be read or fetched."""


@dataclass
class Finding:
    """One comparison: ``kind`` is ``arms``, ``sample_size``, ``denominator``, ``primary_outcome``
    or ``time_frame``; ``severity`` ``ok`` (agrees), ``info`` (cannot be compared) or
    ``warning`` (a discrepancy: outcome switching, denominator drift, ...)."""

    kind: str
    severity: Severity
    message: str
    extracted: Any = None
    registered: Any = None
    extraction_id: int | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StudyCheck:
    record_id: int
    nct_id: str
    available: bool
    findings: list[Finding] = field(default_factory=list)
    note: str = ""

    @property
    def discrepancies(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def as_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "nct_id": self.nct_id, "available": self.available,
                "note": self.note, "findings": [f.as_dict() for f in self.findings]}


@dataclass
class RegistryCheck:
    studies: list[StudyCheck] = field(default_factory=list)

    @property
    def discrepancies(self) -> int:
        return sum(len(s.discrepancies) for s in self.studies)

    def summary(self) -> str:
        if not self.studies:
            return "no included study with an NCT id"
        lines = []
        for s in self.studies:
            if not s.available:
                lines.append(f"{s.nct_id} (record {s.record_id}): {s.note}")
            else:
                lines.append(f"{s.nct_id} (record {s.record_id}): {len(s.findings)} comparisons, "
                             f"{len(s.discrepancies)} discrepancies")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"studies": [s.as_dict() for s in self.studies], "discrepancies": self.discrepancies}


# --- text helpers ------------------------------------------------------------------------------

_STOP = frozenset("""the a an of in on and or to for with by from as at is are was were be who
                  participants patients number percentage proportion rate change baseline""".split())  # noqa: SIM905


def _words(text: str) -> list[str]:
    return [w.rstrip("s") for w in re.findall(r"[a-z0-9≥≤]+", text.lower()) if w not in _STOP]


def outcome_similarity(a: str, b: str) -> float:
    """How alike two outcome descriptions are, in [0, 1]: the larger of word overlap (of the
    shorter description) and character similarity. Time points (``at Week 16``) are left out:
    they are compared on their own, and would make any two outcomes of a trial look alike."""
    wa, wb = set(_words(_without_times(a))), set(_words(_without_times(b)))
    if not wa or not wb:
        return 0.0
    overlap = len(wa & wb) / min(len(wa), len(wb))
    chars = SequenceMatcher(None, " ".join(sorted(wa)), " ".join(sorted(wb))).ratio()
    return max(overlap, chars)


_UNIT_DAYS = {"day": 1.0, "week": 7.0, "wk": 7.0, "month": 30.44, "mo": 30.44, "year": 365.25, "yr": 365.25,
              "hour": 1 / 24, "h": 1 / 24}
_TIME = re.compile(r"\b(day|week|wk|month|mo|year|yr|hour)s?\s*(\d+(?:\.\d+)?)\b|"
                   r"\b(\d+(?:\.\d+)?)[\s-]*(day|week|wk|month|mo|year|yr|hour|h)s?\b", re.I)


def _without_times(text: str) -> str:
    return _TIME.sub(" ", text)


def time_frame_days(text: str | None) -> list[float]:
    """Every time point a time frame names, in days (``"Day 28"`` -> ``[28.0]``; ``"Week 16"`` -> ``[112.0]``)."""
    if not text:
        return []
    out = []
    for m in _TIME.finditer(text):
        unit = (m.group(1) or m.group(4)).lower()
        number = float(m.group(2) or m.group(3))
        out.append(number * _UNIT_DAYS[unit])
    return out


# --- registry records ------------------------------------------------------------------------------


def _nct_of(study: Mapping[str, Any]) -> str | None:
    raw = (((study.get("protocolSection") or {}).get("identificationModule") or {}).get("nctId"))
    return normalize_nct(raw) if isinstance(raw, str) else None


def load_registry_studies(files: Iterable[str | Path] = (), cache_dir: str | Path | None = None,
                          ) -> dict[str, dict[str, Any]]:
    """Registered studies by NCT id, from JSON files (a study, a search page with ``studies`` or
    a list) and from ``cache_dir/*.json``."""
    paths = [Path(f) for f in files]
    if cache_dir is not None and Path(cache_dir).is_dir():
        paths += sorted(Path(cache_dir).glob("*.json"))
    studies: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RegistryError(f"{path}: registry file not found") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON: {exc.msg}", source=str(path), line=exc.lineno) from None
        items = data.get("studies") if isinstance(data, dict) and "studies" in data else data
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict):
                raise FormatError("a ClinicalTrials.gov study must be a JSON object", source=str(path))
            nct = _nct_of(item)
            if nct is None:
                raise FormatError("study without an nctId", source=str(path),
                                  field="protocolSection.identificationModule.nctId")
            studies[nct] = item
    return studies


def _fetch(nct_ids: Sequence[str], cache_dir: Path | None) -> dict[str, dict[str, Any]]:
    from leads.search.ctgov import CtgovClient

    fetched: dict[str, dict[str, Any]] = {}
    with CtgovClient() as client:
        for nct in nct_ids:
            study = client.study(nct)
            fetched[nct] = study
            if cache_dir is not None:
                cache_dir.mkdir(parents=True, exist_ok=True)
                (cache_dir / f"{nct}.json").write_text(json.dumps(study), encoding="utf-8")
    return fetched


# --- reading extraction rows ---------------------------------------------------------------------

_PRIMARY_FIELD = re.compile(r"primary\s+(?:outcome|end\s*-?\s*point)", re.I)
_TOTAL_FIELD = re.compile(r"randomi[sz]ed|sample size|enrol", re.I)


def _arms_of(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        if isinstance(value.get("arms"), list):
            return [dict(a) for a in value["arms"] if isinstance(a, Mapping)]
        if "label" in value:
            return [dict(value)]
    if isinstance(value, list):
        return [dict(a) for a in value if isinstance(a, Mapping)]
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d[\d,]*)\s*", value)
        if m:
            return float(m.group(1).replace(",", ""))
    return None


def _total_of(row: Mapping[str, Any]) -> float | None:
    """The number of participants a row states: a ``randomised N``-like characteristic (first
    number of its text), the participants task's whole-sample count (field
    ``"Overall Number of Participants: Total"``), or a mapping's ``total``."""
    value = row.get("value")
    name = str(row.get("field", ""))
    if isinstance(value, Mapping):
        if "total" in value:
            return _number(value.get("total"))
        if row.get("task") == "participants" and name.lower().startswith("overall number of participants") \
                and str(value.get("group", name.rpartition(":")[2])).strip().lower() == "total":
            return _number(value.get("number"))
        return None
    if row.get("task") == "characteristics" and _TOTAL_FIELD.search(name) and isinstance(value, str):
        m = re.search(r"\d[\d,]*", value)
        return float(m.group(0).replace(",", "")) if m else None
    if row.get("task") == "participants":
        return _number(value)
    return None


def _arm_text(arm: Mapping[str, Any]) -> str:
    names = arm.get("interventions") or arm.get("interventionNames") or arm.get("intervention_names") or []
    return " ".join([str(arm.get("label", "")), *[str(n) for n in names]])


def _registered_arm_text(arm: Mapping[str, Any]) -> str:
    names = [re.sub(r"^[A-Za-z ]+:\s*", "", str(n)) for n in arm.get("interventionNames") or []]
    return " ".join([str(arm.get("label", "")), *names])


def _registered_outcomes(study: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Registered outcomes (protocol: primary, secondary) with their time frames."""
    module = (study.get("protocolSection") or {}).get("outcomesModule") or {}
    out = []
    for kind, key in (("PRIMARY", "primaryOutcomes"), ("SECONDARY", "secondaryOutcomes"),
                      ("OTHER", "otherOutcomes")):
        for item in module.get(key) or []:
            if isinstance(item, Mapping) and item.get("measure"):
                out.append({"type": kind, "measure": str(item["measure"]),
                            "time_frame": item.get("timeFrame"), "description": item.get("description")})
    return out


# --- the comparison --------------------------------------------------------------------------------


def compare_study(study: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, record_id: int,
                  tolerance: float = DEFAULT_TOLERANCE) -> StudyCheck:
    """Compare one registered study with the standing extraction rows of its record."""
    from leads.search.ctgov import parse_results

    nct = _nct_of(study) or "?"
    check = StudyCheck(record_id=record_id, nct_id=nct, available=True)
    protocol = study.get("protocolSection") or {}
    results = parse_results(study)
    registered_outcomes = _registered_outcomes(study)

    # arms
    arm_rows = [r for r in rows if r.get("task") == "arms" and r.get("value") is not None]
    extracted_arms = [(a, r) for r in arm_rows for a in _arms_of(r.get("value"))]
    registered_arms = list((protocol.get("armsInterventionsModule") or {}).get("armGroups") or [])
    if extracted_arms and registered_arms:
        unmatched_registered = []
        used: set[int] = set()
        for reg in registered_arms:
            scores = [(outcome_similarity(_registered_arm_text(reg), _arm_text(a)), i)
                      for i, (a, _r) in enumerate(extracted_arms) if i not in used]
            best = max(scores, default=(0.0, -1))
            if best[0] >= OUTCOME_MATCH:
                used.add(best[1])
            else:
                unmatched_registered.append(str(reg.get("label")))
        unmatched_extracted = [str(a.get("label")) for i, (a, _r) in enumerate(extracted_arms) if i not in used]
        row = arm_rows[0]
        labels = [str(a.get("label")) for a, _r in extracted_arms]
        reg_labels = [str(a.get("label")) for a in registered_arms]
        if not unmatched_registered and not unmatched_extracted:
            check.findings.append(Finding("arms", "ok", f"the {len(reg_labels)} registered arms are all reported",
                                          labels, reg_labels, int(row["id"]), list(row.get("evidence") or [])))
        else:
            parts = []
            if unmatched_registered:
                parts.append(f"registered but not reported: {', '.join(unmatched_registered)}")
            if unmatched_extracted:
                parts.append(f"reported but not registered: {', '.join(unmatched_extracted)}")
            check.findings.append(Finding("arms", "warning", "arms differ from the registration: " + "; ".join(parts),
                                          labels, reg_labels, int(row["id"]), list(row.get("evidence") or [])))
    elif registered_arms:
        check.findings.append(Finding("arms", "info", "no arms were extracted to compare",
                                      None, [str(a.get("label")) for a in registered_arms]))

    # sample size (enrolment)
    enrolment = ((protocol.get("designModule") or {}).get("enrollmentInfo") or {})
    enrolled = _number(enrolment.get("count"))
    # the number randomised (a characteristic) before the participants task's baseline count
    candidates = [r for r in rows if r.get("task") in ("characteristics", "participants") and _total_of(r) is not None]
    candidates.sort(key=lambda r: r.get("task") != "characteristics")
    total_row = candidates[0] if candidates else None
    if enrolled is not None and total_row is not None:
        total = _total_of(total_row)
        assert total is not None
        drift = abs(total - enrolled) / max(enrolled, 1.0)
        kind = enrolment.get("type") or "registered"
        if drift > tolerance:
            check.findings.append(Finding(
                "sample_size", "warning",
                f"the publication reports {total:g} participants; the registry's {kind.lower()} enrolment is "
                f"{enrolled:g} ({drift:.0%} apart, above the {tolerance:.0%} tolerance)",
                total, enrolled, int(total_row["id"]), list(total_row.get("evidence") or [])))
        else:
            check.findings.append(Finding(
                "sample_size", "ok", f"{total:g} participants reported; {enrolled:g} enrolled per the registry",
                total, enrolled, int(total_row["id"]), list(total_row.get("evidence") or [])))

    # primary outcome (outcome switching)
    primary_row = next((r for r in rows if r.get("task") == "characteristics"
                        and _PRIMARY_FIELD.search(str(r.get("field", ""))) and r.get("value")), None)
    primaries = [o for o in registered_outcomes if o["type"] == "PRIMARY"]
    if primary_row is not None and primaries:
        published = str(primary_row["value"])
        best_primary = max(primaries, key=lambda o: outcome_similarity(published, o["measure"]))
        score = outcome_similarity(published, best_primary["measure"])
        registered_names = [o["measure"] for o in primaries]
        evidence = list(primary_row.get("evidence") or [])
        if score >= OUTCOME_MATCH:
            check.findings.append(Finding("primary_outcome", "ok",
                                          f"the publication's primary outcome matches the registered primary "
                                          f"outcome “{best_primary['measure']}”", published, registered_names,
                                          int(primary_row["id"]), evidence))
        else:
            others = [o for o in registered_outcomes if o["type"] != "PRIMARY"]
            secondary = max(others, key=lambda o: outcome_similarity(published, o["measure"]), default=None)
            if secondary is not None and outcome_similarity(published, secondary["measure"]) < OUTCOME_MATCH:
                secondary = None
            where = (f"; it was registered as a {secondary['type'].lower()} outcome (“{secondary['measure']}”)"
                     if secondary is not None else "; it is not among the registered outcomes")
            check.findings.append(Finding("primary_outcome", "warning",
                                          "possible outcome switching: the publication's primary outcome is not a "
                                          f"registered primary outcome{where}", published, registered_names,
                                          int(primary_row["id"]), evidence))

    # results rows: denominators and time frames against the matched registered outcome
    for row in rows:
        if row.get("task") != "results" or not isinstance(row.get("value"), Mapping):
            continue
        value = row["value"]
        name = str(value.get("outcome") or str(row.get("field", "")).partition(":")[2]).strip()
        evidence = list(row.get("evidence") or [])
        matched = max(results.outcomes, key=lambda o: outcome_similarity(name, o.title), default=None)
        if matched is not None and outcome_similarity(name, matched.title) < OUTCOME_MATCH:
            matched = None
        protocol_match = max(registered_outcomes, key=lambda o: outcome_similarity(name, o["measure"]), default=None)
        if protocol_match is not None and outcome_similarity(name, protocol_match["measure"]) < OUTCOME_MATCH:
            protocol_match = None
        reg_frame = matched.time_frame if matched is not None else (protocol_match or {}).get("time_frame")
        if reg_frame is None:
            check.findings.append(Finding("time_frame", "info",
                                          f"“{name}” matches no registered outcome; time frame not compared",
                                          value.get("time_frame"), None, int(row["id"]), evidence))
        else:
            ours, theirs = time_frame_days(value.get("time_frame")), time_frame_days(reg_frame)
            if not ours or not theirs:
                check.findings.append(Finding("time_frame", "info",
                                              f"“{name}”: time frames not comparable "
                                              f"(publication: {value.get('time_frame') or 'not stated'}; "
                                              f"registry: {reg_frame})", value.get("time_frame"), reg_frame,
                                              int(row["id"]), evidence))
            elif any(abs(a - b) <= max(1.0, 0.05 * b) for a in ours for b in theirs):
                check.findings.append(Finding("time_frame", "ok", f"“{name}”: time frame agrees ({reg_frame})",
                                              value.get("time_frame"), reg_frame, int(row["id"]), evidence))
            else:
                check.findings.append(Finding("time_frame", "warning",
                                              f"“{name}”: the publication reports {value.get('time_frame')}; "
                                              f"the registry's time frame is {reg_frame}",
                                              value.get("time_frame"), reg_frame, int(row["id"]), evidence))
        if matched is None:
            continue
        reg_denoms = [n for n in matched.denominators().values() if n is not None]
        ours_denoms = [float(n) for n in (value.get("denominators") or {}).values() if n is not None]
        if not reg_denoms or not ours_denoms:
            continue
        reg_total, our_total = float(sum(reg_denoms)), float(sum(ours_denoms))
        drift = abs(our_total - reg_total) / max(reg_total, 1.0)
        pairs = ", ".join(f"{n:g}" for n in ours_denoms)
        reg_pairs = ", ".join(f"{n:g}" for n in reg_denoms)
        if drift > tolerance:
            check.findings.append(Finding(
                "denominator", "warning",
                f"denominator drift in “{name}”: the publication analyses {pairs} (total {our_total:g}); the "
                f"registered results analyse {reg_pairs} (total {reg_total:g}), {drift:.0%} apart",
                ours_denoms, reg_denoms, int(row["id"]), evidence))
        else:
            check.findings.append(Finding("denominator", "ok",
                                          f"“{name}”: denominators agree ({pairs} vs registered {reg_pairs})",
                                          ours_denoms, reg_denoms, int(row["id"]), evidence))
    return check


def _nct_ids(project: Project, record_id: int) -> list[str]:
    record = project.record(record_id).record
    return [n for n in (normalize_nct(x) for x in record.nct_ids) if n]


def check_registry(project: Project, *, record_ids: Iterable[int], files: Iterable[str | Path] = (),
                   cache_dir: str | Path | None = None, online: bool = False,
                   tolerance: float = DEFAULT_TOLERANCE) -> RegistryCheck:
    """Cross-check each of ``record_ids`` (e.g. the included studies) that has an NCT id."""
    cache = Path(cache_dir) if cache_dir is not None else None
    registered = load_registry_studies(files, cache)
    wanted: list[tuple[int, str]] = []
    for record_id in record_ids:
        for nct in _nct_ids(project, record_id):
            wanted.append((record_id, nct))
    missing = sorted({nct for _rid, nct in wanted if nct not in registered})
    if missing and online:
        registered.update(_fetch(missing, cache))
    result = RegistryCheck()
    for record_id, nct in wanted:
        study = registered.get(nct)
        if study is None:
            result.studies.append(StudyCheck(record_id, nct, False, note=(
                "no registry record available offline (give it under [registry] files or cache, "
                "or set online = true)")))
            continue
        rows = project.extractions(record_ids=[record_id])
        result.studies.append(compare_study(study, rows, record_id=record_id, tolerance=tolerance))
    return result
