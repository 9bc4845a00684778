"""Build the result-sentence model from RCT-ART (reproducible; no network).

    python -m leads.extract.train_results --shared ../shared/data --out src/leads/extract/models

Reads ``results/rct_art/gold_corpus/*.jsonl.gz`` (Whitton & Hunter 2023, Apache-2.0), trains the
CRF tagger (INTV / OC / MEAS spans) and the arm→value link model described in
:mod:`leads.extract.results_model`, and writes ``results_ner.crfsuite``, ``results_relation.json``
and ``results_model_report.json`` (cross-validated scores, data, settings). With ``--folds K``
(default 5) it first cross-validates by abstract (sentences of one PMID stay in one fold):

- span-level precision/recall/F1 of the tagger (exact span match) per label;
- link accuracy: for each gold value with a gold arm, whether the model's most probable arm span
  (given the gold spans) is the right one, against the extractor's position rules
  (:func:`leads.extract.results_evidence.assign_stats`: "respectively" lists, else the nearest
  arm before the value in its clause, else the nearest after).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leads.errors import SourceError
from leads.extract.results_evidence import MODEL_CONFIDENCE, RULE_CONFIDENT
from leads.extract.results_model import (
    NER_FILE,
    RELATION_FILE,
    Span,
    bio_to_spans,
    pair_features,
    token_features,
    tokenize,
)

__all__ = ["Example", "cross_validate", "load_examples", "main", "train"]

LABELS = ("INTV", "OC", "MEAS")
CRF_PARAMS = {"c1": 0.1, "c2": 0.01, "max_iterations": 150, "feature.possible_transitions": True}


@dataclass
class Example:
    text: str
    group: str  # PMID (or the text's hash): folds never split an abstract
    tokens: list[tuple[str, int, int]]
    tags: list[str]
    spans: list[Span]
    links: set[tuple[int, int]]  # (arm span index, value span index) pairs in ``spans``


def _align(tokens: Sequence[tuple[str, int, int]], label: str, start: int, end: int) -> tuple[int, int] | None:
    inside = [i for i, t in enumerate(tokens) if t[1] >= start and t[2] <= end]
    if not inside:
        inside = [i for i, t in enumerate(tokens) if t[1] < end and t[2] > start]
    if not inside:
        return None
    return inside[0], inside[-1] + 1


def load_examples(shared: Path) -> list[Example]:
    """RCT-ART gold sentences as tokens, BIO tags, spans and arm→value links."""
    folder = shared / "results" / "rct_art" / "gold_corpus"
    files = sorted(folder.glob("*.jsonl.gz"))
    if not files:
        raise SourceError("no RCT-ART gold files (results/rct_art/gold_corpus/*.jsonl.gz)", source=str(folder))
    examples: list[Example] = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("answer", "accept") != "accept":
                    continue
                text = row["text"]
                tokens = tokenize(text)
                tags = ["O"] * len(tokens)
                spans: list[Span] = []
                index_of: dict[tuple[int, int], int] = {}
                for gold in row.get("spans", []):
                    if gold.get("label") not in LABELS:
                        continue
                    aligned = _align(tokens, gold["label"], gold["start"], gold["end"])
                    if aligned is None:
                        continue
                    first, last = aligned
                    if any(t != "O" for t in tags[first:last]):
                        continue
                    tags[first] = f"B-{gold['label']}"
                    for i in range(first + 1, last):
                        tags[i] = f"I-{gold['label']}"
                    index_of[(gold["start"], gold["end"])] = len(spans)
                    spans.append(Span(gold["label"], tokens[first][1], tokens[last - 1][2], first, last))
                links: set[tuple[int, int]] = set()
                for rel in row.get("relations", []):
                    if rel.get("label") not in ("A1_RES", "A2_RES"):
                        continue
                    head = index_of.get((rel["head_span"]["start"], rel["head_span"]["end"]))
                    child = index_of.get((rel["child_span"]["start"], rel["child_span"]["end"]))
                    if head is not None and child is not None:
                        links.add((head, child))
                user = str(row.get("user_data") or "")
                pmid = re.search(r"(\d{6,9})", user)
                group = pmid.group(1) if pmid else hashlib.sha1(text.encode()).hexdigest()[:12]
                examples.append(Example(text, f"{path.name}:{group}", tokens, tags, spans, links))
    return examples


def _train_crf(examples: Sequence[Example], path: Path) -> None:
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for ex in examples:
        trainer.append(token_features([t[0] for t in ex.tokens]), ex.tags)
    trainer.set_params(CRF_PARAMS)
    trainer.train(str(path))


def _pairs(ex: Example, spans: Sequence[Span]) -> list[tuple[int, int, dict[str, float], int]]:
    out = []
    for i, arm in enumerate(spans):
        if arm.label != "INTV":
            continue
        for j, value in enumerate(spans):
            if value.label != "MEAS":
                continue
            out.append((i, j, pair_features(ex.tokens, spans, arm, value), int((i, j) in ex.links)))
    return out


def _train_links(examples: Sequence[Example]) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    rows = [f for ex in examples for _, _, f, _ in _pairs(ex, ex.spans)]
    labels = [y for ex in examples for _, _, _, y in _pairs(ex, ex.spans)]
    names = sorted({k for f in rows for k in f})
    matrix = [[f.get(k, 0.0) for k in names] for f in rows]
    model = LogisticRegression(C=1.0, max_iter=2000, fit_intercept=False)
    model.fit(matrix, labels)
    return {k: float(w) for k, w in zip(names, model.coef_[0], strict=True)}


def _link_probability(weights: dict[str, float], features: dict[str, float]) -> float:
    import math
    z = sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def _rule_arms(ex: Example, spans: Sequence[Span]) -> dict[int, tuple[int, float]]:
    """The extractor's position rules (:func:`leads.extract.results_evidence.assign_with_confidence`)
    on the gold spans: value span index → (arm span index, rule confidence)."""
    from leads.extract.numbers import Stat
    from leads.extract.results_evidence import _Mention, assign_with_confidence

    mentions = [_Mention(s.start, s.end, str(i), 1.0) for i, s in enumerate(spans) if s.label == "INTV"]
    values = {j: Stat("percent", s.start, s.end, ex.text[s.start:s.end], {"percent": 0.0})
              for j, s in enumerate(spans) if s.label == "MEAS"}
    index_of = {id(stat): j for j, stat in values.items()}
    out: dict[int, tuple[int, float]] = {}
    for stat, arm, _, confidence in assign_with_confidence(ex.text, list(values.values()), mentions):
        if arm.isdigit():  # not a list item that names no gold arm
            out[index_of[id(stat)]] = (int(arm), confidence)
    return out


def _span_scores(gold: Sequence[Example], predicted: Sequence[list[Span]]) -> dict[str, dict[str, float]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    for ex, spans in zip(gold, predicted, strict=True):
        g = {(s.label, s.start, s.end) for s in ex.spans}
        p = {(s.label, s.start, s.end) for s in spans}
        for label in LABELS:
            gl = {x for x in g if x[0] == label}
            pl = {x for x in p if x[0] == label}
            counts[label][0] += len(gl & pl)
            counts[label][1] += len(pl - gl)
            counts[label][2] += len(gl - pl)
    out = {}
    for label in LABELS:
        tp, fp, fn = counts[label]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                      "support": tp + fn}
    return out


def cross_validate(examples: Sequence[Example], folds: int = 5, seed: int = 13,
                   workdir: Path | None = None) -> dict[str, Any]:
    """Span F1 of the tagger and link accuracy (model vs position rule), folds by abstract."""
    import tempfile

    import pycrfsuite

    groups = sorted({ex.group for ex in examples})
    random.Random(seed).shuffle(groups)
    fold_of = {g: i % folds for i, g in enumerate(groups)}
    predicted: list[list[Span]] = [[] for _ in examples]
    link_model = link_rule = link_combined = link_total = 0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for k in range(folds):
            train_set = [ex for ex in examples if fold_of[ex.group] != k]
            test_idx = [i for i, ex in enumerate(examples) if fold_of[ex.group] == k]
            path = Path(tmp) / f"fold{k}.crfsuite"
            _train_crf(train_set, path)
            tagger = pycrfsuite.Tagger()
            tagger.open(str(path))
            weights = _train_links(train_set)
            for i in test_idx:
                ex = examples[i]
                tags = tagger.tag(token_features([t[0] for t in ex.tokens])) if ex.tokens else []
                predicted[i] = bio_to_spans(tags, ex.tokens)
                gold_arm_of = {j: i_arm for i_arm, j in ex.links}
                rule_arm_of = _rule_arms(ex, ex.spans)
                for j, value in enumerate(ex.spans):
                    if value.label != "MEAS" or j not in gold_arm_of:
                        continue
                    link_total += 1
                    scored = [(_link_probability(weights, pair_features(ex.tokens, ex.spans, arm, value)), a)
                              for a, arm in enumerate(ex.spans) if arm.label == "INTV"]
                    best = max(scored) if scored else None
                    if best is not None and best[1] == gold_arm_of[j]:
                        link_model += 1
                    rule = rule_arm_of.get(j)
                    if rule is not None and rule[0] == gold_arm_of[j]:
                        link_rule += 1
                    # What the extractor does: the model, unless the rules read a list, a pair or
                    # an adjacent "arm, value".
                    combined = rule[0] if rule is not None else None
                    if best is not None and best[0] >= MODEL_CONFIDENCE and (rule is None or rule[1] < RULE_CONFIDENT):
                        combined = best[1]
                    if combined == gold_arm_of[j]:
                        link_combined += 1
            tagger.close()
    return {
        "folds": folds,
        "sentences": len(examples),
        "abstracts": len(groups),
        "spans": _span_scores(examples, predicted),
        "link_accuracy": {"model": round(link_model / link_total, 4) if link_total else None,
                          "position_rule": round(link_rule / link_total, 4) if link_total else None,
                          "rule_then_model": round(link_combined / link_total, 4) if link_total else None,
                          "values": link_total},
    }


def train(examples: Sequence[Example], out: Path) -> dict[str, float]:
    """Train both models on all examples and write them to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _train_crf(examples, out / NER_FILE)
    weights = _train_links(examples)
    (out / RELATION_FILE).write_text(json.dumps(
        {"weights": weights, "meta": {"trained_on": "RCT-ART gold_corpus", "sentences": len(examples),
                                      "features": sorted(weights)}}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8")
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models", help="output folder")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: skip)")
    args = parser.parse_args(argv)
    examples = load_examples(args.shared)
    report: dict[str, Any] = {"data": "results/rct_art/gold_corpus (RCT-ART, Whitton & Hunter 2023)",
                              "sentences": len(examples), "crf": CRF_PARAMS}
    if args.folds > 1:
        report["cross_validation"] = cross_validate(examples, args.folds)
        print(json.dumps(report["cross_validation"], indent=1), file=sys.stderr)
    train(examples, args.out)
    (args.out / "results_model_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out / NER_FILE}, {args.out / RELATION_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
