"""Study-design classifier: what kind of study a title and abstract report, and whether its
subjects are humans.

Two multinomial logistic regressions over TF-IDF word unigrams and bigrams of the title and
abstract (section labels such as ``METHODS:`` removed). The shipped model
(``models/design.npz``) holds only numbers and words: the vocabulary, the IDF weights and the
coefficients, loaded with ``numpy.load(allow_pickle=False)``, so loading runs no pickled code
and needs neither scikit-learn nor the training data.

Classes (:data:`DESIGNS`): ``rct``, ``nonrandomised_trial`` (controlled or single-arm trials
without random allocation), ``observational`` (cohort, case-control, cross-sectional),
``systematic_review`` (with or without meta-analysis), ``review`` (narrative review, editorial,
letter, comment), ``case_report`` (case report or series) and ``animal`` (animal or in-vitro
study). A second model tells ``human`` from ``nonhuman``.

Training data (real annotations, nothing generated; :func:`build_dataset` says where each
label comes from):

- MEDLINE indexers' MeSH headings of the Cohen 2006 records (``search/haystack_dev``): the
  study-method headings (*Double-Blind Method*, *Random Allocation*, *Cohort Studies*,
  *Case-Control Studies*, ...) and the *Humans* / *Animals* check tags. The data carry no
  publication types, and topic headings (*Randomized Controlled Trials as Topic*) are not used
  as labels: in these records they also mark drug reviews.
- Corpora of randomised trials: evidence-inference (PMC RCT articles), EBM-NLP and PICO-Corpus
  (PubMed RCT abstracts).
- Bannach-Brown 2019: the records that reviewers included as primary animal studies.
- Authors' own declarations in titles and abstracts ("a case report", "a meta-analysis",
  "this review..."), for the classes that MeSH headings cannot give (publication types are
  missing). The declaring words are removed from the training text, so the model learns the
  rest of the abstract and not the phrase it was labelled by.

Train (about a minute on 2 cores) and print held-out metrics::

    python -m leads.screen.design train --out src/leads/screen/models/design.npz
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DESIGNS",
    "DESIGN_LABELS",
    "DesignModel",
    "DesignPrediction",
    "build_dataset",
    "declared_design",
    "features",
]

DESIGNS = (
    "rct",
    "nonrandomised_trial",
    "observational",
    "systematic_review",
    "review",
    "case_report",
    "animal",
)
DESIGN_LABELS = {
    "rct": "randomised controlled trial",
    "nonrandomised_trial": "non-randomised trial",
    "observational": "observational study",
    "systematic_review": "systematic review / meta-analysis",
    "review": "review, editorial or letter",
    "case_report": "case report / series",
    "animal": "animal or in-vitro study",
}
SUBJECTS = ("human", "nonhuman")
MODEL_FILE = "design.npz"
FORMAT_VERSION = 1

# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------

_SECTION_RE = re.compile(r"(?:(?<=^)|(?<=[\s.]))[A-Z][A-Z /&,-]{2,40}:\s")
_WORD_RE = re.compile(r"[a-z][a-z0-9]*(?:[-'][a-z0-9]+)*|\d+(?:[.,]\d+)?")


def _words(text: str) -> list[str]:
    text = _SECTION_RE.sub(" ", text).lower()
    return ["#" if w[0].isdigit() else w for w in _WORD_RE.findall(text)]


def features(text: str) -> list[str]:
    """The terms the model counts: words (numbers as ``#``) and adjacent word pairs."""
    words = _words(text)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


# --------------------------------------------------------------------------------------------
# Self-declared designs (a cue in the title or abstract)
# --------------------------------------------------------------------------------------------

_R = re.I
# (design, where, pattern): "title" patterns only count in the title, where a phrase such as
# "case report" or "meta-analysis" names the paper itself; in an abstract the same words often
# name other work ("case reports of angioedema", "Collins' meta-analyses"), so "abstract"
# patterns require the authors to speak of their own paper.
_DECLARED: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("systematic_review", "title", re.compile(
        r"\bsystematic (?:literature )?review\b|\bmeta-?analy[sz](?:is|es)\b|\bmeta-?analytic\b"
        r"|\bpooled analysis\b|\boverview of (?:the )?(?:randomi[sz]ed )?(?:controlled )?trials\b", _R)),
    ("systematic_review", "abstract", re.compile(
        r"\b(?:we|authors) (?:conducted|performed|undertook|carried out|present|report) an? "
        r"(?:\w+ ){0,2}(?:systematic (?:literature )?review|meta-?analysis)\b"
        r"|\b(?:this|the present|our) (?:systematic review|meta-?analysis)\b", _R)),
    ("case_report", "title", re.compile(
        r"\bcase reports?\b|\bcase series\b|\breport of (?:a|an|one|two|three|four|five|\d+) "
        r"(?:new |unusual |rare )?(?:cases?|patients?)\b|^an? (?:unusual |rare )?case of\b"
        r"|\bin an? \d+-year-old\b", _R)),
    ("case_report", "abstract", re.compile(
        r"\b(?:we|the authors) (?:report|describe|present)(?:ed)? (?:here )?(?:a|an|the|two|three|"
        r"four|five|\d+) (?:\w+ ){0,3}(?:case|cases|patient|patients|man|woman|boy|girl|child|"
        r"infant)\b|\b(?:in )?this case report\b|^an? \d+[- ](?:year|month)[- ]old\b", _R)),
    ("review", "title", re.compile(
        r"(?:^|[.:?] )an? (?:\w+ ){0,2}review\b|\breview of (?:its|the|their|current|recent)\b"
        r"|\boverview\b|\bupdate\b|\bcurrent concepts\b|\beditorial\b|\bcommentary\b"
        r"|^comments? on\b|\bletter\b", _R)),
    ("review", "abstract", re.compile(
        r"\b(?:this|the present|our) (?:article|paper|review|chapter|editorial) (?:reviews|"
        r"summari[sz]es|discusses|provides an overview)\b|\bwe (?:briefly )?review\b"
        r"|^(?:this|the present) (?:review|editorial)\b", _R)),
)


@dataclass(frozen=True)
class Cue:
    """A phrase that declares a design (``text[start:end]`` of the text it was found in)."""

    design: str
    start: int
    end: int
    text: str


def declared_design(title: str | None, abstract: str | None = None) -> Cue | None:
    """The design a record declares in so many words (strongest class first): a title
    ``"...: a meta-analysis"`` -> systematic_review, ``"We report a case of ..."`` ->
    case_report. Offsets are into ``title + "\\n\\n" + abstract`` (or the one given)."""
    offset = len(title) + 2 if title and abstract else 0
    for design, where, pattern in _DECLARED:
        part, shift = (title, 0) if where == "title" else (abstract, offset)
        m = pattern.search(part) if part else None
        if m:
            return Cue(design, m.start() + shift, m.end() + shift, m.group(0))
    return None


def _mask_declarations(title: str, abstract: str) -> str:
    for _, where, pattern in _DECLARED:
        if where == "title":
            title = pattern.sub(" ", title)
        else:
            abstract = pattern.sub(" ", abstract)
    return f"{title}\n\n{abstract}"


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass
class DesignPrediction:
    """``design`` is the most probable class; ``probabilities`` covers every class in
    :data:`DESIGNS`; ``human`` is P(human subjects); ``cue`` a self-declaration if any."""

    design: str
    probability: float
    probabilities: dict[str, float]
    human: float
    cue: Cue | None = None

    @property
    def label(self) -> str:
        return DESIGN_LABELS[self.design]


@dataclass
class _Linear:
    classes: tuple[str, ...]
    coef: np.ndarray  # (classes, features), or (1, features) for a binary model
    intercept: np.ndarray

    def proba(self, x_index: np.ndarray, x_value: np.ndarray) -> np.ndarray:
        z = self.coef[:, x_index] @ x_value + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            p = 1.0 / (1.0 + math.exp(-float(z[0])))
            return np.array([1.0 - p, p])
        z = z - z.max()
        e = np.exp(z)
        return e / e.sum()


@dataclass
class DesignModel:
    vocabulary: dict[str, int]
    idf: np.ndarray
    design: _Linear
    subject: _Linear
    meta: dict[str, Any] = field(default_factory=dict)

    _cache: Any = None
    _lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None) -> DesignModel:
        """The shipped model (cached), or the one saved at ``path``."""
        if path is None:
            with cls._lock:
                if cls._cache is None:
                    ref = resources.files("leads.screen").joinpath("models", MODEL_FILE)
                    with resources.as_file(ref) as p:
                        cls._cache = cls._read(p)
                return cls._cache
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> DesignModel:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: design model format {meta.get('format')}, "
                                 f"expected {FORMAT_VERSION}")
            terms = bytes(z["vocabulary"]).decode("utf-8").split("\n")
            return cls(
                vocabulary={t: i for i, t in enumerate(terms)},
                idf=z["idf"].astype(np.float64),
                design=_Linear(tuple(meta["designs"]), z["design_coef"].astype(np.float64),
                               z["design_intercept"].astype(np.float64)),
                subject=_Linear(tuple(meta["subjects"]), z["subject_coef"].astype(np.float64),
                                z["subject_intercept"].astype(np.float64)),
                meta=meta,
            )

    def save(self, path: str | Path) -> None:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        meta = dict(self.meta, format=FORMAT_VERSION, designs=list(self.design.classes),
                    subjects=list(self.subject.classes))
        np.savez_compressed(
            path,
            meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8),
            vocabulary=np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
            idf=self.idf.astype(np.float32),
            design_coef=self.design.coef.astype(np.float32),
            design_intercept=self.design.intercept.astype(np.float32),
            subject_coef=self.subject.coef.astype(np.float32),
            subject_intercept=self.subject.intercept.astype(np.float32),
        )

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(t for t in features(text) if t in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        index = np.fromiter((self.vocabulary[t] for t in counts), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        value = tf * self.idf[index]
        return index, value / np.linalg.norm(value)

    def predict(self, title: str | None, abstract: str | None = None) -> DesignPrediction:
        text = "\n\n".join(t for t in (title, abstract) if t)
        index, value = self._vector(text)
        p = self.design.proba(index, value)
        ps = self.subject.proba(index, value)
        probabilities = {c: float(v) for c, v in zip(self.design.classes, p, strict=True)}
        best = max(probabilities, key=probabilities.__getitem__)
        return DesignPrediction(design=best, probability=probabilities[best],
                                probabilities=probabilities,
                                human=float(ps[self.subject.classes.index("human")]),
                                cue=declared_design(title, abstract))


# --------------------------------------------------------------------------------------------
# Training data
# --------------------------------------------------------------------------------------------

_TRIAL_METHOD = {"Double-Blind Method", "Single-Blind Method", "Random Allocation",
                 "Cross-Over Studies"}
_OBSERVATIONAL = {"Cohort Studies", "Case-Control Studies", "Cross-Sectional Studies",
                  "Retrospective Studies", "Longitudinal Studies"}
_TRIAL_TOPIC = {"Clinical Trials as Topic", "Controlled Clinical Trials as Topic",
                "Non-Randomized Controlled Trials as Topic", "Clinical Trials, Phase I as Topic",
                "Clinical Trials, Phase II as Topic", "Clinical Trials, Phase III as Topic",
                "Clinical Trials, Phase IV as Topic", "Randomized Controlled Trials as Topic"}
_RANDOM_RE = re.compile(r"\brandom", re.I)


@dataclass
class Example:
    text: str  # title + abstract, declaring phrases masked when the label came from them
    design: str | None
    subject: str | None
    source: str


def _read_jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def _declared_example(title: str, abstract: str, source: str,
                      subject: str | None) -> Example | None:
    cue = declared_design(title, abstract)
    if cue is None:
        return None
    return Example(_mask_declarations(title, abstract), cue.design, subject, source)


def _ebmnlp(path: Path) -> Iterator[tuple[str, str]]:
    pmid, sentences, words = "", list[str](), list[str]()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            if sentences or words:
                yield pmid, " ".join([*sentences, " ".join(words)])
            pmid, sentences, words = line.split("(")[-1].rstrip(")"), [], []
        elif not line.strip():
            if words:
                sentences.append(" ".join(words))
                words = []
        else:
            words.append(line.split(" ")[0])
    if sentences or words:
        yield pmid, " ".join([*sentences, " ".join(words)])


def build_dataset(shared: Path) -> list[Example]:
    """Labelled examples from ``shared`` (the project's ``shared/data``).

    Per record, the first rule that applies: a self-declared systematic review, case report or
    review (declaring words masked); MeSH *Animals* without *Humans* -> animal; MeSH trial
    method headings -> rct; observational method headings without any trial heading ->
    observational; a trial topic heading (or *Pilot Projects* / *Drug Evaluation*) without
    trial method headings and without "random" in the abstract -> nonrandomised_trial. RCT
    corpora -> rct, Bannach-Brown includes -> animal. Records none of these fit are left out of
    the design model but still teach *Humans* vs *Animals* to the subject model.
    """
    import pandas as pd

    examples: list[Example] = []
    seen: set[str] = set()

    def key(title: str, abstract: str) -> str:
        return re.sub(r"\W+", "", (abstract or title).lower())[:120]

    def add(ex: Example | None, title: str, abstract: str) -> None:
        k = key(title, abstract)
        if ex is None or not k or k in seen:
            return
        seen.add(k)
        examples.append(ex)

    haystack = shared / "search/haystack_dev"
    sources = dict(line.rstrip("\n").split("\t", 1)
                   for line in (haystack / "haystack_dev_sources.tsv").read_text().splitlines()[1:])
    for d in _read_jsonl_gz(haystack / "haystack_dev.jsonl.gz"):
        title, abstract, mesh = d.get("title") or "", d.get("abstract") or "", set(d.get("mesh") or ())
        if len(abstract) < 200:
            continue
        text = f"{title}\n\n{abstract}"
        origin = sources.get(d["doc_id"], "")
        if "cohen2006" not in origin:  # evidence-inference: PMC articles of randomised trials
            add(Example(text, "rct", "human", "evidence_inference"), title, abstract)
            continue
        if not mesh:  # Cohen records without MeSH (ACE inhibitors): declarations only
            add(_declared_example(title, abstract, "cohen_declared", None), title, abstract)
            continue
        human = "Humans" in mesh
        nonhuman = not human and bool(mesh & {"Animals", "In Vitro Techniques"})
        subject = "human" if human else "nonhuman" if nonhuman else None
        declared = _declared_example(title, abstract, "cohen_declared", subject)
        if declared is not None:
            add(declared, title, abstract)
            continue
        design: str | None = None
        if nonhuman:
            design = "animal"
        elif not human:
            design = None
        elif mesh & _TRIAL_METHOD:
            design = "rct"
        elif mesh & _OBSERVATIONAL and not mesh & _TRIAL_TOPIC:
            design = "observational"
        elif (mesh & _TRIAL_TOPIC or mesh & {"Pilot Projects", "Drug Evaluation"}) and not (
                _RANDOM_RE.search(abstract) or mesh & _OBSERVATIONAL):
            design = "nonrandomised_trial"
        add(Example(text, design, subject, "cohen_mesh"), title, abstract)

    for pmid, text in _ebmnlp(shared / "pico/ebmnlp_dev.txt"):
        add(Example(text, "rct", "human", "ebmnlp"), pmid, text)
    for path in sorted((shared / "pico/pico_corpus_dev").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        add(Example(text, "rct", "human", "pico_corpus"), "", text)

    bb = pd.read_csv(shared / "screening/other/Bannach-Brown_2019.csv.gz")
    for row in bb.itertuples():
        title, abstract = str(row.title or ""), str(row.abstract if isinstance(row.abstract, str) else "")
        if len(abstract) < 200:
            continue
        if row.label_included == 1:
            add(Example(f"{title}\n\n{abstract}", "animal", "nonhuman", "bannach_brown"), title,
                abstract)
        else:
            add(_declared_example(title, abstract, "bannach_brown_declared", None), title, abstract)

    others = [
        ("cdss_ro", pd.read_csv(shared / "screening/other/CDSS_RO.csv", sep=";"), "Title", "Abstract"),
        ("nagtegaal", pd.read_csv(shared / "screening/other/Nagtegaal_2019.csv.gz"), "title", "abstract"),
    ]
    for name, frame, tcol, acol in others:
        for title, abstract in zip(frame[tcol].fillna(""), frame[acol].fillna(""), strict=True):
            if len(str(abstract)) >= 200:
                add(_declared_example(str(title), str(abstract), f"{name}_declared", "human"),
                    str(title), str(abstract))
    return examples


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _fit(examples: list[Example], *, seed: int, max_per_source_class: int,
         test_size: float) -> tuple[DesignModel, dict[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import classification_report, roc_auc_score
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    # Cap each (source, class) group so that the 4,000 evidence-inference RCTs do not swamp
    # the rest (and the model does not learn one corpus's house style as "rct").
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault((ex.source, ex.design), []).append(i)
    keep: list[int] = []
    for _, idx in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if len(idx) > max_per_source_class:
            idx = sorted(rng.choice(idx, size=max_per_source_class, replace=False).tolist())
        keep.extend(idx)
    pool = [examples[i] for i in sorted(keep)]

    labelled = [ex for ex in pool if ex.design is not None]
    strata = [ex.design for ex in labelled]
    train, test = train_test_split(labelled, test_size=test_size, random_state=seed, stratify=strata)
    test_keys = {id(ex) for ex in test}
    # The subject model also learns from records without a design label (MeSH check tags only).
    subject_train = [ex for ex in pool if ex.subject is not None and id(ex) not in test_keys]
    subject_test = [ex for ex in test if ex.subject is not None]

    vectorizer = TfidfVectorizer(analyzer=features, min_df=3, max_df=0.5, sublinear_tf=True,
                                 max_features=30000, dtype=np.float64)
    x_train = vectorizer.fit_transform([ex.text for ex in train])
    x_test = vectorizer.transform([ex.text for ex in test])
    y_train = np.array([ex.design for ex in train])
    y_test = np.array([ex.design for ex in test])

    design_lr = LogisticRegression(C=8.0, max_iter=3000, class_weight="balanced")
    design_lr.fit(x_train, y_train)
    p_test = design_lr.predict_proba(x_test)
    pred = design_lr.classes_[p_test.argmax(axis=1)]
    report = classification_report(y_test, pred, output_dict=True, zero_division=0)
    per_class: dict[str, dict[str, float | None]] = {}
    for k, c in enumerate(design_lr.classes_):
        truth = (y_test == c).astype(int)
        per_class[str(c)] = {
            "precision": round(report[c]["precision"], 3), "recall": round(report[c]["recall"], 3),
            "f1": round(report[c]["f1-score"], 3), "support": int(report[c]["support"]),
            "auc": round(float(roc_auc_score(truth, p_test[:, k])), 3) if 0 < truth.sum() < len(truth) else None,
            "train": int((y_train == c).sum()),
        }

    xs_train = vectorizer.transform([ex.text for ex in subject_train])
    ys_train = np.array([ex.subject for ex in subject_train])
    subject_lr = LogisticRegression(C=8.0, max_iter=3000, class_weight="balanced")
    subject_lr.fit(xs_train, ys_train)
    xs_test = vectorizer.transform([ex.text for ex in subject_test])
    ys_test = np.array([ex.subject for ex in subject_test])
    ps = subject_lr.predict_proba(xs_test)
    k_non = list(subject_lr.classes_).index("nonhuman")
    subject_report = classification_report(ys_test, subject_lr.classes_[ps.argmax(axis=1)],
                                           output_dict=True, zero_division=0)

    metrics = {
        "seed": seed, "test_size": test_size, "max_per_source_class": max_per_source_class,
        "examples": len(examples), "pool": len(pool), "train": len(train), "test": len(test),
        "accuracy": round(float((pred == y_test).mean()), 3),
        "macro_f1": round(report["macro avg"]["f1-score"], 3),
        "per_class": per_class,
        "sources": dict(Counter(f"{ex.source}:{ex.design}" for ex in pool)),
        "test_accuracy_by_source": {
            src: round(float(np.mean([pred[i] == y_test[i] for i, ex in enumerate(test)
                                      if ex.source == src])), 3)
            for src in sorted({ex.source for ex in test})
        },
        "subject": {
            "train": len(subject_train), "test": len(subject_test),
            "accuracy": round(float((subject_lr.classes_[ps.argmax(axis=1)] == ys_test).mean()), 3),
            "nonhuman_f1": round(subject_report["nonhuman"]["f1-score"], 3),
            "nonhuman_support": int(subject_report["nonhuman"]["support"]),
            "auc": round(float(roc_auc_score((ys_test == "nonhuman").astype(int), ps[:, k_non])), 3),
        },
    }
    vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
    # Reorder the design classes to DESIGNS; the binary subject model keeps sklearn's one row
    # (the log-odds of classes_[1]).
    order = [list(design_lr.classes_).index(c) for c in DESIGNS]
    model = DesignModel(
        vocabulary=vocabulary,
        idf=vectorizer.idf_,
        design=_Linear(DESIGNS, design_lr.coef_[order], design_lr.intercept_[order]),
        subject=_Linear(tuple(str(c) for c in subject_lr.classes_), subject_lr.coef_,
                        subject_lr.intercept_),
        meta={"metrics": metrics},
    )
    # The numpy model must reproduce sklearn's probabilities.
    for ex, expected in zip(test[:50], p_test[:50], strict=False):
        index, value = model._vector(ex.text)
        got = model.design.proba(index, value)
        if not np.allclose(got, expected[order], atol=1e-4):
            raise AssertionError("numpy inference disagrees with scikit-learn")
    return model, metrics


def _print_metrics(metrics: dict[str, Any]) -> None:
    print(f"train {metrics['train']}  held-out {metrics['test']}  accuracy {metrics['accuracy']}"
          f"  macro-F1 {metrics['macro_f1']}")
    print(f"{'class':22s} {'train':>6s} {'test':>5s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'AUC':>6s}")
    for c in DESIGNS:
        m = metrics["per_class"][c]
        print(f"{c:22s} {m['train']:6d} {m['support']:5d} {m['precision']:6.3f} {m['recall']:6.3f} "
              f"{m['f1']:6.3f} {m['auc'] if m['auc'] is not None else float('nan'):6.3f}")
    print("held-out accuracy by source:", metrics["test_accuracy_by_source"])
    s = metrics["subject"]
    print(f"human vs nonhuman: train {s['train']} test {s['test']} accuracy {s['accuracy']} "
          f"nonhuman F1 {s['nonhuman_f1']} (n={s['nonhuman_support']}) AUC {s['auc']}")


def _main(argv: Iterable[str] | None = None) -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m leads.screen.design")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="build the data set, train, report held-out metrics, save")
    train.add_argument("--shared", default=os.environ.get("LEADS_SHARED_DATA", "../shared/data"))
    train.add_argument("--out", default="src/leads/screen/models/design.npz")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--test-size", type=float, default=0.2)
    train.add_argument("--max-per-source-class", type=int, default=1500)
    train.add_argument("--metrics", help="also write the metrics as JSON here")
    predict = sub.add_parser("predict", help="classify a title/abstract")
    predict.add_argument("text")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "predict":
        p = DesignModel.load().predict(args.text)
        print(json.dumps({"design": p.design, "probabilities": p.probabilities, "human": p.human,
                          "cue": p.cue.text if p.cue else None}, indent=2))
        return
    examples = build_dataset(Path(args.shared))
    model, metrics = _fit(examples, seed=args.seed, max_per_source_class=args.max_per_source_class,
                          test_size=args.test_size)
    model.save(args.out)
    _print_metrics(metrics)
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"saved {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    _main()
