"""When to stop screening: a statistical estimate of recall, and a simple heuristic next to it.

**The estimate** is Callaghan & Müller-Hansen's hypergeometric stopping criterion (Statistical
stopping criteria for automated screening in systematic reviews, Systematic Reviews 2020, 9:273,
doi:10.1186/s13643-020-01521-4). The last ``m`` screened records are treated as a random sample,
drawn without replacement, from the records that were still unscreened when the sample began:
a conservative assumption under prioritised screening, since the model puts the likeliest
records first, so the records left have a lower prevalence than the sample. Under the null
hypothesis that recall is below the target, the urn must hold at least ``K`` relevant records;
seeing as few relevant records as were seen in the sample then has probability
``P(X <= k)``, ``X ~ Hypergeometric(urn, K, m)``. The p-value is the smallest over all samples
(every ``m``); screening may stop once it falls below ``1 - confidence``.

Inverting the same test over the number of relevant records still unscreened gives an upper
bound on how many are left, and so a lower bound on the recall reached, at the stated confidence.

For a fixed number of relevant records in the sample, the p-value only falls as the sample
reaches further back through irrelevant records, so only the samples that begin just after a
relevant record (and the whole sequence) need testing: ``O(relevant found)`` per evaluation,
not ``O(screened)``.

**The heuristic** stops after ``n`` consecutive irrelevant records (once at least one relevant
record was found). It has no guarantee; the simulation benchmark reports how often it missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import hypergeom

__all__ = [
    "ConsecutiveIrrelevant",
    "HypergeometricStopping",
    "StoppingEstimate",
    "evaluate_stopping_rules",
    "hypergeometric_p_value",
    "recall_estimate",
    "stopping_point",
]


@dataclass(frozen=True)
class StoppingEstimate:
    screened: int
    relevant_found: int
    n_records: int
    target_recall: float
    confidence: float
    p_value: float
    """p-value of the null hypothesis "recall is below the target"."""
    stop: bool
    """True when that hypothesis is rejected at the stated confidence."""
    recall_lower_bound: float
    """Recall reached, at least, with the stated confidence."""
    remaining_upper_bound: int
    """Relevant records left unscreened, at most, with the stated confidence."""
    remaining_estimate: int
    """The same test at the 50% level: a central estimate of the relevant records left."""

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def _windows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample sizes ``m`` and relevant counts ``k`` of the samples worth testing."""
    n = len(labels)
    positions = np.flatnonzero(labels)
    r = len(positions)
    # Samples starting right after each relevant record, plus the whole sequence.
    starts = np.concatenate([[0], positions + 1])
    relevant_in = np.concatenate([[r], r - np.arange(1, r + 1)])
    keep = starts < n
    return n - starts[keep], relevant_in[keep]


def _p_values(m: np.ndarray, k: np.ndarray, unscreened: int, urn_relevant: np.ndarray) -> np.ndarray:
    population = unscreened + m
    p = np.zeros(len(m))
    possible = urn_relevant <= population
    if possible.any():
        p[possible] = hypergeom.cdf(k[possible], population[possible], urn_relevant[possible], m[possible])
    return p  # an urn that cannot hold that many relevant records rejects the hypothesis


def hypergeometric_p_value(labels: Sequence[bool | int] | np.ndarray, n_records: int,
                           target_recall: float = 0.95) -> float:
    """p-value of "recall < target" after screening ``labels`` (in order) out of ``n_records``."""
    y = np.asarray(labels, dtype=bool)
    if len(y) == 0:
        return 1.0
    if len(y) > n_records:
        raise ValueError("more records screened than there are")
    r = int(y.sum())
    m, k = _windows(y)
    # the fewest relevant records the urn must hold for recall to be below the target
    k_hat = np.floor(r / target_recall - (r - k) + 1).astype(np.int64)
    return float(_p_values(m, k, n_records - len(y), k_hat).min())


def recall_estimate(labels: Sequence[bool | int] | np.ndarray, n_records: int, *,
                    target_recall: float = 0.95, confidence: float = 0.95) -> StoppingEstimate:
    """Where screening stands: p-value for the target, bounds on recall and on records left."""
    y = np.asarray(labels, dtype=bool)
    n = len(y)
    r = int(y.sum())
    unscreened = n_records - n
    p = hypergeometric_p_value(y, n_records, target_recall)
    alpha = 1.0 - confidence
    if n == 0:
        upper = central = unscreened
    else:
        m, k = _windows(y)

        def largest_not_rejected(level: float) -> int:
            # p falls as the assumed number left grows; find the largest value still >= level
            lo, hi = 0, unscreened
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _p_values(m, k, unscreened, k + mid).min() >= level:
                    lo = mid
                else:
                    hi = mid - 1
            return lo

        upper = largest_not_rejected(alpha)
        central = largest_not_rejected(0.5)
    lower = r / (r + upper) if r + upper > 0 else 1.0
    return StoppingEstimate(
        screened=n, relevant_found=r, n_records=n_records, target_recall=target_recall,
        confidence=confidence, p_value=p, stop=p < alpha, recall_lower_bound=lower,
        remaining_upper_bound=int(upper), remaining_estimate=int(central),
    )


class HypergeometricStopping:
    """Callaghan & Müller-Hansen's rule: stop when "recall < target" is rejected."""

    def __init__(self, target_recall: float = 0.95, confidence: float = 0.95) -> None:
        self.target_recall = target_recall
        self.confidence = confidence

    @property
    def name(self) -> str:
        return f"hypergeometric (recall {self.target_recall:.0%}, confidence {self.confidence:.0%})"

    def should_stop(self, labels: Sequence[bool | int] | np.ndarray, n_records: int) -> bool:
        return hypergeometric_p_value(labels, n_records, self.target_recall) < 1.0 - self.confidence


class ConsecutiveIrrelevant:
    """Heuristic: stop after ``n`` irrelevant records in a row, once a relevant one was found."""

    def __init__(self, n: int = 50) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n

    @property
    def name(self) -> str:
        return f"{self.n} consecutive irrelevant"

    def should_stop(self, labels: Sequence[bool | int] | np.ndarray, n_records: int) -> bool:
        y = np.asarray(labels, dtype=bool)
        if not y.any() or len(y) < self.n:
            return False
        return not y[-self.n:].any()


def stopping_point(labels: Sequence[bool | int] | np.ndarray, n_records: int,
                   rule: HypergeometricStopping | ConsecutiveIrrelevant) -> int:
    """The number of records screened when ``rule`` first says stop (``len(labels)`` if never)."""
    y = np.asarray(labels, dtype=bool)
    if isinstance(rule, ConsecutiveIrrelevant):
        run = 0
        found = False
        for i, label in enumerate(y.tolist(), 1):
            found = found or label
            run = 0 if label else run + 1
            if found and run >= rule.n:
                return i
        return len(y)
    for i in range(1, len(y) + 1):
        if rule.should_stop(y[:i], n_records):
            return i
    return len(y)


def evaluate_stopping_rules(
    order: Iterable[int],
    labels: Sequence[bool | int] | np.ndarray,
    priors: Iterable[int] = (),
    rules: Sequence[HypergeometricStopping | ConsecutiveIrrelevant] | None = None,
) -> dict[str, tuple[float, float, int]]:
    """For each rule: (recall, fraction screened, records screened) at the point where it stops.

    The priors are known before screening starts: they count as screened for the rule (their
    relevant record is in the sequence) but, as in the metrics, not in the reported recall or
    fraction.
    """
    from leads.screen.metrics import screening_positions

    y = np.asarray(labels, dtype=bool)
    prior_list = [int(p) for p in priors]
    after, n = screening_positions(order, y, prior_list)
    prior_labels = y[prior_list] if prior_list else np.zeros(0, dtype=bool)
    sequence = np.concatenate([prior_labels, after])
    total_relevant = int(after.sum())
    rules = rules or [HypergeometricStopping(), ConsecutiveIrrelevant(50), ConsecutiveIrrelevant(100)]
    out: dict[str, tuple[float, float, int]] = {}
    for rule in rules:
        stop = stopping_point(sequence, len(y), rule)
        screened = max(0, stop - len(prior_list))
        found = int(after[:screened].sum())
        recall = found / total_relevant if total_relevant else math.nan
        out[rule.name] = (recall, screened / n if n else math.nan, screened)
    return out
