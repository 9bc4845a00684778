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

__all__ = ["eval_participants_command", "eval_pico_command", "evaluate_participants", "evaluate_participants_engine",
           "evaluate_pico", "evaluate_pico_engine"]


def _shared(path: str | None) -> Path:
    if path:
        return Path(path)
    from leads.extract.train_pico import _default_shared

    return _default_shared()


def evaluate_pico(shared: Path, *, folds: int = 5, jobs: int = 1, limit: int = 0,
                  path: Path | None = None) -> dict[str, Any]:
    """Cross-validated token-level scores of the PICO CRF on EBM-NLP dev (or the CoNLL file ``path``)."""
    from leads.extract.train_pico import EBMNLP_FILE, cross_validate, read_ebmnlp

    path = path or shared / EBMNLP_FILE
    if not path.is_file():
        raise LeadsError(f"{path}: the EBM-NLP dev file is missing (see shared/data/README.md)")
    docs = read_ebmnlp(path)
    if limit:
        docs = docs[:limit]
    result = cross_validate(docs, folds=folds, jobs=jobs)
    result["data"] = path.name
    result.update({"task": "pico", "dataset": path.name, "engine": "classic", "n": len(docs),
                   "metrics": {"macro_f1": result["macro_f1"], "micro_f1": result["micro_f1"],
                               **{label: sc["f1"] for label, sc in result["per_class"].items()}}})
    return result


_SPAN_TAGS = {"participants": "PAR", "interventions": "INT", "outcomes": "OUT"}


def evaluate_pico_engine(path: Path, *, engine: str = "classic", limit: int = 0) -> dict[str, Any]:
    """Token-level scores of an engine's ``pico`` task (the task contract, no training) on an
    EBM-NLP CoNLL file: each abstract's tokens are joined by spaces (sentences by newlines), the
    engine's spans are mapped back to the tokens they cover (a token takes the label of the first
    span it overlaps) and scored like the cross-validation (:func:`score_tokens`).

    For the classic engine this measures the shipped CRF as it is, which may have been trained
    on these abstracts: a regression check, not a held-out figure."""
    from leads.engines import MemoryCallLog, get_engine
    from leads.extract.train_pico import read_ebmnlp, score_tokens
    from leads.tasks import TASKS, PicoInput

    if not path.is_file():
        raise LeadsError(f"{path}: the EBM-NLP CoNLL file is missing")
    docs = read_ebmnlp(path)
    if limit:
        docs = docs[:limit]
    runner = get_engine(engine, log=MemoryCallLog())
    gold: list[list[str]] = []
    predicted: list[list[str]] = []
    failures = 0
    started = time.perf_counter()
    try:
        for doc in docs:
            offsets: list[list[tuple[int, int]]] = []
            parts: list[str] = []
            position = 0
            for tokens, _labels in doc.sentences:
                spans_of_sentence = []
                for token in tokens:
                    spans_of_sentence.append((position, position + len(token)))
                    position += len(token) + 1
                parts.append(" ".join(tokens))
                offsets.append(spans_of_sentence)
            text = "\n".join(parts)
            try:
                spans = runner.run(TASKS["pico"], PicoInput(text=text)).output.spans
            except LeadsError:
                failures += 1
                spans = []
            for (_tokens, labels), token_offsets in zip(doc.sentences, offsets, strict=True):
                gold.append(list(labels))
                predicted.append([next((_SPAN_TAGS[sp.label] for sp in spans if sp.start < end and sp.end > start),
                                       "O") for start, end in token_offsets])
    finally:
        runner.close()
    result = score_tokens(gold, predicted)
    return {"task": "pico", "dataset": path.name, "engine": engine, "mode": "task contract (no training)",
            "n": len(docs), "abstracts": len(docs), "failures": failures, "tokens": result["tokens"],
            "per_class": result["per_class"], "macro_f1": result["macro_f1"], "micro_f1": result["micro_f1"],
            "metrics": {"macro_f1": result["macro_f1"], "micro_f1": result["micro_f1"],
                        **{label: s["f1"] for label, s in result["per_class"].items()}},
            "wall_s": round(time.perf_counter() - started, 1)}


def evaluate_participants_engine(folder: Path, *, engine: str = "classic", limit: int = 0) -> dict[str, Any]:
    """Participant numbers through the ``participants`` task contract on PICO-Corpus brat files.

    Per abstract with gold intervention and control spans, the engine is asked for the measure
    "Number of participants" for three groups: "Total", the intervention (titled with its first
    annotated span) and the control (likewise). Predictions are compared with the first annotated
    ``total-`` / ``intervention-`` / ``control-participants`` value in the number variants of
    :func:`leads.eval.common.number_matches` (exact, within 1 %, within 5 %), and with any annotated
    value (``exact_any``). Abstracts without a gold value for a group are not scored for it."""
    from leads.engines import MemoryCallLog, get_engine
    from leads.eval.common import NUMBER_VARIANTS, number_matches, share
    from leads.extract.train_pico import read_pico_corpus
    from leads.tasks import TASKS, Group, ParticipantsInput

    docs = read_pico_corpus(folder)
    runner = get_engine(engine, log=MemoryCallLog())
    rows: list[dict[str, Any]] = []
    failures = 0
    started = time.perf_counter()
    try:
        for doc in docs:
            names = {kind: next((t for k, _s, _e, t in sorted(doc.annotations, key=lambda a: a[1]) if k == kind), None)
                     for kind in ("intervention", "control")}
            if not names["intervention"] or not names["control"]:
                continue
            if limit and len(rows) >= limit:
                break
            inp = ParticipantsInput(text=doc.text, measure="Number of participants", groups=[
                Group(id="total", title="Total"),
                Group(id="intervention", title=names["intervention"][:300]),
                Group(id="control", title=names["control"][:300])])
            try:
                values = {v.group_id: v.number for v in runner.run(TASKS["participants"], inp).output.values}
            except LeadsError:
                failures += 1
                values = {}
            gold = {"total": doc.values("total-participants"),
                    "intervention": doc.values("intervention-participants"),
                    "control": doc.values("control-participants")}
            rows.append({"pmid": doc.pmid, "groups": names, "gold": gold, "predicted": values})
    finally:
        runner.close()
    metrics: dict[str, Any] = {}
    for key in ("total", "intervention", "control"):
        scored = [r for r in rows if r["gold"][key]]
        per_variant = {v: share(number_matches(r["gold"][key][0], r["predicted"].get(key))[v] for r in scored)
                       for v in NUMBER_VARIANTS}
        metrics[key] = {**per_variant,
                        "exact_any": share(r["predicted"].get(key) in r["gold"][key] for r in scored),
                        "scored": len(scored)}
    return {"task": "participants", "dataset": folder.name, "engine": engine,
            "mode": "task contract (no training)", "n": len(rows), "failures": failures,
            "metrics": metrics, "items": rows, "wall_s": round(time.perf_counter() - started, 1)}


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
    result: dict[str, Any] = {"data": folder.name, "task": "participants", "dataset": folder.name,
                              "engine": "classic", "n": len(docs), "abstracts": len(docs), "folds": folds}
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
    result["metrics"] = {key: {"exact_first": result[key]["exact_first"], "exact_any": result[key]["exact_any"]}
                         for key in ("total", "intervention", "control")}
    result["metrics"]["both_arms"] = result["both_arms"]["exact"]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _emit(result: dict[str, Any], as_json: bool, markdown_file: Path | None, lines: list[str]) -> None:
    from leads.eval.common import emit

    emit(result, as_json=as_json, markdown_file=markdown_file, text="\n".join(lines))


_ENGINE_HELP = ("Engine that runs the task (classic, llamacpp, openai, ...); any engine but classic, or "
                "--folds 0, evaluates the task contract instead of cross-validating the classic model.")


@click.command("pico")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="EBM-NLP CoNLL file (default: pico/ebmnlp_dev.txt of the shared data).")
@click.option("--shared", type=click.Path(file_okay=False), default=None,
              help="the shared data folder (default: ../shared/data next to the repository, or $LEADS_SHARED_DATA)")
@click.option("--engine", default="classic", show_default=True, help=_ENGINE_HELP)
@click.option("--folds", type=int, default=5, show_default=True,
              help="cross-validation folds (0: evaluate the shipped model through the task contract)")
@click.option("--jobs", type=int, default=1, show_default=True, help="parallel processes (folds)")
@click.option("--limit", type=int, default=0, help="use only the first N abstracts (a quick check)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the table to this file instead of printing it")
def eval_pico_command(data: Path | None, shared: str | None, engine: str, folds: int, jobs: int, limit: int,
                      as_json: bool, markdown_file: Path | None) -> None:
    """PICO span tagging: token-level F1 on EBM-NLP dev by cross-validation (or any engine)."""
    try:
        if engine != "classic" or folds == 0:
            from leads.extract.train_pico import EBMNLP_FILE

            result = evaluate_pico_engine(data or _shared(shared) / EBMNLP_FILE, engine=engine, limit=limit)
            title = f"{result['dataset']}, {result['abstracts']} abstracts, {result['tokens']} tokens, " \
                    f"engine {engine} (task contract, no training)"
        else:
            result = evaluate_pico(_shared(shared), folds=folds, jobs=jobs, limit=limit, path=data)
            title = f"EBM-NLP dev, {result['abstracts']} abstracts, {result['tokens']} tokens, {folds}-fold CV"
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    lines = [title, "", "| class | precision | recall | F1 |", "|---|---|---|---|"]
    for label, sc in result["per_class"].items():
        lines.append(f"| {label} | {sc['precision']:.3f} | {sc['recall']:.3f} | {sc['f1']:.3f} |")
    lines.append(f"| **macro** | | | {result['macro_f1']:.3f} |")
    lines.append(f"\nmicro-F1 {result['micro_f1']:.3f} ({result['wall_s']} s)")
    _emit(result, as_json, markdown_file, lines)


@click.command("participants")
@click.option("--data", "data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="folder of PICO-Corpus brat files (default: pico/pico_corpus_dev of the shared data)")
@click.option("--shared", type=click.Path(file_okay=False), default=None,
              help="the shared data folder (default: ../shared/data next to the repository, or $LEADS_SHARED_DATA)")
@click.option("--engine", default="classic", show_default=True, help=_ENGINE_HELP)
@click.option("--folds", type=int, default=5, show_default=True,
              help="cross-validation folds (0: evaluate the shipped model through the task contract)")
@click.option("--limit", type=int, default=0, help="use only the first N abstracts (a quick check)")
@click.option("--details", type=click.Path(dir_okay=False), default=None,
              help="write each abstract's gold and predicted numbers to this JSON Lines file")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the table to this file instead of printing it")
def eval_participants_command(data: Path | None, shared: str | None, engine: str, folds: int, limit: int,
                              details: str | None, as_json: bool, markdown_file: Path | None) -> None:
    """Participant counts: exact match of total and per-arm N on the PICO-Corpus dev slice."""
    rows: list[dict[str, Any]] | None = [] if details else None
    try:
        from leads.extract.train_pico import PICO_CORPUS_DIR

        folder = data or _shared(shared) / PICO_CORPUS_DIR
        if engine != "classic" or folds == 0:
            result = evaluate_participants_engine(folder, engine=engine, limit=limit)
            if rows is not None:
                rows.extend(result["items"])
        else:
            result = evaluate_participants(folder, folds=folds, limit=limit, details=rows)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    if details and rows is not None:
        with open(details, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    if result.get("mode"):
        lines = [f"{result['dataset']}, {result['n']} abstracts, engine {engine} (task contract, no training)", "",
                 "| group | scored | exact | within 1 % | within 5 % | exact (any annotated) |", "|---|---|---|---|---|---|"]
        for key in ("total", "intervention", "control"):
            m = result["metrics"][key]
            lines.append(f"| {key} | {m['scored']} | " + " | ".join(
                "–" if m[v] is None else f"{m[v]:.3f}" for v in ("exact", "within_1pct", "within_5pct", "exact_any"))
                + " |")
    else:
        lines = [f"PICO-Corpus dev, {result['abstracts']} abstracts, {folds}-fold CV (exact match)"]
        for key in ("total", "intervention", "control"):
            r = result[key]
            lines.append(f"  {key:<13} first {r['exact_first']}  any {r['exact_any']}  "
                         f"(gold in {r['abstracts_with_gold']}, predicted in {r['predicted']})")
        lines.append(f"  both arms     {result['both_arms']['exact']} (gold in {result['both_arms']['abstracts_with_gold']})")
    _emit(result, as_json, markdown_file, lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(eval_pico_command())
