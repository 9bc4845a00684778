"""``leads eval characteristics``: are the study characteristics read from the right sentences?

Data: CONSORT-TM (Kilicoglu et al. 2021; ``fulltext/consort_tm/xml/PMC<id>.xml[.gz]`` of the
shared data): RCT articles whose sentences carry the CONSORT 2010 checklist items they report.
There is no gold *value* per field, but there is a gold *place*: the sentences that report the
item. So each field below is asked for with its name and description, and scored on where its
supporting quote lies.

Protocol
--------
- The input text is the article's text with the abstract blanked out (replaced by spaces, so
  offsets stay those of the annotation): CONSORT-TM labels the title and the body, not the
  abstract's sentences, so a quote from the abstract could not be judged.
- A field is **reported** in an article when at least one sentence is labelled with one of the
  field's items (:data:`FIELDS`).
- A value is **located** when one of its evidence spans overlaps a sentence labelled with one of
  the field's items by at least half of the shorter of the two spans.
- **accuracy** per field: located values when the field is reported, plus ``None`` ("not
  reported") when it is not, over all articles. ``precision``: located / values given;
  ``recall``: located / articles reporting it; ``not_reported_ok``: ``None`` among the
  articles that do not report it. A value without a located quote is never correct.
- ``macro_accuracy``: the mean of the fields' accuracies.

Items are CONSORT 2010's: 1a title identifies a randomised trial, 3a trial design, 4a
eligibility criteria, 4b settings and locations, 5 interventions, 6a primary and secondary
outcomes, 7a sample size, 8a/8b sequence generation and type of randomisation, 9 allocation
concealment, 11a/11b blinding, 12a statistical methods, 13a numbers randomised, analysed and
followed per group, 14a dates of recruitment and follow-up, 23 registration, 25 funding.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from lxml import etree

from leads.errors import LeadsError
from leads.eval.common import EvalError, common_options, emit, share

__all__ = ["FIELDS", "ConsortArticle", "eval_characteristics_command", "evaluate_characteristics",
           "load_consort_article", "load_consort_articles"]


@dataclass(frozen=True)
class FieldDef:
    name: str
    description: str
    items: frozenset[str]


#: The fields asked for (``name: description`` as a user would write them) and the CONSORT items
#: whose sentences count as the right place for their quote.
FIELDS: tuple[FieldDef, ...] = (
    FieldDef("design", "study design (e.g. randomised, double-blind, parallel-group)", frozenset({"3a", "1a"})),
    FieldDef("eligibility criteria", "eligibility criteria for participants", frozenset({"4a"})),
    FieldDef("setting", "settings and locations where the data were collected", frozenset({"4b"})),
    FieldDef("interventions", "the interventions of each group, with details", frozenset({"5"})),
    FieldDef("primary outcome", "the pre-specified primary outcome measure", frozenset({"6a"})),
    FieldDef("randomised N", "number of participants randomised (or the planned sample size)",
             frozenset({"13a", "7a"})),
    FieldDef("sequence generation", "method used to generate the random allocation sequence",
             frozenset({"8a", "8b"})),
    FieldDef("allocation concealment", "mechanism used to conceal the allocation sequence", frozenset({"9"})),
    FieldDef("blinding", "who was blinded after assignment to interventions", frozenset({"11a", "11b"})),
    FieldDef("statistical methods", "statistical methods used to compare groups for the primary outcome",
             frozenset({"12a"})),
    FieldDef("recruitment period", "dates defining the periods of recruitment and follow-up", frozenset({"14a"})),
    FieldDef("registration", "trial registration number and registry", frozenset({"23"})),
    FieldDef("funding", "sources of funding", frozenset({"25"})),
)

MIN_OVERLAP = 0.5


@dataclass
class ConsortArticle:
    """An article's text (abstract blanked) and its labelled sentences ``(start, end, items)``."""

    id: str
    text: str
    sentences: list[tuple[int, int, frozenset[str]]]

    def labelled(self, items: frozenset[str]) -> list[tuple[int, int]]:
        return [(s, e) for s, e, labels in self.sentences if labels & items]


def load_consort_article(path: Path) -> ConsortArticle:
    """One CONSORT-TM XML file (``.xml`` or ``.xml.gz``)."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        root = etree.fromstring(data)
    except (OSError, etree.XMLSyntaxError) as exc:
        raise EvalError(f"{path}: not a readable CONSORT-TM XML file ({exc})") from exc
    text_node = root.find("text")
    if text_node is None or not text_node.text:
        raise EvalError(f"{path}: no <text> element")
    text = text_node.text
    for section in root.iter("section"):
        if (section.get("title") or "").strip().lower() == "abstract" and section.get("textSpan"):
            start, end = (int(x) for x in section.get("textSpan", "0-0").split("-"))
            text = text[:start] + " " * (end - start) + text[end:]
            break
    sentences = []
    for node in root.findall("sentence"):
        offsets = node.get("charOffset")
        if not offsets:
            raise EvalError(f"{path}: sentence {node.get('id')} has no charOffset")
        start, end = (int(x) for x in offsets.split("-"))
        items = frozenset(x.strip() for x in (node.get("selection") or "").split(",") if x.strip())
        if items and text[start:end].strip():
            sentences.append((start, end, items))
    return ConsortArticle(id=root.get("id") or path.name.split(".")[0], text=text, sentences=sentences)


def load_consort_articles(folder: Path) -> list[ConsortArticle]:
    """Every ``*.xml``/``*.xml.gz`` of a folder, by name."""
    if folder.is_file():
        return [load_consort_article(folder)]
    paths = sorted([*folder.glob("*.xml"), *folder.glob("*.xml.gz")])
    if not paths:
        raise EvalError(f"{folder}: no CONSORT-TM .xml or .xml.gz files")
    return [load_consort_article(p) for p in paths]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    shorter = min(a[1] - a[0], b[1] - b[0])
    return inter > 0 and shorter > 0 and inter >= MIN_OVERLAP * shorter


def evaluate_characteristics(articles: Sequence[ConsortArticle], *, engine: str = "classic",
                             dataset: str = "", fields: Sequence[FieldDef] = FIELDS) -> dict[str, Any]:
    """Ask the engine for every field of every article and score where the quotes lie."""
    from leads.engines import MemoryCallLog, get_engine
    from leads.tasks import TASKS, CharacteristicsInput, FieldSpec

    runner = get_engine(engine, log=MemoryCallLog())
    task = TASKS["characteristics"]
    specs = [FieldSpec(name=f.name, description=f.description) for f in fields]
    rows: list[dict[str, Any]] = []
    failures = 0
    started = time.perf_counter()
    try:
        for article in articles:
            try:
                out = runner.run(task, CharacteristicsInput(text=article.text, fields=specs)).output
                by_name = {f.name: f for f in out.fields}
            except LeadsError as exc:
                failures += 1
                by_name = {}
                rows.append({"article": article.id, "error": str(exc)[:500]})
            for field in fields:
                gold = article.labelled(field.items)
                extracted = by_name.get(field.name)
                value = extracted.value if extracted is not None else None
                spans = [(e.start, e.end) for e in extracted.evidence] if extracted is not None else []
                located = value is not None and any(_overlaps(s, g) for s in spans for g in gold)
                rows.append({"article": article.id, "field": field.name, "reported": bool(gold),
                             "value": value, "evidence": spans, "located": located,
                             "correct": located if gold else value is None})
    finally:
        runner.close()
    per_field: dict[str, Any] = {}
    for field in fields:
        mine = [r for r in rows if r.get("field") == field.name]
        per_field[field.name] = {
            "accuracy": share(r["correct"] for r in mine),
            "precision": share(r["located"] for r in mine if r["value"] is not None),
            "recall": share(r["located"] for r in mine if r["reported"]),
            "not_reported_ok": share(r["value"] is None for r in mine if not r["reported"]),
            "reported_in": sum(r["reported"] for r in mine),
            "answered": sum(r["value"] is not None for r in mine),
        }
    accuracies = [m["accuracy"] for m in per_field.values() if m["accuracy"] is not None]
    metrics = {"macro_accuracy": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
               "fields": per_field}
    return {"task": "characteristics", "dataset": dataset, "engine": engine, "n": len(articles),
            "failures": failures, "metrics": metrics, "items": rows,
            "seconds": round(time.perf_counter() - started, 1)}


def markdown(result: dict[str, Any]) -> str:
    """One row per field."""
    lines = [f"characteristics on {result['dataset']} ({result['engine']}): {result['n']} articles; "
             f"macro accuracy {_fmt(result['metrics']['macro_accuracy'])}", "",
             "| field | CONSORT items | reported in | answered | accuracy | precision | recall | not reported ok |",
             "|---|---|---|---|---|---|---|---|"]
    items = {f.name: ", ".join(sorted(f.items)) for f in FIELDS}
    for name, m in result["metrics"]["fields"].items():
        lines.append(f"| {name} | {items.get(name, '')} | {m['reported_in']} | {m['answered']} | "
                     f"{_fmt(m['accuracy'])} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | "
                     f"{_fmt(m['not_reported_ok'])} |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


@click.command("characteristics")
@common_options(data_help="CONSORT-TM XML file or folder (fulltext/consort_tm/xml of the shared data).")
def eval_characteristics_command(data: Path, engine: str, limit: int, as_json: bool,
                                 markdown_file: Path | None) -> None:
    """Study characteristics: is each field's quote in a sentence labelled with its CONSORT item?"""
    try:
        articles = load_consort_articles(data)
        if limit:
            articles = articles[:limit]
        result = evaluate_characteristics(articles, engine=engine, dataset=data.name)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(result, as_json=as_json, markdown_file=markdown_file, text=markdown(result))
