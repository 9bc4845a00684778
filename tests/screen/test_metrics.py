"""Screening metrics computed by hand on tiny orders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from leads.screen.metrics import plot_recall_curves, recall_curve, screening_metrics

# 10 records, relevant at ids 0, 3, 7; screened in id order.
LABELS_10 = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]


def test_metrics_by_hand_without_priors() -> None:
    m = screening_metrics(range(10), LABELS_10)
    assert (m.n_records, m.n_relevant, m.n_priors) == (10, 3, 0)
    # 95% of 3 relevant -> all 3 (ceil 2.85); the third is found at position 8
    assert m.records_to_95 == 8
    assert m.screened_to_95 == pytest.approx(0.8)
    assert m.wss_95 == pytest.approx((10 - 8) / 10 - 0.05)
    # first ceil(1.0) = 1 record holds one relevant; first ceil(2.5) = 3 records hold one too
    assert m.recall_at_10 == pytest.approx(1 / 3)
    assert m.recall_at_25 == pytest.approx(1 / 3)
    # found at positions 1, 4, 8 of 10
    assert m.atd == pytest.approx((1 + 4 + 8) / 3 / 10)
    assert m.records_to_100 == 8


def test_priors_are_excluded_from_n_and_counts() -> None:
    # Two priors (a relevant and an irrelevant record) in front of the same sequence as above.
    labels = [1, 0, *LABELS_10]
    order = [0, 1, *range(2, 12)]
    with_priors = screening_metrics(order, labels, priors=[0, 1])
    without = screening_metrics(range(10), LABELS_10)
    assert with_priors.n_priors == 2
    assert with_priors.n_records == 10 and with_priors.n_relevant == 3
    for field in ("wss_95", "recall_at_10", "recall_at_25", "screened_to_95", "atd"):
        assert getattr(with_priors, field) == pytest.approx(getattr(without, field))
    # counting the priors as screened would have given a different WSS
    naive = screening_metrics(order, labels)
    assert naive.wss_95 != pytest.approx(with_priors.wss_95)


def test_95_percent_of_twenty_relevant_needs_nineteen() -> None:
    # 40 records, relevant at every even position: the 19th relevant one is at position 37
    labels = [1 if i % 2 == 0 else 0 for i in range(40)]
    m = screening_metrics(range(40), labels)
    assert m.n_relevant == 20
    assert m.records_to_95 == 37
    assert m.wss_95 == pytest.approx((40 - 37) / 40 - 0.05)
    assert m.recall_at_10 == pytest.approx(2 / 20)  # first 4 records: ids 0 and 2
    assert m.recall_at_25 == pytest.approx(5 / 20)  # first 10 records


def test_perfect_and_worst_orders() -> None:
    labels = np.zeros(100, dtype=bool)
    labels[[10, 20, 30, 40]] = True
    best = [10, 20, 30, 40, *[i for i in range(100) if i not in (10, 20, 30, 40)]]
    worst = best[4:] + best[:4]
    assert screening_metrics(best, labels).wss_95 == pytest.approx(0.96 - 0.05)
    assert screening_metrics(best, labels).recall_at_10 == 1.0
    assert screening_metrics(worst, labels).wss_95 == pytest.approx(-0.05)
    assert screening_metrics(worst, labels).recall_at_25 == 0.0


def test_partial_order_is_padded_in_id_order() -> None:
    # an order that stops after the last relevant record: the rest count as screened after it
    m = screening_metrics([7, 3, 0], LABELS_10)
    assert m.records_to_95 == 3
    assert m.atd == pytest.approx((1 + 2 + 3) / 3 / 10)


def test_invalid_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        screening_metrics([0, 1, 1], LABELS_10)
    with pytest.raises(ValueError, match="out of range"):
        screening_metrics([0, 10], LABELS_10)


def test_no_relevant_after_priors_gives_nan() -> None:
    m = screening_metrics([0, 1, 2], [1, 0, 0], priors=[0])
    assert m.n_relevant == 0 and math.isnan(m.wss_95)


def test_recall_curve_and_plot(tmp_path: Path) -> None:
    x, y = recall_curve(range(10), LABELS_10)
    assert x[0] == 0 and y[0] == 0 and x[-1] == 1 and y[-1] == 1
    assert y[4] == pytest.approx(2 / 3)  # after 4 records: ids 0 and 3
    for suffix in (".png", ".svg"):
        out = plot_recall_curves({"leads": (x, y)}, tmp_path / f"curve{suffix}", title="t")
        assert out.stat().st_size > 1000
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "curve.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match=r"png or \.svg"):
        plot_recall_curves({"leads": (x, y)}, tmp_path / "curve.pdf")
