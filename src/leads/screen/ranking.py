"""Screening prioritisation: a zero-shot score per record, then active learning as decisions come.

**Zero-shot** (:func:`zero_shot_scores`): with no decision at all, records are scored against a
topic text (the review question, the criteria, a PICO): Okapi BM25 against the text and against
its MeSH expansion (:func:`expand_topic`: a drug class's member drugs, a heading's narrower
headings), TF-IDF cosine, sentence-embedding cosine, the mean criterion verdict when verdicts
are available, and, when the text names a study design ("randomized controlled trials",
"animal models"; :func:`topic_designs`), the design classifier's probability of that design.
Each component is z-scored; the weighted mean is the score (:class:`ZeroShotWeights`).

**Active learning** (:class:`ActiveLearner`): an ensemble retrained after every decision,

- a logistic regression over TF-IDF word uni- and bigrams (plus design probabilities and
  verdict scores as a few dense columns), and
- when sentence embeddings are available, a second logistic regression over the embeddings
  (and design probabilities). Embeddings generalise from one or two relevant records; word
  features pin down the last, atypical ones, so the embedding model's weight fades as
  ``embedding_rounds / relevant found`` (:class:`LearnerConfig`).

Both scores are z-scored and added, and the zero-shot score joins with a weight that decays
as ``prior_mix / relevant found`` and grows again while decisions keep coming back irrelevant
(``stall``: a model learnt from one atypical relevant record would otherwise keep proposing its
neighbours). Three more things make it work from the first decision on:

- *Presumed-irrelevant background.* Every round also trains on a random sample of undecided
  records labelled irrelevant (Cormack & Grossman's BMI, "Autonomy and reliability of continuous
  active learning for technology-assisted review", arXiv:1504.06868, 2015): with a prevalence of a
  few percent, almost all of them are, and they teach the model what an ordinary record of the
  search looks like, so one relevant record is enough to rank its like first.
- *The topic text as a relevant pseudo-record*, when there is one, so the reviewer's question
  stays in the model until real relevant records outweigh it.
- *Class weights* (relevant records weigh as much as all the irrelevant ones together), as
  ASReview's balanced sample weights do.

Ties go to the lower record id, so a run is determined by its inputs and its seed. Settings were
chosen on five development topics and checked on eight others (docs/benchmarks.md, "Screening
prioritisation vs ASReview").

Re-ranking after a decision (both fits + scoring every record) takes 20-60 ms of one core for
10,000 records: the training set is the decided records (at most ``max_irrelevant`` irrelevant
ones) plus a bounded background sample, and scoring is one sparse and two dense matrix-vector
products (``tests/screen/test_ranking.py`` checks the bound of 100 ms).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from leads.errors import LeadsError

__all__ = [
    "DESIGN_COLUMNS",
    "ActiveLearner",
    "FeatureSet",
    "LearnerConfig",
    "ZeroShotWeights",
    "bm25_scores",
    "build_features",
    "cached_embeddings",
    "design_features",
    "design_model_id",
    "expand_topic",
    "ranking_features",
    "record_embeddings",
    "record_text",
    "topic_design_row",
    "topic_designs",
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
    """Per-record features. ``tfidf`` rows are L2-normalised; ``dense`` holds the dense features
    that join the TF-IDF model (embeddings, criterion-verdict scores, study-design
    probabilities, each already scaled to its weight). ``embeddings`` are kept apart as well:
    the learner's second model and the zero-shot score use them on their own."""

    texts: list[str]
    tfidf: sp.csr_matrix
    vectorizer: TfidfVectorizer
    dense: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    verdicts: np.ndarray | None = None
    design: np.ndarray | None = None
    """Study-design probabilities (``n × k``, columns :data:`DESIGN_COLUMNS`)."""

    _embedding_scale: float = 1.0
    _embedding_in_dense: bool = False
    _verdict_scale: float = 1.0
    _design_scale: float = 1.0

    @property
    def n(self) -> int:
        return self.tfidf.shape[0]

    def transform_text(self, text: str, embedding: np.ndarray | None = None) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """Features of a text outside the collection (a topic text), in the same spaces.

        A topic text meets its own criteria (verdicts 1); its study design is the one it names
        (:func:`topic_designs`), or the collection's average when it names none, so that a
        design neither helps nor hurts the pseudo-record.
        """
        row = self.vectorizer.transform([text]).astype(np.float32)
        dense = None
        if self.dense is not None:
            parts = []
            if self.embeddings is not None and self._embedding_in_dense:
                emb = embedding if embedding is not None else np.zeros(self.embeddings.shape[1], np.float32)
                parts.append(np.asarray(emb, np.float32).reshape(1, -1) * self._embedding_scale)
            if self.verdicts is not None:
                parts.append(np.ones((1, self.verdicts.shape[1]), np.float32) * self._verdict_scale)
            if self.design is not None and self._design_scale > 0:
                parts.append(topic_design_row(text, self.design).reshape(1, -1) * self._design_scale)
            dense = np.hstack(parts).astype(np.float32)
        return row.tocsr(), dense


def build_features(
    texts: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    verdicts: np.ndarray | None = None,
    design: np.ndarray | None = None,
    embedding_weight: float = 0.0,
    verdict_weight: float = 0.3,
    design_weight: float = 0.1,
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
        empty = np.array([not t.strip() for t in texts], dtype=bool)
        if empty.any():
            # A record with no title and no abstract carries no evidence; the embedding of an
            # empty string would place it somewhere arbitrary, a zero vector scores it neutrally
            # (the models' intercepts), as its empty TF-IDF row does.
            embeddings = embeddings.copy()
            embeddings[empty] = 0.0
        features.embeddings = embeddings
        features._embedding_scale = math.sqrt(embedding_weight)
        if embedding_weight > 0:
            features._embedding_in_dense = True
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
    if design is not None:
        design = np.asarray(design, dtype=np.float32)
        if design.ndim != 2 or design.shape[0] != len(texts):
            raise ValueError("one row of design probabilities per text is needed")
        features.design = design
        features._design_scale = math.sqrt(design_weight / design.shape[1])
        if design_weight > 0:
            parts.append(design * features._design_scale)
    if parts:
        features.dense = np.ascontiguousarray(np.hstack(parts), dtype=np.float32)
    return features


def cached_embeddings(
    texts: Sequence[str],
    embed: Callable[[Sequence[str]], np.ndarray],
    cache_dir: str | Path | None,
    *,
    model_id: str,
    compute: bool = True,
) -> np.ndarray | None:
    """``embed(texts)``, cached on disk under a hash of the model id and the texts
    (``compute=False``: the cached value, or None when there is none)."""
    if cache_dir is None:
        return np.asarray(embed(list(texts)), dtype=np.float32) if compute else None
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    path = Path(cache_dir) / f"{digest.hexdigest()[:32]}.npy"
    if path.exists():
        found = np.load(path)
        if found.shape[0] == len(texts):
            return found
    if not compute:
        return None
    vectors = np.asarray(embed(list(texts)), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def record_embeddings(texts: Sequence[str], cache_dir: str | Path | None, *,
                      compute: bool = True) -> np.ndarray | None:
    """MiniLM sentence embeddings of ``texts`` (cached under ``cache_dir``); None when the model
    is not installed, or, with ``compute=False``, when they are not cached yet."""
    from leads.screen.embeddings import MODEL_ID, Embedder

    if not Embedder.available():
        return None
    return cached_embeddings(texts, lambda batch: Embedder.load().embed(batch), cache_dir,
                             model_id=MODEL_ID, compute=compute)


def design_model_id() -> str:
    """Identity of the shipped design model, for the feature cache (changes when it is retrained)."""
    from importlib import resources

    from leads.screen.design import MODEL_FILE

    ref = resources.files("leads.screen").joinpath("models", MODEL_FILE)
    return "design:" + hashlib.sha256(ref.read_bytes()).hexdigest()[:16]


def ranking_features(
    records: Sequence[Any],
    *,
    verdicts: np.ndarray | None = None,
    embeddings: bool | str = True,
    design: bool = True,
    cache_dir: str | Path | None = None,
    **weights: Any,
) -> tuple[FeatureSet, list[str]]:
    """The features the ranking models use, for records (or mappings / texts with a title and
    an abstract): TF-IDF, MiniLM embeddings, study-design probabilities and criterion verdicts;
    also the names of the feature kinds used.

    ``embeddings``: True computes them (and caches them under ``cache_dir``); ``"cached"`` uses
    them only when they are cached already (a workspace must not stall a request on them:
    :func:`record_embeddings` computes them ahead); False leaves them out. ``design``
    probabilities are cached the same way. ``weights`` go to :func:`build_features`.
    """
    texts = [record_text(r) for r in records]
    used = ["tfidf"]
    emb = None
    if embeddings:
        emb = record_embeddings(texts, cache_dir, compute=embeddings is True)
        if emb is not None:
            used.append("embeddings")
    design_matrix = None
    if design:
        design_matrix = cached_embeddings(texts, lambda _texts: design_features(records), cache_dir,
                                          model_id=design_model_id())
        used.append("design")
    if verdicts is not None:
        used.append("verdicts")
    features = build_features([record_text(r, title_repeats=2) for r in records], embeddings=emb,
                              verdicts=verdicts, design=design_matrix, **weights)
    return features, used


# -- study design ---------------------------------------------------------------------------------

DESIGN_COLUMNS: tuple[str, ...] = (
    "rct", "nonrandomised_trial", "observational", "systematic_review", "review", "case_report",
    "animal", "human",
)
"""Columns of :func:`design_features`: the design classifier's class probabilities
(:data:`leads.screen.design.DESIGNS`) and P(human subjects)."""

# A topic text that asks for a design names it in one of these ways. Sentences about exclusion
# are skipped ("exclusion of animal studies" does not ask for animal studies).
_TOPIC_DESIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("rct", re.compile(r"\brandomi[sz]ed\b|\brandomi[sz]ation\b|\bRCTs?\b", re.IGNORECASE)),
    ("observational", re.compile(r"\bobservational\b|\bcohort stud|\bcase-control\b", re.IGNORECASE)),
    ("animal", re.compile(r"\banimal (?:models?|studies|experiments?)\b|\bin animals\b"
                          r"|\b(?:rodents?|rats|mice)\b|\bpreclinical\b", re.IGNORECASE)),
)
_EXCLUDING = re.compile(r"\bexclu|\bnot\b|\bno\b|\bexcept\b", re.IGNORECASE)


def topic_designs(text: str) -> list[str]:
    """The study designs (columns of :data:`DESIGN_COLUMNS`) a topic text asks for: "randomized
    controlled trials" -> ``["rct"]``, "animal models of depression" -> ``["animal"]``."""
    found: list[str] = []
    for sentence in re.split(r"(?<=[.;!?])\s+|\n+", text or ""):
        if _EXCLUDING.search(sentence):
            continue
        for design, pattern in _TOPIC_DESIGNS:
            if pattern.search(sentence) and design not in found:
                found.append(design)
    return found


def topic_design_row(text: str, design: np.ndarray) -> np.ndarray:
    """The design probabilities a topic text stands for, next to the collection's ``design``
    matrix: the designs it names share probability 1 (and humans, unless animals are asked
    for); a text that names none gets the collection's average, which is neutral."""
    named = topic_designs(text)
    if not named:
        return design.mean(axis=0).astype(np.float32)
    row = np.zeros(len(DESIGN_COLUMNS), dtype=np.float32)
    for d in named:
        row[DESIGN_COLUMNS.index(d)] = 1.0 / len(named)
    row[DESIGN_COLUMNS.index("human")] = 0.0 if named == ["animal"] else 1.0
    return row[: design.shape[1]]


def design_features(records: Sequence[Any]) -> np.ndarray:
    """The study-design classifier's probabilities for every record (``n × 8``, columns
    :data:`DESIGN_COLUMNS`); see :mod:`leads.screen.design`."""
    from leads.screen.design import DesignModel

    model = DesignModel.load()
    out = np.zeros((len(records), len(DESIGN_COLUMNS)), dtype=np.float32)
    for i, record in enumerate(records):
        title: str | None
        abstract: str | None
        if isinstance(record, str):
            title, abstract = None, record
        elif isinstance(record, Mapping):
            title, abstract = record.get("title"), record.get("abstract")
        else:
            title, abstract = getattr(record, "title", None), getattr(record, "abstract", None)
        prediction = model.predict(title, abstract)
        out[i, :-1] = [prediction.probabilities[c] for c in DESIGN_COLUMNS[:-1]]
        out[i, -1] = prediction.human
    return out


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


def expand_topic(text: str, *, max_terms: int = 300) -> list[str]:
    """Terms for the MeSH concepts a topic text names, as a PubMed search would explode them:
    each concept's name and entry terms; for a drug class, the drugs with that pharmacological
    action ("antihistamines" -> cetirizine, loratadine, ...); for another concept, its narrower
    headings. Records rarely repeat a class name but do name its members."""
    from leads.vocab.mesh import Mesh

    mesh = Mesh.load()
    terms: dict[str, None] = {}
    for concept in mesh.find_concepts(text):
        d = concept.descriptor
        if d.tree_numbers and all(t.startswith("V") for t in d.tree_numbers):
            continue  # a publication type ("Randomized Controlled Trial"): the design model's job
        terms.update(dict.fromkeys([d.name, *mesh.entry_terms(d)]))
        members = mesh.drugs_with_action(d)
        narrower = members if members else mesh.descendants(d)[1:]
        terms.update(dict.fromkeys(m.name for m in narrower))
    return list(terms)[:max_terms]


def _zscore(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / sd if sd > 1e-12 else np.zeros_like(values, dtype=np.float64)


@dataclass(frozen=True)
class ZeroShotWeights:
    """Weights of the z-scored components of :func:`zero_shot_scores` (absent components are
    left out and the rest renormalised)."""

    bm25: float = 1.0
    expanded: float = 1.0
    """BM25 against the topic text's MeSH expansion (:func:`expand_topic`)."""
    tfidf: float = 1.0
    embedding: float = 2.0
    verdicts: float = 1.0
    design: float = 2.0


def zero_shot_scores(
    features: FeatureSet,
    query: str,
    *,
    query_embedding: np.ndarray | None = None,
    weights: ZeroShotWeights | None = None,
) -> np.ndarray:
    """A relevance score per record from the topic text alone (higher = more likely relevant).

    A weighted mean of z-scored components: BM25 and TF-IDF cosine against the topic text,
    embedding cosine (when the features have embeddings and ``query_embedding`` is given), the
    mean criterion verdict (when the features have verdicts) and, when the topic text names a
    study design (:func:`topic_designs`) and the features have design probabilities, the log
    probability of that design.
    """
    w = weights or ZeroShotWeights()
    parts: list[tuple[float, np.ndarray]] = []
    if w.bm25 > 0:
        parts.append((w.bm25, _zscore(bm25_scores(features.texts, query))))
    if w.expanded > 0:
        expansion = expand_topic(query)
        if expansion:
            parts.append((w.expanded, _zscore(bm25_scores(features.texts, "\n".join(expansion)))))
    if w.tfidf > 0:
        q = features.vectorizer.transform([query])
        parts.append((w.tfidf, _zscore(np.asarray((features.tfidf @ q.T).todense()).ravel())))
    if w.embedding > 0 and features.embeddings is not None and query_embedding is not None:
        cosine = features.embeddings @ np.asarray(query_embedding, dtype=np.float32).ravel()
        parts.append((w.embedding, _zscore(cosine.astype(np.float64))))
    if w.verdicts > 0 and features.verdicts is not None:
        parts.append((w.verdicts, _zscore(features.verdicts.mean(axis=1).astype(np.float64))))
    designs = topic_designs(query)
    if w.design > 0 and features.design is not None and designs:
        columns = [DESIGN_COLUMNS.index(d) for d in designs]
        logp = np.log(features.design[:, columns].astype(np.float64).sum(axis=1) + 1e-3)
        parts.append((w.design, _zscore(logp)))
    if not parts:
        return np.zeros(features.n)
    total = sum(weight for weight, _ in parts)
    return np.sum([weight * part for weight, part in parts], axis=0) / total


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
    prior_mix: float = 0.5
    """Weight of the zero-shot score (z-scored, next to the z-scored model score) once relevant
    records were found; it decays as ``prior_mix / relevant found``."""
    stall: float | None = 10.0
    """Let the zero-shot score's weight grow by a factor ``1 + k / stall`` when the last ``k``
    decisions were all irrelevant (None: no growth). A model learnt from one or two atypical
    relevant records keeps proposing their neighbours; when those keep being irrelevant, the
    topic text takes over again until a relevant record turns up."""
    embedding_model: float = 1.0
    """Weight of a second model, trained on the sentence embeddings alone (and the design
    probabilities), next to the TF-IDF model (both z-scored); 0 leaves it out. Used only when
    the features have embeddings."""
    embedding_C: float = 1.0
    """Inverse regularisation of the embedding model."""
    embedding_rounds: int | None = 5
    """Let the embedding model's weight decay as ``embedding_rounds / relevant found`` once more
    than that many relevant records were found (None: constant weight). Embeddings generalise
    from few examples; word features separate the last, atypical relevant records better."""
    explore: bool = False
    """Before the first relevant record is found, train on the topic text (the only positive)
    against the irrelevant decisions and the background, and mix that model with the zero-shot
    score; otherwise the zero-shot order is followed until a relevant record turns up."""


class ActiveLearner:
    """Ranks undecided records; :meth:`update` with each decision, then :meth:`scores`/:meth:`next`.

    Ties in :meth:`ranking` and :meth:`next` go to the lower record id, so a run is fully
    determined by the features, the decisions and ``seed``.
    """

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
        if self.prior_scores is not None and self.prior_scores.shape != (features.n,):
            raise ValueError(f"prior_scores has shape {self.prior_scores.shape}, expected ({features.n},)")
        self.rng = np.random.default_rng(seed)
        self.labels: dict[int, bool] = {}
        self._decided = np.zeros(features.n, dtype=bool)
        self._query_row: tuple[sp.csr_matrix, np.ndarray | None] | None = None
        self._query_embedding: np.ndarray | None = None
        self._query_text = query or ""
        if query:
            self._query_row = features.transform_text(query, query_embedding)
            if query_embedding is not None:
                self._query_embedding = np.asarray(query_embedding, dtype=np.float32).reshape(1, -1)
        self._embedding_block: np.ndarray | None = None
        if features.embeddings is not None and self.config.embedding_model > 0:
            blocks = [features.embeddings]
            if features.design is not None:
                blocks.append(features.design)
            self._embedding_block = np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)
        self._scores: np.ndarray | None = None

    # -- decisions ----------------------------------------------------------------------------

    def update(self, record: int, relevant: bool) -> None:
        """Record a decision (a later decision on the same record replaces it and counts as the
        newest). Give decisions in the order they were made: :attr:`irrelevant_run` reads it."""
        record = int(record)
        if not 0 <= record < self.features.n:
            raise LeadsError(f"record {record} is out of range (0..{self.features.n - 1})")
        self.labels.pop(record, None)
        self.labels[record] = bool(relevant)
        self._decided[record] = True
        self._scores = None

    def update_many(self, decisions: Mapping[int, bool]) -> None:
        for record, relevant in decisions.items():
            self.update(record, relevant)

    @property
    def n_relevant(self) -> int:
        return sum(self.labels.values())

    @property
    def irrelevant_run(self) -> int:
        """Irrelevant decisions since the last relevant one (decisions in the order given)."""
        run = 0
        for relevant in reversed(self.labels.values()):
            if relevant:
                break
            run += 1
        return run

    # -- ranking ------------------------------------------------------------------------------

    def scores(self) -> np.ndarray:
        """A score per record (decided records included), refit on the decisions so far."""
        if self._scores is None:
            self._scores = self._fit_and_score()
        return self._scores

    def ranking(self) -> np.ndarray:
        """Undecided record ids, most likely relevant first (ties: lower id first)."""
        scores = self.scores()
        undecided = np.flatnonzero(~self._decided)
        return undecided[np.argsort(-scores[undecided], kind="stable")]

    def next(self) -> int | None:
        """The undecided record most likely relevant (None when every record is decided)."""
        scores = self.scores()
        masked = np.where(self._decided, -np.inf, scores)
        if not np.isfinite(masked).any():
            return None
        return int(np.argmax(masked))  # the first maximum: ties go to the lower id

    def _fallback(self) -> np.ndarray:
        if self.prior_scores is not None:
            return self.prior_scores.copy()
        # no topic text and nothing to learn from: a seeded random order
        return self.rng.random(self.features.n)

    def _training_rows(self, relevant: list[int], irrelevant: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row ids, labels and weights: the decisions and a fresh background sample."""
        cfg = self.config
        if len(irrelevant) > cfg.max_irrelevant:
            recent = irrelevant[-(cfg.max_irrelevant // 2):]
            rest = np.array(irrelevant[: -(cfg.max_irrelevant // 2)])
            irrelevant = [int(i) for i in self.rng.choice(rest, cfg.max_irrelevant - len(recent), replace=False)] + recent
        undecided = np.flatnonzero(~self._decided)
        n_bg = min(cfg.background, len(undecided))
        background = self.rng.choice(undecided, n_bg, replace=False) if n_bg else np.zeros(0, dtype=int)
        rows = np.array(relevant + irrelevant + background.tolist(), dtype=np.int64)
        y = np.concatenate([np.ones(len(relevant)), np.zeros(len(irrelevant) + n_bg)])
        w = np.concatenate([np.ones(len(relevant) + len(irrelevant)), np.full(n_bg, cfg.background_weight)])
        return rows, y, w

    def _fit_and_score(self) -> np.ndarray:
        cfg = self.config
        relevant = [i for i, y in self.labels.items() if y]
        irrelevant = [i for i, y in self.labels.items() if not y]
        if not relevant and not (cfg.explore and self._query_row is not None and cfg.query_weight > 0):
            # Nothing relevant to learn from yet: the zero-shot ranking.
            return self._fallback()
        use_query = self._query_row is not None and cfg.query_weight > 0 and (
            cfg.seed_text_rounds is None or len(relevant) < cfg.seed_text_rounds)
        rows, y, w = self._training_rows(relevant, irrelevant)
        X = self._rows(rows)
        if use_query:
            assert self._query_row is not None
            X = sp.vstack([X, self._stack(*self._query_row)]).tocsr()
            y = np.append(y, 1.0)
            w = np.append(w, cfg.query_weight)
        if w[y == 0].sum() == 0 or w[y == 1].sum() == 0:
            return self._fallback()
        w = _balanced(y, w)
        # The dual solver costs O(non-zeros of the training rows) per pass; the primal one scales
        # with the vocabulary and is ~100x slower here.
        model = LogisticRegression(C=cfg.C, solver="liblinear", dual=True, max_iter=1000, random_state=0)
        model.fit(X, y, sample_weight=w)
        coef = model.coef_.ravel().astype(np.float32)
        n_sparse = self.features.tfidf.shape[1]
        scores = self.features.tfidf @ coef[:n_sparse]
        if self.features.dense is not None:
            scores = scores + self.features.dense @ coef[n_sparse:]
        scores = np.asarray(scores, dtype=np.float64).ravel() + float(model.intercept_[0])
        if self._embedding_block is not None:
            weight = cfg.embedding_model
            if cfg.embedding_rounds is not None and len(relevant) > cfg.embedding_rounds:
                weight *= cfg.embedding_rounds / len(relevant)
            scores = _zscore(scores) + weight * _zscore(self._embedding_scores(rows, y, w, use_query))
        n_found = max(len(relevant), 1)
        if self.prior_scores is not None and cfg.prior_mix > 0:
            mix = cfg.prior_mix / n_found
            if cfg.stall:
                mix *= 1 + self.irrelevant_run / cfg.stall
            scores = _zscore(scores) + mix * _zscore(self.prior_scores)
        return scores

    def _embedding_scores(self, rows: np.ndarray, y: np.ndarray, w: np.ndarray, use_query: bool) -> np.ndarray:
        """Scores of the second model: logistic regression on the embeddings (+ design)."""
        assert self._embedding_block is not None
        X = self._embedding_block[rows]
        if use_query:
            assert self._query_row is not None
            if self._query_embedding is not None:
                q = self._query_embedding
                if self.features.design is not None:
                    q = np.hstack([q, topic_design_row(self._query_text, self.features.design).reshape(1, -1)])
                X = np.vstack([X, q.astype(np.float32)])
            else:  # no embedding of the topic text: leave the pseudo-record out of this model
                y, w = y[:-1], w[:-1]
        # Newton-CG reaches the same optimum as lbfgs (a strictly convex problem) in a few
        # iterations; lbfgs needed ~50 here, about 180 ms per re-rank at 10,000 records.
        model = LogisticRegression(C=self.config.embedding_C, solver="newton-cg", max_iter=200)
        model.fit(X, y, sample_weight=w)
        return self._embedding_block @ model.coef_.ravel().astype(np.float32) + float(model.intercept_[0])

    def _stack(self, sparse_rows: sp.csr_matrix, dense_rows: np.ndarray | None) -> sp.csr_matrix:
        if dense_rows is None:
            return sparse_rows
        return sp.hstack([sparse_rows, sp.csr_matrix(dense_rows)], format="csr")

    def _rows(self, rows: np.ndarray) -> sp.csr_matrix:
        dense = None if self.features.dense is None else self.features.dense[rows]
        return self._stack(self.features.tfidf[rows], dense)


def _balanced(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Reweight so that each class carries half of the total weight."""
    positive, negative = w[y == 1].sum(), w[y == 0].sum()
    total = positive + negative
    return np.where(y == 1, w * total / (2 * positive), w * total / (2 * negative))
