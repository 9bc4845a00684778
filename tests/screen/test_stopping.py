"""Stopping: Callaghan & Müller-Hansen's hypergeometric test, its bounds, and the heuristic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import hypergeom

from leads.screen.stopping import (
    ConsecutiveIrrelevant,
    HypergeometricStopping,
    evaluate_stopping_rules,
    hypergeometric_p_value,
    recall_estimate,
    stopping_point,
)


def brute_force_p(labels: np.ndarray, n_records: int, target: float = 0.95) -> float:
    """The test as published: every sample of the last m records, m = 1..n."""
    y = labels.astype(int)
    n, r = len(y), int(y.sum())
    best = 1.0
    for m in range(1, n + 1):
        k = int(y[n - m:].sum())
        k_hat = math.floor(r / target - (r - k) + 1)
        population = n_records - n + m
        p = 0.0 if k_hat > population else float(hypergeom.cdf(k, population, k_hat, m))
        best = min(best, p)
    return best


def test_p_value_equals_the_test_over_every_sample() -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        n_records = int(rng.integers(5, 150))
        n = int(rng.integers(1, n_records + 1))
        labels = rng.random(n) < rng.random() * 0.6
        assert hypergeometric_p_value(labels, n_records) == pytest.approx(
            brute_force_p(labels, n_records), abs=1e-12)


def test_p_value_by_hand() -> None:
    # 20 relevant records, then 200 irrelevant ones, out of 1000. The smallest p is the sample
    # of the 200 irrelevant records: urn = 780 unscreened + 200, K = floor(20/0.95 - 20 + 1) = 2,
    # and P(no relevant in 200 draws) = (780/980)(779/979).
    labels = np.r_[np.ones(20), np.zeros(200)]
    assert hypergeometric_p_value(labels, 1000) == pytest.approx((780 / 980) * (779 / 979))


def test_estimate_is_consistent_with_the_test() -> None:
    labels = np.r_[np.ones(40), np.zeros(300)]
    early = recall_estimate(labels, 2000)
    assert not early.stop and early.p_value >= 0.05
    assert early.recall_lower_bound < 0.95
    assert early.remaining_estimate <= early.remaining_upper_bound
    late = recall_estimate(np.r_[np.ones(40), np.zeros(1500)], 2000)
    assert late.stop and late.p_value < 0.05
    assert late.recall_lower_bound >= 0.95
    # the bound is the largest number left that the test cannot reject at 95%
    k = late.remaining_upper_bound
    assert 40 / (40 + k) >= 0.95


def test_everything_screened_means_nothing_left() -> None:
    est = recall_estimate(np.r_[np.ones(5), np.zeros(95)], 100)
    assert est.remaining_upper_bound == 0 and est.recall_lower_bound == 1.0 and est.stop


def test_nothing_screened() -> None:
    est = recall_estimate([], 100)
    assert est.p_value == 1.0 and not est.stop and est.remaining_upper_bound == 100


def _miss_rate(shift: float, runs: int, seed: int) -> float:
    """How often the rule stops with recall below 95%: 300 records, 30 relevant, screened in the
    order of ``shift * relevant + noise`` (0: random order; larger: a better ranking)."""
    rng = np.random.default_rng(seed)
    rule = HypergeometricStopping(0.95, 0.95)
    missed = 0
    for _ in range(runs):
        labels = np.zeros(300, dtype=bool)
        labels[rng.choice(300, 30, replace=False)] = True
        y = labels[np.argsort(-(labels * shift + rng.normal(size=300)))]
        stop = stopping_point(y, 300, rule)
        missed += int(y[:stop].sum() < math.ceil(0.95 * 30))
    return missed / runs


def test_the_test_under_prioritised_screening() -> None:
    # The intended use: a ranking puts relevant records first, so the records left are poorer
    # than the "random sample" the test assumes, and misses stay under the nominal 5%.
    assert _miss_rate(1.0, 100, seed=3) <= 0.05


def test_the_test_under_random_screening() -> None:
    # Random order is the test's assumption taken literally; testing after every record (and
    # taking the smallest p over samples) makes it somewhat anti-conservative: ~7% misses at a
    # nominal 5% (0.0775, 0.085, 0.0625 over 400 runs with seeds 1-3). Bound it.
    assert _miss_rate(0.0, 100, seed=11) <= 0.12


def test_consecutive_irrelevant_heuristic() -> None:
    rule = ConsecutiveIrrelevant(3)
    # no relevant record yet: never stops
    assert stopping_point([0, 0, 0, 0, 0], 10, rule) == 5
    # stops at the third irrelevant record in a row after a relevant one
    assert stopping_point([0, 1, 0, 0, 1, 0, 0, 0, 1], 10, rule) == 8
    assert rule.should_stop([1, 0, 0, 0], 10)
    assert not rule.should_stop([1, 0, 0], 10)
    with pytest.raises(ValueError):
        ConsecutiveIrrelevant(0)


def test_evaluate_rules_excludes_priors() -> None:
    # ids 0 (relevant) and 1 (irrelevant) are priors; then 4 relevant, then 60 irrelevant
    labels = np.zeros(66, dtype=bool)
    labels[[0, 2, 3, 4, 5]] = True
    order = list(range(66))
    out = evaluate_stopping_rules(order, labels, priors=[0, 1], rules=[ConsecutiveIrrelevant(50)])
    recall, fraction, screened = out["50 consecutive irrelevant"]
    # 4 relevant + 50 irrelevant screened after the priors, all 4 found
    assert screened == 54 and recall == 1.0
    assert fraction == pytest.approx(54 / 64)
