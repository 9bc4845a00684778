"""Train (and cross-validate) the PICO span CRF of :mod:`leads.extract.pico` on EBM-NLP.

Reproducible build of the shipped model::

    python -m leads.extract.train_pico --shared ../shared/data --out src/leads/extract/models [--cv 5]

It writes two models into the ``--out`` folder: the PICO span CRF (``pico_crf.crfsuite`` with
its metadata ``pico_crf.json``) and the participant-count classifier of
:mod:`leads.extract.participants` (``participants_counts.json``), which uses the CRF's labels
as features and is trained on the PICO-Corpus dev slice (``pico/pico_corpus_dev``).

The CRF's training data is ``pico/ebmnlp_dev.txt`` of the shared data (EBM-NLP, crowd-annotated dev
split, CoNLL: one ``token POS chunk tag`` line per token, tags ``O``/``I-PAR``/``I-INT``/``I-OUT``).
Training is deterministic (L-BFGS on the whole file, sentences in file order); ``--cv K`` first
runs K-fold cross-validation by abstract (folds by position in PMID order, ``i % K``) and stores
the token-level scores in the model's metadata (``pico_crf.json`` beside it).

Scores are token-level precision/recall/F1 per class (participants, interventions, outcomes)
and their unweighted mean (macro-F1), the measure BLURB reports for EBM-NLP.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leads.errors import FormatError, SourceError
from leads.extract.participants import COUNT_MODEL_FILE
from leads.extract.pico import (
    FEATURE_VERSION,
    LABELS,
    MODEL_FILE,
    PROBE_FILE,
    Probe,
    Token,
    TokenEmbedder,
    document_features,
    meta_path,
)

__all__ = [
    "DEFAULT_PARAMS",
    "Abstract",
    "cross_validate",
    "featurize",
    "read_ebmnlp",
    "score_tokens",
    "train_model",
]

EBMNLP_FILE = "pico/ebmnlp_dev.txt"
_TAGS = {"O": "O", "I-PAR": "PAR", "I-INT": "INT", "I-OUT": "OUT"}
DEFAULT_PARAMS: dict[str, Any] = {
    "c1": 0.2,  # L1: keeps the model small (and scored best of 0.02-0.2 on fold 0)
    "c2": 0.05,
    "max_iterations": 200,
    "feature.possible_transitions": True,
    "feature.minfreq": 2,
}


@dataclass
class Abstract:
    """One EBM-NLP abstract: sentences of (tokens, labels); labels are ``PAR/INT/OUT/O``."""

    pmid: str
    sentences: list[tuple[list[str], list[str]]]


def read_ebmnlp(path: str | Path) -> list[Abstract]:
    """Read EBM-NLP in CoNLL form (``-DOCSTART- (<PMID>)`` then one token per line)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(str(exc), source=str(path)) from exc
    docs: list[Abstract] = []
    tokens: list[str] = []
    labels: list[str] = []

    def flush() -> None:
        if tokens:
            if not docs:
                raise FormatError("tokens before the first -DOCSTART- line", source=str(path))
            docs[-1].sentences.append((tokens.copy(), labels.copy()))
            tokens.clear()
            labels.clear()

    for number, line in enumerate(lines, 1):
        if line.startswith("-DOCSTART-"):
            flush()
            pmid = line.split("(", 1)[-1].rstrip(")").strip() if "(" in line else str(len(docs))
            docs.append(Abstract(pmid, []))
            continue
        if not line.strip():
            flush()
            continue
        parts = line.split()
        if len(parts) != 4 or parts[3] not in _TAGS:
            raise FormatError(f"expected 'token POS chunk tag' with tag in {sorted(_TAGS)}, got {line!r}",
                              source=str(path), line=number)
        tokens.append(parts[0])
        labels.append(_TAGS[parts[3]])
    flush()
    return [d for d in docs if d.sentences]


def featurize(doc: Abstract) -> list[list[list[str]]]:
    """CRF features of an EBM-NLP abstract, computed exactly as at run time: each sentence's
    text is its tokens joined by spaces, with offsets to match."""
    sentences = []
    for words, _labels in doc.sentences:
        toks: list[Token] = []
        position = 0
        for w in words:
            toks.append(Token(w, position, position + len(w)))
            position += len(w) + 1
        sentences.append((" ".join(words), toks))
    return document_features(sentences)


# Features of every abstract, and the MiniLM vectors of its words, set before forking fold
# workers (shared copy-on-write).
_FEATURES: list[list[list[list[str]]]] = []
_VECTORS: list[list[Any]] | None = None
_DOCS: list[Abstract] = []


def _fit_probe(indices: Sequence[int]) -> Probe | None:
    """The linear probe (word vector -> label) fitted on the abstracts ``indices``."""
    if _VECTORS is None:
        return None
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([v for i in indices for v in _VECTORS[i]])
    y = [lab for i in indices for _w, labels in _DOCS[i].sentences for lab in labels]
    model = LogisticRegression(max_iter=300)
    model.fit(x, y)
    return Probe(list(model.classes_), model.coef_, model.intercept_)


def _doc_features(i: int, probe: Probe | None) -> list[list[list[str]]]:
    if probe is None or _VECTORS is None:
        return _FEATURES[i]
    return [[f + x for f, x in zip(sentence, probe.features(vectors), strict=True)]
            for sentence, vectors in zip(_FEATURES[i], _VECTORS[i], strict=True)]


def _train(indices: Sequence[int], out: Path, params: dict[str, Any], probe: Probe | None) -> None:
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for i in indices:
        for feats, (_words, labels) in zip(_doc_features(i, probe), _DOCS[i].sentences, strict=True):
            trainer.append(pycrfsuite.ItemSequence(feats), labels)
    trainer.set_params(params)
    trainer.train(str(out))


def _predict(model: Path, indices: Sequence[int], probe: Probe | None) -> list[list[str]]:
    import pycrfsuite

    tagger = pycrfsuite.Tagger()
    tagger.open(str(model))
    out = []
    for i in indices:
        for feats in _doc_features(i, probe):
            out.append(list(tagger.tag(feats)))
    tagger.close()
    return out


def _fold(args: tuple[int, int, dict[str, Any]]) -> tuple[int, list[list[str]], float]:
    fold, k, params = args
    train_idx = [i for i in range(len(_DOCS)) if i % k != fold]
    test_idx = [i for i in range(len(_DOCS)) if i % k == fold]
    started = time.perf_counter()
    probe = _fit_probe(train_idx)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "fold.crfsuite"
        _train(train_idx, model, params, probe)
        predicted = _predict(model, test_idx, probe)
    return fold, predicted, time.perf_counter() - started


def score_tokens(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Token-level precision, recall and F1 per PICO class, their macro mean, and micro scores."""
    counts = {label: [0, 0, 0] for label in LABELS}  # tp, fp, fn
    for g_seq, p_seq in zip(gold, predicted, strict=True):
        for g, p in zip(g_seq, p_seq, strict=True):
            if p == g and g in counts:
                counts[g][0] += 1
            else:
                if p in counts:
                    counts[p][1] += 1
                if g in counts:
                    counts[g][2] += 1
    per_class: dict[str, dict[str, float]] = {}
    for label, (tp, fp, fn) in counts.items():
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[LABELS[label]] = {"precision": round(precision, 4), "recall": round(recall, 4),
                                    "f1": round(f1, 4), "support": tp + fn}
    tp = sum(c[0] for c in counts.values())
    fp = sum(c[1] for c in counts.values())
    fn = sum(c[2] for c in counts.values())
    micro_p = tp / (tp + fp) if tp + fp else 0.0
    micro_r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "per_class": per_class,
        "macro_f1": round(sum(c["f1"] for c in per_class.values()) / len(per_class), 4),
        "micro_f1": round(2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0, 4),
        "tokens": sum(len(s) for s in gold),
    }


def _prepare(docs: list[Abstract], jobs: int, *, embeddings: bool = True) -> None:
    global _FEATURES, _DOCS, _VECTORS
    _DOCS = docs
    if jobs > 1:
        featurize(docs[0])  # load MeSH once, before forking, so workers share it
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            _FEATURES = pool.map(featurize, docs, chunksize=16)
    else:
        _FEATURES = [featurize(d) for d in docs]
    embedder = TokenEmbedder.load() if embeddings else None
    if embedder is None:
        _VECTORS = None
        return
    flat = embedder.embed([words for d in docs for words, _labels in d.sentences])
    _VECTORS = []
    position = 0
    for d in docs:
        _VECTORS.append(flat[position:position + len(d.sentences)])
        position += len(d.sentences)


def cross_validate(docs: list[Abstract], *, folds: int = 5, params: dict[str, Any] | None = None,
                   jobs: int = 1, prepared: bool = False, embeddings: bool = True) -> dict[str, Any]:
    """K-fold cross-validation by abstract (abstract ``i`` is in fold ``i % folds``); each fold's
    embedding probe and CRF are fitted on the other folds only."""
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    params = {**DEFAULT_PARAMS, **(params or {})}
    if not prepared:
        _prepare(docs, jobs, embeddings=embeddings)
    started = time.perf_counter()
    tasks = [(f, folds, params) for f in range(folds)]
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, folds)) as pool:
            results = pool.map(_fold, tasks)
    else:
        results = [_fold(t) for t in tasks]
    gold: list[list[str]] = []
    predicted: list[list[str]] = []
    per_fold = []
    for fold, fold_pred, seconds in sorted(results):
        fold_gold = [labels for i in range(len(docs)) if i % folds == fold
                     for _w, labels in docs[i].sentences]
        gold.extend(fold_gold)
        predicted.extend(fold_pred)
        fold_score = score_tokens(fold_gold, fold_pred)
        per_fold.append({"fold": fold, "macro_f1": fold_score["macro_f1"], "train_s": round(seconds, 1)})
    summary = score_tokens(gold, predicted)
    summary.update({"folds": folds, "per_fold": per_fold, "abstracts": len(docs),
                    "embedding_probe": _VECTORS is not None, "params": params,
                    "wall_s": round(time.perf_counter() - started, 1)})
    return summary


def train_model(docs: list[Abstract], out: Path, *, params: dict[str, Any] | None = None,
                jobs: int = 1, prepared: bool = False, embeddings: bool = True) -> dict[str, Any]:
    """Train on every abstract and write the model to ``out`` (and its embedding probe to
    ``pico_probe.npz`` beside it, when MiniLM is installed); returns training facts."""
    params = {**DEFAULT_PARAMS, **(params or {})}
    if not prepared:
        _prepare(docs, jobs, embeddings=embeddings)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    probe = _fit_probe(range(len(docs)))
    _train(range(len(docs)), out, params, probe)
    facts: dict[str, Any] = {"train_s": round(time.perf_counter() - started, 1), "params": params}
    if probe is not None:
        probe.save(out.with_name(PROBE_FILE))
        facts["probe"] = PROBE_FILE
    return facts


# --------------------------------------------------------------------------------------------
# Participant counts (PICO-Corpus)
# --------------------------------------------------------------------------------------------

PICO_CORPUS_DIR = "pico/pico_corpus_dev"
#: PICO-Corpus annotation type -> count class of :mod:`leads.extract.participants`.
COUNT_LABELS = {"total-participants": "total", "intervention-participants": "intervention",
                "control-participants": "control"}


@dataclass
class AnnotatedAbstract:
    """A PICO-Corpus abstract: its text and brat annotations ``(type, start, end, text)``."""

    pmid: str
    text: str
    annotations: list[tuple[str, int, int, str]]

    def values(self, label: str) -> list[int]:
        """The integer values of one annotation type, in text order (unparsable ones skipped)."""
        from leads.extract.participants import parse_count

        out = []
        for kind, _start, _end, text in sorted(self.annotations, key=lambda a: a[1]):
            if kind == label:
                value = parse_count(text)
                if value is not None:
                    out.append(value)
        return out


def read_pico_corpus(folder: str | Path) -> list[AnnotatedAbstract]:
    """Read PICO-Corpus brat files (``<PMID>.txt`` + ``<PMID>.ann``), sorted by PMID."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError("not a folder of brat files", source=str(folder))
    docs = []
    for txt in sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
        ann = txt.with_suffix(".ann")
        text = txt.read_text(encoding="utf-8")
        annotations = []
        if ann.is_file():
            for number, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
                if not line.startswith("T"):
                    continue
                parts = line.split("\t")
                if len(parts) < 3:
                    raise FormatError("expected 'T<n>\\t<type> <start> <end>\\t<text>'", source=str(ann),
                                      line=number)
                kind, *offsets = parts[1].replace(";", " ").split()
                try:
                    start, end = int(offsets[0]), int(offsets[-1])
                except (IndexError, ValueError) as exc:
                    raise FormatError(f"bad offsets in {parts[1]!r}", source=str(ann), line=number) from exc
                annotations.append((kind, start, end, parts[2]))
        docs.append(AnnotatedAbstract(txt.stem, text, annotations))
    return docs


def count_examples(doc: AnnotatedAbstract, tagger: Any = None) -> tuple[Any, list[Any], list[dict[str, float]], list[str]]:
    """The analysed document, its count candidates, their features and gold classes."""
    from leads.extract import participants as P

    analysed = P.analyse(doc.text, tagger)
    cands = P.count_candidates(analysed)
    feats = P.candidate_features(analysed, cands)
    gold = []
    for c in cands:
        label = "other"
        for kind, start, end, _text in doc.annotations:
            if kind in COUNT_LABELS and start < c.end and c.start < end:
                label = COUNT_LABELS[kind]
                break
        gold.append(label)
    return analysed, cands, feats, gold


def fit_count_model(features: list[dict[str, float]], labels: list[str], *, c: float = 1.0) -> Any:
    """Multinomial logistic regression over sparse features -> :class:`CountModel`."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    from leads.extract.participants import COUNT_CLASSES, CountModel

    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform(features)
    y = [COUNT_CLASSES.index(label) for label in labels]
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    model.fit(x, y)
    classes = [COUNT_CLASSES[k] for k in model.classes_]
    if len(classes) != len(COUNT_CLASSES):
        raise ValueError(f"the training data lacks some count classes (has {classes})")
    coef = model.coef_
    weights = {}
    for j, name in enumerate(vectorizer.get_feature_names_out()):
        column = [float(coef[k, j]) for k in range(len(classes))]
        if any(abs(v) >= 1e-4 for v in column):
            weights[str(name)] = column
    return CountModel(classes, weights, [float(v) for v in model.intercept_])


def _default_shared() -> Path:
    """``$LEADS_SHARED_DATA``, else ``../shared/data`` beside the repository (a source checkout)."""
    import os

    env = os.environ.get("LEADS_SHARED_DATA")
    if env:
        return Path(env)
    beside_repo = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else Path("../shared/data")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gzip_model(plain: Path, out: Path) -> None:
    """Gzip a trained model deterministically (no timestamp) and remove the plain file."""
    import gzip

    out.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=9, mtime=0))
    plain.unlink()


def _build_crf(data: Path, out: Path, args: argparse.Namespace, *, custom: bool) -> None:
    docs = read_ebmnlp(data)
    if args.limit:
        docs = docs[: args.limit]
    params = {**DEFAULT_PARAMS, "c1": args.c1, "c2": args.c2, "max_iterations": args.max_iterations}
    started = time.perf_counter()
    _prepare(docs, args.jobs, embeddings=not args.no_embeddings)
    print(f"features: {len(docs)} abstracts in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    meta: dict[str, Any] = {
        "version": f"crf-ebmnlp-f{FEATURE_VERSION}",
        "feature_version": FEATURE_VERSION,
        "data": {"file": data.name if custom else EBMNLP_FILE, "sha256": _sha256(data),
                 "abstracts": len(docs),
                 "tokens": sum(len(w) for d in docs for w, _ in d.sentences)},
    }
    if args.cv:
        cv = cross_validate(docs, folds=args.cv, params=params, jobs=args.jobs, prepared=True)
        meta["cross_validation"] = cv
        print(json.dumps(cv, indent=1), file=sys.stderr)
    plain = out.with_name(out.name[:-3]) if out.name.endswith(".gz") else out
    meta["training"] = train_model(docs, plain, params=params, jobs=args.jobs, prepared=True)
    if "probe" in meta["training"]:
        meta["probe"] = meta["training"]["probe"]
    meta["model_bytes_uncompressed"] = plain.stat().st_size
    if plain != out:
        gzip_model(plain, out)
    meta["model_bytes"] = out.stat().st_size
    meta_path(out).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"model": str(out), "bytes": meta["model_bytes"],
                      "macro_f1_cv": meta.get("cross_validation", {}).get("macro_f1")}))


def _build_counts(folder: Path, out: Path, crf: Path) -> None:
    from leads.extract.pico import PicoTagger

    tagger = PicoTagger.load(crf)
    docs = read_pico_corpus(folder)
    features: list[dict[str, float]] = []
    labels: list[str] = []
    for doc in docs:
        _analysed, _cands, feats, gold = count_examples(doc, tagger)
        features.extend(feats)
        labels.extend(gold)
    model = fit_count_model(features, labels)
    model.meta = {"data": PICO_CORPUS_DIR, "abstracts": len(docs), "candidates": len(labels),
                  "per_class": {c: labels.count(c) for c in sorted(set(labels))},
                  "pico_model": crf.name}
    out.write_text(json.dumps(model.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps({"model": str(out), "bytes": out.stat().st_size, "features": len(model.weights),
                      "candidates": len(labels)}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leads.extract.train_pico", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared/data", help="the shared data folder")
    parser.add_argument("--data", help="an EBM-NLP CoNLL file (default: SHARED/pico/ebmnlp_dev.txt)")
    parser.add_argument("--out", required=True,
                        help="the models folder (pico_crf.crfsuite + .json, participants_counts.json)")
    parser.add_argument("--only", choices=["pico", "counts"], help="build only one of the two models")
    parser.add_argument("--cv", type=int, default=0, help="run K-fold cross-validation first (0: skip)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes for features and folds")
    parser.add_argument("--c1", type=float, default=DEFAULT_PARAMS["c1"], help="L1 penalty")
    parser.add_argument("--c2", type=float, default=DEFAULT_PARAMS["c2"], help="L2 penalty")
    parser.add_argument("--max-iterations", type=int, default=DEFAULT_PARAMS["max_iterations"],
                        help="L-BFGS iterations")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="leave out the MiniLM embedding-probe features")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N abstracts (testing)")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    if args.only != "counts":
        data = Path(args.data) if args.data else Path(args.shared) / EBMNLP_FILE
        _build_crf(data, folder / MODEL_FILE, args, custom=bool(args.data))
    if args.only != "pico":
        _build_counts(Path(args.shared) / PICO_CORPUS_DIR, folder / COUNT_MODEL_FILE, folder / MODEL_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
