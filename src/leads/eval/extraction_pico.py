"""Evaluation of the classic PICO span tagger and participant counts on the developer data.

``leads eval pico``: token-level precision/recall/F1 of participants, interventions and outcomes
on ``pico/ebmnlp_dev.txt`` (EBM-NLP dev, crowd labels), by K-fold cross-validation over
abstracts: each fold's CRF is trained on the other folds with the shipped model's features and
parameters (:mod:`leads.extract.train_pico`). Macro-F1 is the mean of the three classes' F1
(BLURB's measure; its published PubMedBERT figure, 73.4, is on the expert-labelled test set).

``leads eval participants``: exact match of the total and per-arm numbers of participants on the
PICO-Corpus dev slice (``pico/pico_corpus_dev``; annotations ``total-participants``,
``intervention-participants``, ``control-participants``), by K-fold cross-validation of the count
classifier (abstract ``i`` in fold ``i % K``; the PICO CRF features come from the shipped model,
trained on EBM-NLP only). A prediction is scored against the first annotated value in the text
("first") and against any annotated value of that type ("any": the corpus often annotates the
number randomised and the number analysed). The intervention (control) prediction is the first
predicted arm of that type.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from leads.errors import LeadsError

__all__ = ["eval_participants_command", "eval_pico_command", "evaluate_participants", "evaluate_pico"]


def _shared(path: str | None) -> Path:
    if path:
        return Path(path)
    from leads.extract.train_pico import _default_shared

    return _default_shared()


def evaluate_pico(shared: Path, *, folds: int = 5, jobs: int = 1, limit: int = 0) -> dict[str, Any]:
    """Cross-validated token-level scores of the PICO CRF on EBM-NLP dev."""
    from leads.extract.train_pico import EBMNLP_FILE, cross_validate, read_ebmnlp

    path = shared / EBMNLP_FILE
    if not path.is_file():
        raise LeadsError(f"{path}: the EBM-NLP dev file is missing (see shared/data/README.md)")
    docs = read_ebmnlp(path)
    if limit:
        docs = docs[:limit]
    result = cross_validate(docs, folds=folds, jobs=jobs)
    result["data"] = EBMNLP_FILE
    return result


def _first(values: list[int]) -> int | None:
    return values[0] if values else None


def evaluate_participants(folder: Path, *, folds: int = 5, limit: int = 0,
                          details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Cross-validated exact match of total / intervention / control participant numbers on a
    folder of PICO-Corpus brat files (``shared/data/pico/pico_corpus_dev``)."""
    from leads.extract.participants import describe_participants
    from leads.extract.pico import PicoTagger
    from leads.extract.train_pico import count_examples, fit_count_model, read_pico_corpus

    docs = read_pico_corpus(folder)
    if limit:
        docs = docs[:limit]
    if len(docs) < folds:
        raise LeadsError(f"{folder}: {len(docs)} abstracts, fewer than {folds} folds")
    started = time.perf_counter()
    tagger = PicoTagger.load()
    examples = [count_examples(d, tagger) for d in docs]
    counts = {key: {"gold": 0, "first": 0, "any": 0, "predicted": 0} for key in ("total", "intervention", "control")}
    both = {"gold": 0, "correct": 0}
    spurious_total = 0
    for fold in range(folds):
        feats: list[dict[str, float]] = []
        labels: list[str] = []
        for i, (_doc, _cands, f, classes) in enumerate(examples):
            if i % folds != fold:
                feats.extend(f)
                labels.extend(classes)
        model = fit_count_model(feats, labels)
        for i, doc in enumerate(docs):
            if i % folds != fold:
                continue
            summary = describe_participants(doc.text, model=model, tagger=tagger)
            predicted = {
                "total": summary.total,
                "intervention": next((g.n for g in summary.groups if g.type == "intervention"), None),
                "control": next((g.n for g in summary.groups if g.type == "control"), None),
            }
            gold = {
                "total": doc.values("total-participants"),
                "intervention": doc.values("intervention-participants"),
                "control": doc.values("control-participants"),
            }
            for key, c in counts.items():
                if predicted[key] is not None:
                    c["predicted"] += 1
                if gold[key]:
                    c["gold"] += 1
                    c["first"] += int(predicted[key] == _first(gold[key]))
                    c["any"] += int(predicted[key] in gold[key])
            if not gold["total"] and predicted["total"] is not None:
                spurious_total += 1
            if gold["intervention"] and gold["control"]:
                both["gold"] += 1
                arm_ns = {g.n for g in summary.groups}
                both["correct"] += int(_first(gold["intervention"]) in arm_ns and _first(gold["control"]) in arm_ns)
            if details is not None:
                details.append({"pmid": doc.pmid, "fold": fold, "gold": gold, "predicted": predicted,
                                "groups": [g.model_dump(exclude={"evidence"}) for g in summary.groups]})
    result: dict[str, Any] = {"data": folder.name, "abstracts": len(docs), "folds": folds}
    for key, c in counts.items():
        result[key] = {
            "abstracts_with_gold": c["gold"],
            "exact_first": round(c["first"] / c["gold"], 4) if c["gold"] else None,
            "exact_any": round(c["any"] / c["gold"], 4) if c["gold"] else None,
            "predicted": c["predicted"],
        }
    result["total"]["predicted_without_gold"] = spurious_total
    result["both_arms"] = {"abstracts_with_gold": both["gold"],
                           "exact": round(both["correct"] / both["gold"], 4) if both["gold"] else None}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _print(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        for line in lines:
            click.echo(line)


@click.command("pico")
@click.option("--shared", type=click.Path(file_okay=False), default=None,
              help="the shared data folder (default: ../shared/data next to the repository, or $LEADS_SHARED_DATA)")
@click.option("--folds", type=int, default=5, show_default=True, help="cross-validation folds")
@click.option("--jobs", type=int, default=1, show_default=True, help="parallel processes (folds)")
@click.option("--limit", type=int, default=0, help="use only the first N abstracts (a quick check)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def eval_pico_command(shared: str | None, folds: int, jobs: int, limit: int, as_json: bool) -> None:
    """PICO span tagging: token-level F1 on EBM-NLP dev by cross-validation."""
    try:
        result = evaluate_pico(_shared(shared), folds=folds, jobs=jobs, limit=limit)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    lines = [f"EBM-NLP dev, {result['abstracts']} abstracts, {result['tokens']} tokens, {folds}-fold CV"]
    for label, s in result["per_class"].items():
        lines.append(f"  {label:<14} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}")
    lines.append(f"  macro-F1 {result['macro_f1']:.3f}  micro-F1 {result['micro_f1']:.3f}  ({result['wall_s']} s)")
    _print(result, as_json, lines)


@click.command("participants")
@click.option("--shared", type=click.Path(file_okay=False), default=None,
              help="the shared data folder (default: ../shared/data next to the repository, or $LEADS_SHARED_DATA)")
@click.option("--folds", type=int, default=5, show_default=True, help="cross-validation folds")
@click.option("--limit", type=int, default=0, help="use only the first N abstracts (a quick check)")
@click.option("--details", type=click.Path(dir_okay=False), default=None,
              help="write each abstract's gold and predicted numbers to this JSON Lines file")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def eval_participants_command(shared: str | None, folds: int, limit: int, details: str | None,
                              as_json: bool) -> None:
    """Participant counts: exact match of total and per-arm N on the PICO-Corpus dev slice."""
    rows: list[dict[str, Any]] | None = [] if details else None
    try:
        from leads.extract.train_pico import PICO_CORPUS_DIR

        result = evaluate_participants(_shared(shared) / PICO_CORPUS_DIR, folds=folds, limit=limit,
                                       details=rows)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    if details and rows is not None:
        with open(details, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    lines = [f"PICO-Corpus dev, {result['abstracts']} abstracts, {folds}-fold CV (exact match)"]
    for key in ("total", "intervention", "control"):
        r = result[key]
        lines.append(f"  {key:<13} first {r['exact_first']}  any {r['exact_any']}  "
                     f"(gold in {r['abstracts_with_gold']}, predicted in {r['predicted']})")
    lines.append(f"  both arms     {result['both_arms']['exact']} (gold in {result['both_arms']['abstracts_with_gold']})")
    _print(result, as_json, lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(eval_pico_command())
