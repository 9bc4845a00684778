"""Ranking: zero-shot scores, the active learner (it learns; it is fast), the embedding cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from leads.formats import read_records
from leads.screen.ranking import (
    ActiveLearner,
    LearnerConfig,
    bm25_scores,
    build_features,
    cached_embeddings,
    record_text,
    zero_shot_scores,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "screen" / "nsaids_300.csv"


@pytest.fixture(scope="module")
def nsaids() -> tuple[list[str], np.ndarray]:
    """300 real records of the Cohen 2006 NSAIDS review (32 relevant)."""
    records = list(read_records(FIXTURE))
    return [record_text(r) for r in records], np.array([bool(r.label) for r in records])


def test_record_text() -> None:
    assert record_text({"title": "T", "abstract": "A"}) == "T\nA"
    assert record_text({"title": None, "abstract": "A"}) == "A"


def test_bm25_by_hand() -> None:
    texts = ["aspirin trial", "aspirin aspirin", "placebo tablet"]
    scores = bm25_scores(texts, "aspirin")
    # idf = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)); all three texts have length 2 (avg 2)
    idf = np.log(1 + 1.5 / 2.5)
    assert scores[0] == pytest.approx(idf * 1 * 2.2 / (1 + 1.2))
    assert scores[1] == pytest.approx(idf * 2 * 2.2 / (2 + 1.2))
    assert scores[2] == 0.0
    assert bm25_scores(texts, "unknownword").tolist() == [0.0, 0.0, 0.0]


def test_zero_shot_ranks_matching_records_first(nsaids: tuple[list[str], np.ndarray]) -> None:
    texts, labels = nsaids
    features = build_features(texts)
    scores = zero_shot_scores(features, "nonsteroidal anti-inflammatory drugs randomized controlled trial")
    # with no label at all, the relevant records score higher than the rest on average (AUC)
    pos, neg = scores[labels], scores[~labels]
    auc = (pos[:, None] > neg[None, :]).mean()
    assert auc > 0.6


def test_the_model_learns_shared_words() -> None:
    # Relevant records share a vocabulary that the irrelevant ones lack (all say "celecoxib").
    rng = np.random.default_rng(0)
    filler = ["patients", "study", "results", "methods", "group", "analysis", "data", "week", "dose", "effect"]
    relevant_words = ["celecoxib", "osteoarthritis", "knee", "pain"]  # each relevant record: 2 or more
    texts, labels = [], []
    for i in range(200):
        words = list(rng.choice(filler, 12))
        is_relevant = i % 10 == 0
        if is_relevant:
            words += ["celecoxib", *rng.choice(relevant_words, 2)]
        texts.append(" ".join(words))
        labels.append(is_relevant)
    y = np.array(labels)
    learner = ActiveLearner(build_features(texts), seed=0)
    learner.update(0, True)
    learner.update(1, False)
    scores = learner.scores()[2:]
    pos, neg = scores[y[2:]], scores[~y[2:]]
    assert (pos[:, None] > neg[None, :]).mean() > 0.8  # AUC from a single relevant example
    # 19 relevant left among 198: random order would put ~2 in the first 19
    assert y[learner.ranking()[:19]].sum() >= 6


def test_the_model_learns_on_real_records(nsaids: tuple[list[str], np.ndarray]) -> None:
    texts, labels = nsaids
    learner = ActiveLearner(build_features(texts), seed=1)
    relevant, irrelevant = np.flatnonzero(labels), np.flatnonzero(~labels)
    for i in relevant[:3]:
        learner.update(int(i), True)
    for i in irrelevant[:10]:
        learner.update(int(i), False)
    ranking = learner.ranking()
    first_30 = labels[ranking[:30]].sum()
    # 29 relevant among 287 undecided: random screening finds ~3 in 30 records
    assert first_30 >= 12
    assert set(ranking.tolist()).isdisjoint({*relevant[:3].tolist(), *irrelevant[:10].tolist()})


def test_without_topic_or_labels_the_order_is_seeded_random(nsaids: tuple[list[str], np.ndarray]) -> None:
    texts, _ = nsaids
    features = build_features(texts)
    a = ActiveLearner(features, seed=3).ranking()
    b = ActiveLearner(features, seed=3).ranking()
    c = ActiveLearner(features, seed=4).ranking()
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_topic_text_drives_the_first_ranking(nsaids: tuple[list[str], np.ndarray]) -> None:
    texts, labels = nsaids
    features = build_features(texts)
    query = "nonsteroidal anti-inflammatory drugs randomized controlled trial"
    learner = ActiveLearner(features, query=query, prior_scores=zero_shot_scores(features, query), seed=0)
    first = int(np.flatnonzero(~labels)[0])
    learner.update(first, False)  # one irrelevant decision, no relevant one yet
    scores = np.delete(learner.scores(), first)
    y = np.delete(labels, first)
    assert (scores[y][:, None] > scores[~y][None, :]).mean() > 0.6


def test_dense_features_and_verdicts_are_used() -> None:
    texts = ["alpha beta", "gamma delta", "alpha gamma", "beta delta"] * 5
    dense = np.eye(4, dtype=np.float32)[[0, 1, 0, 1] * 5]
    verdicts = np.array([[1.0], [-1.0], [1.0], [-1.0]] * 5, dtype=np.float32)
    features = build_features(texts, embeddings=dense, verdicts=verdicts)
    assert features.dense is not None and features.dense.shape == (20, 5)
    learner = ActiveLearner(features, config=LearnerConfig(background=0), seed=0)
    learner.update(0, True)
    learner.update(1, False)
    scores = learner.scores()
    assert scores[2] > scores[3]  # shares the dense pattern and the verdict of the relevant one
    with pytest.raises(ValueError):
        build_features(texts, embeddings=dense[:3])


def test_rerank_latency_for_10000_records() -> None:
    """Re-ranking (fit on the decisions + score every record) after a decision, 10,000 records."""
    words = np.array(" ".join(record_text(r) for r in read_records(FIXTURE)).split())
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 180)) for _ in range(10_000)]
    labels = rng.random(10_000) < 0.05
    features = build_features(texts)
    for n_decided in (2, 1500):
        learner = ActiveLearner(features, seed=0)
        decided = rng.choice(10_000, n_decided, replace=False)
        decided[0], decided[1] = np.flatnonzero(labels)[0], np.flatnonzero(~labels)[0]
        for i in decided:
            learner.update(int(i), bool(labels[i]))
        cpu = []
        for _ in range(3):
            started = time.process_time()
            nxt = learner.next()
            cpu.append(time.process_time() - started)
            assert nxt is not None
            learner.update(nxt, bool(labels[nxt]))
        # CPU time, not wall time: the bound must hold on a loaded machine too
        assert min(cpu) < 0.100, f"{n_decided} decided: re-rank took {min(cpu) * 1000:.0f} ms CPU"


def test_cached_embeddings(tmp_path: Path) -> None:
    calls: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    first = cached_embeddings(["a", "b"], embed, tmp_path, model_id="m")
    second = cached_embeddings(["a", "b"], embed, tmp_path, model_id="m")
    assert calls == [2] and np.array_equal(first, second)
    cached_embeddings(["a", "c"], embed, tmp_path, model_id="m")  # other content: recomputed
    cached_embeddings(["a", "b"], embed, tmp_path, model_id="other")  # other model: recomputed
    assert calls == [2, 2, 2]
