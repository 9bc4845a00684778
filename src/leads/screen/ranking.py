"""Screening prioritisation: a zero-shot score per record, then active learning as decisions come.

**Zero-shot** (:func:`zero_shot_scores`): with no decision at all, records are scored against a
topic text (the review question, the criteria, a PICO): Okapi BM25, TF-IDF cosine and, when
sentence embeddings are available, embedding cosine, each standardised (z-score) and averaged.

**Active learning** (:class:`ActiveLearner`): a linear model over TF-IDF word uni- and bigrams,
plus sentence embeddings and per-criterion verdict scores when available, retrained after every
decision. Three things make it work from the first decision on:

- *Presumed-irrelevant background.* Every round also trains on a random sample of undecided
  records labelled irrelevant (Cormack & Grossman's BMI, "Autonomy and reliability of continuous
  active learning for technology-assisted review", arXiv:1504.06868, 2015): with a prevalence of a
  few percent, almost all of them are, and they teach the model what an ordinary record of the
  search looks like, so one relevant record is enough to rank its like first.
- *The topic text as a relevant pseudo-record*, when there is one, so the zero-shot knowledge
  stays in the model until real relevant records outweigh it.
- *Class weights* (relevant records weigh as much as all the irrelevant ones together), as
  ASReview's balanced sample weights do.

Re-ranking after a decision (fit + score every record) takes tens of milliseconds for 10,000
records: the training set is the decided records plus a bounded background sample, and scoring
is one sparse and one dense matrix-vector product (see ``tests/screen/test_ranking.py``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

__all__ = [
    "ActiveLearner",
    "FeatureSet",
    "LearnerConfig",
    "bm25_scores",
    "build_features",
    "cached_embeddings",
    "record_text",
    "zero_shot_scores",
]


def record_text(record: Any, *, title_repeats: int = 1) -> str:
    """Title and abstract of a :class:`~leads.records.Record` (or a mapping) as one text.

    ``title_repeats=2`` gives the title's words more weight in TF-IDF features (sublinear tf:
    1 + ln 2 instead of 1); tuned on the dev topics (docs/benchmarks.md).
    """
    if isinstance(record, str):
        return record
    if isinstance(record, Mapping):
        title, abstract = record.get("title"), record.get("abstract")
    else:
        title, abstract = getattr(record, "title", None), getattr(record, "abstract", None)
    titles = "\n".join([title or ""] * max(1, title_repeats))
    return f"{titles}\n{abstract or ''}".strip()


# -- features -------------------------------------------------------------------------------------

@dataclass
class FeatureSet:
    """Per-record features. ``tfidf`` rows are L2-normalised; ``dense`` holds embeddings (unit
    length) and/or criterion-verdict scores, already scaled to their weight in the model."""

    texts: list[str]
    tfidf: sp.csr_matrix
    vectorizer: TfidfVectorizer
    dense: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    verdicts: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.tfidf.shape[0]

    def transform_text(self, text: str, embedding: np.ndarray | None = None) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """Features of a text outside the collection (a topic text), in the same spaces."""
        row = self.vectorizer.transform([text]).astype(np.float32)
        dense = None
        if self.dense is not None:
            parts = []
            if self.embeddings is not None:
                emb = embedding if embedding is not None else np.zeros(self.embeddings.shape[1], np.float32)
                parts.append(emb.reshape(1, -1) * self._embedding_scale)
            if self.verdicts is not None:
                # a topic text meets its own criteria
                parts.append(np.ones((1, self.verdicts.shape[1]), np.float32) * self._verdict_scale)
            dense = np.hstack(parts).astype(np.float32)
        return row.tocsr(), dense

    _embedding_scale: float = 1.0
    _verdict_scale: float = 1.0


def build_features(
    texts: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    verdicts: np.ndarray | None = None,
    embedding_weight: float = 0.1,
    verdict_weight: float = 0.3,
    ngram_range: tuple[int, int] = (1, 2),
    min_df: int = 1,
    max_df: float = 0.95,
) -> FeatureSet:
    """TF-IDF (sublinear tf, uni+bigrams, English stop words kept) plus optional dense features.

    ``embeddings`` are sentence embeddings (``n × d``, unit rows); ``verdicts`` are per-criterion
    scores in [-1, 1] (``n × c``, LEADS' YES 1 / PARTIAL 0.5 / UNCERTAIN 0 / NO -1). Their
    weights set their share of the squared norm next to the unit-norm TF-IDF row.
    """
    texts = list(texts)
    vectorizer = TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True, min_df=min_df,
                                 max_df=max_df if len(texts) > 20 else 1.0, dtype=np.float32,
                                 token_pattern=r"(?u)\b\w[\w-]*\w\b|\b\w\b")
    try:
        tfidf = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # every text empty
        vectorizer = TfidfVectorizer(analyzer=lambda _t: ["<empty>"], dtype=np.float32)
        tfidf = vectorizer.fit_transform(texts).tocsr()
    # Sorted once here; otherwise every fit sorts the training rows again (half its time).
    tfidf.sort_indices()
    features = FeatureSet(texts=texts, tfidf=tfidf, vectorizer=vectorizer)
    parts = []
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[0] != len(texts):
            raise ValueError("one embedding per text is needed")
        features.embeddings = embeddings
        features._embedding_scale = math.sqrt(embedding_weight)
        parts.append(embeddings * features._embedding_scale)
    if verdicts is not None:
        verdicts = np.asarray(verdicts, dtype=np.float32)
        if verdicts.ndim == 1:
            verdicts = verdicts.reshape(-1, 1)
        if verdicts.shape[0] != len(texts):
            raise ValueError("one row of verdict scores per text is needed")
        features.verdicts = verdicts
        features._verdict_scale = math.sqrt(verdict_weight / verdicts.shape[1])
        parts.append(verdicts * features._verdict_scale)
    if parts:
        features.dense = np.ascontiguousarray(np.hstack(parts), dtype=np.float32)
    return features


def cached_embeddings(
    texts: Sequence[str],
    embed: Callable[[Sequence[str]], np.ndarray],
    cache_dir: str | Path | None,
    *,
    model_id: str,
) -> np.ndarray:
    """``embed(texts)``, cached on disk under a hash of the model id and the texts."""
    if cache_dir is None:
        return np.asarray(embed(list(texts)), dtype=np.float32)
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    path = Path(cache_dir) / f"{digest.hexdigest()[:32]}.npy"
    if path.exists():
        found = np.load(path)
        if found.shape[0] == len(texts):
            return found
    vectors = np.asarray(embed(list(texts)), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


# -- zero-shot ------------------------------------------------------------------------------------

def bm25_scores(texts: Sequence[str], query: str, *, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of every text for the query (unigrams, English stop words removed)."""
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b\w[\w-]*\w\b|\b\w\b")
    try:
        counts = vectorizer.fit_transform(list(texts)).tocsc().astype(np.float64)
    except ValueError:
        return np.zeros(len(texts))
    vocab = vectorizer.vocabulary_
    terms = [vocab[t] for t in dict.fromkeys(vectorizer.build_analyzer()(query)) if t in vocab]
    n = counts.shape[0]
    scores = np.zeros(n)
    if not terms:
        return scores
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
    df = np.diff(counts.indptr)
    for t in terms:
        start, end = counts.indptr[t], counts.indptr[t + 1]
        rows, tf = counts.indices[start:end], counts.data[start:end]
        idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
        scores[rows] += idf * tf * (k1 + 1) / (tf + norm[rows])
    return scores


def _zscore(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / sd if sd > 1e-12 else np.zeros_like(values, dtype=np.float64)


def zero_shot_scores(features: FeatureSet, query: str, *, query_embedding: np.ndarray | None = None) -> np.ndarray:
    """A relevance score per record from the topic text alone (higher = more likely relevant)."""
    parts = [_zscore(bm25_scores(features.texts, query))]
    q = features.vectorizer.transform([query])
    parts.append(_zscore(np.asarray((features.tfidf @ q.T).todense()).ravel()))
    if features.embeddings is not None and query_embedding is not None:
        parts.append(_zscore(features.embeddings @ np.asarray(query_embedding, dtype=np.float32).ravel()))
    if features.verdicts is not None:
        parts.append(_zscore(features.verdicts.mean(axis=1).astype(np.float64)))
    return np.mean(parts, axis=0)


# -- active learning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LearnerConfig:
    C: float = 0.3
    """Inverse regularisation of the logistic regression."""
    background: int = 100
    """Undecided records sampled (fresh each round) and trained on as presumed irrelevant."""
    background_weight: float = 3.0
    """Weight of a background record relative to a decided irrelevant one."""
    query_weight: float = 1.0
    """Weight of the topic text as a relevant pseudo-record (0 to leave it out)."""
    max_irrelevant: int = 1500
    """Decided irrelevant records kept for training (newest and a random rest); bounds the fit."""
    seed_text_rounds: int | None = None
    """Drop the topic text once this many relevant records were found (None: keep it)."""
    prior_mix: float = 1.0
    """Weight of the zero-shot score (z-scored, next to the z-scored model score) once relevant
    records were found; it decays as ``prior_mix / relevant found``."""


@dataclass
class _State:
    labels: dict[int, bool] = field(default_factory=dict)


class ActiveLearner:
    """Ranks undecided records; :meth:`update` with each decision, then :meth:`scores`/:meth:`next`."""

    def __init__(
        self,
        features: FeatureSet,
        *,
        config: LearnerConfig | None = None,
        prior_scores: np.ndarray | None = None,
        query: str | None = None,
        query_embedding: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.config = config or LearnerConfig()
        self.prior_scores = None if prior_scores is None else np.asarray(prior_scores, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.labels: dict[int, bool] = {}
        self._decided = np.zeros(features.n, dtype=bool)
        self._query_row: tuple[sp.csr_matrix, np.ndarray | None] | None = None
        if query:
            self._query_row = features.transform_text(query, query_embedding)
        self._scores: np.ndarray | None = None

    # -- decisions ----------------------------------------------------------------------------

    def update(self, record: int, relevant: bool) -> None:
        """Record a decision (a later decision on the same record replaces it)."""
        self.labels[int(record)] = bool(relevant)
        self._decided[int(record)] = True
        self._scores = None

    def update_many(self, decisions: Mapping[int, bool]) -> None:
        for record, relevant in decisions.items():
            self.update(record, relevant)

    @property
    def n_relevant(self) -> int:
        return sum(self.labels.values())

    # -- ranking ------------------------------------------------------------------------------

    def scores(self) -> np.ndarray:
        """A score per record (decided records included), refit on the decisions so far."""
        if self._scores is None:
            self._scores = self._fit_and_score()
        return self._scores

    def ranking(self) -> np.ndarray:
        """Undecided record ids, most likely relevant first."""
        scores = self.scores()
        undecided = np.flatnonzero(~self._decided)
        return undecided[np.argsort(-scores[undecided], kind="stable")]

    def next(self) -> int | None:
        """The undecided record most likely relevant (None when every record is decided)."""
        scores = self.scores()
        masked = np.where(self._decided, -np.inf, scores)
        if not np.isfinite(masked).any():
            return None
        return int(np.argmax(masked))

    def _fallback(self) -> np.ndarray:
        if self.prior_scores is not None:
            return self.prior_scores.copy()
        # no topic text and nothing to learn from: a seeded random order
        return self.rng.random(self.features.n)

    def _fit_and_score(self) -> np.ndarray:
        cfg = self.config
        relevant = [i for i, y in self.labels.items() if y]
        irrelevant = [i for i, y in self.labels.items() if not y]
        if not relevant:
            # Nothing relevant to learn from yet: the zero-shot ranking (a model trained on the
            # topic text alone favours short, title-only records).
            return self._fallback()
        use_query = self._query_row is not None and cfg.query_weight > 0 and (
            cfg.seed_text_rounds is None or len(relevant) < cfg.seed_text_rounds)
        if len(irrelevant) > cfg.max_irrelevant:
            recent = irrelevant[-cfg.max_irrelevant // 2:]
            rest = np.array(irrelevant[: -cfg.max_irrelevant // 2])
            irrelevant = list(self.rng.choice(rest, cfg.max_irrelevant - len(recent), replace=False)) + recent
        undecided = np.flatnonzero(~self._decided)
        n_bg = min(cfg.background, len(undecided))
        background = self.rng.choice(undecided, n_bg, replace=False) if n_bg else np.zeros(0, dtype=int)

        rows = np.array(relevant + irrelevant + background.tolist(), dtype=np.int64)
        y = np.concatenate([np.ones(len(relevant)), np.zeros(len(irrelevant) + n_bg)])
        w = np.concatenate([np.ones(len(relevant)), np.ones(len(irrelevant)),
                            np.full(n_bg, cfg.background_weight)])
        X = self._rows(rows)
        if use_query:
            assert self._query_row is not None
            X = sp.vstack([X, self._stack(*self._query_row)]).tocsr()
            y = np.append(y, 1.0)
            w = np.append(w, cfg.query_weight)
        positive, negative = w[y == 1].sum(), w[y == 0].sum()
        if negative == 0:
            return self._fallback()
        # balanced: each class carries half of the total weight
        w = np.where(y == 1, w * (positive + negative) / (2 * positive), w * (positive + negative) / (2 * negative))
        # The dual solver costs O(non-zeros of the training rows) per pass; the primal one scales
        # with the vocabulary and is ~100x slower here.
        model = LogisticRegression(C=cfg.C, solver="liblinear", dual=True, max_iter=1000)
        model.fit(X, y, sample_weight=w)
        coef = model.coef_.ravel().astype(np.float32)
        n_sparse = self.features.tfidf.shape[1]
        scores = self.features.tfidf @ coef[:n_sparse]
        if self.features.dense is not None:
            scores = scores + self.features.dense @ coef[n_sparse:]
        scores = np.asarray(scores, dtype=np.float64).ravel() + float(model.intercept_[0])
        if self.prior_scores is not None and cfg.prior_mix > 0:
            scores = _zscore(scores) + cfg.prior_mix / len(relevant) * _zscore(self.prior_scores)
        return scores

    def _stack(self, sparse_rows: sp.csr_matrix, dense_rows: np.ndarray | None) -> sp.csr_matrix:
        if dense_rows is None:
            return sparse_rows
        return sp.hstack([sparse_rows, sp.csr_matrix(dense_rows)], format="csr")

    def _rows(self, rows: np.ndarray) -> sp.csr_matrix:
        dense = None if self.features.dense is None else self.features.dense[rows]
        return self._stack(self.features.tfidf[rows], dense)
