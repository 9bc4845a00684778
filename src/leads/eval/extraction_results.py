"""``leads eval results``: trial-results extraction scored as in Yun et al. 2024 (llm-meta-analysis).

The data are the llm-meta-analysis annotations (``annotated_rct_dataset*.json``/``.csv``): per
item a PMC article, an intervention, a comparator, an outcome, its type (binary/continuous) and
the arm-level numbers the annotators read (events and group sizes; means, SDs and group sizes).
The protocol is the authors' (``evaluation/evaluate_output.py`` and ``calculate_metrics.py`` at
hyesunyun/llm-meta-analysis):

- binary items are scored on their four fields, continuous items on their six; the outcome
  type is given (as in their ``binary_outcomes`` / ``continuous_outcomes`` tasks);
- a reference field that is empty means "not reported" and becomes ``"x"``; so does a field the
  system leaves empty; a field is correct when the values are equal (numbers compared as
  numbers, so 30 equals 30.0, and ``"x"`` equals ``"x"``);
- exact match per field, and "total": the share of items with every field correct; partial
  match (at least k fields correct); the same with "unknowns removed" (a system ``"x"`` where the
  reference has a number counted as correct), as their code also reports.

Values are compared as reported: a SD the extractor derived from an SE or CI is not used unless
``--use-derived`` is given (the annotators wrote down reported numbers).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from leads.errors import LeadsError, SourceError
from leads.eval.common import NUMBER_VARIANTS, number_matches

__all__ = [
    "BINARY_FIELDS",
    "CONTINUOUS_FIELDS",
    "PUBLISHED",
    "Item",
    "evaluate",
    "load_items",
    "metrics",
    "predict",
    "results_eval_command",
]

BINARY_FIELDS = ("intervention_events", "intervention_group_size", "comparator_events", "comparator_group_size")
CONTINUOUS_FIELDS = ("intervention_mean", "intervention_standard_deviation", "intervention_group_size",
                     "comparator_mean", "comparator_standard_deviation", "comparator_group_size")

# Yun et al. 2024, test split, exact match of all fields (binary: 4 cells, continuous: 6 cells).
PUBLISHED = {
    "GPT-4": {"binary": 0.655, "continuous": 0.487},
    "GPT-3.5": {"binary": 0.298, "continuous": 0.280},
    "Mistral-7B": {"binary": 0.164, "continuous": 0.095},
}


@dataclass
class Item:
    """One annotated (article, intervention, comparator, outcome) with its reference numbers."""

    id: str
    pmcid: str
    outcome: str
    intervention: str
    comparator: str
    outcome_type: str
    reference: dict[str, Any]
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _x(value: Any) -> Any:
    """The authors' normalisation: empty or missing is "x"; numbers stay numbers."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "x"
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "x", "nan", "none", "null"):
            return "x"
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            return text
        return int(number) if number.is_integer() else number
    return value


def load_items(path: Path, *, split: str | None = "DEV") -> list[Item]:
    """Items of an llm-meta-analysis annotation file (JSON list or CSV), optionally one split."""
    if not path.is_file():
        raise SourceError("annotation file not found", source=str(path))
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
    else:
        import csv
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    items = []
    for i, row in enumerate(rows):
        if split and "split" in row and str(row["split"]).upper() != split.upper():
            continue
        kind = str(row.get("outcome_type", "")).strip()
        fields = BINARY_FIELDS if kind == "binary" else CONTINUOUS_FIELDS
        reference = {f: _x(row.get(f)) for f in fields}
        items.append(Item(id=str(row.get("id", i)), pmcid=str(row["pmcid"]).removeprefix("PMC"),
                          outcome=str(row["outcome"]), intervention=str(row["intervention"]),
                          comparator=str(row["comparator"]), outcome_type=kind, reference=reference,
                          notes=str(row.get("notes") or "")))
    return items


def _article_path(texts: Path, pmcid: str) -> Path:
    for name in (f"PMC{pmcid}.xml", f"PMC{pmcid}.nxml", f"PMC{pmcid}.md", f"PMC{pmcid}.txt"):
        candidate = texts / name
        if candidate.is_file():
            return candidate
    raise SourceError(f"no article text for PMC{pmcid} (looked for .xml, .nxml, .md, .txt)", source=str(texts))


def read_article(path: Path) -> Any:
    """A :class:`leads.documents.model.Document` for a JATS XML or Markdown article."""
    data = path.read_bytes()
    if path.suffix in (".xml", ".nxml"):
        from leads.documents.jats import read_jats
        return read_jats(_as_article(data), source=str(path))
    from leads.documents.text import read_markdown, read_text
    if path.suffix == ".md":
        return read_markdown(data, source=str(path))
    return read_text(data, source=str(path))


_ABSTRACT = re.compile(rb"<abstract[\s>].*?</abstract>", re.DOTALL)


def _as_article(data: bytes) -> bytes:
    """The llm-meta-analysis texts are fragments (``<abstract>`` then ``<sec>`` elements, no
    root); wrap them as a JATS article (abstract in the front matter, sections in the body)."""
    if re.search(rb"<article[\s>]", data[:4096]):
        return data
    abstracts = _ABSTRACT.findall(data)
    body = _ABSTRACT.sub(b"", data)
    return (b"<article><front><article-meta>" + b"".join(abstracts) + b"</article-meta></front><body>"
            + body + b"</body></article>")


def _number(value: float | None) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "x"
    return int(value) if float(value).is_integer() else float(value)


def predict(item: Item, document: Any, *, use_derived: bool = False) -> tuple[dict[str, Any], Any]:
    """Run the classic extractor on one item; returns the fields in the authors' names and the choice."""
    from leads.extract.results import extract_results, remember_document
    from leads.tasks.extraction import Group, ResultsInput

    remember_document(document)
    outcome_type: Literal["binary", "continuous"] | None = (
        "binary" if item.outcome_type == "binary" else "continuous" if item.outcome_type == "continuous" else None)
    inp = ResultsInput(text=document.text, outcome=item.outcome,
                       groups=[Group(id="intervention", title=item.intervention[:300]),
                               Group(id="comparator", title=item.comparator[:300])],
                       outcome_type=outcome_type)
    choice = extract_results(inp, document=document)
    arms = {a.group_id: a for a in choice.output.arms}
    out: dict[str, Any] = {}
    for role in ("intervention", "comparator"):
        arm = arms[role]
        derived = {d.field: d.value for d in arm.derived} if use_derived else {}
        if item.outcome_type == "binary":
            out[f"{role}_events"] = _number(arm.events if arm.events is not None else derived.get("events"))
            out[f"{role}_group_size"] = _number(arm.group_size)
        else:
            out[f"{role}_mean"] = _number(arm.mean if arm.mean is not None else derived.get("mean"))
            out[f"{role}_standard_deviation"] = _number(arm.sd if arm.sd is not None else derived.get("sd"))
            out[f"{role}_group_size"] = _number(arm.group_size)
    return out, choice


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


def _numbers_in(value: str | None) -> list[float]:
    if not value:
        return []
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(value)]


def predict_with_engine(item: Item, text: str, runner: Any) -> dict[str, Any]:
    """Any engine through the ``results`` task contract (LEADS' answer shape), in the authors' fields.

    Binary items: a group's value is its events and the group's denominator its size (the
    ClinicalTrials.gov shape of a count of participants). Continuous items: the first number of
    a group's value is the mean and a second one (``"12.3 (4.5)"``, ``"12.3 ± 4.5"``) the SD."""
    from leads.tasks import TASKS
    from leads.tasks.extraction import Group, ResultsInput

    outcome_type: Literal["binary", "continuous"] | None = (
        "binary" if item.outcome_type == "binary" else "continuous" if item.outcome_type == "continuous" else None)
    inp = ResultsInput(text=text, outcome=item.outcome[:500],
                       groups=[Group(id="intervention", title=item.intervention[:300]),
                               Group(id="comparator", title=item.comparator[:300])],
                       outcome_type=outcome_type)
    out = runner.run(TASKS["results"], inp).output
    values = {v.group_id: v for v in out.values}
    result: dict[str, Any] = {}
    for role in ("intervention", "comparator"):
        value = values.get(role)
        numbers = _numbers_in(value.value if value is not None else None)
        size = out.denominators.get(role)
        if item.outcome_type == "binary":
            result[f"{role}_events"] = _number(numbers[0] if numbers else None)
        else:
            result[f"{role}_mean"] = _number(numbers[0] if numbers else None)
            result[f"{role}_standard_deviation"] = _number(numbers[1] if len(numbers) > 1 else None)
        result[f"{role}_group_size"] = _number(size)
    return result


def _equal(reference: Any, predicted: Any) -> bool:
    if reference == "x" or predicted == "x":
        return reference == predicted
    try:
        return float(reference) == float(predicted)
    except (TypeError, ValueError):
        return bool(reference == predicted)


def _as_number(value: Any) -> float | None:
    """The authors' "x" (not reported) as ``None``; numbers as floats; other text as ``nan`` (a miss)."""
    if value == "x" or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def metrics(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> dict[str, Any]:
    """Exact match per field and of all fields, partial match, unknown counts (authors' metrics)."""
    n = len(rows)
    if n == 0:
        return {"items": 0}
    per_field = {f: sum(_equal(r["reference"][f], r["predicted"][f]) for r in rows) / n for f in fields}
    removed = {f: sum(_equal(r["reference"][f], r["predicted"][f])
                      or (r["predicted"][f] == "x" and r["reference"][f] != "x") for r in rows) / n for f in fields}
    correct_counts = [sum(_equal(r["reference"][f], r["predicted"][f]) for f in fields) for r in rows]
    correct_removed = [sum(_equal(r["reference"][f], r["predicted"][f])
                           or (r["predicted"][f] == "x" and r["reference"][f] != "x") for f in fields) for r in rows]
    variants: dict[str, dict[str, float]] = {}
    for variant in NUMBER_VARIANTS:
        hits = [[number_matches(_as_number(r["reference"][f]), _as_number(r["predicted"][f]))[variant]
                 for f in fields] for r in rows]
        variants[variant] = {"fields": round(sum(map(sum, hits)) / (n * len(fields)), 4),
                             "total": round(sum(all(h) for h in hits) / n, 4)}
    return {
        "items": n,
        "number_variants": variants,
        "exact_match": {**per_field, "total": sum(c == len(fields) for c in correct_counts) / n},
        "exact_match_remove_unknowns": {**removed, "total": sum(c == len(fields) for c in correct_removed) / n},
        "partial_match": {f"at_least_{k}": sum(c >= k for c in correct_counts) / n for k in range(1, len(fields))},
        "model_unknowns": sum(1 for r in rows for f in fields if r["predicted"][f] == "x" and r["reference"][f] != "x"),
        "reference_unknowns": sum(1 for r in rows for f in fields if r["reference"][f] == "x"),
    }


def evaluate(items: Sequence[Item], texts: Path, *, use_derived: bool = False, engine: str = "classic",
             dataset: str = "") -> dict[str, Any]:
    """Run every item and score binary and continuous items separately.

    The classic engine runs its extractor with the parsed document (tables included); any other
    engine runs the ``results`` task contract on the document's text (:func:`predict_with_engine`)."""
    documents: dict[str, Any] = {}
    rows = []
    runner = None
    failures = 0
    if engine != "classic":
        from leads.engines import MemoryCallLog, get_engine

        runner = get_engine(engine, log=MemoryCallLog())
    started = time.perf_counter()
    try:
        for item in items:
            if item.pmcid not in documents:
                documents[item.pmcid] = read_article(_article_path(texts, item.pmcid))
            fields = BINARY_FIELDS if item.outcome_type == "binary" else CONTINUOUS_FIELDS
            evidence, time_point, error = "", "", None
            if runner is None:
                predicted, choice = predict(item, documents[item.pmcid], use_derived=use_derived)
                evidence = choice.candidate.label if choice.candidate is not None else ""
                time_point = choice.output.time_frame
            else:
                try:
                    predicted = predict_with_engine(item, documents[item.pmcid].text, runner)
                except LeadsError as exc:
                    predicted, error = dict.fromkeys(fields, "x"), str(exc)[:500]
                    failures += 1
            wrong = [f for f in fields if not _equal(item.reference[f], predicted[f])]
            rows.append({"id": item.id, "pmcid": item.pmcid, "outcome": item.outcome, "type": item.outcome_type,
                         "intervention": item.intervention, "comparator": item.comparator,
                         "reference": item.reference, "predicted": predicted, "wrong": wrong,
                         "evidence": evidence, "time_point": time_point, "annotator_note": item.notes,
                         **({"error": error} if error else {})})
    finally:
        if runner is not None:
            runner.close()
    seconds = time.perf_counter() - started
    binary = [r for r in rows if r["type"] == "binary"]
    continuous = [r for r in rows if r["type"] == "continuous"]
    result: dict[str, Any] = {
        "task": "results", "dataset": dataset, "engine": engine, "n": len(rows), "failures": failures,
        "binary": metrics(binary, BINARY_FIELDS), "continuous": metrics(continuous, CONTINUOUS_FIELDS)}
    result["metrics"] = {kind: {"exact_match_total": m["exact_match"]["total"],
                                **{f"{v}_fields": m["number_variants"][v]["fields"] for v in NUMBER_VARIANTS},
                                **{f"{v}_total": m["number_variants"][v]["total"] for v in NUMBER_VARIANTS}}
                         for kind in ("binary", "continuous") if (m := result[kind]).get("items")}
    result.update({"items": rows, "seconds": seconds, "published_test_set": PUBLISHED})
    return result


def _markdown(result: dict[str, Any]) -> str:
    lines = []
    for kind, fields in (("binary", BINARY_FIELDS), ("continuous", CONTINUOUS_FIELDS)):
        m = result[kind]
        if not m.get("items"):
            continue
        lines.append(f"{kind} ({m['items']} items): exact match of all fields {m['exact_match']['total']:.3f}")
        lines.append("  fields matching (all fields of the item): " + ", ".join(
            f"{v} {m['number_variants'][v]['fields']:.3f} ({m['number_variants'][v]['total']:.3f})"
            for v in NUMBER_VARIANTS))
        for f in fields:
            lines.append(f"  {f}: {m['exact_match'][f]:.3f}")
    lines.append("")
    for r in result["items"]:
        status = "ok" if not r["wrong"] else "wrong: " + ", ".join(r["wrong"])
        lines.append(f"[{r['id']}] PMC{r['pmcid']} {r['type']} {r['outcome']!r}: {status}")
        if r["wrong"]:
            lines.append(f"    reference {r['reference']}")
            lines.append(f"    predicted {r['predicted']}")
            lines.append(f"    evidence  {r['evidence'][:160]!r} time={r['time_point']!r}")
    return "\n".join(lines)


@click.command("results")
@click.option("--data", "data", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="llm-meta-analysis annotations (annotated_rct_dataset*.json or .csv).")
@click.option("--texts", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Folder of article texts named PMC<id>.xml / .md (e.g. xml_abstract_and_results/).")
@click.option("--split", default="DEV", show_default=True,
              help="Split to evaluate (DEV, TEST); 'all' for every row.")
@click.option("--use-derived", is_flag=True, help="Score SDs derived from SE/CI (and events from %) too.")
@click.option("--engine", default="classic", show_default=True,
              help="Engine that runs the task (classic, llamacpp, openai, ...).")
@click.option("--limit", type=int, default=0, show_default=True, help="Evaluate only the first N items (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics and per-item results as JSON.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the JSON result to this file.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to this file instead of printing it.")
def results_eval_command(data: Path, texts: Path, split: str, use_derived: bool, engine: str, limit: int,
                         as_json: bool, out: Path | None, markdown_file: Path | None) -> None:
    """Trial-results extraction (events, group sizes, means, SDs) scored as in Yun et al. 2024."""
    from leads.eval.common import emit

    items = load_items(data, split=None if split.lower() == "all" else split)
    if not items:
        raise click.UsageError(f"no items of split {split!r} in {data}")
    if limit:
        items = items[:limit]
    try:
        result = evaluate(items, texts, use_derived=use_derived, engine=engine, dataset=data.name)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    if out is not None:
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    emit(result, as_json=as_json, markdown_file=markdown_file, text=_markdown(result))


if __name__ == "__main__":  # pragma: no cover - `python -m leads.eval.extraction_results ...`
    results_eval_command()
