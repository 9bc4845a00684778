"""``leads eval arms``: do the extracted arms contain the trial's intervention and comparator?

Data (``--data``), either of:

- the llm-meta-analysis annotations (``annotated_rct_dataset*.csv``/``.json``, with ``--texts``,
  the folder of ``PMC<id>.xml``/``.md`` article texts): each row names its intervention and
  comparator; the distinct (article, intervention, comparator) triples are the items;
- a folder of PICO-Corpus brat files (``<PMID>.txt`` + ``<PMID>.ann``): per abstract, the
  ``intervention`` and ``control`` spans (every distinct mention; any one may match).

Protocol: the engine's ``arms`` task reads the text; a gold name is found when one arm matches it.
An arm offers its label and its intervention names to the strict variants, and also its
description to the lenient one:

- ``exact`` / ``normalised`` / ``fuzzy``: :func:`leads.eval.common.text_matches` of the gold name
  against the arm's label or an intervention name (fuzzy: normalised ratio >= 0.9);
- ``lenient``: the shorter of the gold name and an arm string (label, intervention name or
  description; at least 4 characters normalised) is contained in the longer, up to a rapidfuzz
  ``partial_ratio`` >= 90 on normalised text ("White Grape Juice (WGJ)" vs an arm "white grape
  juice"; "placebo" vs "matching placebo").

Per variant: the share of items whose intervention is found, whose comparator is found, and
whose intervention and comparator are found in two different arms (``both``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rapidfuzz import fuzz

from leads.errors import LeadsError
from leads.eval.common import EvalError, common_options, emit, normalise_text, share, text_matches

__all__ = ["ArmsItem", "arm_matches", "eval_arms_command", "evaluate_arms", "load_arms_items"]

VARIANTS = ("exact", "normalised", "fuzzy", "lenient")
MIN_LENIENT_CHARS = 4


@dataclass
class ArmsItem:
    """One article with the names of its intervention and comparator (each may have variants)."""

    id: str
    source: Path
    interventions: list[str]
    comparators: list[str]


def _llm_meta_items(path: Path, texts: Path | None, split: str | None) -> list[ArmsItem]:
    from leads.eval.extraction_results import _article_path, load_items

    if texts is None:
        raise EvalError(f"{path}: llm-meta-analysis annotations need --texts (the folder of PMC<id>.xml/.md)")
    seen: dict[tuple[str, str, str], ArmsItem] = {}
    for item in load_items(path, split=split):
        key = (item.pmcid, item.intervention.strip(), item.comparator.strip())
        if key not in seen:
            seen[key] = ArmsItem(id=f"PMC{item.pmcid}: {key[1]} vs {key[2]}",
                                 source=_article_path(texts, item.pmcid),
                                 interventions=[key[1]], comparators=[key[2]])
    return list(seen.values())


def _brat_items(folder: Path) -> list[ArmsItem]:
    items = []
    for ann in sorted(folder.glob("*.ann")):
        txt = ann.with_suffix(".txt")
        if not txt.is_file():
            raise EvalError(f"{ann}: no {txt.name} next to it")
        spans: dict[str, list[str]] = {"intervention": [], "control": []}
        for n, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
            if not line.startswith("T"):
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                raise EvalError(f"{ann}:{n}: expected 'T<n>\\t<label> <start> <end>\\t<text>'")
            label = parts[1].split(" ", 1)[0]
            if label in spans and parts[2].strip() and parts[2].strip() not in spans[label]:
                spans[label].append(parts[2].strip())
        if spans["intervention"] and spans["control"]:
            items.append(ArmsItem(id=ann.stem, source=txt, interventions=spans["intervention"],
                                  comparators=spans["control"]))
    return items


def load_arms_items(data: Path, *, texts: Path | None = None, split: str | None = "DEV") -> list[ArmsItem]:
    """Items from llm-meta-analysis annotations (a file) or a PICO-Corpus brat folder."""
    if data.is_dir():
        items = _brat_items(data)
        if not items:
            raise EvalError(f"{data}: no brat file with both intervention and control spans")
        return items
    items = _llm_meta_items(data, texts, split)
    if not items:
        raise EvalError(f"{data}: no items (split {split!r})")
    return items


def _read_text(path: Path, cache: dict[Path, str]) -> str:
    if path not in cache:
        if path.suffix == ".txt":
            cache[path] = path.read_text(encoding="utf-8")
        else:
            from leads.eval.extraction_results import read_article

            cache[path] = read_article(path).text
    return cache[path]


def _lenient(gold: str, candidate: str) -> bool:
    g, c = normalise_text(gold), normalise_text(candidate)
    if min(len(g), len(c)) < MIN_LENIENT_CHARS:
        return False
    return g in c or c in g or fuzz.partial_ratio(g, c) >= 90


def arm_matches(gold: str, arm: Any) -> dict[str, bool]:
    """Whether an extracted arm (label, interventions, description) matches a gold name, per variant."""
    strict = [arm.label, *arm.interventions]
    out = dict.fromkeys(VARIANTS, False)
    for candidate in strict:
        for variant, ok in text_matches(gold, candidate).items():
            out[variant] = out[variant] or ok
    out["lenient"] = out["fuzzy"] or any(_lenient(gold, c) for c in [*strict, arm.description] if c)
    return out


def _found(names: Sequence[str], arms: Sequence[Any]) -> dict[str, set[int]]:
    """Per variant, the arms (indexes) that match any of the gold names."""
    hits: dict[str, set[int]] = {v: set() for v in VARIANTS}
    for i, arm in enumerate(arms):
        for name in names:
            for variant, ok in arm_matches(name, arm).items():
                if ok:
                    hits[variant].add(i)
    return hits


def _two_arms(a: set[int], b: set[int]) -> bool:
    return any(i != j for i in a for j in b)


def evaluate_arms(items: Sequence[ArmsItem], *, engine: str = "classic", dataset: str = "") -> dict[str, Any]:
    """Run the engine's arms task on each item's text and score the variants."""
    from leads.engines import MemoryCallLog, get_engine
    from leads.tasks import TASKS, ArmsInput

    runner = get_engine(engine, log=MemoryCallLog())
    task = TASKS["arms"]
    texts: dict[Path, str] = {}
    outputs: dict[Path, Any] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for item in items:
            error = None
            if item.source not in outputs:
                try:
                    outputs[item.source] = runner.run(task, ArmsInput(text=_read_text(item.source, texts))).output.arms
                except LeadsError as exc:
                    outputs[item.source] = []
                    error = str(exc)[:500]
            arms = outputs[item.source]
            inter, comp = _found(item.interventions, arms), _found(item.comparators, arms)
            rows.append({
                "id": item.id, "interventions": item.interventions, "comparators": item.comparators,
                "arms": [{"label": a.label, "type": a.type, "interventions": a.interventions} for a in arms],
                "intervention": {v: bool(inter[v]) for v in VARIANTS},
                "comparator": {v: bool(comp[v]) for v in VARIANTS},
                "both": {v: _two_arms(inter[v], comp[v]) for v in VARIANTS},
                **({"error": error} if error else {}),
            })
    finally:
        runner.close()
    metrics: dict[str, Any] = {v: {key: share(r[key][v] for r in rows) for key in ("intervention", "comparator", "both")}
                               for v in VARIANTS}
    metrics["articles_with_2_arms"] = share(len(outputs[i.source]) >= 2 for i in items)
    return {"task": "arms", "dataset": dataset, "engine": engine, "n": len(rows),
            "articles": len(outputs), "failures": sum("error" in r for r in rows),
            "metrics": metrics, "items": rows, "seconds": round(time.perf_counter() - started, 1)}


def markdown(result: dict[str, Any]) -> str:
    """Variants as rows, intervention / comparator / both as columns."""
    lines = [f"arms on {result['dataset']} ({result['engine']}): {result['n']} items, "
             f"{result['articles']} articles", "",
             "| match | intervention | comparator | both (two arms) |", "|---|---|---|---|"]
    for v in VARIANTS:
        m = result["metrics"][v]
        lines.append(f"| {v} | " + " | ".join("–" if m[k] is None else f"{m[k]:.3f}"
                                            for k in ("intervention", "comparator", "both")) + " |")
    return "\n".join(lines)


@click.command("arms")
@common_options(data_help="llm-meta-analysis annotations (.csv/.json; with --texts) or a PICO-Corpus "
                          "brat folder (<PMID>.txt + .ann).")
@click.option("--texts", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of article texts PMC<id>.xml/.md (for llm-meta-analysis annotations).")
@click.option("--split", default="DEV", show_default=True,
              help="Split of the llm-meta-analysis annotations (DEV, TEST; 'all' for every row).")
def eval_arms_command(data: Path, engine: str, limit: int, as_json: bool, markdown_file: Path | None,
                      texts: Path | None, split: str) -> None:
    """Arm design: share of trials whose extracted arms contain the intervention and comparator."""
    try:
        items = load_arms_items(data, texts=texts, split=None if split.lower() == "all" else split)
        if limit:
            items = items[:limit]
        result = evaluate_arms(items, engine=engine, dataset=data.name)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(result, as_json=as_json, markdown_file=markdown_file, text=markdown(result))
